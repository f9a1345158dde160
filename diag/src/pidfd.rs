//! A process pinned by a pidfd (`pidfd_open`, Linux 5.3): tells whether THAT process has exited
//! (not a later one that reused its pid), and reads one of its sockets directly through a copy
//! of its fd (`pidfd_getfd`, Linux 5.6; needs ptrace-attach permission over the target).
//!
//! The copy is used for sockets no sock_diag dump lists: TCP sockets in CLOSE that are in no
//! hash table any more (reset by the peer, failed connects: invisible to `ss`), sockets in
//! another network namespace, families without a dump. Only side-effect-free reads are made
//! (see the WARNING in `sys.rs`), and the copy is closed before the function returns, so the
//! target never sees a difference: while we hold it the socket has one more reference, so a
//! close by the target in that instant completes when we drop ours, microseconds later.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::Error;
use crate::procfs;
use crate::sys;
use crate::tcp_info::TcpInfo;
use crate::unix::UnixName;

/// A socket address read from a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// IPv4 or IPv6.
    Inet(SocketAddr),
    /// A unix socket's name (`None`: unnamed).
    Unix(Option<UnixName>),
    /// Another family (its number).
    Other(i32),
}

impl Address {
    /// Parses raw `struct sockaddr` bytes; `None` when too short for its family.
    pub fn from_bytes(raw: &[u8]) -> Option<Address> {
        let family = i32::from(u16::from_ne_bytes(raw.get(0..2)?.try_into().ok()?));
        let port = || Some(u16::from_be_bytes(raw.get(2..4)?.try_into().ok()?));
        Some(match family {
            libc::AF_INET => {
                let ip = raw.get(4..8)?;
                Address::Inet(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
                    port()?,
                ))
            }
            libc::AF_INET6 => {
                let ip: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
                Address::Inet(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port()?))
            }
            libc::AF_UNIX => Address::Unix(UnixName::from_sun_path(raw.get(2..).unwrap_or(&[]))),
            other => Address::Other(other),
        })
    }
}

/// What one socket fd of another process says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdSocket {
    /// `SO_DOMAIN` (`AF_INET`, `AF_UNIX`, `AF_NETLINK`, …).
    pub domain: i32,
    /// `SO_TYPE` (`SOCK_STREAM`, …).
    pub sock_type: i32,
    /// `SO_PROTOCOL` (`IPPROTO_TCP`, …).
    pub protocol: i32,
    /// `SO_ACCEPTCONN`: a listening socket.
    pub listening: bool,
    /// `getsockname`.
    pub local: Option<Address>,
    /// The peer: `getpeername`, or `SO_PEERNAME` for a TCP socket in CLOSE (which still knows
    /// the peer it had, while `getpeername` refuses).
    pub peer: Option<Address>,
    /// `TCP_INFO`, for TCP sockets.
    pub tcp_info: Option<TcpInfo>,
    /// `SO_KEEPALIVE`.
    pub keepalive: Option<bool>,
    /// `SIOCINQ`: bytes waiting to be read (TCP, not listening).
    pub recv_queue: Option<u32>,
    /// `SIOCOUTQ`: bytes not yet acknowledged (TCP, not listening).
    pub send_queue: Option<u32>,
}

/// A process, pinned for the duration of an inspection.
#[derive(Debug)]
pub struct Process {
    pid: i32,
    pidfd: Option<OwnedFd>,
    start_ticks: u64,
}

/// `SIOCINQ` / `SIOCOUTQ` (linux/sockios.h: the terminal ioctl numbers).
const SIOCINQ: libc::Ioctl = 0x541B;
const SIOCOUTQ: libc::Ioctl = 0x5411;

