//! A core's counters: the public reports ([`CoreReport`], [`TcpStats`])
//! handed back when a core stops, the worker's own [`Counters`], and their
//! translation into the control endpoint's model ([`core_snapshot`]).
//! Plain data: nothing here does I/O.

use heimdall_cache::{CacheStats, Timestamp};
use heimdall_control::ClientCookieSnapshot;
use heimdall_control::{
    CacheSnapshot, CoreSnapshot, DnstapSnapshot, HintSnapshot, PolicySnapshot, QtypeCounts,
    RcodeCounts, RejectReason, ReplyCheckSnapshot, TransportCounts, UdpSnapshot, UpstreamSnapshot,
    UpstreamSocketSnapshot,
};
use heimdall_resolver::{Resolver, ResolverStats};

use crate::batch::UdpStats;

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

/// The worker's own counters (the resolver and cache count the rest).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub(crate) hints_sent: u64,
    pub(crate) hints_send_dropped: u64,
    pub(crate) send_errors: u64,
    pub(crate) bad_lengths: u64,
    pub(crate) udp: UdpStats,
    /// The upstream UDP sockets.
    pub(crate) sockets: UpstreamSocketSnapshot,
    pub(crate) dnstap: DnstapSnapshot,
}

/// One core's counters, in the control endpoint's model; `now` (on the
/// resolver's clock) tells whether an upstream is in 0x20 fallback.
pub(crate) fn core_snapshot(
    index: usize,
    resolver: &Resolver,
    counters: Counters,
    now: Timestamp,
) -> CoreSnapshot {
    let now_ms = now.as_millis();
    let stats = resolver.stats();
    let cache = resolver.cache().stats();
    let mut qtypes = QtypeCounts::default();
    for (code, count) in stats.qtypes.iter() {
        qtypes.add_code(code, count);
    }
    let mut rcodes = RcodeCounts::default();
    for (slot, &count) in stats.responses_by_rcode.iter().enumerate() {
        // The last slot gathers rcodes of 23 and up: "other" either way.
        rcodes.add_code(slot as u16, count);
    }
    let upstreams = resolver
        .upstreams()
        .iter()
        .map(|upstream| {
            let upstream_stats = upstream.stats();
            UpstreamSnapshot {
                label: upstream.address().to_string(),
                queries: upstream_stats.queries,
                errors: upstream_stats.errors,
                timeouts: upstream_stats.timeouts,
                // One histogram type from the resolver to the exporter.
                latency: upstream_stats.latency,
                cookies_supported: u64::from(upstream.cookie().supported()),
                server_cookie_known: u64::from(upstream.cookie().server_cookie().is_some()),
                case_fallback: u64::from(!upstream.echoes_case(now_ms)),
            }
        })
        .collect();
    CoreSnapshot {
        core: index,
        queries: TransportCounts {
            udp: stats.queries_udp,
            tcp: stats.queries_tcp,
        },
        qtypes,
        rcodes,
        cache: CacheSnapshot {
            hits: stats.cache_hits,
            misses: stats.cache_misses,
            stale_served: stats.stale_served,
            prefetches: stats.prefetches,
            evictions: cache.evictions,
            entries: cache.entries as u64,
            bytes: cache.bytes as u64,
        },
        hints: HintSnapshot {
            sent: counters.hints_sent,
            received: stats.hints_in,
            dropped: stats.hints_dropped + counters.hints_send_dropped,
        },
        udp: UdpSnapshot {
            send_errors: counters.send_errors,
            gso_sends: counters.udp.gso_sends,
            gso_segments: counters.udp.gso_segments,
            gso_fallbacks: counters.udp.gso_fallbacks,
        },
        policy: PolicySnapshot {
            rate_limited: stats.rate_limited_dropped
                + stats.rate_limited_refused
                + stats.rate_limited_truncated,
            refused: stats.acl_refused + stats.acl_dropped,
            blocked: stats.blocked,
            malformed: stats.dropped_malformed + stats.formerr,
        },
        upstreams,
        replies: reply_check(stats),
        sockets: counters.sockets,
        client_cookies: client_cookies(stats),
        dnstap: counters.dnstap,
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
    replies.mismatched = stats.upstream_mismatched;
    replies.malformed = stats.upstream_malformed;
    replies.late_accepted = stats.reply_late_accepted;
    replies.case_fallbacks = stats.upstream_case_fallbacks;
    replies.cookie_fallbacks = stats.upstream_cookie_fallbacks;
    replies.badcookie_retries = stats.upstream_badcookie_retries;
    replies.strikes_flooded = stats.upstream_strikes_flooded;
    replies
}
