//! DNS over UDP to clients: the receive loop of each listening socket
//! (wait through a multishot receive that stays armed, or one glommio
//! receive at a time where the kernel has none; drain with recvmmsg
//! under load; answer the batch with
//! sendmmsg and GSO, pause briefly under load to coalesce when the arrival
//! rate makes it pay), and [`UdpReplies`], the way back for replies that
//! waited on an upstream, sent together once per turn.
//! This is the hot path: one resolver borrow, one recvmmsg and one
//! sendmmsg per batch, no allocation.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::UdpSocket;
use glommio::sync::Semaphore;
use heimdall_resolver::{ClientId, QueryOutcome, Transport};

use crate::batch::{DATAGRAM_BUF, DatagramBatch, send_to};
use crate::context::{ClientReplies, CoreContext, SendFailed};
use crate::sockets::is_timeout;
use crate::wake::Signal;

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

/// Replies to UDP clients that waited on an upstream, sent from the
/// listening socket their query arrived on (`ClientId::listener` indexes
/// the core's listeners).
///
/// They are not sent one `sendto` each: a reply is copied into its
/// listener's pending batch, and [`flush_waiting_replies`], a task woken by
/// the first reply of a turn, sends the batch with `sendmmsg` (and GSO
/// where replies to one client have one length). The task runs after the
/// tasks already woken in the same turn, so the replies to every upstream
/// answer the core reaped at once leave together. A full batch is sent at
/// once; a reply larger than a batch slot goes alone.
pub(crate) struct UdpReplies {
    listener_fds: Vec<RawFd>,
    /// Per listener, the replies waiting for the flush.
    pending: RefCell<Vec<PendingReplies>>,
    /// Raised by the first reply queued since the last flush.
    flush_due: Signal,
}

/// One listener's replies waiting to be sent.
struct PendingReplies {
    batch: DatagramBatch,
    count: usize,
}

impl UdpReplies {
    /// The core's listening sockets, in listener order, with room for
    /// `batch` pending replies each. They must stay open while replies may
    /// be sent (the worker keeps them).
    pub(crate) fn new(listener_fds: Vec<RawFd>, batch: usize, gso: bool) -> Self {
        let pending = listener_fds
            .iter()
            .map(|&fd| {
                let mut batch = DatagramBatch::new(batch.max(1));
                if gso {
                    // Without kernel GSO the replies still share sendmmsg
                    // calls (the listener loop has logged it).
                    let _ = batch.enable_gso(fd);
                }
                PendingReplies { batch, count: 0 }
            })
            .collect();
        Self {
            listener_fds,
            pending: RefCell::new(pending),
            flush_due: Signal::default(),
        }
    }

    /// Send every pending reply now; what the kernel refused is counted
    /// in `ctx`'s send errors, and the GSO counters added to its stats.
    pub(crate) fn flush(&self, ctx: &CoreContext) {
        let mut pending = self.pending.borrow_mut();
        for (replies, &fd) in pending.iter_mut().zip(&self.listener_fds) {
            if replies.count == 0 {
                continue;
            }
            let sent = replies.batch.send(fd, replies.count);
            let failed = replies.count - sent.min(replies.count);
            if failed > 0 {
                ctx.count_send_errors(failed as u64);
            }
            replies.count = 0;
            ctx.add_udp_stats(replies.batch.take_stats());
        }
    }
}

impl ClientReplies for UdpReplies {
    fn reply(&self, client: &ClientId, reply: &[u8]) -> Result<(), SendFailed> {
        let listener = usize::from(client.listener);
        let Some(&fd) = self.listener_fds.get(listener) else {
            return Ok(());
        };
        let mut pending = self.pending.borrow_mut();
        let Some(replies) = pending.get_mut(listener) else {
            return Ok(());
        };
        let slot = replies.count;
        let Some(buffer) = replies.batch.buffer_mut(slot).get_mut(..reply.len()) else {
            // Larger than a slot (or no slot: cannot happen, the batch is
            // sent when full): this one goes alone.
            return send_to(fd, reply, client.addr)
                .map(|_| ())
                .map_err(|_| SendFailed);
        };
        buffer.copy_from_slice(reply);
        replies.batch.set(slot, reply.len(), client.addr);
        replies.count += 1;
        if replies.count == replies.batch.capacity() {
            let sent = replies.batch.send(fd, replies.count);
            let failed = replies.count - sent.min(replies.count);
            replies.count = 0;
            return if failed > 0 { Err(SendFailed) } else { Ok(()) };
        }
        self.flush_due.raise();
        Ok(())
    }
}

