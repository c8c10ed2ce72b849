//! Cache persistence as bytes: [`encode_entries`] and [`decode_entries`].
//!
//! Sans-IO like the rest of the crate: the server writes the encoded bytes
//! to a file (atomically) at shutdown and hands the file's bytes back at
//! start; nothing here touches a file or a clock.
//!
//! # Format (version 1)
//!
//! All integers are big-endian.
//!
//! ```text
//! offset  size  field
//! 0       16    magic: b"\x89heimdall-cache\n"
//! 16      4     format version: 1
//! 20      8     saved_at: wall clock (Unix ms) when the file was encoded
//! 28      4     record count N
//! 32      ..    N records, each:
//!                 4   length L of the rest of the record (>= 18)
//!                 8   stored_at: wall clock (Unix ms) the entry was stored
//!                 8   expires_at: wall clock (Unix ms) the entry expires
//!                 1   key flags: bit 0 DO, bit 1 CD, other bits 0
//!                 1   kind: 0 positive, 1 NXDOMAIN, 2 NODATA
//!                 L-18  the entry's stored message (Entry::wire): ID 0,
//!                       lower-cased question, TTLs as stored (not aged)
//! end-8   8     FNV-1a-64 of every byte before it (magic included)
//! ```
//!
//! The checksum is the last 8 bytes of the file and covers everything
//! before them, so a truncated or bit-flipped file is refused whole.
//!
//! # Time
//!
//! The cache's [`Timestamp`]s are milliseconds since the current process's
//! epoch, so they mean nothing to the next process; the file holds wall
//! clock times instead. On decode, `elapsed` is measured from the file's
//! `saved_at`; each entry's age is `(effective now) - stored_at` and its
//! remaining life `expires_at - (effective now)`, where the effective now
//! is the later of the current wall clock and `saved_at`. A file "from the
//! future" (the wall clock went backwards across the restart) is thus
//! treated as if no time had passed since it was saved: entries come back
//! with exactly the TTLs and remaining life they had at save time, and
//! expire no later (in wall clock terms) than they would have originally.
//! Lifetimes are never extended.
//!
//! A restored entry cannot have a `stored_at` before the new epoch, so the
//! age is folded into the stored TTLs instead: every stored TTL is lowered
//! by the whole seconds of the age and `stored_at` is set to `now` minus
//! the sub-second remainder. `Entry::write_answer` then serves exactly the
//! TTLs the original entry would serve at the same wall clock moment. When
//! `now` is below that remainder (a process less than a second old), the
//! age is rounded up instead and `stored_at = now`, which serves TTLs at
//! most one second lower than the original, never higher. `expires_at` is
//! `now` plus the remaining life (the same wall clock moment as the
//! original's), never later than the lowest restored TTL allows.
//!
//! Entries are restored while fresh only: an entry expired at decode time
//! is skipped even if the stale window would still allow serving it
//! (its `expires_at` would lie before the new epoch). [`encode_entries`]
//! skips failure entries (they live seconds) and expired entries.
//!
//! # Untrusted input
//!
//! [`decode_entries`] never panics and never allocates more than the input
//! can justify (the record count is bounded by the bytes present). Nothing
//! from the file but the question, the key bits, the times and the stored
//! TTLs is trusted: each record's message is parsed with
//! [`Message::parse`] and rebuilt with [`Entry::from_response`] under the
//! current policy, so the TTL offsets, RRset cuts, question end, flags,
//! rcode and kind of a restored entry are derived exactly as for a fresh
//! upstream answer. Restored TTLs are the lower of the rebuilt (current
//! policy) TTL and the aged stored TTL.
//!
//! A record that fails these checks fails the whole file with
//! [`PersistError::Malformed`]: it passed the checksum, so it was written
//! by something other than this code and nothing in the file is trusted.
//! A well-formed record that the current policy would not cache (say
//! negative caching was turned off) is skipped.

use heimdall_wire::{
    HEADER_LEN as DNS_HEADER_LEN, Message, QueryKey, RecordType, Section, WireNameBuf,
};
use smallvec::SmallVec;

use crate::entry::{Entry, EntryKind, EntryView};
use crate::policy::CachePolicy;
use crate::time::Timestamp;

/// The first bytes of every heimdall cache file.
pub const PERSIST_MAGIC: [u8; 16] = *b"\x89heimdall-cache\n";
/// The format version [`encode_entries`] writes and [`decode_entries`]
/// reads.
pub const PERSIST_VERSION: u32 = 1;

const HEADER_LEN: usize = PERSIST_MAGIC.len() + 4 + 8 + 4;
const CHECKSUM_LEN: usize = 8;
/// stored_at, expires_at, key flags, kind.
const RECORD_FIXED_LEN: usize = 8 + 8 + 1 + 1;
/// Smallest record on disk: its length prefix and fixed fields.
const MIN_RECORD_LEN: usize = 4 + RECORD_FIXED_LEN;
/// Offset of the record count in the header.
const COUNT_AT: usize = HEADER_LEN - 4;

