//! `heimdall ctl`: the operator's client. It sends one HTTP/1.1 request
//! over the control socket (`control.socket`, mode 0600) and renders the
//! server's JSON reply for humans, or prints it as it is (`--json`). The
//! exit status is 0 when the server did what was asked, 1 otherwise
//! (a failed reload, a refused request, no server).

#![allow(
    clippy::indexing_slicing,
    reason = "serde_json's `value[key]` is Null for a missing key and never panics"
)]

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

/// How long a request may take: a reload reads zone files and block
/// lists, which can take a while.
const TIMEOUT: Duration = Duration::from_secs(60);
/// The largest reply read: a cache dump of many large shards.
const MAX_REPLY: u64 = 8 << 30;

/// `heimdall ctl`'s arguments.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// The control socket. Default: `control.socket` of the configuration
    /// file (`-c`, or /etc/heimdall/heimdall.yaml), else
    /// /run/heimdall/control.sock.
    #[arg(long, value_name = "PATH")]
    pub(crate) socket: Option<PathBuf>,
    /// Print the server's JSON reply as it is (for scripts).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: CtlCommand,
}

/// What to ask the server.
#[derive(Debug, Subcommand)]
pub(crate) enum CtlCommand {
    /// Version, uptime, cores, and each upstream's smoothed RTT and
    /// failures in a row.
    Status,
    /// The counters, summed over the cores (`--json`: per core as well).
    Stats,
    /// Reload the configuration file; exits 1 when the reload failed (the
    /// running configuration then stays).
    Reload,
    /// Drop cached answers: all of them, those at and below NAME, or with
    /// --type only NAME's answer of that type.
    Flush {
        /// The name (every name below it too, without --type).
        name: Option<String>,
        /// Only this record type, at exactly NAME.
        #[arg(long = "type", value_name = "TYPE", requires = "name")]
        qtype: Option<String>,
    },
    /// Look into the cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// The names and types asked most, from a sample of one query in 64
    /// on every core (estimates; a name must be asked often to show).
    TopQueries {
        /// Rows to show (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Change the log level of the running server (off, error, warn,
    /// info, debug, trace) until it restarts.
    LogLevel {
        /// The new level.
        level: String,
    },
}

/// `heimdall ctl cache ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// The cached entries for NAME and TYPE, on every core.
    Lookup {
        /// The name.
        name: String,
        /// The record type.
        #[arg(default_value = "A")]
        qtype: String,
    },
    /// Every core's fresh entries as text on stdout, one line each
    /// (name, type, rcode, kind, seconds left, flags, the entry in base64).
    Dump,
    /// Insert the fresh entries of a dump (FILE, or `-` for stdin) into
    /// every core's cache; ages are applied as for the cache file.
    Load {
        /// The dump (`heimdall ctl cache dump` output).
        file: PathBuf,
    },
}

/// One reply from the server.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// Percent-encode a query parameter value.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Send `method target` over the socket at `path` and read the reply.
pub(crate) fn request(
    path: &Path,
    method: &str,
    target: &str,
    body: &[u8],
) -> anyhow::Result<Reply> {
    let mut stream = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach heimdall on {} (is it running? is control.socket set? \
             do you have permission?)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: heimdall\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut bytes = Vec::new();
    stream
        .take(MAX_REPLY)
        .read_to_end(&mut bytes)
        .context("reading the reply")?;
    parse_reply(&bytes)
}

fn parse_reply(bytes: &[u8]) -> anyhow::Result<Reply> {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("the server's reply has no end of header"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("the server's reply has no status"))?;
    Ok(Reply {
        status,
        body: body.to_owned(),
    })
}

/// The method and target for `command`.
fn target(command: &CtlCommand) -> (&'static str, String) {
    match command {
        CtlCommand::Status => ("GET", "/status".to_owned()),
        CtlCommand::Stats => ("GET", "/stats".to_owned()),
        CtlCommand::Reload => ("POST", "/reload".to_owned()),
        CtlCommand::Flush { name, qtype } => {
            let mut target = "/cache/flush".to_owned();
            if let Some(name) = name {
                target.push_str(&format!("?name={}", encode(name)));
                if let Some(qtype) = qtype {
                    target.push_str(&format!("&type={}", encode(qtype)));
                }
            }
            ("POST", target)
        }
        CtlCommand::Cache(CacheCommand::Lookup { name, qtype }) => (
            "GET",
            format!("/cache/lookup?name={}&type={}", encode(name), encode(qtype)),
        ),
        CtlCommand::Cache(CacheCommand::Dump) => ("GET", "/cache/dump".to_owned()),
        CtlCommand::TopQueries { limit } => ("GET", format!("/top-queries?limit={limit}")),
        CtlCommand::Cache(CacheCommand::Load { .. }) => ("POST", "/cache/load".to_owned()),
        CtlCommand::LogLevel { level } => ("POST", format!("/log-level?level={}", encode(level))),
    }
}

