//! One cached answer: [`Entry`] (owned) and [`EntryView`] (borrowed), its
//! normalized wire form and how it is built from an upstream response (or
//! from a failure).
//!
//! An entry's bytes are a complete DNS message, so a hit is a `memcpy`
//! plus a few in-place patches (ID, flags, counts, qname case, TTLs) and
//! never needs a parse, followed by a small trailer. Nothing else is kept:
//! the TTL fields are found by stepping over the stored records (owner,
//! type, class, TTL, RDLENGTH: no names are decoded), and only a reply
//! that must be truncated walks the parsed view for its RRset boundaries;
//! both cost a hit less than keeping two bytes a record and eight an RRset
//! for every entry costs the cache:
//!
//! ```text
//! 0    header: ID 0, QR RA [AD] rcode, counts of the stored records
//! 12   question: the key's lower-cased name, uncompressed; qtype; qclass
//! ..   answer, authority and additional records copied from upstream with
//!      MessageBuilder::copy_record (pointers valid within this copy); the
//!      upstream OPT record (and any TSIG) left out
//! -12  EDE info code (u16), only when the bits say there is one
//! -10  stored_at (5 bytes: milliseconds since the epoch, 34 years)
//! -5   lifetime (u32: milliseconds, or seconds with the top bit set)
//! -1   bits: kind (2), DO, CD, EDE present
//! ```
//!
//! The trailer is 10 bytes (12 with an EDE code, which only a remembered
//! DNSSEC failure has), and the message's length is what it leaves: the
//! bytes' length is known to whoever holds them (a box, or a shard's
//! record). The key is not stored apart: the question holds the
//! lower-cased name, qtype and qclass, the bits DO and CD, and the header
//! the rcode and AD. All integers are big-endian.
//!
//! An [`Entry`] owns these bytes in one exact-size allocation: what a
//! cache-fill hint carries to another core, what a cache file is written
//! from and read into. A shard copies them into its store (`store.rs`)
//! and hands out [`EntryView`]s, the same bytes borrowed; every reading
//! method, [`EntryView::write_answer`] included, is on the view, and an
//! `Entry` derefs to its view.

use core::mem::size_of;

use heimdall_wire::{
    Class, ErrorKind, Flags, HEADER_LEN, Message, MessageBuilder, Name, Opcode, QueryKey, RData,
    Rcode, Record, RecordType, Section, WireError, WireNameBuf,
};
use smallvec::SmallVec;

use crate::error::CacheError;
use crate::policy::CachePolicy;
use crate::time::Timestamp;

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

/// A cached answer, ready to be written to clients: owned, in one
/// exact-size heap allocation (the module documentation has the layout).
///
/// `Clone` and `Send`: a clone is what a cache-fill hint carries to another
/// core, and its timestamps stay meaningful there because all cores share
/// one epoch; it is also what a cache file is written from and read into.
/// A shard does not keep the `Entry` itself: it copies the bytes into its
/// store and hands out [`EntryView`]s, which every reading method lives on
/// (an `Entry` derefs to one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Wire message and trailer (see the module docs).
    pub(crate) blob: Box<[u8]>,
}

/// A cached answer, borrowed: the bytes of an [`Entry`], wherever they
/// live (an owned entry's allocation, or a shard's store). What
/// [`Cache`](crate::Cache) lookups return; [`ToOwned::to_owned`] makes an
/// [`Entry`] of it.
#[derive(Debug, PartialEq, Eq)]
#[repr(transparent)]
pub struct EntryView {
    blob: [u8],
}

impl EntryView {
    /// The view of an entry's bytes (as [`Entry`] holds them).
    #[allow(unsafe_code)]
    pub(crate) fn from_blob(blob: &[u8]) -> &Self {
        // SAFETY: `EntryView` is `repr(transparent)` over `[u8]`, so a
        // `*const [u8]` and a `*const EntryView` have the same layout and
        // metadata (the length), and the lifetime is carried over.
        unsafe { &*(blob as *const [u8] as *const Self) }
    }

    /// The entry's bytes: wire and trailer.
    pub(crate) fn blob(&self) -> &[u8] {
        &self.blob
    }
}

impl core::ops::Deref for Entry {
    type Target = EntryView;

    fn deref(&self) -> &EntryView {
        EntryView::from_blob(&self.blob)
    }
}

impl AsRef<EntryView> for Entry {
    fn as_ref(&self) -> &EntryView {
        self
    }
}

