//! Domain names: a zero-copy view that reads through compression pointers,
//! an owned fixed-capacity wire buffer, comparison, lower-casing and the
//! presentation format (RFC 1035 section 5.1, RFC 4343).
//!
//! Every name is validated once, when it is first parsed: a compression
//! pointer must point strictly before every byte already read for the name
//! (which rules out loops), a name has at most 255 bytes in uncompressed wire
//! form and at most 127 labels, and at most [`MAX_POINTERS`] pointers are
//! followed. After that, walking the labels of a [`Name`] cannot fail.

use core::fmt;

use arrayvec::ArrayVec;

use crate::error::{ErrorKind, Result, WireError};

/// Longest name in uncompressed wire form, including the root label.
pub const MAX_NAME_LEN: usize = 255;
/// Longest single label.
pub const MAX_LABEL_LEN: usize = 63;
/// Most labels in a name, not counting the root.
pub const MAX_LABELS: usize = 127;
/// Most compression pointers followed while reading one name. A legitimate
/// name never needs more than one pointer per label.
pub const MAX_POINTERS: usize = MAX_LABELS + 1;

/// Uncompressed wire form of a name, as used for cache keys.
pub type WireNameBuf = ArrayVec<u8, MAX_NAME_LEN>;

/// A validated name inside a message (or inside a standalone wire buffer).
///
/// It remembers where the name starts; its labels are read on demand,
/// following compression pointers. Copying a `Name` copies only the view.
#[derive(Clone, Copy)]
pub struct Name<'a> {
    message: &'a [u8],
    start: usize,
    wire_len: u8,
    label_count: u8,
    /// No compression pointer was followed: the wire bytes lie in place,
    /// `wire_len` of them from `start` (known from the parse, so a copy
    /// of the name need not walk its labels to find out).
    in_place: bool,
}

/// Parse and validate the name starting at `offset` in `message`.
///
/// Returns the name and the offset just after its in-place bytes (after the
/// root label or the first compression pointer).
#[inline]
pub(crate) fn parse_name(message: &[u8], offset: usize) -> Result<(Name<'_>, usize)> {
    let mut pos = offset;
    // Pointers must land strictly before everything read so far, so `floor`
    // only ever decreases and the walk must end.
    let mut floor = offset;
    let mut end = None;
    let mut wire_len = 0usize;
    let mut labels = 0usize;
    let mut pointers = 0usize;
    loop {
        let len_byte = *message
            .get(pos)
            .ok_or(WireError::new(ErrorKind::Truncated("name"), pos))?;
        match len_byte & 0xc0 {
            0x00 if len_byte == 0 => {
                wire_len += 1;
                let name = Name {
                    message,
                    start: offset,
                    wire_len: wire_len as u8,
                    label_count: labels as u8,
                    in_place: pointers == 0,
                };
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label_len = usize::from(len_byte);
                if pos + 1 + label_len > message.len() {
                    return Err(WireError::new(ErrorKind::Truncated("label"), message.len()));
                }
                wire_len += 1 + label_len;
                // Leave room for the root label that must still follow.
                if wire_len + 1 > MAX_NAME_LEN {
                    return Err(WireError::new(ErrorKind::NameTooLong, pos));
                }
                labels += 1;
                if labels > MAX_LABELS {
                    return Err(WireError::new(ErrorKind::TooManyLabels, pos));
                }
                pos += 1 + label_len;
            }
            0xc0 => {
                let low = *message
                    .get(pos + 1)
                    .ok_or(WireError::new(ErrorKind::Truncated("pointer"), pos + 1))?;
                let target = (usize::from(len_byte & 0x3f) << 8) | usize::from(low);
                end.get_or_insert(pos + 2);
                pointers += 1;
                if target >= floor || pointers > MAX_POINTERS {
                    return Err(WireError::new(ErrorKind::BadPointer, pos));
                }
                floor = target;
                pos = target;
            }
            0x40 => return Err(WireError::new(ErrorKind::LabelTooLong, pos)),
            _ => return Err(WireError::new(ErrorKind::BadLabelType, pos)),
        }
    }
}

