#!/usr/bin/env bash
# Cache-miss A/B of two heimdall builds in one run: `just cold-ab`.
#
#   HEIMDALL_BASELINE_BIN=/path/to/old/heimdall loadtest/scripts/cold-ab.sh [ROUNDS] [DURATION]
#
# Every query of heimdall-loadtest's `cold` workload is a name never asked
# before, so each one is a cache miss forwarded to the synthetic upstream:
# this measures the upstream path (sockets, IDs, the reply check). Each
# round runs both builds once, one after the other, the order swapped every
# round, with a fresh server and the same settings: heimdall on CPU
# SERVER_CPU (`cores: [N]`), the load generator and the upstream on the
# other CPU. Per build and round it prints the answered rate and heimdall's
# CPU per answered query (the scheduler's runtime of its threads before
# and after the measured seconds, `cpu_time` in benches/peers/lib.sh); at
# the end the medians and candidate/baseline.
# WITH_DNSDIST=1 runs dnsdist in every round too (see below). RATE=N
# paces the load at N queries/s (open loop; latency from each query's
# scheduled time) instead of keeping a window outstanding: the miss path
# at the rates resolvers run at, not only at saturation. p50, p99, p99.9
# and the answers lost are printed either way (paced, a stall of the
# server shows in p99.9 and losses; in max mode the window's queue sets
# the latency). CACHE_KEYS="shard_size: 8MiB" adds a `cache:` section
# to both builds' configuration: a shard that fills within the warm-up
# measures the steady churn of a full cache (every miss evicts), where the
# default 64 MiB shard is still filling (its table growing) for the whole
# run.
# CPU_SPLIT=1 also prints each run's CPU per answer as user and kernel
# time (utime and stime of every thread, `cpu_ticks_split` in lib.sh: the
# clock tick's resolution), the split behind "a miss is mostly kernel".
# Everything runs on 127.0.0.1 on high ports; only what it starts is
# stopped, by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
# cpu_time and CPU_UNIT (nanoseconds where the kernel keeps them); sourced
# first, as this script's own cleanup replaces the library's.
# shellcheck source=benches/peers/lib.sh
source benches/peers/lib.sh

ROUNDS=${1:-5}
DURATION=${2:-5s}
: "${HEIMDALL_BASELINE_BIN:?set HEIMDALL_BASELINE_BIN to the heimdall binary of the previous build}"
CANDIDATE_BIN=${HEIMDALL_BIN:-target/release/heimdall}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
SERVER_PORT=${SERVER_PORT:-5391}
UPSTREAM_PORT=${UPSTREAM_PORT:-5390}
ZONE_NAMES=100000000
LOADTEST=target/release/heimdall-loadtest
# WITH_DNSDIST=1 adds dnsdist (benches/peers/conf/dnsdist.conf.in: one
# listener, the packet cache, the same upstream) to every round, on the
# same CPU, as the peer of issue 15's cold goal.
DNSDIST_BIN=
if [ -n "${WITH_DNSDIST:-}" ]; then
    DNSDIST_BIN=$(command -v dnsdist || true)
    [ -n "$DNSDIST_BIN" ] || { echo "WITH_DNSDIST: dnsdist is not installed (apt-get install dnsdist)" >&2; exit 1; }
fi

