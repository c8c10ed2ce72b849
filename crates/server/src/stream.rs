//! DNS messages over a byte stream (RFC 7766; RFC 7858 uses the same
//! framing): the 2-byte length prefix, the edns-tcp-keepalive option
//! (RFC 7828), and a deadline helper. Shared by the client and upstream
//! TCP transports, and by TLS when it comes. No I/O of its own.

use std::future::Future;
use std::time::Instant;

use heimdall_wire::Message;

/// EDNS option code of edns-tcp-keepalive (RFC 7828).
const KEEPALIVE_OPTION: u16 = 11;

/// `message` with its 2-byte length prefix, and with edns-tcp-keepalive
/// added to its OPT record when `keepalive` is given.
pub(crate) fn frame(message: &[u8], keepalive: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    frame_into(&mut out, message, keepalive);
    out
}

/// [`frame`] into `out`, replacing what it held (and reusing its memory).
pub(crate) fn frame_into(out: &mut Vec<u8>, message: &[u8], keepalive: Option<u16>) {
    out.clear();
    out.reserve(message.len() + 8);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(message);
    if let Some(units) = keepalive {
        add_keepalive(out, units);
    }
    let len = u16::try_from(out.len() - 2).unwrap_or(u16::MAX);
    if let Some(prefix) = out.get_mut(..2) {
        prefix.copy_from_slice(&len.to_be_bytes());
    }
}

/// Append edns-tcp-keepalive with `units` (of 100 ms) to the OPT record of
/// the message in `framed[2..]`, when that OPT is the message's last
/// record (as in every reply heimdall writes) and there is room.
fn add_keepalive(framed: &mut Vec<u8>, units: u16) {
    let Some(message) = framed.get(2..) else {
        return;
    };
    let Ok(parsed) = Message::parse(message) else {
        return;
    };
    let Some(opt) = parsed.opt() else {
        return;
    };
    if opt.options().any(|option| option.code == KEEPALIVE_OPTION) {
        return;
    }
    // Root owner (1), type (2), class (2), TTL (4), then RDLENGTH.
    let rdlength_at = 2 + opt.record_offset() + 9;
    let Some(rdlength) = framed
        .get(rdlength_at..rdlength_at + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(|b| usize::from(u16::from_be_bytes(b)))
    else {
        return;
    };
    if rdlength_at + 2 + rdlength != framed.len() || framed.len() - 2 + 6 > usize::from(u16::MAX) {
        return;
    }
    let Ok(new_rdlength) = u16::try_from(rdlength + 6) else {
        return;
    };
    if let Some(field) = framed.get_mut(rdlength_at..rdlength_at + 2) {
        field.copy_from_slice(&new_rdlength.to_be_bytes());
    }
    framed.extend_from_slice(&KEEPALIVE_OPTION.to_be_bytes());
    framed.extend_from_slice(&2u16.to_be_bytes());
    framed.extend_from_slice(&units.to_be_bytes());
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
        let plain = frame(&reply, None);
        assert_eq!(
            usize::from(u16::from_be_bytes([plain[0], plain[1]])),
            reply.len()
        );
        let framed = frame(&reply, Some(100));
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
        assert_eq!(frame(&no_opt, Some(100)).len(), no_opt.len() + 2);
    }
}
