//! What the run means: the RSS figures (warm, final, max after warm-up, change), the slopes of RSS and
//! of malloc's heap in use over the second half of the run (bytes per reload; per request too in the
//! traffic modes), the verdict (every reason the soak failed), the summary on stdout and the row for
//! docs/benchmarks.md (faults mode adds its own part from `faults_report`).

use std::time::Duration;

use crate::args::{Args, Axis, Mode};
use crate::faults_report::{self, FaultsResult};
use crate::host::Stopped;
use crate::latency::Percentiles;
use crate::load::Snapshot;
use crate::reload::ReloadLog;
use crate::sampler::Sample;
use crate::slope::{self, Slope};

const MIB: f64 = 1024.0 * 1024.0;
const MARKDOWN_HEADER: &str = "| date | mode | requests | concurrency | reload every | reloads ok / failed | \
req/s | p50 / p99 | warm RSS | final RSS | max RSS after warm-up | change | RSS slope, 2nd half: B/request, B/reload | \
heap in use slope: B/request | max live generations | back to 1 |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";
const RELOAD_MARKDOWN_HEADER: &str = "| date | via | reloads ok / failed | reloads/s | RSS at start | warm RSS | \
final RSS | max RSS after warm-up | RSS slope, 2nd half (B/reload ± s.e.) | anonymous RSS slope | \
heap in use: warm → final | heap in use slope | back to 1 generation |\n\
|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// Everything the run produced, gathered for the report.
pub(crate) struct RunResult {
    pub(crate) args: Args,
    pub(crate) date: String,
    pub(crate) samples: Vec<Sample>,
    pub(crate) total: Option<Percentiles>,
    pub(crate) load_time: Duration,
    pub(crate) progress: Snapshot,
    pub(crate) reloads: ReloadLog,
    /// Live generations after the load and the drain wait.
    pub(crate) drained_to: Option<u64>,
    pub(crate) drain_limit: Duration,
    pub(crate) sample_failures: u64,
    pub(crate) sample_failure_messages: Vec<String>,
    pub(crate) host: Stopped,
    /// Faults mode: what the fault requests got and what the host counted.
    pub(crate) faults: Option<FaultsResult>,
}

/// Samples whose median makes the warm and the final RSS. One sample can land in a reload's compile
/// (a transient MiB or two); the median of five does not move for that, and does for a real leak.
pub(crate) const RSS_WINDOW: usize = 5;

/// RSS figures relative to the warm RSS.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct RssFigures {
    /// Requests at the first sample at or after the warm-up, and the median RSS of the `RSS_WINDOW`
    /// samples from there.
    pub(crate) warm: Option<(u64, u64)>,
    /// Median RSS of the last `RSS_WINDOW` samples.
    pub(crate) final_bytes: Option<u64>,
    pub(crate) max_after_warm: Option<u64>,
    /// Final over warm, in percent.
    pub(crate) change_pct: Option<f64>,
}

/// Warm, final and max RSS and the change, from the samples (`warmup` counted on `axis`).
pub(crate) fn rss_figures(samples: &[Sample], warmup: u64, axis: Axis) -> RssFigures {
    rss_figures_of(samples, warmup, axis, |s| s.rss_bytes)
}

/// [`rss_figures`] for another series of bytes (the heap in use).
pub(crate) fn rss_figures_of(
    samples: &[Sample],
    warmup: u64,
    axis: Axis,
    value: impl Fn(&Sample) -> Option<u64>,
) -> RssFigures {
    let measured: Vec<(u64, u64)> = samples
        .iter()
        .filter(|s| s.x(axis) >= warmup)
        .filter_map(|s| value(s).map(|b| (s.x(axis), b)))
        .collect();
    let median = |window: &[(u64, u64)]| {
        let mut bytes: Vec<u64> = window.iter().map(|(_, b)| *b).collect();
        bytes.sort_unstable();
        bytes.get(bytes.len() / 2).copied()
    };
    let warm = measured.first().and_then(|(at, _)| {
        let window = &measured[..measured.len().min(RSS_WINDOW)];
        Some((*at, median(window)?))
    });
    let final_bytes = median(&measured[measured.len().saturating_sub(RSS_WINDOW)..]);
    let max_after_warm = warm.and_then(|(at, _)| {
        samples
            .iter()
            .filter(|s| s.x(axis) >= at)
            .filter_map(&value)
            .max()
    });
    let change_pct = match (warm, final_bytes) {
        (Some((_, warm)), Some(last)) => Some((last as f64 / warm as f64 - 1.0) * 100.0),
        _ => None,
    };
    RssFigures {
        warm,
        final_bytes,
        max_after_warm,
        change_pct,
    }
}

