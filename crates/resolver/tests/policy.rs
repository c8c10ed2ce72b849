//! The order of query policy in the engine: ACL, then rate limit, then
//! local data, then the blocklist, then the cache and upstreams; and the
//! counters of each action.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use heimdall_cache::Timestamp;
use heimdall_policy::{
    AclAction, AclBuilder, BlocklistBuilder, Cidr, ListFormat, RateLimitAction, RateLimitConfig,
};
use heimdall_resolver::{
    ClientId, PolicyConfig, QueryOutcome, Resolver, ResolverConfig, ResolverStats, Transport,
    Upstream,
};
use heimdall_wire::{Message, Rcode, RecordType};
use heimdall_zone::{LocalData, parse_record_line};

use common::a_query;

const UPSTREAM: &str = "127.0.0.1:5399";

fn client(ip: [u8; 4], transport: Transport) -> ClientId {
    ClientId {
        addr: SocketAddr::from((ip, 40000)),
        transport,
        listener: 0,
    }
}

/// Local data with `printer.lan` and the builtins; a blocklist that
/// blocks `lan` (so local data must win) and `blocked.test`; an ACL that
/// denies 10.9.0.0/16 with `acl_action`; a limiter with `burst` and no
/// refill.
fn resolver(acl_action: AclAction, burst: u32, action: RateLimitAction) -> Resolver {
    let local = LocalData::builder()
        .records([parse_record_line("printer.lan. 300 IN A 192.168.1.5", None, 300).unwrap()])
        .builtins(true)
        .build()
        .unwrap();
    let mut list = BlocklistBuilder::new();
    list.add_list("lan\nblocked.test\n", ListFormat::Domains);
    let acl = AclBuilder::new()
        .deny("10.9.0.0/16".parse::<Cidr>().unwrap())
        .action(acl_action)
        .build();
    let config = ResolverConfig {
        upstreams: vec![Upstream::udp(UPSTREAM.parse().unwrap())],
        policy: PolicyConfig {
            acl: Some(acl),
            rate_limit: Some((
                RateLimitConfig {
                    rate_per_sec: 0,
                    burst,
                    action,
                    ..RateLimitConfig::default()
                },
                1,
            )),
            local: Some(Arc::new(local)),
            blocklist: Some(Arc::new(list.build())),
            ..PolicyConfig::default()
        },
        dnssec: heimdall_resolver::DnssecConfig::off(),
        ..ResolverConfig::default()
    };
    Resolver::with_seed(config, 7).unwrap()
}

fn ask(resolver: &mut Resolver, name: &str, from: ClientId, out: &mut [u8]) -> QueryOutcome {
    resolver.handle_query(&a_query(name, 1), &from, Timestamp::from_secs(1), out)
}

fn rcode(out: &[u8], outcome: QueryOutcome) -> (Rcode, bool, bool) {
    let QueryOutcome::Reply(len) = outcome else {
        panic!("no reply: {outcome:?}");
    };
    let message = Message::parse(&out[..len]).unwrap();
    let flags = message.flags();
    (message.rcode(), flags.authoritative(), flags.truncated())
}

const LAN: [u8; 4] = [192, 168, 1, 9];
const DENIED: [u8; 4] = [10, 9, 1, 1];

#[test]
fn acl_comes_first() {
    let mut out = vec![0u8; 4096];
    let mut r = resolver(AclAction::Refuse, 100, RateLimitAction::Drop);
    let outcome = ask(
        &mut r,
        "printer.lan",
        client(DENIED, Transport::Udp),
        &mut out,
    );
    assert_eq!(rcode(&out, outcome).0, Rcode::REFUSED);
    let mut r2 = resolver(AclAction::Drop, 100, RateLimitAction::Drop);
    let outcome = ask(
        &mut r2,
        "printer.lan",
        client(DENIED, Transport::Udp),
        &mut out,
    );
    assert_eq!(outcome, QueryOutcome::Dropped);
    // Refused by the ACL, but still counted: transport, qtype, rcode.
    let mut expected = ResolverStats {
        queries: 1,
        queries_udp: 1,
        acl_refused: 1,
        ..ResolverStats::default()
    };
    expected.qtypes.record(RecordType::A.0);
    expected.responses_by_rcode[usize::from(Rcode::REFUSED.0)] = 1;
    assert_eq!(*r.stats(), expected);
    assert_eq!(r2.stats().acl_dropped, 1);
    assert_eq!(r2.stats().local_answers, 0);
}

