//! The monitoring files in deploy/ against the real server: the Grafana
//! dashboard (deploy/grafana/heimdall.json) parses and every metric it
//! queries is one a running server exports, and so is every metric of the
//! Prometheus rules (deploy/prometheus/heimdall-rules.yml), which pass
//! `promtool check rules` and their unit tests (`promtool test rules`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use common::http::{get_ok, metrics};
use common::*;
use heimdall_loadtest::UpstreamConfig;
use heimdall_wire::RecordType;

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// The metric families a running two-core server exports, with their
/// types.
fn exported() -> Vec<(String, String)> {
    let mut upstream = start_upstream(UpstreamConfig::default());
    let setup = Setup {
        cores: "[0, 1]",
        ..Setup::new(&[upstream.local_addr()])
    };
    let server = setup.start();
    let reply = server
        .client()
        .exchange(&query(1, "host-1.zone.test.", RecordType::A, Some(1232)));
    assert_eq!(reply.rcode(), heimdall_wire::Rcode::NOERROR);
    let text = get_ok(server.control_addr(), "/metrics");
    server.stop();
    upstream.stop();
    metrics(&text)
        .families
        .iter()
        .map(|family| (family.name.clone(), family.kind.clone()))
        .collect()
}

/// The heimdall and process metric names in `text` (PromQL inside JSON or
/// YAML): identifiers that start with `heimdall_` or `process_`. Recording
/// rules (`heimdall:...`) and alert names (`Heimdall...`) do not match.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if !is_ident(bytes[start]) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        let word = &text[start..end];
        if word.starts_with("heimdall_") || word.starts_with("process_") {
            names.insert(word.to_owned());
        }
        start = end;
    }
    names
}

/// `names` that are not exported: a histogram's `_bucket`, `_sum` and
/// `_count` series count as its family.
fn unknown(names: &BTreeSet<String>, exported: &[(String, String)]) -> Vec<String> {
    names
        .iter()
        .filter(|name| {
            let family = |base: &str| exported.iter().find(|(n, _)| n == base);
            if family(name).is_some() {
                return false;
            }
            !["_bucket", "_sum", "_count"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .and_then(family)
                    .is_some_and(|(_, kind)| kind == "histogram")
            })
        })
        .cloned()
        .collect()
}

#[test]
fn the_dashboard_and_rules_use_only_exported_metrics() {
    let exported = exported();
    assert!(exported.len() > 50, "{exported:?}");

    let text = std::fs::read_to_string(deploy("grafana/heimdall.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dashboard["uid"], "heimdall-dns");
    let panels = dashboard["panels"].as_array().unwrap();
    let mut exprs = Vec::new();
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_owned());
        }
    }
    assert!(exprs.len() > 20, "{exprs:?}");
    let in_dashboard = referenced(&exprs.join("\n"));
    assert_eq!(unknown(&in_dashboard, &exported), Vec::<String>::new());
    // The panels cover the main families (a renamed family would leave a
    // hole here rather than an error).
    for name in [
        "heimdall_queries_total",
        "heimdall_answer_duration_seconds_bucket",
        "heimdall_upstream_latency_seconds_bucket",
        "heimdall_cache_hits_total",
        "heimdall_reloads_total",
        "process_resident_memory_bytes",
    ] {
        assert!(in_dashboard.contains(name), "the dashboard lacks {name}");
    }

    let rules = std::fs::read_to_string(deploy("prometheus/heimdall-rules.yml")).unwrap();
    let in_rules = referenced(&rules);
    assert!(in_rules.len() > 10, "{in_rules:?}");
    assert_eq!(unknown(&in_rules, &exported), Vec::<String>::new());
}

#[test]
fn the_name_check_can_fail() {
    let exported = vec![
        ("heimdall_a_total".to_owned(), "counter".to_owned()),
        ("heimdall_h_seconds".to_owned(), "histogram".to_owned()),
    ];
    let names = referenced(
        "sum(rate(heimdall_a_total[5m])) / heimdall_h_seconds_bucket + heimdall_a_total_count \
         + heimdall:recorded + heimdall_gone",
    );
    assert_eq!(
        unknown(&names, &exported),
        ["heimdall_a_total_count", "heimdall_gone"]
    );
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let Some(promtool) = heimdall_testkit::peers::find("promtool", "prometheus") else {
        return;
    };
    let dir = deploy("prometheus");
    for args in [
        ["check", "rules", "heimdall-rules.yml"],
        ["test", "rules", "heimdall-rules.test.yml"],
    ] {
        let output = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
