//! The reload coordinator: one task, apart from the workers, that on each trigger installs the other
//! build of the soak plugin (a ↔ b, so every reload compiles different code), POSTs the reload while
//! the workers keep sending requests, and checks that the new build is the one answering.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tokio::sync::mpsc;

use crate::admin::{Admin, Fixtures, Reloaded, install_plugin};
use crate::load::Progress;

/// Error messages kept for the summary (the count is in `Progress`).
const KEPT_ERRORS: usize = 5;

/// What the coordinator needs.
pub(crate) struct Coordinator {
    pub(crate) admin: Admin,
    pub(crate) fixtures: Fixtures,
    pub(crate) plugins_dir: PathBuf,
    pub(crate) progress: Arc<Progress>,
}

/// What the reloads did, for the summary.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReloadLog {
    /// Reloads whose answer said the soak plugin came from a cache rather than a fresh compile.
    pub(crate) cached: u64,
    pub(crate) compile_ms_max: f64,
    compile_ms_sum: f64,
    /// Time from the file swap to the checked answer, as the tool saw it.
    pub(crate) wall_max: Duration,
    wall_sum: Duration,
    ok: u64,
    pub(crate) last_generation: Option<u64>,
    pub(crate) errors: Vec<String>,
}

impl ReloadLog {
    /// Mean compile time the host reported for the soak plugin, in ms.
    pub(crate) fn compile_ms_mean(&self) -> Option<f64> {
        (self.ok > 0).then(|| self.compile_ms_sum / self.ok as f64)
    }

    /// Mean wall time of one reload as the tool saw it.
    pub(crate) fn wall_mean(&self) -> Option<Duration> {
        (self.ok > 0).then(|| self.wall_sum / self.ok as u32)
    }

    pub(crate) fn record_ok(&mut self, reloaded: Reloaded, wall: Duration) {
        self.ok += 1;
        self.cached += u64::from(reloaded.cached);
        self.compile_ms_sum += reloaded.compile_ms;
        self.compile_ms_max = self.compile_ms_max.max(reloaded.compile_ms);
        self.wall_sum += wall;
        self.wall_max = self.wall_max.max(wall);
        self.last_generation = Some(reloaded.generation);
    }

    /// A failed reload `at` (`request N`, `reload N`).
    pub(crate) fn record_error(&mut self, at: &str, error: &anyhow::Error) {
        if self.errors.len() < KEPT_ERRORS {
            self.errors.push(format!("at {at}: {error:#}"));
        }
    }
}

impl Coordinator {
    /// Reload on every trigger until the workers are done (the channel closes).
    pub(crate) async fn run(self, mut triggers: mpsc::Receiver<u64>) -> ReloadLog {
        let mut log = ReloadLog::default();
        let mut serving = 'a';
        while let Some(done) = triggers.recv().await {
            let next = if serving == 'a' { 'b' } else { 'a' };
            let started = Instant::now();
            match self.reload_to(next, log.last_generation).await {
                Ok(reloaded) => {
                    serving = next;
                    log.record_ok(reloaded, started.elapsed());
                    self.progress.reload_done(true);
                }
                Err(error) => {
                    log.record_error(&format!("request {done}"), &error);
                    self.progress.reload_done(false);
                }
            }
        }
        log
    }

    /// Swap in build `next`, reload, and check the generation moved on and `next` answers.
    async fn reload_to(&self, next: char, previous: Option<u64>) -> Result<Reloaded> {
        install_plugin(&self.plugins_dir, self.fixtures.for_variant(next)).await?;
        let reloaded = self.admin.reload().await?;
        if let Some(previous) = previous
            && reloaded.generation <= previous
        {
            bail!(
                "reload answered generation {} after {previous}",
                reloaded.generation
            );
        }
        let served = self.admin.served_variant().await?;
        if served != next.to_string() {
            bail!("after the reload to build {next}, GET /soak answered variant {served:?}");
        }
        Ok(reloaded)
    }
}
