//! accept(2), accept4(2).
#![allow(unsafe_code)]

use super::events;
use crate::platform::errno::ErrnoKeeper;
use crate::platform::real;
use crate::track::sockaddr::{self as addr_util, PeerAddr};
use libc::{c_int, sockaddr, socklen_t};

/// The peer the kernel wrote into the caller's buffer, if the caller passed one.
///
/// # Safety
/// `addr`/`len` are what the caller passed to a successful accept.
unsafe fn written_peer(addr: *mut sockaddr, len: *mut socklen_t) -> PeerAddr {
    if addr.is_null() || len.is_null() {
        return PeerAddr::NONE;
    }
    // SAFETY: `len` is non-null and was written by the kernel; the buffer at `addr` holds at
    // least min(written length, caller's original capacity) bytes — `copy_from_caller` reads at
    // most PeerAddr::CAPACITY of them and the kernel never reports more than it wrote.
    unsafe { addr_util::copy_from_caller(addr, *len) }
}

/// Interposed `accept(2)`.
///
/// # Safety
/// Same contract as `accept(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // The caller's buffer capacity, to bound what we read back (the kernel reports the full
    // address length even when it truncated the copy).
    // SAFETY: accept's contract: `len` is null or valid.
    let capacity = if len.is_null() { 0 } else { unsafe { *len } };
    // SAFETY: forwarded unchanged.
    let new_fd = unsafe { real::accept(fd, addr, len) };
    if new_fd >= 0 {
        let _errno = ErrnoKeeper::save();
        // SAFETY: see `written_peer`; we cap the length at the caller's capacity.
        let peer = unsafe { capped_peer(addr, len, capacity) };
        events::accepted(fd, new_fd, peer);
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
    // SAFETY: accept4's contract: `len` is null or valid.
    let capacity = if len.is_null() { 0 } else { unsafe { *len } };
    // SAFETY: forwarded unchanged.
    let new_fd = unsafe { real::accept4(fd, addr, len, flags) };
    if new_fd >= 0 {
        let _errno = ErrnoKeeper::save();
        // SAFETY: see `written_peer`.
        let peer = unsafe { capped_peer(addr, len, capacity) };
        events::accepted(fd, new_fd, peer);
    }
    new_fd
}

/// # Safety
/// As for `written_peer`; `capacity` is the caller's buffer size before the call.
unsafe fn capped_peer(addr: *mut sockaddr, len: *mut socklen_t, capacity: socklen_t) -> PeerAddr {
    if len.is_null() {
        return PeerAddr::NONE;
    }
    // SAFETY: `len` is non-null and valid (accept's contract).
    let written = unsafe { *len }.min(capacity);
    let mut capped = written;
    // SAFETY: `addr` holds at least `capped` bytes written by the kernel.
    unsafe { written_peer(addr, &mut capped) }
}
