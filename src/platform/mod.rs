//! Platform glue: everything that talks to libc, the kernel or the loader on fdguard's own
//! behalf, below the hook side and the report side alike. Nothing here knows about sockets as
//! fdguard records them; everything above may use it.
//!
//! - `real`: the next-in-chain libc functions, with raw-syscall fallbacks;
//! - `guard`: who may touch fdguard's state now (reentrancy, vfork child, on/off, panics);
//! - `errno`: the caller's errno, kept across our bookkeeping;
//! - `log`: fdguard's own one-line messages on stderr;
//! - `clock`: monotonic and wall time;
//! - `futex`: wait and wake on an atomic word (signal handlers and exit paths use it);
//! - `process`: facts about this process and thread (pid, tid, thread name);
//! - `kernel`: questions asked of the kernel about one socket fd (TCP state, addresses, type);
//! - `procfs`: the process's open fds as `/proc/self/fd` lists them;
//! - `fs`: files and descriptors fdguard opens on its own behalf (stat, open, rename, poll, …);
//! - `stack`: stacks fdguard owns, so deep work never runs on a host thread's small stack.

pub mod clock;
pub mod errno;
pub mod fs;
pub mod futex;
pub mod guard;
pub mod kernel;
pub mod log;
pub mod process;
pub mod procfs;
pub mod real;
pub mod stack;
pub mod workers;
