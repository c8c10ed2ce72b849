//! The synthetic upstream over real sockets on 127.0.0.1 (ephemeral
//! ports): zone contents cross-checked with hickory-proto, negative
//! answers, truncation, every behaviour, delay, loss, threads, TCP, stop
//! and the CLI. Every wait is bounded; the file runs in a few seconds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use heimdall_loadtest::upstream::zone::{
    BIG_TXT_RECORDS, BIG_TXT_STRING_LEN, MX_PREFERENCE, NS_V4, SOA_EXPIRE, SOA_REFRESH, SOA_RETRY,
    SOA_SERIAL, big_txt_string, host_txt, host_v4, host_v6, mail_v4,
};
use heimdall_loadtest::{Behavior, Upstream, UpstreamConfig, UpstreamHandle, ZoneConfig};
use heimdall_wire::{
    Class, Flags, Message, MessageBuilder, NameBuf, Opcode, OptSpec, Rcode, RecordType,
};
use hickory_proto::op::{Message as HMessage, ResponseCode};
use hickory_proto::rr::rdata::{self as hrdata};
use hickory_proto::rr::{Name as HName, RData as HRData, Record as HRecord};

const WAIT: Duration = Duration::from_secs(2);
/// How long "never answers" is watched.
const SILENCE: Duration = Duration::from_millis(300);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn start(config: UpstreamConfig) -> UpstreamHandle {
    Upstream::start(config).unwrap()
}

fn start_default() -> UpstreamHandle {
    start(UpstreamConfig {
        tcp: true,
        ..UpstreamConfig::default()
    })
}

struct Query<'a> {
    name: &'a str,
    qtype: RecordType,
    class: Class,
    opcode: Opcode,
    /// (payload size, version)
    edns: Option<(u16, u8)>,
    id: u16,
}

impl<'a> Query<'a> {
    fn new(name: &'a str, qtype: RecordType) -> Self {
        Self {
            name,
            qtype,
            class: Class::IN,
            opcode: Opcode::QUERY,
            edns: None,
            id: 0x1234,
        }
    }

    fn edns(mut self, size: u16) -> Self {
        self.edns = Some((size, 0));
        self
    }

    fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let name = NameBuf::from_presentation(self.name).unwrap();
        let mut buf = vec![0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(self.id);
        builder.set_flags(
            Flags::default()
                .with_recursion_desired(true)
                .with_opcode(self.opcode),
        );
        builder
            .question(&name.as_name(), self.qtype, self.class)
            .unwrap();
        if let Some((size, version)) = self.edns {
            builder
                .opt(&OptSpec {
                    udp_payload_size: size,
                    extended_rcode: 0,
                    version,
                    dnssec_ok: false,
                    options: &[],
                })
                .unwrap();
        }
        let len = builder.finish();
        buf.truncate(len);
        buf
    }
}

fn client() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// Every datagram that arrives within `window` (after the last one).
fn collect(socket: &UdpSocket, window: Duration) -> Vec<Vec<u8>> {
    socket.set_read_timeout(Some(window)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(len) = socket.recv(&mut buf) {
        got.push(buf[..len].to_vec());
    }
    got
}

fn ask_maybe(addr: SocketAddr, query: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = client();
    socket.send_to(query, addr).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    let (len, from) = socket.recv_from(&mut buf).ok()?;
    assert_eq!(from, addr);
    Some(buf[..len].to_vec())
}

fn ask(addr: SocketAddr, query: &[u8]) -> Vec<u8> {
    ask_maybe(addr, query, WAIT).expect("no reply within the wait")
}

fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).unwrap();
    message
}

fn ask_tcp(addr: SocketAddr, queries: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut frames = Vec::new();
    for query in queries {
        frames.extend_from_slice(&(query.len() as u16).to_be_bytes());
        frames.extend_from_slice(query);
    }
    // One write: the queries arrive pipelined.
    stream.write_all(&frames).unwrap();
    queries.iter().map(|_| read_frame(&mut stream)).collect()
}

fn hickory(bytes: &[u8]) -> HMessage {
    // Our own parser must accept every reply too.
    Message::parse(bytes).unwrap();
    HMessage::from_vec(bytes).unwrap()
}

fn hname(text: &str) -> HName {
    HName::from_ascii(text).unwrap()
}

