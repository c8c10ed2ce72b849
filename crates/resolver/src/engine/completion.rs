//! Completed queries and what their waiters get ([`Answer`]): the answer
//! written for each waiter in its own ID, letter case, size limit and
//! EDNS (its COOKIE answered, made when its query was admitted), by
//! [`Resolver::poll_reply`].

use heimdall_cache::{AnswerRequest, Entry, TCP_LIMIT, Timestamp, udp_limit};
use heimdall_wire::cookie::ReplyCookie;
use heimdall_wire::{
    Class, HEADER_LEN, Message, MessageBuilder, Name, OptSpec, Rcode, RecordType, Section,
};
use smallvec::SmallVec;

use super::Resolver;
use crate::inflight::Waiter;
use crate::io::{ClientId, Transport};
use crate::reply::{ReplyTo, reply_flags, write_error_reply};

#[derive(Debug)]
pub(super) enum Answer {
    /// A normalized entry (stored or not).
    Entry(Entry),
    /// An upstream reply that is passed on but not cached.
    Relay(Box<[u8]>),
    /// No usable answer: SERVFAIL with this EDE code.
    Fail(u16),
    /// The upstream failed or is slow: a stale entry, served as such.
    Stale(Entry),
}

#[derive(Debug)]
pub(super) struct Completion {
    pub(super) answer: Answer,
    pub(super) waiters: SmallVec<[Waiter; 1]>,
    pub(super) qtype: RecordType,
    pub(super) qclass: Class,
}

impl Resolver {
    /// The next reply to a waiting client, written into `out`.
    pub fn poll_reply(&mut self, out: &mut [u8], now: Timestamp) -> Option<(ClientId, usize)> {
        loop {
            let completion = self.completions.front_mut()?;
            let Some(waiter) = completion.waiters.pop() else {
                self.completions.pop_front();
                continue;
            };
            let limit = match waiter.client.transport {
                Transport::Udp => udp_limit(waiter.edns, self.config.udp_payload_size),
                Transport::Tcp(_)
                | Transport::Tls(_)
                | Transport::Https(_)
                | Transport::Quic(_) => TCP_LIMIT,
            };
            let our_size = self.config.udp_payload_size;
            let written = match &completion.answer {
                Answer::Entry(entry) | Answer::Stale(entry) => {
                    let stale = matches!(completion.answer, Answer::Stale(_));
                    let request = AnswerRequest {
                        id: waiter.id,
                        flags: waiter.flags,
                        qname: &waiter.qname,
                        edns: waiter.edns,
                        our_udp_payload: our_size,
                        limit,
                        stale,
                    };
                    let len = entry.write_answer(out, &request, now).ok();
                    if stale && len.is_some() {
                        self.stats.stale_served += 1;
                    }
                    len.map(|len| (len, entry.rcode().0))
                }
                Answer::Relay(bytes) => write_relay(out, bytes, &waiter, limit, our_size),
                Answer::Fail(code) => {
                    self.stats.servfail += 1;
                    let name = Name::from_wire(&waiter.qname).ok();
                    let to = ReplyTo {
                        id: waiter.id,
                        flags: waiter.flags,
                        question: name.map(|name| (name, completion.qtype, completion.qclass)),
                        edns: waiter.edns,
                    };
                    let len =
                        write_error_reply(out, &to, Rcode::SERVFAIL, Some((*code, "")), our_size);
                    Some((len, Rcode::SERVFAIL.0))
                }
            };
            if let Some((len, rcode)) = written.filter(|&(len, _)| len > 0) {
                self.stats.count_response(rcode);
                let waited_ms = now
                    .as_millis()
                    .saturating_sub(waiter.received_at.as_millis());
                let histogram = match waiter.client.transport {
                    Transport::Udp => &mut self.stats.answers_waited_udp,
                    Transport::Tcp(_) => &mut self.stats.answers_waited_tcp,
                    Transport::Tls(_) => &mut self.stats.answers_waited_tls,
                    Transport::Https(_) => &mut self.stats.answers_waited_https,
                    Transport::Quic(_) => &mut self.stats.answers_waited_quic,
                };
                histogram.observe_us(waited_ms.saturating_mul(1000));
                return Some((waiter.client, len));
            }
        }
    }
}

/// Pass an uncacheable upstream reply to one waiter: its ID, flags and
/// letter case, its size limit (truncating at RRsets), its EDNS.
fn write_relay(
    out: &mut [u8],
    upstream_reply: &[u8],
    waiter: &Waiter,
    limit: usize,
    our_size: u16,
) -> Option<(usize, u16)> {
    let message = Message::parse(upstream_reply).ok()?;
    let question = message.question()?;
    let rcode = message.rcode();
    let mut builder = MessageBuilder::new(out).ok()?;
    builder.set_limit(limit);
    builder.set_id(waiter.id);
    let wants_ad = waiter.flags.authentic_data() || waiter.edns.is_some_and(|e| e.dnssec_ok);
    builder.set_flags(
        reply_flags(waiter.flags, rcode)
            .with_authentic_data(wants_ad && message.flags().authentic_data()),
    );
    let cookie = waiter.edns.and_then(|edns| edns.cookie);
    let cookie_option = cookie.as_ref().map(ReplyCookie::option);
    let opt = waiter.edns.map(|edns| OptSpec {
        udp_payload_size: our_size,
        extended_rcode: rcode.extended_bits(),
        version: 0,
        dnssec_ok: edns.dnssec_ok,
        options: cookie_option.as_slice(),
    });
    if let Some(opt) = &opt {
        builder.reserve(opt.wire_len());
    }
    let qname = Name::from_wire(&waiter.qname).ok()?;
    builder
        .question(&qname, question.qtype, question.qclass)
        .ok()?;
    'sections: for section in [Section::Answer, Section::Authority, Section::Additional] {
        for record in message.records(section) {
            if record.rtype() == RecordType::OPT {
                continue;
            }
            if builder.copy_record(section, &record).is_err() {
                break 'sections;
            }
        }
    }
    if let Some(opt) = &opt {
        let _ = builder.opt(opt);
    }
    let len = builder.finish();
    (len > HEADER_LEN).then_some((len, rcode.0))
}
