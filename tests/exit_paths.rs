//! Issue 12, item 2: exit paths never hang. A SIGTERM handler calling exit(0) while the main
//! thread is inside malloc, run 20 times; `_exit()` from a handler when no socket ever existed
//! (FDGUARD_EXIT_REPORT=always) and in a fork child. The exit report is built by the fdguard
//! thread, never on the exiting thread, and the exiting thread waits for it only while it
//! makes progress (5 s without progress at most): each run is bounded by the harness's
//! timeout, a deadlock is a failure. The host's exit status is always its own.

mod common;

use common::{Outcome, Run, compile, fd_set, read_reports};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Generous: the exit waits at most 5 s for a report that makes no progress.
const BOUND: Duration = Duration::from_secs(25);

fn runs(
    mode: &'static str,
    n: usize,
    env: &'static [(&'static str, &'static str)],
) -> Vec<Outcome> {
    let bin = compile("exit_paths");
    // Four at a time: bounded, and the machine stays responsive for the other tests.
    let mut all = Vec::new();
    for batch in 0..n.div_ceil(4) {
        let handles: Vec<_> = (0..4.min(n - batch * 4))
            .map(|_| {
                let bin = bin.clone();
                std::thread::spawn(move || {
                    let mut run = Run::new(&bin).arg(mode).timeout(BOUND);
                    for (k, v) in env {
                        run = run.env(k, v);
                    }
                    let start = Instant::now();
                    let out = run.run();
                    (out, start.elapsed())
                })
            })
            .collect();
        for h in handles {
            let (out, took) = h.join().unwrap();
            assert!(!out.timed_out, "{mode}: hung ({took:?})\n{}", out.stderr);
            all.push(out);
        }
    }
    all
}

/// The exit report was written, or one stderr line says why not; never half a report.
fn written_or_one_line(out: &Outcome, pid: i32, keep: &BTreeSet<i32>) -> bool {
    let leftovers: Vec<String> = std::fs::read_dir(&out.report_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let reports = read_reports(&out.report_dir);
    match reports.iter().find(|r| r.pid == pid) {
        Some(report) => {
            let listed: BTreeSet<i32> = report.sockets.iter().map(|s| s.fd).collect();
            assert!(listed.is_superset(keep), "{listed:?} vs {keep:?}");
            true
        }
        None => {
            let ours: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| l.starts_with("fdguard:"))
                .collect();
            assert_eq!(ours.len(), 1, "{}", out.stderr);
            assert!(ours[0].contains("exit report"), "{}", out.stderr);
            false
        }
    }
}

#[test]
fn exit_from_a_sigterm_handler_that_interrupted_malloc_never_hangs_20_runs() {
    let outs = runs("sigterm-exit", 20, &[]);
    let mut written = 0;
    for out in &outs {
        assert_eq!(out.code(), Some(0), "{:?}\n{}", out.status, out.stderr);
        let truth = &out.json_lines()[0];
        let pid = truth["pid"].as_i64().unwrap() as i32;
        written += usize::from(written_or_one_line(out, pid, &fd_set(&truth["keep"])));
    }
    eprintln!("{written} of {} exit reports written", outs.len());
    assert!(
        written > 0,
        "the fdguard thread writes the report in most runs"
    );
}

#[test]
fn exit_from_a_handler_with_no_socket_and_an_exit_report_wanted_never_hangs() {
    let outs = runs("always-quiet", 4, &[("FDGUARD_EXIT_REPORT", "always")]);
    for out in &outs {
        assert_eq!(out.code(), Some(7), "{:?}\n{}", out.status, out.stderr);
        let pid = out.json_lines()[0]["pid"].as_i64().unwrap() as i32;
        written_or_one_line(out, pid, &BTreeSet::new());
    }
}

#[test]
fn exit_from_a_handler_in_a_fork_child_never_hangs() {
    let outs = runs("fork-child", 4, &[("FDGUARD_EXIT_REPORT", "always")]);
    for out in &outs {
        assert_eq!(out.code(), Some(7), "{:?}\n{}", out.status, out.stderr);
        let lines = out.json_lines();
        let keep = fd_set(&lines[0]["keep"]);
        let child = lines
            .iter()
            .find_map(|l| l.get("child"))
            .expect("the child started")
            .as_i64()
            .unwrap() as i32;
        written_or_one_line(out, child, &keep);
    }
}
