//! Admission: the one step a client packet passes before the engine looks
//! for an answer. In order: the header (responses and runts are dropped),
//! the ACL, the rate limit, the parse, then the RFC 1035 / 6891 / 8906
//! rules on what a query may ask. It returns a verdict ([`Admission`]):
//! drop it, a reply already written (a refusal, a FORMERR, a truncated
//! answer), or a query to answer, with its key filled in.
//!
//! Every counter about why a query was not admitted is counted here.
//!
//! Server cookies (RFC 7873, RFC 9018) are read here too, right after the
//! parse: the query's COOKIE option is judged
//! ([`heimdall_policy::ServerCookies`]) and the option every reply to it
//! carries (the client's cookie with a fresh server cookie) is put in its
//! [`ClientEdns`], so hits, errors, local data and the replies to clients
//! that waited on an upstream all answer it (all but the rate limiter's
//! truncated reply, kept no larger than the query). A malformed option
//! gets FORMERR; over `cookies.udp_require_above`, a UDP query without a
//! valid server cookie gets BADCOOKIE (it sent a client cookie) or TC (it
//! sent none).

use heimdall_cache::{ClientEdns, Timestamp};
use heimdall_policy::{
    AclDecision, CookieVerdict, RateDecision, RateLimitAction, RateLimiter, SecretCache,
    write_truncated,
};
use heimdall_wire::cookie::{ReplyCookie, find_cookie};
use heimdall_wire::{Class, Header, Message, Opcode, QueryKey, Question, Rcode, RecordType};

use crate::config::{CookiePolicy, ResolverConfig};
use crate::io::{ClientId, Transport};
use crate::reply::{ReplyTo, ede, write_error_reply};
use crate::stats::ResolverStats;

/// The verdict on a client packet.
pub(crate) enum Admission<'a> {
    /// Send nothing.
    Drop,
    /// A reply of this many bytes is in the output buffer.
    Reply(usize),
    /// A query to answer; the key it asks is in the caller's key.
    Query(Admitted<'a>),
}

impl From<Option<usize>> for Admission<'_> {
    /// A reply that was written, or a drop when it did not fit.
    fn from(written: Option<usize>) -> Self {
        written.map_or(Admission::Drop, Admission::Reply)
    }
}

/// An admitted query: parsed, with exactly one question of a type and
/// class we answer.
#[derive(Clone, Copy)]
pub(crate) struct Admitted<'a> {
    pub(crate) header: Header,
    pub(crate) message: Message<'a>,
    pub(crate) question: Question<'a>,
    pub(crate) edns: Option<ClientEdns>,
}

impl<'a> Admitted<'a> {
    /// What an error reply to this query echoes.
    pub(crate) fn reply_to(&self) -> ReplyTo<'a> {
        ReplyTo {
            id: self.header.id,
            flags: self.header.flags,
            question: Some((
                self.question.name,
                self.question.qtype,
                self.question.qclass,
            )),
            edns: self.edns,
        }
    }
}

/// What admission reads and writes of the engine: disjoint borrows, so
/// the engine can lend them while it holds others.
pub(crate) struct Gate<'r> {
    pub(crate) config: &'r ResolverConfig,
    pub(crate) rate_limiter: &'r mut Option<RateLimiter>,
    /// The buckets of `cookies.udp_require_above`, when it is set.
    pub(crate) cookie_limiter: &'r mut Option<RateLimiter>,
    /// This core's last derived cookie secrets.
    pub(crate) cookie_secrets: &'r mut SecretCache,
    pub(crate) stats: &'r mut ResolverStats,
    /// Filled with the key of an admitted query (its storage reused).
    pub(crate) key: &'r mut QueryKey,
}

/// Why a parsed query is refused: the rcode that says so, and an Extended
/// DNS Error code for EDNS clients.
struct Refusal(Rcode, Option<u16>);

/// What the client address earned before the packet is parsed.
struct Screened {
    header: Header,
    acl: AclDecision,
    /// The rate limiter's action, when over the limit (never `Drop`).
    limited: Option<RateLimitAction>,
}

