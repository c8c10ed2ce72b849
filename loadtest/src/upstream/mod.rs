//! The synthetic upstream: an authoritative server for a generated zone
//! whose behaviour tests can switch at runtime (healthy, silent, lying,
//! slow, lossy).
//!
//! ```no_run
//! use heimdall_loadtest::{Behavior, Upstream, UpstreamConfig};
//!
//! let mut upstream = Upstream::start(UpstreamConfig::default())?;
//! let addr = upstream.local_addr(); // point the forwarder here
//! upstream.set_behavior(Behavior::Drop); // now it is dead
//! upstream.stop();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Threads: `threads` UDP workers, each with its own `SO_REUSEPORT` socket
//! on the same address, batching with `recvmmsg`/`sendmmsg` and keeping a
//! private queue of delayed replies; with `tcp`, one accept thread and a
//! thread per connection (bounded). Every thread wakes at least every
//! [`STOP_POLL`] to notice `stop`.

mod respond;
mod stats;
mod tcp;
mod timer;
mod udp;
pub mod zone;

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use heimdall_wire::{Message, NameBuf, WireNameBuf};
use rand::RngExt as _;
use rand::rngs::SmallRng;
use socket2::{Domain, Protocol, Socket, Type};

pub use respond::{EDNS_PAYLOAD, PLAIN_UDP_LIMIT, Transport, is_truncated, shift_id};
pub use stats::{MAX_TRACKED_NAMES, UpstreamStats};
pub use zone::{Zone, ZoneConfig};

use stats::Counters;

/// The longest a serving thread waits before checking for `stop`.
pub const STOP_POLL: Duration = Duration::from_millis(25);
/// Most TCP connections served at once; more are accepted and closed.
pub const MAX_TCP_CONNECTIONS: usize = 64;
/// Most replies one thread (or connection) holds back for the delay;
/// further queries are dropped and counted.
pub const MAX_DELAYED: usize = 65_536;

/// What the upstream does with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Answer from the zone.
    #[default]
    Normal,
    /// Never answer, over UDP or TCP: a dead upstream.
    Drop,
    /// Over UDP, answer with TC=1 and no records; over TCP, answer
    /// normally (so a client that retries over TCP gets the data).
    Truncate,
    /// Answer with the query's ID plus one.
    WrongId,
    /// Answer a different question (`wrong.` + the name asked).
    WrongQuestion,
    /// Answer SERVFAIL.
    ServFail,
    /// Answer REFUSED (an upstream that does not serve this client).
    Refused,
    /// Send a spoofed reply (ID plus one) and then the right one.
    WrongIdThenRight,
    /// Reflect every query back with QR set, without looking at it: a
    /// batched reflector, the fastest possible "server", for measuring a
    /// load generator. Loss (`drop_rate`) applies; the delay does not.
    Echo,
}

impl Behavior {
    /// Every behaviour, in CLI order.
    pub const ALL: [Behavior; 9] = [
        Self::Normal,
        Self::Drop,
        Self::Truncate,
        Self::WrongId,
        Self::WrongQuestion,
        Self::ServFail,
        Self::WrongIdThenRight,
        Self::Echo,
        Self::Refused,
    ];

    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Drop => "drop",
            Self::Truncate => "truncate",
            Self::WrongId => "wrong-id",
            Self::WrongQuestion => "wrong-question",
            Self::ServFail => "servfail",
            Self::WrongIdThenRight => "wrong-id-then-right",
            Self::Echo => "echo",
            Self::Refused => "refused",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Drop => 1,
            Self::Truncate => 2,
            Self::WrongId => 3,
            Self::WrongQuestion => 4,
            Self::ServFail => 5,
            Self::WrongIdThenRight => 6,
            Self::Echo => 7,
            Self::Refused => 8,
        }
    }

    fn from_u8(value: u8) -> Self {
        Self::ALL
            .into_iter()
            .find(|behavior| behavior.to_u8() == value)
            .unwrap_or_default()
    }
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Behavior {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wanted = text.replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|behavior| behavior.as_str().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|b| b.as_str()).collect();
                format!(
                    "unknown behavior {text:?}; expected one of {}",
                    known.join(", ")
                )
            })
    }
}

/// How to run the upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Address for UDP (and TCP); port 0 picks a free port, shared by all
    /// threads and by TCP.
    pub listen: SocketAddr,
    /// UDP serving threads (at least 1).
    pub threads: usize,
    /// The zone to serve.
    pub zone: ZoneConfig,
    /// The starting behaviour (see [`UpstreamHandle::set_behavior`]).
    pub behavior: Behavior,
    /// Every reply is sent this long after its query arrived.
    pub delay: Duration,
    /// Fraction of UDP queries silently dropped (0.0 to 1.0); TCP is
    /// reliable, so it is not applied there.
    pub drop_rate: f64,
    /// Also serve TCP on the same port.
    pub tcp: bool,
    /// Seed of the loss RNG (each thread derives its own), so a lossy run
    /// can be repeated.
    pub seed: u64,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            threads: 1,
            zone: ZoneConfig::default(),
            behavior: Behavior::Normal,
            delay: Duration::ZERO,
            drop_rate: 0.0,
            tcp: false,
            seed: 0x5eed,
        }
    }
}

