//! From what one look saw ([`Observation`]) to report sockets (`fdguard_report::Socket`), in
//! the library's notation, so the same detectors and the same text renderer apply.
//!
//! Pure: no kernel access here, so every rule below is unit-tested on hand-made observations.
//!
//! - One socket per fd; fds sharing an inode are one socket (`socket_id` = inode), the later
//!   ones marked `dup_of` the lowest.
//! - Roles: a TCP/unix listener is `listener`; a TCP connection whose local address is one the
//!   process listens on is `accepted`, other connections `client`; a unix socket carrying the
//!   name of one of the process's listeners is `accepted`; unnamed unix pairs within the
//!   process are `pair`.
//! - Times come from the kernel's TCP clocks (`tcp_info`), which only give LOWER bounds: a
//!   socket is at least as old as its oldest activity, a CLOSE_WAIT socket's peer hung up at
//!   least as long ago as the last segment it sent (its FIN carries an ACK, and nothing but ACKs
//!   follow it). [`History`] tightens them across looks (`fdguard watch`). A connection reset
//!   into CLOSE keeps no date at all: one look leaves its hang-up time unknown.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;

use fdguard_diag::tcp_info::state as kstate;
use fdguard_diag::{Address, FdSocket, InetSocket, Protocol, TcpInfo, UnixSocket, unix};
use fdguard_report::detect::peer_gone_state;
use fdguard_report::{Origin, Role, Socket, TcpActivity, TcpState};

use super::collect::{Fallback, Observation};

/// What earlier looks at the same process saw, by socket inode: when a socket was first seen,
/// since when in its current TCP state, since when with its peer gone.
#[derive(Debug, Clone, Default)]
pub struct History {
    seen: HashMap<u64, Seen>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    first_ms: u64,
    state: Option<TcpState>,
    state_ms: u64,
    gone_ms: Option<u64>,
}

impl History {
    /// Records the sockets of a look taken at `time_ms` (after [`sockets`] used the history).
    /// Sockets no longer open are forgotten.
    pub fn record(&mut self, sockets: &[Socket], time_ms: u64) {
        let mut next = HashMap::with_capacity(sockets.len());
        for s in sockets {
            let Some(inode) = s.inode else { continue };
            if next.contains_key(&inode) {
                continue; // a dup
            }
            let gone = peer_gone_state(s.tcp_state, s.role, s.peer.is_some());
            let seen = match self.seen.get(&inode) {
                Some(old) => Seen {
                    first_ms: old.first_ms,
                    state: s.tcp_state,
                    state_ms: if old.state == s.tcp_state {
                        old.state_ms
                    } else {
                        time_ms
                    },
                    gone_ms: if gone {
                        Some(old.gone_ms.unwrap_or(time_ms))
                    } else {
                        None
                    },
                },
                None => Seen {
                    first_ms: time_ms,
                    state: s.tcp_state,
                    state_ms: time_ms,
                    gone_ms: gone.then_some(time_ms),
                },
            };
            next.insert(inode, seen);
        }
        self.seen = next;
    }
}

/// Sockets built from one look, and what the reader should know about them.
#[derive(Debug)]
pub struct Built {
    /// One per socket fd, in fd order.
    pub sockets: Vec<Socket>,
    /// fds of TCP connections in CLOSE whose hang-up could not be dated.
    pub undated_close: Vec<i32>,
    /// Socket fds that could not be identified, with why.
    pub unknown: Vec<(i32, String)>,
}

/// `ip:port`, `[v6]:port` (IPv4-mapped IPv6 written as plain IPv4), as the library writes
/// addresses; `None` for the unspecified address with port 0.
pub fn inet_text(addr: &SocketAddr) -> Option<String> {
    if addr.port() == 0 && addr.ip().is_unspecified() {
        return None;
    }
    Some(match addr {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", a.port()),
            None => format!("[{}]:{}", a.ip(), a.port()),
        },
    })
}

/// The peer of an inet socket: none when the remote port is 0.
fn remote_text(addr: &SocketAddr) -> Option<String> {
    (addr.port() != 0).then(|| inet_text(addr)).flatten()
}

fn family_name(family: i32) -> String {
    match family {
        libc::AF_INET => "inet".into(),
        libc::AF_INET6 => "inet6".into(),
        libc::AF_UNIX => "unix".into(),
        libc::AF_NETLINK => "netlink".into(),
        libc::AF_PACKET => "packet".into(),
        other => format!("af{other}"),
    }
}

