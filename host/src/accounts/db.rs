//! The host's database, one of two backends behind the same queries (sqlx's `Any` driver):
//!
//! - **SQLite** (the default): one file (`<data_dir>/plugin-host.db`) in WAL mode with
//!   `synchronous = FULL`, foreign keys on and a busy timeout; a single writing connection beside a few
//!   readers. What one node needs, with nothing to run.
//! - **PostgreSQL** (`database = "postgres://..."`): what a cluster of nodes shares. One pool; write
//!   transactions take a transaction-scoped advisory lock on what they change, so a check-then-write
//!   (the last admin, a plugin's quota) holds across nodes as SQLite's single writer makes it hold.
//!
//! Each backend has its own migrations (`host/migrations/sqlite`, `host/migrations/postgres`), applied on
//! open by `serve` and the CLI alike. The SQL elsewhere runs on both: `$1` binds, times as integer unix
//! milliseconds, `ON CONFLICT ... DO UPDATE`, no `INSERT OR REPLACE`, no rowid tricks.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

/// Where the database is, as the configuration names it.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://USER[:PASSWORD]@HOST:PORT/DB`).
    Postgres(String),
}

impl Location {
    /// `text` as the `database` setting reads: a `postgres://` or `postgresql://` URL, else a SQLite path
    /// (relative to `data_dir` unless absolute).
    pub fn parse(text: &str, data_dir: &Path) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Self::Postgres(text.to_owned())
        } else {
            Self::Sqlite(data_dir.join(text))
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// For messages and logs: the file, or the URL without its password.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => path.display().to_string(),
            Self::Postgres(url) => match url::Url::parse(url) {
                Ok(mut u) if u.password().is_some() => {
                    let _ = u.set_password(Some("***"));
                    u.to_string()
                }
                Ok(u) => u.to_string(),
                Err(_) => "a PostgreSQL URL that does not parse".into(),
            },
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a password, even in a debug dump of the configuration.
        f.write_str(&self.redacted())
    }
}

/// The database engine behind a [`Pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle every store uses.
///
/// On SQLite: a pool of readers and a single writer connection. SQLite has one writer at a time; with
/// several writing connections a waiting writer polls for the lock and can starve behind a busy stream
/// of other writes, while a pool of one queues writers fairly inside the process. Reads run beside the
/// writer (WAL). Other processes (the CLI) still meet the busy timeout.
///
/// On PostgreSQL: one pool serves both.
#[derive(Debug, Clone)]
pub struct Pool {
    read: AnyPool,
    write: AnyPool,
    location: Location,
}

impl Pool {
    /// For queries that only read.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// For statements and transactions that write.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.location.backend()
    }

    /// Where the database is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Close every connection (waits for those in use).
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// How long a statement waits for another connection's write lock (SQLite) or for a free connection
/// (both) before failing. Writes are short, so waiting this long means something is badly stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite reading connections. A few let reads proceed beside the write (WAL) without holding many
/// file handles.
const MAX_READERS: u32 = 8;
/// PostgreSQL connections per node. Requests that touch the database (key checks, sessions, kv) hold
/// one only for a statement or a short transaction.
const PG_CONNECTIONS: u32 = 16;

/// How durable an acknowledged write is (SQLite; PostgreSQL commits are durable by its own settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: every commit is fsynced before it is acknowledged, so it survives a crash
    /// of the process or the machine. The default.
    Full,
    /// `synchronous = NORMAL`: in WAL mode a commit survives a process crash but may be lost on power
    /// failure. Only for measuring what FULL costs (benches).
    Normal,
}

/// Open (creating if missing) the SQLite database at `path` and bring its schema up to date.
pub async fn open(path: &Path) -> Result<Pool> {
    open_with(path, Durability::Full).await
}

/// Open the database at `location` and bring its schema up to date.
pub async fn open_location(location: &Location) -> Result<Pool> {
    match location {
        Location::Sqlite(path) => open_with(path, Durability::Full).await,
        Location::Postgres(url) => open_postgres(url).await,
    }
}

/// [`open`] with a chosen durability.
pub async fn open_with(path: &Path, durability: Durability) -> Result<Pool> {
    sqlx::any::install_default_drivers();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let path = std::path::absolute(path)
        .with_context(|| format!("cannot resolve database path {}", path.display()))?;
    let options = sqlite_options(&path)?;
    let pragmas: std::sync::Arc<str> = sqlite_pragmas(durability).into();
    let pool_options = || {
        let pragmas = pragmas.clone();
        AnyPoolOptions::new()
            .acquire_timeout(BUSY_TIMEOUT)
            .after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    conn.execute(sqlx::raw_sql(&pragmas)).await?;
                    Ok(())
                })
            })
    };
    let write = pool_options()
        .max_connections(1)
        .connect_with(options.clone())
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    sqlx::migrate!("./migrations/sqlite")
        .run(&write)
        .await
        .with_context(|| format!("cannot apply migrations to database {}", path.display()))?;
    let read = pool_options()
        .max_connections(MAX_READERS)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    Ok(Pool {
        read,
        write,
        location: Location::Sqlite(path),
    })
}

/// Each SQLite connection's page cache, in KiB: at most this much of the database's pages is kept in the
/// process per connection, so all of SQLite's page caches together hold at most
/// `(1 + MAX_READERS) × SQLITE_CACHE_KIB` = 4.5 MiB. SQLite's default is 2,000 KiB per connection
/// (17.6 MiB for the nine): the writer's cache filled with the audit rows each admin reload appends,
/// ~100 bytes of heap per reload until it held its 2,000 KiB after ~18,000 reloads (docs/benchmarks.md,
/// "Soak slope"); now it is full after ~5,000. A page the cache does not hold is read again from the
/// operating system's file cache (a `pread`); the hot pages — the b-tree roots and inner pages of keys,
/// sessions and the key-value store — stay well within 128 pages of 4 KiB. The readers come and go
/// (sqlx closes one idle for 10 minutes), each with ~100 KiB of its own besides its cache (lookaside,
/// the parsed schema).
const SQLITE_CACHE_KIB: u32 = 512;

