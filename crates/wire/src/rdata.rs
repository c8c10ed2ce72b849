//! RDATA: typed zero-copy views for the common record types, and the layout
//! table that says where names sit inside RDATA (for decompression when a
//! record is copied, and for compression when it is written).
//!
//! Types without a typed view round-trip as opaque bytes (RFC 3597). Names
//! inside RDATA are compressed on output only for the RFC 1035 types where
//! that is allowed (RFC 3597 section 4); on input, pointers are also
//! followed for the later types whose senders have been seen compressing
//! (SRV, RP, AFSDB, RT, PX, NAPTR, KX, DNAME).

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ErrorKind, Result, WireError};
use crate::name::{Name, parse_name};
use crate::types::RecordType;

/// One field of an RDATA layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// A domain name (possibly compressed on input).
    Name,
    /// A fixed number of opaque bytes.
    Fixed(usize),
    /// A length-prefixed character-string.
    CharString,
}

/// Where the names are in the RDATA of `rtype`, for types that hold names.
/// `None` means the RDATA is opaque bytes with no names to decompress.
pub(crate) fn layout(rtype: RecordType) -> Option<&'static [Field]> {
    use Field::{CharString, Fixed, Name as N};
    Some(match rtype {
        RecordType::NS
        | RecordType::MD
        | RecordType::MF
        | RecordType::CNAME
        | RecordType::MB
        | RecordType::MG
        | RecordType::MR
        | RecordType::PTR
        | RecordType::DNAME => &[N],
        RecordType::SOA => &[N, N, Fixed(20)],
        RecordType::MINFO | RecordType::RP => &[N, N],
        RecordType::MX | RecordType::AFSDB | RecordType::RT | RecordType::KX => &[Fixed(2), N],
        RecordType::PX => &[Fixed(2), N, N],
        RecordType::SRV => &[Fixed(6), N],
        RecordType::NAPTR => &[Fixed(4), CharString, CharString, CharString, N],
        _ => return None,
    })
}

/// Whether names inside the RDATA of `rtype` may be compressed when
/// writing: only the well-known RFC 1035 types (RFC 3597 section 4).
pub fn rdata_compression_allowed(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::NS
            | RecordType::MD
            | RecordType::MF
            | RecordType::CNAME
            | RecordType::SOA
            | RecordType::MB
            | RecordType::MG
            | RecordType::MR
            | RecordType::PTR
            | RecordType::MINFO
            | RecordType::MX
    )
}

