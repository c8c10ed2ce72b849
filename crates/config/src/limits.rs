//! The bounds validation enforces, so that the server can rely on them;
//! the key table documents them and the reference tests check both agree.

use std::time::Duration;

/// `cache.shard_size` at least: below this a shard holds too few
/// answers to be worth a lookup.
pub const SHARD_SIZE_MIN: usize = 64 << 10;
/// `cache.shard_size` at most, per core; larger is almost surely a
/// unit mistake.
pub const SHARD_SIZE_MAX: usize = 64 << 30;
/// `server.io_memory` at least: glommio rounds smaller values up to
/// this.
pub const IO_MEMORY_MIN: usize = 64 << 10;
/// `server.io_memory` at most.
pub const IO_MEMORY_MAX: usize = 1 << 30;
/// `server.io_memory` is a multiple of this (glommio rounds up to
/// pages; refusing other values keeps the file truthful).
pub const IO_MEMORY_ALIGN: usize = 4096;
/// `server.udp_recv_batch` at most: the kernel caps one recvmmsg or
/// sendmmsg at UIO_MAXIOV (1024) messages.
pub const UDP_RECV_BATCH_MAX: usize = 1024;
/// `server.udp_coalesce` at most: a reply may wait this long, so more
/// than a millisecond would be a latency the operator did not mean.
pub const UDP_COALESCE_MAX: Duration = Duration::from_millis(1);
/// `server.steering_spread` at most: a billion queries a second is beyond
/// any host, so a larger value is a typo.
pub const STEERING_SPREAD_MAX: u32 = 1_000_000_000;
/// Largest TTL, 2^31 - 1 seconds (RFC 2181, section 8).
pub const TTL_MAX: Duration = Duration::from_secs((1 << 31) - 1);
/// `cache.servfail_ttl` at least: RFC 9520 section 3.2 asks resolvers
/// to remember a failure for at least one second.
pub const SERVFAIL_TTL_MIN: Duration = Duration::from_secs(1);
/// `cache.servfail_ttl` at most: five seconds, so a recovered upstream
/// is used again quickly (RFC 9520 section 3.2 suggests 1 to 5 s).
pub const SERVFAIL_TTL_MAX: Duration = Duration::from_secs(5);
/// `cache.stale_max_age` at most: a week; RFC 8767 suggests one to
/// three days.
pub const STALE_MAX_AGE_MAX: Duration = Duration::from_secs(7 * 86_400);
/// `cache.stale_client_timeout` at least.
pub const STALE_CLIENT_TIMEOUT_MIN: Duration = Duration::from_millis(100);
/// `cache.stale_client_timeout` at most.
pub const STALE_CLIENT_TIMEOUT_MAX: Duration = Duration::from_secs(30);
/// `cache.prefetch_threshold` at most, in percent: refreshing earlier
/// than halfway through a TTL only adds upstream load.
pub const PREFETCH_THRESHOLD_MAX: u8 = 50;
/// `cache.prefetch_min_hits` at most.
pub const PREFETCH_MIN_HITS_MAX: u32 = 1_000_000;
/// `hints.channel_capacity` at most.
pub const HINT_CHANNEL_CAPACITY_MAX: usize = 1 << 20;
/// `upstream.timeout` at least.
pub const UPSTREAM_TIMEOUT_MIN: Duration = Duration::from_millis(1);
/// `upstream.timeout` at most; more is almost surely a unit mistake
/// (a plain number is seconds).
pub const UPSTREAM_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// `upstream.attempts` at most.
pub const UPSTREAM_ATTEMPTS_MAX: u32 = 16;
/// Largest `upstream.max_sockets`: a port range holds at most 65,535.
pub const UPSTREAM_MAX_SOCKETS_MAX: usize = 65_535;
/// Largest `upstream.socket_uses`.
pub const UPSTREAM_SOCKET_USES_MAX: u32 = 64;
/// Largest `server.shutdown_grace`.
pub const SHUTDOWN_GRACE_MAX: Duration = Duration::from_secs(600);
/// `tcp.idle_timeout` and `tcp.read_timeout` at least.
pub const TCP_TIMEOUT_MIN: Duration = Duration::from_millis(10);
/// `tcp.idle_timeout` at most (RFC 7828 encodes it in units of 100 ms
/// in 16 bits).
pub const TCP_IDLE_TIMEOUT_MAX: Duration = Duration::from_secs(3_600);
/// `tcp.read_timeout` at most.
pub const TCP_READ_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// `tls.ticket_rotation` at most: a ticket lives up to two periods, and
/// TLS 1.3 allows tickets of seven days at most (RFC 8446 section 4.6.1).
pub const TLS_TICKET_ROTATION_MAX: Duration = Duration::from_secs(7 * 24 * 3600 / 2);
/// `tcp.max_connections` at most, per core.
pub const TCP_MAX_CONNECTIONS_MAX: usize = 1 << 20;
/// `tcp.max_pipelined` at most.
pub const TCP_MAX_PIPELINED_MAX: usize = 65_535;
/// `rate_limit.table_size` at most, per core.
pub const RATE_LIMIT_TABLE_SIZE_MAX: usize = 1 << 24;
/// `cookies.rotation` at least: shorter would refuse cookies well within
/// the hour RFC 9018 gives them.
pub const COOKIES_ROTATION_MIN: Duration = Duration::from_secs(60);
/// `cookies.rotation` at most.
pub const COOKIES_ROTATION_MAX: Duration = Duration::from_secs(365 * 86_400);
/// `dnstap.buffer_frames` at most, per core.
pub const DNSTAP_BUFFER_FRAMES_MAX: usize = 1 << 20;
/// The longest `dnstap.socket` path: `sun_path` holds 108 bytes with
/// its terminating NUL.
pub const DNSTAP_SOCKET_PATH_MAX: usize = 107;
/// The shortest `control.token`: anything shorter is guessable.
pub const CONTROL_TOKEN_MIN: usize = 16;
/// The longest `dnstap.identity` and `dnstap.version`, in bytes.
pub const DNSTAP_TEXT_MAX: usize = 255;
/// `dnssec.clock_skew` at most: a day.
pub const DNSSEC_CLOCK_SKEW_MAX: Duration = Duration::from_secs(86_400);
