//! DNS over UDP to upstreams: each attempt leaves from a socket of its
//! own, bound to a source port heimdall picks uniformly at random, and a
//! receive task per socket reports each reply with the attempt the socket
//! carries, so the resolver accepts a reply only on its attempt's socket.
//!
//! An off-path forger must guess the query ID *and* the port of the one
//! socket that may accept the reply (plus the 0x20 case and the cookie,
//! judged by the resolver). Ports are picked here, from a per-core CSPRNG
//! seeded by the OS, not by the kernel's ephemeral allocator, and never
//! one of heimdall's own listen ports. A port found taken is retried, a
//! bounded number of times (counted).
//!
//! A socket carries one attempt at a time. When the resolver retires the
//! attempt ([`heimdall_resolver::Resolver::poll_retired`]) the socket goes
//! idle, and the next attempt takes an idle socket picked at random; after
//! `upstream.socket_uses` attempts (default 64), or once older than
//! [`SOCKET_MAX_AGE`] (1 s), it is closed (its task dropped, which cancels
//! the pending receive) and a new random port takes its place. A fresh
//! socket for every attempt, as Unbound does, cost half the all-miss rate
//! here: `socket`, `bind` and `close` are most of a miss's CPU on loopback
//! (docs/ARCHITECTURE.md has the profile and the A/B). A datagram that
//! reaches a socket between two attempts is judged with its next attempt
//! (it had to guess an ID and case not chosen yet), or dropped and counted
//! (`strays`) when it comes after the attempt was retired.
//!
//! The sockets are not `connect()`ed: a reply from another address or
//! port then reaches the reply check, which rejects and counts it, so a
//! flood from a wrong source shows in `/metrics` instead of vanishing into
//! the kernel's `NoPorts` counter. It also saves a system call.
//!
//! Open sockets per core are bounded (`upstream.max_sockets`): at the
//! bound, an attempt waits in a queue of the same size for a socket to
//! free up (counted), and beyond that is dropped (counted) and left to
//! its deadline.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::UdpSocket;
use hashbrown::HashMap;
use heimdall_control::UpstreamSocketSnapshot;
use heimdall_dnstap::SocketProtocol;
use heimdall_resolver::{AttemptId, ReplySource, UpstreamTransport};
use rand::RngExt as _;
use rand::rngs::StdRng;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::batch::{DATAGRAM_BUF, recv_from, send_to, set_no_fragmentation};
use crate::context::{CoreContext, SendFailed, UpstreamSend};

/// Random ports tried per socket before the attempt is given up (counted
/// as a bind failure). With a wide range and few ports taken, a second try
/// is already rare.
const BIND_TRIES: u32 = 16;
/// A socket older than this is closed when its attempt ends, so that at a
/// low query rate, where a socket would otherwise carry its
/// `upstream.socket_uses` attempts over a long time, ports still turn over
/// at least this often (a fresh socket costs little at a low rate).
const SOCKET_MAX_AGE: Duration = Duration::from_secs(1);
/// Idle sockets kept for reuse; more are closed.
const IDLE_MAX: usize = 256;

/// How one core opens its upstream UDP sockets.
#[derive(Debug, Clone)]
pub(crate) struct UdpUpstreamSettings {
    /// Lowest source port.
    pub(crate) port_min: u16,
    /// Highest source port.
    pub(crate) port_max: u16,
    /// Ports never used: heimdall's own listen ports.
    pub(crate) skip_ports: Vec<u16>,
    /// Sockets open at once (and attempts waiting for one).
    pub(crate) max_sockets: usize,
    /// Attempts a socket carries before it is closed
    /// (`upstream.socket_uses`).
    pub(crate) socket_uses: u32,
}

/// Picks source ports uniformly at random from a range, minus a few.
struct PortPicker {
    rng: StdRng,
    min: u16,
    max: u16,
    skip: Vec<u16>,
}

impl PortPicker {
    /// A port in `min..=max` not in `skip`, uniformly among those; `None`
    /// when the range holds only skipped ports. Rejection sampling keeps
    /// the choice uniform; the bound on tries only matters for a range
    /// that is (almost) all skipped.
    fn pick(&mut self) -> Option<u16> {
        const TRIES: usize = 64;
        (0..TRIES)
            .map(|_| self.rng.random_range(self.min..=self.max))
            .find(|port| !self.skip.contains(port))
    }
}

