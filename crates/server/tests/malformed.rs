//! Thousands of malformed, mutated and random datagrams sent to a running
//! server over UDP on 127.0.0.1 (deterministic PRNG, so a failure
//! reproduces). What must hold:
//!
//! - Garbage (anything heimdall-wire cannot parse as a message) gets
//!   FORMERR or no reply, never anything else. Datagrams shorter than a
//!   header, and responses (QR set), get no reply at all: answering a
//!   response invites reflection loops.
//! - A mutation can also produce a well-formed query (another name, type,
//!   opcode, flags). Such a query may legitimately be answered, refused,
//!   forwarded or fail, so any rcode a resolver sends is accepted for it,
//!   but the reply must still be a well-formed response (both parsers
//!   agree) to that query: same ID, QR set, and the question echoed
//!   exactly when there is one.
//! - No datagram gets two replies, and no reply carries an ID that was
//!   never sent.
//! - Hand-made classic attacks (compression loops, overlong names, bad
//!   OPT records, meta types, other opcodes) get the specific rcode RFC
//!   1035/6891 ask for.
//! - The server keeps serving throughout (a sentinel query after every
//!   batch is answered), and no core panics (join returns Ok).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Reply, Setup, ask_directly, query, start_upstream, total};
use heimdall_loadtest::UpstreamConfig;
use heimdall_wire::{
    Class, EdnsOption, Flags, HEADER_LEN, Message, MessageBuilder, NameBuf, OptSpec, Rcode,
    RecordType,
};

/// Random and mutated datagrams, besides the hand-made ones.
const MUTATED: usize = 3_000;
const RANDOM: usize = 1_000;
/// Datagrams sent between two sentinel queries.
const BATCH: usize = 64;
/// IDs of sentinel queries: above every fuzz datagram's ID.
const SENTINEL_BASE: u16 = 0xf000;

use heimdall_testkit::SplitMix64 as Rng;

/// What a datagram must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Judge by whether it parses (see the module comment).
    ByParse,
    /// Exactly this rcode.
    Rcode(Rcode),
    /// Nothing at all.
    Silence,
}

fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend(id.to_be_bytes());
    out.extend(flags.to_be_bytes());
    for count in counts {
        out.extend(count.to_be_bytes());
    }
    out
}

fn type_class(out: &mut Vec<u8>, rtype: u16, class: u16) {
    out.extend(rtype.to_be_bytes());
    out.extend(class.to_be_bytes());
}

const HOST1: &[u8] = b"\x06host-1\x04zone\x04test\x00";

/// An OPT record: root owner, payload, version, no options.
fn opt_record(version: u8) -> Vec<u8> {
    let mut out = vec![0u8];
    type_class(&mut out, 41, 1232);
    out.extend([0, version, 0, 0, 0, 0]);
    out
}

/// A query for `host-1.zone.test.` A with `flags` and an optional OPT.
fn simple_query(flags: u16, qtype: u16, class: u16, opt: Option<Vec<u8>>) -> Vec<u8> {
    let mut out = header(0, flags, [1, 0, 0, u16::from(opt.is_some())]);
    out.extend(HOST1);
    type_class(&mut out, qtype, class);
    if let Some(opt) = opt {
        out.extend(opt);
    }
    out
}

