#!/usr/bin/env bash
# heimdall-loadtest against dnsperf, side by side, against the same batched
# reflector (`heimdall-loadtest upstream --echo`) on 127.0.0.1.
#
#   loadtest/scripts/compare-dnsperf.sh [ROUNDS] [SECONDS]
#
# The reflector runs pinned to CPU $REFLECTOR_CPU (default 1); each client
# in turn runs pinned to CPU $CLIENT_CPU (default 0) for SECONDS, with one
# query file (dnsperf format) driving both; rounds alternate the two tools.
# Prints each round's completed queries per second and the medians. With
# QUIET_IDLE=90, each run waits (at most QUIET_WAIT=300 s) for a second in
# which every CPU was at least 90% idle. Needs dnsperf and a release build
# (`cargo build --release -p heimdall-loadtest`).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-5}
REFLECTOR_CPU=${REFLECTOR_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
PORT=${PORT:-5399}
BIN=${BIN:-target/release/heimdall-loadtest}
# dnsperf: clients (sockets), outstanding queries, threads. The defaults
# are the best of a sweep on the 2-core VM of docs/BENCHMARKS.md (-T 1 is
# dnsperf's default; DNSPERF_THREADS=4 did better there).
DNSPERF_CLIENTS=${DNSPERF_CLIENTS:-8}
DNSPERF_OUTSTANDING=${DNSPERF_OUTSTANDING:-1000}
DNSPERF_THREADS=${DNSPERF_THREADS:-1}
# heimdall-loadtest: sockets, window per socket, batch (one socket: the
# reflector has one, so there is nothing for SO_REUSEPORT to spread).
LT_SOCKETS=${LT_SOCKETS:-1}
LT_WINDOW=${LT_WINDOW:-256}
LT_BATCH=${LT_BATCH:-64}
# Extra `heimdall-loadtest run` arguments, e.g. LT_EXTRA=--no-gso.
read -ra lt_extra <<<"${LT_EXTRA:-}"

work=$(mktemp -d)
reflector=""
cleanup() {
    if [[ -n "$reflector" ]]; then
        kill "$reflector" 2>/dev/null || true
        wait "$reflector" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

"$BIN" queries --workload hot --names 1000 --count 100000 --out "$work/queries.txt"
taskset -c "$REFLECTOR_CPU" "$BIN" upstream --listen "127.0.0.1:$PORT" --echo >"$work/reflector.log" &
reflector=$!
for _ in $(seq 50); do
    grep -q "listening" "$work/reflector.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "listening" "$work/reflector.log" || { echo "the reflector did not start" >&2; exit 1; }

run_dnsperf() {
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$work/queries.txt" \
        -l "$SECONDS_PER_RUN" -c "$DNSPERF_CLIENTS" -q "$DNSPERF_OUTSTANDING" \
        -T "$DNSPERF_THREADS" 2>&1 |
        awk '/Queries per second/ { printf "%.0f\n", $4 }
             /Queries lost/ { lost = $3 }
             /Response codes/ { codes = $0 }
             END {
                 if (lost != "0") print "dnsperf lost " lost > "/dev/stderr"
                 if (codes !~ /NOERROR [0-9]+ \(100.00%\)$/) print "dnsperf:" codes > "/dev/stderr"
             }'
}

run_loadtest() {
    taskset -c "$CLIENT_CPU" "$BIN" run --target "127.0.0.1:$PORT" --queries "$work/queries.txt" \
        --edns off --duration "${SECONDS_PER_RUN}s" --warmup 0s --sockets "$LT_SOCKETS" \
        --window "$LT_WINDOW" --batch "$LT_BATCH" ${lt_extra[@]+"${lt_extra[@]}"} --quiet --json "$work/lt.json" >/dev/null
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); c=r["counts"];
bad=c["lost"]+c["wrong_id"]+c["wrong_question"]+c["malformed"]
print("%.0f" % r["qps"]["answered"]) if bad == 0 else print("%.0f (lost/wrong %d)" % (r["qps"]["answered"], bad))' "$work/lt.json"
}

# Wait (at most QUIET_WAIT seconds) until every CPU was at least QUIET_IDLE%
# idle over one second, so a round is not measured while other work runs.
QUIET_IDLE=${QUIET_IDLE:-0}
QUIET_WAIT=${QUIET_WAIT:-300}
wait_quiet() {
    (( QUIET_IDLE > 0 )) || return 0
    local waited=0
    while (( waited < QUIET_WAIT )); do
        local idle
        idle=$(python3 - <<'PY'
import time
def snap():
    rows = [l.split() for l in open("/proc/stat") if l.startswith("cpu") and l[3] != " "]
    return {r[0]: (int(r[4]) + int(r[5]), sum(int(x) for x in r[1:9])) for r in rows}
a = snap(); time.sleep(1); b = snap()
print(min(100 * (b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]) for c in a))
PY
)
        if awk -v idle="$idle" -v want="$QUIET_IDLE" 'BEGIN { exit !(idle >= want) }'; then
            return 0
        fi
        waited=$((waited + 1))
    done
    echo "(not quiet after ${QUIET_WAIT}s; measuring anyway)" >&2
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "dnsperf -c $DNSPERF_CLIENTS -q $DNSPERF_OUTSTANDING -T $DNSPERF_THREADS;" \
    "heimdall-loadtest --sockets $LT_SOCKETS --window $LT_WINDOW --batch $LT_BATCH ${LT_EXTRA:-};" \
    "${SECONDS_PER_RUN}s per run"
echo "load: $(uptime | sed 's/.*load average/load average/')"
: >"$work/dnsperf"; : >"$work/loadtest"
for round in $(seq "$ROUNDS"); do
    wait_quiet
    d=$(run_dnsperf); echo "$d" >>"$work/dnsperf"
    wait_quiet
    l=$(run_loadtest); echo "${l%% *}" >>"$work/loadtest"
    printf 'round %d: dnsperf %s q/s, heimdall-loadtest %s q/s\n' "$round" "$d" "$l"
done
d=$(median <"$work/dnsperf"); l=$(median <"$work/loadtest")
printf 'median: dnsperf %s q/s, heimdall-loadtest %s q/s, ratio %.2f\n' "$d" "$l" \
    "$(echo "$l $d" | awk '{ print $1 / $2 }')"
echo "load: $(uptime | sed 's/.*load average/load average/')"
