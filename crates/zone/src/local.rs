//! The zone model and the authoritative lookup: [`Zone`], [`LocalData`].
//!
//! Names are keyed by their lower-cased uncompressed wire form. Every
//! ancestor of an owner up to the apex is present (empty non-terminals are
//! empty nodes), so the closest encloser of RFC 4592 is found by stripping
//! labels until a key hits. Everything is immutable once built.

use std::borrow::Cow;

use hashbrown::HashMap;

use heimdall_wire::{
    Class, Flags, Message, MessageBuilder, Name, NameBuf, Opcode, OptSpec, RData, Rcode,
    RecordType, Section, WireNameBuf,
};

use crate::error::ZoneError;
use crate::parser::ZoneRecord;

/// How many CNAMEs inside local data are followed for one answer.
pub const MAX_CNAME_CHAIN: usize = 8;

/// UDP payload size advertised in the OPT of local answers.
const LOCAL_UDP_PAYLOAD: u16 = 1232;

/// What to do with a query that falls below a delegation (NS records at a
/// name below a zone apex).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DelegationMode {
    /// Answer with a referral: the NS set in the authority section, glue in
    /// the additional section, AA clear.
    #[default]
    Referral,
    /// Tell the caller to forward the query upstream instead.
    Forward,
}

#[derive(Debug, Clone)]
struct RrSet {
    rtype: RecordType,
    class: Class,
    ttl: u32,
    rdatas: Vec<Vec<u8>>,
}

#[derive(Debug, Clone)]
struct Node {
    name: NameBuf,
    rrsets: Vec<RrSet>,
}

impl Node {
    fn new(name: NameBuf) -> Self {
        Self {
            name,
            rrsets: Vec::new(),
        }
    }

    fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|set| set.rtype == rtype)
    }

    fn add(&mut self, record: &ZoneRecord) {
        match self.rrsets.iter_mut().find(|set| set.rtype == record.rtype) {
            Some(set) => {
                if !set.rdatas.contains(&record.rdata) {
                    set.rdatas.push(record.rdata.clone());
                }
            }
            None => self.rrsets.push(RrSet {
                rtype: record.rtype,
                class: record.class,
                ttl: record.ttl,
                rdatas: vec![record.rdata.clone()],
            }),
        }
    }
}

/// Offsets of each label start in an uncompressed wire name, and of the
/// root label last.
fn label_starts(wire: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut pos = 0usize;
    while let Some(&len) = wire.get(pos) {
        starts.push(pos);
        if len == 0 {
            break;
        }
        pos += 1 + usize::from(len);
    }
    starts
}

fn lower_key(name: &Name<'_>) -> WireNameBuf {
    let mut buf = WireNameBuf::new();
    name.write_lower(&mut buf);
    buf
}

/// The suffixes of an uncompressed wire name, longest (the name itself)
/// first, down to the root. Allocation-free.
fn suffixes(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = Some(0usize);
    core::iter::from_fn(move || {
        let start = pos?;
        let suffix = wire.get(start..)?;
        pos = match suffix.first() {
            Some(&len) if len != 0 => Some(start + 1 + usize::from(len)),
            _ => None,
        };
        Some(suffix)
    })
}

fn first_name(rdata: &[u8], skip: usize) -> Option<NameBuf> {
    let rest = rdata.get(skip..)?;
    let starts = label_starts(rest);
    let end = starts.last().map(|&last| last + 1)?;
    NameBuf::from_wire(rest.get(..end)?).ok()
}

/// One record of an answer, borrowing its RDATA from the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRecord<'z> {
    /// The owner (the query name for wildcard answers).
    pub owner: NameBuf,
    /// The type.
    pub rtype: RecordType,
    /// The class.
    pub class: Class,
    /// The TTL.
    pub ttl: u32,
    /// Uncompressed wire RDATA.
    pub rdata: Cow<'z, [u8]>,
}

/// An authoritative answer, section by section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'z> {
    /// NOERROR or NXDOMAIN.
    pub rcode: Rcode,
    /// AA: set except for referrals.
    pub authoritative: bool,
    /// The answer section.
    pub answer: Vec<AnswerRecord<'z>>,
    /// The authority section.
    pub authority: Vec<AnswerRecord<'z>>,
    /// The additional section.
    pub additional: Vec<AnswerRecord<'z>>,
}

