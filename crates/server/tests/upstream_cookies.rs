//! DNS cookies toward a real upstream (RFC 7873 sections 5.1 and 5.3):
//! BIND `named` 9.18, authoritative for a small zone written to a
//! temporary directory, on 127.0.0.1 at a free port; heimdall forwards to
//! it. named's own statistics (`CookieIn`, `CookieNew`, `CookieMatch` on
//! its statistics channel) show independently that every query heimdall
//! sent carried a cookie and that the later ones carried the server
//! cookie named issued and named found it valid; heimdall's `/stats`
//! shows the server cookie learned. With `require-server-cookie yes`,
//! named answers heimdall's first query BADCOOKIE and heimdall asks again
//! once with the server cookie (counted), so the client gets its answer.
//!
//! named is found with `heimdall_testkit::peers::find` (skipped with a
//! printed reason when missing, a failure under `CI=true`), runs in the
//! foreground in its own temporary directory and is killed by PID when
//! the test ends. Nothing is sent anywhere but 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{get_ok, metrics};
use common::{LOOPBACK, Setup, query};
use heimdall_config::UpstreamTransport;
use heimdall_testkit::peers;
use heimdall_wire::{Message, RData, Rcode, RecordType};
use serde_json::Value;

const EDNS: Option<u16> = Some(1232);
/// What the zone's wildcard answers.
const ADDRESS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 73);
/// Queries per test: the first learns the server cookie, the rest send it.
const QUERIES: u16 = 6;

