//! What accounts and storage cost, measured through the library on a real SQLite file in a temporary
//! directory and on a private PostgreSQL server on loopback (fsync on, as the kit starts it). Prints
//! markdown tables for docs/benchmarks.md. Run with `make bench`.
//!
//! - a key-value write (one committed transaction) with `synchronous = FULL` (the default) and `NORMAL`,
//!   and on PostgreSQL;
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
    kv_writes_on(pool).await
}

async fn kv_writes_on(pool: db::Pool) -> Duration {
    let store = KvStore::new(pool, &Config::defaults());
    let value = vec![42u8; 256];
    let started = Instant::now();
    for i in 0..KV_WRITES {
        store.set("bench", &format!("k{i}"), &value).await.unwrap();
    }
    started.elapsed()
}

/// (kv reads, key lookups) on `pool`, after writing the keys and a user with a key.
async fn reads_and_lookups(pool: &db::Pool) -> (Duration, Duration) {
    let store = KvStore::new(pool.clone(), &Config::defaults());
    let value = vec![42u8; 256];
    for i in 0..KV_WRITES {
        store.set("reads", &format!("k{i}"), &value).await.unwrap();
    }
    let started = Instant::now();
    for i in 0..KV_READS {
        store
            .get("reads", &format!("k{}", i % KV_WRITES))
            .await
            .unwrap();
    }
    let reads = started.elapsed();
    plugin_host::accounts::users::create(pool, "reader", "a-bench-password", Role::User)
        .await
        .unwrap();
    let key = plugin_host::accounts::keys::create(pool, "reader", None, &[], None)
        .await
        .unwrap()
        .key;
    let started = Instant::now();
    for _ in 0..KEY_LOOKUPS {
        plugin_host::accounts::keys::lookup(pool, &key)
            .await
            .unwrap()
            .unwrap();
    }
    (reads, started.elapsed())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile_dir();
    let pg = plugin_host_kit::postgres::Postgres::start(&dir.join("pg")).unwrap();
    pg.psql("postgres", "CREATE DATABASE bench").unwrap();
    let pg_url = pg.url("bench");
    runtime.block_on(async {
        let full = kv_writes(Durability::Full, &dir).await;
        let normal = kv_writes(Durability::Normal, &dir).await;
        let location = db::Location::Postgres(pg_url.clone());
        let pg_pool = db::open_location(&location).await.unwrap();
        let pg_writes = kv_writes_on(pg_pool.clone()).await;
        let pg_reads = reads_and_lookups(&pg_pool).await;
        let sqlite = db::open(&dir.join("Full.db")).await.unwrap();
        let sqlite_reads = reads_and_lookups(&sqlite).await;

        println!("| operation | SQLite | PostgreSQL 15, loopback |");
        println!("|---|---|---|");
        println!(
            "| kv set, 256 B, one committed transaction | {} (FULL), {} (NORMAL) | {} |",
            per_op(full, KV_WRITES),
            per_op(normal, KV_WRITES),
            per_op(pg_writes, KV_WRITES)
        );
        println!(
            "| kv get | {} | {} |",
            per_op(sqlite_reads.0, KV_READS),
            per_op(pg_reads.0, KV_READS)
        );
        println!(
            "| API key lookup (authenticate one request) | {} | {} |",
            per_op(sqlite_reads.1, KEY_LOOKUPS),
            per_op(pg_reads.1, KEY_LOOKUPS)
        );
        println!();
        pg_pool.close().await;

        let pool = sqlite;
        plugin_host::accounts::users::create(&pool, "bench", "a-bench-password", Role::User)
            .await
            .unwrap();
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
            "| login: argon2id verify, known user | {} |",
            per_op(known, VERIFIES)
        );
        println!(
            "| login: unknown user (dummy hash) | {} |",
            per_op(unknown, VERIFIES)
        );
    });
    drop(pg);
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ph-bench-accounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
