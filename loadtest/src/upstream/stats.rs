//! Counters: one set per serving thread (plus one for all TCP
//! connections), summed when asked.
//!
//! Per-thread sets keep the threads from writing to the same cache lines on
//! every query. Per-name counts are test support: they sit behind a mutex
//! that only its own thread and the occasional reader take, and the number
//! of distinct names is capped so a load test over millions of names cannot
//! grow memory without bound.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use heimdall_wire::RecordType;

/// Distinct names remembered per counter set; later new names are not
/// counted by name (they still count everywhere else).
pub const MAX_TRACKED_NAMES: usize = 65_536;

/// A snapshot of the upstream's counters.
///
/// Once the upstream is quiet (or stopped), `received == answered +
/// dropped`; while replies wait out a delay, the difference is
/// [`UpstreamStats::in_flight`]. Replies still waiting when the upstream
/// stops count as dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamStats {
    /// Messages received (UDP datagrams and TCP messages).
    pub received: u64,
    /// Queries answered: a reply was handed to the kernel (a spoofed reply
    /// and the right one that follows count once).
    pub answered: u64,
    /// Messages never answered: behaviour `Drop`, random loss, unreadable
    /// or response packets, overflow of the delay queue, send failures.
    pub dropped: u64,
    /// Answers sent with TC set.
    pub truncated: u64,
    /// Of `received`, the messages that came over TCP.
    pub tcp_received: u64,
    /// Parsed queries by question type.
    pub by_qtype: BTreeMap<RecordType, u64>,
    /// `received` of each UDP thread, in thread order.
    pub per_thread_received: Vec<u64>,
}

impl UpstreamStats {
    /// Queries received for `qtype`.
    pub fn qtype(&self, qtype: RecordType) -> u64 {
        self.by_qtype.get(&qtype).copied().unwrap_or(0)
    }

    /// Received but neither answered nor dropped yet.
    pub fn in_flight(&self) -> u64 {
        self.received
            .saturating_sub(self.answered)
            .saturating_sub(self.dropped)
    }
}

impl fmt::Display for UpstreamStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "received   {}", self.received)?;
        writeln!(f, "answered   {}", self.answered)?;
        writeln!(f, "dropped    {}", self.dropped)?;
        writeln!(f, "truncated  {}", self.truncated)?;
        writeln!(f, "tcp        {}", self.tcp_received)?;
        let threads: Vec<String> = self
            .per_thread_received
            .iter()
            .map(u64::to_string)
            .collect();
        writeln!(f, "per thread {}", threads.join(" "))?;
        let qtypes: Vec<String> = self
            .by_qtype
            .iter()
            .map(|(qtype, count)| format!("{qtype}={count}"))
            .collect();
        write!(f, "by qtype   {}", qtypes.join(" "))
    }
}

#[derive(Default)]
struct Tracked {
    names: HashMap<Box<[u8]>, u64>,
    rare_qtypes: HashMap<u16, u64>,
}

