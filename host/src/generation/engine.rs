//! The wasmtime `Engine` of one generation: pooling allocator sized from the limits, epoch interruption,
//! and the ticker thread that drives epochs while plugin calls run, sleeps while none does, and stops
//! once the generation's engine is dropped.

/// The wasmtime version this host embeds, as `/metrics` reports it (a test holds it to Cargo.lock).
pub const WASMTIME_VERSION: &str = "48.0.8";

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{
    Config as WasmConfig, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use crate::config::Limits;

/// How often the epoch advances. A plugin call yields to tokio at each tick and its deadline is checked
/// there, so this is the longest slice a busy plugin holds a worker thread before others get a turn,
/// and the resolution of request timeouts. At 10 ms, two plugins spinning on a 2-core machine pushed
/// other requests' p50 from 0.7 ms to 16 ms; at 1 ms the ticker's own cost is still not measurable
/// (docs/benchmarks.md).
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Core instances and tables a component made by `wit-component` uses: the main module plus small shim
/// and fix-up modules. Generous enough for any plugin built with the SDK.
pub(crate) const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const TABLES_PER_COMPONENT: u32 = 4;

/// A generation's Engine and, when calls have deadlines, its epoch ticker.
pub struct PluginEngine {
    engine: Engine,
    ticker: Option<Arc<Ticker>>,
}

impl PluginEngine {
    /// Build the Engine for one generation and start its epoch ticker (asleep until a call runs).
    pub fn new(limits: &Limits) -> Result<Self> {
        let engine = new_engine(limits)?;
        let ticker = if limits.deadlines {
            Some(Ticker::start(&engine)?)
        } else {
            None
        };
        Ok(Self { engine, ticker })
    }

    /// The wasmtime Engine.
    pub fn wasmtime(&self) -> &Engine {
        &self.engine
    }

    /// Keep epochs ticking for as long as the returned guard lives: held around every plugin call.
    pub fn awake(&self) -> Option<Awake> {
        self.ticker.as_ref().map(|t| t.awake())
    }

    /// Epoch ticks so far (for tests: an idle engine does not tick).
    pub fn ticks(&self) -> u64 {
        self.ticker
            .as_ref()
            .map_or(0, |t| t.ticks.load(Ordering::Relaxed))
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        if let Some(ticker) = &self.ticker {
            ticker.stopped.store(true, Ordering::Release);
            ticker.thread.unpark();
        }
    }
}

fn new_engine(limits: &Limits) -> Result<Engine> {
    let slots = limits.max_instances;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots)
        .max_memories_per_component(1)
        .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT))
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .max_memory_size(limits.instance_memory_bytes)
        // Reset the first MiB of a slot with memset instead of madvise: cheaper for the small memories
        // request handlers touch, and the memory stays bounded (slots x 1 MiB).
        .linear_memory_keep_resident(256 << 10)
        .table_keep_resident(64 << 10);

    let mut config = WasmConfig::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(limits.deadlines)
        .max_wasm_stack(limits.wasm_stack_bytes)
        .async_stack_size(limits.wasm_stack_bytes + (256 << 10))
        .wasm_component_model(true)
        // Plugins make plain calls: without this, wasmtime 48 routes every typed call through its
        // component-model-async machinery (14 % of a hello's CPU, docs/benchmarks.md).
        .concurrency_support(false);
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasmtime engine")
}

/// What the ticker thread and the calls share.
struct Ticker {
    /// Plugin calls running now.
    calls: AtomicUsize,
    /// Whether a call started since the ticker last looked.
    recent: AtomicBool,
    /// Set when the engine's owner is dropped: the thread exits.
    stopped: AtomicBool,
    ticks: AtomicU64,
    thread: Thread,
}

/// One running plugin call, as the ticker counts it.
pub struct Awake(Arc<Ticker>);

impl Drop for Awake {
    fn drop(&mut self) {
        self.0.calls.fetch_sub(1, Ordering::Release);
    }
}

impl Ticker {
    /// Advance `engine`'s epoch every [`EPOCH_TICK`] while calls run, on a small thread that holds only a
    /// weak handle, so it never keeps a retired generation's Engine alive. With no call running for a
    /// whole tick it parks until the next call starts: an idle host does not wake 1,000 times a second.
    fn start(engine: &Engine) -> Result<Arc<Self>> {
        let weak = engine.weak();
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Arc<Self>>(1);
        let handle = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                if let Ok(ticker) = receiver.recv() {
                    ticker.run(&weak);
                }
            })
            .context("cannot start the epoch ticker thread")?;
        let ticker = Arc::new(Self {
            calls: AtomicUsize::new(0),
            recent: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            thread: handle.thread().clone(),
        });
        sender
            .send(ticker.clone())
            .context("the epoch ticker thread exited at start")?;
        Ok(ticker)
    }

    fn run(&self, engine: &EngineWeak) {
        while !self.stopped.load(Ordering::Acquire) {
            let idle = self.calls.load(Ordering::Acquire) == 0
                && !self.recent.swap(false, Ordering::AcqRel);
            if idle {
                std::thread::park();
                continue;
            }
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
            self.ticks.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn awake(self: &Arc<Self>) -> Awake {
        self.recent.store(true, Ordering::Release);
        if self.calls.fetch_add(1, Ordering::AcqRel) == 0 {
            // Cheap when the thread is not parked: no syscall.
            self.thread.unpark();
        }
        Awake(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_reported_wasmtime_version_is_the_locked_one() {
        let lock = include_str!("../../../Cargo.lock");
        let entry = format!(
            "name = \"wasmtime\"\nversion = \"{}\"",
            super::WASMTIME_VERSION
        );
        assert!(
            lock.contains(&entry),
            "Cargo.lock does not pin wasmtime {}",
            super::WASMTIME_VERSION
        );
    }

    /// Wait until `done` holds, for at most a second.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what} not within 1 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn ticker_ticks_only_while_calls_run() {
        let engine = PluginEngine::new(&Config::defaults().limits).unwrap();
        assert_eq!(engine.ticks(), 0, "ticked before any call");
        let call = engine.awake().expect("deadlines are on by default");
        wait_until("three ticks during a call", || engine.ticks() >= 3);
        drop(call);
        // At most the tick in progress and one more (a call started during the last tick) follow.
        let after_call = engine.ticks();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            engine.ticks() <= after_call + 2,
            "still ticking 50 ms after the last call: {} ticks, then {}",
            after_call,
            engine.ticks()
        );
        let _again = engine.awake();
        let parked_at = engine.ticks();
        wait_until("a tick after the next call starts", || {
            engine.ticks() > parked_at
        });
    }

    #[test]
    fn ticker_stops_when_engine_drops() {
        for during_call in [false, true] {
            let engine = PluginEngine::new(&Config::defaults().limits).unwrap();
            let weak = engine.wasmtime().weak();
            let ticker = engine.ticker.clone().expect("deadlines are on by default");
            let call = during_call.then(|| engine.awake());
            drop(engine);
            // The ticker may hold a strong handle for the instant of an increment, never longer; its
            // thread ends (parked or not) and lets go of the shared state.
            wait_until("the engine dropped", || weak.upgrade().is_none());
            let others = 1 + usize::from(call.is_some());
            wait_until("the ticker thread ended", || {
                Arc::strong_count(&ticker) == others
            });
        }
    }
}
