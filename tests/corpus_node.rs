//! Issue 10 corpus: Node's `http.Agent({keepAlive: true, maxSockets: 4})` (tests/http/agent.js)
//! against a keep-alive server that closes idle connections (tests/http/server.py, no shim).
//! With the default thresholds, a pool of keep-alive sockets is context, never a leak: at exit
//! with the pool open, and after the server closed them and the agent let them go. Node resets
//! signal handlers at start-up, so these are exit reports.

mod common;
mod corpus_support;

use common::Run;
use corpus_support::{Lines, findings_text, leak_level, program, python};
use fdguard_report::{FindingKind, Severity, TcpState};
use std::process::{Command, Stdio};
use std::time::Duration;

/// server.py (no shim) with the given idle timeout; returns it and its port.
fn server(idle_timeout_s: &str) -> (std::process::Child, u16) {
    let mut child = Command::new(python("venv-http"))
        .arg(common::repo().join("tests/http/server.py"))
        .args(["--idle-timeout-s", idle_timeout_s])
        .env_remove("LD_PRELOAD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start server.py");
    let port =
        Lines::of(child.stdout.take().unwrap()).next_json(Duration::from_secs(30))["listening"]
            .as_u64()
            .unwrap() as u16;
    (child, port)
}

fn agent(port: u16, mode: &str) -> common::Outcome {
    Run::new(program("node", "nodejs"))
        .arg(common::repo().join("tests/http/agent.js"))
        .args([port.to_string().as_str(), mode])
        .env("FDGUARD_EXITCODE", "23")
        .timeout(Duration::from_secs(60))
        .run()
}

#[test]
fn node_keep_alive_agent_is_a_pool_not_a_leak() {
    let (mut srv, port) = server("30");
    let out = agent(port, "healthy");
    let backend = format!("127.0.0.1:{port}");
    assert_eq!(
        out.code(),
        Some(0),
        "nothing gates the exit\n{}",
        out.stderr
    );
    let exit = out.exit_report();
    let pool: Vec<_> = exit
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(backend.as_str()))
        .collect();
    assert!((2..=4).contains(&pool.len()), "{pool:#?}");
    assert!(
        pool.iter()
            .all(|s| s.tcp_state == Some(TcpState::Established))
    );
    assert!(leak_level(exit).is_empty(), "{}", findings_text(exit));
    let dup: Vec<_> = exit
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::DuplicateBackend)
        .collect();
    assert_eq!(dup.len(), 1, "{}", findings_text(exit));
    assert_eq!(dup[0].severity(), Severity::Info, "{}", dup[0].message);
    assert!(dup[0].suspect_fds.is_empty());
    assert!(
        exit.findings.iter().all(|f| f.severity() == Severity::Info),
        "{}",
        findings_text(exit)
    );
    drop(srv.stdin.take());
    let _ = srv.wait();
}

#[test]
fn node_agent_lets_go_of_sockets_the_server_closed() {
    let (mut srv, port) = server("0.3");
    let out = agent(port, "idle-closed");
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let after = out
        .json_lines()
        .into_iter()
        .find(|l| l.get("pooled_after").is_some())
        .expect("agent.js reports its pool");
    assert_eq!(
        after["pooled_after"], 0,
        "the agent destroyed the closed sockets"
    );
    let exit = out.exit_report();
    let backend = format!("127.0.0.1:{port}");
    assert!(
        exit.sockets
            .iter()
            .all(|s| s.peer.as_deref() != Some(backend.as_str())),
        "libuv closed them (by raw system call: the report's check against /proc/self/fd drops \
         them): {:#?}",
        exit.sockets
    );
    assert!(leak_level(exit).is_empty(), "{}", findings_text(exit));
    drop(srv.stdin.take());
    let _ = srv.wait();
}
