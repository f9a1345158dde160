//! When reports are written: the report signal, process exit, and fork bookkeeping; plus the
//! one thread fdguard owns.
//!
//! The signal handler only bumps two atomics and wakes a futex (no fd needed, nothing
//! allocated), then calls the handler that was installed before ours. The `fdguard` thread
//! starts lazily — when the first socket is tracked, never at load — with every signal blocked
//! (heaptrack, bugs.kde.org 378494: hosts expect their own threads to receive signals), writes
//! reports on request, and runs the TCP-state watcher between requests.
#![allow(unsafe_code)]

use crate::guard::{self, Guard};
use crate::{config, report};
use fdguard_report::Trigger;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

const THREAD_NONE: u8 = 0;
const THREAD_STARTING: u8 = 1;
const THREAD_RUNNING: u8 = 2;
const THREAD_FAILED: u8 = 3;

static THREAD: AtomicU8 = AtomicU8::new(THREAD_NONE);
/// Futex word the handler bumps to wake the thread.
static WAKE: AtomicU32 = AtomicU32::new(0);
/// Report signals received and not served yet.
static SIGNALS_PENDING: AtomicU32 = AtomicU32::new(0);
/// The exit report was written (exit paths can run more than once: atexit then _exit).
static EXIT_DONE: AtomicBool = AtomicBool::new(false);
static OUR_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Exit report handed to the `fdguard` thread by `_exit`/`_Exit` (see [`exit_report_on_thread`]):
/// [`EXIT_IDLE`] → [`EXIT_REQUESTED`] (exiting thread) → [`EXIT_SERVED`] (fdguard thread). Also
/// the futex word the exiting thread waits on.
static EXIT_REQUEST: AtomicU32 = AtomicU32::new(EXIT_IDLE);
const EXIT_IDLE: u32 = 0;
const EXIT_REQUESTED: u32 = 1;
const EXIT_SERVED: u32 = 2;
/// Gating findings counted by the exit report the thread wrote.
static EXIT_GATING: AtomicUsize = AtomicUsize::new(0);
/// How long the exiting thread waits while the report makes no progress at all: long enough for
/// a first DWARF load of a big module in a debug build, short enough that a report blocked for
/// good (on a lock the interrupted exiting thread holds) delays the exit only this much.
const EXIT_STALL_NS: u64 = 5_000_000_000;
static PREV_HANDLER: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
static PREV_FLAGS: AtomicI32 = AtomicI32::new(0);

fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE on a valid, aligned u32; async-signal-safe.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

fn futex_wait(word: &AtomicU32, seen: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: FUTEX_WAIT on a valid, aligned u32 with an optional valid timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            ts_ptr,
        );
    }
}

extern "C" fn on_report_signal(
    sig: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    let saved = guard::errno();
    SIGNALS_PENDING.fetch_add(1, Ordering::AcqRel);
    WAKE.fetch_add(1, Ordering::AcqRel);
    futex_wake(&WAKE);
    let prev = PREV_HANDLER.load(Ordering::Acquire);
    if prev != libc::SIG_DFL && prev != libc::SIG_IGN {
        if PREV_FLAGS.load(Ordering::Relaxed) & libc::SA_SIGINFO != 0 {
            // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this type.
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                unsafe { std::mem::transmute(prev) };
            f(sig, info, context);
        } else {
            // SAFETY: a plain (non-SA_SIGINFO) handler has this type.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev) };
            f(sig);
        }
    }
    guard::set_errno(saved);
}

/// Installs the report signal handler, keeping the previous one to chain to (constructor).
pub fn install_signal(signal: i32) {
    // SAFETY: zeroed sigaction is a valid starting value; we fill handler, mask and flags.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_report_signal as *const () as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `action.sa_mask` is a valid sigset.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: zeroed sigaction is a valid out-buffer.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigaction structs.
    if unsafe { libc::sigaction(signal, &action, &mut previous) } == 0 {
        PREV_HANDLER.store(previous.sa_sigaction, Ordering::Release);
        PREV_FLAGS.store(previous.sa_flags, Ordering::Release);
        OUR_SIGNAL.store(signal, Ordering::Release);
    } else {
        // e.g. 32 and 33, which glibc keeps for itself (sigaction says EINVAL).
        let why = std::io::Error::last_os_error().to_string();
        crate::log::line(&[
            "fdguard: FDGUARD_SIGNAL: cannot handle signal ",
            &signal.to_string(),
            " (",
            &why,
            "); no report on signal, the C API and the exit report still work",
        ]);
    }
}

/// A socket is now tracked: make sure the `fdguard` thread runs.
pub fn socket_appeared(_guard: &Guard) {
    if THREAD.load(Ordering::Relaxed) != THREAD_NONE {
        return;
    }
    if THREAD
        .compare_exchange(
            THREAD_NONE,
            THREAD_STARTING,
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return;
    }
    // Block every signal while spawning so the new thread inherits a full mask.
    // SAFETY: sigset_t values are plain data; pthread_sigmask gets valid pointers.
    let ok = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let spawned = std::thread::Builder::new()
            .name("fdguard".into())
            .stack_size(256 * 1024)
            .spawn(thread_main);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned.is_ok()
    };
    THREAD.store(
        if ok { THREAD_RUNNING } else { THREAD_FAILED },
        Ordering::Release,
    );
    if !ok {
        crate::log::line(&[
            "fdguard: cannot start the reporter thread; signal reports are off (exit and API reports still work)",
        ]);
    }
}

/// True once the `fdguard` thread has been started in this process.
pub fn thread_running() -> bool {
    THREAD.load(Ordering::Acquire) == THREAD_RUNNING
}

