//! Errors of policy construction and reply writing.

use heimdall_wire::WireError;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A CIDR or address did not parse.
    #[error("invalid address or CIDR {0:?}")]
    BadCidr(String),
    /// The query has no question to answer.
    #[error("the query has no question")]
    NoQuestion,
    /// Writing the reply failed (for example, the buffer is too small).
    #[error("writing the reply: {0}")]
    Wire(#[from] WireError),
    /// A rate limit setting is out of range.
    #[error("invalid rate limit setting: {0}")]
    BadRateLimit(&'static str),
    /// A server cookie setting is out of range.
    #[error("invalid cookie setting: {0}")]
    BadCookies(&'static str),
}
