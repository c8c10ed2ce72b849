//! One query in, one reply out: header checks, EDNS, size limits and the
//! misbehaviours that change what the reply says (sans-IO).
//!
//! Behaviours that change *whether* or *when* a reply is sent (drop, loss,
//! delay, the spoofed reply before the right one) belong to the threads;
//! this module only decides the bytes.

use heimdall_wire::{
    Class, Flags, Header, MAX_NAME_LEN, Message, MessageBuilder, NameBuf, Opcode, OptSpec, Rcode,
    RecordType,
};

use super::Behavior;
use super::zone::Zone;

/// The UDP payload size the upstream advertises, and the most it sends
/// over UDP whatever the client offers (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;
/// The reply size limit for clients without EDNS (RFC 1035).
pub const PLAIN_UDP_LIMIT: usize = 512;

/// How the query arrived, which decides the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Datagrams: the client's EDNS size (at most [`EDNS_PAYLOAD`]) or 512.
    Udp,
    /// A stream: limited only by the output buffer (at most 65,535).
    Tcp,
}

/// Whether a reply has TC set.
pub fn is_truncated(reply: &[u8]) -> bool {
    Header::parse(reply).is_ok_and(|header| header.flags.truncated())
}

/// Add `delta` to the message ID in place (for wrong-ID replies).
pub fn shift_id(message: &mut [u8], delta: u16) {
    if let Some(id) = message.first_chunk_mut::<2>() {
        *id = u16::from_be_bytes(*id).wrapping_add(delta).to_be_bytes();
    }
}

/// Copy `query` into `out` with QR set (the reflector); None when it does
/// not fit.
pub(crate) fn echo(query: &[u8], out: &mut [u8]) -> Option<usize> {
    let reply = out.get_mut(..query.len())?;
    reply.copy_from_slice(query);
    *reply.get_mut(2)? |= 0x80;
    Some(query.len())
}

/// `wrong.` + `name`, or `wrong.` + `origin` when that would be too long:
/// a question the client did not ask.
fn wrong_name(name: &NameBuf, origin: &NameBuf) -> NameBuf {
    let base = if name.as_wire().len() + 6 <= MAX_NAME_LEN {
        name
    } else {
        origin
    };
    let mut wire = Vec::with_capacity(6 + base.as_wire().len());
    wire.push(5);
    wire.extend_from_slice(b"wrong");
    wire.extend_from_slice(base.as_wire());
    NameBuf::from_wire(&wire).unwrap_or_else(|_| origin.clone())
}

impl Zone {
    /// The reply to `query` under `behavior`, written into `out`; returns
    /// its length, or None when nothing must be sent: the query has no
    /// readable header, is itself a response, or the behaviour is
    /// [`Behavior::Drop`]. [`Behavior::Echo`] copies the query with QR set.
    /// [`Behavior::WrongIdThenRight`] yields the right
    /// reply here; the caller sends a copy with [`shift_id`] first.
    ///
    /// `out` should hold at least [`EDNS_PAYLOAD`] bytes for UDP; for TCP
    /// its length is the limit.
    pub fn respond(
        &self,
        query: &[u8],
        transport: Transport,
        behavior: Behavior,
        out: &mut [u8],
    ) -> Option<usize> {
        let header = Header::parse(query).ok()?;
        if header.flags.response() || behavior == Behavior::Drop {
            return None;
        }
        if behavior == Behavior::Echo {
            return echo(query, out);
        }
        let mut builder = MessageBuilder::new(out).ok()?;
        builder.set_id(header.id);
        let flags = Flags::default()
            .with_response(true)
            .with_opcode(header.flags.opcode())
            .with_recursion_desired(header.flags.recursion_desired())
            .with_checking_disabled(header.flags.checking_disabled());
        builder.set_flags(flags);
        let Ok(message) = Message::parse(query) else {
            // Nothing past the header can be trusted, so nothing is echoed.
            builder.set_flags(flags.with_rcode(Rcode::FORMERR));
            return Some(builder.finish());
        };
        let limit = match transport {
            Transport::Udp => message.opt().map_or(PLAIN_UDP_LIMIT, |opt| {
                usize::from(opt.udp_payload_size().clamp(512, EDNS_PAYLOAD))
            }),
            Transport::Tcp => usize::from(u16::MAX),
        };
        builder.set_limit(limit);
        let opt = message.opt().map(|_| OptSpec {
            udp_payload_size: EDNS_PAYLOAD,
            extended_rcode: 0,
            version: 0,
            dnssec_ok: false,
            options: &[],
        });
        if let Some(opt) = &opt {
            builder.reserve(opt.wire_len());
        }
        let (rcode, authoritative) =
            self.answer_message(&message, transport, behavior, &mut builder);
        builder.set_flags(
            builder
                .flags()
                .with_rcode(rcode)
                .with_authoritative(authoritative),
        );
        if let Some(opt) = opt {
            let opt = OptSpec {
                extended_rcode: rcode.extended_bits(),
                ..opt
            };
            let _no_room = builder.opt(&opt);
        }
        let len = builder.finish();
        if behavior == Behavior::WrongId {
            shift_id(out.get_mut(..len)?, 1);
        }
        Some(len)
    }

    /// Write the question and records; return the rcode and AA.
    fn answer_message(
        &self,
        message: &Message<'_>,
        transport: Transport,
        behavior: Behavior,
        builder: &mut MessageBuilder<'_>,
    ) -> (Rcode, bool) {
        let opcode = message.flags().opcode();
        let question = match (message.header().question_count, message.question()) {
            (1, Some(question)) => question,
            _ if opcode != Opcode::QUERY => return (Rcode::NOTIMP, false),
            _ => return (Rcode::FORMERR, false),
        };
        let asked = NameBuf::from_name(&question.name);
        let qname = if behavior == Behavior::WrongQuestion {
            wrong_name(&asked, self.origin())
        } else {
            asked
        };
        if builder
            .question(&qname.as_name(), question.qtype, question.qclass)
            .is_err()
        {
            return (Rcode::FORMERR, false);
        }
        if opcode != Opcode::QUERY {
            return (Rcode::NOTIMP, false);
        }
        if message.opt().is_some_and(|opt| opt.version() != 0) {
            return (Rcode::BADVERS, false);
        }
        if behavior == Behavior::ServFail {
            return (Rcode::SERVFAIL, false);
        }
        if behavior == Behavior::Refused {
            return (Rcode::REFUSED, false);
        }
        if question.qclass != Class::IN && question.qclass != Class::ANY {
            return (Rcode::REFUSED, false);
        }
        if matches!(
            question.qtype,
            RecordType::AXFR | RecordType::IXFR | RecordType::OPT
        ) {
            // Zone transfers are not served; OPT is not a question type.
            return (Rcode::NOTIMP, false);
        }
        if behavior == Behavior::Truncate && transport == Transport::Udp {
            builder.set_flags(builder.flags().with_truncated(true));
            let in_zone = self.lookup(&qname.as_name()) != super::zone::Lookup::Outside;
            return (Rcode::NOERROR, in_zone);
        }
        self.answer(builder, &qname.as_name(), question.qtype)
    }
}
