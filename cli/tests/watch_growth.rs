//! `fdguard watch` over a program whose leak grows while it is watched: a C program opens a
//! connection every 100 ms to a backend that hangs up at once (each one left in CLOSE_WAIT),
//! beside a pool of two healthy connections to another backend.
//!
//! Checked against the samples the watch kept (each a full JSON report) and the program's own
//! count of connections: the summary names the growing backend — and, when the program runs
//! under libfdguard.so, the creating stack — with figures equal to the first and last samples
//! and a rate equal to their difference over the time between them; the pool is not named; a
//! SIGTERM ends the watch at once with the summary still written.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::subjects::{DEADLINE, Server, Subject, wait_until};
use common::{assert_status, compile_c, fdguard, library, scratch, stderr, stdout};
use fdguard_report::{Collector, Report};
use serde_json::Value;

/// The samples in `dir`, in order.
fn samples(dir: &Path) -> Vec<Report> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sample.")
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect()
}

/// Connections (not fds) to `backend` in a report.
fn connections_to(report: &Report, backend: &str) -> u64 {
    let mut ids: Vec<u64> = report
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(backend))
        .map(|s| s.socket_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len() as u64
}

struct Leaking {
    subject: Subject,
    backend: Server,
    pool: Server,
    countfile: std::path::PathBuf,
}

fn start_leaking(dir: &Path, preload: bool) -> Leaking {
    let leaker = compile_c("leaker.c", dir, &[]);
    let backend = Server::hanging_up();
    let pool = Server::keeping();
    let pidfile = dir.join("leaker.pid");
    let args = [
        backend.port.to_string(),
        "600".to_string(),
        "100".to_string(),
        pidfile.display().to_string(),
        pool.port.to_string(),
    ];
    let mut subject = if preload {
        let child = std::process::Command::new(&leaker)
            .args(&args)
            .env("LD_PRELOAD", library())
            .env("FDGUARD_EXIT_REPORT", "never")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        Subject { child, pid }
    } else {
        Subject::start(&leaker, &args)
    };
    subject.wait_for_file(&pidfile);
    Leaking {
        subject,
        backend,
        pool,
        countfile: dir.join("leaker.pid.count"),
    }
}

fn leaked_so_far(countfile: &Path) -> u64 {
    std::fs::read_to_string(countfile).unwrap().lines().count() as u64
}

/// The growth figures of one summary against the samples.
fn check_growth(growth: &Value, samples: &[Report], backend: &str, pool: &str) {
    let first = &samples[0];
    let last = samples.last().unwrap();
    let span_s = (last.time_unix_ms - first.time_unix_ms) as f64 / 1000.0;
    assert_eq!(growth["samples"].as_u64().unwrap(), samples.len() as u64);
    assert!((growth["span_s"].as_f64().unwrap() - span_s).abs() < 1e-9);
    let backends = growth["backends"].as_array().unwrap();
    let top = &backends[0];
    assert_eq!(top["name"], backend, "{backends:?}");
    let (was, now) = (
        connections_to(first, backend),
        connections_to(last, backend),
    );
    assert_eq!(top["change"]["first"].as_u64().unwrap(), was);
    assert_eq!(top["change"]["last"].as_u64().unwrap(), now);
    let delta = now as i64 - was as i64;
    assert!(delta >= 5, "the leak grew by {delta} only");
    assert_eq!(top["change"]["delta"].as_i64().unwrap(), delta);
    let rate = top["change"]["per_minute"].as_f64().unwrap();
    assert!(
        (rate - delta as f64 * 60.0 / span_s).abs() < 1e-6,
        "rate {rate} for +{delta} in {span_s}s"
    );
    assert!(
        backends.iter().all(|b| b["name"] != pool),
        "the healthy pool did not grow: {backends:?}"
    );
    for report in samples {
        assert_eq!(connections_to(report, pool), 2);
    }
    let live = &growth["live_sockets"];
    assert_eq!(live["first"].as_u64().unwrap(), first.sockets.len() as u64);
    assert_eq!(live["last"].as_u64().unwrap(), last.sockets.len() as u64);
}

