//! The forwarding engine of one core: admits client queries, answers from
//! the cache shard, coalesces misses into one upstream query per key, picks
//! upstreams, accepts only matching upstream replies, retries and fails
//! over on deadlines, stores answers and hands out cache-fill hints.
//!
//! It is sans-IO in the manner of quinn-proto: the runtime feeds it events
//! (`handle_query`, `handle_upstream_reply`, `handle_timeouts`) with the
//! current time, then drains what it produced (`poll_transmit`,
//! `poll_reply`, `poll_hint`) and sleeps until `next_deadline`.
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

use core::cmp::Reverse;
use core::net::SocketAddr;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use hashbrown::{HashMap, HashSet};
use heimdall_cache::{
    AnswerRequest, Cache, CacheError, CachePolicy, ClientEdns, Entry, EntryKind, Lookup, SlotInfo,
    TCP_LIMIT, Timestamp, udp_limit,
};
use heimdall_policy::{
    Acl, AclDecision, BlockMode, Blocklist, PolicyError, RateDecision, RateLimitAction,
    RateLimitConfig, RateLimiter, Verdict, write_blocked, write_truncated,
};
use heimdall_wire::{
    Class, Flags, HEADER_LEN, Header, Message, MessageBuilder, Name, Opcode, OptSpec, QueryKey,
    Question, Rcode, RecordType, Section, WireNameBuf,
};
use heimdall_zone::{LocalData, Reply as LocalReply};
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};
use smallvec::SmallVec;

use crate::reply::{ReplyTo, ede, reply_flags, write_error_reply};
use crate::stats::{QtypeTally, RCODE_SLOTS, rcode_slot};
use crate::upstreams::{MAX_UPSTREAMS, Strategy, Upstreams};

/// The upstream index of an in-flight query whose upstream was removed by
/// a reload: no reply matches it, so its attempt times out and the next
/// one picks a current upstream.
const GONE: usize = usize::MAX;

/// Why a resolver could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolverError {
    /// No upstream servers were given.
    #[error("at least one upstream server is needed")]
    NoUpstreams,
    /// More upstreams than the engine tracks.
    #[error("{0} upstream servers given; at most {MAX_UPSTREAMS} are supported")]
    TooManyUpstreams(usize),
    /// The cache settings were refused.
    #[error("cache: {0}")]
    Cache(#[from] CacheError),
    /// The policy settings were refused.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// A resolver setting is out of range.
    #[error("{0}")]
    InvalidSetting(&'static str),
}

/// Query policy applied before the cache, in this order: ACL, rate limit,
/// local data, blocklist. Every part is optional; the default applies none.
/// The shared parts are built once and shared read-only by every core.
#[derive(Debug, Clone, Default)]
pub struct PolicyConfig {
    /// Which clients may use the resolver; `None` allows every client.
    pub acl: Option<Acl>,
    /// Rate limit settings for the whole server, and how many cores share
    /// them (each core's limiter gets `1 / cores` of the rate and burst).
    pub rate_limit: Option<(RateLimitConfig, usize)>,
    /// Local authoritative data, answered before the blocklist and cache.
    pub local: Option<Arc<LocalData>>,
    /// Blocked (and allowed) names.
    pub blocklist: Option<Arc<Blocklist>>,
    /// How blocked names are answered.
    pub block_mode: BlockMode,
    /// TTL of null-address answers to blocked names, in seconds.
    pub block_ttl: u32,
}

/// Settings of one resolver (one core).
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Upstream servers, in configured order.
    pub upstreams: Vec<SocketAddr>,
    /// Upstreams (also in `upstreams`) asked over TCP only.
    pub tcp_only: Vec<SocketAddr>,
    /// How the next upstream is chosen.
    pub strategy: Strategy,
    /// How long to wait for one upstream attempt, in milliseconds.
    pub upstream_timeout_ms: u64,
    /// Attempts per query, across upstreams, before SERVFAIL.
    pub attempts: u32,
    /// The UDP payload size we advertise, to clients and upstreams.
    pub udp_payload_size: u16,
    /// This core's cache shard size in bytes.
    pub cache_bytes: usize,
    /// TTL rules of the cache.
    pub cache_policy: CachePolicy,
    /// Most queries outstanding upstream at once.
    pub max_inflight: usize,
    /// Most clients waiting on one outstanding query.
    pub max_waiters: usize,
    /// Most clients waiting on all outstanding queries together: bounds
    /// the memory of waiters (about 300 bytes each).
    pub max_total_waiters: usize,
    /// Whether to produce cache-fill hints for the other cores.
    pub hints: bool,
    /// Most hints queued before the runtime drains them.
    pub max_queued_hints: usize,
    /// Query policy (ACL, rate limit, local data, blocklist).
    pub policy: PolicyConfig,
    /// Serve-stale client response timer (RFC 8767 section 5): how long
    /// after an upstream query for a key with stale data started its
    /// waiters are answered stale, in milliseconds. 0 answers stale at
    /// once and refreshes in the background. Only used when the cache
    /// policy's `stale_window` is not 0.
    pub stale_client_timeout_ms: u64,
    /// Serve-stale failure recheck timer (RFC 8767 section 5): after the
    /// upstream failed for a key, it is answered stale without asking
    /// upstream for this long, in milliseconds.
    pub stale_refresh_retry_ms: u64,
    /// Prefetch an entry when a hit finds at most this percentage of its
    /// lifetime left (0 turns prefetch off; at most 100).
    pub prefetch_threshold_percent: u8,
    /// Prefetch only entries with at least this many hits since they were
    /// stored (the hit that triggers it included).
    pub prefetch_min_hits: u32,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            tcp_only: Vec::new(),
            strategy: Strategy::Ordered,
            upstream_timeout_ms: 800,
            attempts: 3,
            udp_payload_size: heimdall_cache::DEFAULT_UDP_PAYLOAD,
            cache_bytes: 64 << 20,
            cache_policy: CachePolicy::default(),
            max_inflight: 4096,
            max_waiters: 256,
            max_total_waiters: 16_384,
            hints: true,
            max_queued_hints: 1024,
            policy: PolicyConfig::default(),
            // RFC 8767 section 5 suggests 1.8 s and 30 s.
            stale_client_timeout_ms: 1_800,
            stale_refresh_retry_ms: 30_000,
            // Unbound's prefetch window is the last 10% of the TTL.
            prefetch_threshold_percent: 10,
            prefetch_min_hits: 3,
        }
    }
}

