//! heimdall-control: the sans-IO half of heimdall's HTTP control endpoint.
//!
//! The server owns the socket; this crate owns everything else. Bytes read
//! from one HTTP/1.1 connection go into a [`Connection`], which yields
//! bounded, validated [`Request`]s (or an [`HttpError`] that maps to a
//! 400/413/431 reply). [`route`] turns a request into a typed [`Command`]
//! for the server to execute, or into a ready [`Response`] (404, 405, 400).
//! Once the server has the result, the `render_*` functions build the
//! [`Response`], and [`Response::encode`] writes it out.
//!
//! - [`Snapshot`]: a metrics model independent of the other crates (plain
//!   `u64` counters per core and per upstream) that the server fills from
//!   its resolver, cache and upstream counters.
//! - [`render_metrics`]: Prometheus text exposition format 0.0.4.
//! - [`render_stats_json`]: the same snapshot as JSON, with totals.
//! - [`render_status`], [`render_lookup`], [`render_log_level`]: the
//!   operator routes `heimdall ctl` uses.
//!
//! Nothing here reads a clock or touches a socket.

mod counters;
mod http;
mod metrics;
mod ops;
mod render;
mod route;
mod snapshot;

#[cfg(test)]
mod tests;

pub use counters::{COUNTERS, Counter, CounterDesc, CounterKind, CounterSet};
pub use http::{Connection, HttpError, Limits, Method, Request, Response};
pub use metrics::{METRICS_CONTENT_TYPE, render_metrics};
pub use ops::{
    CachedEntry, TopQuery, render_load_result, render_log_level, render_lookup, render_status,
    render_top_queries,
};
pub use render::{
    CoreHealth, ReloadReport, render_flush_result, render_health, render_reload_result,
    render_stats_json,
};
pub use route::{Command, LOG_LEVELS, TOP_QUERIES_MAX, percent_decode, route};
pub use snapshot::ClientCookieSnapshot;
pub use snapshot::{AnswerLatency, ProcessSnapshot, ServerSnapshot};
pub use snapshot::{
    CacheSnapshot, CoreSnapshot, DnstapSnapshot, HintSnapshot, LATENCY_BOUNDS_US, LatencyHistogram,
    PolicySnapshot, QTYPE_BUCKETS, QtypeBucket, QtypeCounts, RCODE_BUCKETS, REJECT_REASONS,
    RcodeBucket, RcodeCounts, RejectReason, ReplyCheckSnapshot, Snapshot, TransportCounts,
    UdpSnapshot, UpstreamSnapshot, UpstreamSocketSnapshot,
};
