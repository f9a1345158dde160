//! Building and writing a report: snapshot the table, reconcile it with the kernel, ask the
//! kernel for TCP states and addresses, symbolise the stacks, run the detectors, render, write.
//!
//! Runs on the `fdguard` thread (signal), the exiting thread (exit) or the caller's thread
//! (C API), always inside the guard, one report at a time. Never on a hot path.
#![allow(unsafe_code)]

use crate::config::{self, Format, Sink};
use crate::detect;
use crate::record::{NO_STACK, Origin as RecordOrigin, SocketRecord};
use crate::symbolize::Symbolizer;
use crate::{clock, events, history, sockaddr, table};
use fdguard_report::{
    Checkpoint, ClosedSocket, ConnectInfo, FdBudget, Origin, Report, SCHEMA_VERSION, ShutdownInfo,
    Socket, Summary, ThreadInfo, Trigger,
};
use once_cell::sync::Lazy;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);
/// One report at a time. A try-lock with a bounded wait: never hang the host.
static BUSY: AtomicBool = AtomicBool::new(false);
/// The process is exiting: signal reports that have not started yet are dropped (see
/// [`stop_signal_reports`]).
static EXITING: AtomicBool = AtomicBool::new(false);
/// Bumped as a report is built and written, so an exiting thread waiting for the `fdguard`
/// thread can tell a slow report from a blocked one (`trigger::exit_report_on_thread`).
static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// Checkpoints: (id, monotonic ns when it was set).
static CHECKPOINTS: Lazy<Mutex<Vec<(u64, u64)>>> = Lazy::new(|| Mutex::new(Vec::new()));
static LABELS: Lazy<dashmap::DashMap<u64, String>> = Lazy::new(dashmap::DashMap::new);

struct Busy;

impl Busy {
    fn acquire() -> Busy {
        for _ in 0..5000 {
            if BUSY
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Busy;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Five seconds: something is stuck. Write anyway rather than hang the host.
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::Release);
    }
}

/// The process is about to exit: from now on signal reports are dropped instead of started.
/// exit_group would cut a report off half written, leaving its temp file behind (or half a text
/// report on stderr). Async-signal-safe.
pub fn stop_signal_reports() {
    EXITING.store(true, Ordering::SeqCst);
}

