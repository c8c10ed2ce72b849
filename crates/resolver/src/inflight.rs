//! The in-flight table: every query outstanding upstream, found by its
//! key (to coalesce clients) and by its current upstream ID (to match a
//! reply), with the deadlines of its attempts and serve-stale client
//! timers.
//!
//! Every attempt of a query stays live until the whole query ends: its ID
//! stays in the ID index and a valid reply to it is still accepted (a
//! late reply), so an upstream slower than one attempt's timeout but
//! faster than all of them still answers. A query keeps at most
//! `attempts` of them (its current one and the earlier ones); when it
//! ends, each attempt that was handed to the runtime is retired
//! ([`InFlightTable::pop_retired`]) exactly once, so the runtime can close
//! the attempt's socket.
//!
//! A query lives in a [`Slot`]; slots are reused through a free list, so
//! the table grows to the largest number of queries outstanding at once
//! (bounded by `max_inflight`) and then stops allocating. When the last
//! query of a burst ends, a table grown past [`KEEP_SLOTS`] gives the
//! rest back: a slot is about 600 bytes (the key's name is inline), and a
//! flood of misses left up to 0.8 MB of them on a core for good. Timers are not
//! removed when their query moves on: each names its attempt by a
//! generation (new for every send) or its query by a serial (new for every
//! query), and a timer whose name no longer matches is skipped.
//!
//! The table also keeps the count of waiting clients across all queries,
//! so every change to a query's waiters goes through it.

use core::cmp::Reverse;
use core::net::SocketAddr;
use std::collections::{BinaryHeap, VecDeque};

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use heimdall_cache::{ClientEdns, Timestamp};
use heimdall_config::UpstreamTransport;
use heimdall_wire::{Flags, QueryKey, WireNameBuf};
use rand::Rng;
use smallvec::SmallVec;

use crate::io::{AttemptId, ClientId};
use crate::upstream_cookie::ClientCookie;

/// The upstream index of an in-flight query whose upstream was removed by
/// a reload: no reply matches it, so its attempt times out and the next
/// one picks a current upstream.
pub(crate) const GONE: usize = usize::MAX;

/// Slots an empty table keeps; a burst's beyond these are freed once
/// the table is empty again (a query or two in flight at a time, the
/// common case, never frees or grows anything).
const KEEP_SLOTS: usize = 256;

/// Most upstream IDs live at once (every live attempt of every query):
/// 90 % of the 16-bit space, so drawing a free one stays quick.
const MAX_LIVE_IDS: usize = 58_982;

/// Names one entry of the in-flight table. A handle outlives its query:
/// after the query completes, the slot may hold another one, so timers
/// and queued sends carry a generation or serial alongside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Slot(u32);

/// A client waiting for the answer of an outstanding query: what its
/// reply must echo.
#[derive(Debug, Clone)]
pub(crate) struct Waiter {
    pub(crate) client: ClientId,
    pub(crate) id: u16,
    pub(crate) flags: Flags,
    /// The client's qname in its own letter case.
    pub(crate) qname: WireNameBuf,
    pub(crate) edns: Option<ClientEdns>,
    /// When the query was admitted: its answer's wait is counted from here.
    pub(crate) received_at: Timestamp,
}

/// Where a query stands with respect to serve-stale (RFC 8767). Apart
/// from it, a query is always doing the same thing: waiting for the reply
/// to its current [`Attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// No stale entry is known for the key: the waiters get the upstream's
    /// answer or its failure.
    Forwarding,
    /// A stale entry exists and the client timer is armed: when it runs
    /// out before the upstream answers, the waiters are answered stale.
    StaleArmed,
    /// Stale was served (timer ran out, or a client was answered stale at
    /// once): the query has no waiters left, later queries for the key
    /// are answered stale at once, and the upstream's answer only
    /// refreshes the cache.
    StaleServed,
}

