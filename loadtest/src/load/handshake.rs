//! Handshake mode (`run --handshakes`): a new connection for every query,
//! to measure how many TLS handshakes a server completes per second, full
//! and resumed.
//!
//! `connections` loops run concurrently (spread over the workers, each a
//! thread with a tokio current-thread runtime); each loop, until the end
//! of the send phase: connect over TCP, shake hands (TLS; HTTP/2 for
//! DoH), send one query, wait for its answer (matched by ID and question),
//! close with close_notify, and start over. A handshake counts when its
//! loop began it after the warm-up; it is complete when the answer came
//! within the timeout, resumed when rustls reports a resumed session (the
//! client keeps tickets when its configuration has resumption on, see
//! [`crate::tls::client_config`]). The latency is the whole exchange:
//! connect, handshakes, query and answer.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use heimdall_wire::Message;
use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};
use serde::{Deserialize, Serialize};

use super::conn::{Conn, Endpoint, Reply};
use super::stats::{Latency, new_histogram};
use super::workload::{MAX_QUERY_LEN, QueryStream, Workload, WorkloadConfig, question_hash};
use crate::affinity;

/// The `schema` of a handshake report.
pub const SCHEMA: &str = "heimdall-loadtest-handshakes/1";

/// A handshake run.
#[derive(Debug, Clone)]
pub struct HandshakeConfig {
    /// The server and how to reach it (`Tls` or `Https`).
    pub endpoint: Endpoint,
    /// Allow a target that is not a loopback address.
    pub allow_remote: bool,
    /// Concurrent connect-query-close loops, all workers together.
    pub connections: usize,
    /// Worker threads.
    pub workers: usize,
    /// CPUs to pin the workers to, in turn (empty: not pinned).
    pub cpus: Vec<usize>,
    /// Measured time, after the warm-up.
    pub duration: Duration,
    /// Time the loops run first without being counted.
    pub warmup: Duration,
    /// A connection whose answer is later than this (from the connect)
    /// counts as failed.
    pub timeout: Duration,
    /// Whether the client configuration resumes sessions (reported).
    pub resumption: bool,
    /// What is asked, one query per connection.
    pub workload: WorkloadConfig,
    /// Seed of the query IDs.
    pub seed: u64,
}

/// The result of a handshake run (`--json`: this, serialised).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HandshakeReport {
    /// [`SCHEMA`].
    pub schema: String,
    /// Where the connections went.
    pub target: String,
    /// `tls` or `https`.
    pub transport: String,
    /// Concurrent loops.
    pub connections: usize,
    /// Worker threads.
    pub workers: usize,
    /// Whether the client offered resumption.
    pub resumption: bool,
    /// Measured time, seconds.
    pub elapsed_s: f64,
    /// Connections begun after the warm-up.
    pub attempted: u64,
    /// Of those, answered in time.
    pub completed: u64,
    /// Of the completed, full handshakes.
    pub full: u64,
    /// Of the completed, resumed sessions.
    pub resumed: u64,
    /// Connections that failed (connect, handshake, no or a wrong answer,
    /// timeout).
    pub failed: u64,
    /// Completed connections per second.
    pub handshakes_per_s: f64,
    /// Full handshakes per second.
    pub full_per_s: f64,
    /// Resumed handshakes per second.
    pub resumed_per_s: f64,
    /// Connect to answer, µs.
    pub latency_us: Latency,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Things that make the figures doubtful.
    pub warnings: Vec<String>,
}

impl HandshakeReport {
    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
    }

    /// The human-readable summary.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let mut row = |label: &str, value: String| {
            out.push_str(&format!("  {label:<16} {value}\n"));
        };
        row(
            "run",
            format!(
                "new {} connection per query against {}, {} concurrent, resumption {}",
                self.transport,
                self.target,
                self.connections,
                if self.resumption { "on" } else { "off" }
            ),
        );
        row("time", format!("{:.3} s measured", self.elapsed_s));
        row(
            "connections",
            format!(
                "attempted {}  completed {}  full {}  resumed {}  failed {}",
                self.attempted, self.completed, self.full, self.resumed, self.failed
            ),
        );
        row(
            "rate",
            format!(
                "handshakes {:.0}/s  full {:.0}/s  resumed {:.0}/s",
                self.handshakes_per_s, self.full_per_s, self.resumed_per_s
            ),
        );
        let latency = &self.latency_us;
        row(
            "latency (us)",
            format!(
                "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}  (connect to answer, {} samples)",
                latency.p50, latency.p90, latency.p99, latency.max, latency.samples
            ),
        );
        if let Some(error) = &self.first_error {
            row("first error", error.clone());
        }
        for warning in &self.warnings {
            row("warning", warning.clone());
        }
        out
    }
}

