//! The dnstap encoder: one [`Event`] (borrowed message bytes, addresses,
//! times given by the caller) and the sender's [`Origin`] in, the
//! protobuf bytes of a `Dnstap` message appended to a caller-owned
//! buffer out.
//!
//! It writes exactly what prost writes for the equivalent
//! [`crate::proto::Dnstap`] (the tests compare the bytes), using prost's
//! own wire primitives, but from borrowed slices: building a prost
//! message would copy the query and the response into fresh `Vec`s for
//! every event. The length is known before a byte is written
//! ([`encoded_len`]), so a bounded buffer can refuse a message whole.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::proto::{DnstapType, MessageType, SocketFamily, SocketProtocol};

/// A moment as dnstap writes it: seconds and nanoseconds since the UNIX
/// epoch. The caller reads the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Time {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: u64,
    /// Nanoseconds within that second (below 1e9).
    pub nanos: u32,
}

impl Time {
    /// The moment `since_epoch` after the UNIX epoch.
    pub fn from_unix(since_epoch: Duration) -> Self {
        Self {
            secs: since_epoch.as_secs(),
            nanos: since_epoch.subsec_nanos(),
        }
    }
}

/// Who sends the messages: `Dnstap.identity` and `Dnstap.version`, set
/// once and written into every message (an empty one is left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    identity: Box<[u8]>,
    version: Box<[u8]>,
}

impl Origin {
    /// An origin with this identity and version (either may be empty:
    /// not sent).
    pub fn new(identity: &[u8], version: &[u8]) -> Self {
        Self {
            identity: identity.into(),
            version: version.into(),
        }
    }

    /// The identity sent (empty: none).
    pub fn identity(&self) -> &[u8] {
        &self.identity
    }

    /// The version sent (empty: none).
    pub fn version(&self) -> &[u8] {
        &self.version
    }
}

/// One DNS message seen by the server, as dnstap records it. The
/// addresses are those of the exchange: the initiator's (`query_address`:
/// the client, or heimdall's own socket for a forwarded query) and the
/// responder's (heimdall's listener, or the upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// Which end of which exchange.
    pub kind: MessageType,
    /// The transport.
    pub protocol: SocketProtocol,
    /// The initiator's address and port.
    pub query_address: Option<SocketAddr>,
    /// The responder's address and port.
    pub response_address: Option<SocketAddr>,
    /// When the query was sent or received.
    pub query_time: Option<Time>,
    /// When the response was sent or received.
    pub response_time: Option<Time>,
    /// The query, verbatim.
    pub query_message: Option<&'a [u8]>,
    /// The response, verbatim.
    pub response_message: Option<&'a [u8]>,
}

/// Field numbers of `Dnstap` and `Message` (dnstap.proto; the tests
/// check them against [`crate::proto`]).
mod tag {
    pub(super) const IDENTITY: u32 = 1;
    pub(super) const VERSION: u32 = 2;
    pub(super) const MESSAGE: u32 = 14;
    pub(super) const TYPE: u32 = 15;

    pub(super) const M_TYPE: u32 = 1;
    pub(super) const M_SOCKET_FAMILY: u32 = 2;
    pub(super) const M_SOCKET_PROTOCOL: u32 = 3;
    pub(super) const M_QUERY_ADDRESS: u32 = 4;
    pub(super) const M_RESPONSE_ADDRESS: u32 = 5;
    pub(super) const M_QUERY_PORT: u32 = 6;
    pub(super) const M_RESPONSE_PORT: u32 = 7;
    pub(super) const M_QUERY_TIME_SEC: u32 = 8;
    pub(super) const M_QUERY_TIME_NSEC: u32 = 9;
    pub(super) const M_QUERY_MESSAGE: u32 = 10;
    pub(super) const M_RESPONSE_TIME_SEC: u32 = 12;
    pub(super) const M_RESPONSE_TIME_NSEC: u32 = 13;
    pub(super) const M_RESPONSE_MESSAGE: u32 = 14;
}

