//! The C API, end to end (house style H15, H16).
//!
//! - The C and C++ examples are compiled here with `-Wall -Wextra -Werror -pedantic` against the
//!   committed include/fdguard.h and run against a loopback backend, linked with `-lfdguard` and
//!   preloaded; the JSON and text reports they write are checked.
//! - examples/weak_symbols.c is built without fdguard and run with and without LD_PRELOAD.
//! - The built libfdguard.so is loaded with libloading and every function is called, with every
//!   bad-argument case, from one thread and from eight at once.
//!
//! dlopen() is not preloading: the test binary's own socket() calls are bound to libc and are
//! not seen. Tracked sockets are created here by calling the library's exported `socket` hook
//! directly; the examples cover real interposition.
//!
//! Each libloading scenario runs in its own process (this test binary re-executed with a filter
//! and `FDGUARD_CAPI_CHILD`), so the FDGUARD_* configuration is fixed before the library loads,
//! scenarios cannot see each other's sockets, and nothing is left loaded in the harness.
//!
//! The library is `target/<profile>/libfdguard.so` next to this test binary (cargo builds it
//! before the integration tests); `FDGUARD_LIB` overrides the path. A missing library or
//! compiler is a failure, never a skip.

use libloading::Library;
use serde_json::Value;
use std::ffi::{CStr, CString, OsStr, c_char, c_int};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Result codes and formats (tests/header.rs pins them against the header).

const OK: u32 = 7000;
const NULL_ARGUMENT: u32 = 7001;
const BAD_FD: u32 = 7002;
const NOT_TRACKED: u32 = 7003;
const UNKNOWN_CHECKPOINT: u32 = 7004;
const BAD_FORMAT: u32 = 7005;
const BAD_LABEL: u32 = 7006;
const LABEL_TOO_LONG: u32 = 7007;
const BAD_PATH: u32 = 7008;
const PATH_NOT_A_FILE: u32 = 7009;
const NO_SUCH_DIRECTORY: u32 = 7010;
const PERMISSION_DENIED: u32 = 7011;
const WRITE_FAILED: u32 = 7012;
const BUFFER_TOO_SMALL: u32 = 7013;
const NOT_ACTIVE: u32 = 7014;
const REENTRANT: u32 = 7015;
const PANIC: u32 = 7016;
const ALL_CODES: [u32; 17] = [
    OK,
    NULL_ARGUMENT,
    BAD_FD,
    NOT_TRACKED,
    UNKNOWN_CHECKPOINT,
    BAD_FORMAT,
    BAD_LABEL,
    LABEL_TOO_LONG,
    BAD_PATH,
    PATH_NOT_A_FILE,
    NO_SUCH_DIRECTORY,
    PERMISSION_DENIED,
    WRITE_FAILED,
    BUFFER_TOO_SMALL,
    NOT_ACTIVE,
    REENTRANT,
    PANIC,
];

const FORMAT_CONFIGURED: u32 = 0;
const FORMAT_TEXT: u32 = 1;
const FORMAT_JSON: u32 = 2;
const LABEL_MAX: usize = 256;

// ---------------------------------------------------------------------------------------------
// Locating things, running things.

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The source files cargo built `lib` from, per the dep-info file it writes next to it.
fn sources_of(lib: &Path) -> Vec<PathBuf> {
    let dep_info = lib.with_extension("d");
    let Ok(text) = std::fs::read_to_string(&dep_info) else {
        return Vec::new();
    };
    let Some((_, deps)) = text.lines().next().and_then(|l| l.split_once(": ")) else {
        return Vec::new();
    };
    deps.split_whitespace().map(PathBuf::from).collect()
}

/// The libfdguard.so under test.
///
/// `cargo test` does not build a cdylib-only library for integration tests, so a forgotten
/// `cargo build` would silently test an old library: that is a failure here.
fn lib_path() -> PathBuf {
    let path = match std::env::var_os("FDGUARD_LIB") {
        Some(p) => PathBuf::from(p),
        None => {
            // target/<profile>/deps/capi-<hash> → target/<profile>/libfdguard.so
            let exe = std::env::current_exe().expect("current_exe");
            exe.parent()
                .and_then(Path::parent)
                .expect("test binary lives in target/<profile>/deps")
                .join("libfdguard.so")
        }
    };
    assert!(
        path.is_file(),
        "libfdguard.so not found at {} (build it with `cargo build -p fdguard`, or set FDGUARD_LIB)",
        path.display()
    );
    if std::env::var_os("FDGUARD_LIB").is_none() {
        let built = std::fs::metadata(&path).and_then(|m| m.modified()).unwrap();
        for source in sources_of(&path) {
            let changed = std::fs::metadata(&source).and_then(|m| m.modified());
            assert!(
                changed.is_ok_and(|t| t <= built),
                "{} is older than {} (or that file is gone): run `cargo build -p fdguard` before \
                 the tests (cargo test does not build the cdylib)",
                path.display(),
                source.display()
            );
        }
    }
    path.canonicalize().unwrap()
}

