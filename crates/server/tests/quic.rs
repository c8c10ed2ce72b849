//! End-to-end tests of DNS over QUIC (RFC 9250) to clients, over real
//! sockets on 127.0.0.1 with certificates the tests make (rcgen) and kdig
//! (`+quic`, knot-dnsutils) or a quinn-proto client of the test's own as
//! the client: answers (padded, Message ID 0), garbage datagrams dropped
//! and counted while UDP clients are served, connections beyond
//! `tcp.max_connections` refused, a query with a Message ID closed with
//! DOQ_PROTOCOL_ERROR, a resumed session counted, and a socket on
//! 0.0.0.0 answering from the address the client wrote to.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

// The SPKI pin is for the upstream tests of encrypted.rs.
#[allow(dead_code)]
#[path = "common/certs.rs"]
mod certs;
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use certs::TestCerts;
use common::{LOOPBACK, TestServer, query, start_server, start_upstream, total};
use heimdall_config::Config;
use heimdall_loadtest::UpstreamConfig;
use heimdall_loadtest::upstream::zone::host_v4;
use heimdall_testkit::peers;
use heimdall_wire::RecordType;

/// The name the test certificates carry.
const NAME: &str = "dns.test";

/// A server forwarding to `upstream`, serving DNS over QUIC with `certs`.
fn quic_config(upstream: SocketAddr, certs: &TestCerts) -> Config {
    certs.server_config(upstream, "  quic_listen: [127.0.0.1:853]\n", "")
}

fn start_quic(config: &Config) -> (TestServer, SocketAddr) {
    let server = start_server(config);
    let quic = server.quic_addr();
    assert_eq!(quic.ip(), LOOPBACK);
    assert_ne!(quic.port(), 0);
    (server, quic)
}

/// kdig +quic against `server`, trusting the test CA; its output.
fn kdig_quic(kdig: &Path, server: SocketAddr, certs: &TestCerts, name: &str) -> String {
    assert_eq!(server.ip(), LOOPBACK, "tests only talk to 127.0.0.1");
    let output = Command::new(kdig)
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string()])
        // +tls-ca and +tls-hostname imply +tls: +quic comes after them.
        .arg(format!("+tls-ca={}", certs.ca.display()))
        .arg(format!("+tls-hostname={NAME}"))
        .args(["+quic", "+padding"])
        .args(["+time=2", "+retry=0"])
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

/// Whether `output` is kdig's answer for host-`n`.
fn answered(output: &str, n: u32) -> bool {
    output.contains("status: NOERROR") && output.contains(&host_v4(n).to_string())
}

#[test]
fn kdig_over_quic_gets_padded_answers_with_id_zero() {
    let Some(kdig) = peers::find("kdig", "knot-dnsutils") else {
        return;
    };
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doq", NAME);
    let config = quic_config(upstream.local_addr(), &certs);
    let (server, quic) = start_quic(&config);
    // A miss (answered once the upstream has), then the same name from
    // the cache.
    for _ in 0..2 {
        let output = kdig_quic(&kdig, quic, &certs, "host-41.zone.test.");
        assert!(answered(&output, 41), "{output}");
        assert!(output.contains("QUIC"), "QUIC not used: {output}");
        assert!(output.contains("PADDING"), "reply not padded: {output}");
        assert!(output.contains("id: 0"), "Message ID not 0: {output}");
    }
    // The answer the DoQ queries cached, over UDP.
    let udp = server
        .client()
        .exchange(&query(5, "host-41.zone.test.", RecordType::A, None));
    common::assert_single_a(&udp, host_v4(41));
    // One answer waited on the upstream, one came from the cache.
    let samples = common::http::metrics(&common::http::get_ok(server.control_addr(), "/metrics"));
    for cache in ["hit", "miss"] {
        let filter = [("transport", "quic"), ("cache", cache)];
        assert_eq!(
            samples.sum("heimdall_answer_duration_seconds_count", &filter),
            1.0,
            "{cache}"
        );
    }
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.doq.connections.accepted), 2);
    assert_eq!(total(&reports, |r| r.doq.connections.handshakes), 2);
    assert_eq!(total(&reports, |r| r.doq.connections.queries), 2);
    assert_eq!(total(&reports, |r| r.resolver.queries_quic), 2);
    assert_eq!(total(&reports, |r| r.doq.protocol_errors), 0);
    assert_eq!(total(&reports, |r| r.doq.connections.replies_orphaned), 0);
}

