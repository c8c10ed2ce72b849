//! A core's counters: the public reports ([`CoreReport`], [`TcpStats`])
//! handed back when a core stops, the worker's own [`Counters`], and their
//! translation into the control endpoint's model ([`core_snapshot`]).
//! Plain data: nothing here does I/O.

use heimdall_cache::{CacheStats, Timestamp};
use heimdall_control::ClientCookieSnapshot;
use heimdall_control::{
    AnswerLatency, CacheSnapshot, CoreSnapshot, Counter, CounterSet, DnstapSnapshot, HintSnapshot,
    LatencyHistogram, PolicySnapshot, QtypeCounts, RcodeCounts, RejectReason, ReplyCheckSnapshot,
    TransportCounts, UdpSnapshot, UpstreamSnapshot, UpstreamSocketSnapshot,
};
use heimdall_resolver::{Resolver, ResolverStats, UpstreamStats};

use crate::batch::UdpStats;
use crate::hot_names::Review;
use crate::transport::pause_judge::Verdicts;

/// What a core did, reported when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreReport {
    /// The core's index (0-based, in configured order).
    pub core: usize,
    /// The resolver's counters.
    pub resolver: ResolverStats,
    /// The cache shard's counters.
    pub cache: CacheStats,
    /// Hints that could not be sent because a peer's channel was full.
    pub hints_send_dropped: u64,
    /// Replies and upstream queries the kernel refused (full buffers).
    pub send_errors: u64,
    /// Replies and upstream queries dropped because the resolver gave a
    /// length beyond its buffer (a bug, each one logged): never sent as a
    /// short or empty datagram.
    pub bad_lengths: u64,
    /// UDP reply counters (GSO).
    pub udp: UdpStats,
    /// Upstream queries in flight when the grace period ended.
    pub abandoned_inflight: usize,
    /// TCP counters (clients and upstreams).
    pub tcp: TcpStats,
    /// Client TCP connections open when the core stopped.
    pub tcp_open_connections: usize,
    /// dnstap messages written to the reader (`dnstap.enabled`).
    pub dnstap_sent: u64,
    /// dnstap messages dropped: the core's buffer was full, or a write
    /// failed when the reader went away.
    pub dnstap_dropped: u64,
    /// DNS over TLS, client side.
    pub dot: TlsStats,
    /// DNS over HTTPS, client side (connections and requests).
    pub doh: TlsStats,
    /// DNS-over-HTTPS requests refused with an HTTP error.
    pub doh_errors: DohErrors,
    /// DNS over TLS to upstreams.
    pub upstream_tls: UpstreamTlsStats,
    /// DNS over QUIC, client side.
    pub doq: DoqStats,
}

/// Counters of DNS over QUIC (RFC 9250) to clients on one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DoqStats {
    /// Connections, handshakes and queries, in the model of DoT and DoH
    /// (`evicted` and `closed_read_timeout` stay 0: a connection over the
    /// limit is refused, a handshake that does not end within
    /// `tcp.read_timeout` is a handshake failure, and QUIC's idle timeout
    /// covers a stalled stream). `resumptions`: handshakes during which
    /// the core's ticketer opened a ticket (quinn-proto does not say
    /// whether a handshake resumed).
    pub connections: TlsStats,
    /// Datagrams that belong to no connection and start none (garbage,
    /// or a connection another core holds).
    pub datagrams_dropped: u64,
    /// Connections closed with DOQ_PROTOCOL_ERROR.
    pub protocol_errors: u64,
}

/// Counters of one encrypted client transport (DNS over TLS or over
/// HTTPS) on one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused: the table was full (handshakes included) and
    /// none was idle.
    pub refused: u64,
    /// Idle connections closed to make room for a new one.
    pub evicted: u64,
    /// Connections closed after `tcp.idle_timeout`.
    pub closed_idle: u64,
    /// Connections closed because a message did not arrive whole within
    /// `tcp.read_timeout`.
    pub closed_read_timeout: u64,
    /// TLS handshakes completed.
    pub handshakes: u64,
    /// TLS handshakes that failed or did not end within
    /// `tcp.read_timeout`.
    pub handshake_failures: u64,
    /// Completed handshakes that resumed a session (ticket or ID).
    pub resumptions: u64,
    /// DNS queries received (DNS over HTTPS: requests that carried one).
    pub queries: u64,
    /// Replies whose connection (or request) was gone.
    pub replies_orphaned: u64,
}

