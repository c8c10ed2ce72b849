//! End-to-end tests of upstream failures over real UDP on 127.0.0.1: dead
//! upstreams (SERVFAIL with EDE, within the configured time), failover to
//! the next upstream, and replies that must be refused (wrong ID, wrong
//! question, wrong source port).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use common::{LOOPBACK, Setup, assert_single_a, query, start_upstream, total};
use heimdall_loadtest::upstream::zone::host_v4;
use heimdall_loadtest::{Behavior, UpstreamConfig};
use heimdall_testkit::messages::a_answer;
use heimdall_wire::{Class, Message, Rcode, RecordType};

const EDNS: Option<u16> = Some(1232);
/// Extended DNS Error "No Reachable Authority" (RFC 8914).
const EDE_NO_REACHABLE_AUTHORITY: u16 = 22;

fn dead_upstream() -> heimdall_loadtest::UpstreamHandle {
    start_upstream(UpstreamConfig {
        behavior: Behavior::Drop,
        ..UpstreamConfig::default()
    })
}

/// Every upstream silent: SERVFAIL after timeout x attempts (not before,
/// and not much later), with EDE 22 for an EDNS client and without an OPT
/// record for a client that sent none. The failure is then remembered
/// briefly (RFC 9520) instead of asking the dead upstreams again.
#[test]
fn servfail_with_ede_when_every_upstream_times_out() {
    const TIMEOUT: Duration = Duration::from_millis(250);
    const ATTEMPTS: u32 = 2;
    // Slack on the upper bound for the timer tick (10 ms), scheduling and a
    // loaded machine; small enough that deadlines twice as long (1 s in
    // all) would be caught.
    const SLACK: Duration = Duration::from_millis(400);
    let mut first = dead_upstream();
    let mut second = dead_upstream();
    let server = Setup {
        timeout: "250ms",
        attempts: ATTEMPTS,
        ..Setup::new(&[first.local_addr(), second.local_addr()])
    }
    .start();
    let with_edns = server.client();
    let without_edns = server.client();
    let edns_query = query(1, "host-1.zone.test.", RecordType::A, EDNS);
    let plain_query = query(2, "host-2.zone.test.", RecordType::A, None);
    let started = Instant::now();
    with_edns.send(&edns_query);
    without_edns.send(&plain_query);

    let reply = with_edns.reply_to(&edns_query);
    let elapsed = started.elapsed();
    let budget = TIMEOUT * ATTEMPTS;
    assert!(
        elapsed >= budget - Duration::from_millis(30),
        "SERVFAIL after {elapsed:?}, before the {budget:?} of attempts ran out"
    );
    assert!(elapsed < budget + SLACK, "SERVFAIL only after {elapsed:?}");
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    assert!(reply.hickory.answers.is_empty());
    assert_eq!(reply.ede_codes(), vec![EDE_NO_REACHABLE_AUTHORITY]);

    let plain = without_edns.reply_to(&plain_query);
    assert!(started.elapsed() < budget + SLACK);
    assert_eq!(plain.rcode(), Rcode::SERVFAIL);
    assert!(
        plain.hickory.edns.is_none(),
        "no OPT for a client without EDNS"
    );

    // Each attempt went to the next upstream (ordered strategy, 2 attempts).
    for upstream in [&first, &second] {
        assert_eq!(upstream.queries_for("host-1.zone.test."), 1);
        assert_eq!(upstream.queries_for("host-2.zone.test."), 1);
    }

    // The failure is remembered: answered at once, nothing sent upstream.
    let again = Instant::now();
    let cached = with_edns.exchange(&query(3, "host-1.zone.test.", RecordType::A, EDNS));
    assert_eq!(cached.rcode(), Rcode::SERVFAIL);
    assert!(
        again.elapsed() < TIMEOUT,
        "a remembered failure is immediate"
    );
    assert_eq!(first.queries_for("host-1.zone.test."), 1);
    assert_eq!(second.queries_for("host-1.zone.test."), 1);

    let reports = server.stop();
    first.stop();
    second.stop();
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 4);
    assert_eq!(total(&reports, |r| r.resolver.upstream_timeouts), 4);
    assert_eq!(total(&reports, |r| r.abandoned_inflight as u64), 0);
}

/// The first upstream is dead: after its timeout the second answers.
#[test]
fn the_next_upstream_is_used_when_the_first_is_dead() {
    let mut dead = dead_upstream();
    let mut alive = start_upstream(UpstreamConfig::default());
    let server = Setup {
        timeout: "250ms",
        attempts: 2,
        ..Setup::new(&[dead.local_addr(), alive.local_addr()])
    }
    .start();
    let client = server.client();
    let started = Instant::now();
    let reply = client.exchange(&query(1, "host-3.zone.test.", RecordType::A, EDNS));
    let elapsed = started.elapsed();
    assert_single_a(&reply, host_v4(3));
    assert!(
        elapsed >= Duration::from_millis(220) && elapsed < Duration::from_millis(450),
        "answered after {elapsed:?}: expected one 250 ms timeout, then the second upstream"
    );
    assert_eq!(dead.queries_for("host-3.zone.test."), 1);
    assert_eq!(alive.queries_for("host-3.zone.test."), 1);

    let reports = server.stop();
    dead.stop();
    alive.stop();
    assert_eq!(total(&reports, |r| r.resolver.upstream_timeouts), 1);
    assert_eq!(total(&reports, |r| r.resolver.servfail), 0);
}

