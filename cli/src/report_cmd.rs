//! `fdguard report PID`: ask a live process running under libfdguard.so for a report now.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::ReportFormat;
use crate::control::{inspect_target, request_report};
use crate::error::{Failure, Result};
use crate::style;

/// Options of `fdguard report`.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The target process.
    pub pid: i32,
    /// Format asked from the library.
    pub format: ReportFormat,
    /// How long to wait for the answer.
    pub timeout: Duration,
    /// Write the report there instead of standard output.
    pub output: Option<PathBuf>,
}

/// Runs `fdguard report`.
pub fn report(options: &ReportOptions) -> Result<()> {
    let target = inspect_target(options.pid)?;
    let bytes = request_report(&target, options.format, options.timeout)?;
    if let Some(path) = &options.output {
        std::fs::write(path, &bytes)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
        eprintln!(
            "fdguard: report of process {} written to {}",
            options.pid,
            path.display()
        );
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    let result = if options.format == ReportFormat::Text && style::stdout_wants_colour() {
        stdout.write_all(style::colour_report(&String::from_utf8_lossy(&bytes)).as_bytes())
    } else {
        stdout.write_all(&bytes)
    };
    result
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write the report to standard output: {e}")))
}
