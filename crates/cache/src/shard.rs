//! One core's cache: [`Cache`], a byte-bounded map from [`QueryKey`] to
//! [`Entry`] with segmented-LRU eviction, and its [`CacheStats`].
//!
//! Layout: a `hashbrown::HashTable<u32>` maps a key's hash to an index in
//! a dense slab `Vec<Slot>`. Each slot (32 bytes on 64-bit targets) holds
//! the entry (a pointer and length: the answer, its index and its
//! timestamps live in the entry's one allocation), the links of one of two
//! intrusive doubly linked lists, the hit count, the refresh mark and two
//! flags. Removal swaps the last slot into the hole, so the slab never has
//! gaps.
//!
//! The key is not stored twice: an entry's wire already holds the
//! lower-cased question name, qtype and qclass, and the entry keeps the DO
//! and CD bits, so [`Entry::matches`] compares against that. Neither is the
//! hash: the table asks for it only when it grows and when a slot leaves
//! or moves, and it is computed again from the entry then
//! ([`Entry::key`]).
//!
//! The slab grows by an eighth at a time and its spare capacity counts
//! against the byte bound like the entries do, so the bound covers every
//! byte the shard holds on the heap: entries, slab (spare slots included)
//! and the table (estimated per entry).
//!
//! Eviction is SLRU: new entries enter the probation segment; a hit there
//! promotes the entry to the protected segment (at most ~80% of the
//! capacity, its overflow demoted back to probation's most-recent end);
//! eviction takes probation's least-recent entry first. A scan of names
//! seen once therefore churns only probation and cannot flush the hot set.
//!
//! Each slot also carries what the resolver needs to keep an entry warm
//! without a side table that could grow: the fresh hits since the entry
//! was stored (for prefetch) and `refresh_after`, a time before which the
//! upstream is not asked again for this key because it just failed (the
//! RFC 8767 failure recheck timer). Both reset when the entry is replaced.

use core::mem::size_of;

use hashbrown::{DefaultHashBuilder, HashTable};
use heimdall_wire::{Name, QueryKey};

use crate::entry::{Entry, EntryKind};
use crate::error::CacheError;
use crate::policy::CachePolicy;
use crate::time::Timestamp;

/// "No slot" in the intrusive lists.
const NIL: u32 = u32::MAX;

/// Estimated hash-table bytes per entry: a `u32` and a control byte per
/// bucket, and hashbrown keeps between 8/7 and 16/7 buckets per entry
/// (load factor 7/8, power-of-two growth), so about two.
pub const TABLE_BYTES_PER_ENTRY: usize = 2 * (size_of::<u32>() + 1);

/// The table's hash of a key, from its parts: a lookup hashes the
/// query's [`QueryKey`] and an eviction or a table resize hashes the
/// stored entry's question in place, so both must feed the same bytes
/// (building a `QueryKey` from an entry to hash it copied its name and was
/// the cold path's costliest cache function).
fn hash_parts(
    hasher: &DefaultHashBuilder,
    name: &[u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
) -> u64 {
    use core::hash::{BuildHasher as _, Hasher as _};
    let mut state = hasher.build_hasher();
    state.write(name);
    state.write_u32(u32::from(qtype) << 16 | u32::from(qclass));
    state.write_u8(u8::from(dnssec_ok) | u8::from(checking_disabled) << 1);
    state.finish()
}

fn hash_key(hasher: &DefaultHashBuilder, key: &QueryKey) -> u64 {
    hash_parts(
        hasher,
        &key.name,
        key.qtype.0,
        key.qclass.0,
        key.dnssec_ok,
        key.checking_disabled,
    )
}

/// The hash of the key of the entry in `slots[index]` (0 for no slot).
fn slot_hash(hasher: &DefaultHashBuilder, slots: &[Slot], index: u32) -> u64 {
    slots.get(index as usize).map_or(0, |slot| {
        let entry = &slot.entry;
        let (name, qtype, qclass) = entry.question_parts();
        hash_parts(
            hasher,
            name,
            qtype,
            qclass,
            entry.dnssec_ok(),
            entry.checking_disabled(),
        )
    })
}

/// The two SLRU segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Probation,
    Protected,
}

