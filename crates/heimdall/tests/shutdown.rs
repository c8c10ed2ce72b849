//! SIGTERM with 1,000 queries in flight, with the real binary (issue 14,
//! item 8): to a slow upstream (every client gets an answer or SERVFAIL
//! before heimdall exits), and to a silent one with a drain limit shorter
//! than the attempts (every client gets SERVFAIL when the drain ends, not
//! silence); either way heimdall exits with status 0.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

#[path = "../../server/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{LOOPBACK, Reply, query, scratch_file, start_upstream};
use heimdall_loadtest::upstream::zone::host_v4;
use heimdall_loadtest::{Behavior, UpstreamConfig};
use heimdall_wire::{Rcode, RecordType};

const BIN: &str = env!("CARGO_BIN_EXE_heimdall");
/// Queries in flight when SIGTERM arrives.
const IN_FLIGHT: u16 = 1000;
/// Client sockets the queries are spread over.
const CLIENTS: usize = 20;
/// The upstream's delay: longer than the 800 ms timeout, shorter than
/// timeout x attempts (2.4 s).
const UPSTREAM_DELAY: Duration = Duration::from_millis(1200);

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

/// What the clients heard after SIGTERM.
struct Heard {
    answered: usize,
    servfail: usize,
}

/// Start the binary against `upstream` with `extra` YAML under `server:`,
/// send [`IN_FLIGHT`] queries, SIGTERM it while they wait on the
/// upstream, and collect the replies; asserts that every client heard
/// back and that the exit status is 0.
fn sigterm_with_queries_in_flight(
    label: &str,
    upstream_config: UpstreamConfig,
    extra: &str,
) -> Heard {
    let mut upstream = start_upstream(upstream_config);
    let port = {
        let probe = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = scratch_file(
        &format!("shutdown-{label}.yaml"),
        &format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:{port}]\n  io_memory: 256KiB\n{extra}\
             upstream:\n  servers: [\"{}\"]\n  timeout: 800ms\n  attempts: 3\n\
             control:\n  enabled: false\n\
             log:\n  level: warn\n\
             dnssec:\n  mode: off\n",
            upstream.local_addr()
        ),
    );
    let child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start heimdall");
    let pid = child.id();
    let mut guard = ChildGuard(Some(child));
    let server = SocketAddr::from((LOOPBACK, port));
    let client = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 1500];

    // Ready when a built-in name (no upstream involved) is answered.
    let started = Instant::now();
    let ready = query(0xffff, "localhost.", RecordType::A, Some(1232));
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no answer within 10 s of starting heimdall"
        );
        if let Some(status) = guard.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("heimdall exited early: {status}");
        }
        client.send_to(&ready, server).unwrap();
        if let Ok((len, from)) = client.recv_from(&mut buf)
            && from == server
            && buf[..len].starts_with(&[0xff, 0xff])
        {
            break;
        }
    }

    // 1,000 distinct names, so 1,000 upstream queries, from 20 client
    // sockets: the replies come in a burst at the drain's end, more than
    // one socket's default receive buffer holds.
    let clients: Vec<UdpSocket> = (0..CLIENTS)
        .map(|_| {
            let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            socket
        })
        .collect();
    for id in 0..IN_FLIGHT {
        let question = query(id, &format!("host-{id}.zone.test."), RecordType::A, None);
        clients[usize::from(id) % clients.len()]
            .send_to(&question, server)
            .unwrap();
    }
    let sent_at = Instant::now();
    let all_forwarded = common::wait_until(Duration::from_secs(5), || {
        upstream.stats().received >= u64::from(IN_FLIGHT)
    });
    assert!(
        all_forwarded,
        "only {} of {IN_FLIGHT} queries reached the upstream",
        upstream.stats().received
    );
    assert!(
        sent_at.elapsed() < Duration::from_millis(800),
        "the queries must still be in flight at SIGTERM ({:?})",
        sent_at.elapsed()
    );
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let signalled = Instant::now();

    // Every client must hear back: an answer or SERVFAIL.
    let deadline = signalled + Duration::from_secs(8);
    let collectors: Vec<_> = clients
        .into_iter()
        .map(|client| {
            std::thread::spawn(move || {
                let expected = usize::from(IN_FLIGHT) / CLIENTS;
                let mut heard: Vec<(u16, Rcode)> = Vec::new();
                let mut buf = [0u8; 1500];
                while heard.len() < expected && Instant::now() < deadline {
                    let Ok((len, from)) = client.recv_from(&mut buf) else {
                        continue;
                    };
                    if from != server {
                        continue;
                    }
                    let reply = Reply::check(buf[..len].to_vec());
                    let id = reply.id();
                    if id >= IN_FLIGHT {
                        continue;
                    }
                    let rcode = reply.rcode();
                    assert!(
                        rcode == Rcode::NOERROR || rcode == Rcode::SERVFAIL,
                        "query {id}: {rcode:?}"
                    );
                    if rcode == Rcode::NOERROR {
                        common::assert_single_a(&reply, host_v4(u32::from(id)));
                    }
                    heard.push((id, rcode));
                }
                heard
            })
        })
        .collect();
    let mut replies: BTreeMap<u16, Rcode> = BTreeMap::new();
    for collector in collectors {
        replies.extend(collector.join().expect("collector"));
    }
    let answered = replies.values().filter(|&&r| r == Rcode::NOERROR).count();
    let servfail = replies.len() - answered;
    eprintln!(
        "after SIGTERM: {answered} answers, {servfail} SERVFAIL, {} silent, in {:?}",
        usize::from(IN_FLIGHT) - replies.len(),
        signalled.elapsed()
    );
    let status = guard
        .wait_for_exit(Duration::from_secs(8))
        .expect("heimdall must exit within 8 s of SIGTERM");
    let child = guard.0.take().unwrap();
    let stderr = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    assert_eq!(
        replies.len(),
        usize::from(IN_FLIGHT),
        "every client in flight at SIGTERM must get an answer or SERVFAIL; stderr:\n{stderr}"
    );
    assert!(status.success(), "exit status {status}; stderr:\n{stderr}");
    upstream.stop();
    std::fs::remove_file(config).unwrap();
    Heard { answered, servfail }
}

/// A slow upstream (1.2 s, with timeout 800 ms x 3): the default drain
/// covers every attempt, so the clients get its answers.
#[test]
fn sigterm_with_a_slow_upstream_answers_every_query_in_flight() {
    let heard = sigterm_with_queries_in_flight(
        "slow",
        UpstreamConfig {
            delay: UPSTREAM_DELAY,
            ..UpstreamConfig::default()
        },
        "",
    );
    assert!(heard.answered + heard.servfail == usize::from(IN_FLIGHT));
}

/// A silent upstream and a 300 ms drain limit (shorter than the 2.4 s of
/// attempts): every query still waiting when the drain ends gets
/// SERVFAIL.
#[test]
fn sigterm_sends_servfail_to_queries_still_waiting_when_the_drain_ends() {
    let started = Instant::now();
    let heard = sigterm_with_queries_in_flight(
        "drain",
        UpstreamConfig {
            behavior: Behavior::Drop,
            ..UpstreamConfig::default()
        },
        "  shutdown_grace: 300ms\n",
    );
    assert_eq!(heard.servfail, usize::from(IN_FLIGHT));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the drain limit must cut the 2.4 s of attempts short: {:?}",
        started.elapsed()
    );
}
