//! End-to-end tests of encrypted DNS over real sockets on 127.0.0.1, with
//! certificates the tests make (rcgen): DNS over TLS (RFC 7858) and over
//! HTTPS (RFC 8484) served to clients (a rustls client here, kdig, curl),
//! DNS over TLS to upstreams (another heimdall, Unbound), and bad input
//! (garbage instead of a ClientHello, a stalled handshake, bad DoH
//! requests), each closed or answered with an error, counted, and with
//! UDP clients still served.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;
// Not in `common`: the binary's tests share that module and have no rcgen.
#[path = "common/certs.rs"]
mod certs;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::TestCerts;
use common::{LOOPBACK, Reply, TestServer, query, start_server, start_upstream, total};
use heimdall_config::Config;
use heimdall_loadtest::UpstreamConfig;
use heimdall_loadtest::upstream::zone::host_v4;
use heimdall_testkit::peers;
use heimdall_wire::{Message, Rcode, RecordType};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};

/// The name the test certificates carry.
const NAME: &str = "dns.test";

/// A server forwarding to `upstream` over UDP, serving DNS over TLS and
/// HTTPS with `certs`, with `extra` YAML appended.
fn encrypted_config(upstream: SocketAddr, certs: &TestCerts, extra: &str) -> Config {
    let tls = "  listen: [127.0.0.1:853]\n  https_listen: [127.0.0.1:443]\n";
    certs.server_config(upstream, tls, extra)
}

/// A running server with its encrypted addresses.
struct Encrypted {
    server: TestServer,
    dot: SocketAddr,
    doh: SocketAddr,
}

fn start_encrypted(config: &Config) -> Encrypted {
    let server = start_server(config);
    let (dot, doh) = server.encrypted_addrs();
    for addr in [dot, doh] {
        assert_eq!(addr.ip(), LOOPBACK);
        assert_ne!(addr.port(), 0);
    }
    Encrypted { server, dot, doh }
}

/// The certificates of the PEM files `cas`, as trust roots.
fn roots(cas: &[&Path]) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for cert in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    roots
}

/// A rustls client configuration trusting `ca`, with `alpn`.
fn client_config(ca: &Path, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let roots = roots(&[ca]);
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A DNS-over-TLS client on 127.0.0.1.
struct DotClient {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl DotClient {
    fn connect(server: SocketAddr, ca: &Path) -> Self {
        Self::connect_with(server, client_config(ca, b"dot"))
    }

    /// With `config`, whose session cache a later connection resumes from.
    fn connect_with(server: SocketAddr, config: Arc<rustls::ClientConfig>) -> Self {
        assert_eq!(server.ip(), LOOPBACK, "tests only talk to 127.0.0.1");
        let conn =
            rustls::ClientConnection::new(config, ServerName::try_from(NAME).unwrap()).unwrap();
        let socket = TcpStream::connect_timeout(&server, Duration::from_secs(2)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        Self {
            tls: rustls::StreamOwned::new(conn, socket),
        }
    }

    fn send(&mut self, message: &[u8]) {
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        self.tls.write_all(&framed).unwrap();
        self.tls.flush().unwrap();
    }

    fn recv(&mut self) -> Vec<u8> {
        let mut prefix = [0u8; 2];
        self.tls.read_exact(&mut prefix).unwrap();
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        self.tls.read_exact(&mut message).unwrap();
        message
    }
}

/// The EDNS option codes of a message's OPT record.
fn option_codes(message: &[u8]) -> Vec<u16> {
    Message::parse(message)
        .unwrap()
        .opt()
        .map(|opt| opt.options().map(|option| option.code).collect())
        .unwrap_or_default()
}

#[test]
fn dot_answers_pipelined_queries_padded_and_counts_them() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("dot", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    let tls_config = client_config(&certs.ca, b"dot");
    let mut client = DotClient::connect_with(server.dot, Arc::clone(&tls_config));
    // Pipelined: all sent before any answer is read.
    let queries: Vec<Vec<u8>> = (1..=5u16)
        .map(|id| {
            query(
                id,
                &format!("host-{id}.zone.test."),
                RecordType::A,
                Some(1232),
            )
        })
        .collect();
    for q in &queries {
        client.send(q);
    }
    let mut seen = Vec::new();
    for _ in &queries {
        let bytes = client.recv();
        assert_eq!(
            bytes.len() % 468,
            0,
            "a padded reply: {} bytes",
            bytes.len()
        );
        assert!(option_codes(&bytes).contains(&12), "padding option");
        let reply = Reply::check(bytes);
        let id = reply.id();
        reply.assert_answers(&queries[usize::from(id) - 1]);
        common::assert_single_a(&reply, host_v4(u32::from(id)));
        seen.push(id);
    }
    seen.sort_unstable();
    assert_eq!(seen, [1, 2, 3, 4, 5]);
    // The same answer over UDP, from the cache the TLS queries filled.
    let udp = server.server.client().exchange(&queries[0]);
    common::assert_single_a(&udp, host_v4(1));
    // Without EDNS there is no OPT record to pad.
    client.send(&query(9, "host-1.zone.test.", RecordType::A, None));
    let plain = client.recv();
    assert!(Message::parse(&plain).unwrap().opt().is_none());
    drop(client);
    // A second connection resumes the first one's session (a ticket).
    let mut again = DotClient::connect_with(server.dot, tls_config);
    again.send(&queries[1]);
    common::assert_single_a(&Reply::check(again.recv()), host_v4(2));
    assert_eq!(
        again.tls.conn.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
    drop(again);
    // Answer times are filed under their own transport.
    let samples = common::http::metrics(&common::http::get_ok(
        server.server.control_addr(),
        "/metrics",
    ));
    let answered = |transport: &str, cache: &str| {
        samples.sum(
            "heimdall_answer_duration_seconds_count",
            &[("transport", transport), ("cache", cache)],
        )
    };
    assert_eq!(answered("tls", "miss"), 5.0);
    assert_eq!(answered("tls", "hit"), 2.0);
    assert_eq!(answered("tcp", "hit") + answered("tcp", "miss"), 0.0);
    assert_eq!(answered("udp", "hit"), 1.0);
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.dot.handshakes), 2);
    assert_eq!(total(&reports, |r| r.dot.resumptions), 1);
    assert_eq!(total(&reports, |r| r.dot.handshake_failures), 0);
    assert_eq!(total(&reports, |r| r.dot.queries), 7);
    assert_eq!(total(&reports, |r| r.resolver.queries_tls), 7);
}

/// Garbage instead of a ClientHello, and a client that stalls half-way
/// through its handshake: both closed and counted, and a UDP client is
/// answered all the while.
#[test]
fn dot_garbage_and_a_stalled_handshake_are_closed_and_counted() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("garbage", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    let udp = server.server.client();
    // Garbage: an HTTP request where a ClientHello belongs.
    let mut garbage = TcpStream::connect(server.dot).unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let started = Instant::now();
    // The server answers with an alert at most, then closes.
    loop {
        match garbage.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(3)),
        }
    }
    // A stalled handshake: the first bytes of a ClientHello, then nothing.
    let mut stalled = TcpStream::connect(server.dot).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    let started = Instant::now();
    // UDP is served meanwhile.
    let reply = udp.exchange(&query(3, "host-3.zone.test.", RecordType::A, None));
    common::assert_single_a(&reply, host_v4(3));
    let closed = matches!(stalled.read(&mut buf), Ok(0) | Err(_));
    assert!(closed, "the stalled connection was closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(2),
        "closed after {waited:?} (tcp.read_timeout is 500ms)"
    );
    // A real client still gets in.
    let mut client = DotClient::connect(server.dot, &certs.ca);
    client.send(&query(4, "host-4.zone.test.", RecordType::A, Some(1232)));
    common::assert_single_a(&Reply::check(client.recv()), host_v4(4));
    drop(client);
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.dot.handshake_failures), 2);
    assert_eq!(total(&reports, |r| r.dot.handshakes), 1);
    assert_eq!(total(&reports, |r| r.dot.accepted), 3);
}

