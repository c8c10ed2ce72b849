//! Prometheus text exposition format 0.0.4 for a [`Snapshot`].

use std::fmt::Write as _;

use crate::counters::{COUNTERS, CounterDesc};
use crate::http::Response;
use crate::snapshot::{
    CoreSnapshot, LATENCY_BOUNDS_US, LatencyHistogram, ProcessSnapshot, Snapshot, UpstreamSnapshot,
};

/// The content type of the exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `GET /metrics` reply for a snapshot.
pub fn render_metrics(snapshot: &Snapshot) -> Response {
    let mut response = Response::text(200, render_metrics_text(snapshot));
    response.content_type = METRICS_CONTENT_TYPE;
    response
}

/// A per-core counter family: name, help, and how to read it.
type CoreField = (&'static str, &'static str, fn(&CoreSnapshot) -> u64);

/// What `cookies.udp_require_above` sent, per core.
const CLIENT_COOKIE_COUNTERS: [CoreField; 2] = [
    (
        "heimdall_client_cookie_badcookie_total",
        "BADCOOKIE replies sent to UDP queries without a valid server cookie above \
         cookies.udp_require_above.",
        |c| c.client_cookies.badcookie_sent,
    ),
    (
        "heimdall_client_cookie_truncated_total",
        "Truncated (TC) replies sent to UDP queries without any cookie above \
         cookies.udp_require_above.",
        |c| c.client_cookies.truncated,
    ),
];

const CORE_COUNTERS: [CoreField; 24] = [
    (
        "heimdall_cache_hits_total",
        "Cache lookups answered with a fresh entry.",
        |c| c.cache.hits,
    ),
    (
        "heimdall_cache_misses_total",
        "Cache lookups that found nothing usable.",
        |c| c.cache.misses,
    ),
    (
        "heimdall_cache_stale_served_total",
        "Stale cache entries served.",
        |c| c.cache.stale_served,
    ),
    (
        "heimdall_cache_prefetches_total",
        "Prefetches of popular entries near expiry.",
        |c| c.cache.prefetches,
    ),
    (
        "heimdall_cache_evictions_total",
        "Cache entries evicted to make room.",
        |c| c.cache.evictions,
    ),
    (
        "heimdall_hints_sent_total",
        "Cache hints sent to other cores.",
        |c| c.hints.sent,
    ),
    (
        "heimdall_hints_received_total",
        "Cache hints received from other cores.",
        |c| c.hints.received,
    ),
    (
        "heimdall_hints_dropped_total",
        "Cache hints dropped because a queue was full.",
        |c| c.hints.dropped,
    ),
    (
        "heimdall_udp_send_errors_total",
        "UDP replies and upstream queries the kernel refused.",
        |c| c.udp.send_errors,
    ),
    (
        "heimdall_udp_gso_sends_total",
        "UDP sends that carried several replies as GSO segments.",
        |c| c.udp.gso_sends,
    ),
    (
        "heimdall_udp_gso_segments_total",
        "UDP replies that left inside GSO sends.",
        |c| c.udp.gso_segments,
    ),
    (
        "heimdall_udp_gso_fallbacks_total",
        "GSO sends refused by the kernel and sent again one reply at a time.",
        |c| c.udp.gso_fallbacks,
    ),
    (
        "heimdall_queries_blocked_total",
        "Client queries answered by the blocklist.",
        |c| c.policy.blocked,
    ),
    (
        "heimdall_queries_malformed_total",
        "Malformed client packets dropped (too short for a header, or responses); queries \
         answered FORMERR are in heimdall_error_replies_sent_total.",
        |c| c.policy.malformed,
    ),
    (
        "heimdall_upstream_replies_mismatched_total",
        "Upstream replies rejected by the reply check, every reason together (see \
         heimdall_upstream_replies_rejected_total); a flood is a spoofing attempt.",
        |c| c.replies.mismatched,
    ),
    (
        "heimdall_upstream_replies_malformed_total",
        "Upstream replies that could not be parsed.",
        |c| c.replies.malformed,
    ),
    (
        "heimdall_upstream_replies_late_accepted_total",
        "Replies to an earlier attempt of a query still in flight, accepted.",
        |c| c.replies.late_accepted,
    ),
    (
        "heimdall_upstream_case_fallbacks_total",
        "Upstreams found not to preserve the letter case of the question, for which 0x20 \
         was turned off.",
        |c| c.replies.case_fallbacks,
    ),
    (
        "heimdall_upstream_sockets_opened_total",
        "Upstream UDP sockets opened, each on a random port (a socket carries a few \
         attempts, one at a time).",
        |c| c.sockets.opened,
    ),
    (
        "heimdall_upstream_socket_bind_retries_total",
        "Random upstream source ports found taken, so another was tried.",
        |c| c.sockets.bind_retries,
    ),
    (
        "heimdall_upstream_socket_bind_failures_total",
        "Upstream attempts not sent because no socket could be opened on a free port.",
        |c| c.sockets.bind_failures,
    ),
    (
        "heimdall_upstream_socket_waits_total",
        "Upstream attempts that waited for a socket because upstream.max_sockets were open.",
        |c| c.sockets.waits,
    ),
    (
        "heimdall_upstream_socket_wait_drops_total",
        "Upstream attempts dropped because upstream.max_sockets were open and the wait \
         queue was full.",
        |c| c.sockets.wait_drops,
    ),
    (
        "heimdall_upstream_socket_strays_total",
        "Datagrams that reached an upstream socket after its attempt was retired, dropped.",
        |c| c.sockets.strays,
    ),
];

