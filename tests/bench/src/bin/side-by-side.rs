//! The side-by-side benchmark (issues 7 and 16): native axum, Plugin Host (JSON and HTML with a fresh
//! instance per request, JSON with `instance_reuse = 128`) and `wasmtime serve` (its defaults, and
//! with `--max-instance-reuse-count 128`) answering `GET /hello/world` at several wrk concurrencies,
//! then the seed-shape cell (Plugin Host's `/status` as HTML, `wrk -t2 -c16`, nothing pinned), in one
//! invocation. See the crate docs (tests/bench/src/lib.rs) for the method and docs/benchmarks.md for
//! results.
//!
//! Run with `make bench-side` (builds everything, installs wasmtime-cli 48.0.8 into target/tools when it
//! is missing). A quick run: `target/release/side-by-side --seconds 2 --warmup 1`; one row only:
//! `--only json --connections 64 --no-seed`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use plugin_host_bench::report::{self, Measurement, Sample};
use plugin_host_bench::rows::{REUSE, Row};
use plugin_host_bench::server::{Server, Spec, host_spec};
use plugin_host_bench::{chart, perf, probe, repo, wrk};

/// The body every server must give for [`PATH`] (the hello plugin's answer).
const EXPECTED_JSON: &str = r#"{"message":"hello, world"}"#;
const PATH: &str = "/hello/world";
/// The seed-shape cell: the status plugin's page, as a browser or a health check asks for it.
const SEED_PATH: &str = "/status";
const SEED_THREADS: u32 = 2;
const SEED_CONNECTIONS: u32 = 16;

