//! One `SOCK_DIAG_BY_FAMILY` dump over a `NETLINK_SOCK_DIAG` socket (netlink(7),
//! sock_diag(7)), and the little-endian-native byte reading the parsers share.
//!
//! A dump is: one request message with `NLM_F_REQUEST | NLM_F_DUMP`, then datagrams holding
//! one or more messages each, until `NLMSG_DONE` (or `NLMSG_ERROR`). Every loop here is
//! bounded: the socket has a receive timeout and a dump stops after [`MAX_MESSAGES`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::Error;
use crate::sys;

/// `NETLINK_SOCK_DIAG` (linux/netlink.h).
const NETLINK_SOCK_DIAG: i32 = 4;
/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h): the request and reply message type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`, `NLMSG_DONE` (linux/netlink.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST | NLM_F_ROOT | NLM_F_MATCH` (= `NLM_F_REQUEST | NLM_F_DUMP`).
const NLM_F_REQUEST_DUMP: u16 = 0x1 | 0x100 | 0x200;
/// Size of `struct nlmsghdr`.
const HEADER_LEN: usize = 16;
/// The kernel fills dump datagrams up to 32 KiB (`netlink_dump`); twice that never truncates.
const RECEIVE_BUFFER: usize = 64 * 1024;
/// A dump that has not ended after this many messages is abandoned (no real host has ten
/// million sockets; a misbehaving kernel or a test double must not make us loop forever).
const MAX_MESSAGES: usize = 10_000_000;
/// How long one receive may wait for the kernel.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// `NLMSG_ALIGN` / `RTA_ALIGN`: 4 bytes.
pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A native-endian u16 at `at`, if the slice is long enough.
pub(crate) fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// A native-endian u32 at `at`.
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// A native-endian u64 at `at`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The attributes (`struct rtattr`: u16 length, u16 type, payload, padded to 4) that follow a
/// fixed-size reply, as (type, payload) pairs. Stops at the first malformed one.
pub(crate) fn attributes(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let (Some(len), Some(kind)) = (u16_at(bytes, 0), u16_at(bytes, 2)) else {
            break;
        };
        let len = len as usize;
        if len < 4 || len > bytes.len() {
            break;
        }
        out.push((kind, &bytes[4..len]));
        bytes = &bytes[align4(len).min(bytes.len())..];
    }
    out
}

/// An open `NETLINK_SOCK_DIAG` socket (closed on drop).
pub(crate) struct DiagSocket {
    fd: OwnedFd,
    sequence: u32,
}

impl DiagSocket {
    /// Opens the socket. A kernel built without sock_diag (or a sandbox that forbids netlink)
    /// refuses with EPROTONOSUPPORT / EAFNOSUPPORT: reported as [`Error::Unsupported`].
    pub(crate) fn open() -> Result<DiagSocket, Error> {
        let fd = sys::netlink_socket(NETLINK_SOCK_DIAG).map_err(|e| match e.raw_os_error() {
            Some(libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT | libc::ENOSYS) => Error::Unsupported {
                what: "socket diagnostics (netlink NETLINK_SOCK_DIAG)".to_string(),
                error: e,
            },
            Some(libc::EACCES | libc::EPERM) => Error::PermissionDenied {
                what: "opening a NETLINK_SOCK_DIAG socket".to_string(),
            },
            _ => Error::Io {
                what: "opening a NETLINK_SOCK_DIAG socket".to_string(),
                error: e,
            },
        })?;
        sys::set_receive_timeout(fd.as_fd(), RECEIVE_TIMEOUT).map_err(|e| Error::Io {
            what: "setting a receive timeout on the sock_diag socket".to_string(),
            error: e,
        })?;
        Ok(DiagSocket { fd, sequence: 0 })
    }

    /// Sends one dump request (`request` is the family-specific request struct, without the
    /// netlink header) and calls `each` with the payload of every reply message. `what` names
    /// the dump in errors (`"TCP sockets"`).
    pub(crate) fn dump(
        &mut self,
        request: &[u8],
        what: &str,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), Error> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let total = HEADER_LEN + request.len();
        let mut message = Vec::with_capacity(total);
        message.extend_from_slice(&(total as u32).to_ne_bytes());
        message.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        message.extend_from_slice(&NLM_F_REQUEST_DUMP.to_ne_bytes());
        message.extend_from_slice(&sequence.to_ne_bytes());
        message.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        message.extend_from_slice(request);
        let io_error = |error: io::Error| Error::Io {
            what: format!("dumping {what} (sock_diag)"),
            error,
        };
        sys::send(self.fd.as_fd(), &message).map_err(io_error)?;

