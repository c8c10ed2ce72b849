//! `heimdall-loadtest`: the command line. Each subcommand is a thin shell
//! over the library:
//!
//! - `run` drives load at a DNS server and reports (exit 0; 3 when the loss
//!   exceeds `--max-loss`; 1 on an error; 2 on a usage error);
//! - `upstream` runs the synthetic upstream (or, with `--echo`, a batched
//!   reflector) until SIGINT or SIGTERM and then prints its counters;
//! - `queries` writes a workload as a dnsperf query file;
//! - `table` prints one table over several `--json` reports.

use std::fs;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand, ValueEnum};
use heimdall_loadtest::load::handshake::{self, HandshakeConfig};
use heimdall_loadtest::load::workload::{
    DEFAULT_EDNS_SIZE, DEFAULT_MIX, MAX_QUERY_LEN, parse_mix, query_line,
};
use heimdall_loadtest::load::{
    self, Component, Kind, LoadConfig, Mode, Report, Transport, Workload, WorkloadConfig, inflight,
    report,
};
use heimdall_loadtest::tls::{self, Trust};
use heimdall_loadtest::upstream::zone::DEFAULT_ORIGIN;
use heimdall_loadtest::{Behavior, Upstream, UpstreamConfig, ZoneConfig, affinity, signal};
use heimdall_wire::NameBuf;

/// Exit code of a run whose loss exceeded `--max-loss`.
const EXIT_LOSS: u8 = 3;

/// heimdall's load generator and synthetic upstream.
#[derive(Debug, Parser)]
#[command(name = "heimdall-loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send load to a DNS server (over UDP, TCP, TLS or HTTPS) and report
    /// what came back.
    Run(Box<RunArgs>),
    /// Serve a generated zone as an authoritative upstream, until SIGINT or
    /// SIGTERM; then print the counters.
    Upstream(UpstreamArgs),
    /// Write a workload's queries in dnsperf's format ("name type" lines).
    Queries(QueriesArgs),
    /// Print one table over several JSON reports (LABEL=FILE or FILE).
    Table(TableArgs),
}

/// A duration: a number with a unit (ns, us, ms, s, m, h); a bare number
/// is seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?} (try 10s, 500ms, 2m)"))?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("bad duration unit {other:?} in {text:?}")),
    };
    Duration::try_from_secs_f64(value * scale)
        .map_err(|err| format!("bad duration {text:?}: {err}"))
}

/// A CPU list (`0`, `0,2`, `0-3`), one value for clap.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CpuList(Vec<usize>);