impl<'z> Answer<'z> {
    fn new() -> Self {
        Self {
            rcode: Rcode::NOERROR,
            authoritative: true,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }
}

fn push_set<'z>(out: &mut Vec<AnswerRecord<'z>>, owner: &NameBuf, set: &'z RrSet) {
    for rdata in &set.rdatas {
        out.push(AnswerRecord {
            owner: owner.clone(),
            rtype: set.rtype,
            class: set.class,
            ttl: set.ttl,
            rdata: Cow::Borrowed(rdata),
        });
    }
}

/// The result of looking a query up in local data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<'z> {
    /// Answer from local data.
    Answer(Answer<'z>),
    /// The name is below a delegation and the mode is
    /// [`DelegationMode::Forward`]: forward the query upstream.
    Forward,
    /// Local data has nothing to say: resolve as usual.
    NotLocal,
}

/// What [`LocalData::respond`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// A whole reply of this many bytes was written to the buffer.
    Written(usize),
    /// Forward the query upstream (below a delegation).
    Forward,
    /// Not local data: resolve as usual. Nothing was written.
    NotLocal,
}

/// Where a name is redirected before its own data is looked at.
enum Redirect<'z> {
    /// A zone cut (NS below the apex).
    Cut(&'z Node),
    /// A DNAME at an ancestor; the index is where the ancestor's labels
    /// start in the query name.
    Dname(&'z Node, &'z RrSet, usize),
}

/// One zone: an apex with its SOA and every name below it.
#[derive(Debug, Clone)]
pub struct Zone {
    apex: NameBuf,
    apex_key: Vec<u8>,
    class: Class,
    soa: RrSet,
    nodes: HashMap<Vec<u8>, Node>,
}

impl Zone {
    /// Build a zone from its records. There must be exactly one SOA; its
    /// owner is the apex. Every record must be at or below the apex and in
    /// the SOA's class; a CNAME may not share its name with other data.
    pub fn new(records: &[ZoneRecord]) -> Result<Self, ZoneError> {
        let mut soas = records
            .iter()
            .filter(|record| record.rtype == RecordType::SOA);
        let soa = soas.next().ok_or_else(|| ZoneError::Zone {
            zone: records
                .first()
                .map_or_else(String::new, |record| record.owner.to_string()),
            what: "no SOA record".to_owned(),
        })?;
        let apex = soa.owner.clone();
        if soas.next().is_some() {
            return Err(ZoneError::Zone {
                zone: apex.to_string(),
                what: "more than one SOA record".to_owned(),
            });
        }
        let apex_key = apex.to_lowercase().as_wire().to_vec();
        let mut nodes: HashMap<Vec<u8>, Node> = HashMap::new();
        for record in records {
            if !record.owner.as_name().is_subdomain_of(&apex.as_name()) {
                return Err(ZoneError::Zone {
                    zone: apex.to_string(),
                    what: format!("{} is outside the zone", record.owner),
                });
            }
            if record.class != soa.class {
                return Err(ZoneError::Zone {
                    zone: apex.to_string(),
                    what: format!(
                        "{} has class {}, not {}",
                        record.owner, record.class, soa.class
                    ),
                });
            }
            let wire = record.owner.as_wire();
            let key = record.owner.to_lowercase().as_wire().to_vec();
            // The owner and its ancestors down to the apex (empty
            // non-terminals).
            for start in label_starts(wire) {
                let Some(suffix) = key.get(start..) else {
                    continue;
                };
                if suffix.len() < apex_key.len() {
                    break;
                }
                if !nodes.contains_key(suffix) {
                    let original = wire
                        .get(start..)
                        .and_then(|bytes| NameBuf::from_wire(bytes).ok())
                        .unwrap_or_else(NameBuf::root);
                    nodes.insert(suffix.to_vec(), Node::new(original));
                }
            }
            if let Some(node) = nodes.get_mut(&key) {
                node.add(record);
            }
        }
        for node in nodes.values() {
            if node.get(RecordType::CNAME).is_some()
                && node.rrsets.iter().any(|set| {
                    !matches!(
                        set.rtype,
                        RecordType::CNAME | RecordType::RRSIG | RecordType::NSEC
                    )
                })
            {
                return Err(ZoneError::Zone {
                    zone: apex.to_string(),
                    what: format!("{} has a CNAME and other data", node.name),
                });
            }
        }
        let soa = nodes
            .get(&apex_key)
            .and_then(|node| node.get(RecordType::SOA))
            .cloned()
            .ok_or_else(|| ZoneError::Zone {
                zone: apex.to_string(),
                what: "no SOA record".to_owned(),
            })?;
        Ok(Self {
            class: soa.class,
            apex,
            apex_key,
            soa,
            nodes,
        })
    }

