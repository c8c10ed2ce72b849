//! DNS over QUIC (RFC 9250) to clients: the core's own UDP sockets on
//! `tls.quic_listen`, one `quinn_proto::Endpoint` per socket, and
//! [`QuicClients`], the table of connections and of the streams whose
//! queries wait on an upstream.
//!
//! quinn-proto is sans-IO, like rustls and the resolver: datagrams go in
//! with `Endpoint::handle`, packets to send come out of
//! `Connection::poll_transmit`, and time is a parameter. Three kinds of
//! task of this core drive it, with no runtime of their own: a receive
//! loop per socket (a glommio `recv_from`, then the datagram through the
//! endpoint and its connection), one timer task that sleeps until the
//! earliest deadline of any connection (woken early by a new earlier one,
//! or by a reply written), and the replies themselves, written into their
//! stream by [`ClientReplies::reply`] while the resolver drains. The
//! deadlines (quinn-proto's `poll_timeout`, the handshake's end) are kept
//! in deadline order ([`deadlines`]), so a timer wake drives only the
//! connections that are due or have replies to send, never all of them.
//! Packets leave with a non-blocking `sendto`; a full socket buffer loses
//! one, which QUIC's loss recovery sends again.
//!
//! Each bidirectional stream carries one query with a 2-byte length
//! prefix, and its answer the same way, then the stream is finished. The
//! query goes to the resolver like any other, as `Transport::Quic(id)`, one
//! id per stream, through [`CoreContext::answer`] (the cache, policy and
//! upstream path of every transport). Replies carry EDNS padding (RFC
//! 8467) and the Message ID 0 (RFC 9250 section 4.2.1). A query with
//! another ID, a stream that ends before its query is whole or carries
//! more after it is a protocol error: the connection is closed with
//! DOQ_PROTOCOL_ERROR and counted.
//!
//! Limits: `tcp.max_connections` per core (a new connection over it is
//! refused with CONNECTION_REFUSED), `tcp.max_pipelined` streams open at
//! once per connection (QUIC's stream credit; no unidirectional streams),
//! `tcp.idle_timeout` as QUIC's idle timeout, and the handshake within
//! `tcp.read_timeout`. Flow-control windows bound what a connection
//! buffers either way.
//!
//! A socket bound to a wildcard address has `IP_PKTINFO` on: its receive
//! task reads each datagram's local address (glommio only waits, then
//! `recvmsg` takes the datagrams), quinn-proto keeps it per connection,
//! and packets leave from it (`src_ip`), as a client that wrote to one of
//! the host's addresses expects.
//!
//! The sockets have no steering program: the kernel's 4-tuple hash keeps
//! a client's datagrams on one core. A client whose address or port
//! changes (migration, NAT rebinding) may land on another core, which
//! does not know its connection: the datagrams are dropped (counted), the
//! client's connection times out, and it connects again.

mod deadlines;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use glommio::net::UdpSocket;
use heimdall_resolver::{ClientId, Transport};
use quinn_proto::{
    ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event,
    IdleTimeout, ServerConfig, StreamEvent, StreamId, Transmit, TransportConfig, VarInt,
};

use self::deadlines::Deadlines;

use crate::context::{Answered, ClientReplies, CoreContext, SendFailed};
use crate::stats::DoqStats;
use crate::stream::{Extras, frame_into};
use crate::tickets::CoreTicketer;
use crate::transport::conn::TcpSettings;
use crate::wake::Signal;

/// DOQ_PROTOCOL_ERROR (RFC 9250 section 8.4).
const DOQ_PROTOCOL_ERROR: u32 = 0x2;
/// DOQ_REQUEST_CANCELLED: a stream whose query gets no answer.
const DOQ_REQUEST_CANCELLED: u32 = 0x3;
/// DOQ_NO_ERROR, for the close of a handshake that took too long.
const DOQ_NO_ERROR: u32 = 0x0;
/// The largest datagram read: more than any QUIC packet on a path.
const MAX_DATAGRAM: usize = 65_535;
/// A stream's receive window: one whole query and its prefix.
const STREAM_WINDOW: u32 = 65_537 + 1;
/// A connection's receive window over all its streams.
const CONNECTION_WINDOW: u32 = 256 * 1024;
/// Unacknowledged reply bytes a connection keeps at most.
const SEND_WINDOW: u64 = 1 << 20;

