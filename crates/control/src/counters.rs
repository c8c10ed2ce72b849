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
    /// Denials answered from cached validated NSEC records (RFC 8198).
    DnssecAggressive,
    /// Answers without any RRSIG from zones the chain says are signed.
    DnssecUnsignedFromSignedZone,
    /// Signature checks saved by the memo of verified signatures.
    DnssecSignaturesRemembered,
    /// Hints this core produced for the others.
    HintsProduced,
    /// Received hints stored (no fresher entry was present).
    HintsStored,
    /// Hot names this core spread over every core (name steering).
    SteeringSpreadAdded,
    /// Spread names that cooled down and went back to their owner.
    SteeringSpreadExpired,
    /// Hot names not spread because the spread set was full.
    SteeringSpreadFull,
    /// Steering programs with hot names the kernel refused.
    SteeringAttachErrors,
    /// Stream queries that missed on a core not owning their name.
    OffOwnerFetches,
    /// Cache entries stored.
    CacheInserts,
    /// Cache entries removed by a lookup, past the stale window.
    CacheExpired,
    /// Cache lookups that found an entry inside the stale window.
    CacheStaleLookups,
    /// Messages dropped because the resolver gave a length beyond the
    /// buffer (a bug).
    BadLengths,
    /// Times a UDP listener's multishot receive was ended by the kernel
    /// (its buffers ran out under a burst) and armed again.
    UdpReceiveRearms,
    /// Coalescing pauses the UDP listeners took.
    UdpPauses,
    /// Probes that found the coalescing pause the cheaper.
    UdpPauseVerdictPause,
    /// Probes that found not pausing the cheaper.
    UdpPauseVerdictNoPause,
    /// 1 while the core prefers to pause (what its probes found), else 0.
    UdpPausing,
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
    /// Client connections accepted on the encrypted listeners (DOT).
    DotAccepted,
    /// Client connections accepted on the encrypted listeners (DOH).
    DohAccepted,
    /// Client connections accepted on the encrypted listeners (QUIC).
    QuicAccepted,
    /// Encrypted client connections refused because the table was full (tcp.max_connections (DOT).
    DotRefused,
    /// Encrypted client connections refused because the table was full (tcp.max_connections (DOH).
    DohRefused,
    /// Encrypted client connections refused because the table was full (tcp.max_connections (QUIC).
    QuicRefused,
    /// Idle encrypted client connections closed to make room for a new one (DOT).
    DotEvicted,
    /// Idle encrypted client connections closed to make room for a new one (DOH).
    DohEvicted,
    /// Encrypted client connections closed after tcp.idle_timeout (DOT).
    DotClosedIdle,
    /// Encrypted client connections closed after tcp.idle_timeout (DOH).
    DohClosedIdle,
    /// Encrypted client connections closed after tcp.idle_timeout (QUIC).
    QuicClosedIdle,
    /// Encrypted client connections closed because a message (or an HTTP request) did not arrive whole within tcp.read_timeout (DOT).
    DotClosedReadTimeout,
    /// Encrypted client connections closed because a message (or an HTTP request) did not arrive whole within tcp.read_timeout (DOH).
    DohClosedReadTimeout,
    /// TLS handshakes completed with clients (DOT).
    DotHandshakes,
    /// TLS handshakes completed with clients (DOH).
    DohHandshakes,
    /// TLS handshakes completed with clients (QUIC).
    QuicHandshakes,
    /// TLS handshakes with clients that failed or did not end within tcp.read_timeout (not TLS (DOT).
    DotHandshakeFailures,
    /// TLS handshakes with clients that failed or did not end within tcp.read_timeout (not TLS (DOH).
    DohHandshakeFailures,
    /// TLS handshakes with clients that failed or did not end within tcp.read_timeout (not TLS (QUIC).
    QuicHandshakeFailures,
    /// DNS queries read from encrypted client connections (DoH: requests that carried one) (DOT).
    DotQueries,
    /// DNS queries read from encrypted client connections (DoH: requests that carried one) (DOH).
    DohQueries,
    /// DNS queries read from encrypted client connections (DoH: requests that carried one) (QUIC).
    QuicQueries,
    /// Replies to encrypted clients whose connection or request was gone (DOT).
    DotRepliesOrphaned,
    /// Replies to encrypted clients whose connection or request was gone (DOH).
    DohRepliesOrphaned,
    /// Replies to encrypted clients whose connection or request was gone (QUIC).
    QuicRepliesOrphaned,
    /// DoH requests answered with HTTP 400.
    DohBadRequest,
    /// DoH requests answered with HTTP 404.
    DohNotFound,
    /// DoH requests answered with HTTP 405.
    DohBadMethod,
    /// DoH requests answered with HTTP 413.
    DohTooLarge,
    /// DoH requests answered with HTTP 415.
    DohBadMediaType,
    /// TLS connections to upstreams opened (handshake done).
    UpstreamTlsConnects,
    /// TLS upstream connections that failed after the handshake, or could not be opened (connect refused, or the upstream in backoff after a failure), and queries they lost.
    UpstreamTlsErrors,
    /// TLS handshakes with upstreams that failed (a certificate refused: unknown CA or wrong name; no common version; no answer within upstream.
    UpstreamTlsHandshakeFailures,
    /// Client TLS handshakes that resumed a session (DOT).
    DotResumptions,
    /// Client TLS handshakes that resumed a session (DOH).
    DohResumptions,
    /// Client TLS handshakes that resumed a session (QUIC).
    QuicResumptions,
    /// The session-ticket key set a core uses.
    TlsTicketKeyGeneration,
    /// Upstream TLS handshakes that resumed a session.
    UpstreamTlsResumptions,
    /// Encrypted client connections open now, DOT (a gauge).
    DotConnectionsOpen,
    /// Encrypted client connections open now, DOH (a gauge).
    DohConnectionsOpen,
    /// Encrypted client connections open now, QUIC (a gauge).
    QuicConnectionsOpen,
    /// Datagrams on the DNS-over-QUIC sockets that belong to no
    /// connection and start none (garbage, unknown connections).
    QuicDatagramsDropped,
    /// DNS-over-QUIC connections closed for a protocol error
    /// (DOQ_PROTOCOL_ERROR).
    QuicProtocolErrors,
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

