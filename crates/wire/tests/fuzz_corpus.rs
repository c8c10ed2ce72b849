//! Runs both fuzz target bodies ([`heimdall_wire::fuzzing`]) in the ordinary
//! stable test suite, over a generated corpus:
//!
//! - random byte strings of assorted lengths (some with a plausible header),
//! - mutations of valid messages built with [`MessageBuilder`] (bit flips,
//!   byte insertions and deletions, count-field tweaks, compression pointer
//!   bytes sprinkled in, overwritten length fields, truncations),
//! - every file in `tests/fuzz_regressions/`, `tests/fixtures/` and the
//!   fuzzer's committed seeds in `fuzz/seeds/`, when those folders exist.
//!
//! The generator is a fixed-seed splitmix64, so every run sees the same
//! inputs. The valid messages must parse: the test fails if the parser
//! starts rejecting good input.
//!
//! The valid messages also seed the cargo-fuzz corpus: run
//! `HEIMDALL_WRITE_SEEDS=fuzz/seeds cargo test -p heimdall-wire --test
//! fuzz_corpus write_seeds` from the workspace root (see `fuzz/README.md`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use heimdall_testkit::messages::name;
use heimdall_wire::fuzzing::{parse_rebuild_parse, walk_any_bytes};
use heimdall_wire::{
    Caa, Class, EdnsOption, Flags, Message, MessageBuilder, Mx, NameBuf, OptSpec, RData, Rcode,
    RecordType, Section, Soa, Srv, Txt, edns,
};

use heimdall_testkit::SplitMix64 as Rng;

