//! Server cookies toward clients (RFC 7873, RFC 9018) through the engine:
//! what each kind of COOKIE option earns, that every reply to a query with
//! one answers it (hits, misses answered later, errors, local data, block
//! replies), the QDCOUNT 0 query of RFC 7873 section 5.4, and
//! `udp_require_above` (BADCOOKIE, TC, TCP exempt). Replies are
//! cross-checked with hickory-proto.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use heimdall_cache::Timestamp;
use heimdall_policy::{BlocklistBuilder, ListFormat, RateLimitConfig, ServerCookies};
use heimdall_resolver::{
    ClientId, CookiePolicy, PolicyConfig, QueryOutcome, Resolver, ResolverConfig, Transport,
};
use heimdall_testkit::messages::{a_answer, query, query_with_cookie, query_with_options};
use heimdall_wire::cookie::find_cookie;
use heimdall_wire::{Message, Rcode, RecordType, edns};
use heimdall_zone::{LocalData, parse_record_line};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption as HOption};

use common::{UPSTREAM_A, config, on_socket, replies, transmits};

/// Unix time of the engine's epoch in these tests.
const UNIX_EPOCH_MS: u64 = 1_700_000_000_000;
const MASTER: [u8; 16] = *b"sixteen byte key";
const CLIENT_COOKIE: [u8; 8] = *b"clientck";

fn cookies() -> ServerCookies {
    ServerCookies::new(MASTER, 86_400).unwrap()
}

fn now() -> Timestamp {
    Timestamp::from_secs(100)
}

fn unix_now() -> u64 {
    UNIX_EPOCH_MS / 1000 + 100
}

fn client(transport: Transport) -> ClientId {
    ClientId {
        addr: SocketAddr::from(([192, 0, 2, 7], 40000)),
        transport,
        listener: 0,
    }
}

fn client_ip() -> IpAddr {
    client(Transport::Udp).addr.ip()
}

/// Cookies on, with `udp_require` queries per second (burst the same)
/// when given; local data for `printer.lan`, a blocklist with
/// `blocked.test`.
fn resolver(udp_require: Option<u32>) -> Resolver {
    let local = LocalData::builder()
        .records([parse_record_line("printer.lan. 300 IN A 192.168.1.5", None, 300).unwrap()])
        .build()
        .unwrap();
    let mut list = BlocklistBuilder::new();
    list.add_list("blocked.test\n", ListFormat::Domains);
    let cookie_policy = CookiePolicy {
        cookies: cookies(),
        unix_epoch_ms: UNIX_EPOCH_MS,
        udp_require: udp_require.map(|rate| {
            (
                RateLimitConfig {
                    rate_per_sec: rate,
                    burst: rate.max(1),
                    ..RateLimitConfig::default()
                },
                1,
            )
        }),
    };
    let config = ResolverConfig {
        policy: PolicyConfig {
            local: Some(Arc::new(local)),
            blocklist: Some(Arc::new(list.build())),
            cookies: Some(cookie_policy),
            ..PolicyConfig::default()
        },
        ..config(&[UPSTREAM_A])
    };
    Resolver::with_seed(config, 3).unwrap()
}

/// A valid server cookie for our client, made now.
fn good_server_cookie() -> [u8; 16] {
    cookies().make(&CLIENT_COOKIE, client_ip(), unix_now())
}

fn with_server(server: &[u8]) -> Vec<u8> {
    [&CLIENT_COOKIE[..], server].concat()
}

fn ask(resolver: &mut Resolver, packet: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let mut out = vec![0u8; 65_535];
    match resolver.handle_query(packet, &client(transport), now(), &mut out) {
        QueryOutcome::Reply(len) => Some(out[..len].to_vec()),
        _ => None,
    }
}

