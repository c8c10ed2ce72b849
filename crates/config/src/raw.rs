//! The YAML schema as written: one struct per section, each key with its
//! default, unknown keys refused.
//!
//! Values that can be checked alone (an address, a size, a duration, a
//! CPU list entry) are parsed here, while serde_yaml still knows their
//! line and column. Rules across keys and ranges are checked in
//! `validate`. The same structs write the effective configuration back as
//! YAML, so what `to_yaml` prints is exactly what this schema reads.

use serde::{Deserialize, Deserializer, Serialize};

use crate::addr::{ListenAddr, UpstreamAddr};
use std::path::PathBuf;

use crate::config::{
    AclMode, BlockingMode, Delegations, ListFileFormat, LogLevel, RateLimitMode, UpstreamStrategy,
    defaults,
};
use crate::cores::CoreSelection;
use crate::units::{ByteSize, HumanDuration};

/// The whole file, one field per section (a later section, such as
/// `control`, goes here as a further field).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) server: RawServer,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) cache: RawCache,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) hints: RawHints,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) upstream: RawUpstream,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) tcp: RawTcp,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) local: RawLocal,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) blocklist: RawBlocklist,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) acl: RawAcl,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) rate_limit: RawRateLimit,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) control: RawControl,
    #[serde(deserialize_with = "null_as_default")]
    pub(crate) log: RawLog,
}

/// `control:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawControl {
    pub(crate) enabled: bool,
    pub(crate) listen: ListenAddr,
}

impl Default for RawControl {
    fn default() -> Self {
        RawControl {
            enabled: defaults::CONTROL_ENABLED,
            listen: ListenAddr(defaults::CONTROL_LISTEN),
        }
    }
}

/// `local:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLocal {
    pub(crate) records: Vec<String>,
    pub(crate) zones: Vec<RawZone>,
    pub(crate) delegations: Delegations,
    pub(crate) builtins: bool,
}

impl Default for RawLocal {
    fn default() -> Self {
        RawLocal {
            records: Vec::new(),
            zones: Vec::new(),
            delegations: Delegations::default(),
            builtins: defaults::LOCAL_BUILTINS,
        }
    }
}

/// `local.zones[i]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawZone {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
}

/// `blocklist:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawBlocklist {
    pub(crate) files: Vec<RawListFile>,
    pub(crate) allow: Vec<String>,
    pub(crate) allow_files: Vec<PathBuf>,
    pub(crate) mode: BlockingMode,
    pub(crate) ttl: HumanDuration,
}

impl Default for RawBlocklist {
    fn default() -> Self {
        RawBlocklist {
            files: Vec::new(),
            allow: Vec::new(),
            allow_files: Vec::new(),
            mode: BlockingMode::default(),
            ttl: HumanDuration(defaults::BLOCKLIST_TTL),
        }
    }
}

/// `blocklist.files[i]`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListFile {
    pub(crate) path: PathBuf,
    #[serde(default)]
    pub(crate) format: ListFileFormat,
}

/// `acl:`
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawAcl {
    pub(crate) allow: Vec<String>,
    pub(crate) deny: Vec<String>,
    pub(crate) action: AclMode,
    pub(crate) open_resolver: bool,
}

/// `rate_limit:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawRateLimit {
    pub(crate) enabled: bool,
    pub(crate) rate: u32,
    pub(crate) burst: u32,
    pub(crate) ipv4_prefix: u8,
    pub(crate) ipv6_prefix: u8,
    pub(crate) table_size: usize,
    pub(crate) action: RateLimitMode,
}

impl Default for RawRateLimit {
    fn default() -> Self {
        RawRateLimit {
            enabled: defaults::RATE_LIMIT_ENABLED,
            rate: defaults::RATE_LIMIT_RATE,
            burst: defaults::RATE_LIMIT_BURST,
            ipv4_prefix: defaults::RATE_LIMIT_IPV4_PREFIX,
            ipv6_prefix: defaults::RATE_LIMIT_IPV6_PREFIX,
            table_size: defaults::RATE_LIMIT_TABLE_SIZE,
            action: RateLimitMode::default(),
        }
    }
}

