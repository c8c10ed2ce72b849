#!/usr/bin/env bash
# What DNSSEC validation costs heimdall, next to Unbound's validator on the
# same core and the same signed zone:
#
#   benches/peers/dnssec-cost.sh            (or: just dnssec-cost)
#
# NSD serves zone.test. (ZONE_NAMES names host-i A, signed with
# ldns-signzone: ECDSA P-256 KSK and ZSK, NSEC3 without salt and with 0
# iterations, RFC 9276) on NSD_CPU. Each server forwards to it on
# SERVER_CPU, with the zone's DS as its only trust anchor:
#
#   heimdall-validate  dnssec.mode: validate
#   heimdall-off       dnssec.mode: off (the same build, nothing validated)
#   unbound-validate   Unbound, module-config "validator iterator"
#
# and heimdall-loadtest (CLIENT_CPU) measures, on a fresh server whose
# zone keys are already fetched (one query first), three workloads:
#
#   cold      every query a name not asked before (a cache miss: one
#             upstream query and, validating, one RRSIG check)
#   nxdomain  every query a name that does not exist (NXDOMAIN with its
#             NSEC3 closest-encloser proof: hashing and three RRSIG checks)
#   hot       1000 names asked again and again (cache hits: validation
#             must cost nothing here)
#
# for SECS seconds each, ROUNDS rounds (servers in a rotating order). The
# server's CPU time over the run divided by the answers is the cost per
# answer; "validation cost" is heimdall-validate's minus heimdall-off's.
# The results go to stdout as a markdown table (medians over the rounds);
# logs and the JSON reports stay in OUT.
#
# By default each run is closed-loop at saturation (a fixed window of
# LT_WINDOW queries outstanding): the CPU per answer at the most the server
# can do. RATE=N paces the client instead (heimdall-loadtest --rate N, open
# loop: every server gets the same offered load, and latency is measured
# from each query's scheduled time), which compares the CPU per answer and
# the p50/p99 latency at a load all three servers sustain; pick N below the
# slowest server's saturation (the unpaced table says where that is),
# or its runs show loss rather than cost.
#
# Environment: SECS (5), ROUNDS (3), RATE (unset: saturation; N: N
# queries/s offered), ZONE_NAMES (300000: more than a cold
# run asks), SERVER_CPU (0), CLIENT_CPU (1), NSD_CPU (2, or CLIENT_CPU
# on a machine with 2 CPUs), BASE_PORT (5480),
# OUT (/tmp/heimdall-dnssec-cost), HEIMDALL_BIN / LOADTEST_BIN (the
# release builds; BUILD=0 skips cargo when both exist), INSTALL=0 (do not
# apt-get install missing unbound, nsd or ldnsutils).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# shellcheck source=benches/peers/lib.sh
source benches/peers/lib.sh
settings /tmp/heimdall-dnssec-cost 5480 30
SECS=${SECS:-5}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-}
if [ -n "$RATE" ] && ! [[ "$RATE" =~ ^[1-9][0-9]*$ ]]; then
    echo "RATE must be a positive number of queries per second, not '$RATE'" >&2
    exit 2
fi
# The load of a measured run: paced at RATE, or a window at saturation.
if [ -n "$RATE" ]; then
    LOAD=(--rate "$RATE")
    LOAD_NOTE="paced at $RATE queries/s offered"
else
    LOAD=(--window "$LT_WINDOW")
    LOAD_NOTE="closed loop at saturation, $LT_WINDOW queries outstanding"
fi
ZONE_NAMES=${ZONE_NAMES:-300000}
# Distinct NXDOMAIN names (the loadtest builds at most 2M): none asked twice
# in a run below 1M/SECS queries per second.
NX_NAMES=${NX_NAMES:-1000000}
# NSD on a CPU of its own when there is one, else beside the client.
NSD_CPU=${NSD_CPU:-$(( $(nproc) > 2 ? 2 : CLIENT_CPU ))}
HEIMDALL=${HEIMDALL_BIN:-target/release/heimdall}
LOADTEST=${LOADTEST_BIN:-target/release/heimdall-loadtest}
NSD_PORT=$BASE_PORT
SERVER_PORT=$((BASE_PORT + 1))

PKG[nsd]=nsd
BIN[nsd]=nsd
PKG[ldns]=ldnsutils
BIN[ldns]=ldns-signzone
for peer in unbound nsd ldns; do
    install_pkg "$peer" || { echo "needs ${PKG[$peer]} (${BIN[$peer]})" >&2; exit 1; }
