//! The load generator: saturate a DNS server over UDP (or TCP, TLS and
//! HTTPS: [`conn`], `stream`; handshakes: [`handshake`]) and measure it
//! without fooling itself.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use heimdall_loadtest::load::{self, LoadConfig, Mode};
//!
//! let config = LoadConfig {
//!     target: "127.0.0.1:5353".parse()?,
//!     mode: Mode::Open { rate: 50_000.0 },
//!     ..LoadConfig::default()
//! };
//! let total = config.warmup + config.duration;
//! let report = load::run(&config, &AtomicBool::new(false), |second| {
//!     eprintln!("{}", load::report::progress_line(second, total));
//! })?;
//! println!("{}", load::report::render_table(&report));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - `workers` threads, each pinned to its CPU from `cpus` when given, each
//!   with `sockets` UDP sockets of its own (distinct source ports, so the
//!   server's `SO_REUSEPORT` spreads them over its cores), batching with
//!   `sendmmsg` and `recvmmsg` (see [`worker`]).
//! - [`Mode::Open`]: queries are scheduled on a timeline at the target
//!   rate, whatever the server does, and latency is measured from each
//!   query's *scheduled* time, so a stalled server (or a generator that
//!   fell behind) shows in the percentiles: no coordinated omission.
//!   [`Mode::Max`]: each socket keeps a window of queries outstanding, for
//!   the most a server can answer; latency is then measured from the send.
//! - Every response is matched to its query by ID (per socket) and
//!   question; see [`stats::Counts`] for what is counted.
//! - The warm-up's queries are sent but not counted; a query answered
//!   after `timeout` is lost; at most `max_queries` are issued; the run
//!   ends by itself after warm-up + duration + timeout.

pub mod conn;
pub mod handshake;
pub mod inflight;
pub mod report;
pub mod stats;
mod stream;
mod worker;
pub mod workload;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};

pub use conn::{Endpoint, Transport};
pub use report::{Report, SeriesPoint};
pub use stats::{Counts, Latency};
pub use workload::{Component, Kind, Workload, WorkloadConfig};

use stats::{Interval, new_histogram};
use stream::StreamSetup;
use worker::{Pace, WorkerSetup};

/// How queries are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Open loop: this many queries per second in total, on a fixed
    /// timeline.
    Open {
        /// Queries per second, all workers together.
        rate: f64,
    },
    /// As fast as the server answers: this many queries outstanding per
    /// socket.
    Max {
        /// Outstanding queries per socket.
        window: usize,
    },
}

/// A load run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server (UDP).
    pub target: SocketAddr,
    /// Send to an address that is not loopback. Off by default: a load
    /// generator pointed at someone else's server by mistake is an attack.
    pub allow_remote: bool,
    /// Pacing.
    pub mode: Mode,
    /// Worker threads.
    pub workers: usize,
    /// CPUs to pin the workers to, in turn (empty: not pinned).
    pub cpus: Vec<usize>,
    /// UDP sockets per worker.
    pub sockets: usize,
    /// Datagrams per `sendmmsg`/`recvmmsg`.
    pub batch: usize,
    /// Send each batch's equal-length queries as UDP GSO trains (the server
    /// still receives one datagram per query; see
    /// [`crate::net::SendBatch::gso`]).
    pub gso: bool,
    /// Most queries outstanding per socket (at most
    /// [`inflight::MAX_IN_FLIGHT`]); in open loop a query due while its
    /// socket is full is counted unsent.
    pub max_in_flight: usize,
    /// How long queries are counted, after the warm-up.
    pub duration: Duration,
    /// How long queries are sent first without being counted.
    pub warmup: Duration,
    /// An answer later than this counts as lost.
    pub timeout: Duration,
    /// Most queries issued in all, warm-up included.
    pub max_queries: u64,
    /// What is asked.
    pub workload: WorkloadConfig,
    /// Seed of the ID orders (each worker derives its own).
    pub seed: u64,
    /// The loss above which [`Report::passed`] is false.
    pub max_loss: Option<f64>,
    /// How queries travel: UDP (the batched socket workers) or a stream
    /// transport over persistent connections.
    pub transport: Transport,
    /// Stream transports: persistent connections, all workers together.
    pub connections: usize,
    /// Stream transports: queries outstanding per connection (max mode
    /// keeps this many; open loop counts a query due while a connection
    /// has this many unsent). `Mode::Max::window` is UDP's.
    pub pipeline: usize,
    /// TLS and HTTPS: the client configuration (trust, ALPN, resumption;
    /// see [`crate::tls::client_config`]).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// TLS and HTTPS: SNI and the name the certificate must carry (a DNS
    /// name or an IP address); also the DoH authority.
    pub tls_name: String,
    /// HTTPS: the request path.
    pub doh_path: String,
}

