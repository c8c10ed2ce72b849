//! Bodies of the fuzz targets, shared by `fuzz/` (cargo-fuzz) and by the
//! ordinary test suite, which runs them over a generated corpus so stable
//! CI exercises them without a fuzzer.
//!
//! Both functions panic only when they find a bug: that is how a fuzzer
//! learns of it.

#![allow(clippy::panic)]

use crate::builder::MessageBuilder;
use crate::key::QueryKey;
use crate::message::{Message, Record, Section};
use crate::name::WireNameBuf;
use crate::rdata::{Piece, RData, layout, walk_rdata};

/// Walk every part of any bytes that parse as a message: header,
/// questions, every record of every section, typed RDATA, EDNS options
/// (the COOKIE reader, and appending a reply cookie), presentation format of every name and the query key. Must never panic.
pub fn walk_any_bytes(data: &[u8]) {
    let Ok(message) = Message::parse(data) else {
        return;
    };
    let mut sink = WireNameBuf::new();
    let mut seen = 0usize;
    for question in message.questions() {
        question.name.write_lower(&mut sink);
        seen += question.name.labels().count();
    }
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        for record in message.records(section) {
            record.name().write_wire(&mut sink);
            seen += record.rdata_bytes().len();
            if let Ok(rdata) = record.rdata() {
                let _text = format!("{rdata:?}");
            }
        }
    }
    if let Some(opt) = message.opt() {
        seen += opt.options().count();
        // The COOKIE reader, and adding our cookie to the message's OPT.
        if let Ok(Some(cookie)) = crate::cookie::find_cookie(&opt) {
            seen += cookie.server().len();
        }
        let mut copy = [0u8; 1024];
        if let Some(prefix) = copy.get_mut(..data.len()) {
            prefix.copy_from_slice(data);
            let reply = crate::cookie::ReplyCookie::new([1; 8], [2; 16]);
            if let Some(len) = crate::cookie::append_to_opt(&mut copy, data.len(), 1024, &reply) {
                let appended = Message::parse(copy.get(..len).unwrap_or_default());
                assert!(
                    appended.is_ok(),
                    "a cookie appended to a valid message broke it"
                );
            }
        }
    }
    let _key = QueryKey::from_message(&message);
    let _text = format!("{message:?}");
    core::hint::black_box(seen);
}

/// Compare two parsed messages field by field (names exactly, RDATA with
/// names decompressed). Returns a description of the first difference.
pub fn compare_messages(left: &Message<'_>, right: &Message<'_>) -> Result<(), String> {
    let (lh, rh) = (left.header(), right.header());
    if (lh.id, lh.flags, lh.question_count) != (rh.id, rh.flags, rh.question_count) {
        return Err(format!("header differs: {lh:?} vs {rh:?}"));
    }
    for (index, (a, b)) in left.questions().zip(right.questions()).enumerate() {
        if !a.name.eq_exact(&b.name) || a.qtype != b.qtype || a.qclass != b.qclass {
            return Err(format!("question {index} differs: {a:?} vs {b:?}"));
        }
    }
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        let (mut a_records, mut b_records) = (left.records(section), right.records(section));
        loop {
            match (a_records.next(), b_records.next()) {
                (None, None) => break,
                (Some(a), Some(b)) => compare_records(&a, &b)?,
                (a, b) => return Err(format!("{section:?} count differs: {a:?} vs {b:?}")),
            }
        }
    }
    Ok(())
}

fn compare_records(a: &Record<'_>, b: &Record<'_>) -> Result<(), String> {
    if !a.name().eq_exact(&b.name())
        || a.rtype() != b.rtype()
        || a.class() != b.class()
        || a.ttl() != b.ttl()
    {
        return Err(format!("record differs: {a:?} vs {b:?}"));
    }
    if uncompressed_rdata(a) != uncompressed_rdata(b) {
        return Err(format!("rdata differs: {a:?} vs {b:?}"));
    }
    Ok(())
}

