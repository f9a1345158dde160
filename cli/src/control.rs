//! Asking a running process for a report, CLI side (`fdguard report`). The grammar — the
//! per-user channel directory, `request.<pid>`, the request's fields, the answer's name — is
//! written once in [`fdguard_report::request`], shared with the library (`src/agent/control.rs`
//! answers).
//!
//! 1. The target is checked: it exists and is not a zombie, has `libfdguard.so` mapped, and
//!    runs fdguard's thread (a thread named `fdguard`: it exists only while the process holds a
//!    socket, or from load with `FDGUARD_EXIT_REPORT=always`). A target that cannot answer is
//!    refused at once, with the reason.
//! 2. The channel directory of the target's EFFECTIVE uid (`/run/user/<uid>/fdguard` or
//!    `/tmp/fdguard-<uid>`) is created mode 0700 if missing, and refused if it is a symlink,
//!    not a directory, owned by anyone but that uid or root, or group/world writable.
//! 3. A private answer directory (mode 0700) is created inside it, and the request is written
//!    under a temporary name, then `link`ed to `request.<pid>`: atomically, and never over
//!    another asker's pending request (then this one waits its turn, within `--timeout`).
//! 4. With `--signal`, the report signal is sent too — only if the library accepts that
//!    signal and the target catches it right now (SigCgt in /proc/PID/status): a signal it
//!    does not catch would run its default action (SIGUSR1's ends the process). Without it,
//!    nothing is sent: the library's thread finds the request within
//!    `fdguard_report::request::POLL_MS`.
//! 5. The CLI waits for the answer (bounded), reads it, withdraws an unanswered request and
//!    removes its answer directory.
//!
//! When the CLI runs as root for another user's process, every file-system step of steps 2–5
//! runs with that user's file-system identity (`setfsuid`/`setfsgid`, [`ActingAs`]): what it
//! creates belongs to that user (the library runs with the target's credentials), and nothing
//! that user controls in the directory — a symlink swapped in for the directory, the answer or
//! a component — can make root read or create a file the user could not.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use fdguard_report::request::{self, RequestFormat};

use crate::ReportFormat;
use crate::error::{Failure, Result};
use crate::files::random_token;
use crate::signals::{parse_signal, signal_name};

/// How often the CLI looks for the answer.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a process that just started gets to start fdguard's thread.
const THREAD_GRACE: Duration = Duration::from_secs(1);
/// A pending request older than this was left by an asker that died: replaced.
const STALE_REQUEST: Duration = Duration::from_secs(60);
/// Most processes `--tree` collects.
pub const TREE_MAX: usize = 4096;

/// How the request reaches the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The request channel alone: no signal.
    Channel,
    /// The channel plus the report signal: the given one, or `None` for the process's own
    /// `FDGUARD_SIGNAL` (read from /proc/PID/environ; SIGUSR1 when unreadable).
    Signal(Option<i32>),
}

/// What the CLI needs to know about the target process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Process id.
    pub pid: i32,
    /// Its effective uid (names the channel directory).
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
}

/// Reads `/proc/PID/{status,maps,environ}` and checks the process can answer at all: it
/// exists, has `libfdguard.so` loaded, and has not turned fdguard off.
pub fn inspect_target(pid: i32) -> Result<Target> {
    if pid <= 0 {
        return Err(Failure::usage(format!("{pid} is not a process id")));
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let status = read_proc(pid, &proc_dir.join("status"), None)?;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| {
            Failure::new(format!(
                "cannot read the uid of process {pid} from /proc/{pid}/status"
            ))
        })?;
    let gid = status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(uid);
    let state = status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or("")
        .trim();
    if state.starts_with('Z') {
        return Err(Failure::new(format!(
            "process {pid} has exited (it is a zombie waiting for its parent); no report can be taken"
        )));
    }
    let maps = read_proc(pid, &proc_dir.join("maps"), Some(uid))?;
    if !maps
        .lines()
        .any(|l| l.contains(crate::preload::LIBRARY_FILE_NAME))
    {
        return Err(Failure::new(format!(
            "process {pid} does not have {lib} loaded; start it with `fdguard run -- …` or \
             LD_PRELOAD=/path/to/{lib} (or look at it from outside: `fdguard inspect {pid}`)",
            lib = crate::preload::LIBRARY_FILE_NAME
        )));
    }
    if environ_variable(pid, uid, "FDGUARD_DISABLE")
        .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
    {
        return Err(Failure::new(format!(
            "process {pid} runs with FDGUARD_DISABLE=1: fdguard is loaded but tracks nothing"
        )));
    }
    let me = effective_uid();
    if me != 0 && me != uid {
        return Err(Failure::new(format!(
            "process {pid} belongs to uid {uid}; run `fdguard report` as that user or as root"
        )));
    }
    Ok(Target { pid, uid, gid })
}

