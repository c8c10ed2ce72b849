//! One cached answer: [`Entry`], its normalized wire form and how it is
//! built from an upstream response (or from a failure).
//!
//! The stored form is a complete DNS message in one heap allocation, so a
//! hit is a `memcpy` plus a few in-place patches (ID, flags, counts, qname
//! case, TTLs) and never needs a parse:
//!
//! ```text
//! 0   header: ID 0, QR RA [AD] rcode, counts of the stored records
//! 12  question: the key's lower-cased name, uncompressed; qtype; qclass
//! ..  answer, authority and additional records copied from upstream with
//!     MessageBuilder::copy_record (pointers valid within this copy); the
//!     upstream OPT record (and any TSIG) left out
//! ```
//!
//! Beside it: the offset of every stored record's TTL field, and the end
//! of every RRset as a truncation point with the section counts up to it.

use core::mem::size_of;
use std::sync::Arc;

use heimdall_wire::{
    Class, ErrorKind, Flags, HEADER_LEN, Message, MessageBuilder, Name, Opcode, QueryKey, RData,
    Rcode, Record, RecordType, Section, WireError, WireNameBuf,
};
use smallvec::SmallVec;

use crate::error::CacheError;
use crate::policy::CachePolicy;
use crate::time::Timestamp;

/// Bytes the allocator is assumed to spend per heap allocation beyond the
/// bytes asked for (glibc malloc: an 8-byte header, 16-byte granularity).
pub(crate) const ALLOCATION_OVERHEAD: usize = 16;
/// The reference counts in front of the shared message bytes.
const SHARED_HEADER: usize = 2 * size_of::<usize>();

/// Largest stored message: offsets are kept as `u16`.
const MAX_STORED_LEN: usize = u16::MAX as usize;

const SECTIONS: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];

/// What an entry says about its question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// NOERROR with answer records (CNAME chains included).
    Positive,
    /// NXDOMAIN, kept for the RFC 2308 negative TTL.
    NxDomain,
    /// NOERROR without the asked-for data, kept for the RFC 2308 negative
    /// TTL.
    NoData,
    /// A remembered failure (SERVFAIL or an upstream timeout), kept for a
    /// few seconds only (RFC 9520) and never served stale.
    ServFail,
}

/// A point where a reply may be cut: just after a whole RRset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cut {
    /// Length of the stored message up to this point.
    pub offset: u16,
    /// Answer records before this point.
    pub answers: u16,
    /// Authority records before this point.
    pub authorities: u16,
    /// Additional records before this point.
    pub additionals: u16,
}

impl Cut {
    /// Records before this point, all sections together.
    pub fn records(&self) -> usize {
        usize::from(self.answers) + usize::from(self.authorities) + usize::from(self.additionals)
    }
}

/// A cached answer, ready to be written to clients.
///
/// `Clone` and `Send`: a clone is what a cache-fill hint carries to another
/// core, and its timestamps stay meaningful there because all cores share
/// one epoch. The message bytes are shared (`Arc<[u8]>`, immutable once
/// built): a clone for the cache, the waiters or a hint costs a reference
/// count, not an allocation and a copy, and every core that takes the hint
/// holds the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub(crate) wire: Arc<[u8]>,
    /// Offset of the TTL field of every stored record, in message order.
    pub(crate) ttl_offsets: SmallVec<[u16; 8]>,
    /// The end of every RRset, in message order; the last is the end of
    /// the message. Empty when there are no records.
    pub(crate) cuts: SmallVec<[Cut; 4]>,
    pub(crate) stored_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) rcode: Rcode,
    /// The stored header flags; only AD carries information.
    pub(crate) flags: Flags,
    /// Offset just after the question (end of qtype and qclass).
    pub(crate) question_end: u16,
    pub(crate) kind: EntryKind,
    pub(crate) dnssec_ok: bool,
    pub(crate) checking_disabled: bool,
    /// The Extended DNS Error info code every reply from this entry
    /// carries for EDNS clients (a remembered DNSSEC failure); 0 for none.
    pub(crate) ede: u16,
}

