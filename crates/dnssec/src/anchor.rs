//! Trust anchors: DS and DNSKEY records in presentation format (the usual
//! trust-anchor file: `. IN DS 20326 8 2 E06D...`, one record per entry,
//! comments and parentheses as in master files), with the root zone's
//! KSKs built in.

use heimdall_wire::{Class, Name, NameBuf, RecordType};

use crate::rr::{Dnskey, Ds, Rr};

/// The root zone's key-signing keys as DS records, from IANA's
/// root-anchors.xml: KSK-2017 (20326) and KSK-2024 (38696).
pub const ROOT_ANCHORS: &str = "\
. IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D
. IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16
";

/// A trust-anchor text that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    /// The text is not valid master-file syntax.
    #[error("{0}")]
    Syntax(String),
    /// A record that is not an IN-class DS or DNSKEY, or whose RDATA is
    /// not a valid DS/DNSKEY.
    #[error("trust anchor {owner} {rtype}: {what}")]
    Record {
        /// Its owner.
        owner: String,
        /// Its type.
        rtype: RecordType,
        /// What is wrong.
        what: &'static str,
    },
}

/// One trust anchor: a DS or DNSKEY record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    owner: NameBuf,
    rtype: RecordType,
    rdata: Vec<u8>,
}

impl TrustAnchor {
    /// Its owner (the zone it anchors).
    pub fn owner(&self) -> &NameBuf {
        &self.owner
    }

    /// DS or DNSKEY.
    pub fn rtype(&self) -> RecordType {
        self.rtype
    }

    /// The record, for [`crate::verify_dnskeys_with_ds`] and friends.
    pub fn as_rr(&self) -> Rr<'_> {
        Rr::new(self.owner.as_name(), self.rtype, Class::IN, 0, &self.rdata)
    }
}

/// A set of trust anchors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustAnchors {
    anchors: Vec<TrustAnchor>,
}

impl TrustAnchors {
    /// No anchors.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in root anchors ([`ROOT_ANCHORS`]).
    pub fn root() -> Self {
        // The constant is checked by a unit test; an empty set would only
        // make everything insecure, never wrongly secure.
        Self::parse(ROOT_ANCHORS).unwrap_or_default()
    }

    /// Parse trust anchors in master-file syntax: IN-class DS and DNSKEY
    /// records with absolute owner names (relative ones are taken as
    /// absolute), no `$INCLUDE`.
    pub fn parse(text: &str) -> Result<Self, AnchorError> {
        let root = NameBuf::root();
        let records = heimdall_zone::parse_zone(text, "trust anchors", Some(&root), &mut |_| {
            Err(std::io::Error::other(
                "$INCLUDE is not allowed in trust anchors",
            ))
        })
        .map_err(|err| AnchorError::Syntax(err.to_string()))?;
        let mut anchors = Vec::with_capacity(records.len());
        for record in records {
            let fail = |what| AnchorError::Record {
                owner: record.owner.to_string(),
                rtype: record.rtype,
                what,
            };
            if record.class != Class::IN {
                return Err(fail("not class IN"));
            }
            let rr = Rr::new(
                record.owner.as_name(),
                record.rtype,
                record.class,
                0,
                &record.rdata,
            );
            match record.rtype {
                RecordType::DS => {
                    Ds::parse(&rr).ok_or_else(|| fail("malformed DS"))?;
                }
                RecordType::DNSKEY => {
                    let key = Dnskey::parse(&rr).ok_or_else(|| fail("malformed DNSKEY"))?;
                    if key.protocol != 3 || !key.is_zone_key() {
                        return Err(fail("not a zone key (flags bit 7, protocol 3)"));
                    }
                }
                _ => return Err(fail("only DS and DNSKEY records can be trust anchors")),
            }
            anchors.push(TrustAnchor {
                owner: record.owner,
                rtype: record.rtype,
                rdata: record.rdata,
            });
        }
        Ok(Self { anchors })
    }

    /// Add the anchors of `other`.
    pub fn extend(&mut self, other: TrustAnchors) {
        self.anchors.extend(other.anchors);
    }

    /// All anchors.
    pub fn iter(&self) -> impl Iterator<Item = &TrustAnchor> {
        self.anchors.iter()
    }

    /// How many anchors there are.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// The anchors for zone `owner`, as records.
    pub fn at<'s>(&'s self, owner: &Name<'_>) -> impl Iterator<Item = Rr<'s>> {
        let owner = NameBuf::from_name(owner);
        self.anchors
            .iter()
            .filter(move |anchor| anchor.owner.as_name().eq_ignore_case(&owner.as_name()))
            .map(TrustAnchor::as_rr)
    }

    /// The deepest anchored zone at or above `name`: where validation of
    /// `name` starts. `None`: nothing above it is anchored.
    pub fn closest(&self, name: &Name<'_>) -> Option<&NameBuf> {
        self.anchors
            .iter()
            .map(|anchor| &anchor.owner)
            .filter(|owner| name.is_subdomain_of(&owner.as_name()))
            .max_by_key(|owner| owner.as_name().label_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_anchors_parse() {
        let anchors = TrustAnchors::root();
        assert_eq!(anchors.len(), 2);
        let tags: Vec<u16> = anchors
            .at(&Name::root())
            .map(|rr| Ds::parse(&rr).unwrap().key_tag)
            .collect();
        assert_eq!(tags, [20326, 38696]);
        let first = anchors.iter().next().unwrap().as_rr();
        let ds = Ds::parse(&first).unwrap();
        assert_eq!((ds.algorithm, ds.digest_type, ds.digest.len()), (8, 2, 32));
        let www = NameBuf::from_presentation("www.example.").unwrap();
        assert_eq!(anchors.closest(&www.as_name()), Some(&NameBuf::root()));
    }

    #[test]
    fn files_with_comments_keys_and_deeper_zones_parse() {
        let text = "; local anchors\n\
            example.  IN DS 12345 13 2 ( 0123456789abcdef0123456789abcdef\n\
                                         0123456789abcdef0123456789abcdef ) ; split\n\
            sub.example. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=\n";
        let mut anchors = TrustAnchors::parse(text).unwrap();
        anchors.extend(TrustAnchors::root());
        assert_eq!(anchors.len(), 4);
        let deep = NameBuf::from_presentation("a.SUB.example.").unwrap();
        assert_eq!(
            anchors.closest(&deep.as_name()).unwrap().to_string(),
            "sub.example."
        );
        let key = anchors
            .at(&NameBuf::from_presentation("sub.example.")
                .unwrap()
                .as_name())
            .next()
            .unwrap();
        assert_eq!(Dnskey::parse(&key).unwrap().algorithm, 15);
    }

    #[test]
    fn other_records_and_broken_ones_are_refused() {
        for text in [
            "example. IN A 192.0.2.1",
            "example. IN DS 1 8 2",
            "example. IN DNSKEY 256 2 8 AwEAAQ==",
            "example. IN DNSKEY 0 3 8 AwEAAQ==",
            "example. CH DS 1 8 2 00",
            "example. IN DS 1 8 2 XYZ",
            "$INCLUDE other.keys",
        ] {
            assert!(TrustAnchors::parse(text).is_err(), "{text}");
        }
    }
}
