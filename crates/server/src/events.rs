//! Lifecycle events for a service manager: [`ServerEvent`]s handed to the
//! embedder's [`EventSink`] (the binary turns them into sd_notify
//! messages), and the core-0 task that decides when the server is ready
//! and keeps telling that it is alive ([`watch`]).
//!
//! Readiness and liveness use the same per-core ping as `GET /health`:
//! the server is ready once every core has answered one (each core
//! answers requests only after its serving tasks are spawned), and a
//! watchdog beat is sent only when every core answered within
//! [`crate::HEALTH_TIMEOUT`]. A stuck core therefore stops the beats, and
//! the service manager restarts the process.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::endpoint::HEALTH_TIMEOUT;
use crate::mesh::{CoreAnswer, CoreCommand, CoreMesh};

/// Where the server reports [`ServerEvent`]s. Called on core 0's thread:
/// it must not block for long (a datagram send is fine).
pub type EventSink = Arc<dyn Fn(ServerEvent) + Send + Sync>;

/// How often readiness is probed until every core has answered.
const READY_PROBE: Duration = Duration::from_millis(5);

/// Something a service manager wants to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// Every core answered the health ping: the server serves.
    Ready {
        /// How many cores serve.
        cores: usize,
    },
    /// A reload started (from SIGHUP or the control channel).
    Reloading,
    /// A reload ended: the new generation, or why the running
    /// configuration stays.
    Reloaded(Result<u64, String>),
    /// Every core answered the periodic health ping in time (one per
    /// watchdog interval).
    Alive,
    /// Some cores did not answer the periodic ping in time (no beat is
    /// sent for this interval).
    Unhealthy {
        /// The cores that did not answer.
        late: Vec<usize>,
    },
}

/// The cores that did not answer a ping in `answers`.
fn late_cores(answers: &[Option<CoreAnswer>]) -> Vec<usize> {
    answers
        .iter()
        .enumerate()
        .filter(|(_, answer)| !matches!(answer, Some(CoreAnswer::Pong)))
        .map(|(core, _)| core)
        .collect()
}

/// Core 0's lifecycle task: ping until every core answers, report
/// [`ServerEvent::Ready`], then with a `watchdog` interval ping once per
/// interval and report [`ServerEvent::Alive`] or
/// [`ServerEvent::Unhealthy`], until the server stops.
pub(crate) async fn watch(
    mesh: Rc<CoreMesh>,
    cores: usize,
    sink: EventSink,
    watchdog: Option<Duration>,
    stop: Arc<AtomicBool>,
) {
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let answers = mesh.ask_all(CoreCommand::Ping, HEALTH_TIMEOUT).await;
        if late_cores(&answers).is_empty() {
            break;
        }
        glommio::timer::sleep(READY_PROBE).await;
    }
    sink(ServerEvent::Ready { cores });
    let Some(interval) = watchdog else {
        return;
    };
    while !stop.load(Ordering::Relaxed) {
        glommio::timer::sleep(interval).await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let answers = mesh.ask_all(CoreCommand::Ping, HEALTH_TIMEOUT).await;
        let late = late_cores(&answers);
        if late.is_empty() {
            sink(ServerEvent::Alive);
        } else {
            log::warn!("watchdog: cores not answering in time: {late:?}; no beat sent");
            sink(ServerEvent::Unhealthy { late });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_core_is_late_unless_it_answered_pong() {
        let answers = vec![
            Some(CoreAnswer::Pong),
            None,
            Some(CoreAnswer::Flushed(0)),
            Some(CoreAnswer::Pong),
        ];
        assert_eq!(late_cores(&answers), vec![1, 2]);
        assert!(late_cores(&[Some(CoreAnswer::Pong)]).is_empty());
    }
}
