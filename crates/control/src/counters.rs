//! The per-core counters kept by descriptor: one list ([`COUNTERS`]) names
//! each [`Counter`], its Prometheus family (with an optional label), its
//! HELP text and its place in the `/stats` JSON, and one array
//! ([`CounterSet`]) holds the values. Both renderers iterate the list, so a
//! counter added here reaches `/metrics` and `/stats` together; the tests
//! check every descriptor appears in both.

/// One per-core counter (or gauge) kept by descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Client queries that joined an outstanding upstream query.
    Coalesced,
    /// Client queries shed: the in-flight table or a waiter list was full.
    DroppedOverload,
    /// Queries answered (or referred) from local data.
    LocalAnswers,
    /// Queries refused by the ACL.
    AclRefused,
    /// Queries dropped by the ACL.
    AclDropped,
    /// Queries over the rate limit, dropped.
    RateLimitedDropped,
    /// Queries over the rate limit, refused.
    RateLimitedRefused,
    /// Queries over the rate limit, answered truncated.
    RateLimitedTruncated,
    /// FORMERR replies the server wrote itself.
    SentFormerr,
    /// NOTIMP replies the server wrote itself.
    SentNotimp,
    /// REFUSED replies the server wrote itself.
    SentRefused,
    /// BADVERS replies the server wrote itself.
    SentBadvers,
    /// SERVFAIL replies the server wrote itself.
    SentServfail,
    /// Queries that ended in SERVFAIL because the last upstream asked
    /// answered with an error.
    UpstreamErrorFailures,
    /// Upstream UDP replies with TC, retried over TCP.
    UpstreamTruncated,
    /// Upstream queries sent over TCP.
    UpstreamTcpQueries,
    /// Answers DNSSEC validation found secure.
    DnssecSecure,
    /// Answers found validly insecure.
    DnssecInsecure,
    /// Answers that could not be validated (a key could not be had).
    DnssecIndeterminate,
    /// Bogus answers: a signature does not verify.
    DnssecBogusSignature,
    /// Bogus answers: signatures expired.
    DnssecBogusExpired,
    /// Bogus answers: signatures not yet valid.
    DnssecBogusNotYetValid,
    /// Bogus answers: no DNSKEY matches.
    DnssecBogusDnskeyMissing,
    /// Bogus answers: signatures missing.
    DnssecBogusRrsigsMissing,
    /// Bogus answers: the NSEC/NSEC3 denial is missing or wrong.
    DnssecBogusDenial,
    /// Bogus answers: any other reason.
    DnssecBogusOther,
    /// DNSKEY and DS sub-queries started for validation.
    DnssecSubqueries,
    /// Hints this core produced for the others.
    HintsProduced,
    /// Received hints stored (no fresher entry was present).
    HintsStored,
    /// Cache entries stored.
    CacheInserts,
    /// Cache entries removed by a lookup, past the stale window.
    CacheExpired,
    /// Cache lookups that found an entry inside the stale window.
    CacheStaleLookups,
    /// Messages dropped because the resolver gave a length beyond the
    /// buffer (a bug).
    BadLengths,
    /// Client TCP connections accepted.
    TcpAccepted,
    /// Client TCP connections refused (table full, none idle).
    TcpRefused,
    /// Idle client TCP connections closed to make room.
    TcpEvicted,
    /// Client TCP connections closed after `tcp.idle_timeout`.
    TcpClosedIdle,
    /// Client TCP connections closed after `tcp.read_timeout`.
    TcpClosedReadTimeout,
    /// Client queries received over TCP (by the transport).
    TcpQueries,
    /// Replies that found their TCP connection gone.
    TcpRepliesOrphaned,
    /// Upstream TCP connections opened.
    TcpUpstreamConnects,
    /// Upstream TCP connections that failed.
    TcpUpstreamErrors,
    /// Client TCP connections open now (a gauge).
    TcpConnectionsOpen,
    /// Upstream queries in flight now (a gauge).
    Inflight,
}

