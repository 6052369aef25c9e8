//! Host-side bindings for the plugin contract in `wit/` (the host's one `bindgen!`).
//!
//! Exports are async so that a plugin call runs on a wasmtime fiber inside a tokio task and yields at
//! every epoch tick: a long-running plugin never blocks tokio's worker threads. The imports log, config,
//! clock and random are cheap and synchronous; `kv` (it waits for the database) and `http-client` (it
//! waits for an upstream) are async, so while a plugin waits on them its fiber is suspended and the tokio
//! worker serves other requests. `http-client.send` may also trap: when the request's deadline passes
//! during the wait, the call ends there with the 504 a looping plugin would get.
//!
//! The contract is `plugin-host:plugin@1.1.0`. A plugin built against 1.0.0 imports `...@1.0.0`
//! interfaces; wasmtime's linker matches them to these semver-compatible 1.1.0 ones.

/// The contract version this host serves (`wit/plugin.wit`'s package), as `/metrics` reports it.
pub const CONTRACT_VERSION: &str = "1.1.0";

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        imports: {
            "plugin-host:plugin/kv": async,
            "plugin-host:plugin/http-client.send": async | trappable,
        },
        exports: { default: async },
    });
}

pub use generated::plugin_host::plugin::{clock, config, http_client, kv, log, random, types};
pub use generated::{Plugin, PluginPre};

use types::{Method, Role};

impl Role {
    /// Every role, lowest first: anonymous < user < admin.
    pub const ALL: [Role; 3] = [Role::Anonymous, Role::User, Role::Admin];

    /// The lowercase name (how roles are stored, configured and shown).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anonymous => "anonymous",
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// The role's place in the order: a role holds every role ranked at or below it.
    pub fn rank(self) -> u8 {
        match self {
            Role::Anonymous => 0,
            Role::User => 1,
            Role::Admin => 2,
        }
    }

    /// The roles `self` holds, lowest first.
    pub fn held(self) -> impl Iterator<Item = Role> {
        Role::ALL
            .into_iter()
            .filter(move |r| r.rank() <= self.rank())
    }
}

impl Method {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// The contract's method for an HTTP method, if it has one.
    pub fn from_http(m: &http::Method) -> Option<Method> {
        Some(match *m {
            http::Method::GET => Method::Get,
            http::Method::HEAD => Method::Head,
            http::Method::POST => Method::Post,
            http::Method::PUT => Method::Put,
            http::Method::PATCH => Method::Patch,
            http::Method::DELETE => Method::Delete,
            http::Method::OPTIONS => Method::Options,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod contract_version_tests {
    #[test]
    fn the_reported_contract_version_is_the_wit_package() {
        let wit = include_str!("../../wit/plugin.wit");
        let package = format!("package plugin-host:plugin@{};", super::CONTRACT_VERSION);
        assert!(wit.contains(&package), "wit/plugin.wit lacks {package}");
    }
}
