//! The per-core worker: a glommio executor pinned to its CPU, with its
//! own listening sockets, batch buffers, resolver (and so cache shard),
//! upstream sockets and timers. [`run_core`] builds the core's
//! [`CoreContext`] and transports, joins the core mesh, spawns every task,
//! runs the timer loop, and winds down on stop. Cores share nothing on
//! the query path; they exchange only cache-fill hints through bounded
//! per-core inboxes (a full inbox drops the hint and counts it).

use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use glommio::channels::local_channel::{self, LocalSender};
use glommio::net::UdpSocket;
use glommio::sync::Semaphore;
use heimdall_cache::Entry;
use heimdall_config::Config;
use heimdall_resolver::Resolver;
use heimdall_wire::QueryKey;
use socket2::Socket;

use crate::batch::{shutdown_socket, tcp_listener};
use crate::context::{CoreContext, Routes};
use crate::dnstap::{Dnstap, DnstapSettings};
use crate::endpoint::Endpoint;
use crate::hot_names::{HotNames, SpreadSet};
use crate::mesh::{CoreAnswer, CoreCommand, CoreMesh, HintInboxes, HintLink, RequestStar};
use crate::reload::{ReloadDriver, ReloadSource};
use crate::stats::CoreReport;
use crate::tickets::TicketRotation;
use crate::tls::ServerConfigs;
use crate::transport::conn::{StreamClients, StreamKind, TcpSettings};
use crate::transport::https::HttpsClients;
use crate::transport::quic::QuicClients;
use crate::transport::udp::{UdpReplies, UdpSettings};
use crate::upstream::https::HttpsUpstreams;
use crate::upstream::tcp::{TcpUpstreamSettings, TcpUpstreams};
use crate::upstream::tls::TlsUpstreamSetup;
use crate::upstream::udp::{UdpUpstreamSettings, UdpUpstreams};

/// At shutdown, how long the dnstap writer gets to write what is left,
/// send STOP and read FINISH (its own steps are bounded within this).
const DNSTAP_FINISH: Duration = Duration::from_secs(3);
/// How often the drain at shutdown looks whether queries are left.
const TIMER_TICK: Duration = Duration::from_millis(10);
/// At shutdown, how long the TCP writer tasks get to send the replies of
/// the queries ended at the drain limit.
const TCP_FLUSH: Duration = Duration::from_millis(50);

/// Everything one core needs, prepared on the starting thread.
pub(crate) struct CoreSetup {
    pub(crate) index: usize,
    pub(crate) listeners: Vec<Socket>,
    pub(crate) tcp_listeners: Vec<Socket>,
    pub(crate) tcp: TcpSettings,
    pub(crate) tcp_upstream: TcpUpstreamSettings,
    pub(crate) udp_upstream: UdpUpstreamSettings,
    pub(crate) resolver: Resolver,
    pub(crate) udp: UdpSettings,
    /// The hint inboxes (hints sent: `server.steering: flow`, hints on,
    /// more than one core).
    pub(crate) hints: Option<Arc<HintInboxes>>,
    pub(crate) request_mesh: Option<RequestStar>,
    /// Core 0 only: the control endpoint.
    pub(crate) endpoint: Option<EndpointSetup>,
    pub(crate) cores: usize,
    /// Entries loaded from the cache file, for every core to insert.
    pub(crate) preload: Arc<Vec<(QueryKey, Entry)>>,
    /// Hand the shard's entries back at the end (cache persistence).
    pub(crate) persist: bool,
    pub(crate) epoch: Instant,
    pub(crate) stop: Arc<AtomicBool>,
    /// The core's end of its doorbell (crate::wake).
    pub(crate) doorbell: Socket,
    pub(crate) grace: Duration,
    /// dnstap, when enabled.
    pub(crate) dnstap: Option<DnstapSettings>,
    /// DNS over TLS and HTTPS, both sides.
    pub(crate) encrypted: EncryptedSetup,
    /// Name steering's basis and the names spread over every core (name
    /// steering on more than one core).
    pub(crate) spread: Option<Arc<SpreadSet>>,
}

