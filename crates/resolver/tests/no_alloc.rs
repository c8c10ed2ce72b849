//! The resolver's cache-hit path allocates nothing: `Resolver::handle_query`
//! for a cached name (any letter case, with and without EDNS, truncated for
//! a 512-byte client, over TCP), a stale answer served while the upstream
//! is known to fail, hits that look at prefetch without starting one,
//! hits for clients that send DNS cookies (each one checked and answered
//! with a fresh server cookie), and the error replies it writes itself
//! (FORMERR for a malformed cookie, BADCOOKIE above the required rate).
//! And a cache miss allocates only its cache entry: asking upstream
//! nothing, answering only the entry's bytes (shared by the cache, the
//! waiters' replies and the hint, so none of them copies it).
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
use std::sync::Arc;

use heimdall_cache::{CachePolicy, Timestamp};
use heimdall_policy::{
    AclBuilder, BlocklistBuilder, Cidr, ListFormat, RateLimitConfig, ServerCookies,
};
use heimdall_resolver::{
    ClientId, CookiePolicy, PolicyConfig, QueryOutcome, ReplySource, Resolver, ResolverConfig,
    Transport, Upstream,
};
use heimdall_testkit::messages::{a_answer, query, query_with_cookie};
use heimdall_testkit::{CountingAllocator, allocations_during};
use heimdall_wire::RecordType;
use heimdall_zone::{LocalData, parse_record_line};

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
        &client(Transport::Udp),
        now,
        &mut out,
    );
    assert_eq!(outcome, QueryOutcome::Pending);
    let transmit = resolver.poll_transmit(&mut out).unwrap();
    let sent = out[..transmit.len].to_vec();
    let source = ReplySource {
        from: transmit.to,
        transport: transmit.transport,
        attempt: Some(transmit.attempt),
    };
    resolver.handle_upstream_reply(source, &a_answer(&sent, records, 300), now);
    while resolver.poll_reply(&mut out, now).is_some() {}
}

/// Every outcome is an immediate reply.
fn assert_all_replies(outcomes: &[QueryOutcome]) {
    assert!(
        outcomes
            .iter()
            .all(|outcome| matches!(outcome, QueryOutcome::Reply(_))),
        "{outcomes:?}"
    );
}

#[test]
fn the_counter_counts() {
    let (vector, count) = allocations_during(|| black_box(vec![1u8; 16]));
    assert_eq!(vector.len(), 16);
    assert!(count >= 1);
}

/// Every policy loaded: a blocklist, an ACL, local data with the built-in
/// zones, and a rate limiter generous enough to allow every query.
fn all_policy() -> PolicyConfig {
    let mut list = BlocklistBuilder::new();
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!("0.0.0.0 ads-{i}.tracker.test\n"));
    }
    list.add_list(&text, ListFormat::Auto);
    list.add_list("||blocked.example^\n", ListFormat::Auto);
    list.allow("ok.blocked.example");
    let mut acl = AclBuilder::new();
    for i in 0..100u8 {
        acl = acl.allow(format!("198.51.{i}.0/24").parse::<Cidr>().unwrap());
    }
    acl = acl.deny("203.0.113.0/24".parse::<Cidr>().unwrap());
    let local = LocalData::builder()
        .records([parse_record_line("printer.lan. 300 IN A 192.168.1.5", None, 300).unwrap()])
        .builtins(true)
        .build()
        .unwrap();
    PolicyConfig {
        acl: Some(acl.build()),
        rate_limit: Some((
            RateLimitConfig {
                rate_per_sec: 1_000_000,
                burst: 1_000_000,
                ..RateLimitConfig::default()
            },
            1,
        )),
        local: Some(Arc::new(local)),
        blocklist: Some(Arc::new(list.build())),
        ..PolicyConfig::default()
    }
}

#[test]
fn cache_hits_and_local_errors_allocate_nothing() {
    hits_allocate_nothing(PolicyConfig::default());
}

#[test]
fn cache_hits_allocate_nothing_with_all_policy_loaded() {
    hits_allocate_nothing(all_policy());
}

fn hits_allocate_nothing(policy: PolicyConfig) {
    let config = ResolverConfig {
        upstreams: vec![Upstream::udp(UPSTREAM.parse().unwrap())],
        policy,
        dnssec: heimdall_resolver::DnssecConfig::off(),
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
            *slot = resolver.handle_query(packet, &client(*transport), later, &mut out);
        }
        for (packet, slot) in errors.iter().zip(outcomes.iter_mut().skip(queries.len())) {
            *slot = resolver.handle_query(packet, &client(Transport::Udp), later, &mut out);
        }
        outcomes
    });
    assert_all_replies(&outcomes);
    assert_eq!(resolver.stats().cache_hits, 5);
    assert_eq!(count, 0, "the hit path allocated {count} times");
}

