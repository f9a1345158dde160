//! Futex wait and wake on an atomic word: how the signal handler and exiting threads wake the
//! `fdguard` thread, and how an exiting thread waits for it. Async-signal-safe (one system
//! call, no memory touched but the word).
#![allow(unsafe_code)] // the futex system call.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Wakes every thread waiting on `word`.
pub fn wake(word: &AtomicU32) {
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

/// Sleeps while `word` holds `seen`, at most `timeout` (forever with `None`); returns early on a
/// wake, a signal, or when the word no longer holds `seen`.
pub fn wait(word: &AtomicU32, seen: u32, timeout: Option<Duration>) {
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
