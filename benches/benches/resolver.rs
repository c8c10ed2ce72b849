//! Criterion benchmark of the resolver's whole per-query work on a cache
//! hit: header and message view, admission rules, key, lookup, and writing
//! the client's reply. This is everything a core does per query except the
//! system calls. The `_cookie` variants add server cookies (RFC 9018): a
//! fresh one made for a client cookie, or one checked and a fresh one
//! made. And the engine's part of a cache miss, with upstream DNS cookies
//! on and off: the miss, the upstream query written (with its COOKIE
//! option), the reply checked (with the cookie) and relayed.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_benches::typical_query;
use heimdall_cache::Timestamp;
use heimdall_policy::ServerCookies;
use heimdall_resolver::{
    ClientId, CookiePolicy, PolicyConfig, QueryOutcome, Resolver, ResolverConfig, Transport,
    Upstream,
};
use heimdall_testkit::messages::{a_answer, query_with_options};
use heimdall_wire::cookie::find_cookie;
use heimdall_wire::{Message, RecordType, edns};

/// A resolver with `cookies` whose cache holds the answer to
/// [`typical_query`], and the client and time to ask it at.
fn warm_resolver(cookies: Option<CookiePolicy>) -> (Resolver, ClientId, Timestamp) {
    let upstream: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let config = ResolverConfig {
        upstreams: vec![Upstream::udp(upstream)],
        policy: PolicyConfig {
            cookies,
            ..PolicyConfig::default()
        },
        // The synthetic answers are unsigned: validation would fail them.
        dnssec: heimdall_resolver::DnssecConfig::off(),
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
        resolver.handle_query(&query, &client, now, &mut out),
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
    (resolver, client, now.add_secs(5))
}

fn resolver_hit(c: &mut Criterion) {
    let (mut resolver, client, later) = warm_resolver(None);
    let query = typical_query();
    let mut out = [0u8; 4096];
    c.bench_function("resolver/cache_hit_handle_query", |b| {
        b.iter(|| {
            let outcome = resolver.handle_query(black_box(&query), &client, later, &mut out);
            black_box(outcome)
        })
    });
}

/// One miss round trip through the engine: the query (a miss, since the
/// upstream's TTL-0 answer is relayed, never cached), the upstream query
/// written, the reply checked (echoing the COOKIE option when `cookies`)
/// and the client's reply written; the attempt retired.
fn resolver_miss(c: &mut Criterion) {
    for cookies in [false, true] {
        let upstream: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        let config = ResolverConfig {
            upstreams: vec![Upstream::udp(upstream)],
            cookies,
            // The synthetic answers are unsigned: validation would fail them.
            dnssec: heimdall_resolver::DnssecConfig::off(),
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
        let mut reply = Vec::with_capacity(512);
        let name = if cookies {
            "resolver/miss_round_trip/cookies_on"
        } else {
            "resolver/miss_round_trip/cookies_off"
        };
        c.bench_function(name, |b| {
            b.iter(|| {
                let outcome = resolver.handle_query(black_box(&query), &client, now, &mut out);
                assert_eq!(outcome, QueryOutcome::Pending);
                let transmit = resolver.poll_transmit(&mut out).unwrap();
                let source = heimdall_resolver::ReplySource {
                    from: upstream,
                    transport: transmit.transport,
                    attempt: Some(transmit.attempt),
                };
                reply.clear();
                reply.extend_from_slice(&a_answer(&out[..transmit.len], 1, 0));
                if let Some(data) = cookie_option(&out[..transmit.len]) {
                    // The upstream echoes the option (client cookie, then
                    // a 16-byte server cookie), as BIND does.
                    echo_cookie(&mut reply, &data);
                }
                resolver.handle_upstream_reply(source, &reply, now);
                black_box(resolver.poll_reply(&mut out, now));
                black_box(resolver.poll_retired());
            })
        });
    }
}

/// The COOKIE option data of an upstream query, with a server cookie.
fn cookie_option(query: &[u8]) -> Option<Vec<u8>> {
    let message = heimdall_wire::Message::parse(query).ok()?;
    let option = message
        .opt()?
        .options()
        .find(|o| o.code == heimdall_wire::edns::COOKIE)?;
    let mut data = option.data[..8].to_vec();
    data.extend_from_slice(b"server-cookie-16");
    Some(data)
}

/// Add an OPT record with a COOKIE option of `data` to `reply` (which has
/// none).
fn echo_cookie(reply: &mut Vec<u8>, data: &[u8]) {
    reply[11] = 1;
    reply.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0]);
    reply.extend_from_slice(&(4 + data.len() as u16).to_be_bytes());
    reply.extend_from_slice(&heimdall_wire::edns::COOKIE.to_be_bytes());
    reply.extend_from_slice(&(data.len() as u16).to_be_bytes());
    reply.extend_from_slice(data);
}

/// The same hit with server cookies on: [`typical_query`] carries a client
/// cookie only (a fresh server cookie is made), and the same query with a
/// valid server cookie of ours (checked, then a fresh one made).
fn resolver_hit_with_cookies(c: &mut Criterion) {
    let unix_epoch_ms = 1_700_000_000_000;
    let cookies = ServerCookies::new(*b"sixteen byte key", 86_400).unwrap();
    let policy = CookiePolicy {
        cookies: cookies.clone(),
        unix_epoch_ms,
        udp_require: None,
    };
    let (mut resolver, client, later) = warm_resolver(Some(policy));
    let client_only = typical_query();
    let mut out = [0u8; 4096];
    c.bench_function("resolver/cache_hit_handle_query_client_cookie", |b| {
        b.iter(|| {
            let outcome = resolver.handle_query(black_box(&client_only), &client, later, &mut out);
            black_box(outcome)
        })
    });
    // The same query with our server cookie appended to its COOKIE option.
    let len = match resolver.handle_query(&client_only, &client, later, &mut out) {
        QueryOutcome::Reply(len) => len,
        other => panic!("{other:?}"),
    };
    let reply = Message::parse(&out[..len]).unwrap();
    let cookie = find_cookie(&reply.opt().unwrap()).unwrap().unwrap();
    let full = [&cookie.client()[..], cookie.server()].concat();
    let with_server = query_with_options(
        "www.Example.com",
        RecordType::A,
        0x1f2e,
        &[(edns::COOKIE, &full)],
    );
    c.bench_function("resolver/cache_hit_handle_query_valid_cookie", |b| {
        b.iter(|| {
            let outcome = resolver.handle_query(black_box(&with_server), &client, later, &mut out);
            black_box(outcome)
        })
    });
    assert!(resolver.stats().client_cookies_valid > 0);
}

criterion_group!(
    benches,
    resolver_hit,
    resolver_hit_with_cookies,
    resolver_miss
);
criterion_main!(benches);
