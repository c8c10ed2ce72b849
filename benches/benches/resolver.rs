//! Criterion benchmark of the resolver's whole per-query work on a cache
//! hit: header and message view, admission rules, key, lookup, and writing
//! the client's reply. This is everything a core does per query except the
//! system calls.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_benches::typical_query;
use heimdall_cache::Timestamp;
use heimdall_resolver::{ClientId, QueryOutcome, Resolver, ResolverConfig, Transport};
use heimdall_wire::{Class, Flags, Message, MessageBuilder, RData, RecordType, Section};

fn answer(upstream_query: &[u8]) -> Vec<u8> {
    let query = Message::parse(upstream_query).unwrap();
    let question = query.question().unwrap();
    let mut buf = [0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(query.id());
    builder.set_flags(
        Flags::default()
            .with_response(true)
            .with_recursion_available(true),
    );
    builder
        .question(&question.name, question.qtype, question.qclass)
        .unwrap();
    for last in [1, 2] {
        let rdata = RData::A(Ipv4Addr::new(192, 0, 2, last));
        builder
            .record(
                Section::Answer,
                &question.name,
                RecordType::A,
                Class::IN,
                300,
                &rdata,
            )
            .unwrap();
    }
    let len = builder.finish();
    buf[..len].to_vec()
}

fn resolver_hit(c: &mut Criterion) {
    let upstream: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let config = ResolverConfig {
        upstreams: vec![upstream],
        ..ResolverConfig::default()
    };
    let mut resolver = Resolver::with_seed(config, 3).unwrap();
    let client = ClientId {
        addr: "127.0.0.1:40000".parse().unwrap(),
        transport: Transport::Udp,
        listener: 0,
    };
    let query = typical_query();
    let now = Timestamp::from_secs(1);
    let mut out = [0u8; 4096];
    assert_eq!(
        resolver.handle_query(&query, client, now, &mut out),
        QueryOutcome::Pending
    );
    let transmit = resolver.poll_transmit(&mut out).unwrap();
    let sent = out[..transmit.len].to_vec();
    resolver.handle_upstream_reply(upstream, &answer(&sent), now);
    while resolver.poll_reply(&mut out, now).is_some() {}
    let later = now.add_secs(5);
    c.bench_function("resolver/cache_hit_handle_query", |b| {
        b.iter(|| {
            let outcome = resolver.handle_query(black_box(&query), client, later, &mut out);
            black_box(outcome)
        })
    });
}

criterion_group!(benches, resolver_hit);
criterion_main!(benches);