/// Judge `packet` from `client` at `now`; a reply, if any, is written to
/// `out`.
#[inline]
pub(crate) fn admit<'a>(
    gate: Gate<'_>,
    packet: &'a [u8],
    client: &ClientId,
    now: Timestamp,
    out: &mut [u8],
) -> Admission<'a> {
    let Gate {
        config,
        rate_limiter,
        cookie_limiter,
        cookie_secrets,
        stats,
        key,
    } = gate;
    let our_size = config.udp_payload_size;
    let Screened {
        header,
        acl,
        limited,
    } = match screen(config, rate_limiter, stats, packet, client, now) {
        Some(screened) => screened,
        None => return Admission::Drop,
    };
    // Used where it lies and copied only into the admitted query at the
    // end: moved out at once, the copy read the parse's stores back before
    // they had left the store buffer, in pieces the CPU cannot forward.
    let parsed = Message::parse(packet);
    let Ok(message) = &parsed else {
        let to = ReplyTo::header_only(&header);
        if acl == AclDecision::Refuse {
            stats.acl_refused += 1;
            return policy_refusal(out, &to, Some(ede::PROHIBITED), our_size).into();
        }
        match limited {
            Some(RateLimitAction::Refused) => {
                stats.rate_limited_refused += 1;
                return policy_refusal(out, &to, None, our_size).into();
            }
            Some(_) => {
                stats.rate_limited_truncated += 1;
                return Admission::Drop;
            }
            None => {}
        }
        return refuse(stats, out, &to, Rcode::FORMERR, None, our_size).into();
    };
    let mut edns = ClientEdns::of(message);
    let cookie = match (&config.policy.cookies, &message.opt()) {
        (Some(policy), Some(opt)) => read_cookie(policy, cookie_secrets, opt, client, now, stats),
        _ => CookieStep::Absent,
    };
    if let (CookieStep::Read { reply, .. }, Some(edns)) = (&cookie, &mut edns) {
        edns.cookie = Some(*reply);
    }
    let question = message.question();
    if let Some(question) = &question {
        stats.qtypes.record(question.qtype.0);
    }
    // Only error replies echo the query this way; built when one is sent.
    let to = || ReplyTo {
        id: header.id,
        flags: header.flags,
        question: question.map(|q| (q.name, q.qtype, q.qclass)),
        edns,
    };
    if acl == AclDecision::Refuse {
        stats.acl_refused += 1;
        return policy_refusal(out, &to(), Some(ede::PROHIBITED), our_size).into();
    }
    match limited {
        Some(RateLimitAction::Refused) => {
            stats.rate_limited_refused += 1;
            return policy_refusal(out, &to(), None, our_size).into();
        }
        Some(_) => {
            // No COOKIE option here, unlike every other reply: this one
            // exists to be no larger than the query (a spoofed victim gets
            // no amplification), and the client's next step is TCP.
            stats.rate_limited_truncated += 1;
            return write_truncated(message, our_size, out).ok().into();
        }
        None => {}
    }
    match cookie {
        CookieStep::Malformed => {
            // Nothing of the option can be trusted, so nothing is echoed
            // (`edns` has no reply cookie).
            return refuse(stats, out, &to(), Rcode::FORMERR, None, our_size).into();
        }
        CookieStep::Read {
            verdict: CookieVerdict::Valid,
            ..
        } => {}
        _ if client.transport == Transport::Udp => {
            if let Some(limiter) = cookie_limiter
                && let RateDecision::Limit(_) = limiter.check(client.addr.ip(), now)
            {
                return demand_cookie(stats, message, &to(), &cookie, our_size, out);
            }
        }
        _ => {}
    }
    if message.header().question_count == 0
        && matches!(cookie, CookieStep::Read { .. })
        && message.flags().opcode() == Opcode::QUERY
        && message.opt().is_some_and(|opt| opt.version() == 0)
    {
        // RFC 7873 section 5.4: a query of only a COOKIE option (to learn
        // or refresh a server cookie) is answered NOERROR with ours.
        let len = write_error_reply(out, &to(), Rcode::NOERROR, None, our_size);
        return (len != 0).then_some(len).into();
    }
    if let Err(Refusal(rcode, ede_code)) = check_rules(message, question.as_ref()) {
        let extended = ede_code.map(|code| (code, ""));
        return refuse(stats, out, &to(), rcode, extended, our_size).into();
    }
    let Some(question) = question else {
        return refuse(stats, out, &to(), Rcode::FORMERR, None, our_size).into();
    };
    if key.fill_from(message).is_err() {
        return refuse(stats, out, &to(), Rcode::FORMERR, None, our_size).into();
    }
    Admission::Query(Admitted {
        header,
        message: *message,
        question,
        edns,
    })
}

