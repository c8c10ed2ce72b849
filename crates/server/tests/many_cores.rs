//! heimdall on more cores than this machine has: 64 executors, unpinned
//! (`StartOptions::unpinned_cores`), with the default configuration apart
//! from the listen address, the upstream and a small `io_memory` (64
//! executors share the 8 MiB memlock limit of a test machine).
//!
//! Both steering modes must serve and stop, and the memory the cores add
//! must stay small: the hint inboxes are linear in the cores (a full mesh
//! of hint channels took cores squared x `hints.channel_capacity` slots,
//! about 1.6 GB at 64 cores with the default capacity). The RSS each start
//! adds is printed (`cargo test --test many_cores -- --nocapture`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::time::Duration;

use common::{Setup, query, start_server_with, start_upstream, total};
use heimdall_loadtest::UpstreamConfig;
use heimdall_server::StartOptions;
use heimdall_wire::{Rcode, RecordType};

const CORES: usize = 64;

/// The process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

fn serve_on_64_cores(steering: &'static str) {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        steering,
        ..Setup::new(&[upstream.local_addr()])
    };
    let mut config = setup.config();
    config.server.io_memory = 64 << 10;
    let before = rss();
    let server = start_server_with(
        &config,
        StartOptions {
            unpinned_cores: Some(CORES),
            ..StartOptions::default()
        },
    );
    // 64 executors start on 2 CPUs: wait until the first query is
    // answered, whichever core it reaches.
    let first = server.client();
    let started = std::time::Instant::now();
    loop {
        first.send(&query(
            9999,
            "host-9999.zone.test.",
            RecordType::A,
            Some(1232),
        ));
        if first.recv_within(Duration::from_millis(500)).is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no answer in 30 s"
        );
    }
    println!("{steering}: first answer after {:?}", started.elapsed());
    // Many names from many source ports: every core gets some.
    let clients: Vec<_> = (0..32).map(|_| server.client()).collect();
    for n in 0..256u16 {
        let name = format!("host-{n}.zone.test.");
        let reply = clients[usize::from(n) % clients.len()].exchange(&query(
            n,
            &name,
            RecordType::A,
            Some(1232),
        ));
        assert_eq!(reply.rcode(), Rcode::NOERROR, "{name}");
    }
    // Let the hints (flow) land before measuring.
    std::thread::sleep(Duration::from_millis(100));
    let added = rss().saturating_sub(before);
    println!(
        "{steering}: {CORES} cores added {:.1} MiB of RSS",
        added as f64 / f64::from(1 << 20)
    );
    let reports = server.stop();
    upstream.stop();
    assert_eq!(reports.len(), CORES);
    assert!(total(&reports, |r| r.resolver.queries) >= 257);
    let busy = reports.iter().filter(|r| r.resolver.queries > 0).count();
    assert!(busy > CORES / 4, "only {busy} cores got queries");
    assert!(
        added < 512 << 20,
        "{CORES} cores added {added} bytes of RSS"
    );
}

#[test]
fn sixty_four_cores_with_name_steering() {
    serve_on_64_cores("name");
}

#[test]
fn sixty_four_cores_with_flow_steering_and_hints() {
    serve_on_64_cores("flow");
}
