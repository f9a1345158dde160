//! A bounded ring of recently closed client connections (fd, peer, created, closed, stack),
//! used by the duplicate-backend detector to show what came before a duplicate.
//!
//! WARNING: `push` runs on the close path: async-signal-safe, no allocation, no lock. Entries
//! are claimed with one `fetch_add` and written under a per-entry sequence counter; a reader
//! that sees an entry change under it skips that entry.

use crate::record::{PeerAddr, SocketRecord};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Ring capacity: enough to see the churn around a duplicate in a busy client, small enough
/// (≈ 150 KiB of bss, touched only as used) to leave on in production.
pub const CAPACITY: usize = 1024;

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

static RING: [Entry; CAPACITY] = [Entry::EMPTY; CAPACITY];
static NEXT: AtomicU64 = AtomicU64::new(0);

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
    let index = (NEXT.fetch_add(1, Ordering::Relaxed) as usize) % CAPACITY;
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

/// Up to `limit` most recent closed connections, newest first.
pub fn recent(limit: usize) -> Vec<ClosedRecord> {
    let next = NEXT.load(Ordering::Acquire) as usize;
    let available = next.min(CAPACITY).min(limit);
    let mut out = Vec::with_capacity(available);
    for back in 1..=available {
        let e = &RING[(next - back) % CAPACITY];
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
    out
}
