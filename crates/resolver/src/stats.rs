//! Fixed-size tallies for the metrics endpoint: [`QtypeTally`] (client
//! queries by type), [`LatencyHistogram`] (upstream reply times) and the
//! rcode indexing of [`ResolverStats::responses_by_rcode`].
//!
//! Every type here is `Copy` and never allocates: the server copies each
//! core's counters into a snapshot and sums them with `merge`, and the
//! query path only increments an array slot.
//!
//! [`ResolverStats::responses_by_rcode`]: crate::ResolverStats::responses_by_rcode

use core::fmt;

/// Slots of [`ResolverStats::responses_by_rcode`](crate::ResolverStats::responses_by_rcode):
/// one per rcode 0 to 22 (everything IANA assigns below BADCOOKIE's 23,
/// extended rcodes included), and the last for every rcode of 23 or more.
pub const RCODE_SLOTS: usize = 24;

/// The slot of `rcode` in a responses-by-rcode array: the rcode itself
/// below 23, else the shared overflow slot 23.
pub fn rcode_slot(rcode: u16) -> usize {
    usize::from(rcode).min(RCODE_SLOTS - 1)
}

/// Client queries counted by qtype. Codes 0 to 255 (every common type)
/// have a slot each; all codes above 255 (URI, CAA, AVC, TA, DLV, private
/// use) share one overflow slot, so the tally stays small and `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QtypeTally {
    /// Slots 0..=255 by code; slot 256 for every code above 255.
    counts: [u64; 257],
}

impl fmt::Debug for QtypeTally {
    /// Only the types seen, so a failed test's output stays readable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter())
            .entry(&"overflow", &self.overflow())
            .finish()
    }
}

impl Default for QtypeTally {
    fn default() -> Self {
        Self { counts: [0; 257] }
    }
}

impl QtypeTally {
    /// The index of the overflow slot.
    const OVERFLOW: usize = 256;

    fn slot(code: u16) -> usize {
        usize::from(code).min(Self::OVERFLOW)
    }

    /// Count one query of type `code`.
    pub fn record(&mut self, code: u16) {
        if let Some(count) = self.counts.get_mut(Self::slot(code)) {
            *count = count.saturating_add(1);
        }
    }

    /// Queries of type `code`; for a code above 255, the count of all
    /// codes above 255 together.
    pub fn get(&self, code: u16) -> u64 {
        self.counts.get(Self::slot(code)).copied().unwrap_or(0)
    }

    /// Queries of all types above 255 together.
    pub fn overflow(&self) -> u64 {
        self.counts.get(Self::OVERFLOW).copied().unwrap_or(0)
    }

    /// `(code, count)` for every type 0 to 255 seen at least once, in
    /// code order. The overflow slot is not included: see
    /// [`QtypeTally::overflow`].
    pub fn iter(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        (0u16..)
            .zip(self.counts.iter().take(Self::OVERFLOW))
            .filter(|(_, count)| **count > 0)
            .map(|(code, count)| (code, *count))
    }

    /// Queries counted in total.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |sum, count| sum.saturating_add(*count))
    }

    /// Add `other`'s counts (to sum the cores).
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// Upper bounds, in microseconds, of the finite buckets of
/// [`LatencyHistogram`] (inclusive, as Prometheus `le`).
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000,
];

/// A histogram of upstream reply times with fixed buckets
/// ([`LATENCY_BOUNDS_US`] and +Inf), their sum and count: what a
/// Prometheus histogram needs, in a small `Copy` value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Non-cumulative counts: bucket i holds samples above bound i-1 and
    /// at most bound i; the last holds those above every bound.
    counts: [u64; 13],
    sum_us: u64,
    count: u64,
}

impl LatencyHistogram {
    /// Count one sample of `us` microseconds.
    pub fn record(&mut self, us: u64) {
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        if let Some(count) = self.counts.get_mut(bucket) {
            *count = count.saturating_add(1);
        }
        self.sum_us = self.sum_us.saturating_add(us);
        self.count = self.count.saturating_add(1);
    }

    /// `(upper bound in microseconds, samples in this bucket)` for each
    /// bucket in order; the bound is `None` for the last (+Inf). Counts
    /// are per bucket, not cumulative: a Prometheus exporter sums them.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        LATENCY_BOUNDS_US
            .iter()
            .map(|&bound| Some(bound))
            .chain([None])
            .zip(self.counts.iter().copied())
    }

    /// Sum of all samples, in microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Add `other`'s samples (to sum the cores).
    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine = mine.saturating_add(*theirs);
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.count = self.count.saturating_add(other.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qtypes_by_code_with_one_overflow_slot() {
        let mut tally = QtypeTally::default();
        for code in [1, 1, 28, 255, 256, 257, 65_535] {
            tally.record(code);
        }
        assert_eq!((tally.get(1), tally.get(28), tally.get(255)), (2, 1, 1));
        assert_eq!(tally.get(2), 0);
        assert_eq!(tally.overflow(), 3);
        assert_eq!(tally.get(256), 3, "codes above 255 share a slot");
        assert_eq!(tally.get(65_535), 3);
        let seen: Vec<_> = tally.iter().collect();
        assert_eq!(seen, [(1, 2), (28, 1), (255, 1)]);
        assert_eq!(tally.total(), 7);
        let mut sum = tally;
        sum.merge(&tally);
        assert_eq!((sum.get(1), sum.overflow(), sum.total()), (4, 6, 14));
    }

    #[test]
    fn rcode_slots() {
        assert_eq!(rcode_slot(0), 0);
        assert_eq!(rcode_slot(16), 16);
        assert_eq!(rcode_slot(22), 22);
        assert_eq!(rcode_slot(23), 23);
        assert_eq!(rcode_slot(4095), 23);
    }

    #[test]
    fn latency_buckets_are_inclusive_upper_bounds() {
        let mut histogram = LatencyHistogram::default();
        for us in [0, 500, 501, 1_000, 2_500_000, 2_500_001, u64::MAX / 2] {
            histogram.record(us);
        }
        let buckets: Vec<_> = histogram.buckets().collect();
        assert_eq!(buckets.len(), 13);
        assert_eq!(buckets[0], (Some(500), 2));
        assert_eq!(buckets[1], (Some(1_000), 2));
        assert_eq!(buckets[2], (Some(2_500), 0));
        assert_eq!(buckets[11], (Some(2_500_000), 1));
        assert_eq!(buckets[12], (None, 2));
        assert_eq!(histogram.count(), 7);
        assert_eq!(
            histogram.sum_us(),
            500 + 501 + 1_000 + 2_500_000 + 2_500_001 + u64::MAX / 2
        );
        let mut sum = LatencyHistogram::default();
        sum.merge(&histogram);
        sum.merge(&histogram);
        assert_eq!(sum.count(), 14);
        assert_eq!(sum.buckets().next(), Some((Some(500), 4)));
    }
}
