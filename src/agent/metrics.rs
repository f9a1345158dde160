//! Prometheus metrics through node_exporter's textfile collector (`FDGUARD_METRICS_DIR`): the
//! `fdguard` thread rewrites `<dir>/fdguard-<pid>.prom` on its watcher tick. Nothing listens on
//! a port: node_exporter, which the fleet already runs, reads the directory at each scrape.
//!
//! What a file holds is what a report would say, from the report pipeline's own stages
//! (`report::snapshot`, `report::build`, `fdguard_report::detect` and its suppressions), without
//! symbolising stacks (only the suppressions need frames, and only of the sockets a finding
//! names) and without rendering a report. Its series are bounded whatever the process does:
//! role × TCP state (6 × 14 at most), the busiest `fdguard_report::fleet::TOP_BACKENDS` backends
//! plus `other`, finding kind × severity; labels `program` and `pid` on every one.
//!
//! Cost (measured by `cargo run --release -p fdguard-bench`, the `metrics file` line): one
//! update reads each socket's state once (`fstat`, `TCP_INFO`, `getsockname`, and
//! /proc/self/fd for the fd count), about 7 µs of CPU per socket on the benchmark's 2-vCPU VM:
//! 14 ms with 2,000 sockets, 120 ms with 18,000 — far beyond the watcher's own bound of
//! [`BUDGET_NS`] per tick, and a full report (symbolised, rendered) costs more. So an update
//! happens on a tick only when due: after one that cost C of CPU, the next comes
//! `ceil(C / BUDGET_NS)` ticks later (at most [`MAX_INTERVAL_S`]), which keeps the writer's
//! average cost per tick within that budget. Each file says when it was written, how often it
//! is, and what it cost (`fdguard_last_update_timestamp_seconds`,
//! `fdguard_metrics_interval_seconds`, `fdguard_metrics_update_duration_seconds`).
//!
//! Files do not outlive their process as stale series:
//! - a normal exit (`exit`, return from `main`, `_exit`, `_Exit`) removes the file
//!   ([`remove_at_exit`], async-signal-safe: the exit can run in a signal handler), and an update
//!   racing with the exit removes what it wrote;
//! - a process that dies without exiting (SIGKILL, a crash) leaves its file, so every writer
//!   sweeps the directory once a minute: a `fdguard-<pid>.prom` (or an abandoned temporary file)
//!   not rewritten for [`STALE_S`] whose pid is no live process is removed. The pid test keeps
//!   the file of a live process whose updates are merely slow (or that sits in another pid
//!   namespace where the number is alive); the age test keeps a file that a new process with a
//!   reused pid has just taken over. Until then `fdguard_last_update_timestamp_seconds` tells a
//!   query that the series are stale (README, "Fleet").

use super::watch;
use crate::annotate::checkpoints;
use crate::config;
use crate::platform::guard;
use crate::platform::{clock, errno, fs, kernel, log, process, procfs, real};
use crate::report::symbolize::Symbolizer;
use crate::report::{build, snapshot, write};
use crate::track::record::NO_STACK;
use fdguard_report::detect::{self, suppress::RuleKind};
use fdguard_report::fleet::{self, Backends};
use fdguard_report::{
    Collector, FdBudget, FindingKind, Report, Role, SCHEMA_VERSION, Severity, Summary, TcpState,
    Trigger, verdict,
};
use once_cell::sync::OnceCell;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::CString;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// What the writer may spend per watcher tick, on average: the watcher's own bound (2,000
/// `TCP_INFO` calls, 1-2 ms; `watch::BUDGET`).
pub const BUDGET_NS: u64 = 2_000_000;
/// The longest interval between two updates, however costly one is (unless the watcher's own
/// period is longer).
pub const MAX_INTERVAL_S: u64 = 120;
/// A file not rewritten for this long, whose pid is not alive, is swept by other writers: five
/// times [`MAX_INTERVAL_S`], so no live writer's file in the default set-up ever qualifies.
pub const STALE_S: u64 = 600;
/// How often a writer sweeps the directory.
const SWEEP_EVERY_NS: u64 = 60_000_000_000;
/// Most directory entries looked at per sweep (a directory is normally a few dozen files).
const SWEEP_MAX_ENTRIES: usize = 10_000;
/// How long an exiting thread waits for an update in progress to finish (then the update
/// removes its file itself, if the process still exists).
const EXIT_WAIT_MS: u32 = 1000;

