//! The generated zone: which names exist, what they hold, and how one
//! question is answered (sans-IO; the threads only move bytes).
//!
//! Every name and value is a pure function of the index in its first label,
//! so a test in another crate can compute what any answer must contain
//! without asking the upstream (see the `host_v4`-style functions).
//!
//! Layout under the origin `O` (default `zone.test.`), for `i` in
//! `0..names` (decimal, no leading zeros; labels match case-insensitively):
//!
//! | name          | records                                              |
//! |---------------|------------------------------------------------------|
//! | `O`           | SOA, NS `ns1.O`                                      |
//! | `ns1.O`       | A [`NS_V4`]                                          |
//! | `host-i.O`    | A [`host_v4`], AAAA [`host_v6`], MX 10 `mail-i.O`, TXT [`host_txt`] |
//! | `alias-i.O`   | CNAME `host-i.O`                                     |
//! | `big-i.O`     | [`BIG_TXT_RECORDS`] TXT records of [`BIG_TXT_STRING_LEN`] bytes |
//! | `mail-i.O`    | A [`mail_v4`]                                        |
//!
//! Positive records carry the zone TTL. Any other name under `O` is
//! NXDOMAIN, and a type a name lacks is NODATA; both carry the SOA in the
//! authority section with TTL and MINIMUM both equal to the negative TTL,
//! so a cache's negative lifetime (RFC 2308: the lesser of the two) is
//! exactly the configured value.

use std::io::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr};

use heimdall_wire::{
    Class, MAX_NAME_LEN, MessageBuilder, Mx, Name, NameBuf, RData, Rcode, RecordType, Section, Soa,
    Txt,
};

/// The origin used when none is configured.
pub const DEFAULT_ORIGIN: &str = "zone.test.";
/// Preference of every MX record.
pub const MX_PREFERENCE: u16 = 10;
/// Records in the TXT RRset of each `big-i` name.
pub const BIG_TXT_RECORDS: usize = 4;
/// Length of the single character-string of each `big-i` TXT record. With
/// four of them the RRset is about 900 bytes on the wire: over 512 (so a
/// client without EDNS gets TC) and under 1232 (so an EDNS client does not).
pub const BIG_TXT_STRING_LEN: usize = 200;
/// The address of `ns1.O`: loopback, so that nothing that follows the
/// delegation ever sends a packet off the machine.
pub const NS_V4: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// SOA serial.
pub const SOA_SERIAL: u32 = 1;
/// SOA refresh.
pub const SOA_REFRESH: u32 = 3600;
/// SOA retry.
pub const SOA_RETRY: u32 = 600;
/// SOA expire.
pub const SOA_EXPIRE: u32 = 86_400;

/// The longest first label the zone generates (`alias-4294967295`); the
/// origin must leave room for it.
const LONGEST_LABEL: usize = 16;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The zone's apex.
    pub origin: NameBuf,
    /// How many `host-i` (and `alias-i`, `big-i`, `mail-i`) names exist.
    pub names: u32,
    /// TTL of every positive record.
    pub ttl: u32,
    /// SOA MINIMUM, and the TTL of the SOA in negative answers.
    pub negative_ttl: u32,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            origin: NameBuf::from_presentation(DEFAULT_ORIGIN).unwrap_or_else(|_| NameBuf::root()),
            names: 1000,
            ttl: 300,
            negative_ttl: 60,
        }
    }
}

/// A name of the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// The origin itself.
    Apex,
    /// `ns1.O`.
    Ns,
    /// `host-i.O`.
    Host(u32),
    /// `alias-i.O`.
    Alias(u32),
    /// `big-i.O`.
    Big(u32),
    /// `mail-i.O`.
    Mail(u32),
}