/// State every serving thread reads; written only by the handle.
pub(crate) struct Shared {
    zone: Zone,
    behavior: AtomicU8,
    delay_nanos: AtomicU64,
    /// The UDP loss rate, fixed at start (0.0..=1.0).
    drop_rate: f64,
    stop: AtomicBool,
    seed: u64,
}

impl Shared {
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub(crate) fn delay(&self) -> Duration {
        Duration::from_nanos(self.delay_nanos.load(Ordering::Relaxed))
    }

    fn behavior(&self) -> Behavior {
        Behavior::from_u8(self.behavior.load(Ordering::Relaxed))
    }

    fn drop_rate(&self) -> f64 {
        self.drop_rate
    }
}

/// What to do with one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing is sent; already counted as dropped.
    Drop,
    /// Send `out[..len]`; when `spoof`, first send a copy with the ID
    /// shifted.
    Reply { len: usize, spoof: bool },
}

/// Count one message and decide its reply into `out`. `loss` is the RNG
/// for random loss (None: never lose, as on TCP).
pub(crate) fn handle(
    shared: &Shared,
    counters: &Counters,
    loss: Option<&mut SmallRng>,
    transport: Transport,
    packet: &[u8],
    out: &mut [u8],
) -> Action {
    counters.received();
    if let Ok(message) = Message::parse(packet)
        && let Some(question) = message.question()
    {
        let mut lower = WireNameBuf::new();
        question.name.write_lower(&mut lower);
        counters.query(&lower, question.qtype);
    }
    let rate = shared.drop_rate();
    if let Some(rng) = loss
        && rate > 0.0
        && rng.random::<f64>() < rate
    {
        counters.dropped();
        return Action::Drop;
    }
    let behavior = shared.behavior();
    match shared.zone.respond(packet, transport, behavior, out) {
        Some(len) => Action::Reply {
            len,
            spoof: behavior == Behavior::WrongIdThenRight,
        },
        None => {
            counters.dropped();
            Action::Drop
        }
    }
}

/// Starts upstreams; see [`Upstream::start`].
#[derive(Debug)]
pub struct Upstream(());

impl Upstream {
    /// Bind the sockets and start serving. Fails on an invalid config
    /// (`InvalidInput`) or when the address cannot be bound.
    pub fn start(config: UpstreamConfig) -> io::Result<UpstreamHandle> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
        if config.threads == 0 || config.threads > 1024 {
            return Err(invalid(format!(
                "threads must be 1..=1024, not {}",
                config.threads
            )));
        }
        if !(0.0..=1.0).contains(&config.drop_rate) {
            return Err(invalid(format!(
                "drop rate must be within 0.0..=1.0, not {}",
                config.drop_rate
            )));
        }
        let zone = Zone::new(&config.zone)?;
        let (sockets, listener) = bind_all(config.listen, config.threads, config.tcp)?;
        let local_addr = sockets
            .first()
            .ok_or_else(|| io::Error::other("no socket bound"))?
            .local_addr()?;
        let shared = Arc::new(Shared {
            zone,
            behavior: AtomicU8::new(config.behavior.to_u8()),
            delay_nanos: AtomicU64::new(duration_nanos(config.delay)),
            drop_rate: config.drop_rate,
            stop: AtomicBool::new(false),
            seed: config.seed,
        });
        let mut handle = UpstreamHandle {
            local_addr,
            tcp: listener.is_some(),
            shared: Arc::clone(&shared),
            udp_counters: Vec::new(),
            tcp_counters: Arc::new(Counters::new()),
            threads: Vec::new(),
        };
        for (index, socket) in (0u64..).zip(sockets) {
            let counters = Arc::new(Counters::new());
            handle.udp_counters.push(Arc::clone(&counters));
            let shared = Arc::clone(&shared);
            // On failure `handle` drops here, stopping what already runs.
            let thread = std::thread::Builder::new()
                .name(format!("upstream-udp-{index}"))
                .spawn(move || udp::serve(&socket, &shared, &counters, index))?;
            handle.threads.push(thread);
        }
        if let Some(listener) = listener {
            let counters = Arc::clone(&handle.tcp_counters);
            let thread = std::thread::Builder::new()
                .name("upstream-tcp".into())
                .spawn(move || tcp::serve(&listener, &shared, &counters))?;
            handle.threads.push(thread);
        }
        Ok(handle)
    }
}

fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

