//! TLS for the stream transports, on rustls: the certificate and key
//! files read into rustls configurations ([`server_configs`],
//! [`client_config`]), and [`TlsStream`], which runs a rustls connection
//! over any byte stream (a glommio `TcpStream`) as one more byte stream.
//! [`TokioIo`] shows such a stream to h2, which wants tokio's I/O traits,
//! and [`Gathered`] lets a DoH connection send the replies to one read's
//! requests together.
//!
//! Why rustls: its connection types are sans-IO (bytes in with
//! `read_tls`, bytes out with `write_tls`), so they run on glommio
//! unchanged, with no runtime of their own; it is memory-safe Rust and
//! uses ring, which heimdall already builds for DNSSEC.
//!
//! [`TlsStream`] is poll-based, like the streams it wraps: reading feeds
//! the ciphertext that arrives to rustls and hands out the plaintext;
//! writing hands plaintext to rustls and writes the records it makes. A
//! write is complete only once `flush` has run (the writers here flush
//! after each reply); handshake messages and alerts rustls wants to send
//! while a read runs are written by the read.

use std::cell::Cell;
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_lite::io::{AsyncRead, AsyncWrite};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, Connection, RootCertStore, ServerConfig};

use crate::stream::GATHER_LIMIT;
use crate::tickets::{CoreTicketer, TicketKeys};

/// Ciphertext read from the socket at a time: a few records of small
/// DNS messages, or part of a large one (rustls keeps what it has not
/// yet made a record of).
const CIPHERTEXT_CHUNK: usize = 4096;

/// ALPN of DNS over TLS (RFC 7858 section 3.2, registered by RFC 8310).
pub(crate) const ALPN_DOT: &[u8] = b"dot";
/// ALPN of DNS over QUIC (RFC 9250 section 4.1.1).
pub(crate) const ALPN_DOQ: &[u8] = b"doq";
/// ALPN of HTTP/2, for DNS over HTTPS.
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN of HTTP/1.1, for DNS over HTTPS clients without HTTP/2.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why TLS could not be set up at start. Each names the key and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A PEM file could not be read, or holds nothing usable.
    #[error("{key} {path}: {reason}")]
    File {
        /// The config key that names the file.
        key: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate, the key or their pair.
    #[error("tls.certificate and tls.key: {0}")]
    Rustls(String),
}

fn file_error(key: &'static str, path: &Path, reason: impl ToString) -> TlsSetupError {
    TlsSetupError::File {
        key,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The certificates of a PEM file, at least one.
fn read_certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| file_error(key, path, err))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| file_error(key, path, err))?;
    if certs.is_empty() {
        return Err(file_error(
            key,
            path,
            "no certificate in it (a PEM file with \"-----BEGIN CERTIFICATE-----\" blocks)",
        ));
    }
    Ok(certs)
}

/// The crypto heimdall's TLS uses: ring (docs/ARCHITECTURE.md says why).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server configurations of the client-facing listeners: one for DNS
/// over TLS (ALPN `dot`), one for DNS over HTTPS (ALPN `h2`, `http/1.1`),
/// one for DNS over QUIC. All share the certificate slot. Built once as a
/// template; each core takes its own copy ([`ServerConfigs::for_core`])
/// with its own ticketer over the key set every core holds, so a client
/// resumes on whichever core the kernel hands its next connection to.
#[derive(Clone)]
pub(crate) struct ServerConfigs {
    pub(crate) dot: Arc<ServerConfig>,
    pub(crate) doh: Arc<ServerConfig>,
    /// DNS over QUIC: TLS 1.3 only (QUIC has no other), ALPN `doq`.
    pub(crate) doq: Arc<ServerConfig>,
    /// The certificate all present, replaced by a reload.
    pub(crate) certificate: Arc<CertificateSlot>,
    /// The first session-ticket key set and the rotation period; `None`
    /// with `tls.ticket_rotation: 0s`.
    pub(crate) tickets: Option<(Arc<TicketKeys>, std::time::Duration)>,
    /// This core's ticketer (a copy made by `for_core`).
    pub(crate) ticketer: Option<Arc<CoreTicketer>>,
}

