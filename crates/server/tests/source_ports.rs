//! Upstream source ports and shutdown, end to end on 127.0.0.1 (issue 14):
//! each upstream attempt leaves from its own socket on a port heimdall
//! picks at random in `upstream.source_port_min..=max`; a reply that
//! arrives on another attempt's socket is rejected and counted, as is
//! every other reason of the reply check (a TCP reply to a UDP attempt
//! among them); at shutdown, queries still waiting at the drain limit get
//! SERVFAIL.
//!
//! The upstreams here are plain std sockets on 127.0.0.1 driven by
//! threads, so a test can see every source port and choose where each
//! reply goes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::http::{get_ok, metrics};
use common::{Client, LOOPBACK, Setup, query};
use heimdall_testkit::messages::{a_answer, a_answer_to};
use heimdall_wire::{Message, Rcode, RecordType};

const EDNS: Option<u16> = Some(1232);

/// A scripted upstream on 127.0.0.1: `handle` sees each query with its
/// source and the socket to answer from, until the test drops it.
struct ScriptedUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptedUpstream {
    fn start(mut handle: impl FnMut(&UdpSocket, &[u8], SocketAddr) + Send + 'static) -> Self {
        let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopping.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    assert_eq!(from.ip(), LOOPBACK);
                    handle(&socket, &buf[..len], from);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ScriptedUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Send `bytes` to `to`, which must be on 127.0.0.1.
fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    assert_eq!(to.ip(), LOOPBACK, "tests only send to 127.0.0.1");
    socket.send_to(bytes, to).unwrap();
}

/// The value of an unlabelled-but-`core` metric summed over cores.
fn metric(control: SocketAddr, name: &str) -> f64 {
    let parsed = metrics(&get_ok(control, "/metrics"));
    let family = parsed
        .family(name)
        .unwrap_or_else(|| panic!("no {name} in /metrics"));
    family.samples.iter().map(|sample| sample.value).sum()
}

/// The source ports of 50 sequential misses with `upstream.socket_uses`
/// set to `uses`, after checking each is in the configured range (one
/// outside the kernel's ephemeral range, so heimdall, not the kernel,
/// chose them) and none is a port heimdall listens on. Also returns the
/// open-socket gauge once the queries are done.
fn ports_of_sequential_misses(uses: u32) -> (Vec<u16>, f64) {
    const QUERIES: usize = 50;
    const RANGE: (u16, u16) = (2000, 30000);
    let (ports_tx, ports_rx) = std::sync::mpsc::channel();
    let upstream = ScriptedUpstream::start(move |socket, query, from| {
        let _ = ports_tx.send(from.port());
        send(socket, &a_answer(query, 1, 300), from);
    });
    let mut config = Setup::new(&[upstream.addr]).config();
    config.upstream.source_port_min = RANGE.0;
    config.upstream.source_port_max = RANGE.1;
    config.upstream.socket_uses = uses;
    let server = common::start_server(&config);
    let control = server.control_addr();
    let client = server.client();
    for n in 0..QUERIES {
        let name = format!("host-{n}.ports.test.");
        let reply = client.exchange(&query(n as u16, &name, RecordType::A, EDNS));
        assert_eq!(reply.message().rcode(), Rcode::NOERROR);
    }
    let ports: Vec<u16> = ports_rx.try_iter().collect();
    assert_eq!(ports.len(), QUERIES, "one upstream query per miss");
    for port in &ports {
        assert!(
            (RANGE.0..=RANGE.1).contains(port),
            "port {port} outside the range"
        );
        assert_ne!(*port, server.addr.port(), "the DNS listen port");
        assert_ne!(*port, control.port(), "the control port");
    }
    let opened = metric(control, "heimdall_upstream_sockets_opened_total");
    let distinct: HashSet<u16> = ports.iter().copied().collect();
    assert!(opened >= distinct.len() as f64, "{opened} sockets opened");
    // Give the last retirements a moment to land.
    std::thread::sleep(Duration::from_millis(50));
    let open = metric(control, "heimdall_upstream_sockets_open");
    server.stop();
    (ports, open)
}

/// Pairs of consecutive ports closer than 16: a sequential allocator
/// makes nearly every pair one.
fn near_sequential(ports: &[u16]) -> usize {
    ports
        .windows(2)
        .filter(|pair| pair[0] != pair[1] && pair[0].abs_diff(pair[1]) <= 16)
        .count()
}

/// `socket_uses: 1` (as Unbound): 50 misses leave from 50 fresh sockets,
/// nearly all on distinct ports, none sequential; each socket closes as
/// its query ends.
#[test]
fn a_fresh_random_port_for_every_attempt() {
    let (ports, open) = ports_of_sequential_misses(1);
    let distinct: HashSet<u16> = ports.iter().copied().collect();
    assert!(
        distinct.len() >= 45,
        "{} distinct ports: {ports:?}",
        distinct.len()
    );
    assert!(near_sequential(&ports) <= 2, "sequential ports: {ports:?}");
    assert_eq!(open, 0.0, "every socket closed with its query");
}

/// `socket_uses: 4`: a socket carries at most four attempts,
/// one at a time, then a fresh random port replaces it.
#[test]
fn a_socket_carries_at_most_socket_uses_attempts() {
    let (ports, open) = ports_of_sequential_misses(4);
    let mut uses: HashMap<u16, usize> = HashMap::new();
    for port in &ports {
        *uses.entry(*port).or_default() += 1;
    }
    assert!(uses.values().all(|&n| n <= 4), "{uses:?}");
    assert!(
        uses.len() >= 50 / 4,
        "{} distinct ports: {ports:?}",
        uses.len()
    );
    assert!(near_sequential(&ports) <= 2, "sequential ports: {ports:?}");
    assert!(open <= 1.0, "{open} sockets left open");
}

/// Two queries in flight: each one's reply sent first to the *other*
/// attempt's socket is rejected (and counted), so neither client gets the
/// other's answer; the replies on the right sockets are then accepted.
#[test]
fn a_reply_on_another_attempts_socket_is_rejected_and_counted() {
    let upstream = ScriptedUpstream::start({
        let mut held: HashMap<String, (Vec<u8>, SocketAddr)> = HashMap::new();
        move |socket, query, from| {
            let message = Message::parse(query).unwrap();
            let name = message.question().unwrap().name.to_string().to_lowercase();
            held.insert(name, (query.to_vec(), from));
            if held.len() < 2 {
                return;
            }
            let (a_query, a_from) = held.remove("a.swap.test.").unwrap();
            let (b_query, b_from) = held.remove("b.swap.test.").unwrap();
            // Swapped: A's answer to B's socket and B's to A's.
            send(socket, &a_answer(&a_query, 1, 300), b_from);
            send(socket, &a_answer(&b_query, 2, 300), a_from);
            std::thread::sleep(Duration::from_millis(50));
            send(socket, &a_answer(&a_query, 1, 300), a_from);
            send(socket, &a_answer(&b_query, 2, 300), b_from);
        }
    });
    let server = Setup {
        timeout: "3s",
        attempts: 1,
        ..Setup::new(&[upstream.addr])
    }
    .start();
    let control = server.control_addr();
    let (first, second) = (server.client(), server.client());
    let a = query(1, "a.swap.test.", RecordType::A, EDNS);
    let b = query(2, "b.swap.test.", RecordType::A, EDNS);
    first.send(&a);
    second.send(&b);
    let a_reply = first.reply_to(&a);
    let b_reply = second.reply_to(&b);
    assert_eq!(a_reply.message().answers().count(), 1, "A's own answer");
    assert_eq!(b_reply.message().answers().count(), 2, "B's own answer");
    assert!(
        metric(control, "heimdall_upstream_replies_mismatched_total") >= 2.0,
        "the two replies on the wrong sockets are counted"
    );
    let parsed = metrics(&get_ok(control, "/metrics"));
    let wrong_socket = parsed
        .value(
            "heimdall_upstream_replies_rejected_total",
            &[("core", "0"), ("reason", "wrong_socket")],
        )
        .unwrap();
    assert_eq!(wrong_socket, 2.0, "counted by reason");
    let stats: serde_json::Value = serde_json::from_str(&get_ok(control, "/stats")).unwrap();
    assert_eq!(
        stats["totals"]["upstream_replies"]["rejected"]["wrong_socket"],
        2
    );
    let reports = server.stop();
    assert!(common::total(&reports, |r| r.resolver.upstream_mismatched) >= 2);
}

/// Stopping with queries in flight to an upstream that never answers: at
/// the drain limit (`server.shutdown_grace`) every waiting client gets
/// SERVFAIL, none is left without an answer, and nothing is abandoned.
#[test]
fn queries_waiting_at_the_drain_limit_get_servfail() {
    const QUERIES: u16 = 40;
    let upstream = ScriptedUpstream::start(|_, _, _| {});
    let mut config = Setup {
        timeout: "5s",
        attempts: 2,
        ..Setup::new(&[upstream.addr])
    }
    .config();
    config.server.shutdown_grace = Duration::from_millis(300);
    let server = common::start_server(&config);
    let client = Client::new(server.addr);
    for id in 0..QUERIES {
        let name = format!("slow-{id}.drain.test.");
        client.send(&query(id, &name, RecordType::A, EDNS));
    }
    // Let them all reach the upstream before the stop.
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let stopping = std::thread::spawn(move || server.stop());
    let mut answered = HashSet::new();
    while answered.len() < usize::from(QUERIES) {
        let Some(bytes) = client.recv_within(Duration::from_secs(3)) else {
            break;
        };
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.rcode(), Rcode::SERVFAIL);
        answered.insert(message.id());
    }
    let reports = stopping.join().unwrap();
    assert_eq!(
        answered.len(),
        usize::from(QUERIES),
        "every client answered"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the drain limit, not the upstream timeout, ended the wait"
    );
    assert_eq!(
        reports.iter().map(|r| r.abandoned_inflight).sum::<usize>(),
        0
    );
}

