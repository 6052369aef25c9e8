//! The process: its shared state with the reload coordinator and the retired generations, metrics, the
//! dashboard's sampler, the directory watcher, cluster mode's converger and the allocator's set-up.

pub mod alloc;
pub mod converge;
pub mod metrics;
pub mod sampler;
pub mod state;
pub mod watch;
