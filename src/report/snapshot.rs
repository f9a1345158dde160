//! The first stage of a report: a consistent copy of the live table, reconciled with what the
//! kernel says is still open. Reads the table, never writes it.

use crate::platform::clock;
use crate::platform::kernel;
use crate::platform::procfs::{self, OpenFd};
use crate::track::record::{self, NO_STACK, Origin, SocketRecord};
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
    /// Every fd open in the process when the snapshot was taken (a report's `fd_budget`); empty
    /// for [`take`], which does not list them.
    pub open_fds: Vec<OpenFd>,
}

/// Takes a snapshot of the live table (one `statx` per record: the C API's counts and the
/// metrics writer).
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
    Snapshot {
        ghosts: before - records.len(),
        records,
        inodes,
        open_fds: Vec::new(),
    }
}

/// A report's snapshot: the live table, reconciled with one listing of the process's open fds
/// ([`procfs::open_fds`], which tells sockets and their inodes), plus every socket open in the
/// process that the table does not know (made by a raw `socket` system call, or before a gap
/// in tracking), as records of origin `Untracked`: family, type, role and peer from the
/// kernel, no stack, created "now" (their age is unknown). Sockets the program untracked
/// through the C API stay out. Each untracked socket's id is derived from its inode, so fds
/// sharing one socket stay together; never an id the table hands out, so nothing the report
/// learns about them reaches the table.
pub fn take_for_report() -> Snapshot {
    let mut tracked = Vec::new();
    // Every fd the table knows, ignored ones too, in ascending order (the table's order).
    let mut known = Vec::new();
    table::for_each_live(|r| {
        known.push(r.fd);
        if !r.ignored {
            tracked.push(r);
        }
    });
    known.sort_unstable();
    let open_fds = procfs::open_fds(procfs::Threads::Allowed, known.len());
    let inode_of = |fd: i32| {
        open_fds
            .binary_search_by_key(&fd, |o| o.fd)
            .ok()
            .and_then(|i| open_fds[i].socket_inode)
    };
    let now = clock::now_ns();
    let pid = crate::platform::process::pid();
    let mut pairs: Vec<(SocketRecord, u64)> = Vec::with_capacity(tracked.len());
    let mut ghosts = 0;
    for r in tracked {
        match inode_of(r.fd) {
            Some(inode) => pairs.push((r, inode)),
            None => ghosts += 1,
        }
    }
    let mut untracked = false;
    for o in open_fds
        .iter()
        .filter(|o| known.binary_search(&o.fd).is_err())
    {
        if let Some(inode) = o.socket_inode {
            pairs.push((untracked_record(o.fd, inode, now, pid), inode));
            untracked = true;
        }
    }
    if untracked {
        // Back into fd order.
        pairs.sort_by_key(|(r, _)| r.fd);
    }
    let (records, inodes) = pairs.into_iter().unzip();
    Snapshot {
        records,
        inodes,
        ghosts,
        open_fds,
    }
}

/// Socket ids of untracked sockets: this bit and the inode (the table's ids are small).
const UNTRACKED_ID: u64 = 1 << 63;

/// The record of an untracked socket.
fn untracked_record(fd: i32, inode: u64, now: u64, pid: i32) -> SocketRecord {
    let seen = record::observe(fd);
    SocketRecord {
        fd,
        socket_id: UNTRACKED_ID | inode,
        created_ns: now,
        stack_id: NO_STACK,
        family: seen.family,
        sock_type: seen.sock_type,
        role: seen.role,
        origin: Origin::Untracked,
        creator_pid: pid,
        dup_of: -1,
        peer: seen.peer,
        ..SocketRecord::default()
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