impl ResolverConfig {
    /// Check every setting that [`Resolver::new`] and
    /// [`Resolver::reconfigure`] would refuse, without building anything.
    pub fn validate(&self) -> Result<(), ResolverError> {
        if self.upstreams.is_empty() {
            return Err(ResolverError::NoUpstreams);
        }
        if self.upstreams.len() > MAX_UPSTREAMS {
            return Err(ResolverError::TooManyUpstreams(self.upstreams.len()));
        }
        if self.prefetch_threshold_percent > 100 {
            return Err(ResolverError::InvalidSetting(
                "prefetch_threshold_percent must be 0 to 100",
            ));
        }
        self.cache_policy.validate()?;
        Ok(())
    }
}

/// What a [`Resolver::reconfigure`] did beyond taking the new settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconfigureReport {
    /// Cache entries removed because the new policy (blocklist, local
    /// data) would answer their names differently.
    pub purged: usize,
}

/// How a client reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A UDP datagram; replies are limited by the client's payload size.
    Udp,
    /// A TCP connection, named by the runtime; replies up to 65,535 bytes.
    Tcp(u32),
}

/// Who to answer, and through which of the runtime's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// The client's address.
    pub addr: SocketAddr,
    /// The transport the query came over.
    pub transport: Transport,
    /// The runtime's index of the listening socket that received the
    /// query; the reply must leave from the same one.
    pub listener: u16,
}

/// What became of a client query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryOutcome {
    /// A reply of this many bytes is in the output buffer.
    Reply(usize),
    /// The answer comes later, through [`Resolver::poll_reply`].
    Pending,
    /// Nothing is sent (not a query, unreadable, or shed under load).
    Dropped,
}

/// An upstream query the runtime must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The upstream's address.
    pub to: SocketAddr,
    /// Bytes of the query in the output buffer (without a TCP length
    /// prefix).
    pub len: usize,
    /// Send it over TCP (the upstream's UDP reply was truncated) rather
    /// than UDP.
    pub tcp: bool,
}

/// A cache-fill hint: an answer this core stored, for the other cores.
#[derive(Debug, Clone)]
pub struct Hint {
    /// The key it answers.
    pub key: QueryKey,
    /// The stored entry (times are on the shared epoch).
    pub entry: Entry,
}

/// Counters of one resolver. Only its own core writes them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Client queries received.
    pub queries: u64,
    /// Client queries received over UDP.
    pub queries_udp: u64,
    /// Client queries received over TCP.
    pub queries_tcp: u64,
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
    /// Upstream replies refused: wrong source, ID or question.
    pub upstream_mismatched: u64,
    /// Upstream replies that could not be parsed.
    pub upstream_malformed: u64,
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

    fn count_response(&mut self, rcode: u16) {
        if let Some(count) = self.responses_by_rcode.get_mut(rcode_slot(rcode)) {
            *count += 1;
        }
    }
}

#[derive(Debug, Clone)]
struct Waiter {
    client: ClientId,
    id: u16,
    flags: Flags,
    qname: WireNameBuf,
    edns: Option<ClientEdns>,
}

#[derive(Debug)]
struct InFlight {
    key: QueryKey,
    /// Clients waiting; none for a prefetch, or once stale was served.
    waiters: SmallVec<[Waiter; 1]>,
    /// Unique among the queries of this resolver: names the query for its
    /// stale timer (the generation changes with every attempt).
    serial: u32,
    /// When the first attempt was queued: the stale client timer runs
    /// from here.
    started_at: Timestamp,
    /// A stale entry exists for the key (its timer is armed).
    stale: bool,
    /// Stale was served to the waiters: later queries for the key are
    /// answered stale at once while this query carries on.
    stale_served: bool,
    /// Whether the answer may be cached: a reload clears it for a key the
    /// new policy answers itself (blocked or local).
    store: bool,
    upstream: usize,
    upstream_id: u16,
    tried: u64,
    attempts: u32,
    sent_at: Timestamp,
    generation: u32,
    /// The current attempt goes over TCP.
    tcp: bool,
}

#[derive(Debug)]
enum Answer {
    /// A normalized entry (stored or not).
    Entry(Entry),
    /// An upstream reply that is passed on but not cached.
    Relay(Box<[u8]>),
    /// No usable answer: SERVFAIL with this EDE code.
    Fail(u16),
    /// The upstream failed or is slow: a stale entry, served as such.
    Stale(Entry),
}

#[derive(Debug)]
struct Completion {
    answer: Answer,
    waiters: SmallVec<[Waiter; 1]>,
    qtype: RecordType,
    qclass: Class,
}

/// The sans-IO forwarding engine of one core.
pub struct Resolver {
    config: ResolverConfig,
    cache: Cache,
    upstreams: Upstreams,
    rng: SmallRng,
    slots: Vec<Option<InFlight>>,
    free_slots: Vec<u32>,
    by_key: HashMap<QueryKey, u32>,
    by_id: HashMap<u16, u32>,
    deadlines: BinaryHeap<Reverse<(Timestamp, u32, u32)>>,
    /// Serve-stale client timers: (when, slot, serial).
    stale_timers: BinaryHeap<Reverse<(Timestamp, u32, u32)>>,
    next_generation: u32,
    next_serial: u32,
    transmits: VecDeque<(u32, u32)>,
    completions: VecDeque<Completion>,
    hints: VecDeque<Hint>,
    stats: ResolverStats,
    scratch_key: QueryKey,
    total_waiters: usize,
    rate_limiter: Option<RateLimiter>,
}

/// Why a client query cannot be forwarded: the rcode that says so, and
/// an Extended DNS Error code for EDNS clients.
struct Refusal(Rcode, Option<u16>);

impl Resolver {
    /// A resolver whose upstream IDs come from an RNG seeded by the OS.
    pub fn new(config: ResolverConfig) -> Result<Self, ResolverError> {
        Self::with_rng(config, rand::make_rng())
    }

    /// A resolver with a fixed RNG seed, for deterministic tests.
    pub fn with_seed(config: ResolverConfig, seed: u64) -> Result<Self, ResolverError> {
        Self::with_rng(config, SmallRng::seed_from_u64(seed))
    }

