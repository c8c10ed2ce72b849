//! dnstap end to end, with the real readers: `fstrm_capture` (Debian's
//! fstrm-bin) listens on a unix socket and writes what heimdall sends to a
//! file, and `dnstap-read` (bind9-utils) decodes that file. A reader that
//! vanishes must cost dropped messages (counted), never answers or a
//! clean stop.
//!
//! Everything talks over 127.0.0.1 and a unix socket in a private
//! directory under /tmp (unix socket paths are short: 107 bytes).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::http::{get_ok, metrics};
use common::{LOOPBACK, Setup, TestServer, query, start_server, start_upstream, total, wait_until};
use heimdall_config::Config;
use heimdall_loadtest::UpstreamConfig;
use heimdall_testkit::peers;
use heimdall_wire::RecordType;

/// A private directory for one test's socket and capture file, removed at
/// the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("heimdall-dnstap-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn socket(&self) -> PathBuf {
        self.0.join("dnstap.sock")
    }

    fn capture(&self) -> PathBuf {
        self.0.join("capture.dnstap")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `fstrm_capture`, killed if the test ends early.
struct Capture(Option<Child>);

impl Capture {
    /// Listen on `socket` and write to `file`; returns once the socket
    /// exists.
    fn start(binary: &Path, socket: &Path, file: &Path) -> Self {
        let child = Command::new(binary)
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(socket)
            .arg("-w")
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start fstrm_capture");
        let capture = Self(Some(child));
        assert!(
            wait_until(Duration::from_secs(5), || socket.exists()),
            "fstrm_capture did not create {}",
            socket.display()
        );
        capture
    }

    /// Signal it (`TERM`: close the file cleanly; `KILL`: vanish) and wait
    /// for it to exit.
    fn stop(mut self, signal: &str) {
        let mut child = self.0.take().expect("running");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
        assert!(
            wait_until(Duration::from_secs(5), || matches!(
                child.try_wait(),
                Ok(Some(_))
            )),
            "fstrm_capture did not exit on {signal}"
        );
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A one-core server forwarding to `upstream`, with `dnstap` (YAML lines
/// under `dnstap:`).
fn server(upstream: SocketAddr, dnstap: &str) -> TestServer {
    server_on("[0]", upstream, dnstap)
}

/// [`server`] on `cores` (`server.cores` as YAML).
fn server_on(cores: &'static str, upstream: SocketAddr, dnstap: &str) -> TestServer {
    let mut setup = Setup::new(&[upstream]);
    setup.cores = cores;
    // The kernel's flow hash, so that many client ports reach every core
    // (name steering would send all of one name to its owner core).
    setup.steering = "flow";
    let yaml = format!("{}dnstap:\n{dnstap}", setup.yaml());
    let mut config = Config::from_yaml_str(&yaml, "test.yaml")
        .unwrap_or_else(|err| panic!("test config refused: {err}\n{yaml}"));
    common::listen_on_any_port(&mut config);
    start_server(&config)
}

/// One query over TCP; the reply's bytes.
fn tcp_exchange(server: SocketAddr, message: &[u8]) -> Vec<u8> {
    assert_eq!(server.ip(), LOOPBACK);
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).unwrap();
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut reply).unwrap();
    reply
}

/// A counter of `/metrics`, summed over the cores.
fn metric(server: &TestServer, name: &str) -> f64 {
    let text = get_ok(server.control_addr(), "/metrics");
    let parsed = metrics(&text);
    parsed
        .family(name)
        .map_or(0.0, |family| family.samples.iter().map(|s| s.value).sum())
}

/// `dnstap-read` of `file`, with `-y` (YAML) or without (one line each).
fn read_capture(binary: &Path, file: &Path, yaml: bool) -> String {
    let mut command = Command::new(binary);
    if yaml {
        command.arg("-y");
    }
    let output = command.arg(file).output().expect("run dnstap-read");
    assert!(
        output.status.success(),
        "dnstap-read failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The readers, or `None` (skip) outside CI when one is missing.
fn readers() -> Option<(PathBuf, PathBuf)> {
    let capture = peers::find("fstrm_capture", "fstrm-bin")?;
    let read = peers::find("dnstap-read", "bind9-utils")?;
    Some((capture, read))
}

#[test]
fn dnstap_read_decodes_the_four_message_types() {
    let Some((fstrm_capture, dnstap_read)) = readers() else {
        return;
    };
    let scratch = Scratch::new("decode");
    let capture = Capture::start(&fstrm_capture, &scratch.socket(), &scratch.capture());
    let upstream = start_upstream(UpstreamConfig::default());
    let server = server(
        upstream.local_addr(),
        &format!(
            "  enabled: true\n  socket: {}\n  identity: heimdall-test\n  version: tap-1\n",
            scratch.socket().display()
        ),
    );
    let client = server.client();
    // A miss (forwarded), the same again (a cache hit), and a miss over TCP.
    let udp_query = query(0x1001, "host-1.zone.test", RecordType::A, Some(1232));
    client.exchange(&udp_query);
    client.exchange(&query(
        0x1002,
        "host-1.zone.test",
        RecordType::A,
        Some(1232),
    ));
    let tcp_query = query(0x1003, "host-2.zone.test", RecordType::MX, None);
    let reply = tcp_exchange(server.addr, &tcp_query);
    assert_eq!(&reply[..2], &[0x10, 0x03]);
    // UDP: 2 queries, 2 responses, 1 forwarded query and its reply; TCP: 4.
    let expected = 10.0;
    assert!(
        wait_until(Duration::from_secs(5), || metric(
            &server,
            "heimdall_dnstap_sent_total"
        ) >= expected),
        "not every message reached the reader"
    );
    assert_eq!(metric(&server, "heimdall_dnstap_dropped_total"), 0.0);
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.dnstap_sent), 10);
    assert_eq!(total(&reports, |r| r.dnstap_dropped), 0);
    capture.stop("TERM");

    let yaml = read_capture(&dnstap_read, &scratch.capture(), true);
    for kind in [
        "CLIENT_QUERY",
        "CLIENT_RESPONSE",
        "FORWARDER_QUERY",
        "FORWARDER_RESPONSE",
    ] {
        let count = yaml.matches(&format!("type: {kind}")).count();
        let expected = if kind.starts_with("CLIENT") { 3 } else { 2 };
        assert_eq!(count, expected, "{kind} in\n{yaml}");
    }
    for needle in [
        "identity: heimdall-test",
        "version: tap-1",
        "socket_protocol: UDP",
        "socket_protocol: TCP",
        "query_address: \"127.0.0.1\"",
        &format!("response_port: {}", server_port(&yaml)),
        &format!("response_port: {}", upstream.local_addr().port()),
    ] {
        assert!(yaml.contains(needle), "{needle:?} not in\n{yaml}");
    }
    // The query names, in the question sections dnstap-read prints
    // (the forwarded ones in 0x20 random case).
    let lower = yaml.to_ascii_lowercase();
    assert!(lower.matches("host-1.zone.test.").count() >= 4, "{yaml}");
    assert!(lower.contains("host-2.zone.test."), "{yaml}");
    // The one-line form: CQ, CR, FQ, FR with the names.
    let lines = read_capture(&dnstap_read, &scratch.capture(), false);
    assert_eq!(lines.lines().count(), 10, "{lines}");
    for (mnemonic, name) in [
        (" CQ ", "host-1.zone.test/IN/A"),
        (" CR ", "host-1.zone.test/IN/A"),
        (" CQ ", "host-2.zone.test/IN/MX"),
        (" CR ", "host-2.zone.test/IN/MX"),
        (" FQ ", "zone.test/IN/A"),
        (" FR ", "zone.test/IN/MX"),
    ] {
        assert!(
            lines.lines().any(|line| line.contains(mnemonic)
                && line
                    .to_ascii_lowercase()
                    .contains(&name.to_ascii_lowercase())),
            "no {mnemonic} line for {name} in\n{lines}"
        );
    }
}

/// heimdall's DNS port as the capture shows it: the response port of the
/// first CLIENT_QUERY.
fn server_port(yaml: &str) -> u16 {
    let start = yaml.find("type: CLIENT_QUERY").expect("a CLIENT_QUERY");
    let after = &yaml[start..];
    let line = after
        .lines()
        .find(|line| line.trim_start().starts_with("response_port:"))
        .expect("a response port");
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn a_vanished_reader_costs_counted_drops_not_answers() {
    let Some((fstrm_capture, _)) = readers() else {
        return;
    };
    let scratch = Scratch::new("vanish");
    let capture = Capture::start(&fstrm_capture, &scratch.socket(), &scratch.capture());
    let upstream = start_upstream(UpstreamConfig::default());
    let server = server(
        upstream.local_addr(),
        &format!(
            "  enabled: true\n  socket: {}\n  buffer_frames: 16\n",
            scratch.socket().display()
        ),
    );
    let client = server.client();
    client.exchange(&query(1, "host-1.zone.test", RecordType::A, None));
    assert!(
        wait_until(Duration::from_secs(5), || metric(
            &server,
            "heimdall_dnstap_sent_total"
        ) >= 4.0),
        "the reader never got the first messages"
    );
    capture.stop("KILL");
    // Far more than the 16 messages the core may hold: every query is
    // still answered, and what does not fit is dropped and counted.
    for id in 2..300u16 {
        let name = format!("host-{}.zone.test", id % 7);
        client.exchange(&query(id, &name, RecordType::A, None));
    }
    let dropped = metric(&server, "heimdall_dnstap_dropped_total");
    assert!(dropped >= 500.0, "dropped {dropped}");
    let stats: serde_json::Value =
        serde_json::from_str(&get_ok(server.control_addr(), "/stats")).unwrap();
    assert_eq!(stats["totals"]["dnstap"]["dropped"].as_f64(), Some(dropped));
    let reports = server.stop();
    assert!(total(&reports, |r| r.dnstap_dropped) >= 500);
    assert!(total(&reports, |r| r.dnstap_sent) >= 4);
}

#[test]
fn the_writer_connects_once_the_reader_is_there() {
    let Some((fstrm_capture, dnstap_read)) = readers() else {
        return;
    };
    let scratch = Scratch::new("late");
    let upstream = start_upstream(UpstreamConfig::default());
    let server = server(
        upstream.local_addr(),
        &format!(
            "  enabled: true\n  socket: {}\n  log_forwarder_queries: false\n  \
             log_forwarder_responses: false\n  log_client_responses: false\n",
            scratch.socket().display()
        ),
    );
    // No reader yet: answered all the same, the message waits in the
    // core's buffer.
    let client = server.client();
    client.exchange(&query(1, "host-1.zone.test", RecordType::A, None));
    assert_eq!(metric(&server, "heimdall_dnstap_sent_total"), 0.0);
    let capture = Capture::start(&fstrm_capture, &scratch.socket(), &scratch.capture());
    client.exchange(&query(2, "host-3.zone.test", RecordType::A, None));
    assert!(
        wait_until(Duration::from_secs(10), || metric(
            &server,
            "heimdall_dnstap_sent_total"
        ) >= 2.0),
        "the writer did not connect to the reader that came"
    );
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.dnstap_sent), 2, "client queries only");
    capture.stop("TERM");
    let lines = read_capture(&dnstap_read, &scratch.capture(), false);
    assert_eq!(lines.lines().count(), 2, "{lines}");
    assert!(lines.lines().all(|line| line.contains(" CQ ")), "{lines}");
    assert!(lines.contains("host-1.zone.test/IN/A"), "{lines}");
    assert!(lines.contains("host-3.zone.test/IN/A"), "{lines}");
}

#[test]
fn without_a_reader_every_message_is_counted_as_dropped() {
    // No reader at all (no peer binary needed): the server answers as
    // usual, stops promptly, and every message is accounted for.
    let scratch = Scratch::new("none");
    let upstream = start_upstream(UpstreamConfig::default());
    let server = server(
        upstream.local_addr(),
        &format!(
            "  enabled: true\n  socket: {}\n  buffer_frames: 4\n",
            scratch.socket().display()
        ),
    );
    let client = server.client();
    for id in 0..20u16 {
        client.exchange(&query(id, "host-1.zone.test", RecordType::A, None));
    }
    // 20 client queries and responses, one forwarded query and its reply.
    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.dnstap_sent), 0);
    assert_eq!(total(&reports, |r| r.dnstap_dropped), 42);
}

