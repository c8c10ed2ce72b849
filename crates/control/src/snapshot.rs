//! The metrics snapshot model: plain counters, independent of the other
//! crates. The server fills one [`CoreSnapshot`] per core from its
//! resolver, cache and upstream counters.

use crate::counters::CounterSet;

/// Query types counted on their own; everything else is
/// [`QtypeBucket::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QtypeBucket {
    /// A (1).
    A,
    /// AAAA (28).
    Aaaa,
    /// MX (15).
    Mx,
    /// TXT (16).
    Txt,
    /// PTR (12).
    Ptr,
    /// SRV (33).
    Srv,
    /// NS (2).
    Ns,
    /// CNAME (5).
    Cname,
    /// SOA (6).
    Soa,
    /// HTTPS (65).
    Https,
    /// ANY (255).
    Any,
    /// Every other type.
    Other,
}

/// Every [`QtypeBucket`], in exposition order.
pub const QTYPE_BUCKETS: [QtypeBucket; 12] = [
    QtypeBucket::A,
    QtypeBucket::Aaaa,
    QtypeBucket::Mx,
    QtypeBucket::Txt,
    QtypeBucket::Ptr,
    QtypeBucket::Srv,
    QtypeBucket::Ns,
    QtypeBucket::Cname,
    QtypeBucket::Soa,
    QtypeBucket::Https,
    QtypeBucket::Any,
    QtypeBucket::Other,
];

impl QtypeBucket {
    /// The bucket of a query type code.
    pub fn from_code(code: u16) -> Self {
        match code {
            1 => Self::A,
            28 => Self::Aaaa,
            15 => Self::Mx,
            16 => Self::Txt,
            12 => Self::Ptr,
            33 => Self::Srv,
            2 => Self::Ns,
            5 => Self::Cname,
            6 => Self::Soa,
            65 => Self::Https,
            255 => Self::Any,
            _ => Self::Other,
        }
    }

    /// The label value (`A`, `AAAA`, ..., `other`).
    pub fn label(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Mx => "MX",
            Self::Txt => "TXT",
            Self::Ptr => "PTR",
            Self::Srv => "SRV",
            Self::Ns => "NS",
            Self::Cname => "CNAME",
            Self::Soa => "SOA",
            Self::Https => "HTTPS",
            Self::Any => "ANY",
            Self::Other => "other",
        }
    }
}

/// Queries per [`QtypeBucket`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QtypeCounts {
    counts: [u64; 12],
}

impl QtypeCounts {
    /// Count `n` queries of this type code.
    pub fn add_code(&mut self, code: u16, n: u64) {
        self.add(QtypeBucket::from_code(code), n);
    }

    /// Count `n` queries in this bucket.
    pub fn add(&mut self, bucket: QtypeBucket, n: u64) {
        if let Some(slot) = self.counts.get_mut(bucket as usize) {
            *slot = slot.saturating_add(n);
        }
    }

    /// The count of one bucket.
    pub fn get(&self, bucket: QtypeBucket) -> u64 {
        self.counts.get(bucket as usize).copied().unwrap_or(0)
    }

    /// Every bucket with its count, in exposition order.
    pub fn iter(&self) -> impl Iterator<Item = (QtypeBucket, u64)> + '_ {
        QTYPE_BUCKETS
            .iter()
            .map(|&bucket| (bucket, self.get(bucket)))
    }

    fn merge(&mut self, other: &Self) {
        for (bucket, n) in other.iter() {
            self.add(bucket, n);
        }
    }
}

/// Response codes counted on their own; everything else is
/// [`RcodeBucket::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RcodeBucket {
    /// NOERROR (0).
    NoError,
    /// FORMERR (1).
    FormErr,
    /// SERVFAIL (2).
    ServFail,
    /// NXDOMAIN (3).
    NxDomain,
    /// NOTIMP (4).
    NotImp,
    /// REFUSED (5).
    Refused,
    /// Every other code (BADVERS and friends).
    Other,
}

/// Every [`RcodeBucket`], in exposition order.
pub const RCODE_BUCKETS: [RcodeBucket; 7] = [
    RcodeBucket::NoError,
    RcodeBucket::FormErr,
    RcodeBucket::ServFail,
    RcodeBucket::NxDomain,
    RcodeBucket::NotImp,
    RcodeBucket::Refused,
    RcodeBucket::Other,
];

