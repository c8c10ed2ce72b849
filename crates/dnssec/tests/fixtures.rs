//! The committed signed zones in `tests/fixtures/` (signed by BIND's
//! dnssec-signzone, valid 2025-2045; `regenerate.sh` re-signs them),
//! validated at a fixed time, so the core checks run without the tools.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use heimdall_dnssec::{
    Bogus, Config, TrustAnchors, VerifiedSignatures, validate_rrset, validate_rrset_memo,
    verify_dnskeys_with_anchors,
};
use heimdall_wire::RecordType;
use heimdall_zone::{ZoneRecord, parse_zone};
use support::*;

/// 2026-01-01 00:00:00 UTC, inside the fixtures' window.
const FIXED_NOW: u64 = 1_767_225_600;
/// 2045-01-01 00:00:00 UTC, their expiration.
const FIXTURE_EXPIRATION: u64 = 2_366_841_600;

fn load(stem: &str) -> (Vec<ZoneRecord>, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(dir.join(format!("{stem}.signed"))).unwrap();
    let records = parse_zone(&text, stem, None, &mut |_| unreachable!()).unwrap();
    let ds = std::fs::read_to_string(dir.join(format!("{stem}.ds"))).unwrap();
    (records, ds)
}

#[test]
fn the_nsec_fixture_validates_and_proves_denials() {
    let (records, ds) = load("example-nsec");
    assert!(
        records
            .iter()
            .any(|record| record.rtype == RecordType::NSEC)
    );
    check_signed_zone(&records, &ds, FIXED_NOW);
}

#[test]
fn the_nsec3_fixture_validates_and_proves_denials() {
    let (records, ds) = load("example-nsec3");
    assert!(
        records
            .iter()
            .any(|record| record.rtype == RecordType::NSEC3)
    );
    check_signed_zone(&records, &ds, FIXED_NOW);
}

#[test]
fn the_fixtures_expire_and_refuse_tampering() {
    for stem in ["example-nsec", "example-nsec3"] {
        let (records, ds) = load(stem);
        let (keys, _) = trusted_keys(&records, &ds, FIXED_NOW);
        let exact = Config {
            clock_skew: 0,
            ..Config::default()
        };
        let a = rrset(&records, "a.example.", RecordType::A);
        let sigs = rrsigs(&records, "a.example.", RecordType::A);
        assert_eq!(
            validate_rrset(&a, &sigs, &keys, FIXTURE_EXPIRATION + 1, &exact),
            Err(Bogus::SignatureExpired.into())
        );
        let mut changed = a.clone();
        changed[0] = tampered(&a[0], 0);
        assert_eq!(
            validate_rrset(&changed, &sigs, &keys, FIXED_NOW, &exact),
            Err(Bogus::BadSignature.into())
        );
        // The other fixture's DS does not anchor these keys.
        let other = if stem == "example-nsec" {
            "example-nsec3"
        } else {
            "example-nsec"
        };
        let (_, other_ds) = load(other);
        let anchors = TrustAnchors::parse(&other_ds).unwrap();
        let dnskeys = rrset(&records, "example.", RecordType::DNSKEY);
        let dnskey_sigs = rrsigs(&records, "example.", RecordType::DNSKEY);
        assert_eq!(
            verify_dnskeys_with_anchors(&dnskeys, &dnskey_sigs, &anchors, FIXED_NOW, &exact),
            Err(Bogus::DnskeyMissing.into())
        );
        // The root anchors are for another zone.
        assert_eq!(
            verify_dnskeys_with_anchors(
                &dnskeys,
                &dnskey_sigs,
                &TrustAnchors::root(),
                FIXED_NOW,
                &exact
            ),
            Err(Bogus::DnskeyMissing.into())
        );
    }
}

#[test]
fn a_remembered_signature_skips_the_check_but_not_the_window_or_the_bytes() {
    let (records, ds) = load("example-nsec3");
    let (keys, _) = trusted_keys(&records, &ds, FIXED_NOW);
    let config = Config::default();
    let a = rrset(&records, "a.example.", RecordType::A);
    let sigs = rrsigs(&records, "a.example.", RecordType::A);
    let mut memo = VerifiedSignatures::default();
    let first = validate_rrset_memo(&a, &sigs, &keys, FIXED_NOW, &config, &mut memo).unwrap();
    assert_eq!((memo.len(), memo.hits()), (1, 0));
    let again = validate_rrset_memo(&a, &sigs, &keys, FIXED_NOW + 1, &config, &mut memo).unwrap();
    assert_eq!(again, first);
    assert_eq!(memo.hits(), 1, "the second validation was remembered");
    // Other bytes under the same signature are checked, and fail.
    let mut changed = a.clone();
    changed[0] = tampered(&a[0], 0);
    assert_eq!(
        validate_rrset_memo(&changed, &sigs, &keys, FIXED_NOW, &config, &mut memo),
        Err(Bogus::BadSignature.into())
    );
    // The window is judged on every use: past the expiry, remembered or
    // not, the signature is expired.
    let exact = Config {
        clock_skew: 0,
        ..config
    };
    assert_eq!(
        validate_rrset_memo(&a, &sigs, &keys, FIXTURE_EXPIRATION + 1, &exact, &mut memo),
        Err(Bogus::SignatureExpired.into())
    );
    // A key not passed in is never trusted through the memo.
    assert!(validate_rrset_memo(&a, &sigs, &[], FIXED_NOW, &config, &mut memo).is_err());
    assert_eq!(memo.hits(), 1);
}