/// The quinn-proto server configuration of the DoQ listeners: the rustls
/// configuration (TLS 1.3, ALPN `doq`, the shared certificate slot) and
/// the limits of `tcp`.
pub(crate) fn server_config(
    tls: Arc<rustls::ServerConfig>,
    settings: TcpSettings,
) -> Result<Arc<ServerConfig>, String> {
    let crypto = quinn_proto::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|err| err.to_string())?;
    let mut transport = TransportConfig::default();
    let streams = u32::try_from(settings.max_pipelined).unwrap_or(u32::MAX);
    transport
        .max_concurrent_bidi_streams(VarInt::from_u32(streams))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .max_idle_timeout(IdleTimeout::try_from(settings.idle_timeout).ok())
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW))
        .receive_window(VarInt::from_u32(CONNECTION_WINDOW))
        .send_window(SEND_WINDOW)
        .datagram_receive_buffer_size(None);
    let mut config = ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(Arc::new(config))
}

/// A stream the client opened: its query as it arrives, then whether the
/// query was taken (the stream stays until its FIN is read, so QUIC
/// gives the client its stream credit back).
#[derive(Default)]
struct Incoming {
    bytes: Vec<u8>,
    taken: bool,
}

/// One client connection.
struct Conn {
    conn: quinn_proto::Connection,
    accepted_at: Instant,
    connected: bool,
    /// The core's ticketer opened a ticket while this connection's
    /// ClientHello was read: the handshake resumes a session.
    resumed: bool,
    /// Its end has been counted (handshake failure, idle, protocol error).
    ended: bool,
    streams: HashMap<StreamId, Incoming>,
    /// Reply frames not yet taken whole by the stream (flow control):
    /// the frame and how much of it was written.
    unsent: HashMap<StreamId, (Vec<u8>, usize)>,
    /// The deadline its live entry in [`QuicClients::timers`] holds, and
    /// that entry's generation (older entries are stale).
    timer_at: Option<Instant>,
    timer_generation: u64,
    /// A reply was written into it since it was last driven: it is on
    /// [`QuicClients::dirty`].
    dirty: bool,
}

