//! `fdguard show` and `fdguard diff` on the hand-written report fixtures: golden output, the
//! JSON paths, and errors that say what is wrong (status 1) or how to call it (status 2).

mod common;

use std::io::Write as _;
use std::process::Stdio;

use common::{assert_golden, assert_status, fdguard, fixture, run, stderr, stdout};
use fdguard_report::{Report, text};

fn fixture_arg(name: &str) -> String {
    fixture(name).display().to_string()
}

fn load(name: &str) -> Report {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

#[test]
fn show_prints_exactly_what_the_library_renders() {
    let output = run(&["show", &fixture_arg("grpc_client.json")]);
    assert_status(&output, 0);
    assert_eq!(stdout(&output), text::render(&load("grpc_client.json")));
    assert!(
        !stdout(&output).contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn show_brief_prints_the_brief_view_without_frames() {
    let output = run(&["show", "--brief", &fixture_arg("grpc_client.json")]);
    assert_status(&output, 0);
    let text = stdout(&output);
    assert_eq!(
        text,
        text::render_with(&load("grpc_client.json"), &text::Options { brief: true })
    );
    assert!(!text.contains("    #0 "), "{text}");
    assert!(
        text.contains("1 socket created from stack 0 (grpc_create_dualstack_socket_using_factory"),
        "{text}"
    );
    assert!(text.contains("SUMMARY: fdguard: 7 live sockets"), "{text}");
    // A text view: not with JSON.
    for json in [&["--json"][..], &["--format", "json"][..]] {
        let mut args = vec!["show", "--brief"];
        args.extend_from_slice(json);
        let path = fixture_arg("grpc_client.json");
        args.push(&path);
        let output = run(&args);
        assert_status(&output, 2);
        assert!(stderr(&output).contains("--brief"), "{}", stderr(&output));
    }
}

#[test]
fn show_with_filters_golden() {
    let output = run(&[
        "show",
        &fixture_arg("grpc_client.json"),
        "--kind",
        "peer_closed",
        "--kind",
        "duplicate_backend",
        "--min-age",
        "30",
    ]);
    assert_status(&output, 0);
    assert_golden("show_grpc_client_kinds_min_age.txt", &stdout(&output));
}

#[test]
fn show_stack_filter_golden() {
    let output = run(&[
        "show",
        &fixture_arg("exit_report.json"),
        "--stack",
        "fetch.c",
    ]);
    assert_status(&output, 0);
    assert_golden("show_exit_report_stack.txt", &stdout(&output));
}

#[test]
fn show_json_is_a_filtered_report() {
    let output = run(&[
        "show",
        &fixture_arg("grpc_client.json"),
        "--format",
        "json",
        "--backend",
        "*:443",
    ]);
    assert_status(&output, 0);
    let report: Report =
        serde_json::from_str(&stdout(&output)).expect("show --format json prints a report");
    assert_eq!(
        report.sockets.iter().map(|s| s.fd).collect::<Vec<_>>(),
        vec![8]
    );
    assert_eq!(report.summary.live_sockets, 1);
    // Unfiltered JSON is the same report.
    let all = run(&["show", &fixture_arg("grpc_client.json"), "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<Report>(&stdout(&all)).unwrap(),
        load("grpc_client.json")
    );
}

#[test]
fn show_reads_standard_input() {
    let mut child = fdguard()
        .args(["show", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture("exit_report.json")).unwrap())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_status(&output, 0);
    assert_eq!(stdout(&output), text::render(&load("exit_report.json")));
}

#[test]
fn show_errors_say_what_is_wrong() {
    let missing = run(&["show", "/nonexistent/report.json"]);
    assert_status(&missing, 1);
    assert!(
        stderr(&missing).contains("fdguard: error: /nonexistent/report.json: no such file"),
        "{}",
        stderr(&missing)
    );

    let text_report = run(&["show", &fixture_arg("grpc_client.txt")]);
    assert_status(&text_report, 1);
    assert!(
        stderr(&text_report).contains("is a text report"),
        "{}",
        stderr(&text_report)
    );

    let dir = common::scratch("show-errors");
    let not_a_report = dir.join("other.json");
    std::fs::write(&not_a_report, r#"{"name": "x"}"#).unwrap();
    let output = run(&["show", not_a_report.to_str().unwrap()]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("not an fdguard report"),
        "{}",
        stderr(&output)
    );

    let truncated = dir.join("truncated.json");
    let full = std::fs::read_to_string(fixture("grpc_client.json")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let output = run(&["show", truncated.to_str().unwrap()]);
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("not a valid fdguard JSON report"),
        "{}",
        stderr(&output)
    );

    let newer = dir.join("newer.json");
    std::fs::write(
        &newer,
        full.replacen("\"schema_version\": 1", "\"schema_version\": 2", 1),
    )
    .unwrap();
    let output = run(&["show", newer.to_str().unwrap()]);
    assert_status(&output, 0);
    assert!(
        stderr(&output).contains("has schema_version 2"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn show_usage_errors_exit_2() {
    let bogus_kind = run(&["show", &fixture_arg("grpc_client.json"), "--kind", "leaky"]);
    assert_status(&bogus_kind, 2);
    assert!(
        stderr(&bogus_kind).contains("use one of: peer_closed"),
        "{}",
        stderr(&bogus_kind)
    );
    let bad_age = run(&["show", &fixture_arg("grpc_client.json"), "--min-age", "-3"]);
    assert_status(&bad_age, 2);
    assert_status(&run(&["show"]), 2);
}

#[test]
fn diff_golden() {
    let output = run(&[
        "diff",
        &fixture_arg("grpc_client_earlier.json"),
        &fixture_arg("grpc_client.json"),
    ]);
    assert_status(&output, 0);
    assert_golden("diff_grpc_client.txt", &stdout(&output));
}

#[test]
fn diff_json() {
    let output = run(&[
        "diff",
        &fixture_arg("grpc_client_earlier.json"),
        &fixture_arg("grpc_client.json"),
        "--json",
    ]);
    assert_status(&output, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    let growing: Vec<&serde_json::Value> = value["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["delta"].as_i64() > Some(0))
        .collect();
    assert_eq!(growing.len(), 1);
    assert_eq!(growing[0]["delta"], 2);
    assert_eq!(value["warnings"].as_array().unwrap().len(), 0);
}

#[test]
fn diff_warns_about_swapped_or_foreign_reports() {
    let swapped = run(&[
        "diff",
        &fixture_arg("grpc_client.json"),
        &fixture_arg("grpc_client_earlier.json"),
    ]);
    assert_status(&swapped, 0);
    assert!(
        stdout(&swapped).contains("WARNING: the new report (#1"),
        "{}",
        stdout(&swapped)
    );
    let foreign = run(&[
        "diff",
        &fixture_arg("grpc_client.json"),
        &fixture_arg("exit_report.json"),
    ]);
    assert!(
        stdout(&foreign).contains("WARNING: the reports come from different processes"),
        "{}",
        stdout(&foreign)
    );
}

#[test]
fn diff_errors() {
    assert_status(&run(&["diff", &fixture_arg("grpc_client.json")]), 2);
    assert_status(&run(&["diff", "-", "-"]), 2);
    let missing = run(&[
        "diff",
        &fixture_arg("grpc_client.json"),
        "/nonexistent.json",
    ]);
    assert_status(&missing, 1);
    assert!(stderr(&missing).contains("/nonexistent.json: no such file"));
}

#[test]
fn every_subcommand_help_has_examples() {
    for subcommand in ["run", "report", "show", "diff", "demo"] {
        let output = run(&[subcommand, "--help"]);
        assert_status(&output, 0);
        let help = stdout(&output);
        assert!(
            help.contains("Examples:"),
            "{subcommand} --help lacks examples:\n{help}"
        );
        assert!(
            help.contains("Exit status"),
            "{subcommand} --help lacks exit statuses:\n{help}"
        );
    }
    let top = stdout(&run(&["--help"]));
    assert!(
        top.contains("Exit status:") && top.contains("2  usage error"),
        "{top}"
    );
    assert!(!top.contains("__demo-client"), "the demo client is hidden");
}

#[test]
fn show_takes_several_files_and_directories() {
    let dir = common::scratch("show-many");
    for name in ["grpc_client.json", "exit_report.json"] {
        std::fs::copy(fixture(name), dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("notes.json"), "{\"not\": \"a report\"}").unwrap();
    // A directory: its reports in name order, the other JSON file skipped with a warning.
    let output = run(&["show", dir.to_str().unwrap()]);
    assert_status(&output, 0);
    assert_eq!(
        stdout(&output),
        format!(
            "{}\n{}",
            text::render(&load("exit_report.json")),
            text::render(&load("grpc_client.json"))
        )
    );
    assert!(stderr(&output).contains("skipping"), "{}", stderr(&output));
    // Several files, as JSON: an array, in the order given; --json and --format json alike.
    let a = fixture_arg("grpc_client.json");
    let b = fixture_arg("exit_report.json");
    let json = run(&["show", &a, &b, "--json"]);
    assert_status(&json, 0);
    let reports: Vec<Report> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        reports.iter().map(|r| r.pid).collect::<Vec<_>>(),
        [4242, 31337]
    );
    assert_eq!(
        stdout(&json),
        stdout(&run(&["show", &a, &b, "--format", "json"]))
    );
    // One file stays one object.
    let one: Report = serde_json::from_slice(&run(&["show", &a, "--json"]).stdout).unwrap();
    assert_eq!(one.pid, 4242);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn show_fail_on_gates_ci_with_status_23() {
    let report = fixture_arg("grpc_client.json");
    // peer_closed is there (a leak); shutdown_not_closed is suppressed; nothing is half_open.
    for (condition, status) in [
        ("peer_closed", 23),
        ("leak", 23),
        ("warning", 23),
        ("any", 23),
        ("shutdown_not_closed", 0),
        ("half_open", 0),
    ] {
        let output = run(&["show", &report, "--fail-on", condition]);
        assert_status(&output, status);
        assert_eq!(
            stdout(&output),
            text::render(&load("grpc_client.json")),
            "{condition}: the report is printed either way"
        );
    }
    // Filtering first: --kind keeps only duplicate_backend (information), so no leak is left.
    let output = run(&[
        "show",
        &report,
        "--kind",
        "duplicate_backend",
        "--fail-on",
        "leak",
    ]);
    assert_status(&output, 0);
    assert_status(&run(&["show", &report, "--fail-on", "leaks"]), 2);
}

#[test]
fn diff_fail_on_gates_on_findings_that_appeared() {
    let old = fixture_arg("grpc_client_earlier.json");
    let new = fixture_arg("grpc_client.json");
    assert_status(&run(&["diff", &old, &new, "--fail-on", "peer_closed"]), 23);
    assert_status(&run(&["diff", &old, &new, "--fail-on", "leak"]), 23);
    assert_status(&run(&["diff", &old, &new, "--fail-on", "half_open"]), 0);
    // The other way round the finding went away: nothing appeared.
    assert_status(&run(&["diff", &new, &old, "--fail-on", "any"]), 0);
    // --json and --format json alike.
    assert_eq!(
        stdout(&run(&["diff", &old, &new, "--json"])),
        stdout(&run(&["diff", &old, &new, "--format", "json"]))
    );
}
