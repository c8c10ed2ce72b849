//! Issue 14, the resolver's defences against forged and bogus upstream
//! replies, driven through the sans-IO API with a fake clock: per-attempt
//! sockets (wrong socket), late replies, upstream errors, DNS 0x20 and
//! its fallback (struck only by timeouts, never by forged replies alone),
//! unpredictable IDs, and the retirement of every attempt. DNS cookies
//! are in `cookies.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::{HashMap, HashSet};

use heimdall_cache::Timestamp;
use heimdall_resolver::upstreams::{CASE_FALLBACK_MS, CASE_STRIKES_FOR_FALLBACK};
use heimdall_resolver::{AttemptId, QueryOutcome, Resolver, ResolverConfig, Transmit};
use heimdall_testkit::messages::a_answer;
use heimdall_wire::{Message, Rcode};

use common::{
    UPSTREAM_A, UPSTREAM_B, a_query, addr, client, config, ede_codes, expect_reply, on_socket,
    replies, transmits,
};

/// `upstreams` in order, 800 ms per attempt, `attempts` attempts.
fn resolver(upstreams: &[&str], attempts: u32) -> Resolver {
    let config = ResolverConfig {
        attempts,
        ..config(upstreams)
    };
    Resolver::with_seed(config, 14).unwrap()
}

/// The upstream answers `sent` (a transmit and its bytes) with one A
/// record, on the attempt's own socket.
fn answer(resolver: &mut Resolver, sent: &(Transmit, Vec<u8>), now: Timestamp) {
    let source = on_socket(sent.0.to, sent.0.attempt);
    resolver.handle_upstream_reply(source, &a_answer(&sent.1, 1, 60), now);
}

/// `bytes` (a DNS message) with the letters of its question name in
/// lower case. Label lengths are at most 63, below any letter.
fn lower_question(mut bytes: Vec<u8>) -> Vec<u8> {
    let end = 12 + bytes[12..].iter().position(|&b| b == 0).unwrap();
    bytes[12..end].make_ascii_lowercase();
    bytes
}

/// The question name of `bytes` as sent (letter case kept).
fn qname(bytes: &[u8]) -> String {
    Message::parse(bytes)
        .unwrap()
        .question()
        .unwrap()
        .name
        .to_string()
}

fn with_rcode(mut answer: Vec<u8>, rcode: Rcode) -> Vec<u8> {
    answer[3] = (answer[3] & 0xf0) | (rcode.0 as u8 & 0x0f);
    answer
}

fn all_retired(resolver: &mut Resolver) -> Vec<AttemptId> {
    std::iter::from_fn(|| resolver.poll_retired()).collect()
}

#[test]
fn a_late_reply_to_an_earlier_attempt_is_accepted_and_counted() {
    let mut resolver = resolver(&[UPSTREAM_A], 3);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(10);
    let outcome = resolver.handle_query(&a_query("slow.example", 1), &client(1), t0, &mut out);
    assert_eq!(outcome, QueryOutcome::Pending);
    let first = transmits(&mut resolver);
    let deadline = resolver.next_deadline().unwrap();
    assert_eq!(deadline, t0.add_millis(800));
    resolver.handle_timeouts(deadline);
    let second = transmits(&mut resolver);
    assert_eq!(second.len(), 1, "the second attempt went out");
    assert_ne!(first[0].0.attempt, second[0].0.attempt);
    assert!(
        all_retired(&mut resolver).is_empty(),
        "the first attempt stays live while its query does"
    );
    // The upstream answers the first attempt after 1.2 s (timeout 800 ms).
    let late = t0.add_millis(1_200);
    answer(&mut resolver, &first[0], late);
    let got = replies(&mut resolver, late);
    assert_eq!(got.len(), 1, "answered, not SERVFAIL");
    let reply = Message::parse(&got[0].1).unwrap();
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_eq!(reply.answers().count(), 1);
    let stats = resolver.stats();
    assert_eq!(stats.reply_late_accepted, 1);
    assert_eq!(stats.upstream_mismatched, 0);
    let mut retired = all_retired(&mut resolver);
    retired.sort_by_key(|id| id.0);
    let mut sent = vec![first[0].0.attempt, second[0].0.attempt];
    sent.sort_by_key(|id| id.0);
    assert_eq!(retired, sent, "both attempts retired when the query ended");
    // The slow reply raised this upstream's timeout above 800 ms.
    let up = resolver.upstreams().get(0).unwrap();
    assert!(up.attempt_timeout_ms(800) > 800, "{up:?}");
}

