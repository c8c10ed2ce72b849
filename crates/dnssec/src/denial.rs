//! Authenticated denial of existence, the entry points: NXDOMAIN, NODATA
//! and "no closer match" for wildcard answers, proved with NSEC
//! (module `nsec`) or NSEC3 (module `nsec3`), whichever the records are.
//!
//! Every NSEC/NSEC3 record passed in must already have been validated
//! with [`crate::validate_rrset`] against `zone`'s keys; these functions
//! only reason about what the validated records say. `zone` is their
//! signer name (the zone apex).

use arrayvec::ArrayVec;
use heimdall_wire::{MAX_LABELS, Name, NameBuf, RecordType, WireNameBuf};

use crate::outcome::{Bogus, Failure};
use crate::rr::Rr;
use crate::validate::Config;
use crate::{nsec, nsec3};

/// Which kind of chain the records hold.
fn chain_kind(records: &[Rr<'_>]) -> Option<RecordType> {
    if records.iter().any(|rr| rr.rtype() == RecordType::NSEC) {
        Some(RecordType::NSEC)
    } else if records.iter().any(|rr| rr.rtype() == RecordType::NSEC3) {
        Some(RecordType::NSEC3)
    } else {
        None
    }
}

fn check_scope(qname: &Name<'_>, zone: &Name<'_>) -> Result<FlatName, Failure> {
    if !qname.is_subdomain_of(zone) {
        return Err(Bogus::BadDenial.into());
    }
    Ok(FlatName::new(qname))
}

/// Prove that `qname` does not exist in `zone` (RFC 4035 section 5.4,
/// RFC 5155 section 8.4): nothing at or below it, and no wildcard at its
/// closest encloser.
pub fn prove_nxdomain(
    qname: &Name<'_>,
    zone: &Name<'_>,
    records: &[Rr<'_>],
    config: &Config,
) -> Result<(), Failure> {
    let flat = check_scope(qname, zone)?;
    match chain_kind(records) {
        Some(RecordType::NSEC) => nsec::nxdomain(&flat, zone, records),
        Some(_) => nsec3::nxdomain(&flat, zone, records, config),
        None => Err(Bogus::NsecMissing.into()),
    }
}

/// Prove that `qname` has no `qtype` records (nor a CNAME): a matching
/// NSEC/NSEC3 without the type, an empty non-terminal, a wildcard without
/// the type (RFC 4035 section 5.4, RFC 5155 sections 8.5-8.7). For DS at
/// an unsigned delegation under NSEC3 opt-out the result is
/// [`crate::Insecure::Nsec3OptOut`].
pub fn prove_nodata(
    qname: &Name<'_>,
    qtype: RecordType,
    zone: &Name<'_>,
    records: &[Rr<'_>],
    config: &Config,
) -> Result<(), Failure> {
    let flat = check_scope(qname, zone)?;
    match chain_kind(records) {
        Some(RecordType::NSEC) => nsec::nodata(&flat, qtype, zone, records),
        Some(_) => nsec3::nodata(&flat, qtype, zone, records, config),
        None => Err(Bogus::NsecMissing.into()),
    }
}

/// Prove that an answer for `qname` synthesised from `wildcard` (the
/// `*.` name [`crate::Secure::wildcard`] reported) was the closest match:
/// the next closer name does not exist (RFC 4035 section 5.3.4, RFC 5155
/// section 8.8).
pub fn prove_wildcard_answer(
    qname: &Name<'_>,
    wildcard: &Name<'_>,
    zone: &Name<'_>,
    records: &[Rr<'_>],
    config: &Config,
) -> Result<(), Failure> {
    let flat = check_scope(qname, zone)?;
    let is_wildcard = wildcard.labels().next() == Some(b"*".as_slice());
    let encloser = wildcard.label_count().saturating_sub(1);
    if !is_wildcard || encloser >= flat.labels() || encloser < zone.label_count() {
        return Err(Bogus::BadDenial.into());
    }
    let source = flat.suffix(encloser).ok_or(Bogus::Malformed)?;
    let parent = wildcard_parent(wildcard).ok_or(Bogus::Malformed)?;
    if !source.eq_ignore_case(&parent.as_name()) {
        return Err(Bogus::BadDenial.into());
    }
    match chain_kind(records) {
        Some(RecordType::NSEC) => nsec::no_closer_match(&flat, encloser, zone, records),
        Some(_) => nsec3::no_closer_match(&flat, encloser, zone, records, config),
        None => Err(Bogus::NsecMissing.into()),
    }
}

/// The name a wildcard hangs from (`*.example.` -> `example.`).
fn wildcard_parent(wildcard: &Name<'_>) -> Option<NameBuf> {
    let mut wire = WireNameBuf::new();
    wildcard.write_wire(&mut wire);
    let skip = 1 + usize::from(*wire.first()?);
    NameBuf::from_wire(wire.get(skip..)?).ok()
}

/// A name lower-cased and flattened, so that every suffix of it is a
/// [`Name`] without copying.
pub(crate) struct FlatName {
    wire: WireNameBuf,
    /// Offset of each label, left to right.
    starts: ArrayVec<u8, MAX_LABELS>,
}

impl FlatName {
    pub(crate) fn new(name: &Name<'_>) -> Self {
        let mut wire = WireNameBuf::new();
        name.write_lower(&mut wire);
        let mut starts = ArrayVec::new();
        let mut pos = 0usize;
        for label in name.labels() {
            let _fits = starts.try_push(pos as u8);
            pos += 1 + label.len();
        }
        Self { wire, starts }
    }

    /// Number of labels (without the root).
    pub(crate) fn labels(&self) -> usize {
        self.starts.len()
    }

    /// The rightmost `labels` labels.
    pub(crate) fn suffix(&self, labels: usize) -> Option<Name<'_>> {
        let start = if labels == 0 {
            self.wire.len().checked_sub(1)?
        } else {
            usize::from(*self.starts.get(self.labels().checked_sub(labels)?)?)
        };
        Name::from_wire(self.wire.get(start..)?).ok()
    }

    /// `*.` + the rightmost `labels` labels.
    pub(crate) fn wildcard_at(&self, labels: usize) -> Option<NameBuf> {
        let parent = self.suffix(labels)?;
        let mut wire: Vec<u8> = Vec::with_capacity(parent.wire_len() + 2);
        wire.extend_from_slice(b"\x01*");
        let mut rest = WireNameBuf::new();
        parent.write_wire(&mut rest);
        wire.extend_from_slice(&rest);
        NameBuf::from_wire(&wire).ok()
    }
}

/// Number of rightmost labels `a` and `b` share (case-insensitive).
pub(crate) fn common_labels(a: &Name<'_>, b: &Name<'_>) -> usize {
    let left: ArrayVec<&[u8], MAX_LABELS> = a.labels().take(MAX_LABELS).collect();
    let right: ArrayVec<&[u8], MAX_LABELS> = b.labels().take(MAX_LABELS).collect();
    left.iter()
        .rev()
        .zip(right.iter().rev())
        .take_while(|(x, y)| x.eq_ignore_ascii_case(y))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_names_hand_out_suffixes_and_wildcards() {
        let name = NameBuf::from_presentation("A.b.Example.").unwrap();
        let flat = FlatName::new(&name.as_name());
        assert_eq!(flat.labels(), 3);
        assert_eq!(flat.suffix(3).unwrap().to_string(), "a.b.example.");
        assert_eq!(flat.suffix(1).unwrap().to_string(), "example.");
        assert_eq!(flat.suffix(0).unwrap().to_string(), ".");
        assert!(flat.suffix(4).is_none());
        assert_eq!(flat.wildcard_at(1).unwrap().to_string(), "*.example.");
        assert_eq!(flat.wildcard_at(0).unwrap().to_string(), "*.");
        let other = NameBuf::from_presentation("x.B.example.").unwrap();
        assert_eq!(common_labels(&name.as_name(), &other.as_name()), 2);
    }
}
