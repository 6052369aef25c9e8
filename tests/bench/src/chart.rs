//! The side-by-side chart: requests/s (top panel) and p99 latency (bottom panel), grouped by
//! concurrency, one bar per row that ran, drawn with the chart primitives the soak chart uses too
//! (plugin_host_kit::svg). Panels are stacked so that six bars per group keep readable value labels;
//! the bar of a cell whose server core was not saturated is drawn pale.

use plugin_host_kit::svg::{Grid, Scale, Svg, Swatch, XAxis, YAxis, nice_step, short_count, ticks};

use crate::report::{Measurement, SATURATED, ms};
use crate::rows::Row;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 720.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 940.0;
/// The legend's first baseline and the distance between its lines.
const LEGEND_Y: f64 = 57.0;
const LEGEND_LINE: f64 = 20.0;
/// Top and bottom edges of the two panels (room for two legend lines above the first).
const PANELS: [(f64, f64); 2] = [(120.0, 330.0), (420.0, 630.0)];
/// A white outline under label text, so a label stays readable over a bar.
const HALO: &str = r#"stroke="white" stroke-width="3" paint-order="stroke""#;
/// How an unsaturated cell's bar is drawn.
const PALE: &str = r#"fill-opacity="0.4""#;

/// The chart of `measurements` for `rows` (in that order) at `connections`.
pub fn svg(title: &str, rows: &[Row], measurements: &[Measurement], connections: &[u32]) -> String {
    let mut svg = Svg::file(WIDTH, HEIGHT, title, 28.0);
    legend(&mut svg, rows);
    let bars = Bars {
        rows,
        measurements,
        connections,
    };
    bars.panel(&mut svg, PANELS[0], "requests/s (higher is better)", true);
    bars.panel(
        &mut svg,
        PANELS[1],
        "p99 latency, ms (lower is better)",
        false,
    );
    if measurements
        .iter()
        .filter_map(Measurement::sample)
        .any(|s| !s.saturated())
    {
        svg.text(
            (LEFT, HEIGHT - 16.0),
            r##"fill="#555""##,
            &format!(
                "Pale bars: the server core was less than {:.0} % busy (not saturated), so that req/s is not the server's limit.",
                SATURATED * 100.0
            ),
        );
    }
    svg.finish()
}

/// One swatch and name per row, wrapped onto a second line when the first is full.
fn legend(svg: &mut Svg, rows: &[Row]) {
    let (mut x, mut y) = (LEFT, LEGEND_Y);
    for row in rows {
        // legend_entry's own estimate of an entry's width: swatch, 7 px a character, gap.
        let width = 20.0 + row.name().chars().count() as f64 * 7.0 + 20.0;
        if x > LEFT && x + width > RIGHT {
            (x, y) = (LEFT, y + LEGEND_LINE);
        }
        let swatch = format!(r#"fill="{}""#, row.color());
        x = svg.legend_entry((x, y), Swatch::Block(&swatch), "", row.name());
    }
}

/// What the panels draw.
struct Bars<'a> {
    rows: &'a [Row],
    measurements: &'a [Measurement],
    connections: &'a [u32],
}