[ -x "$LOADTEST" ] && [ -x "$CANDIDATE_BIN" ] || cargo build --release --quiet -p heimdall -p heimdall-loadtest
work=$(mktemp -d /tmp/heimdall-cold-ab.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

taskset -c "$LOAD_CPU" "$LOADTEST" upstream --listen "127.0.0.1:$UPSTREAM_PORT" \
    --names "$ZONE_NAMES" >"$work/upstream.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/upstream.log" 2>/dev/null && break; sleep 0.1; done

# The synthetic upstream serves unsigned names under the real root, which
# DNSSEC validation (the default) answers SERVFAIL: the benchmark turns it
# off. A build from before DNSSEC validation has no `dnssec:` section.
dnssec_off() { # binary
    if "$1" default-config 2>/dev/null | grep -q '^dnssec:'; then printf 'dnssec:\n  mode: off\n'; fi
}
cat >"$work/heimdall.yaml" <<YAML
server:
  cores: [$SERVER_CPU]
  listen: ["127.0.0.1:$SERVER_PORT"]
control:
  enabled: false
upstream:
  servers: ["127.0.0.1:$UPSTREAM_PORT"]
log:
  level: warn
YAML
if [ -n "${CACHE_KEYS:-}" ]; then
    printf 'cache:\n' >>"$work/heimdall.yaml"
    printf '%s\n' "$CACHE_KEYS" | sed 's/^/  /' >>"$work/heimdall.yaml"
fi
# CANDIDATE_UPSTREAM_KEYS="cookies: false" adds lines to the candidate's
# `upstream:` section only (keys the baseline may not know), to measure
# what one setting costs.
cp "$work/heimdall.yaml" "$work/candidate.yaml"
dnssec_off "$HEIMDALL_BASELINE_BIN" >>"$work/heimdall.yaml"
dnssec_off "$CANDIDATE_BIN" >>"$work/candidate.yaml"
if [ -n "${CANDIDATE_UPSTREAM_KEYS:-}" ]; then
    printf '%s\n' "$CANDIDATE_UPSTREAM_KEYS" | sed 's/^/  /' >"$work/keys"
    sed -i "/^upstream:/r $work/keys" "$work/candidate.yaml"
fi

# run BUILD_NAME BINARY ROUND: one measured run; appends "name rate us_per_q".
run() {
    local name=$1 binary=$2 round=$3 pid before after answered
    local config="$work/heimdall.yaml"
    [ "$name" = candidate ] && config="$work/candidate.yaml"
    if [ "$name" = dnsdist ]; then
        sed -e "s|@PORT@|$SERVER_PORT|; s|@UPSTREAM_PORT@|$UPSTREAM_PORT|" \
            benches/peers/conf/dnsdist.conf.in >"$work/dnsdist.conf"
        taskset -c "$SERVER_CPU" "$binary" --supervised --disable-syslog -C "$work/dnsdist.conf" \
            >"$work/$name.log" 2>&1 &
    else
        "$binary" --config "$config" >"$work/$name.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 50); do
        "$LOADTEST" run --target "127.0.0.1:$SERVER_PORT" --max-queries 1 --duration 1s \
            --warmup 0s --timeout 200ms --max-loss 0 --quiet >/dev/null 2>&1 && break
        sleep 0.1
    done
    # A warm-up run of its own, so the measured one starts on a busy server.
    "$LOADTEST" run --target "127.0.0.1:$SERVER_PORT" --workload cold --zone-names "$ZONE_NAMES" \
        --seed "$((round * 2 + 1))" --duration 1s --warmup 0s --cpus "$LOAD_CPU" --quiet >/dev/null
    before=$(cpu_time "$pid")
    split_before=$(cpu_ticks_split "$pid")
    "$LOADTEST" run --target "127.0.0.1:$SERVER_PORT" --workload cold --zone-names "$ZONE_NAMES" \
        --seed "$((round * 2 + 2))" --duration "$DURATION" --warmup 0s --cpus "$LOAD_CPU" --quiet \
        ${RATE:+--rate "$RATE"} \
        --json "$work/$name-$round.json" >/dev/null
    after=$(cpu_time "$pid")
    split_after=$(cpu_ticks_split "$pid")
    kill -TERM "$pid"
    # A server that has not exited 10 s after SIGTERM is reported (and
    # killed), so one hang cannot stall the comparison.
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$name round $round: still running 10 s after SIGTERM; killed" >&2
        echo "$name" >>"$work/hangs"
        kill -KILL "$pid"
    fi
    wait "$pid" 2>/dev/null || true
    answered=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["latency_us"]; print(r["counts"]["answered"], r["qps"]["answered"], l["p50"], l["p99"], l["p99_9"], r["counts"]["lost"])' "$work/$name-$round.json")
    read -r count rate p50 p99 p999 lost <<<"$answered"
    local us_per_q
    us_per_q=$(awk -v t="$((after - before))" -v hz="$CPU_UNIT" -v n="$count" \
        'BEGIN { printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }')
    printf '%-10s round %d  answered/s %9.0f  CPU %6s us/q  p50 %6.0f us  p99 %6.0f us  p99.9 %7.0f us  lost %d\n' \
        "$name" "$round" "$rate" "$us_per_q" "$p50" "$p99" "$p999" "$lost"
    echo "$name $rate $us_per_q $p50 $p99 $p999 $lost" >>"$work/results"
    if [ "${CPU_SPLIT:-0}" = 1 ]; then
        read -r user_before sys_before <<<"$split_before"
        read -r user_after sys_after <<<"$split_after"
        awk -v u="$((user_after - user_before))" -v k="$((sys_after - sys_before))" \
            -v hz="$TICKS" -v n="$count" \
            'BEGIN { if (n > 0) printf "           user %.2f us/q  kernel %.2f us/q\n", u / hz * 1e6 / n, k / hz * 1e6 / n }'
    fi
}

echo "cold A/B, $(date -u +%Y-%m-%dT%H:%MZ), $(uptime | sed 's/.*load average/load average/')"
echo "candidate: $CANDIDATE_BIN; baseline: $HEIMDALL_BASELINE_BIN; $ROUNDS rounds of $DURATION"
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then
        run candidate "$CANDIDATE_BIN" "$round"
        run baseline "$HEIMDALL_BASELINE_BIN" "$round"
        if [ -n "$DNSDIST_BIN" ]; then run dnsdist "$DNSDIST_BIN" "$round"; fi
    else
        if [ -n "$DNSDIST_BIN" ]; then run dnsdist "$DNSDIST_BIN" "$round"; fi
        run baseline "$HEIMDALL_BASELINE_BIN" "$round"
        run candidate "$CANDIDATE_BIN" "$round"
    fi
done
python3 - "$work/results" "$work/hangs" <<'PY'
import os, statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
hangs = open(sys.argv[2]).read().split() if os.path.exists(sys.argv[2]) else []
med = {}
names = [name for name in ("candidate", "baseline", "dnsdist") if any(r[0] == name for r in rows)]
for name in names:
    rates = [float(r[1]) for r in rows if r[0] == name]
    cpus = [float(r[2]) for r in rows if r[0] == name]
    p50s = [float(r[3]) for r in rows if r[0] == name]
    p99s = [float(r[4]) for r in rows if r[0] == name]
    p999s = [float(r[5]) for r in rows if r[0] == name]
    losts = [int(r[6]) for r in rows if r[0] == name]
    med[name] = (statistics.median(rates), statistics.median(cpus))
    print(f"{name:<10} median answered/s {med[name][0]:9.0f}  CPU {med[name][1]:.2f} us/q  "
          f"p50 {statistics.median(p50s):.0f} us  p99 {statistics.median(p99s):.0f} us  "
          f"p99.9 {statistics.median(p999s):.0f} us  lost {sum(losts)} in all")
c, b = med["candidate"], med["baseline"]
print(f"candidate/baseline: rate {c[0] / b[0]:.3f}, CPU per query {c[1] / b[1]:.3f}")
if "dnsdist" in med:
    d = med["dnsdist"]
    print(f"candidate/dnsdist: rate {c[0] / d[0]:.3f}, CPU per query {c[1] / d[1]:.3f}")
for name in ("candidate", "baseline"):
    if hangs.count(name):
        print(f"{name}: {hangs.count(name)} runs did not exit within 10 s of SIGTERM")
PY
