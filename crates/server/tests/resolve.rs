//! End-to-end tests of the server's resolution path over real UDP on
//! 127.0.0.1: caching (positive and negative), coalescing, hints between
//! cores, UDP size limits and the embedded default configuration.
//!
//! Each test starts its own synthetic upstream (heimdall-loadtest) and its
//! own server on ports the kernel picks, and stops both. Every reply is
//! parsed by heimdall-wire and hickory-proto and the two must agree
//! (`common::Reply::check`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::{get_ok, metrics};
use common::{
    Client, Reply, Setup, ask_directly, assert_single_a, query, start_server, start_upstream, total,
};
use heimdall_config::{Config, DEFAULT_CONFIG_YAML};
use heimdall_loadtest::upstream::zone::{BIG_TXT_RECORDS, host_v4};
use heimdall_loadtest::{UpstreamConfig, ZoneConfig};
use heimdall_wire::{Rcode, RecordType, Section};

const EDNS: Option<u16> = Some(1232);

/// The answer, authority and additional RRsets (without TTLs) of `got`
/// equal those of `expected`.
fn assert_same_rrsets(got: &Reply, expected: &Reply, what: &str) {
    for section in [Section::Answer, Section::Authority, Section::Additional] {
        assert_eq!(
            got.rrsets(section),
            expected.rrsets(section),
            "{what}: {section:?} differs from the upstream's"
        );
    }
}

/// A miss is forwarded and its answer equals the upstream's; the same
/// question again is answered from the cache (the upstream sees each name
/// once), with the client's letter case, and with TTLs lowered by the time
/// spent in the cache.
#[test]
fn miss_then_hit_from_cache_with_decreasing_ttl() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let cases: [(&str, &str, RecordType); 5] = [
        ("host-1.zone.test.", "HoSt-1.ZONE.test.", RecordType::A),
        ("host-2.zone.test.", "host-2.zone.TEST.", RecordType::MX),
        ("alias-3.zone.test.", "ALIAS-3.zone.test.", RecordType::A),
        ("host-4.zone.test.", "Host-4.Zone.Test.", RecordType::TXT),
        ("host-5.zone.test.", "host-5.zone.test.", RecordType::AAAA),
    ];
    // What the upstream itself says, asked directly.
    let direct: Vec<Reply> = cases
        .iter()
        .zip(1u16..)
        .map(|(&(name, _, qtype), id)| {
            ask_directly(upstream.local_addr(), &query(id, name, qtype, EDNS))
        })
        .collect();
    for reply in &direct {
        assert_eq!(reply.rcode(), Rcode::NOERROR);
        assert!(!reply.hickory.answers.is_empty());
    }
    upstream.reset_stats();

    let server = Setup::new(&[upstream.local_addr()]).start();
    let client = server.client();
    let mut first_ttls = Vec::new();
    for ((&(name, _, qtype), expected), id) in cases.iter().zip(&direct).zip(100u16..) {
        let reply = client.exchange(&query(id, name, qtype, EDNS));
        assert_eq!(reply.rcode(), Rcode::NOERROR, "{name}");
        assert!(!reply.truncated());
        assert!(reply.hickory.metadata.recursion_available, "RA");
        assert!(
            !reply.hickory.metadata.authoritative,
            "a forwarder is not authoritative"
        );
        assert_same_rrsets(&reply, expected, name);
        let ttls = reply.answer_ttls();
        assert!(
            ttls.iter().all(|&ttl| (299..=300).contains(&ttl)),
            "{name}: a fresh answer carries the zone TTL, got {ttls:?}"
        );
        assert_eq!(upstream.queries_for(name), 1, "{name} forwarded once");
        first_ttls.push(ttls);
    }

    std::thread::sleep(Duration::from_millis(1_200));

    for (((&(name, mixed_case, qtype), expected), first), id) in
        cases.iter().zip(&direct).zip(&first_ttls).zip(200u16..)
    {
        // `exchange` checks that the question comes back in the client's
        // own letter case.
        let reply = client.exchange(&query(id, mixed_case, qtype, EDNS));
        assert_eq!(reply.rcode(), Rcode::NOERROR, "{name}");
        assert_same_rrsets(&reply, expected, name);
        let ttls = reply.answer_ttls();
        assert_eq!(ttls.len(), first.len());
        for (now, before) in ttls.iter().zip(first) {
            assert!(
                now < before && *now + 3 >= *before,
                "{name}: TTL {now} after 1.2 s in the cache, was {before}"
            );
        }
        assert_eq!(
            upstream.queries_for(name),
            1,
            "{name}: a cached answer must not reach the upstream"
        );
    }

    let reports = server.stop();
    upstream.stop();
    assert_eq!(total(&reports, |r| r.resolver.cache_misses), 5);
    assert_eq!(total(&reports, |r| r.resolver.cache_hits), 5);
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 5);
    assert_eq!(
        upstream.stats().received,
        5,
        "nothing else reached the upstream"
    );
}

