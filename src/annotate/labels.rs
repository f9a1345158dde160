//! Labels attached to sockets with `fdguard_label()`, keyed by socket identity (so a label never
//! follows an fd number to the next socket that gets it; dup()s of a socket share it).
//!
//! A label is per-socket data: it lives and dies with its socket, and its memory is bounded.
//! - Storage: a fixed table of [`CAPACITY`] entries, mapped on the first label and never
//!   resized, each holding the socket id, the fd the label was set through, and the label's
//!   bytes inline. Nothing is allocated after the mapping, and nothing is ever locked: every
//!   write goes to an entry its writer claimed alone (compare-and-swap on the entry's socket
//!   id) and then published; a newer label for a socket replaces the older by retiring it.
//!   Readers copy an entry under its sequence counter and retry if it changed. So a fork child
//!   can never inherit a held lock here, whatever the parent was doing (a report reading
//!   labels, another thread labelling): the previous `DashMap` made such a child hang in
//!   `fdguard_label()` or in its own exit report.
//! - Lifetime: the close path stays untouched (async-signal-safe: no lock, no allocation); the
//!   `fdguard` thread's tick reclaims the labels of sockets no longer open on any fd
//!   ([`reclaim`]), so a closed socket's label goes within a second. A writer that finds no
//!   free entry reclaims (at most every 100 ms), else takes one whose fd no longer holds its
//!   socket, else replaces the label of the oldest socket nearby.
//! - Bound: at most [`CAPACITY`] sockets labelled at once, ≈ 4.4 MiB of address space, of
//!   which only the pages holding labels are ever touched.
#![allow(unsafe_code)] // the lock-free table lives in memory it maps itself.

use crate::track::table;
use std::collections::BTreeMap;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering, fence};

/// Sockets labelled at once.
pub const CAPACITY: usize = 16_384;
/// Longest label in bytes (`FDGUARD_LABEL_MAX` in the C API).
pub const MAX_LEN: usize = 256;
/// Entries looked at for one socket id (a label lives in the window of its id's hash).
const WINDOW: usize = 32;
const WORDS: usize = MAX_LEN / 8;
/// `socket_id` of an entry claimed by a writer and not published yet.
const CLAIMED: u64 = u64::MAX;

struct Entry {
    seq: AtomicU32,
    len: AtomicU32,
    /// 0: free; [`CLAIMED`]: being written; else the labelled socket.
    socket_id: AtomicU64,
    /// Order of publication: the newest entry of a socket wins.
    stamp: AtomicU64,
    /// The fd the label was set through (reclaim's quick liveness check).
    fd: AtomicI32,
    bytes: [AtomicU64; WORDS],
}

static TABLE: AtomicPtr<Entry> = AtomicPtr::new(null_mut());
static STAMP: AtomicU64 = AtomicU64::new(1);
/// Monotonic ms of the last reclaim a writer did itself (rate limit: one per 100 ms).
static LAST_INLINE_RECLAIM: AtomicU64 = AtomicU64::new(0);

fn table_or_map() -> Option<&'static [Entry]> {
    if let Some(t) = existing() {
        return Some(t);
    }
    let size = std::mem::size_of::<Entry>() * CAPACITY;
    // SAFETY: anonymous private mapping, no pointer arguments.
    let mem = unsafe {
        libc::mmap(
            null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return None;
    }
    if TABLE
        .compare_exchange(null_mut(), mem.cast(), Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // SAFETY: our own mapping, never shared.
        unsafe { libc::munmap(mem, size) };
    }
    existing()
}

fn existing() -> Option<&'static [Entry]> {
    let ptr = TABLE.load(Ordering::Acquire);
    // SAFETY: a non-null TABLE is a live, never-unmapped mapping of CAPACITY zero-initialised
    // entries (all-zero atomics are valid).
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr, CAPACITY) })
}