/// A variable of the process's initial environment (/proc/PID/environ). Best effort: a program
/// that rewrites its title (nginx, PostgreSQL, sshd) overwrites that memory.
fn environ_variable(pid: i32, uid: u32, name: &str) -> Option<String> {
    let environ = read_proc(pid, Path::new(&format!("/proc/{pid}/environ")), Some(uid)).ok()?;
    environ
        .split('\0')
        .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

/// True when one of the process's threads is named `fdguard` (the library's own thread).
pub fn thread_running(pid: i32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim_end() == "fdguard")
    })
}

/// Socket fds the process holds (/proc/PID/fd), when readable.
fn socket_count(pid: i32) -> Option<usize> {
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(
        fds.flatten()
            .filter(|fd| {
                fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
            })
            .count(),
    )
}

/// Why a process without fdguard's thread cannot answer.
fn no_thread_reason(pid: i32) -> String {
    match socket_count(pid) {
        Some(0) => format!(
            "process {pid} holds no socket, so fdguard's thread is not running and nothing can \
             answer (the thread starts with the first socket; FDGUARD_EXIT_REPORT=always starts \
             it at load). With no socket open there is nothing to report"
        ),
        Some(n) => format!(
            "process {pid} holds {n} socket(s) but fdguard's thread is not running: it was \
             stopped around an unshare()/setns() and no socket call was made since, or it could \
             not be started, or those sockets came from raw system calls fdguard cannot see \
             (`fdguard inspect {pid}` looks from outside)"
        ),
        None => format!("fdguard's thread is not running in process {pid}"),
    }
}

/// Waits (at most [`THREAD_GRACE`]) for fdguard's thread in `pid`.
fn wait_for_thread(pid: i32) -> Result<()> {
    let deadline = Instant::now() + THREAD_GRACE;
    loop {
        if thread_running(pid) {
            return Ok(());
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(Failure::new(format!(
                "process {pid} exited before it could be asked for a report"
            )));
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(no_thread_reason(pid)));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The report signal to send to `target`: `explicit`, else its `FDGUARD_SIGNAL`, else
/// SIGUSR1; refused when fdguard refuses it or the process turned the signal off.
pub fn report_signal(target: &Target, explicit: Option<i32>) -> Result<i32> {
    let pid = target.pid;
    // /proc/PID/environ is the memory the environment started in: programs that rewrite their
    // title (nginx, PostgreSQL, sshd, redis) write over it. Trusted only while it still shows
    // the LD_PRELOAD that loaded fdguard.
    let intact = environ_variable(pid, target.uid, "LD_PRELOAD")
        .is_some_and(|v| v.contains(crate::preload::LIBRARY_FILE_NAME));
    if explicit.is_none() && !intact {
        return Err(Failure::new(format!(
            "cannot tell which report signal process {pid} takes: its initial environment \
             (/proc/{pid}/environ) no longer shows how it was started (programs that rewrite \
             their title write over it); name it with --signal=SIG, or ask without --signal"
        )));
    }
    let spelled =
        environ_variable(pid, target.uid, "FDGUARD_SIGNAL").filter(|v| !v.trim().is_empty());
    let signal = match (explicit, spelled.as_deref().map(parse_signal)) {
        (Some(signal), _) => signal,
        (None, None) => libc::SIGUSR1,
        (None, Some(Some(Some(signal)))) => signal,
        (None, Some(Some(None))) => {
            return Err(Failure::new(format!(
                "process {pid} runs with FDGUARD_SIGNAL=none, so it takes no report signal; ask \
                 without --signal (the request channel needs none)"
            )));
        }
        // The library warned and fell back to its default.
        (None, Some(None)) => libc::SIGUSR1,
    };
    if let Some(why) = fdguard_report::signal::refusal(signal) {
        return Err(Failure::new(format!(
            "process {pid}: fdguard refuses {} as a report signal ({why}); ask without --signal \
             (the request channel needs none)",
            signal_name(signal)
        )));
    }
    Ok(signal)
}

/// What process `pid` does with `signal` now, from the SigCgt/SigIgn masks of
/// /proc/PID/status (bit `signal - 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A handler is installed: the signal is safe to send.
    Caught,
    Ignored,
    /// The default action: for the report signals fdguard accepts, mostly "terminate".
    Default,
}

/// Parses the disposition of `signal` out of a /proc/PID/status text.
pub fn disposition(status: &str, signal: i32) -> Option<Disposition> {
    let mask = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    };
    let bit = 1u64.checked_shl(u32::try_from(signal - 1).ok()?)?;
    let caught = mask("SigCgt:")?;
    let ignored = mask("SigIgn:")?;
    Some(if caught & bit != 0 {
        Disposition::Caught
    } else if ignored & bit != 0 {
        Disposition::Ignored
    } else {
        Disposition::Default
    })
}