/// `upstream.max_sockets: 2` with five misses at once: two leave at once,
/// two wait for a socket (the queue holds as many as the bound; counted)
/// and leave as the first ones end, and the fifth is dropped (counted)
/// and sent again at its deadline; every client is answered.
#[test]
fn at_the_socket_bound_attempts_wait_and_are_counted() {
    let upstream = ScriptedUpstream::start(|socket, query, from| {
        // One at a time, each after a pause: the sockets stay busy.
        std::thread::sleep(Duration::from_millis(100));
        send(socket, &a_answer(query, 1, 300), from);
    });
    let mut config = Setup {
        timeout: "1s",
        attempts: 2,
        ..Setup::new(&[upstream.addr])
    }
    .config();
    config.upstream.max_sockets = 2;
    let server = common::start_server(&config);
    let control = server.control_addr();
    let clients: Vec<Client> = (0..5).map(|_| server.client()).collect();
    let queries: Vec<Vec<u8>> = (0..5u16)
        .map(|n| query(n, &format!("busy-{n}.bound.test."), RecordType::A, EDNS))
        .collect();
    for (client, query) in clients.iter().zip(&queries) {
        client.send(query);
    }
    for (client, query) in clients.iter().zip(&queries) {
        let reply = client.reply_to(query);
        assert_eq!(reply.message().rcode(), Rcode::NOERROR);
    }
    assert_eq!(metric(control, "heimdall_upstream_socket_waits_total"), 2.0);
    assert_eq!(
        metric(control, "heimdall_upstream_socket_wait_drops_total"),
        1.0
    );
    assert!(metric(control, "heimdall_upstream_sockets_open") <= 2.0);
    server.stop();
}

