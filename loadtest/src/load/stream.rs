//! One worker of the stream transports (TCP, DNS over TLS, DNS over
//! HTTPS): a thread (pinned when asked) running a tokio current-thread
//! runtime with its share of the persistent connections, one task each.
//!
//! Each connection has its own in-flight table and pacing: in max mode it
//! keeps `window` queries outstanding (pipelined: written back to back
//! without waiting for answers); in open loop it sends on its own share of
//! the schedule, latency measured from the scheduled time, and a query due
//! while the connection already has `pipeline` outstanding is counted
//! unsent. Answers are matched to queries by ID and question, as over UDP
//! ([`super::worker::verify`]). A query is counted sent once it was written
//! to the socket. A connection that fails is counted, its outstanding
//! queries count as lost (they can no longer be answered), and it is
//! opened again while the send phase lasts.
//!
//! The worker's thread also hands in the figures of each second, like the
//! UDP workers, so the report is built the same way.
//!
//! Open loop wakes on tokio's timer (1 ms resolution), so queries leave in
//! bursts up to a millisecond late; their latency still counts from the
//! scheduled time, so that lag is in the figures (and in
//! `behind_schedule` when over 1 ms), never hidden.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};

use super::conn::{Conn, Endpoint, Reply};
use super::inflight::InFlight;
use super::stats::{BEHIND_SCHEDULE_NS, Interval, WorkerTotals};
use super::worker::{Pace, SECOND_NS, Tally, verify};
use super::workload::{MAX_QUERY_LEN, QueryStream};
use crate::affinity;

/// Queries a connection sends per turn of its loop, at most (open loop,
/// catching up).
const SEND_BUDGET: usize = 256;
/// How long past the end of the send phase a connection that fell behind
/// may keep sending its backlog.
const BACKLOG_GRACE_NS: u64 = SECOND_NS;
/// Pause before opening a failed connection again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);
/// Longest sleep, so the stop flag is seen promptly.
const MAX_SLEEP_NS: u64 = 100_000_000;

/// Everything one stream worker needs.
pub(crate) struct StreamSetup<'a> {
    pub(crate) endpoint: Endpoint,
    /// The pacing of each of this worker's connections.
    pub(crate) paces: Vec<Pace>,
    /// Open loop: most queries outstanding per connection.
    pub(crate) pipeline: usize,
    pub(crate) timeout_ns: u64,
    pub(crate) warmup_ns: u64,
    pub(crate) send_end_ns: u64,
    pub(crate) max_queries: u64,
    pub(crate) cpu: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) stream: QueryStream,
    pub(crate) start: Instant,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) intervals: mpsc::Sender<Interval>,
}

/// What the connection tasks of one worker share (one thread: cells).
struct Shared {
    endpoint: Endpoint,
    pipeline: usize,
    timeout_ns: u64,
    warmup_ns: u64,
    send_end_ns: u64,
    max_queries: u64,
    start: Instant,
    stop: Cell<bool>,
    tally: RefCell<Tally>,
    queries: RefCell<QueryStream>,
    issued: Cell<u64>,
    /// Queries outstanding on each connection, as last seen.
    outstanding: Vec<Cell<usize>>,
    /// When the last connection stopped sending.
    stopped_ns: Cell<u64>,
    first_error: RefCell<Option<String>>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn instant(&self, at_ns: u64) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.start + Duration::from_nanos(at_ns))
    }

    fn connection_error(&self, err: &io::Error) {
        // Counted in the warm-up too: a failing connection is news.
        self.tally
            .borrow_mut()
            .count(true, |counts| counts.connection_errors += 1);
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some(err.to_string());
        }
    }

    /// Every outstanding query of a connection that failed is lost.
    fn lose_all(&self, table: &mut InFlight) {
        let mut tally = self.tally.borrow_mut();
        table.expire(u64::MAX, |counted| {
            tally.count(counted, |counts| counts.lost += 1);
        });
    }

    fn deliver(&self, table: &mut InFlight, reply: Reply<'_>) {
        let now = self.now_ns();
        let mut tally = self.tally.borrow_mut();
        match reply {
            Reply::Message(message) => verify(message, table, &mut tally, now, self.warmup_ns),
            Reply::HttpError => {
                tally.count(now >= self.warmup_ns, |counts| counts.http_errors += 1);
            }
        }
    }
}

