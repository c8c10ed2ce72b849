#!/usr/bin/env bash
# Side-by-side cache-hit benchmark on one server core: heimdall vs Unbound.
#
# Both forward to the same synthetic upstream (heimdall-loadtest upstream);
# each is pinned to CPU 0 with one thread/core; dnsperf is pinned to CPU 1
# and asks for the same 1,000 names over and over (cache hits after the
# first pass). Rounds alternate between the servers, in an order that
# turns around every round. Per server and round
# it prints dnsperf's completed queries/s and loss, and the server's CPU
# time per query (utime+stime from /proc/PID/stat, before and after).
#
# Usage: benches/peers/unbound-vs-heimdall.sh [ROUNDS] [SECONDS]
# HEIMDALL_BIN=path runs another heimdall binary; HEIMDALL_BASELINE_BIN=path
# adds a second heimdall (row "baseline", port 5355, same config) to every
# round, so two builds and Unbound are measured side by side in one run.
# HEIMDALL_SERVER_KEYS="udp_gso: false" adds lines to heimdall's `server:`
# section (both builds); DNSPERF_CLIENTS=N changes dnsperf's -c (default 8).
# Needs: dnsperf and unbound (apt-get install dnsperf unbound), a release
# build (cargo build --release -p heimdall -p heimdall-loadtest).
# Everything runs on 127.0.0.1 on high ports; only processes this script
# started are stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-10}
NAMES=1000
UPSTREAM_PORT=5300
HEIMDALL_PORT=5353
UNBOUND_PORT=5354
BASELINE_PORT=5355
WORK=$(mktemp -d /tmp/heimdall-peers.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

command -v dnsperf >/dev/null || { echo "dnsperf is not installed (apt-get install dnsperf)" >&2; exit 1; }
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)
[ -x "$UNBOUND" ] || { echo "unbound is not installed (apt-get install unbound)" >&2; exit 1; }
[ -x target/release/heimdall ] && [ -x target/release/heimdall-loadtest ] ||
    cargo build --release -p heimdall -p heimdall-loadtest

for i in $(seq 0 $((NAMES - 1))); do echo "host-$i.zone.test A"; done > "$WORK/queries.txt"

taskset -c 1 target/release/heimdall-loadtest upstream --listen 127.0.0.1:$UPSTREAM_PORT \
    --names $NAMES --ttl 86400 > "$WORK/upstream.log" 2>&1 &
PIDS+=($!)

SERVER_KEYS=$(printf '%s\n' "${HEIMDALL_SERVER_KEYS:-}" | sed '/^$/d; s/^/  /')
cat > "$WORK/heimdall.yaml" <<YAML
server:
  cores: [0]
  listen: ["127.0.0.1:$HEIMDALL_PORT"]
$SERVER_KEYS
control:
  enabled: false
upstream:
  servers: ["127.0.0.1:$UPSTREAM_PORT"]
log:
  level: warn
# The synthetic upstream is unsigned: validation would answer SERVFAIL.
dnssec:
  mode: off
YAML
cat > "$WORK/unbound.conf" <<CONF
server:
    interface: 127.0.0.1
    port: $UNBOUND_PORT
    num-threads: 1
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$WORK"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    so-reuseport: no
    msg-cache-size: 64m
    rrset-cache-size: 128m
    minimal-responses: yes
    qname-minimisation: no
    harden-referral-path: no
    module-config: "iterator"
    domain-insecure: "zone.test"
    local-zone: "test." nodefault
forward-zone:
    name: "zone.test"
    forward-addr: 127.0.0.1@$UPSTREAM_PORT
CONF

taskset -c 0 "${HEIMDALL_BIN:-target/release/heimdall}" --config "$WORK/heimdall.yaml" > "$WORK/heimdall.log" 2>&1 &
HEIMDALL_PID=$!
PIDS+=($HEIMDALL_PID)
taskset -c 0 "$UNBOUND" -d -c "$WORK/unbound.conf" > "$WORK/unbound.log" 2>&1 &
UNBOUND_PID=$!
PIDS+=($UNBOUND_PID)
if [ -n "${HEIMDALL_BASELINE_BIN:-}" ]; then
    sed "s/127.0.0.1:$HEIMDALL_PORT/127.0.0.1:$BASELINE_PORT/" "$WORK/heimdall.yaml" > "$WORK/baseline.yaml"
    # A build from before DNSSEC validation has no dnssec: section.
    "$HEIMDALL_BASELINE_BIN" default-config 2>/dev/null | grep -q '^dnssec:' \
        || sed -i '/^# The synthetic/d; /^dnssec:/,+1d' "$WORK/baseline.yaml"
    taskset -c 0 "$HEIMDALL_BASELINE_BIN" --config "$WORK/baseline.yaml" > "$WORK/baseline.log" 2>&1 &
    BASELINE_PID=$!
    PIDS+=($BASELINE_PID)
fi
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICKS=$(getconf CLK_TCK)

run() { # name port pid
    local name=$1 port=$2 pid=$3 before after out qps lost sent completed
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries.txt" -l "$SECONDS_PER_RUN" -c "${DNSPERF_CLIENTS:-8}" -q 500 -S 0 2>&1)
    after=$(cpu_ticks "$pid")
    qps=$(echo "$out" | awk '/Queries per second/ {print $4}')
    sent=$(echo "$out" | awk '/Queries sent/ {print $3}')
    completed=$(echo "$out" | awk '/Queries completed/ {print $3}')
    lost=$(echo "$out" | awk '/Queries lost/ {print $3}')
    awk -v n="$name" -v q="$qps" -v s="$sent" -v c="$completed" -v l="$lost" -v t=$((after - before)) -v hz="$TICKS" \
        'BEGIN { printf "%-9s %12.0f %10d %10d %8d %12.2f\n", n, q, s, c, l, (t / hz) * 1e6 / (c > 0 ? c : 1) }'
}

# Warm both caches with one pass over the names.
for port in $HEIMDALL_PORT $UNBOUND_PORT ${BASELINE_PID:+$BASELINE_PORT}; do
    taskset -c 1 dnsperf -s 127.0.0.1 -p $port -d "$WORK/queries.txt" -n 1 >/dev/null 2>&1
done

printf "%-9s %12s %10s %10s %8s %12s\n" server "qps" sent completed lost "cpu_us/query"
# The order turns around every round, so that neither build always runs
# first (or last) after the other's load: one fixed order showed the
# build in one place 2-7 % slower than in the other on this host.
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then
        run heimdall $HEIMDALL_PORT $HEIMDALL_PID
        run unbound $UNBOUND_PORT $UNBOUND_PID
        if [ -n "${BASELINE_PID:-}" ]; then run baseline $BASELINE_PORT "$BASELINE_PID"; fi
    else
        if [ -n "${BASELINE_PID:-}" ]; then run baseline $BASELINE_PORT "$BASELINE_PID"; fi
        run unbound $UNBOUND_PORT $UNBOUND_PID
        run heimdall $HEIMDALL_PORT $HEIMDALL_PID
    fi
done