fn lib_dir() -> PathBuf {
    lib_path().parent().unwrap().to_path_buf()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("capi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` with a time limit; kills it (only it) when the limit passes.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn show(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A command with no FDGUARD_* variable from the outside world, reports kept off stderr.
fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (key, _) in std::env::vars_os() {
        let key_bytes = key.as_bytes();
        // cargo puts target/<profile> on LD_LIBRARY_PATH for tests: a program must only find
        // libfdguard.so where a test says so.
        if key_bytes.starts_with(b"FDGUARD_")
            || key_bytes == b"LD_PRELOAD"
            || key_bytes == b"LD_LIBRARY_PATH"
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env("FDGUARD_SIGNAL", "none");
    cmd
}

/// Compiles one example against the committed header with the strictest warnings.
fn compile(source: &str, output: &Path, extra: &[&str]) {
    let is_cpp = source.ends_with(".cpp");
    let (compiler, std) = if is_cpp {
        ("g++", "-std=c++17")
    } else {
        ("gcc", "-std=c11")
    };
    let mut cmd = Command::new(compiler);
    cmd.args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join("examples").join(source))
        .arg("-o")
        .arg(output)
        .args(extra);
    let out = run_bounded(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{compiler} failed on examples/{source} (a C/C++ compiler is required for these tests):\n{}",
        show(&out)
    );
}

fn link_args() -> Vec<String> {
    vec![format!("-L{}", lib_dir().display()), "-lfdguard".into()]
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("report {} missing: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("report {} is not JSON: {e}\n{text}", path.display()))
}

fn sockets(report: &Value) -> &Vec<Value> {
    report["sockets"].as_array().expect("sockets[]")
}

fn labels(report: &Value) -> Vec<String> {
    sockets(report)
        .iter()
        .filter_map(|s| s["label"].as_str().map(str::to_string))
        .collect()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------
// The examples.

/// Checks what c_client wrote: the JSON report, the text report, the configured report.
fn check_c_client_reports(dir: &Path, pid: u32) {
    let report = read_json(&dir.join("report.json"));
    assert_eq!(report["trigger"], "api");
    assert_eq!(
        report["pid"].as_u64(),
        Some(pid as u64),
        "the report is the child's"
    );
    let labelled: Vec<&Value> = sockets(&report)
        .iter()
        .filter(|s| s["label"] == "c-client/backend-a")
        .collect();
    assert_eq!(labelled.len(), 1, "one labelled socket: {report:#}");
    assert_eq!(labelled[0]["role"], "client");
    assert!(
        labelled[0]["peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{:#}",
        labelled[0]
    );
    // The untracked listener is not reported; the first connection's two ends are.
    assert!(
        sockets(&report).iter().all(|s| s["role"] != "listener"),
        "{report:#}"
    );
    assert_eq!(sockets(&report).len(), 2, "{report:#}");
    let checkpoints = report["checkpoints"].as_array().expect("checkpoints[]");
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0]["open_since"], 0);

    let text = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    assert!(text.contains("c-client/backend-a"), "{text}");
    assert!(text.contains("SUMMARY"), "{text}");

    // fdguard_report(FDGUARD_FORMAT_CONFIGURED) went to FDGUARD_REPORT, in FDGUARD_FORMAT.
    let configured: Vec<String> = files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with(&format!("configured-{pid}-")))
        .collect();
    assert_eq!(configured.len(), 1, "{:?}", files_in(dir));
    let report = read_json(&dir.join(&configured[0]));
    assert!(labels(&report).contains(&"c-client/backend-a".to_string()));
}

#[test]
fn c_client_linked_with_lfdguard() {
    let dir = scratch("c-linked");
    let exe = dir.join("c_client");
    let link = link_args();
    compile(
        "c_client.c",
        &exe,
        &link.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    let mut cmd = clean_command(&exe);
    cmd.current_dir(&dir)
        .args(["report.json", "report.txt"])
        .env("LD_LIBRARY_PATH", lib_dir())
        .env("FDGUARD_REPORT", dir.join("configured-%p-%n.json"))
        .env("FDGUARD_FORMAT", "json")
        .env("FDGUARD_EXIT_REPORT", "never");
    let child = run_bounded(cmd, Duration::from_secs(60));
    assert!(child.status.success(), "{}", show(&child));
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(stdout.contains("all checks passed"), "{}", show(&child));
    let report = read_json(&dir.join("report.json"));
    check_c_client_reports(&dir, report["pid"].as_u64().unwrap() as u32);

    // Really linked: without the library on the search path it does not even start.
    let mut cmd = clean_command(&exe);
    cmd.current_dir(&dir).args(["a.json", "a.txt"]);
    let unlinked = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(unlinked.status.code(), Some(127), "{}", show(&unlinked));
    assert!(String::from_utf8_lossy(&unlinked.stderr).contains("libfdguard.so"));
}

#[test]
fn c_client_preloaded_instead_of_linked() {
    let dir = scratch("c-preloaded");
    let exe = dir.join("c_client");
    compile("c_client.c", &exe, &["-DFDGUARD_WEAK_SYMBOLS"]);

    let mut cmd = clean_command(&exe);
    cmd.current_dir(&dir)
        .args(["report.json", "report.txt"])
        .env("LD_PRELOAD", lib_path())
        .env("FDGUARD_REPORT", dir.join("configured-%p-%n.json"))
        .env("FDGUARD_FORMAT", "json")
        .env("FDGUARD_EXIT_REPORT", "never");
    let child = run_bounded(cmd, Duration::from_secs(60));
    assert!(child.status.success(), "{}", show(&child));
    let report = read_json(&dir.join("report.json"));
    check_c_client_reports(&dir, report["pid"].as_u64().unwrap() as u32);

    // The same binary without the shim: the weak references are NULL and it says so.
    let mut cmd = clean_command(&exe);
    cmd.current_dir(&dir).args(["b.json", "b.txt"]);
    let alone = run_bounded(cmd, Duration::from_secs(60));
    assert_eq!(alone.status.code(), Some(3), "{}", show(&alone));
    assert!(!dir.join("b.json").exists());
}

#[test]
fn cpp_client_linked_with_lfdguard() {
    let dir = scratch("cpp-linked");
    let exe = dir.join("cpp_client");
    let link = link_args();
    compile(
        "cpp_client.cpp",
        &exe,
        &link.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut cmd = clean_command(&exe);
    cmd.current_dir(&dir)
        .arg("report.json")
        .env("LD_LIBRARY_PATH", lib_dir())
        .env("FDGUARD_REPORT", dir.join("exit-%p.txt"))
        .env("FDGUARD_EXIT_REPORT", "sockets");
    let child = run_bounded(cmd, Duration::from_secs(60));
    assert!(child.status.success(), "{}", show(&child));
    assert!(String::from_utf8_lossy(&child.stdout).contains("all checks passed"));

    let report = read_json(&dir.join("report.json"));
    assert_eq!(
        labels(&report),
        vec!["cpp-client/subchannel-7".to_string()],
        "the closed retry connection's label is gone: {report:#}"
    );
    let checkpoints = report["checkpoints"].as_array().unwrap();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(checkpoints[0]["open_since"], 0);
    // The exit report (FDGUARD_EXIT_REPORT=sockets: the program held sockets) went to the
    // configured file, not to the terminal.
    let pid = report["pid"].as_u64().unwrap();
    let exit_report = std::fs::read_to_string(dir.join(format!("exit-{pid}.txt"))).unwrap();
    assert!(exit_report.contains("trigger: exit"), "{exit_report}");
}

#[test]
fn weak_symbols_program_runs_with_and_without_fdguard() {
    let dir = scratch("weak");
    let exe = dir.join("weak_symbols");
    compile("weak_symbols.c", &exe, &[]);

    // Built without -lfdguard: runs on its own.
    let mut cmd = clean_command(&exe);
    cmd.current_dir(&dir).arg("alone.json");
    let alone = run_bounded(cmd, Duration::from_secs(60));
    assert!(alone.status.success(), "{}", show(&alone));
    assert_eq!(String::from_utf8_lossy(&alone.stdout), "fdguard: absent\n");
    assert!(!dir.join("alone.json").exists());

    // Under the shim: finds it, checkpoints, reports.
    let mut cmd = clean_command(&exe);
    cmd.current_dir(&dir)
        .arg("report.json")
        .env("LD_PRELOAD", lib_path())
        .env("FDGUARD_EXIT_REPORT", "never");
    let shimmed = run_bounded(cmd, Duration::from_secs(60));
    assert!(shimmed.status.success(), "{}", show(&shimmed));
    let stdout = String::from_utf8_lossy(&shimmed.stdout);
    assert!(
        stdout.starts_with(&format!(
            "fdguard: present (version {})\n",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
    let report = read_json(&dir.join("report.json"));
    assert_eq!(labels(&report), vec!["weak-symbols/kept".to_string()]);
    assert_eq!(report["checkpoints"][0]["open_since"], 1);
}

// ---------------------------------------------------------------------------------------------
// libloading: the library as a C program sees it.

type StrFn = unsafe extern "C" fn() -> *const c_char;
type ResultStrFn = unsafe extern "C" fn(u32) -> *const c_char;
type ReportFn = unsafe extern "C" fn(u32) -> u32;
type ReportToPathFn = unsafe extern "C" fn(*const c_char, u32) -> u32;
type ReportToFdFn = unsafe extern "C" fn(c_int, u32) -> u32;
type CheckpointFn = unsafe extern "C" fn(*mut u64) -> u32;
type OpenSinceFn = unsafe extern "C" fn(u64, *mut usize) -> u32;
type OpenSinceFdsFn = unsafe extern "C" fn(u64, *mut c_int, usize, *mut usize) -> u32;
type CountFn = unsafe extern "C" fn(*mut usize) -> u32;
type LabelFn = unsafe extern "C" fn(c_int, *const c_char) -> u32;
type FdFn = unsafe extern "C" fn(c_int) -> u32;
type SocketFn = unsafe extern "C" fn(c_int, c_int, c_int) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type DupFn = unsafe extern "C" fn(c_int) -> c_int;

/// Every C API function, plus the hooks used to create tracked sockets.
struct Api {
    version: StrFn,
    result_str: ResultStrFn,
    report: ReportFn,
    report_to_path: ReportToPathFn,
    report_to_fd: ReportToFdFn,
    checkpoint: CheckpointFn,
    open_since: OpenSinceFn,
    open_since_fds: OpenSinceFdsFn,
    live_sockets: CountFn,
    label: LabelFn,
    untrack: FdFn,
    hook_socket: SocketFn,
    hook_close: CloseFn,
    hook_dup: DupFn,
}

/// Loads the library once per process and never unloads it (its threads and TLS outlive any
/// dlclose).
fn api() -> &'static Api {
    static LIB: OnceLock<Library> = OnceLock::new();
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let path = lib_path();
        let lib = LIB.get_or_init(|| {
            // SAFETY: loading libfdguard.so runs its constructor, which is designed to run in
            // any process.
            unsafe { Library::new(&path) }
                .unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()))
        });
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the type is the one declared in include/fdguard.h (or libc's, for the
                // hooks); the library stays loaded for the whole process.
                *unsafe { lib.get($name) }.unwrap_or_else(|e| {
                    panic!("{} not exported: {e}", String::from_utf8_lossy($name))
                })
            };
        }
        Api {
            version: sym!(b"fdguard_version"),
            result_str: sym!(b"fdguard_result_str"),
            report: sym!(b"fdguard_report"),
            report_to_path: sym!(b"fdguard_report_to_path"),
            report_to_fd: sym!(b"fdguard_report_to_fd"),
            checkpoint: sym!(b"fdguard_checkpoint"),
            open_since: sym!(b"fdguard_open_since"),
            open_since_fds: sym!(b"fdguard_open_since_fds"),
            live_sockets: sym!(b"fdguard_live_sockets"),
            label: sym!(b"fdguard_label"),
            untrack: sym!(b"fdguard_untrack"),
            hook_socket: sym!(b"socket"),
            hook_close: sym!(b"close"),
            hook_dup: sym!(b"dup"),
        }
    })
}

