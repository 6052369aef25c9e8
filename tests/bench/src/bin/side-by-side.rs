//! The side-by-side benchmark (issue 7): native axum, Plugin Host (JSON and HTML) and `wasmtime serve`
//! answering `GET /hello/world`, at several wrk concurrencies, in one invocation. See the crate docs
//! (tests/bench/src/lib.rs) for the method and docs/benchmarks.md for results.
//!
//! Run with `make bench-side` (builds everything, installs wasmtime-cli 48.0.8 into target/tools when it
//! is missing). A quick run: `target/release/side-by-side --seconds 2 --warmup 1`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use plugin_host_bench::report::{self, Measurement, SERVERS, Sample};
use plugin_host_bench::server::{Server, Spec};
use plugin_host_bench::{probe, repo, wrk};

/// The body every server must give for [`PATH`] (the hello plugin's answer).
const EXPECTED_JSON: &str = r#"{"message":"hello, world"}"#;
const PATH: &str = "/hello/world";

#[derive(Debug, Parser)]
#[command(
    about = "Native axum, Plugin Host (JSON, HTML) and wasmtime serve side by side, with wrk"
)]
struct Args {
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Seconds of wrk warm-up against each fresh server before it is measured.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// wrk connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    connections: Vec<u32>,
    /// The CPU the servers are pinned to.
    #[arg(long, default_value_t = 0)]
    server_cpu: u32,
    /// The CPU wrk is pinned to.
    #[arg(long, default_value_t = 1)]
    client_cpu: u32,
    /// The wasmtime CLI (`make bench-side` installs 48.0.8 here); relative paths are from the repository root.
    #[arg(long, default_value = "target/tools/bin/wasmtime")]
    wasmtime: PathBuf,
    /// The wasi:http hello component for `wasmtime serve` (built by plugins/build.sh).
    #[arg(long, default_value = "target/bench/wasi-hello.wasm")]
    component: PathBuf,
    /// Where to write the chart.
    #[arg(long, default_value = "docs/img/side-by-side.svg")]
    svg: PathBuf,
    /// Where to write the markdown tables (they are printed too).
    #[arg(long, default_value = "target/bench/side-by-side.md")]
    markdown: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let root = repo();
    let at_root = |p: &Path| root.join(p);
    let scratch = std::env::temp_dir().join(format!("ph-side-by-side-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("cannot create a scratch directory")?;
    let specs = specs(&args, &root, &scratch)?;
    preflight(&args, &specs)?;

    let mut measurements = Vec::new();
    for &connections in &args.connections {
        for (server, spec) in specs.iter().enumerate() {
            eprintln!("side-by-side: {} at c{connections}", SERVERS[server]);
            let outcome = match spec {
                Ok(spec) => measure(&args, spec, server, connections).map_err(|e| {
                    eprintln!("side-by-side: {} failed: {e:#}", SERVERS[server]);
                    format!("failed: {e}")
                }),
                Err(why) => Err(why.clone()),
            };
            measurements.push(Measurement {
                server,
                connections,
                outcome,
            });
        }
    }
    std::fs::remove_dir_all(&scratch).ok();

    let table = report::markdown(&measurements, &args.connections);
    println!("{table}");
    let title = format!(
        "GET /hello/world: servers on CPU {}, wrk -t1 on CPU {}, {} s per run",
        args.server_cpu, args.client_cpu, args.seconds
    );
    for (path, text) in [
        (at_root(&args.markdown), table),
        (
            at_root(&args.svg),
            report::svg(&title, &measurements, &args.connections),
        ),
    ] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("side-by-side: wrote {}", path.display());
    }
    Ok(())
}

/// How to start each server of [`SERVERS`], or why it cannot be started.
fn specs(args: &Args, root: &Path, scratch: &Path) -> Result<Vec<Result<Spec, String>>> {
    let exe = std::env::current_exe().context("cannot find this program")?;
    let native = exe.with_file_name("native-hello");
    let host = root.join("target/release/plugin-host");
    for (path, how) in [
        (&native, "cargo build --release --workspace --bins"),
        (&host, "make build"),
        (&root.join("target/plugins/hello.wasm"), "make plugins"),
    ] {
        ensure!(path.is_file(), "{} is missing: {how}", path.display());
    }
    // Logging at `warn`, as in the other wrk benches: at the default `info` the host writes one line
    // per request, which neither other server does.
    let config = scratch.join("host.toml");
    std::fs::write(&config, "log = \"warn\"\n").context("cannot write the host config")?;
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let host_spec = Spec {
        command: vec![
            path(&host),
            "serve".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--config".into(),
            path(&config),
            "--plugins".into(),
            path(&root.join("target/plugins")),
            "--templates".into(),
            path(&root.join("templates")),
            "--data".into(),
            path(&scratch.join("data")),
        ],
        env: Vec::new(),
        ready_prefix: "plugin-host listening on ".into(),
    };
    let native_spec = Spec {
        command: vec![path(&native)],
        env: Vec::new(),
        ready_prefix: "native-hello listening on ".into(),
    };
    let wasmtime = root.join(&args.wasmtime);
    let component = root.join(&args.component);
    let wasmtime_spec = if !wasmtime.is_file() {
        Err(format!(
            "not run: {} is missing (make bench-side installs it)",
            args.wasmtime.display()
        ))
    } else if !component.is_file() {
        Err(format!(
            "not run: {} is missing (make plugins)",
            args.component.display()
        ))
    } else {
        // Its defaults otherwise (docs/benchmarks.md lists them for 48.0.8): a fresh instance per
        // request, as Plugin Host does.
        Ok(Spec {
            command: vec![
                path(&wasmtime),
                "serve".into(),
                "--addr".into(),
                "127.0.0.1:0".into(),
                path(&component),
            ],
            env: Vec::new(),
            ready_prefix: "Serving HTTP on ".into(),
        })
    };
    Ok(vec![
        Ok(native_spec),
        Ok(host_spec.clone()),
        Ok(host_spec),
        wasmtime_spec,
    ])
}

/// Start each server once and check its answer before anything is measured, so a wrong answer fails
/// in seconds rather than after minutes of load. This also fills Plugin Host's compile cache (in the
/// scratch data directory), so each measured host start reads its plugins from the cache as a
/// restarted production host does, and its peak RSS does not depend on whether it ran first.
fn preflight(args: &Args, specs: &[Result<Spec, String>]) -> Result<()> {
    for (server, spec) in specs.iter().enumerate() {
        let Ok(spec) = spec else { continue };
        let running = Server::start(spec, args.server_cpu)?;
        check_answer(&running.base, server)
            .with_context(|| format!("{} answers wrongly", SERVERS[server]))?;
    }
    Ok(())
}

/// The `Accept` header server `server` is measured with: the HTML view for the third, JSON otherwise.
fn accept(server: usize) -> &'static str {
    if server == 2 {
        "Accept: text/html"
    } else {
        "Accept: application/json"
    }
}

