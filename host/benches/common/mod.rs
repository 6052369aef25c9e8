//! What the benchmarks share: starting the release host pinned to CPU 0 with a given configuration,
//! running wrk pinned to CPU 1 (requests/s and latency percentiles), medians, and for the in-process
//! (criterion) ones a configuration that serves the example plugins.

#![allow(dead_code)] // each bench uses its own subset

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A host process under test; killed when dropped.
pub(crate) struct Host {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Start `target/release/plugin-host serve` on CPU 0 with `config` (TOML) serving the plugins in
/// `plugins`, its data in `dir`. Runs without RUST_BACKTRACE (wasmtime would capture backtraces on error
/// paths).
pub(crate) fn start_host(name: &str, config: &str, plugins: &Path, dir: &Path) -> Host {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config).unwrap();
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(repo().join("target/release/plugin-host"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&file)
        .arg("--plugins")
        .arg(plugins)
        .arg("--templates")
        .arg(repo().join("templates"))
        .arg("--data")
        .arg(dir.join("data"))
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start target/release/plugin-host (make build)");
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("plugin-host listening on "))
        .expect("the host printed its address");
    let base = line
        .trim_start_matches("plugin-host listening on ")
        .to_owned();
    Host { child, base }
}

/// One wrk run's figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wrk {
    pub(crate) rps: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
}

/// Run wrk on CPU 1 (one thread, `connections` connections) against `url` for `seconds`, with extra
/// request headers.
pub(crate) fn wrk(url: &str, connections: u32, seconds: u32, headers: &[&str]) -> Wrk {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "wrk", "-t1", "--latency"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"));
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"))
            .to_owned()
    };
    let non_2xx = text.lines().any(|l| l.contains("Non-2xx"));
    assert!(!non_2xx, "wrk saw non-2xx answers from {url}:\n{text}");
    Wrk {
        rps: field("Requests/sec:").parse().unwrap(),
        p50: parse_latency(&field("50%")),
        p99: parse_latency(&field("99%")),
    }
}

/// wrk's latency notation: `812.00us`, `1.20ms`, `2.01s`.
fn parse_latency(text: &str) -> Duration {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .unwrap_or_else(|_| panic!("latency {text:?}"));
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => panic!("latency unit in {text:?}"),
    };
    Duration::from_secs_f64(seconds)
}

/// The median of `values` (the upper one of an even count).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The example plugins (`make plugins`).
pub(crate) fn examples() -> PathBuf {
    repo().join("target/plugins")
}

/// The default configuration with the example plugins and the repository's templates, as `make run`
/// serves them, for benchmarks that build a generation in-process.
pub(crate) fn examples_config() -> plugin_host::config::Config {
    let mut config = plugin_host::config::Config::defaults();
    config.plugins_dir = examples();
    config.templates_dir = repo().join("templates");
    config
}

/// A fresh scratch directory for one bench run.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ph-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
