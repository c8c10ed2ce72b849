//! The reply check: the one door every upstream reply passes before the
//! engine acts on it (retries it, fails on it, caches it, hands it to
//! clients or other cores).
//!
//! [`check_reply`] accepts a reply only when it answers a live attempt of
//! an outstanding query (the current one, or an earlier one of the same
//! query: a late reply): it parses, its ID is the attempt's, for UDP it
//! arrived on the attempt's own socket, it came from the upstream the
//! attempt asked, over the transport the attempt used, it is a response,
//! and its question is the query's: type, class and name, the name in
//! exactly the 0x20 letter case the attempt was sent in (module `case`),
//! or without regard to case for an attempt sent in lower case; and, for
//! an attempt sent with a DNS cookie (module `upstream_cookie`), its
//! COOKIE option echoes that client cookie (or it has none, and the
//! upstream is not known to send cookies).
//!
//! This is where every later defence against forged or bogus answers
//! plugs in, so there stays exactly one door. DNSSEC validation judges
//! what a reply that passed here says, before anything is stored
//! (`engine/validate.rs`, module `validation`). Each check has a [`Rejection`] reason, so
//! it can be counted on its own.
//!
//! The cookie is checked before the letter case: a reply with a wrong or
//! missing cookie is no evidence about the upstream's case handling.

use heimdall_wire::{Message, Name};

use crate::case::apply_case;
use crate::inflight::{Attempt, InFlight, InFlightTable, Slot};
use crate::io::ReplySource;
use crate::stats::ResolverStats;
use crate::upstream_cookie::{ReplyCookie, reply_cookie};
use crate::upstreams::Upstreams;

/// Why an upstream reply was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// It did not parse.
    Malformed,
    /// No outstanding attempt was sent with its ID: a late reply to an
    /// earlier attempt, or a guess.
    UnknownId,
    /// It arrived on the socket of another attempt than the one its ID
    /// belongs to (UDP: every attempt has a socket of its own).
    WrongSocket,
    /// It came from another address than the attempt's upstream (or that
    /// upstream was removed by a reload).
    WrongSource,
    /// It came over another transport than the attempt's (a UDP reply to
    /// a TCP query, say).
    WrongTransport,
    /// QR is clear: it is not a response.
    NotAResponse,
    /// Its question is not the query's, or there is not exactly one.
    WrongQuestion,
    /// Its question is the query's only without regard to case: the 0x20
    /// case of the attempt (the query in `Slot`, sent with this ID) was
    /// not echoed. Everything else was right, so the engine learns from it
    /// whether the upstream preserves case.
    WrongCase(Slot, u16),
    /// Its COOKIE option does not echo the client cookie the attempt was
    /// sent with, or is malformed (a length RFC 7873 does not allow, or
    /// two of them).
    WrongCookie,
    /// It has no cookie, but the upstream (the attempt in `Slot`, sent
    /// with this ID) is known to send them. Everything else was right, so
    /// the engine marks the attempt: should it time out, the upstream may
    /// have stopped sending cookies. Counted as a wrong cookie.
    NoCookie(Slot, u16),
}

impl Rejection {
    /// Count the rejection: a parse failure as malformed, everything else
    /// under its own reason and in the sum `upstream_mismatched` (a
    /// spoofing attempt, or a reply to a query that has ended).
    pub(crate) fn count(self, stats: &mut ResolverStats) {
        let reason = match self {
            Rejection::Malformed => {
                stats.upstream_malformed += 1;
                return;
            }
            Rejection::UnknownId => &mut stats.reply_rejected_wrong_id,
            Rejection::WrongSocket => &mut stats.reply_rejected_wrong_socket,
            Rejection::WrongSource => &mut stats.reply_rejected_wrong_source,
            Rejection::WrongTransport => &mut stats.reply_rejected_wrong_transport,
            Rejection::NotAResponse => &mut stats.reply_rejected_not_response,
            Rejection::WrongQuestion => &mut stats.reply_rejected_wrong_question,
            Rejection::WrongCase(..) => &mut stats.reply_rejected_wrong_case,
            Rejection::WrongCookie | Rejection::NoCookie(..) => {
                &mut stats.reply_rejected_wrong_cookie
            }
        };
        *reason += 1;
        stats.upstream_mismatched += 1;
    }
}

/// A reply that passed the check: the query and attempt it answers and
/// its parse.
pub(crate) struct AcceptedReply<'a> {
    /// The query one of whose live attempts it answers.
    pub(crate) slot: Slot,
    /// That attempt.
    pub(crate) attempt: Attempt,
    /// Whether it is the query's current attempt (else the reply is late).
    pub(crate) current: bool,
    pub(crate) message: Message<'a>,
    /// The server cookie of a reply that echoed the attempt's client
    /// cookie (empty when it sent none); `None` when the attempt carried
    /// no cookie or the reply none.
    pub(crate) server_cookie: Option<&'a [u8]>,
}

