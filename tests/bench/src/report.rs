//! What a side-by-side run prints and draws: one markdown table of every measurement, one of the
//! ratios against the goals of issue 7, and an SVG bar chart (requests/s and p99 latency by
//! concurrency), drawn with the chart primitives the soak chart uses too (plugin_host_kit::svg).

use std::fmt::Write;
use std::time::Duration;

use plugin_host_kit::svg::{Grid, Scale, Svg, Swatch, XAxis, YAxis, nice_step, short_count, ticks};

use crate::wrk::Figures;

/// The servers, in the order of issue 7; the ratios refer to them by position.
pub const SERVERS: [&str; 4] = [
    "native axum",
    "Plugin Host, JSON",
    "Plugin Host, HTML view",
    "wasmtime serve",
];
const NATIVE: usize = 0;
const JSON: usize = 1;
const HTML: usize = 2;
const WASMTIME: usize = 3;
/// One colour per server, in [`SERVERS`] order.
const COLORS: [&str; 4] = ["#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c"];
const MIB: f64 = 1024.0 * 1024.0;

/// One server at one concurrency.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Index into [`SERVERS`].
    pub server: usize,
    pub connections: u32,
    /// What was measured, or why nothing was.
    pub outcome: Result<Sample, String>,
}

/// What one measured run gave.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub figures: Figures,
    /// The server's peak RSS (`VmHWM`) at the end of the run, in bytes.
    pub peak_rss: u64,
    /// Server CPU time (user + system) during the measured run divided by the requests it answered.
    /// Unlike req/s it hardly moves when other processes share the machine, so it is the figure to
    /// compare when the machine was busy.
    pub cpu_per_request: Duration,
}

impl Measurement {
    fn figures(&self) -> Option<&Figures> {
        self.outcome.as_ref().ok().map(|s| &s.figures)
    }
}

/// The measurements table, then the ratios table, as markdown.
pub fn markdown(measurements: &[Measurement], connections: &[u32]) -> String {
    let mut out = String::new();
    out.push_str(
        "| connections | server | req/s | p50 ms | p99 ms | server CPU µs/req | peak RSS MiB | errors |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    for &c in connections {
        for m in measurements.iter().filter(|m| m.connections == c) {
            let name = SERVERS[m.server];
            let _ = match &m.outcome {
                Ok(s) => writeln!(
                    out,
                    "| {c} | {name} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} | {} |",
                    s.figures.rps,
                    ms(s.figures.p50),
                    ms(s.figures.p99),
                    s.cpu_per_request.as_secs_f64() * 1e6,
                    s.peak_rss as f64 / MIB,
                    s.figures.errors
                ),
                Err(why) => writeln!(out, "| {c} | {name} | — | — | — | — | — | {why} |"),
            };
        }
    }
    out.push('\n');
    out.push_str("| connections | Plugin Host / native (goal ≥ 0.60) | HTML / JSON (goal ≥ 0.50) | Plugin Host / wasmtime serve (goal ≥ 1.5) |\n");
    out.push_str("|---|---|---|---|\n");
    for &c in connections {
        let rps = |server| rps_of(measurements, server, c);
        let _ = writeln!(
            out,
            "| {c} | {} | {} | {} |",
            ratio(rps(JSON), rps(NATIVE), 0.60),
            ratio(rps(HTML), rps(JSON), 0.50),
            ratio(rps(JSON), rps(WASMTIME), 1.5)
        );
    }
    out
}

fn rps_of(measurements: &[Measurement], server: usize, connections: u32) -> Option<f64> {
    measurements
        .iter()
        .find(|m| m.server == server && m.connections == connections)
        .and_then(Measurement::figures)
        .map(|f| f.rps)
}

/// `a / b` against `goal`, e.g. "0.72 (met)".
fn ratio(a: Option<f64>, b: Option<f64>, goal: f64) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => {
            let r = a / b;
            let verdict = if r >= goal { "met" } else { "missed" };
            format!("{r:.2} ({verdict})")
        }
        _ => "—".to_owned(),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const TOP: f64 = 100.0;
const BOTTOM: f64 = 460.0;
/// Left and right edges of the two panels.
const PANELS: [(f64, f64); 2] = [(80.0, 450.0), (570.0, 940.0)];
/// A white outline under label text, so a label stays readable over a bar.
const HALO: &str = r#"stroke="white" stroke-width="3" paint-order="stroke""#;

/// The chart: requests/s (left) and p99 latency (right), grouped by concurrency, one bar per server.
pub fn svg(title: &str, measurements: &[Measurement], connections: &[u32]) -> String {
    let mut svg = Svg::file(WIDTH, HEIGHT, title, 28.0);
    legend(&mut svg);
    let value =
        |m: &Measurement, rps: bool| m.figures().map(|f| if rps { f.rps } else { ms(f.p99) });
    panel(
        &mut svg,
        PANELS[0],
        "requests/s (higher is better)",
        measurements,
        connections,
        |m| value(m, true),
        |v| short_count(v, 1),
    );
    panel(
        &mut svg,
        PANELS[1],
        "p99 latency, ms (lower is better)",
        measurements,
        connections,
        |m| value(m, false),
        trim_number,
    );
    svg.finish()
}