#[test]
fn upstream_refused_notimp_formerr_try_the_next_upstream_then_servfail_ede_23_cached() {
    for rcode in [
        Rcode::REFUSED,
        Rcode::NOTIMP,
        Rcode::FORMERR,
        Rcode::SERVFAIL,
    ] {
        let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B], 2);
        let mut out = [0u8; 1232];
        let t0 = Timestamp::from_secs(10);
        resolver.handle_query(&a_query("refused.example", 7), &client(7), t0, &mut out);
        let at_a = transmits(&mut resolver);
        assert_eq!(at_a[0].0.to, addr(UPSTREAM_A));
        let error = with_rcode(a_answer(&at_a[0].1, 0, 0), rcode);
        resolver.handle_upstream_reply(on_socket(at_a[0].0.to, at_a[0].0.attempt), &error, t0);
        assert!(
            replies(&mut resolver, t0).is_empty(),
            "{rcode:?}: not relayed"
        );
        let at_b = transmits(&mut resolver);
        assert_eq!(at_b.len(), 1, "{rcode:?}: the next upstream is asked");
        assert_eq!(at_b[0].0.to, addr(UPSTREAM_B));
        let error = with_rcode(a_answer(&at_b[0].1, 0, 0), rcode);
        resolver.handle_upstream_reply(on_socket(at_b[0].0.to, at_b[0].0.attempt), &error, t0);
        let got = replies(&mut resolver, t0);
        assert_eq!(got.len(), 1, "{rcode:?}");
        let reply = Message::parse(&got[0].1).unwrap();
        assert_eq!(reply.rcode(), Rcode::SERVFAIL, "{rcode:?}: never relayed");
        assert_eq!(reply.id(), 7);
        assert_eq!(
            ede_codes(&got[0].1),
            [23],
            "{rcode:?}: EDE 23 Network Error"
        );
        assert_eq!(resolver.stats().upstream_error_failures, 1);
        // Cached briefly: the next client is answered at once.
        let len = expect_reply(resolver.handle_query(
            &a_query("refused.example", 8),
            &client(8),
            t0.add_millis(500),
            &mut out,
        ));
        assert_eq!(
            Message::parse(&out[..len]).unwrap().rcode(),
            Rcode::SERVFAIL
        );
        assert!(transmits(&mut resolver).is_empty(), "{rcode:?}: cached");
        assert_eq!(resolver.stats().upstream_queries, 2);
    }
}

/// An upstream that answered a query with an error is not asked it
/// again: with one upstream and three attempts, REFUSED costs one upstream
/// query, not three; with two, each is asked once.
#[test]
fn an_upstream_error_is_not_retried_on_the_same_upstream() {
    for (upstreams, expected) in [(&[UPSTREAM_A][..], 1), (&[UPSTREAM_A, UPSTREAM_B][..], 2)] {
        let mut resolver = resolver(upstreams, 3);
        let mut out = [0u8; 1232];
        let t0 = Timestamp::from_secs(10);
        resolver.handle_query(&a_query("refused.example", 7), &client(7), t0, &mut out);
        let mut asked = Vec::new();
        loop {
            let sent = transmits(&mut resolver);
            let Some(sent) = sent.first() else { break };
            asked.push(sent.0.to);
            let error = with_rcode(a_answer(&sent.1, 0, 0), Rcode::REFUSED);
            resolver.handle_upstream_reply(on_socket(sent.0.to, sent.0.attempt), &error, t0);
        }
        assert_eq!(asked.len(), expected, "{upstreams:?}: {asked:?}");
        let distinct: std::collections::HashSet<_> = asked.iter().collect();
        assert_eq!(distinct.len(), expected, "each upstream asked once");
        let got = replies(&mut resolver, t0);
        assert_eq!(got.len(), 1);
        assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::SERVFAIL);
        assert_eq!(ede_codes(&got[0].1), [23]);
        assert_eq!(resolver.stats().upstream_queries, expected as u64);
    }
}

