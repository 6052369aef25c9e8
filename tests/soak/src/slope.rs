//! The slope: a least-squares line through the samples of the second half of the run (x from half the
//! last sample's x on), in bytes per request or per reload, with its standard error. A leak is a
//! slope; a cache that fills and stops, or noise, is not — where "+N % from warm to final" could not
//! tell the two apart over a short run, the slope over 10,000 reloads can.

use crate::args::Axis;
use crate::sampler::Sample;

/// Fewest points a slope is fitted through (the standard error needs n - 2 > 0).
const MIN_POINTS: usize = 3;

/// A fitted line `y = intercept + per_unit * x` over part of the samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slope {
    /// Bytes per unit of x (request or reload).
    pub(crate) per_unit: f64,
    /// Standard error of `per_unit` (from the residuals).
    pub(crate) stderr: f64,
    pub(crate) intercept: f64,
    /// Points fitted, and the x range they cover.
    pub(crate) points: usize,
    pub(crate) from: u64,
    pub(crate) to: u64,
}

impl Slope {
    /// The line's value at `x`.
    pub(crate) fn at(&self, x: f64) -> f64 {
        self.intercept + self.per_unit * x
    }

    /// `+3.2 B/reload (± 1.1, 101 samples, reloads 10000-20000)`.
    pub(crate) fn text(&self, axis: Axis) -> String {
        format!(
            "{:+.2} B/{} (± {:.2}, {} samples, {}s {}-{})",
            self.per_unit,
            axis.unit(),
            self.stderr,
            self.points,
            axis.unit(),
            self.from,
            self.to
        )
    }
}

/// The slope of `value` against `x` over the second half of the run; `None` with fewer than
/// [`MIN_POINTS`] points there or no spread in x.
pub(crate) fn second_half(
    samples: &[Sample],
    x: impl Fn(&Sample) -> u64,
    value: impl Fn(&Sample) -> Option<u64>,
) -> Option<Slope> {
    let points: Vec<(u64, u64)> = samples
        .iter()
        .filter_map(|s| Some((x(s), value(s)?)))
        .collect();
    let end = points.iter().map(|(x, _)| *x).max()?;
    let half: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, _)| *x as f64 >= end as f64 / 2.0)
        .map(|(x, y)| (*x as f64, *y as f64))
        .collect();
    let mut fit = fit(&half)?;
    fit.from = half.iter().map(|(x, _)| *x as u64).min()?;
    fit.to = end;
    Some(fit)
}

/// Ordinary least squares through `points`.
fn fit(points: &[(f64, f64)]) -> Option<Slope> {
    let n = points.len();
    if n < MIN_POINTS {
        return None;
    }
    let mean_x = points.iter().map(|(x, _)| x).sum::<f64>() / n as f64;
    let mean_y = points.iter().map(|(_, y)| y).sum::<f64>() / n as f64;
    let sxx: f64 = points.iter().map(|(x, _)| (x - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points
        .iter()
        .map(|(x, y)| (x - mean_x) * (y - mean_y))
        .sum();
    let per_unit = sxy / sxx;
    let intercept = mean_y - per_unit * mean_x;
    let sse: f64 = points
        .iter()
        .map(|(x, y)| (y - intercept - per_unit * x).powi(2))
        .sum();
    let stderr = (sse / (n - 2) as f64 / sxx).sqrt();
    Some(Slope {
        per_unit,
        stderr,
        intercept,
        points: n,
        from: 0,
        to: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(rss: impl Fn(u64) -> u64) -> Vec<Sample> {
        (0..=200)
            .map(|i| Sample {
                reloads_ok: i * 100,
                rss_bytes: Some(rss(i * 100)),
                ..Sample::default()
            })
            .collect()
    }

    fn reloads(s: &Sample) -> u64 {
        s.reloads_ok
    }

    #[test]
    fn a_steady_leak_is_its_slope_and_only_the_second_half_counts() {
        // 10 MiB of warm-up growth in the first half, then 12 bytes per reload.
        let run = samples(|r| {
            if r < 10_000 {
                20_000_000 + r * 1000
            } else {
                30_000_000 + r * 12
            }
        });
        let slope = second_half(&run, reloads, |s| s.rss_bytes).unwrap();
        assert!((slope.per_unit - 12.0).abs() < 1e-6, "{slope:?}");
        assert!(slope.stderr < 1e-6);
        assert_eq!((slope.points, slope.from, slope.to), (101, 10_000, 20_000));
        assert!((slope.at(20_000.0) - 30_240_000.0).abs() < 1e-3);
    }

    #[test]
    fn a_cache_that_filled_early_has_no_slope() {
        let run = samples(|r| 20_000_000 + r.min(6_500) * 34);
        let slope = second_half(&run, reloads, |s| s.rss_bytes).unwrap();
        assert!(slope.per_unit.abs() < 1e-9, "{slope:?}");
    }

    #[test]
    fn noise_shows_in_the_standard_error() {
        // A page (4096 bytes) up and down on alternate samples: no slope to speak of, some error.
        let run = samples(|r| 20_000_000 + (r / 100 % 2) * 4096);
        let slope = second_half(&run, reloads, |s| s.rss_bytes).unwrap();
        assert!(slope.per_unit.abs() < 0.5, "{slope:?}");
        assert!(slope.stderr > 0.0);
        assert!(
            slope.text(Axis::Reloads).starts_with("+0.0"),
            "{}",
            slope.text(Axis::Reloads)
        );
    }

    #[test]
    fn too_few_points_or_no_spread_is_no_slope() {
        let run = samples(|_| 1);
        assert!(second_half(&run[..2], reloads, |s| s.rss_bytes).is_none());
        assert!(second_half(&run, |_| 5, |s| s.rss_bytes).is_none());
        assert!(second_half(&run, reloads, |_| None).is_none());
    }
}