    fn with_rng(config: ResolverConfig, rng: SmallRng) -> Result<Self, ResolverError> {
        config.validate()?;
        let cache = Cache::new(config.cache_bytes, config.cache_policy)?;
        let upstreams = Upstreams::new(&config.upstreams, config.strategy);
        let rate_limiter = match &config.policy.rate_limit {
            Some((limits, cores)) => Some(RateLimiter::new(limits, *cores)?),
            None => None,
        };
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
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            deadlines: BinaryHeap::new(),
            stale_timers: BinaryHeap::new(),
            next_generation: 0,
            next_serial: 0,
            transmits: VecDeque::new(),
            completions: VecDeque::new(),
            hints: VecDeque::new(),
            stats: ResolverStats::default(),
            scratch_key,
            total_waiters: 0,
            rate_limiter,
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
        self.by_key.len()
    }

    /// Handle one client query. A reply ready now (cache hit, stale
    /// answer, error) is written to `out`; a miss is forwarded and
    /// answered later.
    pub fn handle_query(
        &mut self,
        packet: &[u8],
        client: ClientId,
        now: Timestamp,
        out: &mut [u8],
    ) -> QueryOutcome {
        let badvers_before = self.stats.badvers;
        let outcome = self.answer_query(packet, client, now, out);
        if let QueryOutcome::Reply(_) = outcome {
            // Every reply written here has its whole rcode in the header
            // except BADVERS, whose upper bits sit in the OPT record; only
            // `refuse` writes one and counts it, so the counter tells
            // without parsing the reply.
            let rcode = if self.stats.badvers != badvers_before {
                Rcode::BADVERS.0
            } else {
                out.get(3).map_or(0, |&byte| u16::from(byte & 0x0f))
            };
            self.stats.count_response(rcode);
        }
        outcome
    }

    fn answer_query(
        &mut self,
        packet: &[u8],
        client: ClientId,
        now: Timestamp,
        out: &mut [u8],
    ) -> QueryOutcome {
        let Ok(header) = Header::parse(packet) else {
            self.stats.dropped_malformed += 1;
            return QueryOutcome::Dropped;
        };
        if header.flags.response() {
            // Answering a response invites reflection loops.
            self.stats.dropped_malformed += 1;
            return QueryOutcome::Dropped;
        }
        self.stats.queries += 1;
        match client.transport {
            Transport::Udp => self.stats.queries_udp += 1,
            Transport::Tcp(_) => self.stats.queries_tcp += 1,
        }
        // Policy on the client address first: ACL, then rate limit.
        let client_ip = client.addr.ip();
        let acl = match &self.config.policy.acl {
            Some(acl) => acl.check(client_ip),
            None => AclDecision::Allow,
        };
        if acl == AclDecision::Drop {
            self.stats.acl_dropped += 1;
            return QueryOutcome::Dropped;
        }
        let limited = match (&mut self.rate_limiter, acl) {
            (Some(limiter), AclDecision::Allow) => match limiter.check(client_ip, now) {
                RateDecision::Allow => None,
                // TC means nothing over TCP: the client already proved its
                // address.
                RateDecision::Limit(RateLimitAction::Truncate)
                    if matches!(client.transport, Transport::Tcp(_)) =>
                {
                    None
                }
                RateDecision::Limit(action) => Some(action),
            },
            _ => None,
        };
        if limited == Some(RateLimitAction::Drop) {
            self.stats.rate_limited_dropped += 1;
            return QueryOutcome::Dropped;
        }
        let message = match Message::parse(packet) {
            Ok(message) => message,
            Err(_) => {
                let to = ReplyTo::header_only(&header);
                if acl == AclDecision::Refuse {
                    self.stats.acl_refused += 1;
                    return self.write_policy_refusal(out, &to, Some(ede::PROHIBITED));
                }
                match limited {
                    Some(RateLimitAction::Refused) => {
                        self.stats.rate_limited_refused += 1;
                        return self.write_policy_refusal(out, &to, None);
                    }
                    Some(_) => {
                        self.stats.rate_limited_truncated += 1;
                        return QueryOutcome::Dropped;
                    }
                    None => {}
                }
                return self.refuse(out, &to, Rcode::FORMERR, None);
            }
        };
        let edns = ClientEdns::of(&message);
        let question = message.question();
        if let Some(question) = &question {
            self.stats.qtypes.record(question.qtype.0);
        }
        // Only error replies echo the query this way; built when one is sent.
        let to = || ReplyTo {
            id: header.id,
            flags: header.flags,
            question: question.map(|q| (q.name, q.qtype, q.qclass)),
            edns,
        };
        if acl == AclDecision::Refuse {
            self.stats.acl_refused += 1;
            return self.write_policy_refusal(out, &to(), Some(ede::PROHIBITED));
        }
        match limited {
            Some(RateLimitAction::Refused) => {
                self.stats.rate_limited_refused += 1;
                return self.write_policy_refusal(out, &to(), None);
            }
            Some(_) => {
                self.stats.rate_limited_truncated += 1;
                return match write_truncated(&message, self.config.udp_payload_size, out) {
                    Ok(len) => QueryOutcome::Reply(len),
                    Err(_) => QueryOutcome::Dropped,
                };
            }
            None => {}
        }
        if let Err(Refusal(rcode, ede_code)) = Self::admit(&message, question.as_ref()) {
            return self.refuse(out, &to(), rcode, ede_code.map(|code| (code, "")));
        }
        let Some(question) = question else {
            return self.refuse(out, &to(), Rcode::FORMERR, None);
        };
        if self.scratch_key.fill_from(&message).is_err() {
            return self.refuse(out, &to(), Rcode::FORMERR, None);
        }
        let limit = match client.transport {
            Transport::Udp => udp_limit(edns, self.config.udp_payload_size),
            Transport::Tcp(_) => TCP_LIMIT,
        };
        // The cache comes before local data and the blocklist: an entry can
        // only exist for a name that passed both under this same immutable
        // snapshot (every core shares it, so hints obey it too), so a hit
        // needs neither check, and a 1M-name blocklist costs the hit path
        // nothing. A policy change must therefore purge what the new policy
        // answers differently (`reconfigure` does). The client's own letter
        // case, in wire form, is kept for the reply: a hit takes it
        // straight from the packet, where the only question's name sits at
        // offset 12.
        let request = AnswerRequest {
            id: header.id,
            flags: header.flags,
            qname: packet
                .get(HEADER_LEN..HEADER_LEN + question.name.wire_len())
                .unwrap_or_default(),
            edns,
            our_udp_payload: self.config.udp_payload_size,
            limit,
            stale: false,
        };
        let mut stale_pending = false;
        let (lookup, info) = self.cache.lookup_slot(&self.scratch_key, now);
        match lookup {
            Lookup::Fresh(entry) => {
                if let Ok(len) = write_hit(entry, out, &request, &question.name, now) {
                    self.stats.cache_hits += 1;
                    let prefetch = wants_prefetch(&self.config, entry, info, now)
                        && !self.by_key.contains_key(&self.scratch_key);
                    if prefetch {
                        self.prefetch(now);
                    }
                    return QueryOutcome::Reply(len);
                }
            }
            Lookup::Stale(entry) => {
                let timeout = self.config.stale_client_timeout_ms;
                let inflight = self
                    .by_key
                    .get(&self.scratch_key)
                    .and_then(|&slot| self.slots.get(slot as usize))
                    .and_then(Option::as_ref);
                // Answer stale now when the upstream failed recently, or
                // when the client timer of the outstanding query (or of
                // one that would start now) has already run out.
                let recently_failed = info.refresh_after > now;
                let timed_out = match inflight {
                    Some(inflight) => {
                        inflight.stale_served || now >= inflight.started_at.add_millis(timeout)
                    }
                    None => timeout == 0,
                };
                if recently_failed || timed_out {
                    let stale = request.with_stale(true);
                    if let Ok(len) = write_hit(entry, out, &stale, &question.name, now) {
                        self.stats.stale_served += 1;
                        if !recently_failed {
                            self.refresh_stale(now);
                        }
                        return QueryOutcome::Reply(len);
                    }
                }
                stale_pending = true;
            }
            Lookup::Miss => {}
        }
        // A miss: local data, then the blocklist, then forwarding.
        if let Some(local) = &self.config.policy.local {
            let window = out.len().min(limit);
            let written = match out.get_mut(..window) {
                Some(buf) => local.respond(&message, buf, limit),
                None => Ok(LocalReply::NotLocal),
            };
            match written {
                Ok(LocalReply::Written(len)) => {
                    self.stats.local_answers += 1;
                    return QueryOutcome::Reply(len);
                }
                Ok(LocalReply::Forward | LocalReply::NotLocal) => {}
                Err(_) => return self.refuse(out, &to(), Rcode::SERVFAIL, None),
            }
        }
        if let Some(blocklist) = &self.config.policy.blocklist
            && blocklist.check_lower_wire(&self.scratch_key.name) == Verdict::Blocked
        {
            self.stats.blocked += 1;
            let policy = &self.config.policy;
            return match write_blocked(
                &message,
                policy.block_mode,
                policy.block_ttl,
                self.config.udp_payload_size,
                out,
            ) {
                Ok(len) => QueryOutcome::Reply(len),
                Err(_) => QueryOutcome::Dropped,
            };
        }
        self.stats.cache_misses += 1;
        let mut qname = WireNameBuf::new();
        question.name.write_wire(&mut qname);
        let waiter = Waiter {
            client,
            id: header.id,
            flags: header.flags,
            qname,
            edns,
        };
        self.forward(waiter, stale_pending, now)
    }

