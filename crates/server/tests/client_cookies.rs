//! Server cookies toward clients (RFC 7873, RFC 9018) end to end, with real
//! peers on 127.0.0.1: `dig +cookie` learns our cookie and sees it judged
//! good when it sends it back; a forged server cookie is answered with a
//! fresh one; with `cookies.udp_require_above`, cookie-less UDP floods get
//! TC and client-cookie-only ones BADCOOKIE while `dig +cookie` still gets
//! its answer (TCP is never held to it); BIND `named`, forwarding to
//! heimdall, learns our cookie and presents it; a cookie one core made is
//! valid at the other (the secret is in the shared snapshot); a reload
//! keeps the random secret, applies a configured one and turns cookies
//! off. Our reply bytes are cross-checked with hickory-proto.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heimdall_loadtest::UpstreamConfig;
use heimdall_server::CoreReport;
use heimdall_testkit::messages::{query as plain_query, query_with_cookie};
use heimdall_testkit::peers;
use heimdall_wire::cookie::find_cookie;
use heimdall_wire::{Rcode, RecordType, edns};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption as HOption};

use common::http::{get_ok, metrics, request};
use common::{
    Client, LOOPBACK, Reply, Setup, TestServer, listen_on_any_port, scratch_file, start_server,
    start_server_with, start_upstream, total,
};

/// A server with cookies on (the default), and `extra` YAML appended.
fn server_with(upstream: SocketAddr, extra: &str) -> TestServer {
    let yaml = format!("{}{extra}", Setup::new(&[upstream]).yaml());
    let mut config = heimdall_config::Config::from_yaml_str(&yaml, "test.yaml")
        .unwrap_or_else(|err| panic!("{err}\n{yaml}"));
    common::listen_on_any_port(&mut config);
    start_server(&config)
}

