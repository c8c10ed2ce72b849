//! heimdall-server: the thread-per-core runtime, and the only crate that
//! uses glommio.
//!
//! [`Server::start`] turns a validated [`Config`] into one pinned glommio
//! executor per configured CPU. Each executor owns its `SO_REUSEPORT`
//! sockets, batch buffers, resolver (with its cache shard), upstream
//! sockets and timers; the executors exchange only cache-fill hints over a
//! bounded channel mesh. The returned [`ServerHandle`] reports the bound
//! addresses, stops the server gracefully and collects each core's
//! counters.
//!
//! Operations: core 0 also serves the HTTP control endpoint (metrics,
//! health, cache flush, reload) and asks the other cores over a second,
//! request-only channel mesh; a reload (HTTP or SIGHUP via
//! [`ServerHandle::reload_flag`]) swaps every core's read-only snapshot
//! while the caches stay. With `cache.persist`, the caches are loaded at
//! start and saved by [`ServerHandle::join`].
//!
//! Modules, each depending only on those below it:
//!
//! - `worker`: one core's executor body: builds the rest, spawns the tasks,
//!   winds down;
//! - `endpoint`: the HTTP control endpoint (core 0);
//! - `transport::{udp, tcp, tls, https, quic}`: client transports (TCP and
//!   TLS share `transport::conn`; QUIC drives quinn-proto); `upstream::{udp, tcp, tls}`: upstream
//!   transports. Each reaches the resolver only through `context`;
//! - `tls`: rustls over glommio streams (`TlsStream`), the certificate
//!   files, and the tokio-trait view h2 needs; `tickets`: the
//!   session-ticket keys every core holds, and their rotation;
//! - `context`: `CoreContext`, the narrow per-core interface between the
//!   transports and the resolver, and the one place a `Transmit` is
//!   dispatched;
//! - `reload`: all of hot reload; `mesh`: the channels between cores;
//! - `events`: readiness, reload and watchdog events for a service
//!   manager ([`StartOptions::events`]);
//! - `dnstap`: the core's dnstap tap (the hooks in `context` and the
//!   upstream transports encode into it) and its writer task;
//! - `hot_names`: names hot enough to spread over every core under name
//!   steering (from the sampled queries);
//! - `stats`, `stream`, `sockets`, `batch`, `persist`, `policy`, `process`,
//!   `steering` (the BPF program), `top` (sampled top queries), `error`:
//!   leaves.

mod batch;
mod context;
mod dnstap;
mod endpoint;
mod error;
mod events;
mod hot_names;
mod mesh;
mod persist;
mod policy;
mod process;
mod reload;
mod sockets;
mod stats;
mod steering;
mod stream;
mod tickets;
mod tls;
mod top;
mod transport;
mod upstream;
mod wake;
mod worker;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::path::PathBuf;

use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use heimdall_cache::Timestamp;
use heimdall_config::{Config, Steering, UpstreamTransport};
use heimdall_resolver::Resolver;

pub use crate::batch::UdpStats;
pub use crate::endpoint::HEALTH_TIMEOUT;
pub use crate::error::ServerError;
pub use crate::events::{EventSink, ServerEvent};
pub use crate::policy::{PolicyLoadError, build_blocklist, build_local, build_policy};
pub use crate::reload::ReloadSource;
pub use crate::stats::{CoreReport, DohErrors, DoqStats, TcpStats, TlsStats, UpstreamTlsStats};
pub use crate::tls::TlsSetupError;
use crate::worker::CoreOutput;

/// How long a core runs its tasks before glommio goes back to io_uring for
/// completions. Under load the receive loop always finds datagrams and
/// never waits, so upstream replies (the answers to cache misses) sit in
/// the ring until this expires: with glommio's default of 100 ms the 99th
/// percentile of a mixed load was 17 ms, with 1 ms 5-7 ms
/// (`benches/peers/mixed-latency.sh`; docs/BENCHMARKS.md has the run).
pub const PREEMPT_TIMER: Duration = Duration::from_millis(1);
/// Added to the longest query lifetime for the default drain limit (`server.shutdown_grace: 0s`): room for the last attempt's
/// deadline to be seen (timer ticks) and its reply to be sent.
pub const SHUTDOWN_GRACE_MARGIN: Duration = Duration::from_millis(500);

