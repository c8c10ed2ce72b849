//! End-to-end tests of the batched UDP reply path over real UDP on
//! 127.0.0.1: GSO replies (`server.udp_gso`) and the pause that lets a
//! loaded socket gather queries (`server.udp_coalesce`). A client that
//! sends bursts of queries from one socket gets every answer as its own
//! datagram, checked by heimdall-wire and hickory-proto, whether the
//! replies left as GSO sends or one by one, with or without the pause.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Reply, Setup, query, start_server, start_upstream, total};
use heimdall_loadtest::UpstreamConfig;
use heimdall_server::CoreReport;
use heimdall_wire::{Rcode, RecordType};

const BURSTS: u16 = 10;
const BURST: u16 = 32;

/// Send `BURSTS` bursts of `BURST` cached queries from one socket without
/// reading in between, then check that every query got exactly one valid
/// answer. Returns the server's reports.
fn answer_bursts(gso: bool, coalesce: Duration) -> Vec<CoreReport> {
    let upstream = start_upstream(UpstreamConfig::default());
    let mut config = Setup::new(&[upstream.local_addr()]).config();
    config.server.udp_gso = gso;
    config.server.udp_coalesce = coalesce;
    let server = start_server(&config);
    let client = server.client();
    // host-1 .. host-9: names of one length, so their A answers have one
    // length too and can share a GSO send. Cached first.
    let names: Vec<String> = (1..=9).map(|i| format!("host-{i}.zone.test.")).collect();
    for (name, id) in names.iter().zip(1u16..) {
        let reply = client.exchange(&query(id, name, RecordType::A, Some(1232)));
        assert_eq!(reply.rcode(), Rcode::NOERROR, "{name}");
    }
    for burst in 0..BURSTS {
        let queries: Vec<Vec<u8>> = (0..BURST)
            .map(|i| {
                let id = 1000 + burst * BURST + i;
                let name = &names[usize::from(i) % names.len()];
                query(id, name, RecordType::A, Some(1232))
            })
            .collect();
        for query in &queries {
            client.send(query);
        }
        let mut answered = BTreeSet::new();
        for _ in &queries {
            let bytes = client
                .recv_within(common::REPLY_TIMEOUT)
                .unwrap_or_else(|| panic!("burst {burst}: only {} answers", answered.len()));
            let reply = Reply::check(bytes);
            let query = queries
                .iter()
                .find(|query| u16::from_be_bytes([query[0], query[1]]) == reply.id())
                .unwrap_or_else(|| panic!("answer to an unknown ID {}", reply.id()));
            reply.assert_answers(query);
            assert_eq!(reply.rcode(), Rcode::NOERROR);
            assert_eq!(reply.hickory.answers.len(), 1, "one A record");
            assert!(
                answered.insert(reply.id()),
                "ID {} answered twice",
                reply.id()
            );
        }
        assert!(
            client
                .recv_within(std::time::Duration::from_millis(20))
                .is_none(),
            "burst {burst}: an extra datagram arrived"
        );
    }
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.send_errors), 0, "{reports:?}");
    assert_eq!(
        total(&reports, |r| r.resolver.cache_hits),
        u64::from(BURSTS * BURST)
    );
    reports
}

#[test]
fn bursts_from_one_client_leave_as_gso_sends_and_arrive_whole() {
    let reports = answer_bursts(true, Duration::ZERO);
    let segments = total(&reports, |r| r.udp.gso_segments);
    let sends = total(&reports, |r| r.udp.gso_sends);
    // The server wakes for the first query of a burst and drains the rest
    // in batches of up to 32, so some batch holds several of this
    // client's same-length answers.
    assert!(sends > 0, "no GSO send in {} bursts: {reports:?}", BURSTS);
    assert!(segments >= 2 * sends, "{reports:?}");
    assert!(segments <= u64::from(BURSTS * BURST));
    assert_eq!(total(&reports, |r| r.udp.gso_fallbacks), 0);
}

#[test]
fn with_udp_gso_off_every_reply_is_its_own_send() {
    let reports = answer_bursts(false, Duration::ZERO);
    assert_eq!(total(&reports, |r| r.udp.gso_sends), 0, "{reports:?}");
    assert_eq!(total(&reports, |r| r.udp.gso_segments), 0);
}

#[test]
fn with_the_longest_coalescing_pause_every_burst_is_still_answered_whole() {
    // Each burst ends with the socket empty while the core is in its
    // coalescing pause; the 20 ms quiet check after each burst shows no
    // reply is held back or sent twice, and nothing is lost between the
    // pause and the wait for the next burst.
    let reports = answer_bursts(true, Duration::from_millis(1));
    assert!(total(&reports, |r| r.udp.gso_sends) > 0, "{reports:?}");
}
