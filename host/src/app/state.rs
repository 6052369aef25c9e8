//! Process-wide state and the reload coordinator.
//!
//! `AppState` holds what lives for the whole run: the configuration, the cell with the current
//! generation, the retired generations still draining (weakly), metrics and the request-id source.
//!
//! Reloads are single-flight: the first caller starts a build on its own task; callers that arrive while
//! it runs wait for the same result. A build that fails changes nothing. A build that succeeds is swapped
//! into the cell atomically: requests that already hold the old generation finish on it, new requests
//! get the new one, and the old generation is freed when its last request ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::watch;

use crate::accounts::auth::AuthContext;
use crate::accounts::kv::KvStore;
use crate::app::metrics::{Gauges, Metrics};
use crate::config::Config;
use crate::generation::{BuildError, Generation, PluginInfo};

/// State shared by every request for the life of the process.
pub struct AppState {
    pub(crate) config: Arc<Config>,
    current: ArcSwap<Generation>,
    retired: Mutex<Vec<Retired>>,
    /// The reload being built now, if any: late callers subscribe to its result.
    reloading: Mutex<Option<watch::Receiver<Option<Arc<ReloadOutcome>>>>>,
    last_reload: Mutex<Option<Arc<ReloadOutcome>>>,
    pub(crate) metrics: Metrics,
    ids: RequestIds,
    /// Users, keys, sessions and the login limiter, over the database.
    pub(crate) auth: Arc<AuthContext>,
    /// The plugins' key-value store, over the same database.
    pub(crate) kv: Arc<KvStore>,
    /// The plugins' outbound HTTP client (one per process; see `generation/outbound.rs`).
    pub(crate) outbound: Arc<crate::generation::outbound::Outbound>,
    /// The last hour of RSS, live generations and request counters, for the dashboard.
    pub(crate) history: crate::app::sampler::History,
    /// Held while the admin UI changes files in the plugins directory, so changes never interleave.
    pub(crate) deploy: tokio::sync::Mutex<()>,
    /// When the process started serving.
    pub(crate) started: Instant,
    /// Cluster mode: this node's part (the plugin set comes from the database).
    cluster: Option<Arc<crate::cluster::ClusterNode>>,
    /// `trusted_proxies`, parsed.
    pub(crate) proxies: crate::http::proxy::Proxies,
    /// Set once a shutdown signal arrived: `/readyz` answers 503 from then on.
    shutting_down: std::sync::atomic::AtomicBool,
    /// Set while the plugins or templates directory does not build (not in cluster mode).
    degraded: Mutex<Option<Arc<Degraded>>>,
}

/// The plugins or templates directory does not build: the host serves an older set. Cleared by the next
/// successful build from the directories.
#[derive(Debug, Serialize)]
pub struct Degraded {
    /// Why the directories do not build (names the file).
    pub error: String,
    /// When that was found, in milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// What is served instead.
    pub serving: Serving,
}

/// What a degraded host serves.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Serving {
    /// The generation that served before the failed reload (a restart serves the last good set).
    Previous { generation: u64 },
    /// The last good set, recorded in `data_dir/last-good` at this time: the directories failed at start.
    LastGood { recorded_ms: u64 },
}

impl std::fmt::Display for Degraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.serving {
            Serving::Previous { generation } => write!(
                f,
                "the plugins directory does not load; serving generation {generation}, built before \
                 (a restart serves the last good set): {}",
                self.error
            ),
            Serving::LastGood { .. } => write!(
                f,
                "the plugins directory did not load at start; serving the last good set: {}",
                self.error
            ),
        }
    }
}

impl Drop for AppState {
    fn drop(&mut self) {
        if let Some(node) = &self.cluster {
            node.close();
        }
    }
}

/// What `/readyz` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// Serving plugins, database reachable, not shutting down.
    pub ready: bool,
    /// Why not ready (`starting`, `database unreachable`, `shutting down`), when not.
    pub reason: Option<&'static str>,
    /// Ready, but the plugins or templates directory does not build: what is wrong and what is served.
    pub degraded: Option<String>,
    pub generation: u64,
    /// Cluster mode: the plugin set revision served.
    pub revision: Option<i64>,
}

