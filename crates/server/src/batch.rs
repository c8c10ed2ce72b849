//! Batched datagram I/O on a raw socket: `recvmmsg` to drain what is queued
//! and `sendmmsg` to answer a whole batch in one system call (with the
//! replies that go to one peer with one length grouped into UDP GSO sends
//! where the kernel supports it), plus a single non-blocking `sendto`.
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

/// The length of the C address in `storage`, by its family.
fn sockaddr_len(storage: &libc::sockaddr_storage) -> libc::socklen_t {
    let len = match i32::from(storage.ss_family) {
        libc::AF_INET => size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => size_of::<libc::sockaddr_in6>(),
        _ => size_of::<libc::sockaddr_storage>(),
    };
    len as libc::socklen_t
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

/// Most datagrams one UDP GSO send may carry (the kernel's
/// `UDP_MAX_SEGMENTS`).
const GSO_MAX_SEGMENTS: usize = 64;

/// Most payload bytes one UDP GSO send may carry: the whole super-datagram
/// must fit one IP packet's 16-bit length, headers included.
const GSO_MAX_BYTES: usize = 65_000;

/// Room for one control message holding a `u16` (`CMSG_SPACE(2)` is 24 on
/// 64-bit Linux), kept 8-byte aligned as `cmsghdr` requires.
type GsoControl = [u64; 4];

/// UDP reply counters of one core (see `server.udp_gso`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UdpStats {
    /// Sends that carried several replies as UDP GSO segments.
    pub gso_sends: u64,
    /// Replies that left inside those sends.
    pub gso_segments: u64,
    /// GSO sends the kernel refused whose replies were then sent one by
    /// one.
    pub gso_fallbacks: u64,
}