impl core::borrow::Borrow<EntryView> for Entry {
    fn borrow(&self) -> &EntryView {
        self
    }
}

impl ToOwned for EntryView {
    type Owned = Entry;

    fn to_owned(&self) -> Entry {
        Entry {
            blob: self.blob.into(),
        }
    }
}

impl PartialEq<Entry> for EntryView {
    fn eq(&self, other: &Entry) -> bool {
        self.blob == *other.blob
    }
}

impl PartialEq<EntryView> for Entry {
    fn eq(&self, other: &EntryView) -> bool {
        *self.blob == other.blob
    }
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
    /// Build the entry even when a record has TTL 0 (RFC 1035 section
    /// 3.2.1: use once, never cache), with a lifetime of 0: the answer for
    /// the queries waiting now, which the caller must not insert. A
    /// validated answer with TTL 0 then goes out as one from the cache
    /// would (AD, trimmed, DNSSEC records only for DO clients) instead of
    /// as the upstream's raw message.
    pub use_once: bool,
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

/// An entry being built: the normalized message and its TTL fields,
/// before they are packed into one allocation.
struct Parts<'a> {
    wire: &'a mut [u8],
    /// Offset of the TTL field of every stored record, in message order.
    ttl_offsets: SmallVec<[u16; 8]>,
}

/// Visit the end of every RRset of a stored `message`, in order, as a
/// [`Cut`] (the last is the end of the message); nothing when there are no
/// records. Reads the parsed view only: no allocation, so the truncation of
/// a hit can call it.
pub(crate) fn visit_cuts(message: &Message<'_>, mut visit: impl FnMut(Cut)) {
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
            if previous.is_some()
                && !same_set
                && let Ok(cut) = cut_at(record.name().offset(), counts)
            {
                visit(cut);
            }
            previous = Some((section, name, rtype, class));
            if let Some(slot) = counts.get_mut(count) {
                *slot = slot.saturating_add(1);
            }
        }
    }
    if previous.is_some()
        && let Ok(cut) = cut_at(message.end_offset(), counts)
    {
        visit(cut);
    }
}

impl<'a> Parts<'a> {
    /// Walk the stored copy once: find every TTL field.
    fn index(wire: &'a mut [u8]) -> Result<Self, CacheError> {
        let mut ttl_offsets = SmallVec::new();
        let message = Message::parse(wire)?;
        for section in SECTIONS {
            for record in message.records(section) {
                ttl_offsets.push(offset_u16(record.ttl_offset())?);
            }
        }
        Ok(Self { wire, ttl_offsets })
    }

