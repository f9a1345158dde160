//! Issue 10 corpus: grpc/grpc#42125 with grpcio 1.85.3 (pinned in its own venv: the bug is
//! still open there). A grpc.aio channel is closed while the application still holds its call
//! objects; the connection stays ESTABLISHED and idle for the life of the process, while a
//! second channel to the same server keeps working (tests/grpc/aio_orphan.py). fdguard must
//! flag the orphan as idle_orphan and the pair as the grpc/grpc#38871 shape — warnings, since
//! an idle connection can be a program's choice — and flag nothing at leak level.
//!
//! Shortened threshold: FDGUARD_IDLE_MS=1500 (default 1800000), FDGUARD_WATCH_MS=100.

mod common;
mod corpus_support;

use common::Run;
use corpus_support::{findings_text, flagged, leak_level, python};
use fdguard_report::{FindingKind, Severity, TcpState};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn grpc_aio_connection_kept_after_channel_close_is_an_idle_orphan() {
    let out = Run::new(python("venv-grpc185"))
        .arg(common::repo().join("tests/grpc/aio_orphan.py"))
        .args(["--busy-s", "2.5"])
        .env("FDGUARD_EXPECT_SHIM", "1")
        .env("FDGUARD_IDLE_MS", "1500")
        .env("FDGUARD_WATCH_MS", "100")
        .env("FDGUARD_EXITCODE", "23")
        .timeout(Duration::from_secs(90))
        .run();
    assert!(
        !out.timed_out && out.status.success(),
        "{:?}\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let lines = out.json_lines();
    let truth = lines
        .iter()
        .find(|l| l.get("orphans").is_some())
        .unwrap_or_else(|| panic!("no ground truth line: {}", out.stdout));
    let orphans: BTreeSet<i32> = common::fd_set(&truth["orphans"]);
    assert!(
        !orphans.is_empty(),
        "grpcio 1.85.3 keeps the closed channel's connection (grpc/grpc#42125): {truth}"
    );
    let backend = format!("127.0.0.1:{}", truth["server_port"]);
    let line = lines
        .iter()
        .find(|l| l["checkpoint"] == "orphaned")
        .expect("the checkpoint line");
    let seq = line["report_seq"]
        .as_u64()
        .expect("a report at the checkpoint");
    let report = out
        .reports
        .iter()
        .find(|r| r.seq == seq && r.pid == line["pid"].as_i64().unwrap() as i32)
        .expect("the checkpoint's report");

    let clients: Vec<_> = report
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(backend.as_str()))
        .collect();
    let healthy: BTreeSet<i32> = clients
        .iter()
        .map(|s| s.fd)
        .filter(|fd| !orphans.contains(fd))
        .collect();
    assert_eq!(healthy.len(), 1, "the busy sibling: {clients:#?}");
    for s in clients.iter().filter(|s| orphans.contains(&s.fd)) {
        assert_eq!(s.tcp_state, Some(TcpState::Established));
        let idle = s.tcp.as_ref().and_then(|t| t.idle_s()).expect("idle time");
        assert!(idle >= 1.5, "fd {} idle {idle}", s.fd);
    }
    assert_eq!(
        flagged(report, FindingKind::IdleOrphan, Severity::Warning),
        orphans,
        "every orphan, and only they, are idle orphans:\n{}",
        findings_text(report)
    );
    let dup: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicateBackend)
        .collect();
    assert_eq!(dup.len(), 1, "{}", findings_text(report));
    assert_eq!(dup[0].severity(), Severity::Warning);
    assert_eq!(
        dup[0].suspect_fds.iter().copied().collect::<BTreeSet<_>>(),
        orphans,
        "the stale member is the suspect, not its busy sibling"
    );
    assert!(
        leak_level(report).is_empty(),
        "nothing here is certain enough for a leak:\n{}",
        findings_text(report)
    );
    // Warnings never gate the exit status; the orphan is still open at exit (os._exit).
    assert_eq!(out.code(), Some(0));
    let exit = out.exit_report();
    assert!(leak_level(exit).is_empty(), "{}", findings_text(exit));
    assert!(
        orphans.is_subset(&flagged(exit, FindingKind::IdleOrphan, Severity::Warning)),
        "{}",
        findings_text(exit)
    );
}
