//! DNS 0x20 (draft-vixie-dnsext-dns0x20): the letters of every upstream
//! question are sent in a random case, and the reply must echo that case
//! exactly. An off-path attacker who forges a reply must guess one bit per
//! letter on top of the ID and the port.
//!
//! The case of an attempt is not stored letter by letter: the attempt
//! keeps a 64-bit seed drawn from the engine's cryptographic generator,
//! and the bit for letter `i` is derived from it (SplitMix64 of the seed
//! and `i / 64`), so the same case is written into the query and expected
//! of the reply without any buffer. A name has at most 64 bits of case
//! entropy this way, more than any name short enough to matter has
//! letters.

/// The 64 case bits of letters `64 * block ..` under `seed` (a SplitMix64
/// step of the seed and the block): bit `i` set means letter
/// `64 * block + i` is upper case.
fn case_bits(seed: u64, block: u64) -> u64 {
    let mut z = seed.wrapping_add(block.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Set the letters of the uncompressed wire-form name at the start of
/// `wire` to the case `seed` names (from lower or any case). Stops at the
/// root label, or where the bytes end; never panics on odd input. The
/// bits are mixed once per 64 letters, not per letter: this runs for
/// every upstream query.
pub(crate) fn apply_case(wire: &mut [u8], seed: u64) {
    let mut pos = 0usize;
    let mut letter = 0u64;
    let mut bits = case_bits(seed, 0);
    while let Some(&len) = wire.get(pos) {
        // A pointer or the root label ends the name.
        if len == 0 || len & 0xc0 != 0 {
            return;
        }
        let start = pos + 1;
        let end = start + usize::from(len);
        let Some(label) = wire.get_mut(start..end) else {
            return;
        };
        for byte in label {
            if byte.is_ascii_alphabetic() {
                let upper = (bits >> (letter % 64)) & 1 == 1;
                *byte = if upper {
                    byte.to_ascii_uppercase()
                } else {
                    byte.to_ascii_lowercase()
                };
                letter += 1;
                if letter.is_multiple_of(64) {
                    bits = case_bits(seed, letter / 64);
                }
            }
        }
        pos = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(labels: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for label in labels {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn same_seed_same_case_and_only_letters_change() {
        let lower = wire(&["www-1", "example", "com"]);
        let mut a = lower.clone();
        apply_case(&mut a, 42);
        let mut b = lower.to_ascii_uppercase();
        apply_case(&mut b, 42);
        assert_eq!(a, b, "the case depends on the seed alone");
        assert_eq!(a.to_ascii_lowercase(), lower);
        assert_eq!(&a[4..6], b"-1", "digits and hyphens untouched");
        let mut c = lower.clone();
        apply_case(&mut c, 43);
        assert_ne!(a, c, "another seed, another case");
    }

    #[test]
    fn about_half_the_letters_are_upper_case() {
        let lower = wire(&[
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
            "test",
        ]);
        let mut upper = 0usize;
        for seed in 0..200u64 {
            let mut name = lower.clone();
            apply_case(&mut name, seed.wrapping_mul(0x1234_5678_9abc_def1));
            upper += name.iter().filter(|b| b.is_ascii_uppercase()).count();
        }
        let letters = 56 * 200;
        assert!(
            (letters * 45 / 100..letters * 55 / 100).contains(&upper),
            "{upper}"
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for bytes in [&b""[..], b"\x05ab", b"\xc0\x0c", b"\x3fxyz"] {
            let mut copy = bytes.to_vec();
            apply_case(&mut copy, 7);
        }
    }
}
