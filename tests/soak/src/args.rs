//! Command-line flags of the soak tool (clap), their defaults (those of `make soak`, about two minutes on
//! two cores; `--mode faults` has its own for N, K and the warm-up) and the checks that reject a run
//! that could not mean anything.

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

    /// Take a sample (RSS, live generations, latency of the interval) every K completed requests
    /// (faults mode: 1000).
    #[arg(
        long,
        default_value_t = 10_000,
        default_value_if("mode", "faults", "1000")
    )]
    pub(crate) sample_every: u64,

    /// Requests before the warm (baseline) RSS: the median of the five samples from the first at or
    /// after this count. Long enough for the allocator's arenas and the instance pool to reach their working size (faults mode:
    /// 10000: after the first memory bombs and huge bodies, so the baseline is not taken mid-storm).
    #[arg(
        long,
        default_value_t = 100_000,
        default_value_if("mode", "faults", "10000")
    )]
    pub(crate) warmup: u64,

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

    /// Largest accepted RSS growth, final RSS over warm RSS, in percent.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) rss_tolerance_pct: f64,
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
}

impl Mode {
    /// The name used in file names and titles.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Json => "json",
            Mode::Html => "html",
            Mode::Faults => "faults",
        }
    }
}

impl Args {
    /// Reject flag combinations that cannot produce a meaningful soak.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.requests == 0 || self.concurrency == 0 || self.sample_every == 0 {
            bail!("--requests, --concurrency and --sample-every must be at least 1");
        }
        if self.warmup >= self.requests {
            bail!(
                "--warmup ({}) must be below --requests ({}): the warm RSS is sampled after it",
                self.warmup,
                self.requests
            );
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
    fn warmup_must_leave_requests_to_measure() {
        assert!(
            parse(&["--requests", "100", "--warmup", "100"])
                .validate()
                .is_err()
        );
    }
}
