//! The load generator: saturate a DNS server over UDP and measure it
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

pub mod inflight;
pub mod report;
pub mod stats;
mod worker;
pub mod workload;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};

pub use report::{Report, SeriesPoint};
pub use stats::{Counts, Latency};
pub use workload::{Component, Kind, Workload, WorkloadConfig};

use stats::{Interval, new_histogram};
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
}

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
        Ok(())
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
                cpu: (!config.cpus.is_empty())
                    .then(|| config.cpus.get(index % config.cpus.len()).copied())
                    .flatten(),
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
