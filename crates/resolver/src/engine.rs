//! The forwarding engine of one core: admits client queries, answers from
//! the cache shard, coalesces misses into one upstream query per key, picks
//! upstreams, accepts only matching upstream replies, retries and fails
//! over on deadlines, stores answers and hands out cache-fill hints.
//!
//! It is sans-IO in the manner of quinn-proto: the runtime feeds it events
//! (`handle_query`, `handle_upstream_reply`, `handle_timeouts`) with the
//! current time, then drains what it produced (`poll_transmit`,
//! `poll_reply`, `poll_hint`, `poll_retired`) and sleeps until
//! `next_deadline`.
//!
//! A client query goes through named steps: admission (`admission`: ACL,
//! rate limit, parse, RFC rules, one verdict), the cache, local data and
//! the blocklist, then forwarding into the in-flight table (`inflight`).
//! An upstream reply passes the reply check (`reply_check`) before the
//! engine acts on it, and an answer to be validated then passes DNSSEC
//! validation (`validate`, over `crate::validation`), which may make the
//! query wait for DNSKEY and DS sub-queries. Completed queries are written out per waiter in
//! `completion`; operator actions (flush, hot reload) are in `reload`.
//!
//! Everything is bounded: the in-flight table, the waiters per query, the
//! queues of replies, sends and hints. Overload sheds queries and counts
//! them.
//!
//! Serve-stale (RFC 8767, on when the cache policy's `stale_window` is not
//! 0): a query that finds only an expired entry still inside the window is
//! forwarded like a miss, but its in-flight query knows stale data exists.
//! If the upstream fails (attempts used up, or an error rcode), the
//! waiters get the stale entry instead of the error, the failure is not
//! cached over it, and the cache slot is marked so that later queries are
//! answered stale at once until `stale_refresh_retry_ms` has passed (the
//! failure recheck timer). If the upstream is merely slow, the waiters
//! present `stale_client_timeout_ms` after the query started are answered
//! stale, and so is every later query for the key while the upstream query
//! carries on; its answer refreshes the cache as usual. A stale answer has
//! TTL 30 and, for EDNS clients, the EDE "Stale Answer".
//!
//! Prefetch: a fresh hit on an entry in the last `prefetch_threshold_percent`
//! of its lifetime, with at least `prefetch_min_hits` hits since it was
//! stored, starts an upstream query with no waiters (unless one is already
//! outstanding for the key); the client is answered from the cache, and
//! the refreshed answer is stored and hinted like any other.
//!
//! Operators act on a live engine through [`Resolver::flush_cache`] and
//! [`Resolver::reconfigure`] (hot reload, keeping the cache but purging
//! what the new policy would answer differently).

mod completion;
mod reload;
mod validate;

use std::collections::VecDeque;

use heimdall_cache::{
    AnswerRequest, Cache, CacheError, Entry, EntryKind, EntryView, Lookup, SlotInfo, StoreOptions,
    TCP_LIMIT, Timestamp, udp_limit,
};
use heimdall_config::UpstreamTransport;
use heimdall_policy::{RateLimiter, SecretCache, Verdict, write_blocked};
use heimdall_wire::{
    Class, EdnsOption, Flags, HEADER_LEN, Message, MessageBuilder, Name, OptSpec, QueryKey, Rcode,
    RecordType, WireNameBuf, edns,
};
use heimdall_zone::Reply as LocalReply;
use rand::rngs::{StdRng, SysRng};
use rand::{Rng as _, SeedableRng as _};

use crate::admission::{Admission, Admitted, Gate, admit, refuse, with_cookie};
use crate::aggressive::NsecCache;
use crate::case::apply_case;
use crate::config::{ResolverConfig, ResolverError};
use crate::inflight::{Attempt, InFlight, InFlightTable, Join, Phase, Slot, Waiter};
use crate::io::{
    AttemptId, ClientId, Hint, QueryOutcome, ReplySource, Transmit, Transport, Warning,
};
use crate::reply::ede;
use crate::reply_check::{AcceptedReply, Rejection, check_reply};
use crate::stats::ResolverStats;
use crate::upstream_cookie::COOKIE_OPTION_MAX;
use crate::upstreams::Upstreams;
use crate::validation::KeyCache;
use completion::{Answer, Completion};
pub use reload::ReconfigureReport;

/// Most warnings waiting for [`Resolver::poll_warning`]: one per upstream
/// fits (each is said at most once a minute).
pub const MAX_QUEUED_WARNINGS: usize = crate::upstreams::MAX_UPSTREAMS;

/// What the cache step left to do.
enum CacheStep {
    /// A reply (fresh or stale) of this many bytes is in the output.
    Answered(usize),
    /// Not answered from the cache; `stale`: it holds a stale entry for
    /// the key, which a forwarded query may fall back on.
    Miss { stale: bool },
}

/// The sans-IO forwarding engine of one core.
pub struct Resolver {
    config: ResolverConfig,
    cache: Cache,
    upstreams: Upstreams,
    /// Upstream IDs (and 0x20 case) come from here: a cryptographically
    /// secure generator (ChaCha12) of this core alone, seeded from the OS.
    rng: StdRng,
    inflight: InFlightTable,
    /// Sends to hand out: (slot, generation of the attempt).
    transmits: VecDeque<(Slot, u32)>,
    completions: VecDeque<Completion>,
    hints: VecDeque<Hint>,
    /// Where an upstream's answer is normalized before it becomes an
    /// entry, kept so a miss allocates only the entry.
    entry_scratch: Vec<u8>,
    /// What the runtime should log, rate-limited here; at most
    /// [`MAX_QUEUED_WARNINGS`], the rest dropped.
    warnings: VecDeque<Warning>,
    stats: ResolverStats,
    /// The key of the query being handled, its storage reused.
    scratch_key: QueryKey,
    rate_limiter: Option<RateLimiter>,
    /// The buckets of `cookies.udp_require_above` (its own table: a client
    /// that presents valid cookies never spends a token).
    cookie_limiter: Option<RateLimiter>,
    /// The cookie secrets of the current and last period, derived once.
    cookie_secrets: SecretCache,
    /// Queries (slot and serial) whose DNSSEC sub-query completed: judged
    /// again by `run_resumes` before an event handler returns.
    resumes: VecDeque<(Slot, u32)>,
    /// DNSSEC: zones whose DNSKEY RRset was validated, so a miss in a
    /// known zone does not verify its chain again.
    validated_keys: KeyCache,
    /// DNSSEC: validated NSEC records, for answering denials without
    /// asking upstream (`dnssec.aggressive_nsec`, RFC 8198).
    nsec_cache: NsecCache,
}

