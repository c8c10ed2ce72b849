//! [`CoreContext`]: the narrow per-core interface between the transports
//! and the resolver. A client transport hands a query in
//! ([`CoreContext::queries`], [`CoreContext::answer`]); an upstream
//! transport hands a reply in ([`CoreContext::upstream_reply`]); then
//! [`CoreContext::drain`] sends what the resolver produced: each upstream
//! query to the upstream transport its [`Transmit`] names (dispatched in
//! one place, [`CoreContext::send_upstream`]), each late reply back to the
//! client transport its query came from, and each hint to the other cores.
//!
//! The transports sit above this module and reach it only through these
//! methods; it reaches them only through the [`ClientReplies`] and
//! [`UpstreamSend`] traits, so module dependencies flow one way. A new
//! transport (TLS, HTTPS) is one more implementation and one more arm.
//!
//! [`Transmit`]: heimdall_resolver::Transmit

use std::cell::{Cell, RefCell, RefMut};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use heimdall_cache::{Entry, EntryView, Timestamp};
use heimdall_control::{CachedEntry, CoreSnapshot, UpstreamSocketSnapshot};
use heimdall_resolver::{
    AttemptId, ClientId, QueryOutcome, ReplySource, Resolver, ResolverConfig, Transmit, Transport,
    UpstreamTransport,
};

use crate::batch::UdpStats;
use crate::dnstap::{Dnstap, wall_clock};
use crate::hot_names::{HotNames, SpreadSet};
use crate::mesh::HintLink;
use crate::reload;
use crate::stats::{
    CoreReport, Counters, DohErrors, DoqStats, HitLatency, TcpStats, TlsStats, UpstreamTlsStats,
    core_snapshot,
};
use crate::top::TopQueries;
use crate::transport::pause_judge::{PauseJudge, thread_cpu_time};
use crate::wake::DeadlineAlarm;

/// The kernel refused a send (full buffers): counted in `send_errors`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendFailed;

/// A client transport's way back to its clients, for the replies to
/// queries that waited on an upstream (or joined one that did).
pub(crate) trait ClientReplies {
    /// Send `reply` to `client`. A transport that drops a reply for its
    /// own reasons (the connection is gone) counts that itself and
    /// returns `Ok`.
    fn reply(&self, client: &ClientId, reply: &[u8]) -> Result<(), SendFailed>;

    /// A stream transport's counters and open connections, for the
    /// metrics while the core runs.
    fn tcp_stats(&self) -> Option<(TcpStats, usize)> {
        None
    }

    /// An encrypted transport's counters and open connections.
    fn tls_stats(&self) -> Option<(TlsStats, usize)> {
        None
    }

    /// DNS over HTTPS: the requests refused with an HTTP error.
    fn doh_errors(&self) -> Option<DohErrors> {
        None
    }

    /// DNS over QUIC: its counters and open connections.
    fn doq_stats(&self) -> Option<(DoqStats, usize)> {
        None
    }
}

/// An upstream transport: sends the queries the resolver addresses to it.
/// Replies come back through [`CoreContext::upstream_reply`].
pub(crate) trait UpstreamSend {
    /// Send `query` to upstream `to`. A failure the transport counts
    /// itself returns `Ok`; the resolver's deadline retries either way.
    fn send(
        &self,
        ctx: &Rc<CoreContext>,
        attempt: AttemptId,
        to: SocketAddr,
        query: &[u8],
    ) -> Result<(), SendFailed>;

    /// The resolver accepts no more replies to `attempt`: close what it
    /// alone used (its UDP socket). Every attempt is retired once, on
    /// every transport; one the transport does not know is ignored. An
    /// `Err` is a send the retirement set off (a waiting attempt) that
    /// failed.
    fn retire(&self, _ctx: &Rc<CoreContext>, _attempt: AttemptId) -> Result<(), SendFailed> {
        Ok(())
    }

    /// The transport's socket counters, if it keeps sockets per attempt.
    fn socket_stats(&self) -> Option<UpstreamSocketSnapshot> {
        None
    }

    /// A stream transport's counters, for the metrics while the core runs.
    fn tcp_stats(&self) -> Option<TcpStats> {
        None
    }

    /// A TLS transport's counters.
    fn upstream_tls_stats(&self) -> Option<UpstreamTlsStats> {
        None
    }
}

/// Where the resolver's output goes, one field per transport.
pub(crate) struct Routes {
    /// Replies to UDP clients.
    pub(crate) udp_clients: Rc<dyn ClientReplies>,
    /// Replies to TCP clients.
    pub(crate) tcp_clients: Rc<dyn ClientReplies>,
    /// Replies to DNS-over-TLS clients.
    pub(crate) tls_clients: Rc<dyn ClientReplies>,
    /// Replies to DNS-over-HTTPS requests.
    pub(crate) https_clients: Rc<dyn ClientReplies>,
    /// Replies to DNS-over-QUIC streams.
    pub(crate) quic_clients: Rc<dyn ClientReplies>,
    /// Queries to UDP upstreams.
    pub(crate) udp_upstreams: Rc<dyn UpstreamSend>,
    /// Queries to TCP upstreams.
    pub(crate) tcp_upstreams: Rc<dyn UpstreamSend>,
    /// Queries to TLS upstreams.
    pub(crate) tls_upstreams: Rc<dyn UpstreamSend>,
    /// Queries to HTTPS upstreams.
    pub(crate) https_upstreams: Rc<dyn UpstreamSend>,
    /// Hints to the other cores (`None`: hints are off).
    pub(crate) hints: Option<HintLink>,
}

