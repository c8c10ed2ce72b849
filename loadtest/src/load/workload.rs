//! Workloads: which queries are sent.
//!
//! A workload is one or more weighted components. Every component but
//! `cold` is a fixed list of query templates built once (whole packets with
//! ID 0, and the hash of their question); `cold` generates a name nobody
//! asked before for every query. The names are those of the synthetic
//! upstream's zone (see [`crate::upstream::zone`]), so every answer is
//! predictable:
//!
//! | component  | queries                                                  | answer           |
//! |------------|----------------------------------------------------------|------------------|
//! | `hot`      | `host-i` A, `i` in `0..names`, repeated                  | NOERROR (hits)   |
//! | `cold`     | `host-i` A, every `i` once, from a random start in `0..zone_names` | NOERROR (misses) |
//! | `nxdomain` | `nx-i` A, `i` in `0..names`, repeated                    | NXDOMAIN         |
//! | `types`    | `host-i` A, AAAA, MX, TXT; `alias-i` A (CNAME); `mail-i` AAAA (NODATA); apex SOA, NS | NOERROR |
//! | `large`    | `big-i` TXT (about 900 bytes), with EDNS                 | NOERROR, > 512 B |
//! | `file`     | the lines of a dnsperf query file, in order              | whatever it is   |
//!
//! EDNS (on by default, 1232 bytes) and the DO bit are set for the whole
//! workload and can be overridden per component (`large` always asks with
//! EDNS unless told `noedns`).

use std::fmt;
use std::fs;
use std::io::{self, BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use heimdall_wire::{HEADER_LEN, Message, NameBuf, RecordType};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom as _;
use rand::{RngExt as _, SeedableRng as _};

use crate::upstream::zone::DEFAULT_ORIGIN;

/// Most templates one workload may build (a bound on memory: each is about
/// 50 bytes); use `cold` for more distinct names.
pub const MAX_TEMPLATES: usize = 2_000_000;
/// Longest query packet a template may be.
pub const MAX_QUERY_LEN: usize = 512;
/// The EDNS UDP payload size asked for by default.
pub const DEFAULT_EDNS_SIZE: u16 = 1232;
/// Flags of every query: RD.
const QUERY_FLAGS: u16 = 0x0100;

/// One kind of query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A fixed set of existing names, repeated: cache hits.
    Hot,
    /// A new existing name for every query: cache misses.
    Cold,
    /// A fixed set of names that do not exist.
    Nxdomain,
    /// Several record types, a CNAME chain and NODATA.
    Types,
    /// Answers over 512 bytes.
    Large,
    /// The queries of a dnsperf-format file.
    File,
}

impl Kind {
    /// Every kind, in CLI order.
    pub const ALL: [Kind; 6] = [
        Self::Hot,
        Self::Cold,
        Self::Nxdomain,
        Self::Types,
        Self::Large,
        Self::File,
    ];

    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Cold => "cold",
            Self::Nxdomain => "nxdomain",
            Self::Types => "types",
            Self::Large => "large",
            Self::File => "file",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|kind| kind.as_str()).collect();
                format!(
                    "unknown workload {text:?}; expected one of {} (or mixed)",
                    known.join(", ")
                )
            })
    }
}

/// One weighted component of a workload, with optional EDNS and DO
/// overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// What is asked.
    pub kind: Kind,
    /// Relative share of the queries (at least 1).
    pub weight: u32,
    /// EDNS on or off for this component (None: the workload's setting).
    pub edns: Option<bool>,
    /// DO bit for this component (None: the workload's setting).
    pub dnssec_ok: Option<bool>,
}

impl Component {
    /// `kind` alone, weight 1, no overrides.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            weight: 1,
            edns: None,
            dnssec_ok: None,
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.kind, self.weight)?;
        match self.edns {
            Some(true) => f.write_str(":edns")?,
            Some(false) => f.write_str(":noedns")?,
            None => {}
        }
        match self.dnssec_ok {
            Some(true) => f.write_str(":do")?,
            Some(false) => f.write_str(":nodo")?,
            None => {}
        }
        Ok(())
    }
}

/// The default `mixed` ratios.
pub const DEFAULT_MIX: &str = "hot=80,cold=5,nxdomain=5,types=5,large=5";