/// Build one message; `fill` adds questions, records and the OPT.
fn build(
    id: u16,
    flags: Flags,
    fill: impl FnOnce(&mut MessageBuilder<'_>) -> heimdall_wire::Result<()>,
) -> Vec<u8> {
    let mut buf = vec![0u8; 65_535];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(id);
    builder.set_flags(flags);
    fill(&mut builder).unwrap();
    let len = builder.finish();
    buf.truncate(len);
    buf
}

fn query_flags() -> Flags {
    Flags::default().with_recursion_desired(true)
}

fn response_flags() -> Flags {
    Flags::default()
        .with_response(true)
        .with_recursion_desired(true)
        .with_recursion_available(true)
}

fn cookie_opt<'o>(options: &'o [EdnsOption<'o>], dnssec_ok: bool) -> OptSpec<'o> {
    OptSpec {
        udp_payload_size: 1232,
        extended_rcode: 0,
        version: 0,
        dnssec_ok,
        options,
    }
}

const IN: Class = Class::IN;

fn a(b: &mut MessageBuilder<'_>, section: Section, owner: &str, ttl: u32, last: u8) {
    let owner = name(owner);
    let rdata = RData::A(Ipv4Addr::new(192, 0, 2, last));
    b.record(section, &owner.as_name(), RecordType::A, IN, ttl, &rdata)
        .unwrap();
}

/// A few dozen valid messages, named for the seed files.
fn valid_messages() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let qtypes = [
        ("a", RecordType::A),
        ("aaaa", RecordType::AAAA),
        ("mx", RecordType::MX),
        ("ns", RecordType::NS),
        ("soa", RecordType::SOA),
        ("txt", RecordType::TXT),
        ("caa", RecordType::CAA),
        ("any", RecordType::ANY),
        ("ptr", RecordType::PTR),
    ];
    for (index, (label, qtype)) in qtypes.into_iter().enumerate() {
        let label: &'static str = Box::leak(format!("query-{label}").into_boxed_str());
        out.push((
            label,
            build(0x1000 + index as u16, query_flags(), |b| {
                b.question(&name("www.example.com").as_name(), qtype, IN)
            }),
        ));
    }
    let cookie = [EdnsOption {
        code: edns::COOKIE,
        data: &[1, 2, 3, 4, 5, 6, 7, 8],
    }];
    out.push((
        "query-edns-cookie-do-cd",
        build(0x2001, query_flags().with_checking_disabled(true), |b| {
            b.question(&name("WwW.ExAmPlE.CoM").as_name(), RecordType::A, IN)?;
            b.opt(&cookie_opt(&cookie, true))
        }),
    ));
    out.push((
        "query-edns-bare",
        build(0x2002, query_flags(), |b| {
            b.question(&name("example.net").as_name(), RecordType::AAAA, IN)?;
            b.opt(&cookie_opt(&[], false))
        }),
    ));
    out.push((
        "query-srv",
        build(0x2003, query_flags(), |b| {
            b.question(
                &name("_sip._tcp.example.com").as_name(),
                RecordType::SRV,
                IN,
            )
        }),
    ));
    out.push((
        "query-root-ns",
        build(0x2004, Flags::default(), |b| {
            b.question(&NameBuf::root().as_name(), RecordType::NS, IN)
        }),
    ));
    out.push((
        "query-chaos",
        build(0x2005, Flags::default(), |b| {
            b.question(&name("version.bind").as_name(), RecordType::TXT, Class::CH)
        }),
    ));
    out.push((
        "query-escaped-label",
        build(0x2006, query_flags(), |b| {
            b.question(&name("a\\.b\\000c.example").as_name(), RecordType::A, IN)
        }),
    ));
    let long: String = vec!["a"; 127].join(".");
    out.push((
        "query-127-labels",
        build(0x2007, query_flags(), |b| {
            b.question(&name(&long).as_name(), RecordType::A, IN)
        }),
    ));
    let widest = [
        "x".repeat(63),
        "y".repeat(63),
        "z".repeat(63),
        "w".repeat(61),
    ]
    .join(".");
    out.push((
        "query-255-bytes",
        build(0x2008, query_flags(), |b| {
            b.question(&name(&widest).as_name(), RecordType::A, IN)
        }),
    ));
    out.push((
        "query-five-questions",
        build(0x2009, query_flags(), |b| {
            for host in ["a", "b", "c", "d", "e"] {
                let owner = name(&format!("{host}.example.com"));
                b.question(&owner.as_name(), RecordType::A, IN)?;
            }
            Ok(())
        }),
    ));

    // Responses.
    let www = name("www.example.com");
    out.push((
        "response-a-five-compressed",
        build(0x3001, response_flags(), |b| {
            b.question(&www.as_name(), RecordType::A, IN)?;
            for last in 1..=5 {
                a(b, Section::Answer, "www.example.com", 300, last);
            }
            Ok(())
        }),
    ));
    out.push((
        "response-mx-with-glue",
        build(0x3002, response_flags(), |b| {
            let zone = name("example.com");
            b.question(&zone.as_name(), RecordType::MX, IN)?;
            for (preference, host) in [(10u16, "mx1.example.com"), (20, "mx2.example.net")] {
                let exchange = name(host);
                let rdata = RData::Mx(Mx {
                    preference,
                    exchange: exchange.as_name(),
                });
                b.record(
                    Section::Answer,
                    &zone.as_name(),
                    RecordType::MX,
                    IN,
                    3600,
                    &rdata,
                )?;
            }
            a(b, Section::Additional, "mx1.example.com", 3600, 25);
            let v6 = RData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 25));
            let mx1 = name("mx1.example.com");
            b.record(
                Section::Additional,
                &mx1.as_name(),
                RecordType::AAAA,
                IN,
                3600,
                &v6,
            )?;
            b.opt(&cookie_opt(&[], false))
        }),
    ));
    out.push((
        "response-ns-delegation",
        build(0x3003, Flags::default().with_response(true), |b| {
            let child = name("child.example.com");
            b.question(&name("host.child.example.com").as_name(), RecordType::A, IN)?;
            for host in ["ns1.child.example.com", "ns2.elsewhere.org"] {
                let target = name(host);
                let rdata = RData::Ns(target.as_name());
                b.record(
                    Section::Authority,
                    &child.as_name(),
                    RecordType::NS,
                    IN,
                    86_400,
                    &rdata,
                )?;
            }
            a(b, Section::Additional, "ns1.child.example.com", 86_400, 53);
            Ok(())
        }),
    ));
    let soa = |b: &mut MessageBuilder<'_>, section: Section| -> heimdall_wire::Result<()> {
        let (zone, mname, rname) = (
            name("example.com"),
            name("ns1.example.com"),
            name("hostmaster.example.com"),
        );
        let rdata = RData::Soa(Soa {
            mname: mname.as_name(),
            rname: rname.as_name(),
            serial: 2_024_010_101,
            refresh: 7200,
            retry: 3600,
            expire: 1_209_600,
            minimum: 300,
        });
        b.record(section, &zone.as_name(), RecordType::SOA, IN, 3600, &rdata)
    };
    out.push((
        "response-nxdomain-soa-edns",
        build(0x3004, response_flags().with_rcode(Rcode::NXDOMAIN), |b| {
            b.question(&name("nope.example.com").as_name(), RecordType::A, IN)?;
            soa(b, Section::Authority)?;
            let ede = [EdnsOption {
                code: edns::EXTENDED_ERROR,
                data: &[0, 29, b'h', b'i'],
            }];
            b.opt(&cookie_opt(&ede, true))
        }),
    ));
    out.push((
        "response-soa-answer",
        build(0x3005, response_flags().with_authoritative(true), |b| {
            b.question(&name("example.com").as_name(), RecordType::SOA, IN)?;
            soa(b, Section::Answer)
        }),
    ));
    out.push((
        "response-srv",
        build(0x3006, response_flags(), |b| {
            let owner = name("_sip._tcp.example.com");
            b.question(&owner.as_name(), RecordType::SRV, IN)?;
            for (priority, host) in [(10u16, "sip1.example.com"), (20, "sip2.example.com")] {
                let target = name(host);
                let rdata = RData::Srv(Srv {
                    priority,
                    weight: 5,
                    port: 5060,
                    target: target.as_name(),
                });
                b.record(
                    Section::Answer,
                    &owner.as_name(),
                    RecordType::SRV,
                    IN,
                    600,
                    &rdata,
                )?;
            }
            a(b, Section::Additional, "sip1.example.com", 600, 60);
            Ok(())
        }),
    ));
    out.push((
        "response-txt",
        build(0x3007, response_flags(), |b| {
            let owner = name("example.com");
            b.question(&owner.as_name(), RecordType::TXT, IN)?;
            let mut longest = vec![255u8];
            longest.extend(std::iter::repeat_n(b'x', 255));
            let texts: [&[u8]; 3] = [b"\x0bv=spf1 -all", b"\x05hello\x00\x05world", &longest];
            for text in texts {
                let rdata = RData::Txt(Txt::new(text, 0)?);
                b.record(
                    Section::Answer,
                    &owner.as_name(),
                    RecordType::TXT,
                    IN,
                    300,
                    &rdata,
                )?;
            }
            Ok(())
        }),
    ));
    out.push((
        "response-caa",
        build(0x3008, response_flags(), |b| {
            let owner = name("example.com");
            b.question(&owner.as_name(), RecordType::CAA, IN)?;
            for (flags, tag, value) in [
                (0u8, &b"issue"[..], &b"ca.example.net"[..]),
                (128, b"iodef", b"mailto:security@example.com"),
                (0, b"issuewild", b";"),
            ] {
                let rdata = RData::Caa(Caa { flags, tag, value });
                b.record(
                    Section::Answer,
                    &owner.as_name(),
                    RecordType::CAA,
                    IN,
                    300,
                    &rdata,
                )?;
            }
            Ok(())
        }),
    ));
    out.push((
        "response-aaaa",
        build(0x3009, response_flags(), |b| {
            b.question(&www.as_name(), RecordType::AAAA, IN)?;
            for last in [1u16, 2] {
                let rdata = RData::Aaaa(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
                b.record(
                    Section::Answer,
                    &www.as_name(),
                    RecordType::AAAA,
                    IN,
                    300,
                    &rdata,
                )?;
            }
            b.opt(&cookie_opt(&[], true))
        }),
    ));
    out.push((
        "response-cname-chain",
        build(0x300a, response_flags(), |b| {
            b.question(&name("alias.example.com").as_name(), RecordType::A, IN)?;
            for (owner, target) in [
                ("alias.example.com", "alias2.example.net"),
                ("alias2.example.net", "www.example.org"),
            ] {
                let (owner, target) = (name(owner), name(target));
                let rdata = RData::Cname(target.as_name());
                b.record(
                    Section::Answer,
                    &owner.as_name(),
                    RecordType::CNAME,
                    IN,
                    60,
                    &rdata,
                )?;
            }
            a(b, Section::Answer, "www.example.org", 60, 80);
            Ok(())
        }),
    ));
    out.push((
        "response-ptr-dname",
        build(0x300b, response_flags(), |b| {
            let reverse = name("1.2.0.192.in-addr.arpa");
            b.question(&reverse.as_name(), RecordType::PTR, IN)?;
            let target = name("host.example.com");
            b.record(
                Section::Answer,
                &reverse.as_name(),
                RecordType::PTR,
                IN,
                60,
                &RData::Ptr(target.as_name()),
            )?;
            let (old, new) = (name("old.example"), name("new.example"));
            b.record(
                Section::Answer,
                &old.as_name(),
                RecordType::DNAME,
                IN,
                60,
                &RData::Dname(new.as_name()),
            )
        }),
    ));
    out.push((
        "response-opaque-types",
        build(0x300c, response_flags(), |b| {
            let owner = name("example.com");
            b.question(&owner.as_name(), RecordType::ANY, IN)?;
            // RP and MINFO hold names but have no typed view; TYPE65280 is
            // unknown; NULL is empty.
            let rp = b"\x05admin\x07example\x03com\x00\x03txt\x07example\x03com\x00";
            b.record(
                Section::Answer,
                &owner.as_name(),
                RecordType::RP,
                IN,
                60,
                &RData::Unknown(rp),
            )?;
            let minfo = b"\x07example\x03com\x00\x05error\x07example\x03com\x00";
            b.record(
                Section::Answer,
                &owner.as_name(),
                RecordType::MINFO,
                IN,
                60,
                &RData::Unknown(minfo),
            )?;
            b.record(
                Section::Answer,
                &owner.as_name(),
                RecordType(65_280),
                IN,
                60,
                &RData::Unknown(b"\xde\xad\xbe\xef"),
            )?;
            b.record(
                Section::Answer,
                &owner.as_name(),
                RecordType::NULL,
                IN,
                60,
                &RData::Unknown(b""),
            )
        }),
    ));
    out.push((
        "response-edns-options",
        build(0x300d, response_flags(), |b| {
            b.question(&www.as_name(), RecordType::A, IN)?;
            a(b, Section::Answer, "www.example.com", 30, 7);
            let options = [
                EdnsOption {
                    code: edns::COOKIE,
                    data: &[9; 24],
                },
                EdnsOption {
                    code: edns::TCP_KEEPALIVE,
                    data: &[0, 100],
                },
                EdnsOption {
                    code: edns::PADDING,
                    data: &[0; 37],
                },
            ];
            b.opt(&OptSpec {
                udp_payload_size: 4096,
                extended_rcode: 1,
                version: 0,
                dnssec_ok: true,
                options: &options,
            })
        }),
    ));
    out.push((
        "response-mixed-case-owners",
        build(0x300e, response_flags(), |b| {
            b.question(&name("Mixed.Example.COM").as_name(), RecordType::A, IN)?;
            a(b, Section::Answer, "mixed.example.com", 30, 8);
            a(b, Section::Answer, "MIXED.EXAMPLE.COM", 30, 9);
            Ok(())
        }),
    ));
    out.push((
        "response-all-sections",
        build(0x300f, response_flags().with_authentic_data(true), |b| {
            b.question(&www.as_name(), RecordType::A, IN)?;
            a(b, Section::Answer, "www.example.com", 300, 1);
            let ns = name("ns1.example.com");
            let zone = name("example.com");
            b.record(
                Section::Authority,
                &zone.as_name(),
                RecordType::NS,
                IN,
                300,
                &RData::Ns(ns.as_name()),
            )?;
            a(b, Section::Additional, "ns1.example.com", 300, 53);
            b.opt(&cookie_opt(&cookie, false))
        }),
    ));
    out.push((
        "response-servfail-empty",
        build(0x3010, response_flags().with_rcode(Rcode::SERVFAIL), |b| {
            b.question(&www.as_name(), RecordType::A, IN)
        }),
    ));
    out.push(("header-only", build(0x4001, Flags::default(), |_| Ok(()))));
    out
}

