//! The enumerated values of the schema (`blocklist.mode: null`, ...): each
//! enum's words and its default, shared by the key table, the validated
//! configuration and the resolver.

use serde::{Deserialize, Serialize};

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

/// `server.steering`: how UDP queries are spread over the cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Steering {
    /// By a hash of the query name: each name has one owner core.
    #[default]
    Name,
    /// By the kernel's flow hash (addresses and ports); answers are
    /// copied to the other cores by hints.
    Flow,
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

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per message: with syslog priority prefixes (`<6>`)
    /// under journald, else with a timestamp and the level.
    #[default]
    Text,
    /// One JSON object per line: `ts`, `level`, `target`, `msg`.
    Json,
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

/// `dnssec.mode`: what DNSSEC validation does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DnssecMode {
    /// Validate; a bogus answer is refused with SERVFAIL and its Extended
    /// DNS Error. The default: the root KSKs are built in.
    #[default]
    Validate,
    /// Validate and count, but answer bogus data (without AD).
    Permissive,
    /// No validation: upstream AD is passed through as before.
    Off,
}