impl RcodeBucket {
    /// The bucket of a (possibly extended) response code.
    pub fn from_code(code: u16) -> Self {
        match code {
            0 => Self::NoError,
            1 => Self::FormErr,
            2 => Self::ServFail,
            3 => Self::NxDomain,
            4 => Self::NotImp,
            5 => Self::Refused,
            _ => Self::Other,
        }
    }

    /// The label value (`NOERROR`, ..., `other`).
    pub fn label(self) -> &'static str {
        match self {
            Self::NoError => "NOERROR",
            Self::FormErr => "FORMERR",
            Self::ServFail => "SERVFAIL",
            Self::NxDomain => "NXDOMAIN",
            Self::NotImp => "NOTIMP",
            Self::Refused => "REFUSED",
            Self::Other => "other",
        }
    }
}

/// Responses per [`RcodeBucket`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RcodeCounts {
    counts: [u64; 7],
}

impl RcodeCounts {
    /// Count `n` responses with this code.
    pub fn add_code(&mut self, code: u16, n: u64) {
        self.add(RcodeBucket::from_code(code), n);
    }

    /// Count `n` responses in this bucket.
    pub fn add(&mut self, bucket: RcodeBucket, n: u64) {
        if let Some(slot) = self.counts.get_mut(bucket as usize) {
            *slot = slot.saturating_add(n);
        }
    }

    /// The count of one bucket.
    pub fn get(&self, bucket: RcodeBucket) -> u64 {
        self.counts.get(bucket as usize).copied().unwrap_or(0)
    }

    /// Every bucket with its count, in exposition order.
    pub fn iter(&self) -> impl Iterator<Item = (RcodeBucket, u64)> + '_ {
        RCODE_BUCKETS
            .iter()
            .map(|&bucket| (bucket, self.get(bucket)))
    }

    fn merge(&mut self, other: &Self) {
        for (bucket, n) in other.iter() {
            self.add(bucket, n);
        }
    }
}

/// Client queries by transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportCounts {
    /// Over UDP.
    pub udp: u64,
    /// Over TCP.
    pub tcp: u64,
    /// Over TLS (RFC 7858).
    pub tls: u64,
    /// Over HTTPS (RFC 8484).
    pub https: u64,
    /// Over QUIC (RFC 9250).
    pub quic: u64,
}

/// One cache shard's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheSnapshot {
    /// Fresh hits.
    pub hits: u64,
    /// Misses (expired entries included).
    pub misses: u64,
    /// Stale answers served.
    pub stale_served: u64,
    /// Prefetches started.
    pub prefetches: u64,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Entries held now (a gauge).
    pub entries: u64,
    /// Entries held now that were stored from another core's hint (a
    /// gauge): copies of answers another core fetched. `entries - copies`
    /// is what this core fetched itself; the sum of `copies` over the
    /// cores estimates the duplicated entries (an upper bound: the core
    /// that fetched an answer may have evicted it since).
    pub copies: u64,
    /// Bytes accounted now (a gauge).
    pub bytes: u64,
}

/// One core's dnstap counters (`dnstap.enabled`): messages written to the
/// reader, and messages dropped (the core's buffer was full, or a write
/// failed when the reader went away).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DnstapSnapshot {
    /// Messages written to the reader's socket.
    pub sent: u64,
    /// Messages dropped.
    pub dropped: u64,
}

/// One core's hint-mesh counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HintSnapshot {
    /// Hints sent to other cores.
    pub sent: u64,
    /// Hints received from other cores.
    pub received: u64,
    /// Hints dropped (full queues or channels).
    pub dropped: u64,
}

/// One core's UDP reply counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpSnapshot {
    /// Replies and upstream queries the kernel refused (full buffers).
    pub send_errors: u64,
    /// Sends that carried several replies as UDP GSO segments.
    pub gso_sends: u64,
    /// Replies that left inside those sends.
    pub gso_segments: u64,
    /// GSO sends the kernel refused whose replies were sent one by one.
    pub gso_fallbacks: u64,
}

/// Queries stopped by policy or by parsing (the ACL and the rate limiter,
/// by action, are in [`CoreSnapshot::counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicySnapshot {
    /// Answered by the blocklist.
    pub blocked: u64,
    /// Malformed client packets, dropped.
    pub malformed: u64,
}

