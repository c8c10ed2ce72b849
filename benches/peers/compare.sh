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

ROUNDS=${1:-${ROUNDS:-3}}
SECS=${2:-${SECS:-10}}
read -ra PEERS <<<"${PEERS:-heimdall unbound dnsdist pdns-recursor knot-resolver}"
read -ra TOOLS <<<"${TOOLS:-loadtest dnsperf}"
read -ra WORKLOADS <<<"${WORKLOADS:-hot mixed}"
INSTALL=${INSTALL:-1}
DOCS=${DOCS:-1}
OUT=${OUT:-target/compare-peers}
BASE_PORT=${BASE_PORT:-5410}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
QUIET_IDLE=${QUIET_IDLE:-0}
QUIET_WAIT=${QUIET_WAIT:-120}
UPSTREAM_PORT=$BASE_PORT
# The workloads (documented in benches/peers/README.md).
HOT_NAMES=1000
ZONE_NAMES=100000000
MIX="hot=80,cold=10,nxdomain=10"
# Load generator settings: heimdall-loadtest in max mode with 4 sockets x 64
# outstanding; dnsperf with 8 sockets, 500 outstanding, 1 thread; both
# count an answer later than 1 s as lost.
LT_SOCKETS=${LT_SOCKETS:-4}
LT_WINDOW=${LT_WINDOW:-64}
DNSPERF_ARGS=${DNSPERF_ARGS:-"-c 8 -q 500 -T 1 -t 1"}
read -ra dnsperf_args <<<"$DNSPERF_ARGS"

log() { printf '== %s\n' "$*" >&2; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
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
if [ "${BUILD:-1}" = 1 ] || [ ! -x "$TARGET_DIR/release/heimdall" ] || [ ! -x "$TARGET_DIR/release/heimdall-loadtest" ]; then
    log "building heimdall and heimdall-loadtest (release)"
    cargo build --release --quiet -p heimdall -p heimdall-loadtest
fi
HEIMDALL=$TARGET_DIR/release/heimdall
LOADTEST=$TARGET_DIR/release/heimdall-loadtest

# peer -> Debian package, binary
declare -A PKG=([unbound]=unbound [dnsdist]=dnsdist [pdns-recursor]=pdns-recursor
                [knot-resolver]=knot-resolver [dnsperf]=dnsperf)
declare -A BIN=([unbound]=unbound [dnsdist]=dnsdist [pdns-recursor]=pdns_recursor
                [knot-resolver]=kresd [dnsperf]=dnsperf)
find_bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || true; }

# Install what is missing. A package whose maintainer script starts its
# daemon (on port 53) leaves a PID that was not there before: stop exactly
# those PIDs.
install_pkg() { # name
    local name=$1 bin=${BIN[$1]} before after pid
    [ -n "$(find_bin "$bin")" ] && return 0
    if [ "$INSTALL" != 1 ]; then return 1; fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "cannot install ${PKG[$name]}: needs root and apt-get" >&2
        return 1
    fi
    before=$(pgrep -x "$bin" || true)
    log "installing ${PKG[$name]} (apt-get install -y ${PKG[$name]})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PKG[$name]}" >"$OUT/install-$name.log" 2>&1 ||
        { echo "apt-get install ${PKG[$name]} failed; see $OUT/install-$name.log" >&2; return 1; }
    after=$(pgrep -x "$bin" || true)
    for pid in $after; do
        if ! grep -qx "$pid" <<<"$before"; then
            log "the ${PKG[$name]} package started $bin (PID $pid); stopping that PID"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    [ -n "$(find_bin "$bin")" ]
}

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
        unbound) echo "Unbound $("$(find_bin unbound)" -V 2>&1 | awk '/^Version/ {print $2; exit}')" ;;
        dnsdist) "$(find_bin dnsdist)" --version 2>&1 | head -1 ;;
        pdns-recursor) "$(find_bin pdns_recursor)" --version 2>&1 | grep -o 'PowerDNS Recursor [^ ]*' | head -1 ;;
        knot-resolver) "$(find_bin kresd)" --version 2>&1 | head -1 ;;
        dnsperf) "$(find_bin dnsperf)" -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}' ;;
    esac
}

