//! Routing: a [`Request`] becomes a typed [`Command`] for the server, or a
//! ready error [`Response`].

use heimdall_wire::{NameBuf, RecordType};

use crate::http::{Method, Request, Response};

/// What the server must do for a request. It executes the command and
/// hands the result to the matching `render_*` function.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one command per control request; boxing the name buys nothing"
)]
pub enum Command {
    /// `GET /metrics`: collect a [`Snapshot`](crate::Snapshot), then
    /// [`render_metrics`](crate::render_metrics).
    Metrics,
    /// `GET /health`: ask every core, then
    /// [`render_health`](crate::render_health).
    Health,
    /// `GET /stats`: collect a [`Snapshot`](crate::Snapshot), then
    /// [`render_stats_json`](crate::render_stats_json).
    Stats,
    /// `GET /status`: collect a [`Snapshot`](crate::Snapshot), then
    /// [`render_status`](crate::render_status).
    Status,
    /// `POST /cache/flush[?name=...[&type=...]]`: drop every cache entry
    /// (`None`), or the entries for the name and every name below it
    /// (lower-cased), or with a type only that name's entry of that type;
    /// then [`render_flush_result`](crate::render_flush_result).
    Flush {
        /// The name to flush under; `None` flushes everything.
        name: Option<NameBuf>,
        /// Only this type, at exactly `name` (requires `name`).
        qtype: Option<RecordType>,
    },
    /// `GET /cache/lookup?name=...&type=...`: the cached entries for the
    /// name and type on every core, then
    /// [`render_lookup`](crate::render_lookup).
    CacheLookup {
        /// The name (lower-cased).
        name: NameBuf,
        /// The type.
        qtype: RecordType,
    },
    /// `POST /log-level?level=...`: change the log level of the running
    /// process, then [`render_log_level`](crate::render_log_level).
    LogLevel {
        /// `off`, `error`, `warn`, `info`, `debug` or `trace`.
        level: String,
    },
    /// `GET /top-queries[?limit=N]`: the most asked names and types, from
    /// every core's sampled table, then
    /// [`render_top_queries`](crate::render_top_queries).
    TopQueries {
        /// Rows wanted (1 to [`TOP_QUERIES_MAX`]; default 20).
        limit: usize,
    },
    /// `GET /cache/dump`: every core's entries in the cache's text form
    /// (heimdall-cache's `dump_text`), as `text/plain`.
    CacheDump,
    /// `POST /cache/load`: the body is a text dump; every core inserts
    /// its fresh entries, then
    /// [`render_load_result`](crate::render_load_result).
    CacheLoad {
        /// The dump.
        text: String,
    },
    /// `POST /reload`: reload the configuration, then
    /// [`render_reload_result`](crate::render_reload_result).
    Reload,
}

/// The most rows `/top-queries` returns.
pub const TOP_QUERIES_MAX: usize = 1000;

/// The log levels `POST /log-level` accepts, least verbose first.
pub const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

impl Command {
    /// Whether the command only reads monitoring data that any scraper
    /// may see (`/metrics`, `/health`): the only routes the HTTP
    /// listener serves without the control token.
    pub fn is_monitoring(&self) -> bool {
        matches!(self, Self::Metrics | Self::Health)
    }
}

/// Route one request: `Ok(command)` for the server to execute, or
/// `Err(response)` to send as it is (404 unknown path, 405 wrong method
/// with an `Allow` header, 400 bad query).
pub fn route(request: &Request) -> Result<Command, Response> {
    let allowed = match request.path.as_str() {
        "/metrics" | "/health" | "/stats" | "/status" | "/cache/lookup" | "/cache/dump"
        | "/top-queries" => "GET",
        "/cache/flush" | "/cache/load" | "/reload" | "/log-level" => "POST",
        _ => return Err(Response::text(404, "not found\n")),
    };
    let method_ok = match request.method {
        Method::Get => allowed == "GET",
        Method::Post => allowed == "POST",
        Method::Other(_) => false,
    };
    if !method_ok {
        return Err(
            Response::text(405, format!("method not allowed; use {allowed}\n"))
                .with_header("Allow", allowed),
        );
    }
    match request.path.as_str() {
        "/metrics" => no_query(request).map(|()| Command::Metrics),
        "/health" => no_query(request).map(|()| Command::Health),
        "/stats" => no_query(request).map(|()| Command::Stats),
        "/status" => no_query(request).map(|()| Command::Status),
        "/reload" => no_query(request).map(|()| Command::Reload),
        "/cache/dump" => no_query(request).map(|()| Command::CacheDump),
        "/cache/load" => no_query(request).and_then(|()| {
            String::from_utf8(request.body.clone())
                .map(|text| Command::CacheLoad { text })
                .map_err(|_| bad("the dump is not UTF-8"))
        }),
        "/cache/lookup" => lookup_command(request),
        "/top-queries" => top_command(request),
        "/log-level" => log_level_command(request),
        _ => flush_command(request),
    }
}

