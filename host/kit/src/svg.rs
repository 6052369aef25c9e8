//! Charts drawn by hand as SVG, shared by the admin dashboard's memory chart (host/src/admin/chart.rs),
//! the soak chart (tests/soak) and the side-by-side bar chart (tests/bench): linear scales, "nice"
//! axis steps and ticks, label formatting, escaping, and a writer for the few elements the charts use
//! (lines, text, rectangles, polylines, axes, legend entries). No scripts, no external resources.

use std::fmt::{self, Write};

/// `text` for SVG content or an attribute value: `&`, `<`, `>` and `"` escaped.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `value` with at most `decimals` decimals and no trailing zeros: with 2, 5 → "5", 2.5 → "2.5",
/// 0.126 → "0.13".
pub fn trim_number(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A count in few characters (at most `decimals` decimals): 250000 → "250k", 12500 → "12.5k",
/// 1000000 → "1M".
pub fn short_count(value: f64, decimals: usize) -> String {
    if value >= 1e6 {
        format!("{}M", trim_number(value / 1e6, decimals))
    } else if value >= 1e3 {
        format!("{}k", trim_number(value / 1e3, decimals))
    } else {
        trim_number(value, decimals)
    }
}

/// The smallest "nice" number (1, 2 or 5 × 10ⁿ) at least `value`; 1 for zero or less.
pub fn nice_ceiling(value: f64) -> f64 {
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

/// A tick step of 1, 2 or 5 × 10ⁿ giving about `about` steps over [lo, hi].
pub fn nice_step(lo: f64, hi: f64, about: f64) -> f64 {
    nice_ceiling((hi - lo).max(f64::MIN_POSITIVE) / about)
}

/// The multiples of `step` in [lo, hi].
pub fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A linear map from a value range to a pixel range (an empty value range counts as one unit wide).
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    from: (f64, f64),
    to: (f64, f64),
}

impl Scale {
    /// Values `from.0 ..= from.1` onto pixels `to.0 ..= to.1` (a y scale usually runs bottom to top).
    pub fn new(from: (f64, f64), to: (f64, f64)) -> Self {
        Self { from, to }
    }

    /// The pixel of `value`.
    pub fn at(self, value: f64) -> f64 {
        let (a, b) = self.from;
        let span = if b > a { b - a } else { 1.0 };
        self.to.0 + (value - a) / span * (self.to.1 - self.to.0)
    }
}

/// The points of a line that holds each value until the next point: a corner before every point but
/// the first.
pub fn steps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2);
    for (i, &(x, y)) in points.iter().enumerate() {
        if i > 0 {
            out.push((x, points[i - 1].1));
        }
        out.push((x, y));
    }
    out
}

/// A coordinate as written: at most one decimal, none if it is whole.
struct Px(f64);

impl fmt::Display for Px {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:.1}", self.0);
        f.write_str(text.strip_suffix(".0").unwrap_or(&text))
    }
}

/// Labels on a vertical axis: each centred on its tick at `label_x`, and with `grid` a line across
/// the plot at every tick.
#[derive(Debug, Clone, Copy)]
pub struct YAxis<'a> {
    pub label_x: f64,
    /// The labels' attributes (anchor, class, fill, ...).
    pub label_attrs: &'a str,
    pub grid: Option<Grid<'a>>,
}

/// Horizontal grid lines from `from_x` to `to_x`.
#[derive(Debug, Clone, Copy)]
pub struct Grid<'a> {
    pub from_x: f64,
    pub to_x: f64,
    pub attrs: &'a str,
}

/// Labels along a horizontal axis, centred on their x at the baseline `label_y`; with `marks`, a tick
/// mark under the axis at each.
#[derive(Debug, Clone, Copy)]
pub struct XAxis<'a> {
    pub label_y: f64,
    pub label_attrs: &'a str,
    pub marks: Option<Marks<'a>>,
}

/// Tick marks from the axis at `axis_y` down by `length`.
#[derive(Debug, Clone, Copy)]
pub struct Marks<'a> {
    pub axis_y: f64,
    pub length: f64,
    pub attrs: &'a str,
}

