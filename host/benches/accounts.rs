//! What accounts and storage cost, measured through the library on a real database file in a temporary
//! directory. Prints a markdown table for docs/benchmarks.md. Run with `make bench`.
//!
//! - a key-value write (one committed transaction) with `synchronous = FULL` (the default) and `NORMAL`;
//! - a key-value read;
//! - authenticating an API key (one indexed read of `api_keys` joined with `users`);
//! - a password verification (argon2id, default parameters), for a known and for an unknown user.

use std::time::{Duration, Instant};

use plugin_host::accounts::db::{self, Durability};
use plugin_host::accounts::kv::KvStore;
use plugin_host::bindings::types::Role;
use plugin_host::config::Config;

const KV_WRITES: usize = 2_000;
const KV_READS: usize = 20_000;
const KEY_LOOKUPS: usize = 20_000;
const VERIFIES: usize = 20;

fn per_op(total: Duration, n: usize) -> String {
    let us = total.as_secs_f64() * 1e6 / n as f64;
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

async fn kv_writes(durability: Durability, dir: &std::path::Path) -> Duration {
    let pool = db::open_with(&dir.join(format!("{durability:?}.db")), durability)
        .await
        .unwrap();
    let store = KvStore::new(pool, &Config::defaults());
    let value = vec![42u8; 256];
    let started = Instant::now();
    for i in 0..KV_WRITES {
        store.set("bench", &format!("k{i}"), &value).await.unwrap();
    }
    started.elapsed()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile_dir();
    runtime.block_on(async {
        let full = kv_writes(Durability::Full, &dir).await;
        let normal = kv_writes(Durability::Normal, &dir).await;

        let pool = db::open(&dir.join("Full.db")).await.unwrap();
        let store = KvStore::new(pool.clone(), &Config::defaults());
        let started = Instant::now();
        for i in 0..KV_READS {
            store
                .get("bench", &format!("k{}", i % KV_WRITES))
                .await
                .unwrap();
        }
        let reads = started.elapsed();

        plugin_host::accounts::users::create(&pool, "bench", "a-bench-password", Role::User)
            .await
            .unwrap();
        let key = plugin_host::accounts::keys::create(&pool, "bench", None, &[], None)
            .await
            .unwrap()
            .key;
        let started = Instant::now();
        for _ in 0..KEY_LOOKUPS {
            plugin_host::accounts::keys::lookup(&pool, &key)
                .await
                .unwrap()
                .unwrap();
        }
        let lookups = started.elapsed();

        let mut known = Duration::ZERO;
        let mut unknown = Duration::ZERO;
        for _ in 0..VERIFIES {
            let started = Instant::now();
            plugin_host::accounts::users::verify(&pool, "bench", "a-bench-password")
                .await
                .unwrap()
                .unwrap();
            known += started.elapsed();
            let started = Instant::now();
            let none = plugin_host::accounts::users::verify(&pool, "nobody", "a-bench-password")
                .await
                .unwrap();
            assert!(none.is_none());
            unknown += started.elapsed();
        }

        println!("| operation | per operation |");
        println!("|---|---|");
        println!(
            "| kv set, 256 B, synchronous = FULL (default) | {} |",
            per_op(full, KV_WRITES)
        );
        println!(
            "| kv set, 256 B, synchronous = NORMAL | {} |",
            per_op(normal, KV_WRITES)
        );
        println!("| kv get | {} |", per_op(reads, KV_READS));
        println!(
            "| API key lookup (authenticate one request) | {} |",
            per_op(lookups, KEY_LOOKUPS)
        );
        println!(
            "| login: argon2id verify, known user | {} |",
            per_op(known, VERIFIES)
        );
        println!(
            "| login: unknown user (dummy hash) | {} |",
            per_op(unknown, VERIFIES)
        );
    });
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ph-bench-accounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
