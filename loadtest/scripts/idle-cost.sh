#!/usr/bin/env bash
# What an idle heimdall costs: `just idle-cost`.
#
#   loadtest/scripts/idle-cost.sh [SECONDS] [CORES]
#
# Starts the release heimdall (HEIMDALL_BIN overrides it) with CORES cores
# (a YAML list, default "[0, 1]") and the control endpoint on, lets it
# settle for 2 s, then measures over SECONDS (default 60) with no traffic
# at all: its CPU time (utime+stime from /proc/PID/stat, in clock ticks)
# and the voluntary context switches of all its threads (each one a
# wake-up). Prints both per second and as a share of one CPU. Listens on
# 127.0.0.1 high ports; its upstream address is never asked (no queries).
# Only the process it starts is stopped, by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_TO_MEASURE=${1:-60}
CORES=${2:-"[0, 1]"}
HEIMDALL=${HEIMDALL_BIN:-target/release/heimdall}
PORT=${PORT:-5791}
[ -x "$HEIMDALL" ] || cargo build --release --quiet -p heimdall

work=$(mktemp -d /tmp/heimdall-idle.XXXXXX)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/heimdall.yaml" <<YAML
server:
  cores: $CORES
  listen: ["127.0.0.1:$PORT"]
control:
  listen: 127.0.0.1:$((PORT + 1))
upstream:
  servers: ["127.0.0.1:$((PORT + 2))"]
log:
  level: warn
# The synthetic upstream is unsigned: validation would answer SERVFAIL.
dnssec:
  mode: off
YAML
"$HEIMDALL" --config "$work/heimdall.yaml" >"$work/heimdall.log" 2>&1 &
pid=$!
sleep 2
kill -0 "$pid" 2>/dev/null || { cat "$work/heimdall.log" >&2; exit 1; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
switches() { cat /proc/"$pid"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
t0=$(ticks) s0=$(switches)
sleep "$SECONDS_TO_MEASURE"
t1=$(ticks) s1=$(switches)
hz=$(getconf CLK_TCK)
awk -v t="$((t1 - t0))" -v s="$((s1 - s0))" -v secs="$SECONDS_TO_MEASURE" -v hz="$hz" -v cores="$CORES" 'BEGIN {
    printf "idle heimdall, cores %s, %d s: %d clock ticks of CPU (%.3f %% of one CPU), %d wake-ups (%.1f per second)\n",
        cores, secs, t, t / hz / secs * 100, s, s / secs
}'
