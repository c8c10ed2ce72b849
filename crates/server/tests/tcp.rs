//! End-to-end tests of DNS over TCP (RFC 7766, RFC 7828) over real sockets
//! on 127.0.0.1: client connections (framing, pipelining, timeouts, the
//! connection cap, keepalive) and the upstream side (a truncated UDP answer
//! is fetched again over TCP).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{LOOPBACK, Reply, Setup, query, start_server, start_upstream, total};
use heimdall_config::Config;
use heimdall_loadtest::UpstreamConfig;
use heimdall_loadtest::upstream::Behavior;
use heimdall_loadtest::upstream::zone::BIG_TXT_RECORDS;
use heimdall_wire::{
    Class, EdnsOption, Flags, Message, MessageBuilder, NameBuf, OptSpec, Rcode, RecordType,
};

const EDNS: Option<u16> = Some(1232);

/// A TCP client of the server on 127.0.0.1.
struct TcpClient {
    stream: TcpStream,
}

impl TcpClient {
    fn connect(server: SocketAddr) -> Self {
        assert_eq!(server.ip(), LOOPBACK, "tests only talk to 127.0.0.1");
        let stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream }
    }

    fn send(&mut self, message: &[u8]) {
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        self.stream.write_all(&framed).expect("send");
    }

    /// The next message, or None at end of stream.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut prefix = [0u8; 2];
        match self.stream.read_exact(&mut prefix) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::UnexpectedEof => return None,
            Err(err) if err.kind() == ErrorKind::ConnectionReset => return None,
            Err(err) => panic!("receive: {err}"),
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        self.stream.read_exact(&mut message).expect("message body");
        Some(message)
    }

    fn exchange(&mut self, query: &[u8]) -> Reply {
        self.send(query);
        let reply = Reply::check(self.recv().expect("a reply, not end of stream"));
        reply.assert_answers(query);
        reply
    }

    /// Wait for the server to close the connection; how long it took.
    fn wait_closed(&mut self, within: Duration) -> Duration {
        let started = Instant::now();
        self.stream.set_read_timeout(Some(within)).unwrap();
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => {}
            Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
            Ok(_) => panic!("unexpected data"),
            Err(err) => panic!("not closed within {within:?}: {err}"),
        }
        started.elapsed()
    }
}

fn tcp_upstream() -> heimdall_loadtest::UpstreamHandle {
    start_upstream(UpstreamConfig {
        tcp: true,
        ..UpstreamConfig::default()
    })
}

fn config_with(upstream: SocketAddr, change: impl FnOnce(&mut Config)) -> Config {
    let mut config = Setup::new(&[upstream]).config();
    change(&mut config);
    config
}

/// A large answer: a UDP client without EDNS (512 bytes) sees TC; the
/// same question over TCP gets all of it, from the cache.
#[test]
fn a_large_answer_is_truncated_over_udp_and_whole_over_tcp() {
    let mut upstream = tcp_upstream();
    let server = Setup::new(&[upstream.local_addr()]).start();
    let name = "big-3.zone.test.";

    let udp = server
        .client()
        .exchange(&query(1, name, RecordType::TXT, None));
    assert_eq!(udp.rcode(), Rcode::NOERROR);
    assert!(udp.truncated(), "the answer does not fit 512 bytes");
    assert!(udp.bytes.len() <= 512);

    let mut tcp = TcpClient::connect(server.addr);
    let whole = tcp.exchange(&query(2, name, RecordType::TXT, None));
    assert_eq!(whole.rcode(), Rcode::NOERROR);
    assert!(!whole.truncated());
    assert_eq!(whole.answer_ttls().len(), BIG_TXT_RECORDS);
    assert!(whole.bytes.len() > 512, "{} bytes", whole.bytes.len());
    assert_eq!(
        upstream.queries_for(name),
        1,
        "the TCP answer came from the cache"
    );
    drop(tcp);
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.cache_hits), 1);
    upstream.stop();
}

