//! Test support: signing zones with BIND's dnssec-keygen / dnssec-signzone
//! (package bind9-utils), loading signed zones with heimdall-zone, and
//! picking RRsets out of them as validator records.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

use heimdall_dnssec::Rr;
use heimdall_wire::{Class, Message, MessageBuilder, Name, NameBuf, RData, RecordType, Section};
use heimdall_zone::{ZoneRecord, parse_zone};

/// The test zone: an apex with an upper-case MX target (canonical form
/// must lower it), an RRset of two A records, a wildcard, an empty
/// non-terminal (`y`) and an unsigned delegation (`sub`) with glue.
pub const ZONE: &str = include_str!("../fixtures/example.zone");

/// 2025-01-01 00:00:00 UTC.
pub const INCEPTION: u64 = 1_735_689_600;
/// 2025-02-01 00:00:00 UTC.
pub const EXPIRATION: u64 = 1_738_368_000;
/// Inside the window.
pub const NOW: u64 = 1_737_000_000;

/// The binary, or `None` (skip) outside CI.
pub fn tool(binary: &str) -> Option<PathBuf> {
    heimdall_testkit::peers::find(binary, "bind9-utils")
}

/// A signed zone as records.
pub struct Signed {
    pub records: Vec<ZoneRecord>,
    /// The DS records of the KSK (SHA-256), as presentation text.
    pub ds_text: String,
    /// Key tags of the KSK and ZSK, as dnssec-keygen named their files.
    pub ksk_tag: u16,
    pub zsk_tag: u16,
}

/// How to sign.
#[derive(Clone)]
pub struct Signing<'a> {
    pub algorithm: &'a str,
    /// `None`: NSEC. `Some((salt, iterations, opt_out))`: NSEC3.
    pub nsec3: Option<(&'a str, u16, bool)>,
    /// `YYYYMMDDHHMMSS` or epoch seconds.
    pub inception: String,
    pub expiration: String,
}

impl<'a> Signing<'a> {
    pub fn nsec(algorithm: &'a str) -> Self {
        Self {
            algorithm,
            nsec3: None,
            inception: "20250101000000".to_owned(),
            expiration: "20250201000000".to_owned(),
        }
    }

    pub fn nsec3(algorithm: &'a str, salt: &'a str, iterations: u16, opt_out: bool) -> Self {
        Self {
            nsec3: Some((salt, iterations, opt_out)),
            ..Self::nsec(algorithm)
        }
    }
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn keygen(dir: &Path, origin: &str, algorithm: &str, ksk: bool) -> (String, u16) {
    let keygen = tool("dnssec-keygen").unwrap();
    let mut command = Command::new(keygen);
    command
        .current_dir(dir)
        .args(["-q", "-K", ".", "-a", algorithm, "-n", "ZONE"]);
    if algorithm.starts_with("RSA") || algorithm.starts_with("NSEC3RSA") {
        command.args(["-b", "1024"]);
    }
    if ksk {
        command.args(["-f", "KSK"]);
    }
    let base = run(command.arg(origin)).trim().to_owned();
    let tag = base.rsplit('+').next().unwrap().parse().unwrap();
    (base, tag)
}

/// Sign [`ZONE`] (or `zone`) with fresh keys; `None` when the tools are
/// missing (outside CI).
pub fn sign(signing: &Signing<'_>) -> Option<Signed> {
    sign_text(ZONE, signing)
}

pub fn sign_text(zone: &str, signing: &Signing<'_>) -> Option<Signed> {
    sign_zone("example.", zone, signing)
}

/// Sign `zone` (master-file text) as zone `origin`.
pub fn sign_zone(origin: &str, zone: &str, signing: &Signing<'_>) -> Option<Signed> {
    let signzone = tool("dnssec-signzone")?;
    tool("dnssec-keygen")?;
    let dsfromkey = tool("dnssec-dsfromkey")?;
    let dir = tempdir();
    let (ksk, ksk_tag) = keygen(&dir, origin, signing.algorithm, true);
    let (zsk, zsk_tag) = keygen(&dir, origin, signing.algorithm, false);
    let zone = format!("{zone}$INCLUDE {ksk}.key\n$INCLUDE {zsk}.key\n");
    std::fs::write(dir.join("example.zone"), zone).unwrap();
    let mut command = Command::new(signzone);
    command.current_dir(&dir).args([
        "-q",
        "-P", // no post-sign verification: some tests sign expired zones
        "-K",
        ".",
        "-o",
        origin,
        "-O",
        "full",
        "-f",
        "example.signed",
        "-s",
        &signing.inception,
        "-e",
        &signing.expiration,
    ]);
    if let Some((salt, iterations, opt_out)) = signing.nsec3 {
        command.args(["-3", salt, "-H", &iterations.to_string()]);
        if opt_out {
            command.arg("-A");
        }
    }
    command.args(["example.zone", &format!("{ksk}.key"), &format!("{zsk}.key")]);
    run(&mut command);
    let text = std::fs::read_to_string(dir.join("example.signed")).unwrap();
    let records = parse_zone(&text, "example.signed", None, &mut |_| unreachable!()).unwrap();
    let ds_text = run(Command::new(dsfromkey)
        .current_dir(&dir)
        .args(["-2", &format!("{ksk}.key")]));
    let _ = std::fs::remove_dir_all(&dir);
    Some(Signed {
        records,
        ds_text,
        ksk_tag,
        zsk_tag,
    })
}

fn tempdir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "heimdall-dnssec-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn name(text: &str) -> NameBuf {
    NameBuf::from_presentation(text).unwrap()
}