    /// The apex, letter case as in the SOA owner.
    pub fn apex(&self) -> &NameBuf {
        &self.apex
    }

    /// The class of the zone.
    pub fn class(&self) -> Class {
        self.class
    }

    /// Negative answers: the SOA with TTL = min(SOA TTL, MINIMUM)
    /// (RFC 2308 section 3).
    fn push_soa<'z>(&'z self, out: &mut Vec<AnswerRecord<'z>>) {
        for rdata in &self.soa.rdatas {
            let minimum = rdata
                .len()
                .checked_sub(4)
                .and_then(|at| rdata.get(at..))
                .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
                .map_or(self.soa.ttl, u32::from_be_bytes);
            out.push(AnswerRecord {
                owner: self.apex.clone(),
                rtype: RecordType::SOA,
                class: self.class,
                ttl: self.soa.ttl.min(minimum),
                rdata: Cow::Borrowed(rdata),
            });
        }
    }

    /// The highest delegation point (NS strictly below the apex, at or
    /// above `key`; a DS query at the cut itself belongs to this zone) or
    /// DNAME (strictly above `key`), whichever comes first from the apex.
    fn find_redirect(&self, key: &[u8], qtype: RecordType) -> Option<Redirect<'_>> {
        let starts = label_starts(key);
        for &start in starts.iter().rev() {
            let Some(suffix) = key.get(start..) else {
                continue;
            };
            if suffix.len() < self.apex_key.len() {
                continue;
            }
            let Some(node) = self.nodes.get(suffix) else {
                continue;
            };
            let at_apex = suffix.len() == self.apex_key.len();
            let ds_at_cut = start == 0 && qtype == RecordType::DS;
            if !at_apex && !ds_at_cut && node.get(RecordType::NS).is_some() {
                return Some(Redirect::Cut(node));
            }
            if start > 0
                && let Some(set) = node.get(RecordType::DNAME)
            {
                return Some(Redirect::Dname(node, set, start));
            }
        }
        None
    }

    /// A and AAAA records of `target` if it is in this zone.
    fn push_addresses<'z>(&'z self, target: &NameBuf, out: &mut Vec<AnswerRecord<'z>>) {
        let key = target.to_lowercase();
        let Some(node) = self.nodes.get(key.as_wire()) else {
            return;
        };
        for rtype in [RecordType::A, RecordType::AAAA] {
            if out
                .iter()
                .any(|record| record.rtype == rtype && record.owner.to_lowercase() == key)
            {
                continue;
            }
            if let Some(set) = node.get(rtype) {
                push_set(out, &node.name, set);
            }
        }
    }

    fn additional_for<'z>(&'z self, set: &RrSet, out: &mut Vec<AnswerRecord<'z>>) {
        let skip = match set.rtype {
            RecordType::NS => 0,
            RecordType::MX => 2,
            RecordType::SRV => 6,
            _ => return,
        };
        for rdata in &set.rdatas {
            if let Some(target) = first_name(rdata, skip) {
                self.push_addresses(&target, out);
            }
        }
    }

    /// RFC 6672: answer with the DNAME and a CNAME synthesized from it;
    /// follow the new name if it is in this zone.
    fn dname<'z>(
        &'z self,
        qname: &NameBuf,
        node: &'z Node,
        set: &'z RrSet,
        start: usize,
        answer: &mut Answer<'z>,
    ) -> Option<NameBuf> {
        push_set(&mut answer.answer, &node.name, set);
        let target = set.rdatas.first()?;
        let mut wire = qname.as_wire().get(..start)?.to_vec();
        wire.extend_from_slice(target);
        let Ok(synthesized) = NameBuf::from_wire(&wire) else {
            answer.rcode = Rcode::YXDOMAIN;
            return None;
        };
        answer.answer.push(AnswerRecord {
            owner: qname.clone(),
            rtype: RecordType::CNAME,
            class: set.class,
            ttl: set.ttl,
            rdata: Cow::Owned(synthesized.as_wire().to_vec()),
        });
        Some(synthesized).filter(|name| name.as_name().is_subdomain_of(&self.apex.as_name()))
    }

    fn referral<'z>(&'z self, cut: &'z Node) -> Answer<'z> {
        let mut answer = Answer::new();
        answer.authoritative = false;
        if let Some(set) = cut.get(RecordType::NS) {
            push_set(&mut answer.authority, &cut.name, set);
            self.additional_for(set, &mut answer.additional);
        }
        answer
    }

    /// Answer `qname` from this zone. `first` is false inside a CNAME
    /// chain. Returns the next name to follow, if any.
    fn step<'z>(
        &'z self,
        qname: &NameBuf,
        qtype: RecordType,
        mode: DelegationMode,
        first: bool,
        answer: &mut Answer<'z>,
    ) -> Result<Option<NameBuf>, ()> {
        let key = qname.to_lowercase();
        let key = key.as_wire();
        match self.find_redirect(key, qtype) {
            Some(Redirect::Cut(cut)) => {
                if !first {
                    return Ok(None);
                }
                return match mode {
                    DelegationMode::Forward => Err(()),
                    DelegationMode::Referral => {
                        *answer = self.referral(cut);
                        Ok(None)
                    }
                };
            }
            Some(Redirect::Dname(node, set, start)) => {
                return Ok(self.dname(qname, node, set, start, answer));
            }
            None => {}
        }
        let node = match self.nodes.get(key) {
            Some(node) => node,
            None => {
                // RFC 4592: the closest encloser, then its wildcard child.
                let encloser = suffixes(key)
                    .find(|suffix| self.nodes.contains_key(*suffix))
                    .unwrap_or(&self.apex_key);
                let mut wildcard = vec![1, b'*'];
                wildcard.extend_from_slice(encloser);
                match self.nodes.get(&wildcard) {
                    Some(node) => node,
                    None => {
                        answer.rcode = Rcode::NXDOMAIN;
                        self.push_soa(&mut answer.authority);
                        return Ok(None);
                    }
                }
            }
        };
        if qtype == RecordType::ANY && !node.rrsets.is_empty() {
            for set in &node.rrsets {
                push_set(&mut answer.answer, qname, set);
            }
            return Ok(None);
        }
        if let Some(set) = node.get(qtype) {
            push_set(&mut answer.answer, qname, set);
            // Minimal responses, as NSD with `minimal-responses: yes`:
            // addresses are added only for NS answers (and referrals).
            if qtype == RecordType::NS {
                self.additional_for(set, &mut answer.additional);
            }
            return Ok(None);
        }
        if let Some(set) = node.get(RecordType::CNAME) {
            push_set(&mut answer.answer, qname, set);
            let target = set.rdatas.first().and_then(|rdata| first_name(rdata, 0));
            return Ok(
                target.filter(|target| target.as_name().is_subdomain_of(&self.apex.as_name()))
            );
        }
        self.push_soa(&mut answer.authority);
        Ok(None)
    }
}