/// Hand-assembled messages the builder would not produce.
fn raw_messages() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    // Question "Example.COM", answer owner "example.com" written in full
    // (no compression): letter case must survive a rebuild.
    let mut case = vec![0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    case.extend_from_slice(b"\x07Example\x03COM\x00\x00\x01\x00\x01");
    case.extend_from_slice(
        b"\x07example\x03com\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01",
    );
    out.push(("raw-case-differs", case));
    // MINFO whose names point back at the question: opaque RDATA that
    // changes bytes (not meaning) when decompressed on a rebuild.
    let mut minfo = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    minfo.extend_from_slice(b"\x07example\x03com\x00\x00\x0e\x00\x01");
    minfo.extend_from_slice(b"\xc0\x0c\x00\x0e\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x0c\xc0\x0c");
    out.push(("raw-minfo-compressed", minfo));
    // SRV with a compressed target (allowed on input).
    let mut srv = vec![0, 2, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    srv.extend_from_slice(b"\x04_sip\x04_tcp\x07example\x03com\x00\x00\x21\x00\x01");
    srv.extend_from_slice(
        b"\xc0\x0c\x00\x21\x00\x01\x00\x00\x00\x3c\x00\x08\x00\x01\x00\x02\x13\xc4\xc0\x16",
    );
    out.push(("raw-srv-compressed-target", srv));
    out
}

/// One random mutation of `message`, in place.
fn mutate_once(rng: &mut Rng, message: &mut Vec<u8>) {
    let len = message.len();
    match rng.below(9) {
        // Flip one to four bits.
        0 if len > 0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(len);
                message[at] ^= 1 << rng.below(8);
            }
        }
        // Insert a byte (often a length-ish or pointer-ish value).
        1 => {
            let value = match rng.below(4) {
                0 => 0xc0,
                1 => 0,
                2 => rng.byte() & 0x3f,
                _ => rng.byte(),
            };
            message.insert(rng.below(len + 1), value);
        }
        // Delete a run of bytes.
        2 if len > 0 => {
            let at = rng.below(len);
            let run = 1 + rng.below(4.min(len - at));
            message.drain(at..at + run);
        }
        // Tweak a header count.
        3 if len >= 12 => {
            let at = 4 + 2 * rng.below(4);
            let old = u16::from_be_bytes([message[at], message[at + 1]]);
            let new = match rng.below(5) {
                0 => old.wrapping_add(1),
                1 => old.wrapping_sub(1),
                2 => 0,
                3 => u16::MAX,
                _ => rng.below(8) as u16,
            };
            message[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
        // Sprinkle a compression pointer, usually to a plausible target.
        4 if len >= 2 => {
            let at = rng.below(len - 1);
            let target = match rng.below(3) {
                0 => 12,
                1 => rng.below(len.max(1)),
                _ => rng.below(0x4000),
            } as u16;
            message[at..at + 2].copy_from_slice(&(0xc000 | target).to_be_bytes());
        }
        // Truncate.
        5 if len > 0 => message.truncate(rng.below(len)),
        // Overwrite a 16-bit field (RDLENGTH, type, class...) anywhere.
        6 if len >= 2 => {
            let at = rng.below(len - 1);
            let value = match rng.below(3) {
                0 => 0,
                1 => u16::MAX,
                _ => rng.next_u64() as u16,
            };
            message[at..at + 2].copy_from_slice(&value.to_be_bytes());
        }
        // Set a random byte to a label-type prefix or a special length.
        7 if len > 0 => {
            let at = rng.below(len);
            message[at] = [0x00, 0x3f, 0x40, 0x80, 0xc0, 0xff][rng.below(6)];
        }
        // Duplicate a slice of the message onto its end.
        _ if len > 0 => {
            let start = rng.below(len);
            let end = start + rng.below(len - start + 1);
            message.extend_from_within(start..end);
        }
        _ => message.push(rng.byte()),
    }
}

/// Run both targets on `input`; on a panic, report which input it was.
fn run_targets(label: &str, input: &[u8]) {
    for (target, body) in [
        ("walk_any_bytes", walk_any_bytes as fn(&[u8])),
        ("parse_rebuild_parse", parse_rebuild_parse as fn(&[u8])),
    ] {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(input))) {
            let hex: String = input.iter().map(|byte| format!("{byte:02x}")).collect();
            eprintln!(
                "{target} panicked on {label} ({} bytes): {hex}",
                input.len()
            );
            resume_unwind(panic);
        }
    }
}