/// Parse a mix such as `hot=70,cold=10,large=20:do` (each entry
/// `kind[=weight][:edns|:noedns][:do|:nodo]`).
pub fn parse_mix(text: &str) -> Result<Vec<Component>, String> {
    let mut components = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.split(':');
        let head = parts.next().unwrap_or_default();
        let (kind, weight) = match head.split_once('=') {
            Some((kind, weight)) => (
                kind.trim(),
                weight
                    .trim()
                    .parse::<u32>()
                    .map_err(|_| format!("bad weight in mix entry {entry:?}"))?,
            ),
            None => (head.trim(), 1),
        };
        let mut component = Component::new(kind.parse()?);
        component.weight = weight;
        for flag in parts {
            match flag.trim().to_ascii_lowercase().as_str() {
                "edns" => component.edns = Some(true),
                "noedns" => component.edns = Some(false),
                "do" => component.dnssec_ok = Some(true),
                "nodo" => component.dnssec_ok = Some(false),
                other => {
                    return Err(format!(
                        "unknown flag {other:?} in mix entry {entry:?} (edns, noedns, do, nodo)"
                    ));
                }
            }
        }
        if component.weight > 0 {
            components.push(component);
        }
    }
    if components.is_empty() {
        return Err(format!(
            "mix {text:?} has no component with a weight above 0"
        ));
    }
    Ok(components)
}

/// How to build a workload.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// The weighted components.
    pub components: Vec<Component>,
    /// The zone the names live in.
    pub origin: NameBuf,
    /// Distinct names of `hot`, `nxdomain`, `types` and `large`.
    pub names: u32,
    /// Names that exist in the upstream's zone (its `--names`): the range
    /// `cold` walks through. Once a run has asked for all of them, `cold`
    /// starts over and its names are no longer new.
    pub zone_names: u32,
    /// EDNS on the queries (unless a component says otherwise).
    pub edns: bool,
    /// The UDP payload size offered with EDNS.
    pub edns_size: u16,
    /// The DO bit (unless a component says otherwise); implies EDNS.
    pub dnssec_ok: bool,
    /// The query file of the `file` component (dnsperf format).
    pub queries_file: Option<PathBuf>,
    /// Seed of the shuffles and of `cold`'s start.
    pub seed: u64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            components: vec![Component::new(Kind::Hot)],
            origin: NameBuf::from_presentation(DEFAULT_ORIGIN).unwrap_or_else(|_| NameBuf::root()),
            names: 1000,
            zone_names: 1000,
            edns: true,
            edns_size: DEFAULT_EDNS_SIZE,
            dnssec_ok: false,
            queries_file: None,
            seed: 1,
        }
    }
}

impl WorkloadConfig {
    /// A short description: `hot` or `mixed(hot=70,cold=30)`.
    pub fn describe(&self) -> String {
        match self.components.as_slice() {
            [only] if only.edns.is_none() && only.dnssec_ok.is_none() => only.kind.to_string(),
            components => {
                let parts: Vec<String> = components.iter().map(ToString::to_string).collect();
                format!("mixed({})", parts.join(","))
            }
        }
    }
}

/// The EDNS part of one query: None, or (payload size, DO).
type EdnsSpec = Option<(u16, bool)>;

/// Query packets with ID 0, stored end to end, with their question hashes.
#[derive(Debug, Default)]
struct Templates {
    bytes: Vec<u8>,
    /// (start, length) in `bytes`.
    spans: Vec<(usize, usize)>,
    hashes: Vec<u64>,
}

