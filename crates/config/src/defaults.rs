//! Default values of the keys whose default other crates need too (the
//! resolver's own defaults are these), named once here and used by the key
//! table in `keys`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// `server.listen`: loopback on an unprivileged port, so that a first
/// run touches neither the host's resolver nor the network.
pub const LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5353));
/// `server.io_memory`: small, because io_uring pins this memory against
/// RLIMIT_MEMLOCK on every core, and glommio's own default (10 MiB)
/// does not fit the common 8 MiB limit.
pub const IO_MEMORY: usize = 512 << 10;
/// `server.udp_recv_batch`.
pub const UDP_RECV_BATCH: usize = 32;
/// `server.udp_gso`.
pub const UDP_GSO: bool = true;
/// `server.udp_coalesce`.
pub const UDP_COALESCE: Duration = Duration::from_micros(50);
/// Queries per second at which name steering spreads a name over every
/// core: 2 % of what one core answers from its cache here.
pub const STEERING_SPREAD: u32 = 10_000;
/// `cache.shard_size`.
pub const SHARD_SIZE: usize = 64 << 20;
/// `cache.min_ttl`: answers keep the TTL their owner gave.
pub const MIN_TTL: Duration = Duration::from_secs(0);
/// `cache.max_ttl`.
pub const MAX_TTL: Duration = Duration::from_secs(86_400);
/// `cache.negative_max_ttl`: RFC 2308 suggests one to three hours.
pub const NEGATIVE_MAX_TTL: Duration = Duration::from_secs(3_600);
/// `cache.servfail_ttl`.
pub const SERVFAIL_TTL: Duration = Duration::from_secs(5);
/// `cache.stale_max_age`: RFC 8767 section 5 suggests one to three
/// days of stale data.
pub const STALE_MAX_AGE: Duration = Duration::from_secs(86_400);
/// `cache.stale_client_timeout`: RFC 8767 section 5 suggests 1.8 s.
pub const STALE_CLIENT_TIMEOUT: Duration = Duration::from_millis(1_800);
/// `cache.prefetch_threshold`: percent of an answer's lifetime left.
pub const PREFETCH_THRESHOLD: u8 = 10;
/// `cache.prefetch_min_hits`.
pub const PREFETCH_MIN_HITS: u32 = 3;
/// `control.enabled`.
pub const CONTROL_ENABLED: bool = true;
/// `control.listen`: loopback only, because the endpoint has no
/// authentication. Port 9353: not 9153, which CoreDNS (and
/// dnsmasq_exporter) use for their metrics, nor any other port a DNS
/// server or DNS exporter is known for (unbound-control 8953, Tor's
/// DNSPort 9053, bind_exporter 9119, unbound_exporter 9167).
pub const CONTROL_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9353));
/// `control.metrics_per_core`.
pub const CONTROL_METRICS_PER_CORE: bool = true;
/// The configuration file heimdall reads when no `--config` is given and
/// the file exists (else it runs on the embedded default).
pub const CONFIG_PATH: &str = "/etc/heimdall/heimdall.yaml";
/// `control.socket`: where `heimdall ctl` finds the server.
pub const CONTROL_SOCKET: &str = "/run/heimdall/control.sock";
/// `hints.enabled`.
pub const HINTS_ENABLED: bool = true;
/// `hints.channel_capacity`.
pub const HINT_CHANNEL_CAPACITY: usize = 1024;
/// `upstream.timeout`.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(800);
/// `upstream.attempts`.
pub const UPSTREAM_ATTEMPTS: u32 = 3;
/// `upstream.source_port_min`: the ports below 1024 are the privileged ones.
pub const UPSTREAM_SOURCE_PORT_MIN: u16 = 1024;
/// `upstream.source_port_max`.
pub const UPSTREAM_SOURCE_PORT_MAX: u16 = 65535;
/// `upstream.max_sockets`: Unbound's `outgoing-range` is 4096 per thread
/// (with libevent); 1024 per core keeps well under a default `ulimit -n`.
pub const UPSTREAM_MAX_SOCKETS: usize = 1024;
/// `upstream.socket_uses`: the most reuse the cold-rate budget needed (a
/// socket also closes after 1 s; docs/ARCHITECTURE.md has the A/B).
pub const UPSTREAM_SOCKET_USES: u32 = 64;
/// `upstream.qname_case_randomization`: DNS 0x20 on.
pub const UPSTREAM_QNAME_CASE_RANDOMIZATION: bool = true;
/// `upstream.cookies`: DNS cookies toward upstreams (RFC 7873) on.
pub const UPSTREAM_COOKIES: bool = true;
/// `tcp.idle_timeout`: a client connection with no query outstanding
/// and none arriving is closed after this long.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// `tcp.read_timeout`: once a message has begun (its first length
/// byte arrived), all of it must arrive within this time.
pub const TCP_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// `tcp.max_connections`: client connections per core.
pub const TCP_MAX_CONNECTIONS: usize = 1024;
/// `tcp.max_pipelined`: queries outstanding on one connection.
pub const TCP_MAX_PIPELINED: usize = 64;
/// `local.builtins`: the RFC 6761 / RFC 6303 local zones.
pub const LOCAL_BUILTINS: bool = true;
/// TTL of `local.records` lines that give none.
pub const LOCAL_RECORD_TTL: u32 = 3_600;
/// `blocklist.ttl`: TTL of null-address answers to blocked names.
pub const BLOCKLIST_TTL: Duration = Duration::from_secs(300);
/// `rate_limit.enabled`.
pub const RATE_LIMIT_ENABLED: bool = false;
/// `rate_limit.rate`: queries per second per client prefix, whole
/// server.
pub const RATE_LIMIT_RATE: u32 = 200;
/// `rate_limit.burst`.
pub const RATE_LIMIT_BURST: u32 = 400;
/// `rate_limit.ipv4_prefix`.
pub const RATE_LIMIT_IPV4_PREFIX: u8 = 24;
/// `rate_limit.ipv6_prefix`.
pub const RATE_LIMIT_IPV6_PREFIX: u8 = 56;
/// `rate_limit.table_size`: client prefixes tracked per core.
pub const RATE_LIMIT_TABLE_SIZE: usize = 65_536;
/// `cookies.enabled`: answering cookies costs one SipHash per reply that
/// carries one, and protects the clients that send them.
pub const COOKIES_ENABLED: bool = true;
/// `cookies.rotation`: a day. A cookie lives at most an hour anyway (RFC
/// 9018), so a client never sees a rotation as more than a fresh cookie;
/// a day bounds how many cookies one secret makes, and a derived secret
/// costs nothing to change.
pub const COOKIES_ROTATION: Duration = Duration::from_secs(86_400);
/// `dnstap.enabled`: off; dnstap needs a reader listening.
pub const DNSTAP_ENABLED: bool = false;
/// `dnstap.buffer_frames`: messages buffered per core for the writer
/// (CoreDNS's dnstap queue has the same size).
pub const DNSTAP_BUFFER_FRAMES: usize = 10_000;
/// `dnssec.clock_skew`: an hour, Unbound's minimum skew
/// (`val-sig-skew-min`), as heimdall-dnssec's `DEFAULT_CLOCK_SKEW`.
pub const DNSSEC_CLOCK_SKEW: Duration = Duration::from_secs(3600);
/// `dnssec.aggressive_nsec`: off until it has run in production for a
/// while (RFC 8198 is optional; Unbound's `aggressive-nsec` defaults to
/// yes since 1.15).
pub const DNSSEC_AGGRESSIVE_NSEC: bool = false;
/// `dnssec.nsec3_max_iterations`: 50, BIND's and Knot Resolver's limit
/// (RFC 9276), as heimdall-dnssec's `DEFAULT_NSEC3_MAX_ITERATIONS`.
pub const DNSSEC_NSEC3_MAX_ITERATIONS: u16 = 50;

/// `tls.https_path`: the URL path of DNS over HTTPS (RFC 8484's example).
pub const HTTPS_PATH: &str = "/dns-query";
/// `tls.ticket_rotation`: rustls's own rotation period.
pub const TLS_TICKET_ROTATION: Duration = Duration::from_secs(6 * 3600);
