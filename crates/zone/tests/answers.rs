//! Authoritative answers checked field by field (decoded with
//! hickory-proto): exact matches, CNAME chains, wildcards, NODATA,
//! NXDOMAIN, delegations in both modes, built-in zones, truncation.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use heimdall_wire::{Class, NameBuf, Rcode, RecordType};
use heimdall_zone::{
    DelegationMode, LocalData, Outcome, Reply, Zone, builtin_zones, parse_record_line, parse_zone,
};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType as HType;
use support::{ask, example_data, query_bytes, respond, rr_set, set};

const SOA: &str = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 1800 1209600 300";

fn data() -> LocalData {
    example_data(DelegationMode::Referral)
}

#[test]
fn exact_match_echoes_header_and_question() {
    let reply = ask(&data(), "WWW.Example.COM.", HType::CNAME);
    assert_eq!(reply.metadata.id, 0x4242);
    assert!(reply.metadata.authoritative);
    assert!(reply.metadata.recursion_desired, "RD echoed");
    assert!(
        reply.metadata.recursion_available,
        "RA: a recursive service"
    );
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        reply.queries[0].name().to_string(),
        "WWW.Example.COM.",
        "case kept"
    );
    assert_eq!(
        rr_set(&reply.answers),
        set(&["www.example.com. 300 IN CNAME web.example.com."])
    );
    assert!(reply.authorities.is_empty() && reply.additionals.is_empty());
}

#[test]
fn cname_chain_is_followed_inside_the_zone() {
    let reply = ask(&data(), "alias.example.com.", HType::A);
    assert_eq!(
        rr_set(&reply.answers),
        set(&[
            "alias.example.com. 3600 IN CNAME www.example.com.",
            "www.example.com. 300 IN CNAME web.example.com.",
            "web.example.com. 3600 IN A 192.0.2.80",
            "web.example.com. 3600 IN A 192.0.2.81",
        ])
    );
    // Out of zone: the CNAME alone, NOERROR.
    let reply = ask(&data(), "outside.example.com.", HType::A);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    // Dangling: NXDOMAIN for the target, with the SOA (RFC 6604).
    let reply = ask(&data(), "dangling.example.com.", HType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(rr_set(&reply.authorities), set(&[SOA]));
    // A loop stops when a name repeats.
    let reply = ask(&data(), "loop1.example.com.", HType::A);
    assert_eq!(reply.answers.len(), 2);
}

#[test]
fn wildcards_follow_rfc_4592() {
    let data = data();
    let reply = ask(&data, "foo.wild.example.com.", HType::A);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["foo.wild.example.com. 3600 IN A 192.0.2.99"]),
        "owner is the query name"
    );
    let reply = ask(&data, "a.b.foo.wild.example.com.", HType::TXT);
    assert_eq!(reply.answers.len(), 1, "matches several labels down");
    // Wildcard NODATA.
    let reply = ask(&data, "foo.wild.example.com.", HType::AAAA);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    assert_eq!(rr_set(&reply.authorities), set(&[SOA]));
    // An existing name is not covered by the wildcard ...
    let reply = ask(&data, "exists.wild.example.com.", HType::TXT);
    assert!(reply.answers.is_empty());
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    // ... nor are names below it (closest encloser has no wildcard).
    let reply = ask(&data, "y.exists.wild.example.com.", HType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    // Empty non-terminals block the wildcard above them.
    let reply = ask(&data, "q.ent.example.com.", HType::TXT);
    assert_eq!(reply.answers.len(), 1);
    let reply = ask(&data, "y.ent.example.com.", HType::TXT);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    let reply = ask(&data, "z.y.ent.example.com.", HType::TXT);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    // A wildcard CNAME is synthesized and followed.
    let reply = ask(&data, "q.cnamewild.example.com.", HType::A);
    assert_eq!(
        rr_set(&reply.answers),
        set(&[
            "q.cnamewild.example.com. 3600 IN CNAME web.example.com.",
            "web.example.com. 3600 IN A 192.0.2.80",
            "web.example.com. 3600 IN A 192.0.2.81",
        ])
    );
}

