//! Real DNS messages captured from nsd on 127.0.0.1, and messages written
//! by hand from RFC examples (see `tests/fixtures/README.md`).
//!
//! Every `*.bin` file is parsed with `Message::parse`, walked completely
//! (every section, every typed RDATA, every EDNS option), compared field by
//! field with hickory-proto's decoding, copied through our builder, and
//! checked against the facts listed for it below.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use heimdall_testkit::messages::name as n;
use heimdall_wire::{
    Class, Message, MessageBuilder, Name, Opcode, QueryKey, RData, Rcode, Record, RecordType,
    Section, edns,
};
use hickory_proto::op::Message as HMessage;

const SECTIONS: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every `*.bin` fixture, sorted by file name.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn text(name: &Name<'_>) -> String {
    name.to_string()
}

fn records<'a>(message: &Message<'a>, section: Section) -> Vec<Record<'a>> {
    message.records(section).collect()
}

/// The typed RDATA of every record of `section` (OPT excluded).
fn rdatas<'a>(message: &Message<'a>, section: Section) -> Vec<RData<'a>> {
    message
        .records(section)
        .filter(|record| record.rtype() != RecordType::OPT)
        .map(|record| record.rdata().unwrap())
        .collect()
}

fn question(message: &Message<'_>) -> (String, RecordType, Class) {
    let question = message.question().expect("a question");
    (text(&question.name), question.qtype, question.qclass)
}

fn counts(message: &Message<'_>) -> [u16; 4] {
    let header = message.header();
    [
        header.question_count,
        header.answer_count,
        header.authority_count,
        header.additional_count,
    ]
}

fn a(rdata: &RData<'_>) -> Ipv4Addr {
    match rdata {
        RData::A(address) => *address,
        other => panic!("expected A, got {other:?}"),
    }
}

fn target(rdata: &RData<'_>) -> String {
    match rdata {
        RData::Ns(name) | RData::Cname(name) | RData::Dname(name) | RData::Ptr(name) => text(name),
        other => panic!("expected a single-name RDATA, got {other:?}"),
    }
}

fn txt(rdata: &RData<'_>) -> Vec<Vec<u8>> {
    match rdata {
        RData::Txt(txt) => txt.strings().map(<[u8]>::to_vec).collect(),
        other => panic!("expected TXT, got {other:?}"),
    }
}

/// The common authority section of an nsd answer from example.test: the
/// two name servers, with their addresses as additional data.
fn assert_example_ns_in_authority(message: &Message<'_>) {
    let authority = records(message, Section::Authority);
    let names: Vec<String> = authority.iter().map(|r| text(&r.name())).collect();
    assert_eq!(names, ["example.test.", "example.test."]);
    let targets: Vec<String> = rdatas(message, Section::Authority)
        .iter()
        .map(target)
        .collect();
    assert_eq!(targets, ["ns1.example.test.", "ns2.example.test."]);
    assert_glue(message);
}

