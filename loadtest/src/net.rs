//! Batched UDP I/O on a raw socket: `recvmmsg`, `sendmmsg` (optionally as
//! UDP GSO trains), `poll` and `ppoll`.
//!
//! One system call per batch rather than per datagram is what lets a single
//! thread keep up with a forwarder under load (see DESIGN.md, "Measured
//! facts"). The batches own their buffers and address storage, allocated
//! once; the `mmsghdr`/`iovec` tables are rebuilt from them before every
//! call, so a batch can be moved freely between calls.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use socket2::SockAddr;

/// Size of `sockaddr_storage`, as the kernel wants it.
const STORAGE_LEN: libc::socklen_t = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;

fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is a plain C struct of integers and byte
    // arrays, for which all-zero bytes are a valid value.
    unsafe { mem::zeroed() }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct of integers and raw pointers; all
    // zeros (null pointers, zero lengths) is a valid value, and some libcs
    // have private padding fields that rule out a struct literal.
    unsafe { mem::zeroed() }
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

/// A batch of receive buffers for `recvmmsg`.
pub struct RecvBatch {
    slab: Vec<u8>,
    buf_size: usize,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    count: usize,
}

impl RecvBatch {
    /// Room for `batch` datagrams of up to `buf_size` bytes each (longer
    /// datagrams are cut by the kernel).
    pub fn new(batch: usize, buf_size: usize) -> Self {
        let batch = batch.max(1);
        let buf_size = buf_size.max(1);
        Self {
            slab: vec![0; batch * buf_size],
            buf_size,
            lens: vec![0; batch],
            addrs: vec![zeroed_storage(); batch],
            addr_lens: vec![0; batch],
            iovs: vec![empty_iovec(); batch],
            msgs: vec![zeroed_mmsghdr(); batch],
            count: 0,
        }
    }