/// The file's name for `pid`.
pub fn file_name(pid: i32) -> String {
    format!("fdguard-{pid}.prom")
}

// ---------------------------------------------------------------- the file and the exit

/// The update/exit handshake: `pid << 2 | phase`, so a fork child never mistakes its parent's
/// phase for its own.
static PHASE: AtomicU64 = AtomicU64::new(0);
const IDLE: u64 = 0;
const WRITING: u64 = 1;
/// The process is exiting: no more updates.
const CLOSED: u64 = 2;
/// An update saw [`CLOSED`] when it finished and removed its file.
const CLOSED_SEEN: u64 = 3;
/// The pid whose file exists (0: none written by this process).
static WRITER_PID: AtomicI32 = AtomicI32::new(0);
/// The directory, as C text for the exit path (which must not allocate). Set before the first
/// file is written; the same for a fork child.
static DIR_C: OnceCell<CString> = OnceCell::new();

fn tag(pid: i32, phase: u64) -> u64 {
    (pid as u32 as u64) << 2 | phase
}

/// Claims the right to write for `pid`; false once its exit has begun.
fn begin_write(pid: i32) -> bool {
    let current = PHASE.load(Ordering::Acquire);
    if current == tag(pid, CLOSED) || current == tag(pid, CLOSED_SEEN) {
        return false;
    }
    // IDLE, or a phase left by the parent before a fork: this process's writer owns it now.
    PHASE
        .compare_exchange(
            current,
            tag(pid, WRITING),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
}

/// Ends a write; if the exit began meanwhile, removes the file just written.
fn end_write(pid: i32, path: &str) {
    if PHASE
        .compare_exchange(
            tag(pid, WRITING),
            tag(pid, IDLE),
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        let _ = std::fs::remove_file(path);
        PHASE.store(tag(pid, CLOSED_SEEN), Ordering::Release);
    }
}

/// At exit: no more updates, and this process's file goes (the exit paths call it once, before
/// the exit report). Async-signal-safe: atomics, `nanosleep`, `open`/`unlinkat`/`close` on a
/// name built on the stack; waits at most [`EXIT_WAIT_MS`] for an update in progress.
pub fn remove_at_exit() {
    let pid = real::getpid_raw();
    let previous = PHASE.swap(tag(pid, CLOSED), Ordering::AcqRel);
    if previous == tag(pid, WRITING) {
        for _ in 0..EXIT_WAIT_MS {
            if PHASE.load(Ordering::Acquire) == tag(pid, CLOSED_SEEN) {
                break;
            }
            clock::nap_ns(1_000_000);
        }
    }
    if WRITER_PID.load(Ordering::Acquire) != pid {
        return; // this process never wrote a file (a fork child that never updated, …)
    }
    let Some(dir) = DIR_C.get() else { return };
    let saved = errno::errno();
    // "fdguard-" + up to 10 digits + ".prom" + NUL.
    let mut name = [0u8; 32];
    let mut len = 0;
    for &b in b"fdguard-" {
        name[len] = b;
        len += 1;
    }
    let mut digits = [0u8; 10];
    let (mut n, mut count) = (pid as u32, 0);
    loop {
        digits[count] = b'0' + (n % 10) as u8;
        count += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in (0..count).rev() {
        name[len] = digits[i];
        len += 1;
    }
    for &b in b".prom" {
        name[len] = b;
        len += 1;
    }
    // O_PATH opens the directory without reading it.
    let dfd = fs::open(dir, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0);
    if dfd >= 0 {
        // `name` is NUL-terminated: zero-initialised, at most 23 bytes written.
        if let Ok(name) = std::ffi::CStr::from_bytes_until_nul(&name) {
            fs::unlink_at(dfd, name);
        }
        real::close(dfd);
    }
    errno::set_errno(saved);
}

// ---------------------------------------------------------------- what one update says

/// One update's content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub program: String,
    pub pid: i32,
    pub open_fds: u64,
    pub limit_soft: u64,
    pub limit_hard: u64,
    /// Socket fds by (role, TCP state label).
    pub sockets: BTreeMap<(&'static str, &'static str), u64>,
    pub backends: Backends,
    /// Unsuppressed findings by (kind, severity).
    pub findings: BTreeMap<(FindingKind, Severity), u64>,
    pub suppressed: u64,
    /// Socket fds whose peer is gone (CLOSE_WAIT, reset, …) and that are still open, finding or
    /// not yet (within the grace period).
    pub dead_sockets: u64,
    /// Seconds since the peer of the longest-dead of them hung up (0 when none).
    pub oldest_dead_s: f64,
    pub time_unix_s: f64,
    pub start_unix_s: f64,
    /// Seconds this update took to collect.
    pub duration_s: f64,
    /// Seconds until the next update.
    pub interval_s: f64,
}

/// Counts `report`'s sockets and findings (the findings already carry their suppressions).
pub fn summarize(report: &Report) -> Update {
    let mut u = Update {
        pid: report.pid,
        program: fdguard_report::stacks::basename(&report.program).to_string(),
        open_fds: report.fd_budget.open_fds,
        limit_soft: report.fd_budget.limit_soft,
        limit_hard: report.fd_budget.limit_hard,
        backends: Backends::count(&report.sockets, fleet::TOP_BACKENDS),
        ..Update::default()
    };
    for s in &report.sockets {
        *u.sockets
            .entry((s.role.as_str(), fleet::state_label(s)))
            .or_default() += 1;
        if s.role != Role::Listener && verdict::peer_gone(s) {
            u.dead_sockets += 1;
            u.oldest_dead_s = u.oldest_dead_s.max(s.peer_closed_s.unwrap_or(0.0));
        }
    }
    for f in &report.findings {
        if f.suppressed_by.is_some() {
            u.suppressed += 1;
        } else {
            *u.findings.entry((f.kind, f.severity())).or_default() += 1;
        }
    }
    u
}

/// Series kept once seen, so that a count that drops to zero is written as 0 instead of
/// vanishing (a vanished series breaks `deriv()` and `rate()`). Bounded by the label sets.
#[derive(Debug, Default)]
pub struct Seen {
    sockets: BTreeSet<(&'static str, &'static str)>,
    findings: BTreeSet<(FindingKind, Severity)>,
}

/// Written from the first update on, 0 when absent: what the README's alerts query.
const ALWAYS_SOCKETS: [(Role, TcpState); 4] = [
    (Role::Client, TcpState::Established),
    (Role::Client, TcpState::CloseWait),
    (Role::Accepted, TcpState::Established),
    (Role::Accepted, TcpState::CloseWait),
];
/// The kinds that gate `FDGUARD_EXITCODE` (severity `leak`), written from the first update on.
const ALWAYS_FINDINGS: [FindingKind; 3] = [
    FindingKind::PeerClosed,
    FindingKind::ShutdownNotClosed,
    FindingKind::SinceCheckpoint,
];

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Renders `u` in the Prometheus text exposition format (version 0.0.4, what node_exporter's
/// textfile collector reads; no timestamps: the collector rejects them).
pub fn render(u: &Update, seen: &mut Seen) -> String {
    let id = format!("program=\"{}\",pid=\"{}\"", escape(&u.program), u.pid);
    let mut out = String::with_capacity(4096);
    let family = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    let num = |v: f64| {
        if v.fract() == 0.0 && v.abs() < 1e15 {
            format!("{v:.0}")
        } else {
            format!("{v:.6}")
        }
    };

    family(
        &mut out,
        "fdguard_info",
        "libfdguard.so is loaded into this process and writes this file (always 1).",
    );
    let _ = writeln!(
        out,
        "fdguard_info{{{id},version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    family(
        &mut out,
        "fdguard_open_fds",
        "File descriptors open in the process, of every kind.",
    );
    let _ = writeln!(out, "fdguard_open_fds{{{id}}} {}", u.open_fds);
    family(
        &mut out,
        "fdguard_fd_limit",
        "RLIMIT_NOFILE of the process: soft (where EMFILE starts) and hard.",
    );
    let _ = writeln!(
        out,
        "fdguard_fd_limit{{{id},kind=\"soft\"}} {}",
        u.limit_soft
    );
    let _ = writeln!(
        out,
        "fdguard_fd_limit{{{id},kind=\"hard\"}} {}",
        u.limit_hard
    );

    seen.sockets.extend(u.sockets.keys().copied());
    seen.sockets.extend(
        ALWAYS_SOCKETS
            .iter()
            .map(|&(r, s)| (r.as_str(), s.as_str())),
    );
    family(
        &mut out,
        "fdguard_sockets",
        "Live socket fds by role and TCP state (state \"none\": not TCP).",
    );
    for key in &seen.sockets {
        let _ = writeln!(
            out,
            "fdguard_sockets{{{id},role=\"{}\",state=\"{}\"}} {}",
            key.0,
            key.1,
            u.sockets.get(key).copied().unwrap_or(0)
        );
    }
    family(
        &mut out,
        "fdguard_backend_sockets",
        "Client socket fds per backend (peer address): the busiest ones, the rest as \"other\".",
    );
    for (backend, n) in &u.backends.top {
        let _ = writeln!(
            out,
            "fdguard_backend_sockets{{{id},backend=\"{}\"}} {n}",
            escape(backend)
        );
    }
    let _ = writeln!(
        out,
        "fdguard_backend_sockets{{{id},backend=\"{}\"}} {}",
        fleet::OTHER_BACKEND,
        u.backends.other
    );

    seen.findings.extend(u.findings.keys().copied());
    seen.findings
        .extend(ALWAYS_FINDINGS.iter().map(|&k| (k, Severity::Leak)));
    family(
        &mut out,
        "fdguard_findings",
        "Unsuppressed findings by kind and severity (leak findings gate FDGUARD_EXITCODE).",
    );
    for key in &seen.findings {
        let _ = writeln!(
            out,
            "fdguard_findings{{{id},kind=\"{}\",severity=\"{}\"}} {}",
            key.0.as_str(),
            key.1.as_str(),
            u.findings.get(key).copied().unwrap_or(0)
        );
    }
    let scalars: [(&str, &str, String); 8] = [
        (
            "fdguard_findings_suppressed",
            "Findings hidden by FDGUARD_SUPPRESSIONS rules.",
            u.suppressed.to_string(),
        ),
        (
            "fdguard_dead_sockets",
            "Socket fds whose peer is gone (CLOSE_WAIT, reset, ...) and that are still open.",
            u.dead_sockets.to_string(),
        ),
        (
            "fdguard_oldest_dead_socket_seconds",
            "Seconds since the peer of the longest-dead socket still open hung up (0: none).",
            num(u.oldest_dead_s),
        ),
        (
            "fdguard_last_update_timestamp_seconds",
            "Unix time this file was written; older than a few intervals means stale.",
            num(u.time_unix_s),
        ),
        (
            "fdguard_metrics_interval_seconds",
            "Seconds until the next update of this file.",
            num(u.interval_s),
        ),
        (
            "fdguard_metrics_update_duration_seconds",
            "CPU seconds the fdguard thread spent collecting this update.",
            num(u.duration_s),
        ),
        (
            "fdguard_start_time_seconds",
            "Unix time libfdguard.so was loaded into this process.",
            num(u.start_unix_s),
        ),
        (
            "fdguard_fd_usage_ratio",
            "Open fds divided by the soft RLIMIT_NOFILE.",
            num(if u.limit_soft > 0 {
                u.open_fds as f64 / u.limit_soft as f64
            } else {
                0.0
            }),
        ),
    ];
    for (name, help, value) in scalars {
        family(&mut out, name, help);
        let _ = writeln!(out, "{name}{{{id}}} {value}");
    }
    out
}

// ---------------------------------------------------------------- collecting, on the tick

/// Builds the report an update counts: the snapshot's sockets with fresh kernel state, the
/// detectors' findings with the suppressions applied. No stacks, except for sockets a
/// finding names when `leak:` suppressions need their frames. Returns the TCP states read,
/// for the watcher.
fn collect(program: &str) -> (Report, Vec<build::StateSeen>) {
    let now = clock::now_ns();
    let pid = process::pid();
    let snap = snapshot::take();
    let (mut sockets, states) =
        build::live_sockets(&snap.records, now, pid, &mut |_| Default::default(), &|| {});
    let settings = build::detector_settings(Trigger::Signal, now, &checkpoints::all());
    let findings = detect::run(&sockets, &settings);
    let rules = config::suppressions().unwrap_or(&[]);
    if rules.iter().any(|r| r.kind == RuleKind::Leak) {
        let named: HashSet<i32> = findings.iter().flat_map(|f| f.fds.clone()).collect();
        let mut symbolizer = Symbolizer::new(program);
        let mut stacks: HashMap<u32, fdguard_report::Stack> = HashMap::new();
        for (s, r) in sockets.iter_mut().zip(&snap.records) {
            if named.contains(&s.fd) && r.stack_id != NO_STACK {
                s.stack = stacks
                    .entry(r.stack_id)
                    .or_insert_with(|| symbolizer.stack(r.stack_id).into())
                    .clone();
            }
        }
    }
    let (limit_soft, limit_hard) = kernel::nofile_limit();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("fdguard {}", env!("CARGO_PKG_VERSION")),
        collector: Collector::Preload,
        pid,
        program: program.to_string(),
        cmdline: Vec::new(),
        trigger: Trigger::Signal,
        seq: 0,
        time_unix_ms: clock::unix_ms(),
        uptime_s: clock::secs_between(clock::loaded_ns(), now),
        fd_budget: FdBudget {
            open_fds: procfs::count_open_fds(),
            limit_soft,
            limit_hard,
            sockets_open: 0,
            sockets_tracked: sockets.len() as u64,
        },
        sockets,
        findings,
        recently_closed: Vec::new(),
        suppressions_used: Vec::new(),
        checkpoints: Vec::new(),
        notes: Vec::new(),
        summary: Summary::default(),
    };
    detect::suppress::apply(&mut report, rules);
    (report, states)
}

/// The writer's state, on the `fdguard` thread (a fork child's new thread starts afresh).
#[derive(Default)]
struct Writer {
    next_due_ns: u64,
    last_sweep_ns: Option<u64>,
    seen: Seen,
    program: Option<String>,
    told_failure: bool,
}

thread_local! {
    static WRITER: RefCell<Writer> = RefCell::new(Writer::default());
}

/// How long to wait after an update that cost `cost_ns`, ticks being `period_ns` apart: as
/// many ticks as keep the average cost per tick within [`BUDGET_NS`], at most
/// [`MAX_INTERVAL_S`] (or one tick, when ticks are further apart than that).
pub fn interval_after(cost_ns: u64, period_ns: u64) -> u64 {
    let ticks = cost_ns.div_ceil(BUDGET_NS).max(1);
    period_ns
        .saturating_mul(ticks)
        .min((MAX_INTERVAL_S * 1_000_000_000).max(period_ns))
}

/// One watcher tick (called by the `fdguard` thread's periodic section): updates this
/// process's file when due. Does nothing without `FDGUARD_METRICS_DIR`.
pub fn tick() {
    let cfg = config::get();
    let Some(dir) = cfg.metrics_dir.as_deref() else {
        return;
    };
    let period_ns = cfg.watch_ms.saturating_mul(1_000_000);
    guard::catch("internal error while writing metrics", || {
        WRITER.with(|w| w.borrow_mut().tick(dir, period_ns))
    });
}

impl Writer {
    fn tick(&mut self, dir: &Path, period_ns: u64) {
        let started = clock::now_ns();
        if started < self.next_due_ns {
            return;
        }
        let cpu_started = clock::thread_cpu_ns();
        let program = self
            .program
            .get_or_insert_with(|| {
                std::fs::read_link("/proc/self/exe")
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .clone();
        let (report, states) = collect(&program);
        watch::note(&states);
        let mut update = summarize(&report);
        drop(report);
        let collected = clock::now_ns();
        // The cost is CPU time: on a busy host the wall time of the same work can be several
        // times longer without costing the host more.
        let cost = clock::thread_cpu_ns().saturating_sub(cpu_started);
        let interval = interval_after(cost, period_ns);
        update.duration_s = cost as f64 / 1e9;
        update.interval_s = interval as f64 / 1e9;
        update.time_unix_s = clock::unix_ms() as f64 / 1000.0;
        update.start_unix_s =
            update.time_unix_s - clock::secs_between(clock::loaded_ns(), collected);
        let text = render(&update, &mut self.seen);
        match publish(dir, update.pid, text.as_bytes()) {
            Ok(()) => self.told_failure = false,
            Err(why) if !self.told_failure => {
                self.told_failure = true;
                log::line(&[
                    "fdguard: FDGUARD_METRICS_DIR: ",
                    &why,
                    "; trying again on later ticks",
                ]);
            }
            Err(_) => {}
        }
        // Ticks are `period_ns` apart, give or take the thread's wake-up: due a tenth early.
        self.next_due_ns = started + interval.saturating_sub(period_ns / 10);
        let now = clock::now_ns();
        if self
            .last_sweep_ns
            .is_none_or(|at| now.saturating_sub(at) >= SWEEP_EVERY_NS)
        {
            self.last_sweep_ns = Some(now);
            sweep(dir, update.pid);
        }
    }
}

/// Writes this process's file (atomically, mode 0644, never through a symlink).
fn publish(dir: &Path, pid: i32, bytes: &[u8]) -> Result<(), String> {
    let path = dir.join(file_name(pid));
    let path = path
        .to_str()
        .ok_or_else(|| format!("{} is not valid UTF-8", dir.display()))?;
    if DIR_C.get().is_none() {
        let c = CString::new(dir.as_os_str().as_encoded_bytes())
            .map_err(|_| "the path contains a NUL byte".to_string())?;
        let _ = DIR_C.set(c);
    }
    if !begin_write(pid) {
        return Ok(()); // exiting: the file is gone or going
    }
    let written = write::write_file_mode(path, bytes, 0o644, &|| {});
    if written.is_ok() {
        WRITER_PID.store(pid, Ordering::Release);
    }
    end_write(pid, path);
    written
}

/// The pid a swept file belongs to: `fdguard-<pid>.prom`, or a temporary file write.rs made
/// for one (`.fdguard-<pid>.prom.fdguard-tmp.…`).
fn pid_of_file(name: &str) -> Option<i32> {
    let rest = name
        .strip_prefix("fdguard-")
        .and_then(|r| r.strip_suffix(".prom"))
        .or_else(|| {
            name.strip_prefix(".fdguard-")
                .and_then(|r| r.split_once(".prom.fdguard-tmp."))
                .map(|(pid, _)| pid)
        })?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok().filter(|&p: &i32| p > 0)
}

/// True unless `pid` certainly names no process (`kill(pid, 0)` fails with ESRCH).
fn alive(pid: i32) -> bool {
    !process::is_gone(pid)
}

/// Removes the files of processes that died without exiting (see the module documentation).
fn sweep(dir: &Path, own_pid: i32) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for entry in entries.take(SWEEP_MAX_ENTRIES).flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(pid_of_file) else {
            continue;
        };
        if pid == own_pid {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let stale = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age.as_secs() >= STALE_S);
        if stale && !alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdguard_report::{Finding, Socket};

    fn socket(fd: i32, role: Role, peer: &str, state: Option<TcpState>) -> Socket {
        Socket {
            fd,
            socket_id: fd as u64,
            role,
            peer: (!peer.is_empty()).then(|| peer.to_string()),
            tcp_state: state,
            ..Socket::default()
        }
    }

    fn report(sockets: Vec<Socket>, findings: Vec<Finding>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: String::new(),
            collector: Collector::Preload,
            pid: 42,
            program: "/srv/bin/my \"client\"".into(),
            cmdline: Vec::new(),
            trigger: Trigger::Signal,
            seq: 0,
            time_unix_ms: 0,
            uptime_s: 0.0,
            fd_budget: FdBudget {
                open_fds: 9,
                limit_soft: 1024,
                limit_hard: 4096,
                sockets_open: 0,
                sockets_tracked: 0,
            },
            sockets,
            findings,
            recently_closed: Vec::new(),
            suppressions_used: Vec::new(),
            checkpoints: Vec::new(),
            notes: Vec::new(),
            summary: Summary::default(),
        }
    }

    fn finding(kind: FindingKind, severity: Severity, suppressed: bool) -> Finding {
        Finding {
            kind,
            fds: vec![3],
            message: String::new(),
            backend: None,
            suspect_fds: Vec::new(),
            checkpoint: None,
            suppressed_by: suppressed.then(|| "leak:x".to_string()),
            severity: Some(severity),
            rate_per_min: None,
        }
    }

    #[test]
    fn counts_roles_states_backends_findings_and_the_dead() {
        let mut dead = socket(3, Role::Client, "10.0.0.1:443", Some(TcpState::CloseWait));
        dead.peer_closed_s = Some(75.5);
        let sockets = vec![
            dead,
            socket(4, Role::Client, "10.0.0.1:443", Some(TcpState::Established)),
            socket(5, Role::Listener, "", Some(TcpState::Listen)),
            socket(
                6,
                Role::Accepted,
                "10.0.0.7:5123",
                Some(TcpState::CloseWait),
            ),
            socket(7, Role::Pair, "", None),
        ];
        let findings = vec![
            finding(FindingKind::PeerClosed, Severity::Leak, false),
            finding(FindingKind::DuplicateBackend, Severity::Info, false),
            finding(FindingKind::PeerClosed, Severity::Leak, true),
        ];
        let u = summarize(&report(sockets, findings));
        assert_eq!(u.program, "my \"client\"");
        assert_eq!(u.sockets[&("client", "CLOSE_WAIT")], 1);
        assert_eq!(u.sockets[&("pair", "none")], 1);
        assert_eq!(u.backends.top, vec![("10.0.0.1:443".to_string(), 2)]);
        assert_eq!(u.findings[&(FindingKind::PeerClosed, Severity::Leak)], 1);
        assert_eq!(u.suppressed, 1);
        assert_eq!((u.dead_sockets, u.oldest_dead_s), (2, 75.5));
    }

    #[test]
    fn renders_escaped_labels_and_keeps_series_that_drop_to_zero() {
        let sockets = vec![socket(
            3,
            Role::Client,
            "/run/a\"b\\c.sock",
            Some(TcpState::SynSent),
        )];
        let mut seen = Seen::default();
        let text = render(&summarize(&report(sockets, Vec::new())), &mut seen);
        assert!(text.contains(
            "fdguard_backend_sockets{program=\"my \\\"client\\\"\",pid=\"42\",backend=\"/run/a\\\"b\\\\c.sock\"} 1"
        ), "{text}");
        assert!(text.contains("role=\"client\",state=\"SYN_SENT\"} 1"));
        assert!(text.contains("kind=\"peer_closed\",severity=\"leak\"} 0"));
        assert!(text.contains("role=\"accepted\",state=\"CLOSE_WAIT\"} 0"));
        let later = render(&summarize(&report(Vec::new(), Vec::new())), &mut seen);
        assert!(
            later.contains("role=\"client\",state=\"SYN_SENT\"} 0"),
            "{later}"
        );
        assert!(later.contains("backend=\"other\"} 0"));
        // Every sample line is `name{labels} value`, every family declared before use.
        for line in later.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split('{').next().unwrap();
            assert!(later.contains(&format!("# TYPE {name} gauge")), "{line}");
        }
    }

    #[test]
    fn interval_keeps_the_average_within_the_budget() {
        let second = 1_000_000_000;
        assert_eq!(interval_after(300_000, second), second);
        assert_eq!(interval_after(BUDGET_NS * 9 + 1, second), 10 * second);
        assert_eq!(
            interval_after(u64::MAX / 2, second),
            MAX_INTERVAL_S * second
        );
        assert_eq!(interval_after(u64::MAX / 2, 3600 * second), 3600 * second);
    }

    #[test]
    fn swept_names() {
        assert_eq!(pid_of_file("fdguard-1234.prom"), Some(1234));
        assert_eq!(pid_of_file(".fdguard-77.prom.fdguard-tmp.77.3"), Some(77));
        for other in [
            "node.prom",
            "fdguard-.prom",
            "fdguard-12x.prom",
            "fdguard-0.prom",
            "fdguard-1.prom.bak",
        ] {
            assert_eq!(pid_of_file(other), None, "{other}");
        }
    }
}
