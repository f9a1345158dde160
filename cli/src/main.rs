//! `fdguard`: the command-line shell. Parses arguments with clap and hands them to the library
//! modules in `fdguard_cli`; nothing else lives here.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fdguard_cli::error::{EXIT_OK, Failure};
use fdguard_cli::gate::FailOn;
use fdguard_cli::{
    ReportFormat, control, demo, diff_cmd, export, html_cmd, inspect, report_cmd, run, show,
    signals, watch,
};
use fdguard_report::FindingKind;
use fdguard_report::filter::Filter;

#[derive(Parser, Debug)]
#[command(
    name = "fdguard",
    version,
    about = "Find leaked sockets (CLOSE_WAIT, duplicate connections) in unmodified programs with libfdguard.so",
    after_help = concat!(
        "Examples:\n",
        "  fdguard demo                                 see a CLOSE_WAIT leak found, in 2 seconds\n",
        "  fdguard run -- ./my_grpc_client --target x   run a program under the shim\n",
        "  fdguard report 4242                          ask a running program for a report now\n",
        "  fdguard show fdguard-reports/*/fdguard.4242.1.json --kind peer_closed\n",
        "  fdguard diff before.json after.json          what grew between two reports\n",
        "  fdguard inspect 4242                         any running process, from outside (no preload)\n",
        "  fdguard watch 4242 --every 30s --for 2h      sample it, keep every sample, say what grew\n",
        "\n",
        "Exit status:\n",
        "  0  success\n",
        "  1  the operation failed (no such process, library not found or not loaded, bad report file, …)\n",
        "  2  usage error\n",
        "  3, 4, 5  inspect/watch: no such process, permission denied, no sock_diag in the kernel\n",
        "  `fdguard run` exits with the program's status (128+N if signal N killed it)."
    )
)]
struct Opt {
    #[command(subcommand)]
    command: Workload,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// Run a program with libfdguard.so preloaded and summarise its reports.
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard run -- ./server --port 8080\n",
        "      JSON reports in ./fdguard-reports/<time>-<pid>/; the last one is printed as text at exit\n",
        "  fdguard run --report stderr --format text -- python3 client.py\n",
        "      LeakSanitizer-style text on the program's stderr\n",
        "  fdguard run --report /tmp/reports/ --grace-ms 2000 --exitcode 23 -- ./client\n",
        "      fail the run (status 23) if a socket stays open 2s after its peer hung up\n",
        "  fdguard run --signal SIGUSR2 -- ./server    (the program uses SIGUSR1 itself)\n",
        "  fdguard run --metrics-dir /var/lib/node_exporter/textfile -- ./server\n",
        "      Prometheus metrics through node_exporter's textfile collector\n",
        "\n",
        "While it runs: `fdguard report PID` prints a report of the program on demand.\n",
        "Programs LD_PRELOAD cannot reach (static, Go, setuid) get a warning and run anyway.\n",
        "\n",
        "Exit status: the program's (128+N if signal N killed it); 127 command not found; 126 not executable;\n",
        "1 if fdguard could not start it otherwise; 2 usage error."
    ))]
    Run(RunArgs),

    /// Ask running processes (started under libfdguard.so) for a report now.
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard report 4242\n",
        "  fdguard report 4242 --json > now.json\n",
        "  fdguard report --tree $(cat /run/nginx.pid)     the master and its workers\n",
        "  fdguard report $(pidof my_server) --timeout 30 -o /tmp/leaks.txt\n",
        "  fdguard report 4242 --brief              findings and sockets, no stack frames\n",
        "\n",
        "No signal is sent: the request goes through the per-user directory /run/user/<uid>/fdguard/\n",
        "(or /tmp/fdguard-<uid>/), which fdguard's thread in the process checks every 250 ms.\n",
        "--signal also sends the report signal (then only if the process catches it now).\n",
        "Several processes: one text report after the other, or a JSON array.\n",
        "\n",
        "Exit status:\n",
        "  0  every report printed\n",
        "  1  a process could not answer (not preloaded, holds no socket, permission, no answer in time…: one line each says why)\n",
        "  2  usage error"
    ))]
    Report(ReportArgs),

    /// Render a JSON report as text (or JSON), optionally filtered.
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard show report.json\n",
        "  fdguard show report.json --kind peer_closed --kind duplicate_backend\n",
        "  fdguard show report.json --backend '*:50051' --min-age 60\n",
        "  fdguard show report.json --stack Subchannel --format json | jq .sockets\n",
        "  fdguard show report.json --brief     findings and sockets without stack frames\n",
        "  fdguard report 4242 --format json | fdguard show -\n",
        "\n",
        "  fdguard show fdguard-reports/20261126-230000-77/ --fail-on leak   every report there; CI gate\n",
        "\n",
        "Finding kinds: peer_closed, shutdown_not_closed, half_open, idle_orphan, stuck_connecting,\n",
        "since_checkpoint, growth, reconnect_churn, duplicate_backend, open_at_exit.\n",
        "\n",
        "Exit status: 0 shown; 1 unreadable or invalid report; 2 usage error;\n",
        "23 a --fail-on condition matched (the reports are still printed)."
    ))]
    Show(ShowArgs),

    /// Show what grew between two reports of one process.
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard report 4242 --format json > a.json; sleep 600; fdguard report 4242 --format json > b.json\n",
        "  fdguard diff a.json b.json\n",
        "  fdguard diff a.json b.json --json | jq '.stacks[] | select(.delta > 0)'\n",
        "\n",
        "  fdguard diff a.json b.json --fail-on peer_closed   CI: fail when a peer_closed finding appeared\n",
        "\n",
        "Stacks are matched by function and module names, so reports with different stack ids compare.\n",
        "\n",
        "Exit status: 0 compared; 1 unreadable or invalid report; 2 usage error;\n",
        "23 a --fail-on finding appeared or grew (the diff is still printed)."
    ))]
    Diff(DiffArgs),

    /// Export live sockets by creating stack as a pprof profile (Pyroscope, Parca, go tool pprof).
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard export --pprof sockets.pb.gz report.json\n",
        "  fdguard export --pprof fleet.pb.gz reports/          every *.json; the latest report of each process\n",
        "  go tool pprof -top sockets.pb.gz\n",
        "  curl --data-binary @sockets.pb.gz 'http://pyroscope:4040/ingest?name=myapp.sockets&format=pprof'\n",
        "\n",
        "Samples: socket fds (sample type sockets/count) by creating stack, labelled backend, tcp_state, finding.\n",
        "\n",
        "Exit status: 0 written; 1 no usable report or the file cannot be written; 2 usage error."
    ))]
    Export(ExportArgs),

    /// Report the sockets of any running process, from outside (no LD_PRELOAD, no restart).
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard inspect 4242\n",
        "  fdguard inspect $(pidof my_server) --json | jq '.findings'\n",
        "  fdguard inspect 4242 --grace-ms 5000 --json | fdguard show - --kind peer_closed\n",
        "\n",
        "Reads /proc/PID/fd and the kernel's socket tables (sock_diag, as `ss` does), plus\n",
        "pidfd_getfd for sockets no table lists (TCP in CLOSE). Same user or root.\n",
        "Same report layout and JSON schema as the library's, without stacks (origin: observed).\n",
        "\n",
        "Exit status:\n",
        "  0  inspected\n",
        "  1  other failure (unwritable output, …)\n",
        "  2  usage error\n",
        "  3  no such process, or it exited before or during the inspection\n",
        "  4  permission denied (another user's process, ptrace restrictions)\n",
        "  5  the kernel lacks the socket diagnostics (sock_diag/inet_diag) needed"
    ))]
    Inspect(InspectArgs),

    /// Sample processes on a schedule, keep every sample, and say what grew (with an HTML timeline).
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard watch 4242                               every 30s for 1h, samples in ./fdguard-watch/<time>-<pid>/\n",
        "  fdguard watch 4242 --every 10s --for 10m --out /tmp/w\n",
        "  fdguard watch $(pidof server) $(pidof client) --for 2h\n",
        "  fdguard html /tmp/w                              redraw the timeline from the samples\n",
        "\n",
        "Each sample is a full report from libfdguard.so when the process has it loaded (with stacks),\n",
        "otherwise `fdguard inspect` from outside. Ctrl-C (or SIGTERM) stops; the summary is still written.\n",
        "The directory gets sample.<pid>.<n>.json, summary.json and timeline.html (self-contained).\n",
        "\n",
        "Exit status: 0 watched (also when the process exited meanwhile); 1 cannot write the samples;\n",
        "2 usage error; 3, 4, 5 as for inspect, when not even a first sample could be taken."
    ))]
    Watch(WatchArgs),

    /// Draw the HTML timeline of a watch directory or of saved JSON reports.
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard html fdguard-watch/20261126-230000-77/      writes timeline.html there\n",
        "  fdguard html fdguard-reports/*/fdguard.4242.*.json -o leak.html\n",
        "\n",
        "One self-contained file (inline SVG, CSS and script; no network): live sockets per backend and\n",
        "per TCP state over time, the fd budget, when each finding first appeared, and what grew,\n",
        "linked to its creating stacks. `fdguard show` keeps the text view of one report.\n",
        "\n",
        "Exit status: 0 written; 1 no report found, unreadable report or unwritable output; 2 usage error."
    ))]
    Html(HtmlArgs),

    /// Demonstrate a CLOSE_WAIT leak being found (loopback only, a few seconds).
    #[command(after_help = concat!(
        "Examples:\n",
        "  fdguard demo\n",
        "  fdguard demo --keep        keep the JSON report and print where it is\n",
        "\n",
        "Exit status: 0 the leak was found; 1 the demo could not run or the report lacks the finding."
    ))]
    Demo(DemoArgs),

    /// The demo's client (internal: run under the shim by `fdguard demo`).
    #[command(name = "__demo-client", hide = true)]
    DemoClient {
        #[arg(long)]
        port: u16,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Path of libfdguard.so (default: $FDGUARD_LIB, beside this executable, ../lib/, or a cargo target dir).
    #[arg(long, value_name = "PATH")]
    lib: Option<PathBuf>,
    /// Where reports go: `stderr`, a directory (ending in / or existing), or a path template
    /// (%p pid, %n report number, %e program name, %t unix time). Default: fdguard-reports/<time>-<pid>/.
    #[arg(long, value_name = "DIR|TEMPLATE|stderr")]
    report: Option<String>,
    /// Report format written by the library.
    #[arg(long, value_enum, default_value_t = FormatArg::Json, conflicts_with = "json")]
    format: FormatArg,
    /// Shorthand for `--format json` (the default).
    #[arg(long)]
    json: bool,
    /// Signal that asks for a report (SIGUSR1 by default): a name, a number, or `none`.
    #[arg(long, value_name = "SIGNAL", value_parser = parse_signal_arg)]
    signal: Option<String>,
    /// How long a socket may stay open after its peer hung up, after shutdown() or after a failed connect() (default 60000: grpcio 1.51.1 closes one CLOSE_WAIT socket per 5 s poll tick).
    #[arg(long, value_name = "MS")]
    grace_ms: Option<u64>,
    /// Interval of the TCP-state watcher; 0 samples only at report time (default 1000).
    #[arg(long, value_name = "MS")]
    watch_ms: Option<u64>,
    /// Simultaneous connections to one backend that make a duplicate_backend group (default 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(2..))]
    dup_min: Option<u64>,
    /// A client connection idle this long, keepalive off, is an idle_orphan (default 1800000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1000..))]
    idle_ms: Option<u64>,
    /// A connection in SYN_SENT this long is stuck_connecting (default 30000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1000..))]
    connect_ms: Option<u64>,
    /// Unacknowledged data with no ACK for this long is half_open (default 60000).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1000..))]
    half_open_ms: Option<u64>,
    /// Rise in live sockets per stack or backend that makes a growth finding (default 20).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    growth_min: Option<u64>,
    /// Connections per minute to one backend below which churn is not reported (default 60).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    churn_per_min: Option<u64>,
    /// Closed client connections kept in the history (default 64, at most 1024).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=1024))]
    history: Option<u64>,
    /// Suppressions file (`leak:<pattern>`, `dup:<backend pattern>`, `#` comments).
    #[arg(long, value_name = "FILE")]
    suppressions: Option<PathBuf>,
    /// Exit status to use when unsuppressed leak findings exist at exit (0: keep the program's).
    #[arg(long, value_name = "N")]
    exitcode: Option<u8>,
    /// Frames captured per creating stack (0 turns capture off, at most 64; default 32).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=64))]
    stack_depth: Option<u32>,
    /// When to write a report at exit (default: sockets — every process that held a socket).
    #[arg(long, value_enum, value_name = "WHEN")]
    exit_report: Option<ExitReportArg>,
    /// Write Prometheus metrics for node_exporter's textfile collector into DIR (fdguard-<pid>.prom).
    #[arg(long, value_name = "DIR")]
    metrics_dir: Option<PathBuf>,
    /// Print only where the reports are, not the last report.
    #[arg(long, short)]
    quiet: bool,
    /// The program and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Process ids of programs running under libfdguard.so.
    #[arg(value_name = "PID", required = true)]
    pids: Vec<i32>,
    /// Also every process below each PID (a master and its workers).
    #[arg(long)]
    tree: bool,
    /// Report format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text, conflicts_with = "json")]
    format: FormatArg,
    /// Shorthand for `--format json`.
    #[arg(long)]
    json: bool,
    /// Text without stack frames: findings, sockets and summary, each stack named on one line
    /// by its id and first frames (asks the process for JSON and renders it here).
    #[arg(long, conflicts_with = "json")]
    brief: bool,
    /// Seconds to wait for the answers.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    timeout: f64,
    /// Write the report(s) to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Also send the report signal: the process's own FDGUARD_SIGNAL, or `--signal=SIG`
    /// (only if the process catches it now). Not needed: the request channel works without.
    #[arg(long, value_name = "SIG", num_args = 0..=1, require_equals = true,
          default_missing_value = "", value_parser = parse_report_signal)]
    signal: Option<ReportSignal>,
}

