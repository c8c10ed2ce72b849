//! The zero-copy message view: header, sections, records and EDNS(0).
//!
//! [`Message::parse`] walks the whole message once and validates its
//! structure: every name (through compression pointers), every record's
//! fixed fields and RDATA length, the section counts against the bytes
//! present, and the OPT record's placement and option framing (RFC 6891).
//! It allocates nothing. After that the section iterators cannot fail; only
//! typed RDATA views ([`Record::rdata`]) are checked lazily, because most
//! callers never look inside RDATA.

use crate::error::{ErrorKind, Result, WireError};
use crate::header::{Flags, HEADER_LEN, Header};
use crate::name::{Name, parse_name};
use crate::rdata::RData;
use crate::types::{Class, Rcode, RecordType};

/// Bytes of a record after its owner name: type, class, TTL, RDATA length.
const RECORD_FIXED_LEN: usize = 10;

/// The three record sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section.
    Additional,
}

/// A validated view of a DNS message.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    bytes: &'a [u8],
    header: Header,
    answer_start: usize,
    authority_start: usize,
    additional_start: usize,
    end: usize,
    opt: Option<Opt<'a>>,
    /// The first question's name, when it lies in place (as in every
    /// query): its wire length and label count, so [`Message::question`]
    /// need not parse it again (it fits in the header's padding).
    first_name: Option<(u8, u8)>,
}

/// An entry of the question section.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The name asked about.
    pub name: Name<'a>,
    /// The type asked for.
    pub qtype: RecordType,
    /// The class asked for.
    pub qclass: Class,
}

/// A resource record inside a message.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    message: &'a [u8],
    name: Name<'a>,
    rtype: RecordType,
    class: Class,
    ttl: u32,
    ttl_offset: usize,
    rdata_offset: usize,
    rdata_len: u16,
}

/// The EDNS(0) OPT pseudo-record (RFC 6891 section 6).
#[derive(Debug, Clone, Copy)]
pub struct Opt<'a> {
    udp_payload_size: u16,
    extended_rcode: u8,
    version: u8,
    flags: u16,
    options: &'a [u8],
    record_offset: usize,
}

/// One EDNS option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdnsOption<'a> {
    /// The option code (IANA "DNS EDNS0 Option Codes").
    pub code: u16,
    /// The option's data.
    pub data: &'a [u8],
}

/// Read a big-endian u16 at `at`, or report `what` as truncated.
fn read_u16(bytes: &[u8], at: usize, what: &'static str) -> Result<u16> {
    bytes
        .get(at..at + 2)
        .and_then(|pair| pair.try_into().ok())
        .map(u16::from_be_bytes)
        .ok_or(WireError::new(ErrorKind::Truncated(what), bytes.len()))
}

