//! A bounded HTTP/1.1 request parser for one connection, built on
//! `httparse`, and the response type with its encoder.

use std::fmt;

/// Bounds on one request. Anything larger is rejected, never buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most header fields in one request (more: 431).
    pub max_headers: usize,
    /// Most bytes in the request line plus headers, final blank line
    /// included (more: 431).
    pub max_header_bytes: usize,
    /// Most bytes in a request body (more: 413).
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_headers: 32,
            max_header_bytes: 8 * 1024,
            max_body_bytes: 16 * 1024,
        }
    }
}

/// The request methods the endpoint knows; anything else is
/// [`Method::Other`] and gets a 405 from [`route`](crate::route).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// Any other syntactically valid method token.
    Other(String),
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Get => f.write_str("GET"),
            Self::Post => f.write_str("POST"),
            Self::Other(name) => f.write_str(name),
        }
    }
}

/// One complete, validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path of the request target (before any `?`), not decoded.
    pub path: String,
    /// The raw query string (after `?`), if there was one.
    pub query: Option<String>,
    /// The `Content-Type` header, if present.
    pub content_type: Option<String>,
    /// The `Authorization` header, if present (the control token).
    pub authorization: Option<String>,
    /// The body (`Content-Length` bytes; empty without that header).
    pub body: Vec<u8>,
    /// Whether the connection stays open after the response: HTTP/1.1
    /// without `Connection: close`, or HTTP/1.0 with `Connection:
    /// keep-alive`.
    pub keep_alive: bool,
}

/// A request that cannot be served; the connection must be closed after
/// sending [`HttpError::response`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request: 400.
    BadRequest(&'static str),
    /// Body longer than [`Limits::max_body_bytes`]: 413.
    PayloadTooLarge,
    /// Too many header fields or header bytes: 431.
    HeadersTooLarge,
}

impl HttpError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::PayloadTooLarge => 413,
            Self::HeadersTooLarge => 431,
        }
    }

    /// The reply to send before closing the connection.
    pub fn response(&self) -> Response {
        Response::text(self.status(), format!("{self}\n")).with_close()
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadRequest(why) => write!(f, "bad request: {why}"),
            Self::PayloadTooLarge => f.write_str("request body too large"),
            Self::HeadersTooLarge => f.write_str("request header fields too large"),
        }
    }
}

impl std::error::Error for HttpError {}

/// The parser state of one connection: feed it bytes as they arrive and
/// take complete requests out, in order (pipelining works).
///
/// After an [`HttpError`] the connection is poisoned: every further call
/// returns the same error, and the server should send
/// [`HttpError::response`] and close.
#[derive(Debug, Clone)]
pub struct Connection {
    limits: Limits,
    buffer: Vec<u8>,
    failed: Option<HttpError>,
}