/// A written reply, or a drop when it did not fit.
fn outcome(written: Option<usize>) -> QueryOutcome {
    written.map_or(QueryOutcome::Dropped, QueryOutcome::Reply)
}

impl Resolver {
    /// A resolver whose upstream IDs come from a cryptographically secure
    /// generator (`StdRng`, ChaCha12) seeded straight from the operating
    /// system (`SysRng`, getrandom): each core builds its own resolver, so
    /// no two cores share a generator or its state.
    pub fn new(config: ResolverConfig) -> Result<Self, ResolverError> {
        let rng = StdRng::try_from_rng(&mut SysRng).map_err(|_| ResolverError::NoEntropy)?;
        Self::with_rng(config, rng)
    }

    /// A resolver with a fixed RNG seed, for deterministic tests (the same
    /// generator, so the same code paths; only the seed is known).
    pub fn with_seed(config: ResolverConfig, seed: u64) -> Result<Self, ResolverError> {
        Self::with_rng(config, StdRng::seed_from_u64(seed))
    }

    fn with_rng(config: ResolverConfig, rng: StdRng) -> Result<Self, ResolverError> {
        config.validate()?;
        let cache = Cache::new(config.cache_bytes, config.cache_policy)?;
        let upstreams = Upstreams::new(&config.upstreams, config.strategy);
        let rate_limiter = match &config.policy.rate_limit {
            Some((limits, cores)) => Some(RateLimiter::new(limits, *cores)?),
            None => None,
        };
        let cookie_limiter = cookie_limiter(&config)?;
        let scratch_key = QueryKey {
            name: WireNameBuf::new(),
            qtype: RecordType(0),
            qclass: Class(0),
            dnssec_ok: false,
            checking_disabled: false,
        };
        Ok(Self {
            cache,
            upstreams,
            rng,
            inflight: InFlightTable::default(),
            transmits: VecDeque::new(),
            completions: VecDeque::new(),
            hints: VecDeque::new(),
            entry_scratch: Vec::new(),
            warnings: VecDeque::new(),
            stats: ResolverStats::default(),
            scratch_key,
            rate_limiter,
            cookie_limiter,
            cookie_secrets: SecretCache::default(),
            resumes: VecDeque::new(),
            validated_keys: KeyCache::default(),
            nsec_cache: NsecCache::default(),
            config,
        })
    }

    /// Counters.
    pub fn stats(&self) -> &ResolverStats {
        &self.stats
    }

    /// The cache shard.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The cache shard, for flushes.
    pub fn cache_mut(&mut self) -> &mut Cache {
        &mut self.cache
    }

    /// The upstreams and what this core knows of them.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// Queries outstanding upstream.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Handle one client query. A reply ready now (cache hit, stale
    /// answer, error) is written to `out`; a miss is forwarded and
    /// answered later.
    ///
    /// The client is borrowed: a caller builds it just before the call,
    /// and a by-value copy into the call's arguments read its fields back
    /// from the store buffer in pieces the CPU cannot forward (a stall on
    /// every query on the UDP path). Only a miss copies it (into its
    /// waiter).
    pub fn handle_query(
        &mut self,
        packet: &[u8],
        client: &ClientId,
        now: Timestamp,
        out: &mut [u8],
    ) -> QueryOutcome {
        let badvers_before = self.stats.badvers;
        let badcookie_before = self.stats.client_cookies_badcookie_sent;
        let outcome = self.answer_query(packet, client, now, out);
        if let QueryOutcome::Reply(_) = outcome {
            // Every reply written here has its whole rcode in the header
            // except BADVERS, whose upper bits sit in the OPT record; only
            // `refuse` writes one and counts it, so the counter tells
            // without parsing the reply.
            let rcode = if self.stats.badvers != badvers_before {
                Rcode::BADVERS.0
            } else if self.stats.client_cookies_badcookie_sent != badcookie_before {
                Rcode::BADCOOKIE.0
            } else {
                out.get(3).map_or(0, |&byte| u16::from(byte & 0x0f))
            };
            self.stats.count_response(rcode);
        }
        outcome
    }

    /// The query path, one step after another: admission, the cache,
    /// local data and the blocklist, then forwarding.
    fn answer_query(
        &mut self,
        packet: &[u8],
        client: &ClientId,
        now: Timestamp,
        out: &mut [u8],
    ) -> QueryOutcome {
        let gate = Gate {
            config: &self.config,
            rate_limiter: &mut self.rate_limiter,
            cookie_limiter: &mut self.cookie_limiter,
            cookie_secrets: &mut self.cookie_secrets,
            stats: &mut self.stats,
            key: &mut self.scratch_key,
        };
        // Read where admission left it: moved out at once, the copy read
        // admission's stores back before they had left the store buffer,
        // in pieces the CPU cannot forward (a stall on every query).
        let admission = admit(gate, packet, client, now, out);
        let query = match &admission {
            Admission::Drop => return QueryOutcome::Dropped,
            Admission::Reply(len) => return QueryOutcome::Reply(*len),
            Admission::Query(query) => query,
        };
        let limit = match client.transport {
            Transport::Udp => udp_limit(query.edns, self.config.udp_payload_size),
            Transport::Tcp(_) | Transport::Tls(_) | Transport::Https(_) | Transport::Quic(_) => {
                TCP_LIMIT
            }
        };
        let stale = match self.answer_from_cache(query, packet, limit, now, out) {
            CacheStep::Answered(len) => return QueryOutcome::Reply(len),
            CacheStep::Miss { stale } => stale,
        };
        if let Some(outcome) = self.answer_from_policy(query, limit, out) {
            return outcome;
        }
        if let Some(len) = self.answer_aggressively(query, packet, limit, now, out) {
            return QueryOutcome::Reply(len);
        }
        self.stats.cache_misses += 1;
        let mut qname = WireNameBuf::new();
        query.question.name.write_wire(&mut qname);
        let waiter = Waiter {
            client: *client,
            id: query.header.id,
            flags: query.header.flags,
            qname,
            edns: query.edns,
            received_at: now,
        };
        self.forward(waiter, stale, now)
    }

