//! One core of the server: a glommio executor pinned to its CPU, with its
//! own listening sockets, batch buffers, resolver (and so cache shard),
//! upstream sockets and timers. Cores share nothing on the query path;
//! they exchange only cache-fill hints over the bounded channel mesh,
//! with try-send (a full channel drops the hint and counts it).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Full, MeshBuilder, Senders};
use glommio::net::UdpSocket;
use glommio::sync::Semaphore;
use heimdall_cache::{CacheStats, Entry, Timestamp};
use heimdall_config::Config;
use heimdall_resolver::{
    ClientId, Hint, QueryOutcome, Resolver, ResolverStats, Transport, UpstreamTransport,
};
use heimdall_wire::QueryKey;
use socket2::Socket;

use crate::batch::{DATAGRAM_BUF, DatagramBatch, UdpStats, send_to};
use crate::control::{ControlLink, ControlMessage};
use crate::endpoint::{Endpoint, ReloadDriver};
use crate::reload::ReloadSource;
use crate::tcp::{TcpSettings, TcpState, TcpStats};

/// How often a blocked upstream receive wakes to check for the end.
const STOP_POLL: Duration = Duration::from_millis(100);
/// Resolution of upstream deadlines: timeouts are checked this often.
const TIMER_TICK: Duration = Duration::from_millis(10);

/// How a core serves its UDP listeners.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UdpSettings {
    /// Datagrams per recvmmsg/sendmmsg (`server.udp_recv_batch`).
    pub(crate) batch: usize,
    /// Coalesce replies with UDP GSO where the kernel can
    /// (`server.udp_gso`).
    pub(crate) gso: bool,
    /// Pause before reading again after a busy batch
    /// (`server.udp_coalesce`; zero = never).
    pub(crate) coalesce: Duration,
}

/// Everything one core needs, prepared on the starting thread.
pub(crate) struct CoreSetup {
    pub(crate) index: usize,
    pub(crate) listeners: Vec<Socket>,
    pub(crate) tcp_listeners: Vec<Socket>,
    pub(crate) tcp: TcpSettings,
    pub(crate) upstream_sockets: Vec<Socket>,
    pub(crate) resolver: Resolver,
    pub(crate) udp: UdpSettings,
    pub(crate) mesh: Option<MeshBuilder<Hint, Full>>,
    pub(crate) control_mesh: Option<MeshBuilder<ControlMessage, Full>>,
    /// Core 0 only: the control endpoint.
    pub(crate) endpoint: Option<EndpointSetup>,
    pub(crate) cores: usize,
    /// Entries loaded from the cache file, for every core to insert.
    pub(crate) preload: Arc<Vec<(QueryKey, Entry)>>,
    /// Hand the shard's entries back at the end (cache persistence).
    pub(crate) persist: bool,
    pub(crate) epoch: Instant,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) grace: Duration,
}

/// What core 0 needs to serve the control endpoint and drive reloads.
pub(crate) struct EndpointSetup {
    /// The bound listener, or `None` when the endpoint is disabled (SIGHUP
    /// still reloads).
    pub(crate) listener: Option<Socket>,
    pub(crate) reload_source: Option<ReloadSource>,
    pub(crate) reload_flag: Arc<AtomicBool>,
    pub(crate) config: Config,
}

/// What a core hands back when it stops.
pub(crate) struct CoreOutput {
    pub(crate) report: CoreReport,
    /// The shard's entries, when the cache is persisted.
    pub(crate) entries: Vec<Entry>,
}

/// What a core did, reported when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreReport {
    /// The core's index (0-based, in configured order).
    pub core: usize,
    /// The resolver's counters.
    pub resolver: ResolverStats,
    /// The cache shard's counters.
    pub cache: CacheStats,
    /// Hints that could not be sent because a peer's channel was full.
    pub hints_send_dropped: u64,
    /// Replies and upstream queries the kernel refused (full buffers).
    pub send_errors: u64,
    /// UDP reply counters (GSO).
    pub udp: UdpStats,
    /// Upstream queries in flight when the grace period ended.
    pub abandoned_inflight: usize,
    /// TCP counters (clients and upstreams).
    pub tcp: TcpStats,
    /// Client TCP connections open when the core stopped.
    pub tcp_open_connections: usize,
}