/// A reader that does the handshake and then never reads: returns once
/// it has seen START; the connection stays open until `hold` is dropped.
fn stalled_reader(socket: &Path) -> std::sync::mpsc::Sender<()> {
    use heimdall_dnstap::fstrm::{self, CONTENT_TYPE, ControlKind, Frame};
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    let (hold, held) = std::sync::mpsc::channel::<()>();
    let (started, start) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 600];
        // READY, then (after our ACCEPT) START.
        for (expected, answer) in [(ControlKind::Ready, true), (ControlKind::Start, false)] {
            let used = loop {
                if let Some((frame, used)) = fstrm::next_frame(&buf, 0).unwrap() {
                    let Frame::Control(control) = frame else {
                        panic!("a data frame before START")
                    };
                    assert_eq!(control.kind, expected);
                    assert!(control.has_content_type(CONTENT_TYPE));
                    break used;
                }
                let read = stream.read(&mut chunk).unwrap();
                assert!(read > 0, "the writer closed during the handshake");
                buf.extend_from_slice(&chunk[..read]);
            };
            buf.drain(..used);
            if answer {
                let mut accept = Vec::new();
                fstrm::put_control(ControlKind::Accept, Some(CONTENT_TYPE), &mut accept);
                stream.write_all(&accept).unwrap();
            }
        }
        started.send(()).unwrap();
        // Never read again; keep the connection until told.
        let _ = held.recv();
        drop(stream);
    });
    start
        .recv_timeout(Duration::from_secs(10))
        .expect("handshake");
    hold
}