/// What one core needs for the encrypted transports.
pub(crate) struct EncryptedSetup {
    /// The server configurations (with certificate), when a DoT or DoH
    /// listener is configured.
    pub(crate) server: Option<ServerConfigs>,
    /// This core's DNS-over-TLS listeners.
    pub(crate) tls_listeners: Vec<Socket>,
    /// This core's DNS-over-HTTPS listeners.
    pub(crate) https_listeners: Vec<Socket>,
    /// This core's DNS-over-QUIC sockets.
    pub(crate) quic_listeners: Vec<Socket>,
    /// Their quinn-proto configuration (with sockets only).
    pub(crate) quic_config: Option<Arc<quinn_proto::ServerConfig>>,
    /// `tls.https_path`.
    pub(crate) https_path: Arc<str>,
    /// The client side of `tls` upstreams, when there is one.
    pub(crate) upstream: Option<TlsUpstreamSetup>,
}

/// What core 0 needs to serve the control endpoint and drive reloads.
pub(crate) struct EndpointSetup {
    /// The bound listener, or `None` when the endpoint is disabled (SIGHUP
    /// still reloads).
    pub(crate) listener: Option<Socket>,
    pub(crate) reload_source: Option<ReloadSource>,
    /// Lifecycle events (readiness, reloads, watchdog), and the watchdog
    /// interval.
    pub(crate) events: Option<crate::events::EventSink>,
    pub(crate) watchdog: Option<Duration>,
    pub(crate) reload_flag: Arc<AtomicBool>,
    pub(crate) config: Config,
    /// The cookie secret and clock epoch every reload builds with.
    pub(crate) cookies: crate::policy::CookieRuntime,
    /// The certificate of the encrypted listeners, re-read by a reload.
    pub(crate) certificate: Option<Arc<crate::tls::CertificateSlot>>,
    /// The first session-ticket key set and the rotation period (tickets
    /// on), for core 0 to rotate.
    pub(crate) tickets: Option<(Arc<crate::tickets::TicketKeys>, Duration)>,
}

/// What a core hands back when it stops.
pub(crate) struct CoreOutput {
    pub(crate) report: CoreReport,
    /// The shard's entries, when the cache is persisted.
    pub(crate) entries: Vec<Entry>,
}

/// The transports with state of their own, kept by the worker for the
/// client TCP listeners and the end-of-run report.
struct Transports {
    udp_clients: Rc<UdpReplies>,
    tcp_clients: Rc<StreamClients>,
    tls_clients: Rc<StreamClients>,
    https_clients: Rc<HttpsClients>,
    quic_clients: Rc<QuicClients>,
    tcp_upstreams: Rc<TcpUpstreams>,
    tls_upstreams: Rc<TcpUpstreams>,
    https_upstreams: Rc<HttpsUpstreams>,
    udp_upstreams: Rc<UdpUpstreams>,
}

/// Run one request from the control core on this core.
fn execute(ctx: &CoreContext, command: CoreCommand) -> CoreAnswer {
    // The core's waiting hints first: a snapshot counts them, a flush
    // removes what they carried too.
    ctx.take_hints();
    match command {
        CoreCommand::Ping => CoreAnswer::Pong,
        CoreCommand::Snapshot => CoreAnswer::Snapshot(Box::new(ctx.snapshot())),
        CoreCommand::Flush { name, qtype } => {
            CoreAnswer::Flushed(ctx.flush_cache(name.as_deref(), qtype))
        }
        CoreCommand::Lookup { name, qtype } => CoreAnswer::Entries(ctx.cache_lookup(&name, qtype)),
        CoreCommand::Dump => CoreAnswer::Dumped(ctx.dump_cache()),
        CoreCommand::TopQueries => CoreAnswer::Top(ctx.top_queries()),
        CoreCommand::Load(text) => CoreAnswer::Loaded(ctx.load_cache(&text)),
        CoreCommand::Reconfigure(config) => CoreAnswer::Reconfigured(ctx.reconfigure(&config)),
        CoreCommand::TicketKeys(keys) => CoreAnswer::TicketKeysTaken(ctx.install_ticket_keys(keys)),
    }
}

