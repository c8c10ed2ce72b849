//! The upstream servers of one core: which one to ask next, and how each
//! has behaved (smoothed RTT and its variation, consecutive failures,
//! backoff, whether it echoes the 0x20 letter case, its DNS cookies,
//! counters).
//!
//! The attempt timeout adapts to a slow upstream as Unbound's does: it is
//! `srtt + 4 * rttvar` (RFC 6298), never below the configured
//! `upstream.timeout` and never above [`TIMEOUT_CEILING_FACTOR`] times it,
//! so an upstream that always answers in 1 s stops timing out at 800 ms.
//!
//! Each core keeps its own view; nothing here is shared. Times are
//! milliseconds on the server's monotonic clock, handed in by the caller.
//!
//! Each upstream is data ([`heimdall_config::Upstream`]: address,
//! transport, authentication name), the same type the config file yields;
//! the strategy is the config's [`UpstreamStrategy`].
//!
//! A reload replaces the list ([`Upstreams::reconfigure`]) but keeps what
//! was learned about every address that stays, so a reload does not make
//! `fastest` forget its measurements or reset the counters.

use core::net::SocketAddr;

use heimdall_config::{Upstream, UpstreamStrategy, UpstreamTransport};

use rand::Rng;

use crate::stats::LatencyHistogram;
use crate::upstream_cookie::{ClientCookie, UpstreamCookie};

/// Most upstreams one resolver accepts: the set of upstreams a query has
/// already tried is a 64-bit mask.
pub const MAX_UPSTREAMS: usize = 64;

/// The least time between two warnings that an upstream strips DNSSEC
/// records ([`crate::io::Warning::UpstreamStripsDnssec`]): a broken
/// upstream makes every answer bogus, and one line a minute says so
/// without flooding the log.
pub const STRIP_WARNING_INTERVAL_MS: u64 = 60_000;

/// First backoff after a failure; doubled per further consecutive failure.
const BACKOFF_BASE_MS: u64 = 500;
/// Longest backoff: a dead upstream is still probed twice a minute.
const BACKOFF_MAX_MS: u64 = 30_000;

/// The adaptive attempt timeout is at most this many times the configured
/// one (2.4 s for the default 800 ms): a query still ends within about
/// `attempts x 3 x timeout` however slow an upstream has been (see
/// `ResolverConfig::max_query_lifetime_ms`). Late replies already let a
/// slow upstream answer; the longer timeout only spares it the duplicate
/// queries, so a modest ceiling keeps clients' waits short.
pub const TIMEOUT_CEILING_FACTOR: u64 = 3;

/// Strikes in a row before an upstream is taken not to echo the 0x20
/// case. A strike is an attempt that *timed out* having received only
/// replies that matched in everything but the letter case: a wrong-case
/// reply alone only marks its attempt, because a forger can send those
/// (with a guessed ID and port) but cannot stop the genuine reply, so a
/// flood never makes an attempt time out and never turns the defence off.
/// A reply that echoes the case resets the count. More than one, so a
/// single lost reply does not either.
pub const CASE_STRIKES_FOR_FALLBACK: u32 = 3;

/// How long an upstream found not to echo the case is asked in lower
/// case before 0x20 is tried on it again: upstreams change (a new
/// software version, another server behind the address), so the fallback
/// is not for good; each retry costs at most
/// [`CASE_STRIKES_FOR_FALLBACK`] attempt timeouts.
pub const CASE_FALLBACK_MS: u64 = 15 * 60 * 1000;