#[test]
fn garbage_datagrams_are_dropped_and_counted_and_udp_is_still_served() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doq-garbage", NAME);
    let config = quic_config(upstream.local_addr(), &certs);
    let (server, quic) = start_quic(&config);
    let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    // Not QUIC: a DNS query, and a short run of zero bytes.
    let dns = query(7, "host-7.zone.test.", RecordType::A, None);
    for garbage in [&dns[..], &[0u8; 40][..]] {
        socket.send_to(garbage, quic).unwrap();
    }
    // Nothing comes back.
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 1500];
    assert!(socket.recv_from(&mut buf).is_err(), "garbage was answered");
    // Plain DNS is served meanwhile.
    let reply = server.client().exchange(&dns);
    common::assert_single_a(&reply, host_v4(7));
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.doq.datagrams_dropped), 2);
    assert_eq!(total(&reports, |r| r.doq.connections.accepted), 0);
}

/// The first datagram kdig sends for a QUIC connection (an Initial with
/// its ClientHello), caught on a socket of the test's own.
fn captured_initial(kdig: &Path) -> Vec<u8> {
    let catcher = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    catcher
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let port = catcher.local_addr().unwrap().port();
    let mut child = Command::new(kdig)
        .args(["@127.0.0.1", "-p", &port.to_string()])
        .args(["+quic", "+time=1", "+retry=0", "example.test.", "A"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run kdig");
    let mut buf = [0u8; 2048];
    let (len, _) = catcher.recv_from(&mut buf).expect("kdig's Initial");
    let _ = child.wait();
    assert!(buf[0] & 0xc0 == 0xc0, "a long-header packet");
    buf[..len].to_vec()
}

#[test]
fn connections_beyond_the_limit_are_refused() {
    let Some(kdig) = peers::find("kdig", "knot-dnsutils") else {
        return;
    };
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doq-limit", NAME);
    let mut config = quic_config(upstream.local_addr(), &certs);
    config.tcp.max_connections = 1;
    let (server, quic) = start_quic(&config);
    // A connection that begins its handshake and goes no further: it holds
    // the one place until tcp.read_timeout (500ms) ends it.
    let initial = captured_initial(&kdig);
    let holder = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    holder.send_to(&initial, quic).unwrap();
    holder
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (len, from) = holder.recv_from(&mut buf).expect("the server's handshake");
    assert_eq!(from, quic);
    assert!(len > 0);
    // The table is full: kdig is refused.
    let refused = kdig_quic(&kdig, quic, &certs, "host-51.zone.test.");
    assert!(
        !answered(&refused, 51),
        "answered over the limit: {refused}"
    );
    // Once the held handshake has timed out, kdig gets in.
    std::thread::sleep(Duration::from_millis(700));
    let output = kdig_quic(&kdig, quic, &certs, "host-52.zone.test.");
    assert!(answered(&output, 52), "{output}");
    let reports = server.stop();
    assert!(total(&reports, |r| r.doq.connections.refused) >= 1);
    assert_eq!(total(&reports, |r| r.doq.connections.handshakes), 1);
    assert!(total(&reports, |r| r.doq.connections.handshake_failures) >= 1);
    assert_eq!(total(&reports, |r| r.doq.connections.queries), 1);
}

/// A DNS-over-QUIC client on quinn-proto, driven over a blocking socket
/// on 127.0.0.1: what heimdall's own DoQ side speaks, from the other end.
struct DoqClient {
    socket: UdpSocket,
    endpoint: quinn_proto::Endpoint,
    handle: quinn_proto::ConnectionHandle,
    conn: quinn_proto::Connection,
    connected: bool,
    lost: Option<quinn_proto::ConnectionError>,
}

/// A quinn-proto client configuration trusting `certs`' CA, ALPN `doq`,
/// with rustls's session cache (for resumption).
fn doq_client_config(certs: &TestCerts) -> quinn_proto::ClientConfig {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&certs.ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"doq".to_vec()];
    let crypto = quinn_proto::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    quinn_proto::ClientConfig::new(std::sync::Arc::new(crypto))
}

impl DoqClient {
    fn connect(server: SocketAddr, config: quinn_proto::ClientConfig) -> Self {
        assert!(
            matches!(server.ip(), std::net::IpAddr::V4(v4) if v4.is_loopback()),
            "tests only talk to 127.0.0.0/8"
        );
        let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        let mut endpoint = quinn_proto::Endpoint::new(
            std::sync::Arc::new(quinn_proto::EndpointConfig::default()),
            None,
            true,
            None,
        );
        let (handle, conn) = endpoint
            .connect(std::time::Instant::now(), config, server, NAME)
            .unwrap();
        let mut client = Self {
            socket,
            endpoint,
            handle,
            conn,
            connected: false,
            lost: None,
        };
        client.drive(|client| client.connected || client.lost.is_some());
        assert!(client.connected, "no handshake: {:?}", client.lost);
        client
    }

    /// Exchange packets until `done` holds or 3 s pass.
    fn drive(&mut self, done: impl FnMut(&Self) -> bool) {
        self.drive_within(Duration::from_secs(3), done);
    }

    /// Exchange packets until `done` holds or `limit` passes.
    fn drive_within(&mut self, limit: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = std::time::Instant::now() + limit;
        let mut buf = Vec::new();
        let mut datagram = vec![0u8; 65_535];
        loop {
            let now = std::time::Instant::now();
            if self.conn.poll_timeout().is_some_and(|due| due <= now) {
                self.conn.handle_timeout(now);
            }
            while let Some(event) = self.conn.poll_endpoint_events() {
                if let Some(event) = self.endpoint.handle_event(self.handle, event) {
                    self.conn.handle_event(event);
                }
            }
            loop {
                buf.clear();
                let Some(transmit) = self.conn.poll_transmit(now, 1, &mut buf) else {
                    break;
                };
                let _ = self
                    .socket
                    .send_to(&buf[..transmit.size], transmit.destination);
            }
            while let Some(event) = self.conn.poll() {
                match event {
                    quinn_proto::Event::Connected => self.connected = true,
                    quinn_proto::Event::ConnectionLost { reason } => self.lost = Some(reason),
                    _ => {}
                }
            }
            if done(self) || now >= deadline {
                return;
            }
            let wait = self
                .conn
                .poll_timeout()
                .map_or(deadline, |due| due.min(deadline))
                .saturating_duration_since(now)
                .clamp(Duration::from_millis(1), Duration::from_millis(20));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            if let Ok((len, from)) = self.socket.recv_from(&mut datagram) {
                buf.clear();
                let event = self.endpoint.handle(
                    std::time::Instant::now(),
                    from,
                    None,
                    None,
                    bytes::BytesMut::from(&datagram[..len]),
                    &mut buf,
                );
                if let Some(quinn_proto::DatagramEvent::ConnectionEvent(_, event)) = event {
                    self.conn.handle_event(event);
                }
            }
        }
    }

    /// Send `message` with its 2-byte length on a new stream, then FIN.
    fn send_query(&mut self, message: &[u8]) -> quinn_proto::StreamId {
        let id = self.conn.streams().open(quinn_proto::Dir::Bi).unwrap();
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        let mut stream = self.conn.send_stream(id);
        assert_eq!(stream.write(&framed).unwrap(), framed.len());
        stream.finish().unwrap();
        id
    }
}

/// RFC 9250 section 4.2.1: a query with a Message ID other than 0 is a
/// protocol error: the server closes the connection with
/// DOQ_PROTOCOL_ERROR (0x2) and counts it.
#[test]
fn a_query_with_a_message_id_is_closed_with_doq_protocol_error() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doq-protocol", NAME);
    let (server, quic) = start_quic(&quic_config(upstream.local_addr(), &certs));
    let mut client = DoqClient::connect(quic, doq_client_config(&certs));
    client.send_query(&query(0x1234, "host-1.zone.test.", RecordType::A, None));
    client.drive(|client| client.lost.is_some());
    match &client.lost {
        Some(quinn_proto::ConnectionError::ApplicationClosed(close)) => {
            assert_eq!(close.error_code, quinn_proto::VarInt::from_u32(0x2));
        }
        other => panic!("not closed with DOQ_PROTOCOL_ERROR: {other:?}"),
    }
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.doq.protocol_errors), 1);
    assert_eq!(total(&reports, |r| r.doq.connections.queries), 0);
}

