//! The core mesh: the bounded channels between cores. Two meshes, apart:
//!
//! - the hint mesh ([`HintLink`]), on the query path: cache-fill hints,
//!   sent with try-send (a full channel drops the hint and counts it);
//! - the request mesh ([`CoreMesh`]), off the query path: the control core
//!   (core 0) asks every core for a health ping, its counters, a cache
//!   flush or lookup, or a new configuration snapshot, and collects the
//!   answers.
//!
//! Only core 0 sends requests; every core (core 0 included, directly)
//! executes them on its own thread, between two batches, so no counter or
//! cache is ever touched by another thread. What a request does on a core
//! is the worker's business: this module only carries it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Receivers, Senders};
use heimdall_control::CoreSnapshot;
use heimdall_resolver::{Hint, ResolverConfig};

/// Capacity of each request channel between two cores: requests are rare
/// and answered at once, so a few slots suffice.
pub(crate) const REQUEST_CHANNEL_CAPACITY: usize = 16;
/// How often a waiting request checks whether every answer is in.
const ANSWER_POLL: Duration = Duration::from_millis(1);

/// What the control core asks of a core.
#[derive(Debug, Clone)]
pub(crate) enum CoreCommand {
    /// Answer at once (the health probe).
    Ping,
    /// Report counters.
    Snapshot,
    /// Drop every cache entry (`name: None`), or those at or below a name
    /// (lower-case wire form), or with `qtype` only that name's entries
    /// of that type.
    Flush {
        /// The name, lower-case wire form.
        name: Option<Arc<[u8]>>,
        /// Only this type, at exactly `name`.
        qtype: Option<u16>,
    },
    /// The shard's entries as text (heimdall-cache's `dump_text`).
    Dump,
    /// The sampled question table.
    TopQueries,
    /// Insert the fresh entries of a text dump.
    Load(Arc<str>),
    /// The cached entries for a name (lower-case wire form) and type.
    Lookup {
        /// The name.
        name: Arc<[u8]>,
        /// The type.
        qtype: u16,
    },
    /// Take this configuration (hot reload); the cache stays.
    Reconfigure(Arc<ResolverConfig>),
}

/// A core's answer to one [`CoreCommand`].
#[derive(Debug)]
pub(crate) enum CoreAnswer {
    /// To [`CoreCommand::Ping`].
    Pong,
    /// To [`CoreCommand::Snapshot`].
    Snapshot(Box<CoreSnapshot>),
    /// To [`CoreCommand::Flush`]: entries removed.
    Flushed(usize),
    /// To [`CoreCommand::Lookup`]: the entries found.
    Entries(Vec<heimdall_control::CachedEntry>),
    /// To [`CoreCommand::Dump`]: the text.
    Dumped(String),
    /// To [`CoreCommand::TopQueries`]: wire name, type, estimated queries.
    Top(Vec<(heimdall_wire::WireNameBuf, u16, u64)>),
    /// To [`CoreCommand::Load`]: entries inserted, or why the dump was
    /// refused.
    Loaded(Result<usize, String>),
    /// To [`CoreCommand::Reconfigure`]: entries purged because the new
    /// policy answers them differently, or why it was refused.
    Reconfigured(Result<usize, String>),
}

/// One message on the request mesh.
#[derive(Debug)]
pub(crate) enum MeshMessage {
    /// From the control core to a core.
    Request {
        /// Matches the answer to the request.
        id: u64,
        /// The mesh peer id to answer to.
        reply_to: usize,
        /// What to do.
        command: CoreCommand,
    },
    /// From a core back to the control core.
    Answer {
        /// The request's id.
        id: u64,
        /// The answering core's index.
        core: usize,
        /// The result.
        answer: CoreAnswer,
    },
}

/// One core's sending end of the hint mesh, with its counters.
pub(crate) struct HintLink {
    senders: Senders<Hint>,
    sent: Cell<u64>,
    dropped: Cell<u64>,
}

impl HintLink {
    /// Wraps the senders of a joined hint mesh.
    pub(crate) fn new(senders: Senders<Hint>) -> Self {
        Self {
            senders,
            sent: Cell::new(0),
            dropped: Cell::new(0),
        }
    }

    /// Try-send `hint` to every other core: the last peer gets the hint
    /// itself, the others a copy. A full channel drops it (counted).
    pub(crate) fn send(&self, hint: Hint) {
        let peers = self.senders.nr_consumers();
        let me = self.senders.peer_id();
        let last = (0..peers).rev().find(|&peer| peer != me);
        for peer in (0..peers).filter(|&peer| peer != me && Some(peer) != last) {
            self.send_to(peer, hint.clone());
        }
        if let Some(peer) = last {
            self.send_to(peer, hint);
        }
    }

    fn send_to(&self, peer: usize, hint: Hint) {
        if self.senders.try_send_to(peer, hint).is_err() {
            self.dropped.set(self.dropped.get() + 1);
        } else {
            self.sent.set(self.sent.get() + 1);
        }
    }

