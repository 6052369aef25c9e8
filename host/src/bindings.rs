//! Host-side bindings for the plugin contract in `wit/` (the host's one `bindgen!`).
//!
//! Exports are async so that a plugin call runs on a wasmtime fiber inside a tokio task and yields at
//! every epoch tick: a long-running plugin never blocks tokio's worker threads. The imports (log, config,
//! clock) are cheap and synchronous.

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        exports: { default: async },
    });
}

pub use generated::plugin_host::plugin::{clock, config, log, types};
pub use generated::{Plugin, PluginPre};