/// `--signal` of `fdguard report`: the process's own signal, or a given one.
#[derive(Debug, Clone, Copy)]
struct ReportSignal(Option<i32>);

fn parse_report_signal(text: &str) -> Result<ReportSignal, String> {
    if text.trim().is_empty() {
        return Ok(ReportSignal(None));
    }
    match signals::parse_signal(text) {
        Some(Some(signal)) => Ok(ReportSignal(Some(signal))),
        _ => {
            Err("not a usable signal; use a name (SIGUSR2, USR2, RTMIN+1) or a number".to_string())
        }
    }
}

#[derive(Args, Debug)]
struct ShowArgs {
    /// JSON reports (`-` reads standard input), or directories of them (their *.json files).
    #[arg(value_name = "FILE.json|DIR", required = true)]
    files: Vec<PathBuf>,
    /// Output format (several reports: one text report after the other, or a JSON array).
    #[arg(long, value_enum, default_value_t = FormatArg::Text, conflicts_with = "json")]
    format: FormatArg,
    /// Shorthand for `--format json`.
    #[arg(long)]
    json: bool,
    /// Text without stack frames: findings, sockets and summary, each stack named on one line
    /// by its id and first frames.
    #[arg(long, conflicts_with = "json")]
    brief: bool,
    /// Keep only findings of this kind and their sockets (repeatable).
    #[arg(long = "kind", value_name = "KIND", value_parser = parse_kind)]
    kinds: Vec<FindingKind>,
    /// Keep only sockets whose peer contains PAT, or matches it when it has `*` (e.g. '*:50051').
    #[arg(long, value_name = "PAT")]
    backend: Option<String>,
    /// Keep only sockets at least this old.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    min_age: Option<f64>,
    /// Keep only sockets whose creating stack mentions SUBSTR (function, file or module).
    #[arg(long = "stack", value_name = "SUBSTR")]
    stack: Option<String>,
    /// Exit with status 23 when a shown report has an unsuppressed finding of KIND, or of a
    /// severity (`leak`; `warning`: leak or warning), or `any` (repeatable).
    #[arg(long = "fail-on", value_name = "KIND", value_parser = FailOn::parse)]
    fail_on: Vec<FailOn>,
}