/// The COOKIE option data of `message` (heimdall's upstream query).
fn cookie_of(message: &[u8]) -> Vec<u8> {
    Message::parse(message)
        .unwrap()
        .opt()
        .and_then(|opt| {
            opt.options()
                .find(|o| o.code == heimdall_wire::edns::COOKIE)
        })
        .map(|option| option.data.to_vec())
        .expect("heimdall's upstream queries carry a cookie")
}

/// `reply` (without an OPT record) with one carrying a COOKIE option of
/// `data`.
fn with_cookie(mut reply: Vec<u8>, data: &[u8]) -> Vec<u8> {
    assert_eq!(&reply[10..12], [0, 0], "no additional records yet");
    reply[11] = 1;
    reply.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    reply.extend_from_slice(&(4 + data.len() as u16).to_be_bytes());
    reply.extend_from_slice(&heimdall_wire::edns::COOKIE.to_be_bytes());
    reply.extend_from_slice(&(data.len() as u16).to_be_bytes());
    reply.extend_from_slice(data);
    reply
}

/// Every rejection reason the upstream side can produce over UDP, each
/// from one forged reply before the real one: a wrong ID, a wrong source
/// port, a reply without QR, another question, the question in another
/// letter case (0x20), a DNS cookie that is not ours; and a datagram that
/// does not parse (counted as malformed, apart from the reasons). Each
/// shows in `/metrics` and `/stats`, and the client still gets the real
/// answer. (`wrong_socket` and `wrong_transport` have tests of their own.)
#[test]
fn each_rejection_reason_is_counted_in_metrics() {
    let other = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let upstream = ScriptedUpstream::start(move |socket, query, from| {
        let real = a_answer(query, 1, 300);
        let mut wrong_id = real.clone();
        wrong_id[0] ^= 0x55;
        wrong_id[1] ^= 0xaa;
        send(socket, &wrong_id, from);
        // The right reply, from another port than the one asked.
        send(&other, &real, from);
        let mut not_response = real.clone();
        not_response[2] &= 0x7f;
        send(socket, &not_response, from);
        let mut other_question = a_answer(
            &heimdall_testkit::messages::query("other.reasons.test.", RecordType::A, 0, None),
            1,
            300,
        );
        other_question[..2].copy_from_slice(&real[..2]);
        send(socket, &other_question, from);
        // The question's first letter in the other case (offset 13: after
        // the header and the first label's length).
        let mut other_case = real.clone();
        other_case[13] ^= 0x20;
        send(socket, &other_case, from);
        // Another client cookie than the one heimdall sent.
        let mut not_ours = cookie_of(query);
        not_ours[0] ^= 0xff;
        not_ours.extend_from_slice(b"srvcooki");
        send(socket, &with_cookie(real.clone(), &not_ours), from);
        // Not a DNS message at all: a header cut short.
        send(socket, &real[..7], from);
        std::thread::sleep(Duration::from_millis(20));
        send(socket, &real, from);
    });
    let server = Setup {
        timeout: "2s",
        attempts: 1,
        ..Setup::new(&[upstream.addr])
    }
    .start();
    let control = server.control_addr();
    let client = server.client();
    let reply = client.exchange(&query(7, "probe.reasons.test.", RecordType::A, EDNS));
    assert_eq!(reply.message().rcode(), Rcode::NOERROR);
    assert_eq!(reply.message().answers().count(), 1);
    let parsed = metrics(&get_ok(control, "/metrics"));
    let stats: serde_json::Value = serde_json::from_str(&get_ok(control, "/stats")).unwrap();
    let replies = &stats["totals"]["upstream_replies"];
    for reason in [
        "wrong_id",
        "wrong_source",
        "not_response",
        "wrong_question",
        "wrong_case",
        "wrong_cookie",
    ] {
        let count = parsed
            .value(
                "heimdall_upstream_replies_rejected_total",
                &[("core", "0"), ("reason", reason)],
            )
            .unwrap();
        assert_eq!(count, 1.0, "{reason}");
        assert_eq!(replies["rejected"][reason], 1, "{reason} in /stats");
    }
    assert_eq!(
        metric(control, "heimdall_upstream_replies_mismatched_total"),
        6.0
    );
    assert_eq!(replies["mismatched"], 6);
    assert_eq!(
        metric(control, "heimdall_upstream_replies_malformed_total"),
        1.0,
        "the cut-short datagram"
    );
    assert_eq!(replies["malformed"], 1);
    server.stop();
}