/// 100 clients ask the same question while the upstream is slow: one
/// upstream query, 100 correct answers.
#[test]
fn concurrent_identical_queries_are_coalesced() {
    const CLIENTS: u16 = 100;
    const NAME: &str = "host-7.zone.test.";
    let mut upstream = start_upstream(UpstreamConfig {
        delay: Duration::from_millis(200),
        ..UpstreamConfig::default()
    });
    let expected = ask_directly(upstream.local_addr(), &query(1, NAME, RecordType::A, EDNS));
    upstream.reset_stats();

    let server = Setup::new(&[upstream.local_addr()]).start();
    let clients: Vec<Client> = (0..CLIENTS).map(|_| server.client()).collect();
    let queries: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|i| query(1000 + i, NAME, RecordType::A, EDNS))
        .collect();
    let started = Instant::now();
    for (client, query) in clients.iter().zip(&queries) {
        client.send(query);
    }
    let sent_in = started.elapsed();
    for (client, query) in clients.iter().zip(&queries) {
        let reply = client.reply_to(query);
        assert_eq!(reply.rcode(), Rcode::NOERROR);
        assert_same_rrsets(&reply, &expected, NAME);
        assert_single_a(&reply, host_v4(7));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "the answers cannot come before the upstream's 200 ms delay"
    );
    assert_eq!(upstream.queries_for(NAME), 1, "exactly one upstream query");

    let reports = server.stop();
    upstream.stop();
    assert!(
        sent_in < Duration::from_millis(150),
        "sending took {sent_in:?}: the queries did not overlap the upstream delay"
    );
    assert_eq!(total(&reports, |r| r.resolver.queries), u64::from(CLIENTS));
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 1);
    assert_eq!(
        total(&reports, |r| r.resolver.cache_misses),
        u64::from(CLIENTS)
    );
    assert_eq!(
        total(&reports, |r| r.resolver.coalesced),
        u64::from(CLIENTS - 1)
    );
}

/// With two cores, an answer one core got from upstream is served from
/// cache by the other, through a cache-fill hint.
///
/// The test cannot choose which core a datagram reaches: SO_REUSEPORT
/// hashes the source address and port. So it resolves the name once (on
/// whichever core that client hashes to, call it X), then asks again from
/// 64 more source ports, which spread over both cores, and reads each
/// core's counters after stopping. That proves the hint path because:
/// the upstream saw one query and exactly one cache miss happened in all,
/// on X; the other core Y received some of the 64 queries (else the test
/// says so: the chance that 64 sources all hash to X is 2^-64) and
/// answered every one of them from its cache without a miss. Cores share
/// no cache, so Y's cache can only hold the answer because X's hint was
/// stored there, which Y's `hints_in`/`hints_stored` confirm.
#[test]
fn a_second_core_answers_from_a_hint() {
    const NAME: &str = "host-9.zone.test.";
    const SOURCES: u16 = 64;
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = Setup {
        cores: "[0, 1]",
        hints: true,
        // Spread by flow, so that both cores see the name.
        steering: "flow",
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();

    let first = server
        .client()
        .exchange(&query(1, NAME, RecordType::A, EDNS));
    assert_eq!(first.rcode(), Rcode::NOERROR);
    // The hint travels over a channel between two executors; give it a
    // moment so that the other core does not race it to the upstream.
    std::thread::sleep(Duration::from_millis(200));

    let clients: Vec<Client> = (0..SOURCES).map(|_| server.client()).collect();
    let queries: Vec<Vec<u8>> = (0..SOURCES)
        .map(|i| query(100 + i, NAME, RecordType::A, EDNS))
        .collect();
    for (client, query) in clients.iter().zip(&queries) {
        client.send(query);
    }
    for (client, query) in clients.iter().zip(&queries) {
        let reply = client.reply_to(query);
        assert_eq!(reply.rcode(), Rcode::NOERROR);
        assert_eq!(reply.rrsets(Section::Answer), first.rrsets(Section::Answer));
    }
    assert_eq!(upstream.queries_for(NAME), 1, "one upstream query in all");

    let reports = server.stop();
    upstream.stop();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        total(&reports, |r| r.resolver.queries),
        u64::from(SOURCES) + 1
    );
    assert_eq!(total(&reports, |r| r.resolver.cache_misses), 1);
    let (resolver_core, other_core) = if reports[0].resolver.cache_misses == 1 {
        (&reports[0], &reports[1])
    } else {
        (&reports[1], &reports[0])
    };
    assert_eq!(resolver_core.resolver.upstream_queries, 1);
    assert!(resolver_core.resolver.hints_out >= 1, "{resolver_core:?}");
    assert_eq!(resolver_core.hints_send_dropped, 0);
    assert!(
        other_core.resolver.hints_in >= 1 && other_core.resolver.hints_stored >= 1,
        "the other core stored the hint: {other_core:?}"
    );
    assert!(
        other_core.resolver.queries > 0,
        "SO_REUSEPORT sent all {SOURCES} sources to one core; the hint path was not exercised"
    );
    for report in &reports {
        let stats = &report.resolver;
        assert_eq!(
            stats.cache_hits + stats.cache_misses,
            stats.queries,
            "every query on core {} was a hit or the one miss",
            report.core
        );
    }
    assert_eq!(other_core.resolver.cache_misses, 0);
    assert_eq!(other_core.resolver.upstream_queries, 0);
    assert_eq!(other_core.resolver.cache_hits, other_core.resolver.queries);
}

