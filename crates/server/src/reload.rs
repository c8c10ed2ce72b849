//! Hot reload, all of it: what a reload can and cannot change
//! ([`plan_changes`]), building the new snapshot from a validated
//! [`Config`] ([`build_resolver_config`]), the driver that runs a reload
//! ([`ReloadDriver`], from `POST /reload` or SIGHUP), the SIGHUP requests
//! ([`serve_reload_requests`]) and the swap on each core ([`swap`]).
//!
//! A reload builds the new [`ResolverConfig`] (zones and block lists
//! included) on a blocking thread, off the query path, checks it by
//! building a throwaway resolver, and only then hands the one read-only
//! snapshot to every core over the core mesh. Sections that shape the
//! runtime itself (sockets, cores, channels, the control endpoint, the
//! cache file, the logger, dnstap) keep their running values and are
//! reported as needing a restart.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::channels::local_channel::LocalReceiver;
use heimdall_cache::CachePolicy;
use heimdall_config::{Config, Steering};
use heimdall_control::ReloadReport;
use heimdall_resolver::{Resolver, ResolverConfig};

use crate::error::ServerError;
use crate::events::{EventSink, ServerEvent};
use crate::mesh::{CoreAnswer, CoreCommand, CoreMesh};
use crate::policy::{CookieRuntime, build_cookies, build_dnssec, build_policy};
use crate::tickets::{TicketKeys, TicketRotation};

/// How long a reload waits for every core to take the new snapshot.
const RECONFIGURE_TIMEOUT: Duration = Duration::from_secs(5);

/// Re-reads the configuration for a reload: the binary passes one that
/// loads its `--config` file again. The error is shown to the operator.
pub type ReloadSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// The resolver settings of `config`, without the policy (see
/// [`build_resolver_config`]).
fn resolver_config(config: &Config) -> ResolverConfig {
    let secs = |duration: Duration| u32::try_from(duration.as_secs()).unwrap_or(u32::MAX);
    let millis = |duration: Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    ResolverConfig {
        upstreams: config.upstream.servers.clone(),
        strategy: config.upstream.strategy,
        upstream_timeout_ms: millis(config.upstream.timeout),
        attempts: config.upstream.attempts,
        case_randomization: config.upstream.qname_case_randomization,
        cookies: config.upstream.cookies,
        cache_bytes: config.cache.shard_size,
        cache_policy: CachePolicy {
            min_ttl: secs(config.cache.min_ttl),
            max_ttl: secs(config.cache.max_ttl),
            negative_max_ttl: secs(config.cache.negative_max_ttl),
            failure_ttl: secs(config.cache.servfail_ttl),
            stale_window: secs(config.cache.stale_max_age),
        },
        stale_client_timeout_ms: millis(config.cache.stale_client_timeout),
        prefetch_threshold_percent: config.cache.prefetch_threshold,
        prefetch_min_hits: config.cache.prefetch_min_hits,
        hints: hints_sent(config),
        ..ResolverConfig::default()
    }
}

/// Whether cores copy their upstream answers to each other: hints are on
/// and the queries are spread by flow (with name steering each name has one
/// core, and a copy would never be asked for). A single core has no one to
/// send them to; the mesh is not built then either.
pub(crate) fn hints_sent(config: &Config) -> bool {
    config.hints.enabled && config.server.steering == Steering::Flow
}

/// The full resolver settings for `cores` cores: [`resolver_config`] plus
/// the policy (zone files and block lists are read here) and the server
/// cookies (with the runtime's secret and clock), checked by building a
/// resolver from them.
pub(crate) fn build_resolver_config(
    config: &Config,
    cores: usize,
    cookies: &CookieRuntime,
) -> Result<ResolverConfig, ServerError> {
    let mut resolver_config = resolver_config(config);
    resolver_config.policy = build_policy(config, cores)?;
    resolver_config.policy.cookies = build_cookies(config, cores, cookies)?;
    resolver_config.dnssec = build_dnssec(config, cookies)?;
    Resolver::new(resolver_config.clone())?;
    Ok(resolver_config)
}

