//! What a fault storm means, beside the common report: the answers each fault route got, the host's
//! fault counters against the answers that were right, the in-flight gauge after the drain, the
//! reasons the storm failed, and its row for docs/benchmarks.md.

use crate::faults::{FaultCounts, KINDS, ROUTES};
use crate::latency::Percentiles;
use crate::metrics::HostMetrics;
use crate::report::{self, RssFigures, RunResult};

const MARKDOWN_HEADER: &str = "| date | mode | requests | fault requests | concurrency | reload every | \
reloads ok / failed | req/s | good p50 / p99 | fault p50 / p99 | unexpected answers | \
host faults: timeout / trap / memory_limit / invalid_response | RSS before | RSS after | \
max RSS after warm-up | change | back to 1 generation | in flight after |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// What the storm produced, for the report.
#[derive(Debug, Clone)]
pub(crate) struct FaultsResult {
    pub(crate) counts: FaultCounts,
    /// Latency of every fault request.
    pub(crate) latency: Option<Percentiles>,
    /// `GET /metrics` after the drain, or why it could not be read.
    pub(crate) metrics: Result<HostMetrics, String>,
}

impl FaultsResult {
    /// The host's faults of the kinds the storm provokes, summed.
    fn host_total(&self) -> Option<u64> {
        let metrics = self.metrics.as_ref().ok()?;
        Some(KINDS.iter().filter_map(|k| metrics.faults.get(*k)).sum())
    }
}

/// Every reason the storm failed (beside the common ones); empty when it passed.
pub(crate) fn failures(f: &FaultsResult) -> Vec<String> {
    let mut reasons = Vec::new();
    if !f.counts.messages.is_empty() {
        reasons.push(format!(
            "unexpected answers (first {}): {}",
            f.counts.messages.len(),
            f.counts.messages.join("; ")
        ));
    }
    let metrics = match &f.metrics {
        Ok(metrics) => metrics,
        Err(error) => {
            reasons.push(format!("GET /metrics after the drain failed: {error}"));
            return reasons;
        }
    };
    if metrics.in_flight != Some(0) {
        reasons.push(format!(
            "plugin_host_in_flight_requests is {} {:.1} s after the drain: a request or an instance leaked",
            report::opt(metrics.in_flight),
            metrics.waited.as_secs_f64()
        ));
    }
    let host_total = f.host_total().unwrap_or(0);
    if host_total != f.counts.expected {
        reasons.push(format!(
            "the host counted {host_total} faults ({}), but {} fault requests got their expected status \
             ({} got another one)",
            KINDS.join(" + "),
            f.counts.expected,
            f.counts.mismatched()
        ));
    }
    reasons
}

/// The storm's lines of the summary.
pub(crate) fn print(f: &FaultsResult, planned: u64) {
    let c = &f.counts;
    println!(
        "faults       {} of {planned} fault requests done: {} got the expected status, {} did not; latency {}",
        c.completed,
        c.expected,
        c.mismatched(),
        report::latency_text(f.latency)
    );
    for (index, route) in ROUTES.iter().enumerate() {
        println!("             {:<26} {}", route.path, answers(c, index));
    }
    if !c.good_errors.is_empty() {
        let good: Vec<String> = c
            .good_errors
            .iter()
            .map(|(status, n)| format!("{n} × {}", status_text(*status)))
            .collect();
        println!("             GET /soak errors: {}", good.join(", "));
    }
    for message in &c.messages {
        println!("             unexpected: {message}");
    }
    match &f.metrics {
        Ok(metrics) => print_host_counts(f, metrics),
        Err(error) => println!("host faults  GET /metrics failed: {error}"),
    }
}

/// The host's counters beside what the answers say they should be, and the in-flight gauge.
fn print_host_counts(f: &FaultsResult, metrics: &HostMetrics) {
    let expected = f.counts.expected_by_kind();
    let kinds: Vec<String> = KINDS
        .iter()
        .map(|kind| {
            let got = metrics.faults.get(*kind).copied().unwrap_or(0);
            let want = expected.get(kind).copied().unwrap_or(0);
            let flag = if got == want { "" } else { " MISMATCH" };
            format!("{kind} {got} (answers: {want}{flag})")
        })
        .collect();
    println!("host faults  {}", kinds.join(", "));
    let others: Vec<String> = metrics
        .faults
        .iter()
        .filter(|(kind, _)| !KINDS.contains(&kind.as_str()))
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    let host_total = f.host_total().unwrap_or(0);
    let relation = if host_total == f.counts.expected {
        "="
    } else {
        "!="
    };
    let others = if others.is_empty() {
        String::new()
    } else {
        format!("; other kinds: {}", others.join(", "))
    };
    println!(
        "             total {host_total} {relation} {} expected answers (+ {} unexpected){others}",
        f.counts.expected,
        f.counts.mismatched(),
    );
    println!(
        "in flight    {} after the drain (plugin_host_in_flight_requests, read {:.1} s after it)",
        report::opt(metrics.in_flight),
        metrics.waited.as_secs_f64()
    );
}

