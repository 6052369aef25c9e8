//! Plugin Host: runs REST and admin HTTP handlers as WebAssembly component plugins.
//!
//! The modules are the tiers of docs/ARCHITECTURE.md, lowest first; a module uses only its own tier
//! and the ones listed before it:
//! - [`config`], [`clock`] and [`bindings`] (the host side's one `bindgen!` of `wit/`): everything uses them;
//! - [`telemetry`]: OpenTelemetry traces — the incoming W3C trace context, a request's spans, the trace
//!   id in its log lines, `traceparent` on outbound calls, and the OTLP exporter set up from `OTEL_*`;
//! - [`accounts`]: the database and what lives in it (users, API keys, sessions, the plugins' key-value
//!   store, audit), authentication and the login limiter;
//! - [`generation`]: one loaded set of plugins, compiled once, with its own wasmtime `Engine`, routes,
//!   templates and catalogue, and the call into a plugin instance; dropped as a whole;
//! - [`cluster`]: cluster mode's shared state in PostgreSQL (the plugin set and its revision, the
//!   nodes) and this node's part in it;
//! - [`http`]: the accept loop, content negotiation and negotiated responses;
//! - [`app`]: the process — shared state, the reload coordinator, metrics, the sampler, the watcher;
//! - [`request`]: the plugin request path, from a request to its answer;
//! - [`admin`]: the admin API, sign-in and the admin web UI;
//! - [`server`]: the router over all of it, and running it;
//! - [`author`]: the plugin author's kit (new, build, call, test, dev), over a server of its own;
//! - [`cli`]: the commands.

pub mod accounts;
mod admin;
pub mod app;
pub mod author;
pub mod bindings;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
#[cfg(test)]
mod fuzz;
pub mod generation;
mod http;
mod request;
pub mod server;
pub mod telemetry;
