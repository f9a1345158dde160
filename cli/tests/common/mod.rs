//! Helpers for the CLI's integration tests: running the built `fdguard`, the report fixtures,
//! golden files (`FDGUARD_BLESS=1` rewrites them), compiling C test programs, and locating the
//! real `libfdguard.so` for end-to-end tests (which FAIL, never skip, when it is missing).

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `Command` for the built `fdguard` binary, with colour and inherited fdguard settings off.
pub fn fdguard() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fdguard"));
    command
        .env("NO_COLOR", "1")
        .env_remove("FDGUARD_LIB")
        .env_remove("LD_PRELOAD");
    command
}

/// Runs `fdguard ARGS…` to completion.
pub fn run(args: &[&str]) -> Output {
    fdguard().args(args).output().expect("cannot run fdguard")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit status, showing both streams when it differs.
pub fn assert_status(output: &Output, expected: i32) {
    assert_eq!(
        output.status.code(),
        Some(expected),
        "unexpected exit status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// The report fixtures shared with the report crate: `report/tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../report/tests/fixtures")
        .join(name)
}

/// Compares `actual` with `cli/tests/expected/<name>` line by line, or rewrites it when
/// `FDGUARD_BLESS=1`.
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/expected")
        .join(name);
    if std::env::var_os("FDGUARD_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read expected output {}: {e}\n(create it with FDGUARD_BLESS=1)",
            path.display()
        )
    });
    let (e_lines, a_lines): (Vec<&str>, Vec<&str>) =
        (expected.lines().collect(), actual.lines().collect());
    let differences: Vec<String> = (0..e_lines.len().max(a_lines.len()))
        .filter(|&i| e_lines.get(i) != a_lines.get(i))
        .map(|i| {
            format!(
                "line {}:\n  expected: {}\n  actual:   {}",
                i + 1,
                e_lines
                    .get(i)
                    .map_or("<missing>".into(), |l| format!("{l:?}")),
                a_lines
                    .get(i)
                    .map_or("<missing>".into(), |l| format!("{l:?}"))
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{} differs in {} line(s); if intended, rerun with FDGUARD_BLESS=1 and review `git diff`:\n{}",
        path.display(),
        differences.len(),
        differences
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "fdguard-cli-test-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `cli/tests/programs/<source>` with the system C compiler into `dir`.
pub fn compile_c(source: &str, dir: &Path, extra: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(source);
    let out = dir.join(source.trim_end_matches(".c"));
    let result = Command::new("cc")
        .args(["-g", "-O0", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `cc` ({e}); install gcc"));
    assert!(
        result.status.success(),
        "cc {extra:?} {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// The real libfdguard.so: `$FDGUARD_LIB`, else beside the built `fdguard` (the cargo target
/// dir). Panics with instructions when it is missing: end-to-end tests must not pass vacuously.
pub fn library() -> PathBuf {
    let path = match std::env::var_os("FDGUARD_LIB").filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_BIN_EXE_fdguard")).with_file_name("libfdguard.so"),
    };
    assert!(
        path.is_file(),
        "libfdguard.so not found at {}: this end-to-end test needs the real library. Build it \
         first with `cargo build -p fdguard` (the test command does), or set FDGUARD_LIB=PATH.",
        path.display()
    );
    path
}

/// Programs that `inspect`, `watch` and `html` tests look at, and the loopback servers they talk
/// to (issue 13).
pub mod subjects;

/// Waits for `child` to finish (collecting its output), at most `limit`; kills it and fails
/// the test when it does not.
pub fn wait_bounded(child: std::process::Child, limit: std::time::Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(limit) {
        Ok(output) => output.expect("wait for the child"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("process {pid} did not finish within {limit:?}");
        }
    }
}

/// Real servers for the report-channel tests (issue 11).
pub mod servers;
