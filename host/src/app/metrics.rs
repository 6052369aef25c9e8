//! Process metrics in the Prometheus text format (`GET /metrics`): requests by plugin, route and status,
//! a latency histogram per plugin, reloads by result, live generations and the process's RSS, plus the
//! counters kept where no application state is at hand ([`ProcessCounters`]: responses that could not
//! be written, plugin log lines dropped over their budget).
//!
//! Labels come from route patterns and plugin names, never from raw request paths, so the number of
//! series is bounded by what is loaded.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    /// Count per bucket (not cumulative); the last slot is +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let slot = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// Ways a plugin call can go wrong, counted per plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// Interrupted at its deadline (504).
    Timeout,
    /// Trapped: panic, stack overflow, out-of-bounds access... (500).
    Trap,
    /// Tried to grow memory past its cap (500).
    MemoryLimit,
    /// Returned a malformed or oversized response (500).
    InvalidResponse,
    /// Refused for lack of a free instance (503).
    Busy,
    /// Could not be instantiated or called for another reason (500).
    Failed,
    /// Its JSON could not be rendered through its view (500): a template error or limit.
    Render,
}

impl Fault {
    fn label(self) -> &'static str {
        match self {
            Fault::Timeout => "timeout",
            Fault::Trap => "trap",
            Fault::MemoryLimit => "memory_limit",
            Fault::InvalidResponse => "invalid_response",
            Fault::Busy => "busy",
            Fault::Failed => "failed",
            Fault::Render => "render",
        }
    }
}

/// The labels a request is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteLabels {
    pub plugin: String,
    pub route: String,
}

/// Counters shared by the whole process.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(RouteLabels, u16), u64>>,
    latency: Mutex<HashMap<String, Histogram>>,
    faults: Mutex<HashMap<(String, Fault), u64>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

/// Values read at scrape time rather than counted.
pub struct Gauges {
    pub current_generation: u64,
    pub live_generations: usize,
    pub in_flight: usize,
    /// Templates parsed by the process (only ever when a generation is built).
    pub template_parses: u64,
    /// Pages rendered from the current generation's templates.
    pub page_renders: u64,
    /// 1 while the plugins or templates directory does not build (the host serves an older set).
    pub degraded: u64,
    /// glibc malloc's bytes in use and kept free (`None` with another allocator).
    pub heap: Option<crate::app::alloc::HeapStats>,
    /// The current generation's plugins: name, version, SHA-256 of the component.
    pub plugins: Vec<(String, String, String)>,
}

/// Request counts summed over some plugins: requests, server errors (5xx) and latency bucket counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    /// Count per latency bucket (not cumulative), the last one +Inf.
    pub buckets: [u64; BUCKETS.len() + 1],
}

impl Totals {
    /// What happened between `earlier` and `self` (counters only grow; a smaller value reads as 0).
    pub fn since(&self, earlier: &Totals) -> Totals {
        let mut buckets = self.buckets;
        for (b, e) in buckets.iter_mut().zip(earlier.buckets) {
            *b = b.saturating_sub(e);
        }
        Totals {
            requests: self.requests.saturating_sub(earlier.requests),
            errors: self.errors.saturating_sub(earlier.errors),
            buckets,
        }
    }