/// A frame of DNS over TCP: the length, then `message`.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut frame = (message.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(message);
    frame
}

/// The lower-cased question name of `message`.
fn question_name(message: &[u8]) -> String {
    let message = Message::parse(message).unwrap();
    message.question().unwrap().name.to_string().to_lowercase()
}

/// The one A record of a NOERROR reply.
fn only_address(reply: &common::Reply) -> Ipv4Addr {
    assert_eq!(reply.message().rcode(), Rcode::NOERROR);
    match &reply.hickory.answers[..] {
        [record] => match record.data {
            hickory_proto::rr::RData::A(address) => address.0,
            ref other => panic!("an A record expected, got {other:?}"),
        },
        other => panic!("one answer expected, got {other:?}"),
    }
}

/// The one rejection reason a UDP-only upstream cannot produce: a reply
/// over TCP whose ID is that of a live UDP attempt to the same upstream
/// address. The upstream serves UDP and TCP on one port of 127.0.0.1. It
/// holds B's UDP query unanswered and answers A's with TC, so heimdall
/// opens a TCP connection to it; down that connection it writes first a
/// reply to B (B's ID, B's question in the exact 0x20 case heimdall sent
/// it in, a forged address), then A's real answer. The forged reply is
/// rejected as `wrong_transport` (in `/metrics` and `/stats`) and nothing
/// of it is used or cached: B's client gets the address B's UDP answer
/// carries, and so does a later client from the cache.
#[test]
fn a_tcp_reply_to_a_udp_attempt_is_rejected_as_wrong_transport() {
    const A_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const B_ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);
    const FORGED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
    let upstream = TransportUpstream::start(move |event| match event {
        Event::Udp { query, from, reply } => match question_name(query).as_str() {
            "a.transport.test." => {
                let mut truncated = a_answer_to(query, A_ADDRESS, 300);
                truncated[2] |= 0x02;
                reply(&truncated, from);
                Vec::new()
            }
            // Held: answered by `answer_b` when the test says.
            "b.transport.test." => Vec::new(),
            other => panic!("unexpected UDP query for {other}"),
        },
        Event::Tcp { query, held_b } => {
            assert_eq!(question_name(query), "a.transport.test.");
            let (b_query, _) = held_b.expect("B's UDP query is held");
            let mut frames = framed(&a_answer_to(b_query, FORGED, 300));
            frames.extend(framed(&a_answer_to(query, A_ADDRESS, 300)));
            frames
        }
    });
    let server = Setup {
        timeout: "2s",
        attempts: 1,
        ..Setup::new(&[upstream.addr])
    }
    .start();
    let control = server.control_addr();
    let (first, second) = (server.client(), server.client());
    let b = query(2, "b.transport.test.", RecordType::A, EDNS);
    second.send(&b);
    assert!(
        common::wait_until(Duration::from_secs(2), || upstream.b_is_held()),
        "B's UDP query reached the upstream"
    );
    let a = query(1, "a.transport.test.", RecordType::A, EDNS);
    let a_reply = first.exchange(&a);
    assert_eq!(only_address(&a_reply), A_ADDRESS, "A's answer over TCP");
    // The forged reply came down the connection before A's answer, and
    // that connection's replies are handled in order: it is counted now.
    let parsed = metrics(&get_ok(control, "/metrics"));
    let wrong_transport = parsed
        .value(
            "heimdall_upstream_replies_rejected_total",
            &[("core", "0"), ("reason", "wrong_transport")],
        )
        .unwrap();
    assert_eq!(wrong_transport, 1.0, "counted by reason");
    assert_eq!(
        parsed.sum("heimdall_upstream_replies_mismatched_total", &[]),
        1.0,
        "and under no other reason"
    );
    upstream.answer_b(B_ADDRESS);
    let b_reply = second.reply_to(&b);
    assert_eq!(
        only_address(&b_reply),
        B_ADDRESS,
        "B's UDP answer, not the forged one"
    );
    // From the cache, without asking the upstream again: still B's own.
    let third = server.client();
    let again = third.exchange(&query(3, "b.transport.test.", RecordType::A, EDNS));
    assert_eq!(
        only_address(&again),
        B_ADDRESS,
        "the forged reply was not cached"
    );
    assert_eq!(upstream.udp_queries(), 2, "A and B, once each");
    let stats: serde_json::Value = serde_json::from_str(&get_ok(control, "/stats")).unwrap();
    let replies = &stats["totals"]["upstream_replies"];
    assert_eq!(replies["rejected"]["wrong_transport"], 1);
    assert_eq!(replies["mismatched"], 1);
    let reports = server.stop();
    assert_eq!(
        common::total(&reports, |r| r.resolver.upstream_truncated),
        1,
        "A's UDP answer was truncated"
    );
    assert_eq!(
        common::total(&reports, |r| r.resolver.upstream_tcp_queries),
        1,
        "and only A went over TCP"
    );
}

