//! The middle of a report: from a [`Snapshot`] of the table to a complete [`Report`] — kernel
//! state for each socket, symbolised stacks, the annotations, the detectors' findings and the
//! summary. Reads the table and the kernel; writes nothing (the TCP states it read are handed
//! back so the caller can let the watcher record them).

use super::snapshot::{self, Snapshot};
use super::symbolize::Symbolizer;
use crate::annotate::{checkpoints, labels};
use crate::config;
use crate::platform::kernel::{self, Side};
use crate::platform::{clock, process, procfs};
use crate::track::record::{NO_STACK, Origin as RecordOrigin, Role, SocketRecord};
use crate::track::sockaddr::{self, PeerAddr};
use crate::track::{capture, history, python, table};
use fdguard_report::detect;
use fdguard_report::{
    Checkpoint, ClosedSocket, Collector, ConnectInfo, FdBudget, Frame, Origin, Report,
    SCHEMA_VERSION, ShutdownInfo, Socket, Summary, TcpState, ThreadInfo, Trigger,
};
use std::collections::{BTreeMap, BTreeSet};

/// A TCP state the report read for one live record, for the watcher to date hang-ups with.
#[derive(Debug, Clone, Copy)]
pub struct StateSeen {
    pub fd: i32,
    pub socket_id: u64,
    pub peer_gone: bool,
}

/// A built report and what building it learned about the sockets.
pub struct Built {
    pub report: Report,
    pub states: Vec<StateSeen>,
}

/// Builds a complete report (sockets, findings, summary) without writing it. `progress` is
/// called once per socket, so a waiter can tell a slow report from a stuck one.
pub fn build(trigger: Trigger, progress: &dyn Fn()) -> Built {
    let now = clock::now_ns();
    let cfg = config::get();
    if cfg.test_fault.as_deref() == Some("report-panic") {
        panic!("injected fault (FDGUARD_TEST_FAULT=report-panic)");
    }
    let pid = process::pid();
    let Snapshot { records, ghosts } = snapshot::take_for_report();
    let (program, cmdline) = program_and_cmdline();

    let mut symbolizer = Symbolizer::new(&program);
    let mut stacks: BTreeMap<u32, Vec<Frame>> = BTreeMap::new();
    let mut stack_of = |id: u32| -> Vec<Frame> {
        if id == NO_STACK {
            return Vec::new();
        }
        stacks
            .entry(id)
            .or_insert_with(|| symbolizer.stack(id))
            .clone()
    };
    let (sockets, states) = live_sockets(&records, now, pid, &mut stack_of, progress);

    let recently_closed: Vec<ClosedSocket> = history::recent(cfg.history)
        .into_iter()
        .map(|c| ClosedSocket {
            fd: c.fd,
            socket_id: c.socket_id,
            peer: sockaddr::format(c.peer.as_slice()),
            created_ago_s: clock::secs_between(c.created_ns, now),
            closed_ago_s: clock::secs_between(c.closed_ns, now),
            stack_id: (c.stack_id != NO_STACK).then_some(c.stack_id as u64),
            stack: stack_of(c.stack_id),
        })
        .collect();

    let checkpoint_list = checkpoints::all();
    let settings = detector_settings(trigger, now, &checkpoint_list);
    let findings = detect::run(&sockets, &settings);
    let checkpoints = checkpoint_list
        .iter()
        .map(|&(id, at)| Checkpoint {
            id,
            ago_s: clock::secs_between(at, now),
            open_since: records
                .iter()
                .filter(|r| snapshot::opened_since(r, at))
                .map(|r| r.socket_id)
                .collect::<BTreeSet<_>>()
                .len() as u64,
        })
        .collect();

    // Closes fdguard did not see are reconciled quietly: `summary.closed_unseen` counts them.
    let mut notes = Vec::new();
    if table::dropped() > 0 {
        notes.push(format!(
            "{} socket(s) could not be tracked (fd number too large or out of memory)",
            table::dropped()
        ));
    }
    if capture::dropped() > 0 {
        notes.push(format!(
            "{} stack(s) not kept: the stack table is full",
            capture::dropped()
        ));
    }
    if capture::skipped() > 0 {
        notes.push(format!(
            "{} socket(s) recorded without a stack: every capture stack was in use at that instant",
            capture::skipped()
        ));
    }
    notes.extend(python::notes());
    let tracked = sockets
        .iter()
        .filter(|s| s.origin != Origin::Untracked)
        .count() as u64;
    let stack_count = records
        .iter()
        .filter(|r| r.stack_id != NO_STACK)
        .map(|r| r.stack_id)
        .collect::<BTreeSet<_>>()
        .len() as u64;
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("fdguard {}", env!("CARGO_PKG_VERSION")),
        collector: Collector::Preload,
        pid,
        program,
        cmdline,
        trigger,
        seq: super::next_seq(),
        time_unix_ms: clock::unix_ms(),
        uptime_s: clock::secs_between(clock::loaded_ns(), now),
        fd_budget: fd_budget(tracked),
        summary: Summary {
            live_sockets: sockets.len() as u64,
            stacks: stack_count,
            closed_unseen: ghosts as u64,
            ..Summary::default()
        },
        sockets,
        findings,
        recently_closed,
        suppressions_used: Vec::new(),
        checkpoints,
        notes,
    };
    if let Some(rules) = crate::init::suppressions() {
        detect::suppress::apply(&mut report, rules);
    }
    detect::summarize(&mut report);
    Built { report, states }
}

