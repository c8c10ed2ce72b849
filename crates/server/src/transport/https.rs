//! DNS over HTTPS (RFC 8484) to clients: the core's own `SO_REUSEPORT`
//! listeners on `tls.https_listen`, the TLS handshake (ALPN `h2` or
//! `http/1.1`), then HTTP/2 through the `h2` crate or HTTP/1.1 through
//! httparse, and [`HttpsClients`], the table through which replies to
//! requests that waited on an upstream find their request.
//!
//! A request is `GET <path>?dns=<base64url>` or `POST <path>` with an
//! `application/dns-message` body, at `tls.https_path`. Its query goes to
//! the resolver like any other, as `Transport::Https(id)`, one id per
//! request (HTTP/2 carries many requests on one connection at once). The
//! reply is the body of a `200` with `application/dns-message`, padded
//! (RFC 8467) when it has an OPT record, and `cache-control: max-age` the
//! smallest TTL of its answer and authority records. Bad requests get an
//! HTTP error, counted by status: 400 (no or bad `dns`, a body that is
//! not a DNS query), 404 (another path), 405 (another method), 413 (over
//! 65,535 bytes), 415 (a POST of another type).
//!
//! Limits, as for TCP: `tcp.max_connections` per core (handshakes
//! included; the oldest idle connection makes room), `tcp.max_pipelined`
//! requests at once per connection (HTTP/2's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`), `tcp.idle_timeout` without a
//! request, and the handshake, the HTTP/2 preface and each request within
//! `tcp.read_timeout`.
//!
//! h2 is written against tokio's `AsyncRead`/`AsyncWrite`;
//! [`crate::tls::TokioIo`] shows it the TLS stream through them. Nothing
//! of tokio runs: h2 needs the traits and a waker, and glommio's wakers
//! serve.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::io::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use heimdall_resolver::{ClientId, Transport};
use heimdall_wire::Message;
use rustls::ServerConfig;

use crate::batch::shutdown_socket;
use crate::context::{Answered, ClientReplies, CoreContext, SendFailed};
use crate::stats::{DohErrors, TlsStats};
use crate::stream::{Extras, add_options, until};
use crate::tls::{ALPN_H2, Gathered, TlsStream, TokioIo, accept};
use crate::transport::conn::TcpSettings;
use crate::transport::{Admission, admit};

/// The media type of a DNS message (RFC 8484 section 6).
const DNS_MESSAGE: &str = "application/dns-message";
/// The largest DNS message, and so the largest request body or query.
const MAX_MESSAGE: usize = 65_535;
/// How long a request waits for its answer at most; the resolver ends
/// every query well before (SERVFAIL after its attempts).
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How often a connection with requests in flight looks at the stop flag
/// and its idle time.
const BUSY_POLL: Duration = Duration::from_millis(100);
/// An HTTP/1.1 request's header block at most.
const MAX_HEAD: usize = 8192;
/// Headers of an HTTP/1.1 request at most.
const MAX_HEADERS: usize = 32;

/// Why a request gets no DNS answer but an HTTP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadRequest,
    NotFound,
    BadMethod,
    TooLarge,
    BadMediaType,
}

impl Refusal {
    fn status(self) -> u16 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::NotFound => 404,
            Refusal::BadMethod => 405,
            Refusal::TooLarge => 413,
            Refusal::BadMediaType => 415,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Refusal::BadRequest => "Bad Request",
            Refusal::NotFound => "Not Found",
            Refusal::BadMethod => "Method Not Allowed",
            Refusal::TooLarge => "Payload Too Large",
            Refusal::BadMediaType => "Unsupported Media Type",
        }
    }

    /// The body sent with the status: what was wrong, for a person.
    fn explanation(self) -> &'static str {
        match self {
            Refusal::BadRequest => {
                "expected GET ?dns=<base64url DNS query> or POST of one DNS query\n"
            }
            Refusal::NotFound => "no DNS over HTTPS here\n",
            Refusal::BadMethod => "use GET or POST\n",
            Refusal::TooLarge => "a DNS query is at most 65535 bytes\n",
            Refusal::BadMediaType => "POST needs content-type: application/dns-message\n",
        }
    }
}

