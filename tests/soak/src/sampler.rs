//! The sampler: on each trigger (every K completed requests, or K reloads in reload mode), and once
//! before and once after the load, it records the host's RSS (/proc), its live generations and malloc's
//! heap in use and free (one `GET /metrics`), the latency percentiles of the interval since the
//! previous sample, and the reload and error counts so far (in faults mode also the fault requests so
//! far and their latencies apart). It also waits for the drain at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::admin::Admin;
use crate::args::Axis;
use crate::host::{Rss, RssProbe};
use crate::latency::{Histogram, Percentiles};
use crate::load::Progress;
use crate::metrics::HostMetrics;

/// Sample failures whose message is kept for the summary.
const KEPT_ERRORS: usize = 5;
/// How often the drain wait asks for the live generations.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// One row of the CSV.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Sample {
    pub(crate) requests: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) rss_bytes: Option<u64>,
    /// The anonymous and the file-backed parts of the RSS (RssAnon, RssFile).
    pub(crate) rss_anon_bytes: Option<u64>,
    pub(crate) rss_file_bytes: Option<u64>,
    pub(crate) live_generations: Option<u64>,
    /// glibc malloc's bytes in use (allocated, not freed) and free (kept for reuse), from `/metrics`.
    pub(crate) heap_in_use_bytes: Option<u64>,
    pub(crate) heap_free_bytes: Option<u64>,
    /// Latency of the requests completed since the previous sample (in faults mode: the good ones).
    pub(crate) latency: Option<Percentiles>,
    pub(crate) reloads_ok: u64,
    pub(crate) reloads_failed: u64,
    pub(crate) errors: u64,
    /// Faults mode: fault requests completed so far.
    pub(crate) fault_requests: u64,
    /// Faults mode: latency of the fault requests completed since the previous sample.
    pub(crate) fault_latency: Option<Percentiles>,
}

impl Sample {
    /// Reloads done (ok or not) when the sample was taken.
    pub(crate) fn reloads(&self) -> u64 {
        self.reloads_ok + self.reloads_failed
    }

    /// Where the sample lies on `axis`.
    pub(crate) fn x(&self, axis: Axis) -> u64 {
        match axis {
            Axis::Requests => self.requests,
            Axis::Reloads => self.reloads(),
        }
    }
}

#[cfg(test)]
impl Sample {
    /// A sample with `requests` done, `mib` MiB of RSS and `generations` live (tests of the writers).
    pub(crate) fn for_test(requests: u64, mib: u64, generations: u64) -> Sample {
        Sample {
            requests,
            rss_bytes: Some(mib * 1024 * 1024),
            live_generations: Some(generations),
            ..Sample::default()
        }
    }
}

/// Takes samples; owns them and the whole run's latency histogram until the report.
pub(crate) struct Sampler {
    rss: RssProbe,
    admin: Admin,
    progress: Arc<Progress>,
    started: Instant,
    pub(crate) samples: Vec<Sample>,
    /// Every latency of the run (the intervals merged); in faults mode, of the good requests.
    pub(crate) total: Histogram,
    /// Faults mode: every latency of a fault request.
    pub(crate) fault_total: Histogram,
    pub(crate) failures: u64,
    pub(crate) failure_messages: Vec<String>,
}

impl Sampler {
    pub(crate) fn new(rss: RssProbe, admin: Admin, progress: Arc<Progress>) -> Sampler {
        Sampler {
            rss,
            admin,
            progress,
            started: Instant::now(),
            samples: Vec::new(),
            total: Histogram::default(),
            fault_total: Histogram::default(),
            failures: 0,
            failure_messages: Vec::new(),
        }
    }

    /// Start the clock of the `elapsed_s` column (when the load starts).
    pub(crate) fn start_clock(&mut self) {
        self.started = Instant::now();
    }

