//! DNS cookies toward upstreams (RFC 7873 sections 5.1 and 5.3), driven
//! through the sans-IO API with a fake clock: the cookie every query
//! carries (UDP and TCP, one per upstream), the server cookie learned and
//! sent back, replies with a wrong, malformed or missing cookie refused
//! and counted, the downgrade after timeouts only, BADCOOKIE retried once
//! then an upstream error, and `upstream.cookies: false`. Every query
//! heimdall writes is also read with hickory-proto.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use heimdall_cache::Timestamp;
use heimdall_resolver::upstream_cookie::COOKIELESS_TIMEOUTS_FOR_FALLBACK;
use heimdall_resolver::{
    Resolver, ResolverConfig, Transmit, Upstream, UpstreamStrategy, UpstreamTransport,
};
use heimdall_testkit::messages::a_answer;
use heimdall_wire::{Message, Rcode, edns};

use common::{
    TCP, UPSTREAM_A, UPSTREAM_B, a_query, addr, client, config, ede_codes, on_socket, replies, src,
    transmits,
};

fn resolver(upstreams: &[&str], attempts: u32) -> Resolver {
    let config = ResolverConfig {
        attempts,
        ..config(upstreams)
    };
    Resolver::with_seed(config, 7873).unwrap()
}

/// The COOKIE option data of a message, if it has one; checked against
/// hickory's reading of the same bytes.
fn cookie_of(bytes: &[u8]) -> Option<Vec<u8>> {
    let ours = Message::parse(bytes)
        .unwrap()
        .opt()
        .and_then(|opt| opt.options().find(|o| o.code == edns::COOKIE))
        .map(|option| option.data.to_vec());
    let hickory = hickory_proto::op::Message::from_vec(bytes).unwrap();
    let theirs = hickory.edns.as_ref().and_then(|opt| {
        opt.options()
            .get(hickory_proto::rr::rdata::opt::EdnsCode::Cookie)
            .map(|option| Vec::<u8>::try_from(option).unwrap())
    });
    assert_eq!(ours, theirs, "hickory reads the same COOKIE option");
    ours
}

/// `reply` (without an OPT record) with one added: extended rcode bits
/// `extended`, and a COOKIE option with `cookie` when given.
fn with_opt(mut reply: Vec<u8>, extended: u8, cookie: Option<&[u8]>) -> Vec<u8> {
    assert_eq!(&reply[10..12], [0, 0], "no additional records yet");
    reply[11] = 1;
    let option_len = cookie.map_or(0, |data| 4 + data.len());
    reply.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, extended, 0, 0, 0]);
    reply.extend_from_slice(&(option_len as u16).to_be_bytes());
    if let Some(data) = cookie {
        reply.extend_from_slice(&edns::COOKIE.to_be_bytes());
        reply.extend_from_slice(&(data.len() as u16).to_be_bytes());
        reply.extend_from_slice(data);
    }
    reply
}

/// The upstream's A answer to `sent`, echoing `client` with `server`.
fn answer_with_cookie(sent: &[u8], client: &[u8], server: &[u8]) -> Vec<u8> {
    let data = [client, server].concat();
    with_opt(a_answer(sent, 1, 60), 0, Some(&data))
}

/// A BADCOOKIE reply (header rcode 7, OPT extended bits 1) to `sent`,
/// echoing `client` with a new `server` cookie.
fn badcookie(sent: &[u8], client: &[u8], server: &[u8]) -> Vec<u8> {
    let mut reply = a_answer(sent, 0, 0);
    reply[3] = (reply[3] & 0xf0) | 7;
    let data = [client, server].concat();
    let reply = with_opt(reply, 1, Some(&data));
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::BADCOOKIE);
    reply
}

