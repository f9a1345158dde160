//! Issue 3: every finding kind on a C program with known ground truth
//! (tests/programs/detectors.c), suppressions and the exit code, and the text report's layout
//! against golden files (tests/golden/*.txt; `FDGUARD_BLESS=1` rewrites them). Volatile parts
//! of the text (pids, addresses, ports, ages, dates, stack ids, paths) are normalised first.

mod common;

use common::{Outcome, Run, compile, fd_list, repo};
use fdguard_report::{FindingKind, Report, Trigger};

fn run(mode: &str, extra: &[(&str, &str)]) -> Outcome {
    let mut r = Run::new(compile("detectors"))
        .arg(mode)
        .env("FDGUARD_GRACE_MS", "300")
        .env("FDGUARD_WATCH_MS", "50");
    for (k, v) in extra {
        r = r.env(k, v);
    }
    let out = r.run();
    assert!(!out.timed_out, "{mode} timed out");
    out
}

fn signal_report(out: &Outcome) -> &Report {
    out.reports
        .iter()
        .find(|r| r.trigger == Trigger::Signal)
        .unwrap_or_else(|| panic!("no signal report: {}", out.stderr))
}

fn kinds(report: &Report) -> Vec<FindingKind> {
    report
        .findings
        .iter()
        .filter(|f| f.suppressed_by.is_none())
        .map(|f| f.kind)
        .collect()
}

#[test]
fn peer_closed_is_reported_with_its_stack_and_since_when() {
    let out = run("peer_closed", &[]);
    assert!(out.status.success(), "{}", out.stderr);
    let truth = &out.json_lines()[0];
    let report = signal_report(&out);
    assert_eq!(kinds(report), vec![FindingKind::PeerClosed]);
    let f = &report.findings[0];
    assert_eq!(f.fds, fd_list(&truth["leak"]));
    assert_eq!(
        f.backend.as_deref(),
        Some(format!("127.0.0.1:{}", truth["port"]).as_str())
    );
    let s = report.sockets.iter().find(|s| s.fd == f.fds[0]).unwrap();
    assert_eq!(s.tcp_state.map(|t| t.as_str()), Some("CLOSE_WAIT"));
    assert!(
        s.peer_closed_s.is_some_and(|t| t >= 0.3),
        "{:?}",
        s.peer_closed_s
    );
    assert!(
        common::functions(s).contains(&"connect_to_backend".to_string()),
        "{:#?}",
        s.stack
    );
}

#[test]
fn shutdown_without_close_is_reported() {
    let out = run("shutdown", &[]);
    let truth = &out.json_lines()[0];
    let report = signal_report(&out);
    // The client's shutdown(SHUT_WR) sends a FIN: the server side, which never closes, is now
    // in CLOSE_WAIT — a true peer_closed finding on the other fd.
    assert_eq!(
        kinds(report),
        vec![FindingKind::PeerClosed, FindingKind::ShutdownNotClosed]
    );
    assert_eq!(
        report.findings[0].fds,
        vec![truth["server_side"].as_i64().unwrap() as i32]
    );
    assert_eq!(report.findings[1].fds, fd_list(&truth["leak"]));
    let s = report
        .sockets
        .iter()
        .find(|s| s.fd == report.findings[1].fds[0])
        .unwrap();
    assert_eq!(s.shutdown.as_ref().map(|x| x.how.as_str()), Some("write"));
    assert!(
        common::functions(s).contains(&"connect_to_backend".to_string()),
        "{:#?}",
        s.stack
    );
}

