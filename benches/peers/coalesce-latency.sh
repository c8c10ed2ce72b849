#!/usr/bin/env bash
# What `server.udp_coalesce` costs and saves: open-loop cache-hit latency
# and server CPU per query at fixed offered rates, for several pause
# lengths, side by side in one run.
#
# Usage: benches/peers/coalesce-latency.sh ROUNDS SECONDS "PAUSES" "RATES"
# Example: benches/peers/coalesce-latency.sh 2 5 "0s 200us" "1000 10000 50000"
#
# heimdall (`cores: [0]`, pinned to CPU 0) forwards to the synthetic
# upstream; heimdall-loadtest (CPU 1) sends the hot workload (1,000 cached
# names) from 16 sockets at each rate, on a fixed schedule, so latency is
# measured from each query's scheduled send time. Per run: answered
# queries, p50 and p99 in microseconds, and the server's CPU time per
# query (utime+stime from /proc/PID/stat). HEIMDALL_BIN picks the binary.
# Everything is on 127.0.0.1, high ports; only processes this script
# started are stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 4 ] || { sed -n '2,15p' "$0"; exit 2; }
ROUNDS=$1 SECS=$2 PAUSES=$3 RATES=$4
HEIMDALL=${HEIMDALL_BIN:-target/release/heimdall}
LOADTEST=${CARGO_TARGET_DIR:-target}/release/heimdall-loadtest
[ -x "$HEIMDALL" ] && [ -x "$LOADTEST" ] || cargo build --release -p heimdall -p heimdall-loadtest
WORK=$(mktemp -d /tmp/heimdall-coalesce.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

taskset -c 1 "$LOADTEST" upstream --listen 127.0.0.1:5392 --names 1000 --ttl 86400 \
    >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

printf "%-8s %8s %10s %10s %10s %12s\n" pause rate answered "p50 us" "p99 us" "cpu_us/query"
for round in $(seq 1 "$ROUNDS"); do
    for rate in $RATES; do
        for pause in $PAUSES; do
            cat >"$WORK/heimdall.yaml" <<YAML
server: {cores: [0], listen: ["127.0.0.1:5393"], udp_coalesce: $pause}
control: {enabled: false}
upstream: {servers: ["127.0.0.1:5392"]}
log: {level: warn}
dnssec: {mode: off}
YAML
            taskset -c 0 "$HEIMDALL" --config "$WORK/heimdall.yaml" >"$WORK/heimdall.log" 2>&1 &
            pid=$!
            sleep 0.7
            # Fill the cache first.
            taskset -c 1 "$LOADTEST" run --target 127.0.0.1:5393 --workload hot --names 1000 \
                --duration 1s --warmup 0s --cpus 1 --sockets 4 --rate 20000 >/dev/null 2>&1
            before=$(cpu_ticks "$pid")
            rm -f "$WORK/run.json"   # a failed run must not report the previous one
            taskset -c 1 "$LOADTEST" run --target 127.0.0.1:5393 --workload hot --names 1000 \
                --duration "${SECS}s" --warmup 0s --cpus 1 --sockets 16 --rate "$rate" \
                --json "$WORK/run.json" >/dev/null 2>&1 || true
            after=$(cpu_ticks "$pid")
            kill "$pid"; wait "$pid" 2>/dev/null || true
            if [ ! -s "$WORK/run.json" ]; then
                printf "%-8s %8s   no report (the load generator failed)\n" "$pause" "$rate"
                continue
            fi
            python3 - "$WORK/run.json" "$pause" "$rate" "$((after - before))" "$TICKS" "$SECS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ticks, hz, secs = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
answered = r['counts']['answered']
cpu = ticks / hz * 1e6 / max(answered, 1)
lat = r['latency_us']
print(f"{sys.argv[2]:<8} {sys.argv[3]:>8} {answered:>10} {lat['p50']:>10.0f} {lat['p99']:>10.0f} {cpu:>12.2f}")
PY
        done
    done
done