#[derive(Args, Debug)]
struct DiffArgs {
    /// The earlier JSON report.
    #[arg(value_name = "OLD.json")]
    old: PathBuf,
    /// The later JSON report.
    #[arg(value_name = "NEW.json")]
    new: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Text, conflicts_with = "json")]
    format: FormatArg,
    /// Print the diff as JSON (shorthand for `--format json`).
    #[arg(long)]
    json: bool,
    /// Exit with status 23 when a finding of KIND (or a severity: `leak`, `warning`; or `any`)
    /// appeared or grew in NEW (repeatable).
    #[arg(long = "fail-on", value_name = "KIND", value_parser = FailOn::parse)]
    fail_on: Vec<FailOn>,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Write a gzipped pprof profile (profile.proto) here.
    #[arg(long, value_name = "OUT.pb.gz", required = true)]
    pprof: PathBuf,
    /// JSON reports, or directories of them.
    #[arg(required = true, value_name = "REPORT.json|DIR")]
    inputs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// Process ids (any process the caller may inspect: same user, or root).
    #[arg(value_name = "PID", required = true)]
    pids: Vec<i32>,
    /// Output format (several PIDs: one text report after the other, or a JSON array).
    #[arg(long, value_enum, default_value_t = FormatArg::Text, conflicts_with = "json")]
    format: FormatArg,
    /// Shorthand for `--format json`.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    judging: JudgingArgs,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct WatchArgs {
    /// Process ids.
    #[arg(value_name = "PID", required = true)]
    pids: Vec<i32>,
    /// Time between samples (30s, 500ms, 10m, 1h30m; at least 100ms).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = watch::parse_duration)]
    every: std::time::Duration,
    /// How long to watch.
    #[arg(long = "for", value_name = "DURATION", default_value = "1h", value_parser = watch::parse_duration)]
    duration: std::time::Duration,
    /// Directory for the samples, summary.json and timeline.html (default: fdguard-watch/<UTC time>-<pid>/).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    judging: JudgingArgs,
    /// Seconds to wait for each report from libfdguard.so.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    timeout: f64,
    /// Format of the final summary.
    #[arg(long, value_enum, default_value_t = FormatArg::Text, conflicts_with = "json")]
    format: FormatArg,
    /// Print the final summary as JSON (shorthand for `--format json`).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct HtmlArgs {
    /// A `fdguard watch` directory, or JSON report files.
    #[arg(value_name = "DIR|REPORT.json", required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write the page (default: DIR/timeline.html for one directory, else ./fdguard-timeline.html).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// How `inspect` and `watch` judge sockets (the library's settings, same defaults).
