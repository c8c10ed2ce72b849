//! Denial with NSEC3 (RFC 5155 section 8, RFC 9276): the hash, the
//! closest encloser proof, and the iteration limit checked before any
//! hashing is done.

use arrayvec::ArrayVec;
use heimdall_wire::{Name, RecordType, WireNameBuf};

use crate::crypto::sha1;
use crate::denial::FlatName;
use crate::outcome::{Bogus, Failure, Insecure};
use crate::rr::{Nsec3, Rr};
use crate::validate::Config;

/// Length of a SHA-1 NSEC3 hash.
const HASH_LEN: usize = 20;

/// The NSEC3 hash of `name` (RFC 5155 section 5): SHA-1 over the
/// lower-cased wire name and the salt, then `iterations` more times over
/// the previous hash and the salt.
pub fn nsec3_hash(name: &Name<'_>, salt: &[u8], iterations: u16) -> [u8; HASH_LEN] {
    let mut wire = WireNameBuf::new();
    name.write_lower(&mut wire);
    let mut hash = sha1(&[&wire, salt]);
    for _ in 0..iterations {
        hash = sha1(&[&hash, salt]);
    }
    hash
}

struct Entry<'a> {
    hash: [u8; HASH_LEN],
    nsec3: Nsec3<'a>,
}

/// The usable NSEC3 records of one zone, all with the same parameters.
struct Chain<'a> {
    entries: Vec<Entry<'a>>,
    salt: &'a [u8],
    iterations: u16,
}

/// The hash in the first label of an NSEC3 owner, base32hex-decoded.
fn owner_hash(owner: &Name<'_>) -> Option<[u8; HASH_LEN]> {
    let label = owner.labels().next()?;
    let mut upper: ArrayVec<u8, 63> = ArrayVec::new();
    upper.try_extend_from_slice(label).ok()?;
    upper.make_ascii_uppercase();
    let mut out = [0u8; HASH_LEN];
    let len = data_encoding::BASE32HEX_NOPAD
        .decode_len(upper.len())
        .ok()?;
    if len != HASH_LEN {
        return None;
    }
    data_encoding::BASE32HEX_NOPAD
        .decode_mut(&upper, &mut out)
        .ok()?;
    Some(out)
}

impl<'a> Chain<'a> {
    fn new(records: &'a [Rr<'a>], zone: &Name<'_>, config: &Config) -> Result<Self, Failure> {
        let mut unsupported = None;
        let mut entries: Vec<Entry<'a>> = Vec::new();
        let mut params: Option<(&'a [u8], u16)> = None;
        for rr in records.iter().filter(|rr| rr.rtype() == RecordType::NSEC3) {
            let owner = rr.owner();
            if owner.label_count() != zone.label_count() + 1 || !owner.is_subdomain_of(zone) {
                continue;
            }
            let Some(nsec3) = Nsec3::parse(rr) else {
                continue;
            };
            // RFC 5155 section 8.1 and 8.2: unknown hash algorithms and
            // flags other than opt-out make a record unusable.
            if nsec3.hash_algorithm != 1 || nsec3.flags > 1 || nsec3.next_hashed.len() != HASH_LEN {
                unsupported.get_or_insert(nsec3.hash_algorithm);
                continue;
            }
            let Some(hash) = owner_hash(&owner) else {
                continue;
            };
            let (salt, iterations) = *params.get_or_insert((nsec3.salt, nsec3.iterations));
            if iterations > config.nsec3_max_iterations {
                return Err(Insecure::Nsec3Iterations(iterations).into());
            }
            if nsec3.salt == salt && nsec3.iterations == iterations {
                entries.push(Entry { hash, nsec3 });
            }
        }
        match params {
            Some((salt, iterations)) => Ok(Self {
                entries,
                salt,
                iterations,
            }),
            None => match unsupported {
                Some(algorithm) => Err(Insecure::UnsupportedNsec3Hash(algorithm).into()),
                None => Err(Bogus::NsecMissing.into()),
            },
        }
    }

    fn hash(&self, name: &Name<'_>) -> [u8; HASH_LEN] {
        nsec3_hash(name, self.salt, self.iterations)
    }

    fn matching(&self, hash: &[u8; HASH_LEN]) -> Option<&Entry<'a>> {
        self.entries.iter().find(|entry| &entry.hash == hash)
    }

    fn covering(&self, hash: &[u8; HASH_LEN]) -> Option<&Entry<'a>> {
        self.entries.iter().find(|entry| {
            let (owner, next) = (entry.hash.as_slice(), entry.nsec3.next_hashed);
            let hash = hash.as_slice();
            if owner < next {
                owner < hash && hash < next
            } else {
                // The last record of the chain wraps around (or is the
                // only one).
                hash > owner || hash < next
            }
        })
    }
}

/// The result of the closest encloser search.
enum Encloser<'c, 'a> {
    /// The query name itself has a matching record.
    Exact(&'c Entry<'a>),
    /// The closest encloser (as a label count) and the record covering
    /// the next closer name.
    Proven {
        labels: usize,
        next_closer: &'c Entry<'a>,
    },
}

