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
                Ok(component) => return Ok((component, Origin::Cache)),
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
        let hash = crate::plugin::content_hash(&wasm);
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
}