    /// The latency below which a fraction `q` of these requests fell, in seconds, interpolated inside
    /// its bucket; `None` without requests. Past the last bound it reads as that bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = BUCKETS.get(i) else {
                    return Some(BUCKETS[BUCKETS.len() - 1]);
                };
                let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
                let within = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                return Some(lower + (upper - lower) * within);
            }
            below += n;
        }
        Some(BUCKETS[BUCKETS.len() - 1])
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counters recorded where the application state is not at hand: the accept loop (a response hyper could
/// not write) and a plugin's log import (lines over the per-call budget, `describe` included). One set
/// per process — like the process's RSS — rendered by every [`Metrics::render`].
pub struct ProcessCounters {
    responses_unwritten: AtomicU64,
    /// Per plugin (its name, or the file being loaded while `describe` runs): lines and bytes dropped.
    log_dropped: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Outbound HTTP calls by (plugin, upstream, outcome): count and seconds. Upstreams are the allowed
    /// origins (`-` for refused calls), so the label set is bounded by the operator's allow-lists.
    outbound: Mutex<BTreeMap<OutboundKey, (u64, f64)>>,
}

/// An outbound call's labels: plugin, upstream, outcome.
type OutboundKey = (String, String, &'static str);

/// Which of a plugin's (lines, bytes) a metric family shows.
type PickCount = fn(&(u64, u64)) -> u64;

static PROCESS: ProcessCounters = ProcessCounters {
    responses_unwritten: AtomicU64::new(0),
    log_dropped: Mutex::new(BTreeMap::new()),
    outbound: Mutex::new(BTreeMap::new()),
};

/// This process's [`ProcessCounters`].
pub fn process() -> &'static ProcessCounters {
    &PROCESS
}

impl ProcessCounters {
    /// Count one response that could not be (completely) written to its client.
    pub fn observe_unwritten_response(&self) {
        self.responses_unwritten.fetch_add(1, Ordering::Relaxed);
    }

    /// Responses that could not be written so far.
    pub fn responses_unwritten(&self) -> u64 {
        self.responses_unwritten.load(Ordering::Relaxed)
    }

    /// Count `lines` log lines (`bytes` bytes) of `plugin` dropped over its per-call budget.
    pub fn observe_log_dropped(&self, plugin: &str, lines: u64, bytes: u64) {
        let mut dropped = self.log_dropped.lock().expect("metrics lock");
        let entry = dropped.entry(plugin.to_owned()).or_default();
        entry.0 += lines;
        entry.1 += bytes;
    }

    /// Log lines and bytes of `plugin` dropped so far.
    pub fn log_dropped_of(&self, plugin: &str) -> (u64, u64) {
        let dropped = self.log_dropped.lock().expect("metrics lock");
        dropped.get(plugin).copied().unwrap_or_default()
    }

    /// Count one outbound call of `plugin` to `upstream` that ended as `outcome` (a status class such as
    /// `2xx`, or the error kind) after `took`.
    pub fn observe_outbound(
        &self,
        plugin: &str,
        upstream: &str,
        outcome: &'static str,
        took: Duration,
    ) {
        let mut calls = self.outbound.lock().expect("metrics lock");
        let entry = calls
            .entry((plugin.to_owned(), upstream.to_owned(), outcome))
            .or_default();
        entry.0 += 1;
        entry.1 += took.as_secs_f64();
    }

    /// Outbound calls of `plugin` so far that ended as `outcome`, over all upstreams.
    pub fn outbound_of(&self, plugin: &str, outcome: &str) -> u64 {
        let calls = self.outbound.lock().expect("metrics lock");
        calls
            .iter()
            .filter(|((p, _, o), _)| p == plugin && *o == outcome)
            .map(|(_, (n, _))| n)
            .sum()
    }

    fn write(&self, out: &mut String) {
        self.write_outbound(out);
        let name = "plugin_host_responses_unwritten_total";
        family(
            out,
            name,
            "counter",
            "Responses the host could not write to their client (the connection failed while sending).",
        );
        let _ = writeln!(out, "{name} {}", self.responses_unwritten());
        let dropped: Vec<(String, (u64, u64))> = self
            .log_dropped
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        let families: [(&str, &str, PickCount); 2] = [
            (
                "plugin_host_plugin_log_lines_dropped_total",
                "Plugin log lines dropped over the per-call budget, by plugin.",
                |&(lines, _)| lines,
            ),
            (
                "plugin_host_plugin_log_bytes_dropped_total",
                "Bytes of plugin log lines dropped over the per-call budget, by plugin.",
                |&(_, bytes)| bytes,
            ),
        ];
        for (name, help, value) in families {
            family(out, name, "counter", help);
            for (plugin, counts) in &dropped {
                let n = value(counts);
                let _ = writeln!(out, "{name}{{plugin=\"{}\"}} {n}", escape(plugin));
            }
        }
    }
}

impl ProcessCounters {
    fn write_outbound(&self, out: &mut String) {
        let calls: Vec<(OutboundKey, (u64, f64))> = self
            .outbound
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let count = "plugin_host_outbound_requests_total";
        family(
            out,
            count,
            "counter",
            "Outbound HTTP calls of plugins, by plugin, upstream and outcome (status class or error).",
        );
        for ((plugin, upstream, outcome), (n, _)) in &calls {
            let _ = writeln!(
                out,
                "{count}{{plugin=\"{}\",upstream=\"{}\",outcome=\"{outcome}\"}} {n}",
                escape(plugin),
                escape(upstream)
            );
        }
        let seconds = "plugin_host_outbound_request_duration_seconds";
        family(
            out,
            seconds,
            "summary",
            "Time outbound HTTP calls took, by plugin, upstream and outcome.",
        );
        for ((plugin, upstream, outcome), (n, sum)) in &calls {
            let labels = format!(
                "plugin=\"{}\",upstream=\"{}\",outcome=\"{outcome}\"",
                escape(plugin),
                escape(upstream)
            );
            let _ = writeln!(out, "{seconds}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{seconds}_count{{{labels}}} {n}");
        }
    }
}

/// The process's resident set size in bytes, from `/proc/self/status` (Linux).
/// What `/proc` says of this process: CPU seconds (user + system), start time (unix seconds) and
/// open file descriptors; `None` where there is no `/proc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
}