/// The slopes over the second half of the run: RSS and heap in use, per reload and per request.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Slopes {
    pub(crate) rss_per_reload: Option<Slope>,
    /// The anonymous part of the RSS (what is not the binary's pages or mapped files).
    pub(crate) anon_per_reload: Option<Slope>,
    pub(crate) heap_per_reload: Option<Slope>,
    /// Traffic modes only.
    pub(crate) rss_per_request: Option<Slope>,
    pub(crate) heap_per_request: Option<Slope>,
}

/// Fit the slopes of `samples` (per request only when `axis` counts requests).
pub(crate) fn slopes(samples: &[Sample], axis: Axis) -> Slopes {
    let reloads = |s: &Sample| s.reloads();
    let requests = |s: &Sample| s.requests;
    let rss = |s: &Sample| s.rss_bytes;
    let heap = |s: &Sample| s.heap_in_use_bytes;
    let traffic = axis == Axis::Requests;
    Slopes {
        rss_per_reload: slope::second_half(samples, reloads, rss),
        anon_per_reload: slope::second_half(samples, reloads, |s| s.rss_anon_bytes),
        heap_per_reload: slope::second_half(samples, reloads, heap),
        rss_per_request: traffic
            .then(|| slope::second_half(samples, requests, rss))
            .flatten(),
        heap_per_request: traffic
            .then(|| slope::second_half(samples, requests, heap))
            .flatten(),
    }
}

impl Slopes {
    /// The RSS slope on `axis`.
    pub(crate) fn rss(&self, axis: Axis) -> Option<Slope> {
        match axis {
            Axis::Requests => self.rss_per_request,
            Axis::Reloads => self.rss_per_reload,
        }
    }
}

/// The chart title: mode, N, C, M and the date.
pub(crate) fn title(args: &Args, date: &str) -> String {
    if args.mode == Mode::Reload {
        return format!(
            "plugin-host soak (reload via {}{}): {} reloads, no traffic, {date}",
            args.via.name(),
            if args.swap_builds {
                ", swapping builds"
            } else {
                ""
            },
            args.reloads
        );
    }
    let reloads = match args.reload_every {
        0 => "no reloads".to_owned(),
        m => format!("reload every {m}"),
    };
    format!(
        "plugin-host soak ({}): {} requests, concurrency {}, {reloads}, {date}",
        args.mode.name(),
        args.requests,
        args.concurrency,
    )
}

/// Every reason the soak failed; empty when it passed.
pub(crate) fn failures(run: &RunResult, rss: &RssFigures, slopes: &Slopes) -> Vec<String> {
    let mut reasons = Vec::new();
    let p = &run.progress;
    if p.errors() > 0 {
        reasons.push(format!(
            "{} requests failed ({} non-200, {} transport errors)",
            p.errors(),
            p.bad_status,
            p.transport_errors
        ));
    }
    if p.reloads_failed > 0 {
        let first = run
            .reloads
            .errors
            .first()
            .map(String::as_str)
            .unwrap_or("?");
        reasons.push(format!(
            "{} reloads failed; first: {first}",
            p.reloads_failed
        ));
    }
    if p.timed_out {
        let (done, planned, what) = match run.args.axis() {
            Axis::Requests => (p.completed, run.args.requests, "requests"),
            Axis::Reloads => (p.reloads_ok + p.reloads_failed, run.args.reloads, "reloads"),
        };
        reasons.push(format!(
            "stopped by --max-seconds {} after {done} of {planned} {what}",
            run.args.max_seconds
        ));
    }
    reasons.extend(generation_failures(run));
    reasons.extend(rss_failures(run, rss));
    reasons.extend(slope_failures(&run.args, slopes));
    reasons.extend(host_failures(&run.host));
    if let Some(faults) = &run.faults {
        reasons.extend(faults_report::failures(faults));
    }
    reasons
}

