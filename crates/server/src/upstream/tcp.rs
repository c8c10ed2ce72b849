//! DNS over TCP, and over TLS (RFC 7858), to upstreams: one pipelined
//! connection per upstream per core, opened on demand (for `tcp` and
//! `tls` upstreams, and for queries whose UDP answer was truncated).
//! Queries go out as they are queued; replies are handed to the resolver,
//! which matches them as for UDP (address, ID, question). A connection is
//! closed after `tcp.idle_timeout` without a query, or on any error;
//! queries lost with it are retried by the resolver's deadlines. Two
//! tables of this one type run per core: the plain one and the TLS one,
//! whose connections begin with the handshake of `upstream::tls` and,
//! after a failed connection or handshake, wait out a backoff before the
//! next (queries meanwhile are dropped, counted, and time out into the
//! resolver's failover).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::io::{
    AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader, ReadHalf,
};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use heimdall_dnstap::SocketProtocol;
use heimdall_resolver::{AttemptId, ReplySource, UpstreamTransport};

use crate::batch::shutdown_socket;
use crate::context::{CoreContext, SendFailed, UpstreamSend};
use crate::stats::{TcpStats, UpstreamTlsStats};
use crate::stream::{Extras, Gather, frame, until};
use crate::upstream::tls::{Alpn, Backoff, TlsUpstreamSetup};

/// Frames queued to one upstream connection before new ones are refused.
const UPSTREAM_QUEUE: usize = 1024;
/// Read buffer of an upstream connection: whole large answers.
const UPSTREAM_READ_BUFFER: usize = 16 << 10;

/// The settings of upstream connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpUpstreamSettings {
    /// Close a connection without a query for this long (`tcp.idle_timeout`).
    pub(crate) idle_timeout: Duration,
    /// How long to wait for a connection to open, or a write to finish
    /// (`upstream.timeout`).
    pub(crate) connect_timeout: Duration,
}

/// An upstream connection's generation and its query queue.
type UpstreamConn = (u64, LocalSender<Vec<u8>>);

/// One core's upstream TCP connections.
pub(crate) struct TcpUpstreams {
    inner: Rc<Inner>,
}

struct Inner {
    settings: TcpUpstreamSettings,
    /// TLS: the client configuration, and each upstream's backoff.
    tls: Option<TlsUpstreamSetup>,
    conns: RefCell<HashMap<SocketAddr, UpstreamConn>>,
    next_generation: Cell<u64>,
    stats: Cell<TcpStats>,
    handshake_failures: Cell<u64>,
    resumptions: Cell<u64>,
    backoff: RefCell<HashMap<SocketAddr, Backoff>>,
}

impl TcpUpstreams {
    /// Plain TCP connections.
    pub(crate) fn new(settings: TcpUpstreamSettings) -> Self {
        Self::with_tls(settings, None)
    }

    /// TLS connections (with `Some`), or plain ones.
    pub(crate) fn with_tls(settings: TcpUpstreamSettings, tls: Option<TlsUpstreamSetup>) -> Self {
        Self {
            inner: Rc::new(Inner {
                settings,
                tls,
                conns: RefCell::new(HashMap::new()),
                next_generation: Cell::new(0),
                stats: Cell::new(TcpStats::default()),
                handshake_failures: Cell::new(0),
                resumptions: Cell::new(0),
                backoff: RefCell::new(HashMap::new()),
            }),
        }
    }

    /// The upstream side's counters.
    pub(crate) fn stats(&self) -> TcpStats {
        self.inner.stats.get()
    }

    /// The counters of a TLS table.
    pub(crate) fn tls_stats(&self) -> UpstreamTlsStats {
        let stats = self.inner.stats.get();
        UpstreamTlsStats {
            connects: stats.upstream_connects,
            errors: stats.upstream_errors,
            handshake_failures: self.inner.handshake_failures.get(),
            resumptions: self.inner.resumptions.get(),
        }
    }
}

impl UpstreamSend for TcpUpstreams {
    fn tcp_stats(&self) -> Option<TcpStats> {
        self.inner.tls.is_none().then(|| self.stats())
    }