/// Whether a DoT handshake with `server`, trusting `ca`, succeeds.
fn handshake_ok(server: SocketAddr, ca: &Path) -> bool {
    let mut client = DotClient::connect(server, ca);
    let rustls::StreamOwned { conn, sock } = &mut client.tls;
    while conn.is_handshaking() {
        if conn.complete_io(sock).is_err() {
            return false;
        }
    }
    true
}

/// A reload (SIGHUP or POST /reload) reads the certificate and key files
/// again: a renewed certificate is presented to new connections; a broken
/// file fails the reload with a message naming it, and the certificate in
/// use stays.
#[test]
fn a_reload_reads_the_certificate_again_and_a_bad_one_keeps_the_old() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("reload-a", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let source = config.clone();
    let options = heimdall_server::StartOptions {
        reload_source: Some(Arc::new(move || Ok(source.clone()))),
        ..heimdall_server::StartOptions::default()
    };
    let server = common::start_server_with(&config, options);
    let (dot, _) = server.encrypted_addrs();
    let control = server.control_addr();
    assert!(handshake_ok(dot, &certs.ca));
    // Renewed in place, by another CA.
    let renewed = TestCerts::new("reload-b", NAME);
    std::fs::copy(&renewed.cert, &certs.cert).unwrap();
    std::fs::copy(&renewed.key, &certs.key).unwrap();
    assert!(handshake_ok(dot, &certs.ca), "not before the reload");
    let (status, body) = common::http::request(control, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("certificate and key re-read"), "{body}");
    assert!(handshake_ok(dot, &renewed.ca));
    assert!(!handshake_ok(dot, &certs.ca));
    // A broken file: the reload fails, naming it; the certificate stays.
    std::fs::write(&certs.cert, "not a certificate\n").unwrap();
    let (status, body) = common::http::request(control, "POST", "/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("tls.certificate"), "{body}");
    assert!(handshake_ok(dot, &renewed.ca));
    let mut client = DotClient::connect(dot, &renewed.ca);
    client.send(&query(3, "host-3.zone.test.", RecordType::A, None));
    common::assert_single_a(&Reply::check(client.recv()), host_v4(3));
    drop(client);
    server.stop();
}

/// A client session store that keeps only the last TLS 1.3 ticket it was
/// given: a connection resumes with a ticket of the connection before it
/// (so of the core that served that one), or does not resume.
#[derive(Debug, Default)]
struct LastTicket(std::sync::Mutex<Option<rustls::client::Tls13ClientSessionValue>>);

impl rustls::client::ClientSessionStore for LastTicket {
    fn set_kx_hint(&self, _: ServerName<'static>, _: rustls::NamedGroup) {}

    fn kx_hint(&self, _: &ServerName<'_>) -> Option<rustls::NamedGroup> {
        None
    }

    fn set_tls12_session(
        &self,
        _: ServerName<'static>,
        _: rustls::client::Tls12ClientSessionValue,
    ) {
    }

    fn tls12_session(&self, _: &ServerName<'_>) -> Option<rustls::client::Tls12ClientSessionValue> {
        None
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(
        &self,
        _: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        *self.0.lock().unwrap() = Some(value);
    }

    fn take_tls13_ticket(
        &self,
        _: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.0.lock().unwrap().take()
    }
}

/// A TLS 1.3 DoT client configuration trusting `cas`, resuming with the
/// last ticket it got ([`LastTicket`]).
fn resuming_client(cas: &[&Path]) -> Arc<rustls::ClientConfig> {
    let roots = roots(cas);
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"dot".to_vec()];
    config.resumption = rustls::client::Resumption::store(Arc::new(LastTicket::default()));
    Arc::new(config)
}

/// One DoT connection: query `n` answered (reading the reply reads the
/// tickets sent before it), then closed. Whether its handshake resumed.
fn dot_session(server: SocketAddr, config: &Arc<rustls::ClientConfig>, n: u32) -> bool {
    let mut client = DotClient::connect_with(server, Arc::clone(config));
    client.send(&query(
        n as u16,
        &format!("host-{n}.zone.test."),
        RecordType::A,
        None,
    ));
    common::assert_single_a(&Reply::check(client.recv()), host_v4(n));
    client.tls.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

/// Each core's value of the per-core metric `name` (with `labels`).
fn per_core(control: SocketAddr, name: &str, labels: &[(&str, &str)], cores: usize) -> Vec<u64> {
    let samples = common::http::metrics(&common::http::get_ok(control, "/metrics"));
    (0..cores)
        .map(|core| {
            let core = core.to_string();
            let mut labels = labels.to_vec();
            labels.push(("core", &core));
            samples.value(name, &labels).unwrap() as u64
        })
        .collect()
}

/// Each core's session-ticket key generation.
fn ticket_generations(control: SocketAddr, cores: usize) -> Vec<u64> {
    per_core(control, "heimdall_tls_ticket_key_generation", &[], cores)
}

/// Session tickets and `tls.ticket_rotation`: a ticket sealed before a
/// rotation still resumes after it; after two it is refused (a full
/// handshake, not counted as resumed). The rotations are read from each
/// core's key generation (`heimdall_tls_ticket_key_generation`); a round
/// where another rotation came at the wrong moment is run again.
#[test]
fn a_ticket_resumes_after_one_rotation_and_not_after_two() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("rotation", NAME);
    let mut config = encrypted_config(upstream.local_addr(), &certs, "");
    config.tls.ticket_rotation = Duration::from_secs(1);
    let server = start_encrypted(&config);
    let control = server.server.control_addr();
    let generation = || ticket_generations(control, 1)[0];
    let (mut connections, mut resumed_seen) = (0u64, 0u64);
    // A ticket, then `rotations` rotations, then a connection offering it:
    // whether it resumed, or `None` when the rotations did not fall as
    // meant.
    let mut round = |rotations: u64, n: u32| -> Option<bool> {
        let client = resuming_client(&[&certs.ca]);
        let before = generation();
        connections += 1;
        assert!(!dot_session(server.dot, &client, n), "a new client resumed");
        if generation() != before {
            return None;
        }
        assert!(
            common::wait_until(Duration::from_secs(10), || generation()
                >= before + rotations),
            "the keys were not rotated"
        );
        connections += 1;
        let resumed = dot_session(server.dot, &client, n);
        resumed_seen += u64::from(resumed);
        (generation() == before + rotations).then_some(resumed)
    };
    let after_one = (0..5).find_map(|i| round(1, 10 + i));
    assert_eq!(
        after_one,
        Some(true),
        "a ticket of the previous key resumes"
    );
    let after_two = (0..5).find_map(|i| round(2, 20 + i));
    assert_eq!(
        after_two,
        Some(false),
        "a ticket two rotations old is refused"
    );
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.dot.handshakes), connections);
    assert_eq!(total(&reports, |r| r.dot.resumptions), resumed_seen);
    assert_eq!(total(&reports, |r| r.dot.handshake_failures), 0);
}