/// `1111 × 504` or `1109 × 504, 2 × 503 (expected 504)` for one route.
fn answers(c: &FaultCounts, index: usize) -> String {
    let mut parts = Vec::new();
    let mut unexpected = false;
    for (&(_, status), &n) in c.statuses.range((index, 0)..=(index, u16::MAX)) {
        unexpected |= status != ROUTES[index].expected;
        parts.push(format!("{n} × {}", status_text(status)));
    }
    if parts.is_empty() {
        return "none sent".to_owned();
    }
    let mut text = parts.join(", ");
    if unexpected {
        text.push_str(&format!(" (expected {})", ROUTES[index].expected));
    }
    text
}

fn status_text(status: u16) -> String {
    if status == 0 {
        "transport error".to_owned()
    } else {
        status.to_string()
    }
}

/// A header and one row to paste into docs/benchmarks.md.
pub(crate) fn markdown(run: &RunResult, f: &FaultsResult, rss: &RssFigures) -> String {
    let p = &run.progress;
    let good = run.total.unwrap_or_default();
    let fault = f.latency.unwrap_or_default();
    let host = match &f.metrics {
        Ok(m) => KINDS
            .iter()
            .map(|k| m.faults.get(*k).copied().unwrap_or(0).to_string())
            .collect::<Vec<_>>()
            .join(" / "),
        Err(_) => "-".to_owned(),
    };
    let in_flight = f.metrics.as_ref().ok().and_then(|m| m.in_flight);
    let row = format!(
        "| {} | faults | {} | {} | {} | {} | {} / {} | {:.0} | {} / {} µs | {} / {} µs | {} | {host} | {} | {} | {} | {} | {} | {} |",
        run.date.split(' ').next().unwrap_or(&run.date),
        p.completed,
        f.counts.completed,
        run.args.concurrency,
        report::reload_every(&run.args),
        p.reloads_ok,
        p.reloads_failed,
        report::rps(run),
        good.p50,
        good.p99,
        fault.p50,
        fault.p99,
        p.errors(),
        rss.warm.map_or("-".to_owned(), |(_, b)| report::mib(b)),
        rss.final_bytes.map_or("-".to_owned(), report::mib),
        rss.max_after_warm.map_or("-".to_owned(), report::mib),
        rss.change_pct
            .map_or("-".to_owned(), |c| format!("{c:+.1} %")),
        if run.drained_to == Some(1) {
            "yes"
        } else {
            "no"
        },
        report::opt(in_flight),
    );
    format!("{MARKDOWN_HEADER}\n{row}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn result(expected_by_host: u64, in_flight: Option<u64>) -> FaultsResult {
        let mut statuses = BTreeMap::new();
        statuses.insert((0, 504), 2);
        statuses.insert((0, 503), 1);
        statuses.insert((3, 500), 1);
        let counts = FaultCounts {
            completed: 4,
            expected: 3,
            statuses,
            good_errors: BTreeMap::new(),
            messages: vec!["GET /faults/loop got 503, expected 504".into()],
        };
        let mut faults = BTreeMap::new();
        faults.insert("timeout".to_owned(), 2);
        faults.insert("trap".to_owned(), expected_by_host - 2);
        faults.insert("busy".to_owned(), 1);
        FaultsResult {
            counts,
            latency: None,
            metrics: Ok(HostMetrics {
                in_flight,
                faults,
                ..HostMetrics::default()
            }),
        }
    }

    #[test]
    fn answers_name_the_unexpected_statuses() {
        let f = result(3, Some(0));
        assert_eq!(answers(&f.counts, 0), "1 × 503, 2 × 504 (expected 504)");
        assert_eq!(answers(&f.counts, 3), "1 × 500");
        assert_eq!(answers(&f.counts, 1), "none sent");
    }

    #[test]
    fn host_counters_must_match_the_expected_answers_and_nothing_stays_in_flight() {
        let passing = failures(&result(3, Some(0)));
        assert_eq!(passing.len(), 1, "{passing:?}");
        assert!(passing[0].starts_with("unexpected answers (first 1)"));
        let reasons = failures(&result(4, Some(2))).join("\n");
        assert!(
            reasons.contains("plugin_host_in_flight_requests is 2"),
            "{reasons}"
        );
        assert!(reasons.contains("the host counted 4 faults"), "{reasons}");
    }
}
