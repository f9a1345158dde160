//! Issue 11, item 2: every process holding a socket can be asked, whatever the socket's
//! origin, through the request channel (no signal). Real processes under `fdguard run`
//! (`cli/tests/programs/channel.c`):
//!
//! - a program that re-executes itself holding an inherited socket (its only socket was open
//!   before libfdguard.so loaded: origin `preexisting`);
//! - an SCM_RIGHTS receiver whose only sockets arrived through recvmsg() and recvmmsg()
//!   (origin `received`, with the receiving stack), plus a socket made by a raw `socket`
//!   system call and a socketpair made the same way (origin `untracked`: kernel fields, no
//!   stack) and a tracked socket closed by a raw `close` (counted in `summary.closed_unseen`,
//!   no note);
//! - a process sitting at its fd limit (RLIMIT_NOFILE 64, every slot taken): the request is
//!   read and the answer written through fdguard's reserved descriptor.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{assert_status, compile_c, fdguard, library, scratch, stderr};
use fdguard_report::{Origin, Report, Role, TcpState, Trigger};

struct Subject {
    run: Child,
    truth: serde_json::Value,
    port: u16,
    _listener: TcpListener,
    dir: PathBuf,
}

/// `fdguard run -- channel MODE PORT`; waits (bounded) for the program's ready line.
fn start(mode: &str) -> Subject {
    let dir = scratch(&format!("channel-{mode}"));
    let program = compile_c("channel.c", &dir, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut run = fdguard()
        .args(["run", "--lib", library().to_str().unwrap(), "--report"])
        .arg(format!("{}/", dir.join("reports").display()))
        .arg("--")
        .arg(&program)
        .args([mode, &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = run.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{mode}: no ready line within 20 s"));
    let truth: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{mode}: ready line {line:?}: {e}"));
    Subject {
        run,
        truth,
        port,
        _listener: listener,
        dir,
    }
}

impl Subject {
    fn pid(&self) -> String {
        self.truth["pid"].to_string()
    }

    fn fd(&self, key: &str) -> i32 {
        self.truth[key].as_i64().unwrap() as i32
    }

    /// `fdguard report PID --json`: answered through the channel.
    fn ask(&self) -> Report {
        let output = fdguard()
            .args(["report", &self.pid(), "--json", "--timeout", "20"])
            .output()
            .unwrap();
        assert_status(&output, 0);
        let report: Report = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report.trigger, Trigger::Request);
        report
    }

    /// SIGTERM to `fdguard run`, forwarded to the program, which exits 5; run passes it on.
    fn finish(self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.run.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let output = common::wait_bounded(self.run, Duration::from_secs(30));
        assert_status(&output, 5);
        std::fs::remove_dir_all(&self.dir).unwrap();
        stderr(&output)
    }
}

#[test]
fn a_program_that_reexecs_itself_answers_with_its_inherited_socket() {
    let subject = start("reexec");
    let report = subject.ask();
    let fd = subject.fd("fd");
    let socket = report
        .sockets
        .iter()
        .find(|s| s.fd == fd)
        .unwrap_or_else(|| panic!("fd {fd} not listed: {report:#?}"));
    assert_eq!(socket.origin, Origin::Preexisting);
    assert_eq!(
        socket.peer.as_deref(),
        Some(format!("127.0.0.1:{}", subject.port).as_str())
    );
    assert_eq!(socket.tcp_state, Some(TcpState::Established));
    assert!(
        report.cmdline.iter().any(|a| a == "reexec-child"),
        "{:?}",
        report.cmdline
    );
    subject.finish();
}

#[test]
fn an_scm_rights_receiver_raw_syscalls_and_unseen_closes() {
    let subject = start("scm");
    let report = subject.ask();
    let peer = format!("127.0.0.1:{}", subject.port);
    let find = |key: &str| {
        let fd = subject.fd(key);
        report
            .sockets
            .iter()
            .find(|s| s.fd == fd)
            .unwrap_or_else(|| panic!("{key}: fd {fd} not listed: {:#?}", report.sockets))
            .clone()
    };
    for (key, function) in [("recvmsg", "receive_one"), ("recvmmsg", "receive_batch")] {
        let s = find(key);
        assert_eq!(s.origin, Origin::Received, "{key}");
        assert_eq!(s.role, Role::Connected, "{key}");
        assert_eq!(s.peer.as_deref(), Some(peer.as_str()), "{key}");
        assert_eq!(s.tcp_state, Some(TcpState::Established), "{key}");
        let names: Vec<_> = s.stack.iter().filter_map(|f| f.function.clone()).collect();
        assert!(
            names.iter().any(|n| n == function),
            "{key}: the receiving stack names {function}: {names:?}"
        );
    }
    let raw = find("raw");
    assert_eq!(raw.origin, Origin::Untracked);
    assert_eq!(
        (raw.family.as_str(), raw.sock_type.as_str()),
        ("inet", "stream")
    );
    assert_eq!(raw.peer.as_deref(), Some(peer.as_str()));
    assert_eq!(raw.tcp_state, Some(TcpState::Established));
    assert!(raw.stack.is_empty());
    let pair = find("pair");
    assert_eq!(
        (pair.origin, pair.family.as_str()),
        (Origin::Untracked, "unix")
    );
    // The socket closed by a raw close(2): not listed, counted once, no note about it.
    assert!(report.sockets.iter().all(|s| s.fd != subject.fd("gone")));
    assert_eq!(report.summary.closed_unseen, 1, "{:#?}", report.summary);
    assert!(
        report.notes.iter().all(|n| !n.contains("dropped")),
        "{:?}",
        report.notes
    );
    // The tracked ones are counted apart from the untracked ones.
    assert_eq!(
        report.fd_budget.sockets_tracked, 2,
        "{:#?}",
        report.fd_budget
    );
    assert_eq!(report.summary.live_sockets, 4);
    subject.finish();
}

#[test]
fn a_process_at_its_fd_limit_answers() {
    let subject = start("fdlimit");
    assert_eq!(subject.truth["errno"], libc::EMFILE, "{}", subject.truth);
    // Every slot below the limit is taken (fds the test runner passed down may sit above it).
    let open = std::fs::read_dir(format!("/proc/{}/fd", subject.pid()))
        .unwrap()
        .count() as u64;
    assert!(open >= 64, "{open}");
    let report = subject.ask();
    let budget = &report.fd_budget;
    assert_eq!(
        (budget.limit_soft, budget.open_fds),
        (64, open),
        "{budget:?}"
    );
    let fd = subject.fd("fd");
    let socket = report.sockets.iter().find(|s| s.fd == fd).unwrap();
    assert!(
        socket
            .stack
            .iter()
            .any(|f| f.function.as_deref() == Some("connect_at_the_limit")),
        "{:?}",
        socket.stack
    );
    subject.finish();
}
