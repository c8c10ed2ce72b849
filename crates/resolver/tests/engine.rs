//! The resolver engine driven through its public sans-IO API with a fake
//! clock: no sockets, no sleeping.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use heimdall_cache::Timestamp;
use heimdall_resolver::{ClientId, QueryOutcome, Resolver, ResolverConfig, Transport, Upstream};
use heimdall_testkit::messages::{a_answer, nxdomain_answer, query};
use heimdall_wire::{EdnsOption, Message, Opcode, Rcode, RecordType};

use common::{
    TCP, UDP, UPSTREAM_A, UPSTREAM_B, a_query, addr, answer_ttls, client, config, replies, src,
    transmits,
};

/// Upstreams asked in order with three attempts of 800 ms.
fn resolver(upstreams: &[&str]) -> Resolver {
    let config = ResolverConfig {
        attempts: 3,
        ..config(upstreams)
    };
    Resolver::with_seed(config, 7).unwrap()
}

#[test]
fn miss_then_hit_with_decreasing_ttl() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(100);
    let outcome =
        resolver.handle_query(&a_query("www.Example.com", 1), &client(1000), t0, &mut out);
    assert_eq!(outcome, QueryOutcome::Pending);
    let sent = transmits(&mut resolver);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0.to, addr(UPSTREAM_A));
    let upstream_query = Message::parse(&sent[0].1).unwrap();
    assert!(upstream_query.flags().recursion_desired());
    // The key's name; its letters in a random case (DNS 0x20, issue 14).
    assert_eq!(
        upstream_query
            .question()
            .unwrap()
            .name
            .to_string()
            .to_ascii_lowercase(),
        "www.example.com."
    );
    assert!(upstream_query.opt().is_some());

    let t1 = t0.add_millis(20);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 2, 300),
        t1,
    );
    let got = replies(&mut resolver, t1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, client(1000));
    let reply = Message::parse(&got[0].1).unwrap();
    assert_eq!(reply.id(), 1);
    assert_eq!(
        reply.question().unwrap().name.to_string(),
        "www.Example.com."
    );
    assert!(reply.flags().recursion_available() && reply.flags().recursion_desired());
    assert_eq!(answer_ttls(&got[0].1), [300, 300]);

    // 100 seconds later the same question is a hit with a lower TTL.
    let t2 = t1.add_secs(100);
    let outcome =
        resolver.handle_query(&a_query("WWW.example.COM", 2), &client(1001), t2, &mut out);
    let QueryOutcome::Reply(len) = outcome else {
        panic!("expected a hit, got {outcome:?}")
    };
    assert!(transmits(&mut resolver).is_empty());
    let reply = Message::parse(&out[..len]).unwrap();
    assert_eq!(reply.id(), 2);
    assert_eq!(
        reply.question().unwrap().name.to_string(),
        "WWW.example.COM."
    );
    assert_eq!(answer_ttls(&out[..len]), [200, 200]);
    let stats = resolver.stats();
    assert_eq!(
        (stats.cache_hits, stats.cache_misses, stats.upstream_queries),
        (1, 1, 1)
    );
    // The miss waited 20 ms for its answer; the hit is the server's to
    // time (it has the finer clock).
    let waited = stats.answers_waited_udp;
    assert_eq!((waited.count(), waited.sum_us()), (1, 20_000));
    let bucket = |bound| waited.buckets().find(|&(b, _)| b == Some(bound)).unwrap().1;
    assert_eq!((bucket(10_000), bucket(25_000)), (0, 1));
    assert_eq!(stats.answers_waited_tcp.count(), 0);
}

