//! Aggressive use of the DNSSEC-validated cache (RFC 8198): the NSEC and
//! NSEC3 records of every secure NXDOMAIN and NODATA answer are
//! remembered by zone ([`NsecCache`]), and a later miss whose name such
//! records prove absent is answered from them without asking upstream.
//! NSEC: NXDOMAIN when one NSEC covers the name and one covers the
//! wildcard at its closest encloser, NODATA when the NSEC at the name
//! lacks the type and CNAME. NSEC3 (RFC 5155 section 8): the name and its
//! ancestors are hashed (the zone's salt and iterations, within
//! `nsec3_max_iterations`) until one matches a remembered NSEC3, the
//! closest encloser; NXDOMAIN when NSEC3s cover the next closer name and
//! the wildcard at the closest encloser, NODATA when the NSEC3 matching
//! the name itself lacks the type. Opt-out spans prove nothing secure,
//! so they are never used.
//!
//! The synthesised reply carries the remembered SOA, NSEC and RRSIG
//! records (copied from the validated entries they came from) and is
//! proved again with heimdall-dnssec's `prove_nxdomain` / `prove_nodata`
//! before it is used, so this module only picks candidates; the proof
//! logic is the validator's. Nothing is verified cryptographically again:
//! every record was validated when its answer was. TTLs are capped by the
//! time the source entries have left (RFC 8198 section 5.4: no longer
//! than the SOA's negative TTL, which the entries' lifetime already is).
//!
//! Bounded: at most
//! [`NsecCache::MAX_SPANS`] spans and [`NsecCache::MAX_BYTES`] bytes of
//! source entries per core (each span counts its entry's size, shared or
//! not); a full cache starts over.

use std::collections::BTreeMap;

use hashbrown::HashMap;

use heimdall_cache::{CachePolicy, Entry, StoreOptions, Timestamp, Trim};
use heimdall_dnssec::{Nsec, Nsec3, Rr, nsec3_hash, prove_nodata, prove_nxdomain};
use heimdall_wire::{
    Flags, Message, MessageBuilder, Name, NameBuf, QueryKey, Rcode, RecordType, Section,
    WireNameBuf,
};

/// A name in canonical order (RFC 4034 section 6.1): its labels from the
/// root down, lower-cased; `Vec`'s order is then exactly the canonical
/// one (a shorter label that is a prefix sorts first, and so does a
/// parent before its children).
type CanonicalKey = Vec<Vec<u8>>;

fn canonical_key(name: &Name<'_>) -> CanonicalKey {
    let mut labels: Vec<Vec<u8>> = name
        .labels()
        .filter(|label| !label.is_empty())
        .map(<[u8]>::to_ascii_lowercase)
        .collect();
    labels.reverse();
    labels
}

/// One validated NSEC or NSEC3 record: where it lives, what it says,
/// and until when.
#[derive(Debug, Clone)]
struct Span {
    /// The validated negative entry (DO, NSEC/NSEC3 records and RRSIGs
    /// kept) the record was in, with the zone's SOA.
    entry: Entry,
    /// The NSEC's next owner name; `None` for an NSEC3, whose owner is
    /// a hash.
    next: Option<NameBuf>,
    until: Timestamp,
}

/// A zone's NSEC3 parameters, as its remembered NSEC3 records have them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Nsec3Params {
    salt: Vec<u8>,
    iterations: u16,
}

/// Validated NSEC records by zone (lower-case wire name), each zone's in
/// canonical order of their owners.
#[derive(Debug, Default)]
pub(crate) struct NsecCache {
    zones: HashMap<WireNameBuf, BTreeMap<CanonicalKey, Span>>,
    /// The NSEC3 parameters of the zones whose spans are NSEC3 records.
    nsec3: HashMap<WireNameBuf, Nsec3Params>,
    spans: usize,
    /// The source entries' sizes, once per span.
    bytes: usize,
}

/// The entries a denial is assembled from, each with the owner of the
/// record it contributes.
type Sources<'a> = Vec<(&'a Entry, NameBuf)>;

