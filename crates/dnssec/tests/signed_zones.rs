//! Zones signed on the spot by BIND's dnssec-keygen / dnssec-signzone
//! (bind9-utils), validated by heimdall-dnssec: every algorithm ring can
//! verify, NSEC and NSEC3 (salt, iterations, opt-out), wildcards,
//! validity windows, tampering, wrong keys, missing signatures, DS
//! mismatches. Skipped when the tools are missing, failed under CI.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

mod support;

use heimdall_dnssec::{
    Bogus, Config, Dnskey, Ds, Failure, Insecure, Rr, TrustAnchors, ds_matches_dnskey,
    prove_nodata, prove_nxdomain, validate_rrset, verify_dnskeys_with_ds,
};
use heimdall_wire::RecordType;
use support::*;

const DAY: u64 = 86_400;

#[test]
fn every_algorithm_signs_a_zone_that_validates() {
    for (algorithm, number, nsec3) in [
        ("RSASHA1", 5, false),
        ("NSEC3RSASHA1", 7, true),
        ("RSASHA256", 8, false),
        ("RSASHA512", 10, true),
        ("ECDSAP256SHA256", 13, false),
        ("ECDSAP384SHA384", 14, true),
        ("ED25519", 15, false),
    ] {
        let signing = if nsec3 {
            Signing::nsec3(algorithm, "aabbccdd", 0, false)
        } else {
            Signing::nsec(algorithm)
        };
        let Some(zone) = sign(&signing) else { return };
        check_signed_zone(&zone.records, &zone.ds_text, NOW);
        // Key tags as dnssec-keygen computed them (in its file names).
        let keys = rrset(&zone.records, "example.", RecordType::DNSKEY);
        let mut tags: Vec<u16> = keys
            .iter()
            .map(|rr| Dnskey::parse(rr).unwrap().key_tag())
            .collect();
        tags.sort_unstable();
        let mut expected = vec![zone.ksk_tag, zone.zsk_tag];
        expected.sort_unstable();
        assert_eq!(tags, expected, "{algorithm}");
        for rr in &keys {
            assert_eq!(Dnskey::parse(rr).unwrap().algorithm, number);
        }
        // Data is signed by the ZSK, the DNSKEY RRset by the KSK.
        let (trusted, secure) = trusted_keys(&zone.records, &zone.ds_text, NOW);
        assert_eq!(secure.key_tag, zone.ksk_tag, "{algorithm}");
        let secure = validate(&zone.records, &trusted, "a.example.", RecordType::A, NOW).unwrap();
        assert_eq!((secure.key_tag, secure.algorithm), (zone.zsk_tag, number));
        eprintln!("{algorithm}: ok");
    }
}

