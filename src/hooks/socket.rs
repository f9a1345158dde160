//! The socket(2), socketpair(2) and listen(2) hooks: new sockets are recorded with their
//! creating stack; a socket that listens becomes a listener.
#![allow(unsafe_code)] // exported libc symbols (`no_mangle`) with C pointers.

use super::events;
use crate::platform::errno::ErrnoKeeper;
use crate::platform::real;
use libc::c_int;

/// Interposed `socket(2)`.
///
/// # Safety
/// Same contract as `socket(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    let fd = unsafe { real::socket(domain, ty, protocol) };
    if fd >= 0 {
        let _errno = ErrnoKeeper::save();
        events::socket_created(fd, domain, ty);
    }
    fd
}

/// Interposed `socketpair(2)`.
///
/// # Safety
/// Same contract as `socketpair(2)`: `sv` points to two ints.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    protocol: c_int,
    sv: *mut c_int,
) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::socketpair(domain, ty, protocol, sv) };
    if rc == 0 && !sv.is_null() {
        let _errno = ErrnoKeeper::save();
        // SAFETY: on success the kernel wrote two fds to `sv`.
        let fds = unsafe { [*sv, *sv.add(1)] };
        events::pair_created(fds, domain, ty);
    }
    rc
}

/// Interposed `listen(2)`.
///
/// # Safety
/// Same contract as `listen(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::listen(fd, backlog) };
    if rc == 0 {
        let _errno = ErrnoKeeper::save();
        events::listening(fd);
    }
    rc
}
