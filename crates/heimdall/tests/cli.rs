//! Tests of the `heimdall` binary itself: its subcommands, and a real run
//! with a config file that answers a query over UDP on 127.0.0.1 and exits
//! cleanly on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

// The server's test helpers (query building, the two-parser cross-check
// of replies, the synthetic upstream on 127.0.0.1), shared rather than
// copied.
#[path = "../../server/tests/common/mod.rs"]
mod common;

use std::net::UdpSocket;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{LOOPBACK, Reply, assert_single_a, query, scratch_file, start_upstream};
use heimdall_config::{Config, DEFAULT_CONFIG_YAML};
use heimdall_loadtest::UpstreamConfig;
use heimdall_loadtest::upstream::zone::host_v4;
use heimdall_wire::{Rcode, RecordType};

const BIN: &str = env!("CARGO_BIN_EXE_heimdall");

fn heimdall(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run heimdall")
}

#[test]
fn default_config_prints_yaml_that_parses() {
    let output = heimdall(&["default-config"]);
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert_eq!(text, DEFAULT_CONFIG_YAML);
    let value: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    assert!(value.get("upstream").is_some() && value.get("server").is_some());
    // With an upstream listed (the one thing a file must add), it is a
    // valid config file.
    let with_upstream = text.replacen("servers: []", "servers: [192.0.2.53]", 1);
    assert_ne!(with_upstream, text);
    let config = Config::from_yaml_str(&with_upstream, "default.yaml").expect("valid");
    assert_eq!(config.upstream.servers.len(), 1);
}

#[test]
fn check_config_names_the_file_key_and_line() {
    let bad = scratch_file(
        "bad.yaml",
        "server:\n  cores: [0]\n  listen: [127.0.0.1:5353]\nupstream:\n  servers: [192.0.2.53]\n  timeout: 5 parsecs\n",
    );
    let output = heimdall(&["check-config", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a bad file must fail: {output:?}");
    let location = format!("{}:6:", bad.display());
    assert!(stderr.contains(&location), "file and line: {stderr}");
    assert!(stderr.contains("upstream.timeout"), "key: {stderr}");
    assert!(stderr.contains("parsecs"), "the offending value: {stderr}");

    let good = scratch_file(
        "good.yaml",
        "server:\n  cores: [0]\n  listen: [127.0.0.1:5353]\nupstream:\n  servers: [192.0.2.53]\n",
    );
    let output = heimdall(&["check-config", good.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let effective = String::from_utf8(output.stdout).unwrap();
    let config = Config::from_yaml_str(&effective, "effective.yaml").expect("effective config");
    assert_eq!(
        config.upstream.servers,
        vec![heimdall_config::Upstream::udp(
            "192.0.2.53:53".parse().unwrap()
        )]
    );
    std::fs::remove_file(bad).unwrap();
    std::fs::remove_file(good).unwrap();
}

/// Kills the child if the test fails before it exits.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.0.as_mut()?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0
            && child.try_wait().ok().flatten().is_none()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn runs_with_a_config_file_answers_and_stops_on_sigterm() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    // A free port: bind, note, release. (The server binds it again below;
    // another process taking it in between is unlikely on a test box.)
    let port = {
        let probe = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = scratch_file(
        "run.yaml",
        &format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:{port}]\n  io_memory: 256KiB\n\
             upstream:\n  servers: [\"{}\"]\n  timeout: 500ms\n\
             control:\n  enabled: false\n\
             log:\n  level: warn\n\
             dnssec:\n  mode: off\n",
            upstream.local_addr()
        ),
    );
    let started = Instant::now();
    let child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start heimdall");
    let pid = child.id();
    let mut guard = ChildGuard(Some(child));

    // Ask until it answers: it needs a moment to bind.
    let server = std::net::SocketAddr::from((LOOPBACK, port));
    let client = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let question = query(42, "host-5.zone.test.", RecordType::A, Some(1232));
    let mut buf = [0u8; 1500];
    let reply = loop {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "no answer within 2 s of starting heimdall"
        );
        if let Some(status) = guard.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("heimdall exited early: {status}");
        }
        client.send_to(&question, server).unwrap();
        match client.recv_from(&mut buf) {
            Ok((len, from)) if from == server => break Reply::check(buf[..len].to_vec()),
            // Not bound yet (a refused port, or nothing within 100 ms).
            _ => continue,
        }
    };
    reply.assert_answers(&question);
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_single_a(&reply, host_v4(5));

    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = guard
        .wait_for_exit(Duration::from_secs(5))
        .expect("heimdall must exit within 5 s of SIGTERM");
    let child = guard.0.take().unwrap();
    let stderr = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(upstream.queries_for("host-5.zone.test.") >= 1);
    upstream.stop();
    std::fs::remove_file(config).unwrap();
}

/// Two different ports no one listens on right now (bind both, note,
/// release: held together, they cannot be the same).
fn free_ports() -> (u16, u16) {
    let first = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let second = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    (
        first.local_addr().unwrap().port(),
        second.local_addr().unwrap().port(),
    )
}

/// Start the binary on `config` and wait until it answers `question`.
fn start_and_ask(
    config: &std::path::Path,
    server: std::net::SocketAddr,
    question: &[u8],
) -> (ChildGuard, Reply) {
    let started = Instant::now();
    let child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start heimdall");
    let mut guard = ChildGuard(Some(child));
    let client = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1500];
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "no answer within 3 s"
        );
        if let Some(status) = guard.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("heimdall exited early: {status}");
        }
        client.send_to(question, server).unwrap();
        if let Ok((len, from)) = client.recv_from(&mut buf)
            && from == server
        {
            return (guard, Reply::check(buf[..len].to_vec()));
        }
    }
}

