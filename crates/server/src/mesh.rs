//! What cores send each other. Two paths, apart:
//!
//! - the hint inboxes ([`HintInboxes`], [`HintLink`]), on the query path:
//!   cache-fill hints (with `server.steering: flow`), one bounded lock-free
//!   queue per core that every other core pushes into (a full inbox drops
//!   the hint and counts it), taken by its core before each batch. Memory
//!   is cores x `hints.channel_capacity` hints, linear in the cores (a full
//!   mesh of channels was cores squared);
//! - the request star ([`CoreMesh`]), off the query path: the control core
//!   (core 0) asks every core for a health ping, its counters, a cache
//!   flush or lookup, a new configuration snapshot or session-ticket key
//!   set, and collects the
//!   answers. Two partial meshes make the star: core 0 to every core
//!   (requests) and every core to core 0 (answers), 2 x (cores - 1)
//!   channels where a full mesh had cores squared (at 64 cores its setup
//!   took 20 s on 2 CPUs).
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

use crossbeam_queue::ArrayQueue;
use glommio::channels::channel_mesh::{MeshBuilder, Partial, Receivers, Role, Senders};
use heimdall_control::CoreSnapshot;
use heimdall_resolver::{Hint, ResolverConfig};

/// Capacity of each request channel between two cores: requests are rare
/// and answered at once, so a few slots suffice.
const REQUEST_CHANNEL_CAPACITY: usize = 16;
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
    /// Seal and open session tickets with this key set from now on (a
    /// rotation, or a new certificate).
    TicketKeys(Arc<crate::tickets::TicketKeys>),
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
    /// To [`CoreCommand::TicketKeys`]: the generation the core now uses.
    TicketKeysTaken(u64),
}

/// One message on the request mesh.
#[derive(Debug)]
pub(crate) enum MeshMessage {
    /// From the control core to a core.
    Request {
        /// Matches the answer to the request.
        id: u64,
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

/// One inbox of hints per core, shared by all cores.
///
/// Why queues a core polls and not channels that wake it: a hint is only an
/// offer of a cache entry. A core takes its inbox before each batch (one
/// atomic load when it is empty), so a hint is stored before the queries
/// that could use it are looked up; an idle core has nothing to look up
/// and leaves its hints waiting, costing no wake-up.
pub(crate) struct HintInboxes {
    inboxes: Box<[ArrayQueue<Hint>]>,
}

impl HintInboxes {
    /// `cores` inboxes of `capacity` hints each.
    pub(crate) fn new(cores: usize, capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            inboxes: (0..cores)
                .map(|_| ArrayQueue::new(capacity.max(1)))
                .collect(),
        })
    }

    /// How many cores have an inbox.
    fn cores(&self) -> usize {
        self.inboxes.len()
    }

    /// Bytes the inboxes hold at most (their slots are allocated up front).
    pub(crate) fn footprint(cores: usize, capacity: usize) -> usize {
        cores * capacity.max(1) * (std::mem::size_of::<Hint>() + std::mem::size_of::<usize>())
    }
}

/// One core's ends of the hint inboxes, with its counters.
pub(crate) struct HintLink {
    inboxes: Arc<HintInboxes>,
    me: usize,
    sent: Cell<u64>,
    dropped: Cell<u64>,
}

impl HintLink {
    /// Core `me`'s link to `inboxes`.
    pub(crate) fn new(inboxes: Arc<HintInboxes>, me: usize) -> Self {
        Self {
            inboxes,
            me,
            sent: Cell::new(0),
            dropped: Cell::new(0),
        }
    }

    /// Push `hint` into every other core's inbox: the last peer gets the
    /// hint itself, the others a copy (the entry's one allocation copied:
    /// each core owns the bytes it stores). A full inbox drops it
    /// (counted).
    pub(crate) fn send(&self, hint: Hint) {
        let cores = self.inboxes.cores();
        let last = (0..cores).rev().find(|&peer| peer != self.me);
        for peer in (0..cores).filter(|&peer| peer != self.me && Some(peer) != last) {
            self.send_to(peer, hint.clone());
        }
        if let Some(peer) = last {
            self.send_to(peer, hint);
        }
    }

    fn send_to(&self, peer: usize, hint: Hint) {
        let pushed = self
            .inboxes
            .inboxes
            .get(peer)
            .is_some_and(|inbox| inbox.push(hint).is_ok());
        if pushed {
            self.sent.set(self.sent.get() + 1);
        } else {
            self.dropped.set(self.dropped.get() + 1);
        }
    }

