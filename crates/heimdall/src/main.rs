//! The heimdall binary: parse the command line, load the configuration
//! (a file, or the embedded default), set up logging, start the server,
//! reload the configuration on SIGHUP, and stop gracefully on SIGTERM or
//! SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use heimdall_config::{Config, DEFAULT_CONFIG_YAML};
use heimdall_server::{ReloadSource, Server, StartOptions};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A thread-per-core, shared-nothing caching DNS server.
#[derive(Debug, Parser)]
#[command(name = "heimdall", version, about)]
struct Cli {
    /// The YAML configuration file. Without it, heimdall runs on its
    /// embedded default: 127.0.0.1:5353, all cores, upstreams from
    /// /etc/resolv.conf.
    #[arg(short, long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file and print the effective configuration.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the default configuration, with comments.
    DefaultConfig,
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    match path {
        Some(path) => Ok(Config::load(path)?),
        None => Config::system_default()
            .context("no configuration file given, and the embedded default cannot be used"),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::DefaultConfig) => {
            print!("{DEFAULT_CONFIG_YAML}");
            return Ok(());
        }
        Some(Command::CheckConfig { file }) => {
            let config = Config::load(&file)?;
            print!("{}", config.to_yaml()?);
            eprintln!("{}: configuration is valid", file.display());
            return Ok(());
        }
        None => {}
    }
    let config = load(cli.config.as_ref())?;
    env_logger::Builder::new()
        .parse_filters(config.log.level.as_str())
        .parse_env("RUST_LOG")
        .init();
    // The handlers go in before the server answers anything: a SIGTERM
    // that arrived after the first answer but before they were installed
    // would kill the process without the graceful stop. Signals wait in
    // the iterator's pipe until the loop below reads them; the thread
    // sleeps until one comes (no polling).
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("cannot install the signal handlers")?;
    // A reload reads the same source again: the file, or the embedded
    // default with the current resolv.conf.
    let path = cli.config.clone();
    let reload_source: ReloadSource =
        Arc::new(move || load(path.as_ref()).map_err(|err| error_text(&err)));
    let server = Server::start_with(
        &config,
        StartOptions {
            reload_source: Some(reload_source),
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