impl Templates {
    fn push(&mut self, name: &[u8], qtype: RecordType, edns: EdnsSpec) -> io::Result<()> {
        if self.spans.len() >= MAX_TEMPLATES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a workload may build at most {MAX_TEMPLATES} queries; use cold for more"),
            ));
        }
        let mut packet = [0u8; MAX_QUERY_LEN];
        let len = write_query(&mut packet, &[name], qtype, edns)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
        let packet = packet.get(..len).unwrap_or_default();
        let (hash, _) = question_hash(packet)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "query does not parse"))?;
        self.spans.push((self.bytes.len(), len));
        self.bytes.extend_from_slice(packet);
        self.hashes.push(hash);
        Ok(())
    }

    fn len(&self) -> usize {
        self.spans.len()
    }

    fn get(&self, index: usize) -> Option<(&[u8], u64)> {
        let &(start, len) = self.spans.get(index)?;
        Some((
            self.bytes.get(start..start + len)?,
            *self.hashes.get(index)?,
        ))
    }

    /// Shuffle the order (spans and hashes together).
    fn shuffle(&mut self, rng: &mut SmallRng) {
        let mut order: Vec<usize> = (0..self.spans.len()).collect();
        order.shuffle(rng);
        let spans = order
            .iter()
            .filter_map(|&i| self.spans.get(i).copied())
            .collect();
        let hashes = order
            .iter()
            .filter_map(|&i| self.hashes.get(i).copied())
            .collect();
        self.spans = spans;
        self.hashes = hashes;
    }
}

/// What one component produces.
#[derive(Debug)]
enum Part {
    Templates(Templates),
    Cold { edns: EdnsSpec },
}

/// A built workload, shared read-only by every worker.
#[derive(Debug)]
pub struct Workload {
    config: WorkloadConfig,
    parts: Vec<Part>,
    /// Component indexes in the proportions of the weights, shuffled.
    deck: Vec<u8>,
    /// The origin's wire form, for `cold`.
    origin_wire: Vec<u8>,
    /// Where `cold` starts in `0..zone_names`.
    cold_start: u64,
}

impl Workload {
    /// Build the templates (and read the query file). Fails on an invalid
    /// configuration or an unreadable file, naming the line.
    pub fn build(config: &WorkloadConfig) -> io::Result<Arc<Self>> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if config.components.is_empty() || config.components.len() > 64 {
            return Err(invalid("a workload needs 1 to 64 components".into()));
        }
        if config.names == 0 {
            return Err(invalid("--names must be at least 1".into()));
        }
        if config.zone_names == 0 {
            return Err(invalid("--zone-names must be at least 1".into()));
        }
        if config.edns_size < 512 {
            return Err(invalid(format!(
                "the EDNS payload size must be at least 512, not {}",
                config.edns_size
            )));
        }
        let mut rng = SmallRng::seed_from_u64(config.seed);
        let mut parts = Vec::with_capacity(config.components.len());
        for component in &config.components {
            let edns_on = component
                .edns
                .unwrap_or(config.edns || component.kind == Kind::Large);
            let dnssec_ok = component.dnssec_ok.unwrap_or(config.dnssec_ok);
            let edns = (edns_on || dnssec_ok).then_some((config.edns_size, dnssec_ok));
            let part = match component.kind {
                Kind::Cold => Part::Cold { edns },
                Kind::File => {
                    let path = config.queries_file.as_deref().ok_or_else(|| {
                        invalid("the file workload needs a query file (--queries FILE)".into())
                    })?;
                    Part::Templates(read_query_file(path, edns)?)
                }
                kind => {
                    let mut templates = generated(kind, config, edns)?;
                    templates.shuffle(&mut rng);
                    Part::Templates(templates)
                }
            };
            parts.push(part);
        }
        let deck = build_deck(&config.components, &mut rng);
        Ok(Arc::new(Self {
            config: config.clone(),
            parts,
            deck,
            origin_wire: config.origin.as_wire().to_vec(),
            cold_start: rng.random_range(0..u64::from(config.zone_names)),
        }))
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// A stream of queries for worker `worker` of `workers`: workers start
    /// at different places in each list, and `cold` gives each worker its
    /// own names.
    pub fn stream(self: &Arc<Self>, worker: usize, workers: usize) -> QueryStream {
        let workers = workers.max(1);
        let cursors = self
            .parts
            .iter()
            .map(|part| match part {
                Part::Templates(templates) => templates.len() * worker / workers,
                Part::Cold { .. } => 0,
            })
            .collect();
        QueryStream {
            workload: Arc::clone(self),
            deck_pos: self.deck.len() * worker / workers,
            cursors,
            cold_next: self.cold_start + worker as u64,
            cold_step: workers as u64,
            cold_issued: 0,
        }
    }
}

