//! TCP: an accept thread and one thread per connection (at most
//! [`MAX_TCP_CONNECTIONS`]), with 2-byte length framing (RFC 1035 section
//! 4.2.2) and pipelining: every complete query in the buffer is answered,
//! in order, before reading more.
//!
//! A thread per connection is plenty for a test upstream and keeps the
//! code plain. Each connection has its own delay queue, so a delayed reply
//! does not hold back reading the next query. Reads time out every
//! [`STOP_POLL`] so connections notice `stop`; writes time out too, so a
//! client that stops reading cannot wedge `stop`.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::respond::{Transport, shift_id};
use super::stats::Counters;
use super::timer::TimerQueue;
use super::{Action, MAX_DELAYED, MAX_TCP_CONNECTIONS, STOP_POLL, Shared, handle};
use crate::net::wait_readable;

/// A connection with nothing to do for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that does not take a reply within this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest DNS message over TCP.
const MAX_MESSAGE: usize = u16::MAX as usize;

/// Accept until stop; then join every connection thread.
pub(super) fn serve(listener: &TcpListener, shared: &Arc<Shared>, counters: &Arc<Counters>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _peer)) => {
                connections.retain(|thread| !thread.is_finished());
                if connections.len() >= MAX_TCP_CONNECTIONS {
                    // Closing at once sheds the load and tells the client.
                    drop(stream);
                    continue;
                }
                let (shared, counters) = (Arc::clone(shared), Arc::clone(counters));
                let spawned = std::thread::Builder::new()
                    .name("upstream-tcp-conn".into())
                    .spawn(move || {
                        let _closed = connection(stream, &shared, &counters);
                    });
                if let Ok(thread) = spawned {
                    connections.push(thread);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                let _timed_out = wait_readable(listener.as_raw_fd(), STOP_POLL);
            }
            Err(_) => {
                // Out of descriptors and the like: back off instead of spinning.
                std::thread::sleep(STOP_POLL);
            }
        }
    }
    for thread in connections {
        let _panicked = thread.join();
    }
}

fn write_frame(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| io::Error::other("reply too long"))?;
    let mut frame = Vec::with_capacity(2 + message.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(message);
    stream.write_all(&frame)
}

/// Write one reply; when it `counts` as the answer, count it first (see
/// `Counters::unanswered`) and undo that if the write fails.
fn send(stream: &mut TcpStream, reply: &[u8], counts: bool, counters: &Counters) -> io::Result<()> {
    let truncated = super::is_truncated(reply);
    if counts {
        counters.answered(truncated);
    }
    let written = write_frame(stream, reply);
    if counts && written.is_err() {
        counters.unanswered(truncated);
    }
    written
}

/// Reply bytes and whether they count as the answer (the spoof does not).
struct Delayed {
    bytes: Vec<u8>,
    counts: bool,
}

fn connection(mut stream: TcpStream, shared: &Shared, counters: &Counters) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut delayed: TimerQueue<Delayed> = TimerQueue::new(MAX_DELAYED);
    let mut input: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut out = vec![0u8; MAX_MESSAGE];
    let mut last_activity = Instant::now();
    let mut eof = false;
    let result = loop {
        if shared.stopping() {
            break Ok(());
        }
        let now = Instant::now();
        while let Some(pending) = delayed.pop_due(now) {
            if let Err(err) = send(&mut stream, &pending.bytes, pending.counts, counters) {
                for pending in delayed.drain() {
                    if pending.counts {
                        counters.dropped();
                    }
                }
                return Err(err);
            }
            last_activity = now;
        }
        let nothing_queued = delayed.next_due().is_none();
        if eof && nothing_queued {
            break Ok(());
        }
        if nothing_queued && now.duration_since(last_activity) > IDLE_TIMEOUT {
            break Ok(());
        }
        let wait = delayed
            .next_due()
            .map_or(STOP_POLL, |due| due.saturating_duration_since(now))
            .clamp(Duration::from_millis(1), STOP_POLL);
        if eof {
            std::thread::sleep(wait);
            continue;
        }
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut chunk) {
            Ok(0) => eof = true,
            Ok(read) => {
                input.extend_from_slice(chunk.get(..read).unwrap_or_default());
                last_activity = Instant::now();
                if let Err(err) = answer_frames(
                    &mut input,
                    &mut out,
                    &mut stream,
                    &mut delayed,
                    shared,
                    counters,
                ) {
                    break Err(err);
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(err) => break Err(err),
        }
    };
    for pending in delayed.drain() {
        if pending.counts {
            counters.dropped();
        }
    }
    result
}

/// Answer every complete frame at the front of `input` and remove it.
fn answer_frames(
    input: &mut Vec<u8>,
    out: &mut [u8],
    stream: &mut TcpStream,
    delayed: &mut TimerQueue<Delayed>,
    shared: &Shared,
    counters: &Counters,
) -> io::Result<()> {
    let mut consumed = 0usize;
    let result = loop {
        let Some(&[high, low]) = input.get(consumed..consumed + 2) else {
            break Ok(());
        };
        let len = usize::from(u16::from_be_bytes([high, low]));
        let Some(query) = input.get(consumed + 2..consumed + 2 + len) else {
            break Ok(());
        };
        consumed += 2 + len;
        let Action::Reply { len, spoof } =
            handle(shared, counters, None, Transport::Tcp, query, out)
        else {
            continue;
        };
        let Some(reply) = out.get_mut(..len) else {
            counters.dropped();
            continue;
        };
        let delay = shared.delay();
        if delay.is_zero() {
            if spoof {
                shift_id(reply, 1);
                let sent = send(stream, reply, false, counters);
                shift_id(reply, 0u16.wrapping_sub(1));
                if let Err(err) = sent {
                    counters.dropped();
                    break Err(err);
                }
            }
            if let Err(err) = send(stream, reply, true, counters) {
                break Err(err);
            }
            continue;
        }
        let due = Instant::now() + delay;
        if spoof {
            let mut bytes = reply.to_vec();
            shift_id(&mut bytes, 1);
            let _full = delayed.push(
                due,
                Delayed {
                    bytes,
                    counts: false,
                },
            );
        }
        let right = Delayed {
            bytes: reply.to_vec(),
            counts: true,
        };
        if delayed.push(due, right).is_err() {
            counters.dropped();
        }
    };
    input.drain(..consumed.min(input.len()));
    result
}
