//! What grew between two reports of one process: live sockets per creating stack, client
//! connections per backend, and findings.
//!
//! Stacks are compared by [`stack_key`] (function and module names), NEVER by `stack_id` or
//! address: ids are a per-report numbering and addresses move with ASLR, so either would make
//! every stack look new. Findings are compared by kind, backend and the creating stack of the
//! socket they are about, counted as multisets, so "one more CLOSE_WAIT from the same place"
//! shows as growth even though each report words its message differently.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::{Finding, FindingKind, Frame, Report, Role, Socket};
use crate::stacks::{frame_line, short_description, stack_key};
use crate::units::{duration, plural, utc_from_unix_ms};

/// Frames named in one-line stack descriptions.
const SHORT_STACK_FRAMES: usize = 3;

/// Which report a side of the diff is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportId {
    /// Process id.
    pub pid: i32,
    /// Executable path.
    pub program: String,
    /// Report sequence number within the process.
    pub seq: u64,
    /// What triggered the report (`signal`, `exit`, `api`).
    pub trigger: String,
    /// Wall-clock time of the report, ms since the Unix epoch.
    pub time_unix_ms: u64,
    /// Seconds since the library was loaded.
    pub uptime_s: f64,
}

impl ReportId {
    fn of(report: &Report) -> ReportId {
        ReportId {
            pid: report.pid,
            program: report.program.clone(),
            seq: report.seq,
            trigger: report.trigger.as_str().to_string(),
            time_unix_ms: report.time_unix_ms,
            uptime_s: report.uptime_s,
        }
    }
}

/// Live sockets created from one stack, in both reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackDelta {
    /// The stack's key: one `function@module` per frame (see [`stack_key`]).
    pub key: Vec<String>,
    /// The frames, from the newer report when the stack is live there.
    pub frames: Vec<Frame>,
    /// Live sockets from this stack in the old report.
    pub old: u64,
    /// Live sockets from this stack in the new report.
    pub new: u64,
    /// `new - old`.
    pub delta: i64,
}

/// Live client connections to one peer, in both reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendDelta {
    /// The peer address.
    pub backend: String,
    /// Client sockets to it in the old report.
    pub old: u64,
    /// Client sockets to it in the new report.
    pub new: u64,
    /// `new - old`.
    pub delta: i64,
}

/// Unsuppressed findings with one (kind, backend, stack) key whose count changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingDelta {
    /// The finding kind.
    pub kind: FindingKind,
    /// The backend the findings are about, if any.
    pub backend: Option<String>,
    /// The key of the creating stack of the socket the findings are about (the first suspect
    /// fd, else the first fd); empty when that socket is not in the report.
    pub stack: Vec<String>,
    /// One line naming that stack.
    pub stack_summary: String,
    /// Findings with this key in the old report.
    pub old: u64,
    /// Findings with this key in the new report.
    pub new: u64,
    /// `new - old`.
    pub delta: i64,
    /// The message of the newest such finding (from the new report, else the old one).
    pub example: String,
    /// The fds of the findings with this key in the new report.
    pub fds: Vec<i32>,
}

/// The comparison of two reports; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// The older report.
    pub old: ReportId,
    /// The newer report.
    pub new: ReportId,
    /// Reasons the comparison may mislead (different processes, reports in the wrong order).
    pub warnings: Vec<String>,
    /// Live sockets in the old report.
    pub old_live_sockets: u64,
    /// Live sockets in the new report.
    pub new_live_sockets: u64,
    /// Every stack live in either report: largest growth first, then most sockets now.
    pub stacks: Vec<StackDelta>,
    /// Every backend with a live client connection in either report, largest growth first
    /// (connections: dup()ed fds are not counted twice).
    pub backends: Vec<BackendDelta>,
    /// Finding keys whose count changed: appeared or grew first (largest growth first), then
    /// those that shrank or went away.
    pub findings: Vec<FindingDelta>,
}

impl Diff {
    /// Stacks with more live sockets than before, largest growth first.
    pub fn growing_stacks(&self) -> impl Iterator<Item = &StackDelta> {
        self.stacks.iter().filter(|s| s.delta > 0)
    }

