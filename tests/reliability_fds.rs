//! Issue 6, hosts that manage fds themselves: close_range/closefrom over tracked sockets, dup2
//! and dup3 onto a tracked socket, a daemon that closes every fd (stdio included), numbers
//! reused at once, numbers up to the hard RLIMIT_NOFILE, sockets inherited from a parent that
//! ran without fdguard, and sockets glibc closes behind our back (fclose).

mod common;

use common::{Outcome, Run, compile, fd_set, functions, lib_path, listed};
use fdguard_report::{Origin, Report, Role, Trigger};
use serde_json::Value;

/// Runs a scenario and checks both its signal and its exit report list exactly `open`.
fn scenario(mode: &str) -> (Outcome, Value) {
    let bin = compile("rel_fds");
    let out = Run::new(&bin).arg(mode).run();
    assert!(
        out.status.success(),
        "{mode}: {:?}\n{}",
        out.status,
        out.stderr
    );
    assert_eq!(out.stderr, "", "{mode}");
    let truth = out.json_lines().into_iter().next().expect("ground truth");
    let open = fd_set(&truth["open"]);
    assert_eq!(out.reports.len(), 2, "{mode}: signal + exit");
    for r in &out.reports {
        assert_eq!(
            listed(r),
            open,
            "{mode}: report #{} ({:?})",
            r.seq,
            r.trigger
        );
        assert_eq!(
            r.fd_budget.sockets_open, r.fd_budget.sockets_tracked,
            "{mode}"
        );
    }
    (out, truth)
}

fn socket<'a>(r: &'a Report, fd: &Value) -> &'a fdguard_report::Socket {
    let fd = fd.as_i64().unwrap() as i32;
    r.sockets.iter().find(|s| s.fd == fd).unwrap()
}

#[test]
fn close_range_and_closefrom_retire_exactly_their_range_and_cloexec_retires_nothing() {
    let (out, truth) = scenario("ranges");
    let exit = out.exit_report();
    assert!(listed(exit).is_disjoint(&fd_set(&truth["closed"])));
    assert!(exit.notes.is_empty(), "{:?}", exit.notes);
}

#[test]
fn dup2_and_dup3_onto_a_tracked_socket_replace_its_record() {
    let (out, truth) = scenario("dup2-onto");
    let exit = out.exit_report();
    let a = socket(exit, &truth["a"]);
    let port = truth["port"].as_i64().unwrap();
    for key in ["b", "c"] {
        let s = socket(exit, &truth[key]);
        assert_eq!(s.dup_of, Some(a.fd), "{key}");
        assert_eq!(s.socket_id, a.socket_id, "{key}: the same socket as a");
        assert_eq!(
            s.peer.as_deref(),
            Some(format!("127.0.0.1:{port}").as_str()),
            "{key}: a's peer, not the replaced socket's"
        );
        assert!(functions(s).iter().any(|f| f == "first_owner"));
    }
    assert_eq!(exit.sockets.len(), 5);
}

#[test]
fn a_daemon_that_closes_every_fd_then_opens_new_sockets_is_tracked_afresh() {
    let (out, truth) = scenario("daemon");
    let exit = out.exit_report();
    let client = socket(exit, &truth["client"]);
    assert!(functions(client).iter().any(|f| f == "after_daemonize"));
    assert!(
        exit.sockets
            .iter()
            .all(|s| !functions(s).iter().any(|f| f == "row_socket")),
        "no record survives the daemon's close loop"
    );
}

