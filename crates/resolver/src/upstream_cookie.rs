//! DNS cookies as a client toward upstreams (RFC 7873 sections 5.1 and
//! 5.3, with the sizes of RFC 9018): what one core knows of one upstream's
//! cookies ([`UpstreamCookie`]), the option its queries carry, and how a
//! reply's COOKIE option reads ([`reply_cookie`]).
//!
//! Each upstream gets its own 8-byte client cookie, drawn from the
//! engine's cryptographic generator the first time it is asked and again
//! after [`CLIENT_COOKIE_LIFETIME_MS`] (a day). It is never shared with
//! another upstream (an upstream cannot use it to follow us to another),
//! and an upstream whose address changes on reload is a new upstream with
//! a fresh cookie. Every core has its own: a server cookie is bound to the
//! client cookie it was issued for, so each core learns its own.
//! RFC 7873 also asks for a new client cookie when the client's address
//! changes; the engine never sees its source address (the runtime's
//! sockets are unbound wildcards), so an address change shows as
//! BADCOOKIE from a strict upstream, which the engine answers by asking
//! again with the new server cookie, or at the latest as the daily
//! renewal.
//!
//! Why the cookie defends: an off-path forger does not see our queries,
//! so it cannot know the client cookie; once an upstream has been seen to
//! echo it, a reply without it is refused as well. A genuine upstream may
//! stop sending cookies (reconfigured, another anycast instance), so that
//! knowledge is dropped, but only after [`COOKIELESS_TIMEOUTS_FOR_FALLBACK`]
//! attempts in a row *timed out* having received only cookie-less (and
//! otherwise matching) replies: a forger cannot make an attempt time out
//! (the genuine reply still arrives and is accepted), so no flood can
//! switch the check off.
//!
//! The reader here is the client side's view of the option, over
//! `heimdall_wire::cookie` (RFC 7873 section 4 lengths: 8 bytes, or 16 to
//! 40). Nothing here reads a clock: times are milliseconds handed in by
//! the engine.

use heimdall_wire::Message;
pub use heimdall_wire::cookie::{CLIENT_COOKIE_LEN, SERVER_COOKIE_MAX};
use heimdall_wire::cookie::{SERVER_COOKIE_MIN, find_cookie};
use rand::Rng;

/// Longest COOKIE option data: a client and a server cookie.
pub(crate) const COOKIE_OPTION_MAX: usize = CLIENT_COOKIE_LEN + SERVER_COOKIE_MAX;

/// How long one client cookie is used for an upstream before a fresh one
/// is drawn (RFC 7873 section 5.1 asks for a periodic change). A day:
/// each change costs at most one BADCOOKIE round trip to an upstream that
/// requires a server cookie, and the cookie is not an identifier worth
/// changing more often (the source address already is one).
pub const CLIENT_COOKIE_LIFETIME_MS: u64 = 24 * 60 * 60 * 1000;

/// Attempts in a row that time out having received only cookie-less (and
/// otherwise matching) replies, from an upstream known to send cookies,
/// before it is taken to have stopped sending them. An accepted reply
/// with our cookie resets the count.
pub const COOKIELESS_TIMEOUTS_FOR_FALLBACK: u32 = 3;

/// An 8-byte client cookie.
pub type ClientCookie = [u8; CLIENT_COOKIE_LEN];

/// What a reply says about cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyCookie<'a> {
    /// No COOKIE option (or no OPT record).
    Absent,
    /// One well-formed COOKIE option: the client cookie it echoes and the
    /// server cookie (empty when it has none).
    Present {
        client: ClientCookie,
        server: &'a [u8],
    },
    /// A COOKIE option of a length RFC 7873 does not allow, or more than
    /// one.
    Malformed,
}

/// The COOKIE option of `message`, read with the lengths of RFC 7873
/// section 4.
pub(crate) fn reply_cookie<'a>(message: &Message<'a>) -> ReplyCookie<'a> {
    let Some(opt) = message.opt() else {
        return ReplyCookie::Absent;
    };
    match find_cookie(&opt) {
        Ok(None) => ReplyCookie::Absent,
        Ok(Some(cookie)) => ReplyCookie::Present {
            client: *cookie.client(),
            server: cookie.server(),
        },
        Err(_) => ReplyCookie::Malformed,
    }
}