fn parse_cpus(text: &str) -> Result<CpuList, String> {
    affinity::parse_cpu_list(text).map(CpuList)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadName {
    Hot,
    Cold,
    Nxdomain,
    Types,
    Large,
    Mixed,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// What to ask (shared by `run` and `queries`).
#[derive(Debug, Args)]
struct WorkloadArgs {
    /// hot: `--names` existing names repeated (cache hits); cold: a new
    /// existing name per query (misses); nxdomain: `--names` names that do
    /// not exist; types: A, AAAA, MX, TXT, a CNAME and NODATA; large: TXT
    /// answers of about 900 bytes (EDNS); mixed: `--mix`; file: `--queries`.
    #[arg(long, value_enum, default_value = "hot")]
    workload: WorkloadName,
    /// Ratios for `--workload mixed`: `kind=weight[:edns|:noedns][:do|:nodo]`,
    /// comma-separated.
    #[arg(long, default_value = DEFAULT_MIX)]
    mix: String,
    /// A query file in dnsperf's format ("name type" per line), the `file`
    /// workload (implied when given without --workload).
    #[arg(long)]
    queries: Option<PathBuf>,
    /// Distinct names of hot, nxdomain, types and large.
    #[arg(long, default_value_t = 1000)]
    names: u32,
    /// Names in the upstream's zone (its --names): the range cold walks.
    #[arg(long, default_value_t = 1000)]
    zone_names: u32,
    /// The zone the names are in.
    #[arg(long, default_value = DEFAULT_ORIGIN)]
    origin: NameBuf,
    /// EDNS on the queries (large always uses it unless its mix entry says
    /// noedns).
    #[arg(long, value_enum, default_value = "on")]
    edns: OnOff,
    /// The UDP payload size offered with EDNS.
    #[arg(long, default_value_t = DEFAULT_EDNS_SIZE)]
    edns_size: u16,
    /// Set the DO bit (implies EDNS).
    #[arg(long = "do")]
    dnssec_ok: bool,
    /// Seed of the shuffles, the cold start and the IDs (default: from the
    /// clock).
    #[arg(long)]
    seed: Option<u64>,
}

impl WorkloadArgs {
    fn config(&self) -> Result<WorkloadConfig, String> {
        let workload = match (self.workload, &self.queries) {
            (WorkloadName::Hot, Some(_)) => WorkloadName::File,
            (workload, _) => workload,
        };
        let components = match workload {
            WorkloadName::Mixed => parse_mix(&self.mix)?,
            WorkloadName::Hot => vec![Component::new(Kind::Hot)],
            WorkloadName::Cold => vec![Component::new(Kind::Cold)],
            WorkloadName::Nxdomain => vec![Component::new(Kind::Nxdomain)],
            WorkloadName::Types => vec![Component::new(Kind::Types)],
            WorkloadName::Large => vec![Component::new(Kind::Large)],
            WorkloadName::File => vec![Component::new(Kind::File)],
        };
        Ok(WorkloadConfig {
            components,
            origin: self.origin.clone(),
            names: self.names,
            zone_names: self.zone_names,
            edns: self.edns == OnOff::On,
            edns_size: self.edns_size,
            dnssec_ok: self.dnssec_ok,
            queries_file: self.queries.clone(),
            seed: self.seed(),
        })
    }

    fn seed(&self) -> u64 {
        self.seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64)
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TransportName {
    Udp,
    Tcp,
    Tls,
    Https,
}

impl From<TransportName> for Transport {
    fn from(name: TransportName) -> Self {
        match name {
            TransportName::Udp => Transport::Udp,
            TransportName::Tcp => Transport::Tcp,
            TransportName::Tls => Transport::Tls,
            TransportName::Https => Transport::Https,
        }
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The DNS server (its UDP, TCP, DoT or DoH port, after --transport).
    #[arg(long, default_value = "127.0.0.1:5353")]
    target: SocketAddr,
    /// udp: batched datagrams; tcp, tls (DNS over TLS, ALPN dot) and https
    /// (DNS over HTTPS, HTTP/2 POST, ALPN h2): --connections persistent
    /// connections with --pipeline queries outstanding on each.
    #[arg(long, value_enum, default_value = "udp")]
    transport: TransportName,
    /// Persistent connections in all (tcp, tls, https), spread over the
    /// workers; with --handshakes, concurrent connect-query-close loops.
    #[arg(long, default_value_t = load::DEFAULT_CONNECTIONS)]
    connections: usize,
    /// Queries outstanding per connection: max mode keeps this many in
    /// flight (pipelined); open loop counts a query due while a connection
    /// has this many as unsent.
    #[arg(long, default_value_t = load::DEFAULT_PIPELINE)]
    pipeline: usize,
    /// Trust the CA certificates of this PEM file (tls, https).
    #[arg(long, conflicts_with = "tls_insecure")]
    tls_ca: Option<PathBuf>,
    /// Accept any server certificate (self-signed benchmark certificates);
    /// handshake signatures are still checked.
    #[arg(long)]
    tls_insecure: bool,
    /// SNI and the name the certificate must carry; also DoH's authority
    /// (default: the target's address).
    #[arg(long)]
    tls_name: Option<String>,
    /// DoH request path.
    #[arg(long, default_value = load::DEFAULT_DOH_PATH)]
    doh_path: String,
    /// Measure handshakes instead: a new TLS connection for every query
    /// (tls, https), --connections of them at a time; reports handshakes
    /// per second, full and resumed.
    #[arg(long, visible_alias = "new-connection-per-query")]
    handshakes: bool,
    /// Do not resume TLS sessions (no tickets, no session IDs): every
    /// handshake is a full one.
    #[arg(long)]
    no_resumption: bool,
    /// Allow a target that is not a loopback address (only a server you
    /// own).
    #[arg(long)]
    allow_remote: bool,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// Open loop: this many queries per second in total, on a fixed
    /// schedule; latency is measured from each query's scheduled time.
    /// Without it, max mode: keep --window queries outstanding per socket.
    #[arg(long)]
    rate: Option<f64>,
    /// Max mode: queries outstanding per socket.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Measured time, after the warm-up (10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Time sent first and not counted.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// An answer later than this counts as lost.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,
    /// Most queries issued in all, warm-up included.
    #[arg(long, default_value_t = 100_000_000)]
    max_queries: u64,
    /// Worker threads (default: one per --cpus entry, else 1).
    #[arg(long)]
    workers: Option<usize>,
    /// CPUs to pin the workers to, in turn: 0 or 0,2 or 0-3.
    #[arg(long, value_parser = parse_cpus)]
    cpus: Option<CpuList>,
    /// UDP sockets per worker (distinct source ports, so the server's
    /// SO_REUSEPORT spreads them over its cores).
    #[arg(long, default_value_t = 4)]
    sockets: usize,
    /// Datagrams per sendmmsg/recvmmsg.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Send one datagram per message instead of UDP GSO trains of
    /// equal-length queries (the server receives the same datagrams either
    /// way; GSO only makes sending cheaper).
    #[arg(long)]
    no_gso: bool,
    /// Most queries outstanding per socket.
    #[arg(long, default_value_t = inflight::MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a chart of QPS and p99 per second (SVG) here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Exit with status 3 when the loss (0..1) exceeds this.
    #[arg(long)]
    max_loss: Option<f64>,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

/// The TLS client configuration `args` ask for (None for udp and tcp).
fn tls_config(args: &RunArgs) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    let transport = Transport::from(args.transport);
    if !transport.is_encrypted() {
        return Ok(None);
    }
    let trust = match (&args.tls_ca, args.tls_insecure) {
        (Some(path), _) => Trust::CaFile(path),
        (None, true) => Trust::Insecure,
        (None, false) => {
            return Err("--transport tls and https need --tls-ca FILE or --tls-insecure".into());
        }
    };
    let alpn = if transport == Transport::Https {
        tls::ALPN_H2
    } else {
        tls::ALPN_DOT
    };
    tls::client_config(&trust, alpn, !args.no_resumption).map(Some)
}

fn run_handshakes(args: &RunArgs) -> Result<ExitCode, String> {
    let cpus = args.cpus.clone().map(|cpus| cpus.0).unwrap_or_default();
    let load = LoadConfig {
        target: args.target,
        transport: args.transport.into(),
        tls: tls_config(args)?,
        tls_name: args.tls_name.clone().unwrap_or_default(),
        doh_path: args.doh_path.clone(),
        timeout: args.timeout,
        ..LoadConfig::default()
    };
    let config = HandshakeConfig {
        endpoint: load.endpoint()?,
        allow_remote: args.allow_remote,
        connections: args.connections,
        workers: args.workers.unwrap_or(cpus.len().max(1)),
        cpus,
        duration: args.duration,
        warmup: args.warmup,
        timeout: args.timeout,
        resumption: !args.no_resumption,
        workload: args.workload.config()?,
        seed: args.workload.seed(),
    };
    signal::install().map_err(|err| format!("cannot install signal handlers: {err}"))?;
    if !args.quiet {
        eprintln!(
            "heimdall-loadtest: new {} connection per query against {}, {} at a time, \
             resumption {}, {:?} + {:?} warm-up",
            Transport::from(args.transport).as_str(),
            config.endpoint.target,
            config.connections,
            if config.resumption { "on" } else { "off" },
            config.duration,
            config.warmup
        );
    }
    let progress = Arc::new(handshake::Progress::default());
    let quiet = args.quiet;
    let began = Instant::now();
    let report = std::thread::scope(|scope| {
        let running = scope.spawn(|| handshake::run(&config, signal::flag(), &progress));
        let mut last = (0, 0, 0);
        let mut second = 0u64;
        while !running.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if quiet || running.is_finished() {
                continue;
            }
            if began.elapsed() >= Duration::from_secs(second + 1) {
                second += 1;
                let now = (
                    progress.completed.load(Ordering::Relaxed),
                    progress.resumed.load(Ordering::Relaxed),
                    progress.failed.load(Ordering::Relaxed),
                );
                eprintln!(
                    "[{second}s] handshakes {}/s  resumed {}/s  failed {}/s",
                    now.0 - last.0,
                    now.1 - last.1,
                    now.2 - last.2
                );
                last = now;
            }
        }
        running
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the run panicked")))
    })
    .map_err(|err| err.to_string())?;
    print!("{}", report.render_table());
    let _flushed = io::stdout().flush();
    if let Some(path) = &args.json {
        fs::write(path, report.to_json())
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(if report.completed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_load(args: &RunArgs) -> Result<ExitCode, String> {
    if args.handshakes {
        return run_handshakes(args);
    }
    let workload = args.workload.config()?;
    let cpus = args.cpus.clone().map(|cpus| cpus.0).unwrap_or_default();
    let config = LoadConfig {
        target: args.target,
        allow_remote: args.allow_remote,
        mode: match args.rate {
            Some(rate) => Mode::Open { rate },
            None => Mode::Max {
                window: args.window,
            },
        },
        workers: args.workers.unwrap_or(cpus.len().max(1)),
        cpus,
        sockets: args.sockets,
        batch: args.batch,
        gso: !args.no_gso,
        max_in_flight: args.max_in_flight,
        duration: args.duration,
        warmup: args.warmup,
        timeout: args.timeout,
        max_queries: args.max_queries,
        seed: workload.seed,
        workload,
        max_loss: args.max_loss,
        transport: args.transport.into(),
        connections: args.connections,
        pipeline: args.pipeline,
        tls: tls_config(args)?,
        tls_name: args.tls_name.clone().unwrap_or_default(),
        doh_path: args.doh_path.clone(),
    };
    config.validate()?;
    signal::install().map_err(|err| format!("cannot install signal handlers: {err}"))?;
    if !args.quiet {
        eprintln!(
            "heimdall-loadtest: {} against {} over {} ({} mode), {:?} + {:?} warm-up",
            config.workload.describe(),
            config.target,
            config.transport.as_str(),
            config.mode_name(),
            config.duration,
            config.warmup
        );
    }
    let quiet = args.quiet;
    let total = config.warmup + config.duration;
    let report = load::run(&config, signal::flag(), |point| {
        if !quiet {
            eprintln!("{}", report::progress_line(point, total));
        }
    })
    .map_err(|err| err.to_string())?;
    print!("{}", report::render_table(&report));
    let _flushed = io::stdout().flush();
    if let Some(path) = &args.json {
        fs::write(path, report.to_json())
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        fs::write(path, report::render_svg(&report))
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "heimdall-loadtest: loss {:.4}% exceeds --max-loss {:.4}%",
            report.loss * 100.0,
            config.max_loss.unwrap_or(0.0) * 100.0
        );
        ExitCode::from(EXIT_LOSS)
    })
}

#[derive(Debug, Args)]
struct QueriesArgs {
    #[command(flatten)]
    workload: WorkloadArgs,
    /// How many lines.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn write_queries(args: &QueriesArgs) -> Result<(), String> {
    let config = args.workload.config()?;
    let workload = Workload::build(&config).map_err(|err| err.to_string())?;
    let mut stream = workload.stream(0, 1);
    let mut text = String::new();
    let mut packet = [0u8; MAX_QUERY_LEN];
    for _ in 0..args.count.min(100_000_000) {
        let line = stream
            .next_query(&mut packet)
            .and_then(|(len, _)| query_line(packet.get(..len)?))
            .ok_or("cannot build a query")?;
        text.push_str(&line);
        text.push('\n');
    }
    match &args.out {
        Some(path) => {
            fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
        }
        None => io::stdout()
            .write_all(text.as_bytes())
            .map_err(|err| err.to_string()),
    }
}

#[derive(Debug, Args)]
struct TableArgs {
    /// Reports written by `run --json`, each as FILE or LABEL=FILE.
    #[arg(required = true)]
    reports: Vec<String>,
}

fn print_table(args: &TableArgs) -> Result<(), String> {
    let mut reports = Vec::new();
    for entry in &args.reports {
        let (label, path) = match entry.split_once('=') {
            Some((label, path)) => (Some(label.to_string()), path),
            None => (None, entry.as_str()),
        };
        let text = fs::read_to_string(path).map_err(|err| format!("cannot read {path}: {err}"))?;
        let report = Report::from_json(&text).map_err(|err| format!("{path}: {err}"))?;
        let label = label.unwrap_or_else(|| report.config.workload.clone());
        reports.push((label, report));
    }
    print!("{}", report::render_summary(&reports));
    Ok(())
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
    /// normal, drop, truncate, wrong-id, wrong-question, servfail,
    /// wrong-id-then-right, echo or refused.
    #[arg(long, default_value = "normal")]
    behavior: Behavior,
    /// Reflect every query with QR set (a batched reflector, for
    /// measuring load generators); the same as --behavior echo.
    #[arg(long)]
    echo: bool,
    /// Pin the serving threads to these CPUs (0 or 0,2 or 0-3).
    #[arg(long, value_parser = parse_cpus)]
    cpus: Option<CpuList>,
    /// Also serve TCP on the same port.
    #[arg(long)]
    tcp: bool,
    /// Seed of the loss RNG.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
}

fn run_upstream(args: UpstreamArgs) -> Result<(), String> {
    let behavior = if args.echo {
        Behavior::Echo
    } else {
        args.behavior
    };
    let config = UpstreamConfig {
        listen: args.listen,
        threads: args.threads,
        zone: ZoneConfig {
            origin: args.origin,
            names: args.names,
            ttl: args.ttl,
            negative_ttl: args.negative_ttl,
        },
        behavior,
        delay: Duration::from_millis(args.delay_ms),
        drop_rate: args.drop,
        tcp: args.tcp,
        seed: args.seed,
    };
    signal::install().map_err(|err| format!("cannot install signal handlers: {err}"))?;
    if let Some(CpuList(cpus)) = &args.cpus {
        // Threads inherit the mask of the thread that starts them.
        affinity::pin_current_thread(cpus).map_err(|err| format!("cannot pin: {err}"))?;
    }
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
        Command::Run(args) => run_load(&args),
        Command::Upstream(args) => run_upstream(args).map(|()| ExitCode::SUCCESS),
        Command::Queries(args) => write_queries(&args).map(|()| ExitCode::SUCCESS),
        Command::Table(args) => print_table(&args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("heimdall-loadtest: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_option_parses() {
        let cli = Cli::try_parse_from([
            "heimdall-loadtest",
            "run",
            "--target",
            "127.0.0.1:53",
            "--workload",
            "mixed",
            "--mix",
            "hot=1,cold=1:do",
            "--names",
            "5",
            "--zone-names",
            "9",
            "--origin",
            "example.",
            "--edns",
            "off",
            "--edns-size",
            "4096",
            "--do",
            "--seed",
            "3",
            "--rate",
            "1000",
            "--window",
            "7",
            "--duration",
            "2s",
            "--warmup",
            "0",
            "--timeout",
            "50ms",
            "--max-queries",
            "10",
            "--workers",
            "2",
            "--cpus",
            "0-1",
            "--sockets",
            "3",
            "--batch",
            "8",
            "--max-in-flight",
            "100",
            "--json",
            "x.json",
            "--svg",
            "x.svg",
            "--max-loss",
            "0.1",
            "--quiet",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert_eq!(args.cpus, Some(CpuList(vec![0, 1])));
        assert_eq!(args.timeout, Duration::from_millis(50));
        let workload = args.workload.config().unwrap();
        assert_eq!(workload.describe(), "mixed(hot=1,cold=1:do)");
        assert!(!workload.edns && workload.dnssec_ok);
        let cli = Cli::try_parse_from([
            "heimdall-loadtest",
            "run",
            "--transport",
            "https",
            "--connections",
            "10",
            "--pipeline",
            "4",
            "--tls-insecure",
            "--tls-name",
            "dns.test",
            "--doh-path",
            "/q",
            "--new-connection-per-query",
            "--no-resumption",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert_eq!(Transport::from(args.transport), Transport::Https);
        assert!(args.handshakes && args.no_resumption && args.tls_insecure);
        assert_eq!((args.connections, args.pipeline), (10, 4));
        let config = tls_config(&args).unwrap().unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(
            Cli::try_parse_from([
                "heimdall-loadtest",
                "run",
                "--tls-insecure",
                "--tls-ca",
                "x.pem"
            ])
            .is_err(),
            "--tls-ca and --tls-insecure conflict"
        );
        let cli = Cli::try_parse_from(["heimdall-loadtest", "run", "--transport", "tls"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run");
        };
        assert!(tls_config(&args).is_err(), "tls needs a trust setting");
        let cli = Cli::try_parse_from([
            "heimdall-loadtest",
            "upstream",
            "--echo",
            "--cpus",
            "1",
            "--threads",
            "2",
        ])
        .unwrap();
        let Command::Upstream(args) = cli.command else {
            panic!("not upstream");
        };
        assert!(args.echo);
        assert_eq!(args.cpus, Some(CpuList(vec![1])));
        for args in [
            &[
                "heimdall-loadtest",
                "queries",
                "--workload",
                "cold",
                "--count",
                "3",
            ][..],
            &["heimdall-loadtest", "table", "a.json", "b=c.json"],
        ] {
            Cli::try_parse_from(args).unwrap();
        }
    }
}
