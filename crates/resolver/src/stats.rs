//! The counters of one resolver: [`ResolverStats`], and the fixed-size
//! tallies it and the upstreams use for the metrics endpoint:
//! [`QtypeTally`] (client queries by type), [`LatencyHistogram`]
//! (upstream reply times) and the rcode indexing of
//! [`ResolverStats::responses_by_rcode`].
//!
//! Every type here is `Copy` and never allocates: the server copies each
//! core's counters into a snapshot and sums them with `merge`, and the
//! query path only increments an array slot.

use core::fmt;

/// Counters of one resolver. Only its own core writes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Client queries received.
    pub queries: u64,
    /// Answers DNSSEC validation found secure (AD).
    pub dnssec_secure: u64,
    /// Answers found validly insecure (an insecure delegation, a negative
    /// trust anchor, an unsupported algorithm): no AD.
    pub dnssec_insecure: u64,
    /// Answers that could not be validated because a DNSKEY or DS could
    /// not be had (upstream failure, sub-query budget): SERVFAIL, EDE 5.
    pub dnssec_indeterminate: u64,
    /// Bogus answers: a signature that does not verify (EDE 6).
    pub dnssec_bogus_signature: u64,
    /// Bogus answers: only expired signatures (EDE 7).
    pub dnssec_bogus_expired: u64,
    /// Bogus answers: only signatures not yet valid (EDE 8, 25).
    pub dnssec_bogus_not_yet_valid: u64,
    /// Bogus answers: no DNSKEY matches the signatures or the DS (EDE 9,
    /// 11).
    pub dnssec_bogus_dnskey_missing: u64,
    /// Bogus answers: signatures missing (EDE 10).
    pub dnssec_bogus_rrsigs_missing: u64,
    /// Bogus answers: the NSEC/NSEC3 denial is missing or wrong (EDE 6,
    /// 12).
    pub dnssec_bogus_denial: u64,
    /// Bogus answers for any other reason (malformed records, a signer
    /// that does not fit).
    pub dnssec_bogus_other: u64,
    /// DNSKEY and DS sub-queries started for validation.
    pub dnssec_subqueries: u64,
    /// Signature checks skipped: the same signature had verified before.
    pub dnssec_signatures_remembered: u64,
    /// NXDOMAIN and NODATA answers synthesised from cached validated NSEC
    /// records, without an upstream query (RFC 8198).
    pub dnssec_aggressive: u64,
    /// Answers bogus for missing signatures that carried no RRSIG at all:
    /// the chain of trust says the data is signed (or that the delegations
    /// above it have signed denials), and the upstream, or something on
    /// the path, strips DNSSEC records (also counted in
    /// `dnssec_bogus_rrsigs_missing`).
    pub dnssec_unsigned_from_signed_zone: u64,
    /// Client queries received over UDP.
    pub queries_udp: u64,
    /// Client queries received over TCP.
    pub queries_tcp: u64,
    /// Client queries received over TLS (RFC 7858).
    pub queries_tls: u64,
    /// Client queries received over HTTPS (RFC 8484).
    pub queries_https: u64,
    /// Client queries received over QUIC (RFC 9250).
    pub queries_quic: u64,
    /// How long UDP clients whose query waited on an upstream waited, from
    /// admission to the reply (millisecond resolution: the caller's clock).
    pub answers_waited_udp: LatencyHistogram,
    /// The same for clients over TCP.
    pub answers_waited_tcp: LatencyHistogram,
    /// The same for clients over TLS (DoT).
    pub answers_waited_tls: LatencyHistogram,
    /// The same for clients over HTTPS (DoH).
    pub answers_waited_https: LatencyHistogram,
    /// The same for clients over QUIC (DoQ).
    pub answers_waited_quic: LatencyHistogram,
    /// Client queries by qtype: every query that parsed and had a
    /// question, before any policy (see [`QtypeTally`] for codes above
    /// 255).
    pub qtypes: QtypeTally,
    /// Replies produced (written by `handle_query` or `poll_reply`), by
    /// full rcode (extended rcodes included): index = rcode for rcodes 0
    /// to 22, index 23 for every rcode of 23 or more. See
    /// [`ResolverStats::responses_with_rcode`].
    pub responses_by_rcode: [u64; RCODE_SLOTS],
    /// Stale answers sent (RFC 8767).
    pub stale_served: u64,
    /// Prefetch queries started (each may take several upstream attempts).
    pub prefetches: u64,
    /// Answered from the cache.
    pub cache_hits: u64,
    /// Not in the cache.
    pub cache_misses: u64,
    /// Joined an outstanding upstream query.
    pub coalesced: u64,
    /// Upstream queries sent (every attempt).
    pub upstream_queries: u64,
    /// Upstream attempts that timed out.
    pub upstream_timeouts: u64,
    /// Upstream replies the reply check refused for anything but a parse
    /// failure: the sum of the `reply_rejected_*` counters below.
    pub upstream_mismatched: u64,
    /// Upstream replies that could not be parsed.
    pub upstream_malformed: u64,
    /// Replies refused because no live attempt was sent with their ID (a
    /// guess, or a reply to a query that has ended).
    pub reply_rejected_wrong_id: u64,
    /// UDP replies refused because they arrived on another attempt's
    /// socket than the one their ID belongs to.
    pub reply_rejected_wrong_socket: u64,
    /// Replies refused because they came from another address or port
    /// than the attempt's upstream.
    pub reply_rejected_wrong_source: u64,
    /// Replies refused because their question (name without regard to
    /// case, type, class, or count) is not the query's.
    pub reply_rejected_wrong_question: u64,
    /// Replies refused because their question matched only without regard
    /// to case: the 0x20 letter case sent was not echoed.
    pub reply_rejected_wrong_case: u64,
    /// Replies refused for a wrong DNS cookie (RFC 7873): a COOKIE option
    /// that does not echo the attempt's client cookie or is malformed, or
    /// none from an upstream known to send cookies.
    pub reply_rejected_wrong_cookie: u64,
    /// Replies refused because they came over another transport than the
    /// attempt's (a UDP reply to a TCP query).
    pub reply_rejected_wrong_transport: u64,
    /// Replies refused because QR was clear (not a response).
    pub reply_rejected_not_response: u64,
    /// Replies accepted for an earlier attempt of a query than its current
    /// one (the upstream was slower than one attempt's timeout).
    pub reply_late_accepted: u64,
    /// Queries that ended in SERVFAIL (EDE 23) because the last upstream
    /// asked answered SERVFAIL, REFUSED, NOTIMP or FORMERR.
    pub upstream_error_failures: u64,
    /// Times an upstream was found not to echo the 0x20 letter case and
    /// its queries went back to lower case for a while.
    pub upstream_case_fallbacks: u64,
    /// Times an upstream known to send DNS cookies was taken to have
    /// stopped (attempts timed out with only cookie-less replies), so
    /// cookie-less replies from it are accepted again.
    pub upstream_cookie_fallbacks: u64,
    /// Upstream BADCOOKIE replies (RFC 7873 section 5.3) answered by
    /// asking again at once with the server cookie they carried.
    pub upstream_badcookie_retries: u64,
    /// Attempts that timed out with wrong-case or cookie-less replies but
    /// whose socket was flooded with other refused replies: not counted as
    /// a strike toward the 0x20 or cookie fallback (the flood may have
    /// cost the genuine reply).
    pub upstream_strikes_flooded: u64,
    /// Upstream replies with TC over UDP, retried over TCP.
    pub upstream_truncated: u64,
    /// Upstream queries sent over TCP.
    pub upstream_tcp_queries: u64,
    /// Client packets shorter than a header, or responses: dropped.
    pub dropped_malformed: u64,
    /// Queries shed because the in-flight table or a waiter list was full.
    pub dropped_overload: u64,
    /// FORMERR replies sent.
    pub formerr: u64,
    /// NOTIMP replies sent.
    pub notimp: u64,
    /// REFUSED replies sent.
    pub refused: u64,
    /// BADVERS replies sent.
    pub badvers: u64,
    /// SERVFAIL replies sent.
    pub servfail: u64,
    /// Hints produced for other cores.
    pub hints_out: u64,
    /// Hints dropped because the queue was full.
    pub hints_dropped: u64,
    /// Hints received from other cores.
    pub hints_in: u64,
    /// Received hints stored (no fresher entry was present).
    pub hints_stored: u64,
    /// Queries refused by the ACL.
    pub acl_refused: u64,
    /// Queries dropped by the ACL.
    pub acl_dropped: u64,
    /// Queries over the rate limit, dropped.
    pub rate_limited_dropped: u64,
    /// Queries over the rate limit, refused.
    pub rate_limited_refused: u64,
    /// Queries over the rate limit, answered truncated (UDP only).
    pub rate_limited_truncated: u64,
    /// Queries answered (or referred) from local data.
    pub local_answers: u64,
    /// Queries for blocked names.
    pub blocked: u64,

    // Server cookies toward clients (RFC 7873, RFC 9018): what the COOKIE
    // option of each query carried, and what enforcement sent.
    /// Queries whose server cookie we made, for this client, in time.
    pub client_cookies_valid: u64,
    /// Queries with only a client cookie (a first contact).
    pub client_cookies_new: u64,
    /// Queries with a server cookie that is not ours, expired, or for
    /// another client: answered with a fresh one (or BADCOOKIE).
    pub client_cookies_bad: u64,
    /// Queries with a malformed COOKIE option (a wrong length, or two
    /// options): FORMERR.
    pub client_cookies_malformed: u64,
    /// BADCOOKIE replies sent (`cookies.udp_require_above` exceeded by a
    /// UDP client without a valid server cookie).
    pub client_cookies_badcookie_sent: u64,
    /// Truncated (TC) replies sent to UDP queries without any cookie over
    /// `cookies.udp_require_above`.
    pub client_cookies_truncated: u64,
}

