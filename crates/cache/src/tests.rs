//! Behaviour tests of the whole crate with fake timestamps: entries built
//! from responses made with heimdall-wire's builder, stored in a shard and
//! served back; every reply is also decoded by hickory-proto and compared
//! with our own view of it.

use std::net::{Ipv4Addr, Ipv6Addr};

use heimdall_testkit::messages;
use heimdall_wire::cookie::ReplyCookie;
use heimdall_wire::{
    Class, Flags, Message, MessageBuilder, Mx, NameBuf, Opcode, OptSpec, QueryKey, RData, Rcode,
    RecordType, Section, Soa, Txt,
};
use hickory_proto::op::{Message as HMessage, MessageType};

use crate::{
    AnswerRequest, Cache, CacheError, CachePolicy, ClientEdns, Entry, EntryKind, EntryView, Lookup,
    OPT_LEN, STALE_EDE_LEN, STALE_TTL, SlotInfo, Timestamp,
};

// ---------------------------------------------------------------------------
// Building messages
// ---------------------------------------------------------------------------

fn name(text: &str) -> NameBuf {
    NameBuf::from_presentation(text).unwrap()
}

/// RDATA as a test writes it.
#[derive(Clone)]
enum Rd {
    A(u8),
    Aaaa(u16),
    Cname(&'static str),
    Ns(&'static str),
    Mx(u16, &'static str),
    Txt(usize),
    /// SOA with this MINIMUM.
    Soa(u32),
    Rrsig(usize),
    /// An RRSIG covering this type (the rest of its RDATA filler).
    RrsigOf(RecordType),
}

#[derive(Clone)]
struct Rr {
    section: Section,
    owner: &'static str,
    ttl: u32,
    rd: Rd,
}

fn rr(section: Section, owner: &'static str, ttl: u32, rd: Rd) -> Rr {
    Rr {
        section,
        owner,
        ttl,
        rd,
    }
}

fn answer(owner: &'static str, ttl: u32, rd: Rd) -> Rr {
    rr(Section::Answer, owner, ttl, rd)
}

fn write_rr(builder: &mut MessageBuilder<'_>, record: &Rr) {
    let owner = name(record.owner);
    let names: Vec<NameBuf> = match &record.rd {
        Rd::Cname(target) | Rd::Ns(target) | Rd::Mx(_, target) => vec![name(target)],
        Rd::Soa(_) => vec![name("ns1.example.com"), name("hostmaster.example.com")],
        _ => Vec::new(),
    };
    let txt_bytes: Vec<u8> = match record.rd {
        Rd::Txt(len) | Rd::Rrsig(len) => {
            let mut bytes = Vec::new();
            let mut left = len;
            while left > 0 {
                let chunk = left.min(255);
                bytes.push(chunk as u8);
                bytes.extend(std::iter::repeat_n(b't', chunk));
                left -= chunk;
            }
            bytes
        }
        Rd::RrsigOf(covered) => {
            let mut bytes = covered.0.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[13, 2, 0, 0, 14, 16]);
            bytes
        }
        _ => Vec::new(),
    };
    let (rtype, rdata) = match &record.rd {
        Rd::A(last) => (RecordType::A, RData::A(Ipv4Addr::new(192, 0, 2, *last))),
        Rd::Aaaa(last) => (
            RecordType::AAAA,
            RData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, *last)),
        ),
        Rd::Cname(_) => (RecordType::CNAME, RData::Cname(names[0].as_name())),
        Rd::Ns(_) => (RecordType::NS, RData::Ns(names[0].as_name())),
        Rd::Mx(preference, _) => (
            RecordType::MX,
            RData::Mx(Mx {
                preference: *preference,
                exchange: names[0].as_name(),
            }),
        ),
        Rd::Txt(_) => (
            RecordType::TXT,
            RData::Txt(Txt::new(&txt_bytes, 0).unwrap()),
        ),
        Rd::Rrsig(_) | Rd::RrsigOf(_) => (RecordType::RRSIG, RData::Unknown(&txt_bytes)),
        Rd::Soa(minimum) => (
            RecordType::SOA,
            RData::Soa(Soa {
                mname: names[0].as_name(),
                rname: names[1].as_name(),
                serial: 2024,
                refresh: 7200,
                retry: 900,
                expire: 1_209_600,
                minimum: *minimum,
            }),
        ),
    };
    builder
        .record(
            record.section,
            &owner.as_name(),
            rtype,
            Class::IN,
            record.ttl,
            &rdata,
        )
        .unwrap();
}

/// An upstream response as a recursive upstream sends it (QR RD RA, AA
/// set to check that it is not passed on, with an OPT record).
fn response_with(
    qname: &str,
    qtype: RecordType,
    flags: Flags,
    records: &[Rr],
    upstream_opt: bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; 65_535];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(0x7777);
    builder.set_flags(flags);
    builder
        .question(&name(qname).as_name(), qtype, Class::IN)
        .unwrap();
    for record in records {
        write_rr(&mut builder, record);
    }
    if upstream_opt {
        builder
            .opt(&OptSpec {
                udp_payload_size: 4096,
                extended_rcode: 0,
                version: 0,
                dnssec_ok: true,
                options: &[],
            })
            .unwrap();
    }
    let len = builder.finish();
    buf.truncate(len);
    buf
}

fn upstream_flags(rcode: Rcode) -> Flags {
    Flags::default()
        .with_response(true)
        .with_authoritative(true)
        .with_recursion_desired(true)
        .with_recursion_available(true)
        .with_rcode(rcode)
}

fn response(qname: &str, qtype: RecordType, rcode: Rcode, records: &[Rr]) -> Vec<u8> {
    response_with(qname, qtype, upstream_flags(rcode), records, true)
}

/// A client query.
#[derive(Clone, Copy)]
struct Q {
    name: &'static str,
    qtype: RecordType,
    id: u16,
    flags: Flags,
    /// (payload size, DO)
    edns: Option<(u16, bool)>,
}

impl Q {
    fn new(name: &'static str, qtype: RecordType) -> Self {
        Self {
            name,
            qtype,
            id: 0x1234,
            flags: Flags::default().with_recursion_desired(true),
            edns: Some((1232, false)),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(self.id);
        builder.set_flags(self.flags);
        builder
            .question(&name(self.name).as_name(), self.qtype, Class::IN)
            .unwrap();
        if let Some((udp_payload_size, dnssec_ok)) = self.edns {
            builder
                .opt(&OptSpec {
                    udp_payload_size,
                    extended_rcode: 0,
                    version: 0,
                    dnssec_ok,
                    options: &[],
                })
                .unwrap();
        }
        let len = builder.finish();
        buf[..len].to_vec()
    }

    fn key(&self) -> QueryKey {
        QueryKey::from_packet(&self.bytes()).unwrap().1
    }
}

fn at(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

/// Start of time in most tests; not zero, so ages are real differences.
const T0: u64 = 1_000;

fn entry_for(query: &Q, response: &[u8], now: Timestamp, policy: &CachePolicy) -> Option<Entry> {
    let message = Message::parse(response).unwrap();
    Entry::from_response(&query.key(), &message, now, policy).unwrap()
}

fn stored(query: &Q, response: &[u8]) -> Entry {
    entry_for(query, response, at(T0), &CachePolicy::default()).expect("cacheable")
}

fn cache() -> Cache {
    Cache::new(1 << 20, CachePolicy::default()).unwrap()
}

/// The reply to `query` from `entry` at `now`, with our payload 1232,
/// cross-checked against hickory.
fn reply(entry: &EntryView, query: &Q, now: Timestamp) -> (Vec<u8>, HMessage) {
    let bytes = query.bytes();
    let message = Message::parse(&bytes).unwrap();
    let request = AnswerRequest::from_query(&message, 1232).unwrap();
    let mut out = vec![0u8; 65_535];
    let len = entry.write_answer(&mut out, &request, now).unwrap();
    out.truncate(len);
    assert!(
        len <= request.limit,
        "reply of {len} over {}",
        request.limit
    );
    let theirs = cross_check(&out, query);
    (out, theirs)
}

/// Parse `reply` with heimdall-wire and hickory-proto; both must agree on
/// every header bit, the question (exact letter case, which must be the
/// client's), each record's owner, type, class and TTL, and the EDNS.
fn cross_check(reply: &[u8], query: &Q) -> HMessage {
    let ours = Message::parse(reply).unwrap();
    let theirs = HMessage::from_vec(reply).unwrap();
    let flags = ours.flags();
    let meta = &theirs.metadata;
    assert_eq!(ours.id(), meta.id);
    assert_eq!(ours.id(), query.id);
    assert!(flags.response() && meta.message_type == MessageType::Response);
    assert_eq!(flags.opcode().0, u8::from(meta.op_code));
    assert_eq!(flags.opcode(), query.flags.opcode());
    assert!(
        !flags.authoritative() && !meta.authoritative,
        "AA must be 0"
    );
    assert_eq!(flags.truncated(), meta.truncation);
    assert_eq!(flags.recursion_desired(), meta.recursion_desired);
    assert_eq!(flags.recursion_desired(), query.flags.recursion_desired());
    assert!(flags.recursion_available() && meta.recursion_available);
    assert_eq!(flags.authentic_data(), meta.authentic_data);
    assert_eq!(flags.checking_disabled(), meta.checking_disabled);
    assert_eq!(flags.checking_disabled(), query.flags.checking_disabled());
    assert_eq!(ours.rcode().0, u16::from(meta.response_code));

    assert_eq!(theirs.queries.len(), 1);
    let question = ours.question().unwrap();
    let hickory_qname: Vec<u8> = theirs.queries[0]
        .name
        .iter()
        .flat_map(|label| [&[label.len() as u8][..], label].concat())
        .chain([0])
        .collect();
    assert_eq!(
        NameBuf::from_name(&question.name).as_wire(),
        &hickory_qname[..]
    );
    assert_eq!(
        NameBuf::from_name(&question.name).as_wire(),
        name(query.name).as_wire(),
        "the client's letter case"
    );
    assert_eq!(question.qtype.0, u16::from(theirs.queries[0].query_type));

    let sections = [
        (Section::Answer, &theirs.answers),
        (Section::Authority, &theirs.authorities),
        (Section::Additional, &theirs.additionals),
    ];
    for (section, their_records) in sections {
        let records: Vec<_> = ours
            .records(section)
            .filter(|record| record.rtype() != RecordType::OPT)
            .collect();
        assert_eq!(records.len(), their_records.len(), "{section:?} count");
        for (record, other) in records.iter().zip(their_records.iter()) {
            assert_eq!(record.rtype().0, u16::from(other.record_type()));
            assert_eq!(record.class().0, u16::from(other.dns_class));
            assert_eq!(record.ttl(), other.ttl, "{section:?} TTL");
            assert!(
                other
                    .name
                    .to_ascii()
                    .eq_ignore_ascii_case(&record.name().to_string())
            );
        }
    }
    match (ours.opt(), &theirs.edns, query.edns) {
        (None, None, None) => {}
        (Some(opt), Some(edns), Some((_, dnssec_ok))) => {
            assert_eq!(opt.udp_payload_size(), 1232);
            assert_eq!(edns.max_payload(), 1232);
            assert_eq!(opt.dnssec_ok(), dnssec_ok);
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok);
            assert_eq!((opt.version(), edns.version()), (0, 0));
            assert_eq!(opt.options().count(), 0);
        }
        (ours, theirs, query) => {
            panic!("EDNS mismatch: ours {ours:?}, hickory {theirs:?}, query {query:?}")
        }
    }
    theirs
}

fn ttls(message: &HMessage) -> Vec<u32> {
    message
        .answers
        .iter()
        .chain(&message.authorities)
        .chain(&message.additionals)
        .map(|record| record.ttl)
        .collect()
}

/// An upstream's NOERROR response to `www.example.com A`.
fn www_response(records: &[Rr]) -> Vec<u8> {
    response("www.example.com", RecordType::A, Rcode::NOERROR, records)
}

fn www_a() -> (Q, Vec<u8>) {
    let query = Q::new("www.example.com", RecordType::A);
    let upstream = www_response(&[
        answer("www.example.com", 300, Rd::A(1)),
        answer("www.example.com", 300, Rd::A(2)),
    ]);
    (query, upstream)
}

// ---------------------------------------------------------------------------
// Lookup, insert, expiry
// ---------------------------------------------------------------------------

#[test]
fn miss_then_hit() {
    let (query, upstream) = www_a();
    let mut cache = cache();
    assert!(matches!(cache.lookup(&query.key(), at(T0)), Lookup::Miss));
    let entry = stored(&query, &upstream);
    assert_eq!(entry.kind(), EntryKind::Positive);
    assert!(cache.insert(&query.key(), entry, at(T0)).unwrap());
    let Lookup::Fresh(entry) = cache.lookup(&query.key(), at(T0 + 1)) else {
        panic!("expected a fresh hit");
    };
    let (_, theirs) = reply(entry, &query, at(T0 + 1));
    assert_eq!(theirs.answers.len(), 2);
    assert_eq!(ttls(&theirs), [299, 299]);
    let stats = cache.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.inserts, stats.entries),
        (1, 1, 1, 1)
    );
    assert_eq!(
        stats.bytes,
        Cache::entry_bytes(cache.peek(&query.key()).unwrap())
    );
    cache.check_invariants();
}

