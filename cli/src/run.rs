//! `fdguard run -- CMD…`: run a program with libfdguard.so preloaded, then summarise the reports
//! it wrote.
//!
//! The CLI decides everything about the child's environment (`LD_PRELOAD`, `FDGUARD_*`); the
//! library only reads it. By default reports go, as JSON, into a fresh directory
//! `fdguard-reports/<UTC timestamp>-<fdguard's pid>/` so that after the child exits the CLI can
//! find them, print the last one as text and list the others.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use fdguard_report::template::PathTemplate;
use fdguard_report::text;
use fdguard_report::units::UtcTime;

use crate::ReportFormat;
use crate::error::{Failure, Result};
use crate::files::{absolute, parse_report};
use crate::preload::{append_ld_preload, find_library, preload_warnings, resolve_command};
use crate::style;
use crate::supervise::{self, Tree};

/// `FDGUARD_EXIT_REPORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReport {
    /// Report at exit only when the process held a socket and has a finding of severity
    /// warning or above (the library's default, LeakSanitizer's rule).
    Auto,
    /// Report at exit whenever the process held a socket (`fdguard run`'s default).
    Sockets,
    /// Always report at exit.
    Always,
    /// Never report at exit.
    Never,
}

impl ExitReport {
    /// The variable's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReport::Auto => "auto",
            ExitReport::Sockets => "sockets",
            ExitReport::Always => "always",
            ExitReport::Never => "never",
        }
    }
}

/// Options of `fdguard run`; `None` leaves the library's default (or the inherited variable).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The program and its arguments.
    pub command: Vec<OsString>,
    /// `--lib`.
    pub lib: Option<PathBuf>,
    /// `--report`: `stderr`, a directory, or a path template.
    pub report: Option<String>,
    /// Report format.
    pub format: ReportFormat,
    /// `FDGUARD_SIGNAL`, already validated.
    pub signal: Option<String>,
    /// `FDGUARD_GRACE_MS`.
    pub grace_ms: Option<u64>,
    /// `FDGUARD_WATCH_MS`.
    pub watch_ms: Option<u64>,
    /// `FDGUARD_DUP_MIN`.
    pub dup_min: Option<u64>,
    /// `FDGUARD_IDLE_MS`.
    pub idle_ms: Option<u64>,
    /// `FDGUARD_CONNECT_MS`.
    pub connect_ms: Option<u64>,
    /// `FDGUARD_HALF_OPEN_MS`.
    pub half_open_ms: Option<u64>,
    /// `FDGUARD_GROWTH_MIN`.
    pub growth_min: Option<u64>,
    /// `FDGUARD_CHURN_PER_MIN`.
    pub churn_per_min: Option<u64>,
    /// `FDGUARD_HISTORY`.
    pub history: Option<u64>,
    /// `FDGUARD_SUPPRESSIONS`.
    pub suppressions: Option<PathBuf>,
    /// `FDGUARD_EXITCODE`.
    pub exitcode: Option<u8>,
    /// `FDGUARD_STACK_DEPTH`.
    pub stack_depth: Option<u32>,
    /// `FDGUARD_EXIT_REPORT`.
    pub exit_report: Option<ExitReport>,
    /// `FDGUARD_METRICS_DIR` (created if missing; made absolute).
    pub metrics_dir: Option<PathBuf>,
    /// Print only where the reports are.
    pub quiet: bool,
}

/// Where the library will write reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `FDGUARD_REPORT=stderr`: nothing to collect afterwards.
    Stderr,
    /// A path template; `dir` is its directory when that has no placeholder (so the reports
    /// can be listed afterwards).
    Files {
        /// The absolute template, as passed in `FDGUARD_REPORT`.
        template: String,
        /// The directory reports land in, if fixed.
        dir: Option<PathBuf>,
    },
}

