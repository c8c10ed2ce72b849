//! DNSSEC validation of upstream answers (RFC 4033-4035, 5155, 6840): the
//! step of the reply check that judges what an accepted reply says, with
//! the heimdall-dnssec crate doing the cryptography and the proofs.
//!
//! [`Validator::evaluate`] is sans-IO like the rest of the engine: it
//! reads the DNSKEY and DS records it needs from the cache shard, where
//! they sit under their own keys (DO and CD set: raw, as the upstream
//! sent them), and when one is missing it says which ([`Step::Need`]); the
//! engine fetches it as a sub-query through the in-flight table (so it is
//! coalesced, cached and bounded like any query) and evaluates again when
//! it arrives. A zone's DNSKEY RRset, once validated, is remembered in a
//! [`KeyCache`] (bounded, until its entry, its signatures or its DS
//! expire), so a miss in a known zone costs one signature check; so is a
//! proven insecure delegation, so a miss below it costs none.
//!
//! The chain of trust is built from the deepest trust anchor above the
//! signer down: a zone's DNSKEY RRset is trusted when a trust anchor or
//! the parent's validated DS RRset vouches for it; a proven absence of DS
//! at a delegation (NSEC/NSEC3 with NS and without DS, or an opt-out span)
//! makes everything below insecure. An RRset without signatures is
//! insecure only when such a cut is proven above it (walking the DS of
//! each ancestor from the anchor down), else bogus. Answers: every RRset
//! of the answer section (so a CNAME chain link by link), a wildcard
//! expansion with its no-closer-match proof, and for NXDOMAIN and NODATA
//! (at the end of any chain) the NSEC/NSEC3 denial.
//!
//! The wall-clock time signatures are judged against comes from
//! `DnssecConfig::unix_secs`: the runtime's Unix time of the monotonic
//! epoch plus `now`; nothing here reads a clock.

use core::cell::{Cell, RefCell};

use hashbrown::HashMap;

use heimdall_cache::{Cache, Entry, EntryKind, EntryView, Timestamp, Trim};
use heimdall_dnssec::{
    Bogus, Failure, Nsec, Nsec3, Rr, Rrsig, VerifiedSignatures, prove_nodata, prove_nxdomain,
    prove_wildcard_answer, validate_rrset, validate_rrset_memo, verify_dnskeys_with_anchors,
    verify_dnskeys_with_ds,
};
use heimdall_wire::{
    Class, Message, Name, NameBuf, QueryKey, Rcode, RecordType, Section, WireNameBuf,
};

use crate::config::DnssecConfig;

/// How deep the chain may recurse (zone to parent to ...): names have at
/// most 127 labels, so this only guards against a loop.
const MAX_DEPTH: usize = 130;

/// The verdict on one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every RRset and the denial validated: AD.
    Secure,
    /// Validly unsigned (an insecure delegation, a negative trust anchor,
    /// no anchor above, an unsupported algorithm): no AD, and the EDE of
    /// the reason when it has one.
    Insecure(Option<u16>),
    /// Must not be used: SERVFAIL with the reason's EDE.
    Bogus(Bogus),
    /// A DNSKEY or DS needed could not be had (the upstream failed, or
    /// the query's sub-query budget ran out): SERVFAIL, EDE 5.
    Indeterminate,
}

/// A DNSKEY or DS RRset the cache lacks: fetch it (with DO and CD), then
/// evaluate again. Boxed where it travels: a name is 255 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fetch {
    pub(crate) name: WireNameBuf,
    pub(crate) rtype: RecordType,
}

/// What an evaluation came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Done(Verdict),
    Need(Box<Fetch>),
}

/// Why an evaluation stopped early.
enum Stop {
    Verdict(Verdict),
    Need(Box<Fetch>),
}

type Eval<T> = Result<T, Stop>;

fn bogus(reason: Bogus) -> Stop {
    Stop::Verdict(Verdict::Bogus(reason))
}

/// A zone's keys, as far as the chain goes.
enum Keys<'a> {
    /// The validated DNSKEY RRset.
    Secure(Vec<Rr<'a>>),
    /// The zone is below an insecure cut (or no anchor covers it).
    Insecure(Option<u16>),
}

/// What the parent says about a name's DS.
enum DsSet<'a> {
    /// A validated DS RRset (a secure delegation), and until when.
    Secure(Vec<Rr<'a>>, Timestamp),
    /// A proven insecure delegation (or an insecure parent).
    Insecure(Option<u16>),
    /// Proven not to be a delegation at all (no DS, no NS).
    NotACut,
}

