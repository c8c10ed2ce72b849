//! DNSSEC validation in the engine, sans-IO: the committed signed zone of
//! heimdall-dnssec (`crates/dnssec/tests/fixtures/example-nsec.signed`,
//! ECDSA P-256, NSEC, valid 2025-2045) is served by a fake authoritative
//! upstream, with the zone's DS as the trust anchor and the engine's clock
//! set inside the signatures' window. Checked: the DNSKEY sub-query (DO
//! and CD, coalesced, cached), AD only for clients that ask, RRSIGs only
//! for DO clients, NXDOMAIN proofs, bogus data as SERVFAIL with its EDE
//! (and from the cache without a new upstream query), expired signatures,
//! a failed sub-query, the CD bypass, and the counters.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::sync::Arc;

use heimdall_cache::Timestamp;
use heimdall_config::DnssecMode;
use heimdall_dnssec::TrustAnchors;
use heimdall_resolver::{DnssecConfig, QueryOutcome, Resolver, ResolverConfig, Transmit};
use heimdall_testkit::messages::query;
use heimdall_wire::{
    Class, Flags, Message, MessageBuilder, OptSpec, RData, Rcode, RecordType, Section, ede,
};
use heimdall_zone::{ZoneRecord, parse_zone};

use common::{UDP, UPSTREAM_A, addr, client, config, ede_codes, replies, src, transmits};

/// 2026-01-01 00:00:00 UTC, inside the fixture's window, in milliseconds.
const FIXED_UNIX_MS: u64 = 1_767_225_600_000;
/// 2046-01-01, after the fixture's signatures expired.
const LATE_UNIX_MS: u64 = 2_398_377_600_000;

fn fixture(file: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../dnssec/tests/fixtures/");
    std::fs::read_to_string(format!("{path}{file}")).unwrap()
}

/// The signed zone, served as an authoritative server would.
struct Zone {
    records: Vec<ZoneRecord>,
    /// Flip a byte of the A RDATA of this owner (lower case, absolute).
    tamper: Option<&'static str>,
    /// Serve the records of this owner (lower case, absolute), RRSIGs
    /// included, with TTL 0.
    zero_ttl: Option<&'static str>,
    /// Answer as an upstream that strips DNSSEC records: no RRSIG, NSEC
    /// or NSEC3, whatever the query's DO bit.
    strip: bool,
}

impl Zone {
    fn new() -> Self {
        Self::from_fixture("example-nsec.signed")
    }

    /// The same zone signed with NSEC3 (no salt, no extra iterations).
    fn nsec3() -> Self {
        Self::from_fixture("example-nsec3.signed")
    }

    fn from_fixture(file: &str) -> Self {
        let text = fixture(file);
        let records = parse_zone(&text, file, None, &mut |_| unreachable!()).unwrap();
        Self {
            records,
            tamper: None,
            zero_ttl: None,
            strip: false,
        }
    }

