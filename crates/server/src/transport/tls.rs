//! DNS over TLS (RFC 7858) to clients: the core's own `SO_REUSEPORT`
//! listeners on `tls.listen`, their accept loop, and the TLS handshake.
//! Once the handshake is done, the connection is served exactly like a
//! TCP one (`transport::conn`: framing, pipelining, limits, the same
//! cache and policy), in a table of [`StreamKind::Tls`] connections
//! whose replies carry EDNS padding.
//!
//! The handshake must end within `tcp.read_timeout` of the accept: a
//! client that sends nothing, sends garbage instead of a ClientHello, or
//! stalls half-way, is closed and counted as a failed handshake. While it
//! lasts, the connection holds a place under `tcp.max_connections`.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use glommio::net::{TcpListener, TcpStream};
use heimdall_resolver::ClientId;
use rustls::ServerConfig;

use crate::context::CoreContext;
use crate::tls::accept;
use crate::transport::admit;
use crate::transport::conn::{StreamClients, StreamKind, client_connection};

/// Accept DNS-over-TLS connections on one listener until the core ends.
pub(crate) async fn serve_tls(
    ctx: Rc<CoreContext>,
    clients: Rc<StreamClients>,
    listener: TcpListener,
    listener_index: u16,
    config: Arc<ServerConfig>,
    stop: Arc<AtomicBool>,
) {
    loop {
        let (stream, peer) = admit(&ctx, &listener, "TLS", &stop, &*clients).await;
        let client = ClientId {
            addr: peer,
            transport: StreamKind::Tls.transport(clients.next_id()),
            listener: listener_index,
        };
        clients.handshake_began();
        glommio::spawn_local(connection(
            Rc::clone(&ctx),
            Rc::clone(&clients),
            stream,
            client,
            Arc::clone(&config),
            Arc::clone(&stop),
        ))
        .detach();
    }
}

/// One connection: the handshake, bounded by `tcp.read_timeout`, then
/// DNS messages as over TCP.
async fn connection(
    ctx: Rc<CoreContext>,
    clients: Rc<StreamClients>,
    stream: TcpStream,
    client: ClientId,
    config: Arc<ServerConfig>,
    stop: Arc<AtomicBool>,
) {
    let fd = stream.as_raw_fd();
    // A failed handshake drops (and so closes) the stream.
    let Some(tls) = accept(stream, config, clients.settings().read_timeout).await else {
        clients.handshake_ended(None);
        log::debug!(
            "core {}: TLS handshake with {} failed",
            ctx.index(),
            client.addr
        );
        return;
    };
    clients.handshake_ended(Some(tls.resumed()));
    client_connection(ctx, clients, (tls, fd), client, stop).await;
}