/// With name steering (the default), the kernel sends every query for a
/// name to one core, whatever its source port: each name is fetched from
/// upstream once and cached once, and no hints are sent. Many names from
/// many source ports, each asked twice from different ports (with the
/// name's case changed the second time): the upstream sees each name once,
/// the second round is all hits, both cores served names, and the hint
/// counters stay at zero. With flow steering and no hints, the second
/// round would miss on whichever core had not seen the name.
#[test]
fn name_steering_gives_each_name_one_core() {
    const NAMES: u16 = 120;
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = Setup {
        cores: "[0, 1]",
        ..Setup::new(&[upstream.local_addr()])
    }
    .start();
    let clients: Vec<Client> = (0..16).map(|_| server.client()).collect();
    for round in 0..2u16 {
        let queries: Vec<Vec<u8>> = (0..NAMES)
            .map(|n| {
                let name = format!("host-{n}.zone.test.");
                let name = if round == 1 {
                    name.to_uppercase()
                } else {
                    name
                };
                query(round * 1000 + n, &name, RecordType::A, EDNS)
            })
            .collect();
        for (n, query) in queries.iter().enumerate() {
            let client = &clients[(n + usize::from(round) * 7) % clients.len()];
            let reply = client.exchange(query);
            assert_eq!(reply.rcode(), Rcode::NOERROR);
        }
    }
    for n in 0..NAMES {
        let name = format!("host-{n}.zone.test.");
        assert_eq!(upstream.queries_for(&name), 1, "{name} fetched once");
    }
    let reports = server.stop();
    upstream.stop();
    assert_eq!(
        total(&reports, |r| r.resolver.cache_misses),
        u64::from(NAMES)
    );
    assert_eq!(total(&reports, |r| r.resolver.cache_hits), u64::from(NAMES));
    assert_eq!(total(&reports, |r| r.resolver.hints_out), 0);
    assert_eq!(total(&reports, |r| r.resolver.hints_in), 0);
    for report in &reports {
        assert!(
            report.resolver.queries > u64::from(NAMES) / 4,
            "core {} served {} of {} queries: names are not spread",
            report.core,
            report.resolver.queries,
            2 * NAMES
        );
    }
}

