//! Signatures: an RRset against its RRSIGs and the zone's DNSKEYs
//! (RFC 4035 section 5.3), a DNSKEY RRset against the parent's DS set or
//! a trust anchor (section 5.2), key tags (RFC 4034 appendix B) and DS
//! digests (RFC 4034 section 5.1.4).

use heimdall_wire::{Name, NameBuf, RecordType, WireNameBuf};

use crate::anchor::TrustAnchors;
use crate::canonical::{effective_labels, signed_data};
use crate::crypto::{self, CryptoError, algorithm_supported, digest_supported};
use crate::memo::VerifiedSignatures;
use crate::outcome::{Bogus, Failure, Insecure};
use crate::rr::{Dnskey, Ds, Rr, Rrsig};
use crate::time::signature_window;

/// Default allowance for clock differences at both ends of a signature's
/// validity window, in seconds. An hour is Unbound's minimum skew
/// (`val-sig-skew-min`): large enough for a badly set clock, small next
/// to the days or weeks signatures are valid for.
pub const DEFAULT_CLOCK_SKEW: u32 = 3600;

/// Default highest NSEC3 iteration count accepted (RFC 9276 section 3.2:
/// validators may treat higher counts as insecure and should say so with
/// EDE 27). 50 is what BIND (since 9.18.24) and Knot Resolver use after
/// CVE-2023-50868 showed that the hashing cost of a large count is a
/// denial-of-service lever; Unbound keeps 150. Signers are told to use 0
/// (RFC 9276 section 3.1), so 50 leaves room for zones that have not
/// caught up while bounding the work per proof.
pub const DEFAULT_NSEC3_MAX_ITERATIONS: u16 = 50;

/// What the caller may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Seconds of clock difference allowed at either end of a
    /// signature's validity window.
    pub clock_skew: u32,
    /// NSEC3 records with more iterations make the answer insecure
    /// (EDE 27) instead of being hashed.
    pub nsec3_max_iterations: u16,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            clock_skew: DEFAULT_CLOCK_SKEW,
            nsec3_max_iterations: DEFAULT_NSEC3_MAX_ITERATIONS,
        }
    }
}

/// An RRset whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secure {
    /// The longest the RRset may be cached (RFC 4035 section 5.3.3): the
    /// RRSIG's original TTL or the time left until it expires, whichever
    /// is less (the caller also caps at the received TTL).
    pub ttl: u32,
    /// Key tag and algorithm of the key that verified it.
    pub key_tag: u16,
    /// Its algorithm.
    pub algorithm: u8,
    /// For an answer synthesised from a wildcard, the wildcard it came
    /// from (`*.` + the RRSIG's labels). The caller must then prove that
    /// the query name itself does not exist ([`crate::prove_wildcard_answer`]).
    pub wildcard: Option<NameBuf>,
}

/// The key tag of DNSKEY RDATA `rdata` (RFC 4034 appendix B; the
/// RSA/MD5 exception of B.1 included).
pub fn key_tag(rdata: &[u8]) -> u16 {
    if rdata.get(3) == Some(&1) {
        // Algorithm 1: the third- and second-to-last bytes of the modulus.
        let len = rdata.len();
        return match (
            len.checked_sub(3).and_then(|at| rdata.get(at)),
            len.checked_sub(2).and_then(|at| rdata.get(at)),
        ) {
            (Some(&high), Some(&low)) => u16::from_be_bytes([high, low]),
            _ => 0,
        };
    }
    let mut sum: u32 = 0;
    for (index, &byte) in rdata.iter().enumerate() {
        sum += if index % 2 == 0 {
            u32::from(byte) << 8
        } else {
            u32::from(byte)
        };
    }
    sum += (sum >> 16) & 0xffff;
    (sum & 0xffff) as u16
}

/// Whether DS `ds` (owned by `owner`) is the digest of DNSKEY `key`
/// (same owner): key tag, algorithm and digest over the lower-cased owner
/// name and the DNSKEY RDATA. `None` when the digest type is unsupported.
pub fn ds_matches_dnskey(owner: &Name<'_>, ds: &Ds<'_>, key: &Dnskey<'_>) -> Option<bool> {
    if ds.algorithm != key.algorithm || ds.key_tag != key.key_tag() {
        return digest_supported(ds.digest_type).then_some(false);
    }
    let mut wire = WireNameBuf::new();
    owner.write_lower(&mut wire);
    let digest = crypto::ds_digest(ds.digest_type, &[&wire, key.rdata])?;
    Some(digest.as_ref() == ds.digest)
}

