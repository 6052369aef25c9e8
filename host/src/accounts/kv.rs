//! The plugin key-value store behind the `kv` host import: rows of the `kv` table keyed by
//! (plugin, key). The plugin's name comes from the Store's `HostState` (the loaded manifest), never from
//! the plugin's arguments, so one plugin can never reach another's keys. Caps: one value at most
//! `limits.kv_value_bytes`; keys + values of one plugin at most `limits.kv_plugin_bytes` (or its
//! `[plugins.<name>] kv_plugin_bytes`). Over either, the plugin gets an error and nothing is written.

use std::collections::BTreeMap;

use crate::accounts::db::Pool;
use crate::bindings::kv::Error as KvError;
use crate::config::Config;

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;

/// The store and its caps; one per process.
#[derive(Debug)]
pub struct KvStore {
    db: Pool,
    value_cap: usize,
    plugin_cap: u64,
    plugin_caps: BTreeMap<String, u64>,
}

fn unavailable(e: sqlx::Error) -> KvError {
    tracing::error!(error = %e, "key-value store error");
    KvError::Unavailable("the host's database did not answer".into())
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidKey(format!(
            "keys must have 1 to {MAX_KEY_BYTES} bytes; this one has {}",
            key.len()
        )));
    }
    Ok(())
}

impl KvStore {
    /// The store over `db` with the caps in `config`.
    pub fn new(db: Pool, config: &Config) -> Self {
        Self {
            db,
            value_cap: config.limits.kv_value_bytes,
            plugin_cap: config.limits.kv_plugin_bytes,
            plugin_caps: config
                .plugins
                .iter()
                .filter_map(|(name, p)| Some((name.clone(), p.kv_plugin_bytes?)))
                .collect(),
        }
    }

    fn cap_of(&self, plugin: &str) -> u64 {
        self.plugin_caps
            .get(plugin)
            .copied()
            .unwrap_or(self.plugin_cap)
    }

    /// `plugin`'s value under `key`.
    pub async fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT value FROM kv WHERE plugin = $1 AND key = $2")
                .bind(plugin)
                .bind(key)
                .fetch_optional(self.db.reader())
                .await
                .map_err(unavailable)?;
        Ok(row.map(|(v,)| v))
    }

    /// Store `value` under `plugin`'s `key`, within the caps. Acknowledged only once committed.
    pub async fn set(&self, plugin: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > self.value_cap {
            return Err(KvError::ValueTooLarge(format!(
                "a value may have at most {} bytes; this one has {}",
                self.value_cap,
                value.len()
            )));
        }
        let cap = self.cap_of(plugin);
        let mut tx = crate::accounts::db::begin_write(&self.db)
            .await
            .map_err(unavailable)?;
        // The plugin's total without the value being replaced.
        let (others,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM kv WHERE plugin = $1 AND key <> $2",
        )
        .bind(plugin)
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        let total = others as u64 + (key.len() + value.len()) as u64;
        if total > cap {
            return Err(KvError::QuotaExceeded(format!(
                "plugin {plugin} may store {cap} bytes in all; this would make {total}"
            )));
        }
        sqlx::query(
            "INSERT INTO kv (plugin, key, value, updated) VALUES ($1, $2, $3, $4)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )
        .bind(plugin)
        .bind(key)
        .bind(value)
        .bind(crate::clock::unix_ms())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    /// Remove `plugin`'s `key`; whether it existed.
    pub async fn delete(&self, plugin: &str, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let done = sqlx::query("DELETE FROM kv WHERE plugin = $1 AND key = $2")
            .bind(plugin)
            .bind(key)
            .execute(self.db.writer())
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() > 0)
    }

    /// `plugin`'s keys starting with `prefix`, in order.
    pub async fn list(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        // A range plus an exact prefix test instead of LIKE: no escaping of % and _, and the range uses
        // the primary key.
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT key FROM kv WHERE plugin = $1 AND key >= $2 AND SUBSTR(key, 1, LENGTH($2)) = $2
             ORDER BY key",
        )
        .bind(plugin)
        .bind(prefix)
        .fetch_all(self.db.reader())
        .await
        .map_err(unavailable)?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }
}
