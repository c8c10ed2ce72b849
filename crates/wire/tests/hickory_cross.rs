//! Cross-checks of heimdall-wire against hickory-proto.
//!
//! - Messages written by our `MessageBuilder` are decoded by hickory and
//!   compared field by field with what was put in (hand-written cases for
//!   every record type, compression, `copy_record`, truncation, EDNS and
//!   the out-of-order error, plus a property test over random messages).
//! - Random messages encoded by hickory (which compresses names) are
//!   parsed by `Message::parse` and compared with hickory's own view, then
//!   copied through our builder and compared again.
//!
//! `PROPTEST_CASES` overrides the number of random cases (default 512 per
//! property).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod support;

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use heimdall_testkit::messages::name as n;
use heimdall_wire::{
    Caa, Class, EdnsOption, ErrorKind, Flags, Message, MessageBuilder, Mx, NameBuf, Opcode,
    OptSpec, RData, Rcode, RecordType, Section, Soa, Srv, Txt, edns,
};
use hickory_proto::op::{Edns, Message as HMessage, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{self as hrdata, opt::EdnsOption as HEdnsOption};
use hickory_proto::rr::{DNSClass, RData as HRData, Record as HRecord, RecordType as HType};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use support::{compare, compare_hickory, hickory_name, hickory_wire, wire_of};

const SECTIONS: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];

// ---------------------------------------------------------------------------
// The model: what a test puts into a message, independent of both libraries.
// ---------------------------------------------------------------------------

/// RDATA as put in. (Names are inline 255-byte buffers; the size
/// difference between variants does not matter in a test model.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Rd {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Ns(NameBuf),
    Cname(NameBuf),
    Dname(NameBuf),
    Ptr(NameBuf),
    Mx(u16, NameBuf),
    Txt(Vec<Vec<u8>>),
    /// mname, rname, [serial, refresh, retry, expire, minimum].
    Soa(NameBuf, NameBuf, [u32; 5]),
    /// priority, weight, port, target.
    Srv(u16, u16, u16, NameBuf),
    /// flags, tag, value.
    Caa(u8, Vec<u8>, Vec<u8>),
    /// NULL (type 10) or a type neither library knows: opaque bytes.
    Opaque(u16, Vec<u8>),
}

impl Rd {
    fn rtype(&self) -> RecordType {
        match self {
            Rd::A(_) => RecordType::A,
            Rd::Aaaa(_) => RecordType::AAAA,
            Rd::Ns(_) => RecordType::NS,
            Rd::Cname(_) => RecordType::CNAME,
            Rd::Dname(_) => RecordType::DNAME,
            Rd::Ptr(_) => RecordType::PTR,
            Rd::Mx(..) => RecordType::MX,
            Rd::Txt(_) => RecordType::TXT,
            Rd::Soa(..) => RecordType::SOA,
            Rd::Srv(..) => RecordType::SRV,
            Rd::Caa(..) => RecordType::CAA,
            Rd::Opaque(rtype, _) => RecordType(*rtype),
        }
    }

    fn names(&self) -> Vec<&NameBuf> {
        match self {
            Rd::Ns(name) | Rd::Cname(name) | Rd::Dname(name) | Rd::Ptr(name) => vec![name],
            Rd::Mx(_, name) | Rd::Srv(_, _, _, name) => vec![name],
            Rd::Soa(mname, rname, _) => vec![mname, rname],
            _ => Vec::new(),
        }
    }
}

/// A resource record as put in.
#[derive(Debug, Clone)]
struct Rr {
    name: NameBuf,
    class: u16,
    ttl: u32,
    rd: Rd,
}

/// The OPT record as put in.
#[derive(Debug, Clone)]
struct EdnsModel {
    payload: u16,
    ext_rcode: u8,
    version: u8,
    dnssec_ok: bool,
    /// The 15 EDNS flag bits after DO (our builder always writes zero).
    z: u16,
    options: Vec<(u16, Vec<u8>)>,
}

/// A whole message as put in.
#[derive(Debug, Clone)]
struct Model {
    id: u16,
    /// QR, opcode, AA, TC, RD, RA, AD, CD and the header's 4 rcode bits.
    flags: Flags,
    questions: Vec<(NameBuf, u16, u16)>,
    sections: [Vec<Rr>; 3],
    edns: Option<EdnsModel>,
}

impl Model {
    fn new(id: u16, flags: Flags) -> Self {
        Self {
            id,
            flags,
            questions: Vec::new(),
            sections: Default::default(),
            edns: None,
        }
    }

    fn question(mut self, name: &str, qtype: RecordType) -> Self {
        self.questions.push((n(name), qtype.0, Class::IN.0));
        self
    }

    fn rr(mut self, section: Section, name: &str, ttl: u32, rd: Rd) -> Self {
        let index = SECTIONS.iter().position(|s| *s == section).unwrap();
        self.sections[index].push(Rr {
            name: n(name),
            class: Class::IN.0,
            ttl,
            rd,
        });
        self
    }

    /// Every name in the message, in order of appearance.
    fn all_names(&self) -> Vec<&NameBuf> {
        let mut names: Vec<&NameBuf> = self.questions.iter().map(|(name, _, _)| name).collect();
        for rr in self.sections.iter().flatten() {
            names.push(&rr.name);
            names.extend(rr.rd.names());
        }
        names
    }

    /// Whether two names share a suffix that is equal ignoring case but
    /// spelled differently: a compressor that matched case-insensitively
    /// would then read the later spelling back as the earlier one.
    fn has_case_variants(&self) -> bool {
        let mut spellings: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for name in self.all_names() {
            let labels: Vec<&[u8]> = name.as_name().labels().collect();
            for start in 0..labels.len() {
                let mut suffix = Vec::new();
                for label in &labels[start..] {
                    suffix.push(label.len() as u8);
                    suffix.extend_from_slice(label);
                }
                let key = suffix.to_ascii_lowercase();
                if spellings.entry(key).or_insert_with(|| suffix.clone()) != &suffix {
                    return true;
                }
            }
        }
        false
    }
}

fn txt_wire(strings: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for string in strings {
        out.push(u8::try_from(string.len()).unwrap());
        out.extend_from_slice(string);
    }
    out
}

// ---------------------------------------------------------------------------
// Model -> our builder, model -> hickory.
// ---------------------------------------------------------------------------

fn add_record(
    builder: &mut MessageBuilder<'_>,
    section: Section,
    rr: &Rr,
) -> heimdall_wire::Result<()> {
    let txt_bytes;
    let rdata = match &rr.rd {
        Rd::A(address) => RData::A(*address),
        Rd::Aaaa(address) => RData::Aaaa(*address),
        Rd::Ns(name) => RData::Ns(name.as_name()),
        Rd::Cname(name) => RData::Cname(name.as_name()),
        Rd::Dname(name) => RData::Dname(name.as_name()),
        Rd::Ptr(name) => RData::Ptr(name.as_name()),
        Rd::Mx(preference, exchange) => RData::Mx(Mx {
            preference: *preference,
            exchange: exchange.as_name(),
        }),
        Rd::Txt(strings) => {
            txt_bytes = txt_wire(strings);
            RData::Txt(Txt::new(&txt_bytes, 0).unwrap())
        }
        Rd::Soa(mname, rname, [serial, refresh, retry, expire, minimum]) => RData::Soa(Soa {
            mname: mname.as_name(),
            rname: rname.as_name(),
            serial: *serial,
            refresh: *refresh,
            retry: *retry,
            expire: *expire,
            minimum: *minimum,
        }),
        Rd::Srv(priority, weight, port, target) => RData::Srv(Srv {
            priority: *priority,
            weight: *weight,
            port: *port,
            target: target.as_name(),
        }),
        Rd::Caa(flags, tag, value) => RData::Caa(Caa {
            flags: *flags,
            tag,
            value,
        }),
        Rd::Opaque(_, bytes) => RData::Unknown(bytes),
    };
    builder.record(
        section,
        &rr.name.as_name(),
        rr.rd.rtype(),
        Class(rr.class),
        rr.ttl,
        &rdata,
    )
}