/// One stored entry and its place in the lists: 32 bytes on 64-bit
/// targets, every field a `u32` beside the entry's fat pointer.
#[derive(Debug)]
struct Slot {
    entry: Entry,
    /// Toward the most recently used end.
    prev: u32,
    /// Toward the least recently used end.
    next: u32,
    /// Fresh lookups since the entry was stored (saturating at
    /// [`MAX_HITS`]) in the low 30 bits; [`PROTECTED`] and [`COPIED`].
    hits_and_flags: u32,
    /// Serve-stale: the upstream failed for this key; do not ask it again
    /// before `stored_at` plus this many milliseconds (0: no mark).
    refresh_after_ms: u32,
}

/// In [`Slot::hits_and_flags`]: the slot is in the protected segment.
const PROTECTED: u32 = 1 << 31;
/// In [`Slot::hits_and_flags`]: stored from another core's hint, a copy of
/// an answer that core fetched (and may still hold).
const COPIED: u32 = 1 << 30;
/// Hits saturate here (about a billion).
const MAX_HITS: u32 = COPIED - 1;

impl Slot {
    fn new(entry: Entry, copied: bool) -> Self {
        Self {
            entry,
            prev: NIL,
            next: NIL,
            hits_and_flags: if copied { COPIED } else { 0 },
            refresh_after_ms: 0,
        }
    }

    fn hits(&self) -> u32 {
        self.hits_and_flags & MAX_HITS
    }

    fn count_hit(&mut self) {
        if self.hits() < MAX_HITS {
            self.hits_and_flags += 1;
        }
    }

    fn segment(&self) -> Segment {
        if self.hits_and_flags & PROTECTED != 0 {
            Segment::Protected
        } else {
            Segment::Probation
        }
    }

    fn set_segment(&mut self, segment: Segment) {
        match segment {
            Segment::Protected => self.hits_and_flags |= PROTECTED,
            Segment::Probation => self.hits_and_flags &= !PROTECTED,
        }
    }

    fn copied(&self) -> bool {
        self.hits_and_flags & COPIED != 0
    }

    /// A new entry in this slot: no hits, no refresh mark, the segment
    /// kept.
    fn replace(&mut self, entry: Entry, copied: bool) {
        self.entry = entry;
        self.hits_and_flags = (self.hits_and_flags & PROTECTED) | if copied { COPIED } else { 0 };
        self.refresh_after_ms = 0;
    }

    fn refresh_after(&self) -> Timestamp {
        if self.refresh_after_ms == 0 {
            return Timestamp::ZERO;
        }
        self.entry
            .stored_at()
            .add_millis(u64::from(self.refresh_after_ms))
    }

    /// Kept relative to `stored_at`; a mark further out than 49 days is
    /// brought in (the upstream is only asked sooner).
    fn set_refresh_after(&mut self, at: Timestamp) {
        let delta = at
            .as_millis()
            .saturating_sub(self.entry.stored_at().as_millis());
        self.refresh_after_ms = u32::try_from(delta).unwrap_or(u32::MAX);
    }
}

/// One intrusive list: head is the most recently used slot.
#[derive(Debug, Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    bytes: usize,
}

impl List {
    const EMPTY: Self = Self {
        head: NIL,
        tail: NIL,
        bytes: 0,
    };
}

/// The result of a lookup.
#[derive(Debug, Clone, Copy)]
pub enum Lookup<'a> {
    /// An entry that has not expired.
    Fresh(&'a Entry),
    /// An expired entry still inside the policy's stale window (RFC 8767);
    /// serve it only when the upstream cannot answer.
    Stale(&'a Entry),
    /// No usable entry.
    Miss,
}

/// What a slot knows beside its entry, as of a lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotInfo {
    /// Fresh lookups since the entry was stored, this one included
    /// (saturating at 2^30 - 1); 0 for a miss.
    pub hits: u32,
    /// The upstream failed for this key recently: until this time, serve
    /// stale rather than ask again ([`Timestamp::ZERO`] when it has not).
    pub refresh_after: Timestamp,
}

