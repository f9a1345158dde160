//! Detectors: pure functions from a report's sockets to findings. They never touch a live
//! process, so they are unit-tested on hand-made sockets, and the library (`libfdguard.so`) and
//! the CLI (`fdguard inspect`) run exactly the same ones.
//!
//! - `peer_closed`: the peer's side is finished (CLOSE_WAIT, LAST_ACK, CLOSING, TIME_WAIT, or
//!   CLOSE after a connection) and the app kept the fd longer than the grace period.
//! - `shutdown_not_closed`: shutdown() called, close() not, longer than the grace period.
//! - `since_checkpoint`: created after a checkpoint and still open.
//! - `duplicate_backend`: at least `dup_min` simultaneous stream client connections to one
//!   backend (sockets, not fds: dup'ed fds count once).
//! - `open_at_exit`: sockets this process created and still holds at exit, dangerous first,
//!   listeners last.

pub mod suppress;

use crate::{Finding, FindingKind, Origin, Report, Role, Severity, Socket};
use std::collections::BTreeMap;

/// What the detectors need besides the sockets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How long a socket may stay open after its peer hung up or after shutdown() (seconds).
    pub grace_s: f64,
    /// Simultaneous client connections to one backend that make a duplicate group.
    pub dup_min: usize,
    /// The report is the exit report: `open_at_exit` findings are made.
    pub at_exit: bool,
    /// (checkpoint id, seconds since it was set): sockets younger than that were opened since.
    pub checkpoints: Vec<(u64, f64)>,
}

impl Default for Settings {
    /// The library's defaults (`FDGUARD_GRACE_MS=60000`, `FDGUARD_DUP_MIN=2`), not at exit, no
    /// checkpoints. Callers that know only some values (`fdguard inspect`) write
    /// `Settings { grace_s, ..Settings::default() }` and keep compiling as fields are added.
    fn default() -> Settings {
        Settings {
            grace_s: 60.0,
            dup_min: 2,
            at_exit: false,
            checkpoints: Vec::new(),
        }
    }
}

// Shared with the text renderer, which groups findings by the same judgements.
pub use crate::verdict::{ExitSeverity, exit_severity, peer_gone, peer_gone_state};

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

/// Runs every detector.
pub fn run(sockets: &[Socket], settings: &Settings) -> Vec<Finding> {
    let mut findings = Vec::new();
    let sockets_by_id = by_socket(sockets);

    for members in sockets_by_id.values() {
        let s = members[0];
        if s.role == Role::Listener {
            continue;
        }
        if let Some(since) = s
            .peer_closed_s
            .filter(|&t| peer_gone(s) && t >= settings.grace_s)
        {
            {
                let fds = fds(members);
                findings.push(Finding {
                    kind: FindingKind::PeerClosed,
                    message: format!(
                        "fd {} {}: the peer hung up {since:.1}s ago and the socket is still open",
                        list(&fds),
                        describe(s)
                    ),
                    fds,
                    backend: s.peer.clone(),
                    suspect_fds: Vec::new(),
                    checkpoint: None,
                    suppressed_by: None,
                    severity: Some(Severity::Leak),
                });
            }
        }
        if let Some(shutdown) = members
            .iter()
            .filter_map(|m| m.shutdown.as_ref())
            .find(|sh| sh.ago_s >= settings.grace_s)
        {
            {
                let fds = fds(members);
                findings.push(Finding {
                    kind: FindingKind::ShutdownNotClosed,
                    message: format!(
                        "fd {} {}: shutdown({}) was called {:.1}s ago but the fd was never closed",
                        list(&fds),
                        describe(s),
                        shutdown.how,
                        shutdown.ago_s
                    ),
                    fds,
                    backend: s.peer.clone(),
                    suspect_fds: Vec::new(),
                    checkpoint: None,
                    suppressed_by: None,
                    severity: Some(Severity::Leak),
                });
            }
        }
    }

    // Sockets opened since a newer checkpoint are a subset of those opened since an older one,
    // so one finding, for the oldest checkpoint that still has open sockets, lists them all;
    // the report's `checkpoints` list gives the count per checkpoint.
    let mut with_open = settings.checkpoints.iter().filter_map(|&(id, ago_s)| {
        let mut open: Vec<i32> = sockets_by_id
            .values()
            .filter(|members| members[0].age_s <= ago_s && members[0].origin == Origin::Created)
            .flat_map(|members| fds(members))
            .collect();
        open.sort_unstable();
        (!open.is_empty()).then_some((id, open))
    });
    if let Some((id, open)) = with_open.next() {
        let newer = with_open.count();
        let also = if newer > 0 {
            format!(" ({newer} newer checkpoint(s) also have sockets still open)")
        } else {
            String::new()
        };
        findings.push(Finding {
            kind: FindingKind::SinceCheckpoint,
            message: format!(
                "{} fd(s) opened since checkpoint {id} are still open: {}{also}",
                open.len(),
                list(&open)
            ),
            fds: open,
            backend: None,
            suspect_fds: Vec::new(),
            checkpoint: Some(id),
            suppressed_by: None,
            severity: Some(Severity::Leak),
        });
    }

    findings.extend(duplicates(&sockets_by_id, settings.dup_min));

    if settings.at_exit {
        let mut at_exit: Vec<(ExitSeverity, &Vec<&Socket>)> = sockets_by_id
            .values()
            .filter(|m| m[0].origin == Origin::Created)
            .map(|m| (exit_severity(m[0]), m))
            .collect();
        at_exit.sort_by_key(|(severity, m)| (*severity, m[0].fd));
        for (severity, members) in at_exit {
            let s = members[0];
            let fds = fds(members);
            let exit_level = match severity {
                ExitSeverity::Leak => Severity::Warning,
                ExitSeverity::Open | ExitSeverity::Listener => Severity::Info,
            };
            let why = match severity {
                ExitSeverity::Leak => " — its peer is gone or it was shut down, so this is a leak",
                ExitSeverity::Listener => " (listening socket)",
                ExitSeverity::Open => "",
            };
            findings.push(Finding {
                kind: FindingKind::OpenAtExit,
                message: format!(
                    "fd {} {} was still open at exit{why}",
                    list(&fds),
                    describe(s)
                ),
                fds,
                backend: s.peer.clone(),
                suspect_fds: Vec::new(),
                checkpoint: None,
                suppressed_by: None,
                severity: Some(exit_level),
            });
        }
    }
    findings.sort_by_key(|f| f.kind);
    findings
}

