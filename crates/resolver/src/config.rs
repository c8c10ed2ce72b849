//! The settings of one resolver ([`ResolverConfig`], [`PolicyConfig`]),
//! the check that refuses bad ones ([`ResolverConfig::validate`]) and the
//! error saying why ([`ResolverError`]).
//!
//! Defaults that the configuration file also has come from
//! [`heimdall_config::defaults`], so each exists once; the ones below
//! without a config key (queue and table bounds, the serve-stale failure
//! recheck timer) are the engine's own.

use core::time::Duration;
use std::sync::Arc;

use heimdall_cache::{CacheError, CachePolicy};
use heimdall_config::{DnssecMode, Upstream, UpstreamStrategy, defaults};
use heimdall_dnssec::TrustAnchors;
use heimdall_policy::{Acl, BlockMode, Blocklist, PolicyError, RateLimitConfig, ServerCookies};
use heimdall_wire::NameBuf;
use heimdall_zone::LocalData;

use crate::upstreams::MAX_UPSTREAMS;

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
    /// The operating system gave no randomness to seed the upstream ID
    /// generator with.
    #[error("no randomness from the operating system to seed upstream query IDs")]
    NoEntropy,
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
    /// DNS cookies toward clients (RFC 7873, RFC 9018); `None` ignores
    /// them: no COOKIE option is read or answered.
    pub cookies: Option<CookiePolicy>,
}

/// Server cookies toward clients: how they are made, the wall-clock time
/// they need, and when a UDP client must present one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookiePolicy {
    /// The master secret and rotation period, the same on every core.
    pub cookies: ServerCookies,
    /// Unix time, in milliseconds, of the engine's `Timestamp::ZERO`. The
    /// runtime reads the wall clock once and hands it in (cookie
    /// timestamps are Unix seconds); the engine never reads a clock.
    pub unix_epoch_ms: u64,
    /// Queries per second per client prefix allowed over UDP without a
    /// valid server cookie (limiter settings for the whole server and the
    /// core count, as `PolicyConfig::rate_limit`); above it, BADCOOKIE or
    /// TC. `None` never requires a cookie.
    pub udp_require: Option<(RateLimitConfig, usize)>,
}

impl CookiePolicy {
    /// Unix time in whole seconds at `now`.
    pub fn unix_secs(&self, now: heimdall_cache::Timestamp) -> u64 {
        self.unix_epoch_ms.saturating_add(now.as_millis()) / 1000
    }
}

/// DNSSEC validation (module `validation`): the mode, where chains of
/// trust start, and the wall-clock time signatures are judged against.
#[derive(Debug, Clone)]
pub struct DnssecConfig {
    /// `validate`, `permissive` or `off`.
    pub mode: DnssecMode,
    /// Trust anchors: the built-in root KSKs plus the configured files,
    /// shared read-only by every core.
    pub anchors: Arc<TrustAnchors>,
    /// Zones treated as insecure (RFC 7646), lower-cased.
    pub negative_anchors: Vec<NameBuf>,
    /// Clock skew and the NSEC3 iteration limit.
    pub validator: heimdall_dnssec::Config,
    /// Unix time, in milliseconds, of the engine's `Timestamp::ZERO`.
    /// Signature windows are absolute times, but the engine only knows
    /// the monotonic `now`; the runtime reads the wall clock once (at
    /// start and at every reload) and hands it in, so the engine never
    /// reads a clock and a stepped wall clock cannot make `now` go back.
    pub unix_epoch_ms: u64,
    /// Most DNSKEY and DS sub-queries one client query may start before
    /// it fails (SERVFAIL, counted as indeterminate): bounds the work a
    /// random-subdomain flood of a signed zone can cause.
    pub max_subqueries: u8,
    /// Aggressive use of the DNSSEC-validated cache (RFC 8198, module
    /// `aggressive`): answer NXDOMAIN and NODATA from remembered
    /// validated NSEC records without asking upstream.
    pub aggressive_nsec: bool,
}

impl Default for DnssecConfig {
    fn default() -> Self {
        Self {
            mode: DnssecMode::default(),
            anchors: Arc::new(TrustAnchors::root()),
            negative_anchors: Vec::new(),
            validator: heimdall_dnssec::Config {
                clock_skew: u32::try_from(defaults::DNSSEC_CLOCK_SKEW.as_secs())
                    .unwrap_or(u32::MAX),
                nsec3_max_iterations: defaults::DNSSEC_NSEC3_MAX_ITERATIONS,
            },
            unix_epoch_ms: 0,
            max_subqueries: 16,
            aggressive_nsec: defaults::DNSSEC_AGGRESSIVE_NSEC,
        }
    }
}

impl DnssecConfig {
    /// No validation (`dnssec.mode: off`), the other settings default:
    /// for a resolver whose upstreams do not pass DNSSEC records on (the
    /// tests' synthetic upstreams serve unsigned names under the real
    /// root, which validation with the built-in root anchor rightly finds
    /// bogus).
    pub fn off() -> Self {
        Self {
            mode: DnssecMode::Off,
            ..Self::default()
        }
    }

