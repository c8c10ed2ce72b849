//! Shared helpers of the server's end-to-end tests: configs, a server that
//! stops itself if a test panics, UDP clients on 127.0.0.1, query
//! building, and the cross-check of every reply with both heimdall-wire and
//! hickory-proto.
//!
//! Every socket here binds 127.0.0.1 and every send asserts that its
//! destination is 127.0.0.1: nothing leaves the machine.

#![allow(dead_code, unreachable_pub)]

pub mod http;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use heimdall_config::Config;
use heimdall_loadtest::{Upstream, UpstreamConfig, UpstreamHandle, ZoneConfig};
use heimdall_server::{CoreReport, Server, ServerHandle, StartOptions};
use heimdall_wire::{EdnsOption, Message, RData, Rcode, RecordType, Section, WireNameBuf};
use hickory_proto::op::{Message as HMessage, MessageType};
use hickory_proto::rr::Record as HRecord;
use hickory_proto::serialize::binary::{BinEncodable as _, BinEncoder};

/// How long a client waits for one reply before the test gives up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// The only address these tests send to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The knobs of a test server's YAML.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `server.cores`, as YAML (`[0]`, `[0, 1]`).
    pub cores: &'static str,
    /// `upstream.servers`.
    pub upstreams: Vec<SocketAddr>,
    /// `upstream.timeout`, as YAML.
    pub timeout: &'static str,
    /// `upstream.attempts`.
    pub attempts: u32,
    /// `hints.enabled`.
    pub hints: bool,
    /// `server.steering` (`name`, the default, or `flow`).
    pub steering: &'static str,
    /// `dnssec.mode`, or `None` to leave the `dnssec:` section out (the
    /// caller appends its own). `off` unless a test says otherwise: the
    /// synthetic upstreams serve unsigned names under the real root,
    /// which the default (`validate`, with the built-in root anchor)
    /// rightly answers SERVFAIL; tests/dnssec.rs validates against its
    /// own signed chain and shows that default.
    pub dnssec_mode: Option<&'static str>,
}

impl Setup {
    /// One core, the given upstreams, a 1 s timeout and 2 attempts.
    pub fn new(upstreams: &[SocketAddr]) -> Self {
        Self {
            cores: "[0]",
            upstreams: upstreams.to_vec(),
            timeout: "1s",
            attempts: 2,
            hints: true,
            steering: "name",
            dnssec_mode: Some("off"),
        }
    }

    /// The YAML text. `server.listen` names a placeholder port, because
    /// the config refuses port 0; [`start_server`] replaces it with
    /// 127.0.0.1:0 before starting.
    pub fn yaml(&self) -> String {
        let servers: Vec<String> = self
            .upstreams
            .iter()
            .map(|addr| format!("\"{addr}\""))
            .collect();
        format!(
            "server:\n  cores: {cores}\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n  \
             udp_recv_batch: 32\n  steering: {steering}\n\
             cache:\n  shard_size: 1MiB\n\
             hints:\n  enabled: {hints}\n\
             upstream:\n  servers: [{servers}]\n  timeout: {timeout}\n  attempts: {attempts}\n\
             log:\n  level: warn\n{dnssec}",
            cores = self.cores,
            hints = self.hints,
            steering = self.steering,
            servers = servers.join(", "),
            timeout = self.timeout,
            attempts = self.attempts,
            dnssec = self
                .dnssec_mode
                .map(|mode| format!("dnssec:\n  mode: {mode}\n"))
                .unwrap_or_default(),
        )
    }

    /// The validated config, listening on 127.0.0.1:0.
    pub fn config(&self) -> Config {
        let mut config = Config::from_yaml_str(&self.yaml(), "test.yaml")
            .unwrap_or_else(|err| panic!("test config refused: {err}\n{}", self.yaml()));
        listen_on_any_port(&mut config);
        config
    }

    /// Start a server with this setup.
    pub fn start(&self) -> TestServer {
        start_server(&self.config())
    }
}

