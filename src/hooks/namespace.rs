//! unshare(2), setns(2): the namespace changes the kernel refuses to a multi-threaded process.
//!
//! `unshare(CLONE_NEWUSER)` (and CLONE_THREAD, CLONE_SIGHAND, CLONE_VM) fails with EINVAL in a
//! process with more than one thread (kernel/fork.c, `check_unshare_flags`), and so does
//! `setns` into a user namespace (`userns_install`) or a mount namespace (`mntns_install`:
//! the fs_struct is shared by every thread). Sandboxes that open IPC sockets first and unshare
//! after would break because of the `fdguard` thread. So around these calls the thread is
//! stopped and reaped first, and the host's call sees exactly the threads it would see without
//! fdguard. After a success it stays stopped until a hook needs it again (a socket used or
//! created); after a failure — the host has threads of its own — it is started again at once.
//! `setns(fd, 0)` may be any namespace, and a pidfd with flags may include either: both stop
//! the thread too.
#![allow(unsafe_code)] // exported libc symbols (`no_mangle`).

use super::events;
use crate::platform::errno::ErrnoKeeper;
use crate::platform::real;
use libc::c_int;

const SINGLE_THREADED_UNSHARE: c_int =
    libc::CLONE_NEWUSER | libc::CLONE_THREAD | libc::CLONE_SIGHAND | libc::CLONE_VM;

/// Interposed `unshare(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn unshare(flags: c_int) -> c_int {
    let stopped = flags & SINGLE_THREADED_UNSHARE != 0 && events::before_namespace_change();
    let rc = real::unshare(flags);
    if stopped {
        let _errno = ErrnoKeeper::save();
        events::after_namespace_change(rc == 0);
    }
    rc
}

/// Interposed `setns(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn setns(fd: c_int, nstype: c_int) -> c_int {
    let single = nstype == 0 || nstype & (libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0;
    let stopped = single && events::before_namespace_change();
    let rc = real::setns(fd, nstype);
    if stopped {
        let _errno = ErrnoKeeper::save();
        events::after_namespace_change(rc == 0);
    }
    rc
}
