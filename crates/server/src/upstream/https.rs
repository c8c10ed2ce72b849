//! DNS over HTTPS (RFC 8484) to upstreams: one HTTP/2 connection per
//! upstream per core (TLS with ALPN `h2`, the certificate checked for the
//! upstream's `name` as for `tls`), opened on demand, kept while queries
//! come and closed after `tcp.idle_timeout` without one. Each query is a
//! `POST` to `/dns-query` (or the upstream's `path`) of
//! `application/dns-message` on a stream of its own
//! (HTTP/2 multiplexes them), and each `200` body is handed to the
//! resolver, which matches it by ID and question like any reply. A failed
//! connect or handshake is counted with the TLS upstream counters and
//! backs the upstream off (queries meanwhile time out and fail over); a
//! request that fails or gets another status is dropped (counted) and its
//! query times out.
//!
//! h2's client runs like its server here: over `tls::TokioIo`, driven by
//! a glommio task of its own, with no tokio runtime.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use heimdall_dnstap::SocketProtocol;
use heimdall_resolver::{AttemptId, ReplySource, UpstreamTransport};

use crate::context::{CoreContext, SendFailed, UpstreamSend};
use crate::stats::UpstreamTlsStats;
use crate::stream::until;
use crate::tls::{ALPN_H2, TokioIo};
use crate::upstream::tcp::TcpUpstreamSettings;
use crate::upstream::tls::{Alpn, Backoff, TlsUpstreamSetup};

/// Queries queued to one upstream connection before new ones are refused.
const UPSTREAM_QUEUE: usize = 1024;
/// The largest reply body taken.
const MAX_MESSAGE: usize = 65_535;
/// The path queries are posted to unless the upstream names its own
/// (`path`): RFC 8484's, which public resolvers serve.
const PATH: &str = "/dns-query";
/// The media type of a DNS message.
const DNS_MESSAGE: &str = "application/dns-message";

/// A connection's generation and its query queue.
type UpstreamConn = (u64, LocalSender<Vec<u8>>);

/// One core's DNS-over-HTTPS upstream connections.
pub(crate) struct HttpsUpstreams {
    inner: Rc<Inner>,
}

struct Inner {
    settings: TcpUpstreamSettings,
    tls: Option<TlsUpstreamSetup>,
    conns: RefCell<HashMap<SocketAddr, UpstreamConn>>,
    next_generation: Cell<u64>,
    backoff: RefCell<HashMap<SocketAddr, Backoff>>,
    stats: Cell<UpstreamTlsStats>,
}

impl HttpsUpstreams {
    pub(crate) fn new(settings: TcpUpstreamSettings, tls: Option<TlsUpstreamSetup>) -> Self {
        Self {
            inner: Rc::new(Inner {
                settings,
                tls,
                conns: RefCell::new(HashMap::new()),
                next_generation: Cell::new(0),
                backoff: RefCell::new(HashMap::new()),
                stats: Cell::new(UpstreamTlsStats::default()),
            }),
        }
    }
}

