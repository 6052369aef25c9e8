//! The samples as CSV (one header row, one row per sample; an unknown value is an empty cell; faults
//! mode adds fault columns at the end), the slopes as comment lines after the rows, and the UTC date
//! used in titles and the benchmarks row.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::report::Slopes;
use crate::sampler::Sample;

const HEADER: &str = "requests,elapsed_s,rss_bytes,rss_mib,live_generations,interval_requests,\
p50_us,p99_us,max_us,reloads_ok,reloads_failed,errors,heap_in_use_bytes,heap_free_bytes,rss_anon_bytes,\
rss_file_bytes";
/// Appended in faults mode (the latency columns before them are then those of good requests).
const FAULT_HEADER: &str =
    ",fault_requests,fault_interval_requests,fault_p50_us,fault_p99_us,fault_max_us";

/// The whole CSV document; `faults` adds the fault columns. The slopes follow as `#` lines
/// (`# slope,series,per,bytes_per_unit,stderr,samples,from,to`), which CSV readers that take comments
/// skip.
pub(crate) fn render(samples: &[Sample], faults: bool, slopes: &Slopes) -> String {
    let mut csv = String::from(HEADER);
    if faults {
        csv.push_str(FAULT_HEADER);
    }
    csv.push('\n');
    for sample in samples {
        csv.push_str(&row(sample));
        if faults {
            csv.push_str(&fault_cells(sample));
        }
        csv.push('\n');
    }
    let fits = [
        ("rss", "reload", slopes.rss_per_reload),
        ("rss_anon", "reload", slopes.anon_per_reload),
        ("heap_in_use", "reload", slopes.heap_per_reload),
        ("rss", "request", slopes.rss_per_request),
        ("heap_in_use", "request", slopes.heap_per_request),
    ];
    for (series, per, fit) in fits {
        if let Some(f) = fit {
            let _ = writeln!(
                csv,
                "# slope,{series},{per},{:.4},{:.4},{},{},{}",
                f.per_unit, f.stderr, f.points, f.from, f.to
            );
        }
    }
    csv
}

/// `,fault_requests,fault_interval_requests,p50,p99,max` of one sample.
fn fault_cells(s: &Sample) -> String {
    let latency = s.fault_latency.unwrap_or_default();
    let mut cells = format!(",{},{}", s.fault_requests, latency.count);
    for value in [latency.p50, latency.p99, latency.max] {
        let _ = write!(cells, ",{}", cell(s.fault_latency.map(|_| value)));
    }
    cells
}

fn row(s: &Sample) -> String {
    let mut row = String::new();
    let _ = write!(row, "{},{:.3},", s.requests, s.elapsed_s);
    let _ = write!(row, "{},", cell(s.rss_bytes));
    let _ = write!(
        row,
        "{},",
        cell(s.rss_bytes.map(|b| format!("{:.2}", b as f64 / 1048576.0)))
    );
    let _ = write!(row, "{},", cell(s.live_generations));
    let latency = s.latency.unwrap_or_default();
    let _ = write!(row, "{},", latency.count);
    for value in [latency.p50, latency.p99, latency.max] {
        let _ = write!(row, "{},", cell(s.latency.map(|_| value)));
    }
    let _ = write!(row, "{},{},{},", s.reloads_ok, s.reloads_failed, s.errors);
    let _ = write!(
        row,
        "{},{},{},{}",
        cell(s.heap_in_use_bytes),
        cell(s.heap_free_bytes),
        cell(s.rss_anon_bytes),
        cell(s.rss_file_bytes)
    );
    row
}

fn cell<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Now as `YYYY-MM-DD HH:MM UTC`.
pub(crate) fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc_date_time(secs)
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
fn utc_date_time(unix_secs: u64) -> String {
    plugin_host_kit::time::datetime_minutes(unix_secs as i64 * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Percentiles;

    #[test]
    fn dates_are_civil() {
        assert_eq!(utc_date_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date_time(1_795_782_000), "2026-11-27 12:20 UTC");
    }

    #[test]
    fn slopes_follow_the_rows_as_comments() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                reloads_ok: i * 100,
                ..Sample::for_test(0, 20 + i, 1)
            })
            .collect();
        let slopes = crate::report::slopes(&samples, crate::args::Axis::Reloads);
        let csv = render(&samples, false, &slopes);
        let last = csv.lines().last().unwrap();
        assert_eq!(last, "# slope,rss,reload,10485.7600,0.0000,5,500,900");
        assert_eq!(csv.lines().filter(|l| l.starts_with('#')).count(), 1);
    }

    #[test]
    fn unknown_values_are_empty_cells() {
        let samples = [
            Sample {
                live_generations: None,
                ..Sample::for_test(0, 2, 0)
            },
            Sample {
                requests: 5000,
                elapsed_s: 1.25,
                rss_bytes: None,
                live_generations: Some(2),
                latency: Some(Percentiles {
                    count: 5000,
                    p50: 10,
                    p99: 20,
                    max: 30,
                }),
                reloads_ok: 5,
                reloads_failed: 0,
                errors: 1,
                heap_in_use_bytes: Some(7000),
                heap_free_bytes: Some(300),
                rss_anon_bytes: None,
                rss_file_bytes: Some(4096),
                fault_requests: 1250,
                fault_latency: Some(Percentiles {
                    count: 1250,
                    p50: 900,
                    p99: 101_000,
                    max: 112_000,
                }),
            },
        ];
        let none = Slopes::default();
        let lines: Vec<String> = render(&samples, false, &none)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].split(',').count(), 16);
        assert_eq!(lines[1], "0,0.000,2097152,2.00,,0,,,,0,0,0,,,,");
        assert_eq!(
            lines[2],
            "5000,1.250,,,2,5000,10,20,30,5,0,1,7000,300,,4096"
        );
        let faults: Vec<String> = render(&samples, true, &none)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(faults[0].split(',').count(), 21);
        assert!(faults[0].starts_with(&lines[0]));
        assert_eq!(faults[1], "0,0.000,2097152,2.00,,0,,,,0,0,0,,,,,0,0,,,");
        assert_eq!(
            faults[2],
            format!("{},1250,1250,900,101000,112000", lines[2])
        );
    }
}