    /// Hand every hint waiting in this core's inbox to `on_hint`.
    pub(crate) fn take(&self, mut on_hint: impl FnMut(Hint)) {
        if let Some(inbox) = self.inboxes.inboxes.get(self.me) {
            while let Some(hint) = inbox.pop() {
                on_hint(hint);
            }
        }
    }

    /// Hints sent, and hints dropped because a peer's inbox was full.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.sent.get(), self.dropped.get())
    }
}

/// How a core executes a request on itself.
pub(crate) type Execute = Box<dyn Fn(CoreCommand) -> CoreAnswer>;

/// The two halves of the request star, before the cores join them.
#[derive(Clone)]
pub(crate) struct RequestStar {
    /// Core 0 to every other core.
    requests: MeshBuilder<MeshMessage, Partial>,
    /// Every other core to core 0.
    answers: MeshBuilder<MeshMessage, Partial>,
}

impl RequestStar {
    /// The star for `cores` cores (more than one).
    pub(crate) fn new(cores: usize) -> Self {
        Self {
            requests: MeshBuilder::partial(cores, REQUEST_CHANNEL_CAPACITY),
            answers: MeshBuilder::partial(cores, REQUEST_CHANNEL_CAPACITY),
        }
    }

    /// Join as core `index`: core 0 sends requests and receives answers,
    /// the others the reverse. `None` (logged) if a mesh cannot be joined.
    pub(crate) async fn join(
        self,
        index: usize,
    ) -> Option<(Senders<MeshMessage>, Receivers<MeshMessage>)> {
        let control = index == 0;
        let (requests, answers) = if control {
            (Role::Producer, Role::Consumer)
        } else {
            (Role::Consumer, Role::Producer)
        };
        let joined = (
            self.requests.join(requests).await,
            self.answers.join(answers).await,
        );
        match joined {
            (Ok((to_cores, from_control)), Ok((to_control, from_cores))) => Some(if control {
                (to_cores, from_cores)
            } else {
                (to_control, from_control)
            }),
            _ => {
                log::warn!("core {index}: could not join the control star");
                None
            }
        }
    }
}

/// One core's end of the request star: on core 0 the senders to every
/// other core, elsewhere the sender to core 0.
pub(crate) struct CoreMesh {
    index: usize,
    cores: usize,
    /// `None` on a single core, or when the star could not be joined.
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
            MeshMessage::Request { id, command } => {
                let answer = (self.execute)(command);
                if let Some(senders) = &self.senders {
                    let reply = MeshMessage::Answer {
                        id,
                        core: self.index,
                        answer,
                    };
                    // Core 0 is this core's one consumer; it drains its
                    // channels promptly, and a closed one means it is
                    // stopping.
                    let _ = senders.send_to(0, reply).await;
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
            for peer in 0..senders.nr_consumers() {
                let request = MeshMessage::Request {
                    id,
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

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_cache::{CachePolicy, Entry, Timestamp};
    use heimdall_wire::{Message, QueryKey, Rcode, RecordType};

    /// A hint: a cached SERVFAIL for `n.example`.
    fn hint(n: u8) -> Hint {
        let name = format!("h{n}.example");
        let query = heimdall_testkit::messages::query(&name, RecordType::A, 1, None);
        let key = QueryKey::from_message(&Message::parse(&query).unwrap()).unwrap();
        let mut qname = Vec::new();
        for label in name.split('.') {
            qname.push(label.len() as u8);
            qname.extend_from_slice(label.as_bytes());
        }
        qname.push(0);
        let entry = Entry::failure(
            &key,
            &qname,
            Rcode::SERVFAIL,
            Timestamp::from_millis(0),
            &CachePolicy::default(),
        )
        .unwrap();
        Hint { key, entry }
    }

    #[test]
    fn a_hint_reaches_every_other_core_and_a_full_inbox_drops() {
        let inboxes = HintInboxes::new(3, 2);
        let links: Vec<HintLink> = (0..3)
            .map(|me| HintLink::new(Arc::clone(&inboxes), me))
            .collect();
        links[0].send(hint(1));
        links[0].send(hint(2));
        links[0].send(hint(3));
        assert_eq!(
            links[0].counts(),
            (4, 2),
            "2 peers x 2 slots; the third hint dropped twice"
        );
        for (me, link) in links.iter().enumerate() {
            let mut got = 0;
            link.take(|_| got += 1);
            assert_eq!(got, if me == 0 { 0 } else { 2 }, "core {me}");
        }
    }

    #[test]
    fn the_inboxes_grow_linearly_with_the_cores() {
        let at = |cores| HintInboxes::footprint(cores, 1024);
        assert_eq!(at(128), 2 * at(64));
        assert!(at(128) < 64 << 20, "{} bytes at 128 cores", at(128));
    }
}
