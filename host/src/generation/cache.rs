//! The on-disk compile cache: compiled plugin code keyed by the plugin file's SHA-256 and the Engine's
//! configuration fingerprint, so a reload recompiles only what changed.
//!
//! Layout: `<data_dir>/compile-cache/<engine fingerprint>/<sha256>.cwasm`. Each entry is a small header
//! (magic, SHA-256 of the payload) followed by wasmtime's serialized component. An entry is used only if
//! its checksum matches and wasmtime accepts it for this Engine; anything else (truncated, corrupt,
//! written by another wasmtime or configuration) is logged, recompiled and overwritten. Entries are
//! written to a temporary file and renamed into place, so a crash never leaves a half-written entry.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"PHCACHE1";
const HEADER_LEN: usize = MAGIC.len() + 32;

/// A compile cache for one Engine configuration.
#[derive(Debug, Clone)]
pub struct CompileCache {
    /// `None`: caching is off (every load compiles; nothing is written).
    dir: Option<PathBuf>,
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Deserialized from a valid cache entry.
    Cache,
    /// Compiled now (and written to the cache).
    Compiled,
}

/// The fingerprint of everything in an Engine's configuration that affects compiled code (wasmtime
/// version, target, compiler settings, tunables), as hex.
pub fn engine_fingerprint(engine: &Engine) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

impl CompileCache {
    /// The cache for `engine` under `data_dir`.
    pub fn new(data_dir: &Path, engine: &Engine) -> Self {
        Self {
            dir: Some(
                data_dir
                    .join("compile-cache")
                    .join(engine_fingerprint(engine)),
            ),
        }
    }

    /// No caching: for one-off loads such as `plugin-host check`, which must not write anywhere.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    fn entry(&self, hash: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(format!("{hash}.cwasm")))
    }

    /// The component for `bytes` (whose SHA-256 is `hash`): from the cache when a valid entry exists,
    /// else compiled and stored. CPU-bound: call from a blocking thread.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        hash: &str,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, Origin)> {
        let Some(path) = self.entry(hash) else {
            return Ok((Component::from_binary(engine, bytes)?, Origin::Compiled));
        };
        match std::fs::read(&path) {
            Ok(entry) => match load_entry(engine, &entry) {
                Ok(component) => {
                    // Mark it used, for pruning (best effort).
                    if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                        let _ = file.set_modified(std::time::SystemTime::now());
                    }
                    return Ok((component, Origin::Cache));
                }
                Err(reason) => tracing::warn!(
                    entry = %path.display(),
                    %reason,
                    "compile cache entry rejected; recompiling"
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "cannot read compile cache entry")
            }
        }
        let component = Component::from_binary(engine, bytes)?;
        if let Err(e) = self.store(&path, &component) {
            // The cache is an optimisation: failing to write it costs a recompile next time, nothing else.
            tracing::warn!(entry = %path.display(), error = %format!("{e:#}"), "cannot write compile cache entry");
        }
        Ok((component, Origin::Compiled))
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        let dir = path.parent().expect("cache entries live in a directory");
        let payload = component.serialize()?;
        let mut entry = Vec::with_capacity(HEADER_LEN + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(&Sha256::digest(&payload));
        entry.extend_from_slice(&payload);
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &entry)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

impl CompileCache {
    /// Delete what no longer pays its way: entries of this Engine configuration whose plugin is not in
    /// `keep` and that were not used for `max_age`, and whole directories of other configurations (another
    /// wasmtime version or settings) older than `max_age`. Recently used entries stay, so rolling back
    /// to a plugin deployed a moment ago is still cheap. Returns how many entries were removed. Failures
    /// are logged and skipped: the cache is only an optimisation.
    pub fn prune(&self, keep: &[&str], max_age: std::time::Duration) -> usize {
        let Some(dir) = &self.dir else { return 0 };
        let old = |meta: &std::fs::Metadata| {
            meta.modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > max_age)
        };
        let mut removed = 0;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let stale = entry.metadata().is_ok_and(|m| old(&m));
            if stale && !keep.contains(&stem) && std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        let siblings = dir
            .parent()
            .map(std::fs::read_dir)
            .into_iter()
            .flatten()
            .flatten();
        for sibling in siblings.flatten() {
            let path = sibling.path();
            let stale = sibling.metadata().is_ok_and(|m| m.is_dir() && old(&m));
            if path != *dir && stale {
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => removed += 1,
                    Err(e) => {
                        tracing::warn!(dir = %path.display(), error = %e, "cannot prune compile cache")
                    }
                }
            }
        }
        removed
    }
}