fn legend(svg: &mut Svg) {
    let mut x = 80.0;
    for (name, color) in SERVERS.iter().zip(COLORS) {
        let swatch = format!(r#"fill="{color}""#);
        x = svg.legend_entry((x, 57.0), Swatch::Block(&swatch), "", name);
    }
}

fn panel(
    svg: &mut Svg,
    (left, right): (f64, f64),
    label: &str,
    measurements: &[Measurement],
    connections: &[u32],
    value: impl Fn(&Measurement) -> Option<f64>,
    format: fn(f64) -> String,
) {
    let max = measurements
        .iter()
        .filter_map(&value)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let step = nice_step(0.0, max, 5.0);
    let top_value = (max / step).ceil() * step;
    let y = Scale::new((0.0, top_value), (BOTTOM, TOP));
    svg.y_axis(
        y,
        &ticks(0.0, top_value, step),
        format,
        &YAxis {
            label_x: left - 6.0,
            label_attrs: r#"text-anchor="end""#,
            grid: Some(Grid {
                from_x: left,
                to_x: right,
                attrs: r##"stroke="#e5e5e5""##,
            }),
        },
    );
    svg.rect(
        (left, TOP),
        (right - left, BOTTOM - TOP),
        r##"fill="none" stroke="#333""##,
    );
    svg.text(
        ((left + right) / 2.0, TOP - 12.0),
        r#"text-anchor="middle" font-weight="bold""#,
        label,
    );
    let group_width = (right - left) / connections.len().max(1) as f64;
    let bar_width = group_width * 0.8 / SERVERS.len() as f64;
    for (g, &c) in connections.iter().enumerate() {
        let group_left = left + g as f64 * group_width + group_width * 0.1;
        for (s, color) in COLORS.iter().enumerate() {
            let x = group_left + s as f64 * bar_width;
            let found = measurements
                .iter()
                .find(|m| m.server == s && m.connections == c);
            let Some(v) = found.and_then(&value) else {
                svg.text(
                    (x + bar_width / 2.0, BOTTOM - 6.0),
                    r##"text-anchor="middle" fill="#999""##,
                    "n/a",
                );
                continue;
            };
            svg.rect(
                (x, y.at(v)),
                (bar_width - 2.0, BOTTOM - y.at(v)),
                &format!(r#"fill="{color}""#),
            );
            svg.text(
                (x + bar_width / 2.0 - 1.0, y.at(v) - 4.0),
                &format!(r#"text-anchor="middle" font-size="10" {HALO}"#),
                &format(v),
            );
        }
    }
    let groups: Vec<(f64, String)> = connections
        .iter()
        .enumerate()
        .map(|(g, c)| (left + (g as f64 + 0.5) * group_width, format!("c{c}")))
        .collect();
    svg.x_axis(
        &groups,
        &XAxis {
            label_y: BOTTOM + 20.0,
            label_attrs: "",
            marks: None,
        },
    );
    svg.text(
        ((left + right) / 2.0, BOTTOM + 42.0),
        r#"text-anchor="middle""#,
        "wrk connections",
    );
}

/// A number with at most one decimal and no trailing zeros: 5 → "5", 2.5 → "2.5".
fn trim_number(value: f64) -> String {
    plugin_host_kit::svg::trim_number(value, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(server: usize, connections: u32, rps: f64) -> Measurement {
        let figures = Figures {
            rps,
            requests: rps as u64 * 10,
            p50: Duration::from_micros(500),
            p99: Duration::from_millis(2),
            errors: 0,
        };
        Measurement {
            server,
            connections,
            outcome: Ok(Sample {
                figures,
                peak_rss: 20 * 1024 * 1024,
                cpu_per_request: Duration::from_micros(25),
            }),
        }
    }

    fn run() -> Vec<Measurement> {
        vec![
            measured(NATIVE, 16, 40_000.0),
            measured(JSON, 16, 20_000.0),
            measured(HTML, 16, 12_000.0),
            Measurement {
                server: WASMTIME,
                connections: 16,
                outcome: Err("wasmtime not installed".to_owned()),
            },
        ]
    }

    #[test]
    fn table_has_every_measurement_and_the_ratios() {
        let md = markdown(&run(), &[16]);
        assert!(md.contains("| 16 | native axum | 40000 | 0.50 | 2.00 | 25.0 | 20.0 | 0 |"));
        assert!(
            md.contains("| 16 | wasmtime serve | — | — | — | — | — | wasmtime not installed |")
        );
        assert!(md.contains("| 16 | 0.50 (missed) | 0.60 (met) | — |"));
    }

    #[test]
    fn chart_has_a_bar_per_measurement_and_marks_missing_ones() {
        let svg = svg("side <by> side", &run(), &[16]);
        // 3 bars in each of the two panels, plus the legend's 4 swatches and 2 frames.
        assert_eq!(svg.matches("<rect").count(), 1 + 4 + 2 + 3 * 2);
        assert_eq!(svg.matches(">n/a<").count(), 2);
        assert!(svg.contains("side &lt;by&gt; side") && svg.ends_with("</svg>\n"));
    }
}
