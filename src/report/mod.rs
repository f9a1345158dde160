//! The report side: snapshot → kernel state → detectors → render → write, one stage per
//! module, data flowing one way.
//!
//! - `snapshot`: a consistent copy of the live table, reconciled with the kernel;
//! - `build`: kernel state per socket, symbolised stacks (`symbolize`, with the host's Python
//!   frames put in place by `interleave`), annotations, the detectors (shared with the CLI in `fdguard_report::detect`) and the summary;
//! - rendering is `fdguard_report::text` (shared with `fdguard show`) or JSON;
//! - `write`: the file or fd a report goes to, created the way a security tool would.
//!
//! This module runs one report at a time and decides where it goes. Reports are written on the
//! `fdguard` thread (requests, exit), or the caller's thread (C API); always inside the guard.
//! Nothing here writes into the live table: what a report learns about the sockets' TCP
//! states goes back to the caller ([`Written::states`]), for the watcher to record.

pub mod build;
pub mod interleave;
pub mod snapshot;
pub mod symbolize;
pub mod write;

use crate::config::{self, Format, Sink};
use crate::platform::log;
use build::StateSeen;
use fdguard_report::detect;
use fdguard_report::{Report, Trigger};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);
/// One report at a time. A try-lock with a bounded wait: never hang the host.
static BUSY: AtomicBool = AtomicBool::new(false);
/// The process is exiting: signal reports that have not started yet are dropped (see
/// [`stop_signal_reports`]).
static EXITING: AtomicBool = AtomicBool::new(false);
/// Bumped as a report is built and written, so an exiting thread waiting for the `fdguard`
/// thread can tell a slow report from a blocked one (`trigger::exit_report_on_thread`).
static PROGRESS: AtomicU64 = AtomicU64::new(0);

struct Busy;

impl Busy {
    fn acquire() -> Busy {
        for _ in 0..5000 {
            if BUSY
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Busy;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Five seconds: something is stuck. Write anyway rather than hang the host.
        Busy
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::Release);
    }
}

/// The process is about to exit: from now on signal reports are dropped instead of started.
/// exit_group would cut a report off half written, leaving its temp file behind (or half a text
/// report on stderr). Async-signal-safe.
pub fn stop_signal_reports() {
    EXITING.store(true, Ordering::SeqCst);
}

/// Waits (at most 5 s, like [`Busy`]) until no report is being written. Async-signal-safe.
pub fn wait_until_idle() {
    std::sync::atomic::fence(Ordering::SeqCst);
    for _ in 0..5000 {
        if !BUSY.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// A counter that moves while a report is being built or written.
pub fn progress() -> u64 {
    PROGRESS.load(Ordering::Relaxed)
}

/// Fork child: a report in progress in the parent cannot finish here.
pub fn after_fork_in_child() {
    write::after_fork_in_child();
    EXITING.store(false, Ordering::SeqCst);
    if BUSY.swap(false, Ordering::AcqRel) {
        symbolize::disable_dwarf();
    }
}

/// The next report number (1 for this process's first report).
fn next_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed) + 1
}

/// Renders a report in `format`.
pub fn render(report: &Report, format: Format) -> Vec<u8> {
    match format {
        Format::Text => fdguard_report::text::render(report).into_bytes(),
        Format::Json => fdguard_report::json::report_bytes(report),
    }
}

/// Where a report goes.
pub enum Destination<'a> {
    Configured,
    Path(&'a str),
    Fd(i32),
}

/// What else a report is asked to do besides its trigger, destination and format.
#[derive(Default)]
pub struct Options {
    /// A failed write goes to stderr instead (with one line saying why). False for the C API's
    /// explicit path or fd (the caller gets an error code) and for request answers.
    pub fallback_to_stderr: bool,
    /// LeakSanitizer's rule for the exit report under `FDGUARD_EXIT_REPORT=auto`: build it,
    /// and write it only when it has a finding of severity warning or above
    /// ([`detect::noteworthy`]).
    pub quiet_when_clean: bool,
    /// Notes the agent adds (e.g. the report signal was taken over by the host).
    pub notes: Vec<String>,
    /// The watcher's samples, for the trend detectors (`growth`, `reconnect_churn`).
    pub samples: detect::Samples,
}

/// What writing one report did.
pub struct Written {
    /// Findings in the report that gate the exit code ([`detect::gating`]), also when the
    /// report could not be written where asked.
    pub gating: usize,
    /// The error text when it could not be written where asked (with the fallback, the report
    /// then went to stderr).
    pub result: Result<(), String>,
    /// The TCP states the report read, for the watcher (empty when no report was built).
    pub states: Vec<StateSeen>,
}

