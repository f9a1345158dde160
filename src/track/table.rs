//! The fd table: one slot per fd number, holding that fd's socket record inline.
//!
//! Layout: a static directory of chunk pointers; each chunk holds [`CHUNK_SLOTS`] slots and is
//! `mmap`ed the first time a socket lands in its range (fdsan's lazily mapped overflow table).
//! Every slot field is an atomic, so concurrent access is never undefined behaviour; a per-slot
//! sequence counter (a seqlock) lets the reporter copy a consistent record without blocking
//! anybody.
//!
//! WARNING — the close path (`retire`, `retire_range`) is async-signal-safe and must stay so:
//! no allocation, no lock, no logging, no syscall but `clock_gettime` (vDSO). It may run in a
//! signal handler, in a thread that is inside our own code, or concurrently with anything.
//!
//! Ordering rule (heaptrack's free ordering, bionic's fdtrack): a record is retired BEFORE the
//! real close, and published AFTER the real creating call. The kernel hands out the same number
//! only after the real close, so a socket() on another thread that receives the number can never
//! have its fresh record erased by the closer.
#![allow(unsafe_code)] // the lock-free fd table lives in chunks it maps itself.

use super::record::{Origin, Role, SocketRecord, TcpSeen};
use super::sockaddr::PeerAddr;
use std::ptr::null_mut;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// Slots per chunk. 1024 × 232 bytes ≈ 232 KiB mapped per 1024 fd numbers in use.
pub const CHUNK_SLOTS: usize = 1024;
/// Highest fd number + 1 that can be tracked: 2^24 covers Linux's default
/// `/proc/sys/fs/nr_open` (2^20) sixteen times over. The directory costs 128 KiB of bss that is
/// only touched where chunks exist.
pub const MAX_TRACKED_FD: usize = 1 << 24;
const DIR_LEN: usize = MAX_TRACKED_FD / CHUNK_SLOTS;

const LIVE_EMPTY: u32 = 0;
const LIVE_TRACKED: u32 = 1;
const LIVE_IGNORED: u32 = 2;

/// One fd number's record. All-zero bytes are a valid empty slot (mmap gives zeroed pages).
#[repr(C)]
pub struct Slot {
    seq: AtomicU32,
    live: AtomicU32,
    socket_id: AtomicU64,
    created_ns: AtomicU64,
    stack_id: AtomicU32,
    tid: AtomicU32,
    family: AtomicU32,
    sock_type: AtomicU32,
    role: AtomicU32,
    origin: AtomicU32,
    creator_pid: AtomicU32,
    dup_of: AtomicI32,
    connect_ns: AtomicU64,
    connect_errno: AtomicU32,
    shutdown_how: AtomicU32,
    shutdown_ns: AtomicU64,
    peer_closed_ns: AtomicU64,
    /// Written by the watcher only (`set_tcp_seen`), like `peer_closed_ns`: 8 bytes that take
    /// the slot from 224 to 232 bytes (the budget is 240; issue 7's target < 300 per socket).
    tcp_seen: AtomicU64,
    thread_name: [AtomicU64; 2],
    peer_len: AtomicU32,
    peer: [AtomicU64; PeerAddr::WORDS],
}

struct Chunk {
    slots: [Slot; CHUNK_SLOTS],
}

static DIRECTORY: [AtomicPtr<Chunk>; DIR_LEN] = [const { AtomicPtr::new(null_mut()) }; DIR_LEN];
/// One past the highest directory index that has a chunk (bounds every scan).
static CHUNKS_END: AtomicUsize = AtomicUsize::new(0);
static NEXT_SOCKET_ID: AtomicU64 = AtomicU64::new(1);
/// Records that could not be stored (fd above MAX_TRACKED_FD or chunk mapping failed).
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// This process created (or accepted, or dup'ed) a socket itself: drives the exit report.
static HELD_A_SOCKET: AtomicBool = AtomicBool::new(false);

fn chunk(index: usize) -> Option<&'static Chunk> {
    let ptr = DIRECTORY.get(index)?.load(Ordering::Acquire);
    // SAFETY: non-null directory entries point to a mapped, zero-initialised Chunk that is
    // never unmapped (chunks live for the whole process).
    (!ptr.is_null()).then(|| unsafe { &*ptr })
}