#[test]
fn upstream_questions_go_out_in_random_case() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    let mut cases = HashSet::new();
    for i in 0..20u16 {
        let name = format!("www{i}.example.com");
        resolver.handle_query(&a_query(&name, i), &client(i), now, &mut out);
        let sent = transmits(&mut resolver);
        let asked = qname(&sent[0].1);
        assert_eq!(asked.to_ascii_lowercase(), format!("{name}."));
        cases.insert(asked.replace(char::is_numeric, ""));
    }
    assert!(cases.len() >= 15, "the case varies: {cases:?}");
    let uppers: usize = cases
        .iter()
        .map(|name| name.chars().filter(char::is_ascii_uppercase).count())
        .sum();
    assert!(uppers > 0, "{cases:?}");
}

#[test]
fn a_reply_in_the_wrong_case_is_rejected_and_counted() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    resolver.handle_query(
        &a_query("case-check.example.com", 1),
        &client(1),
        now,
        &mut out,
    );
    let sent = transmits(&mut resolver);
    assert_ne!(
        qname(&sent[0].1),
        "case-check.example.com.",
        "this seed sends some upper case"
    );
    // Right ID, socket, source and name, wrong letter case.
    let forged = a_answer(&lower_question(sent[0].1.clone()), 1, 86_400);
    resolver.handle_upstream_reply(on_socket(sent[0].0.to, sent[0].0.attempt), &forged, now);
    assert!(replies(&mut resolver, now).is_empty());
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_case, 1);
    assert_eq!(stats.upstream_mismatched, 1);
    assert_eq!(
        stats.upstream_case_fallbacks, 0,
        "one mismatch is not enough"
    );
    let up = resolver.upstreams().get(0).unwrap();
    assert_eq!(up.stats().case_mismatches, 1);
    // The real reply, in the case sent, is still accepted.
    answer(&mut resolver, &sent[0], now);
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(answer_ttl(&got[0].1), 60, "the forged TTL was not cached");
    // The client sees its own case.
    assert_eq!(qname(&got[0].1), "case-check.example.com.");
}

fn answer_ttl(reply: &[u8]) -> u32 {
    Message::parse(reply)
        .unwrap()
        .answers()
        .next()
        .unwrap()
        .ttl()
}

/// The upstream answers `sent` in lower case (right in everything else).
fn answer_lowered(resolver: &mut Resolver, sent: &(Transmit, Vec<u8>), now: Timestamp) {
    let lowered = a_answer(&lower_question(sent.1.clone()), 1, 60);
    resolver.handle_upstream_reply(on_socket(sent.0.to, sent.0.attempt), &lowered, now);
}

