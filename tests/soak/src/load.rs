//! The load driver: C worker tasks share one keep-alive client and an atomic ticket counter up to N,
//! count outcomes, record latencies into the current interval's histogram, and on crossing a multiple
//! of M (reload) or K (sample) hand the completed count to the reload coordinator or the sampler,
//! which do their work off the request path. In faults mode the tickets the schedule picks go to a
//! fault route instead, and count into the fault tally (their latencies apart from the good ones).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::faults::{FaultTally, FaultTargets};
use crate::latency::Histogram;

/// What the workers do.
#[derive(Debug, Clone)]
pub(crate) struct LoadPlan {
    /// Full URL of a good request.
    pub(crate) url: String,
    /// `Accept` of good requests; when set, a good answer must also be an HTML page.
    pub(crate) accept: Option<&'static str>,
    /// Faults mode: which tickets go to which fault route instead.
    pub(crate) faults: Option<FaultTargets>,
    pub(crate) requests: u64,
    pub(crate) concurrency: usize,
    pub(crate) reload_every: u64,
    pub(crate) sample_every: u64,
    pub(crate) max_duration: Duration,
}

/// Counters shared by the workers, the reload coordinator, the sampler and the report.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    issued: AtomicU64,
    completed: AtomicU64,
    ok: AtomicU64,
    bad_status: AtomicU64,
    transport_errors: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    reloads_missed: AtomicU64,
    samples_missed: AtomicU64,
    timed_out: AtomicBool,
    /// Latencies of good requests (all requests outside faults mode) since the last sample.
    interval: Mutex<Histogram>,
    /// What the fault requests got (faults mode).
    pub(crate) faults: FaultTally,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) completed: u64,
    pub(crate) ok: u64,
    pub(crate) bad_status: u64,
    pub(crate) transport_errors: u64,
    pub(crate) reloads_ok: u64,
    pub(crate) reloads_failed: u64,
    pub(crate) reloads_missed: u64,
    pub(crate) samples_missed: u64,
    pub(crate) timed_out: bool,
}

impl Snapshot {
    /// Requests that did not end in a 200.
    pub(crate) fn errors(&self) -> u64 {
        self.bad_status + self.transport_errors
    }
}

/// How one request ended.
enum Outcome {
    Ok,
    BadStatus,
    Transport,
}

impl Progress {
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            completed: self.completed.load(Relaxed),
            ok: self.ok.load(Relaxed),
            bad_status: self.bad_status.load(Relaxed),
            transport_errors: self.transport_errors.load(Relaxed),
            reloads_ok: self.reloads_ok.load(Relaxed),
            reloads_failed: self.reloads_failed.load(Relaxed),
            reloads_missed: self.reloads_missed.load(Relaxed),
            samples_missed: self.samples_missed.load(Relaxed),
            timed_out: self.timed_out.load(Relaxed),
        }
    }

    /// The latencies recorded since the last call (the histogram starts empty again).
    pub(crate) fn take_interval(&self) -> Histogram {
        std::mem::take(&mut *self.interval.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Stop: the run's time is up (reload mode's loop; the workers notice on their own).
    pub(crate) fn stop_for_time(&self) {
        self.timed_out.store(true, Relaxed);
    }

    /// Count a reload attempt.
    pub(crate) fn reload_done(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Relaxed);
    }

    /// The number (0-based) of the next request to issue; `None` once N were issued or time ran out.
    fn take_ticket(&self, plan: &LoadPlan, deadline: Instant) -> Option<u64> {
        if self.timed_out.load(Relaxed) {
            return None;
        }
        if Instant::now() >= deadline {
            self.timed_out.store(true, Relaxed);
            return None;
        }
        let ticket = self.issued.fetch_add(1, Relaxed);
        (ticket < plan.requests).then_some(ticket)
    }

    /// Count a finished request; returns how many requests are complete now (this one included).
    fn complete(&self, outcome: Outcome, latency: Option<Duration>) -> u64 {
        let counter = match outcome {
            Outcome::Ok => &self.ok,
            Outcome::BadStatus => &self.bad_status,
            Outcome::Transport => &self.transport_errors,
        };
        counter.fetch_add(1, Relaxed);
        if let Some(latency) = latency {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.interval
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .record(micros);
        }
        self.completed.fetch_add(1, Relaxed) + 1
    }
}

/// Where workers announce that the completed count crossed a multiple of M or of K. Each is a bounded
/// channel: a trigger that finds it full (the previous reload still running) is counted as missed.
pub(crate) struct Triggers {
    pub(crate) reload: Option<mpsc::Sender<u64>>,
    pub(crate) sample: mpsc::Sender<u64>,
}

/// Start the workers; they end by themselves after N requests or the time limit. The trigger
/// channels close when the last worker ends.
pub(crate) fn spawn_workers(
    client: Client,
    plan: Arc<LoadPlan>,
    progress: Arc<Progress>,
    triggers: Triggers,
) -> JoinSet<()> {
    let deadline = Instant::now() + plan.max_duration;
    let triggers = Arc::new(triggers);
    let mut workers = JoinSet::new();
    for _ in 0..plan.concurrency {
        let worker = Worker {
            client: client.clone(),
            plan: plan.clone(),
            progress: progress.clone(),
            triggers: triggers.clone(),
            deadline,
        };
        workers.spawn(worker.run());
    }
    workers
}

