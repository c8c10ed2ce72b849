//! Serving a hit: [`AnswerRequest`] (what the client asked and allows) and
//! [`EntryView::write_answer`], which turns a stored entry into the client's
//! reply inside the caller's buffer without allocating.
//!
//! The reply is the stored message, or its longest prefix that ends on an
//! RRset boundary and fits the client's limit, patched in place: the
//! client's ID, flags and qname letter case, section counts, every TTL
//! lowered by the entry's age, and our own OPT record when the client sent
//! EDNS (with the client's cookie answered, when the resolver gave one:
//! [`ClientEdns::cookie`]).
//!
//! A stale answer (RFC 8767, [`AnswerRequest::stale`]) is the same copy
//! with every TTL set to [`STALE_TTL`] and, for EDNS clients, an Extended
//! DNS Error "Stale Answer" (RFC 8914 info code 3) in the OPT record.

use heimdall_wire::cookie::ReplyCookie;
use heimdall_wire::{Flags, HEADER_LEN, Header, Message, RecordType};

use crate::entry::{Cut, EntryView};
use crate::error::CacheError;
use crate::time::Timestamp;

/// Wire length of the OPT record we write: root owner, type, class, TTL,
/// empty RDATA.
pub const OPT_LEN: usize = 11;
/// The TTL of every record in a stale answer (RFC 8767 section 4
/// recommends 30 seconds: long enough to spare the resolver, short enough
/// that the client asks again soon).
pub const STALE_TTL: u32 = 30;
/// Bytes the EDE option adds to the OPT record of a stale answer: option
/// code, option length, info code (no extra text).
pub const STALE_EDE_LEN: usize = 6;
/// Reply limit for clients without EDNS, and the floor for those with it
/// (RFC 1035 section 2.3.4, RFC 6891 section 6.2.5).
pub const MIN_UDP_PAYLOAD: u16 = 512;
/// A UDP payload size that avoids IP fragmentation on common paths (the
/// DNS Flag Day 2020 value).
pub const DEFAULT_UDP_PAYLOAD: u16 = 1232;
/// The reply limit over TCP, where the 2-byte length prefix is the bound.
pub const TCP_LIMIT: usize = u16::MAX as usize;

/// The client's EDNS(0) OPT record, as far as a reply depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientEdns {
    /// The client's advertised UDP payload size.
    pub udp_payload_size: u16,
    /// The client's DO bit.
    pub dnssec_ok: bool,
    /// The COOKIE option every reply to this query carries (the client's
    /// cookie echoed with our server cookie), when the client sent one
    /// and cookies are answered. Set by the resolver's admission, which
    /// knows the secret; [`ClientEdns::of`] leaves it out.
    pub cookie: Option<ReplyCookie>,
}

impl ClientEdns {
    /// The EDNS of a parsed message, if it has an OPT record (without a
    /// reply cookie).
    pub fn of(message: &Message<'_>) -> Option<Self> {
        message.opt().map(|opt| Self {
            udp_payload_size: opt.udp_payload_size(),
            dnssec_ok: opt.dnssec_ok(),
            cookie: None,
        })
    }

    /// Bytes our COOKIE option adds to the reply's OPT record.
    pub fn cookie_len(&self) -> usize {
        if self.cookie.is_some() {
            ReplyCookie::OPTION_LEN
        } else {
            0
        }
    }
}

/// What a reply must look like for one client.
#[derive(Debug, Clone, Copy)]
pub struct AnswerRequest<'q> {
    /// The client's message ID.
    pub id: u16,
    /// The client's header flags (opcode, RD, CD, AD are used).
    pub flags: Flags,
    /// The client's question name as uncompressed wire bytes, in the
    /// client's letter case.
    pub qname: &'q [u8],
    /// The client's EDNS, if it sent an OPT record.
    pub edns: Option<ClientEdns>,
    /// The UDP payload size we advertise in our OPT record.
    pub our_udp_payload: u16,
    /// The largest reply this client may get, in bytes.
    pub limit: usize,
    /// Serve the entry as a stale answer (RFC 8767): every TTL
    /// [`STALE_TTL`], and an EDE "Stale Answer" for EDNS clients. False for
    /// every ordinary hit.
    pub stale: bool,
}

