//! The verdicts other than "secure": [`Bogus`] (the data must not be
//! used) and [`Insecure`] (it cannot be validated, so it is passed on
//! without the AD bit, RFC 4035 section 4.3 and RFC 6840 section 5.2),
//! each with the Extended DNS Error code (RFC 8914) a server reports.

use heimdall_wire::ede;

/// Why the data is bogus: a validator answers SERVFAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Bogus {
    /// A signature did not verify with a key that matched it (or a key
    /// did not hash to its DS digest).
    #[error("signature does not verify")]
    BadSignature,
    /// The only signatures that could apply have expired.
    #[error("signature expired")]
    SignatureExpired,
    /// The only signatures that could apply are not valid yet.
    #[error("signature not yet valid")]
    SignatureNotYetValid,
    /// A signature's expiration lies before its inception.
    #[error("signature expires before its inception")]
    SignatureExpiredBeforeValid,
    /// No DNSKEY matched the signatures (signer, algorithm, key tag) or
    /// the DS records.
    #[error("no DNSKEY matches")]
    DnskeyMissing,
    /// Only keys without the zone key bit matched.
    #[error("matching DNSKEY lacks the zone key bit")]
    NoZoneKeyBit,
    /// The RRset has no RRSIG that covers it.
    #[error("RRSIGs missing")]
    RrsigsMissing,
    /// The denial of existence lacks a record it needs.
    #[error("NSEC/NSEC3 proof missing")]
    NsecMissing,
    /// The NSEC/NSEC3 records contradict the denial (the name or type
    /// exists, or they come from the wrong side of a delegation).
    #[error("NSEC/NSEC3 records contradict the denial")]
    BadDenial,
    /// An RRSIG does not fit the RRset (signer name not an ancestor of the
    /// owner, labels field larger than the owner's label count).
    #[error("RRSIG does not fit the RRset")]
    SignerMismatch,
    /// Records that do not parse, or an "RRset" of mixed owners/types.
    #[error("malformed DNSSEC records")]
    Malformed,
}

/// Why the data cannot be validated: a validator passes it on as
/// insecure (no AD bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Insecure {
    /// Every signature or DS uses a DNSKEY algorithm this crate does not
    /// implement.
    #[error("unsupported DNSKEY algorithm {0}")]
    UnsupportedAlgorithm(u8),
    /// Every DS uses a digest type this crate does not implement.
    #[error("unsupported DS digest type {0}")]
    UnsupportedDigest(u8),
    /// The NSEC3 records use more iterations than allowed (RFC 9276).
    #[error("NSEC3 iterations {0} above the limit")]
    Nsec3Iterations(u16),
    /// No NSEC3 record uses a hash algorithm (or flags value) this crate
    /// knows (RFC 5155 section 8.1).
    #[error("unsupported NSEC3 hash algorithm {0}")]
    UnsupportedNsec3Hash(u8),
    /// The proof rests on an opt-out NSEC3 span: the name may be an
    /// unsigned delegation (RFC 5155 sections 6 and 8.6).
    #[error("NSEC3 opt-out")]
    Nsec3OptOut,
}

