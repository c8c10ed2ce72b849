//! The shard's hash index, [`Index`]: a key's hash to the handle of its
//! record, grown (or cleared of tombstones) a few buckets per insert
//! instead of all at once.
//!
//! The handles are bare `u32`s: a handle's hash is computed again from its
//! record when the index needs it (see `shard.rs`), which touches the
//! record, and a cold record costs a cache miss. hashbrown's own resize
//! (and its in-place rehash once erasures have left the table without
//! room) recomputes every handle's hash inside one insert: in a
//! 64 MiB shard filling up with misses, the insert that doubled the table
//! from 2^20 to 2^21 buckets took 94-102 ms (458,752 records touched, one
//! after the other), the doublings before it 44, 19, 7 and 1.5 ms; a full
//! 8 MiB shard's churn stopped for 14-15 ms when it rehashed in place
//! (`slowest_insert` in `tests.rs`, run by hand, prints these). The core
//! answers nothing for that long, and a shard of gigabytes would stop for
//! seconds.
//!
//! So the index starts a new table itself just before hashbrown would
//! have to make room (when the table is at its capacity), of the size
//! hashbrown would have chosen (twice the buckets when more than half of
//! the full capacity is in use, else as many), and moves the old table's
//! handles over [`MIGRATE_BUCKETS`] buckets per insert. Until the old table
//! is empty, a lookup that misses the new table looks in the old one, and
//! a removal or repointing finds its handle in either. The total work is
//! what hashbrown did, spread over the inserts that follow. The new table
//! has room for every handle of the old one and for the inserts made
//! while they move (see [`Index::begin_migration`]), so it never needs to
//! make room itself before the move ends.
//!
//! The old table's allocation is not counted in the shard's bytes while it
//! drains: it is at most half the new table's (as in hashbrown's own
//! resize, which also holds both for its duration), and freed when the
//! last handle has moved.

use core::mem;

use hashbrown::HashTable;

/// Buckets of the old table looked at per insert while a migration runs.
/// A migration thus ends within `old buckets / 8` inserts, each moving at
/// most 8 handles (8 records touched, each likely a cache miss). More per
/// insert end it sooner (while it runs, a lookup that misses probes both
/// tables) but load the core harder meanwhile: at 32, the 2^20-bucket
/// move under 50,000 cold misses a second took the core's spare time and
/// answers waited up to 50 ms; at 8 they waited at most 12. The new table
/// has room for the inserts made meanwhile beside the moved handles: a
/// grown table is filled to at most 1/2 of its buckets when the move ends
/// (7/8 of the old table's buckets plus 1/8 of them, over twice as many), a
/// same-size one to 11/16 with the tombstones evictions may leave
/// meanwhile; both under 7/8.
pub(crate) const MIGRATE_BUCKETS: usize = 8;

/// The handle index of one shard.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Where handles are inserted, and looked up first.
    table: HashTable<u32>,
    /// The table being drained into `table` (empty, with no allocation,
    /// when no migration runs).
    old: HashTable<u32>,
    /// The next bucket of `old` to move.
    cursor: usize,
}

/// The entries a table of `buckets` buckets holds before it must grow or
/// rehash: hashbrown's load factor, 7/8 (one less than the buckets below 8).
fn full_capacity(buckets: usize) -> usize {
    if buckets < 8 {
        buckets.saturating_sub(1)
    } else {
        buckets / 8 * 7
    }
}

impl Index {
    /// Handles held, in both tables.
    pub(crate) fn len(&self) -> usize {
        self.table.len() + self.old.len()
    }

    /// Whether a migration is under way.
    #[cfg(test)]
    pub(crate) fn migrating(&self) -> bool {
        self.old.allocation_size() > 0
    }

    /// Bytes of the table handles are inserted into (the draining one is
    /// not counted: see the module docs).
    pub(crate) fn allocation_size(&self) -> usize {
        self.table.allocation_size()
    }

    /// The handle whose hash is `hash` and for which `matches` holds.
    pub(crate) fn find(&self, hash: u64, mut matches: impl FnMut(u32) -> bool) -> Option<u32> {
        self.table
            .find(hash, |&handle| matches(handle))
            .or_else(|| self.old.find(hash, |&handle| matches(handle)))
            .copied()
    }

    /// Add `handle` under `hash`; `rehash` gives any held handle's hash.
    /// Moves part of a running migration first, or starts one when the
    /// table is full.
    pub(crate) fn insert(&mut self, hash: u64, handle: u32, rehash: impl Fn(u32) -> u64) {
        if self.table.len() >= self.table.capacity() {
            // Never expected with MIGRATE_BUCKETS' margin; if it happens,
            // the old table is finished first, so only one ever drains.
            self.finish_migration(&rehash);
            self.begin_migration();
        }
        self.migrate_step(&rehash);
        self.table
            .insert_unique(hash, handle, |&other| rehash(other));
    }

