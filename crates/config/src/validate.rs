//! YAML text -> [`RawConfig`] -> [`Config`]: turns serde_yaml's errors into
//! [`ConfigError`]s that name the file, key path and position, and checks
//! the ranges and cross-key rules that make a configuration usable.
//!
//! Validation stops at the first error, in file order: an operator fixes
//! one thing, runs `heimdall check-config` again, and is never shown an
//! error caused by an earlier one.

use std::fmt::Display;
use std::net::SocketAddr;
use std::time::Duration;

use crate::addr::loops_back;
use crate::cores::CoreSelection;
use crate::error::{ConfigError, Location};
use crate::keys::{
    AclConfig, BlocklistConfig, CacheConfig, Config, ControlConfig, CookiesConfig, DnssecConfig,
    DnstapConfig, HintsConfig, LocalConfig, RateLimitConfig, RawAcl, RawBlocklist, RawCache,
    RawConfig, RawControl, RawCookies, RawDnssec, RawDnstap, RawHints, RawLocal, RawRateLimit,
    RawServer, RawTcp, RawTls, RawUpstream, ServerConfig, TcpConfig, TlsConfig, UpstreamConfig,
    keys,
};
use crate::locate::locate;
use crate::schema::{Valid, int};
use crate::units::{ByteSize, HumanDuration, format_duration, format_size};
use crate::upstream::UpstreamTransport;
use crate::{defaults, limits};

/// Deserializes the raw schema, with the key path and position of the
/// first problem.
pub(crate) fn parse(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| yaml_error(file, err))
}

fn yaml_error(file: &str, err: serde_path_to_error::Error<serde_yaml::Error>) -> ConfigError {
    let key = clean_path(&err.path().to_string());
    let inner = err.into_inner();
    let location = inner.location().map(|l| Location::from_yaml(&l));
    let mut reason = inner.to_string();
    // serde_yaml repeats the position and its own idea of the path in the
    // message; both are given separately here.
    if let Some(l) = location {
        reason = reason.replacen(&format!(" at line {} column {}", l.line, l.column), "", 1);
    }
    reason = strip_path_prefix(&reason, &key).to_string();
    ConfigError::Invalid {
        file: file.to_string(),
        key,
        location,
        reason: reword(&reason),
    }
}

/// serde_path_to_error writes `.` for the root and `?` where it lost
/// track (inside a syntax error); both become the nearest known key.
fn clean_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let known: Vec<&str> = path
        .split('.')
        .take_while(|s| !s.starts_with('?'))
        .collect();
    known.join(".")
}

/// Removes a leading `path: ` where path is `key` or one of its ancestors.
fn strip_path_prefix<'a>(reason: &'a str, key: &str) -> &'a str {
    let mut ends: Vec<usize> = key
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '['))
        .map(|(i, _)| i)
        .collect();
    ends.push(key.len());
    for end in ends.into_iter().rev() {
        let Some(prefix) = key.get(..end) else {
            continue;
        };
        if let Some(rest) = reason
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(": "))
        {
            return rest;
        }
    }
    reason
}

/// Speaks YAML rather than Rust: keys, not fields; mappings, not structs.
fn reword(reason: &str) -> String {
    let mut out = reason
        .replace("unknown field", "unknown key")
        .replace("duplicate field", "duplicate key")
        .replace("missing field", "missing key")
        .replace("unit value", "empty value");
    for rust_type in ["u8", "u32", "u64", "usize"] {
        out = out.replace(
            &format!("expected {rust_type}"),
            "expected a whole number (0 or more)",
        );
    }
    while let Some(start) = out.find("struct Raw") {
        let name_end = out
            .get(start + "struct ".len()..)
            .and_then(|rest| rest.find(|c: char| !c.is_ascii_alphanumeric()))
            .map_or(out.len(), |n| start + "struct ".len() + n);
        out.replace_range(start..name_end, "a mapping");
    }
    out
}

/// Checks a parsed configuration and builds the [`Config`].
pub(crate) fn validate(raw: RawConfig, text: &str, file: &str) -> Result<Config, ConfigError> {
    let v = Validator { text, file };
    let server = v.server(raw.server)?;
    let cache = v.cache(raw.cache)?;
    let hints = v.hints(raw.hints)?;
    let upstream = v.upstream(raw.upstream, &server.listen)?;
    let tcp = v.tcp(raw.tcp)?;
    let tls = v.tls(raw.tls, &server.listen)?;
    let local = v.local(raw.local)?;
    let blocklist = v.blocklist(raw.blocklist)?;
    let acl = v.acl(raw.acl)?;
    let rate_limit = v.rate_limit(raw.rate_limit)?;
    let cookies = v.cookies(raw.cookies)?;
    let dnssec = v.dnssec(raw.dnssec)?;
    let dnstap = v.dnstap(raw.dnstap)?;
    let control = v.control(raw.control, &server.listen)?;
    v.tls_beside_control(&tls, &control)?;
    let config = Config {
        server,
        cache,
        hints,
        upstream,
        tcp,
        tls,
        local,
        blocklist,
        acl,
        rate_limit,
        cookies,
        dnssec,
        dnstap,
        control,
        log: raw.log.into_config(),
        source: file.to_string(),
    };
    v.table_ranges(&config)?;
    Ok(config)
}

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
}