#[test]
fn watching_from_outside_names_the_growing_backend_with_its_rate() {
    let dir = scratch("watch-outside");
    let leaking = start_leaking(&dir, false);
    let out = dir.join("watch");
    let output = fdguard()
        .args(["watch", &leaking.subject.pid.to_string()])
        .args([
            "--every",
            "300ms",
            "--for",
            "3s",
            "--grace-ms",
            "1000",
            "--json",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_status(&output, 0);
    let after = leaked_so_far(&leaking.countfile);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let samples = samples(&out);
    assert!(samples.len() >= 3, "{} samples", samples.len());
    assert!(samples.iter().all(|r| r.collector == Collector::Inspect));
    let backend = format!("127.0.0.1:{}", leaking.backend.port);
    let pool = format!("127.0.0.1:{}", leaking.pool.port);
    check_growth(&summary[0], &samples, &backend, &pool);
    assert!(
        connections_to(samples.last().unwrap(), &backend) <= after,
        "no more connections seen than the program made"
    );
    assert_eq!(summary[0]["stackless"], true);
    assert_eq!(summary[0]["states"][0]["name"], "CLOSE_WAIT");
    // Hang-ups dated across samples: the oldest leaked sockets pass the 1 s grace.
    let last = samples.last().unwrap();
    assert!(
        last.findings
            .iter()
            .any(|f| f.kind == fdguard_report::FindingKind::PeerClosed),
        "{:?}",
        last.findings
    );
    for socket in last
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(&backend))
    {
        assert!(socket.peer_closed_s.is_some(), "{socket:?}");
    }
    let written: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written, summary);
    let page = std::fs::read_to_string(out.join("timeline.html")).unwrap();
    assert!(page.contains(&backend));
    assert!(stderr(&output).contains("timeline.html"));
    assert!(
        !stderr(&output).contains('\r') && !stderr(&output).contains('\x1b'),
        "no progress line when stderr is not a terminal: {:?}",
        stderr(&output)
    );
    // The directory now holds this watch's samples: another watch must not mix into them.
    let again = fdguard()
        .args(["watch", &leaking.subject.pid.to_string(), "--for", "1s"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_status(&again, 2);
    assert!(stderr(&again).contains("already holds the samples of another watch"));
}

#[test]
fn watching_a_preloaded_program_names_the_growing_stack() {
    let dir = scratch("watch-preload");
    let leaking = start_leaking(&dir, true);
    let out = dir.join("watch");
    let output = fdguard()
        .args(["watch", &leaking.subject.pid.to_string()])
        .args(["--every", "300ms", "--for", "3s"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_status(&output, 0);
    let text = stdout(&output);
    let samples = samples(&out);
    assert!(samples.iter().all(|r| r.collector == Collector::Preload));
    let backend = format!("127.0.0.1:{}", leaking.backend.port);
    let pool = format!("127.0.0.1:{}", leaking.pool.port);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    check_growth(&summary[0], &samples, &backend, &pool);
    let stacks = summary[0]["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 1, "only the leaking stack grew: {stacks:?}");
    assert!(
        stacks[0]["name"]
            .as_str()
            .unwrap()
            .contains("open_leaky_connection"),
        "{stacks:?}"
    );
    assert_eq!(
        stacks[0]["change"]["delta"], summary[0]["backends"][0]["change"]["delta"],
        "every new socket came from that stack"
    );
    assert!(text.contains("reports from libfdguard.so"), "{text}");
    let per_stack = text
        .split("GROWTH PER CREATING STACK")
        .nth(1)
        .and_then(|rest| rest.split("GROWTH PER TCP STATE").next())
        .unwrap();
    assert!(per_stack.contains("open_leaky_connection"), "{text}");
    assert!(!per_stack.contains("open_pool_connection"), "{text}");
    assert!(text.contains(&backend), "{text}");
}

#[test]
fn sigterm_stops_the_watch_and_the_summary_is_still_written() {
    let dir = scratch("watch-stop");
    let leaking = start_leaking(&dir, false);
    let out = dir.join("watch");
    let watch = fdguard()
        .args(["watch", &leaking.subject.pid.to_string()])
        .args(["--every", "200ms", "--for", "60s"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watch_pid = watch.id();
    wait_until("two samples", DEADLINE, || {
        (std::fs::read_dir(&out).ok()?.count() >= 2).then_some(())
    });
    let sent = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &watch_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(watch.wait_with_output()));
    let output = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the watch ended after SIGTERM")
        .unwrap();
    assert!(sent.elapsed() < Duration::from_secs(20));
    assert_status(&output, 0);
    assert!(
        stderr(&output).contains("SIGTERM received: watch stopped"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("GROWTH PER BACKEND"));
    assert!(out.join("summary.json").is_file());
    assert!(out.join("timeline.html").is_file());
    drop(leaking);
}

#[test]
fn usage_errors() {
    let output = fdguard()
        .args(["watch", "1", "--every", "10ms"])
        .output()
        .unwrap();
    assert_status(&output, 2);
    assert!(stderr(&output).contains("--every must be at least 100 ms"));
    let output = fdguard()
        .args(["watch", "1", "--for", "soon"])
        .output()
        .unwrap();
    assert_status(&output, 2);
    let output = fdguard()
        .args(["watch", &(1 << 23).to_string(), "--for", "1s"])
        .output()
        .unwrap();
    assert_status(&output, 3);
    assert!(stderr(&output).contains("no process with pid"));
}