impl UdpStats {
    /// Add another set of counters to these.
    pub(crate) fn add(&mut self, other: UdpStats) {
        self.gso_sends += other.gso_sends;
        self.gso_segments += other.gso_segments;
        self.gso_fallbacks += other.gso_fallbacks;
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
    /// Whether `send` coalesces datagrams for one peer into GSO sends.
    gso: bool,
    /// Slot order for grouping: a peer-and-length fingerprint above the
    /// slot index, so an unstable sort keeps each peer's replies in order.
    order: Vec<u64>,
    /// One entry per GSO group: its first position in `order` and its
    /// number of datagrams.
    groups: Vec<(usize, usize)>,
    /// The iovecs of every group, laid out in `order`.
    group_iovecs: Vec<libc::iovec>,
    group_headers: Vec<libc::mmsghdr>,
    group_controls: Vec<GsoControl>,
    stats: UdpStats,
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
            gso: false,
            order: Vec::new(),
            groups: Vec::new(),
            group_iovecs: Vec::new(),
            group_headers: Vec::new(),
            group_controls: Vec::new(),
            stats: UdpStats::default(),
        }
    }

    /// Let `send` coalesce the datagrams of a batch that go to one peer
    /// with one length into a single UDP GSO send (`UDP_SEGMENT`), when the
    /// kernel supports it on `fd`. Returns whether it does.
    ///
    /// One GSO send walks the IP stack, the route lookup and the device
    /// once for all its datagrams; the kernel (or the NIC) cuts it into
    /// ordinary datagrams on the way, so the peer sees no difference.
    pub(crate) fn enable_gso(&mut self, fd: RawFd) -> bool {
        // The grouping keeps slot indexes in 16 bits (`slot_of`).
        if self.capacity > 1 << 16 || !gso_supported(fd) {
            return false;
        }
        let capacity = self.capacity;
        self.gso = true;
        self.order = vec![0; capacity];
        self.groups = Vec::with_capacity(capacity);
        // SAFETY: all-zero bytes are valid for these C structures.
        self.group_iovecs = (0..capacity).map(|_| unsafe { zeroed() }).collect();
        self.group_headers = (0..capacity).map(|_| unsafe { zeroed() }).collect();
        self.group_controls = vec![[0; 4]; capacity];
        true
    }

    /// What `send` has done since the last call, resetting the counters.
    pub(crate) fn take_stats(&mut self) -> UdpStats {
        std::mem::take(&mut self.stats)
    }

    /// Whether `send` is coalescing with GSO (it stops after a refusal).
    #[cfg(test)]
    pub(crate) fn gso_enabled(&self) -> bool {
        self.gso
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
            header.msg_hdr.msg_namelen = if for_send {
                sockaddr_len(addr)
            } else {
                size_of::<libc::sockaddr_storage>() as libc::socklen_t
            };
            header.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
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
    /// `sendmmsg` calls as the kernel allows, as GSO sends where enabled
    /// and more than one datagram goes to a peer. Returns how many were
    /// sent; the rest were dropped because the socket buffer was full.
    pub(crate) fn send(&mut self, fd: RawFd, count: usize) -> usize {
        let count = count.min(self.capacity);
        if self.gso && count > 1 {
            return self.send_grouped(fd, count);
        }
        self.send_each(fd, count)
    }

    /// Send slots `0..count` as one datagram per message.
    fn send_each(&mut self, fd: RawFd, count: usize) -> usize {
        self.prepare(0, count, true);
        let mut sent = 0usize;
        while sent < count {
            let Some(headers) = self.headers.get_mut(sent..count) else {
                break;
            };
            match send_headers(fd, headers) {
                HeadersSent::Some(done) => sent += done,
                HeadersSent::Interrupted => {}
                // A datagram the kernel refuses (full buffer, unreachable
                // peer) is skipped so the rest of the batch still goes out.
                HeadersSent::Refused(_) => sent += 1,
            }
        }
        sent
    }

    /// Group slots `0..count` by peer and length, then send each group as
    /// one message: a GSO send when it holds several datagrams.
    fn send_grouped(&mut self, fd: RawFd, count: usize) -> usize {
        self.plan_groups(count);
        if self.groups.len() == count {
            // Every datagram goes to a different peer (or has a different
            // length): nothing to coalesce.
            return self.send_each(fd, count);
        }
        self.prepare_groups();
        let groups = self.groups.len();
        let mut sent_groups = 0usize;
        let mut sent = 0usize;
        while sent_groups < groups {
            let Some(headers) = self.group_headers.get_mut(sent_groups..groups) else {
                break;
            };
            let errno = match send_headers(fd, headers) {
                HeadersSent::Some(done) => {
                    let done = sent_groups + done;
                    for &(_, members) in self.groups.get(sent_groups..done).unwrap_or_default() {
                        sent += members;
                        if members > 1 {
                            self.stats.gso_sends += 1;
                            self.stats.gso_segments += members as u64;
                        }
                    }
                    sent_groups = done;
                    continue;
                }
                HeadersSent::Interrupted => continue,
                HeadersSent::Refused(errno) => errno,
            };
            // The kernel refused this group's message. A lone datagram is
            // skipped (full buffer, unreachable peer), so the rest of the
            // batch still goes out; a GSO group is sent again one datagram
            // at a time, because the refusal may be GSO's alone (a device
            // without checksum offload, a segment over the path MTU).
            let (start, members) = self.groups.get(sent_groups).copied().unwrap_or((0, 0));
            if members > 1 {
                self.stats.gso_fallbacks += 1;
                let mut delivered = 0usize;
                for position in start..start + members {
                    let slot = self.slot_at(position);
                    let Some(addr) = self.address(slot) else {
                        continue;
                    };
                    if send_to(fd, self.datagram(slot), addr).is_ok() {
                        delivered += 1;
                    }
                }
                let full = matches!(errno, libc::EAGAIN | libc::ENOBUFS | libc::ENOMEM);
                if delivered == members && !full {
                    // Plain sends work where the GSO send did not, and not
                    // because a full buffer emptied: this socket's path
                    // cannot take GSO, so stop trying.
                    log::warn!("UDP GSO refused on fd {fd}; replies are sent one by one");
                    self.gso = false;
                }
                sent += delivered;
            }
            sent_groups += 1;
        }
        sent
    }

    /// The slot at `position` of the sorted order.
    fn slot_at(&self, position: usize) -> usize {
        self.order.get(position).map_or(0, |&key| slot_of(key))
    }

    /// Sort slots `0..count` by peer and length (each peer's datagrams
    /// keep their order) and cut the order into GSO groups of one peer,
    /// one length, at most [`GSO_MAX_SEGMENTS`] datagrams and
    /// [`GSO_MAX_BYTES`] bytes.
    fn plan_groups(&mut self, count: usize) {
        let count = count.min(self.order.len());
        for slot in 0..count {
            let len = self.lens.get(slot).copied().unwrap_or(0);
            let fingerprint = peer_fingerprint(self.address(slot), len);
            if let Some(key) = self.order.get_mut(slot) {
                *key = (fingerprint << 16) | slot as u64;
            }
        }
        if let Some(order) = self.order.get_mut(..count) {
            order.sort_unstable();
        }
        self.groups.clear();
        let mut start = 0usize;
        while start < count {
            let first = self.slot_at(start);
            let len = self.lens.get(first).copied().unwrap_or(0);
            let mut members = 1usize;
            // An empty datagram never joins a group: a segment size of 0
            // would mean "no GSO" to the kernel and send one datagram.
            while len > 0
                && start + members < count
                && members < GSO_MAX_SEGMENTS
                && (members + 1) * len <= GSO_MAX_BYTES
            {
                let next = self.slot_at(start + members);
                let same_peer =
                    self.address(first).is_some() && self.address(first) == self.address(next);
                if self.lens.get(next) != Some(&len) || !same_peer {
                    break;
                }
                members += 1;
            }
            self.groups.push((start, members));
            start += members;
        }
    }

    /// Point one message header per planned group at its datagrams, with
    /// a `UDP_SEGMENT` control message when the group has several.
    fn prepare_groups(&mut self) {
        let data = self.data.as_mut_ptr();
        for (group, &(start, members)) in self.groups.iter().enumerate() {
            let first = self.slot_at(start);
            for position in start..start + members {
                let slot = self.slot_at(position);
                let len = self.lens.get(slot).copied().unwrap_or(0);
                if let Some(iovec) = self.group_iovecs.get_mut(position) {
                    // SAFETY: slot < capacity, so the offset stays inside
                    // `data`.
                    iovec.iov_base = unsafe { data.add(slot * DATAGRAM_BUF) }.cast();
                    iovec.iov_len = len.min(DATAGRAM_BUF);
                }
            }
            let (Some(header), Some(addr), Some(control)) = (
                self.group_headers.get_mut(group),
                self.addrs.get_mut(first),
                self.group_controls.get_mut(group),
            ) else {
                continue;
            };
            header.msg_hdr.msg_namelen = sockaddr_len(addr);
            header.msg_hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_iov = self
                .group_iovecs
                .get_mut(start)
                .map_or(std::ptr::null_mut(), |iovec| iovec as *mut libc::iovec);
            header.msg_hdr.msg_iovlen = members;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
            if members > 1 {
                let segment = self.lens.get(first).copied().unwrap_or(0) as u16;
                header.msg_hdr.msg_control = control.as_mut_ptr().cast();
                header.msg_hdr.msg_controllen = write_segment_control(control, segment);
            } else {
                header.msg_hdr.msg_control = std::ptr::null_mut();
                header.msg_hdr.msg_controllen = 0;
            }
        }
    }
}

