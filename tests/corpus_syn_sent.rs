//! Issue 10 corpus: a client stuck in SYN_SENT against a loopback listener whose accept queue
//! is full, and connects that failed (blocking ECONNREFUSED; non-blocking, refused after
//! EINPROGRESS) whose fds the program never closed (tests/programs/stuck_connect.c).
//!
//! Shortened thresholds: FDGUARD_CONNECT_MS=1000 (default 30000), FDGUARD_GRACE_MS=300
//! (default 60000), FDGUARD_WATCH_MS=50.

mod common;
mod corpus_support;

use common::{Run, compile, fd_set};
use corpus_support::{findings_text, flagged, leak_level};
use fdguard_report::{FindingKind, Severity, TcpState, Trigger};
use std::collections::BTreeSet;

#[test]
fn syn_sent_and_failed_connects_are_stuck_connecting_and_nothing_healthy_is_a_leak() {
    let out = Run::new(compile("stuck_connect"))
        .arg("1800")
        .env("FDGUARD_CONNECT_MS", "1000")
        .env("FDGUARD_GRACE_MS", "300")
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_EXITCODE", "23")
        .run();
    assert!(!out.timed_out, "{}", out.stderr);
    let truth = &out.json_lines()[0];
    let syn_sent = fd_set(&truth["syn_sent"]);
    let failed = fd_set(&truth["failed"]);
    let healthy = fd_set(&truth["healthy"]);
    let report = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .unwrap_or_else(|| panic!("no signal report: {}", out.stderr));

    for s in report.sockets.iter().filter(|s| syn_sent.contains(&s.fd)) {
        assert_eq!(s.tcp_state, Some(TcpState::SynSent));
        assert!(
            s.state_since_s.is_some_and(|t| t >= 1.0),
            "{:?}",
            s.state_since_s
        );
        let tcp = s.tcp.as_ref().unwrap();
        assert_eq!(tcp.handshake_completed, Some(false));
        assert!(tcp.retransmits >= 1, "the SYN was retransmitted: {tcp:?}");
    }
    assert_eq!(
        flagged(report, FindingKind::StuckConnecting, Severity::Warning),
        syn_sent,
        "SYN_SENT past the threshold is a warning:\n{}",
        findings_text(report)
    );
    assert_eq!(
        flagged(report, FindingKind::StuckConnecting, Severity::Leak),
        failed,
        "failed connects kept open are leaks:\n{}",
        findings_text(report)
    );
    assert!(
        flagged(report, FindingKind::PeerClosed, Severity::Leak).is_empty(),
        "a refused connect had no peer to lose:\n{}",
        findings_text(report)
    );
    assert_eq!(leak_level(report), failed, "{}", findings_text(report));
    let flagged_at_all: BTreeSet<i32> = report
        .findings
        .iter()
        .filter(|f| f.kind != FindingKind::DuplicateBackend)
        .flat_map(|f| f.fds.iter().copied())
        .collect();
    assert!(
        flagged_at_all.is_disjoint(&healthy),
        "healthy sockets carry no finding:\n{}",
        findings_text(report)
    );
    assert_eq!(
        report.sockets.len(),
        syn_sent.len() + failed.len() + healthy.len(),
        "the properly closed refused socket is gone"
    );
    // The exit status is gated by the leaks (the failed connects), not by the warning.
    assert_eq!(out.code(), Some(23), "{}", out.stderr);
    assert_eq!(leak_level(out.exit_report()), failed);
}
