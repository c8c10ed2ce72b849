#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
//! Criterion benchmarks for heimdall-policy: a blocklist lookup (miss and
//! hit) against 1,000,000 entries, writing a blocked reply, the ACL check
//! and the rate-limit check; making and checking a server cookie.

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_cache::Timestamp;
use heimdall_policy::{
    AclBuilder, BlockMode, Blocklist, BlocklistBuilder, ListFormat, RateLimitConfig, RateLimiter,
    SecretCache, ServerCookies, write_blocked,
};
use heimdall_wire::{Message, NameBuf};

/// 1,000,000 synthetic entries, as in the crate's load test.
fn million() -> Blocklist {
    let mut text = String::with_capacity(40_000_000);
    let tlds = ["com", "net", "org", "io", "example"];
    for index in 0..1_000_000usize {
        let tld = tlds.get(index % tlds.len()).unwrap();
        writeln!(text, "0.0.0.0 ads{index:x}.tracker{}.{tld}", index % 9973).unwrap();
    }
    let mut builder = BlocklistBuilder::new();
    builder.add_list(&text, ListFormat::Hosts);
    builder.build()
}

fn blocklist(c: &mut Criterion) {
    let list = million();
    // Four labels, none listed: five suffix probes.
    let miss = NameBuf::from_presentation("www.news.example.com").unwrap();
    // A subdomain of an entry (index 0x1234 = 4660).
    let hit = NameBuf::from_presentation("www.ads1234.tracker4660.com").unwrap();
    c.bench_function("policy/blocklist_miss", |b| {
        b.iter(|| black_box(list.check(&black_box(miss.as_name()))));
    });
    c.bench_function("policy/blocklist_hit", |b| {
        b.iter(|| black_box(list.check(&black_box(hit.as_name()))));
    });
    let query = heimdall_testkit::messages::query(
        "www.ads1234.tracker4660.com",
        heimdall_wire::RecordType::A,
        1,
        Some((1232, false)),
    );
    let mut out = [0u8; 512];
    c.bench_function("policy/lookup_and_write_blocked", |b| {
        b.iter(|| {
            let message = Message::parse(black_box(&query)).unwrap();
            let question = message.question().unwrap();
            black_box(list.check(&question.name));
            write_blocked(&message, BlockMode::Null, 60, 1232, &mut out).unwrap()
        });
    });
}

fn acl_and_rate(c: &mut Criterion) {
    let mut builder = AclBuilder::new();
    for index in 0..100u32 {
        let cidr = format!(
            "198.{}.{}.0/{}",
            index % 256,
            index * 2 % 256,
            16 + index % 9
        );
        builder = builder.allow(cidr.parse().unwrap());
    }
    let acl = builder.build();
    let client: IpAddr = "203.0.113.9".parse().unwrap();
    c.bench_function("policy/acl_check_100", |b| {
        b.iter(|| black_box(acl.check(black_box(client))));
    });
    // The default list alone, for a loopback client: what every query pays
    // on the hit path with the default configuration.
    let default_acl = AclBuilder::new().build();
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    c.bench_function("policy/acl_check_default", |b| {
        b.iter(|| black_box(default_acl.check(black_box(loopback))));
    });
    let mut limiter = RateLimiter::new(&RateLimitConfig::default(), 2).unwrap();
    let clients: Vec<IpAddr> = (0..4096u32)
        .map(|index| IpAddr::from([10, (index >> 8) as u8, index as u8, 1]))
        .collect();
    let mut next = 0usize;
    let mut now = 0u64;
    c.bench_function("policy/rate_limit_check", |b| {
        b.iter(|| {
            next = (next + 1) % clients.len();
            now += 1;
            let client = clients.get(next).copied().unwrap();
            black_box(limiter.check(client, Timestamp::from_millis(now)))
        });
    });
}

/// Server cookies (RFC 9018): making one, with the period secret derived
/// each time or taken from a warm [`SecretCache`], and checking one.
fn server_cookies(c: &mut Criterion) {
    let cookies = ServerCookies::new(*b"sixteen byte key", 86_400).unwrap();
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let now = 1_700_000_000u64;
    let client = *b"clientck";
    c.bench_function("policy/cookie_make_derived", |b| {
        b.iter(|| cookies.make(black_box(&client), ip, now))
    });
    let mut secrets = SecretCache::default();
    c.bench_function("policy/cookie_make_cached", |b| {
        b.iter(|| cookies.make_with(&mut secrets, black_box(&client), ip, now))
    });
    let cookie = cookies.make(&client, ip, now);
    c.bench_function("policy/cookie_verify_cached", |b| {
        b.iter(|| cookies.verify_with(&mut secrets, black_box(&client), &cookie, ip, now + 60))
    });
}

criterion_group!(benches, blocklist, acl_and_rate, server_cookies);
criterion_main!(benches);
