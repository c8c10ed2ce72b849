//! Zone file parsing: every syntax feature, and broken files rejected with
//! `file:line` errors.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::path::{Path, PathBuf};

use heimdall_wire::{Class, NameBuf, RecordType};
use heimdall_zone::{ZoneError, ZoneRecord, parse_record_line, parse_zone, parse_zone_file};

fn zones_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones")
}

fn name(text: &str) -> NameBuf {
    NameBuf::from_presentation(text).unwrap()
}

fn load(file: &str) -> Vec<ZoneRecord> {
    parse_zone_file(&zones_dir().join(file), None).unwrap()
}

fn find<'r>(records: &'r [ZoneRecord], owner: &str, rtype: RecordType) -> Vec<&'r ZoneRecord> {
    let owner = name(owner).to_lowercase();
    records
        .iter()
        .filter(|record| record.owner.to_lowercase() == owner && record.rtype == rtype)
        .collect()
}

fn one<'r>(records: &'r [ZoneRecord], owner: &str, rtype: RecordType) -> &'r ZoneRecord {
    let found = find(records, owner, rtype);
    assert_eq!(found.len(), 1, "{owner} {rtype}: {found:?}");
    found[0]
}

#[test]
fn example_zone_parses_every_feature() {
    let records = load("example.com.zone");
    let soa = one(&records, "example.com.", RecordType::SOA);
    assert_eq!(soa.ttl, 3600, "$TTL 1h");
    assert_eq!(soa.class, Class::IN);
    let mut expected = name("ns1.example.com.").as_wire().to_vec();
    expected.extend_from_slice(name("hostmaster.example.com.").as_wire());
    for value in [2_024_010_101u32, 7200, 1800, 1_209_600, 300] {
        expected.extend_from_slice(&value.to_be_bytes());
    }
    assert_eq!(soa.rdata, expected, "SOA across parentheses and comments");

    // Owner inheritance after the SOA.
    let ns = find(&records, "example.com.", RecordType::NS);
    assert_eq!(ns.len(), 2);
    assert_eq!(ns[0].rdata, name("ns1.example.com.").as_wire());
    assert_eq!(ns[1].rdata, name("ns2.example.net.").as_wire());
    let mx = one(&records, "example.com.", RecordType::MX);
    assert_eq!(mx.rdata[..2], [0, 10]);
    assert_eq!(mx.rdata[2..], *name("mail.example.com.").as_wire());

    let txt = one(&records, "example.com.", RecordType::TXT);
    assert_eq!(txt.rdata, b"\x0bv=spf1 -all\x0dsecond string\x08unquoted");
    let aaaa = one(&records, "ns1.example.com.", RecordType::AAAA);
    assert_eq!(aaaa.rdata[..4], [0x20, 0x01, 0x0d, 0xb8]);

    let mail = one(&records, "mail.example.com.", RecordType::A);
    assert_eq!((mail.ttl, mail.class), (300, Class::IN));
    assert_eq!(mail.rdata, [192, 0, 2, 25]);
    let www = one(&records, "www.example.com.", RecordType::CNAME);
    assert_eq!(www.ttl, 300);
    assert_eq!(find(&records, "web.example.com.", RecordType::A).len(), 2);

    let srv = one(&records, "_sip._tcp.example.com.", RecordType::SRV);
    assert_eq!(srv.rdata[..6], [0, 10, 0, 60, 0x13, 0xc4]);
    assert_eq!(srv.rdata[6..], *name("sip.example.com.").as_wire());

    let caa = find(&records, "caa.example.com.", RecordType::CAA);
    assert_eq!(caa[0].rdata, b"\x00\x05issueca.example.net");
    assert_eq!(caa[1].rdata, b"\x80\x05iodefmailto:security@example.com");
    let hinfo = one(&records, "hinfo.example.com.", RecordType::HINFO);
    assert_eq!(hinfo.rdata, b"\x08PC-Intel\x07Linux 6");
    let naptr = one(&records, "naptr.example.com.", RecordType::NAPTR);
    assert_eq!(
        naptr.rdata,
        b"\x00\x64\x00\x0a\x01u\x07E2U+sip\x1b!^.*$!sip:info@example.com!\x00"
    );

    let escaped = one(&records, "escaped.example.com.", RecordType::TXT);
    let first = b"quote \" backslash \\ decimal AB semicolon ; in quotes";
    let mut expected = vec![first.len() as u8];
    expected.extend_from_slice(first);
    expected.extend_from_slice(b"\x0aplain word");
    assert_eq!(escaped.rdata, expected);

    let generic = one(&records, "generic.example.com.", RecordType(65280));
    assert_eq!(generic.rdata, [10, 0, 0, 1]);
    assert_eq!(
        one(&records, "generic2.example.com.", RecordType::A).rdata,
        [192, 0, 2, 2]
    );
    assert_eq!(
        one(&records, "classy.example.com.", RecordType::A).class,
        Class::IN
    );
    assert_eq!(
        one(&records, "typed.example.com.", RecordType::A).rdata,
        [192, 0, 2, 4]
    );
    assert_eq!(
        one(&records, "multi.example.com.", RecordType::TXT).rdata,
        b"\x03one\x03two"
    );
    let mixed = one(&records, "mixed.case.example.com.", RecordType::A);
    assert_eq!(
        mixed.owner.to_string(),
        "Mixed.Case.example.com.",
        "case kept"
    );
    assert_eq!(
        one(&records, "*.wild.example.com.", RecordType::A).rdata,
        [192, 0, 2, 99]
    );

    // $INCLUDE: same origin, $ORIGIN inside, restored afterwards.
    one(&records, "inc.example.com.", RecordType::A);
    one(&records, "host.deep.example.com.", RecordType::AAAA);
    let after = one(&records, "after.example.com.", RecordType::A);
    assert_eq!(after.ttl, 3600);
    assert_eq!(records.len(), 45);
}

