//! Session-ticket keys of the encrypted listeners (DoT, DoH, DoQ): the
//! read-only key set every core reads ([`TicketKeys`]), each core's
//! rustls ticketer over it ([`CoreTicketer`]), and core 0's rotation
//! ([`TicketRotation`]), which builds each next set and hands it to every
//! core over the core mesh, like a reload's configuration snapshot.
//!
//! A set holds three keys: the `current` one seals new tickets; the
//! `previous` one still opens the tickets sealed before the last rotation,
//! so a ticket is good for one to two rotation periods; the `next` one
//! opens tickets already, so a core that has taken the next set (and
//! seals with it) is understood by a core that has not yet: the cores
//! take a new set one after the other, never at the same instant. A
//! ticket names its key (16 random bytes), so opening one tries one key.
//!
//! Sealing is AES-256-GCM from ring with a random 96-bit nonce per
//! ticket and the key name as associated data: `name || nonce ||
//! ciphertext || tag`. A key seals at most the tickets of two periods, far
//! below the 2^32 random nonces one key may take.
//!
//! A reload keeps the set: outstanding tickets stay good. A reload that
//! finds a different certificate replaces all three keys, so every client
//! does a full handshake and sees the new certificate (docs/ARCHITECTURE.md
//! says why).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

/// Length of a key's name, at the head of each ticket.
const NAME_LEN: usize = 16;
/// Length of the AES-256-GCM tag.
const TAG_LEN: usize = 16;
/// The longest ticket opened: rustls's session state is a few hundred
/// bytes (no client certificates here); anything longer is not ours.
const MAX_TICKET: usize = 4096;
/// The longest ticket lifetime TLS 1.3 allows (RFC 8446 section 4.6.1).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// The system's random source failed: no key could be made.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no random bytes for a session-ticket key")]
pub(crate) struct NoRandom;

/// One sealing key and its name.
struct TicketKey {
    name: [u8; NAME_LEN],
    key: LessSafeKey,
}

impl TicketKey {
    fn generate(random: &SystemRandom) -> Result<Arc<Self>, NoRandom> {
        let mut name = [0u8; NAME_LEN];
        let mut secret = [0u8; 32];
        random.fill(&mut name).map_err(|_| NoRandom)?;
        random.fill(&mut secret).map_err(|_| NoRandom)?;
        let key = UnboundKey::new(&AES_256_GCM, &secret).map_err(|_| NoRandom)?;
        secret.fill(0);
        Ok(Arc::new(Self {
            name,
            key: LessSafeKey::new(key),
        }))
    }
}

/// One read-only set of ticket keys, shared by the cores.
pub(crate) struct TicketKeys {
    /// One more for every rotation or replacement: a core never takes a
    /// set older than the one it has (two hand-overs may cross).
    generation: u64,
    previous: Option<Arc<TicketKey>>,
    current: Arc<TicketKey>,
    next: Arc<TicketKey>,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("TicketKeys")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// The first set: generation 1, fresh keys, none previous.
    pub(crate) fn generate() -> Result<Arc<Self>, NoRandom> {
        Self::fresh(0)
    }

    fn fresh(after: u64) -> Result<Arc<Self>, NoRandom> {
        let random = SystemRandom::new();
        Ok(Arc::new(Self {
            generation: after + 1,
            previous: None,
            current: TicketKey::generate(&random)?,
            next: TicketKey::generate(&random)?,
        }))
    }

    /// The set after a rotation: the current key becomes the previous
    /// one (its tickets still open), the next one seals, and a new key is
    /// the next.
    pub(crate) fn rotated(&self) -> Result<Arc<Self>, NoRandom> {
        Ok(Arc::new(Self {
            generation: self.generation + 1,
            previous: Some(Arc::clone(&self.current)),
            current: Arc::clone(&self.next),
            next: TicketKey::generate(&SystemRandom::new())?,
        }))
    }

