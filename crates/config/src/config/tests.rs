//! Tests of the public API: every documented error, the embedded default,
//! the example in deploy/, and the YAML round trip.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::{
    CoreSelection, Location, LogLevel, Upstream, UpstreamStrategy, UpstreamTransport,
    available_cpu_ids, available_cpus, defaults,
};

const DEPLOY_EXAMPLE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/heimdall.yaml"
));

const SAMPLE_RESOLV_CONF: &str = "\
# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
nameserver 127.0.0.53
options edns0 trust-ad
search example.com
";

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The servers' addresses, in order.
fn addresses(config: &Config) -> Vec<SocketAddr> {
    config.upstream.servers.iter().map(|s| s.address).collect()
}

/// The addresses of the servers asked over TCP only (what
/// `upstream.tcp_only` lists).
fn tcp_servers(config: &Config) -> Vec<SocketAddr> {
    config
        .upstream
        .servers
        .iter()
        .filter(|s| s.transport == UpstreamTransport::Tcp)
        .map(|s| s.address)
        .collect()
}

fn no_interfaces(_: &str) -> Option<u32> {
    None
}

/// The error message for a YAML text read as `test.yaml`.
fn error(yaml: &str) -> String {
    match Config::from_yaml_str(yaml, "test.yaml") {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err.to_string(),
    }
}

/// Asserts the message starts with `test.yaml:LINE:COL: KEY: ` and holds
/// every one of `parts`.
#[track_caller]
fn assert_error(yaml: &str, at: Option<(usize, usize)>, key: &str, parts: &[&str]) {
    let message = error(yaml);
    let prefix = match (at, key) {
        (Some((line, column)), "") => format!("test.yaml:{line}:{column}: "),
        (Some((line, column)), key) => format!("test.yaml:{line}:{column}: {key}: "),
        (None, "") => "test.yaml: ".to_string(),
        (None, key) => format!("test.yaml: {key}: "),
    };
    assert!(
        message.starts_with(&prefix),
        "{message:?} should start with {prefix:?}"
    );
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} should contain {part:?}"
        );
    }
}

/// A valid file to which a test adds one wrong thing.
fn with_upstream(rest: &str) -> String {
    format!("upstream:\n  servers: [9.9.9.9]\n{rest}")
}

#[test]
fn minimal_file_gets_every_default() {
    let config = Config::from_yaml_str("upstream:\n  servers: [9.9.9.9]\n", "test.yaml").unwrap();
    assert_eq!(config.source(), "test.yaml");
    assert_eq!(config.server.cores, CoreSelection::Auto);
    assert_eq!(config.server.listen, vec![defaults::LISTEN]);
    assert_eq!(config.server.io_memory, 512 << 10);
    assert_eq!(config.server.udp_recv_batch, 32);
    assert!(config.server.udp_gso);
    assert_eq!(config.server.udp_coalesce, Duration::from_micros(50));
    assert_eq!(config.cache.shard_size, 64 << 20);
    assert_eq!(config.cache.min_ttl, Duration::ZERO);
    assert_eq!(config.cache.max_ttl, Duration::from_secs(86_400));
    assert_eq!(config.cache.negative_max_ttl, Duration::from_secs(3_600));
    assert_eq!(config.cache.servfail_ttl, Duration::from_secs(5));
    assert!(config.hints.enabled);
    assert_eq!(config.hints.channel_capacity, 1024);
    assert_eq!(addresses(&config), vec![sa("9.9.9.9:53")]);
    assert_eq!(config.upstream.strategy, UpstreamStrategy::Ordered);
    assert_eq!(config.upstream.timeout, Duration::from_millis(800));
    assert_eq!(config.upstream.attempts, 3);
    assert!(tcp_servers(&config).is_empty());
    assert_eq!(config.tcp.idle_timeout, Duration::from_secs(10));
    assert_eq!(config.tcp.read_timeout, Duration::from_secs(2));
    assert_eq!(config.tcp.max_connections, 1024);
    assert_eq!(config.tcp.max_pipelined, 64);
    assert_eq!(config.log.level, LogLevel::Info);
}

#[test]
fn full_file_is_read() {
    let yaml = r#"
server:
  cores: [0, 2]
  listen: ["0.0.0.0:53", "[::1]:53"]
  io_memory: 1MiB
  udp_recv_batch: 64
  udp_gso: false
  udp_coalesce: 0s
cache:
  shard_size: 1GB
  min_ttl: 30
  max_ttl: 2h
  negative_max_ttl: 15m
  servfail_ttl: 1s
hints:
  enabled: false
  channel_capacity: 16
upstream:
  servers:
    - 9.9.9.9
    - 149.112.112.112:5353
    - 2620:fe::fe
    - "[2620:fe::9]:53"
    - fe80::1%2
  tcp_only: ["149.112.112.112:5353"]
  strategy: fastest
  timeout: 2s
  attempts: 5
tcp:
  idle_timeout: 30s
  read_timeout: 500ms
  max_connections: 100
  max_pipelined: 8
log:
  level: debug
"#;
    let config = Config::from_yaml_str(yaml, "full.yaml").unwrap();
    assert_eq!(config.server.cores, CoreSelection::List(vec![0, 2]));
    assert_eq!(config.server.listen, vec![sa("0.0.0.0:53"), sa("[::1]:53")]);
    assert_eq!(config.server.io_memory, 1 << 20);
    assert_eq!(config.server.udp_recv_batch, 64);
    assert!(!config.server.udp_gso);
    assert_eq!(config.server.udp_coalesce, Duration::ZERO);
    assert_eq!(config.cache.shard_size, 1_000_000_000);
    assert_eq!(config.cache.min_ttl, Duration::from_secs(30));
    assert_eq!(config.cache.max_ttl, Duration::from_secs(7200));
    assert_eq!(config.cache.negative_max_ttl, Duration::from_secs(900));
    assert_eq!(config.cache.servfail_ttl, Duration::from_secs(1));
    assert!(!config.hints.enabled);
    assert_eq!(config.hints.channel_capacity, 16);
    assert_eq!(
        addresses(&config),
        vec![
            sa("9.9.9.9:53"),
            sa("149.112.112.112:5353"),
            sa("[2620:fe::fe]:53"),
            sa("[2620:fe::9]:53"),
            sa("[fe80::1%2]:53"),
        ]
    );
    assert_eq!(tcp_servers(&config), vec![sa("149.112.112.112:5353")]);
    assert_eq!(config.upstream.strategy, UpstreamStrategy::Fastest);
    assert_eq!(config.upstream.timeout, Duration::from_secs(2));
    assert_eq!(config.upstream.attempts, 5);
    assert_eq!(config.tcp.idle_timeout, Duration::from_secs(30));
    assert_eq!(config.tcp.read_timeout, Duration::from_millis(500));
    assert_eq!(config.tcp.max_connections, 100);
    assert_eq!(config.tcp.max_pipelined, 8);
    assert_eq!(config.log.level, LogLevel::Debug);
    assert_eq!(config.log.level.as_str(), "debug");
}

#[test]
fn empty_sections_mean_defaults() {
    let yaml = "server:\ncache: ~\nhints: {}\nupstream:\n  servers: [9.9.9.9]\nlog:\n";
    let config = Config::from_yaml_str(yaml, "test.yaml").unwrap();
    let minimal = Config::from_yaml_str("upstream: {servers: [9.9.9.9]}", "test.yaml").unwrap();
    assert_eq!(config, minimal);
}

// ---- The embedded default and resolv.conf ----

#[test]
fn embedded_default_with_sample_resolv_conf() {
    let config = Config::embedded_default_with(SAMPLE_RESOLV_CONF, &no_interfaces).unwrap();
    assert_eq!(config.source(), EMBEDDED_DEFAULT_SOURCE);
    assert_eq!(config.server.listen, vec![sa("127.0.0.1:5353")]);
    assert_eq!(config.server.cores, CoreSelection::Auto);
    assert_eq!(addresses(&config), vec![sa("127.0.0.53:53")]);

    // Everything but the upstreams is what the code's defaults say.
    let minimal = Config::from_yaml_str(
        "upstream:\n  servers: [127.0.0.53]\n",
        EMBEDDED_DEFAULT_SOURCE,
    )
    .unwrap();
    assert_eq!(config, minimal);

    let config = Config::embedded_default(SAMPLE_RESOLV_CONF).unwrap();
    assert_eq!(addresses(&config), vec![sa("127.0.0.53:53")]);
}

