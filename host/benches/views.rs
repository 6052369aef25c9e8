//! The HTML path against the JSON path for the same route: `GET /hello/world` answered as JSON
//! (`Accept: application/json`) and as a page through hello's view (`Accept: text/html`), alternating in
//! one run on one host. Host on CPU 0, wrk on CPU 1. Needs `make build`; run with `make bench`.
//! Prints a markdown table for docs/benchmarks.md (goal: HTML at least 50 % of JSON).

mod common;

use common::{Wrk, examples, median, scratch, start_host, wrk};

const ROUNDS: usize = 3;
const SECONDS: u32 = 10;
const CONNECTIONS: u32 = 16;

fn main() {
    let dir = scratch("views-bench");
    let host = start_host("views", "log = \"warn\"\n", &examples(), &dir);
    let url = format!("{}/hello/world", host.base);
    let forms = [
        ("JSON", "Accept: application/json"),
        ("HTML (hello.html view)", "Accept: text/html"),
    ];
    let mut runs: Vec<Vec<Wrk>> = vec![Vec::new(); forms.len()];
    for (_, accept) in forms {
        wrk(&url, CONNECTIONS, 2, &[accept]); // warm-up
    }
    for _ in 0..ROUNDS {
        for (i, (_, accept)) in forms.iter().enumerate() {
            runs[i].push(wrk(&url, CONNECTIONS, SECONDS, &[accept]));
        }
    }
    drop(host);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "| /hello/world, c{CONNECTIONS}, {SECONDS} s x {ROUNDS} rounds | median req/s | p50 ms | p99 ms | runs (req/s) |"
    );
    println!("|---|---|---|---|---|");
    let mut medians = Vec::new();
    for ((name, _), runs) in forms.iter().zip(&runs) {
        let rps = median(runs.iter().map(|r| r.rps).collect());
        let p50 = median(runs.iter().map(|r| ms(r.p50)).collect());
        let p99 = median(runs.iter().map(|r| ms(r.p99)).collect());
        let all: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.rps)).collect();
        println!(
            "| {name} | {rps:.0} | {p50:.2} | {p99:.2} | {} |",
            all.join(", ")
        );
        medians.push(rps);
    }
    println!(
        "| HTML / JSON | {:.3} | | | goal ≥ 0.5 |",
        medians[1] / medians[0]
    );
    std::fs::remove_dir_all(&dir).ok();
}
