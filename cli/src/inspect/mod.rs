//! `fdguard inspect PID…`: a socket report of any running process, taken from outside — no
//! LD_PRELOAD, no restart, nothing injected. The kernel's view (`/proc/PID/fd` joined with the
//! sock_diag dumps `ss` uses, see the `fdguard-diag` crate) becomes a `fdguard_report::Report`
//! with `collector: inspect`, judged by the library's own detectors and rendered by its own
//! text renderer, so it reads like any other fdguard report; only the creating stacks are
//! missing (`origin: observed`).
//!
//! - [`collect`]: one look at the process (the only part that touches the kernel).
//! - [`build`]: the look as report sockets (roles, addresses, TCP states and dates).
//! - here: the report around them, errors worded for the user, and the command itself.

pub mod build;
pub mod collect;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use fdguard_diag::Error as DiagError;
use fdguard_report::detect::suppress::{self, Rule};
use fdguard_report::detect::{self, Settings};
use fdguard_report::{Collector, FdBudget, Report, SCHEMA_VERSION, Summary, Trigger, text};

use crate::ReportFormat;
use crate::error::{EXIT_NO_PROCESS, EXIT_OK, EXIT_PERMISSION, EXIT_UNSUPPORTED, Failure, Result};
use crate::style;
use build::History;
use collect::{LookError, Observation, Phase};

/// How sockets are judged: the library's settings, with the same defaults.
#[derive(Debug, Clone)]
pub struct Judging {
    /// `peer_closed` after this many seconds (the library's `FDGUARD_GRACE_MS`).
    pub grace_s: f64,
    /// Client connections to one backend that make a `duplicate_backend` group.
    pub dup_min: usize,
    /// Suppression rules.
    pub rules: Vec<Rule>,
}

impl Default for Judging {
    fn default() -> Judging {
        let settings = Settings::default();
        Judging {
            grace_s: settings.grace_s,
            dup_min: settings.dup_min,
            rules: Vec::new(),
        }
    }
}

impl Judging {
    /// Reads a suppressions file (same grammar as `FDGUARD_SUPPRESSIONS`); each line it does
    /// not understand costs one warning on stderr.
    pub fn load_suppressions(&mut self, path: &Path) -> Result<()> {
        let content = std::fs::read_to_string(path).map_err(|e| {
            Failure::new(format!(
                "cannot read the suppressions file {}: {e}",
                path.display()
            ))
        })?;
        let (rules, warnings) = suppress::parse(&content);
        for warning in warnings {
            eprintln!("{warning}");
        }
        self.rules = rules;
        Ok(())
    }
}

/// Options of `fdguard inspect`.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// Processes to inspect.
    pub pids: Vec<i32>,
    /// Output format.
    pub format: ReportFormat,
    /// How sockets are judged.
    pub judging: Judging,
    /// Write there instead of standard output.
    pub output: Option<PathBuf>,
}

/// The user-facing failure for a look that could not be taken.
pub fn failure(pid: i32, error: LookError) -> Failure {
    match error {
        LookError::NoSuchProcess => {
            Failure::with_code(format!("no process with pid {pid}"), EXIT_NO_PROCESS)
        }
        LookError::Zombie => Failure::with_code(
            format!(
                "process {pid} has exited (a zombie waiting for its parent to reap it); it holds no sockets"
            ),
            EXIT_NO_PROCESS,
        ),
        LookError::ExitedDuringLook => Failure::with_code(
            format!("process {pid} exited during the inspection; nothing to report"),
            EXIT_NO_PROCESS,
        ),
        LookError::Diag(DiagError::NoSuchProcess { .. }) => {
            Failure::with_code(format!("no process with pid {pid}"), EXIT_NO_PROCESS)
        }
        LookError::Diag(DiagError::PermissionDenied { what }) => {
            let owner = owner_uid(pid);
            let me = fdguard_diag::procfs::effective_uid();
            let whose = owner
                .map(|uid| format!(" (it belongs to uid {uid})"))
                .unwrap_or_default();
            let remedy = if me == 0 || Some(me) == owner {
                "this system restricts access to it (ptrace access checks: a non-dumpable \
                 process, a container without CAP_SYS_PTRACE, or Yama's ptrace_scope)"
            } else {
                "run fdguard as the process's user or as root"
            };
            Failure::with_code(
                format!(
                    "permission denied {what}: you may not inspect process {pid}{whose}; {remedy}"
                ),
                EXIT_PERMISSION,
            )
        }
        LookError::Diag(DiagError::Unsupported { what, error }) => Failure::with_code(
            format!(
                "this kernel does not provide {what} ({error}); fdguard inspect needs sock_diag \
                 with inet_diag and tcp_diag (CONFIG_INET_DIAG, CONFIG_INET_TCP_DIAG), as `ss` does"
            ),
            EXIT_UNSUPPORTED,
        ),
        LookError::Diag(other) => Failure::new(format!("cannot inspect process {pid}: {other}")),
    }
}