/// Validate `rrset` (the records of one owner, class and type) with
/// `rrsigs` (RRSIG records; those of other owners or types are ignored)
/// and `dnskeys`, the signer zone's DNSKEY RRset, which the caller has
/// already established as trusted. `now` is seconds since the epoch.
///
/// Succeeds when any one RRSIG verifies with any one matching key
/// (signer name, algorithm, key tag, zone key bit set, not revoked).
/// Otherwise the strongest reason: a signature that failed to verify,
/// then expired / not yet valid, then a missing key; insecure only when
/// every RRSIG uses an unsupported algorithm.
pub fn validate_rrset(
    rrset: &[Rr<'_>],
    rrsigs: &[Rr<'_>],
    dnskeys: &[Rr<'_>],
    now: u64,
    config: &Config,
) -> Result<Secure, Failure> {
    validate(rrset, rrsigs, dnskeys, now, config, None)
}

/// [`validate_rrset`], remembering in `memo` the signatures that verify
/// and skipping the public-key operation for those it already holds
/// (see [`VerifiedSignatures`]).
pub fn validate_rrset_memo(
    rrset: &[Rr<'_>],
    rrsigs: &[Rr<'_>],
    dnskeys: &[Rr<'_>],
    now: u64,
    config: &Config,
    memo: &mut VerifiedSignatures,
) -> Result<Secure, Failure> {
    validate(rrset, rrsigs, dnskeys, now, config, Some(memo))
}

fn validate(
    rrset: &[Rr<'_>],
    rrsigs: &[Rr<'_>],
    dnskeys: &[Rr<'_>],
    now: u64,
    config: &Config,
    mut memo: Option<&mut VerifiedSignatures>,
) -> Result<Secure, Failure> {
    let first = rrset.first().ok_or(Bogus::Malformed)?;
    let owner = first.owner();
    let same_set = rrset.iter().all(|rr| {
        rr.rtype() == first.rtype()
            && rr.class() == first.class()
            && rr.owner().eq_ignore_case(&owner)
    });
    if !same_set || first.rtype() == RecordType::RRSIG {
        return Err(Bogus::Malformed.into());
    }
    let mut best: Option<Failure> = None;
    let mut data = Vec::new();
    let mut signed_owner = WireNameBuf::new();
    for rr in rrsigs {
        if rr.rtype() != RecordType::RRSIG
            || rr.class() != first.class()
            || !rr.owner().eq_ignore_case(&owner)
        {
            continue;
        }
        let Some(rrsig) = Rrsig::parse(rr) else {
            Failure::keep_strongest(&mut best, Bogus::Malformed.into());
            continue;
        };
        if rrsig.type_covered != first.rtype() {
            continue;
        }
        match check_one(
            &rrsig,
            rrset,
            (dnskeys, memo.as_deref_mut()),
            now,
            config,
            &mut data,
            &mut signed_owner,
        ) {
            Ok(secure) => return Ok(secure),
            Err(failure) => Failure::keep_strongest(&mut best, failure),
        }
    }
    Err(best.unwrap_or(Bogus::RrsigsMissing.into()))
}

/// One RRSIG against the keys.
fn check_one(
    rrsig: &Rrsig<'_>,
    rrset: &[Rr<'_>],
    (dnskeys, mut memo): (&[Rr<'_>], Option<&mut VerifiedSignatures>),
    now: u64,
    config: &Config,
    data: &mut Vec<u8>,
    signed_owner: &mut WireNameBuf,
) -> Result<Secure, Failure> {
    if !algorithm_supported(rrsig.algorithm) {
        return Err(Insecure::UnsupportedAlgorithm(rrsig.algorithm).into());
    }
    let first = rrset.first().ok_or(Bogus::Malformed)?;
    let owner = first.owner();
    if !owner.is_subdomain_of(&rrsig.signer) || usize::from(rrsig.labels) > effective_labels(&owner)
    {
        return Err(Bogus::SignerMismatch.into());
    }
    let remaining = signature_window(rrsig.inception, rrsig.expiration, now, config.clock_skew)?;
    let mut failure: Option<Failure> = None;
    let mut built = false;
    for key_rr in dnskeys {
        if key_rr.rtype() != RecordType::DNSKEY || !key_rr.owner().eq_ignore_case(&rrsig.signer) {
            continue;
        }
        let Some(key) = Dnskey::parse(key_rr) else {
            continue;
        };
        if key.protocol != 3
            || key.algorithm != rrsig.algorithm
            || key.is_revoked()
            || key.key_tag() != rrsig.key_tag
        {
            continue;
        }
        if !key.is_zone_key() {
            Failure::keep_strongest(&mut failure, Bogus::NoZoneKeyBit.into());
            continue;
        }
        if !built {
            signed_data(rrsig, rrset, data, signed_owner)?;
            built = true;
        }
        let fingerprint = memo.as_ref().map(|_| {
            VerifiedSignatures::fingerprint(rrsig.algorithm, key.public_key, data, rrsig.signature)
        });
        let remembered = match (memo.as_deref_mut(), &fingerprint) {
            (Some(memo), Some(fingerprint)) => memo.verified(fingerprint, now),
            _ => false,
        };
        let verified = if remembered {
            Ok(())
        } else {
            crypto::verify(rrsig.algorithm, key.public_key, data, rrsig.signature)
        };
        match verified {
            Ok(()) => {
                let ttl = rrsig.original_ttl.min(remaining);
                if let (false, Some(memo), Some(fingerprint)) =
                    (remembered, memo.as_deref_mut(), fingerprint)
                {
                    memo.remember(fingerprint, now, now.saturating_add(u64::from(ttl)));
                }
                let wildcard = (usize::from(rrsig.labels) < effective_labels(&owner))
                    .then(|| NameBuf::from_wire(signed_owner).ok())
                    .flatten();
                return Ok(Secure {
                    ttl,
                    key_tag: rrsig.key_tag,
                    algorithm: rrsig.algorithm,
                    wildcard,
                });
            }
            Err(CryptoError::Unsupported) => Failure::keep_strongest(
                &mut failure,
                Insecure::UnsupportedAlgorithm(key.algorithm).into(),
            ),
            Err(CryptoError::Invalid) => {
                Failure::keep_strongest(&mut failure, Bogus::BadSignature.into());
            }
        }
    }
    Err(failure.unwrap_or(Bogus::DnskeyMissing.into()))
}

/// Validate a zone's DNSKEY RRset (`dnskeys`, with its `rrsigs`) against
/// the DS RRset `ds_set` from the parent, which the caller has validated:
/// some DS must match a DNSKEY of the set (zone key, not revoked) and
/// that key must sign the set. DS records of unsupported digest types or
/// algorithms are skipped, and SHA-1 ones too when a SHA-256 or SHA-384
/// DS for a supported algorithm is present (RFC 4509 section 3); when
/// nothing is left the zone is insecure (RFC 4035 section 5.2).
pub fn verify_dnskeys_with_ds(
    dnskeys: &[Rr<'_>],
    rrsigs: &[Rr<'_>],
    ds_set: &[Rr<'_>],
    now: u64,
    config: &Config,
) -> Result<Secure, Failure> {
    let parsed = || ds_set.iter().filter_map(|rr| Some((rr, Ds::parse(rr)?)));
    let usable =
        |ds: &Ds<'_>| algorithm_supported(ds.algorithm) && digest_supported(ds.digest_type);
    let strong = parsed().any(|(_, ds)| usable(&ds) && ds.digest_type != 1);
    let mut best: Option<Failure> = None;
    for (ds_rr, ds) in parsed() {
        if !usable(&ds) || (strong && ds.digest_type == 1) {
            let reason = if digest_supported(ds.digest_type) {
                Insecure::UnsupportedAlgorithm(ds.algorithm)
            } else {
                Insecure::UnsupportedDigest(ds.digest_type)
            };
            Failure::keep_strongest(&mut best, reason.into());
            continue;
        }
        let owner = ds_rr.owner();
        let matched = dnskeys
            .iter()
            .filter(|rr| rr.owner().eq_ignore_case(&owner))
            .find(|rr| {
                Dnskey::parse(rr).is_some_and(|key| {
                    key.protocol == 3
                        && key.is_zone_key()
                        && !key.is_revoked()
                        && ds_matches_dnskey(&owner, &ds, &key) == Some(true)
                })
            });
        let Some(key) = matched else {
            Failure::keep_strongest(&mut best, Bogus::DnskeyMissing.into());
            continue;
        };
        match validate_rrset(dnskeys, rrsigs, core::slice::from_ref(key), now, config) {
            Ok(secure) => return Ok(secure),
            Err(failure) => Failure::keep_strongest(&mut best, failure),
        }
    }
    Err(best.unwrap_or(Bogus::DnskeyMissing.into()))
}

/// Validate a DNSKEY RRset against the trust anchors for its owner: DS
/// anchors as [`verify_dnskeys_with_ds`] does, DNSKEY anchors by
/// requiring the anchored key in the set and its signature over the set.
/// Fails with [`Bogus::DnskeyMissing`] when no anchor is for this owner.
pub fn verify_dnskeys_with_anchors(
    dnskeys: &[Rr<'_>],
    rrsigs: &[Rr<'_>],
    anchors: &TrustAnchors,
    now: u64,
    config: &Config,
) -> Result<Secure, Failure> {
    let owner = dnskeys.first().ok_or(Bogus::Malformed)?.owner();
    let ds: Vec<Rr<'_>> = anchors
        .at(&owner)
        .filter(|rr| rr.rtype() == RecordType::DS)
        .collect();
    let mut best: Option<Failure> = None;
    if !ds.is_empty() {
        match verify_dnskeys_with_ds(dnskeys, rrsigs, &ds, now, config) {
            Ok(secure) => return Ok(secure),
            Err(failure) => Failure::keep_strongest(&mut best, failure),
        }
    }
    for anchor in anchors
        .at(&owner)
        .filter(|rr| rr.rtype() == RecordType::DNSKEY)
    {
        let Some(present) = dnskeys
            .iter()
            .find(|rr| rr.rtype() == RecordType::DNSKEY && rr.rdata() == anchor.rdata())
        else {
            Failure::keep_strongest(&mut best, Bogus::DnskeyMissing.into());
            continue;
        };
        match validate_rrset(dnskeys, rrsigs, core::slice::from_ref(present), now, config) {
            Ok(secure) => return Ok(secure),
            Err(failure) => Failure::keep_strongest(&mut best, failure),
        }
    }
    Err(best.unwrap_or(Bogus::DnskeyMissing.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tag_of_rfc_4034_appendix_c_key() {
        // RFC 4034 section 5.4's DS example: the DNSKEY of dskey.example.com
        // with key tag 60485.
        let key = data_encoding::BASE64
            .decode(
                b"AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==",
            )
            .unwrap();
        let mut rdata = vec![0x01, 0x00, 3, 5];
        rdata.extend_from_slice(&key);
        assert_eq!(key_tag(&rdata), 60485);
        let owner = NameBuf::from_presentation("dskey.example.com.").unwrap();
        let ds_digest = data_encoding::HEXUPPER
            .decode(b"2BB183AF5F22588179A53B0A98631FAD1A292118")
            .unwrap();
        let mut ds = vec![0xec, 0x45, 5, 1];
        ds.extend_from_slice(&ds_digest);
        let ds_rr = Rr::new(
            owner.as_name(),
            RecordType::DS,
            heimdall_wire::Class::IN,
            0,
            &ds,
        );
        let ds = Ds::parse(&ds_rr).unwrap();
        let key = Dnskey::parse_rdata(&rdata).unwrap();
        assert_eq!(ds_matches_dnskey(&owner.as_name(), &ds, &key), Some(true));
        let other = NameBuf::from_presentation("other.example.com.").unwrap();
        assert_eq!(ds_matches_dnskey(&other.as_name(), &ds, &key), Some(false));
    }
}