#[test]
fn a_reader_that_stops_reading_holds_up_neither_answers_nor_the_stop() {
    let scratch = Scratch::new("stalled");
    let upstream = start_upstream(UpstreamConfig::default());
    let socket = scratch.socket();
    let server_socket = socket.clone();
    // The server connects as soon as it starts: the reader is there first.
    let reader = std::thread::spawn(move || stalled_reader(&server_socket));
    while !socket.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let server = server(
        upstream.local_addr(),
        &format!(
            "  enabled: true\n  socket: {}\n  buffer_frames: 64\n",
            socket.display()
        ),
    );
    let hold = reader.join().unwrap();
    // Far more than the socket buffer takes: every query is answered.
    let client = server.client();
    for id in 0..2000u16 {
        client.exchange(&query(id, "host-1.zone.test", RecordType::A, None));
    }
    assert!(metric(&server, "heimdall_dnstap_dropped_total") > 0.0);
    let started = std::time::Instant::now();
    let reports = server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stop waited {:?} for a reader that does not read",
        started.elapsed()
    );
    let (sent, dropped) = (
        total(&reports, |r| r.dnstap_sent),
        total(&reports, |r| r.dnstap_dropped),
    );
    assert!(dropped > 0);
    assert_eq!(
        sent + dropped,
        2 * 2000 + 2,
        "every message is sent or dropped"
    );
    drop(hold);
}