/// Interleave component indexes in proportion to their weights (scaled to
/// at most 10,000 entries), shuffled.
fn build_deck(components: &[Component], rng: &mut SmallRng) -> Vec<u8> {
    let total: u64 = components.iter().map(|c| u64::from(c.weight)).sum();
    let scale = total.div_ceil(10_000).max(1);
    let mut deck = Vec::new();
    for (index, component) in (0u8..).zip(components) {
        let copies = (u64::from(component.weight) / scale).max(1);
        deck.extend(std::iter::repeat_n(index, copies as usize));
    }
    deck.shuffle(rng);
    deck
}

/// The templates of a generated component.
fn generated(kind: Kind, config: &WorkloadConfig, edns: EdnsSpec) -> io::Result<Templates> {
    let mut templates = Templates::default();
    let origin = config.origin.as_wire();
    let mut add = |label: &str, qtype: RecordType| -> io::Result<()> {
        let mut name = Vec::with_capacity(1 + label.len() + origin.len());
        if !label.is_empty() {
            name.push(label.len() as u8);
            name.extend_from_slice(label.as_bytes());
        }
        name.extend_from_slice(origin);
        templates.push(&name, qtype, edns)
    };
    for i in 0..config.names {
        match kind {
            Kind::Hot => add(&format!("host-{i}"), RecordType::A)?,
            Kind::Nxdomain => add(&format!("nx-{i}"), RecordType::A)?,
            Kind::Large => add(&format!("big-{i}"), RecordType::TXT)?,
            Kind::Types => {
                let host = format!("host-{i}");
                for qtype in [
                    RecordType::A,
                    RecordType::AAAA,
                    RecordType::MX,
                    RecordType::TXT,
                ] {
                    add(&host, qtype)?;
                }
                add(&format!("alias-{i}"), RecordType::A)?;
                add(&format!("mail-{i}"), RecordType::AAAA)?;
            }
            Kind::Cold | Kind::File => {}
        }
    }
    if kind == Kind::Types {
        add("", RecordType::SOA)?;
        add("", RecordType::NS)?;
    }
    Ok(templates)
}

/// One line of a dnsperf query file: `name [type]`; blank lines and lines
/// starting with `#` or `;` are skipped. None for a skipped line.
pub fn parse_query_line(line: &str) -> Result<Option<(NameBuf, RecordType)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
        return Ok(None);
    }
    let mut fields = line.split_whitespace();
    let name = fields.next().unwrap_or_default();
    let name =
        NameBuf::from_presentation(name).map_err(|err| format!("bad name {name:?}: {err}"))?;
    let qtype = match fields.next() {
        None => RecordType::A,
        Some(text) => {
            RecordType::from_mnemonic(text).ok_or_else(|| format!("unknown type {text:?}"))?
        }
    };
    Ok(Some((name, qtype)))
}

fn read_query_file(path: &Path, edns: EdnsSpec) -> io::Result<Templates> {
    let file = fs::File::open(path)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
    let mut templates = Templates::default();
    for (number, line) in (1usize..).zip(BufReader::new(file).lines()) {
        let line = line?;
        let bad = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{number}: {why}", path.display()),
            )
        };
        if let Some((name, qtype)) = parse_query_line(&line).map_err(bad)? {
            templates
                .push(name.as_wire(), qtype, edns)
                .map_err(|err| bad(err.to_string()))?;
        }
    }
    if templates.len() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: no queries", path.display()),
        ));
    }
    Ok(templates)
}

/// One worker's supply of queries.
#[derive(Debug)]
pub struct QueryStream {
    workload: Arc<Workload>,
    deck_pos: usize,
    cursors: Vec<usize>,
    cold_next: u64,
    cold_step: u64,
    cold_issued: u64,
}

