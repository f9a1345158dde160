//! Semantics of `filter::apply` and `diff::diff` beyond what the golden files show.

mod common;

use common::load;
use fdguard_report::diff::{diff, render};
use fdguard_report::filter::{Filter, apply};
use fdguard_report::{FindingKind, text};

fn fds(report: &fdguard_report::Report) -> Vec<i32> {
    report.sockets.iter().map(|s| s.fd).collect()
}

#[test]
fn empty_filter_keeps_the_report_unchanged() {
    let report = load("grpc_client.json");
    assert_eq!(apply(&report, &Filter::default()), report);
}

#[test]
fn kind_filter_keeps_the_sockets_the_findings_are_about() {
    let report = load("grpc_client.json");
    let filter = Filter {
        kinds: vec![FindingKind::DuplicateBackend],
        ..Filter::default()
    };
    let filtered = apply(&report, &filter);
    assert_eq!(fds(&filtered), vec![6, 7]);
    assert_eq!(filtered.findings.len(), 1);
    assert_eq!(filtered.summary.live_sockets, 2);
    assert_eq!(filtered.summary.stacks, 1);
    assert_eq!(filtered.summary.findings.get("duplicate_backend"), Some(&1));
    assert_eq!(filtered.summary.suppressed, 0);
    assert!(
        filtered
            .notes
            .last()
            .unwrap()
            .starts_with("filtered view (kind duplicate_backend)")
    );
    assert_eq!(
        filtered.fd_budget, report.fd_budget,
        "the budget describes the whole process"
    );
}

#[test]
fn backend_substring_and_glob() {
    let report = load("grpc_client.json");
    let by_substring = apply(
        &report,
        &Filter {
            backend: Some("10.0.0.7".into()),
            ..Filter::default()
        },
    );
    assert_eq!(fds(&by_substring), vec![6, 7, 10]);
    // Both the duplicate and the peer_closed finding concern fds that remain.
    assert_eq!(by_substring.findings.len(), 2);
    assert_eq!(by_substring.recently_closed.len(), 1);
    let by_glob = apply(
        &report,
        &Filter {
            backend: Some("*:50051".into()),
            ..Filter::default()
        },
    );
    assert_eq!(fds(&by_glob), vec![6, 7, 10]);
    let anchored = apply(
        &report,
        &Filter {
            backend: Some("10.0.0.7:*1".into()),
            ..Filter::default()
        },
    );
    assert_eq!(fds(&anchored), vec![6, 7, 10]);
    let nothing = apply(
        &report,
        &Filter {
            backend: Some("*:5005".into()),
            ..Filter::default()
        },
    );
    assert!(nothing.sockets.is_empty());
    assert!(nothing.findings.is_empty());
    assert!(
        text::render(&nothing)
            .contains("SUMMARY: fdguard: 0 live sockets from 0 stacks; no findings")
    );
}

#[test]
fn min_age_and_stack() {
    let report = load("grpc_client.json");
    let old = apply(
        &report,
        &Filter {
            min_age_s: Some(100.0),
            ..Filter::default()
        },
    );
    assert_eq!(fds(&old), vec![3, 6, 10, 11]);
    // The duplicate finding (fds 6, 7) still concerns fd 6, so it is kept whole.
    assert_eq!(old.findings.len(), 1);
    assert_eq!(old.findings[0].fds, vec![6, 7]);
    let python = apply(
        &report,
        &Filter {
            stack_contains: Some("python3.11".into()),
            ..Filter::default()
        },
    );
    assert_eq!(fds(&python), vec![8, 11, 12], "module paths match too");
    let by_file = apply(
        &report,
        &Filter {
            stack_contains: Some("tcp_client_posix.cc".into()),
            ..Filter::default()
        },
    );
    assert_eq!(fds(&by_file), vec![6, 7, 10]);
}

#[test]
fn diff_keys_stacks_by_names_not_ids_or_addresses() {
    // The earlier fixture numbers its stacks differently and its addresses are shifted.
    let d = diff(&load("grpc_client_earlier.json"), &load("grpc_client.json"));
    assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    let growing: Vec<_> = d.growing_stacks().collect();
    assert_eq!(growing.len(), 1);
    assert_eq!(
        (growing[0].old, growing[0].new, growing[0].delta),
        (1, 3, 2)
    );
    assert_eq!(
        growing[0].key[0],
        "grpc_create_dualstack_socket_using_factory@cygrpc.cpython-311-x86_64-linux-gnu.so"
    );
    assert_eq!(d.stacks.iter().filter(|s| s.delta == 0).count(), 3);
    let backend = d
        .backends
        .iter()
        .find(|b| b.backend == "10.0.0.7:50051")
        .unwrap();
    assert_eq!(
        (backend.old, backend.new),
        (1, 2),
        "the dup()ed fd 10 is not a second connection"
    );
    let new: Vec<_> = d.new_findings().map(|f| f.kind).collect();
    assert_eq!(
        new,
        vec![FindingKind::PeerClosed, FindingKind::DuplicateBackend]
    );
}

#[test]
fn diff_of_a_report_with_itself_is_empty() {
    let report = load("grpc_client.json");
    let d = diff(&report, &report);
    assert_eq!(d.growing_stacks().count(), 0);
    assert!(d.findings.is_empty());
    let text = render(&d);
    assert!(text.contains("GROWING STACKS: none"), "{text}");
    assert!(text.contains("NEW FINDINGS: none"), "{text}");
    assert!(
        text.ends_with(
            "SUMMARY: fdguard diff: 0 live sockets; no growing stacks; 0 new findings\n"
        ),
        "{text}"
    );
}

#[test]
fn diff_warns_about_swapped_reports_and_other_processes() {
    let old = load("grpc_client_earlier.json");
    let new = load("grpc_client.json");
    let swapped = render(&diff(&new, &old));
    assert!(
        swapped.contains(
            "WARNING: the new report (#1 at 2025-11-26 22:59:00 UTC) was written before the old one"
        ),
        "{swapped}"
    );
    let other = load("exit_report.json");
    let text = render(&diff(&old, &other));
    assert!(
        text.contains(
            "WARNING: the reports come from different processes (pid 4242 and pid 31337)"
        ),
        "{text}"
    );
    let d = diff(&new, &old);
    let gone: Vec<_> = d.findings.iter().filter(|f| f.delta < 0).collect();
    assert_eq!(gone.len(), 2);
    assert!(swapped.contains("FINDINGS THAT WENT AWAY (2)"));
}

#[test]
fn diff_json_round_trips() {
    let d = diff(&load("grpc_client_earlier.json"), &load("grpc_client.json"));
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(
        serde_json::from_str::<fdguard_report::diff::Diff>(&json).unwrap(),
        d
    );
}
