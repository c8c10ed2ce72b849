//! Builds the query policy from the configuration once, at start (off the
//! hot path): reads zone files and block lists, and assembles the shared
//! read-only snapshots every core's resolver gets; and the server cookie
//! policy ([`build_cookies`]), whose random secret and wall-clock time
//! come from the runtime ([`CookieRuntime`]).

use std::path::Path;
use std::sync::Arc;

use heimdall_config::{
    AclMode, BlockingMode, Config, Delegations, ListFileFormat, RateLimitMode, defaults,
};
use heimdall_dnssec::TrustAnchors;
use heimdall_policy::ServerCookies;
use heimdall_policy::{
    AclAction, AclBuilder, BlockMode, Blocklist, BlocklistBuilder, Cidr, ListFormat,
    RateLimitAction, RateLimitConfig,
};
use heimdall_resolver::{CookiePolicy, DnssecConfig, PolicyConfig};
use heimdall_wire::NameBuf;
use heimdall_zone::{DelegationMode, LocalData, parse_record_line, parse_zone_file};
use rand::TryRng as _;
use rand::rngs::SysRng;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Why the policy could not be built; every message names the file or key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyLoadError(pub String);

fn read_list(path: &Path) -> Result<String, PolicyLoadError> {
    std::fs::read_to_string(path)
        .map_err(|err| PolicyLoadError(format!("{}: cannot read: {err}", path.display())))
}

/// Local data from `local:`: builtins, records and zone files.
pub fn build_local(config: &Config) -> Result<LocalData, PolicyLoadError> {
    let local = &config.local;
    let mut builder = LocalData::builder()
        .builtins(local.builtins)
        .delegation_mode(match local.delegations {
            Delegations::Referral => DelegationMode::Referral,
            Delegations::Forward => DelegationMode::Forward,
        });
    let mut records = Vec::with_capacity(local.records.len());
    for (i, line) in local.records.iter().enumerate() {
        let record = parse_record_line(line, None, defaults::LOCAL_RECORD_TTL)
            .map_err(|err| PolicyLoadError(format!("local.records[{i}]: {err}")))?;
        records.push(record);
    }
    builder = builder.records(records);
    for (i, zone) in local.zones.iter().enumerate() {
        let origin = NameBuf::from_presentation(&zone.name)
            .map_err(|err| PolicyLoadError(format!("local.zones[{i}].name: {err}")))?;
        let records = parse_zone_file(&zone.file, Some(&origin)).map_err(|err| {
            PolicyLoadError(format!("local.zones[{i}] ({}): {err}", zone.file.display()))
        })?;
        builder = builder.zone(records);
    }
    builder
        .build()
        .map_err(|err| PolicyLoadError(format!("local: {err}")))
}

/// The blocklist from `blocklist:`, or `None` when nothing is blocked.
pub fn build_blocklist(config: &Config) -> Result<Option<Blocklist>, PolicyLoadError> {
    let lists = &config.blocklist;
    if lists.files.is_empty() {
        return Ok(None);
    }
    let mut builder = BlocklistBuilder::new();
    for file in &lists.files {
        let text = read_list(&file.path)?;
        let format = match file.format {
            ListFileFormat::Auto => ListFormat::Auto,
            ListFileFormat::Hosts => ListFormat::Hosts,
            ListFileFormat::Domains => ListFormat::Domains,
            ListFileFormat::Adblock => ListFormat::Adblock,
        };
        let stats = builder.add_list(&text, format);
        log::info!(
            "blocklist {}: {} blocked, {} allowed, {} skipped",
            file.path.display(),
            stats.blocked,
            stats.allowed,
            stats.skipped
        );
    }
    for path in &lists.allow_files {
        let text = read_list(path)?;
        builder.add_allowlist(&text);
    }
    for name in &lists.allow {
        builder.allow(name);
    }
    Ok(Some(builder.build()))
}

/// The policy every core's resolver gets, built once: the local data and
/// the blocklist behind one `Arc` each, shared read-only by all cores.
pub fn build_policy(config: &Config, cores: usize) -> Result<PolicyConfig, PolicyLoadError> {
    let local = build_local(config)?;
    let blocklist = build_blocklist(config)?;
    let acl_config = &config.acl;
    let parse = |key: &str, list: &[String]| -> Result<Vec<Cidr>, PolicyLoadError> {
        list.iter()
            .enumerate()
            .map(|(i, text)| {
                text.parse::<Cidr>()
                    .map_err(|err| PolicyLoadError(format!("acl.{key}[{i}]: {err}")))
            })
            .collect()
    };
    let mut acl = AclBuilder::new()
        .open_resolver(acl_config.open_resolver)
        .action(match acl_config.action {
            AclMode::Refuse => AclAction::Refuse,
            AclMode::Drop => AclAction::Drop,
        });
    for cidr in parse("allow", &acl_config.allow)? {
        acl = acl.allow(cidr);
    }
    for cidr in parse("deny", &acl_config.deny)? {
        acl = acl.deny(cidr);
    }
    let limits = &config.rate_limit;
    let rate_limit = limits.enabled.then(|| {
        (
            RateLimitConfig {
                rate_per_sec: limits.rate,
                burst: limits.burst,
                ipv4_prefix: limits.ipv4_prefix,
                ipv6_prefix: limits.ipv6_prefix,
                capacity: limits.table_size,
                action: match limits.action {
                    RateLimitMode::Drop => RateLimitAction::Drop,
                    RateLimitMode::Refused => RateLimitAction::Refused,
                    RateLimitMode::Truncate => RateLimitAction::Truncate,
                },
            },
            cores.max(1),
        )
    });
    Ok(PolicyConfig {
        acl: Some(acl.build()),
        rate_limit,
        local: (!local.is_empty()).then(|| Arc::new(local)),
        blocklist: blocklist.map(Arc::new),
        block_mode: match config.blocklist.mode {
            BlockingMode::Nxdomain => BlockMode::Nxdomain,
            BlockingMode::Null => BlockMode::Null,
            BlockingMode::Refused => BlockMode::Refused,
        },
        block_ttl: u32::try_from(config.blocklist.ttl.as_secs()).unwrap_or(u32::MAX),
        // Cookies need the runtime's random secret and clock:
        // `build_cookies`.
        cookies: None,
    })
}

