//! DNS over UDP to upstreams: each core's pool of upstream sockets (bound
//! to random ephemeral ports, queries rotating over them) and the loop
//! that receives replies on each.

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use glommio::net::UdpSocket;
use heimdall_resolver::UpstreamTransport;
use socket2::Socket;

use crate::batch::{DATAGRAM_BUF, send_to};
use crate::context::{CoreContext, SendFailed, UpstreamSend};
use crate::sockets::is_timeout;

/// How often a blocked upstream receive wakes to check for the end.
const STOP_POLL: Duration = Duration::from_millis(100);

/// One core's upstream UDP sockets.
pub(crate) struct UdpUpstreams {
    /// Each socket's fd and whether it is IPv6.
    fds: Vec<(RawFd, bool)>,
    next: Cell<usize>,
}

impl UdpUpstreams {
    /// The pool of core `index` (which starts the rotation, so the cores
    /// do not all begin on the same port). The sockets stay open in their
    /// receive loops ([`receive_replies`]).
    pub(crate) fn new(index: usize, sockets: &[Socket]) -> Self {
        let fds = sockets
            .iter()
            .map(|socket| {
                let is_v6 = socket
                    .local_addr()
                    .ok()
                    .and_then(|addr| addr.as_socket())
                    .is_some_and(|addr| addr.is_ipv6());
                (socket.as_raw_fd(), is_v6)
            })
            .collect();
        Self {
            fds,
            next: Cell::new(index),
        }
    }

    /// An upstream socket of the right family, rotating through the pool
    /// so queries leave from several random ports.
    fn fd_for(&self, to: SocketAddr) -> Option<RawFd> {
        let count = self.fds.len();
        let start = self.next.get();
        self.next.set(start.wrapping_add(1));
        (0..count)
            .map(|offset| (start + offset) % count)
            .filter_map(|index| self.fds.get(index))
            .find(|(_, is_v6)| *is_v6 == to.is_ipv6())
            .map(|(fd, _)| *fd)
    }
}

impl UpstreamSend for UdpUpstreams {
    fn send(&self, _: &Rc<CoreContext>, to: SocketAddr, query: &[u8]) -> Result<(), SendFailed> {
        match self.fd_for(to).map(|fd| send_to(fd, query, to)) {
            Some(Ok(_)) => Ok(()),
            _ => Err(SendFailed),
        }
    }
}

/// Receive upstream replies on one upstream socket until the core ends.
pub(crate) async fn receive_replies(ctx: Rc<CoreContext>, socket: UdpSocket, done: Rc<Cell<bool>>) {
    let _ = socket.set_read_timeout(Some(STOP_POLL));
    let mut buf = vec![0u8; DATAGRAM_BUF];
    while !done.get() {
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                if let Some(reply) = ctx.checked(&buf, len) {
                    ctx.upstream_reply(from, UpstreamTransport::Udp, reply);
                }
            }
            Err(err) => {
                if !is_timeout(&err) {
                    log::debug!("core {}: upstream receive error: {err}", ctx.index());
                }
            }
        }
    }
}
