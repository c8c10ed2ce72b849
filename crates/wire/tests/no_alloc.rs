//! The read path allocates nothing: parsing, walking every section, reading
//! names, typed RDATA, EDNS options, query keys, and rejecting malformed
//! input.
//!
//! A counting global allocator counts allocations made by the current
//! thread while counting is switched on (a const-initialized thread-local
//! flag, so the test harness's other threads do not interfere). Messages
//! are built before counting starts; the read path then must register
//! exactly zero allocations. A control check proves the counter works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use heimdall_testkit::messages::name;
use heimdall_testkit::{CountingAllocator, allocations_during};
use heimdall_wire::{
    Caa, Class, EdnsOption, Flags, Message, MessageBuilder, Mx, Name, OptSpec, QueryKey, RData,
    RecordType, Section, Soa, Srv, Txt, WireNameBuf, edns,
};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// A `fmt::Write` that only counts bytes, to print names without a String.
struct ByteCounter(usize);

impl std::fmt::Write for ByteCounter {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0 += text.len();
        Ok(())
    }
}

fn build(
    flags: Flags,
    fill: impl FnOnce(&mut MessageBuilder<'_>) -> heimdall_wire::Result<()>,
) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(0x4242);
    builder.set_flags(flags);
    fill(&mut builder).unwrap();
    let len = builder.finish();
    buf.truncate(len);
    buf
}

