//! The DNS COOKIE option (RFC 7873 section 4) as a server sees it: the
//! reader of a query's option ([`find_cookie`], [`Cookie`]) with the RFC's
//! length rules, the option a server answers with ([`ReplyCookie`]: the
//! client cookie echoed and a 16-byte RFC 9018 server cookie), and
//! [`append_to_opt`], which adds an option to the OPT record that ends a
//! reply another writer already built.
//!
//! How server cookies are made and checked (the secret, the hash) is not
//! message format and lives in heimdall-policy.

use crate::message::{EdnsOption, Message, Opt};

/// Length of a client cookie (RFC 7873 section 4).
pub const CLIENT_COOKIE_LEN: usize = 8;
/// Shortest server cookie (RFC 7873 section 4).
pub const SERVER_COOKIE_MIN: usize = 8;
/// Longest server cookie (RFC 7873 section 4).
pub const SERVER_COOKIE_MAX: usize = 32;
/// Length of the server cookies heimdall makes (RFC 9018 section 4).
pub const SERVER_COOKIE_LEN: usize = 16;

/// Why a COOKIE option is malformed; the query gets FORMERR (RFC 7873
/// section 5.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// The option is not 8 bytes (a client cookie) nor 16 to 40 bytes (a
    /// client and a server cookie).
    #[error("COOKIE option of {0} bytes (8 or 16 to 40 allowed)")]
    Length(usize),
    /// The OPT record has more than one COOKIE option.
    #[error("more than one COOKIE option")]
    Duplicate,
}

/// A COOKIE option read from a message: the client cookie and the server
/// cookie (empty when the client sent only its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie<'a> {
    client: [u8; CLIENT_COOKIE_LEN],
    server: &'a [u8],
}

impl<'a> Cookie<'a> {
    /// Read an option's data, with the length rules of RFC 7873 section 4.
    pub fn parse(data: &'a [u8]) -> Result<Self, CookieError> {
        let len = data.len();
        let valid = len == CLIENT_COOKIE_LEN
            || (CLIENT_COOKIE_LEN + SERVER_COOKIE_MIN..=CLIENT_COOKIE_LEN + SERVER_COOKIE_MAX)
                .contains(&len);
        let (client, server) = data
            .split_first_chunk::<CLIENT_COOKIE_LEN>()
            .filter(|_| valid)
            .ok_or(CookieError::Length(len))?;
        Ok(Self {
            client: *client,
            server,
        })
    }

    /// The client cookie.
    pub fn client(&self) -> &[u8; CLIENT_COOKIE_LEN] {
        &self.client
    }

    /// The server cookie, empty when the client sent none.
    pub fn server(&self) -> &'a [u8] {
        self.server
    }
}

/// The COOKIE option of `opt`, if it has one. More than one is an error
/// (RFC 7873 section 5.2.2 leaves it to FORMERR: which one would count?).
pub fn find_cookie<'a>(opt: &Opt<'a>) -> Result<Option<Cookie<'a>>, CookieError> {
    let mut found = None;
    for option in opt.options() {
        if option.code != crate::edns::COOKIE {
            continue;
        }
        if found.is_some() {
            return Err(CookieError::Duplicate);
        }
        found = Some(Cookie::parse(option.data)?);
    }
    Ok(found)
}

/// The COOKIE option a server answers with: the client's cookie echoed,
/// then a server cookie of [`SERVER_COOKIE_LEN`] bytes. `Copy` and on the
/// stack, so it can ride along with a query (to a waiter's reply) at no
/// allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyCookie {
    data: [u8; CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN],
}

impl ReplyCookie {
    /// Bytes the option adds to an OPT record: code, length, data.
    pub const OPTION_LEN: usize = 4 + CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN;