fn deliver(resolver: &mut Resolver, sent: &(Transmit, Vec<u8>), reply: &[u8], now: Timestamp) {
    let source = if sent.0.transport == UpstreamTransport::Tcp {
        src(sent.0.to, TCP)
    } else {
        on_socket(sent.0.to, sent.0.attempt)
    };
    resolver.handle_upstream_reply(source, reply, now);
}

/// One query for `name`, sent; returns its transmit.
fn ask(resolver: &mut Resolver, name: &str, id: u16, now: Timestamp) -> (Transmit, Vec<u8>) {
    let mut out = [0u8; 1232];
    resolver.handle_query(&a_query(name, id), &client(id), now, &mut out);
    let mut sent = transmits(resolver);
    assert_eq!(sent.len(), 1, "{name}");
    sent.remove(0)
}

const SERVER: [u8; 16] = *b"server-cookie-16";

#[test]
fn every_upstream_query_carries_a_client_cookie_of_its_upstreams_own() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B], 2);
    let now = Timestamp::from_secs(10);
    let first = ask(&mut resolver, "one.example", 1, now);
    assert_eq!(first.0.to, addr(UPSTREAM_A));
    let cookie_a = cookie_of(&first.1).expect("a COOKIE option");
    assert_eq!(cookie_a.len(), 8, "a client cookie alone at first");
    let second = ask(&mut resolver, "two.example", 2, now);
    assert_eq!(cookie_of(&second.1).unwrap(), cookie_a, "kept per upstream");
    // The first query times out; its next attempt goes to B, with B's own.
    let deadline = resolver.next_deadline().unwrap();
    resolver.handle_timeouts(deadline);
    let at_b = transmits(&mut resolver);
    assert_eq!(at_b[0].0.to, addr(UPSTREAM_B));
    let cookie_b = cookie_of(&at_b[0].1).unwrap();
    assert_eq!(cookie_b.len(), 8);
    assert_ne!(cookie_b, cookie_a, "never shared across upstreams");
    let state = resolver.upstreams().get(1).unwrap().cookie();
    assert_eq!(state.current_client().unwrap().to_vec(), cookie_b);
    // Another core (another resolver) has cookies of its own.
    let mut other = Resolver::new(config(&[UPSTREAM_A])).unwrap();
    let elsewhere = ask(&mut other, "one.example", 1, now);
    assert_ne!(cookie_of(&elsewhere.1).unwrap(), cookie_a);
}

#[test]
fn tcp_attempts_carry_the_cookie_and_their_replies_are_checked() {
    let config = ResolverConfig {
        upstreams: vec![Upstream::new(addr(UPSTREAM_A), UpstreamTransport::Tcp)],
        strategy: UpstreamStrategy::Ordered,
        ..config(&[])
    };
    let mut resolver = Resolver::with_seed(config, 3).unwrap();
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "tcp.example", 1, now);
    assert_eq!(sent.0.transport, UpstreamTransport::Tcp);
    let client_cookie = cookie_of(&sent.1).unwrap();
    let wrong = answer_with_cookie(&sent.1, b"notours!", &SERVER);
    deliver(&mut resolver, &sent, &wrong, now);
    assert_eq!(resolver.stats().reply_rejected_wrong_cookie, 1);
    deliver(
        &mut resolver,
        &sent,
        &answer_with_cookie(&sent.1, &client_cookie, &SERVER),
        now,
    );
    assert_eq!(replies(&mut resolver, now).len(), 1);
    let next = ask(&mut resolver, "tcp2.example", 2, now);
    assert_eq!(
        cookie_of(&next.1).unwrap(),
        [&client_cookie[..], &SERVER].concat()
    );
}