/// A name asked more often than `server.steering_spread` leaves its
/// owner core: the steering program sends it to a random core, so both
/// cores serve it (each fetched it once), while a quiet name keeps its one
/// owner; the spread is counted in `/metrics`.
#[test]
fn a_hot_name_is_spread_over_every_core() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let mut config = Setup {
        cores: "[0, 1]",
        ..Setup::new(&[upstream.local_addr()])
    }
    .config();
    config.server.steering_spread = 1_000;
    let server = start_server(&config);
    let client = server.client();
    let hot = "host-1.zone.test.";
    let quiet = "host-2.zone.test.";
    // Well over 1,000 q/s for one name for three windows (one core's
    // sampled estimate needs a whole window, and then the program moves).
    let started = Instant::now();
    let mut asked = 0u16;
    while started.elapsed() < Duration::from_secs(3) && upstream.queries_for(hot) < 2 {
        asked = asked.wrapping_add(1);
        let reply = client.exchange(&query(asked, hot, RecordType::A, EDNS));
        assert_eq!(reply.rcode(), Rcode::NOERROR);
        if asked.is_multiple_of(100) {
            let reply = client.exchange(&query(asked, quiet, RecordType::A, EDNS));
            assert_eq!(reply.rcode(), Rcode::NOERROR);
        }
    }
    assert_eq!(
        upstream.queries_for(hot),
        2,
        "the hot name was fetched by both cores once ({asked} queries in {:?})",
        started.elapsed()
    );
    let text = get_ok(server.control_addr(), "/metrics");
    let samples = metrics(&text);
    assert_eq!(
        samples.sum("heimdall_steering_spread_total", &[("event", "added")]),
        1.0
    );
    assert_eq!(
        samples.sum("heimdall_steering_attach_errors_total", &[]),
        0.0
    );
    // After the spread, a burst of the hot name reaches both cores.
    let before: Vec<f64> = (0..2)
        .map(|core| {
            let core = core.to_string();
            samples.sum("heimdall_queries_total", &[("core", core.as_str())])
        })
        .collect();
    for n in 0..400u16 {
        client.exchange(&query(n, hot, RecordType::A, EDNS));
    }
    let samples = metrics(&get_ok(server.control_addr(), "/metrics"));
    for (core, before) in before.iter().enumerate() {
        let core = core.to_string();
        let served = samples.sum("heimdall_queries_total", &[("core", core.as_str())]) - before;
        assert!(served > 100.0, "core {core} served {served} of 400");
    }
    assert_eq!(
        upstream.queries_for(quiet),
        1,
        "the quiet name has one owner"
    );
    server.stop();
    upstream.stop();
}

/// An attacker who makes many names hot cannot grow the set of names
/// replicated on every core: at most 16 are spread, the rest are refused
/// and counted (`event="full"`), and nothing breaks the answers.
#[test]
fn making_many_names_hot_spreads_at_most_sixteen() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let mut config = Setup {
        cores: "[0, 1]",
        ..Setup::new(&[upstream.local_addr()])
    }
    .config();
    config.server.steering_spread = 50;
    let server = start_server(&config);
    let clients: Vec<Client> = (0..8).map(|_| server.client()).collect();
    let names: Vec<String> = (0..40).map(|n| format!("host-{n}.zone.test.")).collect();
    let started = Instant::now();
    let mut asked = 0u16;
    while started.elapsed() < Duration::from_secs(3) {
        for name in &names {
            asked = asked.wrapping_add(1);
            let client = &clients[usize::from(asked) % clients.len()];
            let reply = client.exchange(&query(asked, name, RecordType::A, EDNS));
            assert_eq!(reply.rcode(), Rcode::NOERROR, "{name}");
        }
    }
    let samples = metrics(&get_ok(server.control_addr(), "/metrics"));
    let spread = |event: &str| samples.sum("heimdall_steering_spread_total", &[("event", event)]);
    server.stop();
    upstream.stop();
    assert!(
        spread("added") - spread("expired") <= 16.0,
        "added {} expired {}",
        spread("added"),
        spread("expired")
    );
    assert!(
        spread("added") >= 16.0,
        "the set filled: {}",
        spread("added")
    );
    assert!(spread("full") > 0.0, "the refused names are counted");
}