/// An address as dnstap writes it: 4 octets for IPv4, 16 for IPv6. An
/// IPv4-mapped IPv6 address is written as the IPv4 address it maps, so
/// that a dual-stack socket's clients read as the IPv4 clients they are.
fn octets(ip: IpAddr) -> ([u8; 16], usize) {
    let mut out = [0u8; 16];
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            out[..4].copy_from_slice(&v4.octets());
            (out, 4)
        }
        IpAddr::V6(v6) => {
            out.copy_from_slice(&v6.octets());
            (out, 16)
        }
    }
}

impl Event<'_> {
    /// The family of the addresses (IPv6 when either is a true IPv6
    /// address); none without an address.
    fn family(&self) -> Option<SocketFamily> {
        let addresses = [self.query_address, self.response_address];
        let mut known = addresses.iter().flatten().peekable();
        known.peek()?;
        let v6 = known.any(|addr| octets(addr.ip()).1 == 16);
        Some(if v6 {
            SocketFamily::Inet6
        } else {
            SocketFamily::Inet
        })
    }
}

fn varint_field_len(tag: u32, value: u64) -> usize {
    key_len(tag) + encoded_len_varint(value)
}

fn bytes_field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn time_fields_len(sec_tag: u32, nsec_tag: u32, time: Option<Time>) -> usize {
    time.map_or(0, |time| {
        varint_field_len(sec_tag, time.secs) + key_len(nsec_tag) + 4
    })
}

/// The length of the inner `Message`.
fn message_len(event: &Event<'_>) -> usize {
    let mut len = varint_field_len(tag::M_TYPE, event.kind as u64);
    if let Some(family) = event.family() {
        len += varint_field_len(tag::M_SOCKET_FAMILY, family as u64);
    }
    len += varint_field_len(tag::M_SOCKET_PROTOCOL, event.protocol as u64);
    for (address_tag, address) in [
        (tag::M_QUERY_ADDRESS, event.query_address),
        (tag::M_RESPONSE_ADDRESS, event.response_address),
    ] {
        if let Some(address) = address {
            len += bytes_field_len(address_tag, octets(address.ip()).1);
        }
    }
    for (port_tag, address) in [
        (tag::M_QUERY_PORT, event.query_address),
        (tag::M_RESPONSE_PORT, event.response_address),
    ] {
        if let Some(address) = address {
            len += varint_field_len(port_tag, u64::from(address.port()));
        }
    }
    len += time_fields_len(
        tag::M_QUERY_TIME_SEC,
        tag::M_QUERY_TIME_NSEC,
        event.query_time,
    );
    if let Some(query) = event.query_message {
        len += bytes_field_len(tag::M_QUERY_MESSAGE, query.len());
    }
    len += time_fields_len(
        tag::M_RESPONSE_TIME_SEC,
        tag::M_RESPONSE_TIME_NSEC,
        event.response_time,
    );
    if let Some(response) = event.response_message {
        len += bytes_field_len(tag::M_RESPONSE_MESSAGE, response.len());
    }
    len
}

/// The length of the whole `Dnstap` message [`encode`] appends.
pub fn encoded_len(origin: &Origin, event: &Event<'_>) -> usize {
    let mut len = 0;
    if !origin.identity.is_empty() {
        len += bytes_field_len(tag::IDENTITY, origin.identity.len());
    }
    if !origin.version.is_empty() {
        len += bytes_field_len(tag::VERSION, origin.version.len());
    }
    len + bytes_field_len(tag::MESSAGE, message_len(event))
        + varint_field_len(tag::TYPE, DnstapType::Message as u64)
}

fn put_varint_field(tag: u32, value: u64, out: &mut Vec<u8>) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(value, out);
}

