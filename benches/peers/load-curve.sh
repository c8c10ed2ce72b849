#!/usr/bin/env bash
# `just load-curve`: cache-hit cost and latency against the offered load, on
# one core, for heimdall, Unbound, dnsdist and the batched reflector (the
# kernel's floor). For each server and offered rate it reports the answered
# q/s, the server's CPU µs per answered query (the scheduler's runtime of
# its threads, /proc/PID/task/*/schedstat, before and after the run), p50,
# p99 and p99.9 latency and the loss, as medians over interleaved rounds.
# See benches/peers/README.md.
#
#   benches/peers/load-curve.sh [--write] [ROUNDS [SECONDS [RATE...]]]
#       defaults: 2 rounds, 5 s per run, rates 1000 5000 20000 50000 100000 max
#
# A RATE is queries/s offered on a fixed schedule (heimdall-loadtest run
# --rate, open loop; latency from each query's scheduled time); `max` is
# saturation (max mode: a fixed window outstanding, no --rate). Each server
# is a fresh process for every run, pinned to CPU 0 with one thread/core,
# warmed with every name twice first, so each measured query is a cache hit
# (the reflector has no cache: it returns each query with QR set). The load
# generator and the synthetic upstream (1,000 names, TTL 1 day) share CPU 1.
# For each round, for each rate, every server runs once; the server order is
# rotated by one each round. The Markdown table goes to stdout; --write also
# rewrites the "## Load curve" section of docs/BENCHMARKS.md (between
# `<!-- load-curve:begin -->` and `<!-- load-curve:end -->`) and the chart
# docs/load-curve.svg. Without --write, the chart is left in $OUT only.
#
# Environment:
#   HEIMDALL_BIN          heimdall binary to measure      ($CARGO_TARGET_DIR or target)/release/heimdall
#   HEIMDALL_BASELINE_BIN another heimdall build, added to every round as "baseline" (A/B)
#   HEIMDALL_SERVER_YAML / BASELINE_SERVER_YAML
#                         extra `server:` keys for heimdall / the baseline, one per line
#                         (`udp_coalesce: 0s`): the same build with two settings side by side
#   SERVERS               servers, in this order   (heimdall unbound dnsdist reflector); also
#                         wake-glommio and wake-epoll: the wake-up benchmark, a reflector
#                         that waits as heimdall does and one that waits as Unbound does
#                         (crates/server/examples/wake_reflector.rs)
#   ROUNDS / SECS / RATES used when not given as arguments   (2 / 5 / the rates above)
#   INSTALL               1: apt-get install a missing unbound/dnsdist (root); 0: skip it (1)
#   BUILD                 0: reuse the release binaries if they exist (1: cargo build, a no-op
#                         when up to date)
#   OUT                   results, reports and logs              (target/load-curve)
#   BASE_PORT             first 127.0.0.1 port: the upstream; servers on the next seven (5420)
#   SERVER_CPU / CLIENT_CPU                                            (0 / 1)
#   LT_SOCKETS / LT_WINDOW  heimdall-loadtest --sockets, and --window in max mode  (4 / 64)
#   WARMUP                seconds of load before the measured SECONDS, left out of the
#                         latency and counts but inside the CPU window (1)
#   QUIET_IDLE            if > 0, before each run wait (at most QUIET_WAIT=30 s) for a second
#                         in which every CPU was at least this % idle, as compare.sh does (0)
#   CPU_SPLIT             1: also print each run's CPU per query as user and kernel time
#                         (utime and stime; the clock tick's resolution) (0)
#
# Everything is on 127.0.0.1 on high ports; the servers forward only to the
# synthetic upstream there. Each run stops by itself (heimdall-loadtest's
# --duration, then at most its 1 s timeout); every process this script
# starts is stopped by its PID (also on Ctrl-C or an error). With the
# defaults (4 servers, 6 rates, 2 rounds of 5 s) it takes 6-7 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
START_EPOCH=$(date +%s)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$ROOT/benches/peers/lib.sh"
# The command line as given (the settings from the environment first), for the docs.
shq() { if [[ $1 =~ ^[A-Za-z0-9_./:=+-]+$ ]]; then printf '%s' "$1"; else printf "'%s'" "${1//\'/\'\\\'\'}"; fi; }
COMMAND="benches/peers/load-curve.sh"
for v in QUIET_WAIT QUIET_IDLE WARMUP LT_WINDOW LT_SOCKETS RATES SECS ROUNDS SERVERS BASELINE_SERVER_YAML HEIMDALL_SERVER_YAML HEIMDALL_BASELINE_BIN HEIMDALL_BIN; do
    if [ -n "${!v:-}" ]; then COMMAND="$v=$(shq "${!v}") $COMMAND"; fi
