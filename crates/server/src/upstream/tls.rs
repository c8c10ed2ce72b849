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
//!
//! The client configuration (the roots above all) is built at start when
//! an upstream uses `tls` or `https`, so that a bad CA file stops the
//! start; otherwise on the first handshake (a reload added such an
//! upstream), once for the process. A server that never talks TLS
//! upstream thus never parses the system's roots: 180 KiB of heap, and
//! some resident code, on this host (docs/BENCHMARKS.md, 2026-12-04).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
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

/// The client configurations, ALPN `dot` and ALPN `h2` (for `https`
/// upstreams): roots, versions, the session cache; or why they could not
/// be built.
type ClientConfigs = Result<(Arc<ClientConfig>, Arc<ClientConfig>), String>;

/// What a table of TLS upstream connections needs: the client
/// configurations, one for the process, built at most once.
#[derive(Clone)]
pub(crate) struct TlsUpstreamSetup {
    ca_file: Option<PathBuf>,
    configs: Arc<OnceLock<ClientConfigs>>,
}

/// Which of the two configurations a handshake uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `dot`: DNS over TLS.
    Dot,
    /// `h2`: DNS over HTTPS.
    H2,
}

impl TlsUpstreamSetup {
    /// The setup for upstreams checked against `ca_file` (or the system's
    /// roots); `now` builds the configurations at once, and returns the
    /// error of a bad CA file.
    pub(crate) fn new(
        ca_file: Option<PathBuf>,
        now: bool,
    ) -> Result<Self, crate::tls::TlsSetupError> {
        let setup = Self {
            ca_file,
            configs: Arc::new(OnceLock::new()),
        };
        if now {
            let built = crate::tls::client_configs(setup.ca_file.as_deref())?;
            let _ = setup.configs.set(Ok(built));
        }
        Ok(setup)
    }

    /// The configuration for `alpn`, built on first use (reading the CA
    /// file or the system's roots: a few milliseconds, once).
    fn config(&self, alpn: Alpn) -> io::Result<Arc<ClientConfig>> {
        let configs = self.configs.get_or_init(|| {
            crate::tls::client_configs(self.ca_file.as_deref()).map_err(|err| err.to_string())
        });
        match (configs, alpn) {
            (Ok((dot, _)), Alpn::Dot) => Ok(Arc::clone(dot)),
            (Ok((_, h2)), Alpn::H2) => Ok(Arc::clone(h2)),
            (Err(err), _) => Err(io::Error::other(format!("tls client setup: {err}"))),
        }
    }

    /// Open the TLS session on a new connection to `to`, for the name the
    /// resolver's configuration gives that upstream, offering `alpn`.
    pub(crate) async fn handshake(
        &self,
        alpn: Alpn,
        ctx: &Rc<CoreContext>,
        stream: TcpStream,
        to: SocketAddr,
    ) -> io::Result<TlsStream<TcpStream>> {
        let config = self.config(alpn)?;
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
                let mut pinned = ClientConfig::clone(&config);
                pinned
                    .dangerous()
                    .set_certificate_verifier(Arc::new(verifier));
                Arc::new(pinned)
            }
            None => config,
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
