//! The hit path allocates nothing: viewing the client's query, computing
//! its key, `Cache::lookup` (and `lookup_slot`) and `Entry::write_answer`
//! (with and without EDNS, with aged TTLs, with truncation, as a stale
//! answer), and also a miss and the removal of an expired entry.
//!
//! A counting global allocator counts allocations made by the current
//! thread while counting is switched on (a const-initialized thread-local
//! flag, so the test harness's other threads do not interfere). Entries are
//! built and stored before counting starts. A control check proves the
//! counter works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::hint::black_box;

use heimdall_cache::{AnswerRequest, Cache, CachePolicy, Entry, Lookup, Timestamp};
use heimdall_testkit::messages::{a_answer, query};
use heimdall_testkit::{CountingAllocator, allocations_during};
use heimdall_wire::{Message, QueryKey, RecordType};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn a_query(qname: &str, edns: Option<(u16, bool)>) -> Vec<u8> {
    query(qname, RecordType::A, 0x5151, edns)
}

fn store(cache: &mut Cache, qname: &str, records: u8, ttl: u32, now: Timestamp) {
    let asked = a_query(qname, None);
    let key = QueryKey::from_packet(&asked).unwrap().1;
    let bytes = a_answer(&asked, records, ttl);
    let message = Message::parse(&bytes).unwrap();
    let entry = Entry::from_response(&key, &message, now, cache.policy())
        .unwrap()
        .unwrap();
    assert!(cache.insert(&key, entry, now).unwrap());
}

/// What a server does for one query on the hit path: view, key, lookup,
/// write. Returns the reply length (0 on a miss).
fn serve(
    cache: &mut Cache,
    key: &mut QueryKey,
    packet: &[u8],
    out: &mut [u8],
    now: Timestamp,
) -> usize {
    let message = Message::parse(packet).unwrap();
    key.fill_from(&message).unwrap();
    let request = AnswerRequest::from_query(&message, 1232).unwrap();
    match cache.lookup(key, now) {
        Lookup::Fresh(entry) | Lookup::Stale(entry) => {
            entry.write_answer(out, &request, now).unwrap()
        }
        Lookup::Miss => 0,
    }
}

/// [`serve`] for a stale hit, written as a stale answer; also reads the
/// slot's hit count and refresh time as the resolver does.
fn serve_stale(
    cache: &mut Cache,
    key: &mut QueryKey,
    packet: &[u8],
    out: &mut [u8],
    now: Timestamp,
) -> usize {
    let message = Message::parse(packet).unwrap();
    key.fill_from(&message).unwrap();
    let request = AnswerRequest::from_query(&message, 1232)
        .unwrap()
        .with_stale(true);
    match cache.lookup_slot(key, now) {
        (Lookup::Stale(entry), info) => {
            assert_eq!(info.refresh_after, Timestamp::ZERO);
            entry.write_answer(out, &request, now).unwrap()
        }
        _ => 0,
    }
}

#[test]
fn counter_counts_this_threads_allocations() {
    let (vec, count) = allocations_during(|| black_box(Vec::<u8>::with_capacity(16)));
    drop(vec);
    assert!(count >= 1, "the counting allocator saw no allocation");
}

#[test]
fn lookup_and_write_answer_allocate_nothing() {
    let start = Timestamp::from_secs(100);
    let policy = CachePolicy {
        stale_window: 60,
        ..CachePolicy::default()
    };
    let mut cache = Cache::new(1 << 20, policy).unwrap();
    store(&mut cache, "www.example.com", 2, 300, start);
    // 60 records: far over 512 bytes, so plain clients get a cut reply.
    store(&mut cache, "big.example.com", 60, 300, start);
    store(&mut cache, "short.example.com", 1, 10, start);
    store(&mut cache, "gone.example.com", 1, 10, start);
    let packets = [
        a_query("WWW.example.com", Some((1232, false))),
        a_query("www.Example.com", None),
        a_query("big.example.com", None),
        a_query("BIG.example.com", Some((1232, true))),
        a_query("missing.example.com", Some((1232, false))),
    ];
    let stale = a_query("short.example.com", Some((1232, false)));
    let expired = a_query("gone.example.com", None);
    let mut key = QueryKey::from_packet(&packets[0]).unwrap().1;
    let mut out = vec![0u8; 65_535];
    let now = start.add_millis(42_500);

    // Sanity outside the counted region: hits, a cut, a miss.
    assert!(serve(&mut cache, &mut key, &packets[0], &mut out, now) > 0);
    let cut = serve(&mut cache, &mut key, &packets[2], &mut out, now);
    assert!(cut > 0 && cut <= 512);
    assert!(Message::parse(&out[..cut]).unwrap().flags().truncated());
    assert_eq!(serve(&mut cache, &mut key, &packets[4], &mut out, now), 0);

    let (total, count) = allocations_during(|| {
        let mut total = 0usize;
        for _ in 0..100 {
            for packet in &packets {
                total += serve(&mut cache, &mut key, black_box(packet), &mut out, now);
            }
        }
        // Stale (past 10 s, inside the 60 s window), then an entry past
        // its window, which lookup removes.
        total += serve(&mut cache, &mut key, &stale, &mut out, start.add_secs(20));
        // The same entry written as a stale answer (TTL 30, EDE).
        total += serve_stale(&mut cache, &mut key, &stale, &mut out, start.add_secs(21));
        total += serve(&mut cache, &mut key, &expired, &mut out, start.add_secs(80));
        total
    });
    assert!(black_box(total) > 0);
    assert_eq!(count, 0, "the hit path allocated {count} times");
    let stats = cache.stats();
    assert_eq!((stats.stale_hits, stats.expired, stats.entries), (2, 1, 3));
}