/// Run one stream worker to the end; returns its totals.
pub(crate) fn run(setup: StreamSetup<'_>) -> io::Result<WorkerTotals> {
    if let Some(cpu) = setup.cpu {
        affinity::pin_current_thread(&[cpu])
            .map_err(|err| io::Error::new(err.kind(), format!("cannot pin to CPU {cpu}: {err}")))?;
    }
    affinity::tighten_timer_slack();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shared = Rc::new(Shared {
        endpoint: setup.endpoint.clone(),
        pipeline: setup.pipeline,
        timeout_ns: setup.timeout_ns,
        warmup_ns: setup.warmup_ns,
        send_end_ns: setup.send_end_ns,
        max_queries: setup.max_queries,
        start: setup.start,
        stop: Cell::new(false),
        tally: RefCell::new(Tally::new()?),
        queries: RefCell::new(setup.stream),
        issued: Cell::new(0),
        outstanding: setup.paces.iter().map(|_| Cell::new(0)).collect(),
        stopped_ns: Cell::new(0),
        first_error: RefCell::new(None),
    });
    let local = tokio::task::LocalSet::new();
    let mut seeds = SmallRng::seed_from_u64(setup.seed);
    local.block_on(&runtime, async {
        let handles: Vec<_> = setup
            .paces
            .iter()
            .enumerate()
            .map(|(index, &pace)| {
                let rng = SmallRng::seed_from_u64(seeds.random());
                tokio::task::spawn_local(connection(Rc::clone(&shared), index, pace, rng))
            })
            .collect();
        let all = async {
            for handle in handles {
                if handle.await.is_err() {
                    shared.connection_error(&io::Error::other("a connection task panicked"));
                }
            }
        };
        tokio::pin!(all);
        let mut second = 0u64;
        loop {
            let now = shared.now_ns();
            let wake = ((second + 1) * SECOND_NS).min(now + MAX_SLEEP_NS);
            tokio::select! {
                () = &mut all => break,
                () = tokio::time::sleep_until(shared.instant(wake)) => {}
            }
            if setup.stop.load(Ordering::Relaxed) {
                shared.stop.set(true);
            }
            let now = shared.now_ns();
            while now >= (second + 1) * SECOND_NS {
                emit(&shared, &setup.intervals, second, SECOND_NS);
                second += 1;
            }
        }
        let end = shared.now_ns();
        emit(
            &shared,
            &setup.intervals,
            second,
            end.saturating_sub(second * SECOND_NS),
        );
    });
    let tally = shared.tally.replace(Tally::new()?);
    Ok(WorkerTotals {
        counts: tally.total,
        histogram: tally.total_histogram,
        send_end_ns: shared.stopped_ns.get(),
        cold_issued: shared.queries.borrow().cold_issued(),
        first_error: shared.first_error.borrow_mut().take(),
    })
}

fn emit(shared: &Shared, intervals: &mpsc::Sender<Interval>, second: u64, length_ns: u64) {
    let mut tally = shared.tally.borrow_mut();
    let interval = Interval {
        second,
        length_ns,
        counts: std::mem::take(&mut tally.interval),
        histogram: tally.interval_histogram.clone(),
        outstanding: shared.outstanding.iter().map(|n| n.get() as u64).sum(),
    };
    tally.interval_histogram.reset();
    // The receiver only goes away when the run is being torn down.
    let _gone = intervals.send(interval);
}