/// Two cores: every core opens the tickets the other sealed. Each
/// connection resumes with the ticket of the one before; the handshake
/// counters tell which core took each, until a ticket has gone both ways.
#[test]
fn tickets_resume_on_either_core_of_two() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("two-cores", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let options = heimdall_server::StartOptions {
        unpinned_cores: Some(2),
        ..heimdall_server::StartOptions::default()
    };
    let server = common::start_server_with(&config, options);
    let (dot, _) = server.encrypted_addrs();
    let control = server.control_addr();
    assert_eq!(ticket_generations(control, 2), [1, 1]);
    let handshakes = || {
        per_core(
            control,
            "heimdall_tls_handshakes_total",
            &[("transport", "dot")],
            2,
        )
    };
    let client = resuming_client(&[&certs.ca]);
    let mut previous: Option<usize> = None;
    let (mut zero_to_one, mut one_to_zero) = (false, false);
    let mut connections = 0u64;
    for n in 1..=80u32 {
        let before = handshakes();
        let resumed = dot_session(dot, &client, n);
        connections += 1;
        let after = handshakes();
        let core = (0..2).find(|&core| after[core] > before[core]).unwrap();
        match previous {
            None => assert!(!resumed, "the first connection has no ticket"),
            Some(issuer) => {
                assert!(
                    resumed,
                    "connection {n} on core {core}, ticket from core {issuer}"
                );
                zero_to_one |= (issuer, core) == (0, 1);
                one_to_zero |= (issuer, core) == (1, 0);
            }
        }
        previous = Some(core);
        if zero_to_one && one_to_zero {
            break;
        }
    }
    assert!(
        zero_to_one && one_to_zero,
        "the kernel never spread the connections both ways"
    );
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.dot.resumptions), connections - 1);
    assert!(reports.iter().all(|r| r.dot.resumptions > 0));
}

/// A reload keeps the ticket keys when the certificate is the same (a
/// ticket from before it resumes), and replaces them when the
/// certificate changed (the ticket is refused: the client sees the new
/// certificate in a full handshake).
#[test]
fn a_reload_keeps_tickets_unless_the_certificate_changed() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("reload-tickets", NAME);
    let renewed = TestCerts::new("reload-tickets-new", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let source = config.clone();
    let options = heimdall_server::StartOptions {
        reload_source: Some(Arc::new(move || Ok(source.clone()))),
        ..heimdall_server::StartOptions::default()
    };
    let server = common::start_server_with(&config, options);
    let (dot, _) = server.encrypted_addrs();
    let control = server.control_addr();
    let client = resuming_client(&[&certs.ca, &renewed.ca]);
    assert!(!dot_session(dot, &client, 1));
    let (status, body) = common::http::request(control, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("unchanged, session tickets stay good"),
        "{body}"
    );
    assert_eq!(ticket_generations(control, 1), [1]);
    assert!(dot_session(dot, &client, 2), "resumed across a reload");
    // A new certificate: the ticket the last connection left is refused.
    std::fs::copy(&renewed.cert, &certs.cert).unwrap();
    std::fs::copy(&renewed.key, &certs.key).unwrap();
    let (status, body) = common::http::request(control, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("a new certificate, session tickets replaced"),
        "{body}"
    );
    assert_eq!(ticket_generations(control, 1), [2]);
    assert!(
        !dot_session(dot, &client, 3),
        "resumed a session of the old certificate"
    );
    assert!(handshake_ok(dot, &renewed.ca));
    // The new keys' tickets resume.
    assert!(dot_session(dot, &client, 4));
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.dot.resumptions), 2);
}

/// DoH clients that stall: one stops half-way through an HTTP/1.1
/// request head, one offers a protocol the listener does not speak. Both
/// are closed and counted; a UDP client is served meanwhile.
#[test]
fn doh_stalled_requests_and_a_wrong_alpn_are_closed_and_counted() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doh-stall", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    // A request head that never ends, over HTTP/1.1.
    let conn = rustls::ClientConnection::new(
        client_config(&certs.ca, b"http/1.1"),
        ServerName::try_from(NAME).unwrap(),
    )
    .unwrap();
    let socket = TcpStream::connect(server.doh).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, socket);
    tls.write_all(b"GET /dns-query?dns=AAAB HTTP/1.1\r\nHost: dns.test\r\n")
        .unwrap();
    tls.flush().unwrap();
    let started = Instant::now();
    let reply =
        server
            .server
            .client()
            .exchange(&query(7, "host-7.zone.test.", RecordType::A, None));
    common::assert_single_a(&reply, host_v4(7));
    let mut buf = [0u8; 256];
    let closed = matches!(tls.read(&mut buf), Ok(0) | Err(_));
    assert!(closed, "the stalled request's connection was closed");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(2),
        "closed after {waited:?} (tcp.read_timeout is 500ms)"
    );
    // DoT's ALPN on the DoH listener: no common protocol.
    let conn = rustls::ClientConnection::new(
        client_config(&certs.ca, b"dot"),
        ServerName::try_from(NAME).unwrap(),
    )
    .unwrap();
    let mut socket = TcpStream::connect(server.doh).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut conn = conn;
    let mut refused = false;
    while conn.is_handshaking() {
        if conn.complete_io(&mut socket).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "a handshake without a common ALPN protocol");
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.doh.closed_read_timeout), 1);
    assert_eq!(total(&reports, |r| r.doh.handshake_failures), 1);
    assert_eq!(total(&reports, |r| r.doh.handshakes), 1);
}