/// The slot for `fd` if its chunk exists. Async-signal-safe.
#[inline]
fn slot(fd: i32) -> Option<&'static Slot> {
    let fd = usize::try_from(fd).ok()?;
    chunk(fd / CHUNK_SLOTS).map(|c| &c.slots[fd % CHUNK_SLOTS])
}

/// The slot for `fd`, mapping its chunk if needed (creation path only).
fn slot_or_map(fd: i32) -> Option<&'static Slot> {
    let fd = usize::try_from(fd).ok().filter(|&fd| fd < MAX_TRACKED_FD)?;
    let index = fd / CHUNK_SLOTS;
    if let Some(c) = chunk(index) {
        return Some(&c.slots[fd % CHUNK_SLOTS]);
    }
    let size = std::mem::size_of::<Chunk>();
    // SAFETY: anonymous private mapping; no pointer arguments. mmap is a plain syscall wrapper.
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
    let fresh = mem.cast::<Chunk>();
    match DIRECTORY[index].compare_exchange(null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => {
            CHUNKS_END.fetch_max(index + 1, Ordering::AcqRel);
        }
        Err(_) => {
            // Another thread installed the chunk first; ours was never shared.
            // SAFETY: `mem` is our own mapping of `size` bytes, unused by anyone.
            unsafe { libc::munmap(mem, size) };
        }
    }
    chunk(index).map(|c| &c.slots[fd % CHUNK_SLOTS])
}

impl Slot {
    #[inline]
    fn begin_write(&self) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
    }

    #[inline]
    fn end_write(&self) {
        self.seq.fetch_add(1, Ordering::Release);
    }

    fn store(&self, r: &SocketRecord) {
        self.socket_id.store(r.socket_id, Ordering::Relaxed);
        self.created_ns.store(r.created_ns, Ordering::Relaxed);
        self.stack_id.store(r.stack_id, Ordering::Relaxed);
        self.tid.store(r.tid as u32, Ordering::Relaxed);
        self.family.store(r.family as u32, Ordering::Relaxed);
        self.sock_type.store(r.sock_type as u32, Ordering::Relaxed);
        self.role.store(r.role as u32, Ordering::Relaxed);
        self.origin.store(r.origin as u32, Ordering::Relaxed);
        self.creator_pid
            .store(r.creator_pid as u32, Ordering::Relaxed);
        self.dup_of.store(r.dup_of, Ordering::Relaxed);
        self.connect_ns.store(r.connect_ns, Ordering::Relaxed);
        self.connect_errno
            .store(r.connect_errno as u32, Ordering::Relaxed);
        self.shutdown_how.store(r.shutdown_how, Ordering::Relaxed);
        self.shutdown_ns.store(r.shutdown_ns, Ordering::Relaxed);
        self.peer_closed_ns
            .store(r.peer_closed_ns, Ordering::Relaxed);
        self.tcp_seen.store(r.tcp_seen.0, Ordering::Relaxed);
        for (word, value) in self.thread_name.iter().zip(words16(&r.thread_name)) {
            word.store(value, Ordering::Relaxed);
        }
        self.store_peer(&r.peer);
    }

    fn store_peer(&self, peer: &PeerAddr) {
        self.peer_len.store(peer.len, Ordering::Relaxed);
        for (word, value) in self.peer.iter().zip(peer.words()) {
            word.store(value, Ordering::Relaxed);
        }
    }

    fn load(&self, fd: i32) -> SocketRecord {
        let mut name = [0u64; 2];
        for (out, word) in name.iter_mut().zip(&self.thread_name) {
            *out = word.load(Ordering::Relaxed);
        }
        let mut peer_words = [0u64; PeerAddr::WORDS];
        for (out, word) in peer_words.iter_mut().zip(&self.peer) {
            *out = word.load(Ordering::Relaxed);
        }
        SocketRecord {
            fd,
            socket_id: self.socket_id.load(Ordering::Relaxed),
            created_ns: self.created_ns.load(Ordering::Relaxed),
            stack_id: self.stack_id.load(Ordering::Relaxed),
            tid: self.tid.load(Ordering::Relaxed) as i32,
            family: self.family.load(Ordering::Relaxed) as i32,
            sock_type: self.sock_type.load(Ordering::Relaxed) as i32,
            role: Role::from_u32(self.role.load(Ordering::Relaxed)),
            origin: Origin::from_u32(self.origin.load(Ordering::Relaxed)),
            creator_pid: self.creator_pid.load(Ordering::Relaxed) as i32,
            dup_of: self.dup_of.load(Ordering::Relaxed),
            connect_ns: self.connect_ns.load(Ordering::Relaxed),
            connect_errno: self.connect_errno.load(Ordering::Relaxed) as i32,
            shutdown_how: self.shutdown_how.load(Ordering::Relaxed),
            shutdown_ns: self.shutdown_ns.load(Ordering::Relaxed),
            peer_closed_ns: self.peer_closed_ns.load(Ordering::Relaxed),
            tcp_seen: TcpSeen(self.tcp_seen.load(Ordering::Relaxed)),
            thread_name: bytes16(name),
            peer: PeerAddr::from_words(self.peer_len.load(Ordering::Relaxed), &peer_words),
            ignored: self.live.load(Ordering::Relaxed) == LIVE_IGNORED,
        }
    }

    /// Seqlock read: a consistent copy, or `None` when the slot is empty (or kept changing).
    fn read(&self, fd: i32) -> Option<SocketRecord> {
        for _ in 0..64 {
            let before = self.seq.load(Ordering::Acquire);
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            if self.live.load(Ordering::Relaxed) == LIVE_EMPTY {
                return None;
            }
            let record = self.load(fd);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                return Some(record);
            }
        }
        None
    }
}

