//! Configuration: every `FDGUARD_*` variable, read once in the constructor into an immutable
//! [`Config`]. A bad value gets one stderr line naming the variable and the default used; the
//! host keeps running. Nothing here is read on a hot path.
//!
//! Each variable is declared exactly once, in [`VARIABLES`]: its name, its default (as a user
//! would write it: parsing that text is what makes [`Config::default`]), what a valid value
//! looks like (the warning), its documentation (the README's table is generated from it and a
//! test keeps the two equal) and how a value is applied.

use fdguard_report::detect::suppress::Rule;
use fdguard_report::template::PathTemplate;
use once_cell::sync::OnceCell;
use std::path::PathBuf;

/// Where reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// fd 2, while it is still the stderr fdguard saw at load.
    Stderr,
    /// A path template (`fdguard_report::template`), absolute once settled at load.
    File(String),
    /// An existing character device or FIFO, written to as it is (settled at load:
    /// `report::write::settle_sink`).
    Device(String),
    /// `FDGUARD_REPORT=none`: reports on the signal and at exit are not written anywhere
    /// (`fdguard report` answers and C API reports to a path or fd still are).
    None,
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// When to write a report at exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReport {
    /// LeakSanitizer's rule: only if the process held a socket and the report has a finding of
    /// severity warning or above (a clean process, and every launcher or shell script that
    /// inherits LD_PRELOAD, says nothing).
    Auto,
    /// Whenever the process held a socket, findings or not (`fdguard run`'s default: it lists
    /// every such process's report).
    Sockets,
    Always,
    Never,
}

/// Most closed connections a report can list (the history ring's capacity).
pub const HISTORY_MAX: usize = 1024;

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub sink: Sink,
    pub format: Format,
    /// Report signal; `None` = no signal handler.
    pub signal: Option<i32>,
    pub grace_ms: u64,
    pub watch_ms: u64,
    pub dup_min: usize,
    pub idle_ms: u64,
    pub connect_ms: u64,
    pub half_open_ms: u64,
    pub growth_min: u64,
    pub churn_per_min: u64,
    pub suppressions: Option<PathBuf>,
    pub exitcode: i32,
    pub stack_depth: usize,
    /// Python frames kept per creating stack when the host is CPython (0: none).
    pub python_depth: usize,
    pub exit_report: ExitReport,
    pub disabled: bool,
    pub history: usize,
    /// Cached unwinder (framehop) with libgcc as fallback; `false`: libgcc only.
    pub fast_unwind: bool,
    /// Directory of node_exporter's textfile collector: one `.prom` file per process, rewritten
    /// on the `fdguard` thread's tick (`agent::metrics`). `None`: no metrics.
    pub metrics_dir: Option<PathBuf>,
    /// Test-only fault injection (`FDGUARD_TEST_FAULT`): `hook-panic` panics inside the
    /// socket() bookkeeping, `report-panic` inside report building; `python-refuse` and
    /// `python-layout-skew` exercise the Python frames' safety nets (track/python/mod.rs). Proves that an internal
    /// fault disables fdguard instead of hurting the host. Deliberately not in [`VARIABLES`].
    pub test_fault: Option<String>,
}

impl Default for Config {
    /// Every variable at its declared default.
    fn default() -> Config {
        let mut c = Config {
            sink: Sink::Stderr,
            format: Format::Text,
            signal: None,
            grace_ms: 0,
            watch_ms: 0,
            dup_min: 2,
            idle_ms: 0,
            connect_ms: 0,
            half_open_ms: 0,
            growth_min: 0,
            churn_per_min: 0,
            suppressions: None,
            exitcode: 0,
            stack_depth: 0,
            python_depth: 0,
            exit_report: ExitReport::Auto,
            disabled: false,
            history: 0,
            fast_unwind: true,
            metrics_dir: None,
            test_fault: None,
        };
        for v in VARIABLES.iter().filter(|v| !v.default.is_empty()) {
            // A default that does not parse is a bug the unit tests catch.
            let _ = (v.apply)(&mut c, v.default);
        }
        c
    }
}

impl Config {
    /// The detectors' thresholds (the per-report parts, `at_exit`, checkpoints and samples,
    /// are the caller's).
    pub fn detect_settings(&self) -> fdguard_report::detect::Settings {
        fdguard_report::detect::Settings {
            grace_s: self.grace_ms as f64 / 1000.0,
            dup_min: self.dup_min,
            idle_s: self.idle_ms as f64 / 1000.0,
            connect_s: self.connect_ms as f64 / 1000.0,
            half_open_s: self.half_open_ms as f64 / 1000.0,
            growth_min: self.growth_min,
            churn_per_min: self.churn_per_min as f64,
            ..fdguard_report::detect::Settings::default()
        }
    }
}

