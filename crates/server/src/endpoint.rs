//! The HTTP control endpoint, served by core 0: accepts connections on
//! `control.listen`, parses requests with heimdall-control, and executes
//! the commands across cores over the core mesh (`mesh`); `POST /reload`
//! is handed to the reload driver (`reload`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_lite::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::net::{TcpListener, TcpStream};
use heimdall_control::{
    Command, Connection, CoreHealth, Limits, Response, ServerSnapshot, Snapshot,
    render_flush_result, render_health, render_metrics, render_reload_result, render_stats_json,
    route,
};

use crate::mesh::{CoreAnswer, CoreCommand, CoreMesh};
use crate::reload::ReloadDriver;

/// `GET /health` fails unless every core answers the ping within this.
pub const HEALTH_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a request waits for the cores' counters or flush results.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Control connections open at once; more are closed at accept.
const MAX_CONNECTIONS: usize = 16;
/// A connection with no complete request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The control endpoint of core 0.
pub(crate) struct Endpoint {
    mesh: Rc<CoreMesh>,
    cores: usize,
    reload: Rc<ReloadDriver>,
    connections: Cell<usize>,
    /// `control.metrics_per_core: false`: `/metrics` sums the cores.
    aggregate_cores: bool,
}

impl Endpoint {
    pub(crate) fn new(
        mesh: Rc<CoreMesh>,
        cores: usize,
        reload: Rc<ReloadDriver>,
        metrics_per_core: bool,
    ) -> Rc<Self> {
        Rc::new(Self {
            mesh,
            cores,
            reload,
            connections: Cell::new(0),
            aggregate_cores: !metrics_per_core,
        })
    }

    async fn snapshot(&self) -> Snapshot {
        let answers = self
            .mesh
            .ask_all(CoreCommand::Snapshot, COLLECT_TIMEOUT)
            .await;
        let reloads = self.reload.outcomes();
        // /proc is memory, but the fd directory of a busy server is
        // thousands of entries: off this executor, which serves queries.
        let process = glommio::executor()
            .spawn_blocking(crate::process::read)
            .await;
        Snapshot {
            cores: answers
                .into_iter()
                .filter_map(|answer| match answer {
                    Some(CoreAnswer::Snapshot(snapshot)) => Some(*snapshot),
                    _ => None,
                })
                .collect(),
            server: ServerSnapshot {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                commit: option_env!("HEIMDALL_BUILD_COMMIT")
                    .filter(|commit| !commit.is_empty())
                    .map(str::to_owned),
                rustc: option_env!("HEIMDALL_BUILD_RUSTC")
                    .filter(|rustc| !rustc.is_empty())
                    .map(str::to_owned),
                reloads_ok: reloads.succeeded,
                reloads_failed: reloads.failed,
                last_reload_success_unix: reloads.last_success_unix,
            },
            process,
            aggregate_cores: self.aggregate_cores,
        }
    }

    async fn execute(&self, command: Command) -> Response {
        match command {
            Command::Metrics => render_metrics(&self.snapshot().await),
            Command::Stats => render_stats_json(&self.snapshot().await),
            Command::Health => {
                let answers = self.mesh.ask_all(CoreCommand::Ping, HEALTH_TIMEOUT).await;
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
                let answers = self
                    .mesh
                    .ask_all(CoreCommand::Flush(wire), COLLECT_TIMEOUT)
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
            Command::Reload => render_reload_result(self.reload.reload(self.cores).await),
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
                let Some(bytes) = buf.get(..read) else {
                    // A read never reports more than the buffer holds.
                    return Err(std::io::Error::other("read beyond the buffer"));
                };
                parser.feed(bytes);
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
