//! Instance reuse, measured: requests/s and latency for `instance_reuse` N = 1 (a fresh instance per
//! request, the default), 16 and 128, for hello (cheap start-up) and for the `reuse` fixture's
//! `/reuse/warm` (about a millisecond of start-up work per instance). Host on CPU 0, wrk on CPU 1. Needs
//! `make build`; run with `make bench`. Prints a markdown table for docs/benchmarks.md.

mod common;

use common::{Wrk, examples, median, repo, scratch, start_host, wrk};

const ROUNDS: usize = 3;
const SECONDS: u32 = 8;
const CONNECTIONS: u32 = 16;
const REUSE: [u32; 3] = [1, 16, 128];

fn main() {
    let dir = scratch("reuse-bench");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(examples().join("hello.wasm"), plugins.join("hello.wasm")).unwrap();
    let fixture = repo().join("target/fixtures/reuse.wasm");
    std::fs::copy(&fixture, plugins.join("reuse.wasm"))
        .expect("target/fixtures/reuse.wasm (make build)");

    let routes = [
        ("hello", "/hello/world"),
        ("costly start-up", "/reuse/warm"),
    ];
    // runs[route][n] over rounds, alternating N within each round so drift hits all alike.
    let mut runs: Vec<Vec<Vec<Wrk>>> = vec![vec![Vec::new(); REUSE.len()]; routes.len()];
    for _ in 0..ROUNDS {
        for (ni, n) in REUSE.iter().enumerate() {
            let config = format!("log = \"warn\"\n[limits]\ninstance_reuse = {n}\n");
            let host = start_host(&format!("reuse-{n}"), &config, &plugins, &dir);
            for (ri, (_, path)) in routes.iter().enumerate() {
                let url = format!("{}{path}", host.base);
                wrk(&url, CONNECTIONS, 1, &[]); // warm-up
                runs[ri][ni].push(wrk(&url, CONNECTIONS, SECONDS, &[]));
            }
        }
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "| route, c{CONNECTIONS}, {SECONDS} s x {ROUNDS} rounds | instance_reuse | median req/s | vs N=1 | p50 ms | p99 ms |"
    );
    println!("|---|---|---|---|---|---|");
    for (ri, (name, path)) in routes.iter().enumerate() {
        let base = median(runs[ri][0].iter().map(|r| r.rps).collect());
        for (ni, n) in REUSE.iter().enumerate() {
            let r = &runs[ri][ni];
            let rps = median(r.iter().map(|w| w.rps).collect());
            let p50 = median(r.iter().map(|w| ms(w.p50)).collect());
            let p99 = median(r.iter().map(|w| ms(w.p99)).collect());
            println!(
                "| {name} `{path}` | {n} | {rps:.0} | {:.2}x | {p50:.2} | {p99:.2} |",
                rps / base
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