/// The parts of an HTTP request that DNS over HTTPS looks at.
struct Request<'a> {
    method: &'a str,
    /// Path and query string.
    target: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
}

/// The DNS query a request carries, or why it is refused.
fn dns_query(request: &Request<'_>, path: &str) -> Result<Vec<u8>, Refusal> {
    let (request_path, query_string) = match request.target.split_once('?') {
        Some((request_path, query)) => (request_path, Some(query)),
        None => (request.target, None),
    };
    if request_path != path {
        return Err(Refusal::NotFound);
    }
    let message = match request.method {
        "GET" => {
            let encoded = query_string
                .into_iter()
                .flat_map(|query| query.split('&'))
                .find_map(|pair| pair.strip_prefix("dns="))
                .ok_or(Refusal::BadRequest)?;
            // Base64url without padding (RFC 8484 section 4.1); padding
            // some clients add anyway is accepted.
            let encoded = encoded.trim_end_matches('=');
            if encoded.len() > MAX_MESSAGE.div_ceil(3) * 4 {
                return Err(Refusal::TooLarge);
            }
            data_encoding::BASE64URL_NOPAD
                .decode(encoded.as_bytes())
                .map_err(|_| Refusal::BadRequest)?
        }
        "POST" => {
            let media_type = request
                .content_type
                .and_then(|value| value.split(';').next())
                .map(str::trim);
            if !media_type.is_some_and(|media| media.eq_ignore_ascii_case(DNS_MESSAGE)) {
                return Err(Refusal::BadMediaType);
            }
            if request.body.len() > MAX_MESSAGE {
                return Err(Refusal::TooLarge);
            }
            request.body.to_vec()
        }
        _ => return Err(Refusal::BadMethod),
    };
    // At least a header: anything shorter is no DNS message.
    if message.len() < 12 {
        return Err(Refusal::BadRequest);
    }
    Ok(message)
}

/// The `max-age` of a reply: the smallest TTL of its answer and
/// authority records (RFC 8484 section 5.1), or `None` without any.
fn max_age(reply: &[u8]) -> Option<u32> {
    let message = Message::parse(reply).ok()?;
    message
        .answers()
        .chain(message.authorities())
        .map(|record| record.ttl())
        .min()
}

/// One open connection, for the connection cap.
struct ConnState {
    fd: RawFd,
    /// Requests in flight on it.
    active: Rc<Cell<usize>>,
    last_active: Rc<Cell<Instant>>,
}

/// One core's DNS-over-HTTPS connections and the requests waiting on an
/// upstream.
pub(crate) struct HttpsClients {
    settings: TcpSettings,
    path: Rc<str>,
    conns: RefCell<HashMap<u32, ConnState>>,
    next_conn: Cell<u32>,
    handshaking: Cell<usize>,
    /// Requests waiting for a reply from an upstream, by id.
    waiting: RefCell<HashMap<u32, LocalSender<Vec<u8>>>>,
    /// The request being handed to the resolver right now, and a reply
    /// to it that came before `answer` returned (a failure the resolver
    /// gave at once, say): its channel is only made once it must wait.
    answering: Cell<Option<u32>>,
    early_reply: RefCell<Option<Vec<u8>>>,
    next_request: Cell<u32>,
    stats: Cell<TlsStats>,
    errors: Cell<DohErrors>,
}

impl HttpsClients {
    pub(crate) fn new(settings: TcpSettings, path: &str) -> Self {
        Self {
            settings,
            path: Rc::from(path),
            conns: RefCell::new(HashMap::new()),
            next_conn: Cell::new(0),
            handshaking: Cell::new(0),
            waiting: RefCell::new(HashMap::new()),
            answering: Cell::new(None),
            early_reply: RefCell::new(None),
            next_request: Cell::new(0),
            stats: Cell::new(TlsStats::default()),
            errors: Cell::new(DohErrors::default()),
        }
    }

