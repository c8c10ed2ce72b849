//! The result of a run: a serialisable [`Report`] (the `--json` schema), the
//! human-readable table, the progress line and the SVG chart.
//!
//! JSON schema `heimdall-loadtest/1` (every duration in the name's unit;
//! latencies in microseconds, to 0.1 µs):
//!
//! ```text
//! {
//!   "schema": "heimdall-loadtest/1",
//!   "config": { "target", "mode" ("open" | "max"), "rate" (open: queries/s, else null),
//!               "window" (max: per socket, else null), "workers", "cpus" [..],
//!               "sockets_per_worker", "batch", "gso", "max_in_flight", "duration_s", "warmup_s",
//!               "timeout_ms", "max_queries", "workload" ("hot", "mixed(hot=80,...)"),
//!               "names", "zone_names", "edns", "edns_size", "dnssec_ok",
//!               "queries_file" (or null), "seed", "max_loss" (or null),
//!               "transport" ("udp" | "tcp" | "tls" | "https"), "connections", "pipeline"
//!               (both 0 for udp) },
//!   "elapsed_s":  the measured time: from the end of the warm-up to the end of sending,
//!   "counts":     { "scheduled", "sent", "unsent", "answered", "lost", "late", "duplicate",
//!                   "wrong_id", "wrong_question", "malformed", "truncated",
//!                   "behind_schedule", "refused", "connection_errors", "http_errors" },
//!   "rcodes":     { "NOERROR": n, "FORMERR": n, "SERVFAIL": n, "NXDOMAIN": n, ...others seen },
//!   "loss":       (lost + unsent) / scheduled, 0..1,
//!   "qps":        { "offered", "sent", "answered" } per second over elapsed_s,
//!   "latency_us": { "samples", "min", "mean", "p50", "p90", "p99", "p99_9", "max" },
//!   "series":     [ { "second", "warmup", "length_s", "scheduled", "sent", "answered",
//!                     "lost", "unsent", "bad", "qps", "p50_us", "p99_us", "max_us",
//!                     "outstanding" }, ... one per second of the run, warm-up included ],
//!   "passed":     false when loss exceeds max_loss,
//!   "warnings":   [ "...", ... ]
//! }
//! ```
//!
//! `counts`, `rcodes`, `loss`, `qps` and `latency_us` cover only queries
//! scheduled (open loop) or sent (max) after the warm-up; `series` covers
//! every event of the run by the second it happened in, so the warm-up and
//! the final drain show there too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;

use hdrhistogram::Histogram;
use heimdall_wire::Rcode;
use serde::{Deserialize, Serialize};

use super::stats::{Counts, Latency, RCODE_SLOTS, WorkerTotals, new_histogram};
use super::{LoadConfig, Mode, Workload};

/// The `schema` value of this version of the report.
pub const SCHEMA: &str = "heimdall-loadtest/1";

/// The settings of a run, as reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportConfig {
    /// Where the queries went.
    pub target: String,
    /// `open` or `max`.
    pub mode: String,
    /// Open loop: the target rate, queries per second.
    pub rate: Option<f64>,
    /// Max: queries outstanding per socket.
    pub window: Option<usize>,
    /// Worker threads.
    pub workers: usize,
    /// CPUs the workers were pinned to (empty: not pinned).
    pub cpus: Vec<usize>,
    /// Sockets per worker.
    pub sockets_per_worker: usize,
    /// Datagrams per system call.
    pub batch: usize,
    /// Whether queries went out as UDP GSO trains.
    pub gso: bool,
    /// Most queries outstanding per socket.
    pub max_in_flight: usize,
    /// Measured time asked for, seconds.
    pub duration_s: f64,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// Per-query timeout, milliseconds.
    pub timeout_ms: f64,
    /// Cap on queries issued.
    pub max_queries: u64,
    /// The workload (`hot`, `mixed(hot=80,cold=20)`, ...).
    pub workload: String,
    /// Distinct names of the repeated workloads.
    pub names: u32,
    /// Names in the upstream's zone (the range of `cold`).
    pub zone_names: u32,
    /// EDNS on the queries (the default; components may differ).
    pub edns: bool,
    /// EDNS UDP payload size offered.
    pub edns_size: u16,
    /// DO bit (the default; components may differ).
    pub dnssec_ok: bool,
    /// The query file, if any.
    pub queries_file: Option<String>,
    /// Seed.
    pub seed: u64,
    /// Loss threshold of `passed`.
    pub max_loss: Option<f64>,
    /// `udp`, `tcp`, `tls` or `https`.
    #[serde(default = "udp")]
    pub transport: String,
    /// Stream transports: persistent connections (0 for UDP).
    #[serde(default)]
    pub connections: usize,
    /// Stream transports: queries outstanding per connection (0 for UDP).
    #[serde(default)]
    pub pipeline: usize,
}

