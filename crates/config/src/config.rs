//! The validated [`Config`] and its sections, the ways to obtain one (a
//! file, a YAML text, the embedded default) and the way to print it back.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::cores::CoreSelection;
use crate::error::ConfigError;
use crate::raw::RawConfig;
use crate::resolv_conf::{self, RESOLV_CONF_PATH};
use crate::validate;

/// The commented default configuration, as `heimdall default-config`
/// prints it. Its `upstream.servers` is empty: when heimdall runs without a
/// config file they come from resolv.conf (see [`Config::embedded_default`]).
pub const DEFAULT_CONFIG_YAML: &str = include_str!("default.yaml");

/// The source name errors give for [`DEFAULT_CONFIG_YAML`].
pub const EMBEDDED_DEFAULT_SOURCE: &str = "<embedded default>";

/// Config files larger than this are refused: a real one is a few KiB, and
/// the bound keeps a wrong path (a log, a device) from being read whole.
pub const MAX_CONFIG_FILE_SIZE: u64 = 1 << 20;

/// Default values, shared by the raw schema and the tests that check the
/// embedded YAML and `deploy/heimdall.yaml` against them.
pub mod defaults {
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
    pub const UDP_COALESCE: Duration = Duration::from_micros(200);
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
    /// authentication.
    pub const CONTROL_LISTEN: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9153));
    /// `hints.enabled`.
    pub const HINTS_ENABLED: bool = true;
    /// `hints.channel_capacity`.
    pub const HINT_CHANNEL_CAPACITY: usize = 1024;
    /// `upstream.timeout`.
    pub const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(800);
    /// `upstream.attempts`.
    pub const UPSTREAM_ATTEMPTS: u32 = 3;
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
}

/// The bounds validation enforces, so that the server can rely on them.
pub mod limits {
    use std::time::Duration;