    fn owned_by<'z>(&'z self, name: &str) -> impl Iterator<Item = &'z ZoneRecord> + 'z {
        let name = name.to_ascii_lowercase();
        self.records
            .iter()
            .filter(move |record| record.owner.to_string().to_ascii_lowercase() == name)
    }

    fn covered(record: &ZoneRecord) -> RecordType {
        RecordType(u16::from_be_bytes([record.rdata[0], record.rdata[1]]))
    }

    /// The RRset of `name` and `rtype` with its RRSIGs.
    fn rrset(&self, name: &str, rtype: RecordType) -> Vec<&ZoneRecord> {
        self.owned_by(name)
            .filter(|r| {
                r.rtype == rtype || (r.rtype == RecordType::RRSIG && Self::covered(r) == rtype)
            })
            .collect()
    }

    /// The reply to the upstream query `bytes`.
    fn answer(&self, bytes: &[u8]) -> Vec<u8> {
        let query = Message::parse(bytes).unwrap();
        let question = query.question().unwrap();
        let qname = question.name.to_string();
        let dnssec_ok = query.opt().is_some_and(|opt| opt.dnssec_ok());
        let mut answer = self.rrset(&qname, question.qtype);
        let mut authority = Vec::new();
        let mut rcode = Rcode::NOERROR;
        if answer.is_empty() {
            authority = self.rrset("example.", RecordType::SOA);
            for record in &self.records {
                let denial = |rtype| rtype == RecordType::NSEC || rtype == RecordType::NSEC3;
                let nsec = denial(record.rtype)
                    || (record.rtype == RecordType::RRSIG && denial(Self::covered(record)));
                if nsec {
                    authority.push(record);
                }
            }
            if self.owned_by(&qname).next().is_none() {
                rcode = Rcode::NXDOMAIN;
            }
        }
        if !dnssec_ok || self.strip {
            answer.retain(|r| r.rtype != RecordType::RRSIG);
            authority.retain(|r| r.rtype == RecordType::SOA);
        }
        let mut buf = vec![0u8; 8192];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(query.id());
        builder.set_flags(
            Flags(Flags::QR | Flags::AA)
                .with_recursion_desired(query.flags().recursion_desired())
                .with_rcode(rcode),
        );
        builder
            .question(&question.name, question.qtype, question.qclass)
            .unwrap();
        for (section, records) in [(Section::Answer, &answer), (Section::Authority, &authority)] {
            for record in records.iter() {
                let mut rdata = record.rdata.clone();
                let owner = record.owner.to_string().to_ascii_lowercase();
                if record.rtype == RecordType::A && self.tamper == Some(owner.as_str()) {
                    rdata[3] ^= 0x80;
                }
                let ttl = if self.zero_ttl == Some(owner.as_str()) {
                    0
                } else {
                    record.ttl
                };
                builder
                    .record(
                        section,
                        &record.owner.as_name(),
                        record.rtype,
                        Class::IN,
                        ttl,
                        &RData::Unknown(&rdata),
                    )
                    .unwrap();
            }
        }
        builder
            .opt(&OptSpec {
                udp_payload_size: 1232,
                extended_rcode: 0,
                version: 0,
                dnssec_ok,
                options: &[],
            })
            .unwrap();
        let len = builder.finish();
        buf.truncate(len);
        buf
    }
}

fn validating(unix_epoch_ms: u64) -> Resolver {
    validating_with(unix_epoch_ms, false)
}

/// [`validating`], with `dnssec.aggressive_nsec` as given.
fn validating_with(unix_epoch_ms: u64, aggressive_nsec: bool) -> Resolver {
    Resolver::with_seed(validating_config(unix_epoch_ms, aggressive_nsec), 18).unwrap()
}

/// The settings of [`validating_with`].
fn validating_config(unix_epoch_ms: u64, aggressive_nsec: bool) -> ResolverConfig {
    let anchors = TrustAnchors::parse(&fixture("example-nsec.ds")).unwrap();
    ResolverConfig {
        dnssec: DnssecConfig {
            mode: DnssecMode::Validate,
            anchors: Arc::new(anchors),
            unix_epoch_ms,
            aggressive_nsec,
            ..DnssecConfig::default()
        },
        ..config(&[UPSTREAM_A])
    }
}

/// A query with EDNS; `flags`: (DO, AD, CD).
fn ask(name: &str, qtype: RecordType, id: u16, flags: (bool, bool, bool)) -> Vec<u8> {
    let mut bytes = query(name, qtype, id, Some((1232, flags.0)));
    if flags.1 {
        bytes[3] |= 0x20;
    }
    if flags.2 {
        bytes[3] |= 0x10;
    }
    bytes
}

const DO: (bool, bool, bool) = (true, false, false);

/// An upstream question as the zone saw it: name, type, DO, CD.
type Asked = (String, RecordType, bool, bool);

/// Answer every pending upstream query from `zone` until none is left;
/// returns the questions asked (name, type, DO, CD).
fn serve(resolver: &mut Resolver, zone: &Zone, now: Timestamp) -> Vec<Asked> {
    let mut asked = Vec::new();
    loop {
        let sent: Vec<(Transmit, Vec<u8>)> = transmits(resolver);
        if sent.is_empty() {
            return asked;
        }
        for (transmit, bytes) in sent {
            let message = Message::parse(&bytes).unwrap();
            let question = message.question().unwrap();
            asked.push((
                question.name.to_string().to_ascii_lowercase(),
                question.qtype,
                message.opt().is_some_and(|opt| opt.dnssec_ok()),
                message.flags().checking_disabled(),
            ));
            let reply = zone.answer(&bytes);
            resolver.handle_upstream_reply(src(transmit.to, UDP), &reply, now);
        }
    }
}

