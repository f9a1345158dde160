//! `fdguard export --pprof OUT.pb.gz REPORT.json|DIR …`: live sockets as a pprof profile, so
//! the continuous profilers a fleet already runs (Grafana Pyroscope, Parca, `go tool pprof`)
//! can answer "which stack holds the sockets, across every process".
//!
//! - One sample per (creating stack, labels), whose value is how many socket fds it holds
//!   now: the sample type is `sockets`/`count`, an "inuse" type like heap profiles' inuse_space.
//! - Frames carry their function names (and file:line where the report has them), since
//!   profilers do not symbolise native frames they receive; a frame with no name is
//!   `module+0xOFF`. Addresses are module offsets, so the same code in two processes (ASLR)
//!   is one location.
//! - Labels: `backend` (client connections: the peer, bounded like the metrics to the 10
//!   busiest plus `other`), `tcp_state` (`none` when not TCP), `finding` (the unsuppressed
//!   findings naming the socket's fd, most severe first, joined by `,`; `none`).
//! - Several reports of ONE process (a directory of periodic reports) would count the same
//!   sockets several times: only the latest report of each process is used (a process is its
//!   pid, program and start time, so a reused pid is another process). Reports of different
//!   processes add up: that is the fleet view.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use fdguard_report::fleet::{self, Backends};
use fdguard_report::stacks::{basename, stack_key};
use fdguard_report::units::UtcTime;
use fdguard_report::{FindingKind, Frame, Report, Socket};

use crate::error::{Failure, Result};
use crate::files::{load_report, report_files};
use crate::pprof::{self, Builder};

/// Options of `fdguard export`.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Where the gzipped profile goes.
    pub pprof: PathBuf,
    /// JSON reports, and directories of them.
    pub inputs: Vec<PathBuf>,
}

/// What an export did, for the summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// Reports read.
    pub read: usize,
    /// Reports used: the latest of each process.
    pub used: usize,
    /// Socket fds in the profile.
    pub sockets: u64,
    /// Distinct samples.
    pub samples: usize,
}

/// When the process started, Unix seconds, as far as a report tells.
fn started_s(r: &Report) -> f64 {
    r.time_unix_ms as f64 / 1000.0 - r.uptime_s
}

/// The latest report of each process among `reports`.
pub fn latest_per_process(reports: Vec<Report>) -> Vec<Report> {
    let mut latest: Vec<Report> = Vec::new();
    for r in reports {
        // Two reports' start times differ by rounding only (milliseconds), never by seconds.
        match latest.iter_mut().find(|l| {
            l.pid == r.pid && l.program == r.program && (started_s(l) - started_s(&r)).abs() < 2.0
        }) {
            Some(l) => {
                if (r.time_unix_ms, r.seq) > (l.time_unix_ms, l.seq) {
                    *l = r;
                }
            }
            None => latest.push(r),
        }
    }
    latest.sort_by_key(|r| (r.time_unix_ms, r.pid));
    latest
}

/// A report frame as a pprof location.
fn frame_of(f: &Frame) -> pprof::Frame {
    let module = f.module.clone().unwrap_or_default();
    let offset = f
        .module_offset
        .as_deref()
        .and_then(|o| u64::from_str_radix(o.trim_start_matches("0x"), 16).ok());
    let name = match (&f.function, &f.module_offset) {
        (Some(function), _) => function.clone(),
        (None, Some(off)) if !module.is_empty() => format!("{}+{off}", basename(&module)),
        (None, _) => f.ip.clone(),
    };
    pprof::Frame {
        module,
        address: offset.unwrap_or(0),
        lines: vec![pprof::Line {
            function: pprof::Function {
                name,
                filename: f.file.clone().unwrap_or_default(),
            },
            line: f.line.map_or(0, i64::from),
        }],
    }
}

/// A socket's creating stack as pprof frames, innermost first. Frames of one return address
/// (inlined calls) become one location with several lines, as profile.proto models inlining;
/// a socket without a stack gets one frame naming where it came from.
fn stack_of(socket: &Socket) -> Vec<pprof::Frame> {
    if socket.stack.is_empty() {
        let what = stack_key(&[], socket.origin).remove(0);
        return vec![pprof::Frame {
            module: String::new(),
            address: 0,
            lines: vec![pprof::Line {
                function: pprof::Function {
                    name: what,
                    filename: String::new(),
                },
                line: 0,
            }],
        }];
    }
    let mut out: Vec<(String, pprof::Frame)> = Vec::new();
    for f in socket.stack.iter() {
        let frame = frame_of(f);
        match out.last_mut() {
            Some((ip, last)) if *ip == f.ip => last.lines.extend(frame.lines),
            _ => out.push((f.ip.clone(), frame)),
        }
    }
    out.into_iter().map(|(_, f)| f).collect()
}

