//! heimdall's DNS message format: zero-copy views and builders, no I/O.
//!
//! - [`Message`] validates a message once and then hands out lazy,
//!   infallible iterators over its question and record sections, with each
//!   record's TTL offset (for in-place TTL rewriting) and RDATA slice.
//! - [`Name`] reads names through compression pointers with strict bounds;
//!   [`NameBuf`] holds an owned name on the stack.
//! - [`QueryKey`] is the cache key of a query.
//! - [`MessageBuilder`] writes messages into caller-owned buffers with name
//!   compression and RRset-aware truncation.
//! - [`RData`] gives typed views of common RDATA; other types stay opaque.
//! - [`cookie`] reads a query's COOKIE option (RFC 7873) and writes the
//!   one a server answers with.
//!
//! Parsing never allocates and never panics on any input; every failure is
//! a [`WireError`] naming what was wrong and at which byte offset.

mod builder;
pub mod cookie;
pub mod ede;
mod error;
pub mod fuzzing;
mod header;
mod key;
mod message;
mod name;
mod rdata;
mod types;

pub use builder::{MessageBuilder, OptSpec};
pub use error::{ErrorKind, Result, WireError};
pub use header::{Flags, HEADER_LEN, Header};
pub use key::QueryKey;
pub use message::{
    EdnsOption, EdnsOptions, Message, Opt, Question, Questions, Record, Records, Section,
};
pub use name::{
    Labels, MAX_LABEL_LEN, MAX_LABELS, MAX_NAME_LEN, MAX_POINTERS, Name, NameBuf, WireNameBuf,
};
pub use rdata::{
    Caa, CharStrings, Mx, Piece as RdataPiece, RData, Soa, Srv, Txt, rdata_compression_allowed,
    walk_rdata,
};
pub use types::{Class, Opcode, Rcode, RecordType};

/// EDNS option codes heimdall uses (the Extended DNS Error info codes are
/// in [`ede`]).
pub mod edns {
    /// Extended DNS Errors (RFC 8914).
    pub const EXTENDED_ERROR: u16 = 15;
    /// Padding (RFC 7830).
    pub const PADDING: u16 = 12;
    /// TCP keepalive (RFC 7828).
    pub const TCP_KEEPALIVE: u16 = 11;
    /// Cookies (RFC 7873).
    pub const COOKIE: u16 = 10;
}