    /// Whether answers are validated at all.
    pub fn validates(&self) -> bool {
        self.mode != DnssecMode::Off
    }

    /// Unix time in whole seconds at `now`.
    pub fn unix_secs(&self, now: heimdall_cache::Timestamp) -> u64 {
        self.unix_epoch_ms.saturating_add(now.as_millis()) / 1000
    }
}

/// Settings of one resolver (one core).
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Upstream servers, in configured order, each with the transport
    /// that reaches it (a `tcp` upstream is never asked over UDP; a `udp`
    /// one is asked over TCP only after a truncated reply).
    pub upstreams: Vec<Upstream>,
    /// How the next upstream is chosen.
    pub strategy: UpstreamStrategy,
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
    /// DNS 0x20: random letter case in upstream questions, echoed exactly
    /// in accepted replies (module `case`).
    pub case_randomization: bool,
    /// DNS cookies toward upstreams (RFC 7873, module `upstream_cookie`):
    /// every query carries our client cookie, and a reply must echo it.
    pub cookies: bool,
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
    /// DNSSEC validation.
    pub dnssec: DnssecConfig,
}

/// `duration` in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            strategy: UpstreamStrategy::default(),
            upstream_timeout_ms: millis(defaults::UPSTREAM_TIMEOUT),
            attempts: defaults::UPSTREAM_ATTEMPTS,
            udp_payload_size: heimdall_cache::DEFAULT_UDP_PAYLOAD,
            cache_bytes: defaults::SHARD_SIZE,
            // The cache crate's own default (no serve-stale), not the
            // config file's: a resolver built without a config keeps
            // stale data only when asked to.
            cache_policy: CachePolicy::default(),
            max_inflight: 4096,
            max_waiters: 256,
            max_total_waiters: 16_384,
            hints: defaults::HINTS_ENABLED,
            case_randomization: defaults::UPSTREAM_QNAME_CASE_RANDOMIZATION,
            cookies: defaults::UPSTREAM_COOKIES,
            max_queued_hints: 1024,
            policy: PolicyConfig::default(),
            stale_client_timeout_ms: millis(defaults::STALE_CLIENT_TIMEOUT),
            // RFC 8767 section 5 suggests 30 s; there is no config key.
            stale_refresh_retry_ms: 30_000,
            prefetch_threshold_percent: defaults::PREFETCH_THRESHOLD,
            prefetch_min_hits: defaults::PREFETCH_MIN_HITS,
            dnssec: DnssecConfig::default(),
        }
    }
}

impl ResolverConfig {
    /// How long an upstream query may stay outstanding, for planning (a
    /// drain at shutdown): `attempts` attempts of at most
    /// [`TIMEOUT_CEILING_FACTOR`] x `upstream_timeout_ms` each (the
    /// adaptive timeout of a slow upstream), plus one more such timeout
    /// for a retry that uses up no attempt (TCP after TC, or lower case
    /// after a 0x20 mismatch). Only a query retried that way more than
    /// once can outlive it, so a drain should still answer what is left
    /// when it ends.
    ///
    /// [`TIMEOUT_CEILING_FACTOR`]: crate::upstreams::TIMEOUT_CEILING_FACTOR
    pub fn max_query_lifetime_ms(&self) -> u64 {
        let per_attempt = self
            .upstream_timeout_ms
            .saturating_mul(crate::upstreams::TIMEOUT_CEILING_FACTOR);
        per_attempt.saturating_mul(u64::from(self.attempts.max(1)) + 1)
    }

    /// Check every setting that [`Resolver::new`] and
    /// [`Resolver::reconfigure`] would refuse, without building anything.
    ///
    /// [`Resolver::new`]: crate::Resolver::new
    /// [`Resolver::reconfigure`]: crate::Resolver::reconfigure
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults now come from the config crate; they must still be
    /// the values the engine had when it stated them itself.
    #[test]
    fn defaults_keep_their_values() {
        let config = ResolverConfig::default();
        assert_eq!(config.strategy, UpstreamStrategy::Ordered);
        assert_eq!((config.upstream_timeout_ms, config.attempts), (800, 3));
        assert_eq!(config.max_query_lifetime_ms(), 4 * 3 * 800);
        assert_eq!(config.cache_bytes, 64 << 20);
        assert_eq!(config.cache_policy, CachePolicy::default());
        assert!(config.hints);
        assert_eq!(config.stale_client_timeout_ms, 1_800);
        assert_eq!(config.stale_refresh_retry_ms, 30_000);
        assert_eq!(
            (config.prefetch_threshold_percent, config.prefetch_min_hits),
            (10, 3)
        );
        assert_eq!(
            (
                config.max_inflight,
                config.max_waiters,
                config.max_total_waiters
            ),
            (4096, 256, 16_384)
        );
        assert_eq!(config.max_queued_hints, 1024);
    }
}