fn udp() -> String {
    "udp".into()
}

/// Rates over the measured time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Qps {
    /// Queries scheduled per second.
    pub offered: f64,
    /// Queries sent per second.
    pub sent: f64,
    /// Queries answered per second.
    pub answered: f64,
}

/// The figures of one second of the run (all workers together).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// Which second (0-based, from the start of the warm-up).
    pub second: u64,
    /// Whether it began during the warm-up.
    pub warmup: bool,
    /// Its length in seconds (1 but for the last).
    pub length_s: f64,
    /// Queries scheduled.
    pub scheduled: u64,
    /// Queries sent.
    pub sent: u64,
    /// Queries answered.
    pub answered: u64,
    /// Queries that timed out.
    pub lost: u64,
    /// Queries not sent.
    pub unsent: u64,
    /// Wrong-ID, wrong-question and malformed responses.
    pub bad: u64,
    /// Answers per second.
    pub qps: f64,
    /// Median latency of the answers, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Largest, µs.
    pub max_us: f64,
    /// Queries outstanding at its end.
    pub outstanding: u64,
}

impl SeriesPoint {
    pub(crate) fn new(
        second: u64,
        warmup_ns: u64,
        counts: &Counts,
        histogram: &Histogram<u64>,
        outstanding: u64,
        length_ns: u64,
    ) -> Self {
        let latency = Latency::from_histogram(histogram);
        let length_s = length_ns as f64 / 1e9;
        Self {
            second,
            warmup: second * 1_000_000_000 < warmup_ns,
            length_s,
            scheduled: counts.scheduled,
            sent: counts.sent,
            answered: counts.answered,
            lost: counts.lost,
            unsent: counts.unsent,
            bad: counts.bad_responses(),
            qps: if length_s > 0.0 {
                (counts.answered as f64 / length_s).round()
            } else {
                0.0
            },
            p50_us: latency.p50,
            p99_us: latency.p99,
            max_us: latency.max,
            outstanding,
        }
    }
}

/// The result of a run; see the module documentation for its JSON form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA`].
    pub schema: String,
    /// The settings.
    pub config: ReportConfig,
    /// Measured time, seconds.
    pub elapsed_s: f64,
    /// Event counts of the measured queries.
    pub counts: Counts,
    /// Answers by rcode.
    pub rcodes: BTreeMap<String, u64>,
    /// (lost + unsent) / scheduled.
    pub loss: f64,
    /// Rates.
    pub qps: Qps,
    /// Latency percentiles, µs.
    pub latency_us: Latency,
    /// One point per second.
    pub series: Vec<SeriesPoint>,
    /// False when loss exceeds `config.max_loss`.
    pub passed: bool,
    /// Things that make the figures doubtful.
    pub warnings: Vec<String>,
}