/// A record as (owner exactly as written, TTL, data): hickory's own
/// equality ignores TTL and letter case.
type View = (String, u32, HRData);

fn view(record: &HRecord) -> View {
    (record.name.to_string(), record.ttl, record.data.clone())
}

fn views(records: &[HRecord]) -> Vec<View> {
    records.iter().map(view).collect()
}

fn rr(owner: &str, ttl: u32, data: HRData) -> View {
    (owner.to_string(), ttl, data)
}

fn soa(minimum: u32) -> HRData {
    HRData::SOA(hrdata::SOA::new(
        hname("ns1.zone.test."),
        hname("hostmaster.zone.test."),
        SOA_SERIAL,
        SOA_REFRESH as i32,
        SOA_RETRY as i32,
        SOA_EXPIRE as i32,
        minimum,
    ))
}

/// Check the header of a normal reply to `query` and return it decoded.
fn reply_to(query: &Query<'_>, bytes: &[u8], rcode: ResponseCode) -> HMessage {
    let message = hickory(bytes);
    let meta = &message.metadata;
    assert_eq!(meta.id, query.id);
    assert_eq!(meta.response_code, rcode, "{message:?}");
    assert!(!meta.truncation);
    assert!(meta.recursion_desired);
    assert!(!meta.recursion_available);
    assert_eq!(message.queries.len(), 1);
    assert_eq!(message.queries[0].name().to_string(), query.name);
    assert_eq!(u16::from(message.queries[0].query_type()), query.qtype.0);
    message
}

// ---------------------------------------------------------------------------
// Zone contents
// ---------------------------------------------------------------------------

#[test]
fn positive_answers_match_the_zone() {
    let upstream = start_default();
    let addr = upstream.local_addr();
    let ttl = 300;
    for i in [0u32, 7, 999] {
        let host = format!("host-{i}.zone.test.");
        let alias = format!("alias-{i}.zone.test.");
        let mail = format!("mail-{i}.zone.test.");
        let a = HRData::A(hrdata::A(host_v4(i)));
        let aaaa = HRData::AAAA(hrdata::AAAA(host_v6(i)));
        let cname = HRData::CNAME(hrdata::CNAME(hname(&host)));
        let cases: Vec<(&str, RecordType, Vec<View>, Vec<View>)> = vec![
            (
                &host,
                RecordType::A,
                vec![rr(&host, ttl, a.clone())],
                vec![],
            ),
            (
                &host,
                RecordType::AAAA,
                vec![rr(&host, ttl, aaaa.clone())],
                vec![],
            ),
            (
                &host,
                RecordType::MX,
                vec![rr(
                    &host,
                    ttl,
                    HRData::MX(hrdata::MX::new(MX_PREFERENCE, hname(&mail))),
                )],
                vec![rr(&mail, ttl, HRData::A(hrdata::A(mail_v4(i))))],
            ),
            (
                &host,
                RecordType::TXT,
                vec![rr(
                    &host,
                    ttl,
                    HRData::TXT(hrdata::TXT::new(vec![host_txt(i)])),
                )],
                vec![],
            ),
            (
                &alias,
                RecordType::A,
                vec![rr(&alias, ttl, cname.clone()), rr(&host, ttl, a.clone())],
                vec![],
            ),
            (
                &alias,
                RecordType::AAAA,
                vec![rr(&alias, ttl, cname.clone()), rr(&host, ttl, aaaa.clone())],
                vec![],
            ),
            (
                &alias,
                RecordType::CNAME,
                vec![rr(&alias, ttl, cname.clone())],
                vec![],
            ),
            (
                &mail,
                RecordType::A,
                vec![rr(&mail, ttl, HRData::A(hrdata::A(mail_v4(i))))],
                vec![],
            ),
        ];
        for (name, qtype, answers, additionals) in cases {
            for edns in [None, Some(1232)] {
                let mut query = Query::new(name, qtype).id(i as u16 ^ 0x5a5a);
                query.edns = edns.map(|size| (size, 0));
                let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
                assert!(message.metadata.authoritative);
                assert_eq!(views(&message.answers), answers, "{name} {qtype}");
                assert!(message.authorities.is_empty(), "{name} {qtype}");
                assert_eq!(views(&message.additionals), additionals, "{name} {qtype}");
                match edns {
                    Some(_) => assert_eq!(message.edns.as_ref().unwrap().max_payload(), 1232),
                    None => assert!(message.edns.is_none()),
                }
            }
        }
    }

    // The apex and its name server.
    let query = Query::new("zone.test.", RecordType::SOA);
    let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
    assert_eq!(views(&message.answers), [rr("zone.test.", ttl, soa(60))]);
    let query = Query::new("zone.test.", RecordType::NS);
    let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
    assert_eq!(
        views(&message.answers),
        [rr(
            "zone.test.",
            ttl,
            HRData::NS(hrdata::NS(hname("ns1.zone.test.")))
        )]
    );
    let query = Query::new("ns1.zone.test.", RecordType::A);
    let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
    assert_eq!(
        views(&message.answers),
        [rr("ns1.zone.test.", ttl, HRData::A(hrdata::A(NS_V4)))]
    );

    // ANY gets every RRset of the name.
    let query = Query::new("host-3.zone.test.", RecordType::ANY);
    let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
    assert_eq!(message.answers.len(), 4);

    // Letter case: matched case-insensitively, echoed as asked.
    let query = Query::new("HoSt-12.ZONE.test.", RecordType::A);
    let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
    assert_eq!(
        views(&message.answers),
        [rr(
            "HoSt-12.ZONE.test.",
            ttl,
            HRData::A(hrdata::A(Ipv4Addr::new(10, 0, 0, 12)))
        )]
    );
}