#[test]
fn client_ttl_decreases_with_age() {
    let (query, upstream) = www_a();
    let entry = stored(&query, &upstream);
    let start = at(T0);
    for (elapsed_ms, expected) in [
        (0, 300),
        (999, 300),
        (1_000, 299),
        (1_999, 299),
        (100_000, 200),
    ] {
        let (_, theirs) = reply(&entry, &query, start.add_millis(elapsed_ms));
        assert_eq!(ttls(&theirs), [expected, expected], "after {elapsed_ms} ms");
    }
    // The stored copy is never touched by serving.
    let (_, theirs) = reply(&entry, &query, start);
    assert_eq!(ttls(&theirs), [300, 300]);
}

#[test]
fn expires_exactly_at_the_lowest_ttl() {
    let query = Q::new("www.example.com", RecordType::A);
    let upstream = www_response(&[
        answer("www.example.com", 300, Rd::A(1)),
        rr(
            Section::Authority,
            "example.com",
            60,
            Rd::Ns("ns1.example.com"),
        ),
        rr(Section::Additional, "ns1.example.com", 600, Rd::A(53)),
    ]);
    let entry = stored(&query, &upstream);
    assert_eq!(entry.expires_at(), at(T0 + 60));
    let mut cache = cache();
    cache.insert(&query.key(), entry, at(T0)).unwrap();
    let just_before = at(T0 + 60).add_millis(0).as_millis() - 1;
    assert!(matches!(
        cache.lookup(&query.key(), Timestamp::from_millis(just_before)),
        Lookup::Fresh(_)
    ));
    assert!(matches!(
        cache.lookup(&query.key(), at(T0 + 60)),
        Lookup::Miss
    ));
    let stats = cache.stats();
    assert_eq!((stats.expired, stats.entries, stats.bytes), (1, 0, 0));
    cache.check_invariants();
}

#[test]
fn ttls_are_clamped_by_min_and_max() {
    let policy = CachePolicy {
        min_ttl: 120,
        max_ttl: 600,
        ..CachePolicy::default()
    };
    let query = Q::new("www.example.com", RecordType::A);
    let low = www_response(&[
        answer("www.example.com", 30, Rd::A(1)),
        answer("www.example.com", 30, Rd::A(2)),
    ]);
    let entry = entry_for(&query, &low, at(T0), &policy).unwrap();
    assert_eq!(entry.expires_at(), at(T0 + 120));
    assert_eq!(ttls(&reply(&entry, &query, at(T0)).1), [120, 120]);

    let high = www_response(&[
        answer("www.example.com", 86_400, Rd::A(1)),
        rr(Section::Additional, "x.example.com", 3_600, Rd::A(9)),
    ]);
    let entry = entry_for(&query, &high, at(T0), &policy).unwrap();
    assert_eq!(entry.expires_at(), at(T0 + 600));
    assert_eq!(ttls(&reply(&entry, &query, at(T0 + 10)).1), [590, 590]);
}

#[test]
fn zero_ttl_answers_are_not_stored() {
    let query = Q::new("www.example.com", RecordType::A);
    let upstream = www_response(&[
        answer("www.example.com", 300, Rd::A(1)),
        answer("www.example.com", 0, Rd::A(2)),
    ]);
    // Not even a min_ttl raises a TTL of 0: the upstream said "use once".
    let policy = CachePolicy {
        min_ttl: 60,
        ..CachePolicy::default()
    };
    assert!(entry_for(&query, &upstream, at(T0), &policy).is_none());
    // `use_once`: an entry all the same, for the waiting clients only,
    // with a lifetime of 0 (its lowest TTL); each record keeps its TTL.
    let once = stored_with(
        &query,
        &upstream,
        crate::StoreOptions {
            use_once: true,
            ..crate::StoreOptions::default()
        },
    );
    assert_eq!(once.expires_at(), at(T0));
    assert!(!once.is_fresh(at(T0)));
    assert_eq!(ttls(&reply(&once, &query, at(T0)).1), [300, 0]);
}

#[test]
fn stale_entries_within_the_window() {
    let policy = CachePolicy {
        stale_window: 30,
        ..CachePolicy::default()
    };
    let (query, upstream) = www_a();
    let mut cache = Cache::new(1 << 20, policy).unwrap();
    let entry = entry_for(&query, &upstream, at(T0), &policy).unwrap();
    cache.insert(&query.key(), entry, at(T0)).unwrap();
    let Lookup::Stale(entry) = cache.lookup(&query.key(), at(T0 + 310)) else {
        panic!("expected a stale hit");
    };
    assert_eq!(ttls(&reply(entry, &query, at(T0 + 310)).1), [0, 0]);
    assert!(matches!(
        cache.lookup(&query.key(), at(T0 + 330)),
        Lookup::Miss
    ));
    let stats = cache.stats();
    assert_eq!((stats.stale_hits, stats.expired, stats.misses), (1, 1, 1));
    // An entry already past the window at insert time is not stored.
    let old = entry_for(&query, &upstream, at(T0), &policy).unwrap();
    assert!(!cache.insert(&query.key(), old, at(T0 + 400)).unwrap());
    assert!(cache.is_empty());
}

// ---------------------------------------------------------------------------
// Negative answers and failures
// ---------------------------------------------------------------------------

fn nxdomain(soa_ttl: u32, minimum: u32) -> Vec<u8> {
    response(
        "nope.example.com",
        RecordType::A,
        Rcode::NXDOMAIN,
        &[rr(
            Section::Authority,
            "example.com",
            soa_ttl,
            Rd::Soa(minimum),
        )],
    )
}

#[test]
fn negative_ttl_follows_rfc_2308() {
    let query = Q::new("nope.example.com", RecordType::A);
    let policy = CachePolicy::default();
    for (soa_ttl, minimum, expected) in [(900, 300, 300), (100, 300, 100), (86_400, 86_400, 3_600)]
    {
        let entry = entry_for(&query, &nxdomain(soa_ttl, minimum), at(T0), &policy).unwrap();
        assert_eq!(entry.kind(), EntryKind::NxDomain);
        assert_eq!(entry.rcode(), Rcode::NXDOMAIN);
        assert_eq!(entry.expires_at(), at(T0 + expected));
        let (_, theirs) = reply(&entry, &query, at(T0 + 1));
        assert_eq!(u16::from(theirs.metadata.response_code), 3);
        assert_eq!(
            ttls(&theirs),
            [expected as u32 - 1],
            "the SOA carries the negative TTL"
        );
    }
    let capped = CachePolicy {
        negative_max_ttl: 60,
        ..policy
    };
    let entry = entry_for(&query, &nxdomain(900, 300), at(T0), &capped).unwrap();
    assert_eq!(entry.expires_at(), at(T0 + 60));

    // NODATA: NOERROR, a CNAME to a name without the type, and a SOA. The
    // CNAME is capped by the negative TTL too.
    let query = Q::new("alias.example.com", RecordType::AAAA);
    let nodata = response(
        "alias.example.com",
        RecordType::AAAA,
        Rcode::NOERROR,
        &[
            answer("alias.example.com", 3_600, Rd::Cname("www.example.com")),
            rr(Section::Authority, "example.com", 600, Rd::Soa(120)),
        ],
    );
    let entry = entry_for(&query, &nodata, at(T0), &policy).unwrap();
    assert_eq!(entry.kind(), EntryKind::NoData);
    assert_eq!(entry.expires_at(), at(T0 + 120));
    let (_, theirs) = reply(&entry, &query, at(T0));
    assert_eq!(ttls(&theirs), [120, 120]);
    assert_eq!(u16::from(theirs.metadata.response_code), 0);
}