pub(crate) struct CoreState {
    pub(crate) index: usize,
    pub(crate) resolver: RefCell<Resolver>,
    pub(crate) tcp: TcpState,
    listener_fds: Vec<RawFd>,
    upstream_fds: Vec<(RawFd, bool)>,
    next_upstream_socket: Cell<usize>,
    /// The core's 64 KiB message buffer (upstream queries, replies to
    /// waiting or TCP clients): used only between awaits, never held
    /// across one.
    pub(crate) scratch: RefCell<Vec<u8>>,
    senders: Option<Senders<Hint>>,
    pub(crate) control: Option<ControlLink>,
    epoch: Instant,
    pub(crate) hints_sent: Cell<u64>,
    pub(crate) hints_send_dropped: Cell<u64>,
    pub(crate) send_errors: Cell<u64>,
    pub(crate) udp: Cell<UdpStats>,
}

impl CoreState {
    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.epoch.elapsed().as_millis() as u64)
    }

    /// An upstream socket of the right family, rotating through the pool
    /// so queries leave from several random ports.
    fn upstream_fd(&self, to: SocketAddr) -> Option<RawFd> {
        let count = self.upstream_fds.len();
        let start = self.next_upstream_socket.get();
        self.next_upstream_socket.set(start.wrapping_add(1));
        (0..count)
            .map(|offset| (start + offset) % count)
            .filter_map(|index| self.upstream_fds.get(index))
            .find(|(_, is_v6)| *is_v6 == to.is_ipv6())
            .map(|(fd, _)| *fd)
    }

    /// Send what the resolver produced: upstream queries, replies to
    /// waiting clients, and hints for the other cores.
    pub(crate) fn flush(self: &Rc<Self>, now: Timestamp) {
        let mut resolver = self.resolver.borrow_mut();
        let mut scratch = self.scratch.borrow_mut();
        while let Some(transmit) = resolver.poll_transmit(&mut scratch) {
            match transmit.transport {
                UpstreamTransport::Udp => {}
                UpstreamTransport::Tcp => {
                    let query = scratch.get(..transmit.len).unwrap_or_default();
                    self.tcp.send_upstream(self, transmit.to, query);
                    continue;
                }
                // Refused by config validation until the encrypted
                // transports land; the attempt times out and moves on.
                UpstreamTransport::Tls | UpstreamTransport::Https => {
                    self.send_errors.set(self.send_errors.get() + 1);
                    continue;
                }
            }
            let sent = self.upstream_fd(transmit.to).map(|fd| {
                send_to(
                    fd,
                    scratch.get(..transmit.len).unwrap_or_default(),
                    transmit.to,
                )
            });
            if !matches!(sent, Some(Ok(_))) {
                self.send_errors.set(self.send_errors.get() + 1);
            }
        }
        while let Some((client, len)) = resolver.poll_reply(&mut scratch, now) {
            if let Transport::Tcp(id) = client.transport {
                let _ = self.tcp.deliver(id, scratch.get(..len).unwrap_or_default());
                continue;
            }
            let Some(&fd) = self.listener_fds.get(usize::from(client.listener)) else {
                continue;
            };
            if send_to(fd, scratch.get(..len).unwrap_or_default(), client.addr).is_err() {
                self.send_errors.set(self.send_errors.get() + 1);
            }
        }
        if let Some(senders) = &self.senders {
            let send = |peer: usize, hint: Hint| {
                if senders.try_send_to(peer, hint).is_err() {
                    self.hints_send_dropped
                        .set(self.hints_send_dropped.get() + 1);
                } else {
                    self.hints_sent.set(self.hints_sent.get() + 1);
                }
            };
            let peers = senders.nr_consumers();
            let me = senders.peer_id();
            // The last peer gets the hint itself, the others a copy.
            let last = (0..peers).rev().find(|&peer| peer != me);
            while let Some(hint) = resolver.poll_hint() {
                for peer in (0..peers).filter(|&peer| peer != me && Some(peer) != last) {
                    send(peer, hint.clone());
                }
                if let Some(peer) = last {
                    send(peer, hint);
                }
            }
        } else {
            while resolver.poll_hint().is_some() {}
        }
    }
}

