//! The `fdguard` thread: the one thread fdguard owns. It starts lazily — when the first socket
//! is tracked, never at load — with every signal blocked (heaptrack, bugs.kde.org 378494: hosts
//! expect their own threads to receive signals), writes reports on request and for `_exit`,
//! and runs the TCP-state watcher between requests.
#![allow(unsafe_code)]

use super::{control, exit, signal, watch};
use crate::config;
use crate::platform::guard::{self, Guard};
use crate::platform::{futex, log, process};
use crate::report::Destination;
use fdguard_report::Trigger;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

const THREAD_NONE: u8 = 0;
const THREAD_STARTING: u8 = 1;
const THREAD_RUNNING: u8 = 2;
const THREAD_FAILED: u8 = 3;

static THREAD: AtomicU8 = AtomicU8::new(THREAD_NONE);
/// Futex word bumped to wake the thread.
static WAKE: AtomicU32 = AtomicU32::new(0);

/// Wakes the thread (async-signal-safe: an atomic and a futex call).
pub fn wake() {
    WAKE.fetch_add(1, Ordering::AcqRel);
    futex::wake(&WAKE);
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
            .spawn(main);
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        spawned.is_ok()
    };
    THREAD.store(
        if ok { THREAD_RUNNING } else { THREAD_FAILED },
        Ordering::Release,
    );
    if !ok {
        log::line(&[
            "fdguard: cannot start the reporter thread; signal reports are off (exit and API reports still work)",
        ]);
    }
}

/// True once the `fdguard` thread has been started in this process.
pub fn running() -> bool {
    THREAD.load(Ordering::Acquire) == THREAD_RUNNING
}

/// Fork child: the thread did not survive the fork; the next socket starts a new one.
pub fn forget() {
    THREAD.store(THREAD_NONE, Ordering::Release);
}

fn main() {
    Guard::enter_forever();
    let mut last_watch = Instant::now();
    loop {
        let seen = WAKE.load(Ordering::Acquire);
        if exit::serve_request() {
            return; // the process is ending: nothing left to do here
        }
        if signal::take_pending() > 0 {
            guard::catch("internal error while writing a report", on_signal);
        }
        let watch_ms = config::get().watch_ms;
        let timeout = if watch_ms == 0 {
            None
        } else {
            let period = Duration::from_millis(watch_ms);
            if last_watch.elapsed() >= period {
                guard::catch("internal error in the watcher", watch::sample);
                super::metrics::tick();
                last_watch = Instant::now();
            }
            Some(
                period
                    .saturating_sub(last_watch.elapsed())
                    .max(Duration::from_millis(1)),
            )
        };
        if !signal::pending() && !exit::requested() {
            futex::wait(&WAKE, seen, timeout);
        }
        if !guard::is_active() {
            return;
        }
    }
}

/// The report signal arrived: answer an `fdguard report` request if one is waiting, otherwise
/// write to the configured place.
fn on_signal() {
    match control::take_request(process::pid()) {
        Some(request) => {
            super::report_now(
                Trigger::Signal,
                Destination::Path(&request.path),
                request.format,
                true,
            );
        }
        None => {
            super::report_now(
                Trigger::Signal,
                Destination::Configured,
                config::get().format,
                true,
            );
        }
    }
}
