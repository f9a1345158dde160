//! Medians, ratios and the derived figures (capture cost, memory per socket, symbolisation
//! cost), rendered as the table and as JSON.

use crate::run::{Context, Mode};
use crate::workloads::{Samples, Sizes};
use serde_json::{Map, Value, json};

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// Medians of the samples, looked up by name.
pub struct Medians<'a> {
    samples: &'a Samples,
}

impl Medians<'_> {
    fn get(&self, workload: &str, mode: Mode, metric: &str) -> Option<f64> {
        self.samples
            .values
            .get(&(workload.to_string(), mode, metric.to_string()))
            .and_then(|v| median(v))
    }
}

/// One table row: a workload's time per operation in each mode.
struct Row {
    label: String,
    unit: &'static str,
    workload: &'static str,
    scale: f64,
    target: &'static str,
}

fn rows(sizes: &Sizes, grpcio: &str, sockets: f64) -> Vec<Row> {
    vec![
        Row {
            label: "1 socket()+close() churn, 1 thread".into(),
            unit: "ns/pair",
            workload: "churn",
            scale: 1.0,
            target: "<= 1.10",
        },
        Row {
            label: format!("  same, {} frames deeper", sizes.deep_nesting),
            unit: "ns/pair",
            workload: "churn_deep",
            scale: 1.0,
            target: "",
        },
        Row {
            label: "2 loopback lifecycle, 1 thread".into(),
            unit: "ns/cycle",
            workload: "lifecycle",
            scale: 1.0,
            target: "<= 1.05",
        },
        Row {
            label: format!("3 loopback lifecycle, {} threads", sizes.threads),
            unit: "ns/cycle",
            workload: "lifecycle_threads",
            scale: 1.0,
            target: "<= row 2",
        },
        Row {
            label: format!("4 {sockets:.0} live sockets: set-up"),
            unit: "ns/conn",
            workload: "live",
            scale: 1.0,
            target: "",
        },
        Row {
            label: format!("5 gRPC unary echo (grpcio {grpcio})"),
            unit: "us/RPC",
            workload: "grpc",
            scale: 1e-3,
            target: "<= 1.03",
        },
        Row {
            label: format!("6 Python create_connection, {} frames", sizes.python_depth),
            unit: "us/conn",
            workload: "python_connect",
            scale: 1e-3,
            target: "",
        },
    ]
}

fn cell(v: Option<f64>, width: usize, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:>width$.decimals$}"),
        None => format!("{:>width$}", "-"),
    }
}

/// The `q` quantile (0..=1) of `v`, interpolated between neighbours.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    Some(s[lo] + (s[hi] - s[lo]) * (at - lo as f64))
}