impl ServerConfigs {
    /// A core's copy: the same certificate slot and session cache, and a
    /// ticketer of its own over the first key set.
    pub(crate) fn for_core(&self) -> ServerConfigs {
        let Some((keys, period)) = &self.tickets else {
            return self.clone();
        };
        let ticketer = Arc::new(CoreTicketer::new(Arc::clone(keys), *period));
        let with_ticketer = |config: &Arc<ServerConfig>| {
            let mut config = ServerConfig::clone(config);
            config.ticketer = Arc::clone(&ticketer) as _;
            Arc::new(config)
        };
        ServerConfigs {
            dot: with_ticketer(&self.dot),
            doh: with_ticketer(&self.doh),
            doq: with_ticketer(&self.doq),
            certificate: Arc::clone(&self.certificate),
            tickets: self.tickets.clone(),
            ticketer: Some(ticketer),
        }
    }
}

/// The certificate and key the listeners present: read at start and
/// again at each reload (SIGHUP), which replaces it only when the new
/// files are good. Shared by the cores; read once per handshake (a
/// lock no query takes).
#[derive(Debug)]
pub(crate) struct CertificateSlot {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

impl CertificateSlot {
    /// Present `loaded` (from [`load_certified_key`]) from now on.
    /// Returns whether its certificate chain differs from the one it
    /// replaces (the same files read again do not).
    pub(crate) fn replace(&self, loaded: Arc<rustls::sign::CertifiedKey>) -> bool {
        match self.current.write() {
            Ok(mut current) => {
                let changed = current.cert != loaded.cert;
                *current = loaded;
                changed
            }
            Err(_) => false,
        }
    }
}

impl rustls::server::ResolvesServerCert for CertificateSlot {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.current.read().ok().map(|current| Arc::clone(&current))
    }
}

/// The certificate chain and its private key, checked to belong together.
pub(crate) fn load_certified_key(
    certificate: &Path,
    key: &Path,
) -> Result<Arc<rustls::sign::CertifiedKey>, TlsSetupError> {
    let certs = read_certificates("tls.certificate", certificate)?;
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(|err| file_error("tls.key", key, err))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(private_key)
        .map_err(|err| file_error("tls.key", key, err))?;
    let certified = rustls::sign::CertifiedKey::new(certs, signing_key);
    certified.keys_match().map_err(|err| {
        TlsSetupError::Rustls(format!(
            "{} does not belong to {}: {err}",
            key.display(),
            certificate.display()
        ))
    })?;
    Ok(Arc::new(certified))
}

/// Read the certificate chain and key and build [`ServerConfigs`]. TLS
/// 1.2 and 1.3; session tickets sealed with heimdall's key set (made
/// here, rotated every `ticket_rotation` by core 0: crate::tickets), or
/// with `ticket_rotation` zero none; TLS 1.2 session IDs.
pub(crate) fn server_configs(
    certificate: &Path,
    key: &Path,
    ticket_rotation: std::time::Duration,
) -> Result<ServerConfigs, TlsSetupError> {
    let slot = Arc::new(CertificateSlot {
        current: std::sync::RwLock::new(load_certified_key(certificate, key)?),
    });
    let base = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| TlsSetupError::Rustls(err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&slot) as _);
    // The ticketer is set per core (`for_core`); the template has none.
    let tickets = if ticket_rotation.is_zero() {
        None
    } else {
        let keys = TicketKeys::generate().map_err(|err| TlsSetupError::Rustls(err.to_string()))?;
        Some((keys, ticket_rotation))
    };
    // The same certificate slot, so a reload reaches DoQ too.
    let mut doq = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|err| TlsSetupError::Rustls(err.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&slot) as _);
    doq.alpn_protocols = vec![ALPN_DOQ.to_vec()];
    // QUIC allows no other value but "no early data" (or all of it).
    doq.max_early_data_size = 0;
    let mut dot = base.clone();
    dot.alpn_protocols = vec![ALPN_DOT.to_vec()];
    let mut doh = base;
    doh.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    Ok(ServerConfigs {
        dot: Arc::new(dot),
        doh: Arc::new(doh),
        doq: Arc::new(doq),
        certificate: slot,
        tickets,
        ticketer: None,
    })
}

