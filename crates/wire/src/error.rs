//! The one error type of the wire crate: what was wrong, and where.
//!
//! Every parse failure carries the byte offset into the message at which the
//! problem was detected, so that a log line or a fuzz finding points straight
//! at the offending byte.

use core::fmt;

/// What was wrong with a message, a name or a build request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The message ended before the named item was complete.
    Truncated(&'static str),
    /// A compression pointer that does not point strictly backwards of
    /// everything already read for this name (this also catches loops).
    BadPointer,
    /// A label longer than 63 bytes.
    LabelTooLong,
    /// A name longer than 255 bytes in uncompressed wire form.
    NameTooLong,
    /// A name with more than 127 labels (excluding the root).
    TooManyLabels,
    /// A label type other than a normal label or a compression pointer
    /// (the 0x40 and 0x80 prefixes).
    BadLabelType,
    /// The header promises more records than the message holds, or bytes
    /// are left over after the last promised record.
    SectionCount,
    /// An OPT record in the question, answer or authority section.
    OptOutsideAdditional,
    /// More than one OPT record.
    DuplicateOpt,
    /// An OPT record whose owner is not the root name.
    OptOwnerNotRoot,
    /// An EDNS option whose length runs past the end of the OPT RDATA.
    BadOption,
    /// RDATA that does not match its type's layout.
    BadRdata,
    /// A query key was asked of a message without exactly one question.
    NotOneQuestion,
    /// Text in presentation format that is not a valid name.
    BadPresentation,
    /// The builder's buffer (or its limit) has no room for this item.
    NoSpace,
    /// Builder calls in the wrong order (a section after a later one).
    OutOfOrder,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Truncated(what) => write!(f, "message ends inside {what}"),
            ErrorKind::BadPointer => f.write_str("compression pointer does not point backwards"),
            ErrorKind::LabelTooLong => f.write_str("label longer than 63 bytes"),
            ErrorKind::NameTooLong => f.write_str("name longer than 255 bytes"),
            ErrorKind::TooManyLabels => f.write_str("name has more than 127 labels"),
            ErrorKind::BadLabelType => f.write_str("unsupported label type"),
            ErrorKind::SectionCount => f.write_str("section counts do not match the message"),
            ErrorKind::OptOutsideAdditional => f.write_str("OPT record outside additional section"),
            ErrorKind::DuplicateOpt => f.write_str("more than one OPT record"),
            ErrorKind::OptOwnerNotRoot => f.write_str("OPT record owner is not the root"),
            ErrorKind::BadOption => f.write_str("EDNS option runs past the OPT RDATA"),
            ErrorKind::BadRdata => f.write_str("RDATA does not match its type"),
            ErrorKind::NotOneQuestion => f.write_str("query does not have exactly one question"),
            ErrorKind::BadPresentation => f.write_str("invalid name in presentation format"),
            ErrorKind::NoSpace => f.write_str("no room left in the buffer"),
            ErrorKind::OutOfOrder => f.write_str("sections built out of order"),
        }
    }
}

/// A wire-format error: its kind and the byte offset where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{kind} at offset {offset}")]
pub struct WireError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Byte offset into the message (or text) where it was detected.
    pub offset: usize,
}

impl WireError {
    /// An error of `kind` found at `offset`.
    pub const fn new(kind: ErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

/// Result alias for the wire crate.
pub type Result<T> = core::result::Result<T, WireError>;