/// Poll `future` once: its output if it is ready now.
async fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// One connection's life: send phase, then drain.
async fn connection(shared: Rc<Shared>, index: usize, pace: Pace, mut rng: SmallRng) {
    let limit = match pace {
        Pace::Max { window } => window,
        Pace::Open { .. } => shared.pipeline,
    };
    let mut table = InFlight::new(limit, &mut rng);
    let mut conn: Option<Conn> = None;
    let mut next = 0u64; // open loop: this connection's next query
    let mut batch: Vec<u16> = Vec::with_capacity(SEND_BUDGET);
    let mut packet = [0u8; MAX_QUERY_LEN];
    let stopped_at;
    loop {
        let now = shared.now_ns();
        if shared.stop.get() || shared.issued.get() >= shared.max_queries {
            stopped_at = now;
            break;
        }
        let due = |k: u64| match pace {
            Pace::Open {
                interval_ns,
                offset_ns,
            } => (offset_ns + k as f64 * interval_ns) as u64,
            Pace::Max { .. } => now,
        };
        match pace {
            Pace::Open { .. } if due(next) >= shared.send_end_ns => {
                stopped_at = shared.send_end_ns;
                break;
            }
            Pace::Max { .. } if now >= shared.send_end_ns => {
                stopped_at = now;
                break;
            }
            _ => {}
        }
        if matches!(pace, Pace::Open { .. })
            && now > shared.send_end_ns.saturating_add(BACKLOG_GRACE_NS)
        {
            // Behind beyond the grace: the rest was offered, not sent.
            let mut tally = shared.tally.borrow_mut();
            while due(next) < shared.send_end_ns && shared.issued.get() < shared.max_queries {
                let counted = due(next) >= shared.warmup_ns;
                tally.count(counted, |counts| {
                    counts.scheduled += 1;
                    counts.unsent += 1;
                });
                shared.issued.set(shared.issued.get() + 1);
                next += 1;
            }
            stopped_at = now;
            break;
        }
        let Some(open) = conn.as_mut() else {
            match Conn::open(&shared.endpoint).await {
                Ok(opened) => conn = Some(opened),
                Err(err) => {
                    shared.connection_error(&err);
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                }
            }
            continue;
        };
        // Queue what is due.
        batch.clear();
        let mut budget = SEND_BUDGET;
        while budget > 0 && shared.issued.get() < shared.max_queries {
            let origin = match pace {
                Pace::Open { .. } => {
                    if due(next) > now || due(next) >= shared.send_end_ns {
                        break;
                    }
                    let origin = due(next);
                    next += 1;
                    if now.saturating_sub(origin) > BEHIND_SCHEDULE_NS {
                        shared
                            .tally
                            .borrow_mut()
                            .count(origin >= shared.warmup_ns, |c| {
                                c.behind_schedule += 1;
                            });
                    }
                    origin
                }
                Pace::Max { window } => {
                    if table.outstanding() >= window {
                        break;
                    }
                    now
                }
            };
            budget -= 1;
            shared.issued.set(shared.issued.get() + 1);
            let counted = origin >= shared.warmup_ns;
            let mut tally = shared.tally.borrow_mut();
            tally.count(counted, |counts| counts.scheduled += 1);
            let built = shared.queries.borrow_mut().next_query(&mut packet);
            let id = built.and_then(|(len, hash)| {
                let id = table.allocate(hash, origin, counted)?;
                Some((id, len))
            });
            let Some((id, len)) = id else {
                tally.count(counted, |counts| counts.unsent += 1);
                continue;
            };
            if let Some(header) = packet.first_chunk_mut::<2>() {
                *header = id.to_be_bytes();
            }
            open.push(packet.get(..len).unwrap_or_default());
            batch.push(id);
        }
        if !batch.is_empty() {
            let written = open.flush().await;
            let deadline = shared.now_ns() + shared.timeout_ns;
            let mut tally = shared.tally.borrow_mut();
            for &id in &batch {
                if written.is_ok() {
                    let counted = table.sent(id, deadline);
                    tally.count(counted, |counts| counts.sent += 1);
                } else {
                    let counted = table.unsent(id);
                    tally.count(counted, |counts| counts.unsent += 1);
                }
            }
            drop(tally);
            if let Err(err) = written {
                shared.connection_error(&err);
                shared.lose_all(&mut table);
                conn = None;
                continue;
            }
        }
        // Wait for answers, the next send, the next deadline.
        let mut wake = now.saturating_add(MAX_SLEEP_NS).min(shared.send_end_ns);
        if let Pace::Open { .. } = pace {
            wake = wake.min(due(next));
        }
        if let Some(deadline) = table.next_deadline() {
            wake = wake.min(deadline);
        }
        if !wait(&shared, &mut conn, &mut table, wake).await {
            conn = None;
        }
        if let Some(seen) = shared.outstanding.get(index) {
            seen.set(table.outstanding());
        }
    }
    // Drain: every outstanding query is answered or times out.
    while table.outstanding() > 0 {
        if conn.is_none() {
            shared.lose_all(&mut table);
            break;
        }
        let wake = table.next_deadline().unwrap_or(u64::MAX);
        let wake = wake.min(shared.now_ns().saturating_add(MAX_SLEEP_NS));
        if !wait(&shared, &mut conn, &mut table, wake).await {
            conn = None;
        }
        if let Some(seen) = shared.outstanding.get(index) {
            seen.set(table.outstanding());
        }
    }
    if let Some(seen) = shared.outstanding.get(index) {
        seen.set(0);
    }
    shared
        .stopped_ns
        .set(shared.stopped_ns.get().max(stopped_at));
    if let Some(conn) = conn {
        conn.close().await;
    }
}

/// Receive until `wake` (ns from the start) or the first answers; then
/// read whatever else is ready and expire what timed out. Returns false
/// when the connection failed (its queries are then lost).
async fn wait(shared: &Shared, conn: &mut Option<Conn>, table: &mut InFlight, wake: u64) -> bool {
    let Some(open) = conn.as_mut() else {
        return false;
    };
    let mut deliver = |reply: Reply<'_>| shared.deliver(table, reply);
    let received = tokio::select! {
        received = open.recv(&mut deliver) => Some(received),
        () = tokio::time::sleep_until(shared.instant(wake)) => None,
    };
    if let Some(Err(err)) = received {
        shared.connection_error(&err);
        shared.lose_all(table);
        return false;
    }
    // Let finished DoH requests reach their join set, then read what is
    // ready; a query past its deadline is lost only if its answer was not
    // waiting when we last looked.
    tokio::task::yield_now().await;
    let drained_ns = loop {
        let before = shared.now_ns();
        match poll_once(open.recv(&mut deliver)).await {
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                shared.connection_error(&err);
                shared.lose_all(table);
                return false;
            }
            None => break before,
        }
    };
    let mut tally = shared.tally.borrow_mut();
    table.expire(shared.now_ns().min(drained_ns), |counted| {
        tally.count(counted, |counts| counts.lost += 1);
    });
    true
}