/// What a query's COOKIE option is, once read.
enum CookieStep {
    /// No COOKIE option (or cookies are off).
    Absent,
    /// A wrong length, or more than one: FORMERR.
    Malformed,
    /// A well-formed option: what it proves, and the option to answer.
    Read {
        verdict: CookieVerdict,
        reply: ReplyCookie,
    },
}

/// Read and judge the COOKIE option of `opt`, counting the outcome, and
/// make the option the reply carries: the client's cookie and a fresh
/// server cookie (a fresh one every time, so a client's cookie never
/// nears the hour it is good for). One SipHash to make it and at most one
/// more to check the one sent (the period secrets come from this core's
/// `secrets`); nothing allocated.
#[inline]
fn read_cookie(
    policy: &CookiePolicy,
    secrets: &mut SecretCache,
    opt: &heimdall_wire::Opt<'_>,
    client: &ClientId,
    now: Timestamp,
    stats: &mut ResolverStats,
) -> CookieStep {
    let cookie = match find_cookie(opt) {
        Ok(Some(cookie)) => cookie,
        Ok(None) => return CookieStep::Absent,
        Err(_) => {
            stats.client_cookies_malformed += 1;
            return CookieStep::Malformed;
        }
    };
    let ip = client.addr.ip();
    let unix = policy.unix_secs(now);
    let verdict = policy
        .cookies
        .judge(secrets, cookie.client(), cookie.server(), ip, unix);
    match verdict {
        CookieVerdict::Valid => stats.client_cookies_valid += 1,
        CookieVerdict::ClientOnly => stats.client_cookies_new += 1,
        CookieVerdict::Invalid => stats.client_cookies_bad += 1,
    }
    let server = policy.cookies.make_with(secrets, cookie.client(), ip, unix);
    CookieStep::Read {
        verdict,
        reply: ReplyCookie::new(*cookie.client(), server),
    }
}

/// Over `cookies.udp_require_above` without a valid server cookie, over
/// UDP: BADCOOKIE with a fresh cookie for a client that sent a cookie
/// (RFC 7873 section 5.2.3: it retries with the new one), an empty TC
/// reply for one that sent none (it retries over TCP, which a spoofed
/// source cannot). Neither carries an answer, so neither amplifies.
fn demand_cookie<'a>(
    stats: &mut ResolverStats,
    message: &Message<'_>,
    to: &ReplyTo<'_>,
    cookie: &CookieStep,
    our_size: u16,
    out: &mut [u8],
) -> Admission<'a> {
    if let CookieStep::Read { .. } = cookie {
        stats.client_cookies_badcookie_sent += 1;
        let len = write_error_reply(out, to, Rcode::BADCOOKIE, None, our_size);
        return (len != 0).then_some(len).into();
    }
    stats.client_cookies_truncated += 1;
    write_truncated(message, our_size, out).ok().into()
}

/// `len` bytes of reply in `out`, with the client's COOKIE option added
/// to its OPT record when it has one and it fits `limit`; for replies
/// written by code that knows nothing of cookies (policy, local data).
pub(crate) fn with_cookie(
    out: &mut [u8],
    len: usize,
    limit: usize,
    edns: Option<ClientEdns>,
) -> usize {
    match edns.and_then(|edns| edns.cookie) {
        Some(cookie) => {
            heimdall_wire::cookie::append_to_opt(out, len, limit, &cookie).unwrap_or(len)
        }
        None => len,
    }
}

