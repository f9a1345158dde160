//! `fdguard report PID…`: ask live processes running under libfdguard.so for a report now,
//! through the request channel (no signal; `--signal` adds the report signal). See
//! [`crate::control`] for the protocol.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::ReportFormat;
use crate::control::{Delivery, inspect_target, request_reports, tree};
use crate::error::{EXIT_OK, Failure, Result};
use crate::files::parse_report;
use crate::style;
use fdguard_report::text;

/// Options of `fdguard report`.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// The target processes.
    pub pids: Vec<i32>,
    /// Each pid and every process below it (a master and its workers).
    pub tree: bool,
    /// Output format.
    pub format: ReportFormat,
    /// Text without stack frames: JSON is asked from the library and rendered here
    /// ([`text::Options::brief`]).
    pub brief: bool,
    /// How long to wait for all the answers.
    pub timeout: Duration,
    /// Write the reports there instead of standard output.
    pub output: Option<PathBuf>,
    /// How the request reaches the processes.
    pub delivery: Delivery,
}

/// The brief text view of the JSON report `bytes` of process `pid`.
fn brief(bytes: &[u8], pid: i32) -> Result<Vec<u8>> {
    let report = parse_report(bytes, &format!("the report of process {pid}"))?;
    Ok(text::render_with(&report, &text::Options { brief: true }).into_bytes())
}

/// Runs `fdguard report`; returns the exit status (1 when any process could not answer: each
/// costs one stderr line saying why, the others are still printed).
pub fn report(options: &ReportOptions) -> Result<i32> {
    let mut pids: Vec<i32> = Vec::new();
    for &pid in &options.pids {
        if pid <= 0 {
            return Err(Failure::usage(format!("{pid} is not a process id")));
        }
        let found = if options.tree { tree(pid) } else { vec![pid] };
        for p in found {
            if !pids.contains(&p) {
                pids.push(p);
            }
        }
    }
    let several = pids.len() > 1 || options.tree;
    let mut failures: Vec<(usize, Failure)> = Vec::new();
    let mut targets = Vec::new();
    let mut order = Vec::new();
    for (i, &pid) in pids.iter().enumerate() {
        match inspect_target(pid) {
            Ok(target) => {
                targets.push(target);
                order.push(i);
            }
            Err(e) => failures.push((i, e)),
        }
    }
    // The library writes full text; the brief view is rendered here from its JSON.
    let asked = if options.brief {
        ReportFormat::Json
    } else {
        options.format
    };
    let answers = request_reports(&targets, asked, options.timeout, options.delivery);
    let mut reports: Vec<(usize, Vec<u8>)> = Vec::new();
    for ((i, answer), target) in order.into_iter().zip(answers).zip(&targets) {
        let answer = if options.brief {
            answer.and_then(|bytes| brief(&bytes, target.pid))
        } else {
            answer
        };
        match answer {
            Ok(bytes) => reports.push((i, bytes)),
            Err(e) => failures.push((i, e)),
        }
    }
    failures.sort_by_key(|(i, _)| *i);
    reports.sort_by_key(|(i, _)| *i);
    if !several && let Some((_, failure)) = failures.pop() {
        return Err(failure);
    }
    for (_, failure) in &failures {
        eprintln!("fdguard: error: {}", failure.message);
    }
    let status = if failures.is_empty() { EXIT_OK } else { 1 };
    if reports.is_empty() {
        return Ok(status);
    }
    let bytes = match options.format {
        ReportFormat::Json if several => {
            let values: Vec<serde_json::Value> = reports
                .iter()
                .map(|(_, b)| serde_json::from_slice(b))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Failure::new(format!("a report is not valid JSON: {e}")))?;
            fdguard_report::json::reports_bytes(&values)
        }
        _ => reports
            .iter()
            .map(|(_, b)| b.as_slice())
            .collect::<Vec<_>>()
            .join(&b"\n"[..]),
    };
    if let Some(path) = &options.output {
        std::fs::write(path, &bytes)
            .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
        eprintln!(
            "fdguard: {} written to {}",
            if reports.len() == 1 {
                "report".to_string()
            } else {
                format!("{} reports", reports.len())
            },
            path.display()
        );
        return Ok(status);
    }
    let mut stdout = std::io::stdout().lock();
    let result = if options.format == ReportFormat::Text && style::stdout_wants_colour() {
        stdout.write_all(style::colour_report(&String::from_utf8_lossy(&bytes)).as_bytes())
    } else {
        stdout.write_all(&bytes)
    };
    result
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write the report to standard output: {e}")))?;
    Ok(status)
}
