//! Replies the resolver writes itself, without the cache: FORMERR, SERVFAIL,
//! REFUSED, NOTIMP, BADVERS and BADCOOKIE, each with the client's EDNS
//! echoed as RFC 6891 asks (its COOKIE answered, RFC 7873) and, where it
//! helps the client, an Extended DNS Error (RFC 8914).

use heimdall_cache::{ClientEdns, udp_limit};
use heimdall_wire::{
    Class, EdnsOption, Flags, HEADER_LEN, Header, MessageBuilder, Name, OptSpec, Rcode, RecordType,
    edns,
};

/// Extended DNS Error info codes come from the one registry in
/// heimdall-wire.
pub use heimdall_wire::ede;

/// The parts of a client's query an error reply echoes.
#[derive(Debug, Clone, Copy)]
pub struct ReplyTo<'a> {
    /// The client's query ID.
    pub id: u16,
    /// The client's header flags (opcode, RD and CD are echoed).
    pub flags: Flags,
    /// The question, when the query had a readable one.
    pub question: Option<(Name<'a>, RecordType, Class)>,
    /// The client's EDNS, when it sent a valid OPT record.
    pub edns: Option<ClientEdns>,
}

impl<'a> ReplyTo<'a> {
    /// Only the header could be read: no question, no EDNS.
    pub fn header_only(header: &Header) -> Self {
        Self {
            id: header.id,
            flags: header.flags,
            question: None,
            edns: None,
        }
    }
}

/// The header flags of a reply to a query with `query` flags: QR and RA
/// set, opcode, RD and CD echoed, `rcode` (its low bits); AA, TC and AD
/// clear.
pub fn reply_flags(query: Flags, rcode: Rcode) -> Flags {
    Flags::default()
        .with_response(true)
        .with_opcode(query.opcode())
        .with_recursion_desired(query.recursion_desired())
        .with_checking_disabled(query.checking_disabled())
        .with_recursion_available(true)
        .with_rcode(rcode)
}