/// The client configuration for `tls` upstreams (ALPN `dot`) and for
/// `https` upstreams (ALPN `h2`): certificates checked against `ca_file`
/// (PEM) or, without one, the system's trusted roots; rustls's in-memory
/// session cache for resumption.
pub(crate) fn client_configs(
    ca_file: Option<&Path>,
) -> Result<(Arc<ClientConfig>, Arc<ClientConfig>), TlsSetupError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in read_certificates("upstream.tls_ca_file", path)? {
                roots
                    .add(cert)
                    .map_err(|err| file_error("upstream.tls_ca_file", path, err))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for err in &found.errors {
                log::warn!("system root certificates: {err}");
            }
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            if ignored > 0 {
                log::debug!("system root certificates: {ignored} could not be used");
            }
            if added == 0 {
                log::warn!(
                    "no system root certificates found (is ca-certificates installed?); tls \
                     upstreams will fail unless upstream.tls_ca_file is set"
                );
            }
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| TlsSetupError::Rustls(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut h2 = config.clone();
    config.alpn_protocols = vec![ALPN_DOT.to_vec()];
    h2.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok((Arc::new(config), Arc::new(h2)))
}

/// A server TLS connection over `stream` after its handshake, or `None`
/// when the handshake failed or did not end within `limit` (logged at
/// debug level; the caller counts it).
pub(crate) async fn accept(
    stream: glommio::net::TcpStream,
    config: Arc<ServerConfig>,
    limit: std::time::Duration,
) -> Option<TlsStream<glommio::net::TcpStream>> {
    let conn = rustls::ServerConnection::new(config).ok()?;
    let mut tls = TlsStream::new(stream, conn);
    let deadline = std::time::Instant::now() + limit;
    match crate::stream::until(deadline, tls.handshake()).await {
        Some(Ok(())) => Some(tls),
        Some(Err(err)) => {
            log::debug!("TLS handshake: {err}");
            None
        }
        None => {
            log::debug!("TLS handshake: not done within {limit:?}");
            None
        }
    }
}

/// Accepts an upstream whose certificate carries the pinned key (the
/// SHA-256 of its SubjectPublicKeyInfo; RFC 7858 section 4.2), instead
/// of checking it against a CA and the name: the out-of-band key-pinned
/// profile, for a resolver with a self-signed or private certificate.
/// Only the end-entity certificate counts: its key is the one that signs
/// the handshake, which is still checked. A pin on another certificate of
/// the chain would prove nothing without the chain's signatures.
#[derive(Debug)]
pub(crate) struct PinVerifier {
    pin: [u8; 32],
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    /// A verifier for `pin` (base64 of 32 bytes, as the config checks).
    pub(crate) fn new(pin: &str) -> Option<Self> {
        let digest = data_encoding::BASE64.decode(pin.as_bytes()).ok()?;
        Some(Self {
            pin: <[u8; 32]>::try_from(digest.as_slice()).ok()?,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        })
    }
}

impl rustls::client::danger::ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let matches = spki_of(end_entity).is_some_and(|spki| {
            ring::digest::digest(&ring::digest::SHA256, spki).as_ref() == self.pin
        });
        if matches {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// One DER element: its tag, its content, the whole element, and what
/// follows it.
struct Der<'a> {
    tag: u8,
    whole: &'a [u8],
    content: &'a [u8],
    rest: &'a [u8],
}

/// The DER element at the start of `input`; `None` for anything
/// malformed.
fn der_element(input: &[u8]) -> Option<Der<'_>> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (length, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        let length = bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, 2 + count)
    };
    let end = header.checked_add(length)?;
    Some(Der {
        tag,
        whole: input.get(..end)?,
        content: input.get(header..end)?,
        rest: input.get(end..)?,
    })
}

/// The SubjectPublicKeyInfo (whole DER element) of an X.509 certificate.
fn spki_of(certificate: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    let body = der_element(certificate)?.content;
    let tbs = der_element(body)?.content;
    let first = der_element(tbs)?;
    let mut rest = if first.tag == VERSION {
        first.rest
    } else {
        tbs
    };
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = der_element(rest)?.rest;
    }
    let spki = der_element(rest)?;
    (spki.tag == SEQUENCE).then_some(spki.whole)
}

