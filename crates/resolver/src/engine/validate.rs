//! DNSSEC in the engine: every accepted NOERROR or NXDOMAIN reply of a
//! query that is validated (`dnssec.mode` not off, the client did not set
//! CD) is judged by module `validation` before it is stored; a query
//! whose chain needs a DNSKEY or DS the cache lacks waits for a sub-query
//! (an in-flight query of its own, keyed with DO and CD so it is
//! coalesced and cached like any other, started or joined here and
//! bounded by `DnssecConfig::max_subqueries` per query), and is judged
//! again when that completes ([`Resolver::run_resumes`]).
//!
//! The verdict is stored with the entry (AD in its header, and an EDE
//! when the reason has one), so a hit never validates again: secure
//! answers get AD (for clients that set DO or AD), insecure ones none,
//! bogus ones SERVFAIL with the reason's EDE, remembered for the failure
//! TTL (RFC 9520). Clients without DO get no RRSIG, NSEC or NSEC3 records
//! they did not ask for, though the upstream was asked with DO.

use heimdall_cache::{Entry, StoreOptions, Timestamp, Trim};
use heimdall_config::DnssecMode;
use heimdall_dnssec::Bogus;
use heimdall_wire::{Flags, Message, Name, Rcode, RecordType};

use super::Resolver;
use super::completion::Answer;
use crate::inflight::{Phase, Slot};
use crate::io::Warning;
use crate::reply::ede;
use crate::validation::{Step, Validator, Verdict, has_rrsig, subquery_key};

impl Resolver {
    /// How an unvalidated answer of `slot` is stored: the upstream's AD
    /// when validation is off; else never AD (the client set CD), and the
    /// DNSSEC records only for DO clients.
    fn plain_options(&self, dnssec_ok: bool) -> StoreOptions {
        let validates = self.config.dnssec.validates();
        StoreOptions {
            authentic: validates.then_some(false),
            strip_dnssec: validates && !dnssec_ok,
            ede: 0,
            max_ttl: None,
            trim: Trim::Keep,
            use_once: false,
        }
    }

    /// An accepted answer for `slot`: validated (when it is to be) and
    /// stored, or left waiting for a sub-query.
    pub(super) fn judge_answer(
        &mut self,
        slot: Slot,
        message: &Message<'_>,
        packet: &[u8],
        now: Timestamp,
    ) {
        let Some(inflight) = self.inflight.get(slot) else {
            return;
        };
        let (qtype, dnssec_ok, cd) = (
            inflight.key.qtype,
            inflight.key.dnssec_ok,
            inflight.key.checking_disabled,
        );
        if !self.config.dnssec.validates() || cd {
            let options = self.plain_options(dnssec_ok);
            self.store_answer(slot, message, packet, now, options);
            return;
        }
        let (step, judged, learned) = match Name::from_wire(&inflight.key.name) {
            Ok(qname) => {
                let validator =
                    Validator::new(&self.cache, &self.validated_keys, &self.config.dnssec, now);
                let step = validator.evaluate(&qname, qtype, message);
                let judged = Judged {
                    ttl_cap: validator.ttl_cap(),
                    trim: validator.trim(),
                    proof_zone: validator.proof_zone(),
                    unsigned_chain: validator.saw_unsigned_chain(),
                };
                (step, judged, validator.take_learned())
            }
            Err(_) => (
                Step::Done(Verdict::Bogus(Bogus::Malformed)),
                Judged {
                    ttl_cap: u32::MAX,
                    trim: Trim::Keep,
                    proof_zone: None,
                    unsigned_chain: false,
                },
                Vec::new(),
            ),
        };
        for learned in learned {
            self.validated_keys.learn(learned);
        }
        self.stats.dnssec_signatures_remembered = self.validated_keys.signatures_remembered();
        match step {
            Step::Done(verdict) => {
                self.finish_validation(slot, message, packet, verdict, &judged, now);
            }
            Step::Need(fetch) => self.suspend(slot, packet, &fetch.name, fetch.rtype, now),
        }
    }

