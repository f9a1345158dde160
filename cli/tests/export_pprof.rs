//! `fdguard export --pprof` end to end: a real C program under the REAL libfdguard.so leaks
//! three CLOSE_WAIT connections from `leak_backend_connection` and keeps one from
//! `keep_connection`; its JSON reports are exported and read back by `go tool pprof`
//! (Debian's golang-go, the reference decoder), which must show the leaking function with
//! exactly 3 sockets and the backend, TCP state and finding labels. A directory of the
//! process's four reports exports the latest one only.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_status, compile_c, fdguard, library, scratch, stderr};

/// Runs `go tool pprof ARGS… PROFILE` and returns its output (stdout and stderr).
fn go_pprof(args: &[&str], profile: &Path) -> String {
    let out = Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .arg(profile)
        // pprof keeps nothing in $HOME for a local file, but give it a private one anyway.
        .env("HOME", profile.parent().unwrap())
        .env("PPROF_TMPDIR", profile.parent().unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `go tool pprof` ({e}): apt-get install golang-go (tests/support/install-deps.sh does)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "go tool pprof {args:?}: {text}");
    text
}

/// The flat count `go tool pprof -top` gives `function` (its line's first column).
fn flat(top: &str, function: &str) -> Option<f64> {
    top.lines()
        .find(|l| l.split_whitespace().last() == Some(function))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn export(out: &Path, inputs: &[&Path]) {
    let mut cmd = fdguard();
    cmd.arg("export").arg("--pprof").arg(out).args(inputs);
    let output = cmd.output().unwrap();
    assert_status(&output, 0);
    assert!(
        stderr(&output).contains(&format!("-> {}", out.display())),
        "{}",
        stderr(&output)
    );
}

#[test]
fn go_tool_pprof_reads_the_leaking_stack_back() {
    let dir = scratch("pprof");
    let program = compile_c("pprof_leak.c", &dir, &[]);
    let reports = dir.join("reports");
    std::fs::create_dir(&reports).unwrap();
    let output = Command::new(&program)
        .arg(&reports)
        .env("LD_PRELOAD", library())
        .env("FDGUARD_GRACE_MS", "0")
        .env("FDGUARD_EXIT_REPORT", "never")
        .env("FDGUARD_REPORT", "stderr")
        .output()
        .unwrap();
    assert_status(&output, 0);
    let truth: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the program's ground truth line");
    let backend = format!("127.0.0.1:{}", truth["port"]);

    let one = dir.join("one.pb.gz");
    export(&one, &[&reports.join("r4.json")]);
    let bytes = std::fs::read(&one).unwrap();
    assert_eq!(&bytes[..2], [0x1f, 0x8b], "gzip");

    let top = go_pprof(&["-top", "-sample_index=sockets"], &one);
    assert_eq!(flat(&top, "leak_backend_connection"), Some(3.0), "{top}");
    assert_eq!(
        flat(&top, "keep_connection"),
        Some(2.0),
        "client and accepted end: {top}"
    );
    assert_eq!(flat(&top, "main"), Some(1.0), "the listener: {top}");
    assert!(top.contains("of 6 total"), "{top}");

    // Only the leaking sockets are in CLOSE_WAIT with a peer_closed finding.
    let leaking = go_pprof(
        &[
            "-top",
            "-tagfocus=tcp_state=CLOSE_WAIT",
            "-tagfocus=finding=peer_closed",
        ],
        &one,
    );
    assert_eq!(
        flat(&leaking, "leak_backend_connection"),
        Some(3.0),
        "{leaking}"
    );
    assert_eq!(flat(&leaking, "keep_connection"), None, "{leaking}");

    let tags = go_pprof(&["-tags"], &one);
    for label in ["backend:", "tcp_state:", "finding:"] {
        assert!(tags.contains(label), "{label}: {tags}");
    }
    assert!(tags.contains(&backend), "{tags}");
    assert!(
        tags.contains("CLOSE_WAIT") && tags.contains("ESTABLISHED"),
        "{tags}"
    );
    assert!(tags.contains("peer_closed,duplicate_backend"), "{tags}");

    // The directory holds four reports of one process: the latest one, alone, is exported.
    let all = dir.join("all.pb.gz");
    export(&all, &[&reports]);
    let from_dir = go_pprof(&["-top", "-sample_index=sockets"], &all);
    assert_eq!(
        flat(&from_dir, "leak_backend_connection"),
        Some(3.0),
        "{from_dir}"
    );
    assert!(from_dir.contains("of 6 total"), "{from_dir}");
    let comments = go_pprof(&["-comments"], &all);
    assert!(comments.contains("report #4"), "{comments}");

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn finding_labels_are_most_severe_first_whatever_the_report_order() {
    // The shared fixture lists duplicate_backend before peer_closed for fd 7.
    let dir = scratch("pprof-fixture");
    let out = dir.join("g.pb.gz");
    export(&out, &[&common::fixture("grpc_client.json")]);
    let tags = go_pprof(&["-tags"], &out);
    assert!(tags.contains("peer_closed,duplicate_backend"), "{tags}");
    assert!(!tags.contains("duplicate_backend,peer_closed"), "{tags}");
    // Frames without a function name are named module+offset; a socket without a stack
    // says where it came from.
    let top = go_pprof(&["-top"], &out);
    assert!(top.contains("libstdc++.so.6+0xd4a2b"), "{top}");
    assert!(top.contains("(open before fdguard was loaded)"), "{top}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_report_is_a_clear_error() {
    let dir = scratch("pprof-empty");
    let output = fdguard()
        .args(["export", "--pprof"])
        .arg(dir.join("x.pb.gz"))
        .arg(&dir)
        .output()
        .unwrap();
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("no JSON reports"),
        "{}",
        stderr(&output)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