#[test]
fn nodata_and_nxdomain_carry_the_soa_with_the_negative_ttl() {
    let data = data();
    // Empty non-terminal: NODATA, not NXDOMAIN.
    let reply = ask(&data, "b.c.example.com.", HType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    assert_eq!(rr_set(&reply.authorities), set(&[SOA]));
    assert_eq!(
        reply.authorities[0].ttl, 300,
        "min(SOA TTL 3600, MINIMUM 300)"
    );
    let reply = ask(&data, "x.c.example.com.", HType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(reply.metadata.authoritative);
    assert_eq!(rr_set(&reply.authorities), set(&[SOA]));
}

#[test]
fn delegations_give_referrals_or_forward() {
    let referral = data();
    for name in [
        "sub.example.com.",
        "www.sub.example.com.",
        "ns.sub.example.com.",
    ] {
        let reply = ask(&referral, name, HType::A);
        assert!(!reply.metadata.authoritative, "{name}");
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty());
        assert_eq!(
            rr_set(&reply.authorities),
            set(&[
                "sub.example.com. 3600 IN NS ns.sub.example.com.",
                "sub.example.com. 3600 IN NS ns.example.net.",
            ])
        );
        assert_eq!(
            rr_set(&reply.additionals),
            set(&["ns.sub.example.com. 3600 IN A 192.0.2.53"]),
            "glue"
        );
    }
    // DS lives in the parent: NODATA there.
    let reply = ask(&referral, "sub.example.com.", HType::DS);
    assert!(reply.metadata.authoritative);
    assert_eq!(rr_set(&reply.authorities), set(&[SOA]));

    let forward = example_data(DelegationMode::Forward);
    let query = query_bytes(7, "www.sub.example.com.", HType::A, false);
    assert_eq!(respond(&forward, &query, 512).0, Reply::Forward);
    let name = NameBuf::from_presentation("www.sub.example.com.").unwrap();
    assert_eq!(
        forward.lookup(&name.as_name(), RecordType::A, Class::IN, false),
        Outcome::Forward
    );
    // Outside the zone: not local.
    let query = query_bytes(7, "example.org.", HType::A, false);
    assert_eq!(respond(&forward, &query, 512).0, Reply::NotLocal);
    // Wrong class: not local.
    let name = NameBuf::from_presentation("www.example.com.").unwrap();
    assert_eq!(
        forward.lookup(&name.as_name(), RecordType::A, Class::CH, false),
        Outcome::NotLocal
    );
}

#[test]
fn structured_lookup() {
    let data = data();
    let name = NameBuf::from_presentation("mail.example.com.").unwrap();
    let Outcome::Answer(answer) = data.lookup(&name.as_name(), RecordType::A, Class::IN, false)
    else {
        panic!("not answered");
    };
    assert_eq!(answer.rcode, Rcode::NOERROR);
    assert!(answer.authoritative);
    assert_eq!(answer.answer.len(), 1);
    assert_eq!(answer.answer[0].owner, name);
    assert_eq!(answer.answer[0].ttl, 300);
    assert_eq!(&answer.answer[0].rdata[..], [192, 0, 2, 25]);
}

#[test]
fn builtin_zones_answer_locally() {
    let data = data();
    let reply = ask(&data, "localhost.", HType::A);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["localhost. 10800 IN A 127.0.0.1"])
    );
    let reply = ask(&data, "foo.localhost.", HType::AAAA);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["foo.localhost. 10800 IN AAAA ::1"])
    );
    let reply = ask(&data, "1.0.0.127.in-addr.arpa.", HType::PTR);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["1.0.0.127.in-addr.arpa. 10800 IN PTR localhost."])
    );
    let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.";
    let reply = ask(&data, v6, HType::PTR);
    assert_eq!(reply.answers.len(), 1);
    let builtin_soa = "{apex} 10800 IN SOA localhost. nobody.invalid. 1 3600 1200 604800 10800";
    for (name, apex) in [
        ("1.1.168.192.in-addr.arpa.", "168.192.in-addr.arpa."),
        ("4.3.2.10.in-addr.arpa.", "10.in-addr.arpa."),
        ("9.9.20.172.in-addr.arpa.", "20.172.in-addr.arpa."),
        ("9.9.31.172.in-addr.arpa.", "31.172.in-addr.arpa."),
        ("1.1.254.169.in-addr.arpa.", "254.169.in-addr.arpa."),
        ("anything.invalid.", "invalid."),
        (
            "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion.",
            "onion.",
        ),
        ("www.example.onion.", "onion."),
        ("foo.resolver.arpa.", "resolver.arpa."),
        ("1.1.64.100.in-addr.arpa.", "64.100.in-addr.arpa."),
        ("1.1.127.100.in-addr.arpa.", "127.100.in-addr.arpa."),
    ] {
        let reply = ask(&data, name, HType::PTR);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NXDomain,
            "{name}"
        );
        assert!(reply.metadata.authoritative, "{name}");
        assert_eq!(
            rr_set(&reply.authorities),
            set(&[&builtin_soa.replace("{apex}", apex)]),
            "{name}"
        );
    }
    // 172.15 and 172.32 are public, and so is 100.63 (below the shared
    // space); test., home.arpa. and service.arpa. are passed on
    // (crate::builtin says why).
    for name in [
        "1.1.15.172.in-addr.arpa.",
        "1.1.32.172.in-addr.arpa.",
        "1.1.63.100.in-addr.arpa.",
        "1.1.128.100.in-addr.arpa.",
        "host.zone.test.",
        "router.home.arpa.",
        "printer.default.service.arpa.",
    ] {
        let query = query_bytes(1, name, HType::PTR, false);
        assert_eq!(respond(&data, &query, 512).0, Reply::NotLocal, "{name}");
    }
    assert_eq!(builtin_zones().unwrap().len(), 35 + 2 + 64);
}

