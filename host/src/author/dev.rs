//! `plugin-host dev [DIR]`: build the plugin crate in DIR, serve it on a local host, and on every saved
//! change rebuild it and reload, printing the plugin's log lines on stdout as requests come in. A build
//! that fails leaves the last good build serving. State (the key-value store, a dev admin) lives in
//! `DIR/target/plugin-host-dev`, so it survives restarts of `dev`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::toolchain::{self, BuildRequest, Toolchain};
use crate::app::state::AppState;
use crate::config::Config;
use crate::server::Server;

/// Quiet time after the last saved change before a rebuild.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What `dev` serves and where.
pub struct DevOptions {
    pub dir: PathBuf,
    pub listen: SocketAddr,
}

/// Run until Ctrl-C.
pub async fn run(options: DevOptions) -> Result<()> {
    super::logs::init(super::logs::Sink::Print);
    let dir = options
        .dir
        .canonicalize()
        .with_context(|| format!("cannot find the plugin crate {}", options.dir.display()))?;
    super::sdk::refresh_for(&dir)?;
    let toolchain = Toolchain::find()?;
    println!("dev: building {} ({})", dir.display(), toolchain.describe());
    let root = dir.join("target/plugin-host-dev");
    let mut config = Config::defaults();
    config.plugins_dir = root.join("plugins");
    config.templates_dir = root.join("templates");
    config.data_dir = root.join("data");
    config.listen = options.listen;
    for d in [&config.plugins_dir, &config.templates_dir, &config.data_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let plugins = config.plugins_dir.clone();
    // The first build: a failure is reported and the server starts with what the last run left.
    rebuild(&toolchain, &dir, &plugins).await;
    let server = Server::bind(config).await?;
    let addr = server.local_addr();
    let signalled = crate::cli::shutdown_signal()?;
    let state = server.state();
    let key = dev_key(&state).await?;
    println!("dev: serving on http://{addr}");
    print_routes(&state, addr);
    println!("dev: an admin key for this session: {key}");
    println!("dev: watching {} (Ctrl-C stops)", dir.display());
    let _watcher = watch(dir.clone(), state.clone(), toolchain, plugins)?;
    server.run(signalled).await
}

/// Build the crate and copy its components into the dev plugins directory; true when it worked.
async fn rebuild(toolchain: &Toolchain, dir: &Path, plugins: &Path) -> bool {
    let request = BuildRequest {
        dir: dir.to_path_buf(),
        out: Some(dir.join("target/plugin-host-dev/built")),
    };
    let toolchain = toolchain.clone();
    let built = tokio::task::spawn_blocking(move || toolchain::build(&toolchain, &request)).await;
    let (built, took) = match built {
        Ok(Ok(built)) => built,
        Ok(Err(e)) => {
            println!("dev: build failed, still serving the last good build: {e:#}");
            return false;
        }
        Err(e) => {
            println!("dev: the build task failed: {e}");
            return false;
        }
    };
    for b in &built {
        let name = b.component.file_name().unwrap_or_default();
        let tmp = plugins.join(format!(".{}.tmp", name.to_string_lossy()));
        let copied = std::fs::copy(&b.component, &tmp)
            .and_then(|_| std::fs::rename(&tmp, plugins.join(name)));
        if let Err(e) = copied {
            println!(
                "dev: cannot copy {} into {}: {e}",
                b.component.display(),
                plugins.display()
            );
            return false;
        }
    }
    let names: Vec<&str> = built.iter().map(|b| b.package.as_str()).collect();
    println!(
        "dev: built {} in {:.1} s",
        names.join(", "),
        took.as_secs_f64()
    );
    true
}

/// The key of the `dev` admin (made on first use), new each session: keys are shown only once.
async fn dev_key(state: &AppState) -> Result<String> {
    let admin = crate::bindings::types::Role::Admin;
    super::sandbox::user_key(&state.auth().db, "dev", admin).await
}

fn print_routes(state: &AppState, addr: SocketAddr) {
    let generation = state.current();
    for plugin in &generation.plugins {
        let m = &plugin.manifest;
        println!("dev: {} {} serves:", m.name, m.version);
        for r in &m.routes {
            println!(
                "dev:   {:<6} http://{addr}{}  ({})",
                r.method.as_str(),
                r.path,
                r.role.as_str()
            );
        }
    }
}

/// Whether a change at `path` (inside the crate `dir`) should rebuild: not build output, not our own
/// components, not hidden files (editors' swap files, .git).
fn relevant(dir: &Path, path: &Path) -> bool {
    let Ok(inside) = path.strip_prefix(dir) else {
        return false;
    };
    let hidden = inside
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    let output = inside.starts_with("target") || path.extension().is_some_and(|e| e == "wasm");
    !hidden && !output && !path.to_string_lossy().ends_with('~')
}

/// Rebuild and reload after saved changes settle.
fn watch(
    dir: PathBuf,
    state: Arc<AppState>,
    toolchain: Toolchain,
    plugins: PathBuf,
) -> Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let root = dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        if let Some(path) = event.paths.into_iter().find(|p| relevant(&root, p)) {
            let _ = tx.send(path);
        }
    })
    .context("cannot create a file watcher")?;
    watcher
        .watch(&dir, RecursiveMode::Recursive)
        .with_context(|| format!("cannot watch {}", dir.display()))?;
    tokio::spawn(async move {
        let mut next = rx.recv().await;
        while let Some(first) = next {
            while let Ok(Some(_)) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            let shown = first
                .strip_prefix(&dir)
                .unwrap_or(&first)
                .display()
                .to_string();
            println!("dev: {shown} changed; rebuilding");
            if rebuild(&toolchain, &dir, &plugins).await {
                let outcome = state.reload().await;
                match &outcome.error {
                    None => println!(
                        "dev: reloaded: generation {} in {:.0} ms",
                        outcome.generation, outcome.duration_ms
                    ),
                    Some(e) => {
                        println!("dev: the new build does not load, still serving the last: {e}")
                    }
                }
            }
            // A change saved while building needs another build; otherwise wait for the next one.
            next = match rx.try_recv() {
                Ok(path) => Some(path),
                Err(_) => rx.recv().await,
            };
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_rebuild_output_does_not() {
        let dir = Path::new("/w/greeter");
        assert!(relevant(dir, Path::new("/w/greeter/src/lib.rs")));
        assert!(relevant(
            dir,
            Path::new("/w/greeter/templates/greeting.html")
        ));
        assert!(relevant(dir, Path::new("/w/greeter/Cargo.toml")));
        assert!(!relevant(dir, Path::new("/w/greeter/target/release/x")));
        assert!(!relevant(dir, Path::new("/w/greeter/greeter.wasm")));
        assert!(!relevant(dir, Path::new("/w/greeter/.git/index")));
        assert!(!relevant(dir, Path::new("/w/greeter/src/.lib.rs.swp")));
        assert!(!relevant(dir, Path::new("/w/greeter/src/lib.rs~")));
        assert!(!relevant(dir, Path::new("/elsewhere/x.rs")));
    }
}