/// The UDP reply limit: 512 without EDNS, else the client's payload size
/// (at least 512) capped by ours.
pub fn udp_limit(edns: Option<ClientEdns>, our_udp_payload: u16) -> usize {
    match edns {
        None => usize::from(MIN_UDP_PAYLOAD),
        Some(edns) => usize::from(
            edns.udp_payload_size
                .max(MIN_UDP_PAYLOAD)
                .min(our_udp_payload.max(MIN_UDP_PAYLOAD)),
        ),
    }
}

impl<'q> AnswerRequest<'q> {
    /// A request over UDP, with the limit from [`udp_limit`].
    pub fn udp(
        id: u16,
        flags: Flags,
        qname: &'q [u8],
        edns: Option<ClientEdns>,
        our_udp_payload: u16,
    ) -> Self {
        Self {
            id,
            flags,
            qname,
            edns,
            our_udp_payload,
            limit: udp_limit(edns, our_udp_payload),
            stale: false,
        }
    }

    /// The same request, answered stale (or not).
    pub fn with_stale(self, stale: bool) -> Self {
        Self { stale, ..self }
    }

    /// The request for a parsed client query over UDP. The question name
    /// is taken from the bytes at offset 12, where a query's only question
    /// sits uncompressed; a (hostile) compressed qname is caught later by
    /// [`EntryView::write_answer`] as a mismatch.
    pub fn from_query(query: &Message<'q>, our_udp_payload: u16) -> Result<Self, CacheError> {
        let question = match (query.header().question_count, query.question()) {
            (1, Some(question)) => question,
            _ => return Err(CacheError::QuestionMismatch),
        };
        let qname = query
            .bytes()
            .get(HEADER_LEN..HEADER_LEN + question.name.wire_len())
            .ok_or(CacheError::QuestionMismatch)?;
        Ok(Self::udp(
            query.id(),
            query.flags(),
            qname,
            ClientEdns::of(query),
            our_udp_payload,
        ))
    }

    /// The same request over TCP: only the 65,535-byte bound applies.
    pub fn over_tcp(self) -> Self {
        Self {
            limit: TCP_LIMIT,
            ..self
        }
    }
}

/// Big-endian write of `value` at `at`; out-of-range writes are skipped
/// (offsets come from the entry's own index and are in range).
fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(slot) = out.get_mut(at..at + bytes.len()) {
        slot.copy_from_slice(bytes);
    }
}

