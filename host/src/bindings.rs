//! Host-side bindings for the plugin contract in `wit/` (the host's one `bindgen!`).
//!
//! Exports are async so that a plugin call runs on a wasmtime fiber inside a tokio task and yields at
//! every epoch tick: a long-running plugin never blocks tokio's worker threads. The imports log, config
//! and clock are cheap and synchronous; `kv` is async (it waits for the database), so while a plugin waits
//! for it the fiber is suspended and the tokio worker serves other requests.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        imports: { "plugin-host:plugin/kv": async },
        exports: { default: async },
    });
}

pub use generated::plugin_host::plugin::{clock, config, kv, log, types};
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
