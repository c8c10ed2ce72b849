//! RFC 1035 master files (section 5) and single record lines.

use std::path::Path;

use heimdall_wire::{Class, NameBuf, RecordType};

use crate::error::ZoneError;
use crate::lexer::{Entry, Token, lex};
use crate::rdata::{RdataError, encode, parse_name, parse_ttl};

/// How deep `$INCLUDE` may nest.
pub const MAX_INCLUDE_DEPTH: usize = 8;

/// TTL used when a file gives none at all (no `$TTL`, no explicit TTL).
const FALLBACK_TTL: u32 = 3600;

/// One resource record with its RDATA in uncompressed wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRecord {
    /// The owner name, letter case as written.
    pub owner: NameBuf,
    /// The record type.
    pub rtype: RecordType,
    /// The class.
    pub class: Class,
    /// The TTL in seconds.
    pub ttl: u32,
    /// The RDATA, uncompressed wire form.
    pub rdata: Vec<u8>,
}

/// Per-file parser state.
#[derive(Clone)]
struct State {
    origin: Option<NameBuf>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<NameBuf>,
    last_class: Class,
}

struct Context<'l> {
    loader: &'l mut dyn FnMut(&str) -> std::io::Result<String>,
    records: Vec<ZoneRecord>,
}

fn at(file: &str) -> impl Fn(RdataError) -> ZoneError + '_ {
    move |(line, what)| ZoneError::syntax(file, line, what)
}

/// Parse master-file `text` named `file` (used in errors and to resolve
/// `$INCLUDE` paths, which are relative to the including file). `origin`
/// is the initial `$ORIGIN`. `loader` reads included files by path.
pub fn parse_zone(
    text: &str,
    file: &str,
    origin: Option<&NameBuf>,
    loader: &mut dyn FnMut(&str) -> std::io::Result<String>,
) -> Result<Vec<ZoneRecord>, ZoneError> {
    let mut context = Context {
        loader,
        records: Vec::new(),
    };
    let state = State {
        origin: origin.cloned(),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        last_class: Class::IN,
    };
    parse_text(&mut context, text, file, state, 0)?;
    Ok(context.records)
}

/// Read and parse the master file at `path` (and its includes) from disk.
pub fn parse_zone_file(
    path: &Path,
    origin: Option<&NameBuf>,
) -> Result<Vec<ZoneRecord>, ZoneError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|err| ZoneError::syntax(&file, 0, format!("cannot read: {err}")))?;
    parse_zone(&text, &file, origin, &mut |path| {
        std::fs::read_to_string(path)
    })
}

/// Parse one record in master-file syntax on one line, as in the
/// `local.records` configuration list. The owner must be given. Relative
/// names are completed with `origin`; without one, they are taken as
/// absolute. The TTL defaults to `default_ttl`, the class to IN.
pub fn parse_record_line(
    line: &str,
    origin: Option<&NameBuf>,
    default_ttl: u32,
) -> Result<ZoneRecord, ZoneError> {
    const FILE: &str = "local.records";
    let origin = origin.cloned().unwrap_or_else(NameBuf::root);
    let mut entries = lex(line, FILE)?;
    if entries.len() != 1 {
        return Err(ZoneError::syntax(FILE, 1, "expected exactly one record"));
    }
    let Some(entry) = entries.pop().filter(|entry| !entry.blank_owner) else {
        return Err(ZoneError::syntax(FILE, 1, "the record needs an owner name"));
    };
    if entry
        .tokens
        .first()
        .is_some_and(|token| token.text.starts_with('$'))
    {
        return Err(ZoneError::syntax(
            FILE,
            1,
            "directives are not allowed here",
        ));
    }
    let state = State {
        origin: Some(origin),
        default_ttl: Some(default_ttl),
        last_ttl: None,
        last_owner: None,
        last_class: Class::IN,
    };
    let mut state = state;
    record(&mut state, &entry, FILE)
}

fn parse_text(
    context: &mut Context<'_>,
    text: &str,
    file: &str,
    mut state: State,
    depth: usize,
) -> Result<(), ZoneError> {
    for entry in lex(text, file)? {
        let Some(first) = entry.tokens.first() else {
            continue;
        };
        if !entry.blank_owner && first.text.starts_with('$') && !first.quoted {
            directive(context, &entry, file, &mut state, depth)?;
            continue;
        }
        let parsed = record(&mut state, &entry, file)?;
        context.records.push(parsed);
    }
    Ok(())
}

