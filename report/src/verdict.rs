//! Judgements on one socket that both sides make: the detectors in `libfdguard.so` decide
//! findings with them, and the text renderer uses the same ones to group and phrase findings,
//! so a report re-rendered by `fdguard show` judges exactly as the library did.

use crate::model::{Role, Socket, TcpState};

/// True when a socket in `tcp_state` has lost its peer: the peer finished its side
/// (CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT), or the connection is CLOSE while the fd is still
/// open (reset by the peer). A connection that never completed its handshake is CLOSE too;
/// callers that know (the watcher, [`peer_gone`]) exclude it: its connect failed, the peer
/// never was there ([`never_connected`]).
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

/// [`peer_gone_state`] for a report socket: its peer hung up or reset the connection.
pub fn peer_gone(socket: &Socket) -> bool {
    peer_gone_state(socket.tcp_state, socket.role, socket.peer.is_some())
        && !never_connected(socket)
}

/// connect() results that are not a failure: done, still in progress (non-blocking), or
/// interrupted / repeated while the kernel goes on connecting.
const CONNECT_NOT_FAILED: [&str; 5] = ["ok", "EINPROGRESS", "EALREADY", "EINTR", "EISCONN"];

/// The connect() result of `socket` when connect() failed for good (`ECONNREFUSED`,
/// `ETIMEDOUT`, `ENOENT` for a unix path, …) and the socket never got connected afterwards.
pub fn connect_failure(socket: &Socket) -> Option<&str> {
    let result = socket.connect.as_ref()?.result.as_str();
    let connected_after_all = matches!(
        socket.tcp_state,
        Some(state) if !matches!(state, TcpState::Close | TcpState::SynSent)
    );
    (socket.role == Role::Client && !CONNECT_NOT_FAILED.contains(&result) && !connected_after_all)
        .then_some(result)
}

/// A client connection whose handshake never completed and never will: connect() failed, or
/// the kernel says the connection is CLOSE without ever having been answered (a refused or
/// timed-out non-blocking connect).
pub fn never_connected(socket: &Socket) -> bool {
    socket.role == Role::Client
        && (connect_failure(socket).is_some()
            || (socket.tcp_state == Some(TcpState::Close)
                && socket.tcp.as_ref().and_then(|t| t.handshake_completed) == Some(false)))
}

/// Seconds since connect() was called on `socket`, when it was.
pub fn connect_ago_s(socket: &Socket) -> Option<f64> {
    socket
        .connect
        .as_ref()
        .map(|c| (socket.age_s - c.after_s).max(0.0))
}

/// How much a socket still open at exit matters, most severe first (the order of the
/// `open_at_exit` findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExitSeverity {
    /// Already a leak before exit (another finding of severity `leak` names it): nobody will
    /// ever use it again.
    Leak,
    /// Its peer hung up, or the program shut it down, shortly before exit (within the grace
    /// period): the program had no time to close it. Not a leak.
    Recent,
    /// An open connection or other socket the program may simply not have closed yet.
    Open,
    /// A listening socket: normally alive for the whole process.
    Listener,
}

/// The [`ExitSeverity`] of `socket`; `leak` says whether a `leak` finding names it.
pub fn exit_severity(socket: &Socket, leak: bool) -> ExitSeverity {
    if leak {
        ExitSeverity::Leak
    } else if peer_gone(socket) || socket.shutdown.is_some() {
        ExitSeverity::Recent
    } else if socket.role == Role::Listener {
        ExitSeverity::Listener
    } else {
        ExitSeverity::Open
    }
}