#[test]
fn embedded_default_takes_every_usable_nameserver() {
    let resolv = "nameserver 10.0.0.1\nnameserver fe80::1%lan\nnameserver 2001:db8::1\n\
                  nameserver 10.0.0.1\n";
    let lan = |name: &str| (name == "lan").then_some(7);
    let config = Config::embedded_default_with(resolv, &lan).unwrap();
    assert_eq!(
        addresses(&config),
        vec![
            sa("10.0.0.1:53"),
            sa("[fe80::1%7]:53"),
            sa("[2001:db8::1]:53")
        ]
    );
}

#[test]
fn embedded_default_without_nameservers_is_a_clear_error() {
    let err = Config::embedded_default_with("search example.com\n", &no_interfaces).unwrap_err();
    assert!(matches!(err, ConfigError::NoUpstream { .. }));
    assert_eq!(err.key(), Some("upstream.servers"));
    let message = err.to_string();
    assert!(
        message.starts_with("/etc/resolv.conf: upstream.servers: "),
        "{message}"
    );
    assert!(message.contains("no usable nameserver"), "{message}");
    assert!(message.contains("it has no nameserver lines"), "{message}");
    assert!(
        message.contains("write a config file that lists upstream.servers"),
        "{message}"
    );

    let resolv = "# comment\nnameserver 0.0.0.0\nnameserver fe80::1%nope\n";
    let message = Config::embedded_default_with(resolv, &no_interfaces)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("line 2: \"0.0.0.0\" skipped: "),
        "{message}"
    );
    assert!(message.contains("unspecified"), "{message}");
    assert!(
        message.contains("line 3: \"fe80::1%nope\" skipped: "),
        "{message}"
    );
    assert!(
        message.contains("no network interface named \"nope\""),
        "{message}"
    );
}

#[test]
fn default_yaml_alone_asks_for_upstreams() {
    let line = DEFAULT_CONFIG_YAML
        .lines()
        .position(|l| l == "  servers: []")
        .unwrap()
        + 1;
    assert_error(
        DEFAULT_CONFIG_YAML,
        Some((line, 12)),
        "upstream.servers",
        &[
            "at least one upstream server is required",
            "/etc/resolv.conf",
        ],
    );
}

#[test]
fn default_yaml_matches_code_defaults() {
    let with_servers = DEFAULT_CONFIG_YAML.replace("servers: []", "servers: [9.9.9.9]");
    assert_ne!(with_servers, DEFAULT_CONFIG_YAML);
    let from_text = Config::from_yaml_str(&with_servers, "x").unwrap();
    let from_code = Config::from_yaml_str("upstream: {servers: [9.9.9.9]}", "x").unwrap();
    assert_eq!(from_text, from_code);
}

// ---- deploy/heimdall.yaml ----

#[test]
fn deploy_example_is_the_defaults_plus_upstreams() {
    let deploy = Config::from_yaml_str(DEPLOY_EXAMPLE, "deploy/heimdall.yaml").unwrap();
    assert_eq!(
        addresses(&deploy),
        vec![
            sa("9.9.9.9:53"),
            sa("149.112.112.112:53"),
            sa("[2620:fe::fe]:53")
        ]
    );
    // Every other key claims to show its default.
    let mut expected = Config::embedded_default_with(SAMPLE_RESOLV_CONF, &no_interfaces).unwrap();
    expected.upstream.servers = deploy.upstream.servers.clone();
    expected.source = deploy.source.clone();
    assert_eq!(deploy, expected);
}

