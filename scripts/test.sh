#!/usr/bin/env bash
# Runs every check the project has: formatting, lints, unit, integration and sandbox tests.
# On a fresh Debian 12 machine it first installs what is missing (scripts/setup.sh).
#
#   scripts/test.sh            everything
#   scripts/test.sh FILTER     only tests whose name contains FILTER (after fmt and clippy)
set -euo pipefail

cd "$(dirname "$0")/.."
# Keep one warm target dir outside the clone: CI clones afresh, the machine stays.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caravan-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

scripts/setup.sh
# The Docker driver's tests run against a real dockerd: start one unless one answers, stop only
# the one started here.
scripts/dockerd.sh start
trap 'scripts/dockerd.sh stop' EXIT

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
if [[ $# -eq 0 ]]; then
  # Benchmarks are built, not run: their figures come from `cargo bench`, never from a test run.
  echo "==> cargo bench --no-run"
  cargo bench --locked --no-run
  echo "==> cargo test --doc"
  cargo test --locked --doc
fi
echo "==> cargo test (library, binary, integration tests)"
cargo test --locked --lib --bins --tests "$@"
