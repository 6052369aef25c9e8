//! Micro-benchmark of the HTML path without HTTP or wasm: hello's JSON answer parsed into template
//! values, merged into the page context, and rendered through the `hello/hello.html` view (which extends
//! the layout) — each step alone and all together, to see where a page's cost goes.
//! Needs `make plugins` first; run with `make bench`. Results: docs/benchmarks.md.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use minijinja::{Value, context};
use plugin_host::generation::Generation;
use plugin_host::generation::views::view_context;

const JSON: &str = r#"{"message":"hello, world"}"#;

fn page_context(body: Value) -> Value {
    let page = context! {
        title => "Greet someone by name",
        plugin => "hello",
        version => "0.1.0",
        method => "GET",
        route => "/hello/{name}",
        path => "/hello/world",
        request_id => "0123456789abcdef",
        generation => 1,
    };
    view_context(body, page)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = common::examples_config();
    let generation = runtime
        .block_on(Generation::build(1, &config))
        .expect("examples load (run `make plugins` first)");
    let views = &generation.views;

    c.bench_function("html: parse JSON into template values", |b| {
        b.iter(|| serde_json::from_str::<Value>(JSON).unwrap())
    });
    let body: Value = serde_json::from_str(JSON).unwrap();
    c.bench_function("html: page context", |b| {
        b.iter(|| page_context(body.clone()))
    });
    let context = page_context(body);
    c.bench_function("html: render hello.html", |b| {
        b.iter(|| views.render("hello/hello.html", &context).unwrap())
    });
    c.bench_function("html: all three", |b| {
        b.iter(|| {
            let body: Value = serde_json::from_str(JSON).unwrap();
            views
                .render("hello/hello.html", &page_context(body))
                .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
