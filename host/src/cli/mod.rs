//! The command line: `serve`, `check`, `config`, `componentize`, the `user` and `key` commands (in
//! [`accounts`]), the cluster's `plugin` commands (in [`plugins`]), the plugin author's `new`, `build`,
//! `call`, `test` and `dev` (in [`author`]), logging set-up and signal handling.

pub mod accounts;
pub mod author;
pub mod plugins;

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

use crate::config::{Config, LogFormat, Overrides};
use crate::server::Server;

/// Runs REST and admin HTTP handlers as WebAssembly component plugins.
#[derive(Debug, Parser)]
#[command(name = "plugin-host", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the plugins in the plugins directory over HTTP.
    Serve {
        #[command(flatten)]
        files: ConfigArgs,
        /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// Serve the admin UI and API (and /metrics) on this address instead, their own origin.
        #[arg(long, value_name = "ADDR")]
        admin_listen: Option<SocketAddr>,
        /// Directory of plugin components (*.wasm).
        #[arg(long = "plugins", value_name = "DIR")]
        plugins_dir: Option<PathBuf>,
        /// Directory of HTML templates.
        #[arg(long = "templates", value_name = "DIR")]
        templates_dir: Option<PathBuf>,
        /// Directory for the host's own data.
        #[arg(long = "data", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Reload when plugin files change (debounced).
        #[arg(long)]
        watch: bool,
        /// The database: a SQLite file or a postgres:// URL (cluster mode).
        #[arg(long, value_name = "URL", env = "PLUGIN_HOST_DATABASE")]
        database: Option<String>,
    },
    /// Load one plugin exactly as `serve` would and print its manifest, or why it is refused.
    Check {
        #[command(flatten)]
        files: ConfigArgs,
        /// The plugin component to check.
        file: PathBuf,
        /// Also check it beside the plugins in this directory (a name or route clash).
        #[arg(long = "with", value_name = "DIR")]
        with: Option<PathBuf>,
    },
    /// Print the configuration that the defaults, `--config FILE` and the PLUGIN_HOST_ variables give
    /// (TOML, a database password hidden), or with `--reference` every key documented (Markdown).
    Config {
        #[command(flatten)]
        files: ConfigArgs,
        /// The configuration reference (docs/configuration.md) instead.
        #[arg(long)]
        reference: bool,
    },
    /// Manage users (in the database `serve` uses).
    User {
        #[command(flatten)]
        db: crate::cli::accounts::DbArgs,
        #[command(subcommand)]
        command: crate::cli::accounts::UserCommand,
    },
    /// Manage API keys (in the database `serve` uses).
    Key {
        #[command(flatten)]
        db: crate::cli::accounts::DbArgs,
        #[command(subcommand)]
        command: crate::cli::accounts::KeyCommand,
    },
    /// Manage a cluster's plugin set (in its PostgreSQL database).
    Plugin {
        #[command(flatten)]
        db: crate::cli::accounts::DbArgs,
        #[command(subcommand)]
        command: crate::cli::plugins::PluginCommand,
    },
    /// Turn a core wasm module built with the SDK (wit-bindgen) into a plugin component.
    Componentize {
        /// The core module (e.g. target/wasm32-unknown-unknown/release/my_plugin.wasm).
        input: PathBuf,
        /// Where to write the component (written to a temporary file, then renamed into place).
        #[arg(short, long)]
        output: PathBuf,
    },
    #[command(flatten)]
    Author(crate::cli::author::AuthorCommand),
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// TOML configuration laid over the embedded defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Entry point of the `plugin-host` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve {
            files,
            listen,
            admin_listen,
            plugins_dir,
            templates_dir,
            data_dir,
            watch,
            database,
        } => {
            let overrides = Overrides {
                listen,
                admin_listen,
                plugins_dir,
                templates_dir,
                data_dir,
                watch,
                database,
            };
            let config = Config::load(files.config.as_deref(), &overrides)?;
            let exporter = init_tracing(&config);
            let served = runtime()?.block_on(serve(config));
            // The server has drained (SIGTERM/SIGINT) or failed: send the spans still queued.
            if let Some(exporter) = exporter {
                exporter.shutdown();
            }
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { files, file, with } => {
            let config = Config::load(files.config.as_deref(), &Overrides::default())?;
            init_tracing_quiet();
            Ok(runtime()?.block_on(check(&config, &file, with.as_deref())))
        }
        Command::Config { files, reference } => {
            if reference {
                print!(
                    "{}",
                    crate::config::reference::Reference::embedded().markdown()
                );
            } else {
                // Deserialized too, so what is printed is also known to be valid.
                Config::load(files.config.as_deref(), &Overrides::default())?;
                let mut table = Config::merged_toml(files.config.as_deref())?;
                if let Some(toml::Value::String(db)) = table.get_mut("database")
                    && let Ok(mut url) = url::Url::parse(db)
                    && url.password().is_some()
                {
                    let _ = url.set_password(Some("hidden"));
                    *db = url.to_string();
                }
                print!(
                    "{}",
                    toml::to_string(&table).context("cannot print the configuration")?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User { db, command } => {
            init_tracing_quiet();
            runtime()?.block_on(crate::cli::accounts::user(db, command))
        }
        Command::Key { db, command } => {
            init_tracing_quiet();
            runtime()?.block_on(crate::cli::accounts::key(db, command))
        }
        Command::Plugin { db, command } => {
            init_tracing_quiet();
            runtime()?.block_on(crate::cli::plugins::plugin(db, command))
        }
        Command::Componentize { input, output } => {
            crate::author::toolchain::componentize(&input, &output)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Author(command) => crate::cli::author::run(command),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The log (and, when the `OTEL_*` variables ask for it, the OpenTelemetry layer, whose exporter is
/// returned for the flush at shutdown). Without export the subscriber is the plain formatter with a
/// global filter, exactly as before traces existed.
fn init_tracing(config: &Config) -> Option<crate::telemetry::export::Exporter> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log));
    let mut plan = crate::telemetry::export::Plan::from_env();
    let Some(exporter) = plan.exporter.take() else {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr);
        match config.log_format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().init(),
        }
        plan.report();
        return None;
    };
    // Each layer filters for itself: the log keeps its level and format, and the exporter sees the
    // host's spans whatever the log level.
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let log = match config.log_format {
        LogFormat::Text => log.boxed(),
        LogFormat::Json => log.json().boxed(),
    };
    let log_filter = crate::telemetry::export::log_filter(filter);
    tracing_subscriber::registry()
        .with(log.with_filter(log_filter))
        .with(exporter.layer())
        .init();
    plan.report();
    Some(exporter)
}

/// `check` prints its own verdict; only warnings and errors go to the log.
fn init_tracing_quiet() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(config: Config) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let cluster = config.database_location().backend() == crate::accounts::db::Backend::Postgres;
    if cluster && config.watch {
        tracing::warn!("--watch does nothing in cluster mode: the plugin set is in the database");
    }
    let delay = config.shutdown_delay();
    let watch = (config.watch && !cluster).then(|| {
        (
            config.plugins_dir.clone(),
            config.templates_dir.clone(),
            config.watch_debounce(),
        )
    });
    let server = Server::bind(config).await?;
    let addr = server.local_addr();
    let signalled = shutdown_signal()?;
    if let Some(admin) = server.admin_addr() {
        tracing::info!(%admin, "admin UI and API listening on their own address");
        println!("plugin-host admin listening on http://{admin}");
    }
    let state = server.state();
    #[cfg(unix)]
    reload_on_sighup(state.clone())?;
    // Kept alive for as long as the server runs.
    let _watch = match watch {
        Some((dir, templates, debounce)) => {
            Some(crate::app::watch::spawn(state, dir, templates, debounce)?)
        }
        None => None,
    };
    tracing::info!(%addr, "listening");
    // A stable line on stdout that scripts and tests can wait for.
    println!("plugin-host listening on http://{addr}");
    std::io::stdout().flush().ok();
    crate::app::systemd::ready(server.state().current().id);
    // On a signal: report not ready at once, keep serving for `shutdown_delay_ms` so load balancers
    // take this node out, then stop accepting and drain.
    let draining = server.state();
    server
        .run(async move {
            signalled.await;
            crate::app::systemd::stopping();
            draining.begin_shutdown();
            if !delay.is_zero() {
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    "shutting down: not ready, still serving"
                );
                tokio::time::sleep(delay).await;
            }
        })
        .await
}

