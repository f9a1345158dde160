//! fdguard-diag: what the Linux kernel says about sockets, read from OUTSIDE the process that
//! holds them. Plain functions returning `Vec`s of plain structs, no dependency on fdguard's
//! library, so `fdguard inspect` uses it today and libfdguard.so could use it for bulk reads.
//!
//! - [`inet`]: every TCP (all states, with `INET_DIAG_INFO` → [`tcp_info::TcpInfo`]) and UDP
//!   socket of the network namespace, from `sock_diag`/`inet_diag` — the interface `ss` uses.
//! - [`unix`]: every unix socket, with its name, its peer's inode and its queues (`unix_diag`).
//! - [`procfs`]: `/proc/PID/fd` (fd → socket inode), the process's identity and fd limits.
//! - [`pidfd`]: a process pinned by a pidfd, and one of its sockets read through a copy of its
//!   fd (`pidfd_getfd`), for what no dump lists (TCP sockets in CLOSE, other namespaces).
//!
//! Joining them is the caller's business: a socket fd of process P is the dump entry whose
//! inode `/proc/P/fd/N` names.
//!
//! Unsafe code lives in `sys.rs` only (every block has a `SAFETY:` comment); every fd this crate
//! opens is an `OwnedFd`, closed on every path.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod inet;
mod netlink;
pub mod pidfd;
pub mod procfs;
mod sys;
pub mod tcp_info;
pub mod unix;

use std::fmt;
use std::io;

pub use inet::{InetSocket, Protocol, tcp_sockets, udp_sockets};
pub use pidfd::{Address, FdSocket, Process};
pub use procfs::{FdEntry, ProcessInfo};
pub use tcp_info::TcpInfo;
pub use unix::{UnixName, UnixSocket, unix_sockets};

/// Why a read failed.
#[derive(Debug)]
pub enum Error {
    /// The process does not exist (any more).
    NoSuchProcess {
        /// The pid asked about.
        pid: i32,
    },
    /// The kernel refused: another user's process without root, ptrace restrictions, a
    /// sandbox.
    PermissionDenied {
        /// What was refused (`reading /proc/42/fd`).
        what: String,
    },
    /// This kernel (or sandbox) lacks an interface.
    Unsupported {
        /// The interface (`the kernel's socket diagnostics (netlink NETLINK_SOCK_DIAG)`).
        what: String,
        /// The system's answer.
        error: io::Error,
    },
    /// The fd was closed (or now holds another file) since the process's fd list was read.
    FdClosed {
        /// The fd number.
        fd: i32,
    },
    /// Anything else.
    Io {
        /// What was being done.
        what: String,
        /// The system's answer.
        error: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchProcess { pid } => write!(f, "no process with pid {pid}"),
            Error::PermissionDenied { what } => write!(f, "permission denied {what}"),
            Error::Unsupported { what, error } => {
                write!(f, "this kernel does not provide {what} ({error})")
            }
            Error::FdClosed { fd } => write!(f, "fd {fd} was closed meanwhile"),
            Error::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for Error {}