    /// The option for `client`'s cookie and our `server` cookie.
    pub fn new(client: [u8; CLIENT_COOKIE_LEN], server: [u8; SERVER_COOKIE_LEN]) -> Self {
        let mut data = [0u8; CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN];
        let (head, tail) = data.split_at_mut(CLIENT_COOKIE_LEN);
        head.copy_from_slice(&client);
        tail.copy_from_slice(&server);
        Self { data }
    }

    /// The option data: client cookie, then server cookie.
    pub fn data(&self) -> &[u8; CLIENT_COOKIE_LEN + SERVER_COOKIE_LEN] {
        &self.data
    }

    /// The option, for a [`MessageBuilder`](crate::MessageBuilder)'s OPT.
    pub fn option(&self) -> EdnsOption<'_> {
        EdnsOption {
            code: crate::edns::COOKIE,
            data: &self.data,
        }
    }

    /// The option in wire form (code, length, data), for writers that
    /// patch an OPT record in place.
    pub fn wire(&self) -> [u8; Self::OPTION_LEN] {
        let mut wire = [0u8; Self::OPTION_LEN];
        let (head, tail) = wire.split_at_mut(4);
        let [code_high, code_low] = crate::edns::COOKIE.to_be_bytes();
        let [len_high, len_low] = (self.data.len() as u16).to_be_bytes();
        head.copy_from_slice(&[code_high, code_low, len_high, len_low]);
        tail.copy_from_slice(&self.data);
        wire
    }
}