#[test]
fn a_daemon_that_closes_stdio_never_gets_a_report_written_into_the_socket_at_fd_2() {
    let bin = compile("rel_fds");
    let out = Run::new(&bin)
        .arg("daemon-stdio")
        .env("FDGUARD_REPORT", "stderr")
        .env("FDGUARD_FORMAT", "text")
        .run();
    assert_eq!(
        out.code(),
        Some(0),
        "status 80: report bytes arrived on the host's socket; 81: unexpected fd numbers"
    );
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "", "the original stderr was closed by the host");
    // Not lost either: with fd 2 no longer the stderr fdguard saw at load, the reports went to
    // the per-user runtime directory (the signal report and the exit report).
    let written = common::take_runtime_files(&format!("fdguard.{}.", out.pid));
    assert_eq!(written.len(), 2, "{written:?}");
    for (name, text) in &written {
        assert!(text.contains("SUMMARY: fdguard:"), "{name}: {text}");
    }
}

#[test]
fn a_number_reused_right_after_close_carries_only_the_new_socket() {
    let (out, truth) = scenario("reuse");
    for r in &out.reports {
        let s = socket(r, &truth["fd"]);
        let names = functions(s);
        assert!(names.iter().any(|f| f == "first_owner"), "{names:?}");
        assert!(!names.iter().any(|f| f == "second_owner"), "{names:?}");
    }
    // The 1,000 earlier owners of the number left no trace among the live sockets.
    assert_eq!(out.exit_report().sockets.len(), 2);
}

#[test]
fn fds_up_to_the_hard_rlimit_nofile_are_tracked() {
    let (out, truth) = scenario("highfd");
    let exit = out.exit_report();
    let top = socket(exit, &truth["top"]);
    assert_eq!(top.fd, exit.fd_budget.limit_hard as i32 - 1);
    assert_eq!(top.dup_of, Some(truth["source"].as_i64().unwrap() as i32));
    let mid = socket(exit, &truth["mid"]);
    assert_eq!(mid.socket_id, top.socket_id);
    assert!(exit.notes.is_empty(), "nothing dropped: {:?}", exit.notes);
}

#[test]
fn sockets_glibc_closes_internally_are_reconciled_away_and_counted_quietly() {
    let (out, truth) = scenario("fclose");
    // `scenario` checked that neither ghost is listed. The first report drops both and counts
    // them (summary.closed_unseen), with no note: closes fdguard cannot see are routine (libuv
    // makes them all the time) and a note in every report would be noise. Later reports may
    // find fewer (fdguard's own directory reads reuse a ghost's number and close it, which
    // retires that record for good).
    let first = &out.reports[0];
    assert_eq!(first.summary.closed_unseen, 2, "{:#?}", first.summary);
    assert!(
        first.notes.iter().all(|n| !n.contains("dropped")),
        "{:?}",
        first.notes
    );
    assert_eq!(fd_set(&truth["ghosts"]).len(), 2);
}

#[test]
fn sockets_inherited_from_a_parent_without_fdguard_are_preexisting_with_peer_and_state() {
    let bin = compile("rel_fork");
    let out = Run::new(&bin)
        .arg("exec")
        .without_shim()
        .env("REL_CHILD_PRELOAD", lib_path())
        .env("FDGUARD_EXIT_REPORT", "always")
        .run();
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    assert_eq!(out.stderr, "");
    let lines = out.json_lines();
    let parent = lines.iter().find(|l| l.get("parent").is_some()).unwrap();
    assert_eq!(out.reports.len(), 1, "only the child ran with fdguard");
    let child = &out.reports[0];
    assert_eq!(child.trigger, Trigger::Exit);
    let port = parent["port"].as_i64().unwrap();
    let client = socket(child, &parent["client"]);
    assert_eq!(client.origin, Origin::Preexisting);
    assert_eq!(client.role, Role::Connected);
    assert_eq!(
        client.peer.as_deref(),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(client.tcp_state.map(|t| t.as_str()), Some("ESTABLISHED"));
    assert!(client.stack.is_empty() && client.stack_id.is_none());
    let listener = socket(child, &parent["listener"]);
    assert_eq!(listener.origin, Origin::Preexisting);
    assert_eq!(listener.role, Role::Listener);
    assert_eq!(listener.tcp_state.map(|t| t.as_str()), Some("LISTEN"));
    assert_eq!(child.sockets.len(), 2);
}
