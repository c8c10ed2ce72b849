//! One worker: a thread (pinned when asked) with its own sockets, query
//! stream, in-flight tables, counters and histograms. Nothing is shared
//! with other workers but the stop flag and the channel its per-second
//! figures go out on.
//!
//! The loop, until the send phase ends: send what is due (open loop: every
//! query whose scheduled time has come; max: enough to fill each socket's
//! window), one `sendmmsg` per socket; drain every socket with
//! `recvmmsg(MSG_DONTWAIT)`; expire queries past their timeout; hand in the
//! figures of each finished second; and when there was nothing to do, sleep
//! in `ppoll` until a socket is readable or the next send, timeout or
//! second is due. Then it keeps receiving until every query is answered or
//! has timed out.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd as _, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use heimdall_wire::{Message, Rcode};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::inflight::{InFlight, Match};
use super::stats::{BEHIND_SCHEDULE_NS, Counts, Interval, WorkerTotals, new_histogram};
use super::workload::{MAX_QUERY_LEN, QueryStream, question_hash};
use crate::affinity;
use crate::net::{RecvBatch, SendBatch, wait_any_readable};

/// Receive buffer per datagram: any UDP answer up to 4 KiB is read whole
/// (the EDNS size offered is at most that by default).
const RECV_BUF: usize = 4096;
/// `recvmmsg` calls per socket per loop turn, at most.
const RECV_ROUNDS: usize = 8;
/// One second in nanoseconds.
pub(crate) const SECOND_NS: u64 = 1_000_000_000;
/// How long past the end of the send phase a generator that fell behind
/// may keep sending its backlog; what is left then is counted unsent.
const BACKLOG_GRACE_NS: u64 = SECOND_NS;

/// How a worker decides when to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pace {
    /// Query `k` is due at `offset_ns + k * interval_ns`.
    Open { interval_ns: f64, offset_ns: f64 },
    /// Keep `window` queries outstanding on every socket.
    Max { window: usize },
}

/// Everything one worker needs.
pub(crate) struct WorkerSetup<'a> {
    pub(crate) target: SocketAddr,
    pub(crate) pace: Pace,
    pub(crate) sockets: usize,
    pub(crate) batch: usize,
    pub(crate) gso: bool,
    pub(crate) in_flight_limit: usize,
    pub(crate) timeout_ns: u64,
    pub(crate) warmup_ns: u64,
    /// The end of the send phase (warm-up plus duration), from `start`.
    pub(crate) send_end_ns: u64,
    /// Queries this worker may issue in all.
    pub(crate) max_queries: u64,
    pub(crate) cpu: Option<usize>,
    pub(crate) seed: u64,
    pub(crate) stream: QueryStream,
    pub(crate) start: Instant,
    pub(crate) stop: &'a AtomicBool,
    pub(crate) intervals: mpsc::Sender<Interval>,
}

struct Sock {
    socket: UdpSocket,
    /// When the socket was last seen with nothing left to read.
    drained_ns: u64,
    send: SendBatch<u16>,
    recv: RecvBatch,
    table: InFlight,
}

impl Sock {
    fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// Counts and latencies of the current second and of the whole run.
pub(crate) struct Tally {
    pub(crate) interval: Counts,
    pub(crate) total: Counts,
    pub(crate) interval_histogram: Histogram<u64>,
    pub(crate) total_histogram: Histogram<u64>,
}

impl Tally {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            interval: Counts::default(),
            total: Counts::default(),
            interval_histogram: new_histogram()?,
            total_histogram: new_histogram()?,
        })
    }

    pub(crate) fn count(&mut self, counted: bool, event: impl Fn(&mut Counts)) {
        event(&mut self.interval);
        if counted {
            event(&mut self.total);
        }
    }

    fn answer(&mut self, counted: bool, latency_ns: u64, rcode: Rcode, truncated: bool) {
        self.count(counted, |counts| {
            counts.answered += 1;
            counts.rcode(rcode);
            if truncated {
                counts.truncated += 1;
            }
        });
        self.interval_histogram.saturating_record(latency_ns);
        if counted {
            self.total_histogram.saturating_record(latency_ns);
        }
    }
}

