//! Where a shard keeps its entries' bytes: [`Store`], records packed by
//! size class into small pages and addressed by a `u32` handle.
//!
//! A record is a 16-byte [`Meta`] (the shard's list links, hit count,
//! flags and refresh mark) followed by the entry's bytes (wire and
//! trailer, see `entry.rs`) and up to 7 bytes of padding. Records up to
//! [`MAX_STRIDE`] bytes are rounded up to a multiple of 8 (their class's
//! stride) and packed back to back in the pages of that class, and every
//! page but the last is full. A larger record gets a page of its own, of
//! its exact size.
//!
//! Pages come in a few sizes only, each a whole number of 4 KiB malloc
//! chunks (4 KiB for strides up to 255 bytes, 8, 16 or 32 KiB above, so
//! that a page holds at least 16 records and at most 1/16 of it is left
//! over at its end). A page another class freed then fits a new page
//! exactly. With a page of a power of two of records, as before, page
//! sizes ranged from 2 to 4 KiB by stride: a churning shard reused one
//! class's freed page for another's smaller one, and the remainders (about
//! 1,450 chunks of 1.5 KB per 16 MiB core after a flood, 18 % of the
//! store) fitted no page and stayed in the arena.
//!
//! Removal moves the class's last record into the hole (like
//! `Vec::swap_remove`), so a class never has gaps and no compaction is
//! ever needed; the caller is told which handle moved so it can repoint
//! its table and links. A class's first page doubles when it is full (up
//! to its size); every later page is allocated whole. A page never
//! shrinks but to nothing, when its last record leaves, so a class holds
//! at most one page that is not full, and
//! [`Store::bytes`] counts that page's unused part. A full shard thus
//! stores and evicts without a `realloc` per miss: the first version
//! grew the last page by one record per insert once the shard was full
//! and shrank it by one per eviction, a copy of up to 4 KiB whenever
//! glibc could not resize in place. [`Store::trim`] (an operator's
//! shrink only) gives the unused parts back.
//!
//! Against one heap allocation per entry this saves malloc's 8-byte
//! header and its rounding to 16, and the 16-byte fat pointer a slot held;
//! a record costs its stride plus a share of its page's overhead.
//!
//! A handle is the class (7 bits) and the record's index in it (24 bits),
//! or, with the top bit set, the index of a large record (31 bits). A
//! class that holds 16 million records (a shard of many gigabytes) puts
//! further records of its size in pages of their own. The class table
//! (126 page lists, about 5 KiB) comes with the first record and goes
//! with the last; like the shard's own struct it is not counted.

use core::mem::size_of;

/// Bytes of the [`Meta`] at the start of every record.
pub(crate) const META_LEN: usize = 16;
/// Record sizes are rounded up to a multiple of this.
const GRANULE: usize = 8;
/// The smallest class's stride.
const MIN_STRIDE: usize = 32;
/// The largest class's stride; a larger record has a page of its own.
pub(crate) const MAX_STRIDE: usize = 1024;
/// Classes of records packed in shared pages.
const PACKED_CLASSES: usize = (MAX_STRIDE - MIN_STRIDE) / GRANULE + 1;
/// The class of records with a page each.
const LARGE: usize = PACKED_CLASSES;
/// Classes, the large one included.
pub(crate) const CLASSES: usize = LARGE + 1;
/// The least a record costs.
pub(crate) const MIN_RECORD_BYTES: usize = MIN_STRIDE;
/// Page sizes are multiples of this malloc chunk size.
const PAGE_UNIT: usize = 4096;
/// A page's size is the smallest that holds at least this many records.
const MIN_PER_PAGE: usize = 16;
/// malloc's chunk header: a page of `n` units asks for this much less, so
/// its chunk is exactly `n` units.
const CHUNK_HEADER: usize = 8;
/// Handle of a packed record: its class above this many bits of index.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
/// Handle of a large record: this bit and 31 bits of index.
const LARGE_BIT: u32 = 1 << 31;
/// No record; never a handle.
pub(crate) const NIL: u32 = u32::MAX;
/// Largest index of a large record (keeps every handle below [`NIL`]).
const LARGE_MAX_INDEX: u32 = !LARGE_BIT - 1;
/// Records a store can hold at most (more than a 64 GiB shard of the
/// smallest entries needs).
pub(crate) const MAX_RECORDS: usize = LARGE_MAX_INDEX as usize;
/// What a page costs beside its records and the room left at its end:
/// its `Vec` header in the class's page list (24 bytes, and an eighth
/// more of list capacity) and malloc's 8-byte chunk header.
const PAGE_OVERHEAD: usize = 35;
/// In [`Meta::flags`]: the record's padding (0 to 7 bytes), kept by the
/// store; the bits below are the caller's.
const PAD_SHIFT: u32 = 29;
/// The bits of [`Meta::flags`] the caller may use.
pub(crate) const CALLER_FLAGS: u32 = (1 << PAD_SHIFT) - 1;

