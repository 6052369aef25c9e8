//! The accounts' clock: what session expiry, key expiry and login lockouts measure time with.
//!
//! It is the system clock plus an offset that starts at zero. The server never moves it; a test does,
//! with [`Clock::advance`] (and may [`Clock::stop`] it first), so that "one idle second later" happens
//! at once and exactly, instead of after a real sleep whose length a loaded machine decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// See the module docs. Clones share one state.
#[derive(Debug, Clone)]
pub struct Clock {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    /// Added to the system clock.
    offset_ms: AtomicI64,
    /// When stopped: the time it stopped at; [`RUNNING`] otherwise.
    stopped_at: AtomicI64,
}

/// `stopped_at` of a clock that follows the system clock.
const RUNNING: i64 = i64::MIN;

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self {
            state: Arc::new(State {
                offset_ms: AtomicI64::new(0),
                stopped_at: AtomicI64::new(RUNNING),
            }),
        }
    }

    /// Now, in milliseconds since the Unix epoch (how every table stores time).
    pub fn now_ms(&self) -> i64 {
        match self.state.stopped_at.load(Ordering::Relaxed) {
            RUNNING => unix_ms() + self.state.offset_ms.load(Ordering::Relaxed),
            at => at,
        }
    }

    /// Stop this clock (and every clone of it) where it is: from now on only [`Clock::advance`]
    /// moves it, so a test's time steps are exact however slowly the machine runs.
    pub fn stop(&self) {
        let now = self.now_ms();
        self.state.stopped_at.store(now, Ordering::Relaxed);
    }

    /// Move this clock (and every clone of it) `by` into the future.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        if self.state.stopped_at.load(Ordering::Relaxed) == RUNNING {
            self.state.offset_ms.fetch_add(ms, Ordering::Relaxed);
        } else {
            self.state.stopped_at.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

/// The system clock in milliseconds since the Unix epoch (0 before it): the one place the host reads
/// wall-clock time as a number.
pub fn unix_ms() -> i64 {
    ms_of(SystemTime::now())
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn ms_of(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_advance_together() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now_ms();
        clock.advance(Duration::from_secs(3600));
        let after = other.now_ms();
        assert!(after - before >= 3_600_000, "{before} -> {after}");
        assert!(after - unix_ms() >= 3_599_000);
    }

    #[test]
    fn a_stopped_clock_moves_only_when_advanced() {
        let clock = Clock::system();
        clock.stop();
        let at = clock.now_ms();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(clock.now_ms(), at);
        clock.clone().advance(Duration::from_millis(1500));
        assert_eq!(clock.now_ms(), at + 1500);
    }
}
