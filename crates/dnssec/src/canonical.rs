//! The canonical form of RFC 4034 section 6: name order (6.1), RDATA
//! with embedded names uncompressed and lower-cased for the types 6.2
//! lists (as corrected by RFC 6840 section 5.1: NSEC's next name keeps
//! its case, RRSIG's signer is lowered), and the signed data of an RRSIG
//! (RFC 4034 section 3.1.8.1) with RRs in canonical order (6.3), one
//! copy of each.

use core::cmp::Ordering;

use arrayvec::ArrayVec;
use heimdall_wire::{MAX_LABELS, Name, RdataPiece, RecordType, WireNameBuf};

use crate::outcome::Bogus;
use crate::rr::{Rr, Rrsig};

/// Compare two names in DNSSEC canonical order: label by label from the
/// root, each label as lower-cased bytes (a shorter label that is a prefix
/// sorts first), and an ancestor before its descendants.
pub fn canonical_name_cmp(a: &Name<'_>, b: &Name<'_>) -> Ordering {
    let left: ArrayVec<&[u8], MAX_LABELS> = a.labels().take(MAX_LABELS).collect();
    let right: ArrayVec<&[u8], MAX_LABELS> = b.labels().take(MAX_LABELS).collect();
    for (x, y) in left.iter().rev().zip(right.iter().rev()) {
        let order = x
            .iter()
            .map(u8::to_ascii_lowercase)
            .cmp(y.iter().map(u8::to_ascii_lowercase));
        if order != Ordering::Equal {
            return order;
        }
    }
    left.len().cmp(&right.len())
}

/// Append `name` lower-cased, uncompressed.
pub(crate) fn push_lower_name(name: &Name<'_>, out: &mut Vec<u8>) {
    let mut wire = WireNameBuf::new();
    name.write_lower(&mut wire);
    out.extend_from_slice(&wire);
}

/// Whether names in the RDATA of `rtype` are lower-cased in canonical
/// form (RFC 4034 section 6.2 item 3, minus NSEC per RFC 6840 5.1).
fn lowers_names(rtype: RecordType) -> bool {
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
            | RecordType::RP
            | RecordType::AFSDB
            | RecordType::RT
            | RecordType::PX
            | RecordType::NAPTR
            | RecordType::KX
            | RecordType::SRV
            | RecordType::DNAME
            | RecordType::RRSIG
    ) || matches!(rtype.0, 24 | 30) // SIG, NXT
}

/// Append the canonical RDATA of `rr` to `out`: embedded names
/// uncompressed (read through pointers into the record's message) and,
/// for the types that call for it, lower-cased.
pub fn canonical_rdata(rr: &Rr<'_>, out: &mut Vec<u8>) -> Result<(), Bogus> {
    let rtype = rr.rtype();
    let lower = lowers_names(rtype);
    let rdata = rr.rdata();
    // SIG/RRSIG and NXT carry names at fixed places that the wire
    // crate's layout table does not list (they are never compressed).
    let name_at = match rtype.0 {
        24 | 46 => Some(Rrsig::FIXED_LEN),
        30 => Some(0),
        _ => None,
    };
    if let Some(at) = name_at {
        let (name, after) = rr.name_at(at).ok_or(Bogus::Malformed)?;
        out.extend_from_slice(rdata.get(..at).ok_or(Bogus::Malformed)?);
        push_lower_name(&name, out);
        out.extend_from_slice(rdata.get(after..).ok_or(Bogus::Malformed)?);
        return Ok(());
    }
    let (buf, start, len) = rr.rdata_location();
    heimdall_wire::walk_rdata(buf, rtype, start, len, |piece| {
        match piece {
            RdataPiece::Bytes(bytes) => out.extend_from_slice(bytes),
            RdataPiece::Name(name) => {
                let mut wire = WireNameBuf::new();
                if lower {
                    name.write_lower(&mut wire);
                } else {
                    name.write_wire(&mut wire);
                }
                out.extend_from_slice(&wire);
            }
        }
        Ok(())
    })
    .map_err(|_| Bogus::Malformed)
}