#[test]
fn negative_answers_carry_the_soa() {
    let upstream = start(UpstreamConfig {
        zone: ZoneConfig {
            names: 50,
            ttl: 120,
            negative_ttl: 45,
            ..ZoneConfig::default()
        },
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    let negative = [rr("zone.test.", 45, soa(45))];
    for name in [
        "host-50.zone.test.",
        "host-007.zone.test.",
        "www.zone.test.",
        "a.host-1.zone.test.",
    ] {
        let query = Query::new(name, RecordType::A);
        let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NXDomain);
        assert!(message.metadata.authoritative);
        assert!(message.answers.is_empty(), "{name}");
        assert_eq!(views(&message.authorities), negative, "{name}");
    }
    for (name, qtype) in [
        ("mail-3.zone.test.", RecordType::AAAA),
        ("big-3.zone.test.", RecordType::A),
        ("host-3.zone.test.", RecordType::CNAME),
        ("zone.test.", RecordType::A),
    ] {
        let query = Query::new(name, qtype);
        let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
        assert!(message.metadata.authoritative);
        assert!(message.answers.is_empty(), "{name} {qtype}");
        assert_eq!(views(&message.authorities), negative, "{name} {qtype}");
    }
    // A CNAME to a name without the type: the CNAME, then NODATA's SOA.
    let query = Query::new("alias-3.zone.test.", RecordType::SRV);
    let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
    assert_eq!(
        views(&message.answers),
        [rr(
            "alias-3.zone.test.",
            120,
            HRData::CNAME(hrdata::CNAME(hname("host-3.zone.test.")))
        )]
    );
    assert_eq!(views(&message.authorities), negative);
    // Outside the zone: REFUSED, not authoritative, nothing else.
    for name in ["example.com.", "test.", "zone.test.example."] {
        let query = Query::new(name, RecordType::A);
        let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::Refused);
        assert!(!message.metadata.authoritative);
        assert!(message.answers.is_empty() && message.authorities.is_empty());
    }
}