/// A UDP socket connected to `target` (so the kernel drops datagrams from
/// anyone else), with big buffers.
fn connect(target: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    // Capped by the kernel at rmem_max/wmem_max, which is fine.
    let _capped = socket.set_recv_buffer_size(8 << 20);
    let _capped = socket.set_send_buffer_size(4 << 20);
    socket.connect(&SockAddr::from(target))?;
    Ok(socket.into())
}

/// The worker's state while it runs.
struct Worker<'a> {
    setup: WorkerSetup<'a>,
    socks: Vec<Sock>,
    fds: Vec<RawFd>,
    tally: Tally,
    /// The second the current interval belongs to.
    second: u64,
    /// Queries issued (sent or counted unsent).
    issued: u64,
}

/// Run one worker to the end; returns its totals.
pub(crate) fn run(setup: WorkerSetup<'_>) -> io::Result<WorkerTotals> {
    if let Some(cpu) = setup.cpu {
        affinity::pin_current_thread(&[cpu])
            .map_err(|err| io::Error::new(err.kind(), format!("cannot pin to CPU {cpu}: {err}")))?;
    }
    affinity::tighten_timer_slack();
    let mut rng = SmallRng::seed_from_u64(setup.seed);
    let mut socks = Vec::with_capacity(setup.sockets);
    for _ in 0..setup.sockets.max(1) {
        socks.push(Sock {
            socket: connect(setup.target)?,
            drained_ns: 0,
            send: if setup.gso {
                SendBatch::new(setup.batch, MAX_QUERY_LEN).connected().gso()
            } else {
                SendBatch::new(setup.batch, MAX_QUERY_LEN).connected()
            },
            recv: RecvBatch::new(setup.batch, RECV_BUF),
            table: InFlight::new(setup.in_flight_limit, &mut rng),
        });
    }
    let fds = socks.iter().map(Sock::fd).collect();
    let tally = Tally::new()?;
    let mut worker = Worker {
        setup,
        socks,
        fds,
        tally,
        second: 0,
        issued: 0,
    };
    let send_end_ns = worker.send_phase();
    worker.drain();
    let end_ns = worker.now_ns();
    worker.emit(end_ns.saturating_sub(worker.second * SECOND_NS));
    Ok(WorkerTotals {
        counts: worker.tally.total,
        histogram: worker.tally.total_histogram,
        send_end_ns,
        cold_issued: worker.setup.stream.cold_issued(),
        first_error: None,
    })
}

