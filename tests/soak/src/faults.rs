//! The fault storm (`--mode faults`): the `faults` fixture plugin's misbehaving routes with the status
//! the host must answer each with, which requests of the run are faults (request i is one when
//! i % (N / F) == 0, round-robin over the routes), and the tally of what the fault requests got.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::latency::Histogram;

/// The file the faults plugin has in the fixtures directory and in the host's plugins directory.
pub(crate) const FAULTS_FILE: &str = "faults.wasm";
/// Appended to the host's configuration in faults mode: short deadlines and a small memory cap, so
/// a timeout or a memory bomb costs 100 ms and 32 MiB rather than 5 s and 64 MiB.
pub(crate) const HOST_CONFIG_SECTION: &str =
    "\n[plugins.faults]\nrequest_timeout_ms = 100\ninstance_memory_bytes = 33554432\n";
/// Mismatch messages kept for the summary (the count is in the tally).
const KEPT_MESSAGES: usize = 5;

/// One misbehaving route and what the host must make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FaultRoute {
    pub(crate) path: &'static str,
    /// The status the host must answer.
    pub(crate) expected: u16,
    /// The `kind` label of `plugin_host_plugin_faults_total` the host must count it under.
    pub(crate) kind: &'static str,
    /// Whether a 504 (counted as `timeout`) is also right: a fault that takes a while to happen (a
    /// memory bomb filling 32 MiB, a 16 MiB body) can meet its 100 ms deadline first when the storm's
    /// spinning plugins saturate the CPU.
    pub(crate) may_time_out: bool,
}

const fn route(path: &'static str, expected: u16, kind: &'static str) -> FaultRoute {
    FaultRoute {
        path,
        expected,
        kind,
        may_time_out: false,
    }
}

const fn slow_to_fail(path: &'static str, expected: u16, kind: &'static str) -> FaultRoute {
    FaultRoute {
        may_time_out: true,
        ..route(path, expected, kind)
    }
}

impl FaultRoute {
    /// The fault kind the host must count for an answer with `status`, if that answer is right.
    fn kind_for(&self, status: u16) -> Option<&'static str> {
        if status == self.expected {
            Some(self.kind)
        } else if self.may_time_out && status == 504 {
            Some("timeout")
        } else {
            None
        }
    }
}

/// Every fault route, in round-robin order (the control `/faults/ok` is not one: it would be good).
pub(crate) const ROUTES: [FaultRoute; 9] = [
    route("/faults/loop", 504, "timeout"),
    route("/faults/slow", 504, "timeout"),
    slow_to_fail("/faults/memory", 500, "memory_limit"),
    route("/faults/recursion", 500, "trap"),
    route("/faults/panic", 500, "trap"),
    slow_to_fail("/faults/huge", 500, "invalid_response"),
    route("/faults/malformed-json", 500, "invalid_response"),
    route("/faults/malformed-status", 500, "invalid_response"),
    route("/faults/malformed-header", 500, "invalid_response"),
];

/// The fault kinds the storm provokes, in the order the summary prints them.
pub(crate) const KINDS: [&str; 4] = ["timeout", "trap", "memory_limit", "invalid_response"];

/// `DIR/faults.wasm`; an error naming `make plugins` if it is missing.
pub(crate) fn fixture(dir: &Path) -> Result<PathBuf> {
    let path = dir.join(FAULTS_FILE);
    if !path.is_file() {
        bail!(
            "{} is missing: run `make plugins` (or pass --fixtures)",
            path.display()
        );
    }
    Ok(path)
}

/// Which requests are faults: every `every`-th ticket, starting with the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    every: u64,
}

impl Schedule {
    /// F fault requests among N (`Args::validate` makes N a multiple of F, and F < N).
    pub(crate) fn new(requests: u64, faults: u64) -> Schedule {
        Schedule {
            every: (requests / faults.max(1)).max(1),
        }
    }

    /// The index into [`ROUTES`] of request `ticket` (0-based), or `None` for a good request.
    pub(crate) fn route_of(self, ticket: u64) -> Option<usize> {
        ticket.is_multiple_of(self.every).then(|| {
            let nth_fault = ticket / self.every;
            (nth_fault % ROUTES.len() as u64) as usize
        })
    }
}

