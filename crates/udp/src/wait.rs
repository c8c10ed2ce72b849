//! Readiness waits for a thread that owns blocking sockets: `poll` for
//! one descriptor, `ppoll` (nanosecond timeouts) for several.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Wait until `fd` is readable or `timeout` passes (rounded up to a whole
/// millisecond, so a short wait never becomes a busy loop). Returns whether
/// it is readable; an interrupted wait counts as a timeout.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let millis = timeout.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int;
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid, exclusively borrowed pollfd, and a count of 1.
    let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(ready > 0 && pollfd.revents != 0)
}

/// Wait until any of `fds` is readable or `timeout` passes, with
/// nanosecond precision (`ppoll`), for schedules finer than a millisecond.
/// Returns how many are readable (0 on timeout or interruption).
pub fn wait_any_readable(fds: &[RawFd], timeout: Duration) -> io::Result<usize> {
    /// More descriptors than one worker ever has; the rest are not watched.
    const MAX_FDS: usize = 64;
    let mut pollfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_FDS];
    let count = fds.len().min(MAX_FDS);
    for (pollfd, &fd) in pollfds.iter_mut().zip(fds) {
        *pollfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
    }
    let timespec = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `pollfds` holds `count` initialised entries (count <= its
    // length) that the kernel may write `revents` into; the timespec is
    // valid and only read; a null signal mask means "leave it unchanged".
    let ready = unsafe {
        libc::ppoll(
            pollfds.as_mut_ptr(),
            count as libc::nfds_t,
            &timespec,
            std::ptr::null(),
        )
    };
    if ready < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(usize::try_from(ready).unwrap_or(0))
}
