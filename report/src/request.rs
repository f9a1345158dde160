//! The report-request channel: how `fdguard report PID` asks a process running with
//! `libfdguard.so` for a report without any signal. Written down ONCE, here, for both sides:
//! the library (`src/agent/control.rs`, which answers) and the CLI (`cli/src/control.rs`,
//! which asks).
//!
//! - **Where**: a per-user directory, named from the process's EFFECTIVE uid by the library
//!   itself, never from its environment (a host may rewrite or clear it):
//!   `/run/user/<uid>/fdguard/` when `/run/user/<uid>` is a real directory owned by that uid
//!   and writable by nobody else (systemd-logind's runtime directory), else
//!   `/tmp/fdguard-<uid>/` ([`channel_dir`]). The channel directory itself must be a real
//!   directory (not a symlink) owned by that uid or root, not writable by group or others
//!   ([`directory_trusted`]); the library ignores anything else and creates nothing there.
//! - **Request**: the file `request.<pid>` ([`request_file_name`]), `<pid>` as the process
//!   itself sees it (getpid), a regular file owned by the uid or root, at most
//!   [`MAX_REQUEST_BYTES`], with the lines of [`Request::render`]:
//!   ```text
//!   fdguard-request 1
//!   output /tmp/fdguard-1000/answer.4242.0123456789abcdef/report.777.json
//!   format json
//!   ```
//!   The first line names the grammar's version; then `key value` lines (unknown keys are
//!   ignored, so later versions can add some). `output` is required: an absolute path of the
//!   form `<channel dir>/answer.<…>/<file>` ([`output_allowed`]); `format` is `text` (the
//!   default) or `json`. The asker publishes the request atomically and without replacing
//!   another asker's (a temporary name [`temp_request_name`], then `link`).
//! - **Answer**: the library takes the request (reads it, then unlinks it) and writes the
//!   report to `output` the way it writes every report file (a temporary name in the same
//!   directory, mode 0600, renamed into place): when the file exists it is complete. The
//!   asker names its private answer directory [`answer_dir_name`] (mode 0700, owned by the
//!   target's uid) and the file [`answer_file_name`]; it removes both when done.
//! - **When**: the library's `fdguard` thread looks for `request.<pid>` every [`POLL_MS`]
//!   milliseconds (one `access(2)` of a fixed path: no descriptor, nothing created), so an
//!   answer starts at most that long after the request is published. The report signal, when
//!   the asker sends one (`fdguard report --signal`), only wakes it sooner.

use std::path::{Path, PathBuf};

/// The grammar's first line.
pub const HEADER: &str = "fdguard-request 1";
/// Largest request file the library reads.
pub const MAX_REQUEST_BYTES: u64 = 4096;
/// How often the library's `fdguard` thread looks for a request, in milliseconds.
pub const POLL_MS: u64 = 250;
/// How often the library re-decides between `/run/user/<uid>/fdguard` and `/tmp/fdguard-<uid>`
/// (in polls): a runtime directory that appears (a login) is used within this many polls.
pub const RECHECK_POLLS: u32 = 16;

/// The format a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// The LeakSanitizer-style text report.
    Text,
    /// The JSON report (schema_version 1).
    Json,
}

impl RequestFormat {
    /// The spelling in a request.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestFormat::Text => "text",
            RequestFormat::Json => "json",
        }
    }

    /// The answer file's extension.
    pub fn extension(self) -> &'static str {
        match self {
            RequestFormat::Text => "txt",
            RequestFormat::Json => "json",
        }
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Absolute path the report is written to.
    pub output: String,
    /// The report's format.
    pub format: RequestFormat,
}

impl Request {
    /// The request file's content.
    pub fn render(&self) -> String {
        format!(
            "{HEADER}\noutput {}\nformat {}\n",
            self.output,
            self.format.as_str()
        )
    }

    /// Parses a request file's content; `None` when it is not a valid request (wrong header,
    /// no absolute `output`, an unknown format, a NUL byte).
    pub fn parse(text: &str) -> Option<Request> {
        if text.contains('\0') {
            return None;
        }
        let mut lines = text.lines();
        if lines.next()?.trim_end() != HEADER {
            return None;
        }
        let mut output = None;
        let mut format = RequestFormat::Text;
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "output" => output = Some(value.to_string()),
                "format" => {
                    format = match value.trim() {
                        "text" => RequestFormat::Text,
                        "json" => RequestFormat::Json,
                        _ => return None,
                    }
                }
                _ => {}
            }
        }
        let output = output.filter(|o| o.starts_with('/'))?;
        Some(Request { output, format })
    }
}

/// `/run/user/<uid>`: systemd-logind's per-user runtime directory.
pub fn run_user_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/run/user/{uid}"))
}

/// `/tmp/fdguard-<uid>`: the channel directory when there is no usable runtime directory.
pub fn tmp_channel_dir(uid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/fdguard-{uid}"))
}

/// The owner and mode rule for the channel directory (and for `/run/user/<uid>`): a real
/// directory, owned by `uid` or root, writable by nobody else. Anyone who could write there
/// could forge requests and redirect reports.
pub fn directory_trusted(is_dir: bool, owner: u32, mode: u32, uid: u32) -> bool {
    is_dir && (owner == uid || owner == 0) && mode & 0o022 == 0
}

