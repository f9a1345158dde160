//! Helpers for the real-program corpus (issue 10: tests/corpus_*.rs): programs installed by
//! tests/support/install-deps.sh, run under the shim on loopback, each bounded in time. Every
//! scenario checks both directions: each leaked socket is flagged with the right kind, and no
//! healthy socket is named by a finding of severity `leak`.
#![allow(dead_code)]

use fdguard_report::{FindingKind, Report, Severity, Socket};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A venv's python (installed by tests/support/install-deps.sh). Fails when missing.
pub fn python(venv: &str) -> PathBuf {
    crate::common::venv_python(venv)
}

/// An executable on PATH, or a failure naming the package to install.
pub fn program(name: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found: apt-get install {package} (tests/support/install-deps.sh)")
        })
}

/// Lines of a child's stdout, read on a thread so a wait can be bounded.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn of(stream: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }

    /// The next line that parses as JSON, within `timeout`.
    pub fn next_json(&self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .0
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("no JSON line within {timeout:?}: {e}"));
            if let Ok(v) = serde_json::from_str(&line) {
                return v;
            }
        }
    }
}

/// Sends `sig` to `pid` and waits (bounded) for report number `n` in `dir`; returns it.
pub fn report_on_signal(pid: u32, sig: i32, dir: &Path, n: usize) -> Report {
    crate::common::kill(pid, sig);
    let reports = crate::common::wait_for_reports(dir, n, Duration::from_secs(20));
    let mut of_pid: Vec<Report> = reports
        .into_iter()
        .filter(|r| r.pid == pid as i32)
        .collect();
    assert!(
        of_pid.len() >= n,
        "report {n} of pid {pid} did not appear in {}",
        dir.display()
    );
    of_pid.swap_remove(n - 1)
}

/// Asks for reports until `done` holds (or the deadline passes); returns the last one.
pub fn report_when(
    pid: u32,
    sig: i32,
    dir: &Path,
    deadline: Duration,
    done: impl Fn(&Report) -> bool,
) -> Report {
    let start = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let report = report_on_signal(pid, sig, dir, n);
        if done(&report) || start.elapsed() > deadline {
            return report;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The fds named by unsuppressed findings of `kind` and `severity`.
pub fn flagged(report: &Report, kind: FindingKind, severity: Severity) -> BTreeSet<i32> {
    report
        .findings
        .iter()
        .filter(|f| f.kind == kind && f.severity() == severity && f.suppressed_by.is_none())
        .flat_map(|f| f.fds.iter().copied())
        .collect()
}

/// The fds named by any unsuppressed finding of severity `leak`.
pub fn leak_level(report: &Report) -> BTreeSet<i32> {
    report
        .findings
        .iter()
        .filter(|f| f.severity() == Severity::Leak && f.suppressed_by.is_none())
        .flat_map(|f| f.fds.iter().copied())
        .collect()
}

/// The report's socket whose peer is `peer`, if any.
pub fn by_peer<'a>(report: &'a Report, peer: &str) -> Option<&'a Socket> {
    report
        .sockets
        .iter()
        .find(|s| s.peer.as_deref() == Some(peer))
}

/// Inodes of the TCP sockets the kernel lists in /proc/PID/net/tcp and tcp6 (what `ss -t`
/// shows: a socket in state CLOSE is not among them).
pub fn listed_tcp_inodes(pid: u32) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(inode) = line.split_whitespace().nth(9).and_then(|i| i.parse().ok()) {
                out.insert(inode);
            }
        }
    }
    out
}

/// A summary of a report for assertion messages: each finding on one line.
pub fn findings_text(report: &Report) -> String {
    report
        .findings
        .iter()
        .map(|f| {
            format!(
                "{} ({}){}: {}",
                f.kind.as_str(),
                f.severity().as_str(),
                if f.suppressed_by.is_some() {
                    " [suppressed]"
                } else {
                    ""
                },
                f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