/// Send the waiting replies of each turn together (see [`UdpReplies`]),
/// for as long as the core runs; the worker flushes once more at the end.
pub(crate) async fn flush_waiting_replies(ctx: Rc<CoreContext>, replies: Rc<UdpReplies>) {
    loop {
        replies.flush_due.wait().await;
        replies.flush(&ctx);
    }
}

/// Serve one listening socket until shutdown: wait for a datagram with
/// glommio, drain the rest with recvmmsg, answer the batch with sendmmsg.
/// Returns the socket, which must stay open while replies to outstanding
/// queries may still be sent through it (its fd is in [`UdpReplies`]).
pub(crate) async fn serve_udp(
    ctx: Rc<CoreContext>,
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
            ctx.index()
        );
    }
    if !settings.coalesce.is_zero() {
        ctx.judge_pauses();
    }
    let ended = serve_multishot(
        &ctx,
        &socket,
        &mut received,
        &mut replies,
        listener,
        settings,
        &stopping,
    )
    .await;
    if ended == Ended::Stopped {
        return socket;
    }
    let mut busy = false;
    // The last datagram came by a sleep at a slow rate: the socket was
    // empty a moment ago, so the next look goes straight to glommio's wait,
    // whose ring receive completes at once if one is queued after all (one
    // failed recvmmsg fewer per wake-up).
    let mut woke = false;
    let mut arrivals = ArrivalRate::default();
    loop {
        // Under load the socket rarely runs dry, so it is drained with
        // recvmmsg first, and glommio's wait (a receive submitted to the
        // ring with the sleep, one kernel entry) is paid only when that
        // found nothing. The wait consumes the datagram it wakes for, so no
        // wake-up can be lost (a peek-based wait did lose them under load).
        // It races the stop signal instead of carrying a read timeout,
        // which would arm and cancel a kernel timer on every wait.
        if stopping.try_acquire(1).is_err() {
            break;
        }
        let mut count = if woke {
            0
        } else {
            received.receive(fd, 0).unwrap_or(0)
        };
        let mut seen_at = note_read(&mut arrivals, count);
        if count == 0
            && busy
            && !woke
            && let Some(pause) = take_pause(&ctx, &arrivals, settings.coalesce)
        {
            // The last read found queries already queued (load) and the
            // socket is empty now: more are on their way. A short timer
            // wait lets them gather, so the next batch shares one wake-up,
            // one recvmmsg, one sendmmsg and its GSO sends among several
            // queries instead of paying them for one (a wake-up through
            // glommio costs several io_uring calls). Only when the rate
            // says enough will come within `coalesce`, and only as long
            // as it takes them (`ArrivalRate::pause`); a wait that finds
            // nothing ends the mode, and a lone query after a quiet spell
            // never enters it.
            glommio::timer::sleep(pause).await;
            count = received.receive(fd, 0).unwrap_or(0);
            seen_at = note_read(&mut arrivals, count);
        }
        busy = count > 0;
        woke = false;
        if count == 0 {
            match wait_first(&ctx, &socket, &mut received, &stopping).await {
                Wait::Stop => break,
                Wait::Nothing => continue,
                Wait::One { queued } => {
                    // Others may be queued behind it (it was queued itself:
                    // a burst; or a fast rate fills the socket while the
                    // core wakes): take them into this batch and its one
                    // sendmmsg. At a slow rate the read would only fail, so
                    // the next look goes straight to the wait (whose
                    // receive finds a queued datagram at once all the
                    // same, and then reads the rest here).
                    count = 1;
                    let company = if queued || arrivals.expects_company() {
                        received.receive(fd, 1).unwrap_or(0)
                    } else {
                        0
                    };
                    count += company;
                    // Found alone, it left the socket empty a moment ago:
                    // another read after answering it would usually fail
                    // (it was 1.4 recvmmsg per query at 20k q/s, one of
                    // every two failing), so the next look is the wait.
                    woke = company == 0;
                    seen_at = note_read(&mut arrivals, count);
                }
            }
        } else {
            // Busy: let the core's other tasks (upstream replies, timers,
            // TCP) run when the time slice is up.
            glommio::yield_if_needed().await;
        }
        let batch = BatchRead {
            count,
            at: seen_at.unwrap_or_else(Instant::now),
        };
        answer_batch(&ctx, &received, &mut replies, batch, listener, settings, fd);
    }
    socket
}