#[test]
fn concurrent_identical_queries_are_coalesced() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    for index in 0..100u16 {
        let outcome = resolver.handle_query(
            &a_query("same.example", index),
            &client(2000 + index),
            now,
            &mut out,
        );
        assert_eq!(outcome, QueryOutcome::Pending);
    }
    let sent = transmits(&mut resolver);
    assert_eq!(sent.len(), 1, "one upstream query for 100 clients");
    assert_eq!(resolver.stats().coalesced, 99);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 1, 60),
        now,
    );
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 100);
    for (client_id, bytes) in got {
        let reply = Message::parse(&bytes).unwrap();
        assert_eq!(client_id.addr.port(), 2000 + reply.id());
        assert_eq!(reply.answers().count(), 1);
    }
}

#[test]
fn timeouts_fail_over_then_servfail_with_ede() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B]);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(10);
    resolver.handle_query(&a_query("slow.example", 9), &client(3000), t0, &mut out);
    let first = transmits(&mut resolver);
    assert_eq!(first[0].0.to, addr(UPSTREAM_A));
    let deadline = resolver.next_deadline().unwrap();
    assert_eq!(deadline, t0.add_millis(800));
    resolver.handle_timeouts(deadline.add_millis(0));
    let second = transmits(&mut resolver);
    assert_eq!(
        second[0].0.to,
        addr(UPSTREAM_B),
        "the next upstream is tried"
    );
    assert_ne!(
        Message::parse(&first[0].1).unwrap().id(),
        Message::parse(&second[0].1).unwrap().id(),
        "each attempt has its own ID"
    );
    // A late reply to the first attempt would be accepted (issue 14); one
    // from another address than the attempt's upstream is not.
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_B), UDP),
        &a_answer(&first[0].1, 1, 60),
        deadline,
    );
    assert_eq!(resolver.stats().upstream_mismatched, 1);
    let t2 = resolver.next_deadline().unwrap();
    resolver.handle_timeouts(t2);
    let third = transmits(&mut resolver);
    assert_eq!(third.len(), 1);
    let t3 = resolver.next_deadline().unwrap();
    assert_eq!(
        t3,
        t0.add_millis(3 * 800),
        "SERVFAIL within timeout x attempts"
    );
    resolver.handle_timeouts(t3);
    assert!(transmits(&mut resolver).is_empty());
    let got = replies(&mut resolver, t3);
    assert_eq!(got.len(), 1);
    let reply = Message::parse(&got[0].1).unwrap();
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let ede: Vec<EdnsOption<'_>> = reply.opt().unwrap().options().collect();
    assert_eq!(ede[0].code, 15);
    assert_eq!(&ede[0].data[..2], &22u16.to_be_bytes());
    assert_eq!(resolver.stats().upstream_timeouts, 3);
    assert_eq!(resolver.next_deadline(), None);

    // The failure is remembered briefly: the next query is answered at once.
    let outcome = resolver.handle_query(&a_query("slow.example", 10), &client(3001), t3, &mut out);
    let QueryOutcome::Reply(len) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        Message::parse(&out[..len]).unwrap().rcode(),
        Rcode::SERVFAIL
    );
    assert!(transmits(&mut resolver).is_empty());
    // After the failure TTL, upstreams are asked again.
    let later = t3.add_secs(6);
    assert_eq!(
        resolver.handle_query(&a_query("slow.example", 11), &client(3002), later, &mut out),
        QueryOutcome::Pending
    );
}

#[test]
fn a_dead_first_upstream_is_skipped_after_it_fails() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B]);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(1);
    resolver.handle_query(&a_query("one.example", 1), &client(1), t0, &mut out);
    transmits(&mut resolver);
    let deadline = resolver.next_deadline().unwrap();
    resolver.handle_timeouts(deadline);
    let retry = transmits(&mut resolver);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_B), UDP),
        &a_answer(&retry[0].1, 1, 60),
        deadline,
    );
    assert_eq!(replies(&mut resolver, deadline).len(), 1);
    // The next miss goes straight to the healthy upstream.
    resolver.handle_query(&a_query("two.example", 2), &client(2), deadline, &mut out);
    let sent = transmits(&mut resolver);
    assert_eq!(sent[0].0.to, addr(UPSTREAM_B));
}