impl QueryStream {
    /// Write the next query (ID 0) into `out`; returns its length and
    /// question hash. None only if `out` is too small.
    pub fn next_query(&mut self, out: &mut [u8]) -> Option<(usize, u64)> {
        let workload = &*self.workload;
        let deck_len = workload.deck.len().max(1);
        let part_index = usize::from(*workload.deck.get(self.deck_pos % deck_len)?);
        self.deck_pos = (self.deck_pos + 1) % deck_len;
        match workload.parts.get(part_index)? {
            Part::Templates(templates) => {
                let cursor = self.cursors.get_mut(part_index)?;
                let (packet, hash) = templates.get(*cursor)?;
                *cursor = (*cursor + 1) % templates.len().max(1);
                out.get_mut(..packet.len())?.copy_from_slice(packet);
                Some((packet.len(), hash))
            }
            Part::Cold { edns } => {
                let zone = u64::from(workload.config.zone_names);
                let index = self.cold_next % zone;
                self.cold_next = self.cold_next.wrapping_add(self.cold_step);
                self.cold_issued += 1;
                let mut label = [0u8; 32];
                let label_len = host_label(index, &mut label);
                let label = label.get(..label_len)?;
                let len = write_query(out, &[label, &workload.origin_wire], RecordType::A, *edns)?;
                let (hash, _) = question_hash(out.get(..len)?)?;
                Some((len, hash))
            }
        }
    }

    /// How many `cold` queries this stream has produced.
    pub fn cold_issued(&self) -> u64 {
        self.cold_issued
    }
}

/// `\x{len}host-{index}` into `out`; returns the length.
fn host_label(index: u64, out: &mut [u8; 32]) -> usize {
    let mut digits = [0u8; 20];
    let mut value = index;
    let mut count = 0;
    loop {
        if let Some(slot) = digits.get_mut(count) {
            *slot = b'0' + (value % 10) as u8;
        }
        count += 1;
        value /= 10;
        if value == 0 || count >= digits.len() {
            break;
        }
    }
    let prefix = b"host-";
    let label_len = prefix.len() + count;
    let mut pos = 0;
    let mut put = |byte: u8| {
        if let Some(slot) = out.get_mut(pos) {
            *slot = byte;
        }
        pos += 1;
    };
    put(label_len as u8);
    prefix.iter().for_each(|&byte| put(byte));
    digits
        .iter()
        .take(count)
        .rev()
        .for_each(|&digit| put(digit));
    pos
}

/// Write a query with ID 0 and RD: the name (the concatenation of `name`'s
/// parts, in wire form), `qtype`, class IN, and an OPT record when `edns`
/// is given. Returns the length, or None if `out` is too small.
pub fn write_query(
    out: &mut [u8],
    name: &[&[u8]],
    qtype: RecordType,
    edns: EdnsSpec,
) -> Option<usize> {
    let mut pos = 0usize;
    let mut put = |bytes: &[u8]| -> Option<()> {
        out.get_mut(pos..pos + bytes.len())?.copy_from_slice(bytes);
        pos += bytes.len();
        Some(())
    };
    let additional: u16 = if edns.is_some() { 1 } else { 0 };
    put(&[0, 0])?;
    put(&QUERY_FLAGS.to_be_bytes())?;
    put(&1u16.to_be_bytes())?;
    put(&[0, 0, 0, 0])?;
    put(&additional.to_be_bytes())?;
    for part in name {
        put(part)?;
    }
    put(&qtype.0.to_be_bytes())?;
    put(&1u16.to_be_bytes())?;
    if let Some((size, dnssec_ok)) = edns {
        let flags: u16 = if dnssec_ok { 0x8000 } else { 0 };
        put(&[0])?;
        put(&RecordType::OPT.0.to_be_bytes())?;
        put(&size.to_be_bytes())?;
        put(&[0, 0])?;
        put(&flags.to_be_bytes())?;
        put(&[0, 0])?;
    }
    Some(pos)
}

/// Bytes 'A'..='Z' of `x` turned to lower case, eight at a time.
fn lower8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let heptets = x & (0x7f * ONES);
    let at_least_a = heptets + (0x80 - u64::from(b'A')) * ONES;
    let above_z = heptets + (0x80 - u64::from(b'Z') - 1) * ONES;
    let upper = at_least_a & !above_z & !x & (0x80 * ONES);
    x | (upper >> 2)
}

