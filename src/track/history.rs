//! A bounded ring of recently closed client connections (fd, peer, created, closed, stack),
//! used by the duplicate-backend detector to show what came before a duplicate.
//!
//! WARNING: `push` runs on the close path: async-signal-safe, no allocation, no lock. Entries
//! are claimed with one `fetch_add` and written under a per-entry sequence counter; a reader
//! that sees an entry change under it skips that entry.
//!
//! The ring is split into [`SHARDS`] shards picked by the closing thread, each with its own
//! counter on its own cache line: one shared counter bounced between cores when several threads
//! close connections at once (8-thread benchmark). A reader merges the shards by close time.

use super::record::SocketRecord;
use super::sockaddr::PeerAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Ring capacity (all shards): enough to see the churn around a duplicate in a busy client,
/// small enough (≈ 150 KiB of bss, touched only as used) to leave on in production. One thread
/// that closes many connections keeps its most recent CAPACITY / SHARDS.
pub const CAPACITY: usize = crate::config::HISTORY_MAX;

struct Entry {
    seq: AtomicU32,
    fd: AtomicU32,
    socket_id: AtomicU64,
    created_ns: AtomicU64,
    closed_ns: AtomicU64,
    stack_id: AtomicU32,
    peer_len: AtomicU32,
    peer: [AtomicU64; PeerAddr::WORDS],
}

impl Entry {
    // A const is the only way to initialise the static array below; each use is a fresh value,
    // which is exactly what we want here.
    #[allow(clippy::declare_interior_mutable_const)]
    const EMPTY: Entry = Entry {
        seq: AtomicU32::new(0),
        fd: AtomicU32::new(0),
        socket_id: AtomicU64::new(0),
        created_ns: AtomicU64::new(0),
        closed_ns: AtomicU64::new(0),
        stack_id: AtomicU32::new(0),
        peer_len: AtomicU32::new(0),
        peer: [const { AtomicU64::new(0) }; PeerAddr::WORDS],
    };
}

/// Shards of the ring; a thread always uses the same one.
pub const SHARDS: usize = 8;
const SHARD_LEN: usize = CAPACITY / SHARDS;

/// A shard's write counter, alone on its cache line.
#[repr(align(64))]
struct Counter(AtomicU64);

static RING: [Entry; CAPACITY] = [Entry::EMPTY; CAPACITY];
static NEXT: [Counter; SHARDS] = [const { Counter(AtomicU64::new(0)) }; SHARDS];

thread_local! {
    /// Only its address matters: it tells threads apart without a system call.
    static SHARD_KEY: u8 = const { 0 };
}

fn my_shard() -> usize {
    let addr = SHARD_KEY.with(|k| k as *const u8 as usize);
    // Thread-local blocks are page-aligned-ish and far apart: mix the higher bits.
    (addr >> 12 ^ addr >> 20) % SHARDS
}

/// A closed connection, as read back from the ring.
#[derive(Debug, Clone)]
pub struct ClosedRecord {
    pub fd: i32,
    pub socket_id: u64,
    pub created_ns: u64,
    pub closed_ns: u64,
    pub stack_id: u32,
    pub peer: PeerAddr,
}

/// Appends a closed connection. Async-signal-safe.
pub fn push(record: &SocketRecord, closed_ns: u64) {
    let shard = my_shard();
    let slot = (NEXT[shard].0.fetch_add(1, Ordering::Relaxed) as usize) % SHARD_LEN;
    let index = shard * SHARD_LEN + slot;
    let e = &RING[index];
    e.seq.fetch_add(1, Ordering::Relaxed);
    fence(Ordering::Release);
    e.fd.store(record.fd as u32, Ordering::Relaxed);
    e.socket_id.store(record.socket_id, Ordering::Relaxed);
    e.created_ns.store(record.created_ns, Ordering::Relaxed);
    e.closed_ns.store(closed_ns, Ordering::Relaxed);
    e.stack_id.store(record.stack_id, Ordering::Relaxed);
    e.peer_len.store(record.peer.len, Ordering::Relaxed);
    for (word, value) in e.peer.iter().zip(record.peer.words()) {
        word.store(value, Ordering::Relaxed);
    }
    e.seq.fetch_add(1, Ordering::Release);
}

/// How many closed connections were ever pushed (all shards): it changes exactly when one is,
/// so a reader can tell cheaply whether there is anything new.
pub fn pushed() -> u64 {
    NEXT.iter().map(|c| c.0.load(Ordering::Acquire)).sum()
}

/// Up to `limit` most recent closed connections, newest first.
pub fn recent(limit: usize) -> Vec<ClosedRecord> {
    let mut out = Vec::new();
    for (shard, counter) in NEXT.iter().enumerate() {
        let next = counter.0.load(Ordering::Acquire) as usize;
        for back in 1..=next.min(SHARD_LEN) {
            let e = &RING[shard * SHARD_LEN + (next - back) % SHARD_LEN];
            let before = e.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                continue;
            }
            let mut words = [0u64; PeerAddr::WORDS];
            for (out, word) in words.iter_mut().zip(&e.peer) {
                *out = word.load(Ordering::Relaxed);
            }
            let record = ClosedRecord {
                fd: e.fd.load(Ordering::Relaxed) as i32,
                socket_id: e.socket_id.load(Ordering::Relaxed),
                created_ns: e.created_ns.load(Ordering::Relaxed),
                closed_ns: e.closed_ns.load(Ordering::Relaxed),
                stack_id: e.stack_id.load(Ordering::Relaxed),
                peer: PeerAddr::from_words(e.peer_len.load(Ordering::Relaxed), &words),
            };
            fence(Ordering::Acquire);
            if e.seq.load(Ordering::Relaxed) == before && record.closed_ns != 0 {
                out.push(record);
            }
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.closed_ns));
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(fd: i32, closed_ns: u64) -> (SocketRecord, u64) {
        let record = SocketRecord {
            fd,
            socket_id: 1000 + fd as u64,
            ..SocketRecord::default()
        };
        (record, closed_ns)
    }

    #[test]
    fn shards_merge_newest_first_across_threads() {
        let base = 1u64 << 62; // newer than anything other tests push
        let handles: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..3 {
                        let (r, at) = closed(9000 + t * 10 + i, base + (t * 10 + i) as u64);
                        push(&r, at);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let recent: Vec<i32> = recent(12).iter().map(|c| c.fd).collect();
        let mut expected: Vec<i32> = (0..4)
            .flat_map(|t| (0..3).map(move |i| 9000 + t * 10 + i))
            .collect();
        expected.sort_by(|a, b| b.cmp(a));
        assert_eq!(recent, expected);
    }
}