fn add_opt(builder: &mut MessageBuilder<'_>, edns: &EdnsModel) -> heimdall_wire::Result<()> {
    let options: Vec<EdnsOption<'_>> = edns
        .options
        .iter()
        .map(|(code, data)| EdnsOption { code: *code, data })
        .collect();
    builder.opt(&opt_spec(edns, &options))
}

fn opt_spec<'o>(edns: &EdnsModel, options: &'o [EdnsOption<'o>]) -> OptSpec<'o> {
    OptSpec {
        udp_payload_size: edns.payload,
        extended_rcode: edns.ext_rcode,
        version: edns.version,
        dnssec_ok: edns.dnssec_ok,
        options,
    }
}

/// Write the model with our builder into a 64 KiB buffer.
fn build_ours(model: &Model) -> Vec<u8> {
    let mut buf = vec![0u8; 65_535];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(model.id);
    builder.set_flags(model.flags);
    for (name, qtype, qclass) in &model.questions {
        builder
            .question(&name.as_name(), RecordType(*qtype), Class(*qclass))
            .unwrap();
    }
    for (section, records) in SECTIONS.iter().zip(&model.sections) {
        for rr in records {
            add_record(&mut builder, *section, rr).unwrap();
        }
    }
    if let Some(edns) = &model.edns {
        add_opt(&mut builder, edns).unwrap();
    }
    assert!(!builder.truncated());
    let len = builder.finish();
    buf.truncate(len);
    buf
}

fn hname(name: &NameBuf) -> hickory_proto::rr::Name {
    hickory_name(name.as_wire())
}

fn hickory_record(rr: &Rr) -> HRecord {
    let data = match &rr.rd {
        Rd::A(address) => HRData::A(hrdata::A(*address)),
        Rd::Aaaa(address) => HRData::AAAA(hrdata::AAAA(*address)),
        Rd::Ns(name) => HRData::NS(hrdata::NS(hname(name))),
        Rd::Cname(name) => HRData::CNAME(hrdata::CNAME(hname(name))),
        Rd::Ptr(name) => HRData::PTR(hrdata::PTR(hname(name))),
        // hickory has no DNAME type: its RDATA is the uncompressed target.
        Rd::Dname(name) => HRData::Unknown {
            code: HType::DNAME,
            rdata: hrdata::NULL::with(name.as_wire().to_vec()),
        },
        Rd::Mx(preference, exchange) => HRData::MX(hrdata::MX::new(*preference, hname(exchange))),
        Rd::Txt(strings) => HRData::TXT(hrdata::TXT::from_bytes(
            strings.iter().map(Vec::as_slice).collect(),
        )),
        Rd::Soa(mname, rname, [serial, refresh, retry, expire, minimum]) => {
            HRData::SOA(hrdata::SOA::new(
                hname(mname),
                hname(rname),
                *serial,
                *refresh as i32,
                *retry as i32,
                *expire as i32,
                *minimum,
            ))
        }
        Rd::Srv(priority, weight, port, target) => {
            HRData::SRV(hrdata::SRV::new(*priority, *weight, *port, hname(target)))
        }
        Rd::Caa(flags, tag, value) => {
            let mut caa = hrdata::CAA::new_issue(false, None, Vec::new());
            caa.issuer_critical = flags & 0x80 != 0;
            caa.reserved_flags = flags & 0x7f;
            caa.tag = String::from_utf8(tag.clone()).unwrap();
            caa.value = value.clone();
            HRData::CAA(caa)
        }
        Rd::Opaque(10, bytes) => HRData::NULL(hrdata::NULL::with(bytes.clone())),
        Rd::Opaque(rtype, bytes) => HRData::Unknown {
            code: HType::from(*rtype),
            rdata: hrdata::NULL::with(bytes.clone()),
        },
    };
    let mut record = HRecord::from_rdata(hname(&rr.name), rr.ttl, data);
    record.dns_class = DNSClass::from(rr.class);
    record
}

/// The model as a hickory message.
fn to_hickory(model: &Model) -> HMessage {
    let flags = model.flags;
    let message_type = if flags.response() {
        MessageType::Response
    } else {
        MessageType::Query
    };
    let mut message = HMessage::new(model.id, message_type, OpCode::from_u8(flags.opcode().0));
    let ext_rcode = model.edns.as_ref().map_or(0, |edns| edns.ext_rcode);
    let meta = &mut message.metadata;
    meta.authoritative = flags.authoritative();
    meta.truncation = flags.truncated();
    meta.recursion_desired = flags.recursion_desired();
    meta.recursion_available = flags.recursion_available();
    meta.authentic_data = flags.authentic_data();
    meta.checking_disabled = flags.checking_disabled();
    meta.response_code = ResponseCode::from(ext_rcode, flags.header_rcode());
    for (name, qtype, qclass) in &model.questions {
        let mut query = Query::query(hname(name), HType::from(*qtype));
        query.set_query_class(DNSClass::from(*qclass));
        message.add_query(query);
    }
    let [answers, authorities, additionals] = &model.sections;
    message.add_answers(answers.iter().map(hickory_record));
    message.add_authorities(authorities.iter().map(hickory_record));
    message.add_additionals(additionals.iter().map(hickory_record));
    if let Some(model_edns) = &model.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(model_edns.payload);
        edns.set_version(model_edns.version);
        edns.set_rcode_high(model_edns.ext_rcode);
        edns.set_dnssec_ok(model_edns.dnssec_ok);
        edns.flags_mut().z = model_edns.z;
        for (code, data) in &model_edns.options {
            edns.options_mut()
                .insert(HEdnsOption::Unknown(*code, data.clone()));
        }
        message.set_edns(edns);
    }
    message
}

/// Decode our bytes with hickory and compare with the model, both through
/// hickory and through our own parser.
fn check_ours_against_model(bytes: &[u8], model: &Model) -> Result<HMessage, String> {
    let expected = to_hickory(model);
    let decoded =
        HMessage::from_vec(bytes).map_err(|err| format!("hickory refused our message: {err}"))?;
    compare_hickory(&decoded, &expected)?;
    let ours = Message::parse(bytes).map_err(|err| format!("we refused our message: {err}"))?;
    support::walk(&ours)?;
    compare(&ours, &expected)?;
    compare(&ours, &decoded)?;
    check_uncompressed_targets(&ours)?;
    Ok(decoded)
}

/// [`check_ours_against_model`] for a message that must pass.
fn decode_ours(bytes: &[u8], model: &Model) -> HMessage {
    check_ours_against_model(bytes, model).unwrap_or_else(|err| panic!("{err}"))
}