#[test]
fn deploy_example_shows_every_key() {
    // Keys that RawConfig writes must all appear, uncommented, in the
    // example, so that the example cannot fall behind the schema.
    let config = Config::from_yaml_str(DEPLOY_EXAMPLE, "deploy/heimdall.yaml").unwrap();
    let written = config.to_yaml().unwrap();
    for line in written.lines() {
        let Some((key, _)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        if key.starts_with('-') || key.is_empty() {
            continue;
        }
        let pattern = format!("\n{}{key}:", &line[..line.len() - line.trim_start().len()]);
        assert!(
            DEPLOY_EXAMPLE.contains(&pattern),
            "deploy/heimdall.yaml lacks {key:?}"
        );
    }
}

// ---- Round trip ----

#[test]
fn yaml_round_trip() {
    let texts = [
        "upstream: {servers: [9.9.9.9]}".to_string(),
        DEPLOY_EXAMPLE.to_string(),
        r#"
server:
  cores: 3
  listen: ["[::]:53", "0.0.0.0:53", "[fe80::1%4]:5300"]
  io_memory: 68KiB
  udp_recv_batch: 1
cache:
  shard_size: 100001
  min_ttl: 1
  max_ttl: 2147483647
  negative_max_ttl: 90
  servfail_ttl: 5
hints: {enabled: false, channel_capacity: 1}
upstream:
  servers: ["[fe80::1%3]:54", 10.0.0.1:5353, 2001:db8::1]
  strategy: round_robin
  timeout: 1500ms
  attempts: 16
log: {level: trace}
"#
        .to_string(),
        "server: {cores: [5, 1, 3]}\nupstream: {servers: [1.1.1.1], timeout: 1ms}\n".to_string(),
    ];
    for text in texts {
        let config = Config::from_yaml_str(&text, "a.yaml").unwrap();
        let yaml = config.to_yaml().unwrap();
        let again = Config::from_yaml_str(&yaml, "a.yaml")
            .unwrap_or_else(|e| panic!("{e}\n--- written:\n{yaml}"));
        assert_eq!(config, again, "--- written:\n{yaml}");
        assert_eq!(again.to_yaml().unwrap(), yaml);
    }

    let config = Config::embedded_default_with(SAMPLE_RESOLV_CONF, &no_interfaces).unwrap();
    let yaml = config.to_yaml().unwrap();
    assert_eq!(
        Config::from_yaml_str(&yaml, EMBEDDED_DEFAULT_SOURCE).unwrap(),
        config
    );
}

#[test]
fn yaml_output_reads_like_a_hand_written_file() {
    let config = Config::from_yaml_str("upstream: {servers: [9.9.9.9, '::1']}", "x").unwrap();
    let yaml = config.to_yaml().unwrap();
    for line in [
        "  cores: auto",
        "  - 127.0.0.1:5353",
        "  io_memory: 512KiB",
        "  shard_size: 64MiB",
        "  min_ttl: 0s",
        "  max_ttl: 1d",
        "  negative_max_ttl: 1h",
        "  timeout: 800ms",
        "  - 9.9.9.9:53",
        "  - '[::1]:53'",
        "  strategy: ordered",
        "  level: info",
    ] {
        assert!(yaml.lines().any(|l| l == line), "{line:?} not in:\n{yaml}");
    }
}

// ---- Errors: YAML structure ----

#[test]
fn unknown_keys_are_errors() {
    assert_error(
        &with_upstream("bogus: 1\n"),
        Some((3, 1)),
        "bogus",
        &["unknown key `bogus`", "expected one of `server`, `cache`"],
    );
    assert_error(
        "cache:\n  shard_size: 1MiB\n  max_tll: 1h\n",
        Some((3, 3)),
        "cache.max_tll",
        &["unknown key `max_tll`", "`max_ttl`"],
    );
    assert_error(
        "upstream:\n  servers: [9.9.9.9]\n  retries: 2\n",
        Some((3, 3)),
        "upstream.retries",
        &["unknown key `retries`", "`attempts`"],
    );
}

#[test]
fn duplicate_keys_are_errors() {
    assert_error(
        "cache:\n  min_ttl: 1\n  min_ttl: 2\n",
        Some((2, 3)),
        "cache",
        &["duplicate key `min_ttl`"],
    );
}

#[test]
fn wrong_types_are_errors() {
    assert_error(
        &with_upstream("  attempts: three\n"),
        Some((3, 13)),
        "upstream.attempts",
        &["invalid type: string \"three\", expected a whole number"],
    );
    assert_error(
        "hints:\n  enabled: yes\n",
        Some((2, 12)),
        "hints.enabled",
        &["expected a boolean"],
    );
    assert_error("cache: 5\n", Some((1, 8)), "cache", &["expected a mapping"]);
    assert_error("just text\n", Some((1, 1)), "", &["expected a mapping"]);
    assert_error(
        "server:\n  listen: 127.0.0.1:53\n",
        Some((2, 11)),
        "server.listen",
        &["expected a sequence"],
    );
}

#[test]
fn one_document_only() {
    let message = error("upstream: {servers: [9.9.9.9]}\n---\nlog: {}\n");
    assert!(message.starts_with("test.yaml"), "{message}");
    assert!(message.contains("more than one document"), "{message}");
    // Comments only: all defaults, which lack upstreams.
    assert_error(
        "# nothing\n",
        None,
        "upstream.servers",
        &["at least one upstream"],
    );
}

#[test]
fn syntax_errors_give_the_position() {
    let message = error("cache:\n\tmin_ttl: 1\n");
    assert!(message.starts_with("test.yaml:2:1: "), "{message}");
    assert!(message.contains("cannot start any token"), "{message}");

    let message = error("upstream: {servers: [9.9.9.9]\nlog: {}\n");
    assert!(message.starts_with("test.yaml:"), "{message}");
    assert!(message.contains("upstream"), "{message}");
}

#[test]
fn enums_list_their_values() {
    assert_error(
        &with_upstream("  strategy: random\n"),
        Some((3, 13)),
        "upstream.strategy",
        &[
            "unknown variant `random`",
            "`ordered`, `round_robin`, `fastest`",
        ],
    );
    assert_error(
        "log:\n  level: verbose\n",
        Some((2, 10)),
        "log.level",
        &[
            "unknown variant `verbose`",
            "`error`, `warn`, `info`, `debug`, `trace`",
        ],
    );
}

// ---- Errors: server ----

#[test]
fn cores_errors() {
    assert_error(
        "server:\n  cores: all\n",
        Some((2, 10)),
        "server.cores",
        &["`auto`, a number of cores, or a list of CPU ids"],
    );
    assert_error(
        "server:\n  cores: 0\n",
        Some((2, 10)),
        "server.cores",
        &["0 cores"],
    );
    assert_error(
        &with_upstream("server:\n  cores: []\n"),
        Some((4, 10)),
        "server.cores",
        &["list of CPU ids is empty"],
    );
    assert_error(
        &with_upstream("server:\n  cores:\n    - 1\n    - 2\n    - 1\n"),
        Some((7, 7)),
        "server.cores[2]",
        &["CPU 1 is listed twice (also server.cores[0])"],
    );
    assert_error(
        "server:\n  cores: [0, x]\n",
        Some((2, 14)),
        "server.cores[1]",
        &["expected a CPU id"],
    );
}

#[test]
fn cpu_ids_resolve_against_the_affinity_mask() {
    let yaml = "server: {cores: [0, 6]}\nupstream: {servers: [9.9.9.9]}\n";
    let config = Config::from_yaml_str(yaml, "cores.yaml").unwrap();
    assert_eq!(
        config.cpu_ids(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap(),
        vec![0, 6]
    );
    let message = config.cpu_ids(&[0, 1, 2, 3]).unwrap_err().to_string();
    assert_eq!(
        message,
        "cores.yaml: server.cores[1]: CPU 6 is not available to this process (allowed: 0-3)"
    );

    // `taskset -c 1`: CPU 1 may be named, CPU 0 may not, and `auto` or a
    // count means CPU 1.
    let yaml = "server: {cores: [1]}\nupstream: {servers: [9.9.9.9]}\n";
    let config = Config::from_yaml_str(yaml, "cores.yaml").unwrap();
    assert_eq!(config.cpu_ids(&[1]).unwrap(), vec![1]);
    let yaml = "server: {cores: [0]}\nupstream: {servers: [9.9.9.9]}\n";
    let config = Config::from_yaml_str(yaml, "cores.yaml").unwrap();
    assert_eq!(
        config.cpu_ids(&[1]).unwrap_err().to_string(),
        "cores.yaml: server.cores[0]: CPU 0 is not available to this process (allowed: 1)"
    );
    let config = Config::from_yaml_str("upstream: {servers: [9.9.9.9]}", "x").unwrap();
    assert_eq!(config.cpu_ids(&[1]).unwrap(), vec![1]);
    assert_eq!(config.cpu_ids(&[0, 2, 4]).unwrap(), vec![0, 2, 4]);
    let yaml = "server: {cores: 2}\nupstream: {servers: [9.9.9.9]}\n";
    let config = Config::from_yaml_str(yaml, "cores.yaml").unwrap();
    assert_eq!(
        config.cpu_ids(&[1]).unwrap_err().key(),
        Some("server.cores")
    );
    assert_eq!(config.cpu_ids(&[4, 2, 0]).unwrap(), vec![0, 2]);

    let yaml = "server: {cores: 16}\nupstream: {servers: [9.9.9.9]}\n";
    let config = Config::from_yaml_str(yaml, "cores.yaml").unwrap();
    let message = config.cpu_ids(&[0, 1, 2, 3]).unwrap_err().to_string();
    assert_eq!(
        message,
        "cores.yaml: server.cores: 16 cores requested but only 4 CPUs are available to this \
         process (allowed: 0-3)"
    );

    let config = Config::from_yaml_str("upstream: {servers: [9.9.9.9]}", "x").unwrap();
    assert_eq!(
        config.cpu_ids(&available_cpu_ids()).unwrap(),
        available_cpu_ids()
    );
    assert!(available_cpus() >= 1);
}

#[test]
fn listen_errors() {
    assert_error(
        &with_upstream("server:\n  listen:\n    - 127.0.0.1:53\n    - 127.0.0.1\n"),
        Some((6, 7)),
        "server.listen[1]",
        &["needs a port, e.g. 127.0.0.1:53"],
    );
    assert_error(
        &with_upstream("server:\n  listen: []\n"),
        Some((4, 11)),
        "server.listen",
        &["at least one listen address is required"],
    );
    assert_error(
        &with_upstream("server:\n  listen: [127.0.0.1:53, \"[::1]:53\", 127.0.0.1:53]\n"),
        Some((4, 38)),
        "server.listen[2]",
        &["127.0.0.1:53 is listed twice (also server.listen[0])"],
    );
    assert_error(
        &with_upstream("server:\n  listen:\n    - 0.0.0.0:53\n    - 10.0.0.1:53\n"),
        Some((6, 7)),
        "server.listen[1]",
        &[
            "10.0.0.1:53 overlaps 0.0.0.0:53 (server.listen[0])",
            "wildcard",
        ],
    );
    // Different ports or families do not overlap.
    let yaml = with_upstream("server:\n  listen: [0.0.0.0:53, 10.0.0.1:54, \"[::1]:53\"]\n");
    Config::from_yaml_str(&yaml, "test.yaml").unwrap();
    assert_error(
        "server:\n  listen: [127.0.0.1:0]\n",
        Some((2, 12)),
        "server.listen[0]",
        &["port 0 is not allowed"],
    );
}

#[test]
fn io_memory_and_batch_errors() {
    assert_error(
        &with_upstream("server:\n  io_memory: 16KiB\n"),
        Some((4, 14)),
        "server.io_memory",
        &["16KiB is out of range: 64KiB to 1GiB"],
    );
    assert_error(
        &with_upstream("server:\n  io_memory: 100000\n"),
        Some((4, 14)),
        "server.io_memory",
        &["100KB is not a multiple of 4KiB"],
    );
    assert_error(
        "server:\n  io_memory: 64M\n",
        Some((2, 14)),
        "server.io_memory",
        &["write 64MiB (powers of 1024) or 64MB"],
    );
    assert_error(
        &with_upstream("server:\n  udp_recv_batch: 0\n"),
        Some((4, 19)),
        "server.udp_recv_batch",
        &["0 is out of range: 1 to 1024"],
    );
    assert_error(
        &with_upstream("server:\n  udp_recv_batch: 4096\n"),
        Some((4, 19)),
        "server.udp_recv_batch",
        &["4096 is out of range"],
    );
    assert_error(
        &with_upstream("server:\n  udp_coalesce: 2ms\n"),
        Some((4, 17)),
        "server.udp_coalesce",
        &["2ms is out of range: 0s (off) to 1ms"],
    );
    assert_error(
        &with_upstream("server:\n  udp_gso: sometimes\n"),
        Some((4, 12)),
        "server.udp_gso",
        &["expected a boolean"],
    );
}

// ---- Errors: cache ----

#[test]
fn shard_size_errors() {
    assert_error(
        &with_upstream("cache:\n  shard_size: 1KiB\n"),
        Some((4, 15)),
        "cache.shard_size",
        &["1KiB is out of range: 64KiB to 64GiB"],
    );
    assert_error(
        &with_upstream("cache:\n  shard_size: 1TB\n"),
        Some((4, 15)),
        "cache.shard_size",
        &["1TB is out of range"],
    );
    assert_error(
        "cache:\n  shard_size: 1.5GiB\n",
        Some((2, 15)),
        "cache.shard_size",
        &["use a whole number with a smaller unit"],
    );
    assert_error(
        "cache:\n  shard_size: lots\n",
        Some((2, 15)),
        "cache.shard_size",
        &["invalid size \"lots\"", "64MiB"],
    );
    assert_error(
        "cache:\n  shard_size: -5\n",
        Some((2, 15)),
        "cache.shard_size",
        &["cannot be negative"],
    );
}

#[test]
fn ttl_errors() {
    assert_error(
        &with_upstream("cache:\n  min_ttl: 2d\n"),
        Some((4, 12)),
        "cache.min_ttl",
        &["min_ttl 2d is greater than max_ttl 1d"],
    );
    assert_error(
        &with_upstream("cache:\n  min_ttl: 1m\n  max_ttl: 30s\n"),
        Some((4, 12)),
        "cache.min_ttl",
        &["min_ttl 1m is greater than max_ttl 30s"],
    );
    assert_error(
        &with_upstream("cache:\n  max_ttl: 1500ms\n"),
        Some((4, 12)),
        "cache.max_ttl",
        &["1500ms: DNS TTLs are whole seconds"],
    );
    assert_error(
        &with_upstream("cache:\n  negative_max_ttl: 100000d\n"),
        Some((4, 21)),
        "cache.negative_max_ttl",
        &["longer than the largest DNS TTL"],
    );
    assert_error(
        &with_upstream("cache:\n  servfail_ttl: 1h\n"),
        Some((4, 17)),
        "cache.servfail_ttl",
        &["1h is out of range", "RFC 9520"],
    );
    assert_error(
        "cache:\n  max_ttl: forever\n",
        Some((2, 12)),
        "cache.max_ttl",
        &["invalid duration \"forever\"", "800ms"],
    );
    assert_error(
        "cache:\n  min_ttl: -1\n",
        Some((2, 12)),
        "cache.min_ttl",
        &["cannot be negative"],
    );
}

// ---- Errors: hints ----

#[test]
fn channel_capacity_errors() {
    assert_error(
        &with_upstream("hints:\n  channel_capacity: 0\n"),
        Some((4, 21)),
        "hints.channel_capacity",
        &["0 is out of range: 1 to 1048576", "hints.enabled to false"],
    );
    assert_error(
        "hints:\n  channel_capacity: -1\n",
        Some((2, 21)),
        "hints.channel_capacity",
        &["expected a whole number (0 or more)"],
    );
}

#[test]
fn tcp_only_errors() {
    assert_error(
        "upstream:\n  servers: [9.9.9.9]\n  tcp_only: [9.9.9.10]\n",
        Some((3, 14)),
        "upstream.tcp_only[0]",
        &["9.9.9.10:53 is not one of upstream.servers"],
    );
    assert_error(
        "upstream:\n  servers: [9.9.9.9]\n  tcp_only: [9.9.9.9, 9.9.9.9]\n",
        Some((3, 23)),
        "upstream.tcp_only[1]",
        &["listed twice"],
    );
}

// ---- Errors: tcp ----

#[test]
fn tcp_errors() {
    assert_error(
        &with_upstream("tcp:\n  idle_timeout: 5ms\n"),
        Some((4, 17)),
        "tcp.idle_timeout",
        &["5ms is out of range: 10ms to 1h"],
    );
    assert_error(
        &with_upstream("tcp:\n  read_timeout: 2m\n"),
        Some((4, 17)),
        "tcp.read_timeout",
        &["2m is out of range: 10ms to 1m"],
    );
    assert_error(
        &with_upstream("tcp:\n  max_connections: 0\n"),
        Some((4, 20)),
        "tcp.max_connections",
        &["0 is out of range: 1 to 1048576"],
    );
    assert_error(
        &with_upstream("tcp:\n  max_pipelined: 70000\n"),
        Some((4, 18)),
        "tcp.max_pipelined",
        &["70000 is out of range: 1 to 65535"],
    );
    assert_error(
        &with_upstream("tcp:\n  keepalive: 1\n"),
        Some((4, 3)),
        "tcp.keepalive",
        &["unknown key `keepalive`", "idle_timeout"],
    );
}

// ---- Errors: upstream ----

#[test]
fn upstream_server_errors() {
    assert_error(
        "upstream:\n  servers: []\n",
        Some((2, 12)),
        "upstream.servers",
        &["at least one upstream server is required"],
    );
    assert_error(
        "log: {level: info}\n",
        None,
        "upstream.servers",
        &["at least one upstream server is required"],
    );
    assert_error(
        "upstream:\n  servers:\n    - 9.9.9.9\n    - dns.quad9.net\n",
        Some((4, 7)),
        "upstream.servers[1]",
        &["\"dns.quad9.net\" is a host name", "must be IP addresses"],
    );
    assert_error(
        "upstream:\n  servers:\n    - 9.9.9.9\n    - 9.9.9.9:53\n",
        Some((4, 7)),
        "upstream.servers[1]",
        &["9.9.9.9:53 is listed twice (also upstream.servers[0])"],
    );
    assert_error(
        "server:\n  listen: [127.0.0.1:5353]\nupstream:\n  servers: [1.1.1.1, 127.0.0.1:5353]\n",
        Some((4, 22)),
        "upstream.servers[1]",
        &[
            "127.0.0.1:5353 is heimdall's own listen address 127.0.0.1:5353",
            "loop",
        ],
    );
    assert_error(
        "server:\n  listen: [0.0.0.0:53]\nupstream:\n  servers: [127.0.0.1]\n",
        Some((4, 13)),
        "upstream.servers[0]",
        &["heimdall's own listen address 0.0.0.0:53"],
    );
    // A local resolver on another loopback address is not heimdall.
    let yaml = "server:\n  listen: [127.0.0.1:53]\nupstream:\n  servers: [127.0.0.53]\n";
    Config::from_yaml_str(yaml, "test.yaml").unwrap();
    assert_error(
        "upstream:\n  servers: [fe80::1]\n",
        Some((2, 13)),
        "upstream.servers[0]",
        &["link-local address needs the interface index"],
    );
    assert_error(
        "upstream:\n  servers: [fe80::1%eth0]\n",
        Some((2, 13)),
        "upstream.servers[0]",
        &["interface index instead of the name \"eth0\""],
    );
    assert_error(
        "upstream:\n  servers: [0.0.0.0]\n",
        Some((2, 13)),
        "upstream.servers[0]",
        &["unspecified"],
    );
    assert_error(
        "upstream:\n  servers:\n    - 53\n",
        Some((3, 7)),
        "upstream.servers[0]",
        &["invalid upstream server \"53\": expected an address such as 9.9.9.9"],
    );
}

#[test]
fn source_port_and_socket_errors() {
    assert_error(
        &with_upstream("  source_port_min: 2000\n  source_port_max: 1999\n"),
        Some((4, 20)),
        "upstream.source_port_max",
        &["1999 is below upstream.source_port_min (2000)"],
    );
    assert_error(
        &with_upstream("  max_sockets: 0\n"),
        Some((3, 16)),
        "upstream.max_sockets",
        &["0 is out of range"],
    );
    let config =
        Config::from_yaml_str(&with_upstream("  source_port_min: 40000\n"), "t.yaml").unwrap();
    assert_eq!(config.upstream.source_port_min, 40000);
    assert_eq!(config.upstream.source_port_max, 65535);
    assert_eq!(config.upstream.max_sockets, 1024);
    assert_eq!(config.server.shutdown_grace, std::time::Duration::ZERO);
}

#[test]
fn timeout_and_attempts_errors() {
    assert_error(
        &with_upstream("  timeout: 0ms\n"),
        Some((3, 12)),
        "upstream.timeout",
        &["0s is out of range: 1ms to 60s"],
    );
    assert_error(
        &with_upstream("  timeout: 800\n"),
        Some((3, 12)),
        "upstream.timeout",
        &["800s is out of range", "write 800ms for milliseconds"],
    );
    assert_error(
        &with_upstream("  attempts: 0\n"),
        Some((3, 13)),
        "upstream.attempts",
        &["0 is out of range: 1 to 16"],
    );
    assert_error(
        &with_upstream("  attempts: 17\n"),
        Some((3, 13)),
        "upstream.attempts",
        &["17 is out of range"],
    );
    assert_error(
        "upstream:\n  timeout: 2 seconds\n",
        Some((2, 12)),
        "upstream.timeout",
        &["unknown unit \"seconds\""],
    );
}

// ---- Errors: files ----

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("heimdall-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let missing = dir.join("missing.yaml");
    let message = Config::load(&missing).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{message}"
    );

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "upstream:\n  servers: [9.9.9.9]\n  attempts: 0\n").unwrap();
    let message = Config::load(&bad).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}:3:13: upstream.attempts: ", bad.display())),
        "{message}"
    );

    let good = dir.join("good.yaml");
    std::fs::write(&good, "upstream:\n  servers: [9.9.9.9]\n").unwrap();
    let config = Config::load(&good).unwrap();
    assert_eq!(config.source(), good.display().to_string());

    let huge = dir.join("huge.yaml");
    let filler = "#".repeat(usize::try_from(MAX_CONFIG_FILE_SIZE).unwrap() + 1);
    std::fs::write(&huge, filler).unwrap();
    let message = Config::load(&huge).unwrap_err().to_string();
    assert!(message.contains("larger than 1048576 bytes"), "{message}");

    let binary = dir.join("binary.yaml");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let message = Config::load(&binary).unwrap_err().to_string();
    assert!(message.contains("cannot read: "), "{message}");

    let message = Config::load(&dir).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: cannot read: ", dir.display())),
        "{message}"
    );

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn error_accessors() {
    let err = Config::from_yaml_str(&with_upstream("  attempts: 0\n"), "t").unwrap_err();
    assert_eq!(err.key(), Some("upstream.attempts"));
    assert_eq!(
        err.location(),
        Some(Location {
            line: 3,
            column: 13
        })
    );
    let err = Config::from_yaml_str("[1]", "t").unwrap_err();
    assert_eq!(err.key(), None);
}

