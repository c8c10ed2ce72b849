//! Client connections over a byte stream, shared by DNS over TCP
//! (RFC 7766, `transport::tcp`) and DNS over TLS (RFC 7858,
//! `transport::tls`): [`StreamClients`], the table of open connections
//! through which replies find their connection, and the reader and
//! writer tasks of one connection. The transports own their listeners
//! and hand each accepted stream (plain, or TLS after its handshake) to
//! [`client_connection`]. (Upstream TCP is `upstream::tcp`; the framing
//! both share is `stream`.)
//!
//! A client connection is two tasks: a reader that frames queries (2-byte
//! length prefix) and hands them to the core's resolver, and a writer that
//! sends replies as they complete, in any order. Replies reach the writer
//! through a bounded local channel; the connection table maps the
//! resolver's `Transport::Tcp(id)` (or `Tls(id)`) to that channel, so
//! replies to queries that waited on an upstream find their connection. A
//! semaphore of `tcp.max_pipelined` permits bounds the queries outstanding
//! per connection, so the channel can never be full.
//!
//! Limits: a connection with nothing outstanding is closed after
//! `tcp.idle_timeout`; a message that has begun must be complete within
//! `tcp.read_timeout`; at most `tcp.max_connections` per core (TLS
//! connections still in their handshake count), and when a new one would
//! exceed that, the oldest idle connection is closed (or, if none is
//! idle, the new one). Replies over TLS carry EDNS padding (RFC 8467).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_lite::io::{
    AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader, ReadHalf, WriteHalf,
};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::sync::Semaphore;
use heimdall_resolver::{ClientId, Transport};

use crate::batch::shutdown_socket;
use crate::context::{Answered, ClientReplies, CoreContext, SendFailed};
use crate::stats::{TcpStats, TlsStats};
use crate::stream::{Extras, Gather, asks_keepalive, frame_into, until};

/// How often a busy connection past its idle time looks again.
const BUSY_POLL: Duration = Duration::from_millis(100);
/// Read buffer of a client connection: several pipelined queries.
const CLIENT_READ_BUFFER: usize = 2048;
/// Reply frames a connection keeps for reuse: at most this many, of at
/// most this capacity each (others are freed after use), so an idle
/// connection holds no more than its read buffer's worth again.
const SPARE_FRAMES: usize = 4;
const SPARE_FRAME_CAPACITY: usize = 512;

/// Which stream transport a table serves: how its connections are named
/// to the resolver, and whether replies are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// DNS over TCP.
    Tcp,
    /// DNS over TLS: replies padded (RFC 8467).
    Tls,
}

impl StreamKind {
    /// The resolver's name for connection `id`.
    pub(crate) fn transport(self, id: u32) -> Transport {
        match self {
            StreamKind::Tcp => Transport::Tcp(id),
            StreamKind::Tls => Transport::Tls(id),
        }
    }

    /// The connection a client of this kind is on.
    fn id(self, transport: Transport) -> Option<u32> {
        match (self, transport) {
            (StreamKind::Tcp, Transport::Tcp(id)) | (StreamKind::Tls, Transport::Tls(id)) => {
                Some(id)
            }
            _ => None,
        }
    }
}

/// The `tcp:` settings of client connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpSettings {
    pub(crate) idle_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_pipelined: usize,
}

/// Reply frames a connection's writer has finished with, for `deliver` to
/// fill again: once warm, a connection's replies allocate nothing.
type SpareFrames = Rc<RefCell<Vec<Vec<u8>>>>;

/// What a connection's reader, its writer and the table share.
struct Shared {
    permits: Rc<Semaphore>,
    /// A message has begun arriving (so the connection is not idle).
    reading: Rc<Cell<bool>>,
    last_active: Rc<Cell<Instant>>,
    /// The client sent edns-tcp-keepalive: our replies carry it too.
    keepalive: Rc<Cell<bool>>,
}

struct Conn {
    replies: LocalSender<Vec<u8>>,
    spare: SpareFrames,
    fd: RawFd,
    shared: Shared,
}

