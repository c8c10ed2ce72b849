//! heimdall-loadtest's stream transports against the real server on
//! 127.0.0.1, with certificates the test makes: a second of pipelined
//! load over persistent DNS-over-TLS, DNS-over-HTTPS and TCP connections
//! must be answered without loss or errors, and the handshake mode must
//! complete full and resumed handshakes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    // The certificates' SPKI pin is for other tests.
    dead_code
)]

#[path = "common/certs.rs"]
mod certs;
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use certs::TestCerts;
use common::{start_server, start_upstream};
use heimdall_config::Config;
use heimdall_loadtest::UpstreamConfig;
use heimdall_loadtest::load::handshake::{self, HandshakeConfig, Progress};
use heimdall_loadtest::load::{self, LoadConfig, Mode, Report, Transport, WorkloadConfig};
use heimdall_loadtest::tls::{self, Trust};

const NAME: &str = "dns.test";

fn config(upstream: SocketAddr, certs: &TestCerts) -> Config {
    let tls = "  listen: [127.0.0.1:853]\n  https_listen: [127.0.0.1:443]\n";
    certs.server_config(upstream, tls, "")
}

fn workload() -> WorkloadConfig {
    WorkloadConfig {
        names: 50,
        ..WorkloadConfig::default()
    }
}

/// One second of max-mode load over `transport`.
fn load(
    target: SocketAddr,
    transport: Transport,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Report {
    let config = LoadConfig {
        target,
        transport,
        mode: Mode::Max { window: 1 },
        connections: 8,
        pipeline: 8,
        tls,
        tls_name: NAME.into(),
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        workload: workload(),
        ..LoadConfig::default()
    };
    load::run(&config, &AtomicBool::new(false), |_| {}).unwrap()
}

fn assert_clean(what: &str, report: &Report) {
    let counts = &report.counts;
    assert!(counts.answered > 100, "{what}: {report:#?}");
    assert_eq!(counts.sent, counts.answered, "{what}: {counts:?}");
    assert_eq!(counts.lost + counts.unsent, 0, "{what}: {counts:?}");
    assert_eq!(counts.bad_responses(), 0, "{what}: {counts:?}");
    assert_eq!(
        counts.connection_errors + counts.http_errors,
        0,
        "{what}: {counts:?}"
    );
    assert_eq!(
        counts.rcode_count(heimdall_wire::Rcode::NOERROR),
        counts.answered
    );
    assert!(report.latency_us.samples > 0, "{what}");
    assert!(report.warnings.is_empty(), "{what}: {:?}", report.warnings);
}

#[test]
fn pipelined_load_over_tls_https_and_tcp_is_answered() {
    let certs = TestCerts::new("load", NAME);
    let upstream = start_upstream(UpstreamConfig::default());
    let config = config(upstream.local_addr(), &certs);
    let server = start_server(&config);
    let (dot, doh) = server.encrypted_addrs();
    let trust = Trust::CaFile(&certs.ca);

    let dot_tls = tls::client_config(&trust, tls::ALPN_DOT, true).unwrap();
    let report = load(dot, Transport::Tls, Some(dot_tls));
    assert_clean("DoT", &report);
    assert_eq!(report.config.transport, "tls");
    assert_eq!(report.config.connections, 8);

    let doh_tls = tls::client_config(&trust, tls::ALPN_H2, true).unwrap();
    let report = load(doh, Transport::Https, Some(doh_tls));
    assert_clean("DoH", &report);

    // The server's TCP port is its UDP listen address.
    let report = load(server.addr, Transport::Tcp, None);
    assert_clean("TCP", &report);

    // An untrusted certificate: every connection fails, and says so.
    let other = TestCerts::new("other", NAME);
    let wrong = tls::client_config(&Trust::CaFile(&other.ca), tls::ALPN_DOT, true).unwrap();
    let config = LoadConfig {
        target: dot,
        transport: Transport::Tls,
        connections: 2,
        tls: Some(wrong),
        tls_name: NAME.into(),
        duration: Duration::from_millis(300),
        warmup: Duration::ZERO,
        workload: workload(),
        ..LoadConfig::default()
    };
    let report = load::run(&config, &AtomicBool::new(false), |_| {}).unwrap();
    assert_eq!(report.counts.answered, 0);
    assert!(report.counts.connection_errors > 0, "{report:#?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("connection errors")),
        "{:?}",
        report.warnings
    );
    server.stop();
}

fn handshakes(
    target: SocketAddr,
    transport: Transport,
    resumption: bool,
    ca: &std::path::Path,
) -> handshake::HandshakeReport {
    let alpn = if transport == Transport::Https {
        tls::ALPN_H2
    } else {
        tls::ALPN_DOT
    };
    let tls = tls::client_config(&Trust::CaFile(ca), alpn, resumption).unwrap();
    let endpoint = LoadConfig {
        target,
        transport,
        tls: Some(tls),
        tls_name: NAME.into(),
        ..LoadConfig::default()
    }
    .endpoint()
    .unwrap();
    let config = HandshakeConfig {
        endpoint,
        allow_remote: false,
        connections: 2,
        workers: 1,
        cpus: Vec::new(),
        duration: Duration::from_millis(700),
        warmup: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        resumption,
        workload: workload(),
        seed: 7,
    };
    handshake::run(
        &config,
        &AtomicBool::new(false),
        &Arc::new(Progress::default()),
    )
    .unwrap()
}

#[test]
fn handshake_mode_counts_full_and_resumed_handshakes() {
    let certs = TestCerts::new("handshakes", NAME);
    let upstream = start_upstream(UpstreamConfig::default());
    let config = config(upstream.local_addr(), &certs);
    let server = start_server(&config);
    let (dot, doh) = server.encrypted_addrs();
    for (target, transport) in [(dot, Transport::Tls), (doh, Transport::Https)] {
        let full = handshakes(target, transport, false, &certs.ca);
        assert!(full.completed > 5, "{full:#?}");
        assert_eq!(full.failed, 0, "{full:#?}");
        assert_eq!(full.resumed, 0, "no resumption offered: {full:#?}");
        assert_eq!(full.full, full.completed);
        let resumed = handshakes(target, transport, true, &certs.ca);
        assert!(resumed.completed > 5, "{resumed:#?}");
        assert_eq!(resumed.failed, 0, "{resumed:#?}");
        assert!(
            resumed.resumed > resumed.completed / 2,
            "most handshakes resume: {resumed:#?}"
        );
        assert!(resumed.handshakes_per_s > 0.0);
    }
    server.stop();
}
