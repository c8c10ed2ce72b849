//! The record view the validator works on ([`Rr`]) and typed views of
//! the DNSSEC RDATA: RRSIG, DNSKEY, DS, NSEC, NSEC3 and the type bitmap.
//!
//! An [`Rr`] borrows either a record inside a message (names in its RDATA
//! may be compression pointers into that message) or standalone
//! uncompressed RDATA (trust anchors, zone files). Typed views parse on
//! demand and return `None` for RDATA that does not fit its type.

use heimdall_wire::{Class, Name, Record, RecordType};

/// A resource record borrowed from a message or from standalone RDATA.
#[derive(Debug, Clone, Copy)]
pub struct Rr<'a> {
    owner: Name<'a>,
    rtype: RecordType,
    class: Class,
    ttl: u32,
    buf: &'a [u8],
    rdata_start: usize,
    rdata_len: usize,
}

impl<'a> Rr<'a> {
    /// A record with standalone, uncompressed `rdata`.
    pub fn new(
        owner: Name<'a>,
        rtype: RecordType,
        class: Class,
        ttl: u32,
        rdata: &'a [u8],
    ) -> Self {
        Self {
            owner,
            rtype,
            class,
            ttl,
            buf: rdata,
            rdata_start: 0,
            rdata_len: rdata.len(),
        }
    }

    /// The record `record` of a parsed message.
    pub fn from_record(record: &Record<'a>) -> Self {
        Self {
            owner: record.name(),
            rtype: record.rtype(),
            class: record.class(),
            ttl: record.ttl(),
            buf: record.message(),
            rdata_start: record.rdata_offset(),
            rdata_len: record.rdata_bytes().len(),
        }
    }

    /// The owner name.
    pub fn owner(&self) -> Name<'a> {
        self.owner
    }

    /// The record type.
    pub fn rtype(&self) -> RecordType {
        self.rtype
    }

    /// The class.
    pub fn class(&self) -> Class {
        self.class
    }

    /// The TTL as received.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The RDATA as it stands (names may be compression pointers).
    pub fn rdata(&self) -> &'a [u8] {
        self.buf
            .get(self.rdata_start..self.rdata_start + self.rdata_len)
            .unwrap_or_default()
    }

    /// The buffer the RDATA sits in and its offset there, for reading
    /// names through pointers.
    pub(crate) fn rdata_location(&self) -> (&'a [u8], usize, usize) {
        (self.buf, self.rdata_start, self.rdata_len)
    }

    /// A name inside the RDATA at `offset` (relative to the RDATA), read
    /// through compression pointers; with the RDATA offset after it.
    pub(crate) fn name_at(&self, offset: usize) -> Option<(Name<'a>, usize)> {
        let (name, after) = Name::parse_at(self.buf, self.rdata_start + offset).ok()?;
        let after = after.checked_sub(self.rdata_start)?;
        (after <= self.rdata_len).then_some((name, after))
    }
}

impl<'a> From<Record<'a>> for Rr<'a> {
    fn from(record: Record<'a>) -> Self {
        Self::from_record(&record)
    }
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// RRSIG RDATA (RFC 4034 section 3.1).
#[derive(Debug, Clone, Copy)]
pub struct Rrsig<'a> {
    /// The type of the RRset it signs.
    pub type_covered: RecordType,
    /// The DNSKEY algorithm.
    pub algorithm: u8,
    /// Labels of the owner name without a leading `*` (less than the
    /// owner's count: the answer was synthesised from a wildcard).
    pub labels: u8,
    /// The TTL as the zone had it.
    pub original_ttl: u32,
    /// End of validity (32-bit serial time).
    pub expiration: u32,
    /// Start of validity (32-bit serial time).
    pub inception: u32,
    /// The key tag of the signing DNSKEY.
    pub key_tag: u16,
    /// The zone that signed (owner of the DNSKEY).
    pub signer: Name<'a>,
    /// The signature bytes.
    pub signature: &'a [u8],
    /// The 18 fixed bytes before the signer name.
    pub(crate) fixed: &'a [u8],
}

impl<'a> Rrsig<'a> {
    /// Fixed fields before the signer name.
    pub(crate) const FIXED_LEN: usize = 18;