impl TlsStats {
    /// The counters of a stream table that runs TLS, with its handshakes.
    pub(crate) fn from_stream(
        tcp: TcpStats,
        (handshakes, handshake_failures, resumptions): (u64, u64, u64),
    ) -> Self {
        let TcpStats {
            accepted,
            refused,
            evicted,
            closed_idle,
            closed_read_timeout,
            queries,
            replies_orphaned,
            // A client table opens no upstream connections.
            upstream_connects: _,
            upstream_errors: _,
        } = tcp;
        TlsStats {
            accepted,
            refused,
            evicted,
            closed_idle,
            closed_read_timeout,
            handshakes,
            handshake_failures,
            resumptions,
            queries,
            replies_orphaned,
        }
    }
}

/// DNS-over-HTTPS requests refused with an HTTP error, by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DohErrors {
    /// 400: no `dns` parameter, bad base64url, or a body that is not one
    /// DNS query.
    pub bad_request: u64,
    /// 404: another path than `tls.https_path`.
    pub not_found: u64,
    /// 405: a method other than GET and POST.
    pub bad_method: u64,
    /// 413: a query over 65,535 bytes.
    pub too_large: u64,
    /// 415: a POST whose content type is not `application/dns-message`.
    pub bad_media_type: u64,
}

/// Counters of the TLS connections to upstreams on one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamTlsStats {
    /// Connections opened (handshake done).
    pub connects: u64,
    /// Connections that failed, or could not be opened, and queries lost.
    pub errors: u64,
    /// Handshakes that failed (certificate refused, no answer, ...).
    pub handshake_failures: u64,
    /// Handshakes that resumed a session.
    pub resumptions: u64,
}

impl UpstreamTlsStats {
    /// The sum of two sets (DNS over TLS and over HTTPS).
    pub(crate) fn merged(self, other: UpstreamTlsStats) -> UpstreamTlsStats {
        UpstreamTlsStats {
            connects: self.connects + other.connects,
            errors: self.errors + other.errors,
            handshake_failures: self.handshake_failures + other.handshake_failures,
            resumptions: self.resumptions + other.resumptions,
        }
    }
}

/// The encrypted transports' counters, as the worker reads them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct EncryptedCounts {
    pub(crate) dot: TlsStats,
    pub(crate) dot_open: usize,
    pub(crate) doh: TlsStats,
    pub(crate) doh_open: usize,
    pub(crate) doh_errors: DohErrors,
    pub(crate) upstream: UpstreamTlsStats,
    pub(crate) doq: DoqStats,
    pub(crate) doq_open: usize,
    /// The session-ticket key set the core uses (0: tickets off).
    pub(crate) ticket_key_generation: u64,
}

/// TCP counters of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Client connections refused because the table was full and none was
    /// idle.
    pub refused: u64,
    /// Idle client connections closed to make room for a new one.
    pub evicted: u64,
    /// Client connections closed after `tcp.idle_timeout`.
    pub closed_idle: u64,
    /// Client connections closed because a message did not arrive whole
    /// within `tcp.read_timeout`.
    pub closed_read_timeout: u64,
    /// Client queries received over TCP.
    pub queries: u64,
    /// Replies that found their connection gone.
    pub replies_orphaned: u64,
    /// Upstream TCP connections opened.
    pub upstream_connects: u64,
    /// Upstream TCP connections that failed (connect, write or read).
    pub upstream_errors: u64,
}

impl TcpStats {
    /// The sum of two sets of counters: the client side and the upstream
    /// side each keep their own, and the report adds them.
    pub(crate) fn merged(self, other: TcpStats) -> TcpStats {
        TcpStats {
            accepted: self.accepted + other.accepted,
            refused: self.refused + other.refused,
            evicted: self.evicted + other.evicted,
            closed_idle: self.closed_idle + other.closed_idle,
            closed_read_timeout: self.closed_read_timeout + other.closed_read_timeout,
            queries: self.queries + other.queries,
            replies_orphaned: self.replies_orphaned + other.replies_orphaned,
            upstream_connects: self.upstream_connects + other.upstream_connects,
            upstream_errors: self.upstream_errors + other.upstream_errors,
        }
    }
}

