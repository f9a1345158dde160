//! Configuration: every `FDGUARD_*` variable, read once in the constructor into an immutable
//! [`Config`]. A bad value gets one stderr line naming the variable and the default used; the
//! host keeps running. Nothing here is read on a hot path.

use once_cell::sync::OnceCell;
use std::path::PathBuf;

/// Where reports go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// fd 2, while it is still the stderr fdguard saw at load.
    Stderr,
    /// A path template: `%p` pid, `%n` report number, `%e` executable name, `%t` unix seconds.
    /// A template without `%p` gets `.%p` appended (LeakSanitizer's log_path convention), so
    /// processes that inherit the variable never share a file.
    File(String),
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
    /// Only if this process created a socket itself (launchers and shell scripts that inherit
    /// LD_PRELOAD stay silent).
    Auto,
    Always,
    Never,
}

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
    pub suppressions: Option<PathBuf>,
    pub exitcode: i32,
    pub stack_depth: usize,
    pub exit_report: ExitReport,
    pub disabled: bool,
    pub history: usize,
    /// Cached unwinder (framehop) with libgcc as fallback; `false`: libgcc only.
    pub fast_unwind: bool,
    /// Test-only fault injection (`FDGUARD_TEST_FAULT`): `hook-panic` panics inside the
    /// socket() bookkeeping, `report-panic` inside report building. Proves that an internal
    /// fault disables fdguard instead of hurting the host. Not listed in VARIABLES.
    pub test_fault: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sink: Sink::Stderr,
            format: Format::Text,
            signal: Some(libc::SIGUSR1),
            grace_ms: 60_000,
            watch_ms: 1_000,
            dup_min: 2,
            suppressions: None,
            exitcode: 0,
            stack_depth: 32,
            exit_report: ExitReport::Auto,
            disabled: false,
            history: 64,
            fast_unwind: true,
            test_fault: None,
        }
    }
}

/// One documented variable.
#[cfg_attr(not(test), allow(dead_code))]
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