/// Classic malformations, each with the reply it must get.
fn hand_made() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let rd = Flags::RD;
    let formerr = Expect::Rcode(Rcode::FORMERR);
    let mut cases = Vec::new();

    let mut looped = header(0, rd, [1, 0, 0, 0]);
    looped.extend([0xc0, 0x0c]);
    type_class(&mut looped, 1, 1);
    cases.push(("compression pointer to itself", looped, formerr));

    let mut forward = header(0, rd, [1, 0, 0, 0]);
    forward.extend([0xc0, 0x12]);
    type_class(&mut forward, 1, 1);
    forward.extend(HOST1);
    cases.push(("compression pointer forward", forward, formerr));

    let mut long_label = header(0, rd, [1, 0, 0, 0]);
    long_label.push(64);
    long_label.extend([b'a'; 64]);
    long_label.push(0);
    type_class(&mut long_label, 1, 1);
    cases.push(("64-byte label", long_label, formerr));

    let mut long_name = header(0, rd, [1, 0, 0, 0]);
    for _ in 0..5 {
        long_name.push(63);
        long_name.extend([b'b'; 63]);
    }
    long_name.push(0);
    type_class(&mut long_name, 1, 1);
    cases.push(("name over 255 bytes", long_name, formerr));

    cases.push(("header only", header(0, rd, [0; 4]), formerr));
    let mut two_questions = simple_query(rd, 1, 1, None);
    two_questions[5] = 2;
    two_questions.extend(HOST1);
    type_class(&mut two_questions, 28, 1);
    cases.push(("two questions", two_questions, formerr));
    let mut huge_counts = simple_query(rd, 1, 1, None);
    huge_counts[6..12].copy_from_slice(&[0xff; 6]);
    cases.push(("counts beyond the data", huge_counts, formerr));

    let mut two_opts = simple_query(rd, 1, 1, Some(opt_record(0)));
    two_opts[11] = 2;
    two_opts.extend(opt_record(0));
    cases.push(("two OPT records", two_opts, formerr));
    let mut opt_in_answer = header(0, rd, [1, 1, 0, 0]);
    opt_in_answer.extend(HOST1);
    type_class(&mut opt_in_answer, 1, 1);
    opt_in_answer.extend(opt_record(0));
    cases.push(("OPT in the answer section", opt_in_answer, formerr));
    let mut bad_option = simple_query(rd, 1, 1, None);
    bad_option[11] = 1;
    bad_option.push(0);
    type_class(&mut bad_option, 41, 1232);
    bad_option.extend([0, 0, 0, 0, 0, 6, 0, 10, 0, 9, 1, 2]);
    cases.push(("EDNS option longer than its record", bad_option, formerr));

    cases.push((
        "EDNS version 1",
        simple_query(rd, 1, 1, Some(opt_record(1))),
        Expect::Rcode(Rcode::BADVERS),
    ));
    cases.push((
        "NOTIFY",
        simple_query(
            Flags(0).with_opcode(heimdall_wire::Opcode::NOTIFY).0,
            6,
            1,
            None,
        ),
        Expect::Rcode(Rcode::NOTIMP),
    ));
    cases.push((
        "AXFR over UDP",
        simple_query(rd, 252, 1, None),
        Expect::Rcode(Rcode::REFUSED),
    ));
    cases.push(("OPT as a question", simple_query(rd, 41, 1, None), formerr));
    cases.push((
        "class CH",
        simple_query(rd, 16, 3, None),
        Expect::Rcode(Rcode::REFUSED),
    ));

    cases.push(("empty datagram", Vec::new(), Expect::Silence));
    cases.push(("one byte", vec![0x42], Expect::Silence));
    cases.push((
        "11 bytes",
        header(0, rd, [1, 0, 0, 0])[..11].to_vec(),
        Expect::Silence,
    ));
    cases.push((
        "a well-formed query with QR set",
        simple_query(Flags::QR | rd, 1, 1, None),
        Expect::Silence,
    ));
    cases
}

/// Well-formed queries to mutate.
fn templates() -> Vec<Vec<u8>> {
    let cookie = [EdnsOption {
        code: heimdall_wire::edns::COOKIE,
        data: &[1, 2, 3, 4, 5, 6, 7, 8],
    }];
    let mut with_cookie = vec![0u8; 512];
    let len = {
        let name = NameBuf::from_presentation("host-3.zone.test.").unwrap();
        let mut builder = MessageBuilder::new(&mut with_cookie).unwrap();
        builder.set_flags(Flags::default().with_recursion_desired(true));
        builder
            .question(&name.as_name(), RecordType::AAAA, Class::IN)
            .unwrap();
        builder
            .opt(&OptSpec {
                udp_payload_size: 4096,
                extended_rcode: 0,
                version: 0,
                dnssec_ok: true,
                options: &cookie,
            })
            .unwrap();
        builder.finish()
    };
    with_cookie.truncate(len);
    vec![
        query(0, "host-1.zone.test.", RecordType::A, None),
        query(0, "host-2.zone.test.", RecordType::MX, Some(1232)),
        query(0, "alias-1.zone.test.", RecordType::TXT, Some(512)),
        query(0, "nosuch.zone.test.", RecordType::A, None),
        with_cookie,
    ]
}

const INTERESTING: [u8; 9] = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xfe, 0xff];