    /// `cache.shard_size` at least: below this a shard holds too few
    /// answers to be worth a lookup.
    pub const SHARD_SIZE_MIN: usize = 64 << 10;
    /// `cache.shard_size` at most, per core; larger is almost surely a
    /// unit mistake.
    pub const SHARD_SIZE_MAX: usize = 64 << 30;
    /// `server.io_memory` at least: glommio rounds smaller values up to
    /// this.
    pub const IO_MEMORY_MIN: usize = 64 << 10;
    /// `server.io_memory` at most.
    pub const IO_MEMORY_MAX: usize = 1 << 30;
    /// `server.io_memory` is a multiple of this (glommio rounds up to
    /// pages; refusing other values keeps the file truthful).
    pub const IO_MEMORY_ALIGN: usize = 4096;
    /// `server.udp_recv_batch` at most: the kernel caps one recvmmsg or
    /// sendmmsg at UIO_MAXIOV (1024) messages.
    pub const UDP_RECV_BATCH_MAX: usize = 1024;
    /// `server.udp_coalesce` at most: a reply may wait this long, so more
    /// than a millisecond would be a latency the operator did not mean.
    pub const UDP_COALESCE_MAX: Duration = Duration::from_millis(1);
    /// Largest TTL, 2^31 - 1 seconds (RFC 2181, section 8).
    pub const TTL_MAX: Duration = Duration::from_secs((1 << 31) - 1);
    /// `cache.servfail_ttl` at least: RFC 9520 section 3.2 asks resolvers
    /// to remember a failure for at least one second.
    pub const SERVFAIL_TTL_MIN: Duration = Duration::from_secs(1);
    /// `cache.servfail_ttl` at most: five seconds, so a recovered upstream
    /// is used again quickly (RFC 9520 section 3.2 suggests 1 to 5 s).
    pub const SERVFAIL_TTL_MAX: Duration = Duration::from_secs(5);
    /// `cache.stale_max_age` at most: a week; RFC 8767 suggests one to
    /// three days.
    pub const STALE_MAX_AGE_MAX: Duration = Duration::from_secs(7 * 86_400);
    /// `cache.stale_client_timeout` at least.
    pub const STALE_CLIENT_TIMEOUT_MIN: Duration = Duration::from_millis(100);
    /// `cache.stale_client_timeout` at most.
    pub const STALE_CLIENT_TIMEOUT_MAX: Duration = Duration::from_secs(30);
    /// `cache.prefetch_threshold` at most, in percent: refreshing earlier
    /// than halfway through a TTL only adds upstream load.
    pub const PREFETCH_THRESHOLD_MAX: u8 = 50;
    /// `cache.prefetch_min_hits` at most.
    pub const PREFETCH_MIN_HITS_MAX: u32 = 1_000_000;
    /// `hints.channel_capacity` at most.
    pub const HINT_CHANNEL_CAPACITY_MAX: usize = 1 << 20;
    /// `upstream.timeout` at least.
    pub const UPSTREAM_TIMEOUT_MIN: Duration = Duration::from_millis(1);
    /// `upstream.timeout` at most; more is almost surely a unit mistake
    /// (a plain number is seconds).
    pub const UPSTREAM_TIMEOUT_MAX: Duration = Duration::from_secs(60);
    /// `upstream.attempts` at most.
    pub const UPSTREAM_ATTEMPTS_MAX: u32 = 16;
    /// `tcp.idle_timeout` and `tcp.read_timeout` at least.
    pub const TCP_TIMEOUT_MIN: Duration = Duration::from_millis(10);
    /// `tcp.idle_timeout` at most (RFC 7828 encodes it in units of 100 ms
    /// in 16 bits).
    pub const TCP_IDLE_TIMEOUT_MAX: Duration = Duration::from_secs(3_600);
    /// `tcp.read_timeout` at most.
    pub const TCP_READ_TIMEOUT_MAX: Duration = Duration::from_secs(60);
    /// `tcp.max_connections` at most, per core.
    pub const TCP_MAX_CONNECTIONS_MAX: usize = 1 << 20;
    /// `tcp.max_pipelined` at most.
    pub const TCP_MAX_PIPELINED_MAX: usize = 65_535;
    /// `rate_limit.table_size` at most, per core.
    pub const RATE_LIMIT_TABLE_SIZE_MAX: usize = 1 << 24;
}

/// A validated configuration. Every field satisfies the rules in
/// [`limits`] and the cross-key rules documented on each section.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// `server:` what to run on and listen on.
    pub server: ServerConfig,
    /// `cache:` each core's cache shard.
    pub cache: CacheConfig,
    /// `hints:` cache-fill hints between cores.
    pub hints: HintsConfig,
    /// `upstream:` where and how to forward.
    pub upstream: UpstreamConfig,
    /// `tcp:` DNS over TCP from clients.
    pub tcp: TcpConfig,
    /// `local:` local authoritative data.
    pub local: LocalConfig,
    /// `blocklist:` blocked names.
    pub blocklist: BlocklistConfig,
    /// `acl:` which clients may use the resolver.
    pub acl: AclConfig,
    /// `rate_limit:` queries per client prefix.
    pub rate_limit: RateLimitConfig,
    /// `control:` the HTTP control endpoint.
    pub control: ControlConfig,
    /// `log:` logging.
    pub log: LogConfig,
    pub(crate) source: String,
}

/// `local:` local authoritative data, answered before the blocklist and
/// the cache. Files are read when the server starts.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LocalConfig {
    /// Records, one per line in master-file syntax with an absolute owner
    /// (`name TTL IN TYPE rdata`); each line was checked to parse.
    pub records: Vec<String>,
    /// Zone files, each with its origin.
    pub zones: Vec<LocalZone>,
    /// What to do with queries below a delegation.
    pub delegations: Delegations,
    /// Whether the RFC 6761 / RFC 6303 local zones are served.
    pub builtins: bool,
}

