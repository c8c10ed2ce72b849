//! Serve-stale (RFC 8767), prefetch, metrics counters and operator actions
//! (flush, hot reload), driven through the engine's sans-IO API with a
//! fake clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::sync::Arc;

use heimdall_cache::{CachePolicy, STALE_TTL, Timestamp};
use heimdall_policy::{BlocklistBuilder, ListFormat};
use heimdall_resolver::{
    ClientId, PolicyConfig, QueryOutcome, Resolver, ResolverConfig, ResolverError, Transport,
};
use heimdall_testkit::messages::{a_answer, name, nxdomain_answer, query};
use heimdall_wire::{Message, Rcode, RecordType};
use heimdall_zone::{LocalData, parse_record_line};

use common::{
    UDP, UPSTREAM_A, UPSTREAM_B, UPSTREAM_C, a_query, addr, answer_ttls, client, config, ede_codes,
    expect_reply, replies, src, transmits,
};

/// A resolver with serve-stale on: a 60-second window, a 500 ms client
/// timer, the default 30 s failure recheck.
fn stale_resolver(attempts: u32) -> Resolver {
    let config = ResolverConfig {
        attempts,
        cache_policy: CachePolicy {
            stale_window: 60,
            ..CachePolicy::default()
        },
        stale_client_timeout_ms: 500,
        ..config(&[UPSTREAM_A])
    };
    Resolver::with_seed(config, 7).unwrap()
}

/// Resolve `qname` through the engine with an answer of TTL `ttl`.
fn warm(resolver: &mut Resolver, qname: &str, ttl: u32, now: Timestamp) {
    let mut out = [0u8; 1232];
    let outcome = resolver.handle_query(&a_query(qname, 1), &client(1), now, &mut out);
    assert_eq!(outcome, QueryOutcome::Pending);
    let sent = transmits(resolver);
    assert_eq!(sent.len(), 1);
    resolver.handle_upstream_reply(src(sent[0].0.to, UDP), &a_answer(&sent[0].1, 2, ttl), now);
    assert_eq!(replies(resolver, now).len(), 1);
}

/// `answer` with its rcode replaced.
fn with_rcode(mut answer: Vec<u8>, rcode: Rcode) -> Vec<u8> {
    answer[3] = (answer[3] & 0xf0) | (rcode.0 as u8 & 0x0f);
    answer
}

// ---------------------------------------------------------------------------
// Serve-stale
// ---------------------------------------------------------------------------

