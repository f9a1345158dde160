//! `fdguard inspect` on a never-preloaded Go program (Debian's golang, standard library only,
//! compiled at test time). Go makes its system calls itself, so LD_PRELOAD could never see its
//! sockets: inspecting from outside is the only way fdguard can. The program keeps every
//! `net.Conn` it dialed after the backend hung up: they must be named, with their peer, in
//! CLOSE_WAIT, and flagged once past the grace period.

mod common;

use common::subjects::{DEADLINE, Server, Subject, compile_go, inspect_json, wait_until};
use common::{assert_status, fdguard, scratch, stdout};
use fdguard_report::{FindingKind, Role, TcpState};

const LEAKED: usize = 4;

#[test]
fn names_the_close_wait_sockets_of_a_go_program_with_their_peers() {
    let dir = scratch("inspect-go");
    let program = compile_go("leaker.go", &dir);
    let backend = Server::hanging_up();
    let pidfile = dir.join("leaker.pid");
    let mut subject = Subject::start(
        &program,
        &[
            backend.port.to_string(),
            LEAKED.to_string(),
            pidfile.display().to_string(),
        ],
    );
    subject.wait_for_file(&pidfile);
    let backend_addr = format!("127.0.0.1:{}", backend.port);

    let report = wait_until(
        "the Go program's CLOSE_WAIT sockets flagged",
        DEADLINE,
        || {
            let r = inspect_json(subject.pid, &["--grace-ms", "200"]);
            let flagged = r
                .findings
                .iter()
                .filter(|f| f.kind == FindingKind::PeerClosed)
                .count();
            (flagged == LEAKED).then_some(r)
        },
    );
    let leaked: Vec<_> = report
        .sockets
        .iter()
        .filter(|s| s.tcp_state == Some(TcpState::CloseWait))
        .collect();
    assert_eq!(leaked.len(), LEAKED, "{:#?}", report.sockets);
    for socket in &leaked {
        assert_eq!(socket.peer.as_deref(), Some(backend_addr.as_str()));
        assert_eq!(socket.role, Role::Client);
        assert!(socket.peer_closed_s.unwrap() >= 0.2);
    }
    // Go's runtime holds no other sockets here (its poller is an epoll fd, not a socket).
    assert_eq!(report.sockets.len(), LEAKED, "{:#?}", report.sockets);
    assert!(report.program.ends_with("/leaker"), "{}", report.program);

    let output = fdguard()
        .args(["inspect", &subject.pid.to_string(), "--grace-ms", "200"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let text = stdout(&output);
    assert!(
        text.matches(&format!("-> {backend_addr}  CLOSE_WAIT"))
            .count()
            >= 2 * LEAKED,
        "each socket under its finding and under LIVE SOCKETS:\n{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("peer_closed")), "{text}");
    assert!(
        text.contains(&format!("findings: {LEAKED} peer_closed")),
        "{text}"
    );
}