/// An immutable set of zones and loose records that answers queries
/// authoritatively. `Send + Sync`: share one snapshot behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct LocalData {
    zones: HashMap<Vec<u8>, Zone>,
    loose: HashMap<Vec<u8>, Node>,
    mode: DelegationMode,
}

/// Collects zones and records, then builds a [`LocalData`].
#[derive(Debug, Clone, Default)]
pub struct LocalDataBuilder {
    zones: Vec<Vec<ZoneRecord>>,
    records: Vec<ZoneRecord>,
    builtins: bool,
    mode: DelegationMode,
}

impl LocalDataBuilder {
    /// An empty builder: no built-in zones, referrals for delegations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a zone (its records, one SOA among them).
    pub fn zone(mut self, records: Vec<ZoneRecord>) -> Self {
        self.zones.push(records);
        self
    }

    /// Add individual records. Those inside a zone join it; others answer
    /// for their exact names only (NODATA without SOA for other types).
    pub fn records(mut self, records: impl IntoIterator<Item = ZoneRecord>) -> Self {
        self.records.extend(records);
        self
    }

    /// Include the built-in RFC 6761 / RFC 6303 zones, except where a zone
    /// with the same apex was added.
    pub fn builtins(mut self, on: bool) -> Self {
        self.builtins = on;
        self
    }

