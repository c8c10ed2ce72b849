//! The dnstap schema as prost messages: [`Dnstap`], [`Message`], [`Policy`]
//! and their enums, written by hand to mirror `dnstap.proto` (kept beside
//! the crate), field for field and number for number.
//!
//! Why by hand rather than prost-build: prost-build needs `protoc` at
//! build time (a system package on every machine that builds heimdall, a
//! build script, and a larger dependency tree) for one small schema that
//! has not changed its numbers since 2014. The test
//! `the_structs_carry_the_field_numbers_of_dnstap_proto` reads the
//! `.proto` file and checks every field's number and wire form against
//! these structs, so the two cannot drift apart silently.
//!
//! These owned structs are the schema and the decoder (tests, tools). The
//! server encodes with [`crate::encode`], which writes the same bytes from
//! borrowed slices without building one of these.

/// The top-level dnstap type: a "union" of payloads, of which only
/// [`Message`] is defined.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Dnstap {
    /// The DNS server's identity (what an NSID query would return).
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// The DNS server's version (what `version.bind` would return).
    #[prost(bytes = "vec", optional, tag = "2")]
    pub version: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// An arbitrary annotation.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub extra: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// The payload, when [`Dnstap::r#type`] is [`DnstapType::Message`].
    #[prost(message, optional, tag = "14")]
    pub message: ::core::option::Option<Message>,
    /// Which payload is filled in ([`DnstapType`]).
    #[prost(enumeration = "DnstapType", required, tag = "15")]
    pub r#type: i32,
}

/// `Dnstap.Type`: which payload a [`Dnstap`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum DnstapType {
    /// [`Dnstap::message`].
    Message = 1,
}

/// How to read the address fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SocketFamily {
    /// IPv4: addresses are 4 octets.
    Inet = 1,
    /// IPv6: addresses are 16 octets.
    Inet6 = 2,
}

/// The transport a DNS message travelled over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SocketProtocol {
    /// UDP (RFC 1035 4.2.1).
    Udp = 1,
    /// TCP (RFC 1035 4.2.2).
    Tcp = 2,
    /// DNS over TLS (RFC 7858).
    Dot = 3,
    /// DNS over HTTPS (RFC 8484).
    Doh = 4,
    /// DNSCrypt over UDP.
    DnsCryptUdp = 5,
    /// DNSCrypt over TCP.
    DnsCryptTcp = 6,
    /// DNS over QUIC (RFC 9250).
    Doq = 7,
}

/// The HTTP version of a DNS over HTTPS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum HttpProtocol {
    /// HTTP/1.
    Http1 = 1,
    /// HTTP/2.
    Http2 = 2,
    /// HTTP/3.
    Http3 = 3,
}

/// Operator policy applied to a message (heimdall does not fill it in;
/// it is here so that a decoder reads other servers' output whole).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Policy {
    /// The kind of policy, such as `RPZ`.
    #[prost(string, optional, tag = "1")]
    pub r#type: ::core::option::Option<::prost::alloc::string::String>,
    /// The rule matched.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub rule: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// The action taken ([`PolicyAction`]).
    #[prost(enumeration = "PolicyAction", optional, tag = "3")]
    pub action: ::core::option::Option<i32>,
    /// What matched ([`PolicyMatch`]).
    #[prost(enumeration = "PolicyMatch", optional, tag = "4")]
    pub r#match: ::core::option::Option<i32>,
    /// The matched value.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub value: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
}

/// `Policy.Match`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum PolicyMatch {
    /// The question's name.
    Qname = 1,
    /// The client's address.
    ClientIp = 2,
    /// An address in an A/AAAA RRset.
    ResponseIp = 3,
    /// An authoritative server, by name.
    NsName = 4,
    /// An authoritative server, by address.
    NsIp = 5,
}

