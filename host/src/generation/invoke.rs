//! One plugin call: a fresh `Store` with limits and a deadline, an instance from the pool (via the
//! plugin's `InstancePre`), the call, and the classification of what went wrong. The Store and instance
//! are dropped when the call returns, so nothing a plugin allocates outlives its request — unless the
//! operator turned on instance reuse for the plugin (`warm.rs`), which keeps a healthy instance for
//! a bounded number of further requests.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap, UpdateDeadline};

use crate::accounts::kv::KvStore;
use crate::bindings::{PluginPre, clock, config, http_client, kv, log, random, types};
use crate::config::AllowedOrigin;
use crate::generation::engine::PluginEngine;
use crate::generation::outbound::{self, Outbound};
use crate::generation::warm::{Lease, WarmInstance, WarmPool};

/// Longest log line a plugin may write; the rest is cut (a plugin cannot flood the host's log).
const MAX_LOG_MESSAGE: usize = 4096;

/// Log lines one call (`handle` or `describe`) may write; later lines are dropped and counted, and one
/// summary line says how many. A handler that needs more is logging per item, not per request.
pub const MAX_LOG_LINES_PER_CALL: u64 = 100;

/// Bytes of log text (after the cut at [`MAX_LOG_MESSAGE`]) one call may write: 16 lines at the longest.
pub const MAX_LOG_BYTES_PER_CALL: u64 = 64 << 10;

/// What one call has logged so far, and what it tried to log over its budget.
#[derive(Debug, Default)]
struct LogBudget {
    lines: u64,
    bytes: u64,
    dropped_lines: u64,
    dropped_bytes: u64,
}

impl LogBudget {
    /// Whether a line of `len` bytes still fits; counts it either way. Once a line is dropped, so is
    /// every later one: the log shows a call's first lines without holes.
    fn admit(&mut self, len: usize) -> bool {
        let len = len as u64;
        if self.dropped_lines == 0
            && self.lines < MAX_LOG_LINES_PER_CALL
            && self.bytes + len <= MAX_LOG_BYTES_PER_CALL
        {
            self.lines += 1;
            self.bytes += len;
            true
        } else {
            self.dropped_lines += 1;
            self.dropped_bytes += len;
            false
        }
    }
}

/// Who a store belongs to, for log lines.
#[derive(Debug)]
pub struct PluginIdentity {
    pub name: String,
    pub version: String,
}

/// The data of one Store: what the host imports need to serve one call.
pub struct HostState {
    plugin: Arc<PluginIdentity>,
    request_id: String,
    config: Arc<BTreeMap<String, String>>,
    /// The key-value store (absent while the manifest is read: `describe` has no storage).
    kv: Option<Arc<KvStore>>,
    /// The outbound HTTP client (absent during `describe`) and where this plugin may call.
    http: Option<Arc<Outbound>>,
    allow_http: Arc<[AllowedOrigin]>,
    /// Outbound calls made by the current call.
    http_calls: u32,
    limits: Limiter,
    /// When the current call must be interrupted (set before every call).
    deadline: Option<Instant>,
    /// The last line the plugin logged at error level: the SDK logs a panic's message there just
    /// before the instance aborts, so a failed `describe` can say why. Kept even over the log budget.
    last_error: Option<String>,
    /// This call's log lines against its budget.
    log: LogBudget,
    // Required by the component model's resource bookkeeping; plugins own no host resources yet.
    _table: ResourceTable,
}

/// Caps one instance's memories and tables, and remembers whether a cap refused a growth so the host
/// can tell "out of memory at the cap" from other traps.
struct Limiter {
    memory_bytes: usize,
    table_elements: usize,
    hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.hit |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.table_elements;
        self.hit |= !allowed;
        Ok(allowed)
    }

    fn instances(&self) -> usize {
        crate::generation::engine::CORE_INSTANCES_PER_COMPONENT as usize
    }
}

/// Table elements one instance may have (function tables of a plugin are small; this only stops abuse).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Why a call did not produce the plugin's answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline and was interrupted.
    #[error("plugin ran past its deadline of {0:?}")]
    Timeout(Duration),
    /// The plugin trapped (a panic, an out-of-bounds access, stack overflow, ...).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin tried to grow its memory past the per-instance cap (and then failed).
    #[error("plugin hit the memory cap of {cap} bytes: {detail}")]
    MemoryLimit { cap: usize, detail: String },
    /// Anything else: the instance could not be created, a limit refused it, ...
    #[error("plugin call failed: {0}")]
    Failed(String),
}

