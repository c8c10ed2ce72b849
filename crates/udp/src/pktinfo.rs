//! Datagrams with their local address, for a socket bound to a wildcard
//! address (`0.0.0.0`, `::`): `IP_PKTINFO` / `IPV6_RECVPKTINFO` make the
//! kernel say, in a control message, which address each datagram was sent
//! to, and a `IP_PKTINFO` / `IPV6_PKTINFO` control message on the send
//! makes the reply leave from it. Without that the kernel picks the source
//! by route, which on a host with several addresses may not be the one
//! the client wrote to; a client that checks (QUIC does, and any connected
//! UDP socket) drops such a reply.
//!
//! Control messages are read by a parser over the bytes the kernel wrote,
//! with every length checked: malformed or truncated control data gives no
//! address, never a panic.
#![allow(unsafe_code)]

use std::io;
use std::mem::{offset_of, size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;

use crate::sockaddr;

/// Room for the control messages of one datagram: one `in6_pktinfo`
/// (`CMSG_SPACE(20)` is 40 on 64-bit Linux) or `in_pktinfo` (32), with
/// space to spare, aligned as `cmsghdr` requires.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct Control([u8; 64]);

impl Default for Control {
    fn default() -> Self {
        Self([0; 64])
    }
}

/// A datagram received: its length, its sender, and the local address it
/// was sent to (when the socket reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Bytes of the datagram in the buffer.
    pub len: usize,
    /// Its sender.
    pub from: SocketAddr,
    /// The local address it was sent to (`None` without `IP_PKTINFO`, or
    /// when the control data held none).
    pub to: Option<IpAddr>,
}

/// Ask the kernel for each datagram's destination address on `fd`.
pub fn enable(fd: RawFd, ipv6: bool) -> io::Result<()> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    crate::socket::set_int_option(fd, level, name, 1)
}

/// Receive one datagram into `buf` without blocking (`WouldBlock` when
/// none is queued), with its destination address from `control`.
pub fn recv_with_destination(
    fd: RawFd,
    buf: &mut [u8],
    control: &mut Control,
) -> io::Result<Received> {
    let mut storage = sockaddr::empty();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero bytes are a
    // valid value (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: every pointer in `msg` points at a live, exclusively
    // borrowed buffer of the length given beside it, for the duration of
    // the call; the kernel writes within those lengths.
    let received = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = sockaddr::from_sockaddr(&storage)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no sender address"))?;
    // size_t on glibc: the length the kernel wrote, at most the buffer.
    let control_len = msg.msg_controllen as usize;
    let to = control.0.get(..control_len).and_then(destination);
    Ok(Received {
        len: (received as usize).min(buf.len()),
        from,
        to,
    })
}

/// Send one datagram to `to` without blocking, from the local address
/// `from` when given (else the kernel picks it, as `sendto` does).
pub fn send_from(
    fd: RawFd,
    bytes: &[u8],
    to: SocketAddr,
    from: Option<IpAddr>,
) -> io::Result<usize> {
    let Some(from) = from else {
        return crate::send_to(fd, bytes, to);
    };
    let mut storage = sockaddr::empty();
    let name_len = sockaddr::to_sockaddr(to, &mut storage);
    let mut control = Control::default();
    let control_len = write_source(&mut control, from);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    // SAFETY: as in `recv_with_destination`.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut storage as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = name_len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control_len as _;
    // SAFETY: every pointer in `msg` points at a live buffer of the length
    // given beside it for the duration of the call; the kernel only reads
    // them (the iovec's mutable pointer is C's signature, not a write).
    let sent = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// `n` rounded up to the alignment of control messages (`CMSG_ALIGN`).
fn align(n: usize) -> Option<usize> {
    let to = size_of::<usize>();
    Some(n.checked_add(to - 1)? & !(to - 1))
}

// The parser reads `cmsg_len` as a `usize` followed by level and type, as
// Linux lays `cmsghdr` out.
const _: () = assert!(offset_of!(libc::cmsghdr, cmsg_level) == size_of::<usize>());

/// The destination address in the `IP_PKTINFO` or `IPV6_PKTINFO` control
/// message of `control` (the bytes the kernel wrote); `None` when there is
/// none or the control data is malformed.
pub fn destination(control: &[u8]) -> Option<IpAddr> {
    let header = size_of::<libc::cmsghdr>();
    let data_at = align(header)?;
    let level_at = offset_of!(libc::cmsghdr, cmsg_level);
    let type_at = offset_of!(libc::cmsghdr, cmsg_type);
    let int = |bytes: &[u8], at: usize| -> Option<libc::c_int> {
        let field = bytes.get(at..at.checked_add(size_of::<libc::c_int>())?)?;
        Some(libc::c_int::from_ne_bytes(field.try_into().ok()?))
    };
    let mut rest = control;
    while rest.len() >= header {
        let len = usize::from_ne_bytes(rest.get(..size_of::<usize>())?.try_into().ok()?);
        if len < header {
            return None;
        }
        let data = rest.get(data_at..len)?;
        match (int(rest, level_at)?, int(rest, type_at)?) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                // in_pktinfo: ifindex, spec_dst, addr (the header's
                // destination).
                let at = offset_of!(libc::in_pktinfo, ipi_addr);
                let addr: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
                return Some(IpAddr::V4(Ipv4Addr::from(addr)));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                let at = offset_of!(libc::in6_pktinfo, ipi6_addr);
                let addr: [u8; 16] = data.get(at..at + 16)?.try_into().ok()?;
                return Some(IpAddr::V6(Ipv6Addr::from(addr)));
            }
            _ => {}
        }
        rest = rest.get(align(len)?..)?;
    }
    None
}