/// NXDOMAIN and NODATA are cached for the SOA-derived TTL (RFC 2308:
/// min(SOA TTL, MINIMUM)), counted down, and asked again after it.
#[test]
fn negative_answers_are_cached_for_the_soa_ttl() {
    const NEGATIVE_TTL: u32 = 2;
    let cases = [
        ("nosuch.zone.test.", RecordType::A, Rcode::NXDOMAIN),
        ("host-6.zone.test.", RecordType::SRV, Rcode::NOERROR),
    ];
    let mut upstream = start_upstream(UpstreamConfig {
        zone: ZoneConfig {
            negative_ttl: NEGATIVE_TTL,
            ..ZoneConfig::default()
        },
        ..UpstreamConfig::default()
    });
    let direct: Vec<Reply> = cases
        .iter()
        .map(|&(name, qtype, _)| ask_directly(upstream.local_addr(), &query(9, name, qtype, EDNS)))
        .collect();
    upstream.reset_stats();
    let server = Setup::new(&[upstream.local_addr()]).start();
    let client = server.client();
    let ask = |id: u16, expected_queries: u64, ttl_range: std::ops::RangeInclusive<u32>| {
        for (&(name, qtype, rcode), expected) in cases.iter().zip(&direct) {
            let reply = client.exchange(&query(id, name, qtype, EDNS));
            assert_eq!(reply.rcode(), rcode, "{name}");
            assert!(reply.hickory.answers.is_empty(), "{name}: negative");
            assert_same_rrsets(&reply, expected, name);
            let ttls = reply.authority_ttls();
            assert_eq!(ttls.len(), 1, "{name}: the SOA");
            assert!(
                ttl_range.contains(&ttls[0]),
                "{name}: SOA TTL {ttls:?}, wanted {ttl_range:?}"
            );
            assert_eq!(
                upstream.queries_for(name),
                expected_queries,
                "{name} at query {id}"
            );
        }
    };
    ask(1, 1, NEGATIVE_TTL..=NEGATIVE_TTL); // miss
    // Every entry was stored by now; a loaded machine may have taken a
    // while over the three misses, so expiry is counted from here.
    let stored = Instant::now();
    ask(2, 1, NEGATIVE_TTL - 1..=NEGATIVE_TTL); // hit
    std::thread::sleep(Duration::from_millis(1_100));
    ask(3, 1, 0..=NEGATIVE_TTL - 1); // hit, counted down
    let expiry = Duration::from_secs(u64::from(NEGATIVE_TTL)) + Duration::from_millis(300);
    std::thread::sleep(expiry.saturating_sub(stored.elapsed()));
    ask(4, 2, NEGATIVE_TTL..=NEGATIVE_TTL); // expired: asked again
    let reports = server.stop();
    upstream.stop();
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 4);
    assert_eq!(total(&reports, |r| r.resolver.cache_hits), 4);
}

/// A client without EDNS gets at most 512 bytes with TC for a large
/// answer; an EDNS client offering 1232 gets all of it without TC. Both on
/// the miss path (the reply to a waiting client) and on the hit path.
#[test]
fn udp_size_limits_and_truncation() {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let server = Setup::new(&[upstream.local_addr()]).start();
    let client = server.client();
    let check_small = |reply: &Reply, limit: usize| {
        assert!(reply.bytes.len() <= limit, "{} bytes", reply.bytes.len());
        assert!(reply.truncated(), "TC over the client's limit");
        assert_eq!(reply.rcode(), Rcode::NOERROR);
    };
    let check_full = |reply: &Reply, name: &str| {
        assert!(reply.bytes.len() <= 1232, "{} bytes", reply.bytes.len());
        assert!(reply.bytes.len() > 512, "the answer is large");
        assert!(!reply.truncated());
        let expected = ask_directly(
            upstream.local_addr(),
            &query(77, name, RecordType::TXT, EDNS),
        );
        assert!(!expected.truncated());
        assert_eq!(reply.hickory.answers.len(), BIG_TXT_RECORDS);
        assert_same_rrsets(reply, &expected, name);
    };

    // big-0: first asked without EDNS (miss), then with (hit).
    let plain = client.exchange(&query(1, "big-0.zone.test.", RecordType::TXT, None));
    check_small(&plain, 512);
    assert!(plain.hickory.edns.is_none());
    let full = client.exchange(&query(2, "big-0.zone.test.", RecordType::TXT, EDNS));
    check_full(&full, "big-0.zone.test.");
    let plain = client.exchange(&query(3, "big-0.zone.test.", RecordType::TXT, None));
    check_small(&plain, 512);
    // An EDNS client that offers only 512 bytes keeps its OPT record.
    let small_edns = client.exchange(&query(4, "big-0.zone.test.", RecordType::TXT, Some(512)));
    check_small(&small_edns, 512);
    assert!(small_edns.hickory.edns.is_some());

    // big-1: first with EDNS (miss), then without (hit).
    let full = client.exchange(&query(5, "big-1.zone.test.", RecordType::TXT, EDNS));
    check_full(&full, "big-1.zone.test.");
    let plain = client.exchange(&query(6, "big-1.zone.test.", RecordType::TXT, None));
    check_small(&plain, 512);

    let reports = server.stop();
    upstream.stop();
    assert_eq!(total(&reports, |r| r.resolver.upstream_queries), 2);
}

