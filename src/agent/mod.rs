//! The agent: fdguard's own activity inside the host — the one thread it owns (`thread`), what
//! asks for reports (`signal`, `control` for `fdguard report` requests, `exit`), the TCP-state
//! watcher that runs between requests (`watch`), the Prometheus metrics file it rewrites on its
//! tick (`metrics`), and fork bookkeeping (`fork`).
//!
//! Every report the agent or the C API writes goes through [`report_now`], so what a report
//! learns about the sockets' TCP states reaches the watcher, the only writer of those dates.

pub mod bell;
pub mod control;
pub mod exit;
pub mod fork;
pub mod metrics;
pub mod signal;
pub mod thread;
pub mod watch;

use crate::config::Format;
use crate::report::{self, Destination, Options, Written};
use fdguard_report::Trigger;

/// Builds and writes one report (see [`report::write_with`]) with the watcher's samples, and
/// hands the dates it worked out to the watcher. `fallback_to_stderr`: see [`Options`].
pub fn report_now(
    trigger: Trigger,
    destination: Destination<'_>,
    format: Format,
    fallback_to_stderr: bool,
) -> Written {
    report_with(
        trigger,
        destination,
        format,
        Options {
            fallback_to_stderr,
            ..Options::default()
        },
    )
}

/// [`report_now`] with every option; adds what the agent knows that the report side cannot
/// (the watcher's samples; the report signal taken over by the host: once, on the first report
/// after it happened).
pub fn report_with(
    trigger: Trigger,
    destination: Destination<'_>,
    format: Format,
    mut options: Options,
) -> Written {
    options.notes.extend(signal::replaced_note());
    options.samples = watch::samples();
    let written = report::write_with(trigger, destination, format, options);
    watch::note(&written.states);
    written
}
