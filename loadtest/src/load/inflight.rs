//! The queries one socket has outstanding, by ID.
//!
//! Free IDs wait in a queue that starts as a random permutation of all
//! 65,536; an ID goes back to the end of it when its query is answered or
//! times out, so an ID is reused as late as possible (a late answer then
//! finds its own expired ID, not a newer query). Timeouts are a FIFO: one
//! socket sends in time order and every query has the same timeout, so the
//! oldest query is always at the front.
//!
//! The per-ID table is kept small (4 bytes an ID, 256 KiB a socket) and
//! points into a compact array of slots for the queries actually
//! outstanding, reused most recently freed first: random IDs then cost a
//! cache miss only in the small table, not in a megabyte-sized one.

use std::collections::VecDeque;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom as _;

/// Most queries one socket may have outstanding: half the ID space, so an
/// ID is reused only after at least 32,768 other queries.
pub const MAX_IN_FLIGHT: usize = 32_768;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Free,
    Outstanding,
    Answered,
    Expired,
}

/// What is known about one ID.
#[derive(Debug, Clone, Copy, Default)]
struct IdEntry {
    state: State,
    /// The slot of its query while outstanding.
    slot: u16,
    /// 16 bits of its last question's hash, to tell a late or duplicate
    /// answer from a wrong one after the slot is gone.
    check: u16,
}

/// One outstanding query.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    hash: u64,
    origin_ns: u64,
    generation: u32,
    id: u16,
    live: bool,
    counted: bool,
}

#[derive(Debug, Clone, Copy)]
struct Deadline {
    at_ns: u64,
    slot: u16,
    generation: u32,
}

/// What a response turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// The answer to an outstanding query: its latency origin and whether
    /// it counts (was scheduled after the warm-up).
    Answered { origin_ns: u64, counted: bool },
    /// The ID is outstanding, but for another question.
    WrongQuestion,
    /// The ID's query timed out before this answer came.
    Late,
    /// The ID's query was already answered.
    Duplicate,
    /// No query with this ID (and question) was sent.
    WrongId,
}

fn check(hash: u64) -> u16 {
    (hash >> 48) as u16
}

/// The outstanding queries of one socket.
pub(crate) struct InFlight {
    ids: Vec<IdEntry>,
    slots: Vec<Slot>,
    free_ids: VecDeque<u16>,
    free_slots: Vec<u16>,
    deadlines: VecDeque<Deadline>,
    outstanding: usize,
}

impl InFlight {
    /// An empty table allowing `limit` (at most [`MAX_IN_FLIGHT`])
    /// outstanding queries, with IDs in an order drawn from `rng`.
    pub(crate) fn new(limit: usize, rng: &mut SmallRng) -> Self {
        let limit = limit.clamp(1, MAX_IN_FLIGHT);
        let mut ids: Vec<u16> = (0..=u16::MAX).collect();
        ids.shuffle(rng);
        Self {
            ids: vec![IdEntry::default(); 1 << 16],
            slots: vec![Slot::default(); limit],
            free_ids: ids.into(),
            // Popped from the end: slot 0 first.
            free_slots: (0..limit as u16).rev().collect(),
            deadlines: VecDeque::new(),
            outstanding: 0,
        }
    }

    /// Queries sent (or about to be) and not yet answered or expired.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Take an ID for a query with question hash `hash`; None when the
    /// table is full.
    pub(crate) fn allocate(&mut self, hash: u64, origin_ns: u64, counted: bool) -> Option<u16> {
        let slot_index = *self.free_slots.last()?;
        let id = self.free_ids.pop_front()?;
        self.free_slots.pop();
        let slot = self.slots.get_mut(usize::from(slot_index))?;
        slot.generation = slot.generation.wrapping_add(1);
        slot.hash = hash;
        slot.origin_ns = origin_ns;
        slot.counted = counted;
        slot.id = id;
        slot.live = true;
        if let Some(entry) = self.ids.get_mut(usize::from(id)) {
            *entry = IdEntry {
                state: State::Outstanding,
                slot: slot_index,
                check: check(hash),
            };
        }
        self.outstanding += 1;
        Some(id)
    }

    /// The query with `id` was handed to the kernel; it times out at
    /// `deadline_ns`. Returns whether it counts.
    pub(crate) fn sent(&mut self, id: u16, deadline_ns: u64) -> bool {
        let Some(entry) = self.ids.get(usize::from(id)) else {
            return false;
        };
        let Some(slot) = self.slots.get(usize::from(entry.slot)) else {
            return false;
        };
        self.deadlines.push_back(Deadline {
            at_ns: deadline_ns,
            slot: entry.slot,
            generation: slot.generation,
        });
        slot.counted
    }

    /// Close the query of `id` (outstanding) with `state`; returns its slot.
    fn settle(&mut self, id: u16, state: State) -> Option<Slot> {
        let entry = self.ids.get_mut(usize::from(id))?;
        entry.state = state;
        let slot = self.slots.get_mut(usize::from(entry.slot))?;
        slot.live = false;
        let closed = *slot;
        self.free_slots.push(entry.slot);
        self.free_ids.push_back(id);
        self.outstanding -= 1;
        Some(closed)
    }