/// A generation that was replaced; held weakly so that tracking it never keeps it alive.
struct Retired {
    id: u64,
    retired_at: Instant,
    generation: Weak<Generation>,
}

/// The result of one reload, as the admin API returns it.
#[derive(Debug, Serialize)]
pub struct ReloadOutcome {
    pub ok: bool,
    /// The generation serving after the reload (the new one, or the unchanged old one).
    pub generation: u64,
    /// The generation that served before.
    pub previous: u64,
    /// The new generation's plugins (empty on failure).
    pub plugins: Vec<PluginInfo>,
    /// Why the reload failed: names the file and the reason.
    pub error: Option<String>,
    /// Cluster mode: the plugin set revision now served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    pub duration_ms: f64,
    /// When it finished, in milliseconds since the Unix epoch.
    pub finished_at_ms: u64,
}

/// A live generation, for `/admin/api/generations`.
#[derive(Debug, Serialize)]
pub struct GenerationStatus {
    pub id: u64,
    pub created_ms: u64,
    pub in_flight: usize,
    pub plugins: Vec<PluginInfo>,
    /// Template count, parses (all made when the generation was built) and page renders since.
    pub templates: crate::generation::views::ViewStats,
}

/// A retired generation still alive because requests are finishing on it.
#[derive(Debug, Serialize)]
pub struct RetiredStatus {
    pub id: u64,
    pub age_ms: u64,
    pub in_flight: usize,
}

/// Unique request ids: a per-process random seed mixed with a counter. `(n ^ seed) * odd` is a
/// bijection on u64, so ids never repeat within a process and do not reveal the request count.
struct RequestIds {
    seed: u64,
    counter: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}",
            (n ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }
}

impl AppState {
    /// State serving `generation` under `config`, with accounts and storage over the database.
    pub fn new(
        config: Config,
        generation: Generation,
        auth: Arc<AuthContext>,
        kv: Arc<KvStore>,
    ) -> Self {
        Self {
            proxies: crate::http::proxy::Proxies::default(),
            outbound: Arc::new(crate::generation::outbound::Outbound::new(&config.limits)),
            config: Arc::new(config),
            current: ArcSwap::from_pointee(generation),
            retired: Mutex::new(Vec::new()),
            reloading: Mutex::new(None),
            last_reload: Mutex::new(None),
            metrics: Metrics::default(),
            ids: RequestIds::new(),
            auth,
            kv,
            history: crate::app::sampler::History::default(),
            deploy: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            cluster: None,
            shutting_down: std::sync::atomic::AtomicBool::new(false),
            degraded: Mutex::new(None),
        }
    }

    /// This state serving the last good set because the directories did not build at start.
    pub fn with_degraded(self, degraded: Degraded) -> Self {
        *self.degraded.lock().expect("degraded lock") = Some(Arc::new(degraded));
        self
    }

    /// Why the plugins or templates directory does not build, while it does not.
    pub fn degraded(&self) -> Option<Arc<Degraded>> {
        self.degraded.lock().expect("degraded lock").clone()
    }

    /// This state in cluster mode, as `node`.
    pub fn with_cluster(mut self, node: Arc<crate::cluster::ClusterNode>) -> Self {
        self.cluster = Some(node);
        self
    }

