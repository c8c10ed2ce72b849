//! DNS over UDP to upstreams: each attempt leaves from a socket of its
//! own, bound to a source port heimdall picks uniformly at random, and
//! each reply is reported with the attempt its socket carries, so the
//! resolver accepts a reply only on its attempt's socket.
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
//! [`SOCKET_MAX_AGE`] (1 s), it is closed and a new random port takes its
//! place. A fresh socket for every attempt, as Unbound does, cost half the
//! all-miss rate here: `socket`, `bind` and `close` are most of a miss's
//! CPU on loopback (docs/ARCHITECTURE.md has the profile and the A/B). A
//! datagram that reaches a socket while it carries no attempt is read,
//! dropped and counted (`strays`).
//!
//! The core's open sockets are watched through one epoll set
//! ([`heimdall_udp::ReadySet`]) by one receive task: it waits until the
//! set is readable, asks which sockets are, and reads one datagram from
//! each. A socket thus costs a slot in a table and nothing on the heap
//! (it had a receive task, a wake-up channel and a poll of its own, made
//! and freed with it: a waiting miss held 2.5 KiB of heap, 1.2 now), and a
//! burst of replies is one wake-up, not one per socket.
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

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd as _, AsRawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use heimdall_control::UpstreamSocketSnapshot;
use heimdall_dnstap::SocketProtocol;
use heimdall_resolver::{AttemptId, ReplySource, UpstreamTransport};
use heimdall_udp::{READY_MAX, ReadySet};
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

/// One open socket (dropping it closes the socket, which also takes it
/// out of the ready set).
struct Pooled {
    socket: Socket,
    /// The attempt it carries now; `None` while idle, when whatever
    /// arrives is a stray and is dropped (counted).
    attempt: Option<AttemptId>,
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
    /// Every open socket, by slot, the slot being its token in the ready
    /// set; slots are reused (`free`), so the table is as long as the
    /// most sockets ever open at once (at most `max_sockets`).
    slots: Vec<Option<Pooled>>,
    free: Vec<u32>,
    /// The slot of each attempt's socket.
    in_use: HashMap<AttemptId, u32>,
    /// Idle sockets, IPv4, by slot.
    idle_v4: Vec<u32>,
    /// Idle sockets, IPv6, by slot.
    idle_v6: Vec<u32>,
    waiting: VecDeque<Waiting>,
    max_sockets: usize,
    socket_uses: u32,
    /// The open sockets, watched (made with the first socket).
    ready: Option<Rc<ReadySet>>,
    /// The task that reads them (started with the first socket, ended by
    /// [`UdpUpstreams::close_all`]: it holds the core's context).
    receiver: Option<glommio::Task<()>>,
    stats: UpstreamSocketSnapshot,
}

impl State {
    /// The idle sockets of one family.
    fn idle(&mut self, v6: bool) -> &mut Vec<u32> {
        if v6 {
            &mut self.idle_v6
        } else {
            &mut self.idle_v4
        }
    }