/// Buffers of a listener's multishot receive: room for a batch, so the
/// kernel can fill one while the core answers another.
const MULTISHOT_BUFFERS: u16 = 64;

/// The listener's multishot receive, where the kernel has one.
fn multishot_receiver(
    ctx: &CoreContext,
    socket: &UdpSocket,
    settings: UdpSettings,
) -> Option<glommio::net::MultishotReceiver> {
    let buffers = MULTISHOT_BUFFERS.max(settings.batch.next_power_of_two().min(1024) as u16);
    match socket.recv_multishot(buffers, DATAGRAM_BUF) {
        Ok(receiver) => Some(receiver),
        Err(err) => {
            log::info!(
                "core {}: no multishot receive ({err}); the listener waits one receive at a time",
                ctx.index()
            );
            None
        }
    }
}

/// Why [`serve_multishot`] returned.
#[derive(PartialEq, Eq)]
enum Ended {
    Stopped,
    /// The kernel has no multishot receive.
    Unsupported,
}

/// Serve a listener through its multishot receive until shutdown: answer
/// the datagrams the kernel queued for it, and under load read the rest of
/// the socket with recvmmsg; when nothing is queued, pause to coalesce (the
/// rate permitting) or wait for the next completion. A wake-up of an idle
/// core then submits nothing and arms no poll: the request stays armed.
async fn serve_multishot(
    ctx: &Rc<CoreContext>,
    socket: &UdpSocket,
    received: &mut DatagramBatch,
    replies: &mut DatagramBatch,
    listener: u16,
    settings: UdpSettings,
    stopping: &Semaphore,
) -> Ended {
    let fd = socket.as_raw_fd();
    let Some(mut receiver) = multishot_receiver(ctx, socket, settings) else {
        return Ended::Unsupported;
    };
    let mut busy = false;
    let mut arrivals = ArrivalRate::default();
    let mut rearms_counted = 0;
    loop {
        if stopping.try_acquire(1).is_err() {
            return Ended::Stopped;
        }
        let mut count = take_queued(&mut receiver, received);
        let mut read = 0;
        if busy && count < received.capacity() {
            // Under load the kernel hands over only part of what is
            // queued (the request ends when its buffers run out, and its
            // completions wait for the reactor): read the rest at once.
            read = received.receive(fd, count).unwrap_or(0);
            count += read;
        }
        let mut seen_at = note_read(&mut arrivals, count);
        if count == 0
            && busy
            && let Some(pause) = take_pause(ctx, &arrivals, settings.coalesce)
        {
            // As in `serve_udp`. An armed request would wake the core for
            // each datagram of the pause; it is armed again at the next
            // wait.
            receiver.disarm();
            glommio::timer::sleep(pause).await;
            count = take_queued(&mut receiver, received);
            read = received.receive(fd, count).unwrap_or(0);
            count += read;
            seen_at = note_read(&mut arrivals, count);
        }
        // One datagram at a time is a slow rate, where a read after it
        // would only fail; several, or a read that found some, is load.
        busy = count > 1 || read > 0;
        if count > 0 {
            if busy {
                // Let the core's other tasks run when the time slice is up
                // (a lone datagram came by a wake-up: the slice just began).
                glommio::yield_if_needed().await;
            }
            let batch = BatchRead {
                count,
                at: seen_at.unwrap_or_else(Instant::now),
            };
            answer_batch(ctx, received, replies, batch, listener, settings, fd);
            continue;
        }
        let ready = futures_lite::future::or(async { Some(receiver.ready().await) }, async {
            // Closed (never granted) when the core stops.
            let _ = stopping.acquire(1).await;
            None
        })
        .await;
        let rearms = receiver.ended_by_kernel();
        if rearms != rearms_counted {
            ctx.count_receive_rearms(rearms - rearms_counted);
            rearms_counted = rearms;
        }
        match ready {
            None => return Ended::Stopped,
            Some(Ok(())) => {}
            Some(Err(err)) => {
                log::info!(
                    "core {}: no multishot receive ({err}); the listener waits one receive at a time",
                    ctx.index()
                );
                return Ended::Unsupported;
            }
        }
    }
}