/// The name a canonical key stands for.
fn name_of(key: &CanonicalKey) -> Option<NameBuf> {
    let mut wire = Vec::new();
    for label in key.iter().rev() {
        wire.push(u8::try_from(label.len()).ok()?);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    NameBuf::from_wire(&wire).ok()
}

/// Common labels at the right end of `a` and `b`.
fn common_labels(a: &Name<'_>, b: &Name<'_>) -> usize {
    let (a, b) = (canonical_key(a), canonical_key(b));
    a.iter().zip(&b).take_while(|(x, y)| x == y).count()
}

/// `name` cut to its last `labels` labels, lower-cased.
fn suffix(name: &Name<'_>, labels: usize) -> Option<NameBuf> {
    let mut key = canonical_key(name);
    key.truncate(labels);
    let mut wire = Vec::new();
    for label in key.iter().rev() {
        wire.push(u8::try_from(label.len()).ok()?);
        wire.extend_from_slice(label);
    }
    wire.push(0);
    NameBuf::from_wire(&wire).ok()
}

impl NsecCache {
    /// Most spans remembered per core.
    pub(crate) const MAX_SPANS: usize = 16_384;
    /// Most bytes of source entries held per core (counted per span):
    /// validated denials are small, but a zone's owner decides their size.
    pub(crate) const MAX_BYTES: usize = 8 << 20;

    /// Forget everything (settings changed, or an operator flush).
    pub(crate) fn clear(&mut self) {
        self.zones.clear();
        self.nsec3.clear();
        self.spans = 0;
        self.bytes = 0;
    }

    /// Spans held, and the bytes they count.
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        (self.spans, self.bytes)
    }

    /// Remember the NSEC records of `zone` in the validated negative
    /// `entry` (stored with its DNSSEC records), good until the entry
    /// expires.
    pub(crate) fn learn(&mut self, zone: &Name<'_>, entry: &Entry) {
        let Ok(message) = Message::parse(entry.wire()) else {
            return;
        };
        let mut zone_wire = WireNameBuf::new();
        zone.write_lower(&mut zone_wire);
        for record in message.records(Section::Authority) {
            if !record.name().is_subdomain_of(zone) {
                continue;
            }
            let rr = Rr::from_record(&record);
            let (next, params) = match record.rtype() {
                RecordType::NSEC => match Nsec::parse(&rr) {
                    Some(nsec) => (Some(NameBuf::from_name(&nsec.next).to_lowercase()), None),
                    None => continue,
                },
                RecordType::NSEC3 => match Nsec3::parse(&rr) {
                    // SHA-1 only; an opt-out span proves nothing secure.
                    Some(nsec3)
                        if nsec3.hash_algorithm == 1 && nsec3.flags & Nsec3::OPT_OUT == 0 =>
                    {
                        (
                            None,
                            Some(Nsec3Params {
                                salt: nsec3.salt.to_vec(),
                                iterations: nsec3.iterations,
                            }),
                        )
                    }
                    _ => continue,
                },
                _ => continue,
            };
            let size = entry.wire().len();
            if self.spans >= Self::MAX_SPANS || self.bytes + size > Self::MAX_BYTES {
                self.clear();
            }
            if let Some(params) = params {
                // A zone re-signed with other parameters starts over.
                if self.nsec3.get(zone_wire.as_slice()) != Some(&params) {
                    if let Some(old) = self.zones.remove(zone_wire.as_slice()) {
                        self.spans -= old.len().min(self.spans);
                        let freed: usize = old.values().map(|span| span.entry.wire().len()).sum();
                        self.bytes -= freed.min(self.bytes);
                    }
                    self.nsec3.insert(zone_wire.clone(), params);
                }
            }
            let span = Span {
                entry: entry.clone(),
                next,
                until: entry.expires_at(),
            };
            let spans = self.zones.entry(zone_wire.clone()).or_default();
            match spans.insert(canonical_key(&record.name()), span) {
                None => self.spans += 1,
                Some(old) => self.bytes -= old.entry.wire().len().min(self.bytes),
            }
            self.bytes += size;
        }
    }

    /// The span of `zone` with the greatest owner at or before `name`, if
    /// fresh at `now`.
    fn before(&self, zone: &[u8], name: &Name<'_>, now: Timestamp) -> Option<(NameBuf, &Span)> {
        let spans = self.zones.get(zone)?;
        let (key, span) = spans.range(..=canonical_key(name)).next_back()?;
        if now >= span.until {
            return None;
        }
        Some((name_of(key)?, span))
    }

    /// The deepest zone with spans that `name` is in.
    fn zone_of(&self, name: &Name<'_>) -> Option<NameBuf> {
        let labels = name.label_count();
        (0..=labels).rev().find_map(|count| {
            let zone = suffix(name, count)?;
            self.zones.contains_key(zone.as_wire()).then_some(zone)
        })
    }

    /// A validated denial for `key` built from the remembered NSEC
    /// records, or `None` when they do not prove one (the caller asks
    /// upstream as usual). The entry carries AD and is stored as the
    /// validator would have stored the upstream's answer.
    pub(crate) fn synthesise(
        &self,
        key: &QueryKey,
        now: Timestamp,
        policy: &CachePolicy,
        config: &heimdall_dnssec::Config,
    ) -> Option<Entry> {
        if self.spans == 0 {
            return None;
        }
        let qname = Name::from_wire(&key.name).ok()?;
        let zone = self.zone_of(&qname)?;
        let (sources, rcode) = match self.nsec3.get(zone.as_wire()) {
            Some(params) if params.iterations <= config.nsec3_max_iterations => {
                self.nsec3_sources(&zone, &qname, key.qtype, params, now)?
            }
            Some(_) => return None,
            None => self.nsec_sources(&zone, &qname, key.qtype, now)?,
        };
        let until = sources.iter().map(|(entry, _)| entry.expires_at()).min()?;
        let left = u32::try_from(until.as_millis().saturating_sub(now.as_millis()) / 1000)
            .unwrap_or(u32::MAX);
        if left == 0 {
            return None;
        }
        let message = build(key, &qname, rcode, &sources)?;
        let parsed = Message::parse(&message).ok()?;
        let records: Vec<Rr<'_>> = parsed
            .records(Section::Authority)
            .map(|record| Rr::from_record(&record))
            .collect();
        let zone_name = zone.as_name();
        let proved = if rcode == Rcode::NXDOMAIN {
            prove_nxdomain(&qname, &zone_name, &records, config)
        } else {
            prove_nodata(&qname, key.qtype, &zone_name, &records, config)
        };
        proved.ok()?;
        let options = StoreOptions {
            authentic: Some(true),
            strip_dnssec: !key.dnssec_ok,
            ede: 0,
            max_ttl: Some(left),
            trim: Trim::ToProof,
            use_once: false,
        };
        Entry::from_response_with(key, &parsed, now, policy, options)
            .ok()
            .flatten()
    }

    /// The NSEC records that would deny `qname` / `qtype` in `zone`, and
    /// the rcode they would prove.
    fn nsec_sources(
        &self,
        zone: &NameBuf,
        qname: &Name<'_>,
        qtype: RecordType,
        now: Timestamp,
    ) -> Option<(Sources<'_>, Rcode)> {
        let (owner, span) = self.before(zone.as_wire(), qname, now)?;
        let next = span.next.as_ref()?;
        let mut sources: Sources<'_> = vec![(&span.entry, owner.clone())];
        let rcode = if owner.as_name().eq_ignore_case(qname) {
            if qtype == RecordType::DS || qtype == RecordType::ANY {
                return None;
            }
            Rcode::NOERROR
        } else {
            // The closest encloser: the deepest ancestor of the name that
            // the covering NSEC shows to exist (RFC 8198 section 5.2).
            let closest = common_labels(qname, &owner.as_name())
                .max(common_labels(qname, &next.as_name()))
                .max(zone.as_name().label_count());
            let encloser = suffix(qname, closest)?;
            let mut wire = vec![1, b'*'];
            wire.extend_from_slice(encloser.as_wire());
            let wildcard = NameBuf::from_wire(&wire).ok()?;
            let (wild_owner, wild_span) = self.before(zone.as_wire(), &wildcard.as_name(), now)?;
            if !wild_owner.as_name().eq_ignore_case(&owner.as_name()) {
                sources.push((&wild_span.entry, wild_owner));
            }
            Rcode::NXDOMAIN
        };
        Some((sources, rcode))
    }

    /// The NSEC3 records that would deny `qname` / `qtype` in `zone`
    /// (RFC 5155 section 8.4 and 8.5), and the rcode they would prove.
    fn nsec3_sources(
        &self,
        zone: &NameBuf,
        qname: &Name<'_>,
        qtype: RecordType,
        params: &Nsec3Params,
        now: Timestamp,
    ) -> Option<(Sources<'_>, Rcode)> {
        let zone_labels = zone.as_name().label_count();
        let hashed = |name: &Name<'_>| -> Option<NameBuf> {
            let hash = nsec3_hash(name, &params.salt, params.iterations);
            let label = data_encoding::BASE32HEX_NOPAD
                .encode(&hash)
                .to_ascii_lowercase();
            let mut wire = vec![u8::try_from(label.len()).ok()?];
            wire.extend_from_slice(label.as_bytes());
            wire.extend_from_slice(zone.as_wire());
            NameBuf::from_wire(&wire).ok()
        };
        // The NSEC3 whose hash matches `name`, if remembered and fresh.
        let matching = |name: &Name<'_>| -> Option<(NameBuf, &Span)> {
            let owner = hashed(name)?;
            let (found, span) = self.before(zone.as_wire(), &owner.as_name(), now)?;
            found
                .as_name()
                .eq_ignore_case(&owner.as_name())
                .then_some((found, span))
        };
        // The NSEC3 that covers `name`'s hash: the greatest owner below
        // it, or the last of the chain when the hash sorts first.
        let covering = |name: &Name<'_>| -> Option<(NameBuf, &Span)> {
            let owner = hashed(name)?;
            self.before(zone.as_wire(), &owner.as_name(), now)
                .or_else(|| self.last(zone.as_wire(), now))
        };
        let mut closest = None;
        for labels in (zone_labels..=qname.label_count()).rev() {
            let candidate = suffix(qname, labels)?;
            if let Some(found) = matching(&candidate.as_name()) {
                closest = Some((labels, found));
                break;
            }
        }
        let (labels, (ce_owner, ce_span)) = closest?;
        let mut sources: Sources<'_> = vec![(&ce_span.entry, ce_owner)];
        if labels == qname.label_count() {
            if qtype == RecordType::DS || qtype == RecordType::ANY {
                return None;
            }
            return Some((sources, Rcode::NOERROR));
        }
        let next_closer = suffix(qname, labels + 1)?;
        let encloser = suffix(qname, labels)?;
        let mut wire = vec![1, b'*'];
        wire.extend_from_slice(encloser.as_wire());
        let wildcard = NameBuf::from_wire(&wire).ok()?;
        for name in [next_closer, wildcard] {
            let (owner, span) = covering(&name.as_name())?;
            if !sources
                .iter()
                .any(|(_, seen)| seen.as_name().eq_ignore_case(&owner.as_name()))
            {
                sources.push((&span.entry, owner));
            }
        }
        Some((sources, Rcode::NXDOMAIN))
    }

    /// The last span of `zone` in canonical order, if fresh.
    fn last(&self, zone: &[u8], now: Timestamp) -> Option<(NameBuf, &Span)> {
        let (key, span) = self.zones.get(zone)?.iter().next_back()?;
        if now >= span.until {
            return None;
        }
        Some((name_of(key)?, span))
    }
}

