//! In-memory stand-ins for the host's imports (config, clock, kv, log, random, http-client) on native
//! targets, where
//! wit-bindgen's import stubs only panic: with them, handlers run in `cargo test`. Each thread has its
//! own set (libtest runs every test on a thread of its own, so tests are isolated); tests drive them
//! through [`crate::testing`]. The submodules mirror the signatures of the generated imports, so
//! lib.rs picks one or the other with a single `cfg`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::bindings::plugin_host::plugin::log::Level;
use crate::http;

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
    /// The least level the log writes (`None`: nothing); everything by default.
    pub(crate) log_level: Option<Level>,
    /// Ordered like the host's `ORDER BY key`, so `list` answers in the same order.
    pub(crate) kv: BTreeMap<String, Vec<u8>>,
    /// With a seed, `random` is a repeatable sequence (splitmix64); without, std's OS-seeded keys.
    pub(crate) random_seed: Option<u64>,
    /// What answers `http-client.send`; none is the host's default of no origin allowed.
    pub(crate) http_responder: Option<Responder>,
    /// Every request `send` was given, oldest first.
    pub(crate) http_requests: Vec<http::Request>,
}

/// A test's stand-in for the upstreams (`testing::http_responder`).
pub(crate) type Responder = Rc<dyn Fn(&http::Request) -> Result<http::Response, http::Error>>;

impl Default for Fakes {
    fn default() -> Self {
        Self {
            config: BTreeMap::new(),
            now_millis: START_MILLIS,
            monotonic_nanos: START_NANOS,
            logs: Vec::new(),
            log_level: Some(Level::Trace),
            kv: BTreeMap::new(),
            random_seed: None,
            http_responder: None,
            http_requests: Vec::new(),
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

/// `log`: lines at or above the level `testing::set_log_level` set (every level by default) are kept
/// for `testing::logs` and echoed to stderr (shown by `cargo test -- --nocapture`); the others are
/// dropped, as the host drops them.
pub mod log {
    use super::Level;

    pub fn log(level: Level, message: &str) {
        if !enabled(level) {
            return;
        }
        eprintln!("plugin log {}: {message}", name(level));
        super::with(|f| f.logs.push((level, message.to_owned())));
    }

    pub fn enabled(level: Level) -> bool {
        super::with(|f| f.log_level.is_some_and(|least| level as u8 >= least as u8))
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

/// `random`: without a seed, bytes from std's `RandomState`, whose keys std takes from the operating
/// system (different in every run; not for cryptography); with `testing::seed_random`, a repeatable
/// splitmix64 sequence. Like the host, at most 65,536 bytes per call.
pub mod random {
    use std::hash::{BuildHasher, Hasher, RandomState};

    use crate::random::MAX_BYTES_PER_CALL;

    pub fn get_random_bytes(len: u32) -> Vec<u8> {
        let len = (len as usize).min(MAX_BYTES_PER_CALL);
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&next().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn next() -> u64 {
        super::with(|f| match &mut f.random_seed {
            Some(state) => {
                // splitmix64
                *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = *state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            }
            None => {
                // Each RandomState has new keys (std seeds them from the OS once per thread, then moves
                // them on), and SipHash mixes them into the output, even for nothing hashed.
                RandomState::new().build_hasher().finish()
            }
        })
    }
}

/// `http-client.send`: the request is recorded for `testing::http_requests` and handed to the responder
/// a test registered with `testing::http_responder`; with none, `not-allowed`, as the host answers a
/// plugin no origin is allowed for. A URL that is not `http://` or `https://` is an `invalid-request`,
/// as on the host. The errors are the SDK's own (`http::Error`), so a responder can return any of them.
pub mod http_client {
    pub use crate::bindings::plugin_host::plugin::http_client::{
        IncomingResponse, OutgoingRequest,
    };

    use crate::http::{self, ErrorKind};

    pub fn send(request: &OutgoingRequest) -> Result<IncomingResponse, http::Error> {
        let seen = http::Request::from_wit(request);
        let responder = super::with(|f| {
            f.http_requests.push(seen.clone());
            f.http_responder.clone()
        });
        let scheme = request.url.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("http" | "https")) {
            return Err(http::Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "{:?} is not an absolute http:// or https:// URL",
                    request.url
                ),
            ));
        }
        let Some(responder) = responder else {
            return Err(http::Error::new(
                ErrorKind::NotAllowed,
                "no upstream in tests: register one with plugin_sdk::testing::http_responder",
            ));
        };
        // Called with the fakes free, so the responder may use them (config, logs, ...).
        responder(&seen).map(http::Response::into_wit)
    }
}
