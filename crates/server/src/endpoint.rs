//! The HTTP control endpoint, served by core 0: accepts connections on
//! `control.listen`, parses requests with heimdall-control, executes the
//! commands across cores (see `control`), and drives hot reloads, from
//! `POST /reload` or from SIGHUP (a flag the binary's signal handler
//! sets).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::net::{TcpListener, TcpStream};
use heimdall_config::Config;
use heimdall_control::{
    Command, Connection, CoreHealth, Limits, ReloadReport, Response, Snapshot, render_flush_result,
    render_health, render_metrics, render_reload_result, render_stats_json, route,
};

use crate::control::{CoreAnswer, CoreCommand, ask_all};
use crate::core::CoreState;
use crate::reload::{ReloadSource, build_resolver_config, plan_changes};

/// `GET /health` fails unless every core answers the ping within this.
pub const HEALTH_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a request waits for the cores' counters or flush results.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a reload waits for every core to take the new snapshot.
const RECONFIGURE_TIMEOUT: Duration = Duration::from_secs(5);
/// Control connections open at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 16;
/// A connection with no complete request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the SIGHUP flag is checked.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// What the endpoint needs besides the core's own state.
pub(crate) struct Endpoint {
    pub(crate) state: Rc<CoreState>,
    pub(crate) cores: usize,
    pub(crate) reload: ReloadDriver,
    connections: Cell<usize>,
}

/// Hot reload: the source of new configurations and what is running.
pub(crate) struct ReloadDriver {
    source: Option<ReloadSource>,
    running: RefCell<Config>,
    generation: Cell<u64>,
    busy: Cell<bool>,
}

impl ReloadDriver {
    pub(crate) fn new(source: Option<ReloadSource>, running: Config) -> Self {
        Self {
            source,
            running: RefCell::new(running),
            generation: Cell::new(0),
            busy: Cell::new(false),
        }
    }
}

impl Endpoint {
    pub(crate) fn new(state: Rc<CoreState>, cores: usize, reload: ReloadDriver) -> Rc<Self> {
        Rc::new(Self {
            state,
            cores,
            reload,
            connections: Cell::new(0),
        })
    }

    /// Reload the configuration and give every core its new snapshot.
    /// A failure leaves everything as it was.
    pub(crate) async fn reload(&self) -> Result<ReloadReport, String> {
        let driver = &self.reload;
        let Some(source) = driver.source.clone() else {
            return Err("this server was started without a configuration source".to_string());
        };
        if driver.busy.replace(true) {
            return Err("a reload is already in progress".to_string());
        }
        let cores = self.cores;
        // Reading zones and block lists can take a while: not on this
        // executor's thread, which serves queries.
        let built = glommio::executor()
            .spawn_blocking(move || {
                let config = source()?;
                let resolver_config =
                    build_resolver_config(&config, cores).map_err(|err| err.to_string())?;
                Ok::<_, String>((config, resolver_config))
            })
            .await;
        let result = match built {
            Ok((config, resolver_config)) => {
                let (changes, effective) = plan_changes(&driver.running.borrow(), &config);
                let command = CoreCommand::Reconfigure(Arc::new(resolver_config));
                let answers = ask_all(&self.state, cores, command, RECONFIGURE_TIMEOUT).await;
                let mut purged = 0usize;
                let mut failures = Vec::new();
                for (core, answer) in answers.into_iter().enumerate() {
                    match answer {
                        Some(CoreAnswer::Reconfigured(Ok(n))) => purged += n,
                        Some(CoreAnswer::Reconfigured(Err(err))) => {
                            failures.push(format!("core {core}: {err}"));
                        }
                        _ => failures.push(format!("core {core}: did not answer in time")),
                    }
                }
                if failures.is_empty() {
                    *driver.running.borrow_mut() = effective;
                    let generation = driver.generation.get() + 1;
                    driver.generation.set(generation);
                    let mut changes = changes;
                    if purged > 0 {
                        changes.push(format!(
                            "cache: {purged} entries the new policy answers differently were dropped"
                        ));
                    }
                    Ok(ReloadReport {
                        generation,
                        changes,
                    })
                } else {
                    // Every core validates the same snapshot, so this means
                    // a core is stuck; the ones that took it keep it.
                    Err(format!("reload incomplete: {}", failures.join("; ")))
                }
            }
            Err(err) => Err(err),
        };
        driver.busy.set(false);
        match &result {
            Ok(report) => log::info!(
                "configuration reloaded (generation {}): {}",
                report.generation,
                if report.changes.is_empty() {
                    "no changes".to_string()
                } else {
                    report.changes.join("; ")
                }
            ),
            Err(err) => log::error!("reload failed, the running configuration stays: {err}"),
        }
        result
    }