    /// Start a prefetch of the key in `scratch_key`: an upstream query
    /// with no waiters. Skipped (not shed: nobody waits) when the
    /// in-flight table is full.
    fn prefetch(&mut self, now: Timestamp) {
        if self.by_key.len() < self.config.max_inflight
            && self.start_query(None, false, now).is_some()
        {
            self.stats.prefetches += 1;
        }
    }

    /// Stale was just served for the key in `scratch_key` because the
    /// client timer ran out: mark its outstanding query so later queries
    /// are answered stale too, or, with no query outstanding (a client
    /// timer of 0), start one in the background to refresh the entry.
    fn refresh_stale(&mut self, now: Timestamp) {
        if let Some(&slot) = self.by_key.get(&self.scratch_key) {
            if let Some(Some(inflight)) = self.slots.get_mut(slot as usize) {
                inflight.stale_served = true;
            }
        } else if self.by_key.len() < self.config.max_inflight
            && let Some(slot) = self.start_query(None, true, now)
            && let Some(Some(inflight)) = self.slots.get_mut(slot as usize)
        {
            inflight.stale_served = true;
        }
    }

    /// RFC 1035 / 6891 / 8906 admission rules for a parsed query.
    fn admit(message: &Message<'_>, question: Option<&Question<'_>>) -> Result<(), Refusal> {
        let flags = message.flags();
        if flags.opcode() != Opcode::QUERY {
            return Err(Refusal(Rcode::NOTIMP, Some(ede::NOT_SUPPORTED)));
        }
        if message.header().question_count != 1 {
            return Err(Refusal(Rcode::FORMERR, None));
        }
        if message.opt().is_some_and(|opt| opt.version() > 0) {
            return Err(Refusal(Rcode::BADVERS, None));
        }
        let Some(question) = question else {
            return Err(Refusal(Rcode::FORMERR, None));
        };
        match question.qtype {
            // Meta types that only make sense in another context.
            RecordType::OPT => Err(Refusal(Rcode::FORMERR, None)),
            RecordType::AXFR | RecordType::IXFR | RecordType::TSIG | RecordType::TKEY => {
                Err(Refusal(Rcode::REFUSED, Some(ede::NOT_SUPPORTED)))
            }
            _ if question.qclass != Class::IN => {
                Err(Refusal(Rcode::REFUSED, Some(ede::NOT_SUPPORTED)))
            }
            _ => Ok(()),
        }
    }

    /// A REFUSED reply from policy (ACL or rate limit), counted by the
    /// caller under its own counter rather than as a protocol refusal.
    fn write_policy_refusal(
        &self,
        out: &mut [u8],
        to: &ReplyTo<'_>,
        extended: Option<u16>,
    ) -> QueryOutcome {
        let len = write_error_reply(
            out,
            to,
            Rcode::REFUSED,
            extended.map(|code| (code, "")),
            self.config.udp_payload_size,
        );
        if len == 0 {
            QueryOutcome::Dropped
        } else {
            QueryOutcome::Reply(len)
        }
    }