    /// Believe these proxies' forwarding headers (`trusted_proxies`).
    pub(crate) fn with_proxies(mut self, proxies: crate::http::proxy::Proxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Cluster mode: this node.
    pub fn cluster(&self) -> Option<&Arc<crate::cluster::ClusterNode>> {
        self.cluster.as_ref()
    }

    /// A shutdown signal arrived: report not ready from now on.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Whether this node should get traffic, and why not.
    pub fn readiness(&self) -> Readiness {
        let generation = self.current.load().id;
        let revision = self.cluster.as_ref().and_then(|c| c.served().revision);
        let reason = if self.shutting_down.load(Ordering::Relaxed) {
            Some("shutting down")
        } else if let Some(node) = &self.cluster {
            if revision.is_none() {
                Some("starting")
            } else if !node.database_ok() {
                Some("database unreachable")
            } else {
                None
            }
        } else {
            None
        };
        Readiness {
            ready: reason.is_none(),
            reason,
            degraded: self.degraded().map(|d| d.to_string()),
            generation,
            revision,
        }
    }

    /// The configuration the process started with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Authentication and the database behind it.
    pub fn auth(&self) -> &Arc<AuthContext> {
        &self.auth
    }

    /// The plugins' key-value store.
    pub fn kv(&self) -> &Arc<KvStore> {
        &self.kv
    }

    /// The generation new requests are served from.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// A fresh request id.
    pub(crate) fn next_request_id(&self) -> String {
        self.ids.next()
    }

    /// Rebuild from the plugins directory and swap the result in (see the module docs). Concurrent
    /// callers share one build and one outcome.
    pub async fn reload(self: &Arc<Self>) -> Arc<ReloadOutcome> {
        let mut rx = {
            let mut reloading = self.reloading.lock().expect("reload lock");
            match reloading.as_ref() {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    *reloading = Some(rx.clone());
                    // The build runs on its own task: a caller that goes away does not cancel it.
                    let state = self.clone();
                    tokio::spawn(async move {
                        let outcome = Arc::new(state.build_and_swap().await);
                        *state.last_reload.lock().expect("reload lock") = Some(outcome.clone());
                        *state.reloading.lock().expect("reload lock") = None;
                        tx.send_replace(Some(outcome));
                    });
                    rx
                }
            }
        };
        let outcome = rx
            .wait_for(Option::is_some)
            .await
            .expect("the reload task always sends its outcome");
        outcome.clone().expect("waited for Some")
    }