    fn count(&self, update: impl FnOnce(&mut TlsStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    fn refused(&self, refusal: Refusal) {
        let mut errors = self.errors.get();
        let slot = match refusal {
            Refusal::BadRequest => &mut errors.bad_request,
            Refusal::NotFound => &mut errors.not_found,
            Refusal::BadMethod => &mut errors.bad_method,
            Refusal::TooLarge => &mut errors.too_large,
            Refusal::BadMediaType => &mut errors.bad_media_type,
        };
        *slot += 1;
        self.errors.set(errors);
    }

    /// Open connections, handshakes included.
    fn connections(&self) -> usize {
        self.conns.borrow().len() + self.handshaking.get()
    }

    /// Make room for one more connection: close the oldest idle one. False
    /// when every connection is busy.
    fn make_room_now(&self) -> bool {
        let mut conns = self.conns.borrow_mut();
        if conns.len() + self.handshaking.get() < self.settings.max_connections {
            return true;
        }
        let oldest_idle = conns
            .iter()
            .filter(|(_, conn)| conn.active.get() == 0)
            .min_by_key(|(_, conn)| conn.last_active.get())
            .map(|(&id, _)| id);
        let Some(id) = oldest_idle else {
            return false;
        };
        if let Some(conn) = conns.remove(&id) {
            shutdown_socket(conn.fd);
        }
        drop(conns);
        self.count(|s| s.evicted += 1);
        true
    }

    /// Answer `query` from `client` (a new request id): at once from the
    /// cache, or after its upstream answers. `None`: no answer (the query
    /// was dropped, or its wait ran out).
    async fn resolve(
        self: &Rc<Self>,
        ctx: &Rc<CoreContext>,
        (addr, listener): (SocketAddr, u16),
        query: &[u8],
    ) -> Option<Vec<u8>> {
        let id = self.next_request.get();
        self.next_request.set(id.wrapping_add(1));
        let client = ClientId {
            addr,
            transport: Transport::Https(id),
            listener,
        };
        self.count(|s| s.queries += 1);
        self.answering.set(Some(id));
        let answered = ctx.answer(query, client, <[u8]>::to_vec);
        self.answering.set(None);
        match answered {
            Answered::Now(reply) => Some(reply),
            Answered::Dropped => None,
            Answered::Pending => {
                if let Some(reply) = self.early_reply.borrow_mut().take() {
                    return Some(reply);
                }
                // Made only for a query that waits (a hit needs none).
                let (sender, receiver) = local_channel::new_bounded(1);
                self.waiting.borrow_mut().insert(id, sender);
                let reply = until(Instant::now() + ANSWER_WAIT, receiver.recv())
                    .await
                    .flatten();
                self.waiting.borrow_mut().remove(&id);
                reply
            }
        }
    }

    /// A DNS query from `request`, answered: the HTTP status, content
    /// type, extra header and body to send.
    async fn respond(
        self: &Rc<Self>,
        ctx: &Rc<CoreContext>,
        client: (SocketAddr, u16),
        request: &Request<'_>,
    ) -> Response {
        let query = match dns_query(request, &self.path) {
            Ok(query) => query,
            Err(refusal) => {
                self.refused(refusal);
                return Response::refused(refusal);
            }
        };
        match self.resolve(ctx, client, &query).await {
            Some(mut reply) => {
                let max_age = max_age(&reply);
                add_options(
                    &mut reply,
                    0,
                    Extras {
                        keepalive: None,
                        pad: true,
                    },
                );
                Response {
                    status: 200,
                    reason: "OK",
                    content_type: DNS_MESSAGE,
                    max_age,
                    body: reply,
                }
            }
            // Dropped by policy or never answered: no DNS reply to give.
            None => Response {
                status: 503,
                reason: "Service Unavailable",
                content_type: "text/plain",
                max_age: None,
                body: b"no answer\n".to_vec(),
            },
        }
    }
}

impl ClientReplies for HttpsClients {
    fn reply(&self, client: &ClientId, reply: &[u8]) -> Result<(), SendFailed> {
        if let Transport::Https(id) = client.transport {
            if self.answering.get() == Some(id) {
                *self.early_reply.borrow_mut() = Some(reply.to_vec());
                return Ok(());
            }
            let sender = self.waiting.borrow_mut().remove(&id);
            let delivered = sender.is_some_and(|sender| sender.try_send(reply.to_vec()).is_ok());
            if !delivered {
                self.count(|s| s.replies_orphaned += 1);
            }
        }
        Ok(())
    }

    fn tls_stats(&self) -> Option<(TlsStats, usize)> {
        Some((self.stats.get(), self.connections()))
    }

    fn doh_errors(&self) -> Option<DohErrors> {
        Some(self.errors.get())
    }
}

/// What a request is answered with.
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    max_age: Option<u32>,
    body: Vec<u8>,
}

impl Response {
    fn refused(refusal: Refusal) -> Self {
        Response {
            status: refusal.status(),
            reason: refusal.reason(),
            content_type: "text/plain",
            max_age: None,
            body: refusal.explanation().as_bytes().to_vec(),
        }
    }