/// `local.zones[i]`: one zone file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LocalZone {
    /// The zone's origin (a valid domain name; no two the same).
    pub name: String,
    /// The master file (relative paths are relative to the working
    /// directory).
    pub file: PathBuf,
}

/// `blocklist:` names answered with a block reply instead of resolved.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BlocklistConfig {
    /// List files to read at start.
    pub files: Vec<BlocklistFile>,
    /// Names (with their subdomains) never blocked; each a valid name.
    pub allow: Vec<String>,
    /// Files of names never blocked, one per line.
    pub allow_files: Vec<PathBuf>,
    /// How a blocked name is answered.
    pub mode: BlockingMode,
    /// TTL of null-address answers (`mode: null`). Whole seconds.
    pub ttl: Duration,
}

/// `blocklist.files[i]`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BlocklistFile {
    /// The list file.
    pub path: PathBuf,
    /// Its syntax.
    pub format: ListFileFormat,
}

/// `acl:` which clients may use the resolver. Loopback and private
/// networks are allowed by default; `deny` wins over `allow`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AclConfig {
    /// Networks allowed besides the defaults (`10.0.0.0/8`, `2001:db8::/32`,
    /// or a single address); each was checked to parse.
    pub allow: Vec<String>,
    /// Networks denied, even if allowed otherwise.
    pub deny: Vec<String>,
    /// What a denied client gets.
    pub action: AclMode,
    /// Allow every client not denied (an open resolver; rarely wanted).
    pub open_resolver: bool,
}

/// `rate_limit:` token buckets per client prefix.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Whether queries are rate limited at all.
    pub enabled: bool,
    /// Queries per second per prefix, for the whole server (each core
    /// gets its share).
    pub rate: u32,
    /// Bucket size per prefix, whole server; at least 1.
    pub burst: u32,
    /// Prefix length grouping IPv4 clients, 0..=32.
    pub ipv4_prefix: u8,
    /// Prefix length grouping IPv6 clients, 0..=128.
    pub ipv6_prefix: u8,
    /// Client prefixes tracked per core, 1..=2^24.
    pub table_size: usize,
    /// What a limited query gets.
    pub action: RateLimitMode,
}

/// `local.delegations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delegations {
    /// Answer with a referral (NS in the authority section).
    #[default]
    Referral,
    /// Forward queries below a delegation upstream.
    Forward,
}

/// `blocklist.files[i].format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListFileFormat {
    /// Decide per line.
    #[default]
    Auto,
    /// A hosts file.
    Hosts,
    /// One domain per line.
    Domains,
    /// Adblock-style `||domain^` rules.
    Adblock,
}

/// `blocklist.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockingMode {
    /// NXDOMAIN.
    #[default]
    Nxdomain,
    /// `0.0.0.0` / `::` for A / AAAA, NODATA for other types.
    Null,
    /// REFUSED.
    Refused,
}

/// `acl.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AclMode {
    /// Answer REFUSED.
    #[default]
    Refuse,
    /// Send nothing.
    Drop,
}

/// `rate_limit.action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitMode {
    /// Send nothing.
    #[default]
    Drop,
    /// Answer REFUSED.
    Refused,
    /// Answer empty with TC set (UDP only; TCP queries are served).
    Truncate,
}

/// `server:`
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// CPU cores to run on; see [`Config::cpu_ids`].
    pub cores: CoreSelection,
    /// Addresses to listen on: at least one, no two the same, none
    /// overlapping a wildcard address of its family on the same port, no
    /// port 0.
    pub listen: Vec<SocketAddr>,
    /// glommio's io_uring buffer memory per executor, in bytes: a multiple
    /// of 4096 in [`limits::IO_MEMORY_MIN`]..=[`limits::IO_MEMORY_MAX`].
    pub io_memory: usize,
    /// Datagrams per recvmmsg/sendmmsg call, 1..=1024.
    pub udp_recv_batch: usize,
    /// Send the replies of one batch that go to one client with one
    /// length as a single UDP GSO send (`UDP_SEGMENT`).
    pub udp_gso: bool,
    /// After a batch that found queries and a drain that found none, how
    /// long a core waits before draining again: 0 to
    /// [`limits::UDP_COALESCE_MAX`], zero = wait for the next datagram.
    pub udp_coalesce: Duration,
}