fn read_u32(bytes: &[u8], at: usize, what: &'static str) -> Result<u32> {
    bytes
        .get(at..at + 4)
        .and_then(|quad| quad.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or(WireError::new(ErrorKind::Truncated(what), bytes.len()))
}

/// Parse the record at `offset`; returns it and the offset after it.
fn parse_record(bytes: &[u8], offset: usize) -> Result<(Record<'_>, usize)> {
    let (name, after_name) = parse_name(bytes, offset)?;
    if after_name + RECORD_FIXED_LEN > bytes.len() {
        return Err(WireError::new(
            ErrorKind::Truncated("record header"),
            bytes.len(),
        ));
    }
    let rtype = RecordType(read_u16(bytes, after_name, "record header")?);
    let class = Class(read_u16(bytes, after_name + 2, "record header")?);
    let ttl = read_u32(bytes, after_name + 4, "record header")?;
    let rdata_len = read_u16(bytes, after_name + 8, "record header")?;
    let rdata_offset = after_name + RECORD_FIXED_LEN;
    let end = rdata_offset + usize::from(rdata_len);
    if end > bytes.len() {
        return Err(WireError::new(ErrorKind::Truncated("rdata"), bytes.len()));
    }
    let record = Record {
        message: bytes,
        name,
        rtype,
        class,
        ttl,
        ttl_offset: after_name + 4,
        rdata_offset,
        rdata_len,
    };
    Ok((record, end))
}

fn parse_question(bytes: &[u8], offset: usize) -> Result<(Question<'_>, usize)> {
    let (name, after_name) = parse_name(bytes, offset)?;
    let qtype = RecordType(read_u16(bytes, after_name, "question")?);
    let qclass = Class(read_u16(bytes, after_name + 2, "question")?);
    Ok((
        Question {
            name,
            qtype,
            qclass,
        },
        after_name + 4,
    ))
}

/// A header count that runs out exactly at the end of the bytes is a count
/// mismatch; one that runs out inside an item is a truncation.
fn count_error(err: WireError, pos: usize, len: usize) -> WireError {
    if pos >= len {
        WireError::new(ErrorKind::SectionCount, pos)
    } else {
        err
    }
}

impl<'a> Message<'a> {
    /// Validate `bytes` as a DNS message and return a view over it.
    ///
    /// Bytes after the last record promised by the header are tolerated
    /// and ignored (see [`Message::trailing_len`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let header = Header::parse(bytes)?;
        let mut pos = HEADER_LEN;
        let mut first_name = None;
        for index in 0..header.question_count {
            let (question, next) =
                parse_question(bytes, pos).map_err(|e| count_error(e, pos, bytes.len()))?;
            if index == 0 && question.name.is_in_place() {
                first_name = Some((
                    question.name.wire_len() as u8,
                    question.name.label_count() as u8,
                ));
            }
            pos = next;
        }
        let answer_start = pos;
        let mut opt = None;
        let mut section_starts = [0usize; 3];
        let sections = [
            (Section::Answer, header.answer_count),
            (Section::Authority, header.authority_count),
            (Section::Additional, header.additional_count),
        ];
        for ((section, count), start) in sections.into_iter().zip(section_starts.iter_mut()) {
            *start = pos;
            for _ in 0..count {
                let (record, next) =
                    parse_record(bytes, pos).map_err(|e| count_error(e, pos, bytes.len()))?;
                if record.rtype == RecordType::OPT {
                    if section != Section::Additional {
                        return Err(WireError::new(ErrorKind::OptOutsideAdditional, pos));
                    }
                    if opt.is_some() {
                        return Err(WireError::new(ErrorKind::DuplicateOpt, pos));
                    }
                    opt = Some(Opt::from_record(&record, pos)?);
                }
                pos = next;
            }
        }
        let [_, authority_start, additional_start] = section_starts;
        Ok(Self {
            bytes,
            header,
            answer_start,
            authority_start,
            additional_start,
            end: pos,
            opt,
            first_name,
        })
    }

    /// The bytes this view was parsed from.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The message ID.
    pub fn id(&self) -> u16 {
        self.header.id
    }

    /// The header flags.
    pub fn flags(&self) -> Flags {
        self.header.flags
    }

    /// The full rcode: the header's 4 bits, extended by the OPT record's 8
    /// bits when there is one.
    pub fn rcode(&self) -> Rcode {
        let high = self.opt.map_or(0, |opt| opt.extended_rcode);
        Rcode::from_parts(self.header.flags.header_rcode(), high)
    }

    /// The question section.
    pub fn questions(&self) -> Questions<'a> {
        Questions {
            bytes: self.bytes,
            pos: HEADER_LEN,
            remaining: self.header.question_count,
        }
    }

    /// The first question, if any (a normal query has exactly one).
    pub fn question(&self) -> Option<Question<'a>> {
        if let Some((wire_len, label_count)) = self.first_name {
            // Parsed in place at the header's end: its type and class follow.
            let after_name = HEADER_LEN + usize::from(wire_len);
            let qtype = read_u16(self.bytes, after_name, "question").ok()?;
            let qclass = read_u16(self.bytes, after_name + 2, "question").ok()?;
            return Some(Question {
                name: Name::in_place_at(self.bytes, HEADER_LEN, wire_len, label_count),
                qtype: RecordType(qtype),
                qclass: Class(qclass),
            });
        }
        self.questions().next()
    }

    /// The records of one section, in order (the OPT record included).
    pub fn records(&self, section: Section) -> Records<'a> {
        let (pos, remaining) = match section {
            Section::Answer => (self.answer_start, self.header.answer_count),
            Section::Authority => (self.authority_start, self.header.authority_count),
            Section::Additional => (self.additional_start, self.header.additional_count),
        };
        Records {
            bytes: self.bytes,
            pos,
            remaining,
        }
    }

    /// The answer section.
    pub fn answers(&self) -> Records<'a> {
        self.records(Section::Answer)
    }

    /// The authority section.
    pub fn authorities(&self) -> Records<'a> {
        self.records(Section::Authority)
    }

    /// The additional section, including the OPT record if present.
    pub fn additionals(&self) -> Records<'a> {
        self.records(Section::Additional)
    }

    /// The EDNS(0) OPT record, if the message has one.
    pub fn opt(&self) -> Option<Opt<'a>> {
        self.opt
    }

    /// Offset where the answer section starts (the end of the question).
    pub fn answer_offset(&self) -> usize {
        self.answer_start
    }

    /// Offset just after the last record promised by the header.
    pub fn end_offset(&self) -> usize {
        self.end
    }

    /// How many bytes follow the last promised record.
    pub fn trailing_len(&self) -> usize {
        self.bytes.len() - self.end
    }
}

