//! heimdall-loadtest: heimdall's load generator and its synthetic upstream.
//!
//! - [`upstream`] is a small authoritative server for a generated zone,
//!   with switchable misbehaviour (silence, wrong IDs, truncation, delay,
//!   loss). It is used as a library by integration tests of other crates
//!   and as `heimdall-loadtest upstream` for benchmarks.
//! - [`net`] holds the batched UDP I/O (`recvmmsg`/`sendmmsg`) shared by the
//!   upstream and, later, the load generator.
//! - [`signal`] turns SIGINT/SIGTERM into a flag for the binary.

pub mod net;
pub mod signal;
pub mod upstream;

pub use upstream::{Behavior, Upstream, UpstreamConfig, UpstreamHandle, UpstreamStats, ZoneConfig};