done
for a in "$@"; do COMMAND="$COMMAND $(shq "$a")"; done

usage() { sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
WRITE=0
POS=()
for a in "$@"; do
    case $a in
        --write) WRITE=1 ;;
        -h|--help) usage ;;
        -*) echo "unknown option $a" >&2; usage ;;
        *) POS+=("$a") ;;
    esac
done
ROUNDS=${POS[0]:-${ROUNDS:-2}}
SECS=${POS[1]:-${SECS:-5}}
if [ "${#POS[@]}" -gt 2 ]; then
    RATES=("${POS[@]:2}")
else
    read -ra RATES <<<"${RATES:-1000 5000 20000 50000 100000 max}"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive integer, not '$ROUNDS'" >&2; usage; }
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a positive integer, not '$SECS'" >&2; usage; }
for r in "${RATES[@]}"; do
    [[ $r =~ ^[1-9][0-9]*$ || $r == max ]] || { echo "a rate is a positive integer or max, not '$r'" >&2; usage; }
done
read -ra WANT <<<"${SERVERS:-heimdall unbound dnsdist reflector}"
# INSTALL OUT BASE_PORT SERVER_CPU CLIENT_CPU LT_SOCKETS LT_WINDOW QUIET_IDLE
# QUIET_WAIT UPSTREAM_PORT (lib.sh); OUT is created.
settings target/load-curve 5420 30
WARMUP=${WARMUP:-1}
NAMES=1000

WORK=$(mktemp -d /tmp/heimdall-load-curve.XXXXXX)
UPSTREAM_PID=
SERVER_PID=
trap cleanup EXIT   # lib.sh: stops SERVER_PID and UPSTREAM_PID, removes WORK
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- binaries
TARGET_DIR=${CARGO_TARGET_DIR:-target}
HEIMDALL=${HEIMDALL_BIN:-$TARGET_DIR/release/heimdall}
BASELINE=${HEIMDALL_BASELINE_BIN:-}
LOADTEST=$TARGET_DIR/release/heimdall-loadtest
WAKE_REFLECTOR=$TARGET_DIR/release/examples/wake_reflector
build_binaries "$HEIMDALL" "$LOADTEST"
if [[ " ${WANT[*]} " == *" wake-"* ]] && { [ "${BUILD:-1}" = 1 ] || [ ! -x "$WAKE_REFLECTOR" ]; }; then
    log "building the wake-up reflector (release)"
    cargo build --release --quiet -p heimdall-server --example wake_reflector
fi
[ -x "$HEIMDALL" ] || { echo "no heimdall binary at $HEIMDALL" >&2; exit 1; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "HEIMDALL_BASELINE_BIN=$BASELINE is not executable" >&2; exit 1; }

# A missing unbound or dnsdist is installed as compare.sh does (install_pkg, lib.sh).
SERVERS=()
SKIPPED=()
for s in "${WANT[@]}"; do
    case $s in
        heimdall)
            SERVERS+=(heimdall)
            [ -n "$BASELINE" ] && SERVERS+=(baseline) ;;
        reflector|wake-glommio|wake-epoll) SERVERS+=("$s") ;;
        unbound|dnsdist)
            if install_pkg "$s"; then
                SERVERS+=("$s")
            else
                echo "SKIPPING $s: ${BIN[$s]} is not installed and could not be installed" >&2
                SKIPPED+=("$s: not installed")
            fi ;;
        *) echo "unknown server $s (skipped)" >&2; SKIPPED+=("$s: unknown") ;;
    esac
done
[ "${#SERVERS[@]}" -gt 0 ] || { echo "no server to run" >&2; exit 1; }
declare -A PORT=([heimdall]=$((BASE_PORT + 1)) [baseline]=$((BASE_PORT + 2)) [unbound]=$((BASE_PORT + 3))
                 [dnsdist]=$((BASE_PORT + 4)) [reflector]=$((BASE_PORT + 5))
                 [wake-glommio]=$((BASE_PORT + 6)) [wake-epoll]=$((BASE_PORT + 7)))

# Taken now, before the runs (the tree may change while they go on): the
# commit the binary was built from, or the path of the binary given.
# "-dirty" only when the code differs from that commit (not docs or scripts).
if [ -n "${HEIMDALL_BIN:-}" ]; then
    HEIMDALL_VERSION="heimdall $HEIMDALL_BIN"
