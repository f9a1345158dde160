//! `fdguard html DIR|REPORT.json… [-o FILE]`: the self-contained HTML timeline of a watch
//! directory or of any set of saved JSON reports (`fdguard run`'s, `fdguard report --json`,
//! `fdguard inspect --json`), one section per process.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fdguard_report::Report;

use crate::error::{Failure, Result};
use crate::files::load_report;
use crate::timeline::Timeline;

/// Options of `fdguard html`.
#[derive(Debug, Clone)]
pub struct HtmlOptions {
    /// Directories (every `*.json` report in them) and report files.
    pub inputs: Vec<PathBuf>,
    /// Where the page goes (default: `DIR/timeline.html` for one directory, else
    /// `fdguard-timeline.html`).
    pub output: Option<PathBuf>,
}

/// Reads the reports: every `*.json` in a directory that parses as a report (others are
/// skipped with a warning), and every file named explicitly (which must parse).
pub fn load(inputs: &[PathBuf]) -> Result<Vec<Report>> {
    let mut reports = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| Failure::new(format!("cannot read {}: {e}", input.display())))?
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter(|p| p.file_name().is_some_and(|n| n != "summary.json"))
                .collect();
            files.sort();
            for file in files {
                match load_report(&file) {
                    Ok(report) => reports.push(report),
                    Err(e) => eprintln!(
                        "fdguard: warning: skipping {}: {}",
                        file.display(),
                        e.message
                    ),
                }
            }
        } else {
            reports.push(load_report(input)?);
        }
    }
    if reports.is_empty() {
        return Err(Failure::new(
            "no JSON report found: give a `fdguard watch` directory or report files",
        ));
    }
    Ok(reports)
}

/// One timeline per process (pid and program), samples in time order.
pub fn timelines(mut reports: Vec<Report>) -> Vec<Timeline> {
    reports.sort_by(|a, b| a.time_unix_ms.cmp(&b.time_unix_ms).then(a.seq.cmp(&b.seq)));
    let mut by_process: BTreeMap<(i32, String), Timeline> = BTreeMap::new();
    for report in &reports {
        by_process
            .entry((report.pid, report.program.clone()))
            .or_insert_with(|| Timeline::new(report.pid, &report.program))
            .push(report);
    }
    by_process.into_values().collect()
}

fn default_output(inputs: &[PathBuf]) -> PathBuf {
    match inputs {
        [dir] if dir.is_dir() => dir.join("timeline.html"),
        _ => Path::new("fdguard-timeline.html").to_path_buf(),
    }
}

/// Runs `fdguard html`.
pub fn html(options: &HtmlOptions) -> Result<()> {
    let reports = load(&options.inputs)?;
    let count = reports.len();
    let timelines = timelines(reports);
    let page = crate::html::render(&timelines);
    let output = options
        .output
        .clone()
        .unwrap_or_else(|| default_output(&options.inputs));
    std::fs::write(&output, page)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", output.display())))?;
    eprintln!(
        "fdguard: timeline of {count} report(s) from {} process(es) written to {}",
        timelines.len(),
        output.display()
    );
    Ok(())
}