// ---- Policy: local, blocklist, acl, rate_limit ----

#[test]
fn policy_sections_are_read() {
    let config = Config::from_yaml_str(
        &with_upstream(
            r#"local:
  records: ["printer.lan. 300 IN A 192.168.1.5", "nas.lan. IN AAAA fd00::5"]
  zones:
    - {name: lan., file: /etc/heimdall/lan.zone}
  delegations: forward
  builtins: false
blocklist:
  files:
    - {path: /etc/heimdall/ads.txt, format: hosts}
    - {path: ads2.txt}
  allow: [ok.example]
  allow_files: [/etc/heimdall/allow.txt]
  mode: "null"
  ttl: 1m
acl:
  allow: [203.0.113.0/24, "2001:db8::/32", 198.51.100.7]
  deny: [10.9.0.0/16]
  action: drop
  open_resolver: true
rate_limit:
  enabled: true
  rate: 5
  burst: 10
  ipv4_prefix: 32
  ipv6_prefix: 64
  table_size: 100
  action: truncate
"#,
        ),
        "test.yaml",
    )
    .unwrap();
    assert_eq!(config.local.records.len(), 2);
    assert_eq!(config.local.zones[0].name, "lan.");
    assert_eq!(
        config.local.zones[0].file,
        std::path::PathBuf::from("/etc/heimdall/lan.zone")
    );
    assert_eq!(config.local.delegations, crate::Delegations::Forward);
    assert!(!config.local.builtins);
    assert_eq!(config.blocklist.files.len(), 2);
    assert_eq!(
        config.blocklist.files[0].format,
        crate::ListFileFormat::Hosts
    );
    assert_eq!(
        config.blocklist.files[1].format,
        crate::ListFileFormat::Auto
    );
    assert_eq!(config.blocklist.mode, crate::BlockingMode::Null);
    assert_eq!(config.blocklist.ttl, Duration::from_secs(60));
    assert_eq!(config.acl.allow.len(), 3);
    assert_eq!(config.acl.action, crate::AclMode::Drop);
    assert!(config.acl.open_resolver);
    assert!(config.rate_limit.enabled);
    assert_eq!(config.rate_limit.rate, 5);
    assert_eq!(config.rate_limit.burst, 10);
    assert_eq!(config.rate_limit.ipv4_prefix, 32);
    assert_eq!(config.rate_limit.table_size, 100);
    assert_eq!(config.rate_limit.action, crate::RateLimitMode::Truncate);
    // And it writes back to the same thing.
    let yaml = config.to_yaml().unwrap();
    assert_eq!(Config::from_yaml_str(&yaml, "test.yaml").unwrap(), config);
}

