//! Certificates made by the tests (rcgen): a CA of their own and a server
//! certificate it signs, written as PEM files in a directory of the test's
//! own, removed when dropped.

#![allow(unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use heimdall_config::Config;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// A CA and one server certificate for `name` and 127.0.0.1.
pub struct TestCerts {
    pub dir: PathBuf,
    /// The CA's certificate (PEM): what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM, PKCS#8).
    pub key: PathBuf,
    /// The SPKI pin of the server's key (base64 SHA-256).
    pub pin: String,
}

impl TestCerts {
    /// A fresh CA and a certificate for `name` (and 127.0.0.1), in a
    /// directory named after `tag`.
    pub fn new(tag: &str, name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "heimdall-certs-{}-{tag}-{}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::create_dir_all(&dir).expect("cert dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("heimdall test CA {tag}"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_key = KeyPair::generate().expect("ca key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("server key");
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("server cert");
        let digest = ring::digest::digest(&ring::digest::SHA256, &key.public_key_der());
        let out = TestCerts {
            pin: data_encoding::BASE64.encode(digest.as_ref()),
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        std::fs::write(&out.ca, ca_cert.pem()).expect("write ca");
        std::fs::write(&out.cert, cert.pem()).expect("write cert");
        std::fs::write(&out.key, key.serialize_pem()).expect("write key");
        out
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A suffix that keeps two directories of one process apart.
impl TestCerts {
    /// A one-core server forwarding to `upstream` over UDP (validation
    /// off: the synthetic upstream signs nothing), TCP read and idle
    /// timeouts of 500 ms and 3 s, with these certificate and key files;
    /// `tls` is the rest of the `tls:` section (its listen keys), `extra`
    /// more YAML. Every listener, the encrypted ones too, is on 127.0.0.1
    /// with a port the kernel picks.
    pub fn server_config(&self, upstream: SocketAddr, tls: &str, extra: &str) -> Config {
        let yaml = format!(
            "server:\n  cores: [0]\n  listen: [127.0.0.1:53]\n  io_memory: 256KiB\n\
             cache:\n  shard_size: 1MiB\n\
             upstream:\n  servers: [\"{upstream}\"]\n  timeout: 1s\n  attempts: 2\n\
             tcp:\n  read_timeout: 500ms\n  idle_timeout: 3s\n\
             tls:\n{tls}  certificate: {cert}\n  key: {key}\n\
             log:\n  level: warn\ndnssec:\n  mode: \"off\"\n{extra}",
            cert = self.cert.display(),
            key = self.key.display(),
        );
        let mut config = Config::from_yaml_str(&yaml, "test.yaml")
            .unwrap_or_else(|err| panic!("test config refused: {err}\n{yaml}"));
        crate::common::listen_on_any_port(&mut config);
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        for listen in [
            &mut config.tls.listen,
            &mut config.tls.https_listen,
            &mut config.tls.quic_listen,
        ] {
            if !listen.is_empty() {
                *listen = vec![any];
            }
        }
        config
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