fn one_reply(resolver: &mut Resolver, now: Timestamp) -> Vec<u8> {
    let mut out = replies(resolver, now);
    assert_eq!(out.len(), 1, "one reply");
    out.pop().unwrap().1
}

fn ad(reply: &[u8]) -> bool {
    Message::parse(reply).unwrap().flags().authentic_data()
}

fn count(reply: &[u8], section: Section, rtype: RecordType) -> usize {
    Message::parse(reply)
        .unwrap()
        .records(section)
        .filter(|r| r.rtype() == rtype)
        .count()
}

/// Ask through the engine, letting the zone answer upstream.
fn resolve(
    resolver: &mut Resolver,
    zone: &Zone,
    query: &[u8],
    now: Timestamp,
) -> (Vec<u8>, Vec<Asked>) {
    let mut out = vec![0u8; 65_535];
    match resolver.handle_query(query, &client(4000), now, &mut out) {
        QueryOutcome::Reply(len) => (out[..len].to_vec(), Vec::new()),
        QueryOutcome::Pending => {
            let asked = serve(resolver, zone, now);
            (one_reply(resolver, now), asked)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn secure_answers_get_ad_after_one_coalesced_key_fetch() {
    let zone = Zone::new();
    let mut resolver = validating(FIXED_UNIX_MS);
    let now = Timestamp::from_secs(10);
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert_eq!(
        asked,
        [
            ("a.example.".to_owned(), RecordType::A, true, false),
            ("example.".to_owned(), RecordType::DNSKEY, true, true),
        ],
        "the answer, then the zone's keys with DO and CD"
    );
    assert!(ad(&reply));
    assert_eq!(count(&reply, Section::Answer, RecordType::A), 2);
    assert_eq!(count(&reply, Section::Answer, RecordType::RRSIG), 1);
    // The keys are cached, and so is their validation: the next name
    // costs one upstream query and no chain, even with the DNSKEY entry
    // gone from the answer cache.
    let mut dnskey_key = heimdall_wire::QueryKey {
        name: heimdall_wire::WireNameBuf::new(),
        qtype: RecordType::DNSKEY,
        qclass: Class::IN,
        dnssec_ok: true,
        checking_disabled: true,
    };
    dnskey_key
        .name
        .try_extend_from_slice(b"\x07example\x00")
        .unwrap();
    assert!(
        resolver.cache_mut().remove(&dnskey_key),
        "the sub-query's entry"
    );
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("mail.example.", RecordType::A, 2, DO),
        now,
    );
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(ad(&reply));
    // A client that asks neither DO nor AD: no AD, no RRSIG, though the
    // upstream was asked with DO.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 3, (false, false, false)),
        now,
    );
    assert_eq!(
        asked,
        [("a.example.".to_owned(), RecordType::A, true, false)]
    );
    assert!(!ad(&reply));
    assert_eq!(count(&reply, Section::Answer, RecordType::RRSIG), 0);
    assert_eq!(count(&reply, Section::Answer, RecordType::A), 2);
    // AD without DO: AD from the same (cached) entry, no RRSIG.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 4, (false, true, false)),
        now,
    );
    assert!(asked.is_empty(), "a hit");
    assert!(ad(&reply));
    assert_eq!(count(&reply, Section::Answer, RecordType::RRSIG), 0);
    // NXDOMAIN proved with NSEC.
    let (reply, _) = resolve(
        &mut resolver,
        &zone,
        &ask("nothing.example.", RecordType::A, 5, DO),
        now,
    );
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::NXDOMAIN);
    assert!(ad(&reply));
    let stats = resolver.stats();
    assert_eq!((stats.dnssec_secure, stats.dnssec_subqueries), (4, 1));
    assert_eq!(stats.dnssec_bogus_signature + stats.dnssec_indeterminate, 0);
}

