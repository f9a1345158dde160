//! The middle of a report: from a [`Snapshot`] of the table to a complete [`Report`] — kernel
//! state for each socket (state, activity and retransmissions from one `TCP_INFO`, plus
//! `SO_KEEPALIVE`, the queues and the addresses; all read first, in bulk, by [`read_kernel`]
//! on helper threads when there are thousands), symbolised stacks, the annotations, the detectors' findings
//! and the summary. Reads the table and the kernel; writes nothing (the dates it worked out
//! are handed back so the caller can let the watcher record them).
//!
//! Also home of the dating rules the watcher and the report share ([`date_state_entry`],
//! [`date_hangup`]): a date is never later than the first sighting, and never earlier than
//! the kernel's own timestamps allow, so an age is never overstated.

use super::snapshot::{self, Snapshot};
use super::symbolize::Symbolizer;
use crate::annotate::{checkpoints, labels};
use crate::config;
use crate::platform::kernel::{self, Side, TcpSample};
use crate::platform::procfs::OpenFd;
use crate::platform::{clock, process, workers};
use crate::track::record::{NO_STACK, Origin as RecordOrigin, Role, SocketRecord, TcpSeen};
use crate::track::sockaddr::{self, PeerAddr};
use crate::track::{capture, history, python, table};
use fdguard_report::detect;
use fdguard_report::{
    Checkpoint, ClosedSocket, Collector, ConnectInfo, FdBudget, Origin, Report, SCHEMA_VERSION,
    ShutdownInfo, Socket, Stack, Summary, TcpActivity, TcpState, ThreadInfo, Trigger,
};
use std::collections::{BTreeMap, BTreeSet};

/// What the report worked out for one live record that the table does not say yet, for the
/// watcher to record ([`crate::agent::watch::note`]).
#[derive(Debug, Clone, Copy)]
pub struct StateSeen {
    pub fd: i32,
    pub socket_id: u64,
    /// The record's state as the report read it from the table.
    pub before: TcpSeen,
    /// A state the table does not have yet, with its entry date.
    pub entered: Option<TcpSeen>,
    /// The date of a hang-up the table does not have yet.
    pub hung_up_ns: Option<u64>,
}

/// States in which the peer's FIN (and the ACK it carries) is the last thing received: the
/// kernel's `tcpi_last_ack_recv` then dates the hang-up. Measured on loopback: a socket in
/// CLOSE_WAIT for 0.3 s reports `last_ack_recv` 300 ms. A reset (CLOSE) updates no timestamp:
/// dated by the first sighting.
const FIN_DATED: [TcpState; 3] = [TcpState::CloseWait, TcpState::LastAck, TcpState::Closing];

/// When `r`'s connection entered `tcp.state` (monotonic ns), seen at `now`: never later than
/// now, never earlier than its creation, its connect() or the state before it.
/// - SYN_SENT: connect() put it there;
/// - CLOSE_WAIT, LAST_ACK, CLOSING: the peer's FIN, dated by the last ACK received;
/// - ESTABLISHED: the handshake, no later than the oldest of the last data sent, data received
///   and ACK received (the kernel sets all three when the connection is established);
/// - anything else: now (the first sighting).
pub fn date_state_entry(r: &SocketRecord, tcp: &TcpSample, now: u64) -> u64 {
    let ms_before = |ms: u32| now.saturating_sub(u64::from(ms) * 1_000_000);
    let estimate = match tcp.state {
        TcpState::SynSent if r.connect_ns != 0 => r.connect_ns,
        state if FIN_DATED.contains(&state) && tcp.handshake_completed => {
            ms_before(tcp.last_ack_recv_ms)
        }
        TcpState::Established if tcp.handshake_completed => ms_before(
            tcp.last_data_sent_ms
                .max(tcp.last_data_recv_ms)
                .max(tcp.last_ack_recv_ms),
        ),
        _ => now,
    };
    let floor = r
        .created_ns
        .max(r.connect_ns)
        .max(r.tcp_seen.get().map_or(0, |(_, since)| since));
    estimate.clamp(floor.min(now), now)
}

/// When `r`'s peer hung up, first seen gone at `now`: the FIN's date where the kernel gives it
/// (see [`FIN_DATED`]), else the entry into a peer-gone state the watcher already dated, else
/// now.
pub fn date_hangup(r: &SocketRecord, tcp: &TcpSample, now: u64) -> u64 {
    match r.tcp_seen.get() {
        Some((state, since)) if state == tcp.state => since,
        _ => date_state_entry(r, tcp, now),
    }
}

