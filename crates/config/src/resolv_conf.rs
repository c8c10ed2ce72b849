//! Upstream servers for the embedded default configuration, taken from the
//! `nameserver` lines of resolv.conf.
//!
//! [`nameservers`] works on the text and is pure, so every edge case is
//! tested without touching the system; [`read_system`] and
//! [`interface_index`] are the thin wrappers that do the I/O.

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use crate::addr::{DNS_PORT, check_upstream, may_loop_back, split_zone};

/// Where the system's resolver configuration lives.
pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";

/// The outcome of reading resolv.conf: the nameservers heimdall can use,
/// in file order, and the ones it skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nameservers {
    /// Usable upstreams, port 53, without duplicates.
    pub usable: Vec<SocketAddr>,
    /// `nameserver` lines that were not used, and why.
    pub skipped: Vec<SkippedNameserver>,
}

/// A `nameserver` line that heimdall did not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedNameserver {
    /// Line number in resolv.conf, from 1.
    pub line: usize,
    /// The address as written.
    pub value: String,
    /// Why it was skipped.
    pub reason: String,
}

impl fmt::Display for SkippedNameserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: {:?} skipped: {}",
            self.line, self.value, self.reason
        )
    }
}

/// Reads the `nameserver` lines of a resolv.conf text.
///
/// - Lines whose first non-blank character is `#` or `;` are comments, and
///   like the C library, `#` or `;` also ends the address.
/// - Other keywords (`search`, `options`, ...) are ignored.
/// - An IPv6 address may carry a zone (`fe80::1%eth0` or `fe80::1%2`);
///   interface names are turned into indexes by `interface_index`.
/// - Nameservers that might be heimdall itself are skipped: one of its
///   `listen` addresses, or any loopback address on one of its listen
///   ports. (`127.0.0.53` when heimdall listens on `127.0.0.1:5353` is
///   kept.) resolv.conf is read without the operator's say, so this rule
///   errs towards skipping.
/// - Unusable addresses (malformed, unspecified, multicast, link-local
///   without a zone) and repeats are skipped with a reason.
///
/// Unlike the C library, more than three nameservers are all used.
pub fn nameservers(
    text: &str,
    listen: &[SocketAddr],
    interface_index: &dyn Fn(&str) -> Option<u32>,
) -> Nameservers {
    let mut out = Nameservers::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let value = words
            .next()
            .map(|w| w.split(['#', ';']).next().unwrap_or_default())
            .unwrap_or_default();
        let skip = |reason: String| SkippedNameserver {
            line: line_no,
            value: value.to_string(),
            reason,
        };
        if value.is_empty() {
            out.skipped
                .push(skip("no address after `nameserver`".to_string()));
            continue;
        }
        let addr = match parse_nameserver(value, interface_index) {
            Ok(addr) => addr,
            Err(reason) => {
                out.skipped.push(skip(reason));
                continue;
            }
        };
        if let Err(reason) = check_upstream(addr) {
            out.skipped.push(skip(reason));
        } else if let Some(own) = may_loop_back(addr, listen) {
            out.skipped.push(skip(format!(
                "it may be heimdall itself (heimdall listens on {own}), which would loop"
            )));
        } else if out.usable.contains(&addr) {
            out.skipped.push(skip("listed twice".to_string()));
        } else {
            out.usable.push(addr);
        }
    }
    out
}

fn parse_nameserver(
    value: &str,
    interface_index: &dyn Fn(&str) -> Option<u32>,
) -> Result<SocketAddr, String> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    let Some((ip, zone)) = split_zone(value) else {
        return Err("not an IP address".to_string());
    };
    let scope_id = match zone.parse::<u32>() {
        Ok(index) => index,
        Err(_) => {
            interface_index(zone).ok_or_else(|| format!("no network interface named {zone:?}"))?
        }
    };
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope_id)))
}

/// Reads [`RESOLV_CONF_PATH`].
pub fn read_system() -> std::io::Result<String> {
    std::fs::read_to_string(RESOLV_CONF_PATH)
}