/// Waits (at most 5 s, like [`Busy`]) until no report is being written. Async-signal-safe.
pub fn wait_until_idle() {
    std::sync::atomic::fence(Ordering::SeqCst);
    for _ in 0..5000 {
        if !BUSY.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A counter that moves while a report is being built or written.
pub fn progress() -> u64 {
    PROGRESS.load(Ordering::Relaxed)
}

/// Fork child: a report in progress in the parent cannot finish here.
pub fn after_fork_in_child() {
    EXITING.store(false, Ordering::SeqCst);
    if BUSY.swap(false, Ordering::AcqRel) {
        crate::symbolize::disable_dwarf();
    }
}

/// Checkpoints kept (24 bytes each): the most recent ones, so an app that checkpoints per
/// request cannot grow memory without bound; older ids then answer "no such checkpoint".
pub const MAX_CHECKPOINTS: usize = 4096;
static NEXT_CHECKPOINT: AtomicU64 = AtomicU64::new(1);

/// Sets a checkpoint; returns its id (1, 2, 3, … never reused).
pub fn checkpoint() -> u64 {
    let mut list = CHECKPOINTS.lock().unwrap_or_else(|e| e.into_inner());
    let id = NEXT_CHECKPOINT.fetch_add(1, Ordering::Relaxed);
    if list.len() >= MAX_CHECKPOINTS {
        list.remove(0);
    }
    list.push((id, clock::now_ns()));
    id
}

/// When checkpoint `id` was set (monotonic ns), if it exists. A socket whose `created_ns` is
/// later was opened since: CLOCK_MONOTONIC is one clock for all threads, so a socket() that
/// returns after fdguard_checkpoint() returned always reads a later time.
pub fn checkpoint_time(id: u64) -> Option<u64> {
    let list = CHECKPOINTS.lock().unwrap_or_else(|e| e.into_inner());
    list.iter().find(|c| c.0 == id).map(|c| c.1)
}

/// Attaches (or with `None` removes) a label on the socket currently at `fd`.
pub fn set_label(fd: i32, label: Option<String>) -> bool {
    let Some(record) = table::get(fd) else {
        return false;
    };
    match label {
        Some(l) => {
            LABELS.insert(record.socket_id, l);
        }
        None => {
            LABELS.remove(&record.socket_id);
        }
    }
    true
}

/// The sockets opened since checkpoint `id` and still open, counted as a report counts them
/// (created by this process's hooks, not untracked, still a socket): one fd per socket, the
/// lowest when it was duplicated, in fd order. `None` when there is no such checkpoint.
pub fn open_since(id: u64) -> Option<Vec<i32>> {
    let since = checkpoint_time(id)?;
    let mut seen = BTreeSet::new();
    let (records, _) = reportable_records();
    Some(
        records
            .iter()
            .filter(|r| opened_since(r, since) && seen.insert(r.socket_id))
            .map(|r| r.fd)
            .collect(),
    )
}

/// Live tracked socket fds, counted as a report's `live_sockets` (not untracked, still a
/// socket).
pub fn live_count() -> u64 {
    reportable_records().0.len() as u64
}

/// The records a report lists, in fd order: live, not untracked, and still a socket. Also
/// returns how many were dropped as ghosts (closed behind our back, e.g. by fclose in libc).
fn reportable_records() -> (Vec<SocketRecord>, usize) {
    let mut records = Vec::new();
    table::for_each_live(|r| {
        if !r.ignored {
            records.push(r);
        }
    });
    let before = records.len();
    records.retain(|r| still_a_socket(r.fd));
    let ghosts = before - records.len();
    (records, ghosts)
}

/// The socket was created by this process at or after monotonic time `since_ns` (a
/// checkpoint); dup'ed fds carry their socket's creation time, so old sockets never count.
fn opened_since(record: &SocketRecord, since_ns: u64) -> bool {
    record.created_ns >= since_ns && record.origin == RecordOrigin::Created
}

fn tcp_state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// The kernel's TCP state of `fd` (TCP_INFO), or None when it is not a TCP socket.
pub fn tcp_state(record: &SocketRecord) -> Option<&'static str> {
    let is_inet = record.family == libc::AF_INET || record.family == libc::AF_INET6;
    if !is_inet || record.sock_type & 0xf != libc::SOCK_STREAM {
        return None;
    }
    // SAFETY: zeroed tcp_info is a valid out-buffer.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: valid out-pointers for TCP_INFO.
    let rc = unsafe {
        libc::getsockopt(
            record.fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| tcp_state_name(info.tcpi_state))
}

/// The fd still refers to a socket (not closed behind our back by an untracked path such as
/// glibc's fclose, nor reused by a file).
pub fn still_a_socket(fd: i32) -> bool {
    // SAFETY: zeroed stat is a valid out-buffer; fstat on any number is safe.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK }
}

fn fd_budget(tracked: u64) -> FdBudget {
    let fds = crate::procfs::open_fds();
    let sockets = fds.iter().filter(|f| f.socket).count() as u64;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    FdBudget {
        open_fds: fds.len() as u64,
        limit_soft: lim.rlim_cur,
        limit_hard: lim.rlim_max,
        sockets_open: sockets,
        sockets_tracked: tracked,
    }
}

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

fn program_and_cmdline() -> (String, Vec<String>) {
    let program = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cmdline = std::fs::read("/proc/self/cmdline")
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default();
    (program, cmdline)
}

/// Builds a complete report (sockets, findings, summary) without writing it.
pub fn build(trigger: Trigger) -> Report {
    let now = clock::now_ns();
    let cfg = config::get();
    if cfg.test_fault.as_deref() == Some("report-panic") {
        panic!("injected fault (FDGUARD_TEST_FAULT=report-panic)");
    }
    let pid = events::pid();
    let (records, ghosts) = reportable_records();
    let (program, cmdline) = program_and_cmdline();

    let mut symbolizer = Symbolizer::new(&program);
    let mut stacks: BTreeMap<u32, Vec<fdguard_report::Frame>> = BTreeMap::new();
    let mut sockets = Vec::with_capacity(records.len());
    for r in &records {
        PROGRESS.fetch_add(1, Ordering::Relaxed);
        let state = tcp_state(r);
        // The watcher may not have run yet: note the first sighting of a finished peer now, so
        // the next report can measure how long it has been.
        if r.peer_closed_ns == 0
            && detect::peer_gone_state(state, r.role.to_model(), r.peer.len > 0)
        {
            table::set_peer_closed(r.fd, r.socket_id, now);
        }
        let peer = if r.peer.len > 0 {
            r.peer
        } else {
            sockaddr::query(r.fd, true).unwrap_or_default()
        };
        let stack = if r.stack_id == NO_STACK {
            Vec::new()
        } else {
            stacks
                .entry(r.stack_id)
                .or_insert_with(|| symbolizer.stack(r.stack_id))
                .clone()
        };
        let origin = match r.origin {
            RecordOrigin::Preexisting => Origin::Preexisting,
            RecordOrigin::Created if r.creator_pid != pid => Origin::Inherited,
            RecordOrigin::Created => Origin::Created,
        };
        sockets.push(Socket {
            fd: r.fd,
            socket_id: r.socket_id,
            family: sockaddr::family_name(r.family),
            sock_type: sockaddr::type_name(r.sock_type),
            role: r.role.to_model(),
            origin,
            peer: sockaddr::format(peer.as_slice()),
            local: sockaddr::query(r.fd, false).and_then(|a| sockaddr::format(a.as_slice())),
            tcp_state: state.map(str::to_string),
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
            peer_closed_s: (r.peer_closed_ns != 0)
                .then(|| clock::secs_between(r.peer_closed_ns, now)),
            dup_of: r.is_dup().then_some(r.dup_of),
            label: LABELS.get(&r.socket_id).map(|l| l.clone()),
            stack_id: (r.stack_id != NO_STACK).then_some(r.stack_id as u64),
            stack,
        });
    }
    // Labels of sockets that are gone.
    let live_ids: BTreeSet<u64> = records.iter().map(|r| r.socket_id).collect();
    LABELS.retain(|id, _| live_ids.contains(id));

    let recently_closed: Vec<ClosedSocket> = history::recent(cfg.history)
        .into_iter()
        .map(|c| ClosedSocket {
            fd: c.fd,
            socket_id: c.socket_id,
            peer: sockaddr::format(c.peer.as_slice()),
            created_ago_s: clock::secs_between(c.created_ns, now),
            closed_ago_s: clock::secs_between(c.closed_ns, now),
            stack_id: (c.stack_id != NO_STACK).then_some(c.stack_id as u64),
            stack: if c.stack_id == NO_STACK {
                Vec::new()
            } else {
                stacks
                    .entry(c.stack_id)
                    .or_insert_with(|| symbolizer.stack(c.stack_id))
                    .clone()
            },
        })
        .collect();

    let checkpoint_list = CHECKPOINTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let settings = detect::Settings {
        grace_s: cfg.grace_ms as f64 / 1000.0,
        dup_min: cfg.dup_min,
        at_exit: trigger == Trigger::Exit,
        checkpoints: checkpoint_list
            .iter()
            .map(|&(id, at)| (id, clock::secs_between(at, now)))
            .collect(),
    };
    let findings = detect::run(&sockets, &settings);
    let checkpoints = checkpoint_list
        .iter()
        .map(|&(id, at)| Checkpoint {
            id,
            ago_s: clock::secs_between(at, now),
            open_since: records
                .iter()
                .filter(|r| opened_since(r, at))
                .map(|r| r.socket_id)
                .collect::<BTreeSet<_>>()
                .len() as u64,
        })
        .collect();

    let mut notes = Vec::new();
    if ghosts > 0 {
        notes.push(format!("{ghosts} record(s) dropped: the fd was closed by a path fdguard cannot see (e.g. fclose inside libc)"));
    }
    if table::dropped() > 0 {
        notes.push(format!(
            "{} socket(s) could not be tracked (fd number too large or out of memory)",
            table::dropped()
        ));
    }
    if crate::capture::dropped() > 0 {
        notes.push(format!(
            "{} stack(s) not kept: the stack table is full",
            crate::capture::dropped()
        ));
    }
    let tracked = sockets.len() as u64;
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("fdguard {}", env!("CARGO_PKG_VERSION")),
        pid,
        program,
        cmdline,
        trigger,
        seq: SEQ.fetch_add(1, Ordering::Relaxed) + 1,
        time_unix_ms: clock::unix_ms(),
        uptime_s: clock::secs_between(clock::loaded_ns(), now),
        fd_budget: fd_budget(tracked),
        summary: Summary {
            live_sockets: tracked,
            stacks: stacks
                .keys()
                .filter(|id| records.iter().any(|r| r.stack_id == **id))
                .count() as u64,
            ..Summary::default()
        },
        sockets,
        findings,
        recently_closed,
        suppressions_used: Vec::new(),
        checkpoints,
        notes,
    };
    if let Some(rules) = crate::suppressions() {
        detect::suppress::apply(&mut report, rules);
    }
    detect::summarize(&mut report);
    report
}

/// Renders a report in `format`.
pub fn render(report: &Report, format: Format) -> Vec<u8> {
    match format {
        Format::Text => fdguard_report::text::render(report).into_bytes(),
        Format::Json => {
            let mut bytes = serde_json::to_vec_pretty(report).unwrap_or_default();
            bytes.push(b'\n');
            bytes
        }
    }
}

/// Where a report goes.
pub enum Destination<'a> {
    Configured,
    Path(&'a str),
    Fd(i32),
}

/// What writing one report did.
pub struct Written {
    /// Findings in the report that gate the exit code ([`detect::gating`]), also when the
    /// report could not be written where asked.
    pub gating: usize,
    /// The error text when it could not be written where asked (with the fallback, the report
    /// then went to stderr).
    pub result: Result<(), String>,
}

/// Builds and writes one report. With `fallback_to_stderr` false a failed write is only
/// returned, not redirected to stderr (the C API's explicit path or fd: the caller gets an
/// error code).
pub fn write_with(
    trigger: Trigger,
    destination: Destination<'_>,
    format: Format,
    fallback_to_stderr: bool,
) -> Written {
    let _busy = Busy::acquire();
    // Pairs with the fence in `wait_until_idle`: either the exiting thread sees us busy and
    // waits, or we see EXITING here.
    std::sync::atomic::fence(Ordering::SeqCst);
    if trigger == Trigger::Signal && EXITING.load(Ordering::SeqCst) {
        return Written {
            gating: 0,
            result: Ok(()),
        };
    }
    PROGRESS.fetch_add(1, Ordering::Relaxed);
    let report = build(trigger);
    PROGRESS.fetch_add(1, Ordering::Relaxed);
    let gating = detect::gating(&report);
    let bytes = render(&report, format);
    PROGRESS.fetch_add(1, Ordering::Relaxed);
    let configured = matches!(destination, Destination::Configured);
    let result = match destination {
        Destination::Fd(fd) => crate::output::write_all_fd(fd, &bytes)
            .map_err(|e| std::io::Error::from_raw_os_error(e).to_string()),
        Destination::Path(path) => crate::output::write_file(path, &bytes),
        Destination::Configured => match &config::get().sink {
            Sink::Stderr => {
                crate::log::write_stderr(&bytes);
                Ok(())
            }
            Sink::File(template) => {
                let exe = report.program.rsplit('/').next().unwrap_or("").to_string();
                let path = config::expand_path(
                    template,
                    report.pid,
                    report.seq,
                    &exe,
                    report.time_unix_ms / 1000,
                );
                crate::output::write_file(&path, &bytes)
            }
        },
    };
    let result = match result {
        Ok(()) => Ok(()),
        Err(why) if fallback_to_stderr => {
            // A bad FDGUARD_REPORT is reported once (at load or at the first failure), not
            // once per report.
            if !configured {
                crate::log::line(&["fdguard: ", &why, "; writing the report to stderr instead"]);
            } else if crate::output::first_fallback_message() {
                crate::log::line(&[
                    "fdguard: FDGUARD_REPORT: ",
                    &why,
                    "; writing reports to stderr instead",
                ]);
            }
            crate::log::write_stderr(&bytes);
            Err(why)
        }
        Err(why) => Err(why),
    };
    Written { gating, result }
}

/// Writes a report to the configured place in the configured format.
/// Returns its gating findings: a report that could not go to its file went to stderr, and its
/// findings still count, so FDGUARD_EXITCODE applies either way.
pub fn write_configured(trigger: Trigger) -> usize {
    write_with(trigger, Destination::Configured, config::get().format, true).gating
}

/// The report signal arrived: answer an `fdguard report` request if one is waiting, otherwise
/// write to the configured place.
pub fn on_signal() {
    match crate::control::take_request(events::pid()) {
        Some(request) => {
            write_with(
                Trigger::Signal,
                Destination::Path(&request.path),
                request.format,
                true,
            );
        }
        None => {
            write_configured(Trigger::Signal);
        }
    }
}