    fn refuse(
        &mut self,
        out: &mut [u8],
        to: &ReplyTo<'_>,
        rcode: Rcode,
        extended: Option<(u16, &str)>,
    ) -> QueryOutcome {
        match rcode {
            Rcode::FORMERR => self.stats.formerr += 1,
            Rcode::NOTIMP => self.stats.notimp += 1,
            Rcode::REFUSED => self.stats.refused += 1,
            Rcode::BADVERS => self.stats.badvers += 1,
            _ => self.stats.servfail += 1,
        }
        let len = write_error_reply(out, to, rcode, extended, self.config.udp_payload_size);
        if len == 0 {
            QueryOutcome::Dropped
        } else {
            QueryOutcome::Reply(len)
        }
    }

    /// Join the outstanding query for the key in `scratch_key`, or start one.
    /// `stale`: the cache holds a stale entry for the key.
    fn forward(&mut self, waiter: Waiter, stale: bool, now: Timestamp) -> QueryOutcome {
        if self.total_waiters >= self.config.max_total_waiters {
            self.stats.dropped_overload += 1;
            return QueryOutcome::Dropped;
        }
        if let Some(&slot) = self.by_key.get(&self.scratch_key) {
            let max_waiters = self.config.max_waiters;
            if let Some(Some(inflight)) = self.slots.get_mut(slot as usize) {
                if inflight.waiters.len() >= max_waiters {
                    self.stats.dropped_overload += 1;
                    return QueryOutcome::Dropped;
                }
                inflight.waiters.push(waiter);
                self.total_waiters += 1;
                self.stats.coalesced += 1;
                // A prefetch that started while the entry was fresh learns
                // here that it has gone stale.
                if stale && !inflight.stale {
                    inflight.stale = true;
                    let (started_at, serial) = (inflight.started_at, inflight.serial);
                    self.arm_stale_timer(slot, serial, started_at);
                }
                return QueryOutcome::Pending;
            }
        }
        if self.by_key.len() >= self.config.max_inflight {
            self.stats.dropped_overload += 1;
            return QueryOutcome::Dropped;
        }
        match self.start_query(Some(waiter), stale, now) {
            Some(_) => QueryOutcome::Pending,
            None => QueryOutcome::Dropped,
        }
    }

