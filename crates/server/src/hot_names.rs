//! Hot names under name steering: a name asked more often than
//! `server.steering_spread` queries per second is taken off its owner core
//! and spread over every core, so that one very popular name cannot load
//! one core while the others idle.
//!
//! Each core watches the queries it already samples for the top-queries
//! table (one in [`SAMPLE_EVERY`]): it counts their name hashes (the same
//! hash the steering program computes) in a small table for one
//! [`WINDOW`], then estimates each name's rate. A name at or above the
//! threshold joins the server-wide [`SpreadSet`] for [`HOLD`]; a spread
//! name that stays hot is renewed by any core (each sees its share, so
//! its estimate is scaled by the core count), one that cools down expires.
//! When the set changes, the core that changed it rebuilds the steering
//! program with the spread hashes and attaches it to its own listen
//! sockets, which replaces the program of each whole group. The kernel
//! then sends a spread name's queries to a random core.
//!
//! Cost: nothing on the unsampled queries; on a sampled one a hash of the
//! name and a look-up among [`SLOTS`] entries; once per window per busy
//! core, a lock of the shared set. A spread name is fetched once per core
//! (one upstream query per core per TTL instead of one) and cached on
//! each, which is the point. The set holds at most [`SPREAD_MAX`] names,
//! so an attacker who makes names hot gains no more than that many
//! replicated entries.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrayvec::ArrayVec;

use crate::steering;
use crate::top::SAMPLE_EVERY;

/// How long a core counts before it estimates rates.
pub(crate) const WINDOW: Duration = Duration::from_secs(1);
/// How long a name stays spread after it was last found hot.
pub(crate) const HOLD: Duration = Duration::from_secs(10);
/// Names spread at most (each adds one comparison to the program).
pub(crate) const SPREAD_MAX: usize = 16;
/// Name hashes a core counts per window (space-saving: a new hash takes
/// the place of the least counted one, so the hottest are kept).
const SLOTS: usize = 16;

/// The spread names of the whole server, shared by the cores.
#[derive(Debug)]
pub(crate) struct SpreadSet {
    basis: u32,
    cores: u32,
    /// Queries per second, all cores together, at which a name spreads.
    threshold: u64,
    names: Mutex<ArrayVec<Spread, SPREAD_MAX>>,
}

/// One spread name: its steering hash and when it expires.
#[derive(Debug, Clone, Copy)]
struct Spread {
    hash: u32,
    until: Instant,
}

/// What one core's review of its window did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Review {
    /// Names this core added to the set.
    pub(crate) added: u64,
    /// Names that expired (removed by this core).
    pub(crate) expired: u64,
    /// Hot names not added because the set was full.
    pub(crate) full: u64,
    /// Attaching failed (the old program stays).
    pub(crate) attach_errors: u64,
}

impl std::ops::AddAssign for Review {
    fn add_assign(&mut self, other: Review) {
        self.added += other.added;
        self.expired += other.expired;
        self.full += other.full;
        self.attach_errors += other.attach_errors;
    }
}

impl SpreadSet {
    /// The set for a server steering with `basis` over `cores` cores,
    /// spreading names asked `threshold` times a second or more.
    pub(crate) fn new(basis: u32, cores: u32, threshold: u64) -> Self {
        Self {
            basis,
            cores,
            threshold,
            names: Mutex::new(ArrayVec::new()),
        }
    }

    /// Whether names are spread at all (`server.steering_spread` above 0).
    pub(crate) fn spreads(&self) -> bool {
        self.threshold > 0
    }

    /// The core that owns the name in `query` (as the kernel program
    /// computes it for a name not spread).
    pub(crate) fn owner(&self, query: &[u8]) -> usize {
        (steering::name_hash(query, self.basis) % self.cores.max(1)) as usize
    }

    /// The steering program for the current set.
    fn program(&self, names: &[Spread]) -> Vec<heimdall_udp::reuseport::Instruction> {
        let hashes: ArrayVec<u32, SPREAD_MAX> = names.iter().map(|spread| spread.hash).collect();
        steering::program(self.basis, self.cores, &hashes)
    }

    /// The hashes spread now (for tests and the log).
    #[cfg(test)]
    pub(crate) fn hashes(&self) -> Vec<u32> {
        self.names
            .lock()
            .map(|names| names.iter().map(|spread| spread.hash).collect())
            .unwrap_or_default()
    }

    /// Fold one core's window (`(hash, estimated q/s)` pairs) into the set
    /// at `now`; when it changed, attach the new program through `fds`.
    fn review(&self, rates: &[(u32, u64)], now: Instant, fds: &[RawFd]) -> Review {
        let mut review = Review::default();
        // A poisoned lock means a core panicked while holding it: the
        // process is going down; keep serving with the program in place.
        let Ok(mut names) = self.names.lock() else {
            return review;
        };
        let before = names.len();
        names.retain(|spread| spread.until > now);
        review.expired = (before - names.len()) as u64;
        for &(hash, rate) in rates {
            let spread = names.iter_mut().find(|spread| spread.hash == hash);
            // A spread name reaches this core with 1/cores of its queries.
            let total = match spread {
                Some(_) => rate.saturating_mul(u64::from(self.cores)),
                None => rate,
            };
            if total < self.threshold {
                continue;
            }
            match spread {
                Some(spread) => spread.until = now + HOLD,
                None => {
                    if names
                        .try_push(Spread {
                            hash,
                            until: now + HOLD,
                        })
                        .is_ok()
                    {
                        review.added += 1;
                    } else {
                        review.full += 1;
                    }
                }
            }
        }
        if review.added > 0 || review.expired > 0 {
            let program = self.program(&names);
            for &fd in fds {
                if let Err(err) = heimdall_udp::reuseport::attach_reuseport_program(fd, &program) {
                    review.attach_errors += 1;
                    log::warn!("steering: cannot attach the program with hot names: {err}");
                }
            }
            log::debug!(
                "steering: {} hot names spread over every core (+{} -{})",
                names.len(),
                review.added,
                review.expired
            );
        }
        review
    }
}

