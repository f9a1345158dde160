//! Golden files for the text report, filtered views and the diff: each `fixtures/*.json` is a
//! hand-written report, each `fixtures/*.txt` the exact expected rendering.
//! Regenerate with `FDGUARD_BLESS=1 cargo test -p fdguard-report --test golden`.

mod common;

use common::{assert_golden, load};
use fdguard_report::filter::{Filter, apply};
use fdguard_report::{FindingKind, diff, text};

#[test]
fn grpc_client_report() {
    // Two connections to one backend (one in CLOSE_WAIT), a dup, a label, a shutdown, a
    // suppressed finding, a pre-existing socket, recently closed history, notes.
    assert_golden("grpc_client.txt", &text::render(&load("grpc_client.json")));
}

#[test]
fn exit_report() {
    // Exit trigger, fd budget warning, checkpoint, failed connect, socketpair, inherited socket,
    // stacks without stack_id (grouped by frames), a socket without stack, a finding about an fd
    // missing from the socket list, optional fields omitted.
    assert_golden("exit_report.txt", &text::render(&load("exit_report.json")));
}

#[test]
fn single_socket_findings_merge_by_creating_stack() {
    // A poller holding 14 connections to one backend at exit, 2 of them in CLOSE_WAIT:
    // peer_closed and open_at_exit findings (one per socket in the JSON) print as one block per
    // kind, stack and exit severity; a block shows 10 sockets and names the rest by fd; a
    // finding whose key is met once (fd 30, the listener) prints on its own as before.
    let report = load("many_at_exit.json");
    let text = text::render(&report);
    assert_golden("many_at_exit.txt", &text);
    assert!(text.contains("open_at_exit (info): 12 sockets were still open at exit"));
    assert!(
        text.contains("open_at_exit (leak): 2 sockets were still open at exit, each a leak"),
        "a report without severities: open_at_exit is a leak where peer_closed names the socket"
    );
    assert!(text.contains("… and 2 more from this stack: fd 22, 23"));
    assert!(
        text.contains("open_at_exit (info): fd 30 to 127.0.0.1:51000 (ESTABLISHED) was still open")
    );
    // The stack of a merged block is printed once in FINDINGS, then referred to.
    assert_eq!(
        text.split("LIVE SOCKETS")
            .next()
            .unwrap()
            .matches("in open_upstream")
            .count(),
        1
    );
}

#[test]
fn filtered_by_kind() {
    let filter = Filter {
        kinds: vec![FindingKind::PeerClosed],
        ..Filter::default()
    };
    assert_golden(
        "grpc_client.peer_closed.txt",
        &text::render(&apply(&load("grpc_client.json"), &filter)),
    );
}

#[test]
fn filtered_by_backend_glob_and_stack() {
    let filter = Filter {
        backend: Some("*:443".to_string()),
        stack_contains: Some("sock_initobj".to_string()),
        ..Filter::default()
    };
    assert_golden(
        "grpc_client.backend_443.txt",
        &text::render(&apply(&load("grpc_client.json"), &filter)),
    );
}

#[test]
fn diff_of_two_reports() {
    let old = load("grpc_client_earlier.json");
    let new = load("grpc_client.json");
    assert_golden(
        "diff_grpc_client.txt",
        &diff::render(&diff::diff(&old, &new)),
    );
}