#[test]
fn spoofed_replies_are_ignored_and_the_real_one_gets_through() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(5);
    resolver.handle_query(&a_query("target.example", 3), &client(4000), now, &mut out);
    let sent = transmits(&mut resolver);
    let real = a_answer(&sent[0].1, 1, 60);

    let mut wrong_id = real.clone();
    wrong_id[0] ^= 0xff;
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &wrong_id, now);
    resolver.handle_upstream_reply(src(addr("127.0.0.1:9999"), UDP), &real, now);
    let other_question = a_answer(
        &a_query("other.example", Message::parse(&sent[0].1).unwrap().id()),
        1,
        60,
    );
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &other_question, now);
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), b"\x00\x01garbage", now);
    assert!(replies(&mut resolver, now).is_empty());
    assert_eq!(resolver.stats().upstream_mismatched, 3);
    assert_eq!(resolver.stats().upstream_malformed, 1);

    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &real, now);
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().answers().count(), 1);
}

#[test]
fn truncated_upstream_reply_is_retried_over_tcp_to_the_same_upstream() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(5);
    resolver.handle_query(&a_query("big.example", 3), &client(4000), now, &mut out);
    let sent = transmits(&mut resolver);
    assert_eq!(sent[0].0.transport, UDP);
    let mut truncated = a_answer(&sent[0].1, 0, 60);
    truncated[2] |= 0x02;
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &truncated, now);
    assert_eq!(resolver.stats().upstream_truncated, 1);
    let retry = transmits(&mut resolver);
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].0.to, addr(UPSTREAM_A));
    assert_eq!(retry[0].0.transport, TCP);
    assert_eq!(resolver.stats().upstream_tcp_queries, 1);
    // A fresh ID: a late UDP reply to the first attempt is refused.
    let old_id = u16::from_be_bytes([sent[0].1[0], sent[0].1[1]]);
    let new_id = u16::from_be_bytes([retry[0].1[0], retry[0].1[1]]);
    assert_ne!(old_id, new_id);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 0, 60),
        now,
    );
    assert_eq!(resolver.stats().upstream_mismatched, 1);
    // The full answer over TCP completes the query.
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), TCP),
        &a_answer(&retry[0].1, 1, 60),
        now,
    );
    let got = replies(&mut resolver, now);
    assert_eq!(got.len(), 1);
    assert_eq!(Message::parse(&got[0].1).unwrap().answers().count(), 1);
    assert!(!Message::parse(&got[0].1).unwrap().flags().truncated());
}

#[test]
fn a_reply_over_another_transport_than_its_query_is_refused() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(5);
    resolver.handle_query(&a_query("big.example", 3), &client(4000), now, &mut out);
    let sent = transmits(&mut resolver);
    assert_eq!(sent[0].0.transport, UDP);
    // The UDP query's answer arriving on a TCP connection.
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), TCP),
        &a_answer(&sent[0].1, 1, 60),
        now,
    );
    assert_eq!(resolver.stats().upstream_mismatched, 1);
    let mut truncated = a_answer(&sent[0].1, 0, 60);
    truncated[2] |= 0x02;
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &truncated, now);
    let retry = transmits(&mut resolver);
    assert_eq!(retry[0].0.transport, TCP);
    // The TCP query's answer arriving on a UDP socket.
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&retry[0].1, 1, 60),
        now,
    );
    assert_eq!(resolver.stats().upstream_mismatched, 2);
    assert!(replies(&mut resolver, now).is_empty());
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), TCP),
        &a_answer(&retry[0].1, 1, 60),
        now,
    );
    assert_eq!(replies(&mut resolver, now).len(), 1);
    assert_eq!(resolver.stats().upstream_mismatched, 2);
}