/// The uid a process runs as (`/proc/PID/status` is world-readable).
fn owner_uid(pid: i32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The `fdguard report PID` hint for a process that has the library loaded.
pub fn library_hint(pid: i32) -> String {
    format!(
        "libfdguard.so is loaded in process {pid}: `fdguard report {pid}` gives the full report, \
         with the stack that created each socket"
    )
}

/// The report of one look. `seq` numbers looks at one process (1 for `inspect`).
pub fn report(observation: &Observation, history: &History, judging: &Judging, seq: u64) -> Report {
    let info = &observation.info;
    let built = build::sockets(observation, history);
    let settings = Settings {
        grace_s: judging.grace_s,
        dup_min: judging.dup_min,
        ..Settings::default()
    };
    let findings = detect::run(&built.sockets, &settings);
    let mut notes = vec![
        "seen from outside by fdguard inspect: no creating stacks or threads; ages and hang-up \
         times are lower bounds from the kernel's TCP clocks (0 where it keeps none)"
            .to_string(),
    ];
    if observation.has_library {
        notes.push(library_hint(info.pid));
    }
    if !built.undated_close.is_empty() {
        let fds: Vec<String> = built
            .undated_close
            .iter()
            .map(|fd| fd.to_string())
            .collect();
        notes.push(format!(
            "fd {}: TCP connection(s) in state CLOSE (reset by the peer, or a failed connect) still \
             held; `ss -tan` cannot list them. One look cannot tell since when: `fdguard watch {}` \
             dates them and flags them once past the grace period",
            fds.join(", "),
            info.pid
        ));
    }
    if !built.unknown.is_empty() {
        let what: Vec<String> = built
            .unknown
            .iter()
            .map(|(fd, why)| format!("fd {fd} ({why})"))
            .collect();
        notes.push(format!(
            "{} socket fd(s) could not be identified: {}",
            built.unknown.len(),
            what.join("; ")
        ));
    }
    if observation.other_namespace {
        notes.push(
            "the process lives in another network namespace: its sockets were read through \
             copies of its fds (pidfd_getfd) where permitted"
                .to_string(),
        );
    }
    for missing in &observation.missing_dumps {
        notes.push(format!(
            "this kernel does not offer {missing}: those sockets were read through copies of \
             their fds where permitted"
        ));
    }
    let sockets_open = observation
        .fds
        .iter()
        .filter(|f| f.socket_inode.is_some())
        .count() as u64;
    let program = info
        .exe
        .clone()
        .or_else(|| info.cmdline.first().cloned())
        .unwrap_or_else(|| info.comm.clone());
    let live = built.sockets.len() as u64;
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        tool: format!("fdguard {}", env!("CARGO_PKG_VERSION")),
        collector: Collector::Inspect,
        pid: info.pid,
        program,
        cmdline: info.cmdline.clone(),
        // No report trigger fits a look from outside; `collector: inspect` says what it was.
        trigger: Trigger::Inspect,
        seq,
        time_unix_ms: observation.time_unix_ms,
        uptime_s: info.uptime_s,
        fd_budget: FdBudget {
            open_fds: observation.fds.len() as u64,
            limit_soft: info.nofile.0,
            limit_hard: info.nofile.1,
            sockets_open,
            sockets_tracked: live,
        },
        sockets: built.sockets,
        findings,
        recently_closed: Vec::new(),
        suppressions_used: Vec::new(),
        checkpoints: Vec::new(),
        notes,
        summary: Summary {
            live_sockets: live,
            stacks: 0,
            ..Summary::default()
        },
    };
    if !judging.rules.is_empty() {
        suppress::apply(&mut report, &judging.rules);
    }
    detect::summarize(&mut report);
    report
}

/// Looks at `pid` once and returns its report; `at` is called at each phase (tests).
pub fn inspect_with(pid: i32, judging: &Judging, at: &mut dyn FnMut(Phase)) -> Result<Report> {
    if pid <= 0 {
        return Err(Failure::usage(format!("{pid} is not a process id")));
    }
    let observation = collect::look(pid, at).map_err(|e| failure(pid, e))?;
    Ok(report(&observation, &History::default(), judging, 1))
}

/// Runs `fdguard inspect`; returns the exit status (the first failure's, when a pid could not
/// be inspected; the others are still reported).
pub fn inspect(options: &InspectOptions) -> Result<i32> {
    let mut reports = Vec::new();
    let mut status = EXIT_OK;
    for &pid in &options.pids {
        match inspect_with(pid, &options.judging, &mut |_| {}) {
            Ok(report) => {
                if report
                    .notes
                    .iter()
                    .any(|n| n.starts_with("libfdguard.so is loaded"))
                {
                    eprintln!("fdguard: {}", library_hint(pid));
                }
                reports.push(report);
            }
            Err(failure) => {
                if options.pids.len() == 1 {
                    return Err(failure);
                }
                eprintln!("fdguard: error: {}", failure.message);
                if status == EXIT_OK {
                    status = failure.exit_code;
                }
            }
        }
    }
    let mut output = match options.format {
        ReportFormat::Text => reports
            .iter()
            .map(text::render)
            .collect::<Vec<_>>()
            .join("\n"),
        ReportFormat::Json => {
            let json = if options.pids.len() == 1 {
                fdguard_report::json::report_bytes(&reports[0])
            } else {
                fdguard_report::json::reports_bytes(&reports)
            };
            String::from_utf8_lossy(&json).into_owned()
        }
    };
    if let Some(path) = &options.output {
        std::fs::write(path, &output)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
        return Ok(status);
    }
    if options.format == ReportFormat::Text && style::stdout_wants_colour() {
        output = style::colour_report(&output);
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to standard output: {e}")))?;
    Ok(status)
}