/// What stands before a legend entry's text (the attributes style it).
#[derive(Debug, Clone, Copy)]
pub enum Swatch<'a> {
    /// A short horizontal line, for a series.
    Line(&'a str),
    /// A short vertical line, for marks such as events.
    Tick(&'a str),
    /// A small square, for bars.
    Block(&'a str),
}

/// An SVG document being written.
#[derive(Debug)]
pub struct Svg {
    out: String,
    /// A newline after every element (files), or none (inline in a page).
    newline: bool,
}

impl Svg {
    /// An `<svg>` for an HTML page: `attrs` (class, role, aria...) and a view box, no size and no
    /// newlines (the page's CSS sizes and colours it).
    pub fn inline(width: f64, height: f64, attrs: &str) -> Self {
        let mut svg = Self {
            out: String::with_capacity(8 * 1024),
            newline: false,
        };
        svg.open(format_args!(
            r#"<svg {attrs} viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">"#
        ));
        svg
    }

    /// A standalone `.svg` file: its size, a 12 px sans-serif font, a white background and `title`
    /// centred at the top on the baseline `title_y`; one element a line.
    pub fn file(width: f64, height: f64, title: &str, title_y: f64) -> Self {
        let mut svg = Self {
            out: String::with_capacity(16 * 1024),
            newline: true,
        };
        svg.open(format_args!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        ));
        svg.rect((0.0, 0.0), (width, height), r#"fill="white""#);
        svg.text(
            (width / 2.0, title_y),
            r#"text-anchor="middle" font-size="15" font-weight="bold""#,
            title,
        );
        svg
    }

    fn open(&mut self, element: fmt::Arguments<'_>) {
        let _ = self.out.write_fmt(element);
        if self.newline {
            self.out.push('\n');
        }
    }

    /// `<line ATTRS x1 y1 x2 y2/>`.
    pub fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attrs: &str) {
        self.open(format_args!(
            r#"<line {attrs} x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
            Px(x1),
            Px(y1),
            Px(x2),
            Px(y2)
        ));
    }

    /// `<rect x y width height ATTRS/>`.
    pub fn rect(&mut self, (x, y): (f64, f64), (width, height): (f64, f64), attrs: &str) {
        self.open(format_args!(
            r#"<rect x="{}" y="{}" width="{}" height="{}" {attrs}/>"#,
            Px(x),
            Px(y),
            Px(width),
            Px(height)
        ));
    }

    /// `<text x y ATTRS>text</text>`, the text escaped.
    pub fn text(&mut self, (x, y): (f64, f64), attrs: &str, text: &str) {
        let space = if attrs.is_empty() { "" } else { " " };
        self.open(format_args!(
            r#"<text x="{}" y="{}"{space}{attrs}>{}</text>"#,
            Px(x),
            Px(y),
            escape(text)
        ));
    }

    /// `<polyline ATTRS points/>`.
    pub fn polyline(&mut self, points: &[(f64, f64)], attrs: &str) {
        let mut list = String::with_capacity(points.len() * 12);
        for (i, (x, y)) in points.iter().enumerate() {
            let space = if i == 0 { "" } else { " " };
            let _ = write!(list, "{space}{},{}", Px(*x), Px(*y));
        }
        self.open(format_args!(r#"<polyline {attrs} points="{list}"/>"#));
    }

    /// `<TAG ATTRS>text</TAG>` (e.g. a `<title>` or `<desc>`), the text escaped.
    pub fn element(&mut self, tag: &str, attrs: &str, text: &str) {
        self.open(format_args!("<{tag} {attrs}>{}</{tag}>", escape(text)));
    }

    /// `<g ATTRS>`; [`Svg::end_group`] closes it.
    pub fn group(&mut self, attrs: &str) {
        self.open(format_args!("<g {attrs}>"));
    }

    pub fn end_group(&mut self) {
        self.open(format_args!("</g>"));
    }

    /// A vertical axis: for every tick, the grid line (if any) and the label `label(tick)`.
    pub fn y_axis(
        &mut self,
        y: Scale,
        ticks: &[f64],
        label: impl Fn(f64) -> String,
        axis: &YAxis<'_>,
    ) {
        for &tick in ticks {
            let py = y.at(tick);
            if let Some(grid) = &axis.grid {
                self.line((grid.from_x, py), (grid.to_x, py), grid.attrs);
            }
            self.text((axis.label_x, py + 4.0), axis.label_attrs, &label(tick));
        }
    }

    /// A horizontal axis: for every (pixel x, label), the tick mark (if any) and the label.
    pub fn x_axis(&mut self, labels: &[(f64, String)], axis: &XAxis<'_>) {
        let attrs = format!(r#"text-anchor="middle" {}"#, axis.label_attrs);
        for (px, label) in labels {
            if let Some(marks) = &axis.marks {
                let (y, length) = (marks.axis_y, marks.length);
                self.line((*px, y), (*px, y + length), marks.attrs);
            }
            self.text((*px, axis.label_y), attrs.trim_end(), label);
        }
    }

    /// A legend entry with its text on the baseline `y`: the swatch at `x`, then the text. Returns
    /// where the next entry of a row may start (the text's width estimated at 7 px a character).
    pub fn legend_entry(
        &mut self,
        (x, y): (f64, f64),
        swatch: Swatch<'_>,
        text_attrs: &str,
        text: &str,
    ) -> f64 {
        let text_x = match swatch {
            Swatch::Line(attrs) => {
                self.line((x, y - 4.0), (x + 24.0, y - 4.0), attrs);
                x + 30.0
            }
            Swatch::Tick(attrs) => {
                self.line((x, y - 10.0), (x, y), attrs);
                x + 6.0
            }
            Swatch::Block(attrs) => {
                self.rect((x, y - 11.0), (14.0, 14.0), attrs);
                x + 20.0
            }
        };
        self.text((text_x, y), text_attrs, text);
        text_x + text.chars().count() as f64 * 7.0 + 20.0
    }

    /// Close the document: the text of the whole `<svg>` element.
    pub fn finish(mut self) -> String {
        self.open(format_args!("</svg>"));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(nice_step(0.0, 200_000.0, 6.0), 50_000.0);
        assert_eq!(ticks(0.0, 200_000.0, 50_000.0).len(), 5);
        assert_eq!(nice_step(0.0, 43_000.0, 5.0), 10_000.0);
        assert_eq!(ticks(0.5, 1.0, 0.1).len(), 6);
        // (More in the dashboard chart's tests, host/src/admin/chart.rs.)
        assert_eq!(nice_ceiling(-3.0), 1.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(2.0), 2.0);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(short_count(250_000.0, 2), "250k");
        assert_eq!(short_count(1_000_000.0, 2), "1M");
        assert_eq!(short_count(12_500.0, 1), "12.5k");
        assert_eq!(trim_number(2.50, 2), "2.5");
        assert_eq!(trim_number(0.126, 2), "0.13");
        assert_eq!(trim_number(2.26, 1), "2.3");
        assert_eq!(trim_number(50.0, 0), "50");
        assert_eq!(escape(r#"a <b> & "c""#), "a &lt;b&gt; &amp; &quot;c&quot;");
    }

    #[test]
    fn scales_and_steps() {
        let y = Scale::new((0.0, 50.0), (200.0, 0.0));
        assert_eq!((y.at(0.0), y.at(25.0), y.at(50.0)), (200.0, 100.0, 0.0));
        assert_eq!(Scale::new((3.0, 3.0), (0.0, 10.0)).at(4.0), 10.0);
        assert_eq!(
            steps(&[(0.0, 1.0), (1.0, 2.0), (2.0, 2.0)]),
            [(0.0, 1.0), (1.0, 1.0), (1.0, 2.0), (2.0, 2.0), (2.0, 2.0)]
        );
    }

    #[test]
    fn writes_elements_axes_and_legends() {
        let mut svg = Svg::inline(100.0, 50.0, r#"class="chart""#);
        svg.element("title", r#"id="t""#, "a < b");
        svg.polyline(&[(1.0, 2.26), (3.5, 4.0)], r#"class="rss" fill="none""#);
        svg.y_axis(
            Scale::new((0.0, 10.0), (40.0, 0.0)),
            &ticks(0.0, 10.0, 5.0),
            |v| trim_number(v, 1),
            &YAxis {
                label_x: 4.0,
                label_attrs: r#"text-anchor="end""#,
                grid: Some(Grid {
                    from_x: 10.0,
                    to_x: 90.0,
                    attrs: r#"class="grid""#,
                }),
            },
        );
        svg.x_axis(
            &[(50.0, "now".to_owned())],
            &XAxis {
                label_y: 48.0,
                label_attrs: "",
                marks: None,
            },
        );
        let next = svg.legend_entry((10.0, 45.0), Swatch::Tick(r#"class="reload""#), "", "ab");
        assert_eq!(next, 10.0 + 6.0 + 14.0 + 20.0);
        let text = svg.finish();
        assert!(text.starts_with(r#"<svg class="chart" viewBox="0 0 100 50""#));
        assert!(text.contains(r#"<title id="t">a &lt; b</title>"#));
        assert!(text.contains(r#"<polyline class="rss" fill="none" points="1,2.3 3.5,4"/>"#));
        assert!(text.contains(r#"<line class="grid" x1="10" y1="20" x2="90" y2="20"/>"#));
        assert!(text.contains(r#"<text x="4" y="24" text-anchor="end">5</text>"#));
        assert!(text.contains(r#"<text x="50" y="48" text-anchor="middle">now</text>"#));
        assert!(text.contains(r#"<line class="reload" x1="10" y1="35" x2="10" y2="45"/>"#));
        assert!(text.ends_with("</svg>") && !text.contains('\n'));
        let file = Svg::file(10.0, 10.0, "t & u", 8.0).finish();
        assert_eq!(file.lines().count(), 4);
        assert!(file.contains(">t &amp; u</text>\n") && file.ends_with("</svg>\n"));
    }
}