const FLAG_DO: u8 = 0x01;
const FLAG_CD: u8 = 0x02;

const SECTIONS: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];

/// Why a cache file was refused. Any error refuses the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PersistError {
    /// Not a heimdall cache file.
    #[error("not a heimdall cache file")]
    BadMagic,
    /// A heimdall cache file of another format version.
    #[error("unsupported cache file version {0}")]
    UnsupportedVersion(u32),
    /// The file ends before its header, a record or its checksum does.
    #[error("cache file is truncated")]
    Truncated,
    /// The checksum does not match the contents (or there are bytes after
    /// the last record other than the checksum).
    #[error("cache file checksum mismatch")]
    Checksum,
    /// Record `index` (counting from 0) is not a valid entry, although the
    /// checksum matched.
    #[error("cache file record {index} is malformed")]
    Malformed {
        /// The record's position in the file, from 0.
        index: usize,
    },
}

/// FNV-1a, 64-bit.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn kind_code(kind: EntryKind) -> Option<u8> {
    match kind {
        EntryKind::Positive => Some(0),
        EntryKind::NxDomain => Some(1),
        EntryKind::NoData => Some(2),
        EntryKind::ServFail => None,
    }
}

fn kind_of(code: u8) -> Option<EntryKind> {
    match code {
        0 => Some(EntryKind::Positive),
        1 => Some(EntryKind::NxDomain),
        2 => Some(EntryKind::NoData),
        _ => None,
    }
}

/// Append a cache file holding `entries` to `out`; returns how many
/// entries it holds.
///
/// `now` is the cache's clock and `wall_clock_unix_ms` the wall clock at
/// that moment (milliseconds since the Unix epoch). Failure entries
/// ([`EntryKind::ServFail`]) and entries no longer fresh at `now` are left
/// out. The bytes already in `out` are kept and not covered by the
/// checksum: the file starts at `out.len()` on entry.
pub fn encode_entries<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    now: Timestamp,
    wall_clock_unix_ms: u64,
    out: &mut Vec<u8>,
) -> usize {
    encode_views(
        entries.into_iter().map(|entry| &**entry),
        now,
        wall_clock_unix_ms,
        out,
    )
}

/// [`encode_entries`] from views (a shard's entries, as it hands them
/// out).
pub(crate) fn encode_views<'a>(
    entries: impl IntoIterator<Item = &'a EntryView>,
    now: Timestamp,
    wall_clock_unix_ms: u64,
    out: &mut Vec<u8>,
) -> usize {
    let start = out.len();
    out.extend_from_slice(&PERSIST_MAGIC);
    out.extend_from_slice(&PERSIST_VERSION.to_be_bytes());
    out.extend_from_slice(&wall_clock_unix_ms.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    let mut count: u32 = 0;
    for entry in entries {
        if count == u32::MAX {
            break;
        }
        let Some(kind) = kind_code(entry.kind()) else {
            continue;
        };
        if !entry.is_fresh(now) {
            continue;
        }
        let Ok(len) = u32::try_from(RECORD_FIXED_LEN + entry.wire().len()) else {
            continue;
        };
        let age = now
            .as_millis()
            .saturating_sub(entry.stored_at().as_millis());
        let remaining = entry
            .expires_at()
            .as_millis()
            .saturating_sub(now.as_millis());
        let stored_wall = wall_clock_unix_ms.saturating_sub(age);
        let expires_wall = wall_clock_unix_ms.saturating_add(remaining);
        let mut key_flags = 0;
        if entry.dnssec_ok() {
            key_flags |= FLAG_DO;
        }
        if entry.checking_disabled() {
            key_flags |= FLAG_CD;
        }
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&stored_wall.to_be_bytes());
        out.extend_from_slice(&expires_wall.to_be_bytes());
        out.push(key_flags);
        out.push(kind);
        out.extend_from_slice(entry.wire());
        count += 1;
    }
    if let Some(field) = out.get_mut(start + COUNT_AT..start + HEADER_LEN) {
        field.copy_from_slice(&count.to_be_bytes());
    }
    let checksum = fnv1a64(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&checksum.to_be_bytes());
    count as usize
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl<'b> Reader<'b> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    fn take(&mut self, len: usize) -> Option<&'b [u8]> {
        let end = self.at.checked_add(len)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[byte]| byte)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }
}

/// One record as framed in the file, not yet validated.
struct RawRecord<'b> {
    stored_wall: u64,
    expires_wall: u64,
    key_flags: u8,
    kind: u8,
    wire: &'b [u8],
}