#[test]
fn an_upstream_error_is_answered_stale_and_not_cached_over_the_entry() {
    for rcode in [Rcode::SERVFAIL, Rcode::REFUSED] {
        let mut resolver = stale_resolver(1);
        let t0 = Timestamp::from_secs(100);
        warm(&mut resolver, "stale.example", 10, t0);
        let mut out = [0u8; 1232];
        let t1 = t0.add_secs(15);
        let outcome = resolver.handle_query(&a_query("stale.example", 2), &client(2), t1, &mut out);
        assert_eq!(outcome, QueryOutcome::Pending);
        let sent = transmits(&mut resolver);
        let error = with_rcode(a_answer(&sent[0].1, 0, 0), rcode);
        let t2 = t1.add_millis(100);
        resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &error, t2);
        let got = replies(&mut resolver, t2);
        assert_eq!(got.len(), 1, "{rcode:?}");
        let reply = Message::parse(&got[0].1).unwrap();
        assert_eq!(
            reply.rcode(),
            Rcode::NOERROR,
            "{rcode:?}: stale, not the error"
        );
        assert_eq!(reply.id(), 2);
        assert_eq!(answer_ttls(&got[0].1), [STALE_TTL, STALE_TTL]);
        assert_eq!(ede_codes(&got[0].1), [3]);
        assert_eq!(resolver.stats().stale_served, 1);
        assert_eq!(resolver.stats().servfail, 0);

        // The stale entry survived (no failure entry over it), and until
        // the recheck timer (30 s) runs out it is served at once.
        let t3 = t2.add_secs(29);
        let len = expect_reply(resolver.handle_query(
            &a_query("stale.example", 3),
            &client(3),
            t3,
            &mut out,
        ));
        assert!(transmits(&mut resolver).is_empty(), "upstream not asked");
        assert_eq!(answer_ttls(&out[..len]), [STALE_TTL, STALE_TTL]);
        assert_eq!(ede_codes(&out[..len]), [3]);
        assert_eq!(resolver.stats().stale_served, 2);
        assert_eq!(resolver.stats().responses_with_rcode(0), 3);

        // Then one query goes upstream again, and its answer refreshes.
        let t4 = t2.add_secs(30);
        let outcome = resolver.handle_query(&a_query("stale.example", 4), &client(4), t4, &mut out);
        assert_eq!(outcome, QueryOutcome::Pending);
        let sent = transmits(&mut resolver);
        assert_eq!(sent.len(), 1);
        resolver.handle_upstream_reply(
            src(addr(UPSTREAM_A), UDP),
            &a_answer(&sent[0].1, 1, 120),
            t4,
        );
        let got = replies(&mut resolver, t4);
        assert_eq!(answer_ttls(&got[0].1), [120]);
        assert!(ede_codes(&got[0].1).is_empty());
        let len = expect_reply(resolver.handle_query(
            &a_query("stale.example", 5),
            &client(5),
            t4.add_secs(20),
            &mut out,
        ));
        assert_eq!(answer_ttls(&out[..len]), [100]);
    }
}

#[test]
fn timeouts_of_every_attempt_are_answered_stale() {
    // A long client timer: the attempts run out first.
    let config = ResolverConfig {
        attempts: 2,
        cache_policy: CachePolicy {
            stale_window: 60,
            ..CachePolicy::default()
        },
        stale_client_timeout_ms: 10_000,
        ..config(&[UPSTREAM_A, UPSTREAM_B])
    };
    let mut resolver = Resolver::with_seed(config, 7).unwrap();
    let t0 = Timestamp::from_secs(100);
    warm(&mut resolver, "stale.example", 10, t0);
    let mut out = [0u8; 1232];
    let t1 = t0.add_secs(15);
    // Without EDNS: the stale answer has no OPT, so no EDE.
    let plain = query("stale.example", RecordType::A, 2, None);
    assert_eq!(
        resolver.handle_query(&plain, &client(2), t1, &mut out),
        QueryOutcome::Pending
    );
    for _ in 0..2 {
        assert_eq!(transmits(&mut resolver).len(), 1);
        let deadline = resolver.next_deadline().unwrap();
        resolver.handle_timeouts(deadline);
    }
    let done = t1.add_millis(1_600);
    let got = replies(&mut resolver, done);
    assert_eq!(got.len(), 1);
    let reply = Message::parse(&got[0].1).unwrap();
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert!(reply.opt().is_none());
    assert_eq!(answer_ttls(&got[0].1), [STALE_TTL, STALE_TTL]);
    assert_eq!(resolver.stats().upstream_timeouts, 2);
    assert_eq!(resolver.next_deadline(), None);
}

