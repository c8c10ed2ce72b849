//! Operating the real binary (issue 19): the systemd notify protocol on a
//! socket the test binds (`NOTIFY_SOCKET`), `heimdall ctl` over the
//! control socket for every command, `check-config` loading zone files
//! and block lists (with the global `-c`), and the log formats.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

#[path = "../../server/tests/common/mod.rs"]
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{LOOPBACK, query, scratch_file, start_upstream};
use heimdall_loadtest::UpstreamConfig;
use heimdall_wire::RecordType;

const BIN: &str = env!("CARGO_BIN_EXE_heimdall");

/// Kills the child if the test fails before it exits.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

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

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Two different free TCP/UDP ports (held together while noted).
fn free_ports() -> (u16, u16) {
    let first = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    let second = std::net::TcpListener::bind((LOOPBACK, 0)).unwrap();
    (
        first.local_addr().unwrap().port(),
        second.local_addr().unwrap().port(),
    )
}

/// A scratch path that does not exist yet.
fn scratch_path(name: &str) -> PathBuf {
    let path = scratch_file(name, "");
    std::fs::remove_file(&path).unwrap();
    path
}

/// Wait until the server on `dns` answers a built-in name (no upstream
/// needed), failing if the child exits first.
fn wait_serving(guard: &mut ChildGuard, dns: SocketAddr) {
    let started = Instant::now();
    let client = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let question = query(7, "localhost.", RecordType::A, Some(1232));
    let mut buf = [0u8; 1500];
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no answer within 10 s"
        );
        if let Some(status) = guard.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("heimdall exited early: {status}");
        }
        client.send_to(&question, dns).unwrap();
        if let Ok((_, from)) = client.recv_from(&mut buf)
            && from == dns
        {
            return;
        }
    }
}

fn ctl(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("-c")
        .arg(config)
        .arg("ctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run heimdall ctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `heimdall ctl ARGS`, which must succeed; its stdout.
fn ctl_ok(config: &Path, args: &[&str]) -> String {
    let output = ctl(config, args);
    assert!(
        output.status.success(),
        "heimdall ctl {args:?}: {}\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn ctl_json(config: &Path, args: &[&str]) -> serde_json::Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let out = ctl_ok(config, &with_json);
    serde_json::from_str(&out).unwrap_or_else(|err| panic!("{args:?}: {err}: {out}"))
}

// ---- systemd ----

/// The datagrams on `socket` until `until` matches one (returned last),
/// within `timeout`.
fn notifications_until(
    socket: &UnixDatagram,
    timeout: Duration,
    until: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no matching notification within {timeout:?}; saw {seen:?}"
        );
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            let message = text(&buf[..n]);
            let done = until(&message);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

fn has_line(message: &str, line: &str) -> bool {
    message.lines().any(|l| l == line)
}

#[test]
fn systemd_hears_ready_status_watchdog_and_both_reload_outcomes() {
    let (dns_port, _) = free_ports();
    let notify_path = scratch_path("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    let yaml = |records: &str| {
        format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:{dns_port}]\n  io_memory: 256KiB\n\
             upstream:\n  servers: [127.0.0.1:9]\n\
             local:\n  records: [{records}]\n\
             control:\n  enabled: false\n  socket: \"\"\n\
             log:\n  level: warn\n"
        )
    };
    let config = scratch_file("systemd.yaml", &yaml("\"svc.lan. 60 IN A 10.0.0.1\""));
    let child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path)
        // A beat every 100 ms.
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(Some(child));
    let pid = guard.pid();
    let dns = SocketAddr::from((LOOPBACK, dns_port));

    let seen = notifications_until(&notify, Duration::from_secs(10), |m| has_line(m, "READY=1"));
    let ready = seen.last().unwrap();
    assert!(has_line(ready, "STATUS=serving on 1 core(s)"), "{ready:?}");
    assert!(
        !seen.iter().any(|m| m.contains("WATCHDOG=1")),
        "a beat before READY=1: {seen:?}"
    );
    // Ready means serving: the first query is answered at once.
    wait_serving(&mut guard, dns);

    // The watchdog beats, one per interval.
    let started = Instant::now();
    let mut beats = 0;
    while beats < 3 {
        notifications_until(&notify, Duration::from_secs(2), |m| m == "WATCHDOG=1");
        beats += 1;
    }
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "beats too fast"
    );

    // A good reload: RELOADING=1 with the monotonic clock, then READY=1.
    std::fs::write(&config, yaml("\"svc.lan. 60 IN A 10.0.0.2\"")).unwrap();
    signal(pid, "HUP");
    let seen = notifications_until(&notify, Duration::from_secs(10), |m| has_line(m, "READY=1"));
    let reloading = seen
        .iter()
        .find(|m| has_line(m, "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 before READY=1: {seen:?}"));
    let usec: u64 = reloading
        .lines()
        .find_map(|line| line.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC: {reloading:?}"))
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert!(
        seen.last().unwrap().contains("configuration generation 1"),
        "{seen:?}"
    );

    // A broken file: RELOADING=1, then READY=1 (it still serves) with the
    // failure in STATUS=.
    std::fs::write(&config, "upstream: {servers: [not an address]}\n").unwrap();
    signal(pid, "HUP");
    let seen = notifications_until(&notify, Duration::from_secs(10), |m| has_line(m, "READY=1"));
    assert!(seen.iter().any(|m| has_line(m, "RELOADING=1")), "{seen:?}");
    let status = seen.last().unwrap();
    assert!(
        status.contains("STATUS=serving on 1 core(s); the last reload failed"),
        "{status:?}"
    );
    assert!(status.contains("upstream.servers"), "{status:?}");
    wait_serving(&mut guard, dns);

    signal(pid, "TERM");
    notifications_until(&notify, Duration::from_secs(5), |m| {
        has_line(m, "STOPPING=1")
    });
    let status = guard.wait_for_exit(Duration::from_secs(10)).expect("exit");
    assert!(status.success(), "{status}");
    std::fs::remove_file(config).unwrap();
    std::fs::remove_file(notify_path).unwrap();
}

