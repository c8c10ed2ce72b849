//! Unit tests: list formats, matching, replies (cross-checked with
//! hickory-proto), the ACL matrix and rate limiting with a fake clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::net::IpAddr;

use heimdall_cache::Timestamp;
use heimdall_wire::{
    Class, Flags, Message, MessageBuilder, NameBuf, OptSpec, RData, Rcode, RecordType, Section, ede,
};
use hickory_proto::op::{Message as HMessage, MessageType};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption as HOption};

use heimdall_testkit::messages::name;

use crate::*;

fn verdict(list: &Blocklist, text: &str) -> Verdict {
    list.check(&name(text).as_name())
}

fn build(text: &str, format: ListFormat) -> (Blocklist, ListStats) {
    let mut builder = BlocklistBuilder::new();
    let stats = builder.add_list(text, format);
    (builder.build(), stats)
}

// ---------------------------------------------------------------- lists

#[test]
fn hosts_file() {
    let text = "\
# a hosts file
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
0.0.0.0 0.0.0.0

0.0.0.0 ads.example.com tracker.example.net # inline comment
127.0.0.1\tmetrics.example.org
::1 v6.example
0.0.0.0 ADS.example.com
192.168.1.10 printer.lan
0.0.0.0
0.0.0.0 bad..name good.example
garbage line here
";
    let (list, stats) = build(text, ListFormat::Hosts);
    assert_eq!(
        stats,
        ListStats {
            lines: 13,
            blocked: 5,
            allowed: 0,
            duplicates: 1,
            // comment, localhost x2, ip6-* x2, 0.0.0.0 name, blank
            ignored: 7,
            // printer line, address without names, bad..name, garbage
            skipped: 4,
        }
    );
    for blocked in [
        "ads.example.com",
        "tracker.example.net",
        "metrics.example.org",
        "v6.example",
        "good.example",
    ] {
        assert_eq!(verdict(&list, blocked), Verdict::Blocked, "{blocked}");
    }
    for pass in ["localhost", "printer.lan", "example.com", "ip6-localhost"] {
        assert_eq!(verdict(&list, pass), Verdict::Pass, "{pass}");
    }
    assert_eq!(list.blocked_len(), 5);
}

#[test]
fn domain_list() {
    let text = "\
# domains
ads.example.com
Tracker.Example.NET.
  spaced.example  
two words.example
bad_label.example
-x.example
ex*mple.com
a..b

doubleclick.net # comment
";
    let (list, stats) = build(text, ListFormat::Domains);
    assert_eq!(stats.lines, 11);
    assert_eq!(stats.blocked, 6);
    assert_eq!(stats.ignored, 2);
    assert_eq!(stats.skipped, 3, "two words, the wildcard, the empty label");
    assert_eq!(verdict(&list, "tracker.example.net"), Verdict::Blocked);
    assert_eq!(verdict(&list, "spaced.example"), Verdict::Blocked);
    assert_eq!(verdict(&list, "bad_label.example"), Verdict::Blocked);
    assert_eq!(verdict(&list, "www.doubleclick.net"), Verdict::Blocked);
    assert_eq!(verdict(&list, "words.example"), Verdict::Pass);
}

