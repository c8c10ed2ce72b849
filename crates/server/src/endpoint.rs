//! The control channels, served by core 0: the HTTP listener on
//! `control.listen` and the unix socket `control.socket` (the one
//! `heimdall ctl` talks to; the same HTTP/1.1 requests). Requests are
//! parsed and routed by heimdall-control and executed across cores over
//! the core mesh (`mesh`); `POST /reload` is handed to the reload driver
//! (`reload`). Over TCP only monitoring (`/metrics`, `/health`) is served
//! without the control token; the socket's file mode is its access
//! control.

use std::cell::Cell;
use std::io;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use glommio::net::{TcpListener, UnixListener};
use heimdall_control::{
    Command, Connection, CoreHealth, Limits, Response, ServerSnapshot, Snapshot, TopQuery,
    render_flush_result, render_health, render_load_result, render_log_level, render_lookup,
    render_metrics, render_reload_result, render_stats_json, render_status, render_top_queries,
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
/// The largest request body on the control socket: a cache dump to load
/// (`heimdall ctl cache load`). The HTTP listener keeps the default 16 KiB.
const SOCKET_MAX_BODY: usize = 256 << 20;
/// How long a cache dump or load may take across the cores (a shard of
/// millions of entries is walked and encoded).
const CACHE_TEXT_TIMEOUT: Duration = Duration::from_secs(60);

/// Which channel a request came in on: what it may ask for.
#[derive(Clone, Copy)]
enum Channel {
    /// The HTTP listener: monitoring, and the rest with the token.
    Http,
    /// The unix socket: everything (its file mode keeps others out).
    Socket,
}

/// The control endpoint of core 0.
pub(crate) struct Endpoint {
    mesh: Rc<CoreMesh>,
    cores: usize,
    reload: Rc<ReloadDriver>,
    connections: Cell<usize>,
    /// `control.metrics_per_core: false`: `/metrics` sums the cores.
    aggregate_cores: bool,
    /// `Bearer <control.token>`: the `Authorization` value that opens
    /// every route over HTTP.
    authorization: Option<String>,
    started: Instant,
}

impl Endpoint {
    pub(crate) fn new(
        mesh: Rc<CoreMesh>,
        cores: usize,
        reload: Rc<ReloadDriver>,
        control: &heimdall_config::ControlConfig,
    ) -> Rc<Self> {
        Rc::new(Self {
            mesh,
            cores,
            reload,
            connections: Cell::new(0),
            aggregate_cores: !control.metrics_per_core,
            authorization: control
                .token
                .as_ref()
                .map(|token| format!("Bearer {token}")),
            started: Instant::now(),
        })
    }

    /// Whether `request`, routed to `command`, may be served on
    /// `channel`; the refusal otherwise.
    fn admit(
        &self,
        channel: Channel,
        command: &Command,
        request: &heimdall_control::Request,
    ) -> Result<(), Response> {
        if matches!(channel, Channel::Socket) || command.is_monitoring() {
            return Ok(());
        }
        let Some(expected) = &self.authorization else {
            return Err(Response::text(
                403,
                "this route is served on the control socket only (heimdall ctl); \
                 set control.token to serve it over HTTP\n",
            ));
        };
        // Compared in full whatever the first difference: the time taken
        // tells nothing about the token.
        let given = request.authorization.as_deref().unwrap_or_default();
        let same = given.len() == expected.len()
            && given
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(Response::text(401, "missing or wrong control token\n")
                .with_header("WWW-Authenticate", "Bearer"))
        }
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
            Command::Status => {
                let snapshot = self.snapshot().await;
                render_status(
                    &snapshot,
                    self.started.elapsed().as_secs(),
                    self.reload.generation(),
                )
            }
            Command::Flush { name, qtype } => {
                let wire = name.as_ref().map(|name| Arc::<[u8]>::from(name.as_wire()));
                let command = CoreCommand::Flush {
                    name: wire,
                    qtype: qtype.map(|qtype| qtype.0),
                };
                let answers = self.mesh.ask_all(command, COLLECT_TIMEOUT).await;
                let removed: usize = answers
                    .iter()
                    .map(|answer| match answer {
                        Some(CoreAnswer::Flushed(n)) => *n,
                        _ => 0,
                    })
                    .sum();
                render_flush_result(name.as_ref(), removed as u64)
            }
            Command::CacheLookup { name, qtype } => {
                let command = CoreCommand::Lookup {
                    name: Arc::from(name.as_wire()),
                    qtype: qtype.0,
                };
                let answers = self.mesh.ask_all(command, COLLECT_TIMEOUT).await;
                let entries: Vec<_> = answers
                    .into_iter()
                    .flat_map(|answer| match answer {
                        Some(CoreAnswer::Entries(entries)) => entries,
                        _ => Vec::new(),
                    })
                    .collect();
                render_lookup(&name, qtype, &entries)
            }
            Command::TopQueries { limit } => {
                let answers = self
                    .mesh
                    .ask_all(CoreCommand::TopQueries, COLLECT_TIMEOUT)
                    .await;
                let mut merged: Vec<(heimdall_wire::WireNameBuf, u16, u64)> = Vec::new();
                for (name, qtype, count) in answers.into_iter().flat_map(|answer| match answer {
                    Some(CoreAnswer::Top(table)) => table,
                    _ => Vec::new(),
                }) {
                    match merged
                        .iter_mut()
                        .find(|(seen, seen_type, _)| *seen_type == qtype && *seen == name)
                    {
                        Some(entry) => entry.2 = entry.2.saturating_add(count),
                        None => merged.push((name, qtype, count)),
                    }
                }
                merged.sort_by_key(|row| std::cmp::Reverse(row.2));
                merged.truncate(limit);
                let rows: Vec<TopQuery> = merged
                    .into_iter()
                    .map(|(name, qtype, queries)| TopQuery {
                        name: heimdall_wire::Name::from_wire(&name)
                            .map_or_else(|_| "?".to_owned(), |name| name.to_string()),
                        qtype: heimdall_wire::RecordType(qtype).to_string(),
                        queries,
                    })
                    .collect();
                render_top_queries(&rows, u64::from(crate::top::SAMPLE_EVERY))
            }
            Command::CacheDump => {
                let answers = self
                    .mesh
                    .ask_all(CoreCommand::Dump, CACHE_TEXT_TIMEOUT)
                    .await;
                let mut text = String::new();
                for answer in answers {
                    if let Some(CoreAnswer::Dumped(dump)) = answer {
                        if text.is_empty() {
                            text = dump;
                        } else {
                            // The header once, from the first core.
                            for line in dump.lines().filter(|line| !line.starts_with(';')) {
                                text.push_str(line);
                                text.push('\n');
                            }
                        }
                    }
                }
                Response::text(200, text)
            }
            Command::CacheLoad { text } => {
                let answers = self
                    .mesh
                    .ask_all(CoreCommand::Load(Arc::from(text)), CACHE_TEXT_TIMEOUT)
                    .await;
                // Every core decodes the same dump: the first answer
                // speaks for all.
                let result = match answers.into_iter().next().flatten() {
                    Some(CoreAnswer::Loaded(result)) => result.map(|n| (n, self.cores)),
                    _ => Err("core 0 did not answer".to_owned()),
                };
                render_load_result(result)
            }
            Command::LogLevel { level } => {
                let previous = log::max_level().to_string().to_lowercase();
                let filter = level.parse().unwrap_or(log::LevelFilter::Info);
                log::set_max_level(filter);
                log::warn!("log level changed from {previous} to {level} (control)");
                render_log_level(&previous, &level)
            }
            Command::Reload => render_reload_result(self.reload.reload(self.cores).await),
        }
    }
}

