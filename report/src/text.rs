//! The human report, LeakSanitizer style: a `==PID==` header, the findings (most severe first,
//! each with the sockets it concerns and their creating stacks), every live socket grouped by
//! creating stack, then a one-line SUMMARY.
//!
//! Written to be read, also for a process holding thousands of sockets: each stack's frames are
//! printed once, where the stack first appears (later mentions name it by id and say where its
//! frames are), and long lists are cut — [`SOCKET_LINES_SHOWN`] socket lines per group,
//! [`FDS_SHOWN`] fds per list, [`RECENTLY_CLOSED_SHOWN`] closed connections — with a count of
//! the rest. The JSON report is never cut: it has every socket, fd and frame.
//! [`Options::brief`] leaves the frames out altogether.
//!
//! [`render`] is THE text format: `libfdguard.so` calls it to write text reports and
//! `fdguard show` calls it on JSON reports, so both print the same bytes for the same report.
//! It must stay a pure, deterministic function of the [`Report`] (golden files in
//! `report/tests/` pin it): no clock, no environment, no colours, no locale. Colouring is the
//! CLI's business, and only when stdout is a terminal.

use std::fmt::Write as _;

use crate::model::{Finding, FindingKind, Origin, Report, Role, Severity, Socket, TcpState};
use crate::stacks::{StackIdentity, frame_line, short_description};
use crate::units::{duration, plural, short_duration, utc_from_unix_ms};
use crate::verdict::{ExitSeverity, exit_severity};

/// Percentage of the soft fd limit above which the header warns (EMFILE comes next).
const FD_BUDGET_WARN_PERCENT: u64 = 80;
/// Recently closed connections listed under one finding; the JSON has the full history.
pub const RECENTLY_CLOSED_SHOWN: usize = 5;
/// Frames named in one-line stack descriptions.
const SHORT_STACK_FRAMES: usize = 3;
/// Socket lines printed per group of sockets (under a finding, a block of merged findings, or
/// a creating stack under LIVE SOCKETS); the rest of the group is named by fd on one line
/// (`… and 8990 more from this stack: fd …`). The JSON lists every socket.
pub const SOCKET_LINES_SHOWN: usize = 10;
/// Fds named in one list (the rest of a group; a list in a finding's message, `9000
/// connections to … (fds 4, 6, … and 8980 more)`); the others are counted, not named. The
/// JSON's `fds` and `message` are complete.
pub const FDS_SHOWN: usize = 20;

/// How much of a report the text shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// No stack frames: a group of sockets names its creating stack on its header line, by id
    /// and, the first time the stack appears, its first frames (`3 sockets created from stack 0
    /// (tcp_connect <- main):`).
    pub brief: bool,
}

/// Renders `report` as the human-readable text report. The output ends with a newline.
pub fn render(report: &Report) -> String {
    render_with(report, &Options::default())
}

/// Renders `report` as text, as [`render`] does, with `options` (`--brief`).
pub fn render_with(report: &Report, options: &Options) -> String {
    let report = &*with_severities(report);
    let columns = Columns::measure(&report.sockets);
    let mut stacks = StackPrinter::new(options);
    let mut out = String::new();
    write_header(&mut out, report);
    write_findings(&mut out, report, &columns, &mut stacks);
    write_live_sockets(&mut out, report, &columns, &mut stacks);
    write_checkpoints(&mut out, report);
    write_suppressions(&mut out, report);
    write_notes(&mut out, report);
    out.push('\n');
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

/// A report written before findings carried a severity, with the severities its library
/// meant: [`Finding::severity`] per kind, and an `open_at_exit` finding is a leak when other
/// leak findings name all its sockets (those versions called it a leak then, and also when its
/// peer was gone at all; the stricter reading is kept). Reports with severities are used as
/// they are.
fn with_severities(report: &Report) -> std::borrow::Cow<'_, Report> {
    if report.findings.iter().all(|f| f.severity.is_some()) {
        return std::borrow::Cow::Borrowed(report);
    }
    let leak_fds: std::collections::HashSet<i32> = report
        .findings
        .iter()
        .filter(|f| f.kind != FindingKind::OpenAtExit && f.severity() == Severity::Leak)
        .flat_map(|f| f.fds.iter().copied())
        .collect();
    let mut report = report.clone();
    for f in report.findings.iter_mut().filter(|f| f.severity.is_none()) {
        f.severity = Some(
            if f.kind == FindingKind::OpenAtExit
                && !f.fds.is_empty()
                && f.fds.iter().all(|fd| leak_fds.contains(fd))
            {
                Severity::Leak
            } else {
                f.severity()
            },
        );
    }
    // A filtered view recomputed its counts per severity: recount with these severities.
    if !report.summary.by_severity.is_empty() {
        crate::detect::summarize(&mut report);
    }
    std::borrow::Cow::Owned(report)
}

/// The final line: `SUMMARY: fdguard: 7 live sockets from 4 stacks; findings: 1 peer_closed,
/// 1 duplicate_backend (1 suppressed); 1 leak, 1 info`. Taken from `report.summary`, not
/// recomputed; only the number of sockets the leaks name (`2 leaks on 1 socket`, when it is
/// another number) comes from the findings.
pub fn summary_line(report: &Report) -> String {
    let summary = &report.summary;
    let mut line = format!(
        "SUMMARY: fdguard: {} live socket{} from {} stack{}; ",
        summary.live_sockets,
        plural(summary.live_sockets),
        summary.stacks,
        plural(summary.stacks)
    );
    // Known kinds in severity order, then any kind a newer library wrote that we do not know.
    let mut counts: Vec<String> = FindingKind::ALL
        .iter()
        .filter_map(|kind| {
            let n = *summary.findings.get(kind.as_str())?;
            (n > 0).then(|| format!("{n} {}", kind.as_str()))
        })
        .collect();
    for (name, n) in &summary.findings {
        if FindingKind::parse(name).is_none() && *n > 0 {
            counts.push(format!("{n} {}", escape(name)));
        }
    }
    if counts.is_empty() {
        line.push_str("no findings");
    } else {
        line.push_str("findings: ");
        line.push_str(&counts.join(", "));
    }
    if summary.suppressed > 0 {
        let _ = write!(line, " ({} suppressed)", summary.suppressed);
    }
    // Reports written before severities existed have no counts per severity.
    if !summary.by_severity.is_empty() {
        let count = |level: Severity| summary.by_severity.get(level.as_str()).copied();
        let rest: Vec<String> = [Severity::Warning, Severity::Info]
            .into_iter()
            .filter_map(|level| Some(severity_phrase(level, count(level).filter(|&n| n > 0)?)))
            .collect();
        // `2 leaks on 1 socket`: the socket count is the findings' (it is not in the summary).
        let leaks = |n: u64| {
            let sockets = leaking_sockets(report.findings.iter());
            format!(
                "{}{}",
                severity_phrase(Severity::Leak, n),
                on_sockets(n, sockets)
            )
        };
        let _ = match count(Severity::Leak).filter(|&n| n > 0) {
            Some(n) if rest.is_empty() => write!(line, "; {}", leaks(n)),
            Some(n) => write!(line, "; {}, {}", leaks(n), rest.join(", ")),
            None => write!(line, "; no leaks: {}", rest.join(", ")),
        };
    }
    line
}

