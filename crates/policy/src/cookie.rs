//! [`ServerCookies`]: the server cookies heimdall hands its clients (RFC
//! 7873), in the interoperable format of RFC 9018, and their check.
//!
//! A server cookie is 16 bytes: Version (1), three Reserved bytes (0 in
//! the cookies we make), a Timestamp (Unix seconds, serial arithmetic) and
//! an 8-byte Hash: SipHash-2-4, keyed with the server secret, of Client
//! Cookie | Version | Reserved | Timestamp | Client-IP (4 or 16 bytes).
//! [`rfc9018_cookie`] and [`rfc9018_hash_matches`] are that construction
//! with a given secret (RFC 9018 Appendix A is their test).
//!
//! The secret rotates without any message between cores: the secret of
//! rotation period `n = unix_time / rotation` is a keyed hash
//! (SipHash-2-4-128) of `n` under the master secret, which every core
//! holds in its read-only snapshot. A cookie is checked with the secret of
//! the period its own (hashed, so unforgeable) timestamp falls in, and
//! that period must be the current one or the one before (or the next,
//! for a cookie up to 5 minutes ahead from a node of a cluster whose clock
//! is a little ahead). So one hash checks a cookie, and a secret stops
//! being accepted one whole period after it stopped being used.
//!
//! Nothing here reads a clock: the Unix time is a parameter.

use core::fmt;
use std::net::IpAddr;

use heimdall_wire::cookie::{CLIENT_COOKIE_LEN, SERVER_COOKIE_LEN};
use siphasher::sip::SipHasher24;
use siphasher::sip128::SipHasher24 as SipHasher24x128;

use crate::error::PolicyError;

/// Length of a server secret (a SipHash key), master or per period.
pub const SECRET_LEN: usize = 16;
/// The server cookie version of RFC 9018.
pub const COOKIE_VERSION: u8 = 1;
/// A cookie older than this is refused (RFC 9018 section 4.3: one hour).
pub const MAX_AGE_SECS: i64 = 3600;
/// A cookie further ahead than this is refused (RFC 9018 section 4.3: five
/// minutes, for the clocks of an anycast set).
pub const MAX_AHEAD_SECS: i64 = 300;

/// Separates the period-secret derivation from any other use of the
/// master key.
const DERIVE_LABEL: &[u8; 16] = b"heimdall-cookie1";

/// The 16-byte server cookie of RFC 9018 for `client`'s cookie and
/// address at `timestamp`, made with `secret`.
pub fn rfc9018_cookie(
    secret: &[u8; SECRET_LEN],
    client: &[u8; CLIENT_COOKIE_LEN],
    client_ip: IpAddr,
    timestamp: u32,
) -> [u8; SERVER_COOKIE_LEN] {
    let mut cookie = [0u8; SERVER_COOKIE_LEN];
    let (head, hash) = cookie.split_at_mut(8);
    head.copy_from_slice(&header(timestamp));
    hash.copy_from_slice(&cookie_hash(secret, client, &header(timestamp), client_ip));
    cookie
}