fn generation_failures(run: &RunResult) -> Vec<String> {
    let mut reasons = Vec::new();
    if run.drained_to != Some(1) {
        let seen = run
            .drained_to
            .map_or("unknown".to_owned(), |n| n.to_string());
        reasons.push(format!(
            "live generations did not return to 1 within {:?} after the load (last seen: {seen})",
            run.drain_limit
        ));
    }
    if run.sample_failures > 0 {
        let first = run
            .sample_failure_messages
            .first()
            .map(String::as_str)
            .unwrap_or("?");
        reasons.push(format!(
            "{} sample readings failed; first: {first}",
            run.sample_failures
        ));
    }
    reasons
}

fn rss_failures(run: &RunResult, rss: &RssFigures) -> Vec<String> {
    let tolerance = run.args.rss_tolerance_pct;
    match (rss.warm, rss.final_bytes, rss.change_pct) {
        (None, _, _) => vec![format!(
            "no RSS sample at or after the warm-up ({} requests)",
            run.args.warmup
        )],
        (Some((_, warm)), Some(last), Some(change)) if change > tolerance => vec![format!(
            "RSS grew {change:+.1} % from warm {} to final {}, over the {tolerance} % tolerance",
            mib(warm),
            mib(last)
        )],
        (Some(_), None, _) => vec!["no final RSS sample".into()],
        _ => Vec::new(),
    }
}

/// The RSS slope over the second half against `--max-bytes-per-reload` (when set) and, in the traffic
/// modes, `--max-bytes-per-request`. No slope at all (too few samples) fails where a limit applies.
fn slope_failures(args: &Args, slopes: &Slopes) -> Vec<String> {
    let mut limits = Vec::new();
    if let Some(limit) = args.max_bytes_per_reload {
        limits.push((
            Axis::Reloads,
            slopes.rss_per_reload,
            limit,
            "--max-bytes-per-reload",
        ));
    }
    if args.axis() == Axis::Requests {
        let limit = args.max_bytes_per_request;
        limits.push((
            Axis::Requests,
            slopes.rss_per_request,
            limit,
            "--max-bytes-per-request",
        ));
    }
    limits
        .into_iter()
        .filter_map(|(axis, slope, limit, flag)| match slope {
            None => Some(format!(
                "no RSS slope per {} (too few samples in the second half of the run)",
                axis.unit()
            )),
            Some(slope) if slope.per_unit > limit => Some(format!(
                "RSS grew {} over the second half of the run, above {flag} {limit}",
                slope.text(axis)
            )),
            Some(_) => None,
        })
        .collect()
}

fn host_failures(host: &Stopped) -> Vec<String> {
    if host.killed {
        vec!["the host did not exit within 15 s of SIGTERM and was killed".into()]
    } else if !host.status.success() {
        vec![format!(
            "the host exited with {} after SIGTERM",
            host.status
        )]
    } else {
        Vec::new()
    }
}

/// The human summary on stdout.
pub(crate) fn print_summary(run: &RunResult, rss: &RssFigures, slopes: &Slopes) {
    let a = &run.args;
    let p = &run.progress;
    println!();
    if a.mode == Mode::Reload {
        print_reload_summary(run, rss, slopes);
        return;
    }
    println!(
        "soak {}: {} requests planned, concurrency {}, reload every {}, sample every {}, warm-up {}",
        a.mode.name(),
        a.requests,
        a.concurrency,
        reload_every(a),
        a.sample_every,
        a.warmup
    );
    println!(
        "requests     {} ok, {} errors ({} non-200, {} transport) in {:.1} s: {:.0} req/s",
        p.ok,
        p.errors(),
        p.bad_status,
        p.transport_errors,
        run.load_time.as_secs_f64(),
        rps(run)
    );
    let which = if run.faults.is_some() {
        "good requests, whole run"
    } else {
        "whole run"
    };
    println!("latency      {} ({which})", latency_text(run.total));
    if let Some(faults) = &run.faults {
        faults_report::print(faults, a.fault_requests);
    }
    print_reloads(run);
    print_rss(rss, Axis::Requests);
    print_slopes(slopes, Axis::Requests);
    print_generations(run);
    print_host(&run.host);
}