/// Counters for one upstream (this core only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpstreamStats {
    /// Queries sent (attempts; a TCP retry after TC is not counted again).
    pub queries: u64,
    /// Accepted replies (NOERROR and NXDOMAIN).
    pub replies: u64,
    /// Queries that timed out.
    pub timeouts: u64,
    /// Replies that were errors for us (SERVFAIL, REFUSED, unparseable).
    pub errors: u64,
    /// Replies with TC set.
    pub truncated: u64,
    /// Replies whose question echoed the 0x20 case wrongly (ID, port and
    /// source right).
    pub case_mismatches: u64,
    /// Attempts that timed out having received only such replies
    /// (strikes toward the case fallback).
    pub case_strikes: u64,
    /// Times this upstream was found not to echo the 0x20 case and asked
    /// in lower case for [`CASE_FALLBACK_MS`].
    pub case_fallbacks: u64,
    /// Times this upstream, after sending cookies, was found to have
    /// stopped (module `upstream_cookie`).
    pub cookie_fallbacks: u64,
    /// Round-trip times of the accepted replies (millisecond resolution:
    /// the caller's clock ticks in milliseconds).
    pub latency: LatencyHistogram,
}

/// One upstream and what this core has learned about it.
#[derive(Debug, Clone)]
pub struct UpstreamState {
    upstream: Upstream,
    /// Smoothed RTT in microseconds (RFC 6298 style, gain 1/8).
    srtt_us: Option<u64>,
    /// RTT variation in microseconds (RFC 6298, gain 1/4), from accepted
    /// replies only; sets the adaptive timeout.
    rttvar_us: Option<u64>,
    consecutive_failures: u32,
    backoff_until_ms: u64,
    /// 0x20 strikes (attempts timed out with only wrong-case replies)
    /// since the last reply that echoed the case.
    case_strikes_in_row: u32,
    /// Until when (ms) queries to it go in lower case; 0: never fell back.
    case_fallback_until_ms: u64,
    /// Its DNS cookies as this core knows them.
    cookie: UpstreamCookie,
    /// When (ms) the last warning that it strips DNSSEC records was given.
    strip_warned_at_ms: Option<u64>,
    stats: UpstreamStats,
}

impl UpstreamState {
    /// The upstream's address.
    pub fn address(&self) -> SocketAddr {
        self.upstream.address
    }

    /// The transport its queries use (a `udp` upstream's retry after a
    /// truncated reply goes over TCP all the same).
    pub fn transport(&self) -> UpstreamTransport {
        self.upstream.transport
    }

    /// The upstream as configured.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Smoothed RTT in microseconds, once measured.
    pub fn srtt_us(&self) -> Option<u64> {
        self.srtt_us
    }

    /// RTT variation in microseconds, once measured.
    pub fn rttvar_us(&self) -> Option<u64> {
        self.rttvar_us
    }

    /// The timeout of the next attempt to this upstream, for a configured
    /// `timeout_ms`: `srtt + 4 * rttvar` once a reply was measured, kept
    /// between `timeout_ms` and [`TIMEOUT_CEILING_FACTOR`] times it.
    pub fn attempt_timeout_ms(&self, timeout_ms: u64) -> u64 {
        let (Some(srtt), Some(rttvar)) = (self.srtt_us, self.rttvar_us) else {
            return timeout_ms;
        };
        let rto_ms = srtt.saturating_add(rttvar.saturating_mul(4)) / 1000;
        rto_ms.clamp(
            timeout_ms,
            timeout_ms.saturating_mul(TIMEOUT_CEILING_FACTOR),
        )
    }

    /// Whether a query sent at `now_ms` uses 0x20 (when it is on at all):
    /// not while the upstream is in case fallback.
    pub fn echoes_case(&self, now_ms: u64) -> bool {
        self.case_fallback_until_ms <= now_ms
    }

    /// Until when (ms on the caller's clock) this upstream is asked in
    /// lower case because it did not echo the 0x20 case; 0 if it never
    /// was found to. Compare with the time to tell whether it still is.
    pub fn case_fallback_until_ms(&self) -> u64 {
        self.case_fallback_until_ms
    }

    /// What this core knows of its DNS cookies (client cookie, learned
    /// server cookie, whether it sends cookies).
    pub fn cookie(&self) -> &UpstreamCookie {
        &self.cookie
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Counters.
    pub fn stats(&self) -> UpstreamStats {
        self.stats
    }
}

/// The set of upstreams of one core.
#[derive(Debug, Clone)]
pub struct Upstreams {
    list: Vec<UpstreamState>,
    strategy: UpstreamStrategy,
    next_turn: usize,
}

impl Upstreams {
    /// Upstreams in configured order; at most [`MAX_UPSTREAMS`] are kept.
    pub fn new(upstreams: &[Upstream], strategy: UpstreamStrategy) -> Self {
        let list = upstreams
            .iter()
            .take(MAX_UPSTREAMS)
            .map(|upstream| Self::fresh(upstream.clone()))
            .collect();
        Self {
            list,
            strategy,
            next_turn: 0,
        }
    }

