# shellcheck shell=bash
# Shared by benches/peers/compare.sh and benches/peers/load-curve.sh, which
# source it (it is not run by itself). It holds what the two scripts do
# alike: the settings they share (settings), logging, building the release
# binaries, installing a missing peer from its Debian package and asking its
# version, rendering a peer's config from benches/peers/conf/*.in and
# starting it on one core (heimdall, Unbound, dnsdist, PowerDNS Recursor,
# Knot Resolver) then waiting until it answers, a one-query DNS check, the
# CPU ticks of a process tree, the server order of a round, waiting for a
# quiet machine, and the first (machine) lines of meta.txt.
#
# Sourcing it sets PKG and BIN (peer -> Debian package, binary), TICKS (clock
# ticks per second) and QUIET_MISSED=0. The functions use these variables
# of the sourcing script: ROOT (the repository), START_EPOCH, RUN_DATE,
# LOAD_START, ROUNDS, SECS, SERVERS (rotate_servers), HEIMDALL (start_peer's
# default heimdall binary), and those settings sets: INSTALL, OUT,
# SERVER_CPU, UPSTREAM_PORT, QUIET_IDLE, QUIET_WAIT. runs_done sets LOAD_END
# and WALL; rotate_servers sets order.

log() { printf '== %s\n' "$*" >&2; }

# The settings both scripts take from the environment (see their headers),
# with the defaults they share; OUT is created and made absolute.
settings() { # default-OUT default-BASE_PORT default-QUIET_WAIT
    INSTALL=${INSTALL:-1}
    OUT=${OUT:-$1}
    BASE_PORT=${BASE_PORT:-$2}
    SERVER_CPU=${SERVER_CPU:-0}
    CLIENT_CPU=${CLIENT_CPU:-1}
    LT_SOCKETS=${LT_SOCKETS:-4}
    LT_WINDOW=${LT_WINDOW:-64}
    QUIET_IDLE=${QUIET_IDLE:-0}
    QUIET_WAIT=${QUIET_WAIT:-$3}
    UPSTREAM_PORT=$BASE_PORT
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
}