    /// Rewrite every stored TTL per policy, none above `cap`; returns the
    /// entry's lifetime in seconds (the lowest stored TTL).
    fn normalize_ttls(
        &mut self,
        kind: EntryKind,
        policy: &CachePolicy,
        negative_ttl: u32,
        cap: u32,
    ) -> u32 {
        let mut lowest = u32::MAX;
        for &offset in &self.ttl_offsets {
            let at = usize::from(offset);
            let rtype = read_u16(self.wire, at.wrapping_sub(4)).map(RecordType);
            let Some(field) = self.wire.get_mut(at..at + 4) else {
                continue;
            };
            let Ok(bytes) = <[u8; 4]>::try_from(&*field) else {
                continue;
            };
            let ttl = u32::from_be_bytes(bytes);
            let adjusted = match kind {
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

    /// Pack into one allocation: the wire and the trailer. Neither the TTL
    /// offsets nor the RRset boundaries are kept: a hit finds the TTLs by
    /// stepping over the stored records, and a reply that must be cut
    /// finds its boundaries by walking the parsed view, cheaper than bytes
    /// per record held for ever.
    fn pack(self, meta: Meta) -> Result<Entry, CacheError> {
        offset_u16(self.wire.len())?;
        let mut entry = Entry::with_trailer(self.wire, meta.ede);
        let bits = kind_bits(meta.kind)
            | if meta.dnssec_ok { BIT_DO } else { 0 }
            | if meta.checking_disabled { BIT_CD } else { 0 }
            | if meta.ede != 0 { BIT_EDE } else { 0 };
        entry.put_trailer(BITS_AT, &[bits]);
        entry.set_times(meta.stored_at, meta.expires_at);
        Ok(entry)
    }
}

/// What the trailer holds.
struct Meta {
    kind: EntryKind,
    dnssec_ok: bool,
    checking_disabled: bool,
    ede: u16,
    stored_at: Timestamp,
    expires_at: Timestamp,
}

/// Bytes of the trailer at the end of every entry, without an EDE code;
/// an entry with one has two more.
pub(crate) const TRAILER_LEN: usize = 10;
/// Bytes an EDE info code adds to the trailer.
const EDE_LEN: usize = 2;
/// Trailer positions, counted back from the end of the allocation:
/// the EDE info code (only with [`BIT_EDE`]), `stored_at` (5 bytes,
/// milliseconds), the lifetime and the kind/DO/CD/EDE bits.
const EDE_AT: usize = 12;
const STORED_AT_AT: usize = 10;
const LIFETIME_AT: usize = 5;
const BITS_AT: usize = 1;
/// The lifetime's top bit: the rest counts seconds, not milliseconds.
const LIFETIME_IN_SECS: u32 = 1 << 31;
/// `stored_at` keeps 40 bits of milliseconds: 34 years after the epoch,
/// which the server takes at its start.
const STORED_AT_MAX: u64 = (1 << 40) - 1;
const STORED_AT_BYTES: usize = 5;
const BIT_DO: u8 = 0x04;
const BIT_CD: u8 = 0x08;
/// The trailer holds an EDE info code.
const BIT_EDE: u8 = 0x10;
const KIND_MASK: u8 = 0x03;

fn kind_bits(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Positive => 0,
        EntryKind::NxDomain => 1,
        EntryKind::NoData => 2,
        EntryKind::ServFail => 3,
    }
}

pub(crate) use crate::store::allocation_bytes;

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

    /// [`Entry::from_response_in`] with a scratch buffer of its own (one
    /// more allocation).
    pub fn from_response_with(
        key: &QueryKey,
        response: &Message<'_>,
        now: Timestamp,
        policy: &CachePolicy,
        options: StoreOptions,
    ) -> Result<Option<Self>, CacheError> {
        Self::from_response_in(key, response, now, policy, options, &mut Vec::new())
    }

    /// [`Entry::from_response`], storing AD and the DNSSEC records as
    /// `options` say. The normalized copy is built in `scratch` (the
    /// caller keeps it between calls, so a miss allocates only the entry:
    /// its one exact-size allocation).
    pub fn from_response_in(
        key: &QueryKey,
        response: &Message<'_>,
        now: Timestamp,
        policy: &CachePolicy,
        options: StoreOptions,
        scratch: &mut Vec<u8>,
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
        scratch.clear();
        scratch.resize(estimate, 0);
        let len = match copy_message(scratch, key, &key_name, stored_flags, response, options) {
            Err(err) if err.kind == ErrorKind::NoSpace && estimate < MAX_STORED_LEN => {
                // Names decompressed inside RDATA made the copy larger than
                // the guess; only then use the largest buffer.
                scratch.resize(MAX_STORED_LEN, 0);
                copy_message(scratch, key, &key_name, stored_flags, response, options)?
            }
            other => other?,
        };
        let wire = scratch
            .get_mut(..len)
            .ok_or(CacheError::Wire(WireError::new(ErrorKind::NoSpace, len)))?;
        let mut parts = Parts::index(wire)?;
        let cap = options.max_ttl.unwrap_or(u32::MAX);
        let lifetime = parts.normalize_ttls(scan.kind, policy, scan.negative_ttl, cap);
        parts
            .pack(Meta {
                kind: scan.kind,
                dnssec_ok: key.dnssec_ok,
                checking_disabled: key.checking_disabled,
                ede: options.ede,
                stored_at: now,
                expires_at: now.add_secs(lifetime),
            })
            .map(Some)
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
        let parts = Parts {
            wire: &mut wire,
            ttl_offsets: SmallVec::new(),
        };
        parts.pack(Meta {
            kind: EntryKind::ServFail,
            dnssec_ok: key.dnssec_ok,
            checking_disabled: key.checking_disabled,
            ede: 0,
            stored_at: now,
            expires_at: now.add_secs(policy.failure_ttl),
        })
    }

    /// The same entry, its replies carrying Extended DNS Error `code` for
    /// EDNS clients (a remembered DNSSEC failure: RFC 9520 caches it, and
    /// each hit says why). 0 removes it.
    pub fn with_ede(self, code: u16) -> Self {
        let has = self.bits() & BIT_EDE != 0;
        if has && code != 0 {
            let mut entry = self;
            entry.put_trailer(EDE_AT, &code.to_be_bytes());
            return entry;
        }
        if !has && code == 0 {
            return self;
        }
        // The trailer gains or loses the code's two bytes.
        let mut entry = Self::with_trailer(self.wire(), code);
        let tail = self.blob.len().saturating_sub(STORED_AT_AT);
        let fixed = self.blob.get(tail..).unwrap_or_default();
        let start = entry.blob.len().saturating_sub(STORED_AT_AT);
        if let Some(field) = entry.blob.get_mut(start..) {
            field.copy_from_slice(fixed);
        }
        let bits = if code == 0 {
            self.bits() & !BIT_EDE
        } else {
            self.bits() | BIT_EDE
        };
        entry.put_trailer(BITS_AT, &[bits]);
        entry
    }

    /// `wire` and a zeroed trailer (with room for the EDE info `code`,
    /// which is written, unless 0).
    fn with_trailer(wire: &[u8], code: u16) -> Self {
        let ede = if code == 0 { 0 } else { EDE_LEN };
        let mut blob = Vec::with_capacity(wire.len() + ede + TRAILER_LEN);
        blob.extend_from_slice(wire);
        if code != 0 {
            blob.extend_from_slice(&code.to_be_bytes());
        }
        blob.resize(wire.len() + ede + TRAILER_LEN, 0);
        Self {
            blob: blob.into_boxed_slice(),
        }
    }

    /// Write `bytes` at `back` bytes before the end of the allocation.
    fn put_trailer(&mut self, back: usize, bytes: &[u8]) {
        let at = self.blob.len().wrapping_sub(back);
        if let Some(field) = self.blob.get_mut(at..at + bytes.len()) {
            field.copy_from_slice(bytes);
        }
    }

    /// Set when the entry was stored and when it expires. `stored_at` keeps
    /// 40 bits of milliseconds (34 years after the epoch). The lifetime is
    /// a `u32`: milliseconds below 2^31 (24.8 days), else whole seconds
    /// (rounded down, so an entry never lives longer than it was given)
    /// with the top bit set, up to 68 years, the largest DNS TTL.
    pub(crate) fn set_times(&mut self, stored_at: Timestamp, expires_at: Timestamp) {
        let stored = stored_at.as_millis().min(STORED_AT_MAX);
        let lifetime = expires_at.as_millis().saturating_sub(stored);
        let lifetime = match u32::try_from(lifetime) {
            Ok(ms) if ms < LIFETIME_IN_SECS => ms,
            _ => {
                LIFETIME_IN_SECS
                    | u32::try_from(lifetime / 1000)
                        .unwrap_or(u32::MAX)
                        .min(!LIFETIME_IN_SECS)
            }
        };
        let bytes = stored.to_be_bytes();
        let field = bytes.get(8 - STORED_AT_BYTES..).unwrap_or_default();
        self.put_trailer(STORED_AT_AT, field);
        self.put_trailer(LIFETIME_AT, &lifetime.to_be_bytes());
    }

    /// Overwrite the TTL field at `offset` of the stored message (a
    /// restored entry folds its age in).
    pub(crate) fn set_ttl(&mut self, offset: u16, ttl: u32) -> Option<()> {
        let at = usize::from(offset);
        let wire_len = self.wire_len();
        if at + 4 > wire_len {
            return None;
        }
        self.blob
            .get_mut(at..at + 4)?
            .copy_from_slice(&ttl.to_be_bytes());
        Some(())
    }

    /// Bytes of the one allocation that holds the entry, as requested.
    pub fn blob_len(&self) -> usize {
        self.blob.len()
    }

    /// Heap bytes this entry owns: its one allocation as glibc's malloc
    /// lays it out (the request, an 8-byte header, 16-byte granularity).
    pub fn heap_bytes(&self) -> usize {
        allocation_bytes(self.blob.len())
    }

    /// Memory this entry occupies: the struct and its heap.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() + self.heap_bytes()
    }
}