/// An attempt waiting for a socket.
struct Waiting {
    attempt: AttemptId,
    to: SocketAddr,
    query: Vec<u8>,
}

/// One open socket and its receive task (dropping it closes the socket).
struct Pooled {
    fd: RawFd,
    /// The attempt it carries now; `None` while idle, when whatever
    /// arrives is a stray and is dropped (counted).
    current: Rc<Cell<Option<AttemptId>>>,
    /// Wakes the receive task when an attempt starts.
    wake: LocalSender<()>,
    _task: glommio::Task<()>,
    uses: u32,
    v6: bool,
    /// When it was opened: it is closed once older than
    /// [`SOCKET_MAX_AGE`], however few attempts it carried.
    opened: Instant,
    /// Its local address, for dnstap (read only when dnstap logs
    /// forwarding).
    local: Option<SocketAddr>,
}

struct State {
    picker: PortPicker,
    in_use: HashMap<AttemptId, Pooled>,
    /// Idle sockets, IPv4.
    idle_v4: Vec<Pooled>,
    /// Idle sockets, IPv6.
    idle_v6: Vec<Pooled>,
    waiting: VecDeque<Waiting>,
    max_sockets: usize,
    socket_uses: u32,
    stats: UpstreamSocketSnapshot,
}

impl State {
    fn open_count(&self) -> usize {
        self.in_use.len() + self.idle_v4.len() + self.idle_v6.len()
    }

    /// The idle sockets of one family.
    fn idle(&mut self, v6: bool) -> &mut Vec<Pooled> {
        if v6 {
            &mut self.idle_v6
        } else {
            &mut self.idle_v4
        }
    }
}

/// One core's upstream UDP sockets.
pub(crate) struct UdpUpstreams {
    state: RefCell<State>,
    /// Datagrams that reached an idle socket.
    strays: Rc<Cell<u64>>,
}

impl UdpUpstreams {
    /// The sockets of one core, with its own OS-seeded generator.
    pub(crate) fn new(settings: &UdpUpstreamSettings) -> Self {
        let picker = PortPicker {
            rng: rand::make_rng(),
            min: settings.port_min.min(settings.port_max),
            max: settings.port_max.max(settings.port_min),
            skip: settings.skip_ports.clone(),
        };
        Self {
            state: RefCell::new(State {
                picker,
                in_use: HashMap::new(),
                idle_v4: Vec::new(),
                idle_v6: Vec::new(),
                waiting: VecDeque::new(),
                max_sockets: settings.max_sockets.max(1),
                socket_uses: settings.socket_uses.max(1),
                stats: UpstreamSocketSnapshot::default(),
            }),
            strays: Rc::new(Cell::new(0)),
        }
    }

    /// The socket counters, with the open sockets as a gauge.
    pub(crate) fn stats(&self) -> UpstreamSocketSnapshot {
        let state = self.state.borrow();
        let mut stats = state.stats;
        stats.open = state.open_count() as u64;
        stats.strays = self.strays.get();
        stats
    }

    /// Close every socket (the core is stopping).
    pub(crate) fn close_all(&self) {
        let mut state = self.state.borrow_mut();
        state.in_use.clear();
        state.idle_v4.clear();
        state.idle_v6.clear();
        state.waiting.clear();
    }