/// The reply to `key`: `rcode`, AD, and in the authority section the SOA
/// of the first source and each source's NSEC or NSEC3 at its owner, each
/// RRset with its RRSIGs.
fn build(
    key: &QueryKey,
    qname: &Name<'_>,
    rcode: Rcode,
    sources: &[(&Entry, NameBuf)],
) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let mut builder = MessageBuilder::new(&mut buf).ok()?;
    builder.set_flags(
        Flags(Flags::QR | Flags::RA)
            .with_authentic_data(true)
            .with_rcode(rcode),
    );
    builder.question(qname, key.qtype, key.qclass).ok()?;
    let wanted = |rtype: RecordType, covered: Option<RecordType>, want: RecordType| {
        rtype == want || covered == Some(want)
    };
    for (index, (entry, owner)) in sources.iter().enumerate() {
        let message = Message::parse(entry.wire()).ok()?;
        for record in message.records(Section::Authority) {
            let rtype = record.rtype();
            let covered = (rtype == RecordType::RRSIG)
                .then(|| match record.rdata_bytes() {
                    [high, low, ..] => Some(RecordType(u16::from_be_bytes([*high, *low]))),
                    _ => None,
                })
                .flatten();
            let soa = index == 0 && wanted(rtype, covered, RecordType::SOA);
            let nsec = (wanted(rtype, covered, RecordType::NSEC)
                || wanted(rtype, covered, RecordType::NSEC3))
                && record.name().eq_ignore_case(&owner.as_name());
            if soa || nsec {
                builder.copy_record(Section::Authority, &record).ok()?;
            }
        }
    }
    if builder.truncated() {
        return None;
    }
    let len = builder.finish();
    buf.truncate(len);
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_keys_sort_as_rfc_4034_says() {
        // RFC 4034 section 6.1's example, in order.
        let names = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let keys: Vec<CanonicalKey> = names
            .iter()
            .map(|text| canonical_key(&NameBuf::from_presentation(text).unwrap().as_name()))
            .collect();
        for pair in keys.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
    }

    #[test]
    fn the_span_table_is_bounded() {
        // A validated-looking negative entry with one NSEC, per name.
        let policy = CachePolicy::default();
        let zone = NameBuf::from_presentation("example.").unwrap();
        let entry_for = |i: usize| {
            let owner = NameBuf::from_presentation(&format!("n{i:06}.example.")).unwrap();
            let next = NameBuf::from_presentation(&format!("n{i:06}a.example.")).unwrap();
            let mut key_name = WireNameBuf::new();
            owner.as_name().write_lower(&mut key_name);
            let key = QueryKey {
                name: key_name,
                qtype: RecordType::A,
                qclass: heimdall_wire::Class::IN,
                dnssec_ok: true,
                checking_disabled: false,
            };
            let mut buf = vec![0u8; 1024];
            let mut builder = MessageBuilder::new(&mut buf).unwrap();
            builder.set_flags(Flags(Flags::QR | Flags::RA).with_rcode(Rcode::NOERROR));
            builder
                .question(&owner.as_name(), RecordType::A, heimdall_wire::Class::IN)
                .unwrap();
            let soa = heimdall_wire::Soa {
                mname: zone.as_name(),
                rname: zone.as_name(),
                serial: 1,
                refresh: 3600,
                retry: 600,
                expire: 86400,
                minimum: 300,
            };
            builder
                .record(
                    Section::Authority,
                    &zone.as_name(),
                    RecordType::SOA,
                    heimdall_wire::Class::IN,
                    300,
                    &heimdall_wire::RData::Soa(soa),
                )
                .unwrap();
            let mut nsec = next.as_wire().to_vec();
            nsec.extend_from_slice(&[0, 1, 0x40]);
            builder
                .record(
                    Section::Authority,
                    &owner.as_name(),
                    RecordType::NSEC,
                    heimdall_wire::Class::IN,
                    300,
                    &heimdall_wire::RData::Unknown(&nsec),
                )
                .unwrap();
            let len = builder.finish();
            buf.truncate(len);
            let message = Message::parse(&buf).unwrap();
            Entry::from_response_with(
                &key,
                &message,
                Timestamp::ZERO,
                &policy,
                StoreOptions::default(),
            )
            .unwrap()
            .unwrap()
        };
        let mut cache = NsecCache::default();
        cache.learn(&zone.as_name(), &entry_for(0));
        assert_eq!(cache.size().0, 1);
        cache.learn(&zone.as_name(), &entry_for(0));
        assert_eq!(cache.size().0, 1, "the same NSEC again replaces it");
        let one = cache.size().1;
        for i in 1..=NsecCache::MAX_SPANS + 10 {
            cache.learn(&zone.as_name(), &entry_for(i));
            let (spans, bytes) = cache.size();
            assert!(spans <= NsecCache::MAX_SPANS && bytes <= NsecCache::MAX_BYTES);
        }
        assert!(cache.size().0 < NsecCache::MAX_SPANS, "started over");
        assert_eq!(cache.size().1, cache.size().0 * one);
        cache.clear();
        assert_eq!(cache.size(), (0, 0));
    }

    #[test]
    fn suffixes_and_common_labels() {
        let name = NameBuf::from_presentation("a.B.example.").unwrap();
        let other = NameBuf::from_presentation("c.b.example.").unwrap();
        assert_eq!(common_labels(&name.as_name(), &other.as_name()), 2);
        assert_eq!(
            suffix(&name.as_name(), 2).unwrap().to_string(),
            "b.example."
        );
        assert_eq!(suffix(&name.as_name(), 0).unwrap().to_string(), ".");
    }
}
