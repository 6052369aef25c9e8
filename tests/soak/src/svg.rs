//! The chart, drawn by hand as SVG: RSS and malloc's heap in use in MiB (left axis) and live
//! generations (right axis) against completed requests (or reloads, in reload mode), with the warm RSS
//! and the tolerance limit as dashed lines, the end of the warm-up as a dotted one, and the RSS slope
//! fitted over the second half of the run as a line with its value.

use plugin_host_kit::svg::{
    Grid, Marks, Scale, Svg, Swatch, XAxis, YAxis, nice_step, short_count, steps, ticks,
    trim_number,
};

use crate::args::Axis;
use crate::sampler::Sample;
use crate::slope::Slope;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 880.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 470.0;
const RSS_COLOR: &str = "#1f77b4";
const GEN_COLOR: &str = "#ff7f0e";
const HEAP_COLOR: &str = "#2ca02c";
const SLOPE_COLOR: &str = "#9467bd";
const MIB: f64 = 1024.0 * 1024.0;
/// A white outline under label text, so a label stays readable where a series crosses it.
const HALO: &str = r#"stroke="white" stroke-width="4" paint-order="stroke""#;
/// About this many tick steps on each axis.
const STEPS: f64 = 6.0;

/// What the chart shows besides the samples.
pub(crate) struct ChartInput<'a> {
    pub(crate) title: &'a str,
    pub(crate) samples: &'a [Sample],
    pub(crate) warm_rss_bytes: Option<u64>,
    pub(crate) tolerance_pct: f64,
    pub(crate) warmup: u64,
    /// What x counts (requests, or reloads in reload mode).
    pub(crate) axis: Axis,
    /// The RSS line fitted over the second half, in bytes per unit of x.
    pub(crate) slope: Option<Slope>,
}

/// The whole SVG document.
pub(crate) fn render(input: &ChartInput<'_>) -> String {
    let x_max = input
        .samples
        .iter()
        .map(|s| s.x(input.axis))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let x = Scale::new((0.0, x_max), (LEFT, RIGHT));
    let (rss_lo, rss_hi, rss_step) = rss_range(input);
    let rss = Scale::new((rss_lo, rss_hi), (BOTTOM, TOP));
    let gen_max = input
        .samples
        .iter()
        .filter_map(|s| s.live_generations)
        .max()
        .unwrap_or(1);
    let gen_hi = (gen_max + 1).max(2) as f64;
    let gens = Scale::new((0.0, gen_hi), (BOTTOM, TOP));

    let mut svg = Svg::file(WIDTH, HEIGHT, input.title, 30.0);
    svg.rect(
        (LEFT, TOP),
        (RIGHT - LEFT, BOTTOM - TOP),
        r##"fill="none" stroke="#333""##,
    );
    x_axis(&mut svg, x, x_max, input.axis);
    rss_axis(&mut svg, rss, ticks(rss_lo, rss_hi, rss_step));
    generations_axis(&mut svg, gens, gen_hi);
    reference_lines(&mut svg, input, x, rss);
    let axis = input.axis;
    series(
        &mut svg,
        input.samples,
        |s| x.at(s.x(axis) as f64),
        |s| s.heap_in_use_bytes.map(|b| b as f64 / MIB),
        rss,
        HEAP_COLOR,
        false,
    );
    series(
        &mut svg,
        input.samples,
        |s| x.at(s.x(axis) as f64),
        |s| s.rss_bytes.map(|b| b as f64 / MIB),
        rss,
        RSS_COLOR,
        false,
    );
    series(
        &mut svg,
        input.samples,
        |s| x.at(s.x(axis) as f64),
        |s| s.live_generations.map(|g| g as f64),
        gens,
        GEN_COLOR,
        true,
    );
    if let Some(slope) = input.slope {
        slope_line(&mut svg, slope, axis, x, rss);
    }
    legend(&mut svg);
    svg.finish()
}