/// Point `config` at 127.0.0.1 with a port the kernel picks. (YAML
/// refuses port 0, since there every core would get its own port; the
/// server itself resolves port 0 once and shares it between cores.)
/// The HTTP listener serves every route with the control token (the
/// tests' requests carry it, [`http::request`]); no control socket.
pub fn listen_on_any_port(config: &mut Config) {
    config.server.listen = vec![SocketAddr::from((LOOPBACK, 0))];
    config.control.listen = SocketAddr::from((LOOPBACK, 0));
    config.control.token = Some(http::TEST_TOKEN.to_owned());
    config.control.socket = std::path::PathBuf::new();
}

/// A running server that is shut down if the test panics before
/// [`TestServer::stop`].
pub struct TestServer {
    handle: Option<ServerHandle>,
    /// The bound UDP address (127.0.0.1, the kernel's port).
    pub addr: SocketAddr,
}

/// Start the server for `config`, which must listen on 127.0.0.1 only.
pub fn start_server(config: &Config) -> TestServer {
    start_server_with(config, StartOptions::default())
}

/// [`start_server`] with start options (a reload source).
pub fn start_server_with(config: &Config, options: StartOptions) -> TestServer {
    let handle =
        Server::start_with(config, options).unwrap_or_else(|err| panic!("server start: {err}"));
    let addrs = handle.udp_addrs().to_vec();
    assert_eq!(addrs.len(), 1, "one listen address: {addrs:?}");
    let addr = addrs[0];
    assert_eq!(addr.ip(), LOOPBACK, "the server must listen on 127.0.0.1");
    assert_ne!(addr.port(), 0, "port 0 must be resolved");
    TestServer {
        handle: Some(handle),
        addr,
    }
}

impl TestServer {
    /// Stop the server and return each core's report; panics if a core
    /// ended abnormally (a panic on a core shows up here).
    pub fn stop(mut self) -> Vec<CoreReport> {
        let handle = self.handle.take().expect("server already stopped");
        let started = Instant::now();
        let reports = handle
            .stop()
            .unwrap_or_else(|err| panic!("server did not stop cleanly: {err}"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "stopping took {:?}",
            started.elapsed()
        );
        reports
    }

    /// The control endpoint's address (127.0.0.1, the kernel's port).
    pub fn control_addr(&self) -> SocketAddr {
        let addr = self
            .handle
            .as_ref()
            .and_then(ServerHandle::control_addr)
            .expect("control endpoint enabled");
        assert_eq!(addr.ip(), LOOPBACK);
        addr
    }

    /// The first DNS-over-TLS and DNS-over-HTTPS addresses bound.
    pub fn encrypted_addrs(&self) -> (SocketAddr, SocketAddr) {
        let handle = self.handle.as_ref().expect("running");
        (handle.tls_addrs()[0], handle.https_addrs()[0])
    }

    /// The first DNS-over-QUIC address bound (UDP).
    pub fn quic_addr(&self) -> SocketAddr {
        self.handle.as_ref().expect("running").quic_addrs()[0]
    }

    /// Ask for a reload, as the binary does on SIGHUP.
    pub fn request_reload(&self) {
        self.handle.as_ref().expect("running").request_reload();
    }

    /// A client of this server.
    pub fn client(&self) -> Client {
        Client::new(self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            // A failing test: let the cores wind down on their own.
            handle.shutdown();
        }
    }
}

/// The sum of a counter over all cores.
pub fn total(reports: &[CoreReport], counter: impl Fn(&CoreReport) -> u64) -> u64 {
    reports.iter().map(counter).sum()
}

/// A synthetic upstream on 127.0.0.1 with the default zone (`zone.test.`).
pub fn start_upstream(config: UpstreamConfig) -> UpstreamHandle {
    assert_eq!(
        config.listen.ip(),
        LOOPBACK,
        "the upstream must be on 127.0.0.1"
    );
    Upstream::start(config).unwrap_or_else(|err| panic!("upstream start: {err}"))
}

/// A synthetic upstream with everything default except `zone`.
pub fn upstream_with_zone(zone: ZoneConfig) -> UpstreamHandle {
    start_upstream(UpstreamConfig {
        zone,
        ..UpstreamConfig::default()
    })
}

/// A UDP client socket on 127.0.0.1 talking to one server.
pub struct Client {
    /// The socket (read timeout [`REPLY_TIMEOUT`]).
    pub socket: UdpSocket,
    /// Where queries go.
    pub server: SocketAddr,
}

impl Client {
    /// A client of `server` (which must be on 127.0.0.1).
    pub fn new(server: SocketAddr) -> Self {
        assert_eq!(server.ip(), LOOPBACK, "tests only talk to 127.0.0.1");
        let socket = UdpSocket::bind((LOOPBACK, 0)).expect("bind client");
        socket
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .expect("read timeout");
        Self { socket, server }
    }

