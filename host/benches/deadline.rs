//! What deadlines cost: hello's requests/s through the real binary with epoch interruption on and off,
//! alternating in one run. The host is pinned to CPU 0 and wrk (Debian package) to CPU 1. Needs
//! `make build` first; run with `make bench`. Prints a markdown table for docs/benchmarks.md.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const ROUNDS: usize = 3;
const SECONDS: u32 = 10;
const CONNECTIONS: u32 = 16;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// Start the release host with `deadlines` on or off; returns the child and its address.
fn start_host(deadlines: bool, dir: &Path) -> (Child, String) {
    let config = dir.join(format!("deadlines-{deadlines}.toml"));
    std::fs::write(
        &config,
        format!("log = \"warn\"\n[limits]\ndeadlines = {deadlines}\n"),
    )
    .unwrap();
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(repo().join("target/release/plugin-host"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--plugins")
        .arg(repo().join("target/plugins"))
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
    let addr = line
        .trim_start_matches("plugin-host listening on ")
        .to_owned();
    (child, addr)
}

/// Run wrk against `url` for `seconds`; returns requests per second.
fn wrk(url: &str, seconds: u32) -> f64 {
    let out = Command::new("taskset")
        .args(["-c", "1", "wrk", "-t1"])
        .arg(format!("-c{CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg(url)
        .output()
        .expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ph-deadline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for deadlines in [true, false] {
            let (mut child, addr) = start_host(deadlines, &dir);
            let url = format!("{addr}/hello/world");
            wrk(&url, 2); // warm-up
            let rps = wrk(&url, SECONDS);
            child.kill().ok();
            child.wait().ok();
            if deadlines {
                on.push(rps)
            } else {
                off.push(rps)
            }
        }
    }
    let (on_m, off_m) = (median(on.clone()), median(off.clone()));
    println!("| hello, c{CONNECTIONS}, {SECONDS} s x {ROUNDS} rounds | median req/s | runs |");
    println!("|---|---|---|");
    println!("| deadlines on (epoch interruption, 1 ms ticker) | {on_m:.0} | {on:.0?} |");
    println!("| deadlines off | {off_m:.0} | {off:.0?} |");
    println!("| on / off | {:.3} | |", on_m / off_m);
    std::fs::remove_dir_all(&dir).ok();
}