/// One core's resolver and what it needs to answer: shared, as an
/// `Rc`, by every task of the core.
pub(crate) struct CoreContext {
    index: usize,
    resolver: RefCell<Resolver>,
    /// The core's 64 KiB message buffer (upstream queries, replies to
    /// waiting or TCP clients): used only between awaits, never held
    /// across one.
    scratch: RefCell<Vec<u8>>,
    routes: Routes,
    epoch: Instant,
    send_errors: Cell<u64>,
    bad_lengths: Cell<u64>,
    receive_rearms: Cell<u64>,
    udp: Cell<UdpStats>,
    /// Whether the UDP listeners' coalescing pause pays on this core.
    pause_judge: RefCell<PauseJudge>,
    /// How long queries answered at once took, UDP and TCP (the resolver
    /// times the ones that wait on an upstream).
    hits: RefCell<HitLatency>,
    /// Wakes the timer loop when a deadline comes before the one it
    /// sleeps for.
    alarm: DeadlineAlarm,
    /// The core's dnstap tap (`None`: dnstap is off).
    dnstap: Option<Rc<Dnstap>>,
    /// Sampled client questions (`heimdall ctl top-queries`).
    top: TopQueries,
    /// The watch for names hot enough to spread over every core (name
    /// steering on more than one core).
    hot: Option<HotNames>,
    /// Which core owns a name (name steering on more than one core).
    owners: Option<Arc<SpreadSet>>,
    /// Misses of stream queries for names another core owns: each fetch
    /// stores a duplicate of an answer the owner may hold.
    off_owner_fetches: Cell<u64>,
    /// The core's session-ticket ticketer (tickets on).
    ticketer: Option<Arc<crate::tickets::CoreTicketer>>,
}

/// The resolver borrowed for a batch of queries: one borrow per batch,
/// not per query.
pub(crate) struct Queries<'a> {
    resolver: RefMut<'a, Resolver>,
    /// The tap, when it logs client messages, and the batch's wall-clock
    /// time (read once per batch, and only then).
    tap: Option<(&'a Dnstap, heimdall_dnstap::Time)>,
    top: &'a TopQueries,
    hot: Option<&'a HotNames>,
}

impl Queries<'_> {
    /// Answer `query` from `client` into `out` (see
    /// [`Resolver::handle_query`]).
    pub(crate) fn handle(
        &mut self,
        query: &[u8],
        client: &ClientId,
        now: Timestamp,
        out: &mut [u8],
    ) -> QueryOutcome {
        sample(self.top, self.hot, query);
        let outcome = self.resolver.handle_query(query, client, now, out);
        if let Some((tap, time)) = self.tap {
            tap_client(tap, client, query, &outcome, out, time);
        }
        outcome
    }
}

/// Count `query` in the top-queries table when its turn comes, and then
/// in the hot-name watch too.
fn sample(top: &TopQueries, hot: Option<&HotNames>, query: &[u8]) {
    if top.sample(query)
        && let Some(hot) = hot
    {
        hot.sampled(query);
    }
}

/// Log a client's query, and its answer when there is one at once.
fn tap_client(
    tap: &Dnstap,
    client: &ClientId,
    query: &[u8],
    outcome: &QueryOutcome,
    out: &[u8],
    time: heimdall_dnstap::Time,
) {
    tap.client_query(client, query, time);
    if let QueryOutcome::Reply(len) = *outcome
        && let Some(reply) = out.get(..len)
    {
        tap.client_response(client, reply, Some(time), Some(time));
    }
}

/// What became of a query handed in with [`CoreContext::answer`].
pub(crate) enum Answered<T> {
    /// Answered at once: what the caller's `reply` returned.
    Now(T),
    /// Waits on an upstream: the reply comes through [`ClientReplies`].
    Pending,
    /// No reply will come.
    Dropped,
}

impl CoreContext {
    /// Core `index`'s context, its clock starting at `epoch`.
    pub(crate) fn new(index: usize, resolver: Resolver, routes: Routes, epoch: Instant) -> Self {
        Self {
            index,
            resolver: RefCell::new(resolver),
            scratch: RefCell::new(vec![0u8; usize::from(u16::MAX)]),
            routes,
            epoch,
            send_errors: Cell::new(0),
            bad_lengths: Cell::new(0),
            receive_rearms: Cell::new(0),
            udp: Cell::new(UdpStats::default()),
            pause_judge: RefCell::new(PauseJudge::new(false)),
            hits: RefCell::new(HitLatency::default()),
            alarm: DeadlineAlarm::default(),
            dnstap: None,
            top: TopQueries::new(),
            hot: None,
            owners: None,
            off_owner_fetches: Cell::new(0),
            ticketer: None,
        }
    }