/// The request body for `command`: the dump to load, else nothing.
fn body(command: &CtlCommand) -> anyhow::Result<Vec<u8>> {
    let CtlCommand::Cache(CacheCommand::Load { file }) = command else {
        return Ok(Vec::new());
    };
    if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes)?;
        Ok(bytes)
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))
    }
}

/// Run `args` against the socket at `socket`; the text to print on
/// success, an error (exit 1) otherwise.
pub(crate) fn run(args: &CtlArgs, socket: &Path) -> anyhow::Result<String> {
    let (method, target) = target(&args.command);
    let reply = request(socket, method, &target, &body(&args.command)?)?;
    if matches!(args.command, CtlCommand::Cache(CacheCommand::Dump)) && reply.status == 200 {
        // Text already, for people and for `cache load` alike.
        return Ok(reply.body);
    }
    let json: Option<Value> = serde_json::from_str(&reply.body).ok();
    if !(200..300).contains(&reply.status) {
        let why = json
            .as_ref()
            .and_then(|value| value.get("error"))
            .and_then(Value::as_str)
            .map_or_else(|| reply.body.trim().to_owned(), str::to_owned);
        if matches!(args.command, CtlCommand::Reload) {
            if args.json {
                print!("{}", reply.body);
            }
            bail!("reload failed, the running configuration stays: {why}");
        }
        bail!("the server refused ({}): {why}", reply.status);
    }
    if args.json {
        return Ok(reply.body);
    }
    let value = json.ok_or_else(|| anyhow!("the server's reply is not JSON"))?;
    Ok(render(&args.command, &value))
}

/// The human rendering of a successful reply.
fn render(command: &CtlCommand, value: &Value) -> String {
    match command {
        CtlCommand::Status => render_status(value),
        CtlCommand::Stats => {
            let mut out = String::new();
            flatten(&mut out, "", &value["totals"]);
            out
        }
        CtlCommand::Reload => {
            let mut out = format!(
                "reloaded: configuration generation {}\n",
                value["generation"]
            );
            for change in value["changes"].as_array().into_iter().flatten() {
                out.push_str(&format!("  {}\n", change.as_str().unwrap_or_default()));
            }
            out
        }
        CtlCommand::Flush { .. } => {
            let what = value["flushed"]
                .as_str()
                .map_or_else(|| "the whole cache".to_owned(), str::to_owned);
            format!("flushed {what}: {} entries removed\n", value["removed"])
        }
        CtlCommand::Cache(CacheCommand::Lookup { .. }) => render_lookup(value),
        CtlCommand::Cache(CacheCommand::Dump) => String::new(),
        CtlCommand::TopQueries { .. } => {
            let mut out = format!(
                "{:>10}  {:<8} name   (sampled: one query in {})\n",
                "queries", "type", value["sample_every"]
            );
            for row in value["top"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "{:>10}  {:<8} {}\n",
                    row["queries"].to_string(),
                    row["type"].as_str().unwrap_or("?"),
                    row["name"].as_str().unwrap_or("?")
                ));
            }
            out
        }
        CtlCommand::Cache(CacheCommand::Load { .. }) => format!(
            "loaded {} entries into each of {} core(s)\n",
            value["loaded"], value["cores"]
        ),
        CtlCommand::LogLevel { .. } => format!(
            "log level: {} -> {}\n",
            value["previous"].as_str().unwrap_or("?"),
            value["level"].as_str().unwrap_or("?")
        ),
    }
}