#[test]
fn adblock_list() {
    let text = "\
[Adblock Plus 2.0]
! Title: test
||ads.example.com^
||tracker.example.net^$third-party
||important.example^$important,dnstype=A
||pipe.example^|
||nocaret.example
@@||ok.ads.example.com^
@@||allowed.example^$important
example.com##.banner
/banner/*
||path.example^/ads
||*.wild.example^
|http://full.example/
||bad..example^

# hash comment
";
    let (list, stats) = build(text, ListFormat::Adblock);
    assert_eq!(stats.lines, 17);
    assert_eq!(stats.blocked, 5);
    assert_eq!(stats.allowed, 2);
    assert_eq!(stats.ignored, 4);
    assert_eq!(stats.skipped, 6);
    assert_eq!(list.allowed_len(), 2);
    assert_eq!(verdict(&list, "x.ads.example.com"), Verdict::Blocked);
    assert_eq!(verdict(&list, "ok.ads.example.com"), Verdict::Allowed);
    assert_eq!(verdict(&list, "deep.ok.ads.example.com"), Verdict::Allowed);
    assert_eq!(verdict(&list, "tracker.example.net"), Verdict::Blocked);
    assert_eq!(verdict(&list, "important.example"), Verdict::Blocked);
    assert_eq!(verdict(&list, "pipe.example"), Verdict::Blocked);
    assert_eq!(verdict(&list, "nocaret.example"), Verdict::Blocked);
    assert_eq!(verdict(&list, "allowed.example"), Verdict::Pass);
    assert_eq!(verdict(&list, "path.example"), Verdict::Pass);
}

#[test]
fn auto_format_mixes_lines() {
    let text = "0.0.0.0 hosts.example\nplain.example\n||adblock.example^\n! note\nnot a name\n";
    let (list, stats) = build(text, ListFormat::Auto);
    assert_eq!((stats.blocked, stats.ignored, stats.skipped), (3, 1, 1));
    for blocked in ["hosts.example", "plain.example", "adblock.example"] {
        assert_eq!(verdict(&list, blocked), Verdict::Blocked);
    }
}

#[test]
fn subdomains_match_and_siblings_do_not() {
    let mut builder = BlocklistBuilder::new();
    assert!(builder.block("ads.example"));
    assert!(!builder.block("ADS.example."), "duplicate");
    assert!(!builder.block("bad name"));
    let list = builder.build();
    assert_eq!(verdict(&list, "ads.example"), Verdict::Blocked);
    assert_eq!(verdict(&list, "AdS.ExAmPlE"), Verdict::Blocked);
    assert_eq!(verdict(&list, "a.b.c.ads.example"), Verdict::Blocked);
    assert_eq!(verdict(&list, "example"), Verdict::Pass);
    assert_eq!(verdict(&list, "bads.example"), Verdict::Pass);
    assert_eq!(verdict(&list, "ads.example.com"), Verdict::Pass);
    assert_eq!(verdict(&list, "ads"), Verdict::Pass);
    assert_eq!(verdict(&list, "."), Verdict::Pass);
}

#[test]
fn allowlist_overrides() {
    let mut builder = BlocklistBuilder::new();
    builder.add_list("example.com\nads.other.example\n", ListFormat::Domains);
    let stats = builder.add_allowlist("safe.example.com\n# comment\nnot valid\n");
    assert_eq!((stats.allowed, stats.ignored, stats.skipped), (1, 1, 1));
    builder.allow("unrelated.example");
    let list = builder.build();
    assert_eq!(verdict(&list, "example.com"), Verdict::Blocked);
    assert_eq!(verdict(&list, "other.example.com"), Verdict::Blocked);
    assert_eq!(verdict(&list, "safe.example.com"), Verdict::Allowed);
    assert_eq!(verdict(&list, "a.safe.example.com"), Verdict::Allowed);
    assert_eq!(verdict(&list, "unrelated.example"), Verdict::Pass);
    assert_eq!(list.stats().allowed, 1);
    assert_eq!(list.stats().blocked, 2);
}

#[test]
fn name_limits() {
    let mut builder = BlocklistBuilder::new();
    assert!(builder.block(&"a".repeat(63)));
    assert!(!builder.block(&"a".repeat(64)));
    let long = ["abcdefghi"; 25].join(".");
    assert_eq!(long.len(), 249);
    assert!(builder.block(&long), "251 wire bytes");
    let too_long = ["abcdefghi"; 26].join(".");
    assert!(!builder.block(&too_long));
    assert!(!builder.block(""));
    assert!(!builder.block("."));
    let list = builder.build();
    assert_eq!(verdict(&list, &long), Verdict::Blocked);
}

#[test]
fn many_names_survive_rehashing() {
    let mut builder = BlocklistBuilder::new();
    for index in 0..5000 {
        assert!(builder.block(&format!("host{index}.zone{}.example", index % 7)));
    }
    let list = builder.build();
    for index in 0..5000 {
        let host = format!("www.host{index}.zone{}.example", index % 7);
        assert_eq!(verdict(&list, &host), Verdict::Blocked);
        let miss = format!("host{index}.zone{}.example", (index + 1) % 7);
        assert_eq!(verdict(&list, &miss), Verdict::Pass);
    }
    assert!(list.memory_bytes() > 0);
}

#[test]
fn shared_types_are_send_and_sync() {
    fn shared<T: Send + Sync>() {}
    shared::<Blocklist>();
    shared::<Acl>();
    shared::<RateLimiter>();
    assert_eq!(
        Blocklist::empty().check(&name("x.example").as_name()),
        Verdict::Pass
    );
}

// ---------------------------------------------------------------- replies

struct Query {
    bytes: Vec<u8>,
    name: &'static str,
    qtype: RecordType,
    edns: Option<bool>,
    flags: Flags,
}

fn query(qname: &'static str, qtype: RecordType, edns: Option<bool>, cd: bool) -> Query {
    let mut buf = [0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(0xbeef);
    let flags = Flags::default()
        .with_recursion_desired(true)
        .with_checking_disabled(cd);
    builder.set_flags(flags);
    builder
        .question(&name(qname).as_name(), qtype, Class::IN)
        .unwrap();
    if let Some(dnssec_ok) = edns {
        builder
            .opt(&OptSpec {
                udp_payload_size: 4096,
                extended_rcode: 0,
                version: 0,
                dnssec_ok,
                options: &[],
            })
            .unwrap();
    }
    let len = builder.finish();
    Query {
        bytes: buf[..len].to_vec(),
        name: qname,
        qtype,
        edns,
        flags,
    }
}

/// Check `reply` field by field with heimdall-wire and again with
/// hickory-proto; returns hickory's view.
fn check_reply(reply: &[u8], query: &Query, rcode: Rcode, tc: bool, ede: Option<u16>) -> HMessage {
    let ours = Message::parse(reply).unwrap();
    let flags = ours.flags();
    assert_eq!(ours.id(), 0xbeef);
    assert!(flags.response());
    assert_eq!(flags.opcode(), query.flags.opcode());
    assert!(!flags.authoritative());
    assert_eq!(flags.truncated(), tc);
    assert!(flags.recursion_desired());
    assert!(flags.recursion_available());
    assert!(!flags.authentic_data());
    assert_eq!(flags.checking_disabled(), query.flags.checking_disabled());
    assert_eq!(ours.rcode(), rcode);
    let question = ours.question().unwrap();
    assert_eq!(
        NameBuf::from_name(&question.name).as_wire(),
        name(query.name).as_wire(),
        "the client's letter case"
    );
    assert_eq!(question.qtype, query.qtype);
    assert_eq!(question.qclass, Class::IN);
    assert_eq!(ours.authorities().count(), 0);

    let theirs = HMessage::from_vec(reply).unwrap();
    let meta = &theirs.metadata;
    assert_eq!(meta.id, 0xbeef);
    assert_eq!(meta.message_type, MessageType::Response);
    assert!(!meta.authoritative);
    assert_eq!(meta.truncation, tc);
    assert!(meta.recursion_desired && meta.recursion_available);
    assert_eq!(meta.checking_disabled, query.flags.checking_disabled());
    assert_eq!(u16::from(meta.response_code), rcode.0);
    assert_eq!(theirs.queries.len(), 1);
    assert_eq!(
        theirs.queries[0].name.to_ascii(),
        format!("{}.", query.name)
    );
    assert_eq!(u16::from(theirs.queries[0].query_type), query.qtype.0);
    assert_eq!(theirs.answers.len(), ours.answers().count());
    match (ours.opt(), &theirs.edns, query.edns) {
        (None, None, None) => {}
        (Some(opt), Some(edns), Some(dnssec_ok)) => {
            assert_eq!(opt.udp_payload_size(), 1232);
            assert_eq!(edns.max_payload(), 1232);
            assert_eq!(opt.dnssec_ok(), dnssec_ok);
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok);
            assert_eq!(opt.version(), 0);
            let options: Vec<_> = opt.options().collect();
            match ede {
                Some(code) => {
                    assert_eq!(options.len(), 1);
                    assert_eq!(options[0].code, 15);
                    assert_eq!(options[0].data, code.to_be_bytes());
                    let theirs = edns.option(EdnsCode::Unknown(15));
                    assert_eq!(
                        theirs,
                        Some(&HOption::Unknown(15, code.to_be_bytes().to_vec()))
                    );
                }
                None => assert!(options.is_empty()),
            }
        }
        other => panic!("EDNS mismatch: {other:?}"),
    }
    theirs
}

fn blocked(query: &Query, mode: BlockMode) -> Vec<u8> {
    let parsed = Message::parse(&query.bytes).unwrap();
    let mut buf = [0u8; 512];
    let len = write_blocked(&parsed, mode, 60, 1232, &mut buf).unwrap();
    buf[..len].to_vec()
}

#[test]
fn nxdomain_mode() {
    for (edns, cd) in [(None, false), (Some(false), true), (Some(true), false)] {
        let query = query("Ads.ExAmple.COM", RecordType::A, edns, cd);
        let reply = blocked(&query, BlockMode::Nxdomain);
        let ede = edns.map(|_| ede::BLOCKED);
        let theirs = check_reply(&reply, &query, Rcode::NXDOMAIN, false, ede);
        assert!(theirs.answers.is_empty());
    }
}

#[test]
fn null_mode_answers_unspecified_addresses() {
    for (qtype, address) in [
        (RecordType::A, "0.0.0.0".parse::<IpAddr>().unwrap()),
        (RecordType::AAAA, "::".parse().unwrap()),
    ] {
        for edns in [None, Some(true)] {
            let query = query("Tracker.Example", qtype, edns, false);
            let reply = blocked(&query, BlockMode::Null);
            let theirs = check_reply(
                &reply,
                &query,
                Rcode::NOERROR,
                false,
                edns.map(|_| ede::BLOCKED),
            );
            let ours = Message::parse(&reply).unwrap();
            let answers: Vec<_> = ours.answers().collect();
            assert_eq!(answers.len(), 1);
            assert_eq!(answers[0].rtype(), qtype);
            assert_eq!(answers[0].class(), Class::IN);
            assert_eq!(answers[0].ttl(), 60);
            assert!(
                answers[0]
                    .name()
                    .eq_exact(&name("Tracker.Example").as_name())
            );
            match answers[0].rdata().unwrap() {
                RData::A(a) => assert_eq!(IpAddr::V4(a), address),
                RData::Aaaa(aaaa) => assert_eq!(IpAddr::V6(aaaa), address),
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(theirs.answers[0].ttl, 60);
            assert_eq!(theirs.answers[0].data.ip_addr(), Some(address));
        }
    }
}

#[test]
fn null_mode_is_nodata_for_other_types() {
    for qtype in [RecordType::MX, RecordType::TXT, RecordType::HTTPS] {
        let query = query("tracker.example", qtype, Some(false), false);
        let reply = blocked(&query, BlockMode::Null);
        let theirs = check_reply(&reply, &query, Rcode::NOERROR, false, Some(ede::BLOCKED));
        assert!(theirs.answers.is_empty());
    }
}

#[test]
fn refused_mode_and_refused_replies() {
    let query_edns = query("x.example", RecordType::A, Some(false), true);
    let reply = blocked(&query_edns, BlockMode::Refused);
    check_reply(
        &reply,
        &query_edns,
        Rcode::REFUSED,
        false,
        Some(ede::BLOCKED),
    );

    let parsed = Message::parse(&query_edns.bytes).unwrap();
    let mut buf = [0u8; 512];
    let len = write_refused(&parsed, Some(ede::PROHIBITED), 1232, &mut buf).unwrap();
    check_reply(
        &buf[..len],
        &query_edns,
        Rcode::REFUSED,
        false,
        Some(ede::PROHIBITED),
    );
    let len = write_refused(&parsed, None, 1232, &mut buf).unwrap();
    check_reply(&buf[..len], &query_edns, Rcode::REFUSED, false, None);

    let plain = query("x.example", RecordType::A, None, false);
    let parsed = Message::parse(&plain.bytes).unwrap();
    let len = write_refused(&parsed, Some(ede::PROHIBITED), 1232, &mut buf).unwrap();
    check_reply(&buf[..len], &plain, Rcode::REFUSED, false, None);
}

#[test]
fn truncated_reply() {
    for edns in [None, Some(true)] {
        let query = query("Busy.Example", RecordType::AAAA, edns, false);
        let parsed = Message::parse(&query.bytes).unwrap();
        let mut buf = [0u8; 512];
        let len = write_truncated(&parsed, 1232, &mut buf).unwrap();
        let theirs = check_reply(&buf[..len], &query, Rcode::NOERROR, true, None);
        assert!(theirs.answers.is_empty());
    }
}

#[test]
fn reply_errors() {
    let mut buf = [0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(1);
    let len = builder.finish();
    let empty = buf[..len].to_vec();
    let parsed = Message::parse(&empty).unwrap();
    let mut out = [0u8; 512];
    assert_eq!(
        write_blocked(&parsed, BlockMode::Nxdomain, 60, 1232, &mut out),
        Err(PolicyError::NoQuestion)
    );
    let query = query("x.example", RecordType::A, Some(false), false);
    let parsed = Message::parse(&query.bytes).unwrap();
    let mut tiny = [0u8; 20];
    assert!(matches!(
        write_blocked(&parsed, BlockMode::Null, 60, 1232, &mut tiny),
        Err(PolicyError::Wire(_))
    ));
    let _unused = Section::Answer;
}

// ---------------------------------------------------------------- ACL

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn cidr_parsing() {
    let cidr: Cidr = "10.1.2.3/8".parse().unwrap();
    assert_eq!(cidr.to_string(), "10.0.0.0/8");
    assert!(cidr.is_ipv4());
    assert_eq!(cidr.prefix_len(), 8);
    assert_eq!(
        "2001:db8::1/32".parse::<Cidr>().unwrap().to_string(),
        "2001:db8::/32"
    );
    assert_eq!(
        "192.0.2.7".parse::<Cidr>().unwrap().to_string(),
        "192.0.2.7/32"
    );
    assert_eq!(
        "2001:db8::7".parse::<Cidr>().unwrap().to_string(),
        "2001:db8::7/128"
    );
    assert_eq!(
        "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
        "0.0.0.0/0"
    );
    assert_eq!("::/0".parse::<Cidr>().unwrap().to_string(), "::/0");
    assert_eq!(
        "::ffff:192.0.2.0/120".parse::<Cidr>().unwrap().to_string(),
        "192.0.2.0/24"
    );
    for bad in [
        "10.0.0.0/33",
        "2001:db8::/129",
        "example",
        "10.0.0.0/x",
        "",
        "10.0.0/8",
    ] {
        assert!(
            matches!(bad.parse::<Cidr>(), Err(PolicyError::BadCidr(_))),
            "{bad}"
        );
    }
    let v4_all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(v4_all.contains(ip("203.0.113.9")));
    assert!(v4_all.contains(ip("::ffff:203.0.113.9")));
    assert!(!v4_all.contains(ip("2001:db8::1")));
}

/// Addresses the default networks allow, and addresses they do not.
const DEFAULT_ALLOWS: &[&str] = &[
    "127.0.0.1",
    "127.255.0.9",
    "10.20.30.40",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "100.64.0.1",
    "100.127.255.254",
    "169.254.1.1",
    "::1",
    "fe80::1",
    "febf::1",
    "fc00::1",
    "fd12:3456::1",
    "::ffff:10.0.0.1",
    "::ffff:127.0.0.1",
];
const DEFAULT_REFUSES: &[&str] = &[
    "8.8.8.8",
    "172.32.0.1",
    "172.15.255.255",
    "100.128.0.1",
    "192.169.0.1",
    "2001:db8::1",
    "fec0::1",
    "::ffff:8.8.8.8",
    "::",
    "0.0.0.0",
];

#[test]
fn acl_defaults() {
    // Nine networks: a table short enough to be compared entry by entry.
    let acl = Acl::default();
    for allowed in DEFAULT_ALLOWS {
        assert_eq!(acl.check(ip(allowed)), AclDecision::Allow, "{allowed}");
    }
    for refused in DEFAULT_REFUSES {
        assert_eq!(acl.check(ip(refused)), AclDecision::Refuse, "{refused}");
    }
}

#[test]
fn acl_defaults_in_a_long_list() {
    // The defaults and eight more hosts: searched by prefix length.
    let hosts: Vec<String> = (1..=8).map(|host| format!("198.51.100.{host}")).collect();
    let acl = AclBuilder::new()
        .allow_all(hosts.iter().map(String::as_str))
        .unwrap()
        .build();
    for allowed in DEFAULT_ALLOWS.iter().chain(&["198.51.100.8"]) {
        assert_eq!(acl.check(ip(allowed)), AclDecision::Allow, "{allowed}");
    }
    for refused in DEFAULT_REFUSES.iter().chain(&["198.51.100.9"]) {
        assert_eq!(acl.check(ip(refused)), AclDecision::Refuse, "{refused}");
    }
}

#[test]
fn acl_allow_deny_open() {
    let acl = AclBuilder::new()
        .allow_all(["203.0.113.0/24", "2001:db8::/32"])
        .unwrap()
        .deny_all([
            "203.0.113.128/25",
            "10.9.0.0/16",
            "2001:db8:bad::/48",
            "192.0.2.1",
        ])
        .unwrap()
        .action(AclAction::Drop)
        .build();
    assert_eq!(acl.check(ip("203.0.113.1")), AclDecision::Allow);
    assert_eq!(acl.check(ip("::ffff:203.0.113.1")), AclDecision::Allow);
    assert_eq!(acl.check(ip("203.0.113.200")), AclDecision::Drop);
    assert_eq!(acl.check(ip("::ffff:203.0.113.200")), AclDecision::Drop);
    assert_eq!(
        acl.check(ip("10.9.1.1")),
        AclDecision::Drop,
        "deny beats the defaults"
    );
    assert_eq!(acl.check(ip("10.8.1.1")), AclDecision::Allow);
    assert_eq!(acl.check(ip("2001:db8:1::1")), AclDecision::Allow);
    assert_eq!(acl.check(ip("2001:db8:bad::1")), AclDecision::Drop);
    assert_eq!(acl.check(ip("2001:db9::1")), AclDecision::Drop);
    assert_eq!(acl.check(ip("8.8.8.8")), AclDecision::Drop);

    let no_defaults = AclBuilder::new()
        .allow("198.51.100.0/24".parse().unwrap())
        .default_networks(false)
        .build();
    assert_eq!(no_defaults.check(ip("127.0.0.1")), AclDecision::Refuse);
    assert_eq!(no_defaults.check(ip("198.51.100.5")), AclDecision::Allow);

    let open = AclBuilder::new()
        .open_resolver(true)
        .deny("192.0.2.0/24".parse().unwrap())
        .deny("2001:db8::/32".parse().unwrap())
        .build();
    assert_eq!(open.check(ip("8.8.8.8")), AclDecision::Allow);
    assert_eq!(open.check(ip("2606:4700::1111")), AclDecision::Allow);
    assert_eq!(open.check(ip("192.0.2.77")), AclDecision::Refuse);
    assert_eq!(open.check(ip("::ffff:192.0.2.77")), AclDecision::Refuse);
    assert_eq!(open.check(ip("2001:db8::53")), AclDecision::Refuse);
}

#[test]
fn acl_many_entries() {
    let mut builder = AclBuilder::new().default_networks(false);
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
    for index in 0..100u32 {
        let client = ip(&format!("198.{}.{}.1", index % 256, index * 2 % 256));
        assert_eq!(acl.check(client), AclDecision::Allow);
    }
    assert_eq!(acl.check(ip("199.0.0.1")), AclDecision::Refuse);
}

// ---------------------------------------------------------------- rate limiting

fn config(rate: u32, burst: u32, action: RateLimitAction) -> RateLimitConfig {
    RateLimitConfig {
        rate_per_sec: rate,
        burst,
        capacity: 16,
        action,
        ..RateLimitConfig::default()
    }
}

fn allowed_count(limiter: &mut RateLimiter, client: &str, at_ms: u64, tries: u32) -> u32 {
    (0..tries)
        .filter(|_| limiter.check(ip(client), Timestamp::from_millis(at_ms)) == RateDecision::Allow)
        .count() as u32
}

#[test]
fn burst_then_refill() {
    let mut limiter = RateLimiter::new(&config(10, 5, RateLimitAction::Drop), 1).unwrap();
    assert_eq!(
        allowed_count(&mut limiter, "192.0.2.1", 0, 20),
        5,
        "the burst"
    );
    assert_eq!(
        allowed_count(&mut limiter, "192.0.2.1", 50, 5),
        0,
        "half a token"
    );
    assert_eq!(
        allowed_count(&mut limiter, "192.0.2.1", 100, 5),
        1,
        "one token per 100 ms"
    );
    assert_eq!(allowed_count(&mut limiter, "192.0.2.1", 350, 5), 2);
    assert_eq!(
        allowed_count(&mut limiter, "192.0.2.1", 60_000, 20),
        5,
        "refill caps at burst"
    );
    // A clock that goes backwards refills nothing and does not panic.
    assert_eq!(allowed_count(&mut limiter, "192.0.2.1", 10, 5), 0);
    let stats = limiter.stats();
    assert_eq!(stats.allowed, 13);
    assert_eq!(stats.dropped, 60 - 13);
    assert_eq!((stats.refused, stats.truncated, stats.evicted), (0, 0, 0));
}

#[test]
fn per_core_share() {
    // 40 q/s and burst 8 over 4 cores: 10 q/s and 2 per core.
    let mut limiter = RateLimiter::new(&config(40, 8, RateLimitAction::Drop), 4).unwrap();
    assert_eq!(allowed_count(&mut limiter, "192.0.2.1", 0, 10), 2);
    assert_eq!(allowed_count(&mut limiter, "192.0.2.1", 100, 10), 1);
    // A burst below the core count still lets one query through.
    let mut tiny = RateLimiter::new(&config(1, 1, RateLimitAction::Drop), 8).unwrap();
    assert_eq!(allowed_count(&mut tiny, "192.0.2.1", 0, 5), 1);
    // 1 q/s over 8 cores: one token per 8 s on this core.
    assert_eq!(allowed_count(&mut tiny, "192.0.2.1", 7_999, 5), 0);
    assert_eq!(allowed_count(&mut tiny, "192.0.2.1", 8_000, 5), 1);
}

#[test]
fn prefixes_are_isolated() {
    let mut limiter = RateLimiter::new(&config(1, 2, RateLimitAction::Refused), 1).unwrap();
    assert_eq!(allowed_count(&mut limiter, "192.0.2.1", 0, 5), 2);
    // Same /24: shares the bucket.
    assert_eq!(allowed_count(&mut limiter, "192.0.2.200", 0, 5), 0);
    assert_eq!(
        allowed_count(&mut limiter, "::ffff:192.0.2.9", 0, 5),
        0,
        "mapped is IPv4"
    );
    // Another /24 has its own.
    assert_eq!(allowed_count(&mut limiter, "192.0.3.1", 0, 5), 2);
    // IPv6 /56.
    assert_eq!(allowed_count(&mut limiter, "2001:db8:0:100::1", 0, 5), 2);
    assert_eq!(
        allowed_count(&mut limiter, "2001:db8:0:1ff::2", 0, 5),
        0,
        "same /56"
    );
    assert_eq!(
        allowed_count(&mut limiter, "2001:db8:0:200::1", 0, 5),
        2,
        "next /56"
    );
    assert_eq!(limiter.len(), 4);
    assert_eq!(limiter.stats().refused, 35 - 8);
}

#[test]
fn configurable_prefix_lengths() {
    let config = RateLimitConfig {
        ipv4_prefix: 32,
        ipv6_prefix: 64,
        ..config(1, 1, RateLimitAction::Drop)
    };
    let mut limiter = RateLimiter::new(&config, 1).unwrap();
    assert_eq!(allowed_count(&mut limiter, "192.0.2.1", 0, 3), 1);
    assert_eq!(allowed_count(&mut limiter, "192.0.2.2", 0, 3), 1);
    assert_eq!(allowed_count(&mut limiter, "2001:db8::1", 0, 3), 1);
    assert_eq!(allowed_count(&mut limiter, "2001:db8::2", 0, 3), 0);
    assert_eq!(allowed_count(&mut limiter, "2001:db8:0:1::2", 0, 3), 1);
}

#[test]
fn each_action_is_reported_and_counted() {
    for (action, field) in [
        (RateLimitAction::Drop, 0),
        (RateLimitAction::Refused, 1),
        (RateLimitAction::Truncate, 2),
    ] {
        let mut limiter = RateLimiter::new(&config(1, 1, action), 1).unwrap();
        let now = Timestamp::ZERO;
        assert_eq!(limiter.check(ip("198.51.100.1"), now), RateDecision::Allow);
        assert_eq!(
            limiter.check(ip("198.51.100.1"), now),
            RateDecision::Limit(action)
        );
        assert_eq!(
            limiter.check(ip("198.51.100.2"), now),
            RateDecision::Limit(action)
        );
        let stats = limiter.stats();
        let counts = [stats.dropped, stats.refused, stats.truncated];
        for (index, count) in counts.iter().enumerate() {
            assert_eq!(*count, if index == field { 2 } else { 0 });
        }
        assert_eq!(stats.allowed, 1);
    }
}

#[test]
fn eviction_under_a_full_table() {
    let config = RateLimitConfig {
        capacity: 4,
        ..config(1, 1, RateLimitAction::Drop)
    };
    let mut limiter = RateLimiter::new(&config, 1).unwrap();
    let now = Timestamp::ZERO;
    let client = |index: u32| IpAddr::from([10, 0, index as u8, 1]);
    for index in 0..4 {
        assert_eq!(limiter.check(client(index), now), RateDecision::Allow);
    }
    // Prefixes 0 and 2 are seen again: referenced.
    assert_ne!(limiter.check(client(0), now), RateDecision::Allow);
    assert_ne!(limiter.check(client(2), now), RateDecision::Allow);
    assert_eq!(limiter.len(), 4);
    // A new prefix evicts 1 (the first unreferenced one), not 0.
    assert_eq!(limiter.check(client(4), now), RateDecision::Allow);
    assert_eq!(limiter.len(), 4);
    assert_eq!(limiter.stats().evicted, 1);
    assert_ne!(
        limiter.check(client(0), now),
        RateDecision::Allow,
        "0 kept its empty bucket"
    );
    assert_ne!(limiter.check(client(2), now), RateDecision::Allow, "2 too");
    assert_ne!(limiter.check(client(3), now), RateDecision::Allow, "3 too");
    // 1 was evicted: it comes back with a full bucket (evicting another).
    assert_eq!(limiter.check(client(1), now), RateDecision::Allow);
    assert_eq!(limiter.stats().evicted, 2);
    // Churn through many prefixes: the table stays bounded.
    for index in 10..1000 {
        limiter.check(IpAddr::from([10, (index >> 8) as u8, index as u8, 1]), now);
    }
    assert_eq!(limiter.len(), 4);
    assert_eq!(limiter.stats().evicted, 2 + 990);
}

#[test]
fn rate_limit_config_errors() {
    let good = RateLimitConfig::default();
    assert!(RateLimiter::new(&good, 0).is_err());
    assert!(
        RateLimiter::new(
            &RateLimitConfig {
                capacity: 0,
                ..good
            },
            1
        )
        .is_err()
    );
    assert!(
        RateLimiter::new(
            &RateLimitConfig {
                ipv4_prefix: 33,
                ..good
            },
            1
        )
        .is_err()
    );
    assert!(
        RateLimiter::new(
            &RateLimitConfig {
                ipv6_prefix: 129,
                ..good
            },
            1
        )
        .is_err()
    );
    assert!(RateLimiter::new(&good, 2).unwrap().is_empty());
}