/// One upstream attempt of a query.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt {
    /// Index of the upstream asked ([`GONE`] once a reload removed it).
    pub(crate) upstream: usize,
    /// The message ID sent; a reply must carry it.
    pub(crate) id: u16,
    /// The transport it went over; a reply must come back over it.
    pub(crate) transport: UpstreamTransport,
    pub(crate) sent_at: Timestamp,
    /// Unique per send: names this attempt for its deadline, its queued
    /// transmit and the runtime ([`AttemptId`]).
    pub(crate) generation: u32,
    /// Whether the runtime was handed it in a `Transmit` (only those are
    /// retired to it).
    pub(crate) sent: bool,
    /// DNS 0x20: the seed of the letter case its question was sent in
    /// (module `case`); `None` when sent in lower case.
    pub(crate) case_seed: Option<u64>,
    /// The client cookie it was sent with (module `upstream_cookie`);
    /// `None` when cookies were off. A reply must echo this one, even if
    /// the upstream's cookie was renewed meanwhile.
    pub(crate) cookie: Option<ClientCookie>,
    /// What was refused for it that a genuine but odd upstream would
    /// send: judged only when it times out (see [`Marks`]).
    pub(crate) marks: Marks,
}

/// Replies refused for one attempt that matched in everything but one
/// thing a genuine upstream may get wrong. They only mark the attempt: a
/// forger can send such replies, but it cannot stop the genuine one, so
/// only an attempt that then *times out* counts against the upstream (a
/// strike toward the 0x20 or cookie fallback).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    /// A reply echoed the question in another letter case (0x20).
    pub(crate) wrong_case: bool,
    /// A reply came without a cookie from an upstream known to send them.
    pub(crate) cookieless: bool,
    /// Replies refused on its own socket for anything else (another ID,
    /// junk): more than a stray or two means the socket was flooded, and
    /// a flood can fill its receive buffer so the genuine reply is lost.
    /// Such a timeout is then no strike (see [`Marks::strikes`]).
    pub(crate) foreign_replies: u16,
}

/// Replies refused on an attempt's socket (not for its case or cookie)
/// beyond which its timeout is put down to a flood rather than to the
/// upstream: a stray late reply to the socket's previous attempt is
/// normal, a burst is not.
pub(crate) const FLOODED_SOCKET_REPLIES: u16 = 2;

impl Marks {
    /// Whether the attempt, having timed out, is evidence against its
    /// upstream: it had a wrong-case or cookie-less reply (which a genuine
    /// upstream that breaks the case or stopped sending cookies sends),
    /// and its socket was not flooded (a flood may have cost the genuine
    /// reply, and forged replies are what put the marks there).
    pub(crate) fn strikes(&self) -> bool {
        (self.wrong_case || self.cookieless) && self.foreign_replies <= FLOODED_SOCKET_REPLIES
    }
}

impl Attempt {
    /// The name the runtime knows this attempt by.
    pub(crate) fn id(&self) -> AttemptId {
        AttemptId(self.generation)
    }
}

/// One query outstanding upstream.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) key: QueryKey,
    /// Clients waiting; none for a prefetch, or once stale was served.
    /// Private: the table counts them.
    waiters: SmallVec<[Waiter; 1]>,
    /// Unique among the queries of this resolver: names the query for its
    /// stale timer (the generation changes with every attempt).
    pub(crate) serial: u32,
    /// When the first attempt was queued: the stale client timer runs
    /// from here.
    pub(crate) started_at: Timestamp,
    pub(crate) phase: Phase,
    /// Whether the answer may be cached: a reload clears it for a key the
    /// new policy answers itself (blocked or local). Not part of
    /// [`Phase`]: it can change in any phase and changes none.
    pub(crate) store: bool,
    /// The current attempt (the newest).
    pub(crate) attempt: Attempt,
    /// Earlier attempts, oldest first, still accepting late replies.
    pub(crate) earlier: SmallVec<[Attempt; 2]>,
    /// Upstreams tried so far (bit i = upstream i).
    pub(crate) tried: u64,
    /// Upstreams that answered this query with an upstream error
    /// (SERVFAIL, REFUSED, NOTIMP, FORMERR, a second BADCOOKIE): never
    /// asked again for it (bit i = upstream i).
    pub(crate) failed: u64,
    /// Attempts started (a TCP retry after TC finishes its attempt rather
    /// than starting one).
    pub(crate) attempts: u32,
    /// The last attempt was answered with an upstream error (SERVFAIL,
    /// REFUSED, NOTIMP, FORMERR) while earlier attempts were still live:
    /// the query waits for them until that attempt's deadline, then fails
    /// with EDE 23 rather than 22.
    pub(crate) upstream_error: bool,
    /// It was already sent again after a BADCOOKIE (RFC 7873 section
    /// 5.3): a second BADCOOKIE is an upstream error.
    pub(crate) badcookie_retried: bool,
    /// DNSSEC: the upstream's reply, kept while validation waits for a
    /// DNSKEY or DS sub-query (the query has no live attempt then).
    pub(crate) pending: Option<Box<[u8]>>,
    /// DNSSEC: for a sub-query, the queries (slot and serial) whose
    /// validation waits for it.
    pub(crate) dependents: SmallVec<[(Slot, u32); 1]>,
    /// DNSSEC: sub-queries this query has started or joined.
    pub(crate) subqueries: u8,
    /// The upstream whose answer is being judged (kept across a wait for
    /// a sub-query), for the warning that it strips DNSSEC records.
    pub(crate) answered_by: Option<SocketAddr>,
}