fn window(socket_id: u64) -> impl Iterator<Item = usize> {
    let start = (socket_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % CAPACITY;
    (0..WINDOW).map(move |i| (start + i) % CAPACITY)
}

/// Attaches `label` (at most [`MAX_LEN`] bytes) to socket `socket_id`, open at `fd`, or
/// removes its label with `None`.
pub fn set(socket_id: u64, fd: i32, label: Option<&str>) {
    if socket_id == 0 || socket_id == CLAIMED {
        return;
    }
    let Some(entries) = (if label.is_some() {
        table_or_map()
    } else {
        existing()
    }) else {
        return;
    };
    let Some(label) = label else {
        retire_older(entries, socket_id, u64::MAX);
        return;
    };
    let bytes = &label.as_bytes()[..label.len().min(MAX_LEN)];
    let Some(index) = claim(entries, socket_id) else {
        return;
    };
    let e = &entries[index];
    e.seq.fetch_add(1, Ordering::Relaxed);
    fence(Ordering::Release);
    for (i, word) in e.bytes.iter().enumerate() {
        let mut chunk = [0u8; 8];
        let from = (i * 8).min(bytes.len());
        let to = (i * 8 + 8).min(bytes.len());
        chunk[..to - from].copy_from_slice(&bytes[from..to]);
        word.store(u64::from_ne_bytes(chunk), Ordering::Relaxed);
    }
    e.len.store(bytes.len() as u32, Ordering::Relaxed);
    e.fd.store(fd, Ordering::Relaxed);
    let stamp = STAMP.fetch_add(1, Ordering::Relaxed);
    e.stamp.store(stamp, Ordering::Relaxed);
    e.seq.fetch_add(1, Ordering::Release);
    e.socket_id.store(socket_id, Ordering::Release);
    retire_older(entries, socket_id, stamp);
}

/// Claims a free entry in `socket_id`'s window: after a reclaim if none is free, else by
/// replacing the oldest label there.
fn claim(entries: &[Entry], socket_id: u64) -> Option<usize> {
    let take_free = || {
        window(socket_id).find(|&i| {
            entries[i].socket_id.load(Ordering::Relaxed) == 0
                && entries[i]
                    .socket_id
                    .compare_exchange(0, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        })
    };
    if let Some(i) = take_free() {
        return Some(i);
    }
    let now_ms = crate::platform::clock::now_ns() / 1_000_000;
    let last = LAST_INLINE_RECLAIM.load(Ordering::Relaxed);
    if now_ms.saturating_sub(last) >= 100
        && LAST_INLINE_RECLAIM
            .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        reclaim();
        if let Some(i) = take_free() {
            return Some(i);
        }
    }
    // Between reclaims: a label whose fd no longer holds its socket most likely belongs to a
    // closed one (a socket moved by dup and then closed at its old number, whose window is
    // full, may lose its label here).
    for i in window(socket_id) {
        let owner = entries[i].socket_id.load(Ordering::Acquire);
        if !matches!(owner, 0 | CLAIMED)
            && !fd_holds(entries[i].fd.load(Ordering::Relaxed), owner)
            && entries[i]
                .socket_id
                .compare_exchange(owner, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Some(i);
        }
    }
    // Full of live labels: the oldest in the window gives way.
    for _ in 0..WINDOW {
        let oldest = window(socket_id)
            .filter(|&i| !matches!(entries[i].socket_id.load(Ordering::Relaxed), 0 | CLAIMED))
            .min_by_key(|&i| entries[i].stamp.load(Ordering::Relaxed))?;
        let owner = entries[oldest].socket_id.load(Ordering::Relaxed);
        if owner != 0
            && owner != CLAIMED
            && entries[oldest]
                .socket_id
                .compare_exchange(owner, CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Some(oldest);
        }
        if let Some(i) = take_free() {
            return Some(i);
        }
    }
    None
}

/// `fd` is open on socket `socket_id` now.
fn fd_holds(fd: i32, socket_id: u64) -> bool {
    table::get(fd).is_some_and(|r| r.socket_id == socket_id)
}

/// Frees `socket_id`'s entries published before `stamp`.
fn retire_older(entries: &[Entry], socket_id: u64, stamp: u64) {
    for i in window(socket_id) {
        let e = &entries[i];
        if e.socket_id.load(Ordering::Acquire) == socket_id
            && e.stamp.load(Ordering::Relaxed) < stamp
        {
            let _ = e
                .socket_id
                .compare_exchange(socket_id, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// A consistent copy of entry `e` if it still holds `socket_id`: (stamp, label).
fn read(e: &Entry, socket_id: u64) -> Option<(u64, String)> {
    for _ in 0..64 {
        let before = e.seq.load(Ordering::Acquire);
        if before & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        if e.socket_id.load(Ordering::Acquire) != socket_id {
            return None;
        }
        let len = (e.len.load(Ordering::Relaxed) as usize).min(MAX_LEN);
        let stamp = e.stamp.load(Ordering::Relaxed);
        let mut bytes = [0u8; MAX_LEN];
        for (i, word) in e.bytes.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        fence(Ordering::Acquire);
        if e.seq.load(Ordering::Relaxed) == before
            && e.socket_id.load(Ordering::Relaxed) == socket_id
        {
            return Some((stamp, String::from_utf8_lossy(&bytes[..len]).into_owned()));
        }
    }
    None
}

/// The label of socket `socket_id`, if any.
pub fn get(socket_id: u64) -> Option<String> {
    let entries = existing()?;
    window(socket_id)
        .filter_map(|i| read(&entries[i], socket_id))
        .max_by_key(|(stamp, _)| *stamp)
        .map(|(_, label)| label)
}

/// Forgets the labels of sockets no longer open on any fd (the `fdguard` thread's tick; a
/// writer that found no free entry). Costs a look at each label's fd, plus one walk over the
/// table when some label's fd no longer holds its socket (it may have moved by dup).
pub fn reclaim() {
    let Some(entries) = existing() else { return };
    let mut candidates = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let id = e.socket_id.load(Ordering::Acquire);
        if id == 0 || id == CLAIMED {
            continue;
        }
        if fd_holds(e.fd.load(Ordering::Relaxed), id) {
            continue;
        }
        candidates.push((i, id));
    }
    if candidates.is_empty() {
        return;
    }
    let mut live = BTreeMap::new();
    table::for_each_live(|r| {
        live.entry(r.socket_id).or_insert(r.fd);
    });
    for (i, id) in candidates {
        match live.get(&id) {
            // Moved by dup: remember where it lives now.
            Some(&fd) => entries[i].fd.store(fd, Ordering::Relaxed),
            None => {
                let _ = entries[i].socket_id.compare_exchange(
                    id,
                    0,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
    }
}

/// Labels kept now (tests).
#[cfg(test)]
fn count() -> usize {
    existing().map_or(0, |entries| {
        entries
            .iter()
            .filter(|e| !matches!(e.socket_id.load(Ordering::Relaxed), 0 | CLAIMED))
            .count()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replace_remove_and_long_labels() {
        let id = (1u64 << 40) + 7;
        set(id, -1, Some("first"));
        assert_eq!(get(id).as_deref(), Some("first"));
        set(id, -1, Some("second"));
        assert_eq!(get(id).as_deref(), Some("second"));
        let long = "x".repeat(MAX_LEN);
        set(id, -1, Some(&long));
        assert_eq!(get(id), Some(long));
        set(id, -1, None);
        assert_eq!(get(id), None);
        assert_eq!(get(id + 1), None);
    }

    #[test]
    fn a_full_window_gives_way_to_new_labels_and_stays_bounded() {
        // Far more labels than one window holds, none of them for a live socket (fd -1):
        // every set still succeeds, and the store never holds more than its capacity.
        let base = 1u64 << 50;
        for i in 0..(WINDOW as u64 * 4) {
            set(base + i * CAPACITY as u64, -1, Some("x"));
            assert_eq!(get(base + i * CAPACITY as u64).as_deref(), Some("x"));
        }
        assert!(count() <= CAPACITY);
    }
}