#[test]
fn policy_defaults() {
    let config = Config::from_yaml_str(&with_upstream(""), "test.yaml").unwrap();
    assert!(config.local.records.is_empty() && config.local.zones.is_empty());
    assert!(config.local.builtins);
    assert_eq!(config.local.delegations, crate::Delegations::Referral);
    assert!(config.blocklist.files.is_empty());
    assert_eq!(config.blocklist.mode, crate::BlockingMode::Nxdomain);
    assert_eq!(config.blocklist.ttl, defaults::BLOCKLIST_TTL);
    assert_eq!(config.acl.action, crate::AclMode::Refuse);
    assert!(!config.acl.open_resolver);
    assert!(!config.rate_limit.enabled);
    assert_eq!(config.rate_limit.ipv4_prefix, 24);
    assert_eq!(config.rate_limit.ipv6_prefix, 56);
    assert_eq!(config.rate_limit.action, crate::RateLimitMode::Drop);
}

#[test]
fn policy_errors() {
    for (yaml, key, part) in [
        (
            "local:\n  records: [\"a.lan. 300 IN A 1.2.3\"]\n",
            "local.records[0]",
            "a.lan. 300 IN A 1.2.3",
        ),
        (
            "local:\n  zones: [{name: lan., file: a}, {name: LAN, file: b}]\n",
            "local.zones[1].name",
            "listed twice",
        ),
        (
            "local:\n  zones: [{name: lan.}]\n",
            "local.zones[0]",
            "missing key `file`",
        ),
        (
            "local:\n  delegations: sometimes\n",
            "local.delegations",
            "referral",
        ),
        (
            "blocklist:\n  files: [{path: a, format: csv}]\n",
            "blocklist.files[0].format",
            "adblock",
        ),
        (
            "blocklist:\n  allow: [\"bad..name\"]\n",
            "blocklist.allow[0]",
            "not a domain name",
        ),
        (
            "blocklist:\n  mode: sinkhole\n",
            "blocklist.mode",
            "nxdomain",
        ),
        (
            "blocklist:\n  ttl: 1500ms\n",
            "blocklist.ttl",
            "whole seconds",
        ),
        (
            "acl:\n  allow: [10.0.0.0/8, 10.0.0.0/33]\n",
            "acl.allow[1]",
            "\"10.0.0.0/33\" is not a network",
        ),
        (
            "acl:\n  deny: [nonsense]\n",
            "acl.deny[0]",
            "is not a network: write 10.0.0.0/8, 2001:db8::/32 or a single address",
        ),
        ("acl:\n  action: ignore\n", "acl.action", "refuse"),
        (
            "rate_limit:\n  burst: 0\n",
            "rate_limit.burst",
            "0 is out of range: at least 1 query (to stop limiting, set rate_limit.enabled to false)",
        ),
        (
            "rate_limit:\n  ipv4_prefix: 33\n",
            "rate_limit.ipv4_prefix",
            "33 is out of range: 0 to 32",
        ),
        (
            "rate_limit:\n  ipv6_prefix: 129\n",
            "rate_limit.ipv6_prefix",
            "129 is out of range: 0 to 128",
        ),
        (
            "rate_limit:\n  table_size: 0\n",
            "rate_limit.table_size",
            "0 is out of range",
        ),
        (
            "rate_limit:\n  action: slow\n",
            "rate_limit.action",
            "truncate",
        ),
        (
            "cookies:\n  secret: e5e973e5a6b2a43f48e7dc849e37bfc\n",
            "cookies.secret",
            "not 32 hex digits (31 characters)",
        ),
        (
            "cookies:\n  secret: x5e973e5a6b2a43f48e7dc849e37bfcf\n",
            "cookies.secret",
            "not 32 hex digits",
        ),
        (
            "cookies:\n  rotation: 0s\n",
            "cookies.rotation",
            "0s is out of range",
        ),
        (
            "cookies:\n  rotation: 1500ms\n",
            "cookies.rotation",
            "whole seconds",
        ),
        (
            "cookies:\n  udp_require_above: -1\n",
            "cookies.udp_require_above",
            "expected a whole number",
        ),
    ] {
        let message = error(&with_upstream(yaml));
        assert!(
            message.starts_with("test.yaml:") && message.contains(&format!(" {key}: ")),
            "{message:?} should name test.yaml and {key}"
        );
        assert!(
            message.contains(part),
            "{message:?} should contain {part:?}"
        );
        // The line of the offending key (the section starts on line 3).
        assert!(
            message.starts_with("test.yaml:3:") || message.starts_with("test.yaml:4:"),
            "{message:?} should give the line"
        );
    }
}