/// Builds and writes one report (see [`Options`]).
pub fn write_with(
    trigger: Trigger,
    destination: Destination<'_>,
    format: Format,
    options: Options,
) -> Written {
    let fallback_to_stderr = options.fallback_to_stderr;
    let _busy = Busy::acquire();
    // Pairs with the fence in `wait_until_idle`: either the exiting thread sees us busy and
    // waits, or we see EXITING here.
    std::sync::atomic::fence(Ordering::SeqCst);
    if matches!(trigger, Trigger::Signal | Trigger::Request) && EXITING.load(Ordering::SeqCst) {
        return Written {
            gating: 0,
            result: Ok(()),
            states: Vec::new(),
        };
    }
    // The reserved descriptor is released while the report runs (see write::Room): at the fd
    // limit it is what lets the report read /proc, symbolise and create its file.
    let _room = write::Room::open();
    let progress = || {
        PROGRESS.fetch_add(1, Ordering::Relaxed);
    };
    progress();
    let build::Built { mut report, states } = build::build(trigger, options.samples, &progress);
    report.notes.extend(options.notes);
    progress();
    let gating = detect::gating(&report);
    if options.quiet_when_clean && detect::noteworthy(&report) == 0 {
        return Written {
            gating,
            result: Ok(()),
            states,
        };
    }
    let bytes = render(&report, format);
    progress();
    let configured = matches!(destination, Destination::Configured);
    // The report went to the runtime directory instead of the configured file.
    let mut elsewhere = false;
    let fallback_name = || {
        format!(
            "fdguard.{}.{}.{}",
            report.pid,
            report.seq,
            match format {
                Format::Text => "txt",
                Format::Json => "json",
            }
        )
    };
    let result = match destination {
        Destination::Fd(fd) => write::write_all_fd(fd, &bytes, &progress)
            .map_err(|e| std::io::Error::from_raw_os_error(e).to_string()),
        Destination::Path(path) => write::write_file(path, &bytes, &progress),
        Destination::Configured => match &config::get().sink {
            Sink::Stderr => {
                if !write::write_stderr(&bytes, &progress) {
                    // fd 2 is closed or no longer the stderr fdguard saw at load (a daemon
                    // redirected it to its own log or to /dev/null): never write into it,
                    // never lose the report either.
                    write::write_to_runtime_dir(&fallback_name(), &bytes, &progress);
                }
                Ok(())
            }
            Sink::Device(path) => write::write_device(path, &bytes, &progress),
            Sink::None => Ok(()),
            Sink::File(template) => {
                let exe = report.program.rsplit('/').next().unwrap_or("").to_string();
                let path = config::expand_path(
                    template,
                    report.pid,
                    report.seq,
                    &exe,
                    report.time_unix_ms / 1000,
                );
                match write::write_file(&path, &bytes, &progress) {
                    Ok(()) => Ok(()),
                    // The directory is not ours to write (a worker that dropped privileges,
                    // a missing, read-only or full file system): the per-user runtime
                    // directory, where `fdguard run` collects it. The caller still learns that
                    // it did not go where configured (the C API returns an error), but it is
                    // not written to stderr as well.
                    Err(why) => {
                        let name = std::path::Path::new(&path)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(fallback_name);
                        match write::write_to_runtime_dir(&name, &bytes, &progress) {
                            Some(written) => {
                                if write::first_fallback_message() {
                                    log::line(&[
                                        "fdguard: FDGUARD_REPORT: ",
                                        &why,
                                        "; reports go to ",
                                        &written,
                                        " (the per-user runtime directory) instead",
                                    ]);
                                }
                                elsewhere = true;
                                Err(format!("{why}; written to {written} instead"))
                            }
                            None => Err(why),
                        }
                    }
                }
            }
        },
    };
    let result = match result {
        Ok(()) => Ok(()),
        Err(why) if elsewhere => Err(why),
        Err(why) if fallback_to_stderr => {
            // A bad FDGUARD_REPORT is reported once (at load or at the first failure), not
            // once per report.
            if !configured {
                log::line(&["fdguard: ", &why, "; writing the report to stderr instead"]);
            } else if write::first_fallback_message() {
                log::line(&[
                    "fdguard: FDGUARD_REPORT: ",
                    &why,
                    "; writing reports to stderr instead",
                ]);
            }
            write::write_stderr(&bytes, &progress);
            Err(why)
        }
        Err(why) => Err(why),
    };
    if trigger == Trigger::Exit {
        // The process is ending: freeing every socket's strings and the rendered bytes would
        // only delay it (4 ms of an 18,000-socket exit report).
        std::mem::forget(report);
        std::mem::forget(bytes);
    }
    Written {
        gating,
        result,
        states,
    }
}