/// What one core knows of one upstream's cookies.
#[derive(Debug, Clone, Default)]
pub struct UpstreamCookie {
    /// Our client cookie for it and when it was drawn (ms); `None` until
    /// the first query.
    client: Option<(ClientCookie, u64)>,
    /// Its server cookie for our current client cookie (the first
    /// `server_len` bytes); learned from accepted replies.
    server: [u8; SERVER_COOKIE_MAX],
    server_len: u8,
    /// It has returned our client cookie: a reply without one is refused.
    supported: bool,
    /// Attempts in a row that timed out with only cookie-less replies.
    cookieless_timeouts: u32,
}

impl UpstreamCookie {
    /// The client cookie for a query sent at `now_ms`: a fresh one from
    /// `rng` the first time and once the current one is
    /// [`CLIENT_COOKIE_LIFETIME_MS`] old (the server cookie, bound to the
    /// old one, is forgotten with it).
    pub(crate) fn client_cookie(&mut self, now_ms: u64, rng: &mut impl Rng) -> ClientCookie {
        if let Some((cookie, born)) = self.client
            && now_ms.saturating_sub(born) < CLIENT_COOKIE_LIFETIME_MS
        {
            return cookie;
        }
        let cookie = rng.next_u64().to_ne_bytes();
        self.client = Some((cookie, now_ms));
        self.server_len = 0;
        cookie
    }

    /// The current client cookie, if one was drawn.
    pub fn current_client(&self) -> Option<ClientCookie> {
        self.client.map(|(cookie, _)| cookie)
    }

    /// The server cookie learned for the current client cookie.
    pub fn server_cookie(&self) -> Option<&[u8]> {
        let server = self.server.get(..usize::from(self.server_len))?;
        (!server.is_empty()).then_some(server)
    }

    /// Whether it has been seen to return cookies (so a cookie-less reply
    /// from it is refused).
    pub fn supported(&self) -> bool {
        self.supported
    }

    /// The COOKIE option data for an attempt sent with `client`, written
    /// to `out`: the client cookie, and the server cookie when one was
    /// learned for that same client cookie. Returns its length.
    pub(crate) fn write_option(
        &self,
        client: &ClientCookie,
        out: &mut [u8; COOKIE_OPTION_MAX],
    ) -> usize {
        let (head, tail) = out.split_at_mut(CLIENT_COOKIE_LEN);
        head.copy_from_slice(client);
        let server = match self.server_cookie() {
            Some(server) if self.current_client().as_ref() == Some(client) => server,
            _ => return CLIENT_COOKIE_LEN,
        };
        match tail.get_mut(..server.len()) {
            Some(place) => {
                place.copy_from_slice(server);
                CLIENT_COOKIE_LEN + server.len()
            }
            None => CLIENT_COOKIE_LEN,
        }
    }

    /// An accepted reply to an attempt sent with `client` echoed it,
    /// with `server` (possibly empty): the upstream supports cookies, its
    /// cookie-less timeouts start over, and a server cookie for our
    /// current client cookie replaces the one known.
    pub(crate) fn learn(&mut self, client: &ClientCookie, server: &[u8]) {
        self.supported = true;
        self.cookieless_timeouts = 0;
        if self.current_client().as_ref() != Some(client) || server.len() < SERVER_COOKIE_MIN {
            return;
        }
        if let Some(place) = self.server.get_mut(..server.len()) {
            place.copy_from_slice(server);
            self.server_len = server.len() as u8;
        }
    }