/// The full URLs of the fault routes and the schedule that picks them.
#[derive(Debug, Clone)]
pub(crate) struct FaultTargets {
    pub(crate) schedule: Schedule,
    urls: Vec<String>,
}

impl FaultTargets {
    pub(crate) fn new(base_url: &str, schedule: Schedule) -> FaultTargets {
        let urls = ROUTES
            .iter()
            .map(|r| format!("{base_url}{}", r.path))
            .collect();
        FaultTargets { schedule, urls }
    }

    /// The route index and URL of request `ticket` if it is a fault.
    pub(crate) fn target(&self, ticket: u64) -> Option<(usize, &str)> {
        let index = self.schedule.route_of(ticket)?;
        Some((index, &self.urls[index]))
    }
}

/// What the fault requests got so far (shared by the workers).
#[derive(Debug, Default)]
pub(crate) struct FaultTally {
    inner: Mutex<TallyInner>,
}

#[derive(Debug, Default)]
struct TallyInner {
    counts: FaultCounts,
    /// Latencies of fault requests since the sampler last took them.
    interval: Histogram,
}

/// A copy of the tally.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FaultCounts {
    /// Fault requests that completed (with an answer or a transport error).
    pub(crate) completed: u64,
    /// Fault requests that got their route's expected status.
    pub(crate) expected: u64,
    /// Answers by (route index, status); a transport error is status 0.
    pub(crate) statuses: BTreeMap<(usize, u16), u64>,
    /// Good requests (`GET /soak`) that did not get a 200, by status (0 = transport error).
    pub(crate) good_errors: BTreeMap<u16, u64>,
    /// The first few unexpected answers, as text.
    pub(crate) messages: Vec<String>,
}

impl FaultCounts {
    /// Fault requests that did not get their expected status.
    pub(crate) fn mismatched(&self) -> u64 {
        self.completed - self.expected
    }

    /// Fault requests that got their expected status, summed by the fault kind the host must count.
    pub(crate) fn expected_by_kind(&self) -> BTreeMap<&'static str, u64> {
        let mut by_kind = BTreeMap::new();
        for (&(index, status), &n) in &self.statuses {
            if let Some(kind) = ROUTES[index].kind_for(status) {
                *by_kind.entry(kind).or_default() += n;
            }
        }
        by_kind
    }
}

impl FaultTally {
    /// Count the answer to fault route `index` (`None`: transport error); whether it was the
    /// expected status.
    pub(crate) fn record(
        &self,
        index: usize,
        status: Option<u16>,
        latency: Option<Duration>,
    ) -> bool {
        let route = ROUTES[index];
        let status_or_zero = status.unwrap_or(0);
        let expected = status.and_then(|s| route.kind_for(s)).is_some();
        let mut inner = self.lock();
        let counts = &mut inner.counts;
        counts.completed += 1;
        counts.expected += u64::from(expected);
        *counts.statuses.entry((index, status_or_zero)).or_default() += 1;
        if !expected {
            let got = status.map_or("a transport error".to_owned(), |s| s.to_string());
            let text = format!("GET {} got {got}, expected {}", route.path, route.expected);
            keep(&mut counts.messages, text);
        }
        if let Some(latency) = latency {
            inner.interval.record(micros(latency));
        }
        expected
    }

    /// Count a good request that did not get a 200 (`None`: transport error).
    pub(crate) fn good_error(&self, status: Option<u16>) {
        let mut inner = self.lock();
        let counts = &mut inner.counts;
        *counts.good_errors.entry(status.unwrap_or(0)).or_default() += 1;
        let got = status.map_or("a transport error".to_owned(), |s| s.to_string());
        keep(
            &mut counts.messages,
            format!("GET /soak got {got}, expected 200"),
        );
    }

    /// The fault latencies recorded since the last call (the histogram starts empty again).
    pub(crate) fn take_interval(&self) -> Histogram {
        std::mem::take(&mut self.lock().interval)
    }