/// Read a cache file written by [`encode_entries`] and return its entries
/// that are still fresh, each with its cache key (ready for
/// [`Cache::insert`](crate::Cache::insert)), aged to `now`.
///
/// `now` is the cache's clock and `wall_clock_unix_ms` the wall clock at
/// that moment. See the module documentation for how ages are applied,
/// what is skipped and what is refused.
pub fn decode_entries(
    bytes: &[u8],
    now: Timestamp,
    wall_clock_unix_ms: u64,
    policy: &CachePolicy,
) -> Result<Vec<(QueryKey, Entry)>, PersistError> {
    let (saved_wall, records) = parse_file(bytes)?;
    let effective_wall = wall_clock_unix_ms.max(saved_wall);
    // Grown as entries pass (each is far larger than its bytes on disk).
    let mut restored = Vec::new();
    for (index, raw) in records.iter().enumerate() {
        let malformed = PersistError::Malformed { index };
        let raw = raw.as_ref().ok_or(malformed)?;
        // An entry cannot have been stored after the file was saved.
        if raw.stored_wall > saved_wall {
            return Err(malformed);
        }
        if let Some(pair) = restore(raw, now, effective_wall, policy).map_err(|()| malformed)? {
            restored.push(pair);
        }
    }
    Ok(restored)
}

/// Check magic, version, framing and checksum; returns the file's
/// `saved_at` and its records.
fn parse_file(bytes: &[u8]) -> Result<(u64, Vec<Option<RawRecord<'_>>>), PersistError> {
    let mut reader = Reader { bytes, at: 0 };
    let Some(magic) = reader.take(PERSIST_MAGIC.len()) else {
        return Err(if PERSIST_MAGIC.starts_with(bytes) {
            PersistError::Truncated
        } else {
            PersistError::BadMagic
        });
    };
    if magic != PERSIST_MAGIC {
        return Err(PersistError::BadMagic);
    }
    let version = reader.u32().ok_or(PersistError::Truncated)?;
    if version != PERSIST_VERSION {
        return Err(PersistError::UnsupportedVersion(version));
    }
    let saved_wall = reader.u64().ok_or(PersistError::Truncated)?;
    let count = reader.u32().ok_or(PersistError::Truncated)?;
    let count = usize::try_from(count).map_err(|_| PersistError::Truncated)?;
    // Every record takes at least MIN_RECORD_LEN bytes, so a count the
    // bytes cannot hold is refused before anything is allocated for it.
    let most = reader.remaining().saturating_sub(CHECKSUM_LEN) / MIN_RECORD_LEN;
    if count > most {
        return Err(PersistError::Truncated);
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let len = reader.u32().ok_or(PersistError::Truncated)?;
        let len = usize::try_from(len).map_err(|_| PersistError::Truncated)?;
        let mut body = Reader {
            bytes: reader.take(len).ok_or(PersistError::Truncated)?,
            at: 0,
        };
        // A length too short for the fixed fields is kept as `None`: if
        // the checksum matches, the record is malformed.
        records.push((|| {
            Some(RawRecord {
                stored_wall: body.u64()?,
                expires_wall: body.u64()?,
                key_flags: body.u8()?,
                kind: body.u8()?,
                wire: body.take(body.remaining())?,
            })
        })());
    }
    let body_end = reader.at;
    let stored = reader
        .array::<CHECKSUM_LEN>()
        .ok_or(PersistError::Truncated)?;
    if reader.remaining() != 0
        || u64::from_be_bytes(stored) != fnv1a64(bytes.get(..body_end).unwrap_or_default())
    {
        return Err(PersistError::Checksum);
    }
    Ok((saved_wall, records))
}

