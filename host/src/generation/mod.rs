//! A generation: one loaded set of plugins with everything that belongs to it — its own wasmtime
//! `Engine` (and so its own instance pool and compiled code), each plugin compiled once and pre-linked,
//! their manifests, the route table, every template parsed, the route catalogue rendered and the OpenAPI
//! document written. Immutable
//! once built. Requests hold an `Arc<Generation>` for
//! their whole life, and nothing outside a generation keeps a clone of its Engine, so when the last
//! request of a retired generation ends, all of it is freed together.

pub mod cache;
pub mod catalogue;
pub mod engine;
pub mod invoke;
pub mod manifest;
pub mod openapi;
pub mod outbound;
pub mod plugin;
pub mod routes;
pub mod views;
pub mod warm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use serde::Serialize;

use tokio::sync::Semaphore;
use wasmtime::EngineWeak;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::Plugin as PluginWorld;
use crate::config::{Config, Limits};
use cache::CompileCache;
use catalogue::Catalogue;
use engine::PluginEngine;
use invoke::{CallError, Callable, HostState};
use plugin::{LoadContext, LoadError, LoadedPlugin};
use routes::{RouteTable, Target};
use views::{PluginTemplates, RenderError, TemplateError, Views};

/// Why [`Generation::call`] has no answer from the plugin.
#[derive(Debug)]
pub enum CallFailure {
    /// The pool, or the plugin's own instance cap, is full: a fast refusal, never a queue.
    Busy,
    /// The call itself failed (deadline, trap, memory cap, ...).
    Call(CallError),
}

/// The suffix of a disabled plugin's file (`NAME.wasm.disabled`): loading reads `*.wasm` only.
pub const DISABLED_SUFFIX: &str = ".disabled";

/// How long a compile-cache entry no loaded plugin uses is kept (a quick rollback stays cheap).
const CACHE_KEEP_UNUSED: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// One loaded set of plugins. See the module docs.
pub struct Generation {
    /// Increases by one with every generation this process builds.
    pub id: u64,
    pub created: SystemTime,
    /// Plugins in file-name order.
    pub plugins: Vec<LoadedPlugin>,
    pub routes: RouteTable,
    /// Every template this generation renders, parsed once.
    pub views: Views,
    /// `GET /api`, made once.
    pub catalogue: Catalogue,
    /// `GET /openapi.json`, made once.
    pub openapi: bytes::Bytes,
    pub(crate) limits: Limits,
    /// One permit per pool slot: a request that cannot get one is answered 503 at once.
    pub(crate) instances: Arc<Semaphore>,
    /// Requests being served from this generation right now.
    in_flight: AtomicUsize,
    engine: PluginEngine,
}

/// Marks one request as in flight on a generation for as long as it lives.
pub struct InFlight(Arc<Generation>);

impl InFlight {
    /// The generation this request is served from.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the admin API shows of a loaded plugin.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub file: String,
    pub hash: String,
    pub compile_ms: f64,
    pub cached: bool,
    pub routes: usize,
    /// The plugin's templates (`<plugin>/...`) and where each came from (shipped or an operator file).
    pub templates: Vec<crate::generation::views::TemplateInfo>,
}

/// Why a generation could not be built. Nothing is served from a generation that failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot read plugins directory {}: {source}", dir.display())]
    PluginsDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", join_lines(.0))]
    Plugins(Vec<LoadError>),
    #[error(
        "two plugins are named {name:?}: {} and {}",
        first.display(),
        second.display()
    )]
    DuplicateName {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("route conflict: {method} {first} and {method} {second} match the same requests")]
    RouteConflict {
        method: &'static str,
        first: Box<RouteClaim>,
        second: Box<RouteClaim>,
    },
    #[error("{0}")]
    Template(#[from] TemplateError),
    #[error(
        "route {method} {path} of plugin {plugin:?} ({}) names view {view:?}, but no template {plugin}/{view} exists",
        file.display()
    )]
    MissingView {
        plugin: String,
        file: PathBuf,
        method: &'static str,
        path: String,
        view: String,
    },
    #[error("cannot render the route catalogue: {0}")]
    Catalogue(RenderError),
    #[error("{0:#}")]
    Engine(anyhow::Error),
    #[error(
        "{draining} retired generation(s) are still finishing requests and limits.max_live_generations is {limit}; retry once they drain"
    )]
    TooManyGenerations { draining: usize, limit: usize },
    #[error("cannot bring the plugin set from the database: {0}")]
    Cluster(String),
}

/// One side of a route conflict: which plugin (and file) declared which pattern.
#[derive(Debug)]
pub struct RouteClaim {
    pub path: String,
    pub plugin: String,
    pub file: PathBuf,
}

impl std::fmt::Display for RouteClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of plugin {:?} ({})",
            self.path,
            self.plugin,
            self.file.display()
        )
    }
}

