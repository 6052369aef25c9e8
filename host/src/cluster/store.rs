//! The plugin set in PostgreSQL: components by SHA-256 (`components`), one row per plugin name with its
//! component and enabled state (`plugin_set`), and the one durable `revision` (`cluster`) that every
//! change bumps in the same transaction as the change and its audit row, then announces with
//! `pg_notify`. A node turns a snapshot of the set into files ([`materialize`]) and loads them as a
//! generation, exactly as it would load a plugins directory.
//!
//! A change ([`apply`]) is checked before anything is committed: the component alone (as
//! `plugin-host check` checks it), then the whole resulting set built as a trial generation (route
//! conflicts, duplicate names, views), all under the `plugins` advisory lock, so a set that does not
//! load never reaches any node.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::accounts::db::{self, Pool};
use crate::config::Config;
use crate::generation::Generation;

/// The channel every change is announced on; the payload is the new revision.
pub const CHANNEL: &str = "plugin_host_revision";

/// One plugin of the set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub name: String,
    pub sha256: String,
    pub version: String,
    pub enabled: bool,
    pub size: i64,
    pub updated: i64,
}

/// The set at one revision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub revision: i64,
    pub plugins: Vec<Entry>,
}

/// The current revision.
pub async fn revision(db: &Pool) -> Result<i64, sqlx::Error> {
    let (revision,): (i64,) = sqlx::query_as("SELECT revision FROM cluster WHERE id = 1")
        .fetch_one(db.reader())
        .await?;
    Ok(revision)
}

type EntryRow = (String, String, String, i64, i64, i64);

const SELECT_SET: &str = "SELECT p.name, p.sha256, p.version, p.enabled, c.size, p.updated
     FROM plugin_set p JOIN components c ON c.sha256 = p.sha256 ORDER BY p.name";

fn entry((name, sha256, version, enabled, size, updated): EntryRow) -> Entry {
    Entry {
        name,
        sha256,
        version,
        enabled: enabled != 0,
        size,
        updated,
    }
}

/// The revision and the set it names, read in one snapshot.
pub async fn snapshot(db: &Pool) -> Result<Snapshot, sqlx::Error> {
    let mut tx = db
        .reader()
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let (revision,): (i64,) = sqlx::query_as("SELECT revision FROM cluster WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let rows: Vec<EntryRow> = sqlx::query_as(SELECT_SET).fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(Snapshot {
        revision,
        plugins: rows.into_iter().map(entry).collect(),
    })
}

/// Where a node keeps what it fetched: `<data_dir>/cluster/blobs/<sha256>.wasm`, the set it serves
/// (`plugins/`, `NAME.wasm` and `NAME.wasm.disabled` as in a plugins directory) and trial sets.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub blobs: PathBuf,
    pub serving: PathBuf,
    pub trials: PathBuf,
}

impl Dirs {
    pub fn under(data_dir: &Path) -> Self {
        let root = data_dir.join("cluster");
        Self {
            blobs: root.join("blobs"),
            serving: root.join("plugins"),
            trials: root.join("trials"),
        }
    }

