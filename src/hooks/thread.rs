//! pthread_setname_np(3): only to learn that thread names changed, so the per-thread name
//! cache in `events` is refreshed (reports show the creating thread's name).
#![allow(unsafe_code)] // an exported libc symbol (`no_mangle`).

use crate::platform::{process, real};
use libc::{c_char, c_int, pthread_t};

/// Interposed `pthread_setname_np(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn pthread_setname_np(thread: pthread_t, name: *const c_char) -> c_int {
    let rc = real::pthread_setname_np(thread, name);
    if rc == 0 {
        process::thread_names_changed();
    }
    rc
}