impl Inner {
    fn count(&self, update: impl FnOnce(&mut UpstreamTlsStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    fn forget(&self, to: SocketAddr, generation: u64) {
        let mut conns = self.conns.borrow_mut();
        if conns.get(&to).is_some_and(|(g, _)| *g == generation) {
            conns.remove(&to);
        }
    }

    fn failed(&self, to: SocketAddr) {
        self.backoff
            .borrow_mut()
            .entry(to)
            .or_default()
            .failed(Instant::now());
    }
}

impl UpstreamSend for HttpsUpstreams {
    fn upstream_tls_stats(&self) -> Option<UpstreamTlsStats> {
        Some(self.inner.stats.get())
    }

    /// Queue `query` to upstream `to`, opening a connection if there is
    /// none. A failure is counted here and left to the resolver's deadline.
    fn send(
        &self,
        ctx: &Rc<CoreContext>,
        _attempt: AttemptId,
        to: SocketAddr,
        query: &[u8],
    ) -> Result<(), SendFailed> {
        let inner = &self.inner;
        let mut conns = inner.conns.borrow_mut();
        if let Some((_, sender)) = conns.get(&to) {
            if sender.try_send(query.to_vec()).is_err() {
                inner.count(|s| s.errors += 1);
            }
            return Ok(());
        }
        let waiting = inner
            .backoff
            .borrow()
            .get(&to)
            .is_some_and(|backoff| backoff.waiting(Instant::now()));
        if waiting || inner.tls.is_none() {
            inner.count(|s| s.errors += 1);
            return Ok(());
        }
        let (sender, receiver) = local_channel::new_bounded(UPSTREAM_QUEUE);
        let _ = sender.try_send(query.to_vec());
        let generation = inner.next_generation.get().wrapping_add(1);
        inner.next_generation.set(generation);
        conns.insert(to, (generation, sender));
        glommio::spawn_local(connection(
            Rc::clone(ctx),
            Rc::clone(inner),
            to,
            generation,
            receiver,
        ))
        .detach();
        Ok(())
    }
}

/// One HTTP/2 connection to an upstream: connect, TLS, the HTTP/2
/// preface; then each queued query is posted on a stream of its own.
async fn connection(
    ctx: Rc<CoreContext>,
    inner: Rc<Inner>,
    to: SocketAddr,
    generation: u64,
    queue: LocalReceiver<Vec<u8>>,
) {
    let settings = inner.settings;
    let Some(tls) = &inner.tls else {
        inner.forget(to, generation);
        return;
    };
    let opened = until(Instant::now() + settings.connect_timeout, async {
        let stream = TcpStream::connect_timeout(to, settings.connect_timeout)
            .await
            .map_err(|err| (false, err.to_string()))?;
        let _ = stream.set_nodelay(true);
        let stream = tls
            .handshake(Alpn::H2, &ctx, stream, to)
            .await
            .map_err(|err| (true, err.to_string()))?;
        if stream.resumed() {
            inner.count(|s| s.resumptions += 1);
        }
        if stream.connection().alpn_protocol() != Some(ALPN_H2) {
            return Err((
                true,
                "the server did not agree to HTTP/2 (ALPN h2)".to_string(),
            ));
        }
        h2::client::Builder::new()
            .max_send_buffer_size(MAX_MESSAGE + 1024)
            .handshake::<_, Bytes>(TokioIo(stream))
            .await
            .map_err(|err| (true, format!("HTTP/2: {err}")))
    })
    .await;
    let (send_request, driver) = match opened {
        Some(Ok(pair)) => pair,
        failure => {
            let (handshake, reason) = match failure {
                Some(Err(failure)) => failure,
                _ => (true, "no answer within upstream.timeout".to_string()),
            };
            log::warn!(
                "core {}: HTTPS connection to upstream {to} failed: {reason}",
                ctx.index()
            );
            inner.count(|s| {
                if handshake {
                    s.handshake_failures += 1;
                } else {
                    s.errors += 1;
                }
            });
            inner.failed(to);
            inner.forget(to, generation);
            return;
        }
    };
    inner.backoff.borrow_mut().remove(&to);
    inner.count(|s| s.connects += 1);
    // The connection task: h2 needs it polled to move any stream.
    let closed = Rc::new(Cell::new(false));
    let driving = {
        let closed = Rc::clone(&closed);
        glommio::spawn_local(async move {
            if let Err(err) = driver.await {
                log::debug!("HTTP/2 connection to {to}: {err}");
            }
            closed.set(true);
        })
    };
    let authority = ctx.upstream_name(to).unwrap_or_else(|| to.to_string());
    // Read when the connection opens: a reload that changes the path
    // reaches the next connection.
    let path = ctx.upstream_path(to);
    let uri = format!("https://{authority}{}", path.as_deref().unwrap_or(PATH));
    let local = None;
    loop {
        let next = until(Instant::now() + settings.idle_timeout, queue.recv()).await;
        let Some(Some(query)) = next else {
            break;
        };
        if closed.get() {
            inner.count(|s| s.errors += 1);
            break;
        }
        let sender = send_request.clone();
        let ready = until(Instant::now() + settings.connect_timeout, sender.ready()).await;
        let Some(Ok(mut sender)) = ready else {
            inner.count(|s| s.errors += 1);
            break;
        };
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri.as_str())
            .header(http::header::CONTENT_TYPE, DNS_MESSAGE)
            .header(http::header::ACCEPT, DNS_MESSAGE)
            .header(http::header::CONTENT_LENGTH, query.len())
            .body(());
        let Ok(request) = request else {
            inner.count(|s| s.errors += 1);
            continue;
        };
        let sent = sender
            .send_request(request, false)
            .and_then(|(response, mut body)| {
                body.send_data(Bytes::from(query.clone()), true)
                    .map(|()| response)
            });
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                log::debug!("HTTP/2 request to {to}: {err}");
                inner.count(|s| s.errors += 1);
                break;
            }
        };
        if let Some(tap) = ctx.forwarding_tap() {
            tap.forwarder_query(SocketProtocol::Doh, local, to, &query);
        }
        glommio::spawn_local(read_reply(
            Rc::clone(&ctx),
            Rc::clone(&inner),
            to,
            response,
            settings.idle_timeout,
        ))
        .detach();
    }
    inner.forget(to, generation);
    // Dropping the request handle lets h2 end the connection once the
    // streams in flight are done; the driver ends with it (bounded).
    drop(send_request);
    let _ = until(Instant::now() + settings.connect_timeout, driving).await;
}

/// Wait for one response (at most `limit`) and hand a `200` body to the
/// resolver.
async fn read_reply(
    ctx: Rc<CoreContext>,
    inner: Rc<Inner>,
    to: SocketAddr,
    response: h2::client::ResponseFuture,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let Some(Ok(response)) = until(deadline, response).await else {
        inner.count(|s| s.errors += 1);
        return;
    };
    if response.status() != http::StatusCode::OK {
        log::debug!("DoH upstream {to} answered {}", response.status());
        inner.count(|s| s.errors += 1);
        return;
    }
    let mut body = response.into_body();
    let mut reply = Vec::new();
    while !body.is_end_stream() {
        match until(deadline, body.data()).await {
            Some(Some(Ok(chunk))) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                if reply.len() + chunk.len() > MAX_MESSAGE {
                    inner.count(|s| s.errors += 1);
                    return;
                }
                reply.extend_from_slice(&chunk);
            }
            Some(None) => break,
            Some(Some(Err(_))) | None => {
                inner.count(|s| s.errors += 1);
                return;
            }
        }
    }
    if let Some(tap) = ctx.forwarding_tap() {
        tap.forwarder_response(SocketProtocol::Doh, None, to, &reply);
    }
    let source = ReplySource {
        from: to,
        transport: UpstreamTransport::Https,
        attempt: None,
    };
    ctx.upstream_reply(source, &reply);
}