fn bad(why: impl Into<String>) -> Response {
    let mut text = why.into();
    text.push('\n');
    Response::text(400, text)
}

fn no_query(request: &Request) -> Result<(), Response> {
    match request.query.as_deref() {
        None | Some("") => Ok(()),
        Some(_) => Err(bad("this route takes no query parameters")),
    }
}

/// The parameters of a request, from the query string and, for a
/// form-encoded body, from the body as well; each of `known` at most
/// once, anything else refused.
fn params(
    request: &Request,
    known: &[&'static str],
) -> Result<Vec<(&'static str, String)>, Response> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    let mut sources: Vec<&[u8]> = Vec::new();
    if let Some(query) = request.query.as_deref() {
        sources.push(query.as_bytes());
    }
    let form = request.content_type.as_deref().is_some_and(|value| {
        value.split(';').next().is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if form {
        sources.push(&request.body);
    }
    for source in sources {
        for pair in source.split(|&byte| byte == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (
                    pair.get(..at).unwrap_or_default(),
                    pair.get(at + 1..).unwrap_or_default(),
                ),
                None => (pair, &[][..]),
            };
            let key = percent_decode(key).ok_or_else(|| bad("invalid percent-encoding"))?;
            let Some(&name) = known.iter().find(|name| name.as_bytes() == key.as_slice()) else {
                let accepted: Vec<String> = known.iter().map(|name| format!("{name:?}")).collect();
                return Err(bad(format!(
                    "unknown parameter {:?}; accepted: {}",
                    String::from_utf8_lossy(&key),
                    accepted.join(", ")
                )));
            };
            if found.iter().any(|(seen, _)| *seen == name) {
                return Err(bad(format!("{name:?} given more than once")));
            }
            let value = percent_decode(value).ok_or_else(|| bad("invalid percent-encoding"))?;
            let text = String::from_utf8(value).map_err(|_| bad(format!("{name} is not UTF-8")))?;
            found.push((name, text));
        }
    }
    Ok(found)
}

fn param<'a>(found: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    found
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.as_str())
}

fn parse_name(text: &str) -> Result<NameBuf, Response> {
    NameBuf::from_presentation(text)
        .map(|name| name.to_lowercase())
        .map_err(|error| bad(format!("invalid name {text:?}: {error}")))
}

fn parse_type(text: &str) -> Result<RecordType, Response> {
    RecordType::from_mnemonic(text).ok_or_else(|| bad(format!("unknown record type {text:?}")))
}

/// `/cache/flush`: `name` (optional) and `type` (optional, with `name`).
fn flush_command(request: &Request) -> Result<Command, Response> {
    let found = params(request, &["name", "type"])?;
    let name = match param(&found, "name") {
        Some("") => return Err(bad("empty name; omit the parameter to flush everything")),
        Some(text) => Some(parse_name(text)?),
        None => None,
    };
    let qtype = param(&found, "type").map(parse_type).transpose()?;
    if qtype.is_some() && name.is_none() {
        return Err(bad("\"type\" needs a \"name\""));
    }
    Ok(Command::Flush { name, qtype })
}

/// `/cache/lookup`: `name` and `type` (default A).
fn lookup_command(request: &Request) -> Result<Command, Response> {
    let found = params(request, &["name", "type"])?;
    let name = match param(&found, "name") {
        Some(text) if !text.is_empty() => parse_name(text)?,
        _ => return Err(bad("\"name\" is required")),
    };
    let qtype = param(&found, "type").map_or(Ok(RecordType::A), parse_type)?;
    Ok(Command::CacheLookup { name, qtype })
}

/// `/top-queries`: `limit` (optional).
fn top_command(request: &Request) -> Result<Command, Response> {
    let found = params(request, &["limit"])?;
    let limit = match param(&found, "limit") {
        None => 20,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=TOP_QUERIES_MAX).contains(n))
            .ok_or_else(|| bad(format!("limit must be 1 to {TOP_QUERIES_MAX}")))?,
    };
    Ok(Command::TopQueries { limit })
}

/// `/log-level`: `level`, one of [`LOG_LEVELS`].
fn log_level_command(request: &Request) -> Result<Command, Response> {
    let found = params(request, &["level"])?;
    let Some(level) = param(&found, "level") else {
        return Err(bad("\"level\" is required"));
    };
    let level = level.to_ascii_lowercase();
    if !LOG_LEVELS.contains(&level.as_str()) {
        return Err(bad(format!(
            "unknown level {level:?}; one of {}",
            LOG_LEVELS.join(", ")
        )));
    }
    Ok(Command::LogLevel { level })
}

/// Decode `%XX` escapes (RFC 3986). `+` is left as it is. `None` for a
/// `%` not followed by two hex digits.
pub fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&byte) = bytes.next() {
        if byte == b'%' {
            let high = hex_value(*bytes.next()?)?;
            let low = hex_value(*bytes.next()?)?;
            out.push(high << 4 | low);
        } else {
            out.push(byte);
        }
    }
    Some(out)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}
