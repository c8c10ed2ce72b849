//! The executor heimdall runs on never parks while it has tasks to run.
//!
//! glommio 0.9.0 as published could: a preemption already due when it
//! looked at its task queues read as "nothing to run", and it slept in
//! io_uring with runnable tasks and nothing to wake it (vendor/README.md).
//! A 1 ns preemption timer makes the preemption due at every look, so an
//! executor with the defect stops making progress at once; the patched one
//! must finish every run.

#![allow(clippy::expect_used, missing_docs)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use glommio::LocalExecutorBuilder;

/// Run `runs` executions of `work` on an executor whose preemption is
/// always due; how many finished before `limit` passed without progress.
fn runs_finished(runs: u32, limit: Duration, work: fn() -> glommio::Task<()>) -> u32 {
    let (progress, finished) = mpsc::channel();
    let _worker = thread::spawn(move || {
        let executor = LocalExecutorBuilder::default()
            .preempt_timer(Duration::from_nanos(1))
            .io_memory(256 << 10)
            .make()
            .expect("executor");
        for run in 1..=runs {
            executor.run(async move { work().await });
            if progress.send(run).is_err() {
                return;
            }
        }
    });
    let mut done = 0;
    // A hung executor thread is left behind: it cannot be stopped, and
    // the test process ends anyway.
    while let Ok(run) = finished.recv_timeout(limit) {
        done = run;
        if done == runs {
            break;
        }
    }
    done
}

#[test]
fn an_always_due_preemption_does_not_park_an_executor_with_work() {
    let done = runs_finished(500, Duration::from_secs(10), || {
        glommio::spawn_local(async {})
    });
    assert_eq!(
        done, 500,
        "the executor parked with a runnable task after {done} runs"
    );
}

#[test]
fn timers_and_spawned_tasks_finish_under_constant_preemption() {
    let done = runs_finished(50, Duration::from_secs(10), || {
        glommio::spawn_local(async {
            let mut tasks = Vec::new();
            for _ in 0..8 {
                tasks.push(glommio::spawn_local(async {
                    for _ in 0..3 {
                        glommio::timer::sleep(Duration::from_micros(200)).await;
                        glommio::yield_if_needed().await;
                    }
                }));
            }
            for task in tasks {
                task.await;
            }
        })
    });
    assert_eq!(done, 50, "stopped making progress after {done} runs");
}