    /// Parse the RDATA of an RRSIG record.
    pub fn parse(rr: &Rr<'a>) -> Option<Self> {
        if rr.rtype() != RecordType::RRSIG {
            return None;
        }
        let rdata = rr.rdata();
        let fixed = rdata.get(..Self::FIXED_LEN)?;
        let (signer, after) = rr.name_at(Self::FIXED_LEN)?;
        let signature = rdata.get(after..).filter(|sig| !sig.is_empty())?;
        Some(Self {
            type_covered: RecordType(u16_at(fixed, 0)?),
            algorithm: *fixed.get(2)?,
            labels: *fixed.get(3)?,
            original_ttl: u32_at(fixed, 4)?,
            expiration: u32_at(fixed, 8)?,
            inception: u32_at(fixed, 12)?,
            key_tag: u16_at(fixed, 16)?,
            signer,
            signature,
            fixed,
        })
    }
}

/// DNSKEY RDATA (RFC 4034 section 2.1).
#[derive(Debug, Clone, Copy)]
pub struct Dnskey<'a> {
    /// Flags: zone key (0x0100), revoked (0x0080, RFC 5011), SEP (0x0001).
    pub flags: u16,
    /// Always 3.
    pub protocol: u8,
    /// The algorithm.
    pub algorithm: u8,
    /// The public key in the algorithm's format.
    pub public_key: &'a [u8],
    /// The whole RDATA (for the key tag and DS digests).
    pub rdata: &'a [u8],
}

impl<'a> Dnskey<'a> {
    /// Zone key flag: only keys with it may verify zone data.
    pub const ZONE: u16 = 0x0100;
    /// Revoked flag (RFC 5011): the key must not be used.
    pub const REVOKE: u16 = 0x0080;
    /// Secure entry point flag (a hint, not checked by validators).
    pub const SEP: u16 = 0x0001;

    /// Parse DNSKEY RDATA (no names inside, so the bytes suffice).
    pub fn parse_rdata(rdata: &'a [u8]) -> Option<Self> {
        Some(Self {
            flags: u16_at(rdata, 0)?,
            protocol: *rdata.get(2)?,
            algorithm: *rdata.get(3)?,
            public_key: rdata.get(4..).filter(|key| !key.is_empty())?,
            rdata,
        })
    }

    /// Parse the RDATA of a DNSKEY record.
    pub fn parse(rr: &Rr<'a>) -> Option<Self> {
        (rr.rtype() == RecordType::DNSKEY)
            .then(|| Self::parse_rdata(rr.rdata()))
            .flatten()
    }

    /// Whether the zone key bit is set.
    pub fn is_zone_key(&self) -> bool {
        self.flags & Self::ZONE != 0
    }

    /// Whether the revoked bit is set.
    pub fn is_revoked(&self) -> bool {
        self.flags & Self::REVOKE != 0
    }

    /// The key tag (RFC 4034 appendix B).
    pub fn key_tag(&self) -> u16 {
        crate::validate::key_tag(self.rdata)
    }
}

/// DS RDATA (RFC 4034 section 5.1).
#[derive(Debug, Clone, Copy)]
pub struct Ds<'a> {
    /// The key tag of the DNSKEY it points at.
    pub key_tag: u16,
    /// That key's algorithm.
    pub algorithm: u8,
    /// The digest algorithm.
    pub digest_type: u8,
    /// The digest.
    pub digest: &'a [u8],
}

impl<'a> Ds<'a> {
    /// Parse the RDATA of a DS record.
    pub fn parse(rr: &Rr<'a>) -> Option<Self> {
        if rr.rtype() != RecordType::DS {
            return None;
        }
        let rdata = rr.rdata();
        Some(Self {
            key_tag: u16_at(rdata, 0)?,
            algorithm: *rdata.get(2)?,
            digest_type: *rdata.get(3)?,
            digest: rdata.get(4..).filter(|digest| !digest.is_empty())?,
        })
    }
}

/// The type bitmap of NSEC and NSEC3 (RFC 4034 section 4.1.2).
#[derive(Debug, Clone, Copy)]
pub struct TypeBitmap<'a>(&'a [u8]);