/// How [`Entry::from_response_with`] stores an upstream response that the
/// resolver judged itself (DNSSEC validation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// AD in the stored header: `None` keeps the upstream's; `Some` is the
    /// resolver's own verdict (validated or not).
    pub authentic: Option<bool>,
    /// Leave out RRSIG, NSEC and NSEC3 records, unless the question asks
    /// for that type: the upstream was asked with DO for validation, but
    /// the client's key has no DO (RFC 4035 section 3.2.1).
    pub strip_dnssec: bool,
    /// The Extended DNS Error its replies carry (see [`Entry::with_ede`]);
    /// 0 for none.
    pub ede: u16,
    /// A cap on every stored TTL, after the policy's limits: the time a
    /// validated signature has left (RFC 4035 section 5.3.3).
    pub max_ttl: Option<u32>,
    /// What is kept of the authority and additional sections.
    pub trim: Trim,
}

/// What [`Entry::from_response_with`] keeps of the authority and
/// additional sections. A secure answer carries AD for the whole message,
/// so records the validator did not check must not ride along with it
/// (what Unbound's `val-clean-additional` does for the additional
/// section; heimdall applies it to the authority section too).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Trim {
    /// Everything (unvalidated answers).
    #[default]
    Keep,
    /// The authority section's SOA, NSEC and NSEC3 RRsets and the RRSIGs
    /// that cover them (a validated denial or wildcard proof); no other
    /// authority records and no additional records.
    ToProof,
    /// Neither authority nor additional records (a validated answer that
    /// needed no proof).
    ToAnswer,
}

impl Trim {
    /// Whether `record` of `section` survives.
    fn keeps(self, section: Section, record: &Record<'_>) -> bool {
        match (self, section) {
            (Trim::Keep, _) | (_, Section::Answer) => true,
            (Trim::ToAnswer, _) | (Trim::ToProof, Section::Additional) => false,
            (Trim::ToProof, _) => {
                let rtype = match record.rtype() {
                    RecordType::RRSIG => match record.rdata_bytes() {
                        [high, low, ..] => RecordType(u16::from_be_bytes([*high, *low])),
                        _ => RecordType(0),
                    },
                    other => other,
                };
                matches!(
                    rtype,
                    RecordType::SOA | RecordType::NSEC | RecordType::NSEC3
                )
            }
        }
    }
}

/// What the scan of an upstream response found.
struct Scan {
    kind: EntryKind,
    /// RFC 2308 negative TTL, for negative kinds.
    negative_ttl: u32,
}

/// The upstream's OPT belongs to its hop, and a TSIG signs the upstream's
/// exact message; neither is valid in a reply we build.
fn is_stored(record: &Record<'_>) -> bool {
    !matches!(record.rtype(), RecordType::OPT | RecordType::TSIG)
}

/// [`is_stored`], kept by `options.trim`, and with `strip_dnssec` not a
/// DNSSEC record the question did not ask for.
fn kept(record: &Record<'_>, section: Section, options: StoreOptions, qtype: RecordType) -> bool {
    let strip = options.strip_dnssec;
    is_stored(record)
        && options.trim.keeps(section, record)
        && !(strip
            && record.rtype() != qtype
            && matches!(
                record.rtype(),
                RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
            ))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair: [u8; 2] = bytes.get(at..at + 2)?.try_into().ok()?;
    Some(u16::from_be_bytes(pair))
}

fn offset_u16(offset: usize) -> Result<u16, CacheError> {
    u16::try_from(offset).map_err(|_| WireError::new(ErrorKind::NoSpace, offset).into())
}