/// The slot index in the low 16 bits of a sort key (see `plan_groups`);
/// a batch holds at most `server.udp_recv_batch` (1024) slots.
fn slot_of(key: u64) -> usize {
    (key & 0xffff) as usize
}

/// What one `sendmmsg` call did with the messages it was given.
enum HeadersSent {
    /// The first this many messages left.
    Some(usize),
    /// A signal came first; nothing left.
    Interrupted,
    /// The kernel refused the first message, with this error number
    /// (0 when the call sent nothing without saying why).
    Refused(i32),
}

/// One non-blocking `sendmmsg` of `headers`, each prepared to point at
/// buffers, addresses and control messages that outlive the call.
fn send_headers(fd: RawFd, headers: &mut [libc::mmsghdr]) -> HeadersSent {
    // SAFETY: the caller prepared every header (see above); the count is
    // the slice's length.
    let result = unsafe {
        libc::sendmmsg(
            fd,
            headers.as_mut_ptr(),
            headers.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if result > 0 {
        return HeadersSent::Some(result as usize);
    }
    let errno = if result < 0 {
        io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    };
    if errno == libc::EINTR {
        HeadersSent::Interrupted
    } else {
        HeadersSent::Refused(errno)
    }
}

/// Whether the kernel knows `UDP_SEGMENT` on `fd` (Linux 4.18 and later).
/// Older kernels would ignore the control message and send the whole
/// group as one datagram, so GSO is used only after this check.
fn gso_supported(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and sized for the option.
    let result = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    result == 0
}

/// Write a `UDP_SEGMENT` control message carrying `segment` into
/// `control`; returns its length for `msg_controllen`.
fn write_segment_control(control: &mut GsoControl, segment: u16) -> usize {
    // SAFETY: CMSG_SPACE and CMSG_LEN are pure arithmetic.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    let len = unsafe { libc::CMSG_LEN(size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= size_of::<GsoControl>());
    *control = [0; 4];
    let base = control.as_mut_ptr().cast::<u8>();
    // SAFETY: `control` is 32 bytes, 8-byte aligned, which holds a cmsghdr
    // followed by a u16 (`space` bytes); CMSG_DATA points inside it.
    unsafe {
        let header = base.cast::<libc::cmsghdr>();
        (*header).cmsg_level = libc::SOL_UDP;
        (*header).cmsg_type = libc::UDP_SEGMENT;
        (*header).cmsg_len = len as _;
        libc::CMSG_DATA(header)
            .cast::<u16>()
            .write_unaligned(segment);
    }
    space
}

/// A 48-bit fingerprint of a peer address and a datagram length, so one
/// sort brings each peer's same-length datagrams together. Collisions only
/// split groups (members are compared in full).
fn peer_fingerprint(addr: Option<SocketAddr>, len: usize) -> u64 {
    let (ip, port) = match addr {
        Some(SocketAddr::V4(v4)) => (u128::from(u32::from(*v4.ip())), v4.port()),
        Some(SocketAddr::V6(v6)) => (u128::from(*v6.ip()), v6.port()),
        None => (0, 0),
    };
    let mut hash = (ip as u64) ^ ((ip >> 64) as u64).rotate_left(29);
    hash ^= (u64::from(port) << 48) ^ ((len as u64) << 32);
    hash = (hash ^ (hash >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    hash >> 16
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

    fn receiver() -> UdpSocket {
        receiver_on("127.0.0.1:0")
    }

    fn receiver_on(addr: &str) -> UdpSocket {
        let socket = UdpSocket::bind(addr).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        socket
    }

    /// Fill slot `index` with `len` bytes that name the slot, for `to`.
    fn put(batch: &mut DatagramBatch, index: usize, len: usize, to: &UdpSocket) {
        let buffer = batch.buffer_mut(index);
        buffer[..len].fill(index as u8);
        buffer[0] = (index >> 8) as u8;
        batch.set(index, len, to.local_addr().unwrap());
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
    fn gso_coalesces_each_peers_same_length_replies_in_order() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (receiver(), receiver());
        let mut batch = DatagramBatch::new(16);
        assert!(
            batch.enable_gso(server.as_raw_fd()),
            "Linux 4.18+ has UDP_SEGMENT"
        );
        // a: five of 20 bytes with one of 7 in between; b: three of 20.
        let plan = [
            (&a, 20),
            (&b, 20),
            (&a, 20),
            (&a, 7),
            (&b, 20),
            (&a, 20),
            (&a, 20),
            (&a, 20),
            (&b, 20),
        ];
        for (index, (to, len)) in plan.into_iter().enumerate() {
            put(&mut batch, index, len, to);
        }
        assert_eq!(batch.send(server.as_raw_fd(), plan.len()), 9);
        let stats = batch.take_stats();
        assert_eq!(
            stats,
            UdpStats {
                gso_sends: 2,
                gso_segments: 8,
                gso_fallbacks: 0
            }
        );
        // Each peer's same-length replies keep their order; the odd length
        // is a datagram of its own, before or after them.
        let mut buf = [0u8; 64];
        let mut from_a = Vec::new();
        for _ in 0..6 {
            let (len, _) = a.recv_from(&mut buf).unwrap();
            from_a.push((usize::from(buf[1]), len));
        }
        let odd = from_a.iter().position(|&(_, len)| len == 7).unwrap();
        assert_eq!(from_a.remove(odd), (3, 7));
        assert_eq!(from_a, [(0, 20), (2, 20), (5, 20), (6, 20), (7, 20)]);
        expect(&b, [(1, 20), (4, 20), (8, 20)]);
        assert_eq!(batch.take_stats(), UdpStats::default(), "taken");
    }

    #[test]
    fn gso_groups_stay_within_the_kernels_segment_and_byte_limits() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = receiver();
        let mut batch = DatagramBatch::new(100);
        assert!(batch.enable_gso(server.as_raw_fd()));
        for index in 0..100 {
            put(&mut batch, index, 10, &client);
        }
        assert_eq!(batch.send(server.as_raw_fd(), 100), 100);
        let stats = batch.take_stats();
        assert_eq!((stats.gso_sends, stats.gso_segments), (2, 100), "64 + 36");
        expect(&client, (0..100).map(|index| (index, 10)));

        let big = receiver();
        for index in 0..20 {
            put(&mut batch, index, 4000, &big);
        }
        assert_eq!(batch.send(server.as_raw_fd(), 20), 20);
        let stats = batch.take_stats();
        assert_eq!(
            (stats.gso_sends, stats.gso_segments),
            (2, 20),
            "16 x 4000 bytes + 4"
        );
        expect(&big, (0..20).map(|index| (index, 4000)));
    }

    #[test]
    fn gso_works_over_ipv6_too() {
        let Ok(server) = UdpSocket::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback on this host");
            return;
        };
        let client = receiver_on("[::1]:0");
        let mut batch = DatagramBatch::new(8);
        assert!(batch.enable_gso(server.as_raw_fd()));
        for index in 0..5 {
            put(&mut batch, index, 50, &client);
        }
        assert_eq!(batch.send(server.as_raw_fd(), 5), 5);
        assert_eq!(batch.take_stats().gso_segments, 5);
        expect(&client, (0..5).map(|index| (index, 50)));
    }

    #[global_allocator]
    static ALLOCATOR: heimdall_testkit::CountingAllocator = heimdall_testkit::CountingAllocator;

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

    #[test]
    fn a_refused_gso_send_falls_back_to_plain_datagrams_and_stops_gso() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Without UDP checksums the kernel refuses GSO (EINVAL) but sends
        // plain datagrams: the shape of a device that cannot offload.
        let on: libc::c_int = 1;
        // SAFETY: a live c_int of the option's size.
        let result = unsafe {
            libc::setsockopt(
                server.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(result, 0);
        let (a, b) = (receiver(), receiver());
        let mut batch = DatagramBatch::new(8);
        assert!(batch.enable_gso(server.as_raw_fd()));
        for index in 0..4 {
            put(&mut batch, index, 30, &a);
        }
        put(&mut batch, 4, 30, &b);
        assert_eq!(batch.send(server.as_raw_fd(), 5), 5);
        assert_eq!(
            batch.take_stats(),
            UdpStats {
                gso_sends: 0,
                gso_segments: 0,
                gso_fallbacks: 1
            }
        );
        assert!(!batch.gso_enabled(), "GSO is off for this socket now");
        expect(&a, (0..4).map(|index| (index, 30)));
        expect(&b, [(4, 30)]);
        // Later batches go out one datagram each, without trying GSO.
        for index in 0..3 {
            put(&mut batch, index, 12, &a);
        }
        a.set_nonblocking(false).unwrap();
        assert_eq!(batch.send(server.as_raw_fd(), 3), 3);
        assert_eq!(batch.take_stats(), UdpStats::default());
        expect(&a, (0..3).map(|index| (index, 12)));
    }
}
