//! `heimdall-loadtest`: the command line. Each subcommand is a thin shell
//! over the library; `upstream` runs the synthetic upstream until SIGINT or
//! SIGTERM and then prints its counters.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use heimdall_loadtest::upstream::zone::DEFAULT_ORIGIN;
use heimdall_loadtest::{Behavior, Upstream, UpstreamConfig, ZoneConfig, signal};
use heimdall_wire::NameBuf;

/// heimdall's load generator and synthetic upstream.
#[derive(Debug, Parser)]
#[command(name = "heimdall-loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a generated zone as an authoritative upstream, until SIGINT or
    /// SIGTERM; then print the counters.
    Upstream(UpstreamArgs),
}

#[derive(Debug, Args)]
struct UpstreamArgs {
    /// Address to serve on (UDP, and TCP with --tcp).
    #[arg(long, default_value = "127.0.0.1:5300")]
    listen: SocketAddr,
    /// UDP serving threads, each with its own SO_REUSEPORT socket.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Zone origin.
    #[arg(long, default_value = DEFAULT_ORIGIN)]
    origin: NameBuf,
    /// Number of host-N (and alias-N, big-N, mail-N) names.
    #[arg(long, default_value_t = 1000)]
    names: u32,
    /// TTL of positive records, in seconds.
    #[arg(long, default_value_t = 300)]
    ttl: u32,
    /// SOA MINIMUM and negative-answer SOA TTL, in seconds.
    #[arg(long, default_value_t = 60)]
    negative_ttl: u32,
    /// Delay before every reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Fraction of UDP queries silently dropped (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// normal, drop, truncate, wrong-id, wrong-question, servfail or
    /// wrong-id-then-right.
    #[arg(long, default_value = "normal")]
    behavior: Behavior,
    /// Also serve TCP on the same port.
    #[arg(long)]
    tcp: bool,
    /// Seed of the loss RNG.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
}

fn run_upstream(args: UpstreamArgs) -> Result<(), String> {
    let config = UpstreamConfig {
        listen: args.listen,
        threads: args.threads,
        zone: ZoneConfig {
            origin: args.origin,
            names: args.names,
            ttl: args.ttl,
            negative_ttl: args.negative_ttl,
        },
        behavior: args.behavior,
        delay: Duration::from_millis(args.delay_ms),
        drop_rate: args.drop,
        tcp: args.tcp,
        seed: args.seed,
    };
    signal::install().map_err(|err| format!("cannot install signal handlers: {err}"))?;
    let mut upstream = Upstream::start(config.clone())
        .map_err(|err| format!("cannot start upstream on {}: {err}", args.listen))?;
    // One line, flushed at once (stdout is line-buffered), so a script can
    // wait for it and read the port.
    println!(
        "upstream listening on {} ({}) threads={} zone={} names={} behavior={} delay={}ms drop={}",
        upstream.local_addr(),
        if config.tcp { "udp+tcp" } else { "udp" },
        config.threads,
        config.zone.origin,
        config.zone.names,
        config.behavior,
        args.delay_ms,
        config.drop_rate,
    );
    while !signal::requested() {
        std::thread::sleep(Duration::from_millis(50));
    }
    upstream.stop();
    println!("{}", upstream.stats());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Upstream(args) => run_upstream(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("heimdall-loadtest: {message}");
            ExitCode::FAILURE
        }
    }
}
