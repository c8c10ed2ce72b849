//! One core's cache: [`Cache`], a byte-bounded map from [`QueryKey`] to
//! cached answers ([`EntryView`]s) with segmented-LRU eviction, and its
//! [`CacheStats`].
//!
//! Layout: an index of `hashbrown::HashTable<u32>`s (`index.rs`) maps a
//! key's hash to the handle of a record in the shard's `Store`
//! (`store.rs`). A record is 16 bytes of what the shard knows about the
//! entry (the links of one of two intrusive doubly linked lists, the hit
//! count, two flags, the refresh mark) followed by the entry's bytes (the
//! answer and its trailer), rounded up to 8 bytes and packed with the
//! records of the same size in pages of about 4 KiB. There is no per-entry allocation and no slot
//! beside the record: a lookup hands out a view of the record's bytes.
//! Removal moves the last record of the same size into the hole (the
//! table and the moved record's neighbours are repointed), so pages never
//! have gaps and nothing is ever compacted.
//!
//! The key is not stored twice: an entry's wire already holds the
//! lower-cased question name, qtype and qclass, and the entry keeps the DO
//! and CD bits, so [`EntryView::matches`] compares against that. Neither
//! is the hash: the index asks for it only when it grows (a few entries
//! per insert, never all at once: `index.rs`) and when an entry leaves or
//! moves, and it is computed again from the entry then
//! ([`EntryView::key`]).
//!
//! The bound covers every byte the shard holds on the heap: each record
//! (its stride and a share of its page's overhead), the unused capacity of
//! the pages being filled, and the table (at the size churn gives it,
//! `churn_table_bytes`, which is up to twice its estimate per entry). A page
//! doubles when full and is freed when it empties (see `store.rs` for
//! why), so a size class holds at most one page that is not full.
//!
//! Eviction is SLRU: new entries enter the probation segment; a hit there
//! promotes the entry to the protected segment (at most ~80% of the
//! capacity, its overflow demoted back to probation's most-recent end);
//! eviction takes probation's least-recent entry first. A scan of names
//! seen once therefore churns only probation and cannot flush the hot set.
//! A hit on an entry already protected moves nothing: it marks the entry
//! (in the same write as its hit count), and a marked entry that reaches
//! protected's tail goes back to the front instead of being demoted (a
//! second chance, CLOCK-like, at most `SECOND_CHANCES` per demotion), so
//! demotion still takes the least recently used entry not hit since, and
//! a hit writes one record instead of relinking three.
//!
//! Each record also carries what the resolver needs to keep an entry warm
//! without a side table that could grow: the fresh hits since the entry
//! was stored (for prefetch) and `refresh_after`, a time before which the
//! upstream is not asked again for this key because it just failed (the
//! RFC 8767 failure recheck timer). Both reset when the entry is replaced.

use core::mem::size_of;

use hashbrown::DefaultHashBuilder;
use heimdall_wire::{Name, QueryKey};

use crate::entry::{Entry, EntryKind, EntryView};
use crate::error::CacheError;
use crate::index::Index;
use crate::policy::CachePolicy;
use crate::store::{self, CALLER_FLAGS, META_LEN, Meta, NIL, Store};
use crate::time::Timestamp;

/// Estimated hash-table bytes per entry: a `u32` and a control byte per
/// bucket, and hashbrown keeps between 8/7 and 16/7 buckets per entry
/// (load factor 7/8, power-of-two growth), so about two.
pub const TABLE_BYTES_PER_ENTRY: usize = 2 * (size_of::<u32>() + 1);

/// A table's first bytes are not counted, like the shard's own struct and
/// the store's class table: a table of a few entries outlives them (a
/// table never shrinks on the query path), and an emptied shard then
/// accounts for nothing.
const TABLE_UNCOUNTED: usize = 1024;

