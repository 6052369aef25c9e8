//! What deadlines cost: hello's requests/s through the real binary with epoch interruption on and off,
//! alternating in one run. The host is pinned to CPU 0 and wrk (Debian package) to CPU 1. Needs
//! `make build` first; run with `make bench`. Prints a markdown table for docs/benchmarks.md.

mod common;

use common::{examples, median, scratch, start_host, wrk};

const ROUNDS: usize = 3;
const SECONDS: u32 = 10;
const CONNECTIONS: u32 = 16;

fn main() {
    let dir = scratch("deadline-bench");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        for deadlines in [true, false] {
            let config = format!("log = \"warn\"\n[limits]\ndeadlines = {deadlines}\n");
            let host = start_host(
                &format!("deadlines-{deadlines}"),
                &config,
                &examples(),
                &dir,
            );
            let url = format!("{}/hello/world", host.base);
            wrk(&url, CONNECTIONS, 2, &[]); // warm-up
            let rps = wrk(&url, CONNECTIONS, SECONDS, &[]).rps;
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
