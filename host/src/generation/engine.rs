//! The wasmtime `Engine` of one generation: pooling allocator sized from the limits, epoch interruption,
//! and the ticker thread that drives epochs and stops by itself once the Engine is dropped.

use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::{Config as WasmConfig, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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

/// Build an Engine for one generation and start its epoch ticker.
pub fn new_engine(limits: &Limits) -> Result<Engine> {
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
        .wasm_component_model(true);
    let engine = Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("cannot create the wasmtime engine")?;
    if limits.deadlines {
        start_ticker(&engine)?;
    }
    Ok(engine)
}

/// Advance `engine`'s epoch every [`EPOCH_TICK`] on a small thread that holds only a weak handle, so the
/// thread never keeps a retired generation's Engine alive and exits within one tick of its drop.
fn start_ticker(engine: &Engine) -> Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .context("cannot start the epoch ticker thread")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn ticker_stops_when_engine_drops() {
        let engine = new_engine(&Config::defaults().limits).unwrap();
        let weak = engine.weak();
        drop(engine);
        // The ticker may hold a strong handle for the instant of an increment, never longer.
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        while weak.upgrade().is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "engine still alive after 1 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
