//! `fdguard demo`: the grpc/grpc#38871 pattern in miniature, end to end, in a few seconds.
//!
//! The CLI starts a loopback TCP backend on a thread of its OWN process (not under the shim),
//! then re-executes itself as the hidden `__demo-client` under libfdguard.so. The client opens
//! two connections to that one backend from two clearly named functions; the backend hangs up
//! on the backup one, which reaches CLOSE_WAIT, while the primary stays alive. The client never
//! closes the backup, waits past the grace period and exits; the library writes its exit
//! report (the dead backup beside its live sibling: a peer_closed leak and the duplicate pair),
//! which the CLI prints. Loopback only; bounded in time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fdguard_report::{FindingKind, Report, text};

use crate::error::{Failure, Result};
use crate::files::{load_report, random_token};
use crate::preload::{append_ld_preload, find_library};
use crate::style;

/// `FDGUARD_GRACE_MS` for the client: short, so the demo is quick.
const GRACE_MS: u64 = 200;
/// `FDGUARD_WATCH_MS` for the client: the watcher must SEE the CLOSE_WAIT a grace period before
/// exit for the finding to be reported.
const WATCH_MS: u64 = 50;
/// The whole client run, after which it is killed.
const CLIENT_DEADLINE: Duration = Duration::from_secs(10);
/// How long the client waits for the backend's hang-up.
const HANGUP_TIMEOUT: Duration = Duration::from_secs(3);
/// What the backup connection sends to make the backend hang up on it.
const HANGUP_REQUEST: &str = "hang up on me, please";

/// Options of `fdguard demo`.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// `--lib`.
    pub lib: Option<PathBuf>,
    /// Keep the JSON report and print where it is.
    pub keep: bool,
}

/// Runs `fdguard demo`.
pub fn demo(options: &DemoOptions) -> Result<()> {
    let library = find_library(options.lib.as_deref())?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Failure::new(format!("cannot start the demo backend on 127.0.0.1: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::new(format!("cannot read the demo backend's port: {e}")))?
        .port();
    std::thread::Builder::new()
        .name("demo-backend".into())
        .spawn(move || run_backend(listener))
        .map_err(|e| Failure::new(format!("cannot start the demo backend thread: {e}")))?;

    let dir = std::env::temp_dir().join(format!(
        "fdguard-demo-{}-{}",
        std::process::id(),
        random_token()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
    let result = run_client_and_show(&library, port, &dir);
    if options.keep {
        eprintln!("fdguard: the demo's reports are kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_client_and_show(library: &Path, port: u16, dir: &Path) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::new(format!("cannot find the fdguard executable: {e}")))?;
    let ld_preload = append_ld_preload(std::env::var_os("LD_PRELOAD").as_deref(), library)?;
    let template = dir.join("demo.%p.%n.json");
    let mut child = Command::new(&exe)
        .args(["__demo-client", "--port", &port.to_string()])
        .env("LD_PRELOAD", ld_preload)
        .env("FDGUARD_REPORT", &template)
        .env("FDGUARD_FORMAT", "json")
        .env("FDGUARD_GRACE_MS", GRACE_MS.to_string())
        .env("FDGUARD_WATCH_MS", WATCH_MS.to_string())
        .env("FDGUARD_EXITCODE", "0")
        .env("FDGUARD_EXIT_REPORT", "always")
        // The user's own settings must not change what the demo shows.
        .env_remove("FDGUARD_DISABLE")
        .env_remove("FDGUARD_SUPPRESSIONS")
        .env_remove("FDGUARD_DUP_MIN")
        .env_remove("FDGUARD_STACK_DEPTH")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            Failure::new(format!(
                "cannot start the demo client {}: {e}",
                exe.display()
            ))
        })?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < CLIENT_DEADLINE => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::new(format!(
                    "the demo client did not finish within {}s and was killed",
                    CLIENT_DEADLINE.as_secs()
                )));
            }
            Err(e) => {
                return Err(Failure::new(format!(
                    "cannot wait for the demo client: {e}"
                )));
            }
        }
    };
    if !status.success() {
        return Err(Failure::new(format!(
            "the demo client failed ({status}); see its messages above"
        )));
    }
    let report = last_report(dir)?;
    let rendered = text::render(&report);
    print!(
        "{}",
        if style::stdout_wants_colour() {
            style::colour_report(&rendered)
        } else {
            rendered
        }
    );
    println!();
    println!(
        "What you see: the demo client (pid {}) opened two connections to one local backend, from \
         open_primary_connection and open_backup_connection; the backend hung up on the backup, \
         the client never closed it, and the primary stayed in use.",
        report.pid
    );
    println!(
        "fdguard flags the backup as a peer_closed leak (stuck in CLOSE_WAIT, still open) with the \
         stack that created it, and the pair as a duplicate_backend warning: a dead connection \
         beside a live one to the same backend, the leak pattern of grpc/grpc#38871. Next: \
         fdguard run -- YOUR_PROGRAM"
    );
    let backup = |fd: &i32| {
        report.sockets.iter().any(|s| {
            s.fd == *fd
                && s.stack.iter().any(|fr| {
                    fr.function
                        .as_deref()
                        .is_some_and(|n| n.contains("open_backup_connection"))
                })
        })
    };
    let flagged = report.findings.iter().any(|f| {
        f.kind == FindingKind::PeerClosed && f.suppressed_by.is_none() && f.fds.iter().any(backup)
    });
    let pair = report.findings.iter().any(|f| {
        f.kind == FindingKind::DuplicateBackend
            && f.fds.len() == 2
            && f.suspect_fds.iter().any(backup)
    });
    if !flagged || !pair {
        return Err(Failure::new(
            "the report above lacks the expected peer_closed finding on the connection made by \
             open_backup_connection, or the duplicate pair naming it; is libfdguard.so up to date \
             (cargo build -p fdguard)?",
        ));
    }
    Ok(())
}