impl Worker<'_> {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.setup.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn stopping(&self) -> bool {
        self.setup.stop.load(Ordering::Relaxed)
    }

    /// Send until the schedule, the cap or the stop flag says so; returns
    /// when sending stopped (ns from the start).
    fn send_phase(&mut self) -> u64 {
        let mut next = 0u64; // open loop: the next query's number
        loop {
            let now = self.now_ns();
            if self.stopping() || self.issued >= self.setup.max_queries {
                return now;
            }
            let mut busy = false;
            let mut wake = now.saturating_add(SECOND_NS);
            match self.setup.pace {
                Pace::Open {
                    interval_ns,
                    offset_ns,
                } => {
                    let due = |k: u64| (offset_ns + k as f64 * interval_ns) as u64;
                    if due(next) >= self.setup.send_end_ns {
                        // The whole schedule went out: it covered the
                        // whole window, however early the last send was.
                        return self.setup.send_end_ns;
                    }
                    if now > self.setup.send_end_ns.saturating_add(BACKLOG_GRACE_NS) {
                        // The generator could not keep up: what the
                        // schedule still holds was offered and not sent.
                        while due(next) < self.setup.send_end_ns
                            && self.issued < self.setup.max_queries
                        {
                            let counted = due(next) >= self.setup.warmup_ns;
                            self.tally.count(counted, |counts| {
                                counts.scheduled += 1;
                                counts.unsent += 1;
                            });
                            self.issued += 1;
                            next += 1;
                        }
                        return now;
                    }
                    let mut budget = self.setup.batch * self.socks.len();
                    let sockets = self.socks.len().max(1) as u64;
                    while budget > 0
                        && due(next) <= now
                        && due(next) < self.setup.send_end_ns
                        && self.issued < self.setup.max_queries
                    {
                        let origin = due(next);
                        let index = (next % sockets) as usize;
                        if now.saturating_sub(origin) > BEHIND_SCHEDULE_NS {
                            let counted = origin >= self.setup.warmup_ns;
                            self.tally
                                .count(counted, |counts| counts.behind_schedule += 1);
                        }
                        self.queue(index, origin, now);
                        next += 1;
                        budget -= 1;
                        busy = true;
                    }
                    wake = wake.min(due(next));
                }
                Pace::Max { window } => {
                    if now >= self.setup.send_end_ns {
                        return now;
                    }
                    for index in 0..self.socks.len() {
                        let outstanding = self
                            .socks
                            .get(index)
                            .map_or(window, |sock| sock.table.outstanding());
                        let room = window.saturating_sub(outstanding).min(self.setup.batch);
                        for _ in 0..room {
                            if self.issued >= self.setup.max_queries {
                                break;
                            }
                            self.queue(index, now, now);
                            busy = true;
                        }
                    }
                }
            }
            self.flush_all(now);
            busy |= self.receive_all() > 0;
            let now = self.now_ns();
            self.expire_all(now);
            self.tick(now);
            if !busy {
                self.idle(now, wake.min(self.setup.send_end_ns));
            }
        }
    }

    /// Receive until nothing is outstanding (every deadline is at most a
    /// timeout away).
    fn drain(&mut self) {
        loop {
            let busy = self.receive_all() > 0;
            let now = self.now_ns();
            self.expire_all(now);
            self.tick(now);
            if self.socks.iter().all(|sock| sock.table.outstanding() == 0) {
                return;
            }
            if !busy {
                self.idle(now, u64::MAX);
            }
        }
    }

    /// Sleep until a socket is readable, or the earliest of `until`, the
    /// next deadline and the next second.
    fn idle(&mut self, now: u64, until: u64) {
        let mut wake = until.min((self.second + 1) * SECOND_NS);
        for sock in &mut self.socks {
            if let Some(deadline) = sock.table.next_deadline() {
                wake = wake.min(deadline);
            }
        }
        if wake > now {
            // At most 100 ms, so the stop flag is seen promptly.
            let wait = Duration::from_nanos((wake - now).min(100_000_000));
            let _ready = wait_any_readable(&self.fds, wait);
        }
    }

    /// Build the next query into socket `index`'s send batch, with latency
    /// origin `origin` (ns from the start).
    fn queue(&mut self, index: usize, origin: u64, now: u64) {
        let counted = origin >= self.setup.warmup_ns;
        self.issued += 1;
        self.tally.count(counted, |counts| counts.scheduled += 1);
        let Some(sock) = self.socks.get_mut(index) else {
            return;
        };
        if sock.send.remaining() == 0 {
            flush(sock, &mut self.tally, now + self.setup.timeout_ns);
        }
        let target = self.setup.target;
        let Some(slot) = sock.send.slot() else {
            self.tally.count(counted, |counts| counts.unsent += 1);
            return;
        };
        let built = self.setup.stream.next_query(slot);
        let Some((len, hash)) = built else {
            self.tally.count(counted, |counts| counts.unsent += 1);
            return;
        };
        let Some(id) = sock.table.allocate(hash, origin, counted) else {
            self.tally.count(counted, |counts| counts.unsent += 1);
            return;
        };
        if let Some(header) = slot.first_chunk_mut::<2>() {
            *header = id.to_be_bytes();
        }
        if !sock.send.commit(len, target, id) {
            sock.table.unsent(id);
            self.tally.count(counted, |counts| counts.unsent += 1);
        }
    }

    fn flush_all(&mut self, now: u64) {
        let deadline = now + self.setup.timeout_ns;
        for sock in &mut self.socks {
            if !sock.send.is_empty() {
                flush(sock, &mut self.tally, deadline);
            }
        }
    }

    /// Drain every socket; returns the datagrams received.
    fn receive_all(&mut self) -> usize {
        let mut received = 0;
        let start = self.setup.start;
        let warmup_ns = self.setup.warmup_ns;
        for sock in &mut self.socks {
            received += receive(sock, &mut self.tally, start, warmup_ns);
        }
        received
    }

    /// Expire what timed out by `now`, on each socket only up to the time
    /// it was last seen drained.
    fn expire_all(&mut self, now: u64) {
        let tally = &mut self.tally;
        for sock in &mut self.socks {
            sock.table.expire(now.min(sock.drained_ns), |counted| {
                tally.count(counted, |counts| counts.lost += 1)
            });
        }
    }

    /// Hand in every second that has ended.
    fn tick(&mut self, now: u64) {
        while now >= (self.second + 1) * SECOND_NS {
            self.emit(SECOND_NS);
            self.second += 1;
        }
    }

    fn emit(&mut self, length_ns: u64) {
        let outstanding = self
            .socks
            .iter()
            .map(|sock| sock.table.outstanding() as u64)
            .sum();
        let interval = Interval {
            second: self.second,
            length_ns,
            counts: std::mem::take(&mut self.tally.interval),
            histogram: self.tally.interval_histogram.clone(),
            outstanding,
        };
        self.tally.interval_histogram.reset();
        // The receiver only goes away when the run is being torn down.
        let _gone = self.setup.intervals.send(interval);
    }
}

