//! The crate's one error type, [`ConfigError`], and [`Location`].
//!
//! Every error an operator can cause names the file and the key path, and
//! the line and column when they are known, in the `file:line:column:`
//! form that editors and terminals can jump to.

use std::fmt;
use std::path::PathBuf;

use crate::resolv_conf::SkippedNameserver;

/// A position in a YAML text, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Location {
    pub(crate) fn from_yaml(location: &serde_yaml::Location) -> Self {
        Location {
            line: location.line(),
            column: location.column(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a configuration could not be read, parsed, validated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read (missing, unreadable, not UTF-8, too
    /// large).
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file that was asked for: the config file, or resolv.conf.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The YAML is malformed, or a key is unknown, has the wrong type or a
    /// value that fails validation.
    #[error("{file}{at}: {key}{reason}", at = AtLocation(location), key = KeyPrefix(key))]
    Invalid {
        /// The file (or other source name) the YAML came from.
        file: String,
        /// The key path, e.g. `upstream.servers[1]`; empty for the
        /// document as a whole.
        key: String,
        /// Where in the file, when known.
        location: Option<Location>,
        /// What is wrong, and where it helps, what to write instead.
        reason: String,
    },

    /// The embedded default configuration takes its upstream servers from
    /// resolv.conf, and none there is usable.
    #[error(
        "{file}: upstream.servers: no usable nameserver for heimdall's default configuration{}; \
         write a config file that lists upstream.servers",
        Skipped(skipped)
    )]
    NoUpstream {
        /// The resolv.conf the nameservers were read from.
        file: String,
        /// Each `nameserver` line that was not used, and why.
        skipped: Vec<SkippedNameserver>,
    },

    /// The effective configuration could not be written as YAML.
    #[error("cannot write the configuration as YAML: {0}")]
    Serialize(#[source] serde_yaml::Error),
}

impl ConfigError {
    /// The key path the error is about, when it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } if !key.is_empty() => Some(key),
            ConfigError::NoUpstream { .. } => Some("upstream.servers"),
            _ => None,
        }
    }

    /// Where in the file the error is, when known.
    pub fn location(&self) -> Option<Location> {
        match self {
            ConfigError::Invalid { location, .. } => *location,
            _ => None,
        }
    }
}

struct AtLocation<'a>(&'a Option<Location>);

impl fmt::Display for AtLocation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, ":{location}"),
            None => Ok(()),
        }
    }
}

struct KeyPrefix<'a>(&'a str);

impl fmt::Display for KeyPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, "{}: ", self.0)
        }
    }
}

struct Skipped<'a>(&'a [SkippedNameserver]);

impl fmt::Display for Skipped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(" (it has no nameserver lines)");
        }
        f.write_str(" (")?;
        for (i, skipped) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{skipped}")?;
        }
        f.write_str(")")
    }
}
