//! How long things may live in the cache: [`CachePolicy`].
//!
//! One policy value is shared by entry construction (TTL clamping, negative
//! and failure TTLs) and by the shard (the stale window), so the operator's
//! settings are applied in exactly one place each.

use crate::error::CacheError;

/// Shortest failure TTL allowed (RFC 9520 section 3.2: at least 1 second).
pub const MIN_FAILURE_TTL: u32 = 1;
/// Longest failure TTL allowed: a failure is remembered only briefly, so a
/// recovered upstream is retried within seconds.
pub const MAX_FAILURE_TTL: u32 = 5;

/// TTL limits and the stale window, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Every positive record's TTL is raised to at least this.
    pub min_ttl: u32,
    /// Every positive record's TTL is lowered to at most this.
    pub max_ttl: u32,
    /// Cap on the RFC 2308 negative TTL of NXDOMAIN and NODATA answers
    /// (0 turns negative caching off).
    pub negative_max_ttl: u32,
    /// How long a SERVFAIL or upstream timeout is remembered
    /// ([`MIN_FAILURE_TTL`]..=[`MAX_FAILURE_TTL`]).
    pub failure_ttl: u32,
    /// How many seconds past expiry an entry may still be served as stale
    /// (RFC 8767); 0 disables serve-stale.
    pub stale_window: u32,
}

impl Default for CachePolicy {
    /// One day at most, an hour for negative answers (RFC 2308 section 5
    /// finds one to three hours work well), failures for 5 seconds, no
    /// serve-stale.
    fn default() -> Self {
        Self {
            min_ttl: 0,
            max_ttl: 86_400,
            negative_max_ttl: 3_600,
            failure_ttl: MAX_FAILURE_TTL,
            stale_window: 0,
        }
    }
}

impl CachePolicy {
    /// Check every value; a policy that passes cannot make the cache store
    /// something it should not.
    pub fn validate(&self) -> Result<(), CacheError> {
        if self.max_ttl == 0 {
            return Err(CacheError::InvalidPolicy("max_ttl must be at least 1"));
        }
        if self.min_ttl > self.max_ttl {
            return Err(CacheError::InvalidPolicy("min_ttl is above max_ttl"));
        }
        if !(MIN_FAILURE_TTL..=MAX_FAILURE_TTL).contains(&self.failure_ttl) {
            return Err(CacheError::InvalidPolicy(
                "failure_ttl must be 1 to 5 seconds (RFC 9520)",
            ));
        }
        Ok(())
    }

    /// Clamp a positive record's TTL into `[min_ttl, max_ttl]`.
    pub fn clamp_positive(&self, ttl: u32) -> u32 {
        ttl.max(self.min_ttl).min(self.max_ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_refused() {
        assert_eq!(CachePolicy::default().validate(), Ok(()));
        let bad = [
            CachePolicy {
                min_ttl: 10,
                max_ttl: 5,
                ..CachePolicy::default()
            },
            CachePolicy {
                max_ttl: 0,
                ..CachePolicy::default()
            },
            CachePolicy {
                failure_ttl: 0,
                ..CachePolicy::default()
            },
            CachePolicy {
                failure_ttl: 6,
                ..CachePolicy::default()
            },
        ];
        for policy in bad {
            assert!(matches!(
                policy.validate(),
                Err(CacheError::InvalidPolicy(_))
            ));
        }
    }

    #[test]
    fn clamping() {
        let policy = CachePolicy {
            min_ttl: 30,
            max_ttl: 600,
            ..CachePolicy::default()
        };
        assert_eq!(policy.clamp_positive(1), 30);
        assert_eq!(policy.clamp_positive(300), 300);
        assert_eq!(policy.clamp_positive(u32::MAX), 600);
    }
}
