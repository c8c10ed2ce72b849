//! [`Acl`]: which clients may query.
//!
//! Addresses are compared as 128-bit numbers; IPv4 addresses (and
//! IPv4-mapped IPv6 addresses, `::ffff:a.b.c.d`) become `::ffff:a.b.c.d`,
//! so an IPv4 CIDR of length `n` is the IPv6 prefix of length `96 + n`, and
//! a mapped client is judged exactly as the IPv4 client it is.
//!
//! Each list is a sorted table per distinct prefix length, searched from
//! the longest length with a binary search: a handful of lengths times
//! `log2(entries)` comparisons, no allocation.
//!
//! Decision: a client on the deny list is denied; otherwise it is allowed
//! when the resolver is open, when it is on the allow list, or when it is
//! in [`DEFAULT_ALLOWED`] (unless the defaults are turned off); every other
//! client is denied. A denied client gets the configured [`AclAction`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::error::PolicyError;

/// Networks allowed by default: loopback, RFC 1918, CGNAT (RFC 6598),
/// link-local and unique local (RFC 4193) addresses.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
];

/// The `::ffff:0:0/96` prefix that holds IPv4 addresses.
const MAPPED: u128 = 0xffff_u128 << 32;

/// An address as a 128-bit number, with IPv4 (plain or mapped) in
/// `::ffff:0:0/96`.
pub(crate) fn address_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => MAPPED | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => MAPPED | u128::from(u32::from(v4)),
            None => u128::from(v6),
        },
    }
}

/// Whether the 128-bit form is an IPv4 address.
pub(crate) fn is_ipv4_bits(bits: u128) -> bool {
    bits >> 32 == 0xffff
}

/// The mask of a 128-bit prefix length (0..=128).
pub(crate) fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        len if len >= 128 => u128::MAX,
        len => u128::MAX << (128 - u32::from(len)),
    }
}

/// An IPv4 or IPv6 network. Host bits given in the text are cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network in 128-bit form (IPv4 mapped).
    network: u128,
    /// The prefix length in 128-bit form (IPv4: 96 + length).
    len: u8,
}

impl Cidr {
    /// The network of `addr` with `prefix_len` bits (0..=32 for IPv4,
    /// 0..=128 for IPv6). An IPv4-mapped IPv6 address with a length of at
    /// least 96 is the IPv4 network it maps.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, PolicyError> {
        let len = match addr {
            IpAddr::V4(_) if prefix_len <= 32 => prefix_len + 96,
            IpAddr::V6(_) if prefix_len <= 128 => prefix_len,
            _ => return Err(PolicyError::BadCidr(format!("{addr}/{prefix_len}"))),
        };
        Ok(Self {
            network: address_bits(addr) & mask(len),
            len,
        })
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        address_bits(ip) & mask(self.len) == self.network
    }

    /// Whether this is an IPv4 network.
    pub fn is_ipv4(&self) -> bool {
        self.len >= 96 && is_ipv4_bits(self.network)
    }

    /// The prefix length as written (IPv4: 0..=32).
    pub fn prefix_len(&self) -> u8 {
        if self.is_ipv4() {
            self.len - 96
        } else {
            self.len
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        if self.is_ipv4() {
            // The low 32 bits are the IPv4 address.
            IpAddr::V4(Ipv4Addr::from(self.network as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.network))
        }
    }
}

impl FromStr for Cidr {
    type Err = PolicyError;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a single address (a /32 or /128).
    fn from_str(text: &str) -> Result<Self, PolicyError> {
        let bad = || PolicyError::BadCidr(text.to_owned());
        let text = text.trim();
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len = match len {
            Some(len) => len.parse::<u8>().map_err(|_| bad())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Self::new(addr, len).map_err(|_| bad())
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix_len())
    }
}

/// A set of networks, in one of two shapes chosen when it is built. A
/// short list (at most [`FLAT_MAX`]; the default one has nine networks in
/// seven prefix lengths) is a list of (mask, network) pairs compared in
/// turn: a binary search per prefix length cost about 10 ns a query on
/// the hit path, the scan of nine pairs 6 ns less. A longer one is grouped
/// by prefix length, longest first, each group sorted and binary-searched.
#[derive(Debug, Clone)]
enum PrefixTable {
    Flat(Vec<(u128, u128)>),
    Grouped(Vec<(u8, Vec<u128>)>),
}

/// Networks a table compares one by one rather than by group.
const FLAT_MAX: usize = 16;