#[test]
fn negative_answers_without_soa_are_not_stored() {
    let policy = CachePolicy::default();
    let query = Q::new("nope.example.com", RecordType::A);
    let bare = response("nope.example.com", RecordType::A, Rcode::NXDOMAIN, &[]);
    assert!(entry_for(&query, &bare, at(T0), &policy).is_none());
    let nodata = response(
        "nope.example.com",
        RecordType::A,
        Rcode::NOERROR,
        &[rr(
            Section::Authority,
            "example.com",
            300,
            Rd::Ns("ns1.example.com"),
        )],
    );
    assert!(entry_for(&query, &nodata, at(T0), &policy).is_none());
    let off = CachePolicy {
        negative_max_ttl: 0,
        ..policy
    };
    assert!(entry_for(&query, &nxdomain(300, 300), at(T0), &off).is_none());
}

#[test]
fn failure_entries_expire_after_failure_ttl() {
    let policy = CachePolicy {
        failure_ttl: 3,
        stale_window: 600,
        ..CachePolicy::default()
    };
    let query = Q::new("Broken.Example.com", RecordType::A);
    let key = query.key();
    let entry = Entry::failure(
        &key,
        name("broken.EXAMPLE.com").as_wire(),
        Rcode::SERVFAIL,
        at(T0),
        &policy,
    )
    .unwrap();
    assert_eq!(entry.kind(), EntryKind::ServFail);
    let (_, theirs) = reply(&entry, &query, at(T0));
    assert_eq!(u16::from(theirs.metadata.response_code), 2);
    assert!(theirs.answers.is_empty());

    let mut cache = Cache::new(1 << 20, policy).unwrap();
    cache.insert(&key, entry, at(T0)).unwrap();
    let just_before = Timestamp::from_millis(at(T0 + 3).as_millis() - 1);
    assert!(matches!(cache.lookup(&key, just_before), Lookup::Fresh(_)));
    // Never stale, whatever the window.
    assert!(matches!(cache.lookup(&key, at(T0 + 3)), Lookup::Miss));

    for failure_ttl in [0, 6] {
        let bad = CachePolicy {
            failure_ttl,
            ..policy
        };
        assert!(matches!(
            Entry::failure(&key, &key.name, Rcode::SERVFAIL, at(T0), &bad),
            Err(CacheError::InvalidPolicy(_))
        ));
        assert!(Cache::new(1 << 20, bad).is_err());
    }
    for rcode in [Rcode::NOERROR, Rcode::NXDOMAIN, Rcode::BADCOOKIE] {
        assert_eq!(
            Entry::failure(&key, &key.name, rcode, at(T0), &policy),
            Err(CacheError::NotAFailure(rcode.0))
        );
    }
    assert_eq!(
        Entry::failure(
            &key,
            name("other.example.com").as_wire(),
            Rcode::SERVFAIL,
            at(T0),
            &policy
        ),
        Err(CacheError::QuestionMismatch)
    );
}

#[test]
fn responses_that_are_refused() {
    let policy = CachePolicy::default();
    let (query, _) = www_a();
    let key = query.key();
    let records = [answer("www.example.com", 300, Rd::A(1))];
    let build = |qname: &str, qtype, flags| response_with(qname, qtype, flags, &records, false);
    let outcome = |bytes: Vec<u8>| {
        let message = Message::parse(&bytes).unwrap();
        Entry::from_response(&key, &message, at(T0), &policy).map(|entry| entry.is_some())
    };
    let ok = upstream_flags(Rcode::NOERROR);
    assert_eq!(
        outcome(build("WWW.example.COM", RecordType::A, ok)),
        Ok(true)
    );
    assert_eq!(
        outcome(build(
            "www.example.com",
            RecordType::A,
            ok.with_truncated(true)
        )),
        Ok(false)
    );
    for rcode in [Rcode::SERVFAIL, Rcode::REFUSED, Rcode::FORMERR] {
        assert_eq!(
            outcome(build(
                "www.example.com",
                RecordType::A,
                ok.with_rcode(rcode)
            )),
            Ok(false)
        );
    }
    assert_eq!(
        outcome(build(
            "www.example.com",
            RecordType::A,
            ok.with_opcode(Opcode::NOTIFY)
        )),
        Err(CacheError::NotAResponse)
    );
    assert_eq!(
        outcome(build(
            "www.example.com",
            RecordType::A,
            ok.with_response(false)
        )),
        Err(CacheError::NotAResponse)
    );
    assert_eq!(
        outcome(build("www.example.net", RecordType::A, ok)),
        Err(CacheError::QuestionMismatch)
    );
    assert_eq!(
        outcome(build("www.example.com", RecordType::AAAA, ok)),
        Err(CacheError::QuestionMismatch)
    );
    // A referral (no answer, NS in authority, no SOA) is not an answer.
    let referral = response_with(
        "www.example.com",
        RecordType::A,
        ok,
        &[rr(
            Section::Authority,
            "example.com",
            300,
            Rd::Ns("ns1.example.com"),
        )],
        false,
    );
    assert_eq!(outcome(referral), Ok(false));
}

#[test]
fn cname_chains_are_positive_and_the_upstream_opt_is_dropped() {
    let query = Q::new("alias.example.com", RecordType::A);
    let upstream = response(
        "alias.example.com",
        RecordType::A,
        Rcode::NOERROR,
        &[
            answer("alias.example.com", 600, Rd::Cname("www.example.com")),
            answer("www.example.com", 300, Rd::A(1)),
        ],
    );
    assert!(Message::parse(&upstream).unwrap().opt().is_some());
    let entry = stored(&query, &upstream);
    assert_eq!(entry.kind(), EntryKind::Positive);
    assert_eq!(entry.expires_at(), at(T0 + 300));
    let stored_view = Message::parse(entry.wire()).unwrap();
    assert!(stored_view.opt().is_none());
    assert_eq!(stored_view.header().additional_count, 0);
    assert_eq!(stored_view.id(), 0);
    // Two RRsets, two cuts; the question is the key's lower-cased name.
    assert_eq!(entry.cuts().len(), 2);
    assert_eq!(entry.question_name(), name("alias.example.com").as_wire());
    let plain = Q {
        edns: None,
        ..query
    };
    let (_, theirs) = reply(&entry, &plain, at(T0));
    assert!(theirs.edns.is_none());
    assert_eq!(theirs.answers.len(), 2);
}

// ---------------------------------------------------------------------------
// Keys and letter case
// ---------------------------------------------------------------------------

#[test]
fn keys_ignore_case_and_replies_restore_the_clients_case() {
    let (query, upstream) = www_a();
    let mut cache = cache();
    cache
        .insert(&query.key(), stored(&query, &upstream), at(T0))
        .unwrap();
    let shouting = Q {
        name: "WwW.ExAmPlE.CoM",
        id: 0x4321,
        ..query
    };
    assert_eq!(shouting.key(), query.key());
    let Lookup::Fresh(entry) = cache.lookup(&shouting.key(), at(T0)) else {
        panic!("case-insensitive hit expected");
    };
    // `reply` checks that the question has the client's exact case.
    let (bytes, theirs) = reply(entry, &shouting, at(T0));
    assert_eq!(&bytes[12..12 + 17], name("WwW.ExAmPlE.CoM").as_wire());
    // The answers point at the question, so they read in the client's case
    // too, as they would from the authority.
    assert_eq!(theirs.answers[0].name.to_ascii(), "WwW.ExAmPlE.CoM.");
    // The same entry answers the original spelling afterwards.
    let Lookup::Fresh(entry) = cache.lookup(&query.key(), at(T0)) else {
        panic!();
    };
    reply(entry, &query, at(T0));
    // A qname of another name is refused rather than written.
    let other = Q::new("www.example.net", RecordType::A).bytes();
    let message = Message::parse(&other).unwrap();
    let request = AnswerRequest::from_query(&message, 1232).unwrap();
    assert_eq!(
        entry.write_answer(&mut [0u8; 512], &request, at(T0)),
        Err(CacheError::QuestionMismatch)
    );
}

#[test]
fn do_and_cd_are_separate_keys() {
    let (query, upstream) = www_a();
    let mut cache = cache();
    cache
        .insert(&query.key(), stored(&query, &upstream), at(T0))
        .unwrap();
    let with_do = Q {
        edns: Some((1232, true)),
        ..query
    };
    let with_cd = Q {
        flags: query.flags.with_checking_disabled(true),
        ..query
    };
    let without_edns = Q {
        edns: None,
        ..query
    };
    assert!(matches!(cache.lookup(&with_do.key(), at(T0)), Lookup::Miss));
    assert!(matches!(cache.lookup(&with_cd.key(), at(T0)), Lookup::Miss));
    // No EDNS and EDNS without DO are the same key.
    assert!(matches!(
        cache.lookup(&without_edns.key(), at(T0)),
        Lookup::Fresh(_)
    ));
    // Each gets its own entry; an entry never goes in under another key.
    let do_entry = stored(&with_do, &upstream);
    assert_eq!(
        cache.insert(&query.key(), do_entry.clone(), at(T0)),
        Err(CacheError::QuestionMismatch)
    );
    cache.insert(&with_do.key(), do_entry, at(T0)).unwrap();
    cache
        .insert(&with_cd.key(), stored(&with_cd, &upstream), at(T0))
        .unwrap();
    assert_eq!(cache.len(), 3);
    let Lookup::Fresh(entry) = cache.lookup(&with_cd.key(), at(T0)) else {
        panic!();
    };
    assert!(entry.checking_disabled() && !entry.dnssec_ok());
    reply(entry, &with_cd, at(T0));
    cache.check_invariants();
}

// ---------------------------------------------------------------------------
// write_answer
// ---------------------------------------------------------------------------

