//! Loading 1,000,000 synthetic names: time and memory. Slow in debug
//! builds, so ignored by default; measure it with
//! `cargo test --release -p heimdall-policy --test load -- --ignored --nocapture`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout
)]

use std::fmt::Write as _;
use std::time::Instant;

use heimdall_policy::{BlocklistBuilder, ListFormat, Verdict};
use heimdall_wire::NameBuf;

/// A kB figure from /proc/self/status (`VmRSS`, `VmHWM`), if available.
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Synthetic names shaped like real blocklist entries (18-30 bytes).
fn synthetic_hosts(count: usize) -> String {
    let mut text = String::with_capacity(count * 40);
    let tlds = ["com", "net", "org", "io", "example"];
    for index in 0..count {
        let tld = tlds[index % tlds.len()];
        writeln!(text, "0.0.0.0 ads{index:x}.tracker{}.{tld}", index % 9973).unwrap();
    }
    text
}

#[test]
#[ignore = "slow in debug builds; run in release"]
fn one_million_entries() {
    const COUNT: usize = 1_000_000;
    let rss_before = status_kb("VmRSS:").unwrap_or(0);
    let text = synthetic_hosts(COUNT);
    let text_bytes = text.len();
    let start = Instant::now();
    let mut builder = BlocklistBuilder::new();
    let stats = builder.add_list(&text, ListFormat::Hosts);
    let list = builder.build();
    let elapsed = start.elapsed();
    let peak_kb = status_kb("VmHWM:").unwrap_or(0);
    drop(text);
    let rss_after = status_kb("VmRSS:").unwrap_or(0);
    assert_eq!(stats.blocked, COUNT as u64);
    assert_eq!(list.blocked_len(), COUNT);

    let hit = NameBuf::from_presentation("www.ads1234.tracker4660.com").unwrap();
    let miss = NameBuf::from_presentation("www.example.com").unwrap();
    assert_eq!(list.check(&hit.as_name()), Verdict::Blocked);
    assert_eq!(list.check(&miss.as_name()), Verdict::Pass);

    println!(
        "1M entries: load {:.3} s; blocklist heap {:.1} MB; list text {:.1} MB; \
         RSS before {:.1} MB, after (text freed) {:.1} MB, peak {:.1} MB",
        elapsed.as_secs_f64(),
        list.memory_bytes() as f64 / 1e6,
        text_bytes as f64 / 1e6,
        rss_before as f64 / 1e3,
        rss_after as f64 / 1e3,
        peak_kb as f64 / 1e3,
    );
    assert!(elapsed.as_secs_f64() < 3.0, "load took {elapsed:?}");
    assert!(list.memory_bytes() < 150_000_000);
    if peak_kb > 0 {
        assert!(peak_kb < 150_000, "peak RSS {peak_kb} kB");
    }
}