/// A rustls connection over the byte stream `IO`.
pub(crate) struct TlsStream<IO> {
    io: IO,
    conn: Connection,
    /// Ciphertext read from `io` that rustls has not taken yet:
    /// `incoming[start..end]`.
    incoming: Box<[u8]>,
    start: usize,
    end: usize,
    /// `io` reached its end.
    eof: bool,
    /// `close_notify` has been queued.
    closing: bool,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsStream<IO> {
    /// `conn` (a new client or server connection) over `io`.
    pub(crate) fn new(io: IO, conn: impl Into<Connection>) -> Self {
        Self {
            io,
            conn: conn.into(),
            incoming: vec![0u8; CIPHERTEXT_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            closing: false,
        }
    }

    /// The rustls connection (ALPN, version).
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Whether the handshake resumed an earlier session (a ticket or a
    /// session ID) instead of a full key exchange.
    pub(crate) fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// Run the handshake to its end. An error is a failed handshake: a
    /// peer that is not speaking TLS, a certificate refused, no common
    /// version, cipher suite or ALPN protocol, or the stream ending.
    pub(crate) async fn handshake(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_handshake(cx)).await
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.conn.wants_write() {
                ready!(self.poll_write_tls(cx))?;
            }
            if !self.conn.is_handshaking() {
                return Poll::Ready(Ok(()));
            }
            if self.eof {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection ended during the TLS handshake",
                )));
            }
            ready!(self.poll_fill(cx))?;
        }
    }

    /// Write what rustls has ready (records, handshake messages, alerts)
    /// to `io`, until it has nothing left.
    fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.conn.wants_write() {
            let mut out = PollWriter {
                io: &mut self.io,
                cx,
            };
            match self.conn.write_tls(&mut out) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Read ciphertext from `io` (when none is left over) and hand what
    /// rustls takes of it to rustls. A TLS error is `InvalidData`, after
    /// the alert rustls made for it has been sent (best effort).
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            let read = ready!(Pin::new(&mut self.io).poll_read(cx, &mut self.incoming))?;
            if read == 0 {
                self.eof = true;
                // Tell rustls, so that a missing close_notify is seen.
                let _ = self.conn.read_tls(&mut io::empty());
                return Poll::Ready(Ok(()));
            }
            self.end = read;
        }
        let mut pending = self.incoming.get(self.start..self.end).unwrap_or_default();
        let taken = self.conn.read_tls(&mut pending)?;
        if taken == 0 {
            // rustls holds as much as it will: a record larger than it
            // allows. Never spin on it.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS record too large",
            )));
        }
        self.start += taken;
        if let Err(err) = self.conn.process_new_packets() {
            // Send the alert; the connection is over either way.
            let _ = self.poll_write_tls(cx);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, err)));
        }
        Poll::Ready(Ok(()))
    }
}

/// `io`'s `poll_write` as a `std::io::Write` for rustls's `write_tls`:
/// `Pending` is `WouldBlock` (and the waker is registered).
struct PollWriter<'a, 'b, IO> {
    io: &'a mut IO,
    cx: &'a mut Context<'b>,
}

impl<IO: AsyncWrite + Unpin> io::Write for PollWriter<'_, '_, IO> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.io).poll_write(self.cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match this.conn.reader().read(buf) {
                Ok(read) => return Poll::Ready(Ok(read)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: an end all the same.
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                    return Poll::Ready(Ok(0));
                }
                Err(err) => return Poll::Ready(Err(err)),
            }
            if this.conn.wants_write() {
                // Handshake messages and key updates go out while reading;
                // a full socket is left to the next write or flush.
                if let Poll::Ready(Err(err)) = this.poll_write_tls(cx) {
                    return Poll::Ready(Err(err));
                }
            }
            if this.eof {
                return Poll::Ready(Ok(0));
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // What rustls already holds goes first: that bounds its buffer.
        ready!(this.poll_write_tls(cx))?;
        let taken = this.conn.writer().write(buf)?;
        if let Poll::Ready(Err(err)) = this.poll_write_tls(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(taken))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_tls(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            this.closing = true;
            this.conn.send_close_notify();
        }
        ready!(this.poll_write_tls(cx))?;
        Pin::new(&mut this.io).poll_close(cx)
    }
}