/// Lists every question without collecting them (a message may hold up
/// to 65,535; the fuzzer found that collecting into a fixed array panics).
struct QuestionsDebug<'a>(Questions<'a>);

impl core::fmt::Debug for QuestionsDebug<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.clone()).finish()
    }
}

impl core::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("header", &self.header)
            .field("questions", &QuestionsDebug(self.questions()))
            .field("opt", &self.opt)
            .finish_non_exhaustive()
    }
}

impl<'a> Record<'a> {
    /// The owner name.
    pub fn name(&self) -> Name<'a> {
        self.name
    }

    /// The record type.
    pub fn rtype(&self) -> RecordType {
        self.rtype
    }

    /// The record class (for OPT: the UDP payload size).
    pub fn class(&self) -> Class {
        self.class
    }

    /// The TTL in seconds (for OPT: extended rcode, version and flags).
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// Offset of the 4-byte TTL field in the message, so a cache can lower
    /// TTLs in a stored copy in place.
    pub fn ttl_offset(&self) -> usize {
        self.ttl_offset
    }

    /// Offset of the RDATA in the message.
    pub fn rdata_offset(&self) -> usize {
        self.rdata_offset
    }

    /// The raw RDATA; names inside it may be compression pointers into the
    /// message.
    pub fn rdata_bytes(&self) -> &'a [u8] {
        let start = self.rdata_offset;
        self.message
            .get(start..start + usize::from(self.rdata_len))
            .unwrap_or_default()
    }

    /// The typed RDATA view, validated now.
    pub fn rdata(&self) -> Result<RData<'a>> {
        RData::parse(
            self.message,
            self.rtype,
            self.rdata_offset,
            usize::from(self.rdata_len),
        )
    }

    /// Walk the RDATA piece by piece, names read through compression
    /// pointers ([`crate::walk_rdata`]).
    pub fn walk_rdata(&self, visit: impl FnMut(crate::RdataPiece<'a>) -> Result<()>) -> Result<()> {
        crate::rdata::walk_rdata(
            self.message,
            self.rtype,
            self.rdata_offset,
            usize::from(self.rdata_len),
            visit,
        )
    }

    /// The message this record was read from.
    pub fn message(&self) -> &'a [u8] {
        self.message
    }
}

impl<'a> Opt<'a> {
    fn from_record(record: &Record<'a>, offset: usize) -> Result<Self> {
        if !record.name.is_root() {
            return Err(WireError::new(ErrorKind::OptOwnerNotRoot, offset));
        }
        let options = record.rdata_bytes();
        let mut pos = 0usize;
        while pos < options.len() {
            let len = read_u16(options, pos + 2, "EDNS option")
                .map_err(|_| WireError::new(ErrorKind::BadOption, record.rdata_offset + pos))?;
            pos += 4 + usize::from(len);
        }
        if pos != options.len() {
            return Err(WireError::new(ErrorKind::BadOption, record.rdata_offset));
        }
        let [extended_rcode, version, flags_high, flags_low] = record.ttl.to_be_bytes();
        Ok(Self {
            udp_payload_size: record.class.0,
            extended_rcode,
            version,
            flags: u16::from_be_bytes([flags_high, flags_low]),
            options,
            record_offset: offset,
        })
    }

