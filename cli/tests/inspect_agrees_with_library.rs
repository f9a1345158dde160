//! Two ways of seeing one process must agree. A C program that leaks CLOSE_WAIT connections
//! runs under the real libfdguard.so; `fdguard report PID` (the library, from inside) and
//! `fdguard inspect PID` (the kernel, from outside) must list the same socket fds with the same
//! family, type, role, addresses and TCP state. And inspect notices the library and points to
//! the full report.

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;

use common::subjects::{DEADLINE, Server, Subject, inspect_json, wait_until};
use common::{assert_status, compile_c, fdguard, library, scratch, stderr};
use fdguard_report::{Collector, Report, Socket, TcpState};

#[test]
fn inspect_and_the_library_list_the_same_sockets() {
    let dir = scratch("inspect-agrees");
    let leaker = compile_c("leaker.c", &dir, &[]);
    let backend = Server::hanging_up();
    let pool = Server::keeping();
    let pidfile = dir.join("leaker.pid");
    let child = std::process::Command::new(&leaker)
        .args([
            backend.port.to_string(),
            "3".to_string(),
            "0".to_string(),
            pidfile.display().to_string(),
            pool.port.to_string(),
        ])
        .env("LD_PRELOAD", library())
        .env("FDGUARD_EXIT_REPORT", "never")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut subject = Subject { child, pid };
    subject.wait_for_file(&pidfile);

    let outside = wait_until("three CLOSE_WAIT sockets", DEADLINE, || {
        let r = inspect_json(pid, &[]);
        (r.sockets
            .iter()
            .filter(|s| s.tcp_state == Some(TcpState::CloseWait))
            .count()
            == 3)
            .then_some(r)
    });
    let output = fdguard()
        .args(["report", &pid.to_string(), "--json"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let inside: Report = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(inside.collector, Collector::Preload);
    assert_eq!(outside.collector, Collector::Inspect);

    let by_fd = |r: &Report| -> BTreeMap<i32, Socket> {
        r.sockets.iter().map(|s| (s.fd, s.clone())).collect()
    };
    let (inside, outside_sockets) = (by_fd(&inside), by_fd(&outside));
    assert_eq!(
        inside.keys().collect::<Vec<_>>(),
        outside_sockets.keys().collect::<Vec<_>>(),
        "the same socket fds"
    );
    for (fd, mine) in &outside_sockets {
        let theirs = &inside[fd];
        assert_eq!(mine.family, theirs.family, "fd {fd}");
        assert_eq!(mine.sock_type, theirs.sock_type, "fd {fd}");
        assert_eq!(mine.role, theirs.role, "fd {fd}");
        assert_eq!(mine.peer, theirs.peer, "fd {fd}");
        assert_eq!(mine.local, theirs.local, "fd {fd}");
        assert_eq!(mine.tcp_state, theirs.tcp_state, "fd {fd}");
    }

    assert!(
        outside
            .notes
            .iter()
            .any(|n| n.contains(&format!("`fdguard report {pid}` gives the full report"))),
        "{:?}",
        outside.notes
    );
    let output = fdguard()
        .args(["inspect", &pid.to_string()])
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert!(
        stderr(&output).contains(&format!("libfdguard.so is loaded in process {pid}")),
        "{}",
        stderr(&output)
    );
}
