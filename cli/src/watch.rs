//! `fdguard watch PID… [--every 30s] [--for 2h] [--out DIR]`: samples processes on a
//! schedule and ends with what grew.
//!
//! Each sample is a full report: asked from libfdguard.so (`fdguard report`'s protocol, with
//! creating stacks) when the process has it loaded, otherwise taken from outside
//! (`fdguard inspect`, with a [`History`] that dates hang-ups and ages across samples). Every
//! sample is kept as JSON in the output directory; at the end come `summary.json`, the
//! self-contained `timeline.html`, and the growth summary on stdout.
//!
//! Bounded: the loop ends at `--for` (and after [`MAX_SAMPLES`]), when every process has
//! exited, or on SIGINT/SIGTERM/SIGHUP. Those signals are blocked while watching and waited for
//! with `sigtimedwait` between samples, so a Ctrl-C ends the watch at once — between samples —
//! and the summary is still written. The live progress line goes to stderr only when stderr is
//! a terminal.

use std::fs;
use std::io::{IsTerminal, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fdguard_report::Report;
use fdguard_report::units::UtcTime;

use crate::ReportFormat;
use crate::control::{Target, inspect_target, request_report};
use crate::error::{EXIT_OK, Failure, Result};
use crate::files::parse_report;
use crate::inspect::build::History;
use crate::inspect::collect::{self, LookError};
use crate::inspect::{self, Judging};
use crate::timeline::{Growth, Timeline, rate, render_growth};

/// No watch takes more samples than this, whatever `--every` and `--for` say.
pub const MAX_SAMPLES: u64 = 100_000;
/// Shortest interval: below it fdguard would mostly measure itself.
pub const MIN_EVERY: Duration = Duration::from_millis(100);

/// Options of `fdguard watch`.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Processes to watch.
    pub pids: Vec<i32>,
    /// Time between samples.
    pub every: Duration,
    /// How long to watch.
    pub duration: Duration,
    /// Where samples go (default `fdguard-watch/<UTC time>-<fdguard's pid>/`).
    pub out: Option<PathBuf>,
    /// How `inspect` samples judge sockets.
    pub judging: Judging,
    /// How long to wait for a report from libfdguard.so.
    pub timeout: Duration,
    /// Print the summary as JSON.
    pub json: bool,
}

/// Parses `30s`, `500ms`, `2h`, `1h30m`, `90` (seconds).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration (examples: 30s, 500ms, 10m, 2h, 1h30m)");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds))
            .ok_or_else(bad);
    }
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    if total.is_finite() && total <= 365.0 * 86400.0 {
        Ok(Duration::from_secs_f64(total))
    } else {
        Err(bad())
    }
}

/// SIGINT, SIGTERM and SIGHUP blocked for the duration of the watch and waited for between
/// samples; the previous mask comes back on drop.
struct StopSignals {
    set: libc::sigset_t,
    previous: libc::sigset_t,
}

impl StopSignals {
    fn block() -> StopSignals {
        // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` and `previous` are live sigset_t values owned by this frame; the
        // signal numbers are valid; pthread_sigmask only changes this thread's mask (the CLI
        // runs its watch on the main thread and starts no other).
        unsafe {
            libc::sigemptyset(&raw mut set);
            libc::sigaddset(&raw mut set, libc::SIGINT);
            libc::sigaddset(&raw mut set, libc::SIGTERM);
            libc::sigaddset(&raw mut set, libc::SIGHUP);
            libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, &raw mut previous);
        }
        StopSignals { set, previous }
    }

    /// Waits up to `timeout` for one of the signals; returns it if one came.
    fn wait(&self, timeout: Duration) -> Option<i32> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `self.set` is an initialised sigset_t, `ts` a live timespec; a null siginfo
        // pointer is allowed. The signals are blocked (see `block`), as sigtimedwait requires.
        let signal =
            unsafe { libc::sigtimedwait(&raw const self.set, std::ptr::null_mut(), &raw const ts) };
        (signal > 0).then_some(signal)
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `block`, a live sigset_t.
        unsafe {
            libc::pthread_sigmask(
                libc::SIG_SETMASK,
                &raw const self.previous,
                std::ptr::null_mut(),
            );
        }
    }
}

