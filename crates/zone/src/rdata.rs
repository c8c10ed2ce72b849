//! Presentation-format RDATA to uncompressed wire form.

use core::net::{Ipv4Addr, Ipv6Addr};

use heimdall_wire::{NameBuf, RecordType};

use crate::lexer::Token;

/// An RDATA error: the line and what was wrong.
pub(crate) type RdataError = (usize, String);

/// Parse a domain name token relative to `origin`. Without an origin, a
/// relative name is an error unless `root_default` is set (then it is
/// taken as absolute).
pub(crate) fn parse_name(
    token: &Token,
    origin: Option<&NameBuf>,
    root_default: bool,
) -> Result<NameBuf, RdataError> {
    let fail = |what: String| (token.line, what);
    if token.quoted {
        return Err(fail(format!(
            "quoted string \"{}\" where a name was expected",
            token.text
        )));
    }
    let text = token.text.as_str();
    if text == "@" {
        return origin
            .cloned()
            .ok_or_else(|| fail("'@' used without an origin".to_owned()));
    }
    let trailing_backslashes = text
        .strip_suffix('.')
        .map(|rest| rest.bytes().rev().take_while(|&b| b == b'\\').count());
    let absolute = trailing_backslashes.is_some_and(|count| count % 2 == 0);
    let parsed = NameBuf::from_presentation(text)
        .map_err(|err| fail(format!("bad name {text:?}: {err}")))?;
    if absolute {
        return Ok(parsed);
    }
    let Some(origin) = origin else {
        if root_default {
            return Ok(parsed);
        }
        return Err(fail(format!("relative name {text:?} without an origin")));
    };
    let relative = parsed.as_wire();
    let mut wire = relative
        .get(..relative.len().saturating_sub(1))
        .unwrap_or_default()
        .to_vec();
    wire.extend_from_slice(origin.as_wire());
    NameBuf::from_wire(&wire).map_err(|err| fail(format!("name {text:?} too long: {err}")))
}

/// Decode `\DDD` and `\X` escapes of a character-string.
pub(crate) fn decode_text(token: &Token) -> Result<Vec<u8>, RdataError> {
    let bytes = token.text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut pos = 0usize;
    while let Some(&byte) = bytes.get(pos) {
        if byte != b'\\' {
            out.push(byte);
            pos += 1;
            continue;
        }
        match bytes.get(pos + 1..pos + 4) {
            Some(digits) if digits.iter().all(u8::is_ascii_digit) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, digit| acc * 10 + u32::from(digit - b'0'));
                let value = u8::try_from(value)
                    .map_err(|_| (token.line, format!("escape \\{value} is above 255")))?;
                out.push(value);
                pos += 4;
            }
            _ => match bytes.get(pos + 1) {
                Some(digit) if digit.is_ascii_digit() => {
                    return Err((token.line, "a \\DDD escape needs three digits".to_owned()));
                }
                Some(&next) => {
                    out.push(next);
                    pos += 2;
                }
                None => return Err((token.line, "backslash at end of string".to_owned())),
            },
        }
    }
    Ok(out)
}

/// A TTL: seconds, or BIND-style units (`1h30m`, `2d`, `1w`).
pub(crate) fn parse_ttl(text: &str) -> Option<u32> {
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if let Ok(value) = text.parse::<u32>() {
        return Some(value);
    }
    let mut total = 0u64;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(digit))?,
            );
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    if number.is_some() {
        return None;
    }
    u32::try_from(total).ok()
}

/// An RRSIG time (RFC 4034 section 3.2): `YYYYMMDDHHmmSS` in UTC, or the
/// seconds since the epoch as a plain number; kept modulo 2^32.
pub(crate) fn parse_dnssec_time(text: &str) -> Option<u32> {
    if !text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty() {
        return None;
    }
    if text.len() != 14 {
        return text.parse::<u32>().ok();
    }
    let number = |range: core::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(8..10)?, number(10..12)?, number(12..14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), shifted so the year
    // starts in March and the leap day falls last.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some(seconds.rem_euclid(1 << 32) as u32)
}

struct Fields<'t> {
    tokens: &'t [Token],
    pos: usize,
    line: usize,
}