    /// A socket for `attempt` to `to`: an idle one of the family, picked at
    /// random (so which open port the next query uses is not predictable
    /// either), or a new one on a random port.
    fn socket_for(
        &self,
        state: &mut State,
        ctx: &Rc<CoreContext>,
        to: SocketAddr,
    ) -> Result<Pooled, SendFailed> {
        let idle_count = state.idle(to.is_ipv6()).len();
        if idle_count > 0 {
            let index = state.picker.rng.random_range(0..idle_count);
            // Whatever reached it while idle is judged with its next
            // attempt, like a forgery arriving just after the query: it
            // had to guess an ID and case not chosen yet. Not draining
            // it saves a system call per attempt.
            return Ok(state.idle(to.is_ipv6()).swap_remove(index));
        }
        let socket = match bind_random(&mut state.picker, to, &mut state.stats) {
            Ok(socket) => socket,
            Err(err) => {
                state.stats.bind_failures += 1;
                log::debug!("core {}: no upstream socket: {err}", ctx.index());
                return Err(SendFailed);
            }
        };
        state.stats.opened += 1;
        let current = Rc::new(Cell::new(None));
        let fd = socket.as_raw_fd();
        let local = ctx
            .forwarding_tap()
            .and_then(|_| socket.local_addr().ok())
            .and_then(|addr| addr.as_socket());
        // One pending wake is enough: the task re-reads `current`.
        let (wake, woken) = local_channel::new_bounded(1);
        let task = glommio::spawn_local(receive_replies(
            Rc::clone(ctx),
            UdpSocket::from(socket),
            (Rc::clone(&current), woken),
            Rc::clone(&self.strays),
            local,
        ));
        Ok(Pooled {
            fd,
            current,
            wake,
            _task: task,
            uses: 0,
            opened: Instant::now(),
            v6: to.is_ipv6(),
            local,
        })
    }

    /// Send `query` for `attempt` from a socket of its own.
    fn send_now(
        &self,
        state: &mut State,
        ctx: &Rc<CoreContext>,
        attempt: AttemptId,
        to: SocketAddr,
        query: &[u8],
    ) -> Result<(), SendFailed> {
        let mut pooled = self.socket_for(state, ctx, to)?;
        pooled.current.set(Some(attempt));
        let _ = pooled.wake.try_send(());
        pooled.uses += 1;
        let sent = send_to(pooled.fd, query, to);
        if sent.is_ok()
            && let Some(tap) = ctx.forwarding_tap()
        {
            tap.forwarder_query(SocketProtocol::Udp, pooled.local, to, query);
        }
        // Kept even when the send failed: the attempt stays live until the
        // resolver retires it, and a retry is its deadline's business.
        state.in_use.insert(attempt, pooled);
        sent.map(drop).map_err(|_| SendFailed)
    }
}

impl UpstreamSend for UdpUpstreams {
    fn send(
        &self,
        ctx: &Rc<CoreContext>,
        attempt: AttemptId,
        to: SocketAddr,
        query: &[u8],
    ) -> Result<(), SendFailed> {
        let mut state = self.state.borrow_mut();
        if state.idle(to.is_ipv6()).is_empty() && state.open_count() >= state.max_sockets {
            // An idle socket of the other family makes room; otherwise wait.
            if state.idle(!to.is_ipv6()).pop().is_none() {
                if state.waiting.len() >= state.max_sockets {
                    state.stats.wait_drops += 1;
                } else {
                    state.stats.waits += 1;
                    state.waiting.push_back(Waiting {
                        attempt,
                        to,
                        query: query.to_vec(),
                    });
                }
                return Ok(());
            }
        }
        self.send_now(&mut state, ctx, attempt, to, query)
    }

    fn retire(&self, ctx: &Rc<CoreContext>, attempt: AttemptId) -> Result<(), SendFailed> {
        let mut state = self.state.borrow_mut();
        let Some(pooled) = state.in_use.remove(&attempt) else {
            // Not sent: a TCP attempt, a dropped one, or one still waiting.
            state.waiting.retain(|waiting| waiting.attempt != attempt);
            return Ok(());
        };
        // No wake-up: the receive task reads `current` when a datagram
        // arrives (one that comes while idle is a stray).
        pooled.current.set(None);
        let young = pooled.opened.elapsed() < SOCKET_MAX_AGE;
        if young && pooled.uses < state.socket_uses && state.idle(pooled.v6).len() < IDLE_MAX {
            state.idle(pooled.v6).push(pooled);
        } else {
            drop(pooled);
        }
        let mut result = Ok(());
        while let Some(next) = state.waiting.front() {
            let v6 = next.to.is_ipv6();
            if state.idle(v6).is_empty() && state.open_count() >= state.max_sockets {
                break;
            }
            let Some(next) = state.waiting.pop_front() else {
                break;
            };
            if self
                .send_now(&mut state, ctx, next.attempt, next.to, &next.query)
                .is_err()
            {
                result = Err(SendFailed);
            }
        }
        result
    }