/// The fixed part of a record: what the shard knows about an entry beside
/// its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Toward the most recently used end of the entry's list.
    pub(crate) prev: u32,
    /// Toward the least recently used end.
    pub(crate) next: u32,
    /// The caller's bits ([`CALLER_FLAGS`]); the top three are the
    /// record's padding.
    pub(crate) flags: u32,
    /// The caller's refresh mark.
    pub(crate) refresh_after_ms: u32,
}

/// The native-endian `u32` at `at` of `record` (0 past its end).
#[inline]
fn word(record: &[u8], at: usize) -> u32 {
    record
        .get(at..at + 4)
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map_or(0, u32::from_ne_bytes)
}

impl Meta {
    fn read(record: &[u8]) -> Self {
        let word = |at| word(record, at);
        Self {
            prev: word(0),
            next: word(4),
            flags: word(8),
            refresh_after_ms: word(12),
        }
    }

    fn bytes(self) -> [u8; META_LEN] {
        let mut out = [0u8; META_LEN];
        for (chunk, word) in
            out.chunks_exact_mut(4)
                .zip([self.prev, self.next, self.flags, self.refresh_after_ms])
        {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        out
    }

    fn pad(self) -> usize {
        (self.flags >> PAD_SHIFT) as usize
    }
}

/// Where a record of `blob_len` entry bytes goes: its class and stride
/// (for a large record, its exact length).
fn class_of(blob_len: usize) -> (usize, usize) {
    let len = META_LEN + blob_len;
    let stride = len.div_ceil(GRANULE) * GRANULE;
    if (MIN_STRIDE..=MAX_STRIDE).contains(&stride) {
        ((stride - MIN_STRIDE) / GRANULE, stride)
    } else {
        // Too large for shared pages, or too small for the padding's
        // three bits (never an entry: a trailer alone is 10 bytes).
        (LARGE, len)
    }
}

/// The records a page of class `stride` holds, and the page's bytes (a
/// whole number of [`PAGE_UNIT`] chunks, their headers left out).
fn page_layout(stride: usize) -> (usize, usize) {
    let mut units = 1;
    while (units * PAGE_UNIT - CHUNK_HEADER) / stride.max(1) < MIN_PER_PAGE {
        units *= 2;
    }
    let bytes = units * PAGE_UNIT - CHUNK_HEADER;
    (bytes / stride.max(1), bytes)
}

/// glibc malloc's chunk for a request of `len` bytes on a 64-bit target:
/// the request plus an 8-byte size header, rounded up to 16, at least 32.
pub(crate) const fn allocation_bytes(len: usize) -> usize {
    let chunk = (len + 8 + 15) & !15;
    if chunk < 32 { 32 } else { chunk }
}

/// Bytes a record of an entry of `blob_len` bytes costs once stored: a
/// packed record its stride and its share of its page's overhead; a large
/// one its allocation as glibc lays it out and its page's `Vec` header.
pub(crate) fn record_bytes(blob_len: usize) -> usize {
    match class_of(blob_len) {
        (LARGE, len) => allocation_bytes(len) + size_of::<Vec<u8>>(),
        (_, stride) => {
            let (per_page, page_bytes) = page_layout(stride);
            stride + (PAGE_OVERHEAD + page_bytes - per_page * stride).div_ceil(per_page)
        }
    }
}

/// One class: its records, in pages.
#[derive(Debug, Default)]
struct Class {
    /// Bytes per record (0 for the large class: one record per page).
    stride: usize,
    /// Records per page.
    per_page: u32,
    /// Bytes of a page.
    page_bytes: usize,
    /// Records held.
    len: u32,
    pages: Vec<Vec<u8>>,
}

impl Class {
    fn new(class: usize) -> Self {
        if class == LARGE {
            return Self::default();
        }
        let stride = MIN_STRIDE + class * GRANULE;
        let (per_page, page_bytes) = page_layout(stride);
        Self {
            stride,
            per_page: per_page as u32,
            page_bytes,
            len: 0,
            pages: Vec::new(),
        }
    }