fn write_header(out: &mut String, report: &Report) {
    let prefix = format!("=={}==", report.pid);
    let _ = writeln!(
        out,
        "{prefix}{}: socket report #{} (trigger: {}) at {}",
        report.tool,
        report.seq,
        report.trigger.as_str(),
        utc_from_unix_ms(report.time_unix_ms)
    );
    let _ = writeln!(
        out,
        "{prefix}program {}, pid {}, up {}",
        escape(&report.program),
        report.pid,
        duration(report.uptime_s)
    );
    if !report.cmdline.is_empty() {
        let words: Vec<String> = report.cmdline.iter().map(|w| shell_quote(w)).collect();
        let _ = writeln!(out, "{prefix}command line: {}", words.join(" "));
    }
    let budget = &report.fd_budget;
    let _ = writeln!(
        out,
        "{prefix}fd budget: {} of {} fds open (hard limit {}); {} socket{}, {} tracked",
        budget.open_fds,
        limit(budget.limit_soft),
        limit(budget.limit_hard),
        budget.sockets_open,
        plural(budget.sockets_open),
        budget.sockets_tracked
    );
    if budget.limit_soft > 0
        && budget.limit_soft != u64::MAX
        && budget.open_fds.saturating_mul(100)
            >= budget.limit_soft.saturating_mul(FD_BUDGET_WARN_PERCENT)
    {
        let _ = writeln!(
            out,
            "{prefix}WARNING: {}% of the fd limit is in use; the next socket()/accept() may fail with EMFILE",
            budget.open_fds.saturating_mul(100) / budget.limit_soft
        );
    }
}

/// RLIMIT_NOFILE value; RLIM_INFINITY is all ones.
fn limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".to_string()
    } else {
        value.to_string()
    }
}

/// Characters that must never reach a terminal or a log as they are: C0 and C1 controls and
/// DEL (a newline would let a peer forge a `SUMMARY:` line, an ESC a terminal sequence), and
/// the invisible format characters that reorder or hide text (bidirectional overrides and
/// isolates, zero-width characters, the byte-order mark).
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{061c}' | '\u{feff}')
}

/// Writes `c` as the escape `escape` and `shell_quote` share: `\n`, `\t`, `\r`, `\xHH` below
/// U+0100, `\uHHHH` above (bash's `$'…'` reads every one of them back).
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
    }
}

/// THE escape for every string that came from the host or a peer (program path, thread
/// names, addresses — unix paths and abstract names are any bytes —, labels, frames, finding
/// messages that quote them, anything read from a JSON report): control and invisible
/// format characters become visible escapes and a backslash is doubled, so one socket stays
/// one line and nothing a peer chose can move the cursor, recolour or rewrite the terminal.
/// Ordinary text is returned as is, without a copy.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c == '\\' || unsafe_char(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if unsafe_char(c) => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Quotes a command-line word for display when it would not survive a shell as is. Words with
/// control or invisible characters use bash's `$'…'` escapes (the same ones [`escape`] writes),
/// so a multi-line `python3 -c` script stays on the one `==PID==` line.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        return word.to_string();
    }
    if !word.chars().any(unsafe_char) {
        return format!("'{}'", word.replace('\'', r"'\''"));
    }
    let mut quoted = String::from("$'");
    for c in word.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '\'' => quoted.push_str("\\'"),
            c if unsafe_char(c) => push_escaped(&mut quoted, c),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

fn write_findings<'a>(
    out: &mut String,
    report: &'a Report,
    columns: &Columns,
    stacks: &mut StackPrinter<'a>,
) {
    let by_fd = SocketsByFd::of(report);
    let active: Vec<&Finding> =
        sorted_by_severity(report.findings.iter().filter(|f| f.suppressed_by.is_none()));
    let suppressed: Vec<&Finding> =
        sorted_by_severity(report.findings.iter().filter(|f| f.suppressed_by.is_some()));
    out.push('\n');
    match (active.len(), suppressed.len()) {
        (0, 0) => {
            out.push_str("FINDINGS: none\n");
            return;
        }
        (0, s) => {
            let _ = writeln!(out, "FINDINGS (0, plus {s} suppressed)");
        }
        (n, 0) => {
            let _ = writeln!(out, "FINDINGS ({n}: {})", severity_counts(&active));
        }
        (n, s) => {
            let _ = writeln!(
                out,
                "FINDINGS ({n}: {}; plus {s} suppressed)",
                severity_counts(&active)
            );
        }
    }
    for block in blocks(&active, &by_fd) {
        out.push('\n');
        match block {
            Block::One(finding) => write_finding(out, report, &by_fd, columns, finding, stacks),
            Block::Merged(merged) => write_merged(out, columns, &merged, stacks),
        }
    }
    for finding in suppressed {
        out.push('\n');
        write_suppressed_finding(out, &by_fd, columns, finding);
    }
}