    /// Remove `handle`, stored under `hash`. Returns whether it was held.
    pub(crate) fn remove(&mut self, hash: u64, handle: u32) -> bool {
        if let Ok(found) = self.table.find_entry(hash, |&other| other == handle) {
            found.remove();
            return true;
        }
        if let Ok(found) = self.old.find_entry(hash, |&other| other == handle) {
            found.remove();
            self.drop_drained();
            return true;
        }
        false
    }

    /// Point the entry of `from`, stored under `hash`, at `to` (the store
    /// moved its record). Returns whether `from` was held.
    pub(crate) fn repoint(&mut self, hash: u64, from: u32, to: u32) -> bool {
        let found = match self.table.find_mut(hash, |&other| other == from) {
            Some(pointer) => Some(pointer),
            None => self.old.find_mut(hash, |&other| other == from),
        };
        found.map(|pointer| *pointer = to).is_some()
    }

    /// Drop every handle and both tables' allocations.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// Finish any migration, then give back the buckets beyond what `len`
    /// handles need (an operator's shrink: this rehashes every handle).
    pub(crate) fn shrink_to(&mut self, len: usize, rehash: impl Fn(u32) -> u64) {
        self.finish_migration(&rehash);
        self.table.shrink_to(len, |&handle| rehash(handle));
    }

    /// Every handle held, in no order (for the shard's invariant check).
    #[cfg(test)]
    pub(crate) fn handles(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.iter().chain(self.old.iter()).copied()
    }

    /// Start draining the full table into a new one of the size hashbrown
    /// would have grown or rehashed it to. The old table is empty.
    fn begin_migration(&mut self) {
        debug_assert!(self.old.is_empty());
        let full = full_capacity(self.table.num_buckets());
        let room = if self.table.len() > full / 2 {
            // Twice the buckets: MIGRATE_BUCKETS keeps the inserts made
            // while the handles move within the growth.
            full.saturating_mul(2).max(4)
        } else {
            // Mostly tombstones: as many buckets, none of them deleted.
            full.max(4)
        };
        self.old = mem::replace(&mut self.table, HashTable::with_capacity(room));
        self.cursor = 0;
        self.drop_drained();
    }

    /// Move the handles of the next [`MIGRATE_BUCKETS`] buckets of the old
    /// table into the new one.
    fn migrate_step(&mut self, rehash: &impl Fn(u32) -> u64) {
        if self.old.is_empty() {
            return;
        }
        if self.cursor >= self.old.num_buckets() {
            // Unreachable (nothing is inserted into the old table, so it is
            // empty once the cursor has passed every bucket), but a
            // `finish_migration` that made no progress would never end.
            self.cursor = 0;
        }
        let end = self
            .cursor
            .saturating_add(MIGRATE_BUCKETS)
            .min(self.old.num_buckets());
        // Three passes: the handles out, their hashes, then the inserts.
        // Each hash reads a record, likely a cache miss; computed apart
        // from the inserts (which depend on them) the misses overlap.
        let mut handles = [0u32; MIGRATE_BUCKETS];
        let mut taken = 0;
        for index in self.cursor..end {
            if let Ok(entry) = self.old.get_bucket_entry(index)
                && let Some(slot) = handles.get_mut(taken)
            {
                *slot = entry.remove().0;
                taken += 1;
            }
        }
        let handles = handles.get(..taken).unwrap_or_default();
        let mut hashes = [0u64; MIGRATE_BUCKETS];
        for (hash, &handle) in hashes.iter_mut().zip(handles) {
            *hash = rehash(handle);
        }
        for (&hash, &handle) in hashes.iter().zip(handles) {
            self.table
                .insert_unique(hash, handle, |&other| rehash(other));
        }
        self.cursor = end;
        self.drop_drained();
    }

    /// Move every handle left in the old table.
    fn finish_migration(&mut self, rehash: &impl Fn(u32) -> u64) {
        while !self.old.is_empty() {
            self.migrate_step(rehash);
        }
    }

