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
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, SystemTime};

use fdguard_report::template::PathTemplate;
use fdguard_report::text;
use fdguard_report::units::UtcTime;

use crate::ReportFormat;
use crate::error::{Failure, Result};
use crate::files::{absolute, parse_report};
use crate::preload::{append_ld_preload, find_library, preload_warnings, resolve_command};
use crate::signals::signal_name;
use crate::style;

/// `FDGUARD_EXIT_REPORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReport {
    /// Report at exit only if the process created a socket.
    Auto,
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

/// Works out `FDGUARD_REPORT` from `--report` (see [`RunOptions::report`]), creating the
/// directory when needed. `cwd`, `now` and `pid` name the default directory.
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
    if fixed_dir {
        std::fs::create_dir_all(&dir).map_err(|e| {
            Failure::new(format!(
                "cannot create the report directory {}: {e}",
                dir.display()
            ))
        })?;
    }
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
    if let Some(mode) = options.exit_report {
        set("FDGUARD_EXIT_REPORT", mode.as_str().to_string());
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

/// Runs `fdguard run`; returns the exit status to exit with (the child's).
pub fn run(options: &RunOptions) -> Result<i32> {
    let Some(program) = options.command.first() else {
        return Err(Failure::usage(
            "no command given; usage: fdguard run [OPTIONS] -- CMD [ARGS…]",
        ));
    };
    let path_var = std::env::var_os("PATH");
    let resolved = resolve_command(program, path_var.as_deref()).ok_or_else(|| {
        Failure::new(format!(
            "command not found: {} (not a path, and not on PATH)",
            Path::new(program).display()
        ))
    })?;
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
            "fdguard: running {} with {} ({target})",
            Path::new(program).display(),
            library.display()
        );
    }

    // Files older than this are not ours (a --report directory may hold earlier runs).
    let started = SystemTime::now() - Duration::from_secs(2);
    let mut command = Command::new(&resolved);
    std::os::unix::process::CommandExt::arg0(&mut command, program);
    command.args(&options.command[1..]).envs(environment);
    forwarding::install();
    let mut child = command
        .spawn()
        .map_err(|e| Failure::new(format!("cannot start {}: {e}", resolved.display())))?;
    let child_pid = child.id() as i32;
    forwarding::set_child(child_pid);
    let status = child
        .wait()
        .map_err(|e| Failure::new(format!("cannot wait for {}: {e}", resolved.display())))?;
    forwarding::set_child(0);
    let code = exit_code(status);

    if let Destination::Files {
        dir: Some(dir),
        template,
    } = &destination
    {
        let found = summarise_reports(dir, template, started, child_pid, &cwd, options.quiet);
        if found == 0 && options.report.is_none() {
            // Our fresh default directory stayed empty: do not leave litter behind.
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(code)
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

/// Prints the last report and one line per report file; returns how many were found.
fn summarise_reports(
    dir: &Path,
    template: &str,
    started: SystemTime,
    child_pid: i32,
    cwd: &Path,
    quiet: bool,
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
    if found.is_empty() {
        eprintln!(
            "fdguard: no report was written to {shown_dir} (with FDGUARD_EXIT_REPORT=auto a program \
             that creates no socket writes none; otherwise see the loader's messages above)"
        );
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
    found.len()
}

/// Forwarding SIGINT, SIGTERM and SIGHUP to the child, so that `kill <fdguard pid>` (a
/// supervisor stopping the service) reaches the program and fdguard outlives it long enough to
/// summarise its exit report.
///
/// WARNING: the handler runs in signal context: it may only touch atomics and call kill(2) and
/// getpgid(2)/getpgrp(2) (async-signal-safe system calls).
mod forwarding {
    use super::*;

    /// The child's pid; 0 before spawn and after it was reaped (never signal pid 0: that is our
    /// whole process group).
    static CHILD: AtomicI32 = AtomicI32::new(0);
    /// A signal that arrived before the child existed, delivered right after spawn.
    static PENDING: AtomicI32 = AtomicI32::new(0);

    const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    extern "C" fn forward(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        _context: *mut libc::c_void,
    ) {
        let code = if info.is_null() {
            0
        } else {
            // SAFETY: with SA_SIGINFO the kernel passes a valid, readable siginfo_t (and the
            // null case is excluded above).
            unsafe { (*info).si_code }
        };
        let child = CHILD.load(Ordering::SeqCst);
        if child <= 0 {
            PENDING.store(signal, Ordering::SeqCst);
            return;
        }
        // A terminal's ^C / hangup (SI_KERNEL) already went to the whole foreground process
        // group, the child included: forwarding it would deliver it twice (Python would raise a
        // second KeyboardInterrupt inside its cleanup). Forward it only if the child left our
        // process group.
        // SAFETY: getpgid/getpgrp are plain system calls without memory arguments.
        let same_group = unsafe { libc::getpgid(child) == libc::getpgrp() };
        if code == libc::SI_KERNEL && same_group {
            return;
        }
        // SAFETY: kill(2) has no memory arguments; child > 0 so only the child is signalled.
        unsafe { libc::kill(child, signal) };
    }

    /// Installs the handler for the forwarded signals (once per run).
    pub(super) fn install() {
        for signal in FORWARDED {
            // SAFETY: an all-zero sigaction is a valid initial value (empty mask, no flags).
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = forward as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            // SAFETY: `action` is initialised, its mask is emptied by sigemptyset, and the
            // handler only performs async-signal-safe operations (see the module comment).
            unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    }

    /// Records the child (0: none) and delivers a signal that arrived before it existed.
    pub(super) fn set_child(pid: i32) {
        CHILD.store(pid, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pid > 0 && pending != 0 {
            eprintln!(
                "fdguard: forwarding {} that arrived during start-up",
                signal_name(pending)
            );
            // SAFETY: kill(2) has no memory arguments; pid > 0.
            unsafe { libc::kill(pid, pending) };
        }
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
        assert!(dir.is_dir());
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
