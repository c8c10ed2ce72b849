//! heimdall-resolver: the sans-IO forwarding engine. A query and the time
//! go in; replies, upstream sends and deadlines come out. It never reads a
//! clock or touches a socket, so every rule is tested deterministically.

pub mod engine;
pub mod reply;
pub mod stats;
pub mod upstreams;

pub use engine::{
    ClientId, Hint, PolicyConfig, QueryOutcome, ReconfigureReport, Resolver, ResolverConfig,
    ResolverError, ResolverStats, Transmit, Transport,
};
pub use stats::{LATENCY_BOUNDS_US, LatencyHistogram, QtypeTally, RCODE_SLOTS, rcode_slot};
pub use upstreams::{Strategy, UpstreamStats, Upstreams};
