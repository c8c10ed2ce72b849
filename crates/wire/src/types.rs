//! IANA registries used on the wire: record types, classes, opcodes, rcodes.
//!
//! Each is a transparent newtype over its wire integer with named constants,
//! so unknown values (from newer RFCs or hostile peers) are carried through
//! unchanged instead of being rejected. Display prints the mnemonic when one
//! is known, else the RFC 3597 generic form (`TYPE65280`, `CLASS32`).

use core::fmt;

macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty), generic = $generic:literal {
            $( $(#[$cmeta:meta])* $konst:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($value); )*

            /// The IANA mnemonic, when this value has one we know.
            pub const fn mnemonic(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }

            /// The value for a mnemonic (case-insensitive) or the generic
            /// RFC 3597 form such as `TYPE65280`.
            pub fn from_mnemonic(text: &str) -> Option<Self> {
                $( if text.eq_ignore_ascii_case(stringify!($konst)) { return Some(Self::$konst); } )*
                let digits = text.get(..$generic.len())
                    .filter(|prefix| prefix.eq_ignore_ascii_case($generic))
                    .and_then(|_| text.get($generic.len()..))?;
                digits.parse::<$int>().ok().map(Self)
            }
        }

        impl From<$int> for $name {
            fn from(value: $int) -> Self { Self(value) }
        }

        impl From<$name> for $int {
            fn from(value: $name) -> Self { value.0 }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.mnemonic() {
                    Some(text) => f.write_str(text),
                    None => write!(f, "{}{}", $generic, self.0),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

registry! {
    /// A resource record type (RFC 1035 section 3.2.2 and the IANA registry).
    RecordType(u16), generic = "TYPE" {
        /// IPv4 address.
        A = 1,
        /// Authoritative name server.
        NS = 2,
        /// Mail destination (obsolete).
        MD = 3,
        /// Mail forwarder (obsolete).
        MF = 4,
        /// Canonical name.
        CNAME = 5,
        /// Start of authority.
        SOA = 6,
        /// Mailbox (experimental).
        MB = 7,
        /// Mail group member (experimental).
        MG = 8,
        /// Mail rename (experimental).
        MR = 9,
        /// Null RR (experimental).
        NULL = 10,
        /// Well-known services.
        WKS = 11,
        /// Domain name pointer.
        PTR = 12,
        /// Host information.
        HINFO = 13,
        /// Mailbox information.
        MINFO = 14,
        /// Mail exchange.
        MX = 15,
        /// Text strings.
        TXT = 16,
        /// Responsible person.
        RP = 17,
        /// AFS database.
        AFSDB = 18,
        /// Route through.
        RT = 21,
        /// X.400 mapping.
        PX = 26,
        /// IPv6 address.
        AAAA = 28,
        /// Location.
        LOC = 29,
        /// Server selection.
        SRV = 33,
        /// Naming authority pointer.
        NAPTR = 35,
        /// Key exchanger.
        KX = 36,
        /// Certificate.
        CERT = 37,
        /// Delegation name.
        DNAME = 39,
        /// EDNS(0) pseudo-record.
        OPT = 41,
        /// Address prefix list.
        APL = 42,
        /// Delegation signer.
        DS = 43,
        /// SSH key fingerprint.
        SSHFP = 44,
        /// IPsec key.
        IPSECKEY = 45,
        /// DNSSEC signature.
        RRSIG = 46,
        /// Next secure.
        NSEC = 47,
        /// DNS key.
        DNSKEY = 48,
        /// DHCP identifier.
        DHCID = 49,
        /// Hashed next secure.
        NSEC3 = 50,
        /// NSEC3 parameters.
        NSEC3PARAM = 51,
        /// TLSA certificate association.
        TLSA = 52,
        /// S/MIME certificate association.
        SMIMEA = 53,
        /// Child DS.
        CDS = 59,
        /// Child DNSKEY.
        CDNSKEY = 60,
        /// OpenPGP key.
        OPENPGPKEY = 61,
        /// Child-to-parent synchronization.
        CSYNC = 62,
        /// Message digest for DNS zones.
        ZONEMD = 63,
        /// Service binding.
        SVCB = 64,
        /// HTTPS service binding.
        HTTPS = 65,
        /// Sender policy framework (obsolete).
        SPF = 99,
        /// Transaction key.
        TKEY = 249,
        /// Transaction signature.
        TSIG = 250,
        /// Incremental zone transfer.
        IXFR = 251,
        /// Zone transfer.
        AXFR = 252,
        /// Any type (query only).
        ANY = 255,
        /// URI.
        URI = 256,
        /// Certification authority authorization.
        CAA = 257,
    }
}

registry! {
    /// A resource record class (RFC 1035 section 3.2.4).
    Class(u16), generic = "CLASS" {
        /// The Internet.
        IN = 1,
        /// Chaos.
        CH = 3,
        /// Hesiod.
        HS = 4,
        /// No class (RFC 2136).
        NONE = 254,
        /// Any class (query only).
        ANY = 255,
    }
}

registry! {
    /// A message opcode (4 bits of the header).
    Opcode(u8), generic = "OPCODE" {
        /// Standard query.
        QUERY = 0,
        /// Inverse query (obsolete).
        IQUERY = 1,
        /// Server status request.
        STATUS = 2,
        /// Zone change notification.
        NOTIFY = 4,
        /// Dynamic update.
        UPDATE = 5,
        /// DNS stateful operations.
        DSO = 6,
    }
}

registry! {
    /// A response code. Values above 15 need EDNS: the low 4 bits live in
    /// the header and the high 8 bits in the OPT record (RFC 6891).
    Rcode(u16), generic = "RCODE" {
        /// No error.
        NOERROR = 0,
        /// The server could not interpret the query.
        FORMERR = 1,
        /// The server failed to process the query.
        SERVFAIL = 2,
        /// The name does not exist.
        NXDOMAIN = 3,
        /// The kind of query is not implemented.
        NOTIMP = 4,
        /// The server refuses to answer.
        REFUSED = 5,
        /// A name exists that should not (RFC 2136).
        YXDOMAIN = 6,
        /// An RRset exists that should not (RFC 2136).
        YXRRSET = 7,
        /// An RRset that should exist does not (RFC 2136).
        NXRRSET = 8,
        /// Not authoritative (RFC 2136) / not authorized (RFC 8945).
        NOTAUTH = 9,
        /// Name not in zone (RFC 2136).
        NOTZONE = 10,
        /// Unsupported EDNS version (RFC 6891).
        BADVERS = 16,
        /// Bad or missing server cookie (RFC 7873).
        BADCOOKIE = 23,
    }
}

impl Rcode {
    /// The low 4 bits, which live in the header.
    pub const fn header_bits(self) -> u8 {
        (self.0 & 0x0f) as u8
    }

    /// The high 8 bits, which live in the OPT record's TTL field.
    pub const fn extended_bits(self) -> u8 {
        ((self.0 >> 4) & 0xff) as u8
    }

    /// Combine the header's 4 bits with the OPT record's 8 bits.
    pub const fn from_parts(header_bits: u8, extended_bits: u8) -> Self {
        Self(((extended_bits as u16) << 4) | (header_bits as u16 & 0x0f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_have_mnemonics() {
        assert_eq!(RecordType::AAAA.to_string(), "AAAA");
        assert_eq!(Class::IN.to_string(), "IN");
        assert_eq!(Opcode::NOTIFY.to_string(), "NOTIFY");
        assert_eq!(Rcode::NXDOMAIN.to_string(), "NXDOMAIN");
    }

    #[test]
    fn unknown_values_are_preserved_and_printed_generically() {
        let private = RecordType(65_280);
        assert_eq!(private.mnemonic(), None);
        assert_eq!(private.to_string(), "TYPE65280");
        assert_eq!(u16::from(private), 65_280);
        assert_eq!(Class(32).to_string(), "CLASS32");
        assert_eq!(Opcode(9).to_string(), "OPCODE9");
        assert_eq!(Rcode(3841).to_string(), "RCODE3841");
    }

    #[test]
    fn mnemonics_parse_both_ways() {
        assert_eq!(RecordType::from_mnemonic("mx"), Some(RecordType::MX));
        assert_eq!(
            RecordType::from_mnemonic("TYPE65280"),
            Some(RecordType(65_280))
        );
        assert_eq!(RecordType::from_mnemonic("type1"), Some(RecordType::A));
        assert_eq!(RecordType::from_mnemonic("TYPE"), None);
        assert_eq!(RecordType::from_mnemonic("TYPE70000"), None);
        assert_eq!(RecordType::from_mnemonic("BOGUS"), None);
        assert_eq!(Class::from_mnemonic("CLASS3"), Some(Class::CH));
    }

    #[test]
    fn extended_rcode_splits_and_joins() {
        let badvers = Rcode::BADVERS;
        assert_eq!(badvers.header_bits(), 0);
        assert_eq!(badvers.extended_bits(), 1);
        assert_eq!(Rcode::from_parts(0, 1), Rcode::BADVERS);
        assert_eq!(Rcode::from_parts(3, 0), Rcode::NXDOMAIN);
    }
}
