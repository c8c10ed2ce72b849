//! Hostile bytes: random RDATA for the DNSSEC types, and the committed
//! fixture's records with random bytes changed, through every entry point.
//! Nothing may panic; nothing changed may validate as the original did.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use heimdall_dnssec::{
    Config, Dnskey, Ds, Nsec, Nsec3, Rr, Rrsig, canonical_rdata, prove_nodata, prove_nxdomain,
    prove_wildcard_answer, validate_rrset, verify_dnskeys_with_ds,
};
use heimdall_wire::{Class, NameBuf, RecordType};
use heimdall_zone::parse_zone;
use proptest::prelude::*;
use support::*;

const TYPES: [RecordType; 8] = [
    RecordType::RRSIG,
    RecordType::DNSKEY,
    RecordType::DS,
    RecordType::NSEC,
    RecordType::NSEC3,
    RecordType::MX,
    RecordType::SOA,
    RecordType::A,
];

const OWNERS: [&str; 5] = ["example.", "a.example.", "*.example.", "x.a.example.", "."];

fn exercise(records: &[Rr<'_>]) {
    let config = Config::default();
    let mut out = Vec::new();
    for rr in records {
        let _ = Rrsig::parse(rr);
        let _ = Dnskey::parse(rr);
        let _ = Ds::parse(rr);
        let _ = Nsec::parse(rr);
        let _ = Nsec3::parse(rr);
        out.clear();
        let _ = canonical_rdata(rr, &mut out);
    }
    let by_type = |rtype: RecordType| -> Vec<Rr<'_>> {
        records
            .iter()
            .filter(|rr| rr.rtype() == rtype)
            .copied()
            .collect()
    };
    let (sigs, keys, ds) = (
        by_type(RecordType::RRSIG),
        by_type(RecordType::DNSKEY),
        by_type(RecordType::DS),
    );
    for rtype in TYPES {
        let set = by_type(rtype);
        if !set.is_empty() {
            let _ = validate_rrset(&set, &sigs, &keys, NOW, &config);
        }
    }
    if !keys.is_empty() {
        let _ = verify_dnskeys_with_ds(&keys, &sigs, &ds, NOW, &config);
    }
    let zone = name("example.");
    for qname in ["c.example.", "a.example.", "x.y.z.a.example.", "example."] {
        let qname = name(qname);
        let _ = prove_nxdomain(&qname.as_name(), &zone.as_name(), records, &config);
        let _ = prove_nodata(
            &qname.as_name(),
            RecordType::DS,
            &zone.as_name(),
            records,
            &config,
        );
        let wildcard = name("*.example.");
        let _ = prove_wildcard_answer(
            &qname.as_name(),
            &wildcard.as_name(),
            &zone.as_name(),
            records,
            &config,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_rdata_never_panics(
        entries in prop::collection::vec((0..TYPES.len(), 0..OWNERS.len(), prop::collection::vec(any::<u8>(), 0..120)), 1..12)
    ) {
        let owners: Vec<NameBuf> = OWNERS.iter().map(|owner| name(owner)).collect();
        let records: Vec<Rr<'_>> = entries
            .iter()
            .map(|(rtype, owner, rdata)| {
                Rr::new(owners[*owner].as_name(), TYPES[*rtype], Class::IN, 60, rdata)
            })
            .collect();
        exercise(&records);
    }

    #[test]
    fn changed_fixture_bytes_never_panic_or_validate(
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 1..=255u8), 1..4)
    ) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let text = std::fs::read_to_string(dir.join("example-nsec3.signed")).unwrap();
        let mut records = parse_zone(&text, "fixture", None, &mut |_| unreachable!()).unwrap();
        let mut changed = Vec::new();
        for (record, byte, xor) in &changes {
            let index = record.index(records.len());
            let rdata = &mut records[index].rdata;
            let at = byte.index(rdata.len());
            rdata[at] ^= xor;
            changed.push(index);
        }
        let rrs: Vec<Rr<'_>> = records.iter().map(as_rr).collect();
        exercise(&rrs);
        // A changed A/TXT/AAAA RRset never validates with the original
        // keys (changed keys or signatures may still leave another path).
        let original = parse_zone(&text, "fixture", None, &mut |_| unreachable!()).unwrap();
        let keys = rrset(&original, "example.", RecordType::DNSKEY);
        for index in changed {
            let record = &records[index];
            let differs = record.rdata != original[index].rdata;
            if differs && matches!(record.rtype, RecordType::A | RecordType::AAAA | RecordType::TXT) {
                let owner = record.owner.to_string();
                let set = rrset(&records, &owner, record.rtype);
                let sigs = rrsigs(&original, &owner, record.rtype);
                prop_assert!(validate_rrset(&set, &sigs, &keys, 1_767_225_600, &Config::default()).is_err());
            }
        }
    }
}