/// RFC 5155 section 8.3: walk up from the query name to the first
/// ancestor with a matching record; the name one label below it must be
/// covered.
fn closest_encloser<'c, 'a>(
    chain: &'c Chain<'a>,
    qname: &FlatName,
    zone: &Name<'_>,
) -> Result<Encloser<'c, 'a>, Failure> {
    for labels in (zone.label_count()..=qname.labels()).rev() {
        let candidate = qname.suffix(labels).ok_or(Bogus::Malformed)?;
        let Some(entry) = chain.matching(&chain.hash(&candidate)) else {
            continue;
        };
        if labels == qname.labels() {
            return Ok(Encloser::Exact(entry));
        }
        let types = entry.nsec3.types;
        // A delegation (from the parent side) or a DNAME cannot be the
        // closest encloser of names below it (RFC 5155 8.3, RFC 6840 4.1).
        if (types.contains(RecordType::NS) && !types.contains(RecordType::SOA))
            || types.contains(RecordType::DNAME)
        {
            return Err(Bogus::BadDenial.into());
        }
        let next_closer = qname.suffix(labels + 1).ok_or(Bogus::Malformed)?;
        let cover = chain
            .covering(&chain.hash(&next_closer))
            .ok_or(Bogus::NsecMissing)?;
        return Ok(Encloser::Proven {
            labels,
            next_closer: cover,
        });
    }
    Err(Bogus::NsecMissing.into())
}

/// NXDOMAIN (RFC 5155 section 8.4): closest encloser proof plus a record
/// covering the wildcard at the closest encloser. Under an opt-out span
/// the name could be an unsigned delegation: insecure.
pub(crate) fn nxdomain(
    qname: &FlatName,
    zone: &Name<'_>,
    records: &[Rr<'_>],
    config: &Config,
) -> Result<(), Failure> {
    let chain = Chain::new(records, zone, config)?;
    let (labels, next_closer) = match closest_encloser(&chain, qname, zone)? {
        Encloser::Exact(_) => return Err(Bogus::BadDenial.into()),
        Encloser::Proven {
            labels,
            next_closer,
        } => (labels, next_closer),
    };
    let wildcard = qname.wildcard_at(labels).ok_or(Bogus::Malformed)?;
    let hash = chain.hash(&wildcard.as_name());
    if chain.matching(&hash).is_some() {
        return Err(Bogus::BadDenial.into());
    }
    chain.covering(&hash).ok_or(Bogus::NsecMissing)?;
    if next_closer.nsec3.opt_out() {
        return Err(Insecure::Nsec3OptOut.into());
    }
    Ok(())
}

/// NODATA (RFC 5155 sections 8.5-8.7): a matching record without the
/// type; else a wildcard NODATA at the closest encloser; else, under an
/// opt-out span (DS at an unsigned delegation, or an empty non-terminal
/// above only unsigned delegations), insecure.
pub(crate) fn nodata(
    qname: &FlatName,
    qtype: RecordType,
    zone: &Name<'_>,
    records: &[Rr<'_>],
    config: &Config,
) -> Result<(), Failure> {
    let chain = Chain::new(records, zone, config)?;
    let (labels, next_closer) = match closest_encloser(&chain, qname, zone)? {
        Encloser::Exact(entry) => {
            let types = entry.nsec3.types;
            if types.contains(qtype) || types.contains(RecordType::CNAME) {
                return Err(Bogus::BadDenial.into());
            }
            let parent_side = types.contains(RecordType::NS) && !types.contains(RecordType::SOA);
            if (qtype != RecordType::DS && parent_side)
                || (qtype == RecordType::DS
                    && types.contains(RecordType::SOA)
                    && qname.labels() > 0)
            {
                return Err(Bogus::BadDenial.into());
            }
            return Ok(());
        }
        Encloser::Proven {
            labels,
            next_closer,
        } => (labels, next_closer),
    };
    let wildcard = qname.wildcard_at(labels).ok_or(Bogus::Malformed)?;
    if let Some(entry) = chain.matching(&chain.hash(&wildcard.as_name())) {
        let types = entry.nsec3.types;
        return if types.contains(qtype) || types.contains(RecordType::CNAME) {
            Err(Bogus::BadDenial.into())
        } else {
            Ok(())
        };
    }
    if next_closer.nsec3.opt_out() {
        return Err(Insecure::Nsec3OptOut.into());
    }
    Err(Bogus::NsecMissing.into())
}

/// Wildcard answer (RFC 5155 section 8.8): the next closer name below the
/// wildcard's encloser is covered.
pub(crate) fn no_closer_match(
    qname: &FlatName,
    encloser: usize,
    zone: &Name<'_>,
    records: &[Rr<'_>],
    config: &Config,
) -> Result<(), Failure> {
    let chain = Chain::new(records, zone, config)?;
    let next_closer = qname.suffix(encloser + 1).ok_or(Bogus::Malformed)?;
    chain
        .covering(&chain.hash(&next_closer))
        .map(|_| ())
        .ok_or(Bogus::NsecMissing.into())
}

#[cfg(test)]
mod tests {
    use heimdall_wire::NameBuf;

    use super::*;

    fn hash32(name: &str, salt: &[u8], iterations: u16) -> String {
        let name = NameBuf::from_presentation(name).unwrap();
        data_encoding::BASE32HEX_NOPAD
            .encode(&nsec3_hash(&name.as_name(), salt, iterations))
            .to_ascii_lowercase()
    }

    #[test]
    fn hashes_of_rfc_5155_appendix_a() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        assert_eq!(
            hash32("example.", &salt, 12),
            "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"
        );
        assert_eq!(
            hash32("a.example.", &salt, 12),
            "35mthgpgcu1qg68fab165klnsnk3dpvl"
        );
        assert_eq!(
            hash32("A.EXAMPLE.", &salt, 12),
            "35mthgpgcu1qg68fab165klnsnk3dpvl"
        );
        assert_eq!(
            hash32("ns1.example.", &salt, 12),
            "2t7b4g4vsa5smi47k61mv5bv1a22bojr"
        );
    }
}