fn assert_glue(message: &Message<'_>) {
    let glue: Vec<(String, RData<'_>)> = message
        .additionals()
        .filter(|r| r.rtype() != RecordType::OPT)
        .map(|r| (text(&r.name()), r.rdata().unwrap()))
        .filter(|(name, _)| name.starts_with("ns"))
        .collect();
    assert_eq!(glue.len(), 3);
    assert_eq!(glue[0].0, "ns1.example.test.");
    assert_eq!(a(&glue[0].1), Ipv4Addr::new(192, 0, 2, 53));
    assert_eq!(a(&glue[1].1), Ipv4Addr::new(192, 0, 2, 54));
    assert!(
        matches!(glue[2].1, RData::Aaaa(v6) if v6 == "2001:db8::53".parse::<Ipv6Addr>().unwrap())
    );
}

fn assert_soa(rdata: &RData<'_>) {
    let RData::Soa(soa) = rdata else {
        panic!("expected SOA, got {rdata:?}")
    };
    assert_eq!(text(&soa.mname), "ns1.example.test.");
    assert_eq!(text(&soa.rname), "hostmaster.example.test.");
    assert_eq!(
        [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum],
        [2_024_010_101, 7200, 3600, 1_209_600, 300]
    );
}

/// Whether the record's RDATA ends in a compression pointer.
fn rdata_compressed(record: &Record<'_>) -> bool {
    let raw = record.rdata_bytes();
    raw.len() >= 2 && raw[raw.len() - 2] & 0xc0 == 0xc0
}

/// The facts we know about each fixture. Every fixture must be listed.
fn check_facts(file: &str, message: &Message<'_>) {
    let flags = message.flags();
    if file.ends_with(".query.bin") {
        assert!(!flags.response(), "{file}: a query has QR clear");
        assert_eq!(message.header().question_count, 1);
        assert_eq!(message.rcode(), Rcode::NOERROR);
    } else {
        assert!(flags.response(), "{file}: a response has QR set");
    }
    let stem = file.trim_end_matches(".bin");
    match stem {
        "nsd-soa.response" => {
            assert!(flags.authoritative());
            assert_eq!(counts(message), [1, 1, 2, 3]);
            assert_soa(&rdatas(message, Section::Answer)[0]);
            assert_eq!(records(message, Section::Answer)[0].ttl(), 3600);
            assert_example_ns_in_authority(message);
        }
        "nsd-ns.response" => {
            assert_eq!(counts(message), [1, 2, 0, 3]);
            let targets: Vec<String> = rdatas(message, Section::Answer)
                .iter()
                .map(target)
                .collect();
            assert_eq!(targets, ["ns1.example.test.", "ns2.example.test."]);
            // nsd compresses NS targets against the owner.
            assert!(message.answers().all(|r| rdata_compressed(&r)));
            assert_glue(message);
        }
        "nsd-a.response" | "nsd-mixed-case.response" => {
            assert_eq!(counts(message), [1, 1, 2, 3]);
            assert_eq!(
                a(&rdatas(message, Section::Answer)[0]),
                Ipv4Addr::new(192, 0, 2, 80)
            );
            let answer = records(message, Section::Answer);
            // The owner is a pointer to the question, so it has its case.
            assert!(answer[0].name().eq_exact(&message.question().unwrap().name));
            if stem == "nsd-mixed-case.response" {
                assert_eq!(text(&answer[0].name()), "wEb.ExAmPlE.tEsT.");
                let authority = records(message, Section::Authority);
                assert_eq!(text(&authority[0].name()), "ExAmPlE.tEsT.");
                assert!(
                    authority[0]
                        .name()
                        .eq_ignore_case(&n("example.test").as_name())
                );
                assert!(!authority[0].name().eq_exact(&n("example.test").as_name()));
            } else {
                assert_example_ns_in_authority(message);
            }
        }
        "nsd-aaaa.response" => {
            let answer = rdatas(message, Section::Answer);
            assert!(
                matches!(answer[..], [RData::Aaaa(v6)] if v6 == "2001:db8::80".parse::<Ipv6Addr>().unwrap())
            );
            assert_example_ns_in_authority(message);
        }
        "nsd-mx.response" => {
            let exchanges: Vec<(u16, String)> = rdatas(message, Section::Answer)
                .iter()
                .map(|rdata| match rdata {
                    RData::Mx(mx) => (mx.preference, text(&mx.exchange).to_ascii_lowercase()),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                exchanges,
                [
                    (10, "mail.example.test.".to_owned()),
                    (20, "mail2.example.test.".to_owned())
                ]
            );
            assert!(message.answers().all(|r| rdata_compressed(&r)));
            // Additional data: the mail hosts' addresses and the glue.
            let additional: Vec<String> = message.additionals().map(|r| text(&r.name())).collect();
            assert!(additional.contains(&"mail.example.test.".to_owned()));
            assert_eq!(counts(message), [1, 2, 2, 5]);
        }
        "nsd-txt.response" => {
            let strings: Vec<Vec<Vec<u8>>> =
                rdatas(message, Section::Answer).iter().map(txt).collect();
            assert_eq!(
                strings,
                [
                    vec![b"v=spf1 -all".to_vec()],
                    vec![
                        b"multi".to_vec(),
                        b"string".to_vec(),
                        Vec::new(),
                        b"quote\" backslash\\ byte\xff end".to_vec()
                    ],
                ]
            );
        }
        "nsd-caa.response" => {
            let caa: Vec<(u8, Vec<u8>, Vec<u8>)> = rdatas(message, Section::Answer)
                .iter()
                .map(|rdata| match rdata {
                    RData::Caa(caa) => (caa.flags, caa.tag.to_vec(), caa.value.to_vec()),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                caa,
                [
                    (0, b"issue".to_vec(), b"ca.example.net".to_vec()),
                    (
                        128,
                        b"iodef".to_vec(),
                        b"mailto:security@example.test".to_vec()
                    ),
                ]
            );
        }
        "nsd-cname.response" => {
            assert!(flags.recursion_desired(), "RD is copied from the query");
            let answer = records(message, Section::Answer);
            assert_eq!(answer.len(), 2);
            assert_eq!(
                (answer[0].rtype(), answer[0].ttl()),
                (RecordType::CNAME, 300)
            );
            assert_eq!(target(&answer[0].rdata().unwrap()), "web.example.test.");
            assert_eq!(text(&answer[1].name()), "web.example.test.");
            assert_eq!(a(&answer[1].rdata().unwrap()), Ipv4Addr::new(192, 0, 2, 80));
        }
        "nsd-dname.response" => {
            let answer = records(message, Section::Answer);
            assert_eq!(answer.len(), 2);
            assert_eq!(answer[0].rtype(), RecordType::DNAME);
            assert_eq!(text(&answer[0].name()), "old.example.test.");
            assert_eq!(target(&answer[0].rdata().unwrap()), "new.example.net.");
            // DNAME targets go out uncompressed.
            assert_eq!(answer[0].rdata_bytes(), n("new.example.net").as_wire());
            assert_eq!(answer[1].rtype(), RecordType::CNAME);
            assert_eq!(text(&answer[1].name()), "host.old.example.test.");
            assert_eq!(target(&answer[1].rdata().unwrap()), "host.new.example.net.");
        }
        "nsd-ptr.response" => {
            let answer = records(message, Section::Answer);
            assert_eq!(text(&answer[0].name()), "80.2.0.192.in-addr.arpa.");
            assert_eq!(answer[0].ttl(), 86_400);
            assert_eq!(target(&answer[0].rdata().unwrap()), "web.example.test.");
            assert_eq!(
                text(&records(message, Section::Authority)[0].name()),
                "2.0.192.in-addr.arpa."
            );
        }
        "nsd-srv.response" => {
            let srv: Vec<(u16, u16, u16, String)> = rdatas(message, Section::Answer)
                .iter()
                .map(|rdata| match rdata {
                    RData::Srv(srv) => (
                        srv.priority,
                        srv.weight,
                        srv.port,
                        text(&srv.target).to_ascii_lowercase(),
                    ),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                srv,
                [
                    (10, 60, 5060, "sipserver.example.test.".to_owned()),
                    (20, 0, 5061, "sipserver2.example.test.".to_owned()),
                ]
            );
            // SRV targets go out uncompressed.
            assert!(message.answers().all(|r| !rdata_compressed(&r)));
            let first = message.additionals().next().unwrap();
            assert_eq!(text(&first.name()), "sipserver.example.test.");
            assert_eq!(a(&first.rdata().unwrap()), Ipv4Addr::new(192, 0, 2, 60));
        }
        "nsd-unknown-type.response" => {
            let answer = records(message, Section::Answer);
            assert!(answer.iter().all(|r| r.rtype() == RecordType(65_280)));
            let values: Vec<&[u8]> = rdatas(message, Section::Answer)
                .iter()
                .map(|rdata| match rdata {
                    RData::Unknown(bytes) => *bytes,
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(
                values,
                [&[0xde, 0xad, 0xbe, 0xef, 1, 2][..], &[1, 2, 3][..]]
            );
        }
        "nsd-nxdomain.response" => {
            assert_eq!(message.rcode(), Rcode::NXDOMAIN);
            assert!(flags.authoritative());
            assert_eq!(counts(message), [1, 0, 1, 0]);
            let authority = records(message, Section::Authority);
            assert_eq!(authority[0].rtype(), RecordType::SOA);
            // The negative TTL is the SOA minimum (RFC 2308).
            assert_eq!(authority[0].ttl(), 300);
            assert_soa(&authority[0].rdata().unwrap());
        }
        "nsd-nodata.response" => {
            assert_eq!(message.rcode(), Rcode::NOERROR);
            assert_eq!(
                question(message),
                ("web.example.test.".to_owned(), RecordType::MX, Class::IN)
            );
            assert_eq!(counts(message), [1, 0, 1, 0]);
            assert_soa(&rdatas(message, Section::Authority)[0]);
        }
        "nsd-big-tcp.response" | "nsd-big-udp-edns.response" => {
            assert!(!flags.truncated());
            assert!(
                message.bytes().len() > 512,
                "{file} is the >512-byte answer"
            );
            let addresses: Vec<Ipv4Addr> = rdatas(message, Section::Answer).iter().map(a).collect();
            let expected: Vec<Ipv4Addr> =
                (1..=40).map(|i| Ipv4Addr::new(198, 51, 100, i)).collect();
            assert_eq!(addresses, expected);
            // Every owner after the first is a bare pointer.
            assert!(
                message
                    .answers()
                    .all(|r| message.bytes()[r.name().offset()] & 0xc0 == 0xc0)
            );
            if stem == "nsd-big-udp-edns.response" {
                let opt = message.opt().expect("EDNS answer to an EDNS query");
                assert_eq!(opt.udp_payload_size(), 1232);
            } else {
                assert!(message.opt().is_none());
            }
        }
        "nsd-big-udp-truncated.response" => {
            assert!(flags.truncated(), "TC set on the UDP answer");
            assert!(message.bytes().len() <= 512);
            assert!(message.header().answer_count < 40);
            assert_eq!(
                question(message),
                ("big.example.test.".to_owned(), RecordType::A, Class::IN)
            );
        }
        "nsd-edns-do.response" => {
            let opt = message.opt().unwrap();
            assert!(opt.dnssec_ok(), "DO is echoed");
            assert_eq!((opt.udp_payload_size(), opt.version()), (1232, 0));
            assert_soa(&rdatas(message, Section::Answer)[0]);
        }
        "nsd-edns-nsid.response" => {
            let options: Vec<(u16, &[u8])> = message
                .opt()
                .unwrap()
                .options()
                .map(|o| (o.code, o.data))
                .collect();
            assert_eq!(options, [(3, &b"heimdall-fixture"[..])]);
        }
        "nsd-edns-badvers.response" => {
            assert_eq!(message.rcode(), Rcode::BADVERS);
            assert_eq!(flags.header_rcode(), 0);
            let opt = message.opt().unwrap();
            assert_eq!((opt.extended_rcode(), opt.version()), (1, 0));
            assert_eq!(counts(message), [1, 0, 0, 1]);
        }
        "nsd-referral.response" => {
            assert!(!flags.authoritative(), "a referral is not authoritative");
            assert_eq!(counts(message), [1, 0, 1, 1]);
            let authority = records(message, Section::Authority);
            assert_eq!(text(&authority[0].name()), "sub.example.test.");
            assert_eq!(
                target(&authority[0].rdata().unwrap()),
                "ns.sub.example.test."
            );
            let glue = records(message, Section::Additional);
            assert_eq!(text(&glue[0].name()), "ns.sub.example.test.");
            assert_eq!(a(&glue[0].rdata().unwrap()), Ipv4Addr::new(192, 0, 2, 200));
        }
        "nsd-chaos-id-server.response" => {
            let answer = records(message, Section::Answer);
            assert_eq!((answer[0].class(), answer[0].ttl()), (Class::CH, 0));
            assert_eq!(
                txt(&answer[0].rdata().unwrap()),
                [b"heimdall-fixture".to_vec()]
            );
        }
        "nsd-any-tcp.response" => {
            assert!(message.header().answer_count >= 1);
            assert!(
                message
                    .answers()
                    .all(|r| text(&r.name()) == "example.test.")
            );
        }
        "nsd-refused.response" => {
            assert_eq!(message.rcode(), Rcode::REFUSED);
            assert_eq!(counts(message), [1, 0, 0, 0]);
        }
        "nsd-odd-bytes.response" => {
            let owner = records(message, Section::Answer)[0].name();
            let labels: Vec<&[u8]> = owner.labels().collect();
            assert_eq!(labels, [&b"odd.label x\xff"[..], b"example", b"test"]);
            assert_eq!(text(&owner), "odd\\.label\\032x\\255.example.test.");
            assert_eq!(txt(&rdatas(message, Section::Answer)[0]), [b"odd".to_vec()]);
        }
        "nsd-notimp-status.response" => {
            assert_eq!(flags.opcode(), Opcode::STATUS);
            assert_eq!(message.rcode(), Rcode::NOTIMP);
            assert_eq!(counts(message), [0, 0, 0, 0]);
        }
        "rfc1035-4.1.4-compression.response" => {
            let questions: Vec<_> = message.questions().collect();
            assert_eq!(text(&questions[1].name), "F.ISI.ARPA.");
            assert_eq!(questions[1].name.offset(), 20);
            let answer = records(message, Section::Answer);
            assert_eq!(text(&answer[0].name()), "bar.FOO.F.ISI.ARPA.");
            assert_eq!(target(&answer[0].rdata().unwrap()), "abcdefg.ARPA.");
            assert_eq!(
                answer[0].rdata_offset() + 8,
                64,
                "the ARPA pointer is at 64"
            );
            assert_eq!(text(&answer[1].name()), "FOO.F.ISI.ARPA.");
            assert_eq!(
                &message.bytes()[answer[1].name().offset()..][..2],
                &[0xc0, 40]
            );
            assert_eq!(
                message.opt().unwrap().record_offset(),
                92,
                "the root is at 92"
            );
        }
        "rfc3597-unknown-type-class.response" => {
            assert_eq!(
                question(message),
                ("a.example.".to_owned(), RecordType(731), Class(32))
            );
            let answer = records(message, Section::Answer);
            assert_eq!(
                (answer[0].rtype(), answer[0].class()),
                (RecordType(731), Class(32))
            );
            assert!(
                matches!(answer[0].rdata().unwrap(), RData::Unknown(b) if b == [0xab, 0xcd, 0xef, 0x01, 0x23, 0x45])
            );
        }
        "rfc7873-cookie-padding.query" => {
            assert!(flags.recursion_desired() && flags.authentic_data());
            let opt = message.opt().unwrap();
            assert!(opt.dnssec_ok());
            let options: Vec<(u16, Vec<u8>)> =
                opt.options().map(|o| (o.code, o.data.to_vec())).collect();
            assert_eq!(
                options,
                [
                    (
                        edns::COOKIE,
                        vec![0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57]
                    ),
                    (edns::PADDING, vec![0; 16]),
                ]
            );
            let key = QueryKey::from_message(message).unwrap();
            assert!(key.dnssec_ok);
            assert_eq!(&key.name[..], n("www.example.test").as_wire());
        }
        "nsd-edns-do.query" => assert!(message.opt().unwrap().dnssec_ok()),
        "nsd-edns-badvers.query" => assert_eq!(message.opt().unwrap().version(), 1),
        "nsd-edns-nsid.query" => {
            let options: Vec<(u16, usize)> = message
                .opt()
                .unwrap()
                .options()
                .map(|o| (o.code, o.data.len()))
                .collect();
            assert_eq!(options, [(3, 0)]);
        }
        "nsd-big-udp-edns.query" => assert_eq!(message.opt().unwrap().udp_payload_size(), 4096),
        "nsd-notimp-status.query" => assert_eq!(flags.opcode(), Opcode::STATUS),
        "nsd-chaos-id-server.query" => {
            assert_eq!(
                question(message),
                ("id.server.".to_owned(), RecordType::TXT, Class::CH)
            );
        }
        stem if stem.starts_with("nsd-") && stem.ends_with(".query") => {
            // The remaining plain queries: one question, no EDNS.
            assert!(message.opt().is_none(), "{file}");
            assert_eq!(counts(message), [1, 0, 0, 0]);
        }
        _ => panic!("{file}: no expectations listed for this fixture"),
    }
}

#[test]
fn every_fixture_parses_and_agrees_with_hickory() {
    let all = fixtures();
    // 27 nsd query/response pairs and 3 hand-made RFC examples.
    assert_eq!(
        all.len(),
        57,
        "fixture files: {:?}",
        all.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for (file, bytes) in &all {
        let message = Message::parse(bytes).unwrap_or_else(|err| panic!("{file}: {err}"));
        assert_eq!(message.trailing_len(), 0, "{file}");
        support::walk(&message).unwrap_or_else(|err| panic!("{file}: {err}"));
        support::cross_check(bytes).unwrap_or_else(|err| panic!("{file}: {err}"));
        check_facts(file, &message);
    }
}

#[test]
fn every_fixture_survives_a_copy_through_our_builder() {
    for (file, bytes) in fixtures() {
        let original = Message::parse(&bytes).unwrap();
        let mut buf = vec![0u8; 65_535];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(original.id());
        builder.set_flags(original.flags());
        for question in original.questions() {
            builder
                .question(&question.name, question.qtype, question.qclass)
                .unwrap();
        }
        for section in SECTIONS {
            for record in original.records(section) {
                builder
                    .copy_record(section, &record)
                    .unwrap_or_else(|err| panic!("{file}: {err}"));
            }
        }
        let len = builder.finish();
        let copy = &buf[..len];
        let copied = Message::parse(copy).unwrap_or_else(|err| panic!("{file}: {err}"));
        let hickory_original = HMessage::from_vec(&bytes).unwrap();
        // Our view of the copy matches hickory's view of the original, and
        // hickory reads the copy as it read the original.
        support::compare(&copied, &hickory_original).unwrap_or_else(|err| panic!("{file}: {err}"));
        let hickory_copy = HMessage::from_vec(copy).unwrap();
        support::compare_hickory(&hickory_copy, &hickory_original)
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        // The crate's own parse/rebuild/parse check agrees.
        heimdall_wire::fuzzing::parse_rebuild_parse(&bytes);
    }
}

#[test]
fn queries_and_responses_pair_up() {
    let all = fixtures();
    let mut pairs = 0;
    for (file, response_bytes) in &all {
        let Some(stem) = file
            .strip_suffix(".response.bin")
            .filter(|s| s.starts_with("nsd-"))
        else {
            continue;
        };
        let query_bytes = fixture(&format!("{stem}.query.bin"));
        let query = Message::parse(&query_bytes).unwrap();
        let response = Message::parse(response_bytes).unwrap();
        assert_eq!(query.id(), response.id(), "{file}");
        assert_eq!(query.flags().opcode(), response.flags().opcode(), "{file}");
        assert_eq!(
            query.flags().recursion_desired(),
            response.flags().recursion_desired(),
            "{file}"
        );
        if response.header().question_count == 1 {
            // The question comes back byte for byte, letter case included.
            let (asked, answered) = (query.question().unwrap(), response.question().unwrap());
            assert!(asked.name.eq_exact(&answered.name), "{file}");
            assert_eq!(
                (asked.qtype, asked.qclass),
                (answered.qtype, answered.qclass),
                "{file}"
            );
            assert_eq!(
                QueryKey::from_message(&query).unwrap(),
                QueryKey::from_message(&response).unwrap(),
                "{file}"
            );
        }
        pairs += 1;
    }
    assert_eq!(pairs, 27);
}

#[test]
fn query_keys_fold_case_and_carry_do() {
    let plain = QueryKey::from_packet(&fixture("nsd-a.query.bin"))
        .unwrap()
        .1;
    let mixed = QueryKey::from_packet(&fixture("nsd-mixed-case.query.bin"))
        .unwrap()
        .1;
    assert_eq!(plain, mixed, "0x20 case does not split the cache");
    assert_eq!(&plain.name[..], n("web.example.test").as_wire());
    assert_eq!(
        (plain.qtype, plain.qclass, plain.dnssec_ok),
        (RecordType::A, Class::IN, false)
    );
    let with_do = QueryKey::from_packet(&fixture("nsd-edns-do.query.bin"))
        .unwrap()
        .1;
    let without = QueryKey::from_packet(&fixture("nsd-soa.query.bin"))
        .unwrap()
        .1;
    assert!(with_do.dnssec_ok);
    assert_ne!(with_do, without);
    assert_eq!(with_do.name, without.name);
}

#[test]
fn a_truncated_copy_of_a_fixture_is_refused() {
    // Every proper prefix of a real message is refused: the header is short
    // or its counts promise more than is there.
    for (file, bytes) in fixtures() {
        for cut in 0..bytes.len() {
            assert!(
                Message::parse(&bytes[..cut]).is_err(),
                "{file}: prefix of {cut} bytes accepted"
            );
        }
    }
}