impl EntryView {
    /// Write the reply to `request` into `out` as of `now`; returns its
    /// length. Never allocates.
    ///
    /// Header: the client's ID and opcode, QR=1, AA=0, RD and CD echoed,
    /// RA=1, AD only when the stored answer had it and the client set AD
    /// or DO (RFC 6840 section 5.8), the entry's rcode. TTLs are lowered
    /// by the entry's age in whole seconds (never below 0). With EDNS, an
    /// OPT record (our payload size, the client's DO, version 0, and the
    /// client's [`ClientEdns::cookie`] when it has one) ends the
    /// additional section.
    ///
    /// With `request.stale`, every TTL is [`STALE_TTL`] instead, and the
    /// OPT carries an EDE "Stale Answer" option ([`STALE_EDE_LEN`] more
    /// bytes, reserved before any cut like the OPT itself). An entry made
    /// with [`Entry::with_ede`] carries its EDE the same way.
    ///
    /// When the reply exceeds `request.limit` (or `out`), it is cut at the
    /// last RRset boundary that leaves room for the OPT; TC is set only if
    /// answer or authority records were dropped (RFC 2181 section 9).
    /// Errors: [`CacheError::QuestionMismatch`] when the client's qname is
    /// not this entry's name; [`CacheError::BufferTooSmall`] when not even
    /// header, question and OPT fit.
    pub fn write_answer(
        &self,
        out: &mut [u8],
        request: &AnswerRequest<'_>,
        now: Timestamp,
    ) -> Result<usize, CacheError> {
        let qname = self.question_name();
        if request.qname.len() != qname.len() || !request.qname.eq_ignore_ascii_case(qname) {
            return Err(CacheError::QuestionMismatch);
        }
        // A stale answer says so; a remembered DNSSEC failure says why.
        let ede = if request.stale {
            Some(heimdall_wire::ede::STALE_ANSWER)
        } else {
            let code = self.ede();
            (code != 0).then_some(code)
        };
        let ede_len = if ede.is_some() { STALE_EDE_LEN } else { 0 };
        let opt_len = match request.edns {
            None => 0,
            Some(edns) => OPT_LEN + ede_len + edns.cookie_len(),
        };
        let available = request.limit.min(out.len()).min(TCP_LIMIT);
        let fits = |cut: &Cut| usize::from(cut.offset) + opt_len <= available;
        let full = self.full_cut();
        let cut = if fits(&full) {
            full
        } else {
            let question_only = Cut {
                offset: self.question_end(),
                answers: 0,
                authorities: 0,
                additionals: 0,
            };
            if !fits(&question_only) {
                return Err(CacheError::BufferTooSmall {
                    needed: usize::from(self.question_end()) + opt_len,
                    available,
                });
            }
            // Cuts come in increasing order: keep the last that fits.
            let mut best = question_only;
            if let Ok(message) = Message::parse(self.wire()) {
                crate::entry::visit_cuts(&message, |cut| {
                    if fits(&cut) {
                        best = cut;
                    }
                });
            }
            best
        };
        let len = usize::from(cut.offset);
        let (Some(dest), Some(body)) = (out.get_mut(..len), self.wire().get(..len)) else {
            return Err(CacheError::BufferTooSmall {
                needed: len,
                available,
            });
        };
        dest.copy_from_slice(body);
        put(out, HEADER_LEN, request.qname);

        let age = now.secs_since(self.stored_at());
        if request.stale {
            // A stale TTL replaces the stored one outright: aging it would
            // give 0 (the entry has expired), which tells the client
            // nothing it can use.
            for offset in self.ttl_offset_iter().take(cut.records()) {
                put(out, usize::from(offset), &STALE_TTL.to_be_bytes());
            }
        } else if age > 0 {
            for offset in self.ttl_offset_iter().take(cut.records()) {
                let at = usize::from(offset);
                if let Some(field) = out.get_mut(at..at + 4)
                    && let Ok(bytes) = <[u8; 4]>::try_from(&*field)
                {
                    let ttl = u32::from_be_bytes(bytes).saturating_sub(age);
                    field.copy_from_slice(&ttl.to_be_bytes());
                }
            }
        }

        let client = request.flags;
        let dnssec_ok = request.edns.is_some_and(|edns| edns.dnssec_ok);
        let truncated = cut.answers < full.answers || cut.authorities < full.authorities;
        let flags = Flags(Flags::QR | Flags::RA)
            .with_opcode(client.opcode())
            .with_recursion_desired(client.recursion_desired())
            .with_checking_disabled(client.checking_disabled())
            .with_authentic_data(self.authentic_data() && (client.authentic_data() || dnssec_ok))
            .with_truncated(truncated)
            .with_rcode(self.rcode());
        let header = Header {
            id: request.id,
            flags,
            question_count: 1,
            answer_count: cut.answers,
            authority_count: cut.authorities,
            additional_count: cut
                .additionals
                .saturating_add(u16::from(request.edns.is_some())),
        };
        put(out, 0, &header.to_bytes());

        let Some(edns) = request.edns else {
            return Ok(len);
        };
        let [type_high, type_low] = RecordType::OPT.0.to_be_bytes();
        let [size_high, size_low] = request.our_udp_payload.to_be_bytes();
        // TTL field: extended rcode 0 (stored rcodes fit the header),
        // version 0, DO echoed, other flags 0; then RDLENGTH: the EDE
        // option of a stale answer and our COOKIE option, when there are.
        let do_bit = if dnssec_ok { 0x80 } else { 0 };
        let [rdlength_high, rdlength_low] = ((ede_len + edns.cookie_len()) as u16).to_be_bytes();
        let opt = [
            0,
            type_high,
            type_low,
            size_high,
            size_low,
            0,
            0,
            do_bit,
            0,
            rdlength_high,
            rdlength_low,
        ];
        put(out, len, &opt);
        let mut end = len + OPT_LEN;
        if let Some(info) = ede {
            let [code_high, code_low] = heimdall_wire::edns::EXTENDED_ERROR.to_be_bytes();
            let [info_high, info_low] = info.to_be_bytes();
            let ede = [code_high, code_low, 0, 2, info_high, info_low];
            put(out, end, &ede);
            end += STALE_EDE_LEN;
        }
        if let Some(cookie) = &edns.cookie {
            put(out, end, &cookie.wire());
            end += ReplyCookie::OPTION_LEN;
        }
        Ok(end)
    }
}
