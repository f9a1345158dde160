//! The on-demand report protocol, CLI side (`fdguard report PID`). KEEP IN SYNC with the
//! library's request handling (src/control.rs there):
//!
//! 1. The control directory is `/tmp/fdguard-<uid>`, `<uid>` being the TARGET's effective uid
//!    (from `/proc/PID/status`; the library uses its geteuid()). Created mode 0700 if missing; refused if it is a symlink, not a
//!    directory, not owned by that uid or root, or group/world writable (anyone able to write
//!    there could redirect reports).
//! 2. A fresh private directory inside it receives the answer; the output path inside it does
//!    not exist yet.
//! 3. The request file `request.<PID>` is written atomically (`request.<PID>.tmp<random>`, then
//!    rename) with exactly two lines: the absolute output path and the format (`text`|`json`).
//! 4. The target's report signal (its `FDGUARD_SIGNAL`, default SIGUSR1) is sent — only if the
//!    library accepts that signal (`fdguard_report::signal::refusal`) and the target catches
//!    it right now (SigCgt in /proc/PID/status): a signal the target does not catch would run
//!    its default action (SIGUSR1's ends the process). The library's
//!    reporter thread unlinks the request and writes the report to the output path, atomically.
//! 5. The CLI waits for the output file (bounded), reads it, and removes its private directory.
//!
//! When the CLI runs as root for another user's process, the directories and the request file
//! are handed to that user (chown), since the library runs with the target's credentials.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ReportFormat;
use crate::error::{Failure, Result};
use crate::files::random_token;
use crate::signals::{parse_signal, signal_name};

/// How often the CLI looks for the answer.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What the CLI needs to know about the target process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Process id.
    pub pid: i32,
    /// Its effective uid (names the control directory).
    pub uid: u32,
    /// The report signal it listens on.
    pub signal: i32,
}

/// Reads `/proc/PID/{status,maps,environ}` and checks the process can answer: it exists, has
/// `libfdguard.so` loaded, and has not turned the report signal off.
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
             LD_PRELOAD=/path/to/{lib}",
            lib = crate::preload::LIBRARY_FILE_NAME
        )));
    }
    let environ = read_proc(pid, &proc_dir.join("environ"), Some(uid))?;
    let variable = |name: &str| {
        environ
            .split('\0')
            .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    if variable("FDGUARD_DISABLE").is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes")) {
        return Err(Failure::new(format!(
            "process {pid} runs with FDGUARD_DISABLE=1: fdguard is loaded but tracks nothing"
        )));
    }
    let spelled = variable("FDGUARD_SIGNAL").filter(|v| !v.trim().is_empty());
    let signal = match spelled.as_deref().map(parse_signal) {
        None => libc::SIGUSR1,
        Some(Some(Some(signal))) => signal,
        Some(Some(None)) => {
            return Err(Failure::new(format!(
                "process {pid} runs with FDGUARD_SIGNAL=none, so it cannot be asked for a report; \
                 restart it with another signal (e.g. FDGUARD_SIGNAL=SIGUSR2), or rely on its exit report"
            )));
        }
        // The library warned and fell back to its default.
        Some(None) => libc::SIGUSR1,
    };
    if let Some(why) = fdguard_report::signal::refusal(signal) {
        return Err(Failure::new(format!(
            "process {pid} runs with FDGUARD_SIGNAL={}, which fdguard refuses ({why}), so it \
             cannot be asked for a report; restart it with another signal (e.g. \
             FDGUARD_SIGNAL=SIGUSR2), or rely on its exit report",
            spelled.as_deref().unwrap_or("").trim()
        )));
    }
    Ok(Target { pid, uid, signal })
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

