//! Client transports: how queries reach this core and how their replies
//! leave. One module per transport; each hands queries to the resolver
//! through [`crate::context::CoreContext`] and takes the replies to
//! queries that waited on an upstream back through its
//! [`crate::context::ClientReplies`]. None reaches into another; TCP and
//! TLS share the connection machinery of `conn` (both carry DNS messages
//! with a 2-byte length prefix on a byte stream); QUIC (`quic`) drives
//! quinn-proto on the core's own UDP sockets, one query per stream. A new one is one more
//! module here, one more field in [`crate::context::Routes`] and the
//! worker's spawn of its listener.

pub(crate) mod conn;
pub(crate) mod https;
pub(crate) mod pause_judge;
pub(crate) mod quic;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod udp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};

use crate::context::CoreContext;

/// A table of stream connections that decides whether one more may come
/// in, and counts the decision.
pub(crate) trait Admission {
    /// Room for one more, closing the oldest idle connection if needed;
    /// false when every connection is busy.
    fn make_room(&self) -> bool;
    /// Count a connection refused for want of room.
    fn count_refused(&self);
    /// Count a connection accepted.
    fn count_accepted(&self);
}

/// The next connection on `listener` that the core serves: one accepted
/// while not stopping, with room in `clients` (counted either way), its
/// peer known and Nagle off. Shared by the TCP, TLS and HTTPS listeners.
/// The accept is never abandoned half-way: glommio submits it to
/// io_uring, and a cancelled one could lose a connection the kernel
/// already accepted.
pub(crate) async fn admit(
    ctx: &CoreContext,
    listener: &TcpListener,
    what: &str,
    stop: &AtomicBool,
    clients: &impl Admission,
) -> (TcpStream, SocketAddr) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(err) => {
                log::debug!("core {}: {what} accept error: {err}", ctx.index());
                // Out of descriptors or similar: do not spin.
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if stop.load(Ordering::Relaxed) {
            // Shutting down: no new connections.
            continue;
        }
        if !clients.make_room() {
            clients.count_refused();
            continue;
        }
        clients.count_accepted();
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        return (stream, peer);
    }
}