/// What clients' COOKIE options carried (RFC 7873), and what requiring
/// one sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCookieSnapshot {
    /// A valid server cookie of ours.
    pub valid: u64,
    /// Only a client cookie.
    pub new: u64,
    /// A server cookie that is not ours, expired, or another client's.
    pub bad: u64,
    /// A malformed COOKIE option (FORMERR).
    pub malformed: u64,
    /// BADCOOKIE replies sent above `cookies.udp_require_above`.
    pub badcookie_sent: u64,
    /// TC replies sent to cookie-less UDP queries above it.
    pub truncated: u64,
}

impl ClientCookieSnapshot {
    /// The outcomes with their label values, in exposition order.
    pub fn outcomes(&self) -> [(&'static str, u64); 4] {
        [
            ("valid", self.valid),
            ("new", self.new),
            ("bad", self.bad),
            ("malformed", self.malformed),
        ]
    }

    fn merge(&mut self, other: &Self) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.valid, other.valid);
        add(&mut self.new, other.new);
        add(&mut self.bad, other.bad);
        add(&mut self.malformed, other.malformed);
        add(&mut self.badcookie_sent, other.badcookie_sent);
        add(&mut self.truncated, other.truncated);
    }
}

/// Why the reply check threw an upstream reply away (every reason but a
/// parse failure, which is [`ReplyCheckSnapshot::malformed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No query in flight has this ID.
    WrongId,
    /// It came in on a socket other than its attempt's own.
    WrongSocket,
    /// It came from an address or port the query was not sent to.
    WrongSource,
    /// Its question is not the one asked.
    WrongQuestion,
    /// Its question differs from the one asked only in letter case (0x20).
    WrongCase,
    /// Its DNS cookie is not ours (RFC 7873).
    WrongCookie,
    /// It came over a transport its query did not use (UDP for TCP).
    WrongTransport,
    /// It is not a response (QR clear).
    NotResponse,
}

/// Every [`RejectReason`], in exposition order.
pub const REJECT_REASONS: [RejectReason; 8] = [
    RejectReason::WrongId,
    RejectReason::WrongSocket,
    RejectReason::WrongSource,
    RejectReason::WrongQuestion,
    RejectReason::WrongCase,
    RejectReason::WrongCookie,
    RejectReason::WrongTransport,
    RejectReason::NotResponse,
];

impl RejectReason {
    /// The label value (`wrong_id`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Self::WrongId => "wrong_id",
            Self::WrongSocket => "wrong_socket",
            Self::WrongSource => "wrong_source",
            Self::WrongQuestion => "wrong_question",
            Self::WrongCase => "wrong_case",
            Self::WrongCookie => "wrong_cookie",
            Self::WrongTransport => "wrong_transport",
            Self::NotResponse => "not_response",
        }
    }
}

/// What the reply check did with one core's upstream replies: the trace a
/// spoofing attempt leaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCheckSnapshot {
    rejected: [u64; 8],
    /// Replies rejected for any reason but a parse failure (the sum of
    /// the reasons).
    pub mismatched: u64,
    /// Replies that could not be parsed.
    pub malformed: u64,
    /// Replies to an earlier attempt of a query still in flight, accepted.
    pub late_accepted: u64,
    /// Upstreams found not to preserve letter case, for which 0x20 was
    /// turned off.
    pub case_fallbacks: u64,
    // DNS cookies toward upstreams (RFC 7873, client side).
    /// Upstreams that had sent cookies and were found to have stopped
    /// (attempts timed out with only cookie-less replies).
    pub cookie_fallbacks: u64,
    /// BADCOOKIE replies answered by asking again with the server cookie
    /// they carried.
    pub badcookie_retries: u64,
    /// Attempts that timed out with wrong-case or cookie-less replies on a
    /// flooded socket, not counted as strikes toward either fallback.
    pub strikes_flooded: u64,
}

impl ReplyCheckSnapshot {
    /// Count `n` replies rejected for `reason`.
    pub fn add_rejected(&mut self, reason: RejectReason, n: u64) {
        if let Some(slot) = self.rejected.get_mut(reason as usize) {
            *slot = slot.saturating_add(n);
        }
    }