/// An HTTP/2 frame: 9-byte head (24-bit length, type, flags, stream) and
/// payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    frame.extend_from_slice(&[kind, flags]);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An HPACK string: length with a 7-bit prefix (no Huffman), then bytes.
fn hpack_string(out: &mut Vec<u8>, text: &str) {
    let mut len = text.len();
    if len < 127 {
        out.push(len as u8);
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push((len % 128) as u8 | 0x80);
            len /= 128;
        }
        out.push(len as u8);
    }
    out.extend_from_slice(text.as_bytes());
}

/// A TLS client that counts the application-data records it receives
/// (from the ciphertext) and keeps their plaintext.
struct RecordCountingClient {
    socket: TcpStream,
    conn: rustls::ClientConnection,
    /// Ciphertext not yet whole records.
    raw: Vec<u8>,
    records: usize,
    plain: Vec<u8>,
}

impl RecordCountingClient {
    fn connect(server: SocketAddr, config: Arc<rustls::ClientConfig>) -> Self {
        assert_eq!(server.ip(), LOOPBACK, "tests only talk to 127.0.0.1");
        let mut conn =
            rustls::ClientConnection::new(config, ServerName::try_from(NAME).unwrap()).unwrap();
        let mut socket = TcpStream::connect(server).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        while conn.is_handshaking() {
            conn.complete_io(&mut socket).unwrap();
        }
        Self {
            socket,
            conn,
            raw: Vec::new(),
            records: 0,
            plain: Vec::new(),
        }
    }

    /// `bytes` in one TLS write (one record up to 16 KiB).
    fn send(&mut self, bytes: &[u8]) {
        self.conn.writer().write_all(bytes).unwrap();
        self.conn.complete_io(&mut self.socket).unwrap();
    }

    /// One read from the socket: its records counted, its plaintext kept.
    fn receive(&mut self) {
        let mut chunk = [0u8; 16384];
        let read = self.socket.read(&mut chunk).expect("a reply within 3 s");
        assert_ne!(read, 0, "the server closed the connection");
        self.raw.extend_from_slice(&chunk[..read]);
        while self.raw.len() >= 5 {
            let len = usize::from(u16::from_be_bytes([self.raw[3], self.raw[4]]));
            if self.raw.len() < 5 + len {
                break;
            }
            if self.raw[0] == 23 {
                self.records += 1;
            }
            self.raw.drain(..5 + len);
        }
        let mut fed = &chunk[..read];
        while !fed.is_empty() {
            self.conn.read_tls(&mut fed).unwrap();
            self.conn.process_new_packets().unwrap();
        }
        let mut buf = [0u8; 16384];
        loop {
            match self.conn.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.plain.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("{err}"),
            }
        }
    }

    /// The HTTP/2 frames whole in the plaintext, taken off its front, as
    /// (type, flags, stream, payload).
    fn take_frames(&mut self) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let plain = &mut self.plain;
        let mut frames = Vec::new();
        while plain.len() >= 9 {
            let len =
                usize::from(plain[0]) << 16 | usize::from(plain[1]) << 8 | usize::from(plain[2]);
            if plain.len() < 9 + len {
                break;
            }
            let stream = u32::from_be_bytes([plain[5], plain[6], plain[7], plain[8]]) & 0x7fff_ffff;
            frames.push((plain[3], plain[4], stream, plain[9..9 + len].to_vec()));
            plain.drain(..9 + len);
        }
        frames
    }

    /// The DNS-over-TLS messages whole in the plaintext, taken off its
    /// front.
    fn take_messages(&mut self) -> Vec<Vec<u8>> {
        let plain = &mut self.plain;
        let mut messages = Vec::new();
        while plain.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([plain[0], plain[1]]));
            if plain.len() < 2 + len {
                break;
            }
            messages.push(plain[2..2 + len].to_vec());
            plain.drain(..2 + len);
        }
        messages
    }
}

/// Queries for host-1 .. host-`count` with id 0, each asked once over UDP
/// first so that they are cache hits.
fn warm_queries(server: &TestServer, count: u32) -> Vec<Vec<u8>> {
    (1..=count)
        .map(|i| {
            let mut q = query(0, &format!("host-{i}.zone.test."), RecordType::A, None);
            q[..2].copy_from_slice(&(i as u16).to_be_bytes());
            common::assert_single_a(&server.client().exchange(&q), host_v4(i));
            q[..2].copy_from_slice(&[0, 0]);
            q
        })
        .collect()
}

/// Sixteen DoH GETs written at once (one TLS record, so one read for the
/// server) are cache hits answered together: their replies come back in
/// one or two TLS records, not one record (and one send) each, which is
/// what h2's flush per accepted request made. Each reply is checked.
#[test]
fn doh_replies_to_one_read_leave_together() {
    const REQUESTS: u32 = 16;
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doh-gather", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    // RFC 8484 section 4.1: id 0 over DoH.
    let queries = warm_queries(&server.server, REQUESTS);
    let mut client = RecordCountingClient::connect(server.doh, client_config(&certs.ca, b"h2"));
    // The preface and our SETTINGS; then wait for the server's SETTINGS
    // and its acknowledgement of ours, so that what comes after the
    // requests is their replies (and maybe a session ticket).
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(h2_frame(4, 0, 0, &[]));
    client.send(&opening);
    let (mut settings, mut acked) = (false, false);
    while !(settings && acked) {
        client.receive();
        for (kind, flags, _, _) in client.take_frames() {
            settings |= kind == 4 && flags & 1 == 0;
            acked |= kind == 4 && flags & 1 == 1;
        }
    }
    let mut requests = h2_frame(4, 1, 0, &[]);
    for (i, q) in queries.iter().enumerate() {
        let mut block = vec![0x82, 0x87]; // :method GET, :scheme https
        block.push(0x04); // :path, literal, not indexed
        let path = format!(
            "/dns-query?dns={}",
            data_encoding::BASE64URL_NOPAD.encode(q)
        );
        hpack_string(&mut block, &path);
        block.push(0x01); // :authority
        hpack_string(&mut block, NAME);
        // END_STREAM | END_HEADERS, streams 1, 3, 5, ...
        requests.extend(h2_frame(1, 0x5, 2 * i as u32 + 1, &block));
    }
    client.send(&requests);
    client.records = 0;
    let mut bodies: std::collections::HashMap<u32, Vec<u8>> = Default::default();
    let mut done = 0;
    while done < REQUESTS {
        client.receive();
        for (kind, flags, stream, payload) in client.take_frames() {
            if kind == 1 {
                // :status 200 is the static table's index 8.
                assert_eq!(payload.first(), Some(&0x88), "stream {stream}: not a 200");
            }
            if kind == 0 {
                bodies
                    .entry(stream)
                    .or_default()
                    .extend_from_slice(&payload);
                if flags & 1 == 1 {
                    done += 1;
                    let i = stream.div_ceil(2);
                    let reply = Reply::check(bodies[&stream].clone());
                    reply.assert_answers(&queries[i as usize - 1]);
                    common::assert_single_a(&reply, host_v4(i));
                }
            }
        }
    }
    assert!(
        client.records <= 3,
        "{REQUESTS} replies came in {} TLS records: not sent together",
        client.records
    );
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.doh.handshakes), 1);
}

