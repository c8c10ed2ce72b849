//! DNS over UDP to clients: the receive loop of each listening socket
//! (wait with glommio, drain with recvmmsg, answer the batch with
//! sendmmsg and GSO, pause briefly under load to coalesce), and
//! [`UdpReplies`], the way back for replies that waited on an upstream.
//! This is the hot path: one resolver borrow, one recvmmsg and one
//! sendmmsg per batch, no allocation.

use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use glommio::net::UdpSocket;
use glommio::sync::Semaphore;
use heimdall_resolver::{ClientId, QueryOutcome, Transport};

use crate::batch::{DatagramBatch, send_to};
use crate::context::{ClientReplies, CoreContext, SendFailed};
use crate::sockets::is_timeout;

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

/// Replies to UDP clients, sent from the listening socket their query
/// arrived on (`ClientId::listener` indexes the core's listeners).
pub(crate) struct UdpReplies {
    listener_fds: Vec<RawFd>,
}

impl UdpReplies {
    /// The core's listening sockets, in listener order. They must stay
    /// open while replies may be sent (the worker keeps them).
    pub(crate) fn new(listener_fds: Vec<RawFd>) -> Self {
        Self { listener_fds }
    }
}

impl ClientReplies for UdpReplies {
    fn reply(&self, client: &ClientId, reply: &[u8]) -> Result<(), SendFailed> {
        let Some(&fd) = self.listener_fds.get(usize::from(client.listener)) else {
            return Ok(());
        };
        send_to(fd, reply, client.addr)
            .map(|_| ())
            .map_err(|_| SendFailed)
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
            match wait_first(&ctx, &socket, &mut received, &stopping).await {
                Wait::Stop => break,
                Wait::Nothing => continue,
                Wait::One => count = 1,
            }
        } else {
            // Busy: let the core's other tasks (upstream replies, timers,
            // TCP) run when the time slice is up.
            glommio::yield_if_needed().await;
        }
        answer_batch(&ctx, &received, &mut replies, count, listener, settings, fd);
    }
    socket
}

/// What the wait for a first datagram found.
enum Wait {
    /// The core is stopping.
    Stop,
    /// A receive error (logged unless a timeout): look again.
    Nothing,
    /// One datagram, in slot 0 of the batch.
    One,
}

/// Wait with glommio for one datagram, racing the stop signal.
async fn wait_first(
    ctx: &CoreContext,
    socket: &UdpSocket,
    received: &mut DatagramBatch,
    stopping: &Semaphore,
) -> Wait {
    let first = futures_lite::future::or(
        async { Some(socket.recv_from(received.buffer_mut(0)).await) },
        async {
            // Closed (never granted) when the core stops.
            let _ = stopping.acquire(1).await;
            None
        },
    )
    .await;
    match first {
        None => Wait::Stop,
        Some(Ok((len, from))) => {
            received.set(0, len, from);
            Wait::One
        }
        Some(Err(err)) => {
            if !is_timeout(&err) {
                log::debug!("core {}: receive error: {err}", ctx.index());
            }
            Wait::Nothing
        }
    }
}

/// Answer the `count` datagrams received: one resolver borrow for the
/// batch, one sendmmsg for the replies, then drain what the resolver
/// produced for upstreams and waiting clients.
fn answer_batch(
    ctx: &Rc<CoreContext>,
    received: &DatagramBatch,
    replies: &mut DatagramBatch,
    count: usize,
    listener: u16,
    settings: UdpSettings,
    fd: RawFd,
) {
    let now = ctx.now();
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
                queries.handle(received.datagram(index), client, now, out)
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
    }
    ctx.drain(now);
}
