#!/usr/bin/env bash
# `just encrypted-bench`: encrypted DNS on one core, cache hits. heimdall's
# DNS over TLS against Unbound's (tls-port) and dnsdist's (addTLSLocal), and
# heimdall's DNS over HTTPS against dnsdist's (addDOHLocal) and Unbound's
# (https-port, when built with nghttp2). For each server and transport:
#
#   - pipelined load: heimdall-loadtest run --transport tls|https over
#     CONNECTIONS persistent connections with PIPELINE queries outstanding
#     on each (max mode), the hot workload (1,000 names, warmed first, so
#     every measured query is a cache hit): answered q/s, p50/p99 latency,
#     loss, and the server's CPU µs per answered query (utime + stime from
#     /proc/PID/stat before and after, as load-curve.sh does);
#   - handshakes: heimdall-loadtest run --handshakes (a new connection per
#     query, HS_CONNECTIONS at a time), once with --no-resumption (full
#     handshakes) and once with resumption (session tickets): handshakes/s,
#     how many resumed, and the server's CPU µs per handshake.
#
#   benches/peers/encrypted.sh [SECONDS]        default: 10 s per run
#
# Environment:
#   HEIMDALL_BIN     heimdall binary to measure  ($CARGO_TARGET_DIR or target)/release/heimdall
#   LOADTEST_BIN     the load generator          (the same directory)/heimdall-loadtest
#   SERVERS          servers, in this order      (heimdall unbound dnsdist)
#   TRANSPORTS       (tls https)
#   CONNECTIONS      persistent connections of the load runs    (100)
#   PIPELINE         queries outstanding per connection         (16)
#   RATE             pace the load runs at RATE q/s (open loop, latency from each
#                    query's scheduled send) instead of max mode; the handshake
#                    runs are unchanged. At a rate every server keeps up with, the
#                    CPU per query and the latency compare servers at equal load.
#   HS_CONNECTIONS   concurrent connect-query-close loops        (16)
#   SERVER_CPU       the servers' core                           (0)
#   CLIENT_CPU       the load generator's and the upstream's CPUs (1; a list such as
#                    1-3 gives the load generator one worker per CPU: TLS costs the client
#                    as much as the server, so give it more cores when you have them)
#   INSTALL / BUILD / OUT / BASE_PORT  as in load-curve.sh (OUT=target/encrypted,
#                    BASE_PORT=5440: the upstream, then three ports per server)
#
# Everything is on 127.0.0.1 on high ports, with a self-signed certificate
# made here (openssl, EC P-256, for dns.test and 127.0.0.1; the load
# generator runs with --tls-insecure); the servers forward only to the
# synthetic upstream there. heimdall's config sets dnssec.mode: off (the
# peers do not validate either). Each server is a fresh process for each
# transport, pinned with taskset, stopped by its PID (also on Ctrl-C or an
# error). The Markdown table goes to stdout and $OUT/report.md. With the
# defaults (5 server/transport pairs, 3 runs of 10 s each) it takes about
# 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
START_EPOCH=$(date +%s)
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$ROOT/benches/peers/lib.sh"

