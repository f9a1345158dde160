//! Issue 10: the trend findings on a C program with known ground truth (tests/programs/trends.c):
//! `growth` names the creating stack whose live sockets keep rising, with its rate, and not a
//! pool that filled once; `reconnect_churn` names the backend whose connections are suddenly
//! closed and reopened far faster than before, and not one that always churns at that pace.
//! Both read the watcher's samples: FDGUARD_WATCH_MS=50 (default 1000), FDGUARD_GROWTH_MIN=20
//! (the default).

mod common;

use common::{Run, compile, fd_set};
use fdguard_report::{FindingKind, Report, Severity, Trigger};
use std::collections::BTreeSet;

fn signal_report(out: &common::Outcome) -> &Report {
    out.reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .unwrap_or_else(|| panic!("no signal report: {}", out.stderr))
}

#[test]
fn growth_names_the_leaking_stack_and_not_the_pool() {
    let out = Run::new(compile("trends"))
        .arg("growth")
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_EXITCODE", "23")
        .run();
    assert!(!out.timed_out, "{}", out.stderr);
    let truth = &out.json_lines()[0];
    let leaked = fd_set(&truth["leaked"]);
    let pool = fd_set(&truth["pool"]);
    let report = signal_report(&out);
    let growth: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Growth)
        .collect();
    assert_eq!(growth.len(), 1, "{:#?}", report.findings);
    let g = growth[0];
    assert_eq!(g.severity(), Severity::Warning);
    assert_eq!(g.fds.iter().copied().collect::<BTreeSet<_>>(), leaked);
    // 40 connections in 2.4 s: about 1000 a minute (the machine may be slower, never faster).
    let rate = g.rate_per_min.expect("a rate");
    assert!((200.0..=1100.0).contains(&rate), "{rate}");
    let s = report.sockets.iter().find(|s| s.fd == g.fds[0]).unwrap();
    assert!(common::functions(s).contains(&"connect_leak".to_string()));
    let backend_a = format!("127.0.0.1:{}", truth["port_a"]);
    let backend_b = format!("127.0.0.1:{}", truth["port_b"]);
    let dup = |backend: &str| {
        report
            .findings
            .iter()
            .find(|f| {
                f.kind == FindingKind::DuplicateBackend && f.backend.as_deref() == Some(backend)
            })
            .unwrap_or_else(|| panic!("no group for {backend}: {:#?}", report.findings))
    };
    assert_eq!(
        dup(&backend_b).severity(),
        Severity::Info,
        "the pool filled once"
    );
    assert_eq!(
        dup(&backend_a).severity(),
        Severity::Warning,
        "{}",
        dup(&backend_a).message
    );
    assert!(pool.iter().all(|fd| !g.fds.contains(fd)));
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.severity() == Severity::Leak)
            .count(),
        0,
        "a rising count is a warning: it may be load"
    );
    assert_eq!(out.code(), Some(0));
}

#[test]
fn reconnect_churn_names_the_storm_and_not_the_steady_churner() {
    let out = Run::new(compile("trends"))
        .arg("churn")
        .env("FDGUARD_WATCH_MS", "50")
        .run();
    assert!(!out.timed_out, "{}", out.stderr);
    let truth = &out.json_lines()[0];
    let report = signal_report(&out);
    let churn: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::ReconnectChurn)
        .collect();
    assert_eq!(
        churn
            .iter()
            .map(|f| f.backend.clone().unwrap())
            .collect::<Vec<_>>(),
        vec![format!("127.0.0.1:{}", truth["storm_port"])],
        "{:#?}",
        report.findings
    );
    assert_eq!(churn[0].severity(), Severity::Warning);
    assert!(
        churn[0].rate_per_min.unwrap() > 3000.0,
        "{}",
        churn[0].message
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.severity() != Severity::Leak),
        "{:#?}",
        report.findings
    );
}
