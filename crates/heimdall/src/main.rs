//! The heimdall binary: parse the command line, load the configuration
//! (`--config`, else /etc/heimdall/heimdall.yaml when it exists, else the
//! embedded default), set up logging, start the server, tell systemd
//! about it (`notify`), reload the configuration on SIGHUP, and stop
//! gracefully on SIGTERM or SIGINT. `heimdall ctl` is the control client
//! (`ctl`); `heimdall check-config` loads everything a start would;
//! `heimdall generate` writes the man pages and completions.

mod ctl;
mod generate;
mod logging;
mod notify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use heimdall_config::{Config, DEFAULT_CONFIG_YAML, defaults};
use heimdall_server::{ReloadSource, Server, StartOptions};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A thread-per-core, shared-nothing caching DNS server.
#[derive(Debug, Parser)]
#[command(name = "heimdall", version, about)]
pub(crate) struct Cli {
    /// The YAML configuration file. Without it, heimdall reads
    /// /etc/heimdall/heimdall.yaml when that exists, else runs on its
    /// embedded default: 127.0.0.1:5353, all cores, upstreams from
    /// /etc/resolv.conf.
    #[arg(short, long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration as a start would (zone files, block lists,
    /// CPUs, cookie secret) and print the effective configuration.
    CheckConfig {
        /// The file to check (default: `-c FILE`, else the file a start
        /// would read).
        file: Option<PathBuf>,
        /// The file is for another machine: do not check its CPU ids
        /// against this one.
        #[arg(long)]
        other_host: bool,
    },
    /// Print the default configuration, with comments.
    DefaultConfig,
    /// Talk to a running heimdall over its control socket.
    Ctl(ctl::CtlArgs),
    /// Print the man pages or shell completions (for packagers).
    #[command(subcommand)]
    Generate(generate::Generate),
}

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// A file: given, or the default path that exists.
    File(PathBuf),
    /// The embedded default (with the current resolv.conf).
    Embedded,
}

/// The source for an explicit `--config`, else `default_path` when it
/// exists, else the embedded default.
fn source(explicit: Option<&Path>, default_path: &Path) -> Source {
    match explicit {
        Some(path) => Source::File(path.to_path_buf()),
        None if default_path.exists() => Source::File(default_path.to_path_buf()),
        None => Source::Embedded,
    }
}