/// Works out `FDGUARD_REPORT` from `--report` (see [`RunOptions::report`]); creates nothing
/// ([`create_report_dir`] does). `cwd`, `now` and `pid` name the default directory.
pub fn plan_destination(
    report: Option<&str>,
    format: ReportFormat,
    cwd: &Path,
    now: SystemTime,
    pid: u32,
) -> Result<Destination> {
    let default_name = format!("fdguard.%p.%n.{}", format.extension());
    let (dir, template) = match report {
        Some(value) if value.trim().eq_ignore_ascii_case("stderr") => {
            return Ok(Destination::Stderr);
        }
        Some("") => {
            return Err(Failure::usage(
                "--report needs a value: stderr, a directory or a path template",
            ));
        }
        None => {
            let seconds = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let stamp = UtcTime::from_unix_seconds(seconds).to_compact();
            let dir = cwd.join("fdguard-reports").join(format!("{stamp}-{pid}"));
            let template = dir.join(&default_name);
            (dir, template)
        }
        Some(value) => {
            let path = cwd.join(value);
            let is_dir = value.ends_with('/') || (!value.contains('%') && path.is_dir());
            if is_dir {
                (path.clone(), path.join(&default_name))
            } else {
                let parent = path.parent().unwrap_or(cwd).to_path_buf();
                (parent, path)
            }
        }
    };
    let template = absolute(&template)?;
    let dir = absolute(&dir)?;
    let fixed_dir = !dir.as_os_str().as_encoded_bytes().contains(&b'%');
    let template = template
        .to_str()
        .ok_or_else(|| {
            Failure::usage(format!(
                "the report path {} is not valid UTF-8",
                template.display()
            ))
        })?
        .to_string();
    Ok(Destination::Files {
        template,
        dir: fixed_dir.then_some(dir),
    })
}

/// Creates the report directory of `destination` if it is missing, and returns the
/// directories created (deepest last), so that `run` can remove them again if they stay empty.
/// Only the report directory itself is created — and for the default
/// `fdguard-reports/<time>-<pid>/`, `fdguard-reports` too: a mistyped `--report` path
/// (`/tmp/a/b/c/` under a missing `/tmp/a`) is an error, never a tree of directories at a place
/// nobody meant.
pub fn create_report_dir(destination: &Destination, default_dir: bool) -> Result<Vec<PathBuf>> {
    let Destination::Files { dir: Some(dir), .. } = destination else {
        return Ok(Vec::new());
    };
    let mut wanted = vec![dir.clone()];
    if default_dir && let Some(parent) = dir.parent() {
        wanted.insert(0, parent.to_path_buf());
    }
    let mut created = Vec::new();
    for d in wanted {
        if d.is_dir() {
            continue;
        }
        match std::fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) => {
                remove_if_empty(&created);
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "its parent {} does not exist (fdguard creates only the report \
                         directory itself)",
                        d.parent().unwrap_or(&d).display()
                    )
                } else {
                    e.to_string()
                };
                return Err(Failure::new(format!(
                    "cannot create the report directory {}: {why}",
                    d.display()
                )));
            }
        }
    }
    Ok(created)
}

