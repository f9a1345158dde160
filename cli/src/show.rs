//! `fdguard show FILE.json`: render a JSON report as text (the library's own renderer), or
//! re-emit it as JSON, optionally narrowed by a filter.

use std::io::Write as _;
use std::path::PathBuf;

use fdguard_report::filter::{Filter, apply};
use fdguard_report::text;

use crate::ReportFormat;
use crate::error::{Failure, Result};
use crate::files::load_report;
use crate::style;

/// Options of `fdguard show`.
#[derive(Debug, Clone)]
pub struct ShowOptions {
    /// The JSON report (`-` for standard input).
    pub file: PathBuf,
    /// Output format.
    pub format: ReportFormat,
    /// What to keep.
    pub filter: Filter,
}

/// The output of `fdguard show`, without colour.
pub fn render(options: &ShowOptions) -> Result<String> {
    let report = load_report(&options.file)?;
    let report = apply(&report, &options.filter);
    Ok(match options.format {
        ReportFormat::Text => text::render(&report),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::new(format!("cannot serialise the report: {e}")))?;
            json.push('\n');
            json
        }
    })
}

/// Runs `fdguard show`.
pub fn show(options: &ShowOptions) -> Result<()> {
    let mut output = render(options)?;
    if options.format == ReportFormat::Text && style::stdout_wants_colour() {
        output = style::colour_report(&output);
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to standard output: {e}")))
}