/// How findings are printed: one by one, or merged LeakSanitizer-style ("N sockets created
/// from stack S"), which is what keeps the report of a process holding thousands of sockets
/// readable.
enum Block<'a> {
    One(&'a Finding),
    Merged(Merged<'a>),
}

/// `2 leaks`, `1 warning`, `3 info`.
fn severity_phrase(level: Severity, n: u64) -> String {
    match level {
        Severity::Info => format!("{n} info"),
        _ => format!("{n} {}{}", level.as_str(), plural(n)),
    }
}

/// `2 leaks on 1 socket, 1 warning, 3 info`: unsuppressed findings per severity, most severe
/// first, and how many sockets the leaks name when that is another number.
fn severity_counts(findings: &[&Finding]) -> String {
    [Severity::Leak, Severity::Warning, Severity::Info]
        .into_iter()
        .filter_map(|level| {
            let n = findings.iter().filter(|f| f.severity() == level).count() as u64;
            let phrase = severity_phrase(level, n);
            match level {
                _ if n == 0 => None,
                Severity::Leak => Some(format!(
                    "{phrase}{}",
                    on_sockets(n, leaking_sockets(findings.iter().copied()))
                )),
                _ => Some(phrase),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many sockets `findings`' unsuppressed leak findings name: one socket can be the subject
/// of several (`peer_closed`, then `open_at_exit` at exit).
fn leaking_sockets<'a>(findings: impl Iterator<Item = &'a Finding>) -> u64 {
    let fds: std::collections::BTreeSet<i32> = findings
        .filter(|f| f.suppressed_by.is_none() && f.severity() == Severity::Leak)
        .flat_map(|f| f.fds.iter().copied())
        .collect();
    fds.len() as u64
}

/// ` on 1 socket` after `2 leaks`; nothing when there are as many sockets as findings (or the
/// findings name none).
fn on_sockets(findings: u64, sockets: u64) -> String {
    if sockets == 0 || sockets == findings {
        String::new()
    } else {
        format!(" on {sockets} socket{}", plural(sockets))
    }
}

/// Single-socket findings of one kind and severity (and, for `open_at_exit`, one
/// [`ExitSeverity`]) whose sockets were all created from one stack.
struct Merged<'a> {
    kind: FindingKind,
    level: Severity,
    severity: Option<ExitSeverity>,
    findings: Vec<&'a Finding>,
    group: Group<'a>,
}

/// What findings merge on: kind, creating stack, and how severe an exit leak is.
#[derive(PartialEq, Eq, Hash)]
struct MergeKey {
    kind: FindingKind,
    level: Severity,
    stack_id: Option<u64>,
    origin: Option<Origin>,
    severity: Option<ExitSeverity>,
}

/// Splits the (severity-sorted) findings into blocks. `peer_closed`, `shutdown_not_closed` and
/// `open_at_exit` findings concern one socket each; those with the same kind and creating
/// stack are merged into one block, placed where the first of them was. Everything else, and
/// a merge key met only once, stays a finding of its own, printed as before.
fn blocks<'a>(findings: &[&'a Finding], by_fd: &SocketsByFd<'a>) -> Vec<Block<'a>> {
    let mut blocks: Vec<Block<'a>> = Vec::new();
    let mut index: std::collections::HashMap<MergeKey, usize> = std::collections::HashMap::new();
    for &finding in findings {
        let mergeable = matches!(
            finding.kind,
            FindingKind::PeerClosed
                | FindingKind::ShutdownNotClosed
                | FindingKind::StuckConnecting
                | FindingKind::HalfOpen
                | FindingKind::IdleOrphan
                | FindingKind::OpenAtExit
        );
        let (sockets, missing) = by_fd.sockets_for(&finding.fds);
        let first = match (mergeable, missing.is_empty(), sockets.first()) {
            (true, true, Some(&first)) => first,
            _ => {
                blocks.push(Block::One(finding));
                continue;
            }
        };
        let identity = StackIdentity::of(first);
        let (stack_id, origin) = match identity {
            StackIdentity::Id(id) => (Some(id), None),
            StackIdentity::None(origin) => (None, Some(origin)),
            // Frames without an id (a hand-made report): not worth merging.
            StackIdentity::Frames(_) => (None, None),
        };
        if !sockets.iter().all(|s| StackIdentity::of(s) == identity)
            || (stack_id.is_none() && origin.is_none())
        {
            blocks.push(Block::One(finding));
            continue;
        }
        let level = finding.severity();
        let severity = (finding.kind == FindingKind::OpenAtExit)
            .then(|| exit_severity(first, level == Severity::Leak));
        let key = MergeKey {
            kind: finding.kind,
            level,
            stack_id,
            origin,
            severity,
        };
        match index.get(&key) {
            Some(&at) => {
                if let Block::Merged(merged) = &mut blocks[at] {
                    merged.findings.push(finding);
                    merged.group.sockets.extend(sockets);
                }
            }
            None => {
                index.insert(key, blocks.len());
                blocks.push(Block::Merged(Merged {
                    kind: finding.kind,
                    level,
                    severity,
                    findings: vec![finding],
                    group: Group { identity, sockets },
                }));
            }
        }
    }
    // A merge key met once is an ordinary finding.
    blocks
        .into_iter()
        .map(|block| match block {
            Block::Merged(m) if m.findings.len() == 1 => Block::One(m.findings[0]),
            other => other,
        })
        .collect()
}

/// One block of merged findings: a headline for all of them, the shared stack once, the first
/// sockets in full and the others by fd.
fn write_merged<'a>(
    out: &mut String,
    columns: &Columns,
    merged: &Merged<'a>,
    stacks: &mut StackPrinter<'a>,
) {
    let n = merged.group.sockets.len();
    let what = match (merged.kind, merged.level, merged.severity) {
        (FindingKind::PeerClosed, _, _) => {
            "sockets whose peer hung up are still open, past the grace period"
        }
        (FindingKind::ShutdownNotClosed, _, _) => {
            "sockets were shut down and are still open, past the grace period"
        }
        (FindingKind::StuckConnecting, Severity::Leak, _) => {
            "sockets whose connect() failed are still open, past the grace period"
        }
        (FindingKind::StuckConnecting, _, _) => {
            "connections are stuck in SYN_SENT, past the connect threshold"
        }
        (FindingKind::HalfOpen, _, _) => {
            "connections get no ACK from their peer, past the half-open threshold"
        }
        (FindingKind::IdleOrphan, _, _) => {
            "client connections carried no payload, past the idle threshold"
        }
        (_, _, Some(ExitSeverity::Leak)) => {
            "sockets were still open at exit, each a leak named above"
        }
        (_, _, Some(ExitSeverity::Recent)) => {
            "sockets were still open at exit; their peers hung up (or they were shut down) \
             within the grace period before: not leaks"
        }
        (_, _, Some(ExitSeverity::Listener)) => "listening sockets were still open at exit",
        _ => "sockets were still open at exit",
    };
    let _ = writeln!(
        out,
        "{} ({}): {n} {what} (one finding each, merged: same creating stack)",
        merged.kind.as_str(),
        merged.level.as_str()
    );
    write_group(
        out,
        columns,
        &merged.group,
        "  ",
        stacks.frames(merged.group.identity, merged.kind.as_str()),
        &|_| Vec::new(),
    );
}

/// Most severe first: by severity, then by kind (the enum's order is [`FindingKind::ALL`]'s);
/// stable within a kind, so the library's order (by fd) is kept.
fn sorted_by_severity<'a>(findings: impl Iterator<Item = &'a Finding>) -> Vec<&'a Finding> {
    let mut list: Vec<&Finding> = findings.collect();
    list.sort_by_key(|f| (f.severity(), f.kind));
    list
}