/// A running server.
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    /// One per core, in core order: wakes it to look at the flags.
    doorbells: Vec<wake::Doorbell>,
    executors: Vec<ExecutorJoinHandle<CoreOutput>>,
    udp_addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    https_addrs: Vec<SocketAddr>,
    quic_addrs: Vec<SocketAddr>,
    control_addr: Option<SocketAddr>,
    cpus: Vec<usize>,
    persist: Option<PathBuf>,
    epoch: Instant,
}

/// Starts servers.
pub struct Server;

/// Options of [`Server::start_with`].
#[derive(Clone, Default)]
pub struct StartOptions {
    /// Where a reload gets the new configuration; without one, `POST
    /// /reload` and [`ServerHandle::request_reload`] report that there is
    /// nothing to reload from.
    pub reload_source: Option<ReloadSource>,
    /// Run this many executors, pinned to no CPU (glommio's
    /// `Placement::Unbound`), instead of one per CPU of `server.cores`:
    /// for tests that need more cores than the machine has.
    pub unpinned_cores: Option<usize>,
    /// Where lifecycle events go (readiness, reloads, watchdog beats): the
    /// binary sends them to systemd. `None` reports nothing.
    pub events: Option<EventSink>,
    /// With `events`: ping every core this often and report
    /// [`ServerEvent::Alive`] when all answered (the systemd watchdog).
    pub watchdog: Option<std::time::Duration>,
}

impl Server {
    /// Bind every socket and start one executor per configured core.
    /// Returns once the sockets are bound; queries are answered from then
    /// on (the kernel queues them until each executor runs).
    pub fn start(config: &Config) -> Result<ServerHandle, ServerError> {
        Self::start_with(config, StartOptions::default())
    }