/// The COOKIE option of a reply, as hex (client then server cookie), after
/// checking that hickory reads the same option.
fn reply_cookie(reply: &Reply) -> Vec<u8> {
    let message = reply.message();
    let opt = message.opt().expect("an OPT record");
    let cookie = find_cookie(&opt).unwrap().expect("a COOKIE option");
    let data = [&cookie.client()[..], cookie.server()].concat();
    let edns_theirs = reply.hickory.edns.as_ref().expect("hickory sees EDNS");
    assert_eq!(
        edns_theirs.option(EdnsCode::Cookie),
        Some(&HOption::Unknown(edns::COOKIE, data.clone())),
        "hickory reads the same COOKIE option"
    );
    data
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run dig against `server` with `args`; its whole output.
fn dig(dig: &Path, server: SocketAddr, args: &[&str]) -> String {
    assert_eq!(server.ip(), LOOPBACK);
    let output = Command::new(dig)
        .arg(format!("@{}", server.ip()))
        .arg("-p")
        .arg(server.port().to_string())
        .args(["+time=2", "+tries=1", "+norecurse"])
        .args(args)
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// dig's `; COOKIE: <hex> (<verdict>)` line: the hex and the verdict.
fn dig_cookie(output: &str) -> (String, String) {
    let line = output
        .lines()
        .find_map(|line| line.strip_prefix("; COOKIE: "))
        .unwrap_or_else(|| panic!("no COOKIE line in dig's output:\n{output}"));
    let (hex, verdict) = line.split_once(' ').unwrap_or((line, ""));
    (hex.to_owned(), verdict.to_owned())
}

fn client_cookie_total(reports: &[CoreReport], outcome: &str) -> u64 {
    total(reports, |r| match outcome {
        "valid" => r.resolver.client_cookies_valid,
        "new" => r.resolver.client_cookies_new,
        "bad" => r.resolver.client_cookies_bad,
        _ => r.resolver.client_cookies_malformed,
    })
}

#[test]
fn dig_learns_our_cookie_and_it_is_good_when_sent_back() {
    let Some(dig_path) = peers::find("dig", "bind9-dnsutils") else {
        return;
    };
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = server_with(upstream.local_addr(), "");

    // First contact: dig sends a client cookie and gets ours.
    let first = dig(
        &dig_path,
        server.addr,
        &["+cookie", "host-1.zone.test", "A"],
    );
    assert!(first.contains("status: NOERROR"), "{first}");
    let (learned, verdict) = dig_cookie(&first);
    assert_eq!(verdict, "(good)", "{first}");
    assert_eq!(learned.len(), 48, "8-byte client and 16-byte server cookie");
    assert!(learned[16..].starts_with("01000000"), "RFC 9018 version 1");

    // Sending it back: good again, and counted valid by heimdall.
    let second = dig(
        &dig_path,
        server.addr,
        &[&format!("+cookie={learned}"), "host-2.zone.test", "A"],
    );
    assert!(second.contains("status: NOERROR"), "{second}");
    assert!(second.contains("ANSWER: 1"), "{second}");
    let (fresh, verdict) = dig_cookie(&second);
    assert_eq!(verdict, "(good)", "{second}");
    assert_eq!(fresh[..16], learned[..16], "the client cookie is echoed");

    // Our own client, cross-checked with hickory: the same cookie is
    // accepted, and the reply carries a fresh one that verifies too.
    let client = Client::new(server.addr);
    let learned_bytes: Vec<u8> = (0..learned.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&learned[i..i + 2], 16).unwrap())
        .collect();
    let packet = query_with_cookie("host-3.zone.test", RecordType::A, 77, &learned_bytes);
    let reply = client.exchange(&packet);
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_eq!(reply.message().answers().count(), 1);
    let answered = reply_cookie(&reply);
    assert_eq!(answered[..8], learned_bytes[..8]);
    assert_eq!(answered.len(), 24);

    let text = get_ok(server.control_addr(), "/metrics");
    let parsed = metrics(&text);
    let valid = parsed
        .value(
            "heimdall_client_cookies_total",
            &[("core", "0"), ("outcome", "valid")],
        )
        .unwrap();
    assert_eq!(valid, 2.0, "dig's second query and ours");
    let reports = server.stop();
    assert_eq!(client_cookie_total(&reports, "new"), 1);
    assert_eq!(client_cookie_total(&reports, "valid"), 2);
    assert_eq!(client_cookie_total(&reports, "bad"), 0);
    upstream.stop();
}

#[test]
fn a_forged_server_cookie_is_answered_with_a_fresh_one() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = server_with(upstream.local_addr(), "");
    let client = Client::new(server.addr);
    let forged = [&b"clientck"[..], &[0x01, 0, 0, 0][..], &[0x42; 12][..]].concat();
    let packet = query_with_cookie("host-4.zone.test", RecordType::A, 5, &forged);
    let reply = client.exchange(&packet);
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_eq!(reply.message().answers().count(), 1);
    let fresh = reply_cookie(&reply);
    assert_eq!(&fresh[..8], b"clientck");
    assert_ne!(fresh, forged);
    // The fresh one is ours: sent back, it is valid.
    let again = query_with_cookie("host-4.zone.test", RecordType::A, 6, &fresh);
    let reply = client.exchange(&again);
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    reply_cookie(&reply);
    // A malformed option (9 bytes) is FORMERR.
    let malformed = query_with_cookie("host-4.zone.test", RecordType::A, 7, &[7; 9]);
    let reply = client.exchange(&malformed);
    assert_eq!(reply.rcode(), Rcode::FORMERR);
    assert_eq!(reply.hickory.response_code, ResponseCode::FormErr);
    if let Some(dig_path) = peers::find("dig", "bind9-dnsutils") {
        let output = dig(
            &dig_path,
            server.addr,
            &[&format!("+cookie={}", hex(&forged)), "host-5.zone.test"],
        );
        assert!(output.contains("status: NOERROR"), "{output}");
        assert_eq!(dig_cookie(&output).1, "(good)", "{output}");
    }
    let reports = server.stop();
    assert!(client_cookie_total(&reports, "bad") >= 1);
    assert_eq!(client_cookie_total(&reports, "valid"), 1);
    assert_eq!(client_cookie_total(&reports, "malformed"), 1);
    upstream.stop();
}