    /// The context with its dnstap tap.
    pub(crate) fn with_dnstap(mut self, dnstap: Option<Rc<Dnstap>>) -> Self {
        self.dnstap = dnstap;
        self
    }

    /// The context with the core's session-ticket ticketer (encrypted
    /// listeners with tickets on).
    pub(crate) fn with_tickets(
        mut self,
        ticketer: Option<Arc<crate::tickets::CoreTicketer>>,
    ) -> Self {
        self.ticketer = ticketer;
        self
    }

    /// Take a new session-ticket key set; returns the generation in use.
    pub(crate) fn install_ticket_keys(&self, keys: Arc<crate::tickets::TicketKeys>) -> u64 {
        match &self.ticketer {
            Some(ticketer) => {
                ticketer.install(keys);
                ticketer.generation()
            }
            None => 0,
        }
    }

    /// The context with name steering's hot-name watch and owners.
    pub(crate) fn with_steering(
        mut self,
        hot: Option<HotNames>,
        owners: Option<Arc<SpreadSet>>,
    ) -> Self {
        self.hot = hot;
        self.owners = owners;
        self
    }

    /// The tap, when it logs upstream queries or replies (for the
    /// upstream transports).
    pub(crate) fn forwarding_tap(&self) -> Option<&Dnstap> {
        self.dnstap.as_deref().filter(|tap| tap.logs_forwarding())
    }

    /// The tap, when it logs client messages.
    fn client_tap(&self) -> Option<&Dnstap> {
        self.dnstap.as_deref().filter(|tap| tap.logs_clients())
    }

    /// The timer loop's alarm.
    pub(crate) fn alarm(&self) -> &DeadlineAlarm {
        &self.alarm
    }

    /// The resolver's earliest deadline, if anything is in flight.
    pub(crate) fn next_deadline(&self) -> Option<Timestamp> {
        self.resolver.borrow_mut().next_deadline()
    }