    /// As an HTTP/2 response head.
    fn head(&self) -> http::Response<()> {
        use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
        let mut head = http::Response::new(());
        *head.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::OK);
        let headers = head.headers_mut();
        headers.reserve(3);
        // The type is one of a few constants: no copy of it per response.
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(self.body.len()));
        if let Some(age) = self.max_age {
            let mut value = arrayvec::ArrayString::<24>::new();
            let _ = core::fmt::Write::write_fmt(&mut value, format_args!("max-age={age}"));
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(CACHE_CONTROL, value);
            }
        }
        head
    }

    /// As HTTP/1.1 bytes.
    fn http1(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            self.status,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if let Some(age) = self.max_age {
            out.push_str(&format!("cache-control: max-age={age}\r\n"));
        }
        if !keep_alive {
            out.push_str("connection: close\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// Accept DNS-over-HTTPS connections on one listener until the core ends.
pub(crate) async fn serve_https(
    ctx: Rc<CoreContext>,
    clients: Rc<HttpsClients>,
    listener: TcpListener,
    listener_index: u16,
    config: Arc<ServerConfig>,
    stop: Arc<AtomicBool>,
) {
    loop {
        let (stream, peer) = admit(&ctx, &listener, "HTTPS", &stop, &*clients).await;
        clients.handshaking.set(clients.handshaking.get() + 1);
        glommio::spawn_local(connection(
            Rc::clone(&ctx),
            Rc::clone(&clients),
            stream,
            (peer, listener_index),
            Arc::clone(&config),
            Arc::clone(&stop),
        ))
        .detach();
    }
}

/// One connection: the handshake, then HTTP/2 or HTTP/1.1 by ALPN.
async fn connection(
    ctx: Rc<CoreContext>,
    clients: Rc<HttpsClients>,
    stream: TcpStream,
    client: (SocketAddr, u16),
    config: Arc<ServerConfig>,
    stop: Arc<AtomicBool>,
) {
    let fd = stream.as_raw_fd();
    let settings = clients.settings;
    let tls = accept(stream, config, settings.read_timeout).await;
    clients
        .handshaking
        .set(clients.handshaking.get().saturating_sub(1));
    // A failed handshake dropped (and so closed) the stream.
    let Some(tls) = tls else {
        clients.count(|s| s.handshake_failures += 1);
        return;
    };
    let resumed = u64::from(tls.resumed());
    clients.count(|s| {
        s.handshakes += 1;
        s.resumptions += resumed;
    });
    let id = clients.next_conn.get();
    clients.next_conn.set(id.wrapping_add(1));
    let conn = Conn {
        active: Rc::new(Cell::new(0)),
        last_active: Rc::new(Cell::new(Instant::now())),
    };
    clients.conns.borrow_mut().insert(
        id,
        ConnState {
            fd,
            active: Rc::clone(&conn.active),
            last_active: Rc::clone(&conn.last_active),
        },
    );
    let h2 = tls.connection().alpn_protocol() == Some(ALPN_H2);
    let served = Served {
        ctx,
        clients: Rc::clone(&clients),
        client,
        stop,
        conn,
    };
    // Each ends by dropping the stream, which closes the socket: `fd` is
    // not touched after that (its number may belong to another socket).
    if h2 {
        served.http2(tls).await;
    } else {
        served.http1(tls).await;
    }
    clients.conns.borrow_mut().remove(&id);
}

/// A connection's activity, shared with the table.
#[derive(Clone)]
struct Conn {
    active: Rc<Cell<usize>>,
    last_active: Rc<Cell<Instant>>,
}

impl Conn {
    /// Idle (no request in flight) for longer than `idle`.
    fn idle_for(&self, idle: Duration) -> bool {
        self.active.get() == 0 && self.last_active.get() + idle <= Instant::now()
    }

    /// When to look again at the idle time and the stop flag.
    fn next_look(&self, idle: Duration) -> Instant {
        let idle_end = self.last_active.get() + idle;
        let now = Instant::now();
        if self.active.get() == 0 && idle_end > now {
            idle_end
        } else {
            now + BUSY_POLL
        }
    }
}

/// One connection after its handshake.
struct Served {
    ctx: Rc<CoreContext>,
    clients: Rc<HttpsClients>,
    client: (SocketAddr, u16),
    stop: Arc<AtomicBool>,
    conn: Conn,
}

impl Served {
    /// HTTP/2: requests are taken as they come and each is answered by a
    /// task of its own, while this task drives the connection.
    async fn http2(self, tls: TlsStream<TcpStream>) {
        let settings = self.clients.settings;
        let mut builder = h2::server::Builder::new();
        builder
            .max_concurrent_streams(u32::try_from(settings.max_pipelined).unwrap_or(u32::MAX))
            .max_header_list_size(16 << 10)
            .max_send_buffer_size(MAX_MESSAGE + 1024);
        // Held while the requests already read are answered (below).
        let held = Rc::new(Cell::new(false));
        let handshake =
            builder.handshake::<_, Bytes>(TokioIo(Gathered::new(tls, Rc::clone(&held))));
        let mut h2 = match until(Instant::now() + settings.read_timeout, handshake).await {
            Some(Ok(h2)) => h2,
            Some(Err(err)) => {
                log::debug!("HTTP/2 preface from {}: {err}", self.client.0);
                return;
            }
            None => {
                self.clients.count(|s| s.closed_read_timeout += 1);
                return;
            }
        };
        let mut shutting_down = false;
        // One timer for the idle and stop look, kept across requests and
        // made anew only when it fires, not armed and cancelled for every
        // request.
        let mut look = Box::pin(glommio::timer::sleep(
            self.conn
                .next_look(settings.idle_timeout)
                .saturating_duration_since(Instant::now()),
        ));
        loop {
            // The requests h2 has already read are taken without waiting,
            // and the replies to those answered at once are held, so that
            // they leave together (`Gathered`); only when none is left
            // does the connection flush and wait.
            held.set(true);
            let ready = futures_lite::future::poll_once(h2.accept()).await;
            held.set(false);
            let next = match ready {
                Some(request) => Some(request),
                None => {
                    futures_lite::future::or(async { Some(h2.accept().await) }, async {
                        look.as_mut().await;
                        None
                    })
                    .await
                }
            };
            if next.is_none() {
                look = Box::pin(glommio::timer::sleep(
                    self.conn
                        .next_look(settings.idle_timeout)
                        .saturating_duration_since(Instant::now()),
                ));
            }
            match next {
                None => {
                    if !shutting_down
                        && (self.stop.load(Ordering::Relaxed)
                            || self.conn.idle_for(settings.idle_timeout))
                    {
                        if !self.stop.load(Ordering::Relaxed) {
                            self.clients.count(|s| s.closed_idle += 1);
                        }
                        h2.graceful_shutdown();
                        shutting_down = true;
                    } else if shutting_down && self.conn.active.get() == 0 {
                        break;
                    }
                }
                Some(None) => break,
                Some(Some(Err(err))) => {
                    log::debug!("HTTP/2 from {}: {err}", self.client.0);
                    break;
                }
                Some(Some(Ok((request, respond)))) => {
                    self.conn.active.set(self.conn.active.get() + 1);
                    let mut answer = Box::pin(answer_h2(
                        Rc::clone(&self.ctx),
                        Rc::clone(&self.clients),
                        self.client,
                        self.conn.clone(),
                        (request, respond),
                    ));
                    // A cache hit is answered here, before the next
                    // accept, and no task is made for it: the replies to
                    // every request of one read are held and leave in one
                    // TLS write when none is left (see above). A request
                    // that must wait (a body still to come, an upstream)
                    // goes on as a task
                    // of its own, which polls it again and so takes over
                    // its wake-ups.
                    if futures_lite::future::poll_once(answer.as_mut())
                        .await
                        .is_none()
                    {
                        glommio::spawn_local(answer).detach();
                    }
                }
            }
        }
        // Let the answers already sent leave (bounded).
        let _ = until(
            Instant::now() + settings.read_timeout,
            std::future::poll_fn(|cx| h2.poll_closed(cx)),
        )
        .await;
    }

    /// HTTP/1.1: one request at a time, kept alive until idle.
    async fn http1(self, mut tls: TlsStream<TcpStream>) {
        let settings = self.clients.settings;
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        loop {
            // The head: the first byte within the idle time, the rest (and
            // the body) within the read timeout.
            let head = loop {
                if let Some(parsed) = parse_head(&buf) {
                    break parsed;
                }
                if buf.len() >= MAX_HEAD {
                    break Err(Refusal::TooLarge);
                }
                let deadline = if buf.is_empty() {
                    self.conn.next_look(settings.idle_timeout)
                } else {
                    self.conn.last_active.get() + settings.read_timeout
                };
                let mut chunk = [0u8; 2048];
                match until(deadline, tls.read(&mut chunk)).await {
                    Some(Ok(0)) | Some(Err(_)) => return,
                    Some(Ok(read)) => {
                        if buf.is_empty() {
                            self.conn.last_active.set(Instant::now());
                        }
                        buf.extend_from_slice(chunk.get(..read).unwrap_or_default());
                    }
                    None if buf.is_empty() => {
                        if self.stop.load(Ordering::Relaxed) {
                            return;
                        }
                        if self.conn.idle_for(settings.idle_timeout) {
                            self.clients.count(|s| s.closed_idle += 1);
                            return;
                        }
                    }
                    None => {
                        self.clients.count(|s| s.closed_read_timeout += 1);
                        return;
                    }
                }
            };
            let head = match head {
                Ok(head) => head,
                Err(refusal) => {
                    self.clients.refused(refusal);
                    let bytes = Response::refused(refusal).http1(false);
                    let _ = until(Instant::now() + settings.read_timeout, async {
                        tls.write_all(&bytes).await?;
                        tls.flush().await
                    })
                    .await;
                    return;
                }
            };
            // The body, by content-length.
            let need = head.header_len + head.content_length;
            if head.content_length > MAX_MESSAGE {
                self.clients.refused(Refusal::TooLarge);
                let bytes = Response::refused(Refusal::TooLarge).http1(false);
                let _ = until(Instant::now() + settings.read_timeout, async {
                    tls.write_all(&bytes).await?;
                    tls.flush().await
                })
                .await;
                return;
            }
            while buf.len() < need {
                let deadline = self.conn.last_active.get() + settings.read_timeout;
                let mut chunk = [0u8; 4096];
                match until(deadline, tls.read(&mut chunk)).await {
                    Some(Ok(0)) | Some(Err(_)) => return,
                    Some(Ok(read)) => buf.extend_from_slice(chunk.get(..read).unwrap_or_default()),
                    None => {
                        self.clients.count(|s| s.closed_read_timeout += 1);
                        return;
                    }
                }
            }
            self.conn.active.set(1);
            let request = Request {
                method: &head.method,
                target: &head.target,
                content_type: head.content_type.as_deref(),
                body: buf.get(head.header_len..need).unwrap_or_default(),
            };
            let response = self.clients.respond(&self.ctx, self.client, &request).await;
            let keep_alive = head.keep_alive && !self.stop.load(Ordering::Relaxed);
            let bytes = response.http1(keep_alive);
            let written = until(Instant::now() + settings.idle_timeout, async {
                tls.write_all(&bytes).await?;
                tls.flush().await
            })
            .await;
            self.conn.active.set(0);
            self.conn.last_active.set(Instant::now());
            buf.drain(..need.min(buf.len()));
            if !matches!(written, Some(Ok(()))) || !keep_alive {
                let _ = until(Instant::now() + BUSY_POLL, tls.close()).await;
                return;
            }
        }
    }
}

/// An HTTP/1.1 request head, owned.
struct Head {
    method: String,
    target: String,
    content_type: Option<String>,
    content_length: usize,
    keep_alive: bool,
    header_len: usize,
}

/// The request head at the start of `buf`: `None` while incomplete.
fn parse_head(buf: &[u8]) -> Option<Result<Head, Refusal>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let header_len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return None,
        Err(_) => return Some(Err(Refusal::BadRequest)),
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .and_then(|header| std::str::from_utf8(header.value).ok())
    };
    let content_length = match header("content-length") {
        Some(value) => match value.trim().parse::<usize>() {
            Ok(length) => length,
            Err(_) => return Some(Err(Refusal::BadRequest)),
        },
        None => 0,
    };
    if header("transfer-encoding").is_some() {
        // Chunked bodies are not taken: a DNS query has a known length.
        return Some(Err(Refusal::BadRequest));
    }
    let close = header("connection").is_some_and(|value| value.eq_ignore_ascii_case("close"));
    let keep_alive = request.version == Some(1) && !close;
    let content_type = header("content-type").map(str::to_owned);
    Some(Ok(Head {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        content_type,
        content_length,
        keep_alive,
        header_len,
    }))
}

/// Answer one HTTP/2 request: read its body (bounded), resolve its query,
/// send the response.
async fn answer_h2(
    ctx: Rc<CoreContext>,
    clients: Rc<HttpsClients>,
    client: (SocketAddr, u16),
    conn: Conn,
    (request, mut respond): (
        http::Request<h2::RecvStream>,
        h2::server::SendResponse<Bytes>,
    ),
) {
    let settings = clients.settings;
    let (parts, mut body) = request.into_parts();
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    let mut data = Vec::new();
    let mut too_large = false;
    let deadline = Instant::now() + settings.read_timeout;
    while !body.is_end_stream() {
        // A body that came with its headers is taken without arming the
        // read timer.
        let chunk = match futures_lite::future::poll_once(body.data()).await {
            Some(chunk) => Some(chunk),
            None => until(deadline, body.data()).await,
        };
        match chunk {
            Some(Some(Ok(chunk))) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                if data.len() + chunk.len() > MAX_MESSAGE {
                    too_large = true;
                    break;
                }
                data.extend_from_slice(&chunk);
            }
            Some(None) => break,
            Some(Some(Err(_))) | None => {
                respond.send_reset(h2::Reason::CANCEL);
                finish(&conn);
                return;
            }
        }
    }
    let response = if too_large {
        clients.refused(Refusal::TooLarge);
        Response::refused(Refusal::TooLarge)
    } else {
        let request = Request {
            method: parts.method.as_str(),
            target,
            content_type,
            body: &data,
        };
        clients.respond(&ctx, client, &request).await
    };
    match respond.send_response(response.head(), response.body.is_empty()) {
        Ok(mut stream) if !response.body.is_empty() => {
            let _ = stream.send_data(Bytes::from(response.body), true);
        }
        Ok(_) => {}
        Err(err) => log::debug!("HTTP/2 response to {}: {err}", client.0),
    }
    finish(&conn);
}

