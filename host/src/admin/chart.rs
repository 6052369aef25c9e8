//! The dashboard chart, drawn on the server as inline SVG: process RSS (MiB, left axis, from zero so a
//! flat line looks flat), live generations (right axis, a step line) and a tick at the top for every
//! sample interval in which a reload swapped the generation, over the sampled past. No
//! scripts, no external resources; colours come from the page's CSS classes, and the `<title>` and
//! `<desc>` say in words what the lines show.

use std::fmt::Write;

use crate::app::sampler::Sample;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 44.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;
const MIB: f64 = 1024.0 * 1024.0;

/// A number of MiB, rounded up to a "nice" axis maximum (1, 2 or 5 times a power of ten).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * magnitude)
}

fn minutes_label(ms: u64) -> String {
    let minutes = ms as f64 / 60_000.0;
    if minutes < 1.0 {
        format!("−{:.0} s", ms as f64 / 1e3)
    } else {
        format!("−{minutes:.0} min")
    }
}

/// The chart of `samples` (oldest first; the last one is "now"). `id` makes the title and description
/// ids unique on the page.
pub fn memory_chart(samples: &[Sample], id: &str) -> String {
    let mut svg = String::with_capacity(8 * 1024 + samples.len() * 40);
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return String::new();
    };
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
    let reloads = samples
        .windows(2)
        .filter(|w| w[1].generation != w[0].generation)
        .count();
    let rss_top = nice_ceiling(max_rss * 1.15);
    let live_top = max_live.max(4) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |at_ms: u64| LEFT + (at_ms.saturating_sub(start_ms)) as f64 / span_ms as f64 * plot_w;
    let y_rss = |mib: f64| TOP + plot_h - mib / rss_top * plot_h;
    let y_live = |n: usize| TOP + plot_h - n as f64 / live_top * plot_h;

    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(
        svg,
        r#"<title id="{id}-title">Process memory (RSS) and live generations, last {}</title>"#,
        minutes_label(span_ms).trim_start_matches('−')
    );
    let _ = write!(
        svg,
        r#"<desc id="{id}-desc">{} samples. RSS now {:.1} MiB, lowest {:.1} MiB, highest {:.1} MiB. Live generations now {}, at most {}. Reloads: {}.</desc>"#,
        samples.len(),
        rss_mib[rss_mib.len() - 1],
        min_rss,
        max_rss,
        last.live_generations,
        max_live,
        reloads
    );
    // Grid and left axis (MiB): five steps from zero (whole numbers, as the top is 1, 2 or 5 × 10ⁿ).
    for step in 0..=5 {
        let value = rss_top * f64::from(step) / 5.0;
        let yy = y_rss(value);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            if rss_top < 10.0 {
                format!("{value:.1}")
            } else {
                format!("{value:.0}")
            }
        );
    }
    // Right axis (generations): whole numbers.
    let live_steps = live_top as usize;
    for n in (0..=live_steps).step_by(live_steps.div_ceil(4).max(1)) {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{:.1}">{n}</text>"#,
            WIDTH - RIGHT + 6.0,
            y_live(n) + 4.0
        );
    }
    // Time axis: five labels, now on the right.
    for step in 0..=4u64 {
        let at = start_ms + span_ms * step / 4;
        let label = if step == 4 {
            "now".to_owned()
        } else {
            minutes_label(last.at_ms - at)
        };
        let _ = write!(
            svg,
            r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            x(at),
            HEIGHT - BOTTOM + 18.0
        );
    }
    let _ = write!(
        svg,
        r#"<text class="axis" x="{LEFT}" y="{:.1}">MiB</text><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">generations</text>"#,
        TOP - 4.0,
        WIDTH - 4.0,
        TOP - 4.0
    );
    // Live generations: a step line (the count holds until the next sample).
    svg.push_str(r#"<polyline class="live" fill="none" points=""#);
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            let _ = write!(
                svg,
                "{:.1},{:.1} ",
                x(s.at_ms),
                y_live(samples[i - 1].live_generations)
            );
        }
        let _ = write!(svg, "{:.1},{:.1} ", x(s.at_ms), y_live(s.live_generations));
    }
    svg.push_str(r#""/>"#);
    // RSS.
    svg.push_str(r#"<polyline class="rss" fill="none" points=""#);
    for (s, mib) in samples.iter().zip(&rss_mib) {
        let _ = write!(svg, "{:.1},{:.1} ", x(s.at_ms), y_rss(*mib));
    }
    svg.push_str(r#""/>"#);
    // Reloads: a tick where the serving generation changed since the previous sample.
    svg.push_str(r#"<g class="reloads">"#);
    for w in samples
        .windows(2)
        .filter(|w| w[1].generation != w[0].generation)
    {
        let xx = x(w[1].at_ms);
        let _ = write!(
            svg,
            r#"<line class="reload" x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}"/>"#,
            TOP + 8.0
        );
    }
    svg.push_str("</g>");
    // Legend.
    let _ = write!(
        svg,
        r#"<g class="legend"><line class="rss" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text class="axis" x="{:.1}" y="{:.1}">RSS (MiB)</text><line class="live" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text class="axis" x="{:.1}" y="{:.1}">live generations</text><line class="reload" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/><text class="axis" x="{:.1}" y="{:.1}">reload</text></g>"#,
        LEFT,
        HEIGHT - 8.0,
        LEFT + 24.0,
        HEIGHT - 8.0,
        LEFT + 30.0,
        HEIGHT - 4.0,
        LEFT + 130.0,
        HEIGHT - 8.0,
        LEFT + 154.0,
        HEIGHT - 8.0,
        LEFT + 160.0,
        HEIGHT - 4.0,
        LEFT + 280.0,
        HEIGHT - 14.0,
        LEFT + 280.0,
        HEIGHT - 4.0,
        LEFT + 286.0,
        HEIGHT - 4.0
    );
    svg.push_str("</svg>");
    svg
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