    /// Count `verdict`.
    fn count_verdict(&mut self, verdict: Verdict) {
        let stats = &mut self.stats;
        let counter = match verdict {
            Verdict::Secure => &mut stats.dnssec_secure,
            Verdict::Insecure(_) => &mut stats.dnssec_insecure,
            Verdict::Indeterminate => &mut stats.dnssec_indeterminate,
            Verdict::Bogus(reason) => match reason {
                Bogus::BadSignature => &mut stats.dnssec_bogus_signature,
                Bogus::SignatureExpired => &mut stats.dnssec_bogus_expired,
                Bogus::SignatureNotYetValid | Bogus::SignatureExpiredBeforeValid => {
                    &mut stats.dnssec_bogus_not_yet_valid
                }
                Bogus::DnskeyMissing | Bogus::NoZoneKeyBit => {
                    &mut stats.dnssec_bogus_dnskey_missing
                }
                Bogus::RrsigsMissing => &mut stats.dnssec_bogus_rrsigs_missing,
                Bogus::NsecMissing | Bogus::BadDenial => &mut stats.dnssec_bogus_denial,
                Bogus::SignerMismatch | Bogus::Malformed => &mut stats.dnssec_bogus_other,
            },
        };
        *counter += 1;
    }

    /// Act on the verdict for `slot`'s answer; a secure one is cached no
    /// longer than `ttl_cap` (its signatures' time left), with only what
    /// `trim` keeps of its authority and additional sections (module
    /// `validation`: nothing unvalidated rides along under AD).
    fn finish_validation(
        &mut self,
        slot: Slot,
        message: &Message<'_>,
        packet: &[u8],
        verdict: Verdict,
        judged: &Judged,
        now: Timestamp,
    ) {
        let (ttl_cap, trim) = (judged.ttl_cap, judged.trim);
        self.count_verdict(verdict);
        // Stripping, not one missing signature: the answer and a DNSKEY
        // or DS reply of its chain both came without any RRSIG.
        if verdict == Verdict::Bogus(Bogus::RrsigsMissing)
            && judged.unsigned_chain
            && !has_rrsig(message)
        {
            self.note_stripped(slot, now);
        }
        let Some(inflight) = self.inflight.get(slot) else {
            return;
        };
        let strip_dnssec = !inflight.key.dnssec_ok;
        let store = |authentic: bool, ede: Option<u16>| StoreOptions {
            authentic: Some(authentic),
            strip_dnssec,
            ede: ede.unwrap_or(0),
            max_ttl: (authentic && ttl_cap != u32::MAX).then_some(ttl_cap),
            trim: if authentic { trim } else { Trim::Keep },
            use_once: false,
        };
        match verdict {
            Verdict::Secure => {
                if let Some(zone) = &judged.proof_zone {
                    self.learn_denial(slot, message, zone, ttl_cap, now);
                }
                self.store_answer(slot, message, packet, now, store(true, None));
            }
            Verdict::Insecure(code) => {
                // An EDE when the reason has one (RFC 9276: EDE 27).
                self.store_answer(slot, message, packet, now, store(false, code));
            }
            Verdict::Bogus(reason) if self.config.dnssec.mode == DnssecMode::Permissive => {
                let code = Some(reason.ede());
                self.store_answer(slot, message, packet, now, store(false, code));
            }
            Verdict::Bogus(reason) => {
                let code = reason.ede();
                if inflight.store {
                    let key = &inflight.key;
                    let policy = &self.config.cache_policy;
                    // Remembered briefly (RFC 9520): a broken domain does
                    // not cost a validation per query.
                    if let Ok(entry) = Entry::failure(key, &key.name, Rcode::SERVFAIL, now, policy)
                    {
                        let _ = self.cache.insert(key, entry.with_ede(code), now);
                    }
                }
                self.complete(slot, Answer::Fail(code));
            }
            Verdict::Indeterminate => {
                self.fail(slot, Answer::Fail(ede::DNSSEC_INDETERMINATE), now);
            }
        }
    }

    /// `slot`'s answer had no RRSIG at all where the chain of trust
    /// requires signatures: its upstream seems to strip DNSSEC records.
    /// Counted, and said once a minute per upstream.
    fn note_stripped(&mut self, slot: Slot, now: Timestamp) {
        self.stats.dnssec_unsigned_from_signed_zone += 1;
        let Some(address) = self.inflight.get(slot).and_then(|i| i.answered_by) else {
            return;
        };
        let Some(index) = self.upstreams.index_of(address) else {
            return;
        };
        if self.upstreams.on_stripped(index, now.as_millis()) {
            self.warn(Warning::UpstreamStripsDnssec(address));
        }
    }

