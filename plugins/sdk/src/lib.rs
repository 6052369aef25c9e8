//! The Plugin Host SDK: write a plugin as a short script.
//!
//! A plugin is a function that builds a [`Plugin`] — its name, version and routes, each route with a
//! handler — and one [`plugin!`] line that exports it:
//!
//! ```ignore
//! use plugin_sdk::prelude::*;
//!
//! fn plugin() -> Plugin {
//!     Plugin::new("hello", env!("CARGO_PKG_VERSION"), "Greets people")
//!         .get("/hello/{name}", greet)
//!         .summary("Greet someone by name")
//! }
//!
//! fn greet(req: &Request) -> Result {
//!     let name: String = req.param("name")?;
//!     Response::json(&json!({ "message": format!("hello, {name}") }))
//! }
//!
//! plugin_sdk::plugin!(plugin);
//! ```
//!
//! The same [`Plugin`] value answers the host's `describe` call (the manifest, read once per plugin
//! version) and dispatches `handle` calls: the host has already matched the route, so dispatch is a
//! lookup by method and pattern. The generated WIT bindings are in [`bindings`]; most plugins never
//! need them directly.
//!
//! Handlers can be unit-tested with a plain `cargo test`: on every target but `wasm32` the host's
//! imports ([`config`], [`clock`], [`kv`], [`log`](mod@log)) are in-memory fakes,
//! [`Request::builder`] makes a request and [`Plugin::call`] routes it like the host does. See the
//! `testing` module (native targets only) for an example.

#[cfg(feature = "arena")]
mod arena;
mod builder;
#[cfg(not(target_arch = "wasm32"))]
mod call;
#[cfg(not(target_arch = "wasm32"))]
mod fake;
mod plugin;
mod request;
mod response;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(test)]
mod tests;

/// The host's imports: the real ones in a plugin (wasm32), in-memory fakes anywhere else, where
/// wit-bindgen's stubs would only panic (fake.rs, driven by [`testing`]).
#[cfg(target_arch = "wasm32")]
use bindings::plugin_host::plugin as imports;
#[cfg(not(target_arch = "wasm32"))]
use fake as imports;

/// Bindings generated from the host's contract (`wit/` here is a link to the repository's one `wit/`;
/// the copy of the SDK that `plugin-host new` writes out carries the file itself). The one `generate!` on
/// the guest side.
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "plugin_sdk::bindings",
        export_macro_name: "export_plugin_world",
    });
}

/// Every allocation starts in an arena within the initial memory, so a request that stays under
/// [`arena::ARENA_BYTES`] makes the host do no memory syscalls (see arena.rs).
#[cfg(all(feature = "arena", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: arena::BumpThenSystem = arena::BumpThenSystem;

pub use builder::RequestBuilder;
#[doc(hidden)]
pub use plugin::__install_panic_hook;
pub use plugin::{Handler, Plugin};
pub use request::Request;
pub use response::{Error, Response, Result};
pub use serde_json::{Map, Value, json};

/// The `serde` the SDK is built with, so a plugin needs no serde dependency of its own.
///
/// serde's derives expand to `extern crate serde`, so a crate that does not depend on serde itself
/// points them here with `#[serde(crate = "plugin_sdk::serde")]` (a crate that does depend on serde 1
/// needs nothing: it is the same serde):
///
/// ```
/// use plugin_sdk::prelude::*;
///
/// #[derive(Serialize, Deserialize)]
/// #[serde(crate = "plugin_sdk::serde")]
/// struct Note {
///     title: String,
/// }
///
/// let response = Response::json(&Note { title: "first".into() })?;
/// let note: Note = response.body_json()?;
/// assert_eq!(note.title, "first");
/// # Ok::<(), Error>(())
/// ```
pub use serde;
/// serde's traits and, with the same names, its derives (see [`serde`] for the
/// `#[serde(crate = ..)]` a crate without its own serde dependency needs).
pub use serde::{Deserialize, Serialize};

pub use bindings::plugin_host::plugin::types::{AuthMethod, Method, Role, Route};

/// Everything a typical plugin needs, in one import.
pub mod prelude {
    pub use crate::{
        Deserialize, Error, Method, Plugin, Request, Response, Result, Role, Serialize, Value,
        json, serde,
    };
}

