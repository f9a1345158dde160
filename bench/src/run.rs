//! Finding the pieces (libfdguard.so, gcc, valgrind, the grpcio venv), compiling the C
//! workloads, and running one workload process in one mode, bounded in time.

use serde_json::Value;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// How a workload process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// No shim.
    Without,
    /// LD_PRELOAD=libfdguard.so, default settings (stacks on).
    Fdguard,
    /// LD_PRELOAD=libfdguard.so with FDGUARD_STACK_DEPTH=0: everything but the stack capture.
    NoStacks,
    /// LD_PRELOAD=libfdguard.so with FDGUARD_PYTHON_DEPTH=0: everything but the Python frames
    /// (workload 6 only).
    NoPython,
    /// valgrind --tool=none --track-fds=yes.
    Valgrind,
    /// LD_PRELOAD=the `--baseline-lib` library (e.g. an older build), default settings.
    Baseline,
}

impl Mode {
    /// Short name used in the table and the JSON file.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Without => "without",
            Mode::Fdguard => "fdguard",
            Mode::NoStacks => "fdguard_depth0",
            Mode::NoPython => "fdguard_python0",
            Mode::Valgrind => "valgrind",
            Mode::Baseline => "baseline",
        }
    }
}

/// Everything a run needs to know about this machine.
pub struct Context {
    pub repo: PathBuf,
    pub lib: PathBuf,
    /// A second library to compare with (`--baseline-lib`).
    pub baseline: Option<PathBuf>,
    /// valgrind's path and version, when installed and wanted.
    pub valgrind: Option<(PathBuf, String)>,
    /// The grpcio venv's python and grpcio's version.
    pub python: Option<(PathBuf, String)>,
    /// Compiled workloads.
    pub programs: PathBuf,
    /// Reports, logs and other files of this run.
    pub scratch: PathBuf,
}

/// What a finished workload process left.
pub struct Outcome {
    /// Its one JSON line.
    pub json: Value,
    /// When it was reaped (wall clock, to compare with a time the process printed).
    pub reaped: SystemTime,
}

fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn target_dir(repo: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("target"))
}

fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().map(|l| l.trim().to_string())
}

impl Context {
    /// Finds libfdguard.so (building it if missing and not overridden), valgrind and the
    /// grpcio venv, and compiles the C workloads. `Err` is a message for the user.
    pub fn prepare(
        want_valgrind: bool,
        baseline: Option<PathBuf>,
        stacks: usize,
    ) -> Result<Context, String> {
        if let Some(b) = baseline.as_ref().filter(|b| !b.is_file()) {
            return Err(format!("--baseline-lib {} does not exist", b.display()));
        }
        let repo = repo_root();
        let target = target_dir(&repo);
        let lib = match std::env::var_os("FDGUARD_LIB") {
            Some(p) => PathBuf::from(p),
            None => target.join("release/libfdguard.so"),
        };
        if !lib.is_file() {
            if std::env::var_os("FDGUARD_LIB").is_some() {
                return Err(format!("FDGUARD_LIB={} does not exist", lib.display()));
            }
            eprintln!(
                "fdguard-bench: {} is missing; building it (cargo build --release -p fdguard)",
                lib.display()
            );
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let ok = Command::new(cargo)
                .args(["build", "--release", "-p", "fdguard"])
                .current_dir(&repo)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok || !lib.is_file() {
                return Err(format!(
                    "{} is missing: run `cargo build --release -p fdguard` first",
                    lib.display()
                ));
            }
        }
        let valgrind = if want_valgrind {
            first_line(Command::new("valgrind").arg("--version"))
                .map(|v| (PathBuf::from("valgrind"), v))
        } else {
            None
        };
        let python = [
            target.join("deps/venv-grpc-latest/bin/python"),
            repo.join("tests/support/venv-grpc-latest/bin/python"),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| {
            let version =
                first_line(Command::new(&p).args(["-c", "import grpc; print(grpc.__version__)"]))?;
            Some((p, version))
        });
        let programs = target.join("bench-programs");
        let scratch = target
            .join("bench-tmp")
            .join(format!("run-{}", std::process::id()));
        std::fs::create_dir_all(&programs).map_err(|e| format!("{}: {e}", programs.display()))?;
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let ctx = Context {
            repo,
            lib,
            baseline,
            valgrind,
            python,
            programs,
            scratch,
        };
        for name in ["churn", "lifecycle", "live"] {
            let source = ctx.repo.join("bench/programs").join(format!("{name}.c"));
            ctx.compile(name, &source)?;
        }
        let generated = ctx.programs.join("stacks.c");
        std::fs::write(&generated, stacks_source(stacks))
            .map_err(|e| format!("{}: {e}", generated.display()))?;
        ctx.compile("stacks", &generated)?;
        Ok(ctx)
    }

    fn compile(&self, name: &str, source: &Path) -> Result<(), String> {
        let out = self.programs.join(name);
        let status = Command::new("gcc")
            .args([
                "-std=gnu11",
                "-O2",
                "-g",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pthread",
            ])
            .arg("-I")
            .arg(self.repo.join("bench/programs"))
            .arg("-o")
            .arg(&out)
            .arg(source)
            .arg("-ldl")
            .status()
            .map_err(|e| format!("cannot run gcc: {e} (install gcc)"))?;
        if !status.success() {
            return Err(format!("compiling {} failed", source.display()));
        }
        Ok(())
    }

    /// A compiled workload.
    pub fn program(&self, name: &str) -> PathBuf {
        self.programs.join(name)
    }

