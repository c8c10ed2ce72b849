//! Routing: a [`Request`] becomes a typed [`Command`] for the server, or a
//! ready error [`Response`].

use heimdall_wire::NameBuf;

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
    /// `POST /cache/flush[?name=...]`: drop every cache entry (`None`), or
    /// the entries for the name and every name below it (lower-cased),
    /// then [`render_flush_result`](crate::render_flush_result).
    Flush {
        /// The name to flush under; `None` flushes everything.
        name: Option<NameBuf>,
    },
    /// `POST /reload`: reload the configuration, then
    /// [`render_reload_result`](crate::render_reload_result).
    Reload,
}

/// Route one request: `Ok(command)` for the server to execute, or
/// `Err(response)` to send as it is (404 unknown path, 405 wrong method
/// with an `Allow` header, 400 bad query).
pub fn route(request: &Request) -> Result<Command, Response> {
    let allowed = match request.path.as_str() {
        "/metrics" | "/health" | "/stats" => "GET",
        "/cache/flush" | "/reload" => "POST",
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
        "/reload" => no_query(request).map(|()| Command::Reload),
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

/// Parameters of `/cache/flush` come from the query string and, for a
/// form-encoded body, from the body as well.
fn flush_command(request: &Request) -> Result<Command, Response> {
    let mut name: Option<NameBuf> = None;
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
            if key != b"name" {
                return Err(bad(format!(
                    "unknown parameter {:?}; only \"name\" is accepted",
                    String::from_utf8_lossy(&key)
                )));
            }
            if name.is_some() {
                return Err(bad("\"name\" given more than once"));
            }
            let value = percent_decode(value).ok_or_else(|| bad("invalid percent-encoding"))?;
            let text = String::from_utf8(value).map_err(|_| bad("name is not UTF-8"))?;
            if text.is_empty() {
                return Err(bad("empty name; omit the parameter to flush everything"));
            }
            let parsed = NameBuf::from_presentation(&text)
                .map_err(|error| bad(format!("invalid name {text:?}: {error}")))?;
            name = Some(parsed.to_lowercase());
        }
    }
    Ok(Command::Flush { name })
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