fn rcode_name(index: usize) -> String {
    if index == RCODE_SLOTS - 1 {
        return format!("RCODE{index}+");
    }
    Rcode(index as u16).to_string()
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

impl Report {
    pub(crate) fn build(
        config: &LoadConfig,
        workload: &Workload,
        results: &[WorkerTotals],
        series: Vec<SeriesPoint>,
        warmup_ns: u64,
    ) -> io::Result<Self> {
        let mut counts = Counts::default();
        let mut histogram = new_histogram()?;
        let mut send_end_ns = 0u64;
        let mut cold_issued = 0u64;
        let mut first_error = None;
        let stream = config.transport.is_stream();
        for result in results {
            if first_error.is_none() {
                first_error.clone_from(&result.first_error);
            }
            counts.add(&result.counts);
            let _fits = histogram.add(&result.histogram);
            send_end_ns = send_end_ns.max(result.send_end_ns);
            cold_issued += result.cold_issued;
        }
        let elapsed_s = send_end_ns.saturating_sub(warmup_ns) as f64 / 1e9;
        let per_second = |count: u64| {
            if elapsed_s > 0.0 {
                (count as f64 / elapsed_s).round()
            } else {
                0.0
            }
        };
        let mut rcodes = BTreeMap::new();
        for (index, &count) in counts.rcodes.iter().enumerate() {
            if count > 0 || index <= 3 {
                rcodes.insert(rcode_name(index), count);
            }
        }
        let loss = counts.loss();
        let passed = config.max_loss.is_none_or(|max| loss <= max);
        let workload_config = workload.config();
        let mut warnings = Vec::new();
        if counts.behind_schedule > 0 {
            warnings.push(format!(
                "{} queries went out more than 1 ms after their scheduled time: the generator \
                 could not keep the schedule (their latency includes the lag); add workers or \
                 lower --rate",
                counts.behind_schedule
            ));
        }
        if counts.unsent > 0 {
            warnings.push(format!(
                "{} queries were not sent (a socket had --max-in-flight queries outstanding, \
                 the generator fell too far behind, or the kernel refused them)",
                counts.unsent
            ));
        }
        if counts.refused > 0 {
            warnings.push(format!(
                "the kernel reported {} receive errors (ICMP port unreachable?): is the server \
                 listening on {}?",
                counts.refused, config.target
            ));
        }
        if counts.bad_responses() > 0 {
            warnings.push(format!(
                "{} responses did not match a query (wrong ID {}, wrong question {}, \
                 malformed {})",
                counts.bad_responses(),
                counts.wrong_id,
                counts.wrong_question,
                counts.malformed
            ));
        }
        if cold_issued > u64::from(workload_config.zone_names) {
            warnings.push(format!(
                "cold asked {cold_issued} queries but the zone has only {} names \
                 (--zone-names): later cold names were repeats",
                workload_config.zone_names
            ));
        }
        if counts.connection_errors > 0 {
            warnings.push(format!(
                "{} connection errors (their outstanding queries are lost); the first: {}",
                counts.connection_errors,
                first_error.as_deref().unwrap_or("unknown")
            ));
        }
        if counts.http_errors > 0 {
            warnings.push(format!(
                "{} DoH requests got an HTTP status other than 200 or were reset",
                counts.http_errors
            ));
        }
        if counts.sent > 0 && counts.answered == 0 {
            warnings.push("no query was answered".into());
        }
        let (rate, window) = match config.mode {
            Mode::Open { rate } => (Some(rate), None),
            Mode::Max { window } => (None, Some(window)),
        };
        Ok(Self {
            schema: SCHEMA.into(),
            config: ReportConfig {
                target: config.target.to_string(),
                mode: config.mode_name().into(),
                rate,
                window,
                workers: config.workers,
                cpus: config.cpus.clone(),
                sockets_per_worker: config.sockets,
                batch: config.batch,
                gso: config.gso,
                max_in_flight: config.max_in_flight,
                duration_s: config.duration.as_secs_f64(),
                warmup_s: config.warmup.as_secs_f64(),
                timeout_ms: config.timeout.as_secs_f64() * 1000.0,
                max_queries: config.max_queries,
                workload: workload_config.describe(),
                names: workload_config.names,
                zone_names: workload_config.zone_names,
                edns: workload_config.edns,
                edns_size: workload_config.edns_size,
                dnssec_ok: workload_config.dnssec_ok,
                queries_file: workload_config
                    .queries_file
                    .as_ref()
                    .map(|path| path.display().to_string()),
                seed: config.seed,
                max_loss: config.max_loss,
                transport: config.transport.as_str().into(),
                connections: if stream { config.connections } else { 0 },
                pipeline: if stream { config.pipeline } else { 0 },
            },
            elapsed_s: round(elapsed_s, 3),
            qps: Qps {
                offered: per_second(counts.scheduled),
                sent: per_second(counts.sent),
                answered: per_second(counts.answered),
            },
            latency_us: Latency::from_histogram(&histogram),
            rcodes,
            loss,
            counts,
            series,
            passed,
            warnings,
        })
    }

    /// The JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
    }

    /// Read a report back from its JSON form.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let report: Self = serde_json::from_str(text).map_err(|err| err.to_string())?;
        if report.schema != SCHEMA {
            return Err(format!("schema {:?} is not {SCHEMA:?}", report.schema));
        }
        Ok(report)
    }

    fn rcode(&self, name: &str) -> u64 {
        self.rcodes.get(name).copied().unwrap_or(0)
    }
}

