//! The control plane between cores: a second bounded channel mesh, apart
//! from the hint mesh, over which the control core (core 0) asks every
//! core for a health ping, its counters, a cache flush or a new
//! configuration snapshot, and collects the answers.
//!
//! Only core 0 sends requests; every core (core 0 included, directly)
//! executes them on its own thread, between two batches, so no counter or
//! cache is ever touched by another thread. Nothing here runs per query.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::channels::channel_mesh::{Receivers, Senders};
use heimdall_control::{
    CacheSnapshot, CoreSnapshot, HintSnapshot, LatencyHistogram, PolicySnapshot, QtypeCounts,
    RcodeCounts, TransportCounts, UdpSnapshot, UpstreamSnapshot,
};
use heimdall_resolver::ResolverConfig;

use crate::core::CoreState;

/// Capacity of each control channel between two cores: control requests
/// are rare and answered at once, so a few slots suffice.
pub(crate) const CONTROL_CHANNEL_CAPACITY: usize = 16;
/// How often a waiting request checks whether every answer is in.
const ANSWER_POLL: Duration = Duration::from_millis(1);

/// What the control core asks of a core.
#[derive(Debug, Clone)]
pub(crate) enum CoreCommand {
    /// Answer at once (the health probe).
    Ping,
    /// Report counters.
    Snapshot,
    /// Drop every cache entry (`None`), or those at or below a name
    /// (lower-case wire form).
    Flush(Option<Arc<[u8]>>),
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
    /// To [`CoreCommand::Reconfigure`]: entries purged because the new
    /// policy answers them differently, or why it was refused.
    Reconfigured(Result<usize, String>),
}

/// One message on the control mesh.
#[derive(Debug)]
pub(crate) enum ControlMessage {
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

/// One core's end of the control mesh.
pub(crate) struct ControlLink {
    senders: Senders<ControlMessage>,
    next_id: Cell<u64>,
    /// Answers collected per outstanding request id (control core only).
    answers: RefCell<HashMap<u64, Vec<(usize, CoreAnswer)>>>,
}

impl ControlLink {
    /// Wraps the senders of a joined mesh.
    pub(crate) fn new(senders: Senders<ControlMessage>) -> Self {
        Self {
            senders,
            next_id: Cell::new(1),
            answers: RefCell::new(HashMap::new()),
        }
    }

