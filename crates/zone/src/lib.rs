//! Local authoritative data for heimdall, sans-IO.
//!
//! - [`parse_zone`] reads an RFC 1035 master file (with `$ORIGIN`, `$TTL`,
//!   `$INCLUDE` through a caller-supplied loader, parentheses, comments,
//!   quoted strings, RFC 3597 generic RDATA) into [`ZoneRecord`]s whose
//!   RDATA is in uncompressed wire form; [`parse_record_line`] reads the
//!   one-record-per-line form used by `local.records` in the config.
//! - [`Zone`] is one zone, [`LocalData`] an immutable set of zones plus
//!   loose records that answers queries authoritatively (exact matches,
//!   in-zone CNAME chains, RFC 4592 wildcards, NODATA and NXDOMAIN with the
//!   SOA, delegations as referrals or as "forward this").
//! - [`builtin_zones`] gives the RFC 6761 / RFC 6303 local zones.
//!
//! ```
//! use heimdall_wire::{Class, NameBuf, RecordType};
//! use heimdall_zone::{DelegationMode, LocalData, Outcome, parse_zone};
//!
//! let text = "$ORIGIN lan.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n\
//!             router A 192.168.1.1\n";
//! let records = parse_zone(text, "lan.zone", None, &mut |path| {
//!     std::fs::read_to_string(path)
//! })?;
//! let data = LocalData::builder()
//!     .zone(records)
//!     .builtins(true)
//!     .delegation_mode(DelegationMode::Referral)
//!     .build()?;
//! let name = NameBuf::from_presentation("router.lan.")?;
//! let Outcome::Answer(answer) = data.lookup(&name.as_name(), RecordType::A, Class::IN, false)
//! else {
//!     unreachable!()
//! };
//! assert_eq!(&answer.answer[0].rdata[..], [192, 168, 1, 1]);
//! // In the server: `data.respond(&query, &mut buf, udp_limit)` writes the
//! // whole reply, or says `Reply::Forward` / `Reply::NotLocal`.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Nothing here opens sockets or reads the clock; the only file access is
//! [`parse_zone_file`], a thin wrapper over [`parse_zone`].

mod builtin;
mod error;
mod lexer;
mod local;
mod parser;
mod rdata;

pub use builtin::builtin_zones;
pub use error::ZoneError;
pub use local::{
    Answer, AnswerRecord, DelegationMode, LocalData, LocalDataBuilder, MAX_CNAME_CHAIN, Outcome,
    Reply, Zone,
};
pub use parser::{MAX_INCLUDE_DEPTH, ZoneRecord, parse_record_line, parse_zone, parse_zone_file};