/// A second DoQ connection resumes the first one's session (a ticket of
/// the core's key set), and is counted as resumed.
#[test]
fn a_doq_client_resumes_and_is_counted() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doq-resume", NAME);
    let (server, quic) = start_quic(&quic_config(upstream.local_addr(), &certs));
    let config = doq_client_config(&certs);
    let mut first = DoqClient::connect(quic, config.clone());
    // The tickets come after the handshake: answer a query to take them.
    first.send_query(&query(0, "host-1.zone.test.", RecordType::A, None));
    first.drive_within(Duration::from_millis(300), |_| false);
    first.conn.close(
        std::time::Instant::now(),
        quinn_proto::VarInt::from_u32(0),
        bytes::Bytes::new(),
    );
    first.drive_within(Duration::from_millis(100), |_| false);
    let second = DoqClient::connect(quic, config);
    assert!(second.connected);
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.doq.connections.handshakes), 2);
    assert_eq!(total(&reports, |r| r.doq.connections.resumptions), 1);
}

/// Whether the client has read a whole reply (its 2-byte length and
/// message) on `stream`; the message.
fn read_reply(
    conn: &mut quinn_proto::Connection,
    stream: quinn_proto::StreamId,
) -> Option<Vec<u8>> {
    let mut recv = conn.recv_stream(stream);
    let mut chunks = recv.read(true).ok()?;
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = chunks.next(usize::MAX) {
        bytes.extend_from_slice(&chunk.bytes);
    }
    let _ = chunks.finalize();
    let len = usize::from(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]));
    (bytes.len() == 2 + len).then(|| bytes[2..].to_vec())
}