#[test]
fn above_the_required_rate_udp_gets_tc_or_badcookie_and_dig_still_gets_its_answer() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    // One query per second per /24 without a valid cookie.
    let server = server_with(upstream.local_addr(), "cookies:\n  udp_require_above: 1\n");
    let client = Client::new(server.addr);
    const FLOOD: u16 = 20;
    let mut truncated = 0u64;
    for id in 0..FLOOD {
        let packet = plain_query("host-6.zone.test", RecordType::A, id, Some((1232, false)));
        let reply = client.exchange(&packet);
        if reply.truncated() {
            assert_eq!(reply.message().answers().count(), 0);
            truncated += 1;
        }
    }
    let mut badcookie = 0u64;
    for id in 0..FLOOD {
        let packet = query_with_cookie("host-6.zone.test", RecordType::A, 100 + id, b"clientck");
        let reply = client.exchange(&packet);
        if reply.rcode() == Rcode::BADCOOKIE {
            assert_eq!(reply.hickory.response_code, ResponseCode::BADCOOKIE);
            assert_eq!(reply.message().answers().count(), 0);
            assert_eq!(&reply_cookie(&reply)[..8], b"clientck");
            badcookie += 1;
        }
    }
    // Everything past the first second's token (and a refill or two).
    assert!(truncated >= u64::from(FLOOD) - 3, "{truncated} truncated");
    assert!(badcookie >= u64::from(FLOOD) - 3, "{badcookie} BADCOOKIE");
    if let Some(dig_path) = peers::find("dig", "bind9-dnsutils") {
        // dig gets BADCOOKIE, retries with the cookie it was given, and
        // gets its answer.
        let output = dig(
            &dig_path,
            server.addr,
            &["+cookie", "+badcookie", "host-7.zone.test", "A"],
        );
        assert!(output.contains("status: NOERROR"), "{output}");
        assert!(output.contains("ANSWER: 1"), "{output}");
        assert_eq!(dig_cookie(&output).1, "(good)", "{output}");
        // TCP is never held to it, cookie or not.
        let output = dig(
            &dig_path,
            server.addr,
            &["+tcp", "+nocookie", "host-8.zone.test", "A"],
        );
        assert!(output.contains("status: NOERROR"), "{output}");
        assert!(output.contains("ANSWER: 1"), "{output}");
        assert!(!output.contains("flags: qr tc"), "{output}");
        let output = dig(
            &dig_path,
            server.addr,
            &["+tcp", "+cookie", "host-8.zone.test", "A"],
        );
        assert!(output.contains("ANSWER: 1"), "{output}");
        assert_eq!(dig_cookie(&output).1, "(good)", "{output}");
    }
    let text = get_ok(server.control_addr(), "/metrics");
    let parsed = metrics(&text);
    let metric = |name: &str| parsed.value(name, &[("core", "0")]).unwrap();
    assert_eq!(
        metric("heimdall_client_cookie_truncated_total"),
        truncated as f64
    );
    let badcookie_metric = metric("heimdall_client_cookie_badcookie_total");
    assert!(badcookie_metric >= badcookie as f64);
    let reports = server.stop();
    let sent = total(&reports, |r| r.resolver.client_cookies_badcookie_sent);
    assert_eq!(sent as f64, badcookie_metric);
    // dig's retry presented a valid cookie.
    if peers::find("dig", "bind9-dnsutils").is_some() {
        assert!(client_cookie_total(&reports, "valid") >= 1);
        assert_eq!(sent, badcookie + 1, "ours and dig's first try");
        assert!(client_cookie_total(&reports, "new") >= u64::from(FLOOD) + 2);
    }
    upstream.stop();
}

/// A BIND `named` running in the foreground in its own directory, killed
/// by PID when dropped.
struct Named {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP, as far as can be told.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
}