fn udp_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(reuse_port)?;
    // Bigger buffers ride out bursts from a load generator; the kernel caps
    // them at rmem_max/wmem_max, which is fine.
    let _capped = socket.set_recv_buffer_size(4 << 20);
    let _capped = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    Ok(socket)
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted upstream rebind while old connections sit in
    // TIME_WAIT; it does not let two listeners share the port.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    let listener: TcpListener = socket.into();
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Bind the UDP sockets (and the TCP listener) on one port, retrying with
/// a fresh port when port 0 was asked for and a race took the port.
fn bind_all(
    listen: SocketAddr,
    threads: usize,
    tcp: bool,
) -> io::Result<(Vec<UdpSocket>, Option<TcpListener>)> {
    let attempts = if listen.port() == 0 { 16 } else { 1 };
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for _ in 0..attempts {
        match try_bind(listen, threads, tcp) {
            Ok(bound) => return Ok(bound),
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => last = err,
            Err(err) => return Err(err),
        }
    }
    Err(last)
}

fn try_bind(
    listen: SocketAddr,
    threads: usize,
    tcp: bool,
) -> io::Result<(Vec<UdpSocket>, Option<TcpListener>)> {
    // The kernel may hand out, for port 0, a port that another process's
    // SO_REUSEPORT socket of the same user already holds, and an explicit
    // port may be shared the same way: the two servers would then split the
    // traffic silently. A first bind without SO_REUSEPORT proves the port
    // is free.
    let probe = udp_socket(listen, false)?;
    let addr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound address is not IP"))?;
    let listener = if tcp { Some(tcp_listener(addr)?) } else { None };
    if threads == 1 {
        return Ok((vec![probe.into()], listener));
    }
    drop(probe);
    let sockets = (0..threads)
        .map(|_| udp_socket(addr, true).map(UdpSocket::from))
        .collect::<io::Result<Vec<_>>>()?;
    Ok((sockets, listener))
}

/// A running upstream; stops (and joins its threads) on drop.
pub struct UpstreamHandle {
    local_addr: SocketAddr,
    tcp: bool,
    shared: Arc<Shared>,
    udp_counters: Vec<Arc<Counters>>,
    tcp_counters: Arc<Counters>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for UpstreamHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamHandle")
            .field("local_addr", &self.local_addr)
            .field("tcp", &self.tcp)
            .field("behavior", &self.behavior())
            .field("delay", &self.delay())
            .finish_non_exhaustive()
    }
}

impl UpstreamHandle {
    /// The address served (UDP, and TCP when enabled).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The zone served.
    pub fn zone(&self) -> &Zone {
        &self.shared.zone
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> UpstreamStats {
        let mut stats = UpstreamStats::default();
        for counters in &self.udp_counters {
            let received = counters.add_to(&mut stats);
            stats.per_thread_received.push(received);
        }
        stats.tcp_received = self.tcp_counters.add_to(&mut stats);
        stats
    }

    /// Queries received (UDP and TCP, dropped or not) whose question name
    /// is `name` in any letter case; 0 for a name that does not parse.
    /// Only the first [`MAX_TRACKED_NAMES`] distinct names per thread are
    /// counted.
    pub fn queries_for(&self, name: &str) -> u64 {
        let Ok(name) = NameBuf::from_presentation(name) else {
            return 0;
        };
        let lower = name.to_lowercase();
        self.udp_counters
            .iter()
            .chain(std::iter::once(&self.tcp_counters))
            .map(|counters| counters.queries_for(lower.as_wire()))
            .sum()
    }

    /// Zero every counter.
    pub fn reset_stats(&self) {
        for counters in self
            .udp_counters
            .iter()
            .chain(std::iter::once(&self.tcp_counters))
        {
            counters.reset();
        }
    }

    /// Switch behaviour; applies to queries received from now on.
    pub fn set_behavior(&self, behavior: Behavior) {
        self.shared
            .behavior
            .store(behavior.to_u8(), Ordering::Relaxed);
    }

    /// The current behaviour.
    pub fn behavior(&self) -> Behavior {
        self.shared.behavior()
    }

    /// Change the reply delay; applies to queries received from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_nanos
            .store(duration_nanos(delay), Ordering::Relaxed);
    }

    /// The current reply delay.
    pub fn delay(&self) -> Duration {
        self.shared.delay()
    }

    /// Stop serving and join every thread (within about [`STOP_POLL`],
    /// plus the time to finish a batch). Idempotent; counters stay
    /// readable.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _panicked = thread.join();
        }
    }
}

impl Drop for UpstreamHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviors_round_trip() {
        for behavior in Behavior::ALL {
            assert_eq!(Behavior::from_u8(behavior.to_u8()), behavior);
            assert_eq!(behavior.as_str().parse::<Behavior>(), Ok(behavior));
        }
        assert_eq!("WRONG_ID".parse::<Behavior>(), Ok(Behavior::WrongId));
        assert!("bogus".parse::<Behavior>().is_err());
    }

    #[test]
    fn invalid_configs_are_refused() {
        for config in [
            UpstreamConfig {
                threads: 0,
                ..UpstreamConfig::default()
            },
            UpstreamConfig {
                drop_rate: 1.5,
                ..UpstreamConfig::default()
            },
            UpstreamConfig {
                drop_rate: f64::NAN,
                ..UpstreamConfig::default()
            },
        ] {
            let err = Upstream::start(config).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }
}
