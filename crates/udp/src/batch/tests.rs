//! Loopback tests of [`Batch`]: batch receive with source addresses, plain
//! and GSO sends (addressed and connected), the kernel's GSO limits, the
//! fallback when GSO is refused, slots that must not be sent, and no
//! allocation per batch.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use super::*;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// The slot size the server uses.
const SLOT: usize = 4096;

fn receiver() -> UdpSocket {
    receiver_on("127.0.0.1:0")
}

fn receiver_on(addr: &str) -> UdpSocket {
    let socket = UdpSocket::bind(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    socket
}

/// Send slots `0..count` the way the server does, without per-slot
/// outcomes.
fn send(batch: &mut Batch, fd: RawFd, count: usize) -> usize {
    batch.send(fd, count, libc::MSG_DONTWAIT, |_, _| {})
}

/// Fill slot `index` with `len` bytes that name the slot, for `to`.
fn put(batch: &mut Batch, index: usize, len: usize, to: &UdpSocket) {
    let buffer = batch.buffer_mut(index).unwrap();
    buffer[..len].fill(index as u8);
    buffer[0] = (index >> 8) as u8;
    assert!(batch.set(index, len, Some(to.local_addr().unwrap())));
}

fn expect(from: &UdpSocket, slots: impl IntoIterator<Item = (usize, usize)>) {
    let mut buf = vec![0u8; SLOT];
    for (index, len) in slots {
        let (got, _) = from.recv_from(&mut buf).unwrap();
        let mut want = vec![index as u8; len];
        want[0] = (index >> 8) as u8;
        assert_eq!(&buf[..got], &want[..], "datagram of slot {index}");
    }
    from.set_nonblocking(true).unwrap();
    assert!(from.recv_from(&mut buf).is_err(), "nothing more arrived");
}

/// Whether this kernel takes UDP GSO; prints why a test is skipped if not.
fn gso_or_skip(socket: &UdpSocket, test: &str) -> bool {
    if gso::supported(socket.as_raw_fd()) {
        return true;
    }
    eprintln!("{test} skipped: the kernel refuses UDP_SEGMENT (GSO needs Linux 4.18+)");
    false
}

#[test]
fn batch_receive_and_plain_send_over_loopback() {
    for local in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(server) = UdpSocket::bind(local) else {
            eprintln!("{local} skipped: no such loopback on this host");
            continue;
        };
        server.set_nonblocking(true).unwrap();
        let client = receiver_on(local);
        let other = receiver_on(local);
        let mut batch = Batch::new(8, 64);
        let err = batch
            .receive(server.as_raw_fd(), 0, libc::MSG_DONTWAIT)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "nothing queued");
        for index in 0..5u8 {
            let from = if index == 3 { &other } else { &client };
            from.send_to(&[index; 3], server.local_addr().unwrap())
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        // Into slots 1.., as the server does after glommio took slot 0.
        let received = batch
            .receive(server.as_raw_fd(), 1, libc::MSG_DONTWAIT)
            .unwrap();
        assert_eq!(received, 5);
        for index in 0..5 {
            assert_eq!(batch.datagram(index + 1), Some(&[index as u8; 3][..]));
            let from = if index == 3 { &other } else { &client };
            assert_eq!(batch.address(index + 1), Some(from.local_addr().unwrap()));
        }
        // Echo them back with one sendmmsg, reporting each slot.
        for index in 1..6 {
            let addr = batch.address(index);
            batch.buffer_mut(index).unwrap()[..2].copy_from_slice(&[0xee, index as u8]);
            assert!(batch.set(index, 2, addr));
        }
        batch.set(0, 1, Some(client.local_addr().unwrap()));
        let mut outcomes = Vec::new();
        let sent = batch.send(server.as_raw_fd(), 6, libc::MSG_DONTWAIT, |slot, ok| {
            outcomes.push((slot, ok));
        });
        assert_eq!(sent, 6);
        assert_eq!(
            outcomes,
            (0..6).map(|slot| (slot, true)).collect::<Vec<_>>()
        );
        let mut buf = [0u8; 16];
        let (len, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(len, 1, "slot 0");
        for index in [1u8, 2, 3, 5] {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[0xee, index]);
        }
        let (len, _) = other.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], &[0xee, 4]);
        crate::send_to(server.as_raw_fd(), b"one", client.local_addr().unwrap()).unwrap();
        let (len, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"one");
    }
}

#[test]
fn a_slot_whose_length_does_not_fit_is_reported_unsent_never_sent_empty() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = receiver();
    for gso in [false, true] {
        let mut batch = Batch::new(8, 32);
        if gso && !gso_or_skip(&server, "the GSO half") {
            continue;
        }
        if gso {
            assert!(batch.enable_gso(server.as_raw_fd()));
        }
        for index in 0..6 {
            put(&mut batch, index, 10, &client);
        }
        assert!(!batch.set(2, 33, Some(client.local_addr().unwrap())));
        assert!(
            !batch.set(8, 10, Some(client.local_addr().unwrap())),
            "no slot 8"
        );
        assert_eq!(batch.datagram(2), None);
        let mut unsent = Vec::new();
        let sent = batch.send(server.as_raw_fd(), 6, libc::MSG_DONTWAIT, |slot, ok| {
            if !ok {
                unsent.push(slot);
            }
        });
        assert_eq!((sent, unsent), (5, vec![2]), "gso: {gso}");
        // One GSO group of five: the bad slot did not split the order.
        expect(&client, [0, 1, 3, 4, 5].map(|index| (index, 10)));
        client.set_nonblocking(false).unwrap();
    }
}