impl Conn {
    /// When it must be driven next: quinn-proto's timeout, or the end of
    /// the time its handshake has.
    fn deadline(&mut self, read_timeout: Duration) -> Option<Instant> {
        let handshake_end =
            (!self.connected && !self.ended).then(|| self.accepted_at + read_timeout);
        match (self.conn.poll_timeout(), handshake_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A connection of the core: its listener and its handle there.
type Key = (u16, ConnectionHandle);

/// Connection `key` of `listeners`.
fn conn_of(listeners: &mut [Listener], (index, handle): Key) -> Option<&mut Conn> {
    listeners
        .get_mut(usize::from(index))
        .and_then(|listener| listener.conns.get_mut(&handle))
}

/// Whether `generation` is the live timer entry of connection `key`.
fn is_scheduled(listeners: &[Listener], (index, handle): Key, generation: u64) -> bool {
    listeners
        .get(usize::from(index))
        .and_then(|listener| listener.conns.get(&handle))
        .is_some_and(|conn| conn.timer_at.is_some() && conn.timer_generation == generation)
}

/// Connections of `listeners` that are not closed.
fn open_connections(listeners: &[Listener]) -> usize {
    listeners
        .iter()
        .flat_map(|listener| listener.conns.values())
        .filter(|conn| !conn.conn.is_closed())
        .count()
}

/// One DoQ socket and its endpoint.
struct Listener {
    fd: RawFd,
    endpoint: Endpoint,
    conns: HashMap<ConnectionHandle, Conn>,
}

/// A query read whole from a stream, to hand to the resolver once the
/// table is no longer borrowed.
struct Ready {
    listener: u16,
    handle: ConnectionHandle,
    stream: StreamId,
    addr: SocketAddr,
    query: Vec<u8>,
}

/// One core's DNS-over-QUIC endpoints, connections and waiting streams.
pub(crate) struct QuicClients {
    settings: TcpSettings,
    listeners: RefCell<Vec<Listener>>,
    /// Streams whose query waits on an upstream, by query id.
    waiting: RefCell<HashMap<u32, (u16, ConnectionHandle, StreamId)>>,
    /// Every connection's next deadline, earliest first: a timer wake
    /// looks only at the connections due.
    timers: RefCell<Deadlines<Key>>,
    /// The last timer generation given out.
    generation: Cell<u64>,
    /// Connections with a reply written since they were last driven (each
    /// once), for the timer task to send.
    dirty: RefCell<Vec<Key>>,
    next_query: Cell<u32>,
    stats: Cell<DoqStats>,
    /// Raised when the timer task must look again: a reply was written,
    /// or a connection's timeout came before the one it sleeps for.
    wake: Signal,
    /// What the timer task does: `None` while it runs (it looks at the
    /// earliest deadline before it sleeps again), else asleep until the time given
    /// (`Some(None)`: until woken).
    sleeping: Cell<Option<Option<Instant>>>,
    /// Buffer of outgoing packets.
    send_buf: RefCell<Vec<u8>>,
    /// The core's session-ticket ticketer: the tickets it opened tell a
    /// resumed handshake (tickets on).
    ticketer: Option<Arc<CoreTicketer>>,
}

impl QuicClients {
    /// The table for `fds` (this core's DoQ sockets; none: DoQ is off).
    pub(crate) fn new(
        settings: TcpSettings,
        (config, ticketer): (Option<Arc<ServerConfig>>, Option<Arc<CoreTicketer>>),
        fds: &[RawFd],
    ) -> Self {
        let listeners = match &config {
            Some(config) => fds
                .iter()
                .map(|&fd| Listener {
                    fd,
                    endpoint: Endpoint::new(
                        Arc::new(EndpointConfig::default()),
                        Some(Arc::clone(config)),
                        true,
                        None,
                    ),
                    conns: HashMap::new(),
                })
                .collect(),
            None => Vec::new(),
        };
        Self {
            settings,
            listeners: RefCell::new(listeners),
            waiting: RefCell::new(HashMap::new()),
            timers: RefCell::new(Deadlines::new()),
            generation: Cell::new(0),
            dirty: RefCell::new(Vec::new()),
            next_query: Cell::new(0),
            stats: Cell::new(DoqStats::default()),
            wake: Signal::default(),
            sleeping: Cell::new(None),
            send_buf: RefCell::new(Vec::with_capacity(1500)),
            ticketer,
        }
    }

    fn count(&self, update: impl FnOnce(&mut DoqStats)) {
        let mut stats = self.stats.get();
        update(&mut stats);
        self.stats.set(stats);
    }

    /// Open connections (handshakes included). A closed one still in the
    /// table (QUIC's closing period, three probe timeouts) no longer
    /// counts: it only answers with its close.
    pub(crate) fn connections(&self) -> usize {
        open_connections(&self.listeners.borrow())
    }

    /// The counters.
    pub(crate) fn stats(&self) -> DoqStats {
        self.stats.get()
    }

    /// A datagram from `from` to `local_ip` (when the socket is bound to
    /// a wildcard address) on listener `index`: through the endpoint to
    /// its connection, or a new connection (refused when the table is
    /// full), or dropped and counted. Then the queries it completed are
    /// answered and what is due is sent.
    fn datagram(
        self: &Rc<Self>,
        ctx: &Rc<CoreContext>,
        index: u16,
        (from, local_ip): (SocketAddr, Option<IpAddr>),
        data: &[u8],
    ) {
        let now = Instant::now();
        let mut touched = None;
        // rustls reads the ClientHello (and opens its ticket) within this
        // block, synchronously: no other handshake runs meanwhile.
        let opened = || {
            self.ticketer
                .as_ref()
                .map_or(0, |ticketer| ticketer.opened())
        };
        let opened_before = opened();
        {
            let mut listeners = self.listeners.borrow_mut();
            let full = |listeners: &[Listener]| {
                open_connections(listeners) >= self.settings.max_connections
            };
            let mut buf = self.send_buf.borrow_mut();
            buf.clear();
            let Some(listener) = listeners.get_mut(usize::from(index)) else {
                return;
            };
            let event =
                listener
                    .endpoint
                    .handle(now, from, local_ip, None, BytesMut::from(data), &mut buf);
            let fd = listener.fd;
            match event {
                Some(DatagramEvent::ConnectionEvent(handle, event)) => {
                    if let Some(conn) = listener.conns.get_mut(&handle) {
                        conn.conn.handle_event(event);
                        touched = Some(handle);
                    }
                }
                Some(DatagramEvent::NewConnection(incoming)) => {
                    let refuse = full(&listeners);
                    let Some(listener) = listeners.get_mut(usize::from(index)) else {
                        return;
                    };
                    if refuse {
                        let transmit = listener.endpoint.refuse(incoming, &mut buf);
                        send(fd, &buf, &transmit);
                        self.count(|s| s.connections.refused += 1);
                    } else {
                        match listener.endpoint.accept(incoming, now, &mut buf, None) {
                            Ok((handle, conn)) => {
                                listener.conns.insert(
                                    handle,
                                    Conn {
                                        conn,
                                        accepted_at: now,
                                        connected: false,
                                        resumed: false,
                                        ended: false,
                                        streams: HashMap::new(),
                                        unsent: HashMap::new(),
                                        timer_at: None,
                                        timer_generation: 0,
                                        dirty: false,
                                    },
                                );
                                self.count(|s| s.connections.accepted += 1);
                                touched = Some(handle);
                            }
                            Err(err) => {
                                if let Some(transmit) = err.response {
                                    send(fd, &buf, &transmit);
                                }
                                self.count(|s| s.connections.handshake_failures += 1);
                            }
                        }
                    }
                }
                Some(DatagramEvent::Response(transmit)) => {
                    // Version negotiation or a stateless reset.
                    send(fd, &buf, &transmit);
                }
                None => self.count(|s| s.datagrams_dropped += 1),
            }
            if opened() != opened_before
                && let Some(conn) =
                    touched.and_then(|handle| conn_of(&mut listeners, (index, handle)))
            {
                conn.resumed = true;
            }
        }
        if let Some(handle) = touched {
            self.run(ctx, now, &[(index, handle)]);
        }
    }

    /// Drive the connections `keys`: timeouts due, events, streams read,
    /// queries answered, packets sent, next timeouts scheduled. Closed
    /// connections leave the table.
    fn run(self: &Rc<Self>, ctx: &Rc<CoreContext>, now: Instant, keys: &[Key]) {
        let ready = self.pump(now, keys);
        for query in ready {
            self.answer(ctx, query);
        }
        // The answers written (and what they set off) go out now.
        let earliest = self.transmit(now, keys);
        if let Some(asleep_until) = self.sleeping.get()
            && let Some(earliest) = earliest
            && asleep_until.is_none_or(|until| earliest < until)
        {
            self.wake.raise();
        }
    }

    /// A timer wake: drive the connections whose deadline has come and
    /// those with replies written since they were last driven; no other.
    fn on_timer(self: &Rc<Self>, ctx: &Rc<CoreContext>, now: Instant) {
        let mut keys = std::mem::take(&mut *self.dirty.borrow_mut());
        {
            let mut listeners = self.listeners.borrow_mut();
            // Replies written into a connection driven since need nothing.
            keys.retain(|&key| conn_of(&mut listeners, key).is_some_and(|conn| conn.dirty));
            let mut timers = self.timers.borrow_mut();
            while let Some(key) = timers.pop_due(now, |key, generation| {
                is_scheduled(&listeners, key, generation)
            }) {
                if let Some(conn) = conn_of(&mut listeners, key) {
                    // Its entry is used up: the drive below schedules anew.
                    conn.timer_at = None;
                }
                keys.push(key);
            }
        }
        keys.sort_unstable();
        keys.dedup();
        self.run(ctx, now, &keys);
        // The list's allocation serves the next wake.
        keys.clear();
        let mut dirty = self.dirty.borrow_mut();
        if dirty.is_empty() {
            *dirty = keys;
        }
    }

    /// The earliest deadline of any connection, for the timer task.
    fn next_deadline(&self) -> Option<Instant> {
        let listeners = self.listeners.borrow();
        self.timers
            .borrow_mut()
            .earliest(|key, generation| is_scheduled(&listeners, key, generation))
    }

    /// Events and streams of the connections: the queries read whole.
    fn pump(&self, now: Instant, keys: &[Key]) -> Vec<Ready> {
        let mut ready = Vec::new();
        let mut listeners = self.listeners.borrow_mut();
        let read_timeout = self.settings.read_timeout;
        for &(index, handle) in keys {
            let Some(Listener {
                endpoint, conns, ..
            }) = listeners.get_mut(usize::from(index))
            else {
                continue;
            };
            let Some(conn) = conns.get_mut(&handle) else {
                continue;
            };
            if conn.conn.poll_timeout().is_some_and(|due| due <= now) {
                conn.conn.handle_timeout(now);
            }
            if !conn.connected && !conn.ended && conn.accepted_at + read_timeout <= now {
                conn.ended = true;
                conn.conn.close(
                    now,
                    VarInt::from_u32(DOQ_NO_ERROR),
                    "handshake too slow".into(),
                );
                self.count(|s| s.connections.handshake_failures += 1);
            }
            self.pump_one(now, index, handle, conn, &mut ready);
            while let Some(event) = conn.conn.poll_endpoint_events() {
                if let Some(event) = endpoint.handle_event(handle, event) {
                    conn.conn.handle_event(event);
                }
            }
        }
        ready
    }

    /// One connection's events and streams.
    fn pump_one(
        &self,
        now: Instant,
        index: u16,
        handle: ConnectionHandle,
        conn: &mut Conn,
        ready: &mut Vec<Ready>,
    ) {
        while let Some(event) = conn.conn.poll() {
            match event {
                Event::Connected => {
                    conn.connected = true;
                    let resumed = u64::from(conn.resumed);
                    self.count(|s| {
                        s.connections.handshakes += 1;
                        s.connections.resumptions += resumed;
                    });
                }
                Event::ConnectionLost { reason } => {
                    log::debug!(
                        "DoQ connection from {} lost: {reason}",
                        conn.conn.remote_address()
                    );
                    if !conn.ended {
                        conn.ended = true;
                        if !conn.connected {
                            self.count(|s| s.connections.handshake_failures += 1);
                        } else if reason == ConnectionError::TimedOut {
                            self.count(|s| s.connections.closed_idle += 1);
                        }
                    }
                }
                Event::Stream(StreamEvent::Writable { id }) => write_unsent(conn, id),
                _ => {}
            }
        }
        while let Some(id) = conn.conn.streams().accept(Dir::Bi) {
            conn.streams.insert(id, Incoming::default());
        }
        let mut violation = false;
        let mut finished = Vec::new();
        for (&id, incoming) in conn.streams.iter_mut() {
            match read_stream(&mut conn.conn, id, incoming) {
                StreamRead::Pending => {}
                StreamRead::Query(query) => {
                    if query.get(..2).is_some_and(|dns_id| dns_id != [0, 0]) {
                        violation = true;
                        continue;
                    }
                    self.count(|s| s.connections.queries += 1);
                    ready.push(Ready {
                        listener: index,
                        handle,
                        stream: id,
                        addr: conn.conn.remote_address(),
                        query,
                    });
                }
                StreamRead::Finished => finished.push(id),
                StreamRead::Violation => violation = true,
            }
        }
        for id in finished {
            conn.streams.remove(&id);
        }
        if violation && !conn.ended {
            conn.ended = true;
            conn.conn.close(
                now,
                VarInt::from_u32(DOQ_PROTOCOL_ERROR),
                "DoQ protocol error".into(),
            );
            self.count(|s| s.protocol_errors += 1);
        }
    }

    /// Send what the connections `keys` have for the wire, drop the
    /// drained, and schedule the next deadline of each whose deadline
    /// moved; returns the earliest deadline scheduled.
    fn transmit(&self, now: Instant, keys: &[Key]) -> Option<Instant> {
        let mut listeners = self.listeners.borrow_mut();
        let mut buf = self.send_buf.borrow_mut();
        let mut timers = self.timers.borrow_mut();
        let read_timeout = self.settings.read_timeout;
        let mut earliest: Option<Instant> = None;
        for &key in keys {
            let (index, handle) = key;
            let Some(listener) = listeners.get_mut(usize::from(index)) else {
                continue;
            };
            let fd = listener.fd;
            let Some(conn) = listener.conns.get_mut(&handle) else {
                continue;
            };
            conn.dirty = false;
            buf.clear();
            while let Some(transmit) = conn.conn.poll_transmit(now, 1, &mut buf) {
                send(fd, &buf, &transmit);
                buf.clear();
            }
            if conn.conn.is_drained() {
                // Its heap entries go stale with it.
                listener.conns.remove(&handle);
                continue;
            }
            let due = conn.deadline(read_timeout);
            if due != conn.timer_at {
                // A new generation makes the connection's older entries
                // stale, also when it has no deadline any more.
                let generation = self.generation.get().wrapping_add(1);
                self.generation.set(generation);
                conn.timer_at = due;
                conn.timer_generation = generation;
                if let Some(at) = due {
                    timers.schedule(at, key, generation);
                    earliest = Some(earliest.map_or(at, |e| e.min(at)));
                }
            }
        }
        let live = listeners.iter().map(|listener| listener.conns.len()).sum();
        if timers.oversized(live) {
            timers.rebuild(listeners.iter().enumerate().flat_map(|(index, listener)| {
                let index = u16::try_from(index).unwrap_or(u16::MAX);
                listener.conns.iter().filter_map(move |(&handle, conn)| {
                    conn.timer_at
                        .map(|at| (at, (index, handle), conn.timer_generation))
                })
            }));
        }
        earliest
    }

    /// Hand one query to the resolver; its answer is written at once or
    /// when the upstream answers.
    fn answer(self: &Rc<Self>, ctx: &Rc<CoreContext>, ready: Ready) {
        let id = self.next_query.get();
        self.next_query.set(id.wrapping_add(1));
        self.waiting
            .borrow_mut()
            .insert(id, (ready.listener, ready.handle, ready.stream));
        let client = ClientId {
            addr: ready.addr,
            transport: Transport::Quic(id),
            listener: ready.listener,
        };
        let answered = ctx.answer(&ready.query, client, |reply| self.deliver(id, reply));
        if let Answered::Dropped = answered
            && let Some((listener, handle, stream)) = self.waiting.borrow_mut().remove(&id)
        {
            // No answer will come: tell the client so.
            self.with_conn(listener, handle, |conn| {
                let _ = conn
                    .conn
                    .send_stream(stream)
                    .reset(VarInt::from_u32(DOQ_REQUEST_CANCELLED));
            });
        }
    }

    fn with_conn(
        &self,
        listener: u16,
        handle: ConnectionHandle,
        f: impl FnOnce(&mut Conn),
    ) -> bool {
        let mut listeners = self.listeners.borrow_mut();
        let Some(conn) = listeners
            .get_mut(usize::from(listener))
            .and_then(|listener| listener.conns.get_mut(&handle))
        else {
            return false;
        };
        f(conn);
        true
    }

    /// Write the reply to query `id` into its stream (padded, ID 0) and
    /// finish the stream; the timer task sends it.
    fn deliver(&self, id: u32, reply: &[u8]) {
        let Some((listener, handle, stream)) = self.waiting.borrow_mut().remove(&id) else {
            self.count(|s| s.connections.replies_orphaned += 1);
            return;
        };
        let mut frame = Vec::new();
        frame_into(
            &mut frame,
            reply,
            Extras {
                keepalive: None,
                pad: true,
            },
        );
        // RFC 9250 section 4.2.1: the Message ID is 0 on DoQ.
        if let Some(dns_id) = frame.get_mut(2..4) {
            dns_id.copy_from_slice(&[0, 0]);
        }
        let mut newly_dirty = false;
        let found = self.with_conn(listener, handle, |conn| {
            conn.unsent.insert(stream, (frame, 0));
            write_unsent(conn, stream);
            newly_dirty = !std::mem::replace(&mut conn.dirty, true);
        });
        if newly_dirty {
            self.dirty.borrow_mut().push((listener, handle));
        }
        if found {
            self.wake.raise();
        } else {
            self.count(|s| s.connections.replies_orphaned += 1);
        }
    }
}

/// Write what is left of a reply frame into its stream, and finish the
/// stream once all of it is written. A stream the client stopped or
/// closed takes nothing more.
fn write_unsent(conn: &mut Conn, stream: StreamId) {
    let Some((frame, written)) = conn.unsent.get_mut(&stream) else {
        return;
    };
    let mut send = conn.conn.send_stream(stream);
    while let Some(rest) = frame.get(*written..).filter(|rest| !rest.is_empty()) {
        match send.write(rest) {
            Ok(n) => *written += n,
            Err(quinn_proto::WriteError::Blocked) => return,
            Err(_) => {
                conn.unsent.remove(&stream);
                return;
            }
        }
    }
    let _ = send.finish();
    conn.unsent.remove(&stream);
}

/// What reading a stream gave.
enum StreamRead {
    /// Nothing complete yet.
    Pending,
    /// Its query, whole.
    Query(Vec<u8>),
    /// Its FIN after the query: the stream is done.
    Finished,
    /// A protocol error: the stream ended before its query was whole, or
    /// carried more after it.
    Violation,
}

fn read_stream(
    conn: &mut quinn_proto::Connection,
    id: StreamId,
    incoming: &mut Incoming,
) -> StreamRead {
    let mut recv = conn.recv_stream(id);
    let Ok(mut chunks) = recv.read(true) else {
        return StreamRead::Finished;
    };
    let mut end = false;
    let mut reset = false;
    loop {
        match chunks.next(usize::from(u16::MAX)) {
            Ok(Some(chunk)) => {
                if incoming.taken || incoming.bytes.len() + chunk.bytes.len() > 65_537 {
                    let _ = chunks.finalize();
                    return StreamRead::Violation;
                }
                incoming.bytes.extend_from_slice(&chunk.bytes);
            }
            Ok(None) => {
                end = true;
                break;
            }
            Err(quinn_proto::ReadError::Blocked) => break,
            Err(quinn_proto::ReadError::Reset(_)) => {
                reset = true;
                break;
            }
        }
    }
    let _ = chunks.finalize();
    if reset {
        return StreamRead::Finished;
    }
    if !incoming.taken
        && let Some((prefix, message)) = incoming.bytes.split_first_chunk::<2>()
    {
        let len = usize::from(u16::from_be_bytes(*prefix));
        if message.len() > len {
            return StreamRead::Violation;
        }
        if message.len() == len {
            incoming.taken = true;
            let query = std::mem::take(&mut incoming.bytes);
            return StreamRead::Query(query.get(2..).map(<[u8]>::to_vec).unwrap_or_default());
        }
    }
    match (end, incoming.taken) {
        (false, _) => StreamRead::Pending,
        (true, true) => StreamRead::Finished,
        (true, false) => StreamRead::Violation,
    }
}

/// Send one packet, from the local address the connection's datagrams
/// came to when the socket is on a wildcard address (`src_ip`); a full
/// socket buffer loses it (QUIC sends it again).
fn send(fd: RawFd, buf: &[u8], transmit: &Transmit) {
    if let Some(packet) = buf.get(..transmit.size) {
        let _ = heimdall_udp::pktinfo::send_from(fd, packet, transmit.destination, transmit.src_ip);
    }
}

impl ClientReplies for QuicClients {
    fn reply(&self, client: &ClientId, reply: &[u8]) -> Result<(), SendFailed> {
        if let Transport::Quic(id) = client.transport {
            self.deliver(id, reply);
        }
        Ok(())
    }

    fn doq_stats(&self) -> Option<(DoqStats, usize)> {
        Some((self.stats(), self.connections()))
    }
}

/// Datagrams one wake of a wildcard socket's receive loop takes before it
/// lets the core's other tasks run.
const DRAIN: usize = 32;

/// Receive datagrams on DoQ listener `index` until the core stops.
pub(crate) async fn serve_quic(
    ctx: Rc<CoreContext>,
    clients: Rc<QuicClients>,
    socket: UdpSocket,
    index: u16,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    if socket
        .local_addr()
        .is_ok_and(|addr| addr.ip().is_unspecified())
    {
        serve_wildcard(&ctx, &clients, &socket, index, &stop, &mut buf).await;
        return;
    }
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                if let Some(data) = buf.get(..len) {
                    clients.datagram(&ctx, index, (from, None), data);
                }
            }
            Err(err) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                log::debug!("core {}: DoQ receive error: {err}", ctx.index());
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The receive loop of a socket on a wildcard address (`IP_PKTINFO` on):
/// glommio's receive would lose the control message that names the local
/// address, so glommio only waits (a peek), and `recvmsg` takes the
/// queued datagrams with their local addresses.
async fn serve_wildcard(
    ctx: &Rc<CoreContext>,
    clients: &Rc<QuicClients>,
    socket: &UdpSocket,
    index: u16,
    stop: &AtomicBool,
    buf: &mut [u8],
) {
    let fd = socket.as_raw_fd();
    let mut probe = [0u8; 1];
    let mut control = heimdall_udp::pktinfo::Control::default();
    loop {
        if let Err(err) = socket.peek_from(&mut probe).await {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            log::debug!("core {}: DoQ receive error: {err}", ctx.index());
            glommio::timer::sleep(Duration::from_millis(10)).await;
            continue;
        }
        for _ in 0..DRAIN {
            match heimdall_udp::pktinfo::recv_with_destination(fd, buf, &mut control) {
                Ok(received) => {
                    if let Some(data) = buf.get(..received.len) {
                        clients.datagram(ctx, index, (received.from, received.to), data);
                    }
                }
                Err(err) => {
                    if err.kind() != std::io::ErrorKind::WouldBlock {
                        log::debug!("core {}: DoQ receive error: {err}", ctx.index());
                    }
                    break;
                }
            }
        }
        futures_lite::future::yield_now().await;
    }
}

/// The timer task: sleep until the earliest connection deadline (or a
/// wake), then drive the connections due and those with replies to send.
pub(crate) async fn run_quic_timers(ctx: Rc<CoreContext>, clients: Rc<QuicClients>) {
    loop {
        let next = clients.next_deadline();
        clients.sleeping.set(Some(next));
        match next {
            Some(due) => {
                let wait = due.saturating_duration_since(Instant::now());
                futures_lite::future::or(glommio::timer::sleep(wait), clients.wake.wait()).await;
            }
            None => clients.wake.wait().await,
        }
        clients.sleeping.set(None);
        clients.on_timer(&ctx, Instant::now());
        // Never a loop that keeps the receive tasks from running.
        futures_lite::future::yield_now().await;
    }
}

/// The DoQ sockets' fds, for [`QuicClients::new`].
pub(crate) fn fds(sockets: &[socket2::Socket]) -> Vec<RawFd> {
    sockets.iter().map(AsRawFd::as_raw_fd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_is_made_from_the_doq_tls_config() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["dns.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = std::env::temp_dir().join(format!("heimdall-doq-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        let configs = crate::tls::server_configs(&cert_path, &key_path, Duration::from_secs(60))
            .unwrap()
            .for_core();
        assert!(configs.ticketer.is_some());
        let settings = TcpSettings {
            idle_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(2),
            max_connections: 4,
            max_pipelined: 8,
        };
        assert!(server_config(configs.doq, settings).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