/// How long the queries answered at once took, per transport.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HitLatency {
    pub(crate) udp: LatencyHistogram,
    pub(crate) tcp: LatencyHistogram,
    pub(crate) tls: LatencyHistogram,
    pub(crate) https: LatencyHistogram,
    pub(crate) quic: LatencyHistogram,
}

/// The worker's own counters (the resolver and cache count the rest).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) hints_sent: u64,
    pub(crate) hints_send_dropped: u64,
    pub(crate) send_errors: u64,
    pub(crate) bad_lengths: u64,
    /// Multishot receives the kernel ended and the listener re-armed.
    pub(crate) receive_rearms: u64,
    /// Coalescing pauses taken.
    pub(crate) pauses: u64,
    /// What the coalescing pause's probes found.
    pub(crate) pause_verdicts: Verdicts,
    /// 1 while the core prefers to pause, else 0 (a gauge).
    pub(crate) pausing: u64,
    pub(crate) udp: UdpStats,
    /// The upstream UDP sockets.
    pub(crate) sockets: UpstreamSocketSnapshot,
    pub(crate) dnstap: DnstapSnapshot,
    /// Queries answered at once, timed.
    pub(crate) hits: HitLatency,
    /// Both TCP sides.
    pub(crate) tcp: TcpStats,
    /// The hot-name watch's reviews (name steering).
    pub(crate) spread: Review,
    /// Stream queries that missed on a core not owning their name.
    pub(crate) off_owner_fetches: u64,
    pub(crate) tcp_open_connections: usize,
    /// DNS over TLS and HTTPS, both sides.
    pub(crate) encrypted: EncryptedCounts,
}

/// One core's counters, in the control endpoint's model; `now` (on the
/// resolver's clock) tells whether an upstream is in 0x20 fallback.
///
/// Every counter struct is taken apart with an exhaustive pattern (no
/// `..`): a field added to `ResolverStats`, `CacheStats`, `TcpStats`,
/// `UpstreamStats` or `Counters` does not compile until it is exported here
/// or named as left out, with the reason.
pub(crate) fn core_snapshot(
    index: usize,
    resolver: &Resolver,
    counters: Counters,
    now: Timestamp,
) -> CoreSnapshot {
    let now_ms = now.as_millis();
    let upstreams: Vec<UpstreamSnapshot> = resolver
        .upstreams()
        .iter()
        .map(|upstream| {
            let UpstreamStats {
                queries,
                replies,
                timeouts,
                errors,
                truncated,
                case_mismatches,
                case_strikes,
                case_fallbacks,
                cookie_fallbacks,
                latency,
            } = upstream.stats();
            UpstreamSnapshot {
                label: upstream.address().to_string(),
                queries,
                errors,
                timeouts,
                replies,
                truncated,
                case_mismatches,
                case_strikes,
                case_fallbacks,
                cookie_fallbacks,
                // One histogram type from the resolver to the exporter.
                latency,
                cookies_supported: u64::from(upstream.cookie().supported()),
                server_cookie_known: u64::from(upstream.cookie().server_cookie().is_some()),
                case_fallback: u64::from(!upstream.echoes_case(now_ms)),
                srtt_us: upstream.srtt_us(),
                consecutive_failures: u64::from(upstream.consecutive_failures()),
            }
        })
        .collect();
    let sources = Sources {
        stats: resolver.stats(),
        cache: resolver.cache().stats(),
        counters,
        inflight: resolver.inflight(),
    };
    snapshot_of(index, &sources, upstreams)
}

/// Everything a core counts, read out of its resolver and worker.
struct Sources<'a> {
    stats: &'a ResolverStats,
    cache: CacheStats,
    counters: Counters,
    inflight: usize,
}

