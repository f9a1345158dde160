//! TCP and UDP sockets of the whole network namespace, from `inet_diag` (linux/inet_diag.h):
//! the interface `ss` uses. TCP is asked for every state a socket held by an fd can be in,
//! including CLOSE and the bound-but-inactive sockets newer kernels (6.8+) can list. Only
//! TIME_WAIT and NEW_SYN_RECV are left out: those are the kernel's mini-sockets (no inode, no
//! fd can hold one), and a busy host has hundreds of thousands of them — measured here, 130,000
//! TIME_WAIT entries made a dump take 0.6 s instead of a few ms.
//!
//! What no dump can show: a TCP socket in CLOSE that is no longer in any hash table (reset by
//! the peer, a failed connect, never bound). The kernel only dumps hashed sockets, so those are
//! invisible to `ss` too; [`crate::pidfd`] reads them through the owning process's fd instead.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::Error;
use crate::netlink::{DiagSocket, attributes, u16_at, u32_at};
use crate::tcp_info::{TcpInfo, state};

/// `INET_DIAG_INFO` (struct tcp_info), `INET_DIAG_SHUTDOWN` (u8).
const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_SHUTDOWN: u16 = 8;
/// Size of `struct inet_diag_msg` before its attributes.
const MESSAGE_LEN: usize = 72;

/// Which transport a dump covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// IPPROTO_TCP
    Tcp,
    /// IPPROTO_UDP
    Udp,
}