/// Serve one listening socket until shutdown: wait for a datagram with
/// glommio, drain the rest with recvmmsg, answer the batch with sendmmsg.
/// Returns the socket, which must stay open while replies to outstanding
/// queries may still be sent through it (its fd is in `listener_fds`).
async fn serve_udp(
    state: Rc<CoreState>,
    socket: UdpSocket,
    listener: u16,
    settings: UdpSettings,
    stopping: Rc<Semaphore>,
) -> UdpSocket {
    let fd = socket.as_raw_fd();
    let mut received = DatagramBatch::new(settings.batch);
    let mut replies = DatagramBatch::new(settings.batch);
    if settings.gso && !replies.enable_gso(fd) {
        log::info!(
            "core {}: the kernel has no UDP GSO (UDP_SEGMENT); replies leave one datagram each",
            state.index
        );
    }
    let mut busy = false;
    loop {
        // Under load the socket rarely runs dry, so it is drained with
        // recvmmsg first, and glommio's wait (a non-blocking recvmsg that
        // fails, an io_uring submission, a sleep) is paid only when that
        // found nothing. The wait consumes the datagram it wakes for, so no
        // wake-up can be lost (a peek-based wait did lose them under load).
        // It races the stop signal instead of carrying a read timeout,
        // which would arm and cancel a kernel timer on every wait.
        if stopping.try_acquire(1).is_err() {
            break;
        }
        let mut count = received.receive(fd, 0).unwrap_or(0);
        if count == 0 && busy && !settings.coalesce.is_zero() {
            // The last read found queries already queued (load) and the
            // socket is empty now: more are on their way. A short timer
            // wait lets them gather, so the next batch shares one wake-up,
            // one recvmmsg, one sendmmsg and its GSO sends among many
            // queries instead of paying them for one or two (a wake-up
            // through glommio costs several io_uring calls). A reply waits
            // at most `coalesce`; a wait that finds nothing ends the mode,
            // and a lone query after a quiet spell never enters it.
            glommio::timer::sleep(settings.coalesce).await;
            count = received.receive(fd, 0).unwrap_or(0);
        }
        busy = count > 0;
        if count == 0 {
            let first = futures_lite::future::or(
                async { Some(socket.recv_from(received.buffer_mut(0)).await) },
                async {
                    // Closed (never granted) when the core stops.
                    let _ = stopping.acquire(1).await;
                    None
                },
            )
            .await;
            let Some(first) = first else {
                break;
            };
            match first {
                Ok((len, from)) => {
                    received.set(0, len, from);
                    count = 1;
                }
                Err(err) => {
                    if !is_timeout(&err) {
                        log::debug!("core {}: receive error: {err}", state.index);
                    }
                    continue;
                }
            }
        } else {
            // Busy: let the core's other tasks (upstream replies, timers,
            // TCP) run when the time slice is up.
            glommio::yield_if_needed().await;
        }
        let now = state.now();
        let mut ready = 0usize;
        {
            let mut resolver = state.resolver.borrow_mut();
            for index in 0..count {
                let Some(addr) = received.address(index) else {
                    continue;
                };
                let client = ClientId {
                    addr,
                    transport: Transport::Udp,
                    listener,
                };
                let out = replies.buffer_mut(ready);
                if let QueryOutcome::Reply(len) =
                    resolver.handle_query(received.datagram(index), client, now, out)
                {
                    replies.set(ready, len, addr);
                    ready += 1;
                }
            }
        }
        if ready > 0 {
            let sent = replies.send(fd, ready);
            if sent < ready {
                state
                    .send_errors
                    .set(state.send_errors.get() + (ready - sent) as u64);
            }
            if settings.gso {
                let mut udp = state.udp.get();
                udp.add(replies.take_stats());
                state.udp.set(udp);
            }
        }
        state.flush(now);
    }
    socket
}

