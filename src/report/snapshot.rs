//! The first stage of a report: a consistent copy of the live table, reconciled with what the
//! kernel says is still open. Reads the table, never writes it.

use crate::platform::kernel::{self, Side, socket_option};
use crate::platform::{clock, procfs};
use crate::track::record::{NO_STACK, Origin, Role, SocketRecord};
use crate::track::sockaddr::PeerAddr;
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
    take_with(|_| {})
}

fn take_with(mut known: impl FnMut(i32)) -> Snapshot {
    let mut records = Vec::new();
    table::for_each_live(|r| {
        known(r.fd);
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

/// A report's snapshot: the live table, plus every socket open in the process that the table
/// does not know (made by a raw `socket` system call, or before a gap in tracking), as records
/// of origin `Untracked`: family, type, role and peer from the kernel, no stack, created "now"
/// (their age is unknown). Sockets the program untracked through the C API stay out. Each
/// untracked socket's id is derived from its inode, so fds sharing one socket stay together;
/// never an id the table hands out, so nothing the report learns about them reaches the table.
pub fn take_for_report() -> Snapshot {
    let mut known = BTreeSet::new();
    let mut snapshot = take_with(|fd| {
        known.insert(fd);
    });
    let now = clock::now_ns();
    let pid = crate::platform::process::pid();
    let mut untracked = false;
    for fd in procfs::open_fds()
        .into_iter()
        .filter(|f| f.socket && !known.contains(&f.fd))
        .map(|f| f.fd)
    {
        if let Some((record, inode)) = untracked_record(fd, now, pid) {
            snapshot.records.push(record);
            snapshot.inodes.push(inode);
            untracked = true;
        }
    }
    if untracked {
        // Back into fd order, each record with its own inode.
        let mut pairs: Vec<(SocketRecord, u64)> = std::mem::take(&mut snapshot.records)
            .into_iter()
            .zip(std::mem::take(&mut snapshot.inodes))
            .collect();
        pairs.sort_by_key(|(r, _)| r.fd);
        (snapshot.records, snapshot.inodes) = pairs.into_iter().unzip();
    }
    snapshot
}

/// Socket ids of untracked sockets: this bit and the inode (the table's ids are small).
const UNTRACKED_ID: u64 = 1 << 63;

/// The record of an untracked socket, and its inode.
fn untracked_record(fd: i32, now: u64, pid: i32) -> Option<(SocketRecord, u64)> {
    let inode = kernel::socket_inode(fd)?;
    let peer = kernel::address(fd, Side::Peer).map(|b| PeerAddr::from_bytes(&b));
    let role = if socket_option(fd, libc::SO_ACCEPTCONN) == 1 {
        Role::Listener
    } else if peer.is_some() {
        Role::Connected
    } else {
        Role::Unconnected
    };
    let record = SocketRecord {
        fd,
        socket_id: UNTRACKED_ID | inode,
        created_ns: now,
        stack_id: NO_STACK,
        family: socket_option(fd, libc::SO_DOMAIN),
        sock_type: socket_option(fd, libc::SO_TYPE),
        role,
        origin: Origin::Untracked,
        creator_pid: pid,
        dup_of: -1,
        peer: peer.unwrap_or_default(),
        ..SocketRecord::default()
    };
    Some((record, inode))
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
