//! Operations end to end, on 127.0.0.1 with ephemeral ports: the control
//! endpoint (metrics, stats, health, flush), hot reload (HTTP and the
//! SIGHUP flag, under load, and a bad file), serve-stale, prefetch and
//! cache persistence across a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::http::{get_ok, metrics, request};
use common::*;
use heimdall_config::Config;
use heimdall_loadtest::upstream::zone::host_v4;
use heimdall_loadtest::{Behavior, UpstreamConfig, UpstreamHandle, ZoneConfig};
use heimdall_server::StartOptions;
use heimdall_testkit::prometheus::promtool_check;
use heimdall_wire::{Rcode, RecordType};

/// A config for `setup` with extra YAML sections appended.
fn config_with(setup: &Setup, extra: &str) -> Config {
    let yaml = format!("{}{extra}", setup.yaml());
    let mut config = Config::from_yaml_str(&yaml, "test.yaml")
        .unwrap_or_else(|err| panic!("test config refused: {err}\n{yaml}"));
    listen_on_any_port(&mut config);
    config
}

fn a_query(id: u16, name: &str) -> Vec<u8> {
    query(id, name, RecordType::A, Some(1232))
}

#[test]
fn metrics_and_stats_count_what_was_sent() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        cores: "[0, 1]",
        ..Setup::new(&[upstream.local_addr()])
    };
    let server = setup.start();
    let control = server.control_addr();
    // 40 distinct names, each asked three times from its own socket (so
    // both cores get traffic): 40 misses, the rest hits on some core.
    let mut sent = 0u64;
    for round in 0..3 {
        for i in 0..40u32 {
            let client = server.client();
            let question = a_query((round * 100 + i) as u16, &format!("host-{i}.zone.test."));
            let reply = client.exchange(&question);
            assert_single_a(&reply, host_v4(i));
            sent += 1;
        }
    }
    // One NXDOMAIN and one MX.
    let reply = server.client().exchange(&a_query(7, "missing.zone.test."));
    assert_eq!(reply.rcode(), Rcode::NXDOMAIN);
    let reply = server
        .client()
        .exchange(&query(8, "mail-1.zone.test.", RecordType::MX, None));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    sent += 2;

    let text = get_ok(control, "/metrics");
    let samples = metrics(&text);
    if let Some(verdict) = promtool_check(&text) {
        verdict.unwrap_or_else(|err| panic!("promtool check metrics failed:\n{err}\n{text}"));
    }
    let queries = samples.sum("heimdall_queries_total", &[("transport", "udp")]);
    assert_eq!(queries, sent as f64, "{text}");
    assert_eq!(
        samples.sum("heimdall_queries_total", &[("transport", "tcp")]),
        0.0
    );
    assert_eq!(samples.sum("heimdall_cores", &[]), 2.0);
    // Both cores report their own series.
    for core in ["0", "1"] {
        assert!(
            samples
                .family("heimdall_queries_total")
                .is_some_and(|family| family.samples.iter().any(|sample| sample
                    .labels
                    .get("core")
                    .map(String::as_str)
                    == Some(core))),
            "core {core} missing:\n{text}"
        );
    }
    assert_eq!(
        samples.sum("heimdall_queries_by_qtype_total", &[("qtype", "A")]),
        (sent - 1) as f64
    );
    assert_eq!(
        samples.sum("heimdall_queries_by_qtype_total", &[("qtype", "MX")]),
        1.0
    );
    assert_eq!(
        samples.sum("heimdall_responses_total", &[("rcode", "NXDOMAIN")]),
        1.0
    );
    assert_eq!(
        samples.sum("heimdall_responses_total", &[("rcode", "NOERROR")]),
        (sent - 1) as f64
    );
    let hits = samples.sum("heimdall_cache_hits_total", &[]);
    let misses = samples.sum("heimdall_cache_misses_total", &[]);
    assert_eq!(hits + misses, sent as f64, "{text}");
    // Every upstream query is counted for the upstream, and the latency
    // histogram has an observation per answered query.
    let upstream_label = upstream.local_addr().to_string();
    let by_upstream = [("upstream", upstream_label.as_str())];
    let upstream_queries = samples.sum("heimdall_upstream_queries_total", &by_upstream);
    assert_eq!(upstream_queries, upstream.stats().received as f64, "{text}");
    assert_eq!(
        samples.sum("heimdall_upstream_latency_seconds_count", &by_upstream),
        upstream_queries
    );
    assert!(samples.sum("heimdall_cache_entries", &[]) >= 42.0);
    // Every answer was timed: the misses by the resolver, the rest (hits,
    // the NXDOMAIN's second... ) per receive batch.
    let answered = samples.sum(
        "heimdall_answer_duration_seconds_count",
        &[("transport", "udp")],
    );
    assert_eq!(answered, sent as f64, "{text}");
    let timed_hits = samples.sum(
        "heimdall_answer_duration_seconds_count",
        &[("transport", "udp"), ("cache", "hit")],
    );
    assert_eq!(timed_hits, hits, "{text}");
    assert_eq!(
        samples.sum(
            "heimdall_answer_duration_seconds_bucket",
            &[("cache", "miss"), ("le", "+Inf")]
        ),
        misses
    );
    // The server's own families.
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    let build = samples.family("heimdall_build_info").unwrap();
    assert_eq!(build.samples.len(), 1);
    assert_eq!(build.samples[0].value, 1.0);
    assert_eq!(
        build.samples[0].labels.get("version").map(String::as_str),
        Some(version[0].1)
    );
    assert_eq!(
        samples.sum("heimdall_reloads_total", &[("result", "success")]),
        0.0
    );
    assert!(
        samples.sum("process_resident_memory_bytes", &[]) > 1e6,
        "{text}"
    );
    assert!(samples.sum("process_open_fds", &[]) >= 3.0);
    assert!(samples.sum("process_start_time_seconds", &[]) > 1.6e9);
    // Local data: the built-in localhost zone answers without an upstream.
    let reply = server.client().exchange(&a_query(9, "localhost."));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    let text = get_ok(control, "/metrics");
    let samples = metrics(&text);
    assert_eq!(samples.sum("heimdall_local_answers_total", &[]), 1.0);
    sent += 1;

    // /stats says the same in JSON.
    let stats: serde_json::Value = serde_json::from_str(&get_ok(control, "/stats")).unwrap();
    assert_eq!(stats["totals"]["queries"]["udp"], serde_json::json!(sent));
    assert_eq!(stats["cores"].as_array().unwrap().len(), 2);

    assert_eq!(get_ok(control, "/health"), "ok\n");
    let (status, _) = request(control, "GET", "/nope");
    assert_eq!(status, 404);
    let (status, _) = request(control, "POST", "/metrics");
    assert_eq!(status, 405);

    let reports = server.stop();
    assert_eq!(total(&reports, |r| r.resolver.queries), sent);
    upstream.stop();
}

