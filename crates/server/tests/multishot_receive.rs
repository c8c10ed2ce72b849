//! The multishot receive of our glommio patch (vendor/README.md,
//! "A multishot receive"), which every UDP listener waits with: each
//! datagram arrives whole with its sender, over IPv4 and IPv6; one longer
//! than a buffer is marked truncated; a burst larger than the ring of
//! buffers ends the request in the kernel, and the next wait arms it again
//! without losing what the socket still holds; a disarmed receive (the
//! coalescing pause) still hands over what it took before.

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::time::Duration;

use glommio::net::{MultishotReceiver, UdpSocket};
use glommio::{LocalExecutorBuilder, timer};

/// The longest datagram a buffer holds whole.
const MAX_DATAGRAM: usize = 512;

/// Run `body` on a fresh executor with little io_memory, and return what
/// it returns.
fn on_executor<T, F>(body: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + 'static,
{
    LocalExecutorBuilder::default()
        .io_memory(256 << 10)
        .spawn(body)
        .expect("executor")
        .join()
        .expect("executor thread")
}

/// Take every queued datagram as (payload, sender, truncated).
fn take_all(receiver: &mut MultishotReceiver) -> Vec<(Vec<u8>, Option<SocketAddr>, bool)> {
    let mut taken = Vec::new();
    receiver.take(|datagram| {
        taken.push((datagram.payload.to_vec(), datagram.from, datagram.truncated));
        true
    });
    taken
}

/// Wait (bounded) until `want` datagrams were taken.
async fn collect(
    receiver: &mut MultishotReceiver,
    want: usize,
) -> Vec<(Vec<u8>, Option<SocketAddr>, bool)> {
    let mut all = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while all.len() < want {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {want} datagrams arrived",
            all.len()
        );
        let waited = futures_lite::future::or(async { Some(receiver.ready().await) }, async {
            timer::sleep(Duration::from_millis(200)).await;
            None
        })
        .await;
        if let Some(result) = waited {
            result.expect("the kernel has a multishot receive");
        }
        all.extend(take_all(receiver));
    }
    all
}

#[test]
fn datagrams_arrive_whole_with_their_sender_over_ipv4_and_ipv6() {
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let Ok(probe) = StdSocket::bind(bind) else {
            eprintln!("skipping {bind}: cannot bind it here");
            continue;
        };
        drop(probe);
        let got = on_executor(move || async move {
            let socket = UdpSocket::bind(bind).unwrap();
            let to = socket.local_addr().unwrap();
            let mut receiver = socket.recv_multishot(8, MAX_DATAGRAM).expect("multishot");
            let sender = StdSocket::bind(bind).unwrap();
            let from = sender.local_addr().unwrap();
            for index in 0..5u8 {
                sender.send_to(&[index; 33], to).unwrap();
            }
            let all = collect(&mut receiver, 5).await;
            drop(receiver);
            (all, from)
        });
        let (all, from) = got;
        let mut payloads: Vec<_> = all.iter().map(|(p, _, _)| p.clone()).collect();
        payloads.sort();
        assert_eq!(payloads, (0..5u8).map(|i| vec![i; 33]).collect::<Vec<_>>());
        for (_, sender, truncated) in &all {
            assert_eq!(*sender, Some(from), "{bind}");
            assert!(!truncated);
        }
    }
}

#[test]
fn a_datagram_longer_than_a_buffer_is_marked_truncated() {
    let all = on_executor(|| async {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        let mut receiver = socket.recv_multishot(4, MAX_DATAGRAM).expect("multishot");
        let sender = StdSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(&[7; 2000], to).unwrap();
        sender.send_to(&[8; 10], to).unwrap();
        collect(&mut receiver, 2).await
    });
    let long = all
        .iter()
        .find(|(p, _, _)| p[0] == 7)
        .expect("the long one");
    assert!(long.2, "marked truncated");
    assert_eq!(long.0.len(), MAX_DATAGRAM, "as much as fits");
    let short = all
        .iter()
        .find(|(p, _, _)| p[0] == 8)
        .expect("the short one");
    assert!(!short.2);
    assert_eq!(short.0, vec![8; 10]);
}

#[test]
fn a_burst_larger_than_the_buffers_is_all_received_after_rearming() {
    let (all, rearmed) = on_executor(|| async {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        let mut receiver = socket.recv_multishot(4, MAX_DATAGRAM).expect("multishot");
        // Let the request reach the kernel, then send more than its
        // four buffers hold before taking any.
        futures_lite::future::or(
            async {
                let _ = receiver.ready().await;
            },
            timer::sleep(Duration::from_millis(50)),
        )
        .await;
        let sender = StdSocket::bind("127.0.0.1:0").unwrap();
        for index in 0..40u8 {
            sender.send_to(&[index; 20], to).unwrap();
        }
        timer::sleep(Duration::from_millis(50)).await;
        let all = collect(&mut receiver, 40).await;
        (all, receiver.ended_by_kernel())
    });
    let mut firsts: Vec<u8> = all.iter().map(|(p, _, _)| p[0]).collect();
    firsts.sort_unstable();
    assert_eq!(
        firsts,
        (0..40u8).collect::<Vec<_>>(),
        "every datagram, once"
    );
    assert!(
        rearmed >= 1,
        "the kernel ended the request when its buffers ran out"
    );
}

#[test]
fn a_disarmed_receive_still_hands_over_what_it_took() {
    let (before, after, ended) = on_executor(|| async {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        let mut receiver = socket.recv_multishot(8, MAX_DATAGRAM).expect("multishot");
        let sender = StdSocket::bind("127.0.0.1:0").unwrap();
        sender.send_to(b"one", to).unwrap();
        let before = collect(&mut receiver, 1).await;
        sender.send_to(b"two", to).unwrap();
        // Whatever the armed request took before the cancellation
        // reaches the kernel is queued; the rest stays in the socket
        // and arrives once the next wait arms the receive again.
        receiver.disarm();
        timer::sleep(Duration::from_millis(20)).await;
        let after = collect(&mut receiver, 1).await;
        (before, after, receiver.ended_by_kernel())
    });
    assert_eq!(before[0].0, b"one");
    assert_eq!(after[0].0, b"two");
    assert_eq!(ended, 0, "a disarm is not the kernel ending the request");
}
