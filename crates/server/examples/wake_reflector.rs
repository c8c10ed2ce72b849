//! A reflector that measures what waiting costs: it answers every datagram
//! with the datagram itself, QR set, and does nothing else, waiting either
//! the way heimdall's UDP listeners wait (glommio's multishot receive on
//! the latency ring: `glommio`) or the way Unbound and the load generator's
//! reflector wait (a level-triggered `epoll_wait`, then `recvmmsg` until a
//! read comes back short: `epoll`). Both put the replies in the same
//! `heimdall_udp::Batch` and send them with one `sendmmsg`, so at a paced
//! rate the difference in CPU per query is the wait and wake-up machinery
//! alone. `benches/peers/load-curve.sh` runs it as the servers
//! `wake-glommio` and `wake-epoll` (docs/BENCHMARKS.md, "Session of
//! 2026-12-04, 08:35").
//!
//! ```text
//! cargo run --release -p heimdall-server --example wake_reflector -- ADDR glommio|epoll
//! ```
//!
//! It runs on the CPUs it is given (`taskset`), one thread.

use std::{
    error::Error,
    net::{SocketAddr, UdpSocket as StdSocket},
    os::unix::io::{AsRawFd, RawFd},
    time::Duration,
};

use glommio::{LocalExecutorBuilder, Placement, net::UdpSocket};
use heimdall_udp::{Batch, ReadySet};

/// Datagrams per batch, as heimdall's default `udp_batch`.
const BATCH: usize = 64;
/// Room per datagram, as heimdall's listeners.
const DATAGRAM: usize = 4096;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: wake_reflector ADDR glommio|epoll";
    let addr: SocketAddr = args.next().ok_or(usage)?.parse()?;
    match args.next().as_deref() {
        Some("glommio") => glommio_loop(addr),
        Some("epoll") => epoll_loop(addr),
        _ => Err(usage.into()),
    }
}

/// Queue `query` in slot `index` of `replies` as its own answer (QR set),
/// to `from`; false when it does not fit.
fn reflect(replies: &mut Batch, index: usize, query: &[u8], from: Option<SocketAddr>) -> bool {
    let Some(slot) = replies
        .buffer_mut(index)
        .and_then(|buffer| buffer.get_mut(..query.len()))
    else {
        return false;
    };
    slot.copy_from_slice(query);
    if let Some(flags) = slot.get_mut(2) {
        *flags |= 0x80;
    }
    replies.set(index, query.len(), from)
}

/// Wait as heimdall's listeners do: a multishot receive on the latency
/// ring, the queued datagrams taken after each wake-up.
fn glommio_loop(addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    let handle = LocalExecutorBuilder::new(Placement::Unbound)
        .preempt_timer(Duration::from_millis(1))
        .spawn(move || async move {
            let socket = UdpSocket::bind(addr)?;
            let fd = socket.as_raw_fd();
            let mut receiver = socket.recv_multishot(BATCH as u16, DATAGRAM)?;
            let mut replies = Batch::new(BATCH, DATAGRAM);
            loop {
                receiver.ready().await?;
                let mut count = 0;
                receiver.take(|datagram| {
                    if reflect(&mut replies, count, datagram.payload, datagram.from) {
                        count += 1;
                    }
                    count < BATCH
                });
                send(&mut replies, fd, count);
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        })?;
    handle.join()??;
    Ok(())
}

/// Wait as Unbound does: a level-triggered `epoll_wait`, then `recvmmsg`
/// until a read comes back short.
fn epoll_loop(addr: SocketAddr) -> Result<(), Box<dyn Error>> {
    let socket = StdSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    let fd = socket.as_raw_fd();
    let set = ReadySet::new()?;
    set.add(fd, 0)?;
    let mut received = Batch::new(BATCH, DATAGRAM);
    let mut replies = Batch::new(BATCH, DATAGRAM);
    let mut tokens = [0u64; 1];
    loop {
        if set.wait(&mut tokens, Duration::from_secs(60))? == 0 {
            continue;
        }
        loop {
            let count = received.receive(fd, 0, libc::MSG_DONTWAIT).unwrap_or(0);
            let mut ready = 0;
            for index in 0..count {
                if let Some(query) = received.datagram(index)
                    && reflect(&mut replies, ready, query, received.address(index))
                {
                    ready += 1;
                }
            }
            send(&mut replies, fd, ready);
            if count < BATCH {
                break;
            }
        }
    }
}

/// Send the first `count` replies with one `sendmmsg`.
fn send(replies: &mut Batch, fd: RawFd, count: usize) {
    if count > 0 {
        replies.send(fd, count, 0, |_, _| {});
    }
}
