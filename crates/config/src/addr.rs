//! Listen and upstream addresses: parsing the forms an operator writes,
//! the checks that make an address usable, and the rule for when an
//! upstream would send queries back to heimdall itself.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The DNS port, used for upstreams written without one.
pub(crate) const DNS_PORT: u16 = 53;

/// Parses a listen address. The port is required: a DNS server on an
/// unexpected port is a silent misconfiguration.
pub(crate) fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let addr = match text.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) if text.parse::<IpAddr>().is_ok() || split_zone(text).is_some() => {
            let example = if text.contains(':') {
                format!("\"[{text}]:53\"")
            } else {
                format!("{text}:53")
            };
            return Err(format!(
                "listen address {text:?} needs a port, e.g. {example}"
            ));
        }
        Err(_) => {
            return Err(bad_address(
                text,
                "listen address",
                "127.0.0.1:53 or \"[::1]:53\"",
            ));
        }
    };
    if addr.port() == 0 {
        // Each core binds its own SO_REUSEPORT socket; port 0 would give
        // every core a different random port.
        return Err(format!(
            "listen address {text}: port 0 is not allowed; give a fixed port"
        ));
    }
    if addr.ip().is_multicast() {
        return Err(format!(
            "listen address {text}: a multicast address cannot be listened on"
        ));
    }
    Ok(addr)
}

/// Parses an upstream server: `ip`, `ip:port`, `[ipv6]:port`, `ipv6`, or
/// `ipv6%index` for a link-local address; the port defaults to 53.
pub(crate) fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let addr = if let Ok(addr) = text.parse::<SocketAddr>() {
        addr
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        SocketAddr::new(ip, DNS_PORT)
    } else if let Some((ip, zone)) = split_zone(text) {
        let scope_id = zone
            .parse::<u32>()
            .map_err(|_| zone_name_error(text, zone))?;
        SocketAddr::V6(SocketAddrV6::new(ip, DNS_PORT, 0, scope_id))
    } else if let Some(zone) = bracketed_zone_name(text) {
        return Err(zone_name_error(text, zone));
    } else if looks_like_host_name(text) {
        return Err(format!(
            "upstream {text:?} is a host name; upstream servers must be IP addresses, because \
             heimdall cannot look names up before it has an upstream"
        ));
    } else {
        return Err(bad_address(
            text,
            "upstream server",
            "9.9.9.9, 9.9.9.9:53 or \"[2620:fe::fe]:53\"",
        ));
    };
    check_upstream(addr)?;
    Ok(addr)
}

/// The checks every upstream must pass, wherever it was written.
pub(crate) fn check_upstream(addr: SocketAddr) -> Result<(), String> {
    if addr.port() == 0 {
        return Err(format!("upstream {addr}: port 0 is not a DNS server port"));
    }
    let ip = addr.ip();
    if ip.is_unspecified() {
        return Err(format!(
            "upstream {addr}: the unspecified address is not a server"
        ));
    }
    if ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return Err(format!(
            "upstream {addr}: a multicast or broadcast address is not a server"
        ));
    }
    if let SocketAddr::V6(v6) = addr {
        // The kernel cannot pick an interface for fe80::/10 on its own.
        if is_unicast_link_local(v6.ip()) && v6.scope_id() == 0 {
            return Err(format!(
                "upstream {addr}: a link-local address needs the interface index, e.g. \
                 \"[{}%2]:{}\"",
                v6.ip(),
                v6.port()
            ));
        }
    }
    Ok(())
}

/// Whether an upstream certainly reaches one of heimdall's own listen
/// sockets: the same address, or a loopback address on the port of a
/// wildcard listener.
///
/// Used for upstreams an operator wrote; heimdall listening on
/// 127.0.0.1:53 and forwarding to a local resolver on 127.0.0.53:53 is a
/// real set-up and must not be refused.
pub(crate) fn loops_back(upstream: SocketAddr, listen: &[SocketAddr]) -> Option<SocketAddr> {
    listen.iter().copied().find(|l| {
        l.port() == upstream.port()
            && (l.ip() == upstream.ip() || (l.ip().is_unspecified() && upstream.ip().is_loopback()))
    })
}

/// Whether an upstream might reach heimdall: one of its listen addresses,
/// or any loopback address on one of its listen ports.
///
/// Used for nameservers taken from resolv.conf without the operator's
/// say, where skipping one too many is better than a forwarding loop.
pub(crate) fn may_loop_back(upstream: SocketAddr, listen: &[SocketAddr]) -> Option<SocketAddr> {
    listen.iter().copied().find(|l| {
        l.port() == upstream.port() && (l.ip() == upstream.ip() || upstream.ip().is_loopback())
    })
}

fn is_unicast_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80)
}

/// Splits `ipv6%zone` (no brackets, no port).
pub(crate) fn split_zone(text: &str) -> Option<(Ipv6Addr, &str)> {
    let (ip, zone) = text.split_once('%')?;
    let ip = ip.parse::<Ipv6Addr>().ok()?;
    (!zone.is_empty()).then_some((ip, zone))
}

/// The zone of `[ipv6%name]:port` when it is not numeric (std only parses
/// numeric scope ids).
fn bracketed_zone_name(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    let (inside, _) = inner.split_once(']')?;
    split_zone(inside).map(|(_, zone)| zone)
}