/// The core's context and transports.
fn build(
    index: usize,
    (settings, encrypted): ((TcpSettings, TcpUpstreamSettings), &EncryptedSetup),
    (listener_fds, spread): (Vec<RawFd>, Option<Arc<SpreadSet>>),
    (udp_upstream, udp): (&UdpUpstreamSettings, UdpSettings),
    resolver: Resolver,
    (hints, dnstap): (Option<HintLink>, Option<Rc<Dnstap>>),
    epoch: Instant,
) -> (Rc<CoreContext>, Transports) {
    let owners = spread.clone();
    let hot = spread
        .filter(|set| set.spreads())
        .map(|set| HotNames::new(set, listener_fds.clone(), Instant::now()));
    let transports = Transports {
        udp_clients: Rc::new(UdpReplies::new(listener_fds, udp.batch, udp.gso)),
        tcp_clients: Rc::new(StreamClients::new(StreamKind::Tcp, settings.0)),
        tls_clients: Rc::new(StreamClients::new(StreamKind::Tls, settings.0)),
        https_clients: Rc::new(HttpsClients::new(settings.0, &encrypted.https_path)),
        quic_clients: Rc::new(QuicClients::new(
            settings.0,
            (
                encrypted.quic_config.clone(),
                encrypted
                    .server
                    .as_ref()
                    .and_then(|configs| configs.ticketer.clone()),
            ),
            &crate::transport::quic::fds(&encrypted.quic_listeners),
        )),
        tcp_upstreams: Rc::new(TcpUpstreams::new(settings.1)),
        tls_upstreams: Rc::new(TcpUpstreams::with_tls(
            settings.1,
            encrypted.upstream.clone(),
        )),
        https_upstreams: Rc::new(HttpsUpstreams::new(settings.1, encrypted.upstream.clone())),
        udp_upstreams: Rc::new(UdpUpstreams::new(udp_upstream)),
    };
    let routes = Routes {
        udp_clients: Rc::clone(&transports.udp_clients) as _,
        tcp_clients: Rc::clone(&transports.tcp_clients) as _,
        tls_clients: Rc::clone(&transports.tls_clients) as _,
        https_clients: Rc::clone(&transports.https_clients) as _,
        quic_clients: Rc::clone(&transports.quic_clients) as _,
        udp_upstreams: Rc::clone(&transports.udp_upstreams) as _,
        tcp_upstreams: Rc::clone(&transports.tcp_upstreams) as _,
        tls_upstreams: Rc::clone(&transports.tls_upstreams) as _,
        https_upstreams: Rc::clone(&transports.https_upstreams) as _,
        hints,
    };
    let ctx = Rc::new(
        CoreContext::new(index, resolver, routes, epoch)
            .with_dnstap(dnstap)
            .with_steering(hot, owners)
            .with_tickets(
                encrypted
                    .server
                    .as_ref()
                    .and_then(|configs| configs.ticketer.clone()),
            ),
    );
    (ctx, transports)
}

/// Core 0's control channels (HTTP listener and unix socket), lifecycle
/// events and reload task. Returns the HTTP listener's fd, to shut down
/// at the end, how a doorbell ring asks for a reload (the flag the handle
/// raised and the reload task's queue), and the control socket's path
/// when this server made it (removed at the end).
fn spawn_endpoint(
    setup: EndpointSetup,
    mesh: &Rc<CoreMesh>,
    cores: usize,
    stop: &Arc<AtomicBool>,
) -> ControlParts {
    let control = setup.config.control.clone();
    let mut socket = None;
    let tickets = setup
        .tickets
        .map(|(keys, period)| Rc::new(TicketRotation::new(keys, period)));
    if let Some(rotation) = &tickets {
        glommio::spawn_local(crate::reload::rotate_tickets(
            Rc::clone(mesh),
            Rc::clone(rotation),
        ))
        .detach();
    }
    let driver = Rc::new(
        ReloadDriver::new(
            setup.reload_source,
            setup.config,
            Rc::clone(mesh),
            setup.cookies,
            setup.events.clone(),
        )
        .with_certificate(setup.certificate, tickets),
    );
    let endpoint = Endpoint::new(Rc::clone(mesh), cores, Rc::clone(&driver), &control);
    // The socket is in place before readiness is reported (the watch task
    // below runs after this function): `heimdall ctl` works once systemd
    // says the service is up.
    if !control.socket.as_os_str().is_empty() {
        match crate::endpoint::bind_control_socket(&control.socket) {
            Ok(listener) => {
                log::info!("control socket on {}", control.socket.display());
                socket = Some(control.socket.clone());
                glommio::spawn_local(crate::endpoint::serve_socket(
                    Rc::clone(&endpoint),
                    listener,
                    Arc::clone(stop),
                ))
                .detach();
            }
            Err(err) => log::warn!(
                "control socket {}: not served ({err}); heimdall ctl cannot reach this server",
                control.socket.display()
            ),
        }
    }
    if let Some(sink) = setup.events {
        glommio::spawn_local(crate::events::watch(
            Rc::clone(mesh),
            cores,
            sink,
            setup.watchdog,
            Arc::clone(stop),
        ))
        .detach();
    }
    let mut listening = None;
    if let Some(listener) = setup.listener {
        listening = Some(listener.as_raw_fd());
        glommio::spawn_local(crate::endpoint::serve(
            endpoint,
            tcp_listener(listener),
            Arc::clone(stop),
        ))
        .detach();
    }
    // One queued request is enough: a reload reads the newest file.
    let (requests, requested) = local_channel::new_bounded(1);
    glommio::spawn_local(crate::reload::serve_reload_requests(
        driver, cores, requested,
    ))
    .detach();
    ControlParts {
        listening,
        reload: (setup.reload_flag, requests),
        socket,
    }
}