/// `server:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawServer {
    pub(crate) cores: CoreSelection,
    pub(crate) listen: Vec<ListenAddr>,
    pub(crate) io_memory: ByteSize,
    pub(crate) udp_recv_batch: usize,
    pub(crate) udp_gso: bool,
    pub(crate) udp_coalesce: HumanDuration,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            cores: CoreSelection::Auto,
            listen: vec![ListenAddr(defaults::LISTEN)],
            io_memory: ByteSize(defaults::IO_MEMORY as u64),
            udp_recv_batch: defaults::UDP_RECV_BATCH,
            udp_gso: defaults::UDP_GSO,
            udp_coalesce: HumanDuration(defaults::UDP_COALESCE),
        }
    }
}

/// `cache:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCache {
    pub(crate) shard_size: ByteSize,
    pub(crate) min_ttl: HumanDuration,
    pub(crate) max_ttl: HumanDuration,
    pub(crate) negative_max_ttl: HumanDuration,
    pub(crate) servfail_ttl: HumanDuration,
    pub(crate) stale_max_age: HumanDuration,
    pub(crate) stale_client_timeout: HumanDuration,
    pub(crate) prefetch_threshold: u8,
    pub(crate) prefetch_min_hits: u32,
    pub(crate) persist: Option<PathBuf>,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            shard_size: ByteSize(defaults::SHARD_SIZE as u64),
            min_ttl: HumanDuration(defaults::MIN_TTL),
            max_ttl: HumanDuration(defaults::MAX_TTL),
            negative_max_ttl: HumanDuration(defaults::NEGATIVE_MAX_TTL),
            servfail_ttl: HumanDuration(defaults::SERVFAIL_TTL),
            stale_max_age: HumanDuration(defaults::STALE_MAX_AGE),
            stale_client_timeout: HumanDuration(defaults::STALE_CLIENT_TIMEOUT),
            prefetch_threshold: defaults::PREFETCH_THRESHOLD,
            prefetch_min_hits: defaults::PREFETCH_MIN_HITS,
            persist: None,
        }
    }
}

/// `hints:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawHints {
    pub(crate) enabled: bool,
    pub(crate) channel_capacity: usize,
}

impl Default for RawHints {
    fn default() -> Self {
        RawHints {
            enabled: defaults::HINTS_ENABLED,
            channel_capacity: defaults::HINT_CHANNEL_CAPACITY,
        }
    }
}

/// `upstream:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawUpstream {
    pub(crate) servers: Vec<UpstreamAddr>,
    pub(crate) tcp_only: Vec<UpstreamAddr>,
    pub(crate) strategy: UpstreamStrategy,
    pub(crate) timeout: HumanDuration,
    pub(crate) attempts: u32,
}

impl Default for RawUpstream {
    fn default() -> Self {
        RawUpstream {
            servers: Vec::new(),
            tcp_only: Vec::new(),
            strategy: UpstreamStrategy::default(),
            timeout: HumanDuration(defaults::UPSTREAM_TIMEOUT),
            attempts: defaults::UPSTREAM_ATTEMPTS,
        }
    }
}

/// `tcp:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTcp {
    pub(crate) idle_timeout: HumanDuration,
    pub(crate) read_timeout: HumanDuration,
    pub(crate) max_connections: usize,
    pub(crate) max_pipelined: usize,
}

impl Default for RawTcp {
    fn default() -> Self {
        RawTcp {
            idle_timeout: HumanDuration(defaults::TCP_IDLE_TIMEOUT),
            read_timeout: HumanDuration(defaults::TCP_READ_TIMEOUT),
            max_connections: defaults::TCP_MAX_CONNECTIONS,
            max_pipelined: defaults::TCP_MAX_PIPELINED,
        }
    }
}

