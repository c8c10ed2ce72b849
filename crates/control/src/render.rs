//! Responses for the routes whose result the server computes: health,
//! stats JSON, cache flush and reload.

use heimdall_wire::NameBuf;
use serde_json::{Map, Value, json};

use crate::http::Response;
use crate::metrics::{UPSTREAM_COUNTERS, UPSTREAM_STATE_GAUGES};
use crate::snapshot::{
    CoreSnapshot, LATENCY_BOUNDS_US, LatencyHistogram, Snapshot, UpstreamSnapshot,
};

/// Whether one core answered the health probe in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreHealth {
    /// The core's index.
    pub core: usize,
    /// It answered before the deadline.
    pub answered: bool,
}

/// The `GET /health` reply: 200 `ok` when every core answered (and there
/// is at least one), else 503 naming the cores that did not.
pub fn render_health(cores: &[CoreHealth]) -> Response {
    if cores.is_empty() {
        return Response::text(503, "unhealthy: no cores reported\n");
    }
    let late: Vec<String> = cores
        .iter()
        .filter(|core| !core.answered)
        .map(|core| core.core.to_string())
        .collect();
    if late.is_empty() {
        Response::text(200, "ok\n")
    } else {
        Response::text(
            503,
            format!(
                "unhealthy: cores not answering in time: {}\n",
                late.join(",")
            ),
        )
    }
}

/// The `POST /cache/flush` reply: 200 with
/// `{"flushed": "<name>" | null, "removed": <entries removed>}`.
pub fn render_flush_result(name: Option<&NameBuf>, removed: u64) -> Response {
    let flushed = name.map_or(Value::Null, |name| Value::String(name.to_string()));
    Response::json(200, &json!({ "flushed": flushed, "removed": removed }))
}

/// What a successful reload did, as the server reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The configuration generation now in force (increments per reload).
    pub generation: u64,
    /// Human-readable notes on what changed (may be empty).
    pub changes: Vec<String>,
}

/// The `POST /reload` reply: 200 with
/// `{"status": "ok", "generation": n, "changes": [...]}`, or 500 with
/// `{"status": "error", "error": "..."}` (the old configuration stays).
pub fn render_reload_result(result: Result<ReloadReport, String>) -> Response {
    match result {
        Ok(report) => Response::json(
            200,
            &json!({
                "status": "ok",
                "generation": report.generation,
                "changes": report.changes,
            }),
        ),
        Err(error) => Response::json(500, &json!({ "status": "error", "error": error })),
    }
}

/// The `GET /stats` reply: `{"cores": [<core>...], "totals": <core>}`
/// where `totals` has no `core` field. See docs/OPERATIONS.md.
pub fn render_stats_json(snapshot: &Snapshot) -> Response {
    Response::json(200, &stats_value(snapshot))
}

pub(crate) fn stats_value(snapshot: &Snapshot) -> Value {
    let cores: Vec<Value> = snapshot
        .cores
        .iter()
        .map(|core| core_value(core, true))
        .collect();
    json!({
        "cores": cores,
        "totals": core_value(&snapshot.totals(), false),
        "server": server_value(snapshot),
    })
}