    /// The requestor's UDP payload size, as sent (callers should treat
    /// values below 512 as 512).
    pub fn udp_payload_size(&self) -> u16 {
        self.udp_payload_size
    }

    /// The upper 8 bits of the extended rcode.
    pub fn extended_rcode(&self) -> u8 {
        self.extended_rcode
    }

    /// The EDNS version (0 is the only one defined).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The DO (DNSSEC OK) bit.
    pub fn dnssec_ok(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// All 16 EDNS flag bits (DO is the top one; the rest are reserved).
    pub fn flags(&self) -> u16 {
        self.flags
    }

    /// The options, in order.
    pub fn options(&self) -> EdnsOptions<'a> {
        EdnsOptions {
            bytes: self.options,
        }
    }

    /// Offset of the OPT record in the message.
    pub fn record_offset(&self) -> usize {
        self.record_offset
    }
}

/// Iterator over the question section.
#[derive(Clone)]
pub struct Questions<'a> {
    bytes: &'a [u8],
    pos: usize,
    remaining: u16,
}

impl<'a> Iterator for Questions<'a> {
    type Item = Question<'a>;

    fn next(&mut self) -> Option<Question<'a>> {
        self.remaining = self.remaining.checked_sub(1)?;
        // Validated by `Message::parse`; a failure here cannot happen, and
        // would end the iteration rather than panic.
        let (question, next) = parse_question(self.bytes, self.pos).ok()?;
        self.pos = next;
        Some(question)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

/// Iterator over the records of one section.
#[derive(Clone)]
pub struct Records<'a> {
    bytes: &'a [u8],
    pos: usize,
    remaining: u16,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        self.remaining = self.remaining.checked_sub(1)?;
        let (record, next) = parse_record(self.bytes, self.pos).ok()?;
        self.pos = next;
        Some(record)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

/// Iterator over EDNS options (framing validated by `Message::parse`).
#[derive(Clone)]
pub struct EdnsOptions<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for EdnsOptions<'a> {
    type Item = EdnsOption<'a>;

