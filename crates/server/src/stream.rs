//! DNS messages over a byte stream (RFC 7766; RFC 7858 uses the same
//! framing): the 2-byte length prefix, the edns-tcp-keepalive option
//! (RFC 7828), a deadline helper, and [`Gather`], which puts the frames a
//! writer finds queued into one write. Shared by the client and upstream
//! TCP and TLS transports. No I/O of its own.

use std::future::Future;
use std::time::Instant;

use glommio::channels::local_channel::LocalReceiver;
use heimdall_wire::Message;

/// EDNS option code of edns-tcp-keepalive (RFC 7828).
const KEEPALIVE_OPTION: u16 = 11;
/// EDNS option code of Padding (RFC 7830).
const PADDING_OPTION: u16 = 12;
/// Replies over an encrypted transport are padded to a multiple of this
/// many bytes (RFC 8467 section 4.1, the Block-Length Padding strategy's
/// recommended response block).
pub(crate) const RESPONSE_PAD_BLOCK: usize = 468;

/// What is added to the OPT record of a reply on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extras {
    /// edns-tcp-keepalive with this timeout (units of 100 ms).
    pub(crate) keepalive: Option<u16>,
    /// Padding to a multiple of [`RESPONSE_PAD_BLOCK`] (encrypted
    /// transports).
    pub(crate) pad: bool,
}

impl Extras {
    /// Nothing added.
    pub(crate) const NONE: Extras = Extras {
        keepalive: None,
        pad: false,
    };
}

/// `message` with its 2-byte length prefix, and with `extras` added to its
/// OPT record.
pub(crate) fn frame(message: &[u8], extras: Extras) -> Vec<u8> {
    let mut out = Vec::new();
    frame_into(&mut out, message, extras);
    out
}

/// [`frame`] into `out`, replacing what it held (and reusing its memory).
pub(crate) fn frame_into(out: &mut Vec<u8>, message: &[u8], extras: Extras) {
    out.clear();
    out.reserve(message.len() + 8);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(message);
    if extras != Extras::NONE {
        add_options(out, 2, extras);
    }
    let len = u16::try_from(out.len() - 2).unwrap_or(u16::MAX);
    if let Some(prefix) = out.get_mut(..2) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
}