/// What [`TransportUpstream`]'s script sees.
enum Event<'a> {
    /// A UDP query from `from`; `reply` sends a datagram back to it.
    Udp {
        query: &'a [u8],
        from: SocketAddr,
        reply: &'a dyn Fn(&[u8], SocketAddr),
    },
    /// A query over TCP, with B's held UDP query (and its source) if it
    /// came; the script returns the bytes to write back (frames).
    Tcp {
        query: &'a [u8],
        held_b: Option<(&'a [u8], SocketAddr)>,
    },
}

/// A UDP query held by the upstream, and where it came from.
type HeldQuery = Arc<Mutex<Option<(Vec<u8>, SocketAddr)>>>;

/// A scripted upstream serving UDP and TCP on one port of 127.0.0.1. It
/// keeps the last UDP query for `b.transport.test.` (for the TCP script,
/// and for [`TransportUpstream::answer_b`]), and counts UDP queries.
struct TransportUpstream {
    addr: SocketAddr,
    udp: UdpSocket,
    held_b: HeldQuery,
    udp_queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TransportUpstream {
    fn start(script: impl Fn(Event<'_>) -> Vec<u8> + Send + Sync + 'static) -> Self {
        // A UDP port whose TCP twin is free too.
        let (udp, listener) = (0..20)
            .find_map(|_| {
                let udp = UdpSocket::bind((LOOPBACK, 0)).unwrap();
                let listener = TcpListener::bind(udp.local_addr().unwrap()).ok()?;
                Some((udp, listener))
            })
            .expect("a port free for both UDP and TCP");
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        let script = Arc::new(script);
        let held_b: HeldQuery = Arc::default();
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let udp_thread = std::thread::spawn({
            let (socket, script) = (udp.try_clone().unwrap(), Arc::clone(&script));
            let (held_b, queries, stop) = (
                Arc::clone(&held_b),
                Arc::clone(&udp_queries),
                Arc::clone(&stop),
            );
            move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    assert_eq!(from.ip(), LOOPBACK);
                    queries.fetch_add(1, Ordering::Relaxed);
                    let query = &buf[..len];
                    if question_name(query) == "b.transport.test." {
                        *held_b.lock().unwrap() = Some((query.to_vec(), from));
                    }
                    let reply = |bytes: &[u8], to: SocketAddr| send(&socket, bytes, to);
                    let _ = script(Event::Udp {
                        query,
                        from,
                        reply: &reply,
                    });
                }
            }
        });
        let tcp_thread = std::thread::spawn({
            let (held_b, stop) = (Arc::clone(&held_b), Arc::clone(&stop));
            move || {
                let mut connections = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, from)) => {
                            assert_eq!(from.ip(), LOOPBACK);
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_secs(2)))
                                .unwrap();
                            let mut length = [0u8; 2];
                            stream.read_exact(&mut length).unwrap();
                            let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
                            stream.read_exact(&mut query).unwrap();
                            let held = held_b.lock().unwrap().clone();
                            let frames = script(Event::Tcp {
                                query: &query,
                                held_b: held.as_ref().map(|(q, from)| (&q[..], *from)),
                            });
                            stream.write_all(&frames).unwrap();
                            // Kept open until the end: heimdall closes it.
                            connections.push(stream);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
        });
        Self {
            addr,
            udp,
            held_b,
            udp_queries,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// Whether B's UDP query has come.
    fn b_is_held(&self) -> bool {
        self.held_b.lock().unwrap().is_some()
    }

    /// Answer B's held UDP query properly, with one A record `address`.
    fn answer_b(&self, address: Ipv4Addr) {
        let (query, from) = self.held_b.lock().unwrap().clone().expect("B is held");
        send(&self.udp, &a_answer_to(&query, address, 300), from);
    }

    /// UDP queries received so far.
    fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::Relaxed)
    }
}

