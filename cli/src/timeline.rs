//! A series of reports of one process as a timeline: per sample, live sockets per backend, per
//! TCP state and per creating stack, the fd budget, and the findings; then what grew between
//! the first and the last sample, with rates. `fdguard watch` builds one while it samples (and
//! prints [`render_growth`] at the end); `fdguard html` builds them from saved reports and
//! draws them (`crate::html`).
//!
//! Pure: reports in, numbers out. Sockets are counted per socket, not per fd (a dup()ed fd is
//! not a second connection), except `live_sockets`, which is the report's own count of fds.
//! Stacks are matched across reports by `fdguard_report::stacks::stack_key` (function and
//! module names), as `fdguard diff` does, never by per-report ids.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use fdguard_report::stacks::{short_description, stack_key};
use fdguard_report::units::{duration, utc_from_unix_ms};
use fdguard_report::{Collector, FindingKind, Frame, Origin, Report, Role, Severity, Socket};
use serde::Serialize;

/// Frames named in one-line stack descriptions.
const SHORT_STACK_FRAMES: usize = 3;

/// What a socket counts toward in the per-backend series: the peer of a client connection,
/// the local address for accepted connections and listeners, or its kind.
pub fn backend_of(socket: &Socket) -> String {
    let local = socket.local.as_deref().unwrap_or("?");
    match socket.role {
        Role::Client | Role::Connected => match &socket.peer {
            Some(peer) => peer.clone(),
            None => format!("{} {} (peer gone)", socket.family, socket.sock_type),
        },
        Role::Accepted => format!("accepted on {local}"),
        Role::Listener => format!("listening on {local}"),
        Role::Pair => "socketpairs".to_string(),
        Role::Unconnected => format!("unconnected {} {}", socket.family, socket.sock_type),
    }
}

/// The per-state series name of a socket.
pub fn state_of(socket: &Socket) -> &'static str {
    socket.tcp_state.map_or("not TCP", |s| s.as_str())
}

/// One report, condensed.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// When it was taken, ms since the Unix epoch.
    pub time_unix_ms: u64,
    /// The report's sequence number.
    pub seq: u64,
    /// How it was taken (`preload` or `inspect`).
    pub collector: String,
    /// Open fds (all kinds).
    pub open_fds: u64,
    /// The soft fd limit.
    pub limit_soft: u64,
    /// Live socket fds.
    pub live_sockets: u64,
    /// Unsuppressed findings.
    pub findings: u64,
    /// Unsuppressed findings of severity `leak`.
    pub leaks: u64,
    /// Sockets per backend ([`backend_of`]).
    pub by_backend: BTreeMap<String, u64>,
    /// Sockets per TCP state ([`state_of`]).
    pub by_state: BTreeMap<String, u64>,
    /// Sockets per creating stack (index into [`Timeline::stacks`]).
    pub by_stack: BTreeMap<usize, u64>,
    /// Unsuppressed findings per track (index into [`Timeline::findings`]).
    pub by_finding: BTreeMap<usize, u64>,
}

/// A creating stack seen in the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct StackInfo {
    /// Its process-independent key.
    pub key: Vec<String>,
    /// One line naming it (`open_backup_connection <- run_client <- main`).
    pub summary: String,
    /// Its frames, from the latest report that had it.
    pub frames: Vec<Frame>,
}

/// Findings of one kind about one subject (backend, or creating stack) across samples.
#[derive(Debug, Clone, Serialize)]
pub struct FindingTrack {
    /// The kind.
    pub kind: FindingKind,
    /// The most severe severity seen.
    pub severity: Severity,
    /// What the findings are about: the backend, else the creating stack, else `-`.
    pub subject: String,
    /// The sample where they first appeared (index) and when.
    pub first_sample: usize,
    /// ms since the Unix epoch.
    pub first_unix_ms: u64,
    /// The last sample that had them, and when.
    pub last_sample: usize,
    /// ms since the Unix epoch.
    pub last_unix_ms: u64,
    /// How many in the last sample that had them.
    pub last_count: u64,
    /// The most at once.
    pub peak: u64,
    /// The newest message.
    pub example: String,
}