pub fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14, 15 (utime, stime) and 22 (starttime), in clock ticks; `after` starts at field 3.
    let ticks = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    // /proc counts in USER_HZ, which Linux fixes at 100 for user space on every architecture.
    let per_second = 100.0;
    // The boot time never changes: /proc/stat (a line per CPU besides) is read once.
    static BOOT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let boot = (*BOOT.get_or_init(|| {
        std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
    }))?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(ProcessStats {
        cpu_seconds: (ticks(14)? + ticks(15)?) as f64 / per_second,
        start_time_seconds: boot as f64 + ticks(22)? as f64 / per_second,
        open_fds,
    })
}

pub fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Metrics {
    /// Count one answered request.
    pub fn observe_request(&self, labels: RouteLabels, status: u16, latency: Duration) {
        let plugin = labels.plugin.clone();
        *self
            .requests
            .lock()
            .expect("metrics lock")
            .entry((labels, status))
            .or_default() += 1;
        self.latency
            .lock()
            .expect("metrics lock")
            .entry(plugin)
            .or_default()
            .observe(latency.as_secs_f64());
    }

    /// Count one fault of `plugin`.
    pub fn observe_fault(&self, plugin: &str, fault: Fault) {
        *self
            .faults
            .lock()
            .expect("metrics lock")
            .entry((plugin.to_owned(), fault))
            .or_default() += 1;
    }

    /// Faults of `plugin` so far, by kind.
    pub fn faults_of(&self, plugin: &str) -> Vec<(&'static str, u64)> {
        let faults = self.faults.lock().expect("metrics lock");
        let mut out: Vec<_> = faults
            .iter()
            .filter(|((p, _), _)| p == plugin)
            .map(|((_, f), n)| (f.label(), *n))
            .collect();
        out.sort();
        out
    }

    /// Count one reload.
    pub fn observe_reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reloads so far: (succeeded, failed).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_failed.load(Ordering::Relaxed),
        )
    }

    /// Every answered request so far, summed over plugins and routes: what the dashboard samples.
    pub fn totals(&self) -> Totals {
        self.totals_where(|_| true)
    }

    /// The answered requests of one plugin (`host` for the host's own routes).
    pub fn totals_of(&self, plugin: &str) -> Totals {
        self.totals_where(|p| p == plugin)
    }

    fn totals_where(&self, wanted: impl Fn(&str) -> bool) -> Totals {
        let mut totals = Totals::default();
        for ((labels, status), n) in self.requests.lock().expect("metrics lock").iter() {
            if wanted(&labels.plugin) {
                totals.requests += n;
                if *status >= 500 {
                    totals.errors += n;
                }
            }
        }
        for (plugin, h) in self.latency.lock().expect("metrics lock").iter() {
            if wanted(plugin) {
                for (sum, n) in totals.buckets.iter_mut().zip(h.counts) {
                    *sum += n;
                }
            }
        }
        totals
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        self.write_requests(&mut out);
        self.write_latency(&mut out);
        self.write_faults(&mut out);
        self.write_gauges(&mut out, gauges);
        process().write(&mut out);
        out
    }

    fn write_requests(&self, out: &mut String) {
        family(
            out,
            "plugin_host_requests_total",
            "counter",
            "Requests answered, by plugin, route pattern and status.",
        );
        let mut requests: Vec<_> = self
            .requests
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|((l, s), n)| (l.clone(), *s, *n))
            .collect();
        requests
            .sort_by(|a, b| (&a.0.plugin, &a.0.route, a.1).cmp(&(&b.0.plugin, &b.0.route, b.1)));
        for (l, status, n) in requests {
            let _ = writeln!(
                out,
                "plugin_host_requests_total{{plugin=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(&l.plugin),
                escape(&l.route)
            );
        }
    }

    fn write_latency(&self, out: &mut String) {
        let name = "plugin_host_request_duration_seconds";
        family(
            out,
            name,
            "histogram",
            "Time from request to response, by plugin.",
        );
        let latency = self.latency.lock().expect("metrics lock");
        let mut plugins: Vec<_> = latency.keys().collect();
        plugins.sort();
        for plugin in plugins {
            let h = &latency[plugin];
            let p = escape(plugin);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(h.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{plugin=\"{p}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{plugin=\"{p}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{{plugin=\"{p}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{plugin=\"{p}\"}} {}", h.count);
        }
    }

    fn write_faults(&self, out: &mut String) {
        family(
            out,
            "plugin_host_plugin_faults_total",
            "counter",
            "Plugin calls that went wrong, by plugin and kind.",
        );
        let mut faults: Vec<_> = self
            .faults
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|((p, f), n)| (p.clone(), *f, *n))
            .collect();
        faults.sort();
        for (plugin, fault, n) in faults {
            let _ = writeln!(
                out,
                "plugin_host_plugin_faults_total{{plugin=\"{}\",kind=\"{}\"}} {n}",
                escape(&plugin),
                fault.label()
            );
        }
    }

    fn write_gauges(&self, out: &mut String, gauges: &Gauges) {
        let (ok, failed) = self.reloads();
        family(
            out,
            "plugin_host_reloads_total",
            "counter",
            "Reloads, by result.",
        );
        let _ = writeln!(out, "plugin_host_reloads_total{{result=\"ok\"}} {ok}");
        let _ = writeln!(
            out,
            "plugin_host_reloads_total{{result=\"failed\"}} {failed}"
        );
        let single: [(&str, &str, &str, u64); 6] = [
            (
                "plugin_host_live_generations",
                "gauge",
                "Generations alive: the current one plus retired ones still draining.",
                gauges.live_generations as u64,
            ),
            (
                "plugin_host_current_generation",
                "gauge",
                "Id of the generation new requests are served from.",
                gauges.current_generation,
            ),
            (
                "plugin_host_in_flight_requests",
                "gauge",
                "Plugin requests being served now, over all generations.",
                gauges.in_flight as u64,
            ),
            (
                "plugin_host_template_parses_total",
                "counter",
                "Templates parsed; only building a generation parses.",
                gauges.template_parses,
            ),
            (
                "plugin_host_page_renders_total",
                "counter",
                "Pages rendered from the current generation's templates (starts again from 0 with each generation).",
                gauges.page_renders,
            ),
            (
                "plugin_host_degraded",
                "gauge",
                "1 while the plugins or templates directory does not build and an older set is served.",
                gauges.degraded,
            ),
        ];
        for (name, kind, help, value) in single {
            family(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            out,
            "plugin_host_build_info",
            "gauge",
            "The host's version, the wasmtime it embeds and the plugin contract it serves (always 1).",
        );
        let _ = writeln!(
            out,
            "plugin_host_build_info{{version=\"{}\",wasmtime=\"{}\",contract=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            crate::generation::engine::WASMTIME_VERSION,
            crate::bindings::CONTRACT_VERSION,
        );
        family(
            out,
            "plugin_host_plugin_info",
            "gauge",
            "One series per plugin the current generation serves: name, version, SHA-256 of the component (always 1).",
        );
        for (name, version, sha256) in &gauges.plugins {
            let _ = writeln!(
                out,
                "plugin_host_plugin_info{{plugin=\"{}\",version=\"{}\",sha256=\"{}\"}} 1",
                escape(name),
                escape(version),
                escape(sha256)
            );
        }
        if let Some(p) = process_stats() {
            for (name, kind, help, value) in [
                (
                    "process_cpu_seconds_total",
                    "counter",
                    "User and system CPU time spent, in seconds.",
                    p.cpu_seconds,
                ),
                (
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since the unix epoch, in seconds.",
                    p.start_time_seconds,
                ),
                (
                    "process_open_fds",
                    "gauge",
                    "Open file descriptors.",
                    p.open_fds as f64,
                ),
            ] {
                family(out, name, kind, help);
                let _ = writeln!(out, "{name} {value}");
            }
        }
        if let Some(rss) = process_rss_bytes() {
            let name = "process_resident_memory_bytes";
            family(out, name, "gauge", "Resident memory size in bytes.");
            let _ = writeln!(out, "{name} {rss}");
        }
        if let Some(heap) = gauges.heap {
            for (name, help, value) in [
                (
                    "plugin_host_heap_in_use_bytes",
                    "Bytes malloc handed out and not yet freed (glibc mallinfo2: uordblks + hblkhd).",
                    heap.in_use_bytes,
                ),
                (
                    "plugin_host_heap_free_bytes",
                    "Freed bytes malloc keeps in its arenas for reuse (glibc mallinfo2: fordblks).",
                    heap.free_bytes,
                ),
            ] {
                family(out, name, "gauge", help);
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
}

/// The `# HELP` and `# TYPE` lines of metric family `name`.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        let labels = RouteLabels {
            plugin: "hello".into(),
            route: "/hello/{name}".into(),
        };
        m.observe_request(labels.clone(), 200, Duration::from_micros(300));
        m.observe_request(labels, 200, Duration::from_millis(2));
        m.observe_request(
            RouteLabels {
                plugin: "we\"ird".into(),
                route: "/x".into(),
            },
            500,
            Duration::from_secs(60),
        );
        m.observe_reload(true);
        m.observe_reload(false);
        let text = m.render(&Gauges {
            current_generation: 3,
            live_generations: 2,
            in_flight: 0,
            template_parses: 9,
            page_renders: 4,
            degraded: 0,
            plugins: vec![("hello".into(), "0.1.0".into(), "ab12".into())],
            heap: Some(crate::app::alloc::HeapStats {
                in_use_bytes: 5,
                free_bytes: 6,
            }),
        });
        assert!(text.contains("plugin_host_template_parses_total 9"));
        assert!(text.contains("plugin_host_page_renders_total 4"));
        assert!(text.contains(
            "plugin_host_plugin_info{plugin=\"hello\",version=\"0.1.0\",sha256=\"ab12\"} 1"
        ));
        assert!(text.contains("plugin_host_build_info{version=\""));
        let stats = process_stats().expect("/proc is there on Linux");
        assert!(stats.cpu_seconds >= 0.0 && stats.open_fds >= 3, "{stats:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            stats.start_time_seconds <= now + 1.0 && stats.start_time_seconds > now - 86_400.0,
            "{stats:?}"
        );
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
        assert!(text.contains(
            "plugin_host_requests_total{plugin=\"hello\",route=\"/hello/{name}\",status=\"200\"} 2"
        ));
        assert!(text.contains("plugin=\"we\\\"ird\""));
        assert!(text.contains(
            "plugin_host_request_duration_seconds_bucket{plugin=\"hello\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains(
            "plugin_host_request_duration_seconds_bucket{plugin=\"hello\",le=\"0.0025\"} 2"
        ));
        assert!(text.contains(
            "plugin_host_request_duration_seconds_bucket{plugin=\"we\\\"ird\",le=\"30\"} 0"
        ));
        assert!(text.contains(
            "plugin_host_request_duration_seconds_bucket{plugin=\"we\\\"ird\",le=\"+Inf\"} 1"
        ));
        assert!(text.contains("plugin_host_reloads_total{result=\"failed\"} 1"));
        assert!(text.contains("plugin_host_live_generations 2"));
        assert!(text.contains("process_resident_memory_bytes "));
        assert!(text.contains("plugin_host_heap_in_use_bytes 5\n"));
        assert!(text.contains("plugin_host_heap_free_bytes 6\n"));
        assert!(text.contains("plugin_host_responses_unwritten_total "));
    }

    #[test]
    fn process_counters_are_rendered_per_plugin() {
        // The counters are process-wide: use a plugin name no other test uses, and compare with before.
        let before = process().responses_unwritten();
        process().observe_unwritten_response();
        process().observe_log_dropped("metrics-test-plugin", 3, 300);
        process().observe_log_dropped("metrics-test-plugin", 1, 10);
        assert!(process().responses_unwritten() > before);
        assert_eq!(process().log_dropped_of("metrics-test-plugin"), (4, 310));
        let text = Metrics::default().render(&Gauges {
            current_generation: 1,
            live_generations: 1,
            in_flight: 0,
            template_parses: 0,
            page_renders: 0,
            plugins: Vec::new(),
            degraded: 1,
            heap: None,
        });
        assert!(text.contains("plugin_host_degraded 1"));
        assert!(!text.contains("plugin_host_heap_in_use_bytes"));
        assert!(text.contains(
            "plugin_host_plugin_log_lines_dropped_total{plugin=\"metrics-test-plugin\"} 4"
        ));
        assert!(text.contains(
            "plugin_host_plugin_log_bytes_dropped_total{plugin=\"metrics-test-plugin\"} 310"
        ));
        assert!(text.contains("# TYPE plugin_host_responses_unwritten_total counter"));
    }

    #[test]
    fn totals_sum_plugins_and_estimate_quantiles() {
        let m = Metrics::default();
        let at = |plugin: &str| RouteLabels {
            plugin: plugin.into(),
            route: "/r".into(),
        };
        for _ in 0..98 {
            m.observe_request(at("a"), 200, Duration::from_micros(200));
        }
        m.observe_request(at("b"), 500, Duration::from_millis(40));
        m.observe_request(at("b"), 503, Duration::from_millis(40));
        let all = m.totals();
        assert_eq!((all.requests, all.errors), (100, 2));
        let p50 = all.quantile(0.5).unwrap();
        assert!((0.0001..=0.00025).contains(&p50), "{p50}");
        let p99 = all.quantile(0.99).unwrap();
        assert!((0.025..=0.05).contains(&p99), "{p99}");
        let b = m.totals_of("b");
        assert_eq!((b.requests, b.errors), (2, 2));
        assert_eq!(b.since(&b).requests, 0);
        assert_eq!(m.totals_of("nobody").quantile(0.5), None);
    }
}