/// The TTLs of the answer section.
fn answer_ttls(reply: &[u8]) -> Vec<u32> {
    Message::parse(reply)
        .unwrap()
        .records(Section::Answer)
        .map(|r| r.ttl())
        .collect()
}

/// An upstream answering with TTL 0 (a record at the end of its time in
/// an upstream cache, or a zone that says "use once"): the signature
/// still verifies, as it covers the original TTL, so the answer is
/// secure. It is not cached, yet goes out as a cached one would: AD to
/// clients that set DO or AD, the RRSIG to DO clients only, TTL 0.
#[test]
fn a_secure_answer_with_ttl_0_keeps_ad_and_is_not_cached() {
    let mut zone = Zone::new();
    zone.zero_ttl = Some("a.example.");
    let mut resolver = validating(FIXED_UNIX_MS);
    let now = Timestamp::from_secs(10);
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert_eq!(asked.len(), 2, "the answer and the keys: {asked:?}");
    assert!(ad(&reply), "a validated answer keeps AD at TTL 0");
    assert_eq!(count(&reply, Section::Answer, RecordType::A), 2);
    assert_eq!(count(&reply, Section::Answer, RecordType::RRSIG), 1);
    assert_eq!(answer_ttls(&reply), [0, 0, 0]);
    // Not cached: asked again, and AD without DO gets AD and no RRSIG.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 2, (false, true, false)),
        now,
    );
    assert_eq!(
        asked,
        [("a.example.".to_owned(), RecordType::A, true, false)],
        "TTL 0 is never cached"
    );
    assert!(ad(&reply));
    assert_eq!(count(&reply, Section::Answer, RecordType::RRSIG), 0);
    assert_eq!(count(&reply, Section::Answer, RecordType::A), 2);
    // Neither DO nor AD: no AD and no RRSIG, as from the cache.
    let (reply, _) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 3, (false, false, false)),
        now,
    );
    assert!(!ad(&reply));
    assert_eq!(count(&reply, Section::Answer, RecordType::RRSIG), 0);
    // Tampered data at TTL 0 is still bogus.
    zone.tamper = Some("a.example.");
    let (reply, _) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 4, DO),
        now,
    );
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::DNSSEC_BOGUS]);
}

/// Ask `name` A with DO at `secs`: SERVFAIL, EDE 10 (RRSIGs missing).
fn ask_at(resolver: &mut Resolver, zone: &Zone, name: &str, id: u16, secs: u64) {
    let (reply, _) = resolve(
        resolver,
        zone,
        &ask(name, RecordType::A, id, DO),
        Timestamp::from_secs(secs),
    );
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::RRSIGS_MISSING], "{name}");
}

/// An upstream that strips DNSSEC records (answers DO queries without
/// RRSIGs) in front of a signed zone: every answer is SERVFAIL with EDE
/// 10, each counted as unsigned from a signed zone, and the engine asks
/// the runtime to warn about the upstream once a minute, not per answer.
#[test]
fn an_upstream_that_strips_signatures_is_counted_and_warned_about_once_a_minute() {
    let mut zone = Zone::new();
    zone.strip = true;
    let mut resolver = validating(FIXED_UNIX_MS);
    let upstream: std::net::SocketAddr = UPSTREAM_A.parse().unwrap();
    ask_at(&mut resolver, &zone, "a.example.", 1, 10);
    assert_eq!(
        resolver.poll_warning(),
        Some(heimdall_resolver::Warning::UpstreamStripsDnssec(upstream))
    );
    assert_eq!(resolver.poll_warning(), None);
    // Within the minute: counted, not said again.
    ask_at(&mut resolver, &zone, "mail.example.", 2, 11);
    ask_at(&mut resolver, &zone, "b.example.", 3, 69);
    assert_eq!(resolver.poll_warning(), None);
    assert_eq!(resolver.stats().dnssec_unsigned_from_signed_zone, 3);
    assert_eq!(resolver.stats().dnssec_bogus_rrsigs_missing, 3);
    // A minute after the warning: said again.
    ask_at(&mut resolver, &zone, "c.example.", 4, 70);
    let warning = resolver.poll_warning().unwrap();
    assert_eq!(
        warning,
        heimdall_resolver::Warning::UpstreamStripsDnssec(upstream)
    );
    assert!(warning.to_string().contains("127.0.0.1:5301"), "{warning}");
    assert_eq!(resolver.stats().dnssec_unsigned_from_signed_zone, 4);
}