#[test]
fn a_server_cookie_is_learned_and_sent_back() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "learn.example", 1, now);
    let client_cookie = cookie_of(&sent.1).unwrap();
    assert!(!resolver.upstreams().get(0).unwrap().cookie().supported());
    deliver(
        &mut resolver,
        &sent,
        &answer_with_cookie(&sent.1, &client_cookie, &SERVER),
        now,
    );
    assert_eq!(replies(&mut resolver, now).len(), 1);
    let state = resolver.upstreams().get(0).unwrap().cookie();
    assert!(state.supported());
    assert_eq!(state.server_cookie(), Some(&SERVER[..]));
    let next = ask(&mut resolver, "next.example", 2, now);
    assert_eq!(
        cookie_of(&next.1).unwrap(),
        [&client_cookie[..], &SERVER].concat(),
        "client cookie, then the server cookie learned"
    );
    // A newer server cookie replaces it.
    let newer = *b"newer-server-cookie-of-24";
    let newer = &newer[..24];
    deliver(
        &mut resolver,
        &next,
        &answer_with_cookie(&next.1, &client_cookie, newer),
        now,
    );
    let state = resolver.upstreams().get(0).unwrap().cookie();
    assert_eq!(state.server_cookie(), Some(newer));
}

#[test]
fn a_reply_with_a_wrong_or_malformed_cookie_is_rejected_and_counted() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "forged.example", 1, now);
    let client_cookie = cookie_of(&sent.1).unwrap();
    let mut other = client_cookie.clone();
    other[0] ^= 0x01;
    let forged = answer_with_cookie(&sent.1, &other, &SERVER);
    deliver(&mut resolver, &sent, &forged, now);
    // Malformed: 12 bytes (neither 8 nor 16 to 40), and two options.
    let short = with_opt(a_answer(&sent.1, 1, 60), 0, Some(&[0u8; 12]));
    deliver(&mut resolver, &sent, &short, now);
    let mut twice = answer_with_cookie(&sent.1, &client_cookie, &SERVER);
    let option_start = twice.len() - 28;
    let option = twice[option_start..].to_vec();
    twice.extend_from_slice(&option);
    let rdlength = twice.len() - option_start;
    let at = option_start - 2;
    twice[at..at + 2].copy_from_slice(&(rdlength as u16).to_be_bytes());
    deliver(&mut resolver, &sent, &twice, now);
    assert!(replies(&mut resolver, now).is_empty(), "nothing relayed");
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_cookie, 3);
    assert_eq!(stats.upstream_mismatched, 3);
    let state = resolver.upstreams().get(0).unwrap().cookie();
    assert_eq!(state.server_cookie(), None, "nothing learned from them");
    // The genuine reply is still accepted.
    deliver(
        &mut resolver,
        &sent,
        &answer_with_cookie(&sent.1, &client_cookie, &SERVER),
        now,
    );
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::NOERROR);
}

#[test]
fn an_upstream_without_cookies_is_answered_as_before() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let now = Timestamp::from_secs(10);
    for i in 0..5u16 {
        let sent = ask(&mut resolver, &format!("plain{i}.example"), i, now);
        assert!(cookie_of(&sent.1).is_some());
        deliver(&mut resolver, &sent, &a_answer(&sent.1, 1, 60), now);
        assert_eq!(replies(&mut resolver, now).len(), 1);
    }
    assert_eq!(resolver.stats().reply_rejected_wrong_cookie, 0);
    assert!(!resolver.upstreams().get(0).unwrap().cookie().supported());
}

/// A resolver whose one upstream has sent a server cookie; and its client
/// cookie.
fn learned(attempts: u32) -> (Resolver, Vec<u8>, Timestamp) {
    let mut resolver = resolver(&[UPSTREAM_A], attempts);
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "first.example", 1, now);
    let client_cookie = cookie_of(&sent.1).unwrap();
    deliver(
        &mut resolver,
        &sent,
        &answer_with_cookie(&sent.1, &client_cookie, &SERVER),
        now,
    );
    assert_eq!(replies(&mut resolver, now).len(), 1);
    (resolver, client_cookie, now)
}