/// `cache:`
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Bytes of cache per core.
    pub shard_size: usize,
    /// Floor for positive answers' TTLs. Whole seconds, `<= max_ttl`.
    pub min_ttl: Duration,
    /// Ceiling for positive answers' TTLs. Whole seconds, at most
    /// [`limits::TTL_MAX`].
    pub max_ttl: Duration,
    /// Ceiling for negative answers' TTLs (RFC 2308). Whole seconds.
    pub negative_max_ttl: Duration,
    /// How long an upstream failure is cached: 1 to 5 seconds (RFC
    /// 9520).
    pub servfail_ttl: Duration,
    /// How long past expiry an answer may be served stale when upstreams
    /// fail (RFC 8767); zero disables serve-stale. Whole seconds, at most
    /// [`limits::STALE_MAX_AGE_MAX`].
    pub stale_max_age: Duration,
    /// How long a client waits for upstream before it gets stale data
    /// (when there is any).
    pub stale_client_timeout: Duration,
    /// Refresh an answer in the background when a hit finds at most this
    /// percent of its lifetime left; 0 disables prefetch.
    pub prefetch_threshold: u8,
    /// Hits an answer needs before it is prefetched, at least 1.
    pub prefetch_min_hits: u32,
    /// Where the cache is saved at shutdown and loaded at start; `None`
    /// keeps no file.
    pub persist: Option<PathBuf>,
}

/// `control:` the HTTP control endpoint (metrics, health, flush, reload).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ControlConfig {
    /// Whether the endpoint is served.
    pub enabled: bool,
    /// Where it listens (port 0 picks a free port).
    pub listen: SocketAddr,
}

/// `hints:`
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HintsConfig {
    /// Whether cores send each other cache-fill hints.
    pub enabled: bool,
    /// Capacity of each hint channel between two cores, at least 1.
    pub channel_capacity: usize,
}

/// `upstream:`
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct UpstreamConfig {
    /// Servers to forward to: at least one, no two the same, none that is
    /// one of heimdall's own listen sockets.
    pub servers: Vec<SocketAddr>,
    /// Servers (each also in `servers`) that are asked over TCP only,
    /// never over UDP.
    pub tcp_only: Vec<SocketAddr>,
    /// How a server is picked for each query.
    pub strategy: UpstreamStrategy,
    /// How long to wait for one server before the next attempt.
    pub timeout: Duration,
    /// Upstream sends per query, across servers, at least 1.
    pub attempts: u32,
}

/// `tcp:` client connections (RFC 7766).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TcpConfig {
    /// A connection with nothing outstanding is closed after this long;
    /// it is also the keepalive advertised to clients (RFC 7828).
    pub idle_timeout: Duration,
    /// A message that has begun must be whole within this time.
    pub read_timeout: Duration,
    /// Client connections per core; when full, the oldest idle one is
    /// closed for a new one (or the new one is refused).
    pub max_connections: usize,
    /// Queries outstanding on one connection; further ones wait unread.
    pub max_pipelined: usize,
}

/// `log:`
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogConfig {
    /// The least severe level that is logged.
    pub level: LogLevel,
}

/// `upstream.strategy`: how the server for a query is picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamStrategy {
    /// The first server that is up; the next one on failure.
    #[default]
    Ordered,
    /// Each query starts at the next server in turn.
    RoundRobin,
    /// The server with the lowest smoothed round-trip time.
    Fastest,
}