    /// The replies rejected for one reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected.get(reason as usize).copied().unwrap_or(0)
    }

    /// Every reason with its count, in exposition order.
    pub fn iter_rejected(&self) -> impl Iterator<Item = (RejectReason, u64)> + '_ {
        REJECT_REASONS
            .iter()
            .map(|&reason| (reason, self.rejected(reason)))
    }

    fn merge(&mut self, other: &Self) {
        for (reason, n) in other.iter_rejected() {
            self.add_rejected(reason, n);
        }
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.mismatched, other.mismatched);
        add(&mut self.malformed, other.malformed);
        add(&mut self.late_accepted, other.late_accepted);
        add(&mut self.case_fallbacks, other.case_fallbacks);
        add(&mut self.cookie_fallbacks, other.cookie_fallbacks);
        add(&mut self.badcookie_retries, other.badcookie_retries);
        add(&mut self.strikes_flooded, other.strikes_flooded);
    }
}

/// One core's upstream UDP sockets: each attempt on its own, on a random
/// port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamSocketSnapshot {
    /// Sockets open now (a gauge).
    pub open: u64,
    /// Sockets opened.
    pub opened: u64,
    /// Random ports that were taken, so another was tried.
    pub bind_retries: u64,
    /// Attempts that found no free port (or no socket) and were not sent.
    pub bind_failures: u64,
    /// Attempts that waited for a socket because `upstream.max_sockets`
    /// were open.
    pub waits: u64,
    /// Attempts dropped because the wait queue was full too.
    pub wait_drops: u64,
    /// Datagrams that reached a socket after its attempt was retired:
    /// dropped.
    pub strays: u64,
}

impl UpstreamSocketSnapshot {
    fn merge(&mut self, other: &Self) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.open, other.open);
        add(&mut self.opened, other.opened);
        add(&mut self.bind_retries, other.bind_retries);
        add(&mut self.bind_failures, other.bind_failures);
        add(&mut self.waits, other.waits);
        add(&mut self.wait_drops, other.wait_drops);
        add(&mut self.strays, other.strays);
    }
}

/// The upstream latency histogram and its bucket bounds: one type for
/// the engine that records and the exporters that render.
pub use heimdall_histogram::{LATENCY_BOUNDS_US, LatencyHistogram};

/// One upstream as seen by one core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamSnapshot {
    /// The label, normally the address (`192.0.2.1:53`).
    pub label: String,
    /// Queries sent.
    pub queries: u64,
    /// Error replies (SERVFAIL, REFUSED, unparseable).
    pub errors: u64,
    /// Timeouts.
    pub timeouts: u64,
    /// Accepted replies (NOERROR and NXDOMAIN).
    pub replies: u64,
    /// Replies with TC set.
    pub truncated: u64,
    /// Replies that echoed the 0x20 case wrongly.
    pub case_mismatches: u64,
    /// Attempts that timed out with only wrong-case replies.
    pub case_strikes: u64,
    /// Times it was found not to echo the 0x20 case.
    pub case_fallbacks: u64,
    /// Times it was found to have stopped sending DNS cookies.
    pub cookie_fallbacks: u64,
    /// Reply latency.
    pub latency: LatencyHistogram,
    // What the core knows of the upstream: 0 or 1 on one core, the
    // number of cores in the totals.
    /// It has sent DNS cookies (so a cookie-less reply from it is refused).
    pub cookies_supported: u64,
    /// A server cookie from it is known (and sent with every query).
    pub server_cookie_known: u64,
    /// It is in 0x20 case fallback (asked in lower case).
    pub case_fallback: u64,
    /// The smoothed round-trip time this core measured, in microseconds
    /// (`None` before a reply); in totals, the lowest of the cores'.
    pub srtt_us: Option<u64>,
    /// Attempts that failed in a row on this core (0 after a good reply);
    /// in totals, the highest of the cores'.
    pub consecutive_failures: u64,
}