#[test]
fn once_an_upstream_sent_cookies_a_cookieless_reply_is_rejected() {
    let (mut resolver, client_cookie, now) = learned(3);
    // A forger who guessed ID and port but not the cookie: as many
    // cookie-less replies as it likes, then the genuine one, every time.
    for i in 0..10u16 {
        let sent = ask(&mut resolver, &format!("flood{i}.example"), 10 + i, now);
        for _ in 0..20 {
            let forged = a_answer(&sent.1, 1, 86_400);
            deliver(&mut resolver, &sent, &forged, now);
        }
        assert!(replies(&mut resolver, now).is_empty());
        deliver(
            &mut resolver,
            &sent,
            &answer_with_cookie(&sent.1, &client_cookie, &SERVER),
            now,
        );
        let got = replies(&mut resolver, now);
        assert_eq!(got.len(), 1);
        let ttl = Message::parse(&got[0].1)
            .unwrap()
            .answers()
            .next()
            .unwrap()
            .ttl();
        assert_eq!(ttl, 60, "the forged TTL never got in");
    }
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_cookie, 200);
    assert_eq!(stats.upstream_mismatched, 200);
    assert_eq!(
        stats.upstream_cookie_fallbacks, 0,
        "a flood never downgrades"
    );
    assert!(resolver.upstreams().get(0).unwrap().cookie().supported());
}

#[test]
fn the_cookie_is_judged_before_the_case() {
    // A cookie-less reply in the wrong case from a cookie upstream is a
    // cookie fault: it says nothing about the upstream's case handling.
    let (mut resolver, client_cookie, now) = learned(1);
    let sent = ask(&mut resolver, "Mixed-Case-Name.example", 2, now);
    assert!(
        sent.1[12..].iter().take(20).any(u8::is_ascii_uppercase),
        "this seed sends some upper case"
    );
    let mut lowered = sent.1.clone();
    let end = 12 + lowered[12..].iter().position(|&b| b == 0).unwrap();
    lowered[12..end].make_ascii_lowercase();
    deliver(&mut resolver, &sent, &a_answer(&lowered, 1, 60), now);
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_cookie, 1);
    assert_eq!(stats.reply_rejected_wrong_case, 0);
    // With our cookie but in the wrong case: a case fault.
    let wrong_case = answer_with_cookie(&lowered, &client_cookie, &SERVER);
    deliver(&mut resolver, &sent, &wrong_case, now);
    assert_eq!(resolver.stats().reply_rejected_wrong_case, 1);
    assert!(replies(&mut resolver, now).is_empty());
}

#[test]
fn support_is_forgotten_only_after_timeouts_with_only_cookieless_replies() {
    let (mut resolver, _, t0) = learned(3);
    let mut out = [0u8; 1232];
    // A plain timeout (no reply at all) is no evidence either way.
    resolver.handle_query(&a_query("silent.example", 2), &client(2), t0, &mut out);
    transmits(&mut resolver);
    let mut now = t0;
    while let Some(deadline) = resolver.next_deadline() {
        now = deadline;
        resolver.handle_timeouts(now);
        transmits(&mut resolver);
    }
    replies(&mut resolver, now);
    assert!(resolver.upstreams().get(0).unwrap().cookie().supported());
    // The upstream stops sending cookies: each attempt gets a cookie-less
    // reply and times out.
    let now = now.add_secs(60);
    resolver.handle_query(&a_query("stopped.example", 3), &client(3), now, &mut out);
    let mut sent = transmits(&mut resolver);
    let mut now = now;
    for timeout in 1..=COOKIELESS_TIMEOUTS_FOR_FALLBACK {
        assert_eq!(sent.len(), 1);
        deliver(&mut resolver, &sent[0], &a_answer(&sent[0].1, 1, 60), now);
        assert!(replies(&mut resolver, now).is_empty(), "refused");
        assert_eq!(resolver.stats().upstream_cookie_fallbacks, 0, "{timeout}");
        now = resolver.next_deadline().unwrap();
        resolver.handle_timeouts(now);
        sent = transmits(&mut resolver);
    }
    assert_eq!(resolver.stats().upstream_cookie_fallbacks, 1);
    let up = resolver.upstreams().get(0).unwrap();
    assert_eq!(up.stats().cookie_fallbacks, 1);
    assert!(!up.cookie().supported());
    assert_eq!(up.cookie().server_cookie(), None);
    // At that timeout the query was asked again at once (its 3 attempts
    // are used up): now its cookie-less answer is accepted.
    assert_eq!(sent.len(), 1);
    assert_eq!(cookie_of(&sent[0].1).map(|c| c.len()), Some(8));
    deliver(&mut resolver, &sent[0], &a_answer(&sent[0].1, 1, 60), now);
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::NOERROR);
    assert_eq!(resolver.stats().reply_rejected_wrong_cookie, 3);
}

