//! Detectors: pure functions from a report's sockets (plus explicit inputs: [`Settings`] and,
//! for the trends, the watcher's [`Samples`]) to findings. They never touch a live process, so
//! they are unit-tested on hand-made sockets, and the library (`libfdguard.so`) and the CLI
//! (`fdguard inspect`, which has no stacks and no history) run exactly the same ones.
//!
//! Every finding carries a [`Severity`]. Only `leak` findings gate FDGUARD_EXITCODE
//! ([`gating`]); a healthy program gets none. The kinds, with their severities:
//!
//! - `peer_closed` (leak): the peer's side is finished (CLOSE_WAIT, LAST_ACK, CLOSING,
//!   TIME_WAIT, or CLOSE after a connection) and the app kept the fd longer than the grace
//!   period.
//! - `shutdown_not_closed` (leak): shutdown() called, close() not, longer than the grace period.
//! - `stuck_connecting`: connect() failed (or was never answered and the kernel gave up) and the
//!   fd is kept past the grace period (leak); or the connection sits in SYN_SENT longer than
//!   the connect threshold (warning: the kernel will give up, the program may still clean up).
//! - `half_open` (warning): data sent and retransmitted, or keepalive probes sent, with no ACK
//!   from the peer for longer than the half-open threshold: the peer vanished without a FIN.
//! - `idle_orphan` (warning): a client connection that moved no payload either way for longer
//!   than the idle threshold, keepalive off (grpc/grpc#42125's connection that outlives
//!   `channel.close()`). A connection with `SO_KEEPALIVE` on is one its program expects to sit
//!   idle: not reported.
//! - `since_checkpoint` (leak): created after a checkpoint and still open.
//! - `growth` (warning): live sockets per creating stack or per backend that keep rising across
//!   the samples (needs [`Samples`]).
//! - `reconnect_churn` (warning): connections to one backend closed and reopened per minute far
//!   above the process's own norm, and at least 20 of them (needs [`Samples`]).
//! - `duplicate_backend`: several client connections to one backend. A pool is context (info);
//!   a warning when a member is dead or stale while a sibling is alive (the grpc/grpc#38871
//!   shape) or when the group keeps growing past its own high-water mark.
//! - `open_at_exit`: sockets this process created and still holds at exit: leak when another
//!   leak finding names the socket, info otherwise (a peer that hung up just before exit is not
//!   a leak).

mod exit;
mod pool;
mod sockets;
pub mod suppress;
mod trend;

pub use trend::{Rise, Samples, Series, rising};

use crate::{Finding, Report, Role, Severity, Socket};
use std::collections::BTreeMap;

/// What the detectors need besides the sockets. [`Settings::default`] holds the documented
/// defaults (the library's FDGUARD_* defaults; a unit test in the library keeps them equal).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How long a socket may stay open after its peer hung up, after shutdown(), or after its
    /// connect() failed (seconds).
    pub grace_s: f64,
    /// Simultaneous client connections to one backend that make a duplicate group.
    pub dup_min: usize,
    /// A client connection with no payload either way for this long is an idle orphan
    /// (seconds).
    pub idle_s: f64,
    /// A connection in SYN_SENT for this long is stuck connecting (seconds).
    pub connect_s: f64,
    /// Unacknowledged data (or keepalive probes) with no ACK for this long is half-open
    /// (seconds).
    pub half_open_s: f64,
    /// Rise in live sockets, per stack or per backend, that makes a growth finding.
    pub growth_min: u64,
    /// Connections per minute to one backend below which churn is never reported.
    pub churn_per_min: f64,
    /// The report is the exit report: `open_at_exit` findings are made.
    pub at_exit: bool,
    /// (checkpoint id, seconds since it was set): sockets younger than that were opened since.
    pub checkpoints: Vec<(u64, f64)>,
    /// Counts over time for `growth`, `reconnect_churn` and a duplicate group's growth; empty
    /// when there is no history (those findings are then simply not made).
    pub samples: Samples,
}