    /// Send one datagram to the server.
    pub fn send(&self, bytes: &[u8]) {
        assert_eq!(self.server.ip(), LOOPBACK);
        self.socket.send_to(bytes, self.server).expect("send");
    }

    /// The next datagram from the server, or None when `timeout` passes
    /// first. Datagrams from other addresses are ignored.
    pub fn recv_within(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_535];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            self.socket.set_read_timeout(Some(left)).expect("timeout");
            match self.socket.recv_from(&mut buf) {
                Ok((len, from)) if from == self.server => {
                    buf.truncate(len);
                    return Some(buf);
                }
                Ok(_) => continue,
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(err) => panic!("receive: {err}"),
            }
        }
    }

    /// The reply to `query` (the first datagram with its ID), checked with
    /// both parsers; panics after [`REPLY_TIMEOUT`].
    pub fn exchange(&self, query: &[u8]) -> Reply {
        self.send(query);
        self.reply_to(query)
    }

    /// Wait for the reply to `query`, already sent.
    pub fn reply_to(&self, query: &[u8]) -> Reply {
        let id = u16::from_be_bytes([query[0], query[1]]);
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let bytes = self
                .recv_within(left)
                .unwrap_or_else(|| panic!("no reply to query {id} within {REPLY_TIMEOUT:?}"));
            let reply = Reply::check(bytes);
            if reply.id() == id {
                reply.assert_answers(query);
                return reply;
            }
        }
    }
}

/// A query for `name`/`qtype` in class IN with RD, and EDNS with
/// `edns_size` when given.
pub fn query(id: u16, name: &str, qtype: RecordType, edns_size: Option<u16>) -> Vec<u8> {
    heimdall_testkit::messages::query(name, qtype, id, edns_size.map(|size| (size, false)))
}

/// One record, compared across both parsers and across replies: owner (in
/// lower-cased wire form), type, class, and RDATA in canonical form (names uncompressed and
/// lower-cased). TTL is kept apart because it changes with time.
pub type RecordKey = (Vec<u8>, u16, u16, Vec<u8>);

/// A reply from the server (or an upstream), parsed by both libraries and
/// found consistent.
pub struct Reply {
    /// The datagram.
    pub bytes: Vec<u8>,
    /// hickory-proto's view.
    pub hickory: HMessage,
}

fn wire_lower(name: &heimdall_wire::Name<'_>) -> Vec<u8> {
    let mut out = WireNameBuf::new();
    name.write_lower(&mut out);
    out.to_vec()
}

/// RDATA with names uncompressed and lower-cased, from heimdall-wire.
fn ours_canonical_rdata(record: &heimdall_wire::Record<'_>) -> Vec<u8> {
    let rdata = record
        .rdata()
        .unwrap_or_else(|err| panic!("RDATA of {} does not parse: {err}", record.name()));
    match rdata {
        RData::Ns(name) | RData::Cname(name) | RData::Ptr(name) | RData::Dname(name) => {
            wire_lower(&name)
        }
        RData::Mx(mx) => {
            let mut out = mx.preference.to_be_bytes().to_vec();
            out.extend(wire_lower(&mx.exchange));
            out
        }
        RData::Soa(soa) => {
            let mut out = wire_lower(&soa.mname);
            out.extend(wire_lower(&soa.rname));
            for value in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                out.extend(value.to_be_bytes());
            }
            out
        }
        _ => record.rdata_bytes().to_vec(),
    }
}

