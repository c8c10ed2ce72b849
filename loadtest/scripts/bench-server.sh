#!/usr/bin/env bash
# `just bench-server`: heimdall (release) against the synthetic upstream,
# measured by heimdall-loadtest with the hot, cold and mixed workloads; one
# table at the end. Everything it starts, it stops (by PID), also on Ctrl-C.
#
#   loadtest/scripts/bench-server.sh [DURATION] [extra `heimdall-loadtest run` arguments]
#
# Environment (defaults for a 2-core machine):
#   SERVER_CORES   heimdall's server.cores            ([1] with 2+ CPUs, else [0])
#   CLIENT_CPUS    CPUs of the load generator         (0)
#   UPSTREAM_CPUS  CPUs of the synthetic upstream     (unpinned)
#   SERVER_PORT    heimdall's UDP port on 127.0.0.1   (5391)
#   UPSTREAM_PORT  the upstream's UDP port            (5390)
#   WINDOW         queries outstanding per socket     (64)
#   SOCKETS        sockets of the load generator      (4)
#   OUT            where the JSON and SVG reports go  (target/bench-server)
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${1:-5s}
shift || true
if (( $(nproc) >= 2 )); then default_cores="[1]"; else default_cores="[0]"; fi
SERVER_CORES=${SERVER_CORES:-$default_cores}
CLIENT_CPUS=${CLIENT_CPUS:-0}
UPSTREAM_CPUS=${UPSTREAM_CPUS:-}
SERVER_PORT=${SERVER_PORT:-5391}
UPSTREAM_PORT=${UPSTREAM_PORT:-5390}
WINDOW=${WINDOW:-64}
SOCKETS=${SOCKETS:-4}
OUT=${OUT:-target/bench-server}
ZONE_NAMES=100000000

echo "== building (release)"
cargo build --release --quiet -p heimdall -p heimdall-loadtest
LOADTEST=target/release/heimdall-loadtest
HEIMDALL=target/release/heimdall

mkdir -p "$OUT"
work=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # FILE PATTERN WHAT
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$3 did not start; its output:" >&2
    cat "$1" >&2
    exit 1
}

echo "== starting the synthetic upstream on 127.0.0.1:$UPSTREAM_PORT"
pin_upstream=()
[[ -n "$UPSTREAM_CPUS" ]] && pin_upstream=(--cpus "$UPSTREAM_CPUS")
"$LOADTEST" upstream --listen "127.0.0.1:$UPSTREAM_PORT" --names "$ZONE_NAMES" \
    "${pin_upstream[@]}" >"$work/upstream.log" 2>&1 &
pids+=($!)
wait_for "$work/upstream.log" "listening" "the upstream"

echo "== starting heimdall on 127.0.0.1:$SERVER_PORT, cores $SERVER_CORES"
cat >"$work/heimdall.yaml" <<YAML
server:
  cores: $SERVER_CORES
  listen: ["127.0.0.1:$SERVER_PORT"]
upstream:
  servers: ["127.0.0.1:$UPSTREAM_PORT"]
log:
  level: warn
# The synthetic upstream is unsigned: validation would answer SERVFAIL.
dnssec:
  mode: off
YAML
"$HEIMDALL" --config "$work/heimdall.yaml" >"$work/heimdall.log" 2>&1 &
pids+=($!)
ready=""
for _ in $(seq 50); do
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
        echo "heimdall exited; its output:" >&2
        cat "$work/heimdall.log" >&2
        exit 1
    fi
    if "$LOADTEST" run --target "127.0.0.1:$SERVER_PORT" --max-queries 1 --duration 1s \
        --warmup 0s --timeout 200ms --max-loss 0 --quiet >/dev/null 2>&1; then
        ready=yes
        break
    fi
done
[[ -n "$ready" ]] || { echo "heimdall does not answer" >&2; cat "$work/heimdall.log" >&2; exit 1; }

rows=()
for workload in hot cold mixed; do
    echo "== $workload: max mode, $DURATION (+1s warm-up), CPUs $CLIENT_CPUS"
    "$LOADTEST" run --target "127.0.0.1:$SERVER_PORT" --workload "$workload" \
        --zone-names "$ZONE_NAMES" --duration "$DURATION" --warmup 1s --cpus "$CLIENT_CPUS" \
        --sockets "$SOCKETS" --window "$WINDOW" --quiet \
        --json "$OUT/$workload.json" --svg "$OUT/$workload.svg" "$@" >"$OUT/$workload.txt"
    rows+=("$workload=$OUT/$workload.json")
done

echo
echo "heimdall (cores $SERVER_CORES) <- heimdall-loadtest (CPUs $CLIENT_CPUS), $(date -u +%Y-%m-%dT%H:%MZ), $(uptime | sed 's/.*load average/load average/')"
"$LOADTEST" table "${rows[@]}"
echo "(reports: $OUT/{hot,cold,mixed}.{json,svg,txt})"