/// The embedded default parses and validates with upstreams from a
/// resolv.conf text; and a server started from DEFAULT_CONFIG_YAML (with
/// only the upstream, the cores, io_memory and the listen address changed)
/// answers. It validates DNSSEC with the built-in root anchor, so an
/// upstream that answers unsigned data for a name under the real root
/// (the synthetic one; equally an upstream that strips signatures) gets
/// SERVFAIL with an Extended DNS Error saying why; with `dnssec.mode:
/// off` the same upstream is answered.
#[test]
fn the_default_configuration_serves() {
    let embedded = Config::embedded_default("# test\nnameserver 192.0.2.53\nsearch example\n")
        .expect("the embedded default with a resolv.conf nameserver");
    assert_eq!(
        embedded.upstream.servers,
        vec![heimdall_config::Upstream::udp(
            "192.0.2.53:53".parse::<SocketAddr>().unwrap()
        )]
    );
    assert_eq!(
        embedded.server.listen,
        vec!["127.0.0.1:5353".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(embedded.dnssec.mode, heimdall_config::DnssecMode::Validate);
    assert!(
        Config::embedded_default("").is_err(),
        "without any nameserver the default has no upstream"
    );

    let mut upstream = start_upstream(UpstreamConfig::default());
    let derived = |dnssec: Option<&str>| {
        let mut yaml = DEFAULT_CONFIG_YAML.to_owned();
        let mut edits = vec![
            (
                "servers: []".to_owned(),
                format!("servers: [\"{}\"]", upstream.local_addr()),
            ),
            ("cores: auto".to_owned(), "cores: [0]".to_owned()),
            (
                "io_memory: 512KiB".to_owned(),
                "io_memory: 256KiB".to_owned(),
            ),
        ];
        if let Some(mode) = dnssec {
            edits.push(("mode: validate".to_owned(), format!("mode: {mode}")));
        }
        for (from, to) in edits {
            assert!(yaml.contains(&from), "the default YAML has {from:?}");
            yaml = yaml.replacen(&from, &to, 1);
        }
        let mut config = Config::from_yaml_str(&yaml, "default-derived.yaml").expect("valid");
        common::listen_on_any_port(&mut config);
        config
    };
    let config = derived(None);
    // Every other setting is the embedded default's.
    assert_eq!(config.cache, embedded.cache);
    assert_eq!(config.hints, embedded.hints);
    assert_eq!(config.dnssec, embedded.dnssec);
    assert_eq!(config.upstream.timeout, embedded.upstream.timeout);
    assert_eq!(config.upstream.attempts, embedded.upstream.attempts);
    assert_eq!(config.upstream.strategy, embedded.upstream.strategy);
    assert_eq!(config.server.udp_recv_batch, embedded.server.udp_recv_batch);

    // Validating: zone.test. is unsigned and not in the real root, and
    // the synthetic upstream refuses the DS and DNSKEY queries of the
    // chain: no proof that the name may be unsigned.
    let server = start_server(&config);
    let reply =
        server
            .client()
            .exchange(&query(1, "host-11.zone.test.", RecordType::A, Some(1232)));
    assert_eq!(reply.rcode(), Rcode::SERVFAIL);
    assert!(!reply.ede_codes().is_empty(), "the reason is given");
    assert!(upstream.queries_for("host-11.zone.test.") >= 1);
    let reports = server.stop();
    let failed = total(&reports, |r| {
        let s = &r.resolver;
        s.dnssec_indeterminate + s.dnssec_bogus_rrsigs_missing + s.dnssec_bogus_dnskey_missing
    });
    assert_eq!(failed, 1, "{:?}", reports[0].resolver);
    assert_eq!(total(&reports, |r| r.resolver.dnssec_secure), 0);

    // Off: answered.
    upstream.reset_stats();
    let server = start_server(&derived(Some("off")));
    let reply = server
        .client()
        .exchange(&query(1, "host-11.zone.test.", RecordType::A, None));
    assert_eq!(reply.rcode(), Rcode::NOERROR);
    assert_single_a(&reply, host_v4(11));
    assert_eq!(upstream.queries_for("host-11.zone.test."), 1);
    let reports = server.stop();
    upstream.stop();
    assert_eq!(total(&reports, |r| r.resolver.queries), 1);
}
