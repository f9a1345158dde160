//! The last stage of a report: writing it somewhere, the way a security tool would.
//!
//! - Where (fixed at load, [`settle_sink`]): a relative `FDGUARD_REPORT` is made absolute
//!   against the directory the program started in (a later `chdir()` does not move reports);
//!   a path naming fd 2 (`/dev/stderr`) is stderr; one naming fd 1 is refused (nothing ever
//!   goes to stdout); an existing character device or FIFO of ours or root's
//!   (`/dev/tty`, a named pipe a collector reads) is written to as it is, without the `.<pid>`
//!   suffix or a temporary file.
//! - Files: created next to their final name under a bounded, unpredictable temporary name
//!   (`.fdguard-tmp-` and 16 random hex digits, whatever the final name's length: a name near
//!   NAME_MAX or a planted file cannot block it) with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`,
//!   mode 0600, written fully, then `rename`d over the final name — a reader never sees half a
//!   report, and a symlink planted at the final name is replaced, never followed.
//! - Descriptors that would block (a non-blocking stderr shared with the host, a FIFO with a
//!   slow reader) are waited for with poll, as long as the writing makes progress (at most
//!   [`STALL`] without any): a report is never silently cut at the pipe's 64 KiB.
//! - At the fd limit: fdguard keeps one descriptor in reserve from the moment its thread
//!   starts (a memfd named `fdguard-reserve`, moved to a high number so the host's own
//!   numbering is unchanged). A report releases it while it runs ([`Room`]), so it can still
//!   read /proc, open the binaries it symbolises and create its file, and takes it back after.
//!   The reservation costs the host one descriptor of its budget.
//!
//! Failures come back as one line of text; the caller prints it and falls back to stderr.

use crate::config::Sink;
use crate::platform::fs::{self, Identity};
use crate::platform::{errno::errno, log, process, real};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The user was told that configured reports go to stderr instead (at load by
/// [`check_directory`], or at the first failed write): later failures stay quiet, so a bad
/// FDGUARD_REPORT costs one stderr line, not one per report.
static FALLBACK_TOLD: AtomicBool = AtomicBool::new(false);
/// Longest wait for a descriptor that accepts no byte at all.
pub const STALL: Duration = Duration::from_secs(10);

/// True the first time it is called after no fallback message was printed yet.
pub fn first_fallback_message() -> bool {
    !FALLBACK_TOLD.swap(true, Ordering::Relaxed)
}

fn errno_text(err: i32) -> String {
    std::io::Error::from_raw_os_error(err).to_string()
}

/// Decides, once at load, where configured reports go (see the module documentation).
/// Returns the sink and, when the user should know, one line of explanation.
pub fn settle_sink(sink: Sink) -> (Sink, Option<String>) {
    let Sink::File(template) = sink else {
        return (sink, None);
    };
    if !template.contains('%')
        && let Ok(c_path) = CString::new(template.as_bytes())
        && let Some(Identity {
            dev,
            ino,
            mode,
            uid,
        }) = fs::stat(&c_path)
    {
        let same_as = |fd| fs::fstat(fd).is_some_and(|i| (i.dev, i.ino) == (dev, ino));
        if same_as(2) {
            return (Sink::Stderr, None);
        }
        if same_as(1) {
            return (
                Sink::Stderr,
                Some(format!(
                    "fdguard: FDGUARD_REPORT={template} is standard output, where fdguard never \
                     writes; reports go to stderr"
                )),
            );
        }
        let euid = process::euid();
        let kind = mode & libc::S_IFMT;
        if (kind == libc::S_IFCHR || kind == libc::S_IFIFO) && (uid == euid || uid == 0) {
            return (Sink::Device(absolute(&template)), None);
        }
    }
    (Sink::File(absolute(&template)), None)
}

/// `path` made absolute against the current directory (at load: the program's start).
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    match std::env::current_dir() {
        Ok(cwd) => format!("{}/{path}", cwd.to_string_lossy().trim_end_matches('/')),
        Err(_) => path.to_string(),
    }
}

/// Waits until `fd` accepts data (poll), at most `wait`. Returns false on a timeout or error.
fn wait_writable(fd: i32, wait: Duration) -> bool {
    let ms = wait.as_millis().clamp(1, 1000) as i32;
    let (rc, revents) = fs::poll_one(fd, libc::POLLOUT, ms);
    rc > 0 && revents & (libc::POLLERR | libc::POLLNVAL) == 0
}

/// Writes all of `bytes` to `fd`. A descriptor that would block is waited for while the
/// writing makes progress (at most [`STALL`] without a byte accepted); `progress` is called
/// after every chunk. Returns the errno on failure.
pub fn write_all_fd(fd: i32, bytes: &[u8], progress: &dyn Fn()) -> Result<(), i32> {
    let mut rest = bytes;
    let mut interrupted = 0;
    let mut last_progress = Instant::now();
    while !rest.is_empty() {
        let n = real::write_raw(fd, rest);
        if n > 0 {
            rest = &rest[n as usize..];
            last_progress = Instant::now();
            progress();
            continue;
        }
        let err = if n == 0 { libc::EIO } else { errno() };
        match err {
            libc::EINTR if interrupted < 1000 => interrupted += 1,
            libc::EAGAIN if last_progress.elapsed() < STALL => {
                wait_writable(fd, STALL.saturating_sub(last_progress.elapsed()));
            }
            _ => return Err(err),
        }
    }
    Ok(())
}