    /// A set that opens no ticket this one sealed (a new certificate).
    pub(crate) fn replaced(&self) -> Result<Arc<Self>, NoRandom> {
        Self::fresh(self.generation)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// `plain` sealed with the current key.
    fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).ok()?;
        let key = &self.current;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        ticket.extend_from_slice(&key.name);
        ticket.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&key.name),
                &mut body,
            )
            .ok()?;
        ticket.extend_from_slice(&body);
        Some(ticket)
    }

    /// The plaintext of a ticket sealed by a key of this set, or `None`
    /// for anything else (the bytes are the client's).
    fn open(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() > MAX_TICKET {
            return None;
        }
        let (name, rest) = ticket.split_first_chunk::<NAME_LEN>()?;
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        if sealed.len() < TAG_LEN {
            return None;
        }
        let key = [
            Some(&self.current),
            Some(&self.next),
            self.previous.as_ref(),
        ]
        .into_iter()
        .flatten()
        .find(|key| key.name == *name)?;
        let mut body = sealed.to_vec();
        let plain = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(&key.name),
                &mut body,
            )
            .ok()?;
        let len = plain.len();
        body.truncate(len);
        Some(body)
    }
}

/// One core's ticketer: rustls asks it to seal and open tickets with the
/// key set the core holds. Only its core replaces the set (when core 0
/// hands over a new one); the lock is taken once per handshake, never
/// contended.
#[derive(Debug)]
pub(crate) struct CoreTicketer {
    keys: RwLock<Arc<TicketKeys>>,
    /// The lifetime hint sent with each ticket, seconds: two rotation
    /// periods, the longest a ticket can stay good (a client does not
    /// offer it after that; one offered too late costs nothing but the
    /// full handshake it gets).
    lifetime: u32,
    /// Tickets opened: a DoQ handshake during which this rose resumed
    /// (quinn-proto does not say so itself).
    opened: AtomicU64,
}

impl CoreTicketer {
    pub(crate) fn new(keys: Arc<TicketKeys>, period: Duration) -> Self {
        let lifetime = period.saturating_mul(2).min(MAX_LIFETIME).as_secs();
        Self {
            keys: RwLock::new(keys),
            lifetime: u32::try_from(lifetime).unwrap_or(u32::MAX),
            opened: AtomicU64::new(0),
        }
    }

    fn keys(&self) -> Option<Arc<TicketKeys>> {
        self.keys.read().ok().map(|keys| Arc::clone(&keys))
    }

    /// Use `keys` from now on, unless the core already has a newer set.
    pub(crate) fn install(&self, keys: Arc<TicketKeys>) {
        if let Ok(mut current) = self.keys.write()
            && keys.generation > current.generation
        {
            *current = keys;
        }
    }

    /// The generation of the set in use.
    pub(crate) fn generation(&self) -> u64 {
        self.keys().map_or(0, |keys| keys.generation)
    }

    /// Tickets opened so far.
    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

impl rustls::server::ProducesTickets for CoreTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.keys()?.seal(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let plain = self.keys()?.open(cipher)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Some(plain)
    }
}

/// Core 0's side: the set in force, rotated every `period` and replaced
/// when the certificate changes, and handed to every core.
pub(crate) struct TicketRotation {
    keys: RefCell<Arc<TicketKeys>>,
    period: Duration,
}

