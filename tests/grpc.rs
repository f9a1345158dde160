//! Issues 2 and 3, proven on real gRPC: grpcio 1.51.1 (the version of grpc/grpc#38871) and the
//! latest grpcio from PyPI, plus a C++ client on Debian's libgrpc++ 1.51.1 — all installed by
//! tests/support/install-deps.sh. Each report is compared with the kernel's own view
//! (/proc/self/fd joined with /proc/net/tcp{,6}) that the scenario prints at the same moment.
//! See tests/grpc/NOTES.md for how these gRPC versions behave without fdguard.

mod common;

use common::{Outcome, Run, repo};
use fdguard_report::{FindingKind, Report, Socket, Trigger};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

fn python(venv: &str) -> PathBuf {
    common::venv_python(venv)
}

fn script(name: &str) -> PathBuf {
    repo().join("tests/grpc").join(name)
}

/// The scenario's checkpoint line `name` and the report it asked for.
fn checkpoint<'a>(out: &'a Outcome, name: &str) -> (Value, &'a Report) {
    let line = out
        .json_lines()
        .into_iter()
        .find(|l| l["checkpoint"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no checkpoint {name}; stdout:\n{}\nstderr:\n{}",
                out.stdout, out.stderr
            )
        });
    let pid = line["pid"].as_i64().unwrap() as i32;
    let seq = line["report_seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("{name}: no report: {line}"));
    let report = out
        .reports
        .iter()
        .find(|r| r.pid == pid && r.seq == seq)
        .unwrap_or_else(|| panic!("{name}: report {seq} of {pid} not found"));
    (line, report)
}

/// TCP sockets (fd, state) in the kernel view of a checkpoint line.
fn kernel_tcp(line: &Value) -> BTreeSet<(i32, String)> {
    line["kernel"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["proto"].as_str().is_some_and(|p| p.starts_with("tcp")) && s["state"].is_string()
        })
        .map(|s| {
            (
                s["fd"].as_i64().unwrap() as i32,
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The fds the kernel view shows in CLOSE_WAIT.
fn kernel_close_wait(line: &Value) -> BTreeSet<i32> {
    kernel_tcp(line)
        .into_iter()
        .filter(|(_, st)| st == "CLOSE_WAIT")
        .map(|(fd, _)| fd)
        .collect()
}

/// Every fd named by a finding of `kind`.
fn flagged_fds(report: &Report, kind: FindingKind) -> BTreeSet<i32> {
    findings(report, kind)
        .iter()
        .flat_map(|f| f.fds.clone())
        .collect()
}

fn report_tcp(report: &Report) -> BTreeSet<(i32, String)> {
    report
        .sockets
        .iter()
        .filter_map(|s| Some((s.fd, s.tcp_state?.as_str().to_string())))
        .collect()
}

/// Client sockets to `backend` in the report.
fn clients_to<'a>(report: &'a Report, backend: &str) -> Vec<&'a Socket> {
    report
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(backend) && s.role == fdguard_report::Role::Client)
        .collect()
}

fn findings(report: &Report, kind: FindingKind) -> Vec<&fdguard_report::Finding> {
    report.findings.iter().filter(|f| f.kind == kind).collect()
}

fn runs_through(socket: &Socket, module_part: &str) -> bool {
    socket
        .stack
        .iter()
        .any(|f| f.module.as_deref().is_some_and(|m| m.contains(module_part)))
}

fn dup_client(venv: &str, args: &[&str]) -> Run {
    Run::new(python(venv))
        .arg(script("dup_client.py"))
        .args(args)
        .env("FDGUARD_EXPECT_SHIM", "1")
        .timeout(Duration::from_secs(90))
}

