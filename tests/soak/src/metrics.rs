//! The host's own count of things, from `GET /metrics` (Prometheus text): at each sample the live
//! generations and malloc's heap (`plugin_host_heap_{in_use,free}_bytes`); after the load the
//! `plugin_host_in_flight_requests` gauge (0 once every request is done, or an instance leaked) and
//! the `plugin_host_plugin_faults_total` counters of one plugin, by kind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::admin::Admin;

const IN_FLIGHT: &str = "plugin_host_in_flight_requests";
const LIVE_GENERATIONS: &str = "plugin_host_live_generations";
const HEAP_IN_USE: &str = "plugin_host_heap_in_use_bytes";
const HEAP_FREE: &str = "plugin_host_heap_free_bytes";
const FAULTS: &str = "plugin_host_plugin_faults_total";
/// How often `wait_for_idle` scrapes again while requests are still in flight.
const IDLE_POLL: Duration = Duration::from_millis(100);

/// What the host reported about one plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostMetrics {
    /// Plugin requests being served, over all generations (`None`: the gauge was missing).
    pub(crate) in_flight: Option<u64>,
    /// The current generation plus retired ones still draining.
    pub(crate) live_generations: Option<u64>,
    /// glibc malloc's bytes in use and kept free (hosts built before the gauges: `None`).
    pub(crate) heap_in_use: Option<u64>,
    pub(crate) heap_free: Option<u64>,
    /// `plugin_host_plugin_faults_total{plugin=..., kind=K}` by K.
    pub(crate) faults: BTreeMap<String, u64>,
    /// How long after the drain the scrape that reported them came.
    pub(crate) waited: Duration,
}

/// Scrape until the in-flight gauge reads 0 or `limit` passed; the last scrape.
pub(crate) async fn wait_for_idle(
    admin: &Admin,
    plugin: &str,
    limit: Duration,
) -> Result<HostMetrics> {
    let started = Instant::now();
    loop {
        let mut metrics = parse(&admin.metrics_text().await?, plugin);
        metrics.waited = started.elapsed();
        if metrics.in_flight == Some(0) || metrics.waited >= limit {
            return Ok(metrics);
        }
        tokio::time::sleep(IDLE_POLL).await;
    }
}

/// The gauge and the fault counters of `plugin` from an exposition.
pub(crate) fn parse(text: &str, plugin: &str) -> HostMetrics {
    let mut metrics = HostMetrics::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = split_series(series);
        let gauge = match name {
            IN_FLIGHT => Some(&mut metrics.in_flight),
            LIVE_GENERATIONS => Some(&mut metrics.live_generations),
            HEAP_IN_USE => Some(&mut metrics.heap_in_use),
            HEAP_FREE => Some(&mut metrics.heap_free),
            _ => None,
        };
        if let Some(gauge) = gauge {
            *gauge = Some(value as u64);
        } else if name == FAULTS
            && label(labels, "plugin").as_deref() == Some(plugin)
            && let Some(kind) = label(labels, "kind")
        {
            *metrics.faults.entry(kind).or_default() += value as u64;
        }
    }
    metrics
}

/// `name{labels}` → (name, labels without braces); no braces → (name, "").
fn split_series(series: &str) -> (&str, &str) {
    match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}').unwrap_or(rest)),
        None => (series, ""),
    }
}

/// The unescaped value of `key="value"` in a label list.
fn label(labels: &str, key: &str) -> Option<String> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let (value, after) = quoted(after)?;
        if name.trim_start_matches(',').trim() == key {
            return Some(value);
        }
        rest = after;
    }
    None
}

/// A quoted value up to its closing quote (after `="`), unescaped; and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[at + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "\
# HELP plugin_host_plugin_faults_total Plugin calls that went wrong, by plugin and kind.
# TYPE plugin_host_plugin_faults_total counter
plugin_host_plugin_faults_total{plugin=\"faults\",kind=\"timeout\"} 2222
plugin_host_plugin_faults_total{plugin=\"faults\",kind=\"trap\"} 2222
plugin_host_plugin_faults_total{plugin=\"a,\\\"b\",kind=\"trap\"} 7
plugin_host_plugin_faults_total{plugin=\"faults\",kind=\"invalid_response\"} 4444
plugin_host_requests_total{plugin=\"faults\",route=\"/faults/loop\",status=\"504\"} 1111
# TYPE plugin_host_in_flight_requests gauge
plugin_host_in_flight_requests 0
plugin_host_live_generations 2
plugin_host_heap_in_use_bytes 12345678
plugin_host_heap_free_bytes 2048
";

    #[test]
    fn faults_of_one_plugin_and_the_in_flight_gauge() {
        let m = parse(EXPOSITION, "faults");
        assert_eq!(m.in_flight, Some(0));
        assert_eq!(m.live_generations, Some(2));
        assert_eq!((m.heap_in_use, m.heap_free), (Some(12_345_678), Some(2048)));
        assert_eq!(m.faults.len(), 3);
        assert_eq!(m.faults["timeout"], 2222);
        assert_eq!(m.faults["invalid_response"], 4444);
        assert_eq!(parse(EXPOSITION, "a,\"b").faults["trap"], 7);
        assert_eq!(parse("", "faults"), HostMetrics::default());
    }

    #[test]
    fn labels_are_unescaped() {
        assert_eq!(label(r#"a="x",b="y\"z""#, "b").as_deref(), Some("y\"z"));
        assert_eq!(label(r#"a="x""#, "b"), None);
        assert_eq!(label(r#"a="unterminated"#, "a"), None);
    }
}