    /// The command for `argv` in `mode`: environment cleaned of any inherited shim or
    /// FDGUARD_* setting, then the mode's own.
    pub fn command(&self, mode: Mode, argv: &[OsString], env: &[(&str, OsString)]) -> Command {
        let mut cmd = match (mode, &self.valgrind) {
            (Mode::Valgrind, Some((valgrind, _))) => {
                let mut c = Command::new(valgrind);
                c.args(["--tool=none", "--track-fds=yes"])
                    .arg(log_file_arg(&self.scratch));
                c.args(argv);
                c
            }
            _ => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k == "LD_PRELOAD" || k.starts_with("FDGUARD_") {
                cmd.env_remove(&key);
            }
        }
        let lib = match (mode, &self.baseline) {
            (Mode::Fdguard | Mode::NoStacks | Mode::NoPython, _) => Some(&self.lib),
            (Mode::Baseline, Some(baseline)) => Some(baseline),
            _ => None,
        };
        if let Some(lib) = lib {
            cmd.env("LD_PRELOAD", lib)
                .env("FDGUARD_EXPECT_SHIM", "1")
                .env("FDGUARD_EXIT_REPORT", "never")
                .env("FDGUARD_REPORT", self.scratch.join("report-%p-%n"));
            if mode == Mode::NoStacks {
                cmd.env("FDGUARD_STACK_DEPTH", "0");
            }
            if mode == Mode::NoPython {
                cmd.env("FDGUARD_PYTHON_DEPTH", "0");
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `argv` in `mode` to completion (killed after `timeout`) and parses the JSON
    /// line it printed.
    pub fn run(
        &self,
        mode: Mode,
        argv: &[OsString],
        env: &[(&str, OsString)],
        timeout: Duration,
    ) -> Result<Outcome, String> {
        let mut cmd = self.command(mode, argv, env);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", argv[0].to_string_lossy()))?;
        let (status, stdout, stderr, reaped) = finish(child, timeout)?;
        let what = describe(mode, argv);
        if !status {
            return Err(format!("{what} failed; stderr:\n{}", tail(&stderr)));
        }
        let json = last_json(&stdout)
            .ok_or_else(|| format!("{what} printed no JSON line; stderr:\n{}", tail(&stderr)))?;
        Ok(Outcome { json, reaped })
    }
}

fn log_file_arg(scratch: &Path) -> OsString {
    let mut arg = OsString::from("--log-file=");
    arg.push(scratch.join("valgrind-%p.log"));
    arg
}

fn describe(mode: Mode, argv: &[OsString]) -> String {
    let args: Vec<String> = argv
        .iter()
        .map(|a| {
            Path::new(a)
                .file_name()
                .unwrap_or(OsStr::new(""))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    format!("`{}` ({})", args.join(" "), mode.name())
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn last_json(stdout: &str) -> Option<Value> {
    stdout
        .lines()
        .rev()
        .filter(|l| l.trim_start().starts_with('{'))
        .find_map(|l| serde_json::from_str(l).ok())
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Waits for `child` (polling every millisecond, so `reaped` is within a millisecond of its
/// exit), killing it after `timeout`. Returns (success, stdout, stderr, reaped).
fn finish(
    mut child: Child,
    timeout: Duration,
) -> Result<(bool, String, String, SystemTime), String> {
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {timeout:?} (killed)"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => return Err(format!("wait: {e}")),
        }
    };
    let reaped = SystemTime::now();
    let stdout = out
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    let stderr = err
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default();
    Ok((status.success(), stdout, stderr, reaped))
}

/// A long-running helper process (the gRPC server): started, asked for its first JSON line,
/// stopped by closing its stdin.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    pub hello: Value,
}

impl Server {
    /// Starts `cmd` and waits (bounded) for its first stdout line, a JSON object.
    pub fn start(mut cmd: Command, timeout: Duration) -> Result<Server, String> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start server: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let err = child.stderr.take().map(drain);
        let line = match rx.recv_timeout(timeout) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("server did not start within {timeout:?}"));
            }
        };
        match serde_json::from_str(line.trim()) {
            Ok(hello) => Ok(Server {
                child,
                stdin,
                hello,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err
                    .map(|h| h.join().unwrap_or_default())
                    .unwrap_or_default();
                Err(format!("server said {line:?}; stderr:\n{}", tail(&stderr)))
            }
        }
    }

    /// Closes stdin (the server's signal to stop) and waits, killing it after `timeout`.
    pub fn stop(mut self, timeout: Duration) {
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// C source for the symbolisation workload: `count` distinct socket-creating functions
/// (`openers`), then bench/programs/stacks_main.h, which creates the sockets and times the
/// reports.
pub fn stacks_source(count: usize) -> String {
    let count = count.max(1);
    let mut s = format!(
        "/* Generated by fdguard-bench (bench/src/run.rs): {count} socket-creating functions,\n \
         * one per distinct stack. */\n#define STACKS {count}\n#include \"bench.h\"\n\n\
         static volatile int sink;\n\n"
    );
    for i in 0..count {
        s.push_str(&format!(
            "__attribute__((noinline)) static int open_{i}(void) {{\n  \
             int fd = socket(AF_INET, SOCK_DGRAM, 0);\n  sink = fd; /* not a tail call */\n  \
             return fd;\n}}\n"
        ));
    }
    s.push_str("\nstatic int (*const openers[STACKS])(void) = {\n");
    for i in 0..count {
        s.push_str(&format!("  open_{i},\n"));
    }
    s.push_str("};\n\n#include \"stacks_main.h\"\n");
    s
}
