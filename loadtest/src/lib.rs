//! heimdall-loadtest: heimdall's load generator and its synthetic upstream.
//!
//! - [`load`] is the load generator: pinned workers with batched UDP
//!   sockets, open-loop (scheduled, no coordinated omission) or max
//!   (windowed) pacing, every response verified against its query, HDR
//!   latency percentiles, JSON and SVG reports.
//! - [`upstream`] is a small authoritative server for a generated zone,
//!   with switchable misbehaviour (silence, wrong IDs, truncation, delay,
//!   loss) and an echo mode (a batched reflector). It is used as a library
//!   by integration tests of other crates and as `heimdall-loadtest
//!   upstream` for benchmarks.
//! - [`load::conn`] and [`tls`] are the stream transports' client side:
//!   TCP, DNS over TLS and DNS over HTTPS/2 connections on a tokio
//!   current-thread runtime per worker (a client; the server has no tokio
//!   runtime), and the rustls client settings.
//! - [`net`] holds the batched UDP I/O (`recvmmsg`/`sendmmsg`) both use.
//! - [`affinity`] pins threads to CPUs.
//! - [`signal`] turns SIGINT/SIGTERM into a flag for the binary.

pub mod affinity;
pub mod load;
pub mod net;
pub mod signal;
pub mod tls;
pub mod upstream;

pub use upstream::{Behavior, Upstream, UpstreamConfig, UpstreamHandle, UpstreamStats, ZoneConfig};
