//! Batched UDP I/O for the load generator and the synthetic upstream:
//! [`RecvBatch`] (`recvmmsg`) and [`SendBatch`] (`sendmmsg`, optionally as
//! UDP GSO trains, with a caller tag per datagram), thin layers over
//! [`heimdall_udp::Batch`], which holds the system calls and their
//! `unsafe`; and the `poll`/`ppoll` waits, re-exported from there.
//!
//! One system call per batch rather than per datagram is what lets a single
//! thread keep up with a forwarder under load (see DESIGN.md, "Measured
//! facts"). The batches own their buffers and address storage, allocated
//! once.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use heimdall_udp::Batch;

pub use heimdall_udp::{wait_any_readable, wait_readable};

/// A batch of receive buffers for `recvmmsg`.
#[derive(Debug)]
pub struct RecvBatch {
    inner: Batch,
    count: usize,
}

impl RecvBatch {
    /// Room for `batch` datagrams of up to `buf_size` bytes each (longer
    /// datagrams are cut by the kernel).
    pub fn new(batch: usize, buf_size: usize) -> Self {
        Self {
            inner: Batch::new(batch, buf_size),
            count: 0,
        }
    }

    /// Receive up to a batch of datagrams with `recvmmsg(fd, .., flags)`.
    /// Pass `libc::MSG_DONTWAIT` to drain without blocking; `WouldBlock` is
    /// returned when nothing is queued.
    pub fn recv(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        self.count = 0;
        let received = self.inner.receive(fd, 0, flags)?;
        self.count = received;
        Ok(received)
    }

    /// The most datagrams one `recv` returns.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// How many datagrams the last `recv` returned.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last `recv` returned nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `index` of the last `recv` and its source address (None
    /// for an address family other than IPv4/IPv6).
    pub fn get(&self, index: usize) -> Option<(&[u8], Option<SocketAddr>)> {
        if index >= self.count {
            return None;
        }
        Some((self.inner.datagram(index)?, self.inner.address(index)))
    }
}

/// A batch of outgoing datagrams for `sendmmsg`, each with a caller tag
/// that `flush` hands back with the outcome.
#[derive(Debug)]
pub struct SendBatch<T> {
    inner: Batch,
    /// Whether each datagram carries its destination (false for a
    /// connected socket, which then skips a route lookup per datagram).
    addressed: bool,
    /// GSO was asked for and the kernel is not asked yet (that needs the
    /// socket, which the first `flush` brings).
    gso_wanted: bool,
    /// One per queued datagram, in slot order.
    tags: Vec<T>,
}

impl<T: Copy> SendBatch<T> {
    /// Room for `batch` datagrams of up to `buf_size` bytes each.
    pub fn new(batch: usize, buf_size: usize) -> Self {
        let inner = Batch::new(batch, buf_size);
        let tags = Vec::with_capacity(inner.capacity());
        Self {
            inner,
            addressed: true,
            gso_wanted: false,
            tags,
        }
    }

    /// Send each run of equal-length datagrams to one destination as one
    /// UDP GSO message, which the kernel splits into the very same
    /// datagrams: on loopback the receiving socket's UDP layer splits it,
    /// and a NIC without UDP segmentation offload gets it split in software
    /// just before transmission. This saves most of the per-datagram cost
    /// of the send path. Datagrams with the same destination and length
    /// keep their order. The first `flush` asks the kernel whether the
    /// socket takes GSO; when it refuses a GSO send, that run is sent again
    /// one datagram at a time, and where that works the batch sends one
    /// message per datagram from then on (see [`heimdall_udp::Batch`]).
    pub fn gso(mut self) -> Self {
        self.gso_wanted = true;
        self
    }

    /// Whether GSO is (still) in use.
    pub fn uses_gso(&self) -> bool {
        self.gso_wanted || self.inner.gso_enabled()
    }

    /// For a connected socket: send without destination addresses, so the
    /// kernel uses the socket's cached route (the `dest` given to
    /// [`SendBatch::commit`] is then ignored).
    pub fn connected(mut self) -> Self {
        self.addressed = false;
        self
    }

    /// Datagrams queued.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Free slots.
    pub fn remaining(&self) -> usize {
        self.inner.capacity() - self.tags.len()
    }