    /// The core's index.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Milliseconds since the server started: the resolver's clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.timestamp_at(Instant::now())
    }

    /// [`CoreContext::now`] at `instant`, for a caller that has just read
    /// the clock (a wake-up reads it enough times already).
    pub(crate) fn timestamp_at(&self, instant: Instant) -> Timestamp {
        Timestamp::from_millis(instant.saturating_duration_since(self.epoch).as_millis() as u64)
    }

    /// The resolver, for a batch of queries; [`CoreContext::drain`] after.
    pub(crate) fn queries(&self) -> Queries<'_> {
        let mut resolver = self.resolver.borrow_mut();
        // Hints first, so that this batch finds what other cores fetched.
        self.take_hints_into(&mut resolver);
        Queries {
            resolver,
            tap: self.client_tap().map(|tap| (tap, wall_clock())),
            top: &self.top,
            hot: self.hot.as_ref(),
        }
    }

    /// Answer one query into the core's scratch buffer (so a stream
    /// transport's idle connections hold no 64 KiB of their own); `reply`
    /// gets the answer when there is one at once. Then drains.
    pub(crate) fn answer<T>(
        self: &Rc<Self>,
        query: &[u8],
        client: ClientId,
        reply: impl FnOnce(&[u8]) -> T,
    ) -> Answered<T> {
        let now = self.now();
        let started = Instant::now();
        sample(&self.top, self.hot.as_ref(), query);
        let answered = {
            let mut out = self.scratch.borrow_mut();
            let mut resolver = self.resolver.borrow_mut();
            self.take_hints_into(&mut resolver);
            let outcome = resolver.handle_query(query, &client, now, &mut out);
            drop(resolver);
            if let Some(tap) = self.client_tap() {
                tap_client(tap, &client, query, &outcome, &out, wall_clock());
            }
            match outcome {
                QueryOutcome::Reply(len) => match self.checked(&out, len) {
                    Some(bytes) => {
                        let sent = reply(bytes);
                        self.record_hits(client.transport, 1, started);
                        Answered::Now(sent)
                    }
                    None => Answered::Dropped,
                },
                QueryOutcome::Pending => {
                    if self
                        .owners
                        .as_ref()
                        .is_some_and(|owners| owners.owner(query) != self.index)
                    {
                        self.off_owner_fetches.set(self.off_owner_fetches.get() + 1);
                    }
                    Answered::Pending
                }
                QueryOutcome::Dropped => Answered::Dropped,
            }
        };
        self.drain(now);
        answered
    }

    /// An upstream's reply, from `from` over `transport`: matched and
    /// judged by the resolver's reply check, then what it releases is sent.
    pub(crate) fn upstream_reply(self: &Rc<Self>, source: ReplySource, reply: &[u8]) {
        let now = self.now();
        self.resolver
            .borrow_mut()
            .handle_upstream_reply(source, reply, now);
        self.drain(now);
    }

    /// Expire due upstream deadlines (retries, failover, SERVFAIL).
    pub(crate) fn timeouts(self: &Rc<Self>) {
        let now = self.now();
        let due = self
            .resolver
            .borrow_mut()
            .next_deadline()
            .is_some_and(|deadline| deadline <= now);
        if due {
            self.resolver.borrow_mut().handle_timeouts(now);
            self.drain(now);
        }
    }

    /// A cache-fill hint from another core.
    /// Store the hints other cores left in this core's inbox (before a
    /// batch, and before a control request).
    pub(crate) fn take_hints(&self) {
        self.take_hints_into(&mut self.resolver.borrow_mut());
    }

    fn take_hints_into(&self, resolver: &mut Resolver) {
        if let Some(hints) = &self.routes.hints {
            hints.take(|hint| resolver.receive_hint(hint, self.now()));
        }
    }

    /// `buf[..len]`, or `None` (counted and logged) when the resolver gave
    /// a length beyond the buffer: never a short or empty datagram.
    pub(crate) fn checked<'b>(&self, buf: &'b [u8], len: usize) -> Option<&'b [u8]> {
        let bytes = buf.get(..len);
        if bytes.is_none() {
            self.bad_lengths.set(self.bad_lengths.get() + 1);
            log::error!(
                "core {}: message length {len} beyond the {}-byte buffer; dropped",
                self.index,
                buf.len()
            );
        }
        bytes
    }

    /// Send what the resolver produced: upstream queries, replies to
    /// waiting clients, warnings to the log, and hints for the other
    /// cores.
    pub(crate) fn drain(self: &Rc<Self>, now: Timestamp) {
        let mut resolver = self.resolver.borrow_mut();
        let mut scratch = self.scratch.borrow_mut();
        while let Some(transmit) = resolver.poll_transmit(&mut scratch) {
            if let Some(query) = self.checked(&scratch, transmit.len) {
                self.send_upstream(&transmit, query);
            }
        }
        // Every attempt comes back once; each transport closes what it
        // kept for it (a UDP attempt's socket), and a freed socket may
        // send an attempt that waited for one.
        while let Some(attempt) = resolver.poll_retired() {
            for transport in [
                &self.routes.udp_upstreams,
                &self.routes.tcp_upstreams,
                &self.routes.tls_upstreams,
                &self.routes.https_upstreams,
            ] {
                if transport.retire(self, attempt).is_err() {
                    self.count_send_errors(1);
                }
            }
        }
        while let Some((client, len)) = resolver.poll_reply(&mut scratch, now) {
            if let Some(reply) = self.checked(&scratch, len) {
                self.send_reply(&client, reply);
            }
        }
        // Rate-limited by the resolver (once a minute per upstream).
        while let Some(warning) = resolver.poll_warning() {
            log::warn!("{warning}");
        }
        match &self.routes.hints {
            Some(hints) => {
                while let Some(hint) = resolver.poll_hint() {
                    hints.send(hint);
                }
            }
            None => while resolver.poll_hint().is_some() {},
        }
        // What was sent may have a deadline before the one the timer loop
        // sleeps for.
        self.alarm.note(resolver.next_deadline());
    }

    /// The one place an upstream query is dispatched to its transport.
    fn send_upstream(self: &Rc<Self>, transmit: &Transmit, query: &[u8]) {
        let transport: &dyn UpstreamSend = match transmit.transport {
            UpstreamTransport::Udp => &*self.routes.udp_upstreams,
            UpstreamTransport::Tcp => &*self.routes.tcp_upstreams,
            UpstreamTransport::Tls => &*self.routes.tls_upstreams,
            UpstreamTransport::Https => &*self.routes.https_upstreams,
        };
        if transport
            .send(self, transmit.attempt, transmit.to, query)
            .is_err()
        {
            self.count_send_errors(1);
        }
    }

    /// A late reply, back to the client transport its query came from.
    fn send_reply(&self, client: &ClientId, reply: &[u8]) {
        if let Some(tap) = &self.dnstap {
            tap.client_response(client, reply, None, None);
        }
        let transport: &dyn ClientReplies = match client.transport {
            Transport::Udp => &*self.routes.udp_clients,
            Transport::Tcp(_) => &*self.routes.tcp_clients,
            Transport::Tls(_) => &*self.routes.tls_clients,
            Transport::Https(_) => &*self.routes.https_clients,
            Transport::Quic(_) => &*self.routes.quic_clients,
        };
        if transport.reply(client, reply).is_err() {
            self.count_send_errors(1);
        }
    }

    /// Replies or queries the kernel refused.
    pub(crate) fn count_send_errors(&self, count: u64) {
        self.send_errors.set(self.send_errors.get() + count);
    }

    /// Count `count` re-arms of a listener's multishot receive after the
    /// kernel ended it.
    pub(crate) fn count_receive_rearms(&self, count: u64) {
        self.receive_rearms.set(self.receive_rearms.get() + count);
    }

    /// Judge the coalescing pause on this core: a UDP listener has a
    /// ceiling for it (`server.udp_coalesce`).
    pub(crate) fn judge_pauses(&self) {
        self.pause_judge.borrow_mut().enable();
    }

    /// Whether a UDP listener may pause to gather queries now (the pause
    /// judge's mode for this epoch).
    pub(crate) fn may_pause(&self) -> bool {
        self.pause_judge.borrow().may_pause()
    }

    /// A UDP listener paused to gather queries.
    pub(crate) fn note_pause(&self) {
        self.pause_judge.borrow_mut().note_pause();
    }

    /// A UDP listener read `count` queries at `at`.
    pub(crate) fn note_udp_read(&self, count: usize, at: Instant) {
        self.pause_judge
            .borrow_mut()
            .note_queries(count, at, thread_cpu_time);
    }

    /// Add a batch's GSO counters.
    pub(crate) fn add_udp_stats(&self, stats: UdpStats) {
        let mut udp = self.udp.get();
        udp.add(stats);
        self.udp.set(udp);
    }

    /// Shutdown: answer every query still waiting on an upstream (stale
    /// data or SERVFAIL) and send the replies. Returns how many queries
    /// were ended.
    pub(crate) fn abandon_all(self: &Rc<Self>) -> usize {
        let now = self.now();
        let ended = self.resolver.borrow_mut().abandon_all(now);
        self.drain(now);
        ended
    }

    /// The name a `tls` upstream's certificate must carry, from the
    /// resolver's current configuration (so a reload is seen). Not to be
    /// called while the resolver is borrowed (inside `drain`).
    pub(crate) fn upstream_name(&self, to: SocketAddr) -> Option<String> {
        self.upstream_auth(to).map(|(name, _)| name)
    }

    /// The DoH URL path the upstream at `to` names, if it names one.
    pub(crate) fn upstream_path(&self, to: SocketAddr) -> Option<String> {
        self.with_upstream(to, |upstream| upstream.path.clone())
    }

    /// The name and the SPKI pin, if any, of the upstream at `to` (see
    /// [`CoreContext::upstream_name`]).
    pub(crate) fn upstream_auth(&self, to: SocketAddr) -> Option<(String, Option<String>)> {
        self.with_upstream(to, |upstream| {
            Some((upstream.name.clone()?, upstream.pin.clone()))
        })
    }

    /// `read` of the configured upstream at `to`, from the resolver's
    /// current configuration (`None` while the resolver is borrowed).
    fn with_upstream<T>(
        &self,
        to: SocketAddr,
        read: impl FnOnce(&heimdall_config::Upstream) -> Option<T>,
    ) -> Option<T> {
        let resolver = self.resolver.try_borrow().ok()?;
        let upstream = resolver
            .upstreams()
            .iter()
            .find(|upstream| upstream.address() == to)?
            .upstream();
        read(upstream)
    }

    /// Upstream queries in flight.
    pub(crate) fn inflight(&self) -> usize {
        self.resolver.borrow().inflight()
    }

    /// Insert entries loaded from the cache file.
    pub(crate) fn preload(&self, entries: &[(heimdall_wire::QueryKey, Entry)]) {
        let now = self.now();
        let mut resolver = self.resolver.borrow_mut();
        let cache = resolver.cache_mut();
        for (key, entry) in entries {
            // Only an entry larger than the whole shard is refused.
            let _ = cache.insert(key, entry.clone(), now);
        }
    }

    /// Drop every cache entry (`None`), or those at or below a name, or
    /// with `qtype` only the name's entries of that type.
    pub(crate) fn flush_cache(&self, name: Option<&[u8]>, qtype: Option<u16>) -> usize {
        let mut resolver = self.resolver.borrow_mut();
        match (name, qtype) {
            (Some(name), Some(qtype)) => resolver
                .cache_mut()
                .retain(|entry| !is_entry_for(entry, name, qtype)),
            (name, _) => resolver.flush_cache(name),
        }
    }

    /// The sampled question table: wire name, type, estimated queries.
    pub(crate) fn top_queries(&self) -> Vec<(heimdall_wire::WireNameBuf, u16, u64)> {
        self.top.snapshot()
    }

    /// The shard's fresh entries in the cache's text form.
    pub(crate) fn dump_cache(&self) -> String {
        let now = self.now();
        let resolver = self.resolver.borrow();
        let mut out = String::new();
        heimdall_cache::dump_text(
            resolver.cache().entries(),
            now,
            crate::persist::wall_clock_ms(),
            &mut out,
        );
        out
    }

    /// Insert the fresh entries of a text dump into the shard; how many,
    /// or why the dump was refused (then nothing is inserted).
    pub(crate) fn load_cache(&self, text: &str) -> Result<usize, String> {
        let now = self.now();
        let policy = *self.resolver.borrow().cache().policy();
        let entries =
            heimdall_cache::load_text(text, now, crate::persist::wall_clock_ms(), &policy)
                .map_err(|err| err.to_string())?;
        self.preload(&entries);
        Ok(entries.len())
    }

    /// The entries this core's shard holds for `name` (lower-case wire
    /// form) and `qtype`. Walks the shard: for the operator, not the
    /// query path.
    pub(crate) fn cache_lookup(&self, name: &[u8], qtype: u16) -> Vec<CachedEntry> {
        let now = self.now();
        let resolver = self.resolver.borrow();
        resolver
            .cache()
            .entries()
            .filter(|entry| is_entry_for(entry, name, qtype))
            .map(|entry| CachedEntry {
                core: self.index,
                rcode: entry.rcode().to_string(),
                kind: format!("{:?}", entry.kind()).to_lowercase(),
                ttl_remaining: entry
                    .expires_at()
                    .as_millis()
                    .saturating_sub(now.as_millis())
                    / 1000,
                records: entry.ttl_offsets().len(),
                dnssec_ok: entry.dnssec_ok(),
            })
            .collect()
    }

    /// Take a new configuration snapshot (see [`reload::swap`]).
    pub(crate) fn reconfigure(&self, config: &ResolverConfig) -> Result<usize, String> {
        let now = self.now();
        reload::swap(&mut self.resolver.borrow_mut(), config, now)
    }

    /// Count `n` replies answered at once, on `transport`, in the time
    /// since `started`.
    pub(crate) fn record_hits(&self, transport: Transport, n: usize, started: Instant) {
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut hits = self.hits.borrow_mut();
        let histogram = match transport {
            Transport::Udp => &mut hits.udp,
            Transport::Tcp(_) => &mut hits.tcp,
            Transport::Tls(_) => &mut hits.tls,
            Transport::Https(_) => &mut hits.https,
            Transport::Quic(_) => &mut hits.quic,
        };
        histogram.observe_many_us(us, n as u64);
    }

    fn counters(&self) -> Counters {
        let (hints_sent, hints_send_dropped) =
            self.routes.hints.as_ref().map_or((0, 0), HintLink::counts);
        Counters {
            hints_sent,
            hints_send_dropped,
            send_errors: self.send_errors.get(),
            bad_lengths: self.bad_lengths.get(),
            receive_rearms: self.receive_rearms.get(),
            pauses: self.pause_judge.borrow().pauses(),
            pause_verdicts: self.pause_judge.borrow().verdicts(),
            pausing: u64::from(self.pause_judge.borrow().prefers_pause()),
            udp: self.udp.get(),
            spread: self.hot.as_ref().map(HotNames::totals).unwrap_or_default(),
            off_owner_fetches: self.off_owner_fetches.get(),
            sockets: self.routes.udp_upstreams.socket_stats().unwrap_or_default(),
            dnstap: self
                .dnstap
                .as_ref()
                .map(|tap| tap.counts())
                .unwrap_or_default(),
            hits: *self.hits.borrow(),
            tcp: self.tcp_stats(),
            tcp_open_connections: self.routes.tcp_clients.tcp_stats().map_or(0, |(_, n)| n),
            encrypted: self.encrypted_counts(),
        }
    }

    /// The encrypted transports' counters.
    fn encrypted_counts(&self) -> crate::stats::EncryptedCounts {
        let (dot, dot_open) = self.routes.tls_clients.tls_stats().unwrap_or_default();
        let (doh, doh_open) = self.routes.https_clients.tls_stats().unwrap_or_default();
        let (doq, doq_open) = self.routes.quic_clients.doq_stats().unwrap_or_default();
        crate::stats::EncryptedCounts {
            dot,
            dot_open,
            doh,
            doh_open,
            doh_errors: self.routes.https_clients.doh_errors().unwrap_or_default(),
            // DNS over TLS and over HTTPS: both are TLS connections.
            upstream: [&self.routes.tls_upstreams, &self.routes.https_upstreams]
                .into_iter()
                .filter_map(|transport| transport.upstream_tls_stats())
                .fold(UpstreamTlsStats::default(), UpstreamTlsStats::merged),
            doq,
            doq_open,
            ticket_key_generation: self
                .ticketer
                .as_ref()
                .map_or(0, |ticketer| ticketer.generation()),
        }
    }

    /// Both TCP sides' counters, summed.
    fn tcp_stats(&self) -> TcpStats {
        let clients = self.routes.tcp_clients.tcp_stats().map(|(stats, _)| stats);
        let upstreams = self.routes.tcp_upstreams.tcp_stats();
        clients
            .unwrap_or_default()
            .merged(upstreams.unwrap_or_default())
    }

    /// This core's counters, in the control endpoint's model.
    pub(crate) fn snapshot(&self) -> CoreSnapshot {
        let now = self.now();
        core_snapshot(self.index, &self.resolver.borrow(), self.counters(), now)
    }

    /// The final report, with the transports' TCP counters, and the
    /// shard's entries when `persist` (cache persistence).
    pub(crate) fn finish(
        &self,
        tcp: TcpStats,
        tcp_open_connections: usize,
        persist: bool,
    ) -> (CoreReport, Vec<Entry>) {
        let resolver = self.resolver.borrow();
        let entries = if persist {
            resolver.cache().entries().map(ToOwned::to_owned).collect()
        } else {
            Vec::new()
        };
        let counters = self.counters();
        let report = CoreReport {
            core: self.index,
            resolver: *resolver.stats(),
            cache: resolver.cache().stats(),
            hints_send_dropped: counters.hints_send_dropped,
            send_errors: counters.send_errors,
            bad_lengths: counters.bad_lengths,
            udp: counters.udp,
            abandoned_inflight: resolver.inflight(),
            tcp,
            tcp_open_connections,
            dnstap_sent: counters.dnstap.sent,
            dnstap_dropped: counters.dnstap.dropped,
            dot: counters.encrypted.dot,
            doh: counters.encrypted.doh,
            doh_errors: counters.encrypted.doh_errors,
            upstream_tls: counters.encrypted.upstream,
            doq: counters.encrypted.doq,
        };
        (report, entries)
    }
}