impl Bars<'_> {
    /// The value of a bar: req/s, or p99 in ms.
    fn value(m: &Measurement, rps: bool) -> Option<f64> {
        let f = &m.sample()?.figures;
        Some(if rps { f.rps } else { ms(f.p99) })
    }

    fn panel(&self, svg: &mut Svg, (top, bottom): (f64, f64), label: &str, rps: bool) {
        let max = self
            .measurements
            .iter()
            .filter_map(|m| Self::value(m, rps))
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let step = nice_step(0.0, max, 5.0);
        let top_value = (max / step).ceil() * step;
        let y = Scale::new((0.0, top_value), (bottom, top));
        let format = if rps { count } else { trim_number };
        svg.y_axis(
            y,
            &ticks(0.0, top_value, step),
            format,
            &YAxis {
                label_x: LEFT - 6.0,
                label_attrs: r#"text-anchor="end""#,
                grid: Some(Grid {
                    from_x: LEFT,
                    to_x: RIGHT,
                    attrs: r##"stroke="#e5e5e5""##,
                }),
            },
        );
        svg.rect(
            (LEFT, top),
            (RIGHT - LEFT, bottom - top),
            r##"fill="none" stroke="#333""##,
        );
        svg.text(
            ((LEFT + RIGHT) / 2.0, top - 12.0),
            r#"text-anchor="middle" font-weight="bold""#,
            label,
        );
        let group_width = (RIGHT - LEFT) / self.connections.len().max(1) as f64;
        for (g, &c) in self.connections.iter().enumerate() {
            let group_left = LEFT + g as f64 * group_width + group_width * 0.1;
            self.group(svg, (group_left, group_width * 0.8), (y, bottom), c, rps);
        }
        self.x_axis(svg, group_width, bottom);
    }

    /// The bars of one concurrency, from `left` across `width`.
    fn group(
        &self,
        svg: &mut Svg,
        (left, width): (f64, f64),
        (y, bottom): (Scale, f64),
        c: u32,
        rps: bool,
    ) {
        let bar_width = width / self.rows.len().max(1) as f64;
        let format = if rps { count } else { trim_number };
        for (i, &row) in self.rows.iter().enumerate() {
            let x = left + i as f64 * bar_width;
            let found = self
                .measurements
                .iter()
                .find(|m| m.row == row && m.connections == c);
            let Some((v, m)) = found.and_then(|m| Some((Self::value(m, rps)?, m))) else {
                svg.text(
                    (x + bar_width / 2.0, bottom - 6.0),
                    r##"text-anchor="middle" fill="#999""##,
                    "n/a",
                );
                continue;
            };
            let pale = m.sample().is_some_and(|s| !s.saturated());
            svg.rect(
                (x, y.at(v)),
                (bar_width - 2.0, bottom - y.at(v)),
                &format!(
                    r#"fill="{}"{}"#,
                    row.color(),
                    if pale {
                        format!(" {PALE}")
                    } else {
                        String::new()
                    }
                ),
            );
            svg.text(
                (x + bar_width / 2.0 - 1.0, y.at(v) - 4.0),
                &format!(r#"text-anchor="middle" font-size="10" {HALO}"#),
                &format(v),
            );
        }
    }

    fn x_axis(&self, svg: &mut Svg, group_width: f64, bottom: f64) {
        let groups: Vec<(f64, String)> = self
            .connections
            .iter()
            .enumerate()
            .map(|(g, c)| (LEFT + (g as f64 + 0.5) * group_width, format!("c{c}")))
            .collect();
        svg.x_axis(
            &groups,
            &XAxis {
                label_y: bottom + 20.0,
                label_attrs: "",
                marks: None,
            },
        );
        svg.text(
            ((LEFT + RIGHT) / 2.0, bottom + 40.0),
            r#"text-anchor="middle""#,
            "wrk connections",
        );
    }
}

/// A request rate as "12.3k".
fn count(value: f64) -> String {
    short_count(value, 1)
}

/// A number with at most one decimal and no trailing zeros: 5 → "5", 2.5 → "2.5".
fn trim_number(value: f64) -> String {
    plugin_host_kit::svg::trim_number(value, 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::run;

    #[test]
    fn chart_has_a_bar_per_measurement_and_marks_missing_ones() {
        let rows = [Row::Native, Row::Json, Row::Html, Row::WasmtimeReuse];
        let svg = svg("side <by> side", &rows, &run(), &[16]);
        // 3 bars in each of the two panels, plus the background, the legend's 4 swatches and 2 frames.
        assert_eq!(svg.matches("<rect").count(), 1 + 4 + 2 + 3 * 2);
        assert_eq!(svg.matches(">n/a<").count(), 2);
        // native was not saturated: its two bars are pale, and the chart says what pale means.
        assert_eq!(svg.matches(PALE).count(), 2);
        assert!(svg.contains("Pale bars: the server core was less than 90 % busy"));
        assert!(svg.contains("side &lt;by&gt; side") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn legend_wraps_when_all_six_rows_ran() {
        let svg = svg("all", &Row::ALL, &run(), &[16, 64]);
        let second_line = format!(r#"y="{}""#, LEGEND_Y + LEGEND_LINE);
        assert!(svg.contains(&second_line), "{svg}");
        // Rows that did not run at all get no bar, only "n/a": 6 rows x 2 concurrencies x 2 panels,
        // less the 3 bars of each panel at c16.
        assert_eq!(svg.matches(">n/a<").count(), 6 * 2 * 2 - 3 * 2);
    }
}