/// RDATA in DNSSEC canonical form, from hickory-proto.
fn hickory_canonical_rdata(record: &HRecord) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = BinEncoder::new(&mut out);
    encoder.set_canonical_form(true);
    record
        .data
        .emit(&mut encoder)
        .unwrap_or_else(|err| panic!("hickory cannot encode {record:?}: {err}"));
    out
}

/// A hickory name in lower-cased, uncompressed wire form.
fn hickory_wire_lower(name: &hickory_proto::rr::Name) -> Vec<u8> {
    name.to_lowercase()
        .to_bytes()
        .unwrap_or_else(|err| panic!("hickory cannot encode {name}: {err}"))
}

fn hickory_key(record: &HRecord) -> RecordKey {
    (
        hickory_wire_lower(&record.name),
        u16::from(record.record_type()),
        u16::from(record.dns_class),
        hickory_canonical_rdata(record),
    )
}

impl Reply {
    /// Parse `bytes` with heimdall-wire and hickory-proto and check that
    /// they agree on every header field, the question, each record
    /// (owner, type, class, TTL, RDATA) and the OPT record.
    pub fn check(bytes: Vec<u8>) -> Reply {
        let ours = Message::parse(&bytes)
            .unwrap_or_else(|err| panic!("heimdall-wire refuses a reply: {err}: {bytes:02x?}"));
        let theirs = HMessage::from_vec(&bytes)
            .unwrap_or_else(|err| panic!("hickory-proto refuses a reply: {err}: {bytes:02x?}"));
        assert_eq!(ours.trailing_len(), 0, "trailing bytes after the message");
        let meta = &theirs.metadata;
        let flags = ours.flags();
        assert_eq!(ours.id(), meta.id);
        assert_eq!(flags.response(), meta.message_type == MessageType::Response);
        assert_eq!(flags.opcode().0, u8::from(meta.op_code));
        assert_eq!(flags.authoritative(), meta.authoritative);
        assert_eq!(flags.truncated(), meta.truncation);
        assert_eq!(flags.recursion_desired(), meta.recursion_desired);
        assert_eq!(flags.recursion_available(), meta.recursion_available);
        assert_eq!(flags.authentic_data(), meta.authentic_data);
        assert_eq!(flags.checking_disabled(), meta.checking_disabled);
        assert_eq!(ours.rcode().0, u16::from(meta.response_code), "rcode");

        let questions: Vec<_> = ours.questions().collect();
        assert_eq!(questions.len(), theirs.queries.len(), "question count");
        for (q, hq) in questions.iter().zip(&theirs.queries) {
            assert_eq!(wire_lower(&q.name), hickory_wire_lower(&hq.name));
            assert_eq!(q.qtype.0, u16::from(hq.query_type));
            assert_eq!(q.qclass.0, u16::from(hq.query_class));
        }

        let sections = [
            (Section::Answer, &theirs.answers),
            (Section::Authority, &theirs.authorities),
            (Section::Additional, &theirs.additionals),
        ];
        for (section, hickory_records) in sections {
            let records: Vec<_> = ours
                .records(section)
                .filter(|record| record.rtype() != RecordType::OPT)
                .collect();
            assert_eq!(
                records.len(),
                hickory_records.len(),
                "{section:?} record count"
            );
            for (record, hrecord) in records.iter().zip(hickory_records.iter()) {
                let key = (
                    wire_lower(&record.name()),
                    record.rtype().0,
                    record.class().0,
                    ours_canonical_rdata(record),
                );
                assert_eq!(key, hickory_key(hrecord), "{section:?} record");
                assert_eq!(record.ttl(), hrecord.ttl, "{section:?} TTL");
            }
        }

        match (ours.opt(), &theirs.edns) {
            (None, None) => {}
            (Some(opt), Some(edns)) => {
                assert_eq!(opt.udp_payload_size(), edns.max_payload());
                assert_eq!(opt.version(), edns.version());
                assert_eq!(opt.dnssec_ok(), edns.flags().dnssec_ok);
                let ours_options: Vec<(u16, Vec<u8>)> = opt
                    .options()
                    .map(|EdnsOption { code, data }| (code, data.to_vec()))
                    .collect();
                let mut theirs_options: Vec<(u16, Vec<u8>)> = edns
                    .options()
                    .as_ref()
                    .iter()
                    .map(|(code, option)| {
                        let data = option.to_bytes().expect("option bytes");
                        (u16::from(*code), data)
                    })
                    .collect();
                let mut sorted = ours_options.clone();
                sorted.sort();
                theirs_options.sort();
                assert_eq!(sorted, theirs_options, "EDNS options");
            }
            (ours_opt, theirs_opt) => panic!(
                "OPT disagreement: ours {:?}, hickory {:?}",
                ours_opt.is_some(),
                theirs_opt.is_some()
            ),
        }
        Reply {
            bytes,
            hickory: theirs,
        }
    }