/// A bounded, unpredictable temporary name: `.fdguard-tmp-` and 16 hex digits from
/// getrandom (a mix of clock, pid and a counter when it is unavailable).
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 8];
    // Never waits for the entropy pool.
    let value = if fs::random_bytes(&mut bytes) {
        u64::from_ne_bytes(bytes)
    } else {
        let mut h = crate::platform::clock::now_ns()
            ^ (real::getpid_raw() as u64) << 40
            ^ COUNTER
                .fetch_add(1, Ordering::Relaxed)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 33;
        h.wrapping_mul(0xff51_afd7_ed55_8ccd)
    };
    format!(".fdguard-tmp-{value:016x}")
}

/// Atomically creates or replaces `path` with `bytes`, mode 0600. `progress` as for
/// [`write_all_fd`].
pub fn write_file(path: &str, bytes: &[u8], progress: &dyn Fn()) -> Result<(), String> {
    write_file_mode(path, bytes, 0o600, progress)
}

/// [`write_file`] with the file's mode set to exactly `mode`, whatever the umask: metrics files
/// (`agent::metrics`) are 0644 so that node_exporter, running as another user, can read them.
pub fn write_file_mode(
    path: &str,
    bytes: &[u8],
    mode: libc::mode_t,
    progress: &dyn Fn(),
) -> Result<(), String> {
    let final_path = std::path::Path::new(path);
    let dir = match final_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.is_empty() {
        return Err(format!("{path} is not a file name"));
    }
    let c_final =
        CString::new(path.as_bytes()).map_err(|_| format!("{path} contains a NUL byte"))?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let mut attempt = 0;
    let (fd, temp, c_temp) = loop {
        let temp = dir.join(temp_name());
        let c_temp = CString::new(temp.to_string_lossy().as_bytes())
            .map_err(|_| format!("{path} contains a NUL byte"))?;
        let fd = fs::open(&c_temp, flags, 0o600);
        if fd >= 0 {
            break (fd, temp, c_temp);
        }
        let err = errno();
        attempt += 1;
        // Someone planted that name (or is racing us): a fresh random name.
        if err != libc::EEXIST || attempt >= 8 {
            return Err(format!(
                "cannot create {}: {}",
                temp.display(),
                errno_text(err)
            ));
        }
    };
    // Only for a mode other than the one created with: reports keep exactly the behaviour
    // they had (0600 less the umask).
    if mode != 0o600 && fs::fchmod(fd, mode) != 0 {
        let err = errno();
        real::close(fd);
        fs::unlink(&c_temp);
        return Err(format!(
            "cannot set the mode of {path}: {}",
            errno_text(err)
        ));
    }
    let written = write_all_fd(fd, bytes, progress);
    real::close(fd);
    let cleanup = || {
        fs::unlink(&c_temp);
    };
    if let Err(err) = written {
        cleanup();
        return Err(format!("cannot write {path}: {}", errno_text(err)));
    }
    if fs::rename(&c_temp, &c_final) != 0 {
        let err = errno();
        cleanup();
        return Err(format!(
            "cannot rename {} to {path}: {}",
            temp.display(),
            errno_text(err)
        ));
    }
    Ok(())
}

/// Writes `bytes` to the character device or FIFO at `path` (opened non-blocking: a FIFO
/// without a reader is an error at once, never a hang).
pub fn write_device(path: &str, bytes: &[u8], progress: &dyn Fn()) -> Result<(), String> {
    let c_path =
        CString::new(path.as_bytes()).map_err(|_| format!("{path} contains a NUL byte"))?;
    let flags = libc::O_WRONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let fd = fs::open(&c_path, flags, 0);
    if fd < 0 {
        return Err(format!("cannot open {path}: {}", errno_text(errno())));
    }
    let written = write_all_fd(fd, bytes, progress);
    real::close(fd);
    written.map_err(|err| format!("cannot write {path}: {}", errno_text(err)))
}

/// Checks, at load, that reports could be written next to `path` (the directory exists and is
/// writable). Returns the reason when not.
pub fn check_directory(path: &str) -> Result<(), String> {
    let dir = match std::path::Path::new(path).parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let c_dir = CString::new(dir.to_string_lossy().as_bytes())
        .map_err(|_| "the path contains a NUL byte".to_string())?;
    if fs::access(&c_dir, libc::W_OK | libc::X_OK) != 0 {
        FALLBACK_TOLD.store(true, Ordering::Relaxed);
        return Err(format!(
            "directory {} is not writable: {}",
            dir.display(),
            errno_text(errno())
        ));
    }
    Ok(())
}