impl<'a> Name<'a> {
    /// View a standalone name in uncompressed wire form, which must fill
    /// `wire` exactly.
    pub fn from_wire(wire: &'a [u8]) -> Result<Self> {
        let (name, end) = parse_name(wire, 0)?;
        if end != wire.len() {
            return Err(WireError::new(ErrorKind::BadRdata, end));
        }
        Ok(name)
    }

    /// Parse and validate the name at `offset` in `buf` (a message, or
    /// RDATA held on its own), following compression pointers. Returns the
    /// name and the offset just after its in-place bytes.
    pub fn parse_at(buf: &'a [u8], offset: usize) -> Result<(Self, usize)> {
        parse_name(buf, offset)
    }

    /// The name whose wire bytes lie in place at `start` of `message`,
    /// which a parse of it found there (no compression pointer), with its
    /// length and label count from that parse.
    pub(crate) fn in_place_at(
        message: &'a [u8],
        start: usize,
        wire_len: u8,
        label_count: u8,
    ) -> Self {
        Name {
            message,
            start,
            wire_len,
            label_count,
            in_place: true,
        }
    }

    /// Whether no compression pointer was followed to read it.
    pub(crate) fn is_in_place(&self) -> bool {
        self.in_place
    }

    /// The root name `.`.
    pub const fn root() -> Name<'static> {
        Name {
            message: &[0],
            start: 0,
            wire_len: 1,
            label_count: 0,
            in_place: true,
        }
    }

    /// Length in uncompressed wire form, including the root label (1..=255).
    pub fn wire_len(&self) -> usize {
        usize::from(self.wire_len)
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        usize::from(self.label_count)
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.label_count == 0
    }

    /// Offset of the name's first byte in the buffer it was parsed from.
    pub fn offset(&self) -> usize {
        self.start
    }

    /// The labels from left to right, without the root, as raw bytes.
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            message: self.message,
            pos: self.start,
            remaining: self.label_count,
        }
    }

    /// When the name is stored without compression pointers, its wire bytes
    /// in place; this is the common case for the question of a query.
    fn contiguous(&self) -> Option<&'a [u8]> {
        if !self.in_place {
            return None;
        }
        self.message.get(self.start..self.start + self.wire_len())
    }

    /// Case-insensitive equality (RFC 4343): ASCII letters compare equal
    /// regardless of case; all other bytes must match exactly.
    pub fn eq_ignore_case(&self, other: &Name<'_>) -> bool {
        self.wire_len == other.wire_len
            && self.label_count == other.label_count
            && self
                .labels()
                .zip(other.labels())
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Case-sensitive, byte-for-byte equality of the uncompressed names.
    pub fn eq_exact(&self, other: &Name<'_>) -> bool {
        self.wire_len == other.wire_len
            && self.label_count == other.label_count
            && self.labels().zip(other.labels()).all(|(a, b)| a == b)
    }

    /// Write the uncompressed wire form, letter case preserved, replacing
    /// what `out` held.
    pub fn write_wire(&self, out: &mut WireNameBuf) {
        self.write_into(out, false);
    }

    /// Write the lower-cased uncompressed wire form (the cache key form),
    /// replacing what `out` held. Never allocates.
    pub fn write_lower(&self, out: &mut WireNameBuf) {
        self.write_into(out, true);
    }

    fn write_into(&self, out: &mut WireNameBuf, lower: bool) {
        out.clear();
        if let Some(bytes) = self.contiguous() {
            append(out, bytes, lower);
            return;
        }
        for label in self.labels() {
            let _fits = out.try_push(label.len() as u8);
            append(out, label, lower);
        }
        let _fits = out.try_push(0);
    }

    /// Whether `self` equals `ancestor` or lies below it (case-insensitive).
    pub fn is_subdomain_of(&self, ancestor: &Name<'_>) -> bool {
        if ancestor.label_count > self.label_count || ancestor.wire_len > self.wire_len {
            return false;
        }
        let skip = usize::from(self.label_count - ancestor.label_count);
        self.labels()
            .skip(skip)
            .zip(ancestor.labels())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

/// Append `bytes` to `out`, lower-cased when `lower` (ASCII letters only;
/// length bytes are below 64 and so unaffected). Lower-cased on the way in,
/// 16 bytes at a time through a register-sized buffer: lower-casing the
/// copy in place read it back in pieces that straddle the copy's stores,
/// which the CPU cannot forward (a stall per name, a tenth of a cache
/// hit's own time in the resolver bench). What does not fit is dropped
/// (a name is at most 255 bytes, the buffer's size).
fn append(out: &mut WireNameBuf, bytes: &[u8], lower: bool) {
    if !lower {
        let _fits = out.try_extend_from_slice(bytes);
        return;
    }
    for chunk in bytes.chunks(16) {
        let mut lowered = [0u8; 16];
        for (to, from) in lowered.iter_mut().zip(chunk) {
            *to = from.to_ascii_lowercase();
        }
        let _fits = out.try_extend_from_slice(lowered.get(..chunk.len()).unwrap_or(&[]));
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

/// Presentation format: labels separated by dots, with a trailing dot; `.`
/// for the root. Dots, backslashes and the characters that are special in
/// master files are escaped with a backslash, and bytes outside printable
/// ASCII as `\DDD`.
impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            write_label(f, label)?;
            f.write_str(".")?;
        }
        Ok(())
    }
}

fn write_label(f: &mut fmt::Formatter<'_>, label: &[u8]) -> fmt::Result {
    use fmt::Write as _;
    for &byte in label {
        match byte {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                f.write_char('\\')?;
                f.write_char(char::from(byte))?;
            }
            0x21..=0x7e => f.write_char(char::from(byte))?,
            _ => write!(f, "\\{byte:03}")?,
        }
    }
    Ok(())
}