/// A poller at exit holding 200 connections to one backend (3 of them in CLOSE_WAIT past the
/// grace period, the grpc/grpc#38871 shape) and 150 accepted connections, with 30 connections
/// to the backend closed recently. Sockets and history are made here; the findings are the
/// detectors' own, so the messages are the ones the library writes.
fn big_groups_report() -> fdguard_report::Report {
    use fdguard_report::detect::{Settings, run, summarize};
    use fdguard_report::{ClosedSocket, Frame, Origin, Role, Socket, TcpState, ThreadInfo};

    let frame = |ip: u64, function: &str, file: &str, line: u32| Frame {
        ip: format!("{ip:#x}"),
        function: Some(function.to_string()),
        file: Some(file.to_string()),
        line: Some(line),
        module: Some("/srv/bin/poller".to_string()),
        module_offset: Some(format!("{ip:#x}")),
        ..Frame::default()
    };
    let upstream = vec![
        frame(0x4011a0, "open_upstream", "/src/poller/upstream.c", 41),
        frame(0x401300, "poll_loop", "/src/poller/main.c", 77),
        frame(0x401400, "main", "/src/poller/main.c", 120),
    ];
    let admin = vec![
        frame(0x401600, "admin_accept", "/src/poller/admin.c", 30),
        frame(0x401400, "main", "/src/poller/main.c", 121),
    ];
    let listen = vec![
        frame(0x401500, "start_admin", "/src/poller/admin.c", 12),
        frame(0x401400, "main", "/src/poller/main.c", 110),
    ];
    let thread = Some(ThreadInfo {
        tid: 4100,
        name: "poller".to_string(),
    });
    let base = Socket {
        family: "inet".to_string(),
        sock_type: "stream".to_string(),
        origin: Origin::Created,
        thread,
        ..Socket::default()
    };
    let mut sockets = vec![Socket {
        fd: 3,
        socket_id: 1,
        role: Role::Listener,
        local: Some("127.0.0.1:9000".to_string()),
        tcp_state: Some(TcpState::Listen),
        age_s: 600.0,
        stack_id: Some(1),
        stack: listen.into(),
        ..base.clone()
    }];
    for i in 0..200 {
        let fd = 10 + i;
        let closed = i < 3;
        sockets.push(Socket {
            fd,
            socket_id: fd as u64,
            role: Role::Client,
            local: Some(format!("10.0.0.1:{}", 40000 + i)),
            peer: Some("10.0.0.5:443".to_string()),
            tcp_state: Some(if closed {
                TcpState::CloseWait
            } else {
                TcpState::Established
            }),
            peer_closed_s: closed.then_some(300.0),
            age_s: 500.0 - f64::from(i),
            stack_id: Some(2),
            stack: upstream.clone().into(),
            ..base.clone()
        });
    }
    for i in 0..150 {
        let fd = 300 + i;
        sockets.push(Socket {
            fd,
            socket_id: fd as u64,
            role: Role::Accepted,
            local: Some("127.0.0.1:9000".to_string()),
            peer: Some(format!("127.0.0.1:{}", 51000 + i)),
            tcp_state: Some(TcpState::Established),
            age_s: 5.0,
            stack_id: Some(3),
            stack: admin.clone().into(),
            ..base.clone()
        });
    }
    let mut report = load("many_at_exit.json");
    report.findings = run(
        &sockets,
        &Settings {
            at_exit: true,
            ..Settings::default()
        },
    );
    report.recently_closed = (0..30)
        .map(|i| ClosedSocket {
            fd: 500 + i,
            socket_id: 1000 + i as u64,
            peer: Some("10.0.0.5:443".to_string()),
            created_ago_s: 200.0 - f64::from(i),
            closed_ago_s: 100.0 - f64::from(i),
            stack_id: Some(2),
            stack: upstream.clone().into(),
        })
        .collect();
    report.fd_budget.open_fds = 354;
    report.fd_budget.sockets_open = sockets.len() as u64;
    report.fd_budget.sockets_tracked = sockets.len() as u64;
    report.summary.live_sockets = sockets.len() as u64;
    report.summary.stacks = fdguard_report::stacks::count_stacks(&sockets);
    report.sockets = sockets;
    summarize(&mut report);
    report
}

#[test]
fn big_groups_are_summarised() {
    // Every stack's frames once; at most SOCKET_LINES_SHOWN socket lines per group, FDS_SHOWN
    // fds per list; the counts of what was left out.
    let report = big_groups_report();
    let text = text::render(&report);
    assert_golden("big_groups.txt", &text);
    for function in ["in open_upstream", "in admin_accept", "in start_admin"] {
        assert_eq!(text.matches(function).count(), 1, "{function}:\n{text}");
    }
    assert!(text.contains("(fds 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29 and 180 more)"), "{text}");
    assert!(
        text.contains("… and 190 more from this stack: fd 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, … (the JSON report lists all 190)"),
        "{text}"
    );
    assert!(
        text.contains("… and 25 more (see the JSON report)"),
        "{text}"
    );
    assert!(text.contains("6 leaks on 3 sockets"), "{text}");
    let longest = text.lines().map(|l| l.chars().count()).max().unwrap();
    // The longest is the detector's message naming each dead member with its reason.
    assert!(longest < 450, "a line of {longest} characters");
    assert!(text.lines().count() < 150, "{} lines", text.lines().count());
    // The JSON is not cut.
    let finding = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::DuplicateBackend)
        .unwrap();
    assert_eq!(finding.fds.len(), 200);
    assert!(finding.message.contains(", 209)"), "{}", finding.message);
}

#[test]
fn brief_view_has_no_frames() {
    let report = big_groups_report();
    let text = text::render_with(&report, &text::Options { brief: true });
    assert_golden("big_groups.brief.txt", &text);
    assert!(!text.contains("#0 "), "{text}");
    assert!(
        text.contains("created from stack 2 (open_upstream <- poll_loop <- main):"),
        "{text}"
    );
    // Everything else is as in the full view.
    let full = text::render(&report);
    let without_frames: Vec<&str> = full
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    assert_eq!(without_frames.len(), text.lines().count());
    assert_eq!(
        full.lines().last(),
        text.lines().last(),
        "the same SUMMARY line"
    );
    let brief_grpc = text::render_with(&load("grpc_client.json"), &text::Options { brief: true });
    assert_golden("grpc_client.brief.txt", &brief_grpc);
}