/// Any verdict but secure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Must not be used.
    #[error("bogus: {0}")]
    Bogus(#[from] Bogus),
    /// Used, but not marked authenticated.
    #[error("insecure: {0}")]
    Insecure(#[from] Insecure),
}

impl Bogus {
    /// The Extended DNS Error info code for this reason.
    pub fn ede(self) -> u16 {
        match self {
            Bogus::BadSignature | Bogus::BadDenial | Bogus::SignerMismatch | Bogus::Malformed => {
                ede::DNSSEC_BOGUS
            }
            Bogus::SignatureExpired => ede::SIGNATURE_EXPIRED,
            Bogus::SignatureNotYetValid => ede::SIGNATURE_NOT_YET_VALID,
            Bogus::SignatureExpiredBeforeValid => ede::SIGNATURE_EXPIRED_BEFORE_VALID,
            Bogus::DnskeyMissing => ede::DNSKEY_MISSING,
            Bogus::NoZoneKeyBit => ede::NO_ZONE_KEY_BIT_SET,
            Bogus::RrsigsMissing => ede::RRSIGS_MISSING,
            Bogus::NsecMissing => ede::NSEC_MISSING,
        }
    }
}

impl Insecure {
    /// The Extended DNS Error info code, when RFC 8914 or RFC 9276 has
    /// one (an opt-out span is an ordinary insecure delegation: none).
    pub fn ede(self) -> Option<u16> {
        match self {
            Insecure::UnsupportedAlgorithm(_) => Some(ede::UNSUPPORTED_DNSKEY_ALGORITHM),
            Insecure::UnsupportedDigest(_) => Some(ede::UNSUPPORTED_DS_DIGEST_TYPE),
            Insecure::Nsec3Iterations(_) => Some(ede::UNSUPPORTED_NSEC3_ITERATIONS),
            Insecure::UnsupportedNsec3Hash(_) | Insecure::Nsec3OptOut => None,
        }
    }
}

impl Failure {
    /// The Extended DNS Error info code to attach to the answer, if any.
    pub fn ede(self) -> Option<u16> {
        match self {
            Failure::Bogus(bogus) => Some(bogus.ede()),
            Failure::Insecure(insecure) => insecure.ede(),
        }
    }

    /// Whether the data must be refused (SERVFAIL).
    pub fn is_bogus(self) -> bool {
        matches!(self, Failure::Bogus(_))
    }

    /// How strongly this reason explains a failure, to pick one reason
    /// out of several failed signatures: a signature that was checked and
    /// failed says the most, an unsupported algorithm the least.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Failure::Insecure(_) => 0,
            Failure::Bogus(Bogus::Malformed) => 1,
            Failure::Bogus(Bogus::SignerMismatch) => 2,
            Failure::Bogus(Bogus::DnskeyMissing | Bogus::NoZoneKeyBit) => 3,
            Failure::Bogus(
                Bogus::SignatureExpired
                | Bogus::SignatureNotYetValid
                | Bogus::SignatureExpiredBeforeValid,
            ) => 4,
            Failure::Bogus(_) => 5,
        }
    }

    /// Keep the stronger of `self` and `other` in `slot`.
    pub(crate) fn keep_strongest(slot: &mut Option<Failure>, other: Failure) {
        if slot.is_none_or(|held| other.rank() > held.rank()) {
            *slot = Some(other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_maps_to_its_ede_code() {
        assert_eq!(Failure::from(Bogus::BadSignature).ede(), Some(6));
        assert_eq!(Failure::from(Bogus::SignatureExpired).ede(), Some(7));
        assert_eq!(Failure::from(Bogus::SignatureNotYetValid).ede(), Some(8));
        assert_eq!(Failure::from(Bogus::DnskeyMissing).ede(), Some(9));
        assert_eq!(Failure::from(Bogus::RrsigsMissing).ede(), Some(10));
        assert_eq!(Failure::from(Bogus::NoZoneKeyBit).ede(), Some(11));
        assert_eq!(Failure::from(Bogus::NsecMissing).ede(), Some(12));
        assert_eq!(
            Failure::from(Bogus::SignatureExpiredBeforeValid).ede(),
            Some(25)
        );
        assert_eq!(
            Failure::from(Insecure::UnsupportedAlgorithm(16)).ede(),
            Some(1)
        );
        assert_eq!(Failure::from(Insecure::UnsupportedDigest(3)).ede(), Some(2));
        assert_eq!(
            Failure::from(Insecure::Nsec3Iterations(500)).ede(),
            Some(27)
        );
        assert_eq!(Failure::from(Insecure::Nsec3OptOut).ede(), None);
        assert!(Failure::from(Bogus::Malformed).is_bogus());
        assert!(!Failure::from(Insecure::Nsec3OptOut).is_bogus());
    }

    #[test]
    fn a_checked_signature_outranks_a_missing_key() {
        let mut slot = None;
        Failure::keep_strongest(&mut slot, Insecure::UnsupportedAlgorithm(16).into());
        Failure::keep_strongest(&mut slot, Bogus::DnskeyMissing.into());
        Failure::keep_strongest(&mut slot, Bogus::BadSignature.into());
        Failure::keep_strongest(&mut slot, Bogus::SignatureExpired.into());
        assert_eq!(slot, Some(Failure::Bogus(Bogus::BadSignature)));
    }
}