/// Removes the directories `run` created, deepest first, if they are (still) empty.
fn remove_if_empty(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// The environment variables `run` sets for the child (LD_PRELOAD included).
pub fn child_environment(
    options: &RunOptions,
    library: &Path,
    destination: &Destination,
    existing_ld_preload: Option<&OsStr>,
) -> Result<Vec<(String, OsString)>> {
    let mut vars: Vec<(String, OsString)> = vec![(
        "LD_PRELOAD".to_string(),
        append_ld_preload(existing_ld_preload, library)?,
    )];
    let mut set = |name: &str, value: String| vars.push((name.to_string(), OsString::from(value)));
    set(
        "FDGUARD_REPORT",
        match destination {
            Destination::Stderr => "stderr".to_string(),
            Destination::Files { template, .. } => template.clone(),
        },
    );
    set("FDGUARD_FORMAT", options.format.as_str().to_string());
    if let Some(signal) = &options.signal {
        set("FDGUARD_SIGNAL", signal.clone());
    }
    let numbers = [
        ("FDGUARD_GRACE_MS", options.grace_ms),
        ("FDGUARD_WATCH_MS", options.watch_ms),
        ("FDGUARD_DUP_MIN", options.dup_min),
        ("FDGUARD_IDLE_MS", options.idle_ms),
        ("FDGUARD_CONNECT_MS", options.connect_ms),
        ("FDGUARD_HALF_OPEN_MS", options.half_open_ms),
        ("FDGUARD_GROWTH_MIN", options.growth_min),
        ("FDGUARD_CHURN_PER_MIN", options.churn_per_min),
        ("FDGUARD_HISTORY", options.history),
        ("FDGUARD_EXITCODE", options.exitcode.map(u64::from)),
        ("FDGUARD_STACK_DEPTH", options.stack_depth.map(u64::from)),
    ];
    for (name, value) in numbers {
        if let Some(value) = value {
            set(name, value.to_string());
        }
    }
    if let Some(path) = &options.suppressions {
        if !path.is_file() {
            return Err(Failure::new(format!(
                "--suppressions {}: no such file",
                path.display()
            )));
        }
        set(
            "FDGUARD_SUPPRESSIONS",
            absolute(path)?.display().to_string(),
        );
    }
    // `sockets` unless said otherwise: every process that held a socket writes its exit
    // report, so the summary can list every process (the library's own default is quiet when
    // clean, for processes nobody is watching).
    match options.exit_report {
        Some(mode) => set("FDGUARD_EXIT_REPORT", mode.as_str().to_string()),
        None if std::env::var_os("FDGUARD_EXIT_REPORT").is_none() => set(
            "FDGUARD_EXIT_REPORT",
            ExitReport::Sockets.as_str().to_string(),
        ),
        None => {}
    }
    if let Some(dir) = &options.metrics_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::new(format!(
                "cannot create the metrics directory {}: {e}",
                dir.display()
            ))
        })?;
        let dir = absolute(dir)?;
        let text = dir.to_str().ok_or_else(|| {
            Failure::usage(format!(
                "--metrics-dir {} is not valid UTF-8",
                dir.display()
            ))
        })?;
        set("FDGUARD_METRICS_DIR", text.to_string());
    }
    Ok(vars)
}

/// `fdguard run` exit status when the command is not found (as a shell says).
pub const EXIT_NOT_FOUND: i32 = 127;
/// `fdguard run` exit status when the command cannot be executed (as a shell says).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;