impl Entry {
    /// Normalize an upstream `response` to the query `key` into an entry
    /// that expires per `policy`, or `Ok(None)` when it must not be cached.
    ///
    /// Errors (the response does not belong to this key, so the caller
    /// should not have offered it): [`CacheError::NotAResponse`] when QR is
    /// clear or the opcode is not QUERY; [`CacheError::QuestionMismatch`]
    /// when there is not exactly one question equal (ignoring case) to the
    /// key's; [`CacheError::Wire`] when a record cannot be copied
    /// (malformed RDATA, or a normalized copy over 65,535 bytes).
    ///
    /// Not cached (`Ok(None)`): TC set (the caller retries over TCP); an
    /// rcode other than NOERROR and NXDOMAIN (failures go through
    /// [`Entry::failure`]); any stored record with TTL 0; a negative answer
    /// without a SOA in the authority section, or whose negative TTL is 0;
    /// a NOERROR with neither answers nor a SOA (a referral).
    ///
    /// Lifetimes: a positive entry lives for its lowest record TTL clamped
    /// to `[min_ttl, max_ttl]`, and every stored TTL is clamped the same
    /// way. A negative entry (RFC 2308 section 5) gets `min(SOA TTL, SOA
    /// MINIMUM)` capped by `negative_max_ttl`; the SOA's TTL is set to it
    /// and other records are capped by it, and the entry lives for the
    /// lowest of those. Either way no record is served past its TTL.
    pub fn from_response(
        key: &QueryKey,
        response: &Message<'_>,
        now: Timestamp,
        policy: &CachePolicy,
    ) -> Result<Option<Self>, CacheError> {
        Self::from_response_with(key, response, now, policy, StoreOptions::default())
    }

    /// [`Entry::from_response`], storing AD and the DNSSEC records as
    /// `options` say.
    pub fn from_response_with(
        key: &QueryKey,
        response: &Message<'_>,
        now: Timestamp,
        policy: &CachePolicy,
        options: StoreOptions,
    ) -> Result<Option<Self>, CacheError> {
        let flags = response.flags();
        if !flags.response() || flags.opcode() != Opcode::QUERY {
            return Err(CacheError::NotAResponse);
        }
        let key_name = Name::from_wire(&key.name)?;
        match (response.header().question_count, response.question()) {
            (1, Some(question))
                if question.qtype == key.qtype
                    && question.qclass == key.qclass
                    && question.name.eq_ignore_case(&key_name) => {}
            _ => return Err(CacheError::QuestionMismatch),
        }
        if flags.truncated() {
            return Ok(None);
        }
        let Some(scan) = scan(key.qtype, response, policy, options) else {
            return Ok(None);
        };
        let stored_flags = Flags(Flags::QR | Flags::RA)
            .with_authentic_data(options.authentic.unwrap_or(flags.authentic_data()))
            .with_rcode(response.rcode());
        let estimate = response
            .end_offset()
            .saturating_mul(2)
            .saturating_add(256)
            .min(MAX_STORED_LEN);
        let mut buf = vec![0u8; estimate];
        let len = match copy_message(&mut buf, key, &key_name, stored_flags, response, options) {
            Err(err) if err.kind == ErrorKind::NoSpace && estimate < MAX_STORED_LEN => {
                // Names decompressed inside RDATA made the copy larger than
                // the guess; only then pay for the largest buffer.
                buf = vec![0u8; MAX_STORED_LEN];
                copy_message(&mut buf, key, &key_name, stored_flags, response, options)?
            }
            other => other?,
        };
        buf.truncate(len);
        let mut entry = Self {
            wire: Arc::from(buf),
            ttl_offsets: SmallVec::new(),
            cuts: SmallVec::new(),
            stored_at: now,
            expires_at: now,
            rcode: response.rcode(),
            flags: stored_flags,
            question_end: 0,
            kind: scan.kind,
            dnssec_ok: key.dnssec_ok,
            checking_disabled: key.checking_disabled,
            ede: options.ede,
        };
        entry.index_records()?;
        let cap = options.max_ttl.unwrap_or(u32::MAX);
        let lifetime = entry.normalize_ttls(policy, scan.negative_ttl, cap);
        entry.expires_at = now.add_secs(lifetime);
        Ok(Some(entry))
    }