/// One line of progress for `point` of a run of `total` (warm-up and
/// duration): elapsed of total, and the time left.
pub fn progress_line(point: &SeriesPoint, total: std::time::Duration) -> String {
    let total_s = total.as_secs_f64().ceil() as u64;
    let elapsed_s = point.second + 1;
    format!(
        "[{}/{} ETA {}] sent {:>9} answered {:>9} lost {:>7} qps {:>9.0} p99 {:>9.1} us{}",
        clock(elapsed_s),
        clock(total_s),
        clock(total_s.saturating_sub(elapsed_s)),
        point.sent,
        point.answered,
        point.lost,
        point.qps,
        point.p99_us,
        if point.warmup { "  (warm-up)" } else { "" }
    )
}

/// `75` -> `"1:15"`, `3725` -> `"1:02:05"`.
fn clock(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

fn percent(fraction: f64) -> String {
    format!("{:.4}%", fraction * 100.0)
}

/// The human-readable summary of one run.
pub fn render_table(report: &Report) -> String {
    let config = &report.config;
    let counts = &report.counts;
    let pace = match (config.rate, config.window) {
        (Some(rate), _) => format!("open loop at {rate:.0} queries/s"),
        (None, Some(_)) if config.connections > 0 => {
            format!("max, {} outstanding per connection", config.pipeline)
        }
        (None, Some(window)) => format!("max, {window} outstanding per socket"),
        (None, None) => config.mode.clone(),
    };
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        let _infallible = writeln!(out, "  {label:<16} {value}");
    };
    row(
        "run",
        format!("{} against {}, {pace}", config.workload, config.target),
    );
    let cpus = if config.cpus.is_empty() {
        "any".to_string()
    } else {
        format!("{:?}", config.cpus)
    };
    if config.connections > 0 {
        row(
            "shape",
            format!(
                "{} over {} connection(s), pipeline {}, {} worker(s), CPUs {cpus}",
                config.transport, config.connections, config.pipeline, config.workers,
            ),
        );
    } else {
        row(
            "shape",
            format!(
                "{} worker(s) x {} socket(s), batch {}, CPUs {cpus}",
                config.workers, config.sockets_per_worker, config.batch,
            ),
        );
    }
    row(
        "time",
        format!(
            "{:.3} s measured (+{} s warm-up), timeout {} ms",
            report.elapsed_s, config.warmup_s, config.timeout_ms
        ),
    );
    row(
        "queries",
        format!(
            "scheduled {}  sent {}  answered {}  lost {}  unsent {}",
            counts.scheduled, counts.sent, counts.answered, counts.lost, counts.unsent
        ),
    );
    row("loss", percent(report.loss));
    let mut rcodes: Vec<String> = report
        .rcodes
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    rcodes.push(format!("TC {}", counts.truncated));
    row("answers", rcodes.join("  "));
    row(
        "not matched",
        format!(
            "wrong ID {}  wrong question {}  malformed {}  late {}  duplicate {}",
            counts.wrong_id, counts.wrong_question, counts.malformed, counts.late, counts.duplicate
        ),
    );
    if config.connections > 0 {
        row(
            "errors",
            format!(
                "connection {}  HTTP {}",
                counts.connection_errors, counts.http_errors
            ),
        );
    }
    row(
        "rate",
        format!(
            "offered {:.0}/s  sent {:.0}/s  answered {:.0}/s",
            report.qps.offered, report.qps.sent, report.qps.answered
        ),
    );
    let latency = &report.latency_us;
    row(
        "latency (us)",
        format!(
            "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (mean {:.1}, {} samples)",
            latency.p50,
            latency.p90,
            latency.p99,
            latency.p99_9,
            latency.max,
            latency.mean,
            latency.samples
        ),
    );
    if let Some(max_loss) = config.max_loss {
        row(
            "verdict",
            format!(
                "{} (loss {} vs --max-loss {})",
                if report.passed { "PASS" } else { "FAIL" },
                percent(report.loss),
                percent(max_loss)
            ),
        );
    }
    for warning in &report.warnings {
        row("warning", warning.clone());
    }
    out
}

