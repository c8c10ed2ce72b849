//! The cache as text, for operators (`heimdall ctl cache dump` and `cache
//! load`): one line per entry, the question and state readable, the entry
//! itself carried exactly.
//!
//! ```text
//! ; heimdall cache dump 1
//! ; name type rcode kind ttl flags data
//! www.example. A NOERROR positive 297 - iUhlaW1kYWxsLWNhY2hlCgAAAAEAAAGT...
//! ```
//!
//! `ttl` is the seconds the entry has left, `flags` `do`, `cd`, `do,cd` or
//! `-`, and `data` the base64 of a one-entry file in the persistence format
//! ([`crate::persist`]: checksummed, wall-clock times), so ages are applied
//! on load exactly as for the cache file, and a line can be deleted,
//! grepped or moved to another server. The readable fields are for
//! people; loading uses only `data`. Lines starting with `;` and blank
//! lines are skipped. Sans-IO: the caller gives the clocks.

use data_encoding::BASE64;
use heimdall_wire::{Name, QueryKey};

use crate::persist::{PersistError, decode_entries, encode_views};
use crate::{CachePolicy, Entry, EntryKind, EntryView, Timestamp};

/// The first line of a dump.
pub const TEXT_HEADER: &str = "; heimdall cache dump 1";

/// Why a text dump was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TextError {
    /// A line without its seven fields.
    #[error("line {line}: expected 7 fields: name type rcode kind ttl flags data")]
    Fields {
        /// The line number (from 1).
        line: usize,
    },
    /// The data field is not base64.
    #[error("line {line}: the data field is not base64")]
    Base64 {
        /// The line number (from 1).
        line: usize,
    },
    /// The data field is not a valid entry.
    #[error("line {line}: {source}")]
    Entry {
        /// The line number (from 1).
        line: usize,
        /// What is wrong with it.
        source: PersistError,
    },
}

fn kind_text(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Positive => "positive",
        EntryKind::NxDomain => "nxdomain",
        EntryKind::NoData => "nodata",
        EntryKind::ServFail => "servfail",
    }
}

/// Append one line per fresh, non-failure entry of `entries` to `out`
/// (after [`TEXT_HEADER`] when `out` is empty); returns how many.
/// `now` is the cache's clock, `wall_clock_unix_ms` the wall clock then.
pub fn dump_text<'a>(
    entries: impl IntoIterator<Item = &'a EntryView>,
    now: Timestamp,
    wall_clock_unix_ms: u64,
    out: &mut String,
) -> usize {
    if out.is_empty() {
        out.push_str(TEXT_HEADER);
        out.push_str("\n; name type rcode kind ttl flags data\n");
    }
    let mut written = 0;
    let mut bytes = Vec::new();
    for entry in entries {
        bytes.clear();
        // Skips failures and expired entries, as the cache file does.
        if encode_views([entry], now, wall_clock_unix_ms, &mut bytes) == 0 {
            continue;
        }
        let name = Name::from_wire(entry.question_name())
            .map_or_else(|_| "?".to_owned(), |name| name.to_string());
        let ttl = entry
            .expires_at()
            .as_millis()
            .saturating_sub(now.as_millis())
            / 1000;
        let flags = match (entry.dnssec_ok(), entry.checking_disabled()) {
            (false, false) => "-",
            (true, false) => "do",
            (false, true) => "cd",
            (true, true) => "do,cd",
        };
        out.push_str(&format!(
            "{name} {} {} {} {ttl} {flags} {}\n",
            entry.qtype(),
            entry.rcode(),
            kind_text(entry.kind()),
            BASE64.encode(&bytes)
        ));
        written += 1;
    }
    written
}

/// The entries of a text dump that are still fresh, aged to `now`, each
/// with its key; the first bad line refuses the whole dump.
pub fn load_text(
    text: &str,
    now: Timestamp,
    wall_clock_unix_ms: u64,
    policy: &CachePolicy,
) -> Result<Vec<(QueryKey, Entry)>, TextError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let [_, _, _, _, _, _, data] = fields.as_slice() else {
            return Err(TextError::Fields { line: line_no });
        };
        let bytes = BASE64
            .decode(data.as_bytes())
            .map_err(|_| TextError::Base64 { line: line_no })?;
        let decoded =
            decode_entries(&bytes, now, wall_clock_unix_ms, policy).map_err(|source| {
                TextError::Entry {
                    line: line_no,
                    source,
                }
            })?;
        entries.extend(decoded);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_load_nothing_and_bad_lines_name_their_number() {
        let policy = CachePolicy::default();
        let now = Timestamp::from_millis(0);
        let empty = format!("{TEXT_HEADER}\n\n; a comment\n");
        assert_eq!(load_text(&empty, now, 0, &policy), Ok(Vec::new()));
        let short = format!("{TEXT_HEADER}\nwww.example. A NOERROR\n");
        assert_eq!(
            load_text(&short, now, 0, &policy),
            Err(TextError::Fields { line: 2 })
        );
        let not_base64 = "a. A NOERROR positive 1 - !!!\n";
        assert_eq!(
            load_text(not_base64, now, 0, &policy),
            Err(TextError::Base64 { line: 1 })
        );
        let not_an_entry = format!("a. A NOERROR positive 1 - {}\n", BASE64.encode(b"nope"));
        assert!(matches!(
            load_text(&not_an_entry, now, 0, &policy),
            Err(TextError::Entry { line: 1, .. })
        ));
        let mut out = String::new();
        assert_eq!(dump_text([], now, 0, &mut out), 0);
        assert!(out.starts_with(TEXT_HEADER));
    }
}
