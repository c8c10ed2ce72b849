//! The key table: every key of the configuration, once, with its type as
//! written and as used, its default, its reference type, its valid values
//! and its text. From it [`sections!`] generates the raw schema structs
//! (which read and write the YAML), their defaults, the validated
//! `*Config` structs, the conversions between them, `Config` itself and
//! the reference table rendered into docs/CONFIGURATION.md.
//!
//! Adding a key is one row here and its commented line in `default.yaml`
//! and `deploy/heimdall.yaml`; tests fail until both files and the
//! rendered reference agree with the row. `validate` enforces the row's
//! range by itself; only a rule beyond it needs code there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::addr::{ListenAddr, UpstreamAddr};
use crate::cores::CoreSelection;
use crate::schema::Type::{self, Bool, Enum, Integer, Other, Size};
use crate::schema::{ANY, Valid, int, items, sections};
use crate::units::{ByteSize, HumanDuration};
use crate::upstream::Upstream;
use crate::values::{
    AclMode, BlockingMode, Delegations, DnssecMode, ListFileFormat, LogFormat, LogLevel,
    RateLimitMode, Steering, UpstreamStrategy,
};
use crate::{defaults, limits};

/// The sections and keys a hot reload does not change: they shape the
/// runtime itself (sockets, cores, channels, the control endpoint, the
/// logger, the cache file). Every other key is applied.
/// `dnstap` is among them: each core's writer task, its connection to the
/// reader and its bounded buffer are built when the core starts.
pub const RESTART_ONLY_KEYS: &[&str] = &[
    "server",
    "hints",
    "tcp",
    "control",
    "log",
    "cache.persist",
    "dnstap",
    "tls",
    "upstream.tls_ca_file",
];

/// TTLs: whole seconds from `min` up to the largest DNS TTL.
fn ttl(min: Duration) -> Valid {
    Valid::Duration(min, limits::TTL_MAX, true)
}

