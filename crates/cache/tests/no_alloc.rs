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

/// A server's hit path and what it reuses across queries: the cache, one
/// query key refilled for each query, and the reply buffer.
struct HitPath {
    cache: Cache,
    key: QueryKey,
    out: Vec<u8>,
}

impl HitPath {
    /// Views the client's query and fills the key from it: the request a
    /// reply is written for.
    fn view<'q>(&mut self, packet: &'q [u8]) -> AnswerRequest<'q> {
        let message = Message::parse(packet).unwrap();
        self.key.fill_from(&message).unwrap();
        AnswerRequest::from_query(&message, 1232).unwrap()
    }

    /// What a server does for one query on the hit path: view, key,
    /// lookup, write. Returns the reply length (0 on a miss).
    fn serve(&mut self, packet: &[u8], now: Timestamp) -> usize {
        let request = self.view(packet);
        match self.cache.lookup(&self.key, now) {
            Lookup::Fresh(entry) | Lookup::Stale(entry) => {
                entry.write_answer(&mut self.out, &request, now).unwrap()
            }
            Lookup::Miss => 0,
        }
    }

    /// [`Self::serve`] for a stale hit, written as a stale answer; also
    /// reads the slot's hit count and refresh time as the resolver does.
    fn serve_stale(&mut self, packet: &[u8], now: Timestamp) -> usize {
        let request = self.view(packet).with_stale(true);
        match self.cache.lookup_slot(&self.key, now) {
            (Lookup::Stale(entry), info) => {
                assert_eq!(info.refresh_after, Timestamp::ZERO);
                entry.write_answer(&mut self.out, &request, now).unwrap()
            }
            _ => 0,
        }
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
    let mut path = HitPath {
        cache,
        key: QueryKey::from_packet(&packets[0]).unwrap().1,
        out: vec![0u8; 65_535],
    };
    let now = start.add_millis(42_500);

    // Sanity outside the counted region: hits, a cut, a miss.
    assert!(path.serve(&packets[0], now) > 0);
    let cut = path.serve(&packets[2], now);
    assert!(cut > 0 && cut <= 512);
    assert!(
        Message::parse(&path.out[..cut])
            .unwrap()
            .flags()
            .truncated()
    );
    assert_eq!(path.serve(&packets[4], now), 0);

    let (total, count) = allocations_during(|| {
        let mut total = 0usize;
        for _ in 0..100 {
            for packet in &packets {
                total += path.serve(black_box(packet), now);
            }
        }
        // Stale (past 10 s, inside the 60 s window), then an entry past
        // its window, which lookup removes.
        total += path.serve(&stale, start.add_secs(20));
        // The same entry written as a stale answer (TTL 30, EDE).
        total += path.serve_stale(&stale, start.add_secs(21));
        total += path.serve(&expired, start.add_secs(80));
        total
    });
    assert!(black_box(total) > 0);
    assert_eq!(count, 0, "the hit path allocated {count} times");
    let stats = path.cache.stats();
    assert_eq!((stats.stale_hits, stats.expired, stats.entries), (2, 1, 3));
}
