//! One client connection of the stream transports: plain TCP and DNS over
//! TLS (RFC 7858: each message behind a 2-byte length) or DNS over HTTPS
//! (RFC 8484: an HTTP/2 POST of `application/dns-message` per query).
//!
//! The calls are [`Conn::open`], then [`Conn::push`] queries and
//! [`Conn::flush`] them, and [`Conn::recv`] what came back. `recv` is
//! cancel-safe (it only waits in a plain read, or for the next finished
//! DoH request), so a caller may race it against a timer in `select!`.
//! It runs on a tokio current-thread runtime inside a `LocalSet` (DoH
//! requests are local tasks); this is the load generator's client side,
//! never the server's.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use rustls::HandshakeKind;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A DNS message over TCP is at most this long, plus its 2-byte prefix.
const MAX_FRAME: usize = 2 + 65_535;
/// The read buffer of a framed connection: a whole frame and then some.
const READ_BUF: usize = MAX_FRAME + 16 * 1024;
/// Longest DoH answer body read (a DNS message is at most 65,535 bytes).
const MAX_BODY: usize = 65_535;

/// How queries travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// One datagram per query (the batched UDP workers).
    #[default]
    Udp,
    /// DNS over TCP (RFC 7766), persistent pipelined connections.
    Tcp,
    /// DNS over TLS (RFC 7858), ALPN `dot`.
    Tls,
    /// DNS over HTTPS (RFC 8484), HTTP/2 POST, ALPN `h2`.
    Https,
}

impl Transport {
    /// `udp`, `tcp`, `tls` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Https => "https",
        }
    }

    /// Whether it runs over persistent connections (not UDP).
    pub fn is_stream(self) -> bool {
        self != Self::Udp
    }

    /// Whether it needs a TLS client configuration.
    pub fn is_encrypted(self) -> bool {
        matches!(self, Self::Tls | Self::Https)
    }
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "udp" => Ok(Self::Udp),
            "tcp" => Ok(Self::Tcp),
            "tls" | "dot" => Ok(Self::Tls),
            "https" | "doh" => Ok(Self::Https),
            other => Err(format!(
                "unknown transport {other:?} (udp, tcp, tls, https)"
            )),
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The server.
    pub target: SocketAddr,
    /// `Tcp`, `Tls` or `Https`.
    pub transport: Transport,
    /// The TLS client configuration (required by `Tls` and `Https`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SNI and the name the certificate is checked against.
    pub server_name: ServerName<'static>,
    /// DoH: the request path, such as `/dns-query`.
    pub doh_path: String,
    /// Longest wait for the TCP connect and the handshakes.
    pub connect_timeout: Duration,
}

/// One thing a connection delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A DNS message (unchecked: the caller matches it to its query).
    Message(&'a [u8]),
    /// DoH: a request answered with another HTTP status than 200, or
    /// reset; its query stays outstanding and times out as lost.
    HttpError,
}

