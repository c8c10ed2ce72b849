//! Keeps docs/CONFIGURATION.md and the key table in step with the schema,
//! its defaults, validation and the reload rule.

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::*;
use crate::schema::{Type, Valid};
use crate::units::format_duration;
use crate::{Config, ConfigError, DEFAULT_CONFIG_YAML};

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CONFIGURATION.md");

/// A valid file with every list non-empty and every optional key set, so
/// that walking its effective YAML finds every key of the schema.
const EVERY_KEY: &str = concat!(
    r#"
server: {cores: [0], listen: ["127.0.0.1:5353"]}
cache: {persist: /var/lib/heimdall/cache.bin}
upstream:
  servers: [9.9.9.9]
  tls_ca_file: "#,
    env!("CARGO_MANIFEST_DIR"),
    r#"/Cargo.toml
tls:
  listen: [127.0.0.1:853]
  https_listen: [127.0.0.1:443]
  quic_listen: [127.0.0.1:853]
  certificate: "#,
    env!("CARGO_MANIFEST_DIR"),
    r#"/Cargo.toml
  key: "#,
    env!("CARGO_MANIFEST_DIR"),
    r#"/Cargo.toml
local:
  records: ["router.lan. 300 IN A 192.168.1.1"]
  zones: [{name: lan., file: /etc/heimdall/lan.zone}]
blocklist:
  files: [{path: /etc/heimdall/ads.txt}]
  allow: [example.com]
  allow_files: [/etc/heimdall/allow.txt]
acl: {allow: [203.0.113.0/24], deny: [192.0.2.1]}
cookies: {secret: e5e973e5a6b2a43f48e7dc849e37bfcf}
dnstap: {socket: /run/heimdall/dnstap.sock, identity: ns1, version: heimdall}
dnssec: {trust_anchors: [/etc/heimdall/anchors.ds], negative_trust_anchors: [broken.example]}
control: {token: 0123456789abcdef0123}
"#
);

/// The effective configuration of `yaml` as a YAML value.
fn effective(yaml: &str) -> Value {
    let config = Config::from_yaml_str(yaml, "test.yaml").unwrap();
    serde_yaml::from_str(&config.to_yaml().unwrap()).unwrap()
}

/// [`EVERY_KEY`] with `path` set to `value` (for `list[].key`, in the
/// list's first item), checked.
fn with(path: &str, value: Value) -> Result<Config, ConfigError> {
    let mut root: Value = serde_yaml::from_str(EVERY_KEY).unwrap();
    set(&mut root, path, Some(value));
    Config::from_yaml_str(&serde_yaml::to_string(&root).unwrap(), "test.yaml")
}

/// Sets (or with `None`, removes) `path` in `root`, creating sections.
fn set(root: &mut Value, path: &str, value: Option<Value>) {
    let mut node = root;
    let mut names: Vec<&str> = path.split('.').collect();
    let last = names.pop().unwrap();
    for name in names {
        let (name, item) = match name.strip_suffix("[]") {
            Some(list) => (list, true),
            None => (name, false),
        };
        let map = node.as_mapping_mut().unwrap();
        if !map.contains_key(name) {
            map.insert(name.into(), Value::Mapping(Mapping::new()));
        }
        node = map.get_mut(name).unwrap();
        if item {
            node = node.as_sequence_mut().unwrap().first_mut().unwrap();
        }
    }
    let map = node.as_mapping_mut().unwrap();
    match value {
        Some(value) => {
            map.insert(last.into(), value);
        }
        None => {
            map.remove(last);
        }
    }
}

#[test]
fn the_doc_is_current() {
    let rendered = configuration_reference();
    if std::env::var_os("HEIMDALL_BLESS").is_some() {
        std::fs::write(DOC_PATH, &rendered).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(DOC_PATH).unwrap_or_default();
    if on_disk != rendered {
        let first_difference = on_disk
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(rendered.lines().count()));
        panic!(
            "docs/CONFIGURATION.md is not what the config crate renders (first difference at \
             line {}): run `HEIMDALL_BLESS=1 cargo test -p heimdall-config` and review the diff",
            first_difference + 1
        );
    }
}

#[test]
fn every_key_of_the_schema_is_documented_once_in_schema_order() {
    let walked = walk(&effective(EVERY_KEY));
    for (path, value) in &walked {
        assert!(
            !value.is_null() && value.as_sequence().is_none_or(|items| !items.is_empty()),
            "{path} is empty in EVERY_KEY: give it a value, so that keys inside it are found"
        );
    }
    let schema: Vec<&str> = walked.iter().map(|(path, _)| path.as_str()).collect();
    let table = keys();
    let documented: Vec<&str> = table.iter().map(|doc| doc.path).collect();
    assert_eq!(
        documented, schema,
        "the key table must list the schema's keys, in order"
    );

    let mut sections: Vec<&str> = schema.iter().map(|path| section_of(path)).collect();
    sections.dedup();
    let listed: Vec<&str> = SECTIONS.iter().map(|(name, _)| *name).collect();
    assert_eq!(listed, sections);
}

