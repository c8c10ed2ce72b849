#!/usr/bin/env bash
# The system calls behind each cache hit at a paced rate: `just wake-syscalls`.
#
#   loadtest/scripts/wake-syscalls.sh [RATE [SECONDS]]     defaults: 1000 4
#
# Starts the release heimdall (HEIMDALL_BIN overrides it) on CPU 0 with one
# core, the synthetic upstream (1,000 names) and the load generator on
# CPU 1, warms every name, then offers RATE cache hits a second
# (heimdall-loadtest's open loop) and counts, with `perf stat -p` over
# SECONDS in the middle of the load, the server's io_uring_enter, recvmsg,
# recvmmsg, sendmmsg and sendto calls, its context switches, its
# task-clock, (where the kernel has the tracepoints) its io_uring
# requests, polls armed and task-work runs, and (where perf can place a
# uprobe) its clock reads (`probe_libc:heimdall_clock`). At a low rate each query is one wake-up, so the counts
# divided by RATE x SECONDS are the calls per wake-up (vendor/README.md,
# "the latency ring sleeps"). perf's tracepoints slow the server: the
# counts are exact, the task-clock is only for comparing two builds in one
# sitting. SERVER_YAML adds lines to the server's `server:` section (e.g.
# "udp_coalesce: 0s"), to count what one setting changes; CLOCK_PROBE=0
# leaves the clock-read uprobe out, which costs enough to saturate the
# server at 100k q/s and up. Needs root for perf. Listens on 127.0.0.1 high ports
# (BASE_PORT, default 5700, and the next two); stops only what it starts,
# by PID.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${1:-1000}
SECS=${2:-4}
BASE=${BASE_PORT:-5700}
HEIMDALL=${HEIMDALL_BIN:-target/release/heimdall}
LOADTEST=target/release/heimdall-loadtest
[ -x "$LOADTEST" ] && [ -x "$HEIMDALL" ] || cargo build --release --quiet -p heimdall -p heimdall-loadtest
command -v perf >/dev/null || { echo "wake-syscalls: needs perf (linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

taskset -c 1 "$LOADTEST" upstream --listen "127.0.0.1:$BASE" --names 1000 --ttl 86400 --cpus 1 \
    >"$work/upstream.log" 2>&1 &
pids+=($!)
server_keys=""
[ -z "${SERVER_YAML:-}" ] || server_keys=$(printf '%s\n' "$SERVER_YAML" | sed 's/^/  /')
printf 'server:\n  cores: [0]\n  listen: ["127.0.0.1:%d"]\n%s\nupstream:\n  servers: ["127.0.0.1:%d"]\ncontrol:\n  enabled: false\nlog:\n  level: warn\ndnssec:\n  mode: off\n' \
    "$((BASE + 1))" "$server_keys" "$BASE" >"$work/heimdall.yaml"
taskset -c 0 "$HEIMDALL" --config "$work/heimdall.yaml" >"$work/heimdall.log" 2>&1 &
server=$!
pids+=("$server")
sleep 0.5
for i in $(seq 0 999); do echo "host-$i.zone.test. A"; done >"$work/warm.txt"
taskset -c 1 "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --queries "$work/warm.txt" --edns off \
    --rate 20000 --duration 1s --warmup 0s --max-queries 2000 --quiet >/dev/null 2>&1 || true
taskset -c 1 "$LOADTEST" run --target "127.0.0.1:$((BASE + 1))" --workload hot --names 1000 --edns off \
    --duration "$((SECS + 2))s" --warmup 0s --cpus 1 --sockets 4 --rate "$RATE" --quiet \
    --json "$work/load.json" >/dev/null 2>&1 &
load=$!
pids+=("$load")
sleep 1
events=syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_recvmsg,syscalls:sys_enter_recvmmsg
events=$events,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_sendto,context-switches,task-clock
# The io_uring work behind each wake-up, where the kernel has the
# tracepoints: requests submitted, polls armed (a receive that found
# nothing waits on one), task work run (the receive completed on wake).
uring=io_uring:io_uring_submit_req,io_uring:io_uring_poll_arm,io_uring:io_uring_task_work_run
if perf list tracepoint 2>/dev/null | grep 'io_uring:io_uring_poll_arm' >/dev/null; then events=$events,$uring; fi
# Clock reads (vDSO, no system call), through a uprobe on libc's
# clock_gettime where perf can place one; removed again at exit.
libc=$(ldd "$HEIMDALL" 2>/dev/null | awk '/libc\.so/ {print $3; exit}')
if [ "${CLOCK_PROBE:-1}" != 0 ] && [ -n "$libc" ] && perf probe -q -x "$libc" --add heimdall_clock=clock_gettime 2>/dev/null; then
    events=$events,probe_libc:heimdall_clock
    trap 'perf probe -q --del probe_libc:heimdall_clock 2>/dev/null || true; cleanup' EXIT
fi
echo "wake-syscalls: $("$HEIMDALL" --version 2>/dev/null | head -1), $RATE q/s of cache hits, $SECS s counted ($((RATE * SECS)) queries offered)"
perf stat -x, -e "$events" -p "$server" -- sleep "$SECS" 2>&1 \
    | awk -F, -v q="$((RATE * SECS))" '$3 == "task-clock" { printf "%-40s %9s ms  %.1f us per query\n", $3, $1, $1 * 1000 / q; next }
        $3 != "" { printf "%-40s %12s  %.2f per query\n", $3, $1, $1 / q }'
wait "$load" || true
python3 -c "import json,sys; d=json.load(open(sys.argv[1]))['latency_us']; print(f\"latency p50 {d['p50']:.0f} us, p99 {d['p99']:.0f} us\")" \
    "$work/load.json"