    /// The cache step, for the key in `scratch_key`: a fresh hit (maybe
    /// starting a prefetch), or a stale answer when the upstream failed
    /// recently or the client timer has run out.
    ///
    /// The cache comes before local data and the blocklist: an entry can
    /// only exist for a name that passed both under this same immutable
    /// snapshot (every core shares it, so hints obey it too), so a hit
    /// needs neither check, and a 1M-name blocklist costs the hit path
    /// nothing. A policy change must therefore purge what the new policy
    /// answers differently (`reconfigure` does). The client's own letter
    /// case, in wire form, is kept for the reply: a hit takes it straight
    /// from the packet, where the only question's name sits at offset 12.
    #[inline]
    fn answer_from_cache(
        &mut self,
        query: &Admitted<'_>,
        packet: &[u8],
        limit: usize,
        now: Timestamp,
        out: &mut [u8],
    ) -> CacheStep {
        // The lookup first: built right after admission, the request's
        // copy of the query's EDNS read admission's stores back while
        // they were still in the store buffer (a stall on every query);
        // after the lookup they have left it.
        let (lookup, info) = self.cache.lookup_slot(&self.scratch_key, now);
        let name = &query.question.name;
        let request = AnswerRequest {
            id: query.header.id,
            flags: query.header.flags,
            qname: packet
                .get(HEADER_LEN..HEADER_LEN + name.wire_len())
                .unwrap_or_default(),
            edns: query.edns,
            our_udp_payload: self.config.udp_payload_size,
            limit,
            stale: false,
        };
        match lookup {
            Lookup::Fresh(entry) => {
                let Ok(len) = write_hit(entry, out, &request, name, now) else {
                    return CacheStep::Miss { stale: false };
                };
                self.stats.cache_hits += 1;
                let prefetch = wants_prefetch(&self.config, entry, info, now)
                    && !self.inflight.contains_key(&self.scratch_key);
                if prefetch {
                    self.prefetch(now);
                }
                CacheStep::Answered(len)
            }
            Lookup::Stale(entry) => {
                let timeout = self.config.stale_client_timeout_ms;
                // Answer stale now when the upstream failed recently, or
                // when the client timer of the outstanding query (or of
                // one that would start now) has already run out.
                let recently_failed = info.refresh_after > now;
                let timed_out = match self.inflight.get_by_key(&self.scratch_key) {
                    Some(inflight) => {
                        inflight.phase == Phase::StaleServed
                            || now >= inflight.started_at.add_millis(timeout)
                    }
                    None => timeout == 0,
                };
                if recently_failed || timed_out {
                    let stale = request.with_stale(true);
                    if let Ok(len) = write_hit(entry, out, &stale, name, now) {
                        self.stats.stale_served += 1;
                        if !recently_failed {
                            self.refresh_stale(now);
                        }
                        return CacheStep::Answered(len);
                    }
                }
                CacheStep::Miss { stale: true }
            }
            Lookup::Miss => CacheStep::Miss { stale: false },
        }
    }

    /// After a miss: a denial proved by validated NSEC records already
    /// held (RFC 8198, module `aggressive`), stored and answered like a
    /// hit; `None` asks upstream as usual.
    fn answer_aggressively(
        &mut self,
        query: &Admitted<'_>,
        packet: &[u8],
        limit: usize,
        now: Timestamp,
        out: &mut [u8],
    ) -> Option<usize> {
        let dnssec = &self.config.dnssec;
        if !dnssec.aggressive_nsec || !dnssec.validates() || self.scratch_key.checking_disabled {
            return None;
        }
        let entry = self.nsec_cache.synthesise(
            &self.scratch_key,
            now,
            &self.config.cache_policy,
            &dnssec.validator,
        )?;
        let name = &query.question.name;
        let request = AnswerRequest {
            id: query.header.id,
            flags: query.header.flags,
            qname: packet
                .get(HEADER_LEN..HEADER_LEN + name.wire_len())
                .unwrap_or_default(),
            edns: query.edns,
            our_udp_payload: self.config.udp_payload_size,
            limit,
            stale: false,
        };
        let len = write_hit(&entry, out, &request, name, now).ok()?;
        let _ = self.cache.insert(&self.scratch_key, entry, now);
        self.stats.dnssec_aggressive += 1;
        Some(len)
    }

    /// The policy step after a cache miss: local data, then the
    /// blocklist. `None` when neither answers the query.
    fn answer_from_policy(
        &mut self,
        query: &Admitted<'_>,
        limit: usize,
        out: &mut [u8],
    ) -> Option<QueryOutcome> {
        let our_size = self.config.udp_payload_size;
        // Local data and block replies are written from the query by code
        // that knows nothing of cookies; the client's COOKIE option is
        // added to their OPT record afterwards, in room kept for it.
        let cookie_room = query.edns.map_or(0, |edns| edns.cookie_len());
        if let Some(local) = &self.config.policy.local {
            let window = out.len().min(limit).saturating_sub(cookie_room);
            let written = match out.get_mut(..window) {
                Some(buf) => local.respond(&query.message, buf, limit.saturating_sub(cookie_room)),
                None => Ok(LocalReply::NotLocal),
            };
            match written {
                Ok(LocalReply::Written(len)) => {
                    self.stats.local_answers += 1;
                    let len = with_cookie(out, len, limit, query.edns);
                    return Some(QueryOutcome::Reply(len));
                }
                Ok(LocalReply::Forward | LocalReply::NotLocal) => {}
                Err(_) => {
                    let to = query.reply_to();
                    let written =
                        refuse(&mut self.stats, out, &to, Rcode::SERVFAIL, None, our_size);
                    return Some(outcome(written));
                }
            }
        }
        let policy = &self.config.policy;
        if let Some(blocklist) = &policy.blocklist
            && blocklist.check_lower_wire(&self.scratch_key.name) == Verdict::Blocked
        {
            self.stats.blocked += 1;
            let written = write_blocked(
                &query.message,
                policy.block_mode,
                policy.block_ttl,
                our_size,
                out,
            );
            let written = written
                .ok()
                .map(|len| with_cookie(out, len, limit, query.edns));
            return Some(outcome(written));
        }
        None
    }

    /// Start a prefetch of the key in `scratch_key`: an upstream query
    /// with no waiters. Skipped (not shed: nobody waits) when the
    /// in-flight table is full.
    fn prefetch(&mut self, now: Timestamp) {
        if self.inflight.len() < self.config.max_inflight
            && self.start_query(None, Phase::Forwarding, now).is_some()
        {
            self.stats.prefetches += 1;
        }
    }