    async fn snapshot(&self) -> Snapshot {
        let answers = ask_all(
            &self.state,
            self.cores,
            CoreCommand::Snapshot,
            COLLECT_TIMEOUT,
        )
        .await;
        Snapshot {
            cores: answers
                .into_iter()
                .filter_map(|answer| match answer {
                    Some(CoreAnswer::Snapshot(snapshot)) => Some(*snapshot),
                    _ => None,
                })
                .collect(),
        }
    }

    async fn execute(&self, command: Command) -> Response {
        match command {
            Command::Metrics => render_metrics(&self.snapshot().await),
            Command::Stats => render_stats_json(&self.snapshot().await),
            Command::Health => {
                let answers =
                    ask_all(&self.state, self.cores, CoreCommand::Ping, HEALTH_TIMEOUT).await;
                let health: Vec<CoreHealth> = answers
                    .iter()
                    .enumerate()
                    .map(|(core, answer)| CoreHealth {
                        core,
                        answered: matches!(answer, Some(CoreAnswer::Pong)),
                    })
                    .collect();
                render_health(&health)
            }
            Command::Flush { name } => {
                let wire = name.as_ref().map(|name| Arc::<[u8]>::from(name.as_wire()));
                let answers = ask_all(
                    &self.state,
                    self.cores,
                    CoreCommand::Flush(wire),
                    COLLECT_TIMEOUT,
                )
                .await;
                let removed: usize = answers
                    .iter()
                    .map(|answer| match answer {
                        Some(CoreAnswer::Flushed(n)) => *n,
                        _ => 0,
                    })
                    .sum();
                render_flush_result(name.as_ref(), removed as u64)
            }
            Command::Reload => render_reload_result(self.reload().await),
        }
    }
}

/// Accept control connections until the server stops.
pub(crate) async fn serve(endpoint: Rc<Endpoint>, listener: TcpListener, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(err) => {
                log::debug!("control endpoint: accept error: {err}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if endpoint.connections.get() >= MAX_CONNECTIONS {
            log::debug!("control endpoint: {MAX_CONNECTIONS} connections open; closing a new one");
            continue;
        }
        endpoint.connections.set(endpoint.connections.get() + 1);
        let endpoint = Rc::clone(&endpoint);
        glommio::spawn_local(async move {
            if let Err(err) = connection(&endpoint, stream).await {
                log::debug!("control endpoint: connection ended: {err}");
            }
            endpoint.connections.set(endpoint.connections.get() - 1);
        })
        .detach();
    }
}

/// Serve one connection: requests in order (pipelining works), each
/// answered before the next is read from the buffer.
async fn connection(endpoint: &Endpoint, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut parser = Connection::new(Limits::default());
    let mut buf = vec![0u8; 8192];
    loop {
        let (response, keep_alive) = match parser.next_request() {
            Ok(Some(request)) => {
                let response = match route(&request) {
                    Ok(command) => endpoint.execute(command).await,
                    Err(response) => response,
                };
                (response, request.keep_alive)
            }
            Ok(None) => {
                let read = stream.read(&mut buf).await?;
                if read == 0 {
                    return Ok(());
                }
                parser.feed(buf.get(..read).unwrap_or_default());
                continue;
            }
            Err(err) => (err.response(), false),
        };
        let (bytes, close) = response.encode(keep_alive);
        stream.write_all(&bytes).await?;
        if close {
            stream.close().await?;
            return Ok(());
        }
    }
}

/// Reload whenever the flag (set by the binary's SIGHUP handler) is up,
/// until the server stops.
pub(crate) async fn watch_reload_signal(
    endpoint: Rc<Endpoint>,
    flag: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        glommio::timer::sleep(SIGNAL_POLL).await;
        if flag.swap(false, Ordering::Relaxed) {
            log::info!("SIGHUP: reloading the configuration");
            // The outcome is logged by `reload`.
            let _ = endpoint.reload().await;
        }
    }
}
