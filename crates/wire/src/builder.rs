//! Build messages into a caller-owned buffer, with name compression and
//! RRset-aware truncation.
//!
//! The builder never allocates. It writes sections in order (question,
//! answer, authority, additional) and keeps a small table of where names
//! were written, so later names (and names inside the RDATA of RFC 1035
//! types, RFC 3597 section 4) become compression pointers.
//!
//! Truncation: the buffer has a size limit (for UDP, the client's payload
//! size). When a record does not fit, the builder rolls back to the end of
//! the last whole RRset, stops accepting records, and, if the cut was in the
//! answer or authority section, sets TC. A cut in the additional section
//! does not set TC (RFC 2181 section 9: TC means the answer is incomplete,
//! not that optional data was left out). Space for the OPT record can be
//! reserved up front so that it survives truncation (RFC 6891 section 7).

use arrayvec::ArrayVec;

use crate::error::{ErrorKind, Result, WireError};
use crate::header::{Flags, HEADER_LEN, Header};
use crate::message::{EdnsOption, Record, Section};
use crate::name::{Labels, MAX_LABELS, Name, WireNameBuf};
use crate::rdata::{Piece, RData, rdata_compression_allowed, walk_rdata};
use crate::types::{Class, RecordType};

/// Compression pointers hold a 14-bit offset.
const MAX_POINTER_TARGET: usize = 0x3fff;
/// Names remembered for compression; later names are written in full.
const COMPRESSION_ENTRIES: usize = 128;

/// The EDNS(0) OPT record to write.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec<'o> {
    /// Our UDP payload size.
    pub udp_payload_size: u16,
    /// The upper 8 bits of the extended rcode.
    pub extended_rcode: u8,
    /// The EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// Options to include.
    pub options: &'o [EdnsOption<'o>],
}

impl OptSpec<'_> {
    /// Wire length of this OPT record.
    pub fn wire_len(&self) -> usize {
        11 + self
            .options
            .iter()
            .map(|option| 4 + option.data.len())
            .sum::<usize>()
    }
}

#[derive(Debug, Clone, Copy)]
struct CompressionEntry {
    offset: u16,
    labels: u8,
}

/// Where to roll back to.
#[derive(Debug, Clone, Copy)]
struct Mark {
    len: usize,
    counts: [u16; 4],
    compression_len: usize,
}

#[derive(Debug, Clone, Copy)]
struct RrsetMark {
    start: Mark,
    section: Section,
    owner_offset: usize,
    owner_labels: u8,
    rtype: RecordType,
    class: Class,
}

/// Writes one DNS message into a caller-owned buffer.
pub struct MessageBuilder<'b> {
    buf: &'b mut [u8],
    limit: usize,
    reserved: usize,
    len: usize,
    id: u16,
    flags: Flags,
    counts: [u16; 4],
    stage: usize,
    compression: ArrayVec<CompressionEntry, COMPRESSION_ENTRIES>,
    rrset: Option<RrsetMark>,
    truncated: bool,
}

fn stage_of(section: Section) -> usize {
    match section {
        Section::Answer => 1,
        Section::Authority => 2,
        Section::Additional => 3,
    }
}

impl<'b> MessageBuilder<'b> {
    /// Start a message in `buf` (at least 12 bytes; at most 65,535 are
    /// used). ID and flags start at zero.
    pub fn new(buf: &'b mut [u8]) -> Result<Self> {
        if buf.len() < HEADER_LEN {
            return Err(WireError::new(ErrorKind::NoSpace, 0));
        }
        let limit = buf.len().min(usize::from(u16::MAX));
        Ok(Self {
            buf,
            limit,
            reserved: 0,
            len: HEADER_LEN,
            id: 0,
            flags: Flags::default(),
            counts: [0; 4],
            stage: 0,
            compression: ArrayVec::new(),
            rrset: None,
            truncated: false,
        })
    }