/// dnstap (`dnstap.enabled`), per core.
const DNSTAP_COUNTERS: [CoreField; 2] = [
    (
        "heimdall_dnstap_sent_total",
        "dnstap messages written to the reader's socket.",
        |c| c.dnstap.sent,
    ),
    (
        "heimdall_dnstap_dropped_total",
        "dnstap messages dropped: the core's buffer was full (the reader slow or away), or a \
         write failed when the reader went away.",
        |c| c.dnstap.dropped,
    ),
];

/// DNS cookies toward upstreams (RFC 7873, client side), and the strikes
/// toward the cookie and 0x20 fallbacks.
const UPSTREAM_COOKIE_COUNTERS: [CoreField; 3] = [
    (
        "heimdall_upstream_cookie_fallbacks_total",
        "Upstreams that had sent DNS cookies and were found to have stopped (attempts timed \
         out with only cookie-less replies), so cookie-less replies from them are accepted \
         again.",
        |c| c.replies.cookie_fallbacks,
    ),
    (
        "heimdall_upstream_badcookie_retries_total",
        "Upstream BADCOOKIE replies answered by asking again at once with the server cookie \
         they carried.",
        |c| c.replies.badcookie_retries,
    ),
    (
        "heimdall_upstream_strikes_flooded_total",
        "Upstream attempts that timed out with wrong-case or cookie-less replies while their \
         socket was flooded with other refused replies: not held against the upstream (no \
         step toward the 0x20 or cookie fallback).",
        |c| c.replies.strikes_flooded,
    ),
];

const CORE_GAUGES: [CoreField; 4] = [
    ("heimdall_cache_entries", "Cache entries held.", |c| {
        c.cache.entries
    }),
    (
        "heimdall_cache_entries_copied",
        "Cache entries held that were stored from another core's hint (server.steering: flow): \
         copies of answers another core fetched. Summed over the cores, an estimate of the \
         duplicated entries.",
        |c| c.cache.copies,
    ),
    (
        "heimdall_cache_bytes",
        "Bytes accounted to cache entries.",
        |c| c.cache.bytes,
    ),
    (
        "heimdall_upstream_sockets_open",
        "Upstream UDP sockets open.",
        |c| c.sockets.open,
    ),
];

/// A per-upstream family: name, help, key in `/stats`, and how to read it.
pub(crate) type UpstreamField = (
    &'static str,
    &'static str,
    &'static str,
    fn(&UpstreamSnapshot) -> u64,
);

