//! Upstream transports: how this core's queries reach the upstreams and
//! how their replies come back. One module per transport; each sends the
//! queries the resolver addresses to it (through
//! [`crate::context::UpstreamSend`], chosen in one place by the
//! resolver's `Transmit`) and hands every reply to
//! [`crate::context::CoreContext::upstream_reply`], which matches and
//! judges it. TLS connections are TCP ones with a handshake first: the
//! connection code is `tcp`'s, the TLS part `tls`'s; `https` is HTTP/2
//! over TLS. A new one is one more module here and one more arm in
//! `CoreContext::send_upstream`.

pub(crate) mod https;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod udp;