    /// Stale was just served for the key in `scratch_key` because the
    /// client timer ran out: mark its outstanding query so later queries
    /// are answered stale too, or, with no query outstanding (a client
    /// timer of 0), start one in the background to refresh the entry.
    fn refresh_stale(&mut self, now: Timestamp) {
        if let Some(slot) = self.inflight.slot_of(&self.scratch_key) {
            if let Some(inflight) = self.inflight.get_mut(slot) {
                inflight.phase = Phase::StaleServed;
            }
        } else if self.inflight.len() < self.config.max_inflight {
            let _ = self.start_query(None, Phase::StaleServed, now);
        }
    }

    /// Join the outstanding query for the key in `scratch_key`, or start one.
    /// `stale`: the cache holds a stale entry for the key.
    fn forward(&mut self, waiter: Waiter, stale: bool, now: Timestamp) -> QueryOutcome {
        if self.inflight.total_waiters() >= self.config.max_total_waiters {
            self.stats.dropped_overload += 1;
            return QueryOutcome::Dropped;
        }
        let mut waiter = waiter;
        if let Some(slot) = self.inflight.slot_of(&self.scratch_key) {
            match self.inflight.join(slot, waiter, self.config.max_waiters) {
                Join::Joined(inflight) => {
                    self.stats.coalesced += 1;
                    // A prefetch that started while the entry was fresh
                    // learns here that it has gone stale.
                    if stale && inflight.phase == Phase::Forwarding {
                        inflight.phase = Phase::StaleArmed;
                        let timeout = self.config.stale_client_timeout_ms;
                        self.inflight.arm_stale_timer(slot, timeout);
                    }
                    return QueryOutcome::Pending;
                }
                Join::Full => {
                    self.stats.dropped_overload += 1;
                    return QueryOutcome::Dropped;
                }
                Join::Gone(back) => waiter = back,
            }
        }
        if self.inflight.len() >= self.config.max_inflight {
            self.stats.dropped_overload += 1;
            return QueryOutcome::Dropped;
        }
        let phase = if stale {
            Phase::StaleArmed
        } else {
            Phase::Forwarding
        };
        match self.start_query(Some(waiter), phase, now) {
            Some(_) => QueryOutcome::Pending,
            None => QueryOutcome::Dropped,
        }
    }

    /// Start an upstream query for the key in `scratch_key`, with one
    /// waiter or none (a prefetch or background refresh), in `phase`
    /// (`StaleArmed` arms its client timer). Returns the slot. The caller
    /// has checked the in-flight bound.
    fn start_query(
        &mut self,
        waiter: Option<Waiter>,
        phase: Phase,
        now: Timestamp,
    ) -> Option<Slot> {
        let slot = self
            .inflight
            .insert(&self.scratch_key, waiter, phase, now)?;
        if phase == Phase::StaleArmed {
            let timeout = self.config.stale_client_timeout_ms;
            self.inflight.arm_stale_timer(slot, timeout);
        }
        self.send_attempt(slot, now);
        Some(slot)
    }

    /// Start the next attempt of `slot`, or fail it when attempts are used
    /// up.
    fn send_attempt(&mut self, slot: Slot, now: Timestamp) {
        let attempts_allowed = self.config.attempts.max(1);
        let Some(inflight) = self.inflight.get(slot) else {
            return;
        };
        if inflight.attempts >= attempts_allowed {
            if inflight.upstream_error {
                self.stats.upstream_error_failures += 1;
                self.fail(slot, Answer::Fail(ede::NETWORK_ERROR), now);
            } else {
                self.fail(slot, Answer::Fail(ede::NO_REACHABLE_AUTHORITY), now);
            }
            return;
        }
        let (tried, failed) = (inflight.tried, inflight.failed);
        let Some(upstream) = self
            .upstreams
            .choose_excluding(tried, failed, now.as_millis())
        else {
            if failed != 0 {
                self.stats.upstream_error_failures += 1;
                self.fail(slot, Answer::Fail(ede::NETWORK_ERROR), now);
            } else {
                self.fail(slot, Answer::Fail(ede::NO_REACHABLE_AUTHORITY), now);
            }
            return;
        };
        let transport = self
            .upstreams
            .get(upstream)
            .map_or(UpstreamTransport::Udp, |up| up.transport());
        if let Some(inflight) = self.inflight.get_mut(slot) {
            inflight.tried |= 1u64 << upstream;
            inflight.attempts += 1;
        }
        self.send(slot, upstream, transport, now);
    }

    /// Queue a send of `slot` to `upstream` over `transport`, with a
    /// fresh ID, generation and deadline; earlier attempts stay live. A
    /// send after a truncated UDP reply (RFC 7766 section 5) goes to the
    /// same upstream over TCP and does not use up an attempt: it finishes
    /// the one that was truncated.
    fn send(&mut self, slot: Slot, upstream: usize, transport: UpstreamTransport, now: Timestamp) {
        let configured = self.config.upstream_timeout_ms;
        let timeout = self
            .upstreams
            .get(upstream)
            .map_or(configured, |up| up.attempt_timeout_ms(configured));
        let deadline = now.add_millis(timeout);
        let keep_earlier = self.config.attempts.max(1) as usize - 1;
        let case_seed = (self.config.case_randomization
            && self
                .upstreams
                .get(upstream)
                .is_some_and(|up| up.echoes_case(now.as_millis())))
        .then(|| self.rng.next_u64());
        let cookie = if self.config.cookies {
            self.upstreams
                .client_cookie(upstream, now.as_millis(), &mut self.rng)
        } else {
            None
        };
        let begun = self.inflight.begin_send(
            slot,
            upstream,
            transport,
            now,
            deadline,
            keep_earlier,
            case_seed,
            cookie,
            &mut self.rng,
        );
        let Some(generation) = begun else {
            // No free upstream ID (the live ones fill the 16-bit space):
            // shed the query rather than leave it without a deadline.
            self.stats.dropped_overload += 1;
            self.fail(slot, Answer::Fail(ede::NO_REACHABLE_AUTHORITY), now);
            return;
        };
        if transport == UpstreamTransport::Tcp {
            self.stats.upstream_tcp_queries += 1;
        }
        self.transmits.push_back((slot, generation));
        self.stats.upstream_queries += 1;
    }

