//! Single-datagram sends and receives, and the UDP socket options
//! batching relies on.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::sockaddr;

/// Send one datagram without blocking. A full socket buffer drops the
/// datagram (the caller counts it): DNS clients retry.
pub fn send_to(fd: RawFd, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
    let mut storage = sockaddr::empty();
    sockaddr::to_sockaddr(to, &mut storage);
    send_one(fd, bytes, &mut storage, libc::MSG_DONTWAIT)
}

/// Receive one datagram without blocking into `buf`: its length and
/// sender. A datagram longer than `buf` is cut to it (`MSG_TRUNC` is not
/// asked for; the caller's buffer is as large as anything it accepts).
/// `WouldBlock` when none is queued.
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    let mut storage = sockaddr::empty();
    let mut name_len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the buffer is valid for writes of `buf.len()` bytes and the
    // address storage for `name_len` bytes, for the duration of the call;
    // the kernel writes at most that much into each.
    let received = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            std::ptr::addr_of_mut!(storage).cast(),
            &mut name_len,
        )
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let from = sockaddr::from_sockaddr(&storage)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP sender"))?;
    Ok((received as usize, from))
}

/// Send one datagram to the address in `storage` (none for a connected
/// socket: see [`sockaddr::empty`]) with `sendto(.., flags)`.
pub(crate) fn send_one(
    fd: RawFd,
    bytes: &[u8],
    storage: &mut libc::sockaddr_storage,
    flags: libc::c_int,
) -> io::Result<usize> {
    let (name, name_len) = sockaddr::name_of(storage);
    // SAFETY: the buffer is valid for `bytes.len()` bytes and the address
    // (or null with length 0) for `name_len` bytes, for the duration of
    // the call; the kernel only reads them.
    let sent = unsafe {
        libc::sendto(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            flags,
            name.cast_const().cast(),
            name_len,
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
pub fn set_no_fragmentation(fd: RawFd, ipv6: bool) -> io::Result<()> {
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
    set_int_option(fd, level, name, value)
}

/// `setsockopt` of one `c_int` option.
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
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