sections! {
    /// `server:` what heimdall runs on and listens on.
    server: RawServer => ServerConfig {
        intro: "What heimdall runs on and listens on.",
        keys {
            cores: CoreSelection => CoreSelection = CoreSelection::Auto;
                Other("`auto`, a count, or a list of CPU ids"),
                Valid::Text(
                    "`auto`; a count of at least 1 and at most the number of CPUs the process may \
                     use; or a non-empty list of distinct CPU ids, each one the process may use",
                );
                "CPU cores to run on, one pinned executor each. `auto` is every CPU in the \
                 process's affinity mask (as set by `taskset`, cgroup cpusets or systemd's \
                 `CPUAffinity=`); a count N is the first N CPUs of the mask; a list such as \
                 `[0, 2, 4]` pins one executor to each CPU named, in that order. Checked when the \
                 server starts: `CPU 5 is not available to this process (allowed: 0-3)`.";
            listen: Vec<ListenAddr> => Vec<SocketAddr> = vec![defaults::LISTEN];
                Other("list of addresses"),
                Valid::Text(
                    "at least one `IP:PORT`; no two the same, none overlapping a wildcard address \
                     of its family on the same port, no port 0",
                );
                "Addresses to serve DNS on (UDP and TCP), each with its port. Every core opens its \
                 own socket on each (SO_REUSEPORT). Quote IPv6 addresses: `\"[::1]:53\"`.";
            io_memory: ByteSize => usize = defaults::IO_MEMORY;
                Size,
                Valid::Size(
                    int(limits::IO_MEMORY_MIN),
                    int(limits::IO_MEMORY_MAX),
                    Some(int(limits::IO_MEMORY_ALIGN)),
                );
                "io_uring buffer memory per core (glommio). It is pinned and counts against \
                 RLIMIT_MEMLOCK, so keep it small where that limit is 8 MiB.";
            udp_recv_batch: usize => usize = defaults::UDP_RECV_BATCH;
                Integer,
                Valid::Int(1, int(limits::UDP_RECV_BATCH_MAX));
                "Datagrams read (recvmmsg) or written (sendmmsg) per system call.";
            udp_gso: bool => bool = defaults::UDP_GSO;
                Bool,
                ANY;
                "Send the replies of one batch that go to the same client with the same length as \
                 one UDP GSO send (Linux 4.18+): the IP stack and the device are walked once for \
                 all of them. Used only where the kernel supports it; a path that refuses it falls \
                 back to one datagram per reply.";
            udp_coalesce: HumanDuration => Duration = defaults::UDP_COALESCE;
                Type::Duration,
                Valid::Duration(Duration::ZERO, limits::UDP_COALESCE_MAX, false);
                "The longest pause for gathering queries. Under load (a read of the socket found \
                 queries already queued) and once the socket is empty, heimdall may wait before \
                 reading again instead of waking for the next datagram: only when the measured \
                 arrival rate says at least 4 more queries come within this time, only as long as \
                 they take, and only while the core finds pausing cheaper than waking (it compares \
                 its CPU per query with and without, one 100 ms epoch in 16 or fewer; \
                 `heimdall_udp_pausing`). More queries then share each wake-up, system call and GSO \
                 send, while at low and moderate rates answers are not held (docs/TUNING.md). 0 \
                 turns it off.";
            steering: Steering => Steering = Steering::Name;
                Enum(&["name", "flow"]),
                ANY;
                "How UDP queries are spread over the cores. `name`: a BPF program on the listen \
                 sockets sends each query to the core that owns its name (a hash of it), so every \
                 name is cached on one core and the cores together hold `cores` shards' worth of \
                 distinct answers; hints are not needed and not sent. `flow`: the kernel's hash of \
                 the client's address and port picks the core, and hints copy each answer to the \
                 other cores (each core then holds about one shard's worth of the same answers). \
                 TCP is always spread by flow. With one core both are the same.";
            steering_spread: u32 => u32 = defaults::STEERING_SPREAD;
                Integer,
                Valid::Int(0, u64::from(limits::STEERING_SPREAD_MAX));
                "With `steering: name`, a name asked at least this many times a second (all \
                 cores together) is taken off its owner core and sent to a random core instead, \
                 so that one very popular name cannot load one core while the others idle. Each \
                 core estimates rates from the queries it samples for `heimdall ctl \
                 top-queries` (one in 64); a spread name stays spread for 10 s after it was last \
                 found this hot. At most 16 names are spread at once. A spread name is fetched \
                 and cached once per core. 0 never spreads.";
            shutdown_grace: HumanDuration => Duration = Duration::ZERO;
                Type::Duration,
                Valid::Duration(Duration::ZERO, limits::SHUTDOWN_GRACE_MAX, false);
                "On SIGTERM heimdall stops receiving and gives the queries already waiting on an \
                 upstream this long to be answered; those still waiting then get SERVFAIL (or \
                 stale data), never silence. `0s`, the default, is the longest a query can stay \
                 outstanding (every attempt at its adaptive timeout ceiling, 3 × \
                 `upstream.timeout`, plus one retry; at least `upstream.timeout` × \
                 `upstream.attempts`) plus 500ms, so every query can use all of its attempts. The \
                 drain ends as soon as no query is outstanding.";
        }
    }

    /// `cache:` each core's cache shard.
    cache: RawCache => CacheConfig {
        intro: "Each core's cache shard. A reload applies every key but `persist`; cached answers \
         survive it (a smaller `shard_size` evicts down to the new size).",
        keys {
            shard_size: ByteSize => usize = defaults::SHARD_SIZE;
                Size,
                Valid::Size(
                    int(limits::SHARD_SIZE_MIN),
                    int(limits::SHARD_SIZE_MAX),
                    None,
                );
                "Cache memory per core; the total is this times the number of cores.";
            min_ttl: HumanDuration => Duration = defaults::MIN_TTL;
                Type::Duration,
                Valid::Text("0s to `cache.max_ttl`, whole seconds");
                "Floor for the TTL of cached positive answers.";
            max_ttl: HumanDuration => Duration = defaults::MAX_TTL;
                Type::Duration,
                ttl(Duration::ZERO);
                "Ceiling for the TTL of cached positive answers (at most the largest DNS TTL, \
                 RFC 2181).";
            negative_max_ttl: HumanDuration => Duration = defaults::NEGATIVE_MAX_TTL;
                Type::Duration,
                ttl(Duration::ZERO);
                "Ceiling for the TTL of cached NXDOMAIN and NODATA answers (RFC 2308).";
            servfail_ttl: HumanDuration => Duration = defaults::SERVFAIL_TTL;
                Type::Duration,
                Valid::Duration(limits::SERVFAIL_TTL_MIN, limits::SERVFAIL_TTL_MAX, true);
                "How long an upstream failure (SERVFAIL, or every upstream timing out) is \
                 remembered, so that a dead upstream is not hammered (RFC 9520).";
            stale_max_age: HumanDuration => Duration = defaults::STALE_MAX_AGE;
                Type::Duration,
                Valid::Duration(Duration::ZERO, limits::STALE_MAX_AGE_MAX, true);
                "Serve-stale (RFC 8767): when every upstream fails, or a client has waited \
                 `stale_client_timeout`, answer from expired data up to this old, with TTL 30 and \
                 Extended DNS Error 3 (Stale Answer). `0s` turns it off.";
            stale_client_timeout: HumanDuration => Duration = defaults::STALE_CLIENT_TIMEOUT;
                Type::Duration,
                Valid::Duration(
                    limits::STALE_CLIENT_TIMEOUT_MIN,
                    limits::STALE_CLIENT_TIMEOUT_MAX,
                    false,
                );
                "How long a client waits for upstream before stale data is used, when there is any.";
            prefetch_threshold: u8 => u8 = defaults::PREFETCH_THRESHOLD;
                Integer,
                Valid::Int(0, u64::from(limits::PREFETCH_THRESHOLD_MAX));
                "Prefetch: a hit on an answer with at most this percent of its lifetime left (and \
                 hit at least `prefetch_min_hits` times) refreshes it upstream in the background; \
                 the client is answered from the cache at once. `0` turns prefetch off.";
            prefetch_min_hits: u32 => u32 = defaults::PREFETCH_MIN_HITS;
                Integer,
                Valid::Int(1, u64::from(limits::PREFETCH_MIN_HITS_MAX));
                "Hits an answer needs before it is prefetched.";
            persist: Option<PathBuf> => Option<PathBuf> = None;
                Other("file path"),
                Valid::Text("a file path; leave the key out to keep no file");
                "A file the cache is saved to at shutdown (atomically: a temporary file, then \
                 rename) and loaded from at start, with the time heimdall was down taken off every \
                 TTL. A corrupt or foreign file is ignored with a warning.";
        }
    }

    /// `hints:` cache-fill hints between cores.
    hints: RawHints => HintsConfig {
        intro: "Cache-fill hints between cores.",
        keys {
            enabled: bool => bool = defaults::HINTS_ENABLED;
                Bool,
                ANY;
                "When a core stores an answer from upstream, tell the other cores, so that they can \
                 answer the same question without asking upstream again. Used only with \
                 `server.steering: flow`: with `name`, each name has one core and nothing is sent.";
            channel_capacity: usize => usize = defaults::HINT_CHANNEL_CAPACITY;
                Integer,
                Valid::Int(1, int(limits::HINT_CHANNEL_CAPACITY_MAX));
                "Hints waiting in one core's inbox before new ones are dropped (and counted). \
                 Each core has one inbox that all other cores push into, so the memory is cores x \
                 this x about 300 bytes, allocated at start.";
        }
    }

    /// `upstream:` where and how to forward.
    upstream: RawUpstream => UpstreamConfig {
        intro: "Where and how queries are forwarded.",
        keys {
            servers: Vec<Upstream> => Vec<Upstream> = Vec::new();
                Other("list of upstreams"),
                Valid::Text(
                    "at least one (in a config file); no two with the same address, none of \
                     heimdall's own listen addresses; `transport` `udp`, `tcp`, `tls` or `https`; \
                     `name` with `tls` and `https` only, and required there; `pin` (44 base64 \
                     characters) with `tls` and `https` only; `path` with `https` only: `/` and \
                     at most 255 more URL path characters, no space, `?` or `#`",
                );
                "Servers to forward to. Each is an address, asked over UDP (and over TCP when an \
                 answer is truncated): `9.9.9.9`, `9.9.9.9:53` or `\"[2620:fe::fe]:53\"`; the \
                 port is 53 unless given. A link-local IPv6 address needs its interface: \
                 `fe80::1%2` or `fe80::1%eth0`. Or it is a mapping with the address and its \
                 `transport`: `{address: 9.9.9.9, transport: tcp}`. `transport` is `udp` (the \
                 default), `tcp` (TCP only, never UDP) or `tls` (DNS over TLS, RFC 7858, usually \
                 port 853), which needs `name`, the name the server's certificate must carry \
                 (also sent as SNI): `{address: 1.1.1.1:853, transport: tls, name: \
                 cloudflare-dns.com}`; or `https` (DNS over HTTPS, RFC 8484: POST to \
                 `/dns-query` over HTTP/2, usually port 443), which needs `name` too and may \
                 carry `path`, the URL path to post to instead of `/dns-query`: `{address: \
                 192.0.2.1:443, transport: https, name: dns.example, path: /custom}`. A `tls` or \
                 `https` server may also carry `pin`, the base64 SHA-256 of its key's \
                 SubjectPublicKeyInfo (RFC 7858's out-of-band key-pinned profile): its \
                 certificate is then accepted when it carries that key, instead of being checked \
                 against a CA (the handshake signature is still checked). Empty in \
                 the default because \
                 heimdall fills it from the nameserver lines of /etc/resolv.conf when it runs \
                 without a config file.";
            strategy: UpstreamStrategy => UpstreamStrategy = UpstreamStrategy::Ordered;
                Enum(&["ordered", "round_robin", "fastest"]),
                ANY;
                "How a server is picked for each query: `ordered`, the first server that answers \
                 (the next one on failure); `round_robin`, each query starts at the next server in \
                 turn; `fastest`, the server with the lowest smoothed round-trip time.";
            timeout: HumanDuration => Duration = defaults::UPSTREAM_TIMEOUT;
                Type::Duration,
                Valid::Duration(
                    limits::UPSTREAM_TIMEOUT_MIN,
                    limits::UPSTREAM_TIMEOUT_MAX,
                    false,
                );
                "How long to wait for one server before the next attempt. A plain number is \
                 seconds: write `800ms` for milliseconds.";
            attempts: u32 => u32 = defaults::UPSTREAM_ATTEMPTS;
                Integer,
                Valid::Int(1, u64::from(limits::UPSTREAM_ATTEMPTS_MAX));
                "Sends per query, across servers, before giving up.";
            source_port_min: u16 => u16 = defaults::UPSTREAM_SOURCE_PORT_MIN;
                Integer,
                Valid::Int(1, 65535);
                "Lowest source port of upstream UDP queries. Each attempt leaves from a socket of \
                 its own, bound to a port heimdall picks uniformly at random (not the kernel's \
                 choice) between `source_port_min` and `source_port_max`, skipping heimdall's own \
                 listen ports; a reply is accepted only on that socket. A wide range is what \
                 makes a forged reply hard to land (docs/SECURITY.md).";
            source_port_max: u16 => u16 = defaults::UPSTREAM_SOURCE_PORT_MAX;
                Integer,
                Valid::Text("1 to 65535, at least `source_port_min`");
                "Highest source port of upstream UDP queries (see `source_port_min`).";
            max_sockets: usize => usize = defaults::UPSTREAM_MAX_SOCKETS;
                Integer,
                Valid::Int(1, int(limits::UPSTREAM_MAX_SOCKETS_MAX));
                "Upstream UDP sockets open at once per core (each carrying an attempt, or idle). At the \
                 bound, further attempts wait in a queue of the same size for a socket to close \
                 (counted in `heimdall_upstream_socket_waits_total`); beyond that they are \
                 dropped (counted) and retried at their deadline.";
            socket_uses: u32 => u32 = defaults::UPSTREAM_SOCKET_USES;
                Integer,
                Valid::Int(1, u64::from(limits::UPSTREAM_SOCKET_USES_MAX));
                "Attempts one upstream UDP socket carries, one at a time, before it is closed and \
                 a new random port takes its place (it is also closed once older than 1 s). 1 \
                 opens a fresh socket for every attempt, as Unbound does, at a cost: creating and \
                 closing a socket is most of a cache miss's CPU on a fast network (the cold rate \
                 fell 50 % with 1, 24 % with 4, 8 % with 64; docs/ARCHITECTURE.md). A socket is \
                 only reused once its attempt has ended, and the next attempt takes an idle \
                 socket picked at random.";
            qname_case_randomization: bool => bool = defaults::UPSTREAM_QNAME_CASE_RANDOMIZATION;
                Bool,
                ANY;
                "DNS 0x20: send the letters of every upstream question in a random case and accept \
                 only a reply that echoes it exactly, so a forged reply must also guess one bit per \
                 letter. A server found not to echo the case (3 attempts in a row that time out \
                 having had only wrong-case replies; forged replies cannot cause that) is asked in \
                 lower case for 15 minutes (counted, and shown per server in /stats).";
            cookies: bool => bool = defaults::UPSTREAM_COOKIES;
                Bool,
                ANY;
                "DNS cookies toward upstreams (RFC 7873): every upstream query carries an 8-byte \
                 client cookie of that server's own (renewed daily) and the server cookie learned \
                 from it, and a reply whose cookie is not ours is refused. Once a server has sent \
                 cookies, a reply from it without one is refused too, until 3 attempts in a row \
                 time out having had only cookie-less replies (counted in \
                 `heimdall_upstream_cookie_fallbacks_total`). A BADCOOKIE reply is answered by \
                 asking again once with its server cookie.";
            tls_ca_file: Option<PathBuf> => Option<PathBuf> = None;
                Other("file path"),
                Valid::Text("a readable PEM file with at least one certificate; leave the key out for the system's roots");
                "The certificate authorities `tls` and `https` upstreams are checked against, as \
                 a PEM file. \
                 Left out, the system's trusted roots are used (the files of the `ca-certificates` \
                 package, /etc/ssl/certs). Either way the certificate must carry the upstream's \
                 `name`; an upstream whose certificate fails is counted \
                 (`heimdall_upstream_tls_handshake_failures_total`) and failed over like a \
                 timeout. Read at start when an upstream uses `tls` or `https` (a bad file \
                 stops the start), otherwise at the first such connection after a reload adds \
                 one (a bad file then fails those connections, logged); a change needs a \
                 restart.";
        }
        // Read, applied and never written back: see DEPRECATED.
        raw_only {
            #[serde(skip_serializing_if = "Vec::is_empty")]
            tcp_only: Vec<UpstreamAddr>,
        }
    }

    /// `tcp:` DNS over TCP from clients (RFC 7766).
    tcp: RawTcp => TcpConfig {
        intro: "DNS over TCP from clients (RFC 7766).",
        keys {
            idle_timeout: HumanDuration => Duration = defaults::TCP_IDLE_TIMEOUT;
                Type::Duration,
                Valid::Duration(limits::TCP_TIMEOUT_MIN, limits::TCP_IDLE_TIMEOUT_MAX, false);
                "A client connection with no query outstanding is closed after this long; it is \
                 also the keepalive offered to clients that ask (RFC 7828).";
            read_timeout: HumanDuration => Duration = defaults::TCP_READ_TIMEOUT;
                Type::Duration,
                Valid::Duration(limits::TCP_TIMEOUT_MIN, limits::TCP_READ_TIMEOUT_MAX, false);
                "Once a message has begun, all of it must arrive within this time, or the \
                 connection is closed (slow or stalled senders).";
            max_connections: usize => usize = defaults::TCP_MAX_CONNECTIONS;
                Integer,
                Valid::Int(1, int(limits::TCP_MAX_CONNECTIONS_MAX));
                "Client connections per core. When full, the oldest idle connection is closed for \
                 a new one; if none is idle, the new one is refused.";
            max_pipelined: usize => usize = defaults::TCP_MAX_PIPELINED;
                Integer,
                Valid::Int(1, int(limits::TCP_MAX_PIPELINED_MAX));
                "Queries outstanding on one connection; more wait unread in the socket.";
        }
    }

    /// `tls:` DNS over TLS (RFC 7858) and over HTTPS (RFC 8484) to clients.
    tls: RawTls => TlsConfig {
        intro: "Encrypted DNS to clients: DNS over TLS (RFC 7858, usually port 853), DNS over \
         HTTPS (RFC 8484, usually port 443; HTTP/2, and HTTP/1.1 for clients without it) and DNS \
         over QUIC (RFC 9250, usually UDP port 853). All are served by every core with its own \
         SO_REUSEPORT listener or socket, and with the limits of \
         `tcp` (idle and read timeouts, connections per core, queries outstanding per \
         connection); the TLS handshake must end within `tcp.read_timeout`. Replies carry EDNS \
         padding (RFC 8467, blocks of 468 bytes) when the query uses EDNS. Off while the \
         three listen lists are empty. A changed section needs a restart; the certificate and key \
         files are read again at every reload (SIGHUP), so a renewed certificate is taken \
         without one.",
        keys {
            listen: Vec<ListenAddr> => Vec<SocketAddr> = Vec::new();
                Other("list of addresses"),
                Valid::Text("`IP:PORT` addresses, no port 0, none a DNS or control listen address");
                "Addresses to serve DNS over TLS on, such as `0.0.0.0:853`. TLS 1.2 and 1.3, \
                 ALPN `dot`.";
            https_listen: Vec<ListenAddr> => Vec<SocketAddr> = Vec::new();
                Other("list of addresses"),
                Valid::Text("`IP:PORT` addresses, no port 0, none a DNS, DoT or control listen address");
                "Addresses to serve DNS over HTTPS on, such as `0.0.0.0:443`: `GET` with \
                 `?dns=` (base64url) and `POST` with an `application/dns-message` body, at \
                 `https_path`. ALPN `h2` and `http/1.1`.";
            quic_listen: Vec<ListenAddr> => Vec<SocketAddr> = Vec::new();
                Other("list of addresses"),
                Valid::Text("`IP:PORT` addresses (UDP), no port 0, none a DNS listen address, none twice");
                "Addresses to serve DNS over QUIC (RFC 9250) on, such as `0.0.0.0:853` (UDP, so \
                 it may share the port of `listen`). ALPN `doq`, TLS 1.3. Each core has its own \
                 socket, and the kernel keeps a client's connection on one core by its address \
                 and port; a client whose address changes mid-connection (migration, NAT \
                 rebinding) may reach another core, which does not know the connection: it \
                 is dropped and the client connects again. Limits: `tcp.max_connections` \
                 connections per core (more are refused), `tcp.max_pipelined` queries (streams) \
                 at once per connection, `tcp.idle_timeout` without traffic.";
            https_path: String => String = defaults::HTTPS_PATH.to_string();
                Other("URL path"),
                Valid::Text("a path starting with `/`, without `?` or `#`");
                "The URL path DNS over HTTPS answers on; any other path gets 404.";
            certificate: Option<PathBuf> => Option<PathBuf> = None;
                Other("file path"),
                Valid::Text("a readable PEM file: the server's certificate first, then its chain; required with a listen address");
                "The certificate chain clients are shown, as PEM. Read at start and at every \
                 reload: a file missing, unreadable or without a certificate stops the start, or \
                 fails the reload (the certificate in use stays), with a message naming it.";
            key: Option<PathBuf> => Option<PathBuf> = None;
                Other("file path"),
                Valid::Text("a readable PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1); required with a listen address");
                "The certificate's private key, as PEM. Keep the file readable by heimdall only.";
            ticket_rotation: HumanDuration => Duration = defaults::TLS_TICKET_ROTATION;
                Type::Duration,
                Valid::Duration(Duration::ZERO, limits::TLS_TICKET_ROTATION_MAX, true);
                "How often the session-ticket key is replaced (TLS 1.3 and 1.2 resumption, for \
                 DoT, DoH and DoQ). The key is made at start, in memory only, and shared by \
                 the cores; a ticket stays good for one to two periods (the key before the last \
                 rotation still opens it). A reload keeps the key, unless the certificate \
                 changed: then every ticket is refused and clients do a full handshake. `0s` \
                 turns tickets off (TLS 1.3 resumption then uses a server-side session cache).";
        }
    }

    /// `local:` local authoritative data, answered before the blocklist and
    /// the cache.
    local: RawLocal => LocalConfig {
        intro: "Local authoritative data, answered before the blocklist and the cache. A reload \
         re-reads the zone files; cached answers for names at or below the old or new local \
         data are dropped.",
        keys {
            records: Vec<String> => Vec<String> = Vec::new();
                Other("list of record lines"),
                Valid::Text(
                    "zone-file lines with an absolute owner: `\"router.lan. 300 IN A 192.168.1.1\"`",
                );
                "Records served locally, one per line (`name TTL IN TYPE rdata`; the TTL is 3600 \
                 when left out).";
            zones: Vec<RawZone> => Vec<LocalZone> = Vec::new();
                Other("list of mappings (`name`, `file`)"),
                Valid::Text("no zone listed twice"), items RawZone;
                "Zone files (RFC 1035 master files), such as `{name: lan., file: \
                 /etc/heimdall/lan.zone}`. Read at start and on every reload.";
            delegations: Delegations => Delegations = Delegations::Referral;
                Enum(&["referral", "forward"]),
                ANY;
                "Queries below a delegation (NS records under a zone's apex): `referral` answers \
                 with the NS records, `forward` asks upstream.";
            builtins: bool => bool = defaults::LOCAL_BUILTINS;
                Bool,
                ANY;
                "Serve the RFC 6761 / RFC 6303 local zones (localhost, private reverse zones, ...) \
                 locally instead of asking upstream.";
        }
    }

    /// `blocklist:` names answered with a block reply instead of resolved.
    blocklist: RawBlocklist => BlocklistConfig {
        intro: "Names answered with a block reply instead of being resolved. A reload re-reads the \
         list files; cached answers for names the new list blocks are dropped.",
        keys {
            files: Vec<RawListFile> => Vec<BlocklistFile> = Vec::new();
                Other("list of mappings (`path`, `format`)"),
                ANY, items RawListFile;
                "Block lists, such as `{path: /etc/heimdall/ads.txt, format: auto}`. A listed name \
                 is blocked with all its subdomains. Read at start and on every reload.";
            allow: Vec<String> => Vec<String> = Vec::new();
                Other("list of domain names"),
                Valid::Text("domain names");
                "Names (with their subdomains) never blocked.";
            allow_files: Vec<PathBuf> => Vec<PathBuf> = Vec::new();
                Other("list of file paths"),
                Valid::Text("non-empty paths");
                "Files of names never blocked, one per line. Read at start and on every reload.";
            mode: BlockingMode => BlockingMode = BlockingMode::Nxdomain;
                Enum(&["nxdomain", "null", "refused"]),
                ANY;
                "How a blocked name is answered: `nxdomain`; `null` (0.0.0.0 / :: for A / AAAA, \
                 NODATA for other types); `refused`. EDNS clients also get Extended DNS Error 15 \
                 (Blocked).";
            ttl: HumanDuration => Duration = defaults::BLOCKLIST_TTL;
                Type::Duration,
                ttl(Duration::ZERO);
                "TTL of `null` answers.";
        }
    }

    /// `acl:` which clients may use the resolver.
    acl: RawAcl => AclConfig {
        intro: "Which clients may use the resolver. Loopback and private networks (10.0.0.0/8, \
         172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, link-local, fc00::/7) are allowed by \
         default; `deny` wins over `allow`.",
        keys {
            allow: Vec<String> => Vec<String> = Vec::new();
                Other("list of networks"),
                Valid::Text("networks such as `203.0.113.0/24`, `2001:db8::/32`, or single addresses");
                "Clients allowed besides loopback and private networks.";
            deny: Vec<String> => Vec<String> = Vec::new();
                Other("list of networks"),
                Valid::Text("networks or single addresses");
                "Clients refused even if allowed otherwise. Deny wins.";
            action: AclMode => AclMode = AclMode::Refuse;
                Enum(&["refuse", "drop"]),
                ANY;
                "What a refused client gets: `refuse` (REFUSED) or `drop` (no answer).";
            open_resolver: bool => bool = false;
                Bool,
                ANY;
                "Serve every client not denied. An open resolver is abused for amplification \
                 attacks; leave this off on the internet.";
        }
    }

    /// `rate_limit:` queries per client prefix.
    rate_limit: RawRateLimit => RateLimitConfig {
        intro: "Token buckets per client prefix.",
        keys {
            enabled: bool => bool = defaults::RATE_LIMIT_ENABLED;
                Bool,
                ANY;
                "Limit queries per client prefix.";
            rate: u32 => u32 = defaults::RATE_LIMIT_RATE;
                Integer,
                Valid::Int(0, u64::from(u32::MAX));
                "Queries per second per prefix, for the whole server (each core gets its share): \
                 the rate each bucket refills at. `0` never refills: a prefix gets `burst` \
                 queries in all.";
            burst: u32 => u32 = defaults::RATE_LIMIT_BURST;
                Integer,
                Valid::Int(1, u64::from(u32::MAX));
                "Bucket size per prefix, for the whole server.";
            ipv4_prefix: u8 => u8 = defaults::RATE_LIMIT_IPV4_PREFIX;
                Integer,
                Valid::Int(0, 32);
                "Prefix length IPv4 clients are grouped by.";
            ipv6_prefix: u8 => u8 = defaults::RATE_LIMIT_IPV6_PREFIX;
                Integer,
                Valid::Int(0, 128);
                "Prefix length IPv6 clients are grouped by.";
            table_size: usize => usize = defaults::RATE_LIMIT_TABLE_SIZE;
                Integer,
                Valid::Int(1, int(limits::RATE_LIMIT_TABLE_SIZE_MAX));
                "Prefixes tracked per core; the least recent is evicted.";
            action: RateLimitMode => RateLimitMode = RateLimitMode::Drop;
                Enum(&["drop", "refused", "truncate"]),
                ANY;
                "What a query over the limit gets: `drop` (no answer), `refused`, or `truncate` (an \
                 empty reply with TC, so real clients retry over TCP; TCP queries are served).";
        }
    }

    /// `cookies:` DNS cookies answered to clients (RFC 7873, RFC 9018).
    cookies: RawCookies => CookiesConfig {
        intro: "DNS cookies toward clients (RFC 7873), in the interoperable server cookie format \
         of RFC 9018. A reload applies every key; a new `secret` or `rotation` makes the \
         cookies clients hold invalid, and each client gets a fresh one with its next answer.",
        keys {
            enabled: bool => bool = defaults::COOKIES_ENABLED;
                Bool,
                ANY;
                "Answer a query that carries a COOKIE option with our server cookie, and check the \
                 server cookie a client sends back. Off ignores cookies: no COOKIE option in \
                 replies, none checked, none required.";
            secret: Option<String> => Option<String> = None;
                Other("32 hex digits"),
                Valid::Text("32 hex digits (16 bytes); leave the key out for a random one");
                "The master secret server cookies are made with. Leave it out and heimdall draws \
                 16 random bytes from the operating system at start (kept across reloads). Set \
                 the same value (and `rotation`) on every heimdall node of an anycast or \
                 load-balanced set (RFC 9018 section 6), so a cookie from one node is good at all \
                 of them (the per-period secrets are derived by heimdall, so nodes running other \
                 software do not share them). The file then holds a secret: keep it out of \
                 world-readable copies.";
            rotation: HumanDuration => Duration = defaults::COOKIES_ROTATION;
                Type::Duration,
                Valid::Duration(limits::COOKIES_ROTATION_MIN, limits::COOKIES_ROTATION_MAX, true);
                "How often the secret in use changes. The secret of each period is derived from \
                 the master (a keyed hash of the period number), so every core and every node \
                 with the same master agrees on it without a message; a cookie made in the \
                 previous period is still accepted, and none older than 1 hour (RFC 9018).";
            udp_require_above: u32 => u32 = 0;
                Integer,
                Valid::Int(0, u64::from(u32::MAX));
                "Queries per second per client prefix (grouped by `rate_limit.ipv4_prefix` and \
                 `ipv6_prefix`, tracked in a table of `rate_limit.table_size` prefixes per core; \
                 for the whole server, each core gets its share) allowed over UDP without a \
                 valid server cookie. Above it, a query with only a client cookie, or a wrong \
                 server cookie, gets BADCOOKIE with a fresh cookie (the client retries with it), \
                 and a query with no cookie at all gets an empty truncated reply (TC), so the \
                 client retries over TCP, which a spoofed address cannot do. TCP is never held to \
                 it. `0` (the default) requires no cookie.";
        }
    }

    /// `dnssec:` DNSSEC validation.
    dnssec: RawDnssec => DnssecConfig {
        intro: "DNSSEC validation (RFC 4033-4035, 5155, 6840, 9276): heimdall asks its upstreams \
         for signatures (DO), fetches the DNSKEY and DS records it needs through the same \
         upstreams, builds the chain of trust from the closest trust anchor down and sets AD only \
         on what it validated itself (docs/SECURITY.md). A reload applies every key and re-reads \
         the anchor files.",
        keys {
            mode: DnssecMode => DnssecMode = DnssecMode::Validate;
                Enum(&["validate", "permissive", "off"]),
                ANY;
                "`validate`: bogus answers get SERVFAIL with an Extended DNS Error (6 DNSSEC \
                 Bogus, 7 Signature Expired, 9 DNSKEY Missing, ...), validated ones AD. \
                 `permissive`: validate and count, but answer bogus data (without AD). `off`: no \
                 validation; the upstream's AD is passed through. The default validates with the \
                 root KSKs built in, so the upstreams must pass DNSSEC records on (answer DO \
                 queries with their RRSIGs, and DNSKEY and DS queries): behind an upstream that \
                 strips them (some home routers, some filtering services) every answer, signed \
                 zone or not, is SERVFAIL with Extended DNS Error 9 (DNSKEY Missing) or 10 \
                 (RRSIGs Missing). heimdall does not fall back to `off` on its own, since an \
                 attacker on the path could strip signatures as well; use an upstream that keeps \
                 them, or set `off` (docs/SECURITY.md).";
            trust_anchors: Vec<PathBuf> => Vec<PathBuf> = Vec::new();
                Other("list of file paths"),
                Valid::Text("non-empty paths");
                "Files of trust anchors, DS or DNSKEY records in master-file syntax (as \
                 `dig DNSKEY . | dnssec-dsfromkey -f - .` prints), added to the root KSKs built \
                 in (key tags 20326 and 38696). Validation of a name starts at the deepest anchor \
                 above it. Read at start and on every reload.";
            negative_trust_anchors: Vec<String> => Vec<String> = Vec::new();
                Other("list of domain names"),
                Valid::Text("domain names");
                "Domains (with their subdomains) treated as insecure (RFC 7646): answered without \
                 validation and without AD, for a zone whose signatures are known to be broken.";
            clock_skew: HumanDuration => Duration = defaults::DNSSEC_CLOCK_SKEW;
                Type::Duration,
                Valid::Duration(Duration::ZERO, limits::DNSSEC_CLOCK_SKEW_MAX, true);
                "Clock difference allowed at both ends of a signature's validity window.";
            nsec3_max_iterations: u16 => u16 = defaults::DNSSEC_NSEC3_MAX_ITERATIONS;
                Integer,
                Valid::Int(0, u64::from(u16::MAX));
                "NSEC3 records with more iterations make the answer insecure, with Extended DNS \
                 Error 27 (RFC 9276), instead of being hashed.";
            aggressive_nsec: bool => bool = defaults::DNSSEC_AGGRESSIVE_NSEC;
                Bool,
                ANY;
                "Aggressive use of the DNSSEC-validated cache (RFC 8198): the NSEC and NSEC3 \
                 records of validated NXDOMAIN and NODATA answers are remembered (per core, at \
                 most 16384, and 8 MiB of the answers they came in; opt-out NSEC3 records are \
                 not used), and a name they prove absent (a random subdomain of a signed zone, \
                 say) is answered NXDOMAIN or NODATA from them, with AD, without asking upstream \
                 (counted in `heimdall_dnssec_aggressive_answers_total`). Only with `mode` not \
                 `off`.";
        }
    }

    /// `dnstap:` structured logs of DNS messages over Frame Streams.
    dnstap: RawDnstap => DnstapConfig {
        intro: "dnstap (https://dnstap.info): a copy of the DNS messages heimdall receives and sends, \
         as protobuf over Frame Streams, to a reader listening on a unix socket (such as \
         `fstrm_capture` or `dnstap`; docs/OPERATIONS.md). Each core connects on its own and \
         writes without blocking: while the reader is slow or away, messages that do not fit \
         the core's buffer are dropped and counted (`heimdall_dnstap_dropped_total`), never \
         waited for, and the core reconnects with backoff. A reload leaves the section as it \
         was: change it with a restart.",
        keys {
            enabled: bool => bool = defaults::DNSTAP_ENABLED;
                Bool,
                ANY;
                "Send dnstap messages. Off, the query path pays one branch for it.";
            socket: Option<PathBuf> => Option<PathBuf> = None;
                Other("file path"),
                Valid::Text(
                    "a unix socket path of at most 107 bytes; required when `enabled` is true",
                );
                "The unix socket the dnstap reader listens on (Frame Streams, bidirectional: \
                 READY, ACCEPT, START).";
            identity: Option<String> => Option<String> = None;
                Other("text"),
                Valid::Text("at most 255 bytes; leave the key out for the host name, `\"\"` for none");
                "`identity` of every message: the host name when left out, none when empty.";
            version: Option<String> => Option<String> = None;
                Other("text"),
                Valid::Text(
                    "at most 255 bytes; leave the key out for `heimdall VERSION`, `\"\"` for none",
                );
                "`version` of every message: `heimdall` and its version when left out, none when \
                 empty.";
            log_client_queries: bool => bool = true;
                Bool,
                ANY;
                "Log the queries clients send (CLIENT_QUERY), UDP and TCP.";
            log_client_responses: bool => bool = true;
                Bool,
                ANY;
                "Log the responses sent to clients (CLIENT_RESPONSE), from the cache or after \
                 waiting on an upstream.";
            log_forwarder_queries: bool => bool = true;
                Bool,
                ANY;
                "Log the queries sent to upstreams (FORWARDER_QUERY), every attempt.";
            log_forwarder_responses: bool => bool = true;
                Bool,
                ANY;
                "Log the replies received from upstreams (FORWARDER_RESPONSE), before the reply \
                 check judges them.";
            buffer_frames: usize => usize = defaults::DNSTAP_BUFFER_FRAMES;
                Integer,
                Valid::Int(1, int(limits::DNSTAP_BUFFER_FRAMES_MAX));
                "Messages each core holds for its writer; more are dropped (and counted) until \
                 the writer catches up. The buffer also holds at most 512 bytes per message on \
                 average (at least 130 KiB), so a core's dnstap memory is at most twice that: \
                 the buffer being filled and the one being written.";
        }
    }

    /// `control:` the HTTP control endpoint.
    control: RawControl => ControlConfig {
        intro: "The control channels. The unix socket (`socket`) is the operator's: `heimdall ctl` \
         talks to it (status, stats, reload, cache flush, lookup, log level), and only users \
         who may open it (mode 0600, owned by the service user; root) can. The HTTP listener \
         (`listen`) serves `GET /metrics` (Prometheus) and `GET /health` to anyone who reaches \
         it; the other routes (`/stats`, `/status`, `/cache/flush`, `/cache/lookup`, \
         `/log-level`, `/reload`) only with `Authorization: Bearer TOKEN` when `token` is set, \
         and never without it. Keep the listener on loopback or a management network.",
        keys {
            enabled: bool => bool = defaults::CONTROL_ENABLED;
                Bool,
                ANY;
                "Whether the control endpoint is served.";
            listen: ListenAddr => SocketAddr = defaults::CONTROL_LISTEN;
                Other("address"),
                Valid::Text(
                    "`IP:PORT`, not overlapping a DNS listen address on the same port (port 0 \
                     picks a free port)",
                );
                "Where the control endpoint listens. The default port, 9353, is not \
                 CoreDNS's metrics port (9153), so both can run on one host.";
            metrics_per_core: bool => bool = defaults::CONTROL_METRICS_PER_CORE;
                Bool,
                ANY;
                "Whether `/metrics` labels every per-core series with `core`. `false` sums the \
                 cores in each series at scrape time (fewer series on a many-core host); \
                 `/stats` lists the cores either way.";
            socket: PathBuf => PathBuf = PathBuf::from(defaults::CONTROL_SOCKET);
                Other("file path"),
                Valid::Text("a unix socket path of at most 107 bytes; `\"\"` for none");
                "The unix socket `heimdall ctl` talks to, created at start with mode 0600 (a \
                 stale socket from an earlier run is replaced; one another heimdall still \
                 serves is left alone and this one runs without it, logged). Its directory must \
                 exist: the systemd unit's `RuntimeDirectory=heimdall` makes /run/heimdall. \
                 `\"\"` serves no socket.";
            token: Option<String> => Option<String> = None;
                Other("text"),
                Valid::Text("at least 16 characters; leave the key out to serve monitoring only");
                "Serve every control route on the HTTP listener, not only `/metrics` and \
                 `/health`, to requests that carry `Authorization: Bearer TOKEN`. The file then \
                 holds a secret: keep it out of world-readable copies.";
        }
    }

    /// `log:` logging.
    log: RawLog => LogConfig {
        intro: "Logging.",
        keys {
            level: LogLevel => LogLevel = LogLevel::Info;
                Enum(&["error", "warn", "info", "debug", "trace"]),
                ANY;
                "The least severe level logged. `RUST_LOG`, when set, overrides it. `heimdall ctl \
                 log-level LEVEL` changes it in the running server (until the next restart).";
            format: LogFormat => LogFormat = LogFormat::Text;
                Enum(&["text", "json"]),
                ANY;
                "`text`: one line per message, with a syslog priority prefix (`<3>` to `<7>`) \
                 when stderr is the journal (systemd sets `JOURNAL_STREAM`), so `journalctl -p` \
                 filters by level; else with a timestamp and the level. `json`: one JSON object \
                 per line (`ts`, `level`, `target`, `msg`), for log shippers.";
        }
    }

}

