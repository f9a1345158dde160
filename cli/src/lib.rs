//! The `fdguard` command, as a library: one module per subcommand plus the pieces they share.
//! `main.rs` only parses the command line (clap) and calls into these modules.
//!
//! - [`run`]: start a program under `libfdguard.so` and summarise its reports.
//! - [`report_cmd`]: ask a live process for a report ([`control`] is the request protocol).
//! - [`show`], [`diff_cmd`]: render, filter and compare JSON reports.
//! - [`demo`]: a self-contained demonstration of the grpc/grpc#38871 leak pattern.
//! - [`export`]: reports as a pprof profile for continuous profilers ([`pprof`] encodes it).
//! - [`preload`]: finding the library, `LD_PRELOAD`, and whether a program can be interposed.
//! - [`inspect`]: a report of any process from outside (`/proc` and sock_diag, no preload).
//! - [`watch`]: samples on a schedule and what grew ([`timeline`]); [`html`] draws it
//!   ([`html_cmd`]: `fdguard html` on saved reports).

pub mod control;
pub mod demo;
pub mod diff_cmd;
pub mod error;
pub mod export;
pub mod files;
pub mod gate;
pub mod html;
pub mod html_cmd;
pub mod inspect;
pub mod pprof;
pub mod preload;
pub mod report_cmd;
pub mod run;
pub mod show;
pub mod signals;
pub mod style;
pub mod supervise;
pub mod timeline;
pub mod watch;

/// The two report formats the library writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// LeakSanitizer-style text (`fdguard_report::text::render`).
    Text,
    /// JSON, schema_version 1.
    Json,
}

impl ReportFormat {
    /// The spelling used by `FDGUARD_FORMAT` and the request file.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Text => "text",
            ReportFormat::Json => "json",
        }
    }

    /// The file extension of reports in this format.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Text => "txt",
            ReportFormat::Json => "json",
        }
    }
}
