//! The dashboard's memory of the last hour: every ten seconds the process samples its RSS, the number of
//! live generations, the serving generation and the request counters into a fixed ring (360 samples of
//! 168 bytes, about 59 KiB, never more).
//! Rates and latency quantiles are differences between the newest sample (or a sample taken now) and an
//! older one, so nothing is counted twice and nothing grows with traffic.

use std::collections::VecDeque;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use crate::app::metrics::Totals;
use crate::app::state::AppState;

/// How often the sampler runs.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// How far back the dashboard looks.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// Samples kept: one window's worth.
const CAPACITY: usize = (WINDOW.as_secs() / INTERVAL.as_secs()) as usize;
/// Rates and quantiles on the dashboard cover about this much of the recent past.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// One observation of the process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub rss_bytes: u64,
    pub live_generations: usize,
    /// The generation serving then (a change between samples means a reload).
    pub generation: u64,
    pub totals: Totals,
}

/// The ring of recent samples, allocated at its full size once: grown by pushes, a `VecDeque` doubles
/// its buffer, and 360 samples would sit in room for 512 (86 KiB instead of 59).
#[derive(Debug)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl Default for History {
    fn default() -> Self {
        Self {
            samples: Mutex::new(VecDeque::with_capacity(CAPACITY)),
        }
    }
}

/// What the dashboard shows about recent traffic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recent {
    /// The span the figures cover, in seconds (shorter than [`RATE_WINDOW`] just after start).
    pub seconds: f64,
    pub requests: u64,
    pub per_second: f64,
    /// Server errors (5xx) as a fraction of requests; 0 without requests.
    pub error_ratio: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Sample {
    /// Observe `state` now.
    pub fn take(state: &AppState) -> Self {
        Self {
            at_ms: crate::clock::unix_ms() as u64,
            rss_bytes: crate::app::metrics::process_rss_bytes().unwrap_or(0),
            live_generations: 1 + state.retired().len(),
            generation: state.current().id,
            totals: state.metrics.totals(),
        }
    }
}

impl History {
    /// Keep `sample`, forgetting the oldest once the ring is full.
    pub fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock().expect("history lock");
        if samples.len() == CAPACITY {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The samples of the last hour, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .expect("history lock")
            .iter()
            .copied()
            .collect()
    }

    /// Traffic between the kept sample nearest [`RATE_WINDOW`] before `now` and `now`.
    pub fn recent(&self, now: &Sample) -> Recent {
        let samples = self.samples.lock().expect("history lock");
        let horizon = now.at_ms.saturating_sub(RATE_WINDOW.as_millis() as u64);
        let Some(from) = samples
            .iter()
            .find(|s| s.at_ms >= horizon && s.at_ms < now.at_ms)
            .or_else(|| samples.back().filter(|s| s.at_ms < now.at_ms))
        else {
            return Recent::default();
        };
        let seconds = (now.at_ms - from.at_ms) as f64 / 1e3;
        let delta = now.totals.since(&from.totals);
        Recent {
            seconds,
            requests: delta.requests,
            per_second: delta.requests as f64 / seconds.max(1e-3),
            error_ratio: if delta.requests == 0 {
                0.0
            } else {
                delta.errors as f64 / delta.requests as f64
            },
            p50_ms: delta.quantile(0.5).map(|s| s * 1e3),
            p99_ms: delta.quantile(0.99).map(|s| s * 1e3),
        }
    }
}

/// Sample `state` now and every [`INTERVAL`] until it is dropped (the task holds it weakly).
pub fn spawn(state: Weak<AppState>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(state) = state.upgrade() else { break };
            state.history.push(Sample::take(&state));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, requests: u64, errors: u64) -> Sample {
        let mut buckets = [0; 15];
        buckets[3] = requests;
        Sample {
            at_ms,
            rss_bytes: 1 << 20,
            live_generations: 1,
            generation: 1,
            totals: Totals {
                requests,
                errors,
                buckets,
            },
        }
    }

    #[test]
    fn the_ring_keeps_one_hour() {
        let history = History::default();
        for i in 0..(CAPACITY as u64 + 50) {
            history.push(sample(i * 10_000, i, 0));
        }
        let kept = history.samples();
        assert_eq!(kept.len(), CAPACITY);
        let room = history.samples.lock().unwrap().capacity();
        assert!(room < CAPACITY + 8, "allocated once, not doubled: {room}");
        // What the module docs promise the ring costs.
        assert_eq!(std::mem::size_of::<Sample>(), 168);
        assert_eq!(kept[0].at_ms, 50 * 10_000);
    }

    #[test]
    fn recent_traffic_is_a_difference_over_about_a_minute() {
        let history = History::default();
        for i in 0..10u64 {
            history.push(sample(i * 10_000, i * 100, i));
        }
        // Now is 100 s; the first kept sample at or after 40 s is the one at 40 s (400 requests).
        let now = sample(100_000, 1_000, 10);
        let recent = history.recent(&now);
        assert_eq!(recent.requests, 600);
        assert!((recent.seconds - 60.0).abs() < 1e-9);
        assert!((recent.per_second - 10.0).abs() < 1e-9);
        assert!((recent.error_ratio - 6.0 / 600.0).abs() < 1e-9);
        assert!(recent.p50_ms.is_some());
        assert_eq!(History::default().recent(&now).requests, 0);
    }
}