#[test]
fn reply_header_flags_and_opt() {
    let query = Q::new("www.example.com", RecordType::A);
    let upstream = response_with(
        "www.example.com",
        RecordType::A,
        upstream_flags(Rcode::NOERROR).with_authentic_data(true),
        &[answer("www.example.com", 300, Rd::A(1))],
        true,
    );
    let entry = stored(&query, &upstream);
    assert!(entry.authentic_data());

    // AD only when the client set AD or DO.
    let plain = Q {
        id: 0xbeef,
        flags: Flags::default(),
        ..query
    };
    let (bytes, theirs) = reply(&entry, &plain, at(T0));
    assert!(!theirs.metadata.authentic_data && !theirs.metadata.recursion_desired);
    assert_eq!(theirs.metadata.id, 0xbeef);
    // One answer plus the OPT, which is counted in ARCOUNT.
    assert_eq!(u16::from_be_bytes([bytes[10], bytes[11]]), 1);
    assert_eq!(theirs.additionals.len(), 0);
    let with_ad = Q {
        flags: Flags::default()
            .with_authentic_data(true)
            .with_recursion_desired(true)
            .with_checking_disabled(true),
        ..query
    };
    assert!(reply(&entry, &with_ad, at(T0)).1.metadata.authentic_data);
    let with_do = Q {
        edns: Some((4096, true)),
        ..query
    };
    let (bytes, theirs) = reply(&entry, &with_do, at(T0));
    assert!(theirs.metadata.authentic_data);
    // Our payload size (1232), not the client's 4096; DO echoed.
    let opt = &bytes[bytes.len() - OPT_LEN..];
    assert_eq!(opt, [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);

    // Without EDNS: no OPT, ARCOUNT 0.
    let no_edns = Q {
        edns: None,
        ..query
    };
    let (bytes, theirs) = reply(&entry, &no_edns, at(T0));
    assert!(theirs.edns.is_none());
    assert_eq!(u16::from_be_bytes([bytes[10], bytes[11]]), 0);

    // The opcode is the client's, even an odd one.
    let status = Q {
        flags: Flags::default().with_opcode(Opcode::STATUS),
        ..query
    };
    assert_eq!(
        u8::from(reply(&entry, &status, at(T0)).1.metadata.op_code),
        2
    );

    // An upstream without AD gives no AD, whatever the client asks.
    let entry = stored(&query, &www_a().1);
    assert!(!reply(&entry, &with_do, at(T0)).1.metadata.authentic_data);
}

/// An answer over 512 bytes in three RRsets: 5 A (16 bytes each), one TXT
/// of 200 bytes, 10 AAAA (28 bytes each).
fn big_answer() -> (Q, Vec<u8>) {
    let query = Q::new("big.example.com", RecordType::ANY);
    let mut records: Vec<Rr> = (1..=5)
        .map(|last| answer("big.example.com", 300, Rd::A(last)))
        .collect();
    records.push(answer("big.example.com", 300, Rd::Txt(199)));
    records.extend((1..=10).map(|last| answer("big.example.com", 300, Rd::Aaaa(last))));
    let upstream = response("big.example.com", RecordType::ANY, Rcode::NOERROR, &records);
    (query, upstream)
}

#[test]
fn truncation_cuts_at_rrset_boundaries() {
    let (query, upstream) = big_answer();
    let entry = stored(&query, &upstream);
    assert_eq!(entry.cuts().len(), 3);
    assert!(entry.wire().len() > 512);

    // A client without EDNS gets 512 bytes: the A and TXT sets, TC=1.
    let small = Q {
        edns: None,
        ..query
    };
    let (bytes, theirs) = reply(&entry, &small, at(T0 + 5));
    assert!(bytes.len() <= 512);
    assert!(theirs.metadata.truncation);
    let types: Vec<u16> = theirs
        .answers
        .iter()
        .map(|record| u16::from(record.record_type()))
        .collect();
    assert_eq!(types, [[1u16; 5].as_slice(), &[16]].concat());
    assert!(ttls(&theirs).iter().all(|&ttl| ttl == 295));

    // An EDNS client at 512 gets the same cut, plus the OPT.
    let edns_512 = Q {
        edns: Some((512, false)),
        ..query
    };
    let (bytes, theirs) = reply(&entry, &edns_512, at(T0));
    assert!(bytes.len() <= 512 && theirs.metadata.truncation);
    assert_eq!(theirs.answers.len(), 6);
    assert!(theirs.edns.is_some());

    // Room is kept for the OPT: one byte short of message plus OPT drops
    // the last RRset; exactly enough keeps everything.
    let query_bytes = Q::new("big.example.com", RecordType::ANY).bytes();
    let message = Message::parse(&query_bytes).unwrap();
    let exact = AnswerRequest::from_query(&message, 1232).unwrap();
    let mut out = vec![0u8; 4096];
    for (limit, answers) in [
        (entry.wire().len() + OPT_LEN - 1, 6),
        (entry.wire().len() + OPT_LEN, 16),
    ] {
        let request = AnswerRequest { limit, ..exact };
        let len = entry.write_answer(&mut out, &request, at(T0)).unwrap();
        assert!(len <= limit);
        let theirs = cross_check(&out[..len], &Q::new("big.example.com", RecordType::ANY));
        assert_eq!(theirs.answers.len(), answers);
        assert_eq!(theirs.metadata.truncation, answers < 16);
    }

    // A client at 1232 gets everything, no TC.
    let (bytes, theirs) = reply(&entry, &Q::new("big.example.com", RecordType::ANY), at(T0));
    assert!(!theirs.metadata.truncation);
    assert_eq!(theirs.answers.len(), 16);
    assert_eq!(bytes.len(), entry.wire().len() + OPT_LEN);

    // Over TCP there is no UDP limit.
    let bytes = small.bytes();
    let message = Message::parse(&bytes).unwrap();
    let request = AnswerRequest::from_query(&message, 1232)
        .unwrap()
        .over_tcp();
    let mut out = vec![0u8; 65_535];
    let len = entry.write_answer(&mut out, &request, at(T0)).unwrap();
    assert_eq!(len, entry.wire().len());
    let theirs = cross_check(&out[..len], &small);
    assert!(!theirs.metadata.truncation);

    // A buffer smaller than the limit truncates too; one that cannot hold
    // header, question and OPT is an error.
    let query_bytes = query.bytes();
    let message = Message::parse(&query_bytes).unwrap();
    let request = AnswerRequest::from_query(&message, 1232).unwrap();
    let mut tiny = [0u8; 200];
    let len = entry.write_answer(&mut tiny, &request, at(T0)).unwrap();
    let theirs = cross_check(&tiny[..len], &query);
    assert_eq!(
        (theirs.answers.len(), theirs.metadata.truncation),
        (5, true)
    );
    assert!(matches!(
        entry.write_answer(&mut [0u8; 40], &request, at(T0)),
        Err(CacheError::BufferTooSmall { needed: 44, .. })
    ));
}

#[test]
fn cutting_only_additional_records_does_not_set_tc() {
    let query = Q {
        edns: None,
        ..Q::new("example.com", RecordType::MX)
    };
    let mut records = vec![
        answer("example.com", 300, Rd::Mx(10, "mx1.example.com")),
        answer("example.com", 300, Rd::Mx(20, "mx2.example.com")),
        rr(
            Section::Authority,
            "example.com",
            300,
            Rd::Ns("ns1.example.com"),
        ),
    ];
    for host in ["mx1.example.com", "mx2.example.com"] {
        records.extend((1..=10).map(|last| rr(Section::Additional, host, 300, Rd::Aaaa(last))));
    }
    let upstream = response("example.com", RecordType::MX, Rcode::NOERROR, &records);
    let entry = stored(&query, &upstream);
    assert!(entry.wire().len() > 512);
    let (bytes, theirs) = reply(&entry, &query, at(T0));
    assert!(bytes.len() <= 512);
    assert!(
        !theirs.metadata.truncation,
        "only additional data was left out"
    );
    assert_eq!((theirs.answers.len(), theirs.authorities.len()), (2, 1));
    // The first glue RRset fits whole; the second is left out whole.
    assert_eq!(theirs.additionals.len(), 10);
}

#[test]
fn an_rrsig_stays_with_its_rrset() {
    let query = Q {
        edns: None,
        ..Q::new("signed.example.com", RecordType::TXT)
    };
    let upstream = response(
        "signed.example.com",
        RecordType::TXT,
        Rcode::NOERROR,
        &[
            answer("signed.example.com", 300, Rd::Txt(100)),
            answer("signed.example.com", 300, Rd::Rrsig(150)),
            answer("signed.example.com", 300, Rd::Txt(100)),
            answer("signed.example.com", 300, Rd::Rrsig(150)),
        ],
    );
    let entry = stored(&query, &upstream);
    // TXT+RRSIG, then the second TXT+RRSIG run: two cuts, not four.
    assert_eq!(entry.cuts().len(), 2);
    assert_eq!(entry.cuts()[0].answers, 2);
    let (_, theirs) = reply(&entry, &query, at(T0));
    assert!(theirs.metadata.truncation);
    assert_eq!(theirs.answers.len(), 2);
}

// ---------------------------------------------------------------------------
// The shard: bounds, eviction, hints, removal
// ---------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so tests need no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// A positive entry for `host<n>.example` with `records` A records.
fn numbered(n: u64, records: u8, ttl: u32, now: Timestamp) -> (QueryKey, Entry) {
    let query_bytes = messages::query(&format!("host{n}.example"), RecordType::A, 0, None);
    let key = QueryKey::from_packet(&query_bytes).unwrap().1;
    let upstream = messages::a_answer(&query_bytes, records, ttl);
    let message = Message::parse(&upstream).unwrap();
    let entry = Entry::from_response(&key, &message, now, &CachePolicy::default())
        .unwrap()
        .unwrap();
    (key, entry)
}

#[test]
fn the_byte_bound_holds_under_random_work() {
    let capacity = 64 * 1024;
    let mut cache = Cache::new(capacity, CachePolicy::default()).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = at(T0);
    for step in 0..5_000u64 {
        now = now.add_millis(rng.below(500));
        let n = rng.below(400);
        match rng.below(10) {
            0..=4 => {
                let (key, entry) =
                    numbered(n, 1 + rng.below(40) as u8, 1 + rng.below(60) as u32, now);
                assert!(Cache::entry_bytes(&entry) <= capacity);
                cache.insert(&key, entry, now).unwrap();
            }
            5..=8 => {
                let (key, _) = numbered(n, 1, 60, now);
                let _ = cache.lookup(&key, now);
            }
            _ => {
                let (key, _) = numbered(n, 1, 60, now);
                cache.remove(&key);
            }
        }
        let stats = cache.stats();
        assert!(
            stats.bytes <= capacity,
            "step {step}: {} bytes",
            stats.bytes
        );
        if step % 97 == 0 {
            cache.check_invariants();
        }
    }
    cache.check_invariants();
    let stats = cache.stats();
    assert!(stats.evictions > 0 && stats.expired > 0 && stats.hits > 0);
    assert!(stats.bytes > capacity / 2, "the cache should be well used");

    // An entry larger than the whole cache is refused.
    let mut tiny = Cache::new(1_000, CachePolicy::default()).unwrap();
    let (key, entry) = numbered(1, 100, 60, now);
    assert!(matches!(
        tiny.insert(&key, entry.clone(), now),
        Err(CacheError::TooLarge { .. })
    ));
    assert!(!tiny.insert_hint(&key, entry, now));
    assert!(tiny.is_empty());
}

#[test]
fn a_scan_does_not_flush_the_hot_set() {
    let now = at(T0);
    let (_, sample) = numbered(0, 2, 3_600, now);
    let per_entry = Cache::entry_bytes(&sample);
    let capacity = per_entry * 100;
    let mut cache = Cache::new(capacity, CachePolicy::default()).unwrap();
    let hot: Vec<(QueryKey, Entry)> = (0..10).map(|n| numbered(n, 2, 3_600, now)).collect();
    for (key, entry) in &hot {
        cache.insert(key, entry.clone(), now).unwrap();
    }
    for _ in 0..2 {
        for (key, _) in &hot {
            assert!(matches!(cache.lookup(key, now), Lookup::Fresh(_)));
        }
    }
    // 10x the capacity in names seen once each: a miss, then an insert.
    for n in 1_000..2_000 {
        let (key, entry) = numbered(n, 2, 3_600, now);
        assert!(matches!(cache.lookup(&key, now), Lookup::Miss));
        cache.insert(&key, entry, now).unwrap();
    }
    for (key, _) in &hot {
        assert!(cache.is_protected(key));
        assert!(matches!(cache.lookup(key, now), Lookup::Fresh(_)));
    }
    let stats = cache.stats();
    assert!(stats.evictions >= 900);
    assert!(stats.entries <= 100);
    cache.check_invariants();

    // Protected is bounded: promoting everything demotes the overflow to
    // probation instead of growing past ~80%.
    let keys: Vec<QueryKey> = (1_900..2_000)
        .map(|n| numbered(n, 2, 3_600, now).0)
        .collect();
    for key in &keys {
        let _ = cache.lookup(key, now);
    }
    let protected = keys
        .iter()
        .chain(hot.iter().map(|(key, _)| key))
        .filter(|key| cache.is_protected(key));
    assert!(protected.count() <= 80);
    cache.check_invariants();
}

#[test]
fn insert_hint_keeps_the_fresher_entry() {
    let mut cache = cache();
    let (key, current) = numbered(1, 2, 300, at(T0));
    cache.insert(&key, current, at(T0)).unwrap();
    // Older (expires sooner) and equal hints are refused.
    let (_, older) = numbered(1, 3, 200, at(T0));
    assert!(!cache.insert_hint(&key, older, at(T0 + 1)));
    let (_, same) = numbered(1, 3, 300, at(T0));
    assert!(!cache.insert_hint(&key, same, at(T0 + 1)));
    assert_eq!(cache.peek(&key).unwrap().expires_at(), at(T0 + 300));
    // A later one replaces it, as a hint from another core would: its
    // timestamps mean the same here.
    let (_, newer) = numbered(1, 3, 300, at(T0 + 10));
    assert!(cache.insert_hint(&key, newer.clone(), at(T0 + 11)));
    let held = cache.peek(&key).unwrap();
    assert_eq!(held.expires_at(), at(T0 + 310));
    assert_eq!(held, &newer);
    // A hint that is already expired, or for another key, is dropped.
    let (other_key, expired) = numbered(2, 1, 5, at(T0));
    assert!(!cache.insert_hint(&other_key, expired.clone(), at(T0 + 5)));
    assert!(!cache.insert_hint(&key, expired, at(T0)));
    let (other_key, fine) = numbered(2, 1, 5, at(T0));
    assert!(cache.insert_hint(&other_key, fine, at(T0)));
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.stats().inserts, 3);
    cache.check_invariants();
}

