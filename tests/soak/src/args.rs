//! Command-line flags of the soak tool (clap), their defaults (those of `make soak`, about two minutes on
//! two cores; `--mode faults` and `--mode reload` have their own for N, K and the warm-up) and the
//! checks that reject a run that could not mean anything.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, ValueEnum};

/// Soak test of the release `plugin-host`: requests and hot reloads on loopback, sampling the host's
/// RSS and live generations; writes OUT/soak-MODE.csv and .svg and exits 1 if the host leaked.
///
/// To pin the tool itself to a CPU, start it under taskset (`taskset -c 1 soak ...`) or use
/// `--pin-client`; `--pin-host` runs the host under `taskset -c CPU`.
#[derive(Debug, Clone, Parser)]
#[command(name = "soak", version)]
pub(crate) struct Args {
    /// Requests to send in total (the default takes about a minute and a half on two cores; in faults
    /// mode the default is 40000).
    #[arg(
        long,
        default_value_t = 600_000,
        default_value_if("mode", "faults", "40000")
    )]
    pub(crate) requests: u64,

    /// Requests in flight at once (worker tasks sharing one keep-alive client).
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,

    /// Swap the plugin between its two builds and reload every M completed requests (0 = never).
    #[arg(long, default_value_t = 1000)]
    pub(crate) reload_every: u64,

    /// Take a sample (RSS, heap, live generations, latency of the interval) every K completed requests
    /// (faults mode: 1000; reload mode: every K reloads, 100).
    #[arg(
        long,
        default_value_t = 10_000,
        default_value_ifs([("mode", "faults", "1000"), ("mode", "reload", "100")])
    )]
    pub(crate) sample_every: u64,

    /// Requests before the warm (baseline) RSS: the median of the five samples from the first at or
    /// after this count. Long enough for the allocator's arenas and the instance pool to reach their
    /// working size (faults mode: 10000: after the first memory bombs and huge bodies, so the baseline
    /// is not taken mid-storm; reload mode: 2000 reloads).
    #[arg(
        long,
        default_value_t = 100_000,
        default_value_ifs([("mode", "faults", "10000"), ("mode", "reload", "2000")])
    )]
    pub(crate) warmup: u64,

    /// Reload mode: reloads to drive, one after the other, with no traffic.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) reloads: u64,

    /// Reload mode: how each reload is asked for. `api` writes an audit row per reload; `sighup` none.
    #[arg(long, value_enum, default_value_t = Via::Api)]
    pub(crate) via: Via,

    /// Reload mode: swap the soak plugin between its two builds before each reload (both come from
    /// the compile cache after the first two), so every reload loads other code and records a new last
    /// good set; without it every reload rebuilds the same set.
    #[arg(long)]
    pub(crate) swap_builds: bool,

    /// What each request is.
    #[arg(long, value_enum, default_value_t = Mode::Json)]
    pub(crate) mode: Mode,

    /// Faults mode: how many of the requests go to the `faults` plugin's misbehaving routes (request i
    /// is a fault when i % (N / F) == 0); N must be a multiple of F, and F below N.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) fault_requests: u64,

    /// Where the CSV, the SVG and the run's temporary directory go.
    #[arg(long, default_value = "target/soak")]
    pub(crate) out: PathBuf,

    /// The host binary (release build).
    #[arg(long, default_value = "target/release/plugin-host")]
    pub(crate) host_bin: PathBuf,

    /// Directory holding soak-a.wasm and soak-b.wasm (built by `make plugins`).
    #[arg(long, default_value = "target/fixtures")]
    pub(crate) fixtures: PathBuf,

    /// Directory holding the example plugins (html mode serves status.wasm from it).
    #[arg(long, default_value = "target/plugins")]
    pub(crate) examples: PathBuf,

    /// The templates directory the host renders pages from (html mode).
    #[arg(long, default_value = "templates")]
    pub(crate) templates: PathBuf,

    /// Run the host under `taskset -c CPU`.
    #[arg(long, value_name = "CPU")]
    pub(crate) pin_host: Option<String>,

    /// Pin this tool (all its threads) with `taskset -a -p -c CPU` before the load starts.
    #[arg(long, value_name = "CPU")]
    pub(crate) pin_client: Option<String>,

    /// Stop issuing requests after this many seconds of load, and report (the run then fails).
    #[arg(long, default_value_t = 900)]
    pub(crate) max_seconds: u64,

    /// Largest accepted RSS growth, final RSS over warm RSS, in percent (beside the slope: it catches a
    /// step after the warm-up that a fit over the second half does not see).
    #[arg(long, default_value_t = 5.0)]
    pub(crate) rss_tolerance_pct: f64,

    /// Largest accepted RSS slope in bytes per reload, fitted (least squares) over the second half of
    /// the run. Reload mode: 10 by default; the traffic modes check it only when given.
    #[arg(long, default_value_if("mode", "reload", "10"))]
    pub(crate) max_bytes_per_reload: Option<f64>,

    /// Traffic modes: largest accepted RSS slope in bytes per request over the second half of the run.
    /// The default run's resolution: over its 300,000 measured requests the slope's standard error is
    /// ~0.8 B/request (a sample that lands in a compiling reload reads a MiB high), so 3 (1.7 MiB per
    /// 600,000 requests, about the old 5 %) fails a leak, not noise. A leak per reload needs reload
    /// mode, which resolves a few bytes per reload.
    #[arg(long, default_value_t = 3.0)]
    pub(crate) max_bytes_per_request: f64,
}