    fn fresh(upstream: Upstream) -> UpstreamState {
        UpstreamState {
            upstream,
            srtt_us: None,
            rttvar_us: None,
            consecutive_failures: 0,
            backoff_until_ms: 0,
            case_strikes_in_row: 0,
            case_fallback_until_ms: 0,
            cookie: UpstreamCookie::default(),
            strip_warned_at_ms: None,
            stats: UpstreamStats::default(),
        }
    }

    /// Replace the list with `upstreams` (at most [`MAX_UPSTREAMS`]) and
    /// the strategy with `strategy`. An address already present keeps its
    /// SRTT, backoff and counters (and takes the new transport and name);
    /// a new one starts fresh. Returns, for each old index, its new index
    /// (`None` when the address is gone), so the caller can remap what
    /// refers to upstreams by index.
    pub fn reconfigure(
        &mut self,
        upstreams: &[Upstream],
        strategy: UpstreamStrategy,
    ) -> [Option<usize>; MAX_UPSTREAMS] {
        let mut moved = [None; MAX_UPSTREAMS];
        let mut old: Vec<Option<UpstreamState>> = self.list.drain(..).map(Some).collect();
        for upstream in upstreams.iter().take(MAX_UPSTREAMS) {
            let new_index = self.list.len();
            let kept = old
                .iter_mut()
                .enumerate()
                .find(|(_, up)| {
                    up.as_ref()
                        .is_some_and(|up| up.upstream.address == upstream.address)
                })
                .and_then(|(old_index, up)| Some((old_index, up.take()?)));
            match kept {
                Some((old_index, mut state)) => {
                    if let Some(slot) = moved.get_mut(old_index) {
                        *slot = Some(new_index);
                    }
                    state.upstream = upstream.clone();
                    self.list.push(state);
                }
                None => self.list.push(Self::fresh(upstream.clone())),
            }
        }
        self.strategy = strategy;
        self.next_turn = 0;
        moved
    }

    /// The strategy in use.
    pub fn strategy(&self) -> UpstreamStrategy {
        self.strategy
    }

    /// Number of upstreams.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// All upstreams, in configured order.
    pub fn iter(&self) -> impl Iterator<Item = &UpstreamState> {
        self.list.iter()
    }

    /// The upstream at `index`.
    pub fn get(&self, index: usize) -> Option<&UpstreamState> {
        self.list.get(index)
    }

    /// Index of the upstream with this address.
    pub fn index_of(&self, address: SocketAddr) -> Option<usize> {
        self.list
            .iter()
            .position(|state| state.upstream.address == address)
    }

    /// The upstream for a query's next attempt, as [`Upstreams::choose`],
    /// but never one in `failed` (those that answered it with an upstream
    /// error); `None` when every upstream has.
    pub fn choose_excluding(&mut self, tried: u64, failed: u64, now_ms: u64) -> Option<usize> {
        if self.covers_all(failed) {
            return None;
        }
        let all = self.all_mask();
        // `choose` prefers upstreams outside its mask and falls back to all
        // of them once every one is in it: so mask what was tried or
        // failed while that leaves one out, else only what failed.
        if (tried | failed) & all != all {
            self.choose(tried | failed, now_ms)
        } else {
            self.choose(failed, now_ms)
        }
    }

    /// Whether `mask` (bit i = upstream i) holds every upstream.
    pub fn covers_all(&self, mask: u64) -> bool {
        let all = self.all_mask();
        mask & all == all
    }

    /// One bit per configured upstream.
    fn all_mask(&self) -> u64 {
        let count = self.list.len();
        if count >= 64 {
            u64::MAX
        } else {
            (1u64 << count) - 1
        }
    }