#[test]
fn a_slow_upstream_gets_stale_at_the_client_timer_and_still_refreshes() {
    let mut resolver = stale_resolver(3);
    let t0 = Timestamp::from_secs(100);
    warm(&mut resolver, "slow.example", 10, t0);
    let mut out = [0u8; 1232];
    let t1 = t0.add_secs(20);
    for id in [2, 3] {
        let outcome =
            resolver.handle_query(&a_query("slow.example", id), &client(id), t1, &mut out);
        assert_eq!(outcome, QueryOutcome::Pending);
    }
    let sent = transmits(&mut resolver);
    assert_eq!(sent.len(), 1);
    // The client timer (500 ms) falls before the attempt's (800 ms).
    let timer = resolver.next_deadline().unwrap();
    assert_eq!(timer, t1.add_millis(500));
    resolver.handle_timeouts(timer);
    let got = replies(&mut resolver, timer);
    assert_eq!(got.len(), 2, "both waiters are answered stale");
    for (_, bytes) in &got {
        assert_eq!(answer_ttls(bytes), [STALE_TTL, STALE_TTL]);
        assert_eq!(ede_codes(bytes), [3]);
    }
    assert_eq!(resolver.stats().stale_served, 2);
    // The query carries on: its attempt deadline is next.
    assert_eq!(resolver.next_deadline(), Some(t1.add_millis(800)));
    assert_eq!(resolver.inflight(), 1);

    // A query that arrives now is answered stale at once.
    let t2 = t1.add_millis(600);
    let len =
        expect_reply(resolver.handle_query(&a_query("slow.example", 4), &client(4), t2, &mut out));
    assert_eq!(answer_ttls(&out[..len]), [STALE_TTL, STALE_TTL]);
    assert!(transmits(&mut resolver).is_empty());

    // The late answer refreshes the cache; nobody is left to answer.
    let t3 = t1.add_millis(700);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 1, 300),
        t3,
    );
    assert!(replies(&mut resolver, t3).is_empty());
    assert_eq!(resolver.inflight(), 0);
    assert!(resolver.poll_hint().is_some(), "the refresh is hinted");
    let len = expect_reply(resolver.handle_query(
        &a_query("slow.example", 5),
        &client(5),
        t3.add_secs(1),
        &mut out,
    ));
    assert_eq!(answer_ttls(&out[..len]), [299]);
    assert!(ede_codes(&out[..len]).is_empty());
}

#[test]
fn a_client_timer_of_zero_answers_stale_at_once_and_refreshes_in_the_background() {
    let config = ResolverConfig {
        cache_policy: CachePolicy {
            stale_window: 60,
            ..CachePolicy::default()
        },
        stale_client_timeout_ms: 0,
        ..config(&[UPSTREAM_A])
    };
    let mut resolver = Resolver::with_seed(config, 7).unwrap();
    let t0 = Timestamp::from_secs(100);
    warm(&mut resolver, "zero.example", 10, t0);
    let mut out = [0u8; 1232];
    let t1 = t0.add_secs(20);
    let len =
        expect_reply(resolver.handle_query(&a_query("zero.example", 2), &client(2), t1, &mut out));
    assert_eq!(answer_ttls(&out[..len]), [STALE_TTL, STALE_TTL]);
    let sent = transmits(&mut resolver);
    assert_eq!(sent.len(), 1, "one background refresh");
    expect_reply(resolver.handle_query(&a_query("zero.example", 3), &client(3), t1, &mut out));
    assert!(transmits(&mut resolver).is_empty(), "still one");
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &a_answer(&sent[0].1, 1, 60), t1);
    assert!(replies(&mut resolver, t1).is_empty());
    let len =
        expect_reply(resolver.handle_query(&a_query("zero.example", 4), &client(4), t1, &mut out));
    assert_eq!(answer_ttls(&out[..len]), [60]);
}

#[test]
fn past_the_stale_window_a_failure_is_servfail_again() {
    let mut resolver = stale_resolver(1);
    let t0 = Timestamp::from_secs(100);
    warm(&mut resolver, "old.example", 10, t0);
    let mut out = [0u8; 1232];
    // 10 s TTL + 60 s window: at 71 s the entry is gone.
    let t1 = t0.add_secs(71);
    assert_eq!(
        resolver.handle_query(&a_query("old.example", 2), &client(2), t1, &mut out),
        QueryOutcome::Pending
    );
    transmits(&mut resolver);
    let deadline = resolver.next_deadline().unwrap();
    assert_eq!(
        deadline,
        t1.add_millis(800),
        "no client timer without stale data"
    );
    resolver.handle_timeouts(deadline);
    let got = replies(&mut resolver, deadline);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(resolver.stats().stale_served, 0);
    assert_eq!(resolver.stats().responses_with_rcode(2), 1);
}