    /// heimdall-wire's view (already known to parse).
    pub fn message(&self) -> Message<'_> {
        Message::parse(&self.bytes).expect("checked")
    }

    /// The message ID.
    pub fn id(&self) -> u16 {
        self.hickory.metadata.id
    }

    /// The full rcode.
    pub fn rcode(&self) -> Rcode {
        self.message().rcode()
    }

    /// Whether TC is set.
    pub fn truncated(&self) -> bool {
        self.hickory.metadata.truncation
    }

    /// TTLs of the answer section, in order.
    pub fn answer_ttls(&self) -> Vec<u32> {
        self.hickory.answers.iter().map(|r| r.ttl).collect()
    }

    /// TTLs of the authority section, in order.
    pub fn authority_ttls(&self) -> Vec<u32> {
        self.hickory.authorities.iter().map(|r| r.ttl).collect()
    }

    /// Every record of one section (the OPT excluded), without TTLs, as a
    /// set: what RRset equality is about.
    pub fn rrsets(&self, section: Section) -> BTreeSet<RecordKey> {
        let records = match section {
            Section::Answer => &self.hickory.answers,
            Section::Authority => &self.hickory.authorities,
            Section::Additional => &self.hickory.additionals,
        };
        records.iter().map(hickory_key).collect()
    }

    /// The Extended DNS Error info codes in the OPT record.
    pub fn ede_codes(&self) -> Vec<u16> {
        self.message()
            .opt()
            .map(|opt| {
                opt.options()
                    .filter(|option| option.code == heimdall_wire::edns::EXTENDED_ERROR)
                    .filter_map(|option| option.data.first_chunk::<2>().copied())
                    .map(u16::from_be_bytes)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Check that this is a response to `query`: same ID, QR set, opcode
    /// and RD echoed, the question echoed with its letter case.
    pub fn assert_answers(&self, query: &[u8]) {
        let asked = Message::parse(query).expect("the test's own query parses");
        let reply = self.message();
        assert_eq!(reply.id(), asked.id(), "ID");
        assert!(reply.flags().response(), "QR");
        assert_eq!(reply.flags().opcode(), asked.flags().opcode(), "opcode");
        assert_eq!(
            reply.flags().recursion_desired(),
            asked.flags().recursion_desired(),
            "RD"
        );
        let (q, r) = (asked.question(), reply.question());
        let (Some(q), Some(r)) = (q, r) else {
            panic!("question missing in query or reply");
        };
        assert!(q.name.eq_exact(&r.name), "{} vs {}", q.name, r.name);
        assert_eq!((q.qtype, q.qclass), (r.qtype, r.qclass));
        assert_eq!(reply.opt().is_some(), asked.opt().is_some(), "EDNS echoed");
    }
}

/// A NOERROR reply whose answer is exactly one A record, `expected`.
pub fn assert_single_a(reply: &Reply, expected: Ipv4Addr) {
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    match &reply.hickory.answers[..] {
        [record] => assert_eq!(record.data, hickory_proto::rr::RData::A(expected.into())),
        other => panic!("one A record expected, got {other:?}"),
    }
}

/// Ask `upstream` directly (bypassing the server) and return its reply.
pub fn ask_directly(upstream: SocketAddr, query_bytes: &[u8]) -> Reply {
    Client::new(upstream).exchange(query_bytes)
}

/// A file holding `text` in the test binary's scratch directory, unique to
/// this process and `name`.
pub fn scratch_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("heimdall-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Poll `condition` every 10 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