# cargo build the release binaries unless BUILD=0 and both exist.
build_binaries() { # heimdall loadtest
    if [ "${BUILD:-1}" = 1 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
        log "building heimdall and heimdall-loadtest (release)"
        cargo build --release --quiet -p heimdall -p heimdall-loadtest
    fi
}

# ---------------------------------------------------------------- packages
# peer -> Debian package, binary
# shellcheck disable=SC2034  # PKG and BIN are also read by the scripts
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
    [ "$INSTALL" = 1 ] || return 1
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

# The version of an installed peer or of dnsperf (heimdall's is the script's).
peer_version() { # name
    case $1 in
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
stop_pid() { # pid: TERM, at most 10 s for it to exit, then KILL
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "PID $pid still running 10 s after SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
# The EXIT trap of a script that keeps one server (SERVER_PID) and the
# upstream (UPSTREAM_PID) running at a time, in the scratch dir WORK.
cleanup() {
    [ -n "${SERVER_PID:-}" ] && stop_pid "$SERVER_PID"
    [ -n "${UPSTREAM_PID:-}" ] && stop_pid "$UPSTREAM_PID"
    rm -rf "${WORK:?}"
}
tree_pids() { local c; echo "$1"; for c in $(pgrep -P "$1" || true); do tree_pids "$c"; done; }
cpu_ticks() {
    local total=0 p t
    for p in $(tree_pids "$1"); do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
# CPU time of a process tree in CPU_UNITs a second, as precise as the
# kernel keeps it: the scheduler's runtime of every thread (field 1 of
# /proc/PID/task/TID/schedstat, nanoseconds) where there is one, else
# cpu_ticks (10 ms apart: at 1k q/s over 6 s, 1.7 us a query). Only
# threads alive at both reads count, which a server's are.
if [ -r /proc/self/schedstat ]; then CPU_UNIT=1000000000; else CPU_UNIT=$(getconf CLK_TCK); fi
cpu_time() {
    [ "$CPU_UNIT" = 1000000000 ] || { cpu_ticks "$1"; return; }
    local total=0 p t
    for p in $(tree_pids "$1"); do
        t=$(cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}
# cpu_ticks split in two: "USER SYSTEM" (utime, stime).
cpu_ticks_split() {
    local user=0 system=0 p t
    for p in $(tree_pids "$1"); do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12, $13}') || t="0 0"
        user=$((user + ${t% *})); system=$((system + ${t#* }))
    done
    echo "$user $system"
}
# shellcheck disable=SC2034  # read by the scripts
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

# The synthetic upstream writes "listening" to its log once it is up.
wait_listening() { # log
    for _ in $(seq 100); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done
    grep -q listening "$1" || { echo "the upstream did not start" >&2; cat "$1" >&2; exit 1; }
}

render() { # template out port dir
    sed -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g; s/@PORT@/$3/g; s#@WORK@#$4#g" "$ROOT/benches/peers/conf/$1" >"$2"
}

# Render PEER's config (benches/peers/conf/*.in) into DIR and start PEER in
# the background, pinned to SERVER_CPU, on 127.0.0.1:PORT, its output in LOG.
# heimdall runs BINARY (default $HEIMDALL), with the YAML text EXTRA (if any)
# appended to its config. Afterwards $! is the server's PID.
start_peer() { # peer port dir log [binary [extra]]
    local peer=$1 port=$2 dir=$3 log=$4
    case $peer in
        heimdall)
            render heimdall.yaml.in "$dir/heimdall.yaml" "$port" "$dir"
            # A build from before DNSSEC validation has no dnssec: section.
            "${5:-$HEIMDALL}" default-config 2>/dev/null | grep -q '^dnssec:' \
                || sed -i '/^dnssec:/,+1d' "$dir/heimdall.yaml"
            # SERVER_YAML: extra `server:` keys, one per line.
            if [ -n "${SERVER_YAML:-}" ]; then
                python3 - "$dir/heimdall.yaml" "$SERVER_YAML" <<'PY'
import sys
path, extra = sys.argv[1], sys.argv[2]
text = open(path).read()
keys = "".join(f"  {line.strip()}\n" for line in extra.splitlines() if line.strip())
open(path, "w").write(text.replace("server:\n", "server:\n" + keys, 1))
PY
            fi
            [ -z "${6:-}" ] || printf '%s' "$6" >>"$dir/heimdall.yaml"
            taskset -c "$SERVER_CPU" "${5:-$HEIMDALL}" --config "$dir/heimdall.yaml" >"$log" 2>&1 & ;;
        unbound)
            render unbound.conf.in "$dir/unbound.conf" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin unbound)" -d -c "$dir/unbound.conf" >"$log" 2>&1 & ;;
        dnsdist)
            render dnsdist.conf.in "$dir/dnsdist.conf" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin dnsdist)" --supervised --disable-syslog -C "$dir/dnsdist.conf" >"$log" 2>&1 & ;;
        pdns-recursor)
            render recursor.conf.in "$dir/recursor.conf" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin pdns_recursor)" --config-dir="$dir" >"$log" 2>&1 & ;;
        knot-resolver)
            render kresd.conf.in "$dir/config" "$port" "$dir"
            taskset -c "$SERVER_CPU" "$(find_bin kresd)" -n -c "$dir/config" "$dir" >"$log" 2>&1 & ;;
        *) echo "start_peer: unknown peer $peer" >&2; return 1 ;;
    esac
}

# Wait (at most 10 s) until the server answers a query; false, with the end
# of its log, if it does not or its process exits.
wait_answer() { # name pid port log
    for _ in $(seq 100); do
        dns_ping "$3" && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "$1 did not answer on 127.0.0.1:$3; its output ($4):" >&2
    tail -20 "$4" >&2
    return 1
}

# ORDER: SERVERS rotated by one more each round, so that no server always
# runs first.
rotate_servers() { # round
    local i
    order=()
    for i in "${!SERVERS[@]}"; do
        order+=("${SERVERS[$(( (i + $1 - 1) % ${#SERVERS[@]} ))]}")
    done
}

# On a shared machine: wait for a second in which every CPU was at least
# QUIET_IDLE % idle, at most QUIET_WAIT seconds (QUIET_MISSED counts the
# waits that ran out).
QUIET_MISSED=0
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
    QUIET_MISSED=$((QUIET_MISSED + 1))
}

# After the runs: the load average then (LOAD_END) and the seconds since
# START_EPOCH (WALL), for meta_machine and the last log line.
runs_done() {
    LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
    WALL=$(( $(date +%s) - START_EPOCH ))
}

# The first lines of meta.txt: the run and the machine.
meta_machine() {
    echo "date=$RUN_DATE"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel=$(uname -r)"
    echo "load_start=$LOAD_START"
    echo "load_end=$LOAD_END"
    echo "wall_s=$WALL"
    echo "rounds=$ROUNDS"
    echo "secs=$SECS"
}