#[test]
fn user_zone_overrides_a_builtin() {
    let text = "$ORIGIN 168.192.in-addr.arpa.\n$TTL 60\n@ SOA ns.lan. h.lan. 1 2 3 4 5\n1.1 PTR router.lan.\n";
    let records = parse_zone(text, "rev.zone", None, &mut |_| {
        Err(std::io::ErrorKind::NotFound.into())
    })
    .unwrap();
    let data = LocalData::builder()
        .zone(records)
        .builtins(true)
        .build()
        .unwrap();
    let reply = ask(&data, "1.1.168.192.in-addr.arpa.", HType::PTR);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["1.1.168.192.in-addr.arpa. 60 IN PTR router.lan."])
    );
}

#[test]
fn loose_records_and_records_joining_a_zone() {
    let records = [
        "router.lan. 60 A 192.168.1.1",
        "router.lan. 60 AAAA fd00::1",
        "tv.lan. 60 CNAME router.lan.",
        "extra.example.com. 60 A 192.0.2.222",
    ]
    .iter()
    .map(|line| parse_record_line(line, None, 300).unwrap());
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/example.com.zone");
    let zone = heimdall_zone::parse_zone_file(&path, None).unwrap();
    let data = LocalData::builder()
        .zone(zone)
        .records(records)
        .build()
        .unwrap();
    let reply = ask(&data, "router.lan.", HType::AAAA);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["router.lan. 60 IN AAAA fd00::1"])
    );
    let reply = ask(&data, "router.lan.", HType::TXT);
    assert!(
        reply.answers.is_empty() && reply.authorities.is_empty(),
        "NODATA without SOA"
    );
    let reply = ask(&data, "tv.lan.", HType::A);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["tv.lan. 60 IN CNAME router.lan."])
    );
    let query = query_bytes(1, "other.lan.", HType::A, false);
    assert_eq!(respond(&data, &query, 512).0, Reply::NotLocal);
    let reply = ask(&data, "extra.example.com.", HType::A);
    assert!(reply.metadata.authoritative);
    assert_eq!(reply.answers.len(), 1);
}