/// The records of `owner` / `rtype` as validator records.
pub fn rrset<'a>(records: &'a [ZoneRecord], owner: &str, rtype: RecordType) -> Vec<Rr<'a>> {
    let owner = name(owner);
    records
        .iter()
        .filter(|record| {
            record.rtype == rtype && record.owner.as_name().eq_ignore_case(&owner.as_name())
        })
        .map(as_rr)
        .collect()
}

/// The RRSIGs of `owner` that cover `rtype`.
pub fn rrsigs<'a>(records: &'a [ZoneRecord], owner: &str, covered: RecordType) -> Vec<Rr<'a>> {
    rrset(records, owner, RecordType::RRSIG)
        .into_iter()
        .filter(|rr| rr.rdata().get(..2) == Some(&covered.0.to_be_bytes()[..]))
        .collect()
}

/// Every record of type `rtype` (NSEC, NSEC3) with its RRSIGs.
pub fn all_of<'a>(records: &'a [ZoneRecord], rtype: RecordType) -> Vec<Rr<'a>> {
    records
        .iter()
        .filter(|record| record.rtype == rtype)
        .map(as_rr)
        .collect()
}

pub fn as_rr(record: &ZoneRecord) -> Rr<'_> {
    Rr::new(
        record.owner.as_name(),
        record.rtype,
        record.class,
        record.ttl,
        &record.rdata,
    )
}

/// The same records renamed to `owner` (a wildcard expansion).
pub fn renamed<'a>(rrs: &[Rr<'_>], owner: &'a NameBuf) -> Vec<Rr<'a>> {
    rrs.iter()
        .map(|rr| {
            Rr::new(
                owner.as_name(),
                rr.rtype(),
                rr.class(),
                rr.ttl(),
                leak(rr.rdata()),
            )
        })
        .collect()
}

/// Tests only: keep bytes alive for the rest of the test binary.
pub fn leak(bytes: &[u8]) -> &'static [u8] {
    Box::leak(bytes.to_vec().into_boxed_slice())
}