    /// Start an upstream query for the key in `scratch_key`, with one
    /// waiter or none (a prefetch or background refresh); `stale`: the
    /// cache holds a stale entry for it. Returns the slot. The caller has
    /// checked the in-flight bound.
    fn start_query(&mut self, waiter: Option<Waiter>, stale: bool, now: Timestamp) -> Option<u32> {
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).ok()?
            }
        };
        let mut waiters = SmallVec::new();
        if let Some(waiter) = waiter {
            waiters.push(waiter);
            self.total_waiters += 1;
        }
        self.next_serial = self.next_serial.wrapping_add(1);
        let inflight = InFlight {
            key: self.scratch_key.clone(),
            waiters,
            serial: self.next_serial,
            started_at: now,
            stale,
            stale_served: false,
            store: true,
            upstream: 0,
            upstream_id: 0,
            tried: 0,
            attempts: 0,
            sent_at: now,
            generation: 0,
            tcp: false,
        };
        let serial = inflight.serial;
        self.by_key.insert(inflight.key.clone(), slot);
        if let Some(place) = self.slots.get_mut(slot as usize) {
            *place = Some(inflight);
        }
        if stale {
            self.arm_stale_timer(slot, serial, now);
        }
        self.send_attempt(slot, now);
        Some(slot)
    }

    /// Arm the serve-stale client timer of the query `serial` in `slot`,
    /// which started at `started_at`.
    fn arm_stale_timer(&mut self, slot: u32, serial: u32, started_at: Timestamp) {
        let deadline = started_at.add_millis(self.config.stale_client_timeout_ms);
        self.stale_timers.push(Reverse((deadline, slot, serial)));
    }

    /// A fresh upstream ID not used by any outstanding query.
    fn fresh_id(&mut self) -> u16 {
        loop {
            let id = (self.rng.next_u32() & 0xffff) as u16;
            if !self.by_id.contains_key(&id) {
                return id;
            }
        }
    }

    /// Start the next attempt of `slot`, or fail it when attempts are used
    /// up.
    fn send_attempt(&mut self, slot: u32, now: Timestamp) {
        let attempts_allowed = self.config.attempts.max(1);
        let Some(Some(inflight)) = self.slots.get(slot as usize) else {
            return;
        };
        if inflight.attempts >= attempts_allowed {
            self.fail(slot, Answer::Fail(ede::NO_REACHABLE_AUTHORITY), now);
            return;
        }
        let tried = inflight.tried;
        let Some(upstream) = self.upstreams.choose(tried, now.as_millis()) else {
            self.fail(slot, Answer::Fail(ede::NO_REACHABLE_AUTHORITY), now);
            return;
        };
        let tcp_only = self
            .upstreams
            .get(upstream)
            .is_some_and(|up| self.config.tcp_only.contains(&up.address()));
        if let Some(Some(inflight)) = self.slots.get_mut(slot as usize) {
            inflight.upstream = upstream;
            inflight.tried |= 1u64 << upstream;
            inflight.attempts += 1;
        }
        self.send(slot, tcp_only, now);
    }

    /// Ask the same upstream again over TCP, after a truncated UDP reply
    /// (RFC 7766 section 5). It does not use up an attempt: it finishes
    /// the one that was truncated, with a fresh ID and a fresh deadline.
    fn retry_over_tcp(&mut self, slot: u32, now: Timestamp) {
        self.send(slot, true, now);
    }

    /// Queue a send of `slot` to its current upstream, over TCP or UDP,
    /// with a fresh ID (replies to the previous one no longer match), a
    /// fresh generation and a fresh deadline.
    fn send(&mut self, slot: u32, tcp: bool, now: Timestamp) {
        let Some(Some(inflight)) = self.slots.get(slot as usize) else {
            return;
        };
        let old_id = inflight.upstream_id;
        if self.by_id.get(&old_id) == Some(&slot) {
            self.by_id.remove(&old_id);
        }
        // The ID map is bounded by the in-flight table (at most 65,536).
        let id = self.fresh_id();
        self.by_id.insert(id, slot);
        self.next_generation = self.next_generation.wrapping_add(1);
        let generation = self.next_generation;
        if let Some(Some(inflight)) = self.slots.get_mut(slot as usize) {
            inflight.upstream_id = id;
            inflight.sent_at = now;
            inflight.generation = generation;
            inflight.tcp = tcp;
        }
        if tcp {
            self.stats.upstream_tcp_queries += 1;
        }
        let deadline = now.add_millis(self.config.upstream_timeout_ms);
        self.deadlines.push(Reverse((deadline, slot, generation)));
        self.transmits.push_back((slot, generation));
        self.stats.upstream_queries += 1;
    }

    /// The next upstream query to send, written into `out`.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Transmit> {
        while let Some((slot, generation)) = self.transmits.pop_front() {
            let Some(Some(inflight)) = self.slots.get(slot as usize) else {
                continue;
            };
            if inflight.generation != generation {
                continue;
            }
            let Some(to) = self.upstreams.get(inflight.upstream).map(|up| up.address()) else {
                continue;
            };
            let Some(len) = write_upstream_query(out, inflight, self.config.udp_payload_size)
            else {
                continue;
            };
            return Some(Transmit {
                to,
                len,
                tcp: inflight.tcp,
            });
        }
        None
    }

    /// Handle a datagram that arrived on an upstream socket from `from`.
    pub fn handle_upstream_reply(&mut self, from: SocketAddr, packet: &[u8], now: Timestamp) {
        let Ok(message) = Message::parse(packet) else {
            self.stats.upstream_malformed += 1;
            return;
        };
        let Some(&slot) = self.by_id.get(&message.id()) else {
            self.stats.upstream_mismatched += 1;
            return;
        };
        let Some(Some(inflight)) = self.slots.get(slot as usize) else {
            self.stats.upstream_mismatched += 1;
            return;
        };
        let expected = self.upstreams.get(inflight.upstream).map(|up| up.address());
        let question_matches = message.header().question_count == 1
            && message.question().is_some_and(|question| {
                question.qtype == inflight.key.qtype
                    && question.qclass == inflight.key.qclass
                    && Name::from_wire(&inflight.key.name)
                        .is_ok_and(|name| name.eq_ignore_case(&question.name))
            });
        if expected != Some(from) || !message.flags().response() || !question_matches {
            // A spoofing attempt, or a late reply to an earlier attempt.
            self.stats.upstream_mismatched += 1;
            return;
        }
        let upstream = inflight.upstream;
        let rtt_us = now.as_millis().saturating_sub(inflight.sent_at.as_millis()) * 1000;
        if message.flags().truncated() {
            self.stats.upstream_truncated += 1;
            self.upstreams.on_truncated(upstream);
            if inflight.tcp {
                // TC over TCP makes no sense: move on as for an error.
                self.send_attempt(slot, now);
            } else {
                self.retry_over_tcp(slot, now);
            }
            return;
        }
        let rcode = message.rcode();
        if rcode != Rcode::NOERROR && rcode != Rcode::NXDOMAIN {
            self.upstreams.on_error(upstream);
            let attempts_left = inflight.attempts < self.config.attempts.max(1);
            if attempts_left {
                self.send_attempt(slot, now);
            } else if rcode == Rcode::SERVFAIL {
                self.fail(slot, Answer::Fail(ede::NO_REACHABLE_AUTHORITY), now);
            } else {
                self.fail(slot, Answer::Relay(packet.into()), now);
            }
            return;
        }
        self.upstreams.on_reply(upstream, rtt_us);
        let key = inflight.key.clone();
        let store = inflight.store;
        match Entry::from_response(&key, &message, now, &self.config.cache_policy) {
            Ok(Some(entry)) => {
                let stored = store && self.cache.insert(&key, entry.clone(), now).is_ok();
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
            Ok(None) | Err(_) => self.complete(slot, Answer::Relay(packet.into())),
        }
    }

    /// The upstream gave no usable answer for `slot` (`answer` says what
    /// the waiters get otherwise). When the cache still holds a usable
    /// entry for the key (stale, or fresh after a failed prefetch), the
    /// waiters get that instead, the entry is kept (not overwritten by the
    /// failure) and marked so the upstream is not asked again for
    /// `stale_refresh_retry_ms`. Otherwise a SERVFAIL is remembered
    /// briefly (RFC 9520) and `answer` goes out.
    fn fail(&mut self, slot: u32, answer: Answer, now: Timestamp) {
        let Some(Some(inflight)) = self.slots.get(slot as usize) else {
            return;
        };
        let key = &inflight.key;
        let waiting = !inflight.waiters.is_empty();
        // Cloning the entry allocates: only when someone will read it.
        let kept = match self.cache.peek_usable(key, now) {
            Lookup::Fresh(entry) if entry.kind() != EntryKind::ServFail => {
                Some(waiting.then(|| Answer::Entry(entry.clone())))
            }
            Lookup::Stale(entry) => Some(waiting.then(|| Answer::Stale(entry.clone()))),
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
    fn complete(&mut self, slot: u32, answer: Answer) {
        let Some(inflight) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.free_slots.push(slot);
        self.total_waiters = self.total_waiters.saturating_sub(inflight.waiters.len());
        self.by_key.remove(&inflight.key);
        if self.by_id.get(&inflight.upstream_id) == Some(&slot) {
            self.by_id.remove(&inflight.upstream_id);
        }
        if inflight.waiters.is_empty() {
            // A prefetch, or a query whose waiters were answered stale.
            return;
        }
        self.completions.push_back(Completion {
            answer,
            waiters: inflight.waiters,
            qtype: inflight.key.qtype,
            qclass: inflight.key.qclass,
        });
    }

    /// When the next deadline falls (an attempt's timeout, or a
    /// serve-stale client timer), if any query is outstanding.
    pub fn next_deadline(&mut self) -> Option<Timestamp> {
        let mut attempt = None;
        while let Some(Reverse((deadline, slot, generation))) = self.deadlines.peek().copied() {
            let live = matches!(self.slots.get(slot as usize), Some(Some(f)) if f.generation == generation);
            if live {
                attempt = Some(deadline);
                break;
            }
            self.deadlines.pop();
        }
        let mut stale = None;
        while let Some(Reverse((deadline, slot, serial))) = self.stale_timers.peek().copied() {
            let live = matches!(self.slots.get(slot as usize),
                Some(Some(f)) if f.serial == serial && !f.stale_served && !f.waiters.is_empty());
            if live {
                stale = Some(deadline);
                break;
            }
            self.stale_timers.pop();
        }
        match (attempt, stale) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handle every deadline that has passed by `now`: a timed-out
    /// attempt tries the next upstream or fails; a serve-stale client
    /// timer answers the waiters stale.
    pub fn handle_timeouts(&mut self, now: Timestamp) {
        while let Some(Reverse((deadline, slot, serial))) = self.stale_timers.peek().copied() {
            if deadline > now {
                break;
            }
            self.stale_timers.pop();
            self.serve_stale_waiters(slot, serial, now);
        }
        while let Some(Reverse((deadline, slot, generation))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let Some(Some(inflight)) = self.slots.get(slot as usize) else {
                continue;
            };
            if inflight.generation != generation {
                continue;
            }
            self.stats.upstream_timeouts += 1;
            self.upstreams.on_timeout(
                inflight.upstream,
                self.config.upstream_timeout_ms,
                now.as_millis(),
            );
            self.send_attempt(slot, now);
        }
    }

    /// The client timer of query `serial` in `slot` ran out: answer its
    /// waiters from the cache (stale) and let the query carry on. When the
    /// entry has meanwhile left its stale window, they keep waiting.
    fn serve_stale_waiters(&mut self, slot: u32, serial: u32, now: Timestamp) {
        let Some(Some(inflight)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if inflight.serial != serial || inflight.stale_served {
            return;
        }
        let answer = match self.cache.peek_usable(&inflight.key, now) {
            Lookup::Stale(entry) => Answer::Stale(entry.clone()),
            // A hint from another core may have refreshed it.
            Lookup::Fresh(entry) => Answer::Entry(entry.clone()),
            Lookup::Miss => return,
        };
        inflight.stale_served = true;
        let waiters = core::mem::take(&mut inflight.waiters);
        let (qtype, qclass) = (inflight.key.qtype, inflight.key.qclass);
        self.total_waiters = self.total_waiters.saturating_sub(waiters.len());
        if !waiters.is_empty() {
            self.completions.push_back(Completion {
                answer,
                waiters,
                qtype,
                qclass,
            });
        }
    }

    /// The next reply to a waiting client, written into `out`.
    pub fn poll_reply(&mut self, out: &mut [u8], now: Timestamp) -> Option<(ClientId, usize)> {
        loop {
            let completion = self.completions.front_mut()?;
            let Some(waiter) = completion.waiters.pop() else {
                self.completions.pop_front();
                continue;
            };
            let limit = match waiter.client.transport {
                Transport::Udp => udp_limit(waiter.edns, self.config.udp_payload_size),
                Transport::Tcp(_) => TCP_LIMIT,
            };
            let our_size = self.config.udp_payload_size;
            let written = match &completion.answer {
                Answer::Entry(entry) | Answer::Stale(entry) => {
                    let stale = matches!(completion.answer, Answer::Stale(_));
                    let request = AnswerRequest {
                        id: waiter.id,
                        flags: waiter.flags,
                        qname: &waiter.qname,
                        edns: waiter.edns,
                        our_udp_payload: our_size,
                        limit,
                        stale,
                    };
                    let len = entry.write_answer(out, &request, now).ok();
                    if stale && len.is_some() {
                        self.stats.stale_served += 1;
                    }
                    len.map(|len| (len, entry.rcode().0))
                }
                Answer::Relay(bytes) => write_relay(out, bytes, &waiter, limit, our_size),
                Answer::Fail(code) => {
                    self.stats.servfail += 1;
                    let name = Name::from_wire(&waiter.qname).ok();
                    let to = ReplyTo {
                        id: waiter.id,
                        flags: waiter.flags,
                        question: name.map(|name| (name, completion.qtype, completion.qclass)),
                        edns: waiter.edns,
                    };
                    let len =
                        write_error_reply(out, &to, Rcode::SERVFAIL, Some((*code, "")), our_size);
                    Some((len, Rcode::SERVFAIL.0))
                }
            };
            if let Some((len, rcode)) = written.filter(|&(len, _)| len > 0) {
                self.stats.count_response(rcode);
                return Some((waiter.client, len));
            }
        }
    }

    /// The next cache-fill hint for the other cores.
    pub fn poll_hint(&mut self) -> Option<Hint> {
        self.hints.pop_front()
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

    /// Operator flush: with `None`, every entry; with a name (uncompressed
    /// wire form, any case), the entries for it and every name below it.
    /// Returns how many entries were removed (0 for an invalid name).
    /// In-flight queries are not touched. Walks the whole shard.
    pub fn flush_cache(&mut self, name_wire: Option<&[u8]>) -> usize {
        match name_wire {
            None => {
                let removed = self.cache.len();
                self.cache.clear();
                removed
            }
            Some(name) => self.cache.remove_subtree(name).unwrap_or(0),
        }
    }

    /// Hot reload: take `config` in place of the current settings, keeping
    /// the cache, the in-flight queries and what was learned about
    /// upstreams that stay. Validated first: on error nothing changes.
    ///
    /// Replaced: the policy (ACL, rate limiter — its buckets are kept when
    /// its settings did not change —, local data, blocklist, block mode
    /// and TTL), the upstream list and strategy, timeouts, attempts,
    /// serve-stale and prefetch settings, the cache policy and capacity
    /// (evicting down when smaller). In-flight queries keep their
    /// upstream by address; one whose upstream was removed times out and
    /// moves on to its next attempt.
    ///
    /// The cache is consulted before local data and the blocklist, so the
    /// entries the new policy answers differently are purged: every entry
    /// whose name the new blocklist blocks, and, when the local data
    /// changed (another snapshot), every entry at or below a name of the
    /// old or the new local data. In-flight queries for such names still
    /// answer their waiters but are not cached.
    ///
    /// `_now` is the time of the reload; nothing in it depends on time
    /// yet, but callers pass it so that can change without a new API.
    pub fn reconfigure(
        &mut self,
        config: ResolverConfig,
        _now: Timestamp,
    ) -> Result<ReconfigureReport, ResolverError> {
        // Everything that can fail comes before the first change.
        config.validate()?;
        let keep_limiter = config.policy.rate_limit.is_some()
            && config.policy.rate_limit == self.config.policy.rate_limit;
        let new_limiter = match &config.policy.rate_limit {
            Some((limits, cores)) if !keep_limiter => Some(RateLimiter::new(limits, *cores)?),
            _ => None,
        };
        self.cache.set_policy(config.cache_policy)?;

        if !keep_limiter {
            self.rate_limiter = new_limiter;
        }
        self.cache.set_capacity(config.cache_bytes);
        let moved = self
            .upstreams
            .reconfigure(&config.upstreams, config.strategy);
        let remap = |index: usize| moved.get(index).copied().flatten();

        let local_changed = match (&self.config.policy.local, &config.policy.local) {
            (Some(old), Some(new)) => !Arc::ptr_eq(old, new),
            (None, None) => false,
            _ => true,
        };
        // Bounded by the size of the local data, built once per reload. A
        // set, because every cached name is checked against it: each of a
        // name's suffixes is one lookup, so the purge costs entries x labels
        // rather than entries x local names.
        let mut local_names: HashSet<&[u8]> = HashSet::new();
        if local_changed {
            for data in [&self.config.policy.local, &config.policy.local]
                .into_iter()
                .flatten()
            {
                local_names.extend(data.names());
            }
        }
        let blocklist = config.policy.blocklist.as_deref();
        let answered_by_policy = |name: &[u8]| {
            blocklist.is_some_and(|list| list.check_lower_wire(name) == Verdict::Blocked)
                || (!local_names.is_empty()
                    && wire_suffixes(name).any(|suffix| local_names.contains(suffix)))
        };
        let purged = if blocklist.is_none() && local_names.is_empty() {
            0
        } else {
            self.cache
                .retain(|entry| !answered_by_policy(entry.question_name()))
        };
        for inflight in self.slots.iter_mut().flatten() {
            inflight.upstream = remap(inflight.upstream).unwrap_or(GONE);
            inflight.tried = (0..MAX_UPSTREAMS)
                .filter(|&old| inflight.tried & (1u64 << old) != 0)
                .filter_map(remap)
                .fold(0u64, |mask, new| mask | (1u64 << new));
            if answered_by_policy(&inflight.key.name) {
                inflight.store = false;
            }
        }
        // Hints this core produced under the old policy and not yet sent.
        self.hints
            .retain(|hint| !answered_by_policy(&hint.key.name));
        drop(local_names);
        self.config = config;
        Ok(ReconfigureReport { purged })
    }
}

/// Write a hit from `entry` for `request`; when the client's qname at
/// offset 12 was compressed (so not whole there), copy it out and retry.
fn write_hit(
    entry: &Entry,
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
fn wants_prefetch(config: &ResolverConfig, entry: &Entry, info: SlotInfo, now: Timestamp) -> bool {
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

/// `name` and each of its ancestors, down to the root, as wire-name
/// suffixes of `name` (a valid uncompressed wire name).
fn wire_suffixes(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = Some(0usize);
    core::iter::from_fn(move || {
        let start = pos?;
        let rest = name.get(start..)?;
        // Each step moves past one label, so this ends within 128 steps.
        pos = match rest.first() {
            Some(&len) if len != 0 => Some(start + 1 + usize::from(len)),
            _ => None,
        };
        Some(rest)
    })
}

/// The upstream query for an in-flight entry: random ID, RD, the key's CD,
/// the lower-cased question, and EDNS with our size and the key's DO.
fn write_upstream_query(out: &mut [u8], inflight: &InFlight, our_size: u16) -> Option<usize> {
    let key = &inflight.key;
    let name = Name::from_wire(&key.name).ok()?;
    let mut builder = MessageBuilder::new(out).ok()?;
    builder.set_id(inflight.upstream_id);
    builder.set_flags(
        Flags::default()
            .with_recursion_desired(true)
            .with_checking_disabled(key.checking_disabled),
    );
    builder.question(&name, key.qtype, key.qclass).ok()?;
    let opt = OptSpec {
        udp_payload_size: our_size,
        extended_rcode: 0,
        version: 0,
        dnssec_ok: key.dnssec_ok,
        options: &[],
    };
    builder.opt(&opt).ok()?;
    Some(builder.finish())
}

/// Pass an uncacheable upstream reply to one waiter: its ID, flags and
/// letter case, its size limit (truncating at RRsets), its EDNS.
fn write_relay(
    out: &mut [u8],
    upstream_reply: &[u8],
    waiter: &Waiter,
    limit: usize,
    our_size: u16,
) -> Option<(usize, u16)> {
    let message = Message::parse(upstream_reply).ok()?;
    let question = message.question()?;
    let rcode = message.rcode();
    let mut builder = MessageBuilder::new(out).ok()?;
    builder.set_limit(limit);
    builder.set_id(waiter.id);
    let wants_ad = waiter.flags.authentic_data() || waiter.edns.is_some_and(|e| e.dnssec_ok);
    builder.set_flags(
        reply_flags(waiter.flags, rcode)
            .with_authentic_data(wants_ad && message.flags().authentic_data()),
    );
    let opt = waiter.edns.map(|edns| OptSpec {
        udp_payload_size: our_size,
        extended_rcode: rcode.extended_bits(),
        version: 0,
        dnssec_ok: edns.dnssec_ok,
        options: &[],
    });
    if let Some(opt) = &opt {
        builder.reserve(opt.wire_len());
    }
    let qname = Name::from_wire(&waiter.qname).ok()?;
    builder
        .question(&qname, question.qtype, question.qclass)
        .ok()?;
    'sections: for section in [Section::Answer, Section::Authority, Section::Additional] {
        for record in message.records(section) {
            if record.rtype() == RecordType::OPT {
                continue;
            }
            if builder.copy_record(section, &record).is_err() {
                break 'sections;
            }
        }
    }
    if let Some(opt) = &opt {
        let _ = builder.opt(opt);
    }
    let len = builder.finish();
    (len > HEADER_LEN).then_some((len, rcode.0))
}
