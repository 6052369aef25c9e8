//! Reload cost: building a generation of 20 plugins with a cold compile cache (every plugin compiled)
//! and with a warm one (every plugin read from the cache). Needs `make plugins` first; run with
//! `make bench`. Prints a markdown table for docs/benchmarks.md.
//!
//! The 20 plugins are the `bulk` fixture with the marker `bulk-00` in its bytes rewritten to `bulk-01`,
//! `bulk-02`, ... (same length): distinct names, routes and content hashes, so nothing is shared.

use std::path::Path;
use std::time::{Duration, Instant};

use plugin_host::config::Config;
use plugin_host::generation::Generation;

const PLUGINS: usize = 20;
const COLD_RUNS: usize = 5;
const WARM_RUNS: usize = 15;

fn replace_all(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = haystack.to_vec();
    let mut i = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn build(runtime: &tokio::runtime::Runtime, plugins: &Path, data: &Path) -> Duration {
    let mut config = Config::defaults();
    config.plugins_dir = plugins.to_owned();
    config.data_dir = data.to_owned();
    let started = Instant::now();
    let generation = runtime
        .block_on(Generation::build(2, &config))
        .expect("generation builds");
    let elapsed = started.elapsed();
    assert_eq!(generation.plugins.len(), PLUGINS);
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/fixtures/bulk.wasm");
    let bytes = std::fs::read(fixture).expect("build the fixtures first: make plugins");
    let root = std::env::temp_dir().join(format!("ph-reload-bench-{}", std::process::id()));
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for i in 0..PLUGINS {
        let name = format!("bulk-{i:02}");
        let variant = replace_all(&bytes, b"bulk-00", name.as_bytes());
        std::fs::write(plugins.join(format!("{name}.wasm")), variant).unwrap();
    }

    let cold: Vec<Duration> = (0..COLD_RUNS)
        .map(|run| build(&runtime, &plugins, &root.join(format!("cold-{run}"))))
        .collect();
    let warm_data = root.join("warm");
    build(&runtime, &plugins, &warm_data);
    let warm: Vec<Duration> = (0..WARM_RUNS)
        .map(|_| build(&runtime, &plugins, &warm_data))
        .collect();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| reload of {PLUGINS} plugins | median | min | max | runs |");
    println!("|---|---|---|---|---|");
    for (label, runs) in [
        ("cold cache (all compiled)", &cold),
        ("warm cache (all cached)", &warm),
    ] {
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
            ms(median(runs.clone())),
            ms(*runs.iter().min().unwrap()),
            ms(*runs.iter().max().unwrap()),
            runs.len()
        );
    }
    std::fs::remove_dir_all(&root).ok();
}