/// The record's RDATA with every name decompressed; raw bytes when the
/// RDATA does not match its type's layout.
fn uncompressed_rdata(record: &Record<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.rdata_bytes().len());
    let mut name_buf = WireNameBuf::new();
    let walked = walk_rdata(
        record.message(),
        record.rtype(),
        record.rdata_offset(),
        record.rdata_bytes().len(),
        |piece| {
            match piece {
                Piece::Bytes(bytes) => out.extend_from_slice(bytes),
                Piece::Name(name) => {
                    name.write_wire(&mut name_buf);
                    out.extend_from_slice(&name_buf);
                }
            }
            Ok(())
        },
    );
    if walked.is_err() {
        out.clear();
        out.extend_from_slice(record.rdata_bytes());
    }
    out
}

/// Parse, rebuild with [`MessageBuilder::copy_record`], parse again: the
/// two views must agree. Panics with the difference when they do not.
pub fn parse_rebuild_parse(data: &[u8]) {
    let Ok(original) = Message::parse(data) else {
        return;
    };
    // Typed views must accept what they can; skip messages whose RDATA the
    // rebuild would refuse (it validates RDATA layouts the view does not).
    let mut buf = [0u8; 65_535];
    let Ok(mut builder) = MessageBuilder::new(&mut buf) else {
        return;
    };
    builder.set_id(original.id());
    builder.set_flags(original.flags());
    for question in original.questions() {
        if builder
            .question(&question.name, question.qtype, question.qclass)
            .is_err()
        {
            return;
        }
    }
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        for record in original.records(section) {
            if builder.copy_record(section, &record).is_err() {
                // Malformed RDATA for a type with names: not rebuildable.
                return;
            }
        }
    }
    let len = builder.finish();
    let rebuilt_bytes = buf.get(..len).unwrap_or_default();
    let rebuilt = match Message::parse(rebuilt_bytes) {
        Ok(message) => message,
        Err(err) => panic!("rebuilt message does not parse: {err}"),
    };
    if let Err(difference) = compare_messages(&original, &rebuilt) {
        panic!("rebuild changed the message: {difference}");
    }
    // Typed RDATA must agree where the original's parses.
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        for (a, b) in original.records(section).zip(rebuilt.records(section)) {
            if let (Ok(left), Ok(right)) = (a.rdata(), b.rdata()) {
                // Opaque RDATA that holds names (RP, MINFO, NAPTR...) may
                // change bytes, not meaning, when its names are decompressed
                // and recompressed; `compare_messages` already compared it
                // with every name decompressed.
                let holds_names = layout(a.rtype()).is_some();
                let same = matches!((left, right), (RData::Unknown(x), RData::Unknown(y)) if x == y || holds_names)
                    || format!("{left:?}") == format!("{right:?}");
                assert!(same, "typed rdata differs: {left:?} vs {right:?}");
            }
            assert_eq!(
                a.rdata().is_ok(),
                b.rdata().is_ok(),
                "rdata validity differs for {a:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `roundtrip` fuzz target (kept in
    /// `tests/fuzz_regressions/roundtrip-minfo-recompressed.bin`): MINFO has
    /// no typed view, and the rebuild compresses the `com` of its second
    /// name against its first, so the opaque bytes differ while the names
    /// are the same.
    #[test]
    fn opaque_rdata_with_names_may_be_recompressed() {
        let mut message = vec![0x30, 0x0c, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        message.extend_from_slice(b"\x00\x00\x17\x00\x00");
        message.extend_from_slice(b"\x00\x00\x0e\x00\x01\x00\x00\x00\x3c\x00\x20");
        message.extend_from_slice(b"\x07\x01\x00\x00\x00ple\x03com\x00");
        message.extend_from_slice(b"\x05error\x07example\x03com\x00");
        parse_rebuild_parse(&message);
        walk_any_bytes(&message);
    }

    /// Opaque RDATA of a type without names must still come back byte for
    /// byte.
    #[test]
    fn opaque_rdata_without_names_is_compared_exactly() {
        let mut message = vec![0, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
        message.extend_from_slice(b"\x00\xff\x00\x00\x01\x00\x00\x00\x3c\x00\x02\xc0\x0c");
        parse_rebuild_parse(&message);
    }
}