// ---------------------------------------------------------------------------
// Prefetch
// ---------------------------------------------------------------------------

fn hit(resolver: &mut Resolver, qname: &str, id: u16, now: Timestamp) -> Vec<u32> {
    let mut out = [0u8; 1232];
    let len = expect_reply(resolver.handle_query(&a_query(qname, id), &client(id), now, &mut out));
    answer_ttls(&out[..len])
}

#[test]
fn a_prefetch_starts_once_near_expiry_after_enough_hits() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 7).unwrap();
    let t0 = Timestamp::from_secs(100);
    warm(&mut resolver, "hot.example", 100, t0);
    // Two hits early in the entry's life: no prefetch.
    hit(&mut resolver, "hot.example", 2, t0.add_secs(1));
    hit(&mut resolver, "hot.example", 3, t0.add_secs(2));
    assert!(transmits(&mut resolver).is_empty());
    // The third hit with 9 of 100 seconds left: answered from the cache,
    // and one prefetch goes out.
    assert_eq!(
        hit(&mut resolver, "hot.example", 4, t0.add_secs(91)),
        [9, 9]
    );
    let sent = transmits(&mut resolver);
    assert_eq!(sent.len(), 1);
    assert_eq!(resolver.stats().prefetches, 1);
    // More hits while it is out do not start another.
    hit(&mut resolver, "hot.example", 5, t0.add_secs(92));
    assert!(transmits(&mut resolver).is_empty());
    assert_eq!(resolver.stats().prefetches, 1);
    // Its answer refreshes the entry, replies to nobody, and is hinted.
    let t1 = t0.add_secs(93);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 1, 100),
        t1,
    );
    assert!(replies(&mut resolver, t1).is_empty());
    assert!(resolver.poll_hint().is_some());
    let _ = resolver.poll_hint();
    assert_eq!(hit(&mut resolver, "hot.example", 6, t1.add_secs(2)), [98]);
    // The hit count restarted with the new entry.
    assert_eq!(hit(&mut resolver, "hot.example", 7, t1.add_secs(95)), [5]);
    assert!(
        transmits(&mut resolver).is_empty(),
        "only 2 hits on the new entry"
    );
    assert_eq!(hit(&mut resolver, "hot.example", 8, t1.add_secs(96)), [4]);
    assert_eq!(transmits(&mut resolver).len(), 1);
    assert_eq!(resolver.stats().prefetches, 2);
    assert_eq!(resolver.stats().cache_hits, 7);
}

#[test]
fn no_prefetch_before_min_hits_or_when_off() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 7).unwrap();
    let t0 = Timestamp::from_secs(100);
    warm(&mut resolver, "warm.example", 100, t0);
    hit(&mut resolver, "warm.example", 2, t0.add_secs(95));
    hit(&mut resolver, "warm.example", 3, t0.add_secs(96));
    assert!(transmits(&mut resolver).is_empty(), "2 hits < 3");
    hit(&mut resolver, "warm.example", 4, t0.add_secs(97));
    assert_eq!(transmits(&mut resolver).len(), 1, "the third hit");

    let off = ResolverConfig {
        prefetch_threshold_percent: 0,
        ..config(&[UPSTREAM_A])
    };
    let mut resolver = Resolver::with_seed(off, 7).unwrap();
    warm(&mut resolver, "warm.example", 100, t0);
    for (id, secs) in (2..12).zip(90..) {
        hit(&mut resolver, "warm.example", id, t0.add_secs(secs));
    }
    assert!(transmits(&mut resolver).is_empty());
    assert_eq!(resolver.stats().prefetches, 0);

    let bad = ResolverConfig {
        prefetch_threshold_percent: 101,
        ..config(&[UPSTREAM_A])
    };
    assert!(matches!(
        Resolver::with_seed(bad, 7),
        Err(ResolverError::InvalidSetting(_))
    ));
}