/// One core's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreSnapshot {
    /// The core's index.
    pub core: usize,
    /// Client queries by transport.
    pub queries: TransportCounts,
    /// Client queries by type.
    pub qtypes: QtypeCounts,
    /// Responses by code.
    pub rcodes: RcodeCounts,
    /// The cache shard.
    pub cache: CacheSnapshot,
    /// The hint mesh.
    pub hints: HintSnapshot,
    /// UDP sends.
    pub udp: UdpSnapshot,
    /// Policy and parse failures.
    pub policy: PolicySnapshot,
    /// Upstreams, in configured order.
    pub upstreams: Vec<UpstreamSnapshot>,
    /// The reply check: rejected, late and 0x20 counters.
    pub replies: ReplyCheckSnapshot,
    /// Upstream UDP sockets.
    pub sockets: UpstreamSocketSnapshot,
    /// Server cookies toward clients.
    pub client_cookies: ClientCookieSnapshot,
    /// dnstap messages.
    pub dnstap: DnstapSnapshot,
    /// The counters kept by descriptor ([`COUNTERS`](crate::COUNTERS)).
    pub counters: CounterSet,
    /// How long clients waited for their answers.
    pub answers: AnswerLatency,
}

impl CoreSnapshot {
    /// Add another core's counters to this one (gauges are summed too;
    /// upstreams are matched by label).
    pub fn merge(&mut self, other: &Self) {
        let add = |a: &mut u64, b: u64| *a = a.saturating_add(b);
        add(&mut self.queries.udp, other.queries.udp);
        add(&mut self.queries.tcp, other.queries.tcp);
        add(&mut self.queries.tls, other.queries.tls);
        add(&mut self.queries.https, other.queries.https);
        add(&mut self.queries.quic, other.queries.quic);
        self.qtypes.merge(&other.qtypes);
        self.rcodes.merge(&other.rcodes);
        add(&mut self.cache.hits, other.cache.hits);
        add(&mut self.cache.misses, other.cache.misses);
        add(&mut self.cache.stale_served, other.cache.stale_served);
        add(&mut self.cache.prefetches, other.cache.prefetches);
        add(&mut self.cache.evictions, other.cache.evictions);
        add(&mut self.cache.entries, other.cache.entries);
        add(&mut self.cache.bytes, other.cache.bytes);
        add(&mut self.hints.sent, other.hints.sent);
        add(&mut self.hints.received, other.hints.received);
        add(&mut self.hints.dropped, other.hints.dropped);
        add(&mut self.udp.send_errors, other.udp.send_errors);
        add(&mut self.udp.gso_sends, other.udp.gso_sends);
        add(&mut self.udp.gso_segments, other.udp.gso_segments);
        add(&mut self.udp.gso_fallbacks, other.udp.gso_fallbacks);
        add(&mut self.policy.blocked, other.policy.blocked);
        add(&mut self.policy.malformed, other.policy.malformed);
        self.replies.merge(&other.replies);
        self.sockets.merge(&other.sockets);
        self.client_cookies.merge(&other.client_cookies);
        add(&mut self.dnstap.sent, other.dnstap.sent);
        add(&mut self.dnstap.dropped, other.dnstap.dropped);
        self.counters.merge(&other.counters);
        self.answers.merge(&other.answers);
        for upstream in &other.upstreams {
            match self
                .upstreams
                .iter_mut()
                .find(|mine| mine.label == upstream.label)
            {
                Some(mine) => {
                    add(&mut mine.queries, upstream.queries);
                    add(&mut mine.errors, upstream.errors);
                    add(&mut mine.timeouts, upstream.timeouts);
                    add(&mut mine.replies, upstream.replies);
                    add(&mut mine.truncated, upstream.truncated);
                    add(&mut mine.case_mismatches, upstream.case_mismatches);
                    add(&mut mine.case_strikes, upstream.case_strikes);
                    add(&mut mine.case_fallbacks, upstream.case_fallbacks);
                    add(&mut mine.cookie_fallbacks, upstream.cookie_fallbacks);
                    mine.latency.merge(&upstream.latency);
                    add(&mut mine.cookies_supported, upstream.cookies_supported);
                    add(&mut mine.server_cookie_known, upstream.server_cookie_known);
                    add(&mut mine.case_fallback, upstream.case_fallback);
                    mine.srtt_us = match (mine.srtt_us, upstream.srtt_us) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    mine.consecutive_failures =
                        mine.consecutive_failures.max(upstream.consecutive_failures);
                }
                None => self.upstreams.push(upstream.clone()),
            }
        }
    }
}

