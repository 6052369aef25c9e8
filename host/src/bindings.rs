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