/// The cache key a DNSKEY or DS sub-query is stored under.
pub(crate) fn subquery_key(name: &[u8], rtype: RecordType) -> QueryKey {
    let mut lower = WireNameBuf::new();
    match Name::from_wire(name) {
        Ok(name) => name.write_lower(&mut lower),
        Err(_) => lower.push(0),
    }
    QueryKey {
        name: lower,
        qtype: rtype,
        qclass: Class::IN,
        dnssec_ok: true,
        checking_disabled: true,
    }
}

/// Validated DNSKEY RRsets by zone (lower-case wire name): the cache
/// entry they were read from and until when the verdict holds; and the
/// proven insecure delegations (no DS), with the EDE of the reason.
/// Bounded: a full map starts over.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    zones: HashMap<WireNameBuf, (Entry, Timestamp)>,
    insecure: HashMap<WireNameBuf, (Option<u16>, Timestamp)>,
    /// Signatures already verified (heimdall-dnssec's memo): a denial
    /// under a known zone repeats its SOA and two of its three NSEC3
    /// RRsets, which then cost a hash instead of a signature check.
    verified: RefCell<VerifiedSignatures>,
}

impl KeyCache {
    /// Most zones remembered.
    pub(crate) const MAX_ZONES: usize = 4096;

    /// Forget every zone (settings changed, or an operator flush).
    pub(crate) fn clear(&mut self) {
        self.zones.clear();
        self.insecure.clear();
        self.verified.get_mut().clear();
    }

    /// Verifications the signature memo saved since the start.
    pub(crate) fn signatures_remembered(&self) -> u64 {
        self.verified.try_borrow().map_or(0, |memo| memo.hits())
    }

    /// Remember what an evaluation learned.
    pub(crate) fn learn(&mut self, learned: Learned) {
        match learned {
            Learned::Keys(zone, entry, until) => self.insert(zone, entry, until),
            Learned::Insecure(cut, ede, until) => {
                if self.insecure.len() >= Self::MAX_ZONES && !self.insecure.contains_key(&cut) {
                    self.insecure.clear();
                }
                self.insecure.insert(cut, (ede, until));
            }
        }
    }

    /// Whether `cut` is a proven insecure delegation at `now` (and the
    /// EDE of the reason).
    fn insecure_at(&self, cut: &[u8], now: Timestamp) -> Option<Option<u16>> {
        self.insecure
            .get(cut)
            .filter(|(_, until)| now < *until)
            .map(|(ede, _)| *ede)
    }

    /// Remember `zone`'s validated DNSKEY `entry` until `until`.
    pub(crate) fn insert(&mut self, zone: WireNameBuf, entry: Entry, until: Timestamp) {
        if self.zones.len() >= Self::MAX_ZONES && !self.zones.contains_key(&zone) {
            self.zones.clear();
        }
        self.zones.insert(zone, (entry, until));
    }

    /// The validated DNSKEY entry of `zone` at `now`, if still good.
    fn get(&self, zone: &[u8], now: Timestamp) -> Option<&Entry> {
        self.zones
            .get(zone)
            .filter(|(_, until)| now < *until)
            .map(|(entry, _)| entry)
    }

    /// Zones remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.zones.len()
    }
}

/// What an evaluation validated, for the [`KeyCache`].
pub(crate) enum Learned {
    /// A zone's DNSKEY entry, good until then.
    Keys(WireNameBuf, Entry, Timestamp),
    /// A proven insecure delegation, good until then.
    Insecure(WireNameBuf, Option<u16>, Timestamp),
}

/// The validator for one evaluation: the cache it reads keys from and
/// the time.
pub(crate) struct Validator<'a> {
    cache: &'a Cache,
    known: &'a KeyCache,
    /// Zones whose keys this evaluation validated.
    learned: RefCell<Vec<Learned>>,
    config: &'a DnssecConfig,
    now: Timestamp,
    /// The lowest [`heimdall_dnssec::Secure::ttl`] of the answer's
    /// RRsets and denial records so far: no TTL of a secure answer may
    /// outlive a signature (RFC 4035 section 5.3.3).
    ttl_cap: Cell<u32>,
    /// The zones whose NSEC/NSEC3/SOA records of the answer's authority
    /// section were validated as a denial or wildcard proof.
    proof_zones: RefCell<Vec<NameBuf>>,
    /// A DNSKEY or DS reply this evaluation read had no RRSIG at all
    /// where it needed one: with an unsigned answer, the mark of an
    /// upstream that strips DNSSEC records rather than of one RRset whose
    /// signature is missing in the zone.
    unsigned_chain: Cell<bool>,
}

/// The records of `section` as validator views.
fn section<'a>(message: &Message<'a>, section: Section) -> Vec<Rr<'a>> {
    message
        .records(section)
        .map(|record| Rr::from_record(&record))
        .collect()
}