#[test]
fn ds_digests_agree_with_dnssec_dsfromkey() {
    let Some(zone) = sign(&Signing::nsec("ECDSAP256SHA256")) else {
        return;
    };
    let Some(dsfromkey) = tool("dnssec-dsfromkey") else {
        return;
    };
    let keys = rrset(&zone.records, "example.", RecordType::DNSKEY);
    // Every digest type dnssec-dsfromkey writes, from the DNSKEY records.
    let dir = std::env::temp_dir().join(format!("heimdall-dnssec-ds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keyfile = dir.join("keys");
    let text: String = zone
        .records
        .iter()
        .filter(|record| record.rtype == RecordType::DNSKEY)
        .map(|record| {
            let key = Dnskey::parse_rdata(&record.rdata).unwrap();
            format!(
                "example. 3600 IN DNSKEY {} {} {} {}\n",
                key.flags,
                key.protocol,
                key.algorithm,
                data_encoding::BASE64.encode(key.public_key)
            )
        })
        .collect();
    std::fs::write(&keyfile, text).unwrap();
    for (flag, digest_type) in [("-1", 1u8), ("-2", 2), ("-a SHA-384", 4)] {
        let mut command = std::process::Command::new(&dsfromkey);
        command
            .args(flag.split(' '))
            .args(["-A", "-f"])
            .arg(&keyfile)
            .arg("example.");
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let anchors = TrustAnchors::parse(&String::from_utf8(output.stdout).unwrap()).unwrap();
        assert_eq!(anchors.len(), 2, "one DS per key");
        for anchor in anchors.iter() {
            let ds_rr = anchor.as_rr();
            let ds = Ds::parse(&ds_rr).unwrap();
            assert_eq!(ds.digest_type, digest_type);
            let matching: Vec<&Rr<'_>> = keys
                .iter()
                .filter(|rr| {
                    ds_matches_dnskey(&rr.owner(), &ds, &Dnskey::parse(rr).unwrap()) == Some(true)
                })
                .collect();
            assert_eq!(matching.len(), 1, "digest type {digest_type}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nsec3_with_salt_and_iterations_and_without_salt() {
    for (salt, iterations) in [("-", 0u16), ("aabbccdd", 0), ("0102", 10), ("-", 50)] {
        let Some(zone) = sign(&Signing::nsec3("ECDSAP256SHA256", salt, iterations, false)) else {
            return;
        };
        check_signed_zone(&zone.records, &zone.ds_text, NOW);
    }
}

#[test]
fn nsec3_iterations_above_the_limit_are_insecure_with_ede_27() {
    let Some(zone) = sign(&Signing::nsec3("ED25519", "ab", 100, false)) else {
        return;
    };
    let (keys, _) = trusted_keys(&zone.records, &zone.ds_text, NOW);
    // The NSEC3 records themselves still validate.
    let denial = denial_records(&zone.records, &keys, NOW);
    let apex = name("example.");
    let c = name("c.example.");
    let strict = Config::default();
    let failure = prove_nxdomain(&c.as_name(), &apex.as_name(), &denial, &strict).unwrap_err();
    assert_eq!(failure, Failure::Insecure(Insecure::Nsec3Iterations(100)));
    assert_eq!(failure.ede(), Some(27));
    let a = name("a.example.");
    assert_eq!(
        prove_nodata(
            &a.as_name(),
            RecordType::MX,
            &apex.as_name(),
            &denial,
            &strict
        ),
        Err(Insecure::Nsec3Iterations(100).into())
    );
    let lenient = Config {
        nsec3_max_iterations: 150,
        ..Config::default()
    };
    prove_nxdomain(&c.as_name(), &apex.as_name(), &denial, &lenient).unwrap();
    prove_nodata(
        &a.as_name(),
        RecordType::MX,
        &apex.as_name(),
        &denial,
        &lenient,
    )
    .unwrap();
}

#[test]
fn nsec3_opt_out_makes_unsigned_delegations_insecure() {
    let Some(zone) = sign(&Signing::nsec3("ECDSAP384SHA384", "cafe", 1, true)) else {
        return;
    };
    let (keys, _) = trusted_keys(&zone.records, &zone.ds_text, NOW);
    let denial = denial_records(&zone.records, &keys, NOW);
    let config = Config::default();
    let apex = name("example.");
    let sub = name("sub.example.");
    assert_eq!(
        prove_nodata(
            &sub.as_name(),
            RecordType::DS,
            &apex.as_name(),
            &denial,
            &config
        ),
        Err(Insecure::Nsec3OptOut.into())
    );
    // A name under an opt-out span might be an unsigned delegation.
    let c = name("c.example.");
    assert_eq!(
        prove_nxdomain(&c.as_name(), &apex.as_name(), &denial, &config),
        Err(Insecure::Nsec3OptOut.into())
    );
    // Signed names are still proved exactly.
    let a = name("a.example.");
    prove_nodata(
        &a.as_name(),
        RecordType::MX,
        &apex.as_name(),
        &denial,
        &config,
    )
    .unwrap();
    assert!(
        prove_nodata(
            &a.as_name(),
            RecordType::A,
            &apex.as_name(),
            &denial,
            &config
        )
        .unwrap_err()
        .is_bogus()
    );
}

#[test]
fn signatures_outside_their_window_are_expired_or_not_yet_valid() {
    let Some(zone) = sign(&Signing::nsec("ECDSAP256SHA256")) else {
        return;
    };
    let (keys, _) = trusted_keys(&zone.records, &zone.ds_text, NOW);
    let a = rrset(&zone.records, "a.example.", RecordType::A);
    let sigs = rrsigs(&zone.records, "a.example.", RecordType::A);
    let exact = Config {
        clock_skew: 0,
        ..Config::default()
    };
    let check = |now: u64, config: &Config| validate_rrset(&a, &sigs, &keys, now, config);
    assert!(check(INCEPTION, &exact).is_ok());
    assert!(check(EXPIRATION, &exact).is_ok());
    let expired = check(EXPIRATION + 1, &exact).unwrap_err();
    assert_eq!(expired, Bogus::SignatureExpired.into());
    assert_eq!(expired.ede(), Some(7));
    let early = check(INCEPTION - 1, &exact).unwrap_err();
    assert_eq!(early, Bogus::SignatureNotYetValid.into());
    assert_eq!(early.ede(), Some(8));
    // The default skew (an hour) forgives a slow or fast clock.
    assert!(check(EXPIRATION + 3000, &Config::default()).is_ok());
    assert!(check(INCEPTION - 3000, &Config::default()).is_ok());
    assert!(check(EXPIRATION + DAY, &Config::default()).is_err());
    // The DNSKEY RRset's own signatures too.
    let anchors = TrustAnchors::parse(&zone.ds_text).unwrap();
    let dnskeys = rrset(&zone.records, "example.", RecordType::DNSKEY);
    let dnskey_sigs = rrsigs(&zone.records, "example.", RecordType::DNSKEY);
    assert_eq!(
        heimdall_dnssec::verify_dnskeys_with_anchors(
            &dnskeys,
            &dnskey_sigs,
            &anchors,
            EXPIRATION + DAY,
            &exact
        ),
        Err(Bogus::SignatureExpired.into())
    );
}

#[test]
fn a_zone_signed_in_the_past_is_expired_and_one_signed_for_the_future_not_yet_valid() {
    let past = Signing {
        inception: "20200101000000".to_owned(),
        expiration: "20200201000000".to_owned(),
        ..Signing::nsec("ED25519")
    };
    let Some(zone) = sign(&past) else { return };
    let keys = rrset(&zone.records, "example.", RecordType::DNSKEY);
    assert_eq!(
        validate(&zone.records, &keys, "a.example.", RecordType::A, NOW),
        Err(Bogus::SignatureExpired.into())
    );
    let future = Signing {
        inception: "20300101000000".to_owned(),
        expiration: "20300201000000".to_owned(),
        ..Signing::nsec("ED25519")
    };
    let Some(zone) = sign(&future) else { return };
    let keys = rrset(&zone.records, "example.", RecordType::DNSKEY);
    assert_eq!(
        validate(&zone.records, &keys, "a.example.", RecordType::A, NOW),
        Err(Bogus::SignatureNotYetValid.into())
    );
}

#[test]
fn tampering_wrong_keys_and_missing_signatures_are_bogus() {
    let Some(zone) = sign(&Signing::nsec("RSASHA256")) else {
        return;
    };
    let Some(other) = sign(&Signing::nsec("RSASHA256")) else {
        return;
    };
    let config = Config::default();
    let (keys, _) = trusted_keys(&zone.records, &zone.ds_text, NOW);
    let a = rrset(&zone.records, "a.example.", RecordType::A);
    let sigs = rrsigs(&zone.records, "a.example.", RecordType::A);
    // One RDATA byte changed.
    let mut changed = a.clone();
    changed[1] = tampered(&a[1], 3);
    let failure = validate_rrset(&changed, &sigs, &keys, NOW, &config).unwrap_err();
    assert_eq!(failure, Bogus::BadSignature.into());
    assert_eq!(failure.ede(), Some(6));
    // A record dropped from the RRset.
    assert_eq!(
        validate_rrset(&a[..1], &sigs, &keys, NOW, &config),
        Err(Bogus::BadSignature.into())
    );
    // The signature itself changed.
    let bad_sig = vec![tampered(&sigs[0], 200)];
    assert_eq!(
        validate_rrset(&a, &bad_sig, &keys, NOW, &config),
        Err(Bogus::BadSignature.into())
    );
    // The original TTL in the RRSIG changed.
    let bad_ttl = vec![tampered(&sigs[0], 7)];
    assert_eq!(
        validate_rrset(&a, &bad_ttl, &keys, NOW, &config),
        Err(Bogus::BadSignature.into())
    );
    // Another zone's keys: no key matches.
    let other_keys = rrset(&other.records, "example.", RecordType::DNSKEY);
    let failure = validate_rrset(&a, &sigs, &other_keys, NOW, &config).unwrap_err();
    assert_eq!(failure, Bogus::DnskeyMissing.into());
    assert_eq!(failure.ede(), Some(9));
    // No RRSIG, or only RRSIGs for another type.
    let failure = validate_rrset(&a, &[], &keys, NOW, &config).unwrap_err();
    assert_eq!(failure, Bogus::RrsigsMissing.into());
    assert_eq!(failure.ede(), Some(10));
    let txt_sigs = rrsigs(&zone.records, "a.example.", RecordType::TXT);
    assert_eq!(
        validate_rrset(&a, &txt_sigs, &keys, NOW, &config),
        Err(Bogus::RrsigsMissing.into())
    );
    // Another zone's signature over the same data.
    let other_sigs = rrsigs(&other.records, "a.example.", RecordType::A);
    assert_eq!(
        validate_rrset(&a, &other_sigs, &keys, NOW, &config),
        Err(Bogus::DnskeyMissing.into())
    );
}

#[test]
fn revoked_and_non_zone_keys_are_not_used() {
    let Some(zone) = sign(&Signing::nsec("ECDSAP256SHA256")) else {
        return;
    };
    let config = Config::default();
    let a = rrset(&zone.records, "a.example.", RecordType::A);
    let sigs = rrsigs(&zone.records, "a.example.", RecordType::A);
    let keys = rrset(&zone.records, "example.", RecordType::DNSKEY);
    // Changing the flags changes the key tag, so the RRSIG is pointed at
    // the changed key's tag: only the flag itself can make it fail.
    let zsk = keys
        .iter()
        .find(|rr| Dnskey::parse(rr).unwrap().key_tag() == zone.zsk_tag)
        .unwrap();
    for (flag, expected) in [
        (Dnskey::REVOKE, Bogus::DnskeyMissing),
        (0, Bogus::NoZoneKeyBit),
    ] {
        let mut rdata = zsk.rdata().to_vec();
        let flags = if flag == 0 { 0x0000u16 } else { 0x0100 | flag };
        rdata[..2].copy_from_slice(&flags.to_be_bytes());
        // The key tag changes with the flags: point the RRSIG at it.
        let tag = heimdall_dnssec::key_tag(&rdata);
        let key = Rr::new(
            zsk.owner(),
            RecordType::DNSKEY,
            zsk.class(),
            3600,
            leak(&rdata),
        );
        let mut sig = sigs[0].rdata().to_vec();
        sig[16..18].copy_from_slice(&tag.to_be_bytes());
        let sig = Rr::new(
            sigs[0].owner(),
            RecordType::RRSIG,
            sigs[0].class(),
            3600,
            leak(&sig),
        );
        assert_eq!(
            validate_rrset(&a, &[sig], &[key], NOW, &config),
            Err(expected.into()),
            "flags {flags:#06x}"
        );
    }
}

#[test]
fn ds_mismatch_and_unsupported_ds_or_algorithm() {
    let Some(zone) = sign(&Signing::nsec("ECDSAP256SHA256")) else {
        return;
    };
    let Some(other) = sign(&Signing::nsec("ECDSAP256SHA256")) else {
        return;
    };
    let config = Config::default();
    let keys = rrset(&zone.records, "example.", RecordType::DNSKEY);
    let sigs = rrsigs(&zone.records, "example.", RecordType::DNSKEY);
    let ds = TrustAnchors::parse(&zone.ds_text).unwrap();
    let ds: Vec<Rr<'_>> = ds.iter().map(|anchor| anchor.as_rr()).collect();
    verify_dnskeys_with_ds(&keys, &sigs, &ds, NOW, &config).unwrap();
    // Another zone's DS.
    let wrong = TrustAnchors::parse(&other.ds_text).unwrap();
    let wrong: Vec<Rr<'_>> = wrong.iter().map(|anchor| anchor.as_rr()).collect();
    let failure = verify_dnskeys_with_ds(&keys, &sigs, &wrong, NOW, &config).unwrap_err();
    assert_eq!(failure, Bogus::DnskeyMissing.into());
    assert_eq!(failure.ede(), Some(9));
    // The right key tag, a wrong digest.
    let broken = vec![tampered(&ds[0], 10)];
    assert_eq!(
        verify_dnskeys_with_ds(&keys, &sigs, &broken, NOW, &config),
        Err(Bogus::DnskeyMissing.into())
    );
    // DNSKEY RRSIGs missing.
    assert_eq!(
        verify_dnskeys_with_ds(&keys, &[], &ds, NOW, &config),
        Err(Bogus::RrsigsMissing.into())
    );
    // Only an unknown digest type (3, GOST): insecure, EDE 2.
    let mut gost = ds[0].rdata().to_vec();
    gost[3] = 3;
    let gost = vec![Rr::new(
        ds[0].owner(),
        RecordType::DS,
        ds[0].class(),
        0,
        leak(&gost),
    )];
    let failure = verify_dnskeys_with_ds(&keys, &sigs, &gost, NOW, &config).unwrap_err();
    assert_eq!(failure, Insecure::UnsupportedDigest(3).into());
    assert_eq!(failure.ede(), Some(2));
    // A SHA-1 DS alone works; next to a SHA-256 DS it is ignored (RFC
    // 4509 section 3), so a broken SHA-256 DS is not rescued by it.
    let ksk = keys
        .iter()
        .find(|rr| Dnskey::parse(rr).unwrap().key_tag() == zone.ksk_tag)
        .unwrap();
    let owner = name("example.");
    let digest = {
        use std::io::Write as _;
        let mut input = Vec::new();
        input.write_all(owner.as_wire()).unwrap();
        input.write_all(ksk.rdata()).unwrap();
        ring_free_sha1(&input)
    };
    let mut sha1 = ds[0].rdata()[..4].to_vec();
    sha1[3] = 1;
    sha1.extend_from_slice(&digest);
    let sha1 = Rr::new(ds[0].owner(), RecordType::DS, ds[0].class(), 0, leak(&sha1));
    verify_dnskeys_with_ds(&keys, &sigs, &[sha1], NOW, &config).unwrap();
    assert_eq!(
        verify_dnskeys_with_ds(&keys, &sigs, &[sha1, broken[0]], NOW, &config),
        Err(Bogus::DnskeyMissing.into())
    );
    verify_dnskeys_with_ds(&keys, &sigs, &[sha1, ds[0]], NOW, &config).unwrap();
}

/// SHA-1 from `sha1sum`, so the test does not reuse the crate's digest
/// code.
fn ring_free_sha1(input: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    let hex = String::from_utf8(output.stdout).unwrap();
    data_encoding::HEXLOWER
        .decode(&hex.as_bytes()[..40])
        .unwrap()
}

#[test]
fn an_algorithm_ring_lacks_is_insecure_not_bogus() {
    let Some(zone) = sign(&Signing::nsec("ED448")) else {
        return;
    };
    let config = Config::default();
    let keys = rrset(&zone.records, "example.", RecordType::DNSKEY);
    let failure = validate(&zone.records, &keys, "a.example.", RecordType::A, NOW).unwrap_err();
    assert_eq!(failure, Insecure::UnsupportedAlgorithm(16).into());
    assert_eq!(failure.ede(), Some(1));
    assert!(!failure.is_bogus());
    let sigs = rrsigs(&zone.records, "example.", RecordType::DNSKEY);
    let ds = TrustAnchors::parse(&zone.ds_text).unwrap();
    let ds: Vec<Rr<'_>> = ds.iter().map(|anchor| anchor.as_rr()).collect();
    assert_eq!(
        verify_dnskeys_with_ds(&keys, &sigs, &ds, NOW, &config),
        Err(Insecure::UnsupportedAlgorithm(16).into())
    );
}

#[test]
fn a_chain_of_trust_from_the_anchor_through_a_ds_to_the_child() {
    const CHILD: &str = "\
$TTL 3600
@   IN SOA ns.child.example. hostmaster.child.example. 1 7200 3600 1209600 300
    IN NS ns.child.example.
ns  IN A 192.0.2.70
www IN A 192.0.2.80
";
    let Some(child) = sign_zone("child.example.", CHILD, &Signing::nsec("ED25519")) else {
        return;
    };
    // The parent delegates to the child with the child's DS.
    let parent_text = format!(
        "{ZONE}child IN NS ns.child.example.\nns.child IN A 192.0.2.70\n{}",
        child.ds_text
    );
    let Some(parent) = sign_text(
        &parent_text,
        &Signing::nsec3("ECDSAP256SHA256", "-", 0, false),
    ) else {
        return;
    };
    let config = Config::default();
    // Anchor -> parent DNSKEY -> DS of the child (signed by the parent).
    let (parent_keys, _) = trusted_keys(&parent.records, &parent.ds_text, NOW);
    let ds = rrset(&parent.records, "child.example.", RecordType::DS);
    let ds_sigs = rrsigs(&parent.records, "child.example.", RecordType::DS);
    assert_eq!(ds.len(), 1);
    validate_rrset(&ds, &ds_sigs, &parent_keys, NOW, &config).unwrap();
    // DS -> child DNSKEY -> child data.
    let child_keys = rrset(&child.records, "child.example.", RecordType::DNSKEY);
    let child_key_sigs = rrsigs(&child.records, "child.example.", RecordType::DNSKEY);
    let secure = verify_dnskeys_with_ds(&child_keys, &child_key_sigs, &ds, NOW, &config).unwrap();
    assert_eq!(secure.key_tag, child.ksk_tag);
    let www = rrset(&child.records, "www.child.example.", RecordType::A);
    let www_sigs = rrsigs(&child.records, "www.child.example.", RecordType::A);
    validate_rrset(&www, &www_sigs, &child_keys, NOW, &config).unwrap();
    // The parent's keys do not sign the child's data.
    assert_eq!(
        validate_rrset(&www, &www_sigs, &parent_keys, NOW, &config),
        Err(Bogus::DnskeyMissing.into())
    );
    // The child re-keyed without updating the parent: its new DNSKEY
    // RRset does not match the DS.
    let Some(rekeyed) = sign_zone("child.example.", CHILD, &Signing::nsec("ED25519")) else {
        return;
    };
    let new_keys = rrset(&rekeyed.records, "child.example.", RecordType::DNSKEY);
    let new_sigs = rrsigs(&rekeyed.records, "child.example.", RecordType::DNSKEY);
    assert_eq!(
        verify_dnskeys_with_ds(&new_keys, &new_sigs, &ds, NOW, &config),
        Err(Bogus::DnskeyMissing.into())
    );
    // An unsigned delegation in the same parent is provably insecure.
    let denial = denial_records(&parent.records, &parent_keys, NOW);
    let sub = name("sub.example.");
    let apex = name("example.");
    prove_nodata(
        &sub.as_name(),
        RecordType::DS,
        &apex.as_name(),
        &denial,
        &config,
    )
    .unwrap();
    // The signed delegation's DS cannot be denied.
    let child_name = name("child.example.");
    assert!(
        prove_nodata(
            &child_name.as_name(),
            RecordType::DS,
            &apex.as_name(),
            &denial,
            &config
        )
        .unwrap_err()
        .is_bogus()
    );
}