/// Per-upstream counters, in exposition order (and in each upstream's
/// `/stats` object).
pub(crate) const UPSTREAM_COUNTERS: [UpstreamField; 9] = [
    (
        "heimdall_upstream_queries_total",
        "Queries sent to an upstream.",
        "queries",
        |u| u.queries,
    ),
    (
        "heimdall_upstream_replies_total",
        "Replies accepted from an upstream (NOERROR and NXDOMAIN).",
        "replies",
        |u| u.replies,
    ),
    (
        "heimdall_upstream_errors_total",
        "Error replies from an upstream.",
        "errors",
        |u| u.errors,
    ),
    (
        "heimdall_upstream_timeouts_total",
        "Upstream queries that timed out.",
        "timeouts",
        |u| u.timeouts,
    ),
    (
        "heimdall_upstream_truncated_replies_total",
        "Replies from an upstream with TC set.",
        "truncated",
        |u| u.truncated,
    ),
    (
        "heimdall_upstream_case_mismatches_total",
        "Replies from an upstream that echoed the 0x20 letter case wrongly (ID, port and \
         source right).",
        "case_mismatches",
        |u| u.case_mismatches,
    ),
    (
        "heimdall_upstream_case_strikes_total",
        "Attempts to an upstream that timed out having received only wrong-case replies \
         (strikes toward the 0x20 fallback).",
        "case_strikes",
        |u| u.case_strikes,
    ),
    (
        "heimdall_upstream_case_fallbacks_by_upstream_total",
        "Times an upstream was found not to echo the 0x20 case and was asked in lower case \
         for a while.",
        "case_fallbacks",
        |u| u.case_fallbacks,
    ),
    (
        "heimdall_upstream_cookie_fallbacks_by_upstream_total",
        "Times an upstream that had sent DNS cookies was found to have stopped.",
        "cookie_fallbacks",
        |u| u.cookie_fallbacks,
    ),
];

/// What a core knows of an upstream: 1 or 0.
pub(crate) const UPSTREAM_STATE_GAUGES: [UpstreamField; 3] = [
    (
        "heimdall_upstream_cookies_supported",
        "1 when the upstream has sent DNS cookies, so a cookie-less reply from it is refused.",
        "cookies_supported",
        |u| u.cookies_supported,
    ),
    (
        "heimdall_upstream_server_cookie_known",
        "1 when a server cookie from the upstream is known and sent with every query.",
        "server_cookie_known",
        |u| u.server_cookie_known,
    ),
    (
        "heimdall_upstream_case_fallback",
        "1 while the upstream is asked in lower case because it did not echo the 0x20 case.",
        "case_fallback",
        |u| u.case_fallback,
    ),
];

/// Labels of one series: `core` first (unless the cores are summed),
/// then the family's own.
fn labels<'a>(core: Option<&'a str>, rest: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    core.map(|id| ("core", id))
        .into_iter()
        .chain(rest.iter().copied())
        .collect()
}