    /// Remember the NSEC records of a secure denial (NXDOMAIN, or NODATA)
    /// proved for `zone`, for `dnssec.aggressive_nsec`: stored with its
    /// DNSSEC records whatever the client's DO.
    fn learn_denial(
        &mut self,
        slot: Slot,
        message: &Message<'_>,
        zone: &heimdall_wire::NameBuf,
        ttl_cap: u32,
        now: Timestamp,
    ) {
        let denial = message.rcode() == Rcode::NXDOMAIN
            || (message.rcode() == Rcode::NOERROR && message.answers().next().is_none());
        if !self.config.dnssec.aggressive_nsec || !denial {
            return;
        }
        let Some(inflight) = self.inflight.get(slot) else {
            return;
        };
        let mut key = inflight.key.clone();
        key.dnssec_ok = true;
        let options = StoreOptions {
            authentic: Some(true),
            strip_dnssec: false,
            ede: 0,
            max_ttl: (ttl_cap != u32::MAX).then_some(ttl_cap),
            trim: Trim::ToProof,
            use_once: false,
        };
        let policy = &self.config.cache_policy;
        if let Ok(Some(entry)) = Entry::from_response_with(&key, message, now, policy, options) {
            self.nsec_cache.learn(&zone.as_name(), &entry);
        }
    }

    /// `slot`'s answer needs `rtype` records of `name` that the cache
    /// lacks: keep the reply, retire the query's attempts, and start or
    /// join the sub-query that fetches them.
    fn suspend(
        &mut self,
        slot: Slot,
        packet: &[u8],
        name: &[u8],
        rtype: RecordType,
        now: Timestamp,
    ) {
        let budget = self.config.dnssec.max_subqueries;
        let Some(inflight) = self.inflight.get_mut(slot) else {
            return;
        };
        if inflight.subqueries >= budget {
            self.indeterminate(slot, now);
            return;
        }
        inflight.subqueries += 1;
        if inflight.pending.is_none() {
            inflight.pending = Some(packet.into());
        }
        let waiting = (slot, inflight.serial);
        self.inflight.retire_all_attempts(slot);
        let key = subquery_key(name, rtype);
        if let Some(sub) = self.inflight.slot_of(&key)
            && let Some(inflight) = self.inflight.get_mut(sub)
        {
            // Bounded without a limit of its own: every dependent is a
            // query of the in-flight table (`max_inflight`), waiting on
            // one sub-query at a time.
            inflight.dependents.push(waiting);
            return;
        }
        if self.inflight.len() >= self.config.max_inflight {
            self.stats.dropped_overload += 1;
            self.indeterminate(slot, now);
            return;
        }
        let Some(sub) = self.inflight.insert(&key, None, Phase::Forwarding, now) else {
            self.indeterminate(slot, now);
            return;
        };
        if let Some(inflight) = self.inflight.get_mut(sub) {
            inflight.dependents.push(waiting);
        }
        self.stats.dnssec_subqueries += 1;
        // Its completion, even a synchronous failure here, queues the
        // waiting query for `run_resumes`.
        self.send_attempt(sub, now);
    }

    /// `slot` cannot be validated: SERVFAIL with EDE 5.
    fn indeterminate(&mut self, slot: Slot, now: Timestamp) {
        self.count_verdict(Verdict::Indeterminate);
        self.fail(slot, Answer::Fail(ede::DNSSEC_INDETERMINATE), now);
    }

    /// Judge again every query whose sub-query completed.
    pub(super) fn run_resumes(&mut self, now: Timestamp) {
        while let Some((slot, serial)) = self.resumes.pop_front() {
            let Some(inflight) = self.inflight.get_mut(slot) else {
                continue;
            };
            if inflight.serial != serial {
                continue;
            }
            let Some(packet) = inflight.pending.take() else {
                continue;
            };
            match Message::parse(&packet) {
                Ok(message) => self.judge_answer(slot, &message, &packet, now),
                Err(_) => self.indeterminate(slot, now),
            }
        }
    }
}

/// What the validator said besides its verdict.
pub(super) struct Judged {
    /// The longest a secure answer may be cached, by its signatures.
    ttl_cap: u32,
    /// What a secure answer keeps besides its answer section.
    trim: Trim,
    /// The zone of its NSEC/NSEC3 proof, when it had one.
    proof_zone: Option<heimdall_wire::NameBuf>,
    /// A DNSKEY or DS reply of its chain came without any RRSIG.
    unsigned_chain: bool,
}

/// An upstream reply relayed as it came (not cacheable), its AD bit set
/// to `authentic` when the resolver judged it.
pub(super) fn relay_bytes(packet: &[u8], authentic: Option<bool>) -> Box<[u8]> {
    let mut bytes: Box<[u8]> = packet.into();
    if let (Some(authentic), Some(high), Some(low)) =
        (authentic, bytes.get(2).copied(), bytes.get(3).copied())
    {
        let flags = Flags(u16::from_be_bytes([high, low])).with_authentic_data(authentic);
        if let Some(field) = bytes.get_mut(2..4) {
            field.copy_from_slice(&flags.0.to_be_bytes());
        }
    }
    bytes
}