/// One worker task.
struct Worker {
    client: Client,
    plan: Arc<LoadPlan>,
    progress: Arc<Progress>,
    triggers: Arc<Triggers>,
    deadline: Instant,
}

impl Worker {
    async fn run(self) {
        while let Some(ticket) = self.progress.take_ticket(&self.plan, self.deadline) {
            let fault = self.plan.faults.as_ref().and_then(|f| f.target(ticket));
            let done = match fault {
                Some((index, url)) => self.fault(index, url).await,
                None => self.good().await,
            };
            self.announce(done);
        }
    }

    /// A good request: 200 expected. Returns the completed count.
    async fn good(&self) -> u64 {
        let started = Instant::now();
        let status = self.good_request().await;
        let latency = status.is_some().then(|| started.elapsed());
        let outcome = match status {
            None => Outcome::Transport,
            Some(StatusCode::OK) => Outcome::Ok,
            Some(_) => Outcome::BadStatus,
        };
        if self.plan.faults.is_some() && !matches!(outcome, Outcome::Ok) {
            let status = status.map(|s| s.as_u16());
            self.progress.faults.good_error(status);
        }
        self.progress.complete(outcome, latency)
    }

    /// A request to fault route `index`: its expected status counts as ok, anything else (a 503
    /// included) as a bad status. Its latency goes to the fault tally. Returns the completed count.
    async fn fault(&self, index: usize, url: &str) -> u64 {
        let started = Instant::now();
        let status = self.request(url).await.map(|s| s.as_u16());
        let latency = status.is_some().then(|| started.elapsed());
        let expected = self.progress.faults.record(index, status, latency);
        let outcome = match status {
            None => Outcome::Transport,
            Some(_) if expected => Outcome::Ok,
            Some(_) => Outcome::BadStatus,
        };
        self.progress.complete(outcome, None)
    }

    /// The good request; with an `Accept`, an answer that is not an HTML page counts as a bad status.
    async fn good_request(&self) -> Option<StatusCode> {
        let Some(accept) = self.plan.accept else {
            return self.request(&self.plan.url).await;
        };
        let response = self
            .client
            .get(&self.plan.url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .ok()?;
        let html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
        let status = response.status();
        let body = response.bytes().await.ok()?;
        let page = html && body.starts_with(b"<!doctype html>");
        Some(if page {
            status
        } else {
            StatusCode::NOT_ACCEPTABLE
        })
    }

    /// One GET, the body read to the end (so the connection is reused); `None` on a transport error.
    async fn request(&self, url: &str) -> Option<StatusCode> {
        let response = self.client.get(url).send().await.ok()?;
        let status = response.status();
        response.bytes().await.ok().map(|_| status)
    }

    /// Wake the sampler when `done` is a multiple of K, and the reload coordinator one request after
    /// each multiple of M: reloads then start just after sample points, so a sample sees a settled
    /// process rather than a compile in progress (with K a multiple of M). The last request triggers
    /// neither: the final sample is taken after the load stops.
    fn announce(&self, done: u64) {
        if done >= self.plan.requests {
            return;
        }
        if let Some(reload) = &self.triggers.reload
            && done % self.plan.reload_every == 1 % self.plan.reload_every
            && reload.try_send(done).is_err()
        {
            self.progress.reloads_missed.fetch_add(1, Relaxed);
        }
        if done.is_multiple_of(self.plan.sample_every)
            && self.triggers.sample.try_send(done).is_err()
        {
            self.progress.samples_missed.fetch_add(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(requests: u64) -> LoadPlan {
        LoadPlan {
            url: String::new(),
            accept: None,
            faults: None,
            requests,
            concurrency: 1,
            reload_every: 0,
            sample_every: 1,
            max_duration: Duration::from_secs(60),
        }
    }

    #[test]
    fn tickets_stop_at_n_and_at_the_deadline() {
        let progress = Progress::default();
        let later = Instant::now() + Duration::from_secs(60);
        let issued = (0..10)
            .filter_map(|_| progress.take_ticket(&plan(3), later))
            .collect::<Vec<_>>();
        assert_eq!(issued, [0, 1, 2]);
        let fresh = Progress::default();
        assert!(fresh.take_ticket(&plan(3), Instant::now()).is_none());
        assert!(fresh.snapshot().timed_out);
    }

    #[test]
    fn outcomes_are_counted_apart() {
        let progress = Progress::default();
        progress.complete(Outcome::Ok, Some(Duration::from_micros(100)));
        progress.complete(Outcome::BadStatus, Some(Duration::from_micros(200)));
        assert_eq!(progress.complete(Outcome::Transport, None), 3);
        let snap = progress.snapshot();
        assert_eq!((snap.ok, snap.errors()), (1, 2));
        assert_eq!(progress.take_interval().percentiles().unwrap().count, 2);
        assert!(progress.take_interval().percentiles().is_none());
    }
}