/// Write an error reply with `rcode` into `out` and return its length.
/// `extended_error` is added as EDE when the client sent EDNS, and the
/// client's reply cookie ([`ClientEdns::cookie`]) when it has one. Returns 0
/// only if `out` is smaller than a header.
pub fn write_error_reply(
    out: &mut [u8],
    to: &ReplyTo<'_>,
    rcode: Rcode,
    extended_error: Option<(u16, &str)>,
    our_udp_payload: u16,
) -> usize {
    let Ok(mut builder) = MessageBuilder::new(out) else {
        return 0;
    };
    builder.set_id(to.id);
    builder.set_flags(reply_flags(to.flags, rcode));
    builder.set_limit(udp_limit(to.edns, our_udp_payload));
    let mut ede_data = [0u8; 2 + 64];
    let ede_option = match (to.edns, extended_error) {
        (Some(_), Some((code, text))) => {
            let text = text.as_bytes();
            let text = text.get(..text.len().min(64)).unwrap_or_default();
            let (head, tail) = ede_data.split_at_mut(2);
            head.copy_from_slice(&code.to_be_bytes());
            let tail = tail.get_mut(..text.len()).unwrap_or_default();
            tail.copy_from_slice(text);
            Some(EdnsOption {
                code: edns::EXTENDED_ERROR,
                data: ede_data.get(..2 + text.len()).unwrap_or_default(),
            })
        }
        _ => None,
    };
    let cookie = to.edns.and_then(|client| client.cookie);
    let cookie_option = cookie.as_ref().map(|cookie| cookie.option());
    // At most the EDE and the COOKIE option, on the stack.
    let options_storage;
    let options: &[EdnsOption<'_>] = match (ede_option, cookie_option) {
        (Some(ede), Some(cookie)) => {
            options_storage = [ede, cookie];
            &options_storage
        }
        (Some(one), None) | (None, Some(one)) => {
            options_storage = [one, one];
            options_storage.get(..1).unwrap_or_default()
        }
        (None, None) => &[],
    };
    let opt = to.edns.map(|client| OptSpec {
        udp_payload_size: our_udp_payload,
        extended_rcode: rcode.extended_bits(),
        version: 0,
        dnssec_ok: client.dnssec_ok,
        options,
    });
    if let Some(opt) = &opt {
        builder.reserve(opt.wire_len());
    }
    if let Some((name, qtype, qclass)) = to.question {
        // A question that does not fit is left out rather than failing the
        // whole reply: the header still carries the ID and the rcode.
        let _ = builder.question(&name, qtype, qclass);
    }
    if let Some(opt) = &opt {
        let _ = builder.opt(opt);
    }
    builder.finish().max(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_wire::{Message, NameBuf, Opcode};

    #[test]
    fn servfail_with_ede_for_an_edns_client() {
        let name = NameBuf::from_presentation("Example.com").unwrap();
        let to = ReplyTo {
            id: 77,
            flags: Flags::default()
                .with_recursion_desired(true)
                .with_checking_disabled(true),
            question: Some((name.as_name(), RecordType::AAAA, Class::IN)),
            edns: Some(ClientEdns {
                udp_payload_size: 1232,
                dnssec_ok: true,
                cookie: None,
            }),
        };
        let mut out = [0u8; 512];
        let len = write_error_reply(
            &mut out,
            &to,
            Rcode::SERVFAIL,
            Some((ede::NO_REACHABLE_AUTHORITY, "no upstream")),
            1232,
        );
        let message = Message::parse(&out[..len]).unwrap();
        assert_eq!(message.id(), 77);
        assert_eq!(message.rcode(), Rcode::SERVFAIL);
        let flags = message.flags();
        assert!(flags.response() && flags.recursion_desired() && flags.checking_disabled());
        assert!(flags.recursion_available() && !flags.authoritative());
        assert_eq!(message.question().unwrap().name.to_string(), "Example.com.");
        let opt = message.opt().unwrap();
        assert!(opt.dnssec_ok());
        let option = opt.options().next().unwrap();
        assert_eq!(option.code, edns::EXTENDED_ERROR);
        assert_eq!(option.data, b"\x00\x16no upstream");
        let hickory = hickory_proto::op::Message::from_vec(&out[..len]).unwrap();
        assert_eq!(
            hickory.response_code,
            hickory_proto::op::ResponseCode::ServFail
        );
    }

    #[test]
    fn no_edns_means_no_opt_and_no_ede() {
        let to = ReplyTo {
            id: 1,
            flags: Flags::default().with_opcode(Opcode(9)),
            question: None,
            edns: None,
        };
        let mut out = [0u8; 512];
        let len = write_error_reply(
            &mut out,
            &to,
            Rcode::NOTIMP,
            Some((ede::NOT_SUPPORTED, "")),
            1232,
        );
        assert_eq!(len, HEADER_LEN);
        let message = Message::parse(&out[..len]).unwrap();
        assert_eq!(message.rcode(), Rcode::NOTIMP);
        assert_eq!(message.flags().opcode(), Opcode(9));
        assert!(message.opt().is_none());
    }

    #[test]
    fn badvers_uses_the_extended_rcode() {
        let to = ReplyTo {
            id: 5,
            flags: Flags::default(),
            question: None,
            edns: Some(ClientEdns {
                udp_payload_size: 1232,
                dnssec_ok: false,
                cookie: None,
            }),
        };
        let mut out = [0u8; 512];
        let len = write_error_reply(&mut out, &to, Rcode::BADVERS, None, 1232);
        let message = Message::parse(&out[..len]).unwrap();
        assert_eq!(message.rcode(), Rcode::BADVERS);
        assert_eq!(message.opt().unwrap().version(), 0);
    }

    #[test]
    fn badcookie_carries_the_cookie_and_the_extended_rcode() {
        let cookie = heimdall_wire::cookie::ReplyCookie::new([3; 8], [4; 16]);
        let name = NameBuf::from_presentation("example.com").unwrap();
        let to = ReplyTo {
            id: 9,
            flags: Flags::default().with_recursion_desired(true),
            question: Some((name.as_name(), RecordType::A, Class::IN)),
            edns: Some(ClientEdns {
                udp_payload_size: 1232,
                dnssec_ok: false,
                cookie: Some(cookie),
            }),
        };
        let mut out = [0u8; 512];
        let len = write_error_reply(
            &mut out,
            &to,
            Rcode::BADCOOKIE,
            Some((ede::PROHIBITED, "")),
            1232,
        );
        let message = Message::parse(&out[..len]).unwrap();
        assert_eq!(message.rcode(), Rcode::BADCOOKIE);
        assert_eq!(out[3] & 0x0f, 7, "the low bits of 23 in the header");
        let opt = message.opt().unwrap();
        assert_eq!(opt.extended_rcode(), 1);
        let options: Vec<_> = opt.options().collect();
        assert_eq!(options.len(), 2);
        assert_eq!(options[0].code, edns::EXTENDED_ERROR);
        assert_eq!(options[1], cookie.option());
        let hickory = hickory_proto::op::Message::from_vec(&out[..len]).unwrap();
        assert_eq!(
            hickory.response_code,
            hickory_proto::op::ResponseCode::BADCOOKIE
        );
    }
}
