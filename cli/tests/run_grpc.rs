//! `fdguard run` against a real Python gRPC client: grpcio 1.51.1 with its backup poller off
//! keeps two connections in CLOSE_WAIT after the server stops (grpc/grpc#38871's symptom; see
//! tests/grpc/NOTES.md). `run` must collect the reports, print what they found, and turn the
//! findings into the requested exit status.

mod common;

use common::{assert_status, fdguard, library, scratch, stderr};
use fdguard_report::{FindingKind, Report};
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn run_reports_the_grpc_close_wait_leak_and_gates_the_exit_status() {
    let python = repo().join("target/deps/venv-grpc151/bin/python");
    assert!(
        python.exists(),
        "{} missing: run tests/support/install-deps.sh",
        python.display()
    );
    let dir = scratch("run-grpc");
    let output = fdguard()
        .arg("run")
        .arg("--lib")
        .arg(library())
        .arg("--report")
        .arg(format!("{}/", dir.display()))
        .args([
            "--grace-ms",
            "1500",
            "--watch-ms",
            "100",
            "--exitcode",
            "23",
            "--",
        ])
        .arg(&python)
        .arg(repo().join("tests/grpc/dup_client.py"))
        .args([
            "--server-gone",
            "stop",
            "--wait-s",
            "3",
            "--exit",
            "hard",
            "--sample-ms",
            "0",
        ])
        .env("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0")
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert_status(&output, 23);
    let message = stderr(&output);
    assert!(message.contains("peer_closed"), "{message}");
    assert!(
        message.contains("cygrpc"),
        "the stacks run through gRPC:\n{message}"
    );
    let reports: Vec<Report> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    let exit = reports
        .iter()
        .find(|r| r.trigger == fdguard_report::Trigger::Exit)
        .expect("exit report collected");
    let leaked = exit
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::PeerClosed)
        .count();
    assert_eq!(leaked, 2, "{:#?}", exit.findings);
    std::fs::remove_dir_all(&dir).unwrap();
}
