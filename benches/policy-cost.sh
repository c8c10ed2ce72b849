#!/usr/bin/env bash
# Cache-hit throughput with a 1,000,000-name blocklist and a 100-entry ACL
# loaded, against the same server with neither, side by side: both servers
# on CPU 1 (`cores: [1]`), heimdall-loadtest on CPU 0 with the hot workload,
# rounds alternating. Prints answered queries/s per run and the ratio.
#
# Usage: benches/policy-cost.sh [ROUNDS] [DURATION]     (defaults 3, 5s)
# Everything runs on 127.0.0.1; only processes started here are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
DURATION=${2:-5s}
WORK=$(mktemp -d /tmp/heimdall-policy-cost.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release -q -p heimdall -p heimdall-loadtest
BIN=target/release
awk 'BEGIN { for (i = 0; i < 1000000; i++) printf "blk-%d.ads%d.example.net\n", i, i % 1000 }' > "$WORK/block1m.txt"
common() { # port
    printf 'server:\n  cores: [1]\n  listen: [127.0.0.1:%s]\ncache:\n  shard_size: 64MiB\nupstream:\n  servers: [127.0.0.1:5300]\nlog:\n  level: warn\ndnssec:\n  mode: off\n' "$1"
}
# (dnssec off: the synthetic upstream is unsigned, and validation would
# answer SERVFAIL.)
common 5360 > "$WORK/base.yaml"
{
    common 5361
    printf 'blocklist:\n  files: [{path: %s/block1m.txt, format: domains}]\nacl:\n  allow:\n' "$WORK"
    for i in $(seq 0 99); do printf '    - 198.18.%d.0/24\n' "$i"; done
} > "$WORK/policy.yaml"

$BIN/heimdall-loadtest upstream --listen 127.0.0.1:5300 --cpus 0 > "$WORK/up.log" 2>&1 &
PIDS+=($!)
$BIN/heimdall --config "$WORK/base.yaml" > "$WORK/base.log" 2>&1 &
PIDS+=($!)
$BIN/heimdall --config "$WORK/policy.yaml" > "$WORK/policy.log" 2>&1 &
PIDS+=($!)
sleep 4   # the 1M-name list loads in about half a second

run() { # port -> answered q/s
    $BIN/heimdall-loadtest run --target "127.0.0.1:$1" --workload hot --cpus 0 \
        --duration "$DURATION" --warmup 1s --seed 7 --quiet --json "$WORK/r.json" >/dev/null 2>&1 || true
    python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["qps"]["answered"]))' "$WORK/r.json"
}
printf '%-6s %12s %12s %8s\n' round base policy ratio
for round in $(seq 1 "$ROUNDS"); do
    base=$(run 5360); policy=$(run 5361)
    awk -v r="$round" -v b="$base" -v p="$policy" 'BEGIN { printf "%-6s %12d %12d %8.3f\n", r, b, p, p / b }'
done