// ---- Operations: serve-stale, prefetch, persistence, control ----

#[test]
fn operations_defaults_and_values() {
    let config = Config::from_yaml_str(&with_upstream(""), "test.yaml").unwrap();
    assert_eq!(config.cache.stale_max_age, Duration::from_secs(86_400));
    assert_eq!(
        config.cache.stale_client_timeout,
        Duration::from_millis(1_800)
    );
    assert_eq!(config.cache.prefetch_threshold, 10);
    assert_eq!(config.cache.prefetch_min_hits, 3);
    assert_eq!(config.cache.persist, None);
    assert!(config.control.enabled);
    assert_eq!(config.control.listen, sa("127.0.0.1:9353"));

    let yaml = with_upstream(
        "cache:\n  stale_max_age: 0s\n  stale_client_timeout: 500ms\n  prefetch_threshold: 0\n  \
         prefetch_min_hits: 1\n  persist: /var/lib/heimdall/cache.bin\n\
         control:\n  enabled: false\n  listen: \"[::1]:8053\"\n",
    );
    let config = Config::from_yaml_str(&yaml, "test.yaml").unwrap();
    assert_eq!(config.cache.stale_max_age, Duration::ZERO);
    assert_eq!(
        config.cache.stale_client_timeout,
        Duration::from_millis(500)
    );
    assert_eq!(config.cache.prefetch_threshold, 0);
    assert_eq!(config.cache.prefetch_min_hits, 1);
    assert_eq!(
        config.cache.persist.as_deref(),
        Some(std::path::Path::new("/var/lib/heimdall/cache.bin"))
    );
    assert!(!config.control.enabled);
    assert_eq!(config.control.listen, sa("[::1]:8053"));
    // The effective configuration reads back to the same thing.
    let again = Config::from_yaml_str(&config.to_yaml().unwrap(), "test.yaml").unwrap();
    assert_eq!(again.cache, config.cache);
    assert_eq!(again.control, config.control);
}

#[test]
fn operations_errors() {
    assert_error(
        &with_upstream("control:\n  token: short\n"),
        Some((4, 10)),
        "control.token",
        &["at least 16 characters"],
    );
    let long = format!("/run/{}.sock", "a".repeat(110));
    assert_error(
        &with_upstream(&format!("control:\n  socket: {long}\n")),
        Some((4, 11)),
        "control.socket",
        &["too long for a unix socket path"],
    );
    let config = Config::from_yaml_str(
        &with_upstream(
            "control:\n  socket: \"\"\n  token: 0123456789abcdef\nlog:\n  format: json\n",
        ),
        "test.yaml",
    )
    .unwrap();
    assert!(config.control.socket.as_os_str().is_empty());
    assert_eq!(config.control.token.as_deref(), Some("0123456789abcdef"));
    assert_eq!(config.log.format, crate::LogFormat::Json);
    let defaults = Config::from_yaml_str(&with_upstream(""), "test.yaml").unwrap();
    assert_eq!(
        defaults.control.socket,
        std::path::Path::new("/run/heimdall/control.sock")
    );
    assert_eq!(defaults.control.token, None);
    assert_eq!(defaults.log.format, crate::LogFormat::Text);
    assert_error(
        &with_upstream("cache:\n  stale_max_age: 8d\n"),
        Some((4, 18)),
        "cache.stale_max_age",
        &["8d is out of range: 0s (off) to 7d"],
    );
    assert_error(
        &with_upstream("cache:\n  stale_client_timeout: 50ms\n"),
        Some((4, 25)),
        "cache.stale_client_timeout",
        &["50ms is out of range: 100ms to 30s"],
    );
    assert_error(
        &with_upstream("cache:\n  prefetch_threshold: 51\n"),
        Some((4, 23)),
        "cache.prefetch_threshold",
        &["51 is out of range: 0 (off) to 50 percent"],
    );
    assert_error(
        &with_upstream("cache:\n  prefetch_min_hits: 0\n"),
        Some((4, 22)),
        "cache.prefetch_min_hits",
        &[
            "0 is out of range: 1 to 1000000",
            "cache.prefetch_threshold to 0",
        ],
    );
    assert_error(
        &with_upstream("cache:\n  persist: \"\"\n"),
        Some((4, 12)),
        "cache.persist",
        &["must be a file path"],
    );
    assert_error(
        &with_upstream("control:\n  listen: 127.0.0.1:5353\n"),
        Some((4, 11)),
        "control.listen",
        &["overlaps the DNS listen address 127.0.0.1:5353"],
    );
    assert_error(
        &with_upstream("server:\n  listen: [\"0.0.0.0:53\"]\ncontrol:\n  listen: 127.0.0.1:53\n"),
        Some((6, 11)),
        "control.listen",
        &["overlaps the DNS listen address 0.0.0.0:53"],
    );
    assert_error(
        &with_upstream("control:\n  port: 1\n"),
        Some((4, 3)),
        "control.port",
        &["unknown key `port`, expected one of `enabled`, `listen`, `metrics_per_core`"],
    );
    // A disabled endpoint may name any address.
    let yaml = with_upstream("control:\n  enabled: false\n  listen: 127.0.0.1:5353\n");
    assert!(Config::from_yaml_str(&yaml, "test.yaml").is_ok());
}

// ---- upstream.servers entries with a transport ----

#[test]
fn upstream_entries_may_name_their_transport() {
    let yaml = r#"
upstream:
  servers:
    - 9.9.9.9
    - {address: 149.112.112.112, transport: tcp}
    - address: "[2620:fe::fe]:5353"
      transport: udp
    - {address: 10.0.0.1:5300}
"#;
    let config = Config::from_yaml_str(yaml, "test.yaml").unwrap();
    assert_eq!(
        config.upstream.servers,
        vec![
            Upstream::udp(sa("9.9.9.9:53")),
            Upstream::new(sa("149.112.112.112:53"), UpstreamTransport::Tcp),
            Upstream::udp(sa("[2620:fe::fe]:5353")),
            Upstream::udp(sa("10.0.0.1:5300")),
        ]
    );
    // A UDP server is written as its address, any other as a mapping; the
    // text reads back to the same configuration.
    let written = config.to_yaml().unwrap();
    for line in [
        "  - 9.9.9.9:53",
        "  - address: 149.112.112.112:53",
        "    transport: tcp",
        "  - '[2620:fe::fe]:5353'",
        "  - 10.0.0.1:5300",
    ] {
        assert!(
            written.lines().any(|l| l == line),
            "{line:?} not in:\n{written}"
        );
    }
    assert_eq!(
        Config::from_yaml_str(&written, "test.yaml").unwrap(),
        config
    );
}