/// Events of the run so far, for progress lines: completed, resumed,
/// failed (warm-up included).
#[derive(Debug, Default)]
pub struct Progress {
    /// Connections answered.
    pub completed: AtomicU64,
    /// Of those, resumed.
    pub resumed: AtomicU64,
    /// Connections that failed.
    pub failed: AtomicU64,
}

/// One worker's result.
struct Totals {
    attempted: u64,
    completed: u64,
    resumed: u64,
    failed: u64,
    histogram: Histogram<u64>,
    stopped_ns: u64,
    first_error: Option<String>,
}

struct Shared {
    endpoint: Endpoint,
    start: Instant,
    warmup_ns: u64,
    end_ns: u64,
    timeout: Duration,
    stop: Cell<bool>,
    queries: RefCell<QueryStream>,
    totals: RefCell<Totals>,
    progress: Arc<Progress>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Run the handshake loops; `progress` (warm-up included) may be read
/// from another thread while this runs.
pub fn run(
    config: &HandshakeConfig,
    stop: &AtomicBool,
    progress: &Arc<Progress>,
) -> io::Result<HandshakeReport> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    if !config.allow_remote && !config.endpoint.target.ip().is_loopback() {
        return Err(invalid(format!(
            "target {} is not a loopback address; pass --allow-remote if you own it",
            config.endpoint.target
        )));
    }
    if !config.endpoint.transport.is_encrypted() {
        return Err(invalid(
            "--handshakes needs --transport tls or https".into(),
        ));
    }
    let workers = config.workers.max(1);
    if config.connections < workers || config.connections > super::MAX_CONNECTIONS {
        return Err(invalid(format!(
            "--connections must be within --workers..={}, not {}",
            super::MAX_CONNECTIONS,
            config.connections
        )));
    }
    let workload = Workload::build(&config.workload)?;
    let warmup_ns = super::nanos(config.warmup);
    let end_ns = warmup_ns.saturating_add(super::nanos(config.duration));
    let start = Instant::now();
    let mut seeds = SmallRng::seed_from_u64(config.seed);
    let results = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for index in 0..workers {
            let loops =
                config.connections * (index + 1) / workers - config.connections * index / workers;
            let cpu = (!config.cpus.is_empty())
                .then(|| config.cpus.get(index % config.cpus.len()).copied())
                .flatten();
            let shared = Shared {
                endpoint: config.endpoint.clone(),
                start,
                warmup_ns,
                end_ns,
                timeout: config.timeout,
                stop: Cell::new(false),
                queries: RefCell::new(workload.stream(index, workers)),
                totals: RefCell::new(Totals {
                    attempted: 0,
                    completed: 0,
                    resumed: 0,
                    failed: 0,
                    histogram: new_histogram()?,
                    stopped_ns: 0,
                    first_error: None,
                }),
                progress: Arc::clone(progress),
            };
            let seed: u64 = seeds.random();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("handshakes-{index}"))
                    .spawn_scoped(scope, move || worker(shared, loops, cpu, seed, stop))?,
            );
        }
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a worker panicked")))
            })
            .collect::<io::Result<Vec<Totals>>>()
    })?;
    let mut report = HandshakeReport {
        schema: SCHEMA.into(),
        target: config.endpoint.target.to_string(),
        transport: config.endpoint.transport.as_str().into(),
        connections: config.connections,
        workers,
        resumption: config.resumption,
        ..HandshakeReport::default()
    };
    let mut histogram = new_histogram()?;
    let mut stopped_ns = 0;
    for totals in results {
        report.attempted += totals.attempted;
        report.completed += totals.completed;
        report.resumed += totals.resumed;
        report.failed += totals.failed;
        let _fits = histogram.add(&totals.histogram);
        stopped_ns = stopped_ns.max(totals.stopped_ns);
        if report.first_error.is_none() {
            report.first_error = totals.first_error;
        }
    }
    report.full = report.completed - report.resumed;
    let elapsed_s = stopped_ns.saturating_sub(warmup_ns) as f64 / 1e9;
    report.elapsed_s = (elapsed_s * 1000.0).round() / 1000.0;
    let rate = |count: u64| {
        if elapsed_s > 0.0 {
            (count as f64 / elapsed_s).round()
        } else {
            0.0
        }
    };
    report.handshakes_per_s = rate(report.completed);
    report.full_per_s = rate(report.full);
    report.resumed_per_s = rate(report.resumed);
    report.latency_us = Latency::from_histogram(&histogram);
    if report.failed > 0 {
        report
            .warnings
            .push(format!("{} connections failed", report.failed));
    }
    if config.resumption && report.completed > 0 && report.resumed == 0 {
        report.warnings.push(
            "no session was resumed: does the server issue session tickets or keep session IDs?"
                .into(),
        );
    }
    if report.completed == 0 {
        report.warnings.push("no connection was answered".into());
    }
    Ok(report)
}

