//! Test support shared by heimdall's test suites and benches (a
//! dev-dependency only; nothing here ships in the server):
//!
//! - [`CountingAllocator`] and [`allocations_during`], which prove that a
//!   piece of code makes no heap allocation;
//! - [`messages`], small makers of queries and upstream answers built with
//!   heimdall-wire;
//! - [`SplitMix64`], a deterministic generator for random and mutated inputs;
//! - [`prometheus`], a strict reader of the Prometheus text format and a
//!   `promtool` check;
//! - [`peers`], where the real peers' binaries are, and the rule for a
//!   missing one (skip with a reason; fail under `CI=true`).
//! - [`spoof`], an off-path attacker on loopback: forged UDP replies
//!   through a raw socket, and a process's UDP sockets as `ss` lists them.

pub mod messages;
pub mod peers;
pub mod prometheus;
mod rng;
pub mod spoof;

pub use rng::SplitMix64;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// A global allocator that forwards to the system allocator and counts the
/// allocations made by a thread while [`allocations_during`] runs on it.
/// Counting is per thread, so the test harness's other threads do not
/// interfere. Install it in a test binary with
/// `#[global_allocator] static ALLOCATOR: CountingAllocator = CountingAllocator;`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

fn note_allocation() {
    // `try_with`: the allocator may run while thread-locals are torn down.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _counted = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    }
}

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping only touches const-initialized thread-local `Cell`s, which
// never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Run `work` with counting on; return its result and the number of
/// allocations it made on this thread. Counts only when the test binary
/// installed [`CountingAllocator`] as its global allocator.
pub fn allocations_during<R>(work: impl FnOnce() -> R) -> (R, usize) {
    ALLOCATIONS.with(|count| count.set(0));
    COUNTING.with(|on| on.set(true));
    let result = work();
    COUNTING.with(|on| on.set(false));
    (result, ALLOCATIONS.with(Cell::get))
}