impl EntryView {
    /// The Extended DNS Error info code its replies carry; 0 for none.
    pub fn ede(&self) -> u16 {
        if self.bits() & BIT_EDE == 0 {
            return 0;
        }
        read_u16(&self.blob, self.blob.len().wrapping_sub(EDE_AT)).unwrap_or(0)
    }

    #[inline]
    fn bits(&self) -> u8 {
        let at = self.blob.len().wrapping_sub(BITS_AT);
        self.blob.get(at).copied().unwrap_or(0)
    }

    /// The stored message's length: what the trailer leaves.
    #[inline]
    fn wire_len(&self) -> usize {
        let trailer = if self.bits() & BIT_EDE == 0 {
            TRAILER_LEN
        } else {
            TRAILER_LEN + EDE_LEN
        };
        self.blob.len().saturating_sub(trailer)
    }

    /// The stored header's section counts.
    fn counts(&self) -> [u16; 3] {
        [6, 8, 10].map(|at| read_u16(&self.blob, at).unwrap_or(0))
    }

    /// Offset just after the question (end of qtype and qclass): the
    /// stored name is uncompressed, so its labels are walked.
    pub(crate) fn question_end(&self) -> u16 {
        let mut at = HEADER_LEN;
        while let Some(&len) = self.blob.get(at) {
            at += 1 + usize::from(len);
            if len == 0 || at > HEADER_LEN + 255 {
                break;
            }
        }
        (at + 4).min(self.wire_len()) as u16
    }