/// The report with the highest sequence number in `dir` (the exit report).
fn last_report(dir: &Path) -> Result<Report> {
    let mut reports: Vec<Report> = std::fs::read_dir(dir)
        .map_err(|e| Failure::new(format!("cannot list {}: {e}", dir.display())))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("demo."))
        .map(|e| load_report(&e.path()))
        .collect::<Result<_>>()?;
    reports.sort_by_key(|r| r.seq);
    reports.pop().ok_or_else(|| {
        Failure::new(format!(
            "the demo client wrote no report into {}; was libfdguard.so loaded? (look for loader \
             messages above)",
            dir.display()
        ))
    })
}

/// The backend: holds every connection, and hangs up on one that asks it to.
fn run_backend(listener: TcpListener) {
    let mut held: Vec<TcpStream> = Vec::new();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(HANGUP_TIMEOUT));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        if line.trim() == HANGUP_REQUEST {
            // Dropping closes: the client sees EOF and its socket goes to CLOSE_WAIT.
            drop(stream);
        } else {
            held.push(stream);
        }
    }
}

/// Connection 1: stays alive, in use.
#[inline(never)]
pub fn open_primary_connection(port: u16) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.write_all(b"hello from the primary\n")?;
    Ok(stream)
}

/// Connection 2: the one the "application" forgets to close.
#[inline(never)]
pub fn open_backup_connection(port: u16) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.write_all(format!("{HANGUP_REQUEST}\n").as_bytes())?;
    Ok(stream)
}

/// Reads until the peer's FIN (EOF): from then on the socket is in CLOSE_WAIT until closed.
fn wait_for_hangup(stream: &mut TcpStream, which: &str) -> Result<()> {
    stream
        .set_read_timeout(Some(HANGUP_TIMEOUT))
        .map_err(|e| Failure::new(format!("demo client: {e}")))?;
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(Failure::new(format!(
                    "demo client: the backend did not hang up on the {which} connection: {e}"
                )));
            }
        }
    }
}

/// The hidden `fdguard __demo-client --port P`, run under libfdguard.so by [`demo`].
pub fn demo_client(port: u16) -> Result<()> {
    let connect_error = |e: std::io::Error| {
        Failure::new(format!(
            "demo client: cannot connect to 127.0.0.1:{port}: {e}"
        ))
    };
    let primary = open_primary_connection(port).map_err(connect_error)?;
    let mut backup = open_backup_connection(port).map_err(connect_error)?;
    wait_for_hangup(&mut backup, "backup")?;
    let grace_ms = std::env::var("FDGUARD_GRACE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(GRACE_MS);
    let watch_ms = std::env::var("FDGUARD_WATCH_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(WATCH_MS);
    std::thread::sleep(Duration::from_millis(grace_ms + 2 * watch_ms + 300));
    // THE LEAK, on purpose: the backup connection is never closed, like the second subchannel
    // connection in grpc/grpc#38871, while the primary is alive beside it. Forgetting them
    // keeps both fds open until exit, where libfdguard.so reports them.
    std::mem::forget(backup);
    std::mem::forget(primary);
    Ok(())
}