/// The reply's COOKIE option must echo our client cookie with a server
/// cookie that verifies for this client now; hickory reads the same.
fn assert_answers_cookie(reply: &[u8]) {
    let message = Message::parse(reply).unwrap();
    let opt = message.opt().expect("an OPT record");
    let cookie = find_cookie(&opt).unwrap().expect("a COOKIE option");
    assert_eq!(cookie.client(), &CLIENT_COOKIE);
    assert_eq!(cookie.server().len(), 16);
    assert!(
        cookies().verify(&CLIENT_COOKIE, cookie.server(), client_ip(), unix_now()),
        "our server cookie must verify"
    );
    let theirs = hickory_proto::op::Message::from_vec(reply).unwrap();
    let data = [&CLIENT_COOKIE[..], cookie.server()].concat();
    assert_eq!(
        theirs.edns.as_ref().unwrap().option(EdnsCode::Cookie),
        Some(&HOption::Unknown(edns::COOKIE, data))
    );
}

/// Resolve `name` for a cookie-less client, so it is cached.
fn warm(resolver: &mut Resolver, name: &str) {
    let packet = query(name, RecordType::A, 1, Some((1232, false)));
    assert!(ask(resolver, &packet, Transport::Udp).is_none());
    let (transmit, sent) = transmits(resolver).pop().unwrap();
    resolver.handle_upstream_reply(
        on_socket(transmit.to, transmit.attempt),
        &a_answer(&sent, 1, 300),
        now(),
    );
    replies(resolver, now());
}