    /// Choose the upstream for the next attempt of a query that has
    /// already tried the upstreams in `tried` (bit i = upstream i). Once
    /// every upstream was tried, all are candidates again. Upstreams in
    /// backoff are skipped unless every candidate is in backoff; then the
    /// one whose backoff ends first is used, so queries still go out.
    pub fn choose(&mut self, tried: u64, now_ms: u64) -> Option<usize> {
        let count = self.list.len();
        if count == 0 {
            return None;
        }
        let all = if count >= 64 {
            u64::MAX
        } else {
            (1u64 << count) - 1
        };
        let untried = all & !tried;
        let candidates = if untried == 0 { all } else { untried };
        let is_candidate = |index: usize| candidates & (1u64 << index) != 0;
        let healthy = |upstream: &UpstreamState| upstream.backoff_until_ms <= now_ms;
        let any_healthy = self
            .list
            .iter()
            .enumerate()
            .any(|(index, up)| is_candidate(index) && healthy(up));
        let eligible = |index: usize, upstream: &UpstreamState| {
            is_candidate(index) && (!any_healthy || healthy(upstream))
        };
        let chosen = if !any_healthy {
            self.list
                .iter()
                .enumerate()
                .filter(|(index, up)| eligible(*index, up))
                .min_by_key(|(_, up)| up.backoff_until_ms)
                .map(|(index, _)| index)
        } else {
            match self.strategy {
                UpstreamStrategy::Ordered => self
                    .list
                    .iter()
                    .enumerate()
                    .find(|(index, up)| eligible(*index, up))
                    .map(|(i, _)| i),
                UpstreamStrategy::RoundRobin => (0..count)
                    .map(|offset| (self.next_turn + offset) % count)
                    .find(|&index| self.list.get(index).is_some_and(|up| eligible(index, up))),
                // Upstreams not yet measured are tried first, so each
                // gets measured.
                UpstreamStrategy::Fastest => self
                    .list
                    .iter()
                    .enumerate()
                    .filter(|(index, up)| eligible(*index, up))
                    .min_by_key(|(_, up)| up.srtt_us.unwrap_or(0))
                    .map(|(index, _)| index),
            }
        };
        if let Some(index) = chosen {
            self.next_turn = (index + 1) % count;
            if let Some(upstream) = self.list.get_mut(index) {
                upstream.stats.queries += 1;
            }
        }
        chosen
    }

    /// A reply was accepted from upstream `index` after `rtt_us`.
    pub fn on_reply(&mut self, index: usize, rtt_us: u64) {
        if let Some(upstream) = self.list.get_mut(index) {
            upstream.stats.replies += 1;
            upstream.stats.latency.observe_us(rtt_us);
            upstream.consecutive_failures = 0;
            upstream.backoff_until_ms = 0;
            upstream.rttvar_us = Some(match (upstream.rttvar_us, upstream.srtt_us) {
                (Some(rttvar), Some(srtt)) => rttvar - rttvar / 4 + srtt.abs_diff(rtt_us) / 4,
                _ => rtt_us / 2,
            });
            upstream.srtt_us = Some(match upstream.srtt_us {
                None => rtt_us,
                Some(srtt) => srtt - srtt / 8 + rtt_us / 8,
            });
        }
    }

    /// Upstream `index` failed to answer within `timeout_ms`.
    pub fn on_timeout(&mut self, index: usize, timeout_ms: u64, now_ms: u64) {
        if let Some(upstream) = self.list.get_mut(index) {
            upstream.stats.timeouts += 1;
            upstream.consecutive_failures = upstream.consecutive_failures.saturating_add(1);
            let doublings = upstream.consecutive_failures.saturating_sub(1).min(16);
            let backoff = (BACKOFF_BASE_MS << doublings).min(BACKOFF_MAX_MS);
            upstream.backoff_until_ms = now_ms.saturating_add(backoff);
            // A timeout counts as a very slow reply, so `fastest` moves
            // away from an upstream that stopped answering.
            let penalty = timeout_ms.saturating_mul(1000);
            upstream.srtt_us = Some(upstream.srtt_us.map_or(penalty, |srtt| srtt.max(penalty)));
        }
    }

