#!/usr/bin/env bash
# `just compare-peers`: heimdall against Unbound, dnsdist, PowerDNS Recursor
# and Knot Resolver, each on one core, with two load generators
# (heimdall-loadtest and dnsperf) and two workloads (hot and mixed), in
# interleaved rounds. Writes the medians into docs/BENCHMARKS.md (between
# `<!-- peers:begin -->` and `<!-- peers:end -->`) and a chart into
# docs/peers.svg. See benches/peers/README.md for what is measured and why.
#
#   benches/peers/compare.sh [ROUNDS] [SECONDS]        (defaults: 3 rounds, 10 s per run)
#
# Environment:
#   PEERS      servers to run, in this order  (heimdall unbound dnsdist pdns-recursor knot-resolver)
#   TOOLS      load generators                (loadtest dnsperf)
#   WORKLOADS  workloads                      (hot mixed)
#   INSTALL    1: apt-get install missing peers and dnsperf (needs root); 0: skip what is missing (1)
#   DOCS       1: rewrite the docs section and docs/peers.svg; 0: only print (1)
#   BUILD      0: use the release binaries already in $CARGO_TARGET_DIR (or target/) (1)
#   OUT        where results, logs and reports are kept           (target/compare-peers)
#   BASE_PORT  first of the 127.0.0.1 UDP ports used (upstream; servers on the next ones) (5410)
#   SERVER_CPU / CLIENT_CPU   CPU of every server / of the clients and the upstream  (0 / 1)
#   QUIET_IDLE if > 0, before each run wait (at most QUIET_WAIT=120 s) for a second in
#              which every CPU was at least this % idle                      (0)
#
# Everything listens on 127.0.0.1 on high ports and forwards only to the
# synthetic upstream there. Every process this script starts is stopped by
# its PID at the end (also on Ctrl-C); if installing a package started its
# daemon, that daemon (a PID that appeared during the install) is stopped too.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
START_EPOCH=$(date +%s)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$ROOT/benches/peers/lib.sh"

ROUNDS=${1:-${ROUNDS:-3}}
SECS=${2:-${SECS:-10}}
read -ra PEERS <<<"${PEERS:-heimdall unbound dnsdist pdns-recursor knot-resolver}"
read -ra TOOLS <<<"${TOOLS:-loadtest dnsperf}"
read -ra WORKLOADS <<<"${WORKLOADS:-hot mixed}"
DOCS=${DOCS:-1}
# INSTALL OUT BASE_PORT SERVER_CPU CLIENT_CPU LT_SOCKETS LT_WINDOW QUIET_IDLE
# QUIET_WAIT UPSTREAM_PORT (lib.sh); OUT is created.
settings target/compare-peers 5410 120
# The workloads (documented in benches/peers/README.md).
HOT_NAMES=1000
ZONE_NAMES=100000000
MIX="hot=80,cold=10,nxdomain=10"
# Load generator settings: heimdall-loadtest in max mode with 4 sockets x 64
# outstanding (LT_SOCKETS, LT_WINDOW); dnsperf with 8 sockets, 500
# outstanding, 1 thread; both count an answer later than 1 s as lost.
DNSPERF_ARGS=${DNSPERF_ARGS:-"-c 8 -q 500 -T 1 -t 1"}
read -ra dnsperf_args <<<"$DNSPERF_ARGS"

WORK=$(mktemp -d /tmp/heimdall-compare-peers.XXXXXX)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- binaries
TARGET_DIR=${CARGO_TARGET_DIR:-target}
HEIMDALL=$TARGET_DIR/release/heimdall
LOADTEST=$TARGET_DIR/release/heimdall-loadtest
build_binaries "$HEIMDALL" "$LOADTEST"

# Missing peers are installed (install_pkg, lib.sh).
SKIPPED=()
ACTIVE=()
for peer in "${PEERS[@]}"; do
    if [ "$peer" = heimdall ]; then ACTIVE+=(heimdall); continue; fi
    if [ -z "${BIN[$peer]:-}" ]; then echo "unknown peer $peer (skipped)" >&2; SKIPPED+=("$peer: unknown"); continue; fi
    if install_pkg "$peer"; then
        ACTIVE+=("$peer")
    else
        echo "SKIPPING $peer: ${BIN[$peer]} is not installed and could not be installed" >&2
        SKIPPED+=("$peer: not installed")
    fi