#[test]
fn an_upstream_that_does_not_echo_the_case_falls_back_only_after_timeouts() {
    let mut resolver = resolver(&[UPSTREAM_A], 3);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(100);
    resolver.handle_query(&a_query("lower.example.com", 1), &client(1), t0, &mut out);
    let mut sent = transmits(&mut resolver);
    let mut now = t0;
    // Each attempt gets only a lower-case reply, and times out: a strike.
    for strike in 1..=CASE_STRIKES_FOR_FALLBACK {
        assert_eq!(sent.len(), 1);
        assert_ne!(qname(&sent[0].1), "lower.example.com.", "0x20 still on");
        answer_lowered(&mut resolver, &sent[0], now);
        assert!(replies(&mut resolver, now).is_empty());
        let up = resolver.upstreams().get(0).unwrap();
        assert_eq!(up.stats().case_strikes, u64::from(strike - 1));
        assert_eq!(
            resolver.stats().upstream_case_fallbacks,
            0,
            "a wrong-case reply alone strikes nothing"
        );
        now = resolver.next_deadline().unwrap();
        resolver.handle_timeouts(now);
        sent = transmits(&mut resolver);
    }
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_case, 3);
    assert_eq!(stats.upstream_case_fallbacks, 1);
    assert_eq!(stats.upstream_timeouts, 3);
    let up = resolver.upstreams().get(0).unwrap();
    assert_eq!(up.stats().case_fallbacks, 1);
    assert_eq!(up.stats().case_mismatches, 3);
    assert_eq!(up.stats().case_strikes, 3);
    assert_eq!(up.stats().timeouts, 0, "it answered: no backoff");
    assert_eq!(
        up.case_fallback_until_ms(),
        now.as_millis() + CASE_FALLBACK_MS
    );
    assert!(!up.echoes_case(now.as_millis()));
    // At the third timeout the query was asked again at once, in lower
    // case, without using up an attempt (all 3 are used); its lower-case
    // answer is accepted.
    assert_eq!(sent.len(), 1);
    assert_eq!(qname(&sent[0].1), "lower.example.com.");
    answer(&mut resolver, &sent[0], now);
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::NOERROR);
    assert_eq!(Message::parse(&got[0].1).unwrap().id(), 1);
    // Meanwhile new queries go out in lower case...
    let t1 = now.add_secs(60);
    resolver.handle_query(
        &a_query("meanwhile.example.com", 9),
        &client(9),
        t1,
        &mut out,
    );
    let sent = transmits(&mut resolver);
    assert_eq!(qname(&sent[0].1), "meanwhile.example.com.");
    // ... and after the fallback period 0x20 is tried again.
    let t2 = now.add_millis(CASE_FALLBACK_MS);
    resolver.handle_query(
        &a_query("again.example.com.with.many.letters", 10),
        &client(10),
        t2,
        &mut out,
    );
    let sent = transmits(&mut resolver);
    assert_ne!(qname(&sent[0].1), "again.example.com.with.many.letters.");
}

#[test]
fn wrong_case_replies_followed_by_the_real_one_never_strike() {
    // What a forger who guessed ID and port can do: send wrong-case
    // replies (many) before the genuine one. It never causes a fallback.
    let mut resolver = resolver(&[UPSTREAM_A], 3);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(100);
    for i in 0..20u16 {
        let name = format!("flooded{i}.example.com");
        resolver.handle_query(&a_query(&name, i), &client(i), now, &mut out);
        let sent = transmits(&mut resolver);
        for _ in 0..10 {
            answer_lowered(&mut resolver, &sent[0], now);
        }
        answer(&mut resolver, &sent[0], now);
        assert_eq!(replies(&mut resolver, now).len(), 1, "{name}");
    }
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_case, 200);
    assert_eq!(stats.upstream_case_fallbacks, 0);
    let up = resolver.upstreams().get(0).unwrap();
    assert_eq!(up.stats().case_strikes, 0);
    assert!(up.echoes_case(now.as_millis()));
}

#[test]
fn a_flooded_socket_makes_a_timeout_no_strike() {
    // A forger who floods the attempt's socket can fill its buffer so the
    // genuine reply is lost, and the one forged reply with the right ID
    // (in lower case) marks the attempt: the flood shows, so the timeout
    // is not held against the upstream.
    let mut resolver = resolver(&[UPSTREAM_A], 3);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(100);
    resolver.handle_query(&a_query("flooded.example.com", 1), &client(1), t0, &mut out);
    let mut sent = transmits(&mut resolver);
    let mut now = t0;
    for _ in 0..CASE_STRIKES_FOR_FALLBACK {
        let (to, socket) = (sent[0].0.to, sent[0].0.attempt);
        for guess in 0..50u16 {
            let mut forged = a_answer(&lower_question(sent[0].1.clone()), 1, 86_400);
            let id = u16::from_be_bytes([forged[0], forged[1]]) ^ (guess + 1);
            forged[..2].copy_from_slice(&id.to_be_bytes());
            resolver.handle_upstream_reply(on_socket(to, socket), &forged, now);
        }
        answer_lowered(&mut resolver, &sent[0], now);
        now = resolver.next_deadline().unwrap();
        resolver.handle_timeouts(now);
        sent = transmits(&mut resolver);
    }
    let stats = resolver.stats();
    assert_eq!(stats.reply_rejected_wrong_id, 150);
    assert_eq!(stats.reply_rejected_wrong_case, 3);
    assert_eq!(stats.upstream_strikes_flooded, 3);
    assert_eq!(stats.upstream_case_fallbacks, 0, "a flood never downgrades");
    let up = resolver.upstreams().get(0).unwrap();
    assert_eq!(up.stats().case_strikes, 0);
    assert!(up.echoes_case(now.as_millis()));
    let failed = replies(&mut resolver, now);
    assert_eq!(
        Message::parse(&failed[0].1).unwrap().rcode(),
        Rcode::SERVFAIL
    );
}