/// The deadline error raised from the epoch callback.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
struct DeadlineExceeded;

fn classify(err: wasmtime::Error, timeout: Duration, store: &Store<HostState>) -> CallError {
    let limits = &store.data().limits;
    if err.is::<DeadlineExceeded>() {
        CallError::Timeout(timeout)
    } else if limits.hit {
        CallError::MemoryLimit {
            cap: limits.memory_bytes,
            detail: one_line(&err),
        }
    } else if err.is::<Trap>() {
        // `{:#}` gives the trap and its wasm backtrace for the log (the client never sees it), without
        // resolving a native backtrace: with RUST_BACKTRACE set that took ~0.3 s per trap.
        CallError::Trap(one_line(&err))
    } else {
        CallError::Failed(one_line(&err))
    }
}

/// The error chain (for a trap: the trap and its wasm backtrace) on one log line.
fn one_line(err: &wasmtime::Error) -> String {
    format!("{err:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A fresh store for one call of the plugin, interrupted once `timeout` has passed.
fn new_store(
    engine: &Engine,
    callable: &Callable<'_>,
    request_id: &str,
    timeout: Option<Duration>,
) -> Store<HostState> {
    let state = HostState {
        plugin: callable.identity.clone(),
        request_id: request_id.to_owned(),
        config: callable.config.clone(),
        kv: callable.kv.cloned(),
        http: callable.http.cloned(),
        allow_http: callable.allow_http.clone(),
        http_calls: 0,
        limits: Limiter {
            memory_bytes: callable.memory_bytes,
            table_elements: MAX_TABLE_ELEMENTS,
            hit: false,
        },
        deadline: None,
        last_error: None,
        log: LogBudget::default(),
        _table: ResourceTable::new(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    if timeout.is_some() {
        // At every epoch tick: past the call's deadline, interrupt; otherwise yield to tokio and carry on.
        store.epoch_deadline_callback(|store| match store.data().deadline {
            Some(deadline) if Instant::now() >= deadline => {
                Err(wasmtime::Error::new(DeadlineExceeded))
            }
            _ => Ok(UpdateDeadline::Yield(1)),
        });
    }
    start_call(&mut store, request_id, timeout);
    store
}

/// Arm a store for its next call: the request id its logs carry, a fresh deadline, a clear limiter.
fn start_call(store: &mut Store<HostState>, request_id: &str, timeout: Option<Duration>) {
    let state = store.data_mut();
    state.request_id.clear();
    state.request_id.push_str(request_id);
    state.limits.hit = false;
    state.log = LogBudget::default();
    state.http_calls = 0;
    state.deadline = timeout.map(|t| Instant::now() + t);
    if timeout.is_some() {
        store.set_epoch_deadline(1);
    }
}

/// The end of a call: if the plugin logged over its budget, one line says how much was dropped, and the
/// drops are counted per plugin (`plugin_host_plugin_log_lines_dropped_total`).
fn finish_call(store: &mut Store<HostState>) {
    let state = store.data_mut();
    let budget = std::mem::take(&mut state.log);
    if budget.dropped_lines == 0 {
        return;
    }
    let (plugin, version) = (&state.plugin.name, &state.plugin.version);
    crate::app::metrics::process().observe_log_dropped(
        plugin,
        budget.dropped_lines,
        budget.dropped_bytes,
    );
    tracing::warn!(
        plugin = %plugin,
        %version,
        request_id = %state.request_id,
        dropped_lines = budget.dropped_lines,
        dropped_bytes = budget.dropped_bytes,
        "plugin {plugin} dropped {} log lines ({} bytes) over its budget of {MAX_LOG_LINES_PER_CALL} lines and {MAX_LOG_BYTES_PER_CALL} bytes per call",
        budget.dropped_lines,
        budget.dropped_bytes,
    );
}

/// Everything needed to call one plugin; cheap to share across requests.
pub struct Callable<'a> {
    pub engine: &'a PluginEngine,
    pub pre: &'a PluginPre<HostState>,
    pub identity: &'a Arc<PluginIdentity>,
    pub config: &'a Arc<BTreeMap<String, String>>,
    /// The key-value store calls may use (none for `describe`).
    pub kv: Option<&'a Arc<KvStore>>,
    /// The outbound HTTP client calls may use (none for `describe`), and where this plugin may call.
    pub http: Option<&'a Arc<Outbound>>,
    pub allow_http: &'a Arc<[AllowedOrigin]>,
    pub memory_bytes: usize,
    /// Whether calls are interrupted at their deadline (the Engine has epoch interruption).
    pub deadlines: bool,
    /// Idle instances kept for reuse, when the plugin has instance reuse on.
    pub warm: Option<&'a WarmPool>,
}

impl<'a> Callable<'a> {
    /// The same, with access to the key-value store.
    pub fn with_kv(self, kv: Option<&'a Arc<KvStore>>) -> Self {
        Self { kv, ..self }
    }

    /// The same, with outbound HTTP (requests get it; `describe` does not).
    pub fn with_http(self, http: &'a Arc<Outbound>) -> Self {
        Self {
            http: Some(http),
            ..self
        }
    }

    /// Call `describe` on a fresh instance.
    pub async fn describe(&self, timeout: Duration) -> Result<types::Manifest, CallError> {
        let _awake = self.engine.awake();
        let mut store = self.store("describe", timeout);
        let run = async {
            let plugin = self.pre.instantiate_async(&mut store).await?;
            plugin.call_describe(&mut store).await
        };
        let result = run.await;
        finish_call(&mut store);
        result.map_err(
            |e| match (classify(e, timeout, &store), &store.data().last_error) {
                (CallError::Trap(trap), Some(said)) => {
                    CallError::Trap(format!("{said} (trap: {trap})"))
                }
                (other, _) => other,
            },
        )
    }

    /// Call `handle` on a fresh instance.
    pub async fn handle(
        &self,
        request: &types::Request,
        timeout: Duration,
    ) -> Result<Result<types::Response, types::Error>, CallError> {
        let _awake = self.engine.awake();
        let mut store = self.store(&request.id, timeout);
        let run = async {
            let plugin = self.pre.instantiate_async(&mut store).await?;
            plugin.call_handle(&mut store, request).await
        };
        let result = run.await;
        finish_call(&mut store);
        result.map_err(|e| classify(e, timeout, &store))
    }

    /// Serve one request on `lease`: a warm instance, or a new one in the slots the lease holds. With
    /// instance reuse on, a call that succeeded (whatever the plugin answered) puts its instance back
    /// for the next request; any failure drops it.
    pub async fn serve(
        &self,
        lease: Lease,
        request: &types::Request,
        timeout: Duration,
    ) -> Result<Result<types::Response, types::Error>, CallError> {
        let _awake = self.engine.awake();
        let mut warm = match lease {
            Lease::Warm(mut warm) => {
                start_call(
                    &mut warm.store,
                    &request.id,
                    self.deadlines.then_some(timeout),
                );
                warm
            }
            Lease::Fresh(permits) => {
                let mut store = self.store(&request.id, timeout);
                let instance = match self.pre.instantiate_async(&mut store).await {
                    Ok(instance) => instance,
                    Err(e) => {
                        finish_call(&mut store);
                        return Err(classify(e, timeout, &store));
                    }
                };
                Box::new(WarmInstance {
                    store,
                    instance,
                    served: 0,
                    _permits: permits,
                })
            }
        };
        let result = warm.instance.call_handle(&mut warm.store, request).await;
        finish_call(&mut warm.store);
        match result {
            Ok(answer) => {
                warm.served += 1;
                if let Some(pool) = self.warm {
                    pool.give_back(*warm);
                }
                Ok(answer)
            }
            Err(e) => Err(classify(e, timeout, &warm.store)),
        }
    }

    /// Instantiate on a fresh store and drop both without calling anything (for benchmarks that split
    /// a request's cost into instantiation and call).
    #[doc(hidden)]
    pub async fn instantiate_only(&self) -> Result<(), CallError> {
        let timeout = Duration::from_secs(5);
        let mut store = self.store("bench", timeout);
        let result = self.pre.instantiate_async(&mut store).await.map(drop);
        result.map_err(|e| classify(e, timeout, &store))
    }

    fn store(&self, request_id: &str, timeout: Duration) -> Store<HostState> {
        new_store(
            self.engine.wasmtime(),
            self,
            request_id,
            self.deadlines.then_some(timeout),
        )
    }
}

impl types::Host for HostState {}

impl log::Host for HostState {
    fn enabled(&mut self, level: log::Level) -> bool {
        shown(level)
    }

    fn log(&mut self, level: log::Level, message: String) {
        let is_error = matches!(level, log::Level::Error);
        // Lines the subscriber would not print cost no budget (a debug-chatty plugin at info level).
        if !is_error && !shown(level) {
            return;
        }
        let message = match message.char_indices().nth(MAX_LOG_MESSAGE) {
            Some((cut, _)) => &message[..cut],
            None => &message,
        };
        let admitted = self.log.admit(message.len());
        if !admitted && !is_error {
            return;
        }
        let message = one_log_line(message);
        if is_error {
            self.last_error = Some(message.clone());
        }
        if !admitted {
            return;
        }
        let (plugin, version, request_id) =
            (&self.plugin.name, &self.plugin.version, &self.request_id);
        // The request's trace, if it has one (also when the request span is below the log level).
        let trace_id = crate::telemetry::current_trace_id();
        macro_rules! emit {
            ($mac:ident) => {
                tracing::$mac!(target: "plugin", plugin = %plugin, version = %version, request_id = %request_id, trace_id, "{message}")
            };
        }
        match level {
            log::Level::Trace => emit!(trace),
            log::Level::Debug => emit!(debug),
            log::Level::Info => emit!(info),
            log::Level::Warn => emit!(warn),
            log::Level::Error => emit!(error),
        }
    }
}

/// Whether a plugin line at `level` would be printed by the log subscriber.
fn shown(level: log::Level) -> bool {
    use tracing::Level;
    match level {
        log::Level::Trace => tracing::enabled!(target: "plugin", Level::TRACE),
        log::Level::Debug => tracing::enabled!(target: "plugin", Level::DEBUG),
        log::Level::Info => tracing::enabled!(target: "plugin", Level::INFO),
        log::Level::Warn => tracing::enabled!(target: "plugin", Level::WARN),
        log::Level::Error => tracing::enabled!(target: "plugin", Level::ERROR),
    }
}

/// One event, one line: a plugin cannot forge extra log lines with control characters.
fn one_log_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c if c.is_control() => line.push('?'),
            c => line.push(c),
        }
    }
    line
}