/// The same over DNS over TLS: sixteen pipelined queries in one record
/// get their (padded) replies in one or two records, not sixteen.
#[test]
fn dot_replies_to_one_read_leave_together() {
    const QUERIES: u32 = 16;
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("dot-gather", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    let mut queries = warm_queries(&server.server, QUERIES);
    let mut client = RecordCountingClient::connect(server.dot, client_config(&certs.ca, b"dot"));
    // A first exchange, so that a session ticket sent after the handshake
    // is not counted with the replies.
    let mut framed = Vec::new();
    for (i, q) in queries.iter_mut().enumerate() {
        q[..2].copy_from_slice(&(i as u16 + 1).to_be_bytes());
        framed.extend_from_slice(&(q.len() as u16).to_be_bytes());
        framed.extend_from_slice(q);
    }
    let first = framed[..2 + queries[0].len()].to_vec();
    client.send(&first);
    while client.take_messages().is_empty() {
        client.receive();
    }
    client.records = 0;
    client.send(&framed);
    let mut seen = Vec::new();
    while seen.len() < QUERIES as usize {
        client.receive();
        for message in client.take_messages() {
            let reply = Reply::check(message);
            let id = reply.id();
            reply.assert_answers(&queries[usize::from(id) - 1]);
            common::assert_single_a(&reply, host_v4(u32::from(id)));
            seen.push(id);
        }
    }
    assert!(
        client.records <= 3,
        "{QUERIES} replies came in {} TLS records: not sent together",
        client.records
    );
    server.server.stop();
}

/// kdig +tls, checking the certificate by its CA and name: the answer,
/// TLS used, and the reply padded.
#[test]
fn kdig_over_tls_gets_answers() {
    let Some(kdig) = peers::find("kdig", "knot-dnsutils") else {
        return;
    };
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("kdig-tls", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    let output = kdig_run(
        &kdig,
        server.dot,
        &certs,
        &["+tls", "+padding"],
        "host-21.zone.test.",
    );
    assert!(output.contains("status: NOERROR"), "{output}");
    assert!(output.contains(&host_v4(21).to_string()), "{output}");
    assert!(output.contains("TLS session"), "{output}");
    assert!(output.contains("PADDING"), "{output}");
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.dot.handshakes), 1);
}

/// kdig +https (POST) and +https-get: answers over HTTP/2.
#[test]
fn kdig_over_https_post_and_get_gets_answers_over_http2() {
    let Some(kdig) = peers::find("kdig", "knot-dnsutils") else {
        return;
    };
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("kdig-https", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    for (flags, n) in [(&["+https"][..], 31), (&["+https", "+https-get"][..], 32)] {
        let output = kdig_run(
            &kdig,
            server.doh,
            &certs,
            flags,
            &format!("host-{n}.zone.test."),
        );
        assert!(output.contains("status: NOERROR"), "{flags:?}: {output}");
        assert!(
            output.contains(&host_v4(n).to_string()),
            "{flags:?}: {output}"
        );
        assert!(
            output.contains("HTTP/2"),
            "{flags:?}: HTTP/2 not used: {output}"
        );
    }
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.doh.queries), 2);
    assert_eq!(total(&reports, |r| r.resolver.queries_https), 2);
}

