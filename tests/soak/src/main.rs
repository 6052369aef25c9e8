//! `soak`: starts the release `plugin-host` on loopback, drives a bounded mix of requests and hot
//! reloads (alternating two builds of the `soak` plugin, so every reload compiles different code),
//! samples the host's RSS, heap and live generations every K requests, and writes OUT/soak-MODE.csv,
//! OUT/soak-MODE.svg and a summary. Exit 0 only if no request or reload failed, live generations
//! returned to 1 after the load, the final RSS is within the tolerance of the warm RSS and the RSS
//! slope over the second half is within its limit.
//!
//! `--mode faults` is a fault storm: the `faults` fixture plugin is installed beside `soak`, and F of
//! the N requests go to its misbehaving routes (see src/faults.rs), each checked for its status; the
//! run also needs the host's in-flight gauge back at 0 and its fault counters to match the answers.
//!
//! `--mode reload` sends no traffic: `--reloads` reloads (20,000) one after the other through the admin
//! API or SIGHUP (`--via api|sighup`), a sample every K (100) reloads (src/reload_only.rs).
//!
//! Every mode fits a least-squares line through the RSS samples of the second half of the run and
//! reports its slope in bytes per reload (and per request in the traffic modes), with malloc's heap in
//! use beside it (src/slope.rs); the run fails above `--max-bytes-per-reload` (10 in reload mode) or
//! `--max-bytes-per-request`, as it does when final RSS is over warm by more than the tolerance.
//!
//! From the repository root, after `make build` (host + fixtures):
//!
//! ```sh
//! cargo run --release --manifest-path tests/soak/Cargo.toml --target-dir target/soak-dev -- --help
//! soak                                          # the `make soak` defaults, about 2 minutes
//! soak --requests 1000000 --reload-every 1000   # the issue's target run
//! soak --mode faults                            # 10,000 faults among 40,000 requests
//! soak --mode reload --via api                  # 20,000 reloads by the admin API, no traffic
//! soak --mode reload --via sighup               # the same by SIGHUP (no audit rows)
//! taskset -c 1 soak --pin-host 0                # tool on CPU 1, host on CPU 0
//! ```

mod admin;
mod args;
mod csv;
mod faults;
mod faults_report;
mod host;
mod latency;
mod load;
mod metrics;
mod reload;
mod reload_only;
mod report;
mod sampler;
mod slope;
mod svg;

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use reqwest::Client;
use tokio::sync::mpsc;

use admin::{Admin, Fixtures, install_as, install_plugin};
use args::{Args, Mode};
use faults::{FaultTargets, Schedule};
use faults_report::FaultsResult;
use host::{Host, HostCommand};
use load::{LoadPlan, Progress, Triggers, spawn_workers};
use reload::{Coordinator, ReloadLog};
use reload_only::ReloadRun;
use report::RunResult;
use sampler::Sampler;