    /// A failure entry (SERVFAIL, or an upstream timeout answered as
    /// SERVFAIL) for `key`, remembered for `policy.failure_ttl` seconds so
    /// a failing name does not send a query upstream for every client
    /// (RFC 9520).
    ///
    /// `qname` is the question name in uncompressed wire form; it must
    /// equal the key's name ignoring case and is stored lower-cased.
    /// `rcode` must be an error that fits the header (not NOERROR or
    /// NXDOMAIN, below 16).
    pub fn failure(
        key: &QueryKey,
        qname: &[u8],
        rcode: Rcode,
        now: Timestamp,
        policy: &CachePolicy,
    ) -> Result<Self, CacheError> {
        policy.validate()?;
        if rcode == Rcode::NOERROR || rcode == Rcode::NXDOMAIN || rcode.0 > 0x0f {
            return Err(CacheError::NotAFailure(rcode.0));
        }
        let name = Name::from_wire(qname)?;
        let mut lower = WireNameBuf::new();
        name.write_lower(&mut lower);
        if lower != key.name {
            return Err(CacheError::QuestionMismatch);
        }
        let flags = Flags(Flags::QR | Flags::RA).with_rcode(rcode);
        let question_end = HEADER_LEN + lower.len() + 4;
        let mut wire = vec![0u8; question_end];
        {
            let mut builder = MessageBuilder::new(&mut wire)?;
            builder.set_flags(flags);
            builder.question(&Name::from_wire(&lower)?, key.qtype, key.qclass)?;
            builder.finish();
        }
        Ok(Self {
            wire: Arc::from(wire),
            ttl_offsets: SmallVec::new(),
            cuts: SmallVec::new(),
            stored_at: now,
            expires_at: now.add_secs(policy.failure_ttl),
            rcode,
            flags,
            question_end: offset_u16(question_end)?,
            kind: EntryKind::ServFail,
            dnssec_ok: key.dnssec_ok,
            checking_disabled: key.checking_disabled,
            ede: 0,
        })
    }

    /// The same entry, its replies carrying Extended DNS Error `code` for
    /// EDNS clients (a remembered DNSSEC failure: RFC 9520 caches it, and
    /// each hit says why). 0 removes it.
    pub fn with_ede(mut self, code: u16) -> Self {
        self.ede = code;
        self
    }

    /// The Extended DNS Error info code its replies carry; 0 for none.
    pub fn ede(&self) -> u16 {
        self.ede
    }