fn directive(
    context: &mut Context<'_>,
    entry: &Entry,
    file: &str,
    state: &mut State,
    depth: usize,
) -> Result<(), ZoneError> {
    let line = entry.line;
    let args = entry.tokens.get(1..).unwrap_or_default();
    let name = entry
        .tokens
        .first()
        .map(|token| token.text.to_ascii_uppercase());
    match name.as_deref() {
        Some("$ORIGIN") => {
            let [arg] = args else {
                return Err(ZoneError::syntax(file, line, "$ORIGIN takes one name"));
            };
            state.origin = Some(parse_name(arg, state.origin.as_ref(), false).map_err(at(file))?);
        }
        Some("$TTL") => {
            let [arg] = args else {
                return Err(ZoneError::syntax(file, line, "$TTL takes one TTL"));
            };
            let ttl = parse_ttl(&arg.text)
                .ok_or_else(|| ZoneError::syntax(file, line, format!("bad TTL {:?}", arg.text)))?;
            state.default_ttl = Some(ttl);
        }
        Some("$INCLUDE") => {
            let (path, origin) = match args {
                [path] => (path, state.origin.clone()),
                [path, origin] => (
                    path,
                    Some(parse_name(origin, state.origin.as_ref(), false).map_err(at(file))?),
                ),
                _ => {
                    return Err(ZoneError::syntax(
                        file,
                        line,
                        "$INCLUDE takes a file name and an optional origin",
                    ));
                }
            };
            if depth + 1 > MAX_INCLUDE_DEPTH {
                return Err(ZoneError::syntax(
                    file,
                    line,
                    format!("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}"),
                ));
            }
            let resolved = match Path::new(file).parent() {
                Some(parent) if !Path::new(&path.text).is_absolute() => {
                    parent.join(&path.text).display().to_string()
                }
                _ => path.text.clone(),
            };
            let text = (context.loader)(&resolved).map_err(|err| {
                ZoneError::syntax(file, line, format!("cannot include {resolved:?}: {err}"))
            })?;
            let mut inner = state.clone();
            inner.origin = origin;
            parse_text(context, &text, &resolved, inner, depth + 1)?;
        }
        _ => {
            return Err(ZoneError::syntax(
                file,
                line,
                format!(
                    "unknown directive {:?}",
                    entry.tokens.first().map(|t| t.text.as_str())
                ),
            ));
        }
    }
    Ok(())
}

fn record(state: &mut State, entry: &Entry, file: &str) -> Result<ZoneRecord, ZoneError> {
    let mut tokens: &[Token] = &entry.tokens;
    let owner = if entry.blank_owner {
        state
            .last_owner
            .clone()
            .ok_or_else(|| ZoneError::syntax(file, entry.line, "no previous owner to inherit"))?
    } else {
        let (first, rest) = tokens
            .split_first()
            .ok_or_else(|| ZoneError::syntax(file, entry.line, "empty record"))?;
        tokens = rest;
        parse_name(first, state.origin.as_ref(), false).map_err(at(file))?
    };
    let mut ttl = None;
    let mut class = None;
    let rtype = loop {
        let (token, rest) = tokens
            .split_first()
            .ok_or_else(|| ZoneError::syntax(file, entry.line, "missing record type"))?;
        tokens = rest;
        if token.quoted {
            return Err(ZoneError::syntax(
                file,
                token.line,
                "quoted string where a type was expected",
            ));
        }
        if ttl.is_none()
            && let Some(value) = parse_ttl(&token.text)
        {
            ttl = Some(value);
            continue;
        }
        if class.is_none()
            && let Some(value) = Class::from_mnemonic(&token.text)
        {
            class = Some(value);
            continue;
        }
        break RecordType::from_mnemonic(&token.text).ok_or_else(|| {
            ZoneError::syntax(file, token.line, format!("unknown type {:?}", token.text))
        })?;
    };
    let class = class.unwrap_or(state.last_class);
    let ttl = ttl
        .or(state.default_ttl)
        .or(state.last_ttl)
        .unwrap_or(FALLBACK_TTL);
    let rdata = encode(rtype, tokens, state.origin.as_ref(), entry.line).map_err(at(file))?;
    if rdata.len() > usize::from(u16::MAX) {
        return Err(ZoneError::syntax(
            file,
            entry.line,
            "RDATA longer than 65535 bytes",
        ));
    }
    state.last_owner = Some(owner.clone());
    state.last_class = class;
    state.last_ttl = Some(ttl);
    Ok(ZoneRecord {
        owner,
        rtype,
        class,
        ttl,
        rdata,
    })
}
