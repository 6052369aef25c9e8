//! What OpenTelemetry traces cost per request (issue 20): hello (`GET /hello/world`, JSON, a fresh
//! instance per request) through the release host, with span export off and on, with and without an
//! incoming `traceparent`, and with export on but every trace sampled out.
//!
//! The side-by-side's method (tests/bench/src/lib.rs): each cell is a fresh host pinned to CPU 0 (all
//! its threads, the exporter's batch thread and runtime included, so what exporting costs lands on the
//! host's core and in its CPU time), `wrk -t1` pinned to CPU 1, a warm-up, then the measured run with the
//! host's CPU time read from `/proc`. The variants alternate within each round so drift hits them alike;
//! medians over the rounds. The host logs at `warn`, as in the other wrk benches, so no per-request log
//! line is written (with export on, the request span is then made for the exporter alone).
//!
//! Spans go to a sink in this process: `POST /v1/traces`, body read and counted, 200, nothing decoded.
//! Run the program on CPU 1 (`taskset -c 1`, as `make bench-otel` does) so the sink never shares the
//! host's core. `--rounds 1 --seconds 2 --warmup 1` is a quick run.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use plugin_host_bench::server::{Server, Spec, host_spec};
use plugin_host_bench::{probe, repo, wrk};

const PATH: &str = "/hello/world";
const EXPECTED: &str = r#"{"message":"hello, world"}"#;
const TRACEPARENT: &str = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[derive(Debug, Parser)]
#[command(
    about = "Per-request cost of OpenTelemetry traces: export off and on, wrk against the host"
)]
struct Args {
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up against each fresh host.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Rounds (each runs every variant once).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// wrk connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 0)]
    server_cpu: u32,
    #[arg(long, default_value_t = 1)]
    client_cpu: u32,
}

/// One way of running the host.
#[derive(Debug, Clone, Copy)]
struct Variant {
    name: &'static str,
    export: bool,
    traced: bool,
    /// Extra `OTEL_*` variables.
    env: &'static [(&'static str, &'static str)],
}

const VARIANTS: [Variant; 5] = [
    Variant {
        name: "export off (no OTEL_* variables)",
        export: false,
        traced: false,
        env: &[],
    },
    Variant {
        name: "export off, traceparent in",
        export: false,
        traced: true,
        env: &[],
    },
    Variant {
        name: "export on",
        export: true,
        traced: false,
        env: &[],
    },
    Variant {
        name: "export on, traceparent in (sampled)",
        export: true,
        traced: true,
        env: &[],
    },
    Variant {
        name: "export on, OTEL_TRACES_SAMPLER=always_off",
        export: true,
        traced: false,
        env: &[("OTEL_TRACES_SAMPLER", "always_off")],
    },
];

