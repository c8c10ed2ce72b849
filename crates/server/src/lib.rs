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

mod batch;
mod core;
mod policy;
mod sockets;
mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use heimdall_cache::CachePolicy;
use heimdall_config::{Config, UpstreamStrategy};
use heimdall_resolver::{Resolver, ResolverConfig, ResolverError, Strategy};

pub use crate::core::CoreReport;
pub use crate::policy::{PolicyLoadError, build_blocklist, build_local, build_policy};
pub use crate::tcp::TcpStats;

/// Upstream sockets per core: queries rotate over them, so each core sends
/// from several random source ports (see docs/ARCHITECTURE.md).
pub const UPSTREAM_SOCKETS_PER_CORE: usize = 4;
/// Longest wait for outstanding upstream queries at shutdown.
pub const MAX_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Why the server could not start or stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration's core selection does not fit this machine.
    #[error("{0}")]
    Config(#[from] heimdall_config::ConfigError),
    /// The resolver refused its settings.
    #[error("resolver: {0}")]
    Resolver(#[from] ResolverError),
    /// Local data, a block list or the ACL could not be loaded (the
    /// message names the file or key).
    #[error("{0}")]
    Policy(#[from] policy::PolicyLoadError),
    /// A socket could not be created or bound.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An executor could not be started or ended abnormally.
    #[error("core {core}: {message}")]
    Executor {
        /// The core's index.
        core: usize,
        /// What went wrong.
        message: String,
    },
}

/// A running server.
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    executors: Vec<ExecutorJoinHandle<CoreReport>>,
    udp_addrs: Vec<SocketAddr>,
    cpus: Vec<usize>,
}

/// Starts servers.
pub struct Server;

fn resolver_config(config: &Config) -> ResolverConfig {
    let secs = |duration: Duration| u32::try_from(duration.as_secs()).unwrap_or(u32::MAX);
    ResolverConfig {
        upstreams: config.upstream.servers.clone(),
        tcp_only: config.upstream.tcp_only.clone(),
        strategy: match config.upstream.strategy {
            UpstreamStrategy::Ordered => Strategy::Ordered,
            UpstreamStrategy::RoundRobin => Strategy::RoundRobin,
            UpstreamStrategy::Fastest => Strategy::Fastest,
        },
        upstream_timeout_ms: u64::try_from(config.upstream.timeout.as_millis()).unwrap_or(u64::MAX),
        attempts: config.upstream.attempts,
        cache_bytes: config.cache.shard_size,
        cache_policy: CachePolicy {
            min_ttl: secs(config.cache.min_ttl),
            max_ttl: secs(config.cache.max_ttl),
            negative_max_ttl: secs(config.cache.negative_max_ttl),
            failure_ttl: secs(config.cache.servfail_ttl),
            stale_window: 0,
        },
        hints: config.hints.enabled,
        ..ResolverConfig::default()
    }
}

impl Server {
    /// Bind every socket and start one executor per configured core.
    /// Returns once the sockets are bound; queries are answered from then
    /// on (the kernel queues them until each executor runs).
    pub fn start(config: &Config) -> Result<ServerHandle, ServerError> {
        let cpus = config.cpu_ids(heimdall_config::available_cpus())?;
        let cores = cpus.len().max(1);
        let sockets::Listeners {
            udp: listeners,
            tcp: tcp_listeners,
            bound: udp_addrs,
        } = sockets::listen_per_core(&config.server.listen, cores)?;
        let tcp = tcp::TcpSettings {
            idle_timeout: config.tcp.idle_timeout,
            read_timeout: config.tcp.read_timeout,
            max_connections: config.tcp.max_connections,
            max_pipelined: config.tcp.max_pipelined,
            connect_timeout: config.upstream.timeout,
        };
        let mut resolver_config = resolver_config(config);
        resolver_config.policy = policy::build_policy(config, cores)?;
        let grace = config
            .upstream
            .timeout
            .saturating_mul(config.upstream.attempts)
            .min(MAX_SHUTDOWN_GRACE);
        let mesh = (config.hints.enabled && cores > 1)
            .then(|| MeshBuilder::full(cores, config.hints.channel_capacity));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let mut executors = Vec::with_capacity(cores);
        let per_core = cpus.iter().zip(listeners.into_iter().zip(tcp_listeners));
        for (index, (&cpu, (listeners, tcp_listeners))) in per_core.enumerate() {
            let resolver = Resolver::new(resolver_config.clone())?;
            let mut upstream_sockets = Vec::new();
            for family_example in upstream_families(&resolver_config.upstreams) {
                for _ in 0..UPSTREAM_SOCKETS_PER_CORE {
                    upstream_sockets.push(sockets::upstream_udp(family_example)?);
                }
            }
            let setup = core::CoreSetup {
                index,
                listeners,
                tcp_listeners,
                tcp,
                upstream_sockets,
                resolver,
                batch: config.server.udp_recv_batch,
                mesh: mesh.clone(),
                epoch,
                stop: Arc::clone(&stop),
                grace,
            };
            let executor = LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&format!("heimdall-core{index}"))
                .io_memory(config.server.io_memory)
                .spawn(move || core::run_core(setup))
                .map_err(|err| ServerError::Executor {
                    core: index,
                    message: err.to_string(),
                })?;
            executors.push(executor);
        }
        log::info!(
            "heimdall serving UDP and TCP on {} with {} core(s) (CPUs {:?}), upstreams {:?}",
            udp_addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            cores,
            cpus,
            resolver_config.upstreams
        );
        Ok(ServerHandle {
            stop,
            executors,
            udp_addrs,
            cpus,
        })
    }
}

/// One example address per address family among the upstreams.
fn upstream_families(upstreams: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut examples: Vec<SocketAddr> = Vec::new();
    for upstream in upstreams {
        if !examples
            .iter()
            .any(|seen| seen.is_ipv6() == upstream.is_ipv6())
        {
            examples.push(*upstream);
        }
    }
    examples
}

impl ServerHandle {
    /// The UDP addresses actually bound, one per listen address (a port of
    /// 0 in the configuration is resolved here).
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The TCP addresses bound: the same as [`ServerHandle::udp_addrs`]
    /// (every listen address serves both).
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The CPUs the cores run on, in core order.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }

    /// The flag that stops the server when set; a signal handler may set
    /// it directly.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Ask every core to stop receiving and wind down.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Wait for every core to finish (after [`ServerHandle::shutdown`] or
    /// the stop flag) and collect their reports.
    pub fn join(self) -> Result<Vec<CoreReport>, ServerError> {
        let mut reports = Vec::with_capacity(self.executors.len());
        for (core, executor) in self.executors.into_iter().enumerate() {
            let report = executor.join().map_err(|err| ServerError::Executor {
                core,
                message: err.to_string(),
            })?;
            reports.push(report);
        }
        Ok(reports)
    }

    /// Stop and wait: [`ServerHandle::shutdown`] then [`ServerHandle::join`].
    pub fn stop(self) -> Result<Vec<CoreReport>, ServerError> {
        self.shutdown();
        self.join()
    }
}