/// The DoH path of RFC 8484's examples, which servers use by default.
pub const DEFAULT_DOH_PATH: &str = "/dns-query";
/// Default persistent connections of the stream transports.
pub const DEFAULT_CONNECTIONS: usize = 100;
/// Default queries outstanding per connection.
pub const DEFAULT_PIPELINE: usize = 16;
/// Most connections (each holds an in-flight table of about 400 KiB).
pub const MAX_CONNECTIONS: usize = 4096;

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            target: SocketAddr::from(([127, 0, 0, 1], 5353)),
            allow_remote: false,
            mode: Mode::Max { window: 64 },
            workers: 1,
            cpus: Vec::new(),
            sockets: 4,
            batch: 32,
            gso: true,
            max_in_flight: inflight::MAX_IN_FLIGHT,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            max_queries: 100_000_000,
            workload: WorkloadConfig::default(),
            seed: 1,
            max_loss: None,
            transport: Transport::Udp,
            connections: DEFAULT_CONNECTIONS,
            pipeline: DEFAULT_PIPELINE,
            tls: None,
            tls_name: String::new(),
            doh_path: DEFAULT_DOH_PATH.into(),
        }
    }
}

/// Most workers, sockets per worker and batch size.
pub const MAX_WORKERS: usize = 256;
/// Most sockets per worker.
pub const MAX_SOCKETS: usize = 64;
/// Largest batch.
pub const MAX_BATCH: usize = 1024;
/// Longest duration, warm-up or timeout.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

impl LoadConfig {
    /// Check the configuration; the error says which setting and why.
    pub fn validate(&self) -> Result<(), String> {
        if !self.allow_remote && !self.target.ip().is_loopback() {
            return Err(format!(
                "target {} is not a loopback address; pass --allow-remote if you own it",
                self.target
            ));
        }
        if self.target.port() == 0 {
            return Err("the target needs a port".into());
        }
        match self.mode {
            Mode::Open { rate } if !(1.0..=1e9).contains(&rate) => {
                return Err(format!("--rate must be within 1..=1e9, not {rate}"));
            }
            Mode::Max { window } if window == 0 || window > inflight::MAX_IN_FLIGHT => {
                return Err(format!(
                    "--window must be within 1..={}, not {window}",
                    inflight::MAX_IN_FLIGHT
                ));
            }
            _ => {}
        }
        let ranges = [
            ("--workers", self.workers, MAX_WORKERS),
            ("--sockets", self.sockets, MAX_SOCKETS),
            ("--batch", self.batch, MAX_BATCH),
            (
                "--max-in-flight",
                self.max_in_flight,
                inflight::MAX_IN_FLIGHT,
            ),
        ];
        for (name, value, max) in ranges {
            if value == 0 || value > max {
                return Err(format!("{name} must be within 1..={max}, not {value}"));
            }
        }
        for (name, value) in [
            ("--duration", self.duration),
            ("--warmup", self.warmup),
            ("--timeout", self.timeout),
        ] {
            if value > MAX_DURATION {
                return Err(format!("{name} may be at most 24h"));
            }
        }
        if self.duration.is_zero() {
            return Err("--duration must be above 0".into());
        }
        if self.timeout < Duration::from_millis(1) {
            return Err("--timeout must be at least 1ms".into());
        }
        if self.max_queries == 0 {
            return Err("--max-queries must be at least 1".into());
        }
        if let Some(max_loss) = self.max_loss
            && !(0.0..=1.0).contains(&max_loss)
        {
            return Err(format!("--max-loss must be within 0..=1, not {max_loss}"));
        }
        if self.transport.is_stream() {
            self.validate_stream()?;
        }
        Ok(())
    }

