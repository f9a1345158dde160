//! Issue 10 corpus: redis-server under the shim while redis-benchmark (also under the shim)
//! drives it — 50 pooled connections, then a reconnect per request — and redis-cli shutting
//! the server down, which hangs up on redis-cli a moment before redis-cli exits (the
//! "peer closed a few microseconds before exit" case). With the default thresholds, nothing in
//! any of the three processes is a leak, and FDGUARD_EXITCODE gates none of them.

mod common;
mod corpus_support;

use common::Run;
use corpus_support::{findings_text, leak_level, program, report_on_signal};
use fdguard_report::{FindingKind, Report, Severity, Trigger};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn exit_report_of(out: &common::Outcome) -> &Report {
    let pid = out
        .reports
        .iter()
        .map(|r| r.pid)
        .next()
        .unwrap_or_else(|| panic!("no report: {}", out.stderr));
    out.reports
        .iter()
        .find(|r| r.pid == pid && r.trigger == Trigger::Exit)
        .unwrap_or_else(|| panic!("no exit report: {}", out.stderr))
}

#[test]
fn redis_server_benchmark_and_cli_shutdown_have_no_leaks() {
    let port = free_port();
    let run = Run::new(program("redis-server", "redis-server"))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        // Redis keeps SIGUSR1 for itself; fdguard's report signal moves aside.
        .env("FDGUARD_SIGNAL", "SIGUSR2")
        .env("FDGUARD_WATCH_MS", "100")
        .env("FDGUARD_EXITCODE", "23");
    let dir = run.report_dir().to_path_buf();
    let (mut server, _) = run.spawn();
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "redis-server did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let port_arg = port.to_string();
    let benchmark = |args: &[&str]| {
        let out = Run::new(program("redis-benchmark", "redis-tools"))
            .args(["-h", "127.0.0.1", "-p", &port_arg, "-q"])
            .args(args)
            .env("FDGUARD_EXITCODE", "23")
            .timeout(Duration::from_secs(120))
            .run();
        assert_eq!(out.code(), Some(0), "{}\n{}", out.stdout, out.stderr);
        let exit = exit_report_of(&out).clone();
        assert!(leak_level(&exit).is_empty(), "{}", findings_text(&exit));
        exit
    };
    // 50 connections to one backend: a pool, context at most.
    let pooled = benchmark(&["-n", "20000", "-c", "50", "-t", "set,get"]);
    assert!(
        pooled
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::DuplicateBackend)
            .all(|f| f.severity() == Severity::Info),
        "{}",
        findings_text(&pooled)
    );
    // A reconnect per request: churn at the program's own norm from the start.
    benchmark(&["-n", "3000", "-c", "10", "-k", "0", "-t", "ping"]);

    let report = report_on_signal(server.id(), libc::SIGUSR2, &dir, 1);
    assert!(leak_level(&report).is_empty(), "{}", findings_text(&report));
    assert!(
        report
            .sockets
            .iter()
            .any(|s| s.role == fdguard_report::Role::Listener),
        "the report is redis-server's"
    );

    // redis-cli SHUTDOWN: the server hangs up on redis-cli just before redis-cli exits.
    let cli = Run::new(program("redis-cli", "redis-tools"))
        .args(["-h", "127.0.0.1", "-p", &port_arg, "shutdown", "nosave"])
        .env("FDGUARD_EXITCODE", "23")
        .env("FDGUARD_EXIT_REPORT", "always")
        .run();
    assert_eq!(cli.code(), Some(0), "{}\n{}", cli.stdout, cli.stderr);
    let exit = exit_report_of(&cli);
    assert!(leak_level(exit).is_empty(), "{}", findings_text(exit));
    let text = fdguard_report::text::render(exit);
    assert!(
        !text.contains("(leak)"),
        "the text calls nothing a leak either:\n{text}"
    );

    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "redis-server did not shut down"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let server_exit = common::read_reports(&dir)
        .into_iter()
        .find(|r| r.trigger == Trigger::Exit)
        .expect("redis-server's exit report");
    assert!(
        leak_level(&server_exit).is_empty(),
        "{}",
        findings_text(&server_exit)
    );
}