done
ACTIVE_TOOLS=()
for tool in "${TOOLS[@]}"; do
    if [ "$tool" = dnsperf ] && ! install_pkg dnsperf; then
        echo "SKIPPING dnsperf: not installed and could not be installed" >&2
        SKIPPED+=("dnsperf (tool): not installed")
        continue
    fi
    ACTIVE_TOOLS+=("$tool")
done

# ---------------------------------------------------------------- versions
version_of() {
    case $1 in
        heimdall) echo "$HEIMDALL_VERSION" ;;
        *) peer_version "$1" ;;
    esac
}

# ---------------------------------------------------------------- processes
# (cpu_ticks, dns_ping, start_peer, wait_answer and wait_quiet: lib.sh)
declare -A PORT PID
start_server() { # peer index
    local peer=$1 port=$((BASE_PORT + 1 + $2)) dir="$WORK/$1" pid
    mkdir -p "$dir"
    PORT[$peer]=$port
    start_peer "$peer" "$port" "$dir" "$OUT/$peer.log" || return 1
    pid=$!
    PIDS+=("$pid")
    PID[$peer]=$pid
    wait_answer "$peer" "$pid" "$port" "$OUT/$peer.log"
}

# ---------------------------------------------------------------- setup
RUN_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
HEIMDALL_VERSION="heimdall $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')"
log "machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load: $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "starting the synthetic upstream on 127.0.0.1:$UPSTREAM_PORT (CPU $CLIENT_CPU)"
"$LOADTEST" upstream --listen "127.0.0.1:$UPSTREAM_PORT" --names "$ZONE_NAMES" --ttl 86400 \
    --negative-ttl 3600 --cpus "$CLIENT_CPU" >"$OUT/upstream.log" 2>&1 &
PIDS+=($!)
wait_listening "$OUT/upstream.log"

# The hot query file (both tools; 100,000 lines over the 1,000 names) and the
# warm-up file (every hot name and every NXDOMAIN name of the mix, twice).
"$LOADTEST" queries --workload hot --names $HOT_NAMES --seed 1 --count 100000 --out "$WORK/hot.txt"
{ for i in $(seq 0 $((HOT_NAMES - 1))); do echo "host-$i.zone.test. A"; echo "nx-$i.zone.test. A"; done; } >"$WORK/warm.txt"
cat "$WORK/warm.txt" "$WORK/warm.txt" >"$WORK/warm2.txt"

SERVERS=()
for i in "${!ACTIVE[@]}"; do
    peer=${ACTIVE[$i]}
    log "starting $peer on 127.0.0.1:$((BASE_PORT + 1 + i)) (CPU $SERVER_CPU)"
    if start_server "$peer" "$i"; then
        SERVERS+=("$peer")
    else
        echo "SKIPPING $peer: it did not start" >&2
        SKIPPED+=("$peer: did not start (see $OUT/$peer.log)")
    fi
done
[ "${#SERVERS[@]}" -gt 0 ] || { echo "no server started" >&2; exit 1; }

for peer in "${SERVERS[@]}"; do
    log "warming $peer: $((HOT_NAMES * 2)) names (hot and NXDOMAIN), twice"
    taskset -c "$CLIENT_CPU" "$LOADTEST" run --target "127.0.0.1:${PORT[$peer]}" --queries "$WORK/warm2.txt" \
        --edns off --rate 20000 --duration 1s --warmup 0s --max-queries $((HOT_NAMES * 4)) --quiet \
        --json "$WORK/warm-$peer.json" >/dev/null || true
done

# ---------------------------------------------------------------- runs
RESULTS=$OUT/results.tsv
printf 'round\tworkload\ttool\tserver\tqps\tanswered\tcpu_us\tp50_us\tp99_us\tmean_us\tsd_us\tloss_pct\tnote\n' >"$RESULTS"

run_loadtest() { # peer workload seed json
    local wl_args
    case $2 in
        hot) wl_args=(--queries "$WORK/hot.txt") ;;
        mixed) wl_args=(--workload mixed --mix "$MIX" --names "$HOT_NAMES" --zone-names "$ZONE_NAMES" --seed "$3") ;;
    esac
    taskset -c "$CLIENT_CPU" "$LOADTEST" run --target "127.0.0.1:${PORT[$1]}" "${wl_args[@]}" --edns off \
        --duration "${SECS}s" --warmup 0s --cpus "$CLIENT_CPU" --sockets "$LT_SOCKETS" --window "$LT_WINDOW" \
        --quiet --json "$4" >/dev/null 2>"$4.err" || true
}