#[test]
fn cookieless_replies_in_a_flood_never_downgrade() {
    // The genuine reply is lost (a flooded socket), and a forged reply
    // with the right ID but no cookie marks each attempt: the other
    // forged replies on the socket show the flood, so no strike.
    let (mut resolver, _, t0) = learned(3);
    let mut out = [0u8; 1232];
    resolver.handle_query(&a_query("drowned.example", 3), &client(3), t0, &mut out);
    let mut sent = transmits(&mut resolver);
    let mut now = t0;
    for _ in 0..COOKIELESS_TIMEOUTS_FOR_FALLBACK + 1 {
        if sent.is_empty() {
            break;
        }
        for guess in 1..=20u16 {
            let mut forged = a_answer(&sent[0].1, 1, 86_400);
            let id = u16::from_be_bytes([forged[0], forged[1]]) ^ guess;
            forged[..2].copy_from_slice(&id.to_be_bytes());
            deliver(&mut resolver, &sent[0], &forged, now);
        }
        deliver(
            &mut resolver,
            &sent[0],
            &a_answer(&sent[0].1, 1, 86_400),
            now,
        );
        now = resolver.next_deadline().unwrap();
        resolver.handle_timeouts(now);
        sent = transmits(&mut resolver);
    }
    let stats = resolver.stats();
    assert_eq!(stats.upstream_cookie_fallbacks, 0);
    assert_eq!(stats.upstream_strikes_flooded, 3);
    assert!(resolver.upstreams().get(0).unwrap().cookie().supported());
}

#[test]
fn badcookie_is_retried_once_with_the_new_server_cookie() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "strict.example", 1, now);
    let client_cookie = cookie_of(&sent.1).unwrap();
    assert_eq!(client_cookie.len(), 8);
    deliver(
        &mut resolver,
        &sent,
        &badcookie(&sent.1, &client_cookie, &SERVER),
        now,
    );
    assert!(
        replies(&mut resolver, now).is_empty(),
        "BADCOOKIE is not relayed"
    );
    assert_eq!(resolver.stats().upstream_badcookie_retries, 1);
    // Asked again at once (with one attempt allowed: it used none), with
    // the server cookie it was given.
    let again = transmits(&mut resolver);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0.to, addr(UPSTREAM_A));
    assert_ne!(again[0].0.attempt, sent.0.attempt);
    assert_eq!(
        cookie_of(&again[0].1).unwrap(),
        [&client_cookie[..], &SERVER].concat()
    );
    deliver(
        &mut resolver,
        &again[0],
        &answer_with_cookie(&again[0].1, &client_cookie, &SERVER),
        now,
    );
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::NOERROR);
}

