//! End to end with the REAL libfdguard.so: `fdguard demo`, `fdguard run` (reports collected,
//! status passed through, SIGTERM forwarded) and `fdguard report PID` (text and JSON, signal
//! turned off, signal blocked). These tests FAIL with instructions when the library has not
//! been built (`cargo build -p fdguard`); they never skip.
//!
//! Markers: the C program connects from `open_marker_connection` to a listener this test opens
//! on a fresh loopback port, so the assertions can find exactly that socket.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_status, compile_c, fdguard, library, scratch, stderr, stdout};
use fdguard_report::{FindingKind, Report, Role};

/// Waits for `path` to appear (the holder publishes its pid atomically).
fn wait_for_file(path: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let output = child.stderr.take().map(|mut e| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                s
            });
            panic!(
                "the program exited ({status}) before writing {}: {output:?}",
                path.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within 10 s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_with_deadline(child: Child) -> std::process::Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // kill(1) rather than libc: the tests stay free of unsafe code.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("process {pid} did not finish within 20 s");
        }
    }
}

struct Holder {
    run: Child,
    pid: i32,
    port: u16,
    _listener: TcpListener,
    dir: PathBuf,
}

/// Starts `fdguard run [extra…] -- holder PORT PIDFILE [mode]` and waits until the holder is
/// connected.
fn start_holder(name: &str, extra: &[&str], mode: Option<&str>) -> Holder {
    let dir = scratch(name);
    let holder = compile_c("holder.c", &dir, &[]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pidfile = dir.join("holder.pid");
    let reports = format!("{}/", dir.join("reports").display());
    let lib = library();
    let mut args: Vec<String> = vec![
        "run".into(),
        "--lib".into(),
        lib.display().to_string(),
        "--report".into(),
        reports,
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".into());
    args.push(holder.display().to_string());
    args.push(port.to_string());
    args.push(pidfile.display().to_string());
    if let Some(mode) = mode {
        args.push(mode.into());
    }
    let mut run = fdguard()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid: i32 = wait_for_file(&pidfile, &mut run).trim().parse().unwrap();
    Holder {
        run,
        pid,
        port,
        _listener: listener,
        dir,
    }
}

fn terminate(run: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn demo_finds_the_backup_connection_in_close_wait() {
    let started = Instant::now();
    let output = fdguard()
        .args(["demo", "--lib", library().to_str().unwrap()])
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the demo must stay under 10 s"
    );
    let text = stdout(&output);
    assert!(text.contains("peer_closed (leak): "), "{text}");
    assert!(
        text.contains("duplicate_backend (warning): 2 connections to"),
        "the duplicate pair of grpc/grpc#38871: {text}"
    );
    assert!(text.contains("CLOSE_WAIT"), "{text}");
    assert!(text.contains("open_backup_connection"), "{text}");
    // The stack reaches the program's main and stops there: Rust's runtime frames below
    // __rust_begin_short_backtrace (lang_start, catch_unwind) are cut, as in Rust's own
    // short backtraces.
    assert!(text.contains(" in fdguard::main "), "{text}");
    assert!(!text.contains("lang_start"), "{text}");
    assert!(!text.contains("__rust_begin_short_backtrace"), "{text}");
    assert!(
        text.contains("LIVE SOCKETS (2)"),
        "the dead backup and its live sibling are still open:\n{text}"
    );
    assert!(text.contains("What you see:"), "{text}");
    assert!(text.contains("grpc/grpc#38871"), "{text}");
}

#[test]
fn report_on_demand_then_run_collects_the_exit_report() {
    let holder = start_holder("e2e-report", &[], None);
    let pid = holder.pid.to_string();

    let json = fdguard().args(["report", &pid, "--json"]).output().unwrap();
    assert_status(&json, 0);
    let report: Report = serde_json::from_slice(&json.stdout)
        .expect("fdguard report --format json prints a JSON report");
    assert_eq!(report.pid, holder.pid);
    let peer = format!("127.0.0.1:{}", holder.port);
    let socket = report
        .sockets
        .iter()
        .find(|s| s.peer.as_deref() == Some(peer.as_str()))
        .unwrap_or_else(|| panic!("no socket to {peer} in {report:#?}"));
    assert_eq!(socket.role, Role::Client);
    assert!(
        socket.stack.iter().any(|f| f
            .function
            .as_deref()
            .is_some_and(|n| n.contains("open_marker_connection"))),
        "the creating stack names open_marker_connection: {:#?}",
        socket.stack
    );

    let text = fdguard().args(["report", &pid]).output().unwrap();
    assert_status(&text, 0);
    let text = stdout(&text);
    assert!(text.starts_with(&format!("=={pid}==fdguard ")), "{text}");
    assert!(text.contains(&peer), "{text}");

    // The answer directories are cleaned up, and no request is left behind.
    let control = PathBuf::from(format!(
        "/tmp/fdguard-{}",
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .unwrap()
    ));
    assert!(!control.join(format!("request.{pid}")).exists());

    // SIGTERM to `fdguard run` reaches the program, which exits 5 normally: the exit report
    // is written, collected and summarised, and run exits with the program's status.
    terminate(&holder.run);
    let output = wait_with_deadline(holder.run);
    assert_status(&output, 5);
    let message = stderr(&output);
    assert!(
        message.contains(&format!("=={pid}==fdguard ")),
        "the last report is printed:\n{message}"
    );
    assert!(message.contains("open_at_exit"), "{message}");
    assert!(
        message.contains(&format!("pid {pid}, report #")) && message.contains("(exit):"),
        "{message}"
    );
    let reports: Vec<_> = std::fs::read_dir(holder.dir.join("reports"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(
        reports.len(),
        1,
        "on-demand reports go to fdguard report, not the report directory: {reports:?}"
    );
    let exit_report: Report =
        serde_json::from_slice(&std::fs::read(reports[0].path()).unwrap()).unwrap();
    assert!(
        exit_report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::OpenAtExit),
        "{exit_report:#?}"
    );
    std::fs::remove_dir_all(&holder.dir).unwrap();
}

#[test]
fn report_refuses_when_the_signal_is_off() {
    let holder = start_holder("e2e-signal-none", &["--signal", "none"], None);
    let output = fdguard()
        .args(["report", &holder.pid.to_string()])
        .output()
        .unwrap();
    assert_status(&output, 1);
    assert!(
        stderr(&output).contains("FDGUARD_SIGNAL=none"),
        "{}",
        stderr(&output)
    );
    terminate(&holder.run);
    assert_status(&wait_with_deadline(holder.run), 5);
    std::fs::remove_dir_all(&holder.dir).unwrap();
}

#[test]
fn report_never_sends_a_signal_the_target_does_not_catch() {
    // The holder reset SIGUSR1 to SIG_DFL after fdguard installed its handler (many daemons
    // reset their signals at start): a SIGUSR1 would kill it (status 138). `fdguard report`
    // reads SigCgt first, sends nothing and says why; the holder lives on.
    let holder = start_holder("e2e-dfl", &[], Some("dfl-usr1"));
    let pid = holder.pid.to_string();
    let output = fdguard().args(["report", &pid]).output().unwrap();
    assert_status(&output, 1);
    let message = stderr(&output);
    assert!(
        message.contains("does not catch SIGUSR1") && message.contains("no signal was sent"),
        "{message}"
    );
    terminate(&holder.run);
    assert_status(&wait_with_deadline(holder.run), 5);
    std::fs::remove_dir_all(&holder.dir).unwrap();
}

#[test]
fn report_never_sends_a_signal_the_library_refused() {
    // 32 is glibc's own (SIGCANCEL, caught by the C library: SigCgt alone would say "caught"),
    // 17 is SIGCHLD: the library takes neither, and `fdguard report` sends neither.
    for signal in ["32", "17"] {
        let holder = start_holder(
            &format!("e2e-refused-{signal}"),
            &["--signal", signal],
            None,
        );
        let output = fdguard()
            .args(["report", &holder.pid.to_string()])
            .output()
            .unwrap();
        assert_status(&output, 1);
        let message = stderr(&output);
        assert!(
            message.contains(&format!("FDGUARD_SIGNAL={signal}")) && message.contains("refuses"),
            "{signal}: {message}"
        );
        terminate(&holder.run);
        assert_status(&wait_with_deadline(holder.run), 5);
        std::fs::remove_dir_all(&holder.dir).unwrap();
    }
}

#[test]
fn report_times_out_when_the_program_blocks_the_signal() {
    let holder = start_holder("e2e-blocked", &[], Some("block-usr1"));
    let pid = holder.pid.to_string();
    let started = Instant::now();
    let output = fdguard()
        .args(["report", &pid, "--timeout", "1"])
        .output()
        .unwrap();
    assert_status(&output, 1);
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = stderr(&output);
    assert!(
        message.contains("did not answer within 1.0s") && message.contains("SIGUSR1"),
        "{message}"
    );
    // The unanswered request was withdrawn, so a later signal cannot write into a removed dir.
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
    assert!(!Path::new(&format!("/tmp/fdguard-{uid}/request.{pid}")).exists());
    terminate(&holder.run);
    assert_status(&wait_with_deadline(holder.run), 5);
    std::fs::remove_dir_all(&holder.dir).unwrap();
}