    /// Finding keys that appeared or grew.
    pub fn new_findings(&self) -> impl Iterator<Item = &FindingDelta> {
        self.findings.iter().filter(|f| f.delta > 0)
    }
}

/// Compares `old` with `new` (two reports of one process, `old` written first).
pub fn diff(old: &Report, new: &Report) -> Diff {
    Diff {
        old: ReportId::of(old),
        new: ReportId::of(new),
        warnings: warnings(old, new),
        old_live_sockets: old.sockets.len() as u64,
        new_live_sockets: new.sockets.len() as u64,
        stacks: stack_deltas(old, new),
        backends: backend_deltas(old, new),
        findings: finding_deltas(old, new),
    }
}

fn warnings(old: &Report, new: &Report) -> Vec<String> {
    let mut warnings = Vec::new();
    if old.pid != new.pid {
        warnings.push(format!(
            "the reports come from different processes (pid {} and pid {}): stacks are matched by \
             function names, but counts of two processes say nothing about growth",
            old.pid, new.pid
        ));
    } else if old.program != new.program {
        warnings.push(format!(
            "same pid {} but different programs ({} and {}): the pid was probably reused",
            old.pid, old.program, new.program
        ));
    }
    let new_is_older = new.time_unix_ms < old.time_unix_ms
        || (old.pid == new.pid && new.time_unix_ms == old.time_unix_ms && new.seq < old.seq);
    if new_is_older {
        warnings.push(format!(
            "the new report (#{} at {}) was written before the old one (#{} at {}): swap the \
             arguments (fdguard diff OLD NEW)",
            new.seq,
            utc_from_unix_ms(new.time_unix_ms),
            old.seq,
            utc_from_unix_ms(old.time_unix_ms)
        ));
    }
    if old.schema_version != new.schema_version {
        warnings.push(format!(
            "different schema versions ({} and {})",
            old.schema_version, new.schema_version
        ));
    }
    warnings
}

fn key_of(socket: &Socket) -> Vec<String> {
    stack_key(&socket.stack, socket.origin)
}

fn stack_deltas(old: &Report, new: &Report) -> Vec<StackDelta> {
    // BTreeMap: deterministic iteration before the final sort.
    let mut by_key: BTreeMap<Vec<String>, StackDelta> = BTreeMap::new();
    for (report, is_new) in [(old, false), (new, true)] {
        for socket in &report.sockets {
            let entry = by_key
                .entry(key_of(socket))
                .or_insert_with_key(|key| StackDelta {
                    key: key.clone(),
                    frames: socket.stack.to_vec(),
                    old: 0,
                    new: 0,
                    delta: 0,
                });
            if is_new {
                if entry.new == 0 {
                    entry.frames = socket.stack.to_vec();
                }
                entry.new += 1;
            } else {
                entry.old += 1;
            }
        }
    }
    let mut deltas: Vec<StackDelta> = by_key
        .into_values()
        .map(|mut d| {
            d.delta = d.new as i64 - d.old as i64;
            d
        })
        .collect();
    deltas.sort_by(|a, b| {
        b.delta
            .cmp(&a.delta)
            .then(b.new.cmp(&a.new))
            .then(a.key.cmp(&b.key))
    });
    deltas
}