    /// Whether this entry answers `key` (which, as built by
    /// `QueryKey::from_message`, holds a lower-cased name).
    ///
    /// The stored name is compared over the key name's length, with no
    /// walk of its labels to find where it ends: a wire name ends at its
    /// first empty label, so bytes equal to a whole name are that name.
    /// The name and the type come first, in the record's first bytes; the
    /// DO and CD bits, in the trailer at its end, last.
    #[inline]
    pub fn matches(&self, key: &QueryKey) -> bool {
        let name_end = HEADER_LEN + key.name.len();
        !key.name.is_empty()
            && self.blob.get(HEADER_LEN..name_end) == Some(&key.name[..])
            && read_u16(&self.blob, name_end) == Some(key.qtype.0)
            && read_u16(&self.blob, name_end + 2) == Some(key.qclass.0)
            && name_end + 4 <= self.wire_len()
            && self.dnssec_ok() == key.dnssec_ok
            && self.checking_disabled() == key.checking_disabled
    }

    /// The query key this entry answers (the stored name is lower-cased).
    pub fn key(&self) -> QueryKey {
        let mut name = WireNameBuf::new();
        // A stored name is at most 255 bytes, the buffer's size.
        let _ = name.try_extend_from_slice(self.question_name());
        QueryKey {
            name,
            qtype: self.qtype(),
            qclass: self.qclass(),
            dnssec_ok: self.dnssec_ok(),
            checking_disabled: self.checking_disabled(),
        }
    }

    /// The stored question in one walk of the name: the lower-cased
    /// uncompressed name, the type and the class.
    pub(crate) fn question_parts(&self) -> (&[u8], u16, u16) {
        let end = usize::from(self.question_end());
        let name = self
            .blob
            .get(HEADER_LEN..end.saturating_sub(4))
            .unwrap_or_default();
        let qtype = read_u16(&self.blob, end.wrapping_sub(4)).unwrap_or(0);
        let qclass = read_u16(&self.blob, end.wrapping_sub(2)).unwrap_or(0);
        (name, qtype, qclass)
    }

    /// The stored question name: lower-cased, uncompressed wire form.
    #[inline]
    pub fn question_name(&self) -> &[u8] {
        let end = usize::from(self.question_end()).saturating_sub(4);
        self.blob.get(HEADER_LEN..end).unwrap_or_default()
    }

    /// The question type.
    pub fn qtype(&self) -> RecordType {
        RecordType(
            read_u16(&self.blob, usize::from(self.question_end()).wrapping_sub(4)).unwrap_or(0),
        )
    }

    /// The question class.
    pub fn qclass(&self) -> Class {
        Class(read_u16(&self.blob, usize::from(self.question_end()).wrapping_sub(2)).unwrap_or(0))
    }

    /// The key's DO bit.
    pub fn dnssec_ok(&self) -> bool {
        self.bits() & BIT_DO != 0
    }

    /// The key's CD bit.
    pub fn checking_disabled(&self) -> bool {
        self.bits() & BIT_CD != 0
    }

    /// What the entry says.
    pub fn kind(&self) -> EntryKind {
        match self.bits() & KIND_MASK {
            0 => EntryKind::Positive,
            1 => EntryKind::NxDomain,
            2 => EntryKind::NoData,
            _ => EntryKind::ServFail,
        }
    }

    /// The stored header flags; only AD and the rcode carry information.
    pub(crate) fn flags(&self) -> Flags {
        Flags(read_u16(&self.blob, 2).unwrap_or(0))
    }

    /// The rcode replies carry (stored rcodes fit the header).
    pub fn rcode(&self) -> Rcode {
        Rcode(self.flags().0 & 0x000f)
    }