/// A request on `conn` is done.
fn finish(conn: &Conn) {
    conn.active.set(conn.active.get().saturating_sub(1));
    conn.last_active.set(Instant::now());
}

impl Admission for HttpsClients {
    fn make_room(&self) -> bool {
        self.make_room_now()
    }

    fn count_refused(&self) {
        self.count(|s| s.refused += 1);
    }

    fn count_accepted(&self) {
        self.count(|s| s.accepted += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> Result<Vec<u8>, Refusal> {
        dns_query(
            &Request {
                method: "GET",
                target,
                content_type: None,
                body: &[],
            },
            "/dns-query",
        )
    }

    #[test]
    fn a_get_carries_its_query_in_base64url() {
        let query =
            heimdall_testkit::messages::query("example.com", heimdall_wire::RecordType::A, 0, None);
        let encoded = data_encoding::BASE64URL_NOPAD.encode(&query);
        assert_eq!(get(&format!("/dns-query?dns={encoded}")), Ok(query.clone()));
        assert_eq!(
            get(&format!("/dns-query?ct=x&dns={encoded}=")),
            Ok(query.clone())
        );
        assert_eq!(get("/dns-query?dns=!!!"), Err(Refusal::BadRequest));
        assert_eq!(get("/dns-query"), Err(Refusal::BadRequest));
        assert_eq!(get("/dns-query?dns=AAAA"), Err(Refusal::BadRequest));
        assert_eq!(
            get(&format!("/other?dns={encoded}")),
            Err(Refusal::NotFound)
        );
    }

    #[test]
    fn a_post_needs_the_dns_media_type_and_a_bounded_body() {
        let query =
            heimdall_testkit::messages::query("example.com", heimdall_wire::RecordType::A, 0, None);
        let post = |content_type: Option<&str>, body: &[u8]| {
            dns_query(
                &Request {
                    method: "POST",
                    target: "/dns-query",
                    content_type,
                    body,
                },
                "/dns-query",
            )
        };
        assert_eq!(post(Some(DNS_MESSAGE), &query), Ok(query.clone()));
        assert_eq!(
            post(Some("Application/DNS-Message; charset=x"), &query),
            Ok(query.clone())
        );
        assert_eq!(post(Some("text/plain"), &query), Err(Refusal::BadMediaType));
        assert_eq!(post(None, &query), Err(Refusal::BadMediaType));
        assert_eq!(
            post(Some(DNS_MESSAGE), &vec![0u8; MAX_MESSAGE + 1]),
            Err(Refusal::TooLarge)
        );
        let put = dns_query(
            &Request {
                method: "PUT",
                target: "/dns-query",
                content_type: Some(DNS_MESSAGE),
                body: &query,
            },
            "/dns-query",
        );
        assert_eq!(put, Err(Refusal::BadMethod));
    }

    #[test]
    fn an_http1_head_is_read_when_whole() {
        let text = b"POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Type: application/dns-message\r\nContent-Length: 33\r\n\r\n";
        assert!(parse_head(&text[..20]).is_none());
        let Some(Ok(head)) = parse_head(text) else {
            panic!("not parsed");
        };
        assert_eq!(head.method, "POST");
        assert_eq!(head.content_length, 33);
        assert_eq!(head.header_len, text.len());
        assert!(head.keep_alive);
        assert!(matches!(
            parse_head(b"\x16\x03\x01garbage\r\n\r\n"),
            Some(Err(Refusal::BadRequest))
        ));
    }
}