/// How reload mode asks for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Via {
    /// `POST /admin/api/reload` with an admin key; the host writes an audit row for each.
    Api,
    /// `kill -HUP PID`; the tool waits for `/readyz` to show the next generation. No audit row.
    Sighup,
}

impl Via {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Sighup => "sighup",
        }
    }
}

/// What the x-axis of samples, fits and charts counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Requests,
    Reloads,
}

impl Axis {
    /// Singular, for units (`B/request`).
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Axis::Requests => "request",
            Axis::Reloads => "reload",
        }
    }
}

/// The kind of request the workers send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// `GET /soak`, answered with JSON by the soak plugin.
    Json,
    /// `GET /status` with a browser's `Accept` (HTML through the status plugin's view), like a load
    /// balancer's health check or an operator's browser; every answer must be a 200 HTML page.
    Html,
    /// A fault storm: `GET /soak` interleaved with requests to the `faults` plugin's misbehaving
    /// routes (timeouts, traps, memory bombs, invalid responses), each checked for its status.
    Faults,
    /// No traffic: `--reloads` reloads one after the other (`--via api|sighup`), RSS and the heap
    /// sampled every K reloads. The compile cache is on, so a reload costs milliseconds.
    Reload,
}

impl Mode {
    /// The name used in file names and titles.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Json => "json",
            Mode::Html => "html",
            Mode::Faults => "faults",
            Mode::Reload => "reload",
        }
    }
}