fn write_finding<'a>(
    out: &mut String,
    report: &'a Report,
    by_fd: &SocketsByFd<'a>,
    columns: &Columns,
    finding: &Finding,
    stacks: &mut StackPrinter<'a>,
) {
    let _ = writeln!(
        out,
        "{} ({}): {}",
        finding.kind.as_str(),
        finding.severity().as_str(),
        shorten_fd_lists(&escape(&finding.message))
    );
    if let Some(id) = finding.checkpoint {
        match report.checkpoints.iter().find(|c| c.id == id) {
            Some(checkpoint) => {
                let _ = writeln!(
                    out,
                    "  since checkpoint {id}, set {} ago",
                    duration(checkpoint.ago_s)
                );
            }
            None => {
                let _ = writeln!(out, "  since checkpoint {id}");
            }
        }
    }
    let (sockets, missing) = by_fd.sockets_for(&finding.fds);
    let suspects = |socket: &Socket| -> Vec<String> {
        if finding.suspect_fds.contains(&socket.fd) {
            vec!["likely leak".to_string()]
        } else {
            Vec::new()
        }
    };
    // Groups and growth can name thousands of sockets: the first ones of each group in full,
    // the rest by fd (every socket is in the JSON).
    for group in group_by_stack(sockets, GroupOrder::FirstSeen) {
        let frames = stacks.frames(group.identity, finding.kind.as_str());
        write_group(out, columns, &group, "  ", frames, &suspects);
    }
    write_missing(out, &missing);
    // The history shows whether the app keeps reconnecting without closing the old connection.
    if let (FindingKind::DuplicateBackend | FindingKind::ReconnectChurn, Some(backend)) =
        (finding.kind, &finding.backend)
    {
        write_recently_closed(out, report, backend);
    }
}

fn write_suppressed_finding(
    out: &mut String,
    by_fd: &SocketsByFd<'_>,
    columns: &Columns,
    finding: &Finding,
) {
    let rule = finding.suppressed_by.as_deref().unwrap_or_default();
    let _ = writeln!(
        out,
        "{} ({}) [suppressed by {}]: {}",
        finding.kind.as_str(),
        finding.severity().as_str(),
        shell_quote(rule),
        shorten_fd_lists(&escape(&finding.message))
    );
    // Suppressed on purpose: one line per socket, no frames.
    let (sockets, missing) = by_fd.sockets_for(&finding.fds);
    for socket in sockets.iter().take(SOCKET_LINES_SHOWN) {
        let stack = match StackIdentity::of(socket) {
            StackIdentity::Id(id) => vec![format!("stack {id}")],
            _ => Vec::new(),
        };
        let _ = writeln!(out, "  {}", columns.socket_line(socket, &stack));
    }
    if let Some(rest) = sockets.get(SOCKET_LINES_SHOWN..).filter(|r| !r.is_empty()) {
        let fds: Vec<i32> = rest.iter().map(|s| s.fd).collect();
        let _ = writeln!(out, "  {}", more_fds(&fds, ""));
    }
    write_missing(out, &missing);
}

/// The fds of a finding that the report has no socket for (a filtered view, a hand-made
/// report): one line each, the first [`SOCKET_LINES_SHOWN`] of them.
fn write_missing(out: &mut String, missing: &[i32]) {
    for fd in missing.iter().take(SOCKET_LINES_SHOWN) {
        let _ = writeln!(out, "  fd {fd}: not among the sockets listed");
    }
    if let Some(rest) = missing.get(SOCKET_LINES_SHOWN..).filter(|r| !r.is_empty()) {
        let _ = writeln!(out, "  {}", more_fds(rest, " not among the sockets listed"));
    }
}

/// `… and 4 more from this stack: fd 20, 21, 22, 23`, or for a long list the first
/// [`FDS_SHOWN`] fds and `… (the JSON report lists all 8990)`. `what` follows the count.
fn more_fds(fds: &[i32], what: &str) -> String {
    let n = fds.len();
    let named: Vec<String> = fds
        .iter()
        .take(FDS_SHOWN)
        .map(|fd| fd.to_string())
        .collect();
    if n <= FDS_SHOWN {
        format!("… and {n} more{what}: fd {}", named.join(", "))
    } else {
        format!(
            "… and {n} more{what}: fd {}, … (the JSON report lists all {n})",
            named.join(", ")
        )
    }
}