/// `metric` of a workload in `mode` against the run without the shim: the median of the
/// per-pass ratios, and their interquartile range. Falls back to the ratio of the medians
/// (no spread) when no pass measured both.
fn overhead(
    samples: &Samples,
    workload: &str,
    mode: Mode,
    metric: &str,
) -> (Option<f64>, Option<(f64, f64)>) {
    let pairs = samples.paired_ratios(workload, mode, Mode::Without, metric);
    if pairs.is_empty() {
        let m = Medians { samples };
        return (
            ratio(
                m.get(workload, mode, metric),
                m.get(workload, Mode::Without, metric),
            ),
            None,
        );
    }
    (
        median(&pairs),
        quantile(&pairs, 0.25).zip(quantile(&pairs, 0.75)),
    )
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The derived figures, each `None` when its inputs are missing.
struct Derived {
    capture_ns: Option<f64>,
    capture_deep_ns: Option<f64>,
    capture_lifecycle_ns: Option<f64>,
    capture_threads_ns: Option<f64>,
    live_sockets: Option<f64>,
    report_text_ms: Option<f64>,
    report_json_ms: Option<f64>,
    exit_without_ms: Option<f64>,
    exit_fdguard_ms: Option<f64>,
    exit_valgrind_ms: Option<f64>,
    rss_delta: Option<f64>,
    bytes_per_socket: Option<f64>,
    bytes_per_socket_slope: Option<f64>,
    symbolise_text_us: Option<f64>,
    symbolise_json_us: Option<f64>,
    grpc_rps_change: Option<f64>,
    /// Workload 6: what the Python frames add per socket created from Python (ns, and as a
    /// fraction of a create_connection without fdguard), and what all of fdguard adds.
    python_frames_ns: Option<f64>,
    python_frames_fraction: Option<f64>,
    python_fdguard_ns: Option<f64>,
    python_fdguard_fraction: Option<f64>,
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

/// The derived figures for the library run in `shim` (Fdguard or Baseline).
fn derive(m: &Medians, sizes: &Sizes, shim: Mode) -> Derived {
    let get = |w: &str, mode: Mode, metric: &str| m.get(w, mode, metric);
    let ns = |w: &str, mode: Mode| get(w, mode, "ns_per_op");
    let rss = |w: &str, mode: Mode| get(w, mode, "rss_bytes");
    let live_sockets = get("live", shim, "sockets");
    let small_sockets = get("live_small", shim, "sockets");
    let rss_delta = diff(rss("live", shim), rss("live", Mode::Without));
    let small_delta = diff(rss("live_small", shim), rss("live_small", Mode::Without));
    let stacks = get("stacks_distinct", shim, "stacks").unwrap_or(sizes.stacks as f64);
    let per_stack = |metric: &str| {
        diff(
            get("stacks_distinct", shim, metric),
            get("stacks_same", shim, metric),
        )
        .map(|ms| ms * 1e3 / (stacks - 1.0).max(1.0))
    };
    Derived {
        capture_ns: diff(ns("churn", shim), ns("churn", Mode::NoStacks)),
        capture_deep_ns: diff(ns("churn_deep", shim), ns("churn_deep", Mode::NoStacks)),
        // Two captures per cycle (socket, accept).
        capture_lifecycle_ns: diff(ns("lifecycle", shim), ns("lifecycle", Mode::NoStacks))
            .map(|d| d / 2.0),
        capture_threads_ns: diff(
            ns("lifecycle_threads", shim),
            ns("lifecycle_threads", Mode::NoStacks),
        )
        .map(|d| d / 2.0),
        live_sockets,
        report_text_ms: get("live", shim, "report_text_ms"),
        report_json_ms: get("live", shim, "report_json_ms"),
        exit_without_ms: get("live", Mode::Without, "exit_ms"),
        exit_fdguard_ms: get("live", shim, "exit_ms"),
        exit_valgrind_ms: get("live", Mode::Valgrind, "exit_ms"),
        rss_delta,
        bytes_per_socket: rss_delta.zip(live_sockets).map(|(d, n)| d / n),
        bytes_per_socket_slope: match (rss_delta, small_delta, live_sockets, small_sockets) {
            (Some(d), Some(s), Some(n), Some(k)) if n > k => Some((d - s) / (n - k)),
            _ => None,
        },
        symbolise_text_us: per_stack("report_text_ms"),
        symbolise_json_us: per_stack("report_json_ms"),
        grpc_rps_change: overhead(m.samples, "grpc", shim, "rps")
            .0
            .map(|r| (r - 1.0) * 100.0),
        python_frames_ns: python_frames_ns(m, shim),
        python_frames_fraction: ratio(
            python_frames_ns(m, shim),
            ns("python_connect", Mode::Without),
        ),
        python_fdguard_ns: python_fdguard_ns(m, shim),
        python_fdguard_fraction: ratio(
            python_fdguard_ns(m, shim),
            ns("python_connect", Mode::Without),
        ),
    }
}

/// The metrics writer's average budget per watcher tick (src/agent/metrics.rs `BUDGET_NS`).
const METRICS_BUDGET_MS: f64 = 2.0;

/// Workload 6, Python frames on vs off (`FDGUARD_PYTHON_DEPTH=0`): the median of the
/// back-to-back pairs' ratios, times the median time with them off. Only the `Fdguard` run has
/// an "off" twin; a baseline library gets `None`.
fn python_frames_ns(m: &Medians, shim: Mode) -> Option<f64> {
    if shim != Mode::Fdguard {
        return None;
    }
    let pairs =
        m.samples
            .paired_ratios("python_connect", Mode::Fdguard, Mode::NoPython, "ns_per_op");
    Some((median(&pairs)? - 1.0) * m.get("python_connect", Mode::NoPython, "ns_per_op")?)
}

/// Workload 6, everything fdguard adds: the same with the run without the shim as the twin.
fn python_fdguard_ns(m: &Medians, shim: Mode) -> Option<f64> {
    let pairs = m
        .samples
        .paired_ratios("python_connect", shim, Mode::Without, "ns_per_op");
    Some((median(&pairs)? - 1.0) * m.get("python_connect", Mode::Without, "ns_per_op")?)
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|v| format!("{v:.decimals$}"))
        .unwrap_or_else(|| "-".into())
}

fn both(a: String, b: Option<String>) -> String {
    match b {
        Some(b) => format!("{a} (baseline {b})"),
        None => a,
    }
}

/// The table and the derived figures, as printed.
pub fn render(ctx: &Context, sizes: &Sizes, rounds: usize, samples: &Samples) -> String {
    let m = Medians { samples };
    let d = derive(&m, sizes, Mode::Fdguard);
    let b = ctx
        .baseline
        .as_ref()
        .map(|_| derive(&m, sizes, Mode::Baseline));
    let grpcio = ctx.python.as_ref().map(|p| p.1.as_str()).unwrap_or("-");
    let valgrind = ctx.valgrind.as_ref().map(|v| v.1.as_str());
    let mut out = String::new();
    out.push_str(&format!(
        "fdguard overhead: {rounds} interleaved rounds ({} passes each of workloads 1-3 and 5), medians; \
         a ratio is the median of the ratios of back-to-back pairs, [its interquartile range]. \
         fdguard = {}{}; {}\n\n",
        sizes.passes,
        ctx.lib.display(),
        ctx.baseline
            .as_ref()
            .map(|p| format!(", baseline = {}", p.display()))
            .unwrap_or_default(),
        valgrind
            .map(|v| format!("{v} --tool=none --track-fds=yes"))
            .unwrap_or_else(|| "valgrind not run".into())
    ));
    let baseline_header = if b.is_some() {
        format!(" {:>10} {:>6}", "baseline", "ratio")
    } else {
        String::new()
    };
    out.push_str(&format!(
        "{:<40} {:>8} {:>10} {:>10} {:>6} {:>13} {:>9}{} {:>10} {:>6}\n",
        "workload",
        "unit",
        "without",
        "fdguard",
        "ratio",
        "spread",
        "target",
        baseline_header,
        "valgrind",
        "ratio"
    ));
    for row in rows(sizes, grpcio, d.live_sockets.unwrap_or(0.0)) {
        let v = |mode| {
            m.get(row.workload, mode, "ns_per_op")
                .map(|x| x * row.scale)
        };
        let (without, fdguard, vg) = (v(Mode::Without), v(Mode::Fdguard), v(Mode::Valgrind));
        if without.is_none() && fdguard.is_none() {
            continue;
        }
        let baseline = if b.is_some() {
            let base = v(Mode::Baseline);
            format!(
                " {} {}",
                cell(base, 10, 1),
                cell(
                    overhead(samples, row.workload, Mode::Baseline, "ns_per_op").0,
                    6,
                    3
                )
            )
        } else {
            String::new()
        };
        let (fdguard_ratio, spread) = overhead(samples, row.workload, Mode::Fdguard, "ns_per_op");
        let spread = spread
            .map(|(lo, hi)| format!("[{lo:.3}-{hi:.3}]"))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<40} {:>8} {} {} {} {:>13} {:>9}{} {} {}\n",
            row.label,
            row.unit,
            cell(without, 10, 1),
            cell(fdguard, 10, 1),
            cell(fdguard_ratio, 6, 3),
            spread,
            row.target,
            baseline,
            cell(vg, 10, 1),
            cell(
                overhead(samples, row.workload, Mode::Valgrind, "ns_per_op").0,
                6,
                3
            ),
        ));
    }
    out.push('\n');
    let base =
        |f: fn(&Derived) -> Option<f64>, decimals: usize| b.as_ref().map(|b| opt(f(b), decimals));
    out.push_str(&format!(
        "stack capture (fdguard - FDGUARD_STACK_DEPTH=0), ns per capture: churn {}; {} frames deeper {}; lifecycle {}; {} threads {} (wall)\n",
        both(opt(d.capture_ns, 0), base(|x| x.capture_ns, 0)),
        sizes.deep_nesting,
        both(opt(d.capture_deep_ns, 0), base(|x| x.capture_deep_ns, 0)),
        both(opt(d.capture_lifecycle_ns, 0), base(|x| x.capture_lifecycle_ns, 0)),
        sizes.threads,
        both(opt(d.capture_threads_ns, 0), base(|x| x.capture_threads_ns, 0)),
    ));
    out.push_str(&format!(
        "report with {} live sockets, ms (target < 150): text {}, JSON {}\n",
        opt(d.live_sockets, 0),
        both(opt(d.report_text_ms, 1), base(|x| x.report_text_ms, 1)),
        both(opt(d.report_json_ms, 1), base(|x| x.report_json_ms, 1)),
    ));
    out.push_str(&format!(
        "exit with them open, ms (target: fdguard <= valgrind): without {}, fdguard {} (exit report to a file), valgrind {} (its fd list)\n",
        opt(d.exit_without_ms, 1),
        both(opt(d.exit_fdguard_ms, 1), base(|x| x.exit_fdguard_ms, 1)),
        opt(d.exit_valgrind_ms, 1),
    ));
    out.push_str(&format!(
        "memory: RSS +{} KiB = {} bytes per tracked socket; slope over {}-{} connections {} bytes per socket (target < 300)\n",
        both(opt(d.rss_delta.map(|x| x / 1024.0), 0), base(|x| x.rss_delta.map(|y| y / 1024.0), 0)),
        opt(d.bytes_per_socket, 0),
        sizes.live_small_connections,
        sizes.live_connections,
        both(opt(d.bytes_per_socket_slope, 0), base(|x| x.bytes_per_socket_slope, 0)),
    ));
    out.push_str(&format!(
        "symbolisation, us per unique stack ({} distinct stacks vs 1): text {}, JSON {}\n",
        sizes.stacks,
        both(
            opt(d.symbolise_text_us, 1),
            base(|x| x.symbolise_text_us, 1)
        ),
        both(
            opt(d.symbolise_json_us, 1),
            base(|x| x.symbolise_json_us, 1)
        ),
    ));
    let metric = |name: &str| m.get("live_metrics", Mode::Fdguard, name);
    if let (Some(update_ms), Some(interval_s)) =
        (metric("metrics_update_ms"), metric("metrics_interval_s"))
    {
        // Ticks are 1 s apart (FDGUARD_WATCH_MS's default).
        out.push_str(&format!(
            "metrics file (FDGUARD_METRICS_DIR) with {} live sockets: {update_ms:.1} ms CPU per update, \
             next one {interval_s:.0} tick(s) later = {:.2} ms per 1 s tick (budget {:.1}); {} series, {} bytes\n",
            opt(metric("sockets"), 0),
            update_ms / interval_s.max(1.0),
            METRICS_BUDGET_MS,
            opt(metric("metrics_series"), 0),
            opt(metric("metrics_bytes"), 0),
        ));
    }
    if d.python_fdguard_ns.is_some() {
        let pct = |x: Option<f64>| opt(x.map(|f| f * 100.0), 1);
        out.push_str(&format!(
            "sockets created from Python (workload 6), ns per create_connection: Python frames \
             (fdguard - FDGUARD_PYTHON_DEPTH=0) {} = {} % of the call without fdguard (target < 10); \
             all of fdguard {} = {} %\n",
            opt(d.python_frames_ns, 0),
            pct(d.python_frames_fraction),
            both(opt(d.python_fdguard_ns, 0), base(|x| x.python_fdguard_ns, 0)),
            both(pct(d.python_fdguard_fraction), base(|x| x.python_fdguard_fraction.map(|f| f * 100.0), 1)),
        ));
    }
    if d.grpc_rps_change.is_some() {
        out.push_str(&format!(
            "gRPC throughput change with fdguard, % RPC/s (target >= -3): {}\n",
            both(opt(d.grpc_rps_change, 1), base(|x| x.grpc_rps_change, 1)),
        ));
    }
    for note in &samples.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}