#[test]
fn big_txt_needs_edns_or_tcp() {
    let upstream = start_default();
    let addr = upstream.local_addr();
    let name = "big-42.zone.test.";
    let expected: Vec<View> = (0..BIG_TXT_RECORDS)
        .map(|k| {
            let string = big_txt_string(42, k);
            assert_eq!(string.len(), BIG_TXT_STRING_LEN);
            rr(
                name,
                300,
                HRData::TXT(hrdata::TXT::from_bytes(vec![&string[..]])),
            )
        })
        .collect();

    // No EDNS: 512 bytes; the RRset does not fit, so none of it is sent.
    let plain = ask(addr, &Query::new(name, RecordType::TXT).bytes());
    assert!(plain.len() <= 512);
    let message = hickory(&plain);
    assert!(message.metadata.truncation);
    assert!(message.answers.is_empty());

    // EDNS with 1232: whole, and over 512.
    let query = Query::new(name, RecordType::TXT).edns(1232);
    let whole = ask(addr, &query.bytes());
    assert!(whole.len() > 512 && whole.len() <= 1232, "{}", whole.len());
    let message = reply_to(&query, &whole, ResponseCode::NoError);
    assert_eq!(views(&message.answers), expected);
    assert_eq!(message.edns.as_ref().unwrap().max_payload(), 1232);

    // EDNS with a small size is respected; the OPT survives the cut.
    let small = ask(addr, &Query::new(name, RecordType::TXT).edns(600).bytes());
    assert!(small.len() <= 600);
    let message = hickory(&small);
    assert!(message.metadata.truncation);
    assert!(message.edns.is_some());

    // TCP, without EDNS: whole.
    let query = Query::new(name, RecordType::TXT);
    let replies = ask_tcp(addr, &[query.bytes()]);
    let message = reply_to(&query, &replies[0], ResponseCode::NoError);
    assert_eq!(views(&message.answers), expected);

    let stats = upstream.stats();
    assert_eq!(stats.truncated, 2);
    assert_eq!(stats.tcp_received, 1);
}

#[test]
fn malformed_and_unusual_queries() {
    let upstream = start_default();
    let addr = upstream.local_addr();

    // A header promising a question that is not there: FORMERR, same ID.
    let mut header_only = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let message = hickory(&ask(addr, &header_only));
    assert_eq!(message.metadata.id, 0xabcd);
    assert_eq!(message.metadata.response_code, ResponseCode::FormErr);
    assert!(message.queries.is_empty());
    // No question at all is not a query either.
    header_only[5] = 0;
    let message = hickory(&ask(addr, &header_only));
    assert_eq!(message.metadata.response_code, ResponseCode::FormErr);

    // Too short for a header, or a response: no reply.
    assert!(ask_maybe(addr, &[1, 2, 3, 4, 5], SILENCE).is_none());
    let mut response = Query::new("host-1.zone.test.", RecordType::A).bytes();
    response[2] |= 0x80;
    assert!(ask_maybe(addr, &response, SILENCE).is_none());

    let mut notify = Query::new("zone.test.", RecordType::SOA);
    notify.opcode = Opcode::NOTIFY;
    let message = hickory(&ask(addr, &notify.bytes()));
    assert_eq!(message.metadata.response_code, ResponseCode::NotImp);

    let mut chaos = Query::new("host-1.zone.test.", RecordType::TXT);
    chaos.class = Class::CH;
    let message = hickory(&ask(addr, &chaos.bytes()));
    assert_eq!(message.metadata.response_code, ResponseCode::Refused);

    let mut future = Query::new("host-1.zone.test.", RecordType::A);
    future.edns = Some((1232, 1));
    let reply = ask(addr, &future.bytes());
    assert_eq!(Message::parse(&reply).unwrap().rcode(), Rcode::BADVERS);

    let stats = upstream.stats();
    assert_eq!(stats.received, 7);
    assert_eq!(stats.answered, 5);
    assert_eq!(stats.dropped, 2);
}

// ---------------------------------------------------------------------------
// Behaviours
// ---------------------------------------------------------------------------