#[test]
fn case_strikes_must_come_in_a_row() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let mut out = [0u8; 1232];
    let mut now = Timestamp::from_secs(100);
    // Two strikes, an echoed reply, two strikes: never three in a row.
    for (i, echoed) in [false, false, true, false, false].into_iter().enumerate() {
        let i = i as u16;
        let name = format!("row{i}.example.com");
        resolver.handle_query(&a_query(&name, i), &client(i), now, &mut out);
        let sent = transmits(&mut resolver);
        if echoed {
            answer(&mut resolver, &sent[0], now);
            assert_eq!(replies(&mut resolver, now).len(), 1);
            continue;
        }
        answer_lowered(&mut resolver, &sent[0], now);
        now = resolver.next_deadline().unwrap();
        resolver.handle_timeouts(now);
        let failed = replies(&mut resolver, now);
        assert_eq!(
            Message::parse(&failed[0].1).unwrap().rcode(),
            Rcode::SERVFAIL
        );
    }
    let up = resolver.upstreams().get(0).unwrap();
    assert_eq!(up.stats().case_strikes, 4);
    assert_eq!(up.stats().case_fallbacks, 0);
    assert!(up.echoes_case(now.as_millis()));
}

#[test]
fn a_reply_on_another_attempts_socket_is_rejected() {
    let mut resolver = resolver(&[UPSTREAM_A], 1);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    resolver.handle_query(&a_query("one.example", 1), &client(1), now, &mut out);
    resolver.handle_query(&a_query("two.example", 2), &client(2), now, &mut out);
    let sent = transmits(&mut resolver);
    assert_eq!(sent.len(), 2);
    let (one, two) = (&sent[0], &sent[1]);
    let reply_to_one = a_answer(&one.1, 1, 60);
    resolver.handle_upstream_reply(on_socket(one.0.to, two.0.attempt), &reply_to_one, now);
    assert!(replies(&mut resolver, now).is_empty());
    assert_eq!(resolver.stats().reply_rejected_wrong_socket, 1);
    assert_eq!(resolver.stats().upstream_mismatched, 1);
    resolver.handle_upstream_reply(on_socket(one.0.to, one.0.attempt), &reply_to_one, now);
    assert_eq!(replies(&mut resolver, now).len(), 1);
}

#[test]
fn upstream_ids_are_spread_and_not_sequential() {
    let config = ResolverConfig {
        max_inflight: 10_000,
        ..config(&[UPSTREAM_A])
    };
    let mut resolver = Resolver::new(config.clone()).unwrap();
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    let count = 4_000u16;
    let mut ids = Vec::new();
    for i in 0..count {
        resolver.handle_query(
            &a_query(&format!("n{i}.example"), i),
            &client(i),
            now,
            &mut out,
        );
        let sent = transmits(&mut resolver);
        ids.push(Message::parse(&sent[0].1).unwrap().id());
    }
    let distinct: HashSet<_> = ids.iter().collect();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "no two live attempts share an ID"
    );
    let sequential = ids
        .windows(2)
        .filter(|pair| pair[1].wrapping_sub(pair[0]) == 1)
        .count();
    assert!(
        sequential < 5,
        "{sequential} IDs followed their predecessor"
    );
    let mean = ids.iter().map(|&id| f64::from(id)).sum::<f64>() / f64::from(count);
    assert!((30_000.0..35_500.0).contains(&mean), "mean {mean}");
    let mut high_bytes: HashMap<u8, usize> = HashMap::new();
    for id in &ids {
        *high_bytes.entry((id >> 8) as u8).or_default() += 1;
    }
    assert!(high_bytes.len() > 240, "{} high bytes", high_bytes.len());
    assert!(
        high_bytes.values().all(|&n| n < 50),
        "no high byte dominates"
    );
    // Another resolver (another core) draws another sequence.
    let mut other = Resolver::new(config).unwrap();
    let mut others = Vec::new();
    for i in 0..8u16 {
        other.handle_query(
            &a_query(&format!("n{i}.example"), i),
            &client(i),
            now,
            &mut out,
        );
        others.push(Message::parse(&transmits(&mut other)[0].1).unwrap().id());
    }
    assert_ne!(others, ids[..8], "not a shared or fixed seed");
}

