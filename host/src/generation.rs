//! A generation: one loaded set of plugins with everything that belongs to it — its own wasmtime
//! `Engine` (and so its own instance pool and compiled code), each plugin compiled once and pre-linked,
//! their manifests and the route table. Immutable once built. Requests hold an `Arc<Generation>` for
//! their whole life, and nothing outside a generation keeps a clone of its Engine, so when the last
//! request of a retired generation ends, all of it is freed together.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, EngineWeak};

use crate::bindings::Plugin as PluginWorld;
use crate::config::{Config, Limits};
use crate::invoke::{Callable, HostState};
use crate::manifest::method_str;
use crate::plugin::{self, LoadContext, LoadError, LoadedPlugin};
use crate::routes::{RouteTable, Target};

/// One loaded set of plugins. See the module docs.
pub struct Generation {
    /// Increases by one with every generation this process builds.
    pub id: u64,
    pub created: SystemTime,
    /// Plugins in file-name order.
    pub plugins: Vec<LoadedPlugin>,
    pub routes: RouteTable,
    pub(crate) limits: Limits,
    /// One permit per pool slot: a request that cannot get one is answered 503 at once.
    pub(crate) instances: Arc<Semaphore>,
    engine: Engine,
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
    #[error("{0:#}")]
    Engine(anyhow::Error),
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

/// A new Engine and a linker with the host's imports for it.
fn engine_and_linker(config: &Config) -> Result<(Engine, Linker<HostState>), BuildError> {
    let engine = crate::engine::new_engine(&config.limits).map_err(BuildError::Engine)?;
    let mut linker = Linker::new(&engine);
    PluginWorld::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
        .map_err(|e| BuildError::Engine(e.into()))?;
    Ok((engine, linker))
}

impl Generation {
    /// Build generation `id` from the plugins directory named in `config`.
    pub async fn build(id: u64, config: &Config) -> Result<Self, BuildError> {
        let dir = &config.plugins_dir;
        let files = plugin_files(dir).map_err(|source| BuildError::PluginsDir {
            dir: dir.clone(),
            source,
        })?;
        let (engine, linker) = engine_and_linker(config)?;
        let cx = LoadContext {
            engine: &engine,
            linker: &linker,
            config,
        };

        let mut plugins: Vec<LoadedPlugin> = Vec::with_capacity(files.len());
        let mut errors = Vec::new();
        for file in &files {
            match plugin::load(&cx, file).await {
                Ok(p) => plugins.push(p),
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(BuildError::Plugins(errors));
        }

        for (i, p) in plugins.iter().enumerate() {
            if let Some(first) = plugins[..i]
                .iter()
                .find(|q| q.manifest.name == p.manifest.name)
            {
                return Err(BuildError::DuplicateName {
                    name: p.manifest.name.clone(),
                    first: first.file.clone(),
                    second: p.file.clone(),
                });
            }
        }

        let mut routes = RouteTable::default();
        for (pi, p) in plugins.iter().enumerate() {
            for (ri, r) in p.manifest.routes.iter().enumerate() {
                let target = Target {
                    plugin: pi,
                    route: ri,
                };
                if let Err(conflict) = routes.insert(r.method, r.path.clone(), target) {
                    let first = &plugins[conflict.existing.plugin];
                    return Err(BuildError::RouteConflict {
                        method: method_str(r.method),
                        first: Box::new(RouteClaim {
                            path: first.manifest.routes[conflict.existing.route]
                                .path
                                .to_string(),
                            plugin: first.manifest.name.clone(),
                            file: first.file.clone(),
                        }),
                        second: Box::new(RouteClaim {
                            path: r.path.to_string(),
                            plugin: p.manifest.name.clone(),
                            file: p.file.clone(),
                        }),
                    });
                }
            }
        }

        Ok(Self {
            id,
            created: SystemTime::now(),
            plugins,
            routes,
            instances: Arc::new(Semaphore::new(config.limits.max_instances as usize)),
            limits: config.limits.clone(),
            engine,
        })
    }

    /// How to call plugin number `index`.
    pub fn callable(&self, index: usize) -> Callable<'_> {
        self.plugins[index].callable(&self.engine, self.limits.instance_memory_bytes)
    }

    /// The index of the plugin named `name`.
    pub fn plugin_index(&self, name: &str) -> Option<usize> {
        self.plugins.iter().position(|p| p.manifest.name == name)
    }

    /// One permit per instance-pool slot; `available_permits()` is how many instances are free now.
    pub fn instance_permits(&self) -> &Arc<Semaphore> {
        &self.instances
    }

    /// A weak handle to this generation's Engine: once the generation is dropped it no longer upgrades.
    pub fn engine_weak(&self) -> EngineWeak {
        self.engine.weak()
    }
}

/// Load a single plugin file exactly as a generation would (for `plugin-host check`).
pub async fn check_plugin(config: &Config, file: &Path) -> Result<LoadedPlugin, BuildError> {
    let (engine, linker) = engine_and_linker(config)?;
    let cx = LoadContext {
        engine: &engine,
        linker: &linker,
        config,
    };
    plugin::load(&cx, file)
        .await
        .map_err(|e| BuildError::Plugins(vec![e]))
}
