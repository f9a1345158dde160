//! `fdguard diff OLD.json NEW.json`: what grew between two reports of one process.

use std::io::Write as _;
use std::path::PathBuf;

use fdguard_report::diff;

use crate::error::{EXIT_OK, Failure, Result};
use crate::files::load_report;
use crate::gate::{self, EXIT_FAIL_ON, FailOn};
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
    /// Exit with [`EXIT_FAIL_ON`] when a matching finding appeared or grew.
    pub fail_on: Vec<FailOn>,
}

/// The output of `fdguard diff`, without colour.
pub fn render(options: &DiffOptions) -> Result<String> {
    render_and_gate(options).map(|(text, _)| text)
}

/// The output, and how many finding keys that appeared or grew match `--fail-on`.
fn render_and_gate(options: &DiffOptions) -> Result<(String, usize)> {
    if options.old == std::path::Path::new("-") && options.new == std::path::Path::new("-") {
        return Err(Failure::usage(
            "only one of OLD and NEW can be read from standard input (-)",
        ));
    }
    let old = load_report(&options.old)?;
    let new = load_report(&options.new)?;
    let result = diff::diff(&old, &new);
    let matched = gate::count_in_diff(&result, &new, &options.fail_on);
    if options.json {
        let mut json = serde_json::to_string_pretty(&result)
            .map_err(|e| Failure::new(format!("cannot serialise the diff: {e}")))?;
        json.push('\n');
        Ok((json, matched))
    } else {
        Ok((diff::render(&result), matched))
    }
}

/// Runs `fdguard diff`; returns the exit status (0, or [`EXIT_FAIL_ON`]).
pub fn run_diff(options: &DiffOptions) -> Result<i32> {
    let (mut output, matched) = render_and_gate(options)?;
    if !options.json && style::stdout_wants_colour() {
        output = style::colour_diff(&output);
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to standard output: {e}")))?;
    if matched > 0 {
        eprintln!("fdguard: {matched} finding(s) that appeared or grew match --fail-on");
        return Ok(EXIT_FAIL_ON);
    }
    Ok(EXIT_OK)
}