/// The index of a network interface, from `/sys/class/net/NAME/ifindex`;
/// `None` when there is no such interface.
pub fn interface_index(name: &str) -> Option<u32> {
    // The name comes from a file; keep it from walking the file system.
    let valid = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0']);
    if !valid {
        return None;
    }
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn no_interfaces(_: &str) -> Option<u32> {
        None
    }

    fn eth0_is_2(name: &str) -> Option<u32> {
        (name == "eth0").then_some(2)
    }

    const LISTEN: &[SocketAddr] = &[SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        5353,
    ))];

    #[test]
    fn typical_files() {
        let text = "\
# Generated by NetworkManager
search example.com
options edns0 trust-ad
nameserver 192.168.1.1
nameserver 2001:db8::53
";
        let ns = nameservers(text, LISTEN, &no_interfaces);
        assert_eq!(
            ns.usable,
            vec![sa("192.168.1.1:53"), sa("[2001:db8::53]:53")]
        );
        assert!(ns.skipped.is_empty());

        // systemd-resolved's stub: a different port from heimdall's.
        let text = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n";
        let ns = nameservers(text, LISTEN, &no_interfaces);
        assert_eq!(ns.usable, vec![sa("127.0.0.53:53")]);
    }

    #[test]
    fn comments_and_odd_spacing() {
        let text = "\
#nameserver 10.0.0.1
; nameserver 10.0.0.2
   # nameserver 10.0.0.3
nameserver\t10.0.0.4   # the router
nameserver 10.0.0.5;old
  nameserver   10.0.0.6
nameservers 10.0.0.7
nameserver
";
        let ns = nameservers(text, LISTEN, &no_interfaces);
        assert_eq!(
            ns.usable,
            vec![sa("10.0.0.4:53"), sa("10.0.0.5:53"), sa("10.0.0.6:53")]
        );
        assert_eq!(ns.skipped.len(), 1);
        assert_eq!(ns.skipped[0].line, 8);
        assert!(ns.skipped[0].reason.contains("no address"));
    }

    #[test]
    fn ipv6_zones() {
        let text = "nameserver fe80::1%eth0\nnameserver fe80::2%3\nnameserver fe80::3%wlan9\n\
                    nameserver fe80::4\n";
        let ns = nameservers(text, LISTEN, &eth0_is_2);
        assert_eq!(ns.usable, vec![sa("[fe80::1%2]:53"), sa("[fe80::2%3]:53")]);
        assert_eq!(ns.skipped.len(), 2);
        assert!(
            ns.skipped[0]
                .reason
                .contains("no network interface named \"wlan9\"")
        );
        assert_eq!(ns.skipped[0].line, 3);
        assert!(
            ns.skipped[1].reason.contains("link-local"),
            "{}",
            ns.skipped[1]
        );
    }

    #[test]
    fn self_pointing_addresses_are_skipped() {
        let text = "\
nameserver 127.0.0.1
nameserver 127.0.0.53
nameserver ::1
nameserver 10.1.1.1
";
        // heimdall on port 53 of a specific address: any loopback on 53
        // might be it.
        let listen = [sa("127.0.0.1:53"), sa("[::1]:53")];
        let ns = nameservers(text, &listen, &no_interfaces);
        assert_eq!(ns.usable, vec![sa("10.1.1.1:53")]);
        assert_eq!(ns.skipped.len(), 3);
        assert!(ns.skipped[0].reason.contains("may be heimdall itself"));
        assert!(ns.skipped[0].reason.contains("127.0.0.1:53"));

        // On port 5353, loopback nameservers on 53 are other servers.
        let ns = nameservers(text, LISTEN, &no_interfaces);
        assert_eq!(
            ns.usable,
            vec![
                sa("127.0.0.1:53"),
                sa("127.0.0.53:53"),
                sa("[::1]:53"),
                sa("10.1.1.1:53")
            ]
        );

        // A listen address that is not loopback is skipped when equal.
        let listen = [sa("10.1.1.1:53")];
        let ns = nameservers(text, &listen, &no_interfaces);
        assert!(!ns.usable.contains(&sa("10.1.1.1:53")));
        assert!(ns.skipped.iter().any(|s| s.value == "10.1.1.1"));
    }

    #[test]
    fn unusable_and_repeated() {
        let text = "\
nameserver 0.0.0.0
nameserver dns.example
nameserver 1.1.1.1:53
nameserver 224.0.0.251
nameserver 1.1.1.1
nameserver 1.1.1.1
";
        let ns = nameservers(text, LISTEN, &no_interfaces);
        assert_eq!(ns.usable, vec![sa("1.1.1.1:53")]);
        let reasons: Vec<_> = ns
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 5, "{reasons:?}");
        assert!(reasons[0].1.contains("unspecified"));
        assert!(reasons[1].1.contains("not an IP address"));
        assert!(reasons[2].1.contains("not an IP address"));
        assert!(reasons[3].1.contains("multicast"));
        assert_eq!(reasons[4], (6, "listed twice"));
    }

    #[test]
    fn empty_file() {
        let ns = nameservers("", LISTEN, &no_interfaces);
        assert_eq!(ns, Nameservers::default());
        let ns = nameservers("search example.com\n", LISTEN, &no_interfaces);
        assert!(ns.usable.is_empty());
    }

    #[test]
    fn interface_names_stay_in_sys_class_net() {
        assert_eq!(interface_index("../../../etc"), None);
        assert_eq!(interface_index(".."), None);
        assert_eq!(interface_index(""), None);
        assert_eq!(interface_index("a-name-that-is-far-too-long"), None);
    }
}
