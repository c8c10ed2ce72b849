#!/usr/bin/env bash
# Latency of heimdall builds on a mixed load with real cache misses, side by
# side: for A/B tests of the receive loop (the 1 ms preempt timer in
# crates/server/src/lib.rs was chosen with it).
#
# Usage: benches/peers/mixed-latency.sh ROUNDS SECONDS BINARY [BINARY...]
# Example: benches/peers/mixed-latency.sh 2 6 /tmp/heimdall-old target/release/heimdall
#
# Each round runs every binary once, in order: heimdall with `cores: [0]`
# pinned to CPU 0, the synthetic upstream (100M names, so misses never
# repeat) and heimdall-loadtest in max mode (4 sockets x 64 outstanding,
# hot=80,cold=10,nxdomain=10, a new seed per run) on CPU 1. Prints answered
# q/s, p50 and p99 per run. Everything is on 127.0.0.1, high ports; only
# processes this script started are stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 3 ] || { sed -n '2,12p' "$0"; exit 2; }
ROUNDS=$1 SECS=$2; shift 2
LOADTEST=${CARGO_TARGET_DIR:-target}/release/heimdall-loadtest
[ -x "$LOADTEST" ] || cargo build --release -p heimdall-loadtest
WORK=$(mktemp -d /tmp/heimdall-mixed.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

taskset -c 1 "$LOADTEST" upstream --listen 127.0.0.1:5390 --names 100000000 --ttl 86400 \
    --negative-ttl 3600 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
cat >"$WORK/heimdall.yaml" <<YAML
server: {cores: [0], listen: ["127.0.0.1:5391"]}
control: {enabled: false}
upstream: {servers: ["127.0.0.1:5390"]}
log: {level: warn}
YAML
# The synthetic upstream serves unsigned names under the real root, which
# DNSSEC validation (the default) answers SERVFAIL: the benchmark turns it
# off. A build from before DNSSEC validation has no `dnssec:` section.
dnssec_off() { # binary
    if "$1" default-config 2>/dev/null | grep -q '^dnssec:'; then printf 'dnssec:\n  mode: off\n'; fi
}

printf "%-40s %10s %10s %10s\n" binary "q/s" "p50 ms" "p99 ms"
for round in $(seq 1 "$ROUNDS"); do
    for bin in "$@"; do
        { cat "$WORK/heimdall.yaml"; dnssec_off "$bin"; } >"$WORK/run.yaml"
        taskset -c 0 "$bin" --config "$WORK/run.yaml" >"$WORK/heimdall.log" 2>&1 &
        pid=$!
        sleep 1
        taskset -c 1 "$LOADTEST" run --target 127.0.0.1:5391 --workload mixed \
            --mix hot=80,cold=10,nxdomain=10 --names 1000 --zone-names 100000000 \
            --duration "${SECS}s" --warmup 0s --cpus 1 --sockets 4 --window 64 \
            --seed "$((round * 1000 + RANDOM))" --json "$WORK/run.json" >/dev/null 2>&1
        kill "$pid"; wait "$pid" 2>/dev/null || true
        python3 - "$WORK/run.json" "$bin" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<40} {r['qps']['answered']:>10.0f} {r['latency_us']['p50'] / 1000:>10.2f} {r['latency_us']['p99'] / 1000:>10.2f}")
PY
    done
done
