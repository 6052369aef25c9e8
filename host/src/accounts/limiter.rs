//! The login rate limit, in memory: failures are counted per user name and per client address; after
//! `free` failures each further one locks that name or address out for twice as long as the last
//! (1 s, 2 s, 4 s, ... up to a cap). A locked-out attempt is refused with 429 and `Retry-After` before
//! any password is checked. A successful login clears the user's count and the address's count.
//!
//! Per process: with several nodes, each has its own counts (a later issue may move them to the DB).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

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
        }
    }

    /// The longest remaining lockout among `keys` (e.g. `["user:ada", "addr:10.0.0.1"]`), if any.
    pub fn locked(&self, keys: &[String]) -> Option<Duration> {
        let now = self.clock.now_ms();
        let entries = self.entries.lock().expect("limiter lock");
        keys.iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| Duration::from_millis((until - now) as u64).min(self.max_lockout))
            .max()
    }

    /// Count a failed attempt against each of `keys`.
    pub fn failed(&self, keys: &[String]) {
        let now = self.clock.now_ms();
        let mut entries = self.entries.lock().expect("limiter lock");
        if entries.len() >= MAX_ENTRIES {
            let forget = self.max_lockout.as_millis() as i64 * 2;
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
            if e.failures > self.free {
                let doublings = (e.failures - self.free - 1).min(30);
                let lockout = Duration::from_secs(1u64 << doublings).min(self.max_lockout);
                e.locked_until = Some(now + lockout.as_millis() as i64);
            }
        }
    }

    /// Forget the counts of `keys` (after a successful login).
    pub fn succeeded(&self, keys: &[String]) {
        let mut entries = self.entries.lock().expect("limiter lock");
        for key in keys {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockouts_start_after_free_failures_and_double() {
        // A clock far in the future: lockouts are measured on it, not on the system clock.
        let clock = Clock::system();
        clock.advance(Duration::from_secs(86_400));
        let limiter = LoginLimiter::new(2, Duration::from_secs(3), clock.clone());
        let keys = vec!["user:a".to_owned()];
        limiter.failed(&keys);
        limiter.failed(&keys);
        assert!(limiter.locked(&keys).is_none());
        limiter.failed(&keys);
        let first = limiter.locked(&keys).unwrap();
        assert!(first <= Duration::from_secs(1) && first > Duration::from_millis(900));
        clock.advance(Duration::from_secs(1));
        assert!(limiter.locked(&keys).is_none(), "a lockout ends on time");
        limiter.failed(&keys);
        assert!(limiter.locked(&keys).unwrap() > Duration::from_millis(1900));
        limiter.failed(&keys);
        // Capped.
        assert!(limiter.locked(&keys).unwrap() <= Duration::from_secs(3));
        assert!(limiter.locked(&keys).unwrap() > Duration::from_millis(2900));
        assert!(limiter.locked(&["user:b".to_owned()]).is_none());
        limiter.succeeded(&keys);
        assert!(limiter.locked(&keys).is_none());
    }
}
