//! Integration tests: the real server on 127.0.0.1:0, real HTTP, real plugin components.
//! `make test` builds the plugins and fixtures these tests load.

mod accounts;
mod admin_accounts;
mod admin_ui;
mod browser;
mod check;
mod crash;
mod faults;
mod kv;
mod reload;
mod reuse;
mod serve;
mod startup;
mod views;
