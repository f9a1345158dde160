//! `fdguard diff OLD.json NEW.json`: what grew between two reports of one process.

use std::io::Write as _;
use std::path::PathBuf;

use fdguard_report::diff;

use crate::error::{Failure, Result};
use crate::files::load_report;
use crate::style;

/// Options of `fdguard diff`.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// The earlier report.
    pub old: PathBuf,
    /// The later report.
    pub new: PathBuf,
    /// Print the diff as JSON.
    pub json: bool,
}

/// The output of `fdguard diff`, without colour.
pub fn render(options: &DiffOptions) -> Result<String> {
    if options.old == std::path::Path::new("-") && options.new == std::path::Path::new("-") {
        return Err(Failure::usage(
            "only one of OLD and NEW can be read from standard input (-)",
        ));
    }
    let old = load_report(&options.old)?;
    let new = load_report(&options.new)?;
    let result = diff::diff(&old, &new);
    if options.json {
        let mut json = serde_json::to_string_pretty(&result)
            .map_err(|e| Failure::new(format!("cannot serialise the diff: {e}")))?;
        json.push('\n');
        Ok(json)
    } else {
        Ok(diff::render(&result))
    }
}

/// Runs `fdguard diff`.
pub fn run_diff(options: &DiffOptions) -> Result<()> {
    let mut output = render(options)?;
    if !options.json && style::stdout_wants_colour() {
        output = style::colour_diff(&output);
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to standard output: {e}")))
}