/// Every variable fdguard reads. The README's table must list each with this default (a unit
/// test checks it), so the documentation cannot drift from the code.
#[cfg_attr(not(test), allow(dead_code))]
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "FDGUARD_REPORT",
        default: "stderr",
        doc: "`stderr` or a file path template (`%p` pid, `%n` report number, `%e` program name, `%t` unix time); `.%p` is appended when the template has no `%p`",
    },
    Variable {
        name: "FDGUARD_FORMAT",
        default: "text",
        doc: "`text` (LeakSanitizer-style) or `json` (schema_version 1)",
    },
    Variable {
        name: "FDGUARD_SIGNAL",
        default: "SIGUSR1",
        doc: "signal that asks for a report: a name (`SIGUSR2`), a number, or `none`",
    },
    Variable {
        name: "FDGUARD_GRACE_MS",
        default: "60000",
        doc: "how long a socket may stay open after its peer hung up or after shutdown() before it is a finding. 60 s because grpcio 1.51.1's backup poller closes only one CLOSE_WAIT socket per 5 s tick, so a healthy client with N dead connections needs about N x 5 s",
    },
    Variable {
        name: "FDGUARD_WATCH_MS",
        default: "1000",
        doc: "interval at which the watcher samples TCP states (0: only at report time)",
    },
    Variable {
        name: "FDGUARD_DUP_MIN",
        default: "2",
        doc: "simultaneous client connections to one backend that make a duplicate_backend finding",
    },
    Variable {
        name: "FDGUARD_SUPPRESSIONS",
        default: "none",
        doc: "suppressions file: `leak:<pattern>` on function, module or file, `dup:<backend pattern>`; `*` wildcards, `#` comments",
    },
    Variable {
        name: "FDGUARD_EXITCODE",
        default: "0",
        doc: "exit status to use when unsuppressed peer_closed, shutdown_not_closed or since_checkpoint findings exist at exit (0: leave the status alone; LeakSanitizer uses 23)",
    },
    Variable {
        name: "FDGUARD_STACK_DEPTH",
        default: "32",
        doc: "frames captured per creating stack (0 turns capture off, at most 64)",
    },
    Variable {
        name: "FDGUARD_UNWIND",
        default: "fast",
        doc: "`fast` (cached unwinder, libgcc as fallback) or `libgcc` (slower; use it if a stack looks wrong)",
    },
    Variable {
        name: "FDGUARD_EXIT_REPORT",
        default: "auto",
        doc: "`auto` (report at exit only if the process created a socket), `always` or `never`",
    },
    Variable {
        name: "FDGUARD_HISTORY",
        default: "64",
        doc: "closed client connections listed per report (at most 1024)",
    },
    Variable {
        name: "FDGUARD_DISABLE",
        default: "0",
        doc: "`1` loads fdguard but tracks nothing",
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

/// Parses the variables returned by `lookup`. Returns the config and one warning line per bad
/// value (the caller prints them).
pub fn parse(lookup: impl Fn(&str) -> Option<String>) -> (Config, Vec<String>) {
    let mut c = Config::default();
    let warnings = std::cell::RefCell::new(Vec::new());
    let bad = |name: &str, value: &str, what: &str, default: &str| {
        let shown: String = value.chars().take(32).collect();
        warnings.borrow_mut().push(format!(
            "fdguard: {name}={shown:?} is not {what}; using {default}"
        ));
    };
    let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

    if let Some(v) = var("FDGUARD_REPORT") {
        let v = v.trim();
        if v.eq_ignore_ascii_case("stderr") {
            c.sink = Sink::Stderr;
        } else if v.len() > 3000 || v.contains('\n') {
            bad(
                "FDGUARD_REPORT",
                v,
                "a usable path (too long or multi-line)",
                "stderr",
            );
        } else {
            c.sink = Sink::File(v.to_string());
        }
    }
    if let Some(v) = var("FDGUARD_FORMAT") {
        match v.trim().to_ascii_lowercase().as_str() {
            "text" => c.format = Format::Text,
            "json" => c.format = Format::Json,
            _ => bad("FDGUARD_FORMAT", &v, "`text` or `json`", "text"),
        }
    }
    if let Some(v) = var("FDGUARD_SIGNAL") {
        match parse_signal(v.trim()) {
            Some(sig) => c.signal = sig,
            None => bad(
                "FDGUARD_SIGNAL",
                &v,
                "a signal name, number or `none`",
                "SIGUSR1",
            ),
        }
    }
    let number = |name: &str, default: u64, max: u64, what: &str| -> u64 {
        match var(name) {
            None => default,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n <= max => n,
                _ => {
                    bad(name, &v, what, &default.to_string());
                    default
                }
            },
        }
    };
    c.grace_ms = number(
        "FDGUARD_GRACE_MS",
        60_000,
        7 * 24 * 3_600_000,
        "a number of milliseconds",
    );
    c.watch_ms = number(
        "FDGUARD_WATCH_MS",
        1_000,
        3_600_000,
        "a number of milliseconds (at most one hour)",
    );
    c.dup_min = number("FDGUARD_DUP_MIN", 2, 1_000_000, "a connection count") as usize;
    if c.dup_min < 2 {
        bad("FDGUARD_DUP_MIN", &c.dup_min.to_string(), "at least 2", "2");
        c.dup_min = 2;
    }
    c.exitcode = number("FDGUARD_EXITCODE", 0, 255, "an exit status 0-255") as i32;
    c.stack_depth = number("FDGUARD_STACK_DEPTH", 32, 64, "a frame count 0-64") as usize;
    c.history = number(
        "FDGUARD_HISTORY",
        64,
        crate::history::CAPACITY as u64,
        "a count 0-1024",
    ) as usize;
    if let Some(v) = var("FDGUARD_UNWIND") {
        match v.trim().to_ascii_lowercase().as_str() {
            "fast" => c.fast_unwind = true,
            "libgcc" => c.fast_unwind = false,
            _ => bad("FDGUARD_UNWIND", &v, "`fast` or `libgcc`", "fast"),
        }
    }
    if let Some(v) = var("FDGUARD_SUPPRESSIONS") {
        c.suppressions = Some(PathBuf::from(v.trim()));
    }
    if let Some(v) = var("FDGUARD_EXIT_REPORT") {
        match v.trim().to_ascii_lowercase().as_str() {
            "auto" => c.exit_report = ExitReport::Auto,
            "always" | "1" => c.exit_report = ExitReport::Always,
            "never" | "0" => c.exit_report = ExitReport::Never,
            _ => bad(
                "FDGUARD_EXIT_REPORT",
                &v,
                "`auto`, `always` or `never`",
                "auto",
            ),
        }
    }
    if let Some(v) = var("FDGUARD_DISABLE") {
        match v.trim() {
            "1" | "true" | "yes" => c.disabled = true,
            "0" | "false" | "no" => c.disabled = false,
            _ => bad("FDGUARD_DISABLE", &v, "`0` or `1`", "0"),
        }
    }
    c.test_fault = var("FDGUARD_TEST_FAULT").map(|v| v.trim().to_string());
    (c, warnings.into_inner())
}