#[test]
fn a_failed_prefetch_keeps_the_entry_and_backs_off() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 7).unwrap();
    let t0 = Timestamp::from_secs(100);
    warm(&mut resolver, "flaky.example", 100, t0);
    for (id, secs) in [(2, 1), (3, 2), (4, 91)] {
        hit(&mut resolver, "flaky.example", id, t0.add_secs(secs));
    }
    assert_eq!(transmits(&mut resolver).len(), 1);
    let deadline = resolver.next_deadline().unwrap();
    resolver.handle_timeouts(deadline);
    assert!(replies(&mut resolver, deadline).is_empty());
    // The good entry is still served (no SERVFAIL over it), and no new
    // prefetch goes out until the recheck timer has run.
    assert_eq!(
        hit(&mut resolver, "flaky.example", 5, t0.add_secs(92)),
        [8, 8]
    );
    assert!(transmits(&mut resolver).is_empty());
    assert_eq!(resolver.stats().prefetches, 1);
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

#[test]
fn counters_by_transport_qtype_rcode_and_upstream_latency() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 7).unwrap();
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(1);
    // A miss answered after 20 ms.
    resolver.handle_query(&a_query("m.example", 1), &client(1), t0, &mut out);
    let sent = transmits(&mut resolver);
    let t1 = t0.add_millis(20);
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &a_answer(&sent[0].1, 1, 60), t1);
    assert_eq!(replies(&mut resolver, t1).len(), 1);
    // An NXDOMAIN after 300 ms, asked for AAAA.
    let aaaa = query("n.example", RecordType::AAAA, 2, None);
    resolver.handle_query(&aaaa, &client(2), t1, &mut out);
    let sent = transmits(&mut resolver);
    let t2 = t1.add_millis(300);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &nxdomain_answer(&sent[0].1, 60, 60),
        t2,
    );
    assert_eq!(replies(&mut resolver, t2).len(), 1);
    // A hit over TCP.
    let tcp = ClientId {
        transport: Transport::Tcp(4),
        ..client(3)
    };
    expect_reply(resolver.handle_query(&a_query("m.example", 3), &tcp, t2, &mut out));
    // BADVERS (an extended rcode) and FORMERR.
    let mut v1 = a_query("x.example", 4);
    let version_at = v1.len() - 2 - 4 + 1;
    v1[version_at] = 1;
    expect_reply(resolver.handle_query(&v1, &client(4), t2, &mut out));
    let mut garbage = a_query("x.example", 5);
    garbage.truncate(20);
    expect_reply(resolver.handle_query(&garbage, &client(5), t2, &mut out));
    // A type above 255 (CAA, 257).
    let caa = query("c.example", RecordType(257), 6, None);
    resolver.handle_query(&caa, &client(6), t2, &mut out);

    let stats = resolver.stats();
    assert_eq!(
        (stats.queries, stats.queries_udp, stats.queries_tcp),
        (6, 5, 1)
    );
    assert_eq!(stats.qtypes.get(RecordType::A.0), 3, "x.example counts too");
    assert_eq!(stats.qtypes.get(RecordType::AAAA.0), 1);
    assert_eq!(stats.qtypes.overflow(), 1);
    assert_eq!(stats.qtypes.total(), 5, "the unparseable query has no type");
    assert_eq!(stats.responses_with_rcode(Rcode::NOERROR.0), 2);
    assert_eq!(stats.responses_with_rcode(Rcode::NXDOMAIN.0), 1);
    assert_eq!(stats.responses_with_rcode(Rcode::BADVERS.0), 1);
    assert_eq!(stats.responses_with_rcode(Rcode::FORMERR.0), 1);
    assert_eq!(stats.responses_by_rcode.iter().sum::<u64>(), 5);

    let upstream = resolver.upstreams().get(0).unwrap().stats();
    assert_eq!((upstream.queries, upstream.replies), (3, 2));
    let latency = upstream.latency;
    assert_eq!((latency.count(), latency.sum_us()), (2, 320_000));
    let filled: Vec<_> = latency.buckets().filter(|(_, count)| *count > 0).collect();
    assert_eq!(filled, [(Some(25_000), 1), (Some(500_000), 1)]);
}

