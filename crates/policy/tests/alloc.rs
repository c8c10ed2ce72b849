//! The per-query policy checks never allocate: blocklist lookup (hit,
//! miss and allowlisted), ACL check, and rate-limit check (including new
//! prefixes and eviction from a full table).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use heimdall_cache::Timestamp;
use heimdall_policy::{
    AclBuilder, AclDecision, BlocklistBuilder, ListFormat, RateLimitAction, RateLimitConfig,
    RateLimiter, Verdict,
};
use heimdall_testkit::{CountingAllocator, allocations_during};
use heimdall_wire::{Message, NameBuf};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn blocklist_lookup_does_not_allocate() {
    let mut builder = BlocklistBuilder::new();
    builder.add_list(
        "0.0.0.0 ads.example.com\n||tracker.example.net^\n@@||ok.tracker.example.net^\n",
        ListFormat::Auto,
    );
    let list = builder.build();
    let names: Vec<NameBuf> = [
        "www.Ads.Example.com",
        "example.org",
        "a.b.c.d.e.f.g.example",
        "ok.tracker.example.net",
    ]
    .iter()
    .map(|text| NameBuf::from_presentation(text).unwrap())
    .collect();
    // A name inside a parsed message, as the server sees it.
    let query = heimdall_testkit::messages::query(
        "Sub.Ads.Example.COM",
        heimdall_wire::RecordType::A,
        7,
        None,
    );
    let message = Message::parse(&query).unwrap();
    let question = message.question().unwrap();
    let (verdicts, allocations) = allocations_during(|| {
        let mut verdicts = [Verdict::Pass; 5];
        for (slot, name) in verdicts.iter_mut().zip(&names) {
            *slot = list.check(&name.as_name());
        }
        verdicts[4] = list.check(&question.name);
        verdicts
    });
    assert_eq!(allocations, 0);
    assert_eq!(
        verdicts,
        [
            Verdict::Blocked,
            Verdict::Pass,
            Verdict::Pass,
            Verdict::Allowed,
            Verdict::Blocked
        ]
    );
}

#[test]
fn acl_check_does_not_allocate() {
    let acl = AclBuilder::new()
        .allow_all(["203.0.113.0/24", "2001:db8::/32"])
        .unwrap()
        .deny_all(["10.9.0.0/16"])
        .unwrap()
        .build();
    let clients: Vec<IpAddr> = [
        "203.0.113.5",
        "10.9.0.1",
        "8.8.8.8",
        "::ffff:192.168.0.1",
        "2001:db8::1",
    ]
    .iter()
    .map(|text| text.parse().unwrap())
    .collect();
    let (decisions, allocations) = allocations_during(|| {
        clients
            .iter()
            .map(|client| acl.check(*client))
            .fold(0, |allowed, decision| {
                allowed + usize::from(decision == AclDecision::Allow)
            })
    });
    assert_eq!(allocations, 0);
    assert_eq!(decisions, 3);
}

#[test]
fn rate_limit_check_does_not_allocate() {
    let config = RateLimitConfig {
        rate_per_sec: 10,
        burst: 2,
        capacity: 64,
        action: RateLimitAction::Truncate,
        ..RateLimitConfig::default()
    };
    let mut limiter = RateLimiter::new(&config, 2).unwrap();
    let ((), allocations) = allocations_during(|| {
        // Far more prefixes than the capacity: inserts, hits and evictions.
        for round in 0..4u64 {
            for index in 0..1000u32 {
                let client = IpAddr::from([10, (index >> 8) as u8, index as u8, 1]);
                limiter.check(client, Timestamp::from_millis(round * 10));
                let v6 = IpAddr::from([0x2001, 0xdb8, index as u16, 0, 0, 0, 0, 1]);
                limiter.check(v6, Timestamp::from_millis(round * 10));
            }
        }
    });
    assert_eq!(allocations, 0);
    assert_eq!(limiter.len(), 64);
    assert!(limiter.stats().evicted > 7000);
}
