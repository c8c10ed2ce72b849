//! Frame Streams (fstrm), the transport dnstap readers expect: frames on a
//! byte stream, each a 4-byte big-endian length and that many bytes.
//! A length of 0 escapes a control frame (its own length, a type, and
//! fields such as the content type).
//!
//! On a unix socket the writer uses the bidirectional handshake:
//!
//! ```text
//! writer -> READY  (content type "protobuf:dnstap.Dnstap")
//! reader -> ACCEPT (the content type it takes)
//! writer -> START  (the content type), then data frames
//! writer -> STOP
//! reader -> FINISH
//! ```
//!
//! This module writes frames into caller-owned buffers and reads them from
//! borrowed bytes ([`next_frame`]): bounded (a control frame is at most
//! [`CONTROL_MAX`] bytes, as libfstrm has it), never panicking on what a
//! peer sends.

/// The content type of dnstap payloads.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// The largest control frame (after the escape and its length field).
pub const CONTROL_MAX: usize = 512;
/// The control field that carries a content type.
const FIELD_CONTENT_TYPE: u32 = 1;

/// The kinds of control frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ControlKind {
    /// Reader to writer: the content types it takes.
    Accept = 1,
    /// Writer: data frames follow.
    Start = 2,
    /// Writer: no more data frames.
    Stop = 3,
    /// Writer to reader: the content types it offers.
    Ready = 4,
    /// Reader to writer: the stream is over (after STOP).
    Finish = 5,
}

impl ControlKind {
    fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::Accept,
            2 => Self::Start,
            3 => Self::Stop,
            4 => Self::Ready,
            5 => Self::Finish,
            _ => return None,
        })
    }
}

/// Why bytes are not a well-formed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A control frame longer than [`CONTROL_MAX`] or shorter than its type.
    #[error("control frame of {0} bytes (4 to {CONTROL_MAX})")]
    ControlLength(usize),
    /// A control type fstrm does not define.
    #[error("unknown control frame type {0}")]
    UnknownControl(u32),
    /// A control field running past its frame.
    #[error("control field runs past its frame")]
    FieldLength,
    /// A data frame longer than the reader allows.
    #[error("data frame of {0} bytes is over the limit")]
    DataLength(usize),
}

/// One frame read from a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A data frame's payload.
    Data(&'a [u8]),
    /// A control frame.
    Control(Control<'a>),
}

/// A control frame: its kind and its fields, unparsed until asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control<'a> {
    /// The control type.
    pub kind: ControlKind,
    fields: &'a [u8],
}

impl<'a> Control<'a> {
    /// The content types the frame names, in order.
    pub fn content_types(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.fields;
        std::iter::from_fn(move || {
            while let Some((field, value, after)) = split_field(rest) {
                rest = after;
                if field == FIELD_CONTENT_TYPE {
                    return Some(value);
                }
            }
            None
        })
    }

    /// Whether the frame names `content_type`.
    pub fn has_content_type(&self, content_type: &[u8]) -> bool {
        self.content_types().any(|named| named == content_type)
    }
}

fn be32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// The first field of `fields`: its type, its value and what follows.
/// `None` at the end or when it runs past (checked by [`next_frame`]).
fn split_field(fields: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    let field = be32(fields)?;
    let len = be32(fields.get(4..)?)? as usize;
    let value = fields.get(8..8usize.checked_add(len)?)?;
    Some((field, value, fields.get(8 + len..)?))
}

/// Read the frame at the start of `buf`: the frame and the bytes it took,
/// or `None` while it is incomplete. Data frames over `max_data` bytes
/// are refused (a reader's buffer is bounded).
pub fn next_frame(buf: &[u8], max_data: usize) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let Some(len) = be32(buf) else {
        return Ok(None);
    };
    let len = len as usize;
    if len != 0 {
        if len > max_data {
            return Err(FrameError::DataLength(len));
        }
        return Ok(buf.get(4..4 + len).map(|data| (Frame::Data(data), 4 + len)));
    }
    let Some(control_len) = buf.get(4..).and_then(be32) else {
        return Ok(None);
    };
    let control_len = control_len as usize;
    if !(4..=CONTROL_MAX).contains(&control_len) {
        return Err(FrameError::ControlLength(control_len));
    }
    let Some(body) = buf.get(8..8 + control_len) else {
        return Ok(None);
    };
    let kind = be32(body).unwrap_or_default();
    let kind = ControlKind::from_u32(kind).ok_or(FrameError::UnknownControl(kind))?;
    let fields = body.get(4..).unwrap_or_default();
    // Every field must fit: walk them once now, so that reading them later
    // cannot stop early on a malformed one unnoticed.
    let mut rest = fields;
    while !rest.is_empty() {
        let (_, _, after) = split_field(rest).ok_or(FrameError::FieldLength)?;
        rest = after;
    }
    Ok(Some((
        Frame::Control(Control { kind, fields }),
        8 + control_len,
    )))
}