/// Counters and sizes of one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a fresh entry.
    pub hits: u64,
    /// Lookups that found nothing usable (expired entries included).
    pub misses: u64,
    /// Lookups that found an entry inside the stale window.
    pub stale_hits: u64,
    /// Entries stored (new or replacing).
    pub inserts: u64,
    /// Entries removed to make room.
    pub evictions: u64,
    /// Entries removed by a lookup because they were past the stale window.
    pub expired: u64,
    /// Bytes accounted (see [`Cache::entry_bytes`]).
    pub bytes: usize,
    /// Entries held.
    pub entries: usize,
    /// Entries held that were stored from another core's hint
    /// ([`Cache::insert_hint`]): copies of answers another core fetched.
    /// `entries - copies` were fetched by this core.
    pub copies: usize,
}

/// One single-threaded cache shard, bounded by bytes.
#[derive(Debug)]
pub struct Cache {
    table: HashTable<u32>,
    slots: Vec<Slot>,
    hasher: DefaultHashBuilder,
    probation: List,
    protected: List,
    capacity: usize,
    protected_capacity: usize,
    policy: CachePolicy,
    stats: CacheStats,
    /// Slots with `copied` set.
    copies: usize,
}

impl Cache {
    /// An empty shard holding at most `capacity_bytes` (see
    /// [`Cache::entry_bytes`] for what is counted). Fails when `policy` is
    /// not valid.
    pub fn new(capacity_bytes: usize, policy: CachePolicy) -> Result<Self, CacheError> {
        policy.validate()?;
        let capacity = Self::capped(capacity_bytes);
        Ok(Self {
            table: HashTable::new(),
            slots: Vec::new(),
            hasher: DefaultHashBuilder::default(),
            probation: List::EMPTY,
            protected: List::EMPTY,
            capacity,
            protected_capacity: capacity / 5 * 4,
            policy,
            stats: CacheStats::default(),
            copies: 0,
        })
    }