#[test]
fn the_doc_names_every_key_once() {
    let doc = configuration_reference();
    for path in keys().iter().map(|doc| doc.path) {
        let heading = format!("\n#### `{path}`\n");
        assert_eq!(doc.matches(&heading).count(), 1, "{path}");
    }
    assert_eq!(doc.matches("\n#### ").count(), keys().len());
    assert!(!doc.contains("Default: ?"), "a key without a default");
}

#[test]
fn documented_defaults_are_what_to_yaml_writes() {
    // The shipped default file, with the one key it leaves to resolv.conf.
    let yaml = DEFAULT_CONFIG_YAML.replace("servers: []", "servers: [9.9.9.9]");
    let from_file = walk(&effective(&yaml));
    let defaults = walk(&defaults_value());
    assert_eq!(from_file.len(), defaults.len());
    for ((path, value), (default_path, default)) in from_file.iter().zip(&defaults) {
        assert_eq!(path, default_path);
        if path != "upstream.servers" {
            assert_eq!(value, default, "{path}");
        }
    }
    // A list item's defaults are what an item that leaves them out gets.
    let item_defaults = walk(&item_defaults_value());
    for doc in keys().iter().filter(|doc| doc.path.contains("[]")) {
        let mut root: Value = serde_yaml::from_str(EVERY_KEY).unwrap();
        set(&mut root, doc.path, None);
        let result = Config::from_yaml_str(&serde_yaml::to_string(&root).unwrap(), "test.yaml");
        if doc.required {
            let err = result.unwrap_err().to_string();
            assert!(err.contains("missing key"), "{}: {err}", doc.path);
        } else {
            let written = walk(&serde_yaml::to_value(result.unwrap()).unwrap());
            let value = written.iter().find(|(path, _)| path == doc.path).unwrap();
            let default = item_defaults.iter().find(|(path, _)| path == doc.path);
            assert_eq!(Some(value), default, "{}", doc.path);
        }
    }
}

#[test]
fn documented_ranges_are_the_validated_ones() {
    let rejects = |path: &str, value: Value| {
        let result = with(path, value.clone());
        let err = result.err();
        assert_eq!(
            err.as_ref().and_then(ConfigError::key),
            Some(path),
            "{path}: {value:?} should be rejected: {err:?}"
        );
    };
    let accepts = |path: &str, value: Value| {
        if let Err(err) = with(path, value.clone()) {
            panic!("{path}: {value:?} should be accepted: {err}");
        }
    };
    let number = |n: u64| Value::Number(n.into());
    let duration = |d: Duration| Value::String(format_duration(d));
    let mut checked = 0;
    for doc in keys() {
        let path = doc.path;
        match doc.valid {
            Valid::Int(min, max) => {
                accepts(path, number(min));
                accepts(path, number(max));
                if min > 0 {
                    rejects(path, number(min - 1));
                }
                rejects(path, number(max + 1));
            }
            Valid::Size(min, max, multiple) => {
                accepts(path, number(min));
                accepts(path, number(max));
                rejects(path, number(min - 1));
                rejects(path, number(max + 1));
                if let Some(multiple) = multiple {
                    rejects(path, number(min + 1));
                    rejects(path, number(max + multiple));
                }
            }
            Valid::Duration(min, max, whole_seconds) => {
                let step = if whole_seconds {
                    Duration::from_secs(1)
                } else {
                    Duration::from_millis(1)
                };
                accepts(path, duration(min));
                accepts(path, duration(max));
                if let Some(below) = min.checked_sub(step) {
                    rejects(path, duration(below));
                }
                rejects(path, duration(max + step));
                if whole_seconds {
                    rejects(path, duration(min + Duration::from_millis(1)));
                }
            }
            Valid::Text(_) => continue,
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} ranges checked");
}

#[test]
fn documented_enum_values_are_the_accepted_ones() {
    let mut checked = 0;
    for doc in keys() {
        let Type::Enum(values) = doc.ty else {
            continue;
        };
        for value in values {
            let config = with(doc.path, Value::String(value.to_string()))
                .unwrap_or_else(|err| panic!("{}: {value}: {err}", doc.path));
            let written = walk(&serde_yaml::to_value(config).unwrap());
            let (_, got) = written.iter().find(|(path, _)| path == doc.path).unwrap();
            assert_eq!(got, &Value::String(value.to_string()), "{}", doc.path);
        }
        // serde's message lists the words it accepts.
        let err = with(doc.path, Value::String("bogus".into()))
            .unwrap_err()
            .to_string();
        let named: Vec<&str> = err
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|word| *word != "bogus")
            .collect();
        assert_eq!(&named, values, "{}: {err}", doc.path);
        checked += 1;
    }
    assert_eq!(checked, 10);
}

