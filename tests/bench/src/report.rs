//! What a side-by-side run prints: one markdown table of every measurement (with how busy the server's
//! core was and the memory syscalls per request), one of the ratios against the goals of issue 16 —
//! each a result only when the server core was saturated in both of its cells — and the seed-shape
//! cell. The chart of the same measurements is drawn by [`crate::chart`].

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

use crate::perf::{MemSyscalls, NAMES};
use crate::rows::Row;
use crate::wrk::Figures;

/// A cell is saturated when its server used at least this share of its core during the measured run:
/// below it, something else (wrk, other processes) set the pace, so its req/s is not the server's limit.
pub const SATURATED: f64 = 0.90;
/// The seed-shape cell's goal (issue 16), in requests/s.
pub const SEED_GOAL: f64 = 30_000.0;
const MIB: f64 = 1024.0 * 1024.0;

/// One row at one concurrency.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub row: Row,
    pub connections: u32,
    /// What was measured, or why nothing was.
    pub outcome: Result<Sample, String>,
}

/// What one measured run gave.
#[derive(Debug, Clone)]
pub struct Sample {
    pub figures: Figures,
    /// The server's peak RSS (`VmHWM`) at the end of the run, in bytes.
    pub peak_rss: u64,
    /// Server CPU time (user + system) during the measured run divided by the requests it answered.
    /// Unlike req/s it hardly moves when other processes share the machine, so it is the figure to
    /// compare when the machine was busy.
    pub cpu_per_request: Duration,
    /// Server CPU time during the measured run divided by the run's wall time: 1.0 is one core busy
    /// throughout (an unpinned server may exceed it).
    pub busy: f64,
    /// The server's memory syscalls during the measured run, or why they were not counted.
    pub syscalls: Result<MemSyscalls, String>,
}

impl Sample {
    /// Whether the server's core was the limit of this run (see [`SATURATED`]).
    pub fn saturated(&self) -> bool {
        self.busy >= SATURATED
    }
}

impl Measurement {
    pub fn sample(&self) -> Option<&Sample> {
        self.outcome.as_ref().ok()
    }
}

/// The sample of `row` at `connections`, if it was measured.
pub fn find(measurements: &[Measurement], row: Row, connections: u32) -> Option<&Sample> {
    measurements
        .iter()
        .find(|m| m.row == row && m.connections == connections)
        .and_then(Measurement::sample)
}

/// The measurements table and its notes, then the ratios table, as markdown.
pub fn markdown(measurements: &[Measurement], connections: &[u32]) -> String {
    let mut out = measurements_table(measurements, connections);
    out.push_str(&notes(measurements));
    out.push('\n');
    out.push_str(&ratios_table(measurements, connections));
    out
}

fn measurements_table(measurements: &[Measurement], connections: &[u32]) -> String {
    let per_request: Vec<String> = NAMES.iter().map(|n| format!("{n}/req")).collect();
    let mut out = format!(
        "| connections | server | req/s | p50 ms | p99 ms | server CPU µs/req | server core busy % | peak RSS MiB | {} | errors |\n",
        per_request.join(" | ")
    );
    out.push_str(&format!("|{}\n", "---|".repeat(9 + NAMES.len())));
    for &c in connections {
        for m in measurements.iter().filter(|m| m.connections == c) {
            let name = m.row.name();
            let _ = match &m.outcome {
                Ok(s) => writeln!(
                    out,
                    "| {c} | {name} | {:.0} | {:.2} | {:.2} | {:.1} | {} | {:.1} | {} | {} |",
                    s.figures.rps,
                    ms(s.figures.p50),
                    ms(s.figures.p99),
                    micros(s.cpu_per_request),
                    busy_cell(s),
                    s.peak_rss as f64 / MIB,
                    syscall_cells(s),
                    s.figures.errors
                ),
                Err(why) => writeln!(
                    out,
                    "| {c} | {name} |{} {why} |",
                    " — |".repeat(6 + NAMES.len())
                ),
            };
        }
    }
    out
}