fn thread_main() {
    Guard::enter_forever();
    let mut last_watch = std::time::Instant::now();
    loop {
        let seen = WAKE.load(Ordering::Acquire);
        if EXIT_REQUEST.load(Ordering::Acquire) == EXIT_REQUESTED {
            let gating = write_exit_report();
            EXIT_GATING.store(gating, Ordering::Relaxed);
            EXIT_REQUEST.store(EXIT_SERVED, Ordering::Release);
            futex_wake(&EXIT_REQUEST);
            return; // the process is ending: nothing left to do here
        }
        if SIGNALS_PENDING.swap(0, Ordering::AcqRel) > 0 {
            guard::catch("internal error while writing a report", || {
                report::on_signal()
            });
        }
        let watch_ms = config::get().watch_ms;
        let timeout = if watch_ms == 0 {
            None
        } else {
            let period = Duration::from_millis(watch_ms);
            if last_watch.elapsed() >= period {
                guard::catch("internal error in the watcher", crate::watch::sample);
                last_watch = std::time::Instant::now();
            }
            Some(
                period
                    .saturating_sub(last_watch.elapsed())
                    .max(Duration::from_millis(1)),
            )
        };
        if SIGNALS_PENDING.load(Ordering::Acquire) == 0
            && EXIT_REQUEST.load(Ordering::Acquire) != EXIT_REQUESTED
        {
            futex_wait(&WAKE, seen, timeout);
        }
        if !guard::is_active() {
            return;
        }
    }
}

extern "C" fn at_exit() {
    let status = before_exit(0, false);
    if status != 0 {
        // FDGUARD_EXITCODE applies: flush stdio as exit() would, then leave with that status.
        // SAFETY: fflush(NULL) flushes all streams; we are in an atexit handler, not a signal.
        unsafe { libc::fflush(std::ptr::null_mut()) };
        crate::real::exit_now(status, false);
    }
}

/// Registers the exit report (constructor).
pub fn install_atexit() {
    // SAFETY: at_exit is a valid extern "C" fn with no arguments.
    unsafe { libc::atexit(at_exit) };
}

/// Writes the exit report once, if the policy says so, and returns the status the process
/// should exit with (FDGUARD_EXITCODE when gating findings exist). `abrupt`: `_exit`/`_Exit`
/// (the status is known) rather than atexit (it is not: 0 means "leave it").
pub fn before_exit(status: i32, abrupt: bool) -> i32 {
    let Some(_guard) = Guard::enter() else {
        return status;
    };
    if EXIT_DONE.swap(true, Ordering::AcqRel) {
        return status;
    }
    // No signal report may start from now on (exit_group would cut it off half written); one
    // in progress is waited for, inside the write below or right here.
    report::stop_signal_reports();
    let policy = config::get().exit_report;
    let wanted = match policy {
        config::ExitReport::Never => false,
        config::ExitReport::Always => true,
        config::ExitReport::Auto => crate::table::held_a_socket() || thread_running(),
    };
    if !wanted {
        report::wait_until_idle();
        return status;
    }
    let gating = if abrupt && thread_running() {
        exit_report_on_thread()
    } else {
        write_exit_report()
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

/// Writes the exit report where configured; returns its gating findings (0 if it failed).
fn write_exit_report() -> usize {
    guard::catch("internal error while writing the exit report", || {
        report::write_configured(Trigger::Exit)
    })
    .unwrap_or(0)
}

/// `_exit`/`_Exit`: the exit report is written by the `fdguard` thread while the exiting thread
/// waits (bounded). `_exit` is async-signal-safe and hosts call it from signal handlers; a
/// report written right there would allocate, and if the handler interrupted malloc on this
/// thread, deadlock on the arena lock forever (tests/reliability_signals.rs hung in half of its
/// runs). The fdguard thread allocates from its own arena; should it still block on a lock the
/// interrupted thread holds, the wait ends once the report has made no progress for
/// [`EXIT_STALL_NS`] and the process exits without it. Only atomics, futex and
/// `clock_gettime` here: async-signal-safe.
fn exit_report_on_thread() -> usize {
    EXIT_REQUEST.store(EXIT_REQUESTED, Ordering::Release);
    WAKE.fetch_add(1, Ordering::AcqRel);
    futex_wake(&WAKE);
    let mut last_progress = report::progress();
    let mut last_change = crate::clock::now_ns();
    loop {
        futex_wait(
            &EXIT_REQUEST,
            EXIT_REQUESTED,
            Some(Duration::from_millis(50)),
        );
        if EXIT_REQUEST.load(Ordering::Acquire) == EXIT_SERVED {
            return EXIT_GATING.load(Ordering::Relaxed);
        }
        let now = crate::clock::now_ns();
        let progress = report::progress();
        if progress != last_progress {
            (last_progress, last_change) = (progress, now);
        } else if now.saturating_sub(last_change) > EXIT_STALL_NS {
            crate::log::line(&[
                "fdguard: the exit report made no progress for 5 s (exit from a signal handler \
                 that interrupted a lock holder?); exiting without it",
            ]);
            return 0;
        }
    }
}

extern "C" fn fork_child() {
    crate::events::refresh_pid();
    crate::table::after_fork_in_child();
    report::after_fork_in_child();
    // The thread did not survive the fork; the next socket starts a new one.
    THREAD.store(THREAD_NONE, Ordering::Release);
    SIGNALS_PENDING.store(0, Ordering::Release);
    EXIT_DONE.store(false, Ordering::Release);
    EXIT_REQUEST.store(EXIT_IDLE, Ordering::Release);
}

/// Registers the fork handlers (constructor).
pub fn install_fork_handlers() {
    // SAFETY: fork_child is a valid extern "C" fn; null prepare/parent handlers are allowed.
    unsafe { libc::pthread_atfork(None, None, Some(fork_child)) };
}