/// A copy of `rr` with RDATA byte `index` flipped.
pub fn tampered(rr: &Rr<'_>, index: usize) -> Rr<'static> {
    let mut rdata = rr.rdata().to_vec();
    let at = index.min(rdata.len() - 1);
    rdata[at] ^= 0x01;
    let owner: &'static NameBuf = Box::leak(Box::new(NameBuf::from_name(&rr.owner())));
    Rr::new(
        owner.as_name(),
        rr.rtype(),
        rr.class(),
        rr.ttl(),
        leak(&rdata),
    )
}

/// Write `rrs` into the answer section of a real message (names in RDATA
/// compressed where RFC 1035 allows, owner names compressed) and return
/// the message bytes, for views that read through pointers.
pub fn into_message(rrs: &[Rr<'_>]) -> Vec<u8> {
    let mut buf = vec![0u8; 65_535];
    let mut builder = MessageBuilder::new(&mut buf).unwrap();
    builder.set_id(1);
    let question = rrs.first().unwrap();
    builder
        .question(&question.owner(), question.rtype(), Class::IN)
        .unwrap();
    for rr in rrs {
        let rdata = RData::parse(rr.rdata(), rr.rtype(), 0, rr.rdata().len()).unwrap();
        builder
            .record(
                Section::Answer,
                &rr.owner(),
                rr.rtype(),
                rr.class(),
                rr.ttl(),
                &rdata,
            )
            .unwrap();
    }
    let len = builder.finish();
    buf.truncate(len);
    buf
}

/// The answer records of `message`.
pub fn answers(message: &[u8]) -> Vec<Rr<'_>> {
    let message = Message::parse(message).unwrap();
    message.answers().map(Rr::from).collect()
}

pub fn owner_of<'a>(rr: &Rr<'a>) -> Name<'a> {
    rr.owner()
}

use heimdall_dnssec::{
    Config, Failure, Secure, TrustAnchors, prove_nodata, prove_nxdomain, prove_wildcard_answer,
    validate_rrset, verify_dnskeys_with_anchors,
};

/// The zone's DNSKEY RRset, validated against the DS text.
pub fn trusted_keys<'a>(
    records: &'a [ZoneRecord],
    ds_text: &str,
    now: u64,
) -> (Vec<Rr<'a>>, Secure) {
    let anchors = TrustAnchors::parse(ds_text).unwrap();
    let keys = rrset(records, "example.", RecordType::DNSKEY);
    let sigs = rrsigs(records, "example.", RecordType::DNSKEY);
    let secure = verify_dnskeys_with_anchors(&keys, &sigs, &anchors, now, &Config::default())
        .unwrap_or_else(|failure| panic!("DNSKEY RRset: {failure}"));
    (keys, secure)
}

