//! [`RateLimiter`]: one core's token buckets, one per client prefix.
//!
//! Clients are grouped by prefix (IPv4 /24 and IPv6 /56 by default;
//! IPv4-mapped IPv6 clients count as IPv4). Each prefix has a token
//! bucket: it starts full with `burst` tokens, refills at `rate_per_sec`,
//! and each query takes one token; a query that finds less than one token
//! is limited and gets the configured [`RateLimitAction`].
//!
//! Per core: the server runs one limiter per core and a client's queries
//! may land on any core (SO_REUSEPORT spreads them by flow hash), so
//! [`RateLimiter::new`] takes the core count and gives each core
//! `rate_per_sec / cores` and `burst / cores` (at least one token of
//! burst). The limit is exact for a client spread evenly over the cores
//! and at most `cores` times too strict for a client pinned to one core.
//!
//! Tokens are counted in millionths, so fractional per-core rates work.
//! The table is bounded by `capacity` prefixes; when it is full, a new
//! prefix replaces one chosen by a CLOCK (second-chance) sweep: a prefix
//! seen again since the hand last passed survives one more round. This is
//! O(1) amortized, and the hash table is sized at twice the capacity up
//! front, so checks never allocate. An evicted prefix that comes back
//! starts with a full bucket.

use std::hash::BuildHasher;
use std::net::IpAddr;

use hashbrown::{DefaultHashBuilder, HashTable};
use heimdall_cache::Timestamp;

use crate::acl::{address_bits, is_ipv4_bits, mask};
use crate::error::PolicyError;

/// One token in the bucket's units.
const TOKEN: u64 = 1_000_000;

/// What a limited query gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitAction {
    /// Send nothing.
    #[default]
    Drop,
    /// Answer REFUSED.
    Refused,
    /// Answer with an empty, truncated (TC=1) reply, so a real client
    /// retries over TCP, which a spoofed source cannot do.
    Truncate,
}

/// The limiter's decision for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Serve the query.
    Allow,
    /// Over the limit: apply the action.
    Limit(RateLimitAction),
}

/// Rate limit settings, for the whole server (see [`RateLimiter::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Queries per second per prefix, over all cores (0: none after the
    /// burst).
    pub rate_per_sec: u32,
    /// Bucket size per prefix, over all cores.
    pub burst: u32,
    /// Prefix length grouping IPv4 clients (0..=32).
    pub ipv4_prefix: u8,
    /// Prefix length grouping IPv6 clients (0..=128).
    pub ipv6_prefix: u8,
    /// Most prefixes tracked per core (at least 1).
    pub capacity: usize,
    /// What limited queries get.
    pub action: RateLimitAction,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 200,
            burst: 400,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            capacity: 65_536,
            action: RateLimitAction::Drop,
        }
    }
}

/// Counts of every decision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitStats {
    /// Queries allowed.
    pub allowed: u64,
    /// Limited queries dropped.
    pub dropped: u64,
    /// Limited queries refused.
    pub refused: u64,
    /// Limited queries answered truncated.
    pub truncated: u64,
    /// Prefixes evicted from a full table.
    pub evicted: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    prefix: u128,
    tokens: u64,
    last_ms: u64,
    referenced: bool,
}

/// One core's rate limiter. Not shared: each core owns one.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Vec<Bucket>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    hand: usize,
    capacity: usize,
    refill_per_ms: u64,
    burst: u64,
    ipv4_mask: u128,
    ipv6_mask: u128,
    action: RateLimitAction,
    stats: RateLimitStats,
}

impl RateLimiter {
    /// One core's limiter out of `cores`: the configured rate and burst
    /// are divided by `cores` (see the module documentation).
    pub fn new(config: &RateLimitConfig, cores: usize) -> Result<Self, PolicyError> {
        if cores == 0 {
            return Err(PolicyError::BadRateLimit("the core count must be positive"));
        }
        if config.capacity == 0 || u32::try_from(config.capacity).is_err() {
            return Err(PolicyError::BadRateLimit("capacity must be 1..=2^32-1"));
        }
        if config.ipv4_prefix > 32 || config.ipv6_prefix > 128 {
            return Err(PolicyError::BadRateLimit("prefix length out of range"));
        }
        let cores = cores as u64;
        // Tokens per millisecond, in millionths: rate * 10^6 / 1000 / cores.
        let refill_per_ms = u64::from(config.rate_per_sec) * 1000 / cores;
        let burst = (u64::from(config.burst) * TOKEN / cores).max(TOKEN);
        Ok(Self {
            buckets: Vec::with_capacity(config.capacity),
            index: HashTable::with_capacity(config.capacity.saturating_mul(2)),
            hasher: DefaultHashBuilder::default(),
            hand: 0,
            capacity: config.capacity,
            refill_per_ms,
            burst,
            ipv4_mask: mask(96 + config.ipv4_prefix),
            ipv6_mask: mask(config.ipv6_prefix),
            action: config.action,
            stats: RateLimitStats::default(),
        })
    }

