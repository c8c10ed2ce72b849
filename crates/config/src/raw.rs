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
use crate::config::{LogLevel, UpstreamStrategy, defaults};
use crate::cores::CoreSelection;
use crate::units::{ByteSize, HumanDuration};

/// The whole file. Later sections (tcp, local, blocklists, acl,
/// rate_limit, control) go here as further fields.
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
    pub(crate) log: RawLog,
}

/// `server:`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawServer {
    pub(crate) cores: CoreSelection,
    pub(crate) listen: Vec<ListenAddr>,
    pub(crate) io_memory: ByteSize,
    pub(crate) udp_recv_batch: usize,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            cores: CoreSelection::Auto,
            listen: vec![ListenAddr(defaults::LISTEN)],
            io_memory: ByteSize(defaults::IO_MEMORY as u64),
            udp_recv_batch: defaults::UDP_RECV_BATCH,
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
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            shard_size: ByteSize(defaults::SHARD_SIZE as u64),
            min_ttl: HumanDuration(defaults::MIN_TTL),
            max_ttl: HumanDuration(defaults::MAX_TTL),
            negative_max_ttl: HumanDuration(defaults::NEGATIVE_MAX_TTL),
            servfail_ttl: HumanDuration(defaults::SERVFAIL_TTL),
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
            },
            cache: RawCache {
                shard_size: ByteSize(config.cache.shard_size as u64),
                min_ttl: HumanDuration(config.cache.min_ttl),
                max_ttl: HumanDuration(config.cache.max_ttl),
                negative_max_ttl: HumanDuration(config.cache.negative_max_ttl),
                servfail_ttl: HumanDuration(config.cache.servfail_ttl),
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
            log: RawLog {
                level: config.log.level,
            },
        }
    }
}