/// A single missing RRSIG (the rest of the answer signed) is bogus with
/// EDE 10 too, but is not an upstream that strips signatures.
#[test]
fn one_missing_rrsig_is_not_taken_for_stripping() {
    let mut zone = Zone::new();
    zone.records.retain(|record| {
        !(record.rtype == RecordType::RRSIG
            && Zone::covered(record) == RecordType::A
            && record.owner.to_string().eq_ignore_ascii_case("a.example."))
    });
    let mut resolver = validating(FIXED_UNIX_MS);
    let now = Timestamp::from_secs(10);
    // The answer alone carries no RRSIG either; what tells the two apart
    // is the chain: here the DS denial for a.example. comes signed.
    let (reply, _) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::RRSIGS_MISSING]);
    assert_eq!(resolver.stats().dnssec_bogus_rrsigs_missing, 1);
    assert_eq!(resolver.stats().dnssec_unsigned_from_signed_zone, 0);
    assert_eq!(resolver.poll_warning(), None);
}

#[test]
fn bogus_data_is_servfail_with_its_ede_and_cached() {
    let mut zone = Zone::new();
    zone.tamper = Some("a.example.");
    let mut resolver = validating(FIXED_UNIX_MS);
    let now = Timestamp::from_secs(10);
    let (reply, _) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::DNSSEC_BOGUS]);
    // From the cache: no upstream query, the same EDE.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 2, DO),
        now,
    );
    assert!(asked.is_empty());
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::DNSSEC_BOGUS]);
    // CD: the data as it came, without AD.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 3, (true, false, true)),
        now,
    );
    assert_eq!(
        asked,
        [("a.example.".to_owned(), RecordType::A, true, true)]
    );
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::NOERROR);
    assert!(!ad(&reply));
    assert_eq!(resolver.stats().dnssec_bogus_signature, 1);
}

#[test]
fn expired_signatures_are_servfail_with_ede_7() {
    let zone = Zone::new();
    let mut resolver = validating(LATE_UNIX_MS);
    let now = Timestamp::from_secs(10);
    let (reply, _) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::SIGNATURE_EXPIRED]);
    assert_eq!(resolver.stats().dnssec_bogus_expired, 1);
}

#[test]
fn a_failed_key_fetch_is_indeterminate() {
    let zone = Zone::new();
    let mut resolver = validating(FIXED_UNIX_MS);
    let now = Timestamp::from_secs(10);
    let mut out = vec![0u8; 65_535];
    let query = ask("a.example.", RecordType::A, 1, DO);
    assert!(matches!(
        resolver.handle_query(&query, &client(4000), now, &mut out),
        QueryOutcome::Pending
    ));
    let (transmit, bytes) = transmits(&mut resolver).pop().unwrap();
    assert_eq!(transmit.to, addr(UPSTREAM_A));
    resolver.handle_upstream_reply(src(transmit.to, UDP), &zone.answer(&bytes), now);
    // The DNSKEY sub-query is never answered.
    assert_eq!(transmits(&mut resolver).len(), 1);
    assert!(replies(&mut resolver, now).is_empty(), "still waiting");
    let later = now.add_millis(5_000);
    resolver.handle_timeouts(later);
    let reply = one_reply(&mut resolver, later);
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::DNSSEC_INDETERMINATE]);
    assert_eq!(resolver.stats().dnssec_indeterminate, 1);
    assert_eq!(resolver.inflight(), 0);
}

#[test]
fn off_passes_the_upstream_through() {
    let zone = Zone::new();
    let mut resolver = Resolver::with_seed(config(&[UPSTREAM_A]), 1).unwrap();
    let now = Timestamp::from_secs(10);
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert_eq!(
        asked,
        [("a.example.".to_owned(), RecordType::A, true, false)]
    );
    assert!(!ad(&reply), "the fake upstream sets no AD");
    assert_eq!(count(&reply, Section::Answer, RecordType::RRSIG), 1);
    let (_, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("mail.example.", RecordType::A, 2, (false, false, false)),
        now,
    );
    assert!(!asked[0].2, "no DO upstream when not validating");
}

