//! [`ReadySet`]: many sockets watched through one descriptor (an epoll
//! set), so that one wait covers them all and one call lists those that
//! have something to read.
//!
//! The server's upstream sockets are watched this way: a socket per
//! attempt would otherwise need a receive task, a wake-up channel and a
//! poll of its own, allocated when it opens and freed when it closes,
//! which a flood of misses left behind as holes in the allocator's arenas;
//! and a burst of replies would wake a task each. The set is
//! level-triggered: a socket stays listed until it is read dry, so a
//! caller that reads one datagram per listing misses nothing.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Sockets listed by one [`ReadySet::ready`] call at most.
pub const READY_MAX: usize = 64;

/// An epoll set of sockets, each with a caller-chosen token.
#[derive(Debug)]
pub struct ReadySet {
    epoll: OwnedFd,
}

impl ReadySet {
    /// An empty set (close-on-exec).
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointers; the result is checked before it is used.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by the kernel and is owned by
        // nothing else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { epoll })
    }

    /// Watch `fd` for datagrams to read, listed with `token`. Closing the
    /// socket takes it out of the set (heimdall never duplicates one).
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: a valid epoll_event, read by the kernel during the call.
        let done =
            unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if done < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The tokens of sockets that have something to read (or an error to
    /// report), without waiting: up to `tokens.len()` (at most
    /// [`READY_MAX`]) written to the front of `tokens`, their count
    /// returned. Fewer than asked for means no other socket was ready.
    pub fn ready(&self, tokens: &mut [u64]) -> io::Result<usize> {
        self.list(tokens, 0)
    }

    /// [`ReadySet::ready`], sleeping until a socket is ready or `timeout`
    /// has passed (0 when it did, or a signal came): the wait of a thread
    /// with nothing else to do (the wake-up benchmark's epoll loop). The
    /// timeout is rounded up to whole milliseconds, so a short one still
    /// sleeps rather than spinning.
    pub fn wait(&self, tokens: &mut [u64], timeout: Duration) -> io::Result<usize> {
        let millis = timeout.as_micros().div_ceil(1000);
        self.list(tokens, i32::try_from(millis).unwrap_or(i32::MAX))
    }

    fn list(&self, tokens: &mut [u64], timeout_ms: libc::c_int) -> io::Result<usize> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; READY_MAX];
        let max = tokens.len().min(READY_MAX);
        // SAFETY: `events` is valid for writes of `max` entries (at most
        // its length) for the duration of the call.
        let listed = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                max as libc::c_int,
                timeout_ms,
            )
        };
        if listed < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        let listed = (listed as usize).min(max);
        for (token, event) in tokens.iter_mut().zip(events.iter().take(listed)) {
            // A copy: the struct is packed on x86-64.
            let value = event.u64;
            *token = value;
        }
        Ok(listed)
    }
}

impl AsFd for ReadySet {
    /// The set's own descriptor: readable while any socket in it is, so a
    /// runtime can wait on it like on a socket.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn lists_the_sockets_with_datagrams_until_they_are_read() {
        let set = ReadySet::new().unwrap();
        let quiet = UdpSocket::bind("127.0.0.1:0").unwrap();
        let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
        set.add(quiet.as_raw_fd(), 1).unwrap();
        set.add(busy.as_raw_fd(), 2).unwrap();
        let mut tokens = [0u64; 8];
        assert_eq!(set.ready(&mut tokens).unwrap(), 0);

        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"a", busy.local_addr().unwrap()).unwrap();
        sender.send_to(b"b", busy.local_addr().unwrap()).unwrap();
        crate::wait_readable(set.as_fd().as_raw_fd(), std::time::Duration::from_secs(2)).unwrap();
        assert_eq!(set.ready(&mut tokens).unwrap(), 1);
        assert_eq!(tokens[0], 2);
        // Level-triggered: listed again while a datagram is left.
        let mut buf = [0u8; 16];
        busy.recv_from(&mut buf).unwrap();
        assert_eq!(set.ready(&mut tokens).unwrap(), 1);
        busy.recv_from(&mut buf).unwrap();
        assert_eq!(set.ready(&mut tokens).unwrap(), 0);

        // A wait returns at once with a socket ready, after the timeout
        // without one.
        assert_eq!(set.wait(&mut tokens, Duration::from_millis(20)).unwrap(), 0);
        // Under a millisecond still sleeps (not a poll that returns at once).
        let started = std::time::Instant::now();
        assert_eq!(
            set.wait(&mut tokens, Duration::from_micros(300)).unwrap(),
            0
        );
        assert!(started.elapsed() >= Duration::from_micros(300));
        sender.send_to(b"c", busy.local_addr().unwrap()).unwrap();
        assert_eq!(set.wait(&mut tokens, Duration::from_secs(2)).unwrap(), 1);
        assert_eq!(tokens[0], 2);
        busy.recv_from(&mut buf).unwrap();

        // A closed socket leaves the set.
        sender.send_to(b"d", busy.local_addr().unwrap()).unwrap();
        assert_eq!(set.ready(&mut tokens).unwrap(), 1);
        drop(busy);
        assert_eq!(set.ready(&mut tokens).unwrap(), 0);
    }
}