/// RFC 3597 section 4: names in SRV and DNAME RDATA are never compressed.
fn check_uncompressed_targets(message: &Message<'_>) -> Result<(), String> {
    for record in SECTIONS
        .iter()
        .flat_map(|section| message.records(*section))
    {
        let (raw, target) = match record.rdata() {
            Ok(RData::Srv(srv)) => (&record.rdata_bytes()[6..], wire_of(&srv.target)),
            Ok(RData::Dname(target)) => (record.rdata_bytes(), wire_of(&target)),
            _ => continue,
        };
        if raw != target.as_slice() {
            return Err(format!(
                "{:?} target written compressed: {raw:02x?}",
                record.rtype()
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Our builder, hand-written cases.
// ---------------------------------------------------------------------------

fn every_type_model() -> Model {
    let flags = Flags::default()
        .with_response(true)
        .with_opcode(Opcode::QUERY)
        .with_authoritative(true)
        .with_recursion_desired(true)
        .with_recursion_available(true)
        .with_authentic_data(true)
        .with_checking_disabled(true)
        .with_rcode(Rcode::from_parts(3, 0x2a));
    let mut model = Model::new(0xbeef, flags)
        .question("WWW.Example.COM", RecordType::A)
        .question("Example.COM", RecordType(65_280))
        .rr(
            Section::Answer,
            "WWW.Example.COM",
            300,
            Rd::Cname(n("Web.Example.COM")),
        )
        .rr(
            Section::Answer,
            "Web.Example.COM",
            3600,
            Rd::A(Ipv4Addr::new(192, 0, 2, 80)),
        )
        .rr(
            Section::Answer,
            "Web.Example.COM",
            3600,
            Rd::A(Ipv4Addr::new(192, 0, 2, 81)),
        )
        .rr(
            Section::Answer,
            "Web.Example.COM",
            3600,
            Rd::Aaaa("2001:db8::80".parse().unwrap()),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            60,
            Rd::Mx(10, n("Mail.Example.COM")),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            60,
            Rd::Mx(20, n("mx2.other.example")),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            60,
            Rd::Txt(vec![
                b"v=spf1 -all".to_vec(),
                Vec::new(),
                b"a \"quoted\" \xff".to_vec(),
            ]),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            60,
            Rd::Txt(vec![vec![b'x'; 255]]),
        )
        .rr(
            Section::Answer,
            "_sip._tcp.Example.COM",
            60,
            Rd::Srv(10, 60, 5060, n("Sip.Example.COM")),
        )
        .rr(
            Section::Answer,
            "Old.Example.COM",
            60,
            Rd::Dname(n("New.Example.COM")),
        )
        .rr(
            Section::Answer,
            "80.2.0.192.in-addr.arpa",
            60,
            Rd::Ptr(n("Web.Example.COM")),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            60,
            Rd::Caa(0, b"issue".to_vec(), b"ca.example.net".to_vec()),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            60,
            Rd::Caa(
                128,
                b"iodef".to_vec(),
                b"mailto:security@example.com".to_vec(),
            ),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            0,
            Rd::Opaque(65_280, vec![0xde, 0xad, 0xbe, 0xef]),
        )
        .rr(
            Section::Answer,
            "Example.COM",
            0,
            Rd::Opaque(10, vec![0, 1, 2, 0xc0, 0x0c]),
        )
        .rr(
            Section::Authority,
            "Example.COM",
            86_400,
            Rd::Ns(n("Ns1.Example.COM")),
        )
        .rr(
            Section::Authority,
            "Example.COM",
            86_400,
            Rd::Ns(n("ns.Elsewhere.NET")),
        )
        .rr(
            Section::Authority,
            "Example.COM",
            u32::MAX,
            Rd::Soa(
                n("Ns1.Example.COM"),
                n("Host\\.Master.Example.COM"),
                [2_024_010_101, 7200, 3600, 1_209_600, 300],
            ),
        )
        .rr(
            Section::Additional,
            "Ns1.Example.COM",
            3600,
            Rd::A(Ipv4Addr::new(192, 0, 2, 53)),
        )
        .rr(
            Section::Additional,
            "Sip.Example.COM",
            3600,
            Rd::Aaaa(Ipv6Addr::LOCALHOST),
        );
    model.sections[2].push(Rr {
        name: n("ns.Elsewhere.NET"),
        class: Class::CH.0,
        ttl: 1,
        rd: Rd::A(Ipv4Addr::BROADCAST),
    });
    model.edns = Some(EdnsModel {
        payload: 1232,
        ext_rcode: 0x2a,
        version: 0,
        dnssec_ok: true,
        z: 0,
        options: vec![
            (edns::COOKIE, vec![1, 2, 3, 4, 5, 6, 7, 8]),
            (edns::PADDING, vec![0; 20]),
            (65_001, Vec::new()),
            (3, b"nsid".to_vec()),
        ],
    });
    model
}

#[test]
fn every_record_type_written_by_us_reads_back_in_hickory() {
    let model = every_type_model();
    let bytes = build_ours(&model);
    let decoded = decode_ours(&bytes, &model);
    // A few facts spelled out, so the test does not rely on the comparator
    // alone.
    assert_eq!(decoded.metadata.id, 0xbeef);
    assert_eq!(u16::from(decoded.metadata.response_code), 0x2a3);
    assert_eq!(decoded.answers.len(), 15);
    assert_eq!(decoded.authorities.len(), 3);
    assert_eq!(decoded.additionals.len(), 3);
    assert_eq!(
        hickory_wire(&decoded.answers[0].name),
        b"\x03WWW\x07Example\x03COM\x00"
    );
    let edns = decoded.edns.as_ref().unwrap();
    assert!(edns.flags().dnssec_ok);
    assert_eq!(edns.max_payload(), 1232);
    assert_eq!(
        support::edns_options(edns)[0],
        (10, vec![1, 2, 3, 4, 5, 6, 7, 8])
    );
    let message = Message::parse(&bytes).unwrap();
    assert_eq!(message.rcode(), Rcode(0x2a3));
    assert_eq!(message.flags().header_rcode(), 3);
}

#[test]
fn reserved_z_bit_and_unusual_header_values_survive() {
    let flags = Flags::default()
        .with_opcode(Opcode::UPDATE)
        .with_truncated(true)
        .with_reserved_z(true)
        .with_rcode(Rcode::NOTZONE);
    let model = Model::new(0, flags).question("a.example", RecordType::SOA);
    let bytes = build_ours(&model);
    decode_ours(&bytes, &model);
    // hickory ignores Z; check the raw bit and our view.
    assert_eq!(bytes[3] & 0x40, 0x40);
    assert!(Message::parse(&bytes).unwrap().flags().reserved_z());
    // Payload sizes below 512 are written as given (hickory reads them as 512).
    let mut buf = [0u8; 512];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder
        .question(&n("a.example").as_name(), RecordType::A, Class::IN)
        .unwrap();
    let spec = OptSpec {
        udp_payload_size: 100,
        extended_rcode: 0,
        version: 1,
        dnssec_ok: false,
        options: &[],
    };
    builder.opt(&spec).unwrap();
    let len = builder.finish();
    let ours = Message::parse(&buf[..len]).unwrap();
    assert_eq!(ours.opt().unwrap().udp_payload_size(), 100);
    let decoded = HMessage::from_vec(&buf[..len]).unwrap();
    assert_eq!(decoded.edns.as_ref().unwrap().max_payload(), 512);
    assert_eq!(decoded.edns.as_ref().unwrap().version(), 1);
    compare(&ours, &decoded).unwrap();
}

/// Every record of a message: type, owner offset, RDATA offset and RDATA.
fn raw_records<'a>(message: &Message<'a>) -> Vec<(RecordType, usize, usize, &'a [u8])> {
    SECTIONS
        .iter()
        .flat_map(|section| message.records(*section))
        .map(|record| {
            (
                record.rtype(),
                record.name().offset(),
                record.rdata_offset(),
                record.rdata_bytes(),
            )
        })
        .collect()
}

/// Whether the name at `offset` ends in a compression pointer.
fn ends_in_pointer(message: &[u8], offset: usize) -> bool {
    let mut pos = offset;
    while message[pos] != 0 && message[pos] & 0xc0 != 0xc0 {
        pos += 1 + usize::from(message[pos]);
    }
    message[pos] & 0xc0 == 0xc0
}

fn is_pointer_at_end(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[bytes.len() - 2] & 0xc0 == 0xc0
}

#[test]
fn compression_covers_owners_and_rfc1035_rdata_but_not_srv_or_dname() {
    let model = Model::new(1, Flags::default().with_response(true))
        .question("www.example.com", RecordType::A)
        .rr(
            Section::Answer,
            "www.example.com",
            60,
            Rd::Cname(n("web.example.com")),
        )
        .rr(
            Section::Answer,
            "web.example.com",
            60,
            Rd::A(Ipv4Addr::new(192, 0, 2, 1)),
        )
        .rr(
            Section::Answer,
            "example.com",
            60,
            Rd::Mx(10, n("mail.example.com")),
        )
        .rr(
            Section::Answer,
            "_sip._tcp.example.com",
            60,
            Rd::Srv(1, 2, 3, n("sip.example.com")),
        )
        .rr(
            Section::Answer,
            "old.example.com",
            60,
            Rd::Dname(n("new.example.com")),
        )
        .rr(
            Section::Answer,
            "1.2.0.192.in-addr.arpa",
            60,
            Rd::Ptr(n("web.example.com")),
        )
        .rr(
            Section::Authority,
            "example.com",
            60,
            Rd::Ns(n("ns1.example.com")),
        )
        .rr(
            Section::Authority,
            "example.com",
            60,
            Rd::Soa(
                n("ns1.example.com"),
                n("hostmaster.example.com"),
                [1, 2, 3, 4, 5],
            ),
        )
        // A later owner may point into an (uncompressed) SRV target.
        .rr(
            Section::Additional,
            "sip.example.com",
            60,
            Rd::A(Ipv4Addr::new(192, 0, 2, 5)),
        );
    let bytes = build_ours(&model);
    decode_ours(&bytes, &model);

    let message = Message::parse(&bytes).unwrap();
    let records = raw_records(&message);
    // The first owner is a bare pointer to the question name at 12.
    let first = message.answer_offset();
    assert_eq!(&bytes[first..first + 2], &[0xc0, 0x0c]);
    // Every owner after the question is compressed (the reverse name has no
    // suffix in common with the rest).
    for (rtype, offset, _, _) in &records {
        if *rtype != RecordType::PTR {
            assert!(
                ends_in_pointer(&bytes, *offset),
                "{rtype:?} owner at {offset} not compressed"
            );
        }
    }
    let find = |rtype: RecordType| *records.iter().find(|r| r.0 == rtype).unwrap();
    let rdata = |rtype: RecordType| find(rtype).3;
    assert_eq!(
        rdata(RecordType::CNAME).len(),
        1 + 3 + 2,
        "CNAME target is web + pointer"
    );
    assert!(is_pointer_at_end(rdata(RecordType::CNAME)));
    assert_eq!(&rdata(RecordType::MX)[..2], &[0, 10]);
    assert_eq!(
        rdata(RecordType::MX).len(),
        2 + 1 + 4 + 2,
        "MX exchange is mail + pointer"
    );
    assert!(is_pointer_at_end(rdata(RecordType::MX)));
    // web.example.com was first written as the CNAME target: the PTR target
    // (like the A owner) is a bare pointer to it.
    let cname_target = (0xc000 | find(RecordType::CNAME).2 as u16).to_be_bytes();
    assert_eq!(rdata(RecordType::PTR), &cname_target[..]);
    assert_eq!(&bytes[records[1].1..records[1].1 + 2], &cname_target[..]);
    assert_eq!(
        rdata(RecordType::NS).len(),
        1 + 3 + 2,
        "NS target is ns1 + pointer"
    );
    let soa = rdata(RecordType::SOA);
    assert_eq!(
        soa.len(),
        2 + (1 + 10 + 2) + 20,
        "SOA mname is one pointer, rname host + pointer"
    );
    assert_eq!(soa[0] & 0xc0, 0xc0);
    // SRV and DNAME targets are written in full although example.com is
    // available for compression.
    assert_eq!(
        rdata(RecordType::SRV),
        b"\x00\x01\x00\x02\x00\x03\x03sip\x07example\x03com\x00"
    );
    assert_eq!(rdata(RecordType::DNAME), b"\x03new\x07example\x03com\x00");
    // The additional owner sip.example.com points into the SRV target.
    let srv_target = find(RecordType::SRV).2 + 6;
    let glue_owner = records.last().unwrap().1;
    let pointer = u16::from_be_bytes([bytes[glue_owner], bytes[glue_owner + 1]]);
    assert_eq!(usize::from(pointer), 0xc000 | srv_target);
}

#[test]
fn letter_case_is_preserved_because_compression_matches_exactly() {
    // One spelling per suffix: every name reads back byte for byte.
    let model = Model::new(2, Flags::default().with_response(true))
        .question("wWw.ExAmPlE.cOm", RecordType::MX)
        .rr(
            Section::Answer,
            "wWw.ExAmPlE.cOm",
            60,
            Rd::Mx(1, n("MAIL.ExAmPlE.cOm")),
        )
        .rr(
            Section::Answer,
            "wWw.ExAmPlE.cOm",
            60,
            Rd::Mx(2, n("Mx.OTHER.Test")),
        )
        .rr(
            Section::Additional,
            "SRV.ExAmPlE.cOm",
            60,
            Rd::Srv(0, 0, 1, n("TaRgEt.ExAmPlE.cOm")),
        );
    let bytes = build_ours(&model);
    decode_ours(&bytes, &model);
    let message = Message::parse(&bytes).unwrap();
    let question = message.question().unwrap();
    assert_eq!(question.name.to_string(), "wWw.ExAmPlE.cOm.");
    let exchanges: Vec<String> = message
        .answers()
        .map(|record| match record.rdata().unwrap() {
            RData::Mx(mx) => mx.exchange.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(exchanges, ["MAIL.ExAmPlE.cOm.", "Mx.OTHER.Test."]);

    // Compression matches suffixes byte for byte: a later name that differs
    // only in letter case is not pointed at the earlier spelling (which
    // would rewrite its case), only its exactly equal suffix is.
    let variant = Model::new(3, Flags::default().with_response(true))
        .question("www.example.com", RecordType::A)
        .rr(
            Section::Answer,
            "WWW.EXAMPLE.COM",
            60,
            Rd::Cname(n("Web.example.com")),
        )
        .rr(
            Section::Answer,
            "Web.example.com",
            60,
            Rd::A(Ipv4Addr::new(192, 0, 2, 1)),
        );
    assert!(variant.has_case_variants());
    let bytes = build_ours(&variant);
    decode_ours(&bytes, &variant);
    let message = Message::parse(&bytes).unwrap();
    let start = message.answer_offset();
    assert_eq!(&bytes[start..start + 17], b"\x03WWW\x07EXAMPLE\x03COM\x00");
    let records: Vec<_> = message.answers().collect();
    assert_eq!(records[0].name().to_string(), "WWW.EXAMPLE.COM.");
    // The CNAME target shares example.com with the question: Web + pointer.
    assert_eq!(records[0].rdata_bytes(), b"\x03Web\xc0\x10");
    // The A owner is exactly the CNAME target: a bare pointer to it.
    let target = (0xc000 | records[0].rdata_offset() as u16).to_be_bytes();
    let owner = records[1].name().offset();
    assert_eq!(&bytes[owner..owner + 2], &target[..]);
    assert_eq!(records[1].name().to_string(), "Web.example.com.");
}

/// A source message with pointers everywhere, including (non-standard but
/// seen in the wild) compressed SRV and DNAME targets.
fn compressed_source() -> Vec<u8> {
    let mut msg = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 6, 0, 2, 0, 1];
    // 12: question Svc.Example.COM SRV IN; Example.COM starts at 16.
    msg.extend_from_slice(b"\x03Svc\x07Example\x03COM\x00\x00\x21\x00\x01");
    let record = |msg: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]| {
        msg.extend_from_slice(owner);
        msg.extend_from_slice(&rtype.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(&ttl.to_be_bytes());
        msg.extend_from_slice(&u16::try_from(rdata.len()).unwrap().to_be_bytes());
        msg.extend_from_slice(rdata);
    };
    // SRV with target Target.Example.COM compressed to 16.
    record(
        &mut msg,
        b"\xc0\x0c",
        33,
        60,
        b"\x00\x05\x00\x06\x13\xc4\x06Target\xc0\x10",
    );
    // DNAME Old.Example.COM -> New.Example.COM, both compressed.
    record(&mut msg, b"\x03Old\xc0\x10", 39, 60, b"\x03New\xc0\x10");
    // MX with a compressed exchange, CNAME, PTR.
    record(&mut msg, b"\xc0\x10", 15, 60, b"\x00\x0a\x04Mail\xc0\x10");
    record(&mut msg, b"\x03Www\xc0\x10", 5, 60, b"\x03Web\xc0\x10");
    record(&mut msg, b"\x0280\xc0\x10", 12, 60, b"\x03Web\xc0\x10");
    record(&mut msg, b"\xc0\x10", 16, 60, b"\x05hello\x00");
    // Authority: NS and SOA with compressed names.
    record(&mut msg, b"\xc0\x10", 2, 3600, b"\x03Ns1\xc0\x10");
    let mut soa = b"\x03Ns1\xc0\x10\x0aHostmaster\xc0\x10".to_vec();
    for value in [1u32, 2, 3, 4, 5] {
        soa.extend_from_slice(&value.to_be_bytes());
    }
    record(&mut msg, b"\xc0\x10", 6, 3600, &soa);
    // Additional: glue whose owner points into the SRV target.
    let target = 12 + 21 + 2 + 10 + 6;
    assert_eq!(&msg[target..target + 7], b"\x06Target");
    let owner = (0xc000u16 | target as u16).to_be_bytes();
    record(&mut msg, &owner, 1, 60, &[192, 0, 2, 7]);
    msg
}

#[test]
fn copy_record_decompresses_and_recompresses_only_where_allowed() {
    let source = compressed_source();
    let original = Message::parse(&source).unwrap();
    let hickory_source = HMessage::from_vec(&source).unwrap();
    // Our parser and hickory agree on the source except for the DNAME,
    // which hickory keeps as raw (here: compressed) bytes.
    assert_eq!(original.answers().count(), 6);

    let mut buf = vec![0u8; 4096];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(original.id());
    builder.set_flags(original.flags());
    // A different question first, so every offset moves.
    builder
        .question(&n("Other.Zone.ORG").as_name(), RecordType::SRV, Class::IN)
        .unwrap();
    for section in SECTIONS {
        for record in original.records(section) {
            builder.copy_record(section, &record).unwrap();
        }
    }
    let len = builder.finish();
    let copied_bytes = &buf[..len];
    let copied = Message::parse(copied_bytes).unwrap();
    let decoded = HMessage::from_vec(copied_bytes).unwrap();
    compare(&copied, &decoded).unwrap_or_else(|err| panic!("{err}"));
    check_uncompressed_targets(&copied).unwrap();

    // Every record reads back as in the source, names byte for byte
    // (letter case included) and RDATA decompressed.
    let mut expected = hickory_source.clone();
    expected.queries = decoded.queries.clone();
    // hickory's view of the source DNAME holds the pointer bytes; the copy
    // holds the full target.
    let dname = expected
        .answers
        .iter_mut()
        .find(|r| r.record_type() == HType::DNAME)
        .unwrap();
    dname.data = HRData::Unknown {
        code: HType::DNAME,
        rdata: hrdata::NULL::with(b"\x03New\x07Example\x03COM\x00".to_vec()),
    };
    compare_hickory(&decoded, &expected).unwrap_or_else(|err| panic!("{err}"));

    let records = raw_records(&copied);
    let rdata = |rtype: RecordType| records.iter().find(|r| r.0 == rtype).unwrap().3;
    assert_eq!(
        rdata(RecordType::SRV),
        b"\x00\x05\x00\x06\x13\xc4\x06Target\x07Example\x03COM\x00"
    );
    assert_eq!(rdata(RecordType::DNAME), b"\x03New\x07Example\x03COM\x00");
    // MX, CNAME, PTR, NS and SOA names are compressed again.
    for rtype in [
        RecordType::MX,
        RecordType::CNAME,
        RecordType::PTR,
        RecordType::NS,
    ] {
        assert!(
            is_pointer_at_end(rdata(rtype)),
            "{rtype:?} not recompressed"
        );
    }
    // SOA: mname is a bare pointer to the NS target, rname Hostmaster + pointer.
    assert_eq!(rdata(RecordType::SOA).len(), 2 + (1 + 10 + 2) + 20);
    // Owner names keep their case.
    let owners: Vec<String> = copied.answers().map(|r| r.name().to_string()).collect();
    assert_eq!(
        owners,
        [
            "Svc.Example.COM.",
            "Old.Example.COM.",
            "Example.COM.",
            "Www.Example.COM.",
            "80.Example.COM.",
            "Example.COM."
        ]
    );
}

fn big_a_rrset(model: Model, section: Section, owner: &str, count: u8) -> Model {
    (1..=count).fold(model, |model, index| {
        model.rr(
            section,
            owner,
            60,
            Rd::A(Ipv4Addr::new(198, 51, 100, index)),
        )
    })
}

/// Build `model` at a 512-byte limit the way a server answers over UDP:
/// stop at the first record that does not fit.
fn build_limited(model: &Model, reserve_opt: bool) -> (Vec<u8>, usize, bool) {
    let mut buf = vec![0u8; 4096];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_limit(512);
    builder.set_id(model.id);
    builder.set_flags(model.flags);
    let options: Vec<EdnsOption<'_>> = model
        .edns
        .iter()
        .flat_map(|edns| edns.options.iter())
        .map(|(code, data)| EdnsOption { code: *code, data })
        .collect();
    if let (true, Some(edns)) = (reserve_opt, &model.edns) {
        builder.reserve(opt_spec(edns, &options).wire_len());
    }
    for (name, qtype, qclass) in &model.questions {
        builder
            .question(&name.as_name(), RecordType(*qtype), Class(*qclass))
            .unwrap();
    }
    let mut written = 0usize;
    'sections: for (section, records) in SECTIONS.iter().zip(&model.sections) {
        for rr in records {
            match add_record(&mut builder, *section, rr) {
                Ok(()) => written += 1,
                Err(err) => {
                    assert_eq!(err.kind, ErrorKind::NoSpace);
                    assert!(builder.truncated());
                    // Nothing more is accepted once the builder has cut.
                    let again = add_record(&mut builder, Section::Additional, rr).unwrap_err();
                    assert_eq!(again.kind, ErrorKind::NoSpace);
                    break 'sections;
                }
            }
        }
    }
    let opt_written = match &model.edns {
        Some(edns) => builder.opt(&opt_spec(edns, &options)).is_ok(),
        None => false,
    };
    let len = builder.finish();
    assert!(len <= 512, "message of {len} bytes over the limit");
    buf.truncate(len);
    (buf, written, opt_written)
}

/// The model with only the records that survived, and TC as expected.
fn surviving(model: &Model, keep: [usize; 3], tc: bool, edns: bool) -> Model {
    let mut expected = model.clone();
    for (records, keep) in expected.sections.iter_mut().zip(keep) {
        records.truncate(keep);
    }
    expected.flags = expected.flags.with_truncated(tc);
    if !edns {
        expected.edns = None;
    }
    expected
}

#[test]
fn truncation_in_answer_keeps_whole_rrsets_and_sets_tc() {
    let model = Model::new(10, Flags::default().with_response(true))
        .question("big.example.com", RecordType::A)
        .rr(
            Section::Answer,
            "big.example.com",
            60,
            Rd::Cname(n("target.example.com")),
        );
    let model = big_a_rrset(model, Section::Answer, "target.example.com", 40).rr(
        Section::Authority,
        "example.com",
        60,
        Rd::Ns(n("ns1.example.com")),
    );
    let (bytes, written, _) = build_limited(&model, false);
    // Some A records fitted before the cut, but the whole RRset was rolled
    // back to the CNAME.
    assert!(
        written > 1,
        "the cut should come in the middle of the A RRset"
    );
    let expected = surviving(&model, [1, 0, 0], true, false);
    let decoded = decode_ours(&bytes, &expected);
    assert!(decoded.metadata.truncation);
    assert_eq!(decoded.answers.len(), 1);
    assert_eq!(decoded.answers[0].record_type(), HType::CNAME);
}

#[test]
fn truncation_in_authority_sets_tc_and_keeps_earlier_rrsets() {
    let mut model = Model::new(11, Flags::default().with_response(true))
        .question("www.example.com", RecordType::A)
        .rr(
            Section::Answer,
            "www.example.com",
            60,
            Rd::A(Ipv4Addr::new(192, 0, 2, 1)),
        )
        .rr(
            Section::Answer,
            "www.example.com",
            60,
            Rd::A(Ipv4Addr::new(192, 0, 2, 2)),
        )
        .rr(
            Section::Authority,
            "example.com",
            60,
            Rd::Soa(
                n("ns1.example.com"),
                n("hostmaster.example.com"),
                [1, 2, 3, 4, 5],
            ),
        );
    for index in 0..30 {
        let target = format!("name-server-number-{index:02}.example.net");
        model = model.rr(Section::Authority, "example.com", 60, Rd::Ns(n(&target)));
    }
    let (bytes, _, _) = build_limited(&model, false);
    let expected = surviving(&model, [2, 1, 0], true, false);
    let decoded = decode_ours(&bytes, &expected);
    assert!(decoded.metadata.truncation);
    assert_eq!(decoded.authorities.len(), 1);
    assert_eq!(decoded.authorities[0].record_type(), HType::SOA);
}

#[test]
fn truncation_in_additional_does_not_set_tc() {
    let model = Model::new(12, Flags::default().with_response(true))
        .question("example.com", RecordType::NS)
        .rr(
            Section::Answer,
            "example.com",
            60,
            Rd::Ns(n("ns1.example.com")),
        )
        .rr(
            Section::Answer,
            "example.com",
            60,
            Rd::Ns(n("ns2.example.com")),
        )
        .rr(
            Section::Additional,
            "ns1.example.com",
            60,
            Rd::A(Ipv4Addr::new(192, 0, 2, 53)),
        );
    let model = big_a_rrset(model, Section::Additional, "ns2.example.com", 40);
    let (bytes, written, _) = build_limited(&model, false);
    assert!(written > 3);
    let expected = surviving(&model, [2, 0, 1], false, false);
    let decoded = decode_ours(&bytes, &expected);
    assert!(!decoded.metadata.truncation);
    assert_eq!(decoded.additionals.len(), 1);
}

#[test]
fn reserved_space_keeps_the_opt_record_after_a_cut() {
    let mut model = Model::new(13, Flags::default().with_response(true))
        .question("many.example.com", RecordType::A);
    // Single-record RRsets with distinct owners, so the cut leaves less
    // room than one record (21 bytes) and less than the OPT needs (23).
    for index in 0..40u8 {
        let owner = format!("h{index:03}.example.com");
        model = model.rr(
            Section::Answer,
            &owner,
            60,
            Rd::A(Ipv4Addr::new(192, 0, 2, index)),
        );
    }
    model.edns = Some(EdnsModel {
        payload: 1232,
        ext_rcode: 0,
        version: 0,
        dnssec_ok: true,
        z: 0,
        options: vec![(edns::COOKIE, vec![9; 8])],
    });
    let spec_len = 11 + 4 + 8;

    let (bytes, written, opt_written) = build_limited(&model, true);
    assert!(opt_written, "reserved OPT must be written");
    let expected = surviving(&model, [written, 0, 0], true, true);
    let decoded = decode_ours(&bytes, &expected);
    assert!(decoded.metadata.truncation);
    assert!(decoded.edns.as_ref().unwrap().flags().dnssec_ok);

    // Without the reservation the answer eats the room and the OPT does not
    // fit any more.
    let (bytes, written_without, opt_written) = build_limited(&model, false);
    assert!(written_without >= written);
    assert!(!opt_written, "OPT should not fit after an unreserved cut");
    assert!(512 - bytes.len() < spec_len);
    let expected = surviving(&model, [written_without, 0, 0], true, false);
    decode_ours(&bytes, &expected);
}

#[test]
fn sections_out_of_order_are_refused_and_leave_the_message_intact() {
    let mut buf = [0u8; 1024];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(14);
    builder.set_flags(Flags::default().with_response(true));
    let name = n("www.example.com");
    let a = RData::A(Ipv4Addr::new(192, 0, 2, 1));
    builder
        .question(&name.as_name(), RecordType::A, Class::IN)
        .unwrap();
    builder
        .record(
            Section::Authority,
            &name.as_name(),
            RecordType::A,
            Class::IN,
            1,
            &a,
        )
        .unwrap();
    let len_before = builder.len();
    let err = builder
        .record(
            Section::Answer,
            &name.as_name(),
            RecordType::A,
            Class::IN,
            1,
            &a,
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfOrder);
    let err = builder
        .question(&name.as_name(), RecordType::A, Class::IN)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfOrder);
    assert_eq!(builder.len(), len_before);
    builder
        .record(
            Section::Additional,
            &name.as_name(),
            RecordType::A,
            Class::IN,
            2,
            &a,
        )
        .unwrap();
    let err = builder
        .record(
            Section::Authority,
            &name.as_name(),
            RecordType::A,
            Class::IN,
            1,
            &a,
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfOrder);
    let spec = OptSpec {
        udp_payload_size: 1232,
        extended_rcode: 0,
        version: 0,
        dnssec_ok: false,
        options: &[],
    };
    builder.opt(&spec).unwrap();
    let err = builder
        .record(
            Section::Answer,
            &name.as_name(),
            RecordType::A,
            Class::IN,
            1,
            &a,
        )
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::OutOfOrder);
    // Records after the OPT in the additional section are still fine.
    builder
        .record(
            Section::Additional,
            &name.as_name(),
            RecordType::A,
            Class::IN,
            3,
            &a,
        )
        .unwrap();
    assert!(!builder.truncated());
    let len = builder.finish();

    let mut model = Model::new(14, Flags::default().with_response(true))
        .question("www.example.com", RecordType::A)
        .rr(
            Section::Authority,
            "www.example.com",
            1,
            Rd::A(Ipv4Addr::new(192, 0, 2, 1)),
        )
        .rr(
            Section::Additional,
            "www.example.com",
            2,
            Rd::A(Ipv4Addr::new(192, 0, 2, 1)),
        )
        .rr(
            Section::Additional,
            "www.example.com",
            3,
            Rd::A(Ipv4Addr::new(192, 0, 2, 1)),
        );
    model.edns = Some(EdnsModel {
        payload: 1232,
        ext_rcode: 0,
        version: 0,
        dnssec_ok: false,
        z: 0,
        options: Vec::new(),
    });
    decode_ours(&buf[..len], &model);
    let message = Message::parse(&buf[..len]).unwrap();
    let kinds: Vec<RecordType> = message.additionals().map(|r| r.rtype()).collect();
    assert_eq!(kinds, [RecordType::A, RecordType::OPT, RecordType::A]);
}

// ---------------------------------------------------------------------------
// Random messages.
// ---------------------------------------------------------------------------

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn arb_label() -> impl Strategy<Value = Vec<u8>> {
    let hostname = prop_oneof![
        b'a'..=b'z',
        b'A'..=b'Z',
        b'0'..=b'9',
        Just(b'-'),
        Just(b'_')
    ];
    let odd = prop_oneof![
        3 => b'a'..=b'z',
        3 => b'A'..=b'Z',
        1 => Just(b'.'),
        1 => Just(b' '),
        1 => Just(0xff_u8),
        1 => Just(b'\\'),
        1 => Just(0_u8),
        1 => Just(b'"'),
        1 => Just(b'*'),
        2 => any::<u8>(),
    ];
    prop_oneof![
        6 => vec(hostname, 1..12),
        3 => vec(odd, 1..24),
        1 => vec(any::<u8>(), 1..=63),
    ]
}

/// A name from labels, dropping leading labels until it fits the limits.
fn fit(mut labels: Vec<Vec<u8>>) -> NameBuf {
    while labels.len() > 127 || labels.iter().map(|label| label.len() + 1).sum::<usize>() + 1 > 255
    {
        labels.remove(0);
    }
    let mut wire = Vec::new();
    for label in &labels {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    NameBuf::from_wire(&wire).unwrap()
}

fn arb_name() -> impl Strategy<Value = NameBuf> {
    let longest = (vec(vec(any::<u8>(), 63), 3), vec(any::<u8>(), 61)).prop_map(|(mut a, b)| {
        a.push(b);
        a
    });
    prop_oneof![
        8 => vec(arb_label(), 0..6).prop_map(fit),
        1 => longest.prop_map(fit),
        1 => vec((b'a'..=b'z').prop_map(|c| vec![c]), 127).prop_map(fit),
    ]
}

/// Names derived from a small per-message pool: extra leading labels and
/// sometimes a change of letter case, so suffixes repeat and compress.
fn derived_name(pool: Arc<Vec<NameBuf>>) -> BoxedStrategy<NameBuf> {
    let case = prop_oneof![10 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)];
    (any::<Index>(), vec(arb_label(), 0..3), case)
        .prop_map(move |(index, mut labels, case)| {
            let base = &pool[index.index(pool.len())];
            labels.extend(base.as_name().labels().map(<[u8]>::to_vec));
            let name = fit(labels);
            match case {
                1 => NameBuf::from_wire(&name.as_wire().to_ascii_uppercase()).unwrap(),
                2 => name.to_lowercase(),
                _ => name,
            }
        })
        .boxed()
}

fn arb_rd(pool: &Arc<Vec<NameBuf>>) -> BoxedStrategy<Rd> {
    let name = || derived_name(Arc::clone(pool));
    let alnum = prop_oneof![b'a'..=b'z', b'A'..=b'Z', b'0'..=b'9'];
    let txt_string = prop_oneof![9 => vec(any::<u8>(), 0..40), 1 => vec(any::<u8>(), 255)];
    prop_oneof![
        any::<u32>().prop_map(|a| Rd::A(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| Rd::Aaaa(Ipv6Addr::from(a))),
        name().prop_map(Rd::Ns),
        name().prop_map(Rd::Cname),
        name().prop_map(Rd::Dname),
        name().prop_map(Rd::Ptr),
        (any::<u16>(), name()).prop_map(|(preference, exchange)| Rd::Mx(preference, exchange)),
        vec(txt_string, 1..5).prop_map(Rd::Txt),
        (name(), name(), any::<[u32; 5]>()).prop_map(|(m, r, numbers)| Rd::Soa(m, r, numbers)),
        (any::<u16>(), any::<u16>(), any::<u16>(), name())
            .prop_map(|(priority, weight, port, target)| Rd::Srv(priority, weight, port, target)),
        (any::<u8>(), vec(alnum, 1..=15), vec(any::<u8>(), 0..40))
            .prop_map(|(flags, tag, value)| Rd::Caa(flags, tag, value)),
        vec(any::<u8>(), 1..40).prop_map(|bytes| Rd::Opaque(10, bytes)),
        // Private-use types, except 65305, which hickory decodes as ANAME.
        (
            (65_280u16..=65_534).prop_filter("ANAME", |rtype| *rtype != 65_305),
            vec(any::<u8>(), 1..40)
        )
            .prop_map(|(rtype, bytes)| Rd::Opaque(rtype, bytes)),
    ]
    .boxed()
}

fn arb_rr(pool: &Arc<Vec<NameBuf>>) -> BoxedStrategy<Rr> {
    let class = prop_oneof![8 => Just(1u16), 1 => Just(3u16), 1 => any::<u16>()];
    (
        derived_name(Arc::clone(pool)),
        class,
        any::<u32>(),
        arb_rd(pool),
    )
        .prop_map(|(name, class, ttl, rd)| Rr {
            name,
            class,
            ttl,
            rd,
        })
        .boxed()
}

fn arb_edns() -> impl Strategy<Value = EdnsModel> {
    // Option 8 (client subnet) is left out: hickory decodes it and refuses
    // random bytes there.
    let option = (
        any::<u16>().prop_filter("ECS", |code| *code != 8),
        vec(any::<u8>(), 0..24),
    );
    (
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        any::<bool>(),
        0u16..0x8000,
        vec(option, 0..4),
    )
        .prop_map(
            |(payload, ext_rcode, version, dnssec_ok, z, options)| EdnsModel {
                // hickory writes sizes below 512 as 512.
                payload: payload.max(512),
                ext_rcode,
                version,
                dnssec_ok,
                z,
                options,
            },
        )
}

fn arb_flags() -> impl Strategy<Value = Flags> {
    (any::<[bool; 7]>(), 0u8..16, 0u16..16).prop_map(
        |([qr, aa, tc, rd, ra, ad, cd], opcode, rcode)| {
            Flags::default()
                .with_response(qr)
                .with_opcode(Opcode(opcode))
                .with_authoritative(aa)
                .with_truncated(tc)
                .with_recursion_desired(rd)
                .with_recursion_available(ra)
                .with_authentic_data(ad)
                .with_checking_disabled(cd)
                .with_rcode(Rcode(rcode))
        },
    )
}

fn arb_model() -> impl Strategy<Value = Model> {
    vec(arb_name(), 1..4).prop_flat_map(|pool| {
        let pool = Arc::new(pool);
        let qtype = prop_oneof![
            Just(1u16),
            Just(28u16),
            Just(255u16),
            Just(252u16),
            any::<u16>()
        ];
        let qclass = prop_oneof![4 => Just(1u16), 1 => any::<u16>()];
        let question = (derived_name(Arc::clone(&pool)), qtype, qclass);
        (
            any::<u16>(),
            arb_flags(),
            vec(question, 0..=3),
            vec(arb_rr(&pool), 0..8),
            vec(arb_rr(&pool), 0..8),
            vec(arb_rr(&pool), 0..8),
            proptest::option::of(arb_edns()),
        )
            .prop_map(
                |(id, flags, questions, answers, authorities, additionals, edns)| Model {
                    id,
                    flags,
                    questions,
                    sections: [answers, authorities, additionals],
                    edns,
                },
            )
    })
}

/// Copy every record of `message` (OPT included) into a fresh message with
/// our builder.
fn rebuild(message: &Message<'_>) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 65_535];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(message.id());
    builder.set_flags(message.flags());
    for question in message.questions() {
        builder
            .question(&question.name, question.qtype, question.qclass)
            .map_err(|err| format!("question: {err}"))?;
    }
    for section in SECTIONS {
        for record in message.records(section) {
            builder
                .copy_record(section, &record)
                .map_err(|err| format!("copy_record: {err}"))?;
        }
    }
    let len = builder.finish();
    buf.truncate(len);
    Ok(buf)
}

/// hickory encodes the model; we parse it and must agree with hickory's
/// view and with the model; then our builder copies it and hickory must
/// read the copy the same way.
fn check_hickory_encoded(model: &Model) -> Result<(), String> {
    let input = to_hickory(model);
    let bytes = input
        .to_vec()
        .map_err(|err| format!("hickory could not encode: {err}"))?;
    let ours =
        Message::parse(&bytes).map_err(|err| format!("heimdall refused hickory's bytes: {err}"))?;
    if ours.trailing_len() != 0 {
        return Err(format!("{} trailing bytes", ours.trailing_len()));
    }
    support::walk(&ours)?;
    let decoded = HMessage::from_vec(&bytes).map_err(|err| format!("hickory refused: {err}"))?;
    compare(&ours, &decoded).map_err(|err| format!("against hickory's view: {err}"))?;
    compare(&ours, &input).map_err(|err| format!("against the input: {err}"))?;

    let copy = rebuild(&ours)?;
    let copied = Message::parse(&copy).map_err(|err| format!("our copy does not parse: {err}"))?;
    compare(&copied, &decoded).map_err(|err| format!("copy vs hickory: {err}"))?;
    check_uncompressed_targets(&copied)?;
    let copied_decoded =
        HMessage::from_vec(&copy).map_err(|err| format!("hickory refused our copy: {err}"))?;
    compare_hickory(&copied_decoded, &decoded).map_err(|err| format!("hickory view of copy: {err}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn hickory_encoded_random_messages_parse_the_same(model in arb_model()) {
        let result = check_hickory_encoded(&model);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }

    #[test]
    fn random_messages_we_build_decode_the_same_in_hickory(model in arb_model()) {
        // Our OptSpec has no field for the bits after DO: they go out zero.
        let mut model = model;
        if let Some(edns) = &mut model.edns {
            edns.z = 0;
        }
        let bytes = build_ours(&model);
        let result = check_ours_against_model(&bytes, &model);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}

fn kind(rd: &Rd) -> &'static str {
    match rd {
        Rd::A(_) => "A",
        Rd::Aaaa(_) => "AAAA",
        Rd::Ns(_) => "NS",
        Rd::Cname(_) => "CNAME",
        Rd::Dname(_) => "DNAME",
        Rd::Ptr(_) => "PTR",
        Rd::Mx(..) => "MX",
        Rd::Txt(_) => "TXT",
        Rd::Soa(..) => "SOA",
        Rd::Srv(..) => "SRV",
        Rd::Caa(..) => "CAA",
        Rd::Opaque(10, _) => "NULL",
        Rd::Opaque(..) => "unknown",
    }
}

/// The generator really produces what the properties are meant to cover;
/// otherwise they could pass without testing much.
#[test]
fn random_messages_cover_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = arb_model();
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for _ in 0..400 {
        let model = strategy.new_tree(&mut runner).unwrap().current();
        let mut note = |what: &'static str, happened: bool| {
            if happened {
                *seen.entry(what).or_default() += 1;
            }
        };
        let names = model.all_names();
        note(
            "255-byte name",
            names.iter().any(|name| name.as_wire().len() == 255),
        );
        note(
            "127 labels",
            names.iter().any(|name| name.as_name().label_count() == 127),
        );
        let has_byte = |byte: u8| {
            names
                .iter()
                .any(|name| name.as_name().labels().any(|l| l.contains(&byte)))
        };
        note("dot in a label", has_byte(b'.'));
        note("space in a label", has_byte(b' '));
        note("0xff in a label", has_byte(0xff));
        note("case variants", model.has_case_variants());
        note("3 questions", model.questions.len() == 3);
        note(
            "all sections",
            model.sections.iter().all(|records| !records.is_empty()),
        );
        note(
            "EDNS options",
            model
                .edns
                .as_ref()
                .is_some_and(|edns| !edns.options.is_empty()),
        );
        for rr in model.sections.iter().flatten() {
            note(kind(&rr.rd), true);
            if let Rd::Txt(strings) = &rr.rd {
                note("empty TXT string", strings.iter().any(Vec::is_empty));
                note("several TXT strings", strings.len() > 1);
            }
        }
        let bytes = to_hickory(&model).to_vec().unwrap();
        let message = Message::parse(&bytes).unwrap();
        // RDATA shorter than its names written in full: hickory compressed it.
        let compressed_rdata = SECTIONS
            .iter()
            .flat_map(|section| message.records(*section))
            .any(|record| {
                let full = match record.rdata().unwrap() {
                    RData::Ns(name) | RData::Cname(name) | RData::Ptr(name) => name.wire_len(),
                    RData::Mx(mx) => 2 + mx.exchange.wire_len(),
                    RData::Soa(soa) => soa.mname.wire_len() + soa.rname.wire_len() + 20,
                    _ => 0,
                };
                record.rdata_bytes().len() < full
            });
        note("pointer in RDATA", compressed_rdata);
    }
    let wanted = [
        "255-byte name",
        "127 labels",
        "dot in a label",
        "space in a label",
        "0xff in a label",
        "case variants",
        "3 questions",
        "all sections",
        "EDNS options",
        "empty TXT string",
        "several TXT strings",
        "pointer in RDATA",
        "A",
        "AAAA",
        "NS",
        "CNAME",
        "DNAME",
        "PTR",
        "MX",
        "TXT",
        "SOA",
        "SRV",
        "CAA",
        "NULL",
        "unknown",
    ];
    for what in wanted {
        assert!(
            seen.get(what).copied().unwrap_or(0) >= 5,
            "{what} seen {seen:?}"
        );
    }
}

/// The comparison itself must notice a difference in any field, letter
/// case of names included.
#[test]
fn the_comparison_notices_every_kind_of_difference() {
    let bytes = build_ours(&every_type_model());
    let ours = Message::parse(&bytes).unwrap();
    let decoded = HMessage::from_vec(&bytes).unwrap();
    compare(&ours, &decoded).unwrap();
    type Mutation = fn(&mut HMessage);
    let mutations: [(&str, Mutation); 12] = [
        ("id", |m| m.metadata.id ^= 1),
        ("AD", |m| m.metadata.authentic_data = false),
        ("rcode", |m| {
            m.metadata.response_code = ResponseCode::NXDomain
        }),
        ("question case", |m| {
            m.queries[0].name = hickory_name(b"\x03www\x07Example\x03COM\x00")
        }),
        ("owner case", |m| {
            m.answers[1].name = hickory_name(b"\x03web\x07Example\x03COM\x00")
        }),
        ("ttl", |m| m.answers[2].ttl += 1),
        ("class", |m| m.additionals[2].dns_class = DNSClass::IN),
        ("MX case", |m| {
            m.answers[4].data = HRData::MX(hrdata::MX::new(
                10,
                hickory_name(b"\x04mail\x07Example\x03COM\x00"),
            ))
        }),
        ("TXT", |m| {
            m.answers[6].data = HRData::TXT(hrdata::TXT::from_bytes(vec![b"x"]))
        }),
        ("record dropped", |m| {
            m.authorities.pop();
        }),
        ("EDNS option", |m| {
            m.edns.as_mut().unwrap().options_mut().as_mut().pop();
        }),
        ("DO", |m| {
            m.edns.as_mut().unwrap().set_dnssec_ok(false);
        }),
    ];
    for (what, mutate) in mutations {
        let mut changed = decoded.clone();
        mutate(&mut changed);
        assert!(
            compare(&ours, &changed).is_err(),
            "{what} difference not noticed"
        );
        assert!(
            compare_hickory(&changed, &decoded).is_err(),
            "{what} not noticed by hickory check"
        );
    }
}