#[test]
fn gso_send_arrives_as_separate_datagrams() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    if !gso_or_skip(&server, "gso_send_arrives_as_separate_datagrams") {
        return;
    }
    let client = receiver();
    let mut batch = Batch::new(8, 64);
    assert!(batch.enable_gso(server.as_raw_fd()));
    for index in 0..6 {
        put(&mut batch, index, 33, &client);
    }
    assert_eq!(send(&mut batch, server.as_raw_fd(), 6), 6);
    assert_eq!(
        batch.take_stats(),
        UdpStats {
            gso_sends: 1,
            gso_segments: 6,
            gso_fallbacks: 0
        }
    );
    expect(&client, (0..6).map(|index| (index, 33)));
}

#[test]
fn a_connected_socket_sends_without_addresses_and_groups_by_length() {
    let server = receiver();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(server.local_addr().unwrap()).unwrap();
    let mut batch = Batch::new(8, 64);
    let gso = gso_or_skip(&client, "the GSO half") && batch.enable_gso(client.as_raw_fd());
    let lens = [5usize, 5, 7, 5, 7, 9];
    for (index, &len) in lens.iter().enumerate() {
        batch.buffer_mut(index).unwrap()[..len].fill(index as u8);
        assert!(batch.set(index, len, None));
        assert_eq!(batch.address(index), None);
    }
    let mut outcomes = Vec::new();
    let sent = batch.send(client.as_raw_fd(), 6, 0, |slot, ok| {
        outcomes.push((slot, ok))
    });
    assert_eq!(sent, 6);
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        (0..6).map(|slot| (slot, true)).collect::<Vec<_>>()
    );
    if gso {
        let stats = batch.take_stats();
        assert_eq!((stats.gso_sends, stats.gso_segments), (2, 5), "5 x3, 7 x2");
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..6 {
        let (len, _) = server.recv_from(&mut buf).unwrap();
        got.push(buf[..len].to_vec());
    }
    got.sort();
    let mut want: Vec<Vec<u8>> = lens
        .iter()
        .enumerate()
        .map(|(index, &len)| vec![index as u8; len])
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn gso_coalesces_each_peers_same_length_replies_in_order() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (a, b) = (receiver(), receiver());
    let mut batch = Batch::new(16, SLOT);
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
    assert_eq!(send(&mut batch, server.as_raw_fd(), plan.len()), 9);
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
    let mut batch = Batch::new(100, SLOT);
    assert!(batch.enable_gso(server.as_raw_fd()));
    for index in 0..100 {
        put(&mut batch, index, 10, &client);
    }
    assert_eq!(send(&mut batch, server.as_raw_fd(), 100), 100);
    let stats = batch.take_stats();
    assert_eq!((stats.gso_sends, stats.gso_segments), (2, 100), "64 + 36");
    expect(&client, (0..100).map(|index| (index, 10)));

    let big = receiver();
    for index in 0..20 {
        put(&mut batch, index, 4000, &big);
    }
    assert_eq!(send(&mut batch, server.as_raw_fd(), 20), 20);
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
    let mut batch = Batch::new(8, SLOT);
    assert!(batch.enable_gso(server.as_raw_fd()));
    for index in 0..5 {
        put(&mut batch, index, 50, &client);
    }
    assert_eq!(send(&mut batch, server.as_raw_fd(), 5), 5);
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
    let mut received = Batch::new(32, SLOT);
    let mut replies = Batch::new(32, SLOT);
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
        std::thread::sleep(Duration::from_millis(20));
        let (sent, allocations) = heimdall_testkit::allocations_during(|| {
            let count = received
                .receive(server.as_raw_fd(), 0, libc::MSG_DONTWAIT)
                .unwrap();
            for index in 0..count {
                let addr = received.address(index);
                let len = received.datagram(index).unwrap().len();
                let reply = replies.buffer_mut(index).unwrap();
                reply[..len].fill(index as u8);
                reply[0] = 0;
                replies.set(index, len, addr);
            }
            send(&mut replies, server.as_raw_fd(), count)
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
    let mut batch = Batch::new(8, SLOT);
    assert!(batch.enable_gso(server.as_raw_fd()));
    for index in 0..4 {
        put(&mut batch, index, 30, &a);
    }
    put(&mut batch, 4, 30, &b);
    let mut outcomes = Vec::new();
    let sent = batch.send(server.as_raw_fd(), 5, libc::MSG_DONTWAIT, |slot, ok| {
        outcomes.push((slot, ok));
    });
    assert_eq!(sent, 5);
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        (0..5).map(|slot| (slot, true)).collect::<Vec<_>>()
    );
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
    assert_eq!(send(&mut batch, server.as_raw_fd(), 3), 3);
    assert_eq!(batch.take_stats(), UdpStats::default());
    expect(&a, (0..3).map(|index| (index, 12)));
}

#[test]
fn buffers_past_the_last_slot_do_not_exist() {
    let mut batch = Batch::new(2, 8);
    assert_eq!(batch.buffer_mut(1).map(|buffer| buffer.len()), Some(8));
    assert!(batch.buffer_mut(2).is_none());
    assert!(batch.buffer_pair_mut(0).is_some());
    assert!(batch.buffer_pair_mut(1).is_none());
    assert!(batch.datagram(2).is_none());
    assert!(batch.address(2).is_none());
}