/// Runs `fdguard run`; returns the exit status to exit with (the child's).
pub fn run(options: &RunOptions) -> Result<i32> {
    let Some(program) = options.command.first() else {
        return Err(Failure::usage(
            "no command given; usage: fdguard run [OPTIONS] -- CMD [ARGS…]",
        ));
    };
    let path_var = std::env::var_os("PATH");
    let shown_program = Path::new(program).display().to_string();
    let resolved = resolve_command(program, path_var.as_deref()).ok_or_else(|| {
        Failure::with_code(
            format!("command not found: {shown_program} (not a path, and not on PATH)"),
            EXIT_NOT_FOUND,
        )
    })?;
    if let Some(why) = not_executable(&resolved) {
        return Err(Failure::with_code(
            format!("cannot run {}: {why}", resolved.display()),
            EXIT_NOT_EXECUTABLE,
        ));
    }
    for warning in preload_warnings(&resolved, path_var.as_deref()) {
        eprintln!("fdguard: warning: {warning}; running it anyway");
    }
    let library = find_library(options.lib.as_deref())?;
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))?;
    let destination = plan_destination(
        options.report.as_deref(),
        options.format,
        &cwd,
        SystemTime::now(),
        std::process::id(),
    )?;
    let environment = child_environment(
        options,
        &library,
        &destination,
        std::env::var_os("LD_PRELOAD").as_deref(),
    )?;
    let created = create_report_dir(&destination, options.report.is_none())?;
    if std::env::var("FDGUARD_DISABLE").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes")) {
        eprintln!(
            "fdguard: warning: FDGUARD_DISABLE is set in the environment: the library will track nothing"
        );
    }
    if !options.quiet {
        let target = match &destination {
            Destination::Stderr => "reports to stderr".to_string(),
            Destination::Files { template, .. } => {
                format!("reports: {}", shown_path(Path::new(template), &cwd))
            }
        };
        eprintln!(
            "fdguard: running {shown_program} with {} ({target})",
            library.display()
        );
    }

    // Files older than this are not ours (a --report directory may hold earlier runs).
    let started = SystemTime::now() - Duration::from_secs(2);
    let mut command = Command::new(&resolved);
    std::os::unix::process::CommandExt::arg0(&mut command, program);
    command.args(&options.command[1..]).envs(environment);
    supervise::become_subreaper();
    supervise::forward::install();
    let child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            remove_if_empty(&created);
            let code = match e.raw_os_error() {
                Some(libc::ENOENT) => EXIT_NOT_FOUND,
                _ => EXIT_NOT_EXECUTABLE,
            };
            return Err(Failure::with_code(
                format!("cannot start {}: {e}", resolved.display()),
                code,
            ));
        }
    };
    let child_pid = child.id() as i32;
    supervise::forward::set_targets(&[child_pid]);
    let mut tree = Tree::default();
    let status = tree.wait(child_pid, options.quiet);
    let code = exit_code_raw(status);

    match &destination {
        Destination::Files {
            dir: Some(dir),
            template,
        } => {
            let moved = collect_stray_reports(dir, template, started, &tree);
            summarise_reports(
                dir,
                template,
                started,
                child_pid,
                &cwd,
                options.quiet,
                &tree,
                &moved,
            );
        }
        Destination::Stderr => name_stray_stderr_reports(started, &tree),
        Destination::Files { dir: None, .. } => {}
    }
    remove_if_empty(&created);
    Ok(code)
}

/// Why `path` cannot be executed (a directory, no execute permission), if it cannot.
fn not_executable(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Some("it is a directory".to_string()),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => {
            Some("permission denied (not executable)".to_string())
        }
        Ok(_) => None,
        Err(e) => Some(e.to_string()),
    }
}

/// A raw wait status as a shell reports it: the exit code, or 128 + the signal.
pub fn exit_code_raw(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

/// Reports of the run's processes that could not be written into `dir` (a worker that dropped
/// privileges to a user who may not write there; a full or read-only file system) went to
/// their user's runtime directory (`/run/user/<uid>/fdguard/` or `/tmp/fdguard-<uid>/`, private
/// to that user): moved into `dir`. Only files whose name fits the template, written since the
/// run started, by a process of this run. Returns (pid, where it was) of each.
fn collect_stray_reports(
    dir: &Path,
    template: &str,
    started: SystemTime,
    tree: &Tree,
) -> Vec<(i32, PathBuf)> {
    let matcher = PathTemplate::parse(template);
    let mut uids = tree.uids();
    // SAFETY: geteuid has no preconditions.
    uids.push(unsafe { libc::geteuid() });
    uids.sort_unstable();
    uids.dedup();
    let mut moved = Vec::new();
    for uid in uids {
        let runtime = fdguard_report::request::channel_dir(uid);
        if runtime == dir {
            continue;
        }
        // Only a directory that is that user's own (or root's) and writable by no one else.
        let trusted = std::fs::symlink_metadata(&runtime).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            fdguard_report::request::directory_trusted(
                m.file_type().is_dir(),
                m.uid(),
                m.mode(),
                uid,
            )
        });
        if !trusted {
            continue;
        }
        for entry in std::fs::read_dir(&runtime).into_iter().flatten().flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !matcher.file_name_matches(&name) {
                continue;
            }
            let Some(content) = read_stray(&entry.path(), uid, started) else {
                continue;
            };
            let Some(pid) = Found::read(name.clone(), SystemTime::now(), content.clone()).pid
            else {
                continue;
            };
            if !tree.procs.contains_key(&pid) {
                continue;
            }
            // What was read and checked is written here (never the path moved: it could have
            // been swapped for a symlink since), then the original removed.
            let copied = {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(dir.join(&name))
                    .and_then(|mut f| f.write_all(content.as_bytes()))
                    .is_ok()
            };
            if copied {
                let _ = std::fs::remove_file(entry.path());
                moved.push((pid, runtime.clone()));
            }
        }
    }
    moved
}