#[test]
fn tcp_only_is_a_deprecated_alias_for_transport_tcp() {
    let old = Config::from_yaml_str(
        "upstream:\n  servers: [9.9.9.9, 9.9.9.10]\n  tcp_only: [9.9.9.10]\n",
        "test.yaml",
    )
    .unwrap();
    let new = Config::from_yaml_str(
        "upstream:\n  servers: [9.9.9.9, {address: 9.9.9.10, transport: tcp}]\n",
        "test.yaml",
    )
    .unwrap();
    assert_eq!(old, new);
    assert_eq!(tcp_servers(&old), vec![sa("9.9.9.10:53")]);
    // Listing a server that already says tcp changes nothing.
    let both = Config::from_yaml_str(
        "upstream:\n  servers: [{address: 9.9.9.10, transport: tcp}]\n  tcp_only: [9.9.9.10]\n",
        "test.yaml",
    )
    .unwrap();
    assert_eq!(tcp_servers(&both), vec![sa("9.9.9.10:53")]);
    // The alias is not written back: the server says tcp itself.
    let written = old.to_yaml().unwrap();
    assert!(!written.contains("tcp_only"), "{written}");
    assert!(written.contains("transport: tcp"), "{written}");
    assert_eq!(Config::from_yaml_str(&written, "test.yaml").unwrap(), old);
}

#[test]
fn upstream_transport_errors() {
    // DNS over TLS: accepted with a name, refused without one.
    let tls = Config::from_yaml_str(
        "upstream:\n  servers:\n    - {address: 1.1.1.1:853, transport: tls, name: cloudflare-dns.com}\n",
        "test.yaml",
    )
    .unwrap();
    assert_eq!(
        tls.upstream.servers,
        vec![
            Upstream::new(sa("1.1.1.1:853"), UpstreamTransport::Tls)
                .with_name("cloudflare-dns.com")
        ]
    );
    let written = tls.to_yaml().unwrap();
    assert_eq!(Config::from_yaml_str(&written, "test.yaml").unwrap(), tls);
    assert_error(
        "upstream:\n  servers:\n    - {address: 1.1.1.1:853, transport: tls}\n",
        Some((3, 7)),
        "upstream.servers[0]",
        &[
            "a tls server needs `name`",
            "transport: tls, name: dns.example",
        ],
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: 1.1.1.1:853, transport: tls, name: \"bad name\"}\n",
        Some((3, 52)),
        "upstream.servers[0].name",
        &["\"bad name\" is not a host name"],
    );
    assert_error(
        "upstream:\n  servers:\n    - 9.9.9.9\n    - address: 1.1.1.1\n      transport: https\n",
        Some((4, 7)),
        "upstream.servers[1]",
        &["a https server needs `name`"],
    );
    let https = Config::from_yaml_str(
        "upstream:\n  servers:\n    - {address: 1.1.1.1:443, transport: https, name: cloudflare-dns.com}\n",
        "test.yaml",
    )
    .unwrap();
    assert_eq!(
        https.upstream.servers[0].transport,
        UpstreamTransport::Https
    );
    // SPKI pins: 32 bytes of base64, tls and https only.
    let pin = "d6qzRu9zOECb90Uez27xWltNsj0e1Md7GkYYkVoZWmM=";
    let pinned = Config::from_yaml_str(
        &format!(
            "upstream:\n  servers:\n    - {{address: 1.1.1.1:853, transport: tls, name: x.test, pin: \"{pin}\"}}\n"
        ),
        "test.yaml",
    )
    .unwrap();
    assert_eq!(pinned.upstream.servers[0].pin.as_deref(), Some(pin));
    let written = pinned.to_yaml().unwrap();
    assert_eq!(
        Config::from_yaml_str(&written, "test.yaml").unwrap(),
        pinned
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: 1.1.1.1:853, transport: tls, name: x.test, pin: abc}\n",
        Some((3, 65)),
        "upstream.servers[0].pin",
        &["\"abc\" is not an SPKI pin"],
    );
    assert_error(
        &format!("upstream:\n  servers:\n    - {{address: 1.1.1.1, pin: \"{pin}\"}}\n"),
        Some((3, 31)),
        "upstream.servers[0].pin",
        &["a udp server has none"],
    );
    // A DoH path: https only, absolute, URL characters, bounded.
    let custom = Config::from_yaml_str(
        "upstream:\n  servers:\n    - {address: 127.0.0.1:8443, transport: https, name: dns.example, path: /custom/q}\n",
        "test.yaml",
    )
    .unwrap();
    assert_eq!(
        custom.upstream.servers[0].path.as_deref(),
        Some("/custom/q")
    );
    assert_eq!(
        Config::from_yaml_str(&custom.to_yaml().unwrap(), "test.yaml").unwrap(),
        custom
    );
    for (path, column) in [("custom", 71), ("\"/a b\"", 71), ("\"/q?dns=x\"", 71)] {
        assert_error(
            &format!(
                "upstream:\n  servers:\n    - {{address: 127.0.0.1:8443, transport: https, name: d.test, path: {path}}}\n"
            ),
            Some((3, column)),
            "upstream.servers[0].path",
            &["is not a URL path", "starts with '/'"],
        );
    }
    let long = format!("/{}", "a".repeat(256));
    assert_error(
        &format!(
            "upstream:\n  servers:\n    - {{address: 127.0.0.1:8443, transport: https, name: d.test, path: {long}}}\n"
        ),
        Some((3, 71)),
        "upstream.servers[0].path",
        &["at most 256 characters"],
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: 127.0.0.1:853, transport: tls, name: d.test, path: /q}\n",
        Some((3, 68)),
        "upstream.servers[0].path",
        &["a tls server has none"],
    );
    assert_error(
        "upstream:\n  servers: [9.9.9.9]\n  tls_ca_file: /nonexistent/ca.pem\n",
        Some((3, 16)),
        "upstream.tls_ca_file",
        &["cannot read /nonexistent/ca.pem"],
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: 9.9.9.9, transport: tcp, name: dns.quad9.net}\n",
        Some((3, 48)),
        "upstream.servers[0].name",
        &[
            "\"dns.quad9.net\"",
            "certificate",
            "a tcp server has none, so leave the key out",
        ],
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: 9.9.9.9, name: dns.quad9.net}\n",
        Some((3, 32)),
        "upstream.servers[0].name",
        &["a udp server has none"],
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: 9.9.9.9, transport: quic}\n",
        Some((3, 37)),
        "upstream.servers[0].transport",
        &["unknown variant `quic`, expected one of `udp`, `tcp`, `tls`, `https`"],
    );
    assert_error(
        "upstream:\n  servers:\n    - {transport: tcp}\n",
        Some((3, 7)),
        "upstream.servers[0]",
        &["missing key `address`"],
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: 9.9.9.9, port: 53}\n",
        Some((3, 26)),
        "upstream.servers[0].port",
        &["unknown key `port`"],
    );
    assert_error(
        "upstream:\n  servers:\n    - {address: dns.quad9.net, transport: tcp}\n",
        Some((3, 17)),
        "upstream.servers[0].address",
        &["\"dns.quad9.net\" is a host name"],
    );
    // The same address twice is refused whatever the transports.
    assert_error(
        "upstream:\n  servers:\n    - 9.9.9.9\n    - {address: 9.9.9.9, transport: tcp}\n",
        Some((4, 7)),
        "upstream.servers[1]",
        &["9.9.9.9:53 is listed twice (also upstream.servers[0])"],
    );
    // So is heimdall's own listen address.
    assert_error(
        "server:\n  listen: [127.0.0.1:5353]\nupstream:\n  servers: [{address: 127.0.0.1:5353, transport: tcp}]\n",
        Some((4, 13)),
        "upstream.servers[0]",
        &["127.0.0.1:5353 is heimdall's own listen address 127.0.0.1:5353"],
    );
    // tcp_only still names only servers.
    assert_error(
        "upstream:\n  servers: [{address: 9.9.9.9, transport: tcp}]\n  tcp_only: [9.9.9.10]\n",
        Some((3, 14)),
        "upstream.tcp_only[0]",
        &["9.9.9.10:53 is not one of upstream.servers"],
    );
}
#[test]
fn upstream_entries_of_the_wrong_shape() {
    // Unquoted, `[2620:fe::fe]:53` is a mapping whose key is a list.
    assert_error(
        "upstream:\n  servers: [[2620:fe::fe]:53]\n",
        Some((2, 13)),
        "upstream.servers[0]",
        &["invalid type: sequence", "(IPv6 addresses must be quoted)"],
    );
    assert_error(
        "upstream:\n  servers: [~]\n",
        Some((2, 13)),
        "upstream.servers[0]",
        &[
            "invalid type: empty value",
            "or a mapping such as {address: 9.9.9.9",
        ],
    );
    assert_error(
        "upstream:\n  servers: [true]\n",
        Some((2, 13)),
        "upstream.servers[0]",
        &["invalid upstream server \"true\""],
    );
    assert_error(
        "upstream:\n  servers: [{address: 9.9.9.9, address: 9.9.9.8}]\n",
        Some((2, 13)),
        "upstream.servers[0]",
        &["duplicate key `address`"],
    );
}