/// Write the data an RRSIG signs over `rrset` into `out` (cleared first):
/// the RRSIG RDATA up to the signature with the signer lower-cased, then
/// every RR in canonical form and order with the original TTL. When the
/// RRSIG's labels field is smaller than the owner's label count, the
/// owner is the wildcard `*.` + the rightmost `labels` labels (RFC 4035
/// section 5.3.2). Returns the owner that was signed, in `owner_out`.
pub(crate) fn signed_data(
    rrsig: &Rrsig<'_>,
    rrset: &[Rr<'_>],
    out: &mut Vec<u8>,
    owner_out: &mut WireNameBuf,
) -> Result<(), Bogus> {
    out.clear();
    out.extend_from_slice(rrsig.fixed);
    push_lower_name(&rrsig.signer, out);
    let first = rrset.first().ok_or(Bogus::Malformed)?;
    signed_owner(&first.owner(), rrsig.labels, owner_out)?;
    let mut rdatas: Vec<Vec<u8>> = Vec::with_capacity(rrset.len());
    for rr in rrset {
        let mut rdata = Vec::with_capacity(rr.rdata().len() + 16);
        canonical_rdata(rr, &mut rdata)?;
        rdatas.push(rdata);
    }
    rdatas.sort_unstable();
    rdatas.dedup();
    let rtype = first.rtype().0.to_be_bytes();
    let class = first.class().0.to_be_bytes();
    let ttl = rrsig.original_ttl.to_be_bytes();
    for rdata in &rdatas {
        let len = u16::try_from(rdata.len()).map_err(|_| Bogus::Malformed)?;
        out.extend_from_slice(owner_out);
        out.extend_from_slice(&rtype);
        out.extend_from_slice(&class);
        out.extend_from_slice(&ttl);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(rdata);
    }
    Ok(())
}

/// The owner as signed: lower-cased, and for a wildcard expansion `*.`
/// plus the rightmost `labels` labels of `owner`.
pub(crate) fn signed_owner(
    owner: &Name<'_>,
    labels: u8,
    out: &mut WireNameBuf,
) -> Result<(), Bogus> {
    let count = effective_labels(owner);
    let labels = usize::from(labels);
    if labels > count {
        return Err(Bogus::SignerMismatch);
    }
    out.clear();
    if labels == owner.label_count() {
        owner.write_lower(out);
        return Ok(());
    }
    let _fits = out.try_extend_from_slice(b"\x01*");
    let skip = owner.label_count() - labels;
    for label in owner.labels().skip(skip) {
        let _fits = out.try_push(label.len() as u8);
        let _fits = out.try_extend_from_slice(label);
    }
    let _fits = out.try_push(0);
    out.make_ascii_lowercase();
    Ok(())
}

/// The owner's label count as the RRSIG labels field counts it: without
/// a leading `*` label.
pub(crate) fn effective_labels(owner: &Name<'_>) -> usize {
    let wildcard = owner.labels().next() == Some(b"*".as_slice());
    owner.label_count() - usize::from(wildcard)
}

#[cfg(test)]
mod tests {
    use heimdall_wire::{Class, NameBuf};

    use super::*;

    fn name(text: &str) -> NameBuf {
        NameBuf::from_presentation(text).unwrap()
    }

    #[test]
    fn names_sort_as_rfc_4034_section_6_1_lists_them() {
        let ordered = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (name(pair[0]), name(pair[1]));
            assert_eq!(
                canonical_name_cmp(&a.as_name(), &b.as_name()),
                Ordering::Less,
                "{} < {}",
                pair[0],
                pair[1]
            );
            assert_eq!(
                canonical_name_cmp(&b.as_name(), &a.as_name()),
                Ordering::Greater
            );
        }
        assert_eq!(
            canonical_name_cmp(&name("A.example.").as_name(), &name("a.EXAMPLE.").as_name()),
            Ordering::Equal
        );
    }

    #[test]
    fn embedded_names_are_lowered_but_nsec_next_names_are_not() {
        let owner = name("example.");
        let mx = b"\x00\x0a\x04MAIL\x07Example\x00";
        let rr = Rr::new(owner.as_name(), RecordType::MX, Class::IN, 60, mx);
        let mut out = Vec::new();
        canonical_rdata(&rr, &mut out).unwrap();
        assert_eq!(out, b"\x00\x0a\x04mail\x07example\x00");
        let nsec = b"\x04MAIL\x07Example\x00\x00\x01\x40";
        let rr = Rr::new(owner.as_name(), RecordType::NSEC, Class::IN, 60, nsec);
        out.clear();
        canonical_rdata(&rr, &mut out).unwrap();
        assert_eq!(out, nsec);
        let txt = b"\x05HeLLo";
        let rr = Rr::new(owner.as_name(), RecordType::TXT, Class::IN, 60, txt);
        out.clear();
        canonical_rdata(&rr, &mut out).unwrap();
        assert_eq!(out, txt);
    }

    #[test]
    fn the_wildcard_owner_is_rebuilt_from_the_labels_field() {
        let owner = name("a.B.example.");
        let mut out = WireNameBuf::new();
        signed_owner(&owner.as_name(), 2, &mut out).unwrap();
        assert_eq!(out.as_slice(), b"\x01*\x01b\x07example\x00");
        signed_owner(&owner.as_name(), 3, &mut out).unwrap();
        assert_eq!(out.as_slice(), b"\x01a\x01b\x07example\x00");
        assert_eq!(
            signed_owner(&owner.as_name(), 4, &mut out),
            Err(Bogus::SignerMismatch)
        );
        // The literal wildcard record: `*` is not counted.
        let star = name("*.example.");
        signed_owner(&star.as_name(), 1, &mut out).unwrap();
        assert_eq!(out.as_slice(), b"\x01*\x07example\x00");
    }
}