#[test]
fn every_attempt_handed_out_is_retired_exactly_once() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B], 3);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(10);
    let mut handed_out = Vec::new();
    let mut retired = Vec::new();
    let mut step = |resolver: &mut Resolver| {
        let sent = transmits(resolver);
        handed_out.extend(sent.iter().map(|(t, _)| t.attempt));
        retired.extend(all_retired(resolver));
        sent
    };
    // Answered at once.
    resolver.handle_query(&a_query("quick.example", 1), &client(1), t0, &mut out);
    let quick = step(&mut resolver);
    answer(&mut resolver, &quick[0], t0);
    // Truncated, then answered over TCP.
    resolver.handle_query(&a_query("big.example", 2), &client(2), t0, &mut out);
    let big = step(&mut resolver);
    let mut truncated = a_answer(&big[0].1, 0, 60);
    truncated[2] |= 0x02;
    resolver.handle_upstream_reply(on_socket(big[0].0.to, big[0].0.attempt), &truncated, t0);
    let big_tcp = step(&mut resolver);
    assert_eq!(big_tcp.len(), 1);
    resolver.handle_upstream_reply(
        common::src(big_tcp[0].0.to, big_tcp[0].0.transport),
        &a_answer(&big_tcp[0].1, 1, 60),
        t0,
    );
    // An error, then an answer from the next upstream.
    resolver.handle_query(&a_query("error.example", 3), &client(3), t0, &mut out);
    let error = step(&mut resolver);
    let refused = with_rcode(a_answer(&error[0].1, 0, 0), Rcode::REFUSED);
    resolver.handle_upstream_reply(on_socket(error[0].0.to, error[0].0.attempt), &refused, t0);
    let next = step(&mut resolver);
    answer(&mut resolver, &next[0], t0);
    // Never answered: three attempts time out.
    resolver.handle_query(&a_query("dead.example", 4), &client(4), t0, &mut out);
    step(&mut resolver);
    let mut now = t0;
    while let Some(deadline) = resolver.next_deadline() {
        now = deadline;
        resolver.handle_timeouts(now);
        step(&mut resolver);
    }
    // A late reply after its query ended matches nothing.
    answer(&mut resolver, &quick[0], now);
    assert_eq!(resolver.stats().reply_rejected_wrong_id, 1);
    step(&mut resolver);
    assert_eq!(resolver.inflight(), 0);
    assert_eq!(handed_out.len(), 1 + 2 + 2 + 3);
    let mut counts: HashMap<AttemptId, usize> = HashMap::new();
    for id in &retired {
        *counts.entry(*id).or_default() += 1;
    }
    for id in &handed_out {
        assert_eq!(counts.get(id), Some(&1), "{id:?} retired exactly once");
    }
    assert_eq!(retired.len(), handed_out.len(), "nothing else retired");
}

