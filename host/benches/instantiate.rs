//! Micro-benchmark of the per-request plugin cost without HTTP: a fresh Store, an instance from the pool
//! via the plugin's InstancePre, one `handle` call to the `hello` example, and the drop of both.
//! Also instantiation alone, to split the cost, and the same call on a reused instance (instance_reuse).
//! Needs `make plugins` first; run with `make bench`.
//! Results and analysis: docs/benchmarks.md.

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use plugin_host::bindings::types::{AuthMethod, Method, Principal, Request, Role};
use plugin_host::generation::Generation;

fn hello_request() -> Request {
    Request {
        id: "bench".into(),
        method: Method::Get,
        path: "/hello/world".into(),
        route: "/hello/{name}".into(),
        params: vec![("name".into(), "world".into())],
        query: Vec::new(),
        headers: Vec::new(),
        body: Vec::new(),
        principal: Principal {
            subject: "anonymous".into(),
            roles: vec![Role::Anonymous],
            auth: AuthMethod::None,
        },
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = common::examples_config();
    let generation = runtime
        .block_on(Generation::build(1, &config))
        .expect("build the example plugins first: make plugins");
    let hello = generation.plugin_index("hello").expect("hello plugin");
    let callable = generation.callable(hello);
    let request = hello_request();
    let timeout = Duration::from_secs(5);

    // Sanity: the call really answers.
    let answer = runtime
        .block_on(callable.handle(&request, timeout))
        .unwrap()
        .unwrap();
    assert_eq!(answer.status, 200);

    let mut group = c.benchmark_group("hello");
    group.bench_function("fresh_instance_call", |b| {
        b.to_async(&runtime)
            .iter(|| async { callable.handle(&request, timeout).await.unwrap().unwrap() });
    });
    // The same call on a kept instance (instance_reuse on): no instantiation, no fresh memory.
    let mut reuse = config.clone();
    let settings = plugin_host::config::PluginSettings {
        instance_reuse: Some(u32::MAX),
        ..Default::default()
    };
    reuse.plugins.insert("hello".into(), settings);
    let warm = runtime
        .block_on(Generation::build(2, &reuse))
        .expect("build with reuse");
    group.bench_function("reused_instance_call", |b| {
        b.to_async(&runtime).iter(|| async {
            let lease = warm.lease(hello).expect("a free slot");
            let answer = warm.callable(hello).serve(lease, &request, timeout).await;
            answer.unwrap().unwrap()
        });
    });
    group.bench_function("instantiate_only", |b| {
        b.to_async(&runtime)
            .iter(|| async { callable.instantiate_only().await.unwrap() });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
