//! The process's own resources for `/metrics` (`process_*`), read from
//! `/proc/self` at scrape time: the parsing is pure functions of the
//! files' text, the reading one thin function. Not on the query path.

use heimdall_control::ProcessSnapshot;

/// The kernel's clock tick for `/proc` times (`USER_HZ`): 100 on every
/// Linux architecture, whatever the kernel's internal HZ.
const USER_HZ: u64 = 100;

/// Read the process's resources; `None` where `/proc` is not there.
pub(crate) fn read() -> Option<ProcessSnapshot> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let stat = parse_stat(&stat)?;
    let boot_time = parse_boot_time(&boot)?;
    Some(ProcessSnapshot {
        resident_memory_bytes: status_kib(&status, "VmRSS:").unwrap_or(0) * 1024,
        virtual_memory_bytes: status_kib(&status, "VmSize:").unwrap_or(0) * 1024,
        // The directory listing's own descriptor is counted too.
        open_fds: open_fds.saturating_sub(1),
        max_fds: parse_max_fds(&limits).unwrap_or(0),
        cpu_micros: (stat.utime + stat.stime) * (1_000_000 / USER_HZ),
        start_time_unix_micros: boot_time * 1_000_000 + stat.starttime * (1_000_000 / USER_HZ),
    })
}

/// The fields of `/proc/self/stat` the metrics use, in clock ticks.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    /// Since boot.
    starttime: u64,
}

/// `/proc/self/stat`: the command name is in parentheses and may hold
/// spaces and parentheses, so the fields are counted after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let after = text.get(text.rfind(')')? + 1..)?;
    // Field 3 (state) is the first after the name; utime is field 14.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        starttime: field(22)?,
    })
}

/// `btime` of `/proc/stat`: boot time, seconds since the Unix epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// A `Key:   N kB` line of `/proc/self/status`.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(key))?;
    line.get(key.len()..)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let soft = line
        .get("Max open files".len()..)?
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let text = "4242 (heim) dall (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    250 75 0 0 20 0 3 0 123456 1000000 2500 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                utime: 250,
                stime: 75,
                starttime: 123_456
            })
        );
        assert_eq!(parse_stat("12 (short) S 1 2"), None);
    }

    #[test]
    fn status_limits_and_boot_time() {
        let status = "Name:\theimdall\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(2048));
        assert_eq!(status_kib(status, "VmSize:"), Some(123_456));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        assert_eq!(
            parse_boot_time("cpu  1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_is_read() {
        let process = read().unwrap();
        assert!(process.resident_memory_bytes > 0);
        assert!(process.open_fds >= 3, "{process:?}");
        assert!(process.max_fds >= process.open_fds);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        // Started within the last day, and not in the future (boot time
        // and ticks are whole seconds and 10 ms).
        assert!(process.start_time_unix_micros <= now + 1_000_000);
        assert!(process.start_time_unix_micros + 86_400_000_000 > now);
    }
}
