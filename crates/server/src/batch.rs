//! The server's side of batched datagram I/O: [`DatagramBatch`], slots of
//! [`DATAGRAM_BUF`] bytes over [`heimdall_udp::Batch`] (`recvmmsg` to
//! drain what is queued, `sendmmsg` to answer a whole batch, with the
//! replies that go to one peer with one length grouped into UDP GSO sends
//! where the kernel supports it), a single non-blocking `send_to`, and the
//! glommio glue for handing sockets over.
//!
//! glommio is used only to wait until a socket is readable (its `recv_from`
//! takes the first datagram); the rest of the batch is drained here. On this
//! machine that reaches the speed of a C `recvmmsg` reflector, where
//! glommio's per-datagram calls reach about 0.73 of it (DESIGN.md).
//!
//! The system calls and their `unsafe` live in heimdall-udp; all buffers
//! are allocated once per socket and reused, so the query path does not
//! allocate.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use heimdall_udp::Batch;

pub use heimdall_udp::UdpStats;
pub(crate) use heimdall_udp::{recv_from, send_to, set_no_fragmentation};

/// Size of every datagram buffer: the largest UDP message heimdall accepts
/// or sends. Queries larger than this are truncated by the kernel and then
/// fail to parse (they get FORMERR).
pub(crate) const DATAGRAM_BUF: usize = 4096;

/// A fixed set of datagram buffers with the C structures `recvmmsg` and
/// `sendmmsg` need, reused for every batch.
pub(crate) struct DatagramBatch {
    inner: Batch,
}

impl DatagramBatch {
    /// Room for `capacity` datagrams of [`DATAGRAM_BUF`] bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Batch::new(capacity, DATAGRAM_BUF),
        }
    }

    /// How many datagrams the batch holds.
    pub(crate) fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Let `send` coalesce the datagrams of a batch that go to one peer
    /// with one length into a single UDP GSO send (`UDP_SEGMENT`), when the
    /// kernel supports it on `fd`. Returns whether it does.
    pub(crate) fn enable_gso(&mut self, fd: RawFd) -> bool {
        self.inner.enable_gso(fd)
    }

    /// What `send` has done since the last call, resetting the counters.
    pub(crate) fn take_stats(&mut self) -> UdpStats {
        self.inner.take_stats()
    }

    /// The whole buffer of slot `index`, for writing a datagram into. Past
    /// the last slot it is empty: no reply fits, and `set` and `send`
    /// ignore that index, so nothing is ever sent from it.
    pub(crate) fn buffer_mut(&mut self, index: usize) -> &mut [u8] {
        match self.inner.buffer_mut(index) {
            Some(buffer) => buffer,
            None => &mut [],
        }
    }

    /// The datagram in slot `index` (its recorded length). Empty past the
    /// last slot or when the recorded length does not fit the slot, which a
    /// received datagram never has: the kernel cuts it to the slot.
    pub(crate) fn datagram(&self, index: usize) -> &[u8] {
        self.inner.datagram(index).unwrap_or(&[])
    }

    /// The peer address of slot `index`.
    pub(crate) fn address(&self, index: usize) -> Option<SocketAddr> {
        self.inner.address(index)
    }

    /// Record that slot `index` holds `len` bytes for (or from) `addr`. A
    /// length over [`DATAGRAM_BUF`] makes `send` drop the slot (and not
    /// count it sent) rather than send it cut or empty.
    pub(crate) fn set(&mut self, index: usize, len: usize, addr: SocketAddr) {
        let _fits = self.inner.set(index, len, Some(addr));
    }

    /// Receive queued datagrams into slots `from..capacity` without
    /// blocking; returns how many arrived (0 when none were queued).
    pub(crate) fn receive(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        match self.inner.receive(fd, from, libc::MSG_DONTWAIT) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(0),
            result => result,
        }
    }

    /// Send slots `0..count` (each to its recorded address) with as few
    /// `sendmmsg` calls as the kernel allows, as GSO sends where enabled
    /// and more than one datagram goes to a peer. Returns how many were
    /// sent; the rest were dropped (full socket buffer, unreachable peer,
    /// a length over [`DATAGRAM_BUF`]).
    pub(crate) fn send(&mut self, fd: RawFd, count: usize) -> usize {
        self.inner.send(fd, count, libc::MSG_DONTWAIT, |_, _| {})
    }
}

