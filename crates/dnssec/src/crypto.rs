//! Signature verification and digests, all through `ring`: RSA/SHA-1
//! (algorithms 5 and 7), RSA/SHA-256 (8), RSA/SHA-512 (10), ECDSA P-256
//! (13), ECDSA P-384 (14) and Ed25519 (15); DS digests SHA-1 (1),
//! SHA-256 (2) and SHA-384 (4). This module only converts DNSSEC's key
//! and signature encodings into what `ring` takes.

use ring::{digest, signature};

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CryptoError {
    /// The algorithm is not implemented (or the RSA key is shorter than
    /// the 1024 bits `ring` accepts): treat as insecure.
    Unsupported,
    /// The key or signature is malformed, or the signature is wrong.
    Invalid,
}

/// Whether DNSKEY/RRSIG algorithm `algorithm` can be validated.
pub fn algorithm_supported(algorithm: u8) -> bool {
    matches!(algorithm, 5 | 7 | 8 | 10 | 13 | 14 | 15)
}

/// Whether DS digest type `digest_type` can be checked.
pub fn digest_supported(digest_type: u8) -> bool {
    matches!(digest_type, 1 | 2 | 4)
}

/// The digest of `parts` (concatenated) with DS digest type
/// `digest_type`, or `None` when the type is not supported.
pub(crate) fn ds_digest(digest_type: u8, parts: &[&[u8]]) -> Option<digest::Digest> {
    let algorithm = match digest_type {
        1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        2 => &digest::SHA256,
        4 => &digest::SHA384,
        _ => return None,
    };
    let mut context = digest::Context::new(algorithm);
    for part in parts {
        context.update(part);
    }
    Some(context.finish())
}

/// SHA-1 of `parts` concatenated (the NSEC3 hash step, RFC 5155 5).
pub(crate) fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut context = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// Verify `sig` over `message` with DNSKEY public key `key` of
/// `algorithm`.
pub(crate) fn verify(
    algorithm: u8,
    key: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    match algorithm {
        5 | 7 => verify_rsa(
            &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            key,
            message,
            sig,
        ),
        // The "legacy" parameter sets are the ones that accept 1024-bit
        // moduli, which DNSSEC zone-signing keys still use.
        8 => verify_rsa(
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            key,
            message,
            sig,
        ),
        10 => verify_rsa(
            &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
            key,
            message,
            sig,
        ),
        13 => verify_ecdsa(&signature::ECDSA_P256_SHA256_FIXED, 64, key, message, sig),
        14 => verify_ecdsa(&signature::ECDSA_P384_SHA384_FIXED, 96, key, message, sig),
        15 => {
            if key.len() != 32 {
                return Err(CryptoError::Invalid);
            }
            signature::UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(message, sig)
                .map_err(|_| CryptoError::Invalid)
        }
        _ => Err(CryptoError::Unsupported),
    }
}

/// RFC 3110 section 2: exponent length (one byte, or zero and two
/// bytes), exponent, modulus.
fn verify_rsa(
    params: &'static signature::RsaParameters,
    key: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    let (exponent_len, rest) = match key.split_first() {
        Some((0, rest)) => {
            let (len, rest) = rest.split_at_checked(2).ok_or(CryptoError::Invalid)?;
            let len: [u8; 2] = len.try_into().map_err(|_| CryptoError::Invalid)?;
            (usize::from(u16::from_be_bytes(len)), rest)
        }
        Some((&len, rest)) => (usize::from(len), rest),
        None => return Err(CryptoError::Invalid),
    };
    let (exponent, modulus) = rest
        .split_at_checked(exponent_len)
        .ok_or(CryptoError::Invalid)?;
    let skip = modulus.iter().take_while(|&&byte| byte == 0).count();
    let modulus = modulus.get(skip..).unwrap_or_default();
    let bits = modulus
        .first()
        .map_or(0, |top| modulus.len() * 8 - top.leading_zeros() as usize);
    if bits < 1024 {
        return Err(CryptoError::Unsupported);
    }
    signature::RsaPublicKeyComponents {
        n: modulus,
        e: exponent,
    }
    .verify(params, message, sig)
    .map_err(|_| CryptoError::Invalid)
}

/// RFC 6605 section 4: the key is x | y, the signature r | s.
fn verify_ecdsa(
    params: &'static signature::EcdsaVerificationAlgorithm,
    key_len: usize,
    key: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), CryptoError> {
    if key.len() != key_len {
        return Err(CryptoError::Invalid);
    }
    let mut point = [0u8; 97];
    let point = point.get_mut(..key_len + 1).ok_or(CryptoError::Invalid)?;
    let (tag, coordinates) = point.split_first_mut().ok_or(CryptoError::Invalid)?;
    *tag = 0x04;
    coordinates.copy_from_slice(key);
    signature::UnparsedPublicKey::new(params, &*point)
        .verify(message, sig)
        .map_err(|_| CryptoError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_algorithms_are_unsupported_not_invalid() {
        for algorithm in [1, 3, 6, 12, 16, 200] {
            assert!(!algorithm_supported(algorithm));
            assert_eq!(
                verify(algorithm, b"key", b"data", b"sig"),
                Err(CryptoError::Unsupported)
            );
        }
        assert!(ds_digest(3, &[b"x"]).is_none());
        assert!(!digest_supported(3));
    }

    #[test]
    fn short_rsa_keys_are_unsupported_and_broken_ones_invalid() {
        let mut key = vec![3, 1, 0, 1];
        key.extend_from_slice(&[0xff; 64]); // 512 bits
        assert_eq!(
            verify(8, &key, b"data", &[0; 64]),
            Err(CryptoError::Unsupported)
        );
        assert_eq!(verify(8, &[], b"data", b"sig"), Err(CryptoError::Invalid));
        assert_eq!(
            verify(8, &[9, 1], b"data", b"sig"),
            Err(CryptoError::Invalid)
        );
        assert_eq!(
            verify(13, &[4; 63], b"data", &[0; 64]),
            Err(CryptoError::Invalid)
        );
        assert_eq!(
            verify(15, &[4; 31], b"data", &[0; 64]),
            Err(CryptoError::Invalid)
        );
    }

    #[test]
    fn digests_have_their_lengths() {
        assert_eq!(ds_digest(1, &[b"a", b"b"]).unwrap().as_ref().len(), 20);
        assert_eq!(
            ds_digest(2, &[b"ab"]).unwrap().as_ref(),
            ds_digest(2, &[b"a", b"b"]).unwrap().as_ref()
        );
        assert_eq!(ds_digest(4, &[b"a"]).unwrap().as_ref().len(), 48);
        // FIPS 180 test vector "abc".
        assert_eq!(
            data_encoding::HEXLOWER.encode(&sha1(&[b"abc"])),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