/// The exposition text for a snapshot.
pub(crate) fn render_metrics_text(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(8192 + 4096 * snapshot.cores.len());
    family(
        &mut out,
        "heimdall_cores",
        "gauge",
        "Cores reporting in this snapshot.",
    );
    sample(&mut out, "heimdall_cores", &[], snapshot.cores.len() as u64);
    server_families(&mut out, snapshot);

    // With `aggregate_cores` every family has one series set: the cores'
    // sum, without a `core` label.
    let summed;
    let cores: &[CoreSnapshot] = if snapshot.aggregate_cores {
        summed = [snapshot.totals()];
        &summed
    } else {
        &snapshot.cores
    };
    let ids: Vec<Option<String>> = cores
        .iter()
        .map(|c| (!snapshot.aggregate_cores).then(|| c.core.to_string()))
        .collect();
    let per_core = || cores.iter().zip(ids.iter().map(Option::as_deref));

    // Per-core counts split by one more label (transport, qtype, rcode).
    type Buckets = fn(&CoreSnapshot) -> Vec<(&'static str, u64)>;
    let bucketed: [(&str, &str, &str, Buckets); 4] = [
        (
            "heimdall_queries_total",
            "Client queries received, by transport.",
            "transport",
            |c| {
                vec![
                    ("udp", c.queries.udp),
                    ("tcp", c.queries.tcp),
                    ("tls", c.queries.tls),
                    ("https", c.queries.https),
                    ("quic", c.queries.quic),
                ]
            },
        ),
        (
            "heimdall_queries_by_qtype_total",
            "Client queries received, by query type.",
            "qtype",
            |c| c.qtypes.iter().map(|(b, n)| (b.label(), n)).collect(),
        ),
        (
            "heimdall_responses_total",
            "Responses sent, by response code.",
            "rcode",
            |c| c.rcodes.iter().map(|(b, n)| (b.label(), n)).collect(),
        ),
        (
            "heimdall_upstream_replies_rejected_total",
            "Upstream replies rejected by the reply check, by reason: wrong_id, wrong_socket \
             (not on its attempt's own socket), wrong_source (address or port), \
             wrong_question, wrong_case (0x20), wrong_cookie, wrong_transport (UDP for a TCP \
             query), not_response.",
            "reason",
            |c| {
                c.replies
                    .iter_rejected()
                    .map(|(r, n)| (r.label(), n))
                    .collect()
            },
        ),
    ];
    for (name, help, label, read) in bucketed {
        family(&mut out, name, "counter", help);
        for (core, id) in per_core() {
            for (bucket, n) in read(core) {
                sample(&mut out, name, &labels(id, &[(label, bucket)]), n);
            }
        }
    }

    // Server cookies toward clients: one family by outcome, and what the
    // requirement sent.
    let name = "heimdall_client_cookies_total";
    family(
        &mut out,
        name,
        "counter",
        "Client queries with a COOKIE option, by outcome: valid (a server cookie of ours, in \
         time), new (only a client cookie), bad (a server cookie not ours, expired, or for \
         another client: answered with a fresh one), malformed (FORMERR).",
    );
    for (core, id) in per_core() {
        for (outcome, n) in core.client_cookies.outcomes() {
            sample(&mut out, name, &labels(id, &[("outcome", outcome)]), n);
        }
    }
    for (name, help, read) in &CLIENT_COOKIE_COUNTERS {
        family(&mut out, name, "counter", help);
        for (core, id) in per_core() {
            sample(&mut out, name, &labels(id, &[]), read(core));
        }
    }

    let fields = CORE_COUNTERS
        .iter()
        .chain(&UPSTREAM_COOKIE_COUNTERS)
        .chain(&DNSTAP_COUNTERS)
        .map(|field| (field, "counter"))
        .chain(CORE_GAUGES.iter().map(|field| (field, "gauge")));
    for ((name, help, read), kind) in fields {
        family(&mut out, name, kind, help);
        for (core, id) in per_core() {
            sample(&mut out, name, &labels(id, &[]), read(core));
        }
    }

    // The counters kept by descriptor: a family per run of descriptors
    // with the same metric name.
    let mut previous: Option<&str> = None;
    for (index, desc) in COUNTERS.iter().enumerate() {
        if previous != Some(desc.metric) {
            family(&mut out, desc.metric, desc.kind.label(), desc.help);
            // Every series of the family, core by core.
            let members = COUNTERS
                .iter()
                .skip(index)
                .take_while(|other| other.metric == desc.metric);
            let members: Vec<&CounterDesc> = members.collect();
            for (core, id) in per_core() {
                for member in &members {
                    let own: Vec<(&str, &str)> = member.label.into_iter().collect();
                    let value = core.counters.get(member.counter);
                    sample(&mut out, member.metric, &labels(id, &own), value);
                }
            }
        }
        previous = Some(desc.metric);
    }

    for (kind, list) in [
        ("counter", &UPSTREAM_COUNTERS[..]),
        ("gauge", &UPSTREAM_STATE_GAUGES[..]),
    ] {
        for (name, help, _, read) in list {
            family(&mut out, name, kind, help);
            for (core, id) in per_core() {
                for upstream in &core.upstreams {
                    let series = labels(id, &[("upstream", upstream.label.as_str())]);
                    sample(&mut out, name, &series, read(upstream));
                }
            }
        }
    }

    let name = "heimdall_upstream_latency_seconds";
    family(&mut out, name, "histogram", "Upstream reply latency.");
    for (core, id) in per_core() {
        for upstream in &core.upstreams {
            let series = labels(id, &[("upstream", upstream.label.as_str())]);
            histogram(&mut out, name, &series, &upstream.latency);
        }
    }

    let name = "heimdall_answer_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Time from a client query's arrival to its answer's send, by transport and cache: hit \
         (answered at once: the cache, local data, the blocklist or an error reply; measured \
         per receive batch) or miss (waited for an upstream; measured on the millisecond \
         clock).",
    );
    for (core, id) in per_core() {
        for (transport, cache, latency) in core.answers.series() {
            let series = labels(id, &[("transport", transport), ("cache", cache)]);
            histogram(&mut out, name, &series, latency);
        }
    }

    if let Some(process) = &snapshot.process {
        process_families(&mut out, process);
    }
    out
}