/// Rebuild one entry; `Ok(None)` when it is expired or the policy would
/// not cache it, `Err(())` when it is malformed.
fn restore(
    raw: &RawRecord<'_>,
    now: Timestamp,
    effective_wall: u64,
    policy: &CachePolicy,
) -> Result<Option<(QueryKey, Entry)>, ()> {
    if raw.key_flags & !(FLAG_DO | FLAG_CD) != 0 {
        return Err(());
    }
    let kind = kind_of(raw.kind).ok_or(())?;
    let remaining_ms = raw.expires_wall.saturating_sub(effective_wall);
    if remaining_ms == 0 {
        return Ok(None);
    }
    let age_ms = effective_wall.saturating_sub(raw.stored_wall);

    let message = Message::parse(raw.wire).map_err(|_| ())?;
    if message.header().question_count != 1 || message.id() != 0 {
        return Err(());
    }
    let question = message.question().ok_or(())?;
    let mut key = QueryKey {
        name: WireNameBuf::new(),
        qtype: question.qtype,
        qclass: question.qclass,
        dnssec_ok: raw.key_flags & FLAG_DO != 0,
        checking_disabled: raw.key_flags & FLAG_CD != 0,
    };
    question.name.write_lower(&mut key.name);
    // The stored question is lower-cased and uncompressed.
    if raw
        .wire
        .get(DNS_HEADER_LEN..message.answer_offset().saturating_sub(4))
        != Some(&key.name[..])
    {
        return Err(());
    }

    let mut entry = match Entry::from_response(&key, &message, now, policy) {
        Ok(Some(entry)) => entry,
        Ok(None) => return Ok(None),
        Err(_) => return Err(()),
    };
    if entry.kind() != kind {
        return Err(());
    }
    // The rebuilt entry holds the same records in the same order; the file
    // may not hold records an entry never stores (OPT, TSIG).
    let mut file_ttls = SmallVec::<[u32; 16]>::new();
    for record in SECTIONS
        .into_iter()
        .flat_map(|section| message.records(section))
    {
        if matches!(record.rtype(), RecordType::OPT | RecordType::TSIG) {
            return Err(());
        }
        file_ttls.push(record.ttl());
    }
    let offsets = entry.ttl_offsets();
    if file_ttls.len() != offsets.len() {
        return Err(());
    }

    // Fold the age into the TTLs (see the module documentation).
    let fraction = age_ms % 1000;
    let (age_secs, stored_at) = if now.as_millis() >= fraction {
        (
            age_ms / 1000,
            Timestamp::from_millis(now.as_millis() - fraction),
        )
    } else {
        (age_ms.div_ceil(1000), now)
    };
    let age_secs = u32::try_from(age_secs).unwrap_or(u32::MAX);
    let mut lowest: Option<u32> = None;
    for (&offset, &file_ttl) in offsets.iter().zip(file_ttls.iter()) {
        let at = usize::from(offset);
        let field = entry.wire().get(at..at + 4).ok_or(())?;
        let rebuilt = u32::from_be_bytes(<[u8; 4]>::try_from(field).map_err(|_| ())?);
        let ttl = rebuilt.min(file_ttl.saturating_sub(age_secs));
        entry.set_ttl(offset, ttl).ok_or(())?;
        lowest = Some(lowest.map_or(ttl, |low| low.min(ttl)));
    }
    let mut expires_at = now.add_millis(remaining_ms);
    if let Some(lowest) = lowest {
        expires_at = expires_at.min(stored_at.add_secs(lowest));
    }
    if expires_at <= now {
        return Ok(None);
    }
    entry.set_times(stored_at, expires_at);
    Ok(Some((key, entry)))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use heimdall_testkit::SplitMix64;
    use heimdall_testkit::messages;
    use heimdall_wire::{Class, Flags, MessageBuilder, RData, Rcode, Section};

    use super::*;
    use crate::{AnswerRequest, Cache};

    const WALL: u64 = 1_700_000_000_000;

    fn policy() -> CachePolicy {
        CachePolicy::default()
    }

    fn key_of(query: &[u8], checking_disabled: bool) -> QueryKey {
        let mut key = QueryKey::from_message(&Message::parse(query).unwrap()).unwrap();
        key.checking_disabled = checking_disabled;
        key
    }

    fn entry_from(query: &[u8], response: &[u8], cd: bool, stored_at: Timestamp) -> Entry {
        let key = key_of(query, cd);
        Entry::from_response(
            &key,
            &Message::parse(response).unwrap(),
            stored_at,
            &policy(),
        )
        .unwrap()
        .unwrap()
    }

    /// A positive answer with several RRsets in every section: a CNAME,
    /// two A records, an NS in authority and glue in additional.
    fn rich_response(query: &[u8]) -> Vec<u8> {
        let parsed = Message::parse(query).unwrap();
        let question = parsed.question().unwrap();
        let (target, zone, ns) = (
            messages::name("target.example"),
            messages::name("example"),
            messages::name("ns.example"),
        );
        let owner = heimdall_wire::NameBuf::from_name(&question.name);
        let mut buf = vec![0u8; 4096];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(parsed.id());
        builder.set_flags(
            Flags::default()
                .with_response(true)
                .with_recursion_available(true)
                .with_authentic_data(true),
        );
        builder
            .question(&question.name, question.qtype, question.qclass)
            .unwrap();
        let a = RecordType::A;
        let records = [
            (
                Section::Answer,
                owner.as_name(),
                RecordType::CNAME,
                900,
                RData::Cname(target.as_name()),
            ),
            (
                Section::Answer,
                target.as_name(),
                a,
                120,
                RData::A(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            (
                Section::Answer,
                target.as_name(),
                a,
                300,
                RData::A(Ipv4Addr::new(192, 0, 2, 2)),
            ),
            (
                Section::Authority,
                zone.as_name(),
                RecordType::NS,
                3600,
                RData::Ns(ns.as_name()),
            ),
            (
                Section::Additional,
                ns.as_name(),
                a,
                3600,
                RData::A(Ipv4Addr::new(192, 0, 2, 53)),
            ),
        ];
        for (section, name, rtype, ttl, rdata) in &records {
            builder
                .record(*section, name, *rtype, Class::IN, *ttl, rdata)
                .unwrap();
        }
        let len = builder.finish();
        buf.truncate(len);
        buf
    }

    /// Positive (rich, with CD), positive (plain, DO), NXDOMAIN, NODATA;
    /// all stored at `stored_at`.
    fn sample_entries(stored_at: Timestamp) -> Vec<Entry> {
        let q_rich = messages::query("Www.Example", RecordType::A, 1, None);
        let q_a = messages::query("a.example", RecordType::A, 2, Some((1232, true)));
        let q_nx = messages::query("nx.example", RecordType::A, 3, None);
        let q_nodata = messages::query("nodata.example", RecordType::AAAA, 4, None);
        let mut nodata = messages::nxdomain_answer(&q_nodata, 600, 240);
        nodata[3] &= 0xf0; // NOERROR: the SOA alone makes it NODATA
        let entries = vec![
            entry_from(&q_rich, &rich_response(&q_rich), true, stored_at),
            entry_from(&q_a, &messages::a_answer(&q_a, 3, 500), false, stored_at),
            entry_from(
                &q_nx,
                &messages::nxdomain_answer(&q_nx, 300, 200),
                false,
                stored_at,
            ),
            entry_from(&q_nodata, &nodata, false, stored_at),
        ];
        let kinds: Vec<EntryKind> = entries.iter().map(|entry| entry.kind()).collect();
        assert_eq!(
            kinds,
            [
                EntryKind::Positive,
                EntryKind::Positive,
                EntryKind::NxDomain,
                EntryKind::NoData
            ]
        );
        entries
    }

    /// The reply a client gets from `entry` at `now` (over TCP, no EDNS).
    fn reply(entry: &Entry, now: Timestamp) -> Vec<u8> {
        let qname = entry.question_name().to_vec();
        let request = AnswerRequest::udp(0x4242, Flags::default(), &qname, None, 1232).over_tcp();
        let mut out = vec![0u8; 65_535];
        let len = entry.write_answer(&mut out, &request, now).unwrap();
        out.truncate(len);
        out
    }

    fn reply_ttls(entry: &Entry, now: Timestamp) -> Vec<u32> {
        let bytes = reply(entry, now);
        let message = Message::parse(&bytes).unwrap();
        SECTIONS
            .into_iter()
            .flat_map(|section| message.records(section))
            .map(|record| record.ttl())
            .collect()
    }

    /// Every invariant `write_answer` and the shard rely on.
    fn assert_valid(key: &QueryKey, entry: &Entry, now: Timestamp) {
        assert!(entry.matches(key));
        assert_ne!(entry.kind(), EntryKind::ServFail);
        assert!(entry.is_fresh(now) && entry.stored_at() <= now);
        let message = Message::parse(entry.wire()).unwrap();
        assert_eq!(message.id(), 0);
        assert_eq!(usize::from(entry.question_end()), message.answer_offset());
        assert_eq!(entry.rcode(), message.rcode());
        let records: Vec<_> = SECTIONS
            .into_iter()
            .flat_map(|section| message.records(section))
            .collect();
        let offsets: Vec<u16> = records.iter().map(|r| r.ttl_offset() as u16).collect();
        assert_eq!(&entry.ttl_offsets()[..], &offsets[..]);
        let starts: Vec<usize> = records.iter().map(|r| r.name().offset()).collect();
        let mut previous = (usize::from(entry.question_end()), 0usize);
        for cut in entry.cuts() {
            let offset = usize::from(cut.offset);
            assert!(offset > previous.0 && cut.records() > previous.1);
            assert!(offset == entry.wire().len() || starts.get(cut.records()) == Some(&offset));
            previous = (offset, cut.records());
        }
        let header = message.header();
        let last = *entry.cuts().last().unwrap();
        assert_eq!(usize::from(last.offset), entry.wire().len());
        assert_eq!(
            (last.answers, last.authorities, last.additionals),
            (
                header.answer_count,
                header.authority_count,
                header.additional_count
            )
        );
        // Serving works and never outlives the stored TTLs.
        let lowest = reply_ttls(entry, now).into_iter().min().unwrap();
        assert!(entry.expires_at() <= entry.stored_at().add_secs(lowest).add_millis(999));
    }

    fn decode_ok(file: &[u8], now: Timestamp, wall: u64) -> Vec<(QueryKey, Entry)> {
        let restored = decode_entries(file, now, wall, &policy()).unwrap();
        for (key, entry) in &restored {
            assert_valid(key, entry, now);
        }
        restored
    }

    fn file_of(entries: &[Entry], now: Timestamp, wall: u64) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(encode_entries(entries, now, wall, &mut out), entries.len());
        out
    }

    /// Rewrite the checksum of a (mutated) file so only content checks
    /// can refuse it.
    fn reseal(file: &mut Vec<u8>) {
        let body = file.len().saturating_sub(CHECKSUM_LEN);
        file.truncate(body);
        let checksum = fnv1a64(file);
        file.extend_from_slice(&checksum.to_be_bytes());
    }

    #[test]
    fn round_trip_serves_the_same_ttls_at_the_same_wall_moment() {
        // Stored at cache time 10 s, saved at 50.5 s (age 40.5 s); the new
        // process starts 7.25 s of wall time later, its clock at 2 s.
        let stored = Timestamp::from_secs(10);
        let saved = Timestamp::from_millis(50_500);
        let entries = sample_entries(stored);
        let file = file_of(&entries, saved, WALL);
        let (restart, downtime) = (Timestamp::from_secs(2), 7_250);
        let restored = decode_ok(&file, restart, WALL + downtime);
        assert_eq!(restored.len(), entries.len());
        for (original, (key, entry)) in entries.iter().zip(&restored) {
            assert!(original.matches(key));
            assert_eq!(
                (entry.kind(), entry.rcode(), entry.authentic_data()),
                (original.kind(), original.rcode(), original.authentic_data())
            );
            assert_eq!(entry.dnssec_ok(), original.dnssec_ok());
            assert_eq!(entry.checking_disabled(), original.checking_disabled());
            assert_eq!(entry.cuts(), original.cuts());
            assert_eq!(entry.ttl_offsets(), original.ttl_offsets());
            // Same wall-clock expiry.
            let original_expiry_wall =
                WALL + (original.expires_at().as_millis() - saved.as_millis());
            let restored_expiry_wall =
                WALL + downtime + (entry.expires_at().as_millis() - restart.as_millis());
            assert_eq!(restored_expiry_wall, original_expiry_wall);
            // Same replies, byte for byte, at every probed wall moment.
            let life = entry.expires_at().as_millis() - restart.as_millis();
            for after in [0, 1, 499, 500, 999, 1_000, 1_750, 59_000, life - 1] {
                let original_now = saved.add_millis(downtime + after);
                assert_eq!(
                    reply(entry, restart.add_millis(after)),
                    reply(original, original_now),
                    "{after} ms after the restart"
                );
            }
            assert!(!entry.is_fresh(restart.add_millis(life)));
            assert!(!original.is_fresh(saved.add_millis(downtime + life)));
        }
        // The rich answer's AD and CD survive.
        assert!(restored[0].1.authentic_data() && restored[0].1.checking_disabled());
        assert!(restored[1].1.dnssec_ok());
    }

    #[test]
    fn a_process_younger_than_the_age_fraction_rounds_the_age_up() {
        let stored = Timestamp::from_secs(10);
        let saved = Timestamp::from_millis(50_500);
        let entries = sample_entries(stored);
        let file = file_of(&entries, saved, WALL);
        let restart = Timestamp::from_millis(100);
        let restored = decode_ok(&file, restart, WALL + 7_250);
        assert_eq!(restored.len(), entries.len());
        for (original, (_, entry)) in entries.iter().zip(&restored) {
            let life = entry.expires_at().as_millis() - restart.as_millis();
            for after in (0..life).step_by(250) {
                let then = reply_ttls(original, saved.add_millis(7_250 + after));
                let now = reply_ttls(entry, restart.add_millis(after));
                for (new, old) in now.iter().zip(&then) {
                    assert!(
                        new <= old && new + 1 >= *old,
                        "{after}: {now:?} vs {then:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn entries_that_expire_during_the_downtime_are_dropped() {
        let stored = Timestamp::from_secs(1);
        let q_short = messages::query("short.example", RecordType::A, 1, None);
        let q_long = messages::query("long.example", RecordType::A, 2, None);
        let entries = [
            entry_from(
                &q_short,
                &messages::a_answer(&q_short, 1, 60),
                false,
                stored,
            ),
            entry_from(&q_long, &messages::a_answer(&q_long, 1, 600), false, stored),
        ];
        let saved = Timestamp::from_secs(31);
        let file = file_of(&entries, saved, WALL);
        // 30 s old at save; 30 s of downtime ends the short one exactly.
        let restored = decode_ok(&file, Timestamp::from_secs(1), WALL + 30_000);
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0].1.question_name(), entries[1].question_name());
        assert_eq!(reply_ttls(&restored[0].1, Timestamp::from_secs(1)), [540]);
        let restored = decode_ok(&file, Timestamp::from_secs(1), WALL + 29_999);
        assert_eq!(restored.len(), 2);
        assert_eq!(restored[0].1.expires_at(), Timestamp::from_millis(1_001));
        // Long after everything expired: nothing, and no error.
        assert!(decode_ok(&file, Timestamp::ZERO, WALL + 600_000).is_empty());
    }

    #[test]
    fn a_wall_clock_that_went_backwards_does_not_extend_life() {
        let stored = Timestamp::from_secs(10);
        let saved = Timestamp::from_secs(40);
        let entries = sample_entries(stored);
        let file = file_of(&entries, saved, WALL);
        let restart = Timestamp::from_secs(5);
        for behind in [1, 1_000, 100_000, WALL] {
            let restored = decode_ok(&file, restart, WALL - behind);
            assert_eq!(restored.len(), entries.len());
            for (original, (_, entry)) in entries.iter().zip(&restored) {
                // As if no time had passed since the save: the same TTLs
                // and the same remaining life as at save time, no more.
                assert_eq!(reply_ttls(entry, restart), reply_ttls(original, saved));
                assert_eq!(
                    entry.expires_at().as_millis() - restart.as_millis(),
                    original.expires_at().as_millis() - saved.as_millis()
                );
            }
        }
    }

    #[test]
    fn failures_and_expired_entries_are_not_written() {
        let now = Timestamp::from_secs(100);
        let q = messages::query("fail.example", RecordType::A, 1, None);
        let key = key_of(&q, false);
        let failure = Entry::failure(&key, &key.name, Rcode::SERVFAIL, now, &policy()).unwrap();
        let q_old = messages::query("old.example", RecordType::A, 2, None);
        let old = entry_from(
            &q_old,
            &messages::a_answer(&q_old, 1, 30),
            false,
            Timestamp::ZERO,
        );
        let mut entries = sample_entries(now);
        entries.push(failure);
        entries.push(old);
        let mut out = vec![0xAA];
        assert_eq!(encode_entries(&entries, now, WALL, &mut out), 4);
        assert_eq!(out[0], 0xAA, "bytes already in `out` are kept");
        assert_eq!(decode_ok(&out[1..], now, WALL).len(), 4);
        // An empty cache makes a valid, empty file.
        let mut empty = Vec::new();
        assert_eq!(encode_entries(&[], now, WALL, &mut empty), 0);
        assert_eq!(empty.len(), HEADER_LEN + CHECKSUM_LEN);
        assert!(decode_ok(&empty, now, WALL).is_empty());
    }

    #[test]
    fn the_current_policy_caps_restored_entries() {
        let stored = Timestamp::from_secs(1);
        let entries = sample_entries(stored);
        let file = file_of(&entries, stored, WALL);
        let tight = CachePolicy {
            max_ttl: 100,
            negative_max_ttl: 0,
            ..policy()
        };
        let restored = decode_entries(&file, Timestamp::ZERO, WALL, &tight).unwrap();
        // Negative caching is off now: only the positive entries return.
        assert_eq!(restored.len(), 2);
        for (key, entry) in &restored {
            assert_valid(key, entry, Timestamp::ZERO);
            assert!(
                reply_ttls(entry, Timestamp::ZERO)
                    .iter()
                    .all(|&ttl| ttl <= 100)
            );
            assert!(entry.expires_at() <= Timestamp::from_secs(100));
        }
        // min_ttl never raises a restored TTL above the aged original.
        let raising = CachePolicy {
            min_ttl: 10_000,
            max_ttl: 20_000,
            ..policy()
        };
        let restored = decode_entries(&file, Timestamp::ZERO, WALL + 10_000, &raising).unwrap();
        let ttls = reply_ttls(&restored[1].1, Timestamp::ZERO);
        assert_eq!(ttls, [490, 490, 490]);
    }

    #[test]
    fn restored_entries_go_into_a_cache() {
        let entries = sample_entries(Timestamp::from_secs(3));
        let file = file_of(&entries, Timestamp::from_secs(4), WALL);
        let mut cache = Cache::new(1 << 20, policy()).unwrap();
        let now = Timestamp::from_secs(1);
        for (key, entry) in decode_ok(&file, now, WALL + 1_000) {
            assert!(cache.insert(&key, entry, now).unwrap());
            assert!(cache.peek(&key).is_some());
        }
        assert_eq!(cache.len(), entries.len());
    }

    #[test]
    fn foreign_and_short_files_are_refused() {
        let now = Timestamp::ZERO;
        let decode = |bytes: &[u8]| decode_entries(bytes, now, WALL, &policy());
        assert_eq!(decode(b""), Err(PersistError::Truncated));
        assert_eq!(decode(&PERSIST_MAGIC[..5]), Err(PersistError::Truncated));
        assert_eq!(decode(&PERSIST_MAGIC), Err(PersistError::Truncated));
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10";
        assert_eq!(decode(png), Err(PersistError::BadMagic));
        assert_eq!(decode(&png[..4]), Err(PersistError::BadMagic));
        assert_eq!(decode(b"{\"entries\": []}\n"), Err(PersistError::BadMagic));
        let mut newer = file_of(&[], now, WALL);
        newer[16..20].copy_from_slice(&2u32.to_be_bytes());
        reseal(&mut newer);
        assert_eq!(decode(&newer), Err(PersistError::UnsupportedVersion(2)));
        // A huge count is refused by the bytes present, before allocating.
        let mut huge = file_of(&[], now, WALL);
        huge[COUNT_AT..HEADER_LEN].copy_from_slice(&u32::MAX.to_be_bytes());
        reseal(&mut huge);
        assert_eq!(decode(&huge), Err(PersistError::Truncated));
        // Trailing bytes after the checksum.
        let mut trailing = file_of(&sample_entries(now), now, WALL);
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(PersistError::Checksum));
    }

    #[test]
    fn every_truncation_is_refused() {
        let now = Timestamp::from_secs(1);
        let file = file_of(&sample_entries(now), now, WALL);
        for len in 0..file.len() {
            let result = decode_entries(&file[..len], now, WALL, &policy());
            assert!(
                matches!(
                    result,
                    Err(PersistError::Truncated | PersistError::Checksum)
                ),
                "{len}: {result:?}"
            );
        }
    }

    #[test]
    fn every_single_byte_change_is_refused() {
        let now = Timestamp::from_secs(1);
        let file = file_of(&sample_entries(now), now, WALL);
        let mut rng = SplitMix64(7);
        for at in 0..file.len() {
            for _ in 0..8 {
                let mut bad = file.clone();
                bad[at] ^= rng.byte().max(1);
                assert!(
                    decode_entries(&bad, now, WALL, &policy()).is_err(),
                    "byte {at}"
                );
            }
        }
    }

    #[test]
    fn malformed_records_with_a_valid_checksum_fail_the_file() {
        let now = Timestamp::from_secs(1);
        let entries = sample_entries(now);
        let file = file_of(&entries, now, WALL);
        let second = HEADER_LEN + 4 + RECORD_FIXED_LEN + entries[0].wire().len();
        let kind_at = |record: usize| record + 4 + 8 + 8 + 1;
        let cases: Vec<(usize, u8)> = vec![
            (kind_at(HEADER_LEN), 3),         // ServFail is never written
            (kind_at(HEADER_LEN), 2),         // kind disagrees with the message
            (kind_at(HEADER_LEN) - 1, 0x04),  // unknown key flag
            (kind_at(second) + 1 + 2, 0xbe),  // message ID not 0
            (kind_at(second) + 1 + 13, b'A'), // question not lower-cased
            (HEADER_LEN + 4, 0xff),           // stored after the file was saved
        ];
        for (at, value) in cases {
            let mut bad = file.clone();
            bad[at] = value;
            reseal(&mut bad);
            let result = decode_entries(&bad, now, WALL, &policy());
            assert!(
                matches!(result, Err(PersistError::Malformed { .. })),
                "{at}: {result:?}"
            );
        }
        // A record too short for its fixed fields, before valid ones.
        let mut short = file[..HEADER_LEN].to_vec();
        short[COUNT_AT..HEADER_LEN].copy_from_slice(&5u32.to_be_bytes());
        short.extend_from_slice(&10u32.to_be_bytes());
        short.extend_from_slice(&[0; 10]);
        short.extend_from_slice(&file[HEADER_LEN..]);
        reseal(&mut short);
        assert_eq!(
            decode_entries(&short, now, WALL, &policy()),
            Err(PersistError::Malformed { index: 0 })
        );
    }

    /// Mutations that keep the checksum valid reach the content checks:
    /// whatever comes back must be a valid entry.
    #[test]
    fn resealed_mutations_never_panic_and_return_only_valid_entries() {
        let now = Timestamp::from_secs(1);
        let file = file_of(&sample_entries(now), now, WALL);
        let mut rng = SplitMix64(0x5eed);
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut bad = file.clone();
            for _ in 0..1 + rng.below(3) {
                let at = HEADER_LEN + rng.below(bad.len() - HEADER_LEN - CHECKSUM_LEN);
                bad[at] = if round % 2 == 0 {
                    bad[at] ^ (1 << rng.below(8))
                } else {
                    rng.byte()
                };
            }
            reseal(&mut bad);
            if let Ok(restored) = decode_entries(&bad, now, WALL, &policy()) {
                accepted += 1;
                for (key, entry) in &restored {
                    assert_valid(key, entry, now);
                }
            }
        }
        // TTL and time fields are free to change, so some files pass.
        assert!(accepted > 0);
    }

    #[test]
    fn random_garbage_never_panics() {
        let now = Timestamp::from_secs(1);
        let mut rng = SplitMix64(42);
        for round in 0..5_000 {
            let len = rng.below(300);
            let mut bytes = rng.bytes(len);
            if round % 2 == 0 {
                // Past the magic and version, with a valid checksum.
                let mut file = PERSIST_MAGIC.to_vec();
                file.extend_from_slice(&PERSIST_VERSION.to_be_bytes());
                file.extend_from_slice(&WALL.to_be_bytes());
                file.extend_from_slice(&(rng.below(4) as u32).to_be_bytes());
                file.append(&mut bytes);
                file.extend_from_slice(&[0; CHECKSUM_LEN]);
                reseal(&mut file);
                bytes = file;
            }
            if let Ok(restored) = decode_entries(&bytes, now, WALL, &policy()) {
                for (key, entry) in &restored {
                    assert_valid(key, entry, now);
                }
            }
        }
    }
}
