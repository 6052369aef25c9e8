//! The chart, drawn by hand as SVG: RSS in MiB (left axis) and live generations (right axis) against
//! completed requests, with the warm RSS and the tolerance limit as dashed lines and the end of the
//! warm-up as a dotted one.

use std::fmt::Write;

use crate::sampler::Sample;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 880.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 470.0;
const RSS_COLOR: &str = "#1f77b4";
const GEN_COLOR: &str = "#ff7f0e";
const MIB: f64 = 1024.0 * 1024.0;
/// A white outline under label text, so a label stays readable where a series crosses it.
const HALO: &str = r#"stroke="white" stroke-width="4" paint-order="stroke""#;

/// What the chart shows besides the samples.
pub(crate) struct ChartInput<'a> {
    pub(crate) title: &'a str,
    pub(crate) samples: &'a [Sample],
    pub(crate) warm_rss_bytes: Option<u64>,
    pub(crate) tolerance_pct: f64,
    pub(crate) warmup: u64,
}

/// A linear map from a value range to a pixel range.
#[derive(Debug, Clone, Copy)]
struct Scale {
    from: (f64, f64),
    to: (f64, f64),
}

impl Scale {
    fn at(self, value: f64) -> f64 {
        let (a, b) = self.from;
        let span = if b > a { b - a } else { 1.0 };
        self.to.0 + (value - a) / span * (self.to.1 - self.to.0)
    }
}

/// The whole SVG document.
pub(crate) fn render(input: &ChartInput<'_>) -> String {
    let x_max = input
        .samples
        .iter()
        .map(|s| s.requests)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (x_step, _) = nice_step(0.0, x_max);
    let x = Scale {
        from: (0.0, x_max),
        to: (LEFT, RIGHT),
    };
    let (rss_lo, rss_hi, rss_step) = rss_range(input);
    let rss = Scale {
        from: (rss_lo, rss_hi),
        to: (BOTTOM, TOP),
    };
    let gen_max = input
        .samples
        .iter()
        .filter_map(|s| s.live_generations)
        .max()
        .unwrap_or(1);
    let gen_hi = (gen_max + 1).max(2) as f64;
    let gens = Scale {
        from: (0.0, gen_hi),
        to: (BOTTOM, TOP),
    };

    let mut svg = String::new();
    open_document(&mut svg, input.title);
    x_axis(&mut svg, x, x_max, x_step);
    rss_axis(&mut svg, rss, rss_lo, rss_hi, rss_step);
    generations_axis(&mut svg, gens, gen_hi);
    reference_lines(&mut svg, input, x, rss);
    series(
        &mut svg,
        input.samples,
        x,
        |s| s.rss_bytes.map(|b| b as f64 / MIB),
        rss,
        RSS_COLOR,
        false,
    );
    series(
        &mut svg,
        input.samples,
        x,
        |s| s.live_generations.map(|g| g as f64),
        gens,
        GEN_COLOR,
        true,
    );
    legend(&mut svg);
    svg.push_str("</svg>\n");
    svg
}

fn open_document(svg: &mut String, title: &str) {
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="30" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="#333"/>"##,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
}

fn x_axis(svg: &mut String, x: Scale, x_max: f64, step: f64) {
    for tick in ticks(0.0, x_max, step) {
        let px = x.at(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{BOTTOM}" x2="{px:.1}" y2="{}" stroke="#333"/>"##,
            BOTTOM + 5.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#,
            BOTTOM + 20.0,
            short_count(tick)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">requests completed</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 45.0
    );
}

fn rss_axis(svg: &mut String, rss: Scale, lo: f64, hi: f64, step: f64) {
    for tick in ticks(lo, hi, step) {
        let py = rss.at(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="#e5e5e5"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end" fill="{RSS_COLOR}">{}</text>"#,
            LEFT - 8.0,
            py + 4.0,
            trim_number(tick)
        );
    }
    vertical_label(svg, 25.0, "RSS (MiB)", RSS_COLOR);
}

fn generations_axis(svg: &mut String, gens: Scale, hi: f64) {
    let (step, _) = nice_step(0.0, hi);
    for tick in ticks(0.0, hi, step.max(1.0)) {
        let py = gens.at(tick);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" fill="{GEN_COLOR}">{tick}</text>"#,
            RIGHT + 8.0,
            py + 4.0
        );
    }
    vertical_label(svg, WIDTH - 25.0, "live generations", GEN_COLOR);
}

fn vertical_label(svg: &mut String, x: f64, text: &str, color: &str) {
    let y = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="{x}" y="{y}" text-anchor="middle" fill="{color}" transform="rotate(-90 {x} {y})">{text}</text>"#
    );
}