#[test]
fn a_tcp_retry_that_times_out_fails_over_over_udp() {
    let mut resolver = resolver(&[UPSTREAM_A, UPSTREAM_B]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(5);
    resolver.handle_query(&a_query("big.example", 3), &client(4000), now, &mut out);
    let sent = transmits(&mut resolver);
    let mut truncated = a_answer(&sent[0].1, 0, 60);
    truncated[2] |= 0x02;
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), UDP), &truncated, now);
    let retry = transmits(&mut resolver);
    assert_eq!(retry[0].0.transport, TCP);
    let later = Timestamp::from_secs(6);
    resolver.handle_timeouts(later);
    let next = transmits(&mut resolver);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].0.to, addr(UPSTREAM_B));
    assert_eq!(next[0].0.transport, UDP);
    // TC over TCP is not retried over TCP again.
    resolver.handle_query(&a_query("other.example", 4), &client(4001), later, &mut out);
    let sent = transmits(&mut resolver);
    let mut truncated = a_answer(&sent[0].1, 0, 60);
    truncated[2] |= 0x02;
    let to = sent[0].0.to;
    resolver.handle_upstream_reply(src(to, UDP), &truncated, later);
    let retry = transmits(&mut resolver);
    assert_eq!(retry[0].0.transport, TCP);
    let mut truncated = a_answer(&retry[0].1, 0, 60);
    truncated[2] |= 0x02;
    resolver.handle_upstream_reply(src(to, TCP), &truncated, later);
    let moved = transmits(&mut resolver);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].0.transport, UDP);
}

#[test]
fn tcp_only_upstreams_are_asked_over_tcp_from_the_start() {
    let config = ResolverConfig {
        upstreams: vec![
            Upstream::new(addr(UPSTREAM_A), TCP),
            Upstream::udp(addr(UPSTREAM_B)),
        ],
        attempts: 3,
        ..config(&[UPSTREAM_A, UPSTREAM_B])
    };
    let mut resolver = Resolver::with_seed(config, 7).unwrap();
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(5);
    resolver.handle_query(&a_query("tcp.example", 3), &client(4000), now, &mut out);
    let sent = transmits(&mut resolver);
    assert_eq!(sent[0].0.to, addr(UPSTREAM_A));
    assert_eq!(sent[0].0.transport, TCP);
    // On timeout the next (UDP) upstream is asked over UDP.
    resolver.handle_timeouts(Timestamp::from_secs(6));
    let next = transmits(&mut resolver);
    assert_eq!(next[0].0.to, addr(UPSTREAM_B));
    assert_eq!(next[0].0.transport, UDP);
    assert_eq!(resolver.stats().upstream_tcp_queries, 1);
}

#[test]
fn negative_answers_are_cached_for_the_soa_ttl() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(50);
    resolver.handle_query(&a_query("missing.example", 1), &client(1), t0, &mut out);
    let sent = transmits(&mut resolver);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &nxdomain_answer(&sent[0].1, 3600, 30),
        t0,
    );
    let got = replies(&mut resolver, t0);
    assert_eq!(Message::parse(&got[0].1).unwrap().rcode(), Rcode::NXDOMAIN);
    // min(SOA TTL 3600, MINIMUM 30) = 30 seconds.
    let hit = resolver.handle_query(
        &a_query("missing.example", 2),
        &client(1),
        t0.add_secs(29),
        &mut out,
    );
    let QueryOutcome::Reply(len) = hit else {
        panic!("{hit:?}")
    };
    let reply = Message::parse(&out[..len]).unwrap();
    assert_eq!(reply.rcode(), Rcode::NXDOMAIN);
    assert_eq!(reply.authorities().next().unwrap().ttl(), 1);
    let expired = resolver.handle_query(
        &a_query("missing.example", 3),
        &client(1),
        t0.add_secs(30),
        &mut out,
    );
    assert_eq!(expired, QueryOutcome::Pending);
}

