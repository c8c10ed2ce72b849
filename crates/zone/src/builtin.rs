//! Built-in local zones: special-use names (`localhost.` and `invalid.`,
//! RFC 6761; `onion.`, RFC 7686; `resolver.arpa.`, RFC 9462) and the
//! locally served reverse zones of RFC 6303 and RFC 7793 (loopback,
//! RFC 1918, RFC 6598 shared address space, link-local, documentation,
//! unspecified and ULA ranges).
//!
//! The list follows Unbound's default local zones, less three that a
//! forwarder must pass on: `test.` (labs and heimdall's own synthetic
//! upstream serve zones under it), and `home.arpa.` and `service.arpa.`
//! (RFC 8375, RFC 9665: a home network's router answers them, and it is
//! often the upstream; heimdall has no per-zone forwarding to send them
//! elsewhere). docs/OPERATIONS.md lists the zones.
//!
//! They are written as master-file text and go through the same parser as
//! user zones. Each has an SOA and an NS at the apex, so names without data
//! get NXDOMAIN (or NODATA) with the SOA for negative caching.

use crate::error::ZoneError;
use crate::parser::{ZoneRecord, parse_zone};

/// SOA and NS shared by every built-in zone (RFC 6303 section 3).
const APEX: &str = "@ 10800 IN SOA localhost. nobody.invalid. 1 3600 1200 604800 10800\n\
                    @ 10800 IN NS localhost.\n";

const LOOPBACK_V6: &str =
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.";
const UNSPECIFIED_V6: &str =
    "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.";

/// The apexes of the built-in zones without data beyond SOA and NS.
fn empty_zone_apexes() -> Vec<String> {
    let mut apexes: Vec<String> = [
        "0.in-addr.arpa.",
        "10.in-addr.arpa.",
        "168.192.in-addr.arpa.",
        "254.169.in-addr.arpa.",
        "2.0.192.in-addr.arpa.",
        "100.51.198.in-addr.arpa.",
        "113.0.203.in-addr.arpa.",
        "255.255.255.255.in-addr.arpa.",
        UNSPECIFIED_V6,
        "d.f.ip6.arpa.",
        "8.e.f.ip6.arpa.",
        "9.e.f.ip6.arpa.",
        "a.e.f.ip6.arpa.",
        "b.e.f.ip6.arpa.",
        "8.b.d.0.1.0.0.2.ip6.arpa.",
        "invalid.",
        // RFC 7686: never resolved through the DNS; NXDOMAIN below it.
        "onion.",
        // RFC 9462: names of this resolver, which does no DDR (RFC 9462
        // forbids forwarding them).
        "resolver.arpa.",
    ]
    .iter()
    .map(|apex| (*apex).to_owned())
    .collect();
    apexes.extend((16..=31).map(|octet| format!("{octet}.172.in-addr.arpa.")));
    // 100.64.0.0/10, RFC 6598 shared address space (RFC 7793).
    apexes.extend((64..=127).map(|octet| format!("{octet}.100.in-addr.arpa.")));
    apexes
}

/// The records of each built-in zone, one `Vec` per zone.
pub fn builtin_zones() -> Result<Vec<Vec<ZoneRecord>>, ZoneError> {
    let mut texts = vec![
        (
            "localhost.".to_owned(),
            format!(
                "{APEX}@ 10800 IN A 127.0.0.1\n@ 10800 IN AAAA ::1\n* 10800 IN A 127.0.0.1\n* 10800 IN AAAA ::1\n"
            ),
        ),
        (
            "127.in-addr.arpa.".to_owned(),
            format!("{APEX}1.0.0 10800 IN PTR localhost.\n"),
        ),
        (
            LOOPBACK_V6.to_owned(),
            format!("{APEX}@ 10800 IN PTR localhost.\n"),
        ),
    ];
    texts.extend(
        empty_zone_apexes()
            .into_iter()
            .map(|apex| (apex, APEX.to_owned())),
    );
    texts
        .iter()
        .map(|(apex, text)| {
            let origin = heimdall_wire::NameBuf::from_presentation(apex)
                .map_err(|err| ZoneError::syntax("<builtin>", 0, format!("{apex}: {err}")))?;
            parse_zone(text, "<builtin>", Some(&origin), &mut |path| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no includes in built-in zones: {path}"),
                ))
            })
        })
        .collect()
}
