//! The close(2), close_range(2) and closefrom(3) hooks: the records of the fds being closed
//! are retired.
//!
//! WARNING: async-signal-safe. The record is retired BEFORE the real call (see `table`); no
//! allocation, no lock, NO LOGGING: the caller may be closing fd 2 itself, be in a signal
//! handler, or be a vfork child.
#![allow(unsafe_code)] // exported libc symbols (`no_mangle`).

use super::events;
use crate::platform::real;
use libc::{c_int, c_uint};

/// Interposed `close(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn close(fd: c_int) -> c_int {
    events::before_close(fd);
    real::close(fd)
}

/// Interposed `close_range(2)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    events::before_close_range(first, last, flags);
    real::close_range(first, last, flags)
}

/// Interposed `closefrom(3)`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub extern "C" fn closefrom(lowfd: c_int) {
    events::before_closefrom(lowfd);
    real::closefrom(lowfd)
}