/// How one process is sampled.
enum Source {
    /// libfdguard.so answers report requests.
    Library(Target),
    /// From outside, with what earlier looks saw.
    Outside(History),
}

struct Watched {
    pid: i32,
    source: Source,
    timeline: Option<Timeline>,
    seq: u64,
    /// Why sampling stopped (the process exited, …).
    ended: Option<String>,
    /// Warnings already printed (each once).
    warned: Vec<String>,
}

impl Watched {
    fn start(pid: i32) -> Watched {
        let loaded = fdguard_diag::procfs::maps_mention(pid, crate::preload::LIBRARY_FILE_NAME)
            .unwrap_or(false);
        let mut warned = Vec::new();
        let source = match loaded.then(|| inspect_target(pid)) {
            Some(Ok(target)) => Source::Library(target),
            Some(Err(why)) => {
                warned.push(format!(
                    "process {pid} has libfdguard.so loaded but cannot be asked for reports ({}); \
                     watching it from outside instead",
                    why.message
                ));
                Source::Outside(History::default())
            }
            None => Source::Outside(History::default()),
        };
        for warning in &warned {
            eprintln!("fdguard: warning: {warning}");
        }
        Watched {
            pid,
            source,
            timeline: None,
            seq: 0,
            ended: None,
            warned,
        }
    }

    fn warn_once(&mut self, warning: String) {
        if !self.warned.contains(&warning) {
            eprintln!("fdguard: warning: {warning}");
            self.warned.push(warning);
        }
    }

    /// Takes one sample. `Ok(None)`: no sample this time (warned). `Err`: this process cannot
    /// be watched at all (only returned for its first sample).
    fn sample(&mut self, judging: &Judging, timeout: Duration) -> Result<Option<Report>> {
        let pid = self.pid;
        let first = self.timeline.is_none();
        match &mut self.source {
            Source::Library(target) => {
                match request_report(target, ReportFormat::Json, timeout)
                    .and_then(|bytes| parse_report(&bytes, &format!("the report of process {pid}")))
                {
                    Ok(report) => Ok(Some(report)),
                    Err(failure) => {
                        if exited(pid) {
                            self.ended = Some("it exited".to_string());
                            return Ok(None);
                        }
                        if first {
                            return Err(failure);
                        }
                        self.warn_once(format!(
                            "process {pid}: sample skipped: {}",
                            failure.message
                        ));
                        Ok(None)
                    }
                }
            }
            Source::Outside(history) => match collect::look(pid, &mut |_| {}) {
                Ok(observation) => {
                    self.seq += 1;
                    let report = inspect::report(&observation, history, judging, self.seq);
                    history.record(&report.sockets, report.time_unix_ms);
                    Ok(Some(report))
                }
                Err(LookError::NoSuchProcess | LookError::Zombie | LookError::ExitedDuringLook)
                    if !first =>
                {
                    self.ended = Some("it exited".to_string());
                    Ok(None)
                }
                Err(error) => {
                    let failure = inspect::failure(pid, error);
                    if first {
                        return Err(failure);
                    }
                    self.ended = Some(failure.message);
                    Ok(None)
                }
            },
        }
    }
}

/// True when `pid` is gone or a zombie.
fn exited(pid: i32) -> bool {
    !matches!(fdguard_diag::procfs::state_and_start(pid), Ok((state, _)) if state != 'Z' && state != 'X')
}

/// Writes a new file mode 0600, refusing to replace anything.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(bytes)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))
}

