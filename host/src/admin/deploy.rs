//! Changing the plugins directory from the admin UI: upload a component, disable or enable a plugin,
//! delete one. Each change is followed by a reload; when the reload fails, the directory is put back as
//! it was, so a refused change changes nothing and the serving generation never notices.
//!
//! - An upload is written to a hidden temporary file (loading skips hidden files), checked exactly as
//!   `plugin-host check` checks a file, then renamed over its place: `NAME.wasm` after the name in its
//!   manifest, or the file of the loaded plugin with that name (an upgrade).
//! - Disabling renames `X.wasm` to `X.wasm.disabled` (loading reads `*.wasm` only); enabling renames it
//!   back. Both survive restarts and are plain to see with `ls`.
//! - Changes hold `AppState::deploy`, so two operators never interleave their renames.
//!
//! In cluster mode the same four changes go to the database's plugin set instead (`cluster/store.rs`:
//! checked, trial-built, committed with a new revision and its audit row, announced to every node), and
//! this node reloads to the new revision before answering.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::state::{AppState, ReloadOutcome};

pub(crate) use crate::generation::DISABLED_SUFFIX;
/// The largest component an upload may carry.
pub(crate) const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// Why a change was refused; the directory is as it was.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployError {
    /// The file or the change is not acceptable (422).
    #[error("{0}")]
    Refused(String),
    /// No such plugin file (404).
    #[error("{0}")]
    NotFound(String),
    /// The directory could not be changed (500).
    #[error("{0}")]
    Io(String),
}

/// A change that went through: what was done and the reload that made it live.
#[derive(Debug)]
pub(crate) struct Deployed {
    pub(crate) message: String,
    /// The plugin the change was about.
    pub(crate) plugin: String,
    /// Cluster mode: the committed change (its audit row was written with it).
    pub(crate) applied: Option<crate::cluster::store::Applied>,
}

impl Deployed {
    fn file(message: String, plugin: String) -> Self {
        Self {
            message,
            plugin,
            applied: None,
        }
    }
}

/// Who makes a change, from where: for the audit row that cluster mode writes with the change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who<'a> {
    pub(crate) actor: &'a str,
    pub(crate) client: &'a str,
}

/// Cluster mode: apply `change` to the database's plugin set, then reload this node to it.
async fn cluster_change(
    state: &Arc<AppState>,
    who: Who<'_>,
    change: crate::cluster::store::Change,
) -> Result<Deployed, DeployError> {
    use crate::cluster::store::{self, ChangeError};
    let described = format!("{change:?}");
    let applied = store::apply(
        &state.auth.db,
        state.config(),
        change,
        who.actor,
        who.client,
    )
    .await
    .map_err(|e| match e {
        ChangeError::Refused(m) => DeployError::Refused(m),
        ChangeError::NotFound(m) => DeployError::NotFound(m),
        ChangeError::Failed(e) => {
            tracing::error!(error = %format!("{e:#}"), change = %described.chars().take(80).collect::<String>(), "plugin set change failed");
            DeployError::Io(format!("{e:#}"))
        }
    })?;
    let outcome = state.reload().await;
    let what = if applied.changed { "" } else { " (no change)" };
    let served = if outcome.ok {
        format!("generation {} serves it", outcome.generation)
    } else {
        format!(
            "this node could not load it yet: {}",
            outcome.error.clone().unwrap_or_default()
        )
    };
    Ok(Deployed {
        message: format!(
            "Plugin set revision {}: {} {}{}{what}; {served}",
            applied.revision,
            applied.name,
            applied.version,
            if applied.sha256.is_empty() {
                " removed".to_owned()
            } else if applied.enabled {
                String::new()
            } else {
                " disabled".to_owned()
            },
        ),
        plugin: applied.name.clone(),
        applied: Some(applied),
    })
}

/// The plugin a file name of the serving directory stands for (`NAME.wasm`, `NAME.wasm.disabled`).
fn name_of_file(file: &str) -> &str {
    file.trim_end_matches(DISABLED_SUFFIX)
        .trim_end_matches(".wasm")
}

/// A file of the plugins directory as the plugins page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct DisabledFile {
    pub(crate) file: String,
    pub(crate) bytes: u64,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> DeployError {
    tracing::error!(path = %path.display(), error = %e, "{what}");
    DeployError::Io(format!("{what} {}: {e}", path.display()))
}