/// The byte stream under a connection: TCP, or TLS over TCP.
enum Io {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Io::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Why a DoH request produced no DNS message.
enum DohError {
    /// Any status but 200, or a reset stream: this request failed.
    Request,
    /// The connection itself failed.
    Connection(h2::Error),
}

/// An open connection.
pub struct Conn {
    inner: Inner,
    /// Whether the TLS handshake was a resumption (None without TLS).
    handshake: Option<HandshakeKind>,
}

enum Inner {
    Framed {
        io: Io,
        read: Vec<u8>,
        /// The unread bytes are `read[start..end]`.
        start: usize,
        end: usize,
        write: Vec<u8>,
    },
    Https {
        /// None once closing: with every handle gone, h2 ends the
        /// connection once its streams are done.
        send: Option<h2::client::SendRequest<Bytes>>,
        uri: http::Uri,
        queued: Vec<Bytes>,
        pending: JoinSet<Result<Bytes, DohError>>,
        /// The HTTP/2 connection task, aborted when this is dropped.
        driver: tokio::task::JoinHandle<()>,
        /// The last finished answer, borrowed by the `Reply` handed out.
        answer: Bytes,
    },
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Inner::Https {
            driver, pending, ..
        } = &mut self.inner
        {
            driver.abort();
            pending.abort_all();
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

fn h2_error(err: h2::Error) -> io::Error {
    match err.into_io() {
        Some(err) => err,
        None => io::Error::other("HTTP/2 error"),
    }
}

impl Conn {
    /// Connect, shake hands (TLS; HTTP/2 for DoH); must run inside a
    /// `LocalSet` for DoH.
    pub async fn open(endpoint: &Endpoint) -> io::Result<Self> {
        let deadline = endpoint.connect_timeout;
        let tcp = tokio::time::timeout(deadline, TcpStream::connect(endpoint.target))
            .await
            .map_err(|_| timed_out("TCP connect"))??;
        tcp.set_nodelay(true)?;
        let (io, handshake) = if endpoint.transport.is_encrypted() {
            let config = endpoint.tls.clone().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "TLS transport without a TLS client configuration",
                )
            })?;
            let connector = TlsConnector::from(config);
            let tls = tokio::time::timeout(
                deadline,
                connector.connect(endpoint.server_name.clone(), tcp),
            )
            .await
            .map_err(|_| timed_out("TLS handshake"))??;
            let kind = tls.get_ref().1.handshake_kind();
            (Io::Tls(Box::new(tls)), kind)
        } else {
            (Io::Tcp(tcp), None)
        };
        let inner = if endpoint.transport == Transport::Https {
            let (send, connection) = tokio::time::timeout(
                deadline,
                h2::client::Builder::new()
                    .enable_push(false)
                    .handshake::<_, Bytes>(io),
            )
            .await
            .map_err(|_| timed_out("HTTP/2 handshake"))?
            .map_err(h2_error)?;
            let driver = tokio::task::spawn_local(async move {
                // Its error shows in the requests, which all fail with it.
                let _closed = connection.await;
            });
            let authority = match &endpoint.server_name {
                ServerName::DnsName(name) => {
                    format!("{}:{}", name.as_ref(), endpoint.target.port())
                }
                _ => endpoint.target.to_string(),
            };
            let uri = http::Uri::builder()
                .scheme("https")
                .authority(authority)
                .path_and_query(endpoint.doh_path.as_str())
                .build()
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))?;
            Inner::Https {
                send: Some(send),
                uri,
                queued: Vec::new(),
                pending: JoinSet::new(),
                driver,
                answer: Bytes::new(),
            }
        } else {
            Inner::Framed {
                io,
                read: vec![0; READ_BUF],
                start: 0,
                end: 0,
                write: Vec::with_capacity(4096),
            }
        };
        Ok(Self { inner, handshake })
    }

    /// Whether the TLS handshake resumed a session (false without TLS).
    pub fn resumed(&self) -> bool {
        self.handshake == Some(HandshakeKind::Resumed)
    }

    /// Queue one query (sent by the next [`Conn::flush`]).
    pub fn push(&mut self, query: &[u8]) {
        let Ok(len) = u16::try_from(query.len()) else {
            return;
        };
        match &mut self.inner {
            Inner::Framed { write, .. } => {
                write.extend_from_slice(&len.to_be_bytes());
                write.extend_from_slice(query);
            }
            Inner::Https { queued, .. } => queued.push(Bytes::copy_from_slice(query)),
        }
    }

    /// Send what was pushed.
    pub async fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Framed { io, write, .. } => {
                if !write.is_empty() {
                    io.write_all(write).await?;
                    io.flush().await?;
                    write.clear();
                }
                Ok(())
            }
            Inner::Https {
                send,
                uri,
                queued,
                pending,
                ..
            } => {
                let send = send
                    .as_mut()
                    .ok_or_else(|| io::Error::other("the connection is closing"))?;
                for body in queued.drain(..) {
                    // Waits while the server's stream limit is reached.
                    std::future::poll_fn(|cx| send.poll_ready(cx))
                        .await
                        .map_err(h2_error)?;
                    let request = http::Request::builder()
                        .method(http::Method::POST)
                        .uri(uri.clone())
                        .header(http::header::CONTENT_TYPE, "application/dns-message")
                        .header(http::header::ACCEPT, "application/dns-message")
                        .header(http::header::CONTENT_LENGTH, body.len())
                        .body(())
                        .map_err(|err| io::Error::other(err.to_string()))?;
                    let (response, mut stream) =
                        send.send_request(request, false).map_err(h2_error)?;
                    stream.send_data(body, true).map_err(h2_error)?;
                    pending.spawn_local(read_answer(response));
                }
                Ok(())
            }
        }
    }

    /// Wait for the next replies and hand each to `deliver`; returns how
    /// many. Cancel-safe. An error (or the peer closing) ends the
    /// connection.
    pub async fn recv(&mut self, deliver: &mut dyn FnMut(Reply<'_>)) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Framed {
                io,
                read,
                start,
                end,
                ..
            } => {
                if *start > 0 {
                    read.copy_within(*start..*end, 0);
                    *end -= *start;
                    *start = 0;
                }
                let space = read.get_mut(*end..).unwrap_or_default();
                let got = io.read(space).await?;
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ));
                }
                *end += got;
                let mut count = 0;
                while let Some(prefix) = read.get(*start..*start + 2) {
                    if *start + 2 > *end {
                        break;
                    }
                    let len = usize::from(u16::from_be_bytes([
                        prefix.first().copied().unwrap_or(0),
                        prefix.get(1).copied().unwrap_or(0),
                    ]));
                    if *start + 2 + len > *end {
                        break;
                    }
                    if let Some(message) = read.get(*start + 2..*start + 2 + len) {
                        deliver(Reply::Message(message));
                    }
                    *start += 2 + len;
                    count += 1;
                }
                Ok(count)
            }
            Inner::Https {
                pending, answer, ..
            } => {
                let Some(joined) = pending.join_next().await else {
                    // Nothing outstanding: nothing will arrive.
                    std::future::pending::<()>().await;
                    return Ok(0);
                };
                match joined {
                    Ok(Ok(body)) => {
                        *answer = body;
                        deliver(Reply::Message(answer));
                    }
                    Ok(Err(DohError::Request)) => deliver(Reply::HttpError),
                    Ok(Err(DohError::Connection(err))) => return Err(h2_error(err)),
                    Err(err) => return Err(io::Error::other(err.to_string())),
                }
                Ok(1)
            }
        }
    }

    /// Close politely (TLS close_notify, HTTP/2 tasks stopped).
    pub async fn close(mut self) {
        if let Inner::Framed { io, .. } = &mut self.inner {
            let _closed = tokio::time::timeout(Duration::from_millis(100), io.shutdown()).await;
        }
    }
}

/// Wait for one DoH answer and read its body.
async fn read_answer(response: h2::client::ResponseFuture) -> Result<Bytes, DohError> {
    let classify = |err: h2::Error| {
        if err.is_reset() {
            DohError::Request
        } else {
            DohError::Connection(err)
        }
    };
    let response = response.await.map_err(classify)?;
    let ok = response.status() == http::StatusCode::OK;
    let mut body = response.into_body();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(classify)?;
        let _released = body.flow_control().release_capacity(chunk.len());
        if out.len() + chunk.len() > MAX_BODY {
            return Err(DohError::Request);
        }
        out.extend_from_slice(chunk.chunk());
    }
    if ok {
        Ok(out.freeze())
    } else {
        Err(DohError::Request)
    }
}
