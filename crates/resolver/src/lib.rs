//! heimdall-resolver: the sans-IO forwarding engine. A query and the time
//! go in; replies, upstream sends and deadlines come out. It never reads a
//! clock or touches a socket, so every rule is tested deterministically.
//!
//! The engine ([`engine`]) is split the way quinn-proto splits a
//! connection: admission of a client packet (`admission`), the in-flight
//! table (`inflight`), the one check every upstream reply passes
//! (`reply_check`) with the 0x20 letter case it expects (`case`), the
//! upstreams ([`upstreams`]) and their DNS cookies ([`upstream_cookie`]),
//! settings
//! ([`config`]), counters ([`stats`]) and what crosses the boundary to the
//! runtime ([`io`]).

mod admission;
mod aggressive;
mod case;
pub mod config;
pub mod engine;
mod inflight;
pub mod io;
pub mod reply;
mod reply_check;
pub mod stats;
pub mod upstream_cookie;
pub mod upstreams;
mod validation;

pub use config::{CookiePolicy, DnssecConfig, PolicyConfig, ResolverConfig, ResolverError};
pub use engine::{ReconfigureReport, Resolver};
/// The upstream types the config and the resolver share.
pub use heimdall_config::{Upstream, UpstreamStrategy, UpstreamTransport};
pub use io::{AttemptId, ClientId, Hint, QueryOutcome, ReplySource, Transmit, Transport, Warning};
pub use stats::{
    LATENCY_BOUNDS_US, LatencyHistogram, QtypeTally, RCODE_SLOTS, ResolverStats, rcode_slot,
};
pub use upstreams::{UpstreamStats, Upstreams};