#[test]
fn udp_size_limits_and_truncation() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 4096];
    let now = Timestamp::from_secs(1);
    resolver.handle_query(&a_query("many.example", 1), &client(1), now, &mut out);
    let sent = transmits(&mut resolver);
    // 60 A records: 12 + 17 + 60 * 16 bytes, well over 512.
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 60, 60),
        now,
    );
    replies(&mut resolver, now);
    let plain = query("many.example", RecordType::A, 5, None);
    let QueryOutcome::Reply(len) = resolver.handle_query(&plain, &client(2), now, &mut out) else {
        panic!()
    };
    assert!(len <= 512);
    let reply = Message::parse(&out[..len]).unwrap();
    assert!(reply.flags().truncated());
    assert!(reply.opt().is_none());
    let QueryOutcome::Reply(len) =
        resolver.handle_query(&a_query("many.example", 6), &client(3), now, &mut out)
    else {
        panic!()
    };
    assert!(len > 512 && len <= 1232, "{len}");
    let reply = Message::parse(&out[..len]).unwrap();
    assert!(!reply.flags().truncated());
    assert_eq!(reply.answers().count(), 60);
    // Over TCP, no limit applies below 65,535.
    let tcp = ClientId {
        addr: addr("127.0.0.1:7"),
        transport: Transport::Tcp(1),
        listener: 0,
    };
    let QueryOutcome::Reply(len) = resolver.handle_query(&plain, &tcp, now, &mut out) else {
        panic!()
    };
    assert!(!Message::parse(&out[..len]).unwrap().flags().truncated());
}

#[test]
fn admission_rules() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    // Too short for a header: dropped.
    assert_eq!(
        resolver.handle_query(b"\x01\x02", &client(1), now, &mut out),
        QueryOutcome::Dropped
    );
    // A response: dropped.
    let mut response = a_query("x.example", 1);
    response[2] |= 0x80;
    assert_eq!(
        resolver.handle_query(&response, &client(1), now, &mut out),
        QueryOutcome::Dropped
    );
    // Garbage after a header: FORMERR echoing the ID.
    let mut garbage = a_query("x.example", 0x4242);
    garbage.truncate(20);
    let QueryOutcome::Reply(len) = resolver.handle_query(&garbage, &client(1), now, &mut out)
    else {
        panic!()
    };
    let reply = Message::parse(&out[..len]).unwrap();
    assert_eq!((reply.id(), reply.rcode()), (0x4242, Rcode::FORMERR));
    // Unknown opcode: NOTIMP.
    let mut notify = a_query("x.example", 2);
    notify[2] = (notify[2] & !0x78) | (Opcode::NOTIFY.0 << 3);
    let QueryOutcome::Reply(len) = resolver.handle_query(&notify, &client(1), now, &mut out) else {
        panic!()
    };
    assert_eq!(Message::parse(&out[..len]).unwrap().rcode(), Rcode::NOTIMP);
    // EDNS version 1: BADVERS, answered with version 0.
    let mut v1 = a_query("x.example", 3);
    // The OPT record ends the query: ... TTL(ext rcode, version, flags) RDLEN.
    let version_at = v1.len() - 2 - 4 + 1;
    v1[version_at] = 1;
    let QueryOutcome::Reply(len) = resolver.handle_query(&v1, &client(1), now, &mut out) else {
        panic!()
    };
    let reply = Message::parse(&out[..len]).unwrap();
    assert_eq!(reply.rcode(), Rcode::BADVERS);
    assert_eq!(reply.opt().unwrap().version(), 0);
    // Zone transfers are refused.
    let axfr = query("x.example", RecordType::AXFR, 4, None);
    let QueryOutcome::Reply(len) = resolver.handle_query(&axfr, &client(1), now, &mut out) else {
        panic!()
    };
    assert_eq!(Message::parse(&out[..len]).unwrap().rcode(), Rcode::REFUSED);
    // Unknown EDNS options are ignored (RFC 6891): the query is forwarded.
    assert_eq!(
        resolver.handle_query(&a_query("y.example", 5), &client(1), now, &mut out),
        QueryOutcome::Pending
    );
    let stats = resolver.stats();
    assert_eq!(
        (stats.formerr, stats.notimp, stats.badvers, stats.refused),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.dropped_malformed, 2);
}