    fn next(&mut self) -> Option<EdnsOption<'a>> {
        let code = read_u16(self.bytes, 0, "EDNS option").ok()?;
        let len = usize::from(read_u16(self.bytes, 2, "EDNS option").ok()?);
        let data = self.bytes.get(4..4 + len)?;
        self.bytes = self.bytes.get(4 + len..)?;
        Some(EdnsOption { code, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-assembled messages, independent of the builder.
    struct Raw(Vec<u8>);

    impl Raw {
        fn new(id: u16, flags: u16, counts: [u16; 4]) -> Self {
            let mut bytes = Vec::new();
            for word in [id, flags, counts[0], counts[1], counts[2], counts[3]] {
                bytes.extend_from_slice(&word.to_be_bytes());
            }
            Self(bytes)
        }
        fn bytes(mut self, more: &[u8]) -> Self {
            self.0.extend_from_slice(more);
            self
        }
        fn question(self, name: &[u8], qtype: u16, qclass: u16) -> Self {
            self.bytes(name)
                .bytes(&qtype.to_be_bytes())
                .bytes(&qclass.to_be_bytes())
        }
        fn record(self, name: &[u8], rtype: u16, class: u16, ttl: u32, rdata: &[u8]) -> Self {
            self.bytes(name)
                .bytes(&rtype.to_be_bytes())
                .bytes(&class.to_be_bytes())
                .bytes(&ttl.to_be_bytes())
                .bytes(&(rdata.len() as u16).to_be_bytes())
                .bytes(rdata)
        }
    }

    const EXAMPLE: &[u8] = b"\x07example\x03com\x00";

    #[test]
    fn walking_rdata_reads_compressed_names_in_full() {
        // MX 10 mail.<pointer to example.com at offset 12>.
        let bytes = Raw::new(1, 0x8000, [1, 1, 0, 0])
            .question(EXAMPLE, 15, 1)
            .record(b"\xc0\x0c", 15, 1, 300, b"\x00\x0a\x04mail\xc0\x0c")
            .0;
        let message = Message::parse(&bytes).unwrap();
        let record = message.answers().next().unwrap();
        let mut flat = Vec::new();
        record
            .walk_rdata(|piece| {
                match piece {
                    crate::RdataPiece::Bytes(bytes) => flat.extend_from_slice(bytes),
                    crate::RdataPiece::Name(name) => {
                        let mut wire = crate::WireNameBuf::new();
                        name.write_wire(&mut wire);
                        flat.extend_from_slice(&wire);
                    }
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(flat, b"\x00\x0a\x04mail\x07example\x03com\x00");
        let (name, after) = Name::parse_at(&bytes, record.rdata_offset() + 2).unwrap();
        assert_eq!(name.to_string(), "mail.example.com.");
        assert_eq!(
            after,
            record.rdata_offset() + usize::from(record.rdata_bytes().len() as u16)
        );
    }

    fn opt_rdata(options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (code, data) in options {
            out.extend_from_slice(&code.to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    #[test]
    fn the_first_question_is_the_same_whether_kept_or_parsed_again() {
        // In place (every query): kept from the parse.
        let raw = Raw::new(1, 0x0100, [2, 0, 0, 0])
            .question(b"\x03WwW\x07example\x03com\x00", 28, 1)
            .question(b"\x04mail\xc0\x10", 15, 1);
        let message = Message::parse(&raw.0).unwrap();
        let first = message.question().unwrap();
        let parsed = message.questions().next().unwrap();
        assert_eq!(first.name.to_string(), "WwW.example.com.");
        assert!(first.name.eq_exact(&parsed.name));
        assert_eq!((first.qtype, first.qclass), (RecordType(28), Class(1)));
        assert_eq!((first.qtype, first.qclass), (parsed.qtype, parsed.qclass));
        let mut lower = crate::name::WireNameBuf::new();
        first.name.write_lower(&mut lower);
        assert_eq!(&lower[..], b"\x03www\x07example\x03com\x00");
        // The second name is compressed: copied label by label.
        let second = message.questions().nth(1).unwrap();
        second.name.write_lower(&mut lower);
        assert_eq!(&lower[..], b"\x04mail\x07example\x03com\x00");
        // A first question whose name is a pointer (to offset 3 of the
        // header, a zero byte: the root) is parsed again.
        let raw = Raw::new(1, 0x0100, [1, 0, 0, 0]).question(b"\xc0\x03", 2, 1);
        let message = Message::parse(&raw.0).unwrap();
        let first = message.question().unwrap();
        assert!(first.name.is_root());
        assert_eq!((first.qtype, first.qclass), (RecordType(2), Class(1)));
        first.name.write_lower(&mut lower);
        assert_eq!(&lower[..], b"\x00");
    }

    #[test]
    fn query_with_edns() {
        let options = opt_rdata(&[(10, b"12345678"), (12, b"")]);
        let raw = Raw::new(0x1234, 0x0110, [1, 0, 0, 1])
            .question(EXAMPLE, 1, 1)
            .record(b"\x00", 41, 1232, 0x0000_8000, &options);
        let message = Message::parse(&raw.0).unwrap();
        assert_eq!(message.id(), 0x1234);
        assert!(message.flags().recursion_desired() && message.flags().checking_disabled());
        let question = message.question().unwrap();
        assert_eq!(question.name.to_string(), "example.com.");
        assert_eq!(
            (question.qtype, question.qclass),
            (RecordType::A, Class::IN)
        );
        let opt = message.opt().unwrap();
        assert_eq!(opt.udp_payload_size(), 1232);
        assert!(opt.dnssec_ok());
        assert_eq!(opt.version(), 0);
        let found: Vec<EdnsOption<'_>> = opt.options().collect();
        assert_eq!(
            found,
            [
                EdnsOption {
                    code: 10,
                    data: b"12345678"
                },
                EdnsOption {
                    code: 12,
                    data: b""
                }
            ]
        );
        assert_eq!(message.answers().count(), 0);
        assert_eq!(message.additionals().count(), 1);
        assert_eq!(message.trailing_len(), 0);
    }

    #[test]
    fn compressed_response_records_and_ttl_offsets() {
        // Question example.com; answers use pointers to offset 12.
        let raw = Raw::new(7, 0x8180, [1, 2, 1, 1])
            .question(EXAMPLE, 15, 1)
            .record(b"\xc0\x0c", 15, 1, 300, b"\x00\x0a\x04mail\xc0\x0c")
            .record(b"\xc0\x0c", 15, 1, 300, b"\x00\x14\x05mail2\xc0\x0c")
            .record(b"\xc0\x0c", 2, 1, 3600, b"\x02ns\xc0\x0c")
            .record(b"\x04mail\xc0\x0c", 1, 1, 60, &[192, 0, 2, 1]);
        let bytes = raw.0;
        let message = Message::parse(&bytes).unwrap();
        let answers: Vec<Record<'_>> = message.answers().collect();
        assert_eq!(answers.len(), 2);
        for record in &answers {
            assert_eq!(record.name().to_string(), "example.com.");
            let ttl = &bytes[record.ttl_offset()..record.ttl_offset() + 4];
            assert_eq!(u32::from_be_bytes(ttl.try_into().unwrap()), record.ttl());
        }
        let RData::Mx(mx) = answers[1].rdata().unwrap() else {
            panic!()
        };
        assert_eq!(
            (mx.preference, mx.exchange.to_string().as_str()),
            (20, "mail2.example.com.")
        );
        let authority = message.authorities().next().unwrap();
        assert_eq!(authority.rtype(), RecordType::NS);
        assert_eq!(authority.ttl(), 3600);
        let glue = message.additionals().next().unwrap();
        assert_eq!(glue.name().to_string(), "mail.example.com.");
        assert_eq!(glue.rdata_bytes(), &[192, 0, 2, 1]);
        assert_eq!(&bytes[glue.rdata_offset()..], &[192, 0, 2, 1]);
        assert!(message.opt().is_none());
        assert_eq!(message.rcode(), Rcode::NOERROR);
    }

    #[test]
    fn section_counts_larger_than_the_packet() {
        let raw = Raw::new(1, 0, [1, 5, 0, 0]).question(EXAMPLE, 1, 1).record(
            b"\xc0\x0c",
            1,
            1,
            1,
            &[1, 2, 3, 4],
        );
        let err = Message::parse(&raw.0).unwrap_err();
        assert_eq!(err, WireError::new(ErrorKind::SectionCount, raw.0.len()));
        let err = Message::parse(&Raw::new(1, 0, [3, 0, 0, 0]).0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::SectionCount);
        let err = Message::parse(&Raw::new(1, 0, [0, 0, 0, u16::MAX]).0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::SectionCount);
    }

    #[test]
    fn truncated_items() {
        let whole = Raw::new(1, 0, [1, 1, 0, 0])
            .question(EXAMPLE, 1, 1)
            .record(b"\xc0\x0c", 1, 1, 1, &[1, 2, 3, 4])
            .0;
        // Cut inside the RDATA, inside the record header, inside the question.
        let question_end = 12 + EXAMPLE.len() + 4;
        let cases = [
            (whole.len() - 1, ErrorKind::Truncated("rdata")),
            (question_end + 5, ErrorKind::Truncated("record header")),
            (question_end - 1, ErrorKind::Truncated("question")),
            (14, ErrorKind::Truncated("label")),
            (5, ErrorKind::Truncated("header")),
        ];
        for (cut, kind) in cases {
            let err = Message::parse(&whole[..cut]).unwrap_err();
            assert_eq!(err.kind, kind, "cut at {cut}");
        }
    }

    #[test]
    fn opt_outside_additional_is_rejected() {
        let in_answer = Raw::new(1, 0, [0, 1, 0, 0])
            .record(b"\x00", 41, 512, 0, b"")
            .0;
        assert_eq!(
            Message::parse(&in_answer).unwrap_err(),
            WireError::new(ErrorKind::OptOutsideAdditional, 12)
        );
        let in_authority = Raw::new(1, 0, [0, 0, 1, 0])
            .record(b"\x00", 41, 512, 0, b"")
            .0;
        assert_eq!(
            Message::parse(&in_authority).unwrap_err().kind,
            ErrorKind::OptOutsideAdditional
        );
    }

    #[test]
    fn two_opt_records_are_rejected() {
        let raw = Raw::new(1, 0, [0, 0, 0, 2])
            .record(b"\x00", 41, 512, 0, b"")
            .record(b"\x00", 41, 512, 0, b"");
        assert_eq!(
            Message::parse(&raw.0).unwrap_err(),
            WireError::new(ErrorKind::DuplicateOpt, 23)
        );
    }

    #[test]
    fn opt_owner_must_be_root() {
        let raw = Raw::new(1, 0, [0, 0, 0, 1]).record(b"\x01a\x00", 41, 512, 0, b"");
        assert_eq!(
            Message::parse(&raw.0).unwrap_err().kind,
            ErrorKind::OptOwnerNotRoot
        );
    }

    #[test]
    fn opt_option_framing_is_checked() {
        let too_long =
            Raw::new(1, 0, [0, 0, 0, 1]).record(b"\x00", 41, 512, 0, b"\x00\x0a\x00\x09abc");
        assert_eq!(
            Message::parse(&too_long.0).unwrap_err().kind,
            ErrorKind::BadOption
        );
        let half_header = Raw::new(1, 0, [0, 0, 0, 1]).record(b"\x00", 41, 512, 0, b"\x00\x0a\x00");
        assert_eq!(
            Message::parse(&half_header.0).unwrap_err().kind,
            ErrorKind::BadOption
        );
    }

    #[test]
    fn extended_rcode_combines_header_and_opt() {
        // BADVERS = 16: header bits 0, OPT high bits 1.
        let raw = Raw::new(1, 0x8000, [0, 0, 0, 1]).record(b"\x00", 41, 512, 0x0100_0000, b"");
        let message = Message::parse(&raw.0).unwrap();
        assert_eq!(message.rcode(), Rcode::BADVERS);
        assert_eq!(message.opt().unwrap().extended_rcode(), 1);
        let plain = Raw::new(1, 0x8003, [0, 0, 0, 0]);
        assert_eq!(Message::parse(&plain.0).unwrap().rcode(), Rcode::NXDOMAIN);
    }

    #[test]
    fn trailing_bytes_are_tolerated_and_reported() {
        let raw = Raw::new(1, 0, [1, 0, 0, 0])
            .question(EXAMPLE, 1, 1)
            .bytes(b"junk");
        let message = Message::parse(&raw.0).unwrap();
        assert_eq!(message.trailing_len(), 4);
        assert_eq!(message.end_offset(), raw.0.len() - 4);
    }

    #[test]
    fn bad_names_inside_sections_are_reported_with_offsets() {
        // An owner name that is a forward pointer.
        let raw = Raw::new(1, 0, [0, 1, 0, 0]).record(b"\xc0\x20", 1, 1, 1, &[0; 4]);
        assert_eq!(
            Message::parse(&raw.0).unwrap_err(),
            WireError::new(ErrorKind::BadPointer, 12)
        );
        // A question name with a 64-byte label.
        let mut name = vec![64u8];
        name.extend_from_slice(&[b'a'; 64]);
        name.push(0);
        let raw = Raw::new(1, 0, [1, 0, 0, 0]).question(&name, 1, 1);
        assert_eq!(
            Message::parse(&raw.0).unwrap_err().kind,
            ErrorKind::LabelTooLong
        );
    }

    #[test]
    fn unknown_types_and_classes_are_kept() {
        let raw = Raw::new(1, 0x8400, [1, 1, 0, 0])
            .question(EXAMPLE, 65_280, 3)
            .record(b"\xc0\x0c", 65_280, 3, 5, b"\x01\x02\x03");
        let message = Message::parse(&raw.0).unwrap();
        let record = message.answers().next().unwrap();
        assert_eq!(record.rtype(), RecordType(65_280));
        assert_eq!(record.class(), Class::CH);
        assert!(matches!(
            record.rdata(),
            Ok(RData::Unknown(b"\x01\x02\x03"))
        ));
        assert_eq!(message.question().unwrap().qtype.to_string(), "TYPE65280");
    }

    #[test]
    fn debug_lists_more_than_four_questions() {
        // Found by the `walk` fuzz target: five root questions made the
        // Debug impl overflow a 4-entry array and panic.
        let mut raw = Raw::new(0x2009, 0x0100, [5, 0, 0, 0]);
        for _ in 0..5 {
            raw = raw.question(b"\x00", 1, 1);
        }
        let message = Message::parse(&raw.0).unwrap();
        let text = format!("{message:?}");
        assert_eq!(text.matches("Question {").count(), 5, "{text}");
    }
}
