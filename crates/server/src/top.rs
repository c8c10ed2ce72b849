//! Top queries (`heimdall ctl top-queries`): each core samples one client
//! query in [`SAMPLE_EVERY`] and counts its name and type in a table of at
//! most [`SLOTS`] entries kept by the space-saving rule (a new name takes
//! the place of the least counted one, starting from its count plus one),
//! so the names asked most are kept with counts that can only be too
//! high, never too low. The table is allocated once at start: sampling
//! allocates nothing, and the query path pays a counter increment for the
//! other queries.

use std::cell::{Cell, RefCell};

use heimdall_wire::WireNameBuf;

/// One client query in this many is counted.
pub(crate) const SAMPLE_EVERY: u32 = 64;
/// Names kept per core.
pub(crate) const SLOTS: usize = 256;
/// The DNS header's length: the question starts after it.
const HEADER_LEN: usize = 12;

struct Slot {
    /// Lower-case wire form.
    name: WireNameBuf,
    qtype: u16,
    count: u64,
}

/// One core's sampled table.
pub(crate) struct TopQueries {
    tick: Cell<u32>,
    slots: RefCell<Vec<Slot>>,
}

impl TopQueries {
    pub(crate) fn new() -> Self {
        Self {
            tick: Cell::new(0),
            slots: RefCell::new(Vec::with_capacity(SLOTS)),
        }
    }

    /// Count `query` (a client's raw message) when its turn comes; true
    /// when it was its turn (the query is sampled).
    pub(crate) fn sample(&self, query: &[u8]) -> bool {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        if !tick.is_multiple_of(SAMPLE_EVERY) {
            return false;
        }
        if let Some((name, qtype)) = question(query) {
            self.count(name, qtype);
        }
        true
    }

    fn count(&self, name: WireNameBuf, qtype: u16) {
        let mut slots = self.slots.borrow_mut();
        if let Some(slot) = slots
            .iter_mut()
            .find(|slot| slot.qtype == qtype && slot.name == name)
        {
            slot.count += 1;
            return;
        }
        if slots.len() < SLOTS {
            // Within the capacity reserved at start: no allocation.
            slots.push(Slot {
                name,
                qtype,
                count: 1,
            });
            return;
        }
        if let Some(least) = slots.iter_mut().min_by_key(|slot| slot.count) {
            least.count += 1;
            least.name = name;
            least.qtype = qtype;
        }
    }

    /// The table: name (wire form), type and estimated queries (sampled
    /// count times [`SAMPLE_EVERY`]).
    pub(crate) fn snapshot(&self) -> Vec<(WireNameBuf, u16, u64)> {
        self.slots
            .borrow()
            .iter()
            .map(|slot| {
                (
                    slot.name.clone(),
                    slot.qtype,
                    slot.count.saturating_mul(u64::from(SAMPLE_EVERY)),
                )
            })
            .collect()
    }
}

/// The question name (lower-cased wire form) and type of a raw query,
/// without compression (a question name never needs it); `None` for
/// anything malformed.
fn question(query: &[u8]) -> Option<(WireNameBuf, u16)> {
    let mut name = WireNameBuf::new();
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*query.get(at)?);
        if len > 63 {
            return None;
        }
        let label = query.get(at..at + 1 + len)?;
        for &byte in label {
            name.try_push(byte.to_ascii_lowercase()).ok()?;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let qtype = query.get(at..at + 2)?;
    Some((name, u16::from_be_bytes([*qtype.first()?, *qtype.get(1)?])))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn query(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut out = vec![0u8; HEADER_LEN];
        out.extend_from_slice(name);
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out
    }

    #[test]
    fn questions_are_read_lower_cased_and_malformed_ones_skipped() {
        let (name, qtype) = question(&query(b"\x03WWW\x07example\x00", 28)).unwrap();
        assert_eq!(name.as_slice(), b"\x03www\x07example\x00");
        assert_eq!(qtype, 28);
        assert!(question(&query(b"\xc0\x0c", 1)).is_none());
        assert!(question(&[0u8; 13]).is_none());
        assert!(question(&[0u8; 5]).is_none());
    }

    #[test]
    fn one_query_in_sample_every_is_counted_and_the_table_stays_bounded() {
        let top = TopQueries::new();
        let hot = query(b"\x03hot\x00", 1);
        for _ in 0..SAMPLE_EVERY * 10 {
            top.sample(&hot);
        }
        assert_eq!(top.snapshot().len(), 1);
        assert_eq!(top.snapshot()[0].2, u64::from(SAMPLE_EVERY) * 10);
        // Many cold names: the table stays at SLOTS and keeps the hot one.
        for n in 0..(SLOTS as u32 * 4) {
            let label = format!("n{n:05}");
            let mut name = vec![label.len() as u8];
            name.extend_from_slice(label.as_bytes());
            name.push(0);
            for _ in 0..SAMPLE_EVERY {
                top.sample(&query(&name, 1));
            }
        }
        let table = top.snapshot();
        assert_eq!(table.len(), SLOTS);
        assert!(
            table
                .iter()
                .any(|(name, _, _)| name.as_slice() == b"\x03hot\x00")
        );
    }

    #[test]
    fn sampling_allocates_nothing_even_when_the_table_is_full() {
        let top = TopQueries::new();
        let queries: Vec<Vec<u8>> = (0..SLOTS * 2)
            .map(|n| {
                let label = format!("q{n:05}");
                let mut name = vec![label.len() as u8];
                name.extend_from_slice(label.as_bytes());
                name.push(0);
                query(&name, 1)
            })
            .collect();
        let ((), allocations) = heimdall_testkit::allocations_during(|| {
            for bytes in &queries {
                for _ in 0..SAMPLE_EVERY {
                    top.sample(bytes);
                }
            }
        });
        assert_eq!(allocations, 0);
        assert_eq!(top.snapshot().len(), SLOTS);
    }
}