impl Validator<'_> {
    fn error(&self, key: impl Into<String>, reason: impl Display) -> ConfigError {
        let key = key.into();
        ConfigError::Invalid {
            file: self.file.to_string(),
            location: locate(self.text, &key),
            key,
            reason: reason.to_string(),
        }
    }

    fn server(&self, raw: RawServer) -> Result<ServerConfig, ConfigError> {
        let server = raw.into_config();
        if let CoreSelection::List(ids) = &server.cores {
            if ids.is_empty() {
                return Err(self.error(
                    "server.cores",
                    "the list of CPU ids is empty; write `auto`, a count, or at least one id",
                ));
            }
            if let Some((i, j, id)) = first_repeat(ids) {
                return Err(self.error(
                    format!("server.cores[{i}]"),
                    format!("CPU {id} is listed twice (also server.cores[{j}])"),
                ));
            }
        }

        let listen = &server.listen;
        if listen.is_empty() {
            return Err(self.error("server.listen", "at least one listen address is required"));
        }
        for (i, addr) in listen.iter().enumerate() {
            for (j, earlier) in listen.iter().enumerate().take(i) {
                if addr == earlier {
                    return Err(self.error(
                        format!("server.listen[{i}]"),
                        format!("{addr} is listed twice (also server.listen[{j}])"),
                    ));
                }
                let same_socket_space =
                    addr.port() == earlier.port() && addr.is_ipv4() == earlier.is_ipv4();
                if same_socket_space
                    && (addr.ip().is_unspecified() || earlier.ip().is_unspecified())
                {
                    return Err(self.error(
                        format!("server.listen[{i}]"),
                        format!(
                            "{addr} overlaps {earlier} (server.listen[{j}]): a wildcard address \
                             already covers every address of its family on port {}",
                            addr.port()
                        ),
                    ));
                }
            }
        }

        self.size(
            "server.io_memory",
            server.io_memory,
            limits::IO_MEMORY_MIN,
            limits::IO_MEMORY_MAX,
        )?;
        if !server.io_memory.is_multiple_of(limits::IO_MEMORY_ALIGN) {
            return Err(self.error(
                "server.io_memory",
                format!(
                    "{} is not a multiple of 4KiB (glommio would round it up to whole pages)",
                    format_size(int(server.io_memory))
                ),
            ));
        }

        let batch = server.udp_recv_batch;
        if !(1..=limits::UDP_RECV_BATCH_MAX).contains(&batch) {
            return Err(self.error(
                "server.udp_recv_batch",
                format!(
                    "{batch} is out of range: 1 to {} datagrams per system call (the kernel's \
                     limit for recvmmsg/sendmmsg)",
                    limits::UDP_RECV_BATCH_MAX
                ),
            ));
        }

        if server.steering_spread > limits::STEERING_SPREAD_MAX {
            return Err(self.error(
                "server.steering_spread",
                format!(
                    "{} is out of range: 0 (never) to {} queries per second",
                    server.steering_spread,
                    limits::STEERING_SPREAD_MAX
                ),
            ));
        }

        if server.udp_coalesce > limits::UDP_COALESCE_MAX {
            return Err(self.error(
                "server.udp_coalesce",
                format!(
                    "{} is out of range: 0s (off) to 1ms (every reply may wait this long)",
                    format_duration(server.udp_coalesce)
                ),
            ));
        }
        Ok(server)
    }

    fn cache(&self, raw: RawCache) -> Result<CacheConfig, ConfigError> {
        let cache = raw.into_config();
        self.size(
            "cache.shard_size",
            cache.shard_size,
            limits::SHARD_SIZE_MIN,
            limits::SHARD_SIZE_MAX,
        )?;
        let min_ttl = self.ttl("cache.min_ttl", cache.min_ttl)?;
        let max_ttl = self.ttl("cache.max_ttl", cache.max_ttl)?;
        self.ttl("cache.negative_max_ttl", cache.negative_max_ttl)?;
        let servfail_ttl = self.ttl("cache.servfail_ttl", cache.servfail_ttl)?;
        if min_ttl > max_ttl {
            return Err(self.error(
                "cache.min_ttl",
                format!(
                    "min_ttl {} is greater than max_ttl {}",
                    format_duration(min_ttl),
                    format_duration(max_ttl)
                ),
            ));
        }
        if !(limits::SERVFAIL_TTL_MIN..=limits::SERVFAIL_TTL_MAX).contains(&servfail_ttl) {
            return Err(self.error(
                "cache.servfail_ttl",
                format!(
                    "{} is out of range: a failure is remembered for 1s to 5s (RFC 9520)",
                    format_duration(servfail_ttl)
                ),
            ));
        }
        let stale_max_age = self.ttl("cache.stale_max_age", cache.stale_max_age)?;
        if stale_max_age > limits::STALE_MAX_AGE_MAX {
            return Err(self.error(
                "cache.stale_max_age",
                format!(
                    "{} is out of range: 0s (off) to 7d (RFC 8767 suggests 1d to 3d)",
                    format_duration(stale_max_age)
                ),
            ));
        }
        let stale_client_timeout = cache.stale_client_timeout;
        if !(limits::STALE_CLIENT_TIMEOUT_MIN..=limits::STALE_CLIENT_TIMEOUT_MAX)
            .contains(&stale_client_timeout)
        {
            return Err(self.error(
                "cache.stale_client_timeout",
                format!(
                    "{} is out of range: 100ms to 30s (RFC 8767 suggests 1800ms)",
                    format_duration(stale_client_timeout)
                ),
            ));
        }
        if cache.prefetch_threshold > limits::PREFETCH_THRESHOLD_MAX {
            return Err(self.error(
                "cache.prefetch_threshold",
                format!(
                    "{} is out of range: 0 (off) to {} percent of an answer's lifetime",
                    cache.prefetch_threshold,
                    limits::PREFETCH_THRESHOLD_MAX
                ),
            ));
        }
        if !(1..=limits::PREFETCH_MIN_HITS_MAX).contains(&cache.prefetch_min_hits) {
            return Err(self.error(
                "cache.prefetch_min_hits",
                format!(
                    "{} is out of range: 1 to {} hits (to turn prefetch off, set \
                     cache.prefetch_threshold to 0)",
                    cache.prefetch_min_hits,
                    limits::PREFETCH_MIN_HITS_MAX
                ),
            ));
        }
        if cache
            .persist
            .as_ref()
            .is_some_and(|path| path.as_os_str().is_empty() || path.ends_with(".."))
        {
            return Err(self.error(
                "cache.persist",
                "must be a file path, such as /var/lib/heimdall/cache.bin (leave the key out to \
                 keep no file)",
            ));
        }
        Ok(cache)
    }

    fn hints(&self, raw: RawHints) -> Result<HintsConfig, ConfigError> {
        let hints = raw.into_config();
        let capacity = hints.channel_capacity;
        if !(1..=limits::HINT_CHANNEL_CAPACITY_MAX).contains(&capacity) {
            return Err(self.error(
                "hints.channel_capacity",
                format!(
                    "{capacity} is out of range: 1 to {} hints per channel (to stop sending \
                     hints, set hints.enabled to false)",
                    limits::HINT_CHANNEL_CAPACITY_MAX
                ),
            ));
        }
        Ok(hints)
    }

    /// Also applies the deprecated `upstream.tcp_only`: each address it
    /// lists must be one of the servers, whose transport becomes `tcp`.
    fn upstream(
        &self,
        mut raw: RawUpstream,
        listen: &[SocketAddr],
    ) -> Result<UpstreamConfig, ConfigError> {
        let tcp_only: Vec<SocketAddr> = std::mem::take(&mut raw.tcp_only)
            .iter()
            .map(|s| s.0)
            .collect();
        let mut upstream = raw.into_config();
        if upstream.source_port_max < upstream.source_port_min {
            return Err(self.error(
                "upstream.source_port_max",
                format!(
                    "{} is below upstream.source_port_min ({}): the range of source ports is empty",
                    upstream.source_port_max, upstream.source_port_min
                ),
            ));
        }
        let addresses: Vec<SocketAddr> = upstream.servers.iter().map(|s| s.address).collect();
        if addresses.is_empty() {
            return Err(self.error(
                "upstream.servers",
                "at least one upstream server is required (heimdall reads /etc/resolv.conf only \
                 when it runs without a config file)",
            ));
        }
        if let Some((i, j, server)) = first_repeat(&addresses) {
            return Err(self.error(
                format!("upstream.servers[{i}]"),
                format!("{server} is listed twice (also upstream.servers[{j}])"),
            ));
        }
        for (i, server) in upstream.servers.iter().enumerate() {
            let address = server.address;
            if let Some(own) = loops_back(address, listen) {
                return Err(self.error(
                    format!("upstream.servers[{i}]"),
                    format!("{address} is heimdall's own listen address {own}; queries would loop"),
                ));
            }
            if let Some(path) = &server.path {
                if server.transport != UpstreamTransport::Https {
                    return Err(self.error(
                        format!("upstream.servers[{i}].path"),
                        format!(
                            "{path:?}: a path is where an https server takes its queries; a {} \
                             server has none, so leave the key out",
                            server.transport
                        ),
                    ));
                }
                if !valid_doh_path(path) {
                    return Err(self.error(
                        format!("upstream.servers[{i}].path"),
                        format!(
                            "{path:?} is not a URL path: it starts with '/', has at most \
                             {DOH_PATH_MAX} characters, and only letters, digits and \
                             -._~!$&'()*+,;=:@%/ (no spaces, no '?' or '#')"
                        ),
                    ));
                }
            }
            if matches!(
                server.transport,
                UpstreamTransport::Tls | UpstreamTransport::Https
            ) {
                let transport = server.transport;
                match &server.name {
                    None => {
                        return Err(self.error(
                            format!("upstream.servers[{i}]"),
                            format!(
                                "a {transport} server needs `name`, the name its certificate must \
                                 carry (and the SNI sent): {{address: {address}, transport: \
                                 {transport}, name: dns.example}}"
                            ),
                        ));
                    }
                    Some(name) if !valid_tls_name(name) => {
                        return Err(self.error(
                            format!("upstream.servers[{i}].name"),
                            format!(
                                "{name:?} is not a host name a certificate can carry (letters, \
                                 digits, '-' and '.', or an IP address)"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                if let Some(pin) = &server.pin
                    && !valid_pin(pin)
                {
                    return Err(self.error(
                        format!("upstream.servers[{i}].pin"),
                        format!(
                            "{pin:?} is not an SPKI pin: the base64 of a SHA-256 digest (44 \
                             characters), as `openssl x509 -pubkey -noout | openssl pkey -pubin \
                             -outform der | openssl dgst -sha256 -binary | base64` prints it"
                        ),
                    ));
                }
            } else if server.pin.is_some() {
                return Err(self.error(
                    format!("upstream.servers[{i}].pin"),
                    format!(
                        "a pin checks a tls or https server's key; a {} server has none, so \
                         leave the key out",
                        server.transport
                    ),
                ));
            } else if let Some(name) = &server.name {
                return Err(self.error(
                    format!("upstream.servers[{i}].name"),
                    format!(
                        "{name:?}: a name is the one a tls or https server's certificate must \
                         carry; a {} server has none, so leave the key out",
                        server.transport
                    ),
                ));
            }
        }

        if let Some(path) = &upstream.tls_ca_file {
            self.readable("upstream.tls_ca_file", path)?;
        }
        if let Some((i, j, server)) = first_repeat(&tcp_only) {
            return Err(self.error(
                format!("upstream.tcp_only[{i}]"),
                format!("{server} is listed twice (also upstream.tcp_only[{j}])"),
            ));
        }
        for (i, address) in tcp_only.iter().enumerate() {
            let Some(server) = upstream
                .servers
                .iter_mut()
                .find(|server| server.address == *address)
            else {
                return Err(self.error(
                    format!("upstream.tcp_only[{i}]"),
                    format!("{address} is not one of upstream.servers; list it there too"),
                ));
            };
            server.transport = UpstreamTransport::Tcp;
        }

        let timeout = upstream.timeout;
        if !(limits::UPSTREAM_TIMEOUT_MIN..=limits::UPSTREAM_TIMEOUT_MAX).contains(&timeout) {
            return Err(self.error(
                "upstream.timeout",
                format!(
                    "{} is out of range: 1ms to 60s (a plain number is seconds; write 800ms for \
                     milliseconds)",
                    format_duration(timeout)
                ),
            ));
        }
        if !(1..=limits::UPSTREAM_ATTEMPTS_MAX).contains(&upstream.attempts) {
            return Err(self.error(
                "upstream.attempts",
                format!(
                    "{} is out of range: 1 to {} sends per query",
                    upstream.attempts,
                    limits::UPSTREAM_ATTEMPTS_MAX
                ),
            ));
        }
        Ok(upstream)
    }

    fn tcp(&self, raw: RawTcp) -> Result<TcpConfig, ConfigError> {
        let tcp = raw.into_config();
        let check = |key: &str, value: Duration, max: Duration| {
            if (limits::TCP_TIMEOUT_MIN..=max).contains(&value) {
                Ok(value)
            } else {
                Err(self.error(
                    key,
                    format!(
                        "{} is out of range: {} to {}",
                        format_duration(value),
                        format_duration(limits::TCP_TIMEOUT_MIN),
                        format_duration(max)
                    ),
                ))
            }
        };
        check(
            "tcp.idle_timeout",
            tcp.idle_timeout,
            limits::TCP_IDLE_TIMEOUT_MAX,
        )?;
        check(
            "tcp.read_timeout",
            tcp.read_timeout,
            limits::TCP_READ_TIMEOUT_MAX,
        )?;
        let count = |key: &str, value: usize, max: usize| {
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(self.error(key, format!("{value} is out of range: 1 to {max}")))
            }
        };
        count(
            "tcp.max_connections",
            tcp.max_connections,
            limits::TCP_MAX_CONNECTIONS_MAX,
        )?;
        count(
            "tcp.max_pipelined",
            tcp.max_pipelined,
            limits::TCP_MAX_PIPELINED_MAX,
        )?;
        Ok(tcp)
    }

    /// The encrypted listeners: addresses apart from the DNS ones and from
    /// each other, and a certificate and key that can be read when any is
    /// given.
    fn tls(&self, raw: RawTls, dns: &[SocketAddr]) -> Result<TlsConfig, ConfigError> {
        let tls = raw.into_config();
        let lists = [
            ("tls.listen", &tls.listen),
            ("tls.https_listen", &tls.https_listen),
        ];
        let mut seen: Vec<(String, SocketAddr)> = dns
            .iter()
            .enumerate()
            .map(|(i, addr)| (format!("server.listen[{i}]"), *addr))
            .collect();
        for (list, addrs) in lists {
            for (i, addr) in addrs.iter().enumerate() {
                if let Some((other, _)) = seen.iter().find(|(_, earlier)| overlaps(*earlier, *addr))
                {
                    return Err(self.error(
                        format!("{list}[{i}]"),
                        format!("{addr} overlaps {other} (TCP); pick another port"),
                    ));
                }
                seen.push((format!("{list}[{i}]"), *addr));
            }
        }
        // DNS over QUIC is UDP: apart from the DNS listeners (which take
        // UDP too) and from each other; a DoT or control port is TCP and
        // may be shared.
        let mut quic_seen: Vec<(String, SocketAddr)> = dns
            .iter()
            .enumerate()
            .map(|(i, addr)| (format!("server.listen[{i}]"), *addr))
            .collect();
        for (i, addr) in tls.quic_listen.iter().enumerate() {
            if let Some((other, _)) = quic_seen
                .iter()
                .find(|(_, earlier)| overlaps(*earlier, *addr))
            {
                return Err(self.error(
                    format!("tls.quic_listen[{i}]"),
                    format!("{addr} overlaps {other} (UDP); pick another port"),
                ));
            }
            quic_seen.push((format!("tls.quic_listen[{i}]"), *addr));
        }
        let path = &tls.https_path;
        if !path.starts_with('/') || path.contains(['?', '#']) || path.contains(char::is_whitespace)
        {
            return Err(self.error(
                "tls.https_path",
                format!("{path:?} must be a URL path such as /dns-query: a leading '/', no '?', '#' or spaces"),
            ));
        }
        if tls.listen.is_empty() && tls.https_listen.is_empty() && tls.quic_listen.is_empty() {
            return Ok(tls);
        }
        for (key, file) in [("tls.certificate", &tls.certificate), ("tls.key", &tls.key)] {
            match file {
                None => {
                    // The key is not in the file: point at the section.
                    return Err(self.error(
                        "tls",
                        format!(
                            "tls.listen, tls.https_listen or tls.quic_listen is set, so {key} is required: the PEM \
                             file of the server's {}",
                            if key == "tls.key" {
                                "private key"
                            } else {
                                "certificate chain"
                            }
                        ),
                    ));
                }
                Some(path) => self.readable(key, path)?,
            }
        }
        Ok(tls)
    }

    /// The control endpoint must not take a DoT or DoH address.
    fn tls_beside_control(
        &self,
        tls: &TlsConfig,
        control: &ControlConfig,
    ) -> Result<(), ConfigError> {
        if !control.enabled {
            return Ok(());
        }
        if let Some(addr) = tls
            .listen
            .iter()
            .chain(&tls.https_listen)
            .find(|addr| control.listen.port() != 0 && overlaps(**addr, control.listen))
        {
            return Err(self.error(
                "control.listen",
                format!(
                    "{} overlaps the encrypted DNS listen address {addr}; pick another port",
                    control.listen
                ),
            ));
        }
        Ok(())
    }

    /// A file named by `key` must open for reading now: a typo is found
    /// by `check-config`, not at the first connection.
    fn readable(&self, key: &str, path: &std::path::Path) -> Result<(), ConfigError> {
        if path.as_os_str().is_empty() {
            return Err(self.error(key, "must be a file path"));
        }
        match std::fs::File::open(path) {
            Ok(file) if file.metadata().is_ok_and(|meta| meta.is_file()) => Ok(()),
            Ok(_) => Err(self.error(key, format!("{} is not a file", path.display()))),
            Err(err) => Err(self.error(key, format!("cannot read {}: {err}", path.display()))),
        }
    }

    fn local(&self, raw: RawLocal) -> Result<LocalConfig, ConfigError> {
        let local = raw.into_config();
        for (i, line) in local.records.iter().enumerate() {
            if let Err(err) =
                heimdall_zone::parse_record_line(line, None, defaults::LOCAL_RECORD_TTL)
            {
                let reason = match err {
                    heimdall_zone::ZoneError::Syntax { what, .. } => what,
                    other => other.to_string(),
                };
                return Err(
                    self.error(format!("local.records[{i}]"), format!("{line:?}: {reason}"))
                );
            }
        }
        let mut origins: Vec<heimdall_wire::NameBuf> = Vec::with_capacity(local.zones.len());
        for (i, zone) in local.zones.iter().enumerate() {
            let origin = heimdall_wire::NameBuf::from_presentation(&zone.name)
                .map_err(|err| {
                    self.error(
                        format!("local.zones[{i}].name"),
                        format!("{:?} is not a domain name: {err}", zone.name),
                    )
                })?
                .to_lowercase();
            if let Some(j) = origins.iter().position(|seen| *seen == origin) {
                return Err(self.error(
                    format!("local.zones[{i}].name"),
                    format!("zone {} is listed twice (also local.zones[{j}])", zone.name),
                ));
            }
            origins.push(origin);
            if zone.file.as_os_str().is_empty() {
                return Err(self.error(format!("local.zones[{i}].file"), "the path is empty"));
            }
        }
        Ok(local)
    }

    fn blocklist(&self, raw: RawBlocklist) -> Result<BlocklistConfig, ConfigError> {
        let blocklist = raw.into_config();
        for (i, file) in blocklist.files.iter().enumerate() {
            if file.path.as_os_str().is_empty() {
                return Err(self.error(format!("blocklist.files[{i}].path"), "the path is empty"));
            }
        }
        for (i, path) in blocklist.allow_files.iter().enumerate() {
            if path.as_os_str().is_empty() {
                return Err(self.error(format!("blocklist.allow_files[{i}]"), "the path is empty"));
            }
        }
        for (i, name) in blocklist.allow.iter().enumerate() {
            if let Err(err) = heimdall_wire::NameBuf::from_presentation(name) {
                return Err(self.error(
                    format!("blocklist.allow[{i}]"),
                    format!("{name:?} is not a domain name: {err}"),
                ));
            }
        }
        self.ttl("blocklist.ttl", blocklist.ttl)?;
        Ok(blocklist)
    }

    fn acl(&self, raw: RawAcl) -> Result<AclConfig, ConfigError> {
        let acl = raw.into_config();
        for (list, items) in [("allow", &acl.allow), ("deny", &acl.deny)] {
            for (i, text) in items.iter().enumerate() {
                if text.parse::<heimdall_policy::Cidr>().is_err() {
                    return Err(self.error(
                        format!("acl.{list}[{i}]"),
                        format!(
                            "{text:?} is not a network: write 10.0.0.0/8, 2001:db8::/32 or a \
                             single address"
                        ),
                    ));
                }
            }
        }
        Ok(acl)
    }

    fn dnssec(&self, raw: RawDnssec) -> Result<DnssecConfig, ConfigError> {
        let dnssec = raw.into_config();
        for (i, path) in dnssec.trust_anchors.iter().enumerate() {
            if path.as_os_str().is_empty() {
                return Err(self.error(format!("dnssec.trust_anchors[{i}]"), "the path is empty"));
            }
        }
        for (i, name) in dnssec.negative_trust_anchors.iter().enumerate() {
            if let Err(err) = heimdall_wire::NameBuf::from_presentation(name) {
                return Err(self.error(
                    format!("dnssec.negative_trust_anchors[{i}]"),
                    format!("{name:?} is not a domain name: {err}"),
                ));
            }
        }
        Ok(dnssec)
    }

    fn dnstap(&self, raw: RawDnstap) -> Result<DnstapConfig, ConfigError> {
        let dnstap = raw.into_config();
        match &dnstap.socket {
            None if dnstap.enabled => {
                return Err(self.error(
                    "dnstap.socket",
                    "dnstap.enabled is true but no socket is named: give the unix socket the \
                     reader listens on, such as /run/heimdall/dnstap.sock",
                ));
            }
            Some(path) if path.as_os_str().is_empty() => {
                return Err(self.error(
                    "dnstap.socket",
                    "must be a unix socket path, such as /run/heimdall/dnstap.sock",
                ));
            }
            Some(path) if path.as_os_str().len() > limits::DNSTAP_SOCKET_PATH_MAX => {
                return Err(self.error(
                    "dnstap.socket",
                    format!(
                        "{} bytes is too long for a unix socket path (at most {})",
                        path.as_os_str().len(),
                        limits::DNSTAP_SOCKET_PATH_MAX
                    ),
                ));
            }
            _ => {}
        }
        for (key, text) in [
            ("dnstap.identity", &dnstap.identity),
            ("dnstap.version", &dnstap.version),
        ] {
            if let Some(text) = text
                && text.len() > limits::DNSTAP_TEXT_MAX
            {
                return Err(self.error(
                    key,
                    format!(
                        "{} bytes is too long (at most {})",
                        text.len(),
                        limits::DNSTAP_TEXT_MAX
                    ),
                ));
            }
        }
        Ok(dnstap)
    }

    fn control(
        &self,
        raw: RawControl,
        listen: &[SocketAddr],
    ) -> Result<ControlConfig, ConfigError> {
        let control_config = raw.into_config();
        let control = control_config.listen;
        let clash = listen.iter().find(|dns| {
            dns.port() == control.port()
                && control.port() != 0
                && dns.is_ipv6() == control.is_ipv6()
                && (dns.ip() == control.ip()
                    || dns.ip().is_unspecified()
                    || control.ip().is_unspecified())
        });
        if control_config.enabled
            && let Some(dns) = clash
        {
            return Err(self.error(
                "control.listen",
                format!("{control} overlaps the DNS listen address {dns} (TCP); pick another port"),
            ));
        }
        let socket = control_config.socket.as_os_str().len();
        if socket > limits::DNSTAP_SOCKET_PATH_MAX {
            return Err(self.error(
                "control.socket",
                format!(
                    "{socket} bytes is too long for a unix socket path (at most {})",
                    limits::DNSTAP_SOCKET_PATH_MAX
                ),
            ));
        }
        if let Some(token) = &control_config.token
            && token.chars().count() < limits::CONTROL_TOKEN_MIN
        {
            return Err(self.error(
                "control.token",
                format!(
                    "too short to guess at: at least {} characters",
                    limits::CONTROL_TOKEN_MIN
                ),
            ));
        }
        Ok(control_config)
    }

    fn rate_limit(&self, raw: RawRateLimit) -> Result<RateLimitConfig, ConfigError> {
        let rate_limit = raw.into_config();
        if rate_limit.burst == 0 {
            return Err(self.error(
                "rate_limit.burst",
                "0 is out of range: at least 1 query (to stop limiting, set rate_limit.enabled \
                 to false)",
            ));
        }
        if rate_limit.ipv4_prefix > 32 {
            return Err(self.error(
                "rate_limit.ipv4_prefix",
                format!("{} is out of range: 0 to 32", rate_limit.ipv4_prefix),
            ));
        }
        if rate_limit.ipv6_prefix > 128 {
            return Err(self.error(
                "rate_limit.ipv6_prefix",
                format!("{} is out of range: 0 to 128", rate_limit.ipv6_prefix),
            ));
        }
        if !(1..=limits::RATE_LIMIT_TABLE_SIZE_MAX).contains(&rate_limit.table_size) {
            return Err(self.error(
                "rate_limit.table_size",
                format!(
                    "{} is out of range: 1 to {} prefixes per core",
                    rate_limit.table_size,
                    limits::RATE_LIMIT_TABLE_SIZE_MAX
                ),
            ));
        }
        Ok(rate_limit)
    }

    fn cookies(&self, raw: RawCookies) -> Result<CookiesConfig, ConfigError> {
        let cookies = raw.into_config();
        if let Some(secret) = &cookies.secret
            && heimdall_policy::parse_secret(secret).is_none()
        {
            return Err(self.error(
                "cookies.secret",
                format!(
                    "not 32 hex digits ({} characters): write 16 bytes in hex, such as the output \
                     of `openssl rand -hex 16`, or leave the key out for a random secret",
                    secret.chars().count()
                ),
            ));
        }
        Ok(cookies)
    }

    /// The ranges the key table gives (`Valid::Int`, `Size`, `Duration`),
    /// checked on every key last. The checks above have already refused
    /// what is out of range for the keys they know, with their own
    /// explanation; this is what enforces the range of a key that has no
    /// rule of its own, so that its row is the one place it is written.
    fn table_ranges(&self, config: &Config) -> Result<(), ConfigError> {
        let written =
            serde_yaml::to_value(RawConfig::from(config)).map_err(ConfigError::Serialize)?;
        for doc in keys() {
            let Some(value) = doc
                .path
                .split('.')
                .try_fold(&written, |node, name| node.get(name))
            else {
                // List items (`local.zones[].name`) have no range.
                continue;
            };
            let out_of_range = match doc.valid {
                Valid::Int(min, max) => value
                    .as_u64()
                    .filter(|n| !(min..=max).contains(n))
                    .map(|n| n.to_string()),
                Valid::Size(min, max, multiple) => {
                    serde_yaml::from_value::<ByteSize>(value.clone())
                        .ok()
                        .filter(|size| {
                            !(min..=max).contains(&size.0)
                                || multiple.is_some_and(|m| !size.0.is_multiple_of(m))
                        })
                        .map(|size| format_size(size.0))
                }
                Valid::Duration(min, max, whole_seconds) => {
                    serde_yaml::from_value::<HumanDuration>(value.clone())
                        .ok()
                        .filter(|d| {
                            !(min..=max).contains(&d.0)
                                || (whole_seconds && d.0.subsec_nanos() != 0)
                        })
                        .map(|d| format_duration(d.0))
                }
                Valid::Text(_) => None,
            };
            if let Some(value) = out_of_range {
                return Err(self.error(
                    doc.path,
                    format!("{value} is out of range: {}", doc.valid.describe(doc.ty)),
                ));
            }
        }
        Ok(())
    }

    fn size(&self, key: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(self.error(
                key,
                format!(
                    "{} is out of range: {} to {}",
                    format_size(int(value)),
                    format_size(int(min)),
                    format_size(int(max))
                ),
            ))
        }
    }

    fn ttl(&self, key: &str, value: Duration) -> Result<Duration, ConfigError> {
        if value.subsec_nanos() != 0 {
            return Err(self.error(
                key,
                format!("{}: DNS TTLs are whole seconds", format_duration(value)),
            ));
        }
        if value > limits::TTL_MAX {
            return Err(self.error(
                key,
                format!(
                    "{} is longer than the largest DNS TTL, 2147483647s (RFC 2181)",
                    format_duration(value)
                ),
            ));
        }
        Ok(value)
    }
}

/// The first item equal to an earlier one: `(its index, the earlier
/// index, the item)`.
/// Whether two TCP listen addresses would take the same port.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.is_ipv6() == b.is_ipv6()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The longest `upstream.servers[i].path`.
const DOH_PATH_MAX: usize = 256;

/// Whether `path` is a URL path an `https` upstream can be asked at:
/// absolute, bounded, of RFC 3986 path characters only.
fn valid_doh_path(path: &str) -> bool {
    path.starts_with('/')
        && path.len() <= DOH_PATH_MAX
        && path
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/".contains(&byte))
}

/// Whether `pin` is the base64 (with padding) of 32 bytes.
fn valid_pin(pin: &str) -> bool {
    data_encoding::BASE64
        .decode(pin.as_bytes())
        .is_ok_and(|digest| digest.len() == 32)
}

/// A name a certificate can carry: an IP address, or a host name of
/// letters, digits, '-' and '.' (a trailing dot allowed), at most 253
/// bytes.
fn valid_tls_name(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn first_repeat<T: PartialEq>(items: &[T]) -> Option<(usize, usize, &T)> {
    items.iter().enumerate().find_map(|(i, item)| {
        items
            .iter()
            .take(i)
            .position(|earlier| earlier == item)
            .map(|j| (i, j, item))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(clean_path("."), "");
        assert_eq!(clean_path("?"), "");
        assert_eq!(clean_path("cache.?"), "cache");
        assert_eq!(clean_path("upstream.servers[1]"), "upstream.servers[1]");
    }

    #[test]
    fn serde_yaml_path_prefix_is_removed() {
        assert_eq!(
            strip_path_prefix("upstream: unknown", "upstream.bogus"),
            "unknown"
        );
        assert_eq!(strip_path_prefix("a.b[1]: bad", "a.b[1]"), "bad");
        assert_eq!(strip_path_prefix("a.b: bad", "a.b[1]"), "bad");
        assert_eq!(strip_path_prefix("bad: thing", "a"), "bad: thing");
    }

    #[test]
    fn rust_words_become_yaml_words() {
        assert_eq!(
            reword("invalid type: unit value, expected struct RawCache"),
            "invalid type: empty value, expected a mapping"
        );
        assert_eq!(reword("unknown field `x`"), "unknown key `x`");
        assert_eq!(reword("expected struct RawConfig"), "expected a mapping");
        assert_eq!(
            reword("invalid type: string \"x\", expected u32"),
            "invalid type: string \"x\", expected a whole number (0 or more)"
        );
    }

    #[test]
    fn the_table_ranges_hold_for_a_key_without_its_own_rule() {
        // Every key now has its own check, which runs first; the table's
        // range is what a new key gets without one.
        let text = "upstream: {servers: [9.9.9.9]}";
        let mut config = Config::from_yaml_str(text, "test.yaml").unwrap();
        let v = Validator {
            text,
            file: "test.yaml",
        };
        v.table_ranges(&config).unwrap();
        config.tcp.max_pipelined = 0;
        config.cache.shard_size = limits::SHARD_SIZE_MIN - 1;
        let err = v.table_ranges(&config).unwrap_err().to_string();
        assert_eq!(
            err,
            "test.yaml: cache.shard_size: 65535 is out of range: 64KiB to 64GiB"
        );
        config.cache.shard_size = limits::SHARD_SIZE_MIN;
        config.server.io_memory = limits::IO_MEMORY_MIN + 1;
        let err = v.table_ranges(&config).unwrap_err().to_string();
        assert!(err.contains("server.io_memory: "), "{err}");
        assert!(err.contains("a multiple of 4KiB"), "{err}");
        config.server.io_memory = limits::IO_MEMORY_MIN;
        let err = v.table_ranges(&config).unwrap_err().to_string();
        assert_eq!(
            err,
            "test.yaml: tcp.max_pipelined: 0 is out of range: 1 to 65535"
        );
        config.tcp.max_pipelined = 1;
        config.tcp.idle_timeout = Duration::from_millis(9);
        let err = v.table_ranges(&config).unwrap_err().to_string();
        assert_eq!(
            err,
            "test.yaml: tcp.idle_timeout: 9ms is out of range: 10ms to 1h"
        );
    }

    #[test]
    fn repeats() {
        assert_eq!(first_repeat(&[1, 2, 3]), None);
        assert_eq!(first_repeat(&[1, 2, 1, 2]), Some((2, 0, &1)));
        assert_eq!(first_repeat::<u8>(&[]), None);
    }
}