/// Run kdig against `server` trusting the test CA; its output.
fn kdig_run(
    kdig: &Path,
    server: SocketAddr,
    certs: &TestCerts,
    flags: &[&str],
    name: &str,
) -> String {
    assert_eq!(server.ip(), LOOPBACK);
    let output = Command::new(kdig)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        .args(flags)
        .arg(format!("+tls-ca={}", certs.ca.display()))
        .arg(format!("+tls-hostname={NAME}"))
        .args(["+time=3", "+retry=0"])
        .args([name, "A"])
        .stdin(Stdio::null())
        .output()
        .expect("run kdig");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// curl against the DoH listener: HTTP/2 used, a GET answered, and bad
/// requests refused with the right status and counted.
#[test]
fn curl_over_doh_uses_http2_and_bad_requests_get_http_errors() {
    let Some(curl) = peers::find("curl", "curl") else {
        return;
    };
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("curl", NAME);
    let config = encrypted_config(upstream.local_addr(), &certs, "");
    let server = start_encrypted(&config);
    let url = |target: &str| format!("https://{NAME}:{}{target}", server.doh.port());
    let curl_run = |args: &[&str], target: &str| {
        let body = std::env::temp_dir().join(format!(
            "heimdall-curl-{}-{}",
            std::process::id(),
            target.len()
        ));
        let output = Command::new(&curl)
            .args(["-sS", "-v", "--max-time", "5"])
            .arg("--resolve")
            .arg(format!("{NAME}:{}:127.0.0.1", server.doh.port()))
            .arg("--cacert")
            .arg(&certs.ca)
            .args(["-o"])
            .arg(&body)
            .args(["-w", "%{http_code} %{http_version}"])
            .args(args)
            .arg(url(target))
            .stdin(Stdio::null())
            .output()
            .expect("run curl");
        let bytes = std::fs::read(&body).unwrap_or_default();
        let _ = std::fs::remove_file(&body);
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
            bytes,
        )
    };
    let q = query(0, "host-41.zone.test.", RecordType::A, Some(1232));
    let encoded = data_encoding::BASE64URL_NOPAD.encode(&q);
    let (status, verbose, body) = curl_run(&["--http2"], &format!("/dns-query?dns={encoded}"));
    assert_eq!(status, "200 2", "{verbose}");
    assert!(verbose.contains("ALPN: server accepted h2"), "{verbose}");
    assert!(
        verbose.contains("content-type: application/dns-message"),
        "{verbose}"
    );
    assert!(verbose.contains("cache-control: max-age="), "{verbose}");
    let reply = Reply::check(body);
    reply.assert_answers(&q);
    common::assert_single_a(&reply, host_v4(41));
    // The same over HTTP/1.1.
    let (status, verbose, body) = curl_run(&["--http1.1"], &format!("/dns-query?dns={encoded}"));
    assert_eq!(status, "200 1.1", "{verbose}");
    common::assert_single_a(&Reply::check(body), host_v4(41));
    // Bad base64url.
    let (status, verbose, _) = curl_run(&["--http2"], "/dns-query?dns=***");
    assert_eq!(status, "400 2", "{verbose}");
    // No dns parameter at all, and another path.
    assert_eq!(curl_run(&["--http2"], "/dns-query").0, "400 2");
    assert_eq!(curl_run(&["--http2"], "/other?dns=AAAA").0, "404 2");
    // A POST of the wrong type.
    let query_file = std::env::temp_dir().join(format!("heimdall-q-{}", std::process::id()));
    std::fs::write(&query_file, &q).unwrap();
    let data = format!("@{}", query_file.display());
    let (status, verbose, _) = curl_run(
        &[
            "--http2",
            "-H",
            "content-type: text/plain",
            "--data-binary",
            &data,
        ],
        "/dns-query",
    );
    assert_eq!(status, "415 2", "{verbose}");
    // The right type is answered.
    let (status, verbose, body) = curl_run(
        &[
            "--http2",
            "-H",
            "content-type: application/dns-message",
            "--data-binary",
            &data,
        ],
        "/dns-query",
    );
    assert_eq!(status, "200 2", "{verbose}");
    common::assert_single_a(&Reply::check(body), host_v4(41));
    // Over the size limit.
    std::fs::write(&query_file, vec![0u8; 70_000]).unwrap();
    let (status, verbose, _) = curl_run(
        &[
            "--http2",
            "-H",
            "content-type: application/dns-message",
            "--data-binary",
            &data,
        ],
        "/dns-query",
    );
    assert_eq!(status, "413 2", "{verbose}");
    let _ = std::fs::remove_file(&query_file);
    // UDP is served all the while.
    let reply =
        server
            .server
            .client()
            .exchange(&query(5, "host-5.zone.test.", RecordType::A, None));
    common::assert_single_a(&reply, host_v4(5));
    let reports = server.server.stop();
    assert_eq!(total(&reports, |r| r.doh_errors.bad_request), 2);
    assert_eq!(total(&reports, |r| r.doh_errors.not_found), 1);
    assert_eq!(total(&reports, |r| r.doh_errors.bad_media_type), 1);
    assert_eq!(total(&reports, |r| r.doh_errors.too_large), 1);
    assert_eq!(total(&reports, |r| r.doh.queries), 3);
}

/// curl resolves a name through heimdall with `--doh-url` (over HTTP/2),
/// then fetches from the address it got: the control endpoint.
#[test]
fn curl_resolves_through_doh() {
    let Some(curl) = peers::find("curl", "curl") else {
        return;
    };
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("curl-doh", NAME);
    // The name resolves to 127.0.0.1, where the control endpoint is.
    let config = encrypted_config(
        upstream.local_addr(),
        &certs,
        "local:\n  records: [\"doh-target.test. 60 IN A 127.0.0.1\"]\n",
    );
    let server = start_encrypted(&config);
    let control = server.server.control_addr();
    let output = Command::new(&curl)
        .args(["-sS", "-v", "--max-time", "5"])
        .arg("--doh-url")
        .arg(format!("https://127.0.0.1:{}/dns-query", server.doh.port()))
        .arg("--cacert")
        .arg(&certs.ca)
        .arg(format!("http://doh-target.test:{}/health", control.port()))
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
    let reports = server.server.stop();
    // A and AAAA, each its own request.
    assert!(total(&reports, |r| r.doh.queries) >= 1);
    assert!(total(&reports, |r| r.doh.handshakes) >= 1);
}