    /// The prefix `client` is counted under (128-bit form).
    fn prefix(&self, client: IpAddr) -> u128 {
        let bits = address_bits(client);
        if is_ipv4_bits(bits) {
            bits & self.ipv4_mask
        } else {
            bits & self.ipv6_mask
        }
    }

    /// Take one token from `client`'s prefix at `now`. Never allocates.
    pub fn check(&mut self, client: IpAddr, now: Timestamp) -> RateDecision {
        let prefix = self.prefix(client);
        let now = now.as_millis();
        let hash = self.hasher.hash_one(prefix);
        let buckets = &self.buckets;
        let found = self
            .index
            .find(hash, |&slot| {
                buckets
                    .get(slot as usize)
                    .is_some_and(|bucket| bucket.prefix == prefix)
            })
            .copied();
        let slot = match found {
            Some(slot) => {
                let (refill_per_ms, burst) = (self.refill_per_ms, self.burst);
                if let Some(bucket) = self.buckets.get_mut(slot as usize) {
                    let elapsed = now.saturating_sub(bucket.last_ms);
                    bucket.tokens = bucket
                        .tokens
                        .saturating_add(elapsed.saturating_mul(refill_per_ms))
                        .min(burst);
                    bucket.last_ms = bucket.last_ms.max(now);
                    bucket.referenced = true;
                }
                slot as usize
            }
            None => self.insert(prefix, hash, now),
        };
        let allowed = match self.buckets.get_mut(slot) {
            Some(bucket) if bucket.tokens >= TOKEN => {
                bucket.tokens -= TOKEN;
                true
            }
            _ => false,
        };
        if allowed {
            self.stats.allowed += 1;
            return RateDecision::Allow;
        }
        match self.action {
            RateLimitAction::Drop => self.stats.dropped += 1,
            RateLimitAction::Refused => self.stats.refused += 1,
            RateLimitAction::Truncate => self.stats.truncated += 1,
        }
        RateDecision::Limit(self.action)
    }

    /// Add a full bucket for `prefix`, evicting one when the table is full;
    /// returns its slot.
    fn insert(&mut self, prefix: u128, hash: u64, now: u64) -> usize {
        let fresh = Bucket {
            prefix,
            tokens: self.burst,
            last_ms: now,
            referenced: false,
        };
        let slot = if self.buckets.len() < self.capacity {
            self.buckets.push(fresh);
            self.buckets.len() - 1
        } else {
            let victim = self.sweep();
            if let Some(bucket) = self.buckets.get_mut(victim) {
                let old_hash = self.hasher.hash_one(bucket.prefix);
                if let Ok(entry) = self
                    .index
                    .find_entry(old_hash, |&slot| slot as usize == victim)
                {
                    entry.remove();
                }
                *bucket = fresh;
            }
            self.stats.evicted += 1;
            victim
        };
        let (buckets, hasher) = (&self.buckets, &self.hasher);
        // `slot` < capacity <= u32::MAX, checked by `new`.
        self.index.insert_unique(hash, slot as u32, |&slot| {
            buckets
                .get(slot as usize)
                .map_or(0, |bucket| hasher.hash_one(bucket.prefix))
        });
        slot
    }

    /// Advance the CLOCK hand to a bucket not referenced since its last
    /// pass, clearing reference bits on the way; at most two rounds.
    fn sweep(&mut self) -> usize {
        let len = self.buckets.len();
        for _ in 0..=2 * len {
            let at = self.hand;
            self.hand = (self.hand + 1) % len.max(1);
            match self.buckets.get_mut(at) {
                Some(bucket) if bucket.referenced => bucket.referenced = false,
                _ => return at,
            }
        }
        self.hand
    }

    /// Prefixes tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no prefix is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Counts of every decision so far.
    pub fn stats(&self) -> RateLimitStats {
        self.stats
    }
}