/// Whether `message` has an RRSIG in any section.
pub(crate) fn has_rrsig(message: &Message<'_>) -> bool {
    [Section::Answer, Section::Authority, Section::Additional]
        .into_iter()
        .any(|section| {
            message
                .records(section)
                .any(|record| record.rtype() == RecordType::RRSIG)
        })
}

/// `records` grouped into RRsets (RRSIGs and OPT left out), in order of
/// first appearance.
fn rrsets<'a>(records: &[Rr<'a>]) -> Vec<Vec<Rr<'a>>> {
    let mut sets: Vec<Vec<Rr<'a>>> = Vec::new();
    for rr in records {
        if matches!(rr.rtype(), RecordType::RRSIG | RecordType::OPT) {
            continue;
        }
        let place = sets.iter_mut().find(|set| {
            set.first().is_some_and(|first| {
                first.rtype() == rr.rtype()
                    && first.class() == rr.class()
                    && first.owner().eq_ignore_case(&rr.owner())
            })
        });
        match place {
            Some(set) => set.push(*rr),
            None => sets.push(vec![*rr]),
        }
    }
    sets
}

/// The RRSIGs in `records` that cover the RRset of `owner` and `rtype`.
fn covering<'a>(records: &[Rr<'a>], owner: &Name<'_>, rtype: RecordType) -> Vec<Rr<'a>> {
    records
        .iter()
        .filter(|rr| rr.rtype() == RecordType::RRSIG && rr.owner().eq_ignore_case(owner))
        .filter(|rr| Rrsig::parse(rr).is_some_and(|sig| sig.type_covered == rtype))
        .copied()
        .collect()
}

/// The signer the RRSIGs name (the first that parses).
fn signer_of(rrsigs: &[Rr<'_>]) -> Option<NameBuf> {
    rrsigs
        .iter()
        .find_map(Rrsig::parse)
        .map(|sig| NameBuf::from_name(&sig.signer).to_lowercase())
}

/// `name` cut down to its last `labels` labels.
fn suffix(name: &Name<'_>, labels: usize) -> Option<NameBuf> {
    let mut wire = WireNameBuf::new();
    name.write_lower(&mut wire);
    let mut skip = name.label_count().checked_sub(labels)?;
    let mut at = 0usize;
    while skip > 0 {
        at += 1 + usize::from(*wire.get(at)?);
        skip -= 1;
    }
    NameBuf::from_wire(wire.get(at..)?).ok()
}

fn as_insecure(failure: Failure) -> Eval<Option<u16>> {
    match failure {
        Failure::Insecure(reason) => Ok(reason.ede()),
        Failure::Bogus(reason) => Err(bogus(reason)),
    }
}

/// The DNSKEY records of `zone` in the answer section of `message`.
fn zone_keys<'a>(message: &Message<'a>, zone: &Name<'_>) -> Vec<Rr<'a>> {
    message
        .records(Section::Answer)
        .filter(|record| record.rtype() == RecordType::DNSKEY && record.name().eq_ignore_case(zone))
        .map(|record| Rr::from_record(&record))
        .collect()
}

/// The target of the CNAME at `owner` in the answer section.
fn cname_target(message: &Message<'_>, owner: &Name<'_>) -> Option<NameBuf> {
    message.records(Section::Answer).find_map(|record| {
        if record.rtype() != RecordType::CNAME || !record.name().eq_ignore_case(owner) {
            return None;
        }
        match record.rdata() {
            Ok(heimdall_wire::RData::Cname(target)) => Some(NameBuf::from_name(&target)),
            _ => None,
        }
    })
}

/// Whether the CNAME `owner` -> `target` is what a DNAME of the answer
/// section synthesises: `owner` below the DNAME's owner, and `target` the
/// same labels in front of the DNAME's target.
fn synthesised_from_dname(message: &Message<'_>, owner: &Name<'_>, target: &NameBuf) -> bool {
    let mut owner_wire = WireNameBuf::new();
    owner.write_lower(&mut owner_wire);
    message.records(Section::Answer).any(|record| {
        let Ok(heimdall_wire::RData::Dname(dname_target)) = record.rdata() else {
            return false;
        };
        let dname_owner = record.name();
        if record.rtype() != RecordType::DNAME
            || !owner.is_subdomain_of(&dname_owner)
            || owner.label_count() <= dname_owner.label_count()
        {
            return false;
        }
        let mut suffix = WireNameBuf::new();
        dname_owner.write_lower(&mut suffix);
        let Some(prefix) = owner_wire.get(..owner_wire.len().saturating_sub(suffix.len())) else {
            return false;
        };
        let mut tail = WireNameBuf::new();
        dname_target.write_lower(&mut tail);
        let mut expected = Vec::with_capacity(prefix.len() + tail.len());
        expected.extend_from_slice(prefix);
        expected.extend_from_slice(&tail);
        NameBuf::from_wire(&expected)
            .is_ok_and(|expected| expected.as_name().eq_ignore_case(&target.as_name()))
    })
}

/// Whether the validated denial `records` show `name` as a delegation
/// (NS in the type bitmap of the NSEC or NSEC3 that matches it).
fn delegation_bit(name: &Name<'_>, records: &[Rr<'_>]) -> bool {
    for rr in records {
        if rr.rtype() == RecordType::NSEC
            && rr.owner().eq_ignore_case(name)
            && let Some(nsec) = Nsec::parse(rr)
        {
            return nsec.types.contains(RecordType::NS);
        }
        if rr.rtype() == RecordType::NSEC3
            && let Some(nsec3) = Nsec3::parse(rr)
        {
            let hash = heimdall_dnssec::nsec3_hash(name, nsec3.salt, nsec3.iterations);
            let label = data_encoding::BASE32HEX_NOPAD.encode(&hash);
            let first = rr.owner().labels().next().unwrap_or_default();
            if first.eq_ignore_ascii_case(label.as_bytes()) {
                return nsec3.types.contains(RecordType::NS);
            }
        }
    }
    false
}

