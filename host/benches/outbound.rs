//! What one outbound HTTP call from a plugin costs (contract 1.1 `http-client`), against the same GET
//! made directly from native Rust with reqwest to the same local upstream (an axum server in this
//! process on 127.0.0.1, answering a small JSON). Three timings: the `outbound` fixture making no call
//! (the plugin call itself), making one call, and reqwest alone; one call's cost through the host is the
//! difference of the first two. Needs `make build`; run with `make bench`. Results: docs/benchmarks.md.

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use plugin_host::bindings::types::{AuthMethod, Method, Principal, Request, Role};
use plugin_host::generation::Generation;
use plugin_host::generation::outbound::Outbound;

fn send_request(body: String) -> Request {
    Request {
        id: "bench".into(),
        method: Method::Post,
        path: "/outbound/send".into(),
        route: "/outbound/send".into(),
        params: Vec::new(),
        query: Vec::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into_bytes(),
        principal: Principal {
            subject: "bench".into(),
            roles: vec![Role::Anonymous, Role::User],
            auth: AuthMethod::ApiKey,
        },
    }
}

async fn upstream() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/forecast",
        axum::routing::get(|| async {
            axum::Json(
                serde_json::json!({"city": "Oslo", "temperature_c": 3.5, "conditions": "snow"}),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    addr
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = runtime.block_on(upstream());
    let base = format!("http://{addr}");

    let dir = common::scratch("outbound-bench");
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(
        common::repo().join("target/fixtures/outbound.wasm"),
        plugins.join("outbound.wasm"),
    )
    .expect("target/fixtures/outbound.wasm (make build)");
    let mut config = common::examples_config();
    config.plugins_dir = plugins;
    config.data_dir = dir.join("data");
    config
        .plugins
        .entry("outbound".into())
        .or_default()
        .allow_http = vec![base.clone()];
    let generation = runtime
        .block_on(Generation::build(1, &config))
        .expect("build the outbound fixture");
    let index = generation.plugin_index("outbound").unwrap();
    let http = Arc::new(Outbound::new(&config.limits));
    let callable = generation.callable(index).with_http(&http);
    let timeout = Duration::from_secs(5);
    let url = format!("{base}/forecast?city=Oslo");
    let none = send_request(serde_json::json!({ "url": url, "calls": 0 }).to_string());
    let one = send_request(serde_json::json!({ "url": url, "calls": 1 }).to_string());

    // Sanity: the call reaches the upstream.
    let answer = runtime
        .block_on(callable.handle(&one, timeout))
        .unwrap()
        .unwrap();
    let text = match &answer.body {
        plugin_host::bindings::types::Body::Json(text) => text.clone(),
        other => panic!("unexpected body {other:?}"),
    };
    assert!(text.contains("\"status\":200"), "{text}");

    let native = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("outbound");
    group.bench_function("plugin_no_call", |b| {
        b.to_async(&runtime)
            .iter(|| async { callable.handle(&none, timeout).await.unwrap().unwrap() });
    });
    group.bench_function("plugin_one_call", |b| {
        b.to_async(&runtime)
            .iter(|| async { callable.handle(&one, timeout).await.unwrap().unwrap() });
    });
    group.bench_function("native_reqwest", |b| {
        b.to_async(&runtime).iter(|| async {
            let response = native.get(&url).send().await.unwrap();
            response.bytes().await.unwrap()
        });
    });
    group.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, bench);
criterion_main!(benches);