/// Whether the Hash of the 16-byte `server` cookie is right for `client`'s
/// cookie and address under `secret`, taking Version, Reserved and
/// Timestamp as sent (RFC 9018 section 4.3; the time window is
/// [`ServerCookies::verify`]'s).
pub fn rfc9018_hash_matches(
    secret: &[u8; SECRET_LEN],
    client: &[u8; CLIENT_COOKIE_LEN],
    client_ip: IpAddr,
    server: &[u8; SERVER_COOKIE_LEN],
) -> bool {
    let Some((head, hash)) = server.split_first_chunk::<8>() else {
        return false;
    };
    let expected = cookie_hash(secret, client, head, client_ip);
    // No early exit: how far a forged hash matched must not show in time.
    expected
        .iter()
        .zip(hash)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

/// Version, Reserved (0) and Timestamp.
fn header(timestamp: u32) -> [u8; 8] {
    let [t0, t1, t2, t3] = timestamp.to_be_bytes();
    [COOKIE_VERSION, 0, 0, 0, t0, t1, t2, t3]
}

fn cookie_hash(
    secret: &[u8; SECRET_LEN],
    client: &[u8; CLIENT_COOKIE_LEN],
    head: &[u8; 8],
    client_ip: IpAddr,
) -> [u8; 8] {
    // Client cookie, header, then the address: at most 8 + 8 + 16 bytes,
    // on the stack.
    let mut input = [0u8; 32];
    let (client_part, rest) = input.split_at_mut(CLIENT_COOKIE_LEN);
    client_part.copy_from_slice(client);
    let (head_part, ip_part) = rest.split_at_mut(8);
    head_part.copy_from_slice(head);
    let ip_len = match client_ip.to_canonical() {
        IpAddr::V4(v4) => {
            let octets = v4.octets();
            if let Some(slot) = ip_part.get_mut(..4) {
                slot.copy_from_slice(&octets);
            }
            4
        }
        IpAddr::V6(v6) => {
            ip_part.copy_from_slice(&v6.octets());
            16
        }
    };
    let used = input.get(..16 + ip_len).unwrap_or(&input);
    // The reference SipHash writes its 64-bit result little-endian.
    SipHasher24::new_with_key(secret).hash(used).to_le_bytes()
}

/// What a client's COOKIE option proves (RFC 7873 section 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieVerdict {
    /// Only a client cookie: a first contact, or a client that lost ours.
    ClientOnly,
    /// A server cookie we made for this client and address, in time.
    Valid,
    /// A server cookie that is not ours, expired, from the future, or for
    /// another client cookie or address.
    Invalid,
}

/// The server cookies of one server: the master secret and the rotation
/// period. Immutable, cheap to clone, shared by every core through the
/// read-only snapshot.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerCookies {
    master: [u8; SECRET_LEN],
    rotation_secs: u64,
}

impl fmt::Debug for ServerCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret (the snapshot may be logged).
        f.debug_struct("ServerCookies")
            .field("rotation_secs", &self.rotation_secs)
            .finish_non_exhaustive()
    }
}

impl ServerCookies {
    /// Cookies from `master`, with a new secret every `rotation_secs`
    /// seconds (at least 1).
    pub fn new(master: [u8; SECRET_LEN], rotation_secs: u64) -> Result<Self, PolicyError> {
        if rotation_secs == 0 {
            return Err(PolicyError::BadCookies(
                "the rotation period must be positive",
            ));
        }
        Ok(Self {
            master,
            rotation_secs,
        })
    }

    /// The rotation period, in seconds.
    pub fn rotation_secs(&self) -> u64 {
        self.rotation_secs
    }

    /// The secret of rotation period `period`.
    pub fn period_secret(&self, period: u64) -> [u8; SECRET_LEN] {
        let mut input = [0u8; 24];
        let (label, number) = input.split_at_mut(DERIVE_LABEL.len());
        label.copy_from_slice(DERIVE_LABEL);
        number.copy_from_slice(&period.to_be_bytes());
        SipHasher24x128::new_with_key(&self.master)
            .hash(&input)
            .as_bytes()
    }

    /// A fresh server cookie for `client`'s cookie and address at Unix
    /// time `now_unix` (seconds), under the current period's secret.
    pub fn make(
        &self,
        client: &[u8; CLIENT_COOKIE_LEN],
        client_ip: IpAddr,
        now_unix: u64,
    ) -> [u8; SERVER_COOKIE_LEN] {
        self.make_with(&mut SecretCache::default(), client, client_ip, now_unix)
    }

    /// [`ServerCookies::make`], with the period secret from `secrets`.
    pub fn make_with(
        &self,
        secrets: &mut SecretCache,
        client: &[u8; CLIENT_COOKIE_LEN],
        client_ip: IpAddr,
        now_unix: u64,
    ) -> [u8; SERVER_COOKIE_LEN] {
        let secret = secrets.secret(self, now_unix / self.rotation_secs);
        // Serial arithmetic (RFC 1982): the low 32 bits are the timestamp.
        rfc9018_cookie(&secret, client, client_ip, now_unix as u32)
    }

    /// Check the `server` cookie a client sent with its `client` cookie
    /// from `client_ip`, at Unix time `now_unix`: version 1, 16 bytes, a
    /// timestamp at most [`MAX_AGE_SECS`] old and [`MAX_AHEAD_SECS`] ahead,
    /// made in the current rotation period or the one before (the next
    /// one only for a cookie from the future), and the hash right.
    pub fn verify(
        &self,
        client: &[u8; CLIENT_COOKIE_LEN],
        server: &[u8],
        client_ip: IpAddr,
        now_unix: u64,
    ) -> bool {
        self.verify_with(
            &mut SecretCache::default(),
            client,
            server,
            client_ip,
            now_unix,
        )
    }