    /// Walk the stored copy once: find the question's end, every TTL field
    /// and every RRset boundary.
    fn index_records(&mut self) -> Result<(), CacheError> {
        let message = Message::parse(&self.wire)?;
        self.question_end = offset_u16(message.answer_offset())?;
        let mut counts = [0u16; 3];
        let mut previous: Option<(Section, Name<'_>, RecordType, Class)> = None;
        for (section, count) in SECTIONS.into_iter().zip(0usize..) {
            for record in message.records(section) {
                let (name, rtype, class) = (record.name(), record.rtype(), record.class());
                // An RRSIG rides with the RRset it follows, so a cut never
                // separates a signature from its data.
                let same_set = previous.is_some_and(|(s, n, t, c)| {
                    s == section
                        && c == class
                        && n.eq_ignore_case(&name)
                        && (t == rtype || rtype == RecordType::RRSIG)
                });
                if previous.is_some() && !same_set {
                    self.cuts.push(cut_at(record.name().offset(), counts)?);
                }
                previous = Some((section, name, rtype, class));
                self.ttl_offsets.push(offset_u16(record.ttl_offset())?);
                if let Some(slot) = counts.get_mut(count) {
                    *slot = slot.saturating_add(1);
                }
            }
        }
        if previous.is_some() {
            self.cuts.push(cut_at(message.end_offset(), counts)?);
        }
        self.ttl_offsets.shrink_to_fit();
        self.cuts.shrink_to_fit();
        Ok(())
    }

    /// Rewrite every stored TTL per policy, none above `cap`; returns the
    /// entry's lifetime in seconds (the lowest stored TTL).
    fn normalize_ttls(&mut self, policy: &CachePolicy, negative_ttl: u32, cap: u32) -> u32 {
        let mut lowest = u32::MAX;
        for &offset in &self.ttl_offsets {
            let at = usize::from(offset);
            let rtype = read_u16(&self.wire, at.wrapping_sub(4)).map(RecordType);
            // Only while the entry is being built, when its bytes are not
            // shared yet.
            let Some(field) =
                Arc::get_mut(&mut self.wire).and_then(|wire| wire.get_mut(at..at + 4))
            else {
                continue;
            };
            let Ok(bytes) = <[u8; 4]>::try_from(&*field) else {
                continue;
            };
            let ttl = u32::from_be_bytes(bytes);
            let adjusted = match self.kind {
                EntryKind::Positive => policy.clamp_positive(ttl),
                _ if rtype == Some(RecordType::SOA) => negative_ttl,
                _ => ttl.min(negative_ttl),
            }
            .min(cap);
            field.copy_from_slice(&adjusted.to_be_bytes());
            lowest = lowest.min(adjusted);
        }
        if lowest == u32::MAX {
            // No records at all cannot reach here for a stored response;
            // stay on the safe side with the shortest lifetime.
            return negative_ttl.min(policy.max_ttl);
        }
        lowest
    }

    /// Whether this entry answers `key` (which, as built by
    /// `QueryKey::from_message`, holds a lower-cased name).
    #[inline]
    pub fn matches(&self, key: &QueryKey) -> bool {
        self.dnssec_ok == key.dnssec_ok
            && self.checking_disabled == key.checking_disabled
            && self.qtype() == key.qtype
            && self.qclass() == key.qclass
            && self.question_name() == &key.name[..]
    }

    /// The stored question name: lower-cased, uncompressed wire form.
    #[inline]
    pub fn question_name(&self) -> &[u8] {
        let end = usize::from(self.question_end).saturating_sub(4);
        self.wire.get(HEADER_LEN..end).unwrap_or_default()
    }

    /// The question type.
    pub fn qtype(&self) -> RecordType {
        RecordType(
            read_u16(&self.wire, usize::from(self.question_end).wrapping_sub(4)).unwrap_or(0),
        )
    }

    /// The question class.
    pub fn qclass(&self) -> Class {
        Class(read_u16(&self.wire, usize::from(self.question_end).wrapping_sub(2)).unwrap_or(0))
    }

    /// The key's DO bit.
    pub fn dnssec_ok(&self) -> bool {
        self.dnssec_ok
    }

    /// The key's CD bit.
    pub fn checking_disabled(&self) -> bool {
        self.checking_disabled
    }

    /// What the entry says.
    pub fn kind(&self) -> EntryKind {
        self.kind
    }

    /// The rcode replies carry.
    pub fn rcode(&self) -> Rcode {
        self.rcode
    }

    /// Whether the upstream set AD.
    pub fn authentic_data(&self) -> bool {
        self.flags.authentic_data()
    }

    /// When the entry was stored.
    pub fn stored_at(&self) -> Timestamp {
        self.stored_at
    }

    /// When the entry stops being fresh.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// Whether the entry is fresh at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        now < self.expires_at
    }

    /// The normalized stored message (ID 0, TTLs as stored).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Offsets of the TTL fields of the stored records, in order.
    pub fn ttl_offsets(&self) -> &[u16] {
        &self.ttl_offsets
    }

    /// The RRset boundaries, in order; the last is the whole message.
    pub fn cuts(&self) -> &[Cut] {
        &self.cuts
    }

