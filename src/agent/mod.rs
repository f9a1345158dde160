//! The agent: fdguard's own activity inside the host — the one thread it owns (`thread`), what
//! asks for reports (`signal`, `control` for `fdguard report` requests, `exit`), the TCP-state
//! watcher that runs between requests (`watch`), the Prometheus metrics file it rewrites on its
//! tick (`metrics`), and fork bookkeeping (`fork`).
//!
//! Every report the agent or the C API writes goes through [`report_now`], so what a report
//! learns about the sockets' TCP states reaches the watcher, the only writer of those dates.

pub mod control;
pub mod exit;
pub mod fork;
pub mod metrics;
pub mod signal;
pub mod thread;
pub mod watch;

use crate::config::Format;
use crate::report::{self, Destination, Written};
use fdguard_report::Trigger;

/// Builds and writes one report (see [`report::write_with`]) with the watcher's samples, and
/// hands the dates it worked out to the watcher.
pub fn report_now(
    trigger: Trigger,
    destination: Destination<'_>,
    format: Format,
    fallback_to_stderr: bool,
) -> Written {
    let written = report::write_with(
        trigger,
        destination,
        format,
        fallback_to_stderr,
        watch::samples(),
    );
    watch::note(&written.states);
    written
}