        let mut buffer = vec![0u8; RECEIVE_BUFFER];
        let mut seen = 0usize;
        loop {
            let n = sys::recv_datagram(self.fd.as_fd(), &mut buffer).map_err(io_error)?;
            if n > buffer.len() {
                return Err(io_error(io::Error::other(format!(
                    "a reply of {n} bytes did not fit the {} byte buffer",
                    buffer.len()
                ))));
            }
            if n == 0 {
                return Err(io_error(io::Error::from(io::ErrorKind::UnexpectedEof)));
            }
            let mut rest = &buffer[..n];
            while rest.len() >= HEADER_LEN {
                let len = u32_at(rest, 0).unwrap_or(0) as usize;
                let kind = u16_at(rest, 4).unwrap_or(0);
                let seq = u32_at(rest, 8).unwrap_or(0);
                if len < HEADER_LEN || len > rest.len() {
                    return Err(io_error(io::Error::other("malformed netlink message")));
                }
                let payload = &rest[HEADER_LEN..len];
                rest = &rest[align4(len).min(rest.len())..];
                if seq != sequence {
                    continue; // not an answer to this request
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let errno = -(u32_at(payload, 0).unwrap_or(0) as i32);
                        if errno == 0 {
                            continue; // an acknowledgement
                        }
                        return Err(dump_error(what, errno));
                    }
                    SOCK_DIAG_BY_FAMILY => {
                        seen += 1;
                        if seen > MAX_MESSAGES {
                            return Err(io_error(io::Error::other(
                                "the dump did not end after ten million sockets",
                            )));
                        }
                        each(payload);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// What an error answer to a dump means. ENOENT: no handler for this family/protocol (the
/// `tcp_diag`, `udp_diag` or `unix_diag` module is missing and could not be loaded).
fn dump_error(what: &str, errno: i32) -> Error {
    let error = io::Error::from_raw_os_error(errno);
    match errno {
        libc::ENOENT | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT => {
            Error::Unsupported {
                what: format!("socket diagnostics for {what}"),
                error,
            }
        }
        libc::EACCES | libc::EPERM => Error::PermissionDenied {
            what: format!("dumping {what} (sock_diag)"),
        },
        _ => Error::Io {
            what: format!("dumping {what} (sock_diag)"),
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    #[test]
    fn attributes_are_split_on_their_padded_lengths() {
        let mut bytes = attribute(1, b"abc");
        bytes.extend(attribute(4, &7u32.to_ne_bytes()));
        bytes.extend(attribute(0, b""));
        let attrs = attributes(&bytes);
        assert_eq!(
            attrs,
            vec![
                (1, &b"abc"[..]),
                (4, &7u32.to_ne_bytes()[..]),
                (0, &b""[..])
            ]
        );
    }

    #[test]
    fn malformed_attributes_stop_the_walk() {
        let mut bytes = attribute(1, b"ok");
        // Claims 200 bytes in a 8-byte tail.
        bytes.extend_from_slice(&200u16.to_ne_bytes());
        bytes.extend_from_slice(&2u16.to_ne_bytes());
        bytes.extend_from_slice(b"xxxx");
        assert_eq!(attributes(&bytes), vec![(1, &b"ok"[..])]);
        // Shorter than a header.
        assert!(attributes(&[1, 0]).is_empty());
    }

    #[test]
    fn missing_diag_modules_are_unsupported() {
        assert!(matches!(
            dump_error("UDP sockets", libc::ENOENT),
            Error::Unsupported { .. }
        ));
        assert!(matches!(
            dump_error("UDP sockets", libc::EPERM),
            Error::PermissionDenied { .. }
        ));
        assert!(matches!(
            dump_error("UDP sockets", libc::ENOBUFS),
            Error::Io { .. }
        ));
    }
}
