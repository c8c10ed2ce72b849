//! dnstap on one core (`dnstap:` in the configuration): [`Dnstap`], the
//! core's tap that the query path encodes messages into, and
//! [`run_writer`], the core's task that carries them to the reader's unix
//! socket over Frame Streams.
//!
//! The query path never waits for the reader. Each message is encoded
//! (heimdall-dnstap, from borrowed bytes) straight into the core's bounded
//! [`Outbox`]; one that does not fit is dropped and counted. The writer,
//! woken by the first message of a turn, takes everything pending at once
//! (the outbox swaps buffers with it) and writes it with one `write`. It
//! connects, does the bidirectional handshake (READY, ACCEPT, START), and
//! when the reader goes away counts what the failed write carried as
//! dropped and connects again with backoff (0.1 s doubling to 5 s). At
//! shutdown it writes what is left, then STOP, and waits briefly for
//! FINISH; a write that a stalled reader never takes is given up 1 s
//! after the stop (its frames counted as dropped).
//!
//! With dnstap off the core has no tap: the hooks in `context` and the
//! upstream transports are one `Option` test each.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_lite::io::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::net::UnixStream;
use heimdall_config::DnstapConfig;
use heimdall_control::DnstapSnapshot;
use heimdall_dnstap::fstrm::{self, CONTENT_TYPE, ControlKind, Frame};
use heimdall_dnstap::{Event, MessageType, Origin, Outbox, SocketProtocol, Time};
use heimdall_resolver::{ClientId, Transport};

use crate::stream::until;
use crate::wake::Signal;

/// The first wait before connecting again; it doubles up to
/// [`BACKOFF_MAX`] while connecting fails, and starts over once a
/// connection is made.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between two connection attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a connection and the reader's ACCEPT may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// At shutdown, how long the last frames, STOP and the reader's FINISH
/// may take.
const FINISH_TIMEOUT: Duration = Duration::from_secs(1);
/// The average bytes a message may take in the outbox (the byte bound is
/// `dnstap.buffer_frames` times this).
const BYTES_PER_FRAME: usize = 512;

/// Which messages are logged (`dnstap.log_*`).
#[derive(Debug, Clone, Copy)]
struct Log {
    client_queries: bool,
    client_responses: bool,
    forwarder_queries: bool,
    forwarder_responses: bool,
}

/// What every core's tap is built from, prepared on the starting thread.
#[derive(Debug, Clone)]
pub(crate) struct DnstapSettings {
    socket: PathBuf,
    origin: Origin,
    log: Log,
    buffer_frames: usize,
    /// The bound listen addresses, by listener index: the responder's
    /// address of client messages.
    listen: Vec<SocketAddr>,
}

impl DnstapSettings {
    /// The settings of `config`, or `None` when dnstap is off. `listen`:
    /// the bound DNS addresses in listener order.
    pub(crate) fn new(config: &DnstapConfig, listen: &[SocketAddr]) -> Option<Self> {
        let socket = config.socket.clone().filter(|_| config.enabled)?;
        let identity = match &config.identity {
            Some(identity) => identity.clone(),
            None => host_name(),
        };
        let version = match &config.version {
            Some(version) => version.clone(),
            None => format!("heimdall {}", env!("CARGO_PKG_VERSION")),
        };
        Some(Self {
            socket,
            origin: Origin::new(identity.as_bytes(), version.as_bytes()),
            log: Log {
                client_queries: config.log_client_queries,
                client_responses: config.log_client_responses,
                forwarder_queries: config.log_forwarder_queries,
                forwarder_responses: config.log_forwarder_responses,
            },
            buffer_frames: config.buffer_frames,
            listen: listen.to_vec(),
        })
    }
}

/// The host's name, the default identity: read from the kernel (the
/// value `gethostname` returns, without an unsafe call); empty when it
/// cannot be read. Read once, on the starting thread.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

