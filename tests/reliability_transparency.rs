//! Issue 6, transparency (tests/core.rs has the errno matrix): fdguard never writes to
//! stdout, and a host sees no thread or fd of ours until it holds a socket — then exactly one
//! thread, named `fdguard`, and one fd: the descriptor kept in reserve for reports at the fd
//! limit (issue 12).

mod common;

use common::{Run, compile};
use serde_json::Value;

fn looks(out: &common::Outcome) -> Vec<Value> {
    assert!(out.status.success(), "{:?}\n{}", out.status, out.stderr);
    out.json_lines()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_host_without_sockets_sees_no_thread_and_no_fd_of_ours_even_after_the_report_signal() {
    let bin = compile("rel_transparency");
    let plain = looks(&Run::new(&bin).arg("quiet").without_shim().run());
    let shimmed = looks(&Run::new(&bin).arg("quiet").run());
    assert_eq!(shimmed, plain);
    // Without fdguard, SIGUSR1 would kill this program: surviving it proves the shim is loaded.
    let out = Run::new(&bin).arg("quiet-signal").run();
    let after_signal = looks(&out);
    assert_eq!(after_signal.len(), 2);
    assert_eq!(after_signal[0], plain[0], "before the signal");
    assert_eq!(after_signal[1], plain[0], "after the signal");
    assert_eq!(out.stderr, "", "no socket, no report, no message");
    assert!(out.reports.is_empty());
}

#[test]
fn a_host_with_a_socket_sees_one_more_thread_named_fdguard_and_one_reserved_fd() {
    let bin = compile("rel_transparency");
    let plain = &looks(&Run::new(&bin).arg("socket").without_shim().run())[0];
    let shimmed = &looks(&Run::new(&bin).arg("socket").run())[0];
    let mut expected = strings(&plain["threads"]);
    expected.push("fdguard".into());
    let mut threads = strings(&shimmed["threads"]);
    threads.sort();
    expected.sort();
    assert_eq!(threads, expected);
    // Exactly one fd more: the descriptor fdguard keeps in reserve so it can still report at
    // the fd limit (issue 12; README "Guarantees"), far above the host's own numbers, which
    // are unchanged.
    let plain_fds = strings(&plain["fds"]);
    let mut fds = strings(&shimmed["fds"]);
    let reserve = fds
        .iter()
        .position(|f| f.ends_with("/memfd:fdguard-reserve (deleted)"))
        .unwrap_or_else(|| panic!("no reserved fd in {fds:?}"));
    let reserved = fds.remove(reserve);
    assert_eq!(fds, plain_fds, "the host's own fds are untouched");
    let number: i32 = reserved.split(' ').next().unwrap().parse().unwrap();
    assert!(number > 100, "{reserved}: kept far from the host's numbers");
}

#[test]
fn nothing_is_ever_written_to_stdout() {
    // Programs with deterministic stdout, run plain and under every kind of report output,
    // bad configuration and internal fault: stdout must be byte-identical.
    let churn = compile("rel_churn");
    let host = compile("rel_host");
    let matrix = compile("errno_matrix");
    let configs: &[&[(&str, &str)]] = &[
        &[("FDGUARD_REPORT", "stderr"), ("FDGUARD_FORMAT", "text")],
        &[("FDGUARD_REPORT", "stderr"), ("FDGUARD_FORMAT", "json")],
        &[("FDGUARD_FORMAT", "json")], // files in the report directory
        // Hostile: a report path "inside" stdout (becomes /proc/self/fd/1.<pid>: cannot be
        // created, so reports fall back to stderr).
        &[
            ("FDGUARD_REPORT", "/proc/self/fd/1"),
            ("FDGUARD_FORMAT", "text"),
        ],
        &[
            ("FDGUARD_REPORT", "stderr"),
            ("FDGUARD_FORMAT", "garbage"),
            ("FDGUARD_SIGNAL", "garbage"),
        ],
        &[("FDGUARD_TEST_FAULT", "hook-panic")],
        &[("FDGUARD_TEST_FAULT", "report-panic")],
        &[("FDGUARD_EXIT_REPORT", "always"), ("FDGUARD_WATCH_MS", "1")],
    ];
    for (bin, args) in [
        (&churn, vec!["2", "300", "0", "0"]),
        (&host, vec![]),
        (&matrix, vec![]),
    ] {
        let plain = Run::new(bin).args(&args).without_shim().run();
        assert!(plain.status.success(), "{}", plain.stderr);
        for config in configs {
            let mut run = Run::new(bin).args(&args);
            for (k, v) in *config {
                run = run.env(k, v);
            }
            let out = run.run();
            assert_eq!(
                out.status.code(),
                plain.status.code(),
                "{} {config:?}\n{}",
                bin.display(),
                out.stderr
            );
            assert_eq!(
                out.stdout,
                plain.stdout,
                "{} {config:?}: stdout differs",
                bin.display()
            );
        }
    }
}