/// The samples of one process, in time order.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// The process.
    pub pid: i32,
    /// Its program.
    pub program: String,
    /// The condensed reports.
    pub samples: Vec<Sample>,
    /// Creating stacks (only sockets with a stack, or a known origin, count).
    pub stacks: Vec<StackInfo>,
    /// Finding tracks, in order of first appearance.
    pub findings: Vec<FindingTrack>,
    /// Per backend, per TCP state, in the last sample.
    pub last_backend_states: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(skip)]
    stack_index: HashMap<Vec<String>, usize>,
    #[serde(skip)]
    finding_index: HashMap<(FindingKind, String), usize>,
}

/// The stack key of a socket, or `None` for sockets seen from outside (no stack to tell).
fn stack_of(socket: &Socket) -> Option<Vec<String>> {
    if socket.stack.is_empty() && socket.origin == Origin::Observed {
        return None;
    }
    Some(stack_key(&socket.stack, socket.origin))
}

impl Timeline {
    /// An empty timeline for `pid`.
    pub fn new(pid: i32, program: &str) -> Timeline {
        Timeline {
            pid,
            program: program.to_string(),
            samples: Vec::new(),
            stacks: Vec::new(),
            findings: Vec::new(),
            last_backend_states: BTreeMap::new(),
            stack_index: HashMap::new(),
            finding_index: HashMap::new(),
        }
    }

    fn stack_id(&mut self, socket: &Socket) -> Option<usize> {
        let key = stack_of(socket)?;
        if let Some(&id) = self.stack_index.get(&key) {
            if !socket.stack.is_empty() {
                self.stacks[id].frames = socket.stack.to_vec();
            }
            return Some(id);
        }
        let id = self.stacks.len();
        self.stacks.push(StackInfo {
            key: key.clone(),
            summary: if socket.stack.is_empty() {
                key.first().cloned().unwrap_or_default()
            } else {
                short_description(&socket.stack, SHORT_STACK_FRAMES)
            },
            frames: socket.stack.to_vec(),
        });
        self.stack_index.insert(key, id);
        Some(id)
    }

    /// Adds a report (of this process, taken after the previous ones).
    pub fn push(&mut self, report: &Report) {
        let index = self.samples.len();
        let mut sample = Sample {
            time_unix_ms: report.time_unix_ms,
            seq: report.seq,
            collector: match report.collector {
                Collector::Preload => "preload",
                Collector::Inspect => "inspect",
                Collector::Unknown => "unknown",
            }
            .to_string(),
            open_fds: report.fd_budget.open_fds,
            limit_soft: report.fd_budget.limit_soft,
            live_sockets: report.sockets.len() as u64,
            findings: 0,
            leaks: 0,
            by_backend: BTreeMap::new(),
            by_state: BTreeMap::new(),
            by_stack: BTreeMap::new(),
            by_finding: BTreeMap::new(),
        };
        let mut seen = BTreeSet::new();
        let mut backend_states: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for socket in &report.sockets {
            if !seen.insert(socket.socket_id) {
                continue; // a dup of a socket already counted
            }
            let backend = backend_of(socket);
            let state = state_of(socket).to_string();
            *sample.by_backend.entry(backend.clone()).or_default() += 1;
            *sample.by_state.entry(state.clone()).or_default() += 1;
            *backend_states
                .entry(backend)
                .or_default()
                .entry(state)
                .or_default() += 1;
            if let Some(id) = self.stack_id(socket) {
                *sample.by_stack.entry(id).or_default() += 1;
            }
        }
        for finding in report.findings.iter().filter(|f| f.suppressed_by.is_none()) {
            sample.findings += 1;
            if finding.severity() == Severity::Leak {
                sample.leaks += 1;
            }
            let socket = finding
                .suspect_fds
                .first()
                .or(finding.fds.first())
                .and_then(|fd| report.sockets.iter().find(|s| s.fd == *fd));
            let subject = match (&finding.backend, socket) {
                (Some(backend), _) => backend.clone(),
                (None, Some(s)) if !s.stack.is_empty() => {
                    short_description(&s.stack, SHORT_STACK_FRAMES)
                }
                _ => "-".to_string(),
            };
            let key = (finding.kind, subject.clone());
            let id = match self.finding_index.get(&key) {
                Some(&id) => id,
                None => {
                    let id = self.findings.len();
                    self.findings.push(FindingTrack {
                        kind: finding.kind,
                        severity: finding.severity(),
                        subject,
                        first_sample: index,
                        first_unix_ms: report.time_unix_ms,
                        last_sample: index,
                        last_unix_ms: report.time_unix_ms,
                        last_count: 0,
                        peak: 0,
                        example: finding.message.clone(),
                    });
                    self.finding_index.insert(key, id);
                    id
                }
            };
            *sample.by_finding.entry(id).or_default() += 1;
            let track = &mut self.findings[id];
            track.severity = track.severity.min(finding.severity());
            track.example = finding.message.clone();
        }
        for (&id, &count) in &sample.by_finding {
            let track = &mut self.findings[id];
            track.last_sample = index;
            track.last_unix_ms = report.time_unix_ms;
            track.last_count = count;
            track.peak = track.peak.max(count);
        }
        self.last_backend_states = backend_states;
        self.samples.push(sample);
    }

