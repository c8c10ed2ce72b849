//! The TLS client settings of `--transport tls|https`: a rustls client
//! configuration (ring provider, TLS 1.2 and 1.3, session resumption on
//! unless asked otherwise) trusting a CA file, or checking nothing about
//! the certificate (`--tls-insecure`, for benchmarks against self-signed
//! certificates; the handshake signatures are still verified).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// ALPN of DNS over TLS (RFC 7858 section 3.2 via the IANA registry).
pub const ALPN_DOT: &[u8] = b"dot";
/// ALPN of DNS over HTTPS: HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// Sessions the client remembers for resumption (one per server name is
/// what a load test uses; TLS 1.3 keeps several tickets per name).
const SESSION_CACHE: usize = 1024;

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust<'a> {
    /// Against the CA certificates of this PEM file.
    CaFile(&'a Path),
    /// Not at all (the handshake signature still is).
    Insecure,
}

/// A client configuration offering `alpn`, with resumption (tickets and
/// session IDs) when `resumption` is true.
pub fn client_config(
    trust: &Trust<'_>,
    alpn: &[u8],
    resumption: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS versions: {err}"))?;
    let mut config = match trust {
        Trust::CaFile(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|err| format!("{}: {err}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|err| format!("{}: {err}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{} holds no certificate", path.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config.resumption = if resumption {
        Resumption::store(Arc::new(ClientSessionMemoryCache::new(SESSION_CACHE)))
    } else {
        Resumption::disabled()
    };
    Ok(Arc::new(config))
}

/// The name to send as SNI and check the certificate against: a DNS name
/// or an IP address.
pub fn server_name(name: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(name.to_string()).map_err(|err| format!("bad TLS name {name:?}: {err}"))
}

/// Accepts any certificate chain; verifies handshake signatures with the
/// provider's algorithms, so the key exchange is the real one.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_built() {
        let config = client_config(&Trust::Insecure, ALPN_DOT, true).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"dot".to_vec()]);
        let config = client_config(&Trust::Insecure, ALPN_H2, false).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec()]);
        assert!(
            client_config(
                &Trust::CaFile(Path::new("/nonexistent.pem")),
                ALPN_DOT,
                true
            )
            .is_err()
        );
        assert!(server_name("dns.test").is_ok());
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("bad name!").is_err());
    }
}