/// A report file another user's process wrote: read only if it is a regular file (never
/// through a symlink) owned by that user, written since `started`.
fn read_stray(path: &Path, uid: u32, started: SystemTime) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != uid || meta.modified().ok()? < started {
        return None;
    }
    let mut text = String::new();
    file.by_ref()
        .take(64 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// With `--report stderr`: a process whose stderr was closed or redirected (a daemon) writes
/// its reports into its user's runtime directory instead; say where.
fn name_stray_stderr_reports(started: SystemTime, tree: &Tree) {
    for uid in tree.uids() {
        let runtime = fdguard_report::request::channel_dir(uid);
        for entry in std::fs::read_dir(&runtime).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("fdguard.")
                .and_then(|rest| rest.split('.').next())
                .and_then(|p| p.parse::<i32>().ok());
            let fresh = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= started);
            if let Some(pid) = pid.filter(|p| fresh && tree.procs.contains_key(p)) {
                eprintln!(
                    "fdguard: process {pid} could not write to its stderr (closed or redirected \
                     by the program): its report is {}",
                    entry.path().display()
                );
            }
        }
    }
}

/// The child's status as a shell reports it: its exit code, or 128 + the signal that killed it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

fn shown_path(path: &Path, cwd: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(relative) if !relative.as_os_str().is_empty() => relative.display().to_string(),
        _ => path.display().to_string(),
    }
}

/// Report files listed one per line after the run; beyond this, reports without findings are
/// only counted (a program that forks many short-lived children, each preloaded, writes one
/// report per child).
const LISTED_REPORTS: usize = 10;

/// One report file found after the run.
struct Found {
    name: String,
    modified: SystemTime,
    /// The pid and report number, from the JSON or from a text report's header.
    pid: Option<i32>,
    seq: Option<u64>,
    /// `pid 4242, report #2 (exit): 1 live socket from 1 stack; findings: 1 open_at_exit`.
    line: String,
    has_findings: bool,
    /// The text to print if this is the report shown in full.
    text: String,
}

impl Found {
    fn read(name: String, modified: SystemTime, content: String) -> Found {
        if let Ok(report) = parse_report(content.as_bytes(), &name) {
            let summary = text::summary_line(&report);
            return Found {
                pid: Some(report.pid),
                seq: Some(report.seq),
                line: format!(
                    "pid {}, report #{} ({}): {}",
                    report.pid,
                    report.seq,
                    report.trigger.as_str(),
                    summary.trim_start_matches("SUMMARY: fdguard: ")
                ),
                has_findings: report.summary.findings.values().any(|n| *n > 0),
                text: text::render(&report),
                name,
                modified,
            };
        }
        // A text report: `==PID==fdguard 0.1.0: socket report #N (trigger: T) at …`, and a
        // SUMMARY line at the end.
        let header = content.lines().next().unwrap_or_default();
        let pid = header
            .strip_prefix("==")
            .and_then(|rest| rest.split("==").next())
            .and_then(|p| p.parse::<i32>().ok());
        let seq = header
            .split("socket report #")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        let trigger = header
            .split("(trigger: ")
            .nth(1)
            .and_then(|rest| rest.split(')').next());
        let summary = content.lines().rev().find(|l| l.starts_with("SUMMARY:"));
        let line = match (pid, seq, trigger, summary) {
            (Some(pid), Some(seq), Some(trigger), Some(summary)) => format!(
                "pid {pid}, report #{seq} ({trigger}): {}",
                summary.trim_start_matches("SUMMARY: fdguard: ")
            ),
            _ => "(not a complete report)".to_string(),
        };
        Found {
            pid,
            seq,
            has_findings: summary.is_some_and(|s| s.contains("findings:")),
            line,
            text: content,
            name,
            modified,
        }
    }
}

