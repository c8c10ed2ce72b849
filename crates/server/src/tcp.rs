//! DNS over TCP (RFC 7766) on one core: client connections on the core's
//! own `SO_REUSEPORT` listeners, and pipelined connections to upstreams
//! for queries whose UDP answer was truncated.
//!
//! A client connection is two tasks: a reader that frames queries (2-byte
//! length prefix) and hands them to the core's resolver, and a writer that
//! sends replies as they complete, in any order. Replies reach the writer
//! through a bounded local channel; the connection table maps the
//! resolver's `Transport::Tcp(id)` to that channel, so replies to queries
//! that waited on an upstream find their connection. A semaphore of
//! `tcp.max_pipelined` permits bounds the queries outstanding per
//! connection, so the channel can never be full.
//!
//! Limits: a connection with nothing outstanding is closed after
//! `tcp.idle_timeout`; a message that has begun must be complete within
//! `tcp.read_timeout`; at most `tcp.max_connections` per core, and when a
//! new one would exceed that, the oldest idle connection is closed (or, if
//! none is idle, the new one).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Semaphore;
use heimdall_resolver::{ClientId, QueryOutcome, Transport, UpstreamTransport};
use heimdall_wire::Message;

use crate::batch::shutdown_socket;
use crate::core::CoreState;

/// EDNS option code of edns-tcp-keepalive (RFC 7828).
const KEEPALIVE_OPTION: u16 = 11;
/// How often a busy connection past its idle time looks again.
const BUSY_POLL: Duration = Duration::from_millis(100);
/// Frames queued to one upstream connection before new ones are refused.
const UPSTREAM_QUEUE: usize = 1024;
/// Read buffer of a client connection: several pipelined queries.
const CLIENT_READ_BUFFER: usize = 2048;
/// Read buffer of an upstream connection: whole large answers.
const UPSTREAM_READ_BUFFER: usize = 16 << 10;
/// Reply frames a connection keeps for reuse: at most this many, of at
/// most this capacity each (others are freed after use), so an idle
/// connection holds no more than its read buffer's worth again.
const SPARE_FRAMES: usize = 4;
const SPARE_FRAME_CAPACITY: usize = 512;

/// The `tcp:` settings a core needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpSettings {
    pub(crate) idle_timeout: Duration,
    pub(crate) read_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_pipelined: usize,
    /// How long to wait for an upstream TCP connection to open.
    pub(crate) connect_timeout: Duration,
}

/// TCP counters of one core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Client connections accepted.
    pub accepted: u64,
    /// Client connections refused because the table was full and none was
    /// idle.
    pub refused: u64,
    /// Idle client connections closed to make room for a new one.
    pub evicted: u64,
    /// Client connections closed after `tcp.idle_timeout`.
    pub closed_idle: u64,
    /// Client connections closed because a message did not arrive whole
    /// within `tcp.read_timeout`.
    pub closed_read_timeout: u64,
    /// Client queries received over TCP.
    pub queries: u64,
    /// Replies that found their connection gone.
    pub replies_orphaned: u64,
    /// Upstream TCP connections opened.
    pub upstream_connects: u64,
    /// Upstream TCP connections that failed (connect, write or read).
    pub upstream_errors: u64,
}

/// An upstream connection's generation and its query queue.
type UpstreamConn = (u64, LocalSender<Vec<u8>>);

/// Reply frames a connection's writer has finished with, for `deliver` to
/// fill again: once warm, a connection's replies allocate nothing.
type SpareFrames = Rc<RefCell<Vec<Vec<u8>>>>;

struct Conn {
    replies: LocalSender<Vec<u8>>,
    spare: SpareFrames,
    permits: Rc<Semaphore>,
    fd: RawFd,
    /// A message has begun arriving (so the connection is not idle).
    reading: Rc<Cell<bool>>,
    last_active: Rc<Cell<Instant>>,
    /// The client sent edns-tcp-keepalive: our replies carry it too.
    keepalive: Rc<Cell<bool>>,
}