impl Process {
    /// Pins `pid`. Works on kernels without pidfds (before 5.3) too: exit is then told by the
    /// start time in `/proc/PID/stat`, and [`Process::socket`] is unavailable.
    pub fn open(pid: i32) -> Result<Process, Error> {
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                return Err(Error::NoSuchProcess { pid });
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && pid <= 0 => {
                return Err(Error::NoSuchProcess { pid });
            }
            Err(_) => None,
        };
        let (_, start_ticks) = procfs::state_and_start(pid)?;
        Ok(Process {
            pid,
            pidfd,
            start_ticks,
        })
    }

    /// The pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The start time read when the process was pinned (clock ticks after boot).
    pub fn start_ticks(&self) -> u64 {
        self.start_ticks
    }

    /// True once this process has exited (a zombie counts), even if its pid is reused.
    pub fn has_exited(&self) -> bool {
        if let Some(pidfd) = &self.pidfd
            && let Ok(exited) = sys::pidfd_exited(pidfd.as_fd())
        {
            return exited;
        }
        match procfs::state_and_start(self.pid) {
            Ok((state, start)) => state == 'Z' || state == 'X' || start != self.start_ticks,
            Err(_) => true,
        }
    }

    /// Reads socket fd `fd` of the process through a copy of it. `inode` is what
    /// `/proc/PID/fd` said: if the fd now holds another file, the socket was closed meanwhile
    /// ([`Error::FdClosed`]).
    pub fn socket(&self, fd: i32, inode: u64) -> Result<FdSocket, Error> {
        let Some(pidfd) = &self.pidfd else {
            return Err(Error::Unsupported {
                what: "pidfd_open (Linux 5.3)".to_string(),
                error: std::io::Error::from_raw_os_error(libc::ENOSYS),
            });
        };
        let copy = sys::pidfd_getfd(pidfd.as_fd(), fd).map_err(|e| match e.raw_os_error() {
            Some(libc::EBADF) => Error::FdClosed { fd },
            Some(libc::ESRCH) => Error::NoSuchProcess { pid: self.pid },
            Some(libc::EPERM | libc::EACCES) => Error::PermissionDenied {
                what: format!("copying fd {fd} of process {} (pidfd_getfd)", self.pid),
            },
            Some(libc::ENOSYS) => Error::Unsupported {
                what: "pidfd_getfd (Linux 5.6)".to_string(),
                error: e,
            },
            _ => Error::Io {
                what: format!("copying fd {fd} of process {} (pidfd_getfd)", self.pid),
                error: e,
            },
        })?;
        // The File owns the copy from here on: it is closed on every return path.
        let file = File::from(copy);
        let same = file.metadata().map(|m| m.ino() == inode).unwrap_or(false);
        if !same {
            return Err(Error::FdClosed { fd });
        }
        Ok(read_socket(&file))
    }
}

fn int_option(fd: &File, level: i32, name: i32) -> Option<i32> {
    let mut buf = [0u8; 4];
    let n = sys::getsockopt(fd.as_fd(), level, name, &mut buf).ok()?;
    (n == 4).then(|| i32::from_ne_bytes(buf))
}