fn ask(server: std::net::SocketAddr, question: &[u8]) -> Reply {
    common::Client::new(server).exchange(question)
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

#[test]
fn the_binary_reloads_on_sighup_serves_control_and_persists_its_cache() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let (dns_port, control_port) = free_ports();
    let cache_file = scratch_file("binary-cache.bin", "");
    std::fs::remove_file(&cache_file).unwrap();
    let yaml = |version: u8| {
        format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:{dns_port}]\n  io_memory: 256KiB\n\
             cache:\n  persist: \"{}\"\n\
             upstream:\n  servers: [\"{}\"]\n  timeout: 500ms\n\
             local:\n  records: [\"svc.lan. 60 IN A 10.0.0.{version}\"]\n\
             control:\n  listen: 127.0.0.1:{control_port}\n\
             log:\n  level: warn\n\
             dnssec:\n  mode: off\n",
            cache_file.display(),
            upstream.local_addr()
        )
    };
    let config = scratch_file("binary-ops.yaml", &yaml(1));
    let server = std::net::SocketAddr::from((LOOPBACK, dns_port));
    let control = std::net::SocketAddr::from((LOOPBACK, control_port));
    let svc = query(1, "svc.lan.", RecordType::A, Some(1232));
    let (mut guard, reply) = start_and_ask(&config, server, &svc);
    assert_single_a(&reply, std::net::Ipv4Addr::new(10, 0, 0, 1));
    let pid = guard.0.as_ref().unwrap().id();
    assert_single_a(
        &ask(server, &query(2, "host-5.zone.test.", RecordType::A, None)),
        host_v4(5),
    );
    assert_eq!(common::http::get_ok(control, "/health"), "ok\n");
    let metrics = common::http::get_ok(control, "/metrics");
    assert!(metrics.contains("heimdall_queries_total{core=\"0\",transport=\"udp\"}"));

    // SIGHUP: the edited file is read again.
    std::fs::write(&config, yaml(2)).unwrap();
    signal(pid, "HUP");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let reply = ask(server, &svc);
        if reply.hickory.answers.first().map(|r| r.data.clone())
            == Some(hickory_proto::rr::RData::A(
                std::net::Ipv4Addr::new(10, 0, 0, 2).into(),
            ))
        {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload");
        std::thread::sleep(Duration::from_millis(50));
    }

    // SIGTERM: a clean exit writes the cache file.
    signal(pid, "TERM");
    let status = guard.wait_for_exit(Duration::from_secs(5)).expect("exit");
    assert!(status.success(), "{status}");
    let saved = std::fs::read(&cache_file).expect("the cache file was written");
    assert!(!saved.is_empty());

    // A restart answers from the file; then kill -9 leaves it untouched.
    upstream.reset_stats();
    let (mut guard, reply) = start_and_ask(
        &config,
        server,
        &query(3, "host-5.zone.test.", RecordType::A, None),
    );
    assert_single_a(&reply, host_v4(5));
    assert_eq!(
        upstream.queries_for("host-5.zone.test."),
        0,
        "served from the file"
    );
    let pid = guard.0.as_ref().unwrap().id();
    signal(pid, "KILL");
    guard.wait_for_exit(Duration::from_secs(5)).expect("killed");
    assert_eq!(
        std::fs::read(&cache_file).unwrap(),
        saved,
        "kill -9 left the file as it was"
    );

    upstream.stop();
    std::fs::remove_file(config).unwrap();
    std::fs::remove_file(cache_file).unwrap();
}