    /// [`ServerCookies::verify`], with the period secret from `secrets`.
    pub fn verify_with(
        &self,
        secrets: &mut SecretCache,
        client: &[u8; CLIENT_COOKIE_LEN],
        server: &[u8],
        client_ip: IpAddr,
        now_unix: u64,
    ) -> bool {
        let Ok(server) = <&[u8; SERVER_COOKIE_LEN]>::try_from(server) else {
            return false;
        };
        let [version, _, _, _, t0, t1, t2, t3, ..] = *server;
        if version != COOKIE_VERSION {
            return false;
        }
        let timestamp = u32::from_be_bytes([t0, t1, t2, t3]);
        // Serial arithmetic: how far the timestamp lies behind now.
        let age = i64::from((now_unix as u32).wrapping_sub(timestamp) as i32);
        if !(-MAX_AHEAD_SECS..=MAX_AGE_SECS).contains(&age) {
            return false;
        }
        let Some(made_at) = now_unix.checked_add_signed(-age) else {
            return false;
        };
        let period = made_at / self.rotation_secs;
        let current = now_unix / self.rotation_secs;
        if period + 1 < current || period > current + 1 {
            return false;
        }
        rfc9018_hash_matches(&secrets.secret(self, period), client, client_ip, server)
    }

    /// The verdict on a client's COOKIE option: its client cookie and its
    /// server cookie (empty when it sent none); period secrets from
    /// `secrets`.
    pub fn judge(
        &self,
        secrets: &mut SecretCache,
        client: &[u8; CLIENT_COOKIE_LEN],
        server: &[u8],
        client_ip: IpAddr,
        now_unix: u64,
    ) -> CookieVerdict {
        if server.is_empty() {
            CookieVerdict::ClientOnly
        } else if self.verify_with(secrets, client, server, client_ip, now_unix) {
            CookieVerdict::Valid
        } else {
            CookieVerdict::Invalid
        }
    }
}

/// The last two period secrets one core derived, with the master each
/// came from: a cookie is then made, or checked, with one SipHash instead
/// of a derivation and a SipHash (halving the cost per query, which runs
/// on the hit path). Keyed by the master too, so a cache that outlives a
/// reload which changed the secret can never hand out a stale one.
#[derive(Clone, Default)]
pub struct SecretCache {
    slots: [Option<CachedSecret>; 2],
    /// The slot the next derivation replaces.
    next: usize,
}

#[derive(Clone, Copy)]
struct CachedSecret {
    master: [u8; SECRET_LEN],
    period: u64,
    secret: [u8; SECRET_LEN],
}

impl fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let periods: Vec<u64> = self.slots.iter().flatten().map(|s| s.period).collect();
        f.debug_struct("SecretCache")
            .field("periods", &periods)
            .finish_non_exhaustive()
    }
}

impl SecretCache {
    /// The secret of `period` under `cookies`'s master, derived once.
    fn secret(&mut self, cookies: &ServerCookies, period: u64) -> [u8; SECRET_LEN] {
        let hit = self
            .slots
            .iter()
            .flatten()
            .find(|slot| slot.period == period && slot.master == cookies.master);
        if let Some(slot) = hit {
            return slot.secret;
        }
        let secret = cookies.period_secret(period);
        if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = Some(CachedSecret {
                master: cookies.master,
                period,
                secret,
            });
        }
        self.next = (self.next + 1) % self.slots.len();
        secret
    }
}