fn random_suffix() -> String {
    crate::accounts::db::hex(&crate::accounts::db::random_bytes::<6>())
}

/// A plain file name of the plugins directory (no folders, not hidden) ending in `suffix`.
fn plain_name<'a>(name: &'a str, suffix: &str) -> Result<&'a str, DeployError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && name.ends_with(suffix)
        && name.len() > suffix.len();
    if ok {
        Ok(name)
    } else {
        Err(DeployError::Refused(format!(
            "{name:?} is not a plugin file name (expected NAME{suffix})"
        )))
    }
}

fn sync_dir(dir: &Path) {
    // Makes the renames durable; a failure here only weakens crash safety, so it is logged.
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the plugins directory");
    }
}

/// Reload; on failure run `undo` (which puts the directory back) and report why.
async fn reload_or_undo(
    state: &Arc<AppState>,
    dir: &Path,
    undo: impl FnOnce() -> std::io::Result<()>,
) -> Result<Arc<ReloadOutcome>, DeployError> {
    let outcome = state.reload().await;
    if outcome.ok {
        return Ok(outcome);
    }
    let error = outcome.error.clone().unwrap_or_default();
    if let Err(e) = undo() {
        return Err(io_error(
            "the reload failed and the change could not be undone in",
            dir,
            e,
        ));
    }
    sync_dir(dir);
    Err(DeployError::Refused(format!(
        "The reload failed, so nothing changed: {error}"
    )))
}

/// Check `bytes` as a plugin, put it in place and reload. `upload_name` is the uploaded file's name
/// (only used in messages).
pub(crate) async fn upload(
    state: &Arc<AppState>,
    who: Who<'_>,
    upload_name: &str,
    bytes: bytes::Bytes,
    expected: Option<&str>,
) -> Result<Deployed, DeployError> {
    let _guard = state.deploy.lock().await;
    let config = state.config();
    let named = |name: &str| match expected {
        Some(e) if e != name => Err(DeployError::Refused(format!(
            "{upload_name} is plugin {name:?}, not {e:?}; nothing changed"
        ))),
        _ => Ok(()),
    };
    if state.cluster().is_some() {
        let (name, version, sha256) =
            crate::cluster::store::check_component(config, &bytes, upload_name)
                .await
                .map_err(|e| DeployError::Refused(e.to_string()))?;
        named(&name)?;
        let change = crate::cluster::store::Change::Put {
            name,
            version,
            sha256,
            bytes,
        };
        return cluster_change(state, who, change).await;
    }
    let dir = &config.plugins_dir;
    if bytes.is_empty() {
        return Err(DeployError::Refused(format!("{upload_name:?} is empty")));
    }
    let temp = write_upload(dir, bytes).await?;
    let remove_temp = || {
        let _ = std::fs::remove_file(&temp);
    };
    let name = match crate::generation::check_plugin(config, &temp).await {
        Ok(plugin) => {
            if let Err(refused) = named(&plugin.manifest.name) {
                remove_temp();
                return Err(refused);
            }
            plugin.manifest.name.clone()
        }
        Err(e) => {
            remove_temp();
            let reason = e
                .to_string()
                .replace(&temp.display().to_string(), upload_name);
            return Err(DeployError::Refused(format!(
                "The upload was refused and nothing changed: {reason}"
            )));
        }
    };
    let placed = place(state, dir, &temp, &name).inspect_err(|_| remove_temp())?;
    sync_dir(dir);
    let outcome = reload_or_undo(state, dir, || placed.undo()).await?;
    placed.forget_backup();
    let version = outcome
        .plugins
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.version.clone())
        .unwrap_or_default();
    let file = placed
        .target
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    Ok(Deployed::file(
        format!(
            "{} plugin {name} {version} as {file}; generation {} serves it",
            if placed.backup.is_some() {
                "Replaced"
            } else {
                "Added"
            },
            outcome.generation
        ),
        name,
    ))
}

/// Write an upload to a hidden temporary file in `dir` (synced), and return its path.
async fn write_upload(dir: &Path, bytes: bytes::Bytes) -> Result<PathBuf, DeployError> {
    let temp = dir.join(format!(".upload-{}.wasm", random_suffix()));
    let written = {
        let temp = temp.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(&temp)?;
            f.write_all(&bytes)?;
            f.sync_all()
        })
        .await
        .expect("writing the upload does not panic")
    };
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io_error("cannot write the upload to", &temp, e));
    }
    Ok(temp)
}