    /// The record at `index`: its page and byte range.
    fn locate(&self, index: u32) -> Option<(usize, usize)> {
        if self.stride == 0 {
            let page = self.pages.get(index as usize)?;
            return Some((index as usize, page.len()));
        }
        let per_page = self.per_page.max(1);
        let page = (index / per_page) as usize;
        let start = (index % per_page) as usize * self.stride;
        Some((page, start))
    }

    fn record(&self, index: u32) -> Option<&[u8]> {
        if index >= self.len {
            return None;
        }
        let (page, start) = self.locate(index)?;
        let page = self.pages.get(page)?;
        if self.stride == 0 {
            return Some(page);
        }
        page.get(start..start + self.stride)
    }

    fn record_mut(&mut self, index: u32) -> Option<&mut [u8]> {
        if index >= self.len {
            return None;
        }
        let (page, start) = self.locate(index)?;
        let stride = self.stride;
        let page = self.pages.get_mut(page)?;
        if stride == 0 {
            return Some(page);
        }
        page.get_mut(start..start + stride)
    }

    /// Bytes of a full page's records.
    fn full(&self) -> usize {
        self.per_page as usize * self.stride
    }

    /// Unused capacity of the last page (the only one that may have any):
    /// none once it is full, whose room left at the end its records pay
    /// for ([`record_bytes`]).
    fn spare(&self) -> usize {
        self.pages.last().map_or(0, |page| {
            if page.len() >= self.full() {
                0
            } else {
                page.capacity() - page.len()
            }
        })
    }
}

/// The records of one shard.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// Every packed class, then the large class; empty while nothing is
    /// stored.
    classes: Vec<Class>,
    /// Records held.
    len: usize,
    /// [`record_bytes`] of every record held.
    record_bytes: usize,
    /// Unused capacity of last pages, all classes together.
    spare: usize,
    /// Classes whose last page has unused capacity (bit per class).
    spare_classes: u128,
}

/// A class index as a bit of [`Store::spare_classes`] (the large class
/// never has spare pages).
fn class_bit(class: usize) -> u128 {
    1u128.checked_shl(class as u32).unwrap_or(0)
}

impl Store {
    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held: every record's [`record_bytes`] and the unused
    /// capacity of last pages.
    pub(crate) fn bytes(&self) -> usize {
        self.record_bytes + self.spare
    }

    /// Unused capacity of last pages (given back by [`Store::trim`]).
    pub(crate) fn spare(&self) -> usize {
        self.spare
    }

    fn class_of_handle(handle: u32) -> (usize, u32) {
        if handle & LARGE_BIT != 0 {
            (LARGE, handle & !LARGE_BIT)
        } else {
            ((handle >> INDEX_BITS) as usize, handle & INDEX_MASK)
        }
    }

    fn handle(class: usize, index: u32) -> u32 {
        if class == LARGE {
            LARGE_BIT | index
        } else {
            ((class as u32) << INDEX_BITS) | index
        }
    }

    fn record(&self, handle: u32) -> Option<&[u8]> {
        let (class, index) = Self::class_of_handle(handle);
        self.classes.get(class)?.record(index)
    }

    /// The meta of the record at `handle`, and the entry's bytes.
    #[cfg(test)]
    pub(crate) fn get(&self, handle: u32) -> Option<(Meta, &[u8])> {
        let record = self.record(handle)?;
        let meta = Meta::read(record);
        let end = record.len().checked_sub(meta.pad())?;
        Some((meta, record.get(META_LEN..end)?))
    }