// ---------------------------------------------------------------------------
// Operator actions
// ---------------------------------------------------------------------------

#[test]
fn flush_a_subtree_or_everything() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 7).unwrap();
    let t0 = Timestamp::from_secs(1);
    for qname in ["example.com", "www.example.com", "example.net"] {
        warm(&mut resolver, qname, 300, t0);
    }
    assert_eq!(resolver.flush_cache(Some(name("Example.COM").as_wire())), 2);
    assert_eq!(resolver.cache().len(), 1);
    assert_eq!(resolver.flush_cache(Some(b"\x03bad")), 0, "not a name");
    assert_eq!(resolver.flush_cache(None), 1);
    assert!(resolver.cache().is_empty());
}

#[test]
fn reconfigure_purges_newly_blocked_names_and_keeps_the_rest() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A, UPSTREAM_B]), 7).unwrap();
    let t0 = Timestamp::from_secs(1);
    warm(&mut resolver, "ads.example", 300, t0);
    warm(&mut resolver, "keep.example", 300, t0);
    warm(&mut resolver, "printer.lan", 300, t0);
    warm(&mut resolver, "tray.printer.lan", 300, t0);
    let before = resolver.upstreams().get(0).unwrap().stats();
    let before_srtt = resolver.upstreams().get(0).unwrap().srtt_us();
    assert_eq!(before.replies, 4);
    assert!(before_srtt.is_some());
    let mut out = [0u8; 1232];

    // A query outstanding at A across the reload, and one that will be
    // outstanding at B, which the reload removes.
    resolver.handle_query(&a_query("inflight.example", 9), &client(9), t0, &mut out);
    let at_a = transmits(&mut resolver);
    assert_eq!(at_a[0].0.to, addr(UPSTREAM_A));

    // An invalid configuration changes nothing.
    let invalid = ResolverConfig {
        upstreams: Vec::new(),
        ..config(&[])
    };
    assert_eq!(
        resolver.reconfigure(invalid, t0).unwrap_err(),
        ResolverError::NoUpstreams
    );
    assert_eq!(resolver.upstreams().len(), 2);
    assert_eq!(resolver.cache().len(), 4);

    let mut list = BlocklistBuilder::new();
    list.add_list("ads.example\n", ListFormat::Domains);
    let local = LocalData::builder()
        .records([parse_record_line("printer.lan. 300 IN A 192.168.1.5", None, 300).unwrap()])
        .build()
        .unwrap();
    let new = ResolverConfig {
        // A moves to index 1; B goes; C is new.
        policy: PolicyConfig {
            blocklist: Some(Arc::new(list.build())),
            local: Some(Arc::new(local)),
            ..PolicyConfig::default()
        },
        cache_policy: CachePolicy {
            stale_window: 30,
            ..CachePolicy::default()
        },
        ..config(&[UPSTREAM_C, UPSTREAM_A])
    };
    let t1 = t0.add_secs(10);
    let report = resolver.reconfigure(new, t1).unwrap();
    assert_eq!(
        report.purged, 3,
        "ads.example (blocked), printer.lan and tray.printer.lan (at or below local data)"
    );
    assert_eq!(resolver.cache().policy().stale_window, 30);

    // The blocked name is answered as blocked, not from the cache.
    let len =
        expect_reply(resolver.handle_query(&a_query("ads.example", 2), &client(2), t1, &mut out));
    assert_eq!(
        Message::parse(&out[..len]).unwrap().rcode(),
        Rcode::NXDOMAIN
    );
    assert_eq!(resolver.stats().blocked, 1);
    // The local name is answered authoritatively.
    let len =
        expect_reply(resolver.handle_query(&a_query("printer.lan", 3), &client(3), t1, &mut out));
    assert!(Message::parse(&out[..len]).unwrap().flags().authoritative());
    // Other entries survive.
    let len =
        expect_reply(resolver.handle_query(&a_query("keep.example", 4), &client(4), t1, &mut out));
    assert_eq!(answer_ttls(&out[..len]), [290, 290]);

    // Upstream A kept what this core learned about it, at its new index.
    assert_eq!(resolver.upstreams().len(), 2);
    let kept = resolver.upstreams().get(1).unwrap();
    assert_eq!(kept.address(), addr(UPSTREAM_A));
    assert_eq!(kept.stats().replies, before.replies);
    assert_eq!(kept.srtt_us(), before_srtt);
    assert_eq!(resolver.upstreams().get(0).unwrap().stats().queries, 0);

    // The query outstanding at A still completes.
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &a_answer(&at_a[0].1, 1, 60), t1);
    let got = replies(&mut resolver, t1);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().id(), 9);
}