/// One piece of RDATA as walked by [`walk_rdata`].
#[derive(Debug, Clone, Copy)]
pub enum Piece<'a> {
    /// Opaque bytes: fixed fields, character-strings (with their length
    /// byte), or the whole RDATA of a type without names.
    Bytes(&'a [u8]),
    /// A name, read through compression pointers.
    Name(Name<'a>),
}

/// Walk the RDATA at `message[start..start + len]` field by field, handing
/// opaque bytes and names (read through pointers) to `visit`. Concatenating
/// the pieces, with each name in uncompressed form, gives the uncompressed
/// RDATA (what DNSSEC's canonical form starts from). Types whose names
/// senders never compress (RFC 3597 and later: RRSIG, NSEC, ...) come as
/// one `Bytes` piece.
pub fn walk_rdata<'a>(
    message: &'a [u8],
    rtype: RecordType,
    start: usize,
    len: usize,
    mut visit: impl FnMut(Piece<'a>) -> Result<()>,
) -> Result<()> {
    let end = start + len;
    let rdata = message
        .get(start..end)
        .ok_or(WireError::new(ErrorKind::Truncated("rdata"), message.len()))?;
    let Some(fields) = layout(rtype) else {
        return visit(Piece::Bytes(rdata));
    };
    let bad = |at: usize| WireError::new(ErrorKind::BadRdata, at);
    let mut pos = start;
    for field in fields {
        match *field {
            Field::Name => {
                let (name, after) = name_field(message, pos, end)?;
                visit(Piece::Name(name))?;
                pos = after;
            }
            Field::Fixed(size) => {
                let bytes = message.get(pos..pos + size).filter(|_| pos + size <= end);
                visit(Piece::Bytes(bytes.ok_or(bad(pos))?))?;
                pos += size;
            }
            Field::CharString => {
                let size = usize::from(*message.get(pos).filter(|_| pos < end).ok_or(bad(pos))?);
                let bytes = message
                    .get(pos..pos + 1 + size)
                    .filter(|_| pos + 1 + size <= end);
                visit(Piece::Bytes(bytes.ok_or(bad(pos))?))?;
                pos += 1 + size;
            }
        }
    }
    expect_end(pos, end)
}

/// A typed view of RDATA.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RData<'a> {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A name server.
    Ns(Name<'a>),
    /// A canonical name.
    Cname(Name<'a>),
    /// A delegation name.
    Dname(Name<'a>),
    /// A pointer.
    Ptr(Name<'a>),
    /// A mail exchange.
    Mx(Mx<'a>),
    /// Text strings.
    Txt(Txt<'a>),
    /// A start of authority.
    Soa(Soa<'a>),
    /// A service location.
    Srv(Srv<'a>),
    /// A certification authority authorization.
    Caa(Caa<'a>),
    /// Any other type, as opaque bytes (RFC 3597).
    Unknown(&'a [u8]),
}

/// MX RDATA (RFC 1035 section 3.3.9).
#[derive(Debug, Clone, Copy)]
pub struct Mx<'a> {
    /// Lower is preferred.
    pub preference: u16,
    /// The mail host.
    pub exchange: Name<'a>,
}

/// SOA RDATA (RFC 1035 section 3.3.13).
#[derive(Debug, Clone, Copy)]
pub struct Soa<'a> {
    /// The primary name server.
    pub mname: Name<'a>,
    /// The responsible person's mailbox.
    pub rname: Name<'a>,
    /// Zone serial number.
    pub serial: u32,
    /// Refresh interval in seconds.
    pub refresh: u32,
    /// Retry interval in seconds.
    pub retry: u32,
    /// Expiry in seconds.
    pub expire: u32,
    /// Negative caching TTL (RFC 2308).
    pub minimum: u32,
}

/// SRV RDATA (RFC 2782).
#[derive(Debug, Clone, Copy)]
pub struct Srv<'a> {
    /// Lower is preferred.
    pub priority: u16,
    /// Relative weight among equal priorities.
    pub weight: u16,
    /// The service's port.
    pub port: u16,
    /// The service's host.
    pub target: Name<'a>,
}

/// CAA RDATA (RFC 8659).
#[derive(Debug, Clone, Copy)]
pub struct Caa<'a> {
    /// Flags; bit 7 is "issuer critical".
    pub flags: u8,
    /// The property tag, such as `issue`.
    pub tag: &'a [u8],
    /// The property value.
    pub value: &'a [u8],
}

/// TXT RDATA: one or more character-strings (RFC 1035 section 3.3.14).
#[derive(Clone, Copy)]
pub struct Txt<'a> {
    bytes: &'a [u8],
}

impl<'a> Txt<'a> {
    /// View TXT RDATA, checking that the character-strings fill it exactly.
    pub fn new(bytes: &'a [u8], offset: usize) -> Result<Self> {
        let mut pos = 0usize;
        while let Some(&len) = bytes.get(pos) {
            pos += 1 + usize::from(len);
        }
        if pos != bytes.len() {
            return Err(WireError::new(ErrorKind::BadRdata, offset + bytes.len()));
        }
        Ok(Self { bytes })
    }

    /// The character-strings, without their length bytes.
    pub fn strings(&self) -> CharStrings<'a> {
        CharStrings { bytes: self.bytes }
    }

    /// The raw RDATA.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl fmt::Debug for Txt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.strings().map(|s| String::from_utf8_lossy(s)))
            .finish()
    }
}

/// Iterator over length-prefixed character-strings.
#[derive(Clone)]
pub struct CharStrings<'a> {
    bytes: &'a [u8],
}

impl<'a> Iterator for CharStrings<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, rest) = self.bytes.split_first()?;
        let (string, rest) = rest.split_at_checked(usize::from(len))?;
        self.bytes = rest;
        Some(string)
    }
}

fn fixed<const N: usize>(rdata: &[u8], at: usize, offset: usize) -> Result<[u8; N]> {
    rdata
        .get(at..at + N)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(WireError::new(ErrorKind::BadRdata, offset + at))
}

fn u16_at(rdata: &[u8], at: usize, offset: usize) -> Result<u16> {
    fixed::<2>(rdata, at, offset).map(u16::from_be_bytes)
}

fn u32_at(rdata: &[u8], at: usize, offset: usize) -> Result<u32> {
    fixed::<4>(rdata, at, offset).map(u32::from_be_bytes)
}

/// Parse one name field that must end inside the RDATA.
fn name_field(message: &[u8], at: usize, end: usize) -> Result<(Name<'_>, usize)> {
    let (name, after) = parse_name(message, at)?;
    if after > end {
        return Err(WireError::new(ErrorKind::BadRdata, at));
    }
    Ok((name, after))
}