#[derive(Debug, Parser)]
#[command(
    about = "Native axum, Plugin Host (fresh and reused instances, JSON, HTML) and wasmtime serve side by side, with wrk"
)]
struct Args {
    /// Seconds of each measured wrk run (the seed-shape cell's too).
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Seconds of wrk warm-up against each fresh server before it is measured.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// wrk connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    connections: Vec<u32>,
    /// The rows to run, comma-separated (default: all of them).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Row::ALL.to_vec())]
    only: Vec<Row>,
    /// Skip the seed-shape cell (Plugin Host's /status as HTML, wrk -t2 -c16, unpinned).
    #[arg(long)]
    no_seed: bool,
    /// Do not count memory syscalls with perf (their columns show "—").
    #[arg(long)]
    no_perf: bool,
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
    let scratch = std::env::temp_dir().join(format!("ph-side-by-side-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).context("cannot create a scratch directory")?;
    let rows: Vec<Row> = Row::ALL
        .into_iter()
        .filter(|r| args.only.contains(r))
        .collect();
    let specs = Specs::new(&args, &root, &scratch)?;
    let row_specs: Vec<(Row, Result<Spec, String>)> =
        rows.iter().map(|&r| (r, specs.for_row(r))).collect();
    preflight(&args, &row_specs)?;
    let counting = perf_available(&args);

    let measurements = measure_rows(&args, &row_specs, &counting);
    let seed = (!args.no_seed).then(|| measure_seed(&args, &specs.host, &counting));
    std::fs::remove_dir_all(&scratch).ok();
    write_report(&args, &root, &rows, &measurements, seed.as_ref())
}

/// How to start each server: the three server programs, with the host in two configurations.
struct Specs {
    native: Spec,
    /// Plugin Host with a fresh instance per request (its default).
    host: Spec,
    /// Plugin Host with `instance_reuse = REUSE` for hello.
    host_reuse: Spec,
    /// `wasmtime serve`'s command without its reuse flag and component, or why it cannot run.
    wasmtime: Result<(String, String), String>,
}

impl Specs {
    fn new(args: &Args, root: &Path, scratch: &Path) -> Result<Self> {
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
        // Logging at `warn`, as in the other wrk benches: at the default `info` the host writes one
        // line per request, which no other server does.
        let fresh = write_config(scratch, "host.toml", "")?;
        let reuse = format!("\n[plugins.hello]\ninstance_reuse = {REUSE}\n");
        let reused = write_config(scratch, "host-reuse.toml", &reuse)?;
        Ok(Self {
            native: Spec {
                command: vec![path(&native)],
                env: Vec::new(),
                ready_prefix: "native-hello listening on ".into(),
            },
            host: host_spec(&host, &fresh, root, scratch, Vec::new()),
            host_reuse: host_spec(&host, &reused, root, scratch, Vec::new()),
            wasmtime: wasmtime_command(args, root),
        })
    }

    fn for_row(&self, row: Row) -> Result<Spec, String> {
        match row {
            Row::Native => Ok(self.native.clone()),
            Row::Json | Row::Html => Ok(self.host.clone()),
            Row::JsonReuse => Ok(self.host_reuse.clone()),
            Row::Wasmtime => self.wasmtime_spec(&[]),
            Row::WasmtimeReuse => {
                self.wasmtime_spec(&["--max-instance-reuse-count".into(), REUSE.to_string()])
            }
        }
    }

    /// `wasmtime serve --addr 127.0.0.1:0 [extra] COMPONENT`. Its defaults otherwise
    /// (docs/benchmarks.md lists them for 48.0.8): a fresh instance per request, as Plugin Host does.
    fn wasmtime_spec(&self, extra: &[String]) -> Result<Spec, String> {
        let (wasmtime, component) = self.wasmtime.clone()?;
        let mut command = vec![
            wasmtime,
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
        ];
        command.extend_from_slice(extra);
        command.push(component);
        Ok(Spec {
            command,
            env: Vec::new(),
            ready_prefix: "Serving HTTP on ".into(),
        })
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A host configuration file in `scratch`: `log = "warn"`, then `more`.
fn write_config(scratch: &Path, name: &str, more: &str) -> Result<PathBuf> {
    let config = scratch.join(name);
    std::fs::write(&config, format!("log = \"warn\"\n{more}"))
        .with_context(|| format!("cannot write {}", config.display()))?;
    Ok(config)
}

/// The wasmtime CLI and the wasi:http hello, or the "not run: ..." their rows show.
fn wasmtime_command(args: &Args, root: &Path) -> Result<(String, String), String> {
    let wasmtime = root.join(&args.wasmtime);
    let component = root.join(&args.component);
    if !wasmtime.is_file() {
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
        Ok((path(&wasmtime), path(&component)))
    }
}

/// Start each row's server once and check its answer before anything is measured, so a wrong answer
/// fails in seconds rather than after minutes of load. This also fills Plugin Host's compile cache (in
/// the scratch data directory), so each measured host start reads its plugins from the cache as a
/// restarted production host does, and its peak RSS does not depend on whether it ran first.
fn preflight(args: &Args, specs: &[(Row, Result<Spec, String>)]) -> Result<()> {
    for (row, spec) in specs {
        let Ok(spec) = spec else { continue };
        let running = Server::start(spec, Some(args.server_cpu))?;
        check_answer(&running.base, *row)
            .with_context(|| format!("{} answers wrongly", row.name()))?;
    }
    Ok(())
}

/// `Ok` when perf can count memory syscalls here, else why not (said once, here and under the table).
fn perf_available(args: &Args) -> Result<(), String> {
    if args.no_perf {
        return Err("--no-perf was given".to_owned());
    }
    perf::check().map_err(|e| {
        let why = format!("perf cannot count them here: {e:#}");
        eprintln!("side-by-side: memory syscalls will not be counted: {why}");
        why
    })
}

/// Every selected row at every concurrency, pinned, each on a fresh server.
fn measure_rows(
    args: &Args,
    specs: &[(Row, Result<Spec, String>)],
    counting: &Result<(), String>,
) -> Vec<Measurement> {
    let mut measurements = Vec::new();
    for &connections in &args.connections {
        for (row, spec) in specs {
            let row = *row;
            eprintln!("side-by-side: {} at c{connections}", row.name());
            let check = |base: &str| check_answer(base, row);
            let cell = Cell {
                pin: Some((args.server_cpu, args.client_cpu)),
                threads: 1,
                connections,
                path: PATH,
                accept: row.accept(),
                check: &check,
            };
            let outcome = match spec {
                Ok(spec) => run_cell(args, spec, &cell, counting, row.name()),
                Err(why) => Err(why.clone()),
            };
            measurements.push(Measurement {
                row,
                connections,
                outcome,
            });
        }
    }
    measurements
}

/// The seed-shape cell: the fresh-instance host, `/status` as HTML, `wrk -t2 -c16`, nothing pinned.
fn measure_seed(args: &Args, host: &Spec, counting: &Result<(), String>) -> Result<Sample, String> {
    eprintln!("side-by-side: seed shape ({SEED_PATH} as HTML, unpinned)");
    let cell = Cell {
        pin: None,
        threads: SEED_THREADS,
        connections: SEED_CONNECTIONS,
        path: SEED_PATH,
        accept: "Accept: text/html",
        check: &check_status_page,
    };
    run_cell(args, host, &cell, counting, "seed shape")
}

/// [`measure`], its outcome told on stderr (the tables come at the end of a long run).
fn run_cell(
    args: &Args,
    spec: &Spec,
    cell: &Cell<'_>,
    counting: &Result<(), String>,
    name: &str,
) -> Result<Sample, String> {
    match measure(args, spec, cell, counting) {
        Ok(s) => {
            eprintln!(
                "side-by-side:   {:.0} req/s, {:.1} µs CPU/req, server {:.0} % of a core busy",
                s.figures.rps,
                s.cpu_per_request.as_secs_f64() * 1e6,
                s.busy * 100.0
            );
            if let Err(why) = &s.syscalls
                && counting.is_ok()
            {
                eprintln!("side-by-side:   memory syscalls not counted: {why}");
            }
            Ok(s)
        }
        Err(e) => {
            eprintln!("side-by-side: {name} failed: {e:#}");
            Err(format!("failed: {e}"))
        }
    }
}

/// Where one measured cell runs and what it asks.
struct Cell<'a> {
    /// (server CPU, wrk CPU), or `None` to pin neither.
    pin: Option<(u32, u32)>,
    /// wrk threads and connections.
    threads: u32,
    connections: u32,
    path: &'a str,
    accept: &'a str,
    /// Checks a fresh server's answer before it is loaded.
    check: &'a dyn Fn(&str) -> Result<()>,
}

/// Start a fresh server, check its answer, warm it up, then measure: wrk's figures, the server's CPU
/// time and memory syscalls over the measured run, its peak RSS.
fn measure(
    args: &Args,
    spec: &Spec,
    cell: &Cell<'_>,
    counting: &Result<(), String>,
) -> Result<Sample> {
    let running = Server::start(spec, cell.pin.map(|(server, _)| server))?;
    (cell.check)(&running.base)?;
    let url = format!("{}{}", running.base, cell.path);
    let headers = [cell.accept];
    let load = |seconds| wrk::Load {
        cpu: cell.pin.map(|(_, client)| client),
        threads: cell.threads,
        connections: cell.connections,
        duration: Duration::from_secs(seconds),
        headers: &headers,
    };
    if args.warmup > 0 {
        wrk::run(&url, &load(args.warmup))?;
    }
    let syscalls = counting
        .clone()
        .and_then(|()| perf::Counting::start(running.pid()).map_err(|e| format!("{e:#}")));
    let cpu_before = running.cpu_time()?;
    let started = Instant::now();
    let figures = wrk::run(&url, &load(args.seconds))?;
    let wall = started.elapsed();
    let cpu = running.cpu_time()?.saturating_sub(cpu_before);
    let syscalls = syscalls.and_then(|c| c.stop().map_err(|e| format!("{e:#}")));
    Ok(Sample {
        figures,
        peak_rss: running.peak_rss()?,
        cpu_per_request: cpu / u32::try_from(figures.requests.max(1)).unwrap_or(u32::MAX),
        busy: cpu.as_secs_f64() / wall.as_secs_f64(),
        syscalls,
    })
}

/// The server gives the hello plugin's JSON, or (for the HTML row) a page with the greeting.
fn check_answer(base: &str, row: Row) -> Result<()> {
    let answer = probe::get(base, PATH, &[row.accept()])?;
    ensure!(
        answer.status == 200,
        "{base}{PATH} answered {}: {}",
        answer.status,
        answer.body
    );
    let content_type = answer.header("content-type").unwrap_or_default();
    if row == Row::Html {
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

/// The host gives the status plugin's page (its view, not the JSON) for the seed-shape cell.
fn check_status_page(base: &str) -> Result<()> {
    let answer = probe::get(base, SEED_PATH, &["Accept: text/html"])?;
    let content_type = answer.header("content-type").unwrap_or_default();
    ensure!(
        answer.status == 200
            && content_type.starts_with("text/html")
            && answer.body.contains("plugin-host is"),
        "{base}{SEED_PATH} gave no status page ({} {content_type}): {}",
        answer.status,
        answer.body
    );
    Ok(())
}

/// Print the tables, and write them and the chart.
fn write_report(
    args: &Args,
    root: &Path,
    rows: &[Row],
    measurements: &[Measurement],
    seed: Option<&Result<Sample, String>>,
) -> Result<()> {
    let mut tables = report::markdown(measurements, &args.connections);
    if let Some(seed) = seed {
        let label = format!(
            "Plugin Host, GET {SEED_PATH} as HTML, wrk -t{SEED_THREADS} -c{SEED_CONNECTIONS}, nothing pinned"
        );
        tables.push('\n');
        tables.push_str(&report::seed_markdown(&label, seed));
    }
    println!("{tables}");
    let title = format!(
        "GET /hello/world: servers on CPU {}, wrk -t1 on CPU {}, {} s per run",
        args.server_cpu, args.client_cpu, args.seconds
    );
    let svg = chart::svg(&title, rows, measurements, &args.connections);
    for (path, text) in [
        (root.join(&args.markdown), tables),
        (root.join(&args.svg), svg),
    ] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("side-by-side: wrote {}", path.display());
    }
    Ok(())
}
