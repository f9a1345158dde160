//! `fdguard show FILE|DIR…`: render JSON reports as text (the library's own renderer), or
//! re-emit them as JSON, optionally narrowed by a filter; `--fail-on` gates CI.

use std::io::Write as _;
use std::path::PathBuf;

use fdguard_report::filter::{Filter, apply};
use fdguard_report::{Report, text};

use crate::ReportFormat;
use crate::error::{EXIT_OK, Failure, Result};
use crate::files::{load_report, report_files};
use crate::gate::{self, EXIT_FAIL_ON, FailOn};
use crate::style;

/// Options of `fdguard show`.
#[derive(Debug, Clone)]
pub struct ShowOptions {
    /// JSON reports (`-` for standard input) and directories of them.
    pub files: Vec<PathBuf>,
    /// Output format.
    pub format: ReportFormat,
    /// Text without stack frames ([`text::Options::brief`]).
    pub brief: bool,
    /// What to keep.
    pub filter: Filter,
    /// Exit with [`EXIT_FAIL_ON`] when a shown report has such a finding.
    pub fail_on: Vec<FailOn>,
}

/// The reports `options` names, filtered: files as given (`-` is standard input), and every
/// `*.json` report of a directory (other files there are skipped with a warning).
pub fn load(options: &ShowOptions) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    let stdin_or_files: Vec<PathBuf> = options.files.clone();
    for input in &stdin_or_files {
        if input == std::path::Path::new("-") {
            reports.push(load_report(input)?);
            continue;
        }
        for (path, from_directory) in report_files(std::slice::from_ref(input))? {
            match load_report(&path) {
                Ok(r) => reports.push(r),
                Err(e) if from_directory => eprintln!("fdguard: skipping {e}"),
                Err(e) => return Err(e),
            }
        }
    }
    if reports.is_empty() {
        return Err(Failure::new("none of the files is an fdguard JSON report"));
    }
    Ok(reports.iter().map(|r| apply(r, &options.filter)).collect())
}

/// The output of `fdguard show` for `reports`, without colour: text reports one after the other
/// (a blank line between), or JSON (an object for one file, an array for several or for a
/// directory).
pub fn render_reports(reports: &[Report], options: &ShowOptions) -> Result<String> {
    Ok(match options.format {
        ReportFormat::Text => {
            let text_options = text::Options {
                brief: options.brief,
            };
            reports
                .iter()
                .map(|r| text::render_with(r, &text_options))
                .collect::<Vec<_>>()
                .join("\n")
        }
        ReportFormat::Json => {
            let one = reports.len() == 1 && options.files.len() == 1 && !options.files[0].is_dir();
            let json = if one {
                fdguard_report::json::report_bytes(&reports[0])
            } else {
                fdguard_report::json::reports_bytes(reports)
            };
            String::from_utf8_lossy(&json).into_owned()
        }
    })
}

/// The output of `fdguard show`, without colour.
pub fn render(options: &ShowOptions) -> Result<String> {
    render_reports(&load(options)?, options)
}

/// Runs `fdguard show`; returns the exit status (0, or [`EXIT_FAIL_ON`]).
pub fn show(options: &ShowOptions) -> Result<i32> {
    let reports = load(options)?;
    let mut output = render_reports(&reports, options)?;
    if options.format == ReportFormat::Text && style::stdout_wants_colour() {
        output = style::colour_report(&output);
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to standard output: {e}")))?;
    let matched: usize = reports
        .iter()
        .map(|r| gate::count_in_report(r, &options.fail_on))
        .sum();
    if matched > 0 {
        eprintln!("fdguard: {matched} finding(s) match --fail-on");
        return Ok(EXIT_FAIL_ON);
    }
    Ok(EXIT_OK)
}
