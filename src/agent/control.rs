//! The report-request channel, library side: `fdguard report PID` asks without a signal. The
//! grammar (directory, file names, the request's fields, the answer's name) is written once in
//! [`fdguard_report::request`]; this module only follows it.
//!
//! The `fdguard` thread calls [`Channel::poll`] every [`request::POLL_MS`] ms: one `lstat` of a
//! fixed path (no descriptor, nothing created, nothing the host can see). Only when a request
//! is there does it open anything ([`Channel::take`]). The directory is named from the
//! process's effective uid (re-read at every poll: a worker that dropped privileges asks in
//! its new user's directory), never from the environment.
//!
//! What is refused, silently (the asker times out and says why it may have): a channel
//! directory that is a symlink, owned by anyone but our euid or root, or writable by group or
//! others; a request that is not a regular file owned by our euid or root; a malformed
//! request; an output path outside `<channel dir>/answer.*/`.

use crate::config::Format;
use crate::platform::{fs, process};
use fdguard_report::request::{self, RequestFormat};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

/// A request taken from the channel.
pub struct Request {
    pub path: String,
    pub format: Format,
}

/// Where this process looks for requests; owned by the `fdguard` thread.
pub struct Channel {
    euid: u32,
    pid: i32,
    dir: PathBuf,
    /// `<dir>/request.<pid>`, ready for lstat.
    request: Option<CString>,
    polls: u32,
}

impl Default for Channel {
    fn default() -> Self {
        Self::new()
    }
}

impl Channel {
    /// Decided at the first poll.
    pub fn new() -> Channel {
        Channel {
            euid: u32::MAX,
            pid: 0,
            dir: PathBuf::new(),
            request: None,
            polls: 0,
        }
    }

    /// Re-decides the directory when our euid or pid changed, and every
    /// [`request::RECHECK_POLLS`] polls (a runtime directory may appear or go).
    fn refresh(&mut self) {
        let euid = process::euid();
        let pid = process::pid();
        self.polls = self.polls.wrapping_add(1);
        if euid == self.euid
            && pid == self.pid
            && self.request.is_some()
            && !self.polls.is_multiple_of(request::RECHECK_POLLS)
        {
            return;
        }
        self.euid = euid;
        self.pid = pid;
        self.dir = request::channel_dir(euid);
        let path = self.dir.join(request::request_file_name(pid));
        self.request = CString::new(path.as_os_str().as_bytes()).ok();
    }

    /// True when a request for this process may be waiting (one lstat).
    pub fn poll(&mut self) -> bool {
        self.refresh();
        self.poll_inner()
    }

    fn poll_inner(&self) -> bool {
        self.request.as_deref().is_some_and(fs::exists_no_follow)
    }

    /// Takes (reads, then removes) the request addressed to this process, if a valid one is
    /// there. Needs a descriptor: at the fd limit, hold a `report::write::Room` around it.
    pub fn take(&mut self) -> Option<Request> {
        self.refresh();
        self.take_inner()
    }

    fn take_inner(&self) -> Option<Request> {
        let uid = self.euid;
        let meta = std::fs::symlink_metadata(&self.dir).ok()?;
        if !request::directory_trusted(meta.file_type().is_dir(), meta.uid(), meta.mode(), uid) {
            return None;
        }
        let path = self.dir.join(request::request_file_name(self.pid));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&path)
            .ok()?;
        let meta = file.metadata().ok()?;
        if !meta.file_type().is_file() || (meta.uid() != uid && meta.uid() != 0) {
            return None;
        }
        let mut text = String::new();
        let read = file
            .by_ref()
            .take(request::MAX_REQUEST_BYTES)
            .read_to_string(&mut text);
        drop(file);
        // Consumed, valid or not: a bad request must not be read again every poll.
        if let Some(c_path) = &self.request {
            fs::unlink(c_path);
        }
        read.ok()?;
        let parsed = request::Request::parse(&text)?;
        if !request::output_allowed(&self.dir, &parsed.output) {
            return None;
        }
        Some(Request {
            path: parsed.output,
            format: match parsed.format {
                RequestFormat::Text => Format::Text,
                RequestFormat::Json => Format::Json,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fdguard-control-lib-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    /// A channel pointed at `dir` (the tests never call `refresh`, which would re-decide it).
    fn channel_at(dir: &std::path::Path) -> Channel {
        let euid = process::euid();
        let pid = std::process::id() as i32;
        let path = dir.join(request::request_file_name(pid));
        Channel {
            euid,
            pid,
            dir: dir.to_path_buf(),
            request: CString::new(path.as_os_str().as_bytes()).ok(),
            polls: 1,
        }
    }

    #[test]
    fn takes_a_valid_request_once_and_refuses_outputs_elsewhere() {
        let dir = scratch("valid");
        let c = channel_at(&dir);
        assert!(!c.poll_inner());
        let output = dir.join("answer.1.ab/report.1.json");
        let body = request::Request {
            output: output.display().to_string(),
            format: RequestFormat::Json,
        }
        .render();
        let file = dir.join(request::request_file_name(c.pid));
        std::fs::write(&file, &body).unwrap();
        assert!(c.poll_inner());
        let taken = c.take_inner().expect("a valid request");
        assert_eq!(
            (taken.path, taken.format),
            (output.display().to_string(), Format::Json)
        );
        assert!(!file.exists(), "consumed");
        assert!(c.take_inner().is_none());

        std::fs::write(
            &file,
            "fdguard-request 1\noutput /etc/answer.1/passwd\nformat text\n",
        )
        .unwrap();
        assert!(
            c.take_inner().is_none(),
            "an output outside the channel dir"
        );
        assert!(!file.exists(), "a refused request is consumed too");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_a_writable_directory() {
        let dir = scratch("writable");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let c = channel_at(&dir);
        let file = dir.join(request::request_file_name(c.pid));
        std::fs::write(
            &file,
            format!(
                "fdguard-request 1\noutput {}/answer.1/r.txt\n",
                dir.display()
            ),
        )
        .unwrap();
        assert!(c.take_inner().is_none());
        assert!(
            file.exists(),
            "nothing is touched in an untrusted directory"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