else
    HEIMDALL_VERSION="heimdall $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    if [ -n "$(git -C "$ROOT" status --porcelain -- crates loadtest vendor Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        HEIMDALL_VERSION="$HEIMDALL_VERSION-dirty (uncommitted code changes)"
    fi
fi
version_of() {
    case $1 in
        heimdall) echo "$HEIMDALL_VERSION" ;;
        baseline) echo "baseline: $BASELINE" ;;
        reflector) echo "reflector: heimdall-loadtest upstream --echo" ;;
        wake-glommio|wake-epoll) echo "$1: crates/server/examples/wake_reflector.rs ${1#wake-}" ;;
        *) peer_version "$1" ;;
    esac
}

# ---------------------------------------------------------------- processes
# (cpu_ticks, dns_ping, start_peer, wait_answer and wait_quiet: lib.sh)
# heimdall and the baseline run without the control socket.
CONTROL_OFF=$'control:\n  enabled: false\n'

# Start a fresh server (SERVER_PID) and wait until it answers.
start_server() { # server
    local s=$1 port=${PORT[$1]} dir="$WORK/$1"
    rm -rf "$dir"; mkdir -p "$dir"
    case $s in
        heimdall) SERVER_YAML=${HEIMDALL_SERVER_YAML:-} start_peer heimdall "$port" "$dir" "$OUT/$s.log" "$HEIMDALL" "$CONTROL_OFF" ;;
        baseline) SERVER_YAML=${BASELINE_SERVER_YAML:-} start_peer heimdall "$port" "$dir" "$OUT/$s.log" "$BASELINE" "$CONTROL_OFF" ;;
        unbound|dnsdist) start_peer "$s" "$port" "$dir" "$OUT/$s.log" ;;
        reflector)
            taskset -c "$SERVER_CPU" "$LOADTEST" upstream --listen "127.0.0.1:$port" --echo \
                --cpus "$SERVER_CPU" >"$OUT/$s.log" 2>&1 & ;;
        wake-glommio|wake-epoll)
            taskset -c "$SERVER_CPU" "$WAKE_REFLECTOR" "127.0.0.1:$port" "${s#wake-}" \
                >"$OUT/$s.log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    wait_answer "$s" "$SERVER_PID" "$port" "$OUT/$s.log" && return 0
    stop_pid "$SERVER_PID"; SERVER_PID=
    return 1
}

# ---------------------------------------------------------------- setup
RUN_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $(nproc) CPUs, load average $LOAD_START; servers: ${SERVERS[*]}; rates: ${RATES[*]}; $ROUNDS rounds of ${SECS}s"
log "starting the synthetic upstream on 127.0.0.1:$UPSTREAM_PORT (CPU $CLIENT_CPU)"
taskset -c "$CLIENT_CPU" "$LOADTEST" upstream --listen "127.0.0.1:$UPSTREAM_PORT" --names $NAMES --ttl 86400 \
    --negative-ttl 3600 --cpus "$CLIENT_CPU" >"$OUT/upstream.log" 2>&1 &
UPSTREAM_PID=$!
wait_listening "$OUT/upstream.log"

# The warm-up: every name of the hot workload, twice.
for i in $(seq 0 $((NAMES - 1))); do echo "host-$i.zone.test. A"; done >"$WORK/names.txt"
cat "$WORK/names.txt" "$WORK/names.txt" >"$WORK/warm.txt"

RESULTS=$OUT/results.tsv
python3 "$ROOT/benches/peers/load_curve.py" header >"$RESULTS"
rm -f "$OUT"/r*-*.json

