//! Client transports: how queries reach this core and how their replies
//! leave. One module per transport; each hands queries to the resolver
//! through [`crate::context::CoreContext`] and takes the replies to
//! queries that waited on an upstream back through its
//! [`crate::context::ClientReplies`]. None reaches into another. A new
//! one (TLS, HTTPS) is one more module here, one more field in
//! [`crate::context::Routes`] and the worker's spawn of its listener.

pub(crate) mod tcp;
pub(crate) mod udp;
