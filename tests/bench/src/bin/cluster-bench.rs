//! Cluster mode measured on this machine (`make bench-cluster`): a private PostgreSQL server, three
//! `plugin-host serve` nodes and haproxy, all on loopback.
//!
//! - **Convergence**: a change (disable or enable `hello`, alternately) made through node 0's API, timed
//!   from the request to the moment every node's `/readyz` reports the new revision (each node polled
//!   every millisecond), over `--changes` changes; once with notifications (the default) and once with
//!   `cluster.listen = false` and `cluster.poll_secs = 1`, i.e. the poll fallback alone (there each
//!   change first waits a different fraction of the interval, so changes land all over the nodes' poll
//!   cycles rather than just after them).
//! - **Throughput**: `wrk -t2 -c64` on `GET /hello/bench` through haproxy with 1, 2 and 3 nodes (and one
//!   node without haproxy), with the CPU time the nodes and haproxy spent per request. Two cores cannot
//!   show scaling: the figures say what a request costs, not how far a cluster goes.
//!
//! Prints markdown tables for docs/benchmarks.md.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use plugin_host_bench::cluster::{Nodes, cli, free_port, haproxy, http, revision_of, start_nodes};
use plugin_host_bench::server::{Server, cpu_time_of};
use plugin_host_bench::wrk;
use plugin_host_kit::postgres::Postgres;

#[derive(Debug, Parser)]
struct Args {
    /// Changes per convergence measurement.
    #[arg(long, default_value_t = 100)]
    changes: usize,
    /// Seconds per throughput cell.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Milliseconds from each change to every node serving it. With `spread`, each change waits a
/// different part of it first (spread evenly over the changes), so changes do not all land just after the
/// nodes' poll timers restarted (which would make every wait one whole interval).
fn convergence(nodes: &Nodes, key: &str, changes: usize, spread: Duration) -> Result<Vec<f64>> {
    let mut times = Vec::with_capacity(changes);
    for i in 0..changes {
        // 0, 0.37, 0.74, 0.11, ... of `spread` (a golden-ratio-like stride covers it evenly).
        let part = ((i * 37) % 100) as u32;
        std::thread::sleep(spread * part / 100);
        let op = if i % 2 == 0 { "disable" } else { "enable" };
        let started = Instant::now();
        let (status, body) = http(
            nodes.addrs[0],
            "POST",
            &format!("/admin/api/plugins/hello/{op}"),
            Some(key),
        )?;
        ensure!(status == 200, "{op}: {status} {body}");
        let v: serde_json::Value = serde_json::from_str(&body)?;
        let want = v["revision"].as_i64().context("no revision")?;
        for &addr in &nodes.addrs[1..] {
            let deadline = started + Duration::from_secs(60);
            while revision_of(addr) != Some(want) {
                ensure!(
                    Instant::now() < deadline,
                    "{addr} never reached revision {want}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(label: &str, mut times: Vec<f64>) -> String {
    times.sort_by(f64::total_cmp);
    format!(
        "| {label} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(0.0)
    )
}

fn throughput(label: &str, url: &str, pids: &[u32], seconds: u64) -> Result<String> {
    let before: Vec<Duration> = pids
        .iter()
        .map(|p| cpu_time_of(*p))
        .collect::<Result<_>>()?;
    let load = wrk::Load {
        cpu: None,
        threads: 2,
        connections: 64,
        duration: Duration::from_secs(seconds),
        headers: &[],
    };
    let figures = wrk::run(url, &load)?;
    let after: Vec<Duration> = pids
        .iter()
        .map(|p| cpu_time_of(*p))
        .collect::<Result<_>>()?;
    let cpu: Duration = after.iter().zip(&before).map(|(a, b)| *a - *b).sum();
    let per_request = cpu.as_secs_f64() * 1e6 / figures.requests.max(1) as f64;
    if figures.errors > 0 {
        bail!("{label}: {} errors", figures.errors);
    }
    Ok(format!(
        "| {label} | {:.0} | {:.2} ms | {:.2} ms | {per_request:.0} µs |",
        figures.rps,
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3,
    ))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("ph-cluster-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let pg = Postgres::start(&dir.join("pg"))?;
    pg.psql("postgres", "CREATE DATABASE bench")?;
    let url = pg.url("bench");
    let setup = dir.join("setup").to_str().unwrap().to_owned();
    cli(
        &[
            "user",
            "add",
            "root",
            "--admin",
            "--password-stdin",
            "--database",
            &url,
            "--data",
            &setup,
        ],
        Some("a-long-password\n"),
    )?;
    let out = cli(
        &[
            "key",
            "create",
            "--user",
            "root",
            "--database",
            &url,
            "--data",
            &setup,
        ],
        None,
    )?;
    let key = out
        .split_whitespace()
        .find(|w| w.starts_with("phk_"))
        .context("no key printed")?
        .to_owned();
    let hello = plugin_host_bench::repo().join("target/plugins/hello.wasm");
    cli(
        &[
            "plugin",
            "push",
            hello.to_str().unwrap(),
            "--database",
            &url,
            "--data",
            &setup,
        ],
        None,
    )?;

    println!("| convergence, 3 nodes | changes | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    let nodes = start_nodes(
        3,
        &url,
        &dir.join("notify"),
        "[cluster]\npoll_secs = 10\nheartbeat_ms = 2000\n",
    )?;
    println!(
        "{}",
        summary(
            "notifications (poll every 10 s)",
            convergence(&nodes, &key, args.changes, Duration::ZERO)?
        )
    );
    drop(nodes);
    let nodes = start_nodes(
        3,
        &url,
        &dir.join("poll"),
        "[cluster]\npoll_secs = 1\nheartbeat_ms = 2000\nlisten = false\n",
    )?;
    println!(
        "{}",
        summary(
            "poll alone (every 1 s)",
            convergence(&nodes, &key, args.changes, Duration::from_secs(1))?
        )
    );
    // Leave hello enabled for the throughput cells.
    if args.changes % 2 == 1 {
        http(
            nodes.addrs[0],
            "POST",
            "/admin/api/plugins/hello/enable",
            Some(&key),
        )?;
    }
    drop(nodes);

    println!();
    println!(
        "| GET /hello/bench, wrk -t2 -c64 | req/s | p50 | p99 | CPU per request (nodes + haproxy) |"
    );
    println!("|---|---|---|---|---|");
    let nodes = start_nodes(
        3,
        &url,
        &dir.join("load"),
        "[cluster]\nheartbeat_ms = 2000\n",
    )?;
    let direct = format!("http://{}/hello/bench", nodes.addrs[0]);
    println!(
        "{}",
        throughput(
            "one node, no haproxy",
            &direct,
            &[nodes.servers[0].pid()],
            args.seconds
        )?
    );
    for n in 1..=3 {
        let proxy = haproxy(&dir, &nodes.addrs[..n], free_port())?;
        let mut pids: Vec<u32> = nodes.servers[..n].iter().map(Server::pid).collect();
        pids.push(proxy.pid());
        let url = format!("http://{}/hello/bench", proxy.addr);
        println!(
            "{}",
            throughput(&format!("haproxy + {n} node(s)"), &url, &pids, args.seconds)?
        );
    }
    drop(nodes);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