/// `parse_rebuild_parse` returns quietly when the rebuild refuses a
/// message; make sure it does not refuse the valid ones, or the roundtrip
/// target would check nothing.
fn assert_rebuilds(label: &str, message: &Message<'_>) {
    let mut buf = vec![0u8; 65_535];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    for question in message.questions() {
        builder
            .question(&question.name, question.qtype, question.qclass)
            .unwrap_or_else(|err| panic!("{label}: question not rebuilt: {err}"));
    }
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        for record in message.records(section) {
            builder
                .copy_record(section, &record)
                .unwrap_or_else(|err| panic!("{label}: {record:?} not copied: {err}"));
        }
    }
}

fn all_valid() -> Vec<(&'static str, Vec<u8>)> {
    let mut messages = valid_messages();
    messages.extend(raw_messages());
    messages
}

#[test]
fn valid_messages_parse_and_survive_both_targets() {
    let messages = all_valid();
    assert!(
        messages.len() >= 30,
        "only {} valid messages",
        messages.len()
    );
    for (label, bytes) in &messages {
        let message = match Message::parse(bytes) {
            Ok(message) => message,
            Err(err) => panic!("valid message {label} does not parse: {err}"),
        };
        let header = *message.header();
        assert_eq!(message.trailing_len(), 0, "{label}");
        assert_eq!(
            message.questions().count(),
            usize::from(header.question_count),
            "{label}"
        );
        assert_eq!(
            message.answers().count(),
            usize::from(header.answer_count),
            "{label}"
        );
        assert_eq!(
            message.authorities().count(),
            usize::from(header.authority_count),
            "{label}"
        );
        assert_eq!(
            message.additionals().count(),
            usize::from(header.additional_count),
            "{label}"
        );
        for section in [Section::Answer, Section::Authority, Section::Additional] {
            for record in message.records(section) {
                if record.rtype() != RecordType::OPT {
                    assert!(record.rdata().is_ok(), "{label}: {record:?}");
                }
            }
        }
        assert_rebuilds(label, &message);
        run_targets(label, bytes);
    }
    // Spot checks that the builders made what they claim.
    let find = |wanted: &str| {
        &messages
            .iter()
            .find(|(label, _)| *label == wanted)
            .unwrap()
            .1
    };
    let five = Message::parse(find("response-a-five-compressed")).unwrap();
    assert_eq!(five.answers().count(), 5);
    let edns = Message::parse(find("response-edns-options")).unwrap();
    assert_eq!(edns.opt().unwrap().options().count(), 3);
}