    /// Free the old table once it holds nothing.
    fn drop_drained(&mut self) {
        if self.old.is_empty() && self.old.allocation_size() > 0 {
            self.old = HashTable::new();
            self.cursor = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A hash that spreads handles as a real one does (splitmix64's
    /// finalizer) and is cheap to recompute.
    fn hash_of(handle: u32) -> u64 {
        let mut z = u64::from(handle).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// [`hash_of`], counting the handles it is asked to rehash.
    #[derive(Default)]
    struct CountedHash(Cell<usize>);

    impl CountedHash {
        fn hash(&self, handle: u32) -> u64 {
            self.0.set(self.0.get() + 1);
            hash_of(handle)
        }

        /// Rehashes since the last call.
        fn take(&self) -> usize {
            self.0.replace(0)
        }
    }

    /// Insert handles 0, 1, ... until `reached` holds; returns how many.
    /// Fails (rather than loop for ever) if 100,000 do not get there.
    fn insert_until(index: &mut Index, reached: impl Fn(&Index) -> bool) -> u32 {
        for handle in 0..100_000u32 {
            if reached(index) {
                return handle;
            }
            index.insert(hash_of(handle), handle, hash_of);
        }
        panic!("100,000 inserts never started a migration");
    }

    #[test]
    fn every_handle_stays_findable_while_the_table_grows() {
        let mut index = Index::default();
        let mut saw_migration = false;
        for handle in 0..50_000u32 {
            index.insert(hash_of(handle), handle, hash_of);
            saw_migration |= index.migrating();
            if handle % 997 == 0 {
                for probe in (0..=handle).step_by(101) {
                    assert_eq!(
                        index.find(hash_of(probe), |other| other == probe),
                        Some(probe),
                        "{probe} lost after inserting {handle}"
                    );
                }
            }
        }
        assert!(saw_migration, "the table grew without a migration");
        assert_eq!(index.len(), 50_000);
        let mut all: Vec<u32> = index.handles().collect();
        all.sort_unstable();
        assert!(all.iter().copied().eq(0..50_000), "a handle twice or lost");
    }

    #[test]
    fn no_insert_rehashes_more_than_a_step() {
        // The point of the index: hashbrown's resize rehashed every handle
        // in one insert (here 57,344 in the insert that grew the table
        // from 65,536 buckets to 131,072).
        let counted = CountedHash::default();
        let mut index = Index::default();
        let mut worst = 0;
        for handle in 0..100_000u32 {
            index.insert(hash_of(handle), handle, |other| counted.hash(other));
            worst = worst.max(counted.take());
        }
        assert!(
            worst <= MIGRATE_BUCKETS,
            "an insert rehashed {worst} handles"
        );
    }

    #[test]
    fn churn_at_a_steady_size_clears_tombstones_a_step_at_a_time() {
        // Insert one, remove the oldest: the count stays put (at 43 % of
        // the buckets) while erasures leave tombstones, which hashbrown
        // clears with an in-place rehash of every handle once they fill the
        // table (here every ~300,000 inserts).
        let counted = CountedHash::default();
        let mut index = Index::default();
        for handle in 0..14_000u32 {
            index.insert(hash_of(handle), handle, |other| counted.hash(other));
        }
        let (mut worst, mut same_size) = (0, 0);
        for handle in 14_000..1_000_000u32 {
            let (was, buckets) = (index.migrating(), index.table.num_buckets());
            counted.take();
            index.insert(hash_of(handle), handle, |other| counted.hash(other));
            worst = worst.max(counted.take());
            same_size +=
                usize::from(!was && index.migrating() && index.table.num_buckets() == buckets);
            let oldest = handle - 14_000;
            assert!(index.remove(hash_of(oldest), oldest), "{oldest} not held");
        }
        assert_eq!(index.len(), 14_000);
        assert!(
            worst <= MIGRATE_BUCKETS,
            "an insert rehashed {worst} handles"
        );
        assert!(same_size > 0, "tombstones never filled the table");
        for handle in 986_000..1_000_000u32 {
            assert_eq!(
                index.find(hash_of(handle), |other| other == handle),
                Some(handle)
            );
        }
        assert_eq!(index.find(hash_of(5), |other| other == 5), None);
    }

    #[test]
    fn removal_and_repointing_reach_the_draining_table() {
        let mut index = Index::default();
        let handle = insert_until(&mut index, |index| {
            index.migrating() && index.old.len() > 100
        });
        assert!(handle > 0);
        let in_old = *index.old.iter().next().expect("a handle not moved yet");
        assert!(index.repoint(hash_of(in_old), in_old, 1_000_000));
        assert_eq!(
            index.old.find(hash_of(in_old), |&other| other == 1_000_000),
            Some(&1_000_000),
            "repointed where it was"
        );
        assert_eq!(
            index.find(hash_of(in_old), |other| other == 1_000_000),
            Some(1_000_000)
        );
        assert!(
            !index.repoint(hash_of(in_old), in_old, 7),
            "the old handle is gone"
        );
        let before = index.len();
        assert!(index.remove(hash_of(in_old), 1_000_000));
        assert!(!index.remove(hash_of(in_old), 1_000_000));
        assert_eq!(index.len(), before - 1);
        // Removing everything left in the old table frees it at once.
        let left: Vec<u32> = index.old.iter().copied().collect();
        for other in left {
            assert!(index.remove(hash_of(other), other));
        }
        assert!(!index.migrating(), "an emptied old table was kept");
    }

    #[test]
    fn shrink_finishes_the_migration_first() {
        let mut index = Index::default();
        let handle = insert_until(&mut index, Index::migrating);
        for other in 0..handle / 2 {
            index.remove(hash_of(other), other);
        }
        index.shrink_to(index.len(), hash_of);
        assert!(!index.migrating());
        for other in handle / 2..handle {
            assert_eq!(index.find(hash_of(other), |o| o == other), Some(other));
        }
        index.clear();
        assert_eq!(index.len(), 0);
        assert_eq!(index.allocation_size(), 0);
    }
}