/// One table over several runs (one row each), as `just bench-server`
/// prints it. `labels` name the rows (the workload when missing).
pub fn render_summary(reports: &[(String, Report)]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "run",
        "mode",
        "answered/s",
        "loss",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "NOERROR",
        "NXDOMAIN",
        "SERVFAIL",
        "bad"
    );
    for (label, report) in reports {
        let latency = &report.latency_us;
        let _ = writeln!(
            out,
            "{:<14} {:<5} {:>10.0} {:>9} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>8} {:>8} {:>6}",
            label,
            report.config.mode,
            report.qps.answered,
            percent(report.loss),
            latency.p50,
            latency.p90,
            latency.p99,
            latency.p99_9,
            latency.max,
            report.rcode("NOERROR"),
            report.rcode("NXDOMAIN"),
            report.rcode("SERVFAIL"),
            report.counts.bad_responses()
        );
    }
    out
}

/// Escape text for SVG.
fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A rounded-up axis maximum: 1, 2 or 5 times a power of ten.
fn nice_max(value: f64) -> f64 {
    if !value.is_finite() || value <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|&candidate| candidate >= value)
        .unwrap_or(10.0 * power)
}

/// The label of an axis tick at `value` on an axis whose ticks are `step`
/// apart (1, 2 or 5 times a power of ten): as many decimals as the step
/// has, so 3 × 0.2 reads `0.6`, not `0.6000000000000001`.
fn tick_label(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize
    } else {
        0
    };
    let label = format!("{value:.decimals$}");
    // No "-0" for a value that rounds to zero from below.
    if label
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        format!("{:.decimals$}", 0.0)
    } else {
        label
    }
}