#[test]
fn cookies_default_on_with_a_daily_rotation_and_take_a_shared_secret() {
    let config = Config::from_yaml_str(&with_upstream(""), "test.yaml").unwrap();
    assert!(config.cookies.enabled);
    assert_eq!(config.cookies.secret, None);
    assert_eq!(config.cookies.rotation, Duration::from_secs(86_400));
    assert_eq!(config.cookies.udp_require_above, 0);
    let yaml = with_upstream(
        "cookies:\n  enabled: false\n  secret: E5E973E5A6B2A43F48E7DC849E37BFCF\n  \
         rotation: 1h\n  udp_require_above: 50\n",
    );
    let config = Config::from_yaml_str(&yaml, "test.yaml").unwrap();
    assert!(!config.cookies.enabled);
    assert_eq!(
        config.cookies.secret.as_deref(),
        Some("E5E973E5A6B2A43F48E7DC849E37BFCF")
    );
    assert_eq!(config.cookies.rotation, Duration::from_secs(3600));
    assert_eq!(config.cookies.udp_require_above, 50);
}

// ---- dnssec ----

#[test]
fn dnssec_validates_by_default_and_is_read_when_given() {
    let config = Config::from_yaml_str(&with_upstream(""), "test.yaml").unwrap();
    assert_eq!(config.dnssec.mode, crate::DnssecMode::Validate);
    assert!(config.dnssec.trust_anchors.is_empty());
    assert_eq!(config.dnssec.clock_skew, Duration::from_secs(3600));
    assert_eq!(config.dnssec.nsec3_max_iterations, 50);
    let yaml = with_upstream(
        "dnssec:\n  mode: off\n  trust_anchors: [/etc/heimdall/test.ds]\n  \
         negative_trust_anchors: [broken.example]\n  clock_skew: 5m\n  \
         nsec3_max_iterations: 0\n",
    );
    let config = Config::from_yaml_str(&yaml, "test.yaml").unwrap();
    assert_eq!(config.dnssec.mode, crate::DnssecMode::Off);
    assert_eq!(config.dnssec.negative_trust_anchors, ["broken.example"]);
    assert_eq!(config.dnssec.clock_skew, Duration::from_secs(300));
    assert_eq!(config.dnssec.nsec3_max_iterations, 0);
    let again = Config::from_yaml_str(&config.to_yaml().unwrap(), "test.yaml").unwrap();
    assert_eq!(again.dnssec, config.dnssec);
    assert_error(
        &with_upstream("dnssec:\n  negative_trust_anchors: [\"a..b\"]\n"),
        Some((4, 28)),
        "dnssec.negative_trust_anchors[0]",
        &["not a domain name"],
    );
    assert!(Config::from_yaml_str(&with_upstream("dnssec:\n  mode: strict\n"), "t.yaml").is_err());
}

// ---- dnstap ----

#[test]
fn dnstap_is_off_by_default_and_read_when_given() {
    let config = Config::from_yaml_str(&with_upstream(""), "test.yaml").unwrap();
    assert!(!config.dnstap.enabled);
    assert_eq!(config.dnstap.socket, None);
    assert!(config.dnstap.log_client_queries && config.dnstap.log_forwarder_responses);
    assert_eq!(config.dnstap.buffer_frames, 10_000);
    let yaml = with_upstream(
        "dnstap:\n  enabled: true\n  socket: /run/heimdall/dnstap.sock\n  identity: \"\"\n  \
         version: v1\n  log_forwarder_queries: false\n  buffer_frames: 64\n",
    );
    let config = Config::from_yaml_str(&yaml, "test.yaml").unwrap();
    assert!(config.dnstap.enabled);
    assert_eq!(
        config.dnstap.socket.as_deref(),
        Some(std::path::Path::new("/run/heimdall/dnstap.sock"))
    );
    assert_eq!(config.dnstap.identity.as_deref(), Some(""));
    assert_eq!(config.dnstap.version.as_deref(), Some("v1"));
    assert!(!config.dnstap.log_forwarder_queries);
    assert!(config.dnstap.log_client_responses);
    assert_eq!(config.dnstap.buffer_frames, 64);
    let again = Config::from_yaml_str(&config.to_yaml().unwrap(), "test.yaml").unwrap();
    assert_eq!(again.dnstap, config.dnstap);
    assert_eq!(
        crate::reload_behaviour("dnstap.log_client_queries"),
        crate::ReloadBehaviour::Restart
    );
}

#[test]
fn dnstap_errors() {
    assert_error(
        &with_upstream("dnstap:\n  enabled: true\n"),
        None,
        "dnstap.socket",
        &["no socket is named", "/run/heimdall/dnstap.sock"],
    );
    assert_error(
        &with_upstream("dnstap:\n  socket: \"\"\n"),
        Some((4, 11)),
        "dnstap.socket",
        &["must be a unix socket path"],
    );
    let long = format!("/{}", "s".repeat(110));
    assert_error(
        &with_upstream(&format!("dnstap:\n  socket: {long}\n")),
        Some((4, 11)),
        "dnstap.socket",
        &["111 bytes is too long", "at most 107"],
    );
    assert_error(
        &with_upstream(&format!("dnstap:\n  version: {}\n", "v".repeat(256))),
        Some((4, 12)),
        "dnstap.version",
        &["256 bytes is too long (at most 255)"],
    );
    assert_error(
        &with_upstream("dnstap:\n  buffer_frames: 0\n"),
        Some((4, 18)),
        "dnstap.buffer_frames",
        &["0 is out of range: 1 to 1048576"],
    );
    assert_error(
        &with_upstream("dnstap:\n  log_client_query: true\n"),
        Some((4, 3)),
        "dnstap.log_client_query",
        &["unknown key"],
    );
}

#[test]
fn tls_listeners_need_a_readable_certificate_and_key() {
    let dir = std::env::temp_dir().join(format!("heimdall-config-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, "not checked here").unwrap();
    let with = |tls: &str| format!("upstream: {{servers: [9.9.9.9]}}\ntls:\n{tls}");
    // Off: nothing is required.
    let off = Config::from_yaml_str(&with("  https_path: /q\n"), "test.yaml").unwrap();
    assert!(off.tls.listen.is_empty() && off.tls.certificate.is_none());
    assert_eq!(off.tls.https_path, "/q");
    assert_error(
        &with("  listen: [127.0.0.1:853]\n"),
        Some((3, 3)),
        "tls",
        &["tls.listen, tls.https_listen or tls.quic_listen is set, so tls.certificate is required"],
    );
    assert_error(
        &with(&format!(
            "  https_listen: [127.0.0.1:443]\n  certificate: {}\n  key: /nonexistent/key.pem\n",
            cert.display()
        )),
        Some((5, 8)),
        "tls.key",
        &["cannot read /nonexistent/key.pem"],
    );
    let both = Config::from_yaml_str(
        &with(&format!(
            "  listen: [127.0.0.1:853]\n  certificate: {c}\n  key: {c}\n",
            c = cert.display()
        )),
        "test.yaml",
    )
    .unwrap();
    assert_eq!(both.tls.listen, vec![sa("127.0.0.1:853")]);
    assert_eq!(both.tls.https_path, "/dns-query");
    assert_error(
        &with("  listen: [127.0.0.1:5353]\n"),
        Some((3, 12)),
        "tls.listen[0]",
        &["overlaps server.listen[0]"],
    );
    assert_error(
        &with("  https_path: dns-query\n"),
        Some((3, 15)),
        "tls.https_path",
        &["a leading '/'"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