fn mutate(rng: &mut Rng, template: &[u8]) -> Vec<u8> {
    let mut packet = template.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = packet.len();
        match rng.below(9) {
            0 if len > 0 => {
                let at = rng.below(len);
                packet[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                packet[at] = rng.byte();
            }
            2 if len > 0 => {
                let at = rng.below(len);
                packet[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 => packet.truncate(rng.below(len + 1)),
            4 => {
                let extra = rng.below(32) + 1;
                packet.extend(rng.bytes(extra));
            }
            5 => {
                let at = rng.below(len + 1);
                let extra = rng.below(8) + 1;
                let bytes = rng.bytes(extra);
                packet.splice(at..at, bytes);
            }
            6 if len > 0 => {
                let at = rng.below(len);
                let end = (at + rng.below(8) + 1).min(len);
                packet.drain(at..end);
            }
            7 if len >= HEADER_LEN => {
                let field = 4 + 2 * rng.below(4);
                let value: u16 = match rng.below(3) {
                    0 => rng.below(4) as u16,
                    1 => 0xffff,
                    _ => rng.next_u64() as u16,
                };
                packet[field..field + 2].copy_from_slice(&value.to_be_bytes());
            }
            _ if len > 2 => {
                // Copy a chunk over another place: repeated names,
                // pointers into odd offsets.
                let from = rng.below(len);
                let to = rng.below(len);
                let n = rng.below(16).min(len - from).min(len - to);
                packet.copy_within(from..from + n, to);
            }
            _ => {}
        }
    }
    // Mostly keep QR clear: a response is dropped before any parsing, so a
    // flipped QR would only test that one rule over and over.
    if packet.len() > 2 && rng.below(10) != 0 {
        packet[2] &= 0x7f;
    }
    packet
}

fn set_id(packet: &mut [u8], id: u16) {
    if let Some(bytes) = packet.first_chunk_mut::<2>() {
        *bytes = id.to_be_bytes();
    }
}

#[test]
fn malformed_and_random_datagrams_get_formerr_or_nothing() {
    let mut rng = Rng(0x00de_c0de_f00d);
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = Setup {
        timeout: "200ms",
        attempts: 2,
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();
    let client = server.client();

    // Prime the cache so that sentinels are answered at once, in order
    // behind the batch they follow.
    let sentinel_query = |n: u16| {
        query(
            SENTINEL_BASE + n,
            "host-1.zone.test.",
            RecordType::A,
            Some(1232),
        )
    };
    let primed = client.exchange(&sentinel_query(0));
    assert_eq!(primed.rcode(), Rcode::NOERROR);
    let response = ask_directly(
        upstream.local_addr(),
        &query(0, "host-8.zone.test.", RecordType::MX, Some(1232)),
    )
    .bytes;

    let mut sent: Vec<(String, Vec<u8>, Expect)> = hand_made()
        .into_iter()
        .map(|(what, bytes, expect)| (what.to_owned(), bytes, expect))
        .collect();
    for i in 0..20 {
        // Real responses, mutated a little and with QR kept: no reply.
        let mut bytes = mutate(&mut rng, &response);
        if bytes.len() > 2 {
            bytes[2] |= 0x80;
        }
        let expect = if bytes.len() >= 3 {
            Expect::Silence
        } else {
            Expect::ByParse
        };
        sent.push((format!("response {i}"), bytes, expect));
    }
    let templates = templates();
    for i in 0..MUTATED {
        let template = &templates[i % templates.len()];
        sent.push((
            format!("mutated {i}"),
            mutate(&mut rng, template),
            Expect::ByParse,
        ));
    }
    for i in 0..RANDOM {
        let len = match i % 10 {
            0 => rng.below(HEADER_LEN),
            1 => 4096 + rng.below(2048),
            _ => rng.below(600),
        };
        let mut bytes = rng.bytes(len);
        if i % 2 == 0 && bytes.len() >= HEADER_LEN {
            // A plausible header (a query, one question) over random data.
            bytes[2] &= 0x7f;
            bytes[4..6].copy_from_slice(&1u16.to_be_bytes());
        }
        sent.push((format!("random {i}"), bytes, Expect::ByParse));
    }
    assert!(sent.len() < usize::from(SENTINEL_BASE));
    for (index, (_, bytes, _)) in sent.iter_mut().enumerate() {
        set_id(bytes, index as u16 + 1);
    }

    // Send in batches, each followed by a sentinel query that must be
    // answered: the server keeps serving. Replies are collected by ID.
    let mut replies: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    for (batch, chunk) in sent.chunks(BATCH).enumerate() {
        for (_, bytes, _) in chunk {
            client.send(bytes);
        }
        let sentinel = sentinel_query(batch as u16 + 1);
        client.send(&sentinel);
        let sentinel_id = SENTINEL_BASE + batch as u16 + 1;
        loop {
            let bytes = client
                .recv_within(Duration::from_secs(2))
                .unwrap_or_else(|| panic!("the server stopped answering at batch {batch}"));
            let id = u16::from_be_bytes([bytes[0], bytes[1]]);
            if id == sentinel_id {
                let reply = Reply::check(bytes);
                reply.assert_answers(&sentinel);
                assert_eq!(reply.rcode(), Rcode::NOERROR);
                break;
            }
            replies.entry(id).or_default().push(bytes);
        }
    }
    // Forwarded queries are answered (or fail) within timeout x attempts.
    while let Some(bytes) = client.recv_within(Duration::from_millis(800)) {
        let id = u16::from_be_bytes([bytes[0], bytes[1]]);
        replies.entry(id).or_default().push(bytes);
    }

    let mut tally: HashMap<String, usize> = HashMap::new();
    for (index, (what, bytes, expect)) in sent.iter().enumerate() {
        let id = index as u16 + 1;
        let got = replies.remove(&id).unwrap_or_default();
        assert!(
            got.len() <= 1,
            "{what}: {} replies to one datagram",
            got.len()
        );
        let parsed = Message::parse(bytes).ok();
        let Some(reply_bytes) = got.into_iter().next() else {
            assert_ne!(
                *expect,
                Expect::Rcode(Rcode::FORMERR),
                "{what}: no reply, FORMERR expected"
            );
            if let Expect::Rcode(rcode) = expect {
                panic!("{what}: no reply, {rcode} expected");
            }
            let why = if bytes.len() < HEADER_LEN {
                "no reply: shorter than a header"
            } else if bytes[2] & 0x80 != 0 {
                "no reply: QR set"
            } else {
                "no reply: a query"
            };
            *tally.entry(why.into()).or_default() += 1;
            continue;
        };
        assert_ne!(
            *expect,
            Expect::Silence,
            "{what}: must not be answered: {bytes:02x?}"
        );
        assert!(
            bytes.len() >= HEADER_LEN && bytes[2] & 0x80 == 0,
            "{what}: a datagram without a query header was answered"
        );
        // Both parsers accept every reply and agree on it.
        let reply = Reply::check(reply_bytes);
        let message = reply.message();
        assert!(message.flags().response(), "{what}: QR");
        assert!(
            reply.bytes.len() <= 512 || message.opt().is_some(),
            "{what}: size"
        );
        let rcode = reply.rcode();
        match (expect, parsed) {
            (Expect::Rcode(wanted), _) => assert_eq!(rcode, *wanted, "{what}"),
            (_, None) => {
                assert_eq!(
                    rcode,
                    Rcode::FORMERR,
                    "{what}: garbage gets FORMERR: {bytes:02x?}"
                );
                assert_eq!(message.answers().count(), 0, "{what}");
            }
            (_, Some(asked)) => {
                assert!(
                    [
                        Rcode::NOERROR,
                        Rcode::NXDOMAIN,
                        Rcode::SERVFAIL,
                        Rcode::FORMERR,
                        Rcode::NOTIMP,
                        Rcode::REFUSED,
                        Rcode::BADVERS,
                    ]
                    .contains(&rcode),
                    "{what}: rcode {rcode}"
                );
                assert_eq!(message.flags().opcode(), asked.flags().opcode(), "{what}");
                if let Some(question) = message.question() {
                    let asked_question = asked.question().expect("a reply only echoes a question");
                    assert!(question.name.eq_exact(&asked_question.name), "{what}");
                    assert_eq!(question.qtype, asked_question.qtype, "{what}");
                }
                if rcode == Rcode::NOERROR || rcode == Rcode::NXDOMAIN {
                    assert_eq!(message.header().question_count, 1, "{what}");
                }
            }
        }
        let kind = if parsed.is_some() {
            "well-formed"
        } else {
            "garbage"
        };
        *tally.entry(format!("{kind}: {rcode}")).or_default() += 1;
    }
    replies.retain(|&id, _| id >= SENTINEL_BASE);
    assert!(
        replies.is_empty(),
        "replies with IDs never sent: {:?}",
        replies.keys()
    );
    let mut summary: Vec<_> = tally.iter().collect();
    summary.sort();
    eprintln!("{} datagrams: {summary:?}", sent.len());
    assert!(
        tally.get("garbage: FORMERR").copied().unwrap_or(0) > 500,
        "{summary:?}"
    );
    // No reply is allowed, but a datagram with a query header is answered
    // unless load is shed, which a 64-datagram batch should not cause: more
    // than a trace of silence would hide replies this test never checks.
    let silent_queries = tally.get("no reply: a query").copied().unwrap_or(0);
    assert!(silent_queries <= sent.len() / 100, "{summary:?}");
    assert!(
        tally.get("well-formed: NOERROR").copied().unwrap_or(0) > 100,
        "{summary:?}"
    );

    // Still serving, and a fresh name still goes upstream and back.
    let after = client.exchange(&query(9, "host-12.zone.test.", RecordType::A, None));
    assert_eq!(after.rcode(), Rcode::NOERROR);
    assert_eq!(after.hickory.answers.len(), 1);

    let reports = server.stop();
    upstream.stop();
    assert!(total(&reports, |r| r.resolver.formerr) > 500);
    assert!(total(&reports, |r| r.resolver.dropped_malformed) > 0);
}