    /// The byte bound.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity
    }

    /// The policy entries are judged by.
    pub fn policy(&self) -> &CachePolicy {
        &self.policy
    }

    /// Counters, bytes and entries now.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            bytes: self.bytes(),
            entries: self.slots.len(),
            copies: self.copies,
            ..self.stats
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the shard is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes an entry accounts for once stored: its slot (the entry's
    /// pointer and length, links, hit count, refresh mark and flags), its
    /// one heap allocation as glibc lays it out ([`Entry::heap_bytes`]:
    /// the wire, which also holds the key's name, type and class, and the
    /// trailer, plus malloc's header and rounding) and
    /// [`TABLE_BYTES_PER_ENTRY`].
    ///
    /// The shard's total ([`CacheStats::bytes`]) is the sum of this over
    /// its entries plus the slab's spare slots.
    pub fn entry_bytes(entry: &Entry) -> usize {
        size_of::<Slot>() + entry.heap_bytes() + TABLE_BYTES_PER_ENTRY
    }

    /// Bytes of one slot, the fixed part of [`Cache::entry_bytes`].
    pub const SLOT_BYTES: usize = size_of::<Slot>();

    fn bytes(&self) -> usize {
        self.probation.bytes + self.protected.bytes + self.spare_bytes()
    }

    /// The slab's allocated but unused slots: held memory like any other.
    fn spare_bytes(&self) -> usize {
        (self.slots.capacity() - self.slots.len()) * size_of::<Slot>()
    }

    fn hash(&self, key: &QueryKey) -> u64 {
        hash_key(&self.hasher, key)
    }

    /// The hash of the key of the entry in slot `index`.
    fn slot_hash(&self, index: u32) -> u64 {
        slot_hash(&self.hasher, &self.slots, index)
    }

    fn find(&self, hash: u64, key: &QueryKey) -> Option<u32> {
        let slots = &self.slots;
        self.table
            .find(hash, |&index| {
                slots
                    .get(index as usize)
                    .is_some_and(|slot| slot.entry.matches(key))
            })
            .copied()
    }

    /// Find the entry for `key` at `now`. A fresh or stale hit counts as a
    /// use for eviction; an entry past its stale window is removed.
    pub fn lookup(&mut self, key: &QueryKey, now: Timestamp) -> Lookup<'_> {
        self.lookup_slot(key, now).0
    }

    /// [`Cache::lookup`], and what the slot knows beside the entry: its
    /// fresh hits (a fresh lookup counts itself) and its refresh time.
    pub fn lookup_slot(&mut self, key: &QueryKey, now: Timestamp) -> (Lookup<'_>, SlotInfo) {
        let hash = self.hash(key);
        let Some(index) = self.find(hash, key) else {
            self.stats.misses += 1;
            return (Lookup::Miss, SlotInfo::default());
        };
        let Some(entry) = self.slots.get(index as usize).map(|slot| &slot.entry) else {
            self.stats.misses += 1;
            return (Lookup::Miss, SlotInfo::default());
        };
        let fresh = entry.is_fresh(now);
        let usable = fresh || now < self.stale_until(entry);
        if !usable {
            self.remove_slot(index);
            self.stats.expired += 1;
            self.stats.misses += 1;
            return (Lookup::Miss, SlotInfo::default());
        }
        self.touch(index);
        if fresh {
            self.stats.hits += 1;
        } else {
            self.stats.stale_hits += 1;
        }
        match self.slots.get_mut(index as usize) {
            Some(slot) => {
                if fresh {
                    slot.count_hit();
                }
                let info = SlotInfo {
                    hits: slot.hits(),
                    refresh_after: slot.refresh_after(),
                };
                let entry = &slot.entry;
                (
                    if fresh {
                        Lookup::Fresh(entry)
                    } else {
                        Lookup::Stale(entry)
                    },
                    info,
                )
            }
            None => (Lookup::Miss, SlotInfo::default()),
        }
    }

    /// The entry for `key` as [`Cache::lookup`] would judge it at `now`,
    /// without counting a use or removing anything.
    pub fn peek_usable(&self, key: &QueryKey, now: Timestamp) -> Lookup<'_> {
        match self.peek(key) {
            Some(entry) if entry.is_fresh(now) => Lookup::Fresh(entry),
            Some(entry) if now < self.stale_until(entry) => Lookup::Stale(entry),
            _ => Lookup::Miss,
        }
    }

    /// Serve-stale: the upstream failed for `key`, so do not ask it again
    /// before `at` (see [`SlotInfo::refresh_after`]). Returns whether there
    /// was an entry to mark; the mark ends when the entry is replaced.
    pub fn set_refresh_after(&mut self, key: &QueryKey, at: Timestamp) -> bool {
        let Some(index) = self.find(self.hash(key), key) else {
            return false;
        };
        match self.slots.get_mut(index as usize) {
            Some(slot) => {
                slot.set_refresh_after(at);
                true
            }
            None => false,
        }
    }

    /// Until when `entry` may be served; failures are never served stale,
    /// because an old SERVFAIL says nothing about the name.
    fn stale_until(&self, entry: &Entry) -> Timestamp {
        match entry.kind() {
            EntryKind::ServFail => entry.expires_at(),
            _ => entry.expires_at().add_secs(self.policy.stale_window),
        }
    }

    /// The entry for `key`, without counting a use or checking time.
    pub fn peek(&self, key: &QueryKey) -> Option<&Entry> {
        let index = self.find(self.hash(key), key)?;
        self.slots.get(index as usize).map(|slot| &slot.entry)
    }

    /// Store `entry` for `key`, replacing any entry for it, evicting as
    /// needed. Returns `Ok(false)` without storing when the entry is
    /// already past its stale window at `now`.
    ///
    /// Errors: [`CacheError::QuestionMismatch`] when the entry was not
    /// built for `key`; [`CacheError::TooLarge`] when the entry alone
    /// exceeds the capacity.
    pub fn insert(
        &mut self,
        key: &QueryKey,
        entry: Entry,
        now: Timestamp,
    ) -> Result<bool, CacheError> {
        self.insert_marked(key, entry, now, false)
    }

    /// [`Cache::insert`], marking the slot as a copy from another core.
    fn insert_marked(
        &mut self,
        key: &QueryKey,
        entry: Entry,
        now: Timestamp,
        copied: bool,
    ) -> Result<bool, CacheError> {
        if !entry.matches(key) {
            return Err(CacheError::QuestionMismatch);
        }
        let bytes = Self::entry_bytes(&entry);
        if bytes > self.capacity {
            return Err(CacheError::TooLarge {
                bytes,
                capacity: self.capacity,
            });
        }
        if now >= self.stale_until(&entry) {
            return Ok(false);
        }
        let hash = self.hash(key);
        let index = match self.find(hash, key) {
            Some(index) => {
                // A refreshed answer keeps the standing its name earned.
                self.unlink(index);
                if let Some(slot) = self.slots.get_mut(index as usize) {
                    // A new answer starts its own life: no hits yet, and
                    // the upstream just proved it answers.
                    self.copies = self.copies - usize::from(slot.copied()) + usize::from(copied);
                    slot.replace(entry, copied);
                }
                let segment = self.segment_of(index);
                self.push_front(segment, index);
                index
            }
            None => {
                let index = self.slots.len() as u32;
                if self.slots.len() == self.slots.capacity() {
                    // Grow by an eighth, not double: spare slots count
                    // against the bound, so keep them few.
                    self.slots.reserve_exact((self.slots.len() / 8).max(1));
                }
                self.slots.push(Slot::new(entry, copied));
                self.copies += usize::from(copied);
                let (slots, hasher) = (&self.slots, &self.hasher);
                self.table
                    .insert_unique(hash, index, |&other| slot_hash(hasher, slots, other));
                self.push_front(Segment::Probation, index);
                index
            }
        };
        self.stats.inserts += 1;
        self.rebalance(index);
        self.evict_to_fit(index);
        Ok(true)
    }

    /// Store a cache-fill hint from another core: only when there is no
    /// entry for `key` that expires at the same time or later (this core
    /// keeps its fresher answer), and only while the hint is still fresh.
    /// Returns whether it was stored.
    pub fn insert_hint(&mut self, key: &QueryKey, entry: Entry, now: Timestamp) -> bool {
        if !entry.matches(key) || !entry.is_fresh(now) {
            return false;
        }
        if self
            .peek(key)
            .is_some_and(|current| current.expires_at() >= entry.expires_at())
        {
            return false;
        }
        self.insert_marked(key, entry, now, true).unwrap_or(false)
    }

    /// Remove the entry for `key`; returns whether there was one.
    pub fn remove(&mut self, key: &QueryKey) -> bool {
        let hash = self.hash(key);
        match self.find(hash, key) {
            Some(index) => {
                self.remove_slot(index);
                true
            }
            None => false,
        }
    }

    /// Remove the entries for `name_wire` (uncompressed wire form, any
    /// case) and every name below it, all types and flags; returns how
    /// many. Walks the whole shard: meant for an operator's flush, not the
    /// query path.
    pub fn remove_subtree(&mut self, name_wire: &[u8]) -> Result<usize, CacheError> {
        let ancestor = Name::from_wire(name_wire)?;
        let mut removed = 0usize;
        let mut index = 0usize;
        while let Some(slot) = self.slots.get(index) {
            let below = Name::from_wire(slot.entry.question_name())
                .is_ok_and(|name| name.is_subdomain_of(&ancestor));
            if below {
                // The last slot moves into `index`; look at it next.
                self.remove_slot(index as u32);
                removed += 1;
            } else {
                index += 1;
            }
        }
        Ok(removed)
    }

    /// Every entry held, in no particular order (for persistence). Walks
    /// the whole shard.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().map(|slot| &slot.entry)
    }

    /// Keep only the entries `keep` says yes to; returns how many were
    /// removed. Walks the whole shard: for operator actions and reloads,
    /// not the query path.
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) -> usize {
        let mut removed = 0usize;
        let mut index = 0usize;
        while let Some(slot) = self.slots.get(index) {
            if keep(&slot.entry) {
                index += 1;
            } else {
                // The last slot moves into `index`; look at it next.
                self.remove_slot(index as u32);
                removed += 1;
            }
        }
        removed
    }

    /// Judge entries by `policy` from now on (the stale window applies at
    /// once; stored TTLs keep the values they were clamped to). Fails,
    /// changing nothing, when `policy` is not valid.
    pub fn set_policy(&mut self, policy: CachePolicy) -> Result<(), CacheError> {
        policy.validate()?;
        self.policy = policy;
        Ok(())
    }

    /// Change the byte bound; when it shrinks, the least recent entries
    /// are evicted (probation first) until the shard fits. Returns how
    /// many were evicted.
    pub fn set_capacity(&mut self, capacity_bytes: usize) -> usize {
        self.capacity = Self::capped(capacity_bytes);
        self.protected_capacity = self.capacity / 5 * 4;
        self.rebalance(NIL);
        let before = self.stats.evictions;
        self.evict_to_fit(NIL);
        (self.stats.evictions - before) as usize
    }

    /// Every entry accounts for at least one slot, so capping the bound
    /// keeps slot indices below `NIL`.
    fn capped(capacity_bytes: usize) -> usize {
        capacity_bytes.min(size_of::<Slot>().saturating_mul(NIL as usize - 1))
    }

    /// Remove every entry (counters are kept) and release the slab.
    pub fn clear(&mut self) {
        self.table = HashTable::new();
        self.slots = Vec::new();
        self.copies = 0;
        self.probation = List::EMPTY;
        self.protected = List::EMPTY;
    }

    fn segment_of(&self, index: u32) -> Segment {
        self.slots
            .get(index as usize)
            .map_or(Segment::Probation, Slot::segment)
    }

    fn list_mut(&mut self, segment: Segment) -> &mut List {
        match segment {
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    fn set_prev(&mut self, index: u32, prev: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.prev = prev;
        }
    }

    fn set_next(&mut self, index: u32, next: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize) {
            slot.next = next;
        }
    }

    /// Take `index` out of its list (its bytes leave the list's total).
    fn unlink(&mut self, index: u32) {
        let Some(slot) = self.slots.get(index as usize) else {
            return;
        };
        let (prev, next, segment) = (slot.prev, slot.next, slot.segment());
        let bytes = Self::entry_bytes(&slot.entry);
        if prev == NIL {
            self.list_mut(segment).head = next;
        } else {
            self.set_next(prev, next);
        }
        if next == NIL {
            self.list_mut(segment).tail = prev;
        } else {
            self.set_prev(next, prev);
        }
        let list = self.list_mut(segment);
        list.bytes = list.bytes.saturating_sub(bytes);
        self.set_prev(index, NIL);
        self.set_next(index, NIL);
    }

    /// Put an unlinked `index` at the most recently used end of `segment`.
    fn push_front(&mut self, segment: Segment, index: u32) {
        let old_head = self.list_mut(segment).head;
        let Some(slot) = self.slots.get_mut(index as usize) else {
            return;
        };
        slot.set_segment(segment);
        slot.prev = NIL;
        slot.next = old_head;
        let bytes = Self::entry_bytes(&slot.entry);
        if old_head != NIL {
            self.set_prev(old_head, index);
        }
        let list = self.list_mut(segment);
        list.head = index;
        if list.tail == NIL {
            list.tail = index;
        }
        list.bytes += bytes;
    }

    /// Record a use of `index`: promote from probation, or move to the
    /// front of protected.
    fn touch(&mut self, index: u32) {
        if self.segment_of(index) == Segment::Protected && self.protected.head == index {
            return;
        }
        self.unlink(index);
        self.push_front(Segment::Protected, index);
        self.rebalance(index);
    }

    /// Demote protected's least recent entries to probation's front until
    /// protected fits its share; `keep` (just used) is never demoted.
    fn rebalance(&mut self, keep: u32) {
        while self.protected.bytes > self.protected_capacity {
            let victim = self.protected.tail;
            if victim == NIL || victim == keep {
                break;
            }
            self.unlink(victim);
            self.push_front(Segment::Probation, victim);
        }
    }

    /// Evict least recent entries, probation first, until the bound holds;
    /// `keep` (just stored) is evicted last, never.
    fn evict_to_fit(&mut self, mut keep: u32) {
        while self.bytes() > self.capacity {
            if keep == NIL && self.spare_bytes() > 0 {
                // An operator's shrink: give spare slots back before
                // evicting anything (the query path keeps them for the
                // next inserts).
                self.slots.shrink_to_fit();
                if self.bytes() <= self.capacity {
                    break;
                }
            }
            let Some(victim) = [self.probation.tail, self.protected.tail]
                .into_iter()
                .find(|&victim| victim != NIL && victim != keep)
            else {
                // Only the entry just stored is left: spare slots are all
                // that can still go.
                self.slots.shrink_to_fit();
                break;
            };
            // The removal moves the last slot into the victim's index.
            let last = self.slots.len() as u32 - 1;
            self.remove_slot(victim);
            self.stats.evictions += 1;
            if last == keep {
                keep = victim;
            }
        }
    }

    /// Remove slot `index` everywhere, moving the last slot into its place.
    fn remove_slot(&mut self, index: u32) {
        let Some(copied) = self.slots.get(index as usize).map(Slot::copied) else {
            return;
        };
        let hash = self.slot_hash(index);
        self.copies -= usize::from(copied);
        self.unlink(index);
        if let Ok(found) = self.table.find_entry(hash, |&other| other == index) {
            found.remove();
        }
        let last = self.slots.len() as u32 - 1;
        let moved_hash = if index == last {
            0
        } else {
            self.slot_hash(last)
        };
        self.slots.swap_remove(index as usize);
        if self.slots.is_empty() {
            // An empty shard holds no slab (its spare slots would count).
            self.slots = Vec::new();
        }
        if index == last {
            return;
        }
        // The former last slot now lives at `index`: repoint the table and
        // its neighbours.
        let Some(moved) = self.slots.get(index as usize) else {
            return;
        };
        let (prev, next, segment) = (moved.prev, moved.next, moved.segment());
        if let Some(pointer) = self.table.find_mut(moved_hash, |&other| other == last) {
            *pointer = index;
        }
        if prev == NIL {
            self.list_mut(segment).head = index;
        } else {
            self.set_next(prev, index);
        }
        if next == NIL {
            self.list_mut(segment).tail = index;
        } else {
            self.set_prev(next, index);
        }
    }
}