/// A heimdall forwarding over TLS to another heimdall's DNS-over-TLS
/// listener: answers, one connection reused, and a wrong name or an
/// unknown CA refused, counted and failed over.
#[test]
fn upstream_over_tls_to_heimdall() {
    let origin = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("upstream", NAME);
    let front = start_encrypted(&encrypted_config(origin.local_addr(), &certs, ""));
    let forwarder = |name: &str, ca: &Path| {
        let yaml = format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [{{address: \"{addr}\", transport: tls, name: {name}}}]\n  \
             timeout: 500ms\n  attempts: 1\n  tls_ca_file: {ca}\n\
             log:\n  level: warn\ndnssec:\n  mode: off\n",
            addr = front.dot,
            ca = ca.display(),
        );
        let mut config = Config::from_yaml_str(&yaml, "forwarder.yaml").unwrap();
        common::listen_on_any_port(&mut config);
        start_server(&config)
    };
    // The right name and CA.
    let good = forwarder(NAME, &certs.ca);
    let client = good.client();
    for n in 51..=55u32 {
        let reply = client.exchange(&query(
            n as u16,
            &format!("host-{n}.zone.test."),
            RecordType::A,
            None,
        ));
        common::assert_single_a(&reply, host_v4(n));
    }
    let reports = good.stop();
    assert_eq!(
        total(&reports, |r| r.upstream_tls.connects),
        1,
        "one connection, reused"
    );
    assert_eq!(total(&reports, |r| r.upstream_tls.handshake_failures), 0);
    // A name the certificate does not carry.
    let wrong_name = forwarder("other.test", &certs.ca);
    let reply = wrong_name
        .client()
        .exchange(&query(60, "host-60.zone.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = wrong_name.stop();
    assert!(total(&reports, |r| r.upstream_tls.handshake_failures) >= 1);
    assert_eq!(total(&reports, |r| r.upstream_tls.connects), 0);
    // A CA that did not sign it.
    let other = TestCerts::new("other-ca", NAME);
    let unknown_ca = forwarder(NAME, &other.ca);
    let reply = unknown_ca
        .client()
        .exchange(&query(61, "host-61.zone.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = unknown_ca.stop();
    assert!(total(&reports, |r| r.upstream_tls.handshake_failures) >= 1);
    let front_reports = front.server.stop();
    assert_eq!(total(&front_reports, |r| r.dot.handshakes), 1);
    assert!(total(&front_reports, |r| r.dot.handshake_failures) >= 2);
}

/// A server started without a `tls` upstream builds no TLS client setup
/// (it would parse the system's roots for nothing); a reload that adds
/// one builds it on the first handshake, with the CA file the server
/// started with, and the upstream answers over TLS.
#[test]
fn a_reload_that_adds_a_tls_upstream_sets_tls_up_then() {
    let origin = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("added", NAME);
    let front = start_encrypted(&encrypted_config(origin.local_addr(), &certs, ""));
    let yaml = |servers: String| {
        format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [{servers}]\n  timeout: 500ms\n  attempts: 1\n  \
             tls_ca_file: {ca}\n\
             log:\n  level: warn\ndnssec:\n  mode: off\n",
            ca = certs.ca.display(),
        )
    };
    let config_with = |servers: String| {
        let mut config = Config::from_yaml_str(&yaml(servers), "forwarder.yaml").unwrap();
        common::listen_on_any_port(&mut config);
        config
    };
    let plain = config_with(format!("\"{}\"", origin.local_addr()));
    let over_tls = config_with(format!(
        "{{address: \"{}\", transport: tls, name: {NAME}}}",
        front.dot
    ));
    let options = heimdall_server::StartOptions {
        reload_source: Some(Arc::new(move || Ok(over_tls.clone()))),
        ..heimdall_server::StartOptions::default()
    };
    let server = common::start_server_with(&plain, options);
    let client = server.client();
    let reply = client.exchange(&query(70, "host-70.zone.test.", RecordType::A, None));
    common::assert_single_a(&reply, host_v4(70));
    let (status, body) = common::http::request(server.control_addr(), "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    let reply = client.exchange(&query(99, "host-99.zone.test.", RecordType::A, None));
    common::assert_single_a(&reply, host_v4(99));
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.upstream_tls.connects), 1);
    assert_eq!(total(&reports, |r| r.upstream_tls.handshake_failures), 0);
    let front_reports = front.server.stop();
    assert_eq!(total(&front_reports, |r| r.dot.handshakes), 1);
}

/// A pinned `tls` upstream: accepted by its key alone (the CA file names
/// a CA that did not sign it), refused with another pin.
#[test]
fn a_pinned_tls_upstream_is_checked_by_its_key() {
    let origin = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("pinned", NAME);
    let front = start_encrypted(&encrypted_config(origin.local_addr(), &certs, ""));
    let other = TestCerts::new("pinned-other", NAME);
    let forwarder = |pin: &str| {
        let yaml = format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [{{address: \"{addr}\", transport: tls, name: {NAME}, \
             pin: \"{pin}\"}}]\n  timeout: 500ms\n  attempts: 1\n  tls_ca_file: {ca}\n\
             log:\n  level: warn\ndnssec:\n  mode: off\n",
            addr = front.dot,
            ca = other.ca.display(),
        );
        let mut config = Config::from_yaml_str(&yaml, "forwarder.yaml").unwrap();
        common::listen_on_any_port(&mut config);
        start_server(&config)
    };
    let good = forwarder(&certs.pin);
    let reply = good
        .client()
        .exchange(&query(120, "host-120.zone.test.", RecordType::A, None));
    common::assert_single_a(&reply, host_v4(120));
    let reports = good.stop();
    assert_eq!(total(&reports, |r| r.upstream_tls.connects), 1);
    let bad = forwarder(&other.pin);
    let reply = bad
        .client()
        .exchange(&query(121, "host-121.zone.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = bad.stop();
    assert!(total(&reports, |r| r.upstream_tls.handshake_failures) >= 1);
    front.server.stop();
}

/// A heimdall forwarding over HTTPS (HTTP/2) to another heimdall's DoH
/// listener: answers over one reused connection, counted as HTTPS
/// queries at the front; a wrong name is refused and counted.
#[test]
fn upstream_over_https_to_heimdall() {
    let origin = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("upstream-doh", NAME);
    let front = start_encrypted(&encrypted_config(origin.local_addr(), &certs, ""));
    let forwarder = |name: &str| {
        let yaml = format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [{{address: \"{addr}\", transport: https, name: {name}}}]\n  \
             timeout: 500ms\n  attempts: 1\n  tls_ca_file: {ca}\n\
             log:\n  level: warn\ndnssec:\n  mode: off\n",
            addr = front.doh,
            ca = certs.ca.display(),
        );
        let mut config = Config::from_yaml_str(&yaml, "forwarder.yaml").unwrap();
        common::listen_on_any_port(&mut config);
        start_server(&config)
    };
    let good = forwarder(NAME);
    let client = good.client();
    // Several at once: one HTTP/2 stream each on the one connection.
    let queries: Vec<Vec<u8>> = (81..=85u16)
        .map(|n| query(n, &format!("host-{n}.zone.test."), RecordType::A, None))
        .collect();
    for q in &queries {
        client.send(q);
    }
    for q in &queries {
        let reply = client.reply_to(q);
        let n = u32::from(reply.id());
        common::assert_single_a(&reply, host_v4(n));
    }
    let reports = good.stop();
    assert_eq!(
        total(&reports, |r| r.upstream_tls.connects),
        1,
        "one connection, reused"
    );
    assert_eq!(total(&reports, |r| r.upstream_tls.errors), 0);
    let wrong_name = forwarder("other.test");
    let reply = wrong_name
        .client()
        .exchange(&query(90, "host-90.zone.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = wrong_name.stop();
    assert!(total(&reports, |r| r.upstream_tls.handshake_failures) >= 1);
    let front_reports = front.server.stop();
    assert_eq!(total(&front_reports, |r| r.doh.queries), 5);
    assert_eq!(total(&front_reports, |r| r.resolver.queries_https), 5);
}

/// An `https` upstream with its own `path`: a heimdall whose DoH listener
/// answers at `/custom` (`tls.https_path`) is asked there and answers; a
/// forwarder posting to the default `/dns-query` gets 404 (counted at
/// the front) and SERVFAIL.
#[test]
fn an_https_upstream_is_asked_at_its_path() {
    let origin = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("upstream-doh-path", NAME);
    let mut front_config = encrypted_config(origin.local_addr(), &certs, "");
    front_config.tls.https_path = "/custom".to_string();
    let front = start_encrypted(&front_config);
    let forwarder = |path: &str| {
        let yaml = format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [{{address: \"{addr}\", transport: https, name: {NAME}{path}}}]\n  \
             timeout: 500ms\n  attempts: 1\n  tls_ca_file: {ca}\n\
             log:\n  level: warn\ndnssec:\n  mode: off\n",
            addr = front.doh,
            ca = certs.ca.display(),
        );
        let mut config = Config::from_yaml_str(&yaml, "forwarder.yaml").unwrap();
        common::listen_on_any_port(&mut config);
        start_server(&config)
    };
    let good = forwarder(", path: /custom");
    for n in 101..=103u32 {
        let reply = good.client().exchange(&query(
            n as u16,
            &format!("host-{n}.zone.test."),
            RecordType::A,
            None,
        ));
        common::assert_single_a(&reply, host_v4(n));
    }
    let reports = good.stop();
    assert_eq!(total(&reports, |r| r.upstream_tls.errors), 0);
    let default_path = forwarder("");
    let reply =
        default_path
            .client()
            .exchange(&query(110, "host-110.zone.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = default_path.stop();
    assert!(total(&reports, |r| r.upstream_tls.errors) >= 1);
    let front_reports = front.server.stop();
    assert_eq!(total(&front_reports, |r| r.doh.queries), 3);
    assert!(total(&front_reports, |r| r.doh_errors.not_found) >= 1);
}

/// Unbound, serving DNS over TLS, as the upstream: answers; an unknown CA
/// is refused and counted.
#[test]
fn upstream_over_tls_to_unbound() {
    let Some(unbound) = peers::find("unbound", "unbound") else {
        return;
    };
    let certs = TestCerts::new("unbound", NAME);
    let (dir, port) = (certs.dir.join("unbound"), free_tcp_port());
    std::fs::create_dir_all(&dir).unwrap();
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  tls-port: {port}\n  \
         tls-service-key: \"{key}\"\n  tls-service-pem: \"{cert}\"\n  \
         do-ip6: no\n  do-udp: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  \
         pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 1\n  \
         access-control: 127.0.0.0/8 allow\n  \
         local-zone: \"tls.test.\" static\n  \
         local-data: \"www.tls.test. 300 IN A 192.0.2.53\"\n\
         remote-control:\n  control-enable: no\n",
        key = certs.key.display(),
        cert = certs.cert.display(),
        dir = dir.display(),
    );
    let conf_path = dir.join("unbound.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let log = std::fs::File::create(dir.join("unbound.log")).unwrap();
    let mut child = Command::new(&unbound)
        .args(["-d", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start unbound");
    let _guard = KillOnDrop(&mut child);
    let upstream = SocketAddr::from((LOOPBACK, port));
    let listening = common::wait_until(Duration::from_secs(10), || {
        TcpStream::connect(upstream).is_ok()
    });
    assert!(
        listening,
        "unbound did not listen on {upstream}: {}",
        std::fs::read_to_string(dir.join("unbound.log")).unwrap_or_default()
    );
    let forwarder = |ca: &Path| {
        let yaml = format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [{{address: \"{upstream}\", transport: tls, name: {NAME}}}]\n  \
             timeout: 1s\n  attempts: 1\n  tls_ca_file: {ca}\n\
             log:\n  level: warn\ndnssec:\n  mode: off\n",
            ca = ca.display(),
        );
        let mut config = Config::from_yaml_str(&yaml, "forwarder.yaml").unwrap();
        common::listen_on_any_port(&mut config);
        start_server(&config)
    };
    let good = forwarder(&certs.ca);
    let reply = good
        .client()
        .exchange(&query(70, "www.tls.test.", RecordType::A, None));
    common::assert_single_a(&reply, "192.0.2.53".parse().unwrap());
    let reports = good.stop();
    assert_eq!(total(&reports, |r| r.upstream_tls.connects), 1);
    let other = TestCerts::new("unbound-other", NAME);
    let bad = forwarder(&other.ca);
    let reply = bad
        .client()
        .exchange(&query(71, "www.tls.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = bad.stop();
    assert!(total(&reports, |r| r.upstream_tls.handshake_failures) >= 1);
    assert_eq!(total(&reports, |r| r.upstream_tls.connects), 0);
}

/// dnsdist, serving DNS over HTTPS (its h2o listener) in front of the
/// synthetic upstream, as heimdall's `https` upstream: answers; an
/// unknown CA is refused and counted.
#[test]
fn upstream_over_https_to_dnsdist() {
    let Some(dnsdist) = peers::find("dnsdist", "dnsdist") else {
        return;
    };
    let origin = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("dnsdist", NAME);
    let (plain_port, doh_port) = (free_tcp_port(), free_tcp_port());
    let dir = certs.dir.join("dnsdist");
    std::fs::create_dir_all(&dir).unwrap();
    // No security polling: it would ask the system's resolver.
    let conf = format!(
        "setSecurityPollSuffix(\"\")\n\
         setLocal(\"127.0.0.1:{plain_port}\")\n\
         addDOHLocal(\"127.0.0.1:{doh_port}\", \"{cert}\", \"{key}\", \"/dns-query\")\n\
         newServer({{address=\"{origin}\"}})\n",
        cert = certs.cert.display(),
        key = certs.key.display(),
        origin = origin.local_addr(),
    );
    let conf_path = dir.join("dnsdist.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let log = std::fs::File::create(dir.join("dnsdist.log")).unwrap();
    let mut child = Command::new(&dnsdist)
        .args(["--supervised", "--disable-syslog", "-C"])
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start dnsdist");
    let _guard = KillOnDrop(&mut child);
    let upstream = SocketAddr::from((LOOPBACK, doh_port));
    let listening = common::wait_until(Duration::from_secs(10), || {
        TcpStream::connect(upstream).is_ok()
    });
    assert!(
        listening,
        "dnsdist did not listen on {upstream}: {}",
        std::fs::read_to_string(dir.join("dnsdist.log")).unwrap_or_default()
    );
    let forwarder = |ca: &Path| {
        let yaml = format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [{{address: \"{upstream}\", transport: https, name: {NAME}}}]\n  \
             timeout: 1s\n  attempts: 1\n  tls_ca_file: {ca}\n\
             log:\n  level: warn\ndnssec:\n  mode: off\n",
            ca = ca.display(),
        );
        let mut config = Config::from_yaml_str(&yaml, "forwarder.yaml").unwrap();
        common::listen_on_any_port(&mut config);
        start_server(&config)
    };
    let good = forwarder(&certs.ca);
    let client = good.client();
    for n in 101..=103u32 {
        let reply = client.exchange(&query(
            n as u16,
            &format!("host-{n}.zone.test."),
            RecordType::A,
            None,
        ));
        common::assert_single_a(&reply, host_v4(n));
    }
    let reports = good.stop();
    assert_eq!(total(&reports, |r| r.upstream_tls.connects), 1);
    let other = TestCerts::new("dnsdist-other", NAME);
    let bad = forwarder(&other.ca);
    let reply = bad
        .client()
        .exchange(&query(110, "host-110.zone.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = bad.stop();
    assert!(total(&reports, |r| r.upstream_tls.handshake_failures) >= 1);
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP port free on 127.0.0.1 now.
fn free_tcp_port() -> u16 {
    let socket = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let _ = UdpSocket::bind((LOOPBACK, 0));
    socket.local_addr().unwrap().port()
}