    /// Cap the message size (for UDP: the client's payload size, or 512).
    /// The cap never exceeds the buffer; it cannot go below what is
    /// already written.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.clamp(self.len, self.buf.len().min(usize::from(u16::MAX)));
    }

    /// Keep `bytes` free at the end for a record written last (the OPT).
    pub fn reserve(&mut self, bytes: usize) {
        self.reserved = bytes;
    }

    /// Set the message ID.
    pub fn set_id(&mut self, id: u16) {
        self.id = id;
    }

    /// Set the header flags (TC is added by `finish` if the builder cut).
    pub fn set_flags(&mut self, flags: Flags) {
        self.flags = flags;
    }

    /// The flags set so far.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Bytes written so far, header included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the header has been written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Whether a record did not fit and the message was cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn cap(&self) -> usize {
        self.limit.saturating_sub(self.reserved)
    }

    fn mark(&self) -> Mark {
        Mark {
            len: self.len,
            counts: self.counts,
            compression_len: self.compression.len(),
        }
    }

    fn rollback(&mut self, mark: Mark) {
        self.len = mark.len;
        self.counts = mark.counts;
        self.compression.truncate(mark.compression_len);
    }

    /// Run `write`; if it fails, undo whatever it wrote.
    fn or_rollback(&mut self, write: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let mark = self.mark();
        let written = write(self);
        if written.is_err() {
            self.rollback(mark);
        }
        written
    }

    fn bump_count(&mut self, stage: usize) {
        if let Some(count) = self.counts.get_mut(stage) {
            *count = count.saturating_add(1);
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self.len + bytes.len();
        if end > self.cap() {
            return Err(WireError::new(ErrorKind::NoSpace, self.len));
        }
        let slot = self
            .buf
            .get_mut(self.len..end)
            .ok_or(WireError::new(ErrorKind::NoSpace, self.len))?;
        slot.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Labels of a name this builder already wrote at `offset`.
    fn written_labels(&self, offset: usize, labels: u8) -> Labels<'_> {
        let written = self.buf.get(..self.len).unwrap_or_default();
        Labels::at(written, offset, labels)
    }

    /// Find an earlier name equal to `suffix`, letter case included: a
    /// case-insensitive match would silently rewrite the case of the later
    /// name, and RFC 4343 asks that case be preserved.
    fn find_compression_target(&self, suffix: Labels<'_>, labels: u8) -> Option<u16> {
        self.compression
            .iter()
            .filter(|entry| entry.labels == labels)
            .find(|entry| {
                self.written_labels(usize::from(entry.offset), labels)
                    .zip(suffix.clone())
                    .all(|(a, b)| a == b)
            })
            .map(|entry| entry.offset)
    }

    /// Write `name`, ending in a compression pointer to an earlier copy of
    /// its longest possible suffix when `compress` is set.
    fn write_name(&mut self, name: &Name<'_>, compress: bool) -> Result<()> {
        let mut flat = WireNameBuf::new();
        name.write_wire(&mut flat);
        let mut starts = ArrayVec::<usize, { MAX_LABELS + 1 }>::new();
        let mut pos = 0usize;
        while let Some(&len) = flat.get(pos).filter(|&&len| len != 0) {
            let _fits = starts.try_push(pos);
            pos += 1 + usize::from(len);
        }
        let total = starts.len();
        let mut pointer = None;
        let mut written_labels = total;
        if compress {
            for (index, &start) in starts.iter().enumerate() {
                let labels = (total - index) as u8;
                if let Some(target) =
                    self.find_compression_target(Labels::at(&flat, start, labels), labels)
                {
                    pointer = Some(target);
                    written_labels = index;
                    break;
                }
            }
        }
        for (index, &start) in starts.iter().enumerate().take(written_labels) {
            let end = starts.get(index + 1).copied().unwrap_or(pos);
            if self.len <= MAX_POINTER_TARGET {
                let entry = CompressionEntry {
                    offset: self.len as u16,
                    labels: (total - index) as u8,
                };
                let _full = self.compression.try_push(entry);
            }
            let label = flat.get(start..end).unwrap_or_default();
            self.put(label)?;
        }
        match pointer {
            Some(target) => self.put(&(0xc000 | target).to_be_bytes()),
            None => self.put(&[0]),
        }
    }

    /// Add a question. Questions come before any record.
    pub fn question(&mut self, name: &Name<'_>, qtype: RecordType, qclass: Class) -> Result<()> {
        if self.stage > 0 {
            return Err(WireError::new(ErrorKind::OutOfOrder, self.len));
        }
        let written = self.or_rollback(|builder| {
            builder.write_name(name, true)?;
            builder.put(&qtype.0.to_be_bytes())?;
            builder.put(&qclass.0.to_be_bytes())
        });
        match written {
            Ok(()) => self.bump_count(0),
            Err(_) => self.truncated = true,
        }
        written
    }

    /// Add a record with typed RDATA to `section`.
    pub fn record(
        &mut self,
        section: Section,
        name: &Name<'_>,
        rtype: RecordType,
        class: Class,
        ttl: u32,
        rdata: &RData<'_>,
    ) -> Result<()> {
        self.write_record(section, name, rtype, class, ttl, |builder| {
            builder.write_rdata(rtype, rdata)
        })
    }

    /// Copy a record from a parsed message into `section`. Names inside
    /// its RDATA are read through the source's compression pointers and
    /// re-compressed only where RFC 3597 allows.
    pub fn copy_record(&mut self, section: Section, record: &Record<'_>) -> Result<()> {
        let rtype = record.rtype();
        let compress = rdata_compression_allowed(rtype);
        let source = record.message();
        let (offset, len) = (record.rdata_offset(), record.rdata_bytes().len());
        self.write_record(
            section,
            &record.name(),
            rtype,
            record.class(),
            record.ttl(),
            |builder| {
                walk_rdata(source, rtype, offset, len, |piece| match piece {
                    Piece::Bytes(bytes) => builder.put(bytes),
                    Piece::Name(name) => builder.write_name(&name, compress),
                })
            },
        )
    }

    fn write_rdata(&mut self, rtype: RecordType, rdata: &RData<'_>) -> Result<()> {
        let compress = rdata_compression_allowed(rtype);
        match rdata {
            RData::A(address) => self.put(&address.octets()),
            RData::Aaaa(address) => self.put(&address.octets()),
            RData::Ns(name) | RData::Cname(name) | RData::Dname(name) | RData::Ptr(name) => {
                self.write_name(name, compress)
            }
            RData::Mx(mx) => {
                self.put(&mx.preference.to_be_bytes())?;
                self.write_name(&mx.exchange, compress)
            }
            RData::Txt(txt) => self.put(txt.as_bytes()),
            RData::Soa(soa) => {
                self.write_name(&soa.mname, compress)?;
                self.write_name(&soa.rname, compress)?;
                for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                    self.put(&value.to_be_bytes())?;
                }
                Ok(())
            }
            RData::Srv(srv) => {
                for value in [srv.priority, srv.weight, srv.port] {
                    self.put(&value.to_be_bytes())?;
                }
                self.write_name(&srv.target, compress)
            }
            RData::Caa(caa) => {
                let tag_len = u8::try_from(caa.tag.len())
                    .map_err(|_| WireError::new(ErrorKind::BadRdata, self.len))?;
                self.put(&[caa.flags, tag_len])?;
                self.put(caa.tag)?;
                self.put(caa.value)
            }
            RData::Unknown(bytes) => self.put(bytes),
        }
    }

    fn same_rrset(
        &self,
        section: Section,
        name: &Name<'_>,
        rtype: RecordType,
        class: Class,
    ) -> bool {
        self.rrset.is_some_and(|rrset| {
            rrset.section == section
                && rrset.rtype == rtype
                && rrset.class == class
                && usize::from(rrset.owner_labels) == name.label_count()
                && self
                    .written_labels(rrset.owner_offset, rrset.owner_labels)
                    .zip(name.labels())
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        })
    }

    fn write_record(
        &mut self,
        section: Section,
        name: &Name<'_>,
        rtype: RecordType,
        class: Class,
        ttl: u32,
        write_rdata: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        if self.truncated {
            return Err(WireError::new(ErrorKind::NoSpace, self.len));
        }
        let stage = stage_of(section);
        if stage < self.stage {
            return Err(WireError::new(ErrorKind::OutOfOrder, self.len));
        }
        self.stage = stage;
        let record_start = self.mark();
        let rrset_start = if self.same_rrset(section, name, rtype, class) {
            self.rrset.map_or(record_start, |rrset| rrset.start)
        } else {
            record_start
        };
        let written = self.write_record_body(name, rtype, class, ttl, write_rdata);
        match written {
            Ok(()) => {
                if rrset_start.len == record_start.len {
                    self.rrset = Some(RrsetMark {
                        start: record_start,
                        section,
                        owner_offset: record_start.len,
                        owner_labels: name.label_count() as u8,
                        rtype,
                        class,
                    });
                }
                self.bump_count(stage);
                Ok(())
            }
            Err(err) if err.kind == ErrorKind::NoSpace => {
                self.rollback(rrset_start);
                self.truncated = true;
                if section != Section::Additional {
                    self.flags = self.flags.with_truncated(true);
                }
                Err(err)
            }
            Err(err) => {
                self.rollback(record_start);
                Err(err)
            }
        }
    }

    fn write_record_body(
        &mut self,
        name: &Name<'_>,
        rtype: RecordType,
        class: Class,
        ttl: u32,
        write_rdata: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        self.write_name(name, true)?;
        self.put(&rtype.0.to_be_bytes())?;
        self.put(&class.0.to_be_bytes())?;
        self.put(&ttl.to_be_bytes())?;
        let length_at = self.len;
        self.put(&[0, 0])?;
        write_rdata(self)?;
        let rdata_len = u16::try_from(self.len - length_at - 2)
            .map_err(|_| WireError::new(ErrorKind::NoSpace, length_at))?;
        if let Some(slot) = self.buf.get_mut(length_at..length_at + 2) {
            slot.copy_from_slice(&rdata_len.to_be_bytes());
        }
        Ok(())
    }

    /// Add the OPT record to the additional section, using any space kept
    /// by [`MessageBuilder::reserve`]. It is written even after a cut.
    pub fn opt(&mut self, opt: &OptSpec<'_>) -> Result<()> {
        let stage = stage_of(Section::Additional);
        self.stage = self.stage.max(stage);
        self.reserved = 0;
        let mut ttl = [0u8; 4];
        ttl[0] = opt.extended_rcode;
        ttl[1] = opt.version;
        ttl[2] = if opt.dnssec_ok { 0x80 } else { 0 };
        self.or_rollback(|builder| {
            builder.write_record_body(
                &Name::root(),
                RecordType::OPT,
                Class(opt.udp_payload_size),
                u32::from_be_bytes(ttl),
                |builder| {
                    for option in opt.options {
                        let len = u16::try_from(option.data.len())
                            .map_err(|_| WireError::new(ErrorKind::BadOption, builder.len))?;
                        builder.put(&option.code.to_be_bytes())?;
                        builder.put(&len.to_be_bytes())?;
                        builder.put(option.data)?;
                    }
                    Ok(())
                },
            )
        })?;
        self.bump_count(stage);
        self.rrset = None;
        Ok(())
    }

    /// Write the header and return the message length. The message is
    /// `buf[..length]`.
    pub fn finish(self) -> usize {
        let [
            question_count,
            answer_count,
            authority_count,
            additional_count,
        ] = self.counts;
        let header = Header {
            id: self.id,
            flags: self.flags,
            question_count,
            answer_count,
            authority_count,
            additional_count,
        };
        if let Some(slot) = self.buf.get_mut(..HEADER_LEN) {
            slot.copy_from_slice(&header.to_bytes());
        }
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::name::NameBuf;
    use crate::rdata::{Mx, Soa, Srv, Txt};
    use crate::types::Rcode;
    use core::net::Ipv4Addr;

    fn name(text: &str) -> NameBuf {
        NameBuf::from_presentation(text).unwrap()
    }

    /// Add a class IN record owned by `owner`.
    fn add(
        builder: &mut MessageBuilder<'_>,
        section: Section,
        owner: &NameBuf,
        rtype: RecordType,
        ttl: u32,
        rdata: &RData<'_>,
    ) -> Result<()> {
        builder.record(section, &owner.as_name(), rtype, Class::IN, ttl, rdata)
    }

    fn a_record(
        builder: &mut MessageBuilder<'_>,
        section: Section,
        owner: &NameBuf,
        last: u8,
    ) -> Result<()> {
        let rdata = RData::A(Ipv4Addr::new(10, 0, 0, last));
        add(builder, section, owner, RecordType::A, 60, &rdata)
    }

    #[test]
    fn builds_a_response_that_parses_back() {
        let owner = name("Example.COM");
        let mail = name("mail.Example.COM");
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(0xabcd);
        builder.set_flags(
            Flags::default()
                .with_response(true)
                .with_rcode(Rcode::NXDOMAIN),
        );
        builder
            .question(&owner.as_name(), RecordType::MX, Class::IN)
            .unwrap();
        let mx = RData::Mx(Mx {
            preference: 10,
            exchange: mail.as_name(),
        });
        add(
            &mut builder,
            Section::Answer,
            &owner,
            RecordType::MX,
            300,
            &mx,
        )
        .unwrap();
        let a = RData::A(Ipv4Addr::new(192, 0, 2, 7));
        add(
            &mut builder,
            Section::Additional,
            &mail,
            RecordType::A,
            60,
            &a,
        )
        .unwrap();
        let len = builder.finish();
        let message = Message::parse(&buf[..len]).unwrap();
        assert_eq!(message.id(), 0xabcd);
        assert_eq!(message.rcode(), Rcode::NXDOMAIN);
        assert_eq!(message.question().unwrap().name.to_string(), "Example.COM.");
        let answer = message.answers().next().unwrap();
        assert_eq!(answer.name().to_string(), "Example.COM.");
        let RData::Mx(parsed) = answer.rdata().unwrap() else {
            panic!()
        };
        assert_eq!(parsed.exchange.to_string(), "mail.Example.COM.");
        // The answer owner is a pointer to the question name; the MX
        // exchange is "mail" plus a pointer, and so is the glue owner.
        assert_eq!(&buf[12 + 13 + 4..12 + 13 + 6], &[0xc0, 0x0c]);
        let glue = message.additionals().next().unwrap();
        assert_eq!(glue.name().to_string(), "mail.Example.COM.");
        assert_eq!(len, 12 + (13 + 4) + (2 + 10 + 2 + 5 + 2) + (2 + 10 + 4));
    }

    #[test]
    fn compression_preserves_letter_case() {
        let (upper, lower) = (name("Example.COM"), name("www.example.com"));
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder
            .question(&upper.as_name(), RecordType::A, Class::IN)
            .unwrap();
        a_record(&mut builder, Section::Answer, &lower, 1).unwrap();
        let len = builder.finish();
        let message = Message::parse(&buf[..len]).unwrap();
        let answer = message.answers().next().unwrap();
        assert_eq!(answer.name().to_string(), "www.example.com.");
        assert_eq!(len, 12 + 13 + 4 + 17 + 10 + 4);
    }

    #[test]
    fn srv_and_dname_targets_are_not_compressed() {
        let owner = name("_sip._udp.example.com");
        let target = name("example.com");
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder
            .question(&target.as_name(), RecordType::A, Class::IN)
            .unwrap();
        let srv = RData::Srv(Srv {
            priority: 1,
            weight: 2,
            port: 5060,
            target: target.as_name(),
        });
        add(
            &mut builder,
            Section::Answer,
            &owner,
            RecordType::SRV,
            1,
            &srv,
        )
        .unwrap();
        let len = builder.finish();
        // The target is written in full: its 13 bytes end the message.
        assert_eq!(&buf[len - 13..len], target.as_wire());
        let message = Message::parse(&buf[..len]).unwrap();
        let RData::Srv(parsed) = message.answers().next().unwrap().rdata().unwrap() else {
            panic!()
        };
        assert_eq!(parsed.port, 5060);
    }

    #[test]
    fn soa_names_are_compressed() {
        let zone = name("example.com");
        let (mname, rname) = (name("ns1.example.com"), name("hostmaster.example.com"));
        let soa = RData::Soa(Soa {
            mname: mname.as_name(),
            rname: rname.as_name(),
            serial: 1,
            refresh: 2,
            retry: 3,
            expire: 4,
            minimum: 5,
        });
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        add(
            &mut builder,
            Section::Authority,
            &zone,
            RecordType::SOA,
            5,
            &soa,
        )
        .unwrap();
        let len = builder.finish();
        // owner 13 + fixed 10 + "ns1"+ptr 6 + "hostmaster"+ptr 13 + 20
        assert_eq!(len, 12 + 13 + 10 + 6 + 13 + 20);
        let message = Message::parse(&buf[..len]).unwrap();
        let RData::Soa(parsed) = message.authorities().next().unwrap().rdata().unwrap() else {
            panic!()
        };
        assert_eq!(parsed.rname.to_string(), "hostmaster.example.com.");
        assert_eq!(parsed.minimum, 5);
    }

    #[test]
    fn truncation_stops_at_the_last_whole_rrset() {
        let first = name("a.example");
        let second = name("b.example");
        let mut buf = [0u8; 4096];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_limit(120);
        builder
            .question(&first.as_name(), RecordType::A, Class::IN)
            .unwrap();
        // RRset 1: two records of 16 bytes each (pointer owner).
        a_record(&mut builder, Section::Answer, &first, 1).unwrap();
        a_record(&mut builder, Section::Answer, &first, 2).unwrap();
        let after_first_rrset = builder.len();
        // RRset 2: the owner is new, then records until the limit is hit.
        let mut last = 0;
        let err = loop {
            last += 1;
            if let Err(err) = a_record(&mut builder, Section::Answer, &second, last) {
                break err;
            }
        };
        assert_eq!(err.kind, ErrorKind::NoSpace);
        assert!(last > 1, "some of the second RRset fitted before the cut");
        assert!(builder.truncated());
        assert_eq!(
            builder.len(),
            after_first_rrset,
            "the partial RRset was removed"
        );
        // Nothing more is accepted, in any section.
        assert!(a_record(&mut builder, Section::Additional, &first, 9).is_err());
        let len = builder.finish();
        let message = Message::parse(&buf[..len]).unwrap();
        assert!(message.flags().truncated());
        assert_eq!(message.answers().count(), 2);
        assert!(
            message
                .answers()
                .all(|r| r.name().to_string() == "a.example.")
        );
    }

    #[test]
    fn additional_cut_does_not_set_tc_and_opt_survives() {
        let owner = name("host.example");
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_limit(100);
        let opt = OptSpec {
            udp_payload_size: 1232,
            extended_rcode: 0,
            version: 0,
            dnssec_ok: true,
            options: &[],
        };
        builder.reserve(opt.wire_len());
        builder
            .question(&owner.as_name(), RecordType::A, Class::IN)
            .unwrap();
        a_record(&mut builder, Section::Answer, &owner, 1).unwrap();
        let glue = name("glue.example");
        let mut pushed = 0;
        while a_record(&mut builder, Section::Additional, &glue, pushed).is_ok() {
            pushed += 1;
        }
        builder.opt(&opt).unwrap();
        let len = builder.finish();
        assert!(len <= 100);
        let message = Message::parse(&buf[..len]).unwrap();
        assert!(!message.flags().truncated());
        assert_eq!(message.answers().count(), 1);
        assert!(message.opt().unwrap().dnssec_ok());
        // Whole glue RRset dropped: the partial one was rolled back.
        assert_eq!(message.additionals().count(), 1);
    }

    #[test]
    fn sections_must_come_in_order() {
        let owner = name("x.example");
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        a_record(&mut builder, Section::Authority, &owner, 1).unwrap();
        assert_eq!(
            a_record(&mut builder, Section::Answer, &owner, 1)
                .unwrap_err()
                .kind,
            ErrorKind::OutOfOrder
        );
        assert_eq!(
            builder
                .question(&owner.as_name(), RecordType::A, Class::IN)
                .unwrap_err()
                .kind,
            ErrorKind::OutOfOrder
        );
        // A failed call leaves the message intact.
        let len = builder.finish();
        assert_eq!(
            Message::parse(&buf[..len]).unwrap().authorities().count(),
            1
        );
    }

    #[test]
    fn tiny_buffers_are_refused_or_cut() {
        assert_eq!(
            MessageBuilder::new(&mut [0u8; 11]).err().unwrap().kind,
            ErrorKind::NoSpace
        );
        let mut buf = [0u8; 20];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        let long = name("a-long-name.example.org");
        assert_eq!(
            builder
                .question(&long.as_name(), RecordType::A, Class::IN)
                .unwrap_err()
                .kind,
            ErrorKind::NoSpace
        );
        assert_eq!(builder.finish(), 12);
    }

    #[test]
    fn copy_record_decompresses_foreign_pointers() {
        // Build a source message with compressed MX, then copy its answer
        // into a message with a different layout.
        let owner = name("example.com");
        let mut source = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut source).unwrap();
        builder
            .question(&owner.as_name(), RecordType::MX, Class::IN)
            .unwrap();
        let exchange = name("mx.example.com");
        let mx = RData::Mx(Mx {
            preference: 5,
            exchange: exchange.as_name(),
        });
        add(
            &mut builder,
            Section::Answer,
            &owner,
            RecordType::MX,
            9,
            &mx,
        )
        .unwrap();
        let txt_bytes = b"\x05hello";
        let txt = RData::Txt(Txt::new(txt_bytes, 0).unwrap());
        add(
            &mut builder,
            Section::Answer,
            &owner,
            RecordType::TXT,
            9,
            &txt,
        )
        .unwrap();
        let source_len = builder.finish();
        let source_message = Message::parse(&source[..source_len]).unwrap();

        let mut copy = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut copy).unwrap();
        let other = name("other.test");
        builder
            .question(&other.as_name(), RecordType::A, Class::IN)
            .unwrap();
        for record in source_message.answers() {
            builder.copy_record(Section::Answer, &record).unwrap();
        }
        let copy_len = builder.finish();
        let copied = Message::parse(&copy[..copy_len]).unwrap();
        crate::fuzzing::compare_messages(&source_message, &copied).unwrap_err();
        let records: Vec<_> = copied.answers().collect();
        let RData::Mx(parsed) = records[0].rdata().unwrap() else {
            panic!()
        };
        assert_eq!(parsed.exchange.to_string(), "mx.example.com.");
        assert_eq!(records[1].rdata_bytes(), txt_bytes);
    }

    #[test]
    fn opt_with_options_and_extended_rcode() {
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_flags(
            Flags::default()
                .with_response(true)
                .with_rcode(Rcode::BADVERS),
        );
        let options = [EdnsOption {
            code: 15,
            data: b"\x00\x16",
        }];
        let opt = OptSpec {
            udp_payload_size: 1232,
            extended_rcode: Rcode::BADVERS.extended_bits(),
            version: 0,
            dnssec_ok: false,
            options: &options,
        };
        builder.opt(&opt).unwrap();
        let len = builder.finish();
        assert_eq!(len, 12 + opt.wire_len());
        let message = Message::parse(&buf[..len]).unwrap();
        assert_eq!(message.rcode(), Rcode::BADVERS);
        let parsed = message.opt().unwrap();
        assert_eq!(parsed.udp_payload_size(), 1232);
        assert_eq!(parsed.options().collect::<Vec<_>>(), options);
    }
}