/// Add `cookie` to the OPT record that ends the message in
/// `buf[..len]`, if the result still fits `limit` (and `buf`). Returns the
/// new length, or `None` (the message left as it was) when the message
/// has no OPT record, the OPT record is not its last bytes, or there is no
/// room. For replies built by writers that know nothing of cookies; a
/// reply's OPT record is always its last record.
pub fn append_to_opt(
    buf: &mut [u8],
    len: usize,
    limit: usize,
    cookie: &ReplyCookie,
) -> Option<usize> {
    let new_len = len.checked_add(ReplyCookie::OPTION_LEN)?;
    if new_len > limit.min(buf.len()) || new_len > usize::from(u16::MAX) {
        return None;
    }
    let message = Message::parse(buf.get(..len)?).ok()?;
    let opt = message.opt()?;
    // Owner (the root, one byte), type, class, TTL: RDLENGTH follows.
    let rdlength_at = opt.record_offset() + 1 + 2 + 2 + 4;
    let rdlength = buf
        .get(rdlength_at..rdlength_at + 2)
        .and_then(|bytes| <[u8; 2]>::try_from(bytes).ok())
        .map(u16::from_be_bytes)?;
    if rdlength_at + 2 + usize::from(rdlength) != len {
        return None;
    }
    let new_rdlength = rdlength.checked_add(ReplyCookie::OPTION_LEN as u16)?;
    buf.get_mut(rdlength_at..rdlength_at + 2)?
        .copy_from_slice(&new_rdlength.to_be_bytes());
    buf.get_mut(len..new_len)?.copy_from_slice(&cookie.wire());
    Some(new_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Class, Flags, MessageBuilder, NameBuf, OptSpec, RecordType};

    fn query_with_options(options: &[EdnsOption<'_>]) -> Vec<u8> {
        let mut buf = [0u8; 512];
        let mut builder = MessageBuilder::new(&mut buf).unwrap();
        builder.set_id(7);
        builder.set_flags(Flags::default().with_recursion_desired(true));
        let name = NameBuf::from_presentation("example.com").unwrap();
        builder
            .question(&name.as_name(), RecordType::A, Class::IN)
            .unwrap();
        builder
            .opt(&OptSpec {
                udp_payload_size: 1232,
                extended_rcode: 0,
                version: 0,
                dnssec_ok: false,
                options,
            })
            .unwrap();
        let len = builder.finish();
        buf[..len].to_vec()
    }

    fn cookie_of(bytes: &[u8]) -> Result<Option<Cookie<'_>>, CookieError> {
        let message = Message::parse(bytes).unwrap();
        find_cookie(&message.opt().unwrap())
    }

    #[test]
    fn lengths_follow_rfc_7873() {
        for len in 0..=48usize {
            let data = vec![0xab; len];
            let parsed = Cookie::parse(&data);
            let valid = len == 8 || (16..=40).contains(&len);
            assert_eq!(parsed.is_ok(), valid, "length {len}");
            if let Ok(cookie) = parsed {
                assert_eq!(cookie.client(), &[0xab; 8]);
                assert_eq!(cookie.server().len(), len - 8);
            } else {
                assert_eq!(parsed, Err(CookieError::Length(len)));
            }
        }
    }

    #[test]
    fn finds_one_cookie_among_other_options() {
        let data = *b"\x24\x64\xc4\xab\xcf\x10\xc9\x57";
        let padding = [0u8; 4];
        let bytes = query_with_options(&[
            EdnsOption {
                code: crate::edns::PADDING,
                data: &padding,
            },
            EdnsOption {
                code: crate::edns::COOKIE,
                data: &data,
            },
        ]);
        let cookie = cookie_of(&bytes).unwrap().unwrap();
        assert_eq!(cookie.client(), &data);
        assert!(cookie.server().is_empty());
        assert_eq!(cookie_of(&query_with_options(&[])), Ok(None));
    }

    #[test]
    fn two_cookies_are_an_error() {
        let data = [1u8; 8];
        let option = EdnsOption {
            code: crate::edns::COOKIE,
            data: &data,
        };
        let bytes = query_with_options(&[option, option]);
        assert_eq!(cookie_of(&bytes), Err(CookieError::Duplicate));
        let short = [1u8; 9];
        let bytes = query_with_options(&[EdnsOption {
            code: crate::edns::COOKIE,
            data: &short,
        }]);
        assert_eq!(cookie_of(&bytes), Err(CookieError::Length(9)));
    }

    #[test]
    fn a_reply_cookie_is_appended_to_the_trailing_opt() {
        let reply_cookie = ReplyCookie::new([1; 8], [2; 16]);
        let padding = [0u8; 3];
        let original = query_with_options(&[EdnsOption {
            code: crate::edns::PADDING,
            data: &padding,
        }]);
        let mut buf = [0u8; 512];
        buf[..original.len()].copy_from_slice(&original);
        let len = append_to_opt(&mut buf, original.len(), 512, &reply_cookie).unwrap();
        assert_eq!(len, original.len() + ReplyCookie::OPTION_LEN);
        let message = Message::parse(&buf[..len]).unwrap();
        let options: Vec<_> = message.opt().unwrap().options().collect();
        assert_eq!(options.len(), 2);
        assert_eq!(options[1], reply_cookie.option());
        let cookie = cookie_of(&buf[..len]).unwrap().unwrap();
        assert_eq!(cookie.server(), &[2; 16]);

        // Cross-check: hickory reads the same COOKIE option.
        let hickory = hickory_proto::op::Message::from_vec(&buf[..len]).unwrap();
        let edns = hickory.edns.as_ref().unwrap();
        use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption as HOption};
        assert_eq!(
            edns.option(EdnsCode::Cookie),
            Some(&HOption::Unknown(10, reply_cookie.data().to_vec()))
        );

        // No room, or no OPT: left alone.
        let mut buf = [0u8; 512];
        buf[..original.len()].copy_from_slice(&original);
        assert_eq!(
            append_to_opt(&mut buf, original.len(), original.len() + 27, &reply_cookie),
            None
        );
        assert_eq!(&buf[..original.len()], &original[..]);
        let mut header_only = [0u8; 64];
        header_only[..12].copy_from_slice(&original[..12]);
        header_only[11] = 0;
        header_only[5] = 0;
        assert_eq!(append_to_opt(&mut header_only, 12, 64, &reply_cookie), None);
    }
}
