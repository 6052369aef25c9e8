//! Loading one plugin file: check that it is a component, compile it, pre-link it against the host's
//! imports (`InstancePre`), call `describe` once and validate the manifest. Every failure names the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::Linker;

use crate::bindings::PluginPre;
use crate::config::{Config, PluginLimits};
use crate::generation::cache::{CompileCache, Origin};
use crate::generation::engine::PluginEngine;
use crate::generation::invoke::{CallError, Callable, HostState, PluginIdentity};
use crate::generation::manifest::{Manifest, ManifestError};

/// How long `describe` may take at load time. The epoch deadline interrupts the guest's own work (a
/// manifest builder that loops or crawls); copying the manifest out of the guest is host work it does
/// not see, bounded instead by the instance's memory cap, and validation is linear once the counts are
/// checked (`manifest::MAX_ROUTES`, `manifest::MAX_TEMPLATES`), so one plugin costs a reload a bounded
/// time. With `limits.deadlines = false` nothing interrupts a `describe` that never returns.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A plugin ready to serve: compiled once, pre-linked, manifest read.
pub struct LoadedPlugin {
    /// The file it came from.
    pub file: PathBuf,
    /// SHA-256 of the file, hex.
    pub hash: String,
    pub manifest: Manifest,
    /// How long compiling (or reading the compile cache) took.
    pub compile_time: Duration,
    /// Whether the compiled code came from the compile cache.
    pub cached: bool,
    /// The limits this plugin runs under (global limits with its overrides).
    pub limits: PluginLimits,
    /// Permits for the plugin's own instance cap, if it has one.
    pub(crate) permits: Option<Arc<tokio::sync::Semaphore>>,
    pub(crate) identity: Arc<PluginIdentity>,
    pub(crate) config: Arc<BTreeMap<String, String>>,
    pub(crate) pre: PluginPre<HostState>,
    /// Idle instances, when instance reuse is on for this plugin.
    pub(crate) warm: Option<crate::generation::warm::WarmPool>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("file", &self.file)
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .finish_non_exhaustive()
    }
}

/// Why a plugin file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", file.display())]
pub struct LoadError {
    pub file: PathBuf,
    pub kind: LoadErrorKind,
}

/// The reason part of a [`LoadError`].
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read file: {0}")]
    Read(#[source] std::io::Error),
    #[error("not a WebAssembly file (no \\0asm header)")]
    NotWasm,
    #[error(
        "a core WebAssembly module, not a component: turn it into one with `plugin-host componentize`"
    )]
    CoreModule,
    #[error("unsupported WebAssembly binary version {0:02x?}")]
    UnknownVersion([u8; 4]),
    #[error("does not compile: {0}")]
    Compile(String),
    #[error(
        "does not implement the plugin contract (plugin-host:plugin/plugin@1.1.0, or 1.0.0): {0}"
    )]
    Contract(String),
    #[error("describe failed: {0}")]
    Describe(#[source] CallError),
    #[error("invalid manifest: {0}")]
    Manifest(#[source] ManifestError),
}

/// Which kind of wasm binary `bytes` is, from its 8-byte preamble.
fn check_preamble(bytes: &[u8]) -> Result<(), LoadErrorKind> {
    const CORE: [u8; 4] = [1, 0, 0, 0];
    const COMPONENT: [u8; 4] = [0x0d, 0, 1, 0];
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadErrorKind::NotWasm);
    }
    let version: [u8; 4] = bytes[4..8].try_into().expect("4 bytes");
    match version {
        COMPONENT => Ok(()),
        CORE => Err(LoadErrorKind::CoreModule),
        other => Err(LoadErrorKind::UnknownVersion(other)),
    }
}

/// The hex SHA-256 of `bytes`: a plugin file's identity.
pub fn content_hash(bytes: &[u8]) -> String {
    crate::accounts::db::sha256_hex(bytes)
}

