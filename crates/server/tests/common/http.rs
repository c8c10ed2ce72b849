//! A tiny HTTP/1.1 client for the control endpoint (127.0.0.1 only), and
//! `/metrics` read with heimdall-testkit's strict Prometheus parser.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use heimdall_testkit::prometheus::Exposition;

use super::LOOPBACK;

/// The control token the tests' servers are given
/// ([`super::listen_on_any_port`]) and their requests carry.
pub const TEST_TOKEN: &str = "heimdall-test-token";

/// One request with `Connection: close`, with the test token; returns the
/// status and body.
pub fn request(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    assert_eq!(addr.ip(), LOOPBACK, "tests only talk to 127.0.0.1");
    let mut stream = TcpStream::connect(addr).expect("connect to the control endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: heimdall\r\nAuthorization: Bearer {TEST_TOKEN}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .expect("read the response");
    let text = String::from_utf8(response).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

/// `GET target`, which must answer 200; the body.
pub fn get_ok(addr: SocketAddr, target: &str) -> String {
    let (status, body) = request(addr, "GET", target);
    assert_eq!(status, 200, "GET {target}: {body}");
    body
}

/// Parse a `/metrics` body with the strict exposition reader shared with
/// the control crate's tests (heimdall-testkit), failing with the text.
pub fn metrics(text: &str) -> Exposition {
    heimdall_testkit::prometheus::parse(text).unwrap_or_else(|err| panic!("{err}\n{text}"))
}