    /// Upstream `index` answered with an error (SERVFAIL, REFUSED, junk).
    pub fn on_error(&mut self, index: usize) {
        if let Some(upstream) = self.list.get_mut(index) {
            upstream.stats.errors += 1;
        }
    }

    /// Upstream `index` echoed the 0x20 case of an accepted reply.
    pub fn on_case_echoed(&mut self, index: usize) {
        if let Some(upstream) = self.list.get_mut(index) {
            upstream.case_strikes_in_row = 0;
        }
    }

    /// Upstream `index` answered a 0x20 question in another case (all else
    /// right). Only counted: the attempt is marked, and only its timeout
    /// is a strike ([`Upstreams::on_case_strike`]).
    pub fn on_case_mismatch(&mut self, index: usize) {
        if let Some(upstream) = self.list.get_mut(index) {
            upstream.stats.case_mismatches += 1;
        }
    }

    /// An attempt to upstream `index` timed out at `now_ms` having
    /// received only replies in the wrong 0x20 case. Returns whether this
    /// strike put it into case fallback.
    pub fn on_case_strike(&mut self, index: usize, now_ms: u64) -> bool {
        let Some(upstream) = self.list.get_mut(index) else {
            return false;
        };
        upstream.stats.case_strikes += 1;
        upstream.case_strikes_in_row = upstream.case_strikes_in_row.saturating_add(1);
        if upstream.case_strikes_in_row < CASE_STRIKES_FOR_FALLBACK || !upstream.echoes_case(now_ms)
        {
            return false;
        }
        upstream.case_strikes_in_row = 0;
        upstream.case_fallback_until_ms = now_ms.saturating_add(CASE_FALLBACK_MS);
        upstream.stats.case_fallbacks += 1;
        true
    }

    /// The client cookie of upstream `index` for a query sent at `now_ms`
    /// (drawn from `rng` when it has none or it is too old).
    pub(crate) fn client_cookie(
        &mut self,
        index: usize,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Option<ClientCookie> {
        let upstream = self.list.get_mut(index)?;
        Some(upstream.cookie.client_cookie(now_ms, rng))
    }

    /// An accepted reply from upstream `index` to an attempt sent with
    /// `client` echoed it, with `server` (possibly empty).
    pub(crate) fn on_cookie_echoed(&mut self, index: usize, client: &ClientCookie, server: &[u8]) {
        if let Some(upstream) = self.list.get_mut(index) {
            upstream.cookie.learn(client, server);
        }
    }

    /// An attempt to upstream `index` timed out having received only
    /// cookie-less replies. Returns whether it is no longer taken to
    /// support cookies.
    pub(crate) fn on_cookieless_timeout(&mut self, index: usize) -> bool {
        let Some(upstream) = self.list.get_mut(index) else {
            return false;
        };
        let fell_back = upstream.cookie.on_cookieless_timeout();
        if fell_back {
            upstream.stats.cookie_fallbacks += 1;
        }
        fell_back
    }

    /// Upstream `index` answered without any RRSIG where signatures were
    /// required, at `now_ms`. Returns whether to warn: the first time, and
    /// then at most once per [`STRIP_WARNING_INTERVAL_MS`].
    pub fn on_stripped(&mut self, index: usize, now_ms: u64) -> bool {
        let Some(upstream) = self.list.get_mut(index) else {
            return false;
        };
        let due = upstream
            .strip_warned_at_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= STRIP_WARNING_INTERVAL_MS);
        if due {
            upstream.strip_warned_at_ms = Some(now_ms);
        }
        due
    }