/// Send a socket's batch; each query sent gets `deadline`.
fn flush(sock: &mut Sock, tally: &mut Tally, deadline: u64) {
    let fd = sock.socket.as_raw_fd();
    let table = &mut sock.table;
    sock.send.flush(fd, |id, sent| {
        if sent {
            let counted = table.sent(id, deadline);
            tally.count(counted, |counts| counts.sent += 1);
        } else {
            let counted = table.unsent(id);
            tally.count(counted, |counts| counts.unsent += 1);
        }
    });
}

fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Drain one socket (up to [`RECV_ROUNDS`] batches); returns the datagrams
/// received. When the socket was seen empty, `drained_ns` becomes the time
/// just before that look: every answer that arrived before it has been
/// read, so a query whose deadline is earlier and is still outstanding
/// really is lost (and not merely unread because this thread was not
/// running).
fn receive(sock: &mut Sock, tally: &mut Tally, start: Instant, warmup_ns: u64) -> usize {
    let fd = sock.socket.as_raw_fd();
    let mut received = 0;
    for _ in 0..RECV_ROUNDS {
        let before = elapsed_ns(start);
        match sock.recv.recv(fd, libc::MSG_DONTWAIT) {
            Ok(count) => {
                if count < sock.recv_capacity() {
                    sock.drained_ns = before;
                }
                let now = elapsed_ns(start);
                for index in 0..count {
                    if let Some((packet, _source)) = sock.recv.get(index) {
                        verify(packet, &mut sock.table, tally, now, warmup_ns);
                    }
                }
                received += count;
                if count < sock.recv_capacity() {
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                sock.drained_ns = before;
                break;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                // ICMP port unreachable and the like, reported once per
                // error; the queries concerned time out as lost.
                tally.count(true, |counts| counts.refused += 1);
            }
        }
    }
    received
}

impl Sock {
    fn recv_capacity(&self) -> usize {
        self.recv.capacity()
    }
}

/// Match one datagram to its query and count what it was.
pub(crate) fn verify(
    packet: &[u8],
    table: &mut InFlight,
    tally: &mut Tally,
    now: u64,
    warmup_ns: u64,
) {
    let in_measurement = now >= warmup_ns;
    let Ok(message) = Message::parse(packet) else {
        tally.count(in_measurement, |counts| counts.malformed += 1);
        return;
    };
    let flags = message.flags();
    if !flags.response() {
        tally.count(in_measurement, |counts| counts.malformed += 1);
        return;
    }
    let rcode = message.rcode();
    let hash = match message.header().question_count {
        1 => match question_hash(packet) {
            Some((hash, _)) => Some(hash),
            None => {
                tally.count(in_measurement, |counts| counts.wrong_question += 1);
                return;
            }
        },
        // Error answers may leave out the question (RFC 1035 does not
        // require it); they are matched by ID alone.
        0 if rcode != Rcode::NOERROR => None,
        _ => {
            tally.count(in_measurement, |counts| counts.malformed += 1);
            return;
        }
    };
    match table.respond(message.id(), hash) {
        Match::Answered { origin_ns, counted } => {
            tally.answer(
                counted,
                now.saturating_sub(origin_ns),
                rcode,
                flags.truncated(),
            );
        }
        Match::WrongQuestion => {
            tally.count(in_measurement, |counts| counts.wrong_question += 1);
        }
        Match::Late => tally.count(in_measurement, |counts| counts.late += 1),
        Match::Duplicate => tally.count(in_measurement, |counts| counts.duplicate += 1),
        Match::WrongId => tally.count(in_measurement, |counts| counts.wrong_id += 1),
    }
}