impl Drop for TransportUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// An upstream slower than `upstream.timeout`: its reply to the first
/// attempt arrives after the second attempt left, on the first attempt's
/// socket, which stays open until the query ends; it is accepted (counted
/// as late) and the client gets the answer, not SERVFAIL.
#[test]
fn a_late_reply_on_the_first_attempts_socket_is_accepted() {
    let upstream = ScriptedUpstream::start({
        let mut first: Option<(Vec<u8>, SocketAddr)> = None;
        move |socket, query, from| match first.take() {
            None => first = Some((query.to_vec(), from)),
            Some((first_query, first_from)) => {
                // The second attempt is here: now answer the first one,
                // on its own socket, and never the second.
                assert_ne!(first_from, from, "each attempt has its own socket");
                send(socket, &a_answer(&first_query, 1, 300), first_from);
            }
        }
    });
    let server = Setup {
        timeout: "200ms",
        attempts: 2,
        ..Setup::new(&[upstream.addr])
    }
    .start();
    let control = server.control_addr();
    let client = server.client();
    let reply = client.exchange(&query(9, "slow.late.test.", RecordType::A, EDNS));
    assert_eq!(reply.message().rcode(), Rcode::NOERROR);
    assert_eq!(
        metric(control, "heimdall_upstream_replies_late_accepted_total"),
        1.0
    );
    server.stop();
}