#[test]
fn an_inflight_query_whose_upstream_was_removed_moves_on() {
    let mut resolver = Resolver::with_seed(
        ResolverConfig {
            attempts: 2,
            ..config(&[UPSTREAM_A])
        },
        7,
    )
    .unwrap();
    let t0 = Timestamp::from_secs(1);
    let mut out = [0u8; 1232];
    resolver.handle_query(&a_query("moving.example", 1), &client(1), t0, &mut out);
    let first = transmits(&mut resolver);
    assert_eq!(first[0].0.to, addr(UPSTREAM_A));
    let new = ResolverConfig {
        attempts: 2,
        ..config(&[UPSTREAM_B])
    };
    assert_eq!(resolver.reconfigure(new, t0).unwrap().purged, 0);
    // A's late reply no longer matches.
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&first[0].1, 1, 60),
        t0,
    );
    assert!(replies(&mut resolver, t0).is_empty());
    assert_eq!(resolver.stats().upstream_mismatched, 1);
    // The attempt times out and the next goes to B.
    let deadline = resolver.next_deadline().unwrap();
    resolver.handle_timeouts(deadline);
    let second = transmits(&mut resolver);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].0.to, addr(UPSTREAM_B));
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_B), UDP),
        &a_answer(&second[0].1, 1, 60),
        deadline,
    );
    assert_eq!(replies(&mut resolver, deadline).len(), 1);
}

#[test]
fn an_answer_in_flight_across_a_reload_that_blocks_it_is_not_cached() {
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 7).unwrap();
    let t0 = Timestamp::from_secs(1);
    let mut out = [0u8; 1232];
    resolver.handle_query(&a_query("late.example", 1), &client(1), t0, &mut out);
    let sent = transmits(&mut resolver);
    let mut list = BlocklistBuilder::new();
    list.add_list("late.example\n", ListFormat::Domains);
    let new = ResolverConfig {
        policy: PolicyConfig {
            blocklist: Some(Arc::new(list.build())),
            ..PolicyConfig::default()
        },
        ..config(&[UPSTREAM_A])
    };
    resolver.reconfigure(new, t0).unwrap();
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &a_answer(&sent[0].1, 1, 60), t0);
    assert_eq!(
        replies(&mut resolver, t0).len(),
        1,
        "the waiter still gets it"
    );
    assert!(resolver.cache().is_empty());
    assert!(resolver.poll_hint().is_none());
    let len =
        expect_reply(resolver.handle_query(&a_query("late.example", 2), &client(2), t0, &mut out));
    assert_eq!(
        Message::parse(&out[..len]).unwrap().rcode(),
        Rcode::NXDOMAIN
    );
}

/// docs/TUNING.md sizes the hint mesh from this (cores x (cores - 1) x
/// channel_capacity x (size + 8)); a change to `Hint` must update it.
#[cfg(target_pointer_width = "64")]
#[test]
fn a_hint_is_the_size_the_tuning_guide_uses() {
    assert_eq!(std::mem::size_of::<heimdall_resolver::Hint>(), 288);
}