/// One core's TCP state: client connections and upstream connections.
pub(crate) struct TcpState {
    settings: TcpSettings,
    conns: RefCell<HashMap<u32, Conn>>,
    next_conn: Cell<u32>,
    upstreams: RefCell<HashMap<SocketAddr, UpstreamConn>>,
    next_upstream: Cell<u64>,
    pub(crate) stats: Cell<TcpStats>,
}

impl TcpState {
    pub(crate) fn new(settings: TcpSettings) -> Self {
        Self {
            settings,
            conns: RefCell::new(HashMap::new()),
            next_conn: Cell::new(0),
            upstreams: RefCell::new(HashMap::new()),
            next_upstream: Cell::new(0),
            stats: Cell::new(TcpStats::default()),
        }
    }

    fn count(&self, update: impl FnOnce(&mut TcpStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    /// Client connections open on this core.
    pub(crate) fn connections(&self) -> usize {
        self.conns.borrow().len()
    }

    /// The RFC 7828 timeout we advertise, in units of 100 ms.
    fn keepalive_units(&self) -> u16 {
        u16::try_from(self.settings.idle_timeout.as_millis() / 100).unwrap_or(u16::MAX)
    }

    /// Queue a reply for connection `id`; false if the connection is gone.
    pub(crate) fn deliver(&self, id: u32, reply: &[u8]) -> bool {
        let conns = self.conns.borrow();
        let Some(conn) = conns.get(&id) else {
            self.count(|s| s.replies_orphaned += 1);
            return false;
        };
        let mut out = conn.spare.borrow_mut().pop().unwrap_or_default();
        frame_into(
            &mut out,
            reply,
            conn.keepalive.get().then(|| self.keepalive_units()),
        );
        if conn.replies.try_send(out).is_err() {
            // Cannot happen while permits bound the queue; give the permit
            // back so the connection does not stall.
            conn.permits.signal(1);
            self.count(|s| s.replies_orphaned += 1);
        }
        true
    }

    /// Queue `query` to upstream `to` over TCP, opening a connection if
    /// there is none. A failure is left to the resolver's deadline.
    pub(crate) fn send_upstream(&self, state: &Rc<CoreState>, to: SocketAddr, query: &[u8]) {
        let frame = frame(query, None);
        let mut upstreams = self.upstreams.borrow_mut();
        if let Some((_, sender)) = upstreams.get(&to) {
            if sender.try_send(frame).is_err() {
                self.count(|s| s.upstream_errors += 1);
            }
            return;
        }
        let (sender, receiver) = local_channel::new_bounded(UPSTREAM_QUEUE);
        let _ = sender.try_send(frame);
        let generation = self.next_upstream.get().wrapping_add(1);
        self.next_upstream.set(generation);
        upstreams.insert(to, (generation, sender));
        glommio::spawn_local(upstream_connection(
            Rc::clone(state),
            to,
            generation,
            receiver,
        ))
        .detach();
    }

    fn forget_upstream(&self, to: SocketAddr, generation: u64) {
        let mut upstreams = self.upstreams.borrow_mut();
        if upstreams.get(&to).is_some_and(|(g, _)| *g == generation) {
            upstreams.remove(&to);
        }
    }

    /// Make room for one more connection: close the oldest idle one. False
    /// when every connection is busy.
    fn make_room(&self) -> bool {
        let mut conns = self.conns.borrow_mut();
        if conns.len() < self.settings.max_connections {
            return true;
        }
        let all_permits = self.settings.max_pipelined as u64;
        let oldest_idle = conns
            .iter()
            .filter(|(_, conn)| !conn.reading.get() && conn.permits.available() >= all_permits)
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
}

/// `message` with its 2-byte length prefix, and with edns-tcp-keepalive
/// added to its OPT record when `keepalive` is given.
fn frame(message: &[u8], keepalive: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    frame_into(&mut out, message, keepalive);
    out
}

/// [`frame`] into `out`, replacing what it held (and reusing its memory).
fn frame_into(out: &mut Vec<u8>, message: &[u8], keepalive: Option<u16>) {
    out.clear();
    out.reserve(message.len() + 8);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(message);
    if let Some(units) = keepalive {
        add_keepalive(out, units);
    }
    let len = u16::try_from(out.len() - 2).unwrap_or(u16::MAX);
    if let Some(prefix) = out.get_mut(..2) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
}

/// Append edns-tcp-keepalive with `units` (of 100 ms) to the OPT record of
/// the message in `framed[2..]`, when that OPT is the message's last
/// record (as in every reply heimdall writes) and there is room.
fn add_keepalive(framed: &mut Vec<u8>, units: u16) {
    let Some(message) = framed.get(2..) else {
        return;
    };
    let Ok(parsed) = Message::parse(message) else {
        return;
    };
    let Some(opt) = parsed.opt() else {
        return;
    };
    if opt.options().any(|option| option.code == KEEPALIVE_OPTION) {
        return;
    }
    // Root owner (1), type (2), class (2), TTL (4), then RDLENGTH.
    let rdlength_at = 2 + opt.record_offset() + 9;
    let Some(rdlength) = framed
        .get(rdlength_at..rdlength_at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(|b| usize::from(u16::from_be_bytes(b)))
    else {
        return;
    };
    if rdlength_at + 2 + rdlength != framed.len() || framed.len() - 2 + 6 > usize::from(u16::MAX) {
        return;
    }
    let Ok(new_rdlength) = u16::try_from(rdlength + 6) else {
        return;
    };
    if let Some(field) = framed.get_mut(rdlength_at..rdlength_at + 2) {
        field.copy_from_slice(&new_rdlength.to_be_bytes());
    }
    framed.extend_from_slice(&KEEPALIVE_OPTION.to_be_bytes());
    framed.extend_from_slice(&2u16.to_be_bytes());
    framed.extend_from_slice(&units.to_be_bytes());
}

/// Whether a query asks for edns-tcp-keepalive.
fn asks_keepalive(query: &[u8]) -> bool {
    Message::parse(query)
        .ok()
        .and_then(|message| message.opt())
        .is_some_and(|opt| opt.options().any(|option| option.code == KEEPALIVE_OPTION))
}

/// Run `future` until `deadline`; `None` if the deadline came first.
async fn until<T>(deadline: Instant, future: impl Future<Output = T>) -> Option<T> {
    let wait = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { Some(future.await) }, async {
        glommio::timer::sleep(wait).await;
        None
    })
    .await
}

/// Accept client connections on one listener until the core ends (the
/// task is dropped with the executor). The accept is never abandoned
/// half-way: glommio submits it to io_uring, and a cancelled one could
/// lose a connection the kernel already accepted.
pub(crate) async fn serve_tcp(
    state: Rc<CoreState>,
    listener: TcpListener,
    listener_index: u16,
    stop: Arc<AtomicBool>,
) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(err) => {
                log::debug!("core {}: accept error: {err}", state.index);
                // Out of descriptors or similar: do not spin.
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let tcp = &state.tcp;
        if stop.load(Ordering::Relaxed) {
            // Shutting down: no new connections.
            drop(stream);
            continue;
        }
        if !tcp.make_room() {
            tcp.count(|s| s.refused += 1);
            drop(stream);
            continue;
        }
        tcp.count(|s| s.accepted += 1);
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = tcp.next_conn.get();
        tcp.next_conn.set(id.wrapping_add(1));
        glommio::spawn_local(client_connection(
            Rc::clone(&state),
            stream,
            id,
            ClientId {
                addr: peer,
                transport: Transport::Tcp(id),
                listener: listener_index,
            },
            Arc::clone(&stop),
        ))
        .detach();
    }
}

/// Why a client connection ended.
enum End {
    Closed,
    /// End of stream, idle timeout or shutdown: outstanding answers go out first.
    Finished,
    ReadTimeout,
}

/// One client connection: the reader runs here, the writer in its own
/// task.
async fn client_connection(
    state: Rc<CoreState>,
    stream: TcpStream,
    id: u32,
    client: ClientId,
    stop: Arc<AtomicBool>,
) {
    let settings = state.tcp.settings;
    let fd = stream.as_raw_fd();
    let (replies, queue) = local_channel::new_bounded(settings.max_pipelined);
    let permits = Rc::new(Semaphore::new(settings.max_pipelined as u64));
    let reading = Rc::new(Cell::new(false));
    let last_active = Rc::new(Cell::new(Instant::now()));
    let keepalive = Rc::new(Cell::new(false));
    let spare = SpareFrames::default();
    state.tcp.conns.borrow_mut().insert(
        id,
        Conn {
            replies,
            spare: Rc::clone(&spare),
            permits: Rc::clone(&permits),
            fd,
            reading: Rc::clone(&reading),
            last_active: Rc::clone(&last_active),
            keepalive: Rc::clone(&keepalive),
        },
    );
    let (read_half, write_half) = futures_lite::io::split(stream);
    let writer = glommio::spawn_local(write_replies(
        write_half,
        queue,
        spare,
        Rc::clone(&permits),
        Rc::clone(&last_active),
        settings.idle_timeout,
        fd,
    ));
    let mut reader = BufReader::with_capacity(CLIENT_READ_BUFFER, read_half);
    // Grows to the largest query seen on this connection (small, usually).
    let mut query = Vec::new();
    let all_permits = settings.max_pipelined as u64;
    let end = loop {
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
            match until(deadline, reader.read(&mut prefix[..1])).await {
                Some(Ok(0)) | Some(Err(_)) => break None,
                Some(Ok(_)) => break Some(()),
                None => {
                    let busy = permits.available() < all_permits;
                    if stop.load(Ordering::Relaxed) && !busy {
                        break None;
                    }
                    if !busy && last_active.get() + settings.idle_timeout <= Instant::now() {
                        state.tcp.count(|s| s.closed_idle += 1);
                        break None;
                    }
                }
            }
        };
        if first.is_none() {
            break End::Finished;
        }
        reading.set(true);
        let deadline = Instant::now() + settings.read_timeout;
        let Some(Ok(())) = until(deadline, reader.read_exact(&mut prefix[1..])).await else {
            break End::ReadTimeout;
        };
        let len = usize::from(u16::from_be_bytes(prefix));
        if query.len() < len {
            query.resize(len, 0);
        }
        let Some(message) = query.get_mut(..len) else {
            break End::Closed;
        };
        let Some(Ok(())) = until(deadline, reader.read_exact(message)).await else {
            break End::ReadTimeout;
        };
        reading.set(false);
        last_active.set(Instant::now());
        // Bound the queries outstanding on this connection.
        if permits.acquire(1).await.is_err() {
            break End::Closed;
        }
        state.tcp.count(|s| s.queries += 1);
        let message = query.get(..len).unwrap_or_default();
        // Once asked, the connection keeps it: no need to parse again.
        if !keepalive.get() && asks_keepalive(message) {
            keepalive.set(true);
        }
        let now = state.now();
        {
            // The core's scratch buffer, so idle connections hold no 64 KiB
            // of their own.
            let mut out = state.scratch.borrow_mut();
            let outcome = state
                .resolver
                .borrow_mut()
                .handle_query(message, client, now, &mut out);
            match outcome {
                QueryOutcome::Reply(len) => {
                    if !state.tcp.deliver(id, out.get(..len).unwrap_or_default()) {
                        permits.signal(1);
                    }
                }
                QueryOutcome::Pending => {}
                QueryOutcome::Dropped => permits.signal(1),
            }
        }
        state.flush(now);
    };
    let read_timed_out = matches!(end, End::ReadTimeout);
    if read_timed_out {
        state.tcp.count(|s| s.closed_read_timeout += 1);
    }
    // On an orderly end, let outstanding answers go out first (bounded).
    if !read_timed_out && state.tcp.conns.borrow().contains_key(&id) {
        let grace = Instant::now() + settings.read_timeout;
        let _ = until(grace, permits.acquire(all_permits)).await;
    }
    // Dropping the table's sender ends the writer once the queue is empty.
    state.tcp.conns.borrow_mut().remove(&id);
    if read_timed_out {
        shutdown_socket(fd);
    }
    drop(reader);
    writer.await;
}

/// Write replies to one client as they come, until the connection ends.
async fn write_replies(
    mut writer: futures_lite::io::WriteHalf<TcpStream>,
    queue: LocalReceiver<Vec<u8>>,
    spare: SpareFrames,
    permits: Rc<Semaphore>,
    last_active: Rc<Cell<Instant>>,
    write_timeout: Duration,
    fd: RawFd,
) {
    while let Some(frame) = queue.recv().await {
        let deadline = Instant::now() + write_timeout;
        let written = until(deadline, writer.write_all(&frame)).await;
        if frame.capacity() <= SPARE_FRAME_CAPACITY && spare.borrow().len() < SPARE_FRAMES {
            spare.borrow_mut().push(frame);
        }
        permits.signal(1);
        last_active.set(Instant::now());
        if !matches!(written, Some(Ok(()))) {
            // A client that does not read: drop it.
            shutdown_socket(fd);
            break;
        }
    }
    let _ = writer.close().await;
}

/// One pipelined connection to an upstream: queries go out as they are
/// queued, replies are matched by the resolver as for UDP (address, ID,
/// question). Closed after `tcp.idle_timeout` without a query, or on any
/// error; queries lost with it are retried by the resolver's deadlines.
async fn upstream_connection(
    state: Rc<CoreState>,
    to: SocketAddr,
    generation: u64,
    queue: LocalReceiver<Vec<u8>>,
) {
    let settings = state.tcp.settings;
    let stream = match TcpStream::connect_timeout(to, settings.connect_timeout).await {
        Ok(stream) => stream,
        Err(err) => {
            log::debug!("core {}: TCP connect to {to}: {err}", state.index);
            state.tcp.count(|s| s.upstream_errors += 1);
            state.tcp.forget_upstream(to, generation);
            return;
        }
    };
    state.tcp.count(|s| s.upstream_connects += 1);
    let _ = stream.set_nodelay(true);
    let fd = stream.as_raw_fd();
    let (read_half, mut write_half) = futures_lite::io::split(stream);
    let reader_state = Rc::clone(&state);
    let reader = glommio::spawn_local(async move {
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
            let now = reader_state.now();
            reader_state.resolver.borrow_mut().handle_upstream_reply(
                to,
                UpstreamTransport::Tcp,
                message,
                now,
            );
            reader_state.flush(now);
        }
        // The upstream closed (or broke) the connection: new queries open
        // a new one, and dropping the queue's sender ends the writer.
        reader_state.tcp.forget_upstream(to, generation);
    });
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
            state.tcp.count(|s| s.upstream_errors += 1);
            break;
        }
    }
    // New queries open a new connection from now on.
    state.tcp.forget_upstream(to, generation);
    shutdown_socket(fd);
    reader.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_testkit::messages::query;
    use heimdall_wire::RecordType;

    /// A message whose last record is an OPT without options.
    fn reply_with_opt() -> Vec<u8> {
        query("example", RecordType::A, 7, Some((1232, false)))
    }

    #[test]
    fn frames_carry_the_length_and_keepalive() {
        let reply = reply_with_opt();
        let plain = frame(&reply, None);
        assert_eq!(
            usize::from(u16::from_be_bytes([plain[0], plain[1]])),
            reply.len()
        );
        let framed = frame(&reply, Some(100));
        assert_eq!(framed.len(), plain.len() + 6);
        assert_eq!(
            usize::from(u16::from_be_bytes([framed[0], framed[1]])),
            reply.len() + 6
        );
        let parsed = Message::parse(&framed[2..]).unwrap();
        let option = parsed.opt().unwrap().options().next().unwrap();
        assert_eq!(option.code, KEEPALIVE_OPTION);
        assert_eq!(option.data, &100u16.to_be_bytes());
        // Without an OPT record nothing is added.
        let mut no_opt = reply.clone();
        let additional = reply.len() - 11;
        no_opt.truncate(additional);
        no_opt[11] = 0;
        assert_eq!(frame(&no_opt, Some(100)).len(), no_opt.len() + 2);
    }

    #[test]
    fn a_spare_frame_is_refilled_in_place() {
        let reply = reply_with_opt();
        let mut out = Vec::with_capacity(SPARE_FRAME_CAPACITY);
        out.extend_from_slice(b"an earlier, longer reply frame");
        let memory = out.as_ptr();
        frame_into(&mut out, &reply, Some(100));
        assert_eq!(out, frame(&reply, Some(100)));
        assert_eq!(out.as_ptr(), memory, "no new allocation");
    }
}