// Small safe wrappers. Each returns the result code and, on success, the output value; every
// output parameter starts as a sentinel so "not written on failure" is checked everywhere.
const SENTINEL: usize = 0xdead_beef;

impl Api {
    fn version(&self) -> String {
        // SAFETY: no arguments; returns a static C string.
        let p = unsafe { (self.version)() };
        assert!(!p.is_null());
        // SAFETY: non-NULL static NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
    }

    fn result_str(&self, code: u32) -> String {
        // SAFETY: takes any number; returns a static C string.
        let p = unsafe { (self.result_str)(code) };
        assert!(!p.is_null());
        // SAFETY: non-NULL static NUL-terminated string.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string()
    }

    fn report(&self, format: u32) -> u32 {
        // SAFETY: plain integer argument.
        unsafe { (self.report)(format) }
    }

    fn report_to_path(&self, path: &Path, format: u32) -> u32 {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        self.report_to_raw_path(c.as_ptr(), format)
    }

    fn report_to_raw_path(&self, path: *const c_char, format: u32) -> u32 {
        // SAFETY: `path` is NULL or a NUL-terminated string (callers' promise).
        unsafe { (self.report_to_path)(path, format) }
    }

    fn report_to_fd(&self, fd: c_int, format: u32) -> u32 {
        // SAFETY: plain integer arguments.
        unsafe { (self.report_to_fd)(fd, format) }
    }

