//! How a core is woken, and only when there is something to do: an idle
//! core makes no wake-ups of its own.
//!
//! - [`Doorbell`]: the starting thread's way to wake a core (stop, reload).
//!   Each core has a connected pair of loopback UDP sockets; the handle
//!   keeps one end and sends a byte, the core waits on the other with an
//!   ordinary glommio receive and then reads the flags. A flag alone would
//!   have to be polled: the 10 ms tick that did so woke every core 100
//!   times a second with nothing to do. glommio's cross-executor channels
//!   cannot be rung from a thread outside an executor, and its Unix
//!   datagram type cannot be made from a descriptor, hence UDP. The core's
//!   end is `connect()`ed to the handle's, so the kernel drops datagrams
//!   from any other sender; a stray one would only make the core look at
//!   its flags.
//! - [`DeadlineAlarm`]: the timer loop sleeps until the resolver's next
//!   deadline, or without end when nothing is in flight, and is woken
//!   early only when a new deadline comes before the one it sleeps for
//!   (rare: attempts get later deadlines than those already waiting).

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::task::{Poll, Waker};

use heimdall_cache::Timestamp;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The handle's end of one core's doorbell.
pub(crate) struct Doorbell {
    socket: Socket,
}

impl Doorbell {
    /// A doorbell and the core's end of it (to wrap in a glommio socket on
    /// the core).
    pub(crate) fn pair() -> io::Result<(Self, Socket)> {
        let loopback = SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let bound = || -> io::Result<Socket> {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            socket.set_nonblocking(true)?;
            socket.bind(&loopback)?;
            Ok(socket)
        };
        let (handle, core) = (bound()?, bound()?);
        handle.connect(&core.local_addr()?)?;
        core.connect(&handle.local_addr()?)?;
        Ok((Self { socket: handle }, core))
    }

    /// Wake the core. A full socket buffer means rings are already
    /// waiting, which is as good.
    pub(crate) fn ring(&self) {
        let _ = self.socket.send(&[1]);
    }
}

/// Wait for rings on the core's end of a doorbell and call `on_ring`
/// after each burst, until it returns `false` or the socket fails.
pub(crate) async fn answer_rings(socket: Socket, mut on_ring: impl FnMut() -> bool) {
    let socket = glommio::net::UdpSocket::from(socket);
    let mut buf = [0u8; 16];
    loop {
        if let Err(err) = socket.recv(&mut buf).await {
            log::warn!("doorbell: {err}; stop and reload now wait for other traffic");
            return;
        }
        if !on_ring() {
            return;
        }
    }
}

/// A wake-up for one task on the same core: [`Signal::raise`] wakes the
/// task waiting in [`Signal::wait`] (once, however often it is raised
/// before the task runs), and the wait consumes it. The timer loop's
/// alarm and the flush of waiting UDP replies both use it.
#[derive(Default)]
pub(crate) struct Signal {
    raised: Cell<bool>,
    waiter: Cell<Option<Waker>>,
}

impl Signal {
    /// Wake the waiting task, if it is not already woken.
    pub(crate) fn raise(&self) {
        if !self.raised.replace(true)
            && let Some(waiter) = self.waiter.take()
        {
            waiter.wake();
        }
    }

    /// Wait until the signal is raised, and lower it.
    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.raised.replace(false) {
                Poll::Ready(())
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await;
    }

    #[cfg(test)]
    fn is_raised(&self) -> bool {
        self.raised.get()
    }
}

/// When the timer loop wakes: see the module documentation.
#[derive(Default)]
pub(crate) struct DeadlineAlarm {
    /// The deadline the timer loop sleeps until; `None` while it waits
    /// for any deadline at all.
    armed: Cell<Option<Timestamp>>,
    /// Raised when a deadline comes before `armed`.
    ring: Signal,
}

impl DeadlineAlarm {
    /// The timer loop is about to sleep until `deadline` (or for ever).
    pub(crate) fn arm(&self, deadline: Option<Timestamp>) {
        self.armed.set(deadline);
    }

    /// The resolver's earliest deadline is now `next`: wake the timer loop
    /// if that is before the time it sleeps until.
    pub(crate) fn note(&self, next: Option<Timestamp>) {
        if let Some(next) = next
            && self.armed.get().is_none_or(|armed| next < armed)
        {
            self.ring.raise();
        }
    }

    /// Wait until [`DeadlineAlarm::note`] rings.
    pub(crate) async fn rung(&self) {
        self.ring.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_reaches_the_core_end_and_nothing_else_does() {
        let (doorbell, core) = Doorbell::pair().unwrap();
        doorbell.ring();
        let mut buf = [std::mem::MaybeUninit::new(0u8); 4];
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(core.recv(&mut buf).unwrap(), 1);
        // Another local sender is dropped by the connected core end.
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let core_addr = core.local_addr().unwrap().as_socket().unwrap();
        stranger.send_to(&[9], core_addr).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(core.recv(&mut buf).is_err(), "a stranger's datagram got in");
    }

    #[test]
    fn the_alarm_rings_only_for_an_earlier_deadline() {
        let alarm = DeadlineAlarm::default();
        alarm.arm(Some(Timestamp::from_millis(100)));
        alarm.note(Some(Timestamp::from_millis(150)));
        assert!(!alarm.ring.is_raised(), "a later deadline needs no wake-up");
        alarm.note(None);
        assert!(!alarm.ring.is_raised());
        alarm.note(Some(Timestamp::from_millis(50)));
        assert!(alarm.ring.is_raised());
        alarm.ring.raised.set(false);
        alarm.arm(None);
        alarm.note(Some(Timestamp::from_millis(500)));
        assert!(
            alarm.ring.is_raised(),
            "any deadline wakes a loop that waits for one"
        );
    }
}
