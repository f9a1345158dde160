//! fork(): what the child keeps and what it resets. The child's copy of the table stays (the
//! fds really are open there too); the thread, pending requests and the exit report are the
//! parent's.
#![allow(unsafe_code)]

use super::{exit, signal, thread};
use crate::platform::process;
use crate::report;
use crate::track::table;

extern "C" fn in_child() {
    process::refresh_pid();
    table::after_fork_in_child();
    report::after_fork_in_child();
    thread::forget();
    signal::forget_pending();
    exit::forget();
}

/// Registers the fork handlers (constructor).
pub fn install_handlers() {
    // SAFETY: `in_child` is a valid extern "C" fn; null prepare/parent handlers are allowed.
    unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
}
