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
//! Besides the request, a plugin reaches the host through [`config`], [`clock`], [`kv`],
//! [`log`](mod@log), [`random`] and [`http`] (outbound calls to the origins the operator allows).
//!
//! Handlers can be unit-tested with a plain `cargo test`: on every target but `wasm32` the host's
//! imports are in-memory fakes, [`Request::builder`] makes a request and [`Plugin::call`] routes it
//! like the host does. See the `testing` module (native targets only) for an example.

#[cfg(feature = "arena")]
mod arena;
mod builder;
#[cfg(not(target_arch = "wasm32"))]
mod call;
#[cfg(not(target_arch = "wasm32"))]
mod fake;
pub mod http;
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

/// Every allocation starts in an arena within the initial memory (a static of [`arena::ARENA_BYTES`]
/// and the unused end of the last initial page), so a request that stays inside it makes the host do
/// no memory syscalls (see arena.rs).
#[cfg(all(feature = "arena", target_arch = "wasm32"))]
#[global_allocator]
static ALLOCATOR: arena::BumpThenSystem = arena::BumpThenSystem;

/// Bytes the SDK's arena can still hand out before allocations go to std's allocator (and memory
/// grows). For the test fixture that checks the arena's layout.
#[doc(hidden)]
#[cfg(feature = "arena")]
pub fn __arena_free_bytes() -> usize {
    arena::free_bytes()
}

/// Bytes of the arena's static region (the rest is the end of the initial memory), for the same fixture.
#[doc(hidden)]
#[cfg(feature = "arena")]
pub const __ARENA_STATIC_BYTES: usize = arena::ARENA_BYTES;

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

    /// Log one message at `level`. A message at a level the host's log does not show is dropped.
    pub fn log(level: Level, message: &str) {
        crate::imports::log::log(level, message);
    }

    /// Whether a message at `level` would be written anywhere: check it before building a costly
    /// message nobody would read. [`log!`](crate::log!) does, so its arguments are only formatted (and
    /// evaluated) when the level is on.
    ///
    /// ```
    /// use plugin_sdk::log::{self, Level};
    ///
    /// # let items = vec![1, 2, 3];
    /// if log::enabled(Level::Debug) {
    ///     let summary: Vec<String> = items.iter().map(|i| format!("item {i}")).collect();
    ///     log::log(Level::Debug, &summary.join(", "));
    /// }
    /// ```
    pub fn enabled(level: Level) -> bool {
        crate::imports::log::enabled(level)
    }

    /// Whether [`log!`](crate::log!) sends a line at `level`: error lines always (the host keeps the
    /// last one for its own reports, such as why `describe` failed, even where its log hides them),
    /// the others when [`enabled`].
    #[doc(hidden)]
    pub fn __wanted(level: Level) -> bool {
        matches!(level, Level::Error) || enabled(level)
    }
}

/// Log a formatted message at a level: `log!(Info, "saved {id}")`. Below `Error`, nothing is
/// formatted, and the arguments are not evaluated, when the host's log does not show that level
/// ([`log::enabled`]). Error lines are always sent: the host keeps the last one for its own reports.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)+) => {{
        let level = $crate::log::Level::$level;
        if $crate::log::__wanted(level) {
            $crate::log::log(level, &::std::format!($($arg)+))
        }
    }};
}

/// Random bytes from the host's cryptographically secure generator (the operating system's): for ids,
/// tokens and nonces. A plugin has no randomness of its own (no WASI), and no seed to make one from.
///
/// In native unit tests the bytes come from std's hasher keys, which std seeds from the operating system:
/// different in every run and not for cryptography; `testing::seed_random` makes a test repeatable.
pub mod random {
    /// The most bytes the host gives in one call; [`bytes`] asks as often as it takes.
    pub const MAX_BYTES_PER_CALL: usize = 65_536;

    /// `n` random bytes.
    ///
    /// ```
    /// let key = plugin_sdk::random::bytes(32);
    /// assert_eq!(key.len(), 32);
    /// ```
    pub fn bytes(n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let want = (n - out.len()).min(MAX_BYTES_PER_CALL);
            let got = crate::imports::random::get_random_bytes(want as u32);
            assert!(!got.is_empty(), "the host gave no random bytes");
            out.extend_from_slice(&got[..got.len().min(want)]);
        }
        out
    }

    /// A random UUID (RFC 9562 version 4: 122 random bits), lowercase and hyphenated, e.g.
    /// `0b5c7cf4-51a2-4d0e-9a3b-6f1e2d9c8a47`.
    ///
    /// ```
    /// let id = plugin_sdk::random::uuid();
    /// assert_eq!((id.len(), &id[14..15]), (36, "4"));
    /// ```
    pub fn uuid() -> String {
        let mut b = bytes(16);
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // variant 10 (RFC 9562)
        let mut out = String::with_capacity(36);
        for (i, byte) in b.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
            out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
        }
        out
    }
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