/// Start a fresh server, check its answer, warm it up, measure, and read its peak RSS.
fn measure(args: &Args, spec: &Spec, server: usize, connections: u32) -> Result<Sample> {
    let running = Server::start(spec, args.server_cpu)?;
    check_answer(&running.base, server)?;
    let url = format!("{}{PATH}", running.base);
    let headers = [accept(server)];
    if args.warmup > 0 {
        wrk::run(
            &url,
            args.client_cpu,
            connections,
            Duration::from_secs(args.warmup),
            &headers,
        )?;
    }
    let cpu_before = running.cpu_time()?;
    let figures = wrk::run(
        &url,
        args.client_cpu,
        connections,
        Duration::from_secs(args.seconds),
        &headers,
    )?;
    let cpu = running.cpu_time()?.saturating_sub(cpu_before);
    Ok(Sample {
        figures,
        peak_rss: running.peak_rss()?,
        cpu_per_request: cpu / u32::try_from(figures.requests.max(1)).unwrap_or(u32::MAX),
    })
}

/// The server gives the hello plugin's JSON, or (for the HTML row) a page with the greeting.
fn check_answer(base: &str, server: usize) -> Result<()> {
    let answer = probe::get(base, PATH, &[accept(server)])?;
    ensure!(
        answer.status == 200,
        "{base}{PATH} answered {}: {}",
        answer.status,
        answer.body
    );
    let content_type = answer.header("content-type").unwrap_or_default();
    if server == 2 {
        if !content_type.starts_with("text/html") || !answer.body.contains("hello, world") {
            bail!(
                "{base}{PATH} gave no hello page ({content_type}): {}",
                answer.body
            );
        }
    } else if !content_type.starts_with("application/json") || answer.body != EXPECTED_JSON {
        bail!(
            "{base}{PATH} gave {content_type} {:?}, not {EXPECTED_JSON:?}",
            answer.body
        );
    }
    Ok(())
}