    fn checkpoint(&self) -> (u32, u64) {
        let mut id = SENTINEL as u64;
        // SAFETY: valid out-pointer.
        let rc = unsafe { (self.checkpoint)(&mut id) };
        (rc, id)
    }

    fn open_since(&self, id: u64) -> (u32, usize) {
        let mut n = SENTINEL;
        // SAFETY: valid out-pointer.
        let rc = unsafe { (self.open_since)(id, &mut n) };
        (rc, n)
    }

    fn open_since_fds(&self, id: u64, capacity: usize) -> (u32, usize, Vec<c_int>) {
        let mut fds = vec![-7; capacity];
        let mut n = SENTINEL;
        // SAFETY: `fds` holds `capacity` ints; valid out-pointer.
        let rc = unsafe { (self.open_since_fds)(id, fds.as_mut_ptr(), capacity, &mut n) };
        (rc, n, fds)
    }

    fn live(&self) -> (u32, usize) {
        let mut n = SENTINEL;
        // SAFETY: valid out-pointer.
        let rc = unsafe { (self.live_sockets)(&mut n) };
        (rc, n)
    }

    fn live_ok(&self) -> usize {
        let (rc, n) = self.live();
        assert_eq!(rc, OK, "{}", self.result_str(rc));
        n
    }

