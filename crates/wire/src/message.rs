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
use crate::types::{Class, RecordType, Rcode};

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
        return Err(WireError::new(ErrorKind::Truncated("record header"), bytes.len()));
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
    Ok((Question { name, qtype, qclass }, after_name + 4))
}

/// A header count that runs out exactly at the end of the bytes is a count
/// mismatch; one that runs out inside an item is a truncation.
fn count_error(err: WireError, pos: usize, len: usize) -> WireError {
    if pos >= len { WireError::new(ErrorKind::SectionCount, pos) } else { err }
}

impl<'a> Message<'a> {
    /// Validate `bytes` as a DNS message and return a view over it.
    ///
    /// Bytes after the last record promised by the header are tolerated
    /// and ignored (see [`Message::trailing_len`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let header = Header::parse(bytes)?;
        let mut pos = HEADER_LEN;
        for _ in 0..header.question_count {
            let (_, next) = parse_question(bytes, pos).map_err(|e| count_error(e, pos, bytes.len()))?;
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
        Ok(Self { bytes, header, answer_start, authority_start, additional_start, end: pos, opt })
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
        self.questions().next()
    }

    /// The records of one section, in order (the OPT record included).
    pub fn records(&self, section: Section) -> Records<'a> {
        let (pos, remaining) = match section {
            Section::Answer => (self.answer_start, self.header.answer_count),
            Section::Authority => (self.authority_start, self.header.authority_count),
            Section::Additional => (self.additional_start, self.header.additional_count),
        };
        Records { bytes: self.bytes, pos, remaining }
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

impl core::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("header", &self.header)
            .field("questions", &self.questions().collect::<arrayvec::ArrayVec<_, 4>>())
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
        self.message.get(start..start + usize::from(self.rdata_len)).unwrap_or_default()
    }

    /// The typed RDATA view, validated now.
    pub fn rdata(&self) -> Result<RData<'a>> {
        RData::parse(self.message, self.rtype, self.rdata_offset, usize::from(self.rdata_len))
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
        EdnsOptions { bytes: self.options }
    }

    /// The raw option bytes (the OPT RDATA).
    pub fn options_bytes(&self) -> &'a [u8] {
        self.options
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