/// `Policy.Action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum PolicyAction {
    /// Answered NXDOMAIN.
    Nxdomain = 1,
    /// Answered with an empty answer section.
    Nodata = 2,
    /// Passed through unchanged.
    Pass = 3,
    /// Not answered.
    Drop = 4,
    /// Truncated, forcing TCP.
    Truncate = 5,
    /// Answered with local data.
    LocalData = 6,
}

/// A wire-format DNS message and where and when it was seen.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Message {
    /// Which end of which exchange ([`MessageType`]).
    #[prost(enumeration = "MessageType", required, tag = "1")]
    pub r#type: i32,
    /// [`SocketFamily`] of the addresses.
    #[prost(enumeration = "SocketFamily", optional, tag = "2")]
    pub socket_family: ::core::option::Option<i32>,
    /// [`SocketProtocol`] the message travelled over.
    #[prost(enumeration = "SocketProtocol", optional, tag = "3")]
    pub socket_protocol: ::core::option::Option<i32>,
    /// The initiator's address.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub query_address: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// The responder's address.
    #[prost(bytes = "vec", optional, tag = "5")]
    pub response_address: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// The initiator's port.
    #[prost(uint32, optional, tag = "6")]
    pub query_port: ::core::option::Option<u32>,
    /// The responder's port.
    #[prost(uint32, optional, tag = "7")]
    pub response_port: ::core::option::Option<u32>,
    /// When the query was sent or received: seconds since the UNIX epoch.
    #[prost(uint64, optional, tag = "8")]
    pub query_time_sec: ::core::option::Option<u64>,
    /// The nanoseconds of that second.
    #[prost(fixed32, optional, tag = "9")]
    pub query_time_nsec: ::core::option::Option<u32>,
    /// The query, verbatim.
    #[prost(bytes = "vec", optional, tag = "10")]
    pub query_message: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// The zone or bailiwick of the query (a wire-format name).
    #[prost(bytes = "vec", optional, tag = "11")]
    pub query_zone: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// When the response was sent or received: seconds since the epoch.
    #[prost(uint64, optional, tag = "12")]
    pub response_time_sec: ::core::option::Option<u64>,
    /// The nanoseconds of that second.
    #[prost(fixed32, optional, tag = "13")]
    pub response_time_nsec: ::core::option::Option<u32>,
    /// The response, verbatim.
    #[prost(bytes = "vec", optional, tag = "14")]
    pub response_message: ::core::option::Option<::prost::alloc::vec::Vec<u8>>,
    /// Operator policy applied, if any.
    #[prost(message, optional, tag = "15")]
    pub policy: ::core::option::Option<Policy>,
    /// [`HttpProtocol`], with DOH only.
    #[prost(enumeration = "HttpProtocol", optional, tag = "16")]
    pub http_protocol: ::core::option::Option<i32>,
}

