//! [`Deadlines`]: the DoQ connections' next timeouts in deadline order, so
//! a timer wake looks only at the connections that are due rather than at
//! every connection of the core.
//!
//! Entries are never removed in place (a binary heap cannot): a
//! connection whose deadline moves gets a new entry with a new
//! generation, and the old one is skipped when it comes to the top
//! (lazy deletion). The caller says which `(key, generation)` pairs are
//! still live. So that stale entries cannot pile up, the heap is rebuilt
//! from the live deadlines once it holds more than [`SLACK`] times as many
//! entries as there are connections.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// How many entries per live connection the heap may hold before it is
/// rebuilt (plus [`FLOOR`], so a handful of connections do not rebuild
/// all the time).
pub(super) const SLACK: usize = 4;
/// Entries the heap may always hold.
pub(super) const FLOOR: usize = 64;

/// Deadlines of keys `K`, earliest first, each with the generation it was
/// scheduled under.
pub(super) struct Deadlines<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K, u64)>>,
}

impl<K: Ord + Copy> Deadlines<K> {
    pub(super) fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
        }
    }

    /// `key` is due at `at`, as of `generation` (which supersedes its
    /// earlier entries).
    pub(super) fn schedule(&mut self, at: Instant, key: K, generation: u64) {
        self.heap.push(Reverse((at, key, generation)));
    }

    /// The earliest live deadline; stale entries on top are dropped.
    pub(super) fn earliest(&mut self, live: impl Fn(K, u64) -> bool) -> Option<Instant> {
        while let Some(Reverse((at, key, generation))) = self.heap.peek() {
            if live(*key, *generation) {
                return Some(*at);
            }
            self.heap.pop();
        }
        None
    }

    /// Take the next live entry due at `now` or before, and give its key.
    /// Stale entries met on the way are dropped.
    pub(super) fn pop_due(&mut self, now: Instant, live: impl Fn(K, u64) -> bool) -> Option<K> {
        while let Some(Reverse((at, key, generation))) = self.heap.peek() {
            if *at > now {
                return None;
            }
            let (key, generation) = (*key, *generation);
            self.heap.pop();
            if live(key, generation) {
                return Some(key);
            }
        }
        None
    }

    /// Entries held, stale ones included.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether the heap holds too many entries for `live` connections.
    pub(super) fn oversized(&self, live: usize) -> bool {
        self.heap.len() > live.saturating_mul(SLACK).saturating_add(FLOOR)
    }

    /// Replace every entry with `entries` (the live deadlines).
    pub(super) fn rebuild(&mut self, entries: impl IntoIterator<Item = (Instant, K, u64)>) {
        let mut heap = std::mem::take(&mut self.heap).into_vec();
        heap.clear();
        heap.extend(entries.into_iter().map(Reverse));
        self.heap = BinaryHeap::from(heap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    #[test]
    fn due_keys_come_in_deadline_order_and_stale_entries_are_skipped() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut deadlines = Deadlines::new();
        // The live generation of each key.
        let mut live: HashMap<u32, u64> = HashMap::new();
        for (key, ms, generation) in [(1, 30, 1), (2, 10, 2), (3, 20, 3)] {
            deadlines.schedule(at(ms), key, generation);
            live.insert(key, generation);
        }
        // Key 2 moves later (its 10 ms entry goes stale), key 3 is removed.
        deadlines.schedule(at(40), 2, 4);
        live.insert(2, 4);
        live.remove(&3);
        let is_live = |key, generation| live.get(&key) == Some(&generation);
        assert_eq!(deadlines.earliest(is_live), Some(at(30)));
        assert_eq!(deadlines.pop_due(at(25), is_live), None);
        assert_eq!(deadlines.pop_due(at(35), is_live), Some(1));
        assert_eq!(deadlines.pop_due(at(35), is_live), None);
        assert_eq!(deadlines.earliest(is_live), Some(at(40)));
        assert_eq!(deadlines.pop_due(at(50), is_live), Some(2));
        assert_eq!(deadlines.earliest(is_live), None);
        assert_eq!(deadlines.len(), 0);
    }

    #[test]
    fn a_rebuild_keeps_the_heap_within_its_bound() {
        let start = Instant::now();
        let mut deadlines = Deadlines::new();
        let mut live: HashMap<u32, (Instant, u64)> = HashMap::new();
        let mut generation = 0;
        // Ten connections whose deadlines move a thousand times each, with
        // the rebuild rule the DoQ driver applies after every push.
        for round in 0..1000u64 {
            for key in 0..10u32 {
                generation += 1;
                let at = start + Duration::from_millis(round * 10 + u64::from(key));
                deadlines.schedule(at, key, generation);
                live.insert(key, (at, generation));
                if deadlines.oversized(live.len()) {
                    deadlines.rebuild(live.iter().map(|(&key, &(at, g))| (at, key, g)));
                }
                assert!(deadlines.len() <= live.len() * SLACK + FLOOR + 1);
            }
        }
        // Only the live entries come out, in order.
        let is_live = |key, g| live.get(&key).is_some_and(|&(_, live)| live == g);
        let mut due = Vec::new();
        while let Some(key) = deadlines.pop_due(start + Duration::from_secs(3600), is_live) {
            due.push(key);
        }
        assert_eq!(due, (0..10).collect::<Vec<_>>());
    }
}