/// `SIGUSR1`, `USR1`, `10` → Some(Some(10)); `none` → Some(None).
pub fn parse_signal(s: &str) -> Option<Option<i32>> {
    // One grammar for the library and the CLI: it lives in the shared crate.
    fdguard_report::signal::parse_signal(s)
}

/// Expands a report path template for report number `seq`.
pub fn expand_path(template: &str, pid: i32, seq: u64, exe: &str, unix_s: u64) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut chars = template.chars().peekable();
    let mut saw_pid = false;
    while let Some(ch) = chars.next() {
        if ch != '%' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('p') => {
                saw_pid = true;
                out.push_str(&pid.to_string());
            }
            Some('n') => out.push_str(&seq.to_string()),
            Some('e') => out.push_str(exe),
            Some('t') => out.push_str(&unix_s.to_string()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    if !saw_pid {
        out.push('.');
        out.push_str(&pid.to_string());
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

    #[test]
    fn the_readme_lists_every_variable_with_its_default() {
        let readme = include_str!("../README.md");
        for v in VARIABLES {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", v.name)))
                .unwrap_or_else(|| panic!("README has no row for {}", v.name));
            let default = v.default.trim_matches('`');
            assert!(
                row.contains(default),
                "README row for {} lacks the default {default}: {row}",
                v.name
            );
        }
        // And nothing in the README's table that the code does not read.
        for line in readme.lines().filter(|l| l.starts_with("| `FDGUARD_")) {
            let name = line.split('`').nth(1).unwrap();
            assert!(
                VARIABLES.iter().any(|v| v.name == name),
                "README documents unknown {name}"
            );
        }
    }

    #[test]
    fn defaults_without_variables() {
        let (c, w) = parse_map(&[]);
        assert!(w.is_empty());
        assert_eq!(c.sink, Sink::Stderr);
        assert_eq!(c.signal, Some(libc::SIGUSR1));
        assert_eq!(c.grace_ms, 60_000);
    }

    #[test]
    fn every_bad_value_gets_one_line_and_the_default() {
        let garbage = "\u{1}\u{7f}💥x".repeat(50);
        for name in [
            "FDGUARD_FORMAT",
            "FDGUARD_SIGNAL",
            "FDGUARD_GRACE_MS",
            "FDGUARD_WATCH_MS",
            "FDGUARD_DUP_MIN",
            "FDGUARD_EXITCODE",
            "FDGUARD_STACK_DEPTH",
            "FDGUARD_EXIT_REPORT",
            "FDGUARD_HISTORY",
            "FDGUARD_UNWIND",
            "FDGUARD_DISABLE",
        ] {
            let (c, w) = parse_map(&[(name, garbage.as_str())]);
            assert_eq!(w.len(), 1, "{name}: {w:?}");
            assert!(w[0].contains(name) && w[0].contains("using"), "{}", w[0]);
            assert!(w[0].len() < 300, "one short line: {}", w[0]);
            let d = Config::default();
            assert_eq!(
                (c.grace_ms, c.signal, c.format),
                (d.grace_ms, d.signal, d.format)
            );
        }
        let (_, w) = parse_map(&[("FDGUARD_GRACE_MS", "99999999999999999999999")]);
        assert_eq!(w.len(), 1);
        let (c, w) = parse_map(&[("FDGUARD_REPORT", &"x".repeat(5000))]);
        assert_eq!((c.sink, w.len()), (Sink::Stderr, 1));
    }

    #[test]
    fn signals_by_name_number_and_none() {
        assert_eq!(parse_signal("SIGUSR2"), Some(Some(libc::SIGUSR2)));
        assert_eq!(parse_signal("usr1"), Some(Some(libc::SIGUSR1)));
        assert_eq!(parse_signal("12"), Some(Some(12)));
        assert_eq!(parse_signal("none"), Some(None));
        assert_eq!(parse_signal("SIGKILL"), None);
        assert_eq!(parse_signal("9"), None);
        assert_eq!(parse_signal("RTMIN+2"), Some(Some(libc::SIGRTMIN() + 2)));
    }

    #[test]
    fn path_templates_expand_and_always_carry_the_pid() {
        assert_eq!(
            expand_path("/tmp/r-%p-%n.json", 42, 3, "app", 9),
            "/tmp/r-42-3.json"
        );
        assert_eq!(
            expand_path("/tmp/r.json", 42, 1, "app", 9),
            "/tmp/r.json.42"
        );
        assert_eq!(
            expand_path("/tmp/%e.%t.%p%%", 7, 1, "app", 9),
            "/tmp/app.9.7%"
        );
    }
}