/// Prints the last report, one line per report file, and the processes that wrote none;
/// returns how many reports were found.
#[allow(clippy::too_many_arguments)]
fn summarise_reports(
    dir: &Path,
    template: &str,
    started: SystemTime,
    child_pid: i32,
    cwd: &Path,
    quiet: bool,
    tree: &Tree,
    moved: &[(i32, PathBuf)],
) -> usize {
    let matcher = PathTemplate::parse(template);
    let mut found: Vec<Found> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let modified = entry.metadata().ok()?.modified().ok()?;
            if !matcher.file_name_matches(&name) || modified < started {
                return None;
            }
            let content = std::fs::read_to_string(entry.path()).ok()?;
            Some(Found::read(name, modified, content))
        })
        .collect();
    found.sort_by_key(|f| (f.modified, f.pid, f.seq));
    let shown_dir = shown_path(dir, cwd);
    let mut strays: Vec<&PathBuf> = moved.iter().map(|(_, from)| from).collect();
    strays.dedup();
    for from in strays {
        let pids: Vec<String> = moved
            .iter()
            .filter(|(_, f)| f == from)
            .map(|(p, _)| p.to_string())
            .collect();
        eprintln!(
            "fdguard: process(es) {} could not write into {shown_dir} (another user: they \
             dropped privileges): their reports went to {} and were moved here",
            pids.join(", "),
            from.display()
        );
    }
    if found.is_empty() {
        eprintln!("fdguard: no report was written to {shown_dir}");
        explain_missing(tree, &found, quiet);
        return 0;
    }
    if !quiet {
        // The launched process's last report; else (a wrapper script that forked the real
        // program) the newest one.
        let last = found
            .iter()
            .filter(|f| f.pid == Some(child_pid))
            .max_by_key(|f| f.seq)
            .or_else(|| found.last());
        if let Some(last) = last {
            let text = if style::stderr_wants_colour() {
                style::colour_report(&last.text)
            } else {
                last.text.clone()
            };
            eprint!("{text}");
        }
    }
    let plural = if found.len() == 1 { "" } else { "s" };
    eprintln!(
        "fdguard: {} report{plural} in {shown_dir}{}",
        found.len(),
        if quiet { "" } else { ":" }
    );
    if quiet {
        return found.len();
    }
    // The launched process's reports and those with findings first, up to LISTED_REPORTS.
    let mut listed: Vec<&Found> = found
        .iter()
        .filter(|f| f.pid == Some(child_pid) || f.has_findings)
        .collect();
    listed.truncate(LISTED_REPORTS);
    for f in &found {
        if listed.len() >= LISTED_REPORTS {
            break;
        }
        if !listed.iter().any(|l| std::ptr::eq(*l, f)) {
            listed.push(f);
        }
    }
    listed.sort_by_key(|f| (f.modified, f.pid, f.seq));
    let width = listed.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in &listed {
        eprintln!("  {:<width$}  {}", f.name, f.line);
    }
    if found.len() > listed.len() {
        let rest = found.len() - listed.len();
        let with_findings = found
            .iter()
            .filter(|f| f.has_findings && !listed.iter().any(|l| std::ptr::eq(*l, *f)))
            .count();
        eprintln!(
            "  … and {rest} more report{} ({with_findings} with findings)",
            if rest == 1 { "" } else { "s" }
        );
    }
    explain_missing(tree, &found, quiet);
    found.len()
}

/// Processes listed one by one when they wrote no report.
const LISTED_SILENT: usize = 10;

