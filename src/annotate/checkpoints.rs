//! Checkpoints set with `fdguard_checkpoint()`: an id and the monotonic time it was set. A
//! socket created later and still open was opened since.
//!
//! Kept in a fixed ring without a lock: checkpoint `id` lives in slot `id % MAX_CHECKPOINTS`
//! until checkpoint `id + MAX_CHECKPOINTS` takes it. A writer claims its id with one
//! `fetch_add` and publishes the slot last; a reader checks the slot's id before and after
//! reading its time. A fork child can never inherit a held lock here (the `Mutex` this
//! replaces could be held by the parent's reporter at fork time).

use crate::platform::clock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Checkpoints kept (16 bytes each): the most recent ones, so an app that checkpoints per
/// request cannot grow memory without bound; older ids then answer "no such checkpoint".
pub const MAX_CHECKPOINTS: usize = 4096;

struct Slot {
    /// The checkpoint held (0: none, or being written).
    id: AtomicU64,
    at_ns: AtomicU64,
}

static RING: [Slot; MAX_CHECKPOINTS] = [const {
    Slot {
        id: AtomicU64::new(0),
        at_ns: AtomicU64::new(0),
    }
}; MAX_CHECKPOINTS];
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Sets a checkpoint; returns its id (1, 2, 3, … never reused).
pub fn set() -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let at = clock::now_ns();
    let slot = &RING[id as usize % MAX_CHECKPOINTS];
    slot.id.store(0, Ordering::Release);
    slot.at_ns.store(at, Ordering::Release);
    slot.id.store(id, Ordering::Release);
    id
}

/// When checkpoint `id` was set (monotonic ns), if it is still kept. A socket whose
/// `created_ns` is later was opened since: CLOCK_MONOTONIC is one clock for all threads, so a
/// socket() that returns after fdguard_checkpoint() returned always reads a later time.
pub fn time_of(id: u64) -> Option<u64> {
    if id == 0 {
        return None;
    }
    let slot = &RING[id as usize % MAX_CHECKPOINTS];
    if slot.id.load(Ordering::Acquire) != id {
        return None;
    }
    let at = slot.at_ns.load(Ordering::Acquire);
    (slot.id.load(Ordering::Acquire) == id).then_some(at)
}

/// Every checkpoint kept, oldest first: (id, monotonic ns when set).
pub fn all() -> Vec<(u64, u64)> {
    let newest = NEXT_ID.load(Ordering::Acquire).saturating_sub(1);
    let oldest = newest.saturating_sub(MAX_CHECKPOINTS as u64 - 1).max(1);
    (oldest..=newest)
        .filter_map(|id| time_of(id).map(|at| (id, at)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_grow_the_oldest_are_forgotten_and_all_is_in_order() {
        let first = set();
        assert!(time_of(first).is_some());
        let mut last = first;
        for _ in 0..MAX_CHECKPOINTS {
            last = set();
        }
        assert_eq!(time_of(first), None, "forgotten after MAX_CHECKPOINTS more");
        assert!(time_of(last).is_some());
        let list = all();
        assert!(list.len() <= MAX_CHECKPOINTS);
        assert!(list.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(list.last().map(|c| c.0), Some(last));
        assert_eq!(time_of(0), None);
    }
}
