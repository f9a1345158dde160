//! connect(2).
#![allow(unsafe_code)]

use super::events;
use crate::platform::errno::{ErrnoKeeper, errno};
use crate::platform::real;
use crate::track::sockaddr as addr_util;
use libc::{c_int, sockaddr, socklen_t};

/// Interposed `connect(2)`. The peer is recorded from the caller's argument, also when a
/// non-blocking connect returns EINPROGRESS or the connect fails.
///
/// # Safety
/// Same contract as `connect(2)`: `addr` points to `len` readable bytes.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::connect(fd, addr, len) };
    let result_errno = if rc == 0 { 0 } else { errno() };
    let _errno = ErrnoKeeper::save();
    // SAFETY: the caller guarantees `len` readable bytes at `addr` (or a null pointer).
    let peer = unsafe { addr_util::copy_from_caller(addr, len) };
    events::connected(fd, peer, result_errno);
    rc
}
