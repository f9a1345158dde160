//! Issue 10 corpus: a C++ gRPC server on Debian's libgrpc++ 1.51.1 whose streaming handler
//! never watches for cancellation (tests/programs/grpc_stuck_server.cc), while its clients are
//! SIGKILLed. Each dead client leaves the server an fd in state CLOSE — invisible to `ss -t`,
//! absent from /proc/net/tcp6 — that gRPC never closes. fdguard must flag exactly those as
//! peer_closed leaks, and leave the listener and a live client's connection alone.
//!
//! Shortened thresholds: FDGUARD_GRACE_MS=1000 (default 60000), FDGUARD_WATCH_MS=100.

mod common;
mod corpus_support;

use common::{Run, compile_with};
use corpus_support::{Lines, findings_text, flagged, leak_level, python, report_when};
use fdguard_report::{FindingKind, Severity, TcpState};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

fn grpcpp_flags() -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(["--cflags", "--libs", "grpc++"])
        .output()
        .expect("pkg-config (tests/support/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "pkg-config grpc++ failed: install libgrpc++-dev (tests/support/install-deps.sh)"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A stream_client.py (no shim) against the server; returns it and its connection's local end.
fn client(port: u16, args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(python("venv-grpc151"))
        .arg(common::repo().join("tests/grpc/stream_client.py"))
        .args(["--port", &port.to_string()])
        .args(args)
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stream_client.py");
    let lines = Lines::of(child.stdout.take().unwrap());
    let ready = lines.next_json(Duration::from_secs(60));
    let local = ready["local"].as_str().expect("local address").to_string();
    (child, local)
}

#[test]
fn grpcpp_server_ignoring_cancellation_keeps_close_sockets_and_fdguard_names_exactly_them() {
    let flags = grpcpp_flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = compile_with("grpc_stuck_server", &flags);
    let run = Run::new(server)
        .stdin(b"")
        .env("FDGUARD_GRACE_MS", "1000")
        .env("FDGUARD_WATCH_MS", "100")
        .env("FDGUARD_EXITCODE", "23");
    let dir = run.report_dir().to_path_buf();
    let (mut server, _) = run.spawn();
    let pid = server.id();
    let lines = Lines::of(server.stdout.take().unwrap());
    let port = lines.next_json(Duration::from_secs(30))["listening"]
        .as_u64()
        .expect("the server's port") as u16;

    // Three subscribers that die without a word, one client that finishes properly, one that
    // stays connected.
    let mut killed = Vec::new();
    for _ in 0..3 {
        let (mut child, local) = client(port, &["--mode", "watch"]);
        child.kill().unwrap();
        child.wait().unwrap();
        killed.push(local);
    }
    let (mut finished, finished_local) = client(port, &["--mode", "echo"]);
    assert!(finished.wait().unwrap().success());
    let (mut stays, stays_local) = client(port, &["--mode", "echo", "--stay"]);

    let report = report_when(pid, libc::SIGUSR1, &dir, Duration::from_secs(30), |r| {
        let leaked = r
            .sockets
            .iter()
            .filter(|s| killed.iter().any(|k| s.peer.as_deref() == Some(k)))
            .map(|s| s.fd)
            .collect::<BTreeSet<_>>();
        leaked.len() == killed.len()
            && leaked.is_subset(&flagged(r, FindingKind::PeerClosed, Severity::Leak))
    });
    let listed = corpus_support::listed_tcp_inodes(pid);
    let leaked: Vec<_> = report
        .sockets
        .iter()
        .filter(|s| killed.iter().any(|k| s.peer.as_deref() == Some(k)))
        .collect();
    assert_eq!(
        leaked.len(),
        3,
        "each dead client left the server an fd: {:#?}",
        report.sockets
    );
    let peer_closed = flagged(&report, FindingKind::PeerClosed, Severity::Leak);
    for s in &leaked {
        assert_eq!(s.tcp_state, Some(TcpState::Close), "fd {}", s.fd);
        assert!(
            s.inode.is_some_and(|i| !listed.contains(&i)),
            "fd {}: in state CLOSE, so absent from /proc/net/tcp6 (what ss shows)",
            s.fd
        );
        assert!(
            peer_closed.contains(&s.fd),
            "fd {} is a peer_closed leak:\n{}",
            s.fd,
            findings_text(&report)
        );
        assert!(
            common::functions(s).iter().any(|f| f.contains("grpc")),
            "created inside gRPC: {:#?}",
            s.stack
        );
    }
    // The other direction: nothing healthy at leak level.
    let leaked_fds: BTreeSet<i32> = leaked.iter().map(|s| s.fd).collect();
    assert_eq!(
        leak_level(&report),
        leaked_fds,
        "only the dead clients' sockets are leaks:\n{}",
        findings_text(&report)
    );
    assert!(
        corpus_support::by_peer(&report, &finished_local).is_none(),
        "the finished client's connection was closed by the server"
    );
    let alive = corpus_support::by_peer(&report, &stays_local).expect("the live client");
    assert_eq!(alive.tcp_state, Some(TcpState::Established));

    // At exit the same sockets are leaks, and only they gate the exit status.
    drop(server.stdin.take());
    let status = wait_bounded(&mut server, Duration::from_secs(20));
    assert_eq!(
        status.code(),
        Some(23),
        "leaks at exit gate FDGUARD_EXITCODE"
    );
    drop(stays.stdin.take()); // the live client leaves on EOF
    assert!(wait_bounded(&mut stays, Duration::from_secs(20)).success());
    let exit = common::read_reports(&dir)
        .into_iter()
        .rev()
        .find(|r| r.trigger == fdguard_report::Trigger::Exit)
        .expect("an exit report");
    assert_eq!(
        flagged(&exit, FindingKind::OpenAtExit, Severity::Leak),
        leaked_fds
    );
    assert_eq!(leak_level(&exit), leaked_fds, "{}", findings_text(&exit));
}

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("process {} did not exit within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
