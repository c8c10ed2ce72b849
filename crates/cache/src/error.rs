//! The cache's one error type.
//!
//! Most "do not cache this" outcomes are not errors but `Ok(None)` from
//! [`Entry::from_response`](crate::Entry::from_response); an error means the
//! caller handed over something that cannot be right (a response to another
//! question, a too-small buffer, a bad policy).

use heimdall_wire::WireError;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The response, entry or client question is not for this key: other
    /// name, type or class, or not exactly one question.
    #[error("question does not match the cache key")]
    QuestionMismatch,
    /// The message is not a response to a standard query (QR clear, or an
    /// opcode other than QUERY).
    #[error("not a response to a standard query")]
    NotAResponse,
    /// The output buffer (or the client's size limit) cannot even hold the
    /// header, the question and the OPT record.
    #[error("reply needs at least {needed} bytes but only {available} are allowed")]
    BufferTooSmall {
        /// Smallest reply this entry can produce.
        needed: usize,
        /// The space the caller allowed.
        available: usize,
    },
    /// An entry larger than the whole cache.
    #[error("entry of {bytes} bytes exceeds the cache capacity of {capacity} bytes")]
    TooLarge {
        /// Bytes the entry would account for.
        bytes: usize,
        /// The cache's capacity.
        capacity: usize,
    },
    /// A policy value outside its allowed range.
    #[error("invalid cache policy: {0}")]
    InvalidPolicy(&'static str),
    /// A failure entry was asked for with an rcode that is not a failure.
    #[error("rcode {0} cannot be stored as a failure")]
    NotAFailure(u16),
    /// A malformed name or message.
    #[error(transparent)]
    Wire(#[from] WireError),
}