/// A reply that comes after its attempt was retired (the query timed out
/// and the client has its SERVFAIL) reaches a socket that is idle but
/// still waits: it is read, dropped and counted as a stray, and nothing
/// reaches the client.
#[test]
fn a_reply_after_its_attempt_was_retired_is_dropped_and_counted_as_a_stray() {
    let (queries_tx, queries_rx) = std::sync::mpsc::channel();
    let upstream = ScriptedUpstream::start(move |_socket, query, from| {
        let _ = queries_tx.send((query.to_vec(), from));
    });
    let server = Setup {
        timeout: "100ms",
        attempts: 1,
        ..Setup::new(&[upstream.addr])
    }
    .start();
    let control = server.control_addr();
    let client = server.client();
    let reply = client.exchange(&query(11, "late.stray.test.", RecordType::A, EDNS));
    assert_eq!(reply.message().rcode(), Rcode::SERVFAIL);
    let (asked, from) = queries_rx
        .recv_timeout(Duration::from_secs(2))
        .expect("the upstream saw the query");
    // The right ID, case and source (the upstream's own address, bound
    // again once the scripted upstream has stopped): only its timing is
    // wrong.
    let upstream_addr = upstream.addr;
    drop(upstream);
    let upstream_again = UdpSocket::bind(upstream_addr).unwrap();
    send(&upstream_again, &a_answer(&asked, 1, 300), from);
    assert!(
        common::wait_until(Duration::from_secs(2), || metric(
            control,
            "heimdall_upstream_socket_strays_total"
        ) >= 1.0),
        "the late reply was not counted as a stray"
    );
    assert!(
        client.recv_within(Duration::from_millis(200)).is_none(),
        "the late reply reached the client"
    );
    server.stop();
}