fn zone_name_error(text: &str, zone: &str) -> String {
    format!(
        "address {text:?}: write the interface index instead of the name {zone:?} \
         (see `ip link`), e.g. fe80::1%2"
    )
}

fn looks_like_host_name(text: &str) -> bool {
    !text.is_empty()
        && text.chars().any(|c| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && !text.contains("::")
        && text
            .split(':')
            .next()
            .is_some_and(|host| host.contains('.'))
}

fn bad_address(text: &str, what: &str, example: &str) -> String {
    format!("invalid {what} {text:?}: expected an address such as {example}")
}

const ADDRESS_EXPECTING: &str =
    "an address such as 127.0.0.1:53 or \"[::1]:53\" (IPv6 addresses must be quoted)";

macro_rules! address_type {
    ($name:ident, $parse:path, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) struct $name(pub(crate) SocketAddr);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct AddrVisitor;

                impl Visitor<'_> for AddrVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(ADDRESS_EXPECTING)
                    }

                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $parse(v).map($name).map_err(E::custom)
                    }
                }

                deserializer.deserialize_str(AddrVisitor)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }
    };
}

address_type!(
    ListenAddr,
    parse_listen,
    "A listen address as written in the YAML."
);
address_type!(
    UpstreamAddr,
    parse_upstream,
    "An upstream server as written in the YAML."
);

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("127.0.0.1:5353"), Ok(sa("127.0.0.1:5353")));
        assert_eq!(parse_listen("[::1]:53"), Ok(sa("[::1]:53")));
        assert_eq!(parse_listen("0.0.0.0:53"), Ok(sa("0.0.0.0:53")));
        assert_eq!(parse_listen("[fe80::1%3]:53"), Ok(sa("[fe80::1%3]:53")));
    }

    #[test]
    fn listen_rejects_with_reasons() {
        let err = |s: &str| parse_listen(s).unwrap_err();
        assert!(
            err("127.0.0.1").contains("needs a port, e.g. 127.0.0.1:53"),
            "{}",
            err("127.0.0.1")
        );
        assert!(
            err("::1").contains("needs a port, e.g. \"[::1]:53\""),
            "{}",
            err("::1")
        );
        assert!(err("127.0.0.1:0").contains("port 0"));
        assert!(err("localhost:53").contains("expected an address such as 127.0.0.1:53"));
        assert!(err("1.2.3.4:99999").contains("invalid listen address"));
        assert!(err("[ff02::1]:53").contains("multicast"));
    }

    #[test]
    fn upstream_forms() {
        assert_eq!(parse_upstream("9.9.9.9"), Ok(sa("9.9.9.9:53")));
        assert_eq!(parse_upstream("9.9.9.9:5353"), Ok(sa("9.9.9.9:5353")));
        assert_eq!(parse_upstream("2620:fe::fe"), Ok(sa("[2620:fe::fe]:53")));
        assert_eq!(
            parse_upstream("[2620:fe::fe]:853"),
            Ok(sa("[2620:fe::fe]:853"))
        );
        assert_eq!(parse_upstream("fe80::1%2"), Ok(sa("[fe80::1%2]:53")));
        assert_eq!(parse_upstream("[fe80::1%2]:54"), Ok(sa("[fe80::1%2]:54")));
    }

    #[test]
    fn upstream_rejects_with_reasons() {
        let err = |s: &str| parse_upstream(s).unwrap_err();
        assert!(
            err("dns.quad9.net").contains("is a host name"),
            "{}",
            err("dns.quad9.net")
        );
        assert!(err("dns.quad9.net:53").contains("is a host name"));
        assert!(err("fe80::1%eth0").contains("interface index instead of the name \"eth0\""));
        assert!(err("[fe80::1%eth0]:53").contains("interface index"));
        assert!(err("fe80::1").contains("link-local address needs the interface index"));
        assert!(err("0.0.0.0").contains("unspecified"));
        assert!(err("[::]:53").contains("unspecified"));
        assert!(err("224.0.0.1").contains("multicast"));
        assert!(err("255.255.255.255").contains("broadcast"));
        assert!(err("9.9.9.9:0").contains("port 0"));
        assert!(err("9.9.9.9:70000").contains("invalid upstream server"));
        assert!(err("").contains("invalid upstream server"));
    }

    #[test]
    fn loop_rules() {
        let listen = [sa("127.0.0.1:5353")];
        assert_eq!(loops_back(sa("127.0.0.1:5353"), &listen), Some(listen[0]));
        assert_eq!(loops_back(sa("127.0.0.53:53"), &listen), None);
        assert_eq!(loops_back(sa("127.0.0.2:5353"), &listen), None);
        assert_eq!(
            may_loop_back(sa("127.0.0.2:5353"), &listen),
            Some(listen[0])
        );
        assert_eq!(may_loop_back(sa("[::1]:5353"), &listen), Some(listen[0]));
        assert_eq!(may_loop_back(sa("127.0.0.53:53"), &listen), None);
        assert_eq!(may_loop_back(sa("10.0.0.1:5353"), &listen), None);

        let wildcard = [sa("0.0.0.0:53")];
        assert_eq!(
            loops_back(sa("127.0.0.53:53"), &wildcard),
            Some(wildcard[0])
        );
        assert_eq!(loops_back(sa("9.9.9.9:53"), &wildcard), None);
    }
}