/// A checked upload renamed into place as plugin `name`'s file, with the previous version set aside.
struct Placed {
    target: PathBuf,
    /// Where the version it replaced waits until the reload has worked.
    backup: Option<PathBuf>,
}

impl Placed {
    /// Put the previous version back (or remove a new plugin's file).
    fn undo(&self) -> std::io::Result<()> {
        match &self.backup {
            Some(backup) => std::fs::rename(backup, &self.target),
            None => std::fs::remove_file(&self.target),
        }
    }

    /// The reload worked: the previous version is not needed any more.
    fn forget_backup(&self) {
        if let Some(backup) = &self.backup
            && let Err(e) = std::fs::remove_file(backup)
        {
            tracing::warn!(path = %backup.display(), error = %e, "cannot remove the previous version");
        }
    }
}

/// Rename `temp` over plugin `name`'s file (the loaded one's, else `NAME.wasm`), setting an existing
/// one aside; refused while the plugin is disabled.
fn place(state: &AppState, dir: &Path, temp: &Path, name: &str) -> Result<Placed, DeployError> {
    let current = state.current();
    let target = match current.plugin_index(name) {
        Some(i) => current.plugins[i].file.clone(),
        None => dir.join(format!("{name}.wasm")),
    };
    drop(current);
    let disabled = PathBuf::from(format!("{}{DISABLED_SUFFIX}", target.display()));
    if disabled.exists() {
        return Err(DeployError::Refused(format!(
            "plugin {name:?} is disabled ({}); enable or delete it before uploading a new version",
            disabled.display()
        )));
    }
    let backup = target
        .exists()
        .then(|| dir.join(format!(".{name}.wasm.previous-{}", random_suffix())));
    if let Some(backup) = &backup
        && let Err(e) = std::fs::rename(&target, backup)
    {
        return Err(io_error("cannot set aside", &target, e));
    }
    if let Err(e) = std::fs::rename(temp, &target) {
        if let Some(backup) = &backup {
            let _ = std::fs::rename(backup, &target);
        }
        return Err(io_error("cannot move the upload to", &target, e));
    }
    Ok(Placed { target, backup })
}

/// Rename `X.wasm` to `X.wasm.disabled` and reload.
pub(crate) async fn disable(
    state: &Arc<AppState>,
    who: Who<'_>,
    file: &str,
) -> Result<Deployed, DeployError> {
    let _guard = state.deploy.lock().await;
    if state.cluster().is_some() {
        let change = crate::cluster::store::Change::Disable(name_of_file(file).to_owned());
        return cluster_change(state, who, change).await;
    }
    let dir = &state.config().plugins_dir;
    let file = plain_name(file, ".wasm")?;
    let from = dir.join(file);
    if !from.is_file() {
        return Err(DeployError::NotFound(format!(
            "no plugin file {file} in {}",
            dir.display()
        )));
    }
    let plugin = plugin_of(state, &from);
    let to = dir.join(format!("{file}{DISABLED_SUFFIX}"));
    std::fs::rename(&from, &to).map_err(|e| io_error("cannot disable", &from, e))?;
    sync_dir(dir);
    let outcome = reload_or_undo(state, dir, || std::fs::rename(&to, &from)).await?;
    Ok(Deployed::file(
        format!(
            "Disabled {plugin} ({file} is now {file}{DISABLED_SUFFIX}); generation {} runs without it",
            outcome.generation
        ),
        plugin,
    ))
}

