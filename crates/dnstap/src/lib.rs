//! heimdall-dnstap: dnstap (<https://dnstap.info>) for heimdall, sans I/O.
//!
//! - [`proto`]: the dnstap protobuf schema as prost messages, mirroring
//!   `dnstap.proto` (kept beside the crate; a test checks the numbers).
//! - [`encode`]: a borrowed [`Event`] and the sender's [`Origin`] in, the
//!   `Dnstap` message's bytes appended to a caller-owned buffer out; the
//!   same bytes prost writes, without copying the DNS messages into owned
//!   structs first.
//! - [`fstrm`]: Frame Streams framing and the control frames of the
//!   bidirectional handshake (READY, ACCEPT, START, STOP, FINISH).
//! - [`outbox`]: [`Outbox`], the bounded buffer of encoded frames a writer
//!   takes whole; a frame that does not fit is dropped and counted.
//!
//! Nothing here reads a clock or touches a socket: times are
//! [`encode::Time`] values the caller reads, and the server (heimdall-server)
//! owns the connection to the reader.

pub mod encode;
pub mod fstrm;
pub mod outbox;
pub mod proto;

pub use encode::{Event, Origin, Time};
pub use outbox::Outbox;
pub use proto::{MessageType, SocketProtocol};
