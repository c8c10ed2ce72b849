//! Splits master-file text into logical entries: one per line, or several
//! physical lines joined by parentheses, with comments removed and quoted
//! strings kept as single tokens. Escapes stay in the token text; they are
//! decoded where the token is used (names and character-strings differ).

use crate::error::ZoneError;

/// One token of an entry.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The token text, escapes intact, without the quotes of a quoted
    /// string.
    pub(crate) text: String,
    /// Whether it was written as a quoted string.
    pub(crate) quoted: bool,
    /// The physical line it starts on.
    pub(crate) line: usize,
}

/// One logical entry (a record or a directive).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The line the entry starts on.
    pub(crate) line: usize,
    /// Whether the entry started with white space (owner inherited).
    pub(crate) blank_owner: bool,
    /// The tokens.
    pub(crate) tokens: Vec<Token>,
}

fn is_delimiter(byte: u8) -> bool {
    matches!(
        byte,
        b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"'
    )
}

/// Split `text` (from `file`) into entries.
pub(crate) fn lex(text: &str, file: &str) -> Result<Vec<Entry>, ZoneError> {
    let bytes = text.as_bytes();
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    let mut line = 1usize;
    let mut depth = 0usize;
    let mut depth_line = 0usize;
    let mut line_start = true;
    let mut leading_space = false;
    let mut pos = 0usize;
    let to_string = |raw: Vec<u8>, at: usize| {
        String::from_utf8(raw).map_err(|_| ZoneError::syntax(file, at, "invalid UTF-8"))
    };
    while let Some(&byte) = bytes.get(pos) {
        match byte {
            b'\n' => {
                line += 1;
                pos += 1;
                if depth == 0 {
                    entries.extend(current.take());
                    line_start = true;
                    leading_space = false;
                }
            }
            b' ' | b'\t' | b'\r' => {
                if line_start && depth == 0 && current.is_none() {
                    leading_space = true;
                }
                line_start = false;
                pos += 1;
            }
            b';' => {
                while bytes.get(pos).is_some_and(|&b| b != b'\n') {
                    pos += 1;
                }
            }
            b'(' => {
                if depth == 0 {
                    depth_line = line;
                }
                depth += 1;
                line_start = false;
                pos += 1;
                current.get_or_insert_with(|| Entry {
                    line,
                    blank_owner: leading_space,
                    tokens: Vec::new(),
                });
            }
            b')' => {
                if depth == 0 {
                    return Err(ZoneError::syntax(file, line, "unbalanced ')'"));
                }
                depth -= 1;
                pos += 1;
            }
            _ => {
                let start_line = line;
                let quoted = byte == b'"';
                let mut raw = Vec::new();
                if quoted {
                    pos += 1;
                    loop {
                        match bytes.get(pos) {
                            None => {
                                return Err(ZoneError::syntax(
                                    file,
                                    start_line,
                                    "unterminated quoted string",
                                ));
                            }
                            Some(b'"') => {
                                pos += 1;
                                break;
                            }
                            Some(b'\\') => {
                                let next = bytes.get(pos + 1).copied().ok_or_else(|| {
                                    ZoneError::syntax(file, line, "backslash at end of input")
                                })?;
                                if next == b'\n' {
                                    line += 1;
                                }
                                raw.extend([b'\\', next]);
                                pos += 2;
                            }
                            Some(&other) => {
                                if other == b'\n' {
                                    line += 1;
                                }
                                raw.push(other);
                                pos += 1;
                            }
                        }
                    }
                } else {
                    while let Some(&b) = bytes.get(pos) {
                        if b == b'\\' {
                            let next = bytes.get(pos + 1).copied().ok_or_else(|| {
                                ZoneError::syntax(file, line, "backslash at end of input")
                            })?;
                            raw.extend([b'\\', next]);
                            pos += 2;
                        } else if is_delimiter(b) {
                            break;
                        } else {
                            raw.push(b);
                            pos += 1;
                        }
                    }
                }
                line_start = false;
                let entry = current.get_or_insert_with(|| Entry {
                    line: start_line,
                    blank_owner: leading_space,
                    tokens: Vec::new(),
                });
                entry.tokens.push(Token {
                    text: to_string(raw, start_line)?,
                    quoted,
                    line: start_line,
                });
            }
        }
    }
    if depth > 0 {
        return Err(ZoneError::syntax(file, depth_line, "unbalanced '('"));
    }
    entries.extend(current.take());
    Ok(entries)
}
