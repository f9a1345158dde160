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
use fdguard_report::{FindingKind, Report, Role, Trigger};

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
    assert!(
        text.contains("    #0 "),
        "the full view prints frames:\n{text}"
    );

    // --brief: rendered here from the JSON the process sends, without frames.
    let brief = fdguard()
        .args(["report", &pid, "--brief"])
        .output()
        .unwrap();
    assert_status(&brief, 0);
    let brief = stdout(&brief);
    assert!(brief.starts_with(&format!("=={pid}==fdguard ")), "{brief}");
    assert!(brief.contains(&peer), "{brief}");
    assert!(!brief.contains("    #0 "), "{brief}");
    assert!(brief.contains("open_marker_connection"), "{brief}");
    assert!(brief.contains("\nSUMMARY: fdguard: "), "{brief}");

    // The answer directories are cleaned up, and no request is left behind.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let control = fdguard_report::request::channel_dir(uid);
    assert!(!control.join(format!("request.{pid}")).exists());
    let answers_for_us: Vec<_> = std::fs::read_dir(&control)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("answer."))
        .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
        .filter(|f| {
            f.file_name()
                .to_string_lossy()
                .starts_with(&format!("report.{pid}."))
        })
        .collect();
    assert!(
        answers_for_us.is_empty(),
        "answers left behind: {answers_for_us:?}"
    );

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
fn without_a_usable_signal_the_channel_still_answers_and_signal_mode_says_why_not() {
    // FDGUARD_SIGNAL=none; a host that reset SIGUSR1 to SIG_DFL after fdguard installed its
    // handler (a SIGUSR1 would kill it: status 138); signals the library refuses (32 is glibc's
    // own, caught by the C library, so SigCgt alone would say "caught"; 17 is SIGCHLD); a host
    // that blocks SIGUSR1. The request channel needs no signal: every one of them answers.
    // `--signal` sends nothing it should not, and says why.
    let cases: [(&str, &[&str], Option<&str>, &str); 5] = [
        ("none", &["--signal", "none"], None, "FDGUARD_SIGNAL=none"),
        ("dfl", &[], Some("dfl-usr1"), "does not catch SIGUSR1"),
        ("32", &["--signal", "32"], None, "refuses"),
        ("17", &["--signal", "17"], None, "refuses"),
        ("blocked", &[], Some("block-usr1"), ""),
    ];
    for (name, extra, mode, refusal) in cases {
        let holder = start_holder(&format!("e2e-signal-{name}"), extra, mode);
        let pid = holder.pid.to_string();
        let output = fdguard().args(["report", &pid, "--json"]).output().unwrap();
        assert_status(&output, 0);
        let report: Report = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            (report.pid, report.trigger),
            (holder.pid, Trigger::Request),
            "{name}"
        );
        let output = fdguard()
            .args(["report", &pid, "--signal", "--timeout", "5"])
            .output()
            .unwrap();
        if refusal.is_empty() {
            // Blocked: the signal waits in the mask, the channel answers all the same.
            assert_status(&output, 0);
        } else {
            assert_status(&output, 1);
            let message = stderr(&output);
            assert!(message.contains(refusal), "{name}: {message}");
        }
        // The holder lives on: SIGTERM ends it normally (status 5), never a report signal.
        terminate(&holder.run);
        assert_status(&wait_with_deadline(holder.run), 5);
        std::fs::remove_dir_all(&holder.dir).unwrap();
    }
}

#[test]
fn signal_mode_answers_with_trigger_signal() {
    let holder = start_holder("e2e-signal-mode", &[], None);
    let pid = holder.pid.to_string();
    let output = fdguard()
        .args(["report", &pid, "--json", "--signal=SIGUSR1"])
        .output()
        .unwrap();
    assert_status(&output, 0);
    let report: Report = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report.trigger, Trigger::Signal);
    terminate(&holder.run);
    assert_status(&wait_with_deadline(holder.run), 5);
    std::fs::remove_dir_all(&holder.dir).unwrap();
}

#[test]
fn a_process_without_sockets_is_named_not_waited_for() {
    // `sleep` under the shim holds no socket: no fdguard thread, nothing can answer. The CLI
    // says so at once instead of waiting for --timeout.
    let dir = scratch("e2e-no-socket");
    let lib = library();
    let mut run = fdguard()
        .args(["run", "--lib", lib.to_str().unwrap(), "--report"])
        .arg(format!("{}/", dir.join("reports").display()))
        .args(["--", "sleep", "20"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The sleep process: fdguard run's child, once it has exec'd.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let children =
            std::fs::read_to_string(format!("/proc/{}/task/{}/children", run.id(), run.id()))
                .unwrap_or_default();
        let found = children.split_whitespace().next().and_then(|p| {
            let maps = std::fs::read_to_string(format!("/proc/{p}/maps")).ok()?;
            maps.contains("libfdguard.so").then(|| p.to_string())
        });
        if let Some(pid) = found {
            break pid;
        }
        assert!(Instant::now() < deadline, "sleep did not start");
        std::thread::sleep(Duration::from_millis(20));
    };
    let started = Instant::now();
    let output = fdguard().args(["report", &pid]).output().unwrap();
    assert_status(&output, 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not the 10 s timeout"
    );
    let message = stderr(&output);
    assert!(
        message.contains(&format!("process {pid} holds no socket"))
            && message.contains("fdguard's thread is not running"),
        "{message}"
    );
    run.kill().unwrap();
    run.wait().unwrap();
    let _ = Command::new("kill").args(["-KILL", &pid]).status();
    std::fs::remove_dir_all(&dir).unwrap();
}