#[test]
fn remove_and_remove_subtree() {
    let mut cache = cache();
    let names = [
        ("example.com", RecordType::A),
        ("example.com", RecordType::MX),
        ("www.example.com", RecordType::A),
        ("a.b.example.com", RecordType::AAAA),
        ("example.net", RecordType::A),
        ("notexample.com", RecordType::A),
        ("com", RecordType::NS),
    ];
    for (qname, qtype) in names {
        let upstream = response_with(
            qname,
            qtype,
            upstream_flags(Rcode::NOERROR),
            &[rr(Section::Authority, "com", 300, Rd::Soa(300))],
            false,
        );
        let query = Q::new(qname, qtype);
        cache
            .insert(&query.key(), stored(&query, &upstream), at(T0))
            .unwrap();
    }
    assert_eq!(cache.len(), 7);
    assert_eq!(cache.remove_subtree(name("Example.COM").as_wire()), Ok(4));
    cache.check_invariants();
    let left: Vec<&str> = ["example.net", "notexample.com", "com"].to_vec();
    for (qname, qtype) in names {
        let query = Q::new(qname, qtype);
        assert_eq!(
            cache.peek(&query.key()).is_some(),
            left.contains(&qname),
            "{qname}"
        );
    }
    assert!(cache.remove_subtree(b"\x03com").is_err());

    let query = Q::new("example.net", RecordType::A);
    assert!(cache.remove(&query.key()));
    assert!(!cache.remove(&query.key()));
    assert_eq!(cache.len(), 2);
    cache.check_invariants();
    cache.clear();
    assert!(cache.is_empty());
    assert_eq!(cache.stats().bytes, 0);
    cache.check_invariants();
    assert_eq!(cache.remove_subtree(&[0]), Ok(0));
}

#[test]
fn memory_accounting_is_one_allocation() {
    let (_, small) = numbered(1, 2, 300, at(T0));
    let (_, large) = numbered(1, 80, 300, at(T0));
    for entry in [&small, &large] {
        // The wire and the trailer; one RRset, so no extra cut.
        let blob = entry.wire().len() + 10;
        assert_eq!(entry.blob_len(), blob);
        // An owned entry (a hint, a restored entry): glibc's 8-byte
        // header, 16-byte granularity.
        assert_eq!(entry.heap_bytes(), (blob + 8).div_ceil(16) * 16);
        assert_eq!(entry.memory_bytes(), 16 + entry.heap_bytes());
    }
    // Stored: the record (16 bytes of links and counters, then the
    // entry's bytes, rounded up to 8), its share of its page's overhead
    // and end (35 bytes, and the 56 a 4 KiB page of 42 such records has
    // left over) and the table.
    let record = (Cache::SLOT_BYTES + small.blob_len()).div_ceil(8) * 8;
    assert_eq!(record, 96);
    assert_eq!(Cache::entry_bytes(&small), record + 3 + 10);
    assert!(Cache::entry_bytes(&small) < small.memory_bytes() + 10);
    // Over 1 KiB, a record has its own allocation, as glibc lays it out,
    // and its page's `Vec` header.
    assert!(large.blob_len() + Cache::SLOT_BYTES > 1024);
    let own = (Cache::SLOT_BYTES + large.blob_len() + 8).div_ceil(16) * 16;
    assert_eq!(Cache::entry_bytes(&large), own + 24 + 10);
}

#[test]
fn an_ede_code_takes_two_trailer_bytes_only_while_it_is_set() {
    let (_, entry) = numbered(1, 2, 300, at(T0));
    let marked = entry.clone().with_ede(22);
    assert_eq!(marked.ede(), 22);
    assert_eq!(marked.blob_len(), entry.blob_len() + 2);
    assert_eq!(marked.wire(), entry.wire());
    assert_eq!(
        (marked.stored_at(), marked.expires_at(), marked.kind()),
        (entry.stored_at(), entry.expires_at(), entry.kind())
    );
    let changed = marked.clone().with_ede(9);
    assert_eq!((changed.ede(), changed.blob_len()), (9, marked.blob_len()));
    assert_eq!(changed.with_ede(0), entry);
    assert_eq!(entry.clone().with_ede(0), entry);
}

#[test]
fn stored_at_keeps_40_bits_of_milliseconds() {
    let (_, mut entry) = numbered(1, 1, 300, at(T0));
    let late = Timestamp::from_millis((1 << 40) - 1);
    entry.set_times(late, late.add_secs(300));
    assert_eq!(entry.stored_at(), late);
    assert_eq!(entry.expires_at(), late.add_secs(300));
    // Later than 34 years after the epoch: held at the last millisecond.
    let beyond = Timestamp::from_millis(1 << 41);
    entry.set_times(beyond, beyond.add_secs(300));
    assert_eq!(entry.stored_at(), late);
}

#[test]
fn entries_are_send_and_clone() {
    fn hint<T: Send + Clone + 'static>() {}
    hint::<Entry>();
    let _: fn() = || {
        let _ = ClientEdns {
            udp_payload_size: 512,
            dnssec_ok: false,
            cookie: None,
        };
    };
}

// ---------------------------------------------------------------------------
// Serve-stale, prefetch bookkeeping, operator actions
// ---------------------------------------------------------------------------

/// A stale reply to `query` from `entry` at `now` with `limit`.
fn stale_reply(entry: &EntryView, query: &Q, limit: usize, now: Timestamp) -> Vec<u8> {
    let bytes = query.bytes();
    let message = Message::parse(&bytes).unwrap();
    let request = AnswerRequest {
        limit,
        ..AnswerRequest::from_query(&message, 1232)
            .unwrap()
            .with_stale(true)
    };
    let mut out = vec![0u8; 65_535];
    let len = entry.write_answer(&mut out, &request, now).unwrap();
    assert!(len <= limit);
    out.truncate(len);
    HMessage::from_vec(&out).unwrap();
    out
}

#[test]
fn stale_answers_carry_ttl_30_and_the_stale_ede() {
    let (query, upstream) = www_a();
    let entry = stored(&query, &upstream);
    // Long expired: aged TTLs would be 0; stale ones are 30.
    let bytes = stale_reply(&entry, &query, 1232, at(T0 + 400));
    let message = Message::parse(&bytes).unwrap();
    let ttls: Vec<u32> = message.answers().map(|record| record.ttl()).collect();
    assert_eq!(ttls, [STALE_TTL, STALE_TTL]);
    assert_eq!(message.rcode(), Rcode::NOERROR);
    let opt = message.opt().unwrap();
    let options: Vec<_> = opt.options().collect();
    assert_eq!(options.len(), 1);
    assert_eq!(options[0].code, heimdall_wire::edns::EXTENDED_ERROR);
    assert_eq!(
        options[0].data,
        heimdall_wire::ede::STALE_ANSWER.to_be_bytes()
    );
    assert_eq!(bytes.len(), entry.wire().len() + OPT_LEN + STALE_EDE_LEN);
    // A stored TTL below 30 is raised too: the client should not come back
    // at once to a resolver whose upstream is failing.
    let short = www_response(&[answer("www.example.com", 5, Rd::A(1))]);
    let entry_short = stored(&query, &short);
    let bytes = stale_reply(&entry_short, &query, 1232, at(T0 + 10));
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(message.answers().next().unwrap().ttl(), STALE_TTL);

    // Without EDNS: no OPT, so no EDE; TTLs are still 30.
    let plain = Q {
        edns: None,
        ..Q::new("www.example.com", RecordType::A)
    };
    let bytes = stale_reply(&entry, &plain, 512, at(T0 + 400));
    let message = Message::parse(&bytes).unwrap();
    assert!(message.opt().is_none());
    assert!(message.answers().all(|record| record.ttl() == STALE_TTL));
    assert_eq!(bytes.len(), entry.wire().len());

    // The ordinary reply is unchanged by the new field.
    let (_, theirs) = reply(&entry, &query, at(T0 + 100));
    assert_eq!(ttls_of(&theirs), [200, 200]);
}