/// Hand a bound, listening, non-blocking TCP socket to glommio.
#[allow(unsafe_code)]
pub(crate) fn tcp_listener(socket: socket2::Socket) -> glommio::net::TcpListener {
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` was just released by an owning `Socket` (so it is open,
    // a TCP listener, and owned by nobody else); the listener takes it.
    // glommio 0.9 has no safe conversion for listeners (it has one only
    // for streams and UDP sockets).
    unsafe { glommio::net::TcpListener::from_raw_fd(fd) }
}

/// Shut a connected socket down both ways, which wakes any pending read
/// on it (with end of stream) so its task ends and closes it. A stale
/// descriptor only yields EBADF or ENOTSOCK, which is ignored.
pub(crate) fn shutdown_socket(fd: RawFd) {
    // `SockRef` asserts a non-negative descriptor.
    if fd >= 0 {
        let _ignored = socket2::SockRef::from(&fd).shutdown(std::net::Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn batch_receive_and_send_over_loopback() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let mut batch = DatagramBatch::new(8);
        assert_eq!(
            batch.receive(server.as_raw_fd(), 0).unwrap(),
            0,
            "nothing queued"
        );
        for index in 0..5u8 {
            client
                .send_to(&[index; 3], server.local_addr().unwrap())
                .unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let received = batch.receive(server.as_raw_fd(), 0).unwrap();
        assert_eq!(received, 5);
        for index in 0..5 {
            assert_eq!(batch.datagram(index), &[index as u8; 3]);
            assert_eq!(batch.address(index), Some(client.local_addr().unwrap()));
        }
        // Echo them back with one sendmmsg.
        for index in 0..5 {
            let addr = batch.address(index).unwrap();
            batch.buffer_mut(index)[..2].copy_from_slice(&[0xee, index as u8]);
            batch.set(index, 2, addr);
        }
        assert_eq!(batch.send(server.as_raw_fd(), 5), 5);
        let mut buf = [0u8; 16];
        for index in 0..5u8 {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[0xee, index]);
        }
        send_to(server.as_raw_fd(), b"one", client.local_addr().unwrap()).unwrap();
        let (len, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"one");
    }

    #[test]
    fn a_wrong_length_or_index_is_dropped_and_counted_never_sent_empty() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_nonblocking(true).unwrap();
        let to = client.local_addr().unwrap();
        let mut batch = DatagramBatch::new(4);
        assert!(batch.buffer_mut(4).is_empty(), "no slot 4");
        assert!(batch.datagram(4).is_empty());
        batch.buffer_mut(0)[..3].copy_from_slice(b"abc");
        batch.set(0, 3, to);
        batch.set(1, DATAGRAM_BUF + 1, to);
        batch.buffer_mut(2)[..3].copy_from_slice(b"xyz");
        batch.set(2, 3, to);
        batch.set(4, 3, to);
        assert!(batch.datagram(1).is_empty());
        assert_eq!(batch.send(server.as_raw_fd(), 3), 2, "slot 1 dropped");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        while let Ok((len, _)) = client.recv_from(&mut buf) {
            got.push(buf[..len].to_vec());
        }
        assert_eq!(got, [b"abc".to_vec(), b"xyz".to_vec()]);
    }

    #[global_allocator]
    static ALLOCATOR: heimdall_testkit::CountingAllocator = heimdall_testkit::CountingAllocator;

    fn receiver() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        socket
    }

    fn expect(from: &UdpSocket, slots: impl IntoIterator<Item = (usize, usize)>) {
        let mut buf = vec![0u8; DATAGRAM_BUF];
        for (index, len) in slots {
            let (got, _) = from.recv_from(&mut buf).unwrap();
            let mut want = vec![index as u8; len];
            want[0] = (index >> 8) as u8;
            assert_eq!(&buf[..got], &want[..], "datagram of slot {index}");
        }
        from.set_nonblocking(true).unwrap();
        assert!(from.recv_from(&mut buf).is_err(), "nothing more arrived");
    }

    #[test]
    fn receiving_and_sending_a_batch_with_gso_allocates_nothing() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let (a, b) = (receiver(), receiver());
        let mut received = DatagramBatch::new(32);
        let mut replies = DatagramBatch::new(32);
        assert!(replies.enable_gso(server.as_raw_fd()));
        let ((), control) =
            heimdall_testkit::allocations_during(|| drop(std::hint::black_box(vec![0u8; 8])));
        assert_eq!(control, 1, "the counting allocator is installed");
        for round in 0..2 {
            for index in 0..24u8 {
                let from = if index % 3 == 0 { &b } else { &a };
                from.send_to(&[index; 40], server.local_addr().unwrap())
                    .unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            let (sent, allocations) = heimdall_testkit::allocations_during(|| {
                let count = received.receive(server.as_raw_fd(), 0).unwrap();
                for index in 0..count {
                    let addr = received.address(index).unwrap();
                    let len = received.datagram(index).len();
                    let reply = replies.buffer_mut(index);
                    reply[..len].fill(index as u8);
                    reply[0] = 0;
                    replies.set(index, len, addr);
                }
                replies.send(server.as_raw_fd(), count)
            });
            assert_eq!(sent, 24);
            assert_eq!(allocations, 0, "round {round}");
            assert_eq!(replies.take_stats().gso_sends, 2, "one per peer");
            expect(&a, (0..24).filter(|i| i % 3 != 0).map(|i| (i, 40)));
            expect(&b, (0..24).filter(|i| i % 3 == 0).map(|i| (i, 40)));
            a.set_nonblocking(false).unwrap();
            b.set_nonblocking(false).unwrap();
        }
    }
}