/// A port free for both UDP and TCP on 127.0.0.1 (named listens on both).
fn free_port() -> u16 {
    for _ in 0..50 {
        let tcp = TcpListener::bind((LOOPBACK, 0)).unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// A running named; killed by PID (and its directory removed) on drop.
struct Named {
    child: Child,
    dir: PathBuf,
    /// Where it answers DNS.
    addr: SocketAddr,
    /// Its statistics channel (HTTP).
    stats: SocketAddr,
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Named {
    /// Start `binary` authoritative for `cookie.test.`; with
    /// `require_server_cookie`, UDP queries without a valid server cookie
    /// get BADCOOKIE. Waits until it answers.
    fn start(binary: &Path, name: &str, require_server_cookie: bool) -> Self {
        let dir =
            std::env::temp_dir().join(format!("heimdall-named-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (port, stats_port) = (free_port(), free_port());
        let d = dir.display();
        let require = if require_server_cookie { "yes" } else { "no" };
        let conf = format!(
            "options {{\n  directory \"{d}\";\n  pid-file \"{d}/named.pid\";\n  \
             session-keyfile \"{d}/session.key\";\n  managed-keys-directory \"{d}\";\n  \
             listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
             recursion no;\n  notify no;\n  answer-cookie yes;\n  \
             require-server-cookie {require};\n}};\n\
             controls {{ }};\n\
             statistics-channels {{ inet 127.0.0.1 port {stats_port} allow {{ 127.0.0.1; }}; }};\n\
             zone \"cookie.test\" {{ type primary; file \"{d}/cookie.test.zone\"; }};\n"
        );
        std::fs::write(dir.join("named.conf"), conf).unwrap();
        let zone = format!(
            "$TTL 300\n@ IN SOA ns.cookie.test. hostmaster.cookie.test. 1 3600 600 86400 60\n\
             @ IN NS ns.cookie.test.\nns IN A 127.0.0.1\n* IN A {ADDRESS}\n"
        );
        std::fs::write(dir.join("cookie.test.zone"), zone).unwrap();
        let log = std::fs::File::create(dir.join("named.log")).unwrap();
        let child = Command::new(binary)
            .args(["-g", "-n", "1", "-c"])
            .arg(dir.join("named.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start named");
        let named = Self {
            child,
            dir,
            addr: SocketAddr::from((LOOPBACK, port)),
            stats: SocketAddr::from((LOOPBACK, stats_port)),
        };
        named.wait_until_it_answers();
        named
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("named.log")).unwrap_or_default()
    }

    fn wait_until_it_answers(&self) {
        let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // No EDNS, so no cookie: this probe is not counted as one.
        let probe = query(1, "ns.cookie.test.", RecordType::A, None);
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            socket.send_to(&probe, self.addr).unwrap();
            if let Ok((len, _)) = socket.recv_from(&mut buf)
                && Message::parse(&buf[..len]).is_ok_and(|m| m.rcode() == Rcode::NOERROR)
            {
                return;
            }
        }
        panic!("named did not answer on {}:\n{}", self.addr, self.log());
    }

    /// named's server counters (`nsstats` of its JSON statistics).
    fn nsstats(&self) -> Value {
        let body = get_ok(self.stats, "/json/v1/server");
        let parsed: Value = serde_json::from_str(&body).unwrap();
        parsed["nsstats"].clone()
    }
}

/// A counter of named's `nsstats` (absent means 0).
fn count(nsstats: &Value, name: &str) -> u64 {
    nsstats[name].as_u64().unwrap_or(0)
}

/// Ask heimdall for `QUERIES` names under `cookie.test.` (each a miss,
/// forwarded to named); every client gets named's answer.
fn ask_names(server: &common::TestServer, label: &str) {
    let client = server.client();
    for n in 0..QUERIES {
        let name = format!("{label}-{n}.cookie.test.");
        let reply = client.exchange(&query(100 + n, &name, RecordType::A, EDNS));
        assert_eq!(reply.message().rcode(), Rcode::NOERROR, "{name}");
        let addresses: Vec<_> = reply
            .message()
            .answers()
            .filter_map(|record| match record.rdata() {
                Ok(RData::A(address)) => Some(address),
                _ => None,
            })
            .collect();
        assert_eq!(addresses, [ADDRESS], "{name}");
    }
}

/// heimdall's `/stats` view of its one upstream (the totals).
fn upstream_stats(server: &common::TestServer) -> Value {
    let body = get_ok(server.control_addr(), "/stats");
    let stats: Value = serde_json::from_str(&body).unwrap();
    stats["totals"]["upstreams"][0].clone()
}

fn named_binary() -> Option<PathBuf> {
    peers::find("named", "bind9")
}

fn cookies_are_sent_learned_and_accepted(transport: UpstreamTransport, name: &str) {
    let Some(binary) = named_binary() else {
        return;
    };
    let named = Named::start(&binary, name, false);
    let mut config = Setup::new(&[named.addr]).config();
    config.upstream.servers[0].transport = transport;
    let server = common::start_server(&config);
    ask_names(&server, name);

    // named's own word: every query came with a cookie; the first had a
    // client cookie only (new), every later one the server cookie named
    // had issued, which it found valid (match), none invalid.
    let ns = named.nsstats();
    let (cookie_in, new, matched) = (
        count(&ns, "CookieIn"),
        count(&ns, "CookieNew"),
        count(&ns, "CookieMatch"),
    );
    eprintln!("named over {transport:?}: {ns}");
    assert_eq!(cookie_in, u64::from(QUERIES), "every query had a cookie");
    assert_eq!(new, 1, "only the first lacked a server cookie");
    assert_eq!(matched, u64::from(QUERIES) - 1, "later ones sent it back");
    assert_eq!(count(&ns, "CookieNoMatch"), 0);
    assert_eq!(count(&ns, "CookieBadSize"), 0);

    // heimdall's: the server cookie is known, and nothing was refused.
    let upstream = upstream_stats(&server);
    assert_eq!(upstream["upstream"], named.addr.to_string());
    assert_eq!(upstream["server_cookie_known"], 1, "{upstream}");
    assert_eq!(upstream["cookies_supported"], 1, "{upstream}");
    let exposition = metrics(&get_ok(server.control_addr(), "/metrics"));
    assert_eq!(
        exposition.sum(
            "heimdall_upstream_replies_rejected_total",
            &[("reason", "wrong_cookie")]
        ),
        0.0
    );
    assert_eq!(
        exposition.sum("heimdall_upstream_server_cookie_known", &[]),
        1.0
    );
    let reports = server.stop();
    assert_eq!(
        common::total(&reports, |r| r.resolver.upstream_mismatched),
        0
    );
}

#[test]
fn named_accepts_and_echoes_heimdalls_cookies_over_udp() {
    cookies_are_sent_learned_and_accepted(UpstreamTransport::Udp, "udp");
}

#[test]
fn named_accepts_and_echoes_heimdalls_cookies_over_tcp() {
    cookies_are_sent_learned_and_accepted(UpstreamTransport::Tcp, "tcp");
}

#[test]
fn a_badcookie_from_named_is_retried_once_with_its_server_cookie() {
    let Some(binary) = named_binary() else {
        return;
    };
    let named = Named::start(&binary, "badcookie", true);
    let server = Setup::new(&[named.addr]).start();
    ask_names(&server, "strict");
    let exposition = metrics(&get_ok(server.control_addr(), "/metrics"));
    assert_eq!(
        exposition.sum("heimdall_upstream_badcookie_retries_total", &[]),
        1.0,
        "only the first query, sent without a server cookie, got BADCOOKIE"
    );
    let ns = named.nsstats();
    eprintln!("named requiring server cookies: {ns}");
    assert_eq!(count(&ns, "QryBADCOOKIE"), 1, "named sent one BADCOOKIE");
    assert_eq!(count(&ns, "CookieNew"), 1, "one query without it");
    assert_eq!(
        count(&ns, "CookieMatch"),
        u64::from(QUERIES),
        "the retry and every later query had a valid server cookie"
    );
    let upstream = upstream_stats(&server);
    assert_eq!(upstream["server_cookie_known"], 1, "{upstream}");
    assert_eq!(upstream["errors"], 0, "{upstream}");
    server.stop();
}