fn words16(bytes: &[u8; 16]) -> [u64; 2] {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    lo.copy_from_slice(&bytes[..8]);
    hi.copy_from_slice(&bytes[8..]);
    [u64::from_ne_bytes(lo), u64::from_ne_bytes(hi)]
}

fn bytes16(words: [u64; 2]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&words[0].to_ne_bytes());
    out[8..].copy_from_slice(&words[1].to_ne_bytes());
    out
}

/// Socket ids a thread takes from the global counter at a time: one shared counter written on
/// every socket() bounced its cache line between cores (8-thread benchmark).
const ID_BLOCK: u64 = 256;

thread_local! {
    /// This thread's current block of ids: (next, end). Const-initialised, no destructor.
    static ID_RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// A fresh socket identity, unique in the process (not ordered across threads: creation order
/// is `created_ns`, which checkpoints use).
pub fn next_socket_id() -> u64 {
    ID_RANGE.with(|range| {
        let (mut next, mut end) = range.get();
        if next == end {
            next = NEXT_SOCKET_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
            end = next + ID_BLOCK;
        }
        range.set((next + 1, end));
        next
    })
}

/// Publishes `record` for `record.fd` (creation path: after the real call succeeded).
pub fn publish(_guard: &crate::platform::guard::Guard, record: &SocketRecord) -> bool {
    publish_record(record)
}

/// Publishes a copy of `old`'s record at `new` (dup family, after the real call). Returns
/// false when `old` is not tracked. Async-signal-safe and callable without the guard: atomics
/// only, plus one `mmap` when `new`'s chunk does not exist yet (see `events::duplicated`).
pub fn publish_dup(old: i32, new: i32) -> bool {
    let Some(source) = get(old) else {
        return false;
    };
    publish_record(&SocketRecord {
        fd: new,
        dup_of: old,
        ..source
    })
}

fn publish_record(record: &SocketRecord) -> bool {
    let Some(slot) = slot_or_map(record.fd) else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    slot.begin_write();
    slot.store(record);
    slot.live.store(LIVE_TRACKED, Ordering::Relaxed);
    slot.end_write();
    // Load first: an unconditional store on every publish would bounce this cache line
    // between cores (the 8-thread benchmark showed it).
    if record.origin == Origin::Created && !HELD_A_SOCKET.load(Ordering::Relaxed) {
        HELD_A_SOCKET.store(true, Ordering::Relaxed);
    }
    true
}

/// A consistent copy of `fd`'s record, if tracked.
pub fn get(fd: i32) -> Option<SocketRecord> {
    slot(fd)?.read(fd)
}

/// The part of a record that connect(), listen() and shutdown() change, as [`update`] hands it
/// to its caller: identity fields are never rewritten after creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    pub role: Role,
    pub connect_ns: u64,
    pub connect_errno: i32,
    pub shutdown_how: u32,
    pub shutdown_ns: u64,
    /// A peer address to record (write-only: `None` leaves the recorded one).
    pub new_peer: Option<PeerAddr>,
}

