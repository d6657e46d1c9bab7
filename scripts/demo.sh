#!/usr/bin/env bash
# Brings caravan up on a fresh Debian 12 machine and runs its main job: builds the binary, writes
# the example job and validates it. (Once agents can run jobs, this starts a dev agent and runs
# the example jobs.)
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caravan-target}"

scripts/setup.sh
cargo build --locked --release --bin caravan
caravan="$CARGO_TARGET_DIR/release/caravan"

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
cd "$workdir"
"$caravan" version
"$caravan" job init
"$caravan" job validate example.nomad.hcl
"$caravan" job run -output example.nomad.hcl | head -n 20
echo "..."
