// heimdall patch: a multishot receive on a UDP socket (see
// `sys::multishot`): one request armed across datagrams, which the kernel
// receives into a ring of buffers it was given.
use std::{
    future::poll_fn,
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    os::unix::io::{AsRawFd, RawFd},
    rc::Rc,
    task::Poll,
};

use crate::{
    net::UdpSocket,
    sys::{
        multishot::{MultishotState, NAME_ROOM, RECVMSG_OUT_LEN},
        Source,
    },
};

/// One datagram a [`MultishotReceiver`] took.
#[derive(Debug)]
pub struct Datagram<'a> {
    /// The datagram's bytes (only the first part if `truncated`).
    pub payload: &'a [u8],
    /// The sender, if the kernel gave an IPv4 or IPv6 address.
    pub from: Option<SocketAddr>,
    /// The datagram was longer than the buffer.
    pub truncated: bool,
}

/// A multishot `recvmsg` on the latency ring: armed once, it receives every
/// datagram into a buffer of its own ring and queues a completion, so a
/// core that waits for datagrams submits nothing and arms no poll per
/// datagram. Re-armed when the kernel ends it (its buffers ran out, or an
/// error). The socket must stay open while the receiver lives; dropping the
/// receiver cancels the request.
#[derive(Debug)]
pub struct MultishotReceiver {
    fd: RawFd,
    state: Rc<MultishotState>,
    /// The armed request; `None` after [`MultishotReceiver::disarm`].
    source: Option<Source>,
    rearmed: u64,
    ended_by_kernel: u64,
}

impl UdpSocket {
    /// heimdall patch: a multishot receive on this socket into `buffers`
    /// buffers (a power of two), each with room for a datagram of
    /// `max_datagram` bytes (longer ones arrive truncated) after the
    /// kernel's 16-byte header and the sender's address.
    /// Fails where the kernel has no ring-provided buffers (before 5.19)
    /// or no multishot receive (before 6.0: the first wait then ends with
    /// an error).
    pub fn recv_multishot(&self, buffers: u16, max_datagram: usize) -> io::Result<MultishotReceiver> {
        let reactor = crate::executor().reactor();
        let state = Rc::new(MultishotState::new(
            reactor.latency_ring_fd(),
            buffers,
            RECVMSG_OUT_LEN + NAME_ROOM + max_datagram,
        )?);
        let fd = self.as_raw_fd();
        let source = reactor.recv_multishot(fd, state.clone());
        Ok(MultishotReceiver {
            fd,
            state,
            source: Some(source),
            rearmed: 0,
            ended_by_kernel: 0,
        })
    }
}

impl MultishotReceiver {
    /// Hand each queued datagram to `each`, oldest first, for as long as
    /// it returns `true`; returns how many it was given. Each buffer goes
    /// back to the kernel after `each` returns. Completions that carry no
    /// datagram (an error, the end of the request) are skipped; an ended
    /// request is re-armed at the next [`MultishotReceiver::ready`].
    pub fn take(&mut self, mut each: impl FnMut(Datagram<'_>) -> bool) -> usize {
        let mut given = 0;
        loop {
            let Some((res, flags)) = self.state.completions.borrow_mut().pop_front() else {
                break;
            };
            let Some((bid, bytes)) = self.state.buffer(res, flags) else {
                continue;
            };
            let go_on = match parse(bytes) {
                Some(datagram) => {
                    given += 1;
                    each(datagram)
                }
                None => true,
            };
            self.state.give_back(bid);
            if !go_on {
                break;
            }
        }
        given
    }

    /// Whether a datagram (or the end of the request) is queued.
    pub fn has_queued(&self) -> bool {
        !self.state.completions.borrow().is_empty()
    }

    /// Wait until something is queued for [`MultishotReceiver::take`].
    /// Re-arms the request first if the kernel ended it; an error that
    /// ended it right after being armed (the kernel has no multishot
    /// receive) is returned.
    pub async fn ready(&mut self) -> io::Result<()> {
        poll_fn(|cx| {
            if self.has_queued() {
                return Poll::Ready(Ok(()));
            }
            let ended = match &self.source {
                None => true,
                Some(source) if source.completed() => {
                    if self.rearmed == 0 {
                        if let Some(Err(err)) = source.result() {
                            if err.raw_os_error() == Some(libc::EINVAL) {
                                return Poll::Ready(Err(err));
                            }
                        }
                    }
                    self.ended_by_kernel += 1;
                    true
                }
                Some(_) => false,
            };
            if ended {
                self.rearmed += 1;
                self.source = Some(
                    crate::executor()
                        .reactor()
                        .recv_multishot(self.fd, self.state.clone()),
                );
            }
            if let Some(source) = &self.source {
                source.add_waiter_single(cx.waker());
            }
            Poll::Pending
        })
        .await
    }

    /// Cancel the armed request until the next [`MultishotReceiver::ready`]:
    /// while it is armed, every datagram that arrives completes it, which
    /// wakes a sleeping core. A caller that sleeps on purpose to let
    /// datagrams gather (and reads them itself afterwards) disarms it
    /// first. What it received before the cancellation is still queued.
    pub fn disarm(&mut self) {
        self.source = None;
    }

    /// How many times the request was armed again (the kernel ended it,
    /// or it was disarmed).
    pub fn rearmed(&self) -> u64 {
        self.rearmed
    }

    /// How many of those re-arms followed the kernel ending the request
    /// (its buffers ran out under a burst, or an error), rather than
    /// [`MultishotReceiver::disarm`].
    pub fn ended_by_kernel(&self) -> u64 {
        self.ended_by_kernel
    }
}

/// The datagram in a buffer the kernel filled: `struct io_uring_recvmsg_out`
/// (name, control and payload lengths, flags), the name in its room, then
/// the payload.
fn parse(bytes: &[u8]) -> Option<Datagram<'_>> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let namelen = word(0)? as usize;
    let controllen = word(4)? as usize;
    let payloadlen = word(8)? as usize;
    let flags = word(12)? as i32;
    let payload_start = RECVMSG_OUT_LEN + NAME_ROOM + controllen;
    let available = bytes.len().checked_sub(payload_start)?;
    let payload = bytes.get(payload_start..payload_start + payloadlen.min(available))?;
    let name = bytes.get(RECVMSG_OUT_LEN..RECVMSG_OUT_LEN + namelen.min(NAME_ROOM))?;
    Some(Datagram {
        payload,
        from: address(name),
        truncated: flags & libc::MSG_TRUNC != 0 || payloadlen > available,
    })
}

fn address(name: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(name.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(name.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = name.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_be_bytes(name.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = name.get(8..24)?.try_into().ok()?;
            let scope = u32::from_ne_bytes(name.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flowinfo,
                scope,
            )))
        }
        _ => None,
    }
}