// ---- heimdall ctl ----

#[test]
fn heimdall_ctl_drives_every_command_and_reports_a_failed_reload() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let (dns_port, control_port) = free_ports();
    let socket = scratch_path("ctl.sock");
    let yaml = |level: &str| {
        format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:{dns_port}]\n  io_memory: 256KiB\n\
             upstream:\n  servers: [\"{}\"]\n  timeout: 500ms\n\
             control:\n  listen: 127.0.0.1:{control_port}\n  socket: \"{}\"\n\
             log:\n  level: {level}\n\
             dnssec:\n  mode: off\n",
            upstream.local_addr(),
            socket.display()
        )
    };
    let config = scratch_file("ctl.yaml", &yaml("warn"));
    let child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(Some(child));
    let dns = SocketAddr::from((LOOPBACK, dns_port));
    let control = SocketAddr::from((LOOPBACK, control_port));
    wait_serving(&mut guard, dns);
    let meta = std::fs::metadata(&socket).expect("the control socket exists");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), std::fs::metadata("/proc/self").unwrap().uid());

    // A name in the cache, from the upstream.
    let client = common::Client::new(dns);
    client.exchange(&query(1, "host-5.zone.test.", RecordType::A, None));

    // status
    let status = ctl_ok(&config, &["status"]);
    assert!(status.starts_with("heimdall 0.1.0"), "{status}");
    assert!(status.contains("1 core(s)"), "{status}");
    assert!(
        status.contains(&upstream.local_addr().to_string()),
        "{status}"
    );
    let status = ctl_json(&config, &["status"]);
    assert_eq!(status["cores"], 1);
    let first = &status["upstreams"][0];
    assert_eq!(first["upstream"], upstream.local_addr().to_string());
    // Measured (on loopback it may round to 0 ms), not null.
    assert!(first["srtt_ms"].as_f64().is_some(), "{status}");
    assert_eq!(first["consecutive_failures"], 0);

    // stats
    let stats = ctl_ok(&config, &["stats"]);
    assert!(stats.contains("cache.misses: "), "{stats}");
    let stats = ctl_json(&config, &["stats"]);
    assert!(
        stats["totals"]["cache"]["misses"].as_u64().unwrap() >= 1,
        "{stats}"
    );

    // cache lookup
    let found = ctl_ok(&config, &["cache", "lookup", "HOST-5.zone.test.", "A"]);
    assert!(found.contains("NOERROR positive, 1 record(s)"), "{found}");
    let found = ctl_json(&config, &["cache", "lookup", "host-5.zone.test"]);
    assert_eq!(found["entries"].as_array().unwrap().len(), 1, "{found}");
    let missing = ctl_ok(&config, &["cache", "lookup", "host-6.zone.test.", "AAAA"]);
    assert!(missing.contains("not cached"), "{missing}");

    // cache dump, flush, cache load: the entry comes back, and is
    // answered without asking the upstream.
    let dump = ctl_ok(&config, &["cache", "dump"]);
    assert!(dump.starts_with("; heimdall cache dump 1\n"), "{dump}");
    let line = dump
        .lines()
        .find(|line| line.starts_with("host-5.zone.test. A NOERROR positive "))
        .unwrap_or_else(|| panic!("no host-5 line: {dump}"));
    assert_eq!(line.split(' ').count(), 7, "{line}");
    let dump_file = scratch_file("ctl.dump", &dump);
    assert!(ctl_ok(&config, &["flush"]).contains("the whole cache"));
    let gone = ctl_ok(&config, &["cache", "lookup", "host-5.zone.test.", "A"]);
    assert!(gone.contains("not cached"), "{gone}");
    let loaded = ctl_ok(&config, &["cache", "load", dump_file.to_str().unwrap()]);
    assert_eq!(loaded, "loaded 1 entries into each of 1 core(s)\n");
    let back = ctl_ok(&config, &["cache", "lookup", "host-5.zone.test.", "A"]);
    assert!(back.contains("NOERROR positive"), "{back}");
    let asked = upstream.queries_for("host-5.zone.test.");
    client.exchange(&query(3, "host-5.zone.test.", RecordType::A, None));
    assert_eq!(
        upstream.queries_for("host-5.zone.test."),
        asked,
        "served from the loaded entry"
    );
    std::fs::write(
        &dump_file,
        "host-5.zone.test. A NOERROR positive 1 - AAAA\n",
    )
    .unwrap();
    let refused = ctl(&config, &["cache", "load", dump_file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("line 1"), "{refused:?}");
    std::fs::remove_file(dump_file).unwrap();

    // flush, by type, then by name, then everything
    let flushed = ctl_json(&config, &["flush", "host-5.zone.test.", "--type", "AAAA"]);
    assert_eq!(flushed["removed"], 0);
    let flushed = ctl_ok(&config, &["flush", "host-5.zone.test.", "--type", "A"]);
    assert!(flushed.contains("1 entries removed"), "{flushed}");
    let gone = ctl_ok(&config, &["cache", "lookup", "host-5.zone.test.", "A"]);
    assert!(gone.contains("not cached"), "{gone}");
    client.exchange(&query(2, "host-7.zone.test.", RecordType::A, None));
    let flushed = ctl_json(&config, &["flush", "zone.test."]);
    assert_eq!(flushed["removed"], 1);
    assert!(ctl_ok(&config, &["flush"]).contains("the whole cache"));
    let refused = ctl(&config, &["flush", "a..b"]);
    assert!(!refused.status.success());

    // top-queries: 640 queries for one name, sampled one in 64.
    for id in 0..640u16 {
        client.exchange(&query(id, "hot.zone.test.", RecordType::A, None));
    }
    let top = ctl_json(&config, &["top-queries", "--limit", "3"]);
    let rows = top["top"].as_array().unwrap();
    assert!(rows.len() <= 3, "{top}");
    assert_eq!(rows[0]["name"], "hot.zone.test.", "{top}");
    assert_eq!(rows[0]["type"], "A");
    let estimate = rows[0]["queries"].as_u64().unwrap();
    assert!((576..=704).contains(&estimate), "{top}");
    let top = ctl_ok(&config, &["top-queries"]);
    assert!(top.contains("hot.zone.test."), "{top}");

    // log-level
    let level = ctl_ok(&config, &["log-level", "debug"]);
    assert_eq!(level, "log level: warn -> debug\n");
    let level = ctl_json(&config, &["log-level", "warn"]);
    assert_eq!(level["previous"], "debug");
    let refused = ctl(&config, &["log-level", "loud"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("unknown level"),
        "{refused:?}"
    );

    // reload: success, then a broken file fails with exit status 1 and
    // the reason, and the server keeps serving.
    std::fs::write(&config, yaml("info")).unwrap();
    let reloaded = ctl_ok(&config, &["reload"]);
    assert!(
        reloaded.starts_with("reloaded: configuration generation 1"),
        "{reloaded}"
    );
    assert!(reloaded.contains("log: changed in the file"), "{reloaded}");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace("timeout: 500ms", "timeout: 5 parsecs"),
    )
    .unwrap();
    // The broken file still names its socket (read leniently).
    let failed = ctl(&config, &["reload"]);
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let stderr = text(&failed.stderr);
    assert!(stderr.contains("reload failed"), "{stderr}");
    assert!(stderr.contains("upstream.timeout"), "{stderr}");
    let status = ctl_json(&config, &["--socket", socket.to_str().unwrap(), "status"]);
    assert_eq!(status["reloads"]["failure"], 1);
    assert_eq!(status["generation"], 1);
    wait_serving(&mut guard, dns);

    // The HTTP listener serves monitoring only (no token configured).
    assert_eq!(common::http::request(control, "GET", "/health").0, 200);
    assert_eq!(common::http::request(control, "GET", "/metrics").0, 200);
    for (method, target) in [
        ("GET", "/stats"),
        ("GET", "/status"),
        ("POST", "/reload"),
        ("POST", "/cache/flush"),
        ("POST", "/log-level?level=trace"),
    ] {
        let (code, body) = common::http::request(control, method, target);
        assert_eq!(code, 403, "{method} {target}: {body}");
    }

    signal(guard.pid(), "TERM");
    let status = guard.wait_for_exit(Duration::from_secs(10)).expect("exit");
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the control socket is removed at exit");
    let gone = ctl(&config, &["--socket", socket.to_str().unwrap(), "status"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone.stderr).contains("cannot reach heimdall"),
        "{gone:?}"
    );
    upstream.stop();
    std::fs::remove_file(config).unwrap();
}

