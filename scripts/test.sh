#!/usr/bin/env bash
# Runs every fdguard test on a fresh machine: installs what the tests need (Debian's
# libgrpc++ 1.51.1, grpcio 1.51.1 and the latest grpcio in private venvs), builds the
# workspace, then runs the whole suite. Under CI=true a missing dependency fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/support/install-deps.sh
cargo build --workspace --all-targets
# The shipped benchmark must keep working: CI runs it in its short mode (numbers not checked).
cargo run --release -q -p fdguard-bench -- --quick >/dev/null
cargo test --workspace --no-fail-fast