/// Per-plugin configuration from the host's `[plugins.<name>.config]` table.
pub mod config {
    /// The configured value for `key`, if the operator set one.
    pub fn get(key: &str) -> Option<String> {
        crate::imports::config::get(key)
    }
}

/// Time as the host sees it (plugins have no clock of their own).
pub mod clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_millis() -> u64 {
        crate::imports::clock::now_millis()
    }

    /// Nanoseconds from a fixed point; never goes backwards.
    pub fn monotonic_nanos() -> u64 {
        crate::imports::clock::monotonic_nanos()
    }
}

/// The plugin's own key-value store, kept by the host (it survives restarts and reloads, and no other
/// plugin can see it). Every function returns the SDK's [`Error`] with a fitting status, so
/// handlers can use `?`: an invalid key is 400, a value over the host's cap 413, a plugin over its total
/// cap 507, a store that cannot be reached 503.
pub mod kv {
    use crate::Error;
    use crate::imports::kv as host;

    fn error(e: host::Error) -> Error {
        match e {
            host::Error::InvalidKey(m) => Error::new(400, m),
            host::Error::ValueTooLarge(m) => Error::new(413, m),
            host::Error::QuotaExceeded(m) => Error::new(507, m),
            host::Error::Unavailable(m) => Error::new(503, m),
        }
    }

    /// The value under `key`, if any.
    pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        host::get(key).map_err(error)
    }

    /// Store `value` under `key`, replacing what was there.
    pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
        host::set(key, value).map_err(error)
    }

    /// Remove `key`; true if it existed.
    pub fn delete(key: &str) -> Result<bool, Error> {
        host::delete(key).map_err(error)
    }

    /// The keys starting with `prefix`, in order.
    pub fn list(prefix: &str) -> Result<Vec<String>, Error> {
        host::list(prefix).map_err(error)
    }

    /// The JSON value under `key`, decoded into `T`.
    pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
        match get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::new(500, format!("stored value of {key} is not valid JSON: {e}"))
            }),
            None => Ok(None),
        }
    }

    /// Store `value` as JSON under `key`.
    pub fn set_json<T: serde::Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::new(500, format!("cannot encode {key} as JSON: {e}")))?;
        set(key, &bytes)
    }
}

/// Logging into the host's structured log, tagged with plugin, version and request id.
pub mod log {
    pub use crate::bindings::plugin_host::plugin::log::Level;

    /// Log one message at `level`.
    pub fn log(level: Level, message: &str) {
        crate::imports::log::log(level, message);
    }
}

/// Log a formatted message at a level: `log!(Info, "saved {id}")`.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {
        $crate::log::log($crate::log::Level::$level, &::std::format!($($arg)+))
    };
}

/// Export a plugin: `plugin_sdk::plugin!(build)` where `build: fn() -> Plugin`.
///
/// The plugin is built once per instance: `handle` builds it on the first call and keeps it in a
/// static (an instance the host reuses serves many requests); `describe` builds it and moves the
/// manifest out, because the host calls `describe` on a fresh instance of its own
/// (host/src/generation/invoke.rs) and a copy would only grow every plugin. Both install the panic
/// hook that logs panics through the host before the builder runs.
#[macro_export]
macro_rules! plugin {
    ($build:path) => {
        struct __PluginExports;

        impl __PluginExports {
            fn plugin() -> &'static $crate::Plugin {
                static PLUGIN: ::std::sync::OnceLock<$crate::Plugin> = ::std::sync::OnceLock::new();
                PLUGIN.get_or_init(|| {
                    $crate::__install_panic_hook();
                    $build()
                })
            }
        }

        impl $crate::bindings::Guest for __PluginExports {
            fn describe() -> $crate::bindings::plugin_host::plugin::types::Manifest {
                $crate::__install_panic_hook();
                $build().into_manifest()
            }

            fn handle(
                request: $crate::bindings::plugin_host::plugin::types::Request,
            ) -> ::core::result::Result<
                $crate::bindings::plugin_host::plugin::types::Response,
                $crate::bindings::plugin_host::plugin::types::Error,
            > {
                Self::plugin().dispatch(request)
            }
        }

        $crate::bindings::export_plugin_world!(__PluginExports with_types_in $crate::bindings);
    };
}