#[test]
fn each_core_writes_on_its_own_connection() {
    let Some((fstrm_capture, dnstap_read)) = readers() else {
        return;
    };
    if heimdall_config::available_cpu_ids().len() < 2 {
        eprintln!("one CPU: no second core to test; skipping");
        return;
    }
    let scratch = Scratch::new("cores");
    let capture = Capture::start(&fstrm_capture, &scratch.socket(), &scratch.capture());
    let upstream = start_upstream(UpstreamConfig::default());
    let server = server_on(
        "2",
        upstream.local_addr(),
        &format!(
            "  enabled: true\n  socket: {}\n  log_forwarder_queries: false\n  \
             log_forwarder_responses: false\n",
            scratch.socket().display()
        ),
    );
    // Many client ports, so that SO_REUSEPORT gives both cores queries.
    let mut id = 0u16;
    for _ in 0..32 {
        let client = server.client();
        for _ in 0..4 {
            id += 1;
            // A name per query: with name steering (the default) each
            // name belongs to one core, so many names reach both.
            let name = format!("host-{id}.zone.test");
            client.exchange(&query(id, &name, RecordType::A, None));
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || metric(
            &server,
            "heimdall_dnstap_sent_total"
        ) >= 256.0),
        "not every message reached the reader"
    );
    let reports = server.stop();
    capture.stop("TERM");
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert!(report.dnstap_sent > 0, "core {} sent nothing", report.core);
        assert_eq!(report.dnstap_dropped, 0);
    }
    let lines = read_capture(&dnstap_read, &scratch.capture(), false);
    assert_eq!(lines.lines().count(), 256, "{lines}");
    assert_eq!(lines.matches(" CQ ").count(), 128);
    assert_eq!(lines.matches(" CR ").count(), 128);
}
