//! Unit tests of handlers, natively: `cargo test` runs them on the machine's own target, where the
//! host's imports are in-memory fakes this module drives.
//!
//! On every target but `wasm32`, [`config`](crate::config), [`clock`](crate::clock),
//! [`kv`](crate::kv) and [`log`](mod@crate::log) talk to a fake host instead of the real one. Each
//! thread has its own (libtest runs every test on a thread of its own), so every test starts with no
//! configuration, an empty store, no logs and the clock at [`START_MILLIS`]. Build requests with
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

use crate::fake::{Fakes, with};
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

/// Every key in this thread's store, in order.
pub fn kv_keys() -> Vec<String> {
    with(|f| f.kv.keys().cloned().collect())
}

/// Put this thread's fakes back as a new test finds them: no configuration, an empty store, no logs,
/// the clocks at their start. Only needed to start over within one test.
pub fn reset() {
    with(|f| *f = Fakes::default());
}
