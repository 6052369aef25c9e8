//! Unit tests of handlers, natively: `cargo test` runs them on the machine's own target, where the
//! host's imports are in-memory fakes this module drives.
//!
//! On every target but `wasm32`, [`config`](crate::config), [`clock`](crate::clock),
//! [`kv`](crate::kv), [`log`](mod@crate::log), [`random`](crate::random) and [`http`](crate::http)
//! talk to a fake host instead of the real one. Each thread has its own (libtest runs every test on a
//! thread of its own), so every test starts with no configuration, an empty store, no logs (and every
//! level logged), the clock at [`START_MILLIS`], unseeded randomness and no upstream: an outbound call
//! fails with `not-allowed` until [`http_responder`] registers one. Build requests with
//! [`Request::builder`](crate::Request::builder) and run them with
//! [`Plugin::call`](crate::Plugin::call).
//! The store's values can be read back with [`kv::get`](crate::kv::get) itself.
//!
//! ```
//! use plugin_sdk::prelude::*;
//! use plugin_sdk::{clock, kv, testing};
//!
//! fn plugin() -> Plugin {
//!     Plugin::new("stamp", "0.1.0", "Remembers when it was called")
//!         .post("/stamp/{name}", stamp)
//! }
//!
//! fn stamp(req: &Request) -> Result {
//!     let name: String = req.param("name")?;
//!     kv::set_json(&format!("stamp/{name}"), &clock::now_millis())?;
//!     plugin_sdk::log!(Info, "stamped {name}");
//!     Ok(Response::empty().status(204))
//! }
//!
//! testing::advance_millis(5);
//! let response = plugin().call(Request::builder().post("/stamp/ada").build())?;
//! assert_eq!(response.status_code(), 204);
//! assert_eq!(kv::get_json::<u64>("stamp/ada")?, Some(testing::START_MILLIS + 5));
//! assert_eq!(testing::kv_keys(), ["stamp/ada"]);
//! assert_eq!(testing::logs(), [(plugin_sdk::log::Level::Info, "stamped ada".to_owned())]);
//! # Ok::<(), Error>(())
//! ```

use std::rc::Rc;

use crate::fake::{Fakes, with};
use crate::http;
use crate::log::Level;

pub use crate::fake::START_MILLIS;

/// Set the configuration value `key` (what `[plugins.<name>.config]` would hold on a host).
///
/// ```
/// plugin_sdk::testing::set_config("greeting", "hi");
/// assert_eq!(plugin_sdk::config::get("greeting").as_deref(), Some("hi"));
/// ```
pub fn set_config(key: &str, value: &str) {
    with(|f| f.config.insert(key.to_owned(), value.to_owned()));
}

/// Remove every configuration value.
pub fn clear_config() {
    with(|f| f.config.clear());
}

/// Set the wall clock to `ms` milliseconds since the Unix epoch. The monotonic clock moves forward by
/// as much as the wall clock does, and stands still when the wall clock is set back.
pub fn set_now_millis(ms: u64) {
    with(|f| {
        let forward = ms.saturating_sub(f.now_millis);
        f.monotonic_nanos += forward * 1_000_000;
        f.now_millis = ms;
    });
}

/// Move both clocks forward by `ms` milliseconds.
///
/// ```
/// use plugin_sdk::{clock, testing};
/// let before = clock::monotonic_nanos();
/// testing::advance_millis(1_500);
/// assert_eq!(clock::now_millis(), testing::START_MILLIS + 1_500);
/// assert_eq!(clock::monotonic_nanos() - before, 1_500_000_000);
/// ```
pub fn advance_millis(ms: u64) {
    with(|f| {
        f.now_millis += ms;
        f.monotonic_nanos += ms * 1_000_000;
    });
}

/// What the plugin logged on this thread so far, oldest first.
pub fn logs() -> Vec<(Level, String)> {
    with(|f| f.logs.clone())
}

/// What the plugin logged on this thread so far, and forget it.
pub fn take_logs() -> Vec<(Level, String)> {
    with(|f| std::mem::take(&mut f.logs))
}

/// Write log lines at `level` and above only, as a host whose log is set to `level` would;
/// [`log::enabled`](crate::log::enabled) answers accordingly and lines below it are dropped. `None`
/// turns the log off. Every level is written until a test sets one.
///
/// ```
/// use plugin_sdk::log::{self, Level};
/// use plugin_sdk::testing;
///
/// testing::set_log_level(Some(Level::Info));
/// assert!(!log::enabled(Level::Debug) && log::enabled(Level::Warn));
/// plugin_sdk::log!(Debug, "not kept");
/// plugin_sdk::log!(Info, "kept");
/// assert_eq!(testing::logs(), [(Level::Info, "kept".to_owned())]);
/// ```
pub fn set_log_level(level: Option<Level>) {
    with(|f| f.log_level = level);
}

/// Make [`random`](crate::random) repeatable on this thread: the same seed gives the same bytes (and
/// ids) in every run. Without it, the fake's bytes differ in every run (std's OS-seeded hasher keys;
/// fine for ids in tests, not meant for cryptography).
///
/// ```
/// use plugin_sdk::{random, testing};
///
/// testing::seed_random(7);
/// let first = random::uuid();
/// testing::seed_random(7);
/// assert_eq!(random::uuid(), first);
/// ```
pub fn seed_random(seed: u64) {
    with(|f| f.random_seed = Some(seed));
}

/// Answer this thread's outbound calls ([`http`](crate::http)) with `responder`, in place of any
/// upstream: it gets each request as it would be sent and returns the upstream's response, or an
/// [`http::Error`] to play a failure (a timeout, a refused connection, an origin the operator did not
/// allow). Without a responder every call fails with `not-allowed`, like on a host that allows the
/// plugin no origin.
///
/// ```
/// use plugin_sdk::http::{self, ErrorKind};
/// use plugin_sdk::testing;
///
/// testing::http_responder(|req| match req.url() {
///     "http://up.test/ok" => Ok(http::Response::new(200).with_body("fine")),
///     _ => Err(http::Error::new(ErrorKind::ConnectionFailed, "connection refused")),
/// });
/// let ok = http::get("http://up.test/ok").send().unwrap();
/// assert_eq!(ok.text().unwrap(), "fine");
/// let down = http::get("http://up.test/down").send().unwrap_err();
/// assert_eq!(down.kind(), ErrorKind::ConnectionFailed);
/// assert_eq!(testing::http_requests().len(), 2);
/// ```
pub fn http_responder(
    responder: impl Fn(&http::Request) -> Result<http::Response, http::Error> + 'static,
) {
    with(|f| f.http_responder = Some(Rc::new(responder)));
}

/// Remove the responder: outbound calls fail with `not-allowed` again.
pub fn clear_http_responder() {
    with(|f| f.http_responder = None);
}

/// Every outbound request this thread sent, oldest first (whether a responder answered it or not).
pub fn http_requests() -> Vec<http::Request> {
    with(|f| f.http_requests.clone())
}

/// Every key in this thread's store, in order.
pub fn kv_keys() -> Vec<String> {
    with(|f| f.kv.keys().cloned().collect())
}

/// Put this thread's fakes back as a new test finds them: no configuration, an empty store, no logs
/// and every level logged, the clocks at their start, unseeded randomness, no responder and no
/// recorded requests. Only needed to start over within one test.
pub fn reset() {
    with(|f| *f = Fakes::default());
}