fn put_bytes_field(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn put_time(sec_tag: u32, nsec_tag: u32, time: Option<Time>, out: &mut Vec<u8>) {
    if let Some(time) = time {
        put_varint_field(sec_tag, time.secs, out);
        encode_key(nsec_tag, WireType::ThirtyTwoBit, out);
        out.extend_from_slice(&time.nanos.to_le_bytes());
    }
}

/// Append the `Dnstap` message for `event` to `out`: exactly
/// [`encoded_len`] bytes, in field-number order as prost writes them.
/// `out` grows only if its spare capacity is short.
pub fn encode(origin: &Origin, event: &Event<'_>, out: &mut Vec<u8>) {
    out.reserve(encoded_len(origin, event));
    if !origin.identity.is_empty() {
        put_bytes_field(tag::IDENTITY, &origin.identity, out);
    }
    if !origin.version.is_empty() {
        put_bytes_field(tag::VERSION, &origin.version, out);
    }
    encode_key(tag::MESSAGE, WireType::LengthDelimited, out);
    encode_varint(message_len(event) as u64, out);
    put_varint_field(tag::M_TYPE, event.kind as u64, out);
    if let Some(family) = event.family() {
        put_varint_field(tag::M_SOCKET_FAMILY, family as u64, out);
    }
    put_varint_field(tag::M_SOCKET_PROTOCOL, event.protocol as u64, out);
    for (address_tag, address) in [
        (tag::M_QUERY_ADDRESS, event.query_address),
        (tag::M_RESPONSE_ADDRESS, event.response_address),
    ] {
        if let Some(address) = address {
            let (bytes, len) = octets(address.ip());
            put_bytes_field(address_tag, bytes.get(..len).unwrap_or_default(), out);
        }
    }
    for (port_tag, address) in [
        (tag::M_QUERY_PORT, event.query_address),
        (tag::M_RESPONSE_PORT, event.response_address),
    ] {
        if let Some(address) = address {
            put_varint_field(port_tag, u64::from(address.port()), out);
        }
    }
    put_time(
        tag::M_QUERY_TIME_SEC,
        tag::M_QUERY_TIME_NSEC,
        event.query_time,
        out,
    );
    if let Some(query) = event.query_message {
        put_bytes_field(tag::M_QUERY_MESSAGE, query, out);
    }
    put_time(
        tag::M_RESPONSE_TIME_SEC,
        tag::M_RESPONSE_TIME_NSEC,
        event.response_time,
        out,
    );
    if let Some(response) = event.response_message {
        put_bytes_field(tag::M_RESPONSE_MESSAGE, response, out);
    }
    put_varint_field(tag::TYPE, DnstapType::Message as u64, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Dnstap, Message};
    use prost::Message as _;

    fn client_response<'a>(query: &'a [u8], response: &'a [u8]) -> Event<'a> {
        Event {
            kind: MessageType::ClientResponse,
            protocol: SocketProtocol::Udp,
            query_address: Some("192.0.2.7:40001".parse().unwrap()),
            response_address: Some("127.0.0.1:53".parse().unwrap()),
            query_time: Some(Time {
                secs: 1_700_000_000,
                nanos: 5,
            }),
            response_time: Some(Time {
                secs: 1_700_000_001,
                nanos: 999_999_999,
            }),
            query_message: Some(query),
            response_message: Some(response),
        }
    }

    fn encoded(origin: &Origin, event: &Event<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        encode(origin, event, &mut out);
        assert_eq!(out.len(), encoded_len(origin, event));
        out
    }

    #[test]
    fn prost_decodes_every_field() {
        let origin = Origin::new(b"ns1", b"heimdall 0.1.0");
        let (query, response) = (vec![1u8; 29], vec![2u8; 300]);
        let out = encoded(&origin, &client_response(&query, &response));
        let decoded = Dnstap::decode(out.as_slice()).unwrap();
        assert_eq!(decoded.identity.as_deref(), Some(&b"ns1"[..]));
        assert_eq!(decoded.version.as_deref(), Some(&b"heimdall 0.1.0"[..]));
        assert_eq!(decoded.r#type, DnstapType::Message as i32);
        let message = decoded.message.unwrap();
        assert_eq!(message.r#type(), MessageType::ClientResponse);
        assert_eq!(message.socket_family(), SocketFamily::Inet);
        assert_eq!(message.socket_protocol(), SocketProtocol::Udp);
        assert_eq!(message.query_address.as_deref(), Some(&[192, 0, 2, 7][..]));
        assert_eq!(message.query_port, Some(40001));
        assert_eq!(
            message.response_address.as_deref(),
            Some(&[127, 0, 0, 1][..])
        );
        assert_eq!(message.response_port, Some(53));
        assert_eq!(message.query_time_sec, Some(1_700_000_000));
        assert_eq!(message.query_time_nsec, Some(5));
        assert_eq!(message.response_time_sec, Some(1_700_000_001));
        assert_eq!(message.response_time_nsec, Some(999_999_999));
        assert_eq!(message.query_message, Some(query));
        assert_eq!(message.response_message, Some(response));
        assert_eq!(message.query_zone, None);
    }

    #[test]
    fn the_bytes_are_those_prost_writes() {
        let (query, response) = (vec![7u8; 40], vec![9u8; 200]);
        let events = [
            client_response(&query, &response),
            Event {
                kind: MessageType::ForwarderQuery,
                protocol: SocketProtocol::Tcp,
                query_address: Some("[::]:5000".parse().unwrap()),
                response_address: Some("[2001:db8::1]:53".parse().unwrap()),
                query_time: Some(Time::from_unix(Duration::new(12, 34))),
                response_time: None,
                query_message: Some(&query),
                response_message: None,
            },
            Event {
                kind: MessageType::ClientQuery,
                protocol: SocketProtocol::Udp,
                query_address: None,
                response_address: None,
                query_time: None,
                response_time: None,
                query_message: None,
                response_message: None,
            },
        ];
        for origin in [
            Origin::default(),
            Origin::new(b"id", b""),
            Origin::new(b"", b"v"),
        ] {
            for event in &events {
                let ours = encoded(&origin, event);
                let address = |addr: Option<SocketAddr>| {
                    addr.map(|a| {
                        let (bytes, len) = octets(a.ip());
                        bytes[..len].to_vec()
                    })
                };
                let theirs = Dnstap {
                    identity: (!origin.identity().is_empty()).then(|| origin.identity().to_vec()),
                    version: (!origin.version().is_empty()).then(|| origin.version().to_vec()),
                    extra: None,
                    message: Some(Message {
                        r#type: event.kind as i32,
                        socket_family: event.family().map(|f| f as i32),
                        socket_protocol: Some(event.protocol as i32),
                        query_address: address(event.query_address),
                        response_address: address(event.response_address),
                        query_port: event.query_address.map(|a| u32::from(a.port())),
                        response_port: event.response_address.map(|a| u32::from(a.port())),
                        query_time_sec: event.query_time.map(|t| t.secs),
                        query_time_nsec: event.query_time.map(|t| t.nanos),
                        query_message: event.query_message.map(<[u8]>::to_vec),
                        query_zone: None,
                        response_time_sec: event.response_time.map(|t| t.secs),
                        response_time_nsec: event.response_time.map(|t| t.nanos),
                        response_message: event.response_message.map(<[u8]>::to_vec),
                        policy: None,
                        http_protocol: None,
                    }),
                    r#type: DnstapType::Message as i32,
                };
                assert_eq!(ours, theirs.encode_to_vec(), "{event:?} {origin:?}");
            }
        }
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let mut event = client_response(b"q", b"r");
        event.query_address = Some("[2001:db8::7]:1234".parse().unwrap());
        event.response_address = Some("[::1]:53".parse().unwrap());
        let message = Dnstap::decode(encoded(&Origin::default(), &event).as_slice())
            .unwrap()
            .message
            .unwrap();
        assert_eq!(message.socket_family(), SocketFamily::Inet6);
        assert_eq!(message.query_address.unwrap().len(), 16);
        // A dual-stack socket's IPv4 client reads as IPv4.
        event.query_address = Some("[::ffff:192.0.2.1]:1234".parse().unwrap());
        event.response_address = Some("[::ffff:127.0.0.1]:53".parse().unwrap());
        let message = Dnstap::decode(encoded(&Origin::default(), &event).as_slice())
            .unwrap()
            .message
            .unwrap();
        assert_eq!(message.socket_family(), SocketFamily::Inet);
        assert_eq!(message.query_address.as_deref(), Some(&[192, 0, 2, 1][..]));
    }

    #[test]
    fn encoding_into_spare_capacity_does_not_reallocate() {
        let origin = Origin::new(b"host", b"v");
        let event = client_response(&[1u8; 100], &[2u8; 500]);
        let mut out = Vec::with_capacity(4096);
        let memory = out.as_ptr();
        for _ in 0..4 {
            encode(&origin, &event, &mut out);
        }
        assert_eq!(out.as_ptr(), memory);
        assert_eq!(out.len(), 4 * encoded_len(&origin, &event));
    }
}