/// A [`TcpSample`] as the report's `tcp` object (times in seconds before now), with what
/// [`read_kernel`] read besides. The kernel counts in jiffies, fdguard in CLOCK_MONOTONIC; on
/// a loaded VM they were seen 10% apart, so no time is allowed to exceed the socket's own age
/// (nothing happened on it before it existed).
fn activity(tcp: &TcpSample, facts: &KernelFacts, age_s: f64) -> TcpActivity {
    let secs = |ms: u32| {
        tcp.handshake_completed
            .then_some((f64::from(ms) / 1000.0).min(age_s))
    };
    TcpActivity {
        last_data_recv_s: secs(tcp.last_data_recv_ms),
        last_data_sent_s: secs(tcp.last_data_sent_ms),
        last_ack_recv_s: secs(tcp.last_ack_recv_ms),
        unacked: tcp.unacked,
        retransmits: u32::from(tcp.retransmits),
        backoff: u32::from(tcp.backoff),
        probes: u32::from(tcp.probes),
        keepalive: facts.keepalive,
        recv_queue: facts.recv_queue,
        send_queue: facts.send_queue,
        handshake_completed: Some(tcp.handshake_completed),
    }
}

/// What the kernel says about one record's socket: the report's kernel-state stage, read for
/// every record before anything else is built (by several threads when there are many,
/// [`workers`]: each is a handful of independent system calls).
#[derive(Debug, Clone, Copy, Default)]
struct KernelFacts {
    tcp: Option<TcpSample>,
    keepalive: Option<bool>,
    recv_queue: Option<u64>,
    send_queue: Option<u64>,
    /// `getsockname`.
    local: Option<PeerAddr>,
    /// `getpeername`, asked only when the record holds no confirmed peer ([`confirmed_peer`]).
    peer: Option<PeerAddr>,
}

/// The record holds the peer the kernel last agreed to: after a successful connect(), an
/// accept() or the scan at load. Otherwise (connect in progress or failed, never connected,
/// or connected behind our back) the kernel is asked.
fn confirmed_peer(r: &SocketRecord) -> bool {
    r.peer.len > 0
        && (r.role == Role::Accepted
            || (r.connect_ns != 0 && r.connect_errno == 0)
            || (r.connect_ns == 0 && r.origin == RecordOrigin::Preexisting))
}

/// Asks the kernel everything the report needs about `r`'s socket (see [`Detail`]).
fn read_kernel(r: &SocketRecord, detail: Detail, now: u64) -> KernelFacts {
    let address = |side| {
        let mut buf = [0u8; std::mem::size_of::<libc::sockaddr_storage>()];
        kernel::address_into(r.fd, side, &mut buf).map(|n| PeerAddr::from_bytes(&buf[..n]))
    };
    let mut facts = KernelFacts {
        tcp: kernel::tcp_sample(r.fd, r.family, r.sock_type),
        local: address(Side::Local),
        peer: if confirmed_peer(r) {
            None
        } else {
            address(Side::Peer)
        },
        ..KernelFacts::default()
    };
    let Some(tcp) = facts.tcp else {
        return facts;
    };
    match detail {
        Detail::Full => {
            facts.keepalive = kernel::keepalive(r.fd);
            if tcp.state != TcpState::Listen {
                facts.recv_queue = kernel::recv_queue(r.fd);
                facts.send_queue = tcp.send_queue.or_else(|| kernel::send_queue(r.fd));
            }
        }
        Detail::Detectors { idle_s } => {
            // SO_KEEPALIVE is what tells an idle orphan from a connection kept idle on
            // purpose: read it where the idle_orphan detector will look, nowhere else.
            let age_s = clock::secs_between(r.created_ns, now);
            let idle = activity(&tcp, &facts, age_s).idle_s();
            if tcp.state == TcpState::Established && idle.is_some_and(|idle| idle >= idle_s) {
                facts.keepalive = kernel::keepalive(r.fd);
            }
        }
    }
    facts
}

/// How much [`activity`] asks the kernel beyond the one `TCP_INFO`.
#[derive(Debug, Clone, Copy)]
enum Detail {
    /// Everything the report shows: `SO_KEEPALIVE` and both queues for every TCP socket.
    Full,
    /// What the detectors need, no more (the metrics writer, on the watcher's tick):
    /// `SO_KEEPALIVE` only for a connection idle past `idle_s`.
    Detectors { idle_s: f64 },
}

/// A built report and what building it learned about the sockets.
pub struct Built {
    pub report: Report,
    pub states: Vec<StateSeen>,
}