done
build_binaries "$HEIMDALL" "$LOADTEST"

WORK=$(mktemp -d "$OUT/run.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# ------------------------------------------------------------- the zone
log "signing zone.test. ($ZONE_NAMES names, NSEC3, ECDSA P-256) in $WORK"
python3 - "$WORK/zone.test.zone" "$ZONE_NAMES" <<'PY'
import sys
path, names = sys.argv[1], int(sys.argv[2])
with open(path, "w") as out:
    out.write("$TTL 86400\n")
    out.write("zone.test. IN SOA ns1.zone.test. hostmaster.zone.test. 1 3600 600 864000 3600\n")
    out.write("zone.test. IN NS ns1.zone.test.\nns1.zone.test. IN A 127.0.0.1\n")
    for i in range(names):
        out.write(f"host-{i}.zone.test. IN A 192.0.{(i >> 8) & 255}.{i & 255}\n")
PY
(
    cd "$WORK"
    ksk=$(ldns-keygen -a ECDSAP256SHA256 -k zone.test)
    zsk=$(ldns-keygen -a ECDSAP256SHA256 zone.test)
    ldns-signzone -n -t 0 -f zone.test.signed zone.test.zone "$ksk" "$zsk"
    cp "$ksk.ds" anchor.ds
)

# ------------------------------------------------------------- NSD
cat >"$WORK/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $NSD_PORT
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$WORK"
  database: ""
  zonelistfile: "$WORK/zone.list"
  xfrdfile: "$WORK/xfrd.state"
  xfrdir: "$WORK"
  pidfile: "$WORK/nsd.pid"
  logfile: "$WORK/nsd.log"
  verbosity: 1
  # NSD's response rate limiting (on by default in Debian's build, 200
  # answers/s per category) would turn the NXDOMAIN run into a measure of
  # it: slipped (TC) and dropped answers, upstream timeouts.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: "zone.test."
  zonefile: "zone.test.signed"
CONF
taskset -c "$NSD_CPU" "$(find_bin nsd)" -d -c "$WORK/nsd.conf" >"$WORK/nsd.out" 2>&1 &
NSD_PID=$!
PIDS+=("$NSD_PID")
wait_answer nsd "$NSD_PID" "$NSD_PORT" "$WORK/nsd.log"

# ------------------------------------------------------------- servers
heimdall_yaml() { # mode
    cat <<YAML
server:
  cores: [$SERVER_CPU]
  listen: ["127.0.0.1:$SERVER_PORT"]
control:
  enabled: false
upstream:
  servers: ["127.0.0.1:$NSD_PORT"]
log:
  level: warn
dnssec:
  mode: $1
  trust_anchors: ["$WORK/anchor.ds"]
YAML
}
heimdall_yaml validate >"$WORK/heimdall-validate.yaml"
heimdall_yaml off >"$WORK/heimdall-off.yaml"
cat >"$WORK/unbound.conf" <<CONF
# One thread, validating with the zone's DS, forwarding to NSD; caches as
# in conf/unbound.conf.in. aggressive-nsec off, as heimdall's default.
server:
    interface: 127.0.0.1
    port: $SERVER_PORT
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
    so-rcvbuf: 4m
    so-sndbuf: 4m
    msg-cache-size: 64m
    rrset-cache-size: 128m
    minimal-responses: yes
    qname-minimisation: no
    harden-referral-path: no
    aggressive-nsec: no
    module-config: "validator iterator"
    trust-anchor-file: "$WORK/anchor.ds"
    local-zone: "test." nodefault
forward-zone:
    name: "."
    forward-addr: 127.0.0.1@$NSD_PORT
CONF

start_server() { # name -> SERVER_PID
    case $1 in
        heimdall-*)
            taskset -c "$SERVER_CPU" "$HEIMDALL" --config "$WORK/$1.yaml" >"$WORK/$1.log" 2>&1 & ;;
        unbound-validate)
            taskset -c "$SERVER_CPU" "$(find_bin unbound)" -d -c "$WORK/unbound.conf" >"$WORK/$1.log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    # One answer: the zone's DNSKEY is fetched and validated before the
    # measured run.
    wait_answer "$1" "$SERVER_PID" "$SERVER_PORT" "$WORK/$1.log"
}

stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
}

