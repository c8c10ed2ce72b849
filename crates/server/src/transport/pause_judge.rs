//! Whether the UDP coalescing pause pays on this core: [`PauseJudge`]
//! runs the core's listeners with and without the pause in turns, measures
//! the core's CPU time per query in each, and keeps the cheaper.
//!
//! *Why measured and not predicted*: a pause trades one timer wake-up for
//! the wake-ups the datagrams it gathers would have made, and both costs
//! are the host's: the hypervisor's halt and interrupt, its timer. With
//! the same receive loop, at 100,000 cache hits a second, the pause saved
//! about 10 % of the CPU per query on a 2-core EPYC VM and cost 37 % more
//! on a 2-core Xeon VM, where a wake-up's own latency already gathers as
//! many queries as a pause would (docs/TUNING.md). The arrival rate
//! (`ArrivalRate` in `udp.rs`) still says when a pause *could* gather
//! enough; this says whether gathering that way is cheaper than waking.
//!
//! How: time is cut into epochs of [`EPOCH`]. Epochs run in the preferred
//! mode, and every [`PROBE_EVERY`]th in the other (less often while the
//! probes keep confirming the preference, down to one in
//! [`PROBE_EVERY_MAX`]). At the end of a probe its CPU per query is
//! compared with that of the preferred epoch just before it, when both
//! carried at least [`MIN_QUERIES`] queries at rates within
//! [`RATE_TOLERANCE_PERCENT`] of each other and the pausing one paused at
//! all (else the two modes did the same and nothing is learnt). The pause
//! is preferred only when it was at least [`PAUSE_MARGIN_PERCENT`]
//! cheaper: it holds answers for a moment, so a tie goes to not pausing,
//! which is also where a core starts.
//!
//! Sans-IO: the caller passes the time and reads the thread's CPU time
//! when asked (a system call, once per epoch).

use std::time::{Duration, Instant};

/// Length of one measured epoch.
pub(crate) const EPOCH: Duration = Duration::from_millis(100);
/// One epoch in this many runs in the mode not preferred, to see whether
/// it became the cheaper one (the load or the host changed)...
pub(crate) const PROBE_EVERY: u32 = 16;
/// ... at first and after a probe that changed the preference; each probe
/// that confirms it doubles the interval, up to this (25.6 s), so that a
/// settled core spends about 0.4 % of its epochs in the dearer mode.
pub(crate) const PROBE_EVERY_MAX: u32 = 256;
/// Queries an epoch must carry to be compared (20,000 a second): below
/// that a pause never gathers enough to be taken anyway.
pub(crate) const MIN_QUERIES: u64 = 2_000;
/// Two epochs are compared only when their query rates differ by at most
/// this share of the larger (a different rate is a different cost per
/// query, whatever the mode).
pub(crate) const RATE_TOLERANCE_PERCENT: u64 = 20;
/// The pause is preferred only when it costs at least this share less CPU
/// per query than not pausing.
pub(crate) const PAUSE_MARGIN_PERCENT: u64 = 5;

/// What one epoch cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    queries: u64,
    /// Queries a second.
    rate: u64,
    /// CPU nanoseconds per query.
    cost_ns: u64,
    /// Whether the epoch took any pause (only a pausing epoch can).
    paused: bool,
}

/// The epoch under way.
#[derive(Debug, Clone, Copy)]
struct Epoch {
    started: Instant,
    cpu_at_start: Duration,
    queries: u64,
    pauses: u64,
}

/// Verdicts so far, for the core's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdicts {
    /// Probes that found the pause the cheaper (by the margin).
    pub(crate) pause: u64,
    /// Probes that found not pausing the cheaper (or the pause not cheaper
    /// by the margin).
    pub(crate) no_pause: u64,
}

