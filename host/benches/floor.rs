//! What wasmtime itself costs for a fresh instance, under this host's Engine configuration (pooling
//! allocator, epochs, no component-model concurrency): the floor under `instantiate.rs`'s hello figures,
//! which no change in the host or the SDK can go below. Each case instantiates from a pre-linked
//! `InstancePre`, calls one export that returns a number, and drops the Store (which resets the slot):
//!   - `component_async/{1,2,4}_pages`: the smallest component (one core module, no imports), the async
//!     API the host uses; 1, 2 (what SDK plugins have) or 4 wasm pages of initial memory, to show
//!     what each page adds to the slot reset;
//!   - `component_sync/1_page`: the same with the blocking API, which plugins cannot use (a call could
//!     not yield to tokio at epoch ticks, and the kv import is async), to size what fibers cost;
//!   - `core_module_async/1_page`: a plain core module, no component layer.
//!
//! Results: docs/benchmarks.md ("Per-request cost").

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use plugin_host::config::Config;
use plugin_host::generation::engine::PluginEngine;
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker};

fn component(pages: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
             (core module $m
               (memory (export "memory") {pages})
               (func (export "handle") (result i32) i32.const 200))
             (core instance $i (instantiate $m))
             (func (export "handle") (result u32) (canon lift (core func $i "handle"))))"#
    ))
    .expect("valid component text")
}

/// A store like a request's: a deadline far away, so the epoch never interrupts the measured call.
fn store(engine: &wasmtime::Engine) -> Store<()> {
    let mut store = Store::new(engine, ());
    store.set_epoch_deadline(1 << 40);
    store
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugin_engine = PluginEngine::new(&Config::defaults().limits).expect("engine");
    let engine = plugin_engine.wasmtime();
    let linker = Linker::<()>::new(engine);
    let pre = |pages: u32| -> (InstancePre<()>, ComponentExportIndex) {
        let component = Component::new(engine, component(pages)).expect("compile");
        let (_, index) = component.get_export(None, "handle").expect("export");
        (linker.instantiate_pre(&component).expect("link"), index)
    };

    let mut group = c.benchmark_group("floor");
    group.measurement_time(Duration::from_secs(5));
    for pages in [1, 2, 4] {
        let (pre, index) = pre(pages);
        let name = format!(
            "component_async/{pages}_page{}",
            if pages == 1 { "" } else { "s" }
        );
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let _awake = plugin_engine.awake();
                let mut store = store(engine);
                let instance = pre.instantiate_async(&mut store).await.unwrap();
                let handle = instance
                    .get_typed_func::<(), (u32,)>(&mut store, index)
                    .unwrap();
                let (status,) = handle.call_async(&mut store, ()).await.unwrap();
                assert_eq!(status, 200);
            });
        });
    }

    let (pre, index) = pre(1);
    group.bench_function("component_sync/1_page", |b| {
        b.iter(|| {
            let _awake = plugin_engine.awake();
            let mut store = store(engine);
            let instance = pre.instantiate(&mut store).unwrap();
            let handle = instance
                .get_typed_func::<(), (u32,)>(&mut store, index)
                .unwrap();
            let (status,) = handle.call(&mut store, ()).unwrap();
            assert_eq!(status, 200);
        });
    });

    let module = wasmtime::Module::new(
        engine,
        wat::parse_str(
            r#"(module (memory (export "memory") 1)
                 (func (export "handle") (result i32) i32.const 200))"#,
        )
        .expect("valid module text"),
    )
    .expect("compile");
    let core_pre = wasmtime::Linker::<()>::new(engine)
        .instantiate_pre(&module)
        .expect("link");
    group.bench_function("core_module_async/1_page", |b| {
        b.to_async(&runtime).iter(|| async {
            let _awake = plugin_engine.awake();
            let mut store = store(engine);
            let instance = core_pre.instantiate_async(&mut store).await.unwrap();
            let handle = instance
                .get_typed_func::<(), i32>(&mut store, "handle")
                .unwrap();
            assert_eq!(handle.call_async(&mut store, ()).await.unwrap(), 200);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