/// Reload on every SIGHUP; the outcome goes to the log.
#[cfg(unix)]
fn reload_on_sighup(state: std::sync::Arc<crate::app::state::AppState>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            crate::app::systemd::reloading();
            state.reload().await;
            // Ready again either way: a failed reload leaves the previous generation serving.
            crate::app::systemd::ready(state.current().id);
        }
    });
    Ok(())
}

/// A future that completes on SIGINT (ctrl-c) or SIGTERM. The handlers are installed here, before the
/// future is first polled: a signal that comes right after the "listening" line (a test, a supervisor)
/// must start a graceful shutdown, not meet the default action and kill the process.
#[cfg(unix)]
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(not(unix))]
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        tokio::signal::ctrl_c().await.ok();
    })
}

async fn check(config: &Config, file: &Path, with: Option<&Path>) -> ExitCode {
    match crate::generation::check_plugin(config, file).await {
        Ok(plugin) => {
            if let Some(dir) = with {
                match crate::author::clash::check_with(config, file, dir).await {
                    Ok(n) => println!("ok beside the {n} other plugin(s) in {}", dir.display()),
                    Err(e) => {
                        eprintln!("rejected: {e:#}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            let m = &plugin.manifest;
            println!("ok: {}", file.display());
            println!("plugin:      {} {}", m.name, m.version);
            println!("description: {}", m.description);
            println!("sha256:      {}", plugin.hash);
            println!(
                "compiled in: {:.1} ms",
                plugin.compile_time.as_secs_f64() * 1e3
            );
            println!();
            print!("{}", route_table(&plugin.manifest));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rejected: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The routes of a manifest as an aligned text table.
fn route_table(m: &crate::generation::manifest::Manifest) -> String {
    let mut rows = vec![["METHOD", "PATH", "ROLE", "VIEW", "SUMMARY"].map(String::from)];
    for r in &m.routes {
        rows.push([
            r.method.as_str().to_owned(),
            r.path.to_string(),
            r.role.as_str().to_owned(),
            r.view.clone().unwrap_or_else(|| "-".into()),
            r.summary.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