    /// Whether the upstream set AD.
    pub fn authentic_data(&self) -> bool {
        self.flags().authentic_data()
    }

    /// When the entry was stored.
    pub fn stored_at(&self) -> Timestamp {
        let at = self.blob.len().wrapping_sub(STORED_AT_AT);
        let mut bytes = [0u8; 8];
        if let (Some(field), Some(dest)) = (
            self.blob.get(at..at + STORED_AT_BYTES),
            bytes.get_mut(8 - STORED_AT_BYTES..),
        ) {
            dest.copy_from_slice(field);
        }
        Timestamp::from_millis(u64::from_be_bytes(bytes))
    }

    /// When the entry stops being fresh.
    pub fn expires_at(&self) -> Timestamp {
        let at = self.blob.len().wrapping_sub(LIFETIME_AT);
        let lifetime = self
            .blob
            .get(at..at + 4)
            .and_then(|field| <[u8; 4]>::try_from(field).ok())
            .map_or(0, u32::from_be_bytes);
        let millis = if lifetime & LIFETIME_IN_SECS == 0 {
            u64::from(lifetime)
        } else {
            u64::from(lifetime & !LIFETIME_IN_SECS) * 1000
        };
        self.stored_at().add_millis(millis)
    }

    /// Whether the entry is fresh at `now`.
    pub fn is_fresh(&self, now: Timestamp) -> bool {
        now < self.expires_at()
    }

    /// The normalized stored message (ID 0, TTLs as stored).
    pub fn wire(&self) -> &[u8] {
        self.blob.get(..self.wire_len()).unwrap_or_default()
    }

    /// Stored records, all sections together.
    fn records(&self) -> usize {
        self.counts().into_iter().map(usize::from).sum()
    }

    /// Offsets of the TTL fields of the stored records, in order (a copy
    /// of the packed index; the hit path reads it in place).
    pub fn ttl_offsets(&self) -> SmallVec<[u16; 8]> {
        self.ttl_offset_iter().collect()
    }

    /// The RRset boundaries, in order; the last is the whole message
    /// (found by walking the stored records).
    pub fn cuts(&self) -> SmallVec<[Cut; 4]> {
        let mut cuts = SmallVec::new();
        if let Ok(message) = Message::parse(self.wire()) {
            visit_cuts(&message, |cut| cuts.push(cut));
        }
        cuts
    }

    /// [`EntryView::ttl_offsets`], found in place by stepping over the
    /// stored records.
    pub(crate) fn ttl_offset_iter(&self) -> TtlOffsets<'_> {
        TtlOffsets {
            wire: self.wire(),
            at: usize::from(self.question_end()),
            left: self.records(),
        }
    }

    /// The whole stored message as a cut (with no records: the question).
    pub(crate) fn full_cut(&self) -> Cut {
        let [answers, authorities, additionals] = self.counts();
        if answers == 0 && authorities == 0 && additionals == 0 {
            return Cut {
                offset: self.question_end(),
                answers,
                authorities,
                additionals,
            };
        }
        Cut {
            offset: self.wire_len() as u16,
            answers,
            authorities,
            additionals,
        }
    }
}

/// The TTL fields of a stored message's records, in order: each record's
/// owner (labels ending in a root label or a compression pointer), type,
/// class, then the TTL; RDLENGTH skips the data. Stops early, rather than
/// read past the end, on bytes that do not parse (not for a stored copy,
/// which `MessageBuilder` wrote).
#[derive(Debug, Clone)]
pub(crate) struct TtlOffsets<'a> {
    wire: &'a [u8],
    at: usize,
    left: usize,
}

impl Iterator for TtlOffsets<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if self.left == 0 {
            return None;
        }
        let mut at = self.at;
        loop {
            let len = *self.wire.get(at)?;
            match len & 0xc0 {
                0xc0 => {
                    at += 2;
                    break;
                }
                0 if len == 0 => {
                    at += 1;
                    break;
                }
                0 => at += 1 + usize::from(len),
                _ => {
                    self.left = 0;
                    return None;
                }
            }
        }
        let ttl_at = at + 4;
        let Some(rdlength) = read_u16(self.wire, at + 8) else {
            self.left = 0;
            return None;
        };
        self.at = at + 10 + usize::from(rdlength);
        self.left -= 1;
        u16::try_from(ttl_at).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
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
            if record.ttl() == 0 && !options.use_once {
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
        (ttl > 0 || options.use_once).then_some(Scan {
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