#[test]
fn cache_hits_with_cookies_allocate_nothing() {
    let cookies = ServerCookies::new(*b"sixteen byte key", 86_400).unwrap();
    let unix_epoch_ms = 1_700_000_000_000;
    // With a requirement: no refill, and a burst of 2 that `warm` spends.
    let cookie_policy = |burst: Option<u32>| CookiePolicy {
        cookies: cookies.clone(),
        unix_epoch_ms,
        udp_require: burst.map(|burst| {
            (
                RateLimitConfig {
                    rate_per_sec: 0,
                    burst,
                    ..RateLimitConfig::default()
                },
                1,
            )
        }),
    };
    let now = Timestamp::from_secs(10);
    let later = now.add_secs(30);
    let ip = client(Transport::Udp).addr.ip();
    let good = cookies.make(b"clientck", ip, unix_epoch_ms / 1000 + 40);
    let valid = [&b"clientck"[..], &good[..]].concat();
    let bad = [&b"clientck"[..], &[0x55u8; 16][..]].concat();
    let packets = [
        query_with_cookie("small.example", RecordType::A, 2, b"clientck"),
        query_with_cookie("SMALL.example", RecordType::A, 3, &valid),
        query_with_cookie("large.example", RecordType::A, 4, &bad),
        query_with_cookie("small.example", RecordType::A, 5, &[1u8; 9]),
    ];
    for (policy, hits) in [(cookie_policy(None), 3), (cookie_policy(Some(2)), 1)] {
        let config = ResolverConfig {
            upstreams: vec![Upstream::udp(UPSTREAM.parse().unwrap())],
            policy: PolicyConfig {
                cookies: Some(policy),
                ..all_policy()
            },
            dnssec: heimdall_resolver::DnssecConfig::off(),
            ..ResolverConfig::default()
        };
        let mut resolver = Resolver::with_seed(config, 1).unwrap();
        warm(&mut resolver, "small.example", 2, now);
        warm(&mut resolver, "large.example", 60, now);
        let mut out = vec![0u8; 65_535];
        let (outcomes, count) = allocations_during(|| {
            let mut outcomes = [QueryOutcome::Dropped; 5];
            for (packet, slot) in packets.iter().zip(outcomes.iter_mut()) {
                *slot = resolver.handle_query(packet, &client(Transport::Udp), later, &mut out);
            }
            outcomes[4] =
                resolver.handle_query(&packets[0], &client(Transport::Tcp(3)), later, &mut out);
            outcomes
        });
        assert_all_replies(&outcomes);
        let stats = resolver.stats();
        assert_eq!(stats.client_cookies_malformed, 1);
        // With the requirement (its 2 tokens spent by `warm`), only the
        // valid cookie and TCP got past it: the others got BADCOOKIE.
        assert_eq!(stats.cache_hits, hits + 1);
        assert_eq!(count, 0, "the hit path allocated {count} times");
    }
}

#[test]
fn stale_answers_and_prefetch_checks_allocate_nothing() {
    let config = ResolverConfig {
        upstreams: vec![Upstream::udp(UPSTREAM.parse().unwrap())],
        attempts: 1,
        cache_policy: CachePolicy {
            stale_window: 600,
            ..CachePolicy::default()
        },
        dnssec: heimdall_resolver::DnssecConfig::off(),
        ..ResolverConfig::default()
    };
    let mut resolver = Resolver::with_seed(config, 1).unwrap();
    let t0 = Timestamp::from_secs(10);
    warm(&mut resolver, "hot.example", 2, t0);
    // A 300 s entry that goes stale, whose refresh then times out: from
    // then on it is answered stale without asking upstream.
    let mut out = vec![0u8; 65_535];
    let stale_query = query("hot.example", RecordType::A, 2, Some((1232, false)));
    let t1 = t0.add_secs(301);
    let outcome = resolver.handle_query(&stale_query, &client(Transport::Udp), t1, &mut out);
    assert_eq!(outcome, QueryOutcome::Pending);
    while resolver.poll_transmit(&mut out).is_some() {}
    let deadline = resolver.next_deadline().unwrap();
    resolver.handle_timeouts(deadline);
    while resolver.poll_reply(&mut out, deadline).is_some() {}
    assert_eq!(resolver.stats().stale_served, 1);

    warm(&mut resolver, "fresh.example", 2, t1);
    let fresh_query = query("fresh.example", RecordType::A, 3, None);
    let plain = query("hot.example", RecordType::A, 4, None);
    let t2 = deadline.add_secs(1);
    let (outcomes, count) = allocations_during(|| {
        let mut outcomes = [QueryOutcome::Dropped; 4];
        // Stale, with and without EDNS.
        outcomes[0] = resolver.handle_query(&stale_query, &client(Transport::Udp), t2, &mut out);
        outcomes[1] = resolver.handle_query(&plain, &client(Transport::Udp), t2, &mut out);
        // Fresh hits 1 and 2 of an entry near expiry: below the 3 hits a
        // prefetch needs, so the check runs and nothing starts.
        let late = t1.add_secs(295);
        outcomes[2] = resolver.handle_query(&fresh_query, &client(Transport::Udp), late, &mut out);
        outcomes[3] = resolver.handle_query(&fresh_query, &client(Transport::Udp), late, &mut out);
        outcomes
    });
    assert_all_replies(&outcomes);
    assert_eq!(resolver.stats().stale_served, 3);
    assert_eq!(resolver.stats().prefetches, 0);
    assert_eq!(count, 0, "the stale path allocated {count} times");
}

