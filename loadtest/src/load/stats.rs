//! Counters and latency histograms, kept per worker and merged.

use hdrhistogram::Histogram;
use heimdall_wire::Rcode;
use serde::{Deserialize, Serialize};

/// Rcodes counted one by one (0 to 23); higher ones share the last slot.
pub const RCODE_SLOTS: usize = 24;
/// Longest latency the histograms hold, in nanoseconds (2 minutes); longer
/// ones are recorded as this.
pub const HISTOGRAM_MAX_NS: u64 = 120_000_000_000;
/// Sends more than this behind their scheduled time count as
/// `behind_schedule`: the generator, not the server, was late.
pub const BEHIND_SCHEDULE_NS: u64 = 1_000_000;

/// Event counts. Invariants, once a run is over: `scheduled = sent +
/// unsent` and `sent = answered + lost`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Queries the schedule (open loop) or the window (max) called for.
    pub scheduled: u64,
    /// Queries handed to the kernel.
    pub sent: u64,
    /// Queries not sent: no free ID on the socket (too many outstanding)
    /// or the kernel refused them.
    pub unsent: u64,
    /// Queries answered in time by a response with their ID and question
    /// (any rcode).
    pub answered: u64,
    /// Queries not answered within the timeout.
    pub lost: u64,
    /// Responses to queries that had already timed out (their queries are
    /// in `lost`).
    pub late: u64,
    /// Second and later responses to an answered query.
    pub duplicate: u64,
    /// Responses whose ID matches no query sent from the socket.
    pub wrong_id: u64,
    /// Responses whose ID is outstanding but whose question differs.
    pub wrong_question: u64,
    /// Datagrams that are not a valid DNS response.
    pub malformed: u64,
    /// Answered queries whose answer had TC set.
    pub truncated: u64,
    /// Queries sent more than 1 ms after their scheduled time (open loop):
    /// the generator fell behind; their latency includes that lag.
    pub behind_schedule: u64,
    /// Errors the kernel reported on receive, such as ICMP port
    /// unreachable (nothing listens on the target).
    pub refused: u64,
    /// Stream transports: connections that could not be opened, or failed
    /// or were closed by the server during the run (their outstanding
    /// queries are in `lost`).
    #[serde(default)]
    pub connection_errors: u64,
    /// DNS over HTTPS: requests answered with an HTTP status other than
    /// 200, or reset (their queries are in `lost`).
    #[serde(default)]
    pub http_errors: u64,
    /// Answered queries by rcode (index = rcode; the last slot holds every
    /// rcode from 23 up).
    #[serde(skip)]
    pub rcodes: [u64; RCODE_SLOTS],
}

impl Counts {
    /// Add `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.scheduled += other.scheduled;
        self.sent += other.sent;
        self.unsent += other.unsent;
        self.answered += other.answered;
        self.lost += other.lost;
        self.late += other.late;
        self.duplicate += other.duplicate;
        self.wrong_id += other.wrong_id;
        self.wrong_question += other.wrong_question;
        self.malformed += other.malformed;
        self.truncated += other.truncated;
        self.behind_schedule += other.behind_schedule;
        self.refused += other.refused;
        self.connection_errors += other.connection_errors;
        self.http_errors += other.http_errors;
        for (mine, theirs) in self.rcodes.iter_mut().zip(other.rcodes.iter()) {
            *mine += theirs;
        }
    }

    /// Count one answer's rcode.
    pub fn rcode(&mut self, rcode: Rcode) {
        let index = usize::from(rcode.0).min(RCODE_SLOTS - 1);
        if let Some(count) = self.rcodes.get_mut(index) {
            *count += 1;
        }
    }

    /// Answers with `rcode` (for 23 and up: all of them together).
    pub fn rcode_count(&self, rcode: Rcode) -> u64 {
        let index = usize::from(rcode.0).min(RCODE_SLOTS - 1);
        self.rcodes.get(index).copied().unwrap_or(0)
    }

    /// Responses that were not a valid answer to an outstanding query.
    pub fn bad_responses(&self) -> u64 {
        self.wrong_id + self.wrong_question + self.malformed
    }

    /// The fraction of scheduled queries that got no answer in time (sent
    /// and lost, or never sent).
    pub fn loss(&self) -> f64 {
        if self.scheduled == 0 {
            return 0.0;
        }
        (self.lost + self.unsent) as f64 / self.scheduled as f64
    }
}