fn type_name(sock_type: i32) -> String {
    match sock_type & 0xf {
        libc::SOCK_STREAM => "stream".into(),
        libc::SOCK_DGRAM => "dgram".into(),
        libc::SOCK_SEQPACKET => "seqpacket".into(),
        libc::SOCK_RAW => "raw".into(),
        other => format!("type{other}"),
    }
}

/// The kernel's view of one socket, whichever way it was found.
enum View<'a> {
    Inet(&'a InetSocket),
    Unix(&'a UnixSocket),
    Copied(&'a FdSocket),
    Family(&'static str),
    Unknown(&'a str),
}

/// Local addresses the process listens on (TCP), and unix names it listens on.
struct Listeners {
    tcp: Vec<SocketAddr>,
    unix: BTreeSet<unix::UnixName>,
}

impl Listeners {
    fn of(observation: &Observation) -> Listeners {
        let mut tcp: Vec<SocketAddr> = observation
            .tcp
            .values()
            .filter(|s| s.state == kstate::LISTEN)
            .map(|s| s.local)
            .collect();
        for found in observation.fallback.values() {
            if let Fallback::Copied(c) = found
                && c.listening
                && let Some(Address::Inet(local)) = c.local
            {
                tcp.push(local);
            }
        }
        let unix = observation
            .unix
            .values()
            .filter(|s| s.state == unix::LISTEN)
            .filter_map(|s| s.name.clone())
            .collect();
        Listeners { tcp, unix }
    }

    /// True when a connection with this local address was accepted from one of our listeners
    /// (same port, and the listener's address is the same or a wildcard).
    fn accepted(&self, local: &SocketAddr) -> bool {
        let plain = |a: &SocketAddr| match a {
            SocketAddr::V6(v6) => v6
                .ip()
                .to_ipv4_mapped()
                .map(std::net::IpAddr::V4)
                .unwrap_or(std::net::IpAddr::V6(*v6.ip())),
            SocketAddr::V4(v4) => std::net::IpAddr::V4(*v4.ip()),
        };
        self.tcp.iter().any(|l| {
            l.port() == local.port() && (l.ip().is_unspecified() || plain(l) == plain(local))
        })
    }
}

/// What the kernel's TCP clocks say, in seconds, when they are meaningful.
struct Clocks {
    last_data_recv_s: Option<f64>,
    last_data_sent_s: Option<f64>,
    last_ack_recv_s: Option<f64>,
}

impl Clocks {
    fn of(info: &TcpInfo, accepted: bool) -> Clocks {
        let valid = info.timestamps_valid(accepted);
        let s = |ms: u32| valid.then(|| f64::from(ms) / 1000.0);
        Clocks {
            last_data_recv_s: s(info.last_data_recv_ms),
            last_data_sent_s: s(info.last_data_sent_ms),
            last_ack_recv_s: s(info.last_ack_recv_ms),
        }
    }

    /// The socket is at least this old: each clock counts from an event in its life.
    fn age_lower_bound(&self) -> Option<f64> {
        [
            self.last_data_recv_s,
            self.last_data_sent_s,
            self.last_ack_recv_s,
        ]
        .into_iter()
        .flatten()
        .reduce(f64::max)
    }
}

/// The TCP details shared by the dumped and the copied paths.
struct TcpFacts<'a> {
    info: Option<&'a TcpInfo>,
    state: u8,
    keepalive: Option<bool>,
    recv_queue: Option<u64>,
    send_queue: Option<u64>,
}

fn tcp_activity(facts: &TcpFacts<'_>, clocks: &Option<Clocks>) -> Option<TcpActivity> {
    let info = facts.info?;
    Some(TcpActivity {
        last_data_recv_s: clocks.as_ref().and_then(|c| c.last_data_recv_s),
        last_data_sent_s: clocks.as_ref().and_then(|c| c.last_data_sent_s),
        last_ack_recv_s: clocks.as_ref().and_then(|c| c.last_ack_recv_s),
        unacked: info.unacked,
        retransmits: u32::from(info.retransmits),
        backoff: u32::from(info.backoff),
        probes: u32::from(info.probes),
        keepalive: facts.keepalive,
        recv_queue: facts.recv_queue,
        send_queue: facts.send_queue,
        // The clocks are valid exactly when the connection was synchronized.
        handshake_completed: clocks.as_ref().map(|c| c.last_ack_recv_s.is_some()),
    })
}

/// Fills role, addresses, state and times of a TCP socket.
fn fill_tcp(
    socket: &mut Socket,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    listening: bool,
    facts: TcpFacts<'_>,
    listeners: &Listeners,
) {
    socket.local = local.as_ref().and_then(inet_text);
    socket.peer = peer.as_ref().and_then(remote_text);
    socket.tcp_state = Some(TcpState::from_kernel(facts.state));
    socket.role = if listening || facts.state == kstate::LISTEN {
        Role::Listener
    } else if socket.peer.is_none() {
        Role::Unconnected
    } else if local.is_some_and(|l| listeners.accepted(&l)) {
        Role::Accepted
    } else {
        Role::Client
    };
    if socket.role == Role::Listener {
        return; // a listener's clocks and queues mean something else (the accept queue)
    }
    let clocks = facts
        .info
        .map(|info| Clocks::of(info, socket.role == Role::Accepted));
    socket.age_s = clocks
        .as_ref()
        .and_then(Clocks::age_lower_bound)
        .unwrap_or(0.0);
    let last_ack = clocks.as_ref().and_then(|c| c.last_ack_recv_s);
    socket.state_since_s = match facts.state {
        kstate::CLOSE_WAIT | kstate::LAST_ACK | kstate::CLOSING => last_ack,
        kstate::ESTABLISHED => clocks.as_ref().and_then(Clocks::age_lower_bound),
        _ => None,
    };
    if peer_gone_state(socket.tcp_state, socket.role, socket.peer.is_some()) {
        socket.peer_closed_s = match facts.state {
            // The FIN was the peer's last word but for ACKs: it came at least this long ago.
            kstate::CLOSE_WAIT | kstate::LAST_ACK | kstate::CLOSING => last_ack,
            // A reset leaves no timestamp behind.
            _ => None,
        };
    }
    socket.tcp = tcp_activity(&facts, &clocks);
}

/// Bytes waiting to be read, as `SIOCINQ` counts them. The dump's queue is `rcv_nxt -
/// copied_seq`, which also counts the peer's FIN (one sequence number) until the program has
/// read the end of the stream; `tcp_inq` subtracts it, and so do we.
fn unread_bytes(s: &InetSocket) -> u32 {
    match s.state {
        kstate::CLOSE_WAIT | kstate::LAST_ACK | kstate::CLOSING => s.recv_queue.saturating_sub(1),
        _ => s.recv_queue,
    }
}

fn from_inet(socket: &mut Socket, s: &InetSocket, listeners: &Listeners) {
    socket.family = family_name(s.family);
    match s.protocol {
        Protocol::Tcp => {
            socket.sock_type = "stream".into();
            let listening = s.state == kstate::LISTEN;
            // The keepalive timer is armed while SO_KEEPALIVE is on and nothing else is pending
            // (inet_diag's idiag_timer 2); with no timer at all on an established connection,
            // it is off. A pending retransmit hides it.
            let keepalive = match (s.state, s.timer) {
                (kstate::ESTABLISHED | kstate::CLOSE_WAIT, 2) => Some(true),
                (kstate::ESTABLISHED, 0) => Some(false),
                _ => None,
            };
            fill_tcp(
                socket,
                Some(s.local),
                Some(s.remote),
                listening,
                TcpFacts {
                    info: s.tcp_info.as_ref(),
                    state: s.state,
                    keepalive,
                    recv_queue: Some(u64::from(unread_bytes(s))),
                    send_queue: Some(u64::from(s.send_queue)),
                },
                listeners,
            );
        }
        Protocol::Udp => {
            socket.sock_type = "dgram".into();
            socket.local = inet_text(&s.local);
            socket.peer = remote_text(&s.remote);
            socket.role = if socket.peer.is_some() {
                Role::Client
            } else {
                Role::Unconnected
            };
        }
    }
}

fn from_unix(
    socket: &mut Socket,
    s: &UnixSocket,
    observation: &Observation,
    listeners: &Listeners,
    held: &BTreeSet<u64>,
) {
    socket.family = "unix".into();
    socket.sock_type = type_name(s.sock_type);
    socket.local = s.name.as_ref().map(unix::UnixName::display);
    let peer = s
        .peer_inode
        .filter(|&i| i != 0)
        .and_then(|i| observation.unix.get(&i));
    socket.peer = peer
        .and_then(|p| p.name.as_ref())
        .map(unix::UnixName::display);
    socket.role = if s.state == unix::LISTEN {
        Role::Listener
    } else if s.name.as_ref().is_some_and(|n| listeners.unix.contains(n)) && s.peer_inode.is_some()
    {
        Role::Accepted
    } else if socket.peer.is_some() {
        Role::Client
    } else if let Some(p) = peer {
        if held.contains(&p.inode) && p.name.is_none() && s.name.is_none() {
            Role::Pair
        } else {
            Role::Connected
        }
    } else if s.peer_inode == Some(0) {
        Role::Connected // its peer was closed
    } else {
        Role::Unconnected
    };
}

fn from_copied(socket: &mut Socket, c: &FdSocket, listeners: &Listeners) {
    socket.family = family_name(c.domain);
    socket.sock_type = type_name(c.sock_type);
    let inet = |a: &Option<Address>| match a {
        Some(Address::Inet(a)) => Some(*a),
        _ => None,
    };
    if c.protocol == libc::IPPROTO_TCP && matches!(c.domain, libc::AF_INET | libc::AF_INET6) {
        let state = c.tcp_info.as_ref().map_or(kstate::CLOSE, |i| i.state);
        fill_tcp(
            socket,
            inet(&c.local),
            inet(&c.peer),
            c.listening,
            TcpFacts {
                info: c.tcp_info.as_ref(),
                state,
                keepalive: c.keepalive,
                recv_queue: c.recv_queue.map(u64::from),
                send_queue: c.send_queue.map(u64::from),
            },
            listeners,
        );
        return;
    }
    let text = |a: &Option<Address>| match a {
        Some(Address::Inet(a)) => inet_text(a),
        Some(Address::Unix(Some(name))) => Some(name.display()),
        _ => None,
    };
    socket.local = text(&c.local);
    socket.peer = text(&c.peer);
    socket.role = if c.listening {
        Role::Listener
    } else if socket.peer.is_some() {
        Role::Client
    } else {
        Role::Unconnected
    };
}

/// Builds the report sockets of one look; `history` (from earlier looks) tightens the times.
pub fn sockets(observation: &Observation, history: &History) -> Built {
    let listeners = Listeners::of(observation);
    let held: BTreeSet<u64> = observation
        .fds
        .iter()
        .filter_map(|f| f.socket_inode)
        .collect();
    let mut first_fd: BTreeMap<u64, i32> = BTreeMap::new();
    let mut built = Built {
        sockets: Vec::new(),
        undated_close: Vec::new(),
        unknown: Vec::new(),
    };
    let now = observation.time_unix_ms;
    for entry in &observation.fds {
        let Some(inode) = entry.socket_inode else {
            continue;
        };
        let view = if let Some(s) = observation.tcp.get(&inode) {
            View::Inet(s)
        } else if let Some(s) = observation.udp.get(&inode) {
            View::Inet(s)
        } else if let Some(s) = observation.unix.get(&inode) {
            View::Unix(s)
        } else {
            match observation.fallback.get(&inode) {
                Some(Fallback::Copied(c)) => View::Copied(c),
                Some(Fallback::Family(f)) => View::Family(f),
                Some(Fallback::Unknown(why)) => View::Unknown(why),
                // Closed while we looked.
                None => continue,
            }
        };
        let mut socket = Socket {
            fd: entry.fd,
            socket_id: inode,
            inode: Some(inode),
            origin: Origin::Observed,
            ..Socket::default()
        };
        match view {
            View::Inet(s) => from_inet(&mut socket, s, &listeners),
            View::Unix(s) => from_unix(&mut socket, s, observation, &listeners, &held),
            View::Copied(c) => from_copied(&mut socket, c, &listeners),
            View::Family(family) => {
                socket.family = family.to_string();
                socket.sock_type = "unknown".into();
            }
            View::Unknown(why) => {
                socket.family = "unknown".into();
                socket.sock_type = "unknown".into();
                built.unknown.push((entry.fd, why.to_string()));
            }
        }
        if let Some(seen) = history.seen.get(&inode) {
            let since = |ms: u64| now.saturating_sub(ms) as f64 / 1000.0;
            socket.age_s = socket.age_s.max(since(seen.first_ms));
            if seen.state.is_some() && seen.state == socket.tcp_state {
                let observed = since(seen.state_ms);
                socket.state_since_s =
                    Some(socket.state_since_s.map_or(observed, |k| k.max(observed)));
            }
            if let Some(gone_ms) = seen.gone_ms
                && peer_gone_state(socket.tcp_state, socket.role, socket.peer.is_some())
            {
                let observed = since(gone_ms);
                socket.peer_closed_s =
                    Some(socket.peer_closed_s.map_or(observed, |k| k.max(observed)));
            }
        }
        if socket.tcp_state == Some(TcpState::Close)
            && socket.peer.is_some()
            && socket.peer_closed_s.is_none()
        {
            built.undated_close.push(entry.fd);
        }
        match first_fd.get(&inode) {
            Some(&original) => socket.dup_of = Some(original),
            None => {
                first_fd.insert(inode, entry.fd);
            }
        }
        built.sockets.push(socket);
    }
    built
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdguard_diag::{FdEntry, ProcessInfo};

    fn observation() -> Observation {
        Observation {
            info: ProcessInfo {
                pid: 42,
                exe: Some("/bin/x".into()),
                cmdline: vec!["x".into()],
                comm: "x".into(),
                uid: 0,
                state: 'S',
                start_ticks: 1,
                uptime_s: 100.0,
                nofile: (1024, 4096),
            },
            fds: Vec::new(),
            tcp: BTreeMap::new(),
            udp: BTreeMap::new(),
            unix: BTreeMap::new(),
            fallback: BTreeMap::new(),
            has_library: false,
            other_namespace: false,
            missing_dumps: Vec::new(),
            time_unix_ms: 1_000_000,
        }
    }

    fn tcp(inode: u64, state: u8, local: &str, remote: &str, info: Option<TcpInfo>) -> InetSocket {
        InetSocket {
            family: libc::AF_INET,
            protocol: Protocol::Tcp,
            state,
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            interface: 0,
            cookie: 0,
            timer: 0,
            timer_retransmits: 0,
            timer_expires_ms: 0,
            recv_queue: 0,
            send_queue: 0,
            uid: 0,
            inode,
            shutdown: None,
            tcp_info: info,
        }
    }

    fn info(state: u8, recv_ms: u32, sent_ms: u32, ack_ms: u32) -> TcpInfo {
        TcpInfo {
            state,
            last_data_recv_ms: recv_ms,
            last_data_sent_ms: sent_ms,
            last_ack_recv_ms: ack_ms,
            bytes_acked: Some(1),
            ..TcpInfo::default()
        }
    }

    fn hold(o: &mut Observation, fd: i32, inode: u64) {
        o.fds.push(FdEntry {
            fd,
            socket_inode: Some(inode),
        });
    }

    #[test]
    fn roles_addresses_and_dates_of_tcp_sockets() {
        let mut o = observation();
        o.tcp
            .insert(1, tcp(1, kstate::LISTEN, "0.0.0.0:8080", "0.0.0.0:0", None));
        o.tcp.insert(
            2,
            tcp(
                2,
                kstate::ESTABLISHED,
                "127.0.0.1:8080",
                "127.0.0.1:40000",
                Some(info(kstate::ESTABLISHED, 500, 700, 400)),
            ),
        );
        o.tcp.insert(
            3,
            tcp(
                3,
                kstate::CLOSE_WAIT,
                "127.0.0.1:41000",
                "10.0.0.7:50051",
                Some(info(kstate::CLOSE_WAIT, 9000, 12000, 8000)),
            ),
        );
        hold(&mut o, 3, 1);
        hold(&mut o, 4, 2);
        hold(&mut o, 5, 3);
        hold(&mut o, 9, 3);
        let built = sockets(&o, &History::default());
        let s = &built.sockets;
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].role, Role::Listener);
        assert_eq!(s[0].local.as_deref(), Some("0.0.0.0:8080"));
        assert_eq!(s[0].peer, None);
        assert_eq!(s[0].tcp, None);
        assert_eq!(s[1].role, Role::Accepted);
        assert_eq!(s[1].age_s, 0.7);
        let c = &s[2];
        assert_eq!(c.role, Role::Client);
        assert_eq!(c.peer.as_deref(), Some("10.0.0.7:50051"));
        assert_eq!(c.tcp_state, Some(TcpState::CloseWait));
        assert_eq!(c.peer_closed_s, Some(8.0), "the last ACK bounds the FIN");
        assert_eq!(c.state_since_s, Some(8.0));
        assert_eq!(c.age_s, 12.0);
        assert_eq!(c.origin, Origin::Observed);
        assert_eq!(c.tcp.as_ref().unwrap().idle_s(), Some(9.0));
        assert_eq!(s[3].dup_of, Some(5));
        assert_eq!(s[3].socket_id, c.socket_id);
    }

    #[test]
    fn a_reset_connection_is_undated_on_one_look_and_dated_by_the_next() {
        let mut o = observation();
        o.fallback.insert(
            7,
            Fallback::Copied(FdSocket {
                domain: libc::AF_INET6,
                sock_type: libc::SOCK_STREAM,
                protocol: libc::IPPROTO_TCP,
                listening: false,
                local: Some(Address::Inet("[::ffff:127.0.0.1]:9000".parse().unwrap())),
                peer: Some(Address::Inet("[::ffff:127.0.0.1]:45000".parse().unwrap())),
                tcp_info: Some(info(kstate::CLOSE, 3000, 3000, 3000)),
                keepalive: Some(false),
                recv_queue: Some(0),
                send_queue: Some(0),
            }),
        );
        hold(&mut o, 6, 7);
        let mut history = History::default();
        let first = sockets(&o, &history);
        let s = &first.sockets[0];
        assert_eq!(s.family, "inet6");
        assert_eq!(s.peer.as_deref(), Some("127.0.0.1:45000"));
        assert_eq!(s.tcp_state, Some(TcpState::Close));
        assert_eq!(s.peer_closed_s, None);
        assert_eq!(first.undated_close, vec![6]);
        history.record(&first.sockets, o.time_unix_ms);
        o.time_unix_ms += 90_000;
        let later = sockets(&o, &history);
        assert_eq!(later.sockets[0].peer_closed_s, Some(90.0));
        assert!(later.undated_close.is_empty());
    }

    #[test]
    fn unix_roles() {
        let mut o = observation();
        let name = unix::UnixName::Path(b"/run/app.sock".to_vec());
        let unix_socket = |inode, state, name: Option<unix::UnixName>, peer| UnixSocket {
            inode,
            sock_type: libc::SOCK_STREAM,
            state,
            name,
            peer_inode: peer,
            recv_queue: None,
            send_queue: None,
            shutdown: None,
        };
        o.unix
            .insert(10, unix_socket(10, unix::LISTEN, Some(name.clone()), None));
        o.unix
            .insert(11, unix_socket(11, 1, Some(name.clone()), Some(99)));
        o.unix.insert(99, unix_socket(99, 1, None, Some(11))); // a client in another process
        o.unix.insert(12, unix_socket(12, 1, None, Some(13)));
        o.unix.insert(13, unix_socket(13, 1, None, Some(12)));
        o.unix.insert(14, unix_socket(14, 1, None, Some(98)));
        o.unix.insert(
            98,
            unix_socket(
                98,
                1,
                Some(unix::UnixName::Abstract(b"dbus".to_vec())),
                Some(14),
            ),
        );
        for (fd, inode) in [(3, 10), (4, 11), (5, 12), (6, 13), (7, 14)] {
            hold(&mut o, fd, inode);
        }
        let s = sockets(&o, &History::default()).sockets;
        let roles: Vec<Role> = s.iter().map(|s| s.role).collect();
        assert_eq!(
            roles,
            vec![
                Role::Listener,
                Role::Accepted,
                Role::Pair,
                Role::Pair,
                Role::Client
            ]
        );
        assert_eq!(s[0].local.as_deref(), Some("/run/app.sock"));
        assert_eq!(s[4].peer.as_deref(), Some("@dbus"));
        assert!(s.iter().all(|s| s.tcp_state.is_none()));
    }

    #[test]
    fn unknown_sockets_are_listed_and_said() {
        let mut o = observation();
        o.fallback.insert(5, Fallback::Family("netlink"));
        o.fallback
            .insert(6, Fallback::Unknown("permission denied".into()));
        hold(&mut o, 3, 5);
        hold(&mut o, 4, 6);
        hold(&mut o, 8, 77); // closed while we looked: no data at all
        let built = sockets(&o, &History::default());
        assert_eq!(built.sockets.len(), 2);
        assert_eq!(built.sockets[0].family, "netlink");
        assert_eq!(built.unknown, vec![(4, "permission denied".to_string())]);
    }

    #[test]
    fn addresses_are_written_like_the_library() {
        assert_eq!(
            inet_text(&"[::ffff:10.1.2.3]:80".parse().unwrap()).unwrap(),
            "10.1.2.3:80"
        );
        assert_eq!(inet_text(&"[::1]:80".parse().unwrap()).unwrap(), "[::1]:80");
        assert_eq!(inet_text(&"0.0.0.0:0".parse().unwrap()), None);
        assert_eq!(remote_text(&"10.0.0.1:0".parse().unwrap()), None);
    }
}