/// The `_bucket`, `_sum` and `_count` series of one histogram.
fn histogram(out: &mut String, name: &str, series: &[(&str, &str)], latency: &LatencyHistogram) {
    let bucket_name = format!("{name}_bucket");
    let bounds = LATENCY_BOUNDS_US
        .iter()
        .map(|&us| micros_as_seconds(us))
        .chain(std::iter::once("+Inf".to_owned()));
    for (le, n) in bounds.zip(latency.cumulative()) {
        let mut with_le = series.to_vec();
        with_le.push(("le", le.as_str()));
        sample(out, &bucket_name, &with_le, n);
    }
    let sum = micros_as_seconds(latency.sum_us());
    sample_text(out, &format!("{name}_sum"), series, &sum);
    sample(out, &format!("{name}_count"), series, latency.count());
}

/// Build information and reloads.
fn server_families(out: &mut String, snapshot: &Snapshot) {
    let server = &snapshot.server;
    let name = "heimdall_build_info";
    family(
        out,
        name,
        "gauge",
        "Always 1; the labels say which build runs: version, and the git commit and rustc \
         version when they were known at build time.",
    );
    let mut series = vec![("version", server.version.as_str())];
    if let Some(commit) = &server.commit {
        series.push(("commit", commit.as_str()));
    }
    if let Some(rustc) = &server.rustc {
        series.push(("rustc", rustc.as_str()));
    }
    sample(out, name, &series, 1);

    let name = "heimdall_reloads_total";
    family(
        out,
        name,
        "counter",
        "Configuration reloads (POST /reload or SIGHUP), by result: success (in force on \
         every core) or failure (the running configuration stayed).",
    );
    sample(out, name, &[("result", "success")], server.reloads_ok);
    sample(out, name, &[("result", "failure")], server.reloads_failed);

    let name = "heimdall_last_reload_success_timestamp_seconds";
    family(
        out,
        name,
        "gauge",
        "When the last reload took effect, in seconds since the Unix epoch; 0 when none has \
         since the server started.",
    );
    sample(
        out,
        name,
        &[],
        server.last_reload_success_unix.unwrap_or_default(),
    );
}

/// The standard `process_*` families (the names client libraries use).
fn process_families(out: &mut String, process: &ProcessSnapshot) {
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            process.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            process.virtual_memory_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            process.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            process.max_fds,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        sample(out, name, &[], value);
    }
    let name = "process_cpu_seconds_total";
    family(
        out,
        name,
        "counter",
        "Total user and system CPU time spent in seconds.",
    );
    sample_text(out, name, &[], &micros_as_seconds(process.cpu_micros));
    let name = "process_start_time_seconds";
    family(
        out,
        name,
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    );
    let start = micros_as_seconds(process.start_time_unix_micros);
    sample_text(out, name, &[], &start);
}

/// `1500` -> `"0.0015"`: exact decimal seconds, no float rounding.
fn micros_as_seconds(micros: u64) -> String {
    let whole = micros / 1_000_000;
    let fraction = micros % 1_000_000;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    sample_text(out, name, labels, &value.to_string());
}

fn sample_text(out: &mut String, name: &str, labels: &[(&str, &str)], value: &str) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (index, (label, label_value)) in labels.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label_value(label_value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escape a HELP text: backslash and line feed.
pub(crate) fn escape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
    out
}

/// Escape a label value: backslash, double quote and line feed.
pub(crate) fn escape_label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            _ => out.push(ch),
        }
    }
    out
}
