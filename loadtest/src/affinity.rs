//! Pinning threads to CPUs (`sched_setaffinity`) and CPU-list parsing.
#![allow(unsafe_code)]

use std::io;

/// The most CPU ids a list may name (the size of `cpu_set_t`).
pub const MAX_CPU: usize = 1024;

/// Pin the calling thread to exactly `cpus` (all, when several).
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is a plain bit array; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= MAX_CPU {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is out of range (at most {})", MAX_CPU - 1),
            ));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above) and `set` is a
        // valid, exclusively borrowed cpu_set_t.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; `set` is initialised and its
    // true size is passed.
    let result = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ask the kernel to wake this thread's timed waits within 1 µs of their
/// deadline (the default slack is 50 µs), so an open-loop schedule is kept
/// closely at moderate rates. Failure is harmless and ignored.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long argument (the slack
    // in nanoseconds) and touches only the calling thread's settings.
    let _ignored = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
}

/// Parse a CPU list such as `0`, `0,2` or `0-3,6`.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first.trim(), last.trim()),
            None => (part, part),
        };
        let parse = |value: &str| {
            value
                .parse::<usize>()
                .ok()
                .filter(|&cpu| cpu < MAX_CPU)
                .ok_or_else(|| format!("bad CPU {value:?} in CPU list {text:?}"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(format!("bad range {part:?} in CPU list {text:?}"));
        }
        for cpu in first..=last {
            if !cpus.contains(&cpu) {
                cpus.push(cpu);
            }
        }
    }
    if cpus.is_empty() {
        return Err(format!("empty CPU list {text:?}"));
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0"), Ok(vec![0]));
        assert_eq!(parse_cpu_list("0,2"), Ok(vec![0, 2]));
        assert_eq!(parse_cpu_list("0-3, 6,2"), Ok(vec![0, 1, 2, 3, 6]));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
        assert!(parse_cpu_list("5000").is_err());
    }

    #[test]
    fn pinning_to_an_allowed_cpu_works() {
        // Run in a scratch thread so the test harness thread keeps its mask.
        std::thread::spawn(|| {
            // SAFETY-free check: CPU 0 may be excluded by a cpuset; pick the
            // first CPU this process may use.
            let cpu = (0..MAX_CPU)
                .find(|&cpu| pin_current_thread(&[cpu]).is_ok())
                .unwrap();
            assert!(pin_current_thread(&[cpu]).is_ok());
            tighten_timer_slack();
        })
        .join()
        .unwrap();
    }
}