#[test]
fn nested_includes_resolve_relative_to_the_including_file() {
    let records = load("nested.zone");
    let host = one(&records, "host.other.nested.test.", RecordType::A);
    assert_eq!(host.rdata, [198, 51, 100, 1]);
    assert_eq!(host.ttl, 300);
    one(&records, "leaf.other.nested.test.", RecordType::A);
    assert_eq!(records.len(), 5);
}

#[test]
fn in_memory_loader_is_used_for_includes() {
    let mut asked = Vec::new();
    let text = "$ORIGIN m.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n$INCLUDE part.zone\n";
    let records = parse_zone(text, "dir/main.zone", None, &mut |path| {
        asked.push(path.to_owned());
        Ok("a A 192.0.2.1\n".to_owned())
    })
    .unwrap();
    assert_eq!(asked, ["dir/part.zone"]);
    assert_eq!(records[1].owner, name("a.m.test."));
}

fn error_of(file: &str) -> String {
    let path = zones_dir().join("broken").join(file);
    let err = parse_zone_file(&path, None).unwrap_err();
    assert!(matches!(err, ZoneError::Syntax { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn broken_files_are_rejected_with_file_and_line() {
    let cases = [
        ("bad_ipv4.zone", 5, "bad IPv4 address"),
        ("unbalanced.zone", 3, "unbalanced '('"),
        ("unknown_type.zone", 3, "unknown type \"FOO\""),
        (
            "no_origin.zone",
            3,
            "relative name \"www\" without an origin",
        ),
        ("unterminated.zone", 4, "unterminated quoted string"),
        ("generic_len.zone", 4, "generic RDATA length 3 but 4 bytes"),
        ("missing_include.zone", 4, "cannot include"),
        ("blank_first.zone", 3, "no previous owner"),
        ("bad_escape.zone", 4, "above 255"),
        ("missing_rdata.zone", 3, "missing SOA minimum"),
        ("trailing.zone", 4, "unexpected \"extra\""),
    ];
    for (file, line, what) in cases {
        let message = error_of(file);
        let prefix = format!("broken/{file}:{line}: ");
        assert!(
            message.contains(&prefix) && message.contains(what),
            "{file}: got {message:?}, want {prefix}{what}"
        );
    }
    let message = error_of("self_include.zone");
    assert!(
        message.contains("self_include.zone:2: $INCLUDE nested deeper than 8"),
        "{message}"
    );
}

#[test]
fn more_syntax_errors() {
    let bad = |text: &str| {
        parse_zone(text, "t.zone", Some(&name("t.")), &mut |_| {
            Err(std::io::ErrorKind::NotFound.into())
        })
        .unwrap_err()
        .to_string()
    };
    assert!(bad("a A 1.2.3.4 )\n").starts_with("t.zone:1: unbalanced ')'"));
    assert!(bad("\n\n@ AAAA 1.2.3.4\n").starts_with("t.zone:3: bad IPv6 address"));
    assert!(bad("a TXT \"\\12\"\n").contains("three digits"));
    assert!(bad(&format!("a TXT {}\n", "x".repeat(256))).contains("longer than 255"));
    assert!(bad("a MX 70000 b\n").contains("bad MX preference"));
    assert!(bad("a CAA 0 is-sue \"x\"\n").contains("bad CAA tag"));
    assert!(bad("$TTL forever\n").contains("bad TTL"));
    assert!(bad("$GENERATE 1-2 a A 1.2.3.4\n").contains("unknown directive"));
    assert!(bad("a TLSA 3 1 1 abcd\n").contains("generic form"));
    assert!(bad("a DS 1 2 3 xyz\n").contains("bad DS digest"));
    assert!(
        bad("a RRSIG A 8 2 60 20251301000000 20250101000000 1 t. AAAA\n")
            .contains("bad RRSIG expiration")
    );
    assert!(bad("a NSEC b. A BOGUSTYPE\n").contains("unknown type"));
    assert!(
        bad("a NSEC3 1 0 0 zz 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A\n").contains("bad NSEC3 salt")
    );
    assert!(bad("a NSEC3 1 0 0 - not-base32 A\n").contains("bad NSEC3 hash"));
    assert!(bad("a.. A 1.2.3.4\n").starts_with("t.zone:1: bad name"));
}

#[test]
fn dnssec_records_in_presentation_format() {
    // The examples of RFC 4034 sections 2.3, 3.3, 4.3, 5.3 and RFC 5155
    // appendix A.
    let text = "\
example.com. 86400 IN DNSKEY 256 3 5 ( AQPSKmynfzW4kyBv015MUG2DeIQ3
    Cbl+BBZH4b/0PY1kxkmvHjcZc8nokfzj31GajIQKY+5CptLr3buXA10h
    WqTkF7H6RfoRqXQeogmMHfpftf6zMv1LyBUgia7za6ZEzOJBOztyvhjL
    742iU/TpPSEDhm2SNKLijfUppn1UaNvv4w== )
host.example.com. 86400 IN RRSIG A 5 3 86400 20030322173103 (
    20030220173103 2642 example.com.
    oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6o
    B9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkG
    J5D6fwFm8nN+6pBzeDQfsS3Ap3o= )
alfa.example.com. 86400 IN NSEC host.example.com. ( A MX RRSIG NSEC TYPE1234 )
dskey.example.com. 86400 IN DS 60485 5 1 ( 2BB183AF5F22588179A53B0A98631FAD1A292118 )
0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 3600 IN NSEC3 1 1 12 aabbccdd (
    2t7b4g4vsa5smi47k61mv5bv1a22bojr MX DNSKEY NS SOA NSEC3PARAM RRSIG )
example. 3600 IN NSEC3PARAM 1 0 0 -
";
    let records = parse_zone(text, "t.zone", None, &mut |_| unreachable!()).unwrap();
    let key = &records[0];
    assert_eq!(key.rtype, RecordType::DNSKEY);
    assert_eq!(&key.rdata[..4], &[0x01, 0x00, 3, 5]);
    assert!(key.rdata.ends_with(&[0x68, 0xdb, 0xef, 0xe3]));
    let sig = &records[1];
    assert_eq!(&sig.rdata[..4], &[0, 1, 5, 3]);
    assert_eq!(&sig.rdata[4..8], &86400u32.to_be_bytes());
    assert_eq!(&sig.rdata[8..12], &1_048_354_263u32.to_be_bytes());
    assert_eq!(&sig.rdata[12..16], &1_045_762_263u32.to_be_bytes());
    assert_eq!(&sig.rdata[16..18], &2642u16.to_be_bytes());
    assert_eq!(&sig.rdata[18..31], b"\x07example\x03com\x00");
    assert_eq!(sig.rdata.len(), 31 + 128);
    let nsec = &records[2];
    let mut expected = b"\x04host\x07example\x03com\x00".to_vec();
    expected.extend_from_slice(&[0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b]);
    expected.extend_from_slice(&[0; 26]);
    expected.push(0x20);
    assert_eq!(nsec.rdata, expected);
    let ds = &records[3];
    assert_eq!(&ds.rdata[..4], &[0xec, 0x45, 5, 1]);
    assert_eq!(ds.rdata.len(), 4 + 20);
    let nsec3 = &records[4];
    assert_eq!(
        &nsec3.rdata[..10],
        &[1, 1, 0, 12, 4, 0xaa, 0xbb, 0xcc, 0xdd, 20]
    );
    assert_eq!(nsec3.rdata.len(), 10 + 20 + 2 + 7);
    assert_eq!(records[5].rdata, [1, 0, 0, 0, 0]);
    // Plain seconds are accepted for RRSIG times too.
    let line = "a. RRSIG A 13 1 60 1048354263 1045762263 1 a. AAAA";
    let record = parse_record_line(line, None, 300).unwrap();
    assert_eq!(&record.rdata[8..16], &sig.rdata[8..16]);
}

#[test]
fn record_lines() {
    let record = parse_record_line("router.lan. 60 IN A 192.168.1.1", None, 300).unwrap();
    assert_eq!(record.owner, name("router.lan."));
    assert_eq!((record.ttl, record.rtype), (60, RecordType::A));
    let record = parse_record_line("nas AAAA fd00::2", Some(&name("home.arpa.")), 300).unwrap();
    assert_eq!(record.owner, name("nas.home.arpa."));
    assert_eq!(record.ttl, 300);
    let record = parse_record_line("printer.lan TXT \"a b\" c", None, 300).unwrap();
    assert_eq!(record.owner, name("printer.lan."));
    assert_eq!(record.rdata, b"\x03a b\x01c");
    let err = parse_record_line(" A 192.0.2.1", None, 300).unwrap_err();
    assert!(err.to_string().starts_with("local.records:1: "), "{err}");
    assert!(parse_record_line("x A 1.2.3.4\ny A 1.2.3.5", None, 300).is_err());
    assert!(parse_record_line("$TTL 5", None, 300).is_err());
}

#[test]
fn ttl_units_and_class_ttl_order() {
    let records = parse_zone(
        "$ORIGIN u.test.\na 1h30m IN A 192.0.2.1\nb IN 2d A 192.0.2.2\nc A 192.0.2.3\nd CH TXT x\n",
        "u.zone",
        None,
        &mut |_| Err(std::io::ErrorKind::NotFound.into()),
    )
    .unwrap();
    let ttls: Vec<u32> = records.iter().map(|record| record.ttl).collect();
    assert_eq!(
        ttls,
        [5400, 172_800, 172_800, 172_800],
        "no $TTL: last TTL is kept"
    );
    assert_eq!(records[3].class, Class::CH);
}