/// The counters of one thread (or of all TCP connections). Aligned so two
/// threads' hot counters never share a cache line.
#[repr(align(128))]
pub(crate) struct Counters {
    received: AtomicU64,
    answered: AtomicU64,
    dropped: AtomicU64,
    truncated: AtomicU64,
    qtypes: [AtomicU64; 256],
    tracked: Mutex<Tracked>,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            received: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            truncated: AtomicU64::new(0),
            qtypes: std::array::from_fn(|_| AtomicU64::new(0)),
            tracked: Mutex::new(Tracked::default()),
        }
    }

    pub(crate) fn received(&self) {
        bump(&self.received);
    }

    pub(crate) fn dropped(&self) {
        bump(&self.dropped);
    }

    pub(crate) fn answered(&self, truncated: bool) {
        if truncated {
            bump(&self.truncated);
        }
        bump(&self.answered);
    }

    /// Undo [`Counters::answered`] for a reply the kernel refused. Answers
    /// are counted before they are sent, so that a client holding a reply
    /// never reads counters that do not include it yet.
    pub(crate) fn unanswered(&self, truncated: bool) {
        bump(&self.dropped);
        if truncated {
            self.truncated.fetch_sub(1, Ordering::Relaxed);
        }
        self.answered.fetch_sub(1, Ordering::Relaxed);
    }

    /// Count a parsed query by type and by lower-cased wire name.
    pub(crate) fn query(&self, lower_name: &[u8], qtype: RecordType) {
        let common = self.qtypes.get(usize::from(qtype.0));
        if let Some(counter) = common {
            bump(counter);
        }
        let Ok(mut tracked) = self.tracked.lock() else {
            return;
        };
        if common.is_none() {
            *tracked.rare_qtypes.entry(qtype.0).or_insert(0) += 1;
        }
        if let Some(count) = tracked.names.get_mut(lower_name) {
            *count += 1;
        } else if tracked.names.len() < MAX_TRACKED_NAMES {
            tracked.names.insert(lower_name.into(), 1);
        }
    }

    /// Queries seen for a lower-cased wire name.
    pub(crate) fn queries_for(&self, lower_name: &[u8]) -> u64 {
        self.tracked
            .lock()
            .map(|tracked| tracked.names.get(lower_name).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Add this set into `stats`; returns this set's `received`.
    pub(crate) fn add_to(&self, stats: &mut UpstreamStats) -> u64 {
        // Outcomes are read before `received`, which is always counted
        // first, so a snapshot taken under load never shows more outcomes
        // than messages.
        let dropped = self.dropped.load(Ordering::Relaxed);
        let answered = self.answered.load(Ordering::Relaxed);
        let truncated = self.truncated.load(Ordering::Relaxed);
        let received = self.received.load(Ordering::Relaxed);
        stats.dropped += dropped;
        stats.answered += answered;
        stats.truncated += truncated;
        stats.received += received;
        for (qtype, counter) in (0u16..).zip(self.qtypes.iter()) {
            let count = counter.load(Ordering::Relaxed);
            if count > 0 {
                *stats.by_qtype.entry(RecordType(qtype)).or_insert(0) += count;
            }
        }
        if let Ok(tracked) = self.tracked.lock() {
            for (&qtype, &count) in &tracked.rare_qtypes {
                *stats.by_qtype.entry(RecordType(qtype)).or_insert(0) += count;
            }
        }
        received
    }

    pub(crate) fn reset(&self) {
        for counter in [
            &self.received,
            &self.answered,
            &self.dropped,
            &self.truncated,
        ]
        .into_iter()
        .chain(self.qtypes.iter())
        {
            counter.store(0, Ordering::Relaxed);
        }
        if let Ok(mut tracked) = self.tracked.lock() {
            tracked.names.clear();
            tracked.rare_qtypes.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_reset() {
        let counters = Counters::new();
        counters.received();
        counters.received();
        counters.answered(true);
        counters.dropped();
        counters.query(b"\x01a\x00", RecordType::A);
        counters.query(b"\x01a\x00", RecordType::CAA);
        let mut stats = UpstreamStats::default();
        assert_eq!(counters.add_to(&mut stats), 2);
        assert_eq!((stats.received, stats.answered, stats.dropped), (2, 1, 1));
        assert_eq!(stats.truncated, 1);
        assert_eq!(stats.qtype(RecordType::A), 1);
        assert_eq!(stats.qtype(RecordType::CAA), 1);
        assert_eq!(stats.in_flight(), 0);
        assert_eq!(counters.queries_for(b"\x01a\x00"), 2);
        counters.reset();
        let mut stats = UpstreamStats::default();
        counters.add_to(&mut stats);
        assert_eq!(stats, UpstreamStats::default());
        assert_eq!(counters.queries_for(b"\x01a\x00"), 0);
    }
}