fn core_value(core: &CoreSnapshot, with_index: bool) -> Value {
    let qtypes: Map<String, Value> = core
        .qtypes
        .iter()
        .map(|(bucket, n)| (bucket.label().to_owned(), Value::from(n)))
        .collect();
    let rcodes: Map<String, Value> = core
        .rcodes
        .iter()
        .map(|(bucket, n)| (bucket.label().to_owned(), Value::from(n)))
        .collect();
    let upstreams: Vec<Value> = core.upstreams.iter().map(upstream_value).collect();
    let rejected: Map<String, Value> = core
        .replies
        .iter_rejected()
        .map(|(reason, n)| (reason.label().to_owned(), Value::from(n)))
        .collect();
    let mut value = json!({
        "queries": {
            "udp": core.queries.udp,
            "tcp": core.queries.tcp,
            "tls": core.queries.tls,
            "https": core.queries.https,
            "quic": core.queries.quic,
        },
        "qtypes": qtypes,
        "rcodes": rcodes,
        "cache": {
            "hits": core.cache.hits,
            "misses": core.cache.misses,
            "stale_served": core.cache.stale_served,
            "prefetches": core.cache.prefetches,
            "evictions": core.cache.evictions,
            "entries": core.cache.entries,
            "copies": core.cache.copies,
            "bytes": core.cache.bytes,
        },
        "hints": {
            "sent": core.hints.sent,
            "received": core.hints.received,
            "dropped": core.hints.dropped,
        },
        "udp": {
            "send_errors": core.udp.send_errors,
            "gso_sends": core.udp.gso_sends,
            "gso_segments": core.udp.gso_segments,
            "gso_fallbacks": core.udp.gso_fallbacks,
        },
        "policy": {
            "blocked": core.policy.blocked,
            "malformed": core.policy.malformed,
        },
        "upstreams": upstreams,
        "upstream_replies": {
            "rejected": rejected,
            "mismatched": core.replies.mismatched,
            "malformed": core.replies.malformed,
            "late_accepted": core.replies.late_accepted,
            "case_fallbacks": core.replies.case_fallbacks,
            "cookie_fallbacks": core.replies.cookie_fallbacks,
            "badcookie_retries": core.replies.badcookie_retries,
            "strikes_flooded": core.replies.strikes_flooded,
        },
        "client_cookies": {
            "valid": core.client_cookies.valid,
            "new": core.client_cookies.new,
            "bad": core.client_cookies.bad,
            "malformed": core.client_cookies.malformed,
            "badcookie_sent": core.client_cookies.badcookie_sent,
            "truncated": core.client_cookies.truncated,
        },
        "upstream_sockets": {
            "open": core.sockets.open,
            "opened": core.sockets.opened,
            "bind_retries": core.sockets.bind_retries,
            "bind_failures": core.sockets.bind_failures,
            "waits": core.sockets.waits,
            "wait_drops": core.sockets.wait_drops,
            "strays": core.sockets.strays,
        },
        "dnstap": {
            "sent": core.dnstap.sent,
            "dropped": core.dnstap.dropped,
        },
    });
    if let Value::Object(map) = &mut value {
        // The counters kept by descriptor, each at its (object, key).
        for (desc, n) in core.counters.iter() {
            let (object, key) = desc.json;
            let entry = map
                .entry(object.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(fields) = entry {
                fields.insert(key.to_owned(), Value::from(n));
            }
        }
        let answers: Vec<Value> = core
            .answers
            .series()
            .into_iter()
            .map(|(transport, cache, latency)| {
                let mut series = latency_value(latency);
                if let Value::Object(fields) = &mut series {
                    fields.insert("transport".to_owned(), Value::from(transport));
                    fields.insert("cache".to_owned(), Value::from(cache));
                }
                series
            })
            .collect();
        map.insert("answer_latency".to_owned(), Value::Array(answers));
        if with_index {
            map.insert("core".to_owned(), Value::from(core.core));
        }
    }
    value
}

/// A latency histogram: count, sum and per-bound cumulative counts.
fn latency_value(latency: &LatencyHistogram) -> Value {
    let cumulative = latency.cumulative();
    let buckets: Vec<Value> = LATENCY_BOUNDS_US
        .iter()
        .map(|&bound| Value::from(bound))
        .chain(std::iter::once(Value::String("+Inf".to_owned())))
        .zip(cumulative.iter())
        .map(|(le_us, &count)| json!({ "le_us": le_us, "count": count }))
        .collect();
    json!({
        "count": latency.count(),
        "sum_us": latency.sum_us(),
        "buckets": buckets,
    })
}

fn upstream_value(upstream: &UpstreamSnapshot) -> Value {
    let mut map = Map::new();
    map.insert("upstream".to_owned(), Value::from(upstream.label.as_str()));
    for (_, _, key, read) in UPSTREAM_COUNTERS.iter().chain(&UPSTREAM_STATE_GAUGES) {
        map.insert((*key).to_owned(), Value::from(read(upstream)));
    }
    map.insert("srtt_us".to_owned(), Value::from(upstream.srtt_us));
    map.insert(
        "consecutive_failures".to_owned(),
        Value::from(upstream.consecutive_failures),
    );
    map.insert("latency".to_owned(), latency_value(&upstream.latency));
    Value::Object(map)
}

/// Version, reloads and the process, beside the cores.
fn server_value(snapshot: &Snapshot) -> Value {
    let server = &snapshot.server;
    let mut value = json!({
        "version": server.version,
        "commit": server.commit,
        "rustc": server.rustc,
        "reloads": {
            "success": server.reloads_ok,
            "failure": server.reloads_failed,
            "last_success_unix": server.last_reload_success_unix,
        },
    });
    if let (Some(process), Value::Object(map)) = (&snapshot.process, &mut value) {
        map.insert(
            "process".to_owned(),
            json!({
                "resident_memory_bytes": process.resident_memory_bytes,
                "virtual_memory_bytes": process.virtual_memory_bytes,
                "open_fds": process.open_fds,
                "max_fds": process.max_fds,
                "cpu_micros": process.cpu_micros,
                "start_time_unix_micros": process.start_time_unix_micros,
            }),
        );
    }
    value
}
