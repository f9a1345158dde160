//! Subjects for the `inspect`, `watch` and `html` tests: never-preloaded programs (C and Go)
//! started and reaped by a guard, the loopback servers they connect to, and bounded waits.
//! Every wait has a deadline; every process and thread started here ends when its guard drops.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fdguard_report::Report;

/// Generous: other engineers' builds share this 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `probe` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process, killed and reaped when dropped (so a failing test leaves nothing behind).
pub struct Subject {
    /// The process.
    pub child: Child,
    /// Its pid.
    pub pid: i32,
}

impl Subject {
    /// Starts `program ARGS…` with stdin and stdout closed and stderr piped.
    pub fn start(program: &Path, args: &[String]) -> Subject {
        let child = Command::new(program)
            .args(args)
            .env_remove("LD_PRELOAD")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let pid = child.id() as i32;
        Subject { child, pid }
    }

    /// Waits for the program to publish `path` (pid files are renamed into place) and returns
    /// its content; panics with the program's stderr if it exits first.
    pub fn wait_for_file(&mut self, path: &Path) -> String {
        let child = &mut self.child;
        wait_until(&format!("{}", path.display()), DEADLINE, || {
            if let Ok(text) = std::fs::read_to_string(path) {
                return Some(text);
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!(
                    "the program exited ({status}) before writing {}: {err}",
                    path.display()
                );
            }
            None
        })
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback server on a fresh port that accepts connections from a thread and either hangs
/// up on each at once (their clients go to CLOSE_WAIT) or keeps them open. Stops (and closes
/// what it kept) when dropped; bounded to 2 minutes and 10,000 connections.
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Hangs up on every connection (FIN): the client's end goes to CLOSE_WAIT.
    pub fn hanging_up() -> Server {
        Server::start(false)
    }

    /// Keeps every connection open, idle: a healthy backend.
    pub fn keeping() -> Server {
        Server::start(true)
    }

    fn start(keep: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut kept: Vec<TcpStream> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::SeqCst);
                        if keep && kept.len() < 10_000 {
                            kept.push(stream);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The cargo target directory (`target/`), from the built `fdguard`.
pub fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_fdguard"))
        .parent()
        .and_then(Path::parent)
        .expect("fdguard lives in target/<profile>/")
        .to_path_buf()
}

/// Compiles `cli/tests/programs/<source>` (a Go `main` package, standard library only) with
/// Debian's `go` into `dir`. FAILS with instructions when Go is missing: never skips. The build
/// cache lives in the target directory and no network is used (`GOPROXY=off`).
pub fn compile_go(source: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(source);
    let out = dir.join(source.trim_end_matches(".go"));
    let cache = target_dir().join("go-build-cache");
    let result = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .env("GOCACHE", &cache)
        .env("GOPATH", cache.join("gopath"))
        .env("GO111MODULE", "off")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `go` ({e}): install Debian's golang-go (bash tests/support/install-deps.sh does)"
            )
        });
    assert!(
        result.status.success(),
        "go build {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// `fdguard inspect PID --json ARGS…`, which must succeed, parsed.
pub fn inspect_json(pid: i32, extra: &[&str]) -> Report {
    let output = super::fdguard()
        .args(["inspect", &pid.to_string(), "--json"])
        .args(extra)
        .output()
        .expect("cannot run fdguard");
    super::assert_status(&output, 0);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "inspect --json did not print a report ({e}):\n{}",
            super::stdout(&output)
        )
    })
}
