//! A bounded per-thread queue of replies waiting out the configured delay.
//!
//! Each serving thread keeps its own queue so a delayed reply never blocks
//! the thread from reading the next query: the thread sleeps in `poll` only
//! until the earliest due time. The delay can change at runtime, so due
//! times are not monotonic and a heap is needed; the sequence number keeps
//! replies with equal due times in the order they were queued (a spoofed
//! reply must still go out before the real one).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

struct Entry<T> {
    due: Instant,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due && self.seq == other.seq
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    // Reversed: BinaryHeap is a max-heap and the earliest entry must be on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Items released at their due time, earliest first; at most `capacity`.
pub(crate) struct TimerQueue<T> {
    heap: BinaryHeap<Entry<T>>,
    seq: u64,
    capacity: usize,
}

impl<T> TimerQueue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
            capacity,
        }
    }

    /// Queue `item` for `due`; hands it back when the queue is full.
    pub(crate) fn push(&mut self, due: Instant, item: T) -> Result<(), T> {
        if self.heap.len() >= self.capacity {
            return Err(item);
        }
        self.seq = self.seq.wrapping_add(1);
        self.heap.push(Entry {
            due,
            seq: self.seq,
            item,
        });
        Ok(())
    }

    /// The earliest item if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.heap.peek()?.due > now {
            return None;
        }
        self.heap.pop().map(|entry| entry.item)
    }

    /// When the earliest item is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.due)
    }

    /// Take every item, due or not (for shutdown accounting).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.heap.drain().map(|entry| entry.item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn releases_in_due_order_then_fifo() {
        let start = Instant::now();
        let mut queue = TimerQueue::new(3);
        let later = start + Duration::from_millis(10);
        queue.push(later, "late").unwrap();
        queue.push(start, "first").unwrap();
        queue.push(start, "second").unwrap();
        assert_eq!(queue.push(start, "over"), Err("over"));
        assert_eq!(queue.next_due(), Some(start));
        assert_eq!(queue.pop_due(start), Some("first"));
        assert_eq!(queue.pop_due(start), Some("second"));
        assert_eq!(queue.pop_due(start), None, "not due yet");
        assert_eq!(queue.pop_due(later), Some("late"));
        assert_eq!(queue.next_due(), None);
        queue.push(later, "left").unwrap();
        assert_eq!(queue.drain().collect::<Vec<_>>(), ["left"]);
    }
}