    /// Seconds from the first sample to the last.
    pub fn span_s(&self) -> f64 {
        match (self.samples.first(), self.samples.last()) {
            (Some(a), Some(b)) => b.time_unix_ms.saturating_sub(a.time_unix_ms) as f64 / 1000.0,
            _ => 0.0,
        }
    }

    /// True when no sample has creating stacks (every report was taken from outside).
    pub fn stackless(&self) -> bool {
        self.stacks.is_empty()
    }

    /// What changed between the first and the last sample.
    pub fn growth(&self) -> Growth {
        let span_s = self.span_s();
        let change = |series: &dyn Fn(&Sample) -> u64| Change::of(&self.samples, series, span_s);
        let rows = |names: Vec<String>, series: &dyn Fn(&Sample, &str) -> u64| {
            let mut rows: Vec<Row> = names
                .into_iter()
                .map(|name| Row {
                    change: change(&|s| series(s, &name)),
                    detail: None,
                    stack: None,
                    name,
                })
                .filter(|r| r.change.delta > 0)
                .collect();
            rows.sort_by(|a, b| {
                b.change
                    .delta
                    .cmp(&a.change.delta)
                    .then(b.change.last.cmp(&a.change.last))
                    .then(a.name.cmp(&b.name))
            });
            rows
        };
        let names = |f: &dyn Fn(&Sample) -> Vec<String>| -> Vec<String> {
            let set: BTreeSet<String> = self.samples.iter().flat_map(f).collect();
            set.into_iter().collect()
        };
        let mut backends = rows(
            names(&|s| s.by_backend.keys().cloned().collect()),
            &|s, name| s.by_backend.get(name).copied().unwrap_or(0),
        );
        for row in &mut backends {
            if let Some(states) = self.last_backend_states.get(&row.name) {
                let parts: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
                row.detail = Some(parts.join(", "));
            }
        }
        let states = rows(
            names(&|s| s.by_state.keys().cloned().collect()),
            &|s, name| s.by_state.get(name).copied().unwrap_or(0),
        );
        let mut stacks: Vec<Row> = (0..self.stacks.len())
            .map(|id| Row {
                name: self.stacks[id].summary.clone(),
                change: change(&|s| s.by_stack.get(&id).copied().unwrap_or(0)),
                detail: None,
                stack: Some(id),
            })
            .filter(|r| r.change.delta > 0)
            .collect();
        stacks.sort_by(|a, b| {
            b.change
                .delta
                .cmp(&a.change.delta)
                .then(b.change.last.cmp(&a.change.last))
        });
        Growth {
            pid: self.pid,
            program: self.program.clone(),
            samples: self.samples.len(),
            span_s,
            first_unix_ms: self.samples.first().map_or(0, |s| s.time_unix_ms),
            collectors: self
                .samples
                .iter()
                .map(|s| s.collector.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            live_sockets: change(&|s| s.live_sockets),
            open_fds: change(&|s| s.open_fds),
            limit_soft: self.samples.last().map_or(0, |s| s.limit_soft),
            backends,
            stacks,
            states,
            stackless: self.stackless(),
            findings: self.findings.clone(),
        }
    }
}

/// A count at the first and the last sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    /// In the first sample.
    pub first: u64,
    /// In the last sample.
    pub last: u64,
    /// The most in any sample.
    pub peak: u64,
    /// `last - first`.
    pub delta: i64,
    /// `delta` per minute of the watch (0 with a single sample).
    pub per_minute: f64,
}