/// Accept control connections on the HTTP listener until the server
/// stops.
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
        // A connection that sends nothing is closed, not kept forever.
        if let Err(err) = stream.set_read_timeout(Some(IDLE_TIMEOUT)) {
            log::debug!("control endpoint: {err}");
            continue;
        }
        spawn_connection(&endpoint, stream, Channel::Http);
    }
}

/// Accept connections on the control socket until the server stops.
pub(crate) async fn serve_socket(
    endpoint: Rc<Endpoint>,
    listener: UnixListener,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept().await {
            Ok(stream) => spawn_connection(&endpoint, stream, Channel::Socket),
            Err(err) => {
                log::debug!("control socket: accept error: {err}");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serve `stream` on its own task, within [`MAX_CONNECTIONS`].
fn spawn_connection<S>(endpoint: &Rc<Endpoint>, stream: S, channel: Channel)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    if endpoint.connections.get() >= MAX_CONNECTIONS {
        log::debug!("control endpoint: {MAX_CONNECTIONS} connections open; closing a new one");
        return;
    }
    endpoint.connections.set(endpoint.connections.get() + 1);
    let endpoint = Rc::clone(endpoint);
    glommio::spawn_local(async move {
        let served = connection(&endpoint, stream, channel);
        // The TCP stream has its own read timeout; this bounds the socket's
        // (and a peer that never reads its answer).
        match crate::stream::until(Instant::now() + IDLE_TIMEOUT * 4, served).await {
            Some(Err(err)) => log::debug!("control endpoint: connection ended: {err}"),
            Some(Ok(())) => {}
            None => log::debug!("control endpoint: connection timed out"),
        }
        endpoint.connections.set(endpoint.connections.get() - 1);
    })
    .detach();
}

/// Create the control socket at `path`, mode 0600: a stale socket from
/// an earlier run is replaced, but one a live process answers on is left
/// alone (an error). The socket is bound under a temporary name, given
/// its mode, then renamed into place, so no one can connect while it is
/// still open to others.
pub(crate) fn bind_control_socket(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process answers on it (is another heimdall running?)",
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener =
        UnixListener::bind(&temporary).map_err(|err| io::Error::other(err.to_string()))?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(err) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(err);
    }
    Ok(listener)
}

/// Serve one connection: requests in order (pipelining works), each
/// answered before the next is read from the buffer.
async fn connection<S>(endpoint: &Endpoint, mut stream: S, channel: Channel) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = match channel {
        Channel::Http => Limits::default(),
        Channel::Socket => Limits {
            max_body_bytes: SOCKET_MAX_BODY,
            ..Limits::default()
        },
    };
    let mut parser = Connection::new(limits);
    let mut buf = vec![0u8; 8192];
    loop {
        let (response, keep_alive) = match parser.next_request() {
            Ok(Some(request)) => {
                let admitted = route(&request).and_then(|command| {
                    endpoint
                        .admit(channel, &command, &request)
                        .map(|()| command)
                });
                let response = match admitted {
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
