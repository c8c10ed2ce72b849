//! DNS over TCP (RFC 7766) to clients: the core's own `SO_REUSEPORT`
//! listeners and their accept loop. Each accepted connection is served
//! by `transport::conn` (framing, pipelining, limits), in a table of
//! [`StreamKind::Tcp`] connections.

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use glommio::net::TcpListener;
use heimdall_resolver::ClientId;

use crate::context::CoreContext;
use crate::transport::admit;
use crate::transport::conn::{StreamClients, StreamKind, client_connection};

/// Accept client connections on one listener until the core ends (the
/// task is dropped with the executor). The accept is never abandoned
/// half-way: glommio submits it to io_uring, and a cancelled one could
/// lose a connection the kernel already accepted.
pub(crate) async fn serve_tcp(
    ctx: Rc<CoreContext>,
    clients: Rc<StreamClients>,
    listener: TcpListener,
    listener_index: u16,
    stop: Arc<AtomicBool>,
) {
    loop {
        let (stream, peer) = admit(&ctx, &listener, "TCP", &stop, &*clients).await;
        let fd = stream.as_raw_fd();
        let client = ClientId {
            addr: peer,
            transport: StreamKind::Tcp.transport(clients.next_id()),
            listener: listener_index,
        };
        glommio::spawn_local(client_connection(
            Rc::clone(&ctx),
            Rc::clone(&clients),
            (stream, fd),
            client,
            Arc::clone(&stop),
        ))
        .detach();
    }
}