/// A flood at idle upstream sockets (their ports as the upstream saw
/// them) is read, dropped and counted as strays, and does not starve the
/// clients: the core answers its cached names throughout (the receive
/// task yields after every full listing of ready sockets).
#[test]
fn a_flood_at_idle_upstream_sockets_is_counted_and_clients_are_still_answered() {
    const NAMES: u16 = 16;
    let (ports_tx, ports_rx) = std::sync::mpsc::channel();
    let upstream = ScriptedUpstream::start(move |socket, query, from| {
        let _ = ports_tx.send(from.port());
        send(socket, &a_answer(query, 1, 300), from);
    });
    let server = Setup::new(&[upstream.addr]).start();
    let control = server.control_addr();
    let client = server.client();
    // Misses sent together, so each takes a socket of its own; once
    // answered, the sockets are idle.
    let queries: Vec<Vec<u8>> = (0..NAMES)
        .map(|n| query(n, &format!("host-{n}.idle.test."), RecordType::A, EDNS))
        .collect();
    for q in &queries {
        client.send(q);
    }
    let mut answered = HashSet::new();
    while answered.len() < usize::from(NAMES) {
        let bytes = client
            .recv_within(Duration::from_secs(2))
            .expect("a reply to every miss");
        let reply = common::Reply::check(bytes);
        assert_eq!(reply.message().rcode(), Rcode::NOERROR);
        answered.insert(reply.id());
    }
    let ports: HashSet<u16> = ports_rx.try_iter().collect();
    assert!(ports.len() >= 2, "{} sockets: {ports:?}", ports.len());
    std::thread::sleep(Duration::from_millis(50));
    let strays_before = metric(control, "heimdall_upstream_socket_strays_total");

    let flooding = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (flooding, sent) = (Arc::clone(&flooding), Arc::clone(&sent));
        let ports: Vec<u16> = ports.iter().copied().collect();
        std::thread::spawn(move || {
            let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
            let garbage = [0x5au8; 64];
            while flooding.load(Ordering::Relaxed) {
                for &port in &ports {
                    if socket.send_to(&garbage, (LOOPBACK, port)).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    // Cache hits throughout the flood, each within the client's timeout.
    let started = Instant::now();
    let mut hits = 0u16;
    while started.elapsed() < Duration::from_millis(800) {
        let n = hits % NAMES;
        let reply = client.exchange(&query(
            1000 + hits,
            &format!("host-{n}.idle.test."),
            RecordType::A,
            EDNS,
        ));
        assert_eq!(reply.message().rcode(), Rcode::NOERROR);
        hits += 1;
    }
    flooding.store(false, Ordering::Relaxed);
    flood.join().unwrap();
    let sent = sent.load(Ordering::Relaxed) as f64;
    println!(
        "{hits} cache hits answered during a flood of {sent} datagrams at {} idle sockets",
        ports.len()
    );
    assert!(hits >= 50, "{hits} cache hits answered during the flood");
    // What reached the sockets was read and counted (the kernel drops
    // what overflows a socket's buffer, so not all of it arrives).
    assert!(
        common::wait_until(Duration::from_secs(2), || metric(
            control,
            "heimdall_upstream_socket_strays_total"
        ) - strays_before
            >= (sent / 10.0).min(5_000.0)),
        "{} strays counted of {sent} datagrams sent",
        metric(control, "heimdall_upstream_socket_strays_total") - strays_before
    );
    server.stop();
}

/// The drain limit over TCP: a query waiting on a silent upstream when
/// the server stops gets its SERVFAIL on its connection.
#[test]
fn a_tcp_query_waiting_at_the_drain_limit_gets_servfail() {
    let upstream = ScriptedUpstream::start(|_, _, _| {});
    let mut config = Setup {
        timeout: "5s",
        attempts: 2,
        ..Setup::new(&[upstream.addr])
    }
    .config();
    config.server.shutdown_grace = Duration::from_millis(200);
    let server = common::start_server(&config);
    assert_eq!(server.addr.ip(), LOOPBACK);
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let asked = query(21, "slow.tcp-drain.test.", RecordType::A, EDNS);
    let mut framed = (asked.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&asked);
    stream.write_all(&framed).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let stopping = std::thread::spawn(move || server.stop());
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut reply).unwrap();
    let message = Message::parse(&reply).unwrap();
    assert_eq!(message.id(), 21);
    assert_eq!(message.rcode(), Rcode::SERVFAIL);
    stopping.join().unwrap();
}