/// The reserved descriptor (-1: none) and the identity that proves it is still ours (a host
/// that closes every fd above 2 may have reused the number).
static RESERVED: AtomicI32 = AtomicI32::new(-1);
static RESERVED_DEV: AtomicU64 = AtomicU64::new(0);
static RESERVED_INO: AtomicU64 = AtomicU64::new(0);
/// Reports running with the reservation released.
static ROOMS: AtomicUsize = AtomicUsize::new(0);

/// Takes the reserved descriptor if fdguard holds none (the `fdguard` thread's start, and
/// after each report). Best effort: at the fd limit it is taken at the next chance.
pub fn reserve_fd() {
    if RESERVED.load(Ordering::Acquire) >= 0 || ROOMS.load(Ordering::Acquire) > 0 {
        return;
    }
    // MFD_CLOEXEC keeps it out of exec'd programs.
    let fd = fs::memfd_create(c"fdguard-reserve", libc::MFD_CLOEXEC);
    if fd < 0 {
        return;
    }
    // Far from the numbers the host uses, without growing its fd table past 1024 entries.
    let (soft, _) = crate::platform::kernel::nofile_limit();
    let high = soft.clamp(4, 1024) as i32 - 1;
    let moved = real::dup_cloexec_at_least(fd, high);
    let fd = if moved >= 0 {
        real::close(fd);
        moved
    } else {
        fd
    };
    let Some(Identity { dev, ino, .. }) = fs::fstat(fd) else {
        real::close(fd);
        return;
    };
    RESERVED_DEV.store(dev, Ordering::Relaxed);
    RESERVED_INO.store(ino, Ordering::Relaxed);
    if RESERVED
        .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        real::close(fd);
    }
}

/// The reservation released for the time a report runs; taken back when the last one drops.
/// Nested rooms (a request read, then its report) release it once.
pub struct Room {
    _private: (),
}

impl Room {
    /// Releases the reserved descriptor, if fdguard holds one and it is still ours.
    pub fn open() -> Room {
        ROOMS.fetch_add(1, Ordering::AcqRel);
        let fd = RESERVED.swap(-1, Ordering::AcqRel);
        if fd >= 0 {
            let ours = fs::fstat(fd).is_some_and(|i| {
                i.dev == RESERVED_DEV.load(Ordering::Relaxed)
                    && i.ino == RESERVED_INO.load(Ordering::Relaxed)
            });
            if ours {
                real::close(fd);
                RELEASED.store(true, Ordering::Release);
            }
        }
        Room { _private: () }
    }
}

/// The reservation is released right now: a count of open fds taken now misses it.
static RELEASED: AtomicBool = AtomicBool::new(false);

/// 1 while the reservation is released for a report (it is one of the process's fds all the
/// same: the fd budget counts it), else 0.
pub fn released_reservation() -> u64 {
    u64::from(RELEASED.load(Ordering::Acquire))
}

impl Drop for Room {
    fn drop(&mut self) {
        if ROOMS.fetch_sub(1, Ordering::AcqRel) == 1 {
            RELEASED.store(false, Ordering::Release);
            reserve_fd();
        }
    }
}

/// Fork child: a report that had the reservation released in the parent does not exist here.
/// The child's reservation is taken again when its thread starts.
pub fn after_fork_in_child() {
    ROOMS.store(0, Ordering::Release);
    RELEASED.store(false, Ordering::Release);
}

/// The per-user runtime directory (`fdguard_report::request::channel_dir` of our effective
/// uid), created mode 0700 if missing and used only if it is ours: a real directory owned by
/// our euid or root and writable by nobody else. Created only when a report has nowhere else
/// to go.
fn runtime_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let euid = process::euid();
    let dir = fdguard_report::request::channel_dir(euid);
    // Never more than the last component: /run/user/<uid> (ours, checked) or /tmp exist.
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    fdguard_report::request::directory_trusted(
        meta.file_type().is_dir(),
        meta.uid(),
        meta.mode(),
        euid,
    )
    .then_some(dir)
}

/// Writes a report that could not go where configured into the per-user runtime directory
/// (`name` inside it, created as [`write_file`] creates every report). Returns the path written.
pub fn write_to_runtime_dir(name: &str, bytes: &[u8], progress: &dyn Fn()) -> Option<String> {
    let dir = runtime_dir()?;
    let path = dir.join(name).to_string_lossy().into_owned();
    write_file(&path, bytes, progress).ok().map(|()| path)
}

/// Writes `bytes` to stderr if it is still the stderr fdguard saw at load (see `log`),
/// waiting for a non-blocking one as [`write_all_fd`] does.
pub fn write_stderr(bytes: &[u8], progress: &dyn Fn()) -> bool {
    log::stderr_is_ours() && write_all_fd(2, bytes, progress).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_bounded_and_differ() {
        let a = temp_name();
        let b = temp_name();
        assert_eq!(a.len(), ".fdguard-tmp-".len() + 16);
        assert_ne!(a, b);
    }

    #[test]
    fn relative_paths_become_absolute() {
        assert_eq!(absolute("/x/y"), "/x/y");
        let made = absolute("r-%p.json");
        assert!(
            made.starts_with('/') && made.ends_with("/r-%p.json"),
            "{made}"
        );
    }
}