#[test]
fn truncation_and_edns() {
    let data = data();
    let query = query_bytes(9, "example.com.", HType::TXT, true);
    let (_, reply) = respond(&data, &query, 512);
    let reply = reply.unwrap();
    let edns = reply.edns.as_ref().expect("OPT echoed");
    assert_eq!(edns.max_payload(), 1232);
    assert!(!reply.metadata.truncation);
    // 40 bytes fit the header and question only.
    let (_, reply) = respond(&data, &query, 45);
    let reply = reply.unwrap();
    assert!(reply.metadata.truncation);
    assert!(reply.answers.is_empty());
}

#[test]
fn zone_errors() {
    let parse = |text: &str| {
        parse_zone(text, "z", None, &mut |_| {
            Err(std::io::ErrorKind::NotFound.into())
        })
        .unwrap()
    };
    let no_soa = parse("a.test. 60 A 192.0.2.1\n");
    assert!(
        Zone::new(&no_soa)
            .unwrap_err()
            .to_string()
            .contains("no SOA")
    );
    let outside = parse("t. 60 SOA a. b. 1 2 3 4 5\nx.u. 60 A 192.0.2.1\n");
    assert!(
        Zone::new(&outside)
            .unwrap_err()
            .to_string()
            .contains("outside the zone")
    );
    let both = parse("t. 60 SOA a. b. 1 2 3 4 5\nx.t. 60 CNAME t.\nx.t. 60 A 192.0.2.1\n");
    assert!(
        Zone::new(&both)
            .unwrap_err()
            .to_string()
            .contains("CNAME and other data")
    );
    let zone = Zone::new(&parse("T. 60 SOA a. b. 1 2 3 4 5\n")).unwrap();
    assert_eq!(zone.apex().to_string(), "T.");
    assert_eq!(zone.class(), Class::IN);
    let twice = LocalData::builder()
        .zone(parse("t. 60 SOA a. b. 1 2 3 4 5\n"))
        .zone(parse("t. 60 SOA a. b. 2 2 3 4 5\n"))
        .build();
    assert!(twice.unwrap_err().to_string().contains("defined twice"));
}

#[test]
fn local_data_is_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<LocalData>();
    let shared = std::sync::Arc::new(data());
    let handle = std::thread::spawn({
        let shared = std::sync::Arc::clone(&shared);
        move || ask(&shared, "web.example.com.", HType::A).answers.len()
    });
    assert_eq!(handle.join().unwrap(), 2);
}

fn zone_file(file: &str) -> Vec<heimdall_zone::ZoneRecord> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/zones")
        .join(file);
    heimdall_zone::parse_zone_file(&path, None).unwrap()
}

