//! [`Batch`]: a fixed set of datagram slots and the C tables `recvmmsg`
//! and `sendmmsg` need, reused for every batch.
//!
//! Receiving drains what is queued into slots with one `recvmmsg`.
//! Sending passes slots `0..count` to `sendmmsg`; with GSO enabled, the
//! slots that go to one peer with one length are grouped into UDP GSO
//! sends first. A slot whose recorded length does not fit its buffer is
//! never sent (not even as an empty datagram): it is reported unsent.
//!
//! Every buffer is allocated when the batch is made (the GSO scratch when
//! GSO is enabled), and the C tables are rebuilt from them before every
//! call, so a batch can move between calls and never allocates per batch.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::RawFd;

use crate::gso::{self, MAX_BYTES, MAX_SEGMENTS};
use crate::sockaddr;
use crate::socket::send_one;

/// UDP send counters of one batch (see [`Batch::take_stats`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UdpStats {
    /// Sends that carried several datagrams as UDP GSO segments.
    pub gso_sends: u64,
    /// Datagrams that left inside those sends.
    pub gso_segments: u64,
    /// GSO sends the kernel refused whose datagrams were then sent one by
    /// one.
    pub gso_fallbacks: u64,
}

impl UdpStats {
    /// Add another set of counters to these.
    pub fn add(&mut self, other: UdpStats) {
        self.gso_sends += other.gso_sends;
        self.gso_segments += other.gso_segments;
        self.gso_fallbacks += other.gso_fallbacks;
    }
}

fn zeroed_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

fn zeroed_header() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct of integers and raw pointers; all
    // zeros (null pointers, zero lengths) is a valid value, and some libcs
    // have private padding fields that rule out a struct literal.
    unsafe { zeroed() }
}

/// Datagram slots with their lengths and peer addresses, and the C
/// structures that point the kernel at them.
pub struct Batch {
    slot_size: usize,
    capacity: usize,
    data: Vec<u8>,
    /// Each slot's datagram length; one above `slot_size` (a caller's
    /// mistake) marks a slot that must not be sent.
    lens: Vec<usize>,
    /// Each slot's peer; `AF_UNSPEC` for none (a connected socket).
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    /// Whether `send` coalesces datagrams for one peer into GSO sends.
    gso: bool,
    /// Slot order for grouping: a peer-and-length fingerprint above the
    /// slot index, so an unstable sort keeps each peer's datagrams in
    /// order.
    order: Vec<u64>,
    /// One entry per GSO group: its first position in `order` and its
    /// number of datagrams.
    groups: Vec<(usize, usize)>,
    /// The iovecs of every group, laid out in `order`.
    group_iovecs: Vec<libc::iovec>,
    group_headers: Vec<libc::mmsghdr>,
    group_controls: Vec<gso::Control>,
    stats: UdpStats,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("capacity", &self.capacity)
            .field("slot_size", &self.slot_size)
            .field("gso", &self.gso)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
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

impl Batch {
    /// Room for `capacity` datagrams of up to `slot_size` bytes each
    /// (longer received datagrams are cut by the kernel). Both are at
    /// least 1.
    pub fn new(capacity: usize, slot_size: usize) -> Self {
        let capacity = capacity.max(1);
        let slot_size = slot_size.max(1);
        Self {
            slot_size,
            capacity,
            data: vec![0u8; capacity * slot_size],
            lens: vec![0; capacity],
            addrs: vec![sockaddr::empty(); capacity],
            iovecs: vec![zeroed_iovec(); capacity],
            headers: vec![zeroed_header(); capacity],
            gso: false,
            order: Vec::new(),
            groups: Vec::new(),
            group_iovecs: Vec::new(),
            group_headers: Vec::new(),
            group_controls: Vec::new(),
            stats: UdpStats::default(),
        }
    }