/// Refuses to go on unless the target catches `signal` right now (read from /proc/PID/status
/// just before sending): a host that reset the signal to SIG_DFL (many daemons do) would be
/// killed by it, one that ignores it could never answer.
fn check_caught(target: &Target, signal: i32) -> Result<()> {
    let path = PathBuf::from(format!("/proc/{}/status", target.pid));
    let status = read_proc(target.pid, &path, Some(target.uid))?;
    let name = signal_name(signal);
    let why = match disposition(&status, signal) {
        Some(Disposition::Caught) => return Ok(()),
        Some(Disposition::Ignored) => format!("it ignores {name}, so it could never answer"),
        Some(Disposition::Default) => format!(
            "its handler for {name} is gone (reset to the default action, which would end the \
             process)"
        ),
        None => format!("cannot read its signal masks from {}", path.display()),
    };
    Err(Failure::new(format!(
        "process {} does not catch {name}: {why}; no signal was sent. Ask without --signal (the \
         request channel needs none)",
        target.pid
    )))
}

/// Reads a /proc file of process `pid`, mapping errors to messages that say what to do.
fn read_proc(pid: i32, path: &Path, owner: Option<u32>) -> Result<String> {
    match fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ESRCH) =>
        {
            Err(Failure::new(format!("no process with pid {pid}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let whose = owner
                .map(|uid| format!(" (it belongs to uid {uid})"))
                .unwrap_or_default();
            let me = effective_uid();
            let remedy = if me == 0 || Some(me) == owner {
                // Same user or root and still refused: ptrace access checks (a container without
                // CAP_SYS_PTRACE, a non-dumpable process, another PID namespace).
                "this system restricts access to it (ptrace access mode checks: a non-dumpable \
                 process, or a container without CAP_SYS_PTRACE)"
            } else {
                "run `fdguard report` as the process's user or as root"
            };
            Err(Failure::new(format!(
                "permission denied reading {}: you may not inspect process {pid}{whose}; {remedy}",
                path.display()
            )))
        }
        Err(e) => Err(Failure::new(format!("cannot read {}: {e}", path.display()))),
    }
}

/// `pid` and every process below it (children found through /proc/PID/task/*/children), in
/// breadth-first order, at most [`TREE_MAX`]: a master and its workers.
pub fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut next = 0;
    while next < out.len() && out.len() < TREE_MAX {
        let parent = out[next];
        next += 1;
        let mut children: Vec<i32> = fs::read_dir(format!("/proc/{parent}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|text| {
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                    .collect::<Vec<_>>()
            })
            .collect();
        children.sort_unstable();
        children.dedup();
        for child in children {
            if out.len() >= TREE_MAX {
                break;
            }
            if !out.contains(&child) {
                out.push(child);
            }
        }
    }
    out
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// While alive, this thread's file-system operations run as `uid`/`gid` (setfsuid/setfsgid)
/// when we are root acting for another user; otherwise it changes nothing. Only the calling
/// thread is affected (Linux keeps file-system ids per thread; glibc does not broadcast
/// setfsuid), and only file access checks: /proc reads that need root happen outside.
pub struct ActingAs {
    previous: Option<(u32, u32)>,
}

impl ActingAs {
    /// Takes `target`'s file-system identity, if we are root and it is not.
    pub fn target(target: &Target) -> ActingAs {
        if effective_uid() != 0 || target.uid == 0 {
            return ActingAs { previous: None };
        }
        // SAFETY: setfsgid/setfsuid take plain ids; each returns the previous one.
        let previous = unsafe {
            let gid = libc::setfsgid(target.gid) as u32;
            let uid = libc::setfsuid(target.uid) as u32;
            (uid, gid)
        };
        ActingAs {
            previous: Some(previous),
        }
    }
}

impl Drop for ActingAs {
    fn drop(&mut self) {
        if let Some((uid, gid)) = self.previous {
            // SAFETY: as above; restoring our own previous ids.
            unsafe {
                libc::setfsuid(uid);
                libc::setfsgid(gid);
            }
        }
    }
}

/// Makes sure `dir` is a channel directory only `uid` (or root) can write to, creating it
/// (mode 0700, owned by `uid`) if missing. See the module documentation for what is refused.
pub fn prepare_control_dir(dir: &Path, uid: u32) -> Result<()> {
    let shown = dir.display();
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => {}
                // Someone (the library?) created it meanwhile: check theirs below.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Failure::new(format!(
                        "cannot create the request directory {shown}: {e}"
                    )));
                }
            }
        }
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot inspect the request directory {shown}: {e}"
            )));
        }
        Ok(_) => {}
    }
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| Failure::new(format!("cannot inspect the request directory {shown}: {e}")))?;
    let remedy = format!("remove it (rm -rf {shown}) and try again");
    if meta.file_type().is_symlink() {
        return Err(Failure::new(format!(
            "refusing to use the request directory {shown}: it is a symbolic link (someone may \
             be trying to redirect reports); {remedy}"
        )));
    }
    if !meta.is_dir() {
        return Err(Failure::new(format!(
            "refusing to use {shown}: it is not a directory; {remedy}"
        )));
    }
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(Failure::new(format!(
            "refusing to use the request directory {shown}: it belongs to uid {}, not to the \
             target's uid {uid} or root; {remedy}",
            meta.uid()
        )));
    }
    if !request::directory_trusted(true, meta.uid(), meta.mode(), uid) {
        return Err(Failure::new(format!(
            "refusing to use the request directory {shown}: it is group- or world-writable \
             (mode {:o}); {remedy}",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// A private directory for one answer; removed (with its content) when dropped.
#[derive(Debug)]
pub struct AnswerDir {
    path: PathBuf,
}

impl AnswerDir {
    /// Creates [`request::answer_dir_name`] (mode 0700) inside `control_dir`.
    pub fn create(control_dir: &Path) -> Result<AnswerDir> {
        let path = control_dir.join(request::answer_dir_name(
            std::process::id(),
            &random_token(),
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
        Ok(AnswerDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AnswerDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn request_format(format: ReportFormat) -> RequestFormat {
    match format {
        ReportFormat::Text => RequestFormat::Text,
        ReportFormat::Json => RequestFormat::Json,
    }
}

/// Publishes the request for `pid` in `control_dir`: written under a temporary name, then
/// linked to `request.<pid>` (never over a pending request of another asker: that one is waited
/// for until `deadline`; one older than [`STALE_REQUEST`] was abandoned and is replaced).
/// Returns the request's path.
pub fn write_request(
    control_dir: &Path,
    pid: i32,
    content: &str,
    deadline: Instant,
) -> Result<PathBuf> {
    let final_path = control_dir.join(request::request_file_name(pid));
    let temp_path = control_dir.join(request::temp_request_name(pid, &random_token()));
    let fail = |e: std::io::Error| {
        Failure::new(format!(
            "cannot write the request {}: {e}",
            temp_path.display()
        ))
    };
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)
            .map_err(fail)?;
        file.write_all(content.as_bytes()).map_err(fail)?;
        loop {
            match fs::hard_link(&temp_path, &final_path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::symlink_metadata(&final_path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| {
                            SystemTime::now()
                                .duration_since(t)
                                .is_ok_and(|age| age > STALE_REQUEST)
                        });
                    if stale {
                        let _ = fs::remove_file(&final_path);
                        continue;
                    }
                    if Instant::now() >= deadline {
                        return Err(Failure::new(format!(
                            "another request to process {pid} is pending ({}): another \
                             `fdguard report` is asking it right now; try again",
                            final_path.display()
                        )));
                    }
                    std::thread::sleep(POLL_INTERVAL);
                }
                Err(e) => {
                    return Err(Failure::new(format!(
                        "cannot publish the request {}: {e}",
                        final_path.display()
                    )));
                }
            }
        }
    })();
    let _ = fs::remove_file(&temp_path);
    written.map(|()| final_path)
}

/// Sends `signal` to `pid`.
pub fn send_signal(pid: i32, signal: i32) -> Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions; pid > 0 is checked by inspect_target,
    // so this never signals a process group.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let error = std::io::Error::last_os_error();
    Err(match error.raw_os_error() {
        Some(libc::ESRCH) => Failure::new(format!(
            "process {pid} exited before it could be asked for a report"
        )),
        Some(libc::EPERM) => Failure::new(format!(
            "not allowed to send {} to process {pid}; run `fdguard report` as the process's user or as root",
            signal_name(signal)
        )),
        _ => Failure::new(format!(
            "cannot send {} to process {pid}: {error}",
            signal_name(signal)
        )),
    })
}

/// One request on its way.
struct Pending {
    target: Target,
    control_dir: PathBuf,
    /// Removed (with the answer) when the request is done.
    _answer: AnswerDir,
    output: PathBuf,
    request: PathBuf,
    content: String,
}

impl Pending {
    /// Removes the request if it is still ours (not consumed, not another asker's).
    fn withdraw(&self) {
        let _as = ActingAs::target(&self.target);
        if fs::read_to_string(&self.request).is_ok_and(|c| c == self.content) {
            let _ = fs::remove_file(&self.request);
        }
    }

    /// The answer, once the library has renamed it into place: a regular file, never followed
    /// through a symlink, read with the target's file-system identity.
    fn answer(&self) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let _as = ActingAs::target(&self.target);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&self.output)?;
        if !file.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Why no answer came within `timeout`.
    fn unanswered(&self, timeout: Duration) -> Failure {
        let pid = self.target.pid;
        let seconds = timeout.as_secs_f64();
        let consumed = !self.request.exists();
        if consumed {
            return Failure::new(format!(
                "process {pid} took the request but wrote no report within {seconds:.1}s; it may \
                 be very busy (a report of many sockets) or stuck: try a longer --timeout"
            ));
        }
        if !thread_running(pid) {
            return Failure::new(format!(
                "process {pid} did not answer within {seconds:.1}s: {}",
                no_thread_reason(pid)
            ));
        }
        Failure::new(format!(
            "process {pid} did not answer within {seconds:.1}s: its fdguard thread runs but never \
             took the request from {} (it looks every {} ms). Is it stuck writing another \
             report? Does the process see another /tmp or /run (a container, systemd's \
             PrivateTmp)? `fdguard inspect {pid}` looks from outside",
            self.control_dir.display(),
            request::POLL_MS
        ))
    }
}

/// Prepares and publishes one request (and sends the signal, with [`Delivery::Signal`]).
fn ask(
    target: &Target,
    format: ReportFormat,
    delivery: Delivery,
    deadline: Instant,
) -> Result<Pending> {
    let signal = match delivery {
        Delivery::Channel => None,
        Delivery::Signal(explicit) => Some(report_signal(target, explicit)?),
    };
    wait_for_thread(target.pid)?;
    let control_dir = request::channel_dir(target.uid);
    let acting = ActingAs::target(target);
    prepare_control_dir(&control_dir, target.uid)?;
    let answer = AnswerDir::create(&control_dir)?;
    let format = request_format(format);
    let output = answer
        .path()
        .join(request::answer_file_name(target.pid, format));
    let content = request::Request {
        output: output.display().to_string(),
        format,
    }
    .render();
    let request = write_request(&control_dir, target.pid, &content, deadline)?;
    drop(acting);
    let pending = Pending {
        target: target.clone(),
        control_dir,
        _answer: answer,
        output,
        request,
        content,
    };
    if let Some(signal) = signal
        && let Err(e) = check_caught(target, signal).and_then(|()| send_signal(target.pid, signal))
    {
        pending.withdraw();
        return Err(e);
    }
    Ok(pending)
}

/// Asks every target for a report in `format` and waits for all the answers, at most `timeout`
/// in all. One result per target, in order.
pub fn request_reports(
    targets: &[Target],
    format: ReportFormat,
    timeout: Duration,
    delivery: Delivery,
) -> Vec<Result<Vec<u8>>> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut pending: Vec<Option<Pending>> = Vec::new();
    let mut results: Vec<Option<Result<Vec<u8>>>> = Vec::new();
    for target in targets {
        match ask(target, format, delivery, deadline) {
            Ok(p) => {
                pending.push(Some(p));
                results.push(None);
            }
            Err(e) => {
                pending.push(None);
                results.push(Some(Err(e)));
            }
        }
    }
    loop {
        let mut waiting = false;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            let Some(p) = slot else { continue };
            let outcome = match p.answer() {
                // The library renames the finished file into place: if it exists, it is complete.
                Ok(bytes) => Some(Ok(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !Path::new(&format!("/proc/{}", p.target.pid)).exists() {
                        p.withdraw();
                        Some(Err(Failure::new(format!(
                            "process {} exited before writing the report",
                            p.target.pid
                        ))))
                    } else if Instant::now() >= deadline {
                        p.withdraw();
                        Some(Err(p.unanswered(timeout)))
                    } else {
                        None
                    }
                }
                Err(e) => Some(Err(Failure::new(format!(
                    "cannot read the report {}: {e}",
                    p.output.display()
                )))),
            };
            match outcome {
                Some(done) => {
                    *result = Some(done);
                    *slot = None;
                }
                None => waiting = true,
            }
        }
        if !waiting {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::new("no answer"))))
        .collect()
}

/// Asks one target through the channel (no signal) and waits at most `timeout`.
pub fn request_report(target: &Target, format: ReportFormat, timeout: Duration) -> Result<Vec<u8>> {
    request_reports(
        std::slice::from_ref(target),
        format,
        timeout,
        Delivery::Channel,
    )
    .pop()
    .unwrap_or_else(|| Err(Failure::new("no answer")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fdguard-control-test-{}-{name}-{}",
            std::process::id(),
            random_token()
        ));
        fs::create_dir(&dir).unwrap();
        dir
    }

    fn my_uid() -> u32 {
        effective_uid()
    }

    #[test]
    fn creates_a_private_control_dir() {
        let base = scratch("create");
        let dir = base.join("fdguard-x");
        prepare_control_dir(&dir, my_uid()).unwrap();
        let meta = fs::symlink_metadata(&dir).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        // Idempotent.
        prepare_control_dir(&dir, my_uid()).unwrap();
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_symlinks_and_writable_dirs() {
        let base = scratch("refuse");
        let real = base.join("real");
        fs::DirBuilder::new().mode(0o700).create(&real).unwrap();
        let link = base.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let error = prepare_control_dir(&link, my_uid()).unwrap_err();
        assert!(error.message.contains("symbolic link"), "{error}");

        let open = base.join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let error = prepare_control_dir(&open, my_uid()).unwrap_err();
        assert!(
            error.message.contains("group- or world-writable"),
            "{error}"
        );

        let file = base.join("file");
        fs::write(&file, "").unwrap();
        assert!(
            prepare_control_dir(&file, my_uid())
                .unwrap_err()
                .message
                .contains("not a directory")
        );
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn refuses_a_dir_owned_by_someone_else() {
        let base = scratch("owner");
        let dir = base.join("d");
        fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        // The dir belongs to us; claim the target is some other, non-root uid.
        let other = if my_uid() == 4_000_000 {
            4_000_001
        } else {
            4_000_000
        };
        let result = prepare_control_dir(&dir, other);
        if my_uid() == 0 {
            assert!(result.is_ok(), "root-owned control dirs are accepted");
        } else {
            assert!(result.unwrap_err().message.contains("belongs to uid"));
        }
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn requests_are_linked_into_place_and_never_replace_a_pending_one() {
        let base = scratch("request");
        let answer = AnswerDir::create(&base).unwrap();
        let output = answer.path().join("report.4242.json");
        let content = request::Request {
            output: output.display().to_string(),
            format: RequestFormat::Json,
        }
        .render();
        let soon = Instant::now() + Duration::from_millis(200);
        let request = write_request(&base, 4242, &content, soon).unwrap();
        assert_eq!(request, base.join("request.4242"));
        assert_eq!(fs::read_to_string(&request).unwrap(), content);
        assert_eq!(fs::metadata(&request).unwrap().mode() & 0o777, 0o600);
        // A second asker waits for the first, and gives up at its deadline.
        let error = write_request(&base, 4242, "other", soon).unwrap_err();
        assert!(error.message.contains("another request"), "{error}");
        assert_eq!(fs::read_to_string(&request).unwrap(), content);
        let leftovers: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let answer_path = answer.path().to_path_buf();
        assert!(
            answer_path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("answer.{}.", std::process::id()))
        );
        assert_eq!(fs::metadata(&answer_path).unwrap().mode() & 0o777, 0o700);
        drop(answer);
        assert!(!answer_path.exists(), "the answer dir is removed on drop");
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn acting_as_another_user_takes_its_file_system_identity_and_gives_it_back() {
        let base = scratch("acting");
        let secret = base.join("root-only");
        fs::write(&secret, "secret").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
        let nobody = Target {
            pid: 1,
            uid: 65534,
            gid: 65534,
        };
        {
            let _as = ActingAs::target(&nobody);
            let read = fs::read(&secret);
            if my_uid() == 0 {
                // Root acting for nobody reads only what nobody could.
                assert_eq!(
                    read.unwrap_err().kind(),
                    std::io::ErrorKind::PermissionDenied
                );
            } else {
                assert!(read.is_ok(), "not root: nothing changes");
            }
        }
        assert_eq!(fs::read_to_string(&secret).unwrap(), "secret", "given back");
        fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn dispositions_come_from_the_status_masks() {
        let status = "Name:\tx\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001000\n\
                      SigCgt:\t0000000180000200\n";
        assert_eq!(
            disposition(status, libc::SIGUSR1),
            Some(Disposition::Caught)
        );
        assert_eq!(
            disposition(status, libc::SIGPIPE),
            Some(Disposition::Ignored)
        );
        assert_eq!(
            disposition(status, libc::SIGUSR2),
            Some(Disposition::Default)
        );
        assert_eq!(disposition(status, 64), Some(Disposition::Default));
        assert_eq!(disposition("Name:\tx\n", libc::SIGUSR1), None);
    }

    #[test]
    fn nonexistent_pid_is_a_clear_error() {
        // pid_max is at most 2^22 on Linux, so this pid cannot exist.
        let error = inspect_target(1 << 23).unwrap_err();
        assert_eq!(error.message, format!("no process with pid {}", 1 << 23));
        assert_eq!(
            inspect_target(0).unwrap_err().exit_code,
            crate::error::EXIT_USAGE
        );
    }

    #[test]
    fn own_process_without_the_library() {
        let error = inspect_target(std::process::id() as i32).unwrap_err();
        assert!(
            error.message.contains("does not have libfdguard.so loaded"),
            "{error}"
        );
    }

    #[test]
    fn the_tree_starts_with_the_process_and_finds_its_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let found = tree(me);
        assert_eq!(found[0], me);
        assert!(found.contains(&(child.id() as i32)), "{found:?}");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
