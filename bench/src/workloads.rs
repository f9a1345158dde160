//! The workloads, their sizes, and one round of runs. Every sample lands in [`Samples`] under
//! (workload, mode, metric).

use crate::run::{Context, Mode, Server};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::{Duration, UNIX_EPOCH};

/// How big each workload is.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub churn_ops: u64,
    /// Extra frames between main and the churn loop for the deep-stack variant.
    pub deep_nesting: u64,
    pub lifecycle_ops: u64,
    pub threads: u64,
    pub threaded_ops_per_thread: u64,
    pub live_connections: u64,
    /// The smaller size that makes the memory-per-socket figure a slope (fixed costs cancel).
    pub live_small_connections: u64,
    pub stacks: u64,
    pub grpc_rpcs: u64,
    pub grpc_rpcs_valgrind: u64,
    /// Passes per round of the timed workloads (churn, lifecycle, gRPC): on a shared 2-vCPU
    /// machine one pass of the 8-thread lifecycle varies by ±8 % and one gRPC run by ±30 %,
    /// so a ratio is the median of many back-to-back pairs rather than of five.
    pub passes: usize,
    pub timeout: Duration,
}

impl Sizes {
    /// The full benchmark.
    pub fn full() -> Sizes {
        Sizes {
            churn_ops: 200_000,
            deep_nesting: 30,
            lifecycle_ops: 20_000,
            threads: 8,
            threaded_ops_per_thread: 4_000,
            // 9,000 connections with both ends here: 18,001 fds under the 20,000 hard limit.
            live_connections: 9_000,
            live_small_connections: 1_000,
            stacks: 1_024,
            grpc_rpcs: 3_000,
            grpc_rpcs_valgrind: 600,
            passes: 3,
            timeout: Duration::from_secs(300),
        }
    }