fn join_lines(errors: &[LoadError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `*.wasm` files in `dir`, in name order. Hidden files (such as a deploy's temporary file before it
/// is renamed into place) are skipped.
pub fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let visible = !name.to_string_lossy().starts_with('.');
        if visible && path.extension().is_some_and(|e| e == "wasm") && entry.file_type()?.is_file()
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A new Engine, a linker with the host's imports and the compile cache for it: what loading plugins for
/// one generation needs.
struct Loader<'c> {
    engine: PluginEngine,
    linker: Linker<HostState>,
    cache: CompileCache,
    config: &'c Config,
}

impl<'c> Loader<'c> {
    fn new(config: &'c Config, use_cache: bool) -> Result<Self, BuildError> {
        let engine = PluginEngine::new(&config.limits).map_err(BuildError::Engine)?;
        let mut linker = Linker::new(engine.wasmtime());
        PluginWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| BuildError::Engine(e.into()))?;
        let cache = if use_cache {
            CompileCache::new(&config.data_dir, engine.wasmtime())
        } else {
            CompileCache::disabled()
        };
        Ok(Self {
            engine,
            linker,
            cache,
            config,
        })
    }

    async fn load(&self, file: &Path) -> Result<LoadedPlugin, LoadError> {
        let cx = LoadContext {
            engine: &self.engine,
            cache: &self.cache,
            linker: &self.linker,
            config: self.config,
        };
        plugin::load(&cx, file).await
    }
}

/// Refuse two plugins with the same name (naming both files).
fn check_unique_names(plugins: &[LoadedPlugin]) -> Result<(), BuildError> {
    let mut seen: HashMap<&str, &LoadedPlugin> = HashMap::with_capacity(plugins.len());
    for p in plugins {
        if let Some(first) = seen.insert(&p.manifest.name, p) {
            return Err(BuildError::DuplicateName {
                name: p.manifest.name.clone(),
                first: first.file.clone(),
                second: p.file.clone(),
            });
        }
    }
    Ok(())
}

/// Every plugin's routes in one table; the first conflict (same method, same shape) names both claims.
fn route_table(plugins: &[LoadedPlugin]) -> Result<RouteTable, BuildError> {
    let mut routes = RouteTable::default();
    for (pi, p) in plugins.iter().enumerate() {
        for (ri, r) in p.manifest.routes.iter().enumerate() {
            let target = Target {
                plugin: pi,
                route: ri,
            };
            let Err(conflict) = routes.insert(r.method, r.path.clone(), target) else {
                continue;
            };
            let first = &plugins[conflict.existing.plugin];
            let claim = |path: String, plugin: &LoadedPlugin| {
                Box::new(RouteClaim {
                    path,
                    plugin: plugin.manifest.name.clone(),
                    file: plugin.file.clone(),
                })
            };
            let first_path = first.manifest.routes[conflict.existing.route]
                .path
                .to_string();
            return Err(BuildError::RouteConflict {
                method: r.method.as_str(),
                first: claim(first_path, first),
                second: claim(r.path.to_string(), p),
            });
        }
    }
    Ok(routes)
}

/// After a successful build: drop cache entries no loaded plugin uses any more (on a blocking thread,
/// since it is file I/O).
fn prune_cache(cache: &CompileCache, plugins: &[LoadedPlugin]) {
    let cache = cache.clone();
    let keep: Vec<String> = plugins.iter().map(|p| p.hash.clone()).collect();
    tokio::task::spawn_blocking(move || {
        let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
        let removed = cache.prune(&keep, CACHE_KEEP_UNUSED);
        if removed > 0 {
            tracing::info!(removed, "pruned the compile cache");
        }
    });
}

impl Generation {
    /// Build generation `id` from the plugins directory named in `config`.
    pub async fn build(id: u64, config: &Config) -> Result<Self, BuildError> {
        let dir = &config.plugins_dir;
        let files = plugin_files(dir).map_err(|source| BuildError::PluginsDir {
            dir: dir.clone(),
            source,
        })?;
        let loader = Loader::new(config, config.compile_cache)?;
        let mut plugins: Vec<LoadedPlugin> = Vec::with_capacity(files.len());
        let mut errors = Vec::new();
        for file in &files {
            match loader.load(file).await {
                Ok(p) => plugins.push(p),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(BuildError::Plugins(errors));
        }

        check_unique_names(&plugins)?;
        let routes = route_table(&plugins)?;
        let views = build_views(config, &plugins)?;
        let manifests: Vec<&crate::generation::manifest::Manifest> =
            plugins.iter().map(|p| &p.manifest).collect();
        let catalogue = Catalogue::build(id, &manifests, &views).map_err(BuildError::Catalogue)?;
        let openapi = openapi::build(id, &manifests, config.admin_listen.is_none());

        prune_cache(&loader.cache, &plugins);
        Ok(Self {
            id,
            created: SystemTime::now(),
            plugins,
            routes,
            views,
            catalogue,
            openapi,
            instances: Arc::new(Semaphore::new(config.limits.max_instances as usize)),
            limits: config.limits.clone(),
            in_flight: AtomicUsize::new(0),
            engine: loader.engine,
        })
    }

    /// How to call plugin number `index`.
    pub fn callable(&self, index: usize) -> Callable<'_> {
        self.plugins[index].callable(&self.engine)
    }

    /// What a request to plugin number `index` runs on: an idle warm instance if the plugin reuses
    /// instances and has one, else free slots for a new one; `None` when the pool or the plugin's own cap
    /// is full.
    pub fn lease(&self, index: usize) -> Option<crate::generation::warm::Lease> {
        let plugin = &self.plugins[index];
        if let Some(warm) = plugin.warm.as_ref().and_then(|w| w.take()) {
            return Some(crate::generation::warm::Lease::Warm(Box::new(warm)));
        }
        crate::generation::warm::Permits::try_acquire(&self.instances, plugin.permits.as_ref())
            .map(crate::generation::warm::Lease::Fresh)
    }

    /// The executor's front door: one request to plugin number `index`, on an idle warm instance or a
    /// fresh one from the pool (see [`Generation::lease`]), under the plugin's deadline, with `kv` as
    /// its key-value store and `http` as its outbound client. The instance is dropped, or back among the
    /// idle ones, when this returns. While spans are exported the call is one, under the request's.
    pub async fn call(
        &self,
        index: usize,
        kv: &Arc<crate::accounts::kv::KvStore>,
        http: &Arc<outbound::Outbound>,
        request: &crate::bindings::types::Request,
    ) -> Result<Result<crate::bindings::types::Response, crate::bindings::types::Error>, CallFailure>
    {
        let lease = self.lease(index).ok_or(CallFailure::Busy)?;
        let plugin = &self.plugins[index];
        let callable = self.callable(index).with_kv(Some(kv)).with_http(http);
        let call = callable.serve(lease, request, plugin.limits.request_timeout);
        let manifest = &plugin.manifest;
        crate::telemetry::plugin_call(&manifest.name, &manifest.version, call)
            .await
            .map_err(CallFailure::Call)
    }

    /// The index of the plugin named `name`.
    pub fn plugin_index(&self, name: &str) -> Option<usize> {
        self.plugins.iter().position(|p| p.manifest.name == name)
    }

    /// One permit per instance-pool slot; `available_permits()` is how many instances are free now.
    pub fn instance_permits(&self) -> &Arc<Semaphore> {
        &self.instances
    }

    /// Count a request as in flight on this generation until the guard drops.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Requests being served from this generation now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The loaded plugins as the admin API shows them.
    pub fn plugin_infos(&self) -> Vec<PluginInfo> {
        self.plugins
            .iter()
            .map(|p| PluginInfo {
                name: p.manifest.name.clone(),
                version: p.manifest.version.clone(),
                file: p.file.display().to_string(),
                hash: p.hash.clone(),
                compile_ms: p.compile_time.as_secs_f64() * 1e3,
                cached: p.cached,
                routes: p.manifest.routes.len(),
                templates: self.views.templates_of(&p.manifest.name).cloned().collect(),
            })
            .collect()
    }

    /// A weak handle to this generation's Engine: once the generation is dropped it no longer upgrades.
    pub fn engine_weak(&self) -> EngineWeak {
        self.engine.wasmtime().weak()
    }
}

/// Parse the templates of these plugins with the host's and the operator's, and check that every view a
/// route names exists.
fn build_views(config: &Config, plugins: &[LoadedPlugin]) -> Result<Views, BuildError> {
    let shipped: Vec<PluginTemplates<'_>> = plugins
        .iter()
        .map(|p| PluginTemplates {
            plugin: &p.manifest.name,
            templates: &p.manifest.templates,
        })
        .collect();
    let views = Views::build(
        &config.templates_dir,
        &shipped,
        views::RenderLimits::of(&config.limits),
    )?;
    for p in plugins {
        for r in &p.manifest.routes {
            if let Some(view) = &r.view
                && !views.has(&format!("{}/{view}", p.manifest.name))
            {
                return Err(BuildError::MissingView {
                    plugin: p.manifest.name.clone(),
                    file: p.file.clone(),
                    method: r.method.as_str(),
                    path: r.path.to_string(),
                    view: view.clone(),
                });
            }
        }
    }
    Ok(views)
}

/// Load a single plugin file exactly as a generation would (for `plugin-host check`), templates included.
pub async fn check_plugin(config: &Config, file: &Path) -> Result<LoadedPlugin, BuildError> {
    let loader = Loader::new(config, false)?;
    let plugin = loader
        .load(file)
        .await
        .map_err(|e| BuildError::Plugins(vec![e]))?;
    build_views(config, std::slice::from_ref(&plugin))?;
    Ok(plugin)
}