#[derive(Args, Debug)]
struct JudgingArgs {
    /// How long a socket may stay open after its peer hung up before it is a finding (the library's FDGUARD_GRACE_MS).
    #[arg(long, value_name = "MS", default_value_t = 60000)]
    grace_ms: u64,
    /// Simultaneous connections to one backend that make a duplicate_backend finding.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u64).range(2..))]
    dup_min: u64,
    /// Suppressions file (`leak:<pattern>`, `dup:<backend pattern>`, `#` comments).
    #[arg(long, value_name = "FILE")]
    suppressions: Option<PathBuf>,
}

impl JudgingArgs {
    fn into_judging(self) -> Result<inspect::Judging, Failure> {
        let mut judging = inspect::Judging {
            grace_s: self.grace_ms as f64 / 1000.0,
            dup_min: self.dup_min as usize,
            rules: Vec::new(),
        };
        if let Some(path) = &self.suppressions {
            judging.load_suppressions(path)?;
        }
        Ok(judging)
    }
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// Path of libfdguard.so (same lookup as `run`).
    #[arg(long, value_name = "PATH")]
    lib: Option<PathBuf>,
    /// Keep the demo's JSON report and print where it is.
    #[arg(long)]
    keep: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum FormatArg {
    Text,
    Json,
}

impl From<FormatArg> for ReportFormat {
    fn from(f: FormatArg) -> ReportFormat {
        match f {
            FormatArg::Text => ReportFormat::Text,
            FormatArg::Json => ReportFormat::Json,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ExitReportArg {
    /// Only with a finding of severity warning or above (the library's default).
    Auto,
    /// Every process that held a socket (the default of `fdguard run`).
    Sockets,
    /// Every process.
    Always,
    /// None.
    Never,
}

impl From<ExitReportArg> for run::ExitReport {
    fn from(e: ExitReportArg) -> run::ExitReport {
        match e {
            ExitReportArg::Auto => run::ExitReport::Auto,
            ExitReportArg::Sockets => run::ExitReport::Sockets,
            ExitReportArg::Always => run::ExitReport::Always,
            ExitReportArg::Never => run::ExitReport::Never,
        }
    }
}

fn parse_kind(text: &str) -> Result<FindingKind, String> {
    FindingKind::parse(text).ok_or_else(|| {
        let known: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown finding kind; use one of: {}", known.join(", "))
    })
}

fn parse_signal_arg(text: &str) -> Result<String, String> {
    match signals::parse_signal(text) {
        Some(_) => Ok(text.trim().to_string()),
        None => Err(
            "not a usable signal; use a name (SIGUSR2, USR2, RTMIN+1), a number, or `none` \
                     (KILL, STOP, SEGV, BUS, FPE and ILL are refused)"
                .to_string(),
        ),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err("expected a non-negative number of seconds".to_string()),
    }
}

impl RunArgs {
    fn into_options(self) -> run::RunOptions {
        run::RunOptions {
            command: self.command,
            lib: self.lib,
            report: self.report,
            format: if self.json {
                FormatArg::Json.into()
            } else {
                self.format.into()
            },
            signal: self.signal,
            grace_ms: self.grace_ms,
            watch_ms: self.watch_ms,
            dup_min: self.dup_min,
            idle_ms: self.idle_ms,
            connect_ms: self.connect_ms,
            half_open_ms: self.half_open_ms,
            growth_min: self.growth_min,
            churn_per_min: self.churn_per_min,
            history: self.history,
            suppressions: self.suppressions,
            exitcode: self.exitcode,
            stack_depth: self.stack_depth,
            exit_report: self.exit_report.map(Into::into),
            metrics_dir: self.metrics_dir,
            quiet: self.quiet,
        }
    }
}

/// The output format of `show` and `report`: `--json` is `--format json`; `--brief` is a text
/// view, refused with JSON.
fn text_format(json: bool, format: FormatArg, brief: bool) -> Result<ReportFormat, Failure> {
    let format = if json { FormatArg::Json } else { format };
    match (format, brief) {
        (FormatArg::Json, true) => Err(Failure::usage(
            "--brief is a text view; it cannot be combined with --format json",
        )),
        (format, _) => Ok(format.into()),
    }
}

fn dispatch(workload: Workload) -> Result<i32, Failure> {
    match workload {
        Workload::Run(args) => run::run(&args.into_options()),
        Workload::Report(args) => report_cmd::report(&report_cmd::ReportOptions {
            pids: args.pids,
            tree: args.tree,
            format: text_format(args.json, args.format, args.brief)?,
            brief: args.brief,
            timeout: Duration::from_secs_f64(args.timeout),
            output: args.output,
            delivery: match args.signal {
                None => control::Delivery::Channel,
                Some(ReportSignal(signal)) => control::Delivery::Signal(signal),
            },
        }),
        Workload::Show(args) => show::show(&show::ShowOptions {
            files: args.files,
            format: text_format(args.json, args.format, args.brief)?,
            brief: args.brief,
            filter: Filter {
                kinds: args.kinds,
                backend: args.backend,
                min_age_s: args.min_age,
                stack_contains: args.stack,
            },
            fail_on: args.fail_on,
        }),
        Workload::Diff(args) => diff_cmd::run_diff(&diff_cmd::DiffOptions {
            old: args.old,
            new: args.new,
            json: args.json || matches!(args.format, FormatArg::Json),
            fail_on: args.fail_on,
        }),
        Workload::Export(args) => export::run(&export::ExportOptions {
            pprof: args.pprof,
            inputs: args.inputs,
        })
        .map(|()| EXIT_OK),
        Workload::Inspect(args) => inspect::inspect(&inspect::InspectOptions {
            pids: args.pids,
            format: if args.json {
                FormatArg::Json.into()
            } else {
                args.format.into()
            },
            judging: args.judging.into_judging()?,
            output: args.output,
        }),
        Workload::Watch(args) => watch::watch(&watch::WatchOptions {
            pids: args.pids,
            every: args.every,
            duration: args.duration,
            out: args.out,
            judging: args.judging.into_judging()?,
            timeout: Duration::from_secs_f64(args.timeout),
            json: args.json || matches!(args.format, FormatArg::Json),
        }),
        Workload::Html(args) => html_cmd::html(&html_cmd::HtmlOptions {
            inputs: args.inputs,
            output: args.output,
        })
        .map(|()| EXIT_OK),
        Workload::Demo(args) => demo::demo(&demo::DemoOptions {
            lib: args.lib,
            keep: args.keep,
        })
        .map(|()| EXIT_OK),
        Workload::DemoClient { port } => demo::demo_client(port).map(|()| EXIT_OK),
    }
}

fn main() -> ExitCode {
    let opt = Opt::parse();
    let code = match dispatch(opt.command) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("fdguard: error: {}", failure.message);
            failure.exit_code
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