#[test]
fn a_secure_answer_is_not_cached_past_its_signatures() {
    // 100 s before the fixture's signatures expire (2045-01-01).
    let zone = Zone::new();
    let mut resolver = validating((2_366_841_600 - 100) * 1000);
    let now = Timestamp::from_secs(10);
    let (reply, _) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert!(ad(&reply));
    let ttls = common::answer_ttls(&reply);
    assert!(ttls.iter().all(|&ttl| ttl <= 90), "{ttls:?}");
}

#[test]
fn the_sub_query_budget_bounds_a_query() {
    let zone = Zone::new();
    let mut resolver = validating(FIXED_UNIX_MS);
    let mut config = ResolverConfig {
        dnssec: DnssecConfig {
            mode: DnssecMode::Validate,
            anchors: Arc::new(TrustAnchors::parse(&fixture("example-nsec.ds")).unwrap()),
            unix_epoch_ms: FIXED_UNIX_MS,
            max_subqueries: 0,
            ..DnssecConfig::default()
        },
        ..config(&[UPSTREAM_A])
    };
    resolver
        .reconfigure(config.clone(), Timestamp::ZERO)
        .unwrap();
    let now = Timestamp::from_secs(10);
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::A, 1, DO),
        now,
    );
    assert_eq!(asked.len(), 1, "no sub-query allowed: {asked:?}");
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::SERVFAIL);
    assert_eq!(ede_codes(&reply), [ede::DNSSEC_INDETERMINATE]);
    assert_eq!(resolver.stats().dnssec_indeterminate, 1);
    // One is enough for this zone (its keys, anchored directly).
    config.dnssec.max_subqueries = 1;
    resolver.reconfigure(config, Timestamp::ZERO).unwrap();
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("b.example.", RecordType::AAAA, 2, DO),
        now,
    );
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(ad(&reply));
}

#[test]
fn a_random_subdomain_flood_costs_one_key_fetch() {
    // 300 names that do not exist, all at once: one DNSKEY sub-query,
    // joined by every query that needs it, then validated from the cache.
    let zone = Zone::new();
    let mut resolver = validating(FIXED_UNIX_MS);
    let now = Timestamp::from_secs(10);
    let mut out = vec![0u8; 65_535];
    for i in 0..300u16 {
        let query = ask(&format!("r{i}.example."), RecordType::A, i, DO);
        let outcome = resolver.handle_query(&query, &client(5000 + i), now, &mut out);
        assert!(matches!(outcome, QueryOutcome::Pending), "{outcome:?}");
    }
    let asked = serve(&mut resolver, &zone, now);
    let keys = asked
        .iter()
        .filter(|(_, rtype, _, _)| *rtype == RecordType::DNSKEY)
        .count();
    assert_eq!(
        (asked.len(), keys),
        (301, 1),
        "one answer each, one key fetch"
    );
    let answers = replies(&mut resolver, now);
    assert_eq!(answers.len(), 300);
    for (_, reply) in &answers {
        assert_eq!(Message::parse(reply).unwrap().rcode(), Rcode::NXDOMAIN);
        assert!(ad(reply));
    }
    assert_eq!(
        resolver.stats().dnssec_subqueries,
        1,
        "one started, 299 joined it"
    );
    // Every denial carries the zone's SOA with the same signature: its
    // check is made once and remembered for the other 299.
    let remembered = resolver.stats().dnssec_signatures_remembered;
    assert!(remembered >= 299, "{remembered} signature checks skipped");
    assert_eq!(resolver.inflight(), 0);
}

