//! The last stage of a report: writing it somewhere, the way a security tool would.
//!
//! Files: created next to their final name with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`, mode
//! 0600, written fully, then `rename`d over the final name — a reader never sees half a report,
//! and a symlink planted at the final name is replaced, never followed. Failures come back as
//! one line of text; the caller prints it and falls back to stderr.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
/// The user was told that configured reports go to stderr instead (at load by
/// [`check_directory`], or at the first failed write): later failures stay quiet, so a bad
/// FDGUARD_REPORT costs one stderr line, not one per report.
static FALLBACK_TOLD: AtomicBool = AtomicBool::new(false);

/// True the first time it is called after no fallback message was printed yet.
pub fn first_fallback_message() -> bool {
    !FALLBACK_TOLD.swap(true, Ordering::Relaxed)
}

fn errno_text(err: i32) -> String {
    std::io::Error::from_raw_os_error(err).to_string()
}

/// Writes all of `bytes` to `fd`. Returns the errno on failure.
pub fn write_all_fd(fd: i32, bytes: &[u8]) -> Result<(), i32> {
    let mut rest = bytes;
    let mut interrupted = 0;
    while !rest.is_empty() {
        let n = crate::platform::real::write_raw(fd, rest);
        if n > 0 {
            rest = &rest[n as usize..];
        } else if n < 0 && crate::platform::errno::errno() == libc::EINTR && interrupted < 1000 {
            interrupted += 1;
        } else {
            return Err(if n == 0 {
                libc::EIO
            } else {
                crate::platform::errno::errno()
            });
        }
    }
    Ok(())
}

/// Atomically creates or replaces `path` with `bytes`, mode 0600.
pub fn write_file(path: &str, bytes: &[u8]) -> Result<(), String> {
    write_file_mode(path, bytes, 0o600)
}

/// [`write_file`] with the file's mode set to exactly `mode`, whatever the umask: metrics files
/// (`agent::metrics`) are 0644 so that node_exporter, running as another user, can read them.
pub fn write_file_mode(path: &str, bytes: &[u8], mode: libc::mode_t) -> Result<(), String> {
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
    let temp = dir.join(format!(
        ".{name}.fdguard-tmp.{}.{}",
        crate::platform::process::pid(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let c_temp = CString::new(temp.to_string_lossy().as_bytes())
        .map_err(|_| format!("{path} contains a NUL byte"))?;
    let c_final =
        CString::new(path.as_bytes()).map_err(|_| format!("{path} contains a NUL byte"))?;
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `c_temp` is a valid C string; open with O_CREAT takes the mode as third argument.
    let fd = unsafe { libc::open(c_temp.as_ptr(), flags, 0o600 as libc::c_uint) };
    if fd < 0 {
        return Err(format!(
            "cannot create {}: {}",
            temp.display(),
            errno_text(crate::platform::errno::errno())
        ));
    }
    // SAFETY: fchmod on the fd just opened. Only for a mode other than the one created with:
    // reports keep exactly the behaviour they had (0600 less the umask).
    if mode != 0o600 && unsafe { libc::fchmod(fd, mode) } != 0 {
        let err = crate::platform::errno::errno();
        crate::platform::real::close(fd);
        // SAFETY: `c_temp` is a valid C string.
        unsafe { libc::unlink(c_temp.as_ptr()) };
        return Err(format!(
            "cannot set the mode of {path}: {}",
            errno_text(err)
        ));
    }
    let written = write_all_fd(fd, bytes);
    crate::platform::real::close(fd);
    let cleanup = || {
        // SAFETY: `c_temp` is a valid C string.
        unsafe { libc::unlink(c_temp.as_ptr()) };
    };
    if let Err(err) = written {
        cleanup();
        return Err(format!("cannot write {path}: {}", errno_text(err)));
    }
    // SAFETY: both are valid C strings.
    if unsafe { libc::rename(c_temp.as_ptr(), c_final.as_ptr()) } != 0 {
        let err = crate::platform::errno::errno();
        cleanup();
        return Err(format!(
            "cannot rename the report to {path}: {}",
            errno_text(err)
        ));
    }
    Ok(())
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
    // SAFETY: valid C string.
    if unsafe { libc::access(c_dir.as_ptr(), libc::W_OK | libc::X_OK) } != 0 {
        FALLBACK_TOLD.store(true, Ordering::Relaxed);
        return Err(format!(
            "directory {} is not writable: {}",
            dir.display(),
            errno_text(crate::platform::errno::errno())
        ));
    }
    Ok(())
}
