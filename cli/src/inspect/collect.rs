//! One look at a process from outside: its fds (`/proc/PID/fd`), the kernel's socket tables
//! (sock_diag dumps), and, for socket fds no dump lists, a read through a copy of the fd
//! (`pidfd_getfd`). Everything here is a read; nothing is written into the process.
//!
//! The process is pinned by a pidfd first, so a process that exits during the look — or whose
//! pid is reused meanwhile — is told apart from a live one at the end, instead of being
//! reported half-read.

use std::collections::{BTreeMap, BTreeSet};

use fdguard_diag::{
    Error as DiagError, FdEntry, FdSocket, InetSocket, Process, ProcessInfo, UnixSocket, procfs,
};

use crate::preload::LIBRARY_FILE_NAME;

/// Points of a look where a test can act (e.g. kill the process) to exercise the paths that
/// production only meets by chance. The binary passes a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The fd list has been read; the kernel's tables not yet.
    FdsListed,
    /// Everything has been read; the final "still alive?" check comes next.
    Read,
}

/// How a socket fd's details were found, when no dump listed it.
#[derive(Debug)]
pub enum Fallback {
    /// Read through a copy of the fd.
    Copied(FdSocket),
    /// Listed in `/proc/PID/net/<family>` (`netlink`, `packet`): the family only.
    Family(&'static str),
    /// Not found anywhere; why.
    Unknown(String),
}

/// Everything one look saw.
#[derive(Debug)]
pub struct Observation {
    /// The process.
    pub info: ProcessInfo,
    /// Every open fd, in fd order.
    pub fds: Vec<FdEntry>,
    /// TCP sockets held by the process (by inode).
    pub tcp: BTreeMap<u64, InetSocket>,
    /// UDP sockets held by the process.
    pub udp: BTreeMap<u64, InetSocket>,
    /// Unix sockets held by the process, and their peers (to name them).
    pub unix: BTreeMap<u64, UnixSocket>,
    /// Socket fds' inodes no dump listed, and what was found instead.
    pub fallback: BTreeMap<u64, Fallback>,
    /// `libfdguard.so` is mapped in the process.
    pub has_library: bool,
    /// The process lives in another network namespace (the dumps cannot see its sockets).
    pub other_namespace: bool,
    /// Dumps that this kernel does not offer (UDP, unix): what is missing.
    pub missing_dumps: Vec<String>,
    /// Wall-clock time of the look, ms since the Unix epoch.
    pub time_unix_ms: u64,
}

/// Why a look failed.
#[derive(Debug)]
pub enum LookError {
    /// No such process (before anything was read).
    NoSuchProcess,
    /// It had already exited and waits to be reaped.
    Zombie,
    /// It exited while being read.
    ExitedDuringLook,
    /// The kernel said no or lacks an interface, or an I/O error.
    Diag(DiagError),
}

impl From<DiagError> for LookError {
    fn from(e: DiagError) -> LookError {
        match e {
            DiagError::NoSuchProcess { .. } => LookError::NoSuchProcess,
            other => LookError::Diag(other),
        }
    }
}

/// Wall-clock ms since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Takes one look at `pid`, calling `at` at each [`Phase`].
pub fn look(pid: i32, at: &mut dyn FnMut(Phase)) -> Result<Observation, LookError> {
    let process = Process::open(pid)?;
    let info = procfs::process_info(pid)?;
    if info.state == 'Z' || info.state == 'X' {
        return Err(LookError::Zombie);
    }
    if info.start_ticks != process.start_ticks() {
        // The pid was reused between pinning and reading: the one we pinned is gone.
        return Err(LookError::NoSuchProcess);
    }
    let fds = match procfs::fds(pid) {
        Ok(fds) => fds,
        Err(_) if process.has_exited() => return Err(LookError::ExitedDuringLook),
        Err(e) => return Err(e.into()),
    };
    let has_library = procfs::maps_mention(pid, LIBRARY_FILE_NAME).unwrap_or(false);
    let other_namespace = procfs::other_network_namespace(pid).unwrap_or(false);
    at(Phase::FdsListed);

    let time_unix_ms = now_unix_ms();
    let held: BTreeSet<u64> = fds.iter().filter_map(|f| f.socket_inode).collect();
    let mut missing_dumps = Vec::new();
    // TCP is what fdguard is about: without its dump there is nothing to say.
    let tcp: BTreeMap<u64, InetSocket> = fdguard_diag::tcp_sockets()?
        .into_iter()
        .filter(|s| s.inode != 0 && held.contains(&s.inode))
        .map(|s| (s.inode, s))
        .collect();
    let udp: BTreeMap<u64, InetSocket> = match fdguard_diag::udp_sockets() {
        Ok(list) => list
            .into_iter()
            .filter(|s| held.contains(&s.inode))
            .map(|s| (s.inode, s))
            .collect(),
        Err(DiagError::Unsupported { what, .. }) => {
            missing_dumps.push(what);
            BTreeMap::new()
        }
        Err(e) => return Err(e.into()),
    };
    let unix: BTreeMap<u64, UnixSocket> = match fdguard_diag::unix_sockets() {
        Ok(list) => {
            let all: BTreeMap<u64, UnixSocket> = list.into_iter().map(|s| (s.inode, s)).collect();
            let mut wanted: BTreeSet<u64> = held
                .iter()
                .copied()
                .filter(|i| all.contains_key(i))
                .collect();
            let peers: Vec<u64> = wanted
                .iter()
                .filter_map(|i| all.get(i)?.peer_inode)
                .collect();
            wanted.extend(peers);
            all.into_iter()
                .filter(|(i, _)| wanted.contains(i))
                .collect()
        }
        Err(DiagError::Unsupported { what, .. }) => {
            missing_dumps.push(what);
            BTreeMap::new()
        }
        Err(e) => return Err(e.into()),
    };

    let mut fallback = BTreeMap::new();
    let mut tables: Option<Vec<(&'static str, BTreeSet<u64>)>> = None;
    for entry in &fds {
        let Some(inode) = entry.socket_inode else {
            continue;
        };
        if tcp.contains_key(&inode)
            || udp.contains_key(&inode)
            || unix.contains_key(&inode)
            || fallback.contains_key(&inode)
        {
            continue;
        }
        let found = match process.socket(entry.fd, inode) {
            Ok(socket) => Fallback::Copied(socket),
            // Closed since the fd list was read: it is gone, like the fd.
            Err(DiagError::FdClosed { .. }) => continue,
            Err(DiagError::NoSuchProcess { .. }) => return Err(LookError::ExitedDuringLook),
            Err(why) => {
                let tables = tables.get_or_insert_with(|| {
                    ["netlink", "packet"]
                        .into_iter()
                        .map(|t| {
                            let inodes = procfs::table_inodes(pid, t).unwrap_or_default();
                            (t, inodes.into_iter().collect())
                        })
                        .collect()
                });
                match tables.iter().find(|(_, inodes)| inodes.contains(&inode)) {
                    Some((family, _)) => Fallback::Family(family),
                    None => Fallback::Unknown(why.to_string()),
                }
            }
        };
        fallback.insert(inode, found);
    }
    at(Phase::Read);
    if process.has_exited() {
        return Err(LookError::ExitedDuringLook);
    }
    Ok(Observation {
        info,
        fds,
        tcp,
        udp,
        unix,
        fallback,
        has_library,
        other_namespace,
        missing_dumps,
        time_unix_ms,
    })
}
