//! Client transports: how queries reach this core and how their replies
//! leave. One module per transport; each hands queries to the resolver
//! through [`crate::context::CoreContext`] and takes the replies to
//! queries that waited on an upstream back through its
//! [`crate::context::ClientReplies`]. None reaches into another; TCP and
//! TLS share the connection machinery of `conn` (both carry DNS messages
//! with a 2-byte length prefix on a byte stream). A new one is one more
//! module here, one more field in [`crate::context::Routes`] and the
//! worker's spawn of its listener.

pub(crate) mod conn;
pub(crate) mod https;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod udp;