/// A finding's message with every list of fds longer than [`FDS_SHOWN`] cut to its first
/// [`FDS_SHOWN`] and a count: `9000 connections to 127.0.0.1:80 (fds 4, 6, 8, …, 42 and 8980
/// more)`. A list is what follows `fd ` or `fds `: integers separated by `, `. The message in
/// the JSON stays whole, and its `fds` name them all.
fn shorten_fd_lists(message: &str) -> std::borrow::Cow<'_, str> {
    let bytes = message.as_bytes();
    let mut out = String::new();
    let mut copied = 0; // bytes of `message` already in `out`
    let mut at = 0;
    while at < bytes.len() {
        let word_start = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let prefix = ["fds ", "fd "]
            .into_iter()
            .find(|p| word_start && bytes[at..].starts_with(p.as_bytes()));
        let Some(prefix) = prefix else {
            at += 1;
            continue;
        };
        // The list: digits, then any number of `, ` digits.
        let start = at + prefix.len();
        let digits = |from: usize| {
            bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut ends = Vec::new(); // end of each item
        let mut pos = start;
        loop {
            let n = digits(pos);
            if n == 0 {
                break;
            }
            pos += n;
            ends.push(pos);
            if message[pos..].starts_with(", ") && digits(pos + 2) > 0 {
                pos += 2;
            } else {
                break;
            }
        }
        if ends.len() > FDS_SHOWN {
            out.push_str(&message[copied..ends[FDS_SHOWN - 1]]);
            let _ = write!(out, " and {} more", ends.len() - FDS_SHOWN);
            copied = pos;
        }
        at = pos.max(at + 1);
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(message);
    }
    out.push_str(&message[copied..]);
    std::borrow::Cow::Owned(out)
}

fn write_recently_closed(out: &mut String, report: &Report, backend: &str) {
    let closed: Vec<_> = report
        .recently_closed
        .iter()
        .filter(|c| c.peer.as_deref() == Some(backend))
        .collect();
    if closed.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "  recently closed connections to {} ({}):",
        escape(backend),
        closed.len()
    );
    for c in closed.iter().take(RECENTLY_CLOSED_SHOWN) {
        let stack = match (c.stack_id, c.stack.is_empty()) {
            (Some(id), true) => format!("stack {id}"),
            (Some(id), false) => format!(
                "stack {id} ({})",
                short_description(&c.stack, SHORT_STACK_FRAMES)
            ),
            (None, false) => short_description(&c.stack, SHORT_STACK_FRAMES),
            (None, true) => "no stack".to_string(),
        };
        let _ = writeln!(
            out,
            "    fd {}  closed {} ago after {} open, from {stack}",
            c.fd,
            duration(c.closed_ago_s),
            duration(c.created_ago_s - c.closed_ago_s)
        );
    }
    if closed.len() > RECENTLY_CLOSED_SHOWN {
        let _ = writeln!(
            out,
            "    … and {} more (see the JSON report)",
            closed.len() - RECENTLY_CLOSED_SHOWN
        );
    }
}

fn write_live_sockets<'a>(
    out: &mut String,
    report: &'a Report,
    columns: &Columns,
    stacks: &mut StackPrinter<'a>,
) {
    out.push('\n');
    if report.sockets.is_empty() {
        out.push_str("LIVE SOCKETS: none\n");
        return;
    }
    let _ = writeln!(
        out,
        "LIVE SOCKETS ({}), grouped by creating stack",
        report.sockets.len()
    );
    for group in group_by_stack(report.sockets.iter().collect(), GroupOrder::LargestFirst) {
        out.push('\n');
        let frames = stacks.frames(group.identity, "LIVE SOCKETS");
        write_group(out, columns, &group, "", frames, &|_| Vec::new());
    }
}

fn write_checkpoints(out: &mut String, report: &Report) {
    if report.checkpoints.is_empty() {
        return;
    }
    out.push_str("\nCHECKPOINTS\n");
    for c in &report.checkpoints {
        let _ = writeln!(
            out,
            "  checkpoint {} set {} ago: {} socket{} opened since then still open",
            c.id,
            duration(c.ago_s),
            c.open_since,
            plural(c.open_since)
        );
    }
}

fn write_suppressions(out: &mut String, report: &Report) {
    if report.suppressions_used.is_empty() {
        return;
    }
    out.push_str("\nSUPPRESSIONS USED\n");
    for s in &report.suppressions_used {
        let _ = writeln!(
            out,
            "  {} match{}: {}",
            s.matched,
            if s.matched == 1 { "" } else { "es" },
            escape(&s.rule)
        );
    }
}

fn write_notes(out: &mut String, report: &Report) {
    if report.notes.is_empty() {
        return;
    }
    out.push_str("\nNOTES\n");
    for note in &report.notes {
        let _ = writeln!(out, "  - {}", escape(note));
    }
}

/// The report's sockets looked up by fd. Built once per report: an open_at_exit finding in a
/// process with 18,000 sockets names every one of them, and a linear search per fd made the
/// text report quadratic (a quarter of a 450 ms report, in the benchmark's live workload).
struct SocketsByFd<'a>(std::collections::HashMap<i32, &'a Socket>);

impl<'a> SocketsByFd<'a> {
    fn of(report: &'a Report) -> SocketsByFd<'a> {
        let mut map = std::collections::HashMap::with_capacity(report.sockets.len());
        for socket in &report.sockets {
            // The first socket listed for an fd wins, as the linear search it replaces did.
            map.entry(socket.fd).or_insert(socket);
        }
        SocketsByFd(map)
    }

    /// The sockets for `fds` (in the finding's order) and the fds the report has no socket for.
    fn sockets_for(&self, fds: &[i32]) -> (Vec<&'a Socket>, Vec<i32>) {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for &fd in fds {
            match self.0.get(&fd) {
                Some(&socket) => found.push(socket),
                None => missing.push(fd),
            }
        }
        (found, missing)
    }
}

/// Sockets sharing one creating stack.
struct Group<'a> {
    identity: StackIdentity<'a>,
    sockets: Vec<&'a Socket>,
}

enum GroupOrder {
    /// Order of first appearance (inside a finding: the finding's fd order).
    FirstSeen,
    /// Most sockets first, then lowest first fd; stackless groups last.
    LargestFirst,
}