/// Add `extras` to the OPT record of the message in `buf[start..]`, when
/// that OPT is the message's last record (as in every reply heimdall
/// writes) and there is room; an option the message has already is not
/// added again. Padding comes last, so it covers the keepalive option too.
pub(crate) fn add_options(buf: &mut Vec<u8>, start: usize, extras: Extras) {
    let Some(message) = buf.get(start..) else {
        return;
    };
    let Ok(parsed) = Message::parse(message) else {
        return;
    };
    let Some(opt) = parsed.opt() else {
        return;
    };
    let has = |code: u16| opt.options().any(|option| option.code == code);
    let (has_keepalive, has_padding) = (has(KEEPALIVE_OPTION), has(PADDING_OPTION));
    // Root owner (1), type (2), class (2), TTL (4), then RDLENGTH.
    let rdlength_at = start + opt.record_offset() + 9;
    let Some(rdlength) = buf
        .get(rdlength_at..rdlength_at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(|b| usize::from(u16::from_be_bytes(b)))
    else {
        return;
    };
    if rdlength_at + 2 + rdlength != buf.len() {
        return;
    }
    let max = start + usize::from(u16::MAX);
    let mut added = 0;
    if let Some(units) = extras.keepalive
        && !has_keepalive
        && buf.len() + 6 <= max
    {
        buf.extend_from_slice(&KEEPALIVE_OPTION.to_be_bytes());
        buf.extend_from_slice(&2u16.to_be_bytes());
        buf.extend_from_slice(&units.to_be_bytes());
        added += 6;
    }
    if extras.pad && !has_padding {
        let len = buf.len() - start + 4;
        let fill = (RESPONSE_PAD_BLOCK - len % RESPONSE_PAD_BLOCK) % RESPONSE_PAD_BLOCK;
        if buf.len() + 4 + fill <= max {
            buf.extend_from_slice(&PADDING_OPTION.to_be_bytes());
            buf.extend_from_slice(&u16::try_from(fill).unwrap_or(0).to_be_bytes());
            buf.resize(buf.len() + fill, 0);
            added += 4 + fill;
        }
    }
    let Ok(new_rdlength) = u16::try_from(rdlength + added) else {
        return;
    };
    if let Some(field) = buf.get_mut(rdlength_at..rdlength_at + 2) {
        field.copy_from_slice(&new_rdlength.to_be_bytes());
    }
}

/// Whether a query asks for edns-tcp-keepalive.
pub(crate) fn asks_keepalive(query: &[u8]) -> bool {
    Message::parse(query)
        .ok()
        .and_then(|message| message.opt())
        .is_some_and(|opt| opt.options().any(|option| option.code == KEEPALIVE_OPTION))
}

/// Run `future` until `deadline`; `None` if the deadline came first.
pub(crate) async fn until<T>(deadline: Instant, future: impl Future<Output = T>) -> Option<T> {
    let wait = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { Some(future.await) }, async {
        glommio::timer::sleep(wait).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_testkit::messages::query;
    use heimdall_wire::RecordType;

    /// A message whose last record is an OPT without options.
    fn reply_with_opt() -> Vec<u8> {
        query("example", RecordType::A, 7, Some((1232, false)))
    }

    #[test]
    fn frames_carry_the_length_and_keepalive() {
        let reply = reply_with_opt();
        let plain = frame(&reply, Extras::NONE);
        let keep = Extras {
            keepalive: Some(100),
            pad: false,
        };
        assert_eq!(
            usize::from(u16::from_be_bytes([plain[0], plain[1]])),
            reply.len()
        );
        let framed = frame(&reply, keep);
        assert_eq!(framed.len(), plain.len() + 6);
        assert_eq!(
            usize::from(u16::from_be_bytes([framed[0], framed[1]])),
            reply.len() + 6
        );
        let parsed = Message::parse(&framed[2..]).unwrap();
        let option = parsed.opt().unwrap().options().next().unwrap();
        assert_eq!(option.code, KEEPALIVE_OPTION);
        assert_eq!(option.data, &100u16.to_be_bytes());
        // Without an OPT record nothing is added.
        let mut no_opt = reply.clone();
        let additional = reply.len() - 11;
        no_opt.truncate(additional);
        no_opt[11] = 0;
        assert_eq!(frame(&no_opt, keep).len(), no_opt.len() + 2);
    }

    #[test]
    fn padding_fills_the_block_after_keepalive() {
        let reply = reply_with_opt();
        let both = Extras {
            keepalive: Some(100),
            pad: true,
        };
        let framed = frame(&reply, both);
        let len = usize::from(u16::from_be_bytes([framed[0], framed[1]]));
        assert_eq!(len, framed.len() - 2);
        assert_eq!(len % RESPONSE_PAD_BLOCK, 0, "{len}");
        let parsed = Message::parse(&framed[2..]).unwrap();
        let codes: Vec<u16> = parsed.opt().unwrap().options().map(|o| o.code).collect();
        assert_eq!(codes, [KEEPALIVE_OPTION, PADDING_OPTION]);
        // Padding twice adds nothing.
        let mut again = framed[2..].to_vec();
        add_options(&mut again, 0, both);
        assert_eq!(again, framed[2..]);
        // hickory reads the padded message too.
        let checked = hickory_proto::op::Message::from_vec(&framed[2..]).unwrap();
        assert_eq!(checked.id, 7);
    }

    #[test]
    fn gathered_frames_give_back_their_messages() {
        let gather = Gather {
            bytes: [&[0, 2, 1, 2][..], &[0, 0], &[0, 1, 9], &[0, 5, 1]].concat(),
        };
        let messages: Vec<&[u8]> = gather.messages().collect();
        // The last frame is cut short: not a message.
        assert_eq!(messages, [&[1, 2][..], &[], &[9]]);
    }
}

/// Bytes gathered into one write at most (about one TLS record's worth);
/// more frames wait for the next write. Also the bound of
/// [`crate::tls::Gathered`].
pub(crate) const GATHER_LIMIT: usize = 16 * 1024;
/// What a writer keeps of its gathering buffer between writes.
const KEPT_GATHER_CAPACITY: usize = 4096;

/// The frames a stream writer finds queued, in one buffer for one write.
///
/// Why: a writer that wrote and flushed each frame alone sent one `send`
/// (and over TLS one record) per message, even when the reader had just
/// queued a dozen at once (the replies to one read's pipelined queries,
/// or the upstream queries of one batch). The buffer grows only on a
/// connection that has several frames queued at once, to at most
/// [`GATHER_LIMIT`] and one frame, and is trimmed back after each write.
#[derive(Default)]
pub(crate) struct Gather {
    bytes: Vec<u8>,
}

impl Gather {
    /// `first`, then every frame already in `queue` (without waiting), up
    /// to [`GATHER_LIMIT`] bytes; each frame goes to `done` once copied.
    /// Returns how many frames were taken.
    pub(crate) async fn take(
        &mut self,
        first: Vec<u8>,
        queue: &LocalReceiver<Vec<u8>>,
        mut done: impl FnMut(Vec<u8>),
    ) -> usize {
        self.bytes.clear();
        self.bytes.shrink_to(KEPT_GATHER_CAPACITY);
        self.bytes.extend_from_slice(&first);
        done(first);
        let mut frames = 1;
        while self.bytes.len() < GATHER_LIMIT {
            let Some(Some(next)) = futures_lite::future::poll_once(queue.recv()).await else {
                break;
            };
            self.bytes.extend_from_slice(&next);
            done(next);
            frames += 1;
        }
        frames
    }

    /// The frames taken, for one write.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The messages of the frames taken, without their length prefixes
    /// (for dnstap, once the write succeeded).
    pub(crate) fn messages(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = self.bytes.as_slice();
        std::iter::from_fn(move || {
            let (&[high, low], after) = rest.split_first_chunk::<2>()?;
            let len = usize::from(u16::from_be_bytes([high, low]));
            let message = after.get(..len)?;
            rest = after.get(len..)?;
            Some(message)
        })
    }
}