    /// How to answer below delegations.
    pub fn delegation_mode(mut self, mode: DelegationMode) -> Self {
        self.mode = mode;
        self
    }

    /// Build the snapshot.
    pub fn build(self) -> Result<LocalData, ZoneError> {
        let mut sets = self.zones;
        let apex_of = |records: &[ZoneRecord]| {
            records
                .iter()
                .find(|record| record.rtype == RecordType::SOA)
                .map(|record| record.owner.to_lowercase())
        };
        if self.builtins {
            let user: Vec<_> = sets.iter().filter_map(|set| apex_of(set)).collect();
            for builtin in crate::builtin::builtin_zones()? {
                if apex_of(&builtin).is_some_and(|apex| !user.contains(&apex)) {
                    sets.push(builtin);
                }
            }
        }
        let apexes: Vec<Option<NameBuf>> = sets.iter().map(|set| apex_of(set)).collect();
        let mut loose: HashMap<Vec<u8>, Node> = HashMap::new();
        for record in self.records {
            let home = apexes
                .iter()
                .enumerate()
                .filter_map(|(index, apex)| apex.as_ref().map(|apex| (index, apex)))
                .filter(|(_, apex)| record.owner.as_name().is_subdomain_of(&apex.as_name()))
                .max_by_key(|(_, apex)| apex.as_wire().len())
                .map(|(index, _)| index);
            match home.and_then(|index| sets.get_mut(index)) {
                Some(set) => set.push(record),
                None => {
                    let key = record.owner.to_lowercase().as_wire().to_vec();
                    loose
                        .entry(key)
                        .or_insert_with(|| Node::new(record.owner.clone()))
                        .add(&record);
                }
            }
        }
        let mut zones = HashMap::new();
        for set in &sets {
            let zone = Zone::new(set)?;
            if zones.contains_key(&zone.apex_key) {
                return Err(ZoneError::Zone {
                    zone: zone.apex.to_string(),
                    what: "defined twice".to_owned(),
                });
            }
            zones.insert(zone.apex_key.clone(), zone);
        }
        Ok(LocalData {
            zones,
            loose,
            mode: self.mode,
        })
    }
}

impl LocalData {
    /// Start building.
    pub fn builder() -> LocalDataBuilder {
        LocalDataBuilder::new()
    }

    /// The deepest zone containing `key` (a lower-cased wire name).
    fn zone_for(&self, key: &[u8]) -> Option<&Zone> {
        suffixes(key).find_map(|suffix| self.zones.get(suffix))
    }