    /// Sockets open.
    fn open(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn socket(&self, index: u32) -> Option<&Pooled> {
        self.slots.get(index as usize)?.as_ref()
    }

    fn socket_mut(&mut self, index: u32) -> Option<&mut Pooled> {
        self.slots.get_mut(index as usize)?.as_mut()
    }

    /// Put `socket` in a free slot; its index.
    fn place(&mut self, socket: Pooled) -> u32 {
        match self.free.pop() {
            Some(index) => {
                if let Some(slot) = self.slots.get_mut(index as usize) {
                    *slot = Some(socket);
                }
                index
            }
            None => {
                self.slots.push(Some(socket));
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    /// Close the socket in slot `index` and free the slot.
    fn close(&mut self, index: u32) {
        if let Some(slot) = self.slots.get_mut(index as usize)
            && slot.take().is_some()
        {
            self.free.push(index);
        }
    }
}

/// One core's upstream UDP sockets.
pub(crate) struct UdpUpstreams {
    state: Rc<RefCell<State>>,
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
            state: Rc::new(RefCell::new(State {
                picker,
                slots: Vec::new(),
                free: Vec::new(),
                in_use: HashMap::new(),
                idle_v4: Vec::new(),
                idle_v6: Vec::new(),
                waiting: VecDeque::new(),
                max_sockets: settings.max_sockets.max(1),
                socket_uses: settings.socket_uses.max(1),
                ready: None,
                receiver: None,
                stats: UpstreamSocketSnapshot::default(),
            })),
        }
    }

    /// The socket counters, with the open sockets as a gauge.
    pub(crate) fn stats(&self) -> UpstreamSocketSnapshot {
        let state = self.state.borrow();
        let mut stats = state.stats;
        stats.open = state.open() as u64;
        stats
    }

    /// Close every socket and end the receive task (the core is
    /// stopping).
    pub(crate) fn close_all(&self) {
        let receiver = {
            let mut state = self.state.borrow_mut();
            for index in 0..state.slots.len() {
                state.close(index as u32);
            }
            state.in_use.clear();
            state.idle_v4.clear();
            state.idle_v6.clear();
            state.waiting.clear();
            state.receiver.take()
        };
        // Dropped outside the borrow: dropping a task may run its
        // destructors, which must not find the state borrowed.
        drop(receiver);
    }

    /// The core's ready set and its receive task, made on first use.
    fn ready_set(&self, state: &mut State, ctx: &Rc<CoreContext>) -> io::Result<Rc<ReadySet>> {
        if let Some(ready) = &state.ready {
            return Ok(Rc::clone(ready));
        }
        let ready = Rc::new(ReadySet::new()?);
        state.receiver = Some(glommio::spawn_local(receive_replies(
            Rc::clone(ctx),
            Rc::clone(&self.state),
            Rc::clone(&ready),
        )));
        state.ready = Some(Rc::clone(&ready));
        Ok(ready)
    }

    /// A socket for an attempt to `to`, by slot: an idle one of the
    /// family, picked at random (so which open port the next query uses
    /// is not predictable either), or a new one on a random port.
    fn socket_for(
        &self,
        state: &mut State,
        ctx: &Rc<CoreContext>,
        to: SocketAddr,
    ) -> Result<u32, SendFailed> {
        let idle_count = state.idle(to.is_ipv6()).len();
        if idle_count > 0 {
            let index = state.picker.rng.random_range(0..idle_count);
            return Ok(state.idle(to.is_ipv6()).swap_remove(index));
        }
        let opened = self.ready_set(state, ctx).and_then(|ready| {
            let socket = bind_random(&mut state.picker, to, &mut state.stats)?;
            let local = ctx
                .forwarding_tap()
                .and_then(|_| socket.local_addr().ok())
                .and_then(|addr| addr.as_socket());
            let fd = socket.as_raw_fd();
            let index = state.place(Pooled {
                socket,
                attempt: None,
                uses: 0,
                v6: to.is_ipv6(),
                opened: Instant::now(),
                local,
            });
            if let Err(err) = ready.add(fd, u64::from(index)) {
                state.close(index);
                return Err(err);
            }
            Ok(index)
        });
        match opened {
            Ok(index) => {
                state.stats.opened += 1;
                Ok(index)
            }
            Err(err) => {
                state.stats.bind_failures += 1;
                log::debug!("core {}: no upstream socket: {err}", ctx.index());
                Err(SendFailed)
            }
        }
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
        let index = self.socket_for(state, ctx, to)?;
        let Some(pooled) = state.socket_mut(index) else {
            return Err(SendFailed);
        };
        pooled.attempt = Some(attempt);
        pooled.uses += 1;
        let sent = send_to(pooled.socket.as_raw_fd(), query, to);
        if sent.is_ok()
            && let Some(tap) = ctx.forwarding_tap()
        {
            tap.forwarder_query(SocketProtocol::Udp, pooled.local, to, query);
        }
        // Kept even when the send failed: the attempt stays live until the
        // resolver retires it, and a retry is its deadline's business.
        state.in_use.insert(attempt, index);
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
        if state.idle(to.is_ipv6()).is_empty() && state.open() >= state.max_sockets {
            // An idle socket of the other family makes room; otherwise wait.
            match state.idle(!to.is_ipv6()).pop() {
                Some(index) => state.close(index),
                None => {
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
        }
        self.send_now(&mut state, ctx, attempt, to, query)
    }

    fn retire(&self, ctx: &Rc<CoreContext>, attempt: AttemptId) -> Result<(), SendFailed> {
        let mut state = self.state.borrow_mut();
        let Some(index) = state.in_use.remove(&attempt) else {
            // Not sent: a TCP attempt, a dropped one, or one still waiting.
            state.waiting.retain(|waiting| waiting.attempt != attempt);
            return Ok(());
        };
        let socket_uses = state.socket_uses;
        let keep = state.socket_mut(index).map(|pooled| {
            pooled.attempt = None;
            let young = pooled.opened.elapsed() < SOCKET_MAX_AGE;
            (young && pooled.uses < socket_uses, pooled.v6)
        });
        match keep {
            Some((true, v6)) if state.idle(v6).len() < IDLE_MAX => state.idle(v6).push(index),
            _ => state.close(index),
        }
        let mut result = Ok(());
        while let Some(next) = state.waiting.front() {
            let v6 = next.to.is_ipv6();
            if state.idle(v6).is_empty() && state.open() >= state.max_sockets {
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

/// Read the core's upstream sockets until the task is dropped (the core
/// stops) or the ready set fails: wait until the set is readable, then
/// read one datagram from each socket it lists, reported with the attempt
/// the socket carries, so the resolver accepts only that attempt's reply
/// there. A full listing is followed by another before the next wait;
/// a socket left with a datagram stays listed (level-triggered).
///
/// The wait is for readiness, not a receive: no buffer waits. Each
/// datagram is read into a buffer on the stack of the call that handles
/// it.
async fn receive_replies(ctx: Rc<CoreContext>, state: Rc<RefCell<State>>, ready: Rc<ReadySet>) {
    // Off the spawner's stack first: glommio may poll a new task inside
    // `spawn_local`, which is called with the state borrowed.
    futures_lite::future::yield_now().await;
    let mut tokens = [0u64; READY_MAX];
    loop {
        let listed = match ready.ready(&mut tokens) {
            Ok(listed) => listed,
            Err(err) => {
                log::warn!("core {}: upstream ready set: {err}", ctx.index());
                return;
            }
        };
        for &token in tokens.get(..listed).unwrap_or_default() {
            receive_listed(&ctx, &state, token as u32);
        }
        if listed == READY_MAX {
            futures_lite::future::yield_now().await;
            continue;
        }
        if let Err(err) = glommio::net::wait_readable(ready.as_fd()).await {
            log::warn!("core {}: upstream ready set: {err}", ctx.index());
            return;
        }
    }
}

/// Read one datagram from the socket in the slot a listing names, and
/// hand it to the resolver with the attempt that socket carries (or count
/// it as a stray when it carries none). The slot is read now, not when
/// the listing was made: if its socket closed and another took the slot
/// meanwhile, this reads the other, and its datagram goes with the
/// other's attempt, which is the truth of where it arrived.
fn receive_listed(ctx: &Rc<CoreContext>, state: &RefCell<State>, index: u32) {
    let Some((fd, attempt, local)) = state
        .borrow()
        .socket(index)
        .map(|pooled| (pooled.socket.as_raw_fd(), pooled.attempt, pooled.local))
    else {
        return;
    };
    let mut buf = [0u8; DATAGRAM_BUF];
    let (len, from) = match recv_from(fd, &mut buf) {
        Ok(received) => received,
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
        Err(err) if err.kind() == io::ErrorKind::InvalidData => {
            // Not an IP sender: cannot be an upstream's reply.
            state.borrow_mut().stats.strays += 1;
            return;
        }
        Err(err) => {
            // A socket error is reported once and cleared (an unconnected
            // socket gets none from ICMP): the socket stays in use.
            log::debug!("core {}: upstream receive error: {err}", ctx.index());
            return;
        }
    };
    let Some(attempt) = attempt else {
        state.borrow_mut().stats.strays += 1;
        return;
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