/// Refuses to go on unless the target catches its report signal right now (read from
/// /proc/PID/status just before sending): a host that reset the signal to SIG_DFL (many
/// daemons do) would be killed by it, one that ignores it could never answer. A process that
/// just started may not have installed the handler yet: it gets up to a second.
fn check_caught(target: &Target) -> Result<()> {
    let path = PathBuf::from(format!("/proc/{}/status", target.pid));
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let status = read_proc(target.pid, &path, Some(target.uid))?;
        let name = signal_name(target.signal);
        let why = match disposition(&status, target.signal) {
            Some(Disposition::Caught) => return Ok(()),
            Some(Disposition::Ignored) => format!("it ignores {name}, so it could never answer"),
            Some(Disposition::Default) => format!(
                "its handler for {name} is gone (reset to the default action, which would end \
                 the process)"
            ),
            None => format!("cannot read its signal masks from {}", path.display()),
        };
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "process {} does not catch {name}: {why}; no signal was sent. Restart it with \
                 FDGUARD_SIGNAL set to a signal it leaves alone (e.g. SIGUSR2)",
                target.pid
            )));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
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

/// `/tmp/fdguard-<uid>`. Fixed (not `$TMPDIR`): the library and the CLI run with different
/// environments and must agree without talking.
pub fn control_dir_for(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/fdguard-{uid}"))
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Hands `path` to `uid` when we are root acting for another user (the library, running as that
/// user, must be able to read and write what we create).
fn give_to(path: &Path, uid: u32) -> Result<()> {
    if effective_uid() == 0 && uid != 0 {
        std::os::unix::fs::lchown(path, Some(uid), None).map_err(|e| {
            Failure::new(format!("cannot hand {} to uid {uid}: {e}", path.display()))
        })?;
    }
    Ok(())
}

/// Makes sure `dir` is a control directory only `uid` (or root) can write to, creating it (mode
/// 0700, owned by `uid`) if missing. See the module documentation for what is refused.
pub fn prepare_control_dir(dir: &Path, uid: u32) -> Result<()> {
    let shown = dir.display();
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            match fs::DirBuilder::new().mode(0o700).create(dir) {
                Ok(()) => give_to(dir, uid)?,
                // Someone (the library?) created it meanwhile: check theirs below.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(Failure::new(format!(
                        "cannot create the control directory {shown}: {e}"
                    )));
                }
            }
        }
        Err(e) => {
            return Err(Failure::new(format!(
                "cannot inspect the control directory {shown}: {e}"
            )));
        }
        Ok(_) => {}
    }
    let meta = fs::symlink_metadata(dir)
        .map_err(|e| Failure::new(format!("cannot inspect the control directory {shown}: {e}")))?;
    let remedy = format!("remove it (rm -rf {shown}) and try again");
    if meta.file_type().is_symlink() {
        return Err(Failure::new(format!(
            "refusing to use the control directory {shown}: it is a symbolic link (someone may be \
             trying to redirect reports); {remedy}"
        )));
    }
    if !meta.is_dir() {
        return Err(Failure::new(format!(
            "refusing to use {shown}: it is not a directory; {remedy}"
        )));
    }
    if meta.uid() != uid && meta.uid() != 0 {
        return Err(Failure::new(format!(
            "refusing to use the control directory {shown}: it belongs to uid {}, not to the \
             target's uid {uid} or root; {remedy}",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Failure::new(format!(
            "refusing to use the control directory {shown}: it is group- or world-writable (mode \
             {:o}); {remedy}",
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
    /// Creates `answer.<our pid>.<random>` (mode 0700, handed to `uid`) inside `control_dir`.
    pub fn create(control_dir: &Path, uid: u32) -> Result<AnswerDir> {
        let path = control_dir.join(format!("answer.{}.{}", std::process::id(), random_token()));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
        let dir = AnswerDir { path };
        give_to(&dir.path, uid)?;
        Ok(dir)
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

/// The request file's content: exactly two lines.
pub fn request_content(output: &Path, format: ReportFormat) -> String {
    format!("{}\n{}\n", output.display(), format.as_str())
}

/// Writes `request.<pid>` in `control_dir` atomically (temp file, then rename) and returns its
/// path. An older, unanswered request for the same pid is replaced.
pub fn write_request(
    control_dir: &Path,
    pid: i32,
    uid: u32,
    output: &Path,
    format: ReportFormat,
) -> Result<PathBuf> {
    let final_path = control_dir.join(format!("request.{pid}"));
    let temp_path = control_dir.join(format!("request.{pid}.tmp{}", random_token()));
    let fail = |e: std::io::Error| {
        Failure::new(format!(
            "cannot write the request {}: {e}",
            temp_path.display()
        ))
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp_path)
        .map_err(fail)?;
    let written = file
        .write_all(request_content(output, format).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)
        .and_then(|()| give_to(&temp_path, uid))
        .and_then(|()| {
            fs::rename(&temp_path, &final_path).map_err(|e| {
                Failure::new(format!(
                    "cannot publish the request {}: {e}",
                    final_path.display()
                ))
            })
        });
    if written.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
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

/// Asks `target` for a report in `format` and returns it, waiting at most `timeout`.
pub fn request_report(target: &Target, format: ReportFormat, timeout: Duration) -> Result<Vec<u8>> {
    let control_dir = control_dir_for(target.uid);
    let me = effective_uid();
    if me != 0 && me != target.uid {
        return Err(Failure::new(format!(
            "process {} belongs to uid {}; run `fdguard report` as that user or as root",
            target.pid, target.uid
        )));
    }
    prepare_control_dir(&control_dir, target.uid)?;
    let answer = AnswerDir::create(&control_dir, target.uid)?;
    let output = answer.path().join(format!("report.{}", format.extension()));
    let request = write_request(&control_dir, target.pid, target.uid, &output, format)?;
    let expected_request = request_content(&output, format);
    let withdraw = || {
        // Only remove the request if it is still ours (not a newer one from another fdguard).
        if fs::read_to_string(&request).is_ok_and(|c| c == expected_request) {
            let _ = fs::remove_file(&request);
        }
    };
    if let Err(e) = check_caught(target).and_then(|()| send_signal(target.pid, target.signal)) {
        withdraw();
        return Err(e);
    }
    let started = Instant::now();
    loop {
        match fs::read(&output) {
            // The library renames the finished file into place: if it exists, it is complete.
            Ok(bytes) => return Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failure::new(format!(
                    "cannot read the report {}: {e}",
                    output.display()
                )));
            }
        }
        if !Path::new(&format!("/proc/{}", target.pid)).exists() {
            withdraw();
            return Err(Failure::new(format!(
                "process {} exited before writing the report",
                target.pid
            )));
        }
        if started.elapsed() >= timeout {
            let consumed = !request.exists();
            withdraw();
            let signal = signal_name(target.signal);
            return Err(Failure::new(if consumed {
                format!(
                    "process {} took the request but wrote no report within {:.1}s; it may be \
                     very busy or stuck: try a longer --timeout",
                    target.pid,
                    timeout.as_secs_f64()
                )
            } else {
                format!(
                    "process {} did not answer within {:.1}s: its fdguard reporter never picked \
                     up the request. Does the program block, ignore or take over {signal}? Restart \
                     it with FDGUARD_SIGNAL set to a signal it leaves alone (e.g. SIGUSR2).",
                    target.pid,
                    timeout.as_secs_f64()
                )
            }));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
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
    fn request_file_is_two_lines_and_published_atomically() {
        let base = scratch("request");
        let answer = AnswerDir::create(&base, my_uid()).unwrap();
        let output = answer.path().join("report.json");
        let request = write_request(&base, 4242, my_uid(), &output, ReportFormat::Json).unwrap();
        assert_eq!(request, base.join("request.4242"));
        let content = fs::read_to_string(&request).unwrap();
        assert_eq!(content, format!("{}\njson\n", output.display()));
        assert_eq!(fs::metadata(&request).unwrap().mode() & 0o777, 0o600);
        let leftovers: Vec<_> = fs::read_dir(&base)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let answer_path = answer.path().to_path_buf();
        assert_eq!(fs::metadata(&answer_path).unwrap().mode() & 0o777, 0o700);
        drop(answer);
        assert!(!answer_path.exists(), "the answer dir is removed on drop");
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
}
