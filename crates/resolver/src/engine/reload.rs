//! Operator actions on a live engine: [`Resolver::flush_cache`] and the
//! hot reload [`Resolver::reconfigure`], which keeps the cache, the
//! in-flight queries and what was learned about upstreams, but purges
//! what the new policy would answer differently.

use std::sync::Arc;

use hashbrown::HashSet;
use heimdall_cache::Timestamp;
use heimdall_policy::{RateLimiter, Verdict};

use super::Resolver;
use crate::config::{ResolverConfig, ResolverError};
use crate::inflight::GONE;
use crate::upstreams::MAX_UPSTREAMS;

/// What a [`Resolver::reconfigure`] did beyond taking the new settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconfigureReport {
    /// Cache entries removed because the new policy (blocklist, local
    /// data) would answer their names differently, or, when the DNSSEC
    /// settings changed, every entry (each carries its verdict).
    pub purged: usize,
}

impl Resolver {
    /// Operator flush: with `None`, every entry; with a name (uncompressed
    /// wire form, any case), the entries for it and every name below it.
    /// Returns how many entries were removed (0 for an invalid name).
    /// In-flight queries are not touched. Walks the whole shard.
    pub fn flush_cache(&mut self, name_wire: Option<&[u8]>) -> usize {
        // Validated keys are re-read from the cache when next needed.
        self.validated_keys.clear();
        self.nsec_cache.clear();
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
    /// and TTL, the server cookie secret and rotation, and the cookie
    /// requirement's buckets unless its settings are unchanged), the upstream list and strategy, timeouts, attempts,
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
        let cookie_settings = |c: &ResolverConfig| {
            c.policy
                .cookies
                .as_ref()
                .and_then(|cookies| cookies.udp_require)
        };
        let keep_cookie_limiter = cookie_settings(&config).is_some()
            && cookie_settings(&config) == cookie_settings(&self.config);
        let new_cookie_limiter = if keep_cookie_limiter {
            None
        } else {
            super::cookie_limiter(&config)?
        };
        self.cache.set_policy(config.cache_policy)?;

        if !keep_limiter {
            self.rate_limiter = new_limiter;
        }
        if !keep_cookie_limiter {
            self.cookie_limiter = new_cookie_limiter;
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
        // What was stored under other DNSSEC settings carries another
        // verdict (AD passed through, or judged against other anchors).
        let (old_dnssec, new_dnssec) = (&self.config.dnssec, &config.dnssec);
        let dnssec_changed = old_dnssec.mode != new_dnssec.mode
            || old_dnssec.anchors != new_dnssec.anchors
            || old_dnssec.negative_anchors != new_dnssec.negative_anchors
            || old_dnssec.validator != new_dnssec.validator;
        let purged = if dnssec_changed {
            let removed = self.cache.len();
            self.cache.clear();
            self.validated_keys.clear();
            self.nsec_cache.clear();
            removed
        } else if blocklist.is_none() && local_names.is_empty() {
            0
        } else {
            self.cache
                .retain(|entry| !answered_by_policy(entry.question_name()))
        };
        for inflight in self.inflight.iter_mut() {
            inflight.attempt.upstream = remap(inflight.attempt.upstream).unwrap_or(GONE);
            // Earlier attempts still accept late replies: from the same
            // address under its new index, or from nowhere once it is gone.
            for earlier in &mut inflight.earlier {
                earlier.upstream = remap(earlier.upstream).unwrap_or(GONE);
            }
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