/// Check an entry's header and checksum, then let wasmtime check compatibility and deserialize it.
fn load_entry(engine: &Engine, entry: &[u8]) -> Result<Component, String> {
    if entry.len() < HEADER_LEN || &entry[..MAGIC.len()] != MAGIC {
        return Err("not a Plugin Host cache entry".into());
    }
    let (checksum, payload) = entry[MAGIC.len()..].split_at(32);
    if Sha256::digest(payload).as_slice() != checksum {
        return Err("checksum mismatch (corrupt or truncated)".into());
    }
    deserialize(engine, payload).map_err(|e| format!("{e:#}"))
}

/// Deserialize compiled code.
///
/// `Component::deserialize` is unsafe because the bytes become executable code. They are trusted here
/// because (1) this process wrote them, into the host's own data directory, (2) the checksum above
/// rules out corruption, and (3) wasmtime itself refuses bytes from another version or configuration.
#[allow(
    unsafe_code,
    reason = "deserializing compiled code the host itself cached; see above"
)]
fn deserialize(engine: &Engine, payload: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see the function documentation.
    unsafe { Component::deserialize(engine, payload) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_entries_that_are_not_ours_or_corrupt() {
        let engine = Engine::default();
        assert!(
            load_entry(&engine, b"short")
                .unwrap_err()
                .contains("not a Plugin Host")
        );
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(b"payload"));
        entry.extend_from_slice(b"payloaX");
        assert!(
            load_entry(&engine, &entry)
                .unwrap_err()
                .contains("checksum")
        );
        // A valid checksum over bytes wasmtime does not accept: refused by wasmtime, not trusted.
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(b"payload"));
        entry.extend_from_slice(b"payload");
        assert!(load_entry(&engine, &entry).is_err());
    }

    #[test]
    fn compiles_once_then_reads_from_cache_and_survives_corruption() {
        let engine = Engine::default();
        let dir = std::env::temp_dir().join(format!("ph-cache-{}", std::process::id()));
        let cache = CompileCache::new(&dir, &engine);
        let wasm = wat::parse_str("(component)").unwrap();
        let hash = crate::generation::plugin::content_hash(&wasm);
        let (_, first) = cache.get_or_compile(&engine, &hash, &wasm).unwrap();
        assert_eq!(first, Origin::Compiled);
        let (_, second) = cache.get_or_compile(&engine, &hash, &wasm).unwrap();
        assert_eq!(second, Origin::Cache);
        // Flip a byte in the payload: detected, recompiled, rewritten.
        let path = cache.entry(&hash).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (_, third) = cache.get_or_compile(&engine, &hash, &wasm).unwrap();
        assert_eq!(third, Origin::Compiled);
        let (_, fourth) = cache.get_or_compile(&engine, &hash, &wasm).unwrap();
        assert_eq!(fourth, Origin::Cache);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn prune_keeps_loaded_and_recent_entries() {
        let engine = Engine::default();
        let dir = std::env::temp_dir().join(format!("ph-prune-{}", std::process::id()));
        let cache = CompileCache::new(&dir, &engine);
        let wasm = wat::parse_str("(component)").unwrap();
        let hash = crate::generation::plugin::content_hash(&wasm);
        cache.get_or_compile(&engine, &hash, &wasm).unwrap();
        let foreign = dir.join("compile-cache").join("0000000000000000");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(foreign.join("x.cwasm"), b"old").unwrap();
        // Everything is recent: nothing goes.
        assert_eq!(cache.prune(&[], std::time::Duration::from_secs(3600)), 0);
        // Everything is "old": the unused entry and the foreign directory go, a kept one stays.
        assert_eq!(cache.prune(&[hash.as_str()], std::time::Duration::ZERO), 1);
        assert!(cache.entry(&hash).unwrap().exists());
        assert!(!foreign.exists());
        assert_eq!(cache.prune(&[], std::time::Duration::ZERO), 1);
        assert!(!cache.entry(&hash).unwrap().exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}