impl Args {
    /// Reject flag combinations that cannot produce a meaningful soak.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.requests == 0 || self.concurrency == 0 || self.sample_every == 0 {
            bail!("--requests, --concurrency and --sample-every must be at least 1");
        }
        let (total, what) = match self.axis() {
            Axis::Requests => (self.requests, "--requests"),
            Axis::Reloads => (self.reloads, "--reloads"),
        };
        if self.warmup >= total {
            bail!(
                "--warmup ({}) must be below {what} ({total}): the warm RSS is sampled after it",
                self.warmup
            );
        }
        if self.mode == Mode::Reload && self.reloads / self.sample_every < 6 {
            bail!(
                "--reloads ({}) / --sample-every ({}) leaves fewer than 6 samples: too few for a slope \
                 over the second half",
                self.reloads,
                self.sample_every
            );
        }
        let limits = [self.max_bytes_per_reload, Some(self.max_bytes_per_request)];
        if limits.into_iter().flatten().any(|l| l.is_nan()) {
            bail!("--max-bytes-per-reload and --max-bytes-per-request must be numbers");
        }
        if self.mode == Mode::Faults {
            self.validate_faults()?;
        }
        if self.max_seconds == 0 {
            bail!("--max-seconds must be at least 1");
        }
        if self.rss_tolerance_pct.is_nan() || self.rss_tolerance_pct < 0.0 {
            bail!("--rss-tolerance-pct must be a number >= 0");
        }
        Ok(())
    }

    /// What samples are counted in: requests, or reloads in reload mode.
    pub(crate) fn axis(&self) -> Axis {
        if self.mode == Mode::Reload {
            Axis::Reloads
        } else {
            Axis::Requests
        }
    }

    /// F fault requests must fit evenly among N, with at least one good request between two faults.
    fn validate_faults(&self) -> Result<()> {
        let (n, f) = (self.requests, self.fault_requests);
        if f == 0 || f >= n {
            bail!("--fault-requests ({f}) must be at least 1 and below --requests ({n})");
        }
        if !n.is_multiple_of(f) {
            let every = n / f;
            bail!(
                "--requests ({n}) must be a multiple of --fault-requests ({f}): request i is a fault \
                 when i % (N / F) == 0, so {n} requests would hold {} faults, one every {every}",
                n.div_ceil(every)
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Args {
        Args::parse_from(std::iter::once("soak").chain(extra.iter().copied()))
    }

    #[test]
    fn defaults_are_those_of_make_soak() {
        let args = parse(&[]);
        assert_eq!(args.requests, 600_000);
        assert_eq!(args.concurrency, 16);
        assert_eq!(args.reload_every, 1000);
        assert_eq!(args.sample_every, 10_000);
        assert_eq!(args.warmup, 100_000);
        assert_eq!(args.mode, Mode::Json);
        assert!(args.validate().is_ok());
    }

    #[test]
    fn faults_mode_has_its_own_defaults_and_flags_override_them() {
        let args = parse(&["--mode", "faults"]);
        assert_eq!(args.requests, 40_000);
        assert_eq!(args.fault_requests, 10_000);
        assert_eq!(args.warmup, 10_000);
        assert_eq!(args.sample_every, 1000);
        assert_eq!(args.reload_every, 1000);
        assert!(args.validate().is_ok());
        let args = parse(&["--mode", "faults", "--requests", "8000", "--warmup", "500"]);
        assert_eq!(
            (args.requests, args.warmup, args.sample_every),
            (8000, 500, 1000)
        );
        let json = parse(&["--mode", "json"]);
        assert_eq!(
            (json.requests, json.warmup, json.sample_every),
            (600_000, 100_000, 10_000)
        );
    }

    #[test]
    fn fault_requests_must_divide_requests() {
        let faults = |n: &str, f: &str| {
            parse(&[
                "--mode",
                "faults",
                "--requests",
                n,
                "--fault-requests",
                f,
                "--warmup",
                "1",
            ])
            .validate()
        };
        assert!(faults("40000", "10000").is_ok());
        assert!(faults("40000", "40000").is_err());
        assert!(faults("40000", "0").is_err());
        let err = faults("10", "3").unwrap_err().to_string();
        assert!(err.contains("4 faults, one every 3"), "{err}");
    }

    #[test]
    fn html_mode_takes_the_json_defaults() {
        let args = parse(&["--mode", "html"]);
        assert!(args.validate().is_ok());
        assert_eq!((args.requests, args.warmup), (600_000, 100_000));
    }

    #[test]
    fn reload_mode_has_its_own_defaults() {
        let args = parse(&["--mode", "reload"]);
        assert_eq!(
            (args.reloads, args.sample_every, args.warmup, args.via),
            (20_000, 100, 2000, Via::Api)
        );
        assert_eq!(args.max_bytes_per_reload, Some(10.0));
        assert_eq!(args.axis(), Axis::Reloads);
        assert!(args.validate().is_ok());
        assert_eq!(parse(&[]).max_bytes_per_reload, None);
        let hup = parse(&["--mode", "reload", "--via", "sighup", "--reloads", "500"]);
        assert_eq!((hup.via, hup.reloads), (Via::Sighup, 500));
        assert!(hup.validate().is_err(), "warm-up 2000 is past 500 reloads");
        let few = parse(&["--mode", "reload", "--reloads", "50", "--warmup", "10"]);
        assert!(few.validate().is_err(), "under 6 samples");
    }

    #[test]
    fn warmup_must_leave_requests_to_measure() {
        assert!(
            parse(&["--requests", "100", "--warmup", "100"])
                .validate()
                .is_err()
        );
    }
}