fn expect_end(pos: usize, end: usize) -> Result<()> {
    if pos == end {
        Ok(())
    } else {
        Err(WireError::new(ErrorKind::BadRdata, pos))
    }
}

impl<'a> RData<'a> {
    /// Parse the RDATA of type `rtype` at `message[offset..offset + len]`;
    /// names are read through compression pointers into `message`.
    pub fn parse(message: &'a [u8], rtype: RecordType, offset: usize, len: usize) -> Result<Self> {
        let end = offset + len;
        let rdata = message
            .get(offset..end)
            .ok_or(WireError::new(ErrorKind::Truncated("rdata"), message.len()))?;
        let single_name = |message: &'a [u8]| -> Result<Name<'a>> {
            let (name, after) = name_field(message, offset, end)?;
            expect_end(after, end)?;
            Ok(name)
        };
        Ok(match rtype {
            RecordType::A => {
                expect_end(offset + 4, end)?;
                RData::A(Ipv4Addr::from(fixed::<4>(rdata, 0, offset)?))
            }
            RecordType::AAAA => {
                expect_end(offset + 16, end)?;
                RData::Aaaa(Ipv6Addr::from(fixed::<16>(rdata, 0, offset)?))
            }
            RecordType::NS => RData::Ns(single_name(message)?),
            RecordType::CNAME => RData::Cname(single_name(message)?),
            RecordType::DNAME => RData::Dname(single_name(message)?),
            RecordType::PTR => RData::Ptr(single_name(message)?),
            RecordType::MX => {
                let preference = u16_at(rdata, 0, offset)?;
                let (exchange, after) = name_field(message, offset + 2, end)?;
                expect_end(after, end)?;
                RData::Mx(Mx {
                    preference,
                    exchange,
                })
            }
            RecordType::TXT => RData::Txt(Txt::new(rdata, offset)?),
            RecordType::SOA => {
                let (mname, after) = name_field(message, offset, end)?;
                let (rname, after) = name_field(message, after, end)?;
                let numbers = message
                    .get(after..end)
                    .filter(|numbers| numbers.len() == 20)
                    .ok_or(WireError::new(ErrorKind::BadRdata, after))?;
                let number = |index: usize| u32_at(numbers, index * 4, after);
                RData::Soa(Soa {
                    mname,
                    rname,
                    serial: number(0)?,
                    refresh: number(1)?,
                    retry: number(2)?,
                    expire: number(3)?,
                    minimum: number(4)?,
                })
            }
            RecordType::SRV => {
                let (target, after) = name_field(message, offset + 6, end)?;
                expect_end(after, end)?;
                RData::Srv(Srv {
                    priority: u16_at(rdata, 0, offset)?,
                    weight: u16_at(rdata, 2, offset)?,
                    port: u16_at(rdata, 4, offset)?,
                    target,
                })
            }
            RecordType::CAA => {
                let (&flags, rest) = rdata
                    .split_first()
                    .ok_or(WireError::new(ErrorKind::BadRdata, offset))?;
                let (&tag_len, rest) = rest
                    .split_first()
                    .ok_or(WireError::new(ErrorKind::BadRdata, offset + 1))?;
                let (tag, value) = rest
                    .split_at_checked(usize::from(tag_len))
                    .filter(|_| tag_len > 0)
                    .ok_or(WireError::new(ErrorKind::BadRdata, offset + 1))?;
                RData::Caa(Caa { flags, tag, value })
            }
            _ => RData::Unknown(rdata),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rtype: RecordType, rdata: &[u8]) -> Result<RData<'_>> {
        RData::parse(rdata, rtype, 0, rdata.len())
    }

    #[test]
    fn addresses() {
        assert!(
            matches!(parse(RecordType::A, &[192, 0, 2, 1]), Ok(RData::A(a)) if a == Ipv4Addr::new(192, 0, 2, 1))
        );
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert!(
            matches!(parse(RecordType::AAAA, &v6), Ok(RData::Aaaa(a)) if a == Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            parse(RecordType::A, &[1, 2, 3]).unwrap_err().kind,
            ErrorKind::BadRdata
        );
        assert_eq!(
            parse(RecordType::A, &[1, 2, 3, 4, 5]).unwrap_err().kind,
            ErrorKind::BadRdata
        );
        assert_eq!(
            parse(RecordType::AAAA, &[0; 15]).unwrap_err().kind,
            ErrorKind::BadRdata
        );
    }

    #[test]
    fn single_name_types() {
        let rdata = b"\x02ns\x07example\x00";
        for rtype in [
            RecordType::NS,
            RecordType::CNAME,
            RecordType::DNAME,
            RecordType::PTR,
        ] {
            let name = match parse(rtype, rdata).unwrap() {
                RData::Ns(n) | RData::Cname(n) | RData::Dname(n) | RData::Ptr(n) => n,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(name.to_string(), "ns.example.");
        }
        // Trailing garbage after the name.
        assert_eq!(
            parse(RecordType::NS, b"\x00\x01").unwrap_err().kind,
            ErrorKind::BadRdata
        );
    }

    #[test]
    fn name_may_not_run_past_rdata() {
        // The RDATA is 3 bytes but the name continues beyond it.
        let message = b"\x02ns\x00";
        let err = RData::parse(message, RecordType::NS, 0, 3).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRdata);
    }

    #[test]
    fn mx_soa_srv_caa_txt() {
        let Ok(RData::Mx(mx)) = parse(RecordType::MX, b"\x00\x0a\x02mx\x00") else {
            panic!()
        };
        assert_eq!(
            (mx.preference, mx.exchange.to_string().as_str()),
            (10, "mx.")
        );

        let mut soa = b"\x02ns\x00\x04host\x00".to_vec();
        for value in [1u32, 2, 3, 4, 5] {
            soa.extend_from_slice(&value.to_be_bytes());
        }
        let Ok(RData::Soa(view)) = parse(RecordType::SOA, &soa) else {
            panic!()
        };
        assert_eq!(view.mname.to_string(), "ns.");
        assert_eq!(view.rname.to_string(), "host.");
        assert_eq!(
            [
                view.serial,
                view.refresh,
                view.retry,
                view.expire,
                view.minimum
            ],
            [1, 2, 3, 4, 5]
        );
        assert_eq!(
            parse(RecordType::SOA, &soa[..soa.len() - 1])
                .unwrap_err()
                .kind,
            ErrorKind::BadRdata
        );

        let Ok(RData::Srv(srv)) = parse(RecordType::SRV, b"\x00\x01\x00\x02\x00\x35\x01s\x00")
        else {
            panic!()
        };
        assert_eq!((srv.priority, srv.weight, srv.port), (1, 2, 53));
        assert_eq!(srv.target.to_string(), "s.");

        let Ok(RData::Caa(caa)) = parse(RecordType::CAA, b"\x80\x05issueca.example") else {
            panic!()
        };
        assert_eq!(
            (caa.flags, caa.tag, caa.value),
            (0x80, &b"issue"[..], &b"ca.example"[..])
        );
        assert!(parse(RecordType::CAA, b"\x00\x09issue").is_err());
        assert!(parse(RecordType::CAA, b"\x00\x00").is_err());

        let Ok(RData::Txt(txt)) = parse(RecordType::TXT, b"\x02hi\x00\x05there") else {
            panic!()
        };
        let strings: Vec<&[u8]> = txt.strings().collect();
        assert_eq!(strings, [&b"hi"[..], b"", b"there"]);
        assert_eq!(
            parse(RecordType::TXT, b"\x05abc").unwrap_err().kind,
            ErrorKind::BadRdata
        );
    }

    #[test]
    fn unknown_types_are_opaque() {
        let Ok(RData::Unknown(bytes)) = parse(RecordType(65_280), b"\xde\xad") else {
            panic!()
        };
        assert_eq!(bytes, b"\xde\xad");
    }

    #[test]
    fn rdata_compression_rules() {
        assert!(rdata_compression_allowed(RecordType::MX));
        assert!(rdata_compression_allowed(RecordType::SOA));
        assert!(!rdata_compression_allowed(RecordType::SRV));
        assert!(!rdata_compression_allowed(RecordType::DNAME));
        assert!(!rdata_compression_allowed(RecordType::A));
    }

    #[test]
    fn walk_follows_layout() {
        let mut pieces = Vec::new();
        walk_rdata(b"\x00\x0a\x02mx\x00", RecordType::MX, 0, 6, |piece| {
            pieces.push(match piece {
                Piece::Bytes(bytes) => format!("bytes {bytes:?}"),
                Piece::Name(name) => format!("name {name}"),
            });
            Ok(())
        })
        .unwrap();
        assert_eq!(pieces, ["bytes [0, 10]", "name mx."]);
        assert!(walk_rdata(b"\x00\x0a\x02mx\x00", RecordType::MX, 0, 7, |_| Ok(())).is_err());
        assert!(walk_rdata(b"\x00\x0a\x02mx\x00\x00", RecordType::MX, 0, 7, |_| Ok(())).is_err());
        assert!(walk_rdata(b"\x00", RecordType::MX, 0, 1, |_| Ok(())).is_err());
    }
}