/// 100 queries written at once on one connection are all answered, each
/// with its own ID and question (in any order).
#[test]
fn one_hundred_pipelined_queries_are_all_answered() {
    let mut upstream = tcp_upstream();
    let server = Setup::new(&[upstream.local_addr()]).start();
    let mut tcp = TcpClient::connect(server.addr);
    let queries: HashMap<u16, Vec<u8>> = (0..100u16)
        .map(|i| {
            // Half the names repeat, so some are hits and some coalesce.
            let name = format!("host-{}.zone.test.", i % 50);
            (i + 1, query(i + 1, &name, RecordType::A, EDNS))
        })
        .collect();
    let mut all = Vec::new();
    for id in 1..=100u16 {
        let message = &queries[&id];
        all.extend_from_slice(&(message.len() as u16).to_be_bytes());
        all.extend_from_slice(message);
    }
    tcp.stream.write_all(&all).unwrap();
    let mut seen = HashMap::new();
    for _ in 0..100 {
        let reply = Reply::check(tcp.recv().expect("100 replies"));
        let id = reply.id();
        reply.assert_answers(&queries[&id]);
        assert_eq!(reply.rcode(), Rcode::NOERROR);
        assert_eq!(reply.answer_ttls().len(), 1);
        assert!(seen.insert(id, ()).is_none(), "one reply per query");
    }
    assert_eq!(seen.len(), 100);
    // An open connection does not hold up shutdown (`stop` checks 5 s).
    let reports = server.stop();
    drop(tcp);
    assert_eq!(total(&reports, |r| r.tcp.queries), 100);
    upstream.stop();
}

/// A connection that sends half a length prefix and stalls is closed at
/// the read deadline.
#[test]
fn a_stalled_sender_is_dropped_at_the_read_deadline() {
    let mut upstream = tcp_upstream();
    let config = config_with(upstream.local_addr(), |config| {
        config.tcp.read_timeout = Duration::from_millis(300);
    });
    let server = start_server(&config);
    let mut tcp = TcpClient::connect(server.addr);
    tcp.stream.write_all(&[0]).unwrap();
    let took = tcp.wait_closed(Duration::from_secs(3));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "closed after {took:?}"
    );
    // Half a message (prefix whole, body short) likewise.
    let mut tcp = TcpClient::connect(server.addr);
    let message = query(9, "host-1.zone.test.", RecordType::A, EDNS);
    tcp.stream
        .write_all(&(message.len() as u16).to_be_bytes())
        .unwrap();
    tcp.stream.write_all(&message[..5]).unwrap();
    let took = tcp.wait_closed(Duration::from_secs(3));
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.tcp.closed_read_timeout), 2);
    upstream.stop();
}

/// An idle connection is closed after tcp.idle_timeout.
#[test]
fn idle_connections_close_on_time() {
    let mut upstream = tcp_upstream();
    let config = config_with(upstream.local_addr(), |config| {
        config.tcp.idle_timeout = Duration::from_millis(400);
    });
    let server = start_server(&config);
    let mut tcp = TcpClient::connect(server.addr);
    let reply = tcp.exchange(&query(1, "host-1.zone.test.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    let took = tcp.wait_closed(Duration::from_secs(3));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "closed after {took:?}"
    );
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.tcp.closed_idle), 1);
    upstream.stop();
}

/// With the cap reached, a new connection closes the oldest idle one.
#[test]
fn the_connection_cap_closes_the_oldest_idle_connection() {
    let mut upstream = tcp_upstream();
    let config = config_with(upstream.local_addr(), |config| {
        config.tcp.max_connections = 2;
    });
    let server = start_server(&config);
    let ask = |tcp: &mut TcpClient, id: u16| {
        let reply = tcp.exchange(&query(id, "host-1.zone.test.", RecordType::A, EDNS));
        assert_eq!(reply.rcode(), Rcode::NOERROR);
    };
    let mut first = TcpClient::connect(server.addr);
    ask(&mut first, 1);
    std::thread::sleep(Duration::from_millis(20));
    let mut second = TcpClient::connect(server.addr);
    ask(&mut second, 2);
    std::thread::sleep(Duration::from_millis(20));
    let mut third = TcpClient::connect(server.addr);
    ask(&mut third, 3);
    first.wait_closed(Duration::from_secs(2));
    ask(&mut second, 4);
    ask(&mut third, 5);
    drop((second, third));
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.tcp.evicted), 1);
    assert_eq!(total(&reports, |r| r.tcp.accepted), 3);
    upstream.stop();
}

