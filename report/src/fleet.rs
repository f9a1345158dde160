//! What the fleet views — the library's Prometheus metrics (`FDGUARD_METRICS_DIR`) and the
//! CLI's pprof export (`fdguard export --pprof`) — say about a set of sockets, decided once so
//! the two can never disagree: which backend a socket counts for, how a socket's TCP state is
//! labelled, and how the number of backends is bounded (the busiest [`TOP_BACKENDS`] by name,
//! the rest together as [`OTHER_BACKEND`]).
//!
//! Bounded on purpose: a label value becomes a time series in Prometheus (and in Pyroscope), so
//! a client that talks to 10,000 distinct peers must not make 10,000 series.

use crate::model::{Role, Socket};
use std::collections::HashMap;

/// Backends named individually; the others are added up under [`OTHER_BACKEND`].
pub const TOP_BACKENDS: usize = 10;

/// The label value of the backends beyond the top [`TOP_BACKENDS`].
pub const OTHER_BACKEND: &str = "other";

/// The `state` label of a socket that has no TCP state (unix, UDP, netlink, …).
pub const NO_TCP_STATE: &str = "none";

/// The backend a socket counts for: the peer of a client connection (what the program
/// connected to). Accepted connections have none: their peers are the clients' ephemeral
/// addresses, one per connection, which would make the label unbounded.
pub fn backend(socket: &Socket) -> Option<&str> {
    match socket.role {
        Role::Client => socket.peer.as_deref(),
        _ => None,
    }
}

/// The `state` label of a socket: its TCP state as `ss` names it, or [`NO_TCP_STATE`].
pub fn state_label(socket: &Socket) -> &'static str {
    socket.tcp_state.map_or(NO_TCP_STATE, |s| s.as_str())
}

/// Socket fds per backend, bounded: the `top` busiest backends (most fds first, then by name,
/// so the choice is stable from one update to the next) and how many fds the others hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends {
    /// (backend, socket fds), most first.
    pub top: Vec<(String, u64)>,
    /// Socket fds to every other backend.
    pub other: u64,
    /// How many backends were added up in `other`.
    pub others: usize,
}

impl Backends {
    /// Counts the socket fds of `sockets` per [`backend`], keeping the busiest `top`.
    pub fn count<'a>(sockets: impl IntoIterator<Item = &'a Socket>, top: usize) -> Backends {
        let mut counts: HashMap<&str, u64> = HashMap::new();
        for s in sockets {
            if let Some(b) = backend(s) {
                *counts.entry(b).or_default() += 1;
            }
        }
        let mut all: Vec<(&str, u64)> = counts.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let rest = all.split_off(top.min(all.len()));
        Backends {
            top: all.into_iter().map(|(b, n)| (b.to_string(), n)).collect(),
            other: rest.iter().map(|(_, n)| n).sum(),
            others: rest.len(),
        }
    }

    /// The label value `socket` is counted under: its backend when it is one of the top ones,
    /// [`OTHER_BACKEND`] when it is not, `None` when it has no backend.
    pub fn label_of<'a>(&'a self, socket: &'a Socket) -> Option<&'a str> {
        let b = backend(socket)?;
        Some(if self.top.iter().any(|(name, _)| name == b) {
            b
        } else {
            OTHER_BACKEND
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TcpState;

    fn client(peer: &str) -> Socket {
        Socket {
            role: Role::Client,
            peer: Some(peer.to_string()),
            tcp_state: Some(TcpState::Established),
            ..Socket::default()
        }
    }

    #[test]
    fn busiest_backends_by_count_then_name_and_the_rest_as_other() {
        let mut sockets = Vec::new();
        for (peer, n) in [("b:1", 3), ("a:1", 3), ("c:1", 5), ("d:1", 1), ("e:1", 1)] {
            sockets.extend((0..n).map(|_| client(peer)));
        }
        sockets.push(Socket {
            role: Role::Accepted,
            peer: Some("10.0.0.9:40000".into()),
            ..Socket::default()
        });
        let b = Backends::count(&sockets, 3);
        assert_eq!(
            b.top,
            vec![("c:1".into(), 5), ("a:1".into(), 3), ("b:1".into(), 3)]
        );
        assert_eq!((b.other, b.others), (2, 2));
        assert_eq!(b.label_of(&client("a:1")), Some("a:1"));
        assert_eq!(b.label_of(&client("e:1")), Some(OTHER_BACKEND));
        assert_eq!(b.label_of(&sockets[sockets.len() - 1]), None);
    }

    #[test]
    fn ten_thousand_peers_stay_bounded() {
        let sockets: Vec<Socket> = (0..10_000)
            .map(|i| client(&format!("127.0.{}.{}:80", i / 250, i % 250)))
            .collect();
        let b = Backends::count(&sockets, TOP_BACKENDS);
        assert_eq!(b.top.len(), TOP_BACKENDS);
        assert_eq!(b.other, 10_000 - TOP_BACKENDS as u64);
    }

    #[test]
    fn state_labels() {
        assert_eq!(state_label(&client("x:1")), "ESTABLISHED");
        assert_eq!(state_label(&Socket::default()), NO_TCP_STATE);
    }
}