/// Reload mode's summary: no requests, no latency.
fn print_reload_summary(run: &RunResult, rss: &RssFigures, slopes: &Slopes) {
    let a = &run.args;
    let p = &run.progress;
    println!(
        "soak reload: {} reloads via {}{}, sample every {}, warm-up {} reloads",
        a.reloads,
        a.via.name(),
        if a.swap_builds {
            ", swapping builds"
        } else {
            ""
        },
        a.sample_every,
        a.warmup
    );
    println!(
        "reloads      {} ok, {} failed in {:.1} s: {:.0} reloads/s",
        p.reloads_ok,
        p.reloads_failed,
        run.load_time.as_secs_f64(),
        (p.reloads_ok + p.reloads_failed) as f64 / run.load_time.as_secs_f64().max(1e-9)
    );
    for error in &run.reloads.errors {
        println!("             reload error {error}");
    }
    let start = run.samples.first().and_then(|s| s.rss_bytes);
    println!("RSS at start {}", start.map_or("-".to_owned(), mib));
    print_rss(rss, Axis::Reloads);
    let heap = rss_figures_of(&run.samples, a.warmup, Axis::Reloads, |s| {
        s.heap_in_use_bytes
    });
    println!(
        "heap in use  warm {}, final {} (malloc's bytes allocated and not freed)",
        heap.warm.map_or("-".to_owned(), |(_, b)| mib(b)),
        heap.final_bytes.map_or("-".to_owned(), mib)
    );
    print_slopes(slopes, Axis::Reloads);
    print_generations(run);
    print_host(&run.host);
}

/// The slopes over the second half, RSS and heap in use.
fn print_slopes(slopes: &Slopes, axis: Axis) {
    let text = |slope: Option<Slope>, axis: Axis| {
        slope.map_or("- (too few samples)".to_owned(), |s| s.text(axis))
    };
    println!(
        "slope        RSS {} (second half, least squares)",
        text(slopes.rss_per_reload, Axis::Reloads)
    );
    println!(
        "             RSS anonymous {}",
        text(slopes.anon_per_reload, Axis::Reloads)
    );
    println!(
        "             heap in use {}",
        text(slopes.heap_per_reload, Axis::Reloads)
    );
    if axis == Axis::Requests {
        println!(
            "             RSS {}; heap in use {}",
            text(slopes.rss_per_request, Axis::Requests),
            text(slopes.heap_per_request, Axis::Requests)
        );
    }
}

fn print_generations(run: &RunResult) {
    println!(
        "generations  max live {} in samples; after the load {} ({})",
        opt(max_live_generations(&run.samples)),
        opt(run.drained_to),
        if run.drained_to == Some(1) {
            "drained"
        } else {
            "NOT drained"
        }
    );
}

fn print_reloads(run: &RunResult) {
    let p = &run.progress;
    let r = &run.reloads;
    println!(
        "reloads      {} ok, {} failed, {} triggers missed (previous reload still running); last generation {}",
        p.reloads_ok,
        p.reloads_failed,
        p.reloads_missed,
        opt(r.last_generation)
    );
    if let (Some(compile), Some(wall)) = (r.compile_ms_mean(), r.wall_mean()) {
        println!(
            "             host compile mean {compile:.1} ms, max {:.1} ms ({} cached); swap-to-answer mean {:.0} ms, max {:.0} ms",
            r.compile_ms_max,
            r.cached,
            wall.as_secs_f64() * 1000.0,
            r.wall_max.as_secs_f64() * 1000.0
        );
    }
    for error in &r.errors {
        println!("             reload error {error}");
    }
}

fn print_rss(rss: &RssFigures, axis: Axis) {
    let warm = rss.warm.map_or("-".to_owned(), |(at, b)| {
        format!("{} (at {at} {}s)", mib(b), axis.unit())
    });
    println!(
        "RSS          warm {warm}, final {} ({}), max after warm-up {} (warm and final: medians of {RSS_WINDOW} samples)",
        rss.final_bytes.map_or("-".to_owned(), mib),
        rss.change_pct
            .map_or("-".to_owned(), |c| format!("{c:+.1} %")),
        rss.max_after_warm.map_or("-".to_owned(), mib)
    );
}

fn print_host(host: &Stopped) {
    println!(
        "host         exited {}{}; {} stderr lines at RUST_LOG=warn",
        host.status,
        if host.killed { " (killed)" } else { "" },
        host.stderr.lines
    );
    for line in host.stderr.kept.iter().rev().take(5).rev() {
        println!("             | {line}");
    }
}