/// An upstream that only ever answers TC over UDP still resolves, over
/// TCP; the UDP client gets the whole (small) answer.
#[test]
fn an_upstream_that_always_truncates_udp_is_asked_over_tcp() {
    let mut upstream = start_upstream(UpstreamConfig {
        tcp: true,
        behavior: Behavior::Truncate,
        ..UpstreamConfig::default()
    });
    let server = Setup::new(&[upstream.local_addr()]).start();
    let client = server.client();
    for (id, name) in (1u16..).zip(["host-1.zone.test.", "host-2.zone.test."]) {
        let reply = client.exchange(&query(id, name, RecordType::A, EDNS));
        assert_eq!(reply.rcode(), Rcode::NOERROR, "{name}");
        assert!(!reply.truncated());
        assert_eq!(reply.answer_ttls().len(), 1);
    }
    // Twenty at once: pipelined on the same upstream connection.
    let queries: Vec<Vec<u8>> = (0..20u16)
        .map(|i| {
            query(
                100 + i,
                &format!("host-{}.zone.test.", 10 + i),
                RecordType::A,
                EDNS,
            )
        })
        .collect();
    for message in &queries {
        client.send(message);
    }
    let mut answered = HashMap::new();
    while answered.len() < queries.len() {
        let bytes = client
            .recv_within(Duration::from_secs(3))
            .expect("every pipelined query is answered");
        let reply = Reply::check(bytes);
        let index = usize::from(reply.id() - 100);
        reply.assert_answers(&queries[index]);
        assert_eq!(reply.rcode(), Rcode::NOERROR);
        assert_eq!(reply.answer_ttls().len(), 1);
        answered.insert(index, ());
    }
    let stats = upstream.stats();
    assert_eq!(stats.tcp_received, 22, "{stats}");
    assert!(stats.truncated >= 22, "{stats}");
    let reports = server.stop();
    // Every query shared one upstream connection.
    assert_eq!(total(&reports, |r| r.tcp.upstream_connects), 1);
    assert_eq!(total(&reports, |r| r.resolver.upstream_tcp_queries), 22);
    assert_eq!(total(&reports, |r| r.resolver.upstream_truncated), 22);
    upstream.stop();
}

/// An upstream configured TCP-only is never asked over UDP.
#[test]
fn a_tcp_only_upstream_is_never_asked_over_udp() {
    let mut upstream = start_upstream(UpstreamConfig {
        tcp: true,
        behavior: Behavior::Truncate,
        ..UpstreamConfig::default()
    });
    let config = config_with(upstream.local_addr(), |config| {
        config.upstream.servers = vec![heimdall_config::Upstream::new(
            upstream.local_addr(),
            heimdall_config::UpstreamTransport::Tcp,
        )];
    });
    let server = start_server(&config);
    let reply = server
        .client()
        .exchange(&query(1, "host-4.zone.test.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_eq!(reply.answer_ttls().len(), 1);
    let stats = upstream.stats();
    assert_eq!((stats.received, stats.tcp_received), (1, 1), "{stats}");
    assert_eq!(stats.truncated, 0, "{stats}");
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.upstream_tcp_queries), 1);
    upstream.stop();
}

/// An upstream that truncates over UDP and does not serve TCP at all: the
/// TCP attempt fails, and at its deadline the next upstream is asked, as
/// for a UDP timeout.
#[test]
fn a_failed_tcp_retry_fails_over_to_the_next_upstream() {
    let mut broken = start_upstream(UpstreamConfig {
        tcp: false,
        behavior: Behavior::Truncate,
        ..UpstreamConfig::default()
    });
    let mut good = tcp_upstream();
    let mut setup = Setup::new(&[broken.local_addr(), good.local_addr()]);
    setup.timeout = "300ms";
    setup.attempts = 2;
    let server = setup.start();
    let name = "host-3.zone.test.";
    let started = Instant::now();
    let reply = server
        .client()
        .exchange(&query(1, name, RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_eq!(reply.answer_ttls().len(), 1);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(good.queries_for(name), 1);
    let reports = server.stop();
    assert!(total(&reports, |r| r.tcp.upstream_errors) >= 1);
    assert_eq!(total(&reports, |r| r.resolver.upstream_timeouts), 1);
    broken.stop();
    good.stop();
}

/// A TCP and a UDP client asking the same name at once share one upstream
/// query.
#[test]
fn tcp_and_udp_queries_for_the_same_name_are_coalesced() {
    let mut upstream = start_upstream(UpstreamConfig {
        tcp: true,
        delay: Duration::from_millis(300),
        ..UpstreamConfig::default()
    });
    let server = Setup::new(&[upstream.local_addr()]).start();
    let name = "host-7.zone.test.";
    let udp = server.client();
    let udp_query = query(1, name, RecordType::A, EDNS);
    udp.send(&udp_query);
    std::thread::sleep(Duration::from_millis(50));
    let mut tcp = TcpClient::connect(server.addr);
    let tcp_reply = tcp.exchange(&query(2, name, RecordType::A, EDNS));
    let udp_reply = udp.reply_to(&udp_query);
    assert_eq!(tcp_reply.rcode(), Rcode::NOERROR);
    assert_eq!(udp_reply.rcode(), Rcode::NOERROR);
    assert_eq!(upstream.queries_for(name), 1);
    drop(tcp);
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.coalesced), 1);
    upstream.stop();
}