/// Per-connection SQLite settings (WAL is a property of the file, set again harmlessly); the page cache
/// is capped at [`SQLITE_CACHE_KIB`] (a negative `cache_size` is in KiB rather than pages).
fn sqlite_pragmas(durability: Durability) -> String {
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 5000; PRAGMA cache_size = -{SQLITE_CACHE_KIB};"
    )
}

/// The `Any` driver's options for the SQLite file at `path` (absolute), created when missing.
fn sqlite_options(path: &Path) -> Result<AnyConnectOptions> {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    // The driver percent-decodes the path, so everything a URL treats specially is encoded.
    const PATH: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}');
    let text = path
        .to_str()
        .with_context(|| format!("database path {} is not UTF-8", path.display()))?;
    let url = format!("sqlite://{}?mode=rwc", utf8_percent_encode(text, PATH));
    AnyConnectOptions::from_str(&url)
        .with_context(|| format!("cannot use database path {}", path.display()))
}

/// Connect to PostgreSQL at `url` and apply its migrations (under sqlx's migration lock, so nodes
/// starting together apply them once).
async fn open_postgres(url: &str) -> Result<Pool> {
    sqlx::any::install_default_drivers();
    let shown = Location::Postgres(url.to_owned()).redacted();
    let options = AnyConnectOptions::from_str(url)
        .with_context(|| format!("invalid database URL {shown}"))?;
    let pool = AnyPoolOptions::new()
        .max_connections(PG_CONNECTIONS)
        .acquire_timeout(BUSY_TIMEOUT)
        .connect_with(options)
        .await
        .with_context(|| format!("cannot connect to database {shown}"))?;
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .with_context(|| format!("cannot apply migrations to database {shown}"))?;
    Ok(Pool {
        read: pool.clone(),
        write: pool,
        location: Location::Postgres(url.to_owned()),
    })
}

/// A write transaction.
pub type WriteTx = sqlx::Transaction<'static, sqlx::Any>;

/// Start a transaction that changes accounts (users, keys, sessions): [`begin_write_scoped`] on the
/// scope `accounts`.
pub async fn begin_write(pool: &Pool) -> Result<WriteTx, sqlx::Error> {
    begin_write_scoped(pool, "accounts").await
}

/// Start a transaction that will write, serialized with every other write transaction on `scope`.
///
/// On SQLite this is `BEGIN IMMEDIATE`: the write lock is taken at the start (waiting up to the busy
/// timeout), because a transaction that reads first and writes later fails at once with "database is
/// locked" when another connection wrote in between; SQLite has one writer, so every scope is one.
/// On PostgreSQL it is `BEGIN` followed by `pg_advisory_xact_lock` on the scope's hash, held until
/// commit or rollback: transactions on one scope run one at a time on every node, others in parallel.
pub async fn begin_write_scoped(pool: &Pool, scope: &str) -> Result<WriteTx, sqlx::Error> {
    match pool.backend() {
        Backend::Sqlite => pool.writer().begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => {
            let mut tx = pool.writer().begin().await?;
            sqlx::query(
                "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked",
            )
            .bind(scope)
            .execute(&mut *tx)
            .await?;
            Ok(tx)
        }
    }
}

/// Run `job` on one node at a time: on PostgreSQL only when this node wins the session-level advisory
/// lock `name` (another node running it now means this round is skipped); on SQLite (one node) always.
/// Whether it ran.
pub async fn run_once<F, T>(pool: &Pool, name: &str, job: F) -> Result<Option<T>>
where
    F: std::future::Future<Output = T>,
{
    if pool.backend() == Backend::Sqlite {
        return Ok(Some(job.await));
    }
    // The lock belongs to this connection's session: take it and release it on the same one.
    let mut conn = pool.writer().acquire().await?;
    let (won,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock(hashtext($1))")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    if !won {
        return Ok(None);
    }
    let out = job.await;
    sqlx::query_as::<_, (bool,)>("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Some(out))
}

/// The database's own consistency check: SQLite's `integrity_check` (`"ok"` when sound); PostgreSQL
/// checks itself, so `"ok"` when it answers.
pub async fn integrity_check(pool: &Pool) -> Result<String> {
    let sql = match pool.backend() {
        Backend::Sqlite => "PRAGMA integrity_check",
        Backend::Postgres => "SELECT 'ok'",
    };
    let (verdict,): (String,) = sqlx::query_as(sql).fetch_one(pool.reader()).await?;
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
        // Every connection's page cache is capped (negative: KiB), the writer's and the readers'.
        for conn in [pool.writer(), pool.reader()] {
            let (cache,): (i64,) = sqlx::query_as("PRAGMA cache_size")
                .fetch_one(conn)
                .await
                .unwrap();
            assert_eq!(cache, -i64::from(SQLITE_CACHE_KIB));
        }
        pool.close().await;
        // A second open finds the migrations applied and changes nothing.
        open(&path).await.unwrap().close().await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn both_durabilities_cap_the_page_cache() {
        for (durability, synchronous) in [
            (Durability::Full, "synchronous = FULL;"),
            (Durability::Normal, "synchronous = NORMAL;"),
        ] {
            let pragmas = sqlite_pragmas(durability);
            assert!(pragmas.contains(synchronous), "{pragmas}");
            assert!(pragmas.contains("cache_size = -512;"), "{pragmas}");
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