impl Protocol {
    fn number(self) -> u8 {
        match self {
            Protocol::Tcp => libc::IPPROTO_TCP as u8,
            Protocol::Udp => libc::IPPROTO_UDP as u8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// One TCP or UDP socket as `inet_diag` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetSocket {
    /// `AF_INET` or `AF_INET6`.
    pub family: i32,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The kernel's state number (see [`crate::tcp_info::state`]; UDP uses ESTABLISHED for
    /// connected and CLOSE for unconnected sockets).
    pub state: u8,
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (unspecified and 0 when there is none).
    pub remote: SocketAddr,
    /// Bound interface index (0: none).
    pub interface: u32,
    /// The kernel's socket cookie.
    pub cookie: u64,
    /// Pending timer: 0 none, 1 retransmit, 2 keepalive (or FIN_WAIT2), 3 TIME_WAIT, 4 zero
    /// window probe.
    pub timer: u8,
    /// Retransmits (or keepalive probes) counted by that timer.
    pub timer_retransmits: u8,
    /// Milliseconds until the timer fires.
    pub timer_expires_ms: u32,
    /// Bytes received and not read (a listener: connections waiting in the accept queue).
    pub recv_queue: u32,
    /// Bytes written and not acknowledged (a listener: the backlog limit).
    pub send_queue: u32,
    /// The owner's uid.
    pub uid: u32,
    /// The socket's inode (`socket:[N]` in /proc/PID/fd); 0 for TIME_WAIT and request
    /// sockets, which no fd holds.
    pub inode: u64,
    /// `sk_shutdown` bits (1: no more receives, 2: no more sends), when the kernel said.
    pub shutdown: Option<u8>,
    /// `INET_DIAG_INFO`, for TCP sockets that have one.
    pub tcp_info: Option<TcpInfo>,
}

/// Every TCP socket (IPv4 and IPv6, all states) with `INET_DIAG_INFO`.
pub fn tcp_sockets() -> Result<Vec<InetSocket>, Error> {
    sockets(Protocol::Tcp)
}

/// Every UDP socket (IPv4 and IPv6) the kernel's UDP hash tables hold (bound ones).
pub fn udp_sockets() -> Result<Vec<InetSocket>, Error> {
    sockets(Protocol::Udp)
}

fn sockets(protocol: Protocol) -> Result<Vec<InetSocket>, Error> {
    let mut socket = DiagSocket::open()?;
    let mut out = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        let what = format!(
            "{} sockets ({})",
            protocol.name(),
            if family == libc::AF_INET {
                "IPv4"
            } else {
                "IPv6"
            }
        );
        socket.dump(&request(family, protocol), &what, |payload| {
            if let Some(s) = parse(payload, protocol) {
                out.push(s);
            }
        })?;
    }
    Ok(out)
}

/// `struct inet_diag_req_v2` asking for every state, with `INET_DIAG_INFO` for TCP.
fn request(family: i32, protocol: Protocol) -> Vec<u8> {
    let mut req = Vec::with_capacity(56);
    req.push(family as u8);
    req.push(protocol.number());
    // idiag_ext: bit (INET_DIAG_INFO - 1).
    req.push(if protocol == Protocol::Tcp {
        1 << (INET_DIAG_INFO - 1)
    } else {
        0
    });
    req.push(0);
    let states = if protocol == Protocol::Tcp {
        !((1u32 << state::TIME_WAIT) | (1u32 << state::NEW_SYN_RECV))
    } else {
        u32::MAX
    };
    req.extend_from_slice(&states.to_ne_bytes()); // idiag_states
    req.extend_from_slice(&[0u8; 48]); // struct inet_diag_sockid: no filter
    req
}

fn address(family: u8, raw: &[u8], port: u16) -> Option<SocketAddr> {
    let ip = match i32::from(family) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
        libc::AF_INET6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&raw[..16]).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses one `struct inet_diag_msg` and its attributes.
fn parse(payload: &[u8], protocol: Protocol) -> Option<InetSocket> {
    if payload.len() < MESSAGE_LEN {
        return None;
    }
    let family = payload[0];
    let port = |at: usize| u16_at(payload, at).map(u16::from_be);
    let local = address(family, &payload[8..24], port(4)?)?;
    let remote = address(family, &payload[24..40], port(6)?)?;
    let cookie = u64::from(u32_at(payload, 44)?) | (u64::from(u32_at(payload, 48)?) << 32);
    let mut socket = InetSocket {
        family: i32::from(family),
        protocol,
        state: payload[1],
        local,
        remote,
        interface: u32_at(payload, 40)?,
        cookie,
        timer: payload[2],
        timer_retransmits: payload[3],
        timer_expires_ms: u32_at(payload, 52)?,
        recv_queue: u32_at(payload, 56)?,
        send_queue: u32_at(payload, 60)?,
        uid: u32_at(payload, 64)?,
        inode: u64::from(u32_at(payload, 68)?),
        shutdown: None,
        tcp_info: None,
    };
    for (kind, value) in attributes(&payload[MESSAGE_LEN..]) {
        match kind {
            INET_DIAG_INFO if protocol == Protocol::Tcp => socket.tcp_info = TcpInfo::parse(value),
            INET_DIAG_SHUTDOWN => socket.shutdown = value.first().copied(),
            _ => {}
        }
    }
    Some(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    use std::net::{TcpListener, TcpStream};
    use std::os::unix::fs::MetadataExt;

    fn inode_of(stream: &impl std::os::fd::AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", stream.as_raw_fd()))
            .unwrap()
            .ino()
    }

    #[test]
    fn request_asks_for_every_state_an_fd_can_hold_and_tcp_info() {
        let req = request(libc::AF_INET6, Protocol::Tcp);
        assert_eq!(req.len(), 56);
        assert_eq!(req[0], libc::AF_INET6 as u8);
        assert_eq!(req[1], libc::IPPROTO_TCP as u8);
        assert_eq!(req[2], 0b10);
        let states = u32::from_ne_bytes(req[4..8].try_into().unwrap());
        for held in [
            state::ESTABLISHED,
            state::SYN_SENT,
            state::CLOSE,
            state::CLOSE_WAIT,
            state::LISTEN,
            state::LAST_ACK,
            state::FIN_WAIT1,
            13, // TCP_BOUND_INACTIVE (Linux 6.8)
        ] {
            assert!(states & (1 << held) != 0, "state {held}");
        }
        assert_eq!(states & (1 << state::TIME_WAIT), 0);
        assert_eq!(states & (1 << state::NEW_SYN_RECV), 0);
        let udp = request(libc::AF_INET, Protocol::Udp);
        assert_eq!(udp[2], 0);
        assert_eq!(&udp[4..8], &u32::MAX.to_ne_bytes());
    }

    #[test]
    fn parses_a_handmade_message() {
        let mut msg = vec![0u8; MESSAGE_LEN];
        msg[0] = libc::AF_INET as u8;
        msg[1] = state::CLOSE_WAIT;
        msg[2] = 2;
        msg[4..6].copy_from_slice(&40000u16.to_be_bytes());
        msg[6..8].copy_from_slice(&50051u16.to_be_bytes());
        msg[8..12].copy_from_slice(&[127, 0, 0, 1]);
        msg[24..28].copy_from_slice(&[10, 0, 0, 7]);
        msg[56..60].copy_from_slice(&5u32.to_ne_bytes());
        msg[68..72].copy_from_slice(&123456u32.to_ne_bytes());
        let mut info = vec![0u8; 232];
        info[0] = state::CLOSE_WAIT;
        let len = (4 + info.len()) as u16;
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&INET_DIAG_INFO.to_ne_bytes());
        msg.extend_from_slice(&info);
        let s = parse(&msg, Protocol::Tcp).unwrap();
        assert_eq!(s.local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.remote, "10.0.0.7:50051".parse().unwrap());
        assert_eq!(s.state, state::CLOSE_WAIT);
        assert_eq!(s.timer, 2);
        assert_eq!(s.recv_queue, 5);
        assert_eq!(s.inode, 123456);
        assert_eq!(s.tcp_info.unwrap().state, state::CLOSE_WAIT);
        assert!(parse(&msg[..40], Protocol::Tcp).is_none());
    }

    /// The real kernel: a loopback connection whose server side hung up is found, by inode, in
    /// CLOSE_WAIT, with its listener, queue and TCP_INFO.
    #[test]
    fn finds_a_real_close_wait_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"unread").unwrap();
        drop(server);
        // Wait (bounded) until the FIN has arrived: a read returns the data, then EOF.
        let mut buf = [0u8; 6];
        client.read_exact(&mut buf).unwrap();
        let client_inode = inode_of(&client);
        let listener_inode = inode_of(&listener);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            let all = tcp_sockets().expect("the TCP dump works on this kernel");
            let client_seen = all.iter().find(|s| s.inode == client_inode).cloned();
            let listener_seen = all.iter().find(|s| s.inode == listener_inode).cloned();
            if let (Some(c), Some(l)) = (client_seen, listener_seen)
                && c.state != state::ESTABLISHED
            {
                break (c, l);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the client never left ESTABLISHED"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let (c, l) = found;
        assert_eq!(c.state, state::CLOSE_WAIT);
        assert_eq!(c.local, client.local_addr().unwrap());
        assert_eq!(c.remote, listener.local_addr().unwrap());
        assert_eq!(l.state, state::LISTEN);
        assert_eq!(c.family, libc::AF_INET);
        let info = c.tcp_info.expect("INET_DIAG_INFO for a TCP socket");
        assert_eq!(info.state, c.state);
        assert!(info.bytes_received.unwrap_or(0) >= 6);
    }
}