run_dnsperf() { # peer workload seed out
    local file=$WORK/hot.txt
    if [ "$2" = mixed ]; then
        # The same stream heimdall-loadtest generates with this seed, long
        # enough that no run reaches its end (-n 1: never loop over it).
        file=$WORK/mixed-$3.txt
        [ -f "$file" ] || "$LOADTEST" queries --workload mixed --mix "$MIX" --names $HOT_NAMES \
            --zone-names $ZONE_NAMES --seed "$3" --count $((SECS * 700000)) --out "$file"
    fi
    local once=()
    [ "$2" = mixed ] && once=(-n 1)
    taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$1]}" -d "$file" -l "$SECS" "${once[@]}" \
        "${dnsperf_args[@]}" >"$4" 2>&1 || true
}

record() { # round workload tool peer ticks file
    python3 "$ROOT/benches/peers/parse.py" "$@" "$TICKS" "$SECS" >>"$RESULTS"
}

ntotal=$(( ROUNDS * ${#WORKLOADS[@]} * ${#ACTIVE_TOOLS[@]} * ${#SERVERS[@]} ))
n=0
for round in $(seq "$ROUNDS"); do
    # Rotate the order of the servers by one each round.
    rotate_servers "$round"
    for workload in "${WORKLOADS[@]}"; do
        for t in "${!ACTIVE_TOOLS[@]}"; do
            tool=${ACTIVE_TOOLS[$t]}
            # A new seed per round and tool: a new range of cold names that
            # no server has seen; the same for every server.
            seed=$(( round * 100 + t + 1 ))
            for peer in "${order[@]}"; do
                n=$((n + 1))
                wait_quiet
                file=$OUT/r$round-$workload-$tool-$peer
                before=$(cpu_ticks "${PID[$peer]}")
                if [ "$tool" = loadtest ]; then
                    run_loadtest "$peer" "$workload" "$seed" "$file.json"; file=$file.json
                else
                    run_dnsperf "$peer" "$workload" "$seed" "$file.txt"; file=$file.txt
                fi
                after=$(cpu_ticks "${PID[$peer]}")
                record "$round" "$workload" "$tool" "$peer" $((after - before)) "$file"
                tail -1 "$RESULTS" | awk -F'\t' -v n="$n" -v t="$ntotal" \
                    '{ printf "[%d/%d] round %s %-6s %-8s %-14s %9.0f q/s  %6.2f us/q CPU  p50 %s  p99 %s  loss %s%%\n", n, t, $1, $2, $3, $4, $5, $7, $8, $9, $12 }' >&2
            done
            rm -f "$WORK"/mixed-*.txt
        done
    done
done
runs_done

# ---------------------------------------------------------------- report
{
    meta_machine
    echo "command=just compare-peers $ROUNDS $SECS"
    echo "servers=${SERVERS[*]}"
    echo "tools=${ACTIVE_TOOLS[*]}"
    echo "workloads=${WORKLOADS[*]}"
    echo "mix=$MIX"
    echo "dnsperf_args=$DNSPERF_ARGS"
    echo "lt_args=--sockets $LT_SOCKETS --window $LT_WINDOW"
    for s in "${SERVERS[@]}"; do echo "version.$s=$(version_of "$s")"; done
    for tool in "${ACTIVE_TOOLS[@]}"; do [ "$tool" = dnsperf ] && echo "version.dnsperf=$(version_of dnsperf)"; done
    for s in "${SKIPPED[@]}"; do echo "skipped=$s"; done
} >"$OUT/meta.txt"

report_args=(--results "$RESULTS" --meta "$OUT/meta.txt" --markdown "$OUT/report.md" --svg "$OUT/peers.svg")
if [ "$DOCS" = 1 ]; then
    report_args+=(--docs "$ROOT/docs/BENCHMARKS.md" --docs-svg "$ROOT/docs/peers.svg")
fi
python3 "$ROOT/benches/peers/report.py" "${report_args[@]}"
cat "$OUT/report.md"
log "done in ${WALL}s; results in $OUT"
