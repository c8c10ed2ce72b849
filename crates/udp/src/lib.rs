//! heimdall-udp: batched UDP I/O on raw sockets, shared by the server and
//! the load generator, and the one place in heimdall that holds the
//! `unsafe` system-call wrappers for it.
//!
//! - [`Batch`] is a fixed set of datagram slots with the C tables
//!   `recvmmsg` and `sendmmsg` need: one call drains what is queued, one
//!   call answers a whole batch, and the datagrams that go to one peer with
//!   one length leave as UDP GSO sends where the kernel takes them.
//! - [`gso`] has the GSO limits and the kernel probe.
//! - [`pktinfo`] receives a datagram with the local address it was sent
//!   to and sends one from a given local address (`IP_PKTINFO`), for
//!   sockets bound to a wildcard address.
//! - [`sockaddr`] converts socket addresses to and from their C form.
//! - [`reuseport`] attaches a classic BPF program that picks the socket of
//!   a `SO_REUSEPORT` group for each datagram.
//! - [`send_to`], [`recv_from`] and [`set_no_fragmentation`] are
//!   single-datagram and socket-option helpers; [`wait_readable`] and [`wait_any_readable`]
//!   wait for a blocking thread's sockets (`poll`, `ppoll`).
//! - [`ReadySet`] watches many sockets through one epoll descriptor, for
//!   a runtime that waits on that one and then asks which are ready.
//!
//! What this crate must never do: depend on an async runtime (glommio is
//! the server's business; this crate works on raw descriptors), know what
//! the datagrams mean (no DNS here), or allocate per batch (every buffer
//! and C table is allocated when a [`Batch`] is made or GSO is enabled,
//! and reused; tests prove it with a counting allocator).
//!
//! One system call per batch rather than per datagram is what lets a
//! single thread keep up with a forwarder under load (DESIGN.md,
//! "Measured facts").
#![deny(clippy::undocumented_unsafe_blocks)]

mod batch;
pub mod gso;
pub mod pktinfo;
mod ready_set;
pub mod reuseport;
pub mod sockaddr;
mod socket;
mod wait;

pub use batch::{Batch, UdpStats};
pub use ready_set::{READY_MAX, ReadySet};
pub use socket::{recv_from, send_to, set_no_fragmentation};
pub use wait::{wait_any_readable, wait_readable};