    /// The next upstream query to send, written into `out`.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Transmit> {
        while let Some((slot, generation)) = self.transmits.pop_front() {
            let Some(inflight) = self.inflight.current(slot, generation) else {
                continue;
            };
            let attempt = inflight.attempt;
            let Some(upstream) = self.upstreams.get(attempt.upstream) else {
                continue;
            };
            // On the stack: client cookie and the server cookie learned.
            let mut cookie = [0u8; COOKIE_OPTION_MAX];
            let cookie_len = attempt.cookie.map_or(0, |client| {
                upstream.cookie().write_option(&client, &mut cookie)
            });
            let to = upstream.address();
            let cookie = cookie.get(..cookie_len).unwrap_or_default();
            let our_size = self.config.udp_payload_size;
            // Validation needs the signatures whatever the client asked.
            let dnssec_ok = inflight.key.dnssec_ok || self.config.dnssec.validates();
            let Some(len) = write_upstream_query(out, inflight, our_size, cookie, dnssec_ok) else {
                continue;
            };
            // From here the runtime knows the attempt; it is retired to
            // it when its query ends.
            self.inflight.mark_sent(slot, generation);
            return Some(Transmit {
                to,
                len,
                transport: attempt.transport,
                attempt: attempt.id(),
            });
        }
        None
    }

    /// The next attempt that can no longer be answered (its query ended,
    /// or it was replaced after a truncated or error reply): the runtime
    /// may close its socket. Every [`AttemptId`] handed out in a
    /// [`Transmit`] comes back here exactly once.
    pub fn poll_retired(&mut self) -> Option<AttemptId> {
        self.inflight.pop_retired()
    }

    /// Handle a reply that reached the runtime as `source` says (address,
    /// transport, and for UDP the attempt whose socket received it). It
    /// must pass the reply check (module `reply_check`) before anything
    /// acts on it.
    pub fn handle_upstream_reply(&mut self, source: ReplySource, packet: &[u8], now: Timestamp) {
        self.on_upstream_reply(source, packet, now);
        self.run_resumes(now);
    }

    /// [`Resolver::handle_upstream_reply`], before the queries waiting on
    /// a DNSSEC sub-query it completed are judged again.
    fn on_upstream_reply(&mut self, source: ReplySource, packet: &[u8], now: Timestamp) {
        let AcceptedReply {
            slot,
            attempt,
            current,
            message,
            server_cookie,
        } = match check_reply(&self.inflight, &self.upstreams, source, packet) {
            Ok(reply) => reply,
            Err(rejection) => {
                rejection.count(&mut self.stats);
                match (rejection, source.attempt) {
                    (Rejection::WrongCase(..) | Rejection::NoCookie(..), _) => {
                        self.mark_attempt(rejection);
                    }
                    (_, Some(socket)) => self.inflight.note_foreign_reply(socket.0),
                    (_, None) => {}
                }
                return;
            }
        };
        if attempt.case_seed.is_some() {
            self.upstreams.on_case_echoed(attempt.upstream);
        }
        if let (Some(client), Some(server)) = (attempt.cookie, server_cookie) {
            self.upstreams
                .on_cookie_echoed(attempt.upstream, &client, server);
        }
        let Some((attempts_used, earlier_live)) = self
            .inflight
            .get(slot)
            .map(|inflight| (inflight.attempts, !inflight.earlier.is_empty()))
        else {
            return;
        };
        if !current {
            self.stats.reply_late_accepted += 1;
        }
        if message.flags().truncated() {
            self.on_truncated_reply(slot, &attempt, current, now);
            return;
        }
        let rcode = message.rcode();
        let learned_server_cookie = server_cookie.is_some_and(|server| !server.is_empty());
        if rcode == Rcode::BADCOOKIE
            && learned_server_cookie
            && self.retry_after_badcookie(slot, &attempt, current, now)
        {
            return;
        }
        if rcode != Rcode::NOERROR && rcode != Rcode::NXDOMAIN {
            let outcome = UpstreamErrorReply {
                rcode,
                attempts_used,
                earlier_live,
                current,
            };
            self.on_error_reply(slot, &attempt, outcome, packet, now);
            return;
        }
        let rtt_us = now.as_millis().saturating_sub(attempt.sent_at.as_millis()) * 1000;
        self.upstreams.on_reply(attempt.upstream, rtt_us);
        let answered_by = self.upstreams.get(attempt.upstream).map(|up| up.address());
        if let Some(inflight) = self.inflight.get_mut(slot) {
            inflight.answered_by = answered_by;
        }
        self.judge_answer(slot, &message, packet, now);
    }

    /// A truncated reply: its attempt is done, and the query goes on over
    /// TCP (or, if TCP itself said TC, to the next attempt).
    fn on_truncated_reply(&mut self, slot: Slot, attempt: &Attempt, current: bool, now: Timestamp) {
        self.stats.upstream_truncated += 1;
        self.upstreams.on_truncated(attempt.upstream);
        // The truncated attempt is done: its TCP retry replaces it.
        self.inflight.retire_attempt(slot, attempt.id);
        if attempt.transport.is_stream() {
            // TC over TCP makes no sense: move on as for an error.
            if current {
                self.send_attempt(slot, now);
            }
        } else {
            self.send(slot, attempt.upstream, UpstreamTransport::Tcp, now);
        }
    }

    /// BADCOOKIE carrying a server cookie: the first time for a query, ask
    /// again at once and say so (`true`); a second one is an upstream
    /// error like any other (`false`).
    fn retry_after_badcookie(
        &mut self,
        slot: Slot,
        attempt: &Attempt,
        current: bool,
        now: Timestamp,
    ) -> bool {
        let retried = self
            .inflight
            .get(slot)
            .is_some_and(|inflight| inflight.badcookie_retried);
        if retried {
            return false;
        }
        // RFC 7873 section 5.3: the upstream wants its server cookie,
        // which it just gave us (learned by the caller). Ask again without
        // using up an attempt; only once per query.
        self.inflight.retire_attempt(slot, attempt.id);
        if current {
            if let Some(inflight) = self.inflight.get_mut(slot) {
                inflight.badcookie_retried = true;
            }
            self.stats.upstream_badcookie_retries += 1;
            self.send(slot, attempt.upstream, attempt.transport, now);
        }
        true
    }

    /// An upstream error (any rcode but NOERROR and NXDOMAIN): try another
    /// attempt, wait for an earlier one, or fail the query.
    fn on_error_reply(
        &mut self,
        slot: Slot,
        attempt: &Attempt,
        outcome: UpstreamErrorReply,
        packet: &[u8],
        now: Timestamp,
    ) {
        let UpstreamErrorReply {
            rcode,
            attempts_used,
            earlier_live,
            current,
        } = outcome;
        self.upstreams.on_error(attempt.upstream);
        // An upstream that refused or failed this query is not asked it
        // again: with one upstream, REFUSED costs one query, not
        // `attempts` of them.
        let mut others_left = true;
        if upstream_failed(rcode)
            && let Some(inflight) = self.inflight.get_mut(slot)
        {
            inflight.failed |= 1u64 << (attempt.upstream % 64);
            others_left = !self.upstreams.covers_all(inflight.failed);
        }
        let attempts_left = attempts_used < self.config.attempts.max(1) && others_left;
        if current && !attempts_left && earlier_live && upstream_failed(rcode) {
            // The last attempt failed, but an earlier one may still answer
            // late: wait for it until this attempt's deadline (kept live
            // for that), then fail with EDE 23.
            if let Some(inflight) = self.inflight.get_mut(slot) {
                inflight.upstream_error = true;
            }
            return;
        }
        self.inflight.retire_attempt(slot, attempt.id);
        if !current {
            // An earlier attempt failed; the current one may still answer.
            return;
        }
        if attempts_left {
            self.send_attempt(slot, now);
        } else if upstream_failed(rcode) {
            // The upstream could not or would not answer: that is our
            // failure to resolve, not the client's error, so never relayed
            // (see ARCHITECTURE.md, "Upstream errors").
            self.stats.upstream_error_failures += 1;
            self.fail(slot, Answer::Fail(ede::NETWORK_ERROR), now);
        } else {
            // Not judged by validation: never AD while validating.
            let authentic = self.config.dnssec.validates().then_some(false);
            self.fail(
                slot,
                Answer::Relay(validate::relay_bytes(packet, authentic)),
                now,
            );
        }
    }

    /// A reply refused for the one thing a genuine upstream may get wrong
    /// (the 0x20 case, or a cookie it stopped sending) marks its attempt;
    /// the attempt's timeout decides (`judge_marks`). Other rejections
    /// change nothing.
    fn mark_attempt(&mut self, rejection: Rejection) {
        let (slot, id, wrong_case) = match rejection {
            Rejection::WrongCase(slot, id) => (slot, id, true),
            Rejection::NoCookie(slot, id) => (slot, id, false),
            _ => return,
        };
        let mut upstream = None;
        self.inflight.update_attempt(slot, id, |attempt| {
            upstream = Some(attempt.upstream);
            if wrong_case {
                attempt.marks.wrong_case = true;
            } else {
                attempt.marks.cookieless = true;
            }
        });
        if wrong_case && let Some(upstream) = upstream {
            self.upstreams.on_case_mismatch(upstream);
        }
    }

    /// The current attempt of `slot` timed out, with no accepted reply,
    /// after replies were refused for its `marks`, and its socket was not
    /// flooded: each mark is a strike against its upstream (a forger can
    /// send such replies but cannot stop the genuine one, short of
    /// flooding the socket, which shows). Enough strikes
    /// in a row put the upstream into 0x20 fallback, or make it no longer
    /// known to send cookies. Returns whether the upstream would now
    /// accept what it sent, so the query should ask it again at once.
    fn judge_marks(&mut self, upstream: usize, attempt: Attempt, now: Timestamp) -> bool {
        let mut ask_again = false;
        if attempt.marks.wrong_case {
            if self.upstreams.on_case_strike(upstream, now.as_millis()) {
                self.stats.upstream_case_fallbacks += 1;
            }
            ask_again |= self
                .upstreams
                .get(upstream)
                .is_some_and(|up| !up.echoes_case(now.as_millis()));
        }
        if attempt.marks.cookieless {
            if self.upstreams.on_cookieless_timeout(upstream) {
                self.stats.upstream_cookie_fallbacks += 1;
            }
            ask_again |= self
                .upstreams
                .get(upstream)
                .is_some_and(|up| !up.cookie().supported());
        }
        ask_again
    }

    /// An accepted answer for `slot`: normalize it, store it (unless a
    /// reload made the key the policy's), queue a hint for the other
    /// cores, and complete the query; what cannot be normalized is
    /// relayed as it came.
    fn store_answer(
        &mut self,
        slot: Slot,
        message: &Message<'_>,
        packet: &[u8],
        now: Timestamp,
        options: StoreOptions,
    ) {
        let Some(inflight) = self.inflight.get(slot) else {
            return;
        };
        let key = inflight.key.clone();
        let store = inflight.store;
        let policy = &self.config.cache_policy;
        let scratch = &mut self.entry_scratch;
        match Entry::from_response_in(&key, message, now, policy, options, scratch) {
            Ok(Some(entry)) => {
                let stored = store && self.cache.insert_view(&key, &entry, now).is_ok();
                if stored && self.config.hints {
                    if self.hints.len() < self.config.max_queued_hints {
                        self.hints.push_back(Hint {
                            key,
                            entry: entry.clone(),
                        });
                        self.stats.hints_out += 1;
                    } else {
                        self.stats.hints_dropped += 1;
                    }
                }
                self.complete(slot, Answer::Entry(entry));
            }
            Ok(None) if options.authentic.is_some() && !options.use_once => {
                // Judged by validation but not cacheable (a TTL of 0): the
                // same entry, for the clients waiting now only, so a
                // secure answer keeps its AD and its trimming, and the
                // DNSSEC records go to DO clients only.
                let once = StoreOptions {
                    use_once: true,
                    ..options
                };
                let policy = &self.config.cache_policy;
                let scratch = &mut self.entry_scratch;
                match Entry::from_response_in(&key, message, now, policy, once, scratch) {
                    Ok(Some(entry)) => {
                        self.complete(slot, Answer::Entry(entry));
                    }
                    Ok(None) | Err(_) => self.relay_unstored(slot, packet, options),
                }
            }
            Ok(None) | Err(_) => self.relay_unstored(slot, packet, options),
        }
    }

    /// An answer that could not be made an entry, relayed as the upstream
    /// sent it, so with whatever it put beside the validated records:
    /// never under AD.
    fn relay_unstored(&mut self, slot: Slot, packet: &[u8], options: StoreOptions) {
        let authentic = match options.trim {
            heimdall_cache::Trim::Keep => options.authentic,
            _ => Some(false),
        };
        let bytes = validate::relay_bytes(packet, authentic);
        self.complete(slot, Answer::Relay(bytes));
    }

    /// The upstream gave no usable answer for `slot` (`answer` says what
    /// the waiters get otherwise). When the cache still holds a usable
    /// entry for the key (stale, or fresh after a failed prefetch), the
    /// waiters get that instead, the entry is kept (not overwritten by the
    /// failure) and marked so the upstream is not asked again for
    /// `stale_refresh_retry_ms`. Otherwise a SERVFAIL is remembered
    /// briefly (RFC 9520) and `answer` goes out.
    fn fail(&mut self, slot: Slot, answer: Answer, now: Timestamp) {
        let Some(inflight) = self.inflight.get(slot) else {
            return;
        };
        let key = &inflight.key;
        let waiting = inflight.has_waiters();
        // Cloning the entry allocates: only when someone will read it.
        let kept = match self.cache.peek_usable(key, now) {
            Lookup::Fresh(entry) if entry.kind() != EntryKind::ServFail => {
                Some(waiting.then(|| Answer::Entry(entry.to_owned())))
            }
            Lookup::Stale(entry) => Some(waiting.then(|| Answer::Stale(entry.to_owned()))),
            _ => None,
        };
        let answer = match kept {
            Some(fallback) => {
                let retry_at = now.add_millis(self.config.stale_refresh_retry_ms);
                self.cache.set_refresh_after(key, retry_at);
                fallback.unwrap_or(answer)
            }
            None => {
                if let Answer::Fail(_) = answer
                    && inflight.store
                {
                    // Remember the failure briefly so a dead upstream is
                    // not asked again for every client (RFC 9520).
                    if let Ok(entry) = Entry::failure(
                        key,
                        &key.name,
                        Rcode::SERVFAIL,
                        now,
                        &self.config.cache_policy,
                    ) {
                        // Only an entry larger than the whole shard is
                        // refused; then the failure is not remembered.
                        let _ = self.cache.insert(key, entry, now);
                    }
                }
                answer
            }
        };
        self.complete(slot, answer);
    }

    /// Retire `slot` and queue its waiters' replies.
    fn complete(&mut self, slot: Slot, answer: Answer) {
        let Some((inflight, waiters)) = self.inflight.remove(slot) else {
            return;
        };
        // A DNSSEC sub-query: the queries waiting on it are judged again.
        self.resumes.extend(inflight.dependents.iter().copied());
        if waiters.is_empty() {
            // A prefetch, or a query whose waiters were answered stale.
            return;
        }
        self.completions.push_back(Completion {
            answer,
            waiters,
            qtype: inflight.key.qtype,
            qclass: inflight.key.qclass,
        });
    }

    /// Shutdown: end every query still in flight. Its waiters get usable
    /// cached data (stale included) when there is some, else SERVFAIL
    /// with EDE 22 (No Reachable Authority); nothing is cached, and every
    /// attempt is retired. The replies come out of
    /// [`Resolver::poll_reply`]. Returns how many queries were ended.
    pub fn abandon_all(&mut self, now: Timestamp) -> usize {
        let slots = self.inflight.occupied();
        for &slot in &slots {
            let Some(inflight) = self.inflight.get(slot) else {
                continue;
            };
            let answer = if inflight.has_waiters() {
                match self.cache.peek_usable(&inflight.key, now) {
                    Lookup::Fresh(entry) if entry.kind() != EntryKind::ServFail => {
                        Answer::Entry(entry.to_owned())
                    }
                    Lookup::Stale(entry) => Answer::Stale(entry.to_owned()),
                    _ => Answer::Fail(ede::NO_REACHABLE_AUTHORITY),
                }
            } else {
                Answer::Fail(ede::NO_REACHABLE_AUTHORITY)
            };
            self.complete(slot, answer);
        }
        // Nothing waits on a sub-query any more: all have ended.
        self.resumes.clear();
        slots.len()
    }

    /// When the next deadline falls (an attempt's timeout, or a
    /// serve-stale client timer), if any query is outstanding.
    pub fn next_deadline(&mut self) -> Option<Timestamp> {
        self.inflight.next_deadline()
    }

    /// Handle every deadline that has passed by `now`: a timed-out
    /// attempt tries the next upstream or fails; a serve-stale client
    /// timer answers the waiters stale.
    pub fn handle_timeouts(&mut self, now: Timestamp) {
        self.on_timeouts(now);
        self.run_resumes(now);
    }

    /// [`Resolver::handle_timeouts`], before the queries waiting on a
    /// DNSSEC sub-query that failed are judged again.
    fn on_timeouts(&mut self, now: Timestamp) {
        while let Some((slot, serial)) = self.inflight.pop_stale_timer(now) {
            self.serve_stale_waiters(slot, serial, now);
        }
        while let Some(slot) = self.inflight.pop_timed_out(now) {
            let Some(inflight) = self.inflight.get(slot) else {
                continue;
            };
            // An attempt answered with an error only waited for earlier
            // ones: its upstream did answer, so it is no timeout.
            if inflight.upstream_error {
                self.send_attempt(slot, now);
                continue;
            }
            let attempt = inflight.attempt;
            self.stats.upstream_timeouts += 1;
            let marked = attempt.marks.wrong_case || attempt.marks.cookieless;
            if !attempt.marks.strikes() {
                if marked {
                    // Forged replies may have put the marks there and a
                    // flood cost the genuine reply: no evidence.
                    self.stats.upstream_strikes_flooded += 1;
                }
                self.upstreams.on_timeout(
                    attempt.upstream,
                    self.config.upstream_timeout_ms,
                    now.as_millis(),
                );
            } else if self.judge_marks(attempt.upstream, attempt, now) {
                // The upstream answered, only not in a way we accepted
                // until now: ask it again at once (lower case, or without
                // requiring a cookie), without using up an attempt. No
                // backoff either: it is not down.
                self.inflight.retire_attempt(slot, attempt.id);
                self.send(slot, attempt.upstream, attempt.transport, now);
                continue;
            }
            self.send_attempt(slot, now);
        }
    }

    /// The client timer of query `serial` in `slot` ran out: answer its
    /// waiters from the cache (stale) and let the query carry on. When the
    /// entry has meanwhile left its stale window, they keep waiting.
    fn serve_stale_waiters(&mut self, slot: Slot, serial: u32, now: Timestamp) {
        let Some(inflight) = self.inflight.get(slot) else {
            return;
        };
        if inflight.serial != serial || inflight.phase == Phase::StaleServed {
            return;
        }
        let answer = match self.cache.peek_usable(&inflight.key, now) {
            Lookup::Stale(entry) => Answer::Stale(entry.to_owned()),
            // A hint from another core may have refreshed it.
            Lookup::Fresh(entry) => Answer::Entry(entry.to_owned()),
            Lookup::Miss => return,
        };
        let (qtype, qclass) = (inflight.key.qtype, inflight.key.qclass);
        if let Some(inflight) = self.inflight.get_mut(slot) {
            inflight.phase = Phase::StaleServed;
        }
        let waiters = self.inflight.take_waiters(slot);
        if !waiters.is_empty() {
            self.completions.push_back(Completion {
                answer,
                waiters,
                qtype,
                qclass,
            });
        }
    }

    /// The next cache-fill hint for the other cores.
    pub fn poll_hint(&mut self) -> Option<Hint> {
        self.hints.pop_front()
    }

    /// The next warning for the operator's log (already rate-limited).
    pub fn poll_warning(&mut self) -> Option<Warning> {
        self.warnings.pop_front()
    }

    /// Queue `warning` for [`Resolver::poll_warning`], unless the queue is
    /// full (a runtime that never polls loses warnings, not memory).
    pub(crate) fn warn(&mut self, warning: Warning) {
        if self.warnings.len() < MAX_QUEUED_WARNINGS {
            self.warnings.push_back(warning);
        }
    }

    /// A hint from another core: stored unless this core has a fresher
    /// answer, or its name is blocked here (a hint sent before a reload
    /// may arrive after it).
    pub fn receive_hint(&mut self, hint: Hint, now: Timestamp) {
        self.stats.hints_in += 1;
        if let Some(blocklist) = &self.config.policy.blocklist
            && blocklist.check_lower_wire(&hint.key.name) == Verdict::Blocked
        {
            return;
        }
        if self.cache.insert_hint(&hint.key, hint.entry, now) {
            self.stats.hints_stored += 1;
        }
    }
}