    /// The whole stored message as a cut (with no records: the question).
    pub(crate) fn full_cut(&self) -> Cut {
        self.cuts.last().copied().unwrap_or(Cut {
            offset: self.question_end,
            answers: 0,
            authorities: 0,
            additionals: 0,
        })
    }

    /// Heap bytes this entry owns, with allocator overhead.
    pub fn heap_bytes(&self) -> usize {
        fn spilled<A: smallvec::Array>(vec: &SmallVec<A>) -> usize {
            if vec.spilled() {
                vec.capacity() * size_of::<A::Item>() + ALLOCATION_OVERHEAD
            } else {
                0
            }
        }
        self.wire.len()
            + SHARED_HEADER
            + ALLOCATION_OVERHEAD
            + spilled(&self.ttl_offsets)
            + spilled(&self.cuts)
    }

    /// Memory this entry occupies: the struct and its heap.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() + self.heap_bytes()
    }
}

fn cut_at(offset: usize, [answers, authorities, additionals]: [u16; 3]) -> Result<Cut, CacheError> {
    Ok(Cut {
        offset: offset_u16(offset)?,
        answers,
        authorities,
        additionals,
    })
}

/// Classify a response and find its RFC 2308 negative TTL; `None` when it
/// must not be cached.
fn scan(
    qtype: RecordType,
    response: &Message<'_>,
    policy: &CachePolicy,
    options: StoreOptions,
) -> Option<Scan> {
    let mut answers = 0usize;
    let mut relevant = false;
    let mut soa_ttl = None;
    for section in SECTIONS {
        for record in response
            .records(section)
            .filter(|record| kept(record, section, options, qtype))
        {
            if record.ttl() == 0 {
                // RFC 1035 section 3.2.1: TTL 0 means use once, never cache.
                return None;
            }
            match section {
                Section::Answer => {
                    answers += 1;
                    relevant |= record.rtype() == qtype || qtype == RecordType::ANY;
                }
                Section::Authority if soa_ttl.is_none() && record.rtype() == RecordType::SOA => {
                    if let Ok(RData::Soa(soa)) = record.rdata() {
                        soa_ttl = Some(record.ttl().min(soa.minimum));
                    }
                }
                _ => {}
            }
        }
    }
    let negative = |kind| {
        let ttl = soa_ttl?.min(policy.negative_max_ttl);
        (ttl > 0).then_some(Scan {
            kind,
            negative_ttl: ttl,
        })
    };
    let positive = Scan {
        kind: EntryKind::Positive,
        negative_ttl: 0,
    };
    match response.rcode() {
        Rcode::NXDOMAIN => negative(EntryKind::NxDomain),
        Rcode::NOERROR if relevant => Some(positive),
        Rcode::NOERROR if soa_ttl.is_some() => negative(EntryKind::NoData),
        // A chain without the final data and without a SOA is still what
        // the upstream said; serve it as given.
        Rcode::NOERROR if answers > 0 => Some(positive),
        _ => None,
    }
}

/// Write the normalized copy of `response` into `buf`; returns its length.
fn copy_message(
    buf: &mut [u8],
    key: &QueryKey,
    key_name: &Name<'_>,
    flags: Flags,
    response: &Message<'_>,
    options: StoreOptions,
) -> Result<usize, WireError> {
    let mut lower = WireNameBuf::new();
    key_name.write_lower(&mut lower);
    let lower_name = Name::from_wire(&lower)?;
    let mut builder = MessageBuilder::new(buf)?;
    builder.set_flags(flags);
    builder.question(&lower_name, key.qtype, key.qclass)?;
    for section in SECTIONS {
        for record in response
            .records(section)
            .filter(|record| kept(record, section, options, key.qtype))
        {
            builder.copy_record(section, &record)?;
        }
    }
    if builder.truncated() {
        return Err(WireError::new(ErrorKind::NoSpace, builder.len()));
    }
    Ok(builder.finish())
}