fn opt<'o>(options: &'o [EdnsOption<'o>]) -> OptSpec<'o> {
    OptSpec {
        udp_payload_size: 1232,
        extended_rcode: 0,
        version: 0,
        dnssec_ok: true,
        options,
    }
}

/// Well-formed messages: queries with and without EDNS, a compressed
/// five-record response, and responses holding every typed RDATA.
fn valid_messages() -> Vec<Vec<u8>> {
    let query = Flags::default().with_recursion_desired(true);
    let response = query.with_response(true).with_recursion_available(true);
    let (www, zone) = (name("WWW.Example.com"), name("example.com"));
    let (ns1, mx1) = (name("ns1.example.com"), name("mx1.example.com"));
    let hostmaster = name("hostmaster.example.com");
    let cookie = [EdnsOption {
        code: edns::COOKIE,
        data: &[7; 8],
    }];
    let padding = [
        EdnsOption {
            code: edns::COOKIE,
            data: &[7; 24],
        },
        EdnsOption {
            code: edns::PADDING,
            data: &[0; 40],
        },
    ];
    let a = |last: u8| RData::A(Ipv4Addr::new(192, 0, 2, last));
    let txt_bytes = b"\x05hello\x00\x05world";
    let (spf, txt) = (b"\x0bv=spf1 -all", Txt::new(txt_bytes, 0).unwrap());
    vec![
        build(query, |b| {
            b.question(&www.as_name(), RecordType::A, Class::IN)
        }),
        build(query.with_checking_disabled(true), |b| {
            b.question(&www.as_name(), RecordType::AAAA, Class::IN)?;
            b.opt(&opt(&cookie))
        }),
        build(response, |b| {
            b.question(&www.as_name(), RecordType::A, Class::IN)?;
            for last in 1..=5 {
                b.record(
                    Section::Answer,
                    &www.as_name(),
                    RecordType::A,
                    Class::IN,
                    300,
                    &a(last),
                )?;
            }
            Ok(())
        }),
        build(response, |b| {
            b.question(&zone.as_name(), RecordType::ANY, Class::IN)?;
            let answers = [
                (RecordType::AAAA, RData::Aaaa(Ipv6Addr::LOCALHOST)),
                (RecordType::NS, RData::Ns(ns1.as_name())),
                (RecordType::CNAME, RData::Cname(www.as_name())),
                (RecordType::DNAME, RData::Dname(zone.as_name())),
                (RecordType::PTR, RData::Ptr(www.as_name())),
                (
                    RecordType::MX,
                    RData::Mx(Mx {
                        preference: 10,
                        exchange: mx1.as_name(),
                    }),
                ),
                (RecordType::TXT, RData::Txt(txt)),
                (RecordType::TXT, RData::Txt(Txt::new(spf, 0).unwrap())),
                (
                    RecordType::SOA,
                    RData::Soa(Soa {
                        mname: ns1.as_name(),
                        rname: hostmaster.as_name(),
                        serial: 1,
                        refresh: 2,
                        retry: 3,
                        expire: 4,
                        minimum: 5,
                    }),
                ),
                (
                    RecordType::SRV,
                    RData::Srv(Srv {
                        priority: 1,
                        weight: 2,
                        port: 53,
                        target: ns1.as_name(),
                    }),
                ),
                (
                    RecordType::CAA,
                    RData::Caa(Caa {
                        flags: 0,
                        tag: b"issue",
                        value: b"ca.example.net",
                    }),
                ),
                (RecordType(65_280), RData::Unknown(b"\xde\xad")),
            ];
            for (rtype, rdata) in &answers {
                b.record(
                    Section::Answer,
                    &zone.as_name(),
                    *rtype,
                    Class::IN,
                    60,
                    rdata,
                )?;
            }
            b.record(
                Section::Authority,
                &zone.as_name(),
                RecordType::NS,
                Class::IN,
                60,
                &RData::Ns(ns1.as_name()),
            )?;
            b.record(
                Section::Additional,
                &ns1.as_name(),
                RecordType::A,
                Class::IN,
                60,
                &a(53),
            )?;
            b.opt(&opt(&padding))
        }),
    ]
}

/// Messages whose header and framing are fine but whose typed RDATA is
/// not, plus inputs that `Message::parse` or `QueryKey` must reject.
fn malformed_inputs(valid: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let header = |counts: [u16; 4]| -> Vec<u8> {
        let mut out = vec![0x12, 0x34, 0x81, 0x00];
        for count in counts {
            out.extend_from_slice(&count.to_be_bytes());
        }
        out
    };
    let with = |counts: [u16; 4], body: &[u8]| -> Vec<u8> {
        let mut out = header(counts);
        out.extend_from_slice(body);
        out
    };
    let mut out = vec![
        Vec::new(),
        vec![0; 11],
        // Pointer to itself, forward pointer, pointer loop.
        with([1, 0, 0, 0], b"\xc0\x0c\x00\x01\x00\x01"),
        with([1, 0, 0, 0], b"\xc0\x20\x00\x01\x00\x01"),
        with([1, 0, 0, 0], b"\x01a\xc0\x10\xc0\x0c\x00\x01\x00\x01"),
        // 64-byte label, reserved label type.
        with(
            [1, 0, 0, 0],
            &[&[64u8][..], &[b'a'; 64], b"\x00\x00\x01\x00\x01"].concat(),
        ),
        with([1, 0, 0, 0], b"\x80\x00\x00\x01\x00\x01"),
        // Counts promise more than is there.
        with([1, 1, 0, 0], b"\x00\x00\x01\x00\x01"),
        with([2, 0, 0, 0], b"\x00\x00\x01\x00\x01"),
        // OPT in the answer section, OPT with a non-root owner, two OPTs,
        // an EDNS option running past the RDATA.
        with(
            [0, 1, 0, 0],
            b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00",
        ),
        with(
            [0, 0, 0, 1],
            b"\x01a\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00",
        ),
        with(
            [0, 0, 0, 2],
            &[&b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"[..]; 2].concat(),
        ),
        with(
            [0, 0, 0, 1],
            b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x09",
        ),
        // RDATA length past the end.
        with(
            [0, 1, 0, 0],
            b"\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00",
        ),
        // Parses, but typed RDATA is wrong: a 3-byte A, a TXT string
        // running past its RDATA, an MX whose name runs past its RDATA, a
        // CAA with an empty tag; and no question for a query key.
        with(
            [0, 4, 0, 0],
            &[
                &b"\x00\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x03\xc0\x00\x02"[..],
                b"\x00\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x03\x05ab",
                b"\x00\x00\x0f\x00\x01\x00\x00\x00\x3c\x00\x03\x00\x0a\x01",
                b"\x00\x01\x01\x00\x01\x00\x00\x00\x3c\x00\x02\x00\x00",
            ]
            .concat(),
        ),
    ];
    // Every proper prefix of every valid message.
    for message in valid {
        for len in 0..message.len() {
            out.push(message[..len].to_vec());
        }
    }
    out
}

/// Read everything there is to read; returns a checksum so nothing is
/// optimized away. Must not allocate.
fn read_everything(bytes: &[u8], key: &mut QueryKey) -> usize {
    let mut sum = 0usize;
    let message = match Message::parse(bytes) {
        Ok(message) => message,
        Err(err) => return err.offset,
    };
    let mut lower = WireNameBuf::new();
    let mut exact = WireNameBuf::new();
    let mut printed = ByteCounter(0);
    let mut read_name = |name: &Name<'_>, sum: &mut usize| {
        for label in name.labels() {
            *sum += label.len();
        }
        name.write_lower(&mut lower);
        name.write_wire(&mut exact);
        *sum += lower.len() + exact.len() + name.wire_len() + name.label_count();
        let lowered = Name::from_wire(&lower).unwrap();
        assert!(name.eq_ignore_case(&lowered));
        *sum += usize::from(name.eq_exact(&lowered));
        *sum += usize::from(name.is_subdomain_of(&Name::root()));
        write!(printed, "{name}").unwrap();
    };
    sum += usize::from(message.id()) + usize::from(message.rcode().0);
    sum += message.answer_offset() + message.end_offset() + message.trailing_len();
    for question in message.questions() {
        read_name(&question.name, &mut sum);
        sum += usize::from(question.qtype.0) + usize::from(question.qclass.0);
    }
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        for record in message.records(section) {
            read_name(&record.name(), &mut sum);
            sum += record.ttl_offset() + record.rdata_bytes().len() + record.ttl() as usize;
            let Ok(rdata) = record.rdata() else {
                sum += 1;
                continue;
            };
            match rdata {
                RData::A(address) => sum += address.octets().len(),
                RData::Aaaa(address) => sum += address.octets().len(),
                RData::Ns(target)
                | RData::Cname(target)
                | RData::Dname(target)
                | RData::Ptr(target) => {
                    read_name(&target, &mut sum);
                }
                RData::Mx(mx) => {
                    read_name(&mx.exchange, &mut sum);
                    sum += usize::from(mx.preference);
                }
                RData::Txt(txt) => {
                    for string in txt.strings() {
                        sum += string.len() + 1;
                    }
                }
                RData::Soa(soa) => {
                    read_name(&soa.mname, &mut sum);
                    read_name(&soa.rname, &mut sum);
                    sum += soa.serial as usize + soa.minimum as usize;
                }
                RData::Srv(srv) => {
                    read_name(&srv.target, &mut sum);
                    sum += usize::from(srv.port);
                }
                RData::Caa(caa) => sum += caa.tag.len() + caa.value.len(),
                RData::Unknown(bytes) => sum += bytes.len(),
                _ => sum += 1,
            }
        }
    }
    if let Some(opt) = message.opt() {
        sum += usize::from(opt.udp_payload_size()) + usize::from(opt.dnssec_ok());
        for option in opt.options() {
            sum += usize::from(option.code) + option.data.len();
        }
    }
    match QueryKey::from_message(&message) {
        Ok(fresh) => sum += fresh.name.len(),
        Err(err) => sum += err.offset,
    }
    match QueryKey::from_packet(bytes) {
        Ok((_, fresh)) => sum += fresh.name.len() + usize::from(fresh.dnssec_ok),
        Err(err) => sum += err.offset,
    }
    if key.fill_from(&message).is_ok() {
        sum += key.name.len();
    }
    sum + printed.0
}