    /// The buffer of the next free slot, to build a datagram in place; it
    /// is queued only by [`SendBatch::commit`]. None when the batch is full.
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        self.inner.buffer_mut(self.tags.len())
    }

    /// The buffer of the slot after the next free one (for a datagram that
    /// must go out just after the one being built). None when there are
    /// fewer than two free slots.
    pub fn slot_pair(&mut self) -> Option<(&mut [u8], &mut [u8])> {
        self.inner.buffer_pair_mut(self.tags.len())
    }

    /// Queue the first `len` bytes of the next free slot for `dest`.
    /// Returns false (and queues nothing) when full or `len` is too long.
    pub fn commit(&mut self, len: usize, dest: SocketAddr, tag: T) -> bool {
        if self.remaining() == 0 || len > self.inner.slot_size() {
            return false;
        }
        let dest = self.addressed.then_some(dest);
        if !self.inner.set(self.tags.len(), len, dest) {
            return false;
        }
        self.tags.push(tag);
        true
    }

    /// Copy `bytes` into the next free slot and queue it for `dest`.
    pub fn push(&mut self, bytes: &[u8], dest: SocketAddr, tag: T) -> bool {
        let Some(slot) = self.slot() else {
            return false;
        };
        let Some(target) = slot.get_mut(..bytes.len()) else {
            return false;
        };
        target.copy_from_slice(bytes);
        self.commit(bytes.len(), dest, tag)
    }

    /// Send everything queued with `sendmmsg`, calling `outcome(tag, sent)`
    /// once per datagram (in order, or grouped by run with GSO), and empty
    /// the batch. A datagram the kernel refuses is skipped (and reported
    /// unsent) so one bad destination cannot wedge the rest.
    pub fn flush(&mut self, fd: RawFd, mut outcome: impl FnMut(T, bool)) {
        if self.gso_wanted {
            self.gso_wanted = false;
            let _supported = self.inner.enable_gso(fd);
        }
        let tags = &self.tags;
        self.inner.send(fd, tags.len(), 0, |slot, sent| {
            if let Some(&tag) = tags.get(slot) {
                outcome(tag, sent);
            }
        });
        self.tags.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    #[test]
    fn batches_round_trip_on_loopback() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let mut send = SendBatch::<u32>::new(4, 64);
        for tag in 0..3u32 {
            assert!(send.push(&[tag as u8; 5], server_addr, tag));
        }
        let mut outcomes = Vec::new();
        send.flush(client.as_raw_fd(), |tag, ok| outcomes.push((tag, ok)));
        assert_eq!(outcomes, [(0, true), (1, true), (2, true)]);
        assert!(send.is_empty());

        let mut recv = RecvBatch::new(8, 64);
        let mut got = Vec::new();
        for _ in 0..50 {
            assert!(wait_readable(server.as_raw_fd(), Duration::from_millis(100)).unwrap());
            recv.recv(server.as_raw_fd(), libc::MSG_DONTWAIT).unwrap();
            for index in 0..recv.len() {
                let (bytes, source) = recv.get(index).unwrap();
                assert_eq!(source, Some(client.local_addr().unwrap()));
                got.push(bytes.to_vec());
            }
            if got.len() == 3 {
                break;
            }
        }
        assert_eq!(got, [vec![0u8; 5], vec![1u8; 5], vec![2u8; 5]]);
        let err = recv
            .recv(server.as_raw_fd(), libc::MSG_DONTWAIT)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(recv.get(0).is_none());
    }

    fn drain(socket: &UdpSocket, want: usize) -> Vec<Vec<u8>> {
        let mut recv = RecvBatch::new(16, 64);
        let mut got = Vec::new();
        for _ in 0..50 {
            if got.len() >= want {
                break;
            }
            if !wait_readable(socket.as_raw_fd(), Duration::from_millis(100)).unwrap() {
                continue;
            }
            recv.recv(socket.as_raw_fd(), libc::MSG_DONTWAIT).unwrap();
            for index in 0..recv.len() {
                got.push(recv.get(index).unwrap().0.to_vec());
            }
        }
        got.sort();
        got
    }

    #[test]
    fn gso_trains_arrive_as_separate_datagrams() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(server.local_addr().unwrap()).unwrap();
        let dest = server.local_addr().unwrap();
        let mut send = SendBatch::<u8>::new(8, 64).connected().gso();
        let lens = [5usize, 5, 7, 5, 7, 9];
        let mut expected = Vec::new();
        for (tag, &len) in (0u8..).zip(lens.iter()) {
            let datagram = vec![tag; len];
            assert!(send.push(&datagram, dest, tag));
            expected.push(datagram);
        }
        let mut outcomes = Vec::new();
        send.flush(client.as_raw_fd(), |tag, ok| outcomes.push((tag, ok)));
        assert!(send.uses_gso(), "this kernel takes UDP GSO");
        outcomes.sort();
        assert_eq!(outcomes, (0..6).map(|tag| (tag, true)).collect::<Vec<_>>());
        expected.sort();
        assert_eq!(drain(&server, 6), expected);

        // Addressed: runs are split by destination too.
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut send = SendBatch::<u8>::new(8, 64).gso();
        for tag in 0..6u8 {
            let to = if tag % 2 == 0 {
                dest
            } else {
                other.local_addr().unwrap()
            };
            assert!(send.push(&[tag; 4], to, tag));
        }
        let mut sent = 0;
        send.flush(sender.as_raw_fd(), |_, ok| sent += usize::from(ok));
        assert_eq!(sent, 6);
        assert_eq!(drain(&server, 3), [vec![0u8; 4], vec![2; 4], vec![4; 4]]);
        assert_eq!(drain(&other, 3), [vec![1u8; 4], vec![3; 4], vec![5; 4]]);
    }

    #[test]
    fn full_batches_refuse_more() {
        let dest: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mut send = SendBatch::<()>::new(1, 8);
        assert!(!send.push(&[0; 9], dest, ()), "too long for a slot");
        assert!(send.push(&[0; 8], dest, ()));
        assert!(send.slot().is_none());
        assert!(!send.push(&[0; 1], dest, ()));
        assert!(send.slot_pair().is_none());
    }
}