/// What [`spawn_endpoint`] hands back to the core.
struct ControlParts {
    /// The HTTP listener's fd, to shut down at the end.
    listening: Option<RawFd>,
    /// How a doorbell ring asks for a reload.
    reload: (Arc<AtomicBool>, LocalSender<()>),
    /// The control socket's path when this server made it.
    socket: Option<std::path::PathBuf>,
}

/// Upstream deadlines: retries, failover and SERVFAIL happen here. The
/// loop sleeps until the resolver's earliest deadline, or until the alarm
/// rings when nothing is in flight: an idle core has no timer armed.
async fn run_timers(ctx: Rc<CoreContext>) {
    // `handle_timeouts` leaves no deadline due (the resolver's test
    // handling_the_timeouts_leaves_no_deadline_due), so a due one is
    // handled once and the loop then sleeps.
    loop {
        let now = ctx.now();
        let next = ctx.next_deadline();
        ctx.alarm().arm(next);
        match next {
            Some(deadline) if deadline <= now => {}
            Some(deadline) => {
                let wait = Duration::from_millis(deadline.as_millis() - now.as_millis());
                futures_lite::future::or(glommio::timer::sleep(wait), ctx.alarm().rung()).await;
            }
            None => ctx.alarm().rung().await,
        }
        ctx.timeouts();
    }
}

/// What a core does when its doorbell rings: on stop, end the receive
/// loops; on core 0, pass a reload request on to the reload task.
struct RingHandler {
    stop: Arc<AtomicBool>,
    stopping: Rc<Semaphore>,
    reload: Option<(Arc<AtomicBool>, LocalSender<()>)>,
}

impl RingHandler {
    /// Handle a ring; `false` once the core is stopping (no more rings
    /// matter).
    fn on_ring(&self) -> bool {
        if let Some((flag, reload)) = &self.reload
            && flag.swap(false, Ordering::AcqRel)
        {
            // A reload already queued covers this one too.
            let _ = reload.try_send(());
        }
        if self.stop.load(Ordering::Acquire) {
            self.stopping.close();
            return false;
        }
        true
    }
}

/// Serve the clients of the encrypted transports: one accept loop per
/// DoT and DoH listener (each fd added to `listening_fds`, to shut down
/// at the end), and per DoQ socket a receive loop, with one timer task
/// for all of the core's QUIC connections.
fn serve_encrypted(
    ctx: &Rc<CoreContext>,
    transports: &Transports,
    setup: EncryptedSetup,
    stop: &Arc<AtomicBool>,
    listening_fds: &mut Vec<RawFd>,
) {
    let Some(configs) = setup.server else {
        return;
    };
    if !setup.quic_listeners.is_empty() {
        glommio::spawn_local(crate::transport::quic::run_quic_timers(
            Rc::clone(ctx),
            Rc::clone(&transports.quic_clients),
        ))
        .detach();
    }
    for (listener, socket) in setup.quic_listeners.into_iter().enumerate() {
        glommio::spawn_local(crate::transport::quic::serve_quic(
            Rc::clone(ctx),
            Rc::clone(&transports.quic_clients),
            UdpSocket::from(socket),
            listener as u16,
            Arc::clone(stop),
        ))
        .detach();
    }
    for (listener, socket) in setup.tls_listeners.into_iter().enumerate() {
        listening_fds.push(socket.as_raw_fd());
        glommio::spawn_local(crate::transport::tls::serve_tls(
            Rc::clone(ctx),
            Rc::clone(&transports.tls_clients),
            tcp_listener(socket),
            listener as u16,
            Arc::clone(&configs.dot),
            Arc::clone(stop),
        ))
        .detach();
    }
    for (listener, socket) in setup.https_listeners.into_iter().enumerate() {
        listening_fds.push(socket.as_raw_fd());
        glommio::spawn_local(crate::transport::https::serve_https(
            Rc::clone(ctx),
            Rc::clone(&transports.https_clients),
            tcp_listener(socket),
            listener as u16,
            Arc::clone(&configs.doh),
            Arc::clone(stop),
        ))
        .detach();
    }
}

