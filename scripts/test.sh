#!/usr/bin/env bash
# Runs every fdguard test on a fresh machine: installs what the tests need (Debian's
# libgrpc++ 1.51.1 and the real programs the tests run, grpcio 1.51.1 and the latest grpcio in
# private venvs), checks formatting and clippy, builds the workspace, runs the benchmark in its
# short mode, then the whole suite. Under CI=true a missing dependency fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/support/install-deps.sh
# House rules the compiler does not enforce: formatting, and clippy with warnings as errors (the
# workspace denies undocumented unsafe blocks, so every `unsafe {}` keeps its SAFETY comment).
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace --all-targets
# The shipped benchmark must keep working: CI runs it in its short mode (numbers not checked).
cargo run --release -q -p fdguard-bench -- --quick >/dev/null
cargo test --workspace --no-fail-fast