/// A chart of answered QPS (left axis) and p99 latency (right axis) per
/// second, with the warm-up shaded.
pub fn render_svg(report: &Report) -> String {
    const WIDTH: f64 = 900.0;
    const HEIGHT: f64 = 420.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 820.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 360.0;
    let series = &report.series;
    let end = series
        .iter()
        .map(|point| point.second as f64 + point.length_s)
        .fold(1.0f64, f64::max);
    let qps_max = nice_max(series.iter().map(|point| point.qps).fold(0.0, f64::max));
    let p99_max = nice_max(series.iter().map(|point| point.p99_us).fold(0.0, f64::max));
    let x = |seconds: f64| LEFT + (RIGHT - LEFT) * seconds / end;
    let y = |value: f64, max: f64| BOTTOM - (BOTTOM - TOP) * (value / max).min(1.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let warmup_end = x(report.config.warmup_s.min(end));
    if warmup_end > LEFT {
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#eeeeee"/><text x="{:.1}" y="{:.1}" fill="#888888">warm-up</text>"##,
            warmup_end - LEFT,
            BOTTOM - TOP,
            LEFT + 4.0,
            TOP + 14.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        xml(&format!(
            "{} against {} ({}): answered QPS and p99 latency per second",
            report.config.workload, report.config.target, report.config.mode
        ))
    );
    // Each tick is its index times the step (never a running sum, which
    // gathers float noise), labelled to the step's precision.
    for tick in 0..=5u32 {
        let fraction = f64::from(tick) / 5.0;
        let ty = BOTTOM - (BOTTOM - TOP) * fraction;
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{ty:.1}" x2="{RIGHT}" y2="{ty:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#1f5fbf">{}</text><text x="{:.1}" y="{:.1}" fill="#c0392b">{}</text>"##,
            LEFT - 6.0,
            ty + 4.0,
            tick_label(qps_max * fraction, qps_max / 5.0),
            RIGHT + 6.0,
            ty + 4.0,
            tick_label(p99_max * fraction, p99_max / 5.0)
        );
    }
    let step = nice_max(end / 10.0);
    let ticks = (end / step + 1e-9).floor() as u32;
    for index in 0..=ticks {
        let tick = f64::from(index) * step;
        let tx = x(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{tx:.1}" y1="{BOTTOM}" x2="{tx:.1}" y2="{:.1}" stroke="#888888"/><text x="{tx:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            BOTTOM + 5.0,
            BOTTOM + 18.0,
            tick_label(tick, step)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#444444"/>"##,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 36.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="18" y="{:.1}" fill="#1f5fbf" transform="rotate(-90 18 {:.1})" text-anchor="middle">answered per second</text>"##,
        (TOP + BOTTOM) / 2.0,
        (TOP + BOTTOM) / 2.0
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" fill="#c0392b" transform="rotate(90 {:.1} {:.1})" text-anchor="middle">p99 latency (us)</text>"##,
        WIDTH - 18.0,
        (TOP + BOTTOM) / 2.0,
        WIDTH - 18.0,
        (TOP + BOTTOM) / 2.0
    );
    let line = |value: &dyn Fn(&SeriesPoint) -> f64, max: f64| -> String {
        series
            .iter()
            .map(|point| {
                format!(
                    "{:.1},{:.1}",
                    x(point.second as f64 + point.length_s),
                    y(value(point), max)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f5fbf" stroke-width="2"/>"##,
        line(&|point| point.qps, qps_max)
    );
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#c0392b" stroke-width="2"/>"##,
        line(&|point| point.p99_us, p99_max)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{:.1}" fill="#1f5fbf">— answered QPS (run: {:.0}/s)</text><text x="{:.1}" y="{:.1}" fill="#c0392b">— p99 latency, us (run p99 {:.1})</text>"##,
        HEIGHT - 14.0,
        report.qps.answered,
        LEFT + 320.0,
        HEIGHT - 14.0,
        report.latency_us.p99
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_have_no_float_noise() {
        // 3 × 0.2 is 0.6000000000000001 in floating point.
        assert_eq!(tick_label(3.0 * 0.2, 0.2), "0.6");
        assert_eq!(tick_label(0.1 + 0.2, 0.1), "0.3");
        assert_eq!(tick_label(7.0 * 0.05, 0.05), "0.35");
        assert_eq!(tick_label(40.0, 20.0), "40");
        assert_eq!(tick_label(200_000.0 * 0.6, 40_000.0), "120000");
        assert_eq!(tick_label(0.0, 0.2), "0.0");
        assert_eq!(tick_label(-1e-17, 0.2), "0.0");
    }

    #[test]
    fn chart_labels_are_clean_for_a_short_run() {
        // 1.5 s: x ticks 0.2 s apart; a tiny p99 axis.
        let mut report = Report::default();
        for second in 0..2u64 {
            report.series.push(SeriesPoint {
                second,
                length_s: if second == 0 { 1.0 } else { 0.5 },
                qps: 3.0,
                p99_us: 0.4,
                ..SeriesPoint::default()
            });
        }
        let svg = render_svg(&report);
        let labels: Vec<&str> = svg
            .split("text-anchor=\"middle\">")
            .skip(1)
            .filter_map(|rest| rest.split('<').next())
            .filter(|label| label.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        assert_eq!(
            labels,
            ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4"]
        );
        assert!(!svg.contains("00000000"), "{svg}");
        assert!(svg.contains(">0.4</text>"), "the p99 axis top: {svg}");
    }

    #[test]
    fn progress_shows_elapsed_total_and_time_left() {
        let point = SeriesPoint {
            second: 11,
            qps: 1000.0,
            ..SeriesPoint::default()
        };
        let line = progress_line(&point, std::time::Duration::from_secs(75));
        assert!(line.starts_with("[0:12/1:15 ETA 1:03] "), "{line}");
        let last = SeriesPoint {
            second: 80,
            ..SeriesPoint::default()
        };
        let line = progress_line(&last, std::time::Duration::from_millis(75_500));
        assert!(line.starts_with("[1:21/1:16 ETA 0:00] "), "{line}");
        assert_eq!(clock(3725), "1:02:05");
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(120_000.0), 200_000.0);
        assert_eq!(nice_max(1000.0), 1000.0);
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(RCODE_SLOTS - 1), "RCODE23+");
    }
}