#[test]
fn drop_never_answers() {
    let upstream = start(UpstreamConfig {
        behavior: Behavior::Drop,
        tcp: true,
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    let query = Query::new("host-1.zone.test.", RecordType::A).bytes();
    assert!(ask_maybe(addr, &query, SILENCE).is_none());
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(&(query.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&query).unwrap();
    stream.set_read_timeout(Some(SILENCE)).unwrap();
    let mut byte = [0u8; 1];
    assert!(stream.read(&mut byte).is_err(), "TCP must stay silent too");
    let stats = upstream.stats();
    assert_eq!((stats.received, stats.answered, stats.dropped), (2, 0, 2));
}

#[test]
fn wrong_id_and_wrong_question() {
    let upstream = start(UpstreamConfig {
        behavior: Behavior::WrongId,
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    let query = Query::new("host-1.zone.test.", RecordType::A).id(0xffff);
    let message = hickory(&ask(addr, &query.bytes()));
    assert_eq!(message.metadata.id, 0x0000, "ID plus one, wrapping");
    assert_eq!(message.queries[0].name().to_string(), query.name);
    assert_eq!(
        views(&message.answers),
        [rr(query.name, 300, HRData::A(hrdata::A(host_v4(1))))]
    );

    upstream.set_behavior(Behavior::WrongQuestion);
    let query = Query::new("host-1.zone.test.", RecordType::A).id(77);
    let message = hickory(&ask(addr, &query.bytes()));
    assert_eq!(message.metadata.id, 77);
    assert_eq!(
        message.queries[0].name().to_string(),
        "wrong.host-1.zone.test."
    );
    assert_eq!(message.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn truncate_over_udp_answers_over_tcp() {
    let upstream = start(UpstreamConfig {
        behavior: Behavior::Truncate,
        tcp: true,
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    let query = Query::new("host-5.zone.test.", RecordType::A).edns(1232);
    let message = hickory(&ask(addr, &query.bytes()));
    assert!(message.metadata.truncation);
    assert!(message.answers.is_empty());
    assert_eq!(message.metadata.id, query.id);
    assert!(message.edns.is_some());

    let replies = ask_tcp(addr, &[query.bytes()]);
    let message = reply_to(&query, &replies[0], ResponseCode::NoError);
    assert_eq!(
        views(&message.answers),
        [rr(query.name, 300, HRData::A(hrdata::A(host_v4(5))))]
    );
}

#[test]
fn servfail_echoes_the_question() {
    let upstream = start(UpstreamConfig {
        behavior: Behavior::ServFail,
        ..UpstreamConfig::default()
    });
    let query = Query::new("host-5.zone.test.", RecordType::AAAA).edns(1232);
    let message = reply_to(
        &query,
        &ask(upstream.local_addr(), &query.bytes()),
        ResponseCode::ServFail,
    );
    assert!(message.answers.is_empty() && message.authorities.is_empty());
    assert!(!message.metadata.authoritative);
}

#[test]
fn refused_echoes_the_question() {
    let upstream = start(UpstreamConfig {
        behavior: Behavior::Refused,
        ..UpstreamConfig::default()
    });
    let query = Query::new("host-5.zone.test.", RecordType::A).edns(1232);
    let message = reply_to(
        &query,
        &ask(upstream.local_addr(), &query.bytes()),
        ResponseCode::Refused,
    );
    assert!(message.answers.is_empty() && message.authorities.is_empty());
    assert!(!message.metadata.authoritative);
}

#[test]
fn wrong_id_then_right_sends_both_in_order() {
    let upstream = start(UpstreamConfig {
        behavior: Behavior::WrongIdThenRight,
        tcp: true,
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    let query = Query::new("host-9.zone.test.", RecordType::A).id(500);
    let socket = client();
    socket.send_to(&query.bytes(), addr).unwrap();
    let replies = collect(&socket, SILENCE);
    assert_eq!(replies.len(), 2);
    assert_eq!(hickory(&replies[0]).metadata.id, 501);
    let right = reply_to(&query, &replies[1], ResponseCode::NoError);
    assert_eq!(right.answers.len(), 1);
    assert_eq!(replies[0][2..], replies[1][2..], "only the ID differs");

    // Over TCP too, and with a delay the order holds.
    upstream.set_delay(Duration::from_millis(50));
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let bytes = query.bytes();
    stream
        .write_all(&(bytes.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&bytes).unwrap();
    assert_eq!(hickory(&read_frame(&mut stream)).metadata.id, 501);
    assert_eq!(hickory(&read_frame(&mut stream)).metadata.id, 500);

    let stats = upstream.stats();
    assert_eq!(
        (stats.received, stats.answered),
        (2, 2),
        "a pair counts once"
    );
}

#[test]
fn set_behavior_switches_at_runtime() {
    let upstream = start_default();
    let addr = upstream.local_addr();
    let query = Query::new("host-2.zone.test.", RecordType::A).bytes();
    assert!(ask_maybe(addr, &query, WAIT).is_some());
    upstream.set_behavior(Behavior::Drop);
    assert_eq!(upstream.behavior(), Behavior::Drop);
    assert!(ask_maybe(addr, &query, SILENCE).is_none());
    upstream.set_behavior(Behavior::Normal);
    assert!(ask_maybe(addr, &query, WAIT).is_some());
    let stats = upstream.stats();
    assert_eq!((stats.received, stats.answered, stats.dropped), (3, 2, 1));
}

// ---------------------------------------------------------------------------
// Delay, loss, threads
// ---------------------------------------------------------------------------

#[test]
fn delay_shows_in_the_round_trip_without_blocking_others() {
    let delay = Duration::from_millis(200);
    let upstream = start(UpstreamConfig {
        delay,
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    let socket = client();
    let started = Instant::now();
    let count = 20u16;
    for id in 0..count {
        let query = Query::new("host-1.zone.test.", RecordType::A).id(id);
        socket.send_to(&query.bytes(), addr).unwrap();
    }
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 512];
    for _ in 0..count {
        let len = socket.recv(&mut buf).unwrap();
        // Not one answer comes back early...
        assert!(started.elapsed() >= delay, "{:?}", started.elapsed());
        hickory(&buf[..len]);
    }
    // ...and they wait side by side, not one after another (20 x 200 ms).
    assert!(started.elapsed() < delay * 8, "{:?}", started.elapsed());
    // In flight while delayed, then settled.
    let stats = upstream.stats();
    assert_eq!(stats.received, u64::from(count));
    assert_eq!(stats.answered, u64::from(count));

    upstream.set_delay(Duration::ZERO);
    let query = Query::new("host-1.zone.test.", RecordType::A).bytes();
    let started = Instant::now();
    ask(addr, &query);
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());
}

#[test]
fn loss_is_roughly_the_rate_and_counters_are_exact() {
    let upstream = start(UpstreamConfig {
        drop_rate: 0.5,
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    let socket = client();
    let mut answers = 0usize;
    for window in 0..8u16 {
        for n in 0..50u16 {
            let query = Query::new("host-1.zone.test.", RecordType::A).id(window * 50 + n);
            socket.send_to(&query.bytes(), addr).unwrap();
        }
        answers += collect(&socket, Duration::from_millis(60)).len();
    }
    // Answers are counted before they are sent: once the counters have
    // settled, whatever is still on the way arrives within the last window.
    let deadline = Instant::now() + WAIT;
    while upstream.stats().received < 400 || upstream.stats().in_flight() > 0 {
        assert!(Instant::now() < deadline, "{:?}", upstream.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    answers += collect(&socket, Duration::from_millis(100)).len();
    assert!((120..=280).contains(&answers), "{answers} of 400 answered");
    let stats = upstream.stats();
    assert_eq!(stats.received, 400);
    assert_eq!(stats.answered, answers as u64);
    assert_eq!(stats.answered + stats.dropped, stats.received);
}

#[test]
fn two_threads_both_serve() {
    let upstream = start(UpstreamConfig {
        threads: 2,
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    // Many source ports, so the kernel's SO_REUSEPORT hash spreads them.
    let sockets: Vec<UdpSocket> = (0..64).map(|_| client()).collect();
    for (id, socket) in (0u16..).zip(&sockets) {
        let query = Query::new("host-1.zone.test.", RecordType::A).id(id);
        socket.send_to(&query.bytes(), addr).unwrap();
    }
    let mut buf = [0u8; 512];
    for (id, socket) in (0u16..).zip(&sockets) {
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let len = socket.recv(&mut buf).unwrap();
        assert_eq!(hickory(&buf[..len]).metadata.id, id);
    }
    let stats = upstream.stats();
    assert_eq!(stats.per_thread_received.len(), 2);
    assert_eq!(stats.per_thread_received.iter().sum::<u64>(), 64);
    assert!(
        stats.per_thread_received.iter().all(|&n| n > 0),
        "{:?}",
        stats.per_thread_received
    );
}

// ---------------------------------------------------------------------------
// Counters, TCP, stop, CLI
// ---------------------------------------------------------------------------

#[test]
fn stats_count_by_type_and_name() {
    let upstream = start_default();
    let addr = upstream.local_addr();
    for name in [
        "host-1.zone.test.",
        "HOST-1.zone.test.",
        "host-1.ZONE.TEST.",
    ] {
        ask(addr, &Query::new(name, RecordType::A).bytes());
    }
    ask(
        addr,
        &Query::new("host-1.zone.test.", RecordType::AAAA).bytes(),
    );
    ask_tcp(
        addr,
        &[Query::new("host-2.zone.test.", RecordType::MX).bytes()],
    );
    let stats = upstream.stats();
    assert_eq!(stats.qtype(RecordType::A), 3);
    assert_eq!(stats.qtype(RecordType::AAAA), 1);
    assert_eq!(stats.qtype(RecordType::MX), 1);
    assert_eq!(stats.qtype(RecordType::TXT), 0);
    assert_eq!(upstream.queries_for("Host-1.Zone.Test."), 4);
    assert_eq!(upstream.queries_for("host-2.zone.test"), 1);
    assert_eq!(upstream.queries_for("host-3.zone.test."), 0);
    assert_eq!(upstream.queries_for(""), 0);
    assert_eq!((stats.received, stats.tcp_received), (5, 1));

    upstream.reset_stats();
    let stats = upstream.stats();
    assert_eq!((stats.received, stats.answered), (0, 0));
    assert!(stats.by_qtype.is_empty());
    assert_eq!(upstream.queries_for("host-1.zone.test."), 0);
}

#[test]
fn tcp_answers_pipelined_queries_in_order() {
    let upstream = start_default();
    let queries = [
        Query::new("host-1.zone.test.", RecordType::A).id(1),
        Query::new("host-2.zone.test.", RecordType::AAAA).id(2),
        Query::new("big-3.zone.test.", RecordType::TXT).id(3),
        Query::new("nope.zone.test.", RecordType::A).id(4),
    ];
    let bytes: Vec<Vec<u8>> = queries.iter().map(Query::bytes).collect();
    let replies = ask_tcp(upstream.local_addr(), &bytes);
    let rcodes = [
        ResponseCode::NoError,
        ResponseCode::NoError,
        ResponseCode::NoError,
        ResponseCode::NXDomain,
    ];
    for ((query, reply), rcode) in queries.iter().zip(&replies).zip(rcodes) {
        reply_to(query, reply, rcode);
    }
    assert_eq!(hickory(&replies[2]).answers.len(), BIG_TXT_RECORDS);
}

#[test]
fn stop_is_prompt_and_idempotent() {
    let mut upstream = start(UpstreamConfig {
        threads: 2,
        tcp: true,
        delay: Duration::from_secs(60),
        ..UpstreamConfig::default()
    });
    let addr = upstream.local_addr();
    // A connection with a reply pending, and a delayed UDP reply.
    let mut stream = TcpStream::connect(addr).unwrap();
    let query = Query::new("host-1.zone.test.", RecordType::A).bytes();
    stream
        .write_all(&(query.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&query).unwrap();
    let socket = client();
    socket.send_to(&query, addr).unwrap();
    let deadline = Instant::now() + WAIT;
    while upstream.stats().received < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(upstream.stats().in_flight(), 2);
    let started = Instant::now();
    upstream.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    upstream.stop();
    let stats = upstream.stats();
    assert_eq!(
        (stats.received, stats.dropped),
        (2, 2),
        "pending replies count as dropped"
    );
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}

#[test]
fn cli_serves_until_sigterm_and_prints_counters() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heimdall-loadtest"))
        .args([
            "upstream",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "2",
            "--names",
            "10",
            "--ttl",
            "77",
            "--tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let addr: SocketAddr = banner
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("banner: {banner:?}"))
        .parse()
        .unwrap();
    assert_eq!(addr.ip(), Ipv4Addr::LOCALHOST);

    let query = Query::new("host-9.zone.test.", RecordType::A);
    let message = reply_to(&query, &ask(addr, &query.bytes()), ResponseCode::NoError);
    assert_eq!(
        views(&message.answers),
        [rr(query.name, 77, HRData::A(hrdata::A(host_v4(9))))]
    );
    let query = Query::new("host-10.zone.test.", RecordType::A);
    reply_to(
        &query,
        &ask_tcp(addr, &[query.bytes()])[0],
        ResponseCode::NXDomain,
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the upstream did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
    let mut report = String::new();
    stdout.read_to_string(&mut report).unwrap();
    assert!(report.contains("received   2"), "{report}");
    assert!(report.contains("answered   2"), "{report}");
    assert!(report.contains("tcp        1"), "{report}");
}
