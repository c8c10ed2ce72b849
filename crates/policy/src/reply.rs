//! The replies policy sends instead of an answer, written into a caller
//! buffer with [`MessageBuilder`] from the client's parsed query.
//!
//! Every reply echoes the client's ID, opcode, RD and CD bits and its
//! question (in the client's letter case, qtype and qclass), and sets QR
//! and RA. When the client sent EDNS, the reply carries our OPT record
//! (our UDP payload size, the client's DO bit) with an Extended DNS Error
//! (RFC 8914) where one applies. A client's unsupported EDNS version is
//! not checked here; the caller answers BADVERS before asking policy.
//! Replies are small (question, at most one record, OPT) and always fit
//! 512 bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use heimdall_wire::{
    Class, EdnsOption, Flags, Message, MessageBuilder, OptSpec, RData, Rcode, RecordType, Section,
    ede, edns,
};

use crate::error::PolicyError;

/// How a blocked name is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockMode {
    /// NXDOMAIN.
    #[default]
    Nxdomain,
    /// NOERROR with `0.0.0.0` for A, `::` for AAAA, and no records (NODATA)
    /// for every other type.
    Null,
    /// REFUSED.
    Refused,
}

/// The parts of a reply that differ between policies.
struct Reply {
    rcode: Rcode,
    truncated: bool,
    answer: Option<RData<'static>>,
    ttl: u32,
    ede: Option<u16>,
}

fn write_reply(
    query: &Message<'_>,
    reply: &Reply,
    our_udp_payload: u16,
    buf: &mut [u8],
) -> Result<usize, PolicyError> {
    let question = query.question().ok_or(PolicyError::NoQuestion)?;
    let asked = query.flags();
    let mut builder = MessageBuilder::new(buf)?;
    builder.set_id(query.id());
    builder.set_flags(
        Flags::default()
            .with_response(true)
            .with_opcode(asked.opcode())
            .with_recursion_desired(asked.recursion_desired())
            .with_checking_disabled(asked.checking_disabled())
            .with_recursion_available(true)
            .with_truncated(reply.truncated)
            .with_rcode(reply.rcode),
    );
    let ede_data = reply.ede.map(u16::to_be_bytes);
    let ede_option = ede_data.as_ref().map(|data| EdnsOption {
        code: edns::EXTENDED_ERROR,
        data,
    });
    let options = ede_option.as_slice();
    let opt = query.opt().map(|client| OptSpec {
        udp_payload_size: our_udp_payload,
        extended_rcode: reply.rcode.extended_bits(),
        version: 0,
        dnssec_ok: client.dnssec_ok(),
        options,
    });
    if let Some(opt) = &opt {
        builder.reserve(opt.wire_len());
    }
    builder.question(&question.name, question.qtype, question.qclass)?;
    if let Some(rdata) = &reply.answer {
        let rtype = match rdata {
            RData::Aaaa(_) => RecordType::AAAA,
            _ => RecordType::A,
        };
        builder.record(
            Section::Answer,
            &question.name,
            rtype,
            Class::IN,
            reply.ttl,
            rdata,
        )?;
    }
    if let Some(opt) = &opt {
        builder.opt(opt)?;
    }
    Ok(builder.finish())
}

/// Write the reply to a query for a blocked name: NXDOMAIN, a null
/// address (answer TTL `ttl`) or NODATA, or REFUSED, per `mode`, with EDE
/// 15 "Blocked" when the client sent EDNS. Returns the reply length.
pub fn write_blocked(
    query: &Message<'_>,
    mode: BlockMode,
    ttl: u32,
    our_udp_payload: u16,
    buf: &mut [u8],
) -> Result<usize, PolicyError> {
    let question = query.question().ok_or(PolicyError::NoQuestion)?;
    let (rcode, answer) = match mode {
        BlockMode::Nxdomain => (Rcode::NXDOMAIN, None),
        BlockMode::Refused => (Rcode::REFUSED, None),
        BlockMode::Null => {
            let answer = match (question.qtype, question.qclass) {
                (RecordType::A, Class::IN) => Some(RData::A(Ipv4Addr::UNSPECIFIED)),
                (RecordType::AAAA, Class::IN) => Some(RData::Aaaa(Ipv6Addr::UNSPECIFIED)),
                _ => None,
            };
            (Rcode::NOERROR, answer)
        }
    };
    let reply = Reply {
        rcode,
        truncated: false,
        answer,
        ttl,
        ede: Some(ede::BLOCKED),
    };
    write_reply(query, &reply, our_udp_payload, buf)
}

/// Write a REFUSED reply (for the ACL or the rate limiter), with `ede` as
/// an Extended DNS Error when given and the client sent EDNS (for example
/// [`ede::PROHIBITED`]). Returns the reply length.
pub fn write_refused(
    query: &Message<'_>,
    ede: Option<u16>,
    our_udp_payload: u16,
    buf: &mut [u8],
) -> Result<usize, PolicyError> {
    let reply = Reply {
        rcode: Rcode::REFUSED,
        truncated: false,
        answer: None,
        ttl: 0,
        ede,
    };
    write_reply(query, &reply, our_udp_payload, buf)
}

/// Write an empty NOERROR reply with TC set, which tells a genuine client
/// to retry over TCP (the rate limiter's `truncate` action; meaningful
/// over UDP only). Returns the reply length.
pub fn write_truncated(
    query: &Message<'_>,
    our_udp_payload: u16,
    buf: &mut [u8],
) -> Result<usize, PolicyError> {
    let reply = Reply {
        rcode: Rcode::NOERROR,
        truncated: true,
        answer: None,
        ttl: 0,
        ede: None,
    };
    write_reply(query, &reply, our_udp_payload, buf)
}