usage() { sed -n '2,42p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
case ${1:-} in -h|--help) usage ;; esac
SECS=${1:-${SECS:-10}}
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "SECONDS must be a positive integer, not '$SECS'" >&2; usage; }
ROUNDS=1
read -ra WANT <<<"${SERVERS:-heimdall unbound dnsdist}"
read -ra TRANSPORTS <<<"${TRANSPORTS:-tls https}"
CONNECTIONS=${CONNECTIONS:-100}
PIPELINE=${PIPELINE:-16}
RATE=${RATE:-}
[[ -z $RATE || $RATE =~ ^[1-9][0-9]*$ ]] || { echo "RATE must be a positive integer, not '$RATE'" >&2; exit 2; }
HS_CONNECTIONS=${HS_CONNECTIONS:-16}
# INSTALL OUT BASE_PORT SERVER_CPU CLIENT_CPU ... (lib.sh); OUT is created.
settings target/encrypted 5440 30
NAMES=1000
NAME=dns.test
# One load-generator worker per client CPU.
WORKERS=$(python3 -c 'import sys
n = 0
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    n += int(b or a) - int(a) + 1
print(n)' "$CLIENT_CPU")

WORK=$(mktemp -d /tmp/heimdall-encrypted.XXXXXX)
UPSTREAM_PID=
SERVER_PID=
trap cleanup EXIT   # lib.sh: stops SERVER_PID and UPSTREAM_PID, removes WORK
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- binaries
TARGET_DIR=${CARGO_TARGET_DIR:-target}
HEIMDALL=${HEIMDALL_BIN:-$TARGET_DIR/release/heimdall}
LOADTEST=${LOADTEST_BIN:-$TARGET_DIR/release/heimdall-loadtest}
build_binaries "$HEIMDALL" "$LOADTEST"
[ -x "$HEIMDALL" ] || { echo "no heimdall binary at $HEIMDALL" >&2; exit 1; }
command -v openssl >/dev/null || { echo "openssl is needed to make the certificate" >&2; exit 1; }

# ---------------------------------------------------------------- servers
# What each server can do: "server transport" pairs, and why one is left out.
PAIRS=()
NOTES=()
for s in "${WANT[@]}"; do
    case $s in
        heimdall) ;;
        unbound|dnsdist)
            if ! install_pkg "$s"; then
                NOTES+=("$s: not installed and could not be installed; skipped")
                continue
            fi ;;
        *) NOTES+=("$s: unknown server; skipped"); continue ;;
    esac
    for t in "${TRANSPORTS[@]}"; do
        case $s/$t in
            unbound/https)
                if ! "$(find_bin unbound)" -V 2>&1 | grep -q nghttp2; then
                    NOTES+=("unbound: built without libnghttp2, no DNS over HTTPS; skipped")
                    continue
                fi ;;
            dnsdist/tls|dnsdist/https)
                feature=dns-over-tls; [ "$t" = https ] && feature='dns-over-https'
                if ! "$(find_bin dnsdist)" --version 2>&1 | grep -q "$feature"; then
                    NOTES+=("dnsdist: this build has no $feature (dnsdist --version); skipped")
                    continue
                fi ;;
        esac
        PAIRS+=("$s $t")
    done
done
[ "${#PAIRS[@]}" -gt 0 ] || { echo "nothing to run" >&2; printf '%s\n' "${NOTES[@]}" >&2; exit 1; }
for n in "${NOTES[@]}"; do log "$n"; done
declare -A UDP_PORT=([heimdall]=$((BASE_PORT + 1)) [unbound]=$((BASE_PORT + 4)) [dnsdist]=$((BASE_PORT + 7)))

# A self-signed certificate for dns.test and 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
    -subj "/CN=$NAME" -addext "subjectAltName=DNS:$NAME,IP:127.0.0.1" \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
# Unbound's TLS session-ticket key (80 bytes: name, AES key, HMAC key).
head -c 80 /dev/urandom >"$WORK/ticket.key"

# Write SERVER's config into DIR, serving UDP on udp, DoT on udp+1, DoH on udp+2.
write_config() { # server dir
    local s=$1 dir=$2 udp=${UDP_PORT[$1]}
    local dot=$((udp + 1)) doh=$((udp + 2))
    case $s in
        heimdall) cat >"$dir/heimdall.yaml" <<EOF
server:
  cores: [0]
  listen: ["127.0.0.1:$udp"]
upstream:
  servers: ["127.0.0.1:$UPSTREAM_PORT"]
dnssec:
  mode: off
tls:
  listen: ["127.0.0.1:$dot"]
  https_listen: ["127.0.0.1:$doh"]
  certificate: $WORK/cert.pem
  key: $WORK/key.pem
control:
  enabled: false
log:
  level: warn
EOF
            ;;
        unbound)
            # unbound.conf.in's settings, plus TLS and HTTPS interfaces and
            # room for the connections (incoming-num-tcp is 10 by default).
            render unbound.conf.in "$dir/unbound.conf" "$udp" "$dir"
            python3 - "$dir/unbound.conf" <<PY
