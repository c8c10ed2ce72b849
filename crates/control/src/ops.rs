//! The replies of the operator routes that `heimdall ctl` uses beside
//! `/stats` and `/reload`: `/status` (version, uptime, cores, upstream
//! state), `/cache/lookup`, `/cache/load` and `/log-level`. Each is JSON; `heimdall ctl`
//! renders it for humans or prints it as it is (`--json`).

use heimdall_wire::{NameBuf, RecordType};
use serde_json::{Value, json};

use crate::http::Response;
use crate::snapshot::Snapshot;

/// The `GET /status` reply: version, uptime, cores, configuration
/// generation, reloads, cache size and every upstream with its smoothed
/// RTT (the mean of the cores that measured one) and the most failures in
/// a row any core has seen.
pub fn render_status(snapshot: &Snapshot, uptime_secs: u64, generation: u64) -> Response {
    Response::json(200, &status_value(snapshot, uptime_secs, generation))
}

pub(crate) fn status_value(snapshot: &Snapshot, uptime_secs: u64, generation: u64) -> Value {
    let totals = snapshot.totals();
    let mut upstreams: Vec<Value> = Vec::new();
    for upstream in &totals.upstreams {
        let measured: Vec<u64> = snapshot
            .cores
            .iter()
            .flat_map(|core| &core.upstreams)
            .filter(|mine| mine.label == upstream.label)
            .filter_map(|mine| mine.srtt_us)
            .collect();
        let srtt_ms = (!measured.is_empty()).then(|| {
            let sum: u64 = measured.iter().sum();
            sum as f64 / measured.len() as f64 / 1000.0
        });
        upstreams.push(json!({
            "upstream": upstream.label,
            "srtt_ms": srtt_ms,
            "consecutive_failures": upstream.consecutive_failures,
            "queries": upstream.queries,
            "replies": upstream.replies,
            "timeouts": upstream.timeouts,
            "errors": upstream.errors,
        }));
    }
    json!({
        "version": snapshot.server.version,
        "commit": snapshot.server.commit,
        "uptime_seconds": uptime_secs,
        "cores": snapshot.cores.len(),
        "generation": generation,
        "reloads": {
            "success": snapshot.server.reloads_ok,
            "failure": snapshot.server.reloads_failed,
        },
        "queries": totals.queries.udp.saturating_add(totals.queries.tcp),
        "cache": { "entries": totals.cache.entries, "bytes": totals.cache.bytes },
        "upstreams": upstreams,
    })
}

/// One cached entry, as `/cache/lookup` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedEntry {
    /// The core whose shard holds it.
    pub core: usize,
    /// The response code (`NOERROR`, `NXDOMAIN`, ...).
    pub rcode: String,
    /// Answer, negative or failure entry.
    pub kind: String,
    /// Seconds until it expires; 0 once expired (served stale, if at all).
    pub ttl_remaining: u64,
    /// Records it holds.
    pub records: usize,
    /// Whether it was stored with the DO bit (DNSSEC records included).
    pub dnssec_ok: bool,
}

/// The `GET /cache/lookup` reply: the name, the type and the entries each
/// core holds for them (none: not cached).
pub fn render_lookup(name: &NameBuf, qtype: RecordType, entries: &[CachedEntry]) -> Response {
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            json!({
                "core": entry.core,
                "rcode": entry.rcode,
                "kind": entry.kind,
                "ttl_remaining": entry.ttl_remaining,
                "records": entry.records,
                "dnssec_ok": entry.dnssec_ok,
            })
        })
        .collect();
    Response::json(
        200,
        &json!({ "name": name.to_string(), "type": qtype.to_string(), "entries": entries }),
    )
}

/// The `POST /log-level` reply: the level before and the level now.
pub fn render_log_level(previous: &str, level: &str) -> Response {
    Response::json(200, &json!({ "previous": previous, "level": level }))
}

/// The `POST /cache/load` reply: 200 with `{"loaded": N, "cores": C}`
/// (each core inserted the N fresh entries of the dump), or 400 with
/// `{"error": "..."}` for a dump that does not parse (nothing loaded).
pub fn render_load_result(result: Result<(usize, usize), String>) -> Response {
    match result {
        Ok((loaded, cores)) => Response::json(200, &json!({ "loaded": loaded, "cores": cores })),
        Err(error) => Response::json(400, &json!({ "error": error })),
    }
}

/// One row of `/top-queries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopQuery {
    /// The name asked.
    pub name: String,
    /// The type asked.
    pub qtype: String,
    /// Estimated queries (sampled count times the sampling interval).
    pub queries: u64,
}

/// The `GET /top-queries` reply: `{"sample_every": N, "top": [{"name",
/// "type", "queries"}]}`, most asked first.
pub fn render_top_queries(rows: &[TopQuery], sample_every: u64) -> Response {
    let top: Vec<Value> = rows
        .iter()
        .map(|row| json!({ "name": row.name, "type": row.qtype, "queries": row.queries }))
        .collect();
    Response::json(200, &json!({ "sample_every": sample_every, "top": top }))
}