/// Two channels with different options to one server → two connections: exactly one
/// duplicate_backend group with both sockets, stacks inside gRPC (cygrpc), matching the
/// kernel. Then the server stops; a healthy client closes them (1.51.1: one per 5 s backup-poll
/// tick) and nothing is flagged under the default grace, even while one is still in CLOSE_WAIT.
fn duplicate_then_healthy_close(venv: &str) {
    let out = dup_client(
        venv,
        &[
            "--server-gone",
            "stop",
            "--wait-s",
            "7",
            "--linger-s",
            "5",
            "--exit",
            "leak",
        ],
    )
    .run();
    assert!(
        out.status.success(),
        "{venv}: {}\n{}",
        out.stdout,
        out.stderr
    );
    let (line, report) = checkpoint(&out, "both_open");
    let port = line["server_port"].as_i64().unwrap();
    let backend = format!("127.0.0.1:{port}");
    let dups = findings(report, FindingKind::DuplicateBackend);
    assert_eq!(
        dups.len(),
        1,
        "{venv}: one duplicate group: {:#?}",
        report.findings
    );
    assert_eq!(dups[0].backend.as_deref(), Some(backend.as_str()));
    let clients = clients_to(report, &backend);
    assert_eq!(
        clients.len(),
        2,
        "{venv}: two client connections to {backend}"
    );
    let mut client_fds: Vec<i32> = clients.iter().map(|s| s.fd).collect();
    client_fds.sort_unstable();
    assert_eq!(dups[0].fds, client_fds);
    for s in &clients {
        assert!(
            runs_through(s, "cygrpc"),
            "{venv}: fd {} stack runs through gRPC: {:#?}",
            s.fd,
            s.stack
        );
        assert!(s.stack.iter().any(|f| {
            f.module
                .as_deref()
                .is_some_and(|m| m.contains("libpython") || m.contains("python"))
        }));
        assert_eq!(
            s.connect.as_ref().map(|c| c.result.as_str()),
            Some("EINPROGRESS"),
            "gRPC connects non-blocking"
        );
        assert_eq!(
            s.family, "inet6",
            "gRPC uses IPv4-mapped IPv6 sockets; the peer is still written as IPv4"
        );
    }
    assert_eq!(
        report_tcp(report),
        kernel_tcp(&line),
        "{venv}: report matches the kernel at both_open"
    );

    let (line, report) = checkpoint(&out, "after_server_gone");
    assert!(
        findings(report, FindingKind::PeerClosed).is_empty(),
        "{venv}: healthy close is not a finding: {:#?}",
        report.findings
    );
    assert_eq!(
        report_tcp(report),
        kernel_tcp(&line),
        "{venv}: report matches the kernel after the server left"
    );
    let exit = out.exit_report();
    assert!(
        clients_to(exit, &backend).is_empty(),
        "{venv}: both connections were closed by gRPC before exit"
    );
    assert!(findings(exit, FindingKind::PeerClosed).is_empty());
}

#[test]
fn grpc151_duplicate_connections_then_healthy_close() {
    duplicate_then_healthy_close("venv-grpc151");
}

#[test]
fn grpc_latest_duplicate_connections_then_healthy_close() {
    duplicate_then_healthy_close("venv-grpc-latest");
}

/// With the backup poller off, 1.51.1 never notices the hang-up: both sockets sit in CLOSE_WAIT
/// for the life of the process — grpc/grpc#38871's symptom. Exactly those sockets are
/// peer_closed findings, live on SIGUSR1 and at exit, and FDGUARD_EXITCODE gates the exit.
#[test]
fn grpc151_without_backup_poller_leaks_close_wait_sockets_and_fdguard_names_them() {
    let out = dup_client(
        "venv-grpc151",
        &["--server-gone", "stop", "--wait-s", "4", "--exit", "hard"],
    )
    .env("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0")
    .env("FDGUARD_GRACE_MS", "1500")
    .env("FDGUARD_WATCH_MS", "100")
    .env("FDGUARD_EXITCODE", "23")
    .run();
    assert_eq!(
        out.code(),
        Some(23),
        "gating findings at exit → FDGUARD_EXITCODE\n{}",
        out.stderr
    );
    let (line, report) = checkpoint(&out, "after_server_gone");
    let port = line["server_port"].as_i64().unwrap();
    let backend = format!("127.0.0.1:{port}");
    let close_wait: BTreeSet<i32> = kernel_close_wait(&line);
    assert_eq!(
        close_wait.len(),
        2,
        "the kernel shows both sockets in CLOSE_WAIT: {line}"
    );
    let flagged: BTreeSet<i32> = flagged_fds(report, FindingKind::PeerClosed);
    assert_eq!(
        flagged, close_wait,
        "exactly the CLOSE_WAIT sockets are peer_closed: {:#?}",
        report.findings
    );
    for f in findings(report, FindingKind::PeerClosed) {
        assert_eq!(f.backend.as_deref(), Some(backend.as_str()));
    }
    for s in clients_to(report, &backend) {
        assert!(runs_through(s, "cygrpc"));
        assert!(
            s.peer_closed_s.is_some_and(|t| t >= 1.5),
            "the watcher dated the hang-up: {:?}",
            s.peer_closed_s
        );
    }
    assert_eq!(report.trigger, Trigger::Signal);
    assert_eq!(report_tcp(report), kernel_tcp(&line));
    let exit = out.exit_report();
    let at_exit: BTreeSet<i32> = flagged_fds(exit, FindingKind::PeerClosed);
    assert_eq!(at_exit, close_wait, "still leaked at exit");
    let open_at_exit = findings(exit, FindingKind::OpenAtExit);
    assert!(
        close_wait
            .iter()
            .all(|fd| open_at_exit[0..2].iter().any(|f| f.fds.contains(fd))),
        "dangerous ones first: {open_at_exit:#?}"
    );
}