#[cfg(test)]
impl Cache {
    /// Walk every structure and check it agrees with the others: list
    /// links both ways, segment tags, byte totals, the table's indices, and
    /// the byte bound.
    pub(crate) fn check_invariants(&self) {
        assert_eq!(
            self.slots.iter().filter(|slot| slot.copied()).count(),
            self.copies,
            "copies miscounted"
        );
        let mut seen = vec![false; self.slots.len()];
        for (segment, list) in [
            (Segment::Probation, self.probation),
            (Segment::Protected, self.protected),
        ] {
            let (mut index, mut prev, mut bytes) = (list.head, NIL, 0usize);
            while index != NIL {
                let slot = &self.slots[index as usize];
                assert!(!seen[index as usize], "slot {index} linked twice");
                seen[index as usize] = true;
                assert_eq!(slot.segment(), segment, "slot {index} in the wrong list");
                assert_eq!(slot.prev, prev, "slot {index} prev link");
                bytes += Self::entry_bytes(&slot.entry);
                prev = index;
                index = slot.next;
            }
            assert_eq!(list.tail, prev, "{segment:?} tail");
            assert_eq!(list.bytes, bytes, "{segment:?} bytes");
        }
        assert!(seen.iter().all(|&linked| linked), "a slot is in no list");
        assert_eq!(self.table.len(), self.slots.len());
        for (index, slot) in self.slots.iter().enumerate() {
            let _ = slot;
            let found = self.table.find(self.slot_hash(index as u32), |&other| {
                other as usize == index
            });
            assert_eq!(
                found.copied(),
                Some(index as u32),
                "slot {index} not in table"
            );
        }
        assert!(self.bytes() <= self.capacity, "over capacity");
    }

    /// Whether the entry for `key` is in the protected segment.
    pub(crate) fn is_protected(&self, key: &QueryKey) -> bool {
        self.find(self.hash(key), key)
            .is_some_and(|index| self.segment_of(index) == Segment::Protected)
    }
}