const fn labelled_gauge(
    counter: Counter,
    metric: &'static str,
    label: (&'static str, &'static str),
    help: &'static str,
    json: (&'static str, &'static str),
) -> CounterDesc {
    CounterDesc {
        counter,
        kind: CounterKind::Gauge,
        metric,
        label: Some(label),
        help,
        json,
    }
}

const PAUSE_VERDICT_HELP: &str = "Probes of the coalescing pause (server.udp_coalesce): \
                                  epochs with and without it compared in CPU per query, by \
                                  which was cheaper (pause: by at least 5 %).";

const RESUMED_HELP: &str = "Client TLS handshakes that resumed an earlier session (a TLS 1.3 \
                            ticket, or a TLS 1.2 ticket or session ID) instead of a full key \
                            exchange, by transport.";
const DOH_REFUSED_HELP: &str = "DNS-over-HTTPS requests refused with an HTTP error, by status: 400 \
                                (no or bad dns parameter, a body that is not one DNS query), 404 \
                                (another path), 405 (not GET or POST), 413 (over 65535 bytes), 415 \
                                (a POST not of application/dns-message).";
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
pub const COUNTERS: [CounterDesc; 100] = [
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
        Counter::DnssecAggressive,
        "heimdall_dnssec_aggressive_answers_total",
        None,
        "NXDOMAIN and NODATA answers synthesised from cached validated NSEC records without asking upstream (RFC 8198, `dnssec.aggressive_nsec`).",
        ("dnssec", "aggressive"),
    ),
    desc(
        Counter::DnssecUnsignedFromSignedZone,
        "heimdall_dnssec_unsigned_from_signed_zone_total",
        None,
        "Answers that carried no RRSIG at all where the chain of trust requires signatures (a signed zone, or the signed denials of the delegations above an unsigned one): the upstream, or something on the path, strips DNSSEC records. Each is SERVFAIL (EDE 10, also counted in `heimdall_dnssec_bogus_total{reason=\"rrsigs_missing\"}`); the log names the upstream, at most once a minute per upstream and core.",
        ("dnssec", "unsigned_from_signed_zone"),
    ),
    desc(
        Counter::DnssecSignaturesRemembered,
        "heimdall_dnssec_signatures_remembered_total",
        None,
        "Signature checks DNSSEC validation skipped because the same signature over the same records with the same key had verified before (the per-core memo of verified signatures; a zone's SOA and shared NSEC3 records repeat in every denial).",
        ("dnssec", "signatures_remembered"),
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
        Counter::SteeringSpreadAdded,
        "heimdall_steering_spread_total",
        Some(("event", "added")),
        "Hot names (server.steering_spread) this core sent to every core instead of their owner (added), that cooled down and went back to their owner (expired), or that were not spread because 16 already were (full).",
        ("steering", "spread_added"),
    ),
    desc(
        Counter::SteeringSpreadExpired,
        "heimdall_steering_spread_total",
        Some(("event", "expired")),
        "Hot names (server.steering_spread) this core sent to every core instead of their owner (added), that cooled down and went back to their owner (expired), or that were not spread because 16 already were (full).",
        ("steering", "spread_expired"),
    ),
    desc(
        Counter::SteeringSpreadFull,
        "heimdall_steering_spread_total",
        Some(("event", "full")),
        "Hot names (server.steering_spread) this core sent to every core instead of their owner (added), that cooled down and went back to their owner (expired), or that were not spread because 16 already were (full).",
        ("steering", "spread_full"),
    ),
    desc(
        Counter::SteeringAttachErrors,
        "heimdall_steering_attach_errors_total",
        None,
        "Steering programs with a changed set of hot names that the kernel refused (the previous program stays).",
        ("steering", "attach_errors"),
    ),
    desc(
        Counter::OffOwnerFetches,
        "heimdall_cache_off_owner_fetches_total",
        None,
        "Cache misses of TCP, TLS, HTTPS and QUIC queries on a core that does not own the name under name steering (the kernel spreads connections by flow): each fetch stores a duplicate of an answer the owner core may hold. Summed over the cores, an upper bound of the duplicated entries stored since the start.",
        ("steering", "off_owner_fetches"),
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
        Counter::UdpReceiveRearms,
        "heimdall_udp_receive_rearms_total",
        None,
        "Times a UDP listener's multishot receive was ended by the kernel (its buffers ran out \
         under a burst; the listener read the rest with recvmmsg) and armed again.",
        ("udp", "receive_rearms"),
    ),
    desc(
        Counter::UdpPauses,
        "heimdall_udp_pauses_total",
        None,
        "Coalescing pauses the UDP listeners took (server.udp_coalesce): waits on a timer for more \
         queries instead of waking for each.",
        ("udp", "pauses"),
    ),
    desc(
        Counter::UdpPauseVerdictPause,
        "heimdall_udp_pause_verdicts_total",
        Some(("verdict", "pause")),
        PAUSE_VERDICT_HELP,
        ("udp", "pause_verdicts_pause"),
    ),
    desc(
        Counter::UdpPauseVerdictNoPause,
        "heimdall_udp_pause_verdicts_total",
        Some(("verdict", "no_pause")),
        PAUSE_VERDICT_HELP,
        ("udp", "pause_verdicts_no_pause"),
    ),
    gauge(
        Counter::UdpPausing,
        "heimdall_udp_pausing",
        "1 while the core's UDP listeners may pause to gather queries (its last probe found the \
         pause at least 5 % cheaper in CPU per query than waking for each), else 0.",
        ("udp", "pausing"),
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
    desc(
        Counter::DotAccepted,
        "heimdall_tls_connections_accepted_total",
        Some(("transport", "dot")),
        "Client connections accepted on the encrypted listeners, by transport: dot (DNS over TLS), doh (DNS over HTTPS) or quic (DNS over QUIC).",
        ("dot", "accepted"),
    ),
    desc(
        Counter::DohAccepted,
        "heimdall_tls_connections_accepted_total",
        Some(("transport", "doh")),
        "Client connections accepted on the encrypted listeners, by transport: dot (DNS over TLS), doh (DNS over HTTPS) or quic (DNS over QUIC).",
        ("doh", "accepted"),
    ),
    desc(
        Counter::QuicAccepted,
        "heimdall_tls_connections_accepted_total",
        Some(("transport", "quic")),
        "Client connections accepted on the encrypted listeners, by transport: dot (DNS over TLS), doh (DNS over HTTPS) or quic (DNS over QUIC).",
        ("quic", "accepted"),
    ),
    desc(
        Counter::DotRefused,
        "heimdall_tls_connections_refused_total",
        Some(("transport", "dot")),
        "Encrypted client connections refused because the table was full (tcp.max_connections, handshakes included) and none was idle (quic: whenever full), by transport.",
        ("dot", "refused"),
    ),
    desc(
        Counter::DohRefused,
        "heimdall_tls_connections_refused_total",
        Some(("transport", "doh")),
        "Encrypted client connections refused because the table was full (tcp.max_connections, handshakes included) and none was idle (quic: whenever full), by transport.",
        ("doh", "refused"),
    ),
    desc(
        Counter::QuicRefused,
        "heimdall_tls_connections_refused_total",
        Some(("transport", "quic")),
        "Encrypted client connections refused because the table was full (tcp.max_connections, handshakes included) and none was idle (quic: whenever full), by transport.",
        ("quic", "refused"),
    ),
    desc(
        Counter::DotEvicted,
        "heimdall_tls_connections_evicted_total",
        Some(("transport", "dot")),
        "Idle encrypted client connections closed to make room for a new one, by transport.",
        ("dot", "evicted"),
    ),
    desc(
        Counter::DohEvicted,
        "heimdall_tls_connections_evicted_total",
        Some(("transport", "doh")),
        "Idle encrypted client connections closed to make room for a new one, by transport.",
        ("doh", "evicted"),
    ),
    desc(
        Counter::DotClosedIdle,
        "heimdall_tls_connections_closed_idle_total",
        Some(("transport", "dot")),
        "Encrypted client connections closed after tcp.idle_timeout, by transport.",
        ("dot", "closed_idle"),
    ),
    desc(
        Counter::DohClosedIdle,
        "heimdall_tls_connections_closed_idle_total",
        Some(("transport", "doh")),
        "Encrypted client connections closed after tcp.idle_timeout, by transport.",
        ("doh", "closed_idle"),
    ),
    desc(
        Counter::QuicClosedIdle,
        "heimdall_tls_connections_closed_idle_total",
        Some(("transport", "quic")),
        "Encrypted client connections closed after tcp.idle_timeout, by transport.",
        ("quic", "closed_idle"),
    ),
    desc(
        Counter::DotClosedReadTimeout,
        "heimdall_tls_connections_closed_read_timeout_total",
        Some(("transport", "dot")),
        "Encrypted client connections closed because a message (or an HTTP request) did not arrive whole within tcp.read_timeout, by transport.",
        ("dot", "closed_read_timeout"),
    ),
    desc(
        Counter::DohClosedReadTimeout,
        "heimdall_tls_connections_closed_read_timeout_total",
        Some(("transport", "doh")),
        "Encrypted client connections closed because a message (or an HTTP request) did not arrive whole within tcp.read_timeout, by transport.",
        ("doh", "closed_read_timeout"),
    ),
    desc(
        Counter::DotHandshakes,
        "heimdall_tls_handshakes_total",
        Some(("transport", "dot")),
        "TLS handshakes completed with clients, by transport.",
        ("dot", "handshakes"),
    ),
    desc(
        Counter::DohHandshakes,
        "heimdall_tls_handshakes_total",
        Some(("transport", "doh")),
        "TLS handshakes completed with clients, by transport.",
        ("doh", "handshakes"),
    ),
    desc(
        Counter::QuicHandshakes,
        "heimdall_tls_handshakes_total",
        Some(("transport", "quic")),
        "TLS handshakes completed with clients, by transport.",
        ("quic", "handshakes"),
    ),
    desc(
        Counter::DotHandshakeFailures,
        "heimdall_tls_handshake_failures_total",
        Some(("transport", "dot")),
        "TLS handshakes with clients that failed or did not end within tcp.read_timeout (not TLS, no common version or ALPN, a stalled client), by transport.",
        ("dot", "handshake_failures"),
    ),
    desc(
        Counter::DohHandshakeFailures,
        "heimdall_tls_handshake_failures_total",
        Some(("transport", "doh")),
        "TLS handshakes with clients that failed or did not end within tcp.read_timeout (not TLS, no common version or ALPN, a stalled client), by transport.",
        ("doh", "handshake_failures"),
    ),
    desc(
        Counter::QuicHandshakeFailures,
        "heimdall_tls_handshake_failures_total",
        Some(("transport", "quic")),
        "TLS handshakes with clients that failed or did not end within tcp.read_timeout (not TLS, no common version or ALPN, a stalled client), by transport.",
        ("quic", "handshake_failures"),
    ),
    desc(
        Counter::DotQueries,
        "heimdall_tls_queries_total",
        Some(("transport", "dot")),
        "DNS queries read from encrypted client connections (DoH: requests that carried one), by transport.",
        ("dot", "queries"),
    ),
    desc(
        Counter::DohQueries,
        "heimdall_tls_queries_total",
        Some(("transport", "doh")),
        "DNS queries read from encrypted client connections (DoH: requests that carried one), by transport.",
        ("doh", "queries"),
    ),
    desc(
        Counter::QuicQueries,
        "heimdall_tls_queries_total",
        Some(("transport", "quic")),
        "DNS queries read from encrypted client connections (DoH: requests that carried one), by transport.",
        ("quic", "queries"),
    ),
    desc(
        Counter::DotRepliesOrphaned,
        "heimdall_tls_replies_orphaned_total",
        Some(("transport", "dot")),
        "Replies to encrypted clients whose connection or request was gone, by transport.",
        ("dot", "replies_orphaned"),
    ),
    desc(
        Counter::DohRepliesOrphaned,
        "heimdall_tls_replies_orphaned_total",
        Some(("transport", "doh")),
        "Replies to encrypted clients whose connection or request was gone, by transport.",
        ("doh", "replies_orphaned"),
    ),
    desc(
        Counter::QuicRepliesOrphaned,
        "heimdall_tls_replies_orphaned_total",
        Some(("transport", "quic")),
        "Replies to encrypted clients whose connection or request was gone, by transport.",
        ("quic", "replies_orphaned"),
    ),
    desc(
        Counter::DohBadRequest,
        "heimdall_doh_requests_refused_total",
        Some(("status", "400")),
        DOH_REFUSED_HELP,
        ("doh", "refused_bad_request"),
    ),
    desc(
        Counter::DohNotFound,
        "heimdall_doh_requests_refused_total",
        Some(("status", "404")),
        DOH_REFUSED_HELP,
        ("doh", "refused_not_found"),
    ),
    desc(
        Counter::DohBadMethod,
        "heimdall_doh_requests_refused_total",
        Some(("status", "405")),
        DOH_REFUSED_HELP,
        ("doh", "refused_bad_method"),
    ),
    desc(
        Counter::DohTooLarge,
        "heimdall_doh_requests_refused_total",
        Some(("status", "413")),
        DOH_REFUSED_HELP,
        ("doh", "refused_too_large"),
    ),
    desc(
        Counter::DohBadMediaType,
        "heimdall_doh_requests_refused_total",
        Some(("status", "415")),
        DOH_REFUSED_HELP,
        ("doh", "refused_bad_media_type"),
    ),
    desc(
        Counter::UpstreamTlsConnects,
        "heimdall_upstream_tls_connects_total",
        None,
        "TLS connections to tls and https upstreams opened (handshake done; for https, HTTP/2 too).",
        ("upstream_tls", "connects"),
    ),
    desc(
        Counter::UpstreamTlsErrors,
        "heimdall_upstream_tls_errors_total",
        None,
        "TLS connections to tls and https upstreams that failed after the handshake, or could not be opened (connect refused, or the upstream in backoff after a failure), and queries they lost (for https also requests refused or answered with another status than 200).",
        ("upstream_tls", "errors"),
    ),
    desc(
        Counter::UpstreamTlsHandshakeFailures,
        "heimdall_upstream_tls_handshake_failures_total",
        None,
        "TLS handshakes with tls and https upstreams that failed (a certificate refused: unknown CA or wrong name; no common version or ALPN; no answer within upstream.timeout). The upstream backs off, and its queries fail over like timeouts.",
        ("upstream_tls", "handshake_failures"),
    ),
    desc(
        Counter::DotResumptions,
        "heimdall_tls_resumptions_total",
        Some(("transport", "dot")),
        RESUMED_HELP,
        ("dot", "resumptions"),
    ),
    desc(
        Counter::DohResumptions,
        "heimdall_tls_resumptions_total",
        Some(("transport", "doh")),
        RESUMED_HELP,
        ("doh", "resumptions"),
    ),
    desc(
        Counter::QuicResumptions,
        "heimdall_tls_resumptions_total",
        Some(("transport", "quic")),
        RESUMED_HELP,
        ("quic", "resumptions"),
    ),
    gauge(
        Counter::TlsTicketKeyGeneration,
        "heimdall_tls_ticket_key_generation",
        "The session-ticket key set the core seals tickets with: 1 at start, one more at each rotation (tls.ticket_rotation) and at each reload that found a new certificate; 0 with tickets off. Every core shows the same value a moment after a change.",
        ("tls", "ticket_key_generation"),
    ),
    desc(
        Counter::UpstreamTlsResumptions,
        "heimdall_upstream_tls_resumptions_total",
        None,
        "TLS handshakes with tls and https upstreams that resumed an earlier session.",
        ("upstream_tls", "resumptions"),
    ),
    labelled_gauge(
        Counter::DotConnectionsOpen,
        "heimdall_tls_connections_open",
        ("transport", "dot"),
        "Encrypted client connections open (handshakes included), by transport.",
        ("dot", "connections_open"),
    ),
    labelled_gauge(
        Counter::DohConnectionsOpen,
        "heimdall_tls_connections_open",
        ("transport", "doh"),
        "Encrypted client connections open (handshakes included), by transport.",
        ("doh", "connections_open"),
    ),
    labelled_gauge(
        Counter::QuicConnectionsOpen,
        "heimdall_tls_connections_open",
        ("transport", "quic"),
        "Encrypted client connections open (handshakes included), by transport.",
        ("quic", "connections_open"),
    ),
    desc(
        Counter::QuicDatagramsDropped,
        "heimdall_quic_datagrams_dropped_total",
        None,
        "Datagrams on the DNS-over-QUIC sockets dropped because they belong to no connection of this core and start none: garbage, a connection another core holds (after a client's address changed), or one already closed.",
        ("quic", "datagrams_dropped"),
    ),
    desc(
        Counter::QuicProtocolErrors,
        "heimdall_quic_protocol_errors_total",
        None,
        "DNS-over-QUIC connections closed with DOQ_PROTOCOL_ERROR (RFC 9250 section 4.3.3): a query with a Message ID other than 0, a stream carrying no whole query, or a unidirectional stream.",
        ("quic", "protocol_errors"),
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
