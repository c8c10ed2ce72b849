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
    pub fn from_packet(packet: &[u8]) -> Result<(Message<'_>, Self)> {
        let message = Message::parse(packet)?;
        let key = Self::from_message(&message)?;
        Ok((message, key))
    }
}