impl Connection {
    /// A new connection with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            buffer: Vec::new(),
            failed: None,
        }
    }

    /// Append bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// Bytes received but not yet consumed by a complete request.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete request, `Ok(None)` if more bytes are needed.
    pub fn next_request(&mut self) -> Result<Option<Request>, HttpError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        match self.parse() {
            Ok(Some((request, used))) => {
                self.buffer.drain(..used);
                Ok(Some(request))
            }
            Ok(None) => Ok(None),
            Err(error) => {
                self.buffer.clear();
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    fn parse(&self) -> Result<Option<(Request, usize)>, HttpError> {
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut parsed = httparse::Request::new(&mut headers);
        let head_len = match parsed.parse(&self.buffer) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return if self.buffer.len() > self.limits.max_header_bytes {
                    Err(HttpError::HeadersTooLarge)
                } else {
                    Ok(None)
                };
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
            Err(httparse::Error::Version) => {
                return Err(HttpError::BadRequest("unsupported HTTP version"));
            }
            Err(httparse::Error::Token) => return Err(HttpError::BadRequest("invalid token")),
            Err(_) => return Err(HttpError::BadRequest("malformed request")),
        };
        if head_len > self.limits.max_header_bytes {
            return Err(HttpError::HeadersTooLarge);
        }
        let method = match parsed.method {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some(other) => Method::Other(other.to_owned()),
            None => return Err(HttpError::BadRequest("missing method")),
        };
        let target = parsed
            .path
            .ok_or(HttpError::BadRequest("missing request target"))?;
        if !target.starts_with('/') {
            return Err(HttpError::BadRequest("request target must be a path"));
        }
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (target.to_owned(), None),
        };
        let version = parsed.version.unwrap_or(1);

        let mut content_length: Option<usize> = None;
        let mut content_type = None;
        let mut authorization = None;
        let mut connection_close = false;
        let mut connection_keep_alive = false;
        let mut host_seen = false;
        for header in parsed.headers.iter() {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(header.value)
                    .map_err(|_| HttpError::BadRequest("invalid Content-Length"))?
                    .trim();
                if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(HttpError::BadRequest("invalid Content-Length"));
                }
                // Too many digits to fit is certainly too large.
                let value = text
                    .parse::<usize>()
                    .map_err(|_| HttpError::PayloadTooLarge)?;
                if content_length.is_some_and(|seen| seen != value) {
                    return Err(HttpError::BadRequest("conflicting Content-Length"));
                }
                content_length = Some(value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                return Err(HttpError::BadRequest("Transfer-Encoding is not supported"));
            } else if name.eq_ignore_ascii_case("connection") {
                let value = String::from_utf8_lossy(header.value);
                for token in value.split(',') {
                    let token = token.trim();
                    if token.eq_ignore_ascii_case("close") {
                        connection_close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        connection_keep_alive = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("content-type") {
                content_type = Some(String::from_utf8_lossy(header.value).trim().to_owned());
            } else if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(String::from_utf8_lossy(header.value).trim().to_owned());
            } else if name.eq_ignore_ascii_case("host") {
                if host_seen {
                    return Err(HttpError::BadRequest("more than one Host header"));
                }
                host_seen = true;
            }
        }
        if version == 1 && !host_seen {
            return Err(HttpError::BadRequest("missing Host header"));
        }
        let body_len = content_length.unwrap_or(0);
        if body_len > self.limits.max_body_bytes {
            return Err(HttpError::PayloadTooLarge);
        }
        let end = head_len
            .checked_add(body_len)
            .ok_or(HttpError::PayloadTooLarge)?;
        let Some(body) = self.buffer.get(head_len..end) else {
            return Ok(None);
        };
        let keep_alive = if version == 1 {
            !connection_close
        } else {
            connection_keep_alive && !connection_close
        };
        let request = Request {
            method,
            path,
            query,
            content_type,
            authorization,
            body: body.to_vec(),
            keep_alive,
        };
        Ok(Some((request, end)))
    }
}

impl Default for Connection {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// One HTTP response, ready to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// Extra header fields (e.g. `Allow` on a 405).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Whether the connection must be closed after this response
    /// (whatever the request asked).
    pub close: bool,
}

/// The content type of plain-text replies.
pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// The content type of JSON replies.
pub(crate) const APPLICATION_JSON: &str = "application/json";

impl Response {
    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type: TEXT_PLAIN,
            headers: Vec::new(),
            body: body.into().into_bytes(),
            close: false,
        }
    }

    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut body = value.to_string().into_bytes();
        body.push(b'\n');
        Self {
            status,
            content_type: APPLICATION_JSON,
            headers: Vec::new(),
            body,
            close: false,
        }
    }

    /// This response, closing the connection afterwards.
    pub fn with_close(mut self) -> Self {
        self.close = true;
        self
    }

    /// This response with one more header field.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The body as text (lossy), for logs and tests.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Encode as HTTP/1.1. `keep_alive` is the request's wish
    /// ([`Request::keep_alive`]); the connection is closed if either it is
    /// false or [`Response::close`] is set, and the returned flag says
    /// which: `true` means close after writing.
    pub fn encode(&self, keep_alive: bool) -> (Vec<u8>, bool) {
        let close = self.close || !keep_alive;
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                self.status,
                reason(self.status),
                self.content_type,
                self.body.len()
            )
            .as_bytes(),
        );
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"Cache-Control: no-store\r\n");
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        (out, close)
    }
}

/// The reason phrase of the status codes this crate produces.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
