//! The dashboard chart, drawn on the server as inline SVG: process RSS (MiB, left axis, from zero so a
//! flat line looks flat), live generations (right axis, a step line) and a tick at the top for every
//! sample interval in which a reload swapped the generation, over the sampled past. No
//! scripts, no external resources; colours come from the page's CSS classes, and the `<title>` and
//! `<desc>` say in words what the lines show.

use plugin_host_kit::svg::{Grid, Scale, Svg, Swatch, XAxis, YAxis, nice_ceiling, steps, ticks};

use crate::app::sampler::Sample;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;
const MIB: f64 = 1024.0 * 1024.0;

fn minutes_label(ms: u64) -> String {
    let minutes = ms as f64 / 60_000.0;
    if minutes < 1.0 {
        format!("−{:.0} s", ms as f64 / 1e3)
    } else {
        format!("−{minutes:.0} min")
    }
}

/// What the chart shows of its samples, and where it goes on the canvas.
struct Frame<'a> {
    samples: &'a [Sample],
    last: &'a Sample,
    span_ms: u64,
    start_ms: u64,
    rss_mib: Vec<f64>,
    min_rss: f64,
    max_rss: f64,
    max_live: usize,
    reloaded_at: Vec<u64>,
    rss_top: f64,
    live_top: f64,
    x: Scale,
    y_rss: Scale,
    y_live: Scale,
}

impl<'a> Frame<'a> {
    fn new(samples: &'a [Sample]) -> Option<Self> {
        let (first, last) = (samples.first()?, samples.last()?);
        let span_ms = (last.at_ms - first.at_ms).max(60_000);
        let start_ms = last.at_ms - span_ms;
        let rss_mib: Vec<f64> = samples.iter().map(|s| s.rss_bytes as f64 / MIB).collect();
        let max_rss = rss_mib.iter().copied().fold(0.0, f64::max);
        let min_rss = rss_mib.iter().copied().fold(f64::INFINITY, f64::min);
        let max_live = samples
            .iter()
            .map(|s| s.live_generations)
            .max()
            .unwrap_or(1);
        let reloaded_at = samples
            .windows(2)
            .filter(|w| w[1].generation != w[0].generation)
            .map(|w| w[1].at_ms)
            .collect();
        let rss_top = nice_ceiling(max_rss * 1.15);
        let live_top = max_live.max(4) as f64;
        Some(Self {
            samples,
            last,
            span_ms,
            start_ms,
            rss_mib,
            min_rss,
            max_rss,
            max_live,
            reloaded_at,
            rss_top,
            live_top,
            x: Scale::new((start_ms as f64, last.at_ms as f64), (LEFT, WIDTH - RIGHT)),
            y_rss: Scale::new((0.0, rss_top), (HEIGHT - BOTTOM, TOP)),
            y_live: Scale::new((0.0, live_top), (HEIGHT - BOTTOM, TOP)),
        })
    }

    fn x_at(&self, at_ms: u64) -> f64 {
        self.x.at(at_ms as f64)
    }
}