/// The snapshot of counters already read: a function of plain values, so
/// a test can feed it every field.
fn snapshot_of(
    index: usize,
    sources: &Sources<'_>,
    upstreams: Vec<UpstreamSnapshot>,
) -> CoreSnapshot {
    let stats = sources.stats;
    let ResolverStats {
        // The sum of queries_udp, _tcp, _tls, _https and _quic.
        queries: _,
        queries_udp,
        queries_tcp,
        queries_tls,
        queries_https,
        queries_quic,
        qtypes: qtype_tally,
        responses_by_rcode,
        stale_served,
        prefetches,
        cache_hits,
        cache_misses,
        coalesced,
        // The sums over upstreams of heimdall_upstream_queries_total and
        // heimdall_upstream_timeouts_total.
        upstream_queries: _,
        upstream_timeouts: _,
        upstream_mismatched,
        upstream_malformed,
        // The reply check's reasons and fallbacks: `reply_check`.
        reply_rejected_wrong_id: _,
        reply_rejected_wrong_socket: _,
        reply_rejected_wrong_source: _,
        reply_rejected_wrong_question: _,
        reply_rejected_wrong_case: _,
        reply_rejected_wrong_cookie: _,
        reply_rejected_wrong_transport: _,
        reply_rejected_not_response: _,
        reply_late_accepted: _,
        upstream_error_failures,
        upstream_case_fallbacks: _,
        upstream_cookie_fallbacks: _,
        upstream_badcookie_retries: _,
        upstream_strikes_flooded: _,
        upstream_truncated,
        upstream_tcp_queries,
        dnssec_secure,
        dnssec_insecure,
        dnssec_indeterminate,
        dnssec_bogus_signature,
        dnssec_bogus_expired,
        dnssec_bogus_not_yet_valid,
        dnssec_bogus_dnskey_missing,
        dnssec_bogus_rrsigs_missing,
        dnssec_bogus_denial,
        dnssec_bogus_other,
        dnssec_subqueries,
        dnssec_aggressive,
        dnssec_unsigned_from_signed_zone,
        dnssec_signatures_remembered,
        dropped_malformed,
        dropped_overload,
        formerr,
        notimp,
        refused,
        badvers,
        servfail,
        hints_out,
        hints_dropped,
        hints_in,
        hints_stored,
        acl_refused,
        acl_dropped,
        rate_limited_dropped,
        rate_limited_refused,
        rate_limited_truncated,
        local_answers,
        blocked,
        // Server cookies toward clients: `client_cookies`.
        client_cookies_valid: _,
        client_cookies_new: _,
        client_cookies_bad: _,
        client_cookies_malformed: _,
        client_cookies_badcookie_sent: _,
        client_cookies_truncated: _,
        answers_waited_udp,
        answers_waited_tcp,
        answers_waited_tls,
        answers_waited_https,
        answers_waited_quic,
    } = *stats;
    let CacheStats {
        // The resolver's cache_hits and cache_misses count what clients
        // got; the shard's own also count prefetch and peek lookups.
        hits: _,
        misses: _,
        stale_hits,
        inserts,
        evictions,
        expired,
        bytes,
        entries,
        copies,
    } = sources.cache;
    let Counters {
        hints_sent,
        hints_send_dropped,
        send_errors,
        bad_lengths,
        receive_rearms,
        pauses,
        pause_verdicts,
        pausing,
        udp,
        sockets,
        hits,
        tcp,
        tcp_open_connections,
        spread,
        off_owner_fetches,
        // Rendered by the control crate's dnstap families, not a
        // descriptor: they exist only with dnstap on.
        dnstap,
        encrypted,
    } = sources.counters;
    let EncryptedCounts {
        dot,
        dot_open,
        doh,
        doh_open,
        doh_errors,
        upstream: upstream_tls,
        doq,
        doq_open,
        ticket_key_generation,
    } = encrypted;
    let DohErrors {
        bad_request,
        not_found,
        bad_method,
        too_large,
        bad_media_type,
    } = doh_errors;
    let UpstreamTlsStats {
        connects: upstream_tls_connects,
        errors: upstream_tls_errors,
        handshake_failures: upstream_tls_handshake_failures,
        resumptions: upstream_tls_resumptions,
    } = upstream_tls;
    let UdpStats {
        gso_sends,
        gso_segments,
        gso_fallbacks,
    } = udp;
    let TcpStats {
        accepted,
        refused: tcp_refused,
        evicted,
        closed_idle,
        closed_read_timeout,
        queries: tcp_queries,
        replies_orphaned,
        upstream_connects,
        upstream_errors,
    } = tcp;
    let mut qtypes = QtypeCounts::default();
    for (code, count) in qtype_tally.iter() {
        qtypes.add_code(code, count);
    }
    let mut rcodes = RcodeCounts::default();
    for (slot, &count) in responses_by_rcode.iter().enumerate() {
        // The last slot gathers rcodes of 23 and up: "other" either way.
        rcodes.add_code(slot as u16, count);
    }
    let mut set = CounterSet::default();
    for (counter, value) in [
        (Counter::Coalesced, coalesced),
        (Counter::DroppedOverload, dropped_overload),
        (Counter::LocalAnswers, local_answers),
        (Counter::AclRefused, acl_refused),
        (Counter::AclDropped, acl_dropped),
        (Counter::RateLimitedDropped, rate_limited_dropped),
        (Counter::RateLimitedRefused, rate_limited_refused),
        (Counter::RateLimitedTruncated, rate_limited_truncated),
        (Counter::SentFormerr, formerr),
        (Counter::SentNotimp, notimp),
        (Counter::SentRefused, refused),
        (Counter::SentBadvers, badvers),
        (Counter::SentServfail, servfail),
        (Counter::UpstreamErrorFailures, upstream_error_failures),
        (Counter::UpstreamTruncated, upstream_truncated),
        (Counter::UpstreamTcpQueries, upstream_tcp_queries),
        (Counter::DnssecSecure, dnssec_secure),
        (Counter::DnssecInsecure, dnssec_insecure),
        (Counter::DnssecIndeterminate, dnssec_indeterminate),
        (Counter::DnssecBogusSignature, dnssec_bogus_signature),
        (Counter::DnssecBogusExpired, dnssec_bogus_expired),
        (Counter::DnssecBogusNotYetValid, dnssec_bogus_not_yet_valid),
        (
            Counter::DnssecBogusDnskeyMissing,
            dnssec_bogus_dnskey_missing,
        ),
        (
            Counter::DnssecBogusRrsigsMissing,
            dnssec_bogus_rrsigs_missing,
        ),
        (Counter::DnssecBogusDenial, dnssec_bogus_denial),
        (Counter::DnssecBogusOther, dnssec_bogus_other),
        (Counter::DnssecSubqueries, dnssec_subqueries),
        (Counter::DnssecAggressive, dnssec_aggressive),
        (
            Counter::DnssecUnsignedFromSignedZone,
            dnssec_unsigned_from_signed_zone,
        ),
        (
            Counter::DnssecSignaturesRemembered,
            dnssec_signatures_remembered,
        ),
        (Counter::HintsProduced, hints_out),
        (Counter::HintsStored, hints_stored),
        (Counter::SteeringSpreadAdded, spread.added),
        (Counter::SteeringSpreadExpired, spread.expired),
        (Counter::SteeringSpreadFull, spread.full),
        (Counter::SteeringAttachErrors, spread.attach_errors),
        (Counter::OffOwnerFetches, off_owner_fetches),
        (Counter::CacheInserts, inserts),
        (Counter::CacheExpired, expired),
        (Counter::CacheStaleLookups, stale_hits),
        (Counter::BadLengths, bad_lengths),
        (Counter::UdpReceiveRearms, receive_rearms),
        (Counter::UdpPauses, pauses),
        (Counter::UdpPauseVerdictPause, pause_verdicts.pause),
        (Counter::UdpPauseVerdictNoPause, pause_verdicts.no_pause),
        (Counter::UdpPausing, pausing),
        (Counter::TcpAccepted, accepted),
        (Counter::TcpRefused, tcp_refused),
        (Counter::TcpEvicted, evicted),
        (Counter::TcpClosedIdle, closed_idle),
        (Counter::TcpClosedReadTimeout, closed_read_timeout),
        (Counter::TcpQueries, tcp_queries),
        (Counter::TcpRepliesOrphaned, replies_orphaned),
        (Counter::TcpUpstreamConnects, upstream_connects),
        (Counter::TcpUpstreamErrors, upstream_errors),
        (Counter::TcpConnectionsOpen, tcp_open_connections as u64),
        (Counter::Inflight, sources.inflight as u64),
        (Counter::DohBadRequest, bad_request),
        (Counter::DohNotFound, not_found),
        (Counter::DohBadMethod, bad_method),
        (Counter::DohTooLarge, too_large),
        (Counter::DohBadMediaType, bad_media_type),
        (Counter::UpstreamTlsConnects, upstream_tls_connects),
        (Counter::UpstreamTlsErrors, upstream_tls_errors),
        (
            Counter::UpstreamTlsHandshakeFailures,
            upstream_tls_handshake_failures,
        ),
        (Counter::UpstreamTlsResumptions, upstream_tls_resumptions),
        (Counter::DotConnectionsOpen, dot_open as u64),
        (Counter::DohConnectionsOpen, doh_open as u64),
        (Counter::QuicConnectionsOpen, doq_open as u64),
        (Counter::QuicAccepted, doq.connections.accepted),
        (Counter::QuicRefused, doq.connections.refused),
        (Counter::QuicClosedIdle, doq.connections.closed_idle),
        (Counter::QuicHandshakes, doq.connections.handshakes),
        (
            Counter::QuicHandshakeFailures,
            doq.connections.handshake_failures,
        ),
        (Counter::QuicQueries, doq.connections.queries),
        (
            Counter::QuicRepliesOrphaned,
            doq.connections.replies_orphaned,
        ),
        (Counter::QuicDatagramsDropped, doq.datagrams_dropped),
        (Counter::QuicProtocolErrors, doq.protocol_errors),
        (Counter::QuicResumptions, doq.connections.resumptions),
        (Counter::TlsTicketKeyGeneration, ticket_key_generation),
    ] {
        set.set(counter, value);
    }
    for (stats, counters) in [
        (
            dot,
            [
                Counter::DotAccepted,
                Counter::DotRefused,
                Counter::DotEvicted,
                Counter::DotClosedIdle,
                Counter::DotClosedReadTimeout,
                Counter::DotHandshakes,
                Counter::DotHandshakeFailures,
                Counter::DotResumptions,
                Counter::DotQueries,
                Counter::DotRepliesOrphaned,
            ],
        ),
        (
            doh,
            [
                Counter::DohAccepted,
                Counter::DohRefused,
                Counter::DohEvicted,
                Counter::DohClosedIdle,
                Counter::DohClosedReadTimeout,
                Counter::DohHandshakes,
                Counter::DohHandshakeFailures,
                Counter::DohResumptions,
                Counter::DohQueries,
                Counter::DohRepliesOrphaned,
            ],
        ),
    ] {
        let TlsStats {
            accepted,
            refused,
            evicted,
            closed_idle,
            closed_read_timeout,
            handshakes,
            handshake_failures,
            resumptions,
            queries,
            replies_orphaned,
        } = stats;
        let values = [
            accepted,
            refused,
            evicted,
            closed_idle,
            closed_read_timeout,
            handshakes,
            handshake_failures,
            resumptions,
            queries,
            replies_orphaned,
        ];
        for (counter, value) in counters.into_iter().zip(values) {
            set.set(counter, value);
        }
    }
    let mut replies = reply_check(stats);
    replies.mismatched = upstream_mismatched;
    replies.malformed = upstream_malformed;
    CoreSnapshot {
        core: index,
        queries: TransportCounts {
            udp: queries_udp,
            tcp: queries_tcp,
            tls: queries_tls,
            https: queries_https,
            quic: queries_quic,
        },
        qtypes,
        rcodes,
        cache: CacheSnapshot {
            hits: cache_hits,
            misses: cache_misses,
            stale_served,
            prefetches,
            evictions,
            entries: entries as u64,
            copies: copies as u64,
            bytes: bytes as u64,
        },
        hints: HintSnapshot {
            sent: hints_sent,
            received: hints_in,
            dropped: hints_dropped + hints_send_dropped,
        },
        udp: UdpSnapshot {
            send_errors,
            gso_sends,
            gso_segments,
            gso_fallbacks,
        },
        policy: PolicySnapshot {
            blocked,
            malformed: dropped_malformed,
        },
        upstreams,
        replies,
        sockets,
        client_cookies: client_cookies(stats),
        dnstap,
        counters: set,
        answers: AnswerLatency {
            udp_hit: hits.udp,
            udp_miss: answers_waited_udp,
            tcp_hit: hits.tcp,
            tcp_miss: answers_waited_tcp,
            tls_hit: hits.tls,
            tls_miss: answers_waited_tls,
            https_hit: hits.https,
            https_miss: answers_waited_https,
            quic_hit: hits.quic,
            quic_miss: answers_waited_quic,
        },
    }
}