/// One query over TCP (a length-prefixed message on a new connection).
fn tcp_exchange(server: std::net::SocketAddr, message: &[u8]) -> Vec<u8> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(server).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut framed = (message.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    stream.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).unwrap();
    reply
}

#[test]
fn metrics_per_core_false_sums_the_cores_and_tcp_is_counted() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    // steering: flow, so that hints are sent: the second TCP query may be
    // accepted by the other core, which must have the answer too.
    let setup = Setup {
        cores: "[0, 1]",
        steering: "flow",
        ..Setup::new(&[upstream.local_addr()])
    };
    let config = config_with(&setup, "control:\n  metrics_per_core: false\n");
    assert!(!config.control.metrics_per_core);
    let server = start_server(&config);
    let control = server.control_addr();
    for i in 0..6u32 {
        let reply = server
            .client()
            .exchange(&a_query(i as u16, &format!("host-{i}.zone.test.")));
        assert_single_a(&reply, host_v4(i));
    }
    // Twice over TCP: a miss, then a hit on one core or the other.
    for id in [100, 101] {
        let reply = tcp_exchange(server.addr, &a_query(id, "host-40.zone.test."));
        assert_eq!(reply.get(..2), Some(&id.to_be_bytes()[..]));
    }
    let text = get_ok(control, "/metrics");
    if let Some(verdict) = promtool_check(&text) {
        verdict.unwrap_or_else(|err| panic!("promtool check metrics failed:\n{err}\n{text}"));
    }
    assert!(!text.contains("core=\""), "{text}");
    let samples = metrics(&text);
    assert_eq!(samples.sum("heimdall_cores", &[]), 2.0);
    assert_eq!(
        samples.value("heimdall_queries_total", &[("transport", "udp")]),
        Some(6.0)
    );
    assert_eq!(
        samples.value("heimdall_queries_total", &[("transport", "tcp")]),
        Some(2.0)
    );
    assert_eq!(
        samples.value("heimdall_tcp_connections_accepted_total", &[]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(samples.value("heimdall_tcp_queries_total", &[]), Some(2.0));
    assert_eq!(
        samples.sum(
            "heimdall_answer_duration_seconds_count",
            &[("transport", "tcp")]
        ),
        2.0
    );
    assert_eq!(
        samples.value(
            "heimdall_answer_duration_seconds_count",
            &[("transport", "tcp"), ("cache", "miss")]
        ),
        Some(1.0)
    );
    // /stats still lists the cores.
    let stats: serde_json::Value = serde_json::from_str(&get_ok(control, "/stats")).unwrap();
    assert_eq!(stats["cores"].as_array().unwrap().len(), 2);
    assert_eq!(stats["totals"]["tcp"]["accepted"], 2);
    server.stop();
    upstream.stop();
}

#[test]
fn flush_drops_a_name_and_everything_below_it_on_every_core() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        cores: "[0, 1]",
        // Spread by flow, so that both cores see the name.
        steering: "flow",
        ..Setup::new(&[upstream.local_addr()])
    };
    let server = setup.start();
    let control = server.control_addr();
    let names = [
        "host-1.zone.test.",
        "host-2.zone.test.",
        "alias-3.zone.test.",
    ];
    for name in names {
        server.client().exchange(&a_query(1, name));
    }
    // Hints carry each answer to the other core.
    assert!(wait_until(Duration::from_secs(2), || {
        let samples = metrics(&get_ok(control, "/metrics"));
        samples.sum("heimdall_hints_received_total", &[]) >= 3.0
    }));
    let (status, body) = request(control, "POST", "/cache/flush?name=HOST-1.zone.test");
    assert_eq!(status, 200, "{body}");
    let flushed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(flushed["flushed"], "host-1.zone.test.");
    // The entry on both cores.
    assert_eq!(flushed["removed"], 2, "{body}");

    upstream.reset_stats();
    let hints_before =
        metrics(&get_ok(control, "/metrics")).sum("heimdall_hints_received_total", &[]);
    for name in names {
        server.client().exchange(&a_query(2, name));
    }
    // The refetched host-1 reaches the other core as a hint; a query that
    // lands there before the hint does would be a second miss (a race of
    // the test, not of the flush).
    assert!(wait_until(Duration::from_secs(2), || {
        let samples = metrics(&get_ok(control, "/metrics"));
        samples.sum("heimdall_hints_received_total", &[]) > hints_before
    }));
    for _ in 1..6 {
        for name in names {
            server.client().exchange(&a_query(2, name));
        }
    }
    assert_eq!(upstream.queries_for("host-1.zone.test."), 1);
    assert_eq!(upstream.queries_for("host-2.zone.test."), 0);

    // Everything below zone.test: all of it, on both cores.
    let (status, body) = request(control, "POST", "/cache/flush?name=zone.test.");
    assert_eq!(status, 200, "{body}");
    let flushed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(flushed["removed"].as_u64().unwrap() >= 4, "{body}");
    let (status, body) = request(control, "POST", "/cache/flush");
    assert_eq!(status, 200, "{body}");
    let (status, _) = request(control, "POST", "/cache/flush?name=bad..name");
    assert_eq!(status, 400);
    server.stop();
    upstream.stop();
}