/// The checks before the parse: a query header (responses and runts are
/// dropped), then the ACL and the rate limit on the client's address.
/// Their refusals wait for the parse, so they can echo the question.
/// `None`: drop the packet.
#[inline]
fn screen(
    config: &ResolverConfig,
    rate_limiter: &mut Option<RateLimiter>,
    stats: &mut ResolverStats,
    packet: &[u8],
    client: &ClientId,
    now: Timestamp,
) -> Option<Screened> {
    let Ok(header) = Header::parse(packet) else {
        stats.dropped_malformed += 1;
        return None;
    };
    if header.flags.response() {
        // Answering a response invites reflection loops.
        stats.dropped_malformed += 1;
        return None;
    }
    stats.queries += 1;
    match client.transport {
        Transport::Udp => stats.queries_udp += 1,
        Transport::Tcp(_) => stats.queries_tcp += 1,
        Transport::Tls(_) => stats.queries_tls += 1,
        Transport::Https(_) => stats.queries_https += 1,
        Transport::Quic(_) => stats.queries_quic += 1,
    }
    let client_ip = client.addr.ip();
    let acl = match &config.policy.acl {
        Some(acl) => acl.check(client_ip),
        None => AclDecision::Allow,
    };
    if acl == AclDecision::Drop {
        stats.acl_dropped += 1;
        return None;
    }
    let limited = match (rate_limiter, acl) {
        (Some(limiter), AclDecision::Allow) => match limiter.check(client_ip, now) {
            RateDecision::Allow => None,
            // TC means nothing over TCP: the client already proved its
            // address.
            RateDecision::Limit(RateLimitAction::Truncate) if client.transport.is_stream() => None,
            RateDecision::Limit(action) => Some(action),
        },
        _ => None,
    };
    if limited == Some(RateLimitAction::Drop) {
        stats.rate_limited_dropped += 1;
        return None;
    }
    Some(Screened {
        header,
        acl,
        limited,
    })
}

/// RFC 1035 / 6891 / 8906 admission rules for a parsed query.
fn check_rules(message: &Message<'_>, question: Option<&Question<'_>>) -> Result<(), Refusal> {
    let flags = message.flags();
    if flags.opcode() != Opcode::QUERY {
        return Err(Refusal(Rcode::NOTIMP, Some(ede::NOT_SUPPORTED)));
    }
    if message.header().question_count != 1 {
        return Err(Refusal(Rcode::FORMERR, None));
    }
    if message.opt().is_some_and(|opt| opt.version() > 0) {
        return Err(Refusal(Rcode::BADVERS, None));
    }
    let Some(question) = question else {
        return Err(Refusal(Rcode::FORMERR, None));
    };
    match question.qtype {
        // Meta types that only make sense in another context.
        RecordType::OPT => Err(Refusal(Rcode::FORMERR, None)),
        RecordType::AXFR | RecordType::IXFR | RecordType::TSIG | RecordType::TKEY => {
            Err(Refusal(Rcode::REFUSED, Some(ede::NOT_SUPPORTED)))
        }
        _ if question.qclass != Class::IN => Err(Refusal(Rcode::REFUSED, Some(ede::NOT_SUPPORTED))),
        _ => Ok(()),
    }
}

/// A REFUSED reply from policy (ACL or rate limit), counted by the caller
/// under its own counter rather than as a protocol refusal. `None` when
/// `out` cannot hold it.
fn policy_refusal(
    out: &mut [u8],
    to: &ReplyTo<'_>,
    extended: Option<u16>,
    our_size: u16,
) -> Option<usize> {
    let len = write_error_reply(
        out,
        to,
        Rcode::REFUSED,
        extended.map(|code| (code, "")),
        our_size,
    );
    (len != 0).then_some(len)
}

/// An error reply with `rcode`, counted under its rcode's counter
/// (anything but FORMERR, NOTIMP, REFUSED and BADVERS counts as SERVFAIL).
/// `None` when `out` cannot hold it.
pub(crate) fn refuse(
    stats: &mut ResolverStats,
    out: &mut [u8],
    to: &ReplyTo<'_>,
    rcode: Rcode,
    extended: Option<(u16, &str)>,
    our_size: u16,
) -> Option<usize> {
    match rcode {
        Rcode::FORMERR => stats.formerr += 1,
        Rcode::NOTIMP => stats.notimp += 1,
        Rcode::REFUSED => stats.refused += 1,
        Rcode::BADVERS => stats.badvers += 1,
        _ => stats.servfail += 1,
    }
    let len = write_error_reply(out, to, rcode, extended, our_size);
    (len != 0).then_some(len)
}