/// What the loader needs besides the file.
pub struct LoadContext<'a> {
    pub engine: &'a PluginEngine,
    pub cache: &'a CompileCache,
    pub linker: &'a Linker<HostState>,
    pub config: &'a Config,
}

/// Load the plugin in `file`.
pub async fn load(cx: &LoadContext<'_>, file: &Path) -> Result<LoadedPlugin, LoadError> {
    let fail = |kind| LoadError {
        file: file.to_owned(),
        kind,
    };
    let bytes = tokio::fs::read(file)
        .await
        .map_err(|e| fail(LoadErrorKind::Read(e)))?;
    check_preamble(&bytes).map_err(fail)?;
    let hash = content_hash(&bytes);

    // Compiling is CPU-bound (and parallel inside wasmtime): keep it off tokio's workers.
    let engine = cx.engine.wasmtime().clone();
    let cache = cx.cache.clone();
    let key = hash.clone();
    let started = Instant::now();
    let (component, origin) =
        tokio::task::spawn_blocking(move || cache.get_or_compile(&engine, &key, &bytes))
            .await
            .expect("compile task panicked")
            .map_err(|e| fail(LoadErrorKind::Compile(format!("{e:#}"))))?;
    let compile_time = started.elapsed();

    let pre = cx
        .linker
        .instantiate_pre(&component)
        .and_then(PluginPre::new)
        .map_err(|e| fail(LoadErrorKind::Contract(format!("{e:#}"))))?;

    // The manifest is read once per plugin version, here.
    let unnamed = Arc::new(PluginIdentity {
        name: file.display().to_string(),
        version: "?".into(),
    });
    let no_config = Arc::new(BTreeMap::new());
    let nowhere: Arc<[crate::config::AllowedOrigin]> = Arc::from([]);
    let raw = Callable {
        engine: cx.engine,
        pre: &pre,
        identity: &unnamed,
        config: &no_config,
        kv: None,
        http: None,
        allow_http: &nowhere,
        memory_bytes: cx.config.limits.instance_memory_bytes,
        deadlines: cx.config.limits.deadlines,
        warm: None,
    }
    .describe(DESCRIBE_TIMEOUT)
    .await
    .map_err(|e| fail(LoadErrorKind::Describe(e)))?;
    let manifest = Manifest::validate(raw).map_err(|e| fail(LoadErrorKind::Manifest(e)))?;
    let limits = cx.config.plugin_limits(&manifest.name);

    Ok(LoadedPlugin {
        file: file.to_owned(),
        hash,
        identity: Arc::new(PluginIdentity {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
        }),
        config: Arc::new(cx.config.plugin_config(&manifest.name)),
        permits: limits
            .max_instances
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
        warm: crate::generation::warm::WarmPool::new(limits.instance_reuse),
        limits,
        manifest,
        compile_time,
        cached: origin == Origin::Cache,
        pre,
    })
}

impl LoadedPlugin {
    /// What a request needs to call this plugin.
    pub(crate) fn callable<'a>(&'a self, engine: &'a PluginEngine) -> Callable<'a> {
        Callable {
            engine,
            pre: &self.pre,
            identity: &self.identity,
            config: &self.config,
            kv: None,
            http: None,
            allow_http: &self.limits.allow_http,
            memory_bytes: self.limits.memory_bytes,
            deadlines: self.limits.deadlines,
            warm: self.warm.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_tells_component_from_module_from_junk() {
        assert!(check_preamble(b"\0asm\x0d\0\x01\0rest").is_ok());
        assert!(matches!(
            check_preamble(b"\0asm\x01\0\0\0"),
            Err(LoadErrorKind::CoreModule)
        ));
        assert!(matches!(
            check_preamble(b"hello, world"),
            Err(LoadErrorKind::NotWasm)
        ));
        assert!(matches!(
            check_preamble(b"\0asm"),
            Err(LoadErrorKind::NotWasm)
        ));
        assert!(matches!(
            check_preamble(b"\0asm\x02\0\0\0"),
            Err(LoadErrorKind::UnknownVersion(_))
        ));
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            content_hash(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
