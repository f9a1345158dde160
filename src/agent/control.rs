//! The on-demand report protocol used by `fdguard report PID`.
//!
//! The CLI writes `/tmp/fdguard-<uid>/request.<pid>` (two lines: an absolute output path and
//! `text` or `json`) and sends the report signal. On that signal the `fdguard` thread consumes
//! the request and writes the report to that path, so a process whose reports normally go to
//! its own stderr can still answer. The directory must be a real directory (not a symlink)
//! owned by our user or root and not writable by group or others; the request must be a
//! regular file owned by our user or root. Anything else is ignored.
#![allow(unsafe_code)]

use crate::config::Format;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

/// A pending request.
pub struct Request {
    pub path: String,
    pub format: Format,
}

/// The control directory for processes of user `uid`.
pub fn directory(uid: u32) -> String {
    format!("/tmp/fdguard-{uid}")
}

/// Takes (reads and removes) the request addressed to `pid`, if a valid one exists.
pub fn take_request(pid: i32) -> Option<Request> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let dir = directory(uid);
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let trusted_owner = |owner: u32| owner == uid || owner == 0;
    if !meta.file_type().is_dir() || !trusted_owner(meta.uid()) || meta.mode() & 0o022 != 0 {
        return None;
    }
    let path = format!("{dir}/request.{pid}");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_file() || !trusted_owner(meta.uid()) {
        return None;
    }
    let mut text = String::new();
    file.by_ref().take(4096).read_to_string(&mut text).ok()?;
    drop(file);
    if let Ok(c_path) = CString::new(path) {
        // SAFETY: valid C string.
        unsafe { libc::unlink(c_path.as_ptr()) };
    }
    parse(&text)
}

/// Parses a request's text.
pub fn parse(text: &str) -> Option<Request> {
    let mut lines = text.lines();
    let path = lines.next()?.trim().to_string();
    if !path.starts_with('/') {
        return None;
    }
    let format = match lines.next().map(str::trim) {
        Some("json") => Format::Json,
        _ => Format::Text,
    };
    Some(Request { path, format })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_and_rejects_relative_paths() {
        let r = parse("/tmp/x/report.json\njson\n").unwrap();
        assert_eq!(
            (r.path.as_str(), r.format),
            ("/tmp/x/report.json", Format::Json)
        );
        assert_eq!(parse("/tmp/r\n").unwrap().format, Format::Text);
        assert!(parse("relative/path\ntext\n").is_none());
        assert!(parse("").is_none());
    }
}