/// The profile of `reports`' live sockets (see the module documentation).
pub fn profile(reports: &[Report]) -> (Builder, u64) {
    let mut b = Builder::new("sockets", "count");
    let backends = Backends::count(reports.iter().flat_map(|r| &r.sockets), fleet::TOP_BACKENDS);
    let mut sockets = 0;
    for r in reports {
        b.comment(&format!(
            "{} pid {}: report #{} ({}) at {}",
            r.program,
            r.pid,
            r.seq,
            r.trigger.as_str(),
            UtcTime::from_unix_seconds((r.time_unix_ms / 1000) as i64).to_human()
        ));
        // Kinds per fd, most severe first (FindingKind's order), whatever the report's order.
        let mut findings: BTreeMap<i32, BTreeSet<FindingKind>> = BTreeMap::new();
        for f in r.findings.iter().filter(|f| f.suppressed_by.is_none()) {
            for fd in &f.fds {
                findings.entry(*fd).or_default().insert(f.kind);
            }
        }
        for s in &r.sockets {
            let finding = findings.get(&s.fd).map_or_else(
                || "none".to_string(),
                |kinds| {
                    kinds
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                },
            );
            let mut labels = vec![
                ("tcp_state", fleet::state_label(s)),
                ("finding", finding.as_str()),
            ];
            if let Some(backend) = backends.label_of(s) {
                labels.push(("backend", backend));
            }
            b.add(&stack_of(s), &labels, 1);
            sockets += 1;
        }
    }
    let latest_ms = reports.iter().map(|r| r.time_unix_ms).max().unwrap_or(0);
    b.set_time_nanos((latest_ms as i64).saturating_mul(1_000_000));
    (b, sockets)
}

/// Runs `fdguard export`.
pub fn export(options: &ExportOptions) -> Result<Exported> {
    let files = report_files(&options.inputs)?;
    let mut reports = Vec::new();
    for (path, from_directory) in &files {
        match load_report(path) {
            Ok(r) => reports.push(r),
            // A directory may hold other JSON files: say so and go on. A file named on the
            // command line must be a report.
            Err(e) if *from_directory => eprintln!("fdguard: skipping {e}"),
            Err(e) => return Err(e),
        }
    }
    if reports.is_empty() {
        return Err(Failure::new("none of the files is an fdguard JSON report"));
    }
    let read = reports.len();
    let latest = latest_per_process(reports);
    let (builder, sockets) = profile(&latest);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&builder.encode())
        .and_then(|()| gz.finish())
        .and_then(|bytes| write_file(&options.pprof, &bytes))
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", options.pprof.display())))?;
    Ok(Exported {
        read,
        used: latest.len(),
        sockets,
        samples: builder.sample_count(),
    })
}

/// `fdguard export`: writes the profile and one summary line on stderr.
pub fn run(options: &ExportOptions) -> Result<()> {
    let done = export(options)?;
    eprintln!(
        "fdguard: {} socket fd(s) in {} sample(s) from {} report(s) (the latest of each of {} process(es)) -> {}",
        done.sockets,
        done.samples,
        done.read,
        done.used,
        options.pprof.display()
    );
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fdguard_report::{FdBudget, Summary, Trigger};

    fn report(pid: i32, seq: u64, time_s: u64, uptime_s: f64) -> Report {
        Report {
            schema_version: 1,
            tool: String::new(),
            collector: Default::default(),
            pid,
            program: "/bin/app".into(),
            cmdline: Vec::new(),
            trigger: Trigger::Signal,
            seq,
            time_unix_ms: time_s * 1000,
            uptime_s,
            fd_budget: FdBudget {
                open_fds: 0,
                limit_soft: 0,
                limit_hard: 0,
                sockets_open: 0,
                sockets_tracked: 0,
            },
            sockets: Vec::new(),
            findings: Vec::new(),
            recently_closed: Vec::new(),
            suppressions_used: Vec::new(),
            checkpoints: Vec::new(),
            notes: Vec::new(),
            summary: Summary::default(),
        }
    }

    #[test]
    fn the_latest_report_of_each_process() {
        let reports = vec![
            report(10, 1, 1000, 100.0),
            report(10, 2, 1060, 160.0),
            report(10, 1, 5000, 3.0), // pid 10 again, a new process
            report(11, 7, 1030, 50.0),
        ];
        let latest: Vec<(i32, u64, u64)> = latest_per_process(reports)
            .iter()
            .map(|r| (r.pid, r.seq, r.time_unix_ms / 1000))
            .collect();
        assert_eq!(latest, [(11, 7, 1030), (10, 2, 1060), (10, 1, 5000)]);
    }

    #[test]
    fn frames_of_one_address_are_one_location_and_nameless_ones_get_module_offset() {
        let frame = |ip: &str, function: Option<&str>| Frame {
            ip: ip.into(),
            function: function.map(Into::into),
            module: Some("/usr/lib/libgrpc.so.29".into()),
            module_offset: Some("0x41c185".into()),
            ..Frame::default()
        };
        let socket = Socket {
            stack: vec![
                frame("0x1", Some("inlined_helper")),
                frame("0x1", Some("caller")),
                frame("0x2", None),
            ]
            .into(),
            ..Socket::default()
        };
        let stack = stack_of(&socket);
        assert_eq!(stack.len(), 2);
        assert_eq!(stack[0].lines.len(), 2);
        assert_eq!(stack[0].address, 0x41c185);
        assert_eq!(stack[1].lines[0].function.name, "libgrpc.so.29+0x41c185");
        let bare = stack_of(&Socket::default());
        assert_eq!(bare[0].lines[0].function.name, "(no stack recorded)");
    }
}
