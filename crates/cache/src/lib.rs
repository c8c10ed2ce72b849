//! heimdall-cache: one single-threaded, sans-IO DNS cache shard.
//!
//! Each core of the server owns one [`Cache`]; nothing here is shared or
//! locked, and nothing reads a clock: every operation that depends on time
//! takes `now` as a [`Timestamp`].
//!
//! - [`Entry`] is one answer, normalized to a wire message in a single
//!   allocation, built with [`Entry::from_response`] (positive, NXDOMAIN and
//!   NODATA per RFC 2308) or [`Entry::failure`] (RFC 9520); [`EntryView`]
//!   is the same bytes borrowed, what a shard hands out.
//! - [`EntryView::write_answer`] writes a client's reply from it without
//!   allocating: ID, flags, qname case, aged TTLs, OPT, truncation; or a
//!   stale answer (RFC 8767: TTL 30, EDE "Stale Answer").
//! - [`Cache`] maps [`QueryKey`](heimdall_wire::QueryKey)s to entries,
//!   bounded by bytes, with SLRU eviction and serve-stale; it packs their
//!   bytes into pages by size (`store.rs`), and each entry's record counts
//!   its hits (for prefetch) and remembers a failed refresh.
//! - [`CachePolicy`] holds the TTL limits and windows.
//! - [`encode_entries`] and [`decode_entries`] turn entries into the bytes
//!   of a cache file and back (aged by the downtime, fully re-validated).

mod answer;
mod entry;
mod error;
mod index;
mod persist;
mod policy;
mod shard;
mod store;
mod text;
mod time;

#[cfg(test)]
mod tests;

pub use answer::{
    AnswerRequest, ClientEdns, DEFAULT_UDP_PAYLOAD, MIN_UDP_PAYLOAD, OPT_LEN, STALE_EDE_LEN,
    STALE_TTL, TCP_LIMIT, udp_limit,
};
pub use entry::{Cut, Entry, EntryKind, EntryView, StoreOptions, Trim};
pub use error::CacheError;
pub use persist::{PERSIST_MAGIC, PERSIST_VERSION, PersistError, decode_entries, encode_entries};
pub use policy::{CachePolicy, MAX_FAILURE_TTL, MIN_FAILURE_TTL};
pub use shard::{Cache, CacheStats, Lookup, SlotInfo, TABLE_BYTES_PER_ENTRY};
pub use text::{TEXT_HEADER, TextError, dump_text, load_text};
pub use time::Timestamp;