#[test]
fn the_reload_rule() {
    use ReloadBehaviour::{Applied, Restart};
    for restart in [
        "server",
        "server.cores",
        "server.listen[0]",
        "hints.enabled",
        "tcp.max_pipelined",
        "control.listen",
        "log.level",
        "cache.persist",
        "dnstap.socket",
        "dnstap.log_client_queries",
    ] {
        assert_eq!(reload_behaviour(restart), Restart, "{restart}");
    }
    for applied in [
        "upstream",
        "upstream.servers[1]",
        "cache",
        "cache.shard_size",
        "cache.max_ttl",
        "cache.persistence",
        "local.zones[0].file",
        "local.zones[].name",
        "blocklist.mode",
        "acl.deny",
        "rate_limit.rate",
        "dnssec.mode",
        "dnssec.trust_anchors",
        "servers",
        "logging",
    ] {
        assert_eq!(reload_behaviour(applied), Applied, "{applied}");
    }
    // Every documented key has the behaviour the doc gives it.
    let doc = configuration_reference();
    for key in keys() {
        let block = doc
            .split(&format!("\n#### `{}`\n", key.path))
            .nth(1)
            .unwrap();
        let expected = format!("- Reload: {}\n", reload_behaviour(key.path).as_str());
        assert!(block.contains(&expected), "{}", key.path);
    }
}

#[test]
fn values_render_as_inline_yaml() {
    assert_eq!(render_value(&Value::Null), "not set");
    assert_eq!(render_value(&Value::Bool(true)), "`true`");
    assert_eq!(render_value(&Value::Number(32.into())), "`32`");
    assert_eq!(render_value(&Value::String("1d".into())), "`1d`");
    assert_eq!(render_value(&Value::Sequence(vec![])), "`[]`");
    let listen = serde_yaml::from_str("[127.0.0.1:5353, \"[::1]:53\"]").unwrap();
    assert_eq!(render_value(&listen), "`[127.0.0.1:5353, '[::1]:53']`");
}

#[test]
fn deprecated_keys_are_read_and_never_written() {
    use crate::keys::DEPRECATED;
    let doc = configuration_reference();
    for (path, _) in DEPRECATED {
        assert!(!keys().iter().any(|doc| doc.path == *path), "{path}");
        assert!(doc.contains(&format!("\n- `{path}`: ")), "{path}");
        let written = walk(&effective(
            "upstream: {servers: [9.9.9.9], tcp_only: [9.9.9.9]}",
        ));
        assert!(written.iter().all(|(p, _)| p != path), "{path}");
    }
    assert_eq!(DEPRECATED.len(), 1, "a test for each deprecated key");
}

#[test]
fn enum_defaults_are_the_table_defaults() {
    // Code outside the crate (the resolver) may use `Default` on the enums;
    // the table's defaults are what a file that leaves the key out gets.
    use crate::{
        AclMode, BlockingMode, Delegations, ListFileFormat, LogLevel, RateLimitMode,
        UpstreamStrategy,
    };
    let config = Config::from_yaml_str("upstream: {servers: [9.9.9.9]}", "test.yaml").unwrap();
    assert_eq!(config.upstream.strategy, UpstreamStrategy::default());
    assert_eq!(config.local.delegations, Delegations::default());
    assert_eq!(config.blocklist.mode, BlockingMode::default());
    assert_eq!(config.acl.action, AclMode::default());
    assert_eq!(config.rate_limit.action, RateLimitMode::default());
    assert_eq!(config.log.level, LogLevel::default());
    let item = crate::keys::RawListFile::default().into_config();
    assert_eq!(item.format, ListFileFormat::default());
}

#[test]
fn the_default_file_shows_every_key() {
    // `heimdall default-config` is where operators start: each key of the
    // table appears in its section, set to its default or, when it has
    // none (`cache.persist`), commented out.
    for doc in keys().iter().filter(|doc| !doc.path.contains("[]")) {
        let (section, key) = doc.path.split_once('.').unwrap();
        let body: Vec<&str> = DEFAULT_CONFIG_YAML
            .lines()
            .skip_while(|line| *line != format!("{section}:"))
            .skip(1)
            .take_while(|line| line.is_empty() || line.starts_with(' '))
            .collect();
        assert!(
            body.iter()
                .any(|line| line.starts_with(&format!("  {key}:"))
                    || line.starts_with(&format!("  # {key}:"))),
            "default.yaml does not show {}",
            doc.path
        );
    }
}