impl InFlight {
    /// Whether any client waits for this query.
    pub(crate) fn has_waiters(&self) -> bool {
        !self.waiters.is_empty()
    }

    /// The live attempt sent with `id`, and whether it is the current one.
    pub(crate) fn attempt_with_id(&self, id: u16) -> Option<(Attempt, bool)> {
        if self.attempt.generation != 0 && self.attempt.id == id {
            return Some((self.attempt, true));
        }
        self.earlier
            .iter()
            .find(|attempt| attempt.id == id)
            .map(|attempt| (*attempt, false))
    }
}

/// What became of a client joining an outstanding query.
// Only ever a return value, moved once: `Gone` hands the waiter back
// rather than boxing it (the query path does not allocate for it).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Join<'a> {
    /// It waits with the others; the query is returned for phase changes.
    Joined(&'a mut InFlight),
    /// The query already has `max_waiters` clients.
    Full,
    /// No query in that slot: the waiter is handed back.
    Gone(Waiter),
}

/// The in-flight table of one resolver.
#[derive(Debug, Default)]
pub(crate) struct InFlightTable {
    slots: Vec<Option<InFlight>>,
    free: Vec<u32>,
    /// The slot of each query by its key's hash; the key itself is the
    /// slot's (no second copy of a 260-byte key per query).
    by_key: HashTable<Slot>,
    hasher: DefaultHashBuilder,
    by_id: HashMap<u16, Slot>,
    /// The query of every live attempt by generation: a UDP reply names
    /// the attempt whose socket received it, so a reply refused there is
    /// counted against that attempt (`note_foreign_reply`).
    by_generation: HashMap<u32, Slot>,
    /// Attempt deadlines: (when, slot, generation).
    deadlines: BinaryHeap<Reverse<(Timestamp, Slot, u32)>>,
    /// Serve-stale client timers: (when, slot, serial).
    stale_timers: BinaryHeap<Reverse<(Timestamp, Slot, u32)>>,
    next_generation: u32,
    next_serial: u32,
    total_waiters: usize,
    /// Attempts handed to the runtime that can no longer be answered.
    retired: VecDeque<AttemptId>,
}

impl InFlightTable {
    /// Queries outstanding.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Clients waiting, across all queries.
    pub(crate) fn total_waiters(&self) -> usize {
        self.total_waiters
    }

    /// The query in `slot`.
    pub(crate) fn get(&self, slot: Slot) -> Option<&InFlight> {
        self.slots.get(slot.0 as usize)?.as_ref()
    }

    /// The query in `slot`, to change.
    pub(crate) fn get_mut(&mut self, slot: Slot) -> Option<&mut InFlight> {
        self.slots.get_mut(slot.0 as usize)?.as_mut()
    }

    fn hash(hasher: &DefaultHashBuilder, key: &QueryKey) -> u64 {
        use core::hash::BuildHasher as _;
        hasher.hash_one(key)
    }

    /// The key of the query in `slot` (for the key index).
    fn key_in(slots: &[Option<InFlight>], slot: Slot) -> Option<&QueryKey> {
        slots
            .get(slot.0 as usize)?
            .as_ref()
            .map(|inflight| &inflight.key)
    }