# run NAME WORKLOAD ROUND: one measured run on a fresh server; appends
# "name workload answered qps us_per_answer servfail p50_us p99_us" to
# $WORK/results.
run() {
    local name=$1 workload=$2 round=$3 before after json args
    json="$WORK/$name-$workload-$round.json"
    case $workload in
        cold) args=(--workload cold --zone-names "$ZONE_NAMES") ;;
        nxdomain) args=(--workload nxdomain --names "$NX_NAMES") ;;
        hot) args=(--workload hot --names 1000) ;;
    esac
    start_server "$name"
    if [ "$workload" = hot ]; then
        # Fill the cache first.
        taskset -c "$CLIENT_CPU" "$LOADTEST" run --target "127.0.0.1:$SERVER_PORT" "${args[@]}" \
            --duration 1s --warmup 0s --cpus "$CLIENT_CPU" --quiet >/dev/null 2>&1 || true
    fi
    before=$(cpu_ticks "$SERVER_PID")
    taskset -c "$CLIENT_CPU" "$LOADTEST" run --target "127.0.0.1:$SERVER_PORT" "${args[@]}" \
        --seed "$((round * 7919))" --duration "${SECS}s" --warmup 0s --cpus "$CLIENT_CPU" \
        --sockets "$LT_SOCKETS" "${LOAD[@]}" --quiet --json "$json" >/dev/null 2>&1 || true
    after=$(cpu_ticks "$SERVER_PID")
    stop_server
    python3 - "$json" "$name" "$workload" "$((after - before))" "$TICKS" >>"$WORK/results" <<'PY'
import json, sys
path, name, workload, ticks, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
try:
    report = json.load(open(path))
except (OSError, ValueError):
    print(name, workload, 0, 0, 0, 0, 0, 0)
    sys.exit(0)
answered = report["counts"]["answered"]
us = ticks / hz * 1e6 / answered if answered else 0
servfail = report.get("rcodes", {}).get("SERVFAIL", 0)
latency = report.get("latency_us", {})
print(name, workload, answered, round(report["qps"]["answered"]), round(us, 2), servfail,
      round(latency.get("p50", 0), 1), round(latency.get("p99", 0), 1))
PY
}

SERVERS=(heimdall-validate heimdall-off unbound-validate)
log "$ROUNDS rounds of ${SECS}s, $LOAD_NOTE: ${SERVERS[*]} x cold nxdomain hot (server CPU $SERVER_CPU, client CPU $CLIENT_CPU, NSD CPU $NSD_CPU)"
: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
    rotate_servers "$round"
    for name in "${order[@]}"; do
        for workload in cold nxdomain hot; do
            run "$name" "$workload" "$round"
        done
    done
done

python3 - "$WORK/results" "$(peer_version unbound)" "$SECS" "$ROUNDS" "$ZONE_NAMES" "$LOAD_NOTE" <<'PY'
import statistics, sys
path, unbound, secs, rounds, names, load = sys.argv[1:7]
rows = {}
for line in open(path):
    name, workload, answered, qps, us, servfail, p50, p99 = line.split()
    rows.setdefault((name, workload), []).append(
        (int(answered), int(qps), float(us), int(servfail), float(p50), float(p99)))
med = lambda values: statistics.median(values) if values else 0
print(f"DNSSEC validation cost: {rounds} rounds of {secs}s, {load}, medians; zone.test. with "
      f"{names} names, NSEC3 (0 iterations), ECDSA P-256, served by NSD; {unbound}\n")
print("| server | workload | answers/s | server CPU us/answer | p50 us | p99 us | SERVFAIL |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for workload in ("cold", "nxdomain", "hot"):
    for name in ("heimdall-validate", "heimdall-off", "unbound-validate"):
        got = rows.get((name, workload), [])
        print(f"| {name} | {workload} | {med([r[1] for r in got]):.0f} | "
              f"{med([r[2] for r in got]):.2f} | {med([r[4] for r in got]):.0f} | "
              f"{med([r[5] for r in got]):.0f} | {sum(r[3] for r in got)} |")
print("\n| workload | heimdall validation cost us/answer (validate - off) | unbound-validate / heimdall-validate CPU |")
print("| --- | ---: | ---: |")
for workload in ("cold", "nxdomain", "hot"):
    cpu = {name: med([r[2] for r in rows.get((name, workload), [])])
           for name in ("heimdall-validate", "heimdall-off", "unbound-validate")}
    ratio = cpu["unbound-validate"] / cpu["heimdall-validate"] if cpu["heimdall-validate"] else 0
    print(f"| {workload} | {cpu['heimdall-validate'] - cpu['heimdall-off']:.2f} | {ratio:.2f} |")
PY
echo "(logs and JSON reports: $WORK)" >&2