impl Change {
    fn of(samples: &[Sample], series: &dyn Fn(&Sample) -> u64, span_s: f64) -> Change {
        let first = samples.first().map_or(0, series);
        let last = samples.last().map_or(0, series);
        let peak = samples.iter().map(series).max().unwrap_or(0);
        let delta = last as i64 - first as i64;
        Change {
            first,
            last,
            peak,
            delta,
            per_minute: if span_s > 0.0 {
                delta as f64 * 60.0 / span_s
            } else {
                0.0
            },
        }
    }
}

/// One thing that grew.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The backend, state, or one-line stack.
    pub name: String,
    /// How it changed.
    pub change: Change,
    /// For a backend: its sockets per TCP state at the end.
    pub detail: Option<String>,
    /// For a stack: its index in [`Timeline::stacks`].
    pub stack: Option<usize>,
}

/// What grew during a watch.
#[derive(Debug, Clone, Serialize)]
pub struct Growth {
    /// The process.
    pub pid: i32,
    /// Its program.
    pub program: String,
    /// Samples taken.
    pub samples: usize,
    /// Seconds from the first to the last.
    pub span_s: f64,
    /// When the first was taken.
    pub first_unix_ms: u64,
    /// How the samples were taken (`inspect`, `preload`).
    pub collectors: Vec<String>,
    /// Live socket fds.
    pub live_sockets: Change,
    /// Open fds.
    pub open_fds: Change,
    /// The soft fd limit at the end.
    pub limit_soft: u64,
    /// Backends with more sockets at the end, most growth first.
    pub backends: Vec<Row>,
    /// Creating stacks with more sockets at the end, most growth first.
    pub stacks: Vec<Row>,
    /// TCP states with more sockets at the end.
    pub states: Vec<Row>,
    /// No sample had creating stacks (taken from outside).
    pub stackless: bool,
    /// Every finding track.
    pub findings: Vec<FindingTrack>,
}