/// `log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also start-up, reload and shutdown.
    #[default]
    Info,
    /// Also per-event detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The level's name, as `tracing` and `RUST_LOG` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Writes the schema the file is read with (sizes and durations in human
/// units), so the output is a valid config file.
impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RawConfig::from(self).serialize(serializer)
    }
}

impl Config {
    /// Parses and validates a YAML text. `source_name` (usually the file
    /// path) is named in every error.
    pub fn from_yaml_str(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let raw = validate::parse(text, source_name)?;
        validate::validate(raw, text, source_name)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let read_error = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_FILE_SIZE + 1)
            .read_to_string(&mut text)
            .map_err(read_error)?;
        if text.len() as u64 > MAX_CONFIG_FILE_SIZE {
            return Err(read_error(std::io::Error::other(format!(
                "larger than {} bytes; is this the right file?",
                MAX_CONFIG_FILE_SIZE
            ))));
        }
        Config::from_yaml_str(&text, &path.display().to_string())
    }

    /// The configuration used without a config file: [`DEFAULT_CONFIG_YAML`],
    /// with the upstream servers taken from `resolv_conf_text` (the text of
    /// `/etc/resolv.conf`) as [`resolv_conf::nameservers`] describes.
    /// Interface names in IPv6 zones are looked up in `/sys/class/net`, the
    /// only I/O here; [`Config::embedded_default_with`] has none.
    pub fn embedded_default(resolv_conf_text: &str) -> Result<Config, ConfigError> {
        Config::embedded_default_with(resolv_conf_text, &resolv_conf::interface_index)
    }

    /// [`Config::embedded_default`] with the interface-name lookup given.
    pub fn embedded_default_with(
        resolv_conf_text: &str,
        interface_index: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Config, ConfigError> {
        let mut raw = validate::parse(DEFAULT_CONFIG_YAML, EMBEDDED_DEFAULT_SOURCE)?;
        if raw.upstream.servers.is_empty() {
            let listen: Vec<SocketAddr> = raw.server.listen.iter().map(|l| l.0).collect();
            let found = resolv_conf::nameservers(resolv_conf_text, &listen, interface_index);
            if found.usable.is_empty() {
                return Err(ConfigError::NoUpstream {
                    file: RESOLV_CONF_PATH.to_string(),
                    skipped: found.skipped,
                });
            }
            raw.upstream.servers = found
                .usable
                .into_iter()
                .map(crate::addr::UpstreamAddr)
                .collect();
        }
        validate::validate(raw, DEFAULT_CONFIG_YAML, EMBEDDED_DEFAULT_SOURCE)
    }

    /// [`Config::embedded_default`] with the system's `/etc/resolv.conf`.
    pub fn system_default() -> Result<Config, ConfigError> {
        let text = resolv_conf::read_system().map_err(|source| ConfigError::Read {
            path: RESOLV_CONF_PATH.into(),
            source,
        })?;
        Config::embedded_default(&text)
    }

    /// The effective configuration as YAML, every key written out; it
    /// parses back to an equal `Config`.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml::to_string(self).map_err(ConfigError::Serialize)
    }

    /// Where this configuration came from: a file path, the source name
    /// given to [`Config::from_yaml_str`], or [`EMBEDDED_DEFAULT_SOURCE`].
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The CPU ids to run one executor on each, given the ids of the CPUs
    /// heimdall may use (its affinity mask, from
    /// [`crate::available_cpu_ids`]): `auto` is all of them, a count `n`
    /// the first `n`, and a list must name only CPUs among them. Fails
    /// when `server.cores` asks for CPUs that are not available, naming
    /// the allowed set.
    pub fn cpu_ids(&self, available: &[usize]) -> Result<Vec<usize>, ConfigError> {
        self.server
            .cores
            .resolve(available)
            .map_err(|(key, reason)| ConfigError::Invalid {
                file: self.source.clone(),
                key,
                location: None,
                reason,
            })
    }
}

#[cfg(test)]
mod tests;
