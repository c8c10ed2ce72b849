//! heimdall-histogram: the one latency histogram of heimdall. The resolver
//! records upstream reply times and client answer times into it on the
//! query path; the control crate renders it as a Prometheus histogram and
//! in JSON. One type, one
//! set of bucket bounds, so nothing has to keep two arrays in step.
//!
//! It is a small `Copy` value with fixed buckets: recording is a short
//! scan of 15 bounds and two saturating adds, with no allocation, so it
//! fits the per-reply path; summing the cores is [`LatencyHistogram::merge`].

/// Upper bounds, in microseconds, of the finite buckets (inclusive, as
/// Prometheus `le`); the last, implicit bucket is `+Inf`. Rendered in
/// seconds (0.00005 .. 2.5): from a cache hit answered within a receive
/// batch, through a loopback upstream reply, to a timeout.
pub const LATENCY_BOUNDS_US: [u64; 15] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// Buckets in all: one per bound and `+Inf`.
const BUCKETS: usize = LATENCY_BOUNDS_US.len() + 1;

/// A latency histogram with the fixed [`LATENCY_BOUNDS_US`] buckets, their
/// sum and count: what a Prometheus histogram needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// Observations per bucket, not cumulative: bucket i holds samples
    /// above bound i-1 and at most bound i; the last holds those above
    /// every bound.
    counts: [u64; BUCKETS],
    /// Sum of all observations, microseconds.
    sum_us: u64,
}

impl LatencyHistogram {
    /// Record one observation of `us` microseconds.
    pub fn observe_us(&mut self, us: u64) {
        self.observe_many_us(us, 1);
    }

    /// Record `n` observations of `us` microseconds each (the replies of
    /// one batch, timed together).
    pub fn observe_many_us(&mut self, us: u64, n: u64) {
        let index = LATENCY_BOUNDS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        if let Some(slot) = self.counts.get_mut(index) {
            *slot = slot.saturating_add(n);
        }
        self.sum_us = self.sum_us.saturating_add(us.saturating_mul(n));
    }

    /// `(upper bound in microseconds, samples in this bucket)` for each
    /// bucket in order; the bound is `None` for the last (+Inf). Counts
    /// are per bucket, not cumulative.
    pub fn buckets(&self) -> impl Iterator<Item = (Option<u64>, u64)> + '_ {
        LATENCY_BOUNDS_US
            .iter()
            .map(|&bound| Some(bound))
            .chain([None])
            .zip(self.counts.iter().copied())
    }

    /// Cumulative counts, one per bound in [`LATENCY_BOUNDS_US`] and then
    /// `+Inf` (equal to [`count`](Self::count)), as Prometheus wants them.
    pub fn cumulative(&self) -> [u64; BUCKETS] {
        let mut out = [0u64; BUCKETS];
        let mut running = 0u64;
        for (slot, &n) in out.iter_mut().zip(self.counts.iter()) {
            running = running.saturating_add(n);
            *slot = running;
        }
        out
    }

    /// Observations in total.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |acc, &n| acc.saturating_add(n))
    }

    /// Sum of all observations, microseconds.
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// Add `count` observations to the bucket with upper bound `bound_us`
    /// (`None` is +Inf). A bound that is not one of [`LATENCY_BOUNDS_US`]
    /// counts in the next larger bucket. With [`add_sum_us`]
    /// (Self::add_sum_us), for a histogram kept elsewhere with other
    /// bounds.
    pub fn add_bucket(&mut self, bound_us: Option<u64>, count: u64) {
        let index = bound_us
            .and_then(|bound| LATENCY_BOUNDS_US.iter().position(|&b| bound <= b))
            .unwrap_or(LATENCY_BOUNDS_US.len());
        if let Some(slot) = self.counts.get_mut(index) {
            *slot = slot.saturating_add(count);
        }
    }

    /// Add to the sum of observed latencies, in microseconds.
    pub fn add_sum_us(&mut self, sum_us: u64) {
        self.sum_us = self.sum_us.saturating_add(sum_us);
    }

    /// Add another histogram's observations (to sum the cores).
    pub fn merge(&mut self, other: &Self) {
        for (slot, &n) in self.counts.iter_mut().zip(other.counts.iter()) {
            *slot = slot.saturating_add(n);
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn many_observations_at_once_are_as_many_single_ones() {
        let mut once = LatencyHistogram::default();
        once.observe_many_us(700, 3);
        let mut single = LatencyHistogram::default();
        for _ in 0..3 {
            single.observe_us(700);
        }
        assert_eq!(once, single);
        assert_eq!((once.count(), once.sum_us()), (3, 2_100));
    }

    #[test]
    fn bounds_are_inclusive_and_the_last_bucket_is_infinite() {
        let mut histogram = LatencyHistogram::default();
        for us in [0, 500, 501, 2_500_000, 2_500_001, u64::MAX] {
            histogram.observe_us(us);
        }
        let counts: Vec<_> = histogram.buckets().map(|(_, n)| n).collect();
        assert_eq!(counts[0], 1, "0 us");
        assert_eq!(counts[3], 1, "500 us");
        assert_eq!(counts[4], 1, "501 us");
        assert_eq!(counts[14], 1);
        assert_eq!(counts[15], 2);
        assert_eq!(histogram.count(), 6);
        assert_eq!(histogram.sum_us(), u64::MAX, "the sum saturates");
        assert_eq!(histogram.cumulative()[15], 6);
    }

    #[test]
    fn merge_adds_counts_and_sums() {
        let mut a = LatencyHistogram::default();
        let mut b = LatencyHistogram::default();
        a.observe_us(700);
        b.observe_us(700);
        b.observe_us(30_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.sum_us(), 31_400);
        assert_eq!(a.cumulative()[4], 2, "le 1 ms");
    }

    #[test]
    fn latency_buckets_are_inclusive_upper_bounds() {
        let mut histogram = LatencyHistogram::default();
        for us in [0, 500, 501, 1_000, 2_500_000, 2_500_001, u64::MAX / 2] {
            histogram.observe_us(us);
        }
        let buckets: Vec<_> = histogram.buckets().collect();
        assert_eq!(buckets.len(), 16);
        assert_eq!(buckets[0], (Some(50), 1));
        assert_eq!(buckets[3], (Some(500), 1));
        assert_eq!(buckets[4], (Some(1_000), 2));
        assert_eq!(buckets[5], (Some(2_500), 0));
        assert_eq!(buckets[14], (Some(2_500_000), 1));
        assert_eq!(buckets[15], (None, 2));
        assert_eq!(histogram.count(), 7);
        assert_eq!(
            histogram.sum_us(),
            500 + 501 + 1_000 + 2_500_000 + 2_500_001 + u64::MAX / 2
        );
        let mut sum = LatencyHistogram::default();
        sum.merge(&histogram);
        sum.merge(&histogram);
        assert_eq!(sum.count(), 14);
        assert_eq!(sum.buckets().next(), Some((Some(50), 2)));
    }
}