fn group_by_stack<'a>(sockets: Vec<&'a Socket>, order: GroupOrder) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    for socket in sockets {
        let identity = StackIdentity::of(socket);
        match groups.iter_mut().find(|g| g.identity == identity) {
            Some(group) => group.sockets.push(socket),
            None => groups.push(Group {
                identity,
                sockets: vec![socket],
            }),
        }
    }
    if let GroupOrder::LargestFirst = order {
        groups.sort_by_key(|g| {
            let stackless_rank = match g.identity {
                StackIdentity::None(Origin::Preexisting) => 1,
                StackIdentity::None(Origin::Inherited) => 2,
                StackIdentity::None(Origin::Created) => 3,
                _ => 0,
            };
            let first_fd = g.sockets.iter().map(|s| s.fd).min().unwrap_or(i32::MAX);
            (stackless_rank, std::cmp::Reverse(g.sockets.len()), first_fd)
        });
    }
    groups
}

/// How a group shows its creating stack.
enum Frames {
    /// Every frame: the first time the stack appears in the report.
    Full,
    /// Printed before, under the finding kind (or section) named.
    Above(&'static str),
    /// No frames at all (`--brief`): the stack's first frames named on the group's header
    /// line the first time, its id alone after that.
    Brief { first: bool },
}

/// Prints each stack's frames once per report: the first group created from a stack shows them,
/// later groups refer to that place.
struct StackPrinter<'a> {
    brief: bool,
    /// Stacks whose frames are printed, and under which finding kind or section.
    printed: Vec<(StackIdentity<'a>, &'static str)>,
}

impl<'a> StackPrinter<'a> {
    fn new(options: &Options) -> StackPrinter<'a> {
        StackPrinter {
            brief: options.brief,
            printed: Vec::new(),
        }
    }

    /// How a group created from `identity`, printed under `place`, shows its stack.
    fn frames(&mut self, identity: StackIdentity<'a>, place: &'static str) -> Frames {
        let printed = self
            .printed
            .iter()
            .find(|(printed, _)| *printed == identity);
        match printed {
            Some(_) if self.brief => Frames::Brief { first: false },
            Some(&(_, first)) => Frames::Above(first),
            None => {
                self.printed.push((identity, place));
                if self.brief {
                    Frames::Brief { first: true }
                } else {
                    Frames::Full
                }
            }
        }
    }
}

fn write_group(
    out: &mut String,
    columns: &Columns,
    group: &Group<'_>,
    indent: &str,
    frames: Frames,
    tags_for: &dyn Fn(&Socket) -> Vec<String>,
) {
    let n = group.sockets.len() as u64;
    let what = format!("{n} socket{}", plural(n));
    let stack = &group.sockets[0].stack;
    let short = || {
        if stack.is_empty() {
            "no frames recorded".to_string()
        } else {
            short_description(stack, SHORT_STACK_FRAMES)
        }
    };
    let _ = match (group.identity, &frames) {
        (StackIdentity::Id(id), Frames::Full) => {
            writeln!(out, "{indent}{what} created from stack {id}:")
        }
        (StackIdentity::Id(id), Frames::Above(place)) => writeln!(
            out,
            "{indent}{what} created from stack {id} (frames above, under {place}):"
        ),
        (StackIdentity::Id(id), Frames::Brief { first: true }) => {
            writeln!(out, "{indent}{what} created from stack {id} ({}):", short())
        }
        (StackIdentity::Id(id), Frames::Brief { first: false }) => {
            writeln!(out, "{indent}{what} created from stack {id}:")
        }
        (StackIdentity::Frames(_), Frames::Full) => writeln!(out, "{indent}{what} created from:"),
        (StackIdentity::Frames(_), Frames::Above(place)) => writeln!(
            out,
            "{indent}{what} created from the stack above, under {place} ({}):",
            short()
        ),
        (StackIdentity::Frames(_), Frames::Brief { .. }) => {
            writeln!(out, "{indent}{what} created from {}:", short())
        }
        (StackIdentity::None(Origin::Preexisting), _) => {
            writeln!(
                out,
                "{indent}{what} open before fdguard was loaded (no stack):"
            )
        }
        (StackIdentity::None(Origin::Inherited), _) => {
            writeln!(
                out,
                "{indent}{what} inherited from the parent process (no stack):"
            )
        }
        (StackIdentity::None(Origin::Created), _) => {
            writeln!(out, "{indent}{what} with no recorded stack:")
        }
        (StackIdentity::None(Origin::Received), _) => {
            writeln!(
                out,
                "{indent}{what} received from another process (SCM_RIGHTS, no stack):"
            )
        }
        (StackIdentity::None(Origin::Untracked), _) => {
            writeln!(
                out,
                "{indent}{what} found open that no hook saw created (raw system call?):"
            )
        }
        (StackIdentity::None(Origin::Observed), _) => {
            writeln!(
                out,
                "{indent}{what} seen from outside the process (no stack):"
            )
        }
        (StackIdentity::None(Origin::Unknown), _) => {
            writeln!(out, "{indent}{what} of unknown origin (no stack):")
        }
    };
    if let (false, Frames::Full) = (group.identity.is_none(), frames) {
        if stack.is_empty() {
            let _ = writeln!(out, "{indent}    (no frames recorded)");
        }
        for (index, frame) in stack.iter().enumerate() {
            let _ = writeln!(out, "{indent}    {}", frame_line(index, frame, true));
        }
    }
    for socket in group.sockets.iter().take(SOCKET_LINES_SHOWN) {
        let _ = writeln!(
            out,
            "{indent}  {}",
            columns.socket_line(socket, &tags_for(socket))
        );
    }
    if let Some(rest) = group
        .sockets
        .get(SOCKET_LINES_SHOWN..)
        .filter(|r| !r.is_empty())
    {
        let fds: Vec<i32> = rest.iter().map(|s| s.fd).collect();
        let _ = writeln!(out, "{indent}  {}", more_fds(&fds, " from this stack"));
    }
}

/// Column widths, measured over every socket of the report so all socket lines align.
struct Columns {
    fd: usize,
    family: usize,
    sock_type: usize,
    role: usize,
    endpoints: usize,
    state: usize,
    age: usize,
}

