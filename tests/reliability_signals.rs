//! Issue 6, signals: fdguard's hooks called from signal handlers, its report signal under a
//! storm, and hosts that have their own plans for that signal. Every run is bounded by the
//! harness's timeout: a deadlock is a failure, not a hung test suite.

mod common;

use common::{Run, compile, compile_with, fd_set, functions, read_reports};
use fdguard_report::{Origin, Trigger};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Files in the report directory that are not finished reports (temp files, partial writes).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || !n.ends_with(".json"))
        .collect()
}

#[test]
fn close_and_dup2_from_a_signal_handler_lose_no_record_and_never_deadlock() {
    // 4 workers churn sockets; 600 SIGUSR2 land on them, and each handler call does
    // dup2(victim, target) + close(victim) — often while the worker is inside fdguard's own
    // bookkeeping for its socket()/accept4()/close() (that is where the guard is held).
    let bin = compile("rel_sighandler");
    let start = Instant::now();
    let out = Run::new(&bin)
        .args(["4", "600"])
        .timeout(Duration::from_secs(60))
        .run();
    assert!(
        !out.timed_out && out.status.success(),
        "status {:?} after {:?}:\n{}",
        out.status,
        start.elapsed(),
        out.stderr
    );
    assert_eq!(out.stderr, "");
    let truth = &out.json_lines()[0];
    let targets: Vec<i32> = truth["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    let victims: Vec<i32> = truth["victims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    let exit = out.exit_report();
    let listed: BTreeSet<i32> = exit.sockets.iter().map(|s| s.fd).collect();
    let mut expected = fd_set(&truth["keep"]);
    expected.extend(targets.iter().copied());
    assert_eq!(
        listed,
        expected,
        "missing {:?}; extra {:?}",
        expected.difference(&listed).collect::<Vec<_>>(),
        listed.difference(&expected).collect::<Vec<_>>()
    );
    for (target, victim) in targets.iter().zip(&victims) {
        let s = exit.sockets.iter().find(|s| s.fd == *target).unwrap();
        assert_eq!(
            s.dup_of,
            Some(*victim),
            "fd {target} is the dup of {victim}"
        );
        assert!(
            functions(s).iter().any(|f| f == "open_victim"),
            "the dup keeps the victim's creating stack: {:?}",
            functions(s)
        );
    }
    assert_eq!(exit.fd_budget.sockets_open, exit.fd_budget.sockets_tracked);
}

fn storm(text: bool) -> (common::Outcome, Value) {
    let bin = compile("rel_storm");
    // 1,000 SIGUSR1 at 1 ms intervals; main exits after 1.2 s, about when the storm ends (the
    // first report alone takes ~0.7 s in a debug build: DWARF is loaded; later ones ~5 ms).
    let mut run = Run::new(&bin)
        .args(["3", "1000", "1000", "1200"])
        .timeout(Duration::from_secs(60));
    if text {
        run = run
            .env("FDGUARD_REPORT", "stderr")
            .env("FDGUARD_FORMAT", "text");
    }
    let out = run.run();
    assert!(
        !out.timed_out && out.status.success(),
        "status {:?}:\n{}",
        out.status,
        out.stderr
    );
    let truth = out.json_lines().into_iter().next().expect("ground truth");
    (out, truth)
}

#[test]
fn a_storm_of_report_signals_leaves_only_whole_json_reports() {
    let (out, truth) = storm(false);
    assert_eq!(out.stderr, "");
    // `read_reports` parsed every *.json file (it panics on a partial one).
    assert!(
        leftovers(&out.report_dir).is_empty(),
        "{:?}",
        leftovers(&out.report_dir)
    );
    let signals = out
        .reports
        .iter()
        .filter(|r| r.trigger == Trigger::Signal)
        .count();
    assert!(signals >= 1, "signal reports were written");
    eprintln!("{signals} signal reports");
    let seqs: BTreeSet<u64> = out.reports.iter().map(|r| r.seq).collect();
    assert_eq!(seqs.len(), out.reports.len(), "one file per report number");
    let keep = fd_set(&truth["keep"]);
    let exit = out.exit_report();
    assert_eq!(
        exit.seq,
        *seqs.last().unwrap(),
        "the exit report is the last one"
    );
    let listed: BTreeSet<i32> = exit.sockets.iter().map(|s| s.fd).collect();
    assert_eq!(listed, keep);
    for r in &out.reports {
        let listed: BTreeSet<i32> = r.sockets.iter().map(|s| s.fd).collect();
        assert!(listed.is_superset(&keep), "report #{} lost a socket", r.seq);
    }
}

#[test]
fn a_storm_of_text_reports_on_stderr_never_interleaves_or_stops_halfway() {
    let (out, _) = storm(true);
    let mut open_report: Option<String> = None;
    let mut reports = 0;
    for line in out.stderr.lines() {
        if line.starts_with("==") && line.contains(": socket report #") {
            assert!(
                open_report.is_none(),
                "a report starts before the previous one ended:\n{line}\nafter {open_report:?}"
            );
            open_report = Some(line.to_string());
            reports += 1;
        } else if line.starts_with("SUMMARY: fdguard:") {
            assert!(open_report.take().is_some(), "SUMMARY without a header");
        } else {
            assert!(
                open_report.is_some() || line.is_empty(),
                "stray stderr line outside a report: {line:?}"
            );
        }
    }
    assert!(open_report.is_none(), "the last report stops halfway");
    assert!(reports >= 2, "{reports} reports");
    eprintln!("{reports} text reports");
    assert!(
        out.stderr.lines().any(|l| l.contains("(trigger: exit)")),
        "exit report present"
    );
    assert_eq!(out.stdout.lines().count(), 1, "stdout: {}", out.stdout);
}

#[test]
fn a_host_that_takes_over_the_report_signal_keeps_it_and_the_c_api_and_exit_report_still_work() {
    let bin = compile("rel_sig_takeover");
    let dir = common::temp_dir("takeover");
    let api_path = dir.join("api.json");
    let out = Run::new(&bin).arg("takeover").arg(&api_path).run();
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    assert_eq!(out.stderr, "");
    let truth = &out.json_lines()[0];
    assert_eq!(
        truth["handled"], 5,
        "the host's handler got all five signals"
    );
    assert_eq!(
        truth["api"], 7000,
        "fdguard_report_to_path returned FDGUARD_RESULT_OK"
    );
    assert!(
        out.reports.iter().all(|r| r.trigger != Trigger::Signal),
        "documented: once the host replaces our handler, the signal no longer asks for reports"
    );
    let exit = out.exit_report();
    let kept = truth["kept"].as_i64().unwrap() as i32;
    let s = exit
        .sockets
        .iter()
        .find(|s| s.fd == kept)
        .expect("kept socket");
    assert!(functions(s).iter().any(|f| f == "open_kept_socket"));
    let api: fdguard_report::Report =
        serde_json::from_str(&std::fs::read_to_string(&api_path).unwrap()).unwrap();
    assert_eq!(api.trigger, Trigger::Api);
    assert!(api.sockets.iter().any(|s| s.fd == kept));
}

#[test]
fn a_report_signal_ignored_before_exec_is_not_fatal_and_still_asks_for_a_report() {
    // The shell sets SIGUSR1 to SIG_IGN and execs the program: it starts with the signal
    // ignored (the disposition survives exec). fdguard installs its handler anyway.
    let bin = compile("rel_sig_takeover");
    let out = Run::new("/bin/sh")
        .arg("-c")
        .arg(format!("trap '' USR1; exec '{}' ignored", bin.display()))
        .run();
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    assert_eq!(out.stderr, "");
    let truth = &out.json_lines()[0];
    let kept = truth["kept"].as_i64().unwrap() as i32;
    let signal = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .expect("a signal report");
    assert!(signal.sockets.iter().any(|s| s.fd == kept));
}

#[test]
fn a_report_signal_handler_installed_before_fdguard_loaded_still_runs() {
    // A library linked into the program installs a SIGUSR1 handler from its constructor. The
    // loader runs that constructor before fdguard's (LD_PRELOAD objects are initialised after
    // the libraries that come later in the search list), so fdguard finds the handler and
    // chains to it. Both must happen: the host's handler runs AND the report is written.
    let lib = compile_with("rel_early_handler_lib", &["-shared", "-fPIC"]);
    let bin = compile_with("rel_early_handler", &[lib.to_str().unwrap()]);
    let out = Run::new(&bin).run();
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    let truth = &out.json_lines()[0];
    assert_eq!(
        truth["fdguard_was_first"], 0,
        "the library's constructor ran before fdguard's: it found no handler"
    );
    assert_eq!(truth["report"], 0, "the report was written");
    assert_eq!(
        truth["calls"], 1,
        "the host's earlier handler was called once"
    );
    let signal = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .expect("signal report");
    assert!(
        signal
            .sockets
            .iter()
            .any(|s| s.fd == truth["kept"].as_i64().unwrap() as i32)
    );
    // Without fdguard the same program survives the signal too (its own handler).
    let plain = Run::new(&bin).without_shim().run();
    assert!(plain.status.success());
    assert_eq!(plain.json_lines()[0]["calls"], 1);
}

#[test]
fn exit_from_a_signal_handler_is_bounded_even_when_it_interrupts_malloc() {
    // "sleep": the handler interrupts pause(); the exit report is always written.
    // "malloc": the handler often interrupts malloc with the arena lock held; building the
    // report right there would deadlock forever. The fdguard thread builds it instead; the
    // exit may take up to 5 s longer if that thread blocks too, but never hangs, and the
    // status is the host's.
    let bin = compile("rel_exit_in_handler");
    let runs: Vec<_> = ["sleep", "sleep", "malloc", "malloc", "malloc", "malloc"]
        .into_iter()
        .map(|mode| {
            let bin = bin.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let out = Run::new(&bin)
                    .arg(mode)
                    .timeout(Duration::from_secs(20))
                    .run();
                (mode, out, start.elapsed())
            })
        })
        .collect();
    for run in runs {
        let (mode, out, took) = run.join().unwrap();
        assert!(!out.timed_out, "{mode}: hung ({took:?})");
        assert_eq!(
            out.code(),
            Some(7),
            "{mode}: {:?}\n{}",
            out.status,
            out.stderr
        );
        assert!(took < Duration::from_secs(12), "{mode}: {took:?}");
        match mode {
            "sleep" => {
                assert_eq!(out.stderr, "");
                let exit = out.exit_report();
                assert_eq!(exit.sockets.len(), 2, "listener and client, nothing else");
                assert!(exit.sockets.iter().all(|s| s.origin == Origin::Created));
            }
            _ => {
                // Either the report was written, or one line says why not.
                let reports = read_reports(&out.report_dir);
                if reports.is_empty() {
                    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
                    assert!(out.stderr.contains("exit report"), "{}", out.stderr);
                } else {
                    assert_eq!(out.stderr, "");
                }
                assert!(leftovers(&out.report_dir).is_empty());
            }
        }
    }
}
