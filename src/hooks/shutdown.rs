//! The shutdown(2) hook: a socket shut down is recorded as such (which direction, when).
#![allow(unsafe_code)] // an exported libc symbol (`no_mangle`).

use super::events;
use crate::platform::errno::ErrnoKeeper;
use crate::platform::real;
use libc::c_int;

/// Interposed `shutdown(2)`.
///
/// # Safety
/// Same contract as `shutdown(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::shutdown(fd, how) };
    if rc == 0 {
        let _errno = ErrnoKeeper::save();
        events::shut_down(fd, how);
    }
    rc
}