/// The zone file for the reload tests: `svc.lan.` has an address that
/// says which version of the file is in force.
fn lan_zone(version: u8) -> String {
    format!(
        "$ORIGIN lan.\n$TTL 60\n@ IN SOA ns.lan. admin.lan. {version} 3600 600 86400 60\n\
         @ IN NS ns.lan.\nns IN A 10.0.0.53\nsvc IN A 10.0.0.{version}\n"
    )
}

/// The YAML of the reload tests: `setup` plus the zone file.
fn reload_yaml(setup: &Setup, zone: &std::path::Path) -> String {
    format!(
        "{}local:\n  zones: [{{name: lan., file: \"{}\"}}]\n",
        setup.yaml(),
        zone.display()
    )
}

fn file_source(path: std::path::PathBuf) -> StartOptions {
    StartOptions {
        reload_source: Some(Arc::new(move || {
            let mut config = Config::load(&path).map_err(|err| err.to_string())?;
            listen_on_any_port(&mut config);
            Ok(config)
        })),
    }
}

#[test]
fn reload_swaps_local_data_under_load_and_a_bad_file_keeps_serving() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        cores: "[0, 1]",
        ..Setup::new(&[upstream.local_addr()])
    };
    let zone = scratch_file("lan.zone", &lan_zone(1));
    let path = scratch_file("reload.yaml", &reload_yaml(&setup, &zone));
    let mut config = Config::load(&path).unwrap();
    listen_on_any_port(&mut config);
    let server = start_server_with(&config, file_source(path.clone()));
    let control = server.control_addr();
    let addr = server.addr;
    assert_single_a(
        &server.client().exchange(&a_query(1, "svc.lan.")),
        Ipv4Addr::new(10, 0, 0, 1),
    );

    // Load: clients ask for the local name and a cached upstream name
    // without pause while the reloads happen; every query must be
    // answered correctly.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..2)
        .map(|thread| {
            let (stop, failures, answered) = (
                Arc::clone(&stop),
                Arc::clone(&failures),
                Arc::clone(&answered),
            );
            std::thread::spawn(move || {
                let client = Client::new(addr);
                let mut id = 0u16;
                while !stop.load(Ordering::Relaxed) {
                    id = id.wrapping_add(1);
                    let name = if id.is_multiple_of(2) {
                        "svc.lan."
                    } else {
                        "host-9.zone.test."
                    };
                    client.send(&a_query(id, name));
                    match client.recv_within(Duration::from_secs(2)).map(Reply::check) {
                        Some(reply) if reply.rcode() == Rcode::NOERROR && reply.id() == id => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            let rcode = other.map(|reply| reply.rcode());
                            eprintln!("thread {thread}: query {id} for {name}: {rcode:?}");
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();

    std::thread::sleep(Duration::from_millis(200));
    // Only the zone file changes: the YAML is the same.
    std::fs::write(&zone, lan_zone(2)).unwrap();
    let (status, body) = request(control, "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["status"], "ok");
    assert_eq!(report["generation"], 1);
    assert!(
        report["changes"]
            .to_string()
            .contains("zone and block list files: re-read"),
        "{body}"
    );
    assert_single_a(
        &server.client().exchange(&a_query(2, "svc.lan.")),
        Ipv4Addr::new(10, 0, 0, 2),
    );

    // A broken file: an error in the response, and the old config stays.
    std::fs::write(&path, "upstream: {servers: [not an address]}\n").unwrap();
    let (status, body) = request(control, "POST", "/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("upstream.servers"), "{body}");
    assert_single_a(
        &server.client().exchange(&a_query(3, "svc.lan.")),
        Ipv4Addr::new(10, 0, 0, 2),
    );

    // A broken zone file: refused the same way, naming the file.
    std::fs::write(&path, reload_yaml(&setup, &zone)).unwrap();
    std::fs::write(&zone, "svc IN A not-an-address\n").unwrap();
    let (status, body) = request(control, "POST", "/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("lan.zone"), "{body}");
    assert_single_a(
        &server.client().exchange(&a_query(5, "svc.lan.")),
        Ipv4Addr::new(10, 0, 0, 2),
    );

    // The SIGHUP path: what the binary does when the signal comes.
    std::fs::write(&zone, lan_zone(3)).unwrap();
    server.request_reload();
    assert!(
        wait_until(Duration::from_secs(3), || {
            let reply = server.client().exchange(&a_query(4, "svc.lan."));
            reply
                .hickory
                .answers
                .first()
                .map(|record| record.data.clone())
                == Some(hickory_proto::rr::RData::A(
                    Ipv4Addr::new(10, 0, 0, 3).into(),
                ))
        }),
        "SIGHUP reload did not take effect"
    );

    // A restart-only change is reported, not applied.
    let changed = reload_yaml(&setup, &zone).replace("udp_recv_batch: 32", "udp_recv_batch: 16");
    std::fs::write(&path, changed).unwrap();
    // The SIGHUP reload may still be finishing on the other core after
    // this one answers from the new data: a reload is refused meanwhile.
    let mut response = request(control, "POST", "/reload");
    let started = Instant::now();
    while response.1.contains("already in progress") && started.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
        response = request(control, "POST", "/reload");
    }
    let (status, body) = response;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("server: changed in the file, needs a restart"),
        "{body}"
    );
    // The reloads are counted: the two broken files failed, the rest took.
    let text = get_ok(control, "/metrics");
    let samples = metrics(&text);
    let reloads = |result| samples.sum("heimdall_reloads_total", &[("result", result)]);
    assert_eq!(reloads("failure"), 2.0, "{text}");
    assert!(reloads("success") >= 3.0, "{text}");
    let last = samples.sum("heimdall_last_reload_success_timestamp_seconds", &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - 60.0..=now + 1.0).contains(&last), "{last} vs {now}");

    stop.store(true, Ordering::Relaxed);
    for thread in load {
        thread.join().unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "queries failed during reloads"
    );
    assert!(answered.load(Ordering::Relaxed) > 100);
    server.stop();
    upstream.stop();
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(zone).unwrap();
}

#[test]
fn reload_purges_cached_names_that_are_now_blocked() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup::new(&[upstream.local_addr()]);
    let list = scratch_file("purge.list", "host-5.zone.test\n");
    let path = scratch_file("purge.yaml", &setup.yaml());
    let mut config = Config::load(&path).unwrap();
    listen_on_any_port(&mut config);
    let server = start_server_with(&config, file_source(path.clone()));
    for name in ["host-5.zone.test.", "host-6.zone.test."] {
        assert_eq!(
            server.client().exchange(&a_query(1, name)).rcode(),
            Rcode::NOERROR
        );
    }
    std::fs::write(
        &path,
        format!(
            "{}blocklist:\n  files: [{{path: \"{}\"}}]\n",
            setup.yaml(),
            list.display()
        ),
    )
    .unwrap();
    let (status, body) = request(server.control_addr(), "POST", "/reload");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("1 entries the new policy answers differently"),
        "{body}"
    );
    let blocked = server.client().exchange(&a_query(2, "host-5.zone.test."));
    assert_eq!(blocked.rcode(), Rcode::NXDOMAIN);
    upstream.reset_stats();
    let kept = server.client().exchange(&a_query(3, "host-6.zone.test."));
    assert_single_a(&kept, host_v4(6));
    assert_eq!(upstream.stats().received, 0, "the other entry survived");
    server.stop();
    upstream.stop();
    std::fs::remove_file(path).unwrap();
    std::fs::remove_file(list).unwrap();
}

/// A server whose answers live 1 s (`cache.max_ttl`), with `timeout` x 1
/// attempt upstream and `change` applied to its config, that has cached
/// `host-1.zone.test.`; and its upstream and a client.
fn cached_for_a_second(
    timeout: &'static str,
    change: impl FnOnce(&mut Config),
) -> (UpstreamHandle, TestServer, Client) {
    let upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        timeout,
        attempts: 1,
        ..Setup::new(&[upstream.local_addr()])
    };
    let config = config_with(&setup, "").tap(|config| {
        config.cache.max_ttl = Duration::from_secs(1);
        change(config);
    });
    let server = start_server(&config);
    let client = server.client();
    assert_single_a(
        &client.exchange(&a_query(1, "host-1.zone.test.")),
        host_v4(1),
    );
    (upstream, server, client)
}

#[test]
fn stale_answers_are_served_when_the_upstream_dies() {
    // Stale data may be served for an hour.
    let (mut upstream, server, client) = cached_for_a_second("200ms", |config| {
        config.cache.stale_max_age = Duration::from_secs(3_600);
    });
    upstream.set_behavior(Behavior::Drop);
    std::thread::sleep(Duration::from_millis(1_200));
    let started = Instant::now();
    let reply = client.exchange(&a_query(2, "host-1.zone.test."));
    assert_single_a(&reply, host_v4(1));
    assert_eq!(reply.answer_ttls(), vec![30], "RFC 8767: stale TTL 30");
    assert_eq!(reply.ede_codes(), vec![3], "EDE 3 Stale Answer");
    assert!(started.elapsed() < Duration::from_secs(1));
    // The failure is remembered: the next query is answered stale at once.
    upstream.reset_stats();
    let started = Instant::now();
    let reply = client.exchange(&a_query(3, "host-1.zone.test."));
    assert_eq!(reply.ede_codes(), vec![3]);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(upstream.stats().received, 0);
    // A name never seen still fails.
    let reply = client.exchange(&a_query(4, "host-2.zone.test."));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    let reports = server.stop();
    assert!(total(&reports, |r| r.resolver.stale_served) >= 2);
    upstream.stop();
}

#[test]
fn a_slow_upstream_gets_stale_data_to_the_client_after_the_client_timeout() {
    let (mut upstream, server, client) = cached_for_a_second("3s", |config| {
        config.cache.stale_client_timeout = Duration::from_millis(300);
    });
    upstream.set_delay(Duration::from_millis(1_500));
    std::thread::sleep(Duration::from_millis(1_100));
    let started = Instant::now();
    let reply = client.exchange(&a_query(2, "host-1.zone.test."));
    let waited = started.elapsed();
    assert_eq!(reply.ede_codes(), vec![3]);
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_millis(1_000),
        "{waited:?}"
    );
    // The upstream's late answer still refreshes the cache.
    upstream.set_delay(Duration::ZERO);
    assert!(wait_until(Duration::from_secs(3), || {
        let reply = client.exchange(&a_query(3, "host-1.zone.test."));
        reply.ede_codes().is_empty() && reply.answer_ttls() == vec![1]
    }));
    server.stop();
    upstream.stop();
}

#[test]
fn prefetch_refreshes_a_popular_entry_before_it_expires() {
    let mut upstream = upstream_with_zone(ZoneConfig {
        ttl: 2,
        ..ZoneConfig::default()
    });
    let setup = Setup::new(&[upstream.local_addr()]);
    let config = config_with(&setup, "").tap(|config| {
        config.cache.prefetch_threshold = 50;
        config.cache.prefetch_min_hits = 2;
    });
    let server = start_server(&config);
    let client = server.client();
    // Ask every 100 ms for 4.5 s: the 2 s answer is refreshed in its
    // second half each time, so no query ever misses after the first.
    let started = Instant::now();
    let mut id = 0u16;
    while started.elapsed() < Duration::from_millis(4_500) {
        id += 1;
        let asked = Instant::now();
        let reply = client.exchange(&a_query(id, "host-4.zone.test."));
        assert_single_a(&reply, host_v4(4));
        assert!(reply.answer_ttls()[0] >= 1, "never an expired answer");
        assert!(asked.elapsed() < Duration::from_millis(300));
        std::thread::sleep(Duration::from_millis(100));
    }
    let refreshes = upstream.queries_for("host-4.zone.test.");
    assert!(refreshes >= 3, "the upstream saw {refreshes} queries");
    let reports = server.stop();
    assert_eq!(
        total(&reports, |r| r.resolver.cache_misses),
        1,
        "only the first query missed"
    );
    assert!(total(&reports, |r| r.resolver.prefetches) >= 2);
    upstream.stop();
}

#[test]
fn the_cache_survives_a_restart() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        cores: "[0, 1]",
        ..Setup::new(&[upstream.local_addr()])
    };
    let file = scratch_file("cache.bin", "");
    std::fs::remove_file(&file).unwrap();
    let config = config_with(&setup, "").tap(|config| config.cache.persist = Some(file.clone()));

    let server = start_server(&config);
    for i in 0..20u32 {
        assert_single_a(
            &server
                .client()
                .exchange(&a_query(i as u16, &format!("host-{i}.zone.test."))),
            host_v4(i),
        );
    }
    server.stop();
    assert!(file.exists(), "the cache file is written at shutdown");
    let leftovers = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("cache.bin.tmp")
        })
        .count();
    assert_eq!(leftovers, 0);

    std::thread::sleep(Duration::from_millis(1_100));
    upstream.reset_stats();
    let server = start_server(&config);
    for i in 0..20u32 {
        let reply = server
            .client()
            .exchange(&a_query(i as u16, &format!("host-{i}.zone.test.")));
        assert_single_a(&reply, host_v4(i));
        let ttl = reply.answer_ttls()[0];
        assert!(ttl < 300, "the time down is taken off the TTL: {ttl}");
    }
    assert_eq!(
        upstream.stats().received,
        0,
        "answered from the loaded cache"
    );
    server.stop();

    // A corrupt file is ignored with a warning: the server starts cold.
    std::fs::write(&file, b"garbage, not a cache").unwrap();
    let server = start_server(&config);
    assert_single_a(
        &server.client().exchange(&a_query(1, "host-1.zone.test.")),
        host_v4(1),
    );
    assert_eq!(upstream.queries_for("host-1.zone.test."), 1);
    server.stop();
    std::fs::remove_file(&file).unwrap();
    upstream.stop();
}

/// `value.tap(|v| ...)`: change a value in place and keep it.
trait Tap: Sized {
    fn tap(mut self, change: impl FnOnce(&mut Self)) -> Self {
        change(&mut self);
        self
    }
}

impl<T> Tap for T {}
