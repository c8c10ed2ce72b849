//! The configuration reference: every key of the schema with its type,
//! default, valid values, meaning and reload behaviour, and
//! [`reload_behaviour`], the rule a hot reload follows.
//!
//! `docs/CONFIGURATION.md` is [`configuration_reference`]'s output. Tests
//! keep both from drifting: the file must equal the rendered text, the
//! table must name every key the schema writes (in schema order) and no
//! other, defaults are rendered from the schema's own defaults, and each
//! documented range and enum is checked against validation. After changing
//! the schema, run `HEIMDALL_BLESS=1 cargo test -p heimdall-config` to
//! rewrite the file.

use std::fmt::Write as _;
use std::time::Duration;

use serde_yaml::Value;

use crate::config::limits;
use crate::raw::{RawConfig, RawListFile, RawZone};
use crate::units::{format_duration, format_size};

/// What a hot reload (SIGHUP or `POST /reload`) does with a changed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadBehaviour {
    /// The new value takes effect on reload.
    Applied,
    /// The running value stays until heimdall is restarted.
    Restart,
}

impl ReloadBehaviour {
    /// How the reference writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadBehaviour::Applied => "applied",
            ReloadBehaviour::Restart => "restart",
        }
    }
}

/// The sections and keys a hot reload does not change: they shape the
/// runtime itself (sockets, cores, channels, the control endpoint, the
/// logger, the cache file). Every other key is applied.
pub const RESTART_ONLY_KEYS: &[&str] =
    &["server", "hints", "tcp", "control", "log", "cache.persist"];

/// Whether a reload applies a change to `key_path` (`upstream.timeout`,
/// `local.zones[0].file`, or a whole section such as `cache`), or the
/// running value stays until a restart: [`ReloadBehaviour::Restart`] for
/// the keys in [`RESTART_ONLY_KEYS`] and everything below them,
/// [`ReloadBehaviour::Applied`] for all others. A section is `Applied`
/// when any of its keys is (`cache`, of which only `cache.persist` needs a
/// restart).
pub fn reload_behaviour(key_path: &str) -> ReloadBehaviour {
    let at_or_below = |key: &str| {
        key_path
            .strip_prefix(key)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    if RESTART_ONLY_KEYS.iter().any(|key| at_or_below(key)) {
        ReloadBehaviour::Restart
    } else {
        ReloadBehaviour::Applied
    }
}

/// A key's type, as the reference names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Type {
    Bool,
    Integer,
    Size,
    Duration,
    /// One of these words.
    Enum(&'static [&'static str]),
    /// Anything else, described.
    Other(&'static str),
}

impl Type {
    fn describe(self) -> String {
        match self {
            Type::Bool => "bool".to_string(),
            Type::Integer => "integer".to_string(),
            Type::Size => "size".to_string(),
            Type::Duration => "duration".to_string(),
            Type::Enum(_) => "enum".to_string(),
            Type::Other(text) => text.to_string(),
        }
    }
}

