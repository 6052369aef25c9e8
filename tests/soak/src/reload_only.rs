//! Reload mode: no traffic, N reloads one after the other, each asked for by the admin API (`POST
//! /admin/api/reload`, which writes an audit row) or by SIGHUP (`kill -HUP`, no audit row; the tool
//! then asks `/readyz` until it shows the next generation, or the reload's error). A sample (RSS, heap,
//! live generations) every K reloads, taken once the reload has settled: `/readyz` shows the new
//! generation as soon as it is swapped in, while the host is still dropping the old one and recording
//! the last good set, and a sample taken then reads both generations' memory (a SIGHUP run's samples
//! landed there more often as the machine got busier, a slope of +36 B/reload out of nothing). Every
//! wait is bounded, the run stops after N reloads, at `--max-seconds`, or after [`MAX_FAILURES`] failed
//! reloads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::admin::{Admin, Fixtures, Reloaded, install_plugin};
use crate::args::Via;
use crate::load::Progress;
use crate::reload::ReloadLog;
use crate::sampler::Sampler;

/// How long one SIGHUP reload may take before it counts as failed.
const SIGHUP_LIMIT: Duration = Duration::from_secs(60);
/// First pause between two `/readyz` polls after a SIGHUP (doubling up to [`POLL_MAX`]): a reload from
/// the compile cache takes a few milliseconds.
const POLL_FIRST: Duration = Duration::from_micros(500);
const POLL_MAX: Duration = Duration::from_millis(20);
/// Failed reloads after which the run stops (something is wrong; the report says what).
const MAX_FAILURES: u64 = 20;
/// How long a sample waits for the reload before it to settle (then it samples anyway).
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// What the reload loop needs.
pub(crate) struct ReloadRun {
    pub(crate) admin: Admin,
    pub(crate) via: Via,
    pub(crate) host_pid: u32,
    pub(crate) reloads: u64,
    pub(crate) sample_every: u64,
    /// `--swap-builds`: the builds and the plugins directory to swap them in.
    pub(crate) swap: Option<(Fixtures, PathBuf)>,
    pub(crate) progress: Arc<Progress>,
    pub(crate) max_duration: Duration,
}

impl ReloadRun {
    /// Reload N times, sampling every K; the log of what the reloads did.
    pub(crate) async fn run(self, sampler: &mut Sampler) -> Result<ReloadLog> {
        let mut log = ReloadLog::default();
        let started = Instant::now();
        let mut generation = self.admin.readiness().await?.generation;
        let mut serving = 'a';
        let mut last_failed = false;
        for done in 1..=self.reloads {
            if started.elapsed() >= self.max_duration {
                self.progress.stop_for_time();
                break;
            }
            let at = Instant::now();
            let next = if serving == 'a' { 'b' } else { 'a' };
            match self.reload_once(next, generation, last_failed).await {
                Ok(reloaded) => {
                    last_failed = false;
                    generation = reloaded.generation;
                    serving = next;
                    log.record_ok(reloaded, at.elapsed());
                    self.progress.reload_done(true);
                }
                Err(error) => {
                    last_failed = true;
                    log.record_error(&format!("reload {done}"), &error);
                    self.progress.reload_done(false);
                    // The next reload starts from whatever now serves.
                    if let Ok(now) = self.admin.readiness().await {
                        generation = now.generation;
                    }
                    if self.progress.snapshot().reloads_failed >= MAX_FAILURES {
                        break;
                    }
                }
            }
            if done % self.sample_every == 0 {
                self.settle(generation).await;
                sampler.take(0).await;
            }
        }
        Ok(log)
    }

    /// Wait (bounded) until the last finished reload is the one that made `generation` and no retired
    /// generation is alive: nothing of the reload is still running.
    async fn settle(&self, generation: u64) {
        let deadline = Instant::now() + SETTLE_LIMIT;
        let mut pause = POLL_FIRST;
        while Instant::now() < deadline {
            match self.admin.reload_settled().await {
                Ok((Some(last), 0)) if last >= generation => return,
                Ok(_) | Err(_) => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }

    /// One reload after `previous` (swapping in build `next` first with `--swap-builds`); `degraded`:
    /// the host was already degraded (the last reload failed), so that alone does not mean this one did.
    async fn reload_once(&self, next: char, previous: u64, degraded: bool) -> Result<Reloaded> {
        if let Some((fixtures, dir)) = &self.swap {
            install_plugin(dir, fixtures.for_variant(next)).await?;
        }
        let reloaded = match self.via {
            Via::Api => self.admin.reload().await?,
            Via::Sighup => self.hangup(previous, degraded).await?,
        };
        if reloaded.generation <= previous {
            bail!(
                "reload answered generation {} after {previous}",
                reloaded.generation
            );
        }
        Ok(reloaded)
    }

    /// `kill -HUP PID`, then `/readyz` until it shows a generation after `previous` or (unless it was
    /// already) a degraded state (the reload failed), within [`SIGHUP_LIMIT`].
    async fn hangup(&self, previous: u64, was_degraded: bool) -> Result<Reloaded> {
        let status = tokio::process::Command::new("kill")
            .args(["-HUP", &self.host_pid.to_string()])
            .status()
            .await
            .context("running kill -HUP")?;
        if !status.success() {
            bail!("kill -HUP {} failed: {status}", self.host_pid);
        }
        let deadline = Instant::now() + SIGHUP_LIMIT;
        let mut pause = POLL_FIRST;
        loop {
            let now = self.admin.readiness().await?;
            if now.generation > previous {
                return Ok(Reloaded {
                    generation: now.generation,
                    compile_ms: 0.0,
                    cached: true,
                });
            }
            if let Some(degraded) = now.degraded.filter(|_| !was_degraded) {
                bail!("after SIGHUP the host is degraded: {degraded}");
            }
            if Instant::now() >= deadline {
                bail!("no generation after {previous} within {SIGHUP_LIMIT:?} of SIGHUP");
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
        }
    }
}