    fn label(&self, fd: c_int, label: Option<&[u8]>) -> u32 {
        let c = label.map(|l| CString::new(l).unwrap());
        // SAFETY: NULL or a NUL-terminated string.
        unsafe { (self.label)(fd, c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())) }
    }

    fn untrack(&self, fd: c_int) -> u32 {
        // SAFETY: plain integer argument.
        unsafe { (self.untrack)(fd) }
    }

    /// A TCP socket created through the library's `socket` hook, hence tracked.
    fn tracked_socket(&self) -> c_int {
        // SAFETY: socket(2)'s contract, integer arguments.
        let fd = unsafe { (self.hook_socket)(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        fd
    }

    fn close(&self, fd: c_int) {
        // SAFETY: closes an fd this test owns.
        assert_eq!(unsafe { (self.hook_close)(fd) }, 0);
    }

    fn dup(&self, fd: c_int) -> c_int {
        // SAFETY: dup(2) on an fd this test owns.
        let new = unsafe { (self.hook_dup)(fd) };
        assert!(new >= 0);
        new
    }
}

/// Runs `body` in a fresh process (this test binary, filtered to `name`) with fdguard's
/// configuration `env`; the parent checks that the child ran exactly that test and passed.
fn isolated(name: &str, env: &[(&str, &OsStr)], body: impl FnOnce()) {
    const CHILD: &str = "FDGUARD_CAPI_CHILD";
    if std::env::var(CHILD).as_deref() == Ok(name) {
        body();
        return;
    }
    let mut cmd = clean_command(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .env("FDGUARD_EXIT_REPORT", "never")
        .env("RUST_BACKTRACE", "1");
    if let Some(lib) = std::env::var_os("FDGUARD_LIB") {
        cmd.env("FDGUARD_LIB", lib);
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = run_bounded(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "child process for `{name}` failed:\n{}",
        show(&out)
    );
}

#[test]
fn every_declared_function_is_exported() {
    isolated("every_declared_function_is_exported", &[], || {
        let header = std::fs::read_to_string(root().join("include/fdguard.h")).unwrap();
        let lib = lib_path();
        // SAFETY: see api().
        let lib = unsafe { Library::new(&lib) }.unwrap();
        let mut names: Vec<&str> = header
            .lines()
            .filter(|l| !l.trim_start().starts_with(['*', '/']))
            .filter_map(|l| {
                let before = &l[..l.find('(')?];
                let start = before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
                Some(&before[start + 1..]).filter(|name| name.starts_with("fdguard_"))
            })
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 11, "{names:?}");
        for name in names {
            // SAFETY: only the address is looked up, nothing is called.
            let sym = unsafe { lib.get::<*const ()>(name.as_bytes()) };
            assert!(sym.is_ok(), "{name} is declared but not exported");
        }
        std::mem::forget(lib);
    });
}

#[test]
fn version_and_result_strings() {
    isolated("version_and_result_strings", &[], || {
        let api = api();
        assert_eq!(api.version(), env!("CARGO_PKG_VERSION"));
        let mut seen = Vec::new();
        for code in ALL_CODES {
            let text = api.result_str(code);
            assert!(
                !text.is_empty() && !text.starts_with("unknown"),
                "{code}: {text}"
            );
            assert!(!seen.contains(&text), "{code}: duplicate message {text}");
            seen.push(text);
        }
        assert_eq!(api.result_str(OK), "success");
        for unknown in [0, 1, 6999, 7017, 8000, u32::MAX] {
            assert_eq!(api.result_str(unknown), "unknown fdguard result code");
        }
        // The pointers are static: the same address every time.
        // SAFETY: integer argument.
        let a = unsafe { (api.result_str)(BAD_FD) };
        // SAFETY: integer argument.
        let b = unsafe { (api.result_str)(BAD_FD) };
        assert_eq!(a, b);
    });
}

#[test]
fn bad_arguments_return_codes_and_leave_outputs_alone() {
    isolated(
        "bad_arguments_return_codes_and_leave_outputs_alone",
        &[],
        || {
            let api = api();
            // NULL output pointers.
            // SAFETY: NULL is an accepted argument; it must be rejected, not written.
            unsafe {
                assert_eq!((api.checkpoint)(std::ptr::null_mut()), NULL_ARGUMENT);
                assert_eq!((api.open_since)(1, std::ptr::null_mut()), NULL_ARGUMENT);
                assert_eq!((api.live_sockets)(std::ptr::null_mut()), NULL_ARGUMENT);
                let mut n = SENTINEL;
                let mut fds = [0 as c_int; 2];
                assert_eq!(
                    (api.open_since_fds)(1, fds.as_mut_ptr(), 2, std::ptr::null_mut()),
                    NULL_ARGUMENT
                );
                assert_eq!(
                    (api.open_since_fds)(1, std::ptr::null_mut(), 2, &mut n),
                    NULL_ARGUMENT
                );
                assert_eq!(n, SENTINEL);
            }
            assert_eq!(
                api.report_to_raw_path(std::ptr::null(), FORMAT_JSON),
                NULL_ARGUMENT
            );

            // Unknown checkpoints.
            let (rc, id) = api.checkpoint();
            assert_eq!(rc, OK);
            assert_ne!(id, 0);
            for unknown in [0, id + 1, id + 1000, u64::MAX] {
                assert_eq!(api.open_since(unknown), (UNKNOWN_CHECKPOINT, SENTINEL));
                let (rc, n, fds) = api.open_since_fds(unknown, 4);
                assert_eq!((rc, n), (UNKNOWN_CHECKPOINT, SENTINEL));
                assert!(fds.iter().all(|&fd| fd == -7), "not written on failure");
            }
            assert_eq!(api.open_since(id), (OK, 0));
            let (rc, n, _) = api.open_since_fds(id, 0);
            assert_eq!((rc, n), (OK, 0));
            // SAFETY: NULL with capacity 0 is documented as allowed.
            let rc = unsafe { (api.open_since_fds)(id, std::ptr::null_mut(), 0, &mut 0usize) };
            assert_eq!(rc, OK);

            // Bad and unknown fds.
            let (rc, live) = api.live();
            assert_eq!(rc, OK);
            for fd in [-1, c_int::MIN, 999_999, c_int::MAX, 0, 1, 2] {
                let want = if fd < 0 { BAD_FD } else { NOT_TRACKED };
                assert_eq!(api.label(fd, Some(b"x")), want, "label fd {fd}");
                assert_eq!(api.label(fd, None), want, "label NULL fd {fd}");
                assert_eq!(api.untrack(fd), want, "untrack fd {fd}");
            }
            // A socket the test binary creates with its own libc binding is not seen by a
            // dlopen'ed fdguard: not tracked.
            let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            use std::os::fd::AsRawFd;
            assert_eq!(api.label(plain.as_raw_fd(), Some(b"x")), NOT_TRACKED);
            assert_eq!(api.untrack(plain.as_raw_fd()), NOT_TRACKED);
            assert_eq!(api.live(), (OK, live));

            // Labels: too long, not UTF-8, control characters (checked before the fd lookup).
            let fd = api.tracked_socket();
            assert_eq!(
                api.label(fd, Some(&vec![b'x'; LABEL_MAX + 1])),
                LABEL_TOO_LONG
            );
            assert_eq!(api.label(fd, Some(&vec![b'x'; 100_000])), LABEL_TOO_LONG);
            assert_eq!(api.label(fd, Some(&vec![b'x'; LABEL_MAX])), OK);
            assert_eq!(api.label(fd, Some(b"\xff\xfe")), BAD_LABEL);
            assert_eq!(api.label(fd, Some("caf\u{e9}".as_bytes())), OK);
            assert_eq!(api.label(fd, Some(b"a\nb")), BAD_LABEL);
            assert_eq!(api.label(fd, Some(b"a\tb")), BAD_LABEL);
            assert_eq!(api.label(fd, Some(b"\x1b[31m")), BAD_LABEL);
            assert_eq!(api.label(-1, Some(&vec![b'x'; LABEL_MAX + 1])), BAD_FD);
            api.close(fd);
            assert_eq!(api.label(fd, Some(b"closed")), NOT_TRACKED);
            assert_eq!(api.untrack(fd), NOT_TRACKED);

            // Formats.
            let dir = scratch("bad-format");
            for format in [3, 7, 42, u32::MAX] {
                assert_eq!(api.report(format), BAD_FORMAT);
                assert_eq!(api.report_to_path(&dir.join("r.json"), format), BAD_FORMAT);
                assert_eq!(api.report_to_fd(1, format), BAD_FORMAT);
            }
            assert!(files_in(&dir).is_empty());

            // Report fds.
            for fd in [-1, c_int::MIN, 999_999] {
                assert_eq!(api.report_to_fd(fd, FORMAT_TEXT), BAD_FD, "fd {fd}");
            }
            let read_only = std::fs::File::open("/dev/null").unwrap();
            assert_eq!(api.report_to_fd(read_only.as_raw_fd(), FORMAT_TEXT), BAD_FD);
            // A pipe nobody reads (the test harness ignores SIGPIPE, so the write gets EPIPE).
            let mut ends = [0 as c_int; 2];
            // SAFETY: valid out-array of two ints.
            assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
            // SAFETY: closing the read end this test just created.
            unsafe { libc::close(ends[0]) };
            assert_eq!(api.report_to_fd(ends[1], FORMAT_JSON), WRITE_FAILED);
            // SAFETY: closing the write end this test created.
            unsafe { libc::close(ends[1]) };
        },
    );
}

/// fdguard_report_to_path with good, hostile and malformed paths.
fn report_paths_body() {
    let api = api();
    let dir = scratch("paths");

    // Success: a regular file, mode 0600, valid JSON; an existing regular file is replaced.
    let good = dir.join("good.json");
    std::fs::write(&good, "old").unwrap();
    assert_eq!(api.report_to_path(&good, FORMAT_JSON), OK);
    let report = read_json(&good);
    assert_eq!(report["trigger"], "api");
    let mode = std::fs::metadata(&good).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(api.report_to_path(&dir.join("good.txt"), FORMAT_TEXT), OK);
    let text = std::fs::read_to_string(dir.join("good.txt")).unwrap();
    assert!(text.contains("SUMMARY"), "{text}");
    // A relative path is relative to the working directory.
    let cwd = std::env::current_dir().unwrap();
    std::env::set_current_dir(&dir).unwrap();
    let rc = api.report_to_path(Path::new("relative.json"), FORMAT_CONFIGURED);
    std::env::set_current_dir(cwd).unwrap();
    assert_eq!(rc, OK);
    assert!(dir.join("relative.json").is_file());

    // A symlink at the path: refused, and nothing is written through it.
    let victim = dir.join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let link = dir.join("link.json");
    symlink(&victim, &link).unwrap();
    assert_eq!(api.report_to_path(&link, FORMAT_JSON), PATH_NOT_A_FILE);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    let dangling = dir.join("dangling.json");
    let nowhere = dir.join("created-through-a-link");
    symlink(&nowhere, &dangling).unwrap();
    assert_eq!(api.report_to_path(&dangling, FORMAT_JSON), PATH_NOT_A_FILE);
    assert!(!nowhere.exists());
    // A directory or a device at the path.
    assert_eq!(api.report_to_path(&dir, FORMAT_JSON), PATH_NOT_A_FILE);
    assert_eq!(
        api.report_to_path(Path::new("/dev/null"), FORMAT_JSON),
        PATH_NOT_A_FILE
    );

    // Missing directories.
    assert_eq!(
        api.report_to_path(&dir.join("missing/r.json"), FORMAT_JSON),
        NO_SUCH_DIRECTORY
    );
    assert_eq!(
        api.report_to_path(&dir.join("good.json/r.json"), FORMAT_JSON),
        NO_SUCH_DIRECTORY
    );
    assert_eq!(
        api.report_to_path(Path::new("/nonexistent-fdguard/r.json"), FORMAT_TEXT),
        NO_SUCH_DIRECTORY
    );

    // An unwritable directory. Root is not stopped by file modes, so as root the check runs
    // with the thread's filesystem uid switched to nobody (setfsuid is per thread, and the C
    // API works on the calling thread).
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root_user = unsafe { libc::geteuid() } == 0;
    if root_user {
        // SAFETY: changes only this thread's filesystem uid; restored below.
        unsafe { libc::setfsuid(65534) };
    }
    let rc = api.report_to_path(&locked.join("r.json"), FORMAT_JSON);
    if root_user {
        // SAFETY: as above.
        unsafe { libc::setfsuid(0) };
    }
    assert_eq!(rc, PERMISSION_DENIED, "{}", api.result_str(rc));
    assert!(files_in(&locked).is_empty());
    // A place that refuses files whatever the permissions say: /proc (root may "write" there).
    let rc = api.report_to_path(Path::new("/proc/fdguard-capi-test.json"), FORMAT_JSON);
    assert!(
        rc == PERMISSION_DENIED || rc == WRITE_FAILED,
        "{rc}: {}",
        api.result_str(rc)
    );

    // Malformed paths.
    for bad in [
        &b""[..],
        b"/",
        b"/tmp/",
        b".",
        b"..",
        b"/tmp/.",
        b"/tmp/..",
        b"/tmp/\xff\xfe.json",
    ] {
        let c = CString::new(bad).unwrap();
        assert_eq!(
            api.report_to_raw_path(c.as_ptr(), FORMAT_JSON),
            BAD_PATH,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let long = format!("{}/{}", dir.display(), "x".repeat(5000));
    let c = CString::new(long).unwrap();
    assert_eq!(api.report_to_raw_path(c.as_ptr(), FORMAT_JSON), BAD_PATH);
    let name_too_long = dir.join("y".repeat(300));
    assert_eq!(api.report_to_path(&name_too_long, FORMAT_JSON), BAD_PATH);

    // Nothing but the successful reports and the test's own files was left behind (no
    // temporary files from failed attempts).
    assert_eq!(
        files_in(&dir),
        vec![
            "dangling.json",
            "good.json",
            "good.txt",
            "link.json",
            "locked",
            "relative.json",
            "victim"
        ]
    );
}

#[test]
fn report_paths_are_checked_and_links_never_followed() {
    isolated(
        "report_paths_are_checked_and_links_never_followed",
        &[],
        report_paths_body,
    );
}

#[test]
fn tracked_sockets_checkpoints_labels_untrack() {
    isolated("tracked_sockets_checkpoints_labels_untrack", &[], || {
        let api = api();
        let base = api.live_ok();
        let (rc, cp) = api.checkpoint();
        assert_eq!(rc, OK);

        let a = api.tracked_socket();
        let b = api.tracked_socket();
        assert_eq!(api.live_ok(), base + 2);
        assert_eq!(api.open_since(cp), (OK, 2));
        let (rc, n, fds) = api.open_since_fds(cp, 8);
        assert_eq!((rc, n), (OK, 2));
        assert_eq!(&fds[..2], &[a.min(b), a.max(b)]);

        // Too small: nothing written, nothing counted.
        let (rc, n, fds) = api.open_since_fds(cp, 1);
        assert_eq!((rc, n, fds), (BUFFER_TOO_SMALL, SENTINEL, vec![-7]));
        // SAFETY: NULL with capacity 0 is documented as allowed.
        let rc = unsafe { (api.open_since_fds)(cp, std::ptr::null_mut(), 0, &mut 0usize) };
        assert_eq!(rc, BUFFER_TOO_SMALL);

        // A second checkpoint sees only what comes after it.
        let (rc, cp2) = api.checkpoint();
        assert_eq!(rc, OK);
        assert!(cp2 > cp);
        assert_eq!(api.open_since(cp2), (OK, 0));

        // A dup is the same socket: counted once, listed by its lowest fd, shares the label.
        let d = api.dup(a);
        assert_eq!(api.live_ok(), base + 3);
        assert_eq!(api.open_since(cp), (OK, 2));
        assert_eq!(api.open_since(cp2), (OK, 0));
        assert_eq!(api.label(a, Some(b"rust/subchannel-a")), OK);
        assert_eq!(api.label(b, Some(b"temporary")), OK);
        assert_eq!(api.label(b, None), OK);
        assert_eq!(api.label(b, Some(b"rust/b")), OK);
        assert_eq!(api.label(b, Some(b"")), OK);

        // Untrack: gone from counts and reports, idempotent, not labelable.
        assert_eq!(api.untrack(b), OK);
        assert_eq!(api.untrack(b), OK);
        assert_eq!(api.label(b, Some(b"x")), NOT_TRACKED);
        assert_eq!(api.live_ok(), base + 2);
        assert_eq!(api.open_since(cp), (OK, 1));

        let dir = scratch("tracked");
        let path = dir.join("r.json");
        assert_eq!(api.report_to_path(&path, FORMAT_JSON), OK);
        let report = read_json(&path);
        let fds_in_report: Vec<i64> = sockets(&report)
            .iter()
            .filter_map(|s| s["fd"].as_i64())
            .collect();
        assert!(fds_in_report.contains(&(a as i64)));
        assert!(fds_in_report.contains(&(d as i64)));
        assert!(
            !fds_in_report.contains(&(b as i64)),
            "untracked: {report:#}"
        );
        for s in sockets(&report) {
            if s["fd"] == a || s["fd"] == d {
                assert_eq!(s["label"], "rust/subchannel-a", "{s:#}");
            }
        }
        let checkpoints = report["checkpoints"].as_array().unwrap();
        assert_eq!(checkpoints.len(), 2);
        assert_eq!(checkpoints[0]["id"].as_u64(), Some(cp));
        assert_eq!(checkpoints[0]["open_since"], 1);

        // To an fd, both formats.
        let file = std::fs::File::create(dir.join("r.txt")).unwrap();
        use std::os::fd::AsRawFd;
        assert_eq!(api.report_to_fd(file.as_raw_fd(), FORMAT_TEXT), OK);
        assert_eq!(api.report_to_fd(file.as_raw_fd(), FORMAT_JSON), OK);
        drop(file);
        let text = std::fs::read_to_string(dir.join("r.txt")).unwrap();
        assert!(text.contains("rust/subchannel-a") && text.contains("\"schema_version\""));

        // The fd number of a closed untracked socket is tracked again when reused.
        api.close(b);
        let again = api.tracked_socket();
        assert_eq!(api.label(again, Some(b"again")), OK);
        assert_eq!(api.open_since(cp), (OK, 2));
        api.close(again);

        // Closing: the dup keeps the socket open until it goes too.
        api.close(a);
        assert_eq!(api.open_since(cp), (OK, 1));
        let (rc, n, fds) = api.open_since_fds(cp, 4);
        assert_eq!((rc, n, fds[0]), (OK, 1, d));
        api.close(d);
        assert_eq!(api.open_since(cp), (OK, 0));
        assert_eq!(api.live_ok(), base);
    });
}

#[test]
fn configured_report_goes_to_fdguard_report() {
    let dir = scratch("configured");
    isolated(
        "configured_report_goes_to_fdguard_report",
        &[
            ("FDGUARD_REPORT", dir.join("cfg-%p-%n.out").as_os_str()),
            ("FDGUARD_FORMAT", OsStr::new("json")),
        ],
        || {
            let api = api();
            let fd = api.tracked_socket();
            assert_eq!(api.label(fd, Some(b"configured")), OK);
            assert_eq!(api.report(FORMAT_CONFIGURED), OK);
            assert_eq!(api.report(FORMAT_TEXT), OK);
            let dir = Path::new(&std::env::var_os("FDGUARD_REPORT").unwrap())
                .parent()
                .unwrap()
                .to_path_buf();
            let files = files_in(&dir);
            let pid = std::process::id();
            assert_eq!(
                files,
                vec![format!("cfg-{pid}-1.out"), format!("cfg-{pid}-2.out")]
            );
            let report = read_json(&dir.join(&files[0]));
            assert_eq!(labels(&report), vec!["configured".to_string()]);
            let text = std::fs::read_to_string(dir.join(&files[1])).unwrap();
            assert!(text.contains("label \"configured\""), "{text}");
            api.close(fd);
        },
    );
}

#[test]
fn configured_report_that_cannot_be_written_says_so() {
    let dir = scratch("configured-missing");
    isolated(
        "configured_report_that_cannot_be_written_says_so",
        &[("FDGUARD_REPORT", dir.join("missing/cfg-%p.txt").as_os_str())],
        || {
            let api = api();
            // The report went to the per-user runtime directory instead (as for a report on
            // signal); the caller is told it did not go where configured.
            assert_eq!(api.report(FORMAT_TEXT), WRITE_FAILED);
            // SAFETY: geteuid has no preconditions.
            let runtime = fdguard_report::request::channel_dir(unsafe { libc::geteuid() });
            let written = runtime.join(format!("cfg-{}.txt", std::process::id()));
            let text = std::fs::read_to_string(&written).unwrap();
            assert!(text.contains("SUMMARY: fdguard:"), "{text}");
            std::fs::remove_file(written).unwrap();
        },
    );
}

#[test]
fn disabled_fdguard_answers_not_active() {
    let dir = scratch("disabled");
    isolated(
        "disabled_fdguard_answers_not_active",
        &[
            ("FDGUARD_DISABLE", OsStr::new("1")),
            ("FDGUARD_REPORT", dir.join("never-%p").as_os_str()),
        ],
        || {
            let api = api();
            assert_eq!(api.version(), env!("CARGO_PKG_VERSION"));
            assert_eq!(api.result_str(NOT_ACTIVE), api.result_str(NOT_ACTIVE));
            assert_eq!(api.checkpoint(), (NOT_ACTIVE, SENTINEL as u64));
            assert_eq!(api.open_since(1), (NOT_ACTIVE, SENTINEL));
            assert_eq!(api.open_since_fds(1, 2).0, NOT_ACTIVE);
            assert_eq!(api.live(), (NOT_ACTIVE, SENTINEL));
            assert_eq!(api.untrack(3), NOT_ACTIVE);
            assert_eq!(api.label(3, Some(b"x")), NOT_ACTIVE);
            assert_eq!(api.report(FORMAT_TEXT), NOT_ACTIVE);
            assert_eq!(api.report_to_fd(1, FORMAT_TEXT), NOT_ACTIVE);
            let out =
                Path::new(&std::env::var_os("FDGUARD_REPORT").unwrap()).with_extension("json");
            assert_eq!(api.report_to_path(&out, FORMAT_JSON), NOT_ACTIVE);
            assert!(!out.exists());
            // Argument errors still come first.
            // SAFETY: NULL is an accepted argument.
            let rc = unsafe { (api.checkpoint)(std::ptr::null_mut()) };
            assert_eq!(rc, NULL_ARGUMENT);
            assert_eq!(api.label(-1, Some(b"x")), BAD_FD);
            assert_eq!(api.label(3, Some(b"a\nb")), BAD_LABEL);
            assert_eq!(api.report(9), BAD_FORMAT);
            assert_eq!(
                api.report_to_raw_path(std::ptr::null(), FORMAT_JSON),
                NULL_ARGUMENT
            );
            // The hooks pass through: a socket made through them is simply not tracked.
            let fd = api.tracked_socket();
            api.close(fd);
        },
    );
    assert!(files_in(&dir).is_empty());
}

#[test]
fn eight_threads_at_once() {
    isolated("eight_threads_at_once", &[], || {
        let api = api();
        let base = api.live_ok();
        let dir = scratch("threads");
        let null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        use std::os::fd::AsRawFd;
        let null_fd = null.as_raw_fd();
        std::thread::scope(|scope| {
            for t in 0..8 {
                let dir = &dir;
                scope.spawn(move || {
                    let (rc, cp) = api.checkpoint();
                    assert_eq!(rc, OK);
                    for i in 0..40 {
                        let fd = api.tracked_socket();
                        let label = format!("thread-{t}/conn-{i}");
                        assert_eq!(api.label(fd, Some(label.as_bytes())), OK);
                        let (rc, n) = api.open_since(cp);
                        assert_eq!(rc, OK);
                        assert!(n >= 1);
                        let (rc, _, fds) = api.open_since_fds(cp, 64);
                        assert!(rc == OK || rc == BUFFER_TOO_SMALL, "{rc}");
                        if rc == OK {
                            assert!(fds.contains(&fd));
                        }
                        assert_eq!(api.live().0, OK);
                        assert_eq!(api.checkpoint().0, OK);
                        if i % 2 == 0 {
                            assert_eq!(api.untrack(fd), OK);
                        }
                        // Bad arguments interleaved with good ones.
                        assert_eq!(api.label(-1, Some(b"x")), BAD_FD);
                        assert_eq!(api.open_since(u64::MAX).0, UNKNOWN_CHECKPOINT);
                        api.close(fd);
                        // Another thread may already have a new socket with this number.
                        let rc = api.label(fd, Some(b"gone"));
                        assert!(rc == NOT_TRACKED || rc == OK, "{rc}");
                    }
                    assert_eq!(api.report_to_fd(null_fd, FORMAT_JSON), OK);
                    let path = dir.join(format!("thread-{t}.json"));
                    assert_eq!(api.report_to_path(&path, FORMAT_JSON), OK);
                    read_json(&path);
                });
            }
        });
        assert_eq!(api.live_ok(), base);
    });
}

/// Set by the signal handler below: the last result it got.
static HANDLER_RESULT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static HANDLER_REENTRANT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn call_fdguard_from_handler(_: c_int) {
    let api = api();
    let mut n = 0usize;
    // SAFETY: valid out-pointer. (The API is not async-signal-safe in general; this test only
    // checks that a handler interrupting fdguard is turned away instead of re-entering it.)
    let rc = unsafe { (api.live_sockets)(&mut n) };
    HANDLER_RESULT.store(rc, std::sync::atomic::Ordering::SeqCst);
    if rc == REENTRANT {
        HANDLER_REENTRANT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn signal_handler_interrupting_fdguard_gets_reentrant() {
    isolated(
        "signal_handler_interrupting_fdguard_gets_reentrant",
        &[],
        || {
            use std::sync::atomic::{AtomicBool, Ordering};
            let api = api();
            let fd = api.tracked_socket();
            // SAFETY: installs a handler for SIGUSR2 in this child process only.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = call_fdguard_from_handler as *const () as usize;
                action.sa_flags = libc::SA_RESTART;
                assert_eq!(
                    libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
                    0
                );
            }
            let null = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: pthread_self has no preconditions.
            let target = unsafe { libc::pthread_self() };
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    while !done.load(Ordering::SeqCst) {
                        // SAFETY: `target` is the scope's owner thread, alive until `done`.
                        unsafe { libc::pthread_kill(target, libc::SIGUSR2) };
                        std::thread::sleep(Duration::from_micros(300));
                    }
                });
                let deadline = Instant::now() + Duration::from_secs(20);
                while HANDLER_REENTRANT.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    assert_eq!(api.report_to_fd(null.as_raw_fd(), FORMAT_JSON), OK);
                }
                done.store(true, Ordering::SeqCst);
            });
            assert!(
                HANDLER_REENTRANT.load(Ordering::SeqCst) > 0,
                "the handler never interrupted a report (last result {})",
                HANDLER_RESULT.load(Ordering::SeqCst)
            );
            // And fdguard still works afterwards.
            assert_eq!(api.label(fd, Some(b"after-signals")), OK);
            api.close(fd);
        },
    );
}
