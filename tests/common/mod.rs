//! Shared helpers for fdguard's integration tests: find the built libfdguard.so, compile test
//! programs, run them (with or without the shim) with a private report directory, bounded in
//! time, and parse the JSON reports they leave behind.
//!
//! Nothing here skips: a missing library, compiler or interpreter is a test failure with a
//! message saying what to install (the README's test command installs everything).
#![allow(dead_code)]

pub mod prom;

use fdguard_report::Report;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The libfdguard.so under test: `FDGUARD_LIB`, else the debug build. Fails when missing.
pub fn lib_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FDGUARD_LIB") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "FDGUARD_LIB={} does not exist", p.display());
        return p;
    }
    let p = target_dir().join("debug/libfdguard.so");
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build` first (the README's test command does)",
        p.display()
    );
    p
}

/// A venv's interpreter, as tests/support/install-deps.sh makes them under `target/deps`
/// (never the pyenv `python3` wrapper, which spawns helpers). Fails when missing.
pub fn venv_python(venv: &str) -> PathBuf {
    let p = target_dir().join("deps").join(venv).join("bin/python");
    assert!(
        p.exists(),
        "{} missing: run tests/support/install-deps.sh (the README's test command does)",
        p.display()
    );
    p
}

/// A fresh private directory under target/test-tmp (kept on failure for inspection).
pub fn temp_dir(label: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = target_dir().join("test-tmp").join(format!(
        "{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `tests/programs/<name>.c` (or `.cc`) with warnings as errors; returns the binary.
pub fn compile(name: &str) -> PathBuf {
    compile_with(name, &[])
}

/// Like [`compile`] with extra compiler arguments (appended after the source).
///
/// Compiles once per test process, into a directory of that process: a binary is never
/// replaced while another process runs it (that would make its /proc/self/exe "(deleted)"
/// and its symbols wrong).
pub fn compile_with(name: &str, extra: &[&str]) -> PathBuf {
    static DONE: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let key = format!("{name} {}", extra.join(" "));
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, path)) = done.iter().find(|(k, _)| *k == key) {
        return path.clone();
    }
    let path = compile_uncached(name, extra);
    done.push((key, path.clone()));
    path
}

fn compile_uncached(name: &str, extra: &[&str]) -> PathBuf {
    let dir = target_dir()
        .join("test-programs")
        .join(format!("p{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = repo().join(format!("tests/programs/{name}.c"));
    let cc = repo().join(format!("tests/programs/{name}.cc"));
    let (src, compiler, std_flag) = if c.exists() {
        (c, "gcc", "-std=gnu11")
    } else {
        (cc, "g++", "-std=c++17")
    };
    assert!(src.exists(), "no test program {name}");
    let tag = if extra.is_empty() {
        String::new()
    } else {
        format!("-{:x}", hash(&extra.join(" ")))
    };
    let out = dir.join(format!("{name}{tag}"));
    let tmp = dir.join(format!(
        ".{name}{tag}.{}.{}",
        std::process::id(),
        hash(&format!("{:?}", std::thread::current().id()))
    ));
    let status = Command::new(compiler)
        .args([
            std_flag,
            "-g",
            "-O1",
            "-fno-omit-frame-pointer",
            "-fno-inline",
            "-fno-optimize-sibling-calls",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
            "-I",
        ])
        .arg(repo().join("include"))
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .args(extra)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e} (install gcc/g++)"));
    assert!(status.success(), "compiling {} failed", src.display());
    std::fs::rename(&tmp, &out).unwrap();
    out
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct Outcome {
    /// The process's pid.
    pub pid: u32,
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// JSON reports found in the report directory, ordered by (pid, seq).
    pub reports: Vec<Report>,
    pub report_dir: PathBuf,
    pub timed_out: bool,
}

impl Outcome {
    /// The reports written by `pid`.
    pub fn reports_of(&self, pid: i32) -> Vec<&Report> {
        self.reports.iter().filter(|r| r.pid == pid).collect()
    }

    /// The last report with trigger `exit`.
    pub fn exit_report(&self) -> &Report {
        self.reports
            .iter()
            .rev()
            .find(|r| r.trigger == fdguard_report::Trigger::Exit)
            .unwrap_or_else(|| panic!("no exit report; stderr:\n{}", self.stderr))
    }

    /// Lines of stdout parsed as JSON (test programs print their ground truth that way).
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A command to run under test.
pub struct Run {
    cmd: Command,
    shim: bool,
    timeout: Duration,
    report_dir: PathBuf,
    stdin: Option<Vec<u8>>,
}

impl Run {
    /// Runs `program` with the shim preloaded, JSON reports into a private directory.
    pub fn new(program: impl AsRef<std::ffi::OsStr>) -> Run {
        let report_dir = temp_dir("reports");
        let mut cmd = Command::new(program);
        cmd.env("FDGUARD_FORMAT", "json")
            .env("FDGUARD_REPORT", report_dir.join("r-%p-%n.json"))
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The program starts with exactly stdin, stdout and stderr, whatever the test runner
        // inherited (a CI runner and an interactive shell leave different fds open): every
        // report's fd budget, and every "exactly these sockets" check, is then the same on any
        // machine. The fds are marked close-on-exec rather than closed so that std's own
        // exec-error pipe keeps working until the exec.
        // SAFETY: the closure runs between fork and exec and only makes one raw system call,
        // which is async-signal-safe; it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                );
                Ok(())
            });
        }
        for (k, _) in std::env::vars() {
            if k.starts_with("FDGUARD_") && k != "FDGUARD_LIB" {
                cmd.env_remove(k);
            }
        }
        // Every process that held a socket writes its exit report, findings or not, as under
        // `fdguard run`: the tests check what reports say. Tests of the library's own default
        // (quiet when clean, tests/quiet_when_clean.rs) set FDGUARD_EXIT_REPORT=auto.
        cmd.env("FDGUARD_FORMAT", "json")
            .env("FDGUARD_REPORT", report_dir.join("r-%p-%n.json"))
            .env("FDGUARD_EXIT_REPORT", "sockets");
        Run {
            cmd,
            shim: true,
            timeout: Duration::from_secs(60),
            report_dir,
            stdin: None,
        }
    }

    pub fn arg(mut self, a: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(mut self, a: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(a);
        self
    }

    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Run {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Run {
        self.cmd.env_remove(k);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Run {
        self.cmd.current_dir(dir);
        self
    }

    pub fn without_shim(mut self) -> Run {
        self.shim = false;
        self
    }

    pub fn timeout(mut self, t: Duration) -> Run {
        self.timeout = t;
        self
    }

    pub fn stdin(mut self, bytes: &[u8]) -> Run {
        self.stdin = Some(bytes.to_vec());
        self.cmd.stdin(Stdio::piped());
        self
    }

    pub fn report_dir(&self) -> &Path {
        &self.report_dir
    }

    /// Starts the process (caller manages it); the shim is preloaded unless disabled.
    pub fn spawn(mut self) -> (std::process::Child, PathBuf) {
        if self.shim {
            self.cmd.env("LD_PRELOAD", lib_path());
        }
        let child = self.cmd.spawn().expect("spawn test program");
        (child, self.report_dir)
    }

    /// Runs to completion (killed after the timeout) and collects the reports.
    pub fn run(mut self) -> Outcome {
        if self.shim {
            self.cmd.env("LD_PRELOAD", lib_path());
        }
        let mut child = self.cmd.spawn().expect("spawn test program");
        let pid = child.id();
        if let Some(bytes) = self.stdin.take() {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin.write_all(&bytes);
        }
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let out_t = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
        let err_t = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
        let start = Instant::now();
        let mut timed_out = false;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > self.timeout {
                timed_out = true;
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out_t.join().unwrap();
        let stderr = err_t.join().unwrap();
        let reports = read_reports(&self.report_dir);
        Outcome {
            pid,
            status,
            stdout,
            stderr,
            reports,
            report_dir: self.report_dir,
            timed_out,
        }
    }
}

/// The per-user runtime directory of this (test) user: where the library writes a report it
/// could not write where configured, and looks for `fdguard report` requests.
pub fn runtime_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    fdguard_report::request::channel_dir(unsafe { libc::geteuid() })
}

/// Removes (and returns) the files in the runtime directory whose name starts with `prefix`.
pub fn take_runtime_files(prefix: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(runtime_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let _ = std::fs::remove_file(e.path());
            (e.file_name().to_string_lossy().into_owned(), text)
        })
        .collect();
    found.sort();
    found
}

/// Parses every `*.json` report in `dir`, ordered by (pid, seq).
pub fn read_reports(dir: &Path) -> Vec<Report> {
    let mut reports: Vec<Report> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| {
                    let text = std::fs::read_to_string(e.path()).unwrap();
                    serde_json::from_str(&text)
                        .unwrap_or_else(|err| panic!("{}: {err}\n{text}", e.path().display()))
                })
                .collect()
        })
        .unwrap_or_default();
    reports.sort_by_key(|r| (r.pid, r.seq));
    reports
}

/// Waits (bounded) until `dir` holds at least `n` reports; returns them.
pub fn wait_for_reports(dir: &Path, n: usize, timeout: Duration) -> Vec<Report> {
    let start = Instant::now();
    loop {
        let r = read_reports(dir);
        if r.len() >= n || start.elapsed() > timeout {
            return r;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Function names in a socket's stack.
pub fn functions(socket: &fdguard_report::Socket) -> Vec<String> {
    socket
        .stack
        .iter()
        .filter_map(|f| f.function.clone())
        .collect()
}

/// The fds a report lists.
pub fn listed(report: &Report) -> std::collections::BTreeSet<i32> {
    report.sockets.iter().map(|s| s.fd).collect()
}

/// A JSON array of fds from a test program's ground truth, in its order.
pub fn fd_list(v: &serde_json::Value) -> Vec<i32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array of fds: {v}"))
        .iter()
        .map(|x| x.as_i64().unwrap() as i32)
        .collect()
}

/// The same as a set.
pub fn fd_set(v: &serde_json::Value) -> std::collections::BTreeSet<i32> {
    fd_list(v).into_iter().collect()
}

/// The host survived fdguard: no timeout, exit status 0, and its own `{"ok":true…` line
/// first on stdout.
pub fn host_ok(out: &Outcome, what: &str) {
    assert!(
        !out.timed_out && out.status.success(),
        "{what}: the host must keep running and exit normally: {:?}\n{}",
        out.status,
        out.stderr
    );
    assert!(
        out.stdout.starts_with("{\"ok\":true"),
        "{what}: {}",
        out.stdout
    );
}

/// Sends `sig` to `pid`.
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a pid we spawned.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Python helpers (issue 16): interpreters, venvs, Python frames, marker lines.
pub mod python;