    fn validate_stream(&self) -> Result<(), String> {
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return Err(format!(
                "--connections must be within 1..={MAX_CONNECTIONS}, not {}",
                self.connections
            ));
        }
        if self.connections < self.workers {
            return Err(format!(
                "--connections ({}) must be at least --workers ({})",
                self.connections, self.workers
            ));
        }
        if self.pipeline == 0 || self.pipeline > inflight::MAX_IN_FLIGHT {
            return Err(format!(
                "--pipeline must be within 1..={}, not {}",
                inflight::MAX_IN_FLIGHT,
                self.pipeline
            ));
        }
        if self.transport.is_encrypted() {
            if self.tls.is_none() {
                return Err(
                    "--transport tls and https need --tls-ca FILE or --tls-insecure".into(),
                );
            }
            self.endpoint()?;
        }
        if self.transport == Transport::Https && !self.doh_path.starts_with('/') {
            return Err(format!(
                "--doh-path must start with /, not {:?}",
                self.doh_path
            ));
        }
        Ok(())
    }

    /// Where and how the stream transports connect.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let name = if self.tls_name.is_empty() {
            self.target.ip().to_string()
        } else {
            self.tls_name.clone()
        };
        Ok(Endpoint {
            target: self.target,
            transport: self.transport,
            tls: self.tls.clone(),
            server_name: crate::tls::server_name(&name)?,
            doh_path: self.doh_path.clone(),
            connect_timeout: self.timeout.max(Duration::from_secs(1)),
        })
    }

    /// "open" or "max".
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Open { .. } => "open",
            Mode::Max { .. } => "max",
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// The pacing of worker `worker`'s connections: its share of
/// `config.connections`, each with its own share of the open-loop rate
/// (staggered) or the pipeline as its window.
fn connection_paces(config: &LoadConfig, worker: usize) -> Vec<Pace> {
    let total = config.connections.max(1);
    let workers = config.workers.max(1);
    let first = total * worker / workers;
    let last = total * (worker + 1) / workers;
    (first..last)
        .map(|global| match config.mode {
            Mode::Open { rate } => {
                let interval_ns = 1e9 * total as f64 / rate;
                Pace::Open {
                    interval_ns,
                    offset_ns: interval_ns * global as f64 / total as f64,
                }
            }
            Mode::Max { .. } => Pace::Max {
                window: config.pipeline,
            },
        })
        .collect()
}

/// Per-second figures being gathered from the workers.
struct Gathering {
    counts: Counts,
    histogram: Histogram<u64>,
    outstanding: u64,
    length_ns: u64,
    reported: usize,
}

