//! The cache key of a query: (lower-cased qname, qtype, qclass, DO, CD).
//!
//! Built from the parsed question, not from the raw packet, so that IDs,
//! cookies, padding and letter case do not split the cache. Computing it
//! copies at most 255 bytes into an inline buffer; nothing is allocated.

use crate::error::{ErrorKind, Result, WireError};
use crate::header::HEADER_LEN;
use crate::message::Message;
use crate::name::WireNameBuf;
use crate::types::{Class, RecordType};

/// What the cache is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueryKey {
    /// The question name in lower-cased, uncompressed wire form.
    pub name: WireNameBuf,
    /// The question type.
    pub qtype: RecordType,
    /// The question class.
    pub qclass: Class,
    /// The client's DO bit: DNSSEC records are wanted.
    pub dnssec_ok: bool,
    /// The client's CD bit: validation is not wanted.
    pub checking_disabled: bool,
}

impl QueryKey {
    /// The key of a query message, which must have exactly one question.
    #[inline]
    pub fn from_message(message: &Message<'_>) -> Result<Self> {
        let mut key = Self {
            name: WireNameBuf::new(),
            qtype: RecordType(0),
            qclass: Class(0),
            dnssec_ok: false,
            checking_disabled: false,
        };
        key.fill_from(message)?;
        Ok(key)
    }

    /// Overwrite this key with the key of `message`, reusing its storage.
    #[inline]
    pub fn fill_from(&mut self, message: &Message<'_>) -> Result<()> {
        let question = match (message.header().question_count, message.question()) {
            (1, Some(question)) => question,
            _ => return Err(WireError::new(ErrorKind::NotOneQuestion, HEADER_LEN)),
        };
        question.name.write_lower(&mut self.name);
        self.qtype = question.qtype;
        self.qclass = question.qclass;
        self.dnssec_ok = message.opt().is_some_and(|opt| opt.dnssec_ok());
        self.checking_disabled = message.flags().checking_disabled();
        Ok(())
    }

    /// Parse `packet` and compute its key in one step.
    #[inline]
    pub fn from_packet(packet: &[u8]) -> Result<(Message<'_>, Self)> {
        let message = Message::parse(packet)?;
        let key = Self::from_message(&message)?;
        Ok((message, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{MessageBuilder, OptSpec};
    use crate::header::Flags;
    use crate::name::NameBuf;

    fn query(name: &str, qtype: RecordType, dnssec_ok: Option<bool>, cd: bool, id: u16) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(id);
        builder.set_flags(
            Flags::default()
                .with_recursion_desired(true)
                .with_checking_disabled(cd),
        );
        let name = NameBuf::from_presentation(name).unwrap();
        builder.question(&name.as_name(), qtype, Class::IN).unwrap();
        if let Some(dnssec_ok) = dnssec_ok {
            let opt = OptSpec {
                udp_payload_size: 1232,
                extended_rcode: 0,
                version: 0,
                dnssec_ok,
                options: &[],
            };
            builder.opt(&opt).unwrap();
        }
        let len = builder.finish();
        buf[..len].to_vec()
    }

    #[test]
    fn key_ignores_id_case_and_edns_presence_without_do() {
        let a = QueryKey::from_packet(&query("WWW.Example.com", RecordType::A, None, false, 1))
            .unwrap()
            .1;
        let b = QueryKey::from_packet(&query(
            "www.example.COM",
            RecordType::A,
            Some(false),
            false,
            2,
        ))
        .unwrap()
        .1;
        assert_eq!(a, b);
        assert_eq!(&a.name[..], b"\x03www\x07example\x03com\x00");
        assert_eq!(
            (a.qtype, a.qclass, a.dnssec_ok, a.checking_disabled),
            (RecordType::A, Class::IN, false, false)
        );
    }

    #[test]
    fn key_separates_type_do_and_cd() {
        let base = QueryKey::from_packet(&query("a.example", RecordType::A, Some(false), false, 1))
            .unwrap()
            .1;
        let aaaa =
            QueryKey::from_packet(&query("a.example", RecordType::AAAA, Some(false), false, 1))
                .unwrap()
                .1;
        let dnssec =
            QueryKey::from_packet(&query("a.example", RecordType::A, Some(true), false, 1))
                .unwrap()
                .1;
        let cd = QueryKey::from_packet(&query("a.example", RecordType::A, Some(false), true, 1))
            .unwrap()
            .1;
        assert!(dnssec.dnssec_ok && cd.checking_disabled);
        for other in [&aaaa, &dnssec, &cd] {
            assert_ne!(&base, other);
        }
    }

    #[test]
    fn key_needs_exactly_one_question() {
        let header_only = [0u8; 12];
        assert_eq!(
            QueryKey::from_packet(&header_only).unwrap_err(),
            WireError::new(ErrorKind::NotOneQuestion, HEADER_LEN)
        );
        let mut two = query("a.example", RecordType::A, None, false, 1);
        let question = two[12..].to_vec();
        two.extend_from_slice(&question);
        two[5] = 2;
        assert_eq!(
            QueryKey::from_packet(&two).unwrap_err().kind,
            ErrorKind::NotOneQuestion
        );
    }

    #[test]
    fn fill_from_reuses_the_key() {
        let first = query("first.example", RecordType::A, None, false, 1);
        let second = query("second.example", RecordType::MX, Some(true), false, 1);
        let (message, mut key) = QueryKey::from_packet(&first).unwrap();
        let _ = message;
        key.fill_from(&Message::parse(&second).unwrap()).unwrap();
        assert_eq!(key, QueryKey::from_packet(&second).unwrap().1);
    }
}
