//! [`DomainSet`]: a compact set of lower-cased domain names that answers
//! "is this name, or one of its ancestors, in the set?" without allocating.
//!
//! Every name is stored once, in uncompressed wire form, in one byte arena.
//! A hash table holds only the `u32` arena offset of each name, keyed by
//! [`name_hash`] of its wire bytes. A lookup writes the query name in lower
//! case into a stack buffer, then hashes each suffix that starts at a label
//! boundary, from the whole name down to the top-level label, and compares
//! candidate entries byte for byte. Wire form is self-delimiting (it ends at
//! the root label), so a byte-prefix comparison against the arena is an
//! exact name comparison.
//!
//! Cost: the name bytes plus about 5 bytes per hash bucket (4-byte offset
//! and hashbrown's 1-byte control), at most 87.5% load.

use hashbrown::HashTable;

/// Hash of a name's lower-cased wire bytes, as used by [`DomainSet`].
///
/// Eight bytes per step, finished with a 64-bit avalanche so that both
/// the high bits (hashbrown's control byte) and the low bits (its bucket
/// index) are well mixed.
pub fn name_hash(wire: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = (wire.len() as u64).wrapping_mul(K);
    let mut chunks = wire.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        if let Some(head) = word.get_mut(..rest.len()) {
            head.copy_from_slice(rest);
        }
        hash = (hash ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    // The murmur3 64-bit finalizer.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// A set of domain names (lower-cased, uncompressed wire form), matched
/// by name or ancestor. See the module documentation for the layout.
#[derive(Default)]
pub struct DomainSet {
    arena: Vec<u8>,
    table: HashTable<u32>,
}

impl std::fmt::Debug for DomainSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainSet")
            .field("names", &self.table.len())
            .field("arena_bytes", &self.arena.len())
            .finish()
    }
}

/// Wire bytes of the stored name at `offset` (up to its root label).
fn stored(arena: &[u8], offset: u32) -> &[u8] {
    let start = offset as usize;
    let mut pos = start;
    while let Some(&len) = arena.get(pos) {
        pos += 1 + usize::from(len);
        if len == 0 {
            break;
        }
    }
    arena.get(start..pos).unwrap_or_default()
}

impl DomainSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set with room for `names` names of about `bytes` arena
    /// bytes in total.
    pub fn with_capacity(names: usize, bytes: usize) -> Self {
        Self {
            arena: Vec::with_capacity(bytes),
            table: HashTable::with_capacity(names),
        }
    }

    /// Number of names.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Add `wire`, a lower-cased name in uncompressed wire form (ending in
    /// the root label). Returns false when it was already present, or when
    /// the arena is full (4 GiB).
    pub fn insert(&mut self, wire: &[u8]) -> bool {
        let hash = name_hash(wire);
        let arena = &self.arena;
        if self
            .table
            .find(hash, |&offset| {
                arena.get(offset as usize..offset as usize + wire.len()) == Some(wire)
            })
            .is_some()
        {
            return false;
        }
        let Ok(offset) = u32::try_from(self.arena.len()) else {
            return false;
        };
        if u32::try_from(self.arena.len() + wire.len()).is_err() {
            return false;
        }
        self.arena.extend_from_slice(wire);
        let arena = &self.arena;
        self.table
            .insert_unique(hash, offset, |&offset| name_hash(stored(arena, offset)));
        true
    }

    /// Whether exactly `wire` (lower-cased wire form) is in the set.
    pub fn contains(&self, wire: &[u8]) -> bool {
        let arena = &self.arena;
        self.table
            .find(name_hash(wire), |&offset| {
                arena.get(offset as usize..offset as usize + wire.len()) == Some(wire)
            })
            .is_some()
    }

    /// Whether `wire` (lower-cased wire form) or any of its ancestors,
    /// other than the root, is in the set. Tries the longest suffix first.
    pub fn matches(&self, wire: &[u8]) -> bool {
        if self.table.is_empty() {
            return false;
        }
        let mut pos = 0usize;
        while let Some(&len) = wire.get(pos) {
            if len == 0 {
                break;
            }
            if let Some(suffix) = wire.get(pos..)
                && self.contains(suffix)
            {
                return true;
            }
            pos += 1 + usize::from(len);
        }
        false
    }

    /// Release spare capacity once building is done.
    pub fn shrink_to_fit(&mut self) {
        self.arena.shrink_to_fit();
        let arena = &self.arena;
        self.table
            .shrink_to_fit(|&offset| name_hash(stored(arena, offset)));
    }

    /// Heap bytes held: the arena plus the hash table's buckets and
    /// control bytes.
    pub fn memory_bytes(&self) -> usize {
        let buckets = if self.table.capacity() == 0 {
            0
        } else {
            (self.table.capacity() * 8 / 7).next_power_of_two()
        };
        self.arena.capacity() + buckets * (std::mem::size_of::<u32>() + 1)
    }
}