#[test]
fn hints_fill_another_core() {
    let mut first = resolver(&[UPSTREAM_A]);
    let mut second = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    first.handle_query(&a_query("shared.example", 1), &client(1), now, &mut out);
    let sent = transmits(&mut first);
    first.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 1, 120),
        now,
    );
    replies(&mut first, now);
    let hint = first.poll_hint().expect("a hint for the other cores");
    assert!(first.poll_hint().is_none());
    second.receive_hint(hint, now);
    let later = now.add_secs(20);
    let QueryOutcome::Reply(len) =
        second.handle_query(&a_query("shared.example", 2), &client(2), later, &mut out)
    else {
        panic!("the hinted core answers from cache")
    };
    assert_eq!(answer_ttls(&out[..len]), [100]);
    assert_eq!(second.stats().upstream_queries, 0);
    assert_eq!(second.stats().hints_stored, 1);
}

#[test]
fn dnssec_ok_queries_are_cached_separately() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(1);
    resolver.handle_query(&a_query("do.example", 1), &client(1), now, &mut out);
    let sent = transmits(&mut resolver);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 1, 120),
        now,
    );
    replies(&mut resolver, now);
    let with_do = query("do.example", RecordType::A, 2, Some((1232, true)));
    assert_eq!(
        resolver.handle_query(&with_do, &client(1), now, &mut out),
        QueryOutcome::Pending
    );
    let sent = transmits(&mut resolver);
    assert!(
        Message::parse(&sent[0].1)
            .unwrap()
            .opt()
            .unwrap()
            .dnssec_ok()
    );
}

#[test]
fn a_hit_for_a_compressed_qname_echoes_the_whole_name() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let t0 = Timestamp::from_secs(100);
    let plain = query("Www", RecordType::A, 1, None);
    let mut out = [0u8; 512];
    let outcome = resolver.handle_query(&plain, &client(1000), t0, &mut out);
    assert_eq!(outcome, QueryOutcome::Pending);
    let sent = transmits(&mut resolver);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 1, 300),
        t0,
    );
    assert_eq!(replies(&mut resolver, t0).len(), 1);

    // "wWw" then a pointer to offset 11, the (zero) low byte of ARCOUNT:
    // the name is "wWw." but the bytes at offset 12 are not its wire form.
    let mut compressed = vec![0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    compressed.extend_from_slice(&[3, b'w', b'W', b'w', 0xc0, 11, 0, 1, 0, 1]);
    let outcome = resolver.handle_query(&compressed, &client(1001), t0, &mut out);
    let QueryOutcome::Reply(len) = outcome else {
        panic!("expected a hit, got {outcome:?}")
    };
    assert!(transmits(&mut resolver).is_empty());
    let reply = Message::parse(&out[..len]).unwrap();
    assert_eq!(reply.id(), 2);
    assert_eq!(reply.question().unwrap().name.to_string(), "wWw.");
    assert_eq!(answer_ttls(&out[..len]), [300]);
    assert_eq!(resolver.stats().cache_hits, 1);
}

