//! `fdguard-bench`: what libfdguard.so costs a process, next to valgrind's fd tracking
//! (issue 7; house style H19: overhead is a benchmark, not a timed test).
//!
//! Each workload runs WITHOUT the shim, WITH it (target/release/libfdguard.so, or
//! `FDGUARD_LIB`; stacks on, as by default), with `FDGUARD_STACK_DEPTH=0` where that isolates
//! the stack capture, and under `valgrind --tool=none --track-fds=yes`, interleaved round by
//! round in one run; the table shows medians and ratios. The C workloads (bench/programs/) are
//! compiled here with gcc -O2; the gRPC workload and workload 6 (sockets created from Python,
//! also with `FDGUARD_PYTHON_DEPTH=0`) use the grpcio venv that tests/support/install-deps.sh
//! creates (skipped, with a note, when it is missing). All
//! traffic stays on 127.0.0.1 and every process is killed if it outlives its time limit.
//!
//! ```text
//! cargo build --release -p fdguard
//! cargo run --release -p fdguard-bench -- [--quick] [--json FILE]
//! ```

mod run;
mod summary;
mod workloads;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Measures libfdguard.so's overhead on socket churn, loopback connection lifecycles (1 and 8
/// threads), many live connections (report time, memory per socket) and a grpcio echo
/// service, each without the shim, with it, and under valgrind --track-fds.
#[derive(Parser)]
#[command(name = "fdguard-bench")]
struct Opt {
    /// Small sizes, 2 rounds, no valgrind: checks that every workload runs (well under a
    /// minute; what CI runs).
    #[arg(long)]
    quick: bool,
    /// Also write every sample, the medians and the derived figures to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Rounds to run [default: 5, or 2 with --quick].
    #[arg(long, value_name = "N")]
    rounds: Option<usize>,
    /// Do not run valgrind (it is never run with --quick).
    #[arg(long)]
    no_valgrind: bool,
    /// Also run every fdguard workload with this library (e.g. a build before a change),
    /// interleaved, as the "baseline" column.
    #[arg(long, value_name = "FILE")]
    baseline_lib: Option<PathBuf>,
}

fn main() -> ExitCode {
    let opt = Opt::parse();
    let sizes = if opt.quick {
        workloads::Sizes::quick()
    } else {
        workloads::Sizes::full()
    };
    let rounds = opt.rounds.unwrap_or(if opt.quick { 2 } else { 5 }).max(1);
    let ctx = match run::Context::prepare(
        !opt.quick && !opt.no_valgrind,
        opt.baseline_lib.clone(),
        sizes.stacks as usize,
    ) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("fdguard-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut samples = workloads::Samples::default();
    if opt.quick {
        samples.notes.push(
            "--quick: sizes are too small for the ratios to mean anything; it only shows that \
             every workload runs"
                .into(),
        );
    }
    if ctx.python.is_none() {
        samples.notes.push(
            "gRPC workload skipped: no grpcio venv (run tests/support/install-deps.sh)".into(),
        );
    }
    if ctx.valgrind.is_none() && !opt.quick && !opt.no_valgrind {
        samples
            .notes
            .push("valgrind columns empty: valgrind is not installed".into());
    }
    for r in 0..rounds {
        eprintln!("fdguard-bench: round {}/{rounds}", r + 1);
        workloads::round(&ctx, &sizes, r, &mut samples);
    }
    print!("{}", summary::render(&ctx, &sizes, rounds, &samples));
    if let Some(path) = &opt.json {
        let value = summary::to_json(&ctx, &sizes, rounds, opt.quick, &samples);
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("fdguard-bench: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if samples.failures.is_empty() {
        let _ = std::fs::remove_dir_all(&ctx.scratch);
        ExitCode::SUCCESS
    } else {
        for f in &samples.failures {
            eprintln!("fdguard-bench: FAILED: {f}");
        }
        eprintln!(
            "fdguard-bench: files kept in {} for inspection",
            ctx.scratch.display()
        );
        ExitCode::FAILURE
    }
}