/// Writes a file mode 0600 through a temporary name, replacing an older one.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    write_new(&temp, bytes)?;
    fs::rename(&temp, path).map_err(|e| {
        let _ = fs::remove_file(&temp);
        Failure::new(format!("cannot write {}: {e}", path.display()))
    })
}

fn default_out_dir() -> Result<PathBuf> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let stamp = UtcTime::from_unix_seconds(seconds).to_compact();
    let cwd = std::env::current_dir()
        .map_err(|e| Failure::new(format!("cannot read the current directory: {e}")))?;
    Ok(cwd
        .join("fdguard-watch")
        .join(format!("{stamp}-{}", std::process::id())))
}

/// `▁▂▃▄▅▆▇█` for the last values, scaled between their min and max.
pub fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (Some(&min), Some(&max)) = (values.iter().min(), values.iter().max()) else {
        return String::new();
    };
    values
        .iter()
        .map(|&v| {
            if max == min {
                BARS[0]
            } else {
                BARS[((v - min) * 7 / (max - min)) as usize]
            }
        })
        .collect()
}

/// Samples shown in the progress line's sparkline.
const SPARK_SAMPLES: usize = 24;

fn progress_line(watched: &[Watched], samples: u64, left: Duration, next: Duration) -> String {
    let mut parts = Vec::new();
    for w in watched {
        let Some(timeline) = &w.timeline else {
            continue;
        };
        let Some(last) = timeline.samples.last() else {
            continue;
        };
        let first = &timeline.samples[0];
        let fds: Vec<u64> = timeline
            .samples
            .iter()
            .rev()
            .take(SPARK_SAMPLES)
            .rev()
            .map(|s| s.open_fds)
            .collect();
        let delta = last.live_sockets as i64 - first.live_sockets as i64;
        let ended = if w.ended.is_some() { " (ended)" } else { "" };
        parts.push(format!(
            "pid {}{ended}: {} sockets ({}{delta}), {} findings, fds {} {}",
            w.pid,
            last.live_sockets,
            if delta >= 0 { "+" } else { "" },
            last.findings,
            sparkline(&fds),
            last.open_fds
        ));
    }
    format!(
        "fdguard watch: sample {samples}  {}  next in {}s, {} left (Ctrl-C stops)",
        parts.join("; "),
        next.as_secs_f64().ceil() as u64,
        fdguard_report::units::duration(left.as_secs_f64())
    )
}