#[test]
fn duplicate_backend_names_the_group_the_likely_leak_and_the_history() {
    let out = run("duplicate", &[]);
    let truth = &out.json_lines()[0];
    let report = signal_report(&out);
    let dups: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicateBackend)
        .collect();
    assert_eq!(
        dups.len(),
        1,
        "only backend A is duplicated: {:#?}",
        report.findings
    );
    assert_eq!(dups[0].fds, fd_list(&truth["group"]));
    assert_eq!(dups[0].suspect_fds, fd_list(&truth["suspect"]));
    let backend = format!("127.0.0.1:{}", truth["port"]);
    assert_eq!(dups[0].backend.as_deref(), Some(backend.as_str()));
    let earlier = truth["earlier"].as_i64().unwrap() as i32;
    assert!(
        report.recently_closed.iter().any(|c| c.fd == earlier
            && c.peer.as_deref() == Some(backend.as_str())
            && !c.stack.is_empty()),
        "history has the closed connection: {:#?}",
        report.recently_closed
    );
    // The hung-up member is also a peer_closed finding; nothing else.
    assert_eq!(
        kinds(report),
        vec![FindingKind::PeerClosed, FindingKind::DuplicateBackend]
    );
    assert_eq!(report.summary.findings.get("duplicate_backend"), Some(&1));
}

#[test]
fn a_duplicate_group_size_below_dup_min_is_not_a_finding() {
    let out = run("duplicate", &[("FDGUARD_DUP_MIN", "4")]);
    assert!(!kinds(signal_report(&out)).contains(&FindingKind::DuplicateBackend));
}

#[test]
fn healthy_idle_connections_are_not_findings() {
    let out = run("healthy", &[]);
    let report = signal_report(&out);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(
        report.sockets.len(),
        3,
        "listener, client and the server side"
    );
}

#[test]
fn open_at_exit_lists_dangerous_first_and_listeners_last() {
    let out = run("exit", &[]);
    let truth = &out.json_lines()[0];
    let exit = out.exit_report();
    let order: Vec<i32> = exit
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::OpenAtExit)
        .map(|f| f.fds[0])
        .collect();
    assert_eq!(order, fd_list(&truth["order"]));
}

#[test]
fn suppressions_hide_matching_findings_and_are_listed_and_exit_code_gates() {
    let dir = common::temp_dir("supp");
    let file = dir.join("fdguard.supp");
    std::fs::write(
        &file,
        "# known: the spare connections\nleak:connect_spare\ndup:127.0.0.1:*\n",
    )
    .unwrap();
    let out = run(
        "duplicate",
        &[
            ("FDGUARD_SUPPRESSIONS", file.to_str().unwrap()),
            ("FDGUARD_EXITCODE", "23"),
        ],
    );
    let report = signal_report(&out);
    assert!(kinds(report).is_empty(), "{:#?}", report.findings);
    assert!(report.findings.iter().all(|f| f.suppressed_by.is_some()));
    let rules: Vec<&str> = report
        .suppressions_used
        .iter()
        .map(|s| s.rule.as_str())
        .collect();
    assert_eq!(rules, vec!["leak:connect_spare", "dup:127.0.0.1:*"]);
    assert!(report.summary.suppressed >= 2);
    assert_eq!(
        out.code(),
        Some(0),
        "suppressed findings do not gate the exit code"
    );

    let gated = run("peer_closed", &[("FDGUARD_EXITCODE", "23")]);
    assert_eq!(gated.code(), Some(23), "{}", gated.stderr);
    let abrupt = Run::new(compile("detectors"))
        .args(["peer_closed", "_exit"])
        .env("FDGUARD_GRACE_MS", "300")
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_EXITCODE", "23")
        .run();
    assert_eq!(abrupt.code(), Some(23), "_exit too");
    let healthy = run("healthy", &[("FDGUARD_EXITCODE", "23")]);
    assert_eq!(healthy.code(), Some(0));
}