impl Node {
    /// The types this name holds, in the order they are written for ANY.
    pub fn types(self) -> &'static [RecordType] {
        match self {
            Self::Apex => &[RecordType::SOA, RecordType::NS],
            Self::Ns | Self::Mail(_) => &[RecordType::A],
            Self::Host(_) => &[
                RecordType::A,
                RecordType::AAAA,
                RecordType::MX,
                RecordType::TXT,
            ],
            Self::Alias(_) => &[RecordType::CNAME],
            Self::Big(_) => &[RecordType::TXT],
        }
    }
}

/// Makes the node of one indexed kind.
type IndexedNode = fn(u32) -> Node;

/// Where a name falls relative to the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Not at or below the origin.
    Outside,
    /// Below the origin but not generated.
    Missing,
    /// A generated name.
    Found(Node),
}

/// The A record of `host-i`: `10.0.0.0/8` from the low 24 bits of `i`.
pub fn host_v4(i: u32) -> Ipv4Addr {
    let [_, a, b, c] = i.to_be_bytes();
    Ipv4Addr::new(10, a, b, c)
}

/// The AAAA record of `host-i`: `2001:db8::` with `i` in the low 32 bits.
pub fn host_v6(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, (i >> 16) as u16, i as u16)
}

/// The A record of `mail-i`: `172.16.0.0/12` from the low 20 bits of `i`.
pub fn mail_v4(i: u32) -> Ipv4Addr {
    let [_, a, b, c] = i.to_be_bytes();
    Ipv4Addr::new(172, 16 | (a & 0x0f), b, c)
}

/// The single character-string of the TXT record of `host-i`.
pub fn host_txt(i: u32) -> String {
    format!("host-{i}")
}

/// Character-string `k` (0-based) of the TXT RRset of `big-i`: a
/// `big-i-k:` prefix, then letters, so every string differs.
pub fn big_txt_string(i: u32, k: usize) -> [u8; BIG_TXT_STRING_LEN] {
    let mut out = [0u8; BIG_TXT_STRING_LEN];
    let prefix_len = {
        let mut cursor = io::Cursor::new(out.as_mut_slice());
        let _fits = write!(cursor, "big-{i}-{k}:");
        cursor.position() as usize
    };
    let shift = (i as usize).wrapping_add(k);
    for (pos, byte) in out.iter_mut().enumerate().skip(prefix_len) {
        *byte = b'a' + (pos.wrapping_add(shift) % 26) as u8;
    }
    out
}

/// `prefix` followed by the decimal `i`, as label bytes.
fn index_label(prefix: &str, i: u32, out: &mut [u8; LONGEST_LABEL + 4]) -> usize {
    let mut cursor = io::Cursor::new(out.as_mut_slice());
    let _fits = write!(cursor, "{prefix}{i}");
    cursor.position() as usize
}

/// A decimal index without sign or leading zeros (`host-01` is not
/// `host-1`: each name has exactly one spelling).
fn parse_index(digits: &[u8]) -> Option<u32> {
    match digits {
        [] => None,
        [b'0', _, ..] => None,
        _ => digits.iter().try_fold(0u32, |acc, &digit| {
            if !digit.is_ascii_digit() {
                return None;
            }
            acc.checked_mul(10)?.checked_add(u32::from(digit - b'0'))
        }),
    }
}

fn strip_prefix_ignore_case<'l>(label: &'l [u8], prefix: &[u8]) -> Option<&'l [u8]> {
    let (head, rest) = label.split_at_checked(prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then_some(rest)
}

/// The generated zone.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: NameBuf,
    names: u32,
    ttl: u32,
    negative_ttl: u32,
}