/// Copy the datagrams the multishot receive queued into the batch, as many
/// as fit; returns how many.
fn take_queued(
    receiver: &mut glommio::net::MultishotReceiver,
    received: &mut DatagramBatch,
) -> usize {
    let capacity = received.capacity();
    let mut count = 0;
    if !receiver.has_queued() {
        return 0;
    }
    receiver.take(|datagram| {
        if let Some(from) = datagram.from {
            let len = datagram.payload.len();
            if let Some(slot) = received.buffer_mut(count).get_mut(..len) {
                slot.copy_from_slice(datagram.payload);
                received.set(count, len, from);
                count += 1;
            }
        }
        count < capacity
    });
    count
}

/// Below this mean gap between datagrams, a wake-up reads the socket for
/// more at once; above it, a read after a wake-up usually finds nothing.
const COMPANY_GAP: Duration = Duration::from_micros(100);

/// Datagrams a coalescing pause waits for: a pause pays one timer wake-up
/// instead of one wake-up per datagram, so it pays only when it gathers
/// several.
const PAUSE_GATHERS: u64 = 4;

/// The arrival rate of one listening socket, as the mean gap between
/// datagrams (an exponentially weighted mean over reads, weight 1/8), for
/// the coalescing pause: hold a wake-up only while the rate predicts
/// [`PAUSE_GATHERS`] datagrams within the configured ceiling.
#[derive(Default)]
struct ArrivalRate {
    /// Mean gap between datagrams, in nanoseconds; 0 until measured.
    gap_ns: u64,
    /// When the last read that found datagrams ended.
    last: Option<Instant>,
}

impl ArrivalRate {
    /// A read at `now` found `count` datagrams.
    fn saw(&mut self, count: usize, now: Instant) {
        if count == 0 {
            return;
        }
        if let Some(last) = self.last {
            let elapsed = u64::try_from(now.duration_since(last).as_nanos()).unwrap_or(u64::MAX);
            let sample = elapsed / count as u64;
            self.gap_ns = if self.gap_ns == 0 {
                sample
            } else {
                self.gap_ns - self.gap_ns / 8 + sample / 8
            };
        }
        self.last = Some(now);
    }

    /// Whether datagrams come close enough together that one is likely
    /// queued behind the one a wake-up brought: the mean gap is under
    /// [`COMPANY_GAP`] (about 10k datagrams a second and up).
    fn expects_company(&self) -> bool {
        self.gap_ns != 0 && self.gap_ns < COMPANY_GAP.as_nanos() as u64
    }

    /// How long to wait for more datagrams, at most `ceiling`: the time
    /// [`PAUSE_GATHERS`] of them take at the measured rate, or `None`
    /// when that is longer than `ceiling` (a pause would add latency and
    /// save little) or nothing is measured yet.
    fn pause(&self, ceiling: Duration) -> Option<Duration> {
        if self.gap_ns == 0 || ceiling.is_zero() {
            return None;
        }
        let wait = Duration::from_nanos(self.gap_ns.saturating_mul(PAUSE_GATHERS));
        (wait <= ceiling).then_some(wait)
    }
}

/// How long to pause for more datagrams, if the core's pause judge allows
/// a pause now and the arrival rate says one gathers enough
/// (`ArrivalRate::pause`); the caller then pauses, and it is counted.
fn take_pause(ctx: &CoreContext, arrivals: &ArrivalRate, ceiling: Duration) -> Option<Duration> {
    if !ctx.may_pause() {
        return None;
    }
    let pause = arrivals.pause(ceiling)?;
    ctx.note_pause();
    Some(pause)
}

/// Count a read of `count` datagrams in `arrivals`. Returns when it was
/// taken if it found any: the one clock read their answers share (an
/// empty read needs none, and a wake-up at a slow rate pays for each).
fn note_read(arrivals: &mut ArrivalRate, count: usize) -> Option<Instant> {
    (count > 0).then(|| {
        let now = Instant::now();
        arrivals.saw(count, now);
        now
    })
}

/// What the wait for a first datagram found.
enum Wait {
    /// The core is stopping.
    Stop,
    /// A receive error (logged unless a timeout): look again.
    Nothing,
    /// One datagram, in slot 0 of the batch; `queued` when the core did
    /// not sleep for it (it was queued already, or came while the core
    /// was busy: either way more are likely behind it).
    One { queued: bool },
}

