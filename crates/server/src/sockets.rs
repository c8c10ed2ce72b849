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
/// all on the same port. A port of 0 is resolved by the first UDP socket;
/// if that port is taken for TCP, another is tried.
pub(crate) fn listen_per_core(listen: &[SocketAddr], cores: usize) -> io::Result<Listeners> {
    const PORT_ZERO_TRIES: usize = 16;
    let mut out = Listeners {
        udp: (0..cores).map(|_| Vec::new()).collect(),
        tcp: (0..cores).map(|_| Vec::new()).collect(),
        bound: Vec::with_capacity(listen.len()),
    };
    for &addr in listen {
        let mut tries = 0;
        let (udp, tcp, actual) = loop {
            tries += 1;
            let (udp, actual) = listen_udp_per_core(addr, cores)?;
            let tcp: io::Result<Vec<Socket>> = (0..cores).map(|_| listen_tcp(actual)).collect();
            match tcp {
                Ok(tcp) => break (udp, tcp, actual),
                Err(err) if addr.port() == 0 && tries < PORT_ZERO_TRIES => {
                    log::debug!("TCP port {} taken ({err}); trying another", actual.port());
                }
                Err(err) => return Err(with_addr(err, actual)),
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

/// One UDP socket per core on `addr`, and the address they are bound to:
/// a port of 0 is resolved by the first socket and reused by the others.
pub(crate) fn listen_udp_per_core(
    addr: SocketAddr,
    cores: usize,
) -> io::Result<(Vec<Socket>, SocketAddr)> {
    let first = listen_udp(addr).map_err(|err| with_addr(err, addr))?;
    let actual = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listen socket has no IP address"))?;
    let mut sockets = Vec::with_capacity(cores.max(1));
    sockets.push(first);
    for _ in 1..cores {
        sockets.push(listen_udp(actual).map_err(|err| with_addr(err, actual))?);
    }
    Ok((sockets, actual))
}

/// Whether a receive error is only a timeout (nothing to log).
pub(crate) fn is_timeout(err: &glommio::GlommioError<()>) -> bool {
    matches!(err, glommio::GlommioError::TimedOut(_))
        || matches!(err, glommio::GlommioError::IoError(io) if io.kind() == std::io::ErrorKind::TimedOut || io.kind() == std::io::ErrorKind::WouldBlock)
}

fn with_addr(err: io::Error, addr: SocketAddr) -> io::Error {
    io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_is_shared_by_every_core() {
        let (per_core, bound) = listen_udp_per_core("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(per_core.len(), 3);
        assert_ne!(bound.port(), 0);
        for socket in &per_core {
            let local = socket.local_addr().unwrap().as_socket().unwrap();
            assert_eq!(local, bound);
        }
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
        let err = listen_udp_per_core(addr, 1).unwrap_err();
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
