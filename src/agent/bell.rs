//! The `fdguard` thread's doorbell: the futex word that wakes it and the state that says
//! whether it runs. The exit path and the report signal's handler ring it from here, and the
//! thread's loop (`thread`) answers them, so neither of them imports the loop that serves it.
//! Async-signal-safe: atomics and one futex call.

use crate::platform::futex;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

pub(super) const NONE: u8 = 0;
pub(super) const STARTING: u8 = 1;
pub(super) const RUNNING: u8 = 2;
pub(super) const STOPPING: u8 = 3;
/// pthread_create failed: not retried (one stderr line said so). Reset in a fork child.
pub(super) const FAILED: u8 = 4;

/// The thread's state (one of the constants above); only `thread` changes it.
pub(super) static STATE: AtomicU8 = AtomicU8::new(NONE);
/// Futex word bumped to wake the thread.
pub(super) static WAKE: AtomicU32 = AtomicU32::new(0);

/// Wakes the thread (async-signal-safe: an atomic and a futex call).
pub fn wake() {
    WAKE.fetch_add(1, Ordering::AcqRel);
    futex::wake(&WAKE);
}

/// True while the thread runs.
pub fn running() -> bool {
    STATE.load(Ordering::Acquire) == RUNNING
}
