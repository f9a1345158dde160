//! The accept(2) and accept4(2) hooks: a socket accepted on a listener is recorded with its
//! peer.
//!
//! The peer comes from the kernel, never from the caller's memory: when the caller asked for
//! the address (non-NULL `addr`), the hook asks `getpeername` on the new socket, into a buffer
//! of its own. Reading the caller's buffer instead would need the caller's original capacity
//! (`*addrlen` before the call — the kernel overwrites it with the full length), and reading
//! `*addrlen` before the call dereferences a pointer the kernel has not validated yet: a bad
//! one made the hook SIGSEGV where accept returns -1/EFAULT (or EAGAIN, which comes first).
//! With a short buffer the kernel writes a truncated address; `getpeername` gives the whole
//! one. Cost: one system call per accept that asked for the address (the caller is paying
//! for one copy of it already). With a NULL `addr` nothing is read now: the report asks the
//! kernel later, as for any record without a confirmed peer.
#![allow(unsafe_code)] // an exported libc symbol (`no_mangle`) with C pointers.

use super::events;
use crate::platform::errno::ErrnoKeeper;
use crate::platform::kernel::{self, Side};
use crate::platform::real;
use crate::track::sockaddr::PeerAddr;
use libc::{c_int, sockaddr, socklen_t};

/// The peer of a freshly accepted `fd`, when the caller wanted it.
fn peer_of(fd: c_int, addr: *mut sockaddr) -> PeerAddr {
    if addr.is_null() {
        return PeerAddr::NONE;
    }
    let mut buf = [0u8; std::mem::size_of::<libc::sockaddr_storage>()];
    kernel::address_into(fd, Side::Peer, &mut buf)
        .map(|n| PeerAddr::from_bytes(&buf[..n]))
        .unwrap_or_default()
}

/// Interposed `accept(2)`.
///
/// # Safety
/// Same contract as `accept(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded unchanged.
    let new_fd = unsafe { real::accept(fd, addr, len) };
    if new_fd >= 0 {
        let _errno = ErrnoKeeper::save();
        events::accepted(fd, new_fd, peer_of(new_fd, addr));
    }
    new_fd
}

/// Interposed `accept4(2)`.
///
/// # Safety
/// Same contract as `accept4(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY: forwarded unchanged.
    let new_fd = unsafe { real::accept4(fd, addr, len, flags) };
    if new_fd >= 0 {
        let _errno = ErrnoKeeper::save();
        events::accepted(fd, new_fd, peer_of(new_fd, addr));
    }
    new_fd
}
