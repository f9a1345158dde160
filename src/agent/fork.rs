//! fork(): what the child keeps and what it resets. The child's copy of the table stays (the
//! fds really are open there too); the thread, pending requests and the exit report are the
//! parent's.
//!
//! Locks: nothing fdguard takes can be left held in the child. The table, history, labels,
//! checkpoints and stack captures are lock-free; the report's one-at-a-time flag and the
//! capture stacks' busy flags are reset here (their holders are threads the child does not
//! have); the unwinder's refresh lock is taken over by pid.
//!
//! The child gets its own `fdguard` thread right here when it holds tracked sockets (a
//! PostgreSQL-style backend inherits its connection and may never call a hooked function again
//! until close(), which must stay async-signal-safe, so "the next hook" would be too late) —
//! but only if the parent's thread was running. Then the parent was multi-threaded, and glibc
//! has, before running child handlers, re-initialised the malloc arenas, stdio and loader
//! locks (posix/fork.c: `if (multiple_threads) { … __malloc_fork_unlock_child … }`), so
//! pthread_create and malloc are as safe here as anywhere in the child. A single-threaded
//! parent gets none of that reset (its fork may even run in a signal handler that interrupted
//! malloc): there the child's thread waits for its next socket. Cost: one pthread_create per
//! fork of a process that holds sockets, also when the child execs at once (vfork and
//! posix_spawn children run no fork handlers and pay nothing).

use super::{exit, signal, thread};
use crate::config;
use crate::platform::guard::Guard;
use crate::platform::{process, stack};
use crate::report;
use crate::track::table;

extern "C" fn in_child() {
    process::refresh_pid();
    table::after_fork_in_child();
    stack::after_fork_in_child();
    report::after_fork_in_child();
    let parent_had_thread = thread::forget();
    signal::forget_pending();
    exit::forget();
    if parent_had_thread
        && (table::any_live() || config::get().exit_report == config::ExitReport::Always)
        && let Some(guard) = Guard::enter()
    {
        thread::ensure_running(&guard);
    }
}

/// Registers the fork handlers (constructor).
pub fn install_handlers() {
    process::at_fork_in_child(in_child);
}
