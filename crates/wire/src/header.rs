//! The fixed 12-byte DNS header (RFC 1035 section 4.1.1) and its flag bits.

use crate::error::{ErrorKind, Result, WireError};
use crate::types::{Opcode, Rcode};

/// Length of the DNS header in bytes.
pub const HEADER_LEN: usize = 12;

/// The 16 flag bits of the header: QR, opcode, AA, TC, RD, RA, Z, AD, CD and
/// the low 4 bits of the rcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u16);

macro_rules! flag_bit {
    ($get:ident, $set:ident, $bit:expr, $doc:literal) => {
        #[doc = concat!("Whether the ", $doc, " bit is set.")]
        pub const fn $get(self) -> bool {
            self.0 & $bit != 0
        }

        #[doc = concat!("Set or clear the ", $doc, " bit.")]
        pub const fn $set(self, on: bool) -> Self {
            if on {
                Self(self.0 | $bit)
            } else {
                Self(self.0 & !$bit)
            }
        }
    };
}

impl Flags {
    /// Bit mask of QR.
    pub const QR: u16 = 0x8000;
    /// Bit mask of AA.
    pub const AA: u16 = 0x0400;
    /// Bit mask of TC.
    pub const TC: u16 = 0x0200;
    /// Bit mask of RD.
    pub const RD: u16 = 0x0100;
    /// Bit mask of RA.
    pub const RA: u16 = 0x0080;
    /// Bit mask of the reserved Z bit.
    pub const Z: u16 = 0x0040;
    /// Bit mask of AD.
    pub const AD: u16 = 0x0020;
    /// Bit mask of CD.
    pub const CD: u16 = 0x0010;

    flag_bit!(response, with_response, Self::QR, "QR (response)");
    flag_bit!(
        authoritative,
        with_authoritative,
        Self::AA,
        "AA (authoritative answer)"
    );
    flag_bit!(truncated, with_truncated, Self::TC, "TC (truncated)");
    flag_bit!(
        recursion_desired,
        with_recursion_desired,
        Self::RD,
        "RD (recursion desired)"
    );
    flag_bit!(
        recursion_available,
        with_recursion_available,
        Self::RA,
        "RA (recursion available)"
    );
    flag_bit!(reserved_z, with_reserved_z, Self::Z, "reserved Z");
    flag_bit!(
        authentic_data,
        with_authentic_data,
        Self::AD,
        "AD (authentic data)"
    );
    flag_bit!(
        checking_disabled,
        with_checking_disabled,
        Self::CD,
        "CD (checking disabled)"
    );

    /// The 4-bit opcode.
    pub const fn opcode(self) -> Opcode {
        Opcode(((self.0 >> 11) & 0x0f) as u8)
    }

    /// Replace the opcode (only its low 4 bits are kept).
    pub const fn with_opcode(self, opcode: Opcode) -> Self {
        Self((self.0 & !0x7800) | (((opcode.0 as u16) & 0x0f) << 11))
    }

    /// The low 4 bits of the rcode, as carried in the header.
    pub const fn header_rcode(self) -> u8 {
        (self.0 & 0x000f) as u8
    }

    /// Replace the header's 4 rcode bits with the low bits of `rcode`.
    pub const fn with_rcode(self, rcode: Rcode) -> Self {
        Self((self.0 & !0x000f) | rcode.header_bits() as u16)
    }
}

/// The decoded header of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// The query ID.
    pub id: u16,
    /// The flag bits.
    pub flags: Flags,
    /// Number of entries in the question section.
    pub question_count: u16,
    /// Number of records in the answer section.
    pub answer_count: u16,
    /// Number of records in the authority section.
    pub authority_count: u16,
    /// Number of records in the additional section.
    pub additional_count: u16,
}

impl Header {
    /// Decode the header from the first 12 bytes of `message`.
    pub fn parse(message: &[u8]) -> Result<Self> {
        let bytes: [u8; HEADER_LEN] = message
            .get(..HEADER_LEN)
            .and_then(|head| head.try_into().ok())
            .ok_or(WireError::new(
                ErrorKind::Truncated("header"),
                message.len(),
            ))?;
        let [a0, a1, b0, b1, c0, c1, d0, d1, e0, e1, f0, f1] = bytes;
        Ok(Self {
            id: u16::from_be_bytes([a0, a1]),
            flags: Flags(u16::from_be_bytes([b0, b1])),
            question_count: u16::from_be_bytes([c0, c1]),
            answer_count: u16::from_be_bytes([d0, d1]),
            authority_count: u16::from_be_bytes([e0, e1]),
            additional_count: u16::from_be_bytes([f0, f1]),
        })
    }

    /// Encode the header into its 12 wire bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        for (slot, word) in out.chunks_exact_mut(2).zip([
            self.id,
            self.flags.0,
            self.question_count,
            self.answer_count,
            self.authority_count,
            self.additional_count,
        ]) {
            slot.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let header = Header {
            id: 0xbeef,
            flags: Flags::default()
                .with_response(true)
                .with_opcode(Opcode::NOTIFY)
                .with_authoritative(true)
                .with_recursion_desired(true)
                .with_checking_disabled(true)
                .with_rcode(Rcode::NXDOMAIN),
            question_count: 1,
            answer_count: 2,
            authority_count: 3,
            additional_count: 4,
        };
        let bytes = header.to_bytes();
        assert_eq!(Header::parse(&bytes), Ok(header));
        let flags = Header::parse(&bytes).unwrap().flags;
        assert!(flags.response() && flags.authoritative() && flags.recursion_desired());
        assert!(flags.checking_disabled() && !flags.truncated() && !flags.recursion_available());
        assert_eq!(flags.opcode(), Opcode::NOTIFY);
        assert_eq!(flags.header_rcode(), 3);
    }

    #[test]
    fn every_flag_bit_is_independent() {
        let setters: [fn(Flags, bool) -> Flags; 8] = [
            Flags::with_response,
            Flags::with_authoritative,
            Flags::with_truncated,
            Flags::with_recursion_desired,
            Flags::with_recursion_available,
            Flags::with_reserved_z,
            Flags::with_authentic_data,
            Flags::with_checking_disabled,
        ];
        let masks = [
            Flags::QR,
            Flags::AA,
            Flags::TC,
            Flags::RD,
            Flags::RA,
            Flags::Z,
            Flags::AD,
            Flags::CD,
        ];
        for (set, mask) in setters.iter().zip(masks) {
            assert_eq!(set(Flags(0), true).0, mask);
            assert_eq!(set(Flags(u16::MAX), false).0, !mask);
        }
    }

    #[test]
    fn short_header_is_truncated() {
        let err = Header::parse(&[0u8; 11]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Truncated("header"));
        assert_eq!(err.offset, 11);
    }
}