impl Default for Settings {
    /// The library's defaults (the `FDGUARD_*` thresholds' defaults), not at exit, no
    /// checkpoints, no samples. Callers that know only some values (`fdguard inspect`) write
    /// `Settings { grace_s, ..Settings::default() }` and keep compiling as fields are added.
    fn default() -> Settings {
        Settings {
            grace_s: 60.0,
            dup_min: 2,
            idle_s: 1800.0,
            connect_s: 30.0,
            half_open_s: 60.0,
            growth_min: 20,
            churn_per_min: 60.0,
            at_exit: false,
            checkpoints: Vec::new(),
            samples: Samples::default(),
        }
    }
}

// Shared with the text renderer, which groups findings by the same judgements.
pub use crate::verdict::{
    ExitSeverity, connect_failure, exit_severity, never_connected, peer_gone, peer_gone_state,
};

/// Sockets keyed by socket_id (dup'ed fds belong to one socket), in fd order.
fn by_socket(sockets: &[Socket]) -> BTreeMap<u64, Vec<&Socket>> {
    let mut map: BTreeMap<u64, Vec<&Socket>> = BTreeMap::new();
    for s in sockets {
        map.entry(s.socket_id).or_default().push(s);
    }
    map
}

fn fds(members: &[&Socket]) -> Vec<i32> {
    let mut v: Vec<i32> = members.iter().map(|s| s.fd).collect();
    v.sort_unstable();
    v
}

/// `to 10.0.0.7:443 (CLOSE_WAIT)`, `listening on …`, `inet stream`.
fn describe(s: &Socket) -> String {
    if s.role == Role::Listener {
        return match &s.local {
            Some(local) => format!("listening on {local}"),
            None => "listening".to_string(),
        };
    }
    match (&s.peer, &s.tcp_state) {
        (Some(peer), Some(state)) => format!("to {peer} ({state})"),
        (Some(peer), None) => format!("to {peer}"),
        (None, _) => format!("{} {}", s.family, s.sock_type),
    }
}

fn list(fds: &[i32]) -> String {
    fds.iter()
        .map(|fd| fd.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs every detector. Findings come most severe first: by severity, then by kind.
pub fn run(sockets: &[Socket], settings: &Settings) -> Vec<Finding> {
    let sockets_by_id = by_socket(sockets);
    let mut findings = sockets::per_socket(&sockets_by_id, settings);
    findings.extend(sockets::since_checkpoint(&sockets_by_id, settings));
    findings.extend(trend::growth(&sockets_by_id, settings));
    findings.extend(trend::churn(&sockets_by_id, settings));
    findings.extend(pool::duplicates(&sockets_by_id, settings));
    if settings.at_exit {
        let exit = exit::open_at_exit(&sockets_by_id, &findings);
        findings.extend(exit);
    }
    findings.sort_by_key(|f| (f.severity(), f.kind));
    findings
}

/// Counts unsuppressed findings per kind and per severity into `report.summary`.
pub fn summarize(report: &mut Report) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut severities: BTreeMap<String, u64> = BTreeMap::new();
    let mut suppressed = 0;
    for f in &report.findings {
        if f.suppressed_by.is_some() {
            suppressed += 1;
        } else {
            *counts.entry(f.kind.as_str().to_string()).or_default() += 1;
            *severities
                .entry(f.severity().as_str().to_string())
                .or_default() += 1;
        }
    }
    report.summary.findings = counts;
    report.summary.by_severity = severities;
    report.summary.suppressed = suppressed;
}

/// How many unsuppressed findings gate the exit code (FDGUARD_EXITCODE): those of severity
/// `leak`; warnings and context only inform.
pub fn gating(report: &Report) -> usize {
    report
        .findings
        .iter()
        .filter(|f| f.suppressed_by.is_none() && f.severity() == Severity::Leak)
        .count()
}

/// How many unsuppressed findings are worth a report nobody asked for: severity `leak` or
/// `warning`. An exit report under `FDGUARD_EXIT_REPORT=auto` is written only when there is one
/// (LeakSanitizer's rule: a clean process says nothing).
pub fn noteworthy(report: &Report) -> usize {
    report
        .findings
        .iter()
        .filter(|f| f.suppressed_by.is_none() && f.severity() <= Severity::Warning)
        .count()
}

#[cfg(test)]
mod tests;