#[test]
fn rate_limit_comes_before_local_data() {
    let mut out = vec![0u8; 4096];
    let mut r = resolver(AclAction::Refuse, 1, RateLimitAction::Refused);
    let from = client(LAN, Transport::Udp);
    let first = ask(&mut r, "printer.lan", from, &mut out);
    assert_eq!(rcode(&out, first), (Rcode::NOERROR, true, false));
    let second = ask(&mut r, "printer.lan", from, &mut out);
    assert_eq!(rcode(&out, second).0, Rcode::REFUSED);
    assert_eq!(r.stats().local_answers, 1);
    assert_eq!(r.stats().rate_limited_refused, 1);

    let mut r = resolver(AclAction::Refuse, 1, RateLimitAction::Drop);
    ask(&mut r, "localhost", from, &mut out);
    assert_eq!(
        ask(&mut r, "localhost", from, &mut out),
        QueryOutcome::Dropped
    );
    assert_eq!(r.stats().rate_limited_dropped, 1);
}

#[test]
fn truncate_applies_to_udp_only() {
    let mut out = vec![0u8; 4096];
    let mut r = resolver(AclAction::Refuse, 1, RateLimitAction::Truncate);
    let udp = client(LAN, Transport::Udp);
    ask(&mut r, "localhost", udp, &mut out);
    let limited = ask(&mut r, "localhost", udp, &mut out);
    assert_eq!(rcode(&out, limited), (Rcode::NOERROR, false, true));
    assert_eq!(r.stats().rate_limited_truncated, 1);
    // Over TCP the same client is served: TC means nothing there.
    let tcp = client(LAN, Transport::Tcp(3));
    let served = ask(&mut r, "localhost", tcp, &mut out);
    assert_eq!(rcode(&out, served), (Rcode::NOERROR, true, false));
    assert_eq!(r.stats().rate_limited_truncated, 1);
    assert_eq!(r.stats().local_answers, 2);
}

#[test]
fn local_data_beats_the_blocklist_which_beats_the_cache() {
    let mut out = vec![0u8; 4096];
    let mut r = resolver(AclAction::Refuse, 100, RateLimitAction::Drop);
    let from = client(LAN, Transport::Udp);
    // `lan` is blocked, but printer.lan is local data.
    let local = ask(&mut r, "printer.lan", from, &mut out);
    assert_eq!(rcode(&out, local), (Rcode::NOERROR, true, false));
    // Another name under `lan` is blocked.
    let blocked = ask(&mut r, "other.lan", from, &mut out);
    assert_eq!(rcode(&out, blocked).0, Rcode::NXDOMAIN);
    let blocked = ask(&mut r, "www.Blocked.TEST", from, &mut out);
    assert_eq!(rcode(&out, blocked).0, Rcode::NXDOMAIN);
    // Nothing reached the cache or the upstreams.
    assert!(r.poll_transmit(&mut out).is_none());
    assert_eq!(r.stats().cache_misses, 0);
    assert_eq!(r.stats().blocked, 2);
    assert_eq!(r.stats().local_answers, 1);
    // Anything else is forwarded.
    let other = ask(&mut r, "example.com", from, &mut out);
    assert_eq!(other, QueryOutcome::Pending);
    assert_eq!(r.stats().cache_misses, 1);
}