/// A header and one row to paste into docs/benchmarks.md.
pub(crate) fn markdown(run: &RunResult, rss: &RssFigures, slopes: &Slopes) -> String {
    if let Some(faults) = &run.faults {
        return faults_report::markdown(run, faults, rss);
    }
    if run.args.mode == Mode::Reload {
        return reload_markdown(run, rss, slopes);
    }
    let slope_value = |slope: Option<Slope>, digits: usize| {
        slope.map_or("-".to_owned(), |s| format!("{:+.digits$}", s.per_unit))
    };
    let p = &run.progress;
    let total = run.total.unwrap_or_default();
    let row = format!(
        "| {} | {} | {} | {} | {} | {} / {} | {:.0} | {} / {} µs | {} | {} | {} | {} | {}, {} | {} | {} | {} |",
        run.date.split(' ').next().unwrap_or(&run.date),
        run.args.mode.name(),
        p.completed,
        run.args.concurrency,
        reload_every(&run.args),
        p.reloads_ok,
        p.reloads_failed,
        rps(run),
        total.p50,
        total.p99,
        rss.warm.map_or("-".to_owned(), |(_, b)| mib(b)),
        rss.final_bytes.map_or("-".to_owned(), mib),
        rss.max_after_warm.map_or("-".to_owned(), mib),
        rss.change_pct
            .map_or("-".to_owned(), |c| format!("{c:+.1} %")),
        slope_value(slopes.rss_per_request, 3),
        slope_value(slopes.rss_per_reload, 0),
        slope_value(slopes.heap_per_request, 3),
        opt(max_live_generations(&run.samples)),
        if run.drained_to == Some(1) {
            "yes"
        } else {
            "no"
        }
    );
    format!("{MARKDOWN_HEADER}\n{row}")
}

fn reload_markdown(run: &RunResult, rss: &RssFigures, slopes: &Slopes) -> String {
    let p = &run.progress;
    let heap = rss_figures_of(&run.samples, run.args.warmup, Axis::Reloads, |s| {
        s.heap_in_use_bytes
    });
    let slope = |slope: Option<Slope>| {
        slope.map_or("-".to_owned(), |s| {
            format!("{:+.1} ± {:.1}", s.per_unit, s.stderr)
        })
    };
    let row = format!(
        "| {} | {}{} | {} / {} | {:.0} | {} | {} | {} | {} | **{}** | {} | {} → {} | {} | {} |",
        run.date.split(' ').next().unwrap_or(&run.date),
        run.args.via.name(),
        if run.args.swap_builds { ", swap" } else { "" },
        p.reloads_ok,
        p.reloads_failed,
        (p.reloads_ok + p.reloads_failed) as f64 / run.load_time.as_secs_f64().max(1e-9),
        run.samples
            .first()
            .and_then(|s| s.rss_bytes)
            .map_or("-".to_owned(), mib),
        rss.warm.map_or("-".to_owned(), |(_, b)| mib(b)),
        rss.final_bytes.map_or("-".to_owned(), mib),
        rss.max_after_warm.map_or("-".to_owned(), mib),
        slope(slopes.rss_per_reload),
        slope(slopes.anon_per_reload),
        heap.warm.map_or("-".to_owned(), |(_, b)| mib(b)),
        heap.final_bytes.map_or("-".to_owned(), mib),
        slope(slopes.heap_per_reload),
        if run.drained_to == Some(1) {
            "yes"
        } else {
            "no"
        }
    );
    format!("{RELOAD_MARKDOWN_HEADER}\n{row}")
}

fn max_live_generations(samples: &[Sample]) -> Option<u64> {
    samples.iter().filter_map(|s| s.live_generations).max()
}

pub(crate) fn rps(run: &RunResult) -> f64 {
    run.progress.completed as f64 / run.load_time.as_secs_f64().max(1e-9)
}

pub(crate) fn latency_text(total: Option<Percentiles>) -> String {
    total.map_or("no requests".to_owned(), |t| {
        format!(
            "p50 {} µs, p99 {} µs, max {} µs over {} responses",
            t.p50, t.p99, t.max, t.count
        )
    })
}

pub(crate) fn reload_every(args: &Args) -> String {
    if args.reload_every == 0 {
        "never".to_owned()
    } else {
        args.reload_every.to_string()
    }
}

pub(crate) fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / MIB)
}