/// Append a control frame of `kind`, naming `content_type` if given.
pub fn put_control(kind: ControlKind, content_type: Option<&[u8]>, out: &mut Vec<u8>) {
    let fields_len = content_type.map_or(0, |ct| 8 + ct.len());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&((4 + fields_len) as u32).to_be_bytes());
    out.extend_from_slice(&(kind as u32).to_be_bytes());
    if let Some(content_type) = content_type {
        out.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        out.extend_from_slice(&(content_type.len() as u32).to_be_bytes());
        out.extend_from_slice(content_type);
    }
}

/// Append a data frame carrying `payload` (which must not be empty: a
/// zero length is the control escape).
pub fn put_data(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_has_the_layout_of_the_spec() {
        let mut out = Vec::new();
        put_control(ControlKind::Ready, Some(CONTENT_TYPE), &mut out);
        let mut expected = vec![0, 0, 0, 0];
        expected.extend_from_slice(&(4 + 8 + 22u32).to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 22]);
        expected.extend_from_slice(b"protobuf:dnstap.Dnstap");
        assert_eq!(out, expected);
        let (frame, used) = next_frame(&out, 0).unwrap().unwrap();
        assert_eq!(used, out.len());
        let Frame::Control(control) = frame else {
            panic!("{frame:?}");
        };
        assert_eq!(control.kind, ControlKind::Ready);
        assert!(control.has_content_type(CONTENT_TYPE));
        assert_eq!(control.content_types().count(), 1);
    }

    #[test]
    fn stop_and_finish_have_no_fields() {
        let mut out = Vec::new();
        put_control(ControlKind::Stop, None, &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
        out.clear();
        put_control(ControlKind::Finish, None, &mut out);
        let (frame, _) = next_frame(&out, 0).unwrap().unwrap();
        assert!(matches!(frame, Frame::Control(c) if c.kind == ControlKind::Finish));
    }

    #[test]
    fn data_frames_and_partial_input() {
        let mut out = Vec::new();
        put_data(b"hello", &mut out);
        put_control(ControlKind::Stop, None, &mut out);
        assert_eq!(&out[..9], b"\0\0\0\x05hello");
        for cut in 0..9 {
            assert_eq!(next_frame(&out[..cut], 64).unwrap(), None, "cut at {cut}");
        }
        let (frame, used) = next_frame(&out, 64).unwrap().unwrap();
        assert_eq!(frame, Frame::Data(b"hello"));
        let (frame, _) = next_frame(&out[used..], 64).unwrap().unwrap();
        assert!(matches!(frame, Frame::Control(c) if c.kind == ControlKind::Stop));
        assert_eq!(next_frame(&out, 4), Err(FrameError::DataLength(5)));
    }

    #[test]
    fn malformed_control_frames_are_refused() {
        // Too long, too short, unknown type, a field running past.
        let long = [0, 0, 0, 0, 0, 0, 2, 1];
        assert_eq!(next_frame(&long, 0), Err(FrameError::ControlLength(513)));
        let short = [0, 0, 0, 0, 0, 0, 0, 2, 0, 0];
        assert_eq!(next_frame(&short, 0), Err(FrameError::ControlLength(2)));
        let unknown = [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 9];
        assert_eq!(next_frame(&unknown, 0), Err(FrameError::UnknownControl(9)));
        let mut past = vec![0, 0, 0, 0, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 1];
        past.extend_from_slice(&[0, 0, 0, 200, b'x', b'y']);
        assert_eq!(next_frame(&past, 0), Err(FrameError::FieldLength));
    }
}