/// The wall clock as dnstap writes it.
pub(crate) fn wall_clock() -> Time {
    Time::from_unix(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// One core's tap.
pub(crate) struct Dnstap {
    log: Log,
    listen: Vec<SocketAddr>,
    outbox: RefCell<Outbox>,
    /// Raised when a message is added to an empty outbox, and at stop.
    ready: Signal,
    stopping: Cell<bool>,
    sent: Cell<u64>,
}

/// The dnstap protocol of a client transport.
fn client_protocol(client: &ClientId) -> SocketProtocol {
    match client.transport {
        Transport::Udp => SocketProtocol::Udp,
        Transport::Tcp(_) => SocketProtocol::Tcp,
        Transport::Tls(_) => SocketProtocol::Dot,
        Transport::Https(_) => SocketProtocol::Doh,
        Transport::Quic(_) => SocketProtocol::Doq,
    }
}

impl Dnstap {
    /// A core's tap, and the socket its writer connects to.
    pub(crate) fn new(settings: &DnstapSettings) -> (Rc<Self>, PathBuf) {
        let tap = Self {
            log: settings.log,
            listen: settings.listen.clone(),
            outbox: RefCell::new(Outbox::new(
                settings.origin.clone(),
                settings.buffer_frames,
                settings.buffer_frames.saturating_mul(BYTES_PER_FRAME),
            )),
            ready: Signal::default(),
            stopping: Cell::new(false),
            sent: Cell::new(0),
        };
        (Rc::new(tap), settings.socket.clone())
    }

    fn push(&self, event: &Event<'_>) {
        let mut outbox = self.outbox.borrow_mut();
        let was_empty = outbox.is_empty();
        if outbox.push(event) && was_empty {
            self.ready.raise();
        }
    }

    /// Whether client queries are logged (so the caller reads the clock
    /// only when something will use it).
    pub(crate) fn logs_clients(&self) -> bool {
        self.log.client_queries || self.log.client_responses
    }

    /// Whether forwarded queries or their replies are logged.
    pub(crate) fn logs_forwarding(&self) -> bool {
        self.log.forwarder_queries || self.log.forwarder_responses
    }

    /// A client's query, received at `time` (CLIENT_QUERY).
    pub(crate) fn client_query(&self, client: &ClientId, query: &[u8], time: Time) {
        if !self.log.client_queries {
            return;
        }
        self.push(&Event {
            kind: MessageType::ClientQuery,
            protocol: client_protocol(client),
            query_address: Some(client.addr),
            response_address: self.listen.get(usize::from(client.listener)).copied(),
            query_time: Some(time),
            response_time: None,
            query_message: Some(query),
            response_message: None,
        });
    }

    /// The response to a client, sent at `time` (now when `None`);
    /// `query_time` when the query was received, if known
    /// (CLIENT_RESPONSE).
    pub(crate) fn client_response(
        &self,
        client: &ClientId,
        response: &[u8],
        query_time: Option<Time>,
        time: Option<Time>,
    ) {
        if !self.log.client_responses {
            return;
        }
        let time = time.unwrap_or_else(wall_clock);
        self.push(&Event {
            kind: MessageType::ClientResponse,
            protocol: client_protocol(client),
            query_address: Some(client.addr),
            response_address: self.listen.get(usize::from(client.listener)).copied(),
            query_time,
            response_time: Some(time),
            query_message: None,
            response_message: Some(response),
        });
    }

    /// A query sent to `upstream` from `local` (FORWARDER_QUERY).
    pub(crate) fn forwarder_query(
        &self,
        protocol: SocketProtocol,
        local: Option<SocketAddr>,
        upstream: SocketAddr,
        query: &[u8],
    ) {
        if !self.log.forwarder_queries {
            return;
        }
        self.push(&Event {
            kind: MessageType::ForwarderQuery,
            protocol,
            query_address: local,
            response_address: Some(upstream),
            query_time: Some(wall_clock()),
            response_time: None,
            query_message: Some(query),
            response_message: None,
        });
    }

    /// A reply received from `upstream` on `local` (FORWARDER_RESPONSE),
    /// before the reply check judges it.
    pub(crate) fn forwarder_response(
        &self,
        protocol: SocketProtocol,
        local: Option<SocketAddr>,
        upstream: SocketAddr,
        reply: &[u8],
    ) {
        if !self.log.forwarder_responses {
            return;
        }
        self.push(&Event {
            kind: MessageType::ForwarderResponse,
            protocol,
            query_address: local,
            response_address: Some(upstream),
            query_time: None,
            response_time: Some(wall_clock()),
            query_message: None,
            response_message: Some(reply),
        });
    }

    /// The counters, in the control endpoint's model.
    pub(crate) fn counts(&self) -> DnstapSnapshot {
        DnstapSnapshot {
            sent: self.sent.get(),
            dropped: self.outbox.borrow().dropped(),
        }
    }

    /// Messages waiting for the writer.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> usize {
        self.outbox.borrow().len()
    }

    /// Count what the writer never took as dropped (it has ended), so that
    /// every message is either sent or dropped.
    pub(crate) fn abandon_pending(&self) {
        let mut outbox = self.outbox.borrow_mut();
        let pending = outbox.len();
        outbox.count_lost(pending);
        let mut discard = Vec::new();
        outbox.take(&mut discard);
    }

    /// Ask the writer to write what is left, send STOP and end.
    pub(crate) fn stop(&self) {
        self.stopping.set(true);
        self.ready.raise();
    }
}

/// How a connection ended.
enum Ended {
    /// The core is stopping: what was pending went out, then STOP.
    Stopped,
    /// The reader went away (or broke the protocol).
    Lost(io::Error),
}

/// The core's writer: connect, hand frames over, reconnect with backoff,
/// until [`Dnstap::stop`]. Returns when the stream is finished (or the
/// core stops while there is no connection).
pub(crate) async fn run_writer(tap: Rc<Dnstap>, path: PathBuf, core: usize) {
    let mut backoff = BACKOFF_MIN;
    let mut spare = Vec::new();
    // Said once per outage, not once per attempt.
    let mut warned = false;
    loop {
        if tap.stopping.get() {
            return;
        }
        match until(Instant::now() + HANDSHAKE_TIMEOUT, connect(&path)).await {
            Some(Ok(mut stream)) => {
                log::info!("core {core}: dnstap connected to {}", path.display());
                warned = false;
                backoff = BACKOFF_MIN;
                match write_frames(&tap, &mut stream, &mut spare).await {
                    Ended::Stopped => {
                        finish(&mut stream).await;
                        return;
                    }
                    Ended::Lost(err) => {
                        log::warn!(
                            "core {core}: dnstap reader at {} went away ({err}); messages are \
                             dropped (counted) until it is back",
                            path.display()
                        );
                    }
                }
            }
            failed => {
                if !warned {
                    let why = match failed {
                        Some(Err(err)) => err.to_string(),
                        _ => "timed out".to_string(),
                    };
                    log::warn!(
                        "core {core}: no dnstap reader at {} ({why}); trying again; messages \
                         wait in the core's buffer meanwhile, and are dropped (counted) when it \
                         is full",
                        path.display()
                    );
                    warned = true;
                }
            }
        }
        // Wait out the backoff, or until stop.
        let stop = async {
            while !tap.stopping.get() {
                tap.ready.wait().await;
            }
        };
        futures_lite::future::or(glommio::timer::sleep(backoff), stop).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Connect and do the bidirectional handshake: READY, the reader's
/// ACCEPT of our content type, START.
async fn connect(path: &Path) -> io::Result<UnixStream> {
    let mut stream = UnixStream::connect(path).await?;
    let mut out = Vec::with_capacity(64);
    fstrm::put_control(ControlKind::Ready, Some(CONTENT_TYPE), &mut out);
    stream.write_all(&out).await?;
    let mut buf = [0u8; 8 + fstrm::CONTROL_MAX];
    let mut have = 0;
    loop {
        let Some(free) = buf.get_mut(have..) else {
            return Err(protocol_error("control frame too long"));
        };
        let read = stream.read(free).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        have += read;
        let received = buf.get(..have).unwrap_or_default();
        match fstrm::next_frame(received, 0) {
            Ok(None) => continue,
            Ok(Some((Frame::Control(control), _))) if control.kind == ControlKind::Accept => {
                if !control.has_content_type(CONTENT_TYPE) {
                    return Err(protocol_error(
                        "the reader does not accept protobuf:dnstap.Dnstap",
                    ));
                }
                break;
            }
            Ok(Some(_)) => return Err(protocol_error("expected ACCEPT")),
            Err(err) => return Err(protocol_error(&err.to_string())),
        }
    }
    out.clear();
    fstrm::put_control(ControlKind::Start, Some(CONTENT_TYPE), &mut out);
    stream.write_all(&out).await?;
    Ok(stream)
}

fn protocol_error(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("Frame Streams: {what}"))
}

/// Write what the outbox gathers, as it comes, until stop or failure.
async fn write_frames(tap: &Dnstap, stream: &mut UnixStream, spare: &mut Vec<u8>) -> Ended {
    loop {
        if tap.outbox.borrow().is_empty() {
            if tap.stopping.get() {
                return Ended::Stopped;
            }
            tap.ready.wait().await;
            continue;
        }
        let frames = tap.outbox.borrow_mut().take(spare);
        let written = write_until_stop(tap, stream, spare).await;
        match written {
            Ok(()) => tap.sent.set(tap.sent.get() + frames as u64),
            Err(err) => {
                tap.outbox.borrow_mut().count_lost(frames);
                return Ended::Lost(err);
            }
        }
    }
}

/// Write `bytes`, for as long as it takes while the core runs; once it
/// stops (before or during the write), for at most [`FINISH_TIMEOUT`]
/// more, so that a reader that stopped reading cannot hold up the end.
async fn write_until_stop(tap: &Dnstap, stream: &mut UnixStream, bytes: &[u8]) -> io::Result<()> {
    let mut write = std::pin::pin!(stream.write_all(bytes));
    let stopped = async {
        while !tap.stopping.get() {
            // A message pushed meanwhile raises this too: the caller's
            // loop finds it in the outbox after the write.
            tap.ready.wait().await;
        }
        None
    };
    let first = futures_lite::future::or(async { Some(write.as_mut().await) }, stopped).await;
    match first {
        Some(result) => result,
        None => until(Instant::now() + FINISH_TIMEOUT, write)
            .await
            .unwrap_or_else(|| Err(io::ErrorKind::TimedOut.into())),
    }
}

/// Send STOP and wait (bounded) for the reader's FINISH.
async fn finish(stream: &mut UnixStream) {
    let mut out = Vec::with_capacity(12);
    fstrm::put_control(ControlKind::Stop, None, &mut out);
    let deadline = Instant::now() + FINISH_TIMEOUT;
    if !matches!(until(deadline, stream.write_all(&out)).await, Some(Ok(()))) {
        return;
    }
    let mut buf = [0u8; 64];
    let mut have = 0;
    while let Some(free) = buf.get_mut(have..) {
        match until(deadline, stream.read(free)).await {
            Some(Ok(read)) if read > 0 => have += read,
            _ => return,
        }
        match fstrm::next_frame(buf.get(..have).unwrap_or_default(), 0) {
            Ok(None) => continue,
            _ => return,
        }
    }
}