/// Counts connections, not fds: a dup()ed fd shares its `socket_id` and is not a second
/// connection to the backend.
fn backend_deltas(old: &Report, new: &Report) -> Vec<BackendDelta> {
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (report, is_new) in [(old, false), (new, true)] {
        let mut seen: Vec<u64> = Vec::new();
        for socket in &report.sockets {
            if socket.role != Role::Client || seen.contains(&socket.socket_id) {
                continue;
            }
            seen.push(socket.socket_id);
            let Some(peer) = &socket.peer else { continue };
            let entry = counts.entry(peer.clone()).or_default();
            if is_new {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
    }
    let mut deltas: Vec<BackendDelta> = counts
        .into_iter()
        .map(|(backend, (old, new))| BackendDelta {
            backend,
            old,
            new,
            delta: new as i64 - old as i64,
        })
        .collect();
    deltas.sort_by(|a, b| {
        b.delta
            .cmp(&a.delta)
            .then(b.new.cmp(&a.new))
            .then(a.backend.cmp(&b.backend))
    });
    deltas
}

type FindingKey = (FindingKind, Option<String>, Vec<String>);

/// The key a finding is compared by, plus the frames of the socket it is keyed on.
fn finding_key<'a>(report: &'a Report, finding: &Finding) -> (FindingKey, &'a [Frame]) {
    let fd = finding.suspect_fds.first().or(finding.fds.first());
    let socket = fd.and_then(|fd| report.sockets.iter().find(|s| s.fd == *fd));
    let (stack, frames) = match socket {
        Some(socket) => (key_of(socket), &socket.stack[..]),
        None => (Vec::new(), &[][..]),
    };
    ((finding.kind, finding.backend.clone(), stack), frames)
}

fn finding_deltas(old: &Report, new: &Report) -> Vec<FindingDelta> {
    let mut by_key: BTreeMap<FindingKey, FindingDelta> = BTreeMap::new();
    for (report, is_new) in [(old, false), (new, true)] {
        for finding in report.findings.iter().filter(|f| f.suppressed_by.is_none()) {
            let (key, frames) = finding_key(report, finding);
            let entry = by_key.entry(key.clone()).or_insert_with(|| FindingDelta {
                kind: key.0,
                backend: key.1.clone(),
                stack: key.2.clone(),
                stack_summary: short_description(frames, SHORT_STACK_FRAMES),
                old: 0,
                new: 0,
                delta: 0,
                example: finding.message.clone(),
                fds: Vec::new(),
            });
            if is_new {
                entry.new += 1;
                entry.example = finding.message.clone();
                entry.fds.extend(&finding.fds);
                entry.stack_summary = short_description(frames, SHORT_STACK_FRAMES);
            } else {
                entry.old += 1;
            }
        }
    }
    let mut deltas: Vec<FindingDelta> = by_key
        .into_values()
        .map(|mut d| {
            d.delta = d.new as i64 - d.old as i64;
            d.fds.sort_unstable();
            d.fds.dedup();
            d
        })
        .filter(|d| d.delta != 0)
        .collect();
    // Growth first (largest first), then shrinkage (largest loss last); severity breaks ties.
    deltas.sort_by(|a, b| b.delta.cmp(&a.delta).then(a.kind.cmp(&b.kind)));
    deltas
}

/// `+3`, `-1`, `0`.
fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// Renders the diff for humans: warnings first, then growing stacks with their frames,
/// backends, findings that appeared or went away, and a SUMMARY line. Deterministic.
pub fn render(diff: &Diff) -> String {
    let mut out = String::new();
    let (old, new) = (&diff.old, &diff.new);
    let _ = writeln!(
        out,
        "fdguard diff: report #{} of pid {} ({}, up {}) -> report #{} of pid {} ({}, up {})",
        old.seq,
        old.pid,
        utc_from_unix_ms(old.time_unix_ms),
        duration(old.uptime_s),
        new.seq,
        new.pid,
        utc_from_unix_ms(new.time_unix_ms),
        duration(new.uptime_s)
    );
    if old.pid == new.pid && new.uptime_s >= old.uptime_s {
        let _ = writeln!(
            out,
            "program {}, {} apart",
            new.program,
            duration(new.uptime_s - old.uptime_s)
        );
    } else {
        let _ = writeln!(out, "programs {} -> {}", old.program, new.program);
    }
    for warning in &diff.warnings {
        let _ = writeln!(out, "WARNING: {warning}");
    }
    let live_delta = diff.new_live_sockets as i64 - diff.old_live_sockets as i64;
    let _ = writeln!(
        out,
        "live sockets: {} -> {} ({})",
        diff.old_live_sockets,
        diff.new_live_sockets,
        signed(live_delta)
    );

    let growing: Vec<&StackDelta> = diff.growing_stacks().collect();
    out.push('\n');
    if growing.is_empty() {
        out.push_str("GROWING STACKS: none\n");
    } else {
        let _ = writeln!(
            out,
            "GROWING STACKS ({}), largest growth first",
            growing.len()
        );
        for stack in &growing {
            out.push('\n');
            let _ = writeln!(
                out,
                "{}  {} -> {} live socket{} created from:",
                signed(stack.delta),
                stack.old,
                stack.new,
                plural(stack.new)
            );
            if stack.frames.is_empty() {
                let _ = writeln!(out, "    {}", stack.key.join(" <- "));
            }
            for (index, frame) in stack.frames.iter().enumerate() {
                let _ = writeln!(out, "    {}", frame_line(index, frame, false));
            }
        }
    }

    let shrinking: Vec<&StackDelta> = diff.stacks.iter().filter(|s| s.delta < 0).collect();
    if !shrinking.is_empty() {
        let _ = writeln!(out, "\nSHRINKING STACKS ({})", shrinking.len());
        for stack in shrinking.iter().rev() {
            let _ = writeln!(
                out,
                "  {}  {} -> {}  {}",
                signed(stack.delta),
                stack.old,
                stack.new,
                stack_name(stack)
            );
        }
    }
    let unchanged = diff.stacks.iter().filter(|s| s.delta == 0).count() as u64;
    if unchanged > 0 {
        let _ = writeln!(out, "\n{unchanged} stack{} unchanged", plural(unchanged));
    }

    if !diff.backends.is_empty() {
        let width = diff
            .backends
            .iter()
            .map(|b| b.backend.chars().count())
            .max()
            .unwrap_or(0);
        out.push_str("\nCLIENT CONNECTIONS PER BACKEND\n");
        for b in &diff.backends {
            let pad = " ".repeat(width - b.backend.chars().count());
            let _ = writeln!(
                out,
                "  {}{pad}  {} -> {}  {}",
                b.backend,
                b.old,
                b.new,
                signed(b.delta)
            );
        }
    }

    let appeared: Vec<&FindingDelta> = diff.new_findings().collect();
    out.push('\n');
    if appeared.is_empty() {
        out.push_str("NEW FINDINGS: none\n");
    } else {
        let _ = writeln!(out, "NEW FINDINGS ({})", appeared.len());
        for f in &appeared {
            write_finding_delta(&mut out, f);
        }
    }
    let gone: Vec<&FindingDelta> = diff.findings.iter().filter(|f| f.delta < 0).collect();
    if !gone.is_empty() {
        let _ = writeln!(out, "\nFINDINGS THAT WENT AWAY ({})", gone.len());
        for f in &gone {
            write_finding_delta(&mut out, f);
        }
    }

    out.push('\n');
    out.push_str(&summary_line(diff));
    out.push('\n');
    out
}

fn write_finding_delta(out: &mut String, f: &FindingDelta) {
    let backend = f
        .backend
        .as_deref()
        .map(|b| format!(" to {b}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {} {}{backend}: {} -> {}, from {}",
        signed(f.delta),
        f.kind.as_str(),
        f.old,
        f.new,
        f.stack_summary
    );
    if f.delta > 0 {
        let _ = writeln!(out, "      latest: {}", f.example);
    }
}

fn stack_name(stack: &StackDelta) -> String {
    if stack.frames.is_empty() {
        stack.key.join(" <- ")
    } else {
        short_description(&stack.frames, SHORT_STACK_FRAMES)
    }
}

/// `SUMMARY: fdguard diff: +4 live sockets; 2 growing stacks (top: +2 from f <- g); 1 new finding`.
fn summary_line(diff: &Diff) -> String {
    let live_delta = diff.new_live_sockets as i64 - diff.old_live_sockets as i64;
    let growing: Vec<&StackDelta> = diff.growing_stacks().collect();
    let new_findings: i64 = diff.new_findings().map(|f| f.delta).sum();
    let mut line = format!(
        "SUMMARY: fdguard diff: {} live socket{}; ",
        signed(live_delta),
        plural(live_delta.unsigned_abs())
    );
    match growing.first() {
        None => line.push_str("no growing stacks"),
        Some(top) => {
            let _ = write!(
                line,
                "{} growing stack{} (top: {} from {})",
                growing.len(),
                plural(growing.len() as u64),
                signed(top.delta),
                short_description(&top.frames, 2)
            );
        }
    }
    let _ = write!(
        line,
        "; {new_findings} new finding{}",
        plural(new_findings.unsigned_abs())
    );
    if !diff.warnings.is_empty() {
        let _ = write!(
            line,
            " ({} warning{})",
            diff.warnings.len(),
            plural(diff.warnings.len() as u64)
        );
    }
    line
}