/// What a reload from `old` to `new` does: notes on the settings that
/// take effect, and on those that keep their running value until a
/// restart. Returns the notes and the configuration now in force (the
/// new one, with the restart-only sections kept from `old`).
pub(crate) fn plan_changes(old: &Config, new: &Config) -> (Vec<String>, Config) {
    let mut changes = Vec::new();
    let mut effective = new.clone();
    let restart_only = [
        ("server", old.server != new.server),
        ("hints", old.hints != new.hints),
        ("tcp", old.tcp != new.tcp),
        ("control", old.control != new.control),
        ("cache.persist", old.cache.persist != new.cache.persist),
        ("log", old.log != new.log),
        ("dnstap", old.dnstap != new.dnstap),
        ("tls", old.tls != new.tls),
        (
            "upstream.tls_ca_file",
            old.upstream.tls_ca_file != new.upstream.tls_ca_file,
        ),
    ];
    for (section, changed) in restart_only {
        if changed {
            changes.push(format!(
                "{section}: changed in the file, needs a restart (the running value stays)"
            ));
        }
    }
    effective.server = old.server.clone();
    effective.hints = old.hints.clone();
    effective.tcp = old.tcp.clone();
    effective.control = old.control.clone();
    effective.cache.persist = old.cache.persist.clone();
    effective.log = old.log.clone();
    effective.dnstap = old.dnstap.clone();
    effective.tls = old.tls.clone();
    effective.upstream.tls_ca_file = old.upstream.tls_ca_file.clone();
    let applied = [
        ("upstream", {
            let mut old_upstream = old.upstream.clone();
            old_upstream.tls_ca_file = new.upstream.tls_ca_file.clone();
            old_upstream != new.upstream
        }),
        ("cache", {
            let mut old_cache = old.cache.clone();
            old_cache.persist = new.cache.persist.clone();
            old_cache != new.cache
        }),
        ("local", old.local != new.local),
        ("blocklist", old.blocklist != new.blocklist),
        ("acl", old.acl != new.acl),
        ("rate_limit", old.rate_limit != new.rate_limit),
        ("cookies", old.cookies != new.cookies),
        ("dnssec", old.dnssec != new.dnssec),
    ];
    for (section, changed) in applied {
        if changed {
            changes.push(format!("{section}: applied"));
        }
    }
    // Zone and list files may change on disk without the YAML changing;
    // they are re-read on every reload anyway.
    if !new.local.zones.is_empty() || !new.blocklist.files.is_empty() {
        changes.push("zone and block list files: re-read".to_string());
    }
    if !new.dnssec.trust_anchors.is_empty() {
        changes.push("trust anchor files: re-read".to_string());
    }
    (changes, effective)
}

/// The swap on one core: its resolver takes `config` (hot reload); the
/// cache stays. Returns the entries purged because the new policy
/// answers them differently, or why the snapshot was refused.
pub(crate) fn swap(
    resolver: &mut Resolver,
    config: &ResolverConfig,
    now: heimdall_cache::Timestamp,
) -> Result<usize, String> {
    resolver
        .reconfigure(ResolverConfig::clone(config), now)
        .map(|report| report.purged)
        .map_err(|err| err.to_string())
}

/// Runs reloads on the control core: the source of new configurations,
/// what is running, and the mesh that carries the snapshot to every core.
pub(crate) struct ReloadDriver {
    source: Option<ReloadSource>,
    /// The random cookie secret and the clock epoch, the same for every
    /// snapshot this process builds.
    cookies: CookieRuntime,
    running: RefCell<Config>,
    generation: Cell<u64>,
    busy: Cell<bool>,
    mesh: Rc<CoreMesh>,
    outcomes: Cell<ReloadOutcomes>,
    /// Told when a reload starts and ends (systemd's RELOADING=1 and
    /// READY=1).
    events: Option<EventSink>,
    /// The encrypted listeners' certificate, re-read by every reload.
    certificate: Option<Arc<crate::tls::CertificateSlot>>,
    /// The session-ticket keys (tickets on): replaced when a reload finds
    /// a new certificate.
    tickets: Option<Rc<TicketRotation>>,
}

/// Reloads done and failed, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReloadOutcomes {
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    /// Seconds since the Unix epoch of the last success.
    pub(crate) last_success_unix: Option<u64>,
}

impl ReloadDriver {
    pub(crate) fn new(
        source: Option<ReloadSource>,
        running: Config,
        mesh: Rc<CoreMesh>,
        cookies: CookieRuntime,
        events: Option<EventSink>,
    ) -> Self {
        Self {
            source,
            cookies,
            running: RefCell::new(running),
            generation: Cell::new(0),
            busy: Cell::new(false),
            mesh,
            outcomes: Cell::new(ReloadOutcomes::default()),
            events,
            certificate: None,
            tickets: None,
        }
    }

    fn report(&self, event: ServerEvent) {
        if let Some(sink) = &self.events {
            sink(event);
        }
    }

    /// The configuration generation in force: 0 at start, one more per
    /// successful reload.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// The driver, re-reading `certificate` (the files named by the
    /// running `tls:` section) at every reload, and replacing the ticket
    /// keys of `tickets` when the certificate changed.
    pub(crate) fn with_certificate(
        mut self,
        certificate: Option<Arc<crate::tls::CertificateSlot>>,
        tickets: Option<Rc<TicketRotation>>,
    ) -> Self {
        self.certificate = certificate;
        self.tickets = tickets;
        self
    }

