//! End-to-end tests of issue 14's upstream rules over real UDP on
//! 127.0.0.1: an upstream slower than the timeout (but faster than
//! timeout x attempts) still gets its answers through (late replies), and
//! an upstream answering REFUSED makes heimdall answer SERVFAIL with
//! Extended DNS Error 23 "Network Error", read with hickory-proto as an
//! independent parser, without asking that upstream again and again.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, Reply, Setup, assert_single_a, query, start_upstream};
use heimdall_loadtest::upstream::zone::host_v4;
use heimdall_loadtest::{Behavior, UpstreamConfig};
use heimdall_wire::{Rcode, RecordType};
use hickory_proto::serialize::binary::BinEncodable as _;

const EDNS: Option<u16> = Some(1232);
/// Extended DNS Error "Network Error" (RFC 8914).
const EDE_NETWORK_ERROR: u16 = 23;
/// The EDNS option code of Extended DNS Errors (RFC 8914).
const EDE_OPTION: u16 = 15;

/// Wait up to `timeout` for the reply to `question` (already sent),
/// checked with both parsers.
fn reply_within(client: &Client, question: &[u8], timeout: Duration) -> Reply {
    let id = u16::from_be_bytes([question[0], question[1]]);
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let bytes = client
            .recv_within(left)
            .unwrap_or_else(|| panic!("no reply to query {id} within {timeout:?}"));
        let reply = Reply::check(bytes);
        if reply.id() == id {
            reply.assert_answers(question);
            return reply;
        }
    }
}

/// The EDE info codes of a reply, as hickory-proto reads its OPT record.
fn hickory_ede_codes(reply: &Reply) -> Vec<u16> {
    let Some(edns) = &reply.hickory.edns else {
        return Vec::new();
    };
    edns.options()
        .as_ref()
        .iter()
        .filter(|(code, _)| u16::from(*code) == EDE_OPTION)
        .map(|(_, option)| {
            let data = option.to_bytes().expect("EDE option bytes");
            assert!(data.len() >= 2, "EDE option too short: {data:?}");
            u16::from_be_bytes([data[0], data[1]])
        })
        .collect()
}

/// An upstream that answers every query after 1.2 s, with a timeout of
/// 800 ms and 3 attempts: each attempt's reply arrives after that attempt
/// timed out, but before the query's 2.4 s run out. Every client must get
/// the answer (a reply to an earlier attempt is still accepted), not
/// SERVFAIL.
#[test]
fn an_upstream_slower_than_the_timeout_still_answers() {
    const CLIENTS: u32 = 10;
    let upstream = start_upstream(UpstreamConfig {
        delay: Duration::from_millis(1200),
        ..UpstreamConfig::default()
    });
    let server = Setup {
        timeout: "800ms",
        attempts: 3,
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();
    let started = Instant::now();
    let asked: Vec<(Client, Vec<u8>, u32)> = (0..CLIENTS)
        .map(|index| {
            let client = server.client();
            let question = query(
                100 + index as u16,
                &format!("host-{}.zone.test.", 700 + index),
                RecordType::A,
                EDNS,
            );
            client.send(&question);
            (client, question, 700 + index)
        })
        .collect();
    let mut servfails = 0;
    for (client, question, index) in &asked {
        let reply = reply_within(client, question, Duration::from_secs(4));
        if reply.rcode() == Rcode::SERVFAIL {
            servfails += 1;
            continue;
        }
        assert_single_a(&reply, host_v4(*index));
    }
    assert_eq!(
        servfails, 0,
        "{servfails} of {CLIENTS} clients got SERVFAIL from an upstream that answered every query within timeout x attempts"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2400),
        "answers took {elapsed:?}"
    );
    let reports = server.stop();
    let late = common::total(&reports, |r| r.resolver.upstream_timeouts);
    eprintln!("{CLIENTS} answers in {elapsed:?}; upstream timeouts counted: {late}");
}

/// Both upstreams answer REFUSED: heimdall tries the second, then answers
/// SERVFAIL with EDE 23 (not REFUSED: the client was not refused by
/// heimdall), within the attempts, and remembers the failure briefly
/// like any other.
#[test]
fn upstream_refused_becomes_servfail_with_network_error() {
    let refusing = || {
        start_upstream(UpstreamConfig {
            behavior: Behavior::Refused,
            ..UpstreamConfig::default()
        })
    };
    let first = refusing();
    let second = refusing();
    let server = Setup {
        timeout: "800ms",
        attempts: 3,
        ..Setup::new(&[first.local_addr(), second.local_addr()])
    }
    .start();
    let client = server.client();
    let question = query(7, "host-7.zone.test.", RecordType::A, EDNS);
    let started = Instant::now();
    client.send(&question);
    let reply = reply_within(&client, &question, Duration::from_secs(4));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL, "REFUSED is not relayed");
    assert!(reply.hickory.answers.is_empty());
    assert_eq!(
        hickory_ede_codes(&reply),
        vec![EDE_NETWORK_ERROR],
        "EDE as hickory-proto reads it"
    );
    assert_eq!(reply.ede_codes(), vec![EDE_NETWORK_ERROR]);
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "REFUSED is an answer, not a timeout: {:?}",
        started.elapsed()
    );
    let asked_first = first.stats().received;
    let asked_second = second.stats().received;
    assert!(
        asked_first >= 1 && asked_second >= 1 && asked_first + asked_second <= 3,
        "the second upstream asked after the first refused, within 3 attempts: ({asked_first}, {asked_second})"
    );
    let asked = asked_first + asked_second;

    // The failure is remembered: a second client gets SERVFAIL without
    // another upstream query.
    let again = query(8, "host-7.zone.test.", RecordType::A, EDNS);
    let other = server.client();
    other.send(&again);
    let cached = reply_within(&other, &again, Duration::from_secs(2));
    assert_eq!(cached.rcode(), Rcode::SERVFAIL);
    assert_eq!(
        first.stats().received + second.stats().received,
        asked,
        "the failure is cached briefly"
    );
    server.stop();
}

/// One upstream answering REFUSED is asked once per client query: a
/// refusal is an answer, and asking the same upstream again (before
/// issue 14, each client query cost `attempts` upstream queries) only
/// triples the load on a server that already said no.
#[test]
fn a_refusing_upstream_is_not_asked_again() {
    let upstream = start_upstream(UpstreamConfig {
        behavior: Behavior::Refused,
        ..UpstreamConfig::default()
    });
    let server = Setup {
        timeout: "800ms",
        attempts: 3,
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();
    let client = server.client();
    let question = query(9, "host-9.zone.test.", RecordType::A, EDNS);
    client.send(&question);
    let reply = reply_within(&client, &question, Duration::from_secs(4));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    assert_eq!(hickory_ede_codes(&reply), vec![EDE_NETWORK_ERROR]);
    assert_eq!(upstream.stats().received, 1, "asked once");
    server.stop();
}