fn ttls_of(message: &HMessage) -> Vec<u32> {
    message.answers.iter().map(|record| record.ttl).collect()
}

#[test]
fn stale_answers_reserve_room_for_the_ede() {
    let (query, upstream) = big_answer();
    let entry = stored(&query, &upstream);
    let full = entry.wire().len() + OPT_LEN + STALE_EDE_LEN;
    // One byte short of message + OPT + EDE: the last RRset goes, TC set,
    // and the EDE is still there.
    for (limit, answers) in [(full - 1, 6), (full, 16)] {
        let bytes = stale_reply(&entry, &query, limit, at(T0 + 400));
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.answers().count(), answers, "limit {limit}");
        assert_eq!(message.flags().truncated(), answers < 16);
        let opt = message.opt().unwrap();
        assert_eq!(opt.options().count(), 1);
        assert!(message.answers().all(|record| record.ttl() == STALE_TTL));
    }
}

/// A reply to `query` from `entry` at `now` within `limit`, with our
/// COOKIE option answered; stale or not.
fn cookie_reply(
    entry: &EntryView,
    query: &Q,
    cookie: ReplyCookie,
    limit: usize,
    stale: bool,
) -> Vec<u8> {
    let bytes = query.bytes();
    let message = Message::parse(&bytes).unwrap();
    let plain = AnswerRequest::from_query(&message, 1232).unwrap();
    let request = AnswerRequest {
        limit,
        edns: plain.edns.map(|edns| ClientEdns {
            cookie: Some(cookie),
            ..edns
        }),
        ..plain.with_stale(stale)
    };
    let mut out = vec![0u8; 65_535];
    let len = entry
        .write_answer(&mut out, &request, at(T0 + 400))
        .unwrap();
    assert!(len <= limit);
    out.truncate(len);
    out
}

#[test]
fn a_hit_answers_the_clients_cookie_in_its_opt() {
    let cookie = ReplyCookie::new(*b"client!!", *b"0123456789abcdef");
    let (query, upstream) = www_a();
    let entry = stored(&query, &upstream);
    for stale in [false, true] {
        let bytes = cookie_reply(&entry, &query, cookie, 1232, stale);
        let ede = if stale { STALE_EDE_LEN } else { 0 };
        assert_eq!(
            bytes.len(),
            entry.wire().len() + OPT_LEN + ede + ReplyCookie::OPTION_LEN
        );
        let message = Message::parse(&bytes).unwrap();
        let opt = message.opt().unwrap();
        let found = heimdall_wire::cookie::find_cookie(&opt).unwrap().unwrap();
        assert_eq!(found.client(), b"client!!");
        assert_eq!(found.server(), b"0123456789abcdef");
        assert_eq!(opt.options().count(), 1 + usize::from(stale));
        // Cross-check: hickory reads the same option.
        let theirs = HMessage::from_vec(&bytes).unwrap();
        let edns = theirs.edns.as_ref().unwrap();
        assert_eq!(
            edns.option(hickory_proto::rr::rdata::opt::EdnsCode::Cookie),
            Some(&hickory_proto::rr::rdata::opt::EdnsOption::Unknown(
                10,
                cookie.data().to_vec()
            ))
        );
    }
    // The cookie's room is kept when the answer is cut to fit.
    let (query, upstream) = big_answer();
    let entry = stored(&query, &upstream);
    let full = entry.wire().len() + OPT_LEN + ReplyCookie::OPTION_LEN;
    for (limit, answers) in [(full - 1, 6), (full, 16)] {
        let bytes = cookie_reply(&entry, &query, cookie, limit, false);
        let message = Message::parse(&bytes).unwrap();
        assert_eq!(message.answers().count(), answers, "limit {limit}");
        assert_eq!(message.flags().truncated(), answers < 16);
        let opt = message.opt().unwrap();
        assert!(heimdall_wire::cookie::find_cookie(&opt).unwrap().is_some());
    }
}

#[test]
fn slots_count_fresh_hits_and_reset_on_replace() {
    let policy = CachePolicy {
        stale_window: 60,
        ..CachePolicy::default()
    };
    let (query, upstream) = www_a();
    let key = query.key();
    let mut cache = Cache::new(1 << 20, policy).unwrap();
    assert_eq!(cache.lookup_slot(&key, at(T0)).1, SlotInfo::default());
    cache
        .insert(&key, stored(&query, &upstream), at(T0))
        .unwrap();
    for expected in 1..=3 {
        let (lookup, info) = cache.lookup_slot(&key, at(T0 + 1));
        assert!(matches!(lookup, Lookup::Fresh(_)));
        assert_eq!(info.hits, expected);
    }
    // A stale lookup is not a fresh hit.
    let (lookup, info) = cache.lookup_slot(&key, at(T0 + 310));
    assert!(matches!(lookup, Lookup::Stale(_)));
    assert_eq!(info.hits, 3);
    assert_eq!(info.refresh_after, Timestamp::ZERO);
    // The failure recheck mark is kept on the slot...
    assert!(cache.set_refresh_after(&key, at(T0 + 340)));
    assert_eq!(
        cache.lookup_slot(&key, at(T0 + 311)).1.refresh_after,
        at(T0 + 340)
    );
    assert!(matches!(
        cache.peek_usable(&key, at(T0 + 311)),
        Lookup::Stale(_)
    ));
    assert!(matches!(
        cache.peek_usable(&key, at(T0 + 100)),
        Lookup::Fresh(_)
    ));
    assert!(matches!(
        cache.peek_usable(&key, at(T0 + 360)),
        Lookup::Miss
    ));
    // ...and both reset when a new answer replaces the entry.
    let fresh = entry_for(&query, &upstream, at(T0 + 312), &policy).unwrap();
    cache.insert(&key, fresh, at(T0 + 312)).unwrap();
    let info = cache.lookup_slot(&key, at(T0 + 313)).1;
    assert_eq!(
        info,
        SlotInfo {
            hits: 1,
            refresh_after: Timestamp::ZERO
        }
    );
    let other = Q::new("other.example.com", RecordType::A);
    assert!(!cache.set_refresh_after(&other.key(), at(T0)));
    cache.check_invariants();
}

#[test]
fn entries_retain_capacity_and_policy() {
    let mut cache = Cache::new(1 << 20, CachePolicy::default()).unwrap();
    let mut keys = Vec::new();
    for n in 0..20 {
        let (key, entry) = numbered(n, 1, 300, at(T0));
        cache.insert(&key, entry, at(T0)).unwrap();
        keys.push(key);
    }
    assert_eq!(cache.entries().count(), 20);
    // Keep the even hosts only.
    let removed = cache.retain(|entry| {
        let name = entry.question_name();
        // "host<n>": the last digit sits just before the "example" label.
        let digit = name[name.len() - 10];
        (digit - b'0').is_multiple_of(2)
    });
    assert_eq!(removed, 10);
    assert_eq!(cache.len(), 10);
    cache.check_invariants();
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(cache.peek(key).is_some(), n % 2 == 0, "host{n}");
    }
    // Shrinking evicts down to the new bound; growing evicts nothing.
    let one = Cache::entry_bytes(cache.peek(&keys[0]).unwrap());
    let evicted = cache.set_capacity(one * 4 + one / 2);
    assert_eq!((evicted, cache.len()), (6, 4));
    assert!(cache.stats().bytes <= cache.capacity_bytes());
    cache.check_invariants();
    assert_eq!(cache.set_capacity(1 << 20), 0);
    assert_eq!(cache.len(), 4);
    cache.check_invariants();
    // A policy is validated before it replaces the old one.
    let bad = CachePolicy {
        failure_ttl: 0,
        ..CachePolicy::default()
    };
    assert!(cache.set_policy(bad).is_err());
    assert_eq!(cache.policy(), &CachePolicy::default());
    let stale = CachePolicy {
        stale_window: 100,
        ..CachePolicy::default()
    };
    cache.set_policy(stale).unwrap();
    assert_eq!(cache.policy().stale_window, 100);
    // The new stale window applies to entries already stored.
    let kept = keys
        .iter()
        .find(|key| cache.peek(key).is_some())
        .unwrap()
        .clone();
    assert!(matches!(
        cache.lookup(&kept, at(T0 + 350)),
        Lookup::Stale(_)
    ));
}

/// The entry-cost table in docs/TUNING.md ("Cache shard size"): these
/// are the figures it quotes, so a change to `Cache::entry_bytes`, the
/// record or the entry layout fails here until the doc is updated. Sizes
/// are those of a 64-bit glibc target. Print the table with
/// `cargo test -p heimdall-cache entry_cost_table -- --nocapture`.
///
/// Also the goals of the store's layout: an entry costs at most twice its
/// wire size, and at most 1.5 times for answers over 150 bytes.
#[cfg(target_pointer_width = "64")]
#[test]
fn entry_cost_table() {
    let accounted = |qname: &str, records: u8| {
        let query_bytes = messages::query(qname, RecordType::A, 0, None);
        let key = QueryKey::from_packet(&query_bytes).unwrap().1;
        let upstream = messages::a_answer(&query_bytes, records, 300);
        let message = Message::parse(&upstream).unwrap();
        let entry = Entry::from_response(&key, &message, Timestamp::ZERO, &CachePolicy::default())
            .unwrap()
            .unwrap();
        (entry.wire().len(), Cache::entry_bytes(&entry))
    };
    // A 40-character name.
    let forty = format!("{}.example.com", "a".repeat(28));
    // (answer, measured (wire, accounted), documented (wire, 0.x, one
    // allocation, now)): "0.x" is a 152-byte slot, the wire in an
    // `Arc<[u8]>`, TTL offsets and cuts in `SmallVec`s beside it; "one
    // allocation" a 32-byte slot and the wire with a 16-byte trailer in
    // one malloc'd block per entry; "now" a record in the shard's store.
    let table = [
        (
            "`a.io A`, 1 record",
            accounted("a.io", 1),
            (38, 232, 106, 76),
        ),
        (
            "`www.example.com A`, 1 record",
            accounted("www.example.com", 1),
            (49, 243, 122, 91),
        ),
        (
            "`host1.example A`, 2 records",
            accounted("host1.example", 2),
            (63, 257, 138, 109),
        ),
        (
            "40-byte name, 4 A records",
            accounted(&forty, 4),
            (122, 316, 202, 169),
        ),
        (
            "`host1.example A`, 8 records",
            accounted("host1.example", 8),
            (159, 353, 234, 207),
        ),
        (
            "`host1.example A`, 29 records",
            accounted("host1.example", 29),
            (495, 763, 570, 540),
        ),
    ];
    println!("| answer | wire bytes | 0.x | one allocation | now | now / wire |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (answer, (wire, now), (_, old, allocation, _)) in &table {
        let ratio = *now as f64 / *wire as f64;
        println!("| {answer} | {wire} | {old} | {allocation} | {now} | {ratio:.2}x |");
    }
    for (answer, (wire, now), (doc_wire, _, allocation, doc_now)) in table {
        assert_eq!(
            (wire, now),
            (doc_wire, doc_now),
            "{answer}: (wire bytes, accounted bytes)"
        );
        assert!(now <= allocation, "{answer}: costs more than before");
        let goal = if wire > 150 { wire * 3 / 2 } else { wire * 2 };
        assert!(now <= goal, "{answer}: {now} bytes, over {goal}");
    }
}