    /// Closes this core's sending side (at shutdown), which ends the
    /// peers' receiving tasks.
    pub(crate) fn close(&self) {
        self.senders.close();
    }
}

/// Receive control messages from every peer until they close: execute
/// requests, and file answers for the control core's waiting requests.
pub(crate) fn spawn_receivers(state: &Rc<CoreState>, mut receivers: Receivers<ControlMessage>) {
    for (_, receiver) in receivers.streams() {
        let state = Rc::clone(state);
        glommio::spawn_local(async move {
            while let Some(message) = receiver.recv().await {
                match message {
                    ControlMessage::Request {
                        id,
                        reply_to,
                        command,
                    } => {
                        let answer = execute(&state, command);
                        if let Some(link) = &state.control {
                            let reply = ControlMessage::Answer {
                                id,
                                core: state.index,
                                answer,
                            };
                            // The control core drains its channels promptly;
                            // a closed one means it is stopping.
                            let _ = link.senders.send_to(reply_to, reply).await;
                        }
                    }
                    ControlMessage::Answer { id, core, answer } => {
                        if let Some(link) = &state.control
                            && let Some(collected) = link.answers.borrow_mut().get_mut(&id)
                        {
                            collected.push((core, answer));
                        }
                        // An answer after its request gave up is dropped.
                    }
                }
            }
        })
        .detach();
    }
}

/// Run `command` on this core.
pub(crate) fn execute(state: &CoreState, command: CoreCommand) -> CoreAnswer {
    match command {
        CoreCommand::Ping => CoreAnswer::Pong,
        CoreCommand::Snapshot => CoreAnswer::Snapshot(Box::new(core_snapshot(state))),
        CoreCommand::Flush(name) => {
            let removed = state.resolver.borrow_mut().flush_cache(name.as_deref());
            CoreAnswer::Flushed(removed)
        }
        CoreCommand::Reconfigure(config) => {
            let now = state.now();
            let result = state
                .resolver
                .borrow_mut()
                .reconfigure(ResolverConfig::clone(&config), now)
                .map(|report| report.purged)
                .map_err(|err| err.to_string());
            CoreAnswer::Reconfigured(result)
        }
    }
}

/// Ask every core (this one directly, the others over the mesh) and wait
/// up to `timeout` for their answers. Returns one slot per core index,
/// `None` for a core that did not answer in time.
pub(crate) async fn ask_all(
    state: &Rc<CoreState>,
    cores: usize,
    command: CoreCommand,
    timeout: Duration,
) -> Vec<Option<CoreAnswer>> {
    let mut results: Vec<Option<CoreAnswer>> = (0..cores).map(|_| None).collect();
    let deadline = Instant::now() + timeout;
    let mut expected = 0usize;
    let mut id = 0u64;
    if let Some(link) = &state.control {
        id = link.next_id.get();
        link.next_id.set(id.wrapping_add(1));
        link.answers.borrow_mut().insert(id, Vec::new());
        let me = link.senders.peer_id();
        for peer in 0..link.senders.nr_consumers() {
            if peer == me {
                continue;
            }
            let request = ControlMessage::Request {
                id,
                reply_to: me,
                command: command.clone(),
            };
            // A full channel means that core is not draining its control
            // messages: it will not answer in time anyway.
            if link.senders.try_send_to(peer, request).is_ok() {
                expected += 1;
            }
        }
    }
    // This core answers directly; then the others' answers are awaited.
    if let Some(slot) = results.get_mut(state.index) {
        *slot = Some(execute(state, command));
    }
    if let Some(link) = &state.control {
        loop {
            let done = link
                .answers
                .borrow()
                .get(&id)
                .is_none_or(|answers| answers.len() >= expected);
            if done || Instant::now() >= deadline {
                break;
            }
            glommio::timer::sleep(ANSWER_POLL).await;
        }
        let answers = link.answers.borrow_mut().remove(&id).unwrap_or_default();
        for (core, answer) in answers {
            if let Some(slot) = results.get_mut(core) {
                *slot = Some(answer);
            }
        }
        // Cores that could not be asked stay `None`, as do late ones.
    }
    results
}

/// This core's counters, in the control endpoint's model.
pub(crate) fn core_snapshot(state: &CoreState) -> CoreSnapshot {
    let resolver = state.resolver.borrow();
    let stats = resolver.stats();
    let cache = resolver.cache().stats();
    let mut qtypes = QtypeCounts::default();
    for (code, count) in stats.qtypes.iter() {
        qtypes.add_code(code, count);
    }
    let mut rcodes = RcodeCounts::default();
    for (slot, &count) in stats.responses_by_rcode.iter().enumerate() {
        // The last slot gathers rcodes of 23 and up: "other" either way.
        rcodes.add_code(slot as u16, count);
    }
    let upstreams = resolver
        .upstreams()
        .iter()
        .map(|upstream| {
            let upstream_stats = upstream.stats();
            let mut latency = LatencyHistogram::default();
            for (bound, count) in upstream_stats.latency.buckets() {
                latency.add_bucket(bound, count);
            }
            latency.add_sum_us(upstream_stats.latency.sum_us());
            UpstreamSnapshot {
                label: upstream.address().to_string(),
                queries: upstream_stats.queries,
                errors: upstream_stats.errors,
                timeouts: upstream_stats.timeouts,
                latency,
            }
        })
        .collect();
    CoreSnapshot {
        core: state.index,
        queries: TransportCounts {
            udp: stats.queries_udp,
            tcp: stats.queries_tcp,
        },
        qtypes,
        rcodes,
        cache: CacheSnapshot {
            hits: stats.cache_hits,
            misses: stats.cache_misses,
            stale_served: stats.stale_served,
            prefetches: stats.prefetches,
            evictions: cache.evictions,
            entries: cache.entries as u64,
            bytes: cache.bytes as u64,
        },
        hints: HintSnapshot {
            sent: state.hints_sent.get(),
            received: stats.hints_in,
            dropped: stats.hints_dropped + state.hints_send_dropped.get(),
        },
        udp: {
            let udp = state.udp.get();
            UdpSnapshot {
                send_errors: state.send_errors.get(),
                gso_sends: udp.gso_sends,
                gso_segments: udp.gso_segments,
                gso_fallbacks: udp.gso_fallbacks,
            }
        },
        policy: PolicySnapshot {
            rate_limited: stats.rate_limited_dropped
                + stats.rate_limited_refused
                + stats.rate_limited_truncated,
            refused: stats.acl_refused + stats.acl_dropped,
            blocked: stats.blocked,
            malformed: stats.dropped_malformed + stats.formerr,
        },
        upstreams,
    }
}