fn x_axis(svg: &mut Svg, x: Scale, x_max: f64, axis: Axis) {
    let labels: Vec<(f64, String)> = ticks(0.0, x_max, nice_step(0.0, x_max, STEPS))
        .into_iter()
        .map(|tick| (x.at(tick), short_count(tick, 2)))
        .collect();
    svg.x_axis(
        &labels,
        &XAxis {
            label_y: BOTTOM + 20.0,
            label_attrs: "",
            marks: Some(Marks {
                axis_y: BOTTOM,
                length: 5.0,
                attrs: r##"stroke="#333""##,
            }),
        },
    );
    svg.text(
        ((LEFT + RIGHT) / 2.0, BOTTOM + 45.0),
        r#"text-anchor="middle""#,
        match axis {
            Axis::Requests => "requests completed",
            Axis::Reloads => "reloads completed",
        },
    );
}

/// The fitted RSS line over the range it was fitted on, labelled with its slope.
fn slope_line(svg: &mut Svg, slope: Slope, axis: Axis, x: Scale, rss: Scale) {
    let (from, to) = (slope.from as f64, slope.to as f64);
    let y = |at: f64| rss.at(slope.at(at) / MIB);
    svg.line(
        (x.at(from), y(from)),
        (x.at(to), y(to)),
        &format!(r#"stroke="{SLOPE_COLOR}" stroke-width="2" stroke-dasharray="8,3""#),
    );
    svg.text(
        (x.at(from), y(from) - 10.0),
        &format!(r#"fill="{SLOPE_COLOR}" {HALO}"#),
        &format!(
            "second half: {:+.1} ± {:.1} B/{}",
            slope.per_unit,
            slope.stderr,
            axis.unit()
        ),
    );
}

fn rss_axis(svg: &mut Svg, rss: Scale, ticks: Vec<f64>) {
    svg.y_axis(
        rss,
        &ticks,
        |tick| trim_number(tick, 2),
        &YAxis {
            label_x: LEFT - 8.0,
            label_attrs: &format!(r#"text-anchor="end" fill="{RSS_COLOR}""#),
            grid: Some(Grid {
                from_x: LEFT,
                to_x: RIGHT,
                attrs: r##"stroke="#e5e5e5""##,
            }),
        },
    );
    vertical_label(svg, 25.0, "RSS (MiB)", RSS_COLOR);
}

fn generations_axis(svg: &mut Svg, gens: Scale, hi: f64) {
    let step = nice_step(0.0, hi, STEPS).max(1.0);
    svg.y_axis(
        gens,
        &ticks(0.0, hi, step),
        |tick| tick.to_string(),
        &YAxis {
            label_x: RIGHT + 8.0,
            label_attrs: &format!(r#"fill="{GEN_COLOR}""#),
            grid: None,
        },
    );
    vertical_label(svg, WIDTH - 25.0, "live generations", GEN_COLOR);
}

fn vertical_label(svg: &mut Svg, x: f64, text: &str, color: &str) {
    let y = (TOP + BOTTOM) / 2.0;
    svg.text(
        (x, y),
        &format!(r#"text-anchor="middle" fill="{color}" transform="rotate(-90 {x} {y})""#),
        text,
    );
}

/// Dashed lines at the warm RSS and at warm + tolerance; a dotted line where the warm-up ends.
fn reference_lines(svg: &mut Svg, input: &ChartInput<'_>, x: Scale, rss: Scale) {
    if let Some(warm) = input.warm_rss_bytes {
        let warm_mib = warm as f64 / MIB;
        let limit_mib = warm_mib * (1.0 + input.tolerance_pct / 100.0);
        let warm_label = format!("warm {warm_mib:.1} MiB");
        let limit_label = format!("warm + {} %", trim_number(input.tolerance_pct, 2));
        horizontal_dashed(svg, rss.at(warm_mib), "#666", &warm_label);
        horizontal_dashed(svg, rss.at(limit_mib), "#d62728", &limit_label);
    }
    let px = x.at(input.warmup as f64);
    if px > LEFT && px < RIGHT {
        svg.line(
            (px, TOP),
            (px, BOTTOM),
            r##"stroke="#999" stroke-dasharray="2,4""##,
        );
        svg.text(
            (px + 4.0, BOTTOM - 6.0),
            &format!(r##"fill="#666" {HALO}"##),
            "warm-up",
        );
    }
}

fn horizontal_dashed(svg: &mut Svg, py: f64, color: &str, label: &str) {
    svg.line(
        (LEFT, py),
        (RIGHT, py),
        &format!(r#"stroke="{color}" stroke-dasharray="6,4""#),
    );
    svg.text(
        (RIGHT - 6.0, py - 4.0),
        &format!(r#"text-anchor="end" fill="{color}" {HALO}"#),
        label,
    );
}

/// One polyline through the samples that have a value (`hold`: each value holds until the next).
fn series(
    svg: &mut Svg,
    samples: &[Sample],
    x: impl Fn(&Sample) -> f64,
    value: impl Fn(&Sample) -> Option<f64>,
    y: Scale,
    color: &str,
    hold: bool,
) {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| Some((x(s), y.at(value(s)?))))
        .collect();
    if points.is_empty() {
        return;
    }
    let attrs = format!(r#"fill="none" stroke="{color}" stroke-width="2""#);
    if hold {
        svg.polyline(&steps(&points), &attrs);
    } else {
        svg.polyline(&points, &attrs);
    }
}

fn legend(svg: &mut Svg) {
    let entries = [
        (RSS_COLOR, "RSS (MiB, left)"),
        (HEAP_COLOR, "heap in use, malloc (MiB, left)"),
        (GEN_COLOR, "live generations (right)"),
    ];
    for (row, (color, text)) in entries.iter().enumerate() {
        let y = TOP + 18.0 + row as f64 * 18.0;
        let swatch = format!(r#"stroke="{color}" stroke-width="3""#);
        svg.legend_entry((LEFT + 12.0, y + 4.0), Swatch::Line(&swatch), "", text);
    }
}

/// Bounds and step of the RSS axis: every sample, the warm line and the limit line fit.
fn rss_range(input: &ChartInput<'_>) -> (f64, f64, f64) {
    let mut values: Vec<f64> = input
        .samples
        .iter()
        .flat_map(|s| [s.rss_bytes, s.heap_in_use_bytes])
        .flatten()
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
    let step = nice_step((lo - pad).max(0.0), hi + pad, STEPS);
    let lo = ((lo - pad).max(0.0) / step).floor() * step;
    let hi = ((hi + pad) / step).ceil() * step;
    (lo, hi, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(requests: u64, mib: u64, gens: u64) -> Sample {
        Sample::for_test(requests, mib, gens)
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
            axis: Axis::Requests,
            slope: None,
        });
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("warm 50.0 MiB") && svg.contains("warm + 5 %"));
        assert!(svg.contains("soak &lt;json&gt;"));
        assert!(svg.ends_with("</svg>\n"));
    }

    #[test]
    fn reload_mode_draws_the_heap_and_the_slope_against_reloads() {
        let samples: Vec<Sample> = (0..=20)
            .map(|i| Sample {
                reloads_ok: i * 1000,
                heap_in_use_bytes: Some(8 << 20),
                ..Sample::for_test(0, 20, 1)
            })
            .collect();
        let slopes = crate::report::slopes(&samples, Axis::Reloads);
        let svg = render(&ChartInput {
            title: "reload",
            samples: &samples,
            warm_rss_bytes: Some(20 << 20),
            tolerance_pct: 5.0,
            warmup: 2000,
            axis: Axis::Reloads,
            slope: slopes.rss_per_reload,
        });
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("reloads completed"));
        assert!(svg.contains("second half: +0.0 ± 0.0 B/reload"), "{svg}");
    }
}
