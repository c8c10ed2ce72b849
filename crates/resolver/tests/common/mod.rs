//! Helpers shared by the resolver's integration tests: client and upstream
//! addresses, a base configuration, queries, and draining the engine's
//! transmits and replies (every reply cross-checked with hickory).
//!
//! Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use heimdall_cache::Timestamp;
use heimdall_resolver::{
    AttemptId, ClientId, QueryOutcome, ReplySource, Resolver, ResolverConfig, Transmit, Transport,
    Upstream, UpstreamStrategy, UpstreamTransport,
};
use heimdall_testkit::messages::query;
use heimdall_wire::{Message, RecordType, edns};

pub(crate) const UPSTREAM_A: &str = "127.0.0.1:5301";
pub(crate) const UPSTREAM_B: &str = "127.0.0.1:5302";
pub(crate) const UPSTREAM_C: &str = "127.0.0.1:5303";

/// Replies that arrive on an upstream UDP socket, or TCP connection.
pub(crate) const UDP: UpstreamTransport = UpstreamTransport::Udp;
pub(crate) const TCP: UpstreamTransport = UpstreamTransport::Tcp;

pub(crate) fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A reply from `from` over `transport`, on a shared socket (no attempt
/// named: matched by ID alone).
pub(crate) fn src(from: SocketAddr, transport: UpstreamTransport) -> ReplySource {
    ReplySource {
        from,
        transport,
        attempt: None,
    }
}

/// A reply from `from` over UDP, received on the socket of `attempt`.
pub(crate) fn on_socket(from: SocketAddr, attempt: AttemptId) -> ReplySource {
    ReplySource {
        from,
        transport: UDP,
        attempt: Some(attempt),
    }
}

/// A UDP client on 127.0.0.1 at `port`, on listener 0.
pub(crate) fn client(port: u16) -> ClientId {
    ClientId {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        transport: Transport::Udp,
        listener: 0,
    }
}

/// `upstreams` asked in order, an 800 ms timeout, one attempt.
pub(crate) fn config(upstreams: &[&str]) -> ResolverConfig {
    ResolverConfig {
        upstreams: upstreams
            .iter()
            .map(|text| Upstream::udp(addr(text)))
            .collect(),
        strategy: UpstreamStrategy::Ordered,
        upstream_timeout_ms: 800,
        attempts: 1,
        // The tests' upstream answers are unsigned names under the real
        // root: with validation they would be bogus. tests/dnssec.rs
        // turns it on with a test anchor.
        dnssec: heimdall_resolver::DnssecConfig::off(),
        ..ResolverConfig::default()
    }
}

/// An A query for `qname` with EDNS (1232 bytes, DO clear).
pub(crate) fn a_query(qname: &str, id: u16) -> Vec<u8> {
    query(qname, RecordType::A, id, Some((1232, false)))
}

/// Every pending upstream transmit with its bytes.
pub(crate) fn transmits(resolver: &mut Resolver) -> Vec<(Transmit, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(transmit) = resolver.poll_transmit(&mut buf) {
        out.push((transmit, buf[..transmit.len].to_vec()));
    }
    out
}

/// Every pending client reply at `now`.
pub(crate) fn replies(resolver: &mut Resolver, now: Timestamp) -> Vec<(ClientId, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65_535];
    while let Some((client, len)) = resolver.poll_reply(&mut buf, now) {
        let bytes = buf[..len].to_vec();
        // Every reply must also parse with an independent implementation.
        hickory_proto::op::Message::from_vec(&bytes).unwrap();
        out.push((client, bytes));
    }
    out
}

/// The TTLs of a reply's answer records.
pub(crate) fn answer_ttls(reply: &[u8]) -> Vec<u32> {
    Message::parse(reply)
        .unwrap()
        .answers()
        .map(|record| record.ttl())
        .collect()
}

/// The EDE info codes in a reply's OPT record.
pub(crate) fn ede_codes(reply: &[u8]) -> Vec<u16> {
    let message = Message::parse(reply).unwrap();
    let Some(opt) = message.opt() else {
        return Vec::new();
    };
    opt.options()
        .filter(|option| option.code == edns::EXTENDED_ERROR)
        .map(|option| u16::from_be_bytes([option.data[0], option.data[1]]))
        .collect()
}

/// The reply length of an outcome that must be an immediate reply.
pub(crate) fn expect_reply(outcome: QueryOutcome) -> usize {
    match outcome {
        QueryOutcome::Reply(len) => len,
        other => panic!("expected a reply now, got {other:?}"),
    }
}