/// Whether an upstream reply with `rcode` means the upstream failed us
/// rather than answered: SERVFAIL (it could not resolve), REFUSED (it
/// will not serve us), NOTIMP and FORMERR (it could not take our query),
/// BADCOOKIE (it would not take our cookie, even after one retry with its
/// fresh server cookie).
/// Such a reply makes the query try the next upstream, and when attempts
/// are used up the client gets SERVFAIL with EDE 23 "Network Error",
/// cached briefly (RFC 9520); the rcode itself is never relayed, since it
/// would tell the client that *it* was refused or malformed. Other
/// rcodes (YXDOMAIN, NOTAUTH, ...) are answers and are relayed.
fn upstream_failed(rcode: Rcode) -> bool {
    [
        Rcode::SERVFAIL,
        Rcode::REFUSED,
        Rcode::NOTIMP,
        Rcode::FORMERR,
        Rcode::BADCOOKIE,
    ]
    .contains(&rcode)
}

/// The limiter of `cookies.udp_require_above`, if cookies are answered
/// and it is set.
pub(crate) fn cookie_limiter(
    config: &ResolverConfig,
) -> Result<Option<RateLimiter>, ResolverError> {
    match config
        .policy
        .cookies
        .as_ref()
        .and_then(|c| c.udp_require.as_ref())
    {
        Some((limits, cores)) => Ok(Some(RateLimiter::new(limits, *cores)?)),
        None => Ok(None),
    }
}