    async fn build_and_swap(&self) -> ReloadOutcome {
        let started = Instant::now();
        let previous = self.current.load().id;
        let draining = self.retired().len();
        let limit = self.config.limits.max_live_generations;
        // Cluster mode: bring the serving files to the current revision first.
        let mut revision = None;
        let result = if draining + 2 > limit {
            Err(BuildError::TooManyGenerations { draining, limit })
        } else if let Some(node) = &self.cluster {
            match node.sync().await {
                Ok(r) => {
                    revision = Some(r);
                    Generation::build(previous + 1, &self.config).await
                }
                Err(e) => Err(BuildError::Cluster(format!("{e:#}"))),
            }
        } else {
            Generation::build(previous + 1, &self.config).await
        };
        self.metrics.observe_reload(result.is_ok());
        let served_revision = |ok: bool| match &self.cluster {
            Some(node) if ok => revision,
            Some(node) => node.served().revision,
            None => None,
        };
        let finished = |ok, generation, plugins, error| ReloadOutcome {
            ok,
            generation,
            previous,
            plugins,
            error,
            revision: served_revision(ok),
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
            finished_at_ms: crate::clock::unix_ms() as u64,
        };
        match result {
            Ok(generation) => {
                let generation = Arc::new(generation);
                let plugins = generation.plugin_infos();
                let id = generation.id;
                self.config.warn_unmatched_plugin_settings(
                    generation.plugins.iter().map(|p| p.manifest.name.as_str()),
                );
                let old = self.current.swap(generation.clone());
                self.retire(&old);
                drop(old);
                if self.cluster.is_none() {
                    *self.degraded.lock().expect("degraded lock") = None;
                    self.record_last_good(&generation).await;
                }
                if let (Some(node), Some(r)) = (&self.cluster, revision) {
                    node.built(r);
                }
                tracing::info!(
                    generation = id,
                    previous,
                    plugins = plugins.len(),
                    cached = plugins.iter().filter(|p| p.cached).count(),
                    duration_ms = started.elapsed().as_millis() as u64,
                    "reloaded"
                );
                finished(true, id, plugins, None)
            }
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(%error, serving = previous, "reload failed; still serving the previous generation");
                if let Some(node) = &self.cluster {
                    node.failed(revision, error.clone());
                } else if !matches!(e, BuildError::TooManyGenerations { .. }) {
                    let mut degraded = self.degraded.lock().expect("degraded lock");
                    // Serving the last good set since the start stays that: the restart's record.
                    let serving = match degraded.as_ref().map(|d| d.serving) {
                        Some(last_good @ Serving::LastGood { .. }) => last_good,
                        _ => Serving::Previous {
                            generation: previous,
                        },
                    };
                    *degraded = Some(Arc::new(Degraded {
                        error: error.clone(),
                        since_ms: crate::clock::unix_ms() as u64,
                        serving,
                    }));
                }
                finished(false, previous, Vec::new(), Some(error))
            }
        }
    }

    /// Record `generation`'s files as the last good set (see `last_good.rs`); a failure is logged, never
    /// fatal: the generation serves either way.
    pub(crate) async fn record_last_good(&self, generation: &Arc<Generation>) {
        let record = crate::app::last_good::LastGood::in_data_dir(&self.config.data_dir);
        let built = generation.clone();
        let outcome = tokio::task::spawn_blocking(move || record.record(&built)).await;
        match outcome {
            Ok(Ok(crate::app::last_good::Recorded::Changed(file))) => tracing::info!(
                file = %file.display(),
                "not recording the last good set: a file changed since it was read"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(
                error = %e,
                dir = %self.config.data_dir.join(crate::app::last_good::DIR).display(),
                "cannot record the last good set; a restart with a bad file in the plugins directory will not start"
            ),
            Err(e) => tracing::warn!(error = %e, "recording the last good set panicked"),
        }
    }

    fn retire(&self, old: &Arc<Generation>) {
        let mut retired = self.retired.lock().expect("retired lock");
        retired.retain(|r| r.generation.strong_count() > 0);
        retired.push(Retired {
            id: old.id,
            retired_at: Instant::now(),
            generation: Arc::downgrade(old),
        });
    }

    /// The outcome of the last finished reload, if any.
    pub fn last_reload(&self) -> Option<Arc<ReloadOutcome>> {
        self.last_reload.lock().expect("reload lock").clone()
    }

    /// Retired generations that are still alive, oldest first.
    pub fn retired(&self) -> Vec<RetiredStatus> {
        let mut retired = self.retired.lock().expect("retired lock");
        retired.retain(|r| r.generation.strong_count() > 0);
        retired
            .iter()
            .filter_map(|r| {
                let generation = r.generation.upgrade()?;
                Some(RetiredStatus {
                    id: r.id,
                    age_ms: r.retired_at.elapsed().as_millis() as u64,
                    in_flight: generation.in_flight(),
                })
            })
            .collect()
    }

    /// The current generation as the admin API shows it.
    pub fn current_status(&self) -> GenerationStatus {
        let g = self.current();
        GenerationStatus {
            id: g.id,
            created_ms: crate::clock::ms_of(g.created) as u64,
            in_flight: g.in_flight(),
            plugins: g.plugin_infos(),
            templates: g.views.stats(),
        }
    }

    /// The values `/metrics` reads at scrape time.
    pub(crate) fn gauges(&self) -> Gauges {
        let retired = self.retired();
        let current = self.current();
        Gauges {
            current_generation: current.id,
            live_generations: 1 + retired.len(),
            in_flight: current.in_flight() + retired.iter().map(|r| r.in_flight).sum::<usize>(),
            template_parses: crate::generation::views::parsed_total(),
            page_renders: current.views.stats().renders,
            degraded: u64::from(self.degraded().is_some()),
            heap: crate::app::alloc::heap_stats(),
            plugins: current
                .plugins
                .iter()
                .map(|p| {
                    let m = &p.manifest;
                    (m.name.clone(), m.version.clone(), p.hash.clone())
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_fixed_width() {
        let ids = RequestIds::new();
        let a: std::collections::HashSet<String> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(a.len(), 10_000);
        assert!(a.iter().all(|id| id.len() == 16));
    }
}