pub(crate) fn opt(value: Option<u64>) -> String {
    value.map_or("-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests: u64, mib: u64) -> Sample {
        Sample::for_test(requests, mib, 1)
    }

    #[test]
    fn warm_and_final_are_medians_of_windows_after_the_warmup() {
        // Warm window: 100 101 130 99 100 -> 100; final window: 104 106 105 150 105 -> 105.
        let mibs = [10, 100, 101, 130, 99, 100, 102, 104, 106, 105, 150, 105];
        let samples: Vec<Sample> = mibs
            .iter()
            .enumerate()
            .map(|(i, m)| sample(i as u64 * 1000, *m))
            .collect();
        let rss = rss_figures(&samples, 1000, Axis::Requests);
        assert_eq!(rss.warm, Some((1000, 100 * 1024 * 1024)));
        assert_eq!(rss.max_after_warm, Some(150 * 1024 * 1024));
        assert_eq!(rss.final_bytes, Some(105 * 1024 * 1024));
        assert!((rss.change_pct.unwrap() - 5.0).abs() < 1e-9);
        assert_eq!(rss_figures(&samples, 20_000, Axis::Requests).warm, None);
    }

    fn args(extra: &[&str]) -> Args {
        use clap::Parser;
        Args::parse_from(std::iter::once("soak").chain(extra.iter().copied()))
    }

    /// Samples every 100 reloads up to 20,000, RSS growing `per_reload` bytes a reload from 20 MiB.
    fn reload_run(per_reload: u64) -> Vec<Sample> {
        (0..=200)
            .map(|i| Sample {
                reloads_ok: i * 100,
                rss_bytes: Some(20 * 1024 * 1024 + i * 100 * per_reload),
                heap_in_use_bytes: Some(8 * 1024 * 1024),
                ..Sample::default()
            })
            .collect()
    }

    #[test]
    fn reload_mode_fails_on_a_slope_over_its_limit() {
        let reload = args(&["--mode", "reload"]);
        let leaking = slopes(&reload_run(125), Axis::Reloads);
        let reasons = slope_failures(&reload, &leaking);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("+125.00 B/reload"), "{reasons:?}");
        assert!(
            reasons[0].contains("--max-bytes-per-reload 10"),
            "{reasons:?}"
        );
        let flat = slopes(&reload_run(3), Axis::Reloads);
        assert!(slope_failures(&reload, &flat).is_empty());
        assert!(flat.heap_per_reload.unwrap().per_unit.abs() < 1e-9);
        assert!(flat.rss_per_request.is_none());
        let loose = args(&["--mode", "reload", "--max-bytes-per-reload", "200"]);
        assert!(slope_failures(&loose, &leaking).is_empty());
        assert_eq!(slope_failures(&reload, &Slopes::default()).len(), 1);
    }

    #[test]
    fn traffic_modes_check_bytes_per_request() {
        // 600,000 requests, a sample every 10,000, a reload every 1,000: 4 bytes per request.
        let samples: Vec<Sample> = (0..=60)
            .map(|i| Sample {
                requests: i * 10_000,
                reloads_ok: i * 10,
                rss_bytes: Some(30 * 1024 * 1024 + i * 40_000),
                ..Sample::default()
            })
            .collect();
        let fitted = slopes(&samples, Axis::Requests);
        assert!((fitted.rss_per_request.unwrap().per_unit - 4.0).abs() < 1e-9);
        assert!((fitted.rss_per_reload.unwrap().per_unit - 4000.0).abs() < 1e-6);
        let json = args(&[]);
        assert_eq!(json.max_bytes_per_request, 3.0);
        let reasons = slope_failures(&json, &fitted);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("B/request"), "{reasons:?}");
        let both = args(&[
            "--max-bytes-per-reload",
            "100",
            "--max-bytes-per-request",
            "5",
        ]);
        let reasons = slope_failures(&both, &fitted);
        assert_eq!(reasons.len(), 1, "{reasons:?}");
        assert!(reasons[0].contains("B/reload"), "{reasons:?}");
    }

    #[test]
    fn a_steady_climb_still_shows() {
        let samples: Vec<Sample> = (0..20).map(|i| sample(i * 1000, 100 + i)).collect();
        let rss = rss_figures(&samples, 0, Axis::Requests);
        assert!(rss.change_pct.unwrap() > 14.0, "{rss:?}");
    }
}