#[test]
fn random_bytes() {
    let mut rng = Rng(0x5eed_0001);
    for case in 0..8000 {
        let len = match rng.below(4) {
            0 => rng.below(16),
            1 => 12 + rng.below(64),
            2 => rng.below(512),
            _ => rng.below(2048),
        };
        let mut input = rng.bytes(len);
        // Half the time, a header with small counts so parsing gets further.
        if input.len() >= 12 && rng.chance(2) {
            for at in [4usize, 6, 8, 10] {
                input[at] = 0;
                input[at + 1] = rng.below(4) as u8;
            }
        }
        run_targets(&format!("random case {case}"), &input);
    }
}

#[test]
fn mutated_valid_messages() {
    let messages = all_valid();
    let mut rng = Rng(0x5eed_0002);
    let mut parsed = 0usize;
    const CASES: usize = 20_000;
    for case in 0..CASES {
        let (label, original) = &messages[rng.below(messages.len())];
        let mut input = original.clone();
        for _ in 0..=rng.below(3) {
            mutate_once(&mut rng, &mut input);
        }
        parsed += usize::from(Message::parse(&input).is_ok());
        run_targets(&format!("mutation {case} of {label}"), &input);
    }
    // Most mutations break the message, but enough must survive parsing
    // for the rebuild target to get exercised.
    assert!(
        parsed >= CASES / 10,
        "only {parsed} of {CASES} mutations parse"
    );
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn regression_fixture_and_seed_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [
        root.join("tests/fuzz_regressions"),
        root.join("tests/fixtures"),
        root.join("../../fuzz/seeds"),
    ] {
        let files = files_in(&dir);
        assert!(!files.is_empty(), "no files in {}", dir.display());
        for path in files {
            let bytes = std::fs::read(&path).unwrap();
            run_targets(&path.display().to_string(), &bytes);
        }
    }
}

/// Writes the valid messages as seed files when `HEIMDALL_WRITE_SEEDS` names
/// a folder (relative to the workspace root); otherwise does nothing.
#[test]
fn write_seeds() {
    let messages = all_valid();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("HEIMDALL_WRITE_SEEDS") {
        let dir = root.join("../..").join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (label, bytes) in &messages {
            std::fs::write(dir.join(format!("{label}.bin")), bytes).unwrap();
        }
    }
}
