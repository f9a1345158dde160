//! The dup(2), dup2(2), dup3(2) and fcntl(2) (F_DUPFD, F_DUPFD_CLOEXEC) hooks: a new fd for
//! a tracked socket is recorded as a duplicate of it.
//!
//! The new fd's bookkeeping runs after the real call: the number stays occupied from the
//! kernel's implicit close (dup2 over a live fd) to our update, so no other socket can be
//! handed that number in between.
#![allow(unsafe_code)] // exported libc symbols (`no_mangle`); fcntl's argument may be a pointer.

use super::events;
use crate::platform::errno::ErrnoKeeper;
use crate::platform::real;
use libc::{c_int, c_ulong};

/// Interposed `dup(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn dup(old: c_int) -> c_int {
    let new = real::dup(old);
    if new >= 0 {
        let _errno = ErrnoKeeper::save();
        events::duplicated(old, new);
    }
    new
}

/// Interposed `dup2(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    let rc = real::dup2(old, new);
    if rc >= 0 {
        let _errno = ErrnoKeeper::save();
        events::duplicated(old, rc);
    }
    rc
}

/// Interposed `dup3(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    let rc = real::dup3(old, new, flags);
    if rc >= 0 {
        let _errno = ErrnoKeeper::save();
        events::duplicated(old, rc);
    }
    rc
}

fn after_fcntl(fd: c_int, cmd: c_int, rc: c_int) {
    if rc >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        let _errno = ErrnoKeeper::save();
        events::duplicated(fd, rc);
    }
}

/// Interposed `fcntl(2)`. C declares it variadic; on the x86-64 and AArch64 Linux ABIs the
/// optional third argument arrives in the same register as a fixed one, so we take it as a
/// plain word and pass it on untouched (an int or a pointer, depending on `cmd`).
///
/// # Safety
/// Same contract as `fcntl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::fcntl(fd, cmd, arg, false) };
    after_fcntl(fd, cmd, rc);
    rc
}

/// Interposed `fcntl64` (glibc's large-file entry point, used by code built with
/// `_FILE_OFFSET_BITS=64` / `_TIME_BITS=64`).
///
/// # Safety
/// Same contract as `fcntl(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: forwarded unchanged.
    let rc = unsafe { real::fcntl(fd, cmd, arg, true) };
    after_fcntl(fd, cmd, rc);
    rc
}
