//! Shared by the integration tests: compare heimdall's view of a message
//! with hickory-proto's, field by field.
//!
//! Every check returns a description of the first difference, so property
//! tests can report it and plain tests can panic with it.

#![allow(dead_code)]

use hickory_proto::op::{Message as HMessage, MessageType};
use hickory_proto::rr::{Name as HName, RData as HRData, Record as HRecord, RecordType as HType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use heimdall_wire::{Message, Name, NameBuf, RData, Record, RecordType, Section};

/// Return early with a description when two values differ.
macro_rules! ensure_eq {
    ($ours:expr, $theirs:expr, $($context:tt)+) => {
        match (&$ours, &$theirs) {
            (ours, theirs) => {
                if ours != theirs {
                    return Err(format!(
                        "{}: heimdall {:?} != hickory {:?}",
                        format!($($context)+),
                        ours,
                        theirs
                    ));
                }
            }
        }
    };
}

/// Uncompressed wire form of one of our names, letter case preserved.
pub fn wire_of(name: &Name<'_>) -> Vec<u8> {
    NameBuf::from_name(name).as_wire().to_vec()
}

/// Uncompressed wire form of a hickory name, letter case preserved.
pub fn hickory_wire(name: &HName) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.iter() {
        out.push(u8::try_from(label.len()).unwrap());
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// A hickory name from raw labels (any bytes), fully qualified.
pub fn hickory_name(wire: &[u8]) -> HName {
    let name = NameBuf::from_wire(wire).unwrap();
    let labels: Vec<&[u8]> = name.as_name().labels().collect();
    let mut out = HName::from_labels(labels).unwrap();
    out.set_fqdn(true);
    out
}

/// The RDATA of a hickory record as uncompressed wire bytes.
pub fn hickory_rdata_bytes(data: &HRData) -> Vec<u8> {
    match data {
        HRData::Update0(_) => Vec::new(),
        HRData::NULL(null) => null.anything.clone(),
        HRData::Unknown { rdata, .. } => rdata.anything.clone(),
        other => {
            let mut out = Vec::new();
            let mut encoder = BinEncoder::new(&mut out);
            encoder.set_name_encoding(NameEncoding::Uncompressed);
            other.emit(&mut encoder).unwrap();
            out
        }
    }
}

/// Compare the whole message: header, questions, all three sections and
/// EDNS. Names are compared byte for byte, letter case included.
pub fn compare(ours: &Message<'_>, theirs: &HMessage) -> Result<(), String> {
    compare_header(ours, theirs)?;
    compare_questions(ours, theirs)?;
    let additionals: Vec<Record<'_>> = ours
        .additionals()
        .filter(|record| record.rtype() != RecordType::OPT)
        .collect();
    let answers: Vec<Record<'_>> = ours.answers().collect();
    let authorities: Vec<Record<'_>> = ours.authorities().collect();
    compare_section("answer", &answers, &theirs.answers)?;
    compare_section("authority", &authorities, &theirs.authorities)?;
    compare_section("additional", &additionals, &theirs.additionals)?;
    compare_edns(ours, theirs)
}

pub fn compare_header(ours: &Message<'_>, theirs: &HMessage) -> Result<(), String> {
    let flags = ours.flags();
    let meta = &theirs.metadata;
    ensure_eq!(ours.id(), meta.id, "id");
    ensure_eq!(
        flags.response(),
        meta.message_type == MessageType::Response,
        "QR"
    );
    ensure_eq!(flags.opcode().0, u8::from(meta.op_code), "opcode");
    ensure_eq!(flags.authoritative(), meta.authoritative, "AA");
    ensure_eq!(flags.truncated(), meta.truncation, "TC");
    ensure_eq!(flags.recursion_desired(), meta.recursion_desired, "RD");
    ensure_eq!(flags.recursion_available(), meta.recursion_available, "RA");
    ensure_eq!(flags.authentic_data(), meta.authentic_data, "AD");
    ensure_eq!(flags.checking_disabled(), meta.checking_disabled, "CD");
    ensure_eq!(ours.rcode().0, u16::from(meta.response_code), "rcode");
    Ok(())
}

pub fn compare_questions(ours: &Message<'_>, theirs: &HMessage) -> Result<(), String> {
    ensure_eq!(
        usize::from(ours.header().question_count),
        theirs.queries.len(),
        "question count"
    );
    ensure_eq!(
        ours.questions().count(),
        theirs.queries.len(),
        "questions iterated"
    );
    for (index, (question, query)) in ours.questions().zip(&theirs.queries).enumerate() {
        ensure_eq!(
            wire_of(&question.name),
            hickory_wire(&query.name),
            "question {index} name"
        );
        ensure_eq!(
            question.qtype.0,
            u16::from(query.query_type),
            "question {index} type"
        );
        ensure_eq!(
            question.qclass.0,
            u16::from(query.query_class),
            "question {index} class"
        );
    }
    Ok(())
}

pub fn compare_section(
    section: &str,
    ours: &[Record<'_>],
    theirs: &[HRecord],
) -> Result<(), String> {
    ensure_eq!(ours.len(), theirs.len(), "{section} count");
    for (index, (record, other)) in ours.iter().zip(theirs).enumerate() {
        compare_record(record, other).map_err(|err| format!("{section} {index}: {err}"))?;
    }
    Ok(())
}

pub fn compare_record(ours: &Record<'_>, theirs: &HRecord) -> Result<(), String> {
    ensure_eq!(wire_of(&ours.name()), hickory_wire(&theirs.name), "owner");
    ensure_eq!(ours.rtype().0, u16::from(theirs.record_type()), "type");
    ensure_eq!(ours.class().0, u16::from(theirs.dns_class), "class");
    ensure_eq!(ours.ttl(), theirs.ttl, "ttl");
    compare_rdata(ours, &theirs.data)
}

/// Compare typed RDATA values: names decompressed and byte-exact, numbers,
/// strings and opaque bytes equal.
pub fn compare_rdata(record: &Record<'_>, theirs: &HRData) -> Result<(), String> {
    let ours = record
        .rdata()
        .map_err(|err| format!("our typed RDATA failed: {err}"))?;
    match (ours, theirs) {
        (RData::A(address), HRData::A(other)) => ensure_eq!(address, other.0, "A"),
        (RData::Aaaa(address), HRData::AAAA(other)) => ensure_eq!(address, other.0, "AAAA"),
        (RData::Ns(name), HRData::NS(other)) => {
            ensure_eq!(wire_of(&name), hickory_wire(&other.0), "NS")
        }
        (RData::Cname(name), HRData::CNAME(other)) => {
            ensure_eq!(wire_of(&name), hickory_wire(&other.0), "CNAME")
        }
        (RData::Ptr(name), HRData::PTR(other)) => {
            ensure_eq!(wire_of(&name), hickory_wire(&other.0), "PTR")
        }
        // hickory has no DNAME type and keeps its RDATA opaque; DNAME
        // targets are never compressed (RFC 3597 section 4), so the raw
        // bytes are the uncompressed target.
        (
            RData::Dname(name),
            HRData::Unknown {
                code: HType::DNAME,
                rdata,
            },
        ) => {
            ensure_eq!(wire_of(&name), rdata.anything, "DNAME");
            ensure_eq!(record.rdata_bytes(), rdata.anything.as_slice(), "DNAME raw");
        }
        (RData::Mx(mx), HRData::MX(other)) => {
            ensure_eq!(mx.preference, other.preference, "MX preference");
            ensure_eq!(
                wire_of(&mx.exchange),
                hickory_wire(&other.exchange),
                "MX exchange"
            );
        }
        (RData::Txt(txt), HRData::TXT(other)) => {
            let strings: Vec<&[u8]> = txt.strings().collect();
            let expected: Vec<&[u8]> = other.txt_data.iter().map(|s| &s[..]).collect();
            ensure_eq!(strings, expected, "TXT strings");
        }
        (RData::Soa(soa), HRData::SOA(other)) => {
            ensure_eq!(wire_of(&soa.mname), hickory_wire(&other.mname), "SOA mname");
            ensure_eq!(wire_of(&soa.rname), hickory_wire(&other.rname), "SOA rname");
            ensure_eq!(soa.serial, other.serial, "SOA serial");
            ensure_eq!(soa.refresh, other.refresh as u32, "SOA refresh");
            ensure_eq!(soa.retry, other.retry as u32, "SOA retry");
            ensure_eq!(soa.expire, other.expire as u32, "SOA expire");
            ensure_eq!(soa.minimum, other.minimum, "SOA minimum");
        }
        (RData::Srv(srv), HRData::SRV(other)) => {
            ensure_eq!(
                (srv.priority, srv.weight, srv.port),
                (other.priority, other.weight, other.port),
                "SRV numbers"
            );
            ensure_eq!(
                wire_of(&srv.target),
                hickory_wire(&other.target),
                "SRV target"
            );
        }
        (RData::Caa(caa), HRData::CAA(other)) => {
            ensure_eq!(caa.flags, other.flags(), "CAA flags");
            ensure_eq!(caa.tag, other.tag.as_bytes(), "CAA tag");
            ensure_eq!(caa.value, other.value.as_slice(), "CAA value");
        }
        (RData::Unknown(bytes), other) => {
            ensure_eq!(bytes, hickory_rdata_bytes(other).as_slice(), "opaque RDATA");
        }
        (ours, theirs) => return Err(format!("RDATA kinds differ: {ours:?} vs {theirs:?}")),
    }
    Ok(())
}

pub fn compare_edns(ours: &Message<'_>, theirs: &HMessage) -> Result<(), String> {
    match (ours.opt(), &theirs.edns) {
        (None, None) => Ok(()),
        (Some(opt), Some(edns)) => {
            // hickory raises payload sizes below 512 to 512 (RFC 6891).
            ensure_eq!(
                opt.udp_payload_size().max(512),
                edns.max_payload(),
                "EDNS payload"
            );
            ensure_eq!(
                opt.extended_rcode(),
                edns.rcode_high(),
                "EDNS extended rcode"
            );
            ensure_eq!(opt.version(), edns.version(), "EDNS version");
            ensure_eq!(opt.dnssec_ok(), edns.flags().dnssec_ok, "EDNS DO");
            ensure_eq!(opt.flags() & 0x7fff, edns.flags().z, "EDNS Z flags");
            let options: Vec<(u16, Vec<u8>)> = opt
                .options()
                .map(|option| (option.code, option.data.to_vec()))
                .collect();
            ensure_eq!(options, edns_options(edns), "EDNS options");
            Ok(())
        }
        (ours, theirs) => Err(format!("EDNS presence differs: {ours:?} vs {theirs:?}")),
    }
}

/// Walk every part of a parsed message the way a server would (all
/// sections, every typed RDATA, every EDNS option) and count what was seen;
/// fails on any RDATA our typed view refuses.
pub fn walk(message: &Message<'_>) -> Result<usize, String> {
    let mut seen = 0usize;
    for question in message.questions() {
        seen += question.name.labels().count() + 1;
        let _text = question.name.to_string();
    }
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        for record in message.records(section) {
            seen += 1;
            let rdata = record.rdata().map_err(|err| {
                format!("{section:?} {} {}: {err}", record.name(), record.rtype())
            })?;
            let _text = format!("{} {:?} {rdata:?}", record.name(), record.rtype());
        }
    }
    if let Some(opt) = message.opt() {
        seen += opt.options().count();
    }
    Ok(seen)
}

/// Parse `bytes` with both parsers and compare them; returns hickory's view.
pub fn cross_check(bytes: &[u8]) -> Result<HMessage, String> {
    let ours = Message::parse(bytes).map_err(|err| format!("heimdall refused: {err}"))?;
    let theirs = HMessage::from_vec(bytes).map_err(|err| format!("hickory refused: {err}"))?;
    walk(&ours)?;
    compare(&ours, &theirs)?;
    Ok(theirs)
}

/// Compare two hickory views of a message: header metadata, questions,
/// every record (names byte for byte, RDATA both by hickory's equality and
/// as uncompressed bytes) and EDNS, options in order.
pub fn compare_hickory(parsed: &HMessage, expected: &HMessage) -> Result<(), String> {
    ensure_eq!(parsed.metadata, expected.metadata, "header");
    ensure_eq!(
        parsed.queries.len(),
        expected.queries.len(),
        "question count"
    );
    for (index, (a, b)) in parsed.queries.iter().zip(&expected.queries).enumerate() {
        ensure_eq!(
            hickory_wire(&a.name),
            hickory_wire(&b.name),
            "question {index} name"
        );
        ensure_eq!(a.query_type, b.query_type, "question {index} type");
        ensure_eq!(a.query_class, b.query_class, "question {index} class");
    }
    let sections = [
        ("answer", &parsed.answers, &expected.answers),
        ("authority", &parsed.authorities, &expected.authorities),
        ("additional", &parsed.additionals, &expected.additionals),
    ];
    for (section, got, want) in sections {
        ensure_eq!(got.len(), want.len(), "{section} count");
        for (index, (a, b)) in got.iter().zip(want.iter()).enumerate() {
            ensure_eq!(
                hickory_wire(&a.name),
                hickory_wire(&b.name),
                "{section} {index} owner"
            );
            ensure_eq!(a.record_type(), b.record_type(), "{section} {index} type");
            ensure_eq!(a.dns_class, b.dns_class, "{section} {index} class");
            ensure_eq!(a.ttl, b.ttl, "{section} {index} ttl");
            ensure_eq!(a.data, b.data, "{section} {index} rdata");
            ensure_eq!(
                hickory_rdata_bytes(&a.data),
                hickory_rdata_bytes(&b.data),
                "{section} {index} rdata bytes"
            );
        }
    }
    match (&parsed.edns, &expected.edns) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            ensure_eq!(a.max_payload(), b.max_payload(), "EDNS payload");
            ensure_eq!(a.rcode_high(), b.rcode_high(), "EDNS extended rcode");
            ensure_eq!(a.version(), b.version(), "EDNS version");
            ensure_eq!(a.flags(), b.flags(), "EDNS flags");
            ensure_eq!(edns_options(a), edns_options(b), "EDNS options");
        }
        (a, b) => return Err(format!("EDNS presence differs: {a:?} vs {b:?}")),
    }
    Ok(())
}

/// EDNS options of a hickory view as (code, data), in order.
pub fn edns_options(edns: &hickory_proto::op::Edns) -> Vec<(u16, Vec<u8>)> {
    edns.options()
        .as_ref()
        .iter()
        .map(|(code, option)| (u16::from(*code), Vec::<u8>::try_from(option).unwrap()))
        .collect()
}
