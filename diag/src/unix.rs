//! Unix-domain sockets of the whole network namespace, from `unix_diag` (linux/unix_diag.h),
//! with their bound names, the inode of their peer, queue lengths and shutdown bits. Unlike
//! TCP, every unix socket is listed, bound or not.

use crate::Error;
use crate::netlink::{DiagSocket, attributes, u32_at};

/// `UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN`.
const SHOW: u32 = 0x1 | 0x4 | 0x10;
/// Attribute types.
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_SHUTDOWN: u16 = 6;
/// Size of `struct unix_diag_msg`.
const MESSAGE_LEN: usize = 16;

/// A unix socket's bound name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnixName {
    /// A filesystem path (bytes, without the trailing NUL).
    Path(Vec<u8>),
    /// An abstract name (the bytes after the leading NUL).
    Abstract(Vec<u8>),
}

impl UnixName {
    /// Parses `sun_path` bytes as the kernel returns them (trailing NULs of a path dropped).
    /// `None` for an unnamed socket.
    pub fn from_sun_path(bytes: &[u8]) -> Option<UnixName> {
        match bytes.split_first() {
            None => None,
            Some((0, rest)) => Some(UnixName::Abstract(rest.to_vec())),
            Some(_) => {
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                Some(UnixName::Path(bytes[..end].to_vec()))
            }
        }
    }

    /// The notation fdguard reports use: the path, or `@name` for an abstract name (embedded
    /// NULs written as `@`, as `ss` does).
    pub fn display(&self) -> String {
        match self {
            UnixName::Path(path) => String::from_utf8_lossy(path).into_owned(),
            UnixName::Abstract(name) => {
                format!("@{}", String::from_utf8_lossy(name).replace('\0', "@"))
            }
        }
    }
}

/// One unix socket as `unix_diag` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixSocket {
    /// The socket's inode.
    pub inode: u64,
    /// `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`.
    pub sock_type: i32,
    /// TCP-like state numbers: 10 LISTEN, 1 ESTABLISHED (connected), 7 CLOSE (unconnected).
    pub state: u8,
    /// The name it is bound to (an accepted socket carries its listener's name).
    pub name: Option<UnixName>,
    /// The inode of its peer: `Some(0)` when the peer was closed (the kernel keeps the dead
    /// peer's reference), `None` when it has no peer.
    pub peer_inode: Option<u64>,
    /// Bytes (stream) or datagrams waiting to be read; for a listener, connections waiting to
    /// be accepted.
    pub recv_queue: Option<u32>,
    /// Bytes not yet consumed by the peer; for a listener, the backlog limit.
    pub send_queue: Option<u32>,
    /// `sk_shutdown` bits (1: no more receives, 2: no more sends); 3 on a stream socket whose
    /// peer has closed.
    pub shutdown: Option<u8>,
}

/// `state` of a listening unix socket.
pub const LISTEN: u8 = 10;

/// Every unix socket.
pub fn unix_sockets() -> Result<Vec<UnixSocket>, Error> {
    let mut socket = DiagSocket::open()?;
    let mut out = Vec::new();
    socket.dump(&request(), "unix sockets", |payload| {
        if let Some(s) = parse(payload) {
            out.push(s);
        }
    })?;
    Ok(out)
}

/// `struct unix_diag_req` for every state and inode.
fn request() -> Vec<u8> {
    let mut req = Vec::with_capacity(24);
    req.push(libc::AF_UNIX as u8);
    req.push(0); // sdiag_protocol
    req.extend_from_slice(&[0, 0]); // pad
    req.extend_from_slice(&u32::MAX.to_ne_bytes()); // udiag_states
    req.extend_from_slice(&0u32.to_ne_bytes()); // udiag_ino: all
    req.extend_from_slice(&SHOW.to_ne_bytes());
    req.extend_from_slice(&[0u8; 8]); // udiag_cookie
    req
}

fn parse(payload: &[u8]) -> Option<UnixSocket> {
    if payload.len() < MESSAGE_LEN {
        return None;
    }
    let mut socket = UnixSocket {
        inode: u64::from(u32_at(payload, 4)?),
        sock_type: i32::from(payload[1]),
        state: payload[2],
        name: None,
        peer_inode: None,
        recv_queue: None,
        send_queue: None,
        shutdown: None,
    };
    for (kind, value) in attributes(&payload[MESSAGE_LEN..]) {
        match kind {
            UNIX_DIAG_NAME => socket.name = UnixName::from_sun_path(value),
            UNIX_DIAG_PEER => socket.peer_inode = u32_at(value, 0).map(u64::from),
            UNIX_DIAG_RQLEN => {
                socket.recv_queue = u32_at(value, 0);
                socket.send_queue = u32_at(value, 4);
            }
            UNIX_DIAG_SHUTDOWN => socket.shutdown = value.first().copied(),
            _ => {}
        }
    }
    Some(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::{UnixListener, UnixStream};

    fn inode_of(fd: &impl std::os::fd::AsRawFd) -> u64 {
        std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .unwrap()
            .ino()
    }

    #[test]
    fn names() {
        assert_eq!(UnixName::from_sun_path(b""), None);
        assert_eq!(
            UnixName::from_sun_path(b"/run/x.sock\0"),
            Some(UnixName::Path(b"/run/x.sock".to_vec()))
        );
        let abstract_name = UnixName::from_sun_path(b"\0grpc\0x").unwrap();
        assert_eq!(abstract_name.display(), "@grpc@x");
    }

    /// The real kernel: a listener, a client connected to it, the accepted end and a
    /// socketpair, matched by inode, with the peer links between them.
    #[test]
    fn finds_real_unix_sockets_and_their_peers() {
        let dir = std::env::temp_dir().join(format!("fdguard-diag-unix-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let (left, right) = UnixStream::pair().unwrap();
        let all = unix_sockets().expect("the unix dump works on this kernel");
        let find = |fd: &dyn std::os::fd::AsRawFd| {
            let inode = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .unwrap()
                .ino();
            all.iter()
                .find(|s| s.inode == inode)
                .cloned()
                .unwrap_or_else(|| panic!("inode {inode} not dumped"))
        };
        let l = find(&listener);
        let c = find(&client);
        let a = find(&accepted);
        let p = find(&left);
        let path_name = UnixName::Path(path.as_os_str().as_encoded_bytes().to_vec());
        assert_eq!(l.state, LISTEN);
        assert_eq!(l.name.as_ref(), Some(&path_name));
        assert_eq!(c.peer_inode, Some(inode_of(&accepted)));
        assert_eq!(a.peer_inode, Some(inode_of(&client)));
        assert_eq!(c.name, None);
        // The accepted end carries its listener's name.
        assert_eq!(a.name.as_ref(), Some(&path_name));
        assert_eq!(p.peer_inode, Some(inode_of(&right)));
        assert_eq!(p.sock_type, libc::SOCK_STREAM);
        drop(accepted);
        let after = unix_sockets().unwrap();
        let c = after.iter().find(|s| s.inode == c.inode).unwrap();
        assert_eq!(
            c.shutdown,
            Some(3),
            "the peer closed: no more reads or writes"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