#[test]
fn counter_counts_this_threads_allocations() {
    let (vec, count) = allocations_during(|| black_box(Vec::<u8>::with_capacity(16)));
    drop(vec);
    assert!(count >= 1, "the counting allocator saw no allocation");
    let ((), count) = allocations_during(|| {
        let boxed = black_box(Box::new(5u64));
        drop(boxed);
    });
    assert_eq!(count, 1);
}

#[test]
fn reading_messages_allocates_nothing() {
    let valid = valid_messages();
    let malformed = malformed_inputs(&valid);
    // The inputs are what they claim to be.
    for bytes in &valid {
        Message::parse(bytes).unwrap();
    }
    let message = Message::parse(&valid[2]).unwrap();
    assert_eq!(message.answers().count(), 5);
    assert!(bytes_are_compressed(&valid[2]));
    let kinds = Message::parse(&valid[3]).unwrap();
    assert!(
        kinds
            .records(Section::Answer)
            .all(|record| record.rdata().is_ok())
    );
    let bad_rdata = Message::parse(&malformed[14]).unwrap();
    assert!(bad_rdata.answers().all(|record| record.rdata().is_err()));
    for bytes in &malformed[..14] {
        assert!(Message::parse(bytes).is_err(), "{bytes:?} should not parse");
    }

    let mut key = QueryKey::from_packet(&valid[0]).unwrap().1;
    let (sum, count) = allocations_during(|| {
        let mut sum = 0usize;
        for bytes in valid.iter().chain(&malformed) {
            sum += read_everything(black_box(bytes), &mut key);
        }
        sum
    });
    assert!(black_box(sum) > 0);
    assert_eq!(count, 0, "the read path allocated {count} times");
}

/// The five answers of the compressed response take 16 bytes each: a
/// 2-byte pointer for the owner and 14 bytes of fixed fields and address.
fn bytes_are_compressed(message: &[u8]) -> bool {
    let parsed = Message::parse(message).unwrap();
    parsed.end_offset() - parsed.answer_offset() == 5 * 16
}