/// Judge `packet`, which reached the runtime as `source` says, against
/// the outstanding queries in `table` (whose upstream indexes refer to
/// `upstreams`). The only way from an upstream's bytes to the engine.
pub(crate) fn check_reply<'a>(
    table: &InFlightTable,
    upstreams: &Upstreams,
    source: ReplySource,
    packet: &'a [u8],
) -> Result<AcceptedReply<'a>, Rejection> {
    let message = Message::parse(packet).map_err(|_| Rejection::Malformed)?;
    let slot = table.slot_of_id(message.id()).ok_or(Rejection::UnknownId)?;
    let inflight = table.get(slot).ok_or(Rejection::UnknownId)?;
    let (attempt, current) = inflight
        .attempt_with_id(message.id())
        .ok_or(Rejection::UnknownId)?;
    if source
        .attempt
        .is_some_and(|received_on| received_on != attempt.id())
    {
        return Err(Rejection::WrongSocket);
    }
    let expected = upstreams.get(attempt.upstream).map(|up| up.address());
    if expected != Some(source.from) {
        return Err(Rejection::WrongSource);
    }
    if source.transport != attempt.transport {
        return Err(Rejection::WrongTransport);
    }
    if !message.flags().response() {
        return Err(Rejection::NotAResponse);
    }
    let question = question_matches(&message, inflight, &attempt);
    if question == QuestionMatch::No {
        return Err(Rejection::WrongQuestion);
    }
    let supported = upstreams
        .get(attempt.upstream)
        .is_some_and(|up| up.cookie().supported());
    let server_cookie = match (attempt.cookie, reply_cookie(&message)) {
        (None, _) => None,
        (Some(_), ReplyCookie::Malformed) => return Err(Rejection::WrongCookie),
        (Some(_), ReplyCookie::Absent) if supported => {
            return Err(Rejection::NoCookie(slot, attempt.id));
        }
        (Some(_), ReplyCookie::Absent) => None,
        (Some(sent), ReplyCookie::Present { client, server }) => {
            if client != sent {
                return Err(Rejection::WrongCookie);
            }
            Some(server)
        }
    };
    if question == QuestionMatch::CaseOnly {
        return Err(Rejection::WrongCase(slot, attempt.id));
    }
    Ok(AcceptedReply {
        slot,
        attempt,
        current,
        message,
        server_cookie,
    })
}

/// How a reply's question compares with the query's.
#[derive(PartialEq, Eq)]
enum QuestionMatch {
    /// The query's, in the case `attempt` was sent in.
    Exact,
    /// The query's, but the name only without regard to case.
    CaseOnly,
    /// Not the query's, or not exactly one question.
    No,
}

/// Whether the reply has exactly one question, and it is the query's:
/// type, class and name; the name in the 0x20 case of `attempt` when it
/// was sent with one, else without regard to case.
fn question_matches(
    message: &Message<'_>,
    inflight: &InFlight,
    attempt: &Attempt,
) -> QuestionMatch {
    let key = &inflight.key;
    let Some(question) = message.question() else {
        return QuestionMatch::No;
    };
    let same = message.header().question_count == 1
        && question.qtype == key.qtype
        && question.qclass == key.qclass
        && Name::from_wire(&key.name).is_ok_and(|name| name.eq_ignore_case(&question.name));
    if !same {
        return QuestionMatch::No;
    }
    let Some(seed) = attempt.case_seed else {
        return QuestionMatch::Exact;
    };
    // The name as sent: the key's (lower case) in the attempt's case. On
    // the stack: 255 bytes at most.
    let mut sent = key.name.clone();
    apply_case(&mut sent, seed);
    match Name::from_wire(&sent) {
        Ok(sent) if sent.eq_exact(&question.name) => QuestionMatch::Exact,
        Ok(_) => QuestionMatch::CaseOnly,
        Err(_) => QuestionMatch::No,
    }
}

#[cfg(test)]
mod tests {
    use core::net::SocketAddr;

    use heimdall_cache::Timestamp;
    use heimdall_config::{Upstream, UpstreamStrategy, UpstreamTransport};
    use heimdall_testkit::messages::{a_answer, query};
    use heimdall_wire::{Class, QueryKey, RecordType, WireNameBuf};
    use rand::SeedableRng as _;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::inflight::Phase;
    use crate::io::AttemptId;