    fn socket_stats(&self) -> Option<UpstreamSocketSnapshot> {
        Some(self.stats())
    }
}

/// A non-blocking UDP socket of `to`'s family, bound to a random port of
/// the picker's range; a port found taken (or refused) is retried, up to
/// [`BIND_TRIES`] times, each retry counted.
fn bind_random(
    picker: &mut PortPicker,
    to: SocketAddr,
    stats: &mut UpstreamSocketSnapshot,
) -> io::Result<Socket> {
    let domain = Domain::for_address(to);
    // SOCK_NONBLOCK at creation: one system call fewer than setting it.
    let socket = Socket::new(domain, Type::DGRAM.nonblocking(), Some(Protocol::UDP))?;
    // As the old fixed pool did: DF set and path-MTU messages ignored, so
    // queries never fragment and the kernel's shared IP-ID generator is
    // not used (ARCHITECTURE.md). One call per socket, not per attempt.
    set_no_fragmentation(socket.as_raw_fd(), to.is_ipv6())?;
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no port in the source range");
    for _ in 0..BIND_TRIES {
        let Some(port) = picker.pick() else {
            break;
        };
        let local: SocketAddr = if to.is_ipv6() {
            (Ipv6Addr::UNSPECIFIED, port).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, port).into()
        };
        match socket.bind(&SockAddr::from(local)) {
            Ok(()) => return Ok(socket),
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::AddrInUse | io::ErrorKind::PermissionDenied
                ) =>
            {
                stats.bind_retries += 1;
                last = err;
            }
            Err(err) => return Err(err),
        }
    }
    Err(last)
}

/// Receive replies on one socket until its task is dropped (the socket
/// closed) or the socket fails. Each is reported with the attempt the
/// socket carries, so the resolver accepts only that attempt's reply here.
///
/// The receive is armed lazily: once woken for a new attempt, the task
/// yields, so that under load the core finishes its batch first and the
/// reply is usually already queued; a plain `recvfrom` takes it, and the
/// io_uring submission a wait costs is paid only when the reply is not
/// there yet. Arming a wait on every socket at once was most of the cost
/// of a socket per attempt (docs/ARCHITECTURE.md). A wait still pending
/// when its attempt is retired stays armed for the socket's next attempt;
/// what arrives while the socket is idle is a stray.
///
/// The wait is for readiness (`UdpSocket::readable`, a poll), not a
/// receive: a socket that waits holds no buffer. Each datagram is read
/// into a buffer on the stack of the call that handles it, so a core's
/// open sockets (up to `upstream.max_sockets`, 1,024 by default) cost no
/// 4 KiB receive buffer each (two, with glommio's own for a ring
/// receive), which a burst of misses left behind as free space in the
/// allocator's arenas (docs/TUNING.md, "Resident memory").
async fn receive_replies(
    ctx: Rc<CoreContext>,
    socket: UdpSocket,
    (current, woken): (Rc<Cell<Option<AttemptId>>>, LocalReceiver<()>),
    strays: Rc<Cell<u64>>,
    local: Option<SocketAddr>,
) {
    let fd = socket.as_raw_fd();
    loop {
        // Idle: wait for an attempt.
        if current.get().is_none() {
            if woken.recv().await.is_none() {
                return;
            }
            continue;
        }
        // Also keeps this task off `CoreContext::drain`'s stack: glommio
        // may poll a new task inside its spawner, which holds the resolver.
        futures_lite::future::yield_now().await;
        // Receive while the socket carries an attempt. The attempt is read
        // when a datagram arrives, not before: a wait left pending when its
        // attempt was retired serves the socket's next attempt, so a
        // retirement needs no wake-up (one task switch fewer per query).
        while current.get().is_some() {
            match receive_one(&ctx, fd, &current, &strays, local) {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => {
                    log::debug!("core {}: upstream receive error: {err}", ctx.index());
                    return;
                }
            }
            let woke = match socket.readable().await {
                // What woke it is read even if the attempt was retired in
                // the meantime: it is then a stray, and counted.
                Ok(()) => receive_one(&ctx, fd, &current, &strays, local).map(drop),
                Err(err) => Err(err.into()),
            };
            if let Err(err) = woke {
                log::debug!("core {}: upstream receive error: {err}", ctx.index());
                return;
            }
        }
    }
}