/// One variable, declared once.
pub struct Variable {
    pub name: &'static str,
    /// The default as a user would write it ("" = unset).
    pub default: &'static str,
    /// What a valid value is, for the warning: "… is not {expects}; using {default}".
    expects: &'static str,
    /// The README's description (Markdown).
    #[cfg_attr(not(test), allow(dead_code))]
    pub doc: &'static str,
    /// Applies a (trimmed, non-empty) value; `Err` when it is not valid.
    apply: fn(&mut Config, &str) -> Result<(), ()>,
}

/// A threshold of at least one second.
fn at_least_a_second(ms: u64) -> Result<u64, ()> {
    if ms >= 1000 { Ok(ms) } else { Err(()) }
}

/// A whole number no larger than `max`.
fn number(v: &str, max: u64) -> Result<u64, ()> {
    v.parse::<u64>().ok().filter(|&n| n <= max).ok_or(())
}

/// Every variable fdguard reads.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "FDGUARD_REPORT",
        default: "stderr",
        expects: "`stderr`, `none` or a usable path (at most 3000 bytes, one line)",
        doc: "`stderr`, `none` (no report on the signal or at exit; `fdguard report` still gets its answer and `FDGUARD_EXITCODE` still applies), or a file path template: `%p` pid, `%n` report number, `%e` program name, `%t` unix time, `%%` a percent sign. Without `%p`, `.<pid>` is appended (LeakSanitizer's `log_path` convention), so processes that inherit the variable never share a file. A relative path is fixed at load (a later `chdir()` does not move reports). Files are created mode 0600 next to their final name under a random temporary name and renamed into place: a reader never sees half a report, and a symlink at the final name is replaced, never followed. A path naming an existing character device or FIFO of yours or root's is written to as it is (`/dev/stderr` is stderr, `/dev/null` discards; standard output is refused). If the file cannot be created (a worker that dropped privileges cannot write the directory), the report goes to the per-user runtime directory (`/run/user/<uid>/fdguard/` or `/tmp/fdguard-<uid>/`, see [Asking a running process](#asking-a-running-process-for-a-report)) and one stderr line says where; only if that fails too, to stderr.",
        apply: |c, v| {
            if v.eq_ignore_ascii_case("stderr") {
                c.sink = Sink::Stderr;
            } else if v.eq_ignore_ascii_case("none") {
                c.sink = Sink::None;
            } else if v.len() > 3000 || v.contains('\n') {
                return Err(());
            } else {
                c.sink = Sink::File(v.to_string());
            }
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_FORMAT",
        default: "text",
        expects: "`text` or `json`",
        doc: "`text` (LeakSanitizer-style) or `json` ([docs/report-format.md](docs/report-format.md))",
        apply: |c, v| {
            c.format = match v.to_ascii_lowercase().as_str() {
                "text" => Format::Text,
                "json" => Format::Json,
                _ => return Err(()),
            };
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_SIGNAL",
        default: "SIGUSR1",
        expects: "a signal name, number or `none`",
        doc: "signal that asks for a report: a name (`SIGUSR2`, `RTMIN+3`), a number, or `none`. `fdguard report` needs none (it asks through the request channel; `--signal` sends this one too). A handler installed before fdguard is still called after ours; one the program installs later takes the signal over, and the next report says so once. SIGCHLD (its disposition decides how children are reaped) and 32/33 (the C library's) are refused with one stderr line: no report on signal then.",
        apply: |c, v| {
            c.signal = parse_signal(v).ok_or(())?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_GRACE_MS",
        default: "60000",
        expects: "a number of milliseconds (at most a week)",
        doc: "how long a socket may stay open after its peer hung up, after `shutdown()`, or after its `connect()` failed, before it is a leak (`peer_closed`, `shutdown_not_closed`, `stuck_connecting`); a peer that hung up less than this before exit is not called a leak either. 60 s because grpcio 1.51.1's backup poller closes only **one** `CLOSE_WAIT` socket per 5 s tick (measured: [tests/grpc/NOTES.md](tests/grpc/NOTES.md)), so a healthy client with N dead connections needs about N × 5 s.",
        apply: |c, v| {
            c.grace_ms = number(v, 7 * 24 * 3_600_000)?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_WATCH_MS",
        default: "1000",
        expects: "a number of milliseconds (at most one hour)",
        doc: "how often the watcher samples TCP states to date state changes and hang-ups, and counts live sockets per stack and per backend for `growth` and `reconnect_churn` (0: only at report time, and no trends). A tick looks at no more than 2,000 connections (one `TCP_INFO` each, about 1–2 ms of one core: the state, idle times and retransmissions all come from that one call) and resumes where the last one stopped, so with 100,000 live sockets a hang-up is dated within 50 ticks; reports always read every state fresh, and date a hang-up from the kernel's own timestamps when the watcher has not yet.",
        apply: |c, v| {
            c.watch_ms = number(v, 3_600_000)?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_DUP_MIN",
        default: "2",
        expects: "a connection count of at least 2",
        doc: "simultaneous client connections to one backend that make a `duplicate_backend` group (context for a pool; a warning for a dead or stale member beside a live one, or a group that keeps growing)",
        apply: |c, v| {
            c.dup_min =
                number(v, 1_000_000).and_then(|n| if n >= 2 { Ok(n as usize) } else { Err(()) })?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_IDLE_MS",
        default: "1800000",
        expects: "a number of milliseconds (at least 1000, at most a week)",
        doc: "a client connection with no payload either way for this long, keepalive off, is an `idle_orphan` (warning), and a stale member of a `duplicate_backend` group. 30 min: gRPC clients close a connection idle that long themselves (`grpc.client_idle_timeout_ms`), and HTTP servers close idle keep-alive connections after seconds to minutes.",
        apply: |c, v| {
            c.idle_ms = number(v, 7 * 24 * 3_600_000).and_then(at_least_a_second)?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_CONNECT_MS",
        default: "30000",
        expects: "a number of milliseconds (at least 1000, at most a day)",
        doc: "a connection in `SYN_SENT` this long is `stuck_connecting` (warning). 30 s: the kernel has then retransmitted the SYN 4 times (at 1, 3, 7, 15 s) and gives up at about 127 s.",
        apply: |c, v| {
            c.connect_ms = number(v, 24 * 3_600_000).and_then(at_least_a_second)?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_HALF_OPEN_MS",
        default: "60000",
        expects: "a number of milliseconds (at least 1000, at most a day)",
        doc: "data (or keepalive probes) unacknowledged with no ACK from the peer for this long is `half_open` (warning): the peer vanished without a FIN. 60 s: a live peer, even a slow reader, answers retransmissions and window probes within seconds.",
        apply: |c, v| {
            c.half_open_ms = number(v, 24 * 3_600_000).and_then(at_least_a_second)?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_GROWTH_MIN",
        default: "20",
        expects: "a socket count of at least 1",
        doc: "rise in live sockets, per creating stack or per backend, across the watcher's samples that makes a `growth` finding (warning), when the count keeps setting new highs",
        apply: |c, v| {
            c.growth_min =
                number(v, 1_000_000).and_then(|n| if n >= 1 { Ok(n) } else { Err(()) })?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_CHURN_PER_MIN",
        default: "60",
        expects: "a number of connections per minute, at least 1",
        doc: "connections per minute to one backend, closed and reopened, below which `reconnect_churn` is never reported; above it, churn is reported when it is also 10 times the backend's own earlier rate (or the process's average per backend) and at least 20 connections were closed in that time",
        apply: |c, v| {
            c.churn_per_min =
                number(v, 100_000_000).and_then(|n| if n >= 1 { Ok(n) } else { Err(()) })?;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_SUPPRESSIONS",
        default: "",
        expects: "a file path",
        doc: "suppressions file (below)",
        apply: |c, v| {
            c.suppressions = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_EXITCODE",
        default: "0",
        expects: "an exit status 0-255",
        doc: "exit status to use when unsuppressed findings of severity `leak` exist at exit (`peer_closed`, `shutdown_not_closed`, `since_checkpoint`, a failed connect kept open; never warnings or context); 0 leaves the status alone; LeakSanitizer uses 23",
        apply: |c, v| {
            c.exitcode = number(v, 255)? as i32;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_STACK_DEPTH",
        default: "32",
        expects: "a frame count 0-64",
        doc: "frames captured per creating stack (0 turns capture off; at most 64)",
        apply: |c, v| {
            c.stack_depth = number(v, 64)? as usize;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_PYTHON_DEPTH",
        default: "32",
        expects: "a frame count 0-64",
        doc: "Python frames added to a creating stack when the host is CPython 3.8–3.13 (function, file, line; 0 turns them off; at most 64). A stack holds 64 frames in all: Python frames keep their room and native ones are cut from the outer end if needed",
        apply: |c, v| {
            c.python_depth = number(v, 64)? as usize;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_UNWIND",
        default: "fast",
        expects: "`fast` or `libgcc`",
        doc: "`fast`: a cached DWARF unwinder over the unwind tables already in memory (framehop), libgcc as fallback; `libgcc`: libgcc's `_Unwind_Backtrace` only (slower; use it if a stack ever looks wrong)",
        apply: |c, v| {
            c.fast_unwind = match v.to_ascii_lowercase().as_str() {
                "fast" => true,
                "libgcc" => false,
                _ => return Err(()),
            };
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_EXIT_REPORT",
        default: "auto",
        expects: "`auto`, `sockets`, `always` or `never`",
        doc: "`auto`: LeakSanitizer's rule — at exit, a process that held a socket writes its report only if it has a finding of severity warning or above (a leak, a socket left open whose peer is gone, …); a clean process writes nothing. `sockets`: every process that held a socket (of any origin) writes one, findings or not (`fdguard run` sets this, to list every process). `always`: every process, even without sockets (the `fdguard` thread then runs from load). `never`",
        apply: |c, v| {
            c.exit_report = match v.to_ascii_lowercase().as_str() {
                "auto" => ExitReport::Auto,
                "sockets" => ExitReport::Sockets,
                "always" | "1" => ExitReport::Always,
                "never" | "0" => ExitReport::Never,
                _ => return Err(()),
            };
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_HISTORY",
        default: "64",
        expects: "a count 0-1024",
        doc: "recently closed client connections listed per report (at most 1024)",
        apply: |c, v| {
            c.history = number(v, HISTORY_MAX as u64)? as usize;
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_METRICS_DIR",
        default: "",
        expects: "an absolute directory path (at most 3000 bytes, one line)",
        doc: "directory read by node_exporter's textfile collector (`--collector.textfile.directory`): the `fdguard` thread rewrites `fdguard-<pid>.prom` there on its watcher tick (so it needs `FDGUARD_WATCH_MS` > 0), atomically and mode 0644, never through a symlink; a normal exit removes it, and files of crashed processes are swept (see [Fleet](#fleet-prometheus-and-continuous-profilers)). Nothing listens on a port.",
        apply: |c, v| {
            if !v.starts_with('/') || v.len() > 3000 || v.contains('\n') {
                return Err(());
            }
            c.metrics_dir = Some(PathBuf::from(v));
            Ok(())
        },
    },
    Variable {
        name: "FDGUARD_DISABLE",
        default: "0",
        expects: "`0` or `1`",
        doc: "`1` loads the library but tracks nothing",
        apply: |c, v| {
            c.disabled = match v {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => return Err(()),
            };
            Ok(())
        },
    },
];

static CONFIG: OnceCell<Config> = OnceCell::new();

/// The configuration (defaults until the constructor has parsed the environment).
pub fn get() -> &'static Config {
    static DEFAULT: OnceCell<Config> = OnceCell::new();
    CONFIG
        .get()
        .unwrap_or_else(|| DEFAULT.get_or_init(Config::default))
}

/// Stores the parsed configuration (constructor).
pub fn install(config: Config) {
    let _ = CONFIG.set(config);
}

static SUPPRESSIONS: OnceCell<Vec<Rule>> = OnceCell::new();

/// The loaded suppression rules, if a file was configured (`FDGUARD_SUPPRESSIONS`).
pub fn suppressions() -> Option<&'static [Rule]> {
    SUPPRESSIONS.get().map(Vec::as_slice)
}

/// Stores the rules read from the suppressions file (constructor).
pub fn install_suppressions(rules: Vec<Rule>) {
    let _ = SUPPRESSIONS.set(rules);
}

/// Parses the variables returned by `lookup`. Returns the config and one warning line per bad
/// value (the caller prints them). An empty or blank value counts as unset.
pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> (Config, Vec<String>) {
    let mut c = Config::default();
    let mut warnings = Vec::new();
    for v in VARIABLES {
        let Some(value) = lookup(v.name).filter(|s| !s.trim().is_empty()) else {
            continue;
        };
        if (v.apply)(&mut c, value.trim()).is_err() {
            let shown: String = value.chars().take(32).collect();
            let default = if v.default.is_empty() {
                "none"
            } else {
                v.default
            };
            warnings.push(format!(
                "fdguard: {}={shown:?} is not {}; using {default}",
                v.name, v.expects
            ));
        }
    }
    if c.metrics_dir.is_some() && c.watch_ms == 0 {
        warnings.push(
            "fdguard: FDGUARD_METRICS_DIR needs FDGUARD_WATCH_MS > 0 (metrics are written on the \
             watcher's tick); writing no metrics"
                .to_string(),
        );
        c.metrics_dir = None;
    }
    c.test_fault = lookup("FDGUARD_TEST_FAULT").map(|v| v.trim().to_string());
    (c, warnings)
}

/// `FDGUARD_*` names read by the `fdguard` command and the test suite, not by the library: no
/// warning for them. (Any `FDGUARD_TEST_*` name is the test suite's too.)
const READ_ELSEWHERE: &[&str] = &[
    "FDGUARD_LIB",
    "FDGUARD_BLESS",
    "FDGUARD_PYTHON",
    "FDGUARD_EXPECT_SHIM",
    "FDGUARD_REPORT_TIMEOUT_S",
    "FDGUARD_CAPI_CHILD",
];

/// One warning line per `FDGUARD_*` name in `names` that fdguard does not know, naming the
/// closest real variable (edit distance over [`VARIABLES`]): a misspelt `FDGUARD_GRACEMS` would
/// otherwise be ignored without a word.
pub fn unknown_variables<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| n.starts_with("FDGUARD_") && !n.starts_with("FDGUARD_TEST_"))
        .filter(|n| !READ_ELSEWHERE.contains(n) && !VARIABLES.iter().any(|v| v.name == *n))
        .map(|name| {
            let closest = VARIABLES
                .iter()
                .min_by_key(|v| edit_distance(name, v.name))
                .map_or("", |v| v.name);
            let shown: String = name.chars().take(64).collect();
            format!(
                "fdguard: {shown} is not a variable fdguard knows (ignored); did you mean {closest}?"
            )
        })
        .collect()
}

/// Levenshtein distance (insertions, deletions, substitutions), by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `SIGUSR1`, `USR1`, `10` → Some(Some(10)); `none` → Some(None).
pub fn parse_signal(s: &str) -> Option<Option<i32>> {
    // One grammar for the library and the CLI: it lives in the shared crate.
    fdguard_report::signal::parse_signal(s)
}

/// Expands a report path template for report number `seq`.
pub fn expand_path(template: &str, pid: i32, seq: u64, exe: &str, unix_s: u64) -> String {
    PathTemplate::parse(template).expand(pid, seq, exe, unix_s)
}

/// The README's configuration table, as generated from [`VARIABLES`].
#[cfg(test)]
fn readme_table() -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for v in VARIABLES {
        let default = if v.default.is_empty() {
            "none".to_string()
        } else {
            format!("`{}`", v.default)
        };
        out.push_str(&format!("| `{}` | {default} | {} |\n", v.name, v.doc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_map(pairs: &[(&str, &str)]) -> (Config, Vec<String>) {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(|k| map.get(k).cloned())
    }

    const BEGIN: &str = "<!-- FDGUARD variables: generated from src/config.rs -->\n";
    const END: &str = "<!-- end of FDGUARD variables -->\n";

    #[test]
    fn the_readme_table_is_generated_from_the_variables() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme
            .find(BEGIN)
            .expect("README lacks the variables marker")
            + BEGIN.len();
        let end = start
            + readme[start..]
                .find(END)
                .expect("README lacks the end marker");
        let expected = readme_table();
        if std::env::var_os("FDGUARD_BLESS").is_some() {
            let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, updated).unwrap();
            return;
        }
        assert_eq!(
            readme[start..end],
            expected,
            "README's variable table differs from src/config.rs (FDGUARD_BLESS=1 cargo test -p fdguard --lib regenerates it)"
        );
    }

    #[test]
    fn detector_defaults_are_the_variables_defaults() {
        // fdguard_report::detect::Settings::default() documents the same numbers for users of
        // the shared crate (the CLI's `fdguard inspect`): they must not drift apart.
        let from_variables = Config::default().detect_settings();
        assert_eq!(from_variables, fdguard_report::detect::Settings::default());
    }

    #[test]
    fn every_default_parses() {
        for v in VARIABLES.iter().filter(|v| !v.default.is_empty()) {
            let mut c = Config::default();
            assert!((v.apply)(&mut c, v.default).is_ok(), "{}", v.name);
        }
    }

    #[test]
    fn defaults_without_variables() {
        let (c, w) = parse_map(&[]);
        assert!(w.is_empty());
        assert_eq!(c.sink, Sink::Stderr);
        assert_eq!(c.signal, Some(libc::SIGUSR1));
        assert_eq!(
            (c.grace_ms, c.watch_ms, c.dup_min, c.stack_depth, c.history),
            (60_000, 1_000, 2, 32, 64)
        );
        assert_eq!((c.format, c.exit_report), (Format::Text, ExitReport::Auto));
    }

    #[test]
    fn every_bad_value_gets_one_line_and_the_default() {
        let garbage = "\u{1}\u{7f}💥x".repeat(50);
        let d = Config::default();
        // Any one-line text is a valid path: the path variables are checked below and at use.
        let paths = ["FDGUARD_REPORT", "FDGUARD_SUPPRESSIONS"];
        for v in VARIABLES.iter().filter(|v| !paths.contains(&v.name)) {
            let (c, w) = parse_map(&[(v.name, garbage.as_str())]);
            assert_eq!(w.len(), 1, "{}: {w:?}", v.name);
            assert!(w[0].contains(v.name) && w[0].contains("using"), "{}", w[0]);
            assert!(w[0].len() < 300, "one short line: {}", w[0]);
            assert_eq!(
                (c.grace_ms, c.signal, c.format, c.stack_depth),
                (d.grace_ms, d.signal, d.format, d.stack_depth)
            );
        }
        let (_, w) = parse_map(&[("FDGUARD_GRACE_MS", "99999999999999999999999")]);
        assert_eq!(w.len(), 1);
        let (c, w) = parse_map(&[("FDGUARD_REPORT", &"x".repeat(5000))]);
        assert_eq!((c.sink, w.len()), (Sink::Stderr, 1));
        let (c, w) = parse_map(&[("FDGUARD_DUP_MIN", "1")]);
        assert_eq!((c.dup_min, w.len()), (2, 1));
    }

    #[test]
    fn metrics_dir_is_absolute_and_needs_the_watcher() {
        let (c, w) = parse_map(&[("FDGUARD_METRICS_DIR", "/var/lib/node_exporter")]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.metrics_dir.as_deref(),
            Some(std::path::Path::new("/var/lib/node_exporter"))
        );
        let (c, w) = parse_map(&[("FDGUARD_METRICS_DIR", "relative/dir")]);
        assert_eq!((c.metrics_dir, w.len()), (None, 1));
        let (c, w) = parse_map(&[("FDGUARD_METRICS_DIR", "/tmp/m"), ("FDGUARD_WATCH_MS", "0")]);
        assert_eq!(c.metrics_dir, None);
        assert!(
            w.len() == 1 && w[0].contains("FDGUARD_WATCH_MS"),
            "one line naming why: {w:?}"
        );
    }

    #[test]
    fn unknown_variables_name_the_closest_real_one() {
        let lines = unknown_variables([
            "FDGUARD_GRACEMS",
            "FDGUARD_GRACE_MS",
            "FDGUARD_LIB",
            "FDGUARD_TEST_FAULT",
            "FDGUARD_REPROT",
            "PATH",
        ]);
        assert_eq!(
            lines,
            [
                "fdguard: FDGUARD_GRACEMS is not a variable fdguard knows (ignored); did you mean FDGUARD_GRACE_MS?",
                "fdguard: FDGUARD_REPROT is not a variable fdguard knows (ignored); did you mean FDGUARD_REPORT?",
            ]
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn report_none_and_exit_report_sockets() {
        let (c, w) = parse_map(&[
            ("FDGUARD_REPORT", "none"),
            ("FDGUARD_EXIT_REPORT", "sockets"),
        ]);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!((c.sink, c.exit_report), (Sink::None, ExitReport::Sockets));
    }

    #[test]
    fn signals_by_name_number_and_none() {
        assert_eq!(parse_signal("SIGUSR2"), Some(Some(libc::SIGUSR2)));
        assert_eq!(parse_signal("none"), Some(None));
        assert_eq!(parse_signal("9"), None);
    }
}