#[test]
fn the_http_listener_serves_every_route_with_the_token() {
    let (dns_port, control_port) = free_ports();
    let token = "0123456789abcdef-test";
    let config = scratch_file(
        "token.yaml",
        &format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:{dns_port}]\n  io_memory: 256KiB\n\
             upstream:\n  servers: [127.0.0.1:9]\n\
             control:\n  listen: 127.0.0.1:{control_port}\n  socket: \"\"\n  token: {token}\n\
             log:\n  level: warn\n"
        ),
    );
    let child = Command::new(BIN)
        .arg("-c")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut guard = ChildGuard(Some(child));
    wait_serving(&mut guard, SocketAddr::from((LOOPBACK, dns_port)));
    let control = SocketAddr::from((LOOPBACK, control_port));
    let send = |authorization: Option<&str>| {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(control).unwrap();
        let header = authorization
            .map(|value| format!("Authorization: {value}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET /status HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    assert!(send(None).starts_with("HTTP/1.1 401"), "{}", send(None));
    assert!(send(Some("Bearer wrong-token-of-length")).starts_with("HTTP/1.1 401"));
    let ok = send(Some(&format!("Bearer {token}")));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("\"uptime_seconds\""), "{ok}");
    signal(guard.pid(), "TERM");
    assert!(
        guard
            .wait_for_exit(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    std::fs::remove_file(config).unwrap();
}

// ---- check-config ----

fn heimdall(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run heimdall")
}

#[test]
fn check_config_loads_zone_files_and_block_lists_and_takes_the_global_c() {
    let zone = scratch_file(
        "check.zone",
        "$ORIGIN lan.\n$TTL 60\n@ IN SOA ns.lan. admin.lan. 1 3600 600 86400 60\nsvc IN A 10.0.0.1\n",
    );
    let list = scratch_file("check.list", "ads.example\n");
    let yaml = |zone: &Path, list: &Path| {
        format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:5353]\n\
             upstream:\n  servers: [192.0.2.53]\n\
             local:\n  zones: [{{name: lan., file: \"{}\"}}]\n\
             blocklist:\n  files: [{{path: \"{}\"}}]\n",
            zone.display(),
            list.display()
        )
    };
    let good = scratch_file("check-good.yaml", &yaml(&zone, &list));
    let good_arg = good.to_str().unwrap();
    for args in [
        vec!["check-config", good_arg],
        vec!["-c", good_arg, "check-config"],
        vec!["check-config", "-c", good_arg],
    ] {
        let output = heimdall(&args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(text(&output.stderr).contains("configuration is valid"));
    }

    // A zone file that does not parse fails the check, as it would the
    // start, naming the file.
    let broken_zone = scratch_file("broken.zone", "$ORIGIN lan.\nsvc IN A not-an-address\n");
    let bad = scratch_file("check-bad-zone.yaml", &yaml(&broken_zone, &list));
    for args in [
        vec!["check-config", bad.to_str().unwrap()],
        vec!["-c", bad.to_str().unwrap(), "check-config"],
    ] {
        let output = heimdall(&args);
        assert!(!output.status.success(), "{args:?} passed a broken zone");
        let stderr = text(&output.stderr);
        assert!(stderr.contains("broken.zone"), "{stderr}");
    }

    // So does a block list that is not there.
    let missing = Path::new("/nonexistent/heimdall-check.list");
    let bad_list = scratch_file("check-bad-list.yaml", &yaml(&zone, missing));
    let output = heimdall(&["-c", bad_list.to_str().unwrap(), "check-config"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("/nonexistent/heimdall-check.list"),
        "{output:?}"
    );

    // And a CPU the process may not use.
    let cpus = scratch_file(
        "check-cpus.yaml",
        "server:\n  cores: [4095]\nupstream:\n  servers: [192.0.2.53]\n",
    );
    let output = heimdall(&["-c", cpus.to_str().unwrap(), "check-config"]);
    assert!(!output.status.success(), "{output:?}");
    assert!(text(&output.stderr).contains("4095"), "{output:?}");

    for path in [zone, list, good, broken_zone, bad, bad_list, cpus] {
        std::fs::remove_file(path).unwrap();
    }
}

#[test]
fn without_config_the_default_path_or_the_embedded_default_is_logged() {
    if Path::new("/etc/heimdall/heimdall.yaml").exists() {
        eprintln!("skipped: /etc/heimdall/heimdall.yaml exists on this host");
        return;
    }
    // check-config without a file checks what a start would run on.
    let output = heimdall(&["check-config"]);
    let stderr = text(&output.stderr);
    if output.status.success() {
        assert!(stderr.contains("embedded default"), "{stderr}");
        assert!(
            stderr.contains("/etc/heimdall/heimdall.yaml does not exist"),
            "{stderr}"
        );
    } else {
        // No usable resolv.conf on this host: the error says so.
        assert!(stderr.contains("embedded default"), "{stderr}");
    }
}

// ---- logs ----

/// Run the server with `log` settings and the environment given, stderr
/// to a file; returns the file's lines after a clean stop.
fn log_lines(name: &str, log: &str, journal: bool) -> Vec<String> {
    let (dns_port, _) = free_ports();
    let config = scratch_file(
        &format!("{name}.yaml"),
        &format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:{dns_port}]\n  io_memory: 256KiB\n\
             upstream:\n  servers: [127.0.0.1:9]\n\
             control:\n  enabled: false\n  socket: \"\"\n\
             log:\n{log}"
        ),
    );
    let log_path = scratch_file(&format!("{name}.log"), "");
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log_path)
        .unwrap();
    let meta = file.metadata().unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("-c")
        .arg(&config)
        .env_remove("RUST_LOG")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file));
    if journal {
        command.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    let mut guard = ChildGuard(Some(command.spawn().unwrap()));
    wait_serving(&mut guard, SocketAddr::from((LOOPBACK, dns_port)));
    signal(guard.pid(), "TERM");
    assert!(
        guard
            .wait_for_exit(Duration::from_secs(10))
            .unwrap()
            .success()
    );
    let lines = std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    std::fs::remove_file(config).unwrap();
    std::fs::remove_file(log_path).unwrap();
    lines
}

#[test]
fn logs_carry_syslog_priorities_under_journald_and_json_when_asked() {
    let journal = log_lines("log-journal", "  level: info\n", true);
    assert!(!journal.is_empty());
    for line in &journal {
        assert!(
            line.starts_with("<6>") || line.starts_with("<4>") || line.starts_with("<3>"),
            "{line}"
        );
    }
    assert!(
        journal
            .iter()
            .any(|line| line.starts_with("<6>") && line.contains("serving")),
        "{journal:?}"
    );

    let plain = log_lines("log-text", "  level: info\n", false);
    assert!(plain.iter().all(|line| line.starts_with('[')), "{plain:?}");
    assert!(
        plain.iter().any(|line| line.contains(" INFO ")),
        "{plain:?}"
    );
    // The default validates, and the start log says what that asks of
    // the upstreams.
    assert!(
        plain.iter().any(
            |line| line.contains("DNSSEC validation on (dnssec.mode: validate")
                && line.contains("must pass DNSSEC records on")
        ),
        "{plain:?}"
    );

    let json = log_lines("log-json", "  level: info\n  format: json\n", false);
    assert!(!json.is_empty());
    for line in &json {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert!(
            value["ts"].is_string() && value["msg"].is_string(),
            "{line}"
        );
        assert!(value["target"].is_string(), "{line}");
    }
    assert!(json.iter().any(|line| line.contains("\"level\":\"info\"")));
    // warn: nothing at info is written.
    let quiet = log_lines("log-warn", "  level: warn\n  format: json\n", false);
    assert!(
        !quiet.iter().any(|line| line.contains("\"level\":\"info\"")),
        "{quiet:?}"
    );
}