impl config::Host for HostState {
    fn get(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

impl HostState {
    fn kv_store(&self) -> Result<Arc<KvStore>, kv::Error> {
        self.kv.clone().ok_or_else(|| {
            kv::Error::Unavailable("the key-value store is not available during describe".into())
        })
    }
}

/// The key-value import. The namespace is this store's plugin name, never an argument.
impl kv::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, kv::Error> {
        self.kv_store()?.get(&self.plugin.name, &key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), kv::Error> {
        self.kv_store()?.set(&self.plugin.name, &key, &value).await
    }

    async fn delete(&mut self, key: String) -> Result<bool, kv::Error> {
        self.kv_store()?.delete(&self.plugin.name, &key).await
    }

    async fn list(&mut self, prefix: String) -> Result<Vec<String>, kv::Error> {
        self.kv_store()?.list(&self.plugin.name, &prefix).await
    }
}

/// Most random bytes one `get-random-bytes` call returns.
const MAX_RANDOM_BYTES: u32 = 65_536;

impl random::Host for HostState {
    fn get_random_bytes(&mut self, len: u32) -> Vec<u8> {
        let mut bytes = vec![0; len.min(MAX_RANDOM_BYTES) as usize];
        getrandom::fill(&mut bytes).expect("the operating system has a random source");
        bytes
    }
}

/// Outbound HTTP (see `outbound.rs`): the call cap, the timeout held to the request's deadline, one
/// metric and one log line per call.
impl http_client::Host for HostState {
    async fn send(
        &mut self,
        request: http_client::OutgoingRequest,
    ) -> wasmtime::Result<Result<http_client::IncomingResponse, http_client::Error>> {
        let Some(outbound) = self.http.clone() else {
            return Ok(Err(http_client::Error::NotAllowed(
                "outbound HTTP is not available during describe".into(),
            )));
        };
        let (plugin, version) = (&self.plugin.name, &self.plugin.version);
        if self.http_calls >= outbound.max_calls {
            tracing::warn!(plugin = %plugin, %version, request_id = %self.request_id, limit = outbound.max_calls, "outbound call refused: the request made its most calls");
            crate::app::metrics::process().observe_outbound(
                plugin,
                "-",
                "too_many_calls",
                Duration::ZERO,
            );
            return Ok(Err(http_client::Error::TooManyCalls(format!(
                "a request may make {} outbound calls",
                outbound.max_calls
            ))));
        }
        self.http_calls += 1;
        let mut timeout = outbound.timeout;
        if let Some(ms) = request.timeout_ms {
            timeout = timeout.min(Duration::from_millis(ms.into()));
        }
        let mut deadline_bound = false;
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left <= timeout {
                timeout = left;
                deadline_bound = true;
            }
        }
        let method = request.method.as_str();
        // The call's span while exporting (a child of the plugin call's); the trace context it sends.
        let span = crate::telemetry::outbound_call(method);
        let trace = crate::telemetry::outgoing(span.as_ref());
        let sent = outbound::send(
            &outbound,
            &self.allow_http,
            request,
            timeout,
            deadline_bound,
            &trace,
        )
        .await
        .map_err(|outbound::DeadlinePassed| wasmtime::Error::new(DeadlineExceeded))?;
        if let Some(span) = &span {
            let status = sent.result.as_ref().ok().map(|r| r.status);
            crate::telemetry::outbound_finished(span, &sent.upstream, status);
        }
        let outcome = match &sent.result {
            Ok(r) => match r.status {
                100..=199 => "1xx",
                200..=299 => "2xx",
                300..=399 => "3xx",
                400..=499 => "4xx",
                _ => "5xx",
            },
            Err(http_client::Error::NotAllowed(_)) => "not_allowed",
            Err(http_client::Error::InvalidRequest(_)) => "invalid_request",
            Err(http_client::Error::Timeout(_)) => "timeout",
            Err(http_client::Error::ConnectionFailed(_)) => "connection_failed",
            Err(http_client::Error::ResponseTooLarge(_)) => "response_too_large",
            Err(http_client::Error::TooManyCalls(_)) => "too_many_calls",
        };
        crate::app::metrics::process().observe_outbound(plugin, &sent.upstream, outcome, sent.took);
        let took_ms = sent.took.as_secs_f64() * 1e3;
        match &sent.result {
            Ok(r) => {
                tracing::debug!(plugin = %plugin, %version, request_id = %self.request_id, upstream = %sent.upstream, method, status = r.status, bytes = r.body.len(), took_ms, "outbound call")
            }
            Err(http_client::Error::NotAllowed(why)) => {
                tracing::warn!(plugin = %plugin, %version, request_id = %self.request_id, method, reason = %why, "outbound call refused")
            }
            Err(e) => {
                tracing::info!(plugin = %plugin, %version, request_id = %self.request_id, upstream = %sent.upstream, method, error = ?e, took_ms, "outbound call failed")
            }
        }
        Ok(sent.result)
    }
}

impl clock::Host for HostState {
    fn now_millis(&mut self) -> u64 {
        crate::clock::unix_ms() as u64
    }

