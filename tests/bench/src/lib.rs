//! The side-by-side benchmark (issues 7 and 16): the same `GET /hello/world` answered by
//!
//! 1. `native-hello`, a plain axum handler (the limit: our HTTP stack without a plugin call);
//! 2. Plugin Host running the `hello` plugin, JSON (`Accept: application/json`), a fresh instance per
//!    request;
//! 3. Plugin Host, the same route as a page through hello's view (`Accept: text/html`);
//! 4. Plugin Host, JSON, with `instance_reuse = 128` for hello;
//! 5. `wasmtime serve` (wasmtime-cli 48.0.8, its defaults: a fresh instance per request) running
//!    `wasi-hello`, a `wasi:http/incoming-handler` component giving the same JSON (plugins/wasi-hello);
//! 6. `wasmtime serve --max-instance-reuse-count 128`.
//!
//! Each server runs on CPU 0 and wrk (one thread) on CPU 1, so client and server do not compete on the
//! two cores. Every (row, concurrency) pair gets a fresh server process, a warm-up, then the measured
//! wrk run, during which the server's CPU time (so its CPU per request and how busy its core was) and
//! its memory syscalls (perf) are counted; its peak RSS (`VmHWM`) is read just before it is stopped.
//! Before measuring, each server's answer is checked against the hello plugin's JSON, so the rows
//! really do the same work. A last, unpinned cell has the shape of the seed service's traffic: Plugin
//! Host's `/status` as HTML under `wrk -t2 -c16`.
//!
//! Components:
//! - [`rows`]: the rows, their names and how each is asked;
//! - [`server`]: start a program (pinned to a CPU or not) and find its address in what it prints;
//! - [`wrk`]: run wrk and read its figures;
//! - [`perf`]: count a server's memory syscalls with `perf stat`;
//! - [`probe`]: one plain HTTP/1.0 GET, for the answer checks;
//! - [`report`]: the markdown tables (measurements, ratios against the goals, the seed-shape cell);
//! - [`chart`]: the SVG chart.

pub mod chart;
pub mod cluster;
pub mod perf;
pub mod probe;
pub mod report;
pub mod rows;
pub mod server;
pub mod wrk;

use std::path::{Path, PathBuf};

/// The repository root (this crate is `tests/bench`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/bench sits two levels below the repository root")
        .to_owned()
}