/// Write a hit from `entry` for `request`; when the client's qname at
/// offset 12 was compressed (so not whole there), copy it out and retry.
fn write_hit(
    entry: &EntryView,
    out: &mut [u8],
    request: &AnswerRequest<'_>,
    name: &Name<'_>,
    now: Timestamp,
) -> Result<usize, CacheError> {
    let written = entry.write_answer(out, request, now);
    if let Err(CacheError::QuestionMismatch) = written {
        // On the stack: the hit path does not allocate.
        let mut qname = WireNameBuf::new();
        name.write_wire(&mut qname);
        let whole = AnswerRequest {
            qname: &qname,
            ..*request
        };
        return entry.write_answer(out, &whole, now);
    }
    written
}

/// Whether a fresh hit on `entry` (with the slot's `info`) should start a
/// prefetch: prefetch is on, the entry has had enough hits, it is in the
/// last `prefetch_threshold_percent` of its lifetime, it is not a
/// remembered failure, and the upstream has not just failed for it.
fn wants_prefetch(
    config: &ResolverConfig,
    entry: &EntryView,
    info: SlotInfo,
    now: Timestamp,
) -> bool {
    let threshold = u64::from(config.prefetch_threshold_percent);
    if threshold == 0 || info.hits < config.prefetch_min_hits {
        return false;
    }
    let expires = entry.expires_at().as_millis();
    let lifetime = expires.saturating_sub(entry.stored_at().as_millis());
    let remaining = expires.saturating_sub(now.as_millis());
    remaining.saturating_mul(100) <= lifetime.saturating_mul(threshold)
        && entry.kind() != EntryKind::ServFail
        && info.refresh_after <= now
}