/// One core's judge of the coalescing pause (see the module doc).
#[derive(Debug)]
pub(crate) struct PauseJudge {
    /// A ceiling is configured: without one there is nothing to judge.
    enabled: bool,
    prefer_pause: bool,
    epoch: Option<Epoch>,
    /// Epochs in the preferred mode left before the next probe, the one
    /// under way included; 0 while the probe runs.
    until_probe: u32,
    /// Epochs from one probe to the next.
    probe_every: u32,
    /// The last preferred epoch that ended just before the probe.
    preferred: Option<Sample>,
    verdicts: Verdicts,
    pauses: u64,
}

impl PauseJudge {
    /// A judge for a core whose listeners may pause up to a ceiling
    /// (`enabled`), or never.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            prefer_pause: false,
            epoch: None,
            until_probe: PROBE_EVERY - 1,
            probe_every: PROBE_EVERY,
            preferred: None,
            verdicts: Verdicts::default(),
            pauses: 0,
        }
    }

    /// Start judging (a listener with a ceiling joined the core).
    pub(crate) fn enable(&mut self) {
        self.enabled = true;
    }

    /// Whether a listener may pause now.
    pub(crate) fn may_pause(&self) -> bool {
        self.enabled && self.pausing()
    }

    /// The mode of the epoch under way: the preferred one, or the other
    /// while a probe runs.
    fn pausing(&self) -> bool {
        self.prefer_pause != self.probing()
    }

    fn probing(&self) -> bool {
        self.until_probe == 0
    }

    /// Whether the core currently prefers to pause (what the probes found).
    pub(crate) fn prefers_pause(&self) -> bool {
        self.enabled && self.prefer_pause
    }

    /// The verdicts so far.
    pub(crate) fn verdicts(&self) -> Verdicts {
        self.verdicts
    }

    /// Pauses taken so far.
    pub(crate) fn pauses(&self) -> u64 {
        self.pauses
    }

    /// A listener paused.
    pub(crate) fn note_pause(&mut self) {
        self.pauses += 1;
        if let Some(epoch) = &mut self.epoch {
            epoch.pauses += 1;
        }
    }

    /// A listener read `queries` at `now`; `cpu` reads the core's CPU time,
    /// called only when an epoch starts or ends.
    pub(crate) fn note_queries(
        &mut self,
        queries: usize,
        now: Instant,
        cpu: impl FnOnce() -> Option<Duration>,
    ) {
        if !self.enabled || queries == 0 {
            return;
        }
        let Some(epoch) = &mut self.epoch else {
            if let Some(cpu_at_start) = cpu() {
                self.epoch = Some(Epoch {
                    started: now,
                    cpu_at_start,
                    queries: queries as u64,
                    pauses: 0,
                });
            }
            return;
        };
        epoch.queries += queries as u64;
        let elapsed = now.saturating_duration_since(epoch.started);
        if elapsed < EPOCH {
            return;
        }
        let ended = *epoch;
        self.epoch = None;
        let Some(cpu_now) = cpu() else {
            return;
        };
        let spent = cpu_now.saturating_sub(ended.cpu_at_start);
        let sample = Sample {
            queries: ended.queries,
            rate: per_second(ended.queries, elapsed),
            cost_ns: u64::try_from(spent.as_nanos() / u128::from(ended.queries.max(1)))
                .unwrap_or(u64::MAX),
            // Pauses are taken only in a pausing epoch.
            paused: ended.pauses > 0,
        };
        self.epoch = Some(Epoch {
            started: now,
            cpu_at_start: cpu_now,
            queries: 0,
            pauses: 0,
        });
        self.epoch_ended(sample);
    }

    fn epoch_ended(&mut self, sample: Sample) {
        if !self.probing() {
            // A preferred epoch; the last before the probe is its match.
            self.preferred = Some(sample);
            self.until_probe -= 1;
            return;
        }
        // A probe ended: judge it against the preferred epoch before it.
        if let Some(preferred) = self.preferred.take()
            && let Some(pause_cheaper) = compare(preferred, sample, self.prefer_pause)
        {
            self.probe_every = if pause_cheaper == self.prefer_pause {
                (self.probe_every * 2).min(PROBE_EVERY_MAX)
            } else {
                PROBE_EVERY
            };
            self.prefer_pause = pause_cheaper;
            if pause_cheaper {
                self.verdicts.pause += 1;
            } else {
                self.verdicts.no_pause += 1;
            }
        }
        self.until_probe = self.probe_every - 1;
    }
}

