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
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_benches::typical_query;
use heimdall_cache::Timestamp;
use heimdall_resolver::{ClientId, QueryOutcome, Resolver, ResolverConfig, Transport, Upstream};
use heimdall_testkit::messages::a_answer;

fn resolver_hit(c: &mut Criterion) {
    let upstream: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let config = ResolverConfig {
        upstreams: vec![Upstream::udp(upstream)],
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
    let source = heimdall_resolver::ReplySource {
        from: upstream,
        transport: transmit.transport,
        attempt: Some(transmit.attempt),
    };
    resolver.handle_upstream_reply(source, &a_answer(&sent, 2, 300), now);
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
