//! The resolver's cache-hit path allocates nothing: `Resolver::handle_query`
//! for a cached name (any letter case, with and without EDNS, truncated for
//! a 512-byte client, over TCP) and the error replies it writes itself.
//!
//! A counting global allocator counts allocations made by this thread while
//! counting is on; the cache is filled through the engine before counting
//! starts. A control check proves the counter counts.

#![allow(
    unsafe_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::hint::black_box;
use std::net::SocketAddr;

use heimdall_cache::Timestamp;
use heimdall_resolver::{ClientId, QueryOutcome, Resolver, ResolverConfig, Transport};
use heimdall_testkit::messages::{a_answer, query};
use heimdall_testkit::{CountingAllocator, allocations_during};
use heimdall_wire::RecordType;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const UPSTREAM: &str = "127.0.0.1:5399";

fn client(transport: Transport) -> ClientId {
    ClientId {
        addr: SocketAddr::from(([127, 0, 0, 1], 40000)),
        transport,
        listener: 0,
    }
}

/// Resolve `name` through the engine so it lands in the cache.
fn warm(resolver: &mut Resolver, name: &str, records: u8, now: Timestamp) {
    let mut out = [0u8; 4096];
    let outcome = resolver.handle_query(
        &query(name, RecordType::A, 1, Some((1232, false))),
        client(Transport::Udp),
        now,
        &mut out,
    );
    assert_eq!(outcome, QueryOutcome::Pending);
    let transmit = resolver.poll_transmit(&mut out).unwrap();
    let sent = out[..transmit.len].to_vec();
    resolver.handle_upstream_reply(transmit.to, &a_answer(&sent, records, 300), now);
    while resolver.poll_reply(&mut out, now).is_some() {}
}

#[test]
fn the_counter_counts() {
    let (vector, count) = allocations_during(|| black_box(vec![1u8; 16]));
    assert_eq!(vector.len(), 16);
    assert!(count >= 1);
}

#[test]
fn cache_hits_and_local_errors_allocate_nothing() {
    let config = ResolverConfig {
        upstreams: vec![UPSTREAM.parse().unwrap()],
        ..ResolverConfig::default()
    };
    let mut resolver = Resolver::with_seed(config, 1).unwrap();
    let now = Timestamp::from_secs(10);
    warm(&mut resolver, "small.example", 2, now);
    warm(&mut resolver, "large.example", 60, now);

    let queries = [
        (
            query("small.example", RecordType::A, 2, Some((1232, false))),
            Transport::Udp,
        ),
        (
            query("SMALL.Example", RecordType::A, 3, None),
            Transport::Udp,
        ),
        (
            query("large.example", RecordType::A, 4, None),
            Transport::Udp,
        ),
        (
            query("large.example", RecordType::A, 5, Some((4096, false))),
            Transport::Udp,
        ),
        (
            query("large.example", RecordType::A, 6, None),
            Transport::Tcp(9),
        ),
    ];
    let mut bad_opcode = query("small.example", RecordType::A, 7, None);
    bad_opcode[2] |= 4 << 3;
    let mut garbage = query("small.example", RecordType::A, 8, None);
    garbage.truncate(20);
    let errors = [bad_opcode, garbage];

    let mut out = vec![0u8; 65_535];
    let later = now.add_secs(30);
    let (outcomes, count) = allocations_during(|| {
        let mut outcomes = [QueryOutcome::Dropped; 7];
        for ((packet, transport), slot) in queries.iter().zip(outcomes.iter_mut()) {
            *slot = resolver.handle_query(packet, client(*transport), later, &mut out);
        }
        for (packet, slot) in errors.iter().zip(outcomes.iter_mut().skip(queries.len())) {
            *slot = resolver.handle_query(packet, client(Transport::Udp), later, &mut out);
        }
        outcomes
    });
    assert!(
        outcomes
            .iter()
            .all(|outcome| matches!(outcome, QueryOutcome::Reply(_))),
        "{outcomes:?}"
    );
    assert_eq!(resolver.stats().cache_hits, 5);
    assert_eq!(count, 0, "the hit path allocated {count} times");
}