/// Whether a descriptor's value only grows or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterKind {
    /// A Prometheus counter (`_total`).
    Counter,
    /// A Prometheus gauge.
    Gauge,
}

impl CounterKind {
    /// The `# TYPE` word.
    pub fn label(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// How one [`Counter`] is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterDesc {
    /// The counter.
    pub counter: Counter,
    /// Counter or gauge.
    pub kind: CounterKind,
    /// The Prometheus family. Descriptors of one family are adjacent in
    /// [`COUNTERS`], share HELP and differ by `label`.
    pub metric: &'static str,
    /// `(label name, label value)` within the family, if it has several
    /// series per core.
    pub label: Option<(&'static str, &'static str)>,
    /// The family's HELP text.
    pub help: &'static str,
    /// `(object, key)` in each core's `/stats` JSON.
    pub json: (&'static str, &'static str),
}

const fn desc(
    counter: Counter,
    metric: &'static str,
    label: Option<(&'static str, &'static str)>,
    help: &'static str,
    json: (&'static str, &'static str),
) -> CounterDesc {
    CounterDesc {
        counter,
        kind: CounterKind::Counter,
        metric,
        label,
        help,
        json,
    }
}

const fn gauge(
    counter: Counter,
    metric: &'static str,
    help: &'static str,
    json: (&'static str, &'static str),
) -> CounterDesc {
    CounterDesc {
        counter,
        kind: CounterKind::Gauge,
        metric,
        label: None,
        help,
        json,
    }
}

const ACL_HELP: &str =
    "Client queries denied by the ACL, by action: refuse (REFUSED sent) or drop.";
const RATE_HELP: &str = "Client queries over the rate limit, by action: drop, refuse (REFUSED \
                         sent) or truncate (an empty TC reply, UDP only).";
const SENT_HELP: &str = "Error replies the server wrote itself (not relayed from an upstream), by \
                         rcode: FORMERR and NOTIMP for bad queries, REFUSED for policy, BADVERS \
                         for EDNS versions, SERVFAIL when no upstream gave an answer.";
const CLOSED_HELP: &str = "Client TCP connections closed by the server, by reason: idle \
                           (tcp.idle_timeout) or read_timeout (a message not whole within \
                           tcp.read_timeout).";

/// Every [`Counter`], in exposition order: the one list both renderers use.
pub const COUNTERS: [CounterDesc; 44] = [
    desc(
        Counter::Coalesced,
        "heimdall_queries_coalesced_total",
        None,
        "Client cache misses that joined an upstream query already outstanding for the same \
         question.",
        ("resolver", "coalesced"),
    ),
    desc(
        Counter::DroppedOverload,
        "heimdall_queries_dropped_overload_total",
        None,
        "Client queries shed because the in-flight table or a query's waiter list was full \
         (see upstream.max_inflight).",
        ("resolver", "dropped_overload"),
    ),
    desc(
        Counter::LocalAnswers,
        "heimdall_local_answers_total",
        None,
        "Client queries answered (or referred) from local data: the built-in zones and \
         local.zones.",
        ("policy", "local_answers"),
    ),
    desc(
        Counter::AclRefused,
        "heimdall_queries_acl_denied_total",
        Some(("action", "refuse")),
        ACL_HELP,
        ("policy", "acl_refused"),
    ),
    desc(
        Counter::AclDropped,
        "heimdall_queries_acl_denied_total",
        Some(("action", "drop")),
        ACL_HELP,
        ("policy", "acl_dropped"),
    ),
    desc(
        Counter::RateLimitedDropped,
        "heimdall_queries_rate_limited_total",
        Some(("action", "drop")),
        RATE_HELP,
        ("policy", "rate_limited_dropped"),
    ),
    desc(
        Counter::RateLimitedRefused,
        "heimdall_queries_rate_limited_total",
        Some(("action", "refuse")),
        RATE_HELP,
        ("policy", "rate_limited_refused"),
    ),
    desc(
        Counter::RateLimitedTruncated,
        "heimdall_queries_rate_limited_total",
        Some(("action", "truncate")),
        RATE_HELP,
        ("policy", "rate_limited_truncated"),
    ),
    desc(
        Counter::SentFormerr,
        "heimdall_error_replies_sent_total",
        Some(("rcode", "FORMERR")),
        SENT_HELP,
        ("resolver", "formerr_sent"),
    ),
    desc(
        Counter::SentNotimp,
        "heimdall_error_replies_sent_total",
        Some(("rcode", "NOTIMP")),
        SENT_HELP,
        ("resolver", "notimp_sent"),
    ),
    desc(
        Counter::SentRefused,
        "heimdall_error_replies_sent_total",
        Some(("rcode", "REFUSED")),
        SENT_HELP,
        ("resolver", "refused_sent"),
    ),
    desc(
        Counter::SentBadvers,
        "heimdall_error_replies_sent_total",
        Some(("rcode", "BADVERS")),
        SENT_HELP,
        ("resolver", "badvers_sent"),
    ),
    desc(
        Counter::SentServfail,
        "heimdall_error_replies_sent_total",
        Some(("rcode", "SERVFAIL")),
        SENT_HELP,
        ("resolver", "servfail_sent"),
    ),
    desc(
        Counter::UpstreamErrorFailures,
        "heimdall_upstream_error_failures_total",
        None,
        "Client queries that ended in SERVFAIL because the last upstream asked answered \
         SERVFAIL, REFUSED, NOTIMP or FORMERR.",
        ("resolver", "upstream_error_failures"),
    ),
    desc(
        Counter::UpstreamTruncated,
        "heimdall_upstream_truncated_total",
        None,
        "Upstream UDP replies with TC set, asked again over TCP.",
        ("resolver", "upstream_truncated"),
    ),
    desc(
        Counter::UpstreamTcpQueries,
        "heimdall_upstream_tcp_queries_total",
        None,
        "Upstream queries sent over TCP (tcp upstreams and retries after TC).",
        ("resolver", "upstream_tcp_queries"),
    ),
    desc(
        Counter::DnssecSecure,
        "heimdall_dnssec_answers_total",
        Some(("result", "secure")),
        "Answers DNSSEC validation judged, by result: secure (AD), insecure (validly unsigned: no AD), indeterminate (a DNSKEY or DS could not be had: SERVFAIL, EDE 5).",
        ("dnssec", "secure"),
    ),
    desc(
        Counter::DnssecInsecure,
        "heimdall_dnssec_answers_total",
        Some(("result", "insecure")),
        "Answers DNSSEC validation judged, by result: secure (AD), insecure (validly unsigned: no AD), indeterminate (a DNSKEY or DS could not be had: SERVFAIL, EDE 5).",
        ("dnssec", "insecure"),
    ),
    desc(
        Counter::DnssecIndeterminate,
        "heimdall_dnssec_answers_total",
        Some(("result", "indeterminate")),
        "Answers DNSSEC validation judged, by result: secure (AD), insecure (validly unsigned: no AD), indeterminate (a DNSKEY or DS could not be had: SERVFAIL, EDE 5).",
        ("dnssec", "indeterminate"),
    ),
    desc(
        Counter::DnssecBogusSignature,
        "heimdall_dnssec_bogus_total",
        Some(("reason", "bad_signature")),
        "Answers DNSSEC validation found bogus (SERVFAIL with an Extended DNS Error in `validate` mode, answered without AD in `permissive`), by reason.",
        ("dnssec", "bogus_bad_signature"),
    ),
    desc(
        Counter::DnssecBogusExpired,
        "heimdall_dnssec_bogus_total",
        Some(("reason", "expired")),
        "Answers DNSSEC validation found bogus (SERVFAIL with an Extended DNS Error in `validate` mode, answered without AD in `permissive`), by reason.",
        ("dnssec", "bogus_expired"),
    ),
    desc(
        Counter::DnssecBogusNotYetValid,
        "heimdall_dnssec_bogus_total",
        Some(("reason", "not_yet_valid")),
        "Answers DNSSEC validation found bogus (SERVFAIL with an Extended DNS Error in `validate` mode, answered without AD in `permissive`), by reason.",
        ("dnssec", "bogus_not_yet_valid"),
    ),
    desc(
        Counter::DnssecBogusDnskeyMissing,
        "heimdall_dnssec_bogus_total",
        Some(("reason", "dnskey_missing")),
        "Answers DNSSEC validation found bogus (SERVFAIL with an Extended DNS Error in `validate` mode, answered without AD in `permissive`), by reason.",
        ("dnssec", "bogus_dnskey_missing"),
    ),
    desc(
        Counter::DnssecBogusRrsigsMissing,
        "heimdall_dnssec_bogus_total",
        Some(("reason", "rrsigs_missing")),
        "Answers DNSSEC validation found bogus (SERVFAIL with an Extended DNS Error in `validate` mode, answered without AD in `permissive`), by reason.",
        ("dnssec", "bogus_rrsigs_missing"),
    ),
    desc(
        Counter::DnssecBogusDenial,
        "heimdall_dnssec_bogus_total",
        Some(("reason", "denial")),
        "Answers DNSSEC validation found bogus (SERVFAIL with an Extended DNS Error in `validate` mode, answered without AD in `permissive`), by reason.",
        ("dnssec", "bogus_denial"),
    ),
    desc(
        Counter::DnssecBogusOther,
        "heimdall_dnssec_bogus_total",
        Some(("reason", "other")),
        "Answers DNSSEC validation found bogus (SERVFAIL with an Extended DNS Error in `validate` mode, answered without AD in `permissive`), by reason.",
        ("dnssec", "bogus_other"),
    ),
    desc(
        Counter::DnssecSubqueries,
        "heimdall_dnssec_subqueries_total",
        None,
        "DNSKEY and DS sub-queries DNSSEC validation started (each coalesced and cached like a query).",
        ("dnssec", "subqueries"),
    ),
    desc(
        Counter::HintsProduced,
        "heimdall_hints_produced_total",
        None,
        "Cache hints this core produced for the other cores (sent or dropped).",
        ("hints", "produced"),
    ),
    desc(
        Counter::HintsStored,
        "heimdall_hints_stored_total",
        None,
        "Cache hints received and stored (no fresher entry was present).",
        ("hints", "stored"),
    ),
    desc(
        Counter::CacheInserts,
        "heimdall_cache_inserts_total",
        None,
        "Cache entries stored (new or replacing).",
        ("cache", "inserts"),
    ),
    desc(
        Counter::CacheExpired,
        "heimdall_cache_expired_total",
        None,
        "Cache entries removed by a lookup because they were past the stale window.",
        ("cache", "expired"),
    ),
    desc(
        Counter::CacheStaleLookups,
        "heimdall_cache_stale_lookups_total",
        None,
        "Cache lookups that found an expired entry still inside the stale window.",
        ("cache", "stale_lookups"),
    ),
    desc(
        Counter::BadLengths,
        "heimdall_bad_lengths_total",
        None,
        "Replies and upstream queries dropped because the resolver gave a length beyond its \
         buffer (a bug, each one logged).",
        ("udp", "bad_lengths"),
    ),
    desc(
        Counter::TcpAccepted,
        "heimdall_tcp_connections_accepted_total",
        None,
        "Client TCP connections accepted.",
        ("tcp", "accepted"),
    ),
    desc(
        Counter::TcpRefused,
        "heimdall_tcp_connections_refused_total",
        None,
        "Client TCP connections refused because the table was full and none was idle.",
        ("tcp", "refused"),
    ),
    desc(
        Counter::TcpEvicted,
        "heimdall_tcp_connections_evicted_total",
        None,
        "Idle client TCP connections closed to make room for a new one.",
        ("tcp", "evicted"),
    ),
    desc(
        Counter::TcpClosedIdle,
        "heimdall_tcp_connections_closed_total",
        Some(("reason", "idle")),
        CLOSED_HELP,
        ("tcp", "closed_idle"),
    ),
    desc(
        Counter::TcpClosedReadTimeout,
        "heimdall_tcp_connections_closed_total",
        Some(("reason", "read_timeout")),
        CLOSED_HELP,
        ("tcp", "closed_read_timeout"),
    ),
    desc(
        Counter::TcpQueries,
        "heimdall_tcp_queries_total",
        None,
        "Client queries read from TCP connections.",
        ("tcp", "queries"),
    ),
    desc(
        Counter::TcpRepliesOrphaned,
        "heimdall_tcp_replies_orphaned_total",
        None,
        "Replies to TCP clients whose connection was gone.",
        ("tcp", "replies_orphaned"),
    ),
    desc(
        Counter::TcpUpstreamConnects,
        "heimdall_upstream_tcp_connects_total",
        None,
        "Upstream TCP connections opened.",
        ("tcp", "upstream_connects"),
    ),
    desc(
        Counter::TcpUpstreamErrors,
        "heimdall_upstream_tcp_errors_total",
        None,
        "Upstream TCP connections that failed (connect, write or read).",
        ("tcp", "upstream_errors"),
    ),
    gauge(
        Counter::TcpConnectionsOpen,
        "heimdall_tcp_connections_open",
        "Client TCP connections open.",
        ("tcp", "connections_open"),
    ),
    gauge(
        Counter::Inflight,
        "heimdall_upstream_inflight",
        "Upstream queries in flight.",
        ("resolver", "inflight"),
    ),
];

/// The values of every [`Counter`] of one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterSet {
    values: [u64; COUNTERS.len()],
}