/// `log:`
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLog {
    pub(crate) level: LogLevel,
}

/// Lets a section be present but empty (`cache:` with every key commented
/// out), which YAML reads as null, and means "all defaults".
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

impl From<&crate::Config> for RawConfig {
    fn from(config: &crate::Config) -> Self {
        RawConfig {
            server: RawServer {
                cores: config.server.cores.clone(),
                listen: config
                    .server
                    .listen
                    .iter()
                    .copied()
                    .map(ListenAddr)
                    .collect(),
                io_memory: ByteSize(config.server.io_memory as u64),
                udp_recv_batch: config.server.udp_recv_batch,
                udp_gso: config.server.udp_gso,
                udp_coalesce: HumanDuration(config.server.udp_coalesce),
            },
            cache: RawCache {
                shard_size: ByteSize(config.cache.shard_size as u64),
                min_ttl: HumanDuration(config.cache.min_ttl),
                max_ttl: HumanDuration(config.cache.max_ttl),
                negative_max_ttl: HumanDuration(config.cache.negative_max_ttl),
                servfail_ttl: HumanDuration(config.cache.servfail_ttl),
                stale_max_age: HumanDuration(config.cache.stale_max_age),
                stale_client_timeout: HumanDuration(config.cache.stale_client_timeout),
                prefetch_threshold: config.cache.prefetch_threshold,
                prefetch_min_hits: config.cache.prefetch_min_hits,
                persist: config.cache.persist.clone(),
            },
            hints: RawHints {
                enabled: config.hints.enabled,
                channel_capacity: config.hints.channel_capacity,
            },
            upstream: RawUpstream {
                servers: config
                    .upstream
                    .servers
                    .iter()
                    .copied()
                    .map(UpstreamAddr)
                    .collect(),
                tcp_only: config
                    .upstream
                    .tcp_only
                    .iter()
                    .copied()
                    .map(UpstreamAddr)
                    .collect(),
                strategy: config.upstream.strategy,
                timeout: HumanDuration(config.upstream.timeout),
                attempts: config.upstream.attempts,
            },
            tcp: RawTcp {
                idle_timeout: HumanDuration(config.tcp.idle_timeout),
                read_timeout: HumanDuration(config.tcp.read_timeout),
                max_connections: config.tcp.max_connections,
                max_pipelined: config.tcp.max_pipelined,
            },
            local: RawLocal {
                records: config.local.records.clone(),
                zones: config
                    .local
                    .zones
                    .iter()
                    .map(|zone| RawZone {
                        name: zone.name.clone(),
                        file: zone.file.clone(),
                    })
                    .collect(),
                delegations: config.local.delegations,
                builtins: config.local.builtins,
            },
            blocklist: RawBlocklist {
                files: config
                    .blocklist
                    .files
                    .iter()
                    .map(|file| RawListFile {
                        path: file.path.clone(),
                        format: file.format,
                    })
                    .collect(),
                allow: config.blocklist.allow.clone(),
                allow_files: config.blocklist.allow_files.clone(),
                mode: config.blocklist.mode,
                ttl: HumanDuration(config.blocklist.ttl),
            },
            acl: RawAcl {
                allow: config.acl.allow.clone(),
                deny: config.acl.deny.clone(),
                action: config.acl.action,
                open_resolver: config.acl.open_resolver,
            },
            rate_limit: RawRateLimit {
                enabled: config.rate_limit.enabled,
                rate: config.rate_limit.rate,
                burst: config.rate_limit.burst,
                ipv4_prefix: config.rate_limit.ipv4_prefix,
                ipv6_prefix: config.rate_limit.ipv6_prefix,
                table_size: config.rate_limit.table_size,
                action: config.rate_limit.action,
            },
            control: RawControl {
                enabled: config.control.enabled,
                listen: ListenAddr(config.control.listen),
            },
            log: RawLog {
                level: config.log.level,
            },
        }
    }
}