/// One measured cell.
#[derive(Debug, Clone, Copy)]
struct Cell {
    rps: f64,
    cpu_us: f64,
    busy: f64,
    /// Bytes of OTLP the sink received per request during the measured run.
    exported_bytes: f64,
    errors: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some((name, _)) = std::env::vars().find(|(k, _)| k.starts_with("OTEL_")) {
        bail!("{name} is set: unset every OTEL_* variable, the variants set their own");
    }
    let root = repo();
    let host = root.join("target/release/plugin-host");
    for (path, how) in [
        (&host, "make build"),
        (&root.join("target/plugins/hello.wasm"), "make plugins"),
    ] {
        ensure!(path.is_file(), "{} is missing: {how}", path.display());
    }
    let scratch = std::env::temp_dir().join(format!("ph-otel-cost-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("cannot create a scratch directory")?;
    let config = scratch.join("host.toml");
    std::fs::write(&config, "log = \"warn\"\n")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let sink = runtime.block_on(Sink::start())?;

    let mut cells: Vec<Vec<Cell>> = vec![Vec::new(); VARIANTS.len()];
    for round in 1..=args.rounds {
        for (i, variant) in VARIANTS.iter().enumerate() {
            let spec = spec(&host, &config, &root, &scratch, variant, &sink);
            let cell = measure(&args, &spec, variant, &sink)
                .with_context(|| format!("{} (round {round})", variant.name))?;
            eprintln!(
                "otel-cost: round {round}, {}: {:.0} req/s, {:.1} µs CPU/req, {:.0} % busy, {:.0} B exported/req",
                variant.name,
                cell.rps,
                cell.cpu_us,
                cell.busy * 100.0,
                cell.exported_bytes
            );
            cells[i].push(cell);
        }
    }
    std::fs::remove_dir_all(&scratch).ok();
    println!("{}", table(&args, &cells));
    Ok(())
}

fn spec(
    host: &Path,
    config: &Path,
    root: &Path,
    scratch: &Path,
    variant: &Variant,
    sink: &Sink,
) -> Spec {
    let mut env: Vec<(String, String)> = variant
        .env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if variant.export {
        env.push((
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            format!("http://{}", sink.addr),
        ));
    }
    host_spec(host, config, root, scratch, env)
}

fn measure(args: &Args, spec: &Spec, variant: &Variant, sink: &Sink) -> Result<Cell> {
    let running = Server::start(spec, Some(args.server_cpu))?;
    let answer = probe::get(&running.base, PATH, &[])?;
    ensure!(
        answer.status == 200 && answer.body == EXPECTED,
        "{PATH} answered {} {:?}",
        answer.status,
        answer.body
    );
    let url = format!("{}{PATH}", running.base);
    let headers: &[&str] = if variant.traced { &[TRACEPARENT] } else { &[] };
    let load = |seconds| wrk::Load {
        cpu: Some(args.client_cpu),
        threads: 1,
        connections: args.connections,
        duration: Duration::from_secs(seconds),
        headers,
    };
    if args.warmup > 0 {
        wrk::run(&url, &load(args.warmup))?;
    }
    let bytes_before = sink.bytes();
    let cpu_before = running.cpu_time()?;
    let started = Instant::now();
    let figures = wrk::run(&url, &load(args.seconds))?;
    let wall = started.elapsed();
    let cpu = running.cpu_time()?.saturating_sub(cpu_before);
    let requests = figures.requests.max(1) as f64;
    Ok(Cell {
        rps: figures.rps,
        cpu_us: cpu.as_secs_f64() * 1e6 / requests,
        busy: cpu.as_secs_f64() / wall.as_secs_f64(),
        exported_bytes: (sink.bytes() - bytes_before) as f64 / requests,
        errors: figures.errors,
    })
}

/// The median of `values` (which is not empty).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The results as a markdown table, each variant against export off.
fn table(args: &Args, cells: &[Vec<Cell>]) -> String {
    let column = |i: usize, f: fn(&Cell) -> f64| cells[i].iter().map(f).collect::<Vec<_>>();
    let base_cpu = median(column(0, |c| c.cpu_us));
    let base_rps = median(column(0, |c| c.rps));
    let mut out = format!(
        "hello ({PATH}, JSON, fresh instance), host on CPU {}, wrk -t1 -c{} on CPU {}, {} s runs after {} s warm-up, {} rounds; medians (range)\n\n\
         | variant | req/s | vs off | CPU µs/request | vs off | server core busy % | OTLP bytes/request | wrk errors |\n\
         |---|---|---|---|---|---|---|---|\n",
        args.server_cpu, args.connections, args.client_cpu, args.seconds, args.warmup, args.rounds
    );
    for (i, variant) in VARIANTS.iter().enumerate() {
        let rps = column(i, |c| c.rps);
        let cpu = column(i, |c| c.cpu_us);
        let range = |v: &[f64]| {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            format!("{lo:.1}–{hi:.1}")
        };
        let (rps_m, cpu_m) = (median(rps.clone()), median(cpu.clone()));
        let errors: u64 = cells[i].iter().map(|c| c.errors).sum();
        out.push_str(&format!(
            "| {} | {rps_m:.0} | {:.2} | {cpu_m:.1} ({}) | {:+.1} % | {:.0} | {:.0} | {errors} |\n",
            variant.name,
            rps_m / base_rps,
            range(&cpu),
            (cpu_m / base_cpu - 1.0) * 100.0,
            median(column(i, |c| c.busy)) * 100.0,
            median(column(i, |c| c.exported_bytes)),
        ));
    }
    out
}

/// The OTLP sink: counts what the exporter sends.
struct Sink {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
}

impl Sink {
    async fn start() -> Result<Self> {
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = bytes.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(body.len() as u64, Ordering::Relaxed);
                    ""
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Ok(Self { addr, bytes })
    }

    fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}
