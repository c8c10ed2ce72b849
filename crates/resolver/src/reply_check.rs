//! The reply check: the one door every upstream reply passes before the
//! engine acts on it (retries it, fails on it, caches it, hands it to
//! clients or other cores).
//!
//! [`check_reply`] accepts a reply only when it answers the current
//! attempt of an outstanding query: it parses, its ID is the attempt's,
//! it came from the upstream the attempt asked, over the transport the
//! attempt used, it is a response, and its question is the query's
//! (name without regard to case, type and class).
//!
//! This is where every later defence against forged or bogus answers
//! plugs in, so there stays exactly one door: DNS cookies (RFC 7873)
//! against the attempt's server cookie, exact-case 0x20 question
//! matching, and DNSSEC validation before anything is stored. Each new
//! check adds a [`Rejection`] reason, so it can be counted on its own.

use core::net::SocketAddr;

use heimdall_config::UpstreamTransport;
use heimdall_wire::{Message, Name};

use crate::inflight::{InFlight, InFlightTable, Slot};
use crate::stats::ResolverStats;
use crate::upstreams::Upstreams;

/// Why an upstream reply was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// It did not parse.
    Malformed,
    /// No outstanding attempt was sent with its ID: a late reply to an
    /// earlier attempt, or a guess.
    UnknownId,
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
}

impl Rejection {
    /// Count the rejection: a parse failure as malformed, everything else
    /// as mismatched (a spoofing attempt, or a late reply).
    pub(crate) fn count(self, stats: &mut ResolverStats) {
        match self {
            Rejection::Malformed => stats.upstream_malformed += 1,
            Rejection::UnknownId
            | Rejection::WrongSource
            | Rejection::WrongTransport
            | Rejection::NotAResponse
            | Rejection::WrongQuestion => stats.upstream_mismatched += 1,
        }
    }
}

/// A reply that passed the check: the query it answers and its parse.
pub(crate) struct AcceptedReply<'a> {
    /// The query whose current attempt it answers.
    pub(crate) slot: Slot,
    pub(crate) message: Message<'a>,
}

/// Judge `packet`, which arrived from `from` over `transport`, against
/// the outstanding queries in `table` (whose upstream indexes refer to
/// `upstreams`). The only way from an upstream's bytes to the engine.
pub(crate) fn check_reply<'a>(
    table: &InFlightTable,
    upstreams: &Upstreams,
    from: SocketAddr,
    transport: UpstreamTransport,
    packet: &'a [u8],
) -> Result<AcceptedReply<'a>, Rejection> {
    let message = Message::parse(packet).map_err(|_| Rejection::Malformed)?;
    let slot = table.slot_of_id(message.id()).ok_or(Rejection::UnknownId)?;
    let inflight = table.get(slot).ok_or(Rejection::UnknownId)?;
    let expected = upstreams
        .get(inflight.attempt.upstream)
        .map(|up| up.address());
    if expected != Some(from) {
        return Err(Rejection::WrongSource);
    }
    if transport != inflight.attempt.transport {
        return Err(Rejection::WrongTransport);
    }
    if !message.flags().response() {
        return Err(Rejection::NotAResponse);
    }
    if !question_matches(&message, inflight) {
        return Err(Rejection::WrongQuestion);
    }
    Ok(AcceptedReply { slot, message })
}

/// Exactly one question, and it is the query's: name without regard to
/// case, type and class.
fn question_matches(message: &Message<'_>, inflight: &InFlight) -> bool {
    let key = &inflight.key;
    message.header().question_count == 1
        && message.question().is_some_and(|question| {
            question.qtype == key.qtype
                && question.qclass == key.qclass
                && Name::from_wire(&key.name).is_ok_and(|name| name.eq_ignore_case(&question.name))
        })
}