/// Builds a complete report (sockets, findings, summary) without writing it. `progress` is
/// called once per socket, so a waiter can tell a slow report from a stuck one.
pub fn build(trigger: Trigger, samples: detect::Samples, progress: &dyn Fn()) -> Built {
    let now = clock::now_ns();
    let cfg = config::get();
    if cfg.test_fault.as_deref() == Some("report-panic") {
        panic!("injected fault (FDGUARD_TEST_FAULT=report-panic)");
    }
    let pid = process::pid();
    let Snapshot {
        records,
        inodes,
        ghosts,
        open_fds,
    } = snapshot::take_for_report();
    let (program, cmdline) = program_and_cmdline();

    let mut symbolizer = Symbolizer::new(&program);
    let mut stacks: BTreeMap<u32, Stack> = BTreeMap::new();
    let mut stack_of = |id: u32| -> Stack {
        if id == NO_STACK {
            return Stack::default();
        }
        stacks
            .entry(id)
            .or_insert_with(|| symbolizer.stack(id).into())
            .clone()
    };
    let (sockets, states) = sockets_of(
        &records,
        Some(&inodes),
        Detail::Full,
        now,
        pid,
        &mut stack_of,
        progress,
    );

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
    let settings = detect::Settings {
        samples,
        ..detector_settings(trigger, now, &checkpoint_list)
    };
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
        fd_budget: fd_budget(&open_fds, tracked),
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
    if let Some(rules) = config::suppressions() {
        detect::suppress::apply(&mut report, rules);
    }
    detect::summarize(&mut report);
    Built { report, states }
}

/// The sockets for the snapshot's `records` as the detectors need them (kernel state read
/// fresh for each: one `TCP_INFO` per TCP socket, `SO_KEEPALIVE` only for a connection idle
/// past the idle threshold; the creating stack from `stack_of`), and the dates worked out that
/// the table does not have yet, for the watcher. The metrics writer's entry point, on the
/// watcher's tick; a report reads more (the queues, every `SO_KEEPALIVE`, the inodes).
/// `progress` is called once per record.
pub(crate) fn live_sockets(
    records: &[SocketRecord],
    now: u64,
    pid: i32,
    stack_of: &mut dyn FnMut(u32) -> Stack,
    progress: &dyn Fn(),
) -> (Vec<Socket>, Vec<StateSeen>) {
    let idle_s = config::get().idle_ms as f64 / 1000.0;
    let detail = Detail::Detectors { idle_s };
    sockets_of(records, None, detail, now, pid, stack_of, progress)
}

/// [`live_sockets`], with each record's socket inode when the snapshot read it.
#[allow(clippy::too_many_arguments)]
fn sockets_of(
    records: &[SocketRecord],
    inodes: Option<&[u64]>,
    detail: Detail,
    now: u64,
    pid: i32,
    stack_of: &mut dyn FnMut(u32) -> Stack,
    progress: &dyn Fn(),
) -> (Vec<Socket>, Vec<StateSeen>) {
    let facts = workers::map(records, |r| read_kernel(r, detail, now), progress);
    let mut sockets = Vec::with_capacity(records.len());
    let mut states = Vec::new();
    for (i, (r, facts)) in records.iter().zip(&facts).enumerate() {
        let tcp = facts.tcp;
        let mut socket = socket_of(r, facts, now, pid, stack_of(r.stack_id));
        socket.inode = inodes.and_then(|inodes| inodes.get(i).copied());
        if let Some(tcp) = &tcp {
            let seen = dates(r, tcp, now);
            socket.state_since_s = Some(clock::secs_between(
                seen.entered.and_then(|e| e.get()).map_or_else(
                    || r.tcp_seen.get().map_or(now, |(_, since)| since),
                    |(_, since)| since,
                ),
                now,
            ));
            if let Some(at) = seen.hung_up_ns {
                socket.peer_closed_s = Some(clock::secs_between(at, now));
            }
            socket.tcp = Some(activity(tcp, facts, socket.age_s));
            if seen.entered.is_some() || seen.hung_up_ns.is_some() {
                states.push(seen);
            }
        }
        sockets.push(socket);
    }
    (sockets, states)
}

/// What the detectors are told besides the sockets: the configured thresholds, whether this is
/// the exit report, and the checkpoints (id, monotonic time set) as ages at `now`. No samples:
/// the caller adds the watcher's when it has them.
pub(crate) fn detector_settings(
    trigger: Trigger,
    now: u64,
    checkpoint_list: &[(u64, u64)],
) -> detect::Settings {
    detect::Settings {
        at_exit: trigger == Trigger::Exit,
        checkpoints: checkpoint_list
            .iter()
            .map(|&(id, at)| (id, clock::secs_between(at, now)))
            .collect(),
        ..config::get().detect_settings()
    }
}

