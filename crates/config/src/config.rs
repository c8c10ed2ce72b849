//! The ways to obtain a [`Config`] (a file, a YAML text, the embedded
//! default) and the way to print it back. The `Config` type itself and its
//! sections are generated from the key table in `keys`.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::error::ConfigError;
use crate::keys::{Config, RawConfig};
use crate::resolv_conf::{self, RESOLV_CONF_PATH};
use crate::upstream::Upstream;
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

    /// `control.socket` as written in the file at `path`, read leniently:
    /// the rest of the file may be invalid (so `heimdall ctl reload` still
    /// finds the server after a bad edit, to report the failure). `None`
    /// when the file cannot be read, is not YAML, or does not set it.
    pub fn peek_control_socket(path: impl AsRef<Path>) -> Option<std::path::PathBuf> {
        let file = std::fs::File::open(path).ok()?;
        let mut text = String::new();
        file.take(MAX_CONFIG_FILE_SIZE)
            .read_to_string(&mut text)
            .ok()?;
        let value: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
        let socket = value.get("control")?.get("socket")?.as_str()?;
        Some(std::path::PathBuf::from(socket))
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
            raw.upstream.servers = found.usable.into_iter().map(Upstream::udp).collect();
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
