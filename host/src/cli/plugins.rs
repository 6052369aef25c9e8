//! `plugin-host plugin push FILE.wasm...`, `list`, `disable NAME`, `enable NAME`, `remove NAME`: the
//! plugin set of a cluster database, changed directly (for first set-up, before any node runs), exactly
//! as the deploy API changes it: each component checked, the resulting set trial-built, the change
//! committed with a new revision and its audit row (actor `cli:<OS user>`), and every running node told.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::accounts::db::{Backend, Pool};
use crate::cli::accounts::{DbArgs, actor, config_of};
use crate::cluster::store::{self, Applied, Change};
use crate::config::Config;

/// `plugin-host plugin ...`
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Check each component and add it to the plugin set (or replace the plugin's component).
    Push {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The plugin set and its revision.
    List,
    /// Stop serving a plugin (kept in the set).
    Disable { name: String },
    /// Serve a disabled plugin again.
    Enable { name: String },
    /// Take a plugin out of the set.
    Remove { name: String },
}

async fn open(args: &DbArgs) -> Result<(Config, Pool)> {
    let config = config_of(args)?;
    let location = config.database_location();
    if location.backend() != Backend::Postgres {
        bail!(
            "the plugin commands change a cluster's plugin set, which lives in a postgres:// database \
             (--database URL or PLUGIN_HOST_DATABASE); in single-node mode the plugins are the *.wasm \
             files in plugins_dir ({}): copy a file there and reload, or use PUT /admin/api/plugins/NAME",
            config.plugins_dir.display()
        );
    }
    let db = crate::accounts::db::open_location(&location).await?;
    Ok((config, db))
}

fn report(a: &Applied) {
    let state = if !a.changed {
        "unchanged"
    } else if a.sha256.is_empty() {
        "removed"
    } else if a.enabled {
        "enabled"
    } else {
        "disabled"
    };
    let sha = a.sha256.get(..12).unwrap_or("-");
    println!(
        "{} {} {sha} {state}; revision {}",
        a.name, a.version, a.revision
    );
}

/// Run one `plugin` command.
pub async fn plugin(args: DbArgs, command: PluginCommand) -> Result<ExitCode> {
    let (config, db) = open(&args).await?;
    let actor = actor();
    let apply = |change| store::apply(&db, &config, change, &actor, "");
    let result = match command {
        PluginCommand::Push { files } => {
            for file in files {
                let bytes = std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let shown = file.display().to_string();
                let (name, version, sha256) =
                    store::check_component(&config, &bytes, &shown).await?;
                let change = Change::Put {
                    name,
                    version,
                    sha256,
                    bytes: bytes.into(),
                };
                report(&apply(change).await?);
            }
            Ok(())
        }
        PluginCommand::List => {
            let snapshot = store::snapshot(&db).await?;
            println!("revision {}", snapshot.revision);
            for p in &snapshot.plugins {
                println!(
                    "{:<24} {:<12} {} {:>9} bytes  {}",
                    p.name,
                    p.version,
                    &p.sha256[..12],
                    p.size,
                    if p.enabled { "enabled" } else { "disabled" }
                );
            }
            Ok(())
        }
        PluginCommand::Disable { name } => apply(Change::Disable(name)).await.map(|a| report(&a)),
        PluginCommand::Enable { name } => apply(Change::Enable(name)).await.map(|a| report(&a)),
        PluginCommand::Remove { name } => apply(Change::Remove(name)).await.map(|a| report(&a)),
    };
    db.close().await;
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("refused: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