/// RFC 7828: a TCP client that sends edns-tcp-keepalive gets our idle
/// timeout back in units of 100 ms; one that does not, does not.
#[test]
fn keepalive_is_advertised_to_clients_that_ask() {
    let mut upstream = tcp_upstream();
    let server = Setup::new(&[upstream.local_addr()]).start();
    let mut tcp = TcpClient::connect(server.addr);
    let plain = tcp.exchange(&query(1, "host-1.zone.test.", RecordType::A, EDNS));
    assert!(keepalive_of(&plain).is_none());

    let name = NameBuf::from_presentation("host-1.zone.test.").unwrap();
    let mut buf = vec![0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(2);
    builder.set_flags(Flags::default().with_recursion_desired(true));
    builder
        .question(&name.as_name(), RecordType::A, Class::IN)
        .unwrap();
    builder
        .opt(&OptSpec {
            udp_payload_size: 1232,
            extended_rcode: 0,
            version: 0,
            dnssec_ok: false,
            options: &[EdnsOption {
                code: 11,
                data: &[],
            }],
        })
        .unwrap();
    let len = builder.finish();
    buf.truncate(len);
    let reply = tcp.exchange(&buf);
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_eq!(keepalive_of(&reply), Some(100), "10 s in units of 100 ms");
    drop(tcp);
    server.stop();
    upstream.stop();
}

fn keepalive_of(reply: &Reply) -> Option<u16> {
    let message = Message::parse(&reply.bytes).unwrap();
    let opt = message.opt()?;
    opt.options()
        .find(|option| option.code == 11)
        .map(|option| u16::from_be_bytes([option.data[0], option.data[1]]))
}

/// Under name steering the kernel spreads TCP connections by flow, so a
/// connection's core fetches names another core owns: each such miss is
/// counted (a duplicate entry). Checked against what UDP, which reaches
/// each name's owner, then finds missing on the owners.
#[test]
fn misses_on_a_core_not_owning_the_name_are_counted() {
    const NAMES: u32 = 40;
    let mut upstream = start_upstream(UpstreamConfig::default());
    let config = config_with(upstream.local_addr(), |config| {
        config.server.cores = heimdall_config::CoreSelection::List(vec![0, 1]);
    });
    let server = start_server(&config);
    let names: Vec<String> = (0..NAMES).map(|n| format!("host-{n}.zone.test.")).collect();
    // One connection: one core fetches every name.
    let mut tcp = TcpClient::connect(server.addr);
    for (n, name) in names.iter().enumerate() {
        tcp.exchange(&query(n as u16, name, RecordType::A, EDNS));
    }
    // Over UDP each name reaches its owner: the names the TCP core did not
    // own miss there again.
    let udp = server.client();
    for (n, name) in names.iter().enumerate() {
        udp.exchange(&query(100 + n as u16, name, RecordType::A, EDNS));
    }
    let fetched_again: u64 = names
        .iter()
        .map(|name| upstream.queries_for(name) - 1)
        .sum();
    let text = common::http::get_ok(server.control_addr(), "/metrics");
    let counted = common::http::metrics(&text).sum("heimdall_cache_off_owner_fetches_total", &[]);
    server.stop();
    upstream.stop();
    assert!(
        fetched_again > 0 && fetched_again < u64::from(NAMES),
        "both cores own some of {NAMES} names: {fetched_again}"
    );
    assert_eq!(counted, fetched_again as f64);
}
