#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
//! Criterion benchmarks for heimdall-cache: the cost of a cache hit (the
//! whole per-query cache path: lookup, then writing the client's reply)
//! and of storing a fresh upstream answer.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_benches::typical_query;
use heimdall_cache::{AnswerRequest, Cache, CachePolicy, Entry, Lookup, Timestamp};
use heimdall_testkit::messages;
use heimdall_wire::{Message, QueryKey, RecordType};

/// An upstream's answer to a query for `qname`: two A records, TTL 300.
fn two_a_response(qname: &str) -> Vec<u8> {
    messages::a_answer(&messages::query(qname, RecordType::A, 0x0a0b, None), 2, 300)
}

fn hit(c: &mut Criterion) {
    let query = typical_query();
    let (message, key) = QueryKey::from_packet(&query).unwrap();
    let response = two_a_response("www.example.com");
    let start = Timestamp::from_secs(1_000);
    let policy = CachePolicy::default();
    // A populated shard, so the lookup probes a realistic table.
    let mut cache = populated(policy, start);
    let upstream = Message::parse(&response).unwrap();
    let entry = Entry::from_response(&key, &upstream, start, &policy)
        .unwrap()
        .unwrap();
    cache.insert(&key, entry, start).unwrap();
    let request = AnswerRequest::from_query(&message, 1232).unwrap();
    let now = start.add_secs(7);
    let mut out = [0u8; 1232];
    assert!(matches!(cache.lookup(&key, now), Lookup::Fresh(_)));
    c.bench_function("cache/hit_lookup_and_write_answer", |b| {
        b.iter(|| {
            let len = match cache.lookup(black_box(&key), now) {
                Lookup::Fresh(entry) => entry.write_answer(&mut out, black_box(&request), now),
                _ => Ok(0),
            };
            black_box(out.get(..len.unwrap()));
        })
    });
}

/// Lookups of a hot set in turn: 1,000 names of a populated shard, each
/// hit moving its entry to the front of the protected segment (the one
/// hit above finds its entry there already, which skips that).
fn hot_set(c: &mut Criterion) {
    let start = Timestamp::from_secs(1_000);
    let policy = CachePolicy::default();
    let mut cache = populated(policy, start);
    let keys: Vec<QueryKey> = (0..1_000)
        .map(|n| {
            let query = messages::query(&format!("host{n}.example.com"), RecordType::A, 1, None);
            QueryKey::from_packet(&query).unwrap().1
        })
        .collect();
    let now = start.add_secs(7);
    // Twice, so that every entry of the set is protected.
    for key in keys.iter().chain(&keys) {
        assert!(matches!(cache.lookup(key, now), Lookup::Fresh(_)));
    }
    let mut next = keys.iter().cycle();
    c.bench_function("cache/hot_set_lookup", |b| {
        b.iter(|| {
            let key = next.next().unwrap();
            black_box(matches!(
                cache.lookup(black_box(key), now),
                Lookup::Fresh(_)
            ))
        })
    });
}

fn populated(policy: CachePolicy, start: Timestamp) -> Cache {
    let mut cache = Cache::new(64 << 20, policy).unwrap();
    for n in 0..10_000 {
        let name = format!("host{n}.example.com");
        let bytes = two_a_response(&name);
        let (upstream, key) = QueryKey::from_packet(&bytes).unwrap();
        let entry = Entry::from_response(&key, &upstream, start, &policy)
            .unwrap()
            .unwrap();
        cache.insert(&key, entry, start).unwrap();
    }
    cache
}

fn insert(c: &mut Criterion) {
    let query = typical_query();
    let key = QueryKey::from_packet(&query).unwrap().1;
    let response = two_a_response("www.example.com");
    let policy = CachePolicy::default();
    let start = Timestamp::from_secs(1_000);
    c.bench_function("cache/entry_from_response", |b| {
        b.iter(|| {
            let upstream = Message::parse(black_box(&response)).unwrap();
            black_box(Entry::from_response(&key, &upstream, start, &policy).unwrap())
        })
    });
    // Parse the upstream answer, normalize it and store it under a new
    // key in a populated shard; the remove that puts the shard back as it
    // was is timed too.
    let mut cache = populated(policy, start);
    c.bench_function("cache/insert_fresh_entry", |b| {
        b.iter(|| {
            let upstream = Message::parse(black_box(&response)).unwrap();
            let entry = Entry::from_response(&key, &upstream, start, &policy)
                .unwrap()
                .unwrap();
            cache.insert(&key, entry, start).unwrap();
            cache.remove(&key)
        })
    });
}

criterion_group!(benches, hit, hot_set, insert);
criterion_main!(benches);