#[test]
fn a_second_badcookie_is_an_upstream_error() {
    // One upstream: SERVFAIL with EDE 23, never BADCOOKIE to the client.
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "stubborn.example", 1, now);
    let client_cookie = cookie_of(&sent.1).unwrap();
    deliver(
        &mut resolver,
        &sent,
        &badcookie(&sent.1, &client_cookie, &SERVER),
        now,
    );
    let again = transmits(&mut resolver);
    deliver(
        &mut resolver,
        &again[0],
        &badcookie(&again[0].1, &client_cookie, &SERVER),
        now,
    );
    assert!(transmits(&mut resolver).is_empty(), "no second retry");
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&got[0].1), [23]);
    let stats = resolver.stats();
    assert_eq!(stats.upstream_badcookie_retries, 1);
    assert_eq!(stats.upstream_error_failures, 1);
    // Two upstreams: the second BADCOOKIE moves on to the next one.
    let mut resolver = resolver_pair();
    let sent = ask(&mut resolver, "stubborn.example", 1, now);
    let client_cookie = cookie_of(&sent.1).unwrap();
    deliver(
        &mut resolver,
        &sent,
        &badcookie(&sent.1, &client_cookie, &SERVER),
        now,
    );
    let again = transmits(&mut resolver);
    deliver(
        &mut resolver,
        &again[0],
        &badcookie(&again[0].1, &client_cookie, &SERVER),
        now,
    );
    let at_b = transmits(&mut resolver);
    assert_eq!(at_b.len(), 1);
    assert_eq!(at_b[0].0.to, addr(UPSTREAM_B));
    deliver(&mut resolver, &at_b[0], &a_answer(&at_b[0].1, 1, 60), now);
    let got = replies(&mut resolver, now);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::NOERROR);
}

fn resolver_pair() -> Resolver {
    resolver(&[UPSTREAM_A, UPSTREAM_B], 2)
}

#[test]
fn a_badcookie_with_another_client_cookie_is_rejected() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "spoofed-badcookie.example", 1, now);
    deliver(
        &mut resolver,
        &sent,
        &badcookie(&sent.1, b"12345678", &SERVER),
        now,
    );
    assert!(
        transmits(&mut resolver).is_empty(),
        "no retry for a forgery"
    );
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_cookie, 1);
    assert_eq!(stats.upstream_badcookie_retries, 0);
    assert_eq!(
        resolver
            .upstreams()
            .get(0)
            .unwrap()
            .cookie()
            .server_cookie(),
        None
    );
}

#[test]
fn with_cookies_off_no_cookie_is_sent_or_checked() {
    let config = ResolverConfig {
        cookies: false,
        ..config(&[UPSTREAM_A])
    };
    let mut resolver = Resolver::with_seed(config, 5).unwrap();
    let now = Timestamp::from_secs(10);
    let sent = ask(&mut resolver, "off.example", 1, now);
    assert_eq!(cookie_of(&sent.1), None);
    let odd = answer_with_cookie(&sent.1, b"whatever", &SERVER);
    deliver(&mut resolver, &sent, &odd, now);
    assert_eq!(replies(&mut resolver, now).len(), 1);
    assert_eq!(resolver.stats().reply_rejected_wrong_cookie, 0);
    assert!(!resolver.upstreams().get(0).unwrap().cookie().supported());
}

#[test]
fn a_reload_keeps_the_cookie_of_an_address_and_a_new_address_gets_a_fresh_one() {
    let (mut resolver, client_cookie, now) = learned(1);
    let new = ResolverConfig {
        attempts: 1,
        ..config(&[UPSTREAM_B, UPSTREAM_A])
    };
    resolver.reconfigure(new, now).unwrap();
    let kept = resolver.upstreams().get(1).unwrap().cookie();
    assert_eq!(kept.current_client().unwrap().to_vec(), client_cookie);
    assert_eq!(kept.server_cookie(), Some(&SERVER[..]));
    let sent = ask(&mut resolver, "reloaded.example", 5, now);
    assert_eq!(sent.0.to, addr(UPSTREAM_B));
    let fresh = cookie_of(&sent.1).unwrap();
    assert_eq!(fresh.len(), 8);
    assert_ne!(fresh, client_cookie);
}