/// `3723` -> `1h 2m 3s`.
fn duration_text(secs: u64) -> String {
    let (days, hours, minutes, seconds) =
        (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if days > 0 {
        format!("{days}d {hours}h {minutes}m")
    } else if hours > 0 {
        format!("{hours}h {minutes}m {seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

fn render_status(value: &Value) -> String {
    let mut out = format!(
        "heimdall {}{}, up {}, {} core(s), configuration generation {}\n",
        value["version"].as_str().unwrap_or("?"),
        value["commit"]
            .as_str()
            .map(|commit| format!(" ({commit})"))
            .unwrap_or_default(),
        duration_text(value["uptime_seconds"].as_u64().unwrap_or(0)),
        value["cores"],
        value["generation"],
    );
    out.push_str(&format!(
        "queries {}, cache {} entries ({} bytes), reloads {} ok / {} failed\n",
        value["queries"],
        value["cache"]["entries"],
        value["cache"]["bytes"],
        value["reloads"]["success"],
        value["reloads"]["failure"],
    ));
    out.push_str(&format!(
        "{:<40} {:>10} {:>9} {:>10} {:>9} {:>8}\n",
        "upstream", "srtt", "failures", "queries", "timeouts", "errors"
    ));
    for upstream in value["upstreams"].as_array().into_iter().flatten() {
        let srtt = upstream["srtt_ms"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
        // `Value`'s Display ignores widths: pad strings.
        out.push_str(&format!(
            "{:<40} {:>10} {:>9} {:>10} {:>9} {:>8}\n",
            upstream["upstream"].as_str().unwrap_or("?"),
            srtt,
            upstream["consecutive_failures"].to_string(),
            upstream["queries"].to_string(),
            upstream["timeouts"].to_string(),
            upstream["errors"].to_string(),
        ));
    }
    out
}

fn render_lookup(value: &Value) -> String {
    let name = value["name"].as_str().unwrap_or("?");
    let qtype = value["type"].as_str().unwrap_or("?");
    let entries = value["entries"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        return format!("{name} {qtype}: not cached\n");
    }
    let mut out = String::new();
    for entry in entries {
        out.push_str(&format!(
            "{name} {qtype}: core {}: {} {}, {} record(s), expires in {} s{}\n",
            entry["core"],
            entry["rcode"].as_str().unwrap_or("?"),
            entry["kind"].as_str().unwrap_or("?"),
            entry["records"],
            entry["ttl_remaining"],
            if entry["dnssec_ok"].as_bool() == Some(true) {
                " (DO)"
            } else {
                ""
            },
        ));
    }
    out
}

/// `key.sub: value` lines for the scalars of `value`; the latency
/// histograms are left to `--json` and `/metrics`.
fn flatten(out: &mut String, prefix: &str, value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if key == "latency" || key == "answers" {
                    continue;
                }
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(out, &path, inner);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                let label = inner
                    .get("upstream")
                    .and_then(Value::as_str)
                    .map_or_else(|| index.to_string(), str::to_owned);
                flatten(out, &format!("{prefix}[{label}]"), inner);
            }
        }
        scalar => out.push_str(&format!("{prefix}: {scalar}\n")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn targets_are_encoded() {
        let flush = CtlCommand::Flush {
            name: Some("a b.example".to_owned()),
            qtype: Some("AAAA".to_owned()),
        };
        assert_eq!(
            target(&flush),
            (
                "POST",
                "/cache/flush?name=a%20b.example&type=AAAA".to_owned()
            )
        );
        assert_eq!(
            target(&CtlCommand::Flush {
                name: None,
                qtype: None
            }),
            ("POST", "/cache/flush".to_owned())
        );
        assert_eq!(
            target(&CtlCommand::LogLevel {
                level: "debug".to_owned()
            }),
            ("POST", "/log-level?level=debug".to_owned())
        );
    }

    #[test]
    fn replies_are_parsed_and_rendered() {
        let reply = parse_reply(b"HTTP/1.1 500 Internal\r\nX: y\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!(reply.status, 500);
        assert_eq!(reply.body, "{\"a\":1}");
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\n").is_err());
        assert_eq!(duration_text(3723), "1h 2m 3s");
        assert_eq!(duration_text(59), "59s");
        assert_eq!(duration_text(90_061), "1d 1h 1m");
        let mut out = String::new();
        flatten(
            &mut out,
            "",
            &serde_json::json!({"cache": {"hits": 3}, "upstreams": [{"upstream": "u", "queries": 2}], "latency": {"x": 1}}),
        );
        assert_eq!(
            out,
            "cache.hits: 3\nupstreams[u].queries: 2\nupstreams[u].upstream: \"u\"\n"
        );
    }
}