/// Serve the clients: one UDP loop per listening socket (returned, to be
/// awaited) and one TCP accept loop per listener (its fd added to
/// `listening_fds`, to shut down at the end).
fn serve_clients(
    ctx: &Rc<CoreContext>,
    tcp_clients: &Rc<StreamClients>,
    (listeners, tcp_listeners): (Vec<Socket>, Vec<Socket>),
    udp: UdpSettings,
    stopping: &Rc<Semaphore>,
    stop: &Arc<AtomicBool>,
    listening_fds: &mut Vec<RawFd>,
) -> Vec<glommio::Task<UdpSocket>> {
    let serving = listeners
        .into_iter()
        .enumerate()
        .map(|(listener, socket)| {
            glommio::spawn_local(crate::transport::udp::serve_udp(
                Rc::clone(ctx),
                UdpSocket::from(socket),
                listener as u16,
                udp,
                Rc::clone(stopping),
            ))
        })
        .collect();
    // TCP listeners accept until they are shut down (new connections are
    // refused once the stop flag is set).
    for (listener, socket) in tcp_listeners.into_iter().enumerate() {
        listening_fds.push(socket.as_raw_fd());
        glommio::spawn_local(crate::transport::tcp::serve_tcp(
            Rc::clone(ctx),
            Rc::clone(tcp_clients),
            tcp_listener(socket),
            listener as u16,
            Arc::clone(stop),
        ))
        .detach();
    }
    serving
}

/// Once the UDP loops have stopped: shut the listeners down, give
/// outstanding upstream queries a bounded time to finish so their clients
/// still get answers, then answer the ones still waiting (stale data or
/// SERVFAIL: never silence) before the listening sockets close.
async fn wind_down(ctx: &Rc<CoreContext>, listening_fds: Vec<RawFd>, grace: Duration) {
    // A listener's pending accept sits in io_uring, which keeps the socket
    // listening until the ring is torn down, asynchronously, after the
    // process exits: a quick restart could not bind the control port, and
    // DNS connections would go to a listener no one serves. Shutting them
    // down ends the accepts and the listening state now.
    for fd in listening_fds {
        shutdown_socket(fd);
    }
    let grace_end = Instant::now() + grace;
    while ctx.inflight() > 0 && Instant::now() < grace_end {
        glommio::timer::sleep(TIMER_TICK).await;
    }
    let abandoned = ctx.abandon_all();
    if abandoned > 0 {
        log::info!(
            "core {}: {abandoned} queries still waiting after the {grace:?} drain limit \
             answered with stale data or SERVFAIL",
            ctx.index()
        );
        // UDP replies left in `abandon_all`; TCP replies sit in their
        // connections' writer tasks, which need a moment to write them.
        glommio::timer::sleep(TCP_FLUSH).await;
    }
}

/// The timer loop (returned: dropping it ends the loop) and the doorbell
/// task. Returns the semaphore closed when the doorbell says stop.
fn spawn_timers(
    ctx: &Rc<CoreContext>,
    doorbell: Socket,
    stop: &Arc<AtomicBool>,
    reload: Option<(Arc<AtomicBool>, LocalSender<()>)>,
) -> (glommio::Task<()>, Rc<Semaphore>) {
    let stopping = Rc::new(Semaphore::new(0));
    let timers = glommio::spawn_local(run_timers(Rc::clone(ctx)));
    let handler = RingHandler {
        stop: Arc::clone(stop),
        stopping: Rc::clone(&stopping),
        reload,
    };
    // A stop requested before this task first ran is seen at once.
    if handler.on_ring() {
        glommio::spawn_local(crate::wake::answer_rings(doorbell, move || {
            handler.on_ring()
        }))
        .detach();
    }
    (timers, stopping)
}

