//! heimdall-policy: sans-IO query policy, decided before the cache.
//!
//! Nothing here reads a clock or touches a socket; time is a
//! [`Timestamp`](heimdall_cache::Timestamp) handed in by the caller.
//!
//! - [`Blocklist`]: an immutable set of blocked (and allowed) domains,
//!   built once by [`BlocklistBuilder`] from hosts files, plain domain lists
//!   and adblock-style `||domain^` rules, then shared read-only by every
//!   core behind one `Arc`. An entry blocks the name and all its
//!   subdomains; an allowlist entry overrides. Lookups never allocate.
//! - [`write_blocked`], [`write_refused`], [`write_truncated`]: the replies
//!   policy sends instead of an answer, written into a caller buffer.
//! - [`Acl`]: which clients may use the resolver (CIDR allow and deny
//!   lists plus private-network defaults).
//! - [`RateLimiter`]: one core's token buckets per client prefix.
//! - [`ServerCookies`]: the server cookies answered to clients (RFC 7873
//!   in the RFC 9018 format), with a secret rotated per period and derived
//!   from one master, so every core computes the same one.

mod acl;
mod cookie;
mod domains;
mod error;
mod lists;
mod ratelimit;
mod reply;

pub use acl::{Acl, AclAction, AclBuilder, AclDecision, Cidr, DEFAULT_ALLOWED};
pub use cookie::{
    COOKIE_VERSION, CookieVerdict, MAX_AGE_SECS, MAX_AHEAD_SECS, SECRET_LEN, SecretCache,
    ServerCookies, parse_secret, rfc9018_cookie, rfc9018_hash_matches,
};
pub use domains::{DomainSet, name_hash};
pub use error::PolicyError;
pub use lists::{Blocklist, BlocklistBuilder, ListFormat, ListStats, Verdict};
pub use ratelimit::{RateDecision, RateLimitAction, RateLimitConfig, RateLimitStats, RateLimiter};
pub use reply::{BlockMode, write_blocked, write_refused, write_truncated};

#[cfg(test)]
mod tests;
