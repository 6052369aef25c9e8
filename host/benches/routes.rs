//! Route lookup cost against the size of the route table: hello's `GET /hello/world` (served by
//! `/hello/{name}`) and a path no route matches, with 1, 100 and 2,000 routes loaded. The other routes
//! look like many plugins' own: `/pN/items/{id}` and `/pN/items`. Run with `make bench`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use plugin_host::bindings::types::Method;
use plugin_host::generation::routes::{Miss, PathPattern, RouteTable, Target, split_path};

const SIZES: [usize; 3] = [1, 100, 2_000];

fn table(routes: usize) -> RouteTable {
    let mut table = RouteTable::default();
    let hello = PathPattern::parse("/hello/{name}").unwrap();
    table.insert(Method::Get, hello, target(0)).unwrap();
    for plugin in 1..routes {
        let raw = if plugin % 2 == 0 {
            format!("/p{plugin}/items/{{id}}")
        } else {
            format!("/p{plugin}/items")
        };
        let pattern = PathPattern::parse(&raw).unwrap();
        table.insert(Method::Get, pattern, target(plugin)).unwrap();
    }
    assert_eq!(table.len(), routes);
    table
}

fn target(plugin: usize) -> Target {
    Target { plugin, route: 0 }
}

fn bench(c: &mut Criterion) {
    let hit = split_path("/hello/world").unwrap();
    let miss = split_path("/nothing/here").unwrap();
    let mut group = c.benchmark_group("routes");
    for size in SIZES {
        let table = table(size);
        assert_eq!(
            table.lookup(Some(Method::Get), &hit).unwrap().target,
            target(0)
        );
        assert_eq!(table.lookup(Some(Method::Get), &miss), Err(Miss::NotFound));
        group.bench_with_input(BenchmarkId::new("hit", size), &table, |b, table| {
            b.iter(|| table.lookup(Some(Method::Get), black_box(&hit)))
        });
        group.bench_with_input(BenchmarkId::new("miss", size), &table, |b, table| {
            b.iter(|| table.lookup(Some(Method::Get), black_box(&miss)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