    fn monotonic_nanos(&mut self) -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_budget_admits_lines_until_either_cap() {
        let mut short = LogBudget::default();
        let admitted = (0..150).filter(|_| short.admit(10)).count() as u64;
        assert_eq!(admitted, MAX_LOG_LINES_PER_CALL);
        assert_eq!((short.dropped_lines, short.dropped_bytes), (50, 500));

        let mut long = LogBudget::default();
        let admitted = (0..40).filter(|_| long.admit(MAX_LOG_MESSAGE)).count() as u64;
        assert_eq!(admitted, MAX_LOG_BYTES_PER_CALL / MAX_LOG_MESSAGE as u64);
        assert_eq!(long.dropped_lines, 40 - admitted);
        // Once one line is dropped, later ones are too, even short ones that would fit.
        let mut mixed = LogBudget::default();
        assert!(mixed.admit(60 << 10));
        assert!(!mixed.admit(8 << 10));
        assert!(!mixed.admit(10));
        assert_eq!(
            (mixed.dropped_lines, mixed.dropped_bytes),
            (2, (8 << 10) + 10)
        );
    }

    #[test]
    fn a_log_line_stays_one_line() {
        assert_eq!(one_log_line("a\nb\rc\u{7}"), "a\\nb\\rc?");
    }
}