import sys
path = sys.argv[1]
extra = """    interface: 127.0.0.1@$dot
    interface: 127.0.0.1@$doh
    tls-port: $dot
    https-port: $doh
    http-endpoint: "/dns-query"
    tls-service-key: "$WORK/key.pem"
    tls-service-pem: "$WORK/cert.pem"
    tls-session-ticket-keys: "$WORK/ticket.key"
    incoming-num-tcp: $((CONNECTIONS + HS_CONNECTIONS + 64))
    tcp-idle-timeout: 30000
"""
text = open(path).read()
open(path, "w").write(text.replace("server:\n", "server:\n" + extra, 1))
PY
            ;;
        dnsdist)
            render dnsdist.conf.in "$dir/dnsdist.conf" "$udp" "$dir"
            cat >>"$dir/dnsdist.conf" <<EOF
addTLSLocal("127.0.0.1:$dot", "$WORK/cert.pem", "$WORK/key.pem")
addDOHLocal("127.0.0.1:$doh", "$WORK/cert.pem", "$WORK/key.pem", "/dns-query")
EOF
            ;;
    esac
}

# Start a fresh SERVER (SERVER_PID) pinned to SERVER_CPU; wait for a UDP answer.
start_server() { # server
    local s=$1 dir="$WORK/$1" log="$OUT/$1.log"
    rm -rf "$dir"; mkdir -p "$dir"
    write_config "$s" "$dir"
    case $s in
        heimdall) taskset -c "$SERVER_CPU" "$HEIMDALL" --config "$dir/heimdall.yaml" >"$log" 2>&1 & ;;
        unbound) taskset -c "$SERVER_CPU" "$(find_bin unbound)" -d -c "$dir/unbound.conf" >"$log" 2>&1 & ;;
        dnsdist) taskset -c "$SERVER_CPU" "$(find_bin dnsdist)" --supervised --disable-syslog \
                     -C "$dir/dnsdist.conf" >"$log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    wait_answer "$s" "$SERVER_PID" "${UDP_PORT[$s]}" "$log" && return 0
    stop_pid "$SERVER_PID"; SERVER_PID=
    return 1
}

# ---------------------------------------------------------------- setup
RUN_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine: $(nproc) CPUs, load average $LOAD_START; ${#PAIRS[@]} server/transport pairs; ${SECS}s per run"
# Also over TCP: dnsdist forwards what came over TLS or HTTPS over TCP.
taskset -c "$CLIENT_CPU" "$LOADTEST" upstream --listen "127.0.0.1:$UPSTREAM_PORT" --names $NAMES --ttl 86400 \
    --negative-ttl 3600 --tcp >"$OUT/upstream.log" 2>&1 &
UPSTREAM_PID=$!
wait_listening "$OUT/upstream.log"
for i in $(seq 0 $((NAMES - 1))); do echo "host-$i.zone.test. A"; done >"$WORK/names.txt"
cat "$WORK/names.txt" "$WORK/names.txt" >"$WORK/warm.txt"

RESULTS=$OUT/results.tsv
printf 'server\ttransport\trun\tticks\tjson\n' >"$RESULTS"
LT=(taskset -c "$CLIENT_CPU" "$LOADTEST" run --tls-insecure --tls-name "$NAME" --workload hot
    --names "$NAMES" --edns off --cpus "$CLIENT_CPU" --workers "$WORKERS" --quiet)

# ---------------------------------------------------------------- runs
n=0
for pair in "${PAIRS[@]}"; do
    read -r s t <<<"$pair"
    port=$(( ${UDP_PORT[$s]} + 1 )); [ "$t" = https ] && port=$(( ${UDP_PORT[$s]} + 2 ))
    n=$((n + 1))
    if ! start_server "$s"; then
        log "[$n/${#PAIRS[@]}] $s $t: did not start; no result"
        printf '%s\t%s\tstart\t0\t-\n' "$s" "$t" >>"$RESULTS"
        continue
    fi
    # Warm the cache over UDP: every name twice.
    taskset -c "$CLIENT_CPU" "$LOADTEST" run --target "127.0.0.1:${UDP_PORT[$s]}" --queries "$WORK/warm.txt" \
        --edns off --rate 20000 --duration 1s --warmup 0s --max-queries $((NAMES * 2)) --quiet \
        >/dev/null 2>&1 || true
    for run in load full resumed; do
        json=$OUT/$s-$t-$run.json
        case $run in
            load) args=(--transport "$t" --connections "$CONNECTIONS" --pipeline "$PIPELINE" --warmup 1s
                        ${RATE:+--rate "$RATE"}) ;;
            full) args=(--transport "$t" --handshakes --no-resumption --connections "$HS_CONNECTIONS" --warmup 0s) ;;
            resumed) args=(--transport "$t" --handshakes --connections "$HS_CONNECTIONS" --warmup 0s) ;;
        esac
        before=$(cpu_ticks "$SERVER_PID")
        "${LT[@]}" --target "127.0.0.1:$port" --duration "${SECS}s" "${args[@]}" --json "$json" \
            >"$json.out" 2>"$json.err" || true
        after=$(cpu_ticks "$SERVER_PID")
        printf '%s\t%s\t%s\t%s\t%s\n' "$s" "$t" "$run" $((after - before)) "$json" >>"$RESULTS"
        log "[$n/${#PAIRS[@]}] $s $t $run: $(grep -E '^  (rate|connections) ' "$json.out" | tr -s ' ' | tr '\n' ' ')"
    done
    stop_pid "$SERVER_PID"; SERVER_PID=