    /// The entry's bytes of the record at `handle`.
    #[inline]
    pub(crate) fn blob(&self, handle: u32) -> Option<&[u8]> {
        let record = self.record(handle)?;
        let pad = (word(record, 8) >> PAD_SHIFT) as usize;
        record.get(META_LEN..record.len().checked_sub(pad)?)
    }

    /// The meta of the record at `handle`.
    #[inline]
    pub(crate) fn meta(&self, handle: u32) -> Option<Meta> {
        self.record(handle).map(Meta::read)
    }

    /// Change the meta of the record at `handle` (its padding is kept);
    /// returns the new meta and the entry's bytes.
    #[inline]
    pub(crate) fn update(
        &mut self,
        handle: u32,
        change: impl FnOnce(&mut Meta),
    ) -> Option<(Meta, &[u8])> {
        let (class, index) = Self::class_of_handle(handle);
        let record = self.classes.get_mut(class)?.record_mut(index)?;
        let before = Meta::read(record);
        let mut meta = before;
        change(&mut meta);
        meta.flags = (meta.flags & CALLER_FLAGS) | (before.flags & !CALLER_FLAGS);
        if meta != before {
            record.get_mut(..META_LEN)?.copy_from_slice(&meta.bytes());
        }
        let end = record.len().checked_sub(meta.pad())?;
        let record: &[u8] = record;
        Some((meta, record.get(META_LEN..end)?))
    }

    /// Overwrite the meta of the record at `handle` (its padding kept).
    #[inline]
    pub(crate) fn set_meta(&mut self, handle: u32, meta: Meta) {
        let (class, index) = Self::class_of_handle(handle);
        let Some(record) = self
            .classes
            .get_mut(class)
            .and_then(|class| class.record_mut(index))
        else {
            return;
        };
        let pad = Meta::read(record).flags & !CALLER_FLAGS;
        let meta = Meta {
            flags: (meta.flags & CALLER_FLAGS) | pad,
            ..meta
        };
        if let Some(head) = record.get_mut(..META_LEN) {
            head.copy_from_slice(&meta.bytes());
        }
    }

    /// Store a record of `meta` and `blob`; returns its handle. A page
    /// that is full doubles (up to its size), and its unused part counts
    /// as spare until records fill it. `None` when no handle is left (more
    /// than two billion records).
    pub(crate) fn insert(&mut self, meta: Meta, blob: &[u8]) -> Option<u32> {
        if self.classes.is_empty() {
            self.classes = (0..=LARGE).map(Class::new).collect();
        }
        let (mut class, stride) = class_of(blob.len());
        if class != LARGE
            && self
                .classes
                .get(class)
                .is_none_or(|packed| packed.len > INDEX_MASK)
        {
            // A class this full (16 million records) spills over into
            // pages of their own.
            class = LARGE;
        }
        let handle = if class == LARGE {
            self.insert_large(meta, blob)?
        } else {
            self.insert_packed(class, stride, meta, blob)?
        };
        self.len += 1;
        self.record_bytes += record_bytes(blob.len());
        Some(handle)
    }

    fn insert_large(&mut self, meta: Meta, blob: &[u8]) -> Option<u32> {
        let large = self.classes.get_mut(LARGE)?;
        if large.len > LARGE_MAX_INDEX {
            return None;
        }
        let meta = Meta {
            flags: meta.flags & CALLER_FLAGS,
            ..meta
        };
        let mut page = Vec::with_capacity(META_LEN + blob.len());
        page.extend_from_slice(&meta.bytes());
        page.extend_from_slice(blob);
        if large.pages.len() == large.pages.capacity() {
            large.pages.reserve_exact((large.pages.len() / 8).max(1));
        }
        large.pages.push(page);
        let index = large.len;
        large.len += 1;
        Some(Self::handle(LARGE, index))
    }

