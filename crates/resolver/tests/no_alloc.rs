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

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};

use heimdall_cache::Timestamp;
use heimdall_resolver::{ClientId, QueryOutcome, Resolver, ResolverConfig, Transport};
use heimdall_wire::{
    Class, Flags, Message, MessageBuilder, NameBuf, OptSpec, RData, RecordType, Section,
};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _counted = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping touches only const-initialized thread-local `Cell`s.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during<R>(work: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|on| on.set(true));
    let result = work();
    COUNTING.with(|on| on.set(false));
    (result, ALLOCATIONS.with(Cell::get))
}

const UPSTREAM: &str = "127.0.0.1:5399";

fn query(name: &str, id: u16, edns: Option<u16>) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(id);
    builder.set_flags(Flags::default().with_recursion_desired(true));
    let name = NameBuf::from_presentation(name).unwrap();
    builder
        .question(&name.as_name(), RecordType::A, Class::IN)
        .unwrap();
    if let Some(udp_payload_size) = edns {
        let opt = OptSpec {
            udp_payload_size,
            extended_rcode: 0,
            version: 0,
            dnssec_ok: false,
            options: &[],
        };
        builder.opt(&opt).unwrap();
    }
    let len = builder.finish();
    buf[..len].to_vec()
}

fn upstream_reply(upstream_query: &[u8], records: u8) -> Vec<u8> {
    let query = Message::parse(upstream_query).unwrap();
    let question = query.question().unwrap();
    let mut buf = [0u8; 4096];
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
    for last in 1..=records {
        let rdata = RData::A(Ipv4Addr::new(198, 51, 100, last));
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
        &query(name, 1, Some(1232)),
        client(Transport::Udp),
        now,
        &mut out,
    );
    assert_eq!(outcome, QueryOutcome::Pending);
    let transmit = resolver.poll_transmit(&mut out).unwrap();
    let sent = out[..transmit.len].to_vec();
    resolver.handle_upstream_reply(transmit.to, &upstream_reply(&sent, records), now);
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
        (query("small.example", 2, Some(1232)), Transport::Udp),
        (query("SMALL.Example", 3, None), Transport::Udp),
        (query("large.example", 4, None), Transport::Udp),
        (query("large.example", 5, Some(4096)), Transport::Udp),
        (query("large.example", 6, None), Transport::Tcp(9)),
    ];
    let mut bad_opcode = query("small.example", 7, None);
    bad_opcode[2] |= 4 << 3;
    let mut garbage = query("small.example", 8, None);
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
