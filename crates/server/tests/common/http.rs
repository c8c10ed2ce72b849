//! A tiny HTTP/1.1 client for the control endpoint (127.0.0.1 only) and a
//! strict reader of the Prometheus text format, independent of the
//! server's own renderer.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::LOOPBACK;

/// One request with `Connection: close`; returns the status and body.
pub fn request(addr: SocketAddr, method: &str, target: &str) -> (u16, String) {
    assert_eq!(addr.ip(), LOOPBACK, "tests only talk to 127.0.0.1");
    let mut stream = TcpStream::connect(addr).expect("connect to the control endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: heimdall\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
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

/// One sample: metric name and sorted labels.
pub type SampleKey = (String, BTreeMap<String, String>);

/// Parse Prometheus text exposition format 0.0.4 strictly: every sample
/// belongs to a family announced by `# TYPE` (histograms by their
/// `_bucket`, `_sum` and `_count` series), label values are quoted with
/// only `\\`, `\"` and `\n` escapes, values are floats, and no sample
/// repeats. Panics with the offending line otherwise.
pub fn parse_metrics(text: &str) -> BTreeMap<SampleKey, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with('#') {
            continue;
        }
        let (name_and_labels, value) = line.rsplit_once(' ').expect(line);
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match name_and_labels.split_once('{') {
            Some((name, rest)) => (
                name,
                parse_labels(rest.strip_suffix('}').expect(line), line),
            ),
            None => (name_and_labels, BTreeMap::new()),
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                (types.get(base).map(String::as_str) == Some("histogram")).then_some(base)
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE: {line}"
        );
        assert!(
            samples.insert((name.to_string(), labels), value).is_none(),
            "repeated sample: {line}"
        );
    }
    samples
}

fn parse_labels(text: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect(line);
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect(line) {
                (i, '"') => break i,
                (_, '\\') => match chars.next().expect(line).1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => panic!("bad escape \\{other}: {line}"),
                },
                (_, c) => value.push(c),
            }
        };
        assert!(labels.insert(name.to_string(), value).is_none(), "{line}");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

/// The sum of every sample of `name` whose labels include `filter`.
pub fn sum(samples: &BTreeMap<SampleKey, f64>, name: &str, filter: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|((sample, labels), _)| {
            sample == name
                && filter
                    .iter()
                    .all(|(key, value)| labels.get(*key).map(String::as_str) == Some(*value))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Run `promtool check metrics` on `text` when promtool is installed
/// (Debian's prometheus package); `None` when it is not.
pub fn promtool_check(text: &str) -> Option<Result<(), String>> {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(text.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    })
}