/// The body of one core's executor.
pub(crate) async fn run_core(setup: CoreSetup) -> CoreOutput {
    let CoreSetup {
        index,
        listeners,
        tcp_listeners,
        tcp,
        tcp_upstream,
        udp_upstream,
        resolver,
        udp,
        hints,
        request_mesh,
        endpoint,
        cores,
        preload,
        persist,
        epoch,
        stop,
        doorbell,
        grace,
        dnstap,
        encrypted,
        spread,
    } = setup;
    let request_mesh = match request_mesh {
        Some(star) => star.join(index).await,
        None => None,
    };
    let (request_senders, request_receivers) = request_mesh.unzip();
    let listener_fds = listeners.iter().map(AsRawFd::as_raw_fd).collect();
    let tap = dnstap.as_ref().map(Dnstap::new);
    let (ctx, transports) = build(
        index,
        ((tcp, tcp_upstream), &encrypted),
        (listener_fds, spread),
        (&udp_upstream, udp),
        resolver,
        (
            hints.map(|inboxes| HintLink::new(inboxes, index)),
            tap.as_ref().map(|(tap, _)| Rc::clone(tap)),
        ),
        epoch,
    );
    let tap_writer = tap.map(|(tap, path)| {
        let writer = glommio::spawn_local(crate::dnstap::run_writer(Rc::clone(&tap), path, index));
        (tap, writer)
    });
    glommio::spawn_local(crate::transport::udp::flush_waiting_replies(
        Rc::clone(&ctx),
        Rc::clone(&transports.udp_clients),
    ))
    .detach();
    if !preload.is_empty() {
        ctx.preload(&preload);
    }
    drop(preload);
    let execute_here = Rc::clone(&ctx);
    let execute_here = Box::new(move |command| execute(&execute_here, command));
    let mesh = CoreMesh::new(index, cores, request_senders, execute_here);
    if let Some(receivers) = request_receivers {
        mesh.spawn_receivers(receivers);
    }
    // TCP listeners (DNS and control) to shut down when serving stops.
    let mut listening_fds = Vec::new();
    let mut reload_requests = None;
    let mut control_socket = None;
    if let Some(setup) = endpoint {
        let parts = spawn_endpoint(setup, &mesh, cores, &stop);
        listening_fds.extend(parts.listening);
        reload_requests = Some(parts.reload);
        control_socket = parts.socket;
    }
    let (timers, stopping) = spawn_timers(&ctx, doorbell, &stop, reload_requests);
    serve_encrypted(&ctx, &transports, encrypted, &stop, &mut listening_fds);
    let clients = (listeners, tcp_listeners);
    let serving = serve_clients(
        &ctx,
        &transports.tcp_clients,
        clients,
        udp,
        &stopping,
        &stop,
        &mut listening_fds,
    );
    // The listening sockets stay open through the grace period: the
    // answers to outstanding queries leave through them.
    let mut open_listeners = Vec::with_capacity(serving.len());
    for task in serving {
        open_listeners.push(task.await);
    }
    if let Some(path) = control_socket {
        // Serving stops: `heimdall ctl` gets "no such file", not a hang.
        let _ = std::fs::remove_file(path);
    }
    wind_down(&ctx, listening_fds, grace).await;
    drop(timers);
    // The last waiting replies leave before the listeners close.
    transports.udp_clients.flush(&ctx);
    if let Some((tap, writer)) = tap_writer {
        // Every message is in the tap now: write it, then STOP (bounded;
        // a writer still waiting after that is dropped, which ends it).
        tap.stop();
        let _ = crate::stream::until(Instant::now() + DNSTAP_FINISH, writer).await;
        tap.abandon_pending();
    }
    transports.udp_upstreams.close_all();
    drop(open_listeners);
    mesh.close();
    let tcp = transports
        .tcp_clients
        .stats()
        .merged(transports.tcp_upstreams.stats());
    let (report, entries) = ctx.finish(tcp, transports.tcp_clients.connections(), persist);
    CoreOutput { report, entries }
}