#[test]
fn realistic_zones_together() {
    let data = LocalData::builder()
        .zone(zone_file("example.com.zone"))
        .zone(zone_file("2.0.192.in-addr.arpa.zone"))
        .zone(zone_file("home.arpa.zone"))
        .zone(zone_file("nested.zone"))
        .builtins(true)
        .build()
        .unwrap();
    // The user's reverse zone replaces the built-in one for 192.0.2.0/24.
    let reply = ask(&data, "81.2.0.192.in-addr.arpa.", HType::PTR);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["81.2.0.192.in-addr.arpa. 86400 IN PTR web.example.com."])
    );
    let reply = ask(&data, "7.2.0.192.in-addr.arpa.", HType::PTR);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(reply.authorities[0].ttl, 3600, "min(86400, 1h)");
    // RFC 2317: the CNAME points into a delegation; the chain stops there.
    let reply = ask(&data, "129.2.0.192.in-addr.arpa.", HType::PTR);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["129.2.0.192.in-addr.arpa. 86400 IN CNAME 129.128\\/25.2.0.192.IN-ADDR.ARPA."])
    );
    assert!(reply.metadata.authoritative);
    // home.arpa: wildcard, CNAME, SRV, included generic SSHFP.
    let reply = ask(&data, "tablet.guest.home.arpa.", HType::A);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["tablet.guest.home.arpa. 300 IN A 192.168.2.1"])
    );
    let reply = ask(&data, "media.home.arpa.", HType::TXT);
    assert_eq!(reply.answers.len(), 2, "CNAME and TXT: {:?}", reply.answers);
    let reply = ask(&data, "laptop.home.arpa.", HType::SSHFP);
    assert_eq!(reply.answers.len(), 1);
    assert!(
        reply.answers[0]
            .data
            .to_string()
            .to_lowercase()
            .contains("123456789abcdef67890")
    );
    let reply = ask(&data, "_ipp._tcp.home.arpa.", HType::SRV);
    assert_eq!(
        rr_set(&reply.answers),
        set(&["_ipp._tcp.home.arpa. 300 IN SRV 0 0 631 printer.home.arpa."])
    );
    let reply = ask(&data, "leaf.other.nested.test.", HType::A);
    assert_eq!(reply.answers.len(), 1);
}

#[test]
fn only_standard_queries_are_answered() {
    use hickory_proto::op::{Message as HMessage, MessageType, OpCode, Query};
    use hickory_proto::rr::Name as HName;
    let data = data();
    let mut notify = HMessage::new(3, MessageType::Query, OpCode::Notify);
    notify.add_query(Query::query(
        HName::from_ascii("example.com.").unwrap(),
        HType::SOA,
    ));
    let bytes = notify.to_vec().unwrap();
    assert_eq!(respond(&data, &bytes, 512).0, Reply::NotLocal);
    let mut two = HMessage::new(4, MessageType::Query, OpCode::Query);
    two.add_query(Query::query(
        HName::from_ascii("example.com.").unwrap(),
        HType::SOA,
    ));
    two.add_query(Query::query(
        HName::from_ascii("example.com.").unwrap(),
        HType::NS,
    ));
    let bytes = two.to_vec().unwrap();
    assert_eq!(respond(&data, &bytes, 512).0, Reply::NotLocal);
}

#[test]
fn dname_redirects_descendants() {
    let data = data();
    let reply = ask(&data, "a.legacy.example.com.", HType::A);
    let mut answers = rr_set(&reply.answers);
    // hickory-proto without its DNSSEC features prints DNAME RDATA as
    // opaque base64; check the owner, TTL and type, then the RDATA bytes.
    let dname = answers.pop_first().unwrap();
    assert!(
        dname.starts_with("a.current.example.com. 3600 IN A"),
        "{dname}"
    );
    assert_eq!(
        answers,
        set(&[
            "a.legacy.example.com. 3600 IN CNAME a.current.example.com.",
            &format!(
                "legacy.example.com. 3600 IN DNAME {}",
                reply.answers[0].data
            ),
        ])
    );
    let dname_rdata = NameBuf::from_presentation("current.example.com.").unwrap();
    let name = NameBuf::from_presentation("a.legacy.example.com.").unwrap();
    let Outcome::Answer(answer) = data.lookup(&name.as_name(), RecordType::A, Class::IN, false)
    else {
        panic!("not answered");
    };
    assert_eq!(answer.answer[0].rtype, RecordType::DNAME);
    assert_eq!(&answer.answer[0].rdata[..], dname_rdata.as_wire());
    let reply = ask(&data, "foo.away.example.com.", HType::A);
    assert_eq!(reply.answers.len(), 2, "out of zone: DNAME and CNAME only");
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let reply = ask(&data, "legacy.example.com.", HType::A);
    assert!(
        reply.answers.is_empty(),
        "the DNAME owner itself is not redirected"
    );
}