/// Validate `owner`/`rtype` of a signed zone.
pub fn validate(
    records: &[ZoneRecord],
    keys: &[Rr<'_>],
    owner: &str,
    rtype: RecordType,
    now: u64,
) -> Result<Secure, Failure> {
    let set = rrset(records, owner, rtype);
    assert!(!set.is_empty(), "{owner} {rtype} is in the zone");
    validate_rrset(
        &set,
        &rrsigs(records, owner, rtype),
        keys,
        now,
        &Config::default(),
    )
}

/// The denial records of the zone (NSEC or NSEC3), each checked to
/// validate first, as the resolver will do.
pub fn denial_records<'a>(records: &'a [ZoneRecord], keys: &[Rr<'_>], now: u64) -> Vec<Rr<'a>> {
    let mut out = all_of(records, RecordType::NSEC);
    out.extend(all_of(records, RecordType::NSEC3));
    assert!(!out.is_empty());
    for rr in &out {
        let sigs: Vec<Rr<'_>> = rrset(records, &rr.owner().to_string(), RecordType::RRSIG)
            .into_iter()
            .filter(|sig| sig.rdata().get(..2) == Some(&rr.rtype().0.to_be_bytes()[..]))
            .collect();
        validate_rrset(
            core::slice::from_ref(rr),
            &sigs,
            keys,
            now,
            &Config::default(),
        )
        .unwrap_or_else(|failure| panic!("{} {}: {failure}", rr.owner(), rr.rtype()));
    }
    out
}

/// Shrink `records` to a set that still proves, and check that every
/// record left is needed.
pub fn minimal_proof<'a>(records: &[Rr<'a>], proves: impl Fn(&[Rr<'a>]) -> bool) -> Vec<Rr<'a>> {
    assert!(proves(records), "the whole chain proves it");
    let mut kept = records.to_vec();
    let mut index = 0;
    while index < kept.len() {
        let mut without = kept.clone();
        without.remove(index);
        if proves(&without) {
            kept = without;
        } else {
            index += 1;
        }
    }
    for index in 0..kept.len() {
        let mut without = kept.clone();
        without.remove(index);
        assert!(
            !proves(&without),
            "every record of the minimal proof is needed"
        );
    }
    kept
}

/// Everything a correctly signed copy of [`ZONE`] must pass at `now`:
/// the DNSKEY RRset against the DS, every RRset, a compressed copy of
/// the MX/NS/SOA, a wildcard expansion, and the denial proofs. NSEC3
/// zones without opt-out.
pub fn check_signed_zone(records: &[ZoneRecord], ds_text: &str, now: u64) {
    let config = Config::default();
    let (keys, _) = trusted_keys(records, ds_text, now);
    let apex = name("example.");
    let apex = apex.as_name();
    for (owner, rtype) in [
        ("example.", RecordType::SOA),
        ("example.", RecordType::NS),
        ("example.", RecordType::MX),
        ("ns1.example.", RecordType::A),
        ("a.example.", RecordType::A),
        ("a.example.", RecordType::TXT),
        ("b.example.", RecordType::AAAA),
        ("*.wild.example.", RecordType::TXT),
        ("x.y.example.", RecordType::A),
        ("sub.example.", RecordType::NS),
    ] {
        let result = validate(records, &keys, owner, rtype, now);
        if owner == "sub.example." {
            // Delegation NS records are not signed.
            assert_eq!(result, Err(heimdall_dnssec::Bogus::RrsigsMissing.into()));
            continue;
        }
        let secure = result.unwrap_or_else(|failure| panic!("{owner} {rtype}: {failure}"));
        assert!(secure.ttl <= 3600);
        assert_eq!(secure.wildcard, None, "{owner} {rtype}");
    }
    // Through a real message, names in RDATA compressed.
    for rtype in [RecordType::MX, RecordType::NS, RecordType::SOA] {
        let mut rrs = rrset(records, "example.", rtype);
        rrs.extend(rrsigs(records, "example.", rtype));
        let message = into_message(&rrs);
        let parsed = answers(&message);
        let (set, sigs): (Vec<Rr<'_>>, Vec<Rr<'_>>) =
            parsed.into_iter().partition(|rr| rr.rtype() == rtype);
        validate_rrset(&set, &sigs, &keys, now, &config)
            .unwrap_or_else(|failure| panic!("{rtype} from a message: {failure}"));
    }
    // A record repeated in the RRset counts once (RFC 4034 6.3).
    let mut doubled = rrset(records, "a.example.", RecordType::A);
    doubled.push(doubled[0]);
    validate_rrset(
        &doubled,
        &rrsigs(records, "a.example.", RecordType::A),
        &keys,
        now,
        &config,
    )
    .unwrap();
    // Owner names in the random letter case of a 0x20 query.
    let mixed = name("A.eXaMpLe.");
    let set = renamed(&rrset(records, "a.example.", RecordType::A), &mixed);
    let sigs = renamed(&rrsigs(records, "a.example.", RecordType::A), &mixed);
    validate_rrset(&set, &sigs, &keys, now, &config).unwrap();
    // A wildcard expansion.
    let qname = name("foo.wild.example.");
    let txt = renamed(&rrset(records, "*.wild.example.", RecordType::TXT), &qname);
    let sigs = renamed(&rrsigs(records, "*.wild.example.", RecordType::TXT), &qname);
    let secure = validate_rrset(&txt, &sigs, &keys, now, &config).unwrap();
    let wildcard = secure.wildcard.unwrap();
    assert_eq!(wildcard.to_string(), "*.wild.example.");
    let denial = denial_records(records, &keys, now);
    prove_wildcard_answer(
        &qname.as_name(),
        &wildcard.as_name(),
        &apex,
        &denial,
        &config,
    )
    .unwrap();
    let proof = minimal_proof(&denial, |set| {
        prove_wildcard_answer(&qname.as_name(), &wildcard.as_name(), &apex, set, &config).is_ok()
    });
    assert_eq!(proof.len(), 1);
    // The wrong wildcard does not verify.
    let other = name("foo.other.example.");
    let txt = renamed(&rrset(records, "*.wild.example.", RecordType::TXT), &other);
    let sigs = renamed(&rrsigs(records, "*.wild.example.", RecordType::TXT), &other);
    assert_eq!(
        validate_rrset(&txt, &sigs, &keys, now, &config),
        Err(heimdall_dnssec::Bogus::BadSignature.into())
    );
    // NXDOMAIN: c.example. needs the record covering it and the one
    // covering *.example. (NSEC3: plus the closest encloser's match).
    let c = name("c.example.");
    prove_nxdomain(&c.as_name(), &apex, &denial, &config).unwrap();
    let proof = minimal_proof(&denial, |set| {
        prove_nxdomain(&c.as_name(), &apex, set, &config).is_ok()
    });
    assert!((1..=3).contains(&proof.len()), "{proof:?}");
    // Without the record that covers the wildcard *.example. the proof
    // fails (unless the same record also covers c.example.).
    let is_nsec = denial.iter().any(|rr| rr.rtype() == RecordType::NSEC);
    let cover = |target: &str| {
        if is_nsec {
            let owner = if target == "*.example." {
                "example."
            } else {
                "b.example."
            };
            rrset(records, owner, RecordType::NSEC)[0]
        } else {
            nsec3_covering(&denial, target).unwrap()
        }
    };
    let (wildcard_cover, qname_cover) = (cover("*.example."), cover("c.example."));
    if !wildcard_cover.owner().eq_ignore_case(&qname_cover.owner()) {
        let without: Vec<Rr<'_>> = denial
            .iter()
            .filter(|rr| !rr.owner().eq_ignore_case(&wildcard_cover.owner()))
            .copied()
            .collect();
        assert_eq!(
            prove_nxdomain(&c.as_name(), &apex, &without, &config),
            Err(heimdall_dnssec::Bogus::NsecMissing.into())
        );
    }
    for existing in ["a.example.", "x.y.example.", "y.example.", "example."] {
        let existing = name(existing);
        assert!(
            prove_nxdomain(&existing.as_name(), &apex, &denial, &config)
                .unwrap_err()
                .is_bogus(),
            "{existing}"
        );
    }
    // Below the unsigned delegation nothing can be denied.
    let below = name("zz.sub.example.");
    assert!(
        prove_nxdomain(&below.as_name(), &apex, &denial, &config)
            .unwrap_err()
            .is_bogus()
    );
    // NODATA: a type that is missing, one that is not.
    let a = name("a.example.");
    prove_nodata(&a.as_name(), RecordType::MX, &apex, &denial, &config).unwrap();
    assert_eq!(
        prove_nodata(&a.as_name(), RecordType::A, &apex, &denial, &config),
        Err(heimdall_dnssec::Bogus::BadDenial.into())
    );
    // The empty non-terminal y.example.
    let y = name("y.example.");
    prove_nodata(&y.as_name(), RecordType::A, &apex, &denial, &config).unwrap();
    // Wildcard NODATA.
    let expanded = name("foo.wild.example.");
    prove_nodata(&expanded.as_name(), RecordType::A, &apex, &denial, &config).unwrap();
    assert_eq!(
        prove_nodata(
            &expanded.as_name(),
            RecordType::TXT,
            &apex,
            &denial,
            &config
        ),
        Err(heimdall_dnssec::Bogus::BadDenial.into())
    );
    // The DS of the unsigned delegation is denied; its A (parent side) not.
    let sub = name("sub.example.");
    prove_nodata(&sub.as_name(), RecordType::DS, &apex, &denial, &config).unwrap();
    assert!(
        prove_nodata(&sub.as_name(), RecordType::A, &apex, &denial, &config)
            .unwrap_err()
            .is_bogus()
    );
    // Nothing to go on.
    assert_eq!(
        prove_nxdomain(&c.as_name(), &apex, &[], &config),
        Err(heimdall_dnssec::Bogus::NsecMissing.into())
    );
}

/// The NSEC3 record whose span covers the hash of `target`, found by this
/// test's own reading of the records.
pub fn nsec3_covering<'a>(denial: &[Rr<'a>], target: &str) -> Option<Rr<'a>> {
    let target = name(target);
    denial.iter().copied().find(|rr| {
        let Some(nsec3) = heimdall_dnssec::Nsec3::parse(rr) else {
            return false;
        };
        let label = rr.owner().labels().next().unwrap().to_ascii_uppercase();
        let owner = data_encoding::BASE32HEX_NOPAD.decode(&label).unwrap();
        let hash = heimdall_dnssec::nsec3_hash(&target.as_name(), nsec3.salt, nsec3.iterations);
        let (owner, next, hash) = (owner.as_slice(), nsec3.next_hashed, hash.as_slice());
        if owner < next {
            owner < hash && hash < next
        } else {
            hash > owner || hash < next
        }
    })
}