    const UPSTREAM: &str = "127.0.0.1:5301";

    /// A table with one query for `check.example` A whose attempt went to
    /// the one upstream over UDP; and the bytes of that upstream query.
    fn outstanding() -> (InFlightTable, Upstreams, Slot, Vec<u8>) {
        let now = Timestamp::from_secs(1);
        let mut key = QueryKey {
            name: WireNameBuf::new(),
            qtype: RecordType(0),
            qclass: Class(0),
            dnssec_ok: false,
            checking_disabled: false,
        };
        let client_query = query("check.example", RecordType::A, 1, None);
        key.fill_from(&Message::parse(&client_query).unwrap())
            .unwrap();
        let mut table = InFlightTable::default();
        let slot = table.insert(&key, None, Phase::Forwarding, now).unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        table
            .begin_send(
                slot,
                0,
                UpstreamTransport::Udp,
                now,
                now.add_millis(800),
                2,
                None,
                None,
                &mut rng,
            )
            .unwrap();
        let id = table.get(slot).unwrap().attempt.id;
        let upstreams = Upstreams::new(
            &[Upstream::udp(UPSTREAM.parse().unwrap())],
            UpstreamStrategy::Ordered,
        );
        let sent = query("check.example", RecordType::A, id, None);
        (table, upstreams, slot, sent)
    }

    #[test]
    fn each_reason_is_told_apart() {
        let (table, upstreams, slot, sent) = outstanding();
        let upstream: SocketAddr = UPSTREAM.parse().unwrap();
        let udp = UpstreamTransport::Udp;
        let check = |from, transport, packet: &[u8]| {
            let source = ReplySource {
                from,
                transport,
                attempt: None,
            };
            check_reply(&table, &upstreams, source, packet).map(|reply| reply.slot)
        };
        let real = a_answer(&sent, 1, 60);
        assert_eq!(
            check(upstream, udp, b"\x00\x01junk"),
            Err(Rejection::Malformed)
        );
        let mut wrong_id = real.clone();
        wrong_id[1] ^= 0x01;
        assert_eq!(check(upstream, udp, &wrong_id), Err(Rejection::UnknownId));
        let elsewhere: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        assert_eq!(check(elsewhere, udp, &real), Err(Rejection::WrongSource));
        assert_eq!(
            check(upstream, UpstreamTransport::Tcp, &real),
            Err(Rejection::WrongTransport)
        );
        assert_eq!(check(upstream, udp, &sent), Err(Rejection::NotAResponse));
        let id = u16::from_be_bytes([sent[0], sent[1]]);
        let other = a_answer(&query("other.example", RecordType::A, id, None), 1, 60);
        assert_eq!(check(upstream, udp, &other), Err(Rejection::WrongQuestion));
        let shouting = a_answer(&query("CHECK.example", RecordType::A, id, None), 1, 60);
        assert_eq!(check(upstream, udp, &shouting), Ok(slot), "case is ignored");
        assert_eq!(check(upstream, udp, &real), Ok(slot));
        // Over UDP, on the attempt's own socket only.
        let attempt = table.get(slot).unwrap().attempt.id();
        let on_socket = |socket| {
            let source = ReplySource {
                from: upstream,
                transport: udp,
                attempt: Some(socket),
            };
            check_reply(&table, &upstreams, source, &real).map(|reply| reply.slot)
        };
        assert_eq!(
            on_socket(AttemptId(attempt.0.wrapping_add(1))),
            Err(Rejection::WrongSocket)
        );
        assert_eq!(on_socket(attempt), Ok(slot));
    }

    #[test]
    fn only_a_parse_failure_counts_as_malformed() {
        let mut stats = ResolverStats::default();
        for rejection in [
            Rejection::Malformed,
            Rejection::UnknownId,
            Rejection::WrongSocket,
            Rejection::WrongSource,
            Rejection::WrongTransport,
            Rejection::NotAResponse,
            Rejection::WrongQuestion,
            Rejection::WrongCookie,
        ] {
            rejection.count(&mut stats);
        }
        assert_eq!(
            (stats.upstream_malformed, stats.upstream_mismatched),
            (1, 7)
        );
        let reasons = [
            stats.reply_rejected_wrong_id,
            stats.reply_rejected_wrong_socket,
            stats.reply_rejected_wrong_source,
            stats.reply_rejected_wrong_transport,
            stats.reply_rejected_not_response,
            stats.reply_rejected_wrong_question,
            stats.reply_rejected_wrong_cookie,
        ];
        assert_eq!(reasons, [1; 7], "each reason has its own counter");
    }
}
