//! Judgements on one socket that both sides make: the detectors in `libfdguard.so` decide
//! findings with them, and the text renderer uses the same ones to group findings, so a report
//! re-rendered by `fdguard show` judges exactly as the library did.

use crate::model::{Role, Socket, TcpState};

/// True when a socket in `tcp_state` has lost its peer: the peer finished its side
/// (CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT), or the connection is CLOSE while the fd is still
/// open (reset by the peer, or a refused non-blocking connect that was never cleaned up).
pub fn peer_gone_state(tcp_state: Option<TcpState>, role: Role, has_peer: bool) -> bool {
    match tcp_state {
        Some(TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::TimeWait) => {
            true
        }
        Some(TcpState::Close) => {
            matches!(role, Role::Client | Role::Accepted | Role::Connected) && has_peer
        }
        _ => false,
    }
}

/// [`peer_gone_state`] for a report socket.
pub fn peer_gone(socket: &Socket) -> bool {
    peer_gone_state(socket.tcp_state, socket.role, socket.peer.is_some())
}

/// How much a socket still open at exit matters, most severe first (the order of the
/// `open_at_exit` findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitSeverity {
    /// Its peer is gone or the program shut it down: nobody will ever use it again, a leak.
    Leak,
    /// An open connection or other socket the program may simply not have closed yet.
    Open,
    /// A listening socket: normally alive for the whole process.
    Listener,
}

/// The [`ExitSeverity`] of `socket`.
pub fn exit_severity(socket: &Socket) -> ExitSeverity {
    if peer_gone(socket) || socket.shutdown.is_some() {
        ExitSeverity::Leak
    } else if socket.role == Role::Listener {
        ExitSeverity::Listener
    } else {
        ExitSeverity::Open
    }
}