    /// [`Server::start`], with a source of configurations for hot reload.
    pub fn start_with(config: &Config, options: StartOptions) -> Result<ServerHandle, ServerError> {
        let cpus = match options.unpinned_cores {
            Some(cores) => (0..cores.max(1)).collect(),
            None => config.cpu_ids(&heimdall_config::available_cpu_ids())?,
        };
        let pinned = options.unpinned_cores.is_none();
        let cores = cpus.len().max(1);
        let sockets::Listeners {
            udp: listeners,
            tcp: tcp_listeners,
            bound: udp_addrs,
        } = sockets::listen_per_core(&config.server.listen, cores)?;
        let (tcp, tcp_upstream) = tcp_settings(config);
        let encrypted = encrypted_setup(config, cores)?;
        let epoch = Instant::now();
        let cookies = policy::CookieRuntime::new(epoch)?;
        let resolver_config = reload::build_resolver_config(config, cores, &cookies)?;
        let control_listener = if config.control.enabled {
            Some(sockets::control_listener(config.control.listen)?)
        } else {
            None
        };
        let control_addr = control_listener
            .as_ref()
            .and_then(|socket| socket.local_addr().ok())
            .and_then(|addr| addr.as_socket());
        let grace = shutdown_grace(
            config,
            Duration::from_millis(resolver_config.max_query_lifetime_ms()),
        );
        let udp_upstream = udp_upstream_settings(config, &udp_addrs, control_addr);
        let mut spread = None;
        if config.server.steering == Steering::Name && cores > 1 {
            // Each listen address's group: its sockets are bound in core
            // order, so the socket index the program returns is the core.
            let leaders: Vec<_> = listeners
                .first()
                .map(|first| first.iter().map(AsRawFd::as_raw_fd).collect())
                .unwrap_or_default();
            let cores = u32::try_from(cores).unwrap_or(u32::MAX);
            let basis = rand::random();
            steering::attach(&leaders, basis, cores).map_err(ServerError::Steering)?;
            spread = Some(Arc::new(hot_names::SpreadSet::new(
                basis,
                cores,
                u64::from(config.server.steering_spread),
            )));
        }
        let dnstap = dnstap::DnstapSettings::new(&config.dnstap, &udp_addrs);
        let hints = (reload::hints_sent(config) && cores > 1).then(|| {
            let capacity = config.hints.channel_capacity;
            log::info!(
                "hint inboxes: {cores} x {capacity} hints, up to {} KiB",
                mesh::HintInboxes::footprint(cores, capacity) >> 10
            );
            mesh::HintInboxes::new(cores, capacity)
        });
        let request_mesh = (cores > 1).then(|| mesh::RequestStar::new(cores));
        let stop = Arc::new(AtomicBool::new(false));
        let reload_flag = Arc::new(AtomicBool::new(false));
        let preload = Arc::new(load_cache(config, &resolver_config.cache_policy, cores));
        let mut endpoint = Some(worker::EndpointSetup {
            listener: control_listener,
            reload_source: options.reload_source,
            events: options.events,
            watchdog: options.watchdog,
            reload_flag: Arc::clone(&reload_flag),
            config: config.clone(),
            cookies,
            certificate: encrypted
                .server
                .as_ref()
                .map(|configs| Arc::clone(&configs.certificate)),
            tickets: encrypted
                .server
                .as_ref()
                .and_then(|configs| configs.tickets.clone()),
        });
        let mut executors = Vec::with_capacity(cores);
        let mut doorbells = Vec::with_capacity(cores);
        let EncryptedListeners {
            server: tls_server,
            tls: mut tls_per_core,
            https: mut https_per_core,
            quic: mut quic_per_core,
            tls_addrs,
            https_addrs,
            quic_addrs,
            upstream: tls_upstream,
        } = encrypted;
        let https_path: Arc<str> = Arc::from(config.tls.https_path.as_str());
        let per_core = cpus.iter().zip(listeners.into_iter().zip(tcp_listeners));
        for (index, (&cpu, (listeners, tcp_listeners))) in per_core.enumerate() {
            let resolver = Resolver::new(resolver_config.clone())?;
            // Each core its own copy of the TLS configurations, with its
            // own ticketer over the key set all hold.
            let core_tls = tls_server.as_ref().map(tls::ServerConfigs::for_core);
            let quic_config = match &core_tls {
                Some(configs) if !config.tls.quic_listen.is_empty() => Some(
                    transport::quic::server_config(Arc::clone(&configs.doq), tcp)
                        .map_err(|err| ServerError::Tls(tls::TlsSetupError::Rustls(err)))?,
                ),
                _ => None,
            };
            let (doorbell, core_doorbell) = wake::Doorbell::pair()?;
            doorbells.push(doorbell);
            let setup = worker::CoreSetup {
                index,
                listeners,
                tcp_listeners,
                tcp,
                tcp_upstream,
                udp_upstream: udp_upstream.clone(),
                resolver,
                udp: transport::udp::UdpSettings {
                    batch: config.server.udp_recv_batch,
                    gso: config.server.udp_gso,
                    coalesce: config.server.udp_coalesce,
                },
                hints: hints.clone(),
                request_mesh: request_mesh.clone(),
                endpoint: endpoint.take(),
                cores,
                preload: Arc::clone(&preload),
                persist: config.cache.persist.is_some(),
                epoch,
                stop: Arc::clone(&stop),
                doorbell: core_doorbell,
                grace,
                dnstap: dnstap.clone(),
                encrypted: worker::EncryptedSetup {
                    server: core_tls,
                    tls_listeners: take_core(&mut tls_per_core, index),
                    https_listeners: take_core(&mut https_per_core, index),
                    quic_listeners: take_core(&mut quic_per_core, index),
                    quic_config,
                    https_path: Arc::clone(&https_path),
                    upstream: tls_upstream.clone(),
                },
                spread: spread.clone(),
            };
            let placement = if pinned {
                Placement::Fixed(cpu)
            } else {
                Placement::Unbound
            };
            let executor = spawn_core(placement, config.server.io_memory, setup)?;
            executors.push(executor);
        }
        drop(preload);
        log_started(control_addr, &udp_addrs, &cpus, &resolver_config.upstreams);
        log_dnssec(&resolver_config.dnssec);
        for (what, addrs) in [
            ("DNS over TLS", &tls_addrs),
            ("DNS over HTTPS", &https_addrs),
            ("DNS over QUIC", &quic_addrs),
        ] {
            if !addrs.is_empty() {
                log::info!(
                    "heimdall serving {what} on {}",
                    addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        Ok(ServerHandle {
            stop,
            reload: reload_flag,
            doorbells,
            executors,
            udp_addrs,
            tls_addrs,
            https_addrs,
            quic_addrs,
            control_addr,
            cpus,
            persist: config.cache.persist.clone(),
            epoch,
        })
    }
}

/// Everything a start reads, read and checked without binding a socket
/// or starting a core: the CPUs named (unless `this_host` is false: a
/// file written for another machine), the zone files and block lists,
/// the cookie secret, and a resolver built from them (`heimdall
/// check-config`). A configuration that passes starts, unless a socket
/// cannot be bound or the memory lock limit is too small.
pub fn check(config: &Config, this_host: bool) -> Result<(), ServerError> {
    let cores = if this_host {
        config.cpu_ids(&heimdall_config::available_cpu_ids())?.len()
    } else {
        match &config.server.cores {
            heimdall_config::CoreSelection::Auto => heimdall_config::available_cpus(),
            heimdall_config::CoreSelection::Count(n) => *n,
            heimdall_config::CoreSelection::List(ids) => ids.len(),
        }
    };
    let cookies = policy::CookieRuntime::new(Instant::now())?;
    reload::build_resolver_config(config, cores.max(1), &cookies)?;
    Ok(())
}

/// The encrypted transports' shared parts, made on the starting thread:
/// the certificate read (a bad file stops the start here), the listeners
/// bound, and the client configuration for `tls` upstreams.
struct EncryptedListeners {
    server: Option<tls::ServerConfigs>,
    /// Per core, its DoT listeners.
    tls: Vec<Vec<socket2::Socket>>,
    /// Per core, its DoH listeners.
    https: Vec<Vec<socket2::Socket>>,
    /// Per core, its DoQ sockets.
    quic: Vec<Vec<socket2::Socket>>,
    tls_addrs: Vec<SocketAddr>,
    https_addrs: Vec<SocketAddr>,
    quic_addrs: Vec<SocketAddr>,
    upstream: Option<upstream::tls::TlsUpstreamSetup>,
}

fn encrypted_setup(config: &Config, cores: usize) -> Result<EncryptedListeners, ServerError> {
    let section = &config.tls;
    let serving = !section.listen.is_empty()
        || !section.https_listen.is_empty()
        || !section.quic_listen.is_empty();
    let server = match (serving, &section.certificate, &section.key) {
        (false, _, _) => None,
        (true, Some(certificate), Some(key)) => Some(tls::server_configs(
            certificate,
            key,
            section.ticket_rotation,
        )?),
        // Validation requires both with a listen address.
        (true, _, _) => {
            return Err(ServerError::Tls(tls::TlsSetupError::Rustls(
                "tls.certificate and tls.key are required with a listen address".to_string(),
            )));
        }
    };
    let (tls_listeners, tls_addrs) = sockets::listen_tcp_per_core(&section.listen, cores)?;
    let (https, https_addrs) = sockets::listen_tcp_per_core(&section.https_listen, cores)?;
    let (quic, quic_addrs) = sockets::listen_udp_per_core(&section.quic_listen, cores)?;
    // A wildcard DoQ socket learns each datagram's local address, for the
    // reply to leave from it (QUIC clients drop packets from another).
    for core in &quic {
        for (socket, addr) in core.iter().zip(&quic_addrs) {
            if addr.ip().is_unspecified() {
                heimdall_udp::pktinfo::enable(socket.as_raw_fd(), addr.is_ipv6())
                    .map_err(|err| ServerError::Io(sockets::with_addr(err, *addr)))?;
            }
        }
    }
    // There even without a `tls` upstream, so that a reload can add one;
    // built now only for one (a bad CA file stops the start).
    let speaks_tls = config.upstream.servers.iter().any(|server| {
        matches!(
            server.transport,
            UpstreamTransport::Tls | UpstreamTransport::Https
        )
    });
    let upstream = Some(upstream::tls::TlsUpstreamSetup::new(
        config.upstream.tls_ca_file.clone(),
        speaks_tls,
    )?);
    Ok(EncryptedListeners {
        server,
        tls: tls_listeners,
        https,
        quic,
        tls_addrs,
        https_addrs,
        quic_addrs,
        upstream,
    })
}

/// Core `index`'s share of per-core sockets (taken, leaving none behind).
fn take_core(per_core: &mut [Vec<socket2::Socket>], index: usize) -> Vec<socket2::Socket> {
    per_core
        .get_mut(index)
        .map(std::mem::take)
        .unwrap_or_default()
}

/// The client and upstream TCP settings of `config`.
fn tcp_settings(
    config: &Config,
) -> (
    transport::conn::TcpSettings,
    upstream::tcp::TcpUpstreamSettings,
) {
    let clients = transport::conn::TcpSettings {
        idle_timeout: config.tcp.idle_timeout,
        read_timeout: config.tcp.read_timeout,
        max_connections: config.tcp.max_connections,
        max_pipelined: config.tcp.max_pipelined,
    };
    let upstreams = upstream::tcp::TcpUpstreamSettings {
        idle_timeout: config.tcp.idle_timeout,
        connect_timeout: config.upstream.timeout,
    };
    (clients, upstreams)
}

/// The entries of the cache file (`cache.persist`), for every core to
/// insert; none without one.
fn load_cache(
    config: &Config,
    policy: &heimdall_cache::CachePolicy,
    cores: usize,
) -> Vec<(heimdall_wire::QueryKey, heimdall_cache::Entry)> {
    match &config.cache.persist {
        Some(path) => persist::load(
            path,
            Timestamp::from_millis(0),
            policy,
            (config.cache.shard_size as u64).saturating_mul(cores as u64),
        ),
        None => Vec::new(),
    }
}

/// Start core `setup.index`'s executor, pinned to `cpu`.
fn spawn_core(
    placement: Placement,
    io_memory: usize,
    setup: worker::CoreSetup,
) -> Result<ExecutorJoinHandle<CoreOutput>, ServerError> {
    let index = setup.index;
    LocalExecutorBuilder::new(placement)
        .preempt_timer(PREEMPT_TIMER)
        .name(&format!("heimdall-core{index}"))
        .io_memory(io_memory)
        .spawn(move || worker::run_core(setup))
        .map_err(|err| ServerError::Executor {
            core: index,
            message: err.to_string(),
        })
}

/// The drain limit at shutdown: `server.shutdown_grace`, or when that is
/// 0 (the default) the longest a query can stay outstanding
/// (`max_query_lifetime`, the resolver's
/// `ResolverConfig::max_query_lifetime_ms`: every attempt at its adaptive
/// timeout ceiling, at least `upstream.timeout` x `upstream.attempts`)
/// plus [`SHUTDOWN_GRACE_MARGIN`], so every outstanding query can use all
/// of its attempts. The drain ends as soon as nothing is outstanding.
pub fn shutdown_grace(config: &Config, max_query_lifetime: Duration) -> Duration {
    if config.server.shutdown_grace.is_zero() {
        let floor = config
            .upstream
            .timeout
            .saturating_mul(config.upstream.attempts);
        max_query_lifetime
            .max(floor)
            .saturating_add(SHUTDOWN_GRACE_MARGIN)
    } else {
        config.server.shutdown_grace
    }
}

/// How each core opens upstream UDP sockets: the configured port range,
/// minus every port heimdall listens on (DNS and control).
fn udp_upstream_settings(
    config: &Config,
    udp_addrs: &[SocketAddr],
    control_addr: Option<SocketAddr>,
) -> upstream::udp::UdpUpstreamSettings {
    let mut skip_ports: Vec<u16> = udp_addrs
        .iter()
        .chain(&config.server.listen)
        .chain(control_addr.as_ref())
        .map(SocketAddr::port)
        .collect();
    skip_ports.sort_unstable();
    skip_ports.dedup();
    upstream::udp::UdpUpstreamSettings {
        port_min: config.upstream.source_port_min,
        port_max: config.upstream.source_port_max,
        skip_ports,
        max_sockets: config.upstream.max_sockets,
        socket_uses: config.upstream.socket_uses,
    }
}

/// Say where the server listens.
fn log_started(
    control_addr: Option<SocketAddr>,
    udp_addrs: &[SocketAddr],
    cpus: &[usize],
    upstreams: &dyn std::fmt::Debug,
) {
    if let Some(addr) = control_addr {
        log::info!(
            "control endpoint on http://{addr}/ (metrics and health; the other routes with \
             control.token only)"
        );
    }
    log::info!(
        "heimdall serving UDP and TCP on {} with {} core(s) (CPUs {:?}), upstreams {:?}",
        udp_addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        cpus.len().max(1),
        cpus,
        upstreams
    );
}

/// Say whether answers are validated, and what validation asks of the
/// upstreams: an upstream that strips DNSSEC records makes every answer
/// SERVFAIL, and the operator should learn why from the log.
fn log_dnssec(dnssec: &heimdall_resolver::DnssecConfig) {
    if dnssec.validates() {
        log::info!(
            "DNSSEC validation on (dnssec.mode: {}, {} trust anchor record(s)): the upstreams \
             must pass DNSSEC records on (RRSIG, DNSKEY, DS, NSEC); behind one that strips them \
             every answer fails with SERVFAIL and EDE 9 or 10 (set dnssec.mode: off then)",
            format!("{:?}", dnssec.mode).to_lowercase(),
            dnssec.anchors.len()
        );
    } else {
        log::info!("DNSSEC validation off: the upstreams' AD bit is passed on");
    }
}

impl ServerHandle {
    /// The UDP addresses actually bound, one per listen address (a port of
    /// 0 in the configuration is resolved here).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The DNS-over-TLS addresses bound, one per `tls.listen` entry.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The DNS-over-HTTPS addresses bound, one per `tls.https_listen`
    /// entry.
    pub fn https_addrs(&self) -> &[SocketAddr] {
        &self.https_addrs
    }

    /// The DNS-over-QUIC addresses bound (UDP), one per `tls.quic_listen`
    /// entry.
    pub fn quic_addrs(&self) -> &[SocketAddr] {
        &self.quic_addrs
    }

    /// The control endpoint's bound address, when it is enabled.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// Reload the configuration from the reload source, as `POST /reload`
    /// does (the binary calls this on SIGHUP). Returns at once; core 0
    /// reloads and logs the outcome. Requests made while a reload runs
    /// are answered by one more reload.
    pub fn request_reload(&self) {
        self.reload.store(true, Ordering::Release);
        if let Some(core0) = self.doorbells.first() {
            core0.ring();
        }
    }

    /// The CPUs the cores run on, in core order.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// Ask every core to stop receiving and wind down. Safe to call more
    /// than once.
    pub fn shutdown(&self) {
        // Release: a core that reads the flag after the ring sees it.
        self.stop.store(true, Ordering::Release);
        for doorbell in &self.doorbells {
            doorbell.ring();
        }
    }

    /// Wait for every core to finish (after [`ServerHandle::shutdown`] or
    /// the stop flag) and collect their reports. With `cache.persist`, the
    /// union of the caches is then saved (a failure is logged: the old
    /// file, if any, stays intact).
    pub fn join(self) -> Result<Vec<CoreReport>, ServerError> {
        let mut reports = Vec::with_capacity(self.executors.len());
        let mut shards = Vec::with_capacity(self.executors.len());
        for (core, executor) in self.executors.into_iter().enumerate() {
            let output = executor.join().map_err(|err| ServerError::Executor {
                core,
                message: err.to_string(),
            })?;
            reports.push(output.report);
            shards.push(output.entries);
        }
        if let Some(path) = &self.persist {
            let now = Timestamp::from_millis(self.epoch.elapsed().as_millis() as u64);
            match persist::save(path, &shards, now) {
                Ok(written) => log::info!("cache file {}: {written} entries saved", path.display()),
                Err(err) => log::error!(
                    "cache file {}: not saved ({err}); the previous file is unchanged",
                    path.display()
                ),
            }
        }
        Ok(reports)
    }

    /// Stop and wait: [`ServerHandle::shutdown`] then [`ServerHandle::join`].
    pub fn stop(self) -> Result<Vec<CoreReport>, ServerError> {
        self.shutdown();
        self.join()
    }
}