/// Whether `entry` answers `name` (lower-case wire form; the entry's name
/// is compared without regard to case) and `qtype`.
fn is_entry_for(entry: &EntryView, name: &[u8], qtype: u16) -> bool {
    entry.qtype().0 == qtype && entry.question_name().eq_ignore_ascii_case(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use heimdall_config::Config;
    use heimdall_testkit::messages::{a_answer, query};
    use heimdall_wire::RecordType;

    /// Records what a transport was asked to send.
    #[derive(Default)]
    struct Recorder(RefCell<Vec<(SocketAddr, Vec<u8>)>>, RefCell<Vec<AttemptId>>);

    impl UpstreamSend for Recorder {
        fn send(
            &self,
            _: &Rc<CoreContext>,
            attempt: AttemptId,
            to: SocketAddr,
            query: &[u8],
        ) -> Result<(), SendFailed> {
            self.1.borrow_mut().push(attempt);
            self.0.borrow_mut().push((to, query.to_vec()));
            Ok(())
        }
    }

    impl ClientReplies for Recorder {
        fn reply(&self, client: &ClientId, reply: &[u8]) -> Result<(), SendFailed> {
            self.0.borrow_mut().push((client.addr, reply.to_vec()));
            Ok(())
        }
    }

    const UPSTREAM: &str = "127.0.0.1:5399";

    /// A context whose four routes are recorders (the encrypted ones too).
    fn context() -> (Rc<CoreContext>, [Rc<Recorder>; 4]) {
        context_with(None)
    }

    /// [`context`] with a dnstap tap.
    fn context_with(dnstap: Option<Rc<Dnstap>>) -> (Rc<CoreContext>, [Rc<Recorder>; 4]) {
        // About routing, not validation: the recorded upstream is unsigned.
        let yaml = format!("upstream: {{servers: [{UPSTREAM}]}}\ndnssec: {{mode: off}}\n");
        let config = Config::from_yaml_str(&yaml, "test.yaml").unwrap();
        let cookies = crate::policy::CookieRuntime::new(Instant::now()).unwrap();
        let resolver_config = reload::build_resolver_config(&config, 1, &cookies).unwrap();
        let resolver = Resolver::new(resolver_config).unwrap();
        let recorders: [Rc<Recorder>; 4] = Default::default();
        let [udp_clients, tcp_clients, udp_upstreams, tcp_upstreams] = recorders.clone();
        let routes = Routes {
            udp_clients,
            tls_clients: Rc::clone(&tcp_clients) as _,
            https_clients: Rc::clone(&tcp_clients) as _,
            quic_clients: Rc::clone(&tcp_clients) as _,
            tcp_clients,
            tls_upstreams: Rc::clone(&tcp_upstreams) as _,
            https_upstreams: Rc::clone(&tcp_upstreams) as _,
            udp_upstreams,
            tcp_upstreams,
            hints: None,
        };
        let ctx =
            Rc::new(CoreContext::new(0, resolver, routes, Instant::now()).with_dnstap(dnstap));
        (ctx, recorders)
    }

    #[test]
    fn a_miss_goes_to_its_upstream_transport_and_the_reply_to_its_client() {
        let (ctx, [udp_clients, tcp_clients, udp_upstreams, tcp_upstreams]) = context();
        let client = ClientId {
            addr: "127.0.0.1:40000".parse().unwrap(),
            transport: Transport::Udp,
            listener: 0,
        };
        let asked = query("example.com", RecordType::A, 7, None);
        let now = ctx.now();
        let mut out = vec![0u8; 4096];
        let outcome = ctx.queries().handle(&asked, &client, now, &mut out);
        assert!(matches!(outcome, QueryOutcome::Pending));
        ctx.drain(now);
        let sent = udp_upstreams.0.borrow().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, UPSTREAM.parse::<SocketAddr>().unwrap());
        assert!(tcp_upstreams.0.borrow().is_empty());
        let attempt = udp_upstreams.1.borrow()[0];
        let source = ReplySource {
            from: sent[0].0,
            transport: UpstreamTransport::Udp,
            attempt: Some(attempt),
        };
        ctx.upstream_reply(source, &a_answer(&sent[0].1, 1, 300));
        let replies = udp_clients.0.borrow();
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].0, client.addr);
        assert_eq!(&replies[0].1[..2], &7u16.to_be_bytes());
        assert!(tcp_clients.0.borrow().is_empty());
    }

    #[test]
    fn a_length_beyond_the_buffer_is_counted_never_sent_short() {
        let (ctx, _) = context();
        assert!(ctx.checked(&[0u8; 4], 5).is_none());
        assert_eq!(ctx.checked(&[1u8; 4], 4), Some(&[1u8; 4][..]));
        let (report, _) = ctx.finish(TcpStats::default(), 0, false);
        assert_eq!(report.bad_lengths, 1);
        assert_eq!(report.send_errors, 0);
    }

    /// Ask `asked` (a miss), let the recorded UDP upstream answer it, and
    /// return the time and a reply buffer for further queries.
    fn answered_by_upstream(
        ctx: &Rc<CoreContext>,
        udp_upstreams: &Recorder,
        asked: &[u8],
        client: ClientId,
    ) -> (heimdall_cache::Timestamp, Vec<u8>) {
        let now = ctx.now();
        let mut out = vec![0u8; 4096];
        let outcome = ctx.queries().handle(asked, &client, now, &mut out);
        assert!(matches!(outcome, QueryOutcome::Pending));
        ctx.drain(now);
        let sent = udp_upstreams.0.borrow().clone();
        let source = ReplySource {
            from: sent[0].0,
            transport: UpstreamTransport::Udp,
            attempt: Some(udp_upstreams.1.borrow()[0]),
        };
        ctx.upstream_reply(source, &a_answer(&sent[0].1, 1, 300));
        (now, out)
    }

    #[test]
    fn a_cache_hit_with_dnstap_on_is_logged_and_allocates_nothing() {
        let yaml = "dnstap: {enabled: true, socket: /nonexistent/dnstap.sock}\n\
                    upstream: {servers: [127.0.0.1:5399]}\n";
        let config = Config::from_yaml_str(yaml, "test.yaml").unwrap();
        let listen: SocketAddr = "127.0.0.1:53".parse().unwrap();
        let settings = crate::dnstap::DnstapSettings::new(&config.dnstap, &[listen]).unwrap();
        let (tap, _) = Dnstap::new(&settings);
        let (ctx, [_, _, udp_upstreams, _]) = context_with(Some(Rc::clone(&tap)));
        let client = ClientId {
            addr: "127.0.0.1:40000".parse().unwrap(),
            transport: Transport::Udp,
            listener: 0,
        };
        // Fill the cache: a miss, its upstream query and the reply.
        let asked = query("example.com", RecordType::A, 7, None);
        let (now, mut out) = answered_by_upstream(&ctx, &udp_upstreams, &asked, client);
        // The client query and the late response (the transports log the
        // forwarded query and reply, not the context).
        assert_eq!(tap.pending(), 2);
        let hits: Vec<Vec<u8>> = (0..100)
            .map(|id| query("example.com", RecordType::A, id, None))
            .collect();
        let mut hit = |bytes: &[u8]| {
            let outcome = ctx.queries().handle(bytes, &client, now, &mut out);
            assert!(matches!(outcome, QueryOutcome::Reply(_)));
        };
        hit(&hits[0]);
        let ((), allocations) = heimdall_testkit::allocations_during(|| {
            for bytes in &hits[1..] {
                hit(bytes);
            }
        });
        assert_eq!(allocations, 0, "a cache hit with dnstap on allocated");
        assert_eq!(
            tap.pending(),
            2 + 2 * 100,
            "each hit: a query and a response"
        );
        assert_eq!(tap.counts().dropped, 0);
    }

    #[test]
    fn a_hit_is_timed_without_an_allocation_and_a_miss_by_the_resolver() {
        let (ctx, [_, _, udp_upstreams, _]) = context();
        let client = ClientId {
            addr: "127.0.0.1:40001".parse().unwrap(),
            transport: Transport::Udp,
            listener: 0,
        };
        // A miss, answered: the resolver times it.
        let asked = query("example.com", RecordType::A, 8, None);
        answered_by_upstream(&ctx, &udp_upstreams, &asked, client);
        // Hits: timed in a batch of three, then one over TCP, on the path
        // that must not allocate.
        let started = Instant::now();
        let ((), allocations) = heimdall_testkit::allocations_during(|| {
            ctx.record_hits(Transport::Udp, 3, started);
            ctx.record_hits(Transport::Tcp(1), 1, started);
        });
        assert_eq!(allocations, 0);
        let answers = ctx.snapshot().answers;
        assert_eq!(answers.udp_hit.count(), 3);
        assert_eq!(answers.tcp_hit.count(), 1);
        assert_eq!(answers.udp_miss.count(), 1);
        assert_eq!(answers.tcp_miss.count(), 0);
    }
}