/// Wait with glommio for one datagram, racing the stop signal. The
/// receive goes to the ring at once, without the non-blocking `recvmsg`
/// glommio's `recv_from` tries first: the ring's receive is submitted with
/// the core's sleep in one kernel entry and completes at once if a
/// datagram is already queued, so that `recvmsg` would be one more system
/// call per wake-up, a failing one unless the socket had a burst queued.
async fn wait_first(
    ctx: &CoreContext,
    socket: &UdpSocket,
    received: &mut DatagramBatch,
    stopping: &Semaphore,
) -> Wait {
    let sleeps = glommio::executor().sleeps();
    let receive = socket.recv_from_ring(received.buffer_mut(0));
    let first = futures_lite::future::or(async { Some(receive.await) }, async {
        // Closed (never granted) when the core stops.
        let _ = stopping.acquire(1).await;
        None
    })
    .await;
    match first {
        None => Wait::Stop,
        Some(Ok((len, from))) => {
            received.set(0, len, from);
            Wait::One {
                queued: glommio::executor().sleeps() == sleeps,
            }
        }
        Some(Err(err)) => {
            if !is_timeout(&err) {
                log::debug!("core {}: receive error: {err}", ctx.index());
            }
            Wait::Nothing
        }
    }
}

/// The datagrams a read put at the start of the batch.
struct BatchRead {
    count: usize,
    /// When the read was taken: the time the batch's queries share.
    at: Instant,
}

/// Answer the datagrams `read` received: one resolver borrow for the
/// batch, one sendmmsg for the replies, then drain what the resolver
/// produced for upstreams and waiting clients.
fn answer_batch(
    ctx: &Rc<CoreContext>,
    received: &DatagramBatch,
    replies: &mut DatagramBatch,
    read: BatchRead,
    listener: u16,
    settings: UdpSettings,
    fd: RawFd,
) {
    // The batch's queries share the time of their read, and one clock
    // read after the send times them all: a wake-up at a slow rate pays
    // for every clock read.
    let BatchRead { count, at: started } = read;
    ctx.note_udp_read(count, started);
    let now = ctx.timestamp_at(started);
    let mut ready = 0usize;
    {
        let mut queries = ctx.queries();
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
                queries.handle(received.datagram(index), &client, now, out)
            {
                replies.set(ready, len, addr);
                ready += 1;
            }
        }
    }
    if ready > 0 {
        let sent = replies.send(fd, ready);
        if sent < ready {
            ctx.count_send_errors((ready - sent) as u64);
        }
        if settings.gso {
            ctx.add_udp_stats(replies.take_stats());
        }
        ctx.record_hits(Transport::Udp, ready, started);
    }
    ctx.drain(now);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `count` datagrams per read, `gap` apart per datagram, `reads` times.
    fn fed(gap: Duration, count: usize, reads: u32) -> ArrivalRate {
        let mut rate = ArrivalRate::default();
        let start = Instant::now();
        for read in 0..reads {
            rate.saw(count, start + gap * (read * count as u32));
        }
        rate
    }

    #[test]
    fn no_pause_until_the_rate_is_known() {
        assert_eq!(
            ArrivalRate::default().pause(Duration::from_micros(200)),
            None
        );
    }

    #[test]
    fn company_is_expected_only_at_a_fast_rate() {
        assert!(!ArrivalRate::default().expects_company());
        assert!(!fed(Duration::from_micros(200), 1, 50).expects_company());
        assert!(fed(Duration::from_micros(20), 1, 50).expects_company());
    }

    #[test]
    fn a_slow_rate_never_pauses() {
        // 5k/s: 200 us between queries, four of them take 800 us.
        let rate = fed(Duration::from_micros(200), 1, 50);
        assert_eq!(rate.pause(Duration::from_micros(200)), None);
    }

    #[test]
    fn a_fast_rate_pauses_as_long_as_four_datagrams_take() {
        // 50k/s: 20 us apart.
        let rate = fed(Duration::from_micros(20), 2, 50);
        let pause = rate.pause(Duration::from_micros(200)).unwrap();
        assert!(
            (Duration::from_micros(75)..=Duration::from_micros(85)).contains(&pause),
            "{pause:?}"
        );
        assert_eq!(rate.pause(Duration::ZERO), None, "0 turns it off");
        assert_eq!(
            rate.pause(Duration::from_micros(50)),
            None,
            "over the ceiling"
        );
    }

    #[test]
    fn empty_reads_do_not_move_the_estimate() {
        let mut rate = fed(Duration::from_micros(20), 1, 50);
        let before = rate.gap_ns;
        rate.saw(0, Instant::now() + Duration::from_secs(5));
        assert_eq!(rate.gap_ns, before);
    }
}