#[test]
fn each_kind_of_cookie_is_answered_and_counted() {
    let mut resolver = resolver(None);
    warm(&mut resolver, "www.example");
    let kinds: [(Vec<u8>, &str); 3] = [
        (CLIENT_COOKIE.to_vec(), "new"),
        (with_server(&good_server_cookie()), "valid"),
        (with_server(&[0x55; 16]), "bad"),
    ];
    for (cookie, _) in &kinds {
        let packet = query_with_cookie("www.example", RecordType::A, 9, cookie);
        let reply = ask(&mut resolver, &packet, Transport::Udp).unwrap();
        let message = Message::parse(&reply).unwrap();
        assert_eq!(message.rcode(), Rcode::NOERROR);
        assert_eq!(message.answers().count(), 1);
        assert_answers_cookie(&reply);
    }
    let stats = resolver.stats();
    assert_eq!(
        (
            stats.client_cookies_new,
            stats.client_cookies_valid,
            stats.client_cookies_bad,
            stats.client_cookies_malformed
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(stats.cache_hits, 3);
}

#[test]
fn a_malformed_cookie_option_is_formerr() {
    let mut resolver = resolver(None);
    let nine = [7u8; 9];
    let forty_one = [7u8; 41];
    let two = [
        (edns::COOKIE, &CLIENT_COOKIE[..]),
        (edns::COOKIE, &CLIENT_COOKIE[..]),
    ];
    let packets = [
        query_with_cookie("www.example", RecordType::A, 1, &nine),
        query_with_cookie("www.example", RecordType::A, 2, &forty_one),
        query_with_cookie("www.example", RecordType::A, 3, &[]),
        query_with_options("www.example", RecordType::A, 4, &two),
    ];
    for packet in &packets {
        let reply = ask(&mut resolver, packet, Transport::Udp).unwrap();
        let message = Message::parse(&reply).unwrap();
        assert_eq!(message.rcode(), Rcode::FORMERR);
        assert!(find_cookie(&message.opt().unwrap()).unwrap().is_none());
        let theirs = hickory_proto::op::Message::from_vec(&reply).unwrap();
        assert_eq!(theirs.response_code, ResponseCode::FormErr);
    }
    assert_eq!(resolver.stats().client_cookies_malformed, 4);
    assert_eq!(resolver.stats().formerr, 4);
}

#[test]
fn misses_errors_local_data_and_blocks_answer_the_cookie() {
    let mut resolver = resolver(None);
    let cookie = with_server(&good_server_cookie());
    // A miss, answered later through poll_reply.
    let packet = query_with_cookie("miss.example", RecordType::A, 5, &cookie);
    assert!(ask(&mut resolver, &packet, Transport::Udp).is_none());
    let (transmit, sent) = transmits(&mut resolver).pop().unwrap();
    // The client's cookie is not passed on: the upstream query carries
    // only heimdall's own client cookie for that upstream, if any.
    let upstream_query = Message::parse(&sent).unwrap();
    assert!(upstream_query.opt().is_none_or(|opt| {
        find_cookie(&opt)
            .unwrap()
            .is_none_or(|ours| ours.client() != &cookie[..8] && ours.server().is_empty())
    }));
    resolver.handle_upstream_reply(
        on_socket(transmit.to, transmit.attempt),
        &a_answer(&sent, 2, 300),
        now(),
    );
    let waiting = replies(&mut resolver, now());
    assert_eq!(waiting.len(), 1);
    assert_answers_cookie(&waiting[0].1);
    // A failure (SERVFAIL written by the engine), for a waiter too.
    let packet = query_with_cookie("fail.example", RecordType::A, 6, &cookie);
    assert!(ask(&mut resolver, &packet, Transport::Udp).is_none());
    transmits(&mut resolver);
    resolver.handle_timeouts(now().add_secs(10));
    let failed = replies(&mut resolver, now().add_secs(10));
    assert_eq!(failed.len(), 1);
    assert_eq!(
        Message::parse(&failed[0].1).unwrap().rcode(),
        Rcode::SERVFAIL
    );
    assert_answers_cookie(&failed[0].1);

    // Written at once: a refusal, local data, a block.
    let refused = query_with_cookie("zone.example", RecordType::AXFR, 7, &cookie);
    let local = query_with_cookie("printer.lan", RecordType::A, 8, &cookie);
    let blocked = query_with_cookie("ads.blocked.test", RecordType::A, 9, &cookie);
    let expected = [Rcode::REFUSED, Rcode::NOERROR, Rcode::NXDOMAIN];
    for (packet, rcode) in [refused, local, blocked].iter().zip(expected) {
        let reply = ask(&mut resolver, packet, Transport::Udp).unwrap();
        assert_eq!(Message::parse(&reply).unwrap().rcode(), rcode);
        assert_answers_cookie(&reply);
    }
    assert_eq!(resolver.stats().local_answers, 1);
    assert_eq!(resolver.stats().blocked, 1);
    assert_eq!(resolver.stats().client_cookies_valid, 5);
}

#[test]
fn a_query_of_only_a_cookie_gets_noerror_with_ours() {
    let mut resolver = resolver(None);
    let mut packet = query_with_cookie("www.example", RecordType::A, 11, &CLIENT_COOKIE);
    // QDCOUNT 0: drop the question (header, then the question's bytes).
    let question_len = "www.example".len() + 2 + 4;
    packet.drain(12..12 + question_len);
    packet[5] = 0;
    let reply = ask(&mut resolver, &packet, Transport::Udp).unwrap();
    let message = Message::parse(&reply).unwrap();
    assert_eq!(message.rcode(), Rcode::NOERROR);
    assert_eq!(message.header().question_count, 0);
    assert_answers_cookie(&reply);
    // Without a cookie, a query with no question is still FORMERR.
    let mut plain = query("www.example", RecordType::A, 12, Some((1232, false)));
    plain.drain(12..12 + question_len);
    plain[5] = 0;
    let reply = ask(&mut resolver, &plain, Transport::Udp).unwrap();
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::FORMERR);
}

#[test]
fn above_the_required_rate_udp_needs_a_valid_cookie() {
    // One query per second per prefix without a valid cookie.
    let mut resolver = resolver(Some(1));
    warm(&mut resolver, "www.example");
    let good = with_server(&good_server_cookie());
    let client_only = query_with_cookie("www.example", RecordType::A, 1, &CLIENT_COOKIE);
    let bad = query_with_cookie("www.example", RecordType::A, 2, &with_server(&[9; 16]));
    let none = query("www.example", RecordType::A, 3, Some((1232, false)));
    let valid = query_with_cookie("www.example", RecordType::A, 4, &good);

    // `warm` took the one token: everything without a valid cookie is over.
    let reply = ask(&mut resolver, &client_only, Transport::Udp).unwrap();
    let message = Message::parse(&reply).unwrap();
    assert_eq!(message.rcode(), Rcode::BADCOOKIE);
    assert_eq!(message.answers().count(), 0);
    assert_answers_cookie(&reply);
    let theirs = hickory_proto::op::Message::from_vec(&reply).unwrap();
    assert_eq!(theirs.response_code, ResponseCode::BADCOOKIE);

    let reply = ask(&mut resolver, &bad, Transport::Udp).unwrap();
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::BADCOOKIE);
    assert_answers_cookie(&reply);

    let reply = ask(&mut resolver, &none, Transport::Udp).unwrap();
    let message = Message::parse(&reply).unwrap();
    assert!(message.flags().truncated());
    assert_eq!(message.answers().count(), 0);
    assert_eq!(message.rcode(), Rcode::NOERROR);

    // A valid cookie is always answered; so is TCP, cookie or not.
    for (packet, transport) in [
        (&valid, Transport::Udp),
        (&client_only, Transport::Tcp(1)),
        (&none, Transport::Tcp(1)),
    ] {
        let reply = ask(&mut resolver, packet, transport).unwrap();
        let message = Message::parse(&reply).unwrap();
        assert_eq!(message.rcode(), Rcode::NOERROR);
        assert_eq!(message.answers().count(), 1);
        assert!(!message.flags().truncated());
    }
    let stats = resolver.stats();
    assert_eq!(stats.client_cookies_badcookie_sent, 2);
    assert_eq!(stats.client_cookies_truncated, 1);
    assert_eq!(stats.responses_with_rcode(Rcode::BADCOOKIE.0), 2);
    assert_eq!(stats.responses_with_rcode(Rcode::YXDOMAIN.0), 0);
}

