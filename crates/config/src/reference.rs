//! The configuration reference: every key of the schema with its type,
//! default, valid values, meaning and reload behaviour, and
//! [`reload_behaviour`], the rule a hot reload follows.
//!
//! `docs/CONFIGURATION.md` is [`configuration_reference`]'s output, rendered
//! from the key table in `keys`. Tests
//! keep both from drifting: the file must equal the rendered text, the
//! table must name every key the schema writes (in schema order) and no
//! other, defaults are rendered from the schema's own defaults, and each
//! documented range and enum is checked against validation. After changing
//! the schema, run `HEIMDALL_BLESS=1 cargo test -p heimdall-config` to
//! rewrite the file.

use std::fmt::Write as _;

use serde_yaml::Value;

use crate::keys::{DEPRECATED, RESTART_ONLY_KEYS, RawConfig, RawListFile, RawZone, SECTIONS, keys};

/// What a hot reload (SIGHUP or `POST /reload`) does with a changed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadBehaviour {
    /// The new value takes effect on reload.
    Applied,
    /// The running value stays until heimdall is restarted.
    Restart,
}

impl ReloadBehaviour {
    /// How the reference writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadBehaviour::Applied => "applied",
            ReloadBehaviour::Restart => "restart",
        }
    }
}

/// Whether a reload applies a change to `key_path` (`upstream.timeout`,
/// `local.zones[0].file`, or a whole section such as `cache`), or the
/// running value stays until a restart: [`ReloadBehaviour::Restart`] for
/// the keys in [`RESTART_ONLY_KEYS`] and everything below them,
/// [`ReloadBehaviour::Applied`] for all others. A section is `Applied`
/// when any of its keys is (`cache`, of which only `cache.persist` needs a
/// restart).
pub fn reload_behaviour(key_path: &str) -> ReloadBehaviour {
    let at_or_below = |key: &str| {
        key_path
            .strip_prefix(key)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
    };
    if RESTART_ONLY_KEYS.iter().any(|key| at_or_below(key)) {
        ReloadBehaviour::Restart
    } else {
        ReloadBehaviour::Applied
    }
}

/// The schema's defaults as YAML: what `to_yaml` writes for keys left out.
pub(crate) fn defaults_value() -> Value {
    serde_yaml::to_value(RawConfig::default()).unwrap_or(Value::Null)
}

/// [`defaults_value`] with one item in each list of mappings, holding
/// only the item defaults (required keys empty), so that the defaults of
/// item keys (`blocklist.files[].format`) can be read.
pub(crate) fn item_defaults_value() -> Value {
    let mut raw = RawConfig::default();
    raw.local.zones.push(RawZone::default());
    raw.blocklist.files.push(RawListFile::default());
    serde_yaml::to_value(&raw).unwrap_or(Value::Null)
}

/// Every key path in `value` with its value, in order: the leaves, plus
/// the lists; the keys of a list's mapping items as `list[].key` (from its
/// first item). Sections (mappings) themselves are not listed.
pub(crate) fn walk(value: &Value) -> Vec<(String, Value)> {
    fn go(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        let Value::Mapping(map) = value else {
            return;
        };
        for (name, child) in map {
            let name = match name {
                Value::String(name) => name.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}.{name}")
            };
            match child {
                Value::Mapping(_) => go(&path, child, out),
                Value::Sequence(items) => {
                    out.push((path.clone(), child.clone()));
                    if let Some(first @ Value::Mapping(_)) = items.first() {
                        go(&format!("{path}[]"), first, out);
                    }
                }
                _ => out.push((path, child.clone())),
            }
        }
    }
    let mut out = Vec::new();
    go("", value, &mut out);
    out
}