    /// How many slots the batch has.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The size of each slot's buffer.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Let `send` coalesce the datagrams of a batch that go to one peer
    /// with one length into a single UDP GSO send (`UDP_SEGMENT`), when the
    /// kernel supports it on `fd` ([`gso::supported`]). Returns whether it
    /// does. A send the kernel refuses as GSO is retried one datagram at a
    /// time, and if that works GSO stays off for this batch.
    pub fn enable_gso(&mut self, fd: RawFd) -> bool {
        // The grouping keeps slot indexes in 16 bits (`slot_of`).
        if self.capacity > 1 << 16 || !gso::supported(fd) {
            return false;
        }
        let capacity = self.capacity;
        self.gso = true;
        self.order = vec![0; capacity];
        self.groups = Vec::with_capacity(capacity);
        self.group_iovecs = vec![zeroed_iovec(); capacity];
        self.group_headers = vec![zeroed_header(); capacity];
        self.group_controls = vec![[0; 4]; capacity];
        true
    }

    /// Whether `send` is coalescing with GSO (it stops after a refusal).
    pub fn gso_enabled(&self) -> bool {
        self.gso
    }

    /// What `send` has done since the last call, resetting the counters.
    pub fn take_stats(&mut self) -> UdpStats {
        std::mem::take(&mut self.stats)
    }

    /// The whole buffer of slot `index`, to write a datagram into; `None`
    /// past the last slot.
    pub fn buffer_mut(&mut self, index: usize) -> Option<&mut [u8]> {
        let start = index.checked_mul(self.slot_size)?;
        self.data.get_mut(start..start.checked_add(self.slot_size)?)
    }

    /// The whole buffers of slots `index` and `index + 1`; `None` unless
    /// both exist.
    pub fn buffer_pair_mut(&mut self, index: usize) -> Option<(&mut [u8], &mut [u8])> {
        let start = index.checked_mul(self.slot_size)?;
        let both = self
            .data
            .get_mut(start..start.checked_add(2usize.checked_mul(self.slot_size)?)?)?;
        Some(both.split_at_mut(self.slot_size))
    }

    /// The datagram in slot `index` (its recorded length); `None` past the
    /// last slot or when the recorded length does not fit the slot.
    pub fn datagram(&self, index: usize) -> Option<&[u8]> {
        let len = *self.lens.get(index)?;
        if len > self.slot_size {
            return None;
        }
        let start = index * self.slot_size;
        self.data.get(start..start + len)
    }

    /// The peer address of slot `index`: where its datagram came from or
    /// goes to; `None` for no address or a family other than IPv4/IPv6.
    pub fn address(&self, index: usize) -> Option<SocketAddr> {
        self.addrs.get(index).and_then(sockaddr::from_sockaddr)
    }

    /// Record that slot `index` holds `len` bytes for `to` (`None`: no
    /// address, for a connected socket). Returns false when there is no
    /// such slot, or when `len` does not fit it: such a slot is then
    /// dropped by `send` and reported unsent, never sent cut or empty.
    pub fn set(&mut self, index: usize, len: usize, to: Option<SocketAddr>) -> bool {
        let (Some(slot_len), Some(storage)) = (self.lens.get_mut(index), self.addrs.get_mut(index))
        else {
            return false;
        };
        match to {
            Some(addr) => {
                sockaddr::to_sockaddr(addr, storage);
            }
            None => *storage = sockaddr::empty(),
        }
        *slot_len = len;
        len <= self.slot_size
    }

    /// Whether slot `index` may be sent: its length fits its buffer.
    fn sendable(&self, index: usize) -> bool {
        self.lens
            .get(index)
            .is_some_and(|&len| len <= self.slot_size)
    }

