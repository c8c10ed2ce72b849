//! SIGINT/SIGTERM as a flag the binary polls.
//!
//! The handler only stores to an atomic, which is async-signal-safe; all
//! the real shutdown work (stopping threads, printing counters) happens on
//! the main thread once it sees the flag.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Route SIGINT and SIGTERM to the stop flag (replacing their default
/// action, which would kill the process before it prints its counters).
pub fn install() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: sigaction is a plain C struct; zeroed is a valid "no
        // flags, empty mask" start, and the mask is then initialised with
        // sigemptyset as POSIX asks.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `action.sa_mask` is a valid, exclusively borrowed sigset_t.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: the handler only performs an atomic store, which is
        // async-signal-safe; `action` is fully initialised and the old
        // action is not requested (null).
        let result = unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether SIGINT or SIGTERM has arrived since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The flag itself, for code that polls an `AtomicBool` (such as
/// [`crate::load::run`]).
pub fn flag() -> &'static AtomicBool {
    &REQUESTED
}