    fn create(&self) -> Result<()> {
        for dir in [&self.blobs, &self.serving, &self.trials] {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        Ok(())
    }

    fn blob(&self, sha256: &str) -> PathBuf {
        self.blobs.join(format!("{sha256}.wasm"))
    }
}

/// Write `bytes` to `path` through a hidden temporary file (synced, then renamed into place).
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().expect("a file in a directory");
    let temp = dir.join(format!(
        ".{}.{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        db::hex(&db::random_bytes::<6>())
    ));
    let written = std::fs::File::create(&temp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// The blob `sha256`, fetched from the database when this node does not have it yet. The bytes are
/// checked against their name, so a damaged row is never served.
async fn ensure_blob(db: &Pool, dirs: &Dirs, sha256: &str) -> Result<PathBuf> {
    let path = dirs.blob(sha256);
    if path.is_file() {
        return Ok(path);
    }
    let (bytes,): (Vec<u8>,) = sqlx::query_as("SELECT bytes FROM components WHERE sha256 = $1")
        .bind(sha256)
        .fetch_one(db.reader())
        .await
        .with_context(|| format!("cannot fetch component {sha256}"))?;
    anyhow::ensure!(
        db::sha256_hex(&bytes) == sha256,
        "component {sha256} in the database does not match its SHA-256"
    );
    write_atomically(&path, &bytes)?;
    tracing::info!(sha256, bytes = bytes.len(), "fetched component");
    Ok(path)
}

/// Make `dir` hold exactly `plugins`: `NAME.wasm` for each enabled one and `NAME.wasm.disabled` for each
/// disabled one, hard links to the blobs (copies where links fail); other plugin files are removed.
pub async fn materialize(db: &Pool, dirs: &Dirs, dir: &Path, plugins: &[Entry]) -> Result<()> {
    dirs.create()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut wanted = std::collections::HashSet::new();
    for p in plugins {
        let blob = ensure_blob(db, dirs, &p.sha256).await?;
        let file = if p.enabled {
            format!("{}.wasm", p.name)
        } else {
            format!("{}.wasm{}", p.name, crate::generation::DISABLED_SUFFIX)
        };
        let target = dir.join(&file);
        wanted.insert(file);
        if same_file(&blob, &target) {
            continue;
        }
        let temp = dir.join(format!(".{}.linking", p.name));
        let _ = std::fs::remove_file(&temp);
        std::fs::hard_link(&blob, &temp)
            .or_else(|_| std::fs::copy(&blob, &temp).map(drop))
            .and_then(|()| std::fs::rename(&temp, &target))
            .with_context(|| format!("cannot place {}", target.display()))?;
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let plugin_file = name.ends_with(".wasm")
            || name.ends_with(&format!(".wasm{}", crate::generation::DISABLED_SUFFIX));
        if plugin_file && !wanted.contains(&name) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Whether `a` and `b` are the same file (one inode), so placing `a` as `b` would change nothing.
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// A change to the plugin set.
#[derive(Debug)]
pub enum Change {
    /// Add plugin `name` or replace its component (`bytes`, already checked by the caller).
    Put {
        name: String,
        version: String,
        sha256: String,
        bytes: bytes::Bytes,
    },
    Enable(String),
    Disable(String),
    Remove(String),
}

impl Change {
    fn plugin(&self) -> &str {
        match self {
            Self::Put { name, .. }
            | Self::Enable(name)
            | Self::Disable(name)
            | Self::Remove(name) => name,
        }
    }

    fn action(&self) -> &'static str {
        match self {
            Self::Put { .. } => "plugin.push",
            Self::Enable(_) => "plugin.enable",
            Self::Disable(_) => "plugin.disable",
            Self::Remove(_) => "plugin.remove",
        }
    }
}

/// Why a change was not made; nothing was committed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl From<sqlx::Error> for ChangeError {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(anyhow::Error::new(e).context("the database refused the change"))
    }
}

/// A committed change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Applied {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub enabled: bool,
    /// The revision that holds the change (unchanged when the change was already in place).
    pub revision: i64,
    /// False when the set already was as asked (nothing written, nothing announced).
    pub changed: bool,
}

