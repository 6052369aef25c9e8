//! `--watch`: reload after changes in the plugins directory or the templates directory settle.
//!
//! Events for `*.wasm` files in the plugins directory and `*.html` files anywhere below the templates
//! directory (not hidden ones) start a quiet period; each further event restarts it;
//! when nothing has changed for the debounce time, one reload runs. A half-written file can at worst
//! make that reload fail (the old generation keeps serving); the write's last event triggers another.
//! Deploy with a hidden temporary file renamed into place and no reload ever sees a partial file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::app::state::AppState;

/// Whether a changed path should trigger a reload.
fn relevant(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'));
    !hidden && path.extension().is_some_and(|e| e == "wasm" || e == "html")
}

/// What the watcher has done so far: how many file events it let through or ignored, and how many
/// reloads it started. Tests wait on these instead of waiting a fixed time for something not to happen.
#[derive(Debug, Default)]
pub struct WatchCounts {
    /// Events that (re)started the quiet period.
    pub relevant: AtomicU64,
    /// Changes that were ignored (hidden files, other suffixes; reads are not counted at all).
    pub ignored: AtomicU64,
    /// Reloads started.
    pub reloads: AtomicU64,
}

/// A running watch: it stops when dropped.
#[derive(Debug)]
pub struct Watch {
    _watcher: RecommendedWatcher,
    /// See [`WatchCounts`].
    pub counts: Arc<WatchCounts>,
}

/// Watch the plugins directory `dir` and, when it exists, the templates directory `templates`.
pub fn spawn(
    state: Arc<AppState>,
    dir: PathBuf,
    templates: PathBuf,
    debounce: Duration,
) -> Result<Watch> {
    let counts = Arc::new(WatchCounts::default());
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let seen = counts.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Access events (opens and reads, including the reload's own) must not trigger a reload.
        // A new folder counts too: a file written into it before the recursive watch reaches it sends
        // no event of its own, but the reload that the folder triggers reads it.
        let new_folder = |kind: &notify::EventKind| {
            matches!(
                kind,
                notify::EventKind::Create(notify::event::CreateKind::Folder)
            )
        };
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if new_folder(&event.kind) || event.paths.iter().any(|p| relevant(p)) {
            seen.relevant.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send(());
        } else {
            seen.ignored.fetch_add(1, Ordering::Relaxed);
        }
    })
    .context("cannot create the plugins directory watcher")?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    if templates.is_dir() {
        watcher
            .watch(&templates, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", templates.display()))?;
    }
    let reloads = counts.clone();
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Debounce: wait until the directory has been quiet for `debounce`.
            loop {
                match tokio::time::timeout(debounce, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_quiet) => break,
                }
            }
            tracing::info!(dir = %dir.display(), templates = %templates.display(), "plugins or templates changed; reloading");
            reloads.reloads.fetch_add(1, Ordering::Relaxed);
            state.reload().await;
        }
    });
    Ok(Watch {
        _watcher: watcher,
        counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_wasm_files_matter() {
        assert!(relevant(Path::new("/p/hello.wasm")));
        assert!(!relevant(Path::new("/p/.hello.wasm.tmp")));
        assert!(!relevant(Path::new("/p/.hello.wasm")));
        assert!(!relevant(Path::new("/p/notes.txt")));
        assert!(relevant(Path::new("/t/hello/hello.html")));
        assert!(!relevant(Path::new("/t/hello/.hello.html.swp")));
    }
}
