//! What crosses the sans-IO boundary of the engine: who a client is
//! ([`ClientId`], [`Transport`]), what became of its query
//! ([`QueryOutcome`]), what the runtime must send upstream ([`Transmit`],
//! named by an [`AttemptId`]), how an upstream reply reached it
//! ([`ReplySource`]), what it carries to the other cores ([`Hint`]) and
//! what it should tell the operator ([`Warning`]).

use core::net::SocketAddr;

use heimdall_cache::Entry;
use heimdall_config::UpstreamTransport;
use heimdall_wire::QueryKey;

/// How a client reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// A UDP datagram; replies are limited by the client's payload size.
    Udp,
    /// A TCP connection, named by the runtime; replies up to 65,535 bytes.
    Tcp(u32),
    /// A DNS-over-TLS connection (RFC 7858), named by the runtime; replies
    /// up to 65,535 bytes, as over TCP.
    Tls(u32),
    /// One DNS-over-HTTPS request (RFC 8484), named by the runtime (a
    /// request, not a connection: HTTP/2 carries many at once); replies up
    /// to 65,535 bytes.
    Https(u32),
    /// One DNS-over-QUIC stream (RFC 9250), named by the runtime (a
    /// stream, not a connection: each carries one query); replies up to
    /// 65,535 bytes.
    Quic(u32),
}

impl Transport {
    /// Whether replies travel on a stream (no size limit below 65,535
    /// bytes, no TC, the client's address proven by its handshake).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// Who to answer, and through which of the runtime's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// The client's address.
    pub addr: SocketAddr,
    /// The transport the query came over.
    pub transport: Transport,
    /// The runtime's index of the listening socket that received the
    /// query; the reply must leave from the same one.
    pub listener: u16,
}

/// What became of a client query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryOutcome {
    /// A reply of this many bytes is in the output buffer.
    Reply(usize),
    /// The answer comes later, through [`Resolver::poll_reply`](crate::Resolver::poll_reply).
    Pending,
    /// Nothing is sent (not a query, unreadable, or shed under load).
    Dropped,
}

/// Names one upstream attempt (one query ID sent to one upstream over one
/// transport) for as long as a reply to it may still be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AttemptId(pub u32);

/// How an upstream reply reached the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplySource {
    /// The address it came from.
    pub from: SocketAddr,
    /// The transport it came over.
    pub transport: UpstreamTransport,
    /// For UDP: the attempt whose own socket received it (each UDP attempt
    /// leaves from its own socket). `None` for stream transports, where
    /// replies share a connection and are matched by ID.
    pub attempt: Option<AttemptId>,
}

/// An upstream query the runtime must send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The upstream's address.
    pub to: SocketAddr,
    /// Bytes of the query in the output buffer (without a TCP length
    /// prefix).
    pub len: usize,
    /// The transport to send it over: the upstream's own, or TCP when a
    /// `udp` upstream's reply was truncated (RFC 7766 section 5).
    pub transport: UpstreamTransport,
    /// The attempt this send starts. For UDP the runtime sends it from a
    /// socket of its own and reports replies on that socket with this ID
    /// ([`ReplySource::attempt`]); the socket may close once
    /// [`Resolver::poll_retired`](crate::Resolver::poll_retired) hands the
    /// ID back.
    pub attempt: AttemptId,
}

/// Something the operator should hear about, for the runtime to log
/// ([`Resolver::poll_warning`](crate::Resolver::poll_warning)). The engine
/// rate-limits them; the runtime only logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// DNSSEC validation is on and the upstream at this address answered
    /// without any RRSIG where the chain of trust requires signatures: it
    /// (or something on the path to it) seems to strip DNSSEC records, so
    /// its answers are SERVFAIL (EDE 10). At most once a minute per
    /// upstream.
    UpstreamStripsDnssec(SocketAddr),
}

impl core::fmt::Display for Warning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Warning::UpstreamStripsDnssec(address) => write!(
                f,
                "upstream {address} seems to strip DNSSEC records: it answered without any \
                 RRSIG for data the chain of trust says is signed, so such answers are \
                 SERVFAIL (EDE 10); use an upstream that passes DNSSEC records on, or set \
                 dnssec.mode: off"
            ),
        }
    }
}

/// A cache-fill hint: an answer this core stored, for the other cores.
#[derive(Debug, Clone)]
pub struct Hint {
    /// The key it answers.
    pub key: QueryKey,
    /// The stored entry (times are on the shared epoch).
    pub entry: Entry,
}