/// A DoQ socket on 0.0.0.0 answers a client that writes to 127.0.0.2
/// from 127.0.0.2 (IP_PKTINFO): a reply from 127.0.0.1, the address the
/// kernel would pick, is dropped by the QUIC client, and no handshake
/// completes.
#[test]
fn a_wildcard_doq_socket_answers_from_the_address_written_to() {
    let upstream = start_upstream(UpstreamConfig::default());
    let certs = TestCerts::new("doq-wildcard", NAME);
    let mut config = quic_config(upstream.local_addr(), &certs);
    config.tls.quic_listen = vec![SocketAddr::from(([0, 0, 0, 0], 0))];
    let server = start_server(&config);
    let port = server.quic_addr().port();
    assert!(server.quic_addr().ip().is_unspecified());
    assert_ne!(port, 0);
    let target = SocketAddr::from(([127, 0, 0, 2], port));
    let mut client = DoqClient::connect(target, doq_client_config(&certs));
    let stream = client.send_query(&query(0, "host-3.zone.test.", RecordType::A, None));
    let mut reply = None;
    for _ in 0..100 {
        client.drive_within(Duration::from_millis(30), |_| false);
        reply = read_reply(&mut client.conn, stream);
        if reply.is_some() {
            break;
        }
    }
    let reply = reply.expect("no answer over DoQ on 0.0.0.0");
    common::assert_single_a(&common::Reply::check(reply), host_v4(3));
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.doq.connections.handshakes), 1);
    assert_eq!(total(&reports, |r| r.doq.connections.queries), 1);
}