/// Says which processes of the run wrote no report, and why as far as `fdguard run` can tell:
/// one line per process that held a socket (fdguard's thread ran) yet wrote none, then one line
/// counting those that held no socket (a shell, a launcher: nothing to report).
fn explain_missing(tree: &Tree, found: &[Found], quiet: bool) {
    let wrote = |pid: i32| found.iter().any(|f| f.pid == Some(pid));
    let silent: Vec<&supervise::Proc> = tree
        .procs
        .values()
        .filter(|p| p.preloaded && p.had_thread && !wrote(p.pid))
        .collect();
    for p in silent.iter().take(LISTED_SILENT) {
        let why = match p.status {
            Some(status) if libc::WIFSIGNALED(status) => format!(
                "{}: a process killed by a signal writes no exit report (ask it with `fdguard \
                 report` before stopping it)",
                supervise::describe_status(status)
            ),
            Some(status) => format!(
                "{}, but its exit report was not written (FDGUARD_EXIT_REPORT set otherwise, \
                 or see its stderr)",
                supervise::describe_status(status)
            ),
            None => "it held a socket; its exit report was not written (killed by a signal, \
                     or FDGUARD_EXIT_REPORT set otherwise; its parent reaped it, so how it ended \
                     is not known here)"
                .to_string(),
        };
        eprintln!("  pid {} ({}) wrote no report: {why}", p.pid, p.name);
    }
    if silent.len() > LISTED_SILENT {
        eprintln!(
            "  … and {} more processes that held a socket wrote no report",
            silent.len() - LISTED_SILENT
        );
    }
    if quiet {
        return;
    }
    let no_socket = tree
        .procs
        .values()
        .filter(|p| p.preloaded && !p.had_thread && !wrote(p.pid))
        .count();
    let not_loaded = tree
        .procs
        .values()
        .filter(|p| !p.preloaded && p.status.is_none_or(|s| !libc::WIFSIGNALED(s)))
        .filter(|p| !p.name.is_empty() && !wrote(p.pid))
        .count();
    if no_socket > 0 {
        eprintln!(
            "  {no_socket} other process(es) held no socket while fdguard watched (nothing to \
             report)"
        );
    }
    if not_loaded > 0 {
        eprintln!(
            "  {not_loaded} process(es) ran without libfdguard.so (static, setuid, or LD_PRELOAD \
             removed from their environment)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "fdguard-run-test-{}-{}",
            std::process::id(),
            crate::files::random_token()
        ));
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn default_destination_is_a_fresh_dir() {
        let cwd = scratch();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_198_000);
        let destination = plan_destination(None, ReportFormat::Json, &cwd, now, 77).unwrap();
        let dir = cwd.join("fdguard-reports/20251126-230000-77");
        assert_eq!(
            destination,
            Destination::Files {
                template: dir.join("fdguard.%p.%n.json").display().to_string(),
                dir: Some(dir.clone())
            }
        );
        assert!(!dir.exists(), "planning creates nothing");
        let created = create_report_dir(&destination, true).unwrap();
        assert_eq!(created, [cwd.join("fdguard-reports"), dir.clone()]);
        assert!(dir.is_dir());
        remove_if_empty(&created);
        assert!(
            !cwd.join("fdguard-reports").exists(),
            "empty: removed again"
        );
        std::fs::remove_dir_all(cwd).unwrap();
    }

    #[test]
    fn report_option_forms() {
        let cwd = scratch();
        let now = SystemTime::now();
        assert_eq!(
            plan_destination(Some("stderr"), ReportFormat::Text, &cwd, now, 1).unwrap(),
            Destination::Stderr
        );
        // An existing directory, or a trailing slash: default file names inside.
        let Destination::Files { template, dir } =
            plan_destination(Some("out/"), ReportFormat::Text, &cwd, now, 1).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            template,
            cwd.join("out/fdguard.%p.%n.txt").display().to_string()
        );
        assert_eq!(dir, Some(cwd.join("out")));
        // Only the report directory itself is created, never its missing parents.
        let deep = plan_destination(Some("a/b/c/"), ReportFormat::Text, &cwd, now, 1).unwrap();
        let error = create_report_dir(&deep, false).unwrap_err();
        assert!(error.message.contains("does not exist"), "{error}");
        assert!(!cwd.join("a").exists());
        // A template: used as is, relative to the cwd.
        let Destination::Files { template, dir } =
            plan_destination(Some("r/%e-%p.json"), ReportFormat::Json, &cwd, now, 1).unwrap()
        else {
            panic!()
        };
        assert_eq!(template, cwd.join("r/%e-%p.json").display().to_string());
        assert_eq!(dir, Some(cwd.join("r")));
        // A placeholder in the directory part: cannot be listed afterwards.
        let Destination::Files { dir, .. } =
            plan_destination(Some("%p/r.json"), ReportFormat::Json, &cwd, now, 1).unwrap()
        else {
            panic!()
        };
        assert_eq!(dir, None);
        assert_eq!(
            plan_destination(Some(""), ReportFormat::Json, &cwd, now, 1)
                .unwrap_err()
                .exit_code,
            2
        );
        std::fs::remove_dir_all(cwd).unwrap();
    }

    #[test]
    fn template_matching() {
        let m = PathTemplate::parse("/x/fdguard.%p.%n.json");
        assert!(m.file_name_matches("fdguard.123.1.json"));
        assert!(!m.file_name_matches("fdguard.123.json"));
        assert!(!m.file_name_matches("fdguard.123.1.json.tmp"));
        assert!(!m.file_name_matches(".fdguard.123.1.json.fdguard-tmp.1.2"));
        let no_pid = PathTemplate::parse("/x/report.json");
        assert!(no_pid.file_name_matches("report.json.4242"));
        assert!(!no_pid.file_name_matches("report.json"));
        let exe = PathTemplate::parse("/x/%e-%t-%p%%");
        assert!(exe.file_name_matches("my-app-1764198000-42%"));
        assert!(!exe.file_name_matches("-1764198000-42%"));
    }

    #[test]
    fn environment_for_the_child() {
        let options = RunOptions {
            command: vec!["true".into()],
            lib: None,
            report: None,
            format: ReportFormat::Json,
            signal: Some("SIGUSR2".into()),
            grace_ms: Some(200),
            watch_ms: None,
            dup_min: None,
            idle_ms: Some(5000),
            connect_ms: None,
            half_open_ms: None,
            growth_min: None,
            churn_per_min: None,
            history: None,
            suppressions: None,
            exitcode: Some(23),
            stack_depth: None,
            exit_report: Some(ExitReport::Always),
            metrics_dir: Some(std::env::temp_dir().join("fdguard-run-test-metrics")),
            quiet: false,
        };
        let destination = Destination::Files {
            template: "/r/fdguard.%p.%n.json".into(),
            dir: None,
        };
        let vars = child_environment(
            &options,
            Path::new("/l/libfdguard.so"),
            &destination,
            Some(OsStr::new("/a.so")),
        )
        .unwrap();
        let get = |name: &str| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(get("LD_PRELOAD").unwrap(), "/a.so:/l/libfdguard.so");
        assert_eq!(get("FDGUARD_REPORT").unwrap(), "/r/fdguard.%p.%n.json");
        assert_eq!(get("FDGUARD_FORMAT").unwrap(), "json");
        assert_eq!(get("FDGUARD_SIGNAL").unwrap(), "SIGUSR2");
        assert_eq!(get("FDGUARD_GRACE_MS").unwrap(), "200");
        assert_eq!(get("FDGUARD_IDLE_MS").unwrap(), "5000");
        assert_eq!(get("FDGUARD_EXITCODE").unwrap(), "23");
        assert_eq!(get("FDGUARD_EXIT_REPORT").unwrap(), "always");
        assert_eq!(
            get("FDGUARD_METRICS_DIR").unwrap(),
            std::env::temp_dir()
                .join("fdguard-run-test-metrics")
                .display()
                .to_string()
        );
        assert_eq!(
            get("FDGUARD_WATCH_MS"),
            None,
            "unset options leave the library default"
        );
        let missing = RunOptions {
            suppressions: Some("/no/such/file".into()),
            ..options
        };
        assert!(
            child_environment(&missing, Path::new("/l/libfdguard.so"), &destination, None).is_err()
        );
    }
}
