//! One upstream server as data: where it is, which transport reaches it,
//! and the name its certificate must carry. Shared by the config (which
//! parses and validates it) and the resolver (which picks among them and
//! says which transport each upstream query uses).

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// How heimdall talks to one upstream server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamTransport {
    /// UDP, retried over TCP when the reply is truncated (RFC 7766).
    #[default]
    Udp,
    /// TCP only, never UDP.
    Tcp,
    /// DNS over TLS (RFC 7858). Reserved: refused by validation until the
    /// encrypted transports land.
    Tls,
    /// DNS over HTTPS (RFC 8484). Reserved like `Tls`.
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
}

impl Upstream {
    /// A plain-DNS upstream over `transport`, with no authentication name.
    pub fn new(address: SocketAddr, transport: UpstreamTransport) -> Self {
        Upstream {
            address,
            transport,
            name: None,
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
}