/// Applies `change` to `fd`'s lifecycle fields if it is tracked (connect, listen, shutdown).
/// Reads and writes only those fields: connect() used to copy the whole record twice (read,
/// clone, compare), about 500 instructions per call.
pub fn update(
    _guard: &crate::platform::guard::Guard,
    fd: i32,
    change: impl FnOnce(&mut Lifecycle),
) -> bool {
    let Some(slot) = slot(fd) else { return false };
    if slot.live.load(Ordering::Acquire) == LIVE_EMPTY {
        return false;
    }
    // Not under the sequence counter: only the thread that owns `fd` changes these fields
    // (a concurrent connect() on one fd is a race in the host whichever value wins), and a
    // reader that copies the record meanwhile is protected by the write below.
    let before = Lifecycle {
        role: Role::from_u32(slot.role.load(Ordering::Relaxed)),
        connect_ns: slot.connect_ns.load(Ordering::Relaxed),
        connect_errno: slot.connect_errno.load(Ordering::Relaxed) as i32,
        shutdown_how: slot.shutdown_how.load(Ordering::Relaxed),
        shutdown_ns: slot.shutdown_ns.load(Ordering::Relaxed),
        new_peer: None,
    };
    let mut after = before;
    change(&mut after);
    if after == before {
        return true;
    }
    slot.begin_write();
    slot.role.store(after.role as u32, Ordering::Relaxed);
    slot.connect_ns.store(after.connect_ns, Ordering::Relaxed);
    slot.connect_errno
        .store(after.connect_errno as u32, Ordering::Relaxed);
    slot.shutdown_how
        .store(after.shutdown_how, Ordering::Relaxed);
    slot.shutdown_ns.store(after.shutdown_ns, Ordering::Relaxed);
    if let Some(peer) = &after.new_peer {
        slot.store_peer(peer);
    }
    slot.end_write();
    true
}

/// `fd`'s address family and socket type, if tracked (accept() copies its listener's). Two
/// loads: they never change while the record lives.
pub fn family_and_type(fd: i32) -> Option<(i32, i32)> {
    let slot = slot(fd)?;
    if slot.live.load(Ordering::Acquire) == LIVE_EMPTY {
        return None;
    }
    Some((
        slot.family.load(Ordering::Relaxed) as i32,
        slot.sock_type.load(Ordering::Relaxed) as i32,
    ))
}

/// Marks `fd` as not to be reported (C API: an fd the app knows is long-lived).
pub fn set_ignored(fd: i32, ignored: bool) -> bool {
    let Some(slot) = slot(fd) else { return false };
    let (from, to) = if ignored {
        (LIVE_TRACKED, LIVE_IGNORED)
    } else {
        (LIVE_IGNORED, LIVE_TRACKED)
    };
    match slot
        .live
        .compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed)
    {
        Ok(_) => true,
        Err(current) => current == to,
    }
}