/// A latency histogram in nanoseconds (3 significant digits, from 1 µs to
/// [`HISTOGRAM_MAX_NS`]).
pub fn new_histogram() -> std::io::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1_000, HISTOGRAM_MAX_NS, 3)
        .map_err(|err| std::io::Error::other(format!("cannot make a histogram: {err}")))
}

/// Percentile summary of a histogram, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Latencies recorded.
    pub samples: u64,
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest.
    pub max: f64,
}

fn micros(nanos: u64) -> f64 {
    (nanos as f64 / 1000.0 * 10.0).round() / 10.0
}

impl Latency {
    /// Summarise `histogram` (nanoseconds) in microseconds, to 0.1 µs.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            samples: histogram.len(),
            min: micros(histogram.min()),
            mean: (histogram.mean() / 100.0).round() / 10.0,
            p50: micros(histogram.value_at_quantile(0.5)),
            p90: micros(histogram.value_at_quantile(0.9)),
            p99: micros(histogram.value_at_quantile(0.99)),
            p99_9: micros(histogram.value_at_quantile(0.999)),
            max: micros(histogram.max()),
        }
    }
}

/// One worker's events of one second (or of the last, partial one).
#[derive(Debug, Clone)]
pub(crate) struct Interval {
    /// Which second of the run (0-based, from the start of the warm-up).
    pub(crate) second: u64,
    /// How long the interval lasted, in nanoseconds (1 s but for the last).
    pub(crate) length_ns: u64,
    pub(crate) counts: Counts,
    pub(crate) histogram: Histogram<u64>,
    /// Queries outstanding at the end of the interval.
    pub(crate) outstanding: u64,
}

/// One worker's result.
#[derive(Debug, Clone)]
pub(crate) struct WorkerTotals {
    /// Events that count (queries scheduled after the warm-up).
    pub(crate) counts: Counts,
    pub(crate) histogram: Histogram<u64>,
    /// When the worker stopped sending, in ns from the start.
    pub(crate) send_end_ns: u64,
    /// `cold` queries produced (to warn when the zone was exhausted).
    pub(crate) cold_issued: u64,
    /// Stream transports: the first connection error, for the warnings.
    pub(crate) first_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_and_loss() {
        let mut a = Counts {
            scheduled: 10,
            sent: 9,
            unsent: 1,
            answered: 8,
            lost: 1,
            ..Counts::default()
        };
        a.rcode(Rcode::NXDOMAIN);
        a.rcode(Rcode(4000));
        let b = a.clone();
        a.add(&b);
        assert_eq!(a.scheduled, 20);
        assert_eq!(a.rcode_count(Rcode::NXDOMAIN), 2);
        assert_eq!(a.rcode_count(Rcode(23)), 2);
        assert!((a.loss() - 0.2).abs() < 1e-9);
        assert_eq!(Counts::default().loss(), 0.0);
    }

    #[test]
    fn latency_is_summarised_in_micros() {
        let mut histogram = new_histogram().unwrap();
        for micros in 1..=1000u64 {
            histogram.record(micros * 1000).unwrap();
        }
        let latency = Latency::from_histogram(&histogram);
        assert_eq!(latency.samples, 1000);
        assert!((latency.p50 - 500.0).abs() <= 1.0, "{latency:?}");
        assert!((latency.p99 - 990.0).abs() <= 1.0, "{latency:?}");
        assert!((latency.max - 1000.0).abs() <= 1.0, "{latency:?}");
        assert_eq!(
            Latency::from_histogram(&new_histogram().unwrap()),
            Latency::default()
        );
    }
}