/// A reply with the wrong ID arrives before the right one: it is ignored
/// and counted, and the right one is accepted at once (no retry).
#[test]
fn a_wrong_id_reply_is_ignored_and_the_right_one_accepted() {
    let mut upstream = start_upstream(UpstreamConfig {
        behavior: Behavior::WrongIdThenRight,
        ..UpstreamConfig::default()
    });
    let server = Setup {
        timeout: "2s",
        attempts: 2,
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();
    let client = server.client();
    let started = Instant::now();
    let reply = client.exchange(&query(1, "host-4.zone.test.", RecordType::A, EDNS));
    assert_single_a(&reply, host_v4(4));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the right reply must be taken without waiting for a timeout"
    );
    assert_eq!(upstream.queries_for("host-4.zone.test."), 1);
    let reports = server.stop();
    upstream.stop();
    assert!(
        total(&reports, |r| r.resolver.upstream_mismatched) >= 1,
        "the spoofed reply was counted: {reports:?}"
    );
    assert_eq!(total(&reports, |r| r.resolver.upstream_timeouts), 0);
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 1);
}

/// Replies to a different question (right ID, right source) are ignored
/// and counted; the client never sees them and gets SERVFAIL when the
/// attempts run out.
#[test]
fn a_wrong_question_reply_is_ignored() {
    let mut upstream = start_upstream(UpstreamConfig {
        behavior: Behavior::WrongQuestion,
        ..UpstreamConfig::default()
    });
    let server = Setup {
        timeout: "200ms",
        attempts: 2,
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();
    let client = server.client();
    let reply = client.exchange(&query(1, "host-5.zone.test.", RecordType::A, EDNS));
    // `exchange` checked that the question is the one asked.
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    assert!(reply.hickory.answers.is_empty());
    assert_eq!(reply.ede_codes(), vec![EDE_NO_REACHABLE_AUTHORITY]);
    assert_eq!(upstream.queries_for("host-5.zone.test."), 2);
    let reports = server.stop();
    upstream.stop();
    assert_eq!(total(&reports, |r| r.resolver.upstream_mismatched), 2);
    assert_eq!(total(&reports, |r| r.resolver.upstream_timeouts), 2);
}

/// A reply with the right ID and question from the upstream's address but
/// another port is refused, and the real one still gets through.
///
/// The upstream here is a plain socket played by the test, so that it can
/// see the server's query (ID, question, source port) and answer it first
/// from a second socket on another port: no raw socket is needed. The
/// engine's unit test (crates/resolver/tests/engine.rs,
/// `spoofed_replies_are_ignored_and_the_real_one_gets_through`) covers the
/// same rule without the network.
#[test]
fn a_reply_from_the_wrong_port_is_ignored() {
    // The real answer has one A record (192.0.2.1), the spoofed one two.
    const REAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    let upstream = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let spoofer = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let server = Setup {
        timeout: "3s",
        attempts: 1,
        ..Setup::new(&[upstream.local_addr().unwrap()])
    }
    .start();
    let client = server.client();
    let client_query = query(7, "target.zone.test.", RecordType::A, EDNS);
    client.send(&client_query);

    let mut buf = [0u8; 1500];
    let (len, server_side) = upstream.recv_from(&mut buf).expect("the upstream query");
    let upstream_query = buf[..len].to_vec();
    assert_eq!(server_side.ip(), LOOPBACK, "the server's upstream socket");
    let asked = Message::parse(&upstream_query).unwrap();
    let question = asked.question().unwrap();
    // Its letters in a random case (DNS 0x20, issue 14).
    assert_eq!(
        question.name.to_string().to_ascii_lowercase(),
        "target.zone.test."
    );
    assert_eq!(
        (question.qtype, question.qclass),
        (RecordType::A, Class::IN)
    );

    // Right ID and question, right address, wrong port.
    assert_ne!(
        spoofer.local_addr().unwrap(),
        upstream.local_addr().unwrap()
    );
    spoofer
        .send_to(&a_answer(&upstream_query, 2, 60), server_side)
        .unwrap();
    assert!(
        client.recv_within(Duration::from_millis(300)).is_none(),
        "a reply from the wrong port must not be passed on"
    );
    upstream
        .send_to(&a_answer(&upstream_query, 1, 60), server_side)
        .unwrap();
    let reply = client.reply_to(&client_query);
    assert_single_a(&reply, REAL);
    // And the cache holds the real answer.
    let cached = client.exchange(&query(8, "target.zone.test.", RecordType::A, EDNS));
    assert_single_a(&cached, REAL);

    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.upstream_mismatched), 1);
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 1);
    assert_eq!(total(&reports, |r| r.resolver.cache_hits), 1);
}

/// Stopping the server lets outstanding upstream queries finish (within
/// the grace period) so their clients still get answers. (This found that
/// the listening sockets were closed before the grace period, so those
/// answers could not be sent.)
#[test]
fn a_graceful_stop_answers_outstanding_queries() {
    let mut upstream = start_upstream(UpstreamConfig {
        delay: Duration::from_millis(300),
        ..UpstreamConfig::default()
    });
    let server = Setup {
        timeout: "1s",
        attempts: 1,
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();
    let client = server.client();
    let question = query(1, "host-6.zone.test.", RecordType::A, EDNS);
    client.send(&question);
    assert!(
        common::wait_until(Duration::from_secs(2), || upstream.stats().received >= 1),
        "the query reached the upstream"
    );
    let stopping = Instant::now();
    let reports = server.stop();
    let stop_took = stopping.elapsed();
    let reply = client.reply_to(&question);
    assert_single_a(&reply, host_v4(6));
    assert!(
        stop_took >= Duration::from_millis(150),
        "stop returned after {stop_took:?}, before the upstream answered"
    );
    assert_eq!(total(&reports, |r| r.abandoned_inflight as u64), 0);
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 1);
    // The reply left through the listening socket, still open.
    assert_eq!(total(&reports, |r| r.send_errors), 0, "{reports:?}");
    upstream.stop();
}