# ---------------------------------------------------------------- runs
ntotal=$(( ROUNDS * ${#RATES[@]} * ${#SERVERS[@]} ))
n=0
for round in $(seq "$ROUNDS"); do
    rotate_servers "$round"
    for rate in "${RATES[@]}"; do
        for s in "${order[@]}"; do
            n=$((n + 1))
            json=$OUT/r$round-$rate-$s.json
            wait_quiet
            if ! start_server "$s"; then
                echo "[$n/$ntotal] round $round, $rate, $s: did not start; no result" >&2
                python3 "$ROOT/benches/peers/load_curve.py" row "$round" "$rate" "$s" 0 "$TICKS" /nonexistent \
                    "did not start" >>"$RESULTS"
                continue
            fi
            taskset -c "$CLIENT_CPU" "$LOADTEST" run --target "127.0.0.1:${PORT[$s]}" --queries "$WORK/warm.txt" \
                --edns off --rate 20000 --duration 1s --warmup 0s --max-queries $((NAMES * 2)) --quiet \
                >/dev/null 2>&1 || true
            if [ "$rate" = max ]; then load=(--window "$LT_WINDOW"); else load=(--rate "$rate"); fi
            before=$(cpu_time "$SERVER_PID")
            split_before=$(cpu_ticks_split "$SERVER_PID")
            wall_before=$(date +%s%N)
            taskset -c "$CLIENT_CPU" "$LOADTEST" run --target "127.0.0.1:${PORT[$s]}" --workload hot \
                --names $NAMES --edns off --seed "$round" --duration "${SECS}s" --warmup "${WARMUP}s" \
                --cpus "$CLIENT_CPU" --sockets "$LT_SOCKETS" "${load[@]}" --quiet \
                --json "$json" >/dev/null 2>"$json.err" || true
            after=$(cpu_time "$SERVER_PID")
            split_after=$(cpu_ticks_split "$SERVER_PID")
            # The share of the run's wall time the server kept a CPU busy.
            server_busy=$(awk -v cpu=$((after - before)) -v unit="$CPU_UNIT" -v ns=$(($(date +%s%N) - wall_before)) \
                'BEGIN { if (ns > 0) printf "%.1f", 100 * cpu / unit / (ns / 1e9) }')
            stop_pid "$SERVER_PID"; SERVER_PID=
            SERVER_BUSY_PCT=$server_busy python3 "$ROOT/benches/peers/load_curve.py" row "$round" "$rate" "$s" \
                $((after - before)) "$CPU_UNIT" "$json" >>"$RESULTS"
            tail -1 "$RESULTS" | awk -F'\t' -v n="$n" -v t="$ntotal" \
                '{ printf "[%d/%d] round %s %7s q/s %-10s answered %7.0f q/s  %6s us/q CPU  p50 %s  p99 %s  p99.9 %s  loss %s%%  late %s  server CPU busy %s%%  %s\n", n, t, $1, $2, $3, $5, $7, $8, $9, $10, $11, $12, $13, $14 }' >&2
            # CPU_SPLIT=1: the CPU per query as user and kernel time.
            if [ "${CPU_SPLIT:-0}" = 1 ]; then
                python3 - "$split_before" "$split_after" "$TICKS" "$json" <<'PY' >&2
import json, sys
(ub, sb), (ua, sa) = (map(int, sys.argv[i].split()) for i in (1, 2))
try:
    report = json.load(open(sys.argv[4]))
    # Over the warm-up too, as load_curve.py counts them (the CPU window
    # holds the warm-up).
    answered = sum(p.get("answered", 0) for p in report.get("series", []))
    answered = answered or report["counts"]["answered"]
except (OSError, ValueError, KeyError):
    answered = 0
per = 1e6 / int(sys.argv[3]) / max(answered, 1)
print(f"          user {(ua - ub) * per:6.2f} us/q  kernel {(sa - sb) * per:6.2f} us/q")
PY
            fi
        done
    done
done
runs_done

# ---------------------------------------------------------------- report
{
    meta_machine
    echo "rates=${RATES[*]}"
    echo "clk_tck=$TICKS"
    echo "cpu_unit=$CPU_UNIT"
    echo "command=$COMMAND"
    echo "servers=${SERVERS[*]}"
    echo "lt_args=--sockets $LT_SOCKETS"
    echo "lt_window=$LT_WINDOW"
    echo "warmup_s=$WARMUP"
    echo "quiet_idle=$QUIET_IDLE"
    echo "quiet_missed=$QUIET_MISSED"
    for s in "${SERVERS[@]}"; do echo "version.$s=$(version_of "$s")"; done
    for s in "${SKIPPED[@]}"; do echo "skipped=$s"; done
} >"$OUT/meta.txt"

report_args=(--results "$RESULTS" --meta "$OUT/meta.txt" --markdown "$OUT/report.md" --svg "$OUT/load-curve.svg")
if [ "$WRITE" = 1 ]; then
    report_args+=(--docs "$ROOT/docs/BENCHMARKS.md" --docs-svg "$ROOT/docs/load-curve.svg")
fi
python3 "$ROOT/benches/peers/load_curve.py" report "${report_args[@]}"
log "done in ${WALL}s; results in $OUT$([ "$WRITE" = 1 ] && echo '; docs/BENCHMARKS.md and docs/load-curve.svg rewritten')"