    /// Receive up to a batch of datagrams with `recvmmsg(fd, .., flags)`.
    /// Pass `libc::MSG_DONTWAIT` to drain without blocking; `WouldBlock` is
    /// returned when nothing is queued.
    pub fn recv(&mut self, fd: RawFd, flags: libc::c_int) -> io::Result<usize> {
        self.count = 0;
        let batch = self.msgs.len();
        for (((chunk, iov), msg), addr) in self
            .slab
            .chunks_exact_mut(self.buf_size)
            .zip(self.iovs.iter_mut())
            .zip(self.msgs.iter_mut())
            .zip(self.addrs.iter_mut())
        {
            *iov = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: chunk.len(),
            };
            *msg = zeroed_mmsghdr();
            msg.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            msg.msg_hdr.msg_namelen = STORAGE_LEN;
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs` has `batch` entries, each pointing at one iovec of
        // `iovs` (which points into `slab`, `buf_size` bytes) and at one
        // `sockaddr_storage` of `addrs` with its true size; all of them live
        // in `self`, are not moved during the call, and the kernel writes
        // only within those bounds. A null timeout is allowed.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                batch as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = usize::try_from(received).unwrap_or(0).min(batch);
        for ((len, addr_len), msg) in self
            .lens
            .iter_mut()
            .zip(self.addr_lens.iter_mut())
            .zip(self.msgs.iter())
            .take(received)
        {
            *len = (msg.msg_len as usize).min(self.buf_size);
            *addr_len = msg.msg_hdr.msg_namelen;
        }
        self.count = received;
        Ok(received)
    }

    /// The most datagrams one `recv` returns.
    pub fn capacity(&self) -> usize {
        self.msgs.len()
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
        let len = *self.lens.get(index)?;
        let start = index * self.buf_size;
        let bytes = self.slab.get(start..start + len)?;
        let storage = *self.addrs.get(index)?;
        let addr_len = (*self.addr_lens.get(index)?).min(STORAGE_LEN);
        // SAFETY: the kernel filled `storage` with a socket address of
        // `addr_len` bytes (capped at the storage size), which is what
        // `SockAddr::new` requires.
        let source = unsafe { SockAddr::new(storage, addr_len) }.as_socket();
        Some((bytes, source))
    }
}

/// A batch of outgoing datagrams for `sendmmsg`, each with a caller tag
/// that `flush` hands back with the outcome.
pub struct SendBatch<T> {
    /// Whether each datagram carries its destination (false for a
    /// connected socket, which then skips a route lookup per datagram).
    addressed: bool,
    slab: Vec<u8>,
    buf_size: usize,
    lens: Vec<usize>,
    dests: Vec<SockAddr>,
    tags: Vec<T>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// Whether equal-length datagrams to one destination go out as one
    /// UDP GSO message (see [`SendBatch::gso`]).
    gso: bool,
    /// GSO scratch space: datagram indexes in send order, each datagram's
    /// sort key (destination, length), the runs (start in `order`, count,
    /// segment length), and one control buffer per run.
    order: Vec<usize>,
    keys: Vec<(Option<SocketAddr>, usize)>,
    runs: Vec<(usize, usize, usize)>,
    controls: Vec<[u64; 4]>,
}

/// `UDP_SEGMENT` (linux/udp.h): the cmsg that makes one send a train of
/// equal-size datagrams (UDP GSO, Linux 4.18).
const UDP_SEGMENT: libc::c_int = 103;
/// Most datagrams in one GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on
/// older kernels, 128 on newer ones).
const MAX_GSO_SEGMENTS: usize = 64;
/// Most payload bytes in one GSO send (an IP packet's limit, with room).
const MAX_GSO_BYTES: usize = 60_000;

impl<T: Copy> SendBatch<T> {
    /// Room for `batch` datagrams of up to `buf_size` bytes each.
    pub fn new(batch: usize, buf_size: usize) -> Self {
        let batch = batch.max(1);
        let buf_size = buf_size.max(1);
        Self {
            addressed: true,
            slab: vec![0; batch * buf_size],
            buf_size,
            lens: Vec::with_capacity(batch),
            dests: Vec::with_capacity(batch),
            tags: Vec::with_capacity(batch),
            iovs: vec![empty_iovec(); batch],
            msgs: vec![zeroed_mmsghdr(); batch],
            gso: false,
            order: Vec::with_capacity(batch),
            keys: Vec::with_capacity(batch),
            runs: Vec::with_capacity(batch),
            controls: vec![[0u64; 4]; batch],
        }
    }

    /// Send each run of equal-length datagrams to one destination as one
    /// UDP GSO message, which the kernel splits into the very same
    /// datagrams: on loopback the receiving socket's UDP layer splits it,
    /// and a NIC without UDP segmentation offload gets it split in software
    /// just before transmission. This saves most of the per-datagram cost
    /// of the send path. The datagrams of a batch are sorted by destination
    /// and length first (stably: datagrams with the same destination and
    /// length keep their order). When the kernel refuses GSO, that batch's
    /// runs are reported unsent and the batch sends one message per
    /// datagram from then on.
    pub fn gso(mut self) -> Self {
        self.gso = true;
        self
    }

    /// Whether GSO is (still) in use.
    pub fn uses_gso(&self) -> bool {
        self.gso
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
        self.lens.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Free slots.
    pub fn remaining(&self) -> usize {
        self.msgs.len() - self.lens.len()
    }

    /// The buffer of the next free slot, to build a datagram in place; it
    /// is queued only by [`SendBatch::commit`]. None when the batch is full.
    pub fn slot(&mut self) -> Option<&mut [u8]> {
        let start = self.lens.len() * self.buf_size;
        self.slab.get_mut(start..start + self.buf_size)
    }

    /// The buffer of the slot after the next free one (for a datagram that
    /// must go out just after the one being built). None when there are
    /// fewer than two free slots.
    pub fn slot_pair(&mut self) -> Option<(&mut [u8], &mut [u8])> {
        let start = self.lens.len() * self.buf_size;
        let both = self.slab.get_mut(start..start + 2 * self.buf_size)?;
        Some(both.split_at_mut(self.buf_size))
    }

    /// Queue the first `len` bytes of the next free slot for `dest`.
    /// Returns false (and queues nothing) when full or `len` is too long.
    pub fn commit(&mut self, len: usize, dest: SocketAddr, tag: T) -> bool {
        if self.remaining() == 0 || len > self.buf_size {
            return false;
        }
        self.lens.push(len);
        self.dests.push(SockAddr::from(dest));
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
    /// once per datagram in order, and empty the batch. A datagram the
    /// kernel refuses is skipped (and reported unsent) so one bad
    /// destination cannot wedge the rest.
    pub fn flush(&mut self, fd: RawFd, mut outcome: impl FnMut(T, bool)) {
        if self.gso && self.lens.len() > 1 {
            self.flush_gso(fd, &mut outcome);
        } else {
            self.flush_plain(fd, &mut outcome);
        }
        self.lens.clear();
        self.dests.clear();
        self.tags.clear();
    }

    /// Send each queued datagram as its own message.
    fn flush_plain(&mut self, fd: RawFd, outcome: &mut impl FnMut(T, bool)) {
        let queued = self.lens.len();
        for ((((chunk, iov), msg), dest), len) in self
            .slab
            .chunks_exact_mut(self.buf_size)
            .zip(self.iovs.iter_mut())
            .zip(self.msgs.iter_mut())
            .zip(self.dests.iter())
            .zip(self.lens.iter())
        {
            *iov = libc::iovec {
                iov_base: chunk.as_mut_ptr().cast(),
                iov_len: *len,
            };
            *msg = zeroed_mmsghdr();
            if self.addressed {
                msg.msg_hdr.msg_name = dest.as_ptr().cast_mut().cast();
                msg.msg_hdr.msg_namelen = dest.len();
            }
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
        }
        let tags = &self.tags;
        let msgs = self.msgs.get_mut(..queued).unwrap_or_default();
        // SAFETY: `msgs` holds the mmsghdrs prepared above: each points at
        // an iovec over `len` bytes of `slab` and at a socket address owned
        // by `dests` (or at none: a null name of length 0), all alive and
        // unmoved during the call.
        unsafe {
            send_all(fd, msgs, |index, result| {
                if let Some(&tag) = tags.get(index) {
                    outcome(tag, result == Sent::Yes);
                }
            });
        }
    }
}

impl<T: Copy> SendBatch<T> {
    /// Sort the queued datagrams by destination and length, group equal
    /// ones into runs, and send each run as one message (with a `UDP_SEGMENT` cmsg when it
    /// holds more than one datagram).
    fn flush_gso(&mut self, fd: RawFd, outcome: &mut impl FnMut(T, bool)) {
        let queued = self.lens.len();
        self.order.clear();
        self.order.extend(0..queued);
        let lens = &self.lens;
        self.keys.clear();
        for (index, &len) in lens.iter().enumerate() {
            let dest = if self.addressed {
                self.dests.get(index).and_then(SockAddr::as_socket)
            } else {
                None
            };
            self.keys.push((dest, len));
        }
        let keys = &self.keys;
        self.order.sort_by_key(|&index| keys.get(index).copied());
        self.runs.clear();
        let mut run_key = None;
        for (position, &index) in self.order.iter().enumerate() {
            let key = keys.get(index).copied();
            let len = lens.get(index).copied().unwrap_or(0);
            match self.runs.last_mut() {
                Some((_, count, _))
                    if run_key == key
                        && *count < MAX_GSO_SEGMENTS
                        && (*count + 1) * len <= MAX_GSO_BYTES =>
                {
                    *count += 1;
                }
                _ => {
                    run_key = key;
                    self.runs.push((position, 1, len));
                }
            }
        }
        for (iov, &index) in self.iovs.iter_mut().zip(self.order.iter()) {
            let len = lens.get(index).copied().unwrap_or(0);
            let start = index * self.buf_size;
            *iov = match self.slab.get_mut(start..start + len) {
                Some(bytes) => libc::iovec {
                    iov_base: bytes.as_mut_ptr().cast(),
                    iov_len: len,
                },
                None => empty_iovec(),
            };
        }
        // SAFETY: CMSG_SPACE and CMSG_LEN are pure arithmetic.
        let (space, cmsg_len) = unsafe { (libc::CMSG_SPACE(2), libc::CMSG_LEN(2)) };
        for ((msg, control), &(start, count, len)) in self
            .msgs
            .iter_mut()
            .zip(self.controls.iter_mut())
            .zip(self.runs.iter())
        {
            *msg = zeroed_mmsghdr();
            let Some(iovs) = self.iovs.get_mut(start..start + count) else {
                continue;
            };
            if self.addressed
                && let Some(dest) = self
                    .order
                    .get(start)
                    .and_then(|&index| self.dests.get(index))
            {
                msg.msg_hdr.msg_name = dest.as_ptr().cast_mut().cast();
                msg.msg_hdr.msg_namelen = dest.len();
            }
            msg.msg_hdr.msg_iov = iovs.as_mut_ptr();
            msg.msg_hdr.msg_iovlen = count;
            if count > 1 {
                *control = [0; 4];
                msg.msg_hdr.msg_control = control.as_mut_ptr().cast();
                msg.msg_hdr.msg_controllen = space as usize;
                // SAFETY: `control` is 32 bytes, 8-aligned, and
                // msg_controllen (CMSG_SPACE(2) = 24) says so, so
                // CMSG_FIRSTHDR returns a pointer to its start, where a
                // cmsghdr and 2 data bytes fit; they are written with
                // unaligned-safe writes for the data.
                unsafe {
                    let cmsg = libc::CMSG_FIRSTHDR(&msg.msg_hdr);
                    if !cmsg.is_null() {
                        (*cmsg).cmsg_level = libc::SOL_UDP;
                        (*cmsg).cmsg_type = UDP_SEGMENT;
                        (*cmsg).cmsg_len = cmsg_len as usize;
                        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), len as u16);
                    }
                }
            }
        }
        let runs = &self.runs;
        let order = &self.order;
        let tags = &self.tags;
        let gso = &mut self.gso;
        let msgs = self.msgs.get_mut(..runs.len()).unwrap_or_default();
        // SAFETY: `msgs` holds the mmsghdrs prepared above: each points at
        // `count` iovecs of `iovs` (over bytes of `slab`) and, for a run, at
        // its control buffer in `controls`; and at no name (the socket is
        // connected) or the run's destination in `dests`. All live in
        // `self`, unmoved during the call.
        unsafe {
            send_all(fd, msgs, |run, result| {
                let Some(&(start, count, _)) = runs.get(run) else {
                    return;
                };
                if result == Sent::Refused && count > 1 {
                    // No GSO here (EIO, EINVAL, ENOTSUP...): plain from now.
                    *gso = false;
                }
                for &index in order.iter().skip(start).take(count) {
                    if let Some(&tag) = tags.get(index) {
                        outcome(tag, result == Sent::Yes);
                    }
                }
            });
        }
    }
}

/// What became of one message of [`send_all`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The kernel took it.
    Yes,
    /// The kernel refused it with an error.
    Refused,
    /// `sendmmsg` returned 0 for it (not expected; counted as unsent rather
    /// than retried forever).
    Nothing,
}

/// Send `msgs` with as few `sendmmsg` calls as the kernel allows, calling
/// `done(index, outcome)` once per message in order. A message the kernel
/// refuses is skipped so one bad destination cannot wedge the rest; an
/// interrupted call is retried.
///
/// # Safety
///
/// Every mmsghdr must point at valid iovecs, socket addresses and control
/// data that stay alive and unmoved during the call; the kernel only reads
/// them and writes `msg_len`.
unsafe fn send_all(fd: RawFd, msgs: &mut [libc::mmsghdr], mut done: impl FnMut(usize, Sent)) {
    let mut first = 0usize;
    while let Some(rest) = msgs.get_mut(first..).filter(|rest| !rest.is_empty()) {
        // SAFETY: the caller's guarantee, for a suffix of `msgs`.
        let sent = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
        if sent < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            done(first, Sent::Refused);
            first += 1;
            continue;
        }
        let sent = usize::try_from(sent).unwrap_or(0).min(rest.len());
        if sent == 0 {
            done(first, Sent::Nothing);
            first += 1;
            continue;
        }
        for index in first..first + sent {
            done(index, Sent::Yes);
        }
        first += sent;
    }
}

/// Wait until `fd` is readable or `timeout` passes (rounded up to a whole
/// millisecond, so a short wait never becomes a busy loop). Returns whether
/// it is readable; an interrupted wait counts as a timeout.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let millis = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid, exclusively borrowed pollfd, and a count of 1.
    let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(ready > 0 && pollfd.revents != 0)
}

/// Wait until any of `fds` is readable or `timeout` passes, with
/// nanosecond precision (`ppoll`), for schedules finer than a millisecond.
/// Returns how many are readable (0 on timeout or interruption).
pub fn wait_any_readable(fds: &[RawFd], timeout: Duration) -> io::Result<usize> {
    /// More descriptors than one worker ever has; the rest are not watched.
    const MAX_FDS: usize = 64;
    let mut pollfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_FDS];
    let count = fds.len().min(MAX_FDS);
    for (pollfd, &fd) in pollfds.iter_mut().zip(fds) {
        *pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
    }
    let timespec = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `pollfds` holds `count` initialised entries (count <= its
    // length) that the kernel may write `revents` into; the timespec is
    // valid and only read; a null signal mask means "leave it unchanged".
    let ready = unsafe {
        libc::ppoll(
            pollfds.as_mut_ptr(),
            count as libc::nfds_t,
            &timespec,
            std::ptr::null(),
        )
    };
    if ready < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(usize::try_from(ready).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

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
