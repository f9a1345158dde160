//! Golden files for the text report, filtered views and the diff: each `fixtures/*.json` is a
//! hand-written report, each `fixtures/*.txt` the exact expected rendering.
//! Regenerate with `FDGUARD_BLESS=1 cargo test -p fdguard-report --test golden`.

mod common;

use common::{assert_golden, load};
use fdguard_report::filter::{Filter, apply};
use fdguard_report::{FindingKind, diff, text};

#[test]
fn grpc_client_report() {
    // Two connections to one backend (one in CLOSE_WAIT), a dup, a label, a shutdown, a
    // suppressed finding, a pre-existing socket, recently closed history, notes.
    assert_golden("grpc_client.txt", &text::render(&load("grpc_client.json")));
}

#[test]
fn exit_report() {
    // Exit trigger, fd budget warning, checkpoint, failed connect, socketpair, inherited socket,
    // stacks without stack_id (grouped by frames), a socket without stack, a finding about an fd
    // missing from the socket list, optional fields omitted.
    assert_golden("exit_report.txt", &text::render(&load("exit_report.json")));
}

#[test]
fn single_socket_findings_merge_by_creating_stack() {
    // A poller holding 14 connections to one backend at exit, 2 of them in CLOSE_WAIT:
    // peer_closed and open_at_exit findings (one per socket in the JSON) print as one block per
    // kind, stack and exit severity; a block shows 10 sockets and names the rest by fd; a
    // finding whose key is met once (fd 30, the listener) prints on its own as before.
    let report = load("many_at_exit.json");
    let text = text::render(&report);
    assert_golden("many_at_exit.txt", &text);
    assert!(text.contains("open_at_exit (info): 12 sockets were still open at exit"));
    assert!(
        text.contains("open_at_exit (leak): 2 sockets were still open at exit, each a leak"),
        "a report without severities: open_at_exit is a leak where peer_closed names the socket"
    );
    assert!(text.contains("… and 2 more from this stack: fd 22, 23"));
    assert!(
        text.contains("open_at_exit (info): fd 30 to 127.0.0.1:51000 (ESTABLISHED) was still open")
    );
    // The stack of a merged block is printed once in FINDINGS, then referred to.
    assert_eq!(
        text.split("LIVE SOCKETS")
            .next()
            .unwrap()
            .matches("in open_upstream")
            .count(),
        1
    );
}

#[test]
fn filtered_by_kind() {
    let filter = Filter {
        kinds: vec![FindingKind::PeerClosed],
        ..Filter::default()
    };
    assert_golden(
        "grpc_client.peer_closed.txt",
        &text::render(&apply(&load("grpc_client.json"), &filter)),
    );
}

#[test]
fn filtered_by_backend_glob_and_stack() {
    let filter = Filter {
        backend: Some("*:443".to_string()),
        stack_contains: Some("sock_initobj".to_string()),
        ..Filter::default()
    };
    assert_golden(
        "grpc_client.backend_443.txt",
        &text::render(&apply(&load("grpc_client.json"), &filter)),
    );
}

#[test]
fn diff_of_two_reports() {
    let old = load("grpc_client_earlier.json");
    let new = load("grpc_client.json");
    assert_golden(
        "diff_grpc_client.txt",
        &diff::render(&diff::diff(&old, &new)),
    );
}