#[test]
fn aggressive_nsec_answers_a_random_subdomain_flood_without_asking_upstream() {
    // RFC 8198: after one validated NXDOMAIN, the NSEC records it carried
    // (ns1.example. -> sub.example., and example. -> a.example. for the
    // wildcard) prove every other r*.example. absent.
    let zone = Zone::new();
    let mut resolver = validating_with(FIXED_UNIX_MS, true);
    let now = Timestamp::from_secs(10);
    let (first, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("r0.example.", RecordType::A, 1, DO),
        now,
    );
    assert!(!asked.is_empty());
    assert_eq!(Message::parse(&first).unwrap().rcode(), Rcode::NXDOMAIN);
    assert!(ad(&first));
    let upstream_before = resolver.stats().upstream_queries;
    let mut out = vec![0u8; 65_535];
    for i in 1..=300u16 {
        // DO and non-DO clients alike; the latter get no NSEC records.
        let dnssec_ok = i % 2 == 0;
        let query = ask(
            &format!("r{i}.example."),
            RecordType::A,
            i,
            (dnssec_ok, true, false),
        );
        let outcome = resolver.handle_query(&query, &client(6000 + i), now, &mut out);
        let QueryOutcome::Reply(len) = outcome else {
            panic!("r{i}: {outcome:?}");
        };
        let reply = &out[..len];
        hickory_proto::op::Message::from_vec(reply).expect("hickory parses it");
        let message = Message::parse(reply).unwrap();
        assert_eq!(message.rcode(), Rcode::NXDOMAIN, "r{i}");
        assert!(message.flags().authentic_data(), "r{i}");
        assert_eq!(count(reply, Section::Authority, RecordType::SOA), 1);
        let nsecs = count(reply, Section::Authority, RecordType::NSEC);
        assert_eq!(nsecs, if dnssec_ok { 2 } else { 0 }, "r{i}");
        assert_eq!(
            count(reply, Section::Authority, RecordType::RRSIG),
            if dnssec_ok { 3 } else { 0 }
        );
    }
    assert!(
        transmits(&mut resolver).is_empty(),
        "nothing asked upstream"
    );
    assert_eq!(resolver.stats().upstream_queries, upstream_before);
    assert_eq!(resolver.stats().dnssec_aggressive, 300);
    // A name that exists is not denied: asked upstream as usual.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("mail.example.", RecordType::A, 400, DO),
        now,
    );
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::NOERROR);
    // NODATA from the NSEC at a.example. (A, TXT), which the first
    // denial carried too.
    for (qtype, id) in [(RecordType::MX, 401), (RecordType::AAAA, 402)] {
        let (nodata, asked) = resolve(&mut resolver, &zone, &ask("a.example.", qtype, id, DO), now);
        assert!(asked.is_empty(), "{qtype}: {asked:?}");
        let message = Message::parse(&nodata).unwrap();
        assert_eq!(
            (message.rcode(), message.answers().count()),
            (Rcode::NOERROR, 0)
        );
        assert!(ad(&nodata));
        assert_eq!(count(&nodata, Section::Authority, RecordType::NSEC), 1);
    }
    assert_eq!(resolver.stats().dnssec_aggressive, 302);
    // Not for a type the NSEC shows.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::TXT, 403, DO),
        now,
    );
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(count(&reply, Section::Answer, RecordType::TXT), 1);
    // Off (the default): the same kind of name goes upstream.
    let mut plain = validating(FIXED_UNIX_MS);
    let (_, asked) = resolve(
        &mut plain,
        &zone,
        &ask("r0.example.", RecordType::A, 1, DO),
        now,
    );
    assert!(!asked.is_empty());
    let (_, asked) = resolve(
        &mut plain,
        &zone,
        &ask("r1.example.", RecordType::A, 2, DO),
        now,
    );
    assert_eq!(asked.len(), 1, "without aggressive_nsec: {asked:?}");
    assert_eq!(plain.stats().dnssec_aggressive, 0);
}

