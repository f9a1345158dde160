//! Issue 11, item 4: quiet when clean, LeakSanitizer style. Under plain `LD_PRELOAD` with no
//! `FDGUARD_*` variable at all, a process that held sockets and has nothing worth a word
//! (no finding of severity warning or above) writes nothing at exit — three `curl` runs in a
//! script print nothing from fdguard — while one that leaked still gets its report.
//! `FDGUARD_REPORT=none` writes nothing anywhere; `FDGUARD_REPORT=/dev/null` creates no
//! `/dev/null.<pid>`; a misspelt variable gets one line naming the right one.

mod common;

use common::{Run, compile, host_ok, lib_path};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

/// A command with only LD_PRELOAD set: no FDGUARD_* variable (the library's defaults), and
/// fds above stderr closed on exec.
fn plain(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("FDGUARD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LD_PRELOAD", lib_path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A loopback HTTP server answering `n` requests, each on its own connection.
fn http_server(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
            );
        }
    });
    (port, handle)
}

fn curl() -> &'static str {
    assert!(
        std::path::Path::new("/usr/bin/curl").exists(),
        "curl is missing: run tests/support/install-deps.sh (apt-get install curl)"
    );
    "/usr/bin/curl"
}

#[test]
fn three_clean_curl_runs_print_nothing_from_fdguard() {
    let (port, server) = http_server(4);
    let url = format!("http://127.0.0.1:{port}/");
    for run in 0..3 {
        let out = plain(curl()).args(["-s", &url]).output().unwrap();
        assert!(out.status.success(), "curl {run}: {:?}", out.status);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "curl run {run}: fdguard must say nothing about a clean process"
        );
    }
    // Not vacuous: the library was there and had a report to give, had it been asked for.
    let out = plain(curl())
        .args(["-s", &url])
        .env("FDGUARD_EXIT_REPORT", "sockets")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("SUMMARY: fdguard:"), "{text}");
    server.join().unwrap();
}

#[test]
fn a_leak_still_gets_its_exit_report_and_a_clean_exit_none() {
    let bin = compile("quiet");
    let bin = bin.to_str().unwrap();
    let clean = plain(bin).arg("clean").output().unwrap();
    assert!(clean.status.success());
    assert_eq!(String::from_utf8_lossy(&clean.stderr), "");
    let leak = plain(bin)
        .arg("leak")
        .env("FDGUARD_GRACE_MS", "100")
        .output()
        .unwrap();
    assert!(leak.status.success());
    let text = String::from_utf8_lossy(&leak.stderr);
    assert!(text.contains("(trigger: exit)"), "{text}");
    assert!(text.contains("leave_the_dead_connection_open"), "{text}");
    assert!(text.contains("CLOSE_WAIT"), "{text}");
}

#[test]
fn report_none_writes_nothing_and_dev_null_creates_no_file() {
    let bin = compile("quiet");
    // A leak under FDGUARD_REPORT=none: nothing on stderr, no file; FDGUARD_EXITCODE still
    // sees the finding (a peer_closed leak: the watcher dates the hang-up every 50 ms).
    let out = Run::new(&bin)
        .arg("leak")
        .env("FDGUARD_REPORT", "none")
        .env("FDGUARD_GRACE_MS", "100")
        .env("FDGUARD_WATCH_MS", "50")
        .env("FDGUARD_EXITCODE", "23")
        .run();
    assert_eq!(out.code(), Some(23), "{}", out.stderr);
    assert_eq!(out.stderr, "");
    assert!(out.reports.is_empty());
    assert_eq!(std::fs::read_dir(&out.report_dir).unwrap().count(), 0);

    let out = Run::new(&bin)
        .arg("leak")
        .env("FDGUARD_REPORT", "/dev/null")
        .env("FDGUARD_GRACE_MS", "100")
        .run();
    host_ok(&out, "/dev/null");
    assert_eq!(out.stderr, "");
    let made = std::path::PathBuf::from(format!("/dev/null.{}", out.pid));
    assert!(!made.exists(), "{} was created", made.display());
}

#[test]
fn a_misspelt_variable_gets_one_line_naming_the_real_one() {
    let bin = compile("quiet");
    let out = Run::new(&bin)
        .arg("clean")
        .env("FDGUARD_GRACEMS", "5000")
        .env("FDGUARD_EXIT_REPORT", "auto")
        .run();
    host_ok(&out, "misspelt");
    assert_eq!(
        out.stderr,
        "fdguard: FDGUARD_GRACEMS is not a variable fdguard knows (ignored); did you mean \
         FDGUARD_GRACE_MS?\n"
    );
}
