//! DNS over TCP to upstreams: one pipelined connection per upstream per
//! core, opened on demand for queries whose UDP answer was truncated.
//! Queries go out as they are queued; replies are handed to the resolver,
//! which matches them as for UDP (address, ID, question). A connection is
//! closed after `tcp.idle_timeout` without a query, or on any error;
//! queries lost with it are retried by the resolver's deadlines.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader, ReadHalf};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use heimdall_dnstap::SocketProtocol;
use heimdall_resolver::{AttemptId, ReplySource, UpstreamTransport};

use crate::batch::shutdown_socket;
use crate::context::{CoreContext, SendFailed, UpstreamSend};
use crate::stats::TcpStats;
use crate::stream::{frame, until};

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
    conns: RefCell<HashMap<SocketAddr, UpstreamConn>>,
    next_generation: Cell<u64>,
    stats: Cell<TcpStats>,
}

impl TcpUpstreams {
    pub(crate) fn new(settings: TcpUpstreamSettings) -> Self {
        Self {
            inner: Rc::new(Inner {
                settings,
                conns: RefCell::new(HashMap::new()),
                next_generation: Cell::new(0),
                stats: Cell::new(TcpStats::default()),
            }),
        }
    }

    /// The upstream side's counters.
    pub(crate) fn stats(&self) -> TcpStats {
        self.inner.stats.get()
    }
}

impl UpstreamSend for TcpUpstreams {
    fn tcp_stats(&self) -> Option<TcpStats> {
        Some(self.stats())
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
        let frame = frame(query, None);
        let mut conns = inner.conns.borrow_mut();
        if let Some((_, sender)) = conns.get(&to) {
            if sender.try_send(frame).is_err() {
                inner.count(|s| s.upstream_errors += 1);
            }
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

    fn forget(&self, to: SocketAddr, generation: u64) {
        let mut conns = self.conns.borrow_mut();
        if conns.get(&to).is_some_and(|(g, _)| *g == generation) {
            conns.remove(&to);
        }
    }
}

/// One pipelined connection to an upstream: the writer runs here, the
/// reader in its own task.
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
            inner.forget(to, generation);
            return;
        }
    };
    inner.count(|s| s.upstream_connects += 1);
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let local = ctx.forwarding_tap().and_then(|_| stream.local_addr().ok());
    let (read_half, mut write_half) = futures_lite::io::split(stream);
    let reader = glommio::spawn_local(read_replies(
        Rc::clone(&ctx),
        Rc::clone(&inner),
        (to, local),
        generation,
        read_half,
    ));
    loop {
        let next = until(Instant::now() + settings.idle_timeout, queue.recv()).await;
        let Some(Some(frame)) = next else {
            break;
        };
        let deadline = Instant::now() + settings.connect_timeout;
        if !matches!(
            until(deadline, write_half.write_all(&frame)).await,
            Some(Ok(()))
        ) {
            inner.count(|s| s.upstream_errors += 1);
            break;
        }
        if let Some(tap) = ctx.forwarding_tap()
            && let Some(query) = frame.get(2..)
        {
            tap.forwarder_query(SocketProtocol::Tcp, local, to, query);
        }
    }
    // New queries open a new connection from now on.
    inner.forget(to, generation);
    shutdown_socket(fd);
    reader.await;
}

/// Hand each reply on the connection to the resolver, until the upstream
/// closes (or breaks) it.
async fn read_replies(
    ctx: Rc<CoreContext>,
    inner: Rc<Inner>,
    (to, local): (SocketAddr, Option<SocketAddr>),
    generation: u64,
    read_half: ReadHalf<TcpStream>,
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
            tap.forwarder_response(SocketProtocol::Tcp, local, to, message);
        }
        // Replies share the connection: matched by ID, not by attempt.
        let source = ReplySource {
            from: to,
            transport: UpstreamTransport::Tcp,
            attempt: None,
        };
        ctx.upstream_reply(source, message);
    }
    // New queries open a new connection, and dropping the queue's sender
    // ends the writer.
    inner.forget(to, generation);
}