impl<'t> Fields<'t> {
    fn next(&mut self, what: &str) -> Result<&'t Token, RdataError> {
        let token = self
            .tokens
            .get(self.pos)
            .ok_or_else(|| (self.line, format!("missing {what}")))?;
        self.pos += 1;
        Ok(token)
    }

    fn number<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, RdataError> {
        let token = self.next(what)?;
        token
            .text
            .parse::<u64>()
            .ok()
            .and_then(|value| T::try_from(value).ok())
            .filter(|_| !token.quoted)
            .ok_or_else(|| (token.line, format!("bad {what} {:?}", token.text)))
    }

    fn ttl_like(&mut self, what: &str) -> Result<u32, RdataError> {
        let token = self.next(what)?;
        parse_ttl(&token.text).ok_or_else(|| (token.line, format!("bad {what} {:?}", token.text)))
    }

    fn name(
        &mut self,
        what: &str,
        origin: Option<&NameBuf>,
        out: &mut Vec<u8>,
    ) -> Result<(), RdataError> {
        let token = self.next(what)?;
        out.extend_from_slice(parse_name(token, origin, false)?.as_wire());
        Ok(())
    }

    fn char_string(&mut self, what: &str, out: &mut Vec<u8>) -> Result<(), RdataError> {
        let token = self.next(what)?;
        push_char_string(token, out)
    }

    /// All remaining tokens, concatenated (white space is allowed inside
    /// base64 and hex fields) and decoded with `encoding`.
    fn rest_encoded(
        &mut self,
        what: &str,
        encoding: &data_encoding::Encoding,
        out: &mut Vec<u8>,
    ) -> Result<(), RdataError> {
        let mut text = String::new();
        while let Some(token) = self.tokens.get(self.pos) {
            text.push_str(&token.text);
            self.pos += 1;
        }
        let bytes = encoding
            .decode(text.as_bytes())
            .ok()
            .filter(|bytes| !bytes.is_empty())
            .ok_or_else(|| (self.line, format!("bad {what} {text:?}")))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    /// An NSEC3 salt: hex, or `-` for none, with its length byte.
    fn salt(&mut self, out: &mut Vec<u8>) -> Result<(), RdataError> {
        let token = self.next("NSEC3 salt")?;
        let salt = if token.text == "-" {
            Vec::new()
        } else {
            data_encoding::HEXUPPER_PERMISSIVE
                .decode(token.text.as_bytes())
                .map_err(|_| (token.line, format!("bad NSEC3 salt {:?}", token.text)))?
        };
        let len = u8::try_from(salt.len())
            .map_err(|_| (token.line, "NSEC3 salt longer than 255 bytes".to_owned()))?;
        out.push(len);
        out.extend_from_slice(&salt);
        Ok(())
    }

    /// The remaining tokens as type mnemonics, encoded as the NSEC type
    /// bitmap (RFC 4034 section 4.1.2).
    fn type_bitmap(&mut self, out: &mut Vec<u8>) -> Result<(), RdataError> {
        let mut types = Vec::new();
        while let Some(token) = self.tokens.get(self.pos) {
            let rtype = RecordType::from_mnemonic(&token.text)
                .ok_or_else(|| (token.line, format!("unknown type {:?}", token.text)))?;
            types.push(rtype.0);
            self.pos += 1;
        }
        types.sort_unstable();
        types.dedup();
        let mut window_start = out.len();
        let mut current: Option<u8> = None;
        for value in types {
            let [window, low] = value.to_be_bytes();
            if current != Some(window) {
                current = Some(window);
                window_start = out.len();
                out.extend_from_slice(&[window, 0]);
            }
            let octet = usize::from(low / 8);
            let len_at = window_start + 1;
            let have = out.get(len_at).map_or(0, |&len| usize::from(len));
            if have < octet + 1 {
                out.resize(window_start + 2 + octet + 1, 0);
                if let Some(len) = out.get_mut(len_at) {
                    *len = (octet + 1) as u8;
                }
            }
            if let Some(byte) = out.get_mut(window_start + 2 + octet) {
                *byte |= 0x80 >> (low % 8);
            }
        }
        Ok(())
    }

    fn end(&self) -> Result<(), RdataError> {
        match self.tokens.get(self.pos) {
            None => Ok(()),
            Some(extra) => Err((
                extra.line,
                format!("unexpected {:?} after the RDATA", extra.text),
            )),
        }
    }
}