impl<'a> Validator<'a> {
    /// A validator reading keys from `cache` at `now`.
    pub(crate) fn new(
        cache: &'a Cache,
        known: &'a KeyCache,
        config: &'a DnssecConfig,
        now: Timestamp,
    ) -> Self {
        Self {
            cache,
            known,
            learned: RefCell::new(Vec::new()),
            config,
            now,
            ttl_cap: Cell::new(u32::MAX),
            proof_zones: RefCell::new(Vec::new()),
            unsigned_chain: Cell::new(false),
        }
    }

    /// Whether a DNSKEY or DS reply of the chain came without any RRSIG
    /// where one was needed (see the field).
    pub(crate) fn saw_unsigned_chain(&self) -> bool {
        self.unsigned_chain.get()
    }

    /// After a secure verdict: what the stored answer keeps besides its
    /// answer section. Only what was validated: the denial or wildcard
    /// proof when there was one (every SOA, NSEC and NSEC3 RRset of the
    /// authority section, each checked with its zone's keys), else
    /// nothing. NS RRsets and glue are not validated (a stub has no use
    /// for them and a signature check each would cost more than they are
    /// worth), so a secure answer goes out without them, as Unbound's
    /// `val-clean-additional` does for the additional section.
    pub(crate) fn trim(&self) -> Trim {
        if self.proof_zones.borrow().is_empty() {
            Trim::ToAnswer
        } else {
            Trim::ToProof
        }
    }

    /// After a secure verdict: the zone of the NSEC/NSEC3 proof, when
    /// there was exactly one (the records [`crate::aggressive`] may
    /// remember).
    pub(crate) fn proof_zone(&self) -> Option<NameBuf> {
        match self.proof_zones.borrow().as_slice() {
            [zone] => Some(zone.clone()),
            _ => None,
        }
    }