/// Records when the watcher first saw `fd`'s peer gone (`0` clears it). Only applied while the
/// slot still holds `socket_id`, so a reused fd number is never marked.
pub fn set_peer_closed(fd: i32, socket_id: u64, when_ns: u64) {
    let Some(slot) = slot(fd) else { return };
    if slot.socket_id.load(Ordering::Acquire) != socket_id
        || slot.live.load(Ordering::Relaxed) == LIVE_EMPTY
    {
        return;
    }
    if when_ns == 0 {
        slot.peer_closed_ns.store(0, Ordering::Relaxed);
    } else if slot
        .peer_closed_ns
        .compare_exchange(0, when_ns, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
        && (slot.socket_id.load(Ordering::Acquire) != socket_id
            || slot.live.load(Ordering::Relaxed) == LIVE_EMPTY)
    {
        // The number was closed and reused between the check above and the store: the mark
        // landed on the new socket's fresh record, which would become a false peer_closed
        // finding. Take it back (only if it is still ours).
        let _ =
            slot.peer_closed_ns
                .compare_exchange(when_ns, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Records the TCP state the watcher saw on `fd` and its entry date, replacing `before` (what
/// the caller read; a concurrent change wins). Like [`set_peer_closed`], only applied while the
/// slot still holds `socket_id`, and taken back if the number was reused meanwhile.
pub fn set_tcp_seen(fd: i32, socket_id: u64, before: TcpSeen, seen: TcpSeen) {
    let Some(slot) = slot(fd) else { return };
    if slot.socket_id.load(Ordering::Acquire) != socket_id
        || slot.live.load(Ordering::Relaxed) == LIVE_EMPTY
    {
        return;
    }
    if slot
        .tcp_seen
        .compare_exchange(before.0, seen.0, Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
        && (slot.socket_id.load(Ordering::Acquire) != socket_id
            || slot.live.load(Ordering::Relaxed) == LIVE_EMPTY)
    {
        // Reused between the check and the store: a fresh record starts with NONE.
        let _ = slot.tcp_seen.compare_exchange(
            seen.0,
            TcpSeen::NONE.0,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }
}

/// Retires `fd`'s record because `fd` is about to be closed (or replaced by dup2/dup3).
/// Async-signal-safe; see the module WARNING.
#[inline]
pub fn retire(fd: i32) {
    let Some(slot) = slot(fd) else { return };
    if slot.live.load(Ordering::Relaxed) == LIVE_EMPTY {
        return;
    }
    retire_slot(fd, slot);
}

fn retire_slot(fd: i32, slot: &Slot) {
    // Only client connections go to the history: check the role word before copying the
    // whole record (most closes on a busy server are of accepted sockets or files).
    let maybe_client = slot.role.load(Ordering::Relaxed) == Role::Client as u32
        && slot.peer_len.load(Ordering::Relaxed) > 0;
    if let Some(record) = maybe_client
        .then(|| slot.read(fd))
        .flatten()
        .filter(|r| r.role == Role::Client && r.peer.len > 0 && !r.ignored)
    {
        super::history::push(&record, crate::platform::clock::now_ns());
    }
    slot.begin_write();
    slot.live.store(LIVE_EMPTY, Ordering::Relaxed);
    slot.end_write();
}

/// Retires every record with `first <= fd <= last` (close_range, closefrom). Cost is bounded
/// by the mapped part of the table, not by the range. Async-signal-safe.
pub fn retire_range(first: u32, last: u32) {
    let end = CHUNKS_END.load(Ordering::Acquire);
    let first = first as usize;
    let last = (last as usize)
        .min(end * CHUNK_SLOTS)
        .min(MAX_TRACKED_FD - 1);
    if first > last {
        return;
    }
    for index in first / CHUNK_SLOTS..=last / CHUNK_SLOTS {
        let Some(c) = chunk(index) else { continue };
        let lo = (index * CHUNK_SLOTS).max(first);
        let hi = ((index + 1) * CHUNK_SLOTS - 1).min(last);
        for fd in lo..=hi {
            let slot = &c.slots[fd % CHUNK_SLOTS];
            if slot.live.load(Ordering::Relaxed) != LIVE_EMPTY {
                retire_slot(fd as i32, slot);
            }
        }
    }
}

/// Calls `each` with a consistent copy of every live record, in fd order.
pub fn for_each_live(mut each: impl FnMut(SocketRecord)) {
    let end = CHUNKS_END.load(Ordering::Acquire);
    for index in 0..end {
        let Some(c) = chunk(index) else { continue };
        for (i, slot) in c.slots.iter().enumerate() {
            if slot.live.load(Ordering::Relaxed) == LIVE_EMPTY {
                continue;
            }
            if let Some(record) = slot.read((index * CHUNK_SLOTS + i) as i32) {
                each(record);
            }
        }
    }
}

/// Visits live records with `fd >= start`, in fd order, until `each` returns false. Returns
/// the fd to resume from next time (`None`: the end of the table was reached).
pub fn visit_live_from(start: i32, mut each: impl FnMut(SocketRecord) -> bool) -> Option<i32> {
    let start = start.max(0) as usize;
    let end = CHUNKS_END.load(Ordering::Acquire);
    for index in start / CHUNK_SLOTS..end {
        let Some(c) = chunk(index) else { continue };
        let first = if index == start / CHUNK_SLOTS {
            start % CHUNK_SLOTS
        } else {
            0
        };
        for (i, slot) in c.slots.iter().enumerate().skip(first) {
            if slot.live.load(Ordering::Relaxed) == LIVE_EMPTY {
                continue;
            }
            let fd = (index * CHUNK_SLOTS + i) as i32;
            if let Some(record) = slot.read(fd)
                && !each(record)
            {
                return Some(fd);
            }
        }
    }
    None
}

/// True when at least one record is live (stops at the first).
pub fn any_live() -> bool {
    visit_live_from(0, |_| false).is_some()
}

/// Records that could not be stored.
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Whether this process created a socket itself.
pub fn held_a_socket() -> bool {
    HELD_A_SOCKET.load(Ordering::Relaxed)
}

/// In a fork child: the inherited records stay (the fds really are open here too) but they
/// were not created by this process.
pub fn after_fork_in_child() {
    HELD_A_SOCKET.store(false, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::record::{NO_STACK, SocketRecord};

    fn record(fd: i32) -> SocketRecord {
        SocketRecord {
            fd,
            socket_id: next_socket_id(),
            stack_id: NO_STACK,
            ..SocketRecord::default()
        }
    }

    #[test]
    fn slot_stays_small() {
        // The per-socket memory budget (issue 7: < 300 bytes per tracked socket).
        assert!(
            std::mem::size_of::<Slot>() <= 240,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }

    #[test]
    fn serves_fds_up_to_nr_open() {
        let guard = crate::platform::guard::Guard::enter_even_if_inactive().unwrap();
        let nr_open: i32 = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(1 << 20);
        for fd in [nr_open - 1, 20_000, 1_000_003] {
            assert!(publish(&guard, &record(fd)), "fd {fd}");
            assert_eq!(get(fd).map(|r| r.fd), Some(fd));
            retire(fd);
            assert!(get(fd).is_none());
        }
        assert!(!publish(&guard, &record(MAX_TRACKED_FD as i32)));
    }

    #[test]
    fn visiting_resumes_where_it_stopped() {
        let guard = crate::platform::guard::Guard::enter_even_if_inactive().unwrap();
        for fd in [5000, 5001, 6500, 7000] {
            publish(&guard, &record(fd));
        }
        let mut seen = Vec::new();
        let resume = visit_live_from(5000, |r| {
            seen.push(r.fd);
            seen.len() < 2
        });
        assert_eq!(
            (seen.as_slice(), resume),
            ([5000, 5001].as_slice(), Some(5001))
        );
        let mut rest = Vec::new();
        visit_live_from(5002, |r| {
            if r.fd >= 5000 && r.fd < 8000 {
                rest.push(r.fd);
            }
            true
        });
        assert_eq!(rest, vec![6500, 7000]);
        retire_range(5000, 7000);
    }

    #[test]
    fn retire_range_is_inclusive_and_bounded() {
        let guard = crate::platform::guard::Guard::enter_even_if_inactive().unwrap();
        for fd in 3000..3010 {
            publish(&guard, &record(fd));
        }
        retire_range(3002, 3004);
        let live: Vec<i32> = (3000..3010).filter(|&fd| get(fd).is_some()).collect();
        assert_eq!(live, vec![3000, 3001, 3005, 3006, 3007, 3008, 3009]);
        retire_range(3005, u32::MAX);
        assert!(get(3009).is_none());
    }
}