/// Iterator over the labels of a validated [`Name`], following pointers.
#[derive(Clone)]
pub struct Labels<'a> {
    message: &'a [u8],
    pos: usize,
    remaining: u8,
}

impl<'a> Labels<'a> {
    /// Labels of an already validated name at `pos` in `message`.
    pub(crate) fn at(message: &'a [u8], pos: usize, labels: u8) -> Self {
        Self {
            message,
            pos,
            remaining: labels,
        }
    }
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        // The name was validated when parsed, so pointers lead strictly
        // backwards and are bounded; `remaining` bounds the walk regardless.
        for _ in 0..=MAX_POINTERS {
            let len_byte = *self.message.get(self.pos)?;
            if len_byte >= 0xc0 {
                let low = *self.message.get(self.pos + 1)?;
                self.pos = (usize::from(len_byte & 0x3f) << 8) | usize::from(low);
                continue;
            }
            let start = self.pos + 1;
            let label = self.message.get(start..start + usize::from(len_byte))?;
            self.pos = start + label.len();
            self.remaining -= 1;
            return Some(label);
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.remaining)))
    }
}

/// An owned name in uncompressed wire form (at most 255 bytes, on the
/// stack), always valid. Used for names that come from configuration, zone
/// files and tests rather than from a message.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NameBuf {
    wire: WireNameBuf,
}

impl NameBuf {
    /// The root name.
    pub fn root() -> Self {
        let mut wire = WireNameBuf::new();
        wire.push(0);
        Self { wire }
    }

    /// Copy a name view into an owned buffer, letter case preserved.
    pub fn from_name(name: &Name<'_>) -> Self {
        let mut wire = WireNameBuf::new();
        name.write_wire(&mut wire);
        Self { wire }
    }

