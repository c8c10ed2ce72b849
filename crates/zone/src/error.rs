//! Errors from zone parsing and zone assembly.

/// Why a zone file or a zone could not be loaded. Syntax errors carry the
/// file and line as `file:line: what`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// The text is malformed at `file:line`.
    #[error("{file}:{line}: {what}")]
    Syntax {
        /// The file (as named to the parser or the loader).
        file: String,
        /// The 1-based line.
        line: usize,
        /// What was wrong.
        what: String,
    },
    /// The zone has no SOA record, or more than one.
    #[error("zone {zone}: {what}")]
    Zone {
        /// The zone apex (or the first owner seen).
        zone: String,
        /// What was wrong.
        what: String,
    },
    /// Writing the reply failed for a reason other than running out of
    /// space (which truncates instead).
    #[error("writing the reply: {0}")]
    Wire(#[from] heimdall_wire::WireError),
}

impl ZoneError {
    /// A syntax error at `file:line`.
    pub(crate) fn syntax(file: &str, line: usize, what: impl Into<String>) -> Self {
        Self::Syntax {
            file: file.to_owned(),
            line,
            what: what.into(),
        }
    }
}