/// A stream whose writes can be held and sent together: while the shared
/// `held` flag is up, what is written is gathered here and a flush does
/// nothing; once it is down, a flush hands all of it to the stream below
/// in one write (for a [`TlsStream`], one record and one send).
///
/// Why: h2 flushes each time its connection is polled, which is once per
/// accepted request, so the replies to the requests of one read would
/// leave one record and one `send` each. A DoH connection holds its
/// writes while it answers the requests already read and lets them go
/// before it waits. Under `benches/peers/encrypted.sh` (100 connections
/// x 16 pipelined) the server read about 16 requests per read but sent
/// one `send` per reply (86,678 in 2 s); gathered, 4,505 in 2 s.
pub(crate) struct Gathered<T> {
    io: T,
    held: Rc<Cell<bool>>,
    out: Vec<u8>,
    /// `out[..sent]` has been written to `io`.
    sent: usize,
}

impl<T: AsyncWrite + Unpin> Gathered<T> {
    /// `io`, holding its writes while `held` is up.
    pub(crate) fn new(io: T, held: Rc<Cell<bool>>) -> Self {
        Self {
            io,
            held,
            out: Vec::new(),
            sent: 0,
        }
    }

    /// Write everything gathered to `io`.
    fn poll_push(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rest) = self.out.get(self.sent..).filter(|rest| !rest.is_empty()) {
            let written = ready!(Pin::new(&mut self.io).poll_write(cx, rest))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += written;
        }
        self.out.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Gathered<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Gathered<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Past one write's worth (one TLS record) the gathered bytes go
        // to the stream below before more are taken.
        if !this.out.is_empty() && this.out.len() + buf.len() > GATHER_LIMIT {
            ready!(this.poll_push(cx))?;
        }
        this.out.extend_from_slice(buf);
        if !this.held.get()
            && let Poll::Ready(Err(err)) = this.poll_push(cx)
        {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.held.get() {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_push(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_push(cx))?;
        Pin::new(&mut this.io).poll_close(cx)
    }
}

/// A futures-io stream shown to h2 through tokio's I/O traits. h2 needs
/// only the traits (and a waker, which any executor's is): no tokio
/// runtime, reactor or timer is involved.
pub(crate) struct TokioIo<T>(pub(crate) T);

impl<T: AsyncRead + Unpin> tokio::io::AsyncRead for TokioIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = ready!(Pin::new(&mut self.0).poll_read(cx, buf.initialize_unfilled()))?;
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> tokio::io::AsyncWrite for TokioIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spki_is_found_in_a_certificate_and_nothing_is_read_past_bad_input() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["dns.test".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(spki_of(cert.der()), Some(key.public_key_der().as_slice()));
        // Truncated anywhere: no SPKI, no panic.
        for len in 0..cert.der().len() {
            assert_eq!(spki_of(&cert.der()[..len]), None, "{len}");
        }
        // The pin of that key is accepted, another is not.
        let digest = ring::digest::digest(&ring::digest::SHA256, &key.public_key_der());
        let pin = data_encoding::BASE64.encode(digest.as_ref());
        let verifier = PinVerifier::new(&pin).unwrap();
        use rustls::client::danger::ServerCertVerifier as _;
        let name = rustls::pki_types::ServerName::try_from("any.test").unwrap();
        let now = rustls::pki_types::UnixTime::now();
        assert!(
            verifier
                .verify_server_cert(cert.der(), &[], &name, &[], now)
                .is_ok()
        );
        let other = PinVerifier::new(&data_encoding::BASE64.encode(&[7u8; 32])).unwrap();
        assert!(
            other
                .verify_server_cert(cert.der(), &[], &name, &[], now)
                .is_err()
        );
        assert!(PinVerifier::new("not base64").is_none());
    }
}
