//! Integration tests: the real server on 127.0.0.1:0, real HTTP, real plugin components.
//! `make test` builds the plugins and fixtures these tests load.

/// `on_both_backends! { async fn name() { ... } }`: the test body runs twice, as `name::sqlite` and
/// `name::postgres`, each inside [`plugin_host_tests::Backend::scope`], so every server and CLI run it
/// starts uses that database backend.
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                plugin_host_tests::Backend::Sqlite.scope(async $body).await
            }

            #[tokio::test]
            async fn postgres() {
                plugin_host_tests::Backend::Postgres.scope(async $body).await
            }
        }
    };
}

mod accounts;
mod admin_accounts;
mod admin_ui;
mod browser;
mod check;
mod cluster;
mod crash;
mod deploy_api;
mod faults;
mod hardening;
mod kit;
mod kv;
mod last_good;
mod openapi;
mod operations;
mod origin;
mod outbound;
mod reload;
mod reuse;
mod serve;
mod startup;
mod telemetry;
mod views;