    /// An attempt to it timed out having received only cookie-less (and
    /// otherwise matching) replies. Returns whether this was the
    /// [`COOKIELESS_TIMEOUTS_FOR_FALLBACK`]th in a row, so that it is no
    /// longer taken to support cookies (its server cookie is forgotten
    /// too; our queries still carry a client cookie, so support is learned
    /// again from the first reply that echoes it).
    pub(crate) fn on_cookieless_timeout(&mut self) -> bool {
        if !self.supported {
            return false;
        }
        self.cookieless_timeouts = self.cookieless_timeouts.saturating_add(1);
        if self.cookieless_timeouts < COOKIELESS_TIMEOUTS_FOR_FALLBACK {
            return false;
        }
        self.supported = false;
        self.cookieless_timeouts = 0;
        self.server_len = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use heimdall_wire::{
        Class, EdnsOption, Flags, MessageBuilder, NameBuf, OptSpec, RecordType, edns,
    };
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    use super::*;

    fn reply_with(options: &[EdnsOption<'_>], opt: bool) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(7);
        builder.set_flags(Flags::default().with_response(true));
        let name = NameBuf::from_presentation("example.com").unwrap();
        builder
            .question(&name.as_name(), RecordType::A, Class::IN)
            .unwrap();
        if opt {
            builder
                .opt(&OptSpec {
                    udp_payload_size: 1232,
                    extended_rcode: 0,
                    version: 0,
                    dnssec_ok: false,
                    options,
                })
                .unwrap();
        }
        let len = builder.finish();
        buf[..len].to_vec()
    }

    fn cookie(data: &[u8]) -> EdnsOption<'_> {
        EdnsOption {
            code: edns::COOKIE,
            data,
        }
    }

    #[test]
    fn option_lengths_follow_rfc_7873() {
        for len in 0..=48usize {
            let data = vec![0xab; len];
            let bytes = reply_with(&[cookie(&data)], true);
            let read = reply_cookie(&Message::parse(&bytes).unwrap());
            if len == 8 || (16..=40).contains(&len) {
                assert_eq!(
                    read,
                    ReplyCookie::Present {
                        client: [0xab; 8],
                        server: &data[8..],
                    },
                    "length {len}"
                );
            } else {
                assert_eq!(read, ReplyCookie::Malformed, "length {len}");
            }
        }
        let none = reply_with(&[], true);
        assert_eq!(
            reply_cookie(&Message::parse(&none).unwrap()),
            ReplyCookie::Absent
        );
        let no_opt = reply_with(&[], false);
        assert_eq!(
            reply_cookie(&Message::parse(&no_opt).unwrap()),
            ReplyCookie::Absent
        );
        let two = reply_with(&[cookie(&[1; 8]), cookie(&[1; 8])], true);
        assert_eq!(
            reply_cookie(&Message::parse(&two).unwrap()),
            ReplyCookie::Malformed
        );
    }

    #[test]
    fn the_client_cookie_is_kept_for_a_day_then_renewed() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut state = UpstreamCookie::default();
        let first = state.client_cookie(1_000, &mut rng);
        assert_eq!(state.client_cookie(2_000, &mut rng), first);
        state.learn(&first, &[9; 16]);
        assert_eq!(state.server_cookie(), Some(&[9u8; 16][..]));
        let mut out = [0u8; COOKIE_OPTION_MAX];
        let len = state.write_option(&first, &mut out);
        assert_eq!(&out[..len], [&first[..], &[9; 16]].concat());
        let renewed = state.client_cookie(1_000 + CLIENT_COOKIE_LIFETIME_MS, &mut rng);
        assert_ne!(renewed, first);
        assert_eq!(state.server_cookie(), None, "bound to the old cookie");
        assert!(state.supported(), "the upstream still speaks cookies");
        // An attempt still out with the old cookie gets no server cookie,
        // and its reply teaches nothing about the new one.
        assert_eq!(state.write_option(&first, &mut out), 8);
        state.learn(&first, &[7; 8]);
        assert_eq!(state.server_cookie(), None);
    }

    #[test]
    fn support_is_forgotten_only_after_cookieless_timeouts_in_a_row() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut state = UpstreamCookie::default();
        let client = state.client_cookie(0, &mut rng);
        assert!(!state.on_cookieless_timeout(), "never supported: nothing");
        state.learn(&client, &[3; 8]);
        for _ in 1..COOKIELESS_TIMEOUTS_FOR_FALLBACK {
            assert!(!state.on_cookieless_timeout());
        }
        state.learn(&client, &[4; 8]);
        for _ in 1..COOKIELESS_TIMEOUTS_FOR_FALLBACK {
            assert!(!state.on_cookieless_timeout(), "the count started over");
        }
        assert!(state.on_cookieless_timeout());
        assert!(!state.supported());
        assert_eq!(state.server_cookie(), None);
    }

    #[test]
    fn a_server_cookie_of_a_bad_length_is_not_stored() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut state = UpstreamCookie::default();
        let client = state.client_cookie(0, &mut rng);
        state.learn(&client, &[]);
        assert!(state.supported());
        assert_eq!(state.server_cookie(), None);
        state.learn(&client, &[1; 33]);
        assert_eq!(state.server_cookie(), None);
        state.learn(&client, &[1; 32]);
        assert_eq!(state.server_cookie().map(<[u8]>::len), Some(32));
    }
}
