//! Socket setup: one UDP socket per core per listen address, all bound to
//! the same address with `SO_REUSEPORT` so the kernel spreads clients over
//! cores (upstream sockets, one per attempt, are opened by
//! `upstream::udp`). Also which receive
//! errors are only timeouts ([`is_timeout`]), for every receive loop.
//!
//! Sockets are created on the starting thread, before any executor runs,
//! so a bad address or a busy port is reported at start, and a listen port
//! of 0 resolves to one ephemeral port that every core shares.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Kernel socket buffer asked for on listening sockets: room for bursts
/// while a core is busy with a batch. The kernel caps it at
/// net.core.rmem_max / wmem_max (see deploy/ for the sysctl).
const LISTEN_BUFFER_BYTES: usize = 4 << 20;

fn udp_socket(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A listening UDP socket bound to `addr` with `SO_REUSEPORT`.
pub(crate) fn listen_udp(addr: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let socket = udp_socket(domain)?;
    if addr.is_ipv6() {
        // One socket per family: an IPv6 wildcard must not also take IPv4.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    crate::batch::set_no_fragmentation(socket.as_raw_fd(), addr.is_ipv6())?;
    // Larger buffers are a hint; a small kernel maximum is not fatal.
    let _ = socket.set_recv_buffer_size(LISTEN_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(LISTEN_BUFFER_BYTES);
    socket.bind(&SockAddr::from(addr))?;
    Ok(socket)
}

/// Connections the kernel queues per TCP listener before `accept`.
const TCP_BACKLOG: i32 = 1024;

/// A listening TCP socket bound to `addr` with `SO_REUSEPORT`.
pub(crate) fn listen_tcp(addr: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(TCP_BACKLOG)?;
    Ok(socket)
}

/// Connections the kernel queues on the control endpoint.
const CONTROL_BACKLOG: i32 = 64;

/// The control endpoint's listener: without `SO_REUSEPORT`, so a second
/// heimdall on the same address fails at start instead of silently
/// sharing the port.
pub(crate) fn control_listener(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket
        .bind(&SockAddr::from(addr))
        .map_err(|err| io::Error::new(err.kind(), format!("control endpoint {addr}: {err}")))?;
    socket.listen(CONTROL_BACKLOG)?;
    Ok(socket)
}

/// Every core's listening sockets for one address family of listen
/// addresses: UDP and TCP per core per address.
pub(crate) struct Listeners {
    /// Per core, one UDP socket per listen address.
    pub(crate) udp: Vec<Vec<Socket>>,
    /// Per core, one TCP listener per listen address.
    pub(crate) tcp: Vec<Vec<Socket>>,
    /// The bound addresses (UDP and TCP share the port).
    pub(crate) bound: Vec<SocketAddr>,
}

/// For each listen address, one UDP socket and one TCP listener per core,
/// all on the same port. A port of 0 resolves to one port that no other
/// socket holds; if a race takes it before the group is bound, another is
/// tried.
pub(crate) fn listen_per_core(listen: &[SocketAddr], cores: usize) -> io::Result<Listeners> {
    listen_per_core_within(listen, cores, BUSY_PORT_WAIT)
}

/// [`listen_per_core`], waiting at most `busy_wait` for a busy explicit
/// port.
fn listen_per_core_within(
    listen: &[SocketAddr],
    cores: usize,
    busy_wait: std::time::Duration,
) -> io::Result<Listeners> {
    const PORT_ZERO_TRIES: usize = 16;
    let started = std::time::Instant::now();
    let mut out = Listeners {
        udp: (0..cores).map(|_| Vec::new()).collect(),
        tcp: (0..cores).map(|_| Vec::new()).collect(),
        bound: Vec::with_capacity(listen.len()),
    };
    for &addr in listen {
        let mut tries = 0;
        let (udp, tcp, actual) = loop {
            tries += 1;
            match listen_group(addr, cores) {
                Ok(group) => break group,
                Err(err)
                    if addr.port() == 0
                        && err.kind() == io::ErrorKind::AddrInUse
                        && tries < PORT_ZERO_TRIES =>
                {
                    log::debug!("port taken while binding ({err}); trying another");
                }
                Err(err)
                    if addr.port() != 0
                        && err.kind() == io::ErrorKind::AddrInUse
                        && started.elapsed() < busy_wait =>
                {
                    // A process that just exited may still hold its
                    // sockets for a moment: io_uring releases the files
                    // of pending requests after the process is gone. A
                    // restart waits that out; a live holder still fails.
                    log::debug!("{err}; waiting for the port");
                    std::thread::sleep(BUSY_PORT_RETRY);
                }
                Err(err) => return Err(err),
            }
        };
        out.bound.push(actual);
        for (core, socket) in out.udp.iter_mut().zip(udp) {
            core.push(socket);
        }
        for (core, socket) in out.tcp.iter_mut().zip(tcp) {
            core.push(socket);
        }
    }
    Ok(out)
}

/// How long a start waits for an explicit listen port that is busy,
/// retrying every [`BUSY_PORT_RETRY`].
const BUSY_PORT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// The pause between tries for a busy listen port.
const BUSY_PORT_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

/// Per-core UDP sockets and TCP listeners for one listen address.
type Group = (Vec<Socket>, Vec<Socket>, SocketAddr);

/// One listen address's group: the port is first proven free, then every
/// core's UDP socket and TCP listener join it with `SO_REUSEPORT`.
fn listen_group(addr: SocketAddr, cores: usize) -> io::Result<Group> {
    let actual = free_port(addr).map_err(|err| with_addr(err, addr))?;
    let udp = (0..cores.max(1))
        .map(|_| listen_udp(actual).map_err(|err| with_addr(err, actual)))
        .collect::<io::Result<Vec<_>>>()?;
    let tcp = (0..cores.max(1))
        .map(|_| listen_tcp(actual).map_err(|err| with_addr(err, actual)))
        .collect::<io::Result<Vec<_>>>()?;
    Ok((udp, tcp, actual))
}

/// `addr` with its port resolved, proven free of every other UDP socket
/// and TCP listener by binding both without `SO_REUSEPORT`.
///
/// Why: a socket with `SO_REUSEPORT` joins any group of the same user
/// already on its port, and for port 0 the kernel may even pick such a
/// port (it skips only ports it could not share). Two servers would then
/// split the traffic silently: a second heimdall on the same address, or
/// two test servers in one process. The probes are closed before the group
/// binds, so a race can still take the port; the caller retries for port 0.
fn free_port(addr: SocketAddr) -> io::Result<SocketAddr> {
    let domain = Domain::for_address(addr);
    let udp = udp_socket(domain)?;
    let tcp = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        udp.set_only_v6(true)?;
        tcp.set_only_v6(true)?;
    }
    udp.bind(&SockAddr::from(addr))?;
    let actual = udp
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listen socket has no IP address"))?;
    // As on the real listener: connections of an earlier run in TIME_WAIT
    // must not stop a restart, while a listening socket still does.
    tcp.set_reuse_address(true)?;
    tcp.bind(&SockAddr::from(actual))?;
    Ok(actual)
}

/// Per core, one TCP listener per address of `listen` (the encrypted
/// transports' listeners, which have no UDP socket beside them), and the
/// addresses bound. A port of 0 resolves to one free port that every core
/// shares, as for the DNS listeners.
pub(crate) fn listen_tcp_per_core(
    listen: &[SocketAddr],
    cores: usize,
) -> io::Result<(Vec<Vec<Socket>>, Vec<SocketAddr>)> {
    let mut per_core: Vec<Vec<Socket>> = (0..cores.max(1)).map(|_| Vec::new()).collect();
    let mut bound = Vec::with_capacity(listen.len());
    for &addr in listen {
        let actual = free_tcp_port(addr).map_err(|err| with_addr(err, addr))?;
        for core in &mut per_core {
            core.push(listen_tcp(actual).map_err(|err| with_addr(err, actual))?);
        }
        bound.push(actual);
    }
    Ok((per_core, bound))
}

/// Per core, one UDP socket per address of `listen` (DNS over QUIC), and
/// the addresses bound. The group has no steering program: the kernel's
/// default 4-tuple hash keeps each client's datagrams on one core, which
/// a QUIC connection needs. A port of 0 resolves to one free port.
pub(crate) fn listen_udp_per_core(
    listen: &[SocketAddr],
    cores: usize,
) -> io::Result<(Vec<Vec<Socket>>, Vec<SocketAddr>)> {
    let mut per_core: Vec<Vec<Socket>> = (0..cores.max(1)).map(|_| Vec::new()).collect();
    let mut bound = Vec::with_capacity(listen.len());
    for &addr in listen {
        let actual = free_udp_port(addr).map_err(|err| with_addr(err, addr))?;
        for core in &mut per_core {
            core.push(listen_udp(actual).map_err(|err| with_addr(err, actual))?);
        }
        bound.push(actual);
    }
    Ok((per_core, bound))
}

/// `addr` with its port resolved, proven free of other UDP sockets by a
/// bind without `SO_REUSEPORT` (see [`free_port`] for why).
fn free_udp_port(addr: SocketAddr) -> io::Result<SocketAddr> {
    let udp = udp_socket(Domain::for_address(addr))?;
    if addr.is_ipv6() {
        udp.set_only_v6(true)?;
    }
    udp.bind(&SockAddr::from(addr))?;
    udp.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listen socket has no IP address"))
}

/// `addr` with its port resolved, proven free of other TCP listeners by a
/// bind without `SO_REUSEPORT` (see [`free_port`] for why).
fn free_tcp_port(addr: SocketAddr) -> io::Result<SocketAddr> {
    let tcp = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        tcp.set_only_v6(true)?;
    }
    tcp.set_reuse_address(true)?;
    tcp.bind(&SockAddr::from(addr))?;
    tcp.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listen socket has no IP address"))
}

/// Whether a receive error is only a timeout (nothing to log).
pub(crate) fn is_timeout(err: &glommio::GlommioError<()>) -> bool {
    matches!(err, glommio::GlommioError::TimedOut(_))
        || matches!(err, glommio::GlommioError::IoError(io) if io.kind() == std::io::ErrorKind::TimedOut || io.kind() == std::io::ErrorKind::WouldBlock)
}

pub(crate) fn with_addr(err: io::Error, addr: SocketAddr) -> io::Error {
    io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn port_zero_is_shared_by_every_core() {
        let listen: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap()];
        let listeners = listen_per_core(&listen, 3).unwrap();
        let bound = listeners.bound[0];
        assert_eq!(listeners.udp.len(), 3);
        assert_ne!(bound.port(), 0);
        for socket in listeners.udp.iter().flatten() {
            let local = socket.local_addr().unwrap().as_socket().unwrap();
            assert_eq!(local, bound);
        }
    }

    /// A reuseport UDP socket bound to 127.0.0.1:0, as another server of
    /// the same user would hold it.
    fn foreign_group_member() -> Socket {
        let socket = udp_socket(Domain::IPV4).unwrap();
        socket.set_reuse_port(true).unwrap();
        socket
            .bind(&SockAddr::from(SocketAddr::from(([127, 0, 0, 1], 0))))
            .unwrap();
        socket
    }

    #[test]
    fn port_zero_never_joins_another_servers_group() {
        // With this many reuseport ports held, a plain reuseport bind to
        // port 0 lands on one of them within 100 tries all but about once
        // in a thousand runs (2,000 of ~28k ephemeral ports).
        let held: Vec<Socket> = (0..2_000).map(|_| foreign_group_member()).collect();
        let ports: std::collections::HashSet<u16> = held
            .iter()
            .map(|s| s.local_addr().unwrap().as_socket().unwrap().port())
            .collect();
        let listen: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap()];
        for _ in 0..100 {
            let listeners = listen_per_core(&listen, 2).unwrap();
            let port = listeners.bound[0].port();
            assert!(!ports.contains(&port), "joined a held group on port {port}");
        }
    }

    #[test]
    fn an_explicit_port_held_by_another_group_is_refused() {
        let other = foreign_group_member();
        let addr = other.local_addr().unwrap().as_socket().unwrap();
        let Err(err) = listen_per_core_within(&[addr], 1, Duration::from_millis(100)) else {
            panic!("joined another server's group on {addr}");
        };
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn udp_and_tcp_share_the_port() {
        let listen: Vec<SocketAddr> = vec!["127.0.0.1:0".parse().unwrap()];
        let listeners = listen_per_core(&listen, 2).unwrap();
        assert_eq!(listeners.tcp.len(), 2);
        for (udp, tcp) in listeners.udp.iter().zip(&listeners.tcp) {
            let udp = udp[0].local_addr().unwrap().as_socket().unwrap();
            let tcp = tcp[0].local_addr().unwrap().as_socket().unwrap();
            assert_eq!(udp, listeners.bound[0]);
            assert_eq!(tcp, listeners.bound[0]);
        }
    }

    #[test]
    fn a_busy_port_is_reported_with_its_address() {
        let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        let Err(err) = listen_per_core_within(&[addr], 1, Duration::ZERO) else {
            panic!("listened on a busy port");
        };
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }

    #[test]
    fn a_port_freed_while_starting_is_taken() {
        // As when the previous process's sockets outlive it for a moment.
        let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        let started = Instant::now();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(holder);
        });
        let listeners = listen_per_core_within(&[addr], 2, Duration::from_secs(5)).unwrap();
        release.join().unwrap();
        assert_eq!(listeners.bound, vec![addr]);
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
}