impl Source {
    fn load(&self) -> anyhow::Result<Config> {
        match self {
            Self::File(path) => Ok(Config::load(path)?),
            Self::Embedded => Config::system_default()
                .context("no configuration file, and the embedded default cannot be used"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::File(path) => format!("configuration file {}", path.display()),
            Self::Embedded => format!(
                "no configuration file ({} does not exist): the embedded default, with \
                 upstreams from /etc/resolv.conf",
                defaults::CONFIG_PATH
            ),
        }
    }
}

/// `heimdall check-config`: everything a start reads, read.
fn check_config(source: &Source, this_host: bool) -> anyhow::Result<()> {
    let config = source.load()?;
    heimdall_server::check(&config, this_host)?;
    print!("{}", config.to_yaml()?);
    match source {
        Source::File(path) => eprintln!("{}: configuration is valid", path.display()),
        Source::Embedded => eprintln!("{}: valid", source.describe()),
    }
    Ok(())
}

/// `heimdall ctl`: the socket is `--socket`, else the configuration's
/// `control.socket` (a file that does not load falls back to the default
/// path, so a broken file can still be reloaded and reported).
fn control(args: &ctl::CtlArgs, source: &Source) -> anyhow::Result<()> {
    let socket = match &args.socket {
        Some(path) => path.clone(),
        None => match source {
            Source::File(path) => match source.load() {
                Ok(config) => config.control.socket,
                Err(err) => {
                    // A bad edit must not keep `ctl reload` from the server
                    // that reports it: read the socket key alone.
                    let socket = Config::peek_control_socket(path)
                        .unwrap_or_else(|| PathBuf::from(defaults::CONTROL_SOCKET));
                    eprintln!(
                        "heimdall: note: {} does not load ({}); using the control socket {}",
                        path.display(),
                        error_text(&err),
                        socket.display()
                    );
                    socket
                }
            },
            Source::Embedded => PathBuf::from(defaults::CONTROL_SOCKET),
        },
    };
    let out = ctl::run(args, &socket)?;
    print!("{out}");
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let source = source(cli.config.as_deref(), Path::new(defaults::CONFIG_PATH));
    match cli.command {
        Some(Command::DefaultConfig) => {
            print!("{DEFAULT_CONFIG_YAML}");
            return Ok(());
        }
        Some(Command::CheckConfig { file, other_host }) => {
            let source = file.map_or(source, Source::File);
            return check_config(&source, !other_host);
        }
        Some(Command::Ctl(args)) => return control(&args, &source),
        Some(Command::Generate(what)) => return generate::run(&what),
        None => {}
    }
    let notifier = match notify::Notifier::from_env() {
        Some(Ok(notifier)) => Some(Arc::new(notifier)),
        Some(Err(err)) => {
            eprintln!("heimdall: NOTIFY_SOCKET is set but unusable ({err}); not notifying");
            None
        }
        None => None,
    };
    let config = match source.load() {
        Ok(config) => config,
        Err(err) => {
            if let Some(notifier) = &notifier {
                notifier.notify(&format!(
                    "STATUS=configuration refused: {}",
                    error_text(&err).replace('\n', " ")
                ));
            }
            return Err(err);
        }
    };
    logging::init(&config.log);
    log::info!("{}", source.describe());
    // The handlers go in before the server answers anything: a SIGTERM
    // that arrived after the first answer but before they were installed
    // would kill the process without the graceful stop. Signals wait in
    // the iterator's pipe until the loop below reads them; the thread
    // sleeps until one comes (no polling).
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install the signal handlers")?;
    // A reload reads the same source again: the file, or the embedded
    // default with the current resolv.conf.
    let reload_from = source.clone();
    let reload_source: ReloadSource =
        Arc::new(move || reload_from.load().map_err(|err| error_text(&err)));
    let watchdog = notifier.as_ref().and(notify::watchdog_interval());
    let server = Server::start_with(
        &config,
        StartOptions {
            reload_source: Some(reload_source),
            events: notifier.clone().map(notify::sink),
            watchdog,
            ..StartOptions::default()
        },
    )?;
    for signal in signals.forever() {
        if signal == SIGHUP {
            // Core 0 reloads and logs the outcome.
            server.request_reload();
        } else {
            break;
        }
    }
    log::info!("stopping: finishing outstanding queries");
    if let Some(notifier) = &notifier {
        notifier.notify("STOPPING=1\nSTATUS=stopping: finishing outstanding queries");
    }
    server.shutdown();
    let reports = server.join()?;
    for report in &reports {
        let stats = &report.resolver;
        log::info!(
            "core {}: {} queries, {} cache hits, {} misses, {} upstream queries, {} timeouts, {} hints in, {} hints out",
            report.core,
            stats.queries,
            stats.cache_hits,
            stats.cache_misses,
            stats.upstream_queries,
            stats.upstream_timeouts,
            stats.hints_in,
            stats.hints_out
        );
        log::info!(
            "core {}: {} local answers, {} blocked, ACL {} refused / {} dropped, rate limit {} dropped / {} refused / {} truncated",
            report.core,
            stats.local_answers,
            stats.blocked,
            stats.acl_refused,
            stats.acl_dropped,
            stats.rate_limited_dropped,
            stats.rate_limited_refused,
            stats.rate_limited_truncated
        );
    }
    Ok(())
}

/// `err` and its causes joined by ": ", as `{err:#}` writes them, but
/// without a cause the text already ends with: several errors (a
/// configuration error inside a server error, an I/O error inside "cannot
/// read") write their source into their own message, and `{err:#}` would
/// print it twice.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("heimdall: {}", error_text(&err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_default_file_is_read_when_it_exists_and_only_then() {
        let dir = std::env::temp_dir().join(format!("heimdall-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let default = dir.join("heimdall.yaml");
        let _ = std::fs::remove_file(&default);
        let given = Path::new("/x/given.yaml");
        assert_eq!(source(None, &default), Source::Embedded);
        assert_eq!(source(Some(given), &default), Source::File(given.into()));
        std::fs::write(&default, "upstream: {servers: [127.0.0.1:53]}\n").unwrap();
        assert_eq!(source(None, &default), Source::File(default.clone()));
        assert_eq!(source(Some(given), &default), Source::File(given.into()));
        assert!(Source::Embedded.describe().contains("embedded default"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
