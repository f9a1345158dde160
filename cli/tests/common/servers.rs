//! Real servers for the report-channel tests (issue 11): where their binaries are, free
//! loopback ports, and bounded waits on the conditions the tests need (a pid file, a
//! process's children, fdguard's thread in a process). Debian's packages, installed by
//! tests/support/install-deps.sh; a missing one FAILS the test with the package to install.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The program at `path`, or a failure naming the Debian package that provides it.
pub fn program(path: &str, package: &str) -> PathBuf {
    let p = PathBuf::from(path);
    assert!(
        p.is_file(),
        "{path} is missing: run tests/support/install-deps.sh (apt-get install {package})"
    );
    p
}

/// A loopback port that was free a moment ago (for servers that need a fixed port).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `what` every 20 ms until it returns `Some`, at most `limit`; fails with `label`.
pub fn wait_for<T>(label: &str, limit: Duration, mut what: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = what() {
            return v;
        }
        assert!(Instant::now() < deadline, "{label}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid in a pid file, once it is there.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The children of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    out.sort_unstable();
    out
}

/// True when a thread of `pid` is named `fdguard` (libfdguard.so's own thread).
pub fn has_fdguard_thread(pid: i32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "fdguard")
        })
}

/// The effective uid of `pid`.
pub fn euid(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `/proc/PID/cmdline` with NULs as spaces.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Sends `signal` (a `kill -s` name) to `pid`.
pub fn signal(pid: i32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status();
}

/// Every native frame of every socket's stack in `report` names its module by the mapped
/// object: the main program's frames by `program`, the others by a path that exists; never
/// by the process title (which nginx, PostgreSQL and redis write over argv[0]).
pub fn assert_modules_are_real(report: &fdguard_report::Report, title_marker: &str) {
    let mut main_frames = 0;
    for socket in &report.sockets {
        for frame in socket.stack.iter().filter(|f| !f.is_python()) {
            let module = frame.module.as_deref().unwrap_or("");
            assert!(
                !module.contains(title_marker),
                "pid {}: a frame's module is the process title: {module:?}",
                report.pid
            );
            assert!(
                module.starts_with('/') && Path::new(module).exists(),
                "pid {}: module {module:?} is not a mapped file",
                report.pid
            );
            if module == report.program {
                main_frames += 1;
            }
        }
    }
    assert!(
        main_frames > 0,
        "pid {}: no frame of the main program {} in {:#?}",
        report.pid,
        report.program,
        report.sockets
    );
}