/// The report's sockets for the snapshot's `records` (kernel state read fresh for each, the
/// creating stack from `stack_of`), and the TCP states read, for the watcher. `progress` is
/// called once per record.
pub(crate) fn live_sockets(
    records: &[SocketRecord],
    now: u64,
    pid: i32,
    stack_of: &mut dyn FnMut(u32) -> Vec<Frame>,
    progress: &dyn Fn(),
) -> (Vec<Socket>, Vec<StateSeen>) {
    let mut sockets = Vec::with_capacity(records.len());
    let mut states = Vec::new();
    for r in records {
        progress();
        let state = kernel::tcp_state(r.fd, r.family, r.sock_type);
        if state.is_some() {
            states.push(StateSeen {
                fd: r.fd,
                socket_id: r.socket_id,
                peer_gone: detect::peer_gone_state(state, r.role.to_model(), r.peer.len > 0),
            });
        }
        sockets.push(socket_of(r, state, now, pid, stack_of(r.stack_id)));
    }
    (sockets, states)
}

/// What the detectors are told besides the sockets: the configured thresholds, whether this is
/// the exit report, and the checkpoints (id, monotonic time set) as ages at `now`.
pub(crate) fn detector_settings(
    trigger: Trigger,
    now: u64,
    checkpoint_list: &[(u64, u64)],
) -> detect::Settings {
    let cfg = config::get();
    detect::Settings {
        grace_s: cfg.grace_ms as f64 / 1000.0,
        dup_min: cfg.dup_min,
        at_exit: trigger == Trigger::Exit,
        checkpoints: checkpoint_list
            .iter()
            .map(|&(id, at)| (id, clock::secs_between(at, now)))
            .collect(),
    }
}

/// One live record as the report shows it.
fn socket_of(
    r: &SocketRecord,
    state: Option<TcpState>,
    now: u64,
    pid: i32,
    stack: Vec<Frame>,
) -> Socket {
    // The peer is what the kernel last agreed to. A record holds a confirmed one after a
    // successful connect(), an accept() or the scan at load; otherwise (connect in progress or
    // failed, never connected, or connected behind our back) the kernel is asked, and the
    // attempted address is shown only when it knows none.
    let confirmed = r.peer.len > 0
        && (r.role == Role::Accepted
            || (r.connect_ns != 0 && r.connect_errno == 0)
            || (r.connect_ns == 0 && r.origin == RecordOrigin::Preexisting));
    let peer = if confirmed {
        r.peer
    } else {
        kernel::address(r.fd, Side::Peer)
            .map(|b| PeerAddr::from_bytes(&b))
            .filter(|p| sockaddr::format(p.as_slice()).is_some())
            .unwrap_or(r.peer)
    };
    let origin = match r.origin {
        RecordOrigin::Preexisting => Origin::Preexisting,
        RecordOrigin::Created if r.creator_pid != pid => Origin::Inherited,
        RecordOrigin::Created => Origin::Created,
        RecordOrigin::Received => Origin::Received,
        RecordOrigin::Untracked => Origin::Untracked,
    };
    Socket {
        fd: r.fd,
        socket_id: r.socket_id,
        family: sockaddr::family_name(r.family),
        sock_type: sockaddr::type_name(r.sock_type),
        role: r.role.to_model(),
        origin,
        peer: sockaddr::format(peer.as_slice()),
        local: kernel::address(r.fd, Side::Local).and_then(|a| sockaddr::format(&a)),
        tcp_state: state,
        age_s: clock::secs_between(r.created_ns, now),
        thread: (r.tid != 0).then(|| ThreadInfo {
            tid: r.tid,
            name: r.thread_name(),
        }),
        connect: (r.connect_ns != 0).then(|| ConnectInfo {
            result: errno_name(r.connect_errno),
            after_s: clock::secs_between(r.created_ns, r.connect_ns),
        }),
        shutdown: (r.shutdown_how != 0).then(|| ShutdownInfo {
            how: match r.shutdown_how {
                1 => "read",
                2 => "write",
                _ => "both",
            }
            .to_string(),
            ago_s: clock::secs_between(r.shutdown_ns, now),
        }),
        peer_closed_s: (r.peer_closed_ns != 0).then(|| clock::secs_between(r.peer_closed_ns, now)),
        dup_of: r.is_dup().then_some(r.dup_of),
        label: labels::get(r.socket_id),
        stack_id: (r.stack_id != NO_STACK).then_some(r.stack_id as u64),
        stack,
        ..Socket::default()
    }
}

/// How close the process is to its fd limit, as the kernel sees it. fdguard's reserved
/// descriptor, released while a report runs (report::write::Room), is one of the process's
/// fds all the same and is counted.
fn fd_budget(tracked: u64) -> FdBudget {
    let fds = procfs::open_fds();
    let sockets = fds.iter().filter(|f| f.socket).count() as u64;
    let (limit_soft, limit_hard) = kernel::nofile_limit();
    FdBudget {
        open_fds: fds.len() as u64 + super::write::released_reservation(),
        limit_soft,
        limit_hard,
        sockets_open: sockets,
        sockets_tracked: tracked,
    }
}

/// `ok` or the errno's name, as the JSON writes a connect() result.
fn errno_name(e: i32) -> String {
    let name = match e {
        0 => "ok",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENOENT => "ENOENT",
        libc::EACCES => "EACCES",
        libc::EAGAIN => "EAGAIN",
        libc::EINTR => "EINTR",
        libc::EISCONN => "EISCONN",
        libc::EALREADY => "EALREADY",
        libc::ECONNRESET => "ECONNRESET",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// The executable (`/proc/self/exe`) and the command line: /proc/self/cmdline, or, when it
/// cannot be read (no descriptor left at the fd limit), the argument strings in memory, read
/// as the kernel reads them for that file (process::arguments).
fn program_and_cmdline() -> (String, Vec<String>) {
    let program = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cmdline = std::fs::read("/proc/self/cmdline")
        .ok()
        .or_else(process::arguments)
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default();
    (program, cmdline)
}