/// `Message.Type`: which end of which exchange a [`Message`] records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum MessageType {
    /// A query an authoritative server received.
    AuthQuery = 1,
    /// A response an authoritative server sent.
    AuthResponse = 2,
    /// A query a resolver sent to an authoritative server.
    ResolverQuery = 3,
    /// A response a resolver received from an authoritative server.
    ResolverResponse = 4,
    /// A query a server received from a client.
    ClientQuery = 5,
    /// A response a server sent to a client.
    ClientResponse = 6,
    /// A query a forwarder sent to its upstream.
    ForwarderQuery = 7,
    /// A response a forwarder received from its upstream.
    ForwarderResponse = 8,
    /// A query a stub resolver sent.
    StubQuery = 9,
    /// A response a stub resolver received.
    StubResponse = 10,
    /// A query a tool sent.
    ToolQuery = 11,
    /// A response a tool received.
    ToolResponse = 12,
    /// A dynamic update (RFC 2136) received.
    UpdateQuery = 13,
    /// A dynamic update response sent.
    UpdateResponse = 14,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost::encoding::{WireType, decode_key, decode_varint};
    use std::collections::BTreeMap;

    /// `message NAME { ... }` of the schema: each field's name, number and
    /// declared type, nested messages' bodies skipped.
    fn schema_fields(name: &str) -> BTreeMap<String, (u32, String)> {
        let proto = include_str!("../dnstap.proto");
        let start = proto
            .find(&format!("message {name} {{"))
            .unwrap_or_else(|| panic!("no message {name} in dnstap.proto"));
        let mut fields = BTreeMap::new();
        let mut depth = 0;
        for line in proto[start..].lines() {
            let code = line.split("//").next().unwrap_or("").trim();
            depth += code.matches('{').count() as i32;
            depth -= code.matches('}').count() as i32;
            if depth == 0 && code.contains('}') {
                break;
            }
            let words: Vec<&str> = code.split_whitespace().collect();
            // `optional bytes identity = 1;`
            if depth == 1 && words.len() == 5 && matches!(words[0], "optional" | "required") {
                let number = words[4].trim_end_matches(';').parse().unwrap();
                fields.insert(words[2].to_string(), (number, words[1].to_string()));
            }
        }
        fields
    }

    /// The tags and wire types found in an encoded message, top level only.
    fn wire_tags(mut bytes: &[u8]) -> BTreeMap<u32, WireType> {
        let mut tags = BTreeMap::new();
        while !bytes.is_empty() {
            let (tag, wire_type) = decode_key(&mut bytes).unwrap();
            tags.insert(tag, wire_type);
            match wire_type {
                WireType::Varint => {
                    decode_varint(&mut bytes).unwrap();
                }
                WireType::ThirtyTwoBit => bytes = &bytes[4..],
                WireType::LengthDelimited => {
                    let len = decode_varint(&mut bytes).unwrap() as usize;
                    bytes = &bytes[len..];
                }
                other => panic!("unexpected wire type {other:?}"),
            }
        }
        tags
    }

    fn wire_type_of(proto_type: &str) -> WireType {
        match proto_type {
            "bytes" | "string" | "Message" | "Policy" => WireType::LengthDelimited,
            "fixed32" => WireType::ThirtyTwoBit,
            _ => WireType::Varint,
        }
    }

    /// Every field of the struct set, each to a value of its own, and the
    /// encoded message's tags compared with the schema's numbers.
    fn check(name: &str, encoded: &[u8], set: &[(&str, u32)]) {
        let schema = schema_fields(name);
        let tags = wire_tags(encoded);
        let names: Vec<&str> = set.iter().map(|(field, _)| *field).collect();
        let schema_names: Vec<&str> = schema.keys().map(String::as_str).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted, schema_names,
            "{name}: fields differ from the schema"
        );
        for (field, tag) in set {
            let (number, ty) = &schema[*field];
            assert_eq!(tag, number, "{name}.{field}");
            assert_eq!(
                tags.get(tag),
                Some(&wire_type_of(ty)),
                "{name}.{field} wire type"
            );
        }
        assert_eq!(tags.len(), set.len(), "{name}: every field encoded once");
    }

    #[test]
    fn the_structs_carry_the_field_numbers_of_dnstap_proto() {
        let policy = Policy {
            r#type: Some("RPZ".into()),
            rule: Some(vec![1]),
            action: Some(PolicyAction::Drop as i32),
            r#match: Some(PolicyMatch::Qname as i32),
            value: Some(vec![2]),
        };
        check(
            "Policy",
            &policy.encode_to_vec(),
            &[
                ("type", 1),
                ("rule", 2),
                ("action", 3),
                ("match", 4),
                ("value", 5),
            ],
        );
        let message = Message {
            r#type: MessageType::ClientQuery as i32,
            socket_family: Some(SocketFamily::Inet as i32),
            socket_protocol: Some(SocketProtocol::Udp as i32),
            query_address: Some(vec![127, 0, 0, 1]),
            response_address: Some(vec![127, 0, 0, 2]),
            query_port: Some(1),
            response_port: Some(2),
            query_time_sec: Some(3),
            query_time_nsec: Some(4),
            query_message: Some(vec![5]),
            query_zone: Some(vec![0]),
            response_time_sec: Some(6),
            response_time_nsec: Some(7),
            response_message: Some(vec![8]),
            policy: Some(policy),
            http_protocol: Some(HttpProtocol::Http2 as i32),
        };
        check(
            "Message",
            &message.encode_to_vec(),
            &[
                ("type", 1),
                ("socket_family", 2),
                ("socket_protocol", 3),
                ("query_address", 4),
                ("response_address", 5),
                ("query_port", 6),
                ("response_port", 7),
                ("query_time_sec", 8),
                ("query_time_nsec", 9),
                ("query_message", 10),
                ("query_zone", 11),
                ("response_time_sec", 12),
                ("response_time_nsec", 13),
                ("response_message", 14),
                ("policy", 15),
                ("http_protocol", 16),
            ],
        );
        let dnstap = Dnstap {
            identity: Some(b"a".to_vec()),
            version: Some(b"b".to_vec()),
            extra: Some(b"c".to_vec()),
            message: Some(message),
            r#type: DnstapType::Message as i32,
        };
        check(
            "Dnstap",
            &dnstap.encode_to_vec(),
            &[
                ("identity", 1),
                ("version", 2),
                ("extra", 3),
                ("message", 14),
                ("type", 15),
            ],
        );
    }

    /// The enum values of the schema, `NAME = N;` inside `enum NAME {`.
    fn schema_enum(name: &str) -> Vec<(String, i32)> {
        let proto = include_str!("../dnstap.proto");
        let start = proto
            .find(&format!("enum {name} {{"))
            .unwrap_or_else(|| panic!("no enum {name}"));
        proto[start..]
            .lines()
            .skip(1)
            .map(|line| line.split("//").next().unwrap_or("").trim())
            .take_while(|code| !code.starts_with('}'))
            .filter(|code| !code.is_empty())
            .map(|code| {
                let (value_name, number) = code.trim_end_matches(';').split_once('=').unwrap();
                (
                    value_name.trim().to_string(),
                    number.trim().parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_enums_carry_the_values_of_dnstap_proto() {
        let numbers =
            |name: &str| -> Vec<i32> { schema_enum(name).into_iter().map(|(_, n)| n).collect() };
        assert_eq!(numbers("Type"), vec![DnstapType::Message as i32]);
        assert_eq!(
            numbers("SocketFamily"),
            vec![SocketFamily::Inet as i32, SocketFamily::Inet6 as i32]
        );
        assert_eq!(
            numbers("SocketProtocol"),
            (1..=7).collect::<Vec<_>>(),
            "SocketProtocol"
        );
        for value in 1..=7 {
            assert!(SocketProtocol::try_from(value).is_ok());
        }
        let message_types = {
            let proto = include_str!("../dnstap.proto");
            let inner = &proto[proto.find("message Message {").unwrap()..];
            let start = inner.find("enum Type {").unwrap();
            let names: Vec<String> = inner[start..]
                .lines()
                .skip(1)
                .map(|line| line.trim())
                .take_while(|code| !code.starts_with('}'))
                .filter(|code| !code.is_empty() && !code.starts_with("//"))
                .map(|code| code.to_string())
                .collect();
            names
        };
        let expected = [
            ("CLIENT_QUERY", MessageType::ClientQuery),
            ("CLIENT_RESPONSE", MessageType::ClientResponse),
            ("FORWARDER_QUERY", MessageType::ForwarderQuery),
            ("FORWARDER_RESPONSE", MessageType::ForwarderResponse),
        ];
        for (name, value) in expected {
            let line = format!("{name} = {};", value as i32);
            assert!(message_types.contains(&line), "{line} not in the schema");
        }
        assert_eq!(message_types.len(), 14);
    }
}