    /// Point the C headers of slots `from..to` at their buffers and
    /// addresses: for receiving (whole buffers, room for any address) or
    /// sending (recorded lengths and addresses).
    fn prepare(&mut self, from: usize, to: usize, for_send: bool) {
        let data = self.data.as_mut_ptr();
        let slot_size = self.slot_size;
        let slots = self
            .iovecs
            .iter_mut()
            .zip(self.headers.iter_mut())
            .zip(self.addrs.iter_mut())
            .zip(self.lens.iter())
            .enumerate()
            .take(to)
            .skip(from);
        for (index, (((iovec, header), addr), &len)) in slots {
            // SAFETY: index < capacity, so the offset stays inside `data`.
            iovec.iov_base = unsafe { data.add(index * slot_size) }.cast();
            iovec.iov_len = if for_send {
                len.min(slot_size)
            } else {
                slot_size
            };
            let (name, name_len) = if for_send {
                sockaddr::name_of(addr)
            } else {
                (
                    (addr as *mut libc::sockaddr_storage).cast(),
                    size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                )
            };
            header.msg_hdr.msg_name = name;
            header.msg_hdr.msg_namelen = name_len;
            header.msg_hdr.msg_iov = iovec as *mut libc::iovec;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_control = std::ptr::null_mut();
            header.msg_hdr.msg_controllen = 0;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
    }

    /// Receive queued datagrams into slots `from..capacity` with one
    /// `recvmmsg(fd, .., flags)`, recording each one's length and source
    /// address; returns how many arrived. With `libc::MSG_DONTWAIT`,
    /// nothing queued is the error `WouldBlock`.
    pub fn receive(&mut self, fd: RawFd, from: usize, flags: libc::c_int) -> io::Result<usize> {
        let wanted = self.capacity.saturating_sub(from);
        if wanted == 0 {
            return Ok(0);
        }
        self.prepare(from, self.capacity, false);
        let Some(headers) = self.headers.get_mut(from..) else {
            return Ok(0);
        };
        // SAFETY: each of the `wanted` headers points at one iovec over its
        // slot's `slot_size` bytes of `data` and at its slot's
        // sockaddr_storage with that storage's size; all of them live in
        // `self`, which the call borrows exclusively, and the kernel writes
        // only within those bounds. A null timeout is allowed.
        let received = unsafe {
            libc::recvmmsg(
                fd,
                headers.as_mut_ptr(),
                wanted as libc::c_uint,
                flags,
                std::ptr::null_mut(),
            )
        };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        let received = usize::try_from(received).unwrap_or(0).min(wanted);
        let slot_size = self.slot_size;
        for (len, header) in self
            .lens
            .iter_mut()
            .zip(self.headers.iter())
            .skip(from)
            .take(received)
        {
            *len = (header.msg_len as usize).min(slot_size);
        }
        Ok(received)
    }

    /// Send slots `0..count` (each to its recorded address) with
    /// `sendmmsg(fd, .., flags)`, as few calls as the kernel allows, as
    /// GSO sends where enabled and more than one datagram goes to a peer.
    /// Calls `outcome(slot, sent)` once per slot; returns how many were
    /// sent. A datagram the kernel refuses (full buffer with
    /// `MSG_DONTWAIT`, unreachable peer) is skipped so the rest still go
    /// out; an interrupted call is retried.
    pub fn send(
        &mut self,
        fd: RawFd,
        count: usize,
        flags: libc::c_int,
        mut outcome: impl FnMut(usize, bool),
    ) -> usize {
        let count = count.min(self.capacity);
        if self.gso && count > 1 {
            return self.send_grouped(fd, count, flags, &mut outcome);
        }
        self.send_each(fd, count, flags, &mut outcome)
    }

    /// Send slots `0..count` as one datagram per message.
    fn send_each(
        &mut self,
        fd: RawFd,
        count: usize,
        flags: libc::c_int,
        outcome: &mut impl FnMut(usize, bool),
    ) -> usize {
        let mut sent = 0usize;
        let mut next = 0usize;
        while next < count {
            if !self.sendable(next) {
                outcome(next, false);
                next += 1;
                continue;
            }
            let mut end = next + 1;
            while end < count && self.sendable(end) {
                end += 1;
            }
            self.prepare(next, end, true);
            while next < end {
                let Some(headers) = self.headers.get_mut(next..end) else {
                    break;
                };
                match send_headers(fd, headers, flags) {
                    HeadersSent::Some(done) => {
                        for slot in next..next + done {
                            outcome(slot, true);
                        }
                        sent += done;
                        next += done;
                    }
                    HeadersSent::Interrupted => {}
                    HeadersSent::Refused(_) => {
                        outcome(next, false);
                        next += 1;
                    }
                }
            }
            next = end;
        }
        sent
    }

    /// Group slots `0..count` by peer and length, then send each group as
    /// one message: a GSO send when it holds several datagrams.
    fn send_grouped(
        &mut self,
        fd: RawFd,
        count: usize,
        flags: libc::c_int,
        outcome: &mut impl FnMut(usize, bool),
    ) -> usize {
        self.plan_groups(count);
        if self.groups.len() == count {
            // Every datagram goes to a different peer (or has a different
            // length): nothing to coalesce.
            return self.send_each(fd, count, flags, outcome);
        }
        self.prepare_groups();
        let groups = self.groups.len();
        let mut sent_groups = 0usize;
        let mut sent = 0usize;
        while sent_groups < groups {
            let (start, members) = self.groups.get(sent_groups).copied().unwrap_or((0, 0));
            if members == 1 && !self.sendable(self.slot_at(start)) {
                outcome(self.slot_at(start), false);
                sent_groups += 1;
                continue;
            }
            // Up to (not including) the next group that must not be sent.
            let mut end = sent_groups + 1;
            while let Some(&(start, members)) = self.groups.get(end) {
                if members == 1 && !self.sendable(self.slot_at(start)) {
                    break;
                }
                end += 1;
            }
            let Some(headers) = self.group_headers.get_mut(sent_groups..end) else {
                break;
            };
            let errno = match send_headers(fd, headers, flags) {
                HeadersSent::Some(done) => {
                    let done = sent_groups + done;
                    for &(start, members) in self.groups.iter().take(done).skip(sent_groups) {
                        sent += members;
                        if members > 1 {
                            self.stats.gso_sends += 1;
                            self.stats.gso_segments += members as u64;
                        }
                        for position in start..start + members {
                            outcome(self.slot_at(position), true);
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
            if members > 1 {
                self.stats.gso_fallbacks += 1;
                let mut delivered = 0usize;
                for position in start..start + members {
                    let slot = self.slot_at(position);
                    let ok = self.send_slot(fd, slot, flags);
                    delivered += usize::from(ok);
                    outcome(slot, ok);
                }
                let full = matches!(errno, libc::EAGAIN | libc::ENOBUFS | libc::ENOMEM);
                if delivered == members && !full {
                    // Plain sends work where the GSO send did not, and not
                    // because a full buffer emptied: this socket's path
                    // cannot take GSO, so stop trying.
                    log::warn!("UDP GSO refused on fd {fd}; datagrams are sent one by one");
                    self.gso = false;
                }
                sent += delivered;
            } else {
                outcome(self.slot_at(start), false);
            }
            sent_groups += 1;
        }
        sent
    }

    /// Send slot `slot` alone with `sendto`; whether the kernel took it.
    fn send_slot(&mut self, fd: RawFd, slot: usize, flags: libc::c_int) -> bool {
        let len = match self.lens.get(slot) {
            Some(&len) if len <= self.slot_size => len,
            _ => return false,
        };
        let start = slot * self.slot_size;
        let (Some(bytes), Some(storage)) =
            (self.data.get(start..start + len), self.addrs.get_mut(slot))
        else {
            return false;
        };
        if !sockaddr::is_empty(storage) && sockaddr::from_sockaddr(storage).is_none() {
            return false;
        }
        send_one(fd, bytes, storage, flags).is_ok()
    }

    /// The slot at `position` of the sorted order.
    fn slot_at(&self, position: usize) -> usize {
        self.order.get(position).map_or(0, |&key| slot_of(key))
    }

    /// Where slot `slot` goes, for grouping: `Some(None)` for no address
    /// (a connected socket), `None` for an address that cannot be read,
    /// which never joins a group.
    fn destination(&self, slot: usize) -> Option<Option<SocketAddr>> {
        let storage = self.addrs.get(slot)?;
        if sockaddr::is_empty(storage) {
            return Some(None);
        }
        sockaddr::from_sockaddr(storage).map(Some)
    }

    /// Sort slots `0..count` by peer and length (each peer's datagrams
    /// keep their order) and cut the order into GSO groups of one peer,
    /// one length, at most [`MAX_SEGMENTS`] datagrams and [`MAX_BYTES`]
    /// bytes.
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
            let peer = self.destination(first);
            let mut members = 1usize;
            // An empty datagram never joins a group: a segment size of 0
            // would mean "no GSO" to the kernel and send one datagram. Nor
            // does one that must not be sent.
            while len > 0
                && len <= self.slot_size
                && peer.is_some()
                && start + members < count
                && members < MAX_SEGMENTS
                && (members + 1) * len <= MAX_BYTES
            {
                let next = self.slot_at(start + members);
                if self.lens.get(next) != Some(&len) || self.destination(next) != peer {
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
        let slot_size = self.slot_size;
        for (group, &(start, members)) in self.groups.iter().enumerate() {
            let first = self.order.get(start).map_or(0, |&key| slot_of(key));
            for position in start..start + members {
                let slot = self.order.get(position).map_or(0, |&key| slot_of(key));
                let len = self.lens.get(slot).copied().unwrap_or(0);
                if let Some(iovec) = self.group_iovecs.get_mut(position) {
                    // SAFETY: slot < capacity, so the offset stays inside
                    // `data`.
                    iovec.iov_base = unsafe { data.add(slot * slot_size) }.cast();
                    iovec.iov_len = len.min(slot_size);
                }
            }
            let (Some(header), Some(addr), Some(control)) = (
                self.group_headers.get_mut(group),
                self.addrs.get_mut(first),
                self.group_controls.get_mut(group),
            ) else {
                continue;
            };
            let (name, name_len) = sockaddr::name_of(addr);
            header.msg_hdr.msg_name = name;
            header.msg_hdr.msg_namelen = name_len;
            header.msg_hdr.msg_iov = self
                .group_iovecs
                .get_mut(start)
                .map_or(std::ptr::null_mut(), |iovec| iovec as *mut libc::iovec);
            header.msg_hdr.msg_iovlen = members;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
            if members > 1 {
                // A group's length is at most the slot size, far below
                // 64 KiB (the grouping checks both).
                let segment = self.lens.get(first).copied().unwrap_or(0) as u16;
                header.msg_hdr.msg_control = control.as_mut_ptr().cast();
                header.msg_hdr.msg_controllen = gso::write_segment_control(control, segment);
            } else {
                header.msg_hdr.msg_control = std::ptr::null_mut();
                header.msg_hdr.msg_controllen = 0;
            }
        }
    }
}

/// The slot index in the low 16 bits of a sort key (see `plan_groups`;
/// `enable_gso` refuses batches of more than 65,536 slots).
fn slot_of(key: u64) -> usize {
    (key & 0xffff) as usize
}

/// One `sendmmsg(fd, .., flags)` of `headers`, each prepared (by
/// `prepare` or `prepare_groups`) to point at buffers, addresses and
/// control messages inside the batch, which outlive the call.
fn send_headers(fd: RawFd, headers: &mut [libc::mmsghdr], flags: libc::c_int) -> HeadersSent {
    // SAFETY: every header was prepared from the batch that owns it and is
    // borrowed for this call: its iovecs cover recorded lengths within
    // their slots, its name is a live sockaddr_storage with its family's
    // length (or null with 0), and its control buffer is a live, aligned
    // `gso::Control` holding `msg_controllen` bytes (or null with 0). The
    // kernel only reads them and writes `msg_len`; the count is the
    // slice's length.
    let result = unsafe {
        libc::sendmmsg(
            fd,
            headers.as_mut_ptr(),
            headers.len() as libc::c_uint,
            flags,
        )
    };
    if result > 0 {
        return HeadersSent::Some((result as usize).min(headers.len()));
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

#[cfg(test)]
mod tests;