/// A 64-bit hash of the question of `packet` (its first name, compared
/// without regard to ASCII case, then type and class), and the offset just
/// after the question. None when the packet has no whole question at
/// offset 12 or its name is compressed (a question's name never needs to
/// be).
pub fn question_hash(packet: &[u8]) -> Option<(u64, usize)> {
    const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pos = HEADER_LEN;
    loop {
        let len = usize::from(*packet.get(pos)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        pos += 1 + len;
    }
    let name_end = pos + 1;
    let name = packet.get(HEADER_LEN..name_end)?;
    if name.len() > 255 {
        return None;
    }
    let type_class = packet.get(name_end..name_end + 4)?;
    let mut hash = 0x243f_6a88_85a3_08d3u64 ^ name.len() as u64;
    for chunk in name.chunks(8) {
        let mut word = [0u8; 8];
        word.get_mut(..chunk.len())?.copy_from_slice(chunk);
        hash = (hash ^ lower8(u64::from_le_bytes(word))).wrapping_mul(MUL);
        hash ^= hash >> 29;
    }
    let mut tail = [0u8; 8];
    tail.get_mut(..4)?.copy_from_slice(type_class);
    hash = (hash ^ u64::from_le_bytes(tail)).wrapping_mul(MUL);
    hash ^= hash >> 32;
    Some((hash, name_end + 4))
}

/// The question of a query packet as a dnsperf line (`name type`).
pub fn query_line(packet: &[u8]) -> Option<String> {
    let message = Message::parse(packet).ok()?;
    let question = message.question()?;
    Some(format!("{} {}", question.name, question.qtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(config: &WorkloadConfig) -> QueryStream {
        Workload::build(config).unwrap().stream(0, 1)
    }

    fn lines(stream: &mut QueryStream, count: usize) -> Vec<String> {
        let mut out = [0u8; MAX_QUERY_LEN];
        (0..count)
            .map(|_| {
                let (len, hash) = stream.next_query(&mut out).unwrap();
                assert_eq!(question_hash(&out[..len]).unwrap().0, hash);
                query_line(&out[..len]).unwrap()
            })
            .collect()
    }

    #[test]
    fn lowercasing_is_exact() {
        for byte in 0..=255u8 {
            let word = u64::from_le_bytes([byte, b'Q', byte, 0, 0xff, byte, b'z', b'@']);
            let lowered = lower8(word).to_le_bytes();
            let expected = u64::from_le_bytes([byte, b'Q', byte, 0, 0xff, byte, b'z', b'@'])
                .to_le_bytes()
                .map(|b| b.to_ascii_lowercase());
            assert_eq!(lowered, expected, "byte {byte:#x}");
        }
    }

    #[test]
    fn question_hash_ignores_case_but_not_type() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        let mut c = [0u8; 64];
        let la = write_query(&mut a, &[b"\x04HoSt\x04zone\x00"], RecordType::A, None).unwrap();
        let lb = write_query(&mut b, &[b"\x04host\x04ZONE\x00"], RecordType::A, None).unwrap();
        let lc = write_query(&mut c, &[b"\x04host\x04zone\x00"], RecordType::AAAA, None).unwrap();
        let (ha, end) = question_hash(&a[..la]).unwrap();
        assert_eq!(end, la);
        assert_eq!(ha, question_hash(&b[..lb]).unwrap().0);
        assert_ne!(ha, question_hash(&c[..lc]).unwrap().0);
        assert!(question_hash(&a[..la - 1]).is_none());
        // A compressed question name is refused.
        let mut compressed = a;
        compressed[12] = 0xc0;
        assert!(question_hash(&compressed[..la]).is_none());
    }

    #[test]
    fn generated_workloads_ask_what_they_should() {
        let config = WorkloadConfig {
            names: 3,
            edns: false,
            ..WorkloadConfig::default()
        };
        let mut hot = stream(&config);
        let mut asked = lines(&mut hot, 6);
        asked.sort();
        assert_eq!(
            asked,
            [
                "host-0.zone.test. A",
                "host-0.zone.test. A",
                "host-1.zone.test. A",
                "host-1.zone.test. A",
                "host-2.zone.test. A",
                "host-2.zone.test. A"
            ]
        );
        let types = WorkloadConfig {
            components: vec![Component::new(Kind::Types)],
            names: 1,
            ..config.clone()
        };
        let mut asked = lines(&mut stream(&types), 8);
        asked.sort();
        assert_eq!(
            asked,
            [
                "alias-0.zone.test. A",
                "host-0.zone.test. A",
                "host-0.zone.test. AAAA",
                "host-0.zone.test. MX",
                "host-0.zone.test. TXT",
                "mail-0.zone.test. AAAA",
                "zone.test. NS",
                "zone.test. SOA",
            ]
        );
        let cold = WorkloadConfig {
            components: vec![Component::new(Kind::Cold)],
            zone_names: 1_000_000,
            ..config.clone()
        };
        let asked = lines(&mut stream(&cold), 1000);
        let unique: std::collections::HashSet<_> = asked.iter().collect();
        assert_eq!(unique.len(), 1000);
        assert!(asked.iter().all(|line| line.starts_with("host-")));
    }

    #[test]
    fn cold_workers_never_overlap() {
        let config = WorkloadConfig {
            components: vec![Component::new(Kind::Cold)],
            zone_names: 1_000_000,
            ..WorkloadConfig::default()
        };
        let workload = Workload::build(&config).unwrap();
        let mut seen = std::collections::HashSet::new();
        for worker in 0..3 {
            let mut stream = workload.stream(worker, 3);
            for line in lines(&mut stream, 300) {
                assert!(seen.insert(line));
            }
        }
    }

    #[test]
    fn edns_and_do_follow_the_components() {
        let config = WorkloadConfig {
            components: parse_mix("hot=1:noedns,large=1,nxdomain=1:do").unwrap(),
            edns: false,
            ..WorkloadConfig::default()
        };
        let mut stream = stream(&config);
        let mut out = [0u8; MAX_QUERY_LEN];
        let mut seen = std::collections::HashMap::new();
        for _ in 0..30 {
            let (len, _) = stream.next_query(&mut out).unwrap();
            let message = Message::parse(&out[..len]).unwrap();
            let name = message.question().unwrap().name.to_string();
            let kind = name.split('-').next().unwrap().to_string();
            let opt = message
                .opt()
                .map(|opt| (opt.udp_payload_size(), opt.dnssec_ok()));
            seen.insert(kind, opt);
        }
        assert_eq!(seen["host"], None);
        assert_eq!(seen["big"], Some((DEFAULT_EDNS_SIZE, false)));
        assert_eq!(seen["nx"], Some((DEFAULT_EDNS_SIZE, true)));
    }

    #[test]
    fn mixes_parse_and_keep_their_ratios() {
        let mix = parse_mix("hot=70, cold=20:noedns:do ,large").unwrap();
        assert_eq!(mix.len(), 3);
        assert_eq!(mix[1].edns, Some(false));
        assert_eq!(mix[1].dnssec_ok, Some(true));
        assert_eq!(mix[2].weight, 1);
        assert!(parse_mix("hot=x").is_err());
        assert!(parse_mix("bogus=1").is_err());
        assert!(parse_mix("hot=0").is_err());
        assert!(parse_mix("hot:weird").is_err());
        let config = WorkloadConfig {
            components: parse_mix("hot=3,nxdomain=1").unwrap(),
            ..WorkloadConfig::default()
        };
        assert_eq!(config.describe(), "mixed(hot=3,nxdomain=1)");
        let asked = lines(&mut stream(&config), 4000);
        let nx = asked.iter().filter(|line| line.starts_with("nx-")).count();
        assert_eq!(nx, 1000);
    }

    #[test]
    fn query_files_are_read_in_dnsperf_format() {
        let dir = std::env::temp_dir().join(format!("heimdall-lt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("queries.txt");
        fs::write(
            &path,
            "# comment\nwww.example.com A\n\nexample.org. MX\nbare.test\n",
        )
        .unwrap();
        let config = WorkloadConfig {
            components: vec![Component::new(Kind::File)],
            queries_file: Some(path.clone()),
            edns: false,
            ..WorkloadConfig::default()
        };
        assert_eq!(
            lines(&mut stream(&config), 4),
            [
                "www.example.com. A",
                "example.org. MX",
                "bare.test. A",
                "www.example.com. A"
            ]
        );
        fs::write(&path, "ok.test A\nbad..name A\n").unwrap();
        let err = Workload::build(&config).unwrap_err();
        assert!(err.to_string().contains("queries.txt:2:"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn host_labels_are_decimal() {
        let mut out = [0u8; 32];
        let len = host_label(0, &mut out);
        assert_eq!(&out[..len], b"\x06host-0");
        let len = host_label(1234567, &mut out);
        assert_eq!(&out[..len], b"\x0chost-1234567");
    }
}