fn duplicates(sockets_by_id: &BTreeMap<u64, Vec<&Socket>>, dup_min: usize) -> Vec<Finding> {
    let mut groups: BTreeMap<&str, Vec<&Vec<&Socket>>> = BTreeMap::new();
    for members in sockets_by_id.values() {
        let s = members[0];
        let connected = s
            .connect
            .as_ref()
            .is_none_or(|c| c.result == "ok" || c.result == "EINPROGRESS");
        if let Some(peer) = s
            .peer
            .as_deref()
            .filter(|_| s.role == Role::Client && s.sock_type == "stream" && connected)
        {
            groups.entry(peer).or_default().push(members);
        }
    }
    let mut out = Vec::new();
    for (backend, members) in groups {
        if members.len() < dup_min {
            continue;
        }
        let all: Vec<i32> = {
            let mut v: Vec<i32> = members
                .iter()
                .flat_map(|m| m.iter().map(|s| s.fd))
                .collect();
            v.sort_unstable();
            v
        };
        // The likely leak: members whose peer is gone; otherwise every member but the oldest.
        let mut suspects: Vec<i32> = members
            .iter()
            .filter(|m| peer_gone(m[0]))
            .flat_map(|m| fds(m))
            .collect();
        if suspects.is_empty() || suspects.len() == all.len() {
            let oldest = members
                .iter()
                .max_by(|a, b| a[0].age_s.total_cmp(&b[0].age_s))
                .map(|m| m[0].socket_id);
            suspects = members
                .iter()
                .filter(|m| Some(m[0].socket_id) != oldest)
                .flat_map(|m| fds(m))
                .collect();
        }
        suspects.sort_unstable();
        out.push(Finding {
            kind: FindingKind::DuplicateBackend,
            message: format!(
                "{} simultaneous connections to {backend} (fds {}); likely leak: fd {}",
                members.len(),
                list(&all),
                list(&suspects)
            ),
            fds: all,
            backend: Some(backend.to_string()),
            suspect_fds: suspects,
            checkpoint: None,
            suppressed_by: None,
            severity: Some(Severity::Info),
        });
    }
    out
}

/// Counts unsuppressed findings per kind into `report.summary`.
pub fn summarize(report: &mut Report) {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut suppressed = 0;
    for f in &report.findings {
        if f.suppressed_by.is_some() {
            suppressed += 1;
        } else {
            *counts.entry(f.kind.as_str().to_string()).or_default() += 1;
        }
    }
    report.summary.findings = counts;
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