/// Runs `fdguard watch`.
pub fn watch(options: &WatchOptions) -> Result<i32> {
    if options.every < MIN_EVERY {
        return Err(Failure::usage(format!(
            "--every must be at least {} ms",
            MIN_EVERY.as_millis()
        )));
    }
    for &pid in &options.pids {
        if pid <= 0 {
            return Err(Failure::usage(format!("{pid} is not a process id")));
        }
    }
    let out = match &options.out {
        Some(dir) => crate::files::absolute(dir)?,
        None => default_out_dir()?,
    };
    let taken = std::fs::read_dir(&out)
        .into_iter()
        .flatten()
        .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("sample.")));
    if taken {
        return Err(Failure::usage(format!(
            "{} already holds the samples of another watch; choose another --out",
            out.display()
        )));
    }
    let mut watched: Vec<Watched> = options
        .pids
        .iter()
        .map(|&pid| Watched::start(pid))
        .collect();
    let stop = StopSignals::block();
    let started = Instant::now();
    let deadline = started + options.duration;
    let live = std::io::stderr().is_terminal();
    let mut next = started;
    let mut samples = 0u64;
    let mut stopped_by: Option<i32> = None;
    let mut dir_ready = false;
    let mut first_failure: Option<Failure> = None;
    loop {
        for w in watched.iter_mut().filter(|w| w.ended.is_none()) {
            let report = match w.sample(&options.judging, options.timeout) {
                Ok(Some(report)) => report,
                Ok(None) => continue,
                Err(failure) if options.pids.len() == 1 => return Err(failure),
                Err(failure) => {
                    eprintln!("fdguard: error: {}", failure.message);
                    w.ended = Some(failure.message.clone());
                    first_failure.get_or_insert(failure);
                    continue;
                }
            };
            if !dir_ready {
                fs::create_dir_all(&out)
                    .map_err(|e| Failure::new(format!("cannot create {}: {e}", out.display())))?;
                dir_ready = true;
            }
            let json =
                String::from_utf8_lossy(&fdguard_report::json::report_bytes(&report)).into_owned();
            let index = w.timeline.as_ref().map_or(0, |t| t.samples.len()) + 1;
            write_new(
                &out.join(format!("sample.{}.{index:05}.json", w.pid)),
                json.as_bytes(),
            )?;
            w.timeline
                .get_or_insert_with(|| Timeline::new(report.pid, &report.program))
                .push(&report);
        }
        samples += 1;
        if watched.iter().all(|w| w.ended.is_some()) || samples >= MAX_SAMPLES {
            break;
        }
        next += options.every;
        let now = Instant::now();
        if next > deadline {
            break;
        }
        if next < now {
            next = now; // a slow sample: no burst to catch up
        }
        // Wait for the next sample in slices of at most a second, refreshing the progress line.
        loop {
            let now = Instant::now();
            if now >= next {
                break;
            }
            if live {
                let line = progress_line(&watched, samples, deadline - now, next - now);
                eprint!("\r\x1b[2K{line}");
            }
            if let Some(signal) = stop.wait((next - now).min(Duration::from_secs(1))) {
                stopped_by = Some(signal);
                break;
            }
        }
        if stopped_by.is_some() {
            break;
        }
    }
    if live {
        eprint!("\r\x1b[2K");
    }
    if let Some(signal) = stopped_by {
        eprintln!(
            "fdguard: {} received: watch stopped after {samples} sample(s)",
            crate::signals::signal_name(signal)
        );
    }
    for w in &watched {
        if let Some(why) = &w.ended {
            eprintln!("fdguard: process {}: sampling ended: {why}", w.pid);
        }
    }
    let timelines: Vec<Timeline> = watched.into_iter().filter_map(|w| w.timeline).collect();
    if timelines.is_empty() {
        // Each process's failure was printed above; the status is the first one's.
        let code = first_failure.map_or(crate::error::EXIT_NO_PROCESS, |f| f.exit_code);
        return Err(Failure::with_code(
            "no sample could be taken from any process".to_string(),
            code,
        ));
    }
    let growths: Vec<Growth> = timelines.iter().map(Timeline::growth).collect();
    let mut summary = serde_json::to_string_pretty(&growths)
        .map_err(|e| Failure::new(format!("cannot serialise the summary: {e}")))?;
    summary.push('\n');
    write_replacing(&out.join("summary.json"), summary.as_bytes())?;
    let page = crate::html::render(&timelines);
    write_replacing(&out.join("timeline.html"), page.as_bytes())?;
    let text = if options.json {
        summary
    } else {
        growths
            .iter()
            .map(render_growth)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(format!("cannot write to standard output: {e}")))?;
    let rates: Vec<String> = growths
        .iter()
        .map(|g| {
            format!(
                "pid {}: live sockets {}",
                g.pid,
                rate(g.live_sockets.per_minute)
            )
        })
        .collect();
    eprintln!(
        "fdguard: samples in {}; timeline: {} ({})",
        out.display(),
        out.join("timeline.html").display(),
        rates.join(", ")
    );
    drop(stop);
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10min"), Ok(Duration::from_secs(600)));
        for bad in ["", "s", "5x", "-3", "h2", "1e400"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sparklines() {
        assert_eq!(sparkline(&[]), "");
        assert_eq!(sparkline(&[5, 5]), "▁▁");
        assert_eq!(sparkline(&[0, 7, 14]), "▁▄█");
    }
}