    fn insert_packed(
        &mut self,
        class: usize,
        stride: usize,
        meta: Meta,
        blob: &[u8],
    ) -> Option<u32> {
        let packed = self.classes.get_mut(class)?;
        let index = packed.len;
        let per_page = packed.per_page.max(1);
        let page_index = (index / per_page) as usize;
        let page_bytes = packed.page_bytes;
        let spare_before = packed.spare();
        if page_index == packed.pages.len() {
            if packed.pages.len() == packed.pages.capacity() {
                packed.pages.reserve_exact((packed.pages.len() / 8).max(1));
            }
            // A class's first page grows by doubling: the class may only
            // ever hold a few records. A later one is a whole page at
            // once, of the size every page of the class has.
            let page = if page_index == 0 {
                Vec::new()
            } else {
                Vec::with_capacity(page_bytes)
            };
            packed.pages.push(page);
        }
        let page = packed.pages.get_mut(page_index)?;
        if page.len() == page.capacity() {
            // Double, up to the page's size: a page fills with a few
            // allocations, and a full shard stores without a `realloc`
            // per insert (its owner evicts for the spare, which it
            // counts). Pages never shrink but when they empty (or an
            // operator trims the cache).
            let held = page.len() / stride;
            let records = (2 * held + 1).min(per_page as usize);
            let target = if records == per_page as usize {
                page_bytes
            } else {
                records * stride
            };
            page.reserve_exact(target.saturating_sub(page.len()));
        }
        let pad = stride - META_LEN - blob.len();
        let meta = Meta {
            flags: (meta.flags & CALLER_FLAGS) | ((pad as u32) << PAD_SHIFT),
            ..meta
        };
        page.extend_from_slice(&meta.bytes());
        page.extend_from_slice(blob);
        page.resize(page.len() + pad, 0);
        packed.len += 1;
        let spare_after = packed.spare();
        self.spare = self.spare + spare_after - spare_before;
        if spare_after > 0 {
            self.spare_classes |= class_bit(class);
        } else {
            self.spare_classes &= !class_bit(class);
        }
        Some(Self::handle(class, index))
    }

    /// Remove the record at `handle`. The class's last record moves into
    /// its place: returns that record's former handle, or `None` when
    /// nothing moved (or there was no such record). Never allocates;
    /// freed capacity waits for [`Store::trim`] unless a page empties.
    pub(crate) fn remove(&mut self, handle: u32) -> Option<u32> {
        let (class_index, index) = Self::class_of_handle(handle);
        let class = self.classes.get_mut(class_index)?;
        if index >= class.len {
            return None;
        }
        let last = class.len - 1;
        let blob_len = class.record(index).map_or(0, |record| {
            record
                .len()
                .saturating_sub(META_LEN + Meta::read(record).pad())
        });
        if class.stride == 0 {
            drop(class.pages.swap_remove(index as usize));
        } else {
            let stride = class.stride;
            let spare_before = class.spare();
            if index != last {
                let mut moving = [0u8; MAX_STRIDE];
                let moving = moving.get_mut(..stride)?;
                moving.copy_from_slice(class.record(last)?);
                class.record_mut(index)?.copy_from_slice(moving);
            }
            let page = class.pages.last_mut()?;
            page.truncate(page.len().saturating_sub(stride));
            if page.is_empty() {
                drop(class.pages.pop());
            }
            let spare_after = class.spare();
            self.spare = self.spare + spare_after - spare_before;
            if spare_after > 0 {
                self.spare_classes |= class_bit(class_index);
            } else {
                self.spare_classes &= !class_bit(class_index);
            }
        }
        class.len = last;
        if class.len == 0 {
            class.pages = Vec::new();
        }
        self.len -= 1;
        self.record_bytes -= record_bytes(blob_len).min(self.record_bytes);
        if self.len == 0 {
            // An empty store holds nothing at all.
            self.classes = Vec::new();
            self.spare = 0;
            self.spare_classes = 0;
        }
        (index != last).then(|| Self::handle(class_index, last))
    }

    /// Give every last page's unused capacity back to the allocator.
    pub(crate) fn trim(&mut self) {
        while self.spare_classes != 0 {
            let class = self.spare_classes.trailing_zeros() as usize;
            self.spare_classes &= !class_bit(class);
            if let Some(class) = self.classes.get_mut(class) {
                let before = class.spare();
                if let Some(page) = class.pages.last_mut() {
                    page.shrink_to_fit();
                }
                self.spare = self.spare + class.spare() - before;
            }
        }
    }