/// "99", or "72 (not saturated)" below [`SATURATED`].
fn busy_cell(s: &Sample) -> String {
    let percent = s.busy * 100.0;
    if s.saturated() {
        format!("{percent:.0}")
    } else {
        format!("{percent:.0} (not saturated)")
    }
}

/// The per-request syscall counts as table cells, or a dash in each when they were not counted.
fn syscall_cells(s: &Sample) -> String {
    match &s.syscalls {
        Ok(counts) => counts
            .per_request(s.figures.requests)
            .map(|v| format!("{v:.2}"))
            .join(" | "),
        Err(_) => ["—"; NAMES.len()].join(" | "),
    }
}

/// What the marks in the measurements table mean, and, once each, why syscalls were not counted.
fn notes(measurements: &[Measurement]) -> String {
    let samples: Vec<&Sample> = measurements
        .iter()
        .filter_map(Measurement::sample)
        .collect();
    let mut out = String::new();
    if samples.iter().any(|s| !s.saturated()) {
        let _ = writeln!(
            out,
            "\n(not saturated): the server used less than {:.0} % of its core during the measured run, so something else set the pace; its req/s is not the server's limit.",
            SATURATED * 100.0
        );
    }
    let why_not: BTreeSet<&str> = samples
        .iter()
        .filter_map(|s| s.syscalls.as_ref().err())
        .map(String::as_str)
        .collect();
    for why in why_not {
        let _ = writeln!(out, "\nMemory syscalls not counted (—): {why}");
    }
    out
}

/// The figure a ratio compares.
#[derive(Debug, Clone, Copy)]
enum Metric {
    RequestsPerSecond,
    CpuPerRequest,
}

/// Which side of its goal a ratio must be on.
#[derive(Debug, Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

/// One ratio of issue 16: `over`'s figure divided by `under`'s.
#[derive(Debug, Clone, Copy)]
struct Goal {
    label: &'static str,
    over: Row,
    under: Row,
    metric: Metric,
    bound: Bound,
}

const GOALS: [Goal; 4] = [
    Goal {
        label: "JSON / native req/s",
        over: Row::Json,
        under: Row::Native,
        metric: Metric::RequestsPerSecond,
        bound: Bound::AtLeast(0.60),
    },
    Goal {
        label: "JSON / native CPU per request",
        over: Row::Json,
        under: Row::Native,
        metric: Metric::CpuPerRequest,
        bound: Bound::AtMost(1.7),
    },
    Goal {
        label: "JSON / wasmtime serve reuse 128 req/s",
        over: Row::Json,
        under: Row::WasmtimeReuse,
        metric: Metric::RequestsPerSecond,
        bound: Bound::AtLeast(1.5),
    },
    Goal {
        label: "HTML / JSON req/s",
        over: Row::Html,
        under: Row::Json,
        metric: Metric::RequestsPerSecond,
        bound: Bound::AtLeast(0.8),
    },
];

impl Metric {
    fn of(self, s: &Sample) -> f64 {
        match self {
            Metric::RequestsPerSecond => s.figures.rps,
            Metric::CpuPerRequest => s.cpu_per_request.as_secs_f64(),
        }
    }
}

impl Bound {
    fn met(self, ratio: f64) -> bool {
        match self {
            Bound::AtLeast(goal) => ratio >= goal,
            Bound::AtMost(goal) => ratio <= goal,
        }
    }

    /// "≥ 0.60", "≤ 1.7".
    fn describe(self) -> String {
        match self {
            Bound::AtLeast(goal) => format!("≥ {goal:.2}"),
            Bound::AtMost(goal) => format!("≤ {goal:.1}"),
        }
    }
}