/// Rename `X.wasm.disabled` back to `X.wasm` and reload.
pub(crate) async fn enable(
    state: &Arc<AppState>,
    who: Who<'_>,
    file: &str,
) -> Result<Deployed, DeployError> {
    let _guard = state.deploy.lock().await;
    if state.cluster().is_some() {
        let change = crate::cluster::store::Change::Enable(name_of_file(file).to_owned());
        return cluster_change(state, who, change).await;
    }
    let dir = &state.config().plugins_dir;
    let file = plain_name(file, &format!(".wasm{DISABLED_SUFFIX}"))?;
    let from = dir.join(file);
    if !from.is_file() {
        return Err(DeployError::NotFound(format!(
            "no disabled plugin file {file} in {}",
            dir.display()
        )));
    }
    let enabled = file.trim_end_matches(DISABLED_SUFFIX);
    let to = dir.join(enabled);
    if to.exists() {
        return Err(DeployError::Refused(format!(
            "{enabled} exists already; delete one of the two files first"
        )));
    }
    std::fs::rename(&from, &to).map_err(|e| io_error("cannot enable", &from, e))?;
    sync_dir(dir);
    let outcome = reload_or_undo(state, dir, || std::fs::rename(&to, &from)).await?;
    let plugin = plugin_of(state, &to);
    Ok(Deployed::file(
        format!(
            "Enabled {plugin} ({enabled}); generation {} serves it",
            outcome.generation
        ),
        plugin,
    ))
}

/// Delete a plugin file: a loaded one is set aside, the directory reloaded, and only then removed; a
/// disabled one is simply removed (nothing serves it).
pub(crate) async fn delete(
    state: &Arc<AppState>,
    who: Who<'_>,
    file: &str,
) -> Result<Deployed, DeployError> {
    let _guard = state.deploy.lock().await;
    if state.cluster().is_some() {
        let change = crate::cluster::store::Change::Remove(name_of_file(file).to_owned());
        return cluster_change(state, who, change).await;
    }
    let dir = &state.config().plugins_dir;
    let disabled = file.ends_with(DISABLED_SUFFIX);
    let file = if disabled {
        plain_name(file, &format!(".wasm{DISABLED_SUFFIX}"))?
    } else {
        plain_name(file, ".wasm")?
    };
    let path = dir.join(file);
    if !path.is_file() {
        return Err(DeployError::NotFound(format!(
            "no plugin file {file} in {}",
            dir.display()
        )));
    }
    let plugin = plugin_of(state, &path);
    if disabled {
        std::fs::remove_file(&path).map_err(|e| io_error("cannot delete", &path, e))?;
        sync_dir(dir);
        return Ok(Deployed::file(format!("Deleted {file}"), plugin));
    }
    let aside = dir.join(format!(".{file}.deleted-{}", random_suffix()));
    std::fs::rename(&path, &aside).map_err(|e| io_error("cannot delete", &path, e))?;
    sync_dir(dir);
    let outcome = reload_or_undo(state, dir, || std::fs::rename(&aside, &path)).await?;
    if let Err(e) = std::fs::remove_file(&aside) {
        tracing::warn!(path = %aside.display(), error = %e, "cannot remove a deleted plugin's file");
    }
    Ok(Deployed::file(
        format!(
            "Deleted {plugin} ({file}); generation {} runs without it",
            outcome.generation
        ),
        plugin,
    ))
}

/// The name of the plugin loaded from `file` in the current generation, or the file's stem.
fn plugin_of(state: &AppState, file: &Path) -> String {
    let current = state.current();
    current
        .plugins
        .iter()
        .find(|p| p.file == file)
        .map(|p| p.manifest.name.clone())
        .unwrap_or_else(|| {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            name.split('.').next().unwrap_or_default().to_owned()
        })
}

/// The disabled plugin files in the plugins directory, by name.
pub(crate) fn disabled_files(dir: &Path) -> Vec<DisabledFile> {
    let mut files: Vec<DisabledFile> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().to_string_lossy().into_owned();
            let wanted = !file.starts_with('.')
                && file.ends_with(&format!(".wasm{DISABLED_SUFFIX}"))
                && entry.file_type().is_ok_and(|t| t.is_file());
            wanted.then(|| DisabledFile {
                bytes: entry.metadata().map_or(0, |m| m.len()),
                file,
            })
        })
        .collect();
    files.sort_by(|a, b| a.file.cmp(&b.file));
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_accepted() {
        assert!(plain_name("hello.wasm", ".wasm").is_ok());
        assert!(plain_name("hello.wasm.disabled", ".wasm.disabled").is_ok());
        for bad in [
            "../etc/passwd.wasm",
            "a/b.wasm",
            ".hidden.wasm",
            ".wasm",
            "hello.txt",
            "a\\b.wasm",
            "",
        ] {
            assert!(plain_name(bad, ".wasm").is_err(), "{bad}");
        }
    }
}