    /// Sample on every trigger until the workers are done (the channel closes).
    pub(crate) async fn run(mut self, mut triggers: mpsc::Receiver<u64>) -> Sampler {
        while let Some(done) = triggers.recv().await {
            self.take(done).await;
        }
        self
    }

    /// Take one sample labelled with `requests` completed requests.
    pub(crate) async fn take(&mut self, requests: u64) {
        let elapsed_s = self.started.elapsed().as_secs_f64();
        let rss = self.read_rss().await;
        let host = self.read_metrics().await;
        let live_generations = host.as_ref().and_then(|m| m.live_generations);
        let interval = self.progress.take_interval();
        self.total.merge(&interval);
        let fault_interval = self.progress.faults.take_interval();
        self.fault_total.merge(&fault_interval);
        let fault_requests = self.progress.faults.snapshot().completed;
        let snap = self.progress.snapshot();
        let sample = Sample {
            requests,
            elapsed_s,
            rss_bytes: rss.map(|r| r.total),
            rss_anon_bytes: rss.and_then(|r| r.anon),
            rss_file_bytes: rss.and_then(|r| r.file),
            live_generations,
            heap_in_use_bytes: host.as_ref().and_then(|m| m.heap_in_use),
            heap_free_bytes: host.as_ref().and_then(|m| m.heap_free),
            latency: interval.percentiles(),
            reloads_ok: snap.reloads_ok,
            reloads_failed: snap.reloads_failed,
            errors: snap.errors(),
            fault_requests,
            fault_latency: fault_interval.percentiles(),
        };
        print_progress(&sample);
        self.samples.push(sample);
    }

    /// Ask for the live generations until they are 1 or `limit` passed; the last count seen.
    pub(crate) async fn wait_for_drain(&mut self, limit: Duration) -> Option<u64> {
        let deadline = Instant::now() + limit;
        loop {
            let live = self.read_metrics().await.and_then(|m| m.live_generations);
            if live == Some(1) || live.is_none() || Instant::now() >= deadline {
                return live;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
    }

    async fn read_rss(&mut self) -> Option<Rss> {
        match self.rss.read().await {
            Ok(bytes) => Some(bytes),
            Err(error) => self.failed(error),
        }
    }

    /// `GET /metrics`: live generations and the heap (a missing live-generations gauge is a failure).
    async fn read_metrics(&mut self) -> Option<HostMetrics> {
        let read = self.admin.metrics_text().await.and_then(|text| {
            let metrics = crate::metrics::parse(&text, "");
            anyhow::ensure!(
                metrics.live_generations.is_some(),
                "GET /metrics has no plugin_host_live_generations"
            );
            Ok(metrics)
        });
        match read {
            Ok(metrics) => Some(metrics),
            Err(error) => self.failed(error),
        }
    }

    fn failed<T>(&mut self, error: anyhow::Error) -> Option<T> {
        self.failures += 1;
        if self.failure_messages.len() < KEPT_ERRORS {
            self.failure_messages.push(format!("{error:#}"));
        }
        None
    }
}

/// One progress line on stderr per sample, so a long soak shows it is alive.
fn print_progress(s: &Sample) {
    let mib = |b: u64| format!("{:.2} MiB", b as f64 / (1024.0 * 1024.0));
    let p99 = s
        .latency
        .map_or("-".to_owned(), |l| format!("{} µs", l.p99));
    eprintln!(
        "soak: {:>9} requests {:>7.1} s  RSS {:>10} (anon {})  heap in use {:>10}  live generations {}  p99 {p99}  reloads {} ok {} failed  errors {}",
        s.requests,
        s.elapsed_s,
        s.rss_bytes.map_or("-".to_owned(), mib),
        s.rss_anon_bytes.map_or("-".to_owned(), mib),
        s.heap_in_use_bytes.map_or("-".to_owned(), mib),
        s.live_generations.map_or("-".to_owned(), |g| g.to_string()),
        s.reloads_ok,
        s.reloads_failed,
        s.errors
    );
}
