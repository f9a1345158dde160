//! Issue 10: a connection whose peer vanished without a FIN (tests/programs/half_open.c). On
//! loopback inside a private network namespace (`unshare -rn`), the peer's ACKs are held back
//! by tc; the client keeps writing, the kernel retransmits, no ACK comes. fdguard must call
//! that connection half_open and leave the healthy connection beside it alone.
//!
//! Shortened threshold: FDGUARD_HALF_OPEN_MS=1000 (default 60000), FDGUARD_WATCH_MS=100.

mod common;
mod corpus_support;

use common::{Run, compile, fd_set};
use corpus_support::{findings_text, flagged, leak_level, program};
use fdguard_report::{FindingKind, Severity, Trigger};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn a_peer_that_vanished_without_a_fin_is_half_open() {
    let binary = compile("half_open");
    // The shim goes on the test program only, not on unshare, sh or ip.
    let out = Run::new(program("unshare", "util-linux"))
        .without_shim()
        .args(["-rn", "sh", "-c"])
        .arg("ip link set lo up && LD_PRELOAD=\"$FDGUARD_UNDER_TEST\" exec \"$0\" 2500")
        .arg(&binary)
        .env("FDGUARD_UNDER_TEST", common::lib_path())
        .env("FDGUARD_HALF_OPEN_MS", "1000")
        .env("FDGUARD_WATCH_MS", "100")
        .env("FDGUARD_EXITCODE", "23")
        .timeout(Duration::from_secs(60))
        .run();
    assert!(
        !out.timed_out && out.status.success(),
        "{:?}\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let truth = &out.json_lines()[0];
    let half_open = fd_set(&truth["half_open"]);
    let healthy: BTreeSet<i32> = fd_set(&truth["healthy"]);
    let report = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .expect("a signal report");
    for s in report.sockets.iter().filter(|s| half_open.contains(&s.fd)) {
        let tcp = s.tcp.as_ref().expect("TCP_INFO");
        assert!(
            tcp.unacked > 0 && tcp.retransmits + tcp.backoff > 0,
            "{tcp:?}"
        );
        assert!(tcp.last_ack_recv_s.is_some_and(|t| t >= 1.0), "{tcp:?}");
    }
    assert_eq!(
        flagged(report, FindingKind::HalfOpen, Severity::Warning),
        half_open,
        "{}",
        findings_text(report)
    );
    // Both clients reach one server: the group names the dead member, beside a live one.
    let dup: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicateBackend)
        .collect();
    assert_eq!(dup.len(), 1, "{}", findings_text(report));
    assert_eq!(
        (
            dup[0].severity(),
            dup[0].suspect_fds.iter().copied().collect::<BTreeSet<_>>()
        ),
        (Severity::Warning, half_open.clone())
    );
    let named: BTreeSet<i32> = report
        .findings
        .iter()
        .filter(|f| f.kind != FindingKind::DuplicateBackend)
        .flat_map(|f| f.fds.iter().copied())
        .collect();
    assert!(
        named.is_disjoint(&healthy),
        "the healthy connection, the server side and the listener carry no finding:\n{}",
        findings_text(report)
    );
    assert!(leak_level(report).is_empty(), "{}", findings_text(report));
    assert!(leak_level(out.exit_report()).is_empty());
}
