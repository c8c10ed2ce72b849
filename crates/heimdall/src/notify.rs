//! systemd's service notification protocol (sd_notify(3)), written
//! directly: one datagram per state change to the unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). The
//! server's lifecycle events ([`ServerEvent`]) become `READY=1`,
//! `RELOADING=1` with `MONOTONIC_USEC=`, `STATUS=` lines and `WATCHDOG=1`
//! beats; the watchdog interval is half of `$WATCHDOG_USEC`.
//!
//! Without `$NOTIFY_SOCKET` (not started by systemd with `Type=notify`)
//! nothing is sent. A send that fails is logged once and otherwise
//! ignored: the service manager's view is not worth stopping for.

use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use heimdall_server::{EventSink, ServerEvent};

/// A connected notification socket.
pub(crate) struct Notifier {
    socket: UnixDatagram,
    /// A failed send is logged once.
    failed: AtomicBool,
}

impl Notifier {
    /// The socket `$NOTIFY_SOCKET` names; `None` when it is unset or
    /// empty, an error when it cannot be used.
    pub(crate) fn from_env() -> Option<io::Result<Self>> {
        let target = std::env::var_os("NOTIFY_SOCKET")?;
        let target = target.to_str()?.to_owned();
        if target.is_empty() {
            return None;
        }
        Some(Self::connect(&target))
    }

    /// Connect to `target`: an absolute path, or `@name` (abstract).
    pub(crate) fn connect(target: &str) -> io::Result<Self> {
        let address = match target.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None if target.starts_with('/') => SocketAddr::from_pathname(target)?,
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("NOTIFY_SOCKET={target:?} is neither a path nor @abstract"),
                ));
            }
        };
        let socket = UnixDatagram::unbound()?;
        socket.connect_addr(&address)?;
        // A full queue at the manager must not stall core 0.
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            failed: AtomicBool::new(false),
        })
    }

    /// Send `state` (newline-separated `KEY=value` assignments).
    pub(crate) fn notify(&self, state: &str) {
        if let Err(err) = self.socket.send(state.as_bytes())
            && !self.failed.swap(true, Ordering::Relaxed)
        {
            log::warn!("sd_notify: cannot tell the service manager ({err}); carrying on");
        }
    }
}

/// The watchdog interval systemd asks for: half of `$WATCHDOG_USEC`, when
/// it is set and `$WATCHDOG_PID` (if set) is this process.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    watchdog_interval_from(
        std::env::var("WATCHDOG_USEC").ok().as_deref(),
        std::env::var("WATCHDOG_PID").ok().as_deref(),
        std::process::id(),
    )
}

fn watchdog_interval_from(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(me)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|&usec| usec > 0)?;
    Some(Duration::from_micros(usec / 2))
}

/// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC=` wants it
/// (systemd compares it with its own clock to order the reload).
fn monotonic_usec() -> Option<u64> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    let secs = u64::try_from(now.tv_sec()).ok()?;
    let nanos = u64::try_from(now.tv_nsec()).ok()?;
    Some(secs.saturating_mul(1_000_000).saturating_add(nanos / 1000))
}

/// A `STATUS=` value: one line.
fn status_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The message for `event`, given the serving cores (known from
/// [`ServerEvent::Ready`] on).
pub(crate) fn message(event: &ServerEvent, cores: usize) -> String {
    let serving = |extra: &str| format!("serving on {cores} core(s){extra}");
    match event {
        ServerEvent::Ready { cores } => {
            format!("READY=1\nSTATUS=serving on {cores} core(s)")
        }
        ServerEvent::Reloading => {
            let mut message = String::from("RELOADING=1\n");
            if let Some(usec) = monotonic_usec() {
                message.push_str(&format!("MONOTONIC_USEC={usec}\n"));
            }
            message.push_str("STATUS=reloading the configuration");
            message
        }
        ServerEvent::Reloaded(Ok(generation)) => format!(
            "READY=1\nSTATUS={}",
            serving(&format!("; configuration generation {generation}"))
        ),
        ServerEvent::Reloaded(Err(why)) => format!(
            "READY=1\nSTATUS={}",
            status_line(&serving(&format!(
                "; the last reload failed, the previous configuration stays: {why}"
            )))
        ),
        ServerEvent::Alive => "WATCHDOG=1".to_owned(),
        ServerEvent::Unhealthy { late } => {
            let late: Vec<String> = late.iter().map(ToString::to_string).collect();
            format!(
                "STATUS=cores not answering the health ping: {}",
                late.join(",")
            )
        }
    }
}

/// The server's event sink: every event becomes its message.
pub(crate) fn sink(notifier: Arc<Notifier>) -> EventSink {
    let cores = AtomicUsize::new(0);
    Arc::new(move |event: ServerEvent| {
        if let ServerEvent::Ready { cores: n } = &event {
            cores.store(*n, Ordering::Relaxed);
        }
        notifier.notify(&message(&event, cores.load(Ordering::Relaxed)));
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_watchdog_interval_is_half_of_watchdog_usec_for_this_pid() {
        let half = Some(Duration::from_secs(5));
        assert_eq!(watchdog_interval_from(Some("10000000"), None, 7), half);
        assert_eq!(watchdog_interval_from(Some("10000000"), Some("7"), 7), half);
        assert_eq!(watchdog_interval_from(Some("10000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval_from(None, Some("7"), 7), None);
    }

    #[test]
    fn reload_messages_carry_the_monotonic_clock_and_one_status_line() {
        let reloading = message(&ServerEvent::Reloading, 2);
        assert!(
            reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
            "{reloading}"
        );
        let usec: u64 = reloading
            .lines()
            .find_map(|line| line.strip_prefix("MONOTONIC_USEC="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
        let failed = message(&ServerEvent::Reloaded(Err("a\nb".to_owned())), 2);
        assert_eq!(failed.lines().count(), 2, "{failed}");
        assert!(failed.starts_with("READY=1\nSTATUS=serving on 2 core(s); the last reload failed"));
        assert_eq!(message(&ServerEvent::Alive, 2), "WATCHDOG=1");
    }

    #[test]
    fn messages_reach_a_bound_socket_path_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("heimdall-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        Notifier::connect(path.to_str().unwrap())
            .unwrap()
            .notify("READY=1");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let name = format!("heimdall-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        Notifier::connect(&format!("@{name}"))
            .unwrap()
            .notify("WATCHDOG=1");
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        assert!(Notifier::connect("relative").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
