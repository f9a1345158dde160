//! libfdguard.so: finds socket fd leaks in a running, unmodified process.
//!
//! Data flows one way, and the folders show the stages:
//!
//! - `hooks/`: the interposed libc calls and what each means for the table (`hooks::events`);
//! - `track/`: what is recorded — the fd table, records, addresses, creating stacks, history;
//! - `annotate/`: what the program adds through the C API (checkpoints, labels);
//! - `report/`: snapshot → kernel state → detectors (shared with the CLI, in
//!   `fdguard_report::detect`) → render → write;
//! - `agent/`: when reports happen (signal, requests, exit), the `fdguard` thread and its
//!   watcher, fork bookkeeping;
//! - `platform/`: libc, kernel and loader glue used by every stage.
//!
//! `config` is read once by `init` (the constructor); `capi` is the C API. Each module's first
//! lines state its one job.
//!
//! Unsafe code is denied crate-wide and allowed, with a `// SAFETY:` comment on every block,
//! only in the files that must talk to libc or the loader or read foreign memory: each opts in
//! at its top with `#![allow(unsafe_code)] // <why>`. Plain libc calls are small safe
//! functions in `platform/` instead. `tests/layering.rs` checks all of this and the layering
//! above (imports only point down; no import loop).
#![deny(unsafe_code)]
// In unit tests the hooks are not exported (so the test binary never interposes itself), which
// leaves most of the crate unreachable from the test harness.
#![cfg_attr(test, allow(dead_code))]

mod agent;
mod annotate;
mod capi;
mod config;
mod hooks;
mod init;
mod platform;
mod report;
mod track;