    pub(crate) fn snapshot(&self) -> FaultCounts {
        self.lock().counts.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TallyInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn keep(messages: &mut Vec<String>, text: String) {
    if messages.len() < KEPT_MESSAGES {
        messages.push(text);
    }
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fourth_request_is_a_fault_round_robin_over_the_routes() {
        let schedule = Schedule::new(40_000, 10_000);
        let faults: Vec<u64> = (0..40_000)
            .filter(|&i| schedule.route_of(i).is_some())
            .collect();
        assert_eq!(faults.len(), 10_000);
        assert_eq!(&faults[..3], &[0, 4, 8]);
        assert_eq!(schedule.route_of(1), None);
        let routes: Vec<usize> = (0..40).filter_map(|i| schedule.route_of(i)).collect();
        assert_eq!(routes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
        // 10,000 faults over 9 routes: the first route gets the one left over.
        let per_route =
            (0..40_000)
                .filter_map(|i| schedule.route_of(i))
                .fold([0u64; 9], |mut n, r| {
                    n[r] += 1;
                    n
                });
        assert_eq!(per_route[0], 1112);
        assert!(per_route[1..].iter().all(|&n| n == 1111));
    }

    #[test]
    fn slow_faults_may_meet_their_deadline_first() {
        let memory = ROUTES.iter().find(|r| r.path == "/faults/memory").unwrap();
        assert_eq!(memory.kind_for(500), Some("memory_limit"));
        assert_eq!(memory.kind_for(504), Some("timeout"));
        assert_eq!(memory.kind_for(503), None);
        let panic = ROUTES.iter().find(|r| r.path == "/faults/panic").unwrap();
        assert_eq!(
            panic.kind_for(504),
            None,
            "a panic is immediate: a 504 would be wrong"
        );
    }

    #[test]
    fn expected_statuses_and_kinds() {
        let of = |path: &str| ROUTES.iter().find(|r| r.path == path).copied().unwrap();
        for path in ["/faults/loop", "/faults/slow"] {
            assert_eq!((of(path).expected, of(path).kind), (504, "timeout"));
        }
        assert_eq!(of("/faults/memory").kind, "memory_limit");
        for path in ["/faults/recursion", "/faults/panic"] {
            assert_eq!((of(path).expected, of(path).kind), (500, "trap"));
        }
        for suffix in [
            "huge",
            "malformed-json",
            "malformed-status",
            "malformed-header",
        ] {
            let r = of(&format!("/faults/{suffix}"));
            assert_eq!((r.expected, r.kind), (500, "invalid_response"));
        }
        assert!(ROUTES.iter().all(|r| r.path != "/faults/ok"));
        assert!(ROUTES.iter().all(|r| KINDS.contains(&r.kind)));
    }

    #[test]
    fn tally_keeps_mismatches_apart() {
        let tally = FaultTally::default();
        assert!(tally.record(0, Some(504), Some(Duration::from_millis(101))));
        assert!(!tally.record(0, Some(503), Some(Duration::from_millis(1))));
        assert!(!tally.record(2, None, None));
        assert!(tally.record(5, Some(500), Some(Duration::from_millis(30))));
        tally.good_error(Some(500));
        let counts = tally.snapshot();
        assert_eq!(
            (counts.completed, counts.expected, counts.mismatched()),
            (4, 2, 2)
        );
        assert_eq!(counts.statuses[&(0, 503)], 1);
        assert_eq!(counts.statuses[&(2, 0)], 1);
        assert_eq!(counts.good_errors[&500], 1);
        assert_eq!(counts.messages[0], "GET /faults/loop got 503, expected 504");
        assert_eq!(
            counts.messages[1],
            "GET /faults/memory got a transport error, expected 500"
        );
        let by_kind = counts.expected_by_kind();
        assert_eq!((by_kind["timeout"], by_kind["invalid_response"]), (1, 1));
        assert_eq!(tally.take_interval().percentiles().unwrap().count, 3);
        assert!(tally.take_interval().percentiles().is_none());
    }

    #[test]
    fn targets_are_full_urls() {
        let targets = FaultTargets::new("http://127.0.0.1:1", Schedule::new(20, 10));
        assert_eq!(targets.target(1), None);
        assert_eq!(
            targets.target(2),
            Some((1, "http://127.0.0.1:1/faults/slow"))
        );
    }
}
