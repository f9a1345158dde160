//! `fdguard inspect` on a never-preloaded C program that leaks CLOSE_WAIT sockets: the
//! backend hangs up on every connection `open_leaky_connection()` makes and the program keeps
//! them all, beside a healthy pool of two idle connections to another backend.
//!
//! Ground truth is the program's own fd table (`/proc/PID/fd`, read by the test) and the two
//! backends' ports. Checked: every socket fd is listed once with the right peer, role, state
//! and inode; nothing is flagged within the grace period; past it exactly the leaked sockets
//! are `peer_closed`, none of the pool's; text and JSON agree.

mod common;

use std::collections::BTreeSet;

use common::subjects::{DEADLINE, Server, Subject, inspect_json, wait_until};
use common::{assert_status, compile_c, fdguard, scratch, stdout};
use fdguard_report::{Collector, FindingKind, Origin, Role, TcpState};

const LEAKED: usize = 3;

/// The socket fds of `pid` and their inodes, as the kernel lists them.
fn socket_fds(pid: i32) -> BTreeSet<(i32, u64)> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: i32 = e.file_name().to_str()?.parse().ok()?;
            let link = std::fs::read_link(e.path()).ok()?;
            let inode = link
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            Some((fd, inode))
        })
        .collect()
}

#[test]
fn names_the_close_wait_sockets_of_a_c_program_and_spares_its_pool() {
    let dir = scratch("inspect-c");
    let leaker = compile_c("leaker.c", &dir, &[]);
    let backend = Server::hanging_up();
    let pool = Server::keeping();
    let pidfile = dir.join("leaker.pid");
    let mut subject = Subject::start(
        &leaker,
        &[
            backend.port.to_string(),
            LEAKED.to_string(),
            "0".to_string(),
            pidfile.display().to_string(),
            pool.port.to_string(),
        ],
    );
    subject.wait_for_file(&pidfile);
    let backend_addr = format!("127.0.0.1:{}", backend.port);
    let pool_addr = format!("127.0.0.1:{}", pool.port);

    // Default grace (60 s): the hang-ups are seconds old, so nothing is a leak yet.
    let report = wait_until("the leaked connections in CLOSE_WAIT", DEADLINE, || {
        let r = inspect_json(subject.pid, &[]);
        let closing = r
            .sockets
            .iter()
            .filter(|s| s.tcp_state == Some(TcpState::CloseWait))
            .count();
        (closing == LEAKED).then_some(r)
    });
    assert_eq!(report.collector, Collector::Inspect);
    assert_eq!(report.pid, subject.pid);
    assert!(report.program.ends_with("/leaker"), "{}", report.program);
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::PeerClosed),
        "a hang-up younger than the grace period is not a leak: {:?}",
        report.findings
    );
    let truth = socket_fds(subject.pid);
    let listed: BTreeSet<(i32, u64)> = report
        .sockets
        .iter()
        .map(|s| (s.fd, s.inode.expect("inspect knows every inode")))
        .collect();
    assert_eq!(listed, truth, "one entry per socket fd, with its inode");
    assert_eq!(report.fd_budget.sockets_open, truth.len() as u64);
    for socket in &report.sockets {
        assert_eq!(socket.origin, Origin::Observed);
        assert!(socket.stack.is_empty());
        assert_eq!(socket.family, "inet");
        assert_eq!(socket.role, Role::Client);
        let peer = socket.peer.as_deref().unwrap();
        if socket.tcp_state == Some(TcpState::CloseWait) {
            assert_eq!(peer, backend_addr);
        } else {
            assert_eq!(peer, pool_addr);
            assert_eq!(socket.tcp_state, Some(TcpState::Established));
        }
        let tcp = socket
            .tcp
            .as_ref()
            .expect("TCP activity from INET_DIAG_INFO");
        assert_eq!(tcp.recv_queue, Some(0));
        assert!(socket.local.as_deref().unwrap().starts_with("127.0.0.1:"));
    }

    // A short grace: once the hang-ups are older, exactly the leaked sockets are flagged.
    let flagged = wait_until("peer_closed findings past a 300 ms grace", DEADLINE, || {
        let r = inspect_json(subject.pid, &["--grace-ms", "300"]);
        let fds: BTreeSet<i32> = r
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::PeerClosed)
            .flat_map(|f| f.fds.iter().copied())
            .collect();
        (fds.len() == LEAKED).then_some((r, fds))
    });
    let (report, fds) = flagged;
    let expected: BTreeSet<i32> = report
        .sockets
        .iter()
        .filter(|s| s.peer.as_deref() == Some(backend_addr.as_str()))
        .map(|s| s.fd)
        .collect();
    assert_eq!(fds, expected, "the leaked sockets, and none of the pool's");
    for socket in report.sockets.iter().filter(|s| fds.contains(&s.fd)) {
        assert!(socket.peer_closed_s.unwrap() >= 0.3, "{socket:?}");
    }
    for finding in report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::PeerClosed)
    {
        assert_eq!(finding.backend.as_deref(), Some(backend_addr.as_str()));
    }
    assert_eq!(
        report.summary.findings.get("peer_closed"),
        Some(&(LEAKED as u64))
    );

    // The text report: the library's layout, the same findings.
    let output = fdguard()
        .args(["inspect", &subject.pid.to_string(), "--grace-ms", "300"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("=={}==fdguard", subject.pid)),
        "{text}"
    );
    assert!(
        text.contains("seen from outside the process (no stack)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("-> {backend_addr}  CLOSE_WAIT")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("peer_closed")), "{text}");
    assert!(
        text.contains(&format!("SUMMARY: fdguard: {} live sockets", LEAKED + 2)),
        "{text}"
    );
    assert!(text.contains(&format!("{LEAKED} peer_closed")), "{text}");
    assert!(backend.accepted() >= LEAKED);
}
