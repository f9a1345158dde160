//! libfdguard.so: finds socket fd leaks in an unmodified running process.
//!
//! Data flows one way: `interpose` (the libc hooks) → `events` → `table` (fd-indexed records,
//! lock-free) → `report` (snapshot, kernel state, `symbolize`) → `detect` (findings) →
//! `output`. `trigger` decides when reports happen; `config` is read once by `init`.
//!
//! Unsafe code is denied crate-wide and allowed, with a `// SAFETY:` comment on every block,
//! only in the modules that must talk to libc or the loader: interpose, real, guard, table,
//! capture, unwind, sockaddr, symbolize, trigger, output, control, report, init, events, log,
//! clock, capi.
#![deny(unsafe_code)]
// In unit tests the hooks are not exported (so the test binary never interposes itself), which
// leaves most of the crate unreachable from the test harness.
#![cfg_attr(test, allow(dead_code))]

mod capi;
mod capture;
mod clock;
mod config;
mod control;
mod detect;
mod events;
mod guard;
mod history;
mod init;
mod interpose;
mod log;
mod output;
mod procfs;
mod real;
mod record;
mod report;
mod sockaddr;
mod symbolize;
mod table;
mod trigger;
mod unwind;
mod watch;

pub(crate) use init::suppressions;
