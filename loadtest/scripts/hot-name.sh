#!/usr/bin/env bash
# `just hot-name`: one very popular name on two cores under name steering,
# with hot-name spreading off (`server.steering_spread: 0`: the name stays
# on its owner core) and on (the default threshold: the steering program
# sends it to a random core). Issue 16's "very hot names" check.
#
#   loadtest/scripts/hot-name.sh [ROUNDS [DURATION]]     defaults: 3 5s
#
# heimdall on CPUs 0 and 1 (`cores: [0, 1]`), the synthetic upstream and
# the load generator unpinned. On a host with only two CPUs the generator
# needs one of them: with spreading off it has the idle core's CPU to
# itself, with spreading on it competes with both cores, so there the rate
# measures the generator as much as heimdall; the core shares and CPU show
# the balance. Run it where the generator has CPUs of its own. Each round runs both
# settings, the order swapped every round, with a fresh server: the name is
# warmed, then heimdall-loadtest asks only it, in max mode, from 8 sockets.
# Per setting and round it prints the answered rate and each core's share
# of the queries (from /stats), and each core's CPU seconds (from
# /proc/PID/task); at the end the median rates and their ratio.
# Everything is on 127.0.0.1 on high ports; each process this script
# starts is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DURATION=${2:-5s}
BASE=${BASE_PORT:-5640}
HEIMDALL=${HEIMDALL_BIN:-target/release/heimdall}
LOADTEST=target/release/heimdall-loadtest
[ -x "$LOADTEST" ] && [ -x "$HEIMDALL" ] || cargo build --release --quiet -p heimdall -p heimdall-loadtest
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

"$LOADTEST" upstream --listen "127.0.0.1:$BASE" --names 1000 --ttl 86400 >"$work/upstream.log" 2>&1 &
pids+=($!)
sleep 0.5

TOKEN=hot-name-script-token-0123
stats() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((BASE + 2))/stats"; }
# utime+stime of each core's threads (named heimdall-core0-, -core1-), in
# clock ticks, in core order.
thread_ticks() {
    for task in /proc/"$1"/task/*; do
        local comm
        comm=$(cat "$task/comm" 2>/dev/null || true)
        case $comm in heimdall-core*) echo "${comm%%-}" "$(awk '{print $14 + $15}' "$task/stat")" ;; esac
    done | awk '{t[$1] += $2} END {for (c in t) print c, t[c]}' | sort | awk '{print $2}' | paste -sd' '
}

run_one() { # label spread
    local label=$1 spread=$2
    cat >"$work/$label.yaml" <<YAML
server:
  cores: [0, 1]
  listen: ["127.0.0.1:$((BASE + 1))"]
  io_memory: 1MiB
  steering: name
  steering_spread: $spread
upstream:
  servers: ["127.0.0.1:$BASE"]
dnssec:
  mode: "off"
control:
  listen: "127.0.0.1:$((BASE + 2))"
  token: $TOKEN
  socket: ""
log:
  level: warn
YAML
    "$HEIMDALL" --config "$work/$label.yaml" >"$work/$label.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 50); do stats >/dev/null 2>&1 && break; sleep 0.1; done
    "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --workload hot --names 1 --edns off \
        --duration 2s --warmup 0s --sockets 8 --quiet >/dev/null 2>&1 || true
    local before ticks_before
    before=$(stats)
    ticks_before=$(thread_ticks "$pid")
    "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --workload hot --names 1 --edns off \
        --duration "$DURATION" --warmup 0s --sockets 8 --quiet --json "$work/$label.json" \
        >/dev/null 2>&1 || true
    local after ticks_after
    after=$(stats)
    ticks_after=$(thread_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$label" "$work/$label.json" "$ticks_before" "$ticks_after" <<PY >>"$work/results"
import json, sys
label, report, tb, ta = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
b, a = json.loads('''$before'''), json.loads('''$after''')
served = [ca["queries"]["udp"] - cb["queries"]["udp"] for cb, ca in zip(b["cores"], a["cores"])]
total = max(sum(served), 1)
rate = json.load(open(report))["qps"]["answered"]
ticks = [int(y) - int(x) for x, y in zip(tb.split(), ta.split())] if tb and ta else []
print(f"{label} {rate:.0f} " + " ".join(f"{s / total:.2f}" for s in served) + " " + " ".join(str(t) for t in ticks))
PY
    tail -1 "$work/results" | awk '{printf "  %-7s %9.0f answered/s   core shares %s %s   CPU ticks %s %s\n", $1, $2, $3, $4, $5, $6}'
}

echo "hot-name: one name, 2 cores, $ROUNDS rounds of $DURATION; $(date -u +%Y-%m-%dT%H:%MZ)"
for round in $(seq "$ROUNDS"); do
    echo "round $round"
    if [ $((round % 2)) = 1 ]; then run_one off 0; run_one spread 10000
    else run_one spread 10000; run_one off 0; fi
done
python3 - "$work/results" <<'PY'
import statistics, sys
rates = {}
for line in open(sys.argv[1]):
    label, rate = line.split()[:2]
    rates.setdefault(label, []).append(float(rate))
off, spread = statistics.median(rates["off"]), statistics.median(rates["spread"])
print(f"median answered/s: spreading off {off:.0f}, on {spread:.0f}: {spread / off:.2f}x")
PY