/// Read a secret written as 32 hex digits.
pub fn parse_secret(hex: &str) -> Option<[u8; SECRET_LEN]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * SECRET_LEN {
        return None;
    }
    let digit = |byte: u8| {
        char::from(byte)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut secret = [0u8; SECRET_LEN];
    for (byte, pair) in secret.iter_mut().zip(digits.chunks_exact(2)) {
        let [high, low] = pair else { return None };
        *byte = (digit(*high)? << 4) | digit(*low)?;
    }
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex<const N: usize>(text: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

    /// RFC 9018 Appendix A.1: learning a new server cookie.
    #[test]
    fn rfc9018_a1_new_cookie() {
        let cookie = rfc9018_cookie(
            &hex(SECRET),
            &hex("2464c4abcf10c957"),
            "198.51.100.100".parse().unwrap(),
            1_559_731_985,
        );
        assert_eq!(cookie, hex::<16>("010000005cf79f111f8130c3eee29480"));
    }

    /// A.2: the same client, 40 minutes later, gets a renewed cookie; the
    /// old one still verifies then.
    #[test]
    fn rfc9018_a2_renewed_cookie() {
        let secret = hex(SECRET);
        let client = hex("2464c4abcf10c957");
        let ip = "198.51.100.100".parse().unwrap();
        let old = hex::<16>("010000005cf79f111f8130c3eee29480");
        assert!(rfc9018_hash_matches(&secret, &client, ip, &old));
        let cookie = rfc9018_cookie(&secret, &client, ip, 1_559_734_385);
        assert_eq!(cookie, hex::<16>("010000005cf7a871d4a564a1442aca77"));
    }

    /// A.3: another client's cookie with Reserved bytes set still
    /// verifies (they are hashed as sent); the fresh one has them zero.
    #[test]
    fn rfc9018_a3_reserved_bytes_are_hashed() {
        let secret = hex(SECRET);
        let client = hex("fc93fc62807ddb86");
        let ip = "203.0.113.203".parse().unwrap();
        let sent = hex::<16>("01abcdef5cf78f71a314227b6679ebf5");
        assert!(rfc9018_hash_matches(&secret, &client, ip, &sent));
        let cookie = rfc9018_cookie(&secret, &client, ip, 1_559_734_700);
        assert_eq!(cookie, hex::<16>("010000005cf7a9acf73a7810aca2381e"));
    }

    /// A.4: IPv6, a cookie made with the previous secret verifies with it;
    /// the fresh one is made with the new secret.
    #[test]
    fn rfc9018_a4_ipv6_and_rolled_secret() {
        let old_secret = hex("dd3bdf9344b678b185a6f5cb60fca715");
        let new_secret = hex("445536bcd2513298075a5d379663c962");
        let client = hex("22681ab97d52c298");
        let ip = "2001:db8:220:1:59de:d0f4:8769:82b8".parse().unwrap();
        let sent = hex::<16>("010000005cf7c57926556bd0934c72f8");
        assert!(rfc9018_hash_matches(&old_secret, &client, ip, &sent));
        assert!(!rfc9018_hash_matches(&new_secret, &client, ip, &sent));
        let cookie = rfc9018_cookie(&new_secret, &client, ip, 1_559_741_961);
        assert_eq!(cookie, hex::<16>("010000005cf7c609a6bb79d16625507a"));
    }

    const DAY: u64 = 86_400;
    const CLIENT: [u8; 8] = *b"clientck";

    fn cookies() -> ServerCookies {
        ServerCookies::new(hex(SECRET), DAY).unwrap()
    }

    fn ip() -> IpAddr {
        "192.0.2.7".parse().unwrap()
    }

    #[test]
    fn a_fresh_cookie_verifies_until_an_hour_old() {
        let cookies = cookies();
        let now = 1_700_000_000;
        let cookie = cookies.make(&CLIENT, ip(), now);
        assert_eq!(cookie[..4], [1, 0, 0, 0]);
        assert!(cookies.verify(&CLIENT, &cookie, ip(), now));
        assert!(cookies.verify(&CLIENT, &cookie, ip(), now + 3600));
        assert!(!cookies.verify(&CLIENT, &cookie, ip(), now + 3601));
        // Seen from a clock up to 5 minutes behind: still good.
        assert!(cookies.verify(&CLIENT, &cookie, ip(), now - 300));
        assert!(!cookies.verify(&CLIENT, &cookie, ip(), now - 301));
        assert_eq!(
            cookies.judge(&mut SecretCache::default(), &CLIENT, &cookie, ip(), now),
            CookieVerdict::Valid
        );
        assert_eq!(
            cookies.judge(&mut SecretCache::default(), &CLIENT, &[], ip(), now),
            CookieVerdict::ClientOnly
        );
    }

    #[test]
    fn the_previous_period_verifies_and_older_ones_do_not() {
        // An hour-long rotation: a cookie made just before a boundary is
        // checked just after it with the previous period's secret.
        let cookies = ServerCookies::new(hex(SECRET), 3600).unwrap();
        let boundary = 1_700_002_800; // a multiple of 3600
        assert_eq!(boundary % 3600, 0);
        let cookie = cookies.make(&CLIENT, ip(), boundary - 10);
        assert!(cookies.verify(&CLIENT, &cookie, ip(), boundary + 10));
        // Two periods on (and older than an hour anyway): refused.
        assert!(!cookies.verify(&CLIENT, &cookie, ip(), boundary + 3600));
        // With a 10-minute rotation, a 25-minute-old cookie is two periods
        // old: refused though younger than an hour.
        let short = ServerCookies::new(hex(SECRET), 600).unwrap();
        let made = 1_700_000_400;
        let cookie = short.make(&CLIENT, ip(), made);
        assert!(short.verify(&CLIENT, &cookie, ip(), made + 600));
        assert!(!short.verify(&CLIENT, &cookie, ip(), made + 1500));
        // The derived secrets differ per period and from the master.
        assert_ne!(short.period_secret(1), short.period_secret(2));
        assert_ne!(short.period_secret(1), hex::<16>(SECRET));
    }

    #[test]
    fn a_cookie_is_bound_to_its_client_cookie_address_and_version() {
        let cookies = cookies();
        let now = 1_700_000_000;
        let cookie = cookies.make(&CLIENT, ip(), now);
        assert!(!cookies.verify(b"otherclt", &cookie, ip(), now));
        assert!(!cookies.verify(&CLIENT, &cookie, "192.0.2.8".parse().unwrap(), now));
        // An IPv4-mapped IPv6 address is the same client.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(cookies.verify(&CLIENT, &cookie, mapped, now));
        let mut version_2 = cookie;
        version_2[0] = 2;
        assert!(!cookies.verify(&CLIENT, &version_2, ip(), now));
        let mut flipped = cookie;
        flipped[15] ^= 1;
        assert_eq!(
            cookies.judge(&mut SecretCache::default(), &CLIENT, &flipped, ip(), now),
            CookieVerdict::Invalid
        );
        // A cookie of another length, or another master, is not ours.
        assert!(!cookies.verify(&CLIENT, &cookie[..8], ip(), now));
        let other = ServerCookies::new([7; 16], DAY).unwrap();
        assert!(!other.verify(&CLIENT, &cookie, ip(), now));
        assert!(ServerCookies::new([7; 16], 0).is_err());
    }

    #[test]
    fn the_secret_cache_gives_the_derived_secrets_and_follows_the_master() {
        let short = ServerCookies::new(hex(SECRET), 600).unwrap();
        let mut cache = SecretCache::default();
        let made = 1_700_000_400;
        for now in [made, made + 1, made + 600, made + 601, made + 1200] {
            let cached = short.make_with(&mut cache, &CLIENT, ip(), now);
            assert_eq!(cached, short.make(&CLIENT, ip(), now), "at {now}");
            assert!(short.verify_with(&mut cache, &CLIENT, &cached, ip(), now));
        }
        // A cookie of the previous period, checked with a warm cache.
        let old = short.make(&CLIENT, ip(), made + 599);
        assert!(short.verify_with(&mut cache, &CLIENT, &old, ip(), made + 650));
        // Another master (a reload) never gets the first one's secret.
        let other = ServerCookies::new([9; 16], 600).unwrap();
        let cookie = short.make_with(&mut cache, &CLIENT, ip(), made);
        assert!(!other.verify_with(&mut cache, &CLIENT, &cookie, ip(), made));
        assert_eq!(
            other.make_with(&mut cache, &CLIENT, ip(), made),
            other.make(&CLIENT, ip(), made)
        );
    }

    #[test]
    fn secrets_parse_from_hex() {
        assert_eq!(parse_secret(SECRET), Some(hex(SECRET)));
        assert_eq!(
            parse_secret("E5E973E5A6B2A43F48E7DC849E37BFCF"),
            Some(hex(SECRET))
        );
        assert_eq!(parse_secret("e5e9"), None);
        assert_eq!(parse_secret("g5e973e5a6b2a43f48e7dc849e37bfcf"), None);
        assert_eq!(parse_secret("+5e973e5a6b2a43f48e7dc849e37bfcf"), None);
        assert_eq!(parse_secret("é5e973e5a6b2a43f48e7dc849e37bfc"), None);
    }
}
