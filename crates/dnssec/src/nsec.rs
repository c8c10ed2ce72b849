//! Denial with NSEC (RFC 4035 sections 3.1.3 and 5.4, RFC 6840 section
//! 4.1): which record covers a name, which matches it, and the closest
//! encloser a covering record implies.

use core::cmp::Ordering;

use heimdall_wire::{Name, RecordType};

use crate::canonical::canonical_name_cmp;
use crate::denial::{FlatName, common_labels};
use crate::outcome::{Bogus, Failure};
use crate::rr::{Nsec, Rr};

struct Entry<'a> {
    owner: Name<'a>,
    nsec: Nsec<'a>,
}

fn entries<'a>(records: &'a [Rr<'a>], zone: &'a Name<'a>) -> impl Iterator<Item = Entry<'a>> + 'a {
    records.iter().filter_map(move |rr| {
        let owner = rr.owner();
        (owner.is_subdomain_of(zone))
            .then(|| Nsec::parse(rr))
            .flatten()
            .map(|nsec| Entry { owner, nsec })
    })
}

impl Entry<'_> {
    /// A delegation's NSEC from the parent side (NS without SOA) or a
    /// DNAME says nothing about names below its owner (RFC 6840 4.1).
    fn cuts_off(&self, name: &Name<'_>) -> bool {
        let types = self.nsec.types;
        let cut = (types.contains(RecordType::NS) && !types.contains(RecordType::SOA))
            || types.contains(RecordType::DNAME);
        cut && name.is_subdomain_of(&self.owner) && !name.eq_ignore_case(&self.owner)
    }

    /// Whether `name` lies strictly between owner and next (the last NSEC
    /// of the zone, whose next name is the apex, covers everything after
    /// its owner).
    fn covers(&self, name: &Name<'_>, zone: &Name<'_>) -> bool {
        if canonical_name_cmp(&self.owner, name) != Ordering::Less || self.cuts_off(name) {
            return false;
        }
        if canonical_name_cmp(&self.owner, &self.nsec.next) == Ordering::Less {
            canonical_name_cmp(name, &self.nsec.next) == Ordering::Less
        } else {
            name.is_subdomain_of(zone)
        }
    }

    fn matches(&self, name: &Name<'_>) -> bool {
        self.owner.eq_ignore_case(name)
    }

    /// Whether the record says `qtype` (or a CNAME instead) exists.
    fn has_type(&self, qtype: RecordType) -> bool {
        self.nsec.types.contains(qtype) || self.nsec.types.contains(RecordType::CNAME)
    }

    /// The closest encloser of `qname` this covering record implies: the
    /// longer common ancestor with its owner or its next name.
    fn closest_encloser(&self, qname: &Name<'_>) -> usize {
        common_labels(qname, &self.owner).max(common_labels(qname, &self.nsec.next))
    }

    /// Whether the record's next name lies below `name` (so `name` is an
    /// empty non-terminal).
    fn next_below(&self, name: &Name<'_>) -> bool {
        self.nsec.next.is_subdomain_of(name) && !self.nsec.next.eq_ignore_case(name)
    }
}

/// NXDOMAIN: a record covers `qname` (and `qname` is no empty
/// non-terminal), and a record covers the wildcard at the closest
/// encloser.
pub(crate) fn nxdomain(
    qname: &FlatName,
    zone: &Name<'_>,
    records: &[Rr<'_>],
) -> Result<(), Failure> {
    let name = qname.suffix(qname.labels()).ok_or(Bogus::Malformed)?;
    if entries(records, zone).any(|entry| entry.matches(&name)) {
        return Err(Bogus::BadDenial.into());
    }
    let cover = entries(records, zone)
        .find(|entry| entry.covers(&name, zone))
        .ok_or(Bogus::NsecMissing)?;
    if cover.next_below(&name) {
        return Err(Bogus::BadDenial.into());
    }
    let encloser = cover.closest_encloser(&name).max(zone.label_count());
    let wildcard = qname.wildcard_at(encloser).ok_or(Bogus::Malformed)?;
    let wildcard = wildcard.as_name();
    if entries(records, zone).any(|entry| entry.matches(&wildcard)) {
        return Err(Bogus::BadDenial.into());
    }
    if entries(records, zone).any(|entry| entry.covers(&wildcard, zone)) {
        Ok(())
    } else {
        Err(Bogus::NsecMissing.into())
    }
}

/// NODATA: a matching record without the type, an empty non-terminal,
/// or a wildcard NODATA.
pub(crate) fn nodata(
    qname: &FlatName,
    qtype: RecordType,
    zone: &Name<'_>,
    records: &[Rr<'_>],
) -> Result<(), Failure> {
    let name = qname.suffix(qname.labels()).ok_or(Bogus::Malformed)?;
    if let Some(entry) = entries(records, zone).find(|entry| entry.matches(&name)) {
        let types = entry.nsec.types;
        if entry.has_type(qtype) {
            return Err(Bogus::BadDenial.into());
        }
        let parent_side = types.contains(RecordType::NS) && !types.contains(RecordType::SOA);
        // Only DS lives on the parent side of a cut; and a child apex
        // record cannot deny the parent's DS.
        if (qtype != RecordType::DS && parent_side)
            || (qtype == RecordType::DS && types.contains(RecordType::SOA) && !name.is_root())
        {
            return Err(Bogus::BadDenial.into());
        }
        return Ok(());
    }
    let cover = entries(records, zone)
        .find(|entry| entry.covers(&name, zone))
        .ok_or(Bogus::NsecMissing)?;
    if cover.next_below(&name) {
        // An empty non-terminal: it exists, with no records at all.
        return Ok(());
    }
    let encloser = cover.closest_encloser(&name).max(zone.label_count());
    let wildcard = qname.wildcard_at(encloser).ok_or(Bogus::Malformed)?;
    let wildcard = wildcard.as_name();
    match entries(records, zone).find(|entry| entry.matches(&wildcard)) {
        Some(entry) if entry.has_type(qtype) => Err(Bogus::BadDenial.into()),
        Some(_) => Ok(()),
        None => Err(Bogus::NsecMissing.into()),
    }
}

/// Wildcard answer: the next closer name (the query name cut to one label
/// below the wildcard's encloser) is covered, so no closer match exists.
pub(crate) fn no_closer_match(
    qname: &FlatName,
    encloser: usize,
    zone: &Name<'_>,
    records: &[Rr<'_>],
) -> Result<(), Failure> {
    let next_closer = qname.suffix(encloser + 1).ok_or(Bogus::Malformed)?;
    if entries(records, zone)
        .any(|entry| entry.covers(&next_closer, zone) && !entry.next_below(&next_closer))
    {
        Ok(())
    } else {
        Err(Bogus::NsecMissing.into())
    }
}