    /// Whether a proof record of `authority` (an SOA, NSEC or NSEC3
    /// RRset, or an RRSIG over one) lies outside every zone a proof was
    /// validated for: nothing checked it, and it would reach the client
    /// under AD.
    fn stray_proof_records(&self, authority: &[Rr<'_>]) -> bool {
        let zones = self.proof_zones.borrow();
        authority.iter().any(|rr| {
            let rtype = match rr.rtype() {
                RecordType::RRSIG => match Rrsig::parse(rr) {
                    Some(sig) => sig.type_covered,
                    None => return true,
                },
                other => other,
            };
            matches!(
                rtype,
                RecordType::SOA | RecordType::NSEC | RecordType::NSEC3
            ) && !zones
                .iter()
                .any(|zone| rr.owner().is_subdomain_of(&zone.as_name()))
        })
    }

    /// The zones whose keys were validated, for the [`KeyCache`].
    pub(crate) fn take_learned(&self) -> Vec<Learned> {
        self.learned.take()
    }

    /// After a secure verdict: the longest the answer may be cached, by
    /// its signatures (`u32::MAX` when none was checked).
    pub(crate) fn ttl_cap(&self) -> u32 {
        self.ttl_cap.get()
    }

    fn cap(&self, ttl: u32) {
        self.ttl_cap.set(self.ttl_cap.get().min(ttl));
    }

    fn unix(&self) -> u64 {
        self.config.unix_secs(self.now)
    }

    /// Whether a negative trust anchor covers `name`.
    fn negative(&self, name: &Name<'_>) -> bool {
        self.config
            .negative_anchors
            .iter()
            .any(|anchor| name.is_subdomain_of(&anchor.as_name()))
    }

    /// The cached entry for a sub-query, or what to fetch.
    fn fetch_entry(&self, name: &Name<'_>, rtype: RecordType) -> Eval<&'a EntryView> {
        let mut wire = WireNameBuf::new();
        name.write_lower(&mut wire);
        let key = subquery_key(&wire, rtype);
        let entry: Option<&'a EntryView> = self.cache.peek(&key);
        match entry {
            Some(entry) if entry.is_fresh(self.now) => {
                if entry.kind() == EntryKind::ServFail {
                    return Err(Stop::Verdict(Verdict::Indeterminate));
                }
                Ok(entry)
            }
            _ => Err(Stop::Need(Box::new(Fetch {
                name: key.name,
                rtype,
            }))),
        }
    }

    /// Judge the reply `message` to `qname` / `qtype`.
    pub(crate) fn evaluate(
        &self,
        qname: &Name<'_>,
        qtype: RecordType,
        message: &Message<'_>,
    ) -> Step {
        match self.answer(qname, qtype, message) {
            Ok(verdict) | Err(Stop::Verdict(verdict)) => Step::Done(verdict),
            Err(Stop::Need(fetch)) => Step::Need(fetch),
        }
    }

    fn answer(&self, qname: &Name<'_>, qtype: RecordType, message: &Message<'_>) -> Eval<Verdict> {
        if self.negative(qname) || self.config.anchors.closest(qname).is_none() {
            return Ok(Verdict::Insecure(None));
        }
        let answer = section(message, Section::Answer);
        let authority = section(message, Section::Authority);
        let mut verdict = Verdict::Secure;
        let mut merge = |next: Verdict| {
            if let (Verdict::Secure, Verdict::Insecure(_)) = (verdict, next) {
                verdict = next;
            }
        };
        // The name the chain has reached, and whether it ended in data.
        let mut current = NameBuf::from_name(qname).to_lowercase();
        let mut answered = false;
        for rrset in rrsets(&answer) {
            let Some(first) = rrset.first() else {
                continue;
            };
            let owner = first.owner();
            let rtype = first.rtype();
            let sigs = covering(&answer, &owner, rtype);
            // A CNAME synthesised from a DNAME (RFC 6672) is unsigned; the
            // DNAME it follows from is validated as an RRset of its own.
            let synthesised = rtype == RecordType::CNAME
                && sigs.is_empty()
                && cname_target(message, &owner)
                    .is_some_and(|target| synthesised_from_dname(message, &owner, &target));
            if !synthesised {
                merge(self.rrset(&rrset, &sigs, &authority, 0)?);
            }
            if owner.eq_ignore_case(&current.as_name()) {
                if rtype == qtype || qtype == RecordType::ANY {
                    answered = true;
                } else if rtype == RecordType::CNAME
                    && let Some(target) = cname_target(message, &owner)
                {
                    current = target.to_lowercase();
                }
            }
        }
        let rcode = message.rcode();
        let claims_denial = rcode == Rcode::NXDOMAIN
            || authority.iter().any(|rr| {
                matches!(
                    rr.rtype(),
                    RecordType::SOA | RecordType::NSEC | RecordType::NSEC3
                )
            });
        if !answered && claims_denial {
            merge(self.denial(&current.as_name(), qtype, rcode, &authority, 0)?);
        } else if !claims_denial && rrsets(&answer).is_empty() {
            // Nothing at all (a referral, or everything stripped): only
            // acceptable where the data is unsigned anyway.
            return self.prove_insecure(qname, 0).map(Verdict::Insecure);
        }
        // A proof validated for some zones, next to SOA/NSEC/NSEC3
        // records of another: those were not checked, and only an
        // injection puts them there (a proof comes from the zones it
        // proves for). Without any proof they are simply left out
        // ([`Validator::trim`]).
        if verdict == Verdict::Secure
            && !self.proof_zones.borrow().is_empty()
            && self.stray_proof_records(&authority)
        {
            return Err(bogus(Bogus::BadDenial));
        }
        Ok(verdict)
    }

    /// heimdall-dnssec's `validate_rrset` at this evaluation's time, with
    /// the core's memo of verified signatures.
    fn validate_rrset(
        &self,
        rrset: &[Rr<'_>],
        sigs: &[Rr<'_>],
        keys: &[Rr<'_>],
    ) -> Result<heimdall_dnssec::Secure, Failure> {
        let (unix, config) = (self.unix(), &self.config.validator);
        match self.known.verified.try_borrow_mut() {
            Ok(mut memo) => validate_rrset_memo(rrset, sigs, keys, unix, config, &mut memo),
            Err(_) => validate_rrset(rrset, sigs, keys, unix, config),
        }
    }

    /// Validate one RRset of an answer (with its wildcard proof).
    fn rrset(
        &self,
        rrset: &[Rr<'_>],
        sigs: &[Rr<'_>],
        authority: &[Rr<'_>],
        depth: usize,
    ) -> Eval<Verdict> {
        let Some(first) = rrset.first() else {
            return Err(bogus(Bogus::Malformed));
        };
        let owner = first.owner();
        let Some(signer) = signer_of(sigs) else {
            return self.prove_insecure(&owner, depth).map(Verdict::Insecure);
        };
        let signer = signer.as_name();
        if !owner.is_subdomain_of(&signer) {
            return Err(bogus(Bogus::SignerMismatch));
        }
        let keys = match self.keys(&signer, depth + 1)? {
            Keys::Insecure(ede) => return Ok(Verdict::Insecure(ede)),
            Keys::Secure(keys) => keys,
        };
        let secure = match self.validate_rrset(rrset, sigs, &keys) {
            Ok(secure) => secure,
            Err(failure) => return as_insecure(failure).map(Verdict::Insecure),
        };
        self.cap(secure.ttl);
        if let Some(wildcard) = &secure.wildcard {
            let (proof, ttl) = self.validated_denial(&signer, &keys, authority)?;
            self.cap(ttl);
            self.proof_zones
                .borrow_mut()
                .push(NameBuf::from_name(&signer).to_lowercase());
            let proved = prove_wildcard_answer(
                &owner,
                &wildcard.as_name(),
                &signer,
                &proof,
                &self.config.validator,
            );
            if let Err(failure) = proved {
                return as_insecure(failure).map(Verdict::Insecure);
            }
        }
        Ok(Verdict::Secure)
    }

    /// The NSEC/NSEC3 records of `authority` signed by `zone`, each RRset
    /// validated with `keys` (SOA checked too, when present), and the
    /// lowest TTL their signatures allow.
    fn validated_denial<'r>(
        &self,
        zone: &Name<'_>,
        keys: &[Rr<'_>],
        authority: &[Rr<'r>],
    ) -> Eval<(Vec<Rr<'r>>, u32)> {
        let mut proof = Vec::new();
        let mut ttl = u32::MAX;
        for rrset in rrsets(authority) {
            let Some(first) = rrset.first() else {
                continue;
            };
            let rtype = first.rtype();
            if !matches!(
                rtype,
                RecordType::NSEC | RecordType::NSEC3 | RecordType::SOA
            ) {
                continue;
            }
            let owner = first.owner();
            if !owner.is_subdomain_of(zone) {
                continue;
            }
            let sigs = covering(authority, &owner, rtype);
            if sigs.is_empty() {
                return Err(bogus(if rtype == RecordType::SOA {
                    Bogus::RrsigsMissing
                } else {
                    Bogus::NsecMissing
                }));
            }
            match self.validate_rrset(&rrset, &sigs, keys) {
                Ok(secure) => ttl = ttl.min(secure.ttl),
                Err(failure) => {
                    // An unsupported algorithm here would have made the
                    // zone insecure already; anything else is bogus.
                    as_insecure(failure)?;
                    return Err(bogus(Bogus::BadSignature));
                }
            }
            if rtype != RecordType::SOA {
                proof.extend(rrset.iter().copied());
            }
        }
        Ok((proof, ttl))
    }

    /// Judge a denial (NXDOMAIN, or NODATA for `qtype`) of `name`.
    fn denial(
        &self,
        name: &Name<'_>,
        qtype: RecordType,
        rcode: Rcode,
        authority: &[Rr<'_>],
        depth: usize,
    ) -> Eval<Verdict> {
        if self.negative(name) {
            return Ok(Verdict::Insecure(None));
        }
        let sigs: Vec<Rr<'_>> = authority
            .iter()
            .filter(|rr| rr.rtype() == RecordType::RRSIG)
            .copied()
            .collect();
        let Some(signer) = signer_of(&sigs) else {
            return self.prove_insecure(name, depth).map(Verdict::Insecure);
        };
        let signer = signer.as_name();
        if !name.is_subdomain_of(&signer) {
            return Err(bogus(Bogus::SignerMismatch));
        }
        let keys = match self.keys(&signer, depth + 1)? {
            Keys::Insecure(ede) => return Ok(Verdict::Insecure(ede)),
            Keys::Secure(keys) => keys,
        };
        let (proof, ttl) = self.validated_denial(&signer, &keys, authority)?;
        self.cap(ttl);
        self.proof_zones
            .borrow_mut()
            .push(NameBuf::from_name(&signer).to_lowercase());
        let config = &self.config.validator;
        let proved = if rcode == Rcode::NXDOMAIN {
            prove_nxdomain(name, &signer, &proof, config)
        } else {
            prove_nodata(name, qtype, &signer, &proof, config)
        };
        match proved {
            Ok(()) => Ok(Verdict::Secure),
            Err(failure) => as_insecure(failure).map(Verdict::Insecure),
        }
    }

    /// The trusted DNSKEY RRset of `zone`, or why there is none.
    fn keys(&self, zone: &Name<'_>, depth: usize) -> Eval<Keys<'a>> {
        if depth > MAX_DEPTH {
            return Err(Stop::Verdict(Verdict::Indeterminate));
        }
        if self.negative(zone) {
            return Ok(Keys::Insecure(None));
        }
        let Some(anchor) = self.config.anchors.closest(zone) else {
            return Ok(Keys::Insecure(None));
        };
        let mut wire = WireNameBuf::new();
        zone.write_lower(&mut wire);
        if let Some(entry) = self.known.get(&wire, self.now) {
            let message = Message::parse(entry.wire()).map_err(|_| bogus(Bogus::Malformed))?;
            return Ok(Keys::Secure(zone_keys(&message, zone)));
        }
        let at_anchor = anchor.as_name().eq_ignore_case(zone);
        let (ds, ds_until) = if at_anchor {
            (None, None)
        } else {
            match self.ds_set(zone, depth + 1)? {
                DsSet::Secure(ds, until) => (Some(ds), Some(until)),
                DsSet::Insecure(ede) => return Ok(Keys::Insecure(ede)),
                // The signer named is not a zone at all.
                DsSet::NotACut => return Err(bogus(Bogus::DnskeyMissing)),
            }
        };
        let entry = self.fetch_entry(zone, RecordType::DNSKEY)?;
        let message = Message::parse(entry.wire()).map_err(|_| bogus(Bogus::Malformed))?;
        let answer = section(&message, Section::Answer);
        let dnskeys = zone_keys(&message, zone);
        if dnskeys.is_empty() {
            return Err(bogus(Bogus::DnskeyMissing));
        }
        let sigs = covering(&answer, zone, RecordType::DNSKEY);
        if sigs.is_empty() && !has_rrsig(&message) {
            self.unsigned_chain.set(true);
        }
        let (unix, config) = (self.unix(), &self.config.validator);
        let verified = match &ds {
            None => {
                verify_dnskeys_with_anchors(&dnskeys, &sigs, &self.config.anchors, unix, config)
            }
            Some(ds) => verify_dnskeys_with_ds(&dnskeys, &sigs, ds, unix, config),
        };
        match verified {
            Ok(secure) => {
                let until = entry
                    .expires_at()
                    .min(self.now.add_secs(secure.ttl))
                    .min(ds_until.unwrap_or(Timestamp::from_millis(u64::MAX)));
                self.learned
                    .borrow_mut()
                    .push(Learned::Keys(wire, entry.to_owned(), until));
                Ok(Keys::Secure(dnskeys))
            }
            Err(failure) => as_insecure(failure).map(Keys::Insecure),
        }
    }

    /// What `zone`'s parent says about its DS.
    fn ds_set(&self, zone: &Name<'_>, depth: usize) -> Eval<DsSet<'a>> {
        if depth > MAX_DEPTH {
            return Err(Stop::Verdict(Verdict::Indeterminate));
        }
        let entry = self.fetch_entry(zone, RecordType::DS)?;
        let message = Message::parse(entry.wire()).map_err(|_| bogus(Bogus::Malformed))?;
        let answer = section(&message, Section::Answer);
        let authority = section(&message, Section::Authority);
        let parent = || suffix(zone, zone.label_count().saturating_sub(1));
        let ds: Vec<Rr<'a>> = answer
            .iter()
            .filter(|rr| rr.rtype() == RecordType::DS && rr.owner().eq_ignore_case(zone))
            .copied()
            .collect();
        let sigs: Vec<Rr<'a>> = if ds.is_empty() {
            authority
                .iter()
                .filter(|rr| rr.rtype() == RecordType::RRSIG)
                .copied()
                .collect()
        } else {
            covering(&answer, zone, RecordType::DS)
        };
        let Some(signer) = signer_of(&sigs) else {
            // Unsigned: fine only below an insecure cut above the zone.
            if !has_rrsig(&message) {
                self.unsigned_chain.set(true);
            }
            let parent = parent().ok_or(bogus(Bogus::Malformed))?;
            return self
                .prove_insecure(&parent.as_name(), depth + 1)
                .map(DsSet::Insecure);
        };
        let signer = signer.as_name();
        // The DS comes from the parent side: its signer is strictly above.
        if !zone.is_subdomain_of(&signer) || signer.label_count() >= zone.label_count() {
            return Err(bogus(Bogus::SignerMismatch));
        }
        let keys = match self.keys(&signer, depth + 1)? {
            Keys::Insecure(ede) => return Ok(DsSet::Insecure(ede)),
            Keys::Secure(keys) => keys,
        };
        let config = &self.config.validator;
        if !ds.is_empty() {
            return match self.validate_rrset(&ds, &sigs, &keys) {
                Ok(secure) => {
                    let until = entry.expires_at().min(self.now.add_secs(secure.ttl));
                    Ok(DsSet::Secure(ds, until))
                }
                Err(failure) => as_insecure(failure).map(DsSet::Insecure),
            };
        }
        let (proof, proof_ttl) = self.validated_denial(&signer, &keys, &authority)?;
        let learn = |ede: Option<u16>| {
            let until = entry.expires_at().min(self.now.add_secs(proof_ttl));
            let mut cut = WireNameBuf::new();
            zone.write_lower(&mut cut);
            self.learned
                .borrow_mut()
                .push(Learned::Insecure(cut, ede, until));
            DsSet::Insecure(ede)
        };
        if message.rcode() == Rcode::NXDOMAIN {
            // The zone does not exist: nothing below it can.
            return match prove_nxdomain(zone, &signer, &proof, config) {
                Ok(()) => Err(bogus(Bogus::BadDenial)),
                Err(failure) => as_insecure(failure).map(DsSet::Insecure),
            };
        }
        match prove_nodata(zone, RecordType::DS, &signer, &proof, config) {
            Ok(()) if delegation_bit(zone, &proof) => Ok(learn(None)),
            Ok(()) => Ok(DsSet::NotACut),
            Err(failure) => as_insecure(failure).map(learn),
        }
    }

    /// Prove that unsigned data at `name` is validly unsigned: a negative
    /// trust anchor, no anchor, or a proven insecure delegation at or
    /// above it (the DS of each name from below the anchor down to
    /// `name`). Returns the EDE of the reason; bogus when no cut is found.
    fn prove_insecure(&self, name: &Name<'_>, depth: usize) -> Eval<Option<u16>> {
        if self.negative(name) {
            return Ok(None);
        }
        let Some(anchor) = self.config.anchors.closest(name) else {
            return Ok(None);
        };
        let top = anchor.as_name().label_count();
        for labels in top + 1..=name.label_count() {
            let Some(cut) = suffix(name, labels) else {
                break;
            };
            // Known from earlier evaluations: an insecure cut, or a zone
            // whose keys validated (a secure delegation).
            if let Some(ede) = self.known.insecure_at(cut.as_wire(), self.now) {
                return Ok(ede);
            }
            if self.known.get(cut.as_wire(), self.now).is_some() {
                continue;
            }
            match self.ds_set(&cut.as_name(), depth + 1)? {
                DsSet::Insecure(ede) => return Ok(ede),
                DsSet::Secure(..) | DsSet::NotACut => {}
            }
        }
        Err(bogus(Bogus::RrsigsMissing))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_cache_expires_and_is_bounded() {
        let policy = heimdall_cache::CachePolicy::default();
        let entry_for = |i: usize| {
            let name = NameBuf::from_presentation(&format!("z{i}.example.")).unwrap();
            let key = subquery_key(name.as_wire(), RecordType::DNSKEY);
            let entry =
                Entry::failure(&key, &key.name, Rcode::SERVFAIL, Timestamp::ZERO, &policy).unwrap();
            (key.name, entry)
        };
        let mut keys = KeyCache::default();
        let (zone, entry) = entry_for(0);
        keys.insert(zone.clone(), entry, Timestamp::from_secs(10));
        assert!(keys.get(&zone, Timestamp::from_secs(9)).is_some());
        assert!(
            keys.get(&zone, Timestamp::from_secs(10)).is_none(),
            "expired"
        );
        for i in 1..=KeyCache::MAX_ZONES {
            let (zone, entry) = entry_for(i);
            keys.insert(zone, entry, Timestamp::from_secs(10));
        }
        assert!(keys.len() <= KeyCache::MAX_ZONES, "{}", keys.len());
        let (cut, _) = entry_for(7);
        keys.learn(Learned::Insecure(
            cut.clone(),
            Some(27),
            Timestamp::from_secs(5),
        ));
        assert_eq!(
            keys.insecure_at(&cut, Timestamp::from_secs(4)),
            Some(Some(27))
        );
        assert_eq!(
            keys.insecure_at(&cut, Timestamp::from_secs(5)),
            None,
            "expired"
        );
        keys.clear();
        assert_eq!(keys.len(), 0);
        assert_eq!(keys.insecure_at(&cut, Timestamp::ZERO), None);
    }

    #[test]
    fn suffixes_of_a_name() {
        let name = NameBuf::from_presentation("www.Secure.test.").unwrap();
        let name = name.as_name();
        assert_eq!(suffix(&name, 0).unwrap().to_string(), ".");
        assert_eq!(suffix(&name, 2).unwrap().to_string(), "secure.test.");
        assert_eq!(suffix(&name, 3).unwrap().to_string(), "www.secure.test.");
        assert!(suffix(&name, 4).is_none());
    }
}
