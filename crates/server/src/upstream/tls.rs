//! DNS over TLS (RFC 7858) to upstreams: what a TLS connection adds to a
//! TCP one. The connections themselves (pipelining, idle close, replies
//! to the resolver) are `upstream::tcp`'s, in a table of their own built
//! with [`TlsUpstreamSetup`]; this module opens the TLS session on a new
//! connection and keeps the backoff after a failure.
//!
//! The certificate is checked against the configured CA file or the
//! system's roots, for the upstream's `name` (which is also the SNI
//! sent); a certificate that fails, or any other handshake failure, ends
//! the connection, is counted, and puts the upstream's connections in
//! backoff. The queries that were waiting for it time out, and the
//! resolver fails over as for any timeout. rustls's client session cache
//! (in the shared configuration) resumes sessions.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::context::CoreContext;
use crate::tls::{PinVerifier, TlsStream};

/// The first wait after a failed connection or handshake; it doubles with
/// each failure in a row.
const BACKOFF_FIRST: Duration = Duration::from_millis(500);
/// The longest wait.
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What a table of TLS upstream connections needs.
#[derive(Clone)]
pub(crate) struct TlsUpstreamSetup {
    /// Roots, versions, ALPN `dot`, the session cache: one for the
    /// process.
    pub(crate) config: Arc<ClientConfig>,
    /// The same with ALPN `h2`, for `https` upstreams.
    pub(crate) h2_config: Arc<ClientConfig>,
}

impl TlsUpstreamSetup {
    /// Open the TLS session on a new connection to `to`, for the name the
    /// resolver's configuration gives that upstream.
    pub(crate) async fn handshake(
        &self,
        ctx: &Rc<CoreContext>,
        stream: TcpStream,
        to: SocketAddr,
    ) -> io::Result<TlsStream<TcpStream>> {
        self.handshake_with(&self.config, ctx, stream, to).await
    }

    /// [`TlsUpstreamSetup::handshake`] with `config` (the h2 one).
    pub(crate) async fn handshake_with(
        &self,
        config: &Arc<ClientConfig>,
        ctx: &Rc<CoreContext>,
        stream: TcpStream,
        to: SocketAddr,
    ) -> io::Result<TlsStream<TcpStream>> {
        let Some((name, pin)) = ctx.upstream_auth(to) else {
            return Err(io::Error::other(format!(
                "{to} is not a tls upstream with a name (reloaded away?)"
            )));
        };
        let server_name = ServerName::try_from(name.clone())
            .map_err(|err| io::Error::other(format!("name {name:?}: {err}")))?;
        // A pinned upstream: the same configuration (versions, ALPN,
        // session cache) with its key checked against the pin instead.
        let config = match pin {
            Some(pin) => {
                let verifier = PinVerifier::new(&pin).ok_or_else(|| {
                    io::Error::other(format!("pin {pin:?} is not a base64 SHA-256"))
                })?;
                let mut pinned = ClientConfig::clone(config);
                pinned
                    .dangerous()
                    .set_certificate_verifier(Arc::new(verifier));
                Arc::new(pinned)
            }
            None => Arc::clone(config),
        };
        let conn = ClientConnection::new(config, server_name).map_err(io::Error::other)?;
        let mut tls = TlsStream::new(stream, conn);
        tls.handshake().await?;
        Ok(tls)
    }
}

/// The backoff of one upstream after failed connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    failures: u32,
    until: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            failures: 0,
            until: Instant::now(),
        }
    }
}

impl Backoff {
    /// Whether a new connection must wait still.
    pub(crate) fn waiting(&self, now: Instant) -> bool {
        now < self.until
    }

    /// Another failure in a row, at `now`.
    pub(crate) fn failed(&mut self, now: Instant) {
        let wait = BACKOFF_FIRST
            .saturating_mul(1u32 << self.failures.min(10))
            .min(BACKOFF_MAX);
        self.failures = self.failures.saturating_add(1);
        self.until = now + wait;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_ceiling() {
        let mut backoff = Backoff::default();
        let now = Instant::now();
        assert!(!backoff.waiting(now));
        let mut waits = Vec::new();
        for _ in 0..10 {
            backoff.failed(now);
            waits.push(backoff.until - now);
        }
        assert_eq!(waits[0], BACKOFF_FIRST);
        assert_eq!(waits[1], BACKOFF_FIRST * 2);
        assert_eq!(*waits.last().unwrap_or(&Duration::ZERO), BACKOFF_MAX);
        assert!(backoff.waiting(now + Duration::from_secs(29)));
        assert!(!backoff.waiting(now + BACKOFF_MAX));
    }
}
