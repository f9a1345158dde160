//! Issue 10 corpus: urllib3 keep-alive pools (target/deps/venv-http) against a keep-alive
//! HTTP/1.1 server that closes idle connections (tests/http/server.py, pool_client.py).
//!
//! - Healthy, with the default thresholds: a pool of up to 4 connections is context (an info
//!   duplicate_backend group), never a leak nor a warning — also while the server has closed
//!   them for being idle and they wait in the pool in CLOSE_WAIT, and after urllib3 noticed
//!   and reconnected.
//! - Leaking, FDGUARD_GRACE_MS=1000 (default 60000): pools created per call and kept in a cache
//!   hold connections the server closed; exactly those are peer_closed leaks, the busy pool's
//!   connection is not.

mod common;
mod corpus_support;

use common::Run;
use corpus_support::{findings_text, flagged, leak_level, python};
use fdguard_report::{FindingKind, Report, Severity};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn pool_client(args: &[&str]) -> Run {
    Run::new(python("venv-http"))
        .arg(common::repo().join("tests/http/pool_client.py"))
        .args(args)
        .env("FDGUARD_EXPECT_SHIM", "1")
        .env("FDGUARD_EXITCODE", "23")
        .timeout(Duration::from_secs(90))
}

fn checkpoint<'a>(out: &'a common::Outcome, name: &str) -> (Value, &'a Report) {
    let line = out
        .json_lines()
        .into_iter()
        .find(|l| l["checkpoint"] == name)
        .unwrap_or_else(|| panic!("no checkpoint {name}: {}\n{}", out.stdout, out.stderr));
    let seq = line["report_seq"].as_u64().expect("a report");
    let pid = line["pid"].as_i64().unwrap() as i32;
    let report = out
        .reports
        .iter()
        .find(|r| r.seq == seq && r.pid == pid)
        .expect("the checkpoint's report");
    (line, report)
}

#[test]
fn a_healthy_urllib3_pool_is_context_even_when_the_server_closes_idle_connections() {
    let out = pool_client(&["--scenario", "healthy", "--idle-timeout-s", "1.0"]).run();
    assert!(
        out.status.success(),
        "{:?}\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    for name in ["busy", "server_closed_idle", "reused"] {
        let (line, report) = checkpoint(&out, name);
        let backend = format!("127.0.0.1:{}", line["server_port"]);
        let pool: Vec<_> = report
            .sockets
            .iter()
            .filter(|s| s.peer.as_deref() == Some(backend.as_str()))
            .collect();
        // 4 threads, maxsize 4: as many connections as threads overlapped (4 unless the
        // machine serialised them).
        assert!(
            (2..=4).contains(&pool.len()),
            "{name}: a pool of up to 4 connections: {pool:#?}"
        );
        assert!(
            report
                .findings
                .iter()
                .all(|f| f.kind == FindingKind::DuplicateBackend && f.severity() == Severity::Info),
            "{name}: a pool is context, nothing more:\n{}",
            findings_text(report)
        );
        if name == "server_closed_idle" {
            assert!(
                pool.iter()
                    .all(|s| s.tcp_state == Some(fdguard_report::TcpState::CloseWait)),
                "the server closed them; urllib3 has not looked yet: {pool:#?}"
            );
        }
    }
    assert!(
        !checkpoint(&out, "reused").1.recently_closed.is_empty(),
        "urllib3 closed the dead connections when it reused the pool"
    );
    assert_eq!(out.code(), Some(0), "nothing gates the exit status");
    assert!(leak_level(out.exit_report()).is_empty());
}

#[test]
fn pools_kept_in_a_cache_leak_their_closed_connections_and_only_those_are_leaks() {
    let out = pool_client(&["--scenario", "leak", "--wait-s", "2.5"])
        .env("FDGUARD_GRACE_MS", "1000")
        .env("FDGUARD_WATCH_MS", "100")
        .run();
    assert!(!out.timed_out, "{}", out.stderr);
    let truth = out
        .json_lines()
        .into_iter()
        .find(|l| l.get("leaked_local").is_some())
        .unwrap_or_else(|| panic!("no ground truth: {}", out.stdout));
    let leaked_local: BTreeSet<String> = truth["leaked_local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(leaked_local.len(), 3);
    let (line, report) = checkpoint(&out, "leaked");
    let backend = format!("127.0.0.1:{}", line["server_port"]);
    let leaked: BTreeSet<i32> = report
        .sockets
        .iter()
        .filter(|s| s.local.as_ref().is_some_and(|l| leaked_local.contains(l)))
        .map(|s| s.fd)
        .collect();
    let busy: BTreeSet<i32> = report
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(backend.as_str()))
        .map(|s| s.fd)
        .filter(|fd| !leaked.contains(fd))
        .collect();
    assert_eq!((leaked.len(), busy.len()), (3, 1), "{:#?}", report.sockets);
    assert_eq!(
        flagged(report, FindingKind::PeerClosed, Severity::Leak),
        leaked,
        "{}",
        findings_text(report)
    );
    assert_eq!(leak_level(report), leaked, "{}", findings_text(report));
    let dup: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicateBackend)
        .collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(
        (
            dup[0].severity(),
            dup[0].suspect_fds.iter().copied().collect::<BTreeSet<_>>()
        ),
        (Severity::Warning, leaked.clone()),
        "dead members beside a live one: {}",
        dup[0].message
    );
    assert_eq!(out.code(), Some(23), "the leaks gate the exit status");
    assert!(leak_level(out.exit_report()).is_superset(&leaked));
    assert!(leak_level(out.exit_report()).is_disjoint(&busy));
}
