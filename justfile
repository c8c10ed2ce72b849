# heimdall everyday recipes. Get `just` with: cargo install just

# Run the server on its embedded default configuration.
run *ARGS:
    cargo run --release -- {{ARGS}}

# The whole test suite, as CI runs it.
test:
    cargo test --workspace

# The operations tests (control endpoint, reload, serve-stale, prefetch,
# cache persistence, SIGHUP and kill -9 on the binary) against the release
# build: `cargo test --release` runs the release heimdall binary.
test-ops-release:
    cargo test --release -p heimdall-server --test operations
    cargo test --release -p heimdall --test cli

# Formatting and clippy, as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Criterion benchmarks (pass a filter, e.g. `just bench wire/`).
bench *FILTER:
    cargo bench -p heimdall-benches -- {{FILTER}}

# Fuzz one target (walk or roundtrip) for SECONDS; needs nightly and cargo-fuzz.
fuzz TARGET="walk" SECONDS="600":
    cd fuzz && cargo +nightly fuzz run {{TARGET}} -- -max_total_time={{SECONDS}}

# Build the .deb (cargo deb), install it with dpkg, check the files, run the
# installed binary as the unit would (a high port, a loopback upstream),
# reload it, then purge it. Needs root (deploy/test-deb.sh; skips otherwise).
deb-test:
    bash deploy/test-deb.sh

# Everything CI runs, locally.
ci:
    bash .ci/run

# Benchmark the release server against the synthetic upstream with the
# hot, cold and mixed workloads of heimdall-loadtest, and print one table
# (e.g. `just bench-server 10s`; see loadtest/scripts/bench-server.sh).
bench-server DURATION="5s" *ARGS:
    bash loadtest/scripts/bench-server.sh {{DURATION}} {{ARGS}}

# Stop the server after load ROUNDS times and count the stops that hang
# (see loadtest/scripts/stop-stress.sh).
stop-stress ROUNDS="30":
    bash loadtest/scripts/stop-stress.sh {{ROUNDS}}

# Fresh servers taking a burst of cache misses: counts the starts where a
# core stopped answering (the glommio park-path check, vendor/README.md).
start-burst STARTS="40":
    bash loadtest/scripts/start-burst.sh {{STARTS}}

# DNSSEC validation cost: cold answers, cold NXDOMAIN (NSEC3) and hits,
# heimdall validating / not validating against Unbound's validator on one
# core, NSD serving a zone signed with ldns-signzone (markdown to stdout;
# see benches/peers/dnssec-cost.sh).
dnssec-cost SECS="5" ROUNDS="3":
    SECS={{SECS}} ROUNDS={{ROUNDS}} bash benches/peers/dnssec-cost.sh

# Distinct answers held by 2 cores, name steering against flow + hints.
capacity NAMES="2000000" SHARD="16MiB":
    bash loadtest/scripts/capacity.sh {{NAMES}} {{SHARD}}

# One very popular name on 2 cores, hot-name spreading off against on
# (e.g. `just hot-name 3 5s`; see loadtest/scripts/hot-name.sh).
hot-name ROUNDS="3" DURATION="5s":
    bash loadtest/scripts/hot-name.sh {{ROUNDS}} {{DURATION}}

# What an idle server costs: CPU ticks and wake-ups over SECONDS with no
# traffic (e.g. `just idle-cost 60`; see loadtest/scripts/idle-cost.sh).
idle-cost SECONDS="60" CORES="[0, 1]":
    bash loadtest/scripts/idle-cost.sh {{SECONDS}} "{{CORES}}"

# The system calls per cache hit at a paced rate, counted with perf
# (e.g. `just wake-syscalls 1000`; see loadtest/scripts/wake-syscalls.sh).
wake-syscalls RATE="1000" SECONDS="4":
    bash loadtest/scripts/wake-syscalls.sh {{RATE}} {{SECONDS}}

# Cache-miss A/B of this build against a previous one, same run, builds
# alternating (e.g. `HEIMDALL_BASELINE_BIN=../old/target/release/heimdall
# just cold-ab 5 5s`; WITH_DNSDIST=1 adds dnsdist, CACHE_KEYS="shard_size:
# 8MiB" measures a full shard's churn; see loadtest/scripts/cold-ab.sh).
cold-ab ROUNDS="5" DURATION="5s":
    bash loadtest/scripts/cold-ab.sh {{ROUNDS}} {{DURATION}}

# Compare heimdall with Unbound, dnsdist, PowerDNS Recursor and Knot Resolver,
# each on one core, with heimdall-loadtest and dnsperf on the hot and mixed
# workloads; installs the peers from Debian (root) and rewrites the peers
# section of docs/BENCHMARKS.md and docs/peers.svg (see benches/peers/README.md).
compare-peers ROUNDS="3" SECONDS="10":
    bash benches/peers/compare.sh {{ROUNDS}} {{SECONDS}}

# heimdall against Unbound on one core under dnsperf, cache hits (the
# comparison in docs/BENCHMARKS.md); a third argument, the path of another
# heimdall build, adds it to every round, for A/B tests.
compare-unbound ROUNDS="5" SECONDS="10" BASELINE="":
    HEIMDALL_BASELINE_BIN="{{BASELINE}}" bash benches/peers/unbound-vs-heimdall.sh {{ROUNDS}} {{SECONDS}}

# Cache-hit CPU per query and p50/p99/p99.9 latency against the offered load
# (1k to 100k q/s open loop, and saturation) for heimdall, Unbound, dnsdist
# and the batched reflector, each alone on CPU 0 (defaults: 2 rounds of 5 s,
# rates 1000 5000 20000 50000 100000 max; HEIMDALL_BASELINE_BIN=path adds
# another build; e.g. `just load-curve --write`, `just load-curve 1 3 1000 max`;
# see benches/peers/README.md). --write rewrites the "Load curve" section of
# docs/BENCHMARKS.md and docs/load-curve.svg.
# Load curve: [--write] [ROUNDS [SECONDS [RATE...]]], medians printed as a table.
load-curve *ARGS:
    bash benches/peers/load-curve.sh {{ARGS}}

# What waiting costs: heimdall against two reflectors that do no DNS work,
# one waiting as heimdall does (glommio) and one as Unbound does (epoll),
# and Unbound, at paced rates (see benches/peers/README.md).
wake-cost ROUNDS="4" SECONDS="5":
    SERVERS="heimdall wake-glommio wake-epoll unbound" bash benches/peers/load-curve.sh {{ROUNDS}} {{SECONDS}} 1000 5000 20000 50000 100000

# Encrypted DNS on one core, cache hits: heimdall's DoT against Unbound's and
# dnsdist's, its DoH against dnsdist's and Unbound's (100 persistent
# connections, 16 pipelined queries each), then TLS handshakes per second,
# full and resumed; server CPU per query and per handshake. Prints a Markdown
# table (see benches/peers/encrypted.sh and docs/BENCHMARKS.md).
encrypted-bench SECONDS="10":
    bash benches/peers/encrypted.sh {{SECONDS}}

# Latency and server CPU per query for several `server.udp_coalesce` values
# at fixed offered rates (the table in docs/TUNING.md).
coalesce-latency ROUNDS="2" SECONDS="5" PAUSES="0s 50us 200us" RATES="1000 10000 50000":
    bash benches/peers/coalesce-latency.sh {{ROUNDS}} {{SECONDS}} "{{PAUSES}}" "{{RATES}}"