fn ratios_table(measurements: &[Measurement], connections: &[u32]) -> String {
    let headers: Vec<String> = GOALS
        .iter()
        .map(|g| format!("{} (goal {})", g.label, g.bound.describe()))
        .collect();
    let mut out = format!("| connections | {} |\n", headers.join(" | "));
    out.push_str(&format!("|---|{}\n", "---|".repeat(GOALS.len())));
    for &c in connections {
        let cells: Vec<String> = GOALS
            .iter()
            .map(|g| {
                let sample = |row| find(measurements, row, c);
                judge(g, sample(g.over), sample(g.under))
            })
            .collect();
        let _ = writeln!(out, "| {c} | {} |", cells.join(" | "));
    }
    let _ = writeln!(
        out,
        "\nA ratio is a result only when the server core was saturated (≥ {:.0} % busy) in both of its cells.",
        SATURATED * 100.0
    );
    out
}

/// One ratio cell: "0.72: met (both saturated)", "0.40: not a result (native axum 45 % busy)", or a
/// dash when either side was not measured.
fn judge(goal: &Goal, over: Option<&Sample>, under: Option<&Sample>) -> String {
    let (Some(over), Some(under)) = (over, under) else {
        return "—".to_owned();
    };
    let denominator = goal.metric.of(under);
    if denominator <= 0.0 {
        return "—".to_owned();
    }
    let ratio = goal.metric.of(over) / denominator;
    let idle: Vec<String> = [(goal.over, over), (goal.under, under)]
        .iter()
        .filter(|(_, s)| !s.saturated())
        .map(|(row, s)| format!("{} {:.0} % busy", row.name(), s.busy * 100.0))
        .collect();
    if !idle.is_empty() {
        return format!("{ratio:.2}: not a result ({})", idle.join(", "));
    }
    let verdict = if goal.bound.met(ratio) {
        "met"
    } else {
        "missed"
    };
    format!("{ratio:.2}: {verdict} (both saturated)")
}