/// A default as the reference writes it: inline YAML.
fn render_value(value: &Value) -> String {
    match value {
        Value::Null => "not set".to_string(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("`{n}`"),
        Value::String(s) => format!("`{s}`"),
        Value::Sequence(items) if items.is_empty() => "`[]`".to_string(),
        Value::Sequence(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|item| {
                    serde_yaml::to_string(item)
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect();
            format!("`[{}]`", items.join(", "))
        }
        Value::Mapping(_) | Value::Tagged(_) => serde_yaml::to_string(value)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// The section a key path belongs to.
fn section_of(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

const PREAMBLE: &str = r#"# Configuration reference

<!-- Generated from the key table of the heimdall-config crate
     (crates/config/src/keys.rs, rendered by reference.rs) by its tests; do
     not edit by hand. After changing the table, run
     HEIMDALL_BLESS=1 cargo test -p heimdall-config
     to rewrite this file. -->

heimdall reads one YAML file, given with `heimdall --config FILE` (or `-c
FILE`). Without one it runs on its built-in default, with the upstream
servers taken from the `nameserver` lines of /etc/resolv.conf.

- `heimdall check-config FILE` validates a file and prints the effective
  configuration (every key, defaults filled in) or the first error, as
  `FILE:LINE:COLUMN: KEY: what is wrong`.
- `heimdall default-config` prints the built-in default with comments: a
  starting point for a file of your own.

## How to read this

Keys are written as paths: `cache.max_ttl` is the key `max_ttl` in the
section `cache:`. `local.zones[].name` is the key `name` of each item of the
list `local.zones`. Every key may be left out, and so may every section (an
empty section means all its defaults); the only exception is
`upstream.servers`, which a config file must list. Keys marked *required*
are required in each list item that is given. Unknown keys are errors.

For each key:

- **Type**: `bool` (`true` or `false`), `integer`, `size`, `duration`,
  `enum` (one of the words listed), or what the value is written as.
- **Default**: the value when the key is left out, as `check-config` prints
  it.
- **Valid**: the values validation accepts; anything else is an error.
- **Reload**: `applied` or `restart` (see below).

## Sizes and durations

- A **size** is a number of bytes, or a whole number with a unit: `KB`,
  `MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers of
  1024): `64MiB`, `512KiB`, `1GB`, `65536`.
- A **duration** is a number of seconds, or a whole number with a unit:
  `ms`, `s`, `m`, `h`, `d`: `800ms`, `2s`, `5m`, `1h`, `1d`, `30`. TTLs are
  whole seconds.

## Reload

A hot reload (SIGHUP, or `POST /reload` on the control endpoint) reads the
file again. If it is invalid, nothing changes and the error is reported.
Otherwise:

"#;

/// The configuration reference in Markdown: `docs/CONFIGURATION.md`.
pub fn configuration_reference() -> String {
    let defaults = walk(&defaults_value());
    let item_defaults = walk(&item_defaults_value());
    let default_of = |path: &str| {
        let walked = if path.contains("[]") {
            &item_defaults
        } else {
            &defaults
        };
        walked
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, value)| render_value(value))
    };
    let mut out = String::from(PREAMBLE);
    let restart: Vec<String> = RESTART_ONLY_KEYS
        .iter()
        .map(|key| format!("`{key}`"))
        .collect();
    let _ = writeln!(
        out,
        "- **restart**: the sections and keys {} keep their running value until heimdall is \
         restarted; the reload reports each one that changed.",
        restart.join(", ")
    );
    out.push_str(
        "- **applied**: every other key takes effect. Zone files (`local.zones`) and list \
         files (`blocklist.files`, `blocklist.allow_files`) are read again even when the YAML \
         did not change. The caches survive, but entries the new blocklist or local data \
         answers differently are dropped.\n",
    );
    out.push_str("\n| Section | Reload |\n|---|---|\n");
    for (section, _) in SECTIONS {
        let behaviour = match (reload_behaviour(section), *section) {
            (ReloadBehaviour::Applied, "cache") => "applied, except `cache.persist`: restart",
            (behaviour, _) => behaviour.as_str(),
        };
        let _ = writeln!(out, "| `{section}` | {behaviour} |");
    }
    out.push_str("\n## Keys\n");

    let keys = keys();
    for (section, intro) in SECTIONS {
        let _ = write!(out, "\n### `{section}`\n\n{intro}\n");
        for doc in keys.iter().filter(|doc| section_of(doc.path) == *section) {
            let default = if doc.required {
                "none (*required*)".to_string()
            } else {
                default_of(doc.path).unwrap_or_else(|| "?".to_string())
            };
            let _ = write!(
                out,
                "\n#### `{}`\n\n- Type: {}\n- Default: {}\n- Valid: {}\n- Reload: {}\n\n{}\n",
                doc.path,
                doc.ty.describe(),
                default,
                doc.valid.describe(doc.ty),
                reload_behaviour(doc.path).as_str(),
                doc.text
            );
        }
    }
    out.push_str(
        "\n## Deprecated keys\n\nStill read and applied, never printed by `check-config`; \
         each will be removed in a later release.\n",
    );
    for (path, text) in DEPRECATED {
        let _ = write!(out, "\n- `{path}`: {text}\n");
    }
    out
}

#[cfg(test)]
mod tests;