/// Apply `change` (see the module docs): returns the new revision, or why nothing changed. `actor` and
/// `client` go into the audit row written in the same transaction.
pub async fn apply(
    db: &Pool,
    config: &Config,
    change: Change,
    actor: &str,
    client: &str,
) -> Result<Applied, ChangeError> {
    let dirs = Dirs::under(&config.data_dir);
    dirs.create().map_err(ChangeError::Failed)?;
    if let Change::Put { sha256, bytes, .. } = &change
        && !dirs.blob(sha256).is_file()
    {
        write_atomically(&dirs.blob(sha256), bytes).map_err(ChangeError::Failed)?;
    }
    let mut tx = db::begin_write_scoped(db, "plugins").await?;
    let rows: Vec<EntryRow> = sqlx::query_as(SELECT_SET).fetch_all(&mut *tx).await?;
    let mut set: Vec<Entry> = rows.into_iter().map(entry).collect();
    let name = change.plugin().to_owned();
    let position = set.iter().position(|e| e.name == name);
    let now = crate::clock::unix_ms();
    let missing = || ChangeError::NotFound(format!("no plugin named {name:?} in the plugin set"));
    let unchanged = match (&change, position) {
        (
            Change::Put {
                version,
                sha256,
                bytes,
                ..
            },
            _,
        ) => {
            let new = Entry {
                name: name.clone(),
                sha256: sha256.clone(),
                version: version.clone(),
                enabled: true,
                size: bytes.len() as i64,
                updated: now,
            };
            match position {
                Some(i) if set[i].sha256 == *sha256 && set[i].enabled => true,
                Some(i) => {
                    set[i] = new;
                    false
                }
                None => {
                    set.push(new);
                    false
                }
            }
        }
        (Change::Enable(_), Some(i)) => std::mem::replace(&mut set[i].enabled, true),
        (Change::Disable(_), Some(i)) => !std::mem::replace(&mut set[i].enabled, false),
        (Change::Remove(_), Some(i)) => {
            set.remove(i);
            false
        }
        (_, None) => return Err(missing()),
    };
    let described = set.iter().find(|e| e.name == name).cloned();
    let applied = |revision, changed| {
        let e = described.clone();
        Applied {
            name: name.clone(),
            version: e.as_ref().map(|e| e.version.clone()).unwrap_or_default(),
            sha256: e.as_ref().map(|e| e.sha256.clone()).unwrap_or_default(),
            enabled: e.is_some_and(|e| e.enabled),
            revision,
            changed,
        }
    };
    if unchanged {
        let (revision,): (i64,) = sqlx::query_as("SELECT revision FROM cluster WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        tx.rollback().await?;
        return Ok(applied(revision, false));
    }
    trial_build(db, config, &dirs, &set).await?;
    match &change {
        Change::Put {
            version,
            sha256,
            bytes,
            ..
        } => {
            sqlx::query(
                "INSERT INTO components (sha256, bytes, size, added) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(bytes.as_ref())
            .bind(bytes.len() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO plugin_set (name, sha256, version, enabled, updated) VALUES ($1, $2, $3, 1, $4)
                 ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, version = excluded.version,
                 enabled = 1, updated = excluded.updated",
            )
            .bind(&name)
            .bind(sha256)
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        Change::Enable(_) | Change::Disable(_) => {
            sqlx::query("UPDATE plugin_set SET enabled = $1, updated = $2 WHERE name = $3")
                .bind(i64::from(matches!(change, Change::Enable(_))))
                .bind(now)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
        }
        Change::Remove(_) => {
            sqlx::query("DELETE FROM plugin_set WHERE name = $1")
                .bind(&name)
                .execute(&mut *tx)
                .await?;
        }
    }
    let (revision,): (i64,) = sqlx::query_as(
        "UPDATE cluster SET revision = revision + 1 WHERE id = 1 RETURNING revision",
    )
    .fetch_one(&mut *tx)
    .await?;
    let detail = match &described {
        Some(e) => format!(
            "revision {revision}: {} {} ({}){}",
            e.name,
            e.version,
            &e.sha256[..12],
            if e.enabled { "" } else { ", disabled" }
        ),
        None => format!("revision {revision}: removed"),
    };
    sqlx::query(
        "INSERT INTO audit (time, actor, action, target, detail, client) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(now)
    .bind(actor)
    .bind(change.action())
    .bind(&name)
    .bind(&detail)
    .bind(client)
    .execute(&mut *tx)
    .await?;
    // Delivered at commit; only a wake-up (nodes re-read the revision).
    sqlx::query("SELECT COUNT(*) FROM (SELECT pg_notify($1, $2)) AS sent")
        .bind(CHANNEL)
        .bind(revision.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(plugin = %name, action = change.action(), revision, "plugin set changed");
    Ok(applied(revision, true))
}

/// Build `set` as a generation in a scratch directory: whatever would stop a node from loading it is
/// found here, before the change is committed.
async fn trial_build(
    db: &Pool,
    config: &Config,
    dirs: &Dirs,
    set: &[Entry],
) -> Result<(), ChangeError> {
    let dir = dirs
        .trials
        .join(format!("trial-{}", db::hex(&db::random_bytes::<6>())));
    let result = async {
        materialize(db, dirs, &dir, set)
            .await
            .map_err(ChangeError::Failed)?;
        let mut trial = config.clone();
        trial.plugins_dir = dir.clone();
        Generation::build(0, &trial).await.map(drop).map_err(|e| {
            ChangeError::Refused(format!(
                "the plugin set would not load with this change, so nothing changed: {e}"
            ))
        })
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Check `bytes` as a plugin component exactly as `plugin-host check` does; its (name, version,
/// sha256). `shown` names the upload in messages.
pub async fn check_component(
    config: &Config,
    bytes: &[u8],
    shown: &str,
) -> Result<(String, String, String), ChangeError> {
    if bytes.is_empty() {
        return Err(ChangeError::Refused(format!("{shown} is empty")));
    }
    let sha256 = db::sha256_hex(bytes);
    let dirs = Dirs::under(&config.data_dir);
    dirs.create().map_err(ChangeError::Failed)?;
    let temp = dirs
        .trials
        .join(format!(".check-{}.wasm", db::hex(&db::random_bytes::<6>())));
    write_atomically(&temp, bytes).map_err(ChangeError::Failed)?;
    let checked = crate::generation::check_plugin(config, &temp).await;
    let _ = std::fs::remove_file(&temp);
    match checked {
        Ok(plugin) => Ok((
            plugin.manifest.name.clone(),
            plugin.manifest.version.clone(),
            sha256,
        )),
        Err(e) => Err(ChangeError::Refused(format!(
            "{shown} was refused and nothing changed: {}",
            e.to_string().replace(&temp.display().to_string(), shown)
        ))),
    }
}