fn worker(
    shared: Shared,
    loops: usize,
    cpu: Option<usize>,
    seed: u64,
    stop: &AtomicBool,
) -> io::Result<Totals> {
    if let Some(cpu) = cpu {
        affinity::pin_current_thread(&[cpu])
            .map_err(|err| io::Error::new(err.kind(), format!("cannot pin to CPU {cpu}: {err}")))?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shared = Rc::new(shared);
    let local = tokio::task::LocalSet::new();
    let mut seeds = SmallRng::seed_from_u64(seed);
    local.block_on(&runtime, async {
        let handles: Vec<_> = (0..loops)
            .map(|_| {
                let rng = SmallRng::seed_from_u64(seeds.random());
                tokio::task::spawn_local(one_loop(Rc::clone(&shared), rng))
            })
            .collect();
        let all = async {
            for handle in handles {
                let _joined = handle.await;
            }
        };
        tokio::pin!(all);
        loop {
            tokio::select! {
                () = &mut all => break,
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            if stop.load(Ordering::Relaxed) {
                shared.stop.set(true);
            }
        }
    });
    let totals = shared.totals.replace(Totals {
        attempted: 0,
        completed: 0,
        resumed: 0,
        failed: 0,
        histogram: new_histogram()?,
        stopped_ns: 0,
        first_error: None,
    });
    Ok(totals)
}

/// Connect, ask, close; again until the end.
async fn one_loop(shared: Rc<Shared>, mut rng: SmallRng) {
    let mut packet = [0u8; MAX_QUERY_LEN];
    loop {
        let began = shared.now_ns();
        if shared.stop.get() || began >= shared.end_ns {
            let mut totals = shared.totals.borrow_mut();
            totals.stopped_ns = totals.stopped_ns.max(began.min(shared.end_ns));
            return;
        }
        let counted = began >= shared.warmup_ns;
        let id: u16 = rng.random();
        let outcome = tokio::time::timeout(
            shared.timeout,
            exchange(&shared.endpoint, &shared.queries, &mut packet, id),
        )
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time")));
        let latency_ns = shared.now_ns().saturating_sub(began);
        let failed = outcome.is_err();
        record(&shared, counted, latency_ns, outcome);
        if failed {
            // A refusing server is not hammered in a tight loop.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn record(shared: &Shared, counted: bool, latency_ns: u64, outcome: io::Result<bool>) {
    let mut totals = shared.totals.borrow_mut();
    match outcome {
        Ok(resumed) => {
            shared.progress.completed.fetch_add(1, Ordering::Relaxed);
            if resumed {
                shared.progress.resumed.fetch_add(1, Ordering::Relaxed);
            }
            if counted {
                totals.attempted += 1;
                totals.completed += 1;
                totals.resumed += u64::from(resumed);
                totals.histogram.saturating_record(latency_ns);
            }
        }
        Err(err) => {
            shared.progress.failed.fetch_add(1, Ordering::Relaxed);
            if counted {
                totals.attempted += 1;
                totals.failed += 1;
            }
            if totals.first_error.is_none() {
                totals.first_error = Some(err.to_string());
            }
        }
    }
}

/// One connection: open, one query, its answer, close. Returns whether
/// the session was resumed.
async fn exchange(
    endpoint: &Endpoint,
    queries: &RefCell<QueryStream>,
    packet: &mut [u8; MAX_QUERY_LEN],
    id: u16,
) -> io::Result<bool> {
    let mut conn = Conn::open(endpoint).await?;
    let (len, hash) = queries
        .borrow_mut()
        .next_query(packet)
        .ok_or_else(|| io::Error::other("cannot build a query"))?;
    if let Some(header) = packet.first_chunk_mut::<2>() {
        *header = id.to_be_bytes();
    }
    conn.push(packet.get(..len).unwrap_or_default());
    conn.flush().await?;
    let mut answer: Option<Result<(), String>> = None;
    while answer.is_none() {
        conn.recv(&mut |reply| {
            answer = Some(match reply {
                Reply::Message(message) => check_answer(message, id, hash),
                Reply::HttpError => Err("HTTP error status".into()),
            });
        })
        .await?;
    }
    let resumed = conn.resumed();
    conn.close().await;
    match answer {
        Some(Err(why)) => Err(io::Error::other(why)),
        _ => Ok(resumed),
    }
}

fn check_answer(message: &[u8], id: u16, hash: u64) -> Result<(), String> {
    let parsed = Message::parse(message).map_err(|err| format!("malformed answer: {err}"))?;
    if !parsed.flags().response() || parsed.id() != id {
        return Err("an answer that is not to the query".into());
    }
    match question_hash(message) {
        Some((got, _)) if got == hash => Ok(()),
        _ => Err("an answer to another question".into()),
    }
}
