//! Blocklists: parsing list files into a [`BlocklistBuilder`], and the
//! immutable [`Blocklist`] that answers per query.
//!
//! Formats (see [`ListFormat`]):
//!
//! - hosts files: `0.0.0.0 name [name ...]`, `127.0.0.1 name`, `::1 name`
//!   (any unspecified or loopback address; other addresses map names to
//!   real hosts and are not blocks, so such lines are skipped). Well-known
//!   local names (`localhost`, `broadcasthost`, `ip6-*`, ...) are ignored.
//! - plain domain lists: one name per line.
//! - adblock-style: `||domain^` blocks, `@@||domain^` goes to the
//!   allowlist; options after `$` are ignored; cosmetic rules, paths,
//!   wildcards and every other syntax are skipped.
//!
//! In every format `#` starts a comment (and `!` or `[` a comment line in
//! adblock lists); blank and comment lines are counted as ignored, lines
//! that cannot be used as skipped. Names are lower-cased; labels may hold
//! letters, digits, `-` and `_`.

use heimdall_wire::{MAX_LABEL_LEN, MAX_NAME_LEN, Name, WireNameBuf};

use crate::domains::DomainSet;

/// The syntax of a list's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// A hosts file.
    Hosts,
    /// One domain per line.
    Domains,
    /// Adblock-style `||domain^` rules.
    Adblock,
    /// Decide per line: adblock syntax if it starts with `||`, `@@`, `!`
    /// or `[`; hosts syntax if its first word is an IP address; otherwise
    /// a plain domain.
    Auto,
}

/// Counts from parsing lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Lines read.
    pub lines: u64,
    /// Names added to the blocklist.
    pub blocked: u64,
    /// Names added to the allowlist.
    pub allowed: u64,
    /// Names that were already present.
    pub duplicates: u64,
    /// Blank lines, comments, and local names in hosts files.
    pub ignored: u64,
    /// Lines (or, in hosts files, names) that could not be used.
    pub skipped: u64,
}

impl ListStats {
    fn add(&mut self, other: &ListStats) {
        self.lines += other.lines;
        self.blocked += other.blocked;
        self.allowed += other.allowed;
        self.duplicates += other.duplicates;
        self.ignored += other.ignored;
        self.skipped += other.skipped;
    }
}

/// What a query name is, as far as the blocklist is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not on the blocklist: resolve normally.
    Pass,
    /// The name or an ancestor is blocked.
    Blocked,
    /// Blocked, but the allowlist covers the name: resolve normally.
    Allowed,
}

/// Names that hosts files map to themselves and that must never be blocked.
const LOCAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
];

/// Write `text` (a presentation-form name, with or without the trailing
/// dot) as lower-cased wire form into `out`. False if it is not a
/// hostname-like name (empty labels, other characters, too long).
pub(crate) fn text_to_wire(text: &str, out: &mut WireNameBuf) -> bool {
    out.clear();
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() {
        return false;
    }
    for label in text.split('.') {
        let Ok(len) = u8::try_from(label.len()) else {
            return false;
        };
        if label.is_empty() || usize::from(len) > MAX_LABEL_LEN {
            return false;
        }
        if out.len() + 1 + label.len() + 1 > MAX_NAME_LEN {
            return false;
        }
        out.push(len);
        for &byte in label.as_bytes() {
            if !(byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_') {
                return false;
            }
            out.push(byte.to_ascii_lowercase());
        }
    }
    out.push(0);
    true
}

/// Collects names from lists; [`BlocklistBuilder::build`] freezes them.
#[derive(Debug, Default)]
pub struct BlocklistBuilder {
    blocked: DomainSet,
    allowed: DomainSet,
    stats: ListStats,
}