    fn upstream_tls_stats(&self) -> Option<UpstreamTlsStats> {
        self.inner.tls.is_some().then(|| self.tls_stats())
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
        let frame = frame(query, Extras::NONE);
        let mut conns = inner.conns.borrow_mut();
        if let Some((_, sender)) = conns.get(&to) {
            if sender.try_send(frame).is_err() {
                inner.count(|s| s.upstream_errors += 1);
            }
            return Ok(());
        }
        if inner
            .backoff
            .borrow()
            .get(&to)
            .is_some_and(|backoff| backoff.waiting(Instant::now()))
        {
            // The last connection failed a moment ago: no new one yet.
            // The query times out and the resolver fails over.
            inner.count(|s| s.upstream_errors += 1);
            return Ok(());
        }
        let (sender, receiver) = local_channel::new_bounded(UPSTREAM_QUEUE);
        let _ = sender.try_send(frame);
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

impl Inner {
    fn count(&self, update: impl FnOnce(&mut TcpStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    /// How replies on these connections reached us.
    fn transport(&self) -> UpstreamTransport {
        if self.tls.is_some() {
            UpstreamTransport::Tls
        } else {
            UpstreamTransport::Tcp
        }
    }

    fn protocol(&self) -> SocketProtocol {
        if self.tls.is_some() {
            SocketProtocol::Dot
        } else {
            SocketProtocol::Tcp
        }
    }

    /// A connection to `to` failed before it carried anything: back off
    /// (TLS tables only).
    fn failed(&self, to: SocketAddr) {
        if self.tls.is_some() {
            self.backoff
                .borrow_mut()
                .entry(to)
                .or_default()
                .failed(Instant::now());
        }
    }

    fn forget(&self, to: SocketAddr, generation: u64) {
        let mut conns = self.conns.borrow_mut();
        if conns.get(&to).is_some_and(|(g, _)| *g == generation) {
            conns.remove(&to);
        }
    }
}

/// One pipelined connection to an upstream: connect (and for TLS, the
/// handshake), then the writer runs here and the reader in its own task.
async fn connection(
    ctx: Rc<CoreContext>,
    inner: Rc<Inner>,
    to: SocketAddr,
    generation: u64,
    queue: LocalReceiver<Vec<u8>>,
) {
    let settings = inner.settings;
    let stream = match TcpStream::connect_timeout(to, settings.connect_timeout).await {
        Ok(stream) => stream,
        Err(err) => {
            log::debug!("core {}: TCP connect to {to}: {err}", ctx.index());
            inner.count(|s| s.upstream_errors += 1);
            inner.failed(to);
            inner.forget(to, generation);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let local = ctx.forwarding_tap().and_then(|_| stream.local_addr().ok());
    let Some(tls) = &inner.tls else {
        inner.count(|s| s.upstream_connects += 1);
        serve(&ctx, &inner, (to, local, fd), generation, queue, stream).await;
        return;
    };
    let deadline = Instant::now() + settings.connect_timeout;
    match until(deadline, tls.handshake(Alpn::Dot, &ctx, stream, to)).await {
        Some(Ok(stream)) => {
            if stream.resumed() {
                inner.resumptions.set(inner.resumptions.get() + 1);
            }
            inner.backoff.borrow_mut().remove(&to);
            inner.count(|s| s.upstream_connects += 1);
            serve(&ctx, &inner, (to, local, fd), generation, queue, stream).await;
        }
        outcome => {
            let reason = match outcome {
                Some(Err(err)) => err.to_string(),
                _ => "no answer within upstream.timeout".to_string(),
            };
            log::warn!(
                "core {}: TLS handshake with upstream {to} failed: {reason}",
                ctx.index()
            );
            inner
                .handshake_failures
                .set(inner.handshake_failures.get() + 1);
            inner.failed(to);
            inner.forget(to, generation);
            // The stream was dropped with the handshake: closed.
        }
    }
}

/// Write the queued queries to an open connection until it idles out or
/// fails; the reader runs in its own task.
async fn serve<S>(
    ctx: &Rc<CoreContext>,
    inner: &Rc<Inner>,
    (to, local, fd): (SocketAddr, Option<SocketAddr>, std::os::fd::RawFd),
    generation: u64,
    queue: LocalReceiver<Vec<u8>>,
    stream: S,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let settings = inner.settings;
    let (read_half, mut write_half) = futures_lite::io::split(stream);
    let reader = glommio::spawn_local(read_replies(
        Rc::clone(ctx),
        Rc::clone(inner),
        (to, local),
        generation,
        read_half,
    ));
    // The queries already queued go in one write (one send, one TLS
    // record): a batch of misses to this upstream.
    let mut gathered = Gather::default();
    loop {
        let next = until(Instant::now() + settings.idle_timeout, queue.recv()).await;
        let Some(Some(frame)) = next else {
            break;
        };
        gathered.take(frame, &queue, drop).await;
        let deadline = Instant::now() + settings.connect_timeout;
        let written = until(deadline, async {
            write_half.write_all(gathered.bytes()).await?;
            write_half.flush().await
        })
        .await;
        if !matches!(written, Some(Ok(()))) {
            inner.count(|s| s.upstream_errors += 1);
            break;
        }
        // Logged once sent, as each query was before they were gathered.
        if let Some(tap) = ctx.forwarding_tap() {
            for query in gathered.messages() {
                tap.forwarder_query(inner.protocol(), local, to, query);
            }
        }
    }
    // New queries open a new connection from now on.
    inner.forget(to, generation);
    let _ = until(
        Instant::now() + Duration::from_millis(100),
        write_half.close(),
    )
    .await;
    shutdown_socket(fd);
    reader.await;
}

/// Hand each reply on the connection to the resolver, until the upstream
/// closes (or breaks) it.
async fn read_replies<S: AsyncRead + Unpin>(
    ctx: Rc<CoreContext>,
    inner: Rc<Inner>,
    (to, local): (SocketAddr, Option<SocketAddr>),
    generation: u64,
    read_half: ReadHalf<S>,
) {
    let mut reader = BufReader::with_capacity(UPSTREAM_READ_BUFFER, read_half);
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let mut prefix = [0u8; 2];
        if reader.read_exact(&mut prefix).await.is_err() {
            break;
        }
        let len = usize::from(u16::from_be_bytes(prefix));
        let Some(message) = buf.get_mut(..len) else {
            break;
        };
        if reader.read_exact(message).await.is_err() {
            break;
        }
        if let Some(tap) = ctx.forwarding_tap() {
            tap.forwarder_response(inner.protocol(), local, to, message);
        }
        // Replies share the connection: matched by ID, not by attempt.
        let source = ReplySource {
            from: to,
            transport: inner.transport(),
            attempt: None,
        };
        ctx.upstream_reply(source, message);
    }
    // New queries open a new connection, and dropping the queue's sender
    // ends the writer.
    inner.forget(to, generation);
}
