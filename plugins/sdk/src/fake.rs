//! In-memory stand-ins for the host's imports (config, clock, kv, log) on native targets, where
//! wit-bindgen's import stubs only panic: with them, handlers run in `cargo test`. Each thread has its
//! own set (libtest runs every test on a thread of its own, so tests are isolated); tests drive them
//! through [`crate::testing`]. The submodules mirror the signatures of the generated imports, so
//! lib.rs picks one or the other with a single `cfg`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::bindings::plugin_host::plugin::log::Level;

/// Where the fake wall clock starts: 2023-11-14T22:13:20Z, in milliseconds since the Unix epoch.
pub const START_MILLIS: u64 = 1_700_000_000_000;

/// Where the fake monotonic clock starts, in nanoseconds (any fixed point will do; the host's is
/// arbitrary too).
const START_NANOS: u64 = 1_000_000_000;

/// Longest key the host accepts, in bytes (host/src/accounts/kv.rs).
const MAX_KEY_BYTES: usize = 512;

/// One thread's fake host.
pub(crate) struct Fakes {
    pub(crate) config: BTreeMap<String, String>,
    pub(crate) now_millis: u64,
    pub(crate) monotonic_nanos: u64,
    pub(crate) logs: Vec<(Level, String)>,
    /// Ordered like the host's `ORDER BY key`, so `list` answers in the same order.
    pub(crate) kv: BTreeMap<String, Vec<u8>>,
}

impl Default for Fakes {
    fn default() -> Self {
        Self {
            config: BTreeMap::new(),
            now_millis: START_MILLIS,
            monotonic_nanos: START_NANOS,
            logs: Vec::new(),
            kv: BTreeMap::new(),
        }
    }
}

thread_local! {
    static FAKES: RefCell<Fakes> = RefCell::new(Fakes::default());
}

/// Run `f` on this thread's fakes.
pub(crate) fn with<R>(f: impl FnOnce(&mut Fakes) -> R) -> R {
    FAKES.with_borrow_mut(f)
}

/// `config.get`: the values set with `testing::set_config`.
pub mod config {
    pub fn get(key: &str) -> Option<String> {
        super::with(|f| f.config.get(key).cloned())
    }
}

/// `clock`: a wall clock that stands still until a test moves it; the monotonic clock moves with it.
pub mod clock {
    pub fn now_millis() -> u64 {
        super::with(|f| f.now_millis)
    }

    pub fn monotonic_nanos() -> u64 {
        super::with(|f| f.monotonic_nanos)
    }
}

/// `log.log`: kept for `testing::logs`, and echoed to stderr (shown by `cargo test -- --nocapture`).
pub mod log {
    use super::Level;

    pub fn log(level: Level, message: &str) {
        eprintln!("plugin log {}: {message}", name(level));
        super::with(|f| f.logs.push((level, message.to_owned())));
    }

    fn name(level: Level) -> &'static str {
        match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// `kv`: an ordered map with the host's key rule. The host's value and total caps are not enforced.
pub mod kv {
    pub use crate::bindings::plugin_host::plugin::kv::Error;

    use std::ops::Bound;

    use super::{MAX_KEY_BYTES, with};

    /// The host's key rule, with the host's message.
    fn check_key(key: &str) -> Result<(), Error> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(Error::InvalidKey(format!(
                "keys must have 1 to {MAX_KEY_BYTES} bytes; this one has {}",
                key.len()
            )));
        }
        Ok(())
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
        check_key(key)?;
        Ok(with(|f| f.kv.get(key).cloned()))
    }

    pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
        check_key(key)?;
        with(|f| f.kv.insert(key.to_owned(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &str) -> Result<bool, Error> {
        check_key(key)?;
        Ok(with(|f| f.kv.remove(key).is_some()))
    }

    pub fn list(prefix: &str) -> Result<Vec<String>, Error> {
        Ok(with(|f| {
            f.kv.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(prefix))
                .cloned()
                .collect()
        }))
    }
}