items! {
    /// `local.zones[i]`: one zone file.
    RawZone => LocalZone {
        path: "local.zones[]",
        keys {
            name: String => String = String::new();
                Other("domain name"),
                Valid::Text("a domain name"), required: true;
                "The zone's origin.";
            file: PathBuf => PathBuf = PathBuf::new();
                Other("file path"),
                Valid::Text("a non-empty path"), required: true;
                "The master file (relative paths are relative to the working directory).";
        }
    }
}

items! {
    /// `blocklist.files[i]`: one list file.
    RawListFile => BlocklistFile {
        path: "blocklist.files[]",
        keys {
            path: PathBuf => PathBuf = PathBuf::new();
                Other("file path"),
                Valid::Text("a non-empty path"), required: true;
                "The list file.";
            #[serde(default)]
            format: ListFileFormat => ListFileFormat = ListFileFormat::Auto;
                Enum(&["auto", "hosts", "domains", "adblock"]),
                ANY, required: false;
                "The file's syntax: `auto` decides per line; `hosts` is a hosts file; `domains` \
                 one name per line; `adblock` `||domain^` rules.";
        }
    }
}

/// Keys still read but no longer written, each with what replaces it.
pub(crate) const DEPRECATED: &[(&str, &str)] = &[(
    "upstream.tcp_only",
    "A list of servers, each also in `upstream.servers`, to ask over TCP only. Each one listed \
     gets `transport: tcp`, and `check-config` prints it that way: write \
     `{address: ..., transport: tcp}` in `upstream.servers` instead.",
)];
