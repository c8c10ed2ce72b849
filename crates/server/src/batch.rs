//! Batched datagram I/O on a raw socket: `recvmmsg` to drain what is queued
//! and `sendmmsg` to answer a whole batch in one system call, plus a single
//! non-blocking `sendto`.
//!
//! glommio is used only to wait until a socket is readable (its `recv_from`
//! takes the first datagram); the rest of the batch is drained here. On this
//! machine that reaches the speed of a C `recvmmsg` reflector, where
//! glommio's per-datagram calls reach about 0.73 of it (DESIGN.md).
//!
//! All buffers are allocated once per socket and reused, so the query path
//! does not allocate.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Size of every datagram buffer: the largest UDP message heimdall accepts
/// or sends. Queries larger than this are truncated by the kernel and then
/// fail to parse (they get FORMERR).
pub(crate) const DATAGRAM_BUF: usize = 4096;

/// Convert a socket address into the C form, returning its length.
pub(crate) fn to_sockaddr(
    addr: SocketAddr,
    storage: &mut libc::sockaddr_storage,
) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned
            // for sockaddr_in; all bytes are initialized by `zeroed`.
            let sin = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            *sin = unsafe { zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            *sin6 = unsafe { zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: v6.ip().octets(),
            };
            sin6.sin6_scope_id = v6.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Convert the C form back; `None` for families other than IPv4 and IPv6.
pub(crate) fn from_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Send one datagram without blocking. A full socket buffer drops the
/// datagram (the caller counts it): DNS clients retry.
pub(crate) fn send_to(fd: RawFd, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
    // SAFETY: zeroed sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = to_sockaddr(to, &mut storage);
    // SAFETY: the buffer and address pointers are valid for the given
    // lengths for the duration of the call.
    let sent = unsafe {
        libc::sendto(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT,
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// Always set DF and never lower the packet size from path-MTU messages
/// (`IP_PMTUDISC_PROBE`): replies are never fragmented (fragments are a
/// cache-poisoning vector for the client), ICMP cannot shrink them, and the
/// kernel skips its shared IP-ID generator for DF packets, which is a
/// measurable share of the per-reply cost.
pub(crate) fn set_no_fragmentation(fd: RawFd, ipv6: bool) -> io::Result<()> {
    let (level, name, value) = if ipv6 {
        (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_PROBE,
        )
    } else {
        (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_PROBE,
        )
    };
    // SAFETY: `value` is a live c_int and the length matches it.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A fixed set of datagram buffers with the C structures `recvmmsg` and
/// `sendmmsg` need, reused for every batch.
pub(crate) struct DatagramBatch {
    data: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    capacity: usize,
}

impl DatagramBatch {
    /// Room for `capacity` datagrams of [`DATAGRAM_BUF`] bytes.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            data: vec![0u8; capacity * DATAGRAM_BUF],
            lens: vec![0; capacity],
            // SAFETY: all-zero bytes are valid for these C structures.
            addrs: (0..capacity).map(|_| unsafe { zeroed() }).collect(),
            iovecs: (0..capacity).map(|_| unsafe { zeroed() }).collect(),
            headers: (0..capacity).map(|_| unsafe { zeroed() }).collect(),
            capacity,
        }
    }

    /// The whole buffer of slot `index`, for writing a datagram into.
    pub(crate) fn buffer_mut(&mut self, index: usize) -> &mut [u8] {
        let start = index * DATAGRAM_BUF;
        self.data
            .get_mut(start..start + DATAGRAM_BUF)
            .unwrap_or_default()
    }

    /// The datagram in slot `index` (its recorded length).
    pub(crate) fn datagram(&self, index: usize) -> &[u8] {
        let start = index * DATAGRAM_BUF;
        let len = self.lens.get(index).copied().unwrap_or(0).min(DATAGRAM_BUF);
        self.data.get(start..start + len).unwrap_or_default()
    }

    /// The peer address of slot `index`.
    pub(crate) fn address(&self, index: usize) -> Option<SocketAddr> {
        self.addrs.get(index).and_then(from_sockaddr)
    }

    /// Record that slot `index` holds `len` bytes for (or from) `addr`.
    pub(crate) fn set(&mut self, index: usize, len: usize, addr: SocketAddr) {
        if let (Some(slot_len), Some(storage)) =
            (self.lens.get_mut(index), self.addrs.get_mut(index))
        {
            *slot_len = len;
            to_sockaddr(addr, storage);
        }
    }

    /// Point the C headers of slots `from..to` at their buffers.
    fn prepare(&mut self, from: usize, to: usize, for_send: bool) {
        let data = self.data.as_mut_ptr();
        for index in from..to {
            let (Some(iovec), Some(header), Some(addr), Some(&len)) = (
                self.iovecs.get_mut(index),
                self.headers.get_mut(index),
                self.addrs.get_mut(index),
                self.lens.get(index),
            ) else {
                continue;
            };
            // SAFETY: index < capacity, so the offset stays inside `data`.
            iovec.iov_base = unsafe { data.add(index * DATAGRAM_BUF) }.cast();
            iovec.iov_len = if for_send { len } else { DATAGRAM_BUF };
            let name_len = match i32::from(addr.ss_family) {
                libc::AF_INET => size_of::<libc::sockaddr_in>(),
                libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
                _ => size_of::<libc::sockaddr_storage>(),
            };
            header.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = if for_send {
                name_len as libc::socklen_t
            } else {
                size_of::<libc::sockaddr_storage>() as libc::socklen_t
            };
            header.msg_hdr.msg_iov = iovec as *mut libc::iovec;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = std::ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
    }

    /// Receive queued datagrams into slots `from..capacity` without
    /// blocking; returns how many arrived (0 when none were queued).
    pub(crate) fn receive(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        let wanted = self.capacity.saturating_sub(from);
        if wanted == 0 {
            return Ok(0);
        }
        self.prepare(from, self.capacity, false);
        let Some(headers) = self.headers.get_mut(from..) else {
            return Ok(0);
        };
        // SAFETY: every header points at a live buffer and address slot
        // owned by `self`, valid for the call; the count matches the slice.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                wanted as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(err)
            };
        }
        let received = received as usize;
        for index in from..from + received {
            let len = self
                .headers
                .get(index)
                .map_or(0, |header| header.msg_len as usize);
            if let Some(slot) = self.lens.get_mut(index) {
                *slot = len;
            }
        }
        Ok(received)
    }

    /// Send slots `0..count` (each to its recorded address) with as few
    /// `sendmmsg` calls as the kernel allows. Returns how many were sent;
    /// the rest were dropped because the socket buffer was full.
    pub(crate) fn send(&mut self, fd: RawFd, count: usize) -> usize {
        let count = count.min(self.capacity);
        self.prepare(0, count, true);
        let mut sent = 0usize;
        while sent < count {
            let Some(headers) = self.headers.get_mut(sent..count) else {
                break;
            };
            // SAFETY: as in `receive`; the headers describe `count - sent`
            // prepared datagrams.
            let result = unsafe {
                libc::sendmmsg(
                    fd,
                    headers.as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if result <= 0 {
                let err = io::Error::last_os_error();
                if result < 0 && err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // A datagram the kernel refuses (full buffer, unreachable
                // peer) is skipped so the rest of the batch still goes out.
                sent += 1;
                continue;
            }
            sent += result as usize;
        }
        sent
    }
}

/// Hand a bound, listening, non-blocking TCP socket to glommio.
pub(crate) fn tcp_listener(socket: socket2::Socket) -> glommio::net::TcpListener {
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` was just released by an owning `Socket` (so it is open,
    // a TCP listener, and owned by nobody else); the listener takes it.
    unsafe { glommio::net::TcpListener::from_raw_fd(fd) }
}

/// Shut a connected socket down both ways, which wakes any pending read
/// on it (with end of stream) so its task ends and closes it.
pub(crate) fn shutdown_socket(fd: RawFd) {
    // SAFETY: shutdown(2) takes a plain descriptor; a stale one only
    // yields EBADF or ENOTSOCK, which is ignored.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn sockaddr_round_trip() {
        for text in ["127.0.0.1:53", "[::1]:5353", "[fe80::1%3]:9"] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
            to_sockaddr(addr, &mut storage);
            assert_eq!(from_sockaddr(&storage), Some(addr));
        }
    }

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
}
