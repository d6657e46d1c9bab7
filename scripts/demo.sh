#!/usr/bin/env bash
# Brings caravan up on a fresh Debian 12 machine and runs its example jobs: installs what is
# missing, builds caravan (release), starts a dev agent (server and client in one process, on
# 127.0.0.1:4646), and runs the example jobs of wasm-examples/jobs: a batch Wasm program, a Wasm
# service and a web server on raw_exec. It then shows their status and logs, and says how to look
# further. The agent keeps running until you press Ctrl-C (or, with DEMO_EXIT=1, stops at the end).
set -euo pipefail

cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/caravan-target}"

scripts/setup.sh
echo "==> building caravan (release)"
cargo build --locked --release --bin caravan
caravan="$CARGO_TARGET_DIR/release/caravan"
wasm_dir="$CARGO_TARGET_DIR/wasm-guests/wasm32-wasip1/release"
export CARAVAN_ADDR="http://127.0.0.1:4646"

if curl -fsS "$CARAVAN_ADDR/v1/agent/self" >/dev/null 2>&1; then
  echo "error: something already answers on $CARAVAN_ADDR; stop it first" >&2
  exit 1
fi

log="$(mktemp -t caravan-dev-XXXX.log)"
"$caravan" agent -dev >"$log" 2>&1 &
agent=$!
trap 'kill "$agent" 2>/dev/null; wait "$agent" 2>/dev/null || true' EXIT
echo "==> dev agent started (pid $agent, log $log); waiting for its node"
for _ in $(seq 1 100); do
  if "$caravan" node status 2>/dev/null | grep -q ready; then break; fi
  sleep 0.2
done
"$caravan" node status

run() { echo; echo "\$ caravan $*"; "$caravan" "$@"; }
run job run -var "wasm_dir=$wasm_dir" "$root/wasm-examples/jobs/hello.nomad.hcl"
run job run -var "wasm_dir=$wasm_dir" "$root/wasm-examples/jobs/counter.nomad.hcl"
run job run "$root/wasm-examples/jobs/web.nomad.hcl"
sleep 2
run job status
run job status hello-wasm
hello_alloc="$("$caravan" job allocs -verbose hello-wasm | awk 'NR==2 {print $1}')"
run alloc logs "$hello_alloc"
web_alloc="$("$caravan" job allocs -verbose web | awk 'NR==2 {print $1}')"
run alloc status "$web_alloc"

cat <<MSG

==> caravan is running the example jobs. Look around:
      caravan job status counter-wasm
      caravan alloc logs -f <alloc-id>        (counter prints a line a second)
      caravan alloc status $web_alloc          (the web server's address)
      curl -s http://127.0.0.1:4646/v1/jobs   (Nomad's HTTP API)
    The agent's log is $log. Press Ctrl-C to stop the agent.
MSG
if [[ "${DEMO_EXIT:-0}" == 1 ]]; then exit 0; fi
wait "$agent"