    /// Validate an uncompressed wire-form name.
    pub fn from_wire(bytes: &[u8]) -> Result<Self> {
        let name = Name::from_wire(bytes)?;
        Ok(Self::from_name(&name))
    }

    /// Parse a name in presentation format (`www.example.com.`, `\.` and
    /// `\DDD` escapes). The name is taken as absolute whether or not it ends
    /// in a dot; `.` alone is the root.
    pub fn from_presentation(text: &str) -> Result<Self> {
        let bad = |at: usize, kind: ErrorKind| WireError::new(kind, at);
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return Err(bad(0, ErrorKind::BadPresentation));
        }
        if bytes == b"." {
            return Ok(Self::root());
        }
        let mut wire = WireNameBuf::new();
        let mut label = ArrayVec::<u8, MAX_LABEL_LEN>::new();
        let mut labels = 0usize;
        let mut pos = 0usize;
        let mut finish_label = |label: &mut ArrayVec<u8, MAX_LABEL_LEN>,
                                wire: &mut WireNameBuf,
                                at: usize|
         -> Result<()> {
            if label.is_empty() {
                return Err(bad(at, ErrorKind::BadPresentation));
            }
            labels += 1;
            if labels > MAX_LABELS {
                return Err(bad(at, ErrorKind::TooManyLabels));
            }
            // Keep one byte for the root label.
            if wire.len() + 1 + label.len() + 1 > MAX_NAME_LEN {
                return Err(bad(at, ErrorKind::NameTooLong));
            }
            wire.push(label.len() as u8);
            wire.extend(label.drain(..));
            Ok(())
        };
        while let Some(&byte) = bytes.get(pos) {
            let value = match byte {
                b'.' => {
                    finish_label(&mut label, &mut wire, pos)?;
                    pos += 1;
                    continue;
                }
                b'\\' => match bytes.get(pos + 1..pos + 4) {
                    Some(digits) if digits.iter().all(u8::is_ascii_digit) => {
                        let value = digits
                            .iter()
                            .fold(0u16, |acc, digit| acc * 10 + u16::from(digit - b'0'));
                        pos += 4;
                        u8::try_from(value).map_err(|_| bad(pos - 3, ErrorKind::BadPresentation))?
                    }
                    _ => {
                        let escaped = *bytes
                            .get(pos + 1)
                            .ok_or(bad(pos, ErrorKind::BadPresentation))?;
                        if escaped.is_ascii_digit() {
                            return Err(bad(pos, ErrorKind::BadPresentation));
                        }
                        pos += 2;
                        escaped
                    }
                },
                _ => {
                    pos += 1;
                    byte
                }
            };
            label
                .try_push(value)
                .map_err(|_| bad(pos, ErrorKind::LabelTooLong))?;
        }
        if !label.is_empty() {
            finish_label(&mut label, &mut wire, pos)?;
        }
        wire.push(0);
        Ok(Self { wire })
    }

    /// The uncompressed wire bytes.
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    /// A view of this name, for the builder and for comparisons.
    pub fn as_name(&self) -> Name<'_> {
        // The buffer is valid by construction; `from_wire` cannot fail, but
        // fall back to the root rather than panic.
        Name::from_wire(&self.wire).unwrap_or(Name::root())
    }

    /// The lower-cased form of this name.
    pub fn to_lowercase(&self) -> Self {
        let mut wire = self.wire.clone();
        wire.make_ascii_lowercase();
        Self { wire }
    }
}

impl fmt::Display for NameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_name(), f)
    }
}

impl fmt::Debug for NameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameBuf({self})")
    }
}

impl core::str::FromStr for NameBuf {
    type Err = WireError;