    /// Reloads so far (a request refused because one was running is
    /// neither).
    pub(crate) fn outcomes(&self) -> ReloadOutcomes {
        self.outcomes.get()
    }

    /// Reload the configuration and give every core its new snapshot.
    /// A failure leaves everything as it was.
    pub(crate) async fn reload(&self, cores: usize) -> Result<ReloadReport, String> {
        let Some(source) = self.source.clone() else {
            let mut outcomes = self.outcomes.get();
            outcomes.failed += 1;
            self.outcomes.set(outcomes);
            let why = "this server was started without a configuration source".to_string();
            self.report(ServerEvent::Reloading);
            self.report(ServerEvent::Reloaded(Err(why.clone())));
            return Err(why);
        };
        if self.busy.replace(true) {
            // The running reload reports its own end.
            return Err("a reload is already in progress".to_string());
        }
        self.report(ServerEvent::Reloading);
        // Reading zones and block lists can take a while: not on this
        // executor's thread, which serves queries.
        let cookies = self.cookies.clone();
        // The certificate files of the running `tls:` section (a changed
        // section needs a restart), re-read: certbot renews in place.
        let certificate = self.certificate.clone().and_then(|slot| {
            let tls = &self.running.borrow().tls;
            Some((slot, tls.certificate.clone()?, tls.key.clone()?))
        });
        let built = glommio::executor()
            .spawn_blocking(move || {
                let config = source()?;
                let resolver_config = build_resolver_config(&config, cores, &cookies)
                    .map_err(|err| err.to_string())?;
                let certificate = match certificate {
                    Some((slot, cert, key)) => Some((
                        slot,
                        crate::tls::load_certified_key(&cert, &key)
                            .map_err(|err| err.to_string())?,
                    )),
                    None => None,
                };
                Ok::<_, String>((config, resolver_config, certificate))
            })
            .await;
        let result = match built {
            Ok((config, resolver_config, certificate)) => {
                let applied = self.apply(config, resolver_config).await;
                match (applied, certificate) {
                    (Ok(mut report), Some((slot, loaded))) => {
                        let changed = slot.replace(loaded);
                        report.changes.push(
                            self.certificate_reloaded(changed)
                                .await
                                .unwrap_or_else(|err| err),
                        );
                        Ok(report)
                    }
                    (applied, _) => applied,
                }
            }
            Err(err) => Err(err),
        };
        self.busy.set(false);
        let mut outcomes = self.outcomes.get();
        if result.is_ok() {
            outcomes.succeeded += 1;
            outcomes.last_success_unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|since| since.as_secs());
        } else {
            outcomes.failed += 1;
        }
        self.outcomes.set(outcomes);
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
        self.report(ServerEvent::Reloaded(
            result
                .as_ref()
                .map(|report| report.generation)
                .map_err(Clone::clone),
        ));
        result
    }

    /// After the certificate was read again: the same one keeps the
    /// ticket keys (outstanding tickets stay good); a new one replaces
    /// them, so no client resumes a session the old certificate began.
    /// The report's line, or (`Err`) one saying the keys could not be
    /// replaced; the certificate is in use either way.
    async fn certificate_reloaded(&self, changed: bool) -> Result<String, String> {
        let Some(tickets) = self.tickets.as_ref().filter(|_| changed) else {
            return Ok(if changed {
                "tls: certificate and key re-read: a new certificate".to_string()
            } else {
                "tls: certificate and key re-read: unchanged, session tickets stay good".to_string()
            });
        };
        let keys = tickets.advance(true).map_err(|err| {
            format!("tls: certificate and key re-read: a new certificate, but {err}")
        })?;
        hand_out_ticket_keys(&self.mesh, keys)
            .await
            .map_err(|err| {
                format!("tls: certificate and key re-read: a new certificate, but {err}")
            })?;
        Ok(
            "tls: certificate and key re-read: a new certificate, session tickets replaced"
                .to_string(),
        )
    }

    /// Hand the built snapshot to every core and collect their answers.
    async fn apply(
        &self,
        config: Config,
        resolver_config: ResolverConfig,
    ) -> Result<ReloadReport, String> {
        let (changes, effective) = plan_changes(&self.running.borrow(), &config);
        let command = CoreCommand::Reconfigure(Arc::new(resolver_config));
        let answers = self.mesh.ask_all(command, RECONFIGURE_TIMEOUT).await;
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
        if !failures.is_empty() {
            // Every core validates the same snapshot, so this means a core
            // is stuck; the ones that took it keep it.
            return Err(format!("reload incomplete: {}", failures.join("; ")));
        }
        *self.running.borrow_mut() = effective;
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
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
    }
}

