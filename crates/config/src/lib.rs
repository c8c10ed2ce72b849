//! heimdall's configuration: one YAML file, read into raw structs that
//! refuse unknown keys, then validated into a [`Config`] the server can
//! use without further checks.
//!
//! - [`Config::load`] and [`Config::from_yaml_str`] read a file or text.
//! - [`Config::embedded_default`] is the configuration without a file:
//!   [`DEFAULT_CONFIG_YAML`] with upstreams from resolv.conf
//!   ([`resolv_conf`]).
//! - [`Config::to_yaml`] prints the effective configuration; it reads
//!   back to an equal `Config`.
//! - [`Config::cpu_ids`] turns `server.cores` into CPU ids, given the CPUs
//!   the process may use; [`available_cpu_ids`] (the affinity mask) is the
//!   one helper that asks the system.
//!
//! - [`reload_behaviour`] says whether a hot reload applies a key or it
//!   needs a restart; [`configuration_reference`] renders
//!   `docs/CONFIGURATION.md`, every key with its type, default, valid
//!   values and reload behaviour.
//!
//! Every error is a [`ConfigError`] naming the file, the key path (such as
//! `upstream.servers[1]`) and, when known, the line and column:
//! `heimdall.yaml:12:7: upstream.servers[1]: ...`.
//!
//! Sizes are written `64MiB`, `512KiB`, `1GB` or as a number of bytes;
//! durations `800ms`, `2s`, `5m`, `1h`, `1d` or as a number of seconds.
//!
//! Every key is declared once, in the key table (`keys.rs`): its name,
//! types, default, valid range, text (and, through `RESTART_ONLY_KEYS`
//! beside it, its reload rule). Adding one is a row there and its line in
//! `default.yaml` and `deploy/heimdall.yaml` (tests refuse either file
//! without it), then `HEIMDALL_BLESS=1 cargo test -p heimdall-config` to
//! regenerate docs/CONFIGURATION.md. Validation enforces the row's range;
//! a rule beyond it (across keys, with a hint) goes in `validate.rs`.
//!
//! The modules depend on each other one way: `values`, `defaults`,
//! `limits`, `units`, `addr`, `cores`, `upstream` -> `schema` (how a key
//! is described) -> `keys` (the key table: raw and validated structs) ->
//! `validate` -> `config` (load, print); `reference` renders `keys`.

mod addr;
mod config;
mod cores;
pub mod defaults;
mod error;
mod keys;
pub mod limits;
mod locate;
mod reference;
pub mod resolv_conf;
mod schema;
mod units;
mod upstream;
mod validate;
mod values;

pub use config::{DEFAULT_CONFIG_YAML, EMBEDDED_DEFAULT_SOURCE, MAX_CONFIG_FILE_SIZE};
pub use cores::{CoreSelection, available_cpu_ids, available_cpus};
pub use error::{ConfigError, Location};
pub use keys::RESTART_ONLY_KEYS;
pub use keys::{
    AclConfig, BlocklistConfig, BlocklistFile, CacheConfig, Config, ControlConfig, CookiesConfig,
    DnssecConfig, DnstapConfig, HintsConfig, LocalConfig, LocalZone, LogConfig, RateLimitConfig,
    ServerConfig, TcpConfig, TlsConfig, UpstreamConfig,
};
pub use reference::{ReloadBehaviour, configuration_reference, reload_behaviour};
pub use upstream::{Upstream, UpstreamTransport};
pub use values::{
    AclMode, BlockingMode, Delegations, DnssecMode, ListFileFormat, LogFormat, LogLevel,
    RateLimitMode, Steering, UpstreamStrategy,
};