/// Read one datagram from the upstream socket `fd`, if one is queued, and
/// hand it to the resolver with the socket's attempt (or count it as a
/// stray when the socket has none). `Ok(false)`: nothing was queued.
fn receive_one(
    ctx: &Rc<CoreContext>,
    fd: RawFd,
    current: &Cell<Option<AttemptId>>,
    strays: &Cell<u64>,
    local: Option<SocketAddr>,
) -> io::Result<bool> {
    let mut buf = [0u8; DATAGRAM_BUF];
    let (len, from) = match recv_from(fd, &mut buf) {
        Ok(received) => received,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            // Not an IP sender: cannot be an upstream's reply.
            strays.set(strays.get() + 1);
            return Ok(true);
        }
        Err(err) => return Err(err),
    };
    let Some(attempt) = current.get() else {
        strays.set(strays.get() + 1);
        return Ok(true);
    };
    if let Some(reply) = ctx.checked(&buf, len) {
        if let Some(tap) = ctx.forwarding_tap() {
            tap.forwarder_response(SocketProtocol::Udp, local, from, reply);
        }
        let source = ReplySource {
            from,
            transport: UpstreamTransport::Udp,
            attempt: Some(attempt),
        };
        ctx.upstream_reply(source, reply);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picker(min: u16, max: u16, skip: Vec<u16>) -> PortPicker {
        PortPicker {
            rng: rand::make_rng(),
            min,
            max,
            skip,
        }
    }

    #[test]
    fn ports_are_spread_over_the_range_and_skip_the_listen_ports() {
        let mut picker = picker(1024, 65535, vec![5353, 8053]);
        let ports: Vec<u16> = (0..1000).filter_map(|_| picker.pick()).collect();
        assert_eq!(ports.len(), 1000);
        assert!(ports.iter().all(|p| (1024..=65535).contains(p)));
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert!(distinct.len() > 980, "{} distinct", distinct.len());
        // Not sequential: consecutive picks are rarely neighbours.
        let neighbours = ports
            .windows(2)
            .filter(|w| w[0].abs_diff(w[1]) <= 16)
            .count();
        assert!(neighbours < 10, "{neighbours} near-sequential pairs");
        // A range of only skipped ports yields nothing; a narrow one, its
        // only free port.
        assert_eq!(self::picker(53, 53, vec![53]).pick(), None);
        let mut narrow = self::picker(6000, 6001, vec![6000]);
        assert!((0..20).all(|_| narrow.pick() == Some(6001)));
    }

    #[test]
    fn a_taken_port_is_retried_and_counted() {
        // A taken port whose neighbour is free: the range is the two.
        let (_holder, taken, other) = (0..50)
            .find_map(|_| {
                let holder = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
                let taken = holder.local_addr().ok()?.port();
                let other = taken.checked_add(1)?;
                std::net::UdpSocket::bind(("0.0.0.0", other)).ok()?;
                Some((holder, taken, other))
            })
            .unwrap();
        let mut picker = picker(taken, other, Vec::new());
        let to: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let mut stats = UpstreamSocketSnapshot::default();
        let mut retried = false;
        for _ in 0..20 {
            let socket = bind_random(&mut picker, to, &mut stats).unwrap();
            let port = socket.local_addr().unwrap().as_socket().unwrap().port();
            assert_eq!(port, other);
            retried |= stats.bind_retries > 0;
        }
        assert!(retried, "the taken port was never picked in 20 binds");
        // Only taken ports: a clear error, every try counted.
        let mut only_taken = self::picker(taken, taken, Vec::new());
        let mut stats = UpstreamSocketSnapshot::default();
        let err = bind_random(&mut only_taken, to, &mut stats).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(stats.bind_retries, u64::from(BIND_TRIES));
    }
}