#[test]
fn copies_from_hints_are_counted_while_they_are_held() {
    let mut cache = cache();
    let (own_key, own) = numbered(1, 1, 300, at(T0));
    let (copy_key, copy) = numbered(2, 1, 300, at(T0));
    assert!(cache.insert(&own_key, own, at(T0)).unwrap());
    assert!(cache.insert_hint(&copy_key, copy, at(T0)));
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.copies), (2, 1));
    // Fetched here after all: no longer a copy.
    let (_, fetched) = numbered(2, 2, 300, at(T0 + 1));
    assert!(cache.insert(&copy_key, fetched, at(T0 + 1)).unwrap());
    assert_eq!(cache.stats().copies, 0);
    let (again_key, again) = numbered(3, 1, 300, at(T0));
    assert!(cache.insert_hint(&again_key, again, at(T0)));
    assert_eq!(cache.stats().copies, 1);
    assert!(cache.remove(&again_key));
    assert_eq!(cache.stats().copies, 0);
    let (last_key, last) = numbered(4, 1, 300, at(T0));
    assert!(cache.insert_hint(&last_key, last, at(T0)));
    cache.clear();
    assert_eq!(cache.stats().copies, 0);
    cache.check_invariants();
}

// ---------------------------------------------------------------------------
// DNSSEC verdicts stored with the entry
// ---------------------------------------------------------------------------

#[test]
fn the_resolvers_verdict_replaces_the_upstream_ad_and_rrsigs_can_be_left_out() {
    let query = Q::new("www.example.com", RecordType::A);
    let upstream = www_response(&[
        answer("www.example.com", 300, Rd::A(1)),
        answer("www.example.com", 300, Rd::Rrsig(40)),
    ]);
    let message = Message::parse(&upstream).unwrap();
    let options = crate::StoreOptions {
        authentic: Some(true),
        strip_dnssec: true,
        ede: 0,
        max_ttl: Some(120),
        trim: crate::Trim::Keep,
        use_once: false,
    };
    let entry = Entry::from_response_with(
        &query.key(),
        &message,
        at(T0),
        &CachePolicy::default(),
        options,
    )
    .unwrap()
    .unwrap();
    assert!(entry.authentic_data());
    assert_eq!(entry.expires_at(), at(T0 + 120), "capped by the signature");
    let stored = Message::parse(entry.wire()).unwrap();
    let types: Vec<RecordType> = stored.answers().map(|record| record.rtype()).collect();
    assert_eq!(types, [RecordType::A], "the RRSIG is left out");
    // AD goes to clients that set AD (or DO) only.
    let mut asks_ad = query;
    asks_ad.flags = asks_ad.flags.with_authentic_data(true);
    let (_, theirs) = reply(&entry, &asks_ad, at(T0));
    assert!(theirs.metadata.authentic_data);
    let (_, theirs) = reply(&entry, &query, at(T0));
    assert!(!theirs.metadata.authentic_data);
    // Kept as is by default, and AD refused when the verdict says so.
    let kept = stored_with(&query, &upstream, crate::StoreOptions::default());
    assert_eq!(Message::parse(kept.wire()).unwrap().answers().count(), 2);
    let refused = crate::StoreOptions {
        authentic: Some(false),
        ..crate::StoreOptions::default()
    };
    let mut ad_upstream = upstream.clone();
    ad_upstream[3] |= 0x20;
    assert!(!stored_with(&query, &ad_upstream, refused).authentic_data());
    assert!(stored_with(&query, &ad_upstream, crate::StoreOptions::default()).authentic_data());
}

#[test]
fn secure_answers_keep_only_what_was_validated_outside_the_answer() {
    let query = Q::new("www.example.com", RecordType::A);
    let upstream = www_response(&[
        answer("www.example.com", 300, Rd::A(1)),
        answer("www.example.com", 300, Rd::RrsigOf(RecordType::A)),
        rr(
            Section::Authority,
            "example.com",
            300,
            Rd::Ns("ns1.example.com"),
        ),
        rr(
            Section::Authority,
            "example.com",
            300,
            Rd::RrsigOf(RecordType::NS),
        ),
        rr(Section::Authority, "example.com", 300, Rd::Soa(60)),
        rr(
            Section::Authority,
            "example.com",
            300,
            Rd::RrsigOf(RecordType::SOA),
        ),
        rr(Section::Additional, "ns1.example.com", 300, Rd::A(53)),
    ]);
    let sections = |trim: crate::Trim| {
        let options = crate::StoreOptions {
            authentic: Some(true),
            trim,
            ..crate::StoreOptions::default()
        };
        let entry = stored_with(&query, &upstream, options);
        let message = Message::parse(entry.wire()).unwrap();
        [Section::Answer, Section::Authority, Section::Additional].map(|section| {
            message
                .records(section)
                .map(|record| {
                    (
                        record.rtype(),
                        record.rdata_bytes().get(..2).map(<[u8]>::to_vec),
                    )
                })
                .map(|(rtype, head)| match rtype {
                    RecordType::RRSIG => {
                        let head = head.unwrap();
                        (rtype, RecordType(u16::from_be_bytes([head[0], head[1]])))
                    }
                    other => (other, other),
                })
                .collect::<Vec<_>>()
        })
    };
    let [answers, authority, additional] = sections(crate::Trim::Keep);
    assert_eq!(
        (answers.len(), authority.len(), additional.len()),
        (2, 4, 1)
    );
    let [answers, authority, additional] = sections(crate::Trim::ToAnswer);
    assert_eq!(answers.len(), 2, "the answer section is never trimmed");
    assert!(authority.is_empty() && additional.is_empty());
    let [_, authority, additional] = sections(crate::Trim::ToProof);
    assert_eq!(
        authority,
        [
            (RecordType::SOA, RecordType::SOA),
            (RecordType::RRSIG, RecordType::SOA)
        ],
        "the proof's records and their signatures, not the NS RRset"
    );
    assert!(additional.is_empty(), "glue is never validated");
}

fn stored_with(query: &Q, response: &[u8], options: crate::StoreOptions) -> Entry {
    let message = Message::parse(response).unwrap();
    Entry::from_response_with(
        &query.key(),
        &message,
        at(T0),
        &CachePolicy::default(),
        options,
    )
    .unwrap()
    .unwrap()
}

#[test]
fn a_remembered_bogus_answer_carries_its_ede() {
    let query = Q::new("www.example.com", RecordType::A);
    let key = query.key();
    let entry = Entry::failure(
        &key,
        &key.name,
        Rcode::SERVFAIL,
        at(T0),
        &CachePolicy::default(),
    )
    .unwrap()
    .with_ede(heimdall_wire::ede::SIGNATURE_EXPIRED);
    assert_eq!(entry.ede(), heimdall_wire::ede::SIGNATURE_EXPIRED);
    let bytes = raw_reply(&entry, &query);
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(message.rcode(), Rcode::SERVFAIL);
    let opt = message.opt().unwrap();
    let options: Vec<_> = opt.options().collect();
    assert_eq!(options.len(), 1);
    assert_eq!(options[0].code, heimdall_wire::edns::EXTENDED_ERROR);
    assert_eq!(options[0].data, 7u16.to_be_bytes());
    // Without EDNS there is nowhere to put it.
    let plain = Q {
        edns: None,
        ..query
    };
    let bytes = raw_reply(&entry, &plain);
    assert!(Message::parse(&bytes).unwrap().opt().is_none());
}

/// The reply to `query` from `entry` at T0, checked only for parsing by
/// hickory (which sees the EDE as an option it need not know).
fn raw_reply(entry: &Entry, query: &Q) -> Vec<u8> {
    let bytes = query.bytes();
    let message = Message::parse(&bytes).unwrap();
    let request = AnswerRequest::from_query(&message, 1232).unwrap();
    let mut out = vec![0u8; 65_535];
    let len = entry.write_answer(&mut out, &request, at(T0)).unwrap();
    out.truncate(len);
    HMessage::from_vec(&out).unwrap();
    out
}

#[test]
fn the_trailer_keeps_times_bits_and_ede() {
    let (key, entry) = numbered(7, 3, 300, Timestamp::from_millis(1_234_567));
    assert_eq!(entry.stored_at(), Timestamp::from_millis(1_234_567));
    assert_eq!(
        entry.expires_at(),
        Timestamp::from_millis(1_234_567 + 300_000)
    );
    assert_eq!(entry.key(), key);
    assert!(entry.matches(&key));
    assert_eq!(entry.kind(), EntryKind::Positive);
    assert_eq!((entry.ede(), entry.rcode()), (0, Rcode::NOERROR));
    let marked = entry.clone().with_ede(9);
    assert_eq!(marked.ede(), 9);
    assert_eq!(marked.wire(), entry.wire());
    assert_eq!(marked.with_ede(0), entry);

    // Lifetimes past 2^31 ms are kept in whole seconds, rounded down.
    let long = CachePolicy {
        max_ttl: 90 * 86_400,
        ..CachePolicy::default()
    };
    let query_bytes = messages::query("long.example", RecordType::A, 0, None);
    let key = QueryKey::from_packet(&query_bytes).unwrap().1;
    let upstream = messages::a_answer(&query_bytes, 1, 80 * 86_400);
    let message = Message::parse(&upstream).unwrap();
    let entry = Entry::from_response(&key, &message, at(T0).add_millis(5), &long)
        .unwrap()
        .unwrap();
    assert_eq!(
        entry.expires_at(),
        at(T0).add_millis(5).add_secs(80 * 86_400)
    );
    let mut restamped = entry.clone();
    restamped.set_times(at(T0), at(T0).add_millis(40 * 86_400_000 + 999));
    assert_eq!(restamped.expires_at(), at(T0).add_secs(40 * 86_400));
    assert_eq!(restamped.stored_at(), at(T0));
}