/// Issue 10: a socket whose peer hung up a moment before exit is not a leak — not in the JSON
/// severity, not in the text, not for FDGUARD_EXITCODE.
#[test]
fn a_hang_up_just_before_exit_is_not_called_a_leak() {
    let run = Run::new(compile("detectors"));
    let template = run.report_dir().join("r-%p-%n.txt");
    let text_run = run
        .arg("late_hangup")
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_EXITCODE", "23")
        .env("FDGUARD_FORMAT", "text")
        .env("FDGUARD_REPORT", &template)
        .run();
    assert_eq!(text_run.code(), Some(0), "{}", text_run.stderr);
    let file = std::fs::read_dir(&text_run.report_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("the exit report");
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains("open_at_exit (info)"), "{text}");
    assert!(text.contains("not a leak"), "{text}");
    assert!(!text.contains("(leak)"), "{text}");

    let out = run_exit_json("late_hangup");
    let truth = &out.json_lines()[0];
    let exit = out.exit_report();
    let client = truth["client"].as_i64().unwrap() as i32;
    let s = exit.sockets.iter().find(|s| s.fd == client).unwrap();
    assert_eq!(
        s.tcp_state.map(|t| t.as_str()),
        Some("CLOSE_WAIT"),
        "the client read the EOF"
    );
    assert!(
        exit.findings
            .iter()
            .all(|f| f.severity() == fdguard_report::Severity::Info),
        "{:#?}",
        exit.findings
    );
    assert_eq!(out.code(), Some(0));
}

fn run_exit_json(mode: &str) -> Outcome {
    let out = Run::new(compile("detectors"))
        .arg(mode)
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_EXITCODE", "23")
        .run();
    assert!(!out.timed_out, "{mode} timed out");
    out
}

/// Replaces what changes from run to run so the layout can be compared.
fn normalise(text: &str) -> String {
    let repo = repo().to_string_lossy().into_owned();
    // Test programs live under the target directory, which CARGO_TARGET_DIR may move.
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{repo}/target"));
    let mut out = String::new();
    for line in text
        .replace(&target, "REPO/target")
        .replace(&repo, "REPO")
        .lines()
    {
        // The report's wall-clock time: "at 2026-11-26 23:30:25 UTC".
        let line = match (line.find(" at "), line.find(" UTC")) {
            (Some(a), Some(b)) if a < b => format!("{} at DATE{}", &line[..a], &line[b..]),
            _ => line.to_string(),
        };
        let mut l = String::new();
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let rest: String = chars[i..].iter().collect();
            if rest.starts_with("0x") {
                l.push_str("0xADDR");
                i += 2;
                while i < chars.len() && chars[i].is_ascii_hexdigit() {
                    i += 1;
                }
            } else if chars[i].is_ascii_digit() {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let number: String = chars[start..i].iter().collect();
                // Keep small integers that are part of the layout (fd numbers, counts, frame
                // numbers); everything else (pids, ports, times, ids) becomes N.
                let keep = !number.contains('.')
                    && number.len() <= 2
                    && !l.ends_with("127.0.0.")
                    && !l.ends_with(':')
                    && !l.ends_with("stack ");
                l.push_str(if keep { &number } else { "N" });
            } else {
                l.push(chars[i]);
                i += 1;
            }
        }
        // Column padding depends on the width of the numbers that were replaced.
        let collapsed = l
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let indent = l.len() - l.trim_start().len();
        out.push_str(&" ".repeat(indent));
        out.push_str(&collapsed);
        out.push('\n');
    }
    out
}

fn golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(format!("{name}.txt"));
    if std::env::var_os("FDGUARD_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with FDGUARD_BLESS=1", path.display()));
    for (n, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        assert_eq!(e, a, "{name}.txt line {}", n + 1);
    }
    assert_eq!(
        expected.lines().count(),
        actual.lines().count(),
        "{name}.txt line count\n{actual}"
    );
}

#[test]
fn text_report_layout_matches_the_golden_files() {
    for (mode, trigger) in [("duplicate", 1), ("exit", 2)] {
        let run = Run::new(compile("detectors"));
        let template = run.report_dir().join("r-%p-%n.txt");
        let out = run
            .arg(mode)
            .env("FDGUARD_REPORT", template)
            .env("FDGUARD_GRACE_MS", "300")
            .env("FDGUARD_WATCH_MS", "50")
            .env("FDGUARD_FORMAT", "text")
            .run();
        assert!(out.status.success(), "{}", out.stderr);
        let file = std::fs::read_dir(&out.report_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(&format!("-{trigger}.txt")))
            .expect("text report file");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.lines()
                .last()
                .unwrap()
                .starts_with("SUMMARY: fdguard:"),
            "ends with the SUMMARY line"
        );
        golden(&format!("detectors-{mode}"), &normalise(&text));
    }
}
