//! The process: its shared state with the reload coordinator and the retired generations, metrics, the
//! dashboard's sampler, the directory watcher, cluster mode's converger, the last good set a restart
//! falls back on, and the allocator's set-up.

pub mod alloc;
pub mod converge;
pub mod last_good;
pub mod metrics;
pub mod sampler;
pub mod state;
pub mod watch;