#[test]
fn ttl_fields_are_found_by_walking_the_records() {
    // Owners as pointers (copied answers), as full names (a TXT-owned
    // authority record under another name) and with RDATA of every size.
    let query = Q::new("www.example.com", RecordType::A);
    let upstream = www_response(&[
        answer("www.example.com", 300, Rd::A(1)),
        answer("www.example.com", 300, Rd::A(2)),
        rr(Section::Authority, "example.com", 300, Rd::Txt(300)),
        rr(Section::Additional, "ns1.example.com", 300, Rd::Aaaa(5)),
    ]);
    let entry = stored(&query, &upstream);
    let message = Message::parse(entry.wire()).unwrap();
    let expected: Vec<u16> = [Section::Answer, Section::Authority, Section::Additional]
        .into_iter()
        .flat_map(|section| message.records(section))
        .map(|record| record.ttl_offset() as u16)
        .collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(&entry.ttl_offsets()[..], &expected[..]);
    assert_eq!(entry.cuts().len(), 3);

    // Bytes that do not parse stop the walk; nothing panics.
    let mut broken = entry.clone();
    let question_end = usize::from(broken.question_end());
    let wire_len = broken.wire().len();
    for at in question_end..wire_len {
        for byte in [0x00, 0x3f, 0x40, 0xc0, 0xff] {
            let mut bytes = broken.blob.to_vec();
            bytes[at] = byte;
            broken.blob = bytes.into_boxed_slice();
            assert!(broken.ttl_offsets().len() <= 4);
            let _ = broken.cuts();
        }
    }
}

#[test]
fn a_shrink_gives_the_tables_room_back_before_it_evicts() {
    let now = at(T0);
    let mut cache = Cache::new(8 << 20, CachePolicy::default()).unwrap();
    for n in 0..50_000 {
        let (key, entry) = numbered(n, 1, 3_600, now);
        cache.insert(&key, entry, now).unwrap();
    }
    assert_eq!(cache.len(), 50_000);
    // A table sized for 50,000 entries (2^16 buckets, 320 KiB) alone is
    // over the new bound: without shrinking it the shard would evict
    // every entry and still not fit.
    let bound = 256 << 10;
    cache.set_capacity(bound);
    let stats = cache.stats();
    assert!(stats.bytes <= bound, "{} bytes over {bound}", stats.bytes);
    assert!(
        stats.entries > 1_000,
        "{} entries left in {bound} bytes",
        stats.entries
    );
    cache.check_invariants();
}

/// The first insert after the index is full used to rehash every entry
/// (hashbrown's resize: each entry's hash is computed again from its
/// record, a cache miss apiece; 94-102 ms at 458,752 entries in a 64 MiB
/// shard). The index now moves a few buckets per insert: no insert
/// hashes more records than [`crate::index::MIGRATE_BUCKETS`] beside the
/// two each eviction hashes (its victim and the record moved into the
/// hole).
#[test]
fn no_insert_rehashes_the_whole_index() {
    let mut cache = Cache::new(4 << 20, CachePolicy::default()).unwrap();
    let (mut worst, mut worst_at) = (0, 0);
    for i in 0..60_000u64 {
        let (key, entry) = numbered(i, 1, 300, at(T0));
        let evictions = cache.stats().evictions;
        let hashed = crate::shard::records_hashed();
        cache.insert(&key, entry, at(T0)).unwrap();
        let evicted = (cache.stats().evictions - evictions) as usize;
        let extra = (crate::shard::records_hashed() - hashed).saturating_sub(2 * evicted);
        if extra > worst {
            (worst, worst_at) = (extra, i);
        }
    }
    assert!(cache.stats().evictions > 0, "the shard never filled");
    assert!(
        worst <= crate::index::MIGRATE_BUCKETS,
        "insert {worst_at} hashed {worst} records beside its evictions'"
    );
    cache.check_invariants();
    let (last, _) = numbered(59_999, 1, 300, at(T0));
    assert!(matches!(cache.lookup(&last, at(T0)), Lookup::Fresh(_)));
}

/// The slowest single insert (with its lookup first, as a miss does), and
/// every insert over 1 ms, while
/// a 64 MiB shard fills with 900,000 one-record answers, and while a full
/// 8 MiB shard churns through 1,500,000 more: the figures
/// docs/ARCHITECTURE.md quotes for the index (a timing, so not a test
/// that can fail; run it on another build to compare):
///
/// `cargo test --release -p heimdall-cache --lib slowest_insert -- --ignored --nocapture`
#[test]
#[ignore = "a timing probe, run by hand"]
fn slowest_insert() {
    for (capacity, count, offset) in [
        (64usize << 20, 900_000u64, 0u64),
        (8 << 20, 1_500_000, 1_000_000),
        // Filling, then churning a full shard.
        (64 << 20, 3_000_000, 3_000_000),
    ] {
        let mut cache = Cache::new(capacity, CachePolicy::default()).unwrap();
        let prepared: Vec<(QueryKey, Entry)> = (offset..offset + count)
            .map(|i| numbered(i, 1, 300, at(T0)))
            .collect();
        let start = std::time::Instant::now();
        let (mut worst, mut worst_at, mut worst_len) = (std::time::Duration::ZERO, 0, 0);
        for (i, (key, entry)) in prepared.into_iter().enumerate() {
            let len = cache.len();
            let timer = std::time::Instant::now();
            assert!(matches!(cache.lookup(&key, at(T0)), Lookup::Miss));
            cache.insert(&key, entry, at(T0)).unwrap();
            if timer.elapsed() > std::time::Duration::from_millis(1) {
                println!("  insert {i} ({len} entries held): {:?}", timer.elapsed());
            }
            if timer.elapsed() > worst {
                (worst, worst_at, worst_len) = (timer.elapsed(), i, len);
            }
        }
        println!(
            "{} MiB shard, {count} inserts in {:?}: slowest {:?} (insert {worst_at}, {worst_len} entries held), {} evictions",
            capacity >> 20,
            start.elapsed(),
            worst,
            cache.stats().evictions
        );
    }
}

/// An entry answers its own key only: not a name that extends it or that
/// it extends, nor one of the same length, nor another type, class, DO or
/// CD bit; with an EDE code set (a longer trailer) the same.
#[test]
fn an_entry_matches_its_own_key_only() {
    let (key, entry) = numbered(7, 2, 300, at(T0));
    let with_ede = entry.clone().with_ede(22);
    let other = |name: &str, edit: &dyn Fn(&mut QueryKey)| {
        let query = messages::query(name, RecordType::A, 0, None);
        let mut key = QueryKey::from_packet(&query).unwrap().1;
        edit(&mut key);
        key
    };
    let same = |_: &mut QueryKey| {};
    assert_eq!(other("HOST7.example", &same), key, "the key ignores case");
    for entry in [&entry, &with_ede] {
        assert!(entry.matches(&key));
        assert!(entry.matches(&other("HOST7.example", &same)));
        for wrong in [
            other("host8.example", &same),
            other("host7.example.com", &same),
            other("x.host7.example", &same),
            other("example", &same),
            other("host7.exampl", &same),
            other("host7.example", &|key| key.qtype = RecordType::AAAA),
            other("host7.example", &|key| key.qclass = Class::CH),
            other("host7.example", &|key| key.dnssec_ok = true),
            other("host7.example", &|key| key.checking_disabled = true),
            other("host7.example", &|key| key.name.clear()),
        ] {
            assert!(!entry.matches(&wrong), "{wrong:?} matched");
        }
    }
}

/// A hit on an entry already protected moves nothing; the entry is marked
/// and, when it reaches protected's tail, goes back to the front instead
/// of being demoted (a second chance): the demotion takes the least
/// recently used entry that was not hit, as moving it at every hit did.
/// A segment where every entry was hit gives at most `SECOND_CHANCES`
/// per demotion.
#[test]
fn a_protected_entry_hit_gets_a_second_chance_at_demotion() {
    let now = at(T0);
    // Names of one length, so every entry costs the same.
    let entry_of = |n: u64| numbered(n, 2, 3_600, now);
    let per_entry = Cache::entry_bytes(&entry_of(100).1);
    let fill = |cache: &mut Cache| {
        // 80 entries promoted in order: protected's share, exactly full;
        // host100 at its tail.
        for n in 100..180 {
            let (key, entry) = entry_of(n);
            cache.insert(&key, entry, now).unwrap();
            assert!(matches!(cache.lookup(&key, now), Lookup::Fresh(_)));
            assert!(cache.is_protected(&key));
        }
    };
    let promote = |cache: &mut Cache, n: u64| {
        let (key, entry) = entry_of(n);
        cache.insert(&key, entry, now).unwrap();
        assert!(matches!(cache.lookup(&key, now), Lookup::Fresh(_)));
        assert!(cache.is_protected(&key));
    };
    let protected = |cache: &Cache, n: u64| cache.is_protected(&entry_of(n).0);

    let mut cache = Cache::new(per_entry * 100, CachePolicy::default()).unwrap();
    fill(&mut cache);
    assert!(matches!(
        cache.lookup(&entry_of(100).0, now),
        Lookup::Fresh(_)
    ));
    promote(&mut cache, 200);
    assert!(
        protected(&cache, 100),
        "the entry hit at the tail was demoted"
    );
    assert!(
        !protected(&cache, 101),
        "the least recent entry not hit stayed"
    );
    assert!((102..180).all(|n| protected(&cache, n)));
    cache.check_invariants();

    // Every entry hit (the head's hit marks nothing: it is the most
    // recent already): eight go back to the front, the ninth is demoted.
    let mut cache = Cache::new(per_entry * 100, CachePolicy::default()).unwrap();
    fill(&mut cache);
    for n in 100..180 {
        assert!(matches!(
            cache.lookup(&entry_of(n).0, now),
            Lookup::Fresh(_)
        ));
    }
    promote(&mut cache, 200);
    assert!((100..108).all(|n| protected(&cache, n)));
    assert!(!protected(&cache, 108), "more than eight second chances");
    assert!((109..180).all(|n| protected(&cache, n)));
    cache.check_invariants();
}