/// One cache miss from query to answer, allocations counted in two parts
/// (the upstream's answer is built between them, outside the count):
/// the query and its transmit; then the reply, the client's answer, the
/// retired attempt and the hint.
fn miss_allocations(
    resolver: &mut Resolver,
    name: &str,
    id: u16,
    now: Timestamp,
) -> (usize, usize) {
    let mut out = vec![0u8; 65535];
    let packet = query(name, RecordType::A, id, Some((1232, false)));
    let (transmit, asking) = allocations_during(|| {
        let outcome = resolver.handle_query(&packet, &client(Transport::Udp), now, &mut out);
        assert_eq!(outcome, QueryOutcome::Pending);
        resolver.poll_transmit(&mut out).unwrap()
    });
    let answer = a_answer(&out[..transmit.len], 2, 300);
    let source = ReplySource {
        from: transmit.to,
        transport: transmit.transport,
        attempt: Some(transmit.attempt),
    };
    let ((), answering) = allocations_during(|| {
        resolver.handle_upstream_reply(source, &answer, now);
        assert!(resolver.poll_reply(&mut out, now).is_some());
        while resolver.poll_retired().is_some() {}
        while resolver.poll_hint().is_some() {}
    });
    (asking, answering)
}

/// The allocations of 32 cache misses, each answered, after the tables
/// grew to a working size: (asking upstream, answering) per miss.
fn miss_allocation_counts(hints: bool) -> Vec<(usize, usize)> {
    let config = ResolverConfig {
        upstreams: vec![Upstream::udp(UPSTREAM.parse().unwrap())],
        dnssec: heimdall_resolver::DnssecConfig::off(),
        hints,
        ..ResolverConfig::default()
    };
    let mut resolver = Resolver::with_seed(config, 1).unwrap();
    let now = Timestamp::from_secs(10);
    // The tables grow to a working size first, as under load: 300 misses
    // in flight at once, then answered.
    let mut out = vec![0u8; 65535];
    let mut transmits = Vec::new();
    for id in 0..300u16 {
        let packet = query(&format!("warm-{id}.example"), RecordType::A, id, None);
        let outcome = resolver.handle_query(&packet, &client(Transport::Udp), now, &mut out);
        assert_eq!(outcome, QueryOutcome::Pending);
        let transmit = resolver.poll_transmit(&mut out).unwrap();
        transmits.push((transmit, a_answer(&out[..transmit.len], 2, 300)));
    }
    for (transmit, answer) in transmits {
        let source = ReplySource {
            from: transmit.to,
            transport: transmit.transport,
            attempt: Some(transmit.attempt),
        };
        resolver.handle_upstream_reply(source, &answer, now);
    }
    while resolver.poll_reply(&mut out, now).is_some() {}
    while resolver.poll_retired().is_some() {}
    while resolver.poll_hint().is_some() {}
    (0..32u16)
        .map(|id| miss_allocations(&mut resolver, &format!("miss-{id}.example"), 1000 + id, now))
        .collect()
}

/// Checks `counts` against `expected` allocations per answered miss: none
/// to ask upstream; `expected` to answer, now and then one more (a cache
/// table or store page that grows: 5 of 32 here), never two more.
fn assert_miss_allocations(counts: &[(usize, usize)], expected: usize) {
    let mut growths = 0;
    for &(asking, answering) in counts {
        assert_eq!(asking, 0, "asking upstream allocated {asking} times");
        if answering == expected + 1 {
            growths += 1;
        } else {
            assert_eq!(answering, expected, "answering allocated {answering} times");
        }
    }
    assert!(growths <= 8, "{growths} of 32 misses allocated one more");
}

#[test]
fn a_cache_miss_allocates_only_its_cache_entry() {
    // The entry's one exact-size allocation, which the waiting clients'
    // answers share; the cache copies it into its store, and the answer
    // is normalized in a scratch buffer the resolver keeps.
    assert_miss_allocations(&miss_allocation_counts(false), 1);
}

#[test]
fn with_hints_a_cache_miss_also_allocates_the_hint() {
    // Each core holds its own bytes: the hint is a copy of the entry.
    assert_miss_allocations(&miss_allocation_counts(true), 2);
}