# ---------------------------------------------------------------- processes
# CPU ticks (utime + stime) of a process, all its threads (the /proc/PID/stat
# of a thread-group leader sums its threads, live and exited) and all its
# descendant processes.
tree_pids() { local c; echo "$1"; for c in $(pgrep -P "$1" || true); do tree_pids "$c"; done; }
cpu_ticks() {
    local total=0 p t
    for p in $(tree_pids "$1"); do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
TICKS=$(getconf CLK_TCK)

# One UDP query (A host-0.zone.test), true when any answer comes back.
dns_ping() { # port
    python3 - "$1" <<'PY'
import socket, struct, sys
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x06host-0\x04zone\x04test\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.3)
try:
    s.sendto(q, ("127.0.0.1", int(sys.argv[1]))); s.recvfrom(2048); sys.exit(0)
except OSError:
    sys.exit(1)
PY
}

render() { # template out port
    sed -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g; s/@PORT@/$3/g; s#@WORK@#$4#g" "$ROOT/benches/peers/conf/$1" >"$2"
}

declare -A PORT PID
start_server() { # peer index
    local peer=$1 port=$((BASE_PORT + 1 + $2)) dir="$WORK/$1" pid
    mkdir -p "$dir"
    PORT[$peer]=$port
    case $peer in
        heimdall)
            render heimdall.yaml.in "$dir/heimdall.yaml" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$HEIMDALL" --config "$dir/heimdall.yaml" >"$OUT/$peer.log" 2>&1 & ;;
        unbound)
            render unbound.conf.in "$dir/unbound.conf" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin unbound)" -d -c "$dir/unbound.conf" >"$OUT/$peer.log" 2>&1 & ;;
        dnsdist)
            render dnsdist.conf.in "$dir/dnsdist.conf" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin dnsdist)" --supervised --disable-syslog -C "$dir/dnsdist.conf" >"$OUT/$peer.log" 2>&1 & ;;
        pdns-recursor)
            render recursor.conf.in "$dir/recursor.conf" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin pdns_recursor)" --config-dir="$dir" >"$OUT/$peer.log" 2>&1 & ;;
        knot-resolver)
            render kresd.conf.in "$dir/config" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin kresd)" -n -c "$dir/config" "$dir" >"$OUT/$peer.log" 2>&1 & ;;
    esac
    pid=$!
    PIDS+=("$pid")
    PID[$peer]=$pid
    for _ in $(seq 100); do
        dns_ping "$port" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$peer did not answer on 127.0.0.1:$port; its output ($OUT/$peer.log):" >&2
    tail -20 "$OUT/$peer.log" >&2
    return 1
}

wait_quiet() {
    (( QUIET_IDLE > 0 )) || return 0
    local waited=0 idle
    while (( waited < QUIET_WAIT )); do
        idle=$(python3 - <<'PY'
import time
def snap():
    rows = [l.split() for l in open("/proc/stat") if l.startswith("cpu") and l[3] != " "]
    return {r[0]: (int(r[4]) + int(r[5]), sum(int(x) for x in r[1:9])) for r in rows}
a = snap(); time.sleep(1); b = snap()
print(int(min(100 * (b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]) for c in a)))
PY
)
        (( idle >= QUIET_IDLE )) && return 0
        waited=$((waited + 1))
    done
    echo "(not quiet after ${QUIET_WAIT}s; measuring anyway)" >&2
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
for _ in $(seq 100); do grep -q listening "$OUT/upstream.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$OUT/upstream.log" || { echo "the upstream did not start" >&2; cat "$OUT/upstream.log" >&2; exit 1; }

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
        mixed) wl_args=(--workload mixed --mix "$MIX" --names $HOT_NAMES --zone-names $ZONE_NAMES --seed "$3") ;;
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
    order=()
    for i in "${!SERVERS[@]}"; do
        order+=("${SERVERS[$(( (i + round - 1) % ${#SERVERS[@]} ))]}")
    done
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
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
WALL=$(( $(date +%s) - START_EPOCH ))

# ---------------------------------------------------------------- report
{
    echo "date=$RUN_DATE"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel=$(uname -r)"
    echo "load_start=$LOAD_START"
    echo "load_end=$LOAD_END"
    echo "wall_s=$WALL"
    echo "rounds=$ROUNDS"
    echo "secs=$SECS"
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