/// The channel directory of processes whose effective uid is `uid` (see the module
/// documentation). One `lstat` of `/run/user/<uid>`.
pub fn channel_dir(uid: u32) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let run = run_user_dir(uid);
    match std::fs::symlink_metadata(&run) {
        // Owned by the user itself (not merely root): logind's directory, private to them.
        Ok(m) if m.file_type().is_dir() && m.uid() == uid && m.mode() & 0o022 == 0 => {
            run.join("fdguard")
        }
        _ => tmp_channel_dir(uid),
    }
}

/// `request.<pid>`.
pub fn request_file_name(pid: i32) -> String {
    format!("request.{pid}")
}

/// The temporary name a request is written under before it is linked into place:
/// `.request.<pid>.<token>` (a dot first: never mistaken for a request).
pub fn temp_request_name(pid: i32, token: &str) -> String {
    format!(".request.{pid}.{token}")
}

/// The asker's private answer directory: `answer.<asker's pid>.<token>`.
pub fn answer_dir_name(asker_pid: u32, token: &str) -> String {
    format!("answer.{asker_pid}.{token}")
}

/// The answer file inside it: `report.<pid>.<txt|json>`.
pub fn answer_file_name(pid: i32, format: RequestFormat) -> String {
    format!("report.{pid}.{}", format.extension())
}

/// True when `output` is where an answer may go: `<dir>/answer.<name>/<file>`, nothing else
/// (no `..`, no deeper path), so a request can only ever have a report written inside the
/// channel directory it came through.
pub fn output_allowed(dir: &Path, output: &str) -> bool {
    let output = Path::new(output);
    let Some(file) = output.file_name().and_then(|f| f.to_str()) else {
        return false;
    };
    let Some(answer) = output.parent() else {
        return false;
    };
    let answer_ok = answer
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("answer.") && n != "answer." && !n.contains(".."));
    answer_ok
        && answer.parent() == Some(dir)
        && !file.starts_with('.')
        && output
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips() {
        let r = Request {
            output: "/tmp/fdguard-7/answer.1.ab/report.42.json".into(),
            format: RequestFormat::Json,
        };
        let text = r.render();
        assert_eq!(
            text,
            "fdguard-request 1\noutput /tmp/fdguard-7/answer.1.ab/report.42.json\nformat json\n"
        );
        assert_eq!(Request::parse(&text), Some(r));
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert_eq!(Request::parse(""), None);
        assert_eq!(
            Request::parse("/tmp/x\njson\n"),
            None,
            "the old two-line form"
        );
        assert_eq!(Request::parse("fdguard-request 1\nformat json\n"), None);
        assert_eq!(
            Request::parse("fdguard-request 1\noutput relative/x\n"),
            None
        );
        assert_eq!(
            Request::parse("fdguard-request 1\noutput /a/b\nformat xml\n"),
            None
        );
        assert_eq!(Request::parse("fdguard-request 1\noutput /a\0/b\n"), None);
        assert_eq!(Request::parse("fdguard-request 2\noutput /a/b\n"), None);
        // Unknown keys are for later versions; the default format is text.
        let r = Request::parse("fdguard-request 1\nwho me\noutput /a b/c\n").unwrap();
        assert_eq!(
            (r.output.as_str(), r.format),
            ("/a b/c", RequestFormat::Text)
        );
    }

    #[test]
    fn answers_stay_inside_the_channel_directory() {
        let dir = Path::new("/tmp/fdguard-7");
        assert!(output_allowed(
            dir,
            "/tmp/fdguard-7/answer.1.ab/report.42.json"
        ));
        assert!(!output_allowed(dir, "/tmp/fdguard-7/report.42.json"));
        assert!(!output_allowed(dir, "/tmp/fdguard-7/x/report.42.json"));
        assert!(!output_allowed(dir, "/tmp/fdguard-7/answer.1/../../etc/x"));
        assert!(!output_allowed(dir, "/tmp/fdguard-7/answer.1/d/report"));
        assert!(!output_allowed(dir, "/etc/answer.1/passwd"));
        assert!(!output_allowed(dir, "/tmp/fdguard-7/answer.1/.hidden"));
        assert!(!output_allowed(dir, "/tmp/fdguard-7/answer../x"));
    }

    #[test]
    fn names() {
        assert_eq!(request_file_name(42), "request.42");
        assert_eq!(temp_request_name(42, "ab"), ".request.42.ab");
        assert_eq!(answer_dir_name(7, "ab"), "answer.7.ab");
        assert_eq!(answer_file_name(42, RequestFormat::Text), "report.42.txt");
        assert_eq!(tmp_channel_dir(0), Path::new("/tmp/fdguard-0"));
        assert!(directory_trusted(true, 7, 0o40700, 7));
        assert!(directory_trusted(true, 0, 0o40755, 7));
        assert!(!directory_trusted(true, 8, 0o40700, 7));
        assert!(!directory_trusted(true, 7, 0o40770, 7));
        assert!(!directory_trusted(false, 7, 0o100600, 7));
    }

    #[test]
    fn without_a_runtime_directory_the_channel_is_in_tmp() {
        // No uid this large has a logind directory.
        assert_eq!(channel_dir(3_999_999), tmp_channel_dir(3_999_999));
    }
}
