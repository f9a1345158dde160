//! Issue 2: the core shim on real processes — exact socket lists with the program's own
//! function names, reports on the signal and at every kind of exit, silence for processes
//! without sockets, and errno/return values identical with and without fdguard.

mod common;

use common::{Run, compile, fd_set, functions};
use fdguard_report::{Origin, Role, Trigger};
use serde_json::Value;
use std::collections::BTreeSet;

#[test]
fn signal_report_lists_exactly_the_open_sockets_with_their_creating_functions() {
    let bin = compile("lifecycle");
    let out = Run::new(&bin).arg("return").run();
    assert!(out.status.success(), "stderr:\n{}", out.stderr);
    let truth = &out.json_lines()[0];
    let signal = out
        .reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .expect("signal report");
    let listed: BTreeSet<i32> = signal.sockets.iter().map(|s| s.fd).collect();
    assert_eq!(
        listed,
        fd_set(&truth["open"]),
        "report lists exactly the open sockets"
    );
    assert!(
        listed.is_disjoint(&fd_set(&truth["closed"])),
        "no closed socket is listed"
    );

    let by_fd = |fd: &Value| {
        signal
            .sockets
            .iter()
            .find(|s| s.fd == fd.as_i64().unwrap() as i32)
            .unwrap()
    };
    let port = truth["port"].as_i64().unwrap();
    let expect = [
        ("listener", "open_listener", Role::Listener),
        ("alpha", "open_client_alpha", Role::Client),
        ("accepted", "accept_connection", Role::Accepted),
        ("pair", "make_pair", Role::Pair),
    ];
    for (key, function, role) in expect {
        let s = by_fd(&truth[key]);
        assert_eq!(s.role, role, "{key}");
        assert_eq!(s.origin, Origin::Created);
        let names = functions(s);
        assert!(
            names.iter().any(|f| f == function),
            "{key}: stack {names:?} should name {function}"
        );
        // ... and stops there: the C library's start-up frames (__libc_start_call_main,
        // __libc_start_main) and the executable's _start are cut.
        assert_eq!(
            names.last().map(String::as_str),
            Some("main"),
            "{key}: stack ends at main: {names:?}"
        );
        assert!(
            !names.iter().any(|f| f.contains("fdguard")),
            "our own frames are cut: {names:?}"
        );
        assert!(
            s.stack.iter().any(|f| f
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("lifecycle.c"))
                && f.line.is_some()),
            "{key}: file:line"
        );
        assert!(
            s.thread.as_ref().is_some_and(|t| t.name == "lifecycle"),
            "{key}: thread {:?}",
            s.thread
        );
    }
    let alpha = by_fd(&truth["alpha"]);
    assert_eq!(
        alpha.peer.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(alpha.tcp_state.map(|t| t.as_str()), Some("ESTABLISHED"));
    assert_eq!(
        alpha.connect.as_ref().map(|c| c.result.as_str()),
        Some("ok")
    );
    assert!(
        alpha
            .local
            .as_deref()
            .is_some_and(|l| l.starts_with("127.0.0.1:"))
    );
    let dup = by_fd(&truth["alpha_dup"]);
    assert_eq!(
        dup.socket_id, alpha.socket_id,
        "a dup shares the socket's identity"
    );
    assert_eq!(dup.dup_of, Some(alpha.fd));
    assert_eq!(dup.peer, alpha.peer);
    let accepted = by_fd(&truth["accepted"]);
    assert!(
        accepted
            .peer
            .as_deref()
            .is_some_and(|p| p.starts_with("127.0.0.1:"))
    );
    let pair = by_fd(&truth["pair"]);
    assert_eq!(
        (pair.family.as_str(), pair.tcp_state.map(|t| t.as_str())),
        ("unix", None)
    );
    // The report opens with the process and its fd budget.
    assert_eq!(signal.program, bin.to_string_lossy());
    assert!(signal.fd_budget.limit_soft > 0 && signal.fd_budget.open_fds >= listed.len() as u64);
    assert_eq!(signal.fd_budget.sockets_tracked, listed.len() as u64);
    assert!(signal.fd_budget.sockets_open >= listed.len() as u64);
    assert_eq!(signal.summary.live_sockets, listed.len() as u64);
    assert_eq!(signal.schema_version, 1);
}

