//! The login rate limit: failures are counted per user name and per client address; after `free`
//! failures each further one locks that name or address out for twice as long as the last (1 s, 2 s,
//! 4 s, ... up to a cap). A locked-out attempt is refused with 429 and `Retry-After` before any password
//! is checked. A successful login clears the user's count and the address's count.
//!
//! The counts live in memory for a single node, and in the `login_failures` table in cluster mode, so
//! that N nodes do not allow N times the attempts. Behind a trusted proxy the address is the real
//! client's (`http/proxy.rs`), not the proxy's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::accounts::db::{Backend, Pool};
use crate::clock::Clock;

/// Entries kept before old ones are swept (bounds memory under a spray of names or addresses).
const MAX_ENTRIES: usize = 100_000;

/// Counts for one user name or one client address.
#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// Milliseconds on the limiter's clock.
    locked_until: Option<i64>,
    last_failure: i64,
}

/// See the module docs.
#[derive(Debug)]
pub struct LoginLimiter {
    free: u32,
    max_lockout: Duration,
    clock: Clock,
    entries: Mutex<HashMap<String, Entry>>,
    /// Cluster mode: the counts are in this database instead.
    shared: Option<Pool>,
}

impl LoginLimiter {
    /// `free` failures before lockouts start; lockouts double from 1 s up to `max_lockout`; time is
    /// read from `clock`.
    pub fn new(free: u32, max_lockout: Duration, clock: Clock) -> Self {
        Self {
            free,
            max_lockout,
            clock,
            entries: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Keep the counts in `db` when it is PostgreSQL (cluster mode), where every node sees them.
    pub fn shared_through(mut self, db: &Pool) -> Self {
        if db.backend() == Backend::Postgres {
            self.shared = Some(db.clone());
        }
        self
    }

    /// A count whose last failure is older than this starts again from zero.
    fn forget_ms(&self) -> i64 {
        self.max_lockout.as_millis() as i64 * 2
    }

    fn lockout_after(&self, failures: u32) -> Option<Duration> {
        (failures > self.free).then(|| {
            let doublings = (failures - self.free - 1).min(30);
            Duration::from_secs(1u64 << doublings).min(self.max_lockout)
        })
    }

    /// The longest remaining lockout among `keys` (e.g. `["user:ada", "addr:10.0.0.1"]`), if any.
    pub async fn locked(&self, keys: &[String]) -> Option<Duration> {
        let now = self.clock.now_ms();
        if let Some(db) = &self.shared {
            let mut longest: Option<i64> = None;
            for key in keys {
                let row: Result<Option<(Option<i64>,)>, _> =
                    sqlx::query_as("SELECT locked_until FROM login_failures WHERE subject = $1")
                        .bind(key)
                        .fetch_optional(db.reader())
                        .await;
                match row {
                    Ok(row) => longest = longest.max(row.and_then(|(until,)| until)),
                    // Signing in needs the database anyway; the password check will fail as well.
                    Err(e) => tracing::warn!(error = %e, "cannot read login failures"),
                }
            }
            return longest
                .filter(|until| *until > now)
                .map(|until| Duration::from_millis((until - now) as u64).min(self.max_lockout));
        }
        let entries = self.entries.lock().expect("limiter lock");
        keys.iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| Duration::from_millis((until - now) as u64).min(self.max_lockout))
            .max()
    }

    /// Count a failed attempt against each of `keys`.
    pub async fn failed(&self, keys: &[String]) {
        let now = self.clock.now_ms();
        if let Some(db) = &self.shared {
            for key in keys {
                if let Err(e) = self.failed_shared(db, key, now).await {
                    tracing::warn!(error = %e, "cannot count a login failure");
                }
            }
            return;
        }
        let mut entries = self.entries.lock().expect("limiter lock");
        if entries.len() >= MAX_ENTRIES {
            let forget = self.forget_ms();
            entries.retain(|_, e| now - e.last_failure < forget);
        }
        for key in keys {
            let e = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                locked_until: None,
                last_failure: now,
            });
            e.failures += 1;
            e.last_failure = now;
            if let Some(lockout) = self.lockout_after(e.failures) {
                e.locked_until = Some(now + lockout.as_millis() as i64);
            }
        }
    }

    /// Count one failure of `key` in the shared table: one atomic increment (every node's failures
    /// add up), then the lockout it earns.
    async fn failed_shared(&self, db: &Pool, key: &str, now: i64) -> Result<(), sqlx::Error> {
        let (failures,): (i64,) = sqlx::query_as(
            "INSERT INTO login_failures (subject, failures, locked_until, last_failure)
             VALUES ($1, 1, NULL, $2)
             ON CONFLICT (subject) DO UPDATE SET
                 failures = CASE WHEN login_failures.last_failure < $3 THEN 1
                                 ELSE login_failures.failures + 1 END,
                 last_failure = excluded.last_failure
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - self.forget_ms())
        .fetch_one(db.writer())
        .await?;
        if let Some(lockout) = self.lockout_after(failures.clamp(0, u32::MAX as i64) as u32) {
            sqlx::query(
                "UPDATE login_failures SET locked_until = GREATEST(COALESCE(locked_until, 0), $1)
                 WHERE subject = $2",
            )
            .bind(now + lockout.as_millis() as i64)
            .bind(key)
            .execute(db.writer())
            .await?;
        }
        Ok(())
    }

    /// Cluster mode: delete counts nobody has added to for a while (run by the once-per-cluster sweep).
    pub async fn sweep(&self) -> Result<u64, sqlx::Error> {
        let Some(db) = &self.shared else {
            return Ok(0);
        };
        let done = sqlx::query("DELETE FROM login_failures WHERE last_failure < $1")
            .bind(self.clock.now_ms() - self.forget_ms())
            .execute(db.writer())
            .await?;
        Ok(done.rows_affected())
    }

    /// Forget the counts of `keys` (after a successful login).
    pub async fn succeeded(&self, keys: &[String]) {
        if let Some(db) = &self.shared {
            for key in keys {
                let cleared = sqlx::query("DELETE FROM login_failures WHERE subject = $1")
                    .bind(key)
                    .execute(db.writer())
                    .await;
                if let Err(e) = cleared {
                    tracing::warn!(error = %e, "cannot clear login failures");
                }
            }
            return;
        }
        let mut entries = self.entries.lock().expect("limiter lock");
        for key in keys {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lockouts_start_after_free_failures_and_double() {
        // A clock far in the future: lockouts are measured on it, not on the system clock.
        let clock = Clock::system();
        clock.advance(Duration::from_secs(86_400));
        let limiter = LoginLimiter::new(2, Duration::from_secs(3), clock.clone());
        let keys = vec!["user:a".to_owned()];
        limiter.failed(&keys).await;
        limiter.failed(&keys).await;
        assert!(limiter.locked(&keys).await.is_none());
        limiter.failed(&keys).await;
        let first = limiter.locked(&keys).await.unwrap();
        assert!(first <= Duration::from_secs(1) && first > Duration::from_millis(900));
        clock.advance(Duration::from_secs(1));
        assert!(
            limiter.locked(&keys).await.is_none(),
            "a lockout ends on time"
        );
        limiter.failed(&keys).await;
        assert!(limiter.locked(&keys).await.unwrap() > Duration::from_millis(1900));
        limiter.failed(&keys).await;
        // Capped.
        assert!(limiter.locked(&keys).await.unwrap() <= Duration::from_secs(3));
        assert!(limiter.locked(&keys).await.unwrap() > Duration::from_millis(2900));
        assert!(limiter.locked(&["user:b".to_owned()]).await.is_none());
        limiter.succeeded(&keys).await;
        assert!(limiter.locked(&keys).await.is_none());
    }
}
