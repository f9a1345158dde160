//! The exit report: from `atexit` (exit(), return from main) and from the `_exit`/`_Exit`
//! hooks, written once, and the `FDGUARD_EXITCODE` status it may impose.
//!
//! WARNING: the exiting thread never builds the report. Every exit path may run in a signal
//! handler that interrupted malloc (a SIGTERM handler calling exit() is everywhere), on a
//! thread with a small stack, or in a fork child; building a report there allocates, takes
//! locks and needs stack. So the exit report is always written by the `fdguard` thread while
//! the exiting thread waits: only atomics, futex and `clock_gettime` on the exiting thread
//! (async-signal-safe), and the wait ends once the report has made no progress for
//! [`STALL_NS`]. When the `fdguard` thread does not exist, the report is skipped with one
//! stderr line, never risked.

use super::bell;
use crate::config;
use crate::platform::guard::{self, Guard};
use crate::platform::{clock, futex, log, process, real};
use crate::report::{self, Destination};
use fdguard_report::Trigger;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

/// The exit report was written (exit paths can run more than once: atexit then _exit).
static DONE: AtomicBool = AtomicBool::new(false);
/// Exit report handed to the `fdguard` thread by `_exit`/`_Exit` (see [`report_on_thread`]):
/// [`IDLE`] → [`REQUESTED`] (exiting thread) → [`SERVED`] (fdguard thread). Also the futex word
/// the exiting thread waits on.
static REQUEST: AtomicU32 = AtomicU32::new(IDLE);
const IDLE: u32 = 0;
const REQUESTED: u32 = 1;
const SERVED: u32 = 2;
/// Gating findings counted by the exit report the thread wrote.
static GATING: AtomicUsize = AtomicUsize::new(0);
/// How long the exiting thread waits while the report makes no progress at all: long enough for
/// a first DWARF load of a big module in a debug build, short enough that a report blocked for
/// good (on a lock the interrupted exiting thread holds) delays the exit only this much.
const STALL_NS: u64 = 5_000_000_000;

extern "C" fn at_exit() {
    let status = before_exit(0, false);
    if status != 0 {
        // FDGUARD_EXITCODE applies: flush stdio as exit() would, then leave with that status
        // (an atexit handler, not a signal handler: stdio may be used here).
        process::flush_stdio();
        real::exit_now(status, false);
    }
}

/// Registers the exit report (constructor).
pub fn install_atexit() {
    process::at_exit(at_exit);
}

/// Writes the exit report once, if the policy says so, and returns the status the process
/// should exit with (FDGUARD_EXITCODE when gating findings exist). `abrupt`: `_exit`/`_Exit`
/// (the status is known) rather than atexit (it is not: 0 means "leave it").
pub fn before_exit(status: i32, abrupt: bool) -> i32 {
    let Some(_guard) = Guard::enter() else {
        return status;
    };
    if DONE.swap(true, Ordering::AcqRel) {
        return status;
    }
    super::metrics::remove_at_exit();
    // No signal report may start from now on (exit_group would cut it off half written); one
    // in progress is waited for, inside the write below or right here.
    report::stop_signal_reports();
    let cfg = config::get();
    let policy = cfg.exit_report;
    // A socket of any origin: created here, inherited across fork or exec, received.
    let held = || crate::track::table::held_a_socket() || crate::track::table::any_live();
    let wanted = match policy {
        config::ExitReport::Never => false,
        config::ExitReport::Always => true,
        config::ExitReport::Auto | config::ExitReport::Sockets => held(),
    };
    // FDGUARD_REPORT=none writes nothing; the report is built only to apply FDGUARD_EXITCODE.
    let wanted = wanted && (cfg.sink != config::Sink::None || cfg.exitcode != 0);
    if !wanted {
        report::wait_until_idle();
        return status;
    }
    let gating = if bell::running() {
        report_on_thread()
    } else {
        // Under `auto` nobody asked for this report and it may well have been clean: quiet.
        if policy != config::ExitReport::Auto {
            log::line(&[
                "fdguard: no exit report: the fdguard thread is not running (it could not be \
                 started, or was stopped for unshare/setns and no socket was used since)",
            ]);
        }
        report::wait_until_idle();
        0
    };
    let code = config::get().exitcode;
    if gating > 0 && code != 0 {
        code
    } else if abrupt {
        status
    } else {
        0
    }
}

/// Writes the exit report where configured (under `auto` only when it has something to say:
/// `report::Options::quiet_when_clean`); returns its gating findings (0 if it failed).
fn write_exit_report() -> usize {
    guard::catch("internal error while writing the exit report", || {
        let cfg = config::get();
        super::report_with(
            Trigger::Exit,
            Destination::Configured,
            cfg.format,
            report::Options {
                fallback_to_stderr: true,
                quiet_when_clean: cfg.exit_report == config::ExitReport::Auto,
                ..report::Options::default()
            },
        )
        .gating
    })
    .unwrap_or(0)
}

/// True while an exit report waits for the `fdguard` thread.
pub fn requested() -> bool {
    REQUEST.load(Ordering::Acquire) == REQUESTED
}

/// On the `fdguard` thread: writes the exit report an exiting thread asked for, if any. Returns
/// true when it did (the process is then ending).
pub fn serve_request() -> bool {
    if !requested() {
        return false;
    }
    let gating = write_exit_report();
    GATING.store(gating, Ordering::Relaxed);
    REQUEST.store(SERVED, Ordering::Release);
    futex::wake(&REQUEST);
    true
}

/// Every exit path: the exit report is written by the `fdguard` thread while the exiting thread
/// waits (bounded). exit() and `_exit` are called from signal handlers; a report written right
/// there would allocate, and if the handler interrupted malloc on this thread, deadlock on the
/// arena lock forever (tests/reliability_signals.rs and tests/exit_paths.rs hung in most of
/// their runs). The fdguard thread allocates from its own arena; should it still block on a
/// lock the interrupted thread holds, the wait ends once the report has made no progress for
/// [`STALL_NS`] and the process exits without it. Only atomics, futex and `clock_gettime`
/// here: async-signal-safe, and a few hundred bytes of stack.
fn report_on_thread() -> usize {
    REQUEST.store(REQUESTED, Ordering::Release);
    bell::wake();
    let mut last_progress = report::progress();
    let mut last_change = clock::now_ns();
    loop {
        futex::wait(&REQUEST, REQUESTED, Some(Duration::from_millis(50)));
        if REQUEST.load(Ordering::Acquire) == SERVED {
            return GATING.load(Ordering::Relaxed);
        }
        let now = clock::now_ns();
        let progress = report::progress();
        if progress != last_progress {
            (last_progress, last_change) = (progress, now);
        } else if now.saturating_sub(last_change) > STALL_NS {
            log::line(&[
                "fdguard: the exit report made no progress for 5 s (exit from a signal handler \
                 that interrupted a lock holder?); exiting without it",
            ]);
            return 0;
        }
    }
}

/// Fork child: the parent's exit is not the child's.
pub fn forget() {
    DONE.store(false, Ordering::Release);
    REQUEST.store(IDLE, Ordering::Release);
}