/// The seed-shape cell's table: `label` says what was measured and how.
pub fn seed_markdown(label: &str, outcome: &Result<Sample, String>) -> String {
    let mut out = format!(
        "| seed shape | req/s | server CPU µs/req | p99 ms | server CPU, cores | errors | goal ≥ {} req/s |\n",
        thousands(SEED_GOAL)
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    let _ = match outcome {
        Ok(s) => writeln!(
            out,
            "| {label} | {:.0} | {:.1} | {:.2} | {:.2} | {} | {} |",
            s.figures.rps,
            micros(s.cpu_per_request),
            ms(s.figures.p99),
            s.busy,
            s.figures.errors,
            if s.figures.rps >= SEED_GOAL {
                "met"
            } else {
                "missed"
            }
        ),
        Err(why) => writeln!(out, "| {label} | — | — | — | — | {why} | — |"),
    };
    out
}

/// 30000 → "30,000".
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sample with `rps` req/s, 25 µs of CPU per request, the core `busy` (1.0 = all of it) and two
    /// mprotects per request.
    pub(crate) fn sample(rps: f64, busy: f64) -> Sample {
        let requests = rps as u64 * 10;
        Sample {
            figures: Figures {
                rps,
                requests,
                p50: Duration::from_micros(500),
                p99: Duration::from_millis(2),
                errors: 0,
            },
            peak_rss: 20 * 1024 * 1024,
            cpu_per_request: Duration::from_micros(25),
            busy,
            syscalls: Ok(MemSyscalls {
                mprotect: 2 * requests,
                ..MemSyscalls::default()
            }),
        }
    }

    pub(crate) fn measured(row: Row, connections: u32, rps: f64, busy: f64) -> Measurement {
        Measurement {
            row,
            connections,
            outcome: Ok(sample(rps, busy)),
        }
    }

    /// native (not saturated), JSON, HTML (both saturated), wasmtime reuse not run.
    pub(crate) fn run() -> Vec<Measurement> {
        vec![
            measured(Row::Native, 16, 40_000.0, 0.45),
            measured(Row::Json, 16, 20_000.0, 0.99),
            measured(Row::Html, 16, 12_000.0, 0.97),
            Measurement {
                row: Row::WasmtimeReuse,
                connections: 16,
                outcome: Err("not run: wasmtime not installed".to_owned()),
            },
        ]
    }

    #[test]
    fn table_has_every_measurement_marks_idle_cores_and_syscalls() {
        let md = markdown(&run(), &[16]);
        assert!(md.contains(
            "| 16 | native axum | 40000 | 0.50 | 2.00 | 25.0 | 45 (not saturated) | 20.0 | 2.00 | 0.00 | 0.00 | 0.00 | 0 |"
        ));
        assert!(md.contains(
            "| 16 | Plugin Host, JSON | 20000 | 0.50 | 2.00 | 25.0 | 99 | 20.0 | 2.00 | 0.00 | 0.00 | 0.00 | 0 |"
        ));
        assert!(md.contains(
            "| 16 | wasmtime serve, reuse 128 | — | — | — | — | — | — | — | — | — | — | not run: wasmtime not installed |"
        ));
        assert!(md.contains("(not saturated): the server used less than 90 %"));
        // Every row of the measurements table has as many cells as its header.
        let table: Vec<&str> = md.lines().take_while(|l| l.starts_with('|')).collect();
        let cells = |l: &str| l.matches('|').count();
        assert!(table.iter().all(|l| cells(l) == cells(table[0])), "{md}");
    }

    #[test]
    fn perf_failures_are_dashes_explained_once() {
        let mut measurements = run();
        for m in &mut measurements {
            if let Ok(s) = &mut m.outcome {
                s.syscalls = Err("cannot run perf".to_owned());
            }
        }
        let md = markdown(&measurements, &[16]);
        assert!(md.contains("| 25.0 | 99 | 20.0 | — | — | — | — | 0 |"));
        assert_eq!(md.matches("not counted (—): cannot run perf").count(), 1);
    }

    #[test]
    fn a_ratio_is_a_result_only_when_both_cores_were_saturated() {
        let md = markdown(&run(), &[16]);
        assert!(md.contains(
            "| connections | JSON / native req/s (goal ≥ 0.60) | JSON / native CPU per request (goal ≤ 1.7) | JSON / wasmtime serve reuse 128 req/s (goal ≥ 1.50) | HTML / JSON req/s (goal ≥ 0.80) |"
        ));
        assert!(md.contains(
            "| 16 | 0.50: not a result (native axum 45 % busy) | 1.00: not a result (native axum 45 % busy) | — | 0.60: missed (both saturated) |"
        ));
    }

    #[test]
    fn goals_are_judged_on_their_side() {
        let (fast, slow) = (sample(30_000.0, 0.95), sample(10_000.0, 0.90));
        let [per_second, cpu, ..] = GOALS;
        assert_eq!(
            judge(&per_second, Some(&fast), Some(&slow)),
            "3.00: met (both saturated)"
        );
        assert_eq!(
            judge(&per_second, Some(&slow), Some(&fast)),
            "0.33: missed (both saturated)"
        );
        let mut costly = sample(10_000.0, 1.0);
        costly.cpu_per_request = Duration::from_micros(50);
        assert_eq!(
            judge(&cpu, Some(&costly), Some(&fast)),
            "2.00: missed (both saturated)"
        );
        assert_eq!(
            judge(&cpu, Some(&fast), Some(&costly)),
            "0.50: met (both saturated)"
        );
        assert_eq!(
            judge(&cpu, Some(&sample(1.0, 0.2)), Some(&sample(1.0, 0.89))),
            "1.00: not a result (Plugin Host, JSON 20 % busy, native axum 89 % busy)"
        );
        assert_eq!(judge(&cpu, None, Some(&fast)), "—");
    }

    #[test]
    fn seed_cell_against_its_goal() {
        let md = seed_markdown("Plugin Host, GET /status", &Ok(sample(31_000.0, 1.8)));
        assert!(md.starts_with("| seed shape | req/s |") && md.contains("goal ≥ 30,000 req/s"));
        assert!(md.contains("| Plugin Host, GET /status | 31000 | 25.0 | 2.00 | 1.80 | 0 | met |"));
        let failed = seed_markdown("x", &Err("failed: boom".to_owned()));
        assert!(failed.contains("| x | — | — | — | — | failed: boom | — |"));
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