/// The upstream query for an in-flight entry: random ID, RD, the key's CD,
/// the question (lower case, or in the attempt's 0x20 case), and EDNS with
/// our size, DO as `dnssec_ok` says (the key's, or set for validation)
/// and, unless `cookie` is empty, the COOKIE option with that data (RFC
/// 7873: client cookie, then server cookie).
fn write_upstream_query(
    out: &mut [u8],
    inflight: &InFlight,
    our_size: u16,
    cookie: &[u8],
    dnssec_ok: bool,
) -> Option<usize> {
    let key = &inflight.key;
    let name = Name::from_wire(&key.name).ok()?;
    let mut builder = MessageBuilder::new(out).ok()?;
    builder.set_id(inflight.attempt.id);
    builder.set_flags(
        Flags::default()
            .with_recursion_desired(true)
            .with_checking_disabled(key.checking_disabled),
    );
    builder.question(&name, key.qtype, key.qclass).ok()?;
    let cookie_option = [EdnsOption {
        code: edns::COOKIE,
        data: cookie,
    }];
    let opt = OptSpec {
        udp_payload_size: our_size,
        extended_rcode: 0,
        version: 0,
        dnssec_ok,
        options: if cookie.is_empty() {
            &[]
        } else {
            &cookie_option
        },
    };
    builder.opt(&opt).ok()?;
    let len = builder.finish();
    if let Some(seed) = inflight.attempt.case_seed {
        // The question's name starts right after the header, uncompressed.
        apply_case(out.get_mut(HEADER_LEN..len)?, seed);
    }
    Some(len)
}

/// What [`Resolver::on_error_reply`] needs to know about an error reply
/// besides its attempt.
#[derive(Clone, Copy)]
struct UpstreamErrorReply {
    rcode: Rcode,
    /// Attempts the query has used so far.
    attempts_used: u32,
    /// An earlier attempt of the query may still answer.
    earlier_live: bool,
    /// The reply answers the query's current attempt.
    current: bool,
}