/// Write the control message that sends from `from` into `control`;
/// returns its length for `msg_controllen` (`CMSG_SPACE`).
fn write_source(control: &mut Control, from: IpAddr) -> usize {
    control.0 = [0; 64];
    let (level, kind, data_len) = match from {
        IpAddr::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            size_of::<libc::in_pktinfo>(),
        ),
        IpAddr::V6(_) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            size_of::<libc::in6_pktinfo>(),
        ),
    };
    let header = size_of::<libc::cmsghdr>();
    let Some(data_at) = align(header) else {
        return 0;
    };
    let len = data_at + data_len;
    let Some(space) = align(len).filter(|&space| space <= control.0.len()) else {
        return 0;
    };
    let mut put = |at: usize, bytes: &[u8]| {
        if let Some(field) = control.0.get_mut(at..at + bytes.len()) {
            field.copy_from_slice(bytes);
        }
    };
    put(0, &len.to_ne_bytes());
    put(offset_of!(libc::cmsghdr, cmsg_level), &level.to_ne_bytes());
    put(offset_of!(libc::cmsghdr, cmsg_type), &kind.to_ne_bytes());
    match from {
        // ifindex 0 and spec_dst: the source address, any interface.
        IpAddr::V4(v4) => put(
            data_at + offset_of!(libc::in_pktinfo, ipi_spec_dst),
            &v4.octets(),
        ),
        IpAddr::V6(v6) => put(
            data_at + offset_of!(libc::in6_pktinfo, ipi6_addr),
            &v6.octets(),
        ),
    }
    space
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// A control message as the kernel writes it on receive.
    fn received_control(level: libc::c_int, kind: libc::c_int, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(16 + data.len()).to_ne_bytes());
        bytes.extend_from_slice(&level.to_ne_bytes());
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(data);
        while bytes.len() % 8 != 0 {
            bytes.push(0);
        }
        bytes
    }

    #[test]
    fn the_destination_is_read_from_pktinfo_after_other_messages() {
        // in_pktinfo: ifindex 1, spec_dst 127.0.0.1, addr 127.0.0.2.
        let v4 = [1, 0, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2];
        let mut control = received_control(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[0; 16]);
        control.extend(received_control(libc::IPPROTO_IP, libc::IP_PKTINFO, &v4));
        assert_eq!(destination(&control), Some("127.0.0.2".parse().unwrap()));
        let mut v6 = [0u8; 20];
        v6[15] = 1;
        let control = received_control(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &v6);
        assert_eq!(destination(&control), Some("::1".parse().unwrap()));
    }

    #[test]
    fn malformed_control_data_gives_no_address() {
        let v4 = [1, 0, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2];
        let good = received_control(libc::IPPROTO_IP, libc::IP_PKTINFO, &v4);
        assert!(destination(&good).is_some());
        // Cut anywhere: the header or the data is incomplete.
        for cut in 0..28 {
            assert_eq!(destination(&good[..cut]), None, "cut at {cut}");
        }
        // A length shorter than the header, longer than the data, or too
        // short for an in_pktinfo.
        for len in [0usize, 8, 15, 64, usize::MAX, 16 + 8] {
            let mut bad = good.clone();
            bad[..8].copy_from_slice(&len.to_ne_bytes());
            assert_eq!(destination(&bad), None, "cmsg_len {len}");
        }
        // Nothing, or another message only.
        assert_eq!(destination(&[]), None);
        let other = received_control(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[0; 16]);
        assert_eq!(destination(&other), None);
    }

    #[test]
    fn the_source_message_matches_the_c_macros() {
        let mut control = Control::default();
        let space = write_source(&mut control, "127.0.0.2".parse().unwrap());
        // SAFETY: CMSG_SPACE and CMSG_LEN are pure arithmetic.
        let (c_space, c_len) = unsafe {
            (
                libc::CMSG_SPACE(size_of::<libc::in_pktinfo>() as u32) as usize,
                libc::CMSG_LEN(size_of::<libc::in_pktinfo>() as u32) as usize,
            )
        };
        assert_eq!(space, c_space);
        // SAFETY: `control` is aligned for cmsghdr and holds one.
        let header = unsafe { &*control.0.as_ptr().cast::<libc::cmsghdr>() };
        assert_eq!(header.cmsg_len, c_len);
        assert_eq!(header.cmsg_level, libc::IPPROTO_IP);
        assert_eq!(header.cmsg_type, libc::IP_PKTINFO);
        assert_eq!(&control.0[16 + 4..16 + 8], &[127, 0, 0, 2]);
        let space = write_source(&mut control, "::1".parse().unwrap());
        // SAFETY: as above.
        let c_space = unsafe { libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) } as usize;
        assert_eq!(space, c_space);
    }

    /// A socket on 0.0.0.0 learns that a datagram was sent to 127.0.0.2
    /// and answers from that address (only loopback addresses are used).
    #[test]
    fn a_wildcard_socket_replies_from_the_address_written_to() {
        let server = UdpSocket::bind("0.0.0.0:0").unwrap();
        enable(server.as_raw_fd(), false).unwrap();
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let target: SocketAddr = ([127, 0, 0, 2], port).into();
        client.send_to(b"ping", target).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 16];
        // Wait for it (a peek), then take it with its control message.
        server.peek_from(&mut buf).unwrap();
        let mut control = Control::default();
        let received = recv_with_destination(server.as_raw_fd(), &mut buf, &mut control).unwrap();
        assert_eq!(received.len, 4);
        assert_eq!(received.from, client.local_addr().unwrap());
        assert_eq!(received.to, Some(target.ip()));
        send_from(server.as_raw_fd(), b"pong", received.from, received.to).unwrap();
        let (len, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..len], from), (&b"pong"[..], target));
    }
}