    /// [`Store::trim`], and every page list down to its length.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.trim();
        for class in &mut self.classes {
            class.pages.shrink_to_fit();
        }
    }

    /// Drop every record.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// The handle of the record at `index` of `class`, if it holds one.
    pub(crate) fn handle_at(&self, class: usize, index: u32) -> Option<u32> {
        (index < self.classes.get(class)?.len).then(|| Self::handle(class, index))
    }

    /// Every handle held, class by class.
    pub(crate) fn handles(&self) -> impl Iterator<Item = u32> + '_ {
        self.classes
            .iter()
            .enumerate()
            .flat_map(|(class, held)| (0..held.len).map(move |index| Self::handle(class, index)))
    }

    /// Recount what the running totals say (for the shard's invariant
    /// checks).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let mut len = 0usize;
        let mut bytes = 0usize;
        let mut spare = 0usize;
        for (index, class) in self.classes.iter().enumerate() {
            len += class.len as usize;
            spare += class.spare();
            if class.stride != 0 {
                let per_page = class.per_page as usize;
                let pages = (class.len as usize).div_ceil(per_page);
                assert_eq!(class.pages.len(), pages, "class {index} pages");
                for (at, page) in class.pages.iter().enumerate() {
                    if at + 1 < pages {
                        assert_eq!(page.len(), per_page * class.stride, "full page");
                        assert_eq!(page.capacity(), class.page_bytes, "full page capacity");
                    }
                }
            } else {
                assert_eq!(class.pages.len(), class.len as usize);
            }
            for handle in (0..class.len).map(|at| Self::handle(index, at)) {
                let blob = self.blob(handle).unwrap_or_default();
                assert_eq!(class_of(blob.len()).0, index, "record in the wrong class");
                bytes += record_bytes(blob.len());
            }
            if class.spare() > 0 {
                assert_ne!(self.spare_classes & class_bit(index), 0, "spare class");
            }
        }
        assert_eq!(len, self.len, "store length");
        assert_eq!(bytes, self.record_bytes, "store record bytes");
        assert_eq!(spare, self.spare, "store spare bytes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_strides_and_costs() {
        assert_eq!(class_of(38 + 10), (4, 64));
        assert_eq!(class_of(49 + 10), (6, 80));
        assert_eq!(
            class_of(MAX_STRIDE - META_LEN),
            (PACKED_CLASSES - 1, MAX_STRIDE)
        );
        assert_eq!(class_of(MAX_STRIDE - META_LEN + 1).0, LARGE);
        // 4 KiB chunks up to a stride of 255, 32 KiB for the largest.
        assert_eq!(page_layout(64), (63, 4088));
        assert_eq!(page_layout(255), (16, 4088));
        assert_eq!(page_layout(256), (31, 8184));
        assert_eq!(page_layout(MAX_STRIDE), (31, 32760));
        for stride in (MIN_STRIDE..=MAX_STRIDE).step_by(GRANULE) {
            let (per_page, bytes) = page_layout(stride);
            assert_eq!(allocation_bytes(bytes) % PAGE_UNIT, 0, "stride {stride}");
            assert!(per_page >= MIN_PER_PAGE && bytes - per_page * stride < bytes / 16);
        }
        // The page's overhead (35) and its 56 bytes left over, over 63.
        assert_eq!(record_bytes(48), 64 + 2);
        assert!(PACKED_CLASSES <= 128 && (PACKED_CLASSES as u32) < (1 << (31 - INDEX_BITS)));
    }

    #[test]
    fn records_move_into_holes_and_space_comes_back() {
        let mut store = Store::default();
        let blob = |n: u8, len: usize| vec![n; len];
        let handles: Vec<u32> = (0..100u8)
            .map(|n| {
                let len = if n % 10 == 0 { 2_000 } else { 40 };
                store.insert(Meta::default(), &blob(n, len)).unwrap()
            })
            .collect();
        store.check();
        // The last pages doubled: their spare room waits for records.
        assert!(store.spare() > 0);
        store.trim();
        assert_eq!(store.spare(), 0);
        let (meta, first) = store.get(handles[1]).unwrap();
        assert_eq!((meta.pad(), first), (0, &blob(1, 40)[..]));
        // Removing the first packed record moves the class's last one in.
        let moved = store.remove(handles[1]).unwrap();
        assert_eq!(moved, handles[99]);
        assert_eq!(store.blob(handles[1]).unwrap(), &blob(99, 40)[..]);
        assert!(store.blob(handles[99]).is_none());
        assert!(store.spare() > 0);
        store.check();
        store.trim();
        assert_eq!(store.spare(), 0);
        store.check();
        // Large records swap whole pages.
        assert_eq!(store.remove(handles[0]), Some(handles[90]));
        assert_eq!(store.blob(handles[0]).unwrap(), &blob(90, 2_000)[..]);
        let mut meta = Meta {
            prev: 7,
            flags: u32::MAX,
            ..Meta::default()
        };
        store.set_meta(handles[0], meta);
        meta.flags = CALLER_FLAGS;
        assert_eq!(store.meta(handles[0]), Some(meta));
        store.check();
        let all: Vec<u32> = store.handles().collect();
        assert_eq!(all.len(), 98);
        while let Some(&handle) = store.handles().collect::<Vec<_>>().first() {
            store.remove(handle);
        }
        assert_eq!((store.len(), store.bytes()), (0, 0));
        assert!(store.classes.is_empty());
    }

    /// Random inserts, removals and trims against a model of what each
    /// handle holds: the moves the store reports keep the model right.
    #[test]
    fn random_work_keeps_every_record_where_its_handle_says() {
        let mut store = Store::default();
        let mut model: Vec<(u32, Vec<u8>, u32)> = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |bound: u64| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x9e37_79b9_7f4a_7c15) % bound
        };
        for step in 0..20_000u32 {
            match next(10) {
                0..=5 => {
                    let len = match next(20) {
                        0 => 1_000 + next(3_000) as usize,
                        _ => 9 + next(400) as usize,
                    };
                    let blob: Vec<u8> = (0..len).map(|at| (at as u32 ^ step) as u8).collect();
                    let meta = Meta {
                        prev: step,
                        flags: step & CALLER_FLAGS,
                        ..Meta::default()
                    };
                    let handle = store.insert(meta, &blob).unwrap();
                    model.push((handle, blob, step));
                }
                6..=8 if !model.is_empty() => {
                    let at = next(model.len() as u64) as usize;
                    let (handle, _, _) = model.swap_remove(at);
                    if let Some(from) = store.remove(handle) {
                        let moved = model.iter_mut().find(|(held, _, _)| *held == from).unwrap();
                        moved.0 = handle;
                    }
                }
                _ => store.trim(),
            }
            if step % 500 == 0 || model.len() < 5 {
                store.check();
                for (handle, blob, _) in &model {
                    assert_eq!(store.blob(*handle), Some(&blob[..]), "step {step}");
                }
            }
            assert_eq!(store.len(), model.len());
        }
        for (handle, blob, step) in &model {
            let (meta, held) = store.get(*handle).unwrap();
            assert_eq!(held, &blob[..]);
            assert_eq!(
                (meta.prev, meta.flags & CALLER_FLAGS),
                (*step, step & CALLER_FLAGS)
            );
        }
        store.check();
        let expected: usize = model
            .iter()
            .map(|(_, blob, _)| record_bytes(blob.len()))
            .sum();
        store.trim();
        assert_eq!(store.bytes(), expected);
    }

    #[test]
    fn padding_is_kept_apart_from_the_callers_flags() {
        let mut store = Store::default();
        let handle = store
            .insert(
                Meta {
                    flags: u32::MAX,
                    ..Meta::default()
                },
                &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            )
            .unwrap();
        let (meta, blob) = store.get(handle).unwrap();
        assert_eq!(blob, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(meta.flags & CALLER_FLAGS, CALLER_FLAGS);
        assert_eq!(meta.pad(), 32 - 16 - 11);
        // Room to grow: the page takes more than the one record.
        for _ in 0..20 {
            store.insert(Meta::default(), &[0; 11]).unwrap();
        }
        store.check();
        assert!(store.spare() > 0);
    }
}