impl TicketRotation {
    pub(crate) fn new(keys: Arc<TicketKeys>, period: Duration) -> Self {
        Self {
            keys: RefCell::new(keys),
            period,
        }
    }

    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// Make the next set (`replace`: one that opens no old ticket) and
    /// keep it as the set in force; the caller hands it to the cores.
    pub(crate) fn advance(&self, replace: bool) -> Result<Arc<TicketKeys>, NoRandom> {
        let next = {
            let keys = self.keys.borrow();
            if replace {
                keys.replaced()?
            } else {
                keys.rotated()?
            }
        };
        *self.keys.borrow_mut() = Arc::clone(&next);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets as _;

    #[test]
    fn a_ticket_opens_for_two_generations_then_not() {
        let first = TicketKeys::generate().unwrap();
        let ticket = first.seal(b"session state").unwrap();
        assert_eq!(first.open(&ticket).unwrap(), b"session state");
        let second = first.rotated().unwrap();
        assert_eq!(second.open(&ticket).unwrap(), b"session state");
        let third = second.rotated().unwrap();
        assert_eq!(third.open(&ticket), None);
        assert_eq!(third.generation(), 3);
    }

    #[test]
    fn a_core_one_rotation_behind_opens_the_tickets_of_one_ahead() {
        let behind = TicketKeys::generate().unwrap();
        let ahead = behind.rotated().unwrap();
        let ticket = ahead.seal(b"from the core ahead").unwrap();
        assert_eq!(behind.open(&ticket).unwrap(), b"from the core ahead");
        let old = behind.seal(b"from the core behind").unwrap();
        assert_eq!(ahead.open(&old).unwrap(), b"from the core behind");
    }

    #[test]
    fn a_replaced_set_opens_nothing_older() {
        let first = TicketKeys::generate().unwrap();
        let ticket = first.seal(b"x").unwrap();
        let replaced = first.replaced().unwrap();
        assert_eq!(replaced.generation(), 2);
        assert_eq!(replaced.open(&ticket), None);
        assert_eq!(replaced.open(&replaced.seal(b"y").unwrap()).unwrap(), b"y");
    }

    #[test]
    fn tampered_short_long_and_foreign_tickets_are_refused() {
        let keys = TicketKeys::generate().unwrap();
        let ticket = keys.seal(b"state").unwrap();
        for len in 0..ticket.len() {
            assert_eq!(keys.open(&ticket[..len]), None, "{len}");
        }
        for at in 0..ticket.len() {
            let mut bad = ticket.clone();
            bad[at] ^= 1;
            assert_eq!(keys.open(&bad), None, "{at}");
        }
        assert_eq!(keys.open(&vec![0u8; MAX_TICKET + 1]), None);
        let other = TicketKeys::generate().unwrap();
        assert_eq!(other.open(&ticket), None);
        // Two tickets of one plaintext differ (a nonce each).
        assert_ne!(keys.seal(b"state").unwrap(), ticket);
    }

    #[test]
    fn a_core_takes_only_newer_sets_and_counts_what_it_opens() {
        let first = TicketKeys::generate().unwrap();
        let core = CoreTicketer::new(Arc::clone(&first), Duration::from_secs(3600));
        assert!(core.enabled());
        assert_eq!(core.lifetime(), 7200);
        let ticket = core.encrypt(b"a").unwrap();
        let second = first.rotated().unwrap();
        core.install(Arc::clone(&second));
        assert_eq!(core.generation(), 2);
        core.install(first);
        assert_eq!(core.generation(), 2, "an older set is not taken");
        assert_eq!(core.decrypt(&ticket).unwrap(), b"a");
        assert_eq!(core.decrypt(b"garbage"), None);
        assert_eq!(core.opened(), 1);
        let week = CoreTicketer::new(second, Duration::from_secs(30 * 24 * 3600));
        assert_eq!(u64::from(week.lifetime()), MAX_LIFETIME.as_secs());
    }

    #[test]
    fn the_rotation_keeps_what_it_hands_out() {
        let rotation = TicketRotation::new(TicketKeys::generate().unwrap(), Duration::from_secs(1));
        let rotated = rotation.advance(false).unwrap();
        assert_eq!(rotated.generation(), 2);
        let replaced = rotation.advance(true).unwrap();
        assert_eq!(replaced.generation(), 3);
        assert!(replaced.previous.is_none());
        assert_eq!(rotation.period(), Duration::from_secs(1));
    }
}
