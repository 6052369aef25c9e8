//! The side-by-side benchmark (issue 7): the same `GET /hello/world` answered by
//!
//! 1. `native-hello`, a plain axum handler (the limit: our HTTP stack without a plugin call);
//! 2. Plugin Host running the `hello` plugin, JSON (`Accept: application/json`);
//! 3. Plugin Host, the same route as a page through hello's view (`Accept: text/html`);
//! 4. `wasmtime serve` (wasmtime-cli 48.0.8, its defaults) running `wasi-hello`, a
//!    `wasi:http/incoming-handler` component giving the same JSON (plugins/wasi-hello).
//!
//! Each server runs on CPU 0 and wrk (one thread) on CPU 1, so client and server do not compete on the
//! two cores. Every (server, concurrency) pair gets a fresh server process, a warm-up, then the measured
//! wrk run; its peak RSS (`VmHWM`) is read just before it is stopped. Before measuring, each server's
//! answer is checked against the hello plugin's JSON, so the four really do the same work.
//!
//! Components:
//! - [`server`]: start a program pinned to a CPU and find its address in what it prints;
//! - [`wrk`]: run wrk pinned to a CPU and read its figures;
//! - [`probe`]: one plain HTTP/1.0 GET, for the answer checks;
//! - [`report`]: the markdown table, the ratios against the goals, and the SVG chart.

pub mod probe;
pub mod report;
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