/// Run the load; call `progress` once per second with the figures of the
/// second just ended (all workers together). Sending stops early when
/// `stop` becomes true; the run still waits for outstanding answers (at
/// most one timeout).
pub fn run(
    config: &LoadConfig,
    stop: &AtomicBool,
    mut progress: impl FnMut(&SeriesPoint),
) -> io::Result<Report> {
    config
        .validate()
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
    let workload = Workload::build(&config.workload)?;
    let endpoint = config
        .endpoint()
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
    let workers = config.workers;
    let warmup_ns = nanos(config.warmup);
    let send_end_ns = warmup_ns.saturating_add(nanos(config.duration));
    let (sender, receiver) = mpsc::channel::<Interval>();
    let mut seeds = SmallRng::seed_from_u64(config.seed);
    let mut series = Vec::new();
    let start = Instant::now();
    let results = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let pace = match config.mode {
                Mode::Open { rate } => {
                    let interval_ns = 1e9 * workers as f64 / rate;
                    Pace::Open {
                        interval_ns,
                        offset_ns: interval_ns * index as f64 / workers as f64,
                    }
                }
                Mode::Max { window } => Pace::Max { window },
            };
            let share = config.max_queries / workers as u64
                + u64::from((index as u64) < config.max_queries % workers as u64);
            let cpu = (!config.cpus.is_empty())
                .then(|| config.cpus.get(index % config.cpus.len()).copied())
                .flatten();
            if config.transport.is_stream() {
                let setup = StreamSetup {
                    endpoint: endpoint.clone(),
                    paces: connection_paces(config, index),
                    pipeline: config.pipeline,
                    timeout_ns: nanos(config.timeout),
                    warmup_ns,
                    send_end_ns,
                    max_queries: share,
                    cpu,
                    seed: seeds.random(),
                    stream: workload.stream(index, workers),
                    start,
                    stop,
                    intervals: sender.clone(),
                };
                let handle = std::thread::Builder::new()
                    .name(format!("loadtest-{index}"))
                    .spawn_scoped(scope, move || stream::run(setup));
                match handle {
                    Ok(handle) => handles.push(handle),
                    Err(err) => {
                        drop(sender);
                        return Err(err);
                    }
                }
                continue;
            }
            let setup = WorkerSetup {
                target: config.target,
                pace,
                sockets: config.sockets,
                batch: config.batch,
                gso: config.gso,
                in_flight_limit: config.max_in_flight,
                timeout_ns: nanos(config.timeout),
                warmup_ns,
                send_end_ns,
                max_queries: share,
                cpu,
                seed: seeds.random(),
                stream: workload.stream(index, workers),
                start,
                stop,
                intervals: sender.clone(),
            };
            let handle = std::thread::Builder::new()
                .name(format!("loadtest-{index}"))
                .spawn_scoped(scope, move || worker::run(setup));
            match handle {
                Ok(handle) => handles.push(handle),
                Err(err) => {
                    drop(sender);
                    return Err(err);
                }
            }
        }
        drop(sender);
        let mut pending: BTreeMap<u64, Gathering> = BTreeMap::new();
        let mut emit = |second: u64, gathered: Gathering, series: &mut Vec<SeriesPoint>| {
            let point = SeriesPoint::new(
                second,
                warmup_ns,
                &gathered.counts,
                &gathered.histogram,
                gathered.outstanding,
                gathered.length_ns,
            );
            progress(&point);
            series.push(point);
        };
        for interval in receiver {
            let entry = match pending.entry(interval.second) {
                std::collections::btree_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::btree_map::Entry::Vacant(entry) => entry.insert(Gathering {
                    counts: Counts::default(),
                    histogram: new_histogram()?,
                    outstanding: 0,
                    length_ns: 0,
                    reported: 0,
                }),
            };
            entry.counts.add(&interval.counts);
            let _fits = entry.histogram.add(&interval.histogram);
            entry.outstanding += interval.outstanding;
            entry.length_ns = entry.length_ns.max(interval.length_ns);
            entry.reported += 1;
            if entry.reported == workers
                && let Some(gathered) = pending.remove(&interval.second)
                && (interval.length_ns >= 1_000_000_000 || gathered.counts != Counts::default())
            {
                // Earlier seconds cannot be waiting: each worker reports
                // its seconds in order.
                emit(interval.second, gathered, &mut series);
            }
        }
        for (second, gathered) in std::mem::take(&mut pending) {
            // A last interval with nothing in it (the run ended just after
            // a second began) is left out.
            if gathered.counts != Counts::default() {
                emit(second, gathered, &mut series);
            }
        }
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a worker panicked")))
            })
            .collect::<io::Result<Vec<_>>>()
    })?;
    series.sort_by_key(|point| point.second);
    Report::build(config, &workload, &results, series, warmup_ns)
}
