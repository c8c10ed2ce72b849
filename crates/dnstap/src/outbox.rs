//! [`Outbox`]: the bounded buffer of encoded data frames between the query
//! path (which appends) and a writer (which takes everything pending at
//! once). Bounded twice: at most `max_frames` frames and `max_bytes`
//! bytes pending; a frame that does not fit is dropped whole and counted,
//! never waited for.
//!
//! The frames are appended back to back into one buffer, ready to be
//! written with a single write. [`Outbox::take`] swaps that buffer with
//! the writer's empty one, so after the first few rounds neither side
//! allocates.

use crate::encode::{Event, Origin, encode, encoded_len};

/// Encoded data frames waiting for the writer.
#[derive(Debug)]
pub struct Outbox {
    origin: Origin,
    pending: Vec<u8>,
    frames: usize,
    max_frames: usize,
    max_bytes: usize,
    dropped: u64,
}

impl Outbox {
    /// An empty outbox for messages from `origin`, holding at most
    /// `max_frames` frames and `max_bytes` bytes (each at least 1 frame of
    /// 64 KiB + framing, so a full-size DNS message always fits an empty
    /// outbox).
    pub fn new(origin: Origin, max_frames: usize, max_bytes: usize) -> Self {
        let max_bytes = max_bytes.max(MIN_BYTES);
        Self {
            origin,
            // Most bursts fit this: a reservation, not the bound.
            pending: Vec::with_capacity(max_bytes.min(INITIAL_CAPACITY)),
            frames: 0,
            max_frames: max_frames.max(1),
            max_bytes,
            dropped: 0,
        }
    }

    /// Encode `event` as one data frame at the end of the outbox. False,
    /// and counted in [`Outbox::dropped`], when it does not fit.
    pub fn push(&mut self, event: &Event<'_>) -> bool {
        let len = encoded_len(&self.origin, event);
        let fits = self.frames < self.max_frames
            && self.pending.len().saturating_add(4 + len) <= self.max_bytes;
        if !fits || len == 0 {
            self.dropped += 1;
            return false;
        }
        self.pending.extend_from_slice(&(len as u32).to_be_bytes());
        encode(&self.origin, event, &mut self.pending);
        self.frames += 1;
        true
    }

    /// Move every pending frame into `into` (cleared first; the two
    /// buffers are swapped, so no bytes are copied): returns how many
    /// frames it now holds.
    pub fn take(&mut self, into: &mut Vec<u8>) -> usize {
        into.clear();
        std::mem::swap(&mut self.pending, into);
        std::mem::take(&mut self.frames)
    }

    /// Frames pending.
    pub fn len(&self) -> usize {
        self.frames
    }

    /// No frame pending.
    pub fn is_empty(&self) -> bool {
        self.frames == 0
    }

    /// Frames refused because the outbox was full, ever.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Count `count` frames lost after they left the outbox (a write that
    /// failed): they are drops too.
    pub fn count_lost(&mut self, count: usize) {
        self.dropped += count as u64;
    }
}

/// The smallest byte bound: one DNS message of the largest size, twice
/// (query and response), with room for the rest of the frame.
const MIN_BYTES: usize = 2 * 65_535 + 1024;
/// What a new outbox reserves.
const INITIAL_CAPACITY: usize = 64 << 10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fstrm::{Frame, next_frame};
    use crate::proto::{Dnstap, MessageType, SocketProtocol};
    use prost::Message as _;

    fn event(query: &[u8]) -> Event<'_> {
        Event {
            kind: MessageType::ClientQuery,
            protocol: SocketProtocol::Udp,
            query_address: Some("127.0.0.1:4000".parse().unwrap()),
            response_address: Some("127.0.0.1:53".parse().unwrap()),
            query_time: None,
            response_time: None,
            query_message: Some(query),
            response_message: None,
        }
    }

    #[test]
    fn frames_come_out_in_order_and_decode() {
        let mut outbox = Outbox::new(Origin::new(b"id", b"v"), 8, 0);
        for n in 1..=3u8 {
            assert!(outbox.push(&event(&[n; 20])));
        }
        let mut taken = Vec::new();
        assert_eq!(outbox.take(&mut taken), 3);
        assert!(outbox.is_empty());
        let mut rest = taken.as_slice();
        for n in 1..=3u8 {
            let (frame, used) = next_frame(rest, 4096).unwrap().unwrap();
            let Frame::Data(payload) = frame else {
                panic!("{frame:?}")
            };
            let message = Dnstap::decode(payload).unwrap().message.unwrap();
            assert_eq!(message.query_message, Some(vec![n; 20]));
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn a_full_outbox_drops_and_counts() {
        let mut outbox = Outbox::new(Origin::default(), 2, 0);
        assert!(outbox.push(&event(b"a")));
        assert!(outbox.push(&event(b"b")));
        assert!(!outbox.push(&event(b"c")));
        assert_eq!((outbox.len(), outbox.dropped()), (2, 1));
        // The byte bound: a message that would pass it is dropped whole.
        let mut outbox = Outbox::new(Origin::default(), 100, 0);
        let big = vec![0u8; 65_000];
        assert!(outbox.push(&event(&big)));
        assert!(outbox.push(&event(&big)));
        assert!(!outbox.push(&event(&big)));
        assert!(outbox.push(&event(b"small")));
        assert_eq!(outbox.dropped(), 1);
        outbox.count_lost(3);
        assert_eq!(outbox.dropped(), 4);
    }

    #[test]
    fn taking_swaps_buffers_without_allocating() {
        let mut outbox = Outbox::new(Origin::default(), 100, 0);
        let mut spare = Vec::with_capacity(INITIAL_CAPACITY);
        let mut buffers = std::collections::HashSet::new();
        for _ in 0..10 {
            for _ in 0..50 {
                outbox.push(&event(&[1u8; 200]));
            }
            outbox.take(&mut spare);
            buffers.insert(spare.as_ptr() as usize);
        }
        assert_eq!(buffers.len(), 2, "the same two buffers go back and forth");
    }
}