fn is_timeout(err: &glommio::GlommioError<()>) -> bool {
    matches!(err, glommio::GlommioError::TimedOut(_))
        || matches!(err, glommio::GlommioError::IoError(io) if io.kind() == std::io::ErrorKind::TimedOut || io.kind() == std::io::ErrorKind::WouldBlock)
}

/// Receive upstream replies on one upstream socket until the core ends.
async fn receive_upstream(state: Rc<CoreState>, socket: UdpSocket, done: Rc<Cell<bool>>) {
    let _ = socket.set_read_timeout(Some(STOP_POLL));
    let mut buf = vec![0u8; DATAGRAM_BUF];
    while !done.get() {
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                let now = state.now();
                state.resolver.borrow_mut().handle_upstream_reply(
                    from,
                    UpstreamTransport::Udp,
                    buf.get(..len).unwrap_or_default(),
                    now,
                );
                state.flush(now);
            }
            Err(err) => {
                if !is_timeout(&err) {
                    log::debug!("core {}: upstream receive error: {err}", state.index);
                }
            }
        }
    }
}

/// Upstream deadlines: retries, failover and SERVFAIL happen here.
/// Also watches the stop flag, and on stop ends the receive loops.
async fn run_timers(
    state: Rc<CoreState>,
    done: Rc<Cell<bool>>,
    stop: Arc<AtomicBool>,
    stopping: Rc<Semaphore>,
) {
    while !done.get() {
        glommio::timer::sleep(TIMER_TICK).await;
        if stop.load(Ordering::Relaxed) {
            stopping.close();
        }
        let now = state.now();
        let due = state
            .resolver
            .borrow_mut()
            .next_deadline()
            .is_some_and(|deadline| deadline <= now);
        if due {
            state.resolver.borrow_mut().handle_timeouts(now);
            state.flush(now);
        }
    }
}