/// Dashed lines at the warm RSS and at warm + tolerance; a dotted line where the warm-up ends.
fn reference_lines(svg: &mut String, input: &ChartInput<'_>, x: Scale, rss: Scale) {
    if let Some(warm) = input.warm_rss_bytes {
        let warm_mib = warm as f64 / MIB;
        let limit_mib = warm_mib * (1.0 + input.tolerance_pct / 100.0);
        let warm_label = format!("warm {warm_mib:.1} MiB");
        let limit_label = format!("warm + {} %", trim_number(input.tolerance_pct));
        horizontal_dashed(svg, rss.at(warm_mib), "#666", &warm_label);
        horizontal_dashed(svg, rss.at(limit_mib), "#d62728", &limit_label);
    }
    let px = x.at(input.warmup as f64);
    if px > LEFT && px < RIGHT {
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{BOTTOM}" stroke="#999" stroke-dasharray="2,4"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{}" fill="#666" {HALO}>warm-up</text>"##,
            px + 4.0,
            BOTTOM - 6.0
        );
    }
}

fn horizontal_dashed(svg: &mut String, py: f64, color: &str, label: &str) {
    let _ = writeln!(
        svg,
        r#"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="{color}" stroke-dasharray="6,4"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{:.1}" text-anchor="end" fill="{color}" {HALO}>{label}</text>"#,
        RIGHT - 6.0,
        py - 4.0
    );
}

/// One polyline through the samples that have a value (`steps`: hold each value until the next).
fn series(
    svg: &mut String,
    samples: &[Sample],
    x: Scale,
    value: impl Fn(&Sample) -> Option<f64>,
    y: Scale,
    color: &str,
    steps: bool,
) {
    let mut points = String::new();
    let mut previous_y: Option<f64> = None;
    for sample in samples {
        let Some(v) = value(sample) else { continue };
        let (px, py) = (x.at(sample.requests as f64), y.at(v));
        if let (true, Some(prev)) = (steps, previous_y) {
            let _ = write!(points, "{px:.1},{prev:.1} ");
        }
        let _ = write!(points, "{px:.1},{py:.1} ");
        previous_y = Some(py);
    }
    let _ = writeln!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
        points.trim_end()
    );
}

fn legend(svg: &mut String) {
    let entries = [
        (RSS_COLOR, "RSS (MiB, left)"),
        (GEN_COLOR, "live generations (right)"),
    ];
    for (row, (color, text)) in entries.iter().enumerate() {
        let y = TOP + 18.0 + row as f64 * 18.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="3"/>"#,
            LEFT + 12.0,
            LEFT + 36.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}">{text}</text>"#,
            LEFT + 42.0,
            y + 4.0
        );
    }
}

/// Bounds and step of the RSS axis: every sample, the warm line and the limit line fit.
fn rss_range(input: &ChartInput<'_>) -> (f64, f64, f64) {
    let mut values: Vec<f64> = input
        .samples
        .iter()
        .filter_map(|s| s.rss_bytes)
        .map(|b| b as f64 / MIB)
        .collect();
    if let Some(warm) = input.warm_rss_bytes {
        let warm = warm as f64 / MIB;
        values.extend([warm, warm * (1.0 + input.tolerance_pct / 100.0)]);
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0, 0.2);
    }
    let pad = ((hi - lo) * 0.1).max(hi * 0.02).max(0.5);
    let (step, _) = nice_step((lo - pad).max(0.0), hi + pad);
    let lo = ((lo - pad).max(0.0) / step).floor() * step;
    let hi = ((hi + pad) / step).ceil() * step;
    (lo, hi, step)
}

/// A step of 1, 2 or 5 × 10^k giving about six ticks over [lo, hi]; also the tick count.
fn nice_step(lo: f64, hi: f64) -> (f64, usize) {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let rough = span / 6.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    (step, (span / step).floor() as usize + 1)
}

/// Multiples of `step` in [lo, hi].
fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// 250000 → "250k", 1000000 → "1M".
fn short_count(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", trim_number(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", trim_number(value / 1e3))
    } else {
        trim_number(value)
    }
}

/// A number without trailing zeros: 5 → "5", 2.5 → "2.5", 0.125 → "0.13".
fn trim_number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests: u64, mib: u64, gens: u64) -> Sample {
        Sample::for_test(requests, mib, gens)
    }

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(nice_step(0.0, 200_000.0).0, 50_000.0);
        assert_eq!(ticks(0.0, 200_000.0, 50_000.0).len(), 5);
        assert_eq!(short_count(250_000.0), "250k");
        assert_eq!(short_count(1_000_000.0), "1M");
        assert_eq!(trim_number(2.50), "2.5");
    }

    #[test]
    fn chart_has_both_series_and_the_reference_lines() {
        let samples = [sample(0, 40, 1), sample(5000, 50, 2), sample(10_000, 51, 1)];
        let svg = render(&ChartInput {
            title: "soak <json>",
            samples: &samples,
            warm_rss_bytes: Some(50 * 1024 * 1024),
            tolerance_pct: 5.0,
            warmup: 5000,
        });
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("warm 50.0 MiB") && svg.contains("warm + 5 %"));
        assert!(svg.contains("soak &lt;json&gt;"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
