//! What an upstream socket that waits for its reply costs in heap memory
//! (issue 16, "Resident memory"): each cache miss leaves from a socket of
//! its own, and a core may hold `upstream.max_sockets` (1,024 by default)
//! of them at once. A socket holds no receive buffer (the core's one
//! receive task reads every socket into a buffer on its stack), no task
//! and no poll of its own (one epoll set watches them all): it is a slot
//! in a table. Before, each held a 4 KiB buffer of heimdall's and one of
//! glommio's, later a receive task, a wake-up channel and a poll, which a
//! burst of misses left behind as free space in the allocator's arenas.
//!
//! The test binary's allocator counts the live heap bytes of every thread
//! (the server runs in this process); the upstream never answers, so every
//! miss keeps its socket open while the test measures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use common::http::{get_ok, metrics};
use common::{LOOPBACK, Setup, query, wait_until};
use heimdall_wire::RecordType;

/// Heap bytes live in the whole process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes.
struct LiveBytes;

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator; the
// bookkeeping is one atomic add, which never allocates.
unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: LiveBytes = LiveBytes;

fn open_sockets(control: SocketAddr) -> f64 {
    let parsed = metrics(&get_ok(control, "/metrics"));
    let family = parsed
        .family("heimdall_upstream_sockets_open")
        .expect("no heimdall_upstream_sockets_open in /metrics");
    family.samples.iter().map(|sample| sample.value).sum()
}

/// Send `count` misses (names `first..first + count`) and wait until the
/// server holds `expect_open` upstream sockets.
fn misses(client: &common::Client, control: SocketAddr, first: u16, count: u16, expect_open: f64) {
    for n in first..first + count {
        let name = format!("host-{n}.waiting.test.");
        client.send(&query(n, &name, RecordType::A, Some(1232)));
        // A pace the server's one core and the loopback keep up with.
        if n % 50 == 49 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(
        wait_until(Duration::from_secs(5), || open_sockets(control)
            >= expect_open),
        "{} upstream sockets open, expected {expect_open}",
        open_sockets(control)
    );
}

#[test]
fn an_upstream_socket_waiting_for_its_reply_holds_no_receive_buffer() {
    // Receives the queries and never answers.
    let silent = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    let mut setup = Setup::new(&[silent.local_addr().unwrap()]);
    setup.timeout = "5s";
    setup.attempts = 1;
    let server = setup.start();
    let control = server.control_addr();
    let client = server.client();
    // The first misses grow the core's tables and pools; measured after.
    const WARM: u16 = 100;
    const WAITING: u16 = 800;
    misses(&client, control, 0, WARM, f64::from(WARM));
    std::thread::sleep(Duration::from_millis(100));
    let before = LIVE.load(Ordering::Relaxed);
    misses(&client, control, WARM, WAITING, f64::from(WARM + WAITING));
    std::thread::sleep(Duration::from_millis(100));
    let after = LIVE.load(Ordering::Relaxed);
    let per_miss = (after - before) / WAITING as isize;
    println!("heap per waiting miss: {per_miss} bytes");
    // Everything a waiting miss holds: its in-flight query and its
    // socket's slot (1,205 bytes, 2026-12-04). With a receive task, a
    // channel and a poll per socket it was 2,463 bytes; with the two
    // receive buffers of a ring receive, 10.9 KiB (2026-12-03).
    assert!(
        per_miss < 1600,
        "{per_miss} heap bytes per waiting miss (a task and a poll per socket made 2,463)"
    );
    drop(client);
    server.stop();
}