impl Columns {
    fn measure(sockets: &[Socket]) -> Columns {
        let width = |f: &dyn Fn(&Socket) -> usize| sockets.iter().map(f).max().unwrap_or(0);
        Columns {
            fd: width(&|s| s.fd.to_string().len()),
            family: width(&|s| s.family.len()),
            sock_type: width(&|s| s.sock_type.len()),
            role: width(&|s| s.role.as_str().len()),
            endpoints: width(&|s| endpoints(s).chars().count()),
            state: width(&|s| state(s).len()),
            age: width(&|s| age(s).len()),
        }
    }

    /// `fd 7   inet stream client  10.0.0.5:41876 -> 10.0.0.7:50051  CLOSE_WAIT  age 42.0s
    /// thread 4251 (grpc_global_tim)  [peer closed 30.5s ago]`.
    fn socket_line(&self, socket: &Socket, extra_tags: &[String]) -> String {
        let mut line = format!(
            "fd {:<fd$}  {:<family$}  {:<sock_type$}  {:<role$}  {}  {:<state$}  {:<age$}",
            socket.fd,
            socket.family,
            socket.sock_type,
            socket.role.as_str(),
            pad(&endpoints(socket), self.endpoints),
            state(socket),
            age(socket),
            fd = self.fd,
            family = self.family,
            sock_type = self.sock_type,
            role = self.role,
            state = self.state,
            age = self.age,
        );
        if let Some(thread) = &socket.thread {
            let _ = write!(line, "  thread {} ({})", thread.tid, escape(&thread.name));
        }
        let tags: Vec<String> = extra_tags.iter().cloned().chain(tags(socket)).collect();
        if !tags.is_empty() {
            line.push_str("  ");
            let bracketed: Vec<String> = tags.iter().map(|t| format!("[{t}]")).collect();
            line.push_str(&bracketed.join(" "));
        }
        line.trim_end().to_string()
    }
}

/// Left-aligns by characters (the arrow-free endpoints are ASCII, but peers may be unix paths
/// with any characters).
fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// Local and peer address, with the direction of the connection.
fn endpoints(socket: &Socket) -> String {
    let local = socket.local.as_deref().map(escape);
    let peer = socket.peer.as_deref().map(escape);
    let (local, peer) = (local.as_deref(), peer.as_deref());
    // An unknown local address (unnamed unix socket, failed connect) is left out, not `?`.
    let arrow = |arrow: &str| match local {
        Some(local) => format!("{local} {arrow} {}", peer.unwrap_or("?")),
        None => format!("{arrow} {}", peer.unwrap_or("?")),
    };
    match socket.role {
        Role::Client => arrow("->"),
        Role::Accepted => arrow("<-"),
        Role::Listener => format!("listening on {}", local.unwrap_or("?")),
        Role::Connected => arrow("<->"),
        Role::Pair => match peer {
            Some(peer) => format!("socketpair <-> {peer}"),
            None => "socketpair".to_string(),
        },
        Role::Unconnected => match local {
            Some(local) => format!("bound to {local}"),
            None => "-".to_string(),
        },
    }
}

/// The TCP state, with how long the connection has been in it where that says something
/// (`CLOSE_WAIT for 3h`; an ESTABLISHED connection's is about its age, shown next to it).
fn state(socket: &Socket) -> String {
    match (socket.tcp_state, socket.state_since_s) {
        (None, _) => "-".to_string(),
        (Some(state @ (TcpState::Established | TcpState::Listen)), _) | (Some(state), None) => {
            state.as_str().to_string()
        }
        (Some(state), Some(since)) => format!("{state} for {}", short_duration(since)),
    }
}

fn age(socket: &Socket) -> String {
    format!("age {}", duration(socket.age_s))
}

