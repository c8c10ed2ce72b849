//! End-to-end tests of DNS over QUIC (RFC 9250) to clients, over real
//! sockets on 127.0.0.1 with certificates the tests make (rcgen) and kdig
//! (`+quic`, knot-dnsutils) as the client: answers (padded, Message ID 0),
//! garbage datagrams dropped and counted while UDP clients are served,
//! and connections beyond `tcp.max_connections` refused.

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