    /// The slot of the query for `key`.
    pub(crate) fn slot_of(&self, key: &QueryKey) -> Option<Slot> {
        let hash = Self::hash(&self.hasher, key);
        self.by_key
            .find(hash, |&slot| Self::key_in(&self.slots, slot) == Some(key))
            .copied()
    }

    /// The query for `key`.
    pub(crate) fn get_by_key(&self, key: &QueryKey) -> Option<&InFlight> {
        self.get(self.slot_of(key)?)
    }

    /// Whether a query for `key` is outstanding.
    pub(crate) fn contains_key(&self, key: &QueryKey) -> bool {
        self.slot_of(key).is_some()
    }

    /// The slot of the query whose current attempt was sent with `id`.
    pub(crate) fn slot_of_id(&self, id: u16) -> Option<Slot> {
        self.by_id.get(&id).copied()
    }

    /// Every outstanding query, to change (a reload remaps upstreams).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut InFlight> {
        self.slots.iter_mut().flatten()
    }

    /// Add a query for `key` with one waiter or none (a prefetch or
    /// background refresh), in `phase`, started at `now`. It has no
    /// attempt yet: [`InFlightTable::begin_send`] starts one. The caller
    /// has checked the in-flight bound.
    pub(crate) fn insert(
        &mut self,
        key: &QueryKey,
        waiter: Option<Waiter>,
        phase: Phase,
        now: Timestamp,
    ) -> Option<Slot> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(None);
                u32::try_from(self.slots.len() - 1).ok()?
            }
        };
        let slot = Slot(index);
        let mut waiters = SmallVec::new();
        if let Some(waiter) = waiter {
            waiters.push(waiter);
            self.total_waiters += 1;
        }
        self.next_serial = self.next_serial.wrapping_add(1);
        let inflight = InFlight {
            key: key.clone(),
            waiters,
            serial: self.next_serial,
            started_at: now,
            phase,
            store: true,
            attempt: Attempt {
                upstream: 0,
                id: 0,
                transport: UpstreamTransport::Udp,
                sent_at: now,
                generation: 0,
                sent: false,
                case_seed: None,
                cookie: None,
                marks: Marks::default(),
            },
            earlier: SmallVec::new(),
            tried: 0,
            failed: 0,
            attempts: 0,
            upstream_error: false,
            badcookie_retried: false,
            pending: None,
            dependents: SmallVec::new(),
            subqueries: 0,
            answered_by: None,
        };
        // Callers join a query already outstanding for the key instead.
        debug_assert!(self.slot_of(key).is_none(), "a second query for one key");
        let hash = Self::hash(&self.hasher, &inflight.key);
        if let Some(place) = self.slots.get_mut(index as usize) {
            *place = Some(inflight);
        }
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_key.insert_unique(hash, slot, |&other| {
            Self::key_in(slots, other).map_or(0, |key| Self::hash(hasher, key))
        });
        Some(slot)
    }

    /// Add `waiter` to the query in `slot`, unless it has `max_waiters`.
    pub(crate) fn join(&mut self, slot: Slot, waiter: Waiter, max_waiters: usize) -> Join<'_> {
        let Some(inflight) = self.slots.get_mut(slot.0 as usize).and_then(Option::as_mut) else {
            return Join::Gone(waiter);
        };
        if inflight.waiters.len() >= max_waiters {
            return Join::Full;
        }
        inflight.waiters.push(waiter);
        self.total_waiters += 1;
        Join::Joined(inflight)
    }

    /// Take the waiters of the query in `slot` (they are being answered);
    /// the query carries on without them.
    pub(crate) fn take_waiters(&mut self, slot: Slot) -> SmallVec<[Waiter; 1]> {
        let Some(inflight) = self.get_mut(slot) else {
            return SmallVec::new();
        };
        let waiters = core::mem::take(&mut inflight.waiters);
        self.total_waiters = self.total_waiters.saturating_sub(waiters.len());
        waiters
    }

    /// Retire the query in `slot`: free the slot and drop it from both
    /// indexes. Returns the query and its waiters.
    /// Every slot holding a query (for shutdown: allocates).
    pub(crate) fn occupied(&self) -> Vec<Slot> {
        (0..self.slots.len() as u32)
            .map(Slot)
            .filter(|slot| self.get(*slot).is_some())
            .collect()
    }

    pub(crate) fn remove(&mut self, slot: Slot) -> Option<(InFlight, SmallVec<[Waiter; 1]>)> {
        let mut inflight = self.slots.get_mut(slot.0 as usize).and_then(Option::take)?;
        self.free.push(slot.0);
        let waiters = core::mem::take(&mut inflight.waiters);
        self.total_waiters = self.total_waiters.saturating_sub(waiters.len());
        let hash = Self::hash(&self.hasher, &inflight.key);
        if let Ok(found) = self.by_key.find_entry(hash, |&other| other == slot) {
            found.remove();
        }
        let attempts = inflight.earlier.iter().chain([&inflight.attempt]);
        for attempt in attempts {
            Self::retire(
                &mut self.by_id,
                &mut self.by_generation,
                &mut self.retired,
                slot,
                attempt,
            );
        }
        if self.by_key.is_empty() && self.slots.len() > KEEP_SLOTS {
            self.shrink_empty();
        }
        Some((inflight, waiters))
    }

    /// Give back the slots and index room of a burst; no query is
    /// outstanding (every occupied slot is in the key index). Timers and
    /// queued sends that name a freed slot find nothing there, as for a
    /// reused one.
    fn shrink_empty(&mut self) {
        debug_assert!(self.slots.iter().all(Option::is_none));
        self.slots.truncate(KEEP_SLOTS);
        self.slots.shrink_to_fit();
        self.free.clear();
        self.free.extend((0..self.slots.len() as u32).rev());
        self.free.shrink_to(KEEP_SLOTS);
        self.by_key.shrink_to(KEEP_SLOTS, |_| 0);
        self.by_id.shrink_to(KEEP_SLOTS);
        self.by_generation.shrink_to(KEEP_SLOTS);
    }

    /// Drop `attempt` of the query in `slot` from the ID index and, if the
    /// runtime was handed it, queue it as retired.
    fn retire(
        by_id: &mut HashMap<u16, Slot>,
        by_generation: &mut HashMap<u32, Slot>,
        retired: &mut VecDeque<AttemptId>,
        slot: Slot,
        attempt: &Attempt,
    ) {
        if attempt.generation == 0 {
            return;
        }
        if by_id.get(&attempt.id) == Some(&slot) {
            by_id.remove(&attempt.id);
        }
        by_generation.remove(&attempt.generation);
        if attempt.sent {
            retired.push_back(attempt.id());
        }
    }

    /// Retire the live attempt of `slot` sent with `id` before its query
    /// ends: a truncated UDP attempt (its TCP retry replaces it), or an
    /// earlier attempt that answered with an error.
    pub(crate) fn retire_attempt(&mut self, slot: Slot, id: u16) {
        let Some(inflight) = self.slots.get_mut(slot.0 as usize).and_then(Option::as_mut) else {
            return;
        };
        if inflight.attempt.generation != 0 && inflight.attempt.id == id {
            let attempt = inflight.attempt;
            Self::retire(
                &mut self.by_id,
                &mut self.by_generation,
                &mut self.retired,
                slot,
                &attempt,
            );
            // The current attempt keeps its place (its deadline and
            // counters still apply) but no reply matches it any more.
            inflight.attempt.generation = 0;
            inflight.attempt.sent = false;
            return;
        }
        if let Some(index) = inflight.earlier.iter().position(|a| a.id == id) {
            let attempt = inflight.earlier.remove(index);
            Self::retire(
                &mut self.by_id,
                &mut self.by_generation,
                &mut self.retired,
                slot,
                &attempt,
            );
        }
    }

    /// Retire every live attempt of `slot`: its reply is in (DNSSEC
    /// validation now waits on sub-queries), so no other is accepted, and
    /// it has no deadline of its own.
    pub(crate) fn retire_all_attempts(&mut self, slot: Slot) {
        let Some(inflight) = self.slots.get_mut(slot.0 as usize).and_then(Option::as_mut) else {
            return;
        };
        let current = inflight.attempt;
        let earlier = core::mem::take(&mut inflight.earlier);
        inflight.attempt.generation = 0;
        inflight.attempt.sent = false;
        for attempt in earlier.iter().chain([&current]) {
            Self::retire(
                &mut self.by_id,
                &mut self.by_generation,
                &mut self.retired,
                slot,
                attempt,
            );
        }
    }

    /// Change the live attempt of `slot` sent with `id` (current or
    /// earlier), if there is one.
    pub(crate) fn update_attempt(
        &mut self,
        slot: Slot,
        id: u16,
        change: impl FnOnce(&mut Attempt),
    ) {
        let Some(inflight) = self.get_mut(slot) else {
            return;
        };
        if inflight.attempt.generation != 0 && inflight.attempt.id == id {
            change(&mut inflight.attempt);
        } else if let Some(attempt) = inflight.earlier.iter_mut().find(|a| a.id == id) {
            change(attempt);
        }
    }

    /// A UDP reply that arrived on the socket of the live attempt
    /// `generation` was refused for something other than its case or
    /// cookie (another ID, junk, ...): count it against that attempt.
    pub(crate) fn note_foreign_reply(&mut self, generation: u32) {
        let Some(&slot) = self.by_generation.get(&generation) else {
            return;
        };
        let Some(inflight) = self.get_mut(slot) else {
            return;
        };
        let attempt = if inflight.attempt.generation == generation {
            Some(&mut inflight.attempt)
        } else {
            inflight
                .earlier
                .iter_mut()
                .find(|attempt| attempt.generation == generation)
        };
        if let Some(attempt) = attempt {
            attempt.marks.foreign_replies = attempt.marks.foreign_replies.saturating_add(1);
        }
    }

    /// The next attempt the runtime may forget (its socket closed).
    pub(crate) fn pop_retired(&mut self) -> Option<AttemptId> {
        self.retired.pop_front()
    }

    /// Mark the current attempt of `slot`, if it is `generation`, as
    /// handed to the runtime; returns it.
    pub(crate) fn mark_sent(&mut self, slot: Slot, generation: u32) -> Option<&InFlight> {
        let inflight = self.get_mut(slot)?;
        if inflight.attempt.generation != generation {
            return None;
        }
        inflight.attempt.sent = true;
        Some(inflight)
    }

    /// Start a send of the query in `slot` to `upstream` over
    /// `transport`: a fresh ID not used by any live attempt, a fresh
    /// generation and a deadline at `deadline`. The previous attempt stays
    /// live (a late reply to it is still accepted) with at most
    /// `keep_earlier` others; older ones are retired. Returns the
    /// generation; `None` when the query is gone or no ID is free.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn begin_send(
        &mut self,
        slot: Slot,
        upstream: usize,
        transport: UpstreamTransport,
        now: Timestamp,
        deadline: Timestamp,
        keep_earlier: usize,
        case_seed: Option<u64>,
        cookie: Option<ClientCookie>,
        rng: &mut impl Rng,
    ) -> Option<u32> {
        // Every live ID is in the map; leave room so the draw below ends
        // quickly (at most 90 % of the 16-bit space is ever in use).
        if self.by_id.len() >= MAX_LIVE_IDS {
            return None;
        }
        let id = loop {
            let id = (rng.next_u32() & 0xffff) as u16;
            if !self.by_id.contains_key(&id) {
                break id;
            }
        };
        self.next_generation = self.next_generation.wrapping_add(1);
        if self.next_generation == 0 {
            // 0 means "no attempt yet".
            self.next_generation = 1;
        }
        let generation = self.next_generation;
        let inflight = self
            .slots
            .get_mut(slot.0 as usize)
            .and_then(Option::as_mut)?;
        let previous = inflight.attempt;
        if previous.generation != 0 {
            inflight.earlier.push(previous);
        }
        while inflight.earlier.len() > keep_earlier {
            let oldest = inflight.earlier.remove(0);
            Self::retire(
                &mut self.by_id,
                &mut self.by_generation,
                &mut self.retired,
                slot,
                &oldest,
            );
        }
        inflight.attempt = Attempt {
            upstream,
            id,
            transport,
            sent_at: now,
            generation,
            sent: false,
            case_seed,
            cookie,
            marks: Marks::default(),
        };
        self.by_id.insert(id, slot);
        self.by_generation.insert(generation, slot);
        self.deadlines.push(Reverse((deadline, slot, generation)));
        Some(generation)
    }

    /// The query in `slot`, if `generation` is still its current attempt.
    pub(crate) fn current(&self, slot: Slot, generation: u32) -> Option<&InFlight> {
        self.get(slot)
            .filter(|inflight| inflight.attempt.generation == generation)
    }

    /// Arm the serve-stale client timer of the query in `slot`, to run
    /// out `timeout_ms` after the query started.
    pub(crate) fn arm_stale_timer(&mut self, slot: Slot, timeout_ms: u64) {
        if let Some(inflight) = self.get(slot) {
            let deadline = inflight.started_at.add_millis(timeout_ms);
            let serial = inflight.serial;
            self.stale_timers.push(Reverse((deadline, slot, serial)));
        }
    }

    /// When the next live deadline falls: an attempt's timeout, or the
    /// client timer of a query that still has waiters to answer stale.
    /// Dead timers met on the way are dropped.
    pub(crate) fn next_deadline(&mut self) -> Option<Timestamp> {
        let mut attempt = None;
        while let Some(Reverse((deadline, slot, generation))) = self.deadlines.peek().copied() {
            if self.current(slot, generation).is_some() {
                attempt = Some(deadline);
                break;
            }
            self.deadlines.pop();
        }
        let mut stale = None;
        while let Some(Reverse((deadline, slot, serial))) = self.stale_timers.peek().copied() {
            let live = self.get(slot).is_some_and(|inflight| {
                inflight.serial == serial
                    && inflight.phase != Phase::StaleServed
                    && inflight.has_waiters()
            });
            if live {
                stale = Some(deadline);
                break;
            }
            self.stale_timers.pop();
        }
        match (attempt, stale) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next serve-stale client timer due by `now`, removed: its slot
    /// and query serial. The caller checks the query is still that one.
    pub(crate) fn pop_stale_timer(&mut self, now: Timestamp) -> Option<(Slot, u32)> {
        let Reverse((deadline, slot, serial)) = self.stale_timers.peek().copied()?;
        if deadline > now {
            return None;
        }
        self.stale_timers.pop();
        Some((slot, serial))
    }

    /// The next query whose current attempt's deadline passed by `now`,
    /// its deadline removed. Deadlines of earlier attempts are skipped.
    pub(crate) fn pop_timed_out(&mut self, now: Timestamp) -> Option<Slot> {
        while let Some(Reverse((deadline, slot, generation))) = self.deadlines.peek().copied() {
            if deadline > now {
                return None;
            }
            self.deadlines.pop();
            if self.current(slot, generation).is_some() {
                return Some(slot);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use core::net::SocketAddr;

    use heimdall_wire::{Class, RecordType};
    use rand::SeedableRng as _;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::io::Transport;

    fn key(label: u8) -> QueryKey {
        let mut name = WireNameBuf::new();
        for byte in [1, label, 0] {
            name.push(byte);
        }
        QueryKey {
            name,
            qtype: RecordType::A,
            qclass: Class::IN,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    fn waiter() -> Waiter {
        Waiter {
            client: ClientId {
                addr: SocketAddr::from(([127, 0, 0, 1], 4000)),
                transport: Transport::Udp,
                listener: 0,
            },
            id: 1,
            flags: Flags::default(),
            qname: WireNameBuf::new(),
            received_at: Timestamp::ZERO,
            edns: None,
        }
    }

    #[test]
    fn slots_are_reused_and_indexes_follow() {
        let now = Timestamp::from_secs(1);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut table = InFlightTable::default();
        let a = table
            .insert(&key(b'a'), Some(waiter()), Phase::Forwarding, now)
            .unwrap();
        let b = table
            .insert(&key(b'b'), None, Phase::Forwarding, now)
            .unwrap();
        assert_ne!(a, b);
        assert_eq!((table.len(), table.total_waiters()), (2, 1));
        assert!(matches!(table.join(b, waiter(), 1), Join::Joined(_)));
        assert!(matches!(table.join(b, waiter(), 1), Join::Full));
        assert_eq!(table.total_waiters(), 2);
        let generation = table
            .begin_send(
                a,
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
        let id = table.get(a).unwrap().attempt.id;
        assert_eq!(table.slot_of_id(id), Some(a));
        assert!(table.current(a, generation).is_some());

        let (removed, waiters) = table.remove(a).unwrap();
        assert_eq!((removed.key, waiters.len()), (key(b'a'), 1));
        assert_eq!((table.len(), table.total_waiters()), (1, 1));
        assert_eq!(table.slot_of_id(id), None);
        assert!(table.get(a).is_none());
        assert!(matches!(table.join(a, waiter(), 1), Join::Gone(_)));
        // The freed slot holds the next query; the old attempt's timer no
        // longer names anything live.
        let c = table
            .insert(&key(b'c'), None, Phase::Forwarding, now)
            .unwrap();
        assert_eq!(c, a);
        assert!(table.current(c, generation).is_none());
        assert_eq!(table.next_deadline(), None);
        assert_eq!(table.pop_timed_out(now.add_secs(1)), None);
    }

    #[test]
    fn an_emptied_table_gives_a_bursts_slots_back() {
        let now = Timestamp::from_secs(1);
        let mut table = InFlightTable::default();
        let burst: Vec<Slot> = (0..2_000u32)
            .map(|n| {
                let mut name = WireNameBuf::new();
                for byte in [2, (n >> 8) as u8, n as u8, 0] {
                    name.push(byte);
                }
                let key = QueryKey { name, ..key(b'a') };
                table.insert(&key, None, Phase::Forwarding, now).unwrap()
            })
            .collect();
        assert_eq!(table.len(), 2_000);
        // While one is outstanding, nothing moves.
        for slot in &burst[1..] {
            table.remove(*slot).unwrap();
        }
        assert_eq!(table.slots.len(), 2_000);
        assert!(table.get(burst[0]).is_some());
        table.remove(burst[0]).unwrap();
        assert_eq!(table.len(), 0);
        assert_eq!(table.slots.len(), KEEP_SLOTS);
        assert!(table.slots.capacity() < 2 * KEEP_SLOTS);
        assert!(table.by_key.capacity() < 2 * KEEP_SLOTS);
        // A freed slot names nothing; the table works on.
        assert!(table.get(burst[1_999]).is_none());
        assert!(matches!(
            table.join(burst[1_999], waiter(), 1),
            Join::Gone(_)
        ));
        let next = table
            .insert(&key(b'z'), Some(waiter()), Phase::Forwarding, now)
            .unwrap();
        assert!((next.0 as usize) < KEEP_SLOTS);
        assert_eq!(
            table.get_by_key(&key(b'z')).map(|q| q.serial),
            table.get(next).map(|q| q.serial)
        );
    }

    #[test]
    fn timers_fire_only_for_their_attempt_and_query() {
        let now = Timestamp::from_secs(1);
        let mut rng = SmallRng::seed_from_u64(1);
        let mut table = InFlightTable::default();
        let slot = table
            .insert(&key(b'a'), Some(waiter()), Phase::StaleArmed, now)
            .unwrap();
        table.arm_stale_timer(slot, 500);
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
        assert_eq!(table.next_deadline(), Some(now.add_millis(500)));
        // A second send replaces the first attempt's deadline.
        let later = now.add_millis(100);
        table
            .begin_send(
                slot,
                0,
                UpstreamTransport::Tcp,
                later,
                later.add_millis(800),
                2,
                None,
                None,
                &mut rng,
            )
            .unwrap();
        assert_eq!(table.pop_stale_timer(now.add_millis(499)), None);
        let serial = table.get(slot).unwrap().serial;
        assert_eq!(
            table.pop_stale_timer(now.add_millis(500)),
            Some((slot, serial))
        );
        assert_eq!(table.take_waiters(slot).len(), 1);
        assert_eq!(table.total_waiters(), 0);
        assert_eq!(table.next_deadline(), Some(later.add_millis(800)));
        assert_eq!(
            table.pop_timed_out(now.add_millis(800)),
            None,
            "the old deadline"
        );
        assert_eq!(table.pop_timed_out(later.add_millis(800)), Some(slot));
        assert_eq!(
            table.get(slot).unwrap().attempt.transport,
            UpstreamTransport::Tcp
        );
    }
}