impl ResolverStats {
    /// Replies produced with rcode `code`; for a code of 23 or more, the
    /// replies with any rcode of 23 or more together.
    pub fn responses_with_rcode(&self, code: u16) -> u64 {
        self.responses_by_rcode
            .get(rcode_slot(code))
            .copied()
            .unwrap_or(0)
    }

    /// Count one reply with full rcode `rcode`.
    pub(crate) fn count_response(&mut self, rcode: u16) {
        if let Some(count) = self.responses_by_rcode.get_mut(rcode_slot(rcode)) {
            *count += 1;
        }
    }
}

/// Slots of [`ResolverStats::responses_by_rcode`]:
/// one per rcode 0 to 22 (everything IANA assigns below BADCOOKIE's 23,
/// extended rcodes included), and the last for every rcode of 23 or more.
pub const RCODE_SLOTS: usize = 24;

/// The slot of `rcode` in a responses-by-rcode array: the rcode itself
/// below 23, else the shared overflow slot 23.
pub fn rcode_slot(rcode: u16) -> usize {
    usize::from(rcode).min(RCODE_SLOTS - 1)
}

/// Client queries counted by qtype. Codes 0 to 255 (every common type)
/// have a slot each; all codes above 255 (URI, CAA, AVC, TA, DLV, private
/// use) share one overflow slot, so the tally stays small and `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QtypeTally {
    /// Slots 0..=255 by code; slot 256 for every code above 255.
    counts: [u64; 257],
}