    /// The query with `id` could not be sent: give the ID back. Returns
    /// whether it counted.
    pub(crate) fn unsent(&mut self, id: u16) -> bool {
        if self.ids.get(usize::from(id)).map(|entry| entry.state) != Some(State::Outstanding) {
            return false;
        }
        self.settle(id, State::Free)
            .is_some_and(|slot| slot.counted)
    }

    /// Match a response with `id` and question hash `hash` (None for an
    /// error response without a question, which is matched by ID alone).
    pub(crate) fn respond(&mut self, id: u16, hash: Option<u64>) -> Match {
        let Some(&entry) = self.ids.get(usize::from(id)) else {
            return Match::WrongId;
        };
        let same_check = hash.is_none_or(|hash| check(hash) == entry.check);
        match entry.state {
            State::Outstanding => {
                let same = self
                    .slots
                    .get(usize::from(entry.slot))
                    .is_some_and(|slot| hash.is_none_or(|hash| hash == slot.hash));
                if !same {
                    return Match::WrongQuestion;
                }
                match self.settle(id, State::Answered) {
                    Some(slot) => Match::Answered {
                        origin_ns: slot.origin_ns,
                        counted: slot.counted,
                    },
                    None => Match::WrongId,
                }
            }
            State::Answered if same_check => Match::Duplicate,
            State::Expired if same_check => Match::Late,
            _ => Match::WrongId,
        }
    }

    /// Whether `deadline` still belongs to an outstanding query.
    fn live(&self, deadline: &Deadline) -> bool {
        self.slots
            .get(usize::from(deadline.slot))
            .is_some_and(|slot| slot.live && slot.generation == deadline.generation)
    }

    /// Drop deadlines at the front whose queries are already answered.
    fn skip_settled(&mut self) {
        while let Some(front) = self.deadlines.front() {
            if self.live(front) {
                break;
            }
            self.deadlines.pop_front();
        }
    }

    /// The earliest deadline of an outstanding query.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        self.skip_settled();
        self.deadlines.front().map(|deadline| deadline.at_ns)
    }

    /// Expire every outstanding query whose deadline is at or before
    /// `now_ns` (all of them with `u64::MAX`), calling `lost(counted)` for
    /// each.
    pub(crate) fn expire(&mut self, now_ns: u64, mut lost: impl FnMut(bool)) {
        loop {
            self.skip_settled();
            let Some(front) = self.deadlines.front().copied() else {
                break;
            };
            if front.at_ns > now_ns {
                break;
            }
            self.deadlines.pop_front();
            let id = self.slots.get(usize::from(front.slot)).map(|slot| slot.id);
            if let Some(slot) = id.and_then(|id| self.settle(id, State::Expired)) {
                lost(slot.counted);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;

    fn table(limit: usize) -> InFlight {
        InFlight::new(limit, &mut SmallRng::seed_from_u64(7))
    }

    #[test]
    fn answers_match_by_id_and_question() {
        let mut table = table(10);
        let id = table.allocate(42, 1000, true).unwrap();
        table.sent(id, 5000);
        assert_eq!(table.outstanding(), 1);
        assert_eq!(table.respond(id, Some(43)), Match::WrongQuestion);
        assert_eq!(table.respond(id.wrapping_add(1), Some(42)), Match::WrongId);
        assert_eq!(
            table.respond(id, Some(42)),
            Match::Answered {
                origin_ns: 1000,
                counted: true
            }
        );
        assert_eq!(table.outstanding(), 0);
        assert_eq!(table.respond(id, Some(42)), Match::Duplicate);
        assert_eq!(table.next_deadline(), None);
        // An error answer without a question matches by ID.
        let id = table.allocate(7, 0, false).unwrap();
        assert_eq!(
            table.respond(id, None),
            Match::Answered {
                origin_ns: 0,
                counted: false
            }
        );
    }

    #[test]
    fn deadlines_expire_in_order_and_late_answers_are_known() {
        let mut table = table(10);
        let a = table.allocate(1, 0, true).unwrap();
        table.sent(a, 100);
        let b = table.allocate(2, 10, false).unwrap();
        table.sent(b, 110);
        let c = table.allocate(3, 20, true).unwrap();
        table.sent(c, 120);
        assert!(matches!(table.respond(a, Some(1)), Match::Answered { .. }));
        assert_eq!(table.next_deadline(), Some(110));
        let mut lost = Vec::new();
        table.expire(115, |counted| lost.push(counted));
        assert_eq!(lost, [false]);
        assert_eq!(table.respond(b, Some(2)), Match::Late);
        table.expire(u64::MAX, |counted| lost.push(counted));
        assert_eq!(lost, [false, true]);
        assert_eq!(table.outstanding(), 0);
    }

    #[test]
    fn the_limit_holds_and_ids_are_not_reused_soon() {
        let mut table = table(3);
        let ids: Vec<u16> = (0..3)
            .map(|i| table.allocate(i, 0, true).unwrap())
            .collect();
        assert!(table.allocate(9, 0, true).is_none());
        assert!(table.unsent(ids[0]));
        assert!(!table.unsent(ids[0]));
        let next = table.allocate(9, 0, true).unwrap();
        assert_ne!(next, ids[0], "a returned ID goes to the back of the queue");
        let distinct: std::collections::HashSet<u16> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
    }
}