/// The chart of `samples` (oldest first; the last one is "now"). `id` makes the title and description
/// ids unique on the page.
pub(crate) fn memory_chart(samples: &[Sample], id: &str) -> String {
    let Some(frame) = Frame::new(samples) else {
        return String::new();
    };
    let mut svg = Svg::inline(
        WIDTH,
        HEIGHT,
        &format!(r#"class="chart" role="img" aria-labelledby="{id}-title {id}-desc""#),
    );
    describe(&mut svg, &frame, id);
    axes(&mut svg, &frame);
    lines(&mut svg, &frame);
    legend(&mut svg);
    svg.finish()
}

/// The `<title>` and `<desc>` that say in words what the chart shows.
fn describe(svg: &mut Svg, f: &Frame<'_>, id: &str) {
    let span = minutes_label(f.span_ms);
    let title = format!(
        "Process memory (RSS) and live generations, last {}",
        span.trim_start_matches('−')
    );
    svg.element("title", &format!(r#"id="{id}-title""#), &title);
    let desc = format!(
        "{} samples. RSS now {:.1} MiB, lowest {:.1} MiB, highest {:.1} MiB. Live generations now {}, at most {}. Reloads: {}.",
        f.samples.len(),
        f.rss_mib[f.rss_mib.len() - 1],
        f.min_rss,
        f.max_rss,
        f.last.live_generations,
        f.max_live,
        f.reloaded_at.len()
    );
    svg.element("desc", &format!(r#"id="{id}-desc""#), &desc);
}

/// MiB on the left (five steps from zero, with the grid), generations on the right, time below.
fn axes(svg: &mut Svg, f: &Frame<'_>) {
    let rss_top = f.rss_top;
    // Whole numbers, as the top is 1, 2 or 5 × 10ⁿ.
    let mib = |value: f64| {
        if rss_top < 10.0 {
            format!("{value:.1}")
        } else {
            format!("{value:.0}")
        }
    };
    let grid = Grid {
        from_x: LEFT,
        to_x: WIDTH - RIGHT,
        attrs: r#"class="grid""#,
    };
    let left = YAxis {
        label_x: LEFT - 6.0,
        label_attrs: r#"class="axis" text-anchor="end""#,
        grid: Some(grid),
    };
    svg.y_axis(f.y_rss, &ticks(0.0, rss_top, rss_top / 5.0), mib, &left);
    let live_step = (f.live_top as usize).div_ceil(4).max(1) as f64;
    let right = YAxis {
        label_x: WIDTH - RIGHT + 6.0,
        label_attrs: r#"class="axis""#,
        grid: None,
    };
    let whole = |n: f64| format!("{n:.0}");
    svg.y_axis(f.y_live, &ticks(0.0, f.live_top, live_step), whole, &right);
    // Five time labels, now on the right.
    let times: Vec<(f64, String)> = (0..=4u64)
        .map(|step| {
            let at = f.start_ms + f.span_ms * step / 4;
            let label = if step == 4 {
                "now".to_owned()
            } else {
                minutes_label(f.last.at_ms - at)
            };
            (f.x_at(at), label)
        })
        .collect();
    let below = XAxis {
        label_y: HEIGHT - BOTTOM + 18.0,
        label_attrs: r#"class="axis""#,
        marks: None,
    };
    svg.x_axis(&times, &below);
    svg.text((LEFT, TOP - 4.0), r#"class="axis""#, "MiB");
    let right_label = r#"class="axis" text-anchor="end""#;
    svg.text((WIDTH - 4.0, TOP - 4.0), right_label, "generations");
}

/// Live generations as a step line (the count holds until the next sample), RSS, and a tick at the
/// top wherever the serving generation changed since the previous sample.
fn lines(svg: &mut Svg, f: &Frame<'_>) {
    let live: Vec<(f64, f64)> = f
        .samples
        .iter()
        .map(|s| (f.x_at(s.at_ms), f.y_live.at(s.live_generations as f64)))
        .collect();
    svg.polyline(&steps(&live), r#"class="live" fill="none""#);
    let rss: Vec<(f64, f64)> = f
        .samples
        .iter()
        .zip(&f.rss_mib)
        .map(|(s, mib)| (f.x_at(s.at_ms), f.y_rss.at(*mib)))
        .collect();
    svg.polyline(&rss, r#"class="rss" fill="none""#);
    svg.group(r#"class="reloads""#);
    for &at in &f.reloaded_at {
        let x = f.x_at(at);
        svg.line((x, TOP), (x, TOP + 8.0), r#"class="reload""#);
    }
    svg.end_group();
}

/// The legend, in a row under the time axis.
fn legend(svg: &mut Svg) {
    svg.group(r#"class="legend""#);
    let mut next = LEFT;
    for (swatch, text) in [
        (Swatch::Line(r#"class="rss""#), "RSS (MiB)"),
        (Swatch::Line(r#"class="live""#), "live generations"),
        (Swatch::Tick(r#"class="reload""#), "reload"),
    ] {
        next = svg.legend_entry((next, HEIGHT - 4.0), swatch, r#"class="axis""#, text);
    }
    svg.end_group();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::metrics::Totals;

    fn sample(at_ms: u64, mib: u64, live: usize, generation: u64) -> Sample {
        Sample {
            at_ms,
            rss_bytes: mib << 20,
            live_generations: live,
            generation,
            totals: Totals::default(),
        }
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(34.5), 50.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(nice_ceiling(9.0), 10.0);
    }

    #[test]
    fn draws_both_lines_inside_the_frame_with_a_text_summary() {
        // A reload every 100 s (ten samples); two live generations in the sample after each.
        let samples: Vec<Sample> = (0..360)
            .map(|i| sample(i * 10_000, 30 + i % 3, 1 + usize::from(i % 10 == 1), i / 10))
            .collect();
        let svg = memory_chart(&samples, "mem");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("RSS now 32.0 MiB, lowest 30.0 MiB, highest 32.0 MiB"));
        assert!(svg.contains("Live generations now 1, at most 2. Reloads: 35."));
        assert_eq!(
            svg.matches(r#"<line class="reload" x1"#).count(),
            35 + 1,
            "ticks and legend"
        );
        // The axis reads 0, 10, ... 50 MiB for values up to 32 MiB.
        assert!(svg.contains(r#"text-anchor="end">50</text>"#));
        assert!(svg.contains(r#"text-anchor="end">10</text>"#));
        assert!(svg.contains("last 60 min"));
        let points = |class: &str| -> Vec<(f64, f64)> {
            let start = svg
                .find(&format!(r#"class="{class}" fill="none" points=""#))
                .unwrap();
            let rest = &svg[start..];
            let list = rest.split('"').nth(5).unwrap();
            list.split_whitespace()
                .map(|p| {
                    let (a, b) = p.split_once(',').unwrap();
                    (a.parse().unwrap(), b.parse().unwrap())
                })
                .collect()
        };
        let rss = points("rss");
        assert_eq!(rss.len(), 360);
        for (px, py) in rss.iter().chain(points("live").iter()) {
            assert!((LEFT..=WIDTH - RIGHT).contains(px), "x {px}");
            assert!((TOP..=HEIGHT - BOTTOM).contains(py), "y {py}");
        }
        assert!(memory_chart(&[], "x").is_empty());
        // A single sample still draws (a one-minute frame).
        assert!(memory_chart(&samples[..1], "one").contains("last 1 min"));
    }
}