    fn from_str(text: &str) -> Result<Self> {
        Self::from_presentation(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_at(message: &[u8], offset: usize) -> Result<(Name<'_>, usize)> {
        parse_name(message, offset)
    }

    #[test]
    fn lower_casing_copies_every_length_whole() {
        // Wire lengths around the 16-byte steps of the copy, up to the
        // longest name; letters of both cases, digits and a byte above
        // ASCII (left alone).
        for wire_len in [1usize, 15, 16, 17, 31, 32, 33, 64, 254, 255] {
            let mut wire = Vec::new();
            let mut left = wire_len - 1;
            while left > 0 {
                let label = (left - 1).min(MAX_LABEL_LEN);
                wire.push(label as u8);
                wire.extend((0..label).map(|i| b"aZ9\xc3Q"[i % 5]));
                left -= label + 1;
            }
            wire.push(0);
            let (name, _) = parse_at(&wire, 0).unwrap();
            assert_eq!(name.wire_len(), wire_len);
            let mut out = WireNameBuf::new();
            out.try_extend_from_slice(b"left over").unwrap();
            name.write_lower(&mut out);
            assert_eq!(&out[..], &wire.to_ascii_lowercase()[..], "{wire_len}");
            name.write_wire(&mut out);
            assert_eq!(&out[..], &wire[..], "{wire_len}");
        }
        // A compressed name is copied label by label, lower-cased the same.
        let message = b"\x07ExAmPlE\x03CoM\x00\x04MaIl\xc0\x00";
        let (name, _) = parse_at(message, 13).unwrap();
        let mut out = WireNameBuf::new();
        name.write_lower(&mut out);
        assert_eq!(&out[..], b"\x04mail\x07example\x03com\x00");
        name.write_wire(&mut out);
        assert_eq!(&out[..], b"\x04MaIl\x07ExAmPlE\x03CoM\x00");
    }

    #[test]
    fn plain_name_parses_and_prints() {
        let wire = b"\x03www\x07Example\x03com\x00";
        let (name, end) = parse_at(wire, 0).unwrap();
        assert_eq!(end, wire.len());
        assert_eq!(name.wire_len(), wire.len());
        assert_eq!(name.label_count(), 3);
        assert_eq!(name.to_string(), "www.Example.com.");
        let labels: Vec<&[u8]> = name.labels().collect();
        assert_eq!(labels, [&b"www"[..], b"Example", b"com"]);
    }

    #[test]
    fn root_name() {
        let (name, end) = parse_at(b"\x00", 0).unwrap();
        assert!(name.is_root());
        assert_eq!(end, 1);
        assert_eq!(name.to_string(), ".");
        assert_eq!(Name::root().to_string(), ".");
    }

    #[test]
    fn compression_pointer_is_followed() {
        // "example.com" at 0, then "www" + pointer to 0 at 13.
        let mut message = b"\x07example\x03com\x00".to_vec();
        message.extend_from_slice(b"\x03www\xc0\x00");
        let (name, end) = parse_at(&message, 13).unwrap();
        assert_eq!(end, message.len());
        assert_eq!(name.to_string(), "www.example.com.");
        assert_eq!(name.wire_len(), 17);
        let mut lower = WireNameBuf::new();
        name.write_lower(&mut lower);
        assert_eq!(&lower[..], b"\x03www\x07example\x03com\x00");
    }

    #[test]
    fn pointer_to_itself_is_rejected() {
        let message = b"\xc0\x00";
        let err = parse_at(message, 0).unwrap_err();
        assert_eq!(err, WireError::new(ErrorKind::BadPointer, 0));
    }

    #[test]
    fn pointer_loop_is_rejected() {
        // At 0: label "a" then pointer to 4; at 4: pointer back to 0. The
        // second pointer targets bytes already read, so it is refused.
        let message = b"\x01a\xc0\x04\xc0\x00";
        let err = parse_at(message, 0).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadPointer);
        // Entering in the middle of the loop fails too.
        assert_eq!(
            parse_at(message, 4).unwrap_err().kind,
            ErrorKind::BadPointer
        );
    }

    #[test]
    fn forward_pointer_is_rejected() {
        let message = b"\x03www\xc0\x06\x00";
        let err = parse_at(message, 0).unwrap_err();
        assert_eq!(err, WireError::new(ErrorKind::BadPointer, 4));
    }

    #[test]
    fn pointer_into_the_name_being_read_is_rejected() {
        // "a" at 2 followed by a pointer to 2: reading from 2 would loop.
        let message = b"\x00\x00\x01a\xc0\x02";
        assert_eq!(
            parse_at(message, 2).unwrap_err().kind,
            ErrorKind::BadPointer
        );
    }

    #[test]
    fn long_pointer_chains_are_bounded() {
        // 200 pointers each to the previous one, ending at a root label.
        let mut message = vec![0u8];
        for index in 0..200u16 {
            let target = if index == 0 { 0 } else { 1 + (index - 1) * 2 };
            message.extend_from_slice(&(0xc000 | target).to_be_bytes());
        }
        let last = message.len() - 2;
        assert_eq!(
            parse_at(&message, last).unwrap_err().kind,
            ErrorKind::BadPointer
        );
        // A short chain is fine.
        assert!(parse_at(&message, 1 + 2 * 10).is_ok());
    }

    #[test]
    fn label_over_63_is_rejected() {
        let mut message = vec![64u8];
        message.extend_from_slice(&[b'a'; 64]);
        message.push(0);
        assert_eq!(
            parse_at(&message, 0).unwrap_err(),
            WireError::new(ErrorKind::LabelTooLong, 0)
        );
        let mut ok = vec![63u8];
        ok.extend_from_slice(&[b'a'; 63]);
        ok.push(0);
        assert!(parse_at(&ok, 0).is_ok());
    }

    #[test]
    fn reserved_label_type_is_rejected() {
        assert_eq!(
            parse_at(b"\x80\x00", 0).unwrap_err().kind,
            ErrorKind::BadLabelType
        );
    }

    #[test]
    fn name_over_255_is_rejected() {
        // Four 63-byte labels: 4 * 64 + 1 = 257 bytes.
        let mut message = Vec::new();
        for _ in 0..4 {
            message.push(63);
            message.extend_from_slice(&[b'x'; 63]);
        }
        message.push(0);
        assert_eq!(
            parse_at(&message, 0).unwrap_err().kind,
            ErrorKind::NameTooLong
        );
        // Exactly 255: three 63-byte labels and one 61-byte label.
        let mut exact = Vec::new();
        for len in [63u8, 63, 63, 61] {
            exact.push(len);
            exact.extend(std::iter::repeat_n(b'y', usize::from(len)));
        }
        exact.push(0);
        assert_eq!(exact.len(), 255);
        assert_eq!(parse_at(&exact, 0).unwrap().0.wire_len(), 255);
    }

    #[test]
    fn name_over_255_through_pointers_is_rejected() {
        // 200 bytes of labels, then a second name adds 60 more via a pointer.
        let mut message = Vec::new();
        for _ in 0..4 {
            message.push(49);
            message.extend_from_slice(&[b'a'; 49]);
        }
        message.push(0);
        let second = message.len();
        message.push(59);
        message.extend_from_slice(&[b'b'; 59]);
        message.extend_from_slice(&[0xc0, 0x00]);
        assert!(parse_at(&message, 0).is_ok());
        assert_eq!(
            parse_at(&message, second).unwrap_err().kind,
            ErrorKind::NameTooLong
        );
    }

    #[test]
    fn more_than_127_labels_is_rejected() {
        // 128 one-byte labels "a" would be 257 bytes; the length check would
        // fire first, so build them with empty-ish content through the limit:
        // 127 labels of 1 byte = 254 bytes + root = 255 (allowed).
        let mut message = Vec::new();
        for _ in 0..127 {
            message.extend_from_slice(b"\x01a");
        }
        message.push(0);
        let (name, _) = parse_at(&message, 0).unwrap();
        assert_eq!(name.label_count(), 127);
        assert_eq!(name.wire_len(), 255);
        // One more label exceeds both limits; the name is refused.
        let mut over = b"\x01a".to_vec();
        over.extend_from_slice(&message);
        assert!(matches!(
            parse_at(&over, 0).unwrap_err().kind,
            ErrorKind::NameTooLong | ErrorKind::TooManyLabels
        ));
    }

    #[test]
    fn truncated_names_are_rejected() {
        assert_eq!(
            parse_at(b"\x03ww", 0).unwrap_err().kind,
            ErrorKind::Truncated("label")
        );
        assert_eq!(
            parse_at(b"\x03www", 0).unwrap_err().kind,
            ErrorKind::Truncated("name")
        );
        assert_eq!(
            parse_at(b"\xc0", 0).unwrap_err().kind,
            ErrorKind::Truncated("pointer")
        );
        assert_eq!(
            parse_at(b"", 0).unwrap_err().kind,
            ErrorKind::Truncated("name")
        );
    }

    #[test]
    fn case_insensitive_comparison() {
        let a = NameBuf::from_presentation("WWW.Example.COM").unwrap();
        let b = NameBuf::from_presentation("www.example.com.").unwrap();
        let c = NameBuf::from_presentation("www.example.org.").unwrap();
        assert!(a.as_name().eq_ignore_case(&b.as_name()));
        assert!(!a.as_name().eq_exact(&b.as_name()));
        assert!(!a.as_name().eq_ignore_case(&c.as_name()));
        // Only ASCII letters fold: 0xC1 and 0xE1 stay different.
        let d = NameBuf::from_wire(b"\x01\xc1\x00").unwrap();
        let e = NameBuf::from_wire(b"\x01\xe1\x00").unwrap();
        assert!(!d.as_name().eq_ignore_case(&e.as_name()));
    }

    #[test]
    fn lower_casing_touches_only_letters() {
        let name = NameBuf::from_wire(b"\x04A-Z\xc1\x03COM\x00").unwrap();
        let mut out = WireNameBuf::new();
        out.push(9); // stale content must be replaced
        name.as_name().write_lower(&mut out);
        assert_eq!(&out[..], b"\x04a-z\xc1\x03com\x00");
    }

    #[test]
    fn presentation_escapes_round_trip() {
        let wire = b"\x07a.b\\c d\x03\x00\xff\x01\x01\"\x00";
        let name = NameBuf::from_wire(wire).unwrap();
        let text = name.to_string();
        assert_eq!(text, "a\\.b\\\\c\\032d.\\000\\255\\001.\\\".");
        let parsed = NameBuf::from_presentation(&text).unwrap();
        assert_eq!(parsed.as_wire(), wire);
    }

    #[test]
    fn presentation_errors() {
        for bad in ["", "a..b", ".a", "\\256.com", "a\\", "\\12"] {
            assert!(
                NameBuf::from_presentation(bad).is_err(),
                "{bad:?} should fail"
            );
        }
        let long_label = "x".repeat(64);
        assert_eq!(
            NameBuf::from_presentation(&long_label).unwrap_err().kind,
            ErrorKind::LabelTooLong
        );
        let long_name = ["y".repeat(63).as_str(); 4].join(".");
        assert_eq!(
            NameBuf::from_presentation(&long_name).unwrap_err().kind,
            ErrorKind::NameTooLong
        );
    }

    #[test]
    fn subdomain_test() {
        let child = NameBuf::from_presentation("a.B.example.com").unwrap();
        let parent = NameBuf::from_presentation("b.EXAMPLE.com").unwrap();
        let other = NameBuf::from_presentation("c.example.com").unwrap();
        assert!(child.as_name().is_subdomain_of(&parent.as_name()));
        assert!(parent.as_name().is_subdomain_of(&parent.as_name()));
        assert!(child.as_name().is_subdomain_of(&NameBuf::root().as_name()));
        assert!(!child.as_name().is_subdomain_of(&other.as_name()));
        assert!(!parent.as_name().is_subdomain_of(&child.as_name()));
    }
}