/// A key's valid values.
#[derive(Debug, Clone)]
pub(crate) enum Valid {
    /// Whole numbers `min..=max`.
    Int(u64, u64),
    /// Sizes `min..=max` bytes, optionally a multiple of a size.
    Size(u64, u64, Option<u64>),
    /// Durations `min..=max`; `true` when only whole seconds are valid.
    Duration(Duration, Duration, bool),
    /// Described in words (rules across keys, syntax).
    Text(&'static str),
}

impl Valid {
    fn describe(&self, ty: Type) -> String {
        if let Type::Enum(values) = ty {
            let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
            return values.join(", ");
        }
        match self {
            Valid::Int(min, max) => format!("{min} to {max}"),
            Valid::Size(min, max, multiple) => {
                let mut text = format!("{} to {}", format_size(*min), format_size(*max));
                if let Some(multiple) = multiple {
                    text.push_str(&format!(", a multiple of {}", format_size(*multiple)));
                }
                text
            }
            Valid::Duration(min, max, whole) => {
                let mut text = format!("{} to {}", format_duration(*min), format_duration(*max));
                if *whole {
                    text.push_str(", whole seconds");
                }
                text
            }
            Valid::Text(text) => text.to_string(),
        }
    }
}

/// One documented key.
#[derive(Debug, Clone)]
pub(crate) struct KeyDoc {
    /// The key path; `[]` stands for every item of a list.
    pub(crate) path: &'static str,
    pub(crate) ty: Type,
    pub(crate) valid: Valid,
    /// A key of a list item that has no default.
    pub(crate) required: bool,
    pub(crate) text: &'static str,
}

fn key(path: &'static str, ty: Type, valid: Valid, text: &'static str) -> KeyDoc {
    KeyDoc {
        path,
        ty,
        valid,
        required: false,
        text,
    }
}

fn required(path: &'static str, ty: Type, valid: Valid, text: &'static str) -> KeyDoc {
    KeyDoc {
        required: true,
        ..key(path, ty, valid, text)
    }
}

fn int(max: usize) -> u64 {
    u64::try_from(max).unwrap_or(u64::MAX)
}

const ANY: Valid = Valid::Text("any");

/// The sections in schema order, each with a short introduction.
pub(crate) const SECTIONS: &[(&str, &str)] = &[
    ("server", "What heimdall runs on and listens on."),
    (
        "cache",
        "Each core's cache shard. A reload applies every key but `persist`; cached answers \
         survive it (a smaller `shard_size` evicts down to the new size).",
    ),
    ("hints", "Cache-fill hints between cores."),
    ("upstream", "Where and how queries are forwarded."),
    ("tcp", "DNS over TCP from clients (RFC 7766)."),
    (
        "local",
        "Local authoritative data, answered before the blocklist and the cache. A reload \
         re-reads the zone files; cached answers for names at or below the old or new local \
         data are dropped.",
    ),
    (
        "blocklist",
        "Names answered with a block reply instead of being resolved. A reload re-reads the \
         list files; cached answers for names the new list blocks are dropped.",
    ),
    (
        "acl",
        "Which clients may use the resolver. Loopback and private networks (10.0.0.0/8, \
         172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, link-local, fc00::/7) are allowed by \
         default; `deny` wins over `allow`.",
    ),
    ("rate_limit", "Token buckets per client prefix."),
    (
        "control",
        "The HTTP control endpoint: `GET /metrics` (Prometheus), `GET /health`, `GET /stats` \
         (JSON), `POST /cache/flush[?name=...]`, `POST /reload`. It has no authentication: \
         keep it on loopback or a management network.",
    ),
    ("log", "Logging."),
];

/// Every key of the schema, in the order the schema writes them.
pub(crate) fn keys() -> Vec<KeyDoc> {
    use Type::{Bool, Enum, Integer, Other, Size};
    let ttl = |min: Duration| Valid::Duration(min, limits::TTL_MAX, true);
    vec![
        // server
        key(
            "server.cores",
            Other("`auto`, a count, or a list of CPU ids"),
            Valid::Text(
                "`auto`; a count of at least 1 and at most the number of CPUs the process may \
                 use; or a non-empty list of distinct CPU ids, each one the process may use",
            ),
            "CPU cores to run on, one pinned executor each. `auto` is every CPU in the \
             process's affinity mask (as set by `taskset`, cgroup cpusets or systemd's \
             `CPUAffinity=`); a count N is the first N CPUs of the mask; a list such as \
             `[0, 2, 4]` pins one executor to each CPU named, in that order. Checked when the \
             server starts: `CPU 5 is not available to this process (allowed: 0-3)`.",
        ),
        key(
            "server.listen",
            Other("list of addresses"),
            Valid::Text(
                "at least one `IP:PORT`; no two the same, none overlapping a wildcard address \
                 of its family on the same port, no port 0",
            ),
            "Addresses to serve DNS on (UDP and TCP), each with its port. Every core opens its \
             own socket on each (SO_REUSEPORT). Quote IPv6 addresses: `\"[::1]:53\"`.",
        ),
        key(
            "server.io_memory",
            Size,
            Valid::Size(
                int(limits::IO_MEMORY_MIN),
                int(limits::IO_MEMORY_MAX),
                Some(int(limits::IO_MEMORY_ALIGN)),
            ),
            "io_uring buffer memory per core (glommio). It is pinned and counts against \
             RLIMIT_MEMLOCK, so keep it small where that limit is 8 MiB.",
        ),
        key(
            "server.udp_recv_batch",
            Integer,
            Valid::Int(1, int(limits::UDP_RECV_BATCH_MAX)),
            "Datagrams read (recvmmsg) or written (sendmmsg) per system call.",
        ),
        key(
            "server.udp_gso",
            Bool,
            ANY,
            "Send the replies of one batch that go to the same client with the same length as \
             one UDP GSO send (Linux 4.18+): the IP stack and the device are walked once for \
             all of them. Used only where the kernel supports it; a path that refuses it falls \
             back to one datagram per reply.",
        ),
        key(
            "server.udp_coalesce",
            Type::Duration,
            Valid::Duration(Duration::ZERO, limits::UDP_COALESCE_MAX, false),
            "Under load (a read of the socket found queries already queued) and once the socket \
             is empty, wait this long before reading again instead of waking for the next \
             datagram, for as long as each wait finds queries: more of them then share each \
             wake-up, system call and GSO send (about half the CPU per query at 10k-50k \
             queries/s on the benchmark machine, docs/TUNING.md), for at most this much added \
             latency. 0 turns it off.",
        ),
        // cache
        key(
            "cache.shard_size",
            Size,
            Valid::Size(
                int(limits::SHARD_SIZE_MIN),
                int(limits::SHARD_SIZE_MAX),
                None,
            ),
            "Cache memory per core; the total is this times the number of cores.",
        ),
        key(
            "cache.min_ttl",
            Type::Duration,
            Valid::Text("0s to `cache.max_ttl`, whole seconds"),
            "Floor for the TTL of cached positive answers.",
        ),
        key(
            "cache.max_ttl",
            Type::Duration,
            ttl(Duration::ZERO),
            "Ceiling for the TTL of cached positive answers (at most the largest DNS TTL, \
             RFC 2181).",
        ),
        key(
            "cache.negative_max_ttl",
            Type::Duration,
            ttl(Duration::ZERO),
            "Ceiling for the TTL of cached NXDOMAIN and NODATA answers (RFC 2308).",
        ),
        key(
            "cache.servfail_ttl",
            Type::Duration,
            Valid::Duration(limits::SERVFAIL_TTL_MIN, limits::SERVFAIL_TTL_MAX, true),
            "How long an upstream failure (SERVFAIL, or every upstream timing out) is \
             remembered, so that a dead upstream is not hammered (RFC 9520).",
        ),
        key(
            "cache.stale_max_age",
            Type::Duration,
            Valid::Duration(Duration::ZERO, limits::STALE_MAX_AGE_MAX, true),
            "Serve-stale (RFC 8767): when every upstream fails, or a client has waited \
             `stale_client_timeout`, answer from expired data up to this old, with TTL 30 and \
             Extended DNS Error 3 (Stale Answer). `0s` turns it off.",
        ),
        key(
            "cache.stale_client_timeout",
            Type::Duration,
            Valid::Duration(
                limits::STALE_CLIENT_TIMEOUT_MIN,
                limits::STALE_CLIENT_TIMEOUT_MAX,
                false,
            ),
            "How long a client waits for upstream before stale data is used, when there is any.",
        ),
        key(
            "cache.prefetch_threshold",
            Integer,
            Valid::Int(0, u64::from(limits::PREFETCH_THRESHOLD_MAX)),
            "Prefetch: a hit on an answer with at most this percent of its lifetime left (and \
             hit at least `prefetch_min_hits` times) refreshes it upstream in the background; \
             the client is answered from the cache at once. `0` turns prefetch off.",
        ),
        key(
            "cache.prefetch_min_hits",
            Integer,
            Valid::Int(1, u64::from(limits::PREFETCH_MIN_HITS_MAX)),
            "Hits an answer needs before it is prefetched.",
        ),
        key(
            "cache.persist",
            Other("file path"),
            Valid::Text("a file path; leave the key out to keep no file"),
            "A file the cache is saved to at shutdown (atomically: a temporary file, then \
             rename) and loaded from at start, with the time heimdall was down taken off every \
             TTL. A corrupt or foreign file is ignored with a warning.",
        ),
        // hints
        key(
            "hints.enabled",
            Bool,
            ANY,
            "When a core stores an answer from upstream, tell the other cores, so that they can \
             answer the same question without asking upstream again.",
        ),
        key(
            "hints.channel_capacity",
            Integer,
            Valid::Int(1, int(limits::HINT_CHANNEL_CAPACITY_MAX)),
            "Hints queued between two cores before new ones are dropped (and counted).",
        ),
        // upstream
        key(
            "upstream.servers",
            Other("list of addresses"),
            Valid::Text(
                "at least one (in a config file); no two the same, none of heimdall's own \
                 listen addresses",
            ),
            "Servers to forward to: `9.9.9.9`, `9.9.9.9:53` or `\"[2620:fe::fe]:53\"`; the \
             port is 53 unless given. A link-local IPv6 address needs its interface: \
             `fe80::1%2` or `fe80::1%eth0`. Empty in the default because heimdall fills it from \
             the nameserver lines of /etc/resolv.conf when it runs without a config file.",
        ),
        key(
            "upstream.tcp_only",
            Other("list of addresses"),
            Valid::Text("each also in `upstream.servers`; no two the same"),
            "Servers to ask over TCP only, never over UDP. Others are asked over UDP, and over \
             TCP when an answer is truncated.",
        ),
        key(
            "upstream.strategy",
            Enum(&["ordered", "round_robin", "fastest"]),
            ANY,
            "How a server is picked for each query: `ordered`, the first server that answers \
             (the next one on failure); `round_robin`, each query starts at the next server in \
             turn; `fastest`, the server with the lowest smoothed round-trip time.",
        ),
        key(
            "upstream.timeout",
            Type::Duration,
            Valid::Duration(
                limits::UPSTREAM_TIMEOUT_MIN,
                limits::UPSTREAM_TIMEOUT_MAX,
                false,
            ),
            "How long to wait for one server before the next attempt. A plain number is \
             seconds: write `800ms` for milliseconds.",
        ),
        key(
            "upstream.attempts",
            Integer,
            Valid::Int(1, u64::from(limits::UPSTREAM_ATTEMPTS_MAX)),
            "Sends per query, across servers, before giving up.",
        ),
        // tcp
        key(
            "tcp.idle_timeout",
            Type::Duration,
            Valid::Duration(limits::TCP_TIMEOUT_MIN, limits::TCP_IDLE_TIMEOUT_MAX, false),
            "A client connection with no query outstanding is closed after this long; it is \
             also the keepalive offered to clients that ask (RFC 7828).",
        ),
        key(
            "tcp.read_timeout",
            Type::Duration,
            Valid::Duration(limits::TCP_TIMEOUT_MIN, limits::TCP_READ_TIMEOUT_MAX, false),
            "Once a message has begun, all of it must arrive within this time, or the \
             connection is closed (slow or stalled senders).",
        ),
        key(
            "tcp.max_connections",
            Integer,
            Valid::Int(1, int(limits::TCP_MAX_CONNECTIONS_MAX)),
            "Client connections per core. When full, the oldest idle connection is closed for \
             a new one; if none is idle, the new one is refused.",
        ),
        key(
            "tcp.max_pipelined",
            Integer,
            Valid::Int(1, int(limits::TCP_MAX_PIPELINED_MAX)),
            "Queries outstanding on one connection; more wait unread in the socket.",
        ),
        // local
        key(
            "local.records",
            Other("list of record lines"),
            Valid::Text(
                "zone-file lines with an absolute owner: `\"router.lan. 300 IN A 192.168.1.1\"`",
            ),
            "Records served locally, one per line (`name TTL IN TYPE rdata`; the TTL is 3600 \
             when left out).",
        ),
        key(
            "local.zones",
            Other("list of mappings (`name`, `file`)"),
            Valid::Text("no zone listed twice"),
            "Zone files (RFC 1035 master files), such as `{name: lan., file: \
             /etc/heimdall/lan.zone}`. Read at start and on every reload.",
        ),
        required(
            "local.zones[].name",
            Other("domain name"),
            Valid::Text("a domain name"),
            "The zone's origin.",
        ),
        required(
            "local.zones[].file",
            Other("file path"),
            Valid::Text("a non-empty path"),
            "The master file (relative paths are relative to the working directory).",
        ),
        key(
            "local.delegations",
            Enum(&["referral", "forward"]),
            ANY,
            "Queries below a delegation (NS records under a zone's apex): `referral` answers \
             with the NS records, `forward` asks upstream.",
        ),
        key(
            "local.builtins",
            Bool,
            ANY,
            "Serve the RFC 6761 / RFC 6303 local zones (localhost, private reverse zones, ...) \
             locally instead of asking upstream.",
        ),
        // blocklist
        key(
            "blocklist.files",
            Other("list of mappings (`path`, `format`)"),
            ANY,
            "Block lists, such as `{path: /etc/heimdall/ads.txt, format: auto}`. A listed name \
             is blocked with all its subdomains. Read at start and on every reload.",
        ),
        required(
            "blocklist.files[].path",
            Other("file path"),
            Valid::Text("a non-empty path"),
            "The list file.",
        ),
        key(
            "blocklist.files[].format",
            Enum(&["auto", "hosts", "domains", "adblock"]),
            ANY,
            "The file's syntax: `auto` decides per line; `hosts` is a hosts file; `domains` \
             one name per line; `adblock` `||domain^` rules.",
        ),
        key(
            "blocklist.allow",
            Other("list of domain names"),
            Valid::Text("domain names"),
            "Names (with their subdomains) never blocked.",
        ),
        key(
            "blocklist.allow_files",
            Other("list of file paths"),
            Valid::Text("non-empty paths"),
            "Files of names never blocked, one per line. Read at start and on every reload.",
        ),
        key(
            "blocklist.mode",
            Enum(&["nxdomain", "null", "refused"]),
            ANY,
            "How a blocked name is answered: `nxdomain`; `null` (0.0.0.0 / :: for A / AAAA, \
             NODATA for other types); `refused`. EDNS clients also get Extended DNS Error 15 \
             (Blocked).",
        ),
        key(
            "blocklist.ttl",
            Type::Duration,
            ttl(Duration::ZERO),
            "TTL of `null` answers.",
        ),
        // acl
        key(
            "acl.allow",
            Other("list of networks"),
            Valid::Text("networks such as `203.0.113.0/24`, `2001:db8::/32`, or single addresses"),
            "Clients allowed besides loopback and private networks.",
        ),
        key(
            "acl.deny",
            Other("list of networks"),
            Valid::Text("networks or single addresses"),
            "Clients refused even if allowed otherwise. Deny wins.",
        ),
        key(
            "acl.action",
            Enum(&["refuse", "drop"]),
            ANY,
            "What a refused client gets: `refuse` (REFUSED) or `drop` (no answer).",
        ),
        key(
            "acl.open_resolver",
            Bool,
            ANY,
            "Serve every client not denied. An open resolver is abused for amplification \
             attacks; leave this off on the internet.",
        ),
        // rate_limit
        key(
            "rate_limit.enabled",
            Bool,
            ANY,
            "Limit queries per client prefix.",
        ),
        key(
            "rate_limit.rate",
            Integer,
            Valid::Int(0, u64::from(u32::MAX)),
            "Queries per second per prefix, for the whole server (each core gets its share): \
             the rate each bucket refills at. `0` never refills: a prefix gets `burst` \
             queries in all.",
        ),
        key(
            "rate_limit.burst",
            Integer,
            Valid::Int(1, u64::from(u32::MAX)),
            "Bucket size per prefix, for the whole server.",
        ),
        key(
            "rate_limit.ipv4_prefix",
            Integer,
            Valid::Int(0, 32),
            "Prefix length IPv4 clients are grouped by.",
        ),
        key(
            "rate_limit.ipv6_prefix",
            Integer,
            Valid::Int(0, 128),
            "Prefix length IPv6 clients are grouped by.",
        ),
        key(
            "rate_limit.table_size",
            Integer,
            Valid::Int(1, int(limits::RATE_LIMIT_TABLE_SIZE_MAX)),
            "Prefixes tracked per core; the least recent is evicted.",
        ),
        key(
            "rate_limit.action",
            Enum(&["drop", "refused", "truncate"]),
            ANY,
            "What a query over the limit gets: `drop` (no answer), `refused`, or `truncate` (an \
             empty reply with TC, so real clients retry over TCP; TCP queries are served).",
        ),
        // control
        key(
            "control.enabled",
            Bool,
            ANY,
            "Whether the control endpoint is served.",
        ),
        key(
            "control.listen",
            Other("address"),
            Valid::Text(
                "`IP:PORT`, not overlapping a DNS listen address on the same port (port 0 \
                 picks a free port)",
            ),
            "Where the control endpoint listens.",
        ),
        // log
        key(
            "log.level",
            Enum(&["error", "warn", "info", "debug", "trace"]),
            ANY,
            "The least severe level logged. `RUST_LOG`, when set, overrides it.",
        ),
    ]
}

/// The schema's defaults as YAML: what `to_yaml` writes for keys left out.
pub(crate) fn defaults_value() -> Value {
    serde_yaml::to_value(RawConfig::default()).unwrap_or(Value::Null)
}

/// [`defaults_value`] with one item in each list of mappings, holding
/// only the item defaults (required keys empty), so that the defaults of
/// item keys (`blocklist.files[].format`) can be read.
pub(crate) fn item_defaults_value() -> Value {
    let mut raw = RawConfig::default();
    raw.local.zones.push(RawZone {
        name: String::new(),
        file: Default::default(),
    });
    raw.blocklist.files.push(RawListFile {
        path: Default::default(),
        format: Default::default(),
    });
    serde_yaml::to_value(&raw).unwrap_or(Value::Null)
}

/// Every key path in `value` with its value, in order: the leaves, plus
/// the lists; the keys of a list's mapping items as `list[].key` (from its
/// first item). Sections (mappings) themselves are not listed.
pub(crate) fn walk(value: &Value) -> Vec<(String, Value)> {
    fn go(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        let Value::Mapping(map) = value else {
            return;
        };
        for (name, child) in map {
            let name = match name {
                Value::String(name) => name.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match child {
                Value::Mapping(_) => go(&path, child, out),
                Value::Sequence(items) => {
                    out.push((path.clone(), child.clone()));
                    if let Some(first @ Value::Mapping(_)) = items.first() {
                        go(&format!("{path}[]"), first, out);
                    }
                }
                _ => out.push((path, child.clone())),
            }
        }
    }
    let mut out = Vec::new();
    go("", value, &mut out);
    out
}

/// A default as the reference writes it: inline YAML.
fn render_value(value: &Value) -> String {
    match value {
        Value::Null => "not set".to_string(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("`{s}`"),
        Value::Sequence(items) if items.is_empty() => "`[]`".to_string(),
        Value::Sequence(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| {
                    serde_yaml::to_string(item)
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect();
            format!("`[{}]`", items.join(", "))
        }
        Value::Mapping(_) | Value::Tagged(_) => serde_yaml::to_string(value)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// The section a key path belongs to.
fn section_of(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

const PREAMBLE: &str = r#"# Configuration reference

<!-- Generated from the heimdall-config crate (crates/config/src/reference.rs)
     by its tests; do not edit by hand. After changing the schema, run
     HEIMDALL_BLESS=1 cargo test -p heimdall-config
     to rewrite this file. -->

heimdall reads one YAML file, given with `heimdall --config FILE` (or `-c
FILE`). Without one it runs on its built-in default, with the upstream
servers taken from the `nameserver` lines of /etc/resolv.conf.

- `heimdall check-config FILE` validates a file and prints the effective
  configuration (every key, defaults filled in) or the first error, as
  `FILE:LINE:COLUMN: KEY: what is wrong`.
- `heimdall default-config` prints the built-in default with comments: a
  starting point for a file of your own.

## How to read this

Keys are written as paths: `cache.max_ttl` is the key `max_ttl` in the
section `cache:`. `local.zones[].name` is the key `name` of each item of the
list `local.zones`. Every key may be left out, and so may every section (an
empty section means all its defaults); the only exception is
`upstream.servers`, which a config file must list. Keys marked *required*
are required in each list item that is given. Unknown keys are errors.

For each key:

- **Type**: `bool` (`true` or `false`), `integer`, `size`, `duration`,
  `enum` (one of the words listed), or what the value is written as.
- **Default**: the value when the key is left out, as `check-config` prints
  it.
- **Valid**: the values validation accepts; anything else is an error.
- **Reload**: `applied` or `restart` (see below).

## Sizes and durations

- A **size** is a number of bytes, or a whole number with a unit: `KB`,
  `MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of
  1024): `64MiB`, `512KiB`, `1GB`, `65536`.
- A **duration** is a number of seconds, or a whole number with a unit:
  `ms`, `s`, `m`, `h`, `d`: `800ms`, `2s`, `5m`, `1h`, `1d`, `30`. TTLs are
  whole seconds.

## Reload

A hot reload (SIGHUP, or `POST /reload` on the control endpoint) reads the
file again. If it is invalid, nothing changes and the error is reported.
Otherwise:

"#;

/// The configuration reference in Markdown: `docs/CONFIGURATION.md`.
pub fn configuration_reference() -> String {
    let defaults = walk(&defaults_value());
    let item_defaults = walk(&item_defaults_value());
    let default_of = |path: &str| {
        let walked = if path.contains("[]") {
            &item_defaults
        } else {
            &defaults
        };
        walked
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, value)| render_value(value))
    };
    let mut out = String::from(PREAMBLE);
    let restart: Vec<String> = RESTART_ONLY_KEYS
        .iter()
        .map(|key| format!("`{key}`"))
        .collect();
    let _ = writeln!(
        out,
        "- **restart**: the sections and keys {} keep their running value until heimdall is \
         restarted; the reload reports each one that changed.",
        restart.join(", ")
    );
    out.push_str(
        "- **applied**: every other key takes effect. Zone files (`local.zones`) and list \
         files (`blocklist.files`, `blocklist.allow_files`) are read again even when the YAML \
         did not change. The caches survive, but entries the new blocklist or local data \
         answers differently are dropped.\n",
    );
    out.push_str("\n| Section | Reload |\n|---|---|\n");
    for (section, _) in SECTIONS {
        let behaviour = match (reload_behaviour(section), *section) {
            (ReloadBehaviour::Applied, "cache") => "applied, except `cache.persist`: restart",
            (behaviour, _) => behaviour.as_str(),
        };
        let _ = writeln!(out, "| `{section}` | {behaviour} |");
    }
    out.push_str("\n## Keys\n");

    let keys = keys();
    for (section, intro) in SECTIONS {
        let _ = write!(out, "\n### `{section}`\n\n{intro}\n");
        for doc in keys.iter().filter(|doc| section_of(doc.path) == *section) {
            let default = if doc.required {
                "none (*required*)".to_string()
            } else {
                default_of(doc.path).unwrap_or_else(|| "?".to_string())
            };
            let _ = write!(
                out,
                "\n#### `{}`\n\n- Type: {}\n- Default: {}\n- Valid: {}\n- Reload: {}\n\n{}\n",
                doc.path,
                doc.ty.describe(),
                default,
                doc.valid.describe(doc.ty),
                reload_behaviour(doc.path).as_str(),
                doc.text
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