impl Default for CounterSet {
    fn default() -> Self {
        Self {
            values: [0; COUNTERS.len()],
        }
    }
}

impl CounterSet {
    /// Set one counter.
    pub fn set(&mut self, counter: Counter, value: u64) {
        if let Some(slot) = self.values.get_mut(counter as usize) {
            *slot = value;
        }
    }

    /// One counter's value.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values.get(counter as usize).copied().unwrap_or(0)
    }

    /// Every descriptor with its value, in exposition order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static CounterDesc, u64)> + '_ {
        COUNTERS.iter().map(|desc| (desc, self.get(desc.counter)))
    }

    /// Add another core's values (gauges are summed too).
    pub fn merge(&mut self, other: &Self) {
        for (slot, &n) in self.values.iter_mut().zip(other.values.iter()) {
            *slot = slot.saturating_add(n);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn descriptors_are_in_counter_order_and_families_are_adjacent() {
        for (index, desc) in COUNTERS.iter().enumerate() {
            assert_eq!(desc.counter as usize, index, "{:?}", desc.counter);
            match desc.kind {
                CounterKind::Counter => assert!(desc.metric.ends_with("_total"), "{}", desc.metric),
                CounterKind::Gauge => assert!(!desc.metric.ends_with("_total"), "{}", desc.metric),
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut json = std::collections::HashSet::new();
        let mut previous: Option<&CounterDesc> = None;
        for desc in &COUNTERS {
            assert!(json.insert(desc.json), "{:?} twice in /stats", desc.json);
            match previous {
                Some(last) if last.metric == desc.metric => {
                    assert_eq!(last.help, desc.help, "{}", desc.metric);
                    assert_eq!(last.kind, desc.kind, "{}", desc.metric);
                    assert!(last.label.is_some() && desc.label.is_some());
                }
                _ => assert!(seen.insert(desc.metric), "{} not adjacent", desc.metric),
            }
            previous = Some(desc);
        }
    }

    #[test]
    fn merge_adds_every_slot() {
        let mut a = CounterSet::default();
        let mut b = CounterSet::default();
        for (n, desc) in COUNTERS.iter().enumerate() {
            a.set(desc.counter, n as u64);
            b.set(desc.counter, 1);
        }
        a.merge(&b);
        for (n, desc) in COUNTERS.iter().enumerate() {
            assert_eq!(a.get(desc.counter), n as u64 + 1);
        }
    }
}
