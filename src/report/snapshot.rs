//! The first stage of a report: a consistent copy of the live table, reconciled with what the
//! kernel says is still open. Reads the table, never writes it.

use crate::platform::kernel;
use crate::track::record::{Origin, SocketRecord};
use crate::track::table;
use std::collections::BTreeSet;

/// The records a report lists, in fd order: live, not untracked by the program, and still a
/// socket.
pub struct Snapshot {
    pub records: Vec<SocketRecord>,
    /// The socket inode of each record, in the same order (the check that it is still a
    /// socket reads it anyway).
    pub inodes: Vec<u64>,
    /// Records dropped because their fd no longer names a socket: it was closed behind our back
    /// (glibc's fclose, a raw syscall) and perhaps reused for a file.
    pub ghosts: usize,
}

/// Takes a snapshot of the live table.
pub fn take() -> Snapshot {
    let mut records = Vec::new();
    table::for_each_live(|r| {
        if !r.ignored {
            records.push(r);
        }
    });
    let before = records.len();
    let mut inodes = Vec::with_capacity(before);
    records.retain(|r| match kernel::socket_inode(r.fd) {
        Some(inode) => {
            inodes.push(inode);
            true
        }
        None => false,
    });
    let ghosts = before - records.len();
    Snapshot {
        records,
        inodes,
        ghosts,
    }
}

/// The socket was created by this process at or after monotonic time `since_ns` (a
/// checkpoint); dup'ed fds carry their socket's creation time, so old sockets never count.
pub fn opened_since(record: &SocketRecord, since_ns: u64) -> bool {
    record.created_ns >= since_ns && record.origin == Origin::Created
}

/// The sockets opened since monotonic time `since_ns` and still open, counted as a report
/// counts them: one fd per socket, the lowest when it was duplicated, in fd order.
pub fn open_since(since_ns: u64) -> Vec<i32> {
    let mut seen = BTreeSet::new();
    take()
        .records
        .iter()
        .filter(|r| opened_since(r, since_ns) && seen.insert(r.socket_id))
        .map(|r| r.fd)
        .collect()
}

/// Live tracked socket fds, counted as a report's `live_sockets`.
pub fn live_count() -> u64 {
    take().records.len() as u64
}