/// Start `named` forwarding everything to `forwarder` (heimdall), and
/// wait until it answers. Root hints point at an unused loopback address,
/// so nothing it does can leave the machine.
fn start_named(named: &Path, forwarder: SocketAddr) -> Named {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "named-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let d = dir.display();
    std::fs::write(
        dir.join("root.hints"),
        ".\t3600000\tNS\ta.root.invalid.\na.root.invalid.\t3600000\tA\t127.0.0.254\n",
    )
    .unwrap();
    let conf = format!(
        "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  \
         session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
         listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
         query-source address 127.0.0.1;\n  recursion yes;\n  \
         allow-query {{ 127.0.0.1; }};\n  allow-recursion {{ 127.0.0.1; }};\n  \
         forwarders {{ 127.0.0.1 port {fport}; }};\n  forward only;\n  \
         dnssec-validation no;\n  notify no;\n}};\n\
         controls {{ }};\n\
         zone \".\" {{ type hint; file \"{d}/root.hints\"; }};\n",
        fport = forwarder.port(),
    );
    let conf_path = dir.join("named.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let log = std::fs::File::create(dir.join("named.log")).unwrap();
    let child = Command::new(named)
        .args(["-g", "-n", "1", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start named");
    let named = Named {
        child,
        dir,
        addr: SocketAddr::from((LOOPBACK, port)),
    };
    // Wait until it answers anything (a REFUSED or SERVFAIL will do).
    let client = Client::new(named.addr);
    let deadline = Instant::now() + Duration::from_secs(15);
    let probe = plain_query("version.bind", RecordType::TXT, 1, None);
    loop {
        client.send(&probe);
        if client.recv_within(Duration::from_millis(200)).is_some() {
            break;
        }
        let log = std::fs::read_to_string(named.dir.join("named.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "named did not answer:\n{log}");
    }
    named
}

#[test]
fn named_as_a_forwarder_learns_and_returns_our_cookie() {
    let Some(named_path) = peers::find("named", "bind9") else {
        return;
    };
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = server_with(upstream.local_addr(), "");
    let named = start_named(&named_path, server.addr);
    let client = Client::new(named.addr);
    for i in 0..6u16 {
        let name = format!("host-{}.zone.test", 10 + i);
        let packet = plain_query(&name, RecordType::A, 1000 + i, Some((1232, false)));
        let reply = client.exchange(&packet);
        assert_eq!(reply.rcode(), Rcode::NOERROR, "{name} through named");
        assert_eq!(reply.message().answers().count(), 1, "{name}");
    }
    let reports = server.stop();
    let new = client_cookie_total(&reports, "new");
    let valid = client_cookie_total(&reports, "valid");
    let bad = client_cookie_total(&reports, "bad");
    eprintln!(
        "named's queries to heimdall: {new} with a client cookie only, {valid} with our cookie"
    );
    assert!(new >= 1, "named sent a client cookie first ({new})");
    assert!(
        valid >= 4,
        "named presented our server cookie after learning it ({valid} valid)"
    );
    assert_eq!(bad, 0);
    drop(named);
    upstream.stop();
}

/// Ask for `name` with `cookie`; the reply's COOKIE option.
fn ask_with_cookie(client: &Client, name: &str, id: u16, cookie: &[u8]) -> Vec<u8> {
    let reply = client.exchange(&query_with_cookie(name, RecordType::A, id, cookie));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    reply_cookie(&reply)
}

#[test]
fn a_reload_keeps_the_random_secret_and_applies_a_new_one() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup::new(&[upstream.local_addr()]);
    let path = scratch_file("cookies-reload.yaml", &setup.yaml());
    let mut config = heimdall_config::Config::load(&path).unwrap();
    listen_on_any_port(&mut config);
    let source_path = path.clone();
    let options = heimdall_server::StartOptions {
        reload_source: Some(std::sync::Arc::new(move || {
            let mut config =
                heimdall_config::Config::load(&source_path).map_err(|err| err.to_string())?;
            listen_on_any_port(&mut config);
            Ok(config)
        })),
        ..Default::default()
    };
    let server = start_server_with(&config, options);
    let client = Client::new(server.addr);
    let reload = || {
        let (status, body) = request(server.control_addr(), "POST", "/reload");
        assert_eq!(status, 200, "{body}");
        body
    };
    let learned = ask_with_cookie(&client, "host-1.zone.test", 1, b"clientck");

    // A reload that changes nothing about cookies keeps the random secret:
    // the cookie learned before is still valid.
    let body = reload();
    assert!(!body.contains("cookies"), "{body}");
    let after_reload = ask_with_cookie(&client, "host-1.zone.test", 2, &learned);

    // A secret set in the file is applied: the cookies made with the
    // random one are refused (answered with a fresh one, counted bad).
    std::fs::write(
        &path,
        format!(
            "{}cookies:\n  secret: e5e973e5a6b2a43f48e7dc849e37bfcf\n",
            setup.yaml()
        ),
    )
    .unwrap();
    let body = reload();
    assert!(body.contains("cookies: applied"), "{body}");
    let fresh = ask_with_cookie(&client, "host-1.zone.test", 3, &after_reload);
    assert_ne!(fresh, after_reload);
    ask_with_cookie(&client, "host-1.zone.test", 4, &fresh);

    // Cookies off: no COOKIE option read or answered.
    std::fs::write(
        &path,
        format!("{}cookies:\n  enabled: false\n", setup.yaml()),
    )
    .unwrap();
    reload();
    let reply = client.exchange(&query_with_cookie(
        "host-1.zone.test",
        RecordType::A,
        5,
        &fresh,
    ));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert!(
        find_cookie(&reply.message().opt().unwrap())
            .unwrap()
            .is_none()
    );

    let reports = server.stop();
    assert_eq!(client_cookie_total(&reports, "new"), 1);
    assert_eq!(
        client_cookie_total(&reports, "valid"),
        2,
        "after the first reload, and with the new secret"
    );
    assert_eq!(
        client_cookie_total(&reports, "bad"),
        1,
        "the random secret's cookie after the change"
    );
    upstream.stop();
}

#[test]
fn every_core_accepts_the_cookies_another_core_made() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        cores: "[0, 1]",
        // Spread by flow, so that both cores see the name.
        steering: "flow",
        ..Setup::new(&[upstream.local_addr()])
    };
    let server = setup.start();
    // One cookie learned, then presented from many source ports: the
    // kernel spreads them over both cores, and each must find it valid.
    let learned = ask_with_cookie(
        &Client::new(server.addr),
        "host-1.zone.test",
        1,
        b"clientck",
    );
    for id in 0..32u16 {
        let client = Client::new(server.addr);
        let fresh = ask_with_cookie(&client, "host-1.zone.test", 100 + id, &learned);
        assert_eq!(&fresh[..8], b"clientck");
    }
    let reports = server.stop();
    assert_eq!(client_cookie_total(&reports, "valid"), 32);
    assert_eq!(client_cookie_total(&reports, "bad"), 0);
    let per_core: Vec<u64> = reports
        .iter()
        .map(|r| r.resolver.client_cookies_valid)
        .collect();
    assert!(
        per_core.iter().all(|&n| n > 0),
        "both cores checked cookies: {per_core:?}"
    );
    upstream.stop();
}