impl PrefixTable {
    fn new(cidrs: &[Cidr]) -> Self {
        let mut groups: Vec<(u8, Vec<u128>)> = Vec::new();
        for cidr in cidrs {
            match groups.iter_mut().find(|(len, _)| *len == cidr.len) {
                Some((_, networks)) => networks.push(cidr.network),
                None => groups.push((cidr.len, vec![cidr.network])),
            }
        }
        groups.sort_unstable_by_key(|group| std::cmp::Reverse(group.0));
        for (_, networks) in &mut groups {
            networks.sort_unstable();
            networks.dedup();
        }
        let count: usize = groups.iter().map(|(_, networks)| networks.len()).sum();
        if count > FLAT_MAX {
            return Self::Grouped(groups);
        }
        Self::Flat(
            groups
                .iter()
                .flat_map(|(len, networks)| networks.iter().map(|&network| (mask(*len), network)))
                .collect(),
        )
    }

    fn contains(&self, bits: u128) -> bool {
        match self {
            Self::Flat(pairs) => pairs.iter().any(|&(mask, network)| bits & mask == network),
            Self::Grouped(groups) => groups
                .iter()
                .any(|(len, networks)| networks.binary_search(&(bits & mask(*len))).is_ok()),
        }
    }
}

impl Default for PrefixTable {
    fn default() -> Self {
        Self::Flat(Vec::new())
    }
}

/// What to do with a denied client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AclAction {
    /// Answer REFUSED.
    #[default]
    Refuse,
    /// Send nothing.
    Drop,
}

/// The ACL's decision for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclDecision {
    /// Serve the query.
    Allow,
    /// Answer REFUSED.
    Refuse,
    /// Send nothing.
    Drop,
}

/// Settings for an [`Acl`].
#[derive(Debug, Clone)]
pub struct AclBuilder {
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
    defaults: bool,
    open: bool,
    action: AclAction,
}

impl Default for AclBuilder {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            deny: Vec::new(),
            defaults: true,
            open: false,
            action: AclAction::Refuse,
        }
    }
}

impl AclBuilder {
    /// Defaults on, resolver closed, denied clients refused.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allow `cidr`.
    pub fn allow(mut self, cidr: Cidr) -> Self {
        self.allow.push(cidr);
        self
    }

    /// Deny `cidr`; denial wins over every allow.
    pub fn deny(mut self, cidr: Cidr) -> Self {
        self.deny.push(cidr);
        self
    }

    /// Parse and allow each of `cidrs`.
    pub fn allow_all<'t>(
        mut self,
        cidrs: impl IntoIterator<Item = &'t str>,
    ) -> Result<Self, PolicyError> {
        for text in cidrs {
            self.allow.push(text.parse()?);
        }
        Ok(self)
    }

    /// Parse and deny each of `cidrs`.
    pub fn deny_all<'t>(
        mut self,
        cidrs: impl IntoIterator<Item = &'t str>,
    ) -> Result<Self, PolicyError> {
        for text in cidrs {
            self.deny.push(text.parse()?);
        }
        Ok(self)
    }

    /// Whether [`DEFAULT_ALLOWED`] is allowed (default true).
    pub fn default_networks(mut self, on: bool) -> Self {
        self.defaults = on;
        self
    }

    /// Serve every client not denied: an open resolver (default false).
    pub fn open_resolver(mut self, on: bool) -> Self {
        self.open = on;
        self
    }

    /// What denied clients get (default [`AclAction::Refuse`]).
    pub fn action(mut self, action: AclAction) -> Self {
        self.action = action;
        self
    }

    /// Freeze the settings.
    pub fn build(self) -> Acl {
        let mut allow = self.allow;
        if self.defaults {
            allow.extend(
                DEFAULT_ALLOWED
                    .iter()
                    .filter_map(|text| text.parse::<Cidr>().ok()),
            );
        }
        Acl {
            allow: PrefixTable::new(&allow),
            deny: PrefixTable::new(&self.deny),
            open: self.open,
            denied: match self.action {
                AclAction::Refuse => AclDecision::Refuse,
                AclAction::Drop => AclDecision::Drop,
            },
        }
    }
}

/// A frozen access control list; `Send + Sync`, shareable between cores.
#[derive(Debug, Clone)]
pub struct Acl {
    allow: PrefixTable,
    deny: PrefixTable,
    open: bool,
    denied: AclDecision,
}

impl Default for Acl {
    /// The defaults: private networks allowed, everyone else refused.
    fn default() -> Self {
        AclBuilder::new().build()
    }
}

impl Acl {
    /// The decision for a client address. Never allocates.
    pub fn check(&self, client: IpAddr) -> AclDecision {
        let bits = address_bits(client);
        if self.deny.contains(bits) {
            self.denied
        } else if self.open || self.allow.contains(bits) {
            AclDecision::Allow
        } else {
            self.denied
        }
    }
}
