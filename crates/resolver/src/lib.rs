//! heimdall-resolver: the sans-IO forwarding engine. A query and the time
//! go in; replies, upstream sends and deadlines come out. It never reads a
//! clock or touches a socket, so every rule is tested deterministically.

pub mod engine;
pub mod reply;
pub mod upstreams;

pub use engine::{
    ClientId, Hint, PolicyConfig, QueryOutcome, Resolver, ResolverConfig, ResolverError,
    ResolverStats, Transmit, Transport,
};
pub use upstreams::{Strategy, UpstreamStats, Upstreams};
