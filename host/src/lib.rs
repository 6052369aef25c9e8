//! Plugin Host: runs REST and admin HTTP handlers as WebAssembly component plugins.
//!
//! The crate is organised around three lifetimes (see docs/ARCHITECTURE.md):
//! - the **process**: [`config`], the HTTP [`server`] and its request-id/tracing layer, the shared
//!   [`state`] with the reload coordinator, [`metrics`], the [`admin`] API and the directory [`watch`]er;
//! - a **generation** ([`generation`]): one wasmtime `Engine` ([`engine`]), every plugin compiled once
//!   and pre-linked ([`plugin`], through the on-disk compile [`cache`]), their manifests ([`manifest`]),
//!   the route table ([`routes`]), the parsed templates ([`views`]) and the route [`catalogue`];
//!   immutable once built and dropped as a whole when the last request using it ends;
//! - a **request** ([`dispatch`], [`invoke`]): a fresh `Store` and a pooled instance, dropped when the
//!   call returns; the answer in the format the client asked for ([`negotiate`], [`respond`]).
//!
//! The plugin contract lives in `wit/`; [`bindings`] is the host side's one `bindgen!`.

pub mod admin;
pub mod alloc;
pub mod bindings;
pub mod cache;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod generation;
pub mod invoke;
pub mod listener;
pub mod manifest;
pub mod metrics;
pub mod negotiate;
pub mod plugin;
pub mod respond;
pub mod routes;
pub mod server;
pub mod state;
pub mod views;
pub mod warm;
pub mod watch;
