//! Issue 15, item 4: a report of thousands of sockets reads the kernel in bulk, on helper
//! threads (src/platform/workers.rs), and says exactly what a one-at-a-time reading says.
//! 5,001 sockets, some in CLOSE_WAIT, some made by raw syscalls (untracked), and one closed
//! behind fdguard's back with its number reused by a file: every socket is listed with the
//! local address the program itself read, the right TCP state and its inode; the untracked
//! ones are found; the ghost is not listed but counted; the fd budget matches /proc; and the
//! helper threads are gone when the report returns. Then, with most sockets closed and the
//! fd table as big as before, a second report finds the open fds through /proc/self/fd.

mod common;

use common::{Run, compile, host_ok};
use fdguard_report::{Origin, Report, TcpState};
use std::collections::BTreeMap;

#[test]
fn thousands_of_sockets_are_read_in_bulk_and_reported_exactly() {
    let bin = compile("bulk_report");
    let dir = common::temp_dir("bulk-report");
    let path = dir.join("bulk.json");
    let shrunk_path = dir.join("shrunk.json");
    let out = Run::new(&bin).arg(&path).arg(&shrunk_path).run();
    host_ok(&out, "bulk report");
    let truth = &out.json_lines()[0];
    assert_eq!(truth["report_ok"], true, "fdguard_report_to_path failed");
    let report: Report = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let by_fd: BTreeMap<i32, &fdguard_report::Socket> =
        report.sockets.iter().map(|s| (s.fd, s)).collect();

    // 2,499 live clients + 2,500 server ends less 250 closed + the listener + 3 untracked.
    assert_eq!(report.sockets.len(), 2499 + 2250 + 1 + 3);
    for pair in truth["clients"].as_array().unwrap() {
        let (fd, port) = (pair[0].as_i64().unwrap() as i32, pair[1].as_u64().unwrap());
        let socket = by_fd
            .get(&fd)
            .unwrap_or_else(|| panic!("fd {fd} not listed"));
        assert_eq!(
            socket.local.as_deref(),
            Some(format!("127.0.0.1:{port}").as_str()),
            "fd {fd}"
        );
        assert!(socket.inode.is_some_and(|i| i > 0), "fd {fd}");
        let tcp = socket.tcp.as_ref().unwrap();
        assert_eq!(tcp.recv_queue, Some(0), "fd {fd}");
        assert_eq!(tcp.send_queue, Some(0), "fd {fd}");
        assert!(tcp.keepalive.is_some(), "fd {fd}");
    }
    let close_wait: Vec<i32> = truth["close_wait"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i32)
        .collect();
    for fd in &close_wait {
        assert_eq!(by_fd[fd].tcp_state, Some(TcpState::CloseWait), "fd {fd}");
    }
    let established = report
        .sockets
        .iter()
        .filter(|s| s.tcp_state == Some(TcpState::Established))
        .count();
    // The ghost's own server end got its FIN when the raw close(2) closed the client.
    assert_eq!(established, (2499 - close_wait.len()) + (2250 - 1));
    for fd in truth["untracked"].as_array().unwrap() {
        let fd = fd.as_i64().unwrap() as i32;
        assert_eq!(by_fd[&fd].origin, Origin::Untracked, "fd {fd}");
    }
    let ghost = truth["ghost"].as_i64().unwrap() as i32;
    assert!(
        !by_fd.contains_key(&ghost),
        "the ghost fd {ghost} is a file now"
    );
    assert_eq!(report.summary.closed_unseen, 1);
    // Inodes are the kernel's: distinct for distinct sockets.
    let inodes: std::collections::BTreeSet<u64> =
        report.sockets.iter().filter_map(|s| s.inode).collect();
    assert_eq!(inodes.len(), report.sockets.len());
    // The fd budget is what /proc says (the program counted after the report; nothing opened
    // or closed in between).
    assert_eq!(
        report.fd_budget.open_fds,
        truth["open_fds"].as_u64().unwrap()
    );
    assert_eq!(report.fd_budget.sockets_open, report.sockets.len() as u64);
    // Then all but a few are closed: the fd table keeps its 8,192 numbers for a dozen fds, and
    // the report lists the fds from /proc/self/fd instead of asking every number. The same
    // truth: the kept pair, the first report's client in CLOSE_WAIT, the listener, the four
    // raw-syscall sockets; the fd budget is /proc's.
    let shrunk = &truth["shrunk"];
    assert_eq!(shrunk["report_ok"], true, "second report failed");
    let second: Report =
        serde_json::from_str(&std::fs::read_to_string(&shrunk_path).unwrap()).unwrap();
    let fds: BTreeMap<i32, &fdguard_report::Socket> =
        second.sockets.iter().map(|s| (s.fd, s)).collect();
    assert_eq!(
        second.sockets.len(),
        8,
        "{:?}",
        fds.keys().collect::<Vec<_>>()
    );
    for kept in shrunk["kept"].as_array().unwrap() {
        let fd = kept.as_i64().unwrap() as i32;
        assert_eq!(fds[&fd].tcp_state, Some(TcpState::Established), "fd {fd}");
        assert_eq!(fds[&fd].origin, Origin::Created, "fd {fd}");
    }
    let late = shrunk["late_untracked"].as_i64().unwrap() as i32;
    assert_eq!(fds[&late].origin, Origin::Untracked);
    assert_eq!(
        second
            .sockets
            .iter()
            .filter(|s| s.origin == Origin::Untracked)
            .count(),
        4
    );
    assert_eq!(
        second.fd_budget.open_fds,
        shrunk["open_fds"].as_u64().unwrap()
    );

    // Helper threads exist only while the report runs.
    assert_eq!(
        (
            truth["threads_before"].as_u64(),
            truth["threads_after"].as_u64()
        ),
        (Some(2), Some(2)),
        "the program's thread and the fdguard thread, before and after the report"
    );
}