/// Every sample, median, derived figure and failure, for `--json`.
pub fn to_json(
    ctx: &Context,
    sizes: &Sizes,
    rounds: usize,
    quick: bool,
    samples: &Samples,
) -> Value {
    let m = Medians { samples };
    let mut workloads = Map::new();
    for ((workload, mode, metric), values) in &samples.values {
        let w = workloads
            .entry(workload.clone())
            .or_insert_with(|| json!({}));
        let entry = &mut w[mode.name()];
        if entry.is_null() {
            *entry = json!({});
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        entry[metric.as_str()] = json!({
            "median": median(values),
            "min": sorted.first(),
            "max": sorted.last(),
            "samples": values,
        });
    }
    let mut overheads = Map::new();
    for row in rows(sizes, "", 0.0) {
        let mut per_mode = Map::new();
        for mode in [
            Mode::Fdguard,
            Mode::NoStacks,
            Mode::NoPython,
            Mode::Baseline,
            Mode::Valgrind,
        ] {
            let pairs = samples.paired_ratios(row.workload, mode, Mode::Without, "ns_per_op");
            if !pairs.is_empty() {
                per_mode.insert(
                    mode.name().to_string(),
                    json!({
                        "median": median(&pairs),
                        "p25": quantile(&pairs, 0.25),
                        "p75": quantile(&pairs, 0.75),
                        "pairs": pairs,
                    }),
                );
            }
        }
        overheads.insert(row.workload.to_string(), Value::Object(per_mode));
    }
    json!({
        "command": std::env::args().collect::<Vec<_>>(),
        "overhead_vs_without": overheads,
        "quick": quick,
        "rounds": rounds,
        "lib": ctx.lib.display().to_string(),
        "valgrind": ctx.valgrind.as_ref().map(|v| v.1.clone()),
        "grpcio": ctx.python.as_ref().map(|p| p.1.clone()),
        "sizes": format!("{sizes:?}"),
        "workloads": workloads,
        "derived": derived_json(&derive(&m, sizes, Mode::Fdguard)),
        "derived_baseline": ctx.baseline.as_ref().map(|_| derived_json(&derive(&m, sizes, Mode::Baseline))),
        "baseline_lib": ctx.baseline.as_ref().map(|p| p.display().to_string()),
        "notes": samples.notes,
        "failures": samples.failures,
    })
}

fn derived_json(d: &Derived) -> Value {
    json!({
        "capture_ns": d.capture_ns,
        "capture_deep_ns": d.capture_deep_ns,
        "capture_lifecycle_ns": d.capture_lifecycle_ns,
        "capture_threads_ns": d.capture_threads_ns,
        "live_sockets": d.live_sockets,
        "report_text_ms": d.report_text_ms,
        "report_json_ms": d.report_json_ms,
        "exit_without_ms": d.exit_without_ms,
        "exit_fdguard_ms": d.exit_fdguard_ms,
        "exit_valgrind_ms": d.exit_valgrind_ms,
        "rss_delta_bytes": d.rss_delta,
        "bytes_per_socket": d.bytes_per_socket,
        "bytes_per_socket_slope": d.bytes_per_socket_slope,
        "symbolise_text_us_per_stack": d.symbolise_text_us,
        "symbolise_json_us_per_stack": d.symbolise_json_us,
        "grpc_rps_change_percent": d.grpc_rps_change,
        "python_frames_ns_per_socket": d.python_frames_ns,
        "python_frames_fraction_of_create_connection": d.python_frames_fraction,
        "python_fdguard_ns_per_socket": d.python_fdguard_ns,
        "python_fdguard_fraction_of_create_connection": d.python_fdguard_fraction,
    })
}