/// How long clients waited for their answers, by transport and by
/// whether the answer was ready at once (`hit`: the cache, local data, the
/// blocklist or an error reply) or waited on an upstream (`miss`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnswerLatency {
    /// UDP, answered at once.
    pub udp_hit: LatencyHistogram,
    /// UDP, answered after an upstream query.
    pub udp_miss: LatencyHistogram,
    /// TCP, answered at once.
    pub tcp_hit: LatencyHistogram,
    /// TCP, answered after an upstream query.
    pub tcp_miss: LatencyHistogram,
    /// DNS over TLS, answered at once.
    pub tls_hit: LatencyHistogram,
    /// DNS over TLS, answered after an upstream query.
    pub tls_miss: LatencyHistogram,
    /// DNS over HTTPS, answered at once.
    pub https_hit: LatencyHistogram,
    /// DNS over HTTPS, answered after an upstream query.
    pub https_miss: LatencyHistogram,
    /// DNS over QUIC, answered at once.
    pub quic_hit: LatencyHistogram,
    /// DNS over QUIC, answered after an upstream query.
    pub quic_miss: LatencyHistogram,
}

impl AnswerLatency {
    /// `(transport, cache, histogram)` for each series, in exposition order.
    pub fn series(&self) -> [(&'static str, &'static str, &LatencyHistogram); 10] {
        [
            ("udp", "hit", &self.udp_hit),
            ("udp", "miss", &self.udp_miss),
            ("tcp", "hit", &self.tcp_hit),
            ("tcp", "miss", &self.tcp_miss),
            ("tls", "hit", &self.tls_hit),
            ("tls", "miss", &self.tls_miss),
            ("https", "hit", &self.https_hit),
            ("https", "miss", &self.https_miss),
            ("quic", "hit", &self.quic_hit),
            ("quic", "miss", &self.quic_miss),
        ]
    }

    fn merge(&mut self, other: &Self) {
        self.udp_hit.merge(&other.udp_hit);
        self.udp_miss.merge(&other.udp_miss);
        self.tcp_hit.merge(&other.tcp_hit);
        self.tcp_miss.merge(&other.tcp_miss);
        self.tls_hit.merge(&other.tls_hit);
        self.tls_miss.merge(&other.tls_miss);
        self.https_hit.merge(&other.https_hit);
        self.https_miss.merge(&other.https_miss);
        self.quic_hit.merge(&other.quic_hit);
        self.quic_miss.merge(&other.quic_miss);
    }
}

/// What the server says of itself: version and reloads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSnapshot {
    /// The package version.
    pub version: String,
    /// The git commit built, when known at build time.
    pub commit: Option<String>,
    /// The compiler that built it, when known at build time.
    pub rustc: Option<String>,
    /// Reloads that took effect.
    pub reloads_ok: u64,
    /// Reloads that failed (the running configuration stayed).
    pub reloads_failed: u64,
    /// When the last reload took effect, in seconds since the Unix epoch
    /// (`None`: never since start).
    pub last_reload_success_unix: Option<u64>,
}

/// The process's own resources, read by the server from `/proc/self`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessSnapshot {
    /// Resident memory, bytes.
    pub resident_memory_bytes: u64,
    /// Virtual memory, bytes.
    pub virtual_memory_bytes: u64,
    /// File descriptors open.
    pub open_fds: u64,
    /// The soft limit on open file descriptors.
    pub max_fds: u64,
    /// User and system CPU time, microseconds.
    pub cpu_micros: u64,
    /// When the process started, microseconds since the Unix epoch.
    pub start_time_unix_micros: u64,
}

/// Everything the metrics and stats renderers need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// One entry per core.
    pub cores: Vec<CoreSnapshot>,
    /// Version and reloads.
    pub server: ServerSnapshot,
    /// The process's resources (`None`: not read, e.g. not on Linux).
    pub process: Option<ProcessSnapshot>,
    /// `/metrics` without the `core` label: each family's cores summed
    /// (`control.metrics_per_core: false`). `/stats` lists the cores
    /// either way.
    pub aggregate_cores: bool,
}

impl Snapshot {
    /// All cores added together (`core` is 0).
    pub fn totals(&self) -> CoreSnapshot {
        let mut total = CoreSnapshot::default();
        for core in &self.cores {
            total.merge(core);
        }
        total
    }
}
