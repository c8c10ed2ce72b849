//! One upstream server as data: where it is, which transport reaches it,
//! and the name its certificate must carry. Shared by the config (which
//! parses and validates it) and the resolver (which picks among them and
//! says which transport each upstream query uses).
//!
//! In YAML an upstream is an address (`9.9.9.9`, `"[2620:fe::fe]:53"`:
//! UDP) or a mapping (`{address: 9.9.9.9, transport: tcp}`); it is written
//! back in the shorter form that says the same.

use std::fmt;
use std::net::SocketAddr;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use crate::addr::UpstreamAddr;

/// How heimdall talks to one upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTransport {
    /// UDP, retried over TCP when the reply is truncated (RFC 7766).
    #[default]
    Udp,
    /// TCP only, never UDP.
    Tcp,
    /// DNS over TLS (RFC 7858); needs the upstream's `name`.
    Tls,
    /// DNS over HTTPS (RFC 8484): POST to `/dns-query` over HTTP/2; needs
    /// the upstream's `name`.
    Https,
}

impl UpstreamTransport {
    /// The name the config file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamTransport::Udp => "udp",
            UpstreamTransport::Tcp => "tcp",
            UpstreamTransport::Tls => "tls",
            UpstreamTransport::Https => "https",
        }
    }

    /// Whether a query over this transport travels on a TCP connection.
    pub fn is_stream(self) -> bool {
        !matches!(self, UpstreamTransport::Udp)
    }
}

impl fmt::Display for UpstreamTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One upstream server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Upstream {
    /// Its address and port.
    pub address: SocketAddr,
    /// How queries reach it.
    pub transport: UpstreamTransport,
    /// The name its TLS certificate must carry (`tls` and `https`); also
    /// the SNI sent. `None` for `udp` and `tcp`.
    pub name: Option<String>,
    /// An SPKI pin (`tls` and `https`): the base64 SHA-256 of the server
    /// key's SubjectPublicKeyInfo (RFC 7858 section 4.2, RFC 7469). With
    /// one, the key is checked against it instead of a CA.
    pub pin: Option<String>,
    /// The URL path queries are posted to (`https` only); `None` is
    /// RFC 8484's `/dns-query`.
    pub path: Option<String>,
}

impl Upstream {
    /// A plain-DNS upstream over `transport`, with no authentication name.
    pub fn new(address: SocketAddr, transport: UpstreamTransport) -> Self {
        Upstream {
            address,
            transport,
            name: None,
            pin: None,
            path: None,
        }
    }

    /// A UDP upstream (TCP on truncation), the default transport.
    pub fn udp(address: SocketAddr) -> Self {
        Self::new(address, UpstreamTransport::Udp)
    }

    /// The same upstream with an authentication name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The same upstream with a DoH URL path.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The same upstream with an SPKI pin (base64 SHA-256).
    pub fn with_pin(mut self, pin: impl Into<String>) -> Self {
        self.pin = Some(pin.into());
        self
    }
}

/// What a server of `upstream.servers` is written as.
const EXPECTING: &str = "an address such as 9.9.9.9:53 or \"[2620:fe::fe]:53\" (IPv6 addresses \
                         must be quoted), or a mapping such as {address: 9.9.9.9, transport: tcp}";

/// The keys of `upstream.servers[i]` written as a mapping.
const KEYS: &[&str] = &["address", "transport", "name", "pin", "path"];

/// One key of the mapping form. Anything but a string is refused with
/// [`EXPECTING`]: an unquoted `[2620:fe::fe]:53` reads as a mapping whose
/// key is a list, and the operator should hear about the quotes.
enum Key {
    Address,
    Transport,
    Name,
    Pin,
    Path,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = Key;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                match v {
                    "address" => Ok(Key::Address),
                    "transport" => Ok(Key::Transport),
                    "name" => Ok(Key::Name),
                    "pin" => Ok(Key::Pin),
                    "path" => Ok(Key::Path),
                    other => Err(E::unknown_field(other, KEYS)),
                }
            }
        }

        deserializer.deserialize_any(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for Upstream {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UpstreamVisitor;

        impl<'de> Visitor<'de> for UpstreamVisitor {
            type Value = Upstream;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTING)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Upstream, E> {
                crate::addr::parse_upstream(v)
                    .map(Upstream::udp)
                    .map_err(E::custom)
            }

            // A plain YAML scalar such as `53` arrives as a number; it is
            // read as the text it was, so that the error names it.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Upstream, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Upstream, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Upstream, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Upstream, E> {
                self.visit_str(&v.to_string())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Upstream, A::Error> {
                let mut address: Option<UpstreamAddr> = None;
                let mut transport: Option<UpstreamTransport> = None;
                let mut name: Option<String> = None;
                let mut pin: Option<String> = None;
                let mut path: Option<String> = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Address if address.is_some() => {
                            return Err(de::Error::duplicate_field("address"));
                        }
                        Key::Transport if transport.is_some() => {
                            return Err(de::Error::duplicate_field("transport"));
                        }
                        Key::Name if name.is_some() => {
                            return Err(de::Error::duplicate_field("name"));
                        }
                        Key::Pin if pin.is_some() => {
                            return Err(de::Error::duplicate_field("pin"));
                        }
                        Key::Path if path.is_some() => {
                            return Err(de::Error::duplicate_field("path"));
                        }
                        Key::Address => address = Some(map.next_value()?),
                        Key::Transport => transport = Some(map.next_value()?),
                        Key::Name => name = Some(map.next_value()?),
                        Key::Pin => pin = Some(map.next_value()?),
                        Key::Path => path = Some(map.next_value()?),
                    }
                }
                let address = address.ok_or_else(|| de::Error::missing_field("address"))?;
                Ok(Upstream {
                    address: address.0,
                    transport: transport.unwrap_or_default(),
                    name,
                    pin,
                    path,
                })
            }
        }

        deserializer.deserialize_any(UpstreamVisitor)
    }
}

/// A UDP upstream without a name is written as its address alone, as it
/// was before upstreams had a transport; any other as a mapping.
impl Serialize for Upstream {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.transport == UpstreamTransport::Udp
            && self.name.is_none()
            && self.pin.is_none()
            && self.path.is_none()
        {
            return serializer.collect_str(&self.address);
        }
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("address", &UpstreamAddr(self.address))?;
        map.serialize_entry("transport", &self.transport)?;
        if let Some(name) = &self.name {
            map.serialize_entry("name", name)?;
        }
        if let Some(pin) = &self.pin {
            map.serialize_entry("pin", pin)?;
        }
        if let Some(path) = &self.path {
            map.serialize_entry("path", path)?;
        }
        map.end()
    }
}