/// One core's client connections of one stream transport.
pub(crate) struct StreamClients {
    kind: StreamKind,
    settings: TcpSettings,
    conns: RefCell<HashMap<u32, Conn>>,
    next_conn: Cell<u32>,
    /// TLS connections accepted and still in their handshake: they count
    /// against `tcp.max_connections` too.
    handshaking: Cell<usize>,
    stats: Cell<TcpStats>,
    /// TLS handshakes done, failed and resumed (a TLS table only).
    handshakes: Cell<(u64, u64, u64)>,
}

impl StreamClients {
    pub(crate) fn new(kind: StreamKind, settings: TcpSettings) -> Self {
        Self {
            kind,
            settings,
            conns: RefCell::new(HashMap::new()),
            next_conn: Cell::new(0),
            handshaking: Cell::new(0),
            stats: Cell::new(TcpStats::default()),
            handshakes: Cell::new((0, 0, 0)),
        }
    }

    /// The settings its connections run with.
    pub(crate) fn settings(&self) -> TcpSettings {
        self.settings
    }

    pub(crate) fn count(&self, update: impl FnOnce(&mut TcpStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    /// The client side's counters.
    pub(crate) fn stats(&self) -> TcpStats {
        self.stats.get()
    }

    /// Client connections open on this core (handshakes included).
    pub(crate) fn connections(&self) -> usize {
        self.conns.borrow().len() + self.handshaking.get()
    }

    /// The name of the next connection.
    pub(crate) fn next_id(&self) -> u32 {
        let id = self.next_conn.get();
        self.next_conn.set(id.wrapping_add(1));
        id
    }

    /// A TLS handshake began: it holds a place in the table until
    /// [`StreamClients::handshake_ended`].
    pub(crate) fn handshake_began(&self) {
        self.handshaking.set(self.handshaking.get() + 1);
    }

    /// A handshake ended: done (`Some`, with whether it resumed a
    /// session) or failed.
    pub(crate) fn handshake_ended(&self, done: Option<bool>) {
        self.handshaking
            .set(self.handshaking.get().saturating_sub(1));
        let (done_count, failed, resumed) = self.handshakes.get();
        self.handshakes.set(match done {
            Some(resumption) => (done_count + 1, failed, resumed + u64::from(resumption)),
            None => (done_count, failed + 1, resumed),
        });
    }

    /// The counters in the TLS model (a TLS table).
    pub(crate) fn tls_counters(&self) -> TlsStats {
        TlsStats::from_stream(self.stats(), self.handshakes.get())
    }

    /// The RFC 7828 timeout we advertise, in units of 100 ms.
    fn keepalive_units(&self) -> u16 {
        u16::try_from(self.settings.idle_timeout.as_millis() / 100).unwrap_or(u16::MAX)
    }

    /// Queue a reply for connection `id`; false if the connection is gone.
    fn deliver(&self, id: u32, reply: &[u8]) -> bool {
        let conns = self.conns.borrow();
        let Some(conn) = conns.get(&id) else {
            self.count(|s| s.replies_orphaned += 1);
            return false;
        };
        let mut out = conn.spare.borrow_mut().pop().unwrap_or_default();
        let extras = Extras {
            keepalive: conn.shared.keepalive.get().then(|| self.keepalive_units()),
            pad: self.kind == StreamKind::Tls,
        };
        frame_into(&mut out, reply, extras);
        if conn.replies.try_send(out).is_err() {
            // Cannot happen while permits bound the queue; give the permit
            // back so the connection does not stall.
            conn.shared.permits.signal(1);
            self.count(|s| s.replies_orphaned += 1);
        }
        true
    }

    /// Make room for one more connection: close the oldest idle one. False
    /// when every connection is busy.
    pub(crate) fn make_room(&self) -> bool {
        let mut conns = self.conns.borrow_mut();
        if conns.len() + self.handshaking.get() < self.settings.max_connections {
            return true;
        }
        let all_permits = self.settings.max_pipelined as u64;
        let oldest_idle = conns
            .iter()
            .filter(|(_, conn)| {
                !conn.shared.reading.get() && conn.shared.permits.available() >= all_permits
            })
            .min_by_key(|(_, conn)| conn.shared.last_active.get())
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
}

impl ClientReplies for StreamClients {
    fn tcp_stats(&self) -> Option<(TcpStats, usize)> {
        (self.kind == StreamKind::Tcp).then(|| (self.stats(), self.connections()))
    }

    fn tls_stats(&self) -> Option<(TlsStats, usize)> {
        (self.kind == StreamKind::Tls).then(|| (self.tls_counters(), self.connections()))
    }

    fn reply(&self, client: &ClientId, reply: &[u8]) -> Result<(), SendFailed> {
        if let Some(id) = self.kind.id(client.transport) {
            // A connection that is gone is counted by `deliver`.
            let _ = self.deliver(id, reply);
        }
        Ok(())
    }
}

/// Why a client connection ended.
enum End {
    Closed,
    /// End of stream, idle timeout or shutdown: outstanding answers go out first.
    Finished,
    ReadTimeout,
}

/// One client connection on `stream` (a TCP stream, or TLS over one,
/// whose socket is `fd`): the reader runs here, the writer in its own
/// task.
pub(crate) async fn client_connection<S>(
    ctx: Rc<CoreContext>,
    clients: Rc<StreamClients>,
    (stream, fd): (S, RawFd),
    client: ClientId,
    stop: Arc<AtomicBool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let Some(id) = clients.kind.id(client.transport) else {
        return;
    };
    let settings = clients.settings;
    let (replies, queue) = local_channel::new_bounded(settings.max_pipelined);
    let shared = Shared {
        permits: Rc::new(Semaphore::new(settings.max_pipelined as u64)),
        reading: Rc::new(Cell::new(false)),
        last_active: Rc::new(Cell::new(Instant::now())),
        keepalive: Rc::new(Cell::new(false)),
    };
    let permits = Rc::clone(&shared.permits);
    let last_active = Rc::clone(&shared.last_active);
    let spare = SpareFrames::default();
    clients.conns.borrow_mut().insert(
        id,
        Conn {
            replies,
            spare: Rc::clone(&spare),
            fd,
            shared: shared.clone_handles(),
        },
    );
    let (read_half, write_half) = futures_lite::io::split(stream);
    let writer = glommio::spawn_local(write_replies(
        write_half,
        queue,
        spare,
        Rc::clone(&permits),
        last_active,
        settings.idle_timeout,
        fd,
    ));
    let mut reader = Reader {
        stream: BufReader::with_capacity(CLIENT_READ_BUFFER, read_half),
        query: Vec::new(),
        settings,
        shared,
    };
    let end = loop {
        let len = match reader.next_query(&clients, &stop).await {
            Ok(len) => len,
            Err(end) => break end,
        };
        // Bound the queries outstanding on this connection.
        if permits.acquire(1).await.is_err() {
            break End::Closed;
        }
        clients.count(|s| s.queries += 1);
        let Some(message) = reader.query.get(..len) else {
            break End::Closed;
        };
        // Once asked, the connection keeps it: no need to parse again.
        if !reader.shared.keepalive.get() && asks_keepalive(message) {
            reader.shared.keepalive.set(true);
        }
        match ctx.answer(message, client, |reply| clients.deliver(id, reply)) {
            Answered::Now(true) | Answered::Pending => {}
            Answered::Now(false) | Answered::Dropped => permits.signal(1),
        }
    };
    let read_timed_out = matches!(end, End::ReadTimeout);
    if read_timed_out {
        clients.count(|s| s.closed_read_timeout += 1);
    }
    // On an orderly end, let outstanding answers go out first (bounded).
    if !read_timed_out && clients.conns.borrow().contains_key(&id) {
        let grace = Instant::now() + settings.read_timeout;
        let _ = until(grace, permits.acquire(settings.max_pipelined as u64)).await;
    }
    // Dropping the table's sender ends the writer once the queue is empty.
    clients.conns.borrow_mut().remove(&id);
    if read_timed_out {
        shutdown_socket(fd);
    }
    drop(reader);
    writer.await;
}

impl Shared {
    fn clone_handles(&self) -> Self {
        Self {
            permits: Rc::clone(&self.permits),
            reading: Rc::clone(&self.reading),
            last_active: Rc::clone(&self.last_active),
            keepalive: Rc::clone(&self.keepalive),
        }
    }
}

/// The reading half of a client connection.
struct Reader<S> {
    stream: BufReader<ReadHalf<S>>,
    /// Grows to the largest query seen on this connection (small, usually).
    query: Vec<u8>,
    settings: TcpSettings,
    shared: Shared,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    /// Read the next query into `self.query`; returns its length, or why
    /// the connection ends.
    async fn next_query(
        &mut self,
        clients: &StreamClients,
        stop: &AtomicBool,
    ) -> Result<usize, End> {
        let settings = self.settings;
        let all_permits = settings.max_pipelined as u64;
        let last_active = &self.shared.last_active;
        // The first byte of the next length prefix: idle time.
        let mut prefix = [0u8; 2];
        let first = loop {
            let idle_end = last_active.get() + settings.idle_timeout;
            let now = Instant::now();
            // Busy past the idle time: look again a little later.
            let deadline = if idle_end > now {
                idle_end
            } else {
                now + BUSY_POLL
            };
            match until(deadline, self.stream.read(&mut prefix[..1])).await {
                Some(Ok(0)) | Some(Err(_)) => break None,
                Some(Ok(_)) => break Some(()),
                None => {
                    let busy = self.shared.permits.available() < all_permits;
                    if stop.load(Ordering::Relaxed) && !busy {
                        break None;
                    }
                    if !busy && last_active.get() + settings.idle_timeout <= Instant::now() {
                        clients.count(|s| s.closed_idle += 1);
                        break None;
                    }
                }
            }
        };
        if first.is_none() {
            return Err(End::Finished);
        }
        self.shared.reading.set(true);
        let deadline = Instant::now() + settings.read_timeout;
        let Some(Ok(())) = until(deadline, self.stream.read_exact(&mut prefix[1..])).await else {
            return Err(End::ReadTimeout);
        };
        let len = usize::from(u16::from_be_bytes(prefix));
        if self.query.len() < len {
            self.query.resize(len, 0);
        }
        let Some(message) = self.query.get_mut(..len) else {
            return Err(End::Closed);
        };
        let Some(Ok(())) = until(deadline, self.stream.read_exact(message)).await else {
            return Err(End::ReadTimeout);
        };
        self.shared.reading.set(false);
        last_active.set(Instant::now());
        Ok(len)
    }
}

/// Write replies to one client as they come, until the connection ends.
/// The replies already queued when the writer wakes go together, in one
/// write and one flush: the replies to the queries of one read (answered
/// from the cache before the reader waits again) then share one send and,
/// over TLS, one record, instead of one each.
async fn write_replies<S: AsyncWrite + Unpin>(
    mut writer: WriteHalf<S>,
    queue: LocalReceiver<Vec<u8>>,
    spare: SpareFrames,
    permits: Rc<Semaphore>,
    last_active: Rc<Cell<Instant>>,
    write_timeout: Duration,
    fd: RawFd,
) {
    let mut gathered = Gather::default();
    while let Some(frame) = queue.recv().await {
        let replies = gathered
            .take(frame, &queue, |frame| {
                if frame.capacity() <= SPARE_FRAME_CAPACITY && spare.borrow().len() < SPARE_FRAMES {
                    spare.borrow_mut().push(frame);
                }
            })
            .await as u64;
        let deadline = Instant::now() + write_timeout;
        let written = until(deadline, async {
            writer.write_all(gathered.bytes()).await?;
            writer.flush().await
        })
        .await;
        permits.signal(replies);
        last_active.set(Instant::now());
        if !matches!(written, Some(Ok(()))) {
            // A client that does not read: drop it.
            shutdown_socket(fd);
            break;
        }
    }
    let _ = writer.close().await;
}

impl crate::transport::Admission for StreamClients {
    fn make_room(&self) -> bool {
        StreamClients::make_room(self)
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
    use crate::stream::frame;
    use heimdall_testkit::messages::query;
    use heimdall_wire::RecordType;

    /// A message whose last record is an OPT without options.
    fn reply_with_opt() -> Vec<u8> {
        query("example", RecordType::A, 7, Some((1232, false)))
    }

    #[test]
    fn a_spare_frame_is_refilled_in_place() {
        let reply = reply_with_opt();
        let mut out = Vec::with_capacity(SPARE_FRAME_CAPACITY);
        out.extend_from_slice(b"an earlier, longer reply frame");
        let memory = out.as_ptr();
        let extras = Extras {
            keepalive: Some(100),
            pad: false,
        };
        frame_into(&mut out, &reply, extras);
        assert_eq!(out, frame(&reply, extras));
        assert_eq!(out.as_ptr(), memory, "no new allocation");
    }
}