/// Bytes of the table `len` entries settle in under churn. An eviction
/// can leave a tombstone where a plain removal would empty the bucket,
/// and when the table has no room left the index moves its entries to a
/// table of as many buckets only while at most 7/16 of them are in use;
/// past that, of twice as many (hashbrown's own rule, which the index
/// keeps: `index.rs`). A full shard, evicting one entry per insert,
/// therefore ends with the smallest power of two of buckets that its
/// entries fill to at most 7/16: 2.3 to 4.6 buckets of 5 bytes (a `u32` and a control byte)
/// per entry. Measured once (a million one-record inserts into a 16 MiB
/// shard, before this was counted): 182,337 entries reached 2^19 buckets
/// (2.6 MB; the 10 bytes per entry of the estimate made 1.8). Below the
/// size where the estimate is the larger this is not counted, so a small
/// shard's entries each cost [`Cache::entry_bytes`].
fn churn_table_bytes(len: usize) -> usize {
    if len < 1024 {
        return 0;
    }
    let buckets = (len * 16).div_ceil(7).next_power_of_two();
    buckets * (size_of::<u32>() + 1)
}

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

#[cfg(test)]
thread_local! {
    /// Calls of [`handle_hash`] on this thread (each touches a record).
    static RECORDS_HASHED: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

/// How many times this thread hashed a record's key (tests: what an
/// insert costs beyond its own key).
#[cfg(test)]
pub(crate) fn records_hashed() -> usize {
    RECORDS_HASHED.with(core::cell::Cell::get)
}

/// The hash of the key of the entry at `handle` (0 for no entry).
fn handle_hash(hasher: &DefaultHashBuilder, store: &Store, handle: u32) -> u64 {
    #[cfg(test)]
    RECORDS_HASHED.with(|count| count.set(count.get() + 1));
    store.blob(handle).map_or(0, |blob| {
        let entry = EntryView::from_blob(blob);
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

/// In [`Meta::flags`]: the entry is in the protected segment.
const PROTECTED: u32 = 1 << 28;
/// In [`Meta::flags`]: stored from another core's hint, a copy of an
/// answer that core fetched (and may still hold).
const COPIED: u32 = 1 << 27;
/// In [`Meta::flags`]: hit while in the protected segment since it last
/// moved to that segment's front. Such a hit moves nothing; the entry gets
/// a second chance instead when it reaches the segment's tail (see
/// [`Cache::rebalance`]).
const REFERENCED: u32 = 1 << 26;
/// Hits saturate here (about 67 million), in the low bits of
/// [`Meta::flags`].
const MAX_HITS: u32 = REFERENCED - 1;
const _: () = assert!(PROTECTED & CALLER_FLAGS == PROTECTED);
const _: () = assert!(REFERENCED & CALLER_FLAGS == REFERENCED);
/// Referenced entries moved from protected's tail back to its front per
/// call of [`Cache::rebalance`] at most, so that a segment in which every
/// entry was hit is not walked whole before one is demoted.
const SECOND_CHANCES: usize = 8;

fn hits(meta: Meta) -> u32 {
    meta.flags & MAX_HITS
}

fn count_hit(meta: &mut Meta) {
    if hits(*meta) < MAX_HITS {
        meta.flags += 1;
    }
}

fn segment(meta: Meta) -> Segment {
    if meta.flags & PROTECTED != 0 {
        Segment::Protected
    } else {
        Segment::Probation
    }
}

fn copied(meta: Meta) -> bool {
    meta.flags & COPIED != 0
}

/// The refresh mark, kept relative to `stored_at`.
fn refresh_after(meta: Meta, stored_at: Timestamp) -> Timestamp {
    if meta.refresh_after_ms == 0 {
        return Timestamp::ZERO;
    }
    stored_at.add_millis(u64::from(meta.refresh_after_ms))
}

/// One intrusive list: head is the most recently used entry.
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
    Fresh(&'a EntryView),
    /// An expired entry still inside the policy's stale window (RFC 8767);
    /// serve it only when the upstream cannot answer.
    Stale(&'a EntryView),
    /// No usable entry.
    Miss,
}

/// What the shard knows about an entry beside its bytes (its slot), as
/// of a lookup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SlotInfo {
    /// Fresh lookups since the entry was stored, this one included
    /// (saturating at 2^27 - 1); 0 for a miss.
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
    table: Index,
    store: Store,
    hasher: DefaultHashBuilder,
    probation: List,
    protected: List,
    capacity: usize,
    protected_capacity: usize,
    policy: CachePolicy,
    stats: CacheStats,
    /// Entries with `COPIED` set.
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
            table: Index::default(),
            store: Store::default(),
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
            entries: self.store.len(),
            copies: self.copies,
            ..self.stats
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the shard is empty.
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Bytes an entry accounts for once stored: its record in the store
    /// (the [`Cache::SLOT_BYTES`] of links, hit count, refresh mark and
    /// flags, then the entry's bytes: the wire, which also holds the key's
    /// name, type and class, and the trailer; rounded up to a multiple of
    /// 8, plus its share of its page's overhead; a record over 1 KiB has
    /// a heap allocation of its own, counted as glibc lays it out) and
    /// [`TABLE_BYTES_PER_ENTRY`].
    ///
    /// The shard's total ([`CacheStats::bytes`]) is the sum of this over
    /// its entries plus the pages' unused capacity.
    pub fn entry_bytes(entry: &EntryView) -> usize {
        store::record_bytes(entry.blob().len()) + TABLE_BYTES_PER_ENTRY
    }

    /// Bytes of a record's fixed part (links, hit count, refresh mark,
    /// flags), the fixed part of [`Cache::entry_bytes`] beside the table.
    pub const SLOT_BYTES: usize = META_LEN;

    fn bytes(&self) -> usize {
        self.store.bytes() + self.table_bytes()
    }

    /// Bytes the table accounts for: the most of its allocation (beyond
    /// its first [`TABLE_UNCOUNTED`] bytes), [`TABLE_BYTES_PER_ENTRY`] per
    /// entry, and the size churn will give it ([`churn_table_bytes`]).
    /// Counting the churn size from the start keeps a full shard from
    /// growing its store into room its table takes later: the doubling
    /// then costs no burst of evictions and leaves no freed pages behind.
    fn table_bytes(&self) -> usize {
        let len = self.store.len();
        self.table
            .allocation_size()
            .saturating_sub(TABLE_UNCOUNTED)
            .max(len * TABLE_BYTES_PER_ENTRY)
            .max(churn_table_bytes(len))
    }

    fn hash(&self, key: &QueryKey) -> u64 {
        hash_key(&self.hasher, key)
    }

    /// The hash of the key of the entry at `handle`.
    fn handle_hash(&self, handle: u32) -> u64 {
        handle_hash(&self.hasher, &self.store, handle)
    }

    #[inline]
    fn entry(&self, handle: u32) -> Option<&EntryView> {
        self.store.blob(handle).map(EntryView::from_blob)
    }

    fn meta(&self, handle: u32) -> Meta {
        self.store.meta(handle).unwrap_or_default()
    }

    fn find(&self, hash: u64, key: &QueryKey) -> Option<u32> {
        let store = &self.store;
        self.table.find(hash, |handle| {
            store
                .blob(handle)
                .is_some_and(|blob| EntryView::from_blob(blob).matches(key))
        })
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
        let Some(handle) = self.find(hash, key) else {
            self.stats.misses += 1;
            return (Lookup::Miss, SlotInfo::default());
        };
        let Some((fresh, usable)) = self.entry(handle).map(|entry| {
            let fresh = entry.is_fresh(now);
            (fresh, fresh || now < self.stale_until(entry))
        }) else {
            self.stats.misses += 1;
            return (Lookup::Miss, SlotInfo::default());
        };
        if !usable {
            self.remove_slot(handle);
            self.stats.expired += 1;
            self.stats.misses += 1;
            return (Lookup::Miss, SlotInfo::default());
        }
        let referenced = self.touch(handle);
        if fresh {
            self.stats.hits += 1;
        } else {
            self.stats.stale_hits += 1;
        }
        match self.store.update(handle, |meta| {
            if referenced {
                meta.flags |= REFERENCED;
            }
            if fresh {
                count_hit(meta);
            }
        }) {
            Some((meta, blob)) => {
                let entry = EntryView::from_blob(blob);
                let info = SlotInfo {
                    hits: hits(meta),
                    refresh_after: refresh_after(meta, entry.stored_at()),
                };
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
    /// Kept relative to the entry's `stored_at`: a mark further out than
    /// 49 days is brought in (the upstream is only asked sooner).
    pub fn set_refresh_after(&mut self, key: &QueryKey, at: Timestamp) -> bool {
        let Some(handle) = self.find(self.hash(key), key) else {
            return false;
        };
        let Some(stored_at) = self.entry(handle).map(EntryView::stored_at) else {
            return false;
        };
        let delta = at.as_millis().saturating_sub(stored_at.as_millis());
        let meta = Meta {
            refresh_after_ms: u32::try_from(delta).unwrap_or(u32::MAX),
            ..self.meta(handle)
        };
        self.store.set_meta(handle, meta);
        true
    }

    /// Until when `entry` may be served; failures are never served stale,
    /// because an old SERVFAIL says nothing about the name.
    fn stale_until(&self, entry: &EntryView) -> Timestamp {
        match entry.kind() {
            EntryKind::ServFail => entry.expires_at(),
            _ => entry.expires_at().add_secs(self.policy.stale_window),
        }
    }

    /// The entry for `key`, without counting a use or checking time.
    pub fn peek(&self, key: &QueryKey) -> Option<&EntryView> {
        let handle = self.find(self.hash(key), key)?;
        self.entry(handle)
    }

    /// Store `entry` for `key`, replacing any entry for it, evicting as
    /// needed. Returns `Ok(false)` without storing when the entry is
    /// already past its stale window at `now`.
    ///
    /// The entry's bytes are copied into the shard's store (and `entry`
    /// dropped): lookups hand out views of that copy.
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
        self.insert_marked(key, &entry, now, false)
    }

    /// [`Cache::insert`] from a borrowed entry: the shard copies the bytes
    /// either way, so a caller that keeps its entry (to answer waiters,
    /// to send as a hint) need not clone it first.
    pub fn insert_view(
        &mut self,
        key: &QueryKey,
        entry: &EntryView,
        now: Timestamp,
    ) -> Result<bool, CacheError> {
        self.insert_marked(key, entry, now, false)
    }

    /// [`Cache::insert`], marking the entry as a copy from another core.
    fn insert_marked(
        &mut self,
        key: &QueryKey,
        entry: &EntryView,
        now: Timestamp,
        copied: bool,
    ) -> Result<bool, CacheError> {
        if !entry.matches(key) {
            return Err(CacheError::QuestionMismatch);
        }
        let bytes = Self::entry_bytes(entry);
        if bytes > self.capacity {
            return Err(CacheError::TooLarge {
                bytes,
                capacity: self.capacity,
            });
        }
        if now >= self.stale_until(entry) {
            return Ok(false);
        }
        let hash = self.hash(key);
        // A refreshed answer keeps the standing its name earned; a new
        // answer starts its own life (no hits yet, and the upstream just
        // proved it answers).
        let segment = match self.find(hash, key) {
            Some(handle) => {
                let segment = segment(self.meta(handle));
                self.remove_slot(handle);
                segment
            }
            None => Segment::Probation,
        };
        let meta = Meta {
            prev: NIL,
            next: NIL,
            flags: if copied { COPIED } else { 0 },
            refresh_after_ms: 0,
        };
        let Some(handle) = self.store.insert(meta, entry.blob()) else {
            return Ok(false);
        };
        self.copies += usize::from(copied);
        let (store, hasher) = (&self.store, &self.hasher);
        self.table
            .insert(hash, handle, |other| handle_hash(hasher, store, other));
        self.push_front(segment, handle);
        self.stats.inserts += 1;
        self.rebalance(handle);
        self.evict_to_fit(handle);
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
        self.insert_marked(key, &entry, now, true).unwrap_or(false)
    }

    /// Remove the entry for `key`; returns whether there was one.
    pub fn remove(&mut self, key: &QueryKey) -> bool {
        let hash = self.hash(key);
        match self.find(hash, key) {
            Some(handle) => {
                self.remove_slot(handle);
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
        Ok(self.retain(|entry| {
            !Name::from_wire(entry.question_name())
                .is_ok_and(|name| name.is_subdomain_of(&ancestor))
        }))
    }

    /// Every entry held, in no particular order (for persistence). Walks
    /// the whole shard.
    pub fn entries(&self) -> impl Iterator<Item = &EntryView> {
        self.store.handles().filter_map(|handle| self.entry(handle))
    }

    /// Keep only the entries `keep` says yes to; returns how many were
    /// removed. Walks the whole shard: for operator actions and reloads,
    /// not the query path.
    pub fn retain(&mut self, mut keep: impl FnMut(&EntryView) -> bool) -> usize {
        let mut removed = 0usize;
        for class in 0..store::CLASSES {
            let mut index = 0;
            while let Some(handle) = self.store.handle_at(class, index) {
                if self.entry(handle).is_some_and(&mut keep) {
                    index += 1;
                } else {
                    // The class's last record moves into `handle`; look
                    // at it next.
                    self.remove_slot(handle);
                    removed += 1;
                }
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

    /// Every entry accounts for at least a minimal record and its table
    /// share, so capping the bound keeps the entries below the handles the
    /// store has.
    fn capped(capacity_bytes: usize) -> usize {
        capacity_bytes.min(
            (store::MIN_RECORD_BYTES + TABLE_BYTES_PER_ENTRY).saturating_mul(store::MAX_RECORDS),
        )
    }

    /// Remove every entry (counters are kept) and release the store.
    pub fn clear(&mut self) {
        self.table.clear();
        self.store.clear();
        self.copies = 0;
        self.probation = List::EMPTY;
        self.protected = List::EMPTY;
    }

    fn list_mut(&mut self, segment: Segment) -> &mut List {
        match segment {
            Segment::Probation => &mut self.probation,
            Segment::Protected => &mut self.protected,
        }
    }

    fn update(&mut self, handle: u32, change: impl FnOnce(&mut Meta)) {
        let _ = self.store.update(handle, change);
    }

    fn set_prev(&mut self, handle: u32, prev: u32) {
        self.update(handle, |meta| meta.prev = prev);
    }

    fn set_next(&mut self, handle: u32, next: u32) {
        self.update(handle, |meta| meta.next = next);
    }

    /// Bytes of the entry at `handle` as [`Cache::entry_bytes`] counts
    /// them.
    fn bytes_of(&self, handle: u32) -> usize {
        self.entry(handle).map_or(0, Self::entry_bytes)
    }

    /// Take `handle` out of its list (its bytes leave the list's total).
    fn unlink(&mut self, handle: u32) {
        let Some(segment) = self.detach(handle) else {
            return;
        };
        let bytes = self.bytes_of(handle);
        let list = self.list_mut(segment);
        list.bytes = list.bytes.saturating_sub(bytes);
    }

    /// Take `handle` out of its list's links, leaving its bytes in the
    /// list's total; the segment it was in.
    fn detach(&mut self, handle: u32) -> Option<Segment> {
        let meta = self.store.meta(handle)?;
        let (prev, next, segment) = (meta.prev, meta.next, segment(meta));
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
        self.store.set_meta(
            handle,
            Meta {
                prev: NIL,
                next: NIL,
                ..meta
            },
        );
        Some(segment)
    }

    /// Put an unlinked `handle` at the most recently used end of
    /// `segment`.
    fn push_front(&mut self, segment: Segment, handle: u32) {
        if self.attach(segment, handle) {
            let bytes = self.bytes_of(handle);
            self.list_mut(segment).bytes += bytes;
        }
    }

    /// Link a detached `handle` at the most recently used end of
    /// `segment`, its bytes not added to the list's total; whether it is
    /// a record.
    fn attach(&mut self, segment: Segment, handle: u32) -> bool {
        let old_head = self.list_mut(segment).head;
        let Some(mut meta) = self.store.meta(handle) else {
            return false;
        };
        meta.flags = match segment {
            Segment::Protected => meta.flags | PROTECTED,
            Segment::Probation => meta.flags & !PROTECTED,
        } & !REFERENCED;
        meta.prev = NIL;
        meta.next = old_head;
        self.store.set_meta(handle, meta);
        if old_head != NIL {
            self.set_prev(old_head, handle);
        }
        let list = self.list_mut(segment);
        list.head = handle;
        if list.tail == NIL {
            list.tail = handle;
        }
        true
    }

    /// Record a use of `handle`: promote it from probation to the front of
    /// protected, or, for an entry already protected, return true: the
    /// caller marks it [`REFERENCED`] in the same write as its hit count.
    /// A hit in protected moving the entry to the front wrote the links of
    /// three records (its own, its neighbours', the old head), most of them
    /// cache misses in a hot set: 2.1 % of a core answering hits at
    /// saturation. Marked, the entry is moved only if it reaches the tail
    /// (a second chance: CLOCK inside the segment), which keeps the order
    /// LRU's for the entries that matter to demotion.
    fn touch(&mut self, handle: u32) -> bool {
        if self.protected.head == handle {
            return false;
        }
        if segment(self.meta(handle)) == Segment::Protected {
            return true;
        }
        self.relist(handle, Segment::Protected);
        self.rebalance(handle);
        false
    }

    /// Move `handle` to the most recently used end of `to`; its bytes move
    /// with it when it changes segment (read once), and stay put when it
    /// does not.
    fn relist(&mut self, handle: u32, to: Segment) {
        let Some(from) = self.detach(handle) else {
            return;
        };
        if from == to {
            self.attach(to, handle);
            return;
        }
        let bytes = self.bytes_of(handle);
        let from_list = self.list_mut(from);
        from_list.bytes = from_list.bytes.saturating_sub(bytes);
        if self.attach(to, handle) {
            self.list_mut(to).bytes += bytes;
        }
    }

    /// Demote protected's least recent entries to probation's front until
    /// protected fits its share; `keep` (just used) is never demoted. A
    /// [`REFERENCED`] entry at the tail goes back to protected's front with
    /// its mark cleared instead (at most [`SECOND_CHANCES`] per call).
    fn rebalance(&mut self, keep: u32) {
        let mut chances = 0;
        while self.protected.bytes > self.protected_capacity {
            let victim = self.protected.tail;
            if victim == NIL || victim == keep {
                break;
            }
            if chances < SECOND_CHANCES && self.meta(victim).flags & REFERENCED != 0 {
                // Back to the front (`attach` clears the mark).
                self.relist(victim, Segment::Protected);
                chances += 1;
                continue;
            }
            self.relist(victim, Segment::Probation);
        }
    }

    /// Evict least recent entries, probation first, until the bound holds;
    /// `keep` (just stored) is evicted last, never. The bound counts the
    /// unused part of each class's last page too, so a page that doubles
    /// costs evictions worth its growth, and a page that empties is freed.
    fn evict_to_fit(&mut self, mut keep: u32) {
        while self.bytes() > self.capacity {
            // An operator's shrink gives the pages' spare room and the
            // table's back before it evicts; the query path keeps them for
            // the records to come.
            if keep == NIL {
                let before = self.bytes();
                if self.store.spare() > 0 {
                    self.store.trim();
                }
                self.shrink_table();
                if self.bytes() < before {
                    continue;
                }
            }
            let Some(victim) = [self.probation.tail, self.protected.tail]
                .into_iter()
                .find(|&victim| victim != NIL && victim != keep)
            else {
                break;
            };
            let moved = self.remove_slot(victim);
            self.stats.evictions += 1;
            if moved == Some(keep) {
                keep = victim;
            }
        }
        if keep == NIL {
            // An operator's shrink: the page lists give their spare room
            // back too (the query path keeps it for the next pages).
            self.store.shrink_to_fit();
        }
    }

    /// Give back the table's buckets beyond what its entries need (an
    /// operator's shrink only: it rehashes every entry).
    fn shrink_table(&mut self) {
        let (store, hasher) = (&self.store, &self.hasher);
        self.table.shrink_to(self.table.len(), |handle| {
            handle_hash(hasher, store, handle)
        });
    }

    /// Remove the entry at `handle` everywhere. The store moves another
    /// entry of the same class into its place: returns that entry's former
    /// handle, after repointing the table and its neighbours.
    fn remove_slot(&mut self, handle: u32) -> Option<u32> {
        let meta = self.store.meta(handle)?;
        let hash = self.handle_hash(handle);
        self.copies -= usize::from(copied(meta));
        self.unlink(handle);
        self.table.remove(hash, handle);
        let from = self.store.remove(handle)?;
        // The entry that was at `from` now lives at `handle`.
        let moved_hash = self.handle_hash(handle);
        self.table.repoint(moved_hash, from, handle);
        let moved = self.meta(handle);
        let segment = segment(moved);
        if moved.prev == NIL {
            self.list_mut(segment).head = handle;
        } else {
            self.set_next(moved.prev, handle);
        }
        if moved.next == NIL {
            self.list_mut(segment).tail = handle;
        } else {
            self.set_prev(moved.next, handle);
        }
        Some(from)
    }
}

#[cfg(test)]
impl Cache {
    /// Walk every structure and check it agrees with the others: list
    /// links both ways, segment tags, byte totals, the table's handles,
    /// the store's totals, and the byte bound.
    pub(crate) fn check_invariants(&self) {
        self.store.check();
        let handles: Vec<u32> = self.store.handles().collect();
        assert_eq!(
            handles
                .iter()
                .filter(|&&handle| copied(self.meta(handle)))
                .count(),
            self.copies,
            "copies miscounted"
        );
        let mut seen = std::collections::HashSet::new();
        for (segment_, list) in [
            (Segment::Probation, self.probation),
            (Segment::Protected, self.protected),
        ] {
            let (mut handle, mut prev, mut bytes) = (list.head, NIL, 0usize);
            while handle != NIL {
                let meta = self.store.meta(handle).expect("linked handle held");
                assert!(seen.insert(handle), "{handle:#x} linked twice");
                assert_eq!(segment(meta), segment_, "{handle:#x} in the wrong list");
                assert_eq!(meta.prev, prev, "{handle:#x} prev link");
                bytes += self.bytes_of(handle);
                prev = handle;
                handle = meta.next;
            }
            assert_eq!(list.tail, prev, "{segment_:?} tail");
            assert_eq!(list.bytes, bytes, "{segment_:?} bytes");
        }
        assert_eq!(seen.len(), handles.len(), "an entry is in no list");
        assert_eq!(self.table.len(), handles.len());
        for &handle in &handles {
            let found = self
                .table
                .find(self.handle_hash(handle), |other| other == handle);
            assert_eq!(found, Some(handle), "{handle:#x} not in table");
        }
        let mut indexed: Vec<u32> = self.table.handles().collect();
        indexed.sort_unstable();
        indexed.dedup();
        assert_eq!(indexed.len(), handles.len(), "a handle indexed twice");
        assert!(self.bytes() <= self.capacity, "over capacity");
    }

    /// Whether the entry for `key` is in the protected segment.
    pub(crate) fn is_protected(&self, key: &QueryKey) -> bool {
        self.find(self.hash(key), key)
            .is_some_and(|handle| segment(self.meta(handle)) == Segment::Protected)
    }
}
