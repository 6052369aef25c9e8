//! wrk as the load generator: one thread pinned to a CPU (or more threads, unpinned, for the seed-shape
//! cell), `--latency` for the percentiles. The same approach as host/benches/common/mod.rs, with errors
//! counted instead of asserted, so one bad run does not throw away a whole side-by-side run.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// One wrk run's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Requests per second over the run.
    pub rps: f64,
    /// Requests completed in the run.
    pub requests: u64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Answers that were not 2xx or 3xx, plus socket errors (connect, read, write, timeout).
    pub errors: u64,
}

/// How wrk loads a server.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    /// The CPU wrk is pinned to; `None` lets it run anywhere.
    pub cpu: Option<u32>,
    /// wrk threads (`-t`).
    pub threads: u32,
    /// Open connections (`-c`).
    pub connections: u32,
    pub duration: Duration,
    /// Extra `Name: value` headers.
    pub headers: &'a [&'a str],
}

/// Run `[taskset -c CPU] wrk -tTHREADS --latency -cCONNECTIONS -dDURATION` against `url`.
pub fn run(url: &str, load: &Load<'_>) -> Result<Figures> {
    let mut cmd = match load.cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", &cpu.to_string(), "wrk"]);
            taskset
        }
        None => Command::new("wrk"),
    };
    cmd.arg(format!("-t{}", load.threads))
        .arg("--latency")
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)));
    for h in load.headers {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("cannot run wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
}

/// The figures in wrk's `--latency` report.
fn parse(text: &str) -> Option<Figures> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .map(str::trim)
    };
    let non_2xx: u64 = field("Non-2xx or 3xx responses:").map_or(Some(0), |n| n.parse().ok())?;
    // "Socket errors: connect 0, read 3, write 0, timeout 0"
    let socket: u64 = field("Socket errors:")
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // "  38000 requests in 2.00s, 5.00MB read"
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Figures {
        rps: field("Requests/sec:")?.parse().ok()?,
        requests,
        p50: latency(field("50%")?)?,
        p99: latency(field("99%")?)?,
        errors: non_2xx + socket,
    })
}

/// wrk's latency notation: `812.00us`, `1.20ms`, `2.01s`.
fn latency(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 2s test @ http://127.0.0.1:1/hello/world
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us  100.00us   2.01ms   90.00%
    Req/Sec    19.00k     1.00k   20.00k    80.00%
  Latency Distribution
     50%  798.00us
     75%  850.00us
     90%    1.20ms
     99%    2.01ms
  38000 requests in 2.00s, 5.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
  Non-2xx or 3xx responses: 2
Requests/sec:  19000.50
Transfer/sec:      2.50MB
";

    #[test]
    fn reads_rate_percentiles_and_errors() {
        let f = parse(REPORT).unwrap();
        assert_eq!(f.rps, 19000.5);
        assert_eq!(f.requests, 38000);
        assert_eq!(f.p50, Duration::from_micros(798));
        assert_eq!(f.p99, Duration::from_micros(2010));
        assert_eq!(f.errors, 6);
    }

    #[test]
    fn a_clean_run_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse(&clean).unwrap().errors, 0);
        assert_eq!(latency("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(latency("oops"), None);
    }
}