#[test]
fn every_way_of_exiting_writes_one_exit_report() {
    let bin = compile("lifecycle");
    for how in ["return", "exit", "_exit", "_Exit"] {
        let out = Run::new(&bin).arg(how).run();
        assert!(out.status.success(), "{how}: {}", out.stderr);
        let exits: Vec<_> = out
            .reports
            .iter()
            .filter(|r| r.trigger == Trigger::Exit)
            .collect();
        assert_eq!(exits.len(), 1, "{how}: exactly one exit report");
        let truth = &out.json_lines()[0];
        let listed: BTreeSet<i32> = exits[0].sockets.iter().map(|s| s.fd).collect();
        assert_eq!(listed, fd_set(&truth["open"]), "{how}");
        assert!(
            exits[0]
                .findings
                .iter()
                .any(|f| f.kind == fdguard_report::FindingKind::OpenAtExit)
        );
        assert_eq!(exits[0].seq, 2, "{how}: numbered after the signal report");
    }
}

#[test]
fn text_format_goes_to_stderr_grouped_by_stack_with_a_summary_and_nothing_on_stdout() {
    let bin = compile("lifecycle");
    let out = Run::new(&bin)
        .env("FDGUARD_FORMAT", "text")
        .env("FDGUARD_REPORT", "stderr")
        .arg("exit")
        .run();
    assert!(out.status.success());
    // stdout holds only the program's own line.
    assert_eq!(out.stdout.lines().count(), 1, "stdout: {}", out.stdout);
    assert!(out.stdout.starts_with("{\"open\""));
    let pid_prefix = "==";
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with(pid_prefix) && l.contains("socket report #2 (trigger: exit)")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("in open_client_alpha"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .lines()
            .any(|l| l.starts_with("SUMMARY: fdguard: 5 live sockets")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("fd budget:"));
}

#[test]
fn processes_that_never_hold_a_socket_stay_silent() {
    let out = Run::new("/bin/sh")
        .args(["-c", "for i in 1 2 3; do /bin/true; done; echo hi"])
        .env("FDGUARD_REPORT", "stderr")
        .run();
    assert!(out.status.success());
    assert_eq!(out.stdout, "hi\n");
    assert_eq!(out.stderr, "", "no report, no message");
    let json = Run::new("/bin/true").run();
    assert!(json.reports.is_empty());
}

#[test]
fn errno_and_return_values_are_identical_with_and_without_fdguard() {
    let bin = compile("errno_matrix");
    let plain = Run::new(&bin).without_shim().run();
    let shimmed = Run::new(&bin).env("FDGUARD_EXIT_REPORT", "never").run();
    assert!(
        plain.status.success() && shimmed.status.success(),
        "{}\n{}",
        plain.stderr,
        shimmed.stderr
    );
    assert!(plain.stdout.lines().count() > 40, "{}", plain.stdout);
    for needle in [
        "accept eintr                 rc=-1 errno=4",
        "socket emfile                rc=-1 errno=24",
        "connect einprogress          rc=-1 errno=115",
        "connect refused              rc=-1 errno=111",
        "close twice                  rc=-1 errno=9",
    ] {
        assert!(
            plain.stdout.contains(needle),
            "the matrix exercises {needle:?}:\n{}",
            plain.stdout
        );
    }
    let diff: Vec<_> = plain
        .stdout
        .lines()
        .zip(shimmed.stdout.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert!(diff.is_empty(), "differences (without, with): {diff:#?}");
    assert_eq!(plain.stdout.lines().count(), shimmed.stdout.lines().count());
    assert_eq!(shimmed.stderr, "");
}