/// The latest grpcio under the same setting closes the sockets at once: nothing to flag.
#[test]
fn grpc_latest_without_backup_poller_closes_its_sockets() {
    let out = dup_client(
        "venv-grpc-latest",
        &["--server-gone", "stop", "--wait-s", "3", "--exit", "leak"],
    )
    .env("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0")
    .env("FDGUARD_GRACE_MS", "1500")
    .env("FDGUARD_WATCH_MS", "100")
    .env("FDGUARD_EXITCODE", "23")
    .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let (line, report) = checkpoint(&out, "after_server_gone");
    assert!(
        findings(report, FindingKind::PeerClosed).is_empty(),
        "{:#?}",
        report.findings
    );
    assert!(kernel_tcp(&line).iter().all(|(_, st)| st != "CLOSE_WAIT"));
    assert!(findings(out.exit_report(), FindingKind::PeerClosed).is_empty());
}

/// GOAWAY through max_connection_age: same leak in 1.51.1 with the poller off.
#[test]
fn grpc151_goaway_without_backup_poller_is_flagged() {
    let out = dup_client(
        "venv-grpc151",
        &[
            "--server-gone",
            "goaway",
            "--age-ms",
            "1000",
            "--grace-ms",
            "200",
            "--wait-s",
            "5",
            "--exit",
            "leak",
        ],
    )
    .env("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0")
    .env("FDGUARD_GRACE_MS", "1500")
    .env("FDGUARD_WATCH_MS", "100")
    .run();
    assert!(out.status.success(), "{}", out.stderr);
    let (line, report) = checkpoint(&out, "after_server_gone");
    let close_wait: BTreeSet<i32> = kernel_close_wait(&line);
    assert_eq!(close_wait.len(), 2, "{line}");
    let flagged: BTreeSet<i32> = flagged_fds(report, FindingKind::PeerClosed);
    assert_eq!(flagged, close_wait);
}

/// A gRPC server with many clients coming and going reports nothing.
#[test]
fn grpc_server_with_many_short_lived_clients_has_no_findings() {
    for venv in ["venv-grpc151", "venv-grpc-latest"] {
        let out = Run::new(python(venv))
            .arg(script("many_clients_server.py"))
            .args([
                "--clients",
                "40",
                "--client-procs",
                "2",
                "--client-mode",
                "close",
            ])
            .env("FDGUARD_EXPECT_SHIM", "1")
            .env("FDGUARD_GRACE_MS", "1000")
            .timeout(Duration::from_secs(120))
            .run();
        assert!(
            out.status.success(),
            "{venv}: {}\n{}",
            out.stdout,
            out.stderr
        );
        let (line, report) = checkpoint(&out, "after_clients");
        let real: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.suppressed_by.is_none())
            .collect();
        assert!(real.is_empty(), "{venv}: {real:#?}");
        assert_eq!(report_tcp(report), kernel_tcp(&line), "{venv}");
        assert!(
            report
                .sockets
                .iter()
                .any(|s| s.role == fdguard_report::Role::Listener && runs_through(s, "cygrpc"))
        );
    }
}

/// The seed's own stack is C++: a client on Debian's libgrpc++ 1.51.1 (completion-queue API)
/// opens two connections to one server; the duplicate group's stacks name gRPC's C++ functions,
/// demangled (libgrpc keeps its dynamic symbols). With the backup poller off it leaks exactly
/// like grpcio 1.51.1 (tests/grpc/NOTES.md), and fdguard flags both sockets.
#[test]
fn grpcpp_151_duplicate_and_close_wait_leak() {
    let out = Run::new(python("venv-grpc151"))
        .arg(script("cc_driver.py"))
        .args([
            "--server-gone",
            "stop",
            "--api",
            "cq",
            "--wait-s",
            "4",
            "--exit",
            "leak",
            "--client-preload",
        ])
        .arg(common::lib_path())
        .env_remove("LD_PRELOAD")
        .without_shim()
        .env("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "0")
        .env("FDGUARD_GRACE_MS", "1500")
        .env("FDGUARD_WATCH_MS", "100")
        .timeout(Duration::from_secs(180))
        .run();
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let (line, report) = checkpoint(&out, "both_open");
    // The C++ client prints no port: take the backend from the kernel's view of its sockets.
    let backend = line["kernel"][0]["remote"]
        .as_str()
        .expect("a connection in the kernel view")
        .to_string();
    let dups = findings(report, FindingKind::DuplicateBackend);
    assert_eq!(dups.len(), 1, "{:#?}", report.findings);
    let clients = clients_to(report, &backend);
    assert_eq!(clients.len(), 2);
    for s in &clients {
        let names: Vec<&str> = s
            .stack
            .iter()
            .filter_map(|f| f.function.as_deref())
            .collect();
        assert!(
            names.iter().any(|n| n.contains("grpc") && n.contains("::")),
            "demangled gRPC C++ names in the stack: {names:#?}"
        );
        assert!(runs_through(s, "libgrpc"));
    }
    assert_eq!(report_tcp(report), kernel_tcp(&line));
    let (line, report) = checkpoint(&out, "after_server_gone");
    let close_wait: BTreeSet<i32> = kernel_close_wait(&line);
    assert_eq!(close_wait.len(), 2, "{line}");
    let flagged: BTreeSet<i32> = flagged_fds(report, FindingKind::PeerClosed);
    assert_eq!(flagged, close_wait);
}