impl<'a> TypeBitmap<'a> {
    /// Check the window structure: increasing window numbers, lengths
    /// 1..=32, nothing left over.
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        let mut pos = 0usize;
        let mut last: Option<u8> = None;
        while pos < bytes.len() {
            let window = *bytes.get(pos)?;
            let len = usize::from(*bytes.get(pos + 1)?);
            if !(1..=32).contains(&len) || last.is_some_and(|prev| prev >= window) {
                return None;
            }
            bytes.get(pos + 2..pos + 2 + len)?;
            last = Some(window);
            pos += 2 + len;
        }
        Some(Self(bytes))
    }

    /// Whether `rtype` is in the bitmap.
    pub fn contains(&self, rtype: RecordType) -> bool {
        let [window, low] = rtype.0.to_be_bytes();
        let mut pos = 0usize;
        while let (Some(&this), Some(&len)) = (self.0.get(pos), self.0.get(pos + 1)) {
            if this == window {
                return self
                    .0
                    .get(pos + 2 + usize::from(low / 8))
                    .filter(|_| low / 8 < len)
                    .is_some_and(|byte| byte & (0x80 >> (low % 8)) != 0);
            }
            pos += 2 + usize::from(len);
        }
        false
    }
}

/// NSEC RDATA (RFC 4034 section 4.1).
#[derive(Debug, Clone, Copy)]
pub struct Nsec<'a> {
    /// The next owner name in canonical order (the apex for the last).
    pub next: Name<'a>,
    /// The types present at the owner.
    pub types: TypeBitmap<'a>,
}

impl<'a> Nsec<'a> {
    /// Parse the RDATA of an NSEC record.
    pub fn parse(rr: &Rr<'a>) -> Option<Self> {
        if rr.rtype() != RecordType::NSEC {
            return None;
        }
        let (next, after) = rr.name_at(0)?;
        let types = TypeBitmap::parse(rr.rdata().get(after..)?)?;
        Some(Self { next, types })
    }
}

/// NSEC3 RDATA (RFC 5155 section 3.1).
#[derive(Debug, Clone, Copy)]
pub struct Nsec3<'a> {
    /// The hash algorithm (1: SHA-1).
    pub hash_algorithm: u8,
    /// Flags: bit 0x01 is opt-out.
    pub flags: u8,
    /// Extra hash iterations.
    pub iterations: u16,
    /// The salt.
    pub salt: &'a [u8],
    /// The next hashed owner name, raw (not base32).
    pub next_hashed: &'a [u8],
    /// The types present at the original owner.
    pub types: TypeBitmap<'a>,
}

impl<'a> Nsec3<'a> {
    /// The opt-out flag.
    pub const OPT_OUT: u8 = 0x01;

    /// Parse the RDATA of an NSEC3 record.
    pub fn parse(rr: &Rr<'a>) -> Option<Self> {
        if rr.rtype() != RecordType::NSEC3 {
            return None;
        }
        let rdata = rr.rdata();
        let salt_len = usize::from(*rdata.get(4)?);
        let salt = rdata.get(5..5 + salt_len)?;
        let hash_at = 5 + salt_len;
        let hash_len = usize::from(*rdata.get(hash_at)?);
        let next_hashed = rdata
            .get(hash_at + 1..hash_at + 1 + hash_len)
            .filter(|hash| !hash.is_empty())?;
        Some(Self {
            hash_algorithm: *rdata.first()?,
            flags: *rdata.get(1)?,
            iterations: u16_at(rdata, 2)?,
            salt,
            next_hashed,
            types: TypeBitmap::parse(rdata.get(hash_at + 1 + hash_len..)?)?,
        })
    }

    /// Whether the opt-out flag is set.
    pub fn opt_out(&self) -> bool {
        self.flags & Self::OPT_OUT != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_bitmap_reads_rfc_4034_example() {
        // RFC 4034 section 4.3: A MX RRSIG NSEC TYPE1234.
        let mut bytes = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        bytes.extend_from_slice(&[0; 26]);
        bytes.push(0x20);
        let bitmap = TypeBitmap::parse(&bytes).unwrap();
        for present in [
            RecordType::A,
            RecordType::MX,
            RecordType::RRSIG,
            RecordType::NSEC,
        ] {
            assert!(bitmap.contains(present), "{present}");
        }
        assert!(bitmap.contains(RecordType(1234)));
        for absent in [
            RecordType::AAAA,
            RecordType::CNAME,
            RecordType::NS,
            RecordType(1235),
        ] {
            assert!(!bitmap.contains(absent), "{absent}");
        }
    }

    #[test]
    fn malformed_bitmaps_are_refused() {
        assert!(TypeBitmap::parse(&[0, 0]).is_none());
        assert!(TypeBitmap::parse(&[0, 33]).is_none());
        assert!(TypeBitmap::parse(&[1, 1, 0xff, 0, 1, 0xff]).is_none());
        assert!(TypeBitmap::parse(&[0, 2, 0xff]).is_none());
        assert!(TypeBitmap::parse(&[]).is_some());
    }
}