/// `12.0/min`, `3.0/h`: the unit that keeps the figure readable.
pub fn rate(per_minute: f64) -> String {
    let magnitude = per_minute.abs();
    if magnitude >= 1.0 || magnitude == 0.0 {
        format!("{per_minute:.1}/min")
    } else {
        format!("{:.1}/h", per_minute * 60.0)
    }
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

fn limit(value: u64) -> String {
    if value == u64::MAX {
        "unlimited".to_string()
    } else {
        value.to_string()
    }
}

/// The end-of-watch summary for humans. Deterministic.
pub fn render_growth(growth: &Growth) -> String {
    let mut out = String::new();
    let how = if growth.collectors.iter().all(|c| c == "inspect") {
        "seen from outside (fdguard inspect)"
    } else {
        "reports from libfdguard.so"
    };
    let _ = writeln!(
        out,
        "fdguard watch: process {} ({}): {} sample{} over {} from {}, {how}",
        growth.pid,
        growth.program,
        growth.samples,
        if growth.samples == 1 { "" } else { "s" },
        duration(growth.span_s),
        utc_from_unix_ms(growth.first_unix_ms)
    );
    let live = &growth.live_sockets;
    let _ = writeln!(
        out,
        "  live sockets {} -> {} ({}, {}), peak {}; fds {} -> {} of {}",
        live.first,
        live.last,
        signed(live.delta),
        rate(live.per_minute),
        live.peak,
        growth.open_fds.first,
        growth.open_fds.last,
        limit(growth.limit_soft)
    );
    let table = |out: &mut String, title: &str, rows: &[Row], empty: &str| {
        let _ = writeln!(out, "\n{title}");
        if rows.is_empty() {
            let _ = writeln!(out, "  {empty}");
            return;
        }
        let width = rows
            .iter()
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(0);
        for row in rows {
            let c = &row.change;
            let mut line = format!(
                "  {:<width$}  {:>5}  {:>10}  {} -> {} (peak {})",
                row.name,
                signed(c.delta),
                rate(c.per_minute),
                c.first,
                c.last,
                c.peak
            );
            if let Some(detail) = &row.detail {
                let _ = write!(line, "  [{detail}]");
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
    };
    table(
        &mut out,
        "GROWTH PER BACKEND",
        &growth.backends,
        "no backend grew",
    );
    if growth.stackless {
        let _ = writeln!(
            out,
            "\nGROWTH PER CREATING STACK\n  no stacks: the process was seen from outside; run it under \
             libfdguard.so (fdguard run) for the stacks that create sockets"
        );
    } else {
        table(
            &mut out,
            "GROWTH PER CREATING STACK",
            &growth.stacks,
            "no creating stack grew",
        );
    }
    table(
        &mut out,
        "GROWTH PER TCP STATE",
        &growth.states,
        "no state grew",
    );
    let _ = writeln!(out, "\nFINDINGS");
    if growth.findings.is_empty() {
        let _ = writeln!(out, "  none in any sample");
    }
    for track in &growth.findings {
        let when = if track.first_sample == 0 {
            "from the first sample".to_string()
        } else {
            format!(
                "first at +{} (sample {})",
                duration(track.first_unix_ms.saturating_sub(growth.first_unix_ms) as f64 / 1000.0),
                track.first_sample + 1
            )
        };
        let now = if track.last_sample + 1 == growth.samples {
            format!("{} in the last sample", track.last_count)
        } else {
            format!("gone after sample {}", track.last_sample + 1)
        };
        let _ = writeln!(
            out,
            "  {} ({}) {}: {when}; {now}, peak {}",
            track.kind.as_str(),
            track.severity.as_str(),
            track.subject,
            track.peak
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdguard_report::{FdBudget, Finding, SCHEMA_VERSION, Summary, TcpState, Trigger};

    fn socket(fd: i32, peer: &str, state: TcpState, stack: &str) -> Socket {
        Socket {
            fd,
            socket_id: fd as u64,
            family: "inet".into(),
            sock_type: "stream".into(),
            role: Role::Client,
            origin: Origin::Created,
            peer: Some(peer.into()),
            tcp_state: Some(state),
            stack: vec![Frame {
                ip: "0x1".into(),
                function: Some(stack.into()),
                module: Some("/bin/app".into()),
                ..Frame::default()
            }]
            .into(),
            stack_id: Some(1),
            ..Socket::default()
        }
    }

    fn report(seq: u64, at_s: u64, sockets: Vec<Socket>, findings: Vec<Finding>) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            tool: "fdguard 0.1.0".into(),
            collector: Collector::Preload,
            pid: 7,
            program: "/bin/app".into(),
            cmdline: vec![],
            trigger: Trigger::Signal,
            seq,
            time_unix_ms: 1_000_000 + at_s * 1000,
            uptime_s: at_s as f64,
            fd_budget: FdBudget {
                open_fds: 3 + sockets.len() as u64,
                limit_soft: 1024,
                limit_hard: 1024,
                sockets_open: sockets.len() as u64,
                sockets_tracked: sockets.len() as u64,
            },
            sockets,
            findings,
            recently_closed: vec![],
            suppressions_used: vec![],
            checkpoints: vec![],
            notes: vec![],
            summary: Summary::default(),
        }
    }

    fn leak(fd: i32, backend: &str) -> Finding {
        Finding {
            kind: FindingKind::PeerClosed,
            fds: vec![fd],
            message: format!("fd {fd} leaked"),
            backend: Some(backend.into()),
            suspect_fds: vec![],
            checkpoint: None,
            suppressed_by: None,
            severity: Some(Severity::Leak),
            rate_per_min: None,
        }
    }

    /// A pool of 2 stays put while a leak adds 5 CLOSE_WAIT sockets in 60 s.
    fn leaking() -> Timeline {
        let mut timeline = Timeline::new(7, "/bin/app");
        for minute_part in 0..=5u64 {
            let mut sockets = vec![
                socket(3, "10.0.0.1:6379", TcpState::Established, "pool_connect"),
                socket(4, "10.0.0.1:6379", TcpState::Established, "pool_connect"),
            ];
            let mut findings = Vec::new();
            for i in 0..minute_part as i32 {
                sockets.push(socket(
                    10 + i,
                    "10.0.0.9:443",
                    TcpState::CloseWait,
                    "leaky_connect",
                ));
                if i < minute_part as i32 - 1 {
                    findings.push(leak(10 + i, "10.0.0.9:443"));
                }
            }
            timeline.push(&report(
                minute_part + 1,
                minute_part * 12,
                sockets,
                findings,
            ));
        }
        timeline
    }

    #[test]
    fn growth_names_the_leaking_backend_and_stack_with_rates() {
        let growth = leaking().growth();
        assert_eq!(growth.samples, 6);
        assert_eq!(growth.span_s, 60.0);
        assert_eq!(growth.live_sockets.delta, 5);
        assert_eq!(growth.live_sockets.per_minute, 5.0);
        assert_eq!(growth.backends.len(), 1, "{:?}", growth.backends);
        assert_eq!(growth.backends[0].name, "10.0.0.9:443");
        assert_eq!(growth.backends[0].change.first, 0);
        assert_eq!(growth.backends[0].change.last, 5);
        assert_eq!(growth.backends[0].detail.as_deref(), Some("CLOSE_WAIT 5"));
        assert_eq!(growth.stacks.len(), 1);
        assert_eq!(growth.stacks[0].name, "leaky_connect");
        assert_eq!(growth.states[0].name, "CLOSE_WAIT");
        let track = &growth.findings[0];
        assert_eq!(
            (track.first_sample, track.last_count, track.peak),
            (2, 4, 4)
        );
        let text = render_growth(&growth);
        assert!(
            text.contains("live sockets 2 -> 7 (+5, 5.0/min), peak 7"),
            "{text}"
        );
        assert!(text.contains("10.0.0.9:443"), "{text}");
        assert!(text.contains("leaky_connect"), "{text}");
        assert!(
            !text.contains("pool_connect"),
            "the pool did not grow:\n{text}"
        );
        assert!(
            text.contains("peer_closed (leak) 10.0.0.9:443: first at +24.0s (sample 3); 4 in the last sample, peak 4"),
            "{text}"
        );
    }

    #[test]
    fn dups_count_once_and_rates_pick_a_readable_unit() {
        let mut timeline = Timeline::new(7, "/bin/app");
        let mut a = socket(3, "10.0.0.1:1", TcpState::Established, "f");
        let mut b = a.clone();
        b.fd = 4;
        a.socket_id = 99;
        b.socket_id = 99;
        timeline.push(&report(1, 0, vec![a, b], vec![]));
        assert_eq!(timeline.samples[0].by_backend["10.0.0.1:1"], 1);
        assert_eq!(timeline.samples[0].live_sockets, 2);
        assert_eq!(rate(0.5), "30.0/h");
        assert_eq!(rate(12.0), "12.0/min");
        assert_eq!(rate(0.0), "0.0/min");
        let growth = timeline.growth();
        assert_eq!(growth.live_sockets.per_minute, 0.0, "one sample: no rate");
    }

    #[test]
    fn sockets_seen_from_outside_have_no_stack_series() {
        let mut timeline = Timeline::new(7, "/bin/app");
        let mut s = socket(3, "10.0.0.1:1", TcpState::CloseWait, "f");
        s.stack = Default::default();
        s.stack_id = None;
        s.origin = Origin::Observed;
        let mut r = report(1, 0, vec![s], vec![]);
        r.collector = Collector::Inspect;
        timeline.push(&r);
        assert!(timeline.stackless());
        let text = render_growth(&timeline.growth());
        assert!(
            text.contains("no stacks: the process was seen from outside"),
            "{text}"
        );
    }
}