/// The body of one core's executor.
pub(crate) async fn run_core(setup: CoreSetup) -> CoreOutput {
    let CoreSetup {
        index,
        listeners,
        tcp_listeners,
        tcp,
        upstream_sockets,
        mut resolver,
        udp,
        mesh,
        control_mesh,
        endpoint,
        cores,
        preload,
        persist,
        epoch,
        stop,
        grace,
    } = setup;
    let (senders, receivers) = match mesh {
        Some(mesh) => match mesh.join().await {
            Ok((senders, receivers)) => (Some(senders), Some(receivers)),
            Err(err) => {
                log::warn!("core {index}: could not join the hint mesh ({err}); hints are off");
                (None, None)
            }
        },
        None => (None, None),
    };
    let (control, control_receivers) = match control_mesh {
        Some(mesh) => match mesh.join().await {
            Ok((senders, receivers)) => (Some(ControlLink::new(senders)), Some(receivers)),
            Err(err) => {
                log::warn!("core {index}: could not join the control mesh ({err})");
                (None, None)
            }
        },
        None => (None, None),
    };
    if !preload.is_empty() {
        let now = Timestamp::from_millis(epoch.elapsed().as_millis() as u64);
        let cache = resolver.cache_mut();
        for (key, entry) in preload.iter() {
            // Only an entry larger than the whole shard is refused.
            let _ = cache.insert(key, entry.clone(), now);
        }
    }
    drop(preload);
    let listener_fds = listeners.iter().map(AsRawFd::as_raw_fd).collect();
    let upstream_fds = upstream_sockets
        .iter()
        .map(|socket| {
            let is_v6 = socket
                .local_addr()
                .ok()
                .and_then(|addr| addr.as_socket())
                .is_some_and(|addr| addr.is_ipv6());
            (socket.as_raw_fd(), is_v6)
        })
        .collect();
    let state = Rc::new(CoreState {
        index,
        resolver: RefCell::new(resolver),
        tcp: TcpState::new(tcp),
        listener_fds,
        upstream_fds,
        next_upstream_socket: Cell::new(index),
        scratch: RefCell::new(vec![0u8; usize::from(u16::MAX)]),
        senders,
        control,
        epoch,
        hints_sent: Cell::new(0),
        hints_send_dropped: Cell::new(0),
        send_errors: Cell::new(0),
        udp: Cell::new(UdpStats::default()),
    });
    if let Some(receivers) = control_receivers {
        crate::control::spawn_receivers(&state, receivers);
    }
    // TCP listeners (DNS and control) to shut down when serving stops.
    let mut listening_fds = Vec::new();
    if let Some(setup) = endpoint {
        let endpoint = Endpoint::new(
            Rc::clone(&state),
            cores,
            ReloadDriver::new(setup.reload_source, setup.config),
        );
        if let Some(listener) = setup.listener {
            listening_fds.push(listener.as_raw_fd());
            glommio::spawn_local(crate::endpoint::serve(
                Rc::clone(&endpoint),
                crate::batch::tcp_listener(listener),
                Arc::clone(&stop),
            ))
            .detach();
        }
        glommio::spawn_local(crate::endpoint::watch_reload_signal(
            endpoint,
            setup.reload_flag,
            Arc::clone(&stop),
        ))
        .detach();
    }
    let done = Rc::new(Cell::new(false));
    if let Some(mut receivers) = receivers {
        for (_, receiver) in receivers.streams() {
            let state = Rc::clone(&state);
            glommio::spawn_local(async move {
                while let Some(hint) = receiver.recv().await {
                    let now = state.now();
                    state.resolver.borrow_mut().receive_hint(hint, now);
                }
            })
            .detach();
        }
    }
    for socket in upstream_sockets {
        glommio::spawn_local(receive_upstream(
            Rc::clone(&state),
            UdpSocket::from(socket),
            Rc::clone(&done),
        ))
        .detach();
    }
    let stopping = Rc::new(Semaphore::new(0));
    glommio::spawn_local(run_timers(
        Rc::clone(&state),
        Rc::clone(&done),
        Arc::clone(&stop),
        Rc::clone(&stopping),
    ))
    .detach();
    let serving: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(listener, socket)| {
            glommio::spawn_local(serve_udp(
                Rc::clone(&state),
                UdpSocket::from(socket),
                listener as u16,
                udp,
                Rc::clone(&stopping),
            ))
        })
        .collect();
    // TCP listeners accept until they are shut down below (new connections
    // are refused once the stop flag is set).
    for (listener, socket) in tcp_listeners.into_iter().enumerate() {
        listening_fds.push(socket.as_raw_fd());
        glommio::spawn_local(crate::tcp::serve_tcp(
            Rc::clone(&state),
            crate::batch::tcp_listener(socket),
            listener as u16,
            Arc::clone(&stop),
        ))
        .detach();
    }
    // The listening sockets stay open through the grace period: the
    // answers to outstanding queries leave through them.
    let mut open_listeners = Vec::with_capacity(serving.len());
    for task in serving {
        open_listeners.push(task.await);
    }
    // A listener's pending accept sits in io_uring, which keeps the socket
    // listening until the ring is torn down, asynchronously, after the
    // process exits: a quick restart could not bind the control port, and
    // DNS connections would go to a listener no one serves. Shutting them
    // down ends the accepts and the listening state now.
    for fd in listening_fds {
        crate::batch::shutdown_socket(fd);
    }
    // Stopped receiving: give outstanding upstream queries a bounded time
    // to finish so their clients still get answers.
    let grace_end = Instant::now() + grace;
    while state.resolver.borrow().inflight() > 0 && Instant::now() < grace_end {
        glommio::timer::sleep(TIMER_TICK).await;
    }
    done.set(true);
    drop(open_listeners);
    if let Some(senders) = &state.senders {
        senders.close();
    }
    if let Some(control) = &state.control {
        control.close();
    }
    let resolver = state.resolver.borrow();
    let entries = if persist {
        resolver.cache().entries().cloned().collect()
    } else {
        Vec::new()
    };
    let report = CoreReport {
        core: index,
        resolver: *resolver.stats(),
        cache: resolver.cache().stats(),
        hints_send_dropped: state.hints_send_dropped.get(),
        send_errors: state.send_errors.get(),
        udp: state.udp.get(),
        abandoned_inflight: resolver.inflight(),
        tcp: state.tcp.stats.get(),
        tcp_open_connections: state.tcp.connections(),
    };
    CoreOutput { report, entries }
}
