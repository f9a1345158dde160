//! Time: monotonic nanoseconds for ages (vDSO, async-signal-safe), the load instant, and a
//! short async-signal-safe sleep.
#![allow(unsafe_code)] // clock_gettime and nanosleep take pointers.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static LOADED_MONO_NS: AtomicU64 = AtomicU64::new(0);
static LOADED_UNIX_MS: AtomicU64 = AtomicU64::new(0);

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// Monotonic clock, nanoseconds. Never 0 once the process has been up a moment.
#[inline]
pub fn now_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// Wall clock, milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    read(libc::CLOCK_REALTIME) / 1_000_000
}

/// Records the load instant (constructor).
pub fn mark_loaded() {
    LOADED_MONO_NS.store(now_ns(), Relaxed);
    LOADED_UNIX_MS.store(unix_ms(), Relaxed);
}

/// Monotonic nanoseconds at load.
pub fn loaded_ns() -> u64 {
    LOADED_MONO_NS.load(Relaxed)
}

/// Seconds between two monotonic instants (0 when `earlier` is later).
pub fn secs_between(earlier: u64, later: u64) -> f64 {
    later.saturating_sub(earlier) as f64 / 1e9
}

/// CPU time the calling thread has used, nanoseconds: what fdguard's own work costs the host,
/// whatever else competes for the cores (the metrics writer's budget is counted in it).
pub fn thread_cpu_ns() -> u64 {
    read(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Sleeps about `ns` nanoseconds (less when a signal interrupts it). Async-signal-safe
/// (`nanosleep`), unlike `std::thread::sleep`, which retries until the time has passed.
pub fn nap_ns(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: a valid timespec and no remainder pointer.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}