    /// Upstream `index` answered with TC set.
    pub fn on_truncated(&mut self, index: usize) {
        if let Some(upstream) = self.list.get_mut(index) {
            upstream.stats.truncated += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strip_warning_comes_once_a_minute_per_upstream() {
        let mut upstreams = Upstreams::new(&addresses(2), UpstreamStrategy::Ordered);
        assert!(upstreams.on_stripped(0, 1_000));
        assert!(!upstreams.on_stripped(0, 1_000));
        assert!(!upstreams.on_stripped(0, 60_999));
        assert!(upstreams.on_stripped(1, 2_000), "each upstream its own");
        assert!(upstreams.on_stripped(0, 61_000));
        assert!(!upstreams.on_stripped(0, 61_001));
        assert!(!upstreams.on_stripped(7, 61_000), "no such upstream");
    }

    fn addresses(count: u16) -> Vec<Upstream> {
        (0..count)
            .map(|port| Upstream::udp(SocketAddr::from(([127, 0, 0, 1], 5300 + port))))
            .collect()
    }

    #[test]
    fn ordered_prefers_the_first_and_fails_over() {
        let mut set = Upstreams::new(&addresses(3), UpstreamStrategy::Ordered);
        assert_eq!(set.choose(0, 0), Some(0));
        assert_eq!(set.choose(0b001, 0), Some(1), "the next attempt moves on");
        assert_eq!(set.choose(0b011, 0), Some(2));
        assert_eq!(
            set.choose(0b111, 0),
            Some(0),
            "after all were tried, start over"
        );
        set.on_timeout(0, 800, 1_000);
        assert_eq!(set.choose(0, 1_000), Some(1), "upstream 0 is in backoff");
        assert_eq!(
            set.choose(0, 1_000 + BACKOFF_BASE_MS),
            Some(0),
            "backoff over"
        );
        set.on_reply(0, 1_000);
        assert_eq!(set.get(0).unwrap().consecutive_failures(), 0);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut set = Upstreams::new(&addresses(2), UpstreamStrategy::Ordered);
        for _ in 0..3 {
            set.on_timeout(0, 800, 0);
        }
        assert_eq!(set.choose(0, 4 * BACKOFF_BASE_MS - 1), Some(1));
        assert_eq!(set.choose(0, 4 * BACKOFF_BASE_MS), Some(0));
        for _ in 0..40 {
            set.on_timeout(0, 800, 0);
        }
        assert_eq!(set.choose(0, BACKOFF_MAX_MS - 1), Some(1));
        assert_eq!(set.choose(0, BACKOFF_MAX_MS), Some(0));
    }

    #[test]
    fn all_in_backoff_still_chooses_the_soonest() {
        let mut set = Upstreams::new(&addresses(2), UpstreamStrategy::Ordered);
        set.on_timeout(0, 800, 100);
        set.on_timeout(1, 800, 0);
        assert_eq!(
            set.choose(0, 200),
            Some(1),
            "upstream 1's backoff ends first"
        );
    }

    #[test]
    fn round_robin_takes_turns() {
        let mut set = Upstreams::new(&addresses(3), UpstreamStrategy::RoundRobin);
        let turns: Vec<_> = (0..6).map(|_| set.choose(0, 0).unwrap()).collect();
        assert_eq!(turns, [0, 1, 2, 0, 1, 2]);
        set.on_timeout(1, 800, 0);
        let turns: Vec<_> = (0..4).map(|_| set.choose(0, 1).unwrap()).collect();
        assert_eq!(turns, [0, 2, 0, 2]);
    }

    #[test]
    fn fastest_measures_then_prefers_the_lowest_srtt() {
        let mut set = Upstreams::new(&addresses(3), UpstreamStrategy::Fastest);
        // Unmeasured upstreams go first, in order.
        assert_eq!(set.choose(0, 0), Some(0));
        set.on_reply(0, 9_000);
        assert_eq!(set.choose(0, 0), Some(1));
        set.on_reply(1, 2_000);
        assert_eq!(set.choose(0, 0), Some(2));
        set.on_reply(2, 5_000);
        assert_eq!(set.choose(0, 0), Some(1));
        assert_eq!(
            set.choose(0b010, 0),
            Some(2),
            "second attempt: next fastest"
        );
        // Smoothing: one fast sample does not flip the order at once.
        set.on_reply(0, 100);
        assert_eq!(
            set.get(0).unwrap().srtt_us(),
            Some(9_000 - 9_000 / 8 + 100 / 8)
        );
        set.on_timeout(1, 800, 0);
        assert_eq!(
            set.choose(0, 10_000),
            Some(2),
            "timeouts push an upstream back"
        );
    }

    #[test]
    fn counters_and_empty_sets() {
        let mut empty = Upstreams::new(&[], UpstreamStrategy::Ordered);
        assert_eq!(empty.choose(0, 0), None);
        let mut set = Upstreams::new(&addresses(1), UpstreamStrategy::Ordered);
        set.choose(0, 0);
        set.on_truncated(0);
        set.on_error(0);
        let stats = set.get(0).unwrap().stats();
        assert_eq!((stats.queries, stats.truncated, stats.errors), (1, 1, 1));
        assert_eq!(set.index_of(addresses(1)[0].address), Some(0));
    }

    #[test]
    fn a_slow_upstream_gets_a_longer_timeout_within_bounds() {
        let mut set = Upstreams::new(&addresses(1), UpstreamStrategy::Ordered);
        let up = |set: &Upstreams| set.get(0).unwrap().attempt_timeout_ms(800);
        assert_eq!(up(&set), 800, "unmeasured: the configured timeout");
        set.on_reply(0, 20_000);
        assert_eq!(up(&set), 800, "fast: never below the configured one");
        let mut slow = Upstreams::new(&addresses(1), UpstreamStrategy::Ordered);
        slow.on_reply(0, 600_000);
        // srtt 0.6 s, rttvar 0.3 s: 1.8 s.
        assert_eq!(up(&slow), 1_800);
        for _ in 0..50 {
            slow.on_reply(0, 1_000_000);
        }
        let settled = up(&slow);
        assert!((1_000..1_100).contains(&settled), "{settled}");
        slow.on_reply(0, 60_000_000);
        assert_eq!(up(&slow), 800 * TIMEOUT_CEILING_FACTOR, "capped");
    }

    #[test]
    fn replies_feed_the_latency_histogram() {
        let mut set = Upstreams::new(&addresses(1), UpstreamStrategy::Ordered);
        set.on_reply(0, 700);
        set.on_reply(0, 30_000);
        set.on_error(0);
        let latency = set.get(0).unwrap().stats().latency;
        assert_eq!((latency.count(), latency.sum_us()), (2, 30_700));
        let buckets: Vec<_> = latency.buckets().filter(|(_, n)| *n > 0).collect();
        assert_eq!(buckets, [(Some(1_000), 1), (Some(50_000), 1)]);
    }

    #[test]
    fn reconfigure_keeps_what_was_learned_per_address() {
        let all = addresses(4);
        let mut set = Upstreams::new(&all[..3], UpstreamStrategy::Ordered);
        set.choose(0, 0);
        set.on_reply(0, 9_000);
        set.on_timeout(2, 800, 0);
        // Drop upstream 1, keep 0 and 2 in a new order, add 3.
        let moved = set.reconfigure(
            &[all[2].clone(), all[3].clone(), all[0].clone()],
            UpstreamStrategy::Fastest,
        );
        assert_eq!(&moved[..4], &[Some(2), None, Some(0), None]);
        assert!(moved[4..].iter().all(Option::is_none));
        assert_eq!(set.len(), 3);
        assert_eq!(set.strategy(), UpstreamStrategy::Fastest);
        let kept = set.get(2).unwrap();
        assert_eq!(kept.address(), all[0].address);
        assert_eq!(kept.srtt_us(), Some(9_000));
        assert_eq!((kept.stats().queries, kept.stats().replies), (1, 1));
        assert_eq!(set.get(0).unwrap().consecutive_failures(), 1);
        assert_eq!(set.get(1).unwrap().stats(), UpstreamStats::default());
        // Upstream 2 (old 2, now 0) is still in backoff.
        assert_eq!(
            set.choose(0, 1),
            Some(1),
            "unmeasured first, not in backoff"
        );
    }
}