/// One core's watch for hot names.
pub(crate) struct HotNames {
    set: Arc<SpreadSet>,
    /// The core's listen sockets, one per group: attaching through any
    /// member replaces the group's program.
    fds: Vec<RawFd>,
    window: RefCell<Window>,
}

/// The current window's counts.
struct Window {
    started: Instant,
    slots: ArrayVec<(u32, u64), SLOTS>,
    totals: Review,
}

impl HotNames {
    /// The watch of a core whose listen sockets are `fds`.
    pub(crate) fn new(set: Arc<SpreadSet>, fds: Vec<RawFd>, now: Instant) -> Self {
        Self {
            set,
            fds,
            window: RefCell::new(Window {
                started: now,
                slots: ArrayVec::new(),
                totals: Review::default(),
            }),
        }
    }

    /// Count a sampled client query; at the end of a window, review it.
    pub(crate) fn sampled(&self, query: &[u8]) {
        self.count(query, Instant::now());
    }

    fn count(&self, query: &[u8], now: Instant) {
        let Ok(mut window) = self.window.try_borrow_mut() else {
            return;
        };
        let hash = steering::name_hash(query, self.set.basis);
        if let Some(slot) = window.slots.iter_mut().find(|slot| slot.0 == hash) {
            slot.1 += 1;
        } else if window.slots.try_push((hash, 1)).is_err()
            && let Some(least) = window.slots.iter_mut().min_by_key(|slot| slot.1)
        {
            *least = (hash, least.1 + 1);
        }
        let elapsed = now.saturating_duration_since(window.started);
        if elapsed < WINDOW {
            return;
        }
        let millis = elapsed.as_millis().max(1) as u64;
        let rates: ArrayVec<(u32, u64), SLOTS> = window
            .slots
            .iter()
            .map(|&(hash, count)| {
                let queries = count.saturating_mul(u64::from(SAMPLE_EVERY));
                (hash, queries.saturating_mul(1000) / millis)
            })
            .collect();
        window.totals += self.set.review(&rates, now, &self.fds);
        window.slots.clear();
        window.started = now;
    }

    /// What this core's reviews did since the start.
    pub(crate) fn totals(&self) -> Review {
        self.window
            .try_borrow()
            .map(|window| window.totals)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn query(name: &str) -> Vec<u8> {
        let mut message = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            message.push(label.len() as u8);
            message.extend_from_slice(label.as_bytes());
        }
        message.extend_from_slice(&[0, 0, 1, 0, 1]);
        message
    }

    /// Feed `per_window` samples of `name` in each of `windows` windows.
    fn feed(hot: &HotNames, name: &str, per_window: u64, start: Instant, windows: u32) -> Instant {
        let q = query(name);
        let mut now = start;
        for _ in 0..windows {
            for _ in 0..per_window {
                hot.count(&q, now);
            }
            now += WINDOW;
            hot.count(&query("closing.sample"), now);
        }
        now
    }

    #[test]
    fn a_name_over_the_threshold_spreads_and_expires_when_it_cools() {
        let set = Arc::new(SpreadSet::new(7, 2, 6_400));
        let start = Instant::now();
        let hot = HotNames::new(Arc::clone(&set), Vec::new(), start);
        // 99 samples a second = 6,336 q/s: under the threshold.
        let now = feed(&hot, "warm.example", 99, start, 1);
        assert!(set.hashes().is_empty());
        // 101 samples = 6,464 q/s: spread.
        let now = feed(&hot, "hot.example", 101, now, 1);
        let hash = steering::name_hash(&query("hot.example"), 7);
        assert_eq!(set.hashes(), vec![hash]);
        // Spread, the core sees half: 51 samples x 2 cores renews it,
        // window after window, past the hold.
        let now = feed(&hot, "hot.example", 51, now, 12);
        assert_eq!(set.hashes(), vec![hash]);
        // Cold for longer than the hold: gone.
        feed(&hot, "other.example", 1, now, 11);
        assert!(set.hashes().is_empty());
        let totals = hot.totals();
        assert_eq!((totals.added, totals.expired), (1, 1));
    }

    #[test]
    fn the_set_is_bounded() {
        let set = Arc::new(SpreadSet::new(7, 2, 64));
        let start = Instant::now();
        let hot = HotNames::new(Arc::clone(&set), Vec::new(), start);
        // Two windows of 16 new hot names each (128 q/s apiece).
        let mut now = start;
        for window in 0..2 {
            for n in 0..16 {
                let q = query(&format!("n{window}-{n}.example"));
                hot.count(&q, now);
                hot.count(&q, now);
            }
            now += WINDOW;
            hot.count(&query("closing.sample"), now);
        }
        assert_eq!(set.hashes().len(), SPREAD_MAX);
        assert_eq!(hot.totals().added, SPREAD_MAX as u64);
        assert!(hot.totals().full >= 15, "{:?}", hot.totals());
    }
}