done
runs_done

# ---------------------------------------------------------------- report
python3 - "$RESULTS" "$TICKS" "$OUT/report.md" "$RUN_DATE" "$(nproc)" "$LOAD_START" "$LOAD_END" \
    "$CONNECTIONS" "$PIPELINE" "$HS_CONNECTIONS" "$SECS" "$SERVER_CPU" "$CLIENT_CPU" "${RATE:-max}" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
    "$(peer_version unbound 2>/dev/null || true)" "$(peer_version dnsdist 2>/dev/null || true)" \
    "${NOTES[@]}" <<'PY'
import json, sys
(results, ticks, out, date, nproc, load_start, load_end, conns, pipeline, hs_conns, secs,
 server_cpu, client_cpu, rate, commit, unbound, dnsdist, *notes) = sys.argv[1:]
ticks = int(ticks)
rows = {}
for line in open(results).read().splitlines()[1:]:
    server, transport, run, used, path = line.split("\t")
    try:
        report = json.load(open(path))
    except (OSError, ValueError):
        report = None
    rows.setdefault((server, transport), {})[run] = (int(used), report)

def cpu_us(used, count):
    return f"{used / ticks * 1e6 / count:.1f}" if count else "-"

lines = [
    f"Encrypted DNS, one server core (CPU {server_cpu}), cache hits; load generator and "
    f"upstream on CPU {client_cpu}. {date}, {nproc} CPUs, load {load_start} -> {load_end}; "
    f"heimdall {commit}; {unbound or 'Unbound ?'}; {dnsdist or 'dnsdist ?'}.",
    f"Load: {conns} persistent connections x {pipeline} pipelined queries, {secs} s, "
    + ("as fast as answered (max mode). " if rate == "max" else f"paced at {rate} q/s. ") +
    f"Handshakes: a new connection per query, {hs_conns} at a time, {secs} s each.",
    "",
    "| server | transport | answered q/s | CPU µs/query | p50 µs | p99 µs | loss | "
    "full hs/s | CPU µs/full hs | resumed hs/s | resumed of completed | CPU µs/resumed hs |",
    "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
]
for (server, transport), runs in rows.items():
    cells = [server, "DoT" if transport == "tls" else "DoH"]
    used, load = runs.get("load", (0, None))
    if load:
        answered_all = sum(p["answered"] for p in load["series"])
        cells += [f"{load['qps']['answered']:.0f}", cpu_us(used, answered_all),
                  f"{load['latency_us']['p50']:.0f}", f"{load['latency_us']['p99']:.0f}",
                  f"{load['loss'] * 100:.2f}%"]
    else:
        cells += ["-"] * 5
    for run in ("full", "resumed"):
        used, hs = runs.get(run, (0, None))
        if not hs:
            cells += ["-"] * (2 if run == "full" else 3)
            continue
        if run == "full":
            cells += [f"{hs['handshakes_per_s']:.0f}", cpu_us(used, hs["completed"])]
        else:
            cells += [f"{hs['resumed_per_s']:.0f}", f"{hs['resumed']}/{hs['completed']}",
                      cpu_us(used, hs["completed"])]
    lines.append("| " + " | ".join(cells) + " |")
if notes:
    lines.append("")
    lines += [f"- {note}" for note in notes]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text, end="")
PY
log "done in ${WALL}s; reports and logs in $OUT"
