//! End-to-end tests of query policy over real UDP on 127.0.0.1: local
//! data (configured records and the built-in zones) is answered with AA and
//! never reaches the upstream; blocked names get NXDOMAIN with EDE 15 while
//! an allowlisted subdomain is forwarded; the ACL refuses or drops a denied
//! client; the rate limiter refuses the excess and counts it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{
    Setup, TestServer, listen_on_any_port, query, scratch_file, start_server, start_upstream, total,
};
use heimdall_config::Config;
use heimdall_loadtest::UpstreamConfig;
use heimdall_wire::{Rcode, RecordType};
use hickory_proto::rr::RData as HRData;

const EDNS: Option<u16> = Some(1232);

/// A server for `upstream` with `extra` YAML sections appended.
fn start_with(upstream: std::net::SocketAddr, extra: &str) -> TestServer {
    let yaml = format!("{}{extra}", Setup::new(&[upstream]).yaml());
    let mut config = Config::from_yaml_str(&yaml, "policy.yaml")
        .unwrap_or_else(|err| panic!("test config refused: {err}\n{yaml}"));
    listen_on_any_port(&mut config);
    start_server(&config)
}

#[test]
fn local_data_blocklist_and_builtins() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let list = scratch_file(
        "blocklist.txt",
        "# blocked\n0.0.0.0 zone.test\n||ads.example^\n",
    );
    let zone = scratch_file(
        "home.zone",
        "$ORIGIN home.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 10.0.0.1\n\
         nas A 10.0.0.2\n",
    );
    let extra = format!(
        "local:\n  records:\n    - \"printer.lan. 300 IN A 192.168.1.50\"\n  \
         zones: [{{name: home., file: \"{}\"}}]\n\
         blocklist:\n  files:\n    - {{path: \"{}\", format: auto}}\n  allow: [host-7.zone.test]\n",
        zone.display(),
        list.display()
    );
    let server = start_with(upstream.local_addr(), &extra);
    let client = server.client();

    // A configured local record: AA, and the upstream never hears of it.
    let reply = client.exchange(&query(1, "printer.lan.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert!(reply.hickory.metadata.authoritative, "local data is AA");
    let addrs: Vec<_> = reply
        .hickory
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            HRData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(addrs, vec![std::net::Ipv4Addr::new(192, 168, 1, 50)]);
    assert_eq!(upstream.queries_for("printer.lan."), 0);

    // A zone file: a name in it, and one that is not (NXDOMAIN with AA).
    let reply = client.exchange(&query(11, "NAS.home.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert!(reply.hickory.metadata.authoritative);
    assert_eq!(reply.hickory.answers.len(), 1);
    let reply = client.exchange(&query(12, "nothing.home.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NXDOMAIN);
    assert!(reply.hickory.metadata.authoritative);
    assert_eq!(upstream.queries_for("nas.home."), 0);
    assert_eq!(upstream.queries_for("nothing.home."), 0);

    // Built-in localhost: AA, and RA like every answer of a recursive
    // service.
    let reply = client.exchange(&query(2, "localhost.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert!(reply.hickory.metadata.authoritative);
    assert!(
        reply.hickory.metadata.recursion_available,
        "RA on local data"
    );
    assert_eq!(upstream.queries_for("localhost."), 0);
    // Built-in onion. (RFC 7686): NXDOMAIN, never forwarded.
    let reply = client.exchange(&query(6, "hidden.example.onion.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NXDOMAIN);
    assert!(reply.hickory.metadata.recursion_available);
    assert_eq!(upstream.queries_for("hidden.example.onion."), 0);
    // dig, the tool the issue was seen with, has nothing to warn about.
    if let Some(dig) = heimdall_testkit::peers::find("dig", "bind9-dnsutils") {
        let output = std::process::Command::new(dig)
            .arg(format!("@{}", server.addr.ip()))
            .args(["-p", &server.addr.port().to_string()])
            .args(["+time=2", "+tries=1", "localhost.", "A"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("status: NOERROR"), "{text}");
        assert!(
            !text.contains("recursion requested but not available"),
            "{text}"
        );
    }

    // A blocked name (a subdomain of a listed one): NXDOMAIN, EDE 15.
    let reply = client.exchange(&query(3, "host-8.zone.test.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NXDOMAIN);
    assert_eq!(reply.ede_codes(), vec![15]);
    assert_eq!(upstream.queries_for("host-8.zone.test."), 0);
    // Without EDNS: NXDOMAIN, no OPT.
    let reply = client.exchange(&query(4, "ads.example.", RecordType::AAAA, None));
    assert_eq!(reply.rcode(), Rcode::NXDOMAIN);
    assert!(reply.ede_codes().is_empty());

    // The allowlisted subdomain is forwarded and answered by the upstream.
    let reply = client.exchange(&query(5, "host-7.zone.test.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert!(!reply.hickory.answers.is_empty());
    assert!(!reply.hickory.metadata.authoritative);
    assert_eq!(upstream.queries_for("host-7.zone.test."), 1);

    let reports = server.stop();
    upstream.stop();
    let _ = std::fs::remove_file(&list);
    let _ = std::fs::remove_file(&zone);
    assert_eq!(total(&reports, |r| r.resolver.local_answers), 6);
    assert_eq!(total(&reports, |r| r.resolver.blocked), 2);
    assert_eq!(total(&reports, |r| r.resolver.cache_misses), 1);
}

#[test]
fn acl_refuses_or_drops_a_denied_client() {
    let mut upstream = start_upstream(UpstreamConfig::default());

    let server = start_with(upstream.local_addr(), "acl:\n  deny: [127.0.0.1/32]\n");
    let client = server.client();
    let reply = client.exchange(&query(1, "host-1.zone.test.", RecordType::A, EDNS));
    assert_eq!(reply.rcode(), Rcode::REFUSED);
    assert_eq!(reply.ede_codes(), vec![18]);
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.acl_refused), 1);

    let server = start_with(
        upstream.local_addr(),
        "acl:\n  deny: [127.0.0.1/32]\n  action: drop\n",
    );
    let client = server.client();
    client.send(&query(2, "host-1.zone.test.", RecordType::A, EDNS));
    assert!(client.recv_within(Duration::from_millis(300)).is_none());
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.acl_dropped), 1);

    assert_eq!(upstream.queries_for("host-1.zone.test."), 0);
    upstream.stop();
}

#[test]
fn rate_limit_refuses_the_excess_and_counts_it() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = start_with(
        upstream.local_addr(),
        "rate_limit:\n  enabled: true\n  rate: 1\n  burst: 5\n  action: refused\n",
    );
    let client = server.client();
    let mut answered = 0u64;
    let mut refused = 0u64;
    for id in 0..20u16 {
        // localhost is answered locally: the test measures only policy.
        let reply = client.exchange(&query(id, "localhost.", RecordType::A, None));
        match reply.rcode() {
            Rcode::NOERROR => answered += 1,
            Rcode::REFUSED => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // A burst of 5, refilled at 1/s: the 20 round trips take well under
    // 3 s even on a loaded machine.
    assert!((5..=8).contains(&answered), "answered {answered}");
    assert_eq!(answered + refused, 20);
    let reports = server.stop();
    upstream.stop();
    assert_eq!(
        total(&reports, |r| r.resolver.rate_limited_refused),
        refused
    );
    assert_eq!(total(&reports, |r| r.resolver.local_answers), answered);
}

#[test]
fn rate_limit_drop_sends_nothing() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = start_with(
        upstream.local_addr(),
        "rate_limit:\n  enabled: true\n  rate: 1\n  burst: 2\n",
    );
    let client = server.client();
    for id in 0..2u16 {
        let reply = client.exchange(&query(id, "localhost.", RecordType::A, None));
        assert_eq!(reply.rcode(), Rcode::NOERROR);
    }
    client.send(&query(9, "localhost.", RecordType::A, None));
    assert!(client.recv_within(Duration::from_millis(200)).is_none());
    let reports = server.stop();
    upstream.stop();
    assert_eq!(total(&reports, |r| r.resolver.rate_limited_dropped), 1);
}

#[test]
fn a_missing_block_list_names_the_file() {
    let yaml = format!(
        "{}blocklist:\n  files: [{{path: /nonexistent/heimdall-list.txt}}]\n",
        Setup::new(&["127.0.0.1:9".parse().unwrap()]).yaml()
    );
    let mut config = Config::from_yaml_str(&yaml, "policy.yaml").unwrap();
    listen_on_any_port(&mut config);
    let err = heimdall_server::Server::start(&config)
        .err()
        .expect("a missing list must stop the start");
    assert!(
        err.to_string().contains("/nonexistent/heimdall-list.txt"),
        "{err}"
    );
}

#[test]
fn a_bad_zone_file_names_the_file_and_line() {
    let zone = scratch_file(
        "bad.zone",
        "$ORIGIN bad.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\nx A 300.1.1.1\n",
    );
    let yaml = format!(
        "{}local:\n  zones: [{{name: bad., file: \"{}\"}}]\n",
        Setup::new(&["127.0.0.1:9".parse().unwrap()]).yaml(),
        zone.display()
    );
    let mut config = Config::from_yaml_str(&yaml, "policy.yaml").unwrap();
    listen_on_any_port(&mut config);
    let err = heimdall_server::Server::start(&config)
        .err()
        .expect("a bad zone file must stop the start");
    let _ = std::fs::remove_file(&zone);
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}:4", zone.display())),
        "{message}"
    );
}
