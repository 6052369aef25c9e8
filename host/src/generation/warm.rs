//! Instance reuse, per plugin and off by default. With `instance_reuse = N` (N > 1) an instance serves up
//! to N requests before it is dropped: after a request it goes back to the plugin's idle list (bounded),
//! and the next request takes it instead of instantiating. An instance whose call failed in any way
//! (trap, deadline, memory cap, host error) is dropped at once, never reused. A dropped instance's Store
//! goes with it, so its memory returns to the pool. Idle instances belong to their generation and are
//! freed with it.
//!
//! The trade-off: whatever a plugin keeps in its memory — statics, caches, a previous caller's data —
//! is visible to the next requests the instance serves, whoever sends them. N = 1 (the default) gives
//! every request a fresh instance.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use wasmtime::Store;

use crate::bindings::Plugin as PluginInstance;
use crate::generation::invoke::HostState;

/// Idle instances one plugin keeps at most; requests beyond them instantiate as usual.
pub const MAX_IDLE_PER_PLUGIN: usize = 16;

/// The instance-pool slots one instance holds: one of the generation's and, when the plugin has its own
/// cap, one of the plugin's. Dropping them frees the slots.
pub struct Permits {
    _pool: OwnedSemaphorePermit,
    _plugin: Option<OwnedSemaphorePermit>,
}

impl Permits {
    /// Take a slot from the generation's pool and, if given, from the plugin's own cap; `None` when
    /// either is full (the caller answers 503 at once: requests never queue for an instance).
    pub fn try_acquire(pool: &Arc<Semaphore>, plugin: Option<&Arc<Semaphore>>) -> Option<Self> {
        let pool = pool.clone().try_acquire_owned().ok()?;
        let plugin = match plugin.map(|p| p.clone().try_acquire_owned()) {
            None => None,
            Some(Ok(permit)) => Some(permit),
            Some(Err(TryAcquireError::NoPermits | TryAcquireError::Closed)) => return None,
        };
        Some(Self {
            _pool: pool,
            _plugin: plugin,
        })
    }
}

/// An instance kept for further requests, with its Store and its slots.
pub struct WarmInstance {
    pub(crate) store: Store<HostState>,
    pub(crate) instance: PluginInstance,
    /// Requests it has served.
    pub(crate) served: u32,
    pub(crate) _permits: Permits,
}

/// What a request runs on: a new instance in the slots it took, or an idle warm one.
pub enum Lease {
    Fresh(Permits),
    Warm(Box<WarmInstance>),
}

/// One plugin's idle instances.
pub struct WarmPool {
    idle: Mutex<Vec<WarmInstance>>,
    /// Requests an instance serves before it is dropped.
    max_requests: u32,
}

impl WarmPool {
    /// A pool for instances that serve up to `max_requests` requests each; `None` when that is 1.
    pub fn new(max_requests: u32) -> Option<Self> {
        (max_requests > 1).then(|| Self {
            idle: Mutex::new(Vec::new()),
            max_requests,
        })
    }

    /// An idle instance, if there is one (the most recently used: its memory is the warmest).
    pub fn take(&self) -> Option<WarmInstance> {
        self.lock().pop()
    }

    /// Keep `instance` for another request unless it has served its share or enough are idle already;
    /// otherwise it is dropped here.
    pub fn give_back(&self, instance: WarmInstance) {
        if instance.served >= self.max_requests {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE_PER_PLUGIN {
            idle.push(instance);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WarmInstance>> {
        // The list is consistent at every step, so a panic elsewhere cannot leave it half-changed.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