    /// Hints sent, and hints dropped because a peer's channel was full.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.sent.get(), self.dropped.get())
    }

    /// Closes this core's sending side (at shutdown), which ends the
    /// peers' receiving tasks.
    pub(crate) fn close(&self) {
        self.senders.close();
    }
}

/// Hand every hint from the other cores to `on_hint`, until they close.
pub(crate) fn spawn_hint_receivers(
    mut receivers: Receivers<Hint>,
    on_hint: impl Fn(Hint) + Clone + 'static,
) {
    for (_, receiver) in receivers.streams() {
        let on_hint = on_hint.clone();
        glommio::spawn_local(async move {
            while let Some(hint) = receiver.recv().await {
                on_hint(hint);
            }
        })
        .detach();
    }
}

/// How a core executes a request on itself.
pub(crate) type Execute = Box<dyn Fn(CoreCommand) -> CoreAnswer>;

/// One core's end of the request mesh.
pub(crate) struct CoreMesh {
    index: usize,
    cores: usize,
    /// `None` on a single core, or when the mesh could not be joined.
    senders: Option<Senders<MeshMessage>>,
    execute: Execute,
    next_id: Cell<u64>,
    /// Answers collected per outstanding request id (control core only).
    answers: RefCell<HashMap<u64, Vec<(usize, CoreAnswer)>>>,
}

impl CoreMesh {
    /// Core `index` of `cores`, executing requests with `execute`.
    pub(crate) fn new(
        index: usize,
        cores: usize,
        senders: Option<Senders<MeshMessage>>,
        execute: Execute,
    ) -> Rc<Self> {
        Rc::new(Self {
            index,
            cores,
            senders,
            execute,
            next_id: Cell::new(1),
            answers: RefCell::new(HashMap::new()),
        })
    }

    /// Closes this core's sending side (at shutdown), which ends the
    /// peers' receiving tasks.
    pub(crate) fn close(&self) {
        if let Some(senders) = &self.senders {
            senders.close();
        }
    }

    /// Receive messages from every peer until they close: execute
    /// requests, and file answers for the control core's waiting requests.
    pub(crate) fn spawn_receivers(self: &Rc<Self>, mut receivers: Receivers<MeshMessage>) {
        for (_, receiver) in receivers.streams() {
            let mesh = Rc::clone(self);
            glommio::spawn_local(async move {
                while let Some(message) = receiver.recv().await {
                    mesh.receive(message).await;
                }
            })
            .detach();
        }
    }

    async fn receive(&self, message: MeshMessage) {
        match message {
            MeshMessage::Request {
                id,
                reply_to,
                command,
            } => {
                let answer = (self.execute)(command);
                if let Some(senders) = &self.senders {
                    let reply = MeshMessage::Answer {
                        id,
                        core: self.index,
                        answer,
                    };
                    // The control core drains its channels promptly; a
                    // closed one means it is stopping.
                    let _ = senders.send_to(reply_to, reply).await;
                }
            }
            MeshMessage::Answer { id, core, answer } => {
                if let Some(collected) = self.answers.borrow_mut().get_mut(&id) {
                    collected.push((core, answer));
                }
                // An answer after its request gave up is dropped.
            }
        }
    }

    /// Ask every core (this one directly, the others over the mesh) and
    /// wait up to `timeout` for their answers. Returns one slot per core
    /// index, `None` for a core that did not answer in time.
    pub(crate) async fn ask_all(
        &self,
        command: CoreCommand,
        timeout: Duration,
    ) -> Vec<Option<CoreAnswer>> {
        let mut results: Vec<Option<CoreAnswer>> = (0..self.cores).map(|_| None).collect();
        let deadline = Instant::now() + timeout;
        let mut expected = 0usize;
        let mut id = 0u64;
        if let Some(senders) = &self.senders {
            id = self.next_id.get();
            self.next_id.set(id.wrapping_add(1));
            self.answers.borrow_mut().insert(id, Vec::new());
            let me = senders.peer_id();
            for peer in 0..senders.nr_consumers() {
                if peer == me {
                    continue;
                }
                let request = MeshMessage::Request {
                    id,
                    reply_to: me,
                    command: command.clone(),
                };
                // A full channel means that core is not draining its
                // requests: it will not answer in time anyway.
                if senders.try_send_to(peer, request).is_ok() {
                    expected += 1;
                }
            }
        }
        // This core answers directly; then the others' answers are awaited.
        if let Some(slot) = results.get_mut(self.index) {
            *slot = Some((self.execute)(command));
        }
        if self.senders.is_some() {
            loop {
                let done = self
                    .answers
                    .borrow()
                    .get(&id)
                    .is_none_or(|answers| answers.len() >= expected);
                if done || Instant::now() >= deadline {
                    break;
                }
                glommio::timer::sleep(ANSWER_POLL).await;
            }
            let answers = self.answers.borrow_mut().remove(&id).unwrap_or_default();
            for (core, answer) in answers {
                if let Some(slot) = results.get_mut(core) {
                    *slot = Some(answer);
                }
            }
            // Cores that could not be asked stay `None`, as do late ones.
        }
        results
    }
}