/// How long live generations may take to return to 1 after the load.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);
/// Pending sample triggers (a sample takes milliseconds; this never fills in practice).
const SAMPLE_QUEUE: usize = 64;
/// One request's limit; a host that stops answering turns into transport errors, not a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(failures) if failures.is_empty() => {
            println!("\nPASS");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            println!("\nFAIL:");
            for reason in failures {
                println!("  - {reason}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("soak: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The whole soak; the reasons it failed (empty = passed).
async fn run(args: Args) -> Result<Vec<String>> {
    args.validate()?;
    if let Some(cpu) = &args.pin_client {
        pin_self(cpu).await?;
    }
    host::ensure_built(&args.host_bin)?;
    let fixtures = Fixtures::find(&args.fixtures)?;
    let run_dir = prepare_run_dir(&args, &fixtures).await?;
    let host = Host::start(HostCommand {
        bin: &args.host_bin,
        plugins_dir: &run_dir.join("plugins"),
        data_dir: &run_dir.join("data"),
        config_file: &run_dir.join(HOST_CONFIG),
        pin_cpu: args.pin_host.as_deref(),
    })
    .await
    .with_context(|| format!("run directory kept: {}", run_dir.display()))?;
    eprintln!(
        "soak: host at {}; run directory {}",
        host.base_url(),
        run_dir.display()
    );
    let client = http_client(args.concurrency)?;
    let measured = if args.mode == Mode::Reload {
        drive_reloads(&args, &host, client, &fixtures, &run_dir).await
    } else {
        drive(&args, &host, client, &fixtures, &run_dir).await
    };
    let stopped = host.stop().await?;
    let measured = measured?;
    let run = measured.into_result(args, stopped);
    let failures = write_report(&run).await?;
    if failures.is_empty() {
        tokio::fs::remove_dir_all(&run_dir).await.ok();
    } else {
        println!("run directory kept: {}", run_dir.display());
    }
    Ok(failures)
}

/// What `drive` measured, before the host is stopped.
struct Measured {
    sampler: Sampler,
    load_time: Duration,
    progress: Arc<Progress>,
    reloads: ReloadLog,
    drained_to: Option<u64>,
    /// Faults mode: `GET /metrics` after the drain.
    metrics: Option<Result<metrics::HostMetrics, String>>,
}

impl Measured {
    fn into_result(self, args: Args, host: host::Stopped) -> RunResult {
        let faults = self.metrics.map(|metrics| FaultsResult {
            counts: self.progress.faults.snapshot(),
            latency: self.sampler.fault_total.percentiles(),
            metrics,
        });
        RunResult {
            date: csv::utc_now(),
            total: self.sampler.total.percentiles(),
            samples: self.sampler.samples,
            load_time: self.load_time,
            progress: self.progress.snapshot(),
            reloads: self.reloads,
            drained_to: self.drained_to,
            drain_limit: DRAIN_LIMIT,
            sample_failures: self.sampler.failures,
            sample_failure_messages: self.sampler.failure_messages,
            host,
            args,
            faults,
        }
    }
}

/// Sample, run the workers with the reload coordinator and the sampler beside them, wait for the
/// drain, and sample once more.
async fn drive(
    args: &Args,
    host: &Host,
    client: Client,
    fixtures: &Fixtures,
    run_dir: &Path,
) -> Result<Measured> {
    let key = admin::provision_key(
        &args.host_bin,
        &run_dir.join(HOST_CONFIG),
        &run_dir.join("data"),
    )?;
    let admin = Admin::new(client.clone(), host.base_url(), key);
    check_admin(&admin).await?;
    let metrics_admin = admin.clone();
    let progress = Arc::new(Progress::default());
    let mut sampler = Sampler::new(host.rss_probe(), admin.clone(), progress.clone());
    sampler.take(0).await;
    sampler.start_clock();

    let (sample_tx, sample_rx) = mpsc::channel(SAMPLE_QUEUE);
    let (reload_tx, coordinator) = if args.reload_every > 0 {
        let (tx, rx) = mpsc::channel(1);
        let coordinator = Coordinator {
            admin,
            fixtures: fixtures.clone(),
            plugins_dir: run_dir.join("plugins"),
            progress: progress.clone(),
        };
        (Some(tx), Some(tokio::spawn(coordinator.run(rx))))
    } else {
        (None, None)
    };
    let sampler_task = tokio::spawn(sampler.run(sample_rx));
    let plan = Arc::new(load_plan(args, host.base_url()));
    let started = Instant::now();
    let triggers = Triggers {
        reload: reload_tx,
        sample: sample_tx,
    };
    let mut workers = spawn_workers(client, plan, progress.clone(), triggers);
    while let Some(worker) = workers.join_next().await {
        worker.context("a load worker panicked")?;
    }
    let load_time = started.elapsed();

    let reloads = match coordinator {
        Some(task) => task.await.context("the reload coordinator panicked")?,
        None => ReloadLog::default(),
    };
    let mut sampler = sampler_task.await.context("the sampler panicked")?;
    let drained_to = sampler.wait_for_drain(DRAIN_LIMIT).await;
    let metrics = match args.mode {
        Mode::Faults => Some(
            metrics::wait_for_idle(&metrics_admin, "faults", DRAIN_LIMIT)
                .await
                .map_err(|e| format!("{e:#}")),
        ),
        _ => None,
    };
    sampler.take(progress.snapshot().completed).await;
    Ok(Measured {
        sampler,
        load_time,
        progress,
        reloads,
        drained_to,
        metrics,
    })
}

/// Reload mode: sample, reload N times one after the other (sampling every K), wait for the drain, and
/// sample once more.
async fn drive_reloads(
    args: &Args,
    host: &Host,
    client: Client,
    fixtures: &Fixtures,
    run_dir: &Path,
) -> Result<Measured> {
    let key = admin::provision_key(
        &args.host_bin,
        &run_dir.join(HOST_CONFIG),
        &run_dir.join("data"),
    )?;
    let admin = Admin::new(client, host.base_url(), key);
    check_admin(&admin).await?;
    let progress = Arc::new(Progress::default());
    let mut sampler = Sampler::new(host.rss_probe(), admin.clone(), progress.clone());
    sampler.take(0).await;
    sampler.start_clock();
    let started = Instant::now();
    let run = ReloadRun {
        admin,
        via: args.via,
        host_pid: host.pid(),
        reloads: args.reloads,
        sample_every: args.sample_every,
        swap: args
            .swap_builds
            .then(|| (fixtures.clone(), run_dir.join("plugins"))),
        progress: progress.clone(),
        max_duration: Duration::from_secs(args.max_seconds),
    };
    let reloads = run.run(&mut sampler).await?;
    let load_time = started.elapsed();
    let drained_to = sampler.wait_for_drain(DRAIN_LIMIT).await;
    sampler.take(0).await;
    Ok(Measured {
        sampler,
        load_time,
        progress,
        reloads,
        drained_to,
        metrics: None,
    })
}

/// The host must have the generations endpoint: live generations are half of what the soak checks.
async fn check_admin(admin: &Admin) -> Result<()> {
    if !admin.has_generations_endpoint().await? {
        bail!(
            "the host answers 404 to GET /admin/api/generations: it needs the admin API (hot reload)"
        );
    }
    Ok(())
}

fn load_plan(args: &Args, base_url: &str) -> LoadPlan {
    let faults = (args.mode == Mode::Faults)
        .then(|| FaultTargets::new(base_url, Schedule::new(args.requests, args.fault_requests)));
    let (path, accept) = match args.mode {
        Mode::Html => ("/status", Some(BROWSER_ACCEPT)),
        Mode::Json | Mode::Faults | Mode::Reload => ("/soak", None),
    };
    LoadPlan {
        url: format!("{base_url}{path}"),
        accept,
        faults,
        requests: args.requests,
        concurrency: args.concurrency,
        reload_every: args.reload_every,
        sample_every: args.sample_every,
        max_duration: Duration::from_secs(args.max_seconds),
    }
}

/// CSV and SVG into OUT, the summary and the benchmarks row on stdout; the failure reasons.
async fn write_report(run: &RunResult) -> Result<Vec<String>> {
    let axis = run.args.axis();
    let rss = report::rss_figures(&run.samples, run.args.warmup, axis);
    let slopes = report::slopes(&run.samples, axis);
    let name = match run.args.mode {
        Mode::Reload => format!("reload-{}", run.args.via.name()),
        mode => mode.name().to_owned(),
    };
    let csv_path = run.args.out.join(format!("soak-{name}.csv"));
    let svg_path = run.args.out.join(format!("soak-{name}.svg"));
    let csv = csv::render(&run.samples, run.faults.is_some(), &slopes);
    write_file(&csv_path, csv).await?;
    let title = report::title(&run.args, &run.date);
    let chart = svg::ChartInput {
        title: &title,
        samples: &run.samples,
        warm_rss_bytes: rss.warm.map(|(_, bytes)| bytes),
        tolerance_pct: run.args.rss_tolerance_pct,
        warmup: run.args.warmup,
        axis,
        slope: slopes.rss(axis),
    };
    write_file(&svg_path, svg::render(&chart)).await?;
    report::print_summary(run, &rss, &slopes);
    println!(
        "wrote        {} and {}",
        csv_path.display(),
        svg_path.display()
    );
    println!(
        "\nfor docs/benchmarks.md:\n{}",
        report::markdown(run, &rss, &slopes)
    );
    Ok(report::failures(run, &rss, &slopes))
}

async fn write_file(path: &Path, contents: String) -> Result<()> {
    tokio::fs::write(path, contents)
        .await
        .with_context(|| format!("writing {}", path.display()))
}

/// What a browser (and many load balancers' HTML checks) send as `Accept`.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The host's configuration file inside the run directory.
const HOST_CONFIG: &str = "host.toml";

/// OUT/run-UNIXTIME/{plugins,data}, with build a of the soak plugin installed as soak.wasm (and in
/// faults mode the faults plugin as faults.wasm), and the host's configuration file.
async fn prepare_run_dir(args: &Args, fixtures: &Fixtures) -> Result<PathBuf> {
    let out = args.out.as_path();
    let unix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let run_dir = out.join(format!("run-{unix}"));
    tokio::fs::create_dir_all(out)
        .await
        .with_context(|| format!("creating {}", out.display()))?;
    tokio::fs::create_dir(&run_dir).await.with_context(|| {
        format!(
            "creating {} (another soak started this second?)",
            run_dir.display()
        )
    })?;
    for sub in ["plugins", "data"] {
        tokio::fs::create_dir(run_dir.join(sub)).await?;
    }
    install_plugin(&run_dir.join("plugins"), &fixtures.a).await?;
    if args.mode == Mode::Faults {
        let build = faults::fixture(&args.fixtures)?;
        install_as(&run_dir.join("plugins"), &build, faults::FAULTS_FILE).await?;
    }
    if args.mode == Mode::Html {
        let status = args.examples.join("status.wasm");
        anyhow::ensure!(
            status.is_file(),
            "{} is missing; run `make build` first",
            status.display()
        );
        install_as(&run_dir.join("plugins"), &status, "status.wasm").await?;
    }
    tokio::fs::write(run_dir.join(HOST_CONFIG), host_config(args)?).await?;
    Ok(run_dir)
}

/// No compile cache: every reload must compile the other build's code, not read it back from disk —
/// except in reload mode, which measures what a reload leaves behind, not the compiler, and needs
/// 20,000 of them to take minutes (with the cache a reload takes milliseconds). Html mode names the
/// templates directory (every reload parses it again). Faults mode adds the faults plugin's short
/// deadline and small memory cap (a TOML table, so last).
fn host_config(args: &Args) -> Result<String> {
    let mut config = String::new();
    if args.mode != Mode::Reload {
        config.push_str("compile_cache = false\n");
    }
    if args.mode == Mode::Html {
        let dir = std::fs::canonicalize(&args.templates)
            .with_context(|| format!("templates directory {}", args.templates.display()))?;
        let dir = dir.display().to_string();
        let quoted = dir.replace('\\', "\\\\").replace('"', "\\\"");
        config.push_str(&format!("templates_dir = \"{quoted}\"\n"));
    }
    if args.mode == Mode::Faults {
        config.push_str(faults::HOST_CONFIG_SECTION);
    }
    Ok(config)
}

/// One keep-alive client for everything: loopback only, so no proxy.
fn http_client(concurrency: usize) -> Result<Client> {
    Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency + 4)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .context("building the HTTP client")
}

/// Pin every thread of this process to `cpu` (`taskset -a -p -c CPU PID`).
async fn pin_self(cpu: &str) -> Result<()> {
    let status = tokio::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpu, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .await
        .context("running taskset")?;
    if !status.success() {
        bail!("taskset -a -p -c {cpu} failed: {status}");
    }
    Ok(())
}