    /// `--quick`: everything runs, small.
    pub fn quick() -> Sizes {
        Sizes {
            churn_ops: 20_000,
            deep_nesting: 30,
            lifecycle_ops: 1_500,
            threads: 8,
            threaded_ops_per_thread: 200,
            live_connections: 1_000,
            live_small_connections: 200,
            stacks: 128,
            grpc_rpcs: 300,
            grpc_rpcs_valgrind: 100,
            passes: 1,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Samples by (workload, mode, metric).
#[derive(Default)]
pub struct Samples {
    pub values: BTreeMap<(String, Mode, String), Vec<f64>>,
    /// The same samples keyed by the pass that took them: a workload's modes run back to
    /// back within a pass, so two modes' samples of one pass form a pair (see
    /// [`Samples::paired_ratios`]).
    by_pass: BTreeMap<(String, Mode, String), BTreeMap<usize, f64>>,
    /// The pass being run (set by [`round`]).
    pass: usize,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

impl Samples {
    fn add(&mut self, workload: &str, mode: Mode, metric: &str, value: f64) {
        let key = (workload.to_string(), mode, metric.to_string());
        self.by_pass
            .entry(key.clone())
            .or_default()
            .insert(self.pass, value);
        self.values.entry(key).or_default().push(value);
    }

    /// `a / b` for every pass that measured `metric` in both modes, in pass order. Each pair
    /// ran back to back, so the machine's slow drifts (other jobs on the host) cancel out of
    /// each ratio, which they do not from a ratio of two medians taken minutes apart.
    pub fn paired_ratios(&self, workload: &str, a: Mode, b: Mode, metric: &str) -> Vec<f64> {
        let get = |mode| {
            self.by_pass
                .get(&(workload.to_string(), mode, metric.to_string()))
        };
        let (Some(a), Some(b)) = (get(a), get(b)) else {
            return Vec::new();
        };
        a.iter()
            .filter_map(|(pass, x)| b.get(pass).filter(|y| **y > 0.0).map(|y| x / y))
            .collect()
    }

    fn add_json(&mut self, workload: &str, mode: Mode, json: &Value, metrics: &[&str]) {
        for metric in metrics {
            // Negative values are the workloads' "not measured" (e.g. no report without fdguard).
            if let Some(v) = json[*metric].as_f64().filter(|v| *v >= 0.0) {
                self.add(workload, mode, metric, v);
            }
        }
    }

    fn note_once(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }
}

fn os(args: &[String]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

/// The modes to run, rotated by `round` so no mode always goes first.
fn rotated(modes: &[Mode], round: usize) -> Vec<Mode> {
    let mut m = modes.to_vec();
    if !m.is_empty() {
        let k = round % m.len();
        m.rotate_left(k);
    }
    m
}

/// One round: every workload in every mode it has; the short timed ones `sizes.passes` times.
pub fn round(ctx: &Context, sizes: &Sizes, round: usize, samples: &mut Samples) {
    let available = |modes: &[Mode]| -> Vec<Mode> {
        modes
            .iter()
            .copied()
            .filter(|m| match m {
                Mode::Valgrind => ctx.valgrind.is_some(),
                Mode::Baseline => ctx.baseline.is_some(),
                _ => true,
            })
            .collect()
    };
    let all = available(&[
        Mode::Without,
        Mode::Fdguard,
        Mode::NoStacks,
        Mode::Baseline,
        Mode::Valgrind,
    ]);
    let three = available(&[Mode::Without, Mode::Fdguard, Mode::Baseline, Mode::Valgrind]);
    let churn = ctx.program("churn").display().to_string();
    let lifecycle = ctx.program("lifecycle").display().to_string();

    // The timed workloads of rows 1-3: (name, modes, argv).
    let deep = available(&[Mode::Without, Mode::Fdguard, Mode::NoStacks, Mode::Baseline]);
    let timed: [(&str, &[Mode], Vec<String>); 4] = [
        (
            "churn",
            &all,
            vec![churn.clone(), sizes.churn_ops.to_string()],
        ),
        (
            "churn_deep",
            &deep,
            vec![
                churn,
                sizes.churn_ops.to_string(),
                sizes.deep_nesting.to_string(),
            ],
        ),
        (
            "lifecycle",
            &all,
            vec![
                lifecycle.clone(),
                sizes.lifecycle_ops.to_string(),
                "1".into(),
            ],
        ),
        (
            "lifecycle_threads",
            &all,
            vec![
                lifecycle,
                sizes.threaded_ops_per_thread.to_string(),
                sizes.threads.to_string(),
            ],
        ),
    ];
    for p in 0..sizes.passes {
        // A new pass number per pass and round: samples of one pass pair up.
        let pass = round * sizes.passes + p;
        samples.pass = pass;
        for (workload, modes, argv) in &timed {
            for mode in rotated(modes, pass) {
                simple(ctx, sizes, samples, workload, mode, &os(argv));
            }
        }
    }
    samples.pass = round * sizes.passes;
    for mode in rotated(&three, round) {
        live(ctx, sizes, samples, "live", sizes.live_connections, mode);
    }
    for mode in rotated(
        &available(&[Mode::Without, Mode::Fdguard, Mode::Baseline]),
        round,
    ) {
        live(
            ctx,
            sizes,
            samples,
            "live_small",
            sizes.live_small_connections,
            mode,
        );
    }
    // The metrics writer (FDGUARD_METRICS_DIR) on the same live sockets, fdguard only (a
    // baseline library may predate it).
    metrics(ctx, sizes, samples, sizes.live_connections);
    for mode in available(&[Mode::Fdguard, Mode::Baseline]) {
        for kind in ["distinct", "same"] {
            stacks(ctx, sizes, samples, kind, mode);
        }
    }
    if ctx.python.is_some() {
        // A 3,000-RPC run takes 2-4 s and varies by ±30 % with the host's load (both
        // processes, their gRPC threads and Python's on 2 vCPUs), so it also gets several
        // back-to-back pairs per round; valgrind (slow to start) runs in the first only.
        for p in 0..sizes.passes {
            let pass = round * sizes.passes + p;
            samples.pass = pass;
            let modes = if p == 0 {
                three.clone()
            } else {
                available(&[Mode::Without, Mode::Fdguard, Mode::Baseline])
            };
            for mode in rotated(&modes, pass) {
                grpc(ctx, sizes, samples, mode);
            }
        }
    }
}

fn simple(
    ctx: &Context,
    sizes: &Sizes,
    samples: &mut Samples,
    workload: &str,
    mode: Mode,
    argv: &[OsString],
) {
    match ctx.run(mode, argv, &[], sizes.timeout) {
        Ok(out) => samples.add_json(workload, mode, &out.json, &["ns_per_op"]),
        Err(e) => samples
            .failures
            .push(format!("{workload} ({}): {e}", mode.name())),
    }
}

fn live(
    ctx: &Context,
    sizes: &Sizes,
    samples: &mut Samples,
    workload: &str,
    connections: u64,
    mode: Mode,
) {
    let dir = ctx.scratch.join(format!("{workload}-{}", mode.name()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        samples.failures.push(format!("{}: {e}", dir.display()));
        return;
    }
    let argv = os(&[
        ctx.program("live").display().to_string(),
        connections.to_string(),
        dir.display().to_string(),
    ]);
    // fdguard writes its exit report (to a file) like valgrind writes its fd list at exit, so
    // the exit time compares the two. The same template serves the SIGUSR1 fallback.
    let env = [
        ("FDGUARD_EXIT_REPORT", OsString::from("always")),
        ("FDGUARD_REPORT", dir.join("sig-%p-%n").into_os_string()),
    ];
    let out = match ctx.run(mode, &argv, &env, sizes.timeout) {
        Ok(out) => out,
        Err(e) => {
            samples
                .failures
                .push(format!("{workload} ({}): {e}", mode.name()));
            return;
        }
    };
    let json = &out.json;
    samples.add_json(
        workload,
        mode,
        json,
        &[
            "ns_per_op",
            "rss_bytes",
            "sockets",
            "report_text_ms",
            "report_json_ms",
        ],
    );
    if let (Some(exit_at), Ok(reaped)) = (
        json["exit_at_unix_ns"].as_f64(),
        out.reaped.duration_since(UNIX_EPOCH),
    ) {
        let ms = (reaped.as_nanos() as f64 - exit_at) / 1e6;
        samples.add(workload, mode, "exit_ms", ms.max(0.0));
    }
    if let Some(via) = json["report_via"].as_str().filter(|v| *v != "none") {
        samples.note_once(format!("report timing via {via}"));
    }
}

/// `live.c` with FDGUARD_METRICS_DIR: the metrics writer's CPU time per update with every
/// socket open, the interval it chose after it, and the file it wrote (read by the workload
/// from its own metrics file; default watcher tick).
fn metrics(ctx: &Context, sizes: &Sizes, samples: &mut Samples, connections: u64) {
    let workload = "live_metrics";
    let dir = ctx.scratch.join(workload);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        samples.failures.push(format!("{}: {e}", dir.display()));
        return;
    }
    let argv = os(&[
        ctx.program("live").display().to_string(),
        connections.to_string(),
        dir.display().to_string(),
    ]);
    let env = [("FDGUARD_METRICS_DIR", dir.clone().into_os_string())];
    match ctx.run(Mode::Fdguard, &argv, &env, sizes.timeout) {
        Ok(out) => samples.add_json(
            workload,
            Mode::Fdguard,
            &out.json,
            &[
                "sockets",
                "metrics_update_ms",
                "metrics_interval_s",
                "metrics_bytes",
                "metrics_series",
            ],
        ),
        Err(e) => samples.failures.push(format!("{workload}: {e}")),
    }
}

fn stacks(ctx: &Context, sizes: &Sizes, samples: &mut Samples, kind: &str, mode: Mode) {
    let dir = ctx.scratch.join(format!("stacks-{kind}-{}", mode.name()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let argv = os(&[
        ctx.program("stacks").display().to_string(),
        kind.to_string(),
        sizes.stacks.to_string(),
        dir.display().to_string(),
    ]);
    let workload = format!("stacks_{kind}");
    match ctx.run(mode, &argv, &[], sizes.timeout) {
        Ok(out) => {
            if out.json["report_text_ms"].as_f64().unwrap_or(-1.0) < 0.0 {
                samples.note_once(
                    "symbolisation cost not measured: libfdguard.so has no fdguard_report_to_path"
                        .to_string(),
                );
            }
            samples.add_json(
                &workload,
                mode,
                &out.json,
                &["report_text_ms", "report_json_ms", "stacks"],
            );
        }
        Err(e) => samples.failures.push(format!("{workload}: {e}")),
    }
}

fn grpc(ctx: &Context, sizes: &Sizes, samples: &mut Samples, mode: Mode) {
    let Some((python, _)) = &ctx.python else {
        return;
    };
    let script = ctx.repo.join("bench/programs/grpc_echo.py");
    let py = |args: &[&str]| -> Vec<OsString> {
        let mut v = vec![
            python.clone().into_os_string(),
            script.clone().into_os_string(),
        ];
        v.extend(args.iter().map(OsString::from));
        v
    };
    let startup = if mode == Mode::Valgrind {
        Duration::from_secs(180)
    } else {
        Duration::from_secs(60)
    };
    let lifetime = sizes.timeout.as_secs().to_string();
    let server_cmd = ctx.command(mode, &py(&["server", "--lifetime-s", &lifetime]), &[]);
    let server = match Server::start(server_cmd, startup) {
        Ok(s) => s,
        Err(e) => {
            samples
                .failures
                .push(format!("grpc ({}): {e}", mode.name()));
            return;
        }
    };
    let port = server.hello["port"].as_u64().unwrap_or(0).to_string();
    let rpcs = if mode == Mode::Valgrind {
        sizes.grpc_rpcs_valgrind
    } else {
        sizes.grpc_rpcs
    };
    let argv = py(&["client", "--port", &port, "--rpcs", &rpcs.to_string()]);
    match ctx.run(mode, &argv, &[], sizes.timeout) {
        Ok(out) => samples.add_json("grpc", mode, &out.json, &["ns_per_op", "rps"]),
        Err(e) => samples
            .failures
            .push(format!("grpc ({}): {e}", mode.name())),
    }
    server.stop(Duration::from_secs(30));
}