/// Everything [`FdSocket`] holds, from our copy of the fd.
fn read_socket(fd: &File) -> FdSocket {
    let domain = int_option(fd, libc::SOL_SOCKET, libc::SO_DOMAIN).unwrap_or(-1);
    let sock_type = int_option(fd, libc::SOL_SOCKET, libc::SO_TYPE).unwrap_or(-1);
    let protocol = int_option(fd, libc::SOL_SOCKET, libc::SO_PROTOCOL).unwrap_or(-1);
    let listening = int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).unwrap_or(0) != 0;
    let local = sys::getsockname(fd.as_fd())
        .ok()
        .and_then(|raw| Address::from_bytes(&raw));
    let inet_size = match domain {
        libc::AF_INET => Some(size_of::<libc::sockaddr_in>()),
        libc::AF_INET6 => Some(size_of::<libc::sockaddr_in6>()),
        _ => None,
    };
    let peer = match sys::getpeername(fd.as_fd()) {
        Ok(raw) => Address::from_bytes(&raw),
        Err(_) => inet_size.and_then(|size| {
            // SO_PEERNAME refuses (EINVAL) a buffer longer than the address, so ask for exactly
            // the family's size.
            let mut buf = vec![0u8; size];
            let n =
                sys::getsockopt(fd.as_fd(), libc::SOL_SOCKET, libc::SO_PEERNAME, &mut buf).ok()?;
            match Address::from_bytes(&buf[..n])? {
                Address::Inet(a) if a.port() != 0 => Some(Address::Inet(a)),
                _ => None,
            }
        }),
    };
    let is_tcp = protocol == libc::IPPROTO_TCP && inet_size.is_some();
    let tcp_info = is_tcp
        .then(|| {
            let mut buf = [0u8; 512];
            let n =
                sys::getsockopt(fd.as_fd(), libc::IPPROTO_TCP, libc::TCP_INFO, &mut buf).ok()?;
            TcpInfo::parse(&buf[..n])
        })
        .flatten();
    let keepalive = int_option(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE).map(|v| v != 0);
    let queue = |request| {
        (is_tcp && !listening)
            .then(|| sys::ioctl_int(fd.as_fd(), request).ok())
            .flatten()
            .map(|v| v.max(0) as u32)
    };
    FdSocket {
        domain,
        sock_type,
        protocol,
        listening,
        local,
        peer,
        tcp_info,
        keepalive,
        recv_queue: queue(SIOCINQ),
        send_queue: queue(SIOCOUTQ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_info::state;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn inode_of(fd: &impl AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    /// How many of our fds hold socket `inode` (tests run in parallel threads, so a plain fd
    /// count would move under us; this one only moves if a copy leaked).
    fn fds_holding(inode: u64) -> usize {
        let wanted = format!("socket:[{inode}]");
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|link| link.to_string_lossy() == wanted)
            .count()
    }

    #[test]
    fn addresses() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[127, 0, 0, 1]);
        assert_eq!(
            Address::from_bytes(&v4),
            Some(Address::Inet("127.0.0.1:8080".parse().unwrap()))
        );
        assert_eq!(Address::from_bytes(&v4[..6]), None);
        let unnamed = (libc::AF_UNIX as u16).to_ne_bytes();
        assert_eq!(Address::from_bytes(&unnamed), Some(Address::Unix(None)));
    }

    /// Our own process through a pidfd: a connection reset by its peer is in CLOSE (no dump
    /// lists it) and still names its peer; no fd is left behind.
    #[test]
    fn reads_a_reset_connection_through_a_copy_of_its_fd() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        // Closing a socket with unread data aborts the connection (RST, RFC 2525 2.17).
        std::io::Write::write_all(&mut accepted, b"unread").unwrap();
        client.peek(&mut [0u8; 1]).unwrap();
        let client_addr = client.local_addr().unwrap();
        drop(client);
        let process = Process::open(std::process::id() as i32).unwrap();
        assert!(!process.has_exited());
        let inode = inode_of(&accepted);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let seen = loop {
            let seen = process.socket(accepted.as_raw_fd(), inode).unwrap();
            if seen.tcp_info.as_ref().map(|i| i.state) == Some(state::CLOSE) {
                break seen;
            }
            assert!(std::time::Instant::now() < deadline, "no reset arrived");
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(fds_holding(inode), 1, "the copies were closed");
        assert_eq!(seen.domain, libc::AF_INET);
        assert_eq!(seen.sock_type, libc::SOCK_STREAM);
        assert!(!seen.listening);
        assert_eq!(seen.peer, Some(Address::Inet(client_addr)));
        assert_eq!(
            seen.local,
            Some(Address::Inet(listener.local_addr().unwrap()))
        );
        assert!(
            crate::inet::tcp_sockets()
                .unwrap()
                .iter()
                .all(|s| s.inode != inode),
            "a reset socket is in no hash table"
        );
        // The fd number now names something else: refused, not misread.
        assert!(matches!(
            process.socket(accepted.as_raw_fd(), inode + 1),
            Err(Error::FdClosed { .. })
        ));
        assert_eq!(fds_holding(inode), 1);
    }

    #[test]
    fn a_process_that_exited_is_told_apart() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let process = Process::open(child.id() as i32).unwrap();
        child.wait().unwrap();
        assert!(process.has_exited());
    }
}
