//! A UDP serving thread: drain a batch with `recvmmsg`, build the replies
//! in place in the send batch, release delayed replies when due, and send
//! with `sendmmsg`.
//!
//! The socket stays in blocking mode: draining uses `MSG_DONTWAIT`, and
//! waiting uses `poll` with a timeout bounded by [`STOP_POLL`] and by the
//! next delayed reply, so the thread neither spins nor oversleeps.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use heimdall_wire::HEADER_LEN;
use rand::rngs::SmallRng;
use rand::{RngExt as _, SeedableRng as _};

use super::respond::{EDNS_PAYLOAD, Transport, echo, is_truncated, shift_id};
use super::stats::Counters;
use super::timer::TimerQueue;
use super::{Action, Behavior, MAX_DELAYED, STOP_POLL, Shared, handle};
use crate::net::{RecvBatch, SendBatch, wait_readable};

/// Datagrams per `recvmmsg`.
const BATCH: usize = 64;
/// Receive buffer per datagram; queries are far smaller, and a longer
/// datagram is cut and then answered FORMERR.
const RECV_BUF: usize = 4096;
/// Every UDP reply fits: the limit is at most the EDNS payload size.
const REPLY_BUF: usize = EDNS_PAYLOAD as usize;

/// What `flush` needs to correct the counters when a send fails (answers
/// are counted when queued; see `Counters::unanswered`).
#[derive(Debug, Clone, Copy)]
struct Tag {
    /// False for the spoofed reply that precedes a right one.
    counts: bool,
    truncated: bool,
}

struct Delayed {
    dest: SocketAddr,
    bytes: Vec<u8>,
    tag: Tag,
}

fn flush(send: &mut SendBatch<Tag>, fd: RawFd, counters: &Counters) {
    send.flush(fd, |tag, sent| {
        if tag.counts && !sent {
            counters.unanswered(tag.truncated);
        }
    });
}

/// Serve until `shared` says stop.
pub(super) fn serve(socket: &UdpSocket, shared: &Shared, counters: &Counters, index: u64) {
    let fd = socket.as_raw_fd();
    let mut recv = RecvBatch::new(BATCH, RECV_BUF);
    // Two slots per query (a spoofed reply and the right one), so a whole
    // received batch fits without a mid-batch flush.
    let mut send = SendBatch::<Tag>::new(2 * BATCH, REPLY_BUF);
    let mut delayed: TimerQueue<Delayed> = TimerQueue::new(MAX_DELAYED);
    // Echo replies: equal-length replies to one client go out as one UDP
    // GSO train (the client still receives one datagram per reply).
    let mut echo_send = SendBatch::<Tag>::new(BATCH, REPLY_BUF).gso();
    let mut rng = SmallRng::seed_from_u64(shared.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    while !shared.stopping() {
        release_due(&mut delayed, &mut send, fd, counters);
        match recv.recv(fd, libc::MSG_DONTWAIT) {
            Ok(_) => {}
            Err(err) => {
                flush(&mut send, fd, counters);
                if err.kind() != std::io::ErrorKind::Interrupted {
                    let now = Instant::now();
                    let wait = delayed
                        .next_due()
                        .map_or(STOP_POLL, |due| due.saturating_duration_since(now))
                        .min(STOP_POLL);
                    if !wait.is_zero() {
                        let _timed_out = wait_readable(fd, wait);
                    }
                }
                continue;
            }
        }
        if shared.behavior() == Behavior::Echo {
            flush(&mut send, fd, counters);
            echo_batch(&recv, &mut echo_send, fd, shared, counters, &mut rng);
            flush(&mut echo_send, fd, counters);
            continue;
        }
        let delay = shared.delay();
        let now = Instant::now();
        for index in 0..recv.len() {
            let Some((packet, source)) = recv.get(index) else {
                continue;
            };
            let Some(source) = source else {
                counters.received();
                counters.dropped();
                continue;
            };
            if send.remaining() < 2 {
                flush(&mut send, fd, counters);
            }
            let Some((slot, spare)) = send.slot_pair() else {
                counters.received();
                counters.dropped();
                continue;
            };
            let Action::Reply { len, spoof } = handle(
                shared,
                counters,
                Some(&mut rng),
                Transport::Udp,
                packet,
                slot,
            ) else {
                continue;
            };
            let (Some(reply), Some(copy)) = (slot.get_mut(..len), spare.get_mut(..len)) else {
                counters.dropped();
                continue;
            };
            let truncated = is_truncated(reply);
            let right = Tag {
                counts: true,
                truncated,
            };
            let spoofed = Tag {
                counts: false,
                truncated,
            };
            if delay.is_zero() {
                if spoof {
                    // The right reply moves to the second slot; the first
                    // becomes the spoof, which must arrive first.
                    copy.copy_from_slice(reply);
                    shift_id(reply, 1);
                    send.commit(len, source, spoofed);
                }
                if send.commit(len, source, right) {
                    counters.answered(truncated);
                } else {
                    counters.dropped();
                }
                continue;
            }
            let due = now + delay;
            if spoof {
                let mut bytes = reply.to_vec();
                shift_id(&mut bytes, 1);
                let _full = delayed.push(
                    due,
                    Delayed {
                        dest: source,
                        bytes,
                        tag: spoofed,
                    },
                );
            }
            let right = Delayed {
                dest: source,
                bytes: reply.to_vec(),
                tag: right,
            };
            if delayed.push(due, right).is_err() {
                counters.dropped();
            }
        }
        flush(&mut send, fd, counters);
    }
    flush(&mut send, fd, counters);
    for pending in delayed.drain() {
        if pending.tag.counts {
            counters.dropped();
        }
    }
}

/// Reflect a received batch (see [`Behavior::Echo`]): no parsing, no
/// per-name counting, one copy per datagram.
fn echo_batch(
    recv: &RecvBatch,
    send: &mut SendBatch<Tag>,
    fd: RawFd,
    shared: &Shared,
    counters: &Counters,
    rng: &mut SmallRng,
) {
    let rate = shared.drop_rate();
    let tag = Tag {
        counts: true,
        truncated: false,
    };
    for index in 0..recv.len() {
        let Some((packet, source)) = recv.get(index) else {
            continue;
        };
        counters.received();
        let is_query = packet.len() >= HEADER_LEN && packet.get(2).is_some_and(|b| b & 0x80 == 0);
        let (Some(source), true) = (source, is_query) else {
            counters.dropped();
            continue;
        };
        if rate > 0.0 && rng.random::<f64>() < rate {
            counters.dropped();
            continue;
        }
        if send.remaining() == 0 {
            flush(send, fd, counters);
        }
        let len = send.slot().and_then(|slot| echo(packet, slot));
        match len {
            Some(len) if send.commit(len, source, tag) => counters.answered(false),
            _ => counters.dropped(),
        }
    }
}

fn release_due(
    delayed: &mut TimerQueue<Delayed>,
    send: &mut SendBatch<Tag>,
    fd: RawFd,
    counters: &Counters,
) {
    let now = Instant::now();
    while let Some(pending) = delayed.pop_due(now) {
        if send.remaining() == 0 {
            flush(send, fd, counters);
        }
        let queued = send.push(&pending.bytes, pending.dest, pending.tag);
        match (pending.tag.counts, queued) {
            (true, true) => counters.answered(pending.tag.truncated),
            (true, false) => counters.dropped(),
            (false, _) => {}
        }
    }
}