/// Server cookies toward clients, in the control endpoint's model.
fn client_cookies(stats: &ResolverStats) -> ClientCookieSnapshot {
    ClientCookieSnapshot {
        valid: stats.client_cookies_valid,
        new: stats.client_cookies_new,
        bad: stats.client_cookies_bad,
        malformed: stats.client_cookies_malformed,
        badcookie_sent: stats.client_cookies_badcookie_sent,
        truncated: stats.client_cookies_truncated,
    }
}

/// The reply check's counters, in the control endpoint's model.
fn reply_check(stats: &ResolverStats) -> ReplyCheckSnapshot {
    let mut replies = ReplyCheckSnapshot::default();
    for (reason, count) in [
        (RejectReason::WrongId, stats.reply_rejected_wrong_id),
        (RejectReason::WrongSocket, stats.reply_rejected_wrong_socket),
        (RejectReason::WrongSource, stats.reply_rejected_wrong_source),
        (
            RejectReason::WrongQuestion,
            stats.reply_rejected_wrong_question,
        ),
        (RejectReason::WrongCase, stats.reply_rejected_wrong_case),
        (RejectReason::WrongCookie, stats.reply_rejected_wrong_cookie),
        (
            RejectReason::WrongTransport,
            stats.reply_rejected_wrong_transport,
        ),
        (RejectReason::NotResponse, stats.reply_rejected_not_response),
    ] {
        replies.add_rejected(reason, count);
    }
    replies.late_accepted = stats.reply_late_accepted;
    replies.case_fallbacks = stats.upstream_case_fallbacks;
    replies.cookie_fallbacks = stats.upstream_cookie_fallbacks;
    replies.badcookie_retries = stats.upstream_badcookie_retries;
    replies.strikes_flooded = stats.upstream_strikes_flooded;
    replies
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use heimdall_control::COUNTERS;
    use heimdall_resolver::QtypeTally;

    use super::*;

    /// A [`TlsStats`] with every field from `next`.
    fn tls_stats(next: &mut impl FnMut() -> u64) -> TlsStats {
        TlsStats {
            accepted: next(),
            refused: next(),
            evicted: next(),
            closed_idle: next(),
            closed_read_timeout: next(),
            handshakes: next(),
            handshake_failures: next(),
            resumptions: next(),
            queries: next(),
            replies_orphaned: next(),
        }
    }

    /// Every counter fed a value of its own: each descriptor slot must come
    /// out non-zero and unlike every other, so no counter is left unset or
    /// filled from the same field as another. The struct literals list
    /// every field (no `..`), so a new one does not compile without a
    /// value here either.
    #[test]
    fn every_descriptor_counter_has_a_source_of_its_own() {
        let mut n = 0u64;
        let mut next = || {
            n += 1;
            1000 + n
        };
        let stats = ResolverStats {
            queries: next(),
            queries_udp: next(),
            queries_tcp: next(),
            queries_tls: next(),
            queries_https: next(),
            queries_quic: next(),
            answers_waited_udp: LatencyHistogram::default(),
            answers_waited_tcp: LatencyHistogram::default(),
            answers_waited_tls: LatencyHistogram::default(),
            answers_waited_https: LatencyHistogram::default(),
            answers_waited_quic: LatencyHistogram::default(),
            qtypes: QtypeTally::default(),
            responses_by_rcode: [0; heimdall_resolver::RCODE_SLOTS],
            stale_served: next(),
            prefetches: next(),
            cache_hits: next(),
            cache_misses: next(),
            coalesced: next(),
            upstream_queries: next(),
            upstream_timeouts: next(),
            upstream_mismatched: next(),
            upstream_malformed: next(),
            reply_rejected_wrong_id: next(),
            reply_rejected_wrong_socket: next(),
            reply_rejected_wrong_source: next(),
            reply_rejected_wrong_question: next(),
            reply_rejected_wrong_case: next(),
            reply_rejected_wrong_cookie: next(),
            reply_rejected_wrong_transport: next(),
            reply_rejected_not_response: next(),
            reply_late_accepted: next(),
            upstream_error_failures: next(),
            upstream_case_fallbacks: next(),
            upstream_cookie_fallbacks: next(),
            upstream_badcookie_retries: next(),
            upstream_strikes_flooded: next(),
            upstream_truncated: next(),
            upstream_tcp_queries: next(),
            dnssec_secure: next(),
            dnssec_insecure: next(),
            dnssec_indeterminate: next(),
            dnssec_bogus_signature: next(),
            dnssec_bogus_expired: next(),
            dnssec_bogus_not_yet_valid: next(),
            dnssec_bogus_dnskey_missing: next(),
            dnssec_bogus_rrsigs_missing: next(),
            dnssec_bogus_denial: next(),
            dnssec_bogus_other: next(),
            dnssec_subqueries: next(),
            dnssec_aggressive: next(),
            dnssec_unsigned_from_signed_zone: next(),
            dnssec_signatures_remembered: next(),
            dropped_malformed: next(),
            dropped_overload: next(),
            formerr: next(),
            notimp: next(),
            refused: next(),
            badvers: next(),
            servfail: next(),
            hints_out: next(),
            hints_dropped: next(),
            hints_in: next(),
            hints_stored: next(),
            acl_refused: next(),
            acl_dropped: next(),
            rate_limited_dropped: next(),
            rate_limited_refused: next(),
            rate_limited_truncated: next(),
            local_answers: next(),
            blocked: next(),
            client_cookies_valid: next(),
            client_cookies_new: next(),
            client_cookies_bad: next(),
            client_cookies_malformed: next(),
            client_cookies_badcookie_sent: next(),
            client_cookies_truncated: next(),
        };
        let cache = CacheStats {
            hits: next(),
            misses: next(),
            stale_hits: next(),
            inserts: next(),
            evictions: next(),
            expired: next(),
            bytes: next() as usize,
            entries: next() as usize,
            copies: next() as usize,
        };
        let counters = Counters {
            hints_sent: next(),
            hints_send_dropped: next(),
            send_errors: next(),
            bad_lengths: next(),
            receive_rearms: next(),
            pauses: next(),
            pause_verdicts: Verdicts {
                pause: next(),
                no_pause: next(),
            },
            pausing: next(),
            udp: UdpStats {
                gso_sends: next(),
                gso_segments: next(),
                gso_fallbacks: next(),
            },
            sockets: UpstreamSocketSnapshot::default(),
            hits: HitLatency::default(),
            tcp: TcpStats {
                accepted: next(),
                refused: next(),
                evicted: next(),
                closed_idle: next(),
                closed_read_timeout: next(),
                queries: next(),
                replies_orphaned: next(),
                upstream_connects: next(),
                upstream_errors: next(),
            },
            tcp_open_connections: next() as usize,
            spread: Review {
                added: next(),
                expired: next(),
                full: next(),
                attach_errors: next(),
            },
            off_owner_fetches: next(),
            dnstap: DnstapSnapshot::default(),
            encrypted: EncryptedCounts {
                dot: tls_stats(&mut next),
                dot_open: next() as usize,
                doh: tls_stats(&mut next),
                doh_open: next() as usize,
                doh_errors: DohErrors {
                    bad_request: next(),
                    not_found: next(),
                    bad_method: next(),
                    too_large: next(),
                    bad_media_type: next(),
                },
                upstream: UpstreamTlsStats {
                    connects: next(),
                    errors: next(),
                    handshake_failures: next(),
                    resumptions: next(),
                },
                doq: DoqStats {
                    connections: tls_stats(&mut next),
                    datagrams_dropped: next(),
                    protocol_errors: next(),
                },
                doq_open: next() as usize,
                ticket_key_generation: next(),
            },
        };
        let sources = Sources {
            stats: &stats,
            cache,
            counters,
            inflight: next() as usize,
        };
        let snapshot = snapshot_of(0, &sources, Vec::new());
        let mut seen = HashSet::new();
        for (desc, value) in snapshot.counters.iter() {
            assert!(
                value > 1000,
                "{} {:?} has no source",
                desc.metric,
                desc.label
            );
            assert!(
                seen.insert(value),
                "{} {:?} reads a field another counter reads",
                desc.metric,
                desc.label
            );
        }
        assert_eq!(seen.len(), COUNTERS.len());
        // The fields mapped outside the descriptor list land too.
        assert_eq!(snapshot.policy.blocked, stats.blocked);
        assert_eq!(snapshot.policy.malformed, stats.dropped_malformed);
        assert_eq!(snapshot.replies.mismatched, stats.upstream_mismatched);
        assert_eq!(snapshot.cache.evictions, cache.evictions);
        assert_eq!(snapshot.udp.gso_fallbacks, counters.udp.gso_fallbacks);
    }
}
