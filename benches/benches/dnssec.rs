#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]
//! Criterion benchmarks for heimdall-dnssec over the crate's committed
//! signed fixtures: one RRset signature (ECDSA P-256, Ed25519), a DNSKEY
//! RRset against its DS, and an NSEC3 NXDOMAIN proof (salted, 0
//! iterations: three hashes of the walk up plus the wildcard).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use heimdall_dnssec::{
    Config, Rr, TrustAnchors, prove_nxdomain, validate_rrset, verify_dnskeys_with_anchors,
};
use heimdall_wire::{NameBuf, RecordType};
use heimdall_zone::{ZoneRecord, parse_zone};

const NSEC: &str = include_str!("../../crates/dnssec/tests/fixtures/example-nsec.signed");
const NSEC_DS: &str = include_str!("../../crates/dnssec/tests/fixtures/example-nsec.ds");
const NSEC3: &str = include_str!("../../crates/dnssec/tests/fixtures/example-nsec3.signed");
const NSEC3_DS: &str = include_str!("../../crates/dnssec/tests/fixtures/example-nsec3.ds");
/// 2026-01-01, inside the fixtures' validity.
const NOW: u64 = 1_767_225_600;

fn load(text: &str) -> Vec<ZoneRecord> {
    parse_zone(text, "fixture", None, &mut |_| unreachable!()).unwrap()
}

fn pick<'a>(records: &'a [ZoneRecord], owner: &str, rtype: RecordType) -> Vec<Rr<'a>> {
    let owner = NameBuf::from_presentation(owner).unwrap();
    records
        .iter()
        .filter(|record| record.owner.as_name().eq_ignore_case(&owner.as_name()))
        .filter(|record| {
            record.rtype == rtype
                || (record.rtype == RecordType::RRSIG
                    && record.rdata.get(..2) == Some(&rtype.0.to_be_bytes()[..]))
        })
        .map(|record| {
            Rr::new(
                record.owner.as_name(),
                record.rtype,
                record.class,
                record.ttl,
                &record.rdata,
            )
        })
        .collect()
}

fn split(rrs: Vec<Rr<'_>>) -> (Vec<Rr<'_>>, Vec<Rr<'_>>) {
    rrs.into_iter()
        .partition(|rr| rr.rtype() != RecordType::RRSIG)
}

fn signatures(c: &mut Criterion) {
    let config = Config::default();
    for (label, text) in [("ecdsa_p256", NSEC), ("ed25519", NSEC3)] {
        let records = load(text);
        let (keys, _) = split(pick(&records, "example.", RecordType::DNSKEY));
        let (set, sigs) = split(pick(&records, "a.example.", RecordType::A));
        assert!(validate_rrset(&set, &sigs, &keys, NOW, &config).is_ok());
        c.bench_function(&format!("dnssec/validate_rrset_{label}"), |b| {
            b.iter(|| black_box(validate_rrset(&set, &sigs, &keys, NOW, &config)));
        });
    }
    let records = load(NSEC);
    let anchors = TrustAnchors::parse(NSEC_DS).unwrap();
    let (keys, sigs) = split(pick(&records, "example.", RecordType::DNSKEY));
    assert!(verify_dnskeys_with_anchors(&keys, &sigs, &anchors, NOW, &config).is_ok());
    c.bench_function("dnssec/dnskeys_with_ds_ecdsa_p256", |b| {
        b.iter(|| {
            black_box(verify_dnskeys_with_anchors(
                &keys, &sigs, &anchors, NOW, &config,
            ))
        });
    });
}

fn denial(c: &mut Criterion) {
    let config = Config::default();
    let records = load(NSEC3);
    assert!(TrustAnchors::parse(NSEC3_DS).is_ok());
    let nsec3: Vec<Rr<'_>> = records
        .iter()
        .filter(|record| record.rtype == RecordType::NSEC3)
        .map(|record| {
            Rr::new(
                record.owner.as_name(),
                record.rtype,
                record.class,
                record.ttl,
                &record.rdata,
            )
        })
        .collect();
    let zone = NameBuf::from_presentation("example.").unwrap();
    let qname = NameBuf::from_presentation("nope.example.").unwrap();
    assert!(prove_nxdomain(&qname.as_name(), &zone.as_name(), &nsec3, &config).is_ok());
    c.bench_function("dnssec/nsec3_nxdomain", |b| {
        b.iter(|| {
            black_box(prove_nxdomain(
                &qname.as_name(),
                &zone.as_name(),
                &nsec3,
                &config,
            ))
        });
    });
}

criterion_group!(benches, signatures, denial);
criterion_main!(benches);
