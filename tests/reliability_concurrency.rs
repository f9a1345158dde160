//! Issue 6, concurrency: exact accounting while 8 threads churn 160,000 connections through
//! socket/connect/accept4/dup/dup2/fcntl(F_DUPFD_CLOEXEC)/socketpair/close, with fd numbers
//! reused by other threads the moment they are freed. A reuse race that erased a fresh record
//! (close path after the real close) or kept a stale one (creation path before the real call)
//! shows up here as a missing or an extra socket in the exit report.

mod common;

use common::{Outcome, Run, compile, fd_set, functions, listed};
use fdguard_report::{Report, Role, Trigger};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const THREADS: usize = 8;
const CYCLES: usize = 20_000;

fn churn(leak_every: usize, signal_ms: u64) -> (Outcome, Value) {
    let bin = compile("rel_churn");
    let start = Instant::now();
    let out = Run::new(&bin)
        .args([
            THREADS.to_string(),
            CYCLES.to_string(),
            leak_every.to_string(),
            signal_ms.to_string(),
        ])
        .timeout(Duration::from_secs(120))
        .run();
    assert!(
        !out.timed_out && out.status.success(),
        "status {:?} after {:?}; stderr:\n{}",
        out.status,
        start.elapsed(),
        out.stderr
    );
    assert_eq!(out.stderr, "", "fdguard said nothing");
    eprintln!(
        "{THREADS} threads x {CYCLES} cycles (leak every {leak_every}): {:?}",
        start.elapsed()
    );
    let truth = out
        .json_lines()
        .into_iter()
        .next()
        .expect("ground truth line");
    (out, truth)
}

/// The exit report agrees with the kernel: every socket the process holds is listed, nothing
/// else, and nothing was dropped or reconciled away.
fn assert_matches_kernel(exit: &Report) {
    assert_eq!(exit.fd_budget.sockets_open, exit.fd_budget.sockets_tracked);
    assert_eq!(exit.summary.live_sockets, exit.sockets.len() as u64);
    assert!(exit.notes.is_empty(), "notes: {:?}", exit.notes);
}

#[test]
fn balanced_churn_leaves_exactly_the_listeners() {
    // Signal reports every 50 ms race with the churn (snapshots while slots change).
    let (out, truth) = churn(0, 50);
    let exit = out.exit_report();
    let listeners = fd_set(&truth["listeners"]);
    assert_eq!(listeners.len(), THREADS);
    assert_eq!(
        listed(exit),
        listeners,
        "exit report lists exactly the listeners"
    );
    for s in &exit.sockets {
        assert_eq!(s.role, Role::Listener, "fd {}", s.fd);
        assert!(
            functions(s).iter().any(|f| f == "open_thread_listener"),
            "fd {}: {:?}",
            s.fd,
            functions(s)
        );
    }
    assert_matches_kernel(exit);
    let signal_reports = out
        .reports
        .iter()
        .filter(|r| r.trigger == Trigger::Signal)
        .count();
    assert!(signal_reports >= 1, "signal reports raced with the churn");
    // Every mid-churn snapshot still lists the listeners (never lost while numbers churn).
    for r in out.reports.iter().filter(|r| r.trigger == Trigger::Signal) {
        assert!(
            listed(r).is_superset(&listeners),
            "report #{} lost a listener",
            r.seq
        );
    }
}

#[test]
fn unbalanced_churn_reports_exactly_the_leaked_sockets_with_their_stack() {
    let leak_every = 500;
    let (out, truth) = churn(leak_every, 0);
    let exit = out.exit_report();
    let listeners = fd_set(&truth["listeners"]);
    let leaked = fd_set(&truth["leaked"]);
    assert_eq!(leaked.len(), THREADS * CYCLES / leak_every);
    let expected: BTreeSet<i32> = listeners.union(&leaked).copied().collect();
    let got = listed(exit);
    assert_eq!(
        got,
        expected,
        "missing {:?}, extra {:?}",
        expected.difference(&got).collect::<Vec<_>>(),
        got.difference(&expected).collect::<Vec<_>>()
    );
    let mut socket_ids = BTreeSet::new();
    for s in &exit.sockets {
        assert!(socket_ids.insert(s.socket_id), "one record per socket");
        let names = functions(s);
        if leaked.contains(&s.fd) {
            assert_eq!(s.role, Role::Client, "fd {}", s.fd);
            assert!(
                names.iter().any(|f| f == "leak_client_socket"),
                "fd {}: {names:?}",
                s.fd
            );
            assert!(
                !names.iter().any(|f| f == "churn_client_socket"),
                "a churn stack never ends up on a leaked fd: {names:?}"
            );
            // A thread's start-up frames (start_thread, clone3) are cut: the stack ends at
            // the thread's own function.
            assert_eq!(
                names.last().map(String::as_str),
                Some("worker_main"),
                "fd {}: {names:?}",
                s.fd
            );
            assert!(
                s.peer
                    .as_deref()
                    .is_some_and(|p| p.starts_with("127.0.0.1:"))
            );
            assert_eq!(s.dup_of, None);
        } else {
            assert!(names.iter().any(|f| f == "open_thread_listener"));
            assert_eq!(names.last().map(String::as_str), Some("main"), "{names:?}");
        }
    }
    assert_matches_kernel(exit);
}