impl Zone {
    /// Check the configuration and build the zone.
    pub fn new(config: &ZoneConfig) -> io::Result<Self> {
        if config.origin.as_wire().len() + 1 + LONGEST_LABEL > MAX_NAME_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "zone origin {} is too long to hold names such as alias-{}",
                    config.origin,
                    u32::MAX
                ),
            ));
        }
        Ok(Self {
            origin: config.origin.clone(),
            names: config.names,
            ttl: config.ttl,
            negative_ttl: config.negative_ttl,
        })
    }

    /// The apex.
    pub fn origin(&self) -> &NameBuf {
        &self.origin
    }

    /// How many indexed names of each kind exist.
    pub fn names(&self) -> u32 {
        self.names
    }

    /// TTL of positive records.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// TTL and MINIMUM of the SOA in negative answers.
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// The full name of `node` (in lower case).
    pub fn name_of(&self, node: Node) -> NameBuf {
        let mut label = [0u8; LONGEST_LABEL + 4];
        let len = match node {
            Node::Apex => return self.origin.clone(),
            Node::Ns => index_label("ns", 1, &mut label),
            Node::Host(i) => index_label("host-", i, &mut label),
            Node::Alias(i) => index_label("alias-", i, &mut label),
            Node::Big(i) => index_label("big-", i, &mut label),
            Node::Mail(i) => index_label("mail-", i, &mut label),
        };
        self.child(label.get(..len).unwrap_or_default())
    }

    /// `label` prepended to the origin (the origin itself if that would
    /// not be a valid name, which `new` rules out for generated labels).
    fn child(&self, label: &[u8]) -> NameBuf {
        let mut wire = [0u8; MAX_NAME_LEN];
        let origin = self.origin.as_wire();
        let total = 1 + label.len() + origin.len();
        let (Ok(label_len), Some(out)) = (u8::try_from(label.len()), wire.get_mut(..total)) else {
            return self.origin.clone();
        };
        let (head, tail) = out.split_at_mut(1 + label.len());
        let (len_byte, label_bytes) = head.split_at_mut(1);
        len_byte.fill(label_len);
        label_bytes.copy_from_slice(label);
        tail.copy_from_slice(origin);
        NameBuf::from_wire(out).unwrap_or_else(|_| self.origin.clone())
    }

    /// Classify `name`.
    pub fn lookup(&self, name: &Name<'_>) -> Lookup {
        let origin = self.origin.as_name();
        if !name.is_subdomain_of(&origin) {
            return Lookup::Outside;
        }
        match name.label_count() - origin.label_count() {
            0 => return Lookup::Found(Node::Apex),
            1 => {}
            _ => return Lookup::Missing,
        }
        let Some(label) = name.labels().next() else {
            return Lookup::Missing;
        };
        if label.eq_ignore_ascii_case(b"ns1") {
            return Lookup::Found(Node::Ns);
        }
        let kinds: [(&[u8], IndexedNode); 4] = [
            (b"host-", Node::Host),
            (b"alias-", Node::Alias),
            (b"big-", Node::Big),
            (b"mail-", Node::Mail),
        ];
        kinds
            .iter()
            .find_map(|(prefix, make)| {
                let index = parse_index(strip_prefix_ignore_case(label, prefix)?)?;
                (index < self.names).then(|| make(index))
            })
            .map_or(Lookup::Missing, Lookup::Found)
    }

    /// Write the answer to (`qname`, `qtype`) in class IN and return its
    /// rcode and whether it is authoritative. The question is already
    /// written. Errors from the builder are truncation, which the builder
    /// records (TC) by itself, so they are not reported again here.
    pub(crate) fn answer(
        &self,
        builder: &mut MessageBuilder<'_>,
        qname: &Name<'_>,
        qtype: RecordType,
    ) -> (Rcode, bool) {
        let node = match self.lookup(qname) {
            Lookup::Outside => return (Rcode::REFUSED, false),
            Lookup::Missing => {
                self.write_negative_soa(builder);
                return (Rcode::NXDOMAIN, true);
            }
            Lookup::Found(node) => node,
        };
        if self.write_node(builder, qname, node, qtype) {
            return (Rcode::NOERROR, true);
        }
        if let Node::Alias(i) = node {
            // RFC 1034 section 3.6.2: the CNAME, then the answer for its
            // target, which is in this zone.
            self.write_rrset(builder, Section::Answer, qname, node, RecordType::CNAME);
            let target = self.name_of(Node::Host(i));
            if !self.write_node(builder, &target.as_name(), Node::Host(i), qtype) {
                self.write_negative_soa(builder);
            }
            return (Rcode::NOERROR, true);
        }
        self.write_negative_soa(builder);
        (Rcode::NOERROR, true)
    }

    /// Write `node`'s records of `qtype` (every type for ANY) owned by
    /// `owner`, plus the additional A for an MX; false if it has none.
    fn write_node(
        &self,
        builder: &mut MessageBuilder<'_>,
        owner: &Name<'_>,
        node: Node,
        qtype: RecordType,
    ) -> bool {
        let types = node.types();
        let wanted = |rtype: &&RecordType| qtype == RecordType::ANY || **rtype == qtype;
        if !types.iter().any(|rtype| wanted(&rtype)) {
            return false;
        }
        for &rtype in types.iter().filter(wanted) {
            self.write_rrset(builder, Section::Answer, owner, node, rtype);
        }
        if let Node::Host(i) = node
            && types.iter().filter(wanted).any(|&t| t == RecordType::MX)
        {
            let mail = self.name_of(Node::Mail(i));
            self.write_rrset(
                builder,
                Section::Additional,
                &mail.as_name(),
                Node::Mail(i),
                RecordType::A,
            );
        }
        true
    }

    fn write_rrset(
        &self,
        builder: &mut MessageBuilder<'_>,
        section: Section,
        owner: &Name<'_>,
        node: Node,
        rtype: RecordType,
    ) {
        let ttl = self.ttl;
        let mut put = |rdata: &RData<'_>| {
            let _cut = builder.record(section, owner, rtype, Class::IN, ttl, rdata);
        };
        match (node, rtype) {
            (Node::Apex, RecordType::SOA) => {
                let (mname, rname) = self.soa_names();
                put(&self.soa_rdata(&mname, &rname));
            }
            (Node::Apex, RecordType::NS) => put(&RData::Ns(self.name_of(Node::Ns).as_name())),
            (Node::Ns, RecordType::A) => put(&RData::A(NS_V4)),
            (Node::Host(i), RecordType::A) => put(&RData::A(host_v4(i))),
            (Node::Host(i), RecordType::AAAA) => put(&RData::Aaaa(host_v6(i))),
            (Node::Host(i), RecordType::MX) => {
                let exchange = self.name_of(Node::Mail(i));
                put(&RData::Mx(Mx {
                    preference: MX_PREFERENCE,
                    exchange: exchange.as_name(),
                }));
            }
            (Node::Host(i), RecordType::TXT) => {
                let text = host_txt(i);
                let mut wire = [0u8; 1 + LONGEST_LABEL + 4];
                let len = text.len().min(wire.len() - 1);
                if let (Some((len_byte, body)), Some(source)) =
                    (wire.split_first_mut(), text.as_bytes().get(..len))
                {
                    *len_byte = len as u8;
                    if let Some(target) = body.get_mut(..len) {
                        target.copy_from_slice(source);
                    }
                }
                if let Some(Ok(txt)) = wire.get(..1 + len).map(|bytes| Txt::new(bytes, 0)) {
                    put(&RData::Txt(txt));
                }
            }
            (Node::Alias(i), RecordType::CNAME) => {
                put(&RData::Cname(self.name_of(Node::Host(i)).as_name()));
            }
            (Node::Big(i), RecordType::TXT) => {
                for k in 0..BIG_TXT_RECORDS {
                    let mut wire = [0u8; 1 + BIG_TXT_STRING_LEN];
                    if let Some((len_byte, body)) = wire.split_first_mut() {
                        *len_byte = BIG_TXT_STRING_LEN as u8;
                        body.copy_from_slice(&big_txt_string(i, k));
                    }
                    if let Ok(txt) = Txt::new(&wire, 0) {
                        put(&RData::Txt(txt));
                    }
                }
            }
            (Node::Mail(i), RecordType::A) => put(&RData::A(mail_v4(i))),
            _ => {}
        }
    }

    fn soa_names(&self) -> (NameBuf, NameBuf) {
        (self.name_of(Node::Ns), self.child(b"hostmaster"))
    }

    fn soa_rdata<'n>(&self, mname: &'n NameBuf, rname: &'n NameBuf) -> RData<'n> {
        RData::Soa(Soa {
            mname: mname.as_name(),
            rname: rname.as_name(),
            serial: SOA_SERIAL,
            refresh: SOA_REFRESH,
            retry: SOA_RETRY,
            expire: SOA_EXPIRE,
            minimum: self.negative_ttl,
        })
    }

    fn write_negative_soa(&self, builder: &mut MessageBuilder<'_>) {
        let (mname, rname) = self.soa_names();
        let _cut = builder.record(
            Section::Authority,
            &self.origin.as_name(),
            RecordType::SOA,
            Class::IN,
            self.negative_ttl,
            &self.soa_rdata(&mname, &rname),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        Zone::new(&ZoneConfig {
            names: 100,
            ..ZoneConfig::default()
        })
        .unwrap()
    }

    fn lookup(zone: &Zone, text: &str) -> Lookup {
        zone.lookup(&NameBuf::from_presentation(text).unwrap().as_name())
    }

    #[test]
    fn names_are_classified() {
        let zone = zone();
        assert_eq!(lookup(&zone, "zone.test."), Lookup::Found(Node::Apex));
        assert_eq!(lookup(&zone, "NS1.Zone.Test."), Lookup::Found(Node::Ns));
        assert_eq!(
            lookup(&zone, "host-0.zone.test."),
            Lookup::Found(Node::Host(0))
        );
        assert_eq!(
            lookup(&zone, "HOST-99.zone.test."),
            Lookup::Found(Node::Host(99))
        );
        assert_eq!(
            lookup(&zone, "alias-7.zone.test."),
            Lookup::Found(Node::Alias(7))
        );
        assert_eq!(
            lookup(&zone, "big-7.zone.test."),
            Lookup::Found(Node::Big(7))
        );
        assert_eq!(
            lookup(&zone, "mail-7.zone.test."),
            Lookup::Found(Node::Mail(7))
        );
        for missing in [
            "host-100.zone.test.",
            "host-01.zone.test.",
            "host-.zone.test.",
            "host-x.zone.test.",
            "host-99999999999.zone.test.",
            "www.zone.test.",
            "a.host-1.zone.test.",
        ] {
            assert_eq!(lookup(&zone, missing), Lookup::Missing, "{missing}");
        }
        assert_eq!(lookup(&zone, "test."), Lookup::Outside);
        assert_eq!(lookup(&zone, "host-1.example."), Lookup::Outside);
    }

    #[test]
    fn generated_values_are_stable() {
        assert_eq!(host_v4(0x01_0203), Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(
            host_v6(0x0001_0002),
            "2001:db8::1:2".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(mail_v4(0x0f_0102), Ipv4Addr::new(172, 31, 1, 2));
        let first = big_txt_string(3, 0);
        assert!(first.starts_with(b"big-3-0:"));
        assert!(first.iter().all(u8::is_ascii_graphic));
        assert_ne!(first, big_txt_string(3, 1));
        let zone = zone();
        assert_eq!(
            zone.name_of(Node::Alias(5)).to_string(),
            "alias-5.zone.test."
        );
        assert_eq!(zone.name_of(Node::Ns).to_string(), "ns1.zone.test.");
    }

    #[test]
    fn overlong_origins_are_refused() {
        let long = format!("{}.", vec!["a".repeat(60); 4].join("."));
        let config = ZoneConfig {
            origin: NameBuf::from_presentation(&long).unwrap(),
            ..ZoneConfig::default()
        };
        assert!(Zone::new(&config).is_err());
    }
}