#[test]
fn cookies_off_means_no_cookie_read_or_answered() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 3).unwrap();
    warm(&mut resolver, "www.example");
    let nine = [7u8; 9];
    for cookie in [&CLIENT_COOKIE[..], &nine[..]] {
        let packet = query_with_cookie("www.example", RecordType::A, 1, cookie);
        let reply = ask(&mut resolver, &packet, Transport::Udp).unwrap();
        let message = Message::parse(&reply).unwrap();
        assert_eq!(message.rcode(), Rcode::NOERROR);
        assert!(message.opt().unwrap().options().next().is_none());
    }
    let stats = resolver.stats();
    assert_eq!(stats.client_cookies_new + stats.client_cookies_malformed, 0);
}

#[test]
fn the_rate_limiters_truncated_reply_stays_no_larger_than_the_query() {
    let cookie_policy = CookiePolicy {
        cookies: cookies(),
        unix_epoch_ms: UNIX_EPOCH_MS,
        udp_require: None,
    };
    let config = ResolverConfig {
        policy: PolicyConfig {
            rate_limit: Some((
                RateLimitConfig {
                    rate_per_sec: 0,
                    burst: 1,
                    action: heimdall_policy::RateLimitAction::Truncate,
                    ..RateLimitConfig::default()
                },
                1,
            )),
            cookies: Some(cookie_policy),
            ..PolicyConfig::default()
        },
        ..config(&[UPSTREAM_A])
    };
    let mut resolver = Resolver::with_seed(config, 3).unwrap();
    let packet = query_with_cookie("www.example", RecordType::A, 1, &CLIENT_COOKIE);
    assert!(
        ask(&mut resolver, &packet, Transport::Udp).is_none(),
        "the burst"
    );
    let reply = ask(&mut resolver, &packet, Transport::Udp).unwrap();
    let message = Message::parse(&reply).unwrap();
    assert!(message.flags().truncated());
    assert!(
        reply.len() <= packet.len(),
        "{} > {}",
        reply.len(),
        packet.len()
    );
    assert!(find_cookie(&message.opt().unwrap()).unwrap().is_none());
    assert_eq!(resolver.stats().rate_limited_truncated, 1);
}
