//! Checkpoints set with `fdguard_checkpoint()`: an id and the monotonic time it was set. A
//! socket created later and still open was opened since.

use crate::platform::clock;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Checkpoints kept (16 bytes each): the most recent ones, so an app that checkpoints per
/// request cannot grow memory without bound; older ids then answer "no such checkpoint".
pub const MAX_CHECKPOINTS: usize = 4096;

/// (id, monotonic ns when it was set), oldest first.
static CHECKPOINTS: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn list() -> std::sync::MutexGuard<'static, Vec<(u64, u64)>> {
    CHECKPOINTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets a checkpoint; returns its id (1, 2, 3, … never reused).
pub fn set() -> u64 {
    let mut list = list();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    if list.len() >= MAX_CHECKPOINTS {
        list.remove(0);
    }
    list.push((id, clock::now_ns()));
    id
}

/// When checkpoint `id` was set (monotonic ns), if it exists. A socket whose `created_ns` is
/// later was opened since: CLOCK_MONOTONIC is one clock for all threads, so a socket() that
/// returns after fdguard_checkpoint() returned always reads a later time.
pub fn time_of(id: u64) -> Option<u64> {
    list().iter().find(|c| c.0 == id).map(|c| c.1)
}

/// Every checkpoint kept, oldest first: (id, monotonic ns when set).
pub fn all() -> Vec<(u64, u64)> {
    list().clone()
}
