//! A server holding sockets in state CLOSE: its handler forgot clients that then reset the
//! connection. The kernel unhashes such sockets, so no sock_diag dump — and so `ss -tan` —
//! lists them; `fdguard inspect` reads them through copies of the server's fds and names each
//! with its peer. One look cannot date a reset (the kernel keeps no timestamp of it): the
//! report lists them undated, with a note, and flags nothing; `fdguard watch` dates them across
//! samples and flags them once past the grace period.

mod common;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::subjects::{DEADLINE, Subject, inspect_json, wait_until};
use common::{assert_status, compile_c, fdguard, scratch, stdout};
use fdguard_report::{FindingKind, Report, Role, TcpState};

const RESET: usize = 3;

/// Connects, waits until the server's greeting is in our receive queue, then closes without
/// reading it: closing with unread data resets the connection (RFC 2525 §2.17).
fn connect_and_reset(port: u16) -> SocketAddr {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 6];
    wait_until("the server's greeting", DEADLINE, || {
        (stream.peek(&mut greeting).unwrap() == greeting.len()).then_some(())
    });
    let local = stream.local_addr().unwrap();
    drop(stream);
    local
}

/// True when an `ss -tan` line is the connection between addresses `a` and `b`.
fn connects(line: &str, a: &str, b: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    fields.contains(&a) && fields.contains(&b)
}

fn closed(report: &Report) -> Vec<&fdguard_report::Socket> {
    report
        .sockets
        .iter()
        .filter(|s| s.tcp_state == Some(TcpState::Close))
        .collect()
}

#[test]
fn sockets_in_close_are_named_with_their_peers_though_ss_cannot_see_them() {
    let dir = scratch("inspect-close");
    let server = compile_c("close_server.c", &dir, &[]);
    let portfile = dir.join("server.port");
    let mut subject = Subject::start(&server, &[portfile.display().to_string()]);
    let published = subject.wait_for_file(&portfile);
    let port: u16 = published
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let listening = format!("127.0.0.1:{port}");

    let mut kept = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut hello = [0u8; 6];
    kept.read_exact(&mut hello).unwrap();
    let reset: BTreeSet<String> = (0..RESET)
        .map(|_| connect_and_reset(port).to_string())
        .collect();

    let report = wait_until("three server sockets in CLOSE", DEADLINE, || {
        let r = inspect_json(subject.pid, &["--grace-ms", "0"]);
        (closed(&r).len() == RESET).then_some(r)
    });
    let peers: BTreeSet<String> = closed(&report)
        .iter()
        .map(|s| s.peer.clone().expect("a reset socket still names its peer"))
        .collect();
    assert_eq!(peers, reset);
    for socket in closed(&report) {
        assert_eq!(socket.role, Role::Accepted, "{socket:?}");
        assert_eq!(socket.local.as_deref(), Some(listening.as_str()));
        assert!(socket.inode.is_some());
        assert_eq!(
            socket.peer_closed_s, None,
            "one look cannot date a reset: {socket:?}"
        );
    }
    let listener = report
        .sockets
        .iter()
        .find(|s| s.role == Role::Listener)
        .expect("the listener");
    assert_eq!(listener.local.as_deref(), Some(listening.as_str()));
    let established: Vec<_> = report
        .sockets
        .iter()
        .filter(|s| s.tcp_state == Some(TcpState::Established))
        .collect();
    assert_eq!(established.len(), 1);
    assert_eq!(
        established[0].peer,
        Some(kept.local_addr().unwrap().to_string())
    );
    assert_eq!(established[0].role, Role::Accepted);
    // Even with no grace at all: an undated hang-up is not claimed.
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.kind != FindingKind::PeerClosed),
        "{:?}",
        report.findings
    );
    let note = report
        .notes
        .iter()
        .find(|n| n.contains("in state CLOSE"))
        .expect("a note about the undated CLOSE sockets");
    for socket in closed(&report) {
        assert!(note.contains(&socket.fd.to_string()), "{note}");
    }

    // The point of reading fds: `ss -tan` shows the listener and the live connection, not the
    // reset ones.
    let ss = std::process::Command::new("ss")
        .args(["-tan"])
        .output()
        .expect("`ss` (iproute2) is needed as ground truth: bash tests/support/install-deps.sh installs it");
    assert!(ss.status.success());
    let ss = String::from_utf8_lossy(&ss.stdout);
    assert!(ss.contains(&listening), "{ss}");
    let kept_addr = kept.local_addr().unwrap().to_string();
    assert!(
        ss.lines().any(|l| connects(l, &listening, &kept_addr)),
        "ss lists the live connection"
    );
    for peer in &reset {
        let listed: Vec<&str> = ss
            .lines()
            .filter(|l| connects(l, &listening, peer))
            .collect();
        assert!(
            listed.is_empty(),
            "ss lists the connection from {peer}: {listed:?}"
        );
    }

    let output = fdguard()
        .args(["inspect", &subject.pid.to_string()])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let text = stdout(&output);
    for peer in &reset {
        assert!(
            text.contains(&format!("{listening} <- {peer}  CLOSE")),
            "{text}"
        );
    }
    assert!(text.contains("`ss -tan` cannot list them"), "{text}");

    // Watched, the resets are dated from the first sample that saw them, and flagged once
    // past the grace period; the live connection is not.
    let out = dir.join("watch");
    let output = fdguard()
        .args(["watch", &subject.pid.to_string()])
        .args([
            "--every",
            "300ms",
            "--for",
            "1500ms",
            "--grace-ms",
            "500",
            "--json",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_status(&output, 0);
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("sample.")
        })
        .collect();
    files.sort();
    let last: Report =
        serde_json::from_slice(&std::fs::read(files.last().unwrap()).unwrap()).unwrap();
    let flagged: BTreeSet<i32> = last
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::PeerClosed)
        .flat_map(|f| f.fds.iter().copied())
        .collect();
    let expected: BTreeSet<i32> = closed(&last).iter().map(|s| s.fd).collect();
    assert_eq!(flagged, expected, "{:?}", last.findings);
    for socket in closed(&last) {
        assert!(socket.peer_closed_s.unwrap() >= 0.5, "{socket:?}");
    }
    drop(kept);
}
