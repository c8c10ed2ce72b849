#!/usr/bin/env bash
# `just capacity`: how many distinct answers the cores hold together, with
# name steering against flow steering plus hints (issue 16's benchmark).
#
#   loadtest/scripts/capacity.sh [NAMES [SHARD]]     defaults: 2000000 16MiB
#
# For each steering mode (and HEIMDALL_BASELINE_BIN as a third run, if
# set): heimdall on CPUs 0 and 1 with `cache.shard_size: SHARD`, the
# synthetic upstream on CPU 1. Each of NAMES distinct names (host-0 ..
# host-NAMES-1) is asked once (heimdall-loadtest's cold workload, paced at
# RATE q/s, default 50000, from many source ports), while a second client
# asks a hot set of 1,000 names at 2,000 q/s throughout. Then a probe asks
# PROBE (5000) names drawn at random from the NAMES, and the share that
# were cache hits (from /stats) times NAMES is the count of distinct names
# the server still answers from cache. Also reported: cache entries and
# bytes summed over the cores, hints sent, the hot set's p50/p99 latency
# during the flood, and the server's RSS against the configured cache total.
# Everything is on 127.0.0.1 on high ports; each process this script
# starts is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
NAMES=${1:-2000000}
SHARD=${2:-16MiB}
RATE=${RATE:-50000}
PROBE=${PROBE:-5000}
BASE=${BASE_PORT:-5620}
HEIMDALL=${HEIMDALL_BIN:-target/release/heimdall}
LOADTEST=target/release/heimdall-loadtest
[ -x "$LOADTEST" ] && [ -x "$HEIMDALL" ] || cargo build --release --quiet -p heimdall -p heimdall-loadtest
work=$(mktemp -d)
pids=()
# Waits for what it stopped, so a run right after this one finds its ports
# free.
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

taskset -c 1 "$LOADTEST" upstream --listen "127.0.0.1:$BASE" --names "$NAMES" --ttl 86400 \
    --negative-ttl 3600 --cpus 1 >"$work/upstream.log" 2>&1 &
upstream=$!
pids+=("$upstream")
# Until it listens: run right after another capacity run, the port may
# still be held, and a run against no upstream measures nothing.
for _ in $(seq 100); do
    grep -q listening "$work/upstream.log" 2>/dev/null && break
    kill -0 "$upstream" 2>/dev/null || { echo "capacity: the upstream did not start:" >&2; cat "$work/upstream.log" >&2; exit 1; }
    sleep 0.1
done
grep -q listening "$work/upstream.log" || { echo "capacity: the upstream is not listening after 10 s" >&2; exit 1; }
python3 - "$NAMES" "$PROBE" >"$work/probe.txt" <<'PY'
import random, sys
names, probe = int(sys.argv[1]), int(sys.argv[2])
random.seed(16)
for i in random.sample(range(names), probe):
    print(f"host-{i}.zone.test. A")
PY
for i in $(seq 0 999); do echo "host-$i.zone.test. A"; done >"$work/hot.txt"

TOKEN=capacity-script-token-0123
stats() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((BASE + 2))/stats"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# The synthetic upstream serves unsigned names under the real root, which
# DNSSEC validation (the default) answers SERVFAIL: the benchmark turns it
# off. A build from before DNSSEC validation has no `dnssec:` section.
dnssec_off() { # binary
    if "$1" default-config 2>/dev/null | grep -q '^dnssec:'; then printf 'dnssec:\n  mode: off\n'; fi
}

measure() { # label binary steering
    local label=$1 binary=$2 steering=$3
    cat >"$work/$label.yaml" <<YAML
server:
  cores: [0, 1]
  listen: ["127.0.0.1:$((BASE + 1))"]
$( [ "$steering" = "-" ] || echo "  steering: $steering" )
cache:
  shard_size: $SHARD
upstream:
  servers: ["127.0.0.1:$BASE"]
control:
  listen: "127.0.0.1:$((BASE + 2))"
  token: $TOKEN
  socket: ""
log:
  level: warn
$(dnssec_off "$binary")
YAML
    "$binary" --config "$work/$label.yaml" >"$work/$label.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 50); do stats >/dev/null 2>&1 && break; sleep 0.1; done
    # The hot set: warmed, then asked throughout the flood.
    "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --queries "$work/hot.txt" --edns off \
        --rate 20000 --duration 1s --warmup 0s --max-queries 2000 --quiet >/dev/null 2>&1 || true
    local flood_secs=$(( NAMES / RATE + 2 ))
    "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --queries "$work/hot.txt" --edns off \
        --rate 2000 --duration "${flood_secs}s" --warmup 0s --quiet --json "$work/$label-hot.json" \
        >/dev/null 2>&1 &
    local hot=$!
    local before_hot
    before_hot=$(stats)
    "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --workload cold --zone-names "$NAMES" \
        --max-queries "$NAMES" --rate "$RATE" --duration "$((flood_secs + 30))s" --warmup 0s \
        --sockets 8 --quiet >/dev/null 2>&1 || true
    wait "$hot" || true
    local before after
    before=$(stats)
    "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --queries "$work/probe.txt" --edns off \
        --rate 10000 --duration 10s --warmup 0s --max-queries "$PROBE" --quiet >/dev/null 2>&1 || true
    after=$(stats)
    local rss anon
    rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$pid/status")
    # RssAnon leaves out the mapped executable and libraries (about 6.7
    # MiB here, the same whatever the cache size): the process's own memory.
    anon=$(awk '/RssAnon/ {print $2 * 1024}' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$label" "$NAMES" "$SHARD" "$rss" "$work/$label-hot.json" "$anon" <<PY
import json, sys
label, names, shard, rss, hot = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
anon = int(sys.argv[6])
b, a = json.loads('''$before'''), json.loads('''$after''')
hits = a["totals"]["cache"]["hits"] - b["totals"]["cache"]["hits"]
misses = a["totals"]["cache"]["misses"] - b["totals"]["cache"]["misses"]
share = hits / max(hits + misses, 1)
units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
shard_bytes = next(int(shard[:-3]) * m for u, m in units.items() if shard.endswith(u))
entries = b["totals"]["cache"]["entries"]
cbytes = b["totals"]["cache"]["bytes"]
hints = b["totals"]["hints"]["sent"]
held = share * names
lat = json.load(open(hot))["latency_us"]
print(f"{label:<10} probe hits {share:6.1%}  distinct held ~{held:9.0f} ({held * 1.0 / (entries / 2 if entries else 1):.2f}x one core's entries)"
      f"  entries {entries} ({cbytes / 2**20:.1f} MiB)  hints sent {hints}"
      f"  RSS {rss / 2**20:.1f} MiB ({rss / (2 * shard_bytes):.2f}x the 2 shards;"
      f" anonymous {anon / 2**20:.1f} MiB, {anon / (2 * shard_bytes):.2f}x)"
      f"  hot set p50 {lat['p50']:.0f} us p99 {lat['p99']:.0f} us")
PY
}

echo "capacity: $NAMES names, 2 cores x $SHARD, flood at $RATE q/s; $(date -u +%Y-%m-%dT%H:%MZ)"
measure name "$HEIMDALL" name
measure flow "$HEIMDALL" flow
if [ -n "${HEIMDALL_BASELINE_BIN:-}" ]; then measure baseline "$HEIMDALL_BASELINE_BIN" -; fi