/// Judge two epochs, one of each mode: whether the pause was cheaper by
/// the margin, or `None` when they cannot be compared.
fn compare(preferred: Sample, probe: Sample, prefer_pause: bool) -> Option<bool> {
    let (pausing, plain) = if prefer_pause {
        (preferred, probe)
    } else {
        (probe, preferred)
    };
    let comparable = pausing.queries >= MIN_QUERIES
        && plain.queries >= MIN_QUERIES
        && pausing.paused
        && pausing.rate.abs_diff(plain.rate) * 100
            <= pausing.rate.max(plain.rate) * RATE_TOLERANCE_PERCENT;
    comparable.then(|| {
        u128::from(pausing.cost_ns) * 100
            <= u128::from(plain.cost_ns) * u128::from(100 - PAUSE_MARGIN_PERCENT)
    })
}

fn per_second(queries: u64, elapsed: Duration) -> u64 {
    let nanos = elapsed.as_nanos().max(1);
    u64::try_from(u128::from(queries) * 1_000_000_000 / nanos).unwrap_or(u64::MAX)
}

/// The calling thread's CPU time (user and system), or `None` if the
/// kernel will not say.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(Duration::from(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A judge fed by a simulated core: its clock and CPU time carry on
    /// from epoch to epoch.
    struct Core {
        judge: PauseJudge,
        clock: Instant,
        cpu: Duration,
    }

    impl Core {
        fn new(enabled: bool) -> Self {
            let mut core = Self {
                judge: PauseJudge::new(enabled),
                clock: Instant::now(),
                cpu: Duration::from_secs(1),
            };
            // The first read starts the first epoch.
            core.batch(1, 0, 0);
            core
        }

        /// One read of `queries` that cost `cost_ns` each, `pauses` taken
        /// before it if the judge allows them, a tenth of an epoch after
        /// the last.
        fn batch(&mut self, queries: u64, cost_ns: u64, pauses: u64) {
            self.clock += EPOCH / 10;
            self.cpu += Duration::from_nanos(cost_ns * queries);
            if self.judge.may_pause() {
                for _ in 0..pauses {
                    self.judge.note_pause();
                }
            }
            let cpu = self.cpu;
            self.judge
                .note_queries(queries as usize, self.clock, || Some(cpu));
        }

        /// One epoch of `queries`, costing `pause_ns` each while the judge
        /// lets the core pause (a pause per 8 queries) and `plain_ns` while
        /// it does not.
        fn epoch(&mut self, queries: u64, pause_ns: u64, plain_ns: u64) {
            let pausing = self.judge.may_pause();
            let cost = if pausing { pause_ns } else { plain_ns };
            for _ in 0..10 {
                self.batch(queries / 10, cost, queries / 80);
            }
        }

        fn epochs(&mut self, epochs: u32, queries: u64, pause_ns: u64, plain_ns: u64) {
            for _ in 0..epochs {
                self.epoch(queries, pause_ns, plain_ns);
            }
        }
    }

    #[test]
    fn a_core_starts_without_pausing() {
        assert!(!Core::new(true).judge.may_pause());
        assert!(!Core::new(false).judge.may_pause());
    }

    #[test]
    fn a_cheaper_pause_is_adopted_after_one_probe() {
        let mut core = Core::new(true);
        // 10,000 queries an epoch (100k/s); pausing costs 3 us, not 4.
        core.epochs(PROBE_EVERY, 10_000, 3_000, 4_000);
        assert!(core.judge.prefers_pause(), "{:?}", core.judge);
        assert!(core.judge.may_pause());
        assert_eq!(
            core.judge.verdicts(),
            Verdicts {
                pause: 1,
                no_pause: 0
            }
        );
    }

    #[test]
    fn a_dearer_pause_is_dropped_at_the_next_probe() {
        let mut core = Core::new(true);
        core.epochs(PROBE_EVERY, 10_000, 3_000, 4_000);
        assert!(core.judge.prefers_pause());
        // The load changed: now the pause costs 37 % more.
        core.epochs(PROBE_EVERY, 10_000, 5_500, 4_000);
        assert!(!core.judge.prefers_pause(), "{:?}", core.judge);
        assert_eq!(
            core.judge.verdicts(),
            Verdicts {
                pause: 1,
                no_pause: 1
            }
        );
    }

    #[test]
    fn a_pause_within_the_margin_is_not_taken() {
        let mut core = Core::new(true);
        // Probes at epochs 16 and 48.
        core.epochs(4 * PROBE_EVERY, 10_000, 3_900, 4_000);
        assert!(!core.judge.prefers_pause());
        assert_eq!(
            core.judge.verdicts(),
            Verdicts {
                pause: 0,
                no_pause: 2
            }
        );
    }

    #[test]
    fn probes_thin_out_while_they_confirm_the_preference() {
        let mut core = Core::new(true);
        let mut probes = Vec::new();
        for epoch in 1..=2 * PROBE_EVERY_MAX {
            if core.judge.may_pause() {
                probes.push(epoch);
            }
            // The pause costs more: every pausing epoch is a probe.
            core.epoch(10_000, 6_000, 4_000);
        }
        assert_eq!(probes, [16, 48, 112, 240, 496]);
        // A probe that finds the pause cheaper now (the next, at 752)
        // restarts the interval: the probe after it comes 16 epochs later.
        let mut waited = 0;
        while !core.judge.prefers_pause() {
            core.epoch(10_000, 3_000, 4_000);
            waited += 1;
        }
        assert_eq!(waited, 752 - 2 * PROBE_EVERY_MAX);
        let mut probes = Vec::new();
        for epoch in 1..=2 * PROBE_EVERY {
            if !core.judge.may_pause() {
                probes.push(epoch);
            }
            core.epoch(10_000, 3_000, 4_000);
        }
        assert_eq!(probes, [16], "{:?}", core.judge);
    }

    #[test]
    fn slow_or_unequal_epochs_are_not_compared() {
        // 1,000 queries an epoch (10k/s): too few to judge.
        let mut core = Core::new(true);
        core.epochs(2 * PROBE_EVERY, 1_000, 1_000, 4_000);
        assert_eq!(core.judge.verdicts(), Verdicts::default());
        // A probe at half the rate of the epoch before it.
        let mut core = Core::new(true);
        core.epochs(PROBE_EVERY - 1, 10_000, 1_000, 4_000);
        assert!(core.judge.may_pause(), "the probe");
        core.epoch(5_000, 1_000, 4_000);
        assert_eq!(core.judge.verdicts(), Verdicts::default());
        assert!(!core.judge.may_pause());
    }

    #[test]
    fn a_probe_that_never_paused_teaches_nothing() {
        let mut core = Core::new(true);
        for _ in 0..PROBE_EVERY {
            // Cheaper while allowed to pause, but no pause was taken.
            let cost = if core.judge.may_pause() { 1_000 } else { 4_000 };
            for _ in 0..10 {
                core.batch(1_000, cost, 0);
            }
        }
        assert_eq!(core.judge.verdicts(), Verdicts::default());
        assert!(!core.judge.prefers_pause());
    }

    #[test]
    fn without_a_ceiling_nothing_is_measured() {
        let mut judge = PauseJudge::new(false);
        judge.note_queries(10, Instant::now(), || panic!("no CPU read"));
        judge.note_queries(10, Instant::now() + EPOCH, || panic!("no CPU read"));
        assert!(!judge.may_pause());
    }

    #[test]
    fn the_thread_has_a_cpu_clock() {
        let before = thread_cpu_time().unwrap();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(thread_cpu_time().unwrap() > before);
    }
}