/// Give every core the ticket key set `keys`. A core that does not take
/// it in time keeps its set: its tickets are still opened by the others
/// for one more rotation (a set opens the tickets of the next key).
async fn hand_out_ticket_keys(mesh: &CoreMesh, keys: Arc<TicketKeys>) -> Result<(), String> {
    let generation = keys.generation();
    let answers = mesh
        .ask_all(CoreCommand::TicketKeys(keys), RECONFIGURE_TIMEOUT)
        .await;
    let behind: Vec<String> = answers
        .iter()
        .enumerate()
        .filter(|(_, answer)| {
            !matches!(answer, Some(CoreAnswer::TicketKeysTaken(taken)) if *taken >= generation)
        })
        .map(|(core, _)| core.to_string())
        .collect();
    if behind.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "session-ticket keys {generation} not taken by core {}",
            behind.join(", ")
        ))
    }
}

/// Rotate the session-ticket keys every period, on core 0, until the
/// core stops: the next set is made here and handed to every core.
pub(crate) async fn rotate_tickets(mesh: Rc<CoreMesh>, rotation: Rc<TicketRotation>) {
    loop {
        glommio::timer::sleep(rotation.period()).await;
        let result = match rotation.advance(false) {
            Ok(keys) => hand_out_ticket_keys(&mesh, keys).await,
            Err(err) => Err(err.to_string()),
        };
        match result {
            Ok(()) => log::debug!("session-ticket keys rotated"),
            Err(err) => log::warn!("session-ticket key rotation: {err}"),
        }
    }
}

/// Reload once per request (a doorbell ring after
/// [`crate::ServerHandle::request_reload`]: the binary's SIGHUP), one at a
/// time, until the core stops.
pub(crate) async fn serve_reload_requests(
    driver: Rc<ReloadDriver>,
    cores: usize,
    requests: LocalReceiver<()>,
) {
    while requests.recv().await.is_some() {
        log::info!("SIGHUP: reloading the configuration");
        // The outcome is logged by `reload`.
        let _ = driver.reload(cores).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let yaml = format!("upstream: {{servers: [127.0.0.1:5399]}}\n{extra}");
        Config::from_yaml_str(&yaml, "test.yaml").unwrap()
    }

    #[test]
    fn restart_only_sections_keep_their_running_values() {
        let old = config("server: {listen: [127.0.0.1:5300]}\n");
        let mut new = config("server: {listen: [127.0.0.1:5301]}\n");
        new.upstream.servers = vec![heimdall_config::Upstream::udp(
            "127.0.0.1:5398".parse().unwrap(),
        )];
        let (changes, effective) = plan_changes(&old, &new);
        assert_eq!(effective.server, old.server);
        assert_eq!(effective.upstream, new.upstream);
        assert!(
            changes
                .iter()
                .any(|c| c.starts_with("server: changed in the file, needs a restart")),
            "{changes:?}"
        );
        assert!(
            changes.contains(&"upstream: applied".to_string()),
            "{changes:?}"
        );
        assert!(
            !changes.iter().any(|c| c.starts_with("cache")),
            "{changes:?}"
        );
    }

    #[test]
    fn restart_only_sections_are_the_documented_ones() {
        // docs/CONFIGURATION.md is generated from the config crate's rule;
        // plan_changes must follow the same one.
        let old = config("");
        let mut documented: Vec<&str> = heimdall_config::RESTART_ONLY_KEYS.to_vec();
        documented.sort_unstable();
        let mut reported = Vec::new();
        let mut new = old.clone();
        new.server.udp_recv_batch = 7;
        new.hints.channel_capacity = 7;
        new.tcp.max_pipelined = 7;
        new.control.enabled = false;
        new.cache.persist = Some("/tmp/x".into());
        new.log.level = heimdall_config::LogLevel::Trace;
        new.dnstap.buffer_frames = 7;
        new.tls.https_path = "/q".to_string();
        new.upstream.tls_ca_file = Some("/tmp/ca.pem".into());
        let (changes, effective) = plan_changes(&old, &new);
        for change in &changes {
            if let Some(section) = change
                .strip_suffix(": changed in the file, needs a restart (the running value stays)")
            {
                reported.push(section);
            }
        }
        reported.sort_unstable();
        assert_eq!(reported, documented);
        assert_eq!(effective, old);
    }

    #[test]
    fn nothing_changed_says_nothing() {
        let old = config("");
        let (changes, effective) = plan_changes(&old, &old.clone());
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(effective, old);
    }

    #[test]
    fn a_bad_policy_is_an_error_naming_the_file() {
        let config = config("blocklist: {files: [{path: /nonexistent/heimdall-test.list}]}\n");
        let cookies = CookieRuntime::new(std::time::Instant::now()).unwrap();
        let err = build_resolver_config(&config, 1, &cookies)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/heimdall-test.list"), "{err}");
        assert!(build_resolver_config(&self::config(""), 2, &cookies).is_ok());
    }
}
