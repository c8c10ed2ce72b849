//! The executor's cheaper park path (vendor/README.md, "Wake-up cost")
//! keeps glommio's guarantees.
//!
//! The patch replaced the latency-ring preemption timer with a clock
//! deadline and the membarrier before sleeping with a pair of fences. Each
//! test attacks what the replaced mechanism guaranteed: a task that only
//! ever yields when preemption is due must still let a timer run (no
//! preemption would starve it for ever), and an executor that goes to
//! sleep while another thread sends to it must always wake (a lost
//! wake-up hangs the ping-pong). The scenario that caught a lost wake-up in
//! an earlier version of the patch (fresh servers taking a burst of cache
//! misses) needs release-build timing to show it and runs as
//! `loadtest/scripts/start-burst.sh` (vendor/README.md).

#![allow(clippy::expect_used, missing_docs)]

use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

#[test]
fn a_task_that_yields_only_when_preempted_lets_a_timer_fire() {
    let (done, finished) = mpsc::channel();
    let _worker = thread::spawn(move || {
        let executor = LocalExecutorBuilder::default()
            .preempt_timer(Duration::from_millis(1))
            .io_memory(256 << 10)
            .make()
            .expect("executor");
        let fired_after = executor.run(async {
            let fired = Rc::new(Cell::new(false));
            let started = Instant::now();
            let spinner = {
                let fired = fired.clone();
                glommio::spawn_local(async move {
                    // Busy until the timer fires, giving the CPU up only
                    // when glommio says preemption is due; a give-up guard
                    // ends the test if it never is.
                    while !fired.get() && started.elapsed() < Duration::from_secs(5) {
                        std::hint::black_box((0..1_000u64).sum::<u64>());
                        glommio::yield_if_needed().await;
                    }
                })
            };
            glommio::timer::sleep(Duration::from_millis(5)).await;
            let fired_after = started.elapsed();
            fired.set(true);
            spinner.await;
            fired_after
        });
        let _ = done.send(fired_after);
    });
    let fired_after = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the executor finished");
    assert!(
        fired_after < Duration::from_millis(500),
        "a 5 ms timer fired after {fired_after:?}: the busy task was not preempted"
    );
}

#[test]
fn a_sleeping_executor_always_wakes_for_another_threads_send() {
    const ROUNDS: u32 = 3_000;
    let (to_echo, echo_in) = shared_channel::new_bounded::<u32>(1);
    let (to_main, main_in) = shared_channel::new_bounded::<u32>(1);
    let (done, finished) = mpsc::channel();
    let echo = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(256 << 10)
        .spawn(move || async move {
            let echo_in = echo_in.connect().await;
            let to_main = to_main.connect().await;
            while let Some(n) = echo_in.recv().await {
                if to_main.send(n).await.is_err() {
                    break;
                }
            }
        })
        .expect("echo executor");
    let _main = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(256 << 10)
        .spawn(move || async move {
            let to_echo = to_echo.connect().await;
            let main_in = main_in.connect().await;
            for n in 0..ROUNDS {
                // Every other round the sender waits a little, so the
                // receiver is often already asleep when the value comes.
                if n % 2 == 0 {
                    thread::sleep(Duration::from_micros(50));
                }
                to_echo.send(n).await.expect("echo alive");
                assert_eq!(main_in.recv().await, Some(n));
                let _ = done.send(n);
            }
        })
        .expect("main executor");
    let mut last = None;
    while let Ok(n) = finished.recv_timeout(Duration::from_secs(5)) {
        last = Some(n);
        if n + 1 == ROUNDS {
            break;
        }
    }
    assert_eq!(
        last,
        Some(ROUNDS - 1),
        "the ping-pong stopped after {last:?}: a wake-up was lost"
    );
    drop(echo);
}