impl fmt::Debug for QtypeTally {
    /// Only the types seen, so a failed test's output stays readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter())
            .entry(&"overflow", &self.overflow())
            .finish()
    }
}

impl Default for QtypeTally {
    fn default() -> Self {
        Self { counts: [0; 257] }
    }
}

impl QtypeTally {
    /// The index of the overflow slot.
    const OVERFLOW: usize = 256;

    fn slot(code: u16) -> usize {
        usize::from(code).min(Self::OVERFLOW)
    }

    /// Count one query of type `code`.
    pub fn record(&mut self, code: u16) {
        if let Some(count) = self.counts.get_mut(Self::slot(code)) {
            *count = count.saturating_add(1);
        }
    }

    /// Queries of type `code`; for a code above 255, the count of all
    /// codes above 255 together.
    pub fn get(&self, code: u16) -> u64 {
        self.counts.get(Self::slot(code)).copied().unwrap_or(0)
    }

    /// Queries of all types above 255 together.
    pub fn overflow(&self) -> u64 {
        self.counts.get(Self::OVERFLOW).copied().unwrap_or(0)
    }

    /// `(code, count)` for every type 0 to 255 seen at least once, in
    /// code order. The overflow slot is not included: see
    /// [`QtypeTally::overflow`].
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (0u16..)
            .zip(self.counts.iter().take(Self::OVERFLOW))
            .filter(|(_, count)| **count > 0)
            .map(|(code, count)| (code, *count))
    }

    /// Queries counted in total.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |sum, count| sum.saturating_add(*count))
    }

    /// Add `other`'s counts (to sum the cores).
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// Upstream reply times use the one histogram of heimdall-histogram,
/// which the control crate renders.
pub use heimdall_histogram::{LATENCY_BOUNDS_US, LatencyHistogram};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qtypes_by_code_with_one_overflow_slot() {
        let mut tally = QtypeTally::default();
        for code in [1, 1, 28, 255, 256, 257, 65_535] {
            tally.record(code);
        }
        assert_eq!((tally.get(1), tally.get(28), tally.get(255)), (2, 1, 1));
        assert_eq!(tally.get(2), 0);
        assert_eq!(tally.overflow(), 3);
        assert_eq!(tally.get(256), 3, "codes above 255 share a slot");
        assert_eq!(tally.get(65_535), 3);
        let seen: Vec<_> = tally.iter().collect();
        assert_eq!(seen, [(1, 2), (28, 1), (255, 1)]);
        assert_eq!(tally.total(), 7);
        let mut sum = tally;
        sum.merge(&tally);
        assert_eq!((sum.get(1), sum.overflow(), sum.total()), (4, 6, 14));
    }

    #[test]
    fn rcode_slots() {
        assert_eq!(rcode_slot(0), 0);
        assert_eq!(rcode_slot(16), 16);
        assert_eq!(rcode_slot(22), 22);
        assert_eq!(rcode_slot(23), 23);
        assert_eq!(rcode_slot(4095), 23);
    }
}