/// The DNSSEC settings of `dnssec:`: the built-in root anchors plus the
/// anchor files (read here, off the query path), the negative trust
/// anchors, and the wall-clock time of the engine's epoch from `runtime`
/// (signature windows are Unix times; the engine never reads a clock).
pub(crate) fn build_dnssec(
    config: &Config,
    runtime: &CookieRuntime,
) -> Result<DnssecConfig, PolicyLoadError> {
    let dnssec = &config.dnssec;
    let mut anchors = TrustAnchors::root();
    for path in &dnssec.trust_anchors {
        let text = read_list(path)?;
        let parsed = TrustAnchors::parse(&text).map_err(|err| {
            PolicyLoadError(format!("dnssec.trust_anchors ({}): {err}", path.display()))
        })?;
        anchors.extend(parsed);
    }
    let mut negative_anchors = Vec::with_capacity(dnssec.negative_trust_anchors.len());
    for (i, name) in dnssec.negative_trust_anchors.iter().enumerate() {
        let name = NameBuf::from_presentation(name)
            .map_err(|err| PolicyLoadError(format!("dnssec.negative_trust_anchors[{i}]: {err}")))?;
        negative_anchors.push(name.to_lowercase());
    }
    Ok(DnssecConfig {
        mode: dnssec.mode,
        anchors: Arc::new(anchors),
        negative_anchors,
        validator: heimdall_dnssec::Config {
            clock_skew: u32::try_from(dnssec.clock_skew.as_secs()).unwrap_or(u32::MAX),
            nsec3_max_iterations: dnssec.nsec3_max_iterations,
        },
        unix_epoch_ms: runtime.unix_epoch_ms(),
        aggressive_nsec: dnssec.aggressive_nsec,
        ..DnssecConfig::default()
    })
}

/// What server cookies need from the runtime, kept for the life of the
/// process so that a reload without `cookies.secret` keeps the secret the
/// clients' cookies were made with.
#[derive(Clone)]
pub(crate) struct CookieRuntime {
    /// Drawn from the operating system at start; used when the file sets
    /// no `cookies.secret`.
    random_master: [u8; heimdall_policy::SECRET_LEN],
    /// The engine's time zero.
    epoch: Instant,
}

impl CookieRuntime {
    /// A random master secret, for an engine whose time zero is `epoch`.
    pub(crate) fn new(epoch: Instant) -> Result<Self, PolicyLoadError> {
        let mut random_master = [0u8; heimdall_policy::SECRET_LEN];
        SysRng.try_fill_bytes(&mut random_master).map_err(|err| {
            PolicyLoadError(format!(
                "cookies: no randomness from the operating system: {err}"
            ))
        })?;
        Ok(Self {
            random_master,
            epoch,
        })
    }

    /// Unix time, in milliseconds, at the epoch: read from the wall clock
    /// now (at start and at each reload, so a clock stepped since then is
    /// followed from the next reload on).
    pub(crate) fn unix_epoch_ms(&self) -> u64 {
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let since_epoch = self.epoch.elapsed();
        u64::try_from(unix_now.saturating_sub(since_epoch).as_millis()).unwrap_or(u64::MAX)
    }
}

/// The server cookie policy of `cookies:` for `cores` cores, or `None`
/// when cookies are off. The secret is the file's or the runtime's random
/// one; every core gets the same.
pub(crate) fn build_cookies(
    config: &Config,
    cores: usize,
    runtime: &CookieRuntime,
) -> Result<Option<CookiePolicy>, PolicyLoadError> {
    let settings = &config.cookies;
    if !settings.enabled {
        return Ok(None);
    }
    let master = match &settings.secret {
        Some(hex) => heimdall_policy::parse_secret(hex)
            .ok_or_else(|| PolicyLoadError("cookies.secret: not 32 hex digits".to_string()))?,
        None => runtime.random_master,
    };
    let cookies = ServerCookies::new(master, settings.rotation.as_secs())
        .map_err(|err| PolicyLoadError(format!("cookies.rotation: {err}")))?;
    let limits = &config.rate_limit;
    let udp_require = (settings.udp_require_above > 0).then(|| {
        (
            RateLimitConfig {
                rate_per_sec: settings.udp_require_above,
                // A second's worth: a client that keeps under the rate is
                // never asked for a cookie.
                burst: settings.udp_require_above,
                ipv4_prefix: limits.ipv4_prefix,
                ipv6_prefix: limits.ipv6_prefix,
                capacity: limits.table_size,
                action: RateLimitAction::Truncate,
            },
            cores.max(1),
        )
    });
    Ok(Some(CookiePolicy {
        cookies,
        unix_epoch_ms: runtime.unix_epoch_ms(),
        udp_require,
    }))
}
