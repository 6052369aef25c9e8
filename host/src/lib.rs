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
//! Accounts and storage live in one database ([`db`]): users ([`accounts`]), API keys ([`keys`]),
//! browser [`sessions`], the plugins' key-value store ([`kv`]) and the [`audit`] log. [`auth`] decides
//! who a request comes from and what it may do; [`login`], [`bootstrap`] and [`admin_accounts`] serve
//! browser sessions, the first admin and the accounts API; [`cli_accounts`] the `user` and `key` commands.
//!
//! The admin web UI: [`admin_ui`] (access rules, dashboard, routes, audit), [`admin_plugins`] (with the
//! plugin directory changes in [`deploy`]) and [`admin_people`] (users, keys); the dashboard reads the
//! [`sampler`]'s last hour and draws it with [`chart`].
//!
//! The plugin contract lives in `wit/`; [`bindings`] is the host side's one `bindgen!`.

pub mod accounts;
pub mod admin;
pub mod admin_accounts;
pub mod admin_people;
pub mod admin_plugins;
pub mod admin_ui;
pub mod alloc;
pub mod audit;
pub mod auth;
pub mod bindings;
pub mod bootstrap;
pub mod cache;
pub mod catalogue;
pub mod chart;
pub mod cli;
pub mod cli_accounts;
pub mod clock;
pub mod config;
pub mod db;
pub mod deploy;
pub mod dispatch;
pub mod engine;
pub mod generation;
pub mod invoke;
pub mod keys;
pub mod kv;
pub mod listener;
pub mod login;
pub mod manifest;
pub mod metrics;
pub mod negotiate;
pub mod plugin;
pub mod ratelimit;
pub mod respond;
pub mod routes;
pub mod sampler;
pub mod server;
pub mod sessions;
pub mod state;
pub mod views;
pub mod warm;
pub mod watch;
