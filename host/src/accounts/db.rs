//! The host's database: one SQLite file (by default `<data_dir>/plugin-host.db`) opened through an sqlx
//! pool in WAL mode with `synchronous = FULL`, foreign keys on and a busy timeout, and the schema
//! migrations in `host/migrations/` applied on open (by `serve` and by the CLI alike).
//!
//! SQL elsewhere is written to run on PostgreSQL too: `$1` binds (sqlx-sqlite accepts them), times as
//! INTEGER unix milliseconds, `ON CONFLICT ... DO UPDATE`, no `INSERT OR REPLACE`, no rowid tricks.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The database handle every store uses: a pool of readers and a single writer connection.
///
/// SQLite has one writer at a time. With several writing connections, a waiting writer polls for the
/// lock (the busy handler sleeps and retries) and can starve behind a busy stream of other writes; a
/// pool of one writer connection instead queues writers fairly (first come, first served) inside the
/// process, and no write transaction can ever meet another's snapshot. Reads run beside the writer on
/// their own connections (WAL). Other processes (the CLI) still meet the busy timeout.
#[derive(Debug, Clone)]
pub struct Pool {
    read: SqlitePool,
    write: SqlitePool,
}

impl Pool {
    /// For queries that only read.
    pub fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// For statements and transactions that write.
    pub fn writer(&self) -> &SqlitePool {
        &self.write
    }

    /// Close every connection (waits for those in use).
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// How long a statement waits for another connection's write lock before failing. Writes are short
/// (one row, or one small transaction), so waiting this long means something is badly stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reading connections. A few let reads proceed beside the write (WAL) without holding many file
/// handles.
const MAX_READERS: u32 = 8;

/// How durable an acknowledged write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: every commit is fsynced before it is acknowledged, so it survives a crash
    /// of the process or the machine. The default.
    Full,
    /// `synchronous = NORMAL`: in WAL mode a commit survives a process crash but may be lost on power
    /// failure. Only for measuring what FULL costs (benches).
    Normal,
}

/// Open (creating if missing) the database at `path` and bring its schema up to date.
pub async fn open(path: &Path) -> Result<Pool> {
    open_with(path, Durability::Full).await
}

/// [`open`] with a chosen durability.
pub async fn open_with(path: &Path, durability: Durability) -> Result<Pool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let synchronous = match durability {
        Durability::Full => SqliteSynchronous::Full,
        Durability::Normal => SqliteSynchronous::Normal,
    };
    let options = SqliteConnectOptions::from_str("sqlite:")
        .expect("static URL")
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let write = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    sqlx::migrate!("./migrations")
        .run(&write)
        .await
        .with_context(|| format!("cannot apply migrations to database {}", path.display()))?;
    let read = SqlitePoolOptions::new()
        .max_connections(MAX_READERS)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    Ok(Pool { read, write })
}

/// Start a transaction that will write. On SQLite this is `BEGIN IMMEDIATE`: the write lock is taken
/// at the start (waiting up to the busy timeout), because a transaction that reads first and writes
/// later fails at once with "database is locked" when another connection wrote in between. (PostgreSQL
/// will use a plain `BEGIN`.)
pub async fn begin_write(
    pool: &Pool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.writer().begin_with("BEGIN IMMEDIATE").await
}

/// SQLite's own consistency check of the whole file: `"ok"` when sound.
pub async fn integrity_check(pool: &Pool) -> Result<String> {
    let (verdict,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(pool.reader())
        .await?;
    Ok(verdict)
}

/// `n` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system has a random source");
    bytes
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data`, hex: how keys and session ids are stored, and how plugin files are named in
/// the compile cache and the admin pages.
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(data.as_ref()))
}

/// Compare two secrets in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = std::env::temp_dir().join(format!("ph-db-{}", std::process::id()));
        let path = dir.join("sub/test.db");
        let pool = open(&path).await.unwrap();
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(pool.reader())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
            .fetch_one(pool.reader())
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous = FULL");
        pool.close().await;
        // A second open finds the migrations applied and changes nothing.
        open(&path).await.unwrap().close().await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