#[test]
fn attempts_outlive_a_reload_and_are_retired_once() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B], 2);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(10);
    resolver.handle_query(&a_query("reload.example", 1), &client(1), t0, &mut out);
    let at_a = transmits(&mut resolver);
    assert_eq!(at_a[0].0.to, addr(UPSTREAM_A));
    // The first attempt times out; the second goes to B.
    let t1 = resolver.next_deadline().unwrap();
    resolver.handle_timeouts(t1);
    let at_b = transmits(&mut resolver);
    assert_eq!(at_b[0].0.to, addr(UPSTREAM_B));
    // A reload drops A: its late reply no longer matches anything.
    let new = ResolverConfig {
        attempts: 2,
        ..config(&[UPSTREAM_B])
    };
    resolver.reconfigure(new, t1).unwrap();
    answer(&mut resolver, &at_a[0], t1);
    assert_eq!(resolver.stats().reply_rejected_wrong_source, 1);
    assert!(replies(&mut resolver, t1).is_empty());
    // B, now at another index, still answers its attempt.
    answer(&mut resolver, &at_b[0], t1);
    assert_eq!(replies(&mut resolver, t1).len(), 1);
    let mut retired = all_retired(&mut resolver);
    retired.sort_by_key(|id| id.0);
    let mut sent = vec![at_a[0].0.attempt, at_b[0].0.attempt];
    sent.sort_by_key(|id| id.0);
    assert_eq!(retired, sent);
    assert!(resolver.poll_retired().is_none());
}

#[test]
fn after_a_last_refused_an_earlier_attempt_may_still_answer() {
    for late_answer in [true, false] {
        let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B], 2);
        let mut out = [0u8; 1232];
        let t0 = Timestamp::from_secs(10);
        resolver.handle_query(&a_query("mixed.example", 1), &client(1), t0, &mut out);
        let at_a = transmits(&mut resolver);
        let t1 = resolver.next_deadline().unwrap();
        resolver.handle_timeouts(t1);
        let at_b = transmits(&mut resolver);
        assert_eq!(at_b[0].0.to, addr(UPSTREAM_B));
        // B, the last attempt, refuses; A's attempt is still live.
        let t2 = t1.add_millis(50);
        let refused = with_rcode(a_answer(&at_b[0].1, 0, 0), Rcode::REFUSED);
        resolver.handle_upstream_reply(on_socket(at_b[0].0.to, at_b[0].0.attempt), &refused, t2);
        assert!(replies(&mut resolver, t2).is_empty(), "waits for A");
        if late_answer {
            let t3 = t0.add_millis(1_200);
            answer(&mut resolver, &at_a[0], t3);
            let got = replies(&mut resolver, t3);
            assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::NOERROR);
            assert_eq!(resolver.stats().reply_late_accepted, 1);
        } else {
            let t3 = resolver.next_deadline().unwrap();
            assert_eq!(t3, t1.add_millis(800), "B's own deadline");
            resolver.handle_timeouts(t3);
            let got = replies(&mut resolver, t3);
            assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::SERVFAIL);
            assert_eq!(ede_codes(&got[0].1), [23]);
            assert_eq!(resolver.stats().upstream_error_failures, 1);
            assert_eq!(resolver.stats().upstream_timeouts, 1, "only A's");
        }
        assert_eq!(resolver.inflight(), 0);
        assert_eq!(all_retired(&mut resolver).len(), 2);
    }
}

/// The server's timer loop sleeps until `next_deadline` and then calls
/// `handle_timeouts`; it relies on that leaving no deadline due, or it
/// would spin. Many queries, attempts ending in timeouts, retries and
/// failures, with the clock stepped exactly onto each deadline.
#[test]
fn handling_the_timeouts_leaves_no_deadline_due() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B], 3);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(10);
    for id in 0..50u16 {
        let name = format!("silent-{id}.example");
        let at = t0.add_millis(u64::from(id) * 7);
        resolver.handle_query(&a_query(&name, id), &client(id), at, &mut out);
        transmits(&mut resolver);
    }
    let mut steps = 0;
    while let Some(deadline) = resolver.next_deadline() {
        resolver.handle_timeouts(deadline);
        transmits(&mut resolver);
        replies(&mut resolver, deadline);
        all_retired(&mut resolver);
        let next = resolver.next_deadline();
        assert!(
            next.is_none_or(|next| next > deadline),
            "{next:?} still due at {deadline:?}"
        );
        steps += 1;
        assert!(steps < 1_000, "deadlines never ran out");
    }
    assert!(steps >= 3, "attempts were retried ({steps} steps)");
}