fn push_char_string(token: &Token, out: &mut Vec<u8>) -> Result<(), RdataError> {
    let bytes = decode_text(token)?;
    let len = u8::try_from(bytes.len()).map_err(|_| {
        (
            token.line,
            "character-string longer than 255 bytes".to_owned(),
        )
    })?;
    out.push(len);
    out.extend_from_slice(&bytes);
    Ok(())
}

/// RFC 3597 `\# length hex...`.
fn generic(fields: &mut Fields<'_>) -> Result<Vec<u8>, RdataError> {
    let len: usize = fields.number("generic RDATA length")?;
    let mut hex = String::new();
    while let Some(token) = fields.tokens.get(fields.pos) {
        hex.push_str(&token.text);
        fields.pos += 1;
    }
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err((fields.line, format!("bad hex in generic RDATA {hex:?}")));
    }
    let bytes: Vec<u8> = hex
        .as_bytes()
        .chunks(2)
        .filter_map(|pair| core::str::from_utf8(pair).ok())
        .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
        .collect();
    if bytes.len() != len {
        return Err((
            fields.line,
            format!(
                "generic RDATA length {len} but {} bytes of hex",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// Encode the RDATA tokens of a record of type `rtype`.
pub(crate) fn encode(
    rtype: RecordType,
    tokens: &[Token],
    origin: Option<&NameBuf>,
    line: usize,
) -> Result<Vec<u8>, RdataError> {
    let mut fields = Fields {
        tokens,
        pos: 0,
        line,
    };
    if tokens
        .first()
        .is_some_and(|token| !token.quoted && token.text == "\\#")
    {
        fields.pos = 1;
        return generic(&mut fields);
    }
    let mut out = Vec::new();
    match rtype {
        RecordType::A => {
            let token = fields.next("IPv4 address")?;
            let address: Ipv4Addr = token
                .text
                .parse()
                .map_err(|_| (token.line, format!("bad IPv4 address {:?}", token.text)))?;
            out.extend_from_slice(&address.octets());
        }
        RecordType::AAAA => {
            let token = fields.next("IPv6 address")?;
            let address: Ipv6Addr = token
                .text
                .parse()
                .map_err(|_| (token.line, format!("bad IPv6 address {:?}", token.text)))?;
            out.extend_from_slice(&address.octets());
        }
        RecordType::NS | RecordType::CNAME | RecordType::DNAME | RecordType::PTR => {
            fields.name("target name", origin, &mut out)?;
        }
        RecordType::MX => {
            out.extend_from_slice(&fields.number::<u16>("MX preference")?.to_be_bytes());
            fields.name("MX exchange", origin, &mut out)?;
        }
        RecordType::TXT => {
            fields.char_string("TXT string", &mut out)?;
            while let Some(token) = tokens.get(fields.pos) {
                push_char_string(token, &mut out)?;
                fields.pos += 1;
            }
        }
        RecordType::SOA => {
            fields.name("SOA MNAME", origin, &mut out)?;
            fields.name("SOA RNAME", origin, &mut out)?;
            out.extend_from_slice(&fields.number::<u32>("SOA serial")?.to_be_bytes());
            for what in ["SOA refresh", "SOA retry", "SOA expire", "SOA minimum"] {
                out.extend_from_slice(&fields.ttl_like(what)?.to_be_bytes());
            }
        }
        RecordType::SRV => {
            for what in ["SRV priority", "SRV weight", "SRV port"] {
                out.extend_from_slice(&fields.number::<u16>(what)?.to_be_bytes());
            }
            fields.name("SRV target", origin, &mut out)?;
        }
        RecordType::CAA => {
            out.push(fields.number::<u8>("CAA flags")?);
            let tag = fields.next("CAA tag")?;
            if tag.quoted
                || tag.text.is_empty()
                || !tag.text.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err((tag.line, format!("bad CAA tag {:?}", tag.text)));
            }
            let tag_len = u8::try_from(tag.text.len())
                .map_err(|_| (tag.line, "CAA tag too long".to_owned()))?;
            out.push(tag_len);
            out.extend_from_slice(tag.text.as_bytes());
            let value = fields.next("CAA value")?;
            out.extend_from_slice(&decode_text(value)?);
        }
        RecordType::HINFO => {
            fields.char_string("HINFO CPU", &mut out)?;
            fields.char_string("HINFO OS", &mut out)?;
        }
        RecordType::NAPTR => {
            out.extend_from_slice(&fields.number::<u16>("NAPTR order")?.to_be_bytes());
            out.extend_from_slice(&fields.number::<u16>("NAPTR preference")?.to_be_bytes());
            fields.char_string("NAPTR flags", &mut out)?;
            fields.char_string("NAPTR services", &mut out)?;
            fields.char_string("NAPTR regexp", &mut out)?;
            fields.name("NAPTR replacement", origin, &mut out)?;
        }
        RecordType::DS => {
            out.extend_from_slice(&fields.number::<u16>("DS key tag")?.to_be_bytes());
            out.push(fields.number::<u8>("DS algorithm")?);
            out.push(fields.number::<u8>("DS digest type")?);
            fields.rest_encoded("DS digest", &data_encoding::HEXUPPER_PERMISSIVE, &mut out)?;
        }
        RecordType::DNSKEY => {
            out.extend_from_slice(&fields.number::<u16>("DNSKEY flags")?.to_be_bytes());
            out.push(fields.number::<u8>("DNSKEY protocol")?);
            out.push(fields.number::<u8>("DNSKEY algorithm")?);
            fields.rest_encoded("DNSKEY public key", &data_encoding::BASE64, &mut out)?;
        }
        RecordType::RRSIG => {
            let covered = fields.next("RRSIG type covered")?;
            let covered = RecordType::from_mnemonic(&covered.text)
                .ok_or_else(|| (covered.line, format!("unknown type {:?}", covered.text)))?;
            out.extend_from_slice(&covered.0.to_be_bytes());
            out.push(fields.number::<u8>("RRSIG algorithm")?);
            out.push(fields.number::<u8>("RRSIG labels")?);
            out.extend_from_slice(&fields.number::<u32>("RRSIG original TTL")?.to_be_bytes());
            for what in ["RRSIG expiration", "RRSIG inception"] {
                let token = fields.next(what)?;
                let time = parse_dnssec_time(&token.text)
                    .ok_or_else(|| (token.line, format!("bad {what} {:?}", token.text)))?;
                out.extend_from_slice(&time.to_be_bytes());
            }
            out.extend_from_slice(&fields.number::<u16>("RRSIG key tag")?.to_be_bytes());
            fields.name("RRSIG signer", origin, &mut out)?;
            fields.rest_encoded("RRSIG signature", &data_encoding::BASE64, &mut out)?;
        }
        RecordType::NSEC => {
            fields.name("NSEC next name", origin, &mut out)?;
            fields.type_bitmap(&mut out)?;
        }
        RecordType::NSEC3 | RecordType::NSEC3PARAM => {
            out.push(fields.number::<u8>("NSEC3 hash algorithm")?);
            out.push(fields.number::<u8>("NSEC3 flags")?);
            out.extend_from_slice(&fields.number::<u16>("NSEC3 iterations")?.to_be_bytes());
            fields.salt(&mut out)?;
            if rtype == RecordType::NSEC3 {
                let token = fields.next("NSEC3 next hashed owner")?;
                let hash = data_encoding::BASE32HEX_NOPAD
                    .decode(token.text.to_ascii_uppercase().as_bytes())
                    .ok()
                    .and_then(|hash| Some((u8::try_from(hash.len()).ok()?, hash)))
                    .filter(|(len, _)| *len > 0)
                    .ok_or_else(|| (token.line, format!("bad NSEC3 hash {:?}", token.text)))?;
                out.push(hash.0);
                out.extend_from_slice(&hash.1);
                fields.type_bitmap(&mut out)?;
            }
        }
        other => {
            return Err((
                line,
                format!("type {other} needs the generic form '\\# length hex'"),
            ));
        }
    }
    fields.end()?;
    Ok(out)
}