impl BlocklistBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for about `names` blocked names (avoids
    /// rehashing while loading large lists).
    pub fn with_capacity(names: usize) -> Self {
        Self {
            blocked: DomainSet::with_capacity(names, names.saturating_mul(20)),
            ..Self::default()
        }
    }

    /// Block `name` (presentation form) and its subdomains. False if it is
    /// malformed or already blocked.
    pub fn block(&mut self, name: &str) -> bool {
        let mut wire = WireNameBuf::new();
        text_to_wire(name, &mut wire) && self.blocked.insert(&wire)
    }

    /// Allow `name` (presentation form) and its subdomains even when
    /// blocked. False if it is malformed or already allowed.
    pub fn allow(&mut self, name: &str) -> bool {
        let mut wire = WireNameBuf::new();
        text_to_wire(name, &mut wire) && self.allowed.insert(&wire)
    }

    /// Parse `text` in `format`, adding its blocks (and, for adblock
    /// exceptions, allows). Returns the counts for this text; they are
    /// also added to the builder's totals.
    pub fn add_list(&mut self, text: &str, format: ListFormat) -> ListStats {
        let mut stats = ListStats::default();
        let mut wire = WireNameBuf::new();
        for line in text.lines() {
            stats.lines += 1;
            let format = match format {
                ListFormat::Auto => detect(line),
                other => other,
            };
            match format {
                ListFormat::Hosts => self.hosts_line(line, &mut wire, &mut stats),
                ListFormat::Adblock => self.adblock_line(line, &mut wire, &mut stats),
                ListFormat::Domains | ListFormat::Auto => {
                    self.domain_line(line, &mut wire, &mut stats);
                }
            }
        }
        self.stats.add(&stats);
        stats
    }

    /// Add every name of `text` (one per line, `#` comments) to the
    /// allowlist.
    pub fn add_allowlist(&mut self, text: &str) -> ListStats {
        let mut stats = ListStats::default();
        let mut wire = WireNameBuf::new();
        for line in text.lines() {
            stats.lines += 1;
            let line = strip_comment(line);
            if line.is_empty() {
                stats.ignored += 1;
            } else if line.contains(char::is_whitespace) || !text_to_wire(line, &mut wire) {
                stats.skipped += 1;
            } else {
                self.insert(true, &wire, &mut stats);
            }
        }
        self.stats.add(&stats);
        stats
    }

    fn insert(&mut self, allow: bool, wire: &[u8], stats: &mut ListStats) {
        let (set, counter) = if allow {
            (&mut self.allowed, &mut stats.allowed)
        } else {
            (&mut self.blocked, &mut stats.blocked)
        };
        if set.insert(wire) {
            *counter += 1;
        } else {
            stats.duplicates += 1;
        }
    }

    fn hosts_line(&mut self, line: &str, wire: &mut WireNameBuf, stats: &mut ListStats) {
        let line = strip_comment(line);
        let mut words = line.split_ascii_whitespace();
        let Some(address) = words.next() else {
            stats.ignored += 1;
            return;
        };
        let blocking = address
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified() || ip.is_loopback());
        let mut names = words.peekable();
        if !blocking || names.peek().is_none() {
            stats.skipped += 1;
            return;
        }
        for name in names {
            let local = LOCAL_NAMES
                .iter()
                .any(|local| local.eq_ignore_ascii_case(name.trim_end_matches('.')));
            if local || name.parse::<std::net::IpAddr>().is_ok() {
                stats.ignored += 1;
            } else if text_to_wire(name, wire) {
                self.insert(false, wire, stats);
            } else {
                stats.skipped += 1;
            }
        }
    }

    fn domain_line(&mut self, line: &str, wire: &mut WireNameBuf, stats: &mut ListStats) {
        let line = strip_comment(line);
        if line.is_empty() {
            stats.ignored += 1;
        } else if line.contains(char::is_whitespace) || !text_to_wire(line, wire) {
            stats.skipped += 1;
        } else {
            self.insert(false, wire, stats);
        }
    }

    fn adblock_line(&mut self, line: &str, wire: &mut WireNameBuf, stats: &mut ListStats) {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['!', '[', '#']) {
            stats.ignored += 1;
            return;
        }
        let (allow, rule) = match line.strip_prefix("@@") {
            Some(rule) => (true, rule),
            None => (false, line),
        };
        let Some(rule) = rule.strip_prefix("||") else {
            stats.skipped += 1;
            return;
        };
        // Options after `$` are ignored.
        let rule = rule.split_once('$').map_or(rule, |(rule, _options)| rule);
        let domain = match rule.split_once('^') {
            Some((domain, "" | "|")) => domain,
            Some(_) => {
                stats.skipped += 1;
                return;
            }
            None => rule,
        };
        if text_to_wire(domain, wire) {
            self.insert(allow, wire, stats);
        } else {
            stats.skipped += 1;
        }
    }

    /// Counts over every list added so far.
    pub fn stats(&self) -> ListStats {
        self.stats
    }

    /// Freeze the lists.
    pub fn build(mut self) -> Blocklist {
        self.blocked.shrink_to_fit();
        self.allowed.shrink_to_fit();
        Blocklist {
            blocked: self.blocked,
            allowed: self.allowed,
            stats: self.stats,
        }
    }
}

fn strip_comment(line: &str) -> &str {
    line.split_once('#')
        .map_or(line, |(data, _comment)| data)
        .trim()
}

fn detect(line: &str) -> ListFormat {
    let trimmed = line.trim_start();
    if trimmed.starts_with("||") || trimmed.starts_with(['@', '!', '[']) {
        return ListFormat::Adblock;
    }
    let first = trimmed.split_ascii_whitespace().next().unwrap_or_default();
    if first.parse::<std::net::IpAddr>().is_ok() {
        ListFormat::Hosts
    } else {
        ListFormat::Domains
    }
}

/// The immutable blocklist and allowlist. `Send + Sync`: build it once and
/// share it read-only between cores behind one `Arc`.
#[derive(Debug, Default)]
pub struct Blocklist {
    blocked: DomainSet,
    allowed: DomainSet,
    stats: ListStats,
}

impl Blocklist {
    /// A blocklist that blocks nothing.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The verdict for a query name (any letter case). Never allocates.
    pub fn check(&self, qname: &Name<'_>) -> Verdict {
        if self.blocked.is_empty() {
            return Verdict::Pass;
        }
        let mut wire = WireNameBuf::new();
        qname.write_lower(&mut wire);
        self.check_lower_wire(&wire)
    }

    /// The verdict for a name already in lower-cased wire form.
    pub fn check_lower_wire(&self, wire: &[u8]) -> Verdict {
        if !self.blocked.matches(wire) {
            Verdict::Pass
        } else if self.allowed.matches(wire) {
            Verdict::Allowed
        } else {
            Verdict::Blocked
        }
    }

    /// Number of blocked names (each with its subdomains).
    pub fn blocked_len(&self) -> usize {
        self.blocked.len()
    }

    /// Number of allowed names.
    pub fn allowed_len(&self) -> usize {
        self.allowed.len()
    }

    /// Counts from parsing the lists.
    pub fn stats(&self) -> ListStats {
        self.stats
    }

    /// Heap bytes held by both sets.
    pub fn memory_bytes(&self) -> usize {
        self.blocked.memory_bytes() + self.allowed.memory_bytes()
    }
}