#[test]
fn a_long_random_subdomain_flood_stays_within_its_bounds() {
    // 8 waves of 500 new names in a 256 KiB cache shard: the answers
    // evict one another (and the zone's DNSKEY entry), but the validated
    // keys stay in the KeyCache, so the zone's keys are fetched once; the
    // cache stays within its bytes, nothing is left in flight, and no
    // query is refused for its sub-query budget.
    let zone = Zone::new();
    let config = ResolverConfig {
        cache_bytes: 256 << 10,
        ..validating_config(FIXED_UNIX_MS, false)
    };
    let mut resolver = Resolver::with_seed(config, 18).unwrap();
    let mut out = vec![0u8; 65_535];
    let mut answered = 0usize;
    for wave in 0..8u16 {
        let now = Timestamp::from_secs(10 + u64::from(wave));
        for i in 0..500u16 {
            let id = wave * 500 + i;
            let query = ask(&format!("f{id}.example."), RecordType::A, id, DO);
            let outcome = resolver.handle_query(&query, &client(7000 + i), now, &mut out);
            assert!(matches!(outcome, QueryOutcome::Pending), "{outcome:?}");
        }
        serve(&mut resolver, &zone, now);
        for (_, reply) in replies(&mut resolver, now) {
            assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::NXDOMAIN);
            assert!(ad(&reply));
            answered += 1;
        }
        assert_eq!(resolver.inflight(), 0, "wave {wave}");
        let cache = resolver.cache().stats();
        assert!(
            cache.bytes <= 256 << 10,
            "wave {wave}: {} bytes",
            cache.bytes
        );
    }
    assert_eq!(answered, 4_000);
    let stats = resolver.stats();
    assert!(
        resolver.cache().stats().evictions > 0,
        "the flood outgrew the shard"
    );
    assert_eq!(stats.dnssec_subqueries, 1, "the keys were fetched once");
    assert_eq!(
        (stats.dnssec_indeterminate, stats.dnssec_secure),
        (0, 4_000)
    );
}

#[test]
fn aggressive_nsec3_answers_hashed_denials_without_asking_upstream() {
    // The NSEC3-signed fixture: after one validated NXDOMAIN, the NSEC3
    // records it carried (the closest encloser example., and the spans
    // covering the hashes) deny other names under example. too.
    let zone = Zone::nsec3();
    let anchors = TrustAnchors::parse(&fixture("example-nsec3.ds")).unwrap();
    let config = ResolverConfig {
        dnssec: DnssecConfig {
            mode: DnssecMode::Validate,
            anchors: Arc::new(anchors),
            unix_epoch_ms: FIXED_UNIX_MS,
            aggressive_nsec: true,
            ..DnssecConfig::default()
        },
        ..config(&[UPSTREAM_A])
    };
    let mut resolver = Resolver::with_seed(config, 18).unwrap();
    let now = Timestamp::from_secs(10);
    let (first, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("r0.example.", RecordType::A, 1, DO),
        now,
    );
    assert!(!asked.is_empty());
    assert_eq!(Message::parse(&first).unwrap().rcode(), Rcode::NXDOMAIN);
    assert!(ad(&first));
    let upstream_before = resolver.stats().upstream_queries;
    for i in 1..=50u16 {
        let name = format!("r{i}.example.");
        let (reply, asked) = resolve(
            &mut resolver,
            &zone,
            &ask(&name, RecordType::A, i + 1, DO),
            now,
        );
        assert!(asked.is_empty(), "{name}: {asked:?}");
        hickory_proto::op::Message::from_vec(&reply).expect("hickory parses it");
        let message = Message::parse(&reply).unwrap();
        assert_eq!(message.rcode(), Rcode::NXDOMAIN, "{name}");
        assert!(ad(&reply), "{name}");
        let nsec3 = count(&reply, Section::Authority, RecordType::NSEC3);
        assert!((2..=3).contains(&nsec3), "{name}: {nsec3} NSEC3");
    }
    // Deeper names too: their closest encloser is still example.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.b.c.example.", RecordType::AAAA, 90, DO),
        now,
    );
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::NXDOMAIN);
    // NODATA: the NSEC3 matching a.example. lacks AAAA.
    let (nodata, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("a.example.", RecordType::AAAA, 91, DO),
        now,
    );
    assert!(asked.is_empty(), "{asked:?}");
    let message = Message::parse(&nodata).unwrap();
    assert_eq!(
        (message.rcode(), message.answers().count()),
        (Rcode::NOERROR, 0)
    );
    assert!(ad(&nodata));
    // A name that exists is asked for.
    let (reply, asked) = resolve(
        &mut resolver,
        &zone,
        &ask("mail.example.", RecordType::A, 92, DO),
        now,
    );
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::NOERROR);
    assert_eq!(resolver.stats().upstream_queries, upstream_before + 1);
    assert_eq!(resolver.stats().dnssec_aggressive, 52);
}
