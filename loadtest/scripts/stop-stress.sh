#!/usr/bin/env bash
# Does heimdall stop promptly after load, every time? `just stop-stress`.
#
#   loadtest/scripts/stop-stress.sh [ROUNDS]
#
# Each round starts the release heimdall (HEIMDALL_BIN overrides it) with
# two cores, waits until it answers, sends one second of the cold
# (all-miss) workload, then SIGTERM, and times the exit. A server still
# running 10 s later is counted as a hang and killed. This is how the
# glommio executor that could park with runnable tasks was caught (about
# 4 hangs in 90 stops before vendor/glommio's patch, none after). Runs on
# 127.0.0.1 high ports against the synthetic upstream; stops only what it
# starts, by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-30}
HEIMDALL=${HEIMDALL_BIN:-target/release/heimdall}
LOADTEST=target/release/heimdall-loadtest
PORT=${PORT:-5491}
UPSTREAM_PORT=${UPSTREAM_PORT:-5490}
[ -x "$HEIMDALL" ] && [ -x "$LOADTEST" ] || cargo build --release --quiet -p heimdall -p heimdall-loadtest

work=$(mktemp -d /tmp/heimdall-stop.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$LOADTEST" upstream --listen "127.0.0.1:$UPSTREAM_PORT" --names 100000000 >"$work/upstream.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$work/upstream.log" 2>/dev/null && break; sleep 0.1; done
cat >"$work/heimdall.yaml" <<YAML
server:
  cores: [0, 1]
  listen: ["127.0.0.1:$PORT"]
control:
  enabled: false
upstream:
  servers: ["127.0.0.1:$UPSTREAM_PORT"]
log:
  level: warn
# The synthetic upstream is unsigned: validation would answer SERVFAIL.
dnssec:
  mode: off
YAML

hangs=0 slowest=0
for round in $(seq 1 "$ROUNDS"); do
    "$HEIMDALL" --config "$work/heimdall.yaml" >"$work/heimdall.log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do
        "$LOADTEST" run --target "127.0.0.1:$PORT" --max-queries 1 --duration 1s --warmup 0s \
            --timeout 200ms --max-loss 0 --quiet >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$LOADTEST" run --target "127.0.0.1:$PORT" --workload cold --zone-names 100000000 \
        --seed "$round" --duration 1s --warmup 0s --quiet >/dev/null 2>&1 || true
    start=$(date +%s%N)
    if ! kill -TERM "$pid" 2>/dev/null; then
        echo "round $round: heimdall was gone before SIGTERM:" >&2
        tail -3 "$work/heimdall.log" >&2
        exit 1
    fi
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "round $round: still running 10 s after SIGTERM; killed"
        hangs=$((hangs + 1))
        kill -KILL "$pid"
    fi
    wait "$pid" 2>/dev/null || true
    ms=$((($(date +%s%N) - start) / 1000000))
    ((ms > slowest)) && slowest=$ms
done
echo "$ROUNDS stops after load: $hangs hangs; slowest exit $slowest ms"
