//! Signatures already verified: a bounded memo of the (key, signed data,
//! signature) triples that verified, so that an RRset seen again with the
//! same RRSIG costs a SHA-256 of its bytes instead of a public-key
//! operation. Denials of random names under one zone repeat most of their
//! records: the zone's SOA, the NSEC3 matching the closest encloser and
//! the one covering the wildcard are the same in every answer, and only
//! the record covering the next closer name changes. Unbound gets the same
//! from its RRset cache, which keeps an RRset's validation status.
//!
//! Sound because the fingerprint covers every byte the signature covers
//! (the RRSIG RDATA before the signature and the canonical RRset, exactly
//! what [`crate::validate_rrset`] hands to the verifier), the signature
//! itself, the algorithm and the public key: a hit means these very bytes
//! verified under this very key. The caller still passes only keys it
//! trusts now, and the validity window is still checked on every use; a
//! remembered verification lasts no longer than the signature's original
//! TTL or its expiry, whichever comes first. Fingerprints are 128 bits of
//! SHA-256: finding other bytes with a remembered fingerprint is a second
//! preimage of 128 bits.

use std::collections::HashMap;

use ring::digest;

/// Bytes of SHA-256 kept per fingerprint.
const FINGERPRINT_LEN: usize = 16;

/// A verified triple's fingerprint.
pub(crate) type Fingerprint = [u8; FINGERPRINT_LEN];

/// Verified signatures, until when each may be trusted (seconds since the
/// epoch, the caller's clock). Bounded: a full memo drops what expired,
/// and starts over if that was nothing.
#[derive(Debug)]
pub struct VerifiedSignatures {
    seen: HashMap<Fingerprint, u64>,
    capacity: usize,
    hits: u64,
}

impl Default for VerifiedSignatures {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl VerifiedSignatures {
    /// Signatures remembered by default: about 40 bytes each with the
    /// table, a few hundred KiB at most.
    pub const DEFAULT_CAPACITY: usize = 8192;

    /// An empty memo of at most `capacity` signatures.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: HashMap::new(),
            capacity: capacity.max(1),
            hits: 0,
        }
    }

    /// Forget everything (trust anchors or settings changed).
    pub fn clear(&mut self) {
        self.seen.clear();
    }

    /// Signatures remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Verifications saved since the start.
    pub fn hits(&self) -> u64 {
        self.hits
    }

    /// The fingerprint of `signature` by `key` (of `algorithm`) over
    /// `data`. Lengths go in before the variable parts, so no two triples
    /// share an input.
    pub(crate) fn fingerprint(
        algorithm: u8,
        key: &[u8],
        data: &[u8],
        signature: &[u8],
    ) -> Fingerprint {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(&[algorithm]);
        for part in [key, data] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        context.update(signature);
        let mut fingerprint = [0u8; FINGERPRINT_LEN];
        for (out, byte) in fingerprint.iter_mut().zip(context.finish().as_ref()) {
            *out = *byte;
        }
        fingerprint
    }

    /// Whether `fingerprint` verified and may still be trusted at `now`.
    pub(crate) fn verified(&mut self, fingerprint: &Fingerprint, now: u64) -> bool {
        let known = self.seen.get(fingerprint).is_some_and(|&until| now < until);
        if known {
            self.hits += 1;
        }
        known
    }

    /// Remember that `fingerprint` verified, until `until`.
    pub(crate) fn remember(&mut self, fingerprint: Fingerprint, now: u64, until: u64) {
        if until <= now {
            return;
        }
        if self.seen.len() >= self.capacity && !self.seen.contains_key(&fingerprint) {
            self.seen.retain(|_, &mut expires| now < expires);
            if self.seen.len() >= self.capacity {
                self.seen.clear();
            }
        }
        self.seen.insert(fingerprint, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_signature_lasts_until_its_time_and_the_memo_is_bounded() {
        let mut memo = VerifiedSignatures::new(2);
        let a = VerifiedSignatures::fingerprint(13, b"key", b"data", b"sig");
        assert_ne!(
            a,
            VerifiedSignatures::fingerprint(13, b"key", b"datA", b"sig")
        );
        assert_ne!(
            a,
            VerifiedSignatures::fingerprint(13, b"ke", b"ydata", b"sig")
        );
        assert_ne!(
            a,
            VerifiedSignatures::fingerprint(8, b"key", b"data", b"sig")
        );
        assert!(!memo.verified(&a, 100));
        memo.remember(a, 100, 200);
        assert!(memo.verified(&a, 199));
        assert!(!memo.verified(&a, 200));
        assert_eq!(memo.hits(), 1);
        memo.remember(
            VerifiedSignatures::fingerprint(13, b"k", b"1", b"s"),
            100,
            150,
        );
        // Full: what expired goes first, then everything.
        memo.remember(
            VerifiedSignatures::fingerprint(13, b"k", b"2", b"s"),
            160,
            300,
        );
        assert_eq!(memo.len(), 2);
        memo.remember(
            VerifiedSignatures::fingerprint(13, b"k", b"3", b"s"),
            160,
            300,
        );
        assert!(memo.len() <= 2);
    }
}
