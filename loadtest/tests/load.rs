//! The load generator against in-test responders and the synthetic
//! upstream, over real sockets on 127.0.0.1: exact counts, loss, delay,
//! open-loop behaviour under a stall, verification of every kind of wrong
//! answer, the warm-up, the query cap, and the CLI's JSON, SVG, exit code
//! and query files. Rates are low (a few thousand per second) so the
//! assertions hold on a busy machine; every run is bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use heimdall_loadtest::load::workload::parse_mix;
use heimdall_loadtest::load::{self, Component, Kind, LoadConfig, Mode, Report, WorkloadConfig};
use heimdall_loadtest::{Behavior, Upstream, UpstreamConfig, UpstreamHandle, ZoneConfig};
use heimdall_wire::Rcode;
use socket2::{Domain, Protocol, Socket, Type};

// ---------------------------------------------------------------------------
// An in-test responder: one thread, one datagram at a time, whose replies a
// closure decides (none = drop; it may also sleep, to stall).
// ---------------------------------------------------------------------------

struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(mut reply: impl FnMut(u64, &[u8]) -> Vec<Vec<u8>> + Send + 'static) -> Self {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        // Room for the queries that pile up while the responder stalls.
        socket.set_recv_buffer_size(4 << 20).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let socket: UdpSocket = socket.into();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, received, dropped) = (
                Arc::clone(&stop),
                Arc::clone(&received),
                Arc::clone(&dropped),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let index = received.fetch_add(1, Ordering::Relaxed);
                    let replies = reply(index, &buf[..len]);
                    if replies.is_empty() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    for datagram in replies {
                        let _ = socket.send_to(&datagram, from);
                    }
                }
            })
        };
        Self {
            addr,
            stop,
            received,
            dropped,
            thread: Some(thread),
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a responder answers one query.
type Reply = fn(&[u8]) -> Vec<Vec<u8>>;

/// The query as its own answer: QR set.
fn reflect(query: &[u8]) -> Vec<u8> {
    let mut reply = query.to_vec();
    reply[2] |= 0x80;
    reply
}

fn with_rcode(mut reply: Vec<u8>, rcode: u8) -> Vec<u8> {
    reply[3] = (reply[3] & 0xf0) | rcode;
    reply
}

fn config(target: SocketAddr) -> LoadConfig {
    LoadConfig {
        target,
        mode: Mode::Open { rate: 4000.0 },
        workers: 1,
        sockets: 2,
        batch: 16,
        duration: Duration::from_millis(500),
        warmup: Duration::ZERO,
        timeout: Duration::from_millis(500),
        max_queries: 100_000,
        seed: 7,
        workload: WorkloadConfig {
            seed: 7,
            ..WorkloadConfig::default()
        },
        ..LoadConfig::default()
    }
}

fn run(config: &LoadConfig) -> Report {
    let report = load::run(config, &AtomicBool::new(false), |_| {}).unwrap();
    let counts = &report.counts;
    assert_eq!(
        counts.sent,
        counts.answered + counts.lost,
        "sent = answered + lost: {counts:?}"
    );
    assert_eq!(
        counts.scheduled,
        counts.sent + counts.unsent,
        "scheduled = sent + unsent: {counts:?}"
    );
    report
}

fn upstream(config: UpstreamConfig) -> UpstreamHandle {
    Upstream::start(config).unwrap()
}

fn workload(kind: Kind) -> WorkloadConfig {
    WorkloadConfig {
        components: vec![Component::new(kind)],
        seed: 7,
        ..WorkloadConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Counting
// ---------------------------------------------------------------------------

#[test]
fn counts_are_exact_against_a_reflector() {
    let responder = Responder::start(|_, query| vec![reflect(query)]);
    let report = run(&LoadConfig {
        mode: Mode::Max { window: 20 },
        max_queries: 5000,
        duration: Duration::from_secs(10),
        ..config(responder.addr)
    });
    let counts = &report.counts;
    assert_eq!(
        (counts.scheduled, counts.sent, counts.answered, counts.lost),
        (5000, 5000, 5000, 0)
    );
    assert_eq!(responder.received(), 5000);
    assert_eq!(counts.rcode_count(Rcode::NOERROR), 5000);
    assert_eq!(counts.bad_responses() + counts.late + counts.duplicate, 0);
    assert_eq!(report.loss, 0.0);
    assert_eq!(report.latency_us.samples, 5000);
    assert!(report.passed);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn a_dropped_fraction_is_reported_as_loss() {
    // Every tenth query is never answered.
    let responder = Responder::start(|index, query| {
        if index % 10 == 9 {
            Vec::new()
        } else {
            vec![reflect(query)]
        }
    });
    let report = run(&LoadConfig {
        timeout: Duration::from_millis(500),
        max_loss: Some(0.05),
        ..config(responder.addr)
    });
    let counts = &report.counts;
    assert_eq!(counts.scheduled, 2000, "4000/s for 0.5 s");
    assert_eq!(counts.sent, responder.received());
    assert_eq!(
        counts.lost,
        responder.dropped(),
        "exactly the dropped queries"
    );
    assert_eq!(counts.lost, 200);
    assert!((report.loss - 0.1).abs() < 1e-9, "{}", report.loss);
    assert!(!report.passed, "10% loss is over --max-loss 5%");
}

#[test]
fn a_delayed_responder_shows_in_the_median() {
    let upstream = upstream(UpstreamConfig {
        delay: Duration::from_millis(60),
        ..UpstreamConfig::default()
    });
    let report = run(&LoadConfig {
        mode: Mode::Open { rate: 1000.0 },
        ..config(upstream.local_addr())
    });
    let latency = &report.latency_us;
    assert_eq!(report.counts.answered, 500);
    assert!(
        latency.p50 >= 60_000.0 && latency.p50 < 160_000.0,
        "p50 {} us",
        latency.p50
    );
    assert!(latency.min >= 59_000.0, "min {} us", latency.min);
}

#[test]
fn open_loop_keeps_its_rate_through_a_stall_and_the_stall_shows() {
    // The responder stops reading for 400 ms, 300 ms into the run.
    let started = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let responder = {
        let started = Arc::clone(&started);
        let mut stalled = false;
        Responder::start(move |_, query| {
            let start = *started.lock().unwrap().get_or_insert_with(Instant::now);
            if !stalled && start.elapsed() >= Duration::from_millis(300) {
                stalled = true;
                std::thread::sleep(Duration::from_millis(400));
            }
            vec![reflect(query)]
        })
    };
    let report = run(&LoadConfig {
        duration: Duration::from_millis(1500),
        timeout: Duration::from_secs(3),
        ..config(responder.addr)
    });
    let counts = &report.counts;
    assert_eq!(counts.scheduled, 6000, "the schedule does not wait");
    assert_eq!(counts.sent, 6000);
    assert_eq!(counts.answered, 6000);
    // The first second holds the stall, and still sent its 4000.
    let first = report.series[0].sent;
    assert!((3990..=4010).contains(&first), "{:?}", report.series);
    let latency = &report.latency_us;
    assert!(latency.p50 < 100_000.0, "p50 {} us", latency.p50);
    assert!(latency.p99 >= 250_000.0, "p99 {} us", latency.p99);
    assert!(latency.max >= 350_000.0, "max {} us", latency.max);
}

#[test]
fn max_mode_keeps_its_window() {
    let upstream = upstream(UpstreamConfig {
        delay: Duration::from_millis(50),
        ..UpstreamConfig::default()
    });
    let report = run(&LoadConfig {
        mode: Mode::Max { window: 10 },
        sockets: 2,
        duration: Duration::from_millis(500),
        ..config(upstream.local_addr())
    });
    // 20 outstanding, each answered after 50 ms: about 400 per second.
    let answered = report.counts.answered;
    assert!((100..=240).contains(&answered), "answered {answered}");
    assert!(report.series.iter().all(|point| point.outstanding <= 20));
}

#[test]
fn late_answers_are_lost() {
    let upstream = upstream(UpstreamConfig {
        delay: Duration::from_millis(150),
        ..UpstreamConfig::default()
    });
    let report = run(&LoadConfig {
        mode: Mode::Open { rate: 500.0 },
        timeout: Duration::from_millis(50),
        ..config(upstream.local_addr())
    });
    let counts = &report.counts;
    assert_eq!(counts.answered, 0);
    assert_eq!(counts.lost, counts.sent);
    assert_eq!(counts.lost, 250);
    assert!(counts.late > 100, "late {}", counts.late);
    assert_eq!(report.loss, 1.0);
}

#[test]
fn the_warm_up_and_the_cap_are_kept() {
    let responder = Responder::start(|_, query| vec![reflect(query)]);
    let report = run(&LoadConfig {
        warmup: Duration::from_millis(300),
        duration: Duration::from_millis(500),
        ..config(responder.addr)
    });
    assert_eq!(report.counts.scheduled, 2000, "only after the warm-up");
    assert_eq!(responder.received(), 3200, "warm-up queries are sent");
    assert!(report.series[0].warmup);
    let total: u64 = report.series.iter().map(|point| point.sent).sum();
    assert_eq!(total, 3200, "the series covers the warm-up");

    let report = run(&LoadConfig {
        mode: Mode::Max { window: 50 },
        workers: 2,
        max_queries: 3001,
        duration: Duration::from_secs(10),
        ..config(responder.addr)
    });
    assert_eq!(report.counts.sent, 3001);
    assert!(report.elapsed_s < 5.0);
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

#[test]
fn wrong_ids_questions_and_duplicates_are_told_apart() {
    let cases: [(&str, Reply); 5] = [
        ("wrong id", |query| {
            let mut reply = reflect(query);
            reply[1] ^= 0x5a;
            vec![reply]
        }),
        ("wrong question", |query| {
            let mut reply = reflect(query);
            let last = 12 + 1; // first letter of the first label
            reply[last] = b'x';
            vec![reply]
        }),
        ("duplicate", |query| vec![reflect(query), reflect(query)]),
        ("malformed", |query| vec![reflect(query)[..7].to_vec()]),
        ("not a response", |query| vec![query.to_vec()]),
    ];
    for (name, reply) in cases {
        let responder = Responder::start(move |_, query| reply(query));
        let report = run(&LoadConfig {
            mode: Mode::Open { rate: 2000.0 },
            duration: Duration::from_millis(250),
            timeout: Duration::from_millis(300),
            ..config(responder.addr)
        });
        let counts = &report.counts;
        assert_eq!(counts.sent, 500, "{name}");
        match name {
            // A changed ID may, rarely, be that of another outstanding
            // query: then it is that query's wrong question.
            "wrong id" => assert_eq!(
                (counts.wrong_id + counts.wrong_question, counts.lost),
                (500, 500),
                "{name}"
            ),
            "wrong question" => {
                assert_eq!((counts.wrong_question, counts.lost), (500, 500), "{name}");
            }
            "duplicate" => assert_eq!((counts.duplicate, counts.answered), (500, 500), "{name}"),
            _ => assert_eq!((counts.malformed, counts.lost), (500, 500), "{name}"),
        }
        assert!(!report.warnings.is_empty(), "{name}");
    }
}

#[test]
fn rcodes_and_truncation_are_counted() {
    let responder = Responder::start(|index, query| {
        let reply = reflect(query);
        vec![match index % 4 {
            0 => with_rcode(reply, 1), // FORMERR
            1 => with_rcode(reply, 2), // SERVFAIL
            2 => {
                // FORMERR without the question, as some servers answer.
                let mut bare = with_rcode(reply, 1)[..12].to_vec();
                bare[4] = 0;
                bare[5] = 0;
                bare[10] = 0;
                bare[11] = 0;
                bare
            }
            _ => {
                let mut reply = reply;
                reply[2] |= 0x02; // TC
                reply
            }
        }]
    });
    let report = run(&config(responder.addr));
    let counts = &report.counts;
    assert_eq!(counts.answered, 2000);
    assert_eq!(counts.rcode_count(Rcode::FORMERR), 1000);
    assert_eq!(counts.rcode_count(Rcode::SERVFAIL), 500);
    assert_eq!(counts.rcode_count(Rcode::NOERROR), 500);
    assert_eq!(counts.truncated, 500);
    assert_eq!(report.rcodes["FORMERR"], 1000);
}

#[test]
fn workloads_get_the_answers_the_zone_gives() {
    let upstream = upstream(UpstreamConfig {
        zone: ZoneConfig {
            names: 1_000_000,
            ..ZoneConfig::default()
        },
        ..UpstreamConfig::default()
    });
    let base = LoadConfig {
        mode: Mode::Open { rate: 2000.0 },
        duration: Duration::from_millis(250),
        ..config(upstream.local_addr())
    };
    let cases: [(WorkloadConfig, Rcode, u64); 6] = [
        (workload(Kind::Hot), Rcode::NOERROR, 0),
        (
            WorkloadConfig {
                zone_names: 1_000_000,
                ..workload(Kind::Cold)
            },
            Rcode::NOERROR,
            0,
        ),
        (workload(Kind::Nxdomain), Rcode::NXDOMAIN, 0),
        (workload(Kind::Types), Rcode::NOERROR, 0),
        (workload(Kind::Large), Rcode::NOERROR, 0),
        (
            WorkloadConfig {
                components: parse_mix("large=1:noedns").unwrap(),
                ..workload(Kind::Large)
            },
            Rcode::NOERROR,
            500,
        ),
    ];
    for (workload, rcode, truncated) in cases {
        let name = workload.describe();
        let report = run(&LoadConfig {
            workload,
            ..base.clone()
        });
        let counts = &report.counts;
        assert_eq!(counts.answered, 500, "{name}: {counts:?}");
        assert_eq!(counts.rcode_count(rcode), 500, "{name}: {counts:?}");
        assert_eq!(counts.truncated, truncated, "{name}: {counts:?}");
        assert_eq!(counts.bad_responses(), 0, "{name}");
    }
    let stats = upstream.stats();
    assert_eq!(stats.received, 3000);
}

#[test]
fn upstream_failures_are_counted() {
    let upstream = upstream(UpstreamConfig {
        behavior: Behavior::ServFail,
        ..UpstreamConfig::default()
    });
    let base = LoadConfig {
        mode: Mode::Open { rate: 2000.0 },
        duration: Duration::from_millis(250),
        timeout: Duration::from_millis(300),
        ..config(upstream.local_addr())
    };
    let report = run(&base);
    assert_eq!(report.counts.rcode_count(Rcode::SERVFAIL), 500);
    upstream.set_behavior(Behavior::WrongQuestion);
    let report = run(&base);
    assert_eq!(
        (report.counts.wrong_question, report.counts.lost),
        (500, 500)
    );
    upstream.set_behavior(Behavior::WrongIdThenRight);
    let report = run(&base);
    assert_eq!(
        (
            report.counts.wrong_id + report.counts.wrong_question,
            report.counts.answered
        ),
        (500, 500)
    );
}

#[test]
fn sockets_spread_over_the_servers_reuseport_sockets() {
    let upstream = upstream(UpstreamConfig {
        threads: 2,
        behavior: Behavior::Echo,
        ..UpstreamConfig::default()
    });
    let report = run(&LoadConfig {
        sockets: 16,
        mode: Mode::Open { rate: 4000.0 },
        duration: Duration::from_millis(250),
        ..config(upstream.local_addr())
    });
    assert_eq!(report.counts.answered, 1000);
    let stats = upstream.stats();
    assert_eq!(stats.per_thread_received.len(), 2);
    assert!(
        stats.per_thread_received.iter().all(|&count| count > 0),
        "{stats:?}"
    );
}

#[test]
fn the_echo_upstream_reflects_every_query() {
    let upstream = upstream(UpstreamConfig {
        behavior: Behavior::Echo,
        tcp: true,
        ..UpstreamConfig::default()
    });
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Not even a DNS question: the reflector does not look.
    let query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00junk";
    client.send_to(query, upstream.local_addr()).unwrap();
    let mut buf = [0u8; 512];
    let len = client.recv(&mut buf).unwrap();
    assert_eq!(&buf[..len], &reflect(query)[..]);
    // A response is not answered.
    client
        .send_to(&reflect(query), upstream.local_addr())
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(client.recv(&mut buf).is_err());
    let stats = upstream.stats();
    assert_eq!((stats.received, stats.answered, stats.dropped), (2, 1, 1));
}

#[test]
fn nothing_listening_is_all_loss_and_says_so() {
    // A port that was free a moment ago; the kernel answers with ICMP.
    let addr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = run(&LoadConfig {
        mode: Mode::Open { rate: 1000.0 },
        duration: Duration::from_millis(200),
        timeout: Duration::from_millis(50),
        ..config(addr)
    });
    assert_eq!(report.counts.answered, 0);
    assert_eq!(report.loss, 1.0);
    assert!(report.warnings.iter().any(|w| w.contains("no query")));
}

#[test]
fn remote_targets_need_permission() {
    let config = LoadConfig {
        target: "192.0.2.1:53".parse().unwrap(),
        ..LoadConfig::default()
    };
    assert!(config.validate().unwrap_err().contains("loopback"));
    let err = load::run(&config, &AtomicBool::new(false), |_| {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn the_stop_flag_ends_a_run_early() {
    let responder = Responder::start(|_, query| vec![reflect(query)]);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let report = load::run(
        &LoadConfig {
            duration: Duration::from_secs(30),
            ..config(responder.addr)
        },
        &stop,
        |_| stop.store(true, Ordering::Relaxed),
    )
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        report.counts.sent,
        report.counts.answered + report.counts.lost
    );
}

// ---------------------------------------------------------------------------
// The command line: JSON schema, SVG, exit code, query files
// ---------------------------------------------------------------------------

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("heimdall-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heimdall-loadtest"))
}

fn number(value: &serde_json::Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

#[test]
fn cli_writes_json_that_follows_the_schema_and_an_svg() {
    let upstream = upstream(UpstreamConfig {
        drop_rate: 0.2,
        ..UpstreamConfig::default()
    });
    let json = scratch("report.json");
    let svg = scratch("report.svg");
    let output = binary()
        .args(["run", "--target", &upstream.local_addr().to_string()])
        .args(["--workload", "mixed", "--mix", "hot=3,nxdomain=1"])
        .args([
            "--rate",
            "2000",
            "--duration",
            "1200ms",
            "--warmup",
            "300ms",
        ])
        .args(["--timeout", "100ms", "--sockets", "2", "--max-loss", "0.05"])
        .args([
            "--json",
            json.to_str().unwrap(),
            "--svg",
            svg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "loss over --max-loss: {stderr}"
    );
    assert!(stdout.contains("latency (us)"), "{stdout}");
    assert!(
        stderr.contains("[0:01/0:02 ETA 0:01] sent"),
        "a progress line with the total and the time left: {stderr}"
    );
    assert!(stderr.contains("exceeds --max-loss"), "{stderr}");

    let text = std::fs::read_to_string(&json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["schema"], "heimdall-loadtest/1");
    let config = &value["config"];
    assert_eq!(config["mode"], "open");
    assert_eq!(number(config, "rate"), 2000.0);
    assert!(config["window"].is_null());
    assert_eq!(config["workload"], "mixed(hot=3,nxdomain=1)");
    for key in [
        "workers",
        "sockets_per_worker",
        "batch",
        "max_in_flight",
        "duration_s",
        "warmup_s",
        "timeout_ms",
        "max_queries",
        "names",
        "zone_names",
        "edns_size",
        "seed",
        "max_loss",
    ] {
        number(config, key);
    }
    assert!(config["cpus"].is_array());
    assert!(config["edns"].is_boolean() && config["dnssec_ok"].is_boolean());
    let counts = &value["counts"];
    for key in [
        "scheduled",
        "sent",
        "unsent",
        "answered",
        "lost",
        "late",
        "duplicate",
        "wrong_id",
        "wrong_question",
        "malformed",
        "truncated",
        "behind_schedule",
        "refused",
    ] {
        assert!(counts[key].is_u64(), "counts.{key}");
    }
    assert_eq!(number(counts, "scheduled"), 2400.0);
    assert_eq!(
        number(counts, "sent"),
        number(counts, "answered") + number(counts, "lost")
    );
    let rcodes = &value["rcodes"];
    for key in ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN"] {
        assert!(rcodes[key].is_u64(), "rcodes.{key}");
    }
    assert_eq!(
        number(rcodes, "NOERROR") + number(rcodes, "NXDOMAIN"),
        number(counts, "answered")
    );
    let loss = number(&value, "loss");
    assert!((0.1..0.3).contains(&loss), "loss {loss}");
    assert_eq!(value["passed"], false);
    for key in ["offered", "sent", "answered"] {
        number(&value["qps"], key);
    }
    assert_eq!(number(&value["qps"], "offered"), 2000.0);
    let latency = &value["latency_us"];
    for key in [
        "samples", "min", "mean", "p50", "p90", "p99", "p99_9", "max",
    ] {
        number(latency, key);
    }
    assert!(number(latency, "p50") <= number(latency, "p99"));
    assert!(number(latency, "p99") <= number(latency, "max"));
    let series = value["series"].as_array().unwrap();
    assert!((2..=3).contains(&series.len()), "{series:?}");
    assert_eq!(series[0]["warmup"], true);
    assert_eq!(series[1]["warmup"], false);
    for point in series {
        for key in [
            "second",
            "length_s",
            "scheduled",
            "sent",
            "answered",
            "lost",
            "unsent",
            "bad",
            "qps",
            "p50_us",
            "p99_us",
            "max_us",
            "outstanding",
        ] {
            number(point, key);
        }
    }
    let sent: f64 = series.iter().map(|point| number(point, "sent")).sum();
    assert_eq!(sent, 3000.0, "warm-up included");
    assert!(value["warnings"].is_array());
    let report = Report::from_json(&text).unwrap();
    assert_eq!(report.counts.scheduled, 2400);

    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg"), "{chart}");
    assert_eq!(chart.matches("<polyline").count(), 2);
    assert!(chart.trim_end().ends_with("</svg>"));

    let table = binary()
        .args(["table", &format!("first={}", json.display())])
        .arg(&json)
        .output()
        .unwrap();
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("first "), "{table}");
    assert!(table.contains("mixed(hot=3,nxdomain=1)"), "{table}");
    assert_eq!(table.lines().count(), 3, "{table}");
}

#[test]
fn one_query_file_drives_both_tools() {
    let file = scratch("queries.txt");
    let written = binary()
        .args([
            "queries",
            "--workload",
            "types",
            "--names",
            "5",
            "--count",
            "40",
        ])
        .args(["--out", file.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(written.success());
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 40);
    assert!(text.lines().all(|line| line.split(' ').count() == 2));
    assert!(text.contains(" MX\n") && text.contains(" AAAA\n"));
    let mx = text.lines().filter(|line| line.ends_with(" MX")).count() as u64;

    let upstream = upstream(UpstreamConfig::default());
    let report = run(&LoadConfig {
        mode: Mode::Max { window: 4 },
        max_queries: 400,
        duration: Duration::from_secs(5),
        workload: WorkloadConfig {
            components: vec![Component::new(Kind::File)],
            queries_file: Some(file),
            ..WorkloadConfig::default()
        },
        ..config(upstream.local_addr())
    });
    assert_eq!(report.counts.answered, 400);
    assert_eq!(report.counts.rcode_count(Rcode::NOERROR), 400);
    let stats = upstream.stats();
    assert_eq!(
        stats.qtype(heimdall_wire::RecordType::MX),
        mx * 10,
        "the file, in order, ten times"
    );
}

#[test]
fn cli_refuses_bad_settings() {
    for args in [
        &["run", "--target", "192.0.2.1:53"][..],
        &["run", "--rate", "0"],
        &["run", "--window", "0"],
        &["run", "--workload", "mixed", "--mix", "bogus=1"],
        &["run", "--workload", "file"],
    ] {
        let output = binary().args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
}

// ---------------------------------------------------------------------------
// Stream transports (TCP here; TLS and HTTPS against the real server in
// crates/server/tests/encrypted_load.rs)
// ---------------------------------------------------------------------------

fn tcp_config(target: SocketAddr) -> LoadConfig {
    LoadConfig {
        transport: load::Transport::Tcp,
        connections: 4,
        pipeline: 8,
        ..config(target)
    }
}

#[test]
fn pipelined_tcp_connections_count_exactly() {
    let upstream = upstream(UpstreamConfig {
        tcp: true,
        ..UpstreamConfig::default()
    });
    let report = run(&LoadConfig {
        mode: Mode::Max { window: 1 },
        max_queries: 3000,
        duration: Duration::from_secs(10),
        ..tcp_config(upstream.local_addr())
    });
    let counts = &report.counts;
    assert_eq!(
        (counts.scheduled, counts.sent, counts.answered, counts.lost),
        (3000, 3000, 3000, 0),
        "{report:#?}"
    );
    assert_eq!(counts.bad_responses() + counts.connection_errors, 0);
    assert_eq!(report.config.transport, "tcp");
    assert_eq!((report.config.connections, report.config.pipeline), (4, 8));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    // Open loop over TCP: the schedule is answered (a query due while its
    // connection has `pipeline` outstanding would be unsent: room enough
    // here for a busy machine's stalls).
    let report = run(&LoadConfig {
        pipeline: 256,
        ..tcp_config(upstream.local_addr())
    });
    let counts = &report.counts;
    assert!(counts.answered > 1000, "{report:#?}");
    assert_eq!(counts.lost, 0, "{report:#?}");
    assert!(counts.unsent * 20 < counts.scheduled, "{report:#?}");
}

#[test]
fn a_silent_tcp_server_is_loss_and_a_closed_port_is_connection_errors() {
    let upstream = upstream(UpstreamConfig {
        tcp: true,
        behavior: Behavior::Drop,
        ..UpstreamConfig::default()
    });
    let report = run(&LoadConfig {
        timeout: Duration::from_millis(200),
        ..tcp_config(upstream.local_addr())
    });
    assert_eq!(report.counts.answered, 0);
    assert!(report.counts.lost > 0, "{report:#?}");
    drop(upstream);
    // Nothing listens on a port just freed: every connect is refused.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let report = run(&LoadConfig {
        duration: Duration::from_millis(200),
        ..tcp_config(free)
    });
    assert_eq!(report.counts.sent, 0);
    assert!(report.counts.connection_errors > 0, "{report:#?}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("connection errors")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn stream_settings_are_checked() {
    let target: SocketAddr = "127.0.0.1:53".parse().unwrap();
    for (config, why) in [
        (
            LoadConfig {
                connections: 0,
                ..tcp_config(target)
            },
            "--connections",
        ),
        (
            LoadConfig {
                pipeline: 0,
                ..tcp_config(target)
            },
            "--pipeline",
        ),
        (
            LoadConfig {
                workers: 8,
                connections: 4,
                ..tcp_config(target)
            },
            "at least --workers",
        ),
        (
            LoadConfig {
                transport: load::Transport::Tls,
                ..tcp_config(target)
            },
            "--tls-ca",
        ),
    ] {
        let err = config.validate().unwrap_err();
        assert!(err.contains(why), "{err}");
    }
}