#[test]
fn abandon_all_answers_every_waiter_and_retires_every_attempt() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 1232];
    let t0 = Timestamp::from_secs(10);
    for (n, name) in ["one.example", "two.example", "three.example"]
        .iter()
        .enumerate()
    {
        let outcome = resolver.handle_query(
            &a_query(name, n as u16),
            &client(4000 + n as u16),
            t0,
            &mut out,
        );
        assert_eq!(outcome, QueryOutcome::Pending);
    }
    // A second client joins the first query.
    resolver.handle_query(&a_query("one.example", 9), &client(4009), t0, &mut out);
    let sent = transmits(&mut resolver);
    assert_eq!(sent.len(), 3);
    assert_eq!(resolver.abandon_all(t0.add_millis(5)), 3);
    assert_eq!(resolver.inflight(), 0);
    let got = replies(&mut resolver, t0.add_millis(5));
    assert_eq!(got.len(), 4, "every waiting client is answered");
    for (_, reply) in &got {
        assert_eq!(Message::parse(reply).unwrap().rcode(), Rcode::SERVFAIL);
    }
    let mut retired = Vec::new();
    while let Some(attempt) = resolver.poll_retired() {
        retired.push(attempt);
    }
    let mut expected: Vec<_> = sent.iter().map(|(t, _)| t.attempt).collect();
    expected.sort_by_key(|a| a.0);
    retired.sort_by_key(|a| a.0);
    assert_eq!(retired, expected);
    assert_eq!(resolver.next_deadline(), None);
    // Nothing was cached: the next query goes upstream again.
    assert_eq!(
        resolver.handle_query(
            &a_query("one.example", 10),
            &client(4010),
            t0.add_millis(6),
            &mut out
        ),
        QueryOutcome::Pending
    );
}

#[test]
fn tls_upstreams_are_asked_over_tls_and_only_a_tls_reply_is_taken() {
    use heimdall_resolver::UpstreamTransport;
    let tls = UpstreamTransport::Tls;
    let config = ResolverConfig {
        upstreams: vec![Upstream::new(addr(UPSTREAM_A), tls).with_name("dns.example")],
        attempts: 2,
        ..config(&[UPSTREAM_A])
    };
    let mut resolver = Resolver::with_seed(config, 7).unwrap();
    let mut out = [0u8; 1232];
    let now = Timestamp::from_secs(5);
    resolver.handle_query(&a_query("tls.example", 3), &client(4000), now, &mut out);
    let sent = transmits(&mut resolver);
    assert_eq!(sent[0].0.to, addr(UPSTREAM_A));
    assert_eq!(sent[0].0.transport, tls);
    // The same reply over plain TCP is refused.
    let reply = a_answer(&sent[0].1, 1, 60);
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), TCP), &reply, now);
    assert!(replies(&mut resolver, now).is_empty());
    assert_eq!(resolver.stats().reply_rejected_wrong_transport, 1);
    // Over TLS it is taken.
    resolver.handle_upstream_reply(src(addr(UPSTREAM_A), tls), &reply, now);
    assert_eq!(replies(&mut resolver, now).len(), 1);
}

#[test]
fn encrypted_clients_get_stream_limits_and_are_counted() {
    let mut resolver = resolver(&[UPSTREAM_A]);
    let mut out = [0u8; 4096];
    let now = Timestamp::from_secs(1);
    resolver.handle_query(&a_query("many.example", 1), &client(1), now, &mut out);
    let sent = transmits(&mut resolver);
    resolver.handle_upstream_reply(
        src(addr(UPSTREAM_A), UDP),
        &a_answer(&sent[0].1, 60, 60),
        now,
    );
    replies(&mut resolver, now);
    // Without EDNS: 512 bytes over UDP, no limit on a stream.
    let plain = query("many.example", RecordType::A, 5, None);
    for transport in [Transport::Tls(1), Transport::Https(2)] {
        let stream = ClientId {
            addr: addr("127.0.0.1:7"),
            transport,
            listener: 0,
        };
        assert!(transport.is_stream());
        let QueryOutcome::Reply(len) = resolver.handle_query(&plain, &stream, now, &mut out) else {
            panic!()
        };
        let reply = Message::parse(&out[..len]).unwrap();
        assert!(!reply.flags().truncated());
        assert_eq!(reply.answers().count(), 60);
    }
    assert!(!Transport::Udp.is_stream());
    let stats = resolver.stats();
    assert_eq!(
        (stats.queries_udp, stats.queries_tls, stats.queries_https),
        (1, 1, 1)
    );
}