/// What else is worth knowing about one socket, as short bracketed tags.
fn tags(socket: &Socket) -> Vec<String> {
    let mut tags = Vec::new();
    if let Some(connect) = &socket.connect {
        // EINPROGRESS is how every non-blocking connect starts (gRPC's do): not worth a tag.
        if connect.result != "ok" && connect.result != "EINPROGRESS" {
            tags.push(format!("connect {}", connect.result));
        }
    }
    if let Some(ago) = socket.peer_closed_s {
        tags.push(format!("peer closed {} ago", duration(ago)));
    }
    if let Some(tcp) = &socket.tcp {
        let idle = tcp.idle_s().filter(|&idle| idle >= 1.0);
        if let (Some(TcpState::Established), Some(idle)) = (socket.tcp_state, idle) {
            tags.push(format!("idle {}", short_duration(idle)));
        }
        if tcp.unacked > 0 && (tcp.retransmits > 0 || tcp.backoff > 0) {
            let no_ack = tcp
                .last_ack_recv_s
                .map(|s| format!(", no ACK for {}", short_duration(s)))
                .unwrap_or_default();
            tags.push(format!(
                "{} retransmission{}{no_ack}",
                tcp.retransmits.max(tcp.backoff),
                plural(u64::from(tcp.retransmits.max(tcp.backoff)))
            ));
        }
        if let Some(unread) = tcp.recv_queue.filter(|&n| n > 0) {
            tags.push(format!("{unread} byte{} unread", plural(unread)));
        }
    }
    if let Some(shutdown) = &socket.shutdown {
        tags.push(format!(
            "shutdown {} {} ago",
            shutdown.how,
            duration(shutdown.ago_s)
        ));
    }
    if let Some(original) = socket.dup_of {
        tags.push(format!("dup of {original}"));
    }
    if let Some(label) = &socket.label {
        tags.push(format!("label \"{}\"", escape(label).replace('"', "\\\"")));
    }
    if socket.origin == Origin::Inherited {
        tags.push("inherited across fork".to_string());
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn empty_report() -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "fdguard 0.1.0".to_string(),
            collector: Collector::Preload,
            pid: 7,
            program: "/bin/x".to_string(),
            cmdline: vec![],
            trigger: Trigger::Exit,
            seq: 1,
            time_unix_ms: 0,
            uptime_s: 1.0,
            fd_budget: FdBudget {
                open_fds: 4,
                limit_soft: 1024,
                limit_hard: 4096,
                sockets_open: 0,
                sockets_tracked: 0,
            },
            sockets: vec![],
            findings: vec![],
            recently_closed: vec![],
            suppressions_used: vec![],
            checkpoints: vec![],
            notes: vec![],
            summary: Summary::default(),
        }
    }

    #[test]
    fn empty_report_is_short_and_explicit() {
        let text = render(&empty_report());
        assert_eq!(
            text,
            "==7==fdguard 0.1.0: socket report #1 (trigger: exit) at 1970-01-01 00:00:00 UTC\n\
             ==7==program /bin/x, pid 7, up 1.0s\n\
             ==7==fd budget: 4 of 1024 fds open (hard limit 4096); 0 sockets, 0 tracked\n\
             \n\
             FINDINGS: none\n\
             \n\
             LIVE SOCKETS: none\n\
             \n\
             SUMMARY: fdguard: 0 live sockets from 0 stacks; no findings\n"
        );
    }

    #[test]
    fn budget_warning_and_unlimited() {
        let mut report = empty_report();
        report.fd_budget.open_fds = 900;
        assert!(render(&report).contains("==7==WARNING: 87% of the fd limit is in use"));
        report.fd_budget.limit_soft = u64::MAX;
        report.fd_budget.limit_hard = u64::MAX;
        let text = render(&report);
        assert!(text.contains("900 of unlimited fds open (hard limit unlimited)"));
        assert!(!text.contains("WARNING"));
    }

    #[test]
    fn summary_counts_unknown_kinds_and_suppressed() {
        let mut report = empty_report();
        report
            .summary
            .findings
            .insert("open_at_exit".to_string(), 2);
        report.summary.findings.insert("peer_closed".to_string(), 1);
        report
            .summary
            .findings
            .insert("from_the_future".to_string(), 3);
        report
            .summary
            .findings
            .insert("duplicate_backend".to_string(), 0);
        report.summary.suppressed = 4;
        assert_eq!(
            summary_line(&report),
            "SUMMARY: fdguard: 0 live sockets from 0 stacks; findings: 1 peer_closed, \
             2 open_at_exit, 3 from_the_future (4 suppressed)"
        );
    }

    #[test]
    fn summary_says_how_many_leaks_and_says_so_when_there_are_none() {
        let mut report = empty_report();
        report
            .summary
            .findings
            .insert("duplicate_backend".to_string(), 2);
        report.summary.by_severity.insert("info".to_string(), 2);
        assert!(
            summary_line(&report).ends_with("findings: 2 duplicate_backend; no leaks: 2 info"),
            "{}",
            summary_line(&report)
        );
        report.summary.by_severity.insert("leak".to_string(), 1);
        report.summary.by_severity.insert("warning".to_string(), 1);
        assert!(summary_line(&report).ends_with("; 1 leak, 1 warning, 2 info"));
    }

    #[test]
    fn long_fd_lists_in_messages_are_cut() {
        let fds: Vec<String> = (100..130).map(|fd| fd.to_string()).collect();
        let message = format!(
            "30 connections to a:1 (fds {}), ages 1s: fd 7 dead while fd {} are alive; \
             likely leak: fd 7",
            fds.join(", "),
            fds[1..].join(", ")
        );
        let first: Vec<String> = (100..120).map(|fd| fd.to_string()).collect();
        let next: Vec<String> = (101..121).map(|fd| fd.to_string()).collect();
        assert_eq!(
            shorten_fd_lists(&message),
            format!(
                "30 connections to a:1 (fds {} and 10 more), ages 1s: fd 7 dead while fd {} \
                 and 9 more are alive; likely leak: fd 7",
                first.join(", "),
                next.join(", ")
            )
        );
        let short = format!("fds {}; hold 5, 6, 7", fds[..FDS_SHOWN].join(", "));
        assert!(matches!(
            shorten_fd_lists(&short),
            std::borrow::Cow::Borrowed(_)
        ));
        // Other words ending in "fd", other numbers and non-ASCII text are left alone.
        let other = format!("ünïcode selfd {} é", fds.join(", "));
        assert_eq!(shorten_fd_lists(&other), other);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--target=a:1"), "--target=a:1");
        assert_eq!(shell_quote("two words"), "'two words'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a\nb 'c'\\"), r"$'a\nb \'c\'\\'");
        assert_eq!(shell_quote("x\u{202e}y"), r"$'x\u202ey'");
    }

    #[test]
    fn host_strings_cannot_forge_lines_or_reach_the_terminal() {
        assert!(matches!(
            escape("plain name"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(escape("a\nSUMMARY: x"), r"a\nSUMMARY: x");
        assert_eq!(escape("\u{1b}[2J\u{7}\u{9b}"), r"\x1b[2J\x07\x9b");
        assert_eq!(escape("back\\slash"), r"back\\slash");
        assert_eq!(escape("rtl\u{202e}txt"), r"rtl\u202etxt");
        let mut report = empty_report();
        report.program = "/tmp/a\nSUMMARY: fdguard: 0 live sockets\u{1b}]0;t\u{7}".to_string();
        report.sockets.push(Socket {
            fd: 3,
            family: "unix".to_string(),
            sock_type: "stream".to_string(),
            role: Role::Client,
            peer: Some("@evil\nSUMMARY: fake\u{1b}[31m".to_string()),
            thread: Some(ThreadInfo {
                tid: 9,
                name: "t\n==9==x\u{1b}".to_string(),
            }),
            label: Some("lab\"el\r".to_string()),
            ..Socket::default()
        });
        let text = render(&report);
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\r'));
        let summaries = text.lines().filter(|l| l.starts_with("SUMMARY:")).count();
        assert_eq!(summaries, 1, "{text}");
        assert!(text.contains(r"@evil\nSUMMARY: fake\x1b[31m"), "{text}");
        assert!(text.contains(r"thread 9 (t\n==9==x\x1b)"), "{text}");
        assert!(text.contains(r#"[label "lab\"el\r"]"#), "{text}");
    }
}
