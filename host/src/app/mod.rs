//! The process: its shared state with the reload coordinator and the retired generations, metrics, the
//! dashboard's sampler, the directory watcher, cluster mode's converger, the last good set a restart
//! falls back on, the allocator's set-up, and systemd's readiness notifications.

pub mod alloc;
pub mod converge;
pub mod last_good;
pub mod metrics;
pub mod sampler;
pub mod state;
pub mod systemd;
pub mod watch;