/// What the table does not say yet about `r`'s TCP state and hang-up, as read now.
fn dates(r: &SocketRecord, tcp: &TcpSample, now: u64) -> StateSeen {
    let entered = (r.tcp_seen.get().map(|(state, _)| state) != Some(tcp.state))
        .then(|| TcpSeen::new(tcp.state, date_state_entry(r, tcp, now)));
    let gone = tcp.handshake_completed
        && detect::peer_gone_state(Some(tcp.state), r.role.to_model(), r.peer.len > 0);
    StateSeen {
        fd: r.fd,
        socket_id: r.socket_id,
        before: r.tcp_seen,
        entered,
        hung_up_ns: (gone && r.peer_closed_ns == 0).then(|| date_hangup(r, tcp, now)),
    }
}

/// One live record as the report shows it.
fn socket_of(r: &SocketRecord, facts: &KernelFacts, now: u64, pid: i32, stack: Stack) -> Socket {
    // The peer is what the kernel last agreed to ([`confirmed_peer`]); where the record holds
    // none, what the kernel says, and the attempted address only when it knows none.
    let peer = if confirmed_peer(r) {
        r.peer
    } else {
        facts
            .peer
            .filter(|p| sockaddr::format(p.as_slice()).is_some())
            .unwrap_or(r.peer)
    };
    let state = facts.tcp.map(|t| t.state);
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
        local: facts.local.and_then(|a| sockaddr::format(a.as_slice())),
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
fn fd_budget(fds: &[OpenFd], tracked: u64) -> FdBudget {
    let sockets = fds.iter().filter(|f| f.is_socket()).count() as u64;
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

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn record(created_s: u64, connect_s: u64) -> SocketRecord {
        SocketRecord {
            created_ns: created_s * S,
            connect_ns: connect_s * S,
            ..SocketRecord::default()
        }
    }

    fn sample(state: TcpState, data_ms: u32, ack_ms: u32) -> TcpSample {
        TcpSample {
            state,
            handshake_completed: true,
            last_data_recv_ms: data_ms,
            last_data_sent_ms: data_ms,
            last_ack_recv_ms: ack_ms,
            unacked: 0,
            retransmits: 0,
            backoff: 0,
            probes: 0,
            send_queue: None,
        }
    }

    #[test]
    fn states_are_dated_from_the_kernel_where_it_allows() {
        let now = 1000 * S;
        let r = record(100, 101);
        // SYN_SENT: connect() put it there.
        let syn = TcpSample {
            handshake_completed: false,
            ..sample(TcpState::SynSent, 0, 0)
        };
        assert_eq!(date_state_entry(&r, &syn, now), 101 * S);
        // CLOSE_WAIT: the FIN's ACK, 300 s ago, even if the watcher sees it only now.
        let fin = sample(TcpState::CloseWait, 400_000, 300_000);
        assert_eq!(date_state_entry(&r, &fin, now), 700 * S);
        assert_eq!(date_hangup(&r, &fin, now), 700 * S);
        // ESTABLISHED: no later than the oldest activity the kernel still remembers.
        let est = sample(TcpState::Established, 500_000, 20_000);
        assert_eq!(date_state_entry(&r, &est, now), 500 * S);
        // A reset updates no timestamp: the first sighting.
        let reset = sample(TcpState::Close, 400_000, 300_000);
        assert_eq!(date_state_entry(&r, &reset, now), now);
    }

    #[test]
    fn a_date_is_never_before_the_socket_its_connect_or_its_previous_state() {
        let now = 1000 * S;
        // The kernel's counters say 900 s; the socket is 10 s old.
        let r = record(990, 991);
        let fin = sample(TcpState::CloseWait, 900_000, 900_000);
        assert_eq!(date_state_entry(&r, &fin, now), 991 * S);
        let seen = SocketRecord {
            tcp_seen: TcpSeen::new(TcpState::Established, 995 * S),
            ..r
        };
        assert_eq!(date_state_entry(&seen, &fin, now), 995 * S);
        // Never in the future either.
        let young = record(2000, 0);
        assert_eq!(date_state_entry(&young, &fin, now), now);
    }

    #[test]
    fn a_never_answered_connection_has_no_activity_times() {
        let refused = TcpSample {
            handshake_completed: false,
            ..sample(TcpState::Close, 1_689_064, 1_689_064)
        };
        let activity = activity(&refused, &KernelFacts::default(), 30.0);
        assert_eq!(
            (
                activity.last_data_recv_s,
                activity.last_ack_recv_s,
                activity.handshake_completed
            ),
            (None, None, Some(false))
        );
        let kept = activity_of_age(5.0);
        assert_eq!(
            kept.last_data_sent_s,
            Some(5.0),
            "bounded by the socket's age"
        );
    }

    fn activity_of_age(age_s: f64) -> TcpActivity {
        activity(
            &sample(TcpState::Established, 7_016, 7_016),
            &KernelFacts::default(),
            age_s,
        )
    }
}
