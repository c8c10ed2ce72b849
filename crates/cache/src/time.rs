//! Time as the cache sees it: a [`Timestamp`] handed in by the caller.
//!
//! The cache never reads a clock. The server picks one monotonic epoch
//! for the whole process and passes milliseconds since it; because every
//! core uses the same epoch, an entry's `stored_at` and `expires_at` keep
//! their meaning when the entry travels to another core as a cache-fill
//! hint. Milliseconds (not seconds) so that expiry is exact to the
//! millisecond while TTL arithmetic stays in whole seconds, as DNS wants.

use core::fmt;

/// Milliseconds since an arbitrary monotonic epoch chosen by the server.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The epoch itself.
    pub const ZERO: Self = Self(0);

    /// A timestamp `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// A timestamp `secs` whole seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Self(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// This timestamp plus `secs` seconds; saturates instead of wrapping so
    /// a huge TTL means "far future", never "the past".
    pub const fn add_secs(self, secs: u32) -> Self {
        Self(self.0.saturating_add((secs as u64) * 1000))
    }

    /// This timestamp plus `millis` milliseconds (saturating).
    pub const fn add_millis(self, millis: u64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Whole seconds from `earlier` to `self`, rounded down; 0 when
    /// `earlier` is later (clocks of two cores may be read a moment apart),
    /// and capped at `u32::MAX` because TTLs are 32-bit.
    pub const fn secs_since(self, earlier: Self) -> u32 {
        let secs = self.0.saturating_sub(earlier.0) / 1000;
        if secs > u32::MAX as u64 {
            u32::MAX
        } else {
            secs as u32
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_and_saturate() {
        let start = Timestamp::from_millis(10_500);
        assert_eq!(start.add_secs(3), Timestamp::from_millis(13_500));
        assert_eq!(start.add_millis(2_999).secs_since(start), 2);
        assert_eq!(start.add_millis(3_000).secs_since(start), 3);
        assert_eq!(start.secs_since(start.add_secs(5)), 0);
        assert_eq!(
            Timestamp::from_millis(u64::MAX).add_secs(1).as_millis(),
            u64::MAX
        );
        assert_eq!(
            Timestamp::from_millis(u64::MAX).secs_since(Timestamp::ZERO),
            u32::MAX
        );
        assert_eq!(Timestamp::from_secs(2), Timestamp::from_millis(2_000));
        assert_eq!(format!("{:?}", Timestamp::from_millis(1_042)), "1.042s");
    }
}