    /// Whether any data is loaded.
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty() && self.loose.is_empty()
    }

    /// Every name this data answers at or below, lower-cased wire form:
    /// each zone's apex and each loose record's owner. A cache that sits
    /// in front of local data purges these subtrees when the data changes.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.zones
            .keys()
            .chain(self.loose.keys())
            .map(Vec::as_slice)
    }

    /// Look a query up. `dnssec_ok` is accepted for the interface; local
    /// zones are served unsigned.
    pub fn lookup(
        &self,
        qname: &Name<'_>,
        qtype: RecordType,
        qclass: Class,
        dnssec_ok: bool,
    ) -> Outcome<'_> {
        let _ = dnssec_ok;
        let key = lower_key(qname);
        let key = &key[..];
        let owner = NameBuf::from_name(qname);
        if let Some(node) = self
            .loose
            .get(key)
            .filter(|node| node.rrsets.iter().any(|set| set.class == qclass))
        {
            let mut answer = Answer::new();
            let sets = node.rrsets.iter().filter(|set| set.class == qclass);
            for set in sets {
                if set.rtype == qtype || qtype == RecordType::ANY || set.rtype == RecordType::CNAME
                {
                    push_set(&mut answer.answer, &owner, set);
                }
            }
            if answer.answer.iter().any(|record| record.rtype == qtype) {
                answer.answer.retain(|record| record.rtype == qtype);
            }
            return Outcome::Answer(answer);
        }
        let Some(zone) = self.zone_for(key).filter(|zone| zone.class == qclass) else {
            return Outcome::NotLocal;
        };
        let mut answer = Answer::new();
        let mut current = owner;
        let mut seen: Vec<NameBuf> = Vec::new();
        for hop in 0..=MAX_CNAME_CHAIN {
            seen.push(current.to_lowercase());
            match zone.step(&current, qtype, self.mode, hop == 0, &mut answer) {
                Err(()) => return Outcome::Forward,
                Ok(None) => break,
                Ok(Some(next)) if seen.contains(&next.to_lowercase()) => break,
                Ok(Some(next)) => current = next,
            }
        }
        Outcome::Answer(answer)
    }

    /// Answer the client's `query` into `buf` when local data covers it:
    /// header (ID, opcode, RD and CD echoed; QR and AA set as fits), the
    /// question as asked, the sections, and an OPT if the query had one.
    /// The reply is cut to `limit` bytes with TC set (RRsets are kept
    /// whole). Only standard queries with one question are answered; other
    /// opcodes and question counts give [`Reply::NotLocal`].
    pub fn respond(
        &self,
        query: &Message<'_>,
        buf: &mut [u8],
        limit: usize,
    ) -> Result<Reply, ZoneError> {
        let Some(question) = query.question() else {
            return Ok(Reply::NotLocal);
        };
        if query.flags().opcode() != Opcode::QUERY || query.questions().count() != 1 {
            return Ok(Reply::NotLocal);
        }
        let opt = query.opt();
        let dnssec_ok = opt.is_some_and(|opt| opt.dnssec_ok());
        let answer = match self.lookup(&question.name, question.qtype, question.qclass, dnssec_ok) {
            Outcome::Answer(answer) => answer,
            Outcome::Forward => return Ok(Reply::Forward),
            Outcome::NotLocal => return Ok(Reply::NotLocal),
        };
        let flags = query.flags();
        let mut builder = MessageBuilder::new(buf)?;
        builder.set_id(query.id());
        builder.set_flags(
            Flags::default()
                .with_response(true)
                .with_opcode(flags.opcode())
                .with_recursion_desired(flags.recursion_desired())
                // Local data is served by a recursive service: RA says so
                // (without it `dig` warns "recursion requested but not
                // available", and stub resolvers may distrust the answer).
                .with_recursion_available(true)
                .with_checking_disabled(flags.checking_disabled())
                .with_authoritative(answer.authoritative)
                .with_rcode(answer.rcode),
        );
        builder.set_limit(limit);
        let spec = OptSpec {
            udp_payload_size: LOCAL_UDP_PAYLOAD,
            extended_rcode: 0,
            version: 0,
            dnssec_ok,
            options: &[],
        };
        if opt.is_some() {
            builder.reserve(spec.wire_len());
        }
        builder.question(&question.name, question.qtype, question.qclass)?;
        let sections = [
            (Section::Answer, &answer.answer),
            (Section::Authority, &answer.authority),
            (Section::Additional, &answer.additional),
        ];
        'sections: for (section, records) in sections {
            for record in records {
                let bytes: &[u8] = &record.rdata;
                let rdata = RData::parse(bytes, record.rtype, 0, bytes.len())
                    .unwrap_or(RData::Unknown(bytes));
                let written = builder.record(
                    section,
                    &record.owner.as_name(),
                    record.rtype,
                    record.class,
                    record.ttl,
                    &rdata,
                );
                if let Err(err) = written {
                    if builder.truncated() {
                        break 'sections;
                    }
                    return Err(err.into());
                }
            }
        }
        if opt.is_some() {
            builder.opt(&spec)?;
        }
        Ok(Reply::Written(builder.finish()))
    }
}
