//! Configuration: the embedded defaults (`host/default-config.toml`), an optional TOML file laid over
//! them key by key, then `PLUGIN_HOST_...` environment variables (`env.rs`), then command-line
//! overrides. Unknown keys and variables are errors, so a typo is never ignored. `reference.rs` reads
//! the defaults' comments into the reference that docs/configuration.md and the variables come from.

mod env;
pub mod reference;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The defaults, compiled into the binary so `plugin-host serve` works with no file at all.
pub const DEFAULT_CONFIG: &str = include_str!("../default-config.toml");

/// The configuration file a [`Config`] was read from.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// SHA-256 (hex) of the text read at start.
    pub sha256: String,
}

impl ConfigFile {
    /// Whether the file on disk no longer holds the text read at start (unreadable counts as changed).
    pub fn changed(&self) -> bool {
        std::fs::read(&self.path)
            .map(|now| crate::accounts::db::sha256_hex(&now) != self.sha256)
            .unwrap_or(true)
    }
}

/// The host's whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the HTTP listener.
    pub listen: SocketAddr,
    /// A listener of its own for the admin UI and API (and `/metrics`): another origin than the plugins'.
    /// None: they share `listen`.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Directory of plugin components (`*.wasm`).
    pub plugins_dir: PathBuf,
    /// Directory of HTML templates.
    pub templates_dir: PathBuf,
    /// Directory for the host's own files.
    pub data_dir: PathBuf,
    /// How long in-flight requests may run after a shutdown signal.
    pub shutdown_grace_ms: u64,
    /// After a shutdown signal, how long the node keeps serving while `/readyz` says 503, so a load
    /// balancer takes it out before connections are refused.
    pub shutdown_delay_ms: u64,
    /// Proxies (addresses or CIDRs) whose `X-Forwarded-For`/`Forwarded` and `X-Forwarded-Proto` are
    /// believed: requests from them are attributed to the client they name.
    pub trusted_proxies: Vec<String>,
    /// The `Content-Security-Policy` of every plugin response (empty: none). The default confines a plugin
    /// page to an opaque origin (`sandbox` without `allow-same-origin`), so its scripts cannot read or
    /// act on the admin UI served from the same origin. `[plugins.NAME] content_security_policy` relaxes
    /// it per plugin.
    pub plugin_content_security_policy: String,
    /// Log filter (`tracing_subscriber::EnvFilter` syntax).
    pub log: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Keep compiled plugins on disk (see `cache.rs`).
    pub compile_cache: bool,
    /// Reload when the plugins directory changes.
    pub watch: bool,
    /// Quiet time after the last change before a watch-triggered reload.
    pub watch_debounce_ms: u64,
    /// The database: a SQLite file (relative to `data_dir` unless absolute) or a `postgres://` URL
    /// (cluster mode). See [`Config::database_location`].
    pub database: String,
    /// Sessions, cookies and login rate limits.
    pub auth: AuthConfig,
    /// Cluster mode (a `postgres://` database).
    pub cluster: ClusterConfig,
    /// The file this configuration was read from, with the SHA-256 of its text then (none: the
    /// embedded defaults alone). The admin UI compares it with the file now: the file is read at start
    /// only, so a changed file needs a restart.
    #[serde(skip)]
    pub file: Option<ConfigFile>,
    /// Resource limits for requests and plugin instances.
    pub limits: Limits,
    /// Per-plugin settings by plugin name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSettings>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Browser sessions and login protection (see `default-config.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Mark the session cookie `Secure` (set when clients reach the host over HTTPS).
    pub secure_cookies: bool,
    /// A session unused for this long is over.
    pub session_idle_secs: u64,
    /// A session is over this long after login, however busy.
    pub session_absolute_secs: u64,
    /// Failed logins per user name or client address before lockouts start.
    pub login_free_failures: u32,
    /// The longest lockout; lockouts double from one second up to this.
    pub login_lockout_max_secs: u64,
}

/// Cluster mode settings (see `default-config.toml` and docs/cluster.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Re-read the plugin set revision this often even without a notification.
    pub poll_secs: u64,
    /// Write this node's row (and check the database) this often.
    pub heartbeat_ms: u64,
    /// This node's id in the `nodes` table; empty: `HOSTNAME:PORT`.
    pub node_id: String,
    /// Listen for change notifications; off, nodes find changes by polling alone (for a PgBouncer in
    /// transaction-pooling mode, where LISTEN does not work).
    pub listen: bool,
}

/// Resource limits (see `default-config.toml` for what each one does).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub request_timeout_ms: u64,
    pub deadlines: bool,
    pub client_header_timeout_ms: u64,
    pub client_body_timeout_ms: u64,
    pub max_request_body_bytes: usize,
    pub max_response_body_bytes: usize,
    pub max_instances: u32,
    pub max_live_generations: usize,
    pub instance_memory_bytes: usize,
    pub wasm_stack_bytes: usize,
    pub render_fuel: u64,
    pub instance_reuse: u32,
    /// Largest value a plugin may store under one key.
    pub kv_value_bytes: usize,
    /// Total bytes (keys + values) one plugin may store.
    pub kv_plugin_bytes: u64,
    /// Longest one outbound HTTP call may take (a plugin may ask for less; the request's deadline
    /// still applies).
    pub http_call_timeout_ms: u64,
    /// Largest response body an outbound call may return to the plugin.
    pub http_response_body_bytes: usize,
    /// Outbound calls one request may make.
    pub http_calls_per_request: u32,
}

impl Limits {
    /// How long a client may take to send a request's headers.
    pub fn client_header_timeout(&self) -> Duration {
        Duration::from_millis(self.client_header_timeout_ms)
    }

    /// How long a client may take to send a request's body.
    pub fn client_body_timeout(&self) -> Duration {
        Duration::from_millis(self.client_body_timeout_ms)
    }
}

/// Settings for one plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSettings {
    /// Values the plugin reads through the `config` import.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Overrides `limits.request_timeout_ms` for this plugin.
    pub request_timeout_ms: Option<u64>,
    /// Lowers `limits.instance_memory_bytes` for this plugin (it cannot exceed the pool's slot size).
    pub instance_memory_bytes: Option<usize>,
    /// Instances of this plugin alive at once (besides the global `limits.max_instances`).
    pub max_instances: Option<u32>,
    /// Overrides `limits.instance_reuse` for this plugin.
    pub instance_reuse: Option<u32>,
    /// Overrides `limits.kv_plugin_bytes` for this plugin.
    pub kv_plugin_bytes: Option<u64>,
    /// Overrides `plugin_content_security_policy` for this plugin's responses (empty: none).
    pub content_security_policy: Option<String>,
    /// Where the plugin may send HTTP requests: `scheme://host[:port][/path-prefix]` entries (see
    /// [`AllowedOrigin`]). Empty (the default): nowhere.
    #[serde(default)]
    pub allow_http: Vec<String>,
}

/// One `allow_http` entry, parsed: a scheme, a host and a port, and a path prefix (`/` for all paths).
///
/// A URL is allowed when its scheme, host and port are the entry's and its path is the prefix or lies
/// below it (`/v1` allows `/v1` and `/v1/x`, not `/v10`). An entry whose host is an IP address also
/// allows that address when it is loopback, link-local or private; a name allows only the public
/// addresses it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    pub scheme: String,
    pub host: url::Host<String>,
    pub port: u16,
    pub path_prefix: String,
}

impl AllowedOrigin {
    /// Parse an entry; the error says what is wrong with it.
    pub fn parse(entry: &str) -> std::result::Result<Self, String> {
        let url = url::Url::parse(entry.trim()).map_err(|e| format!("not a URL: {e}"))?;
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme {scheme:?}: only http and https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL: the plugin sends its own in headers".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a query or fragment: give scheme, host, port and a path prefix".into());
        }
        let host = url.host().ok_or_else(|| "no host".to_owned())?.to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "no port".to_owned())?;
        let path = url.path().trim_end_matches('/');
        Ok(Self {
            scheme: scheme.to_owned(),
            host,
            port,
            path_prefix: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }

    /// Whether `url` is one this entry allows.
    pub fn allows(&self, url: &url::Url) -> bool {
        let path = url.path();
        url.scheme() == self.scheme
            && url.host().map(|h| h.to_owned()).as_ref() == Some(&self.host)
            && url.port_or_known_default() == Some(self.port)
            && (self.path_prefix == "/"
                || path == self.path_prefix
                || path
                    .strip_prefix(self.path_prefix.as_str())
                    .is_some_and(|rest| rest.starts_with('/')))
    }

    /// The address this entry names, when its host is an IP address.
    pub fn address(&self) -> Option<std::net::IpAddr> {
        match self.host {
            url::Host::Ipv4(a) => Some(a.into()),
            url::Host::Ipv6(a) => Some(a.into()),
            url::Host::Domain(_) => None,
        }
    }
}

impl std::fmt::Display for AllowedOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)?;
        if self.path_prefix != "/" {
            f.write_str(&self.path_prefix)?;
        }
        Ok(())
    }
}

/// The limits that apply to one plugin: the global ones with its overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    pub request_timeout: Duration,
    /// Whether the deadline is enforced at all (`limits.deadlines`).
    pub deadlines: bool,
    pub memory_bytes: usize,
    pub max_instances: Option<u32>,
    /// Requests one instance serves before it is dropped (1: a fresh instance per request).
    pub instance_reuse: u32,
    /// The `Content-Security-Policy` header of the plugin's responses, if any.
    pub content_security_policy: Option<http::HeaderValue>,
    /// Where the plugin may send HTTP requests (`allow_http`; empty: nowhere).
    pub allow_http: std::sync::Arc<[AllowedOrigin]>,
}

/// The process's `PLUGIN_HOST_` variables (others are never read; a value that is not UTF-8 is taken
/// lossily, and then fails its key's type check or names a path that does not exist).
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let k = k.into_string().ok()?;
            k.starts_with("PLUGIN_HOST_")
                .then(|| (k, v.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Command-line values that override the configuration files.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub plugins_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    /// `--watch` (only ever turns watching on).
    pub watch: bool,
    /// `--database` or `PLUGIN_HOST_DATABASE`.
    pub database: Option<String>,
}

impl Config {
    /// The embedded defaults alone.
    pub fn defaults() -> Self {
        Self::load_with_env(None, &Overrides::default(), [])
            .expect("the embedded default configuration is valid")
    }

    /// Defaults, then `file` (if any), then the process's `PLUGIN_HOST_` variables, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self> {
        Self::load_with_env(file, overrides, process_env())
    }

    /// [`Config::load`] with the environment given.
    pub fn load_with_env(
        file: Option<&Path>,
        overrides: &Overrides,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let (table, file, origin) = Self::layers(file, env)?;
        let mut config = Config::deserialize(toml::Value::Table(table))
            .with_context(|| format!("invalid {origin}"))?;
        config.file = file;
        config.apply(overrides);
        config.validate()?;
        Ok(config)
    }

    /// The defaults with `file` and the environment laid over them, as TOML (what `plugin-host config`
    /// prints); flags are not included.
    pub fn merged_toml(file: Option<&Path>) -> Result<toml::Table> {
        Ok(Self::layers(file, process_env())?.0)
    }

    /// The merged table, the file it read (if any), and what the layers were, for error messages.
    fn layers(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(toml::Table, Option<ConfigFile>, String)> {
        let mut table: toml::Table =
            toml::from_str(DEFAULT_CONFIG).context("embedded default configuration")?;
        let mut origins = vec!["embedded default configuration".to_owned()];
        let mut read = None;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            let value: toml::Table = toml::from_str(&text)
                .with_context(|| format!("invalid TOML in config file {}", path.display()))?;
            merge(&mut table, value);
            origins = vec![format!("config file {}", path.display())];
            read = Some(ConfigFile {
                path: path.to_path_buf(),
                sha256: crate::accounts::db::sha256_hex(text.as_bytes()),
            });
        }
        if let Some(layer) = env::layer(env)? {
            merge(&mut table, layer);
            origins.push("PLUGIN_HOST_ environment variables".to_owned());
        }
        Ok((table, read, origins.join(" with ")))
    }

    fn apply(&mut self, o: &Overrides) {
        if let Some(v) = o.listen {
            self.listen = v;
        }
        if o.admin_listen.is_some() {
            self.admin_listen = o.admin_listen;
        }
        if let Some(v) = &o.plugins_dir {
            self.plugins_dir = v.clone();
        }
        if let Some(v) = &o.templates_dir {
            self.templates_dir = v.clone();
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = v.clone();
        }
        self.watch |= o.watch;
        if let Some(v) = &o.database {
            self.database = v.clone();
        }
    }

    fn validate(&self) -> Result<()> {
        let policies = std::iter::once((
            "plugin_content_security_policy".to_owned(),
            &self.plugin_content_security_policy,
        ))
        .chain(self.plugins.iter().filter_map(|(name, s)| {
            let key = format!("plugins.{name}.content_security_policy");
            s.content_security_policy.as_ref().map(|p| (key, p))
        }));
        for (key, policy) in policies {
            anyhow::ensure!(
                http::HeaderValue::from_str(policy.trim()).is_ok(),
                "{key} is not a valid header value (one line of visible ASCII)"
            );
        }
        let l = &self.limits;
        anyhow::ensure!(
            l.max_instances >= 1,
            "limits.max_instances must be at least 1"
        );
        anyhow::ensure!(
            l.max_live_generations >= 2,
            "limits.max_live_generations must be at least 2 (one draining, one serving)"
        );
        anyhow::ensure!(
            l.request_timeout_ms >= 1
                && l.client_header_timeout_ms >= 1
                && l.client_body_timeout_ms >= 1,
            "limits.request_timeout_ms, client_header_timeout_ms and client_body_timeout_ms must be at least 1"
        );
        anyhow::ensure!(
            l.instance_memory_bytes >= 1 << 16,
            "limits.instance_memory_bytes must be at least one wasm page (65536)"
        );
        anyhow::ensure!(
            l.wasm_stack_bytes >= 16 * 1024,
            "limits.wasm_stack_bytes must be at least 16384"
        );
        anyhow::ensure!(
            l.instance_reuse >= 1,
            "limits.instance_reuse must be at least 1 (1 = a fresh instance per request)"
        );
        anyhow::ensure!(
            l.render_fuel >= 10_000,
            "limits.render_fuel must be at least 10000"
        );
        anyhow::ensure!(
            l.http_call_timeout_ms >= 1 && l.http_response_body_bytes >= 1,
            "limits.http_call_timeout_ms and limits.http_response_body_bytes must be at least 1"
        );
        for (name, settings) in &self.plugins {
            for entry in &settings.allow_http {
                if let Err(why) = AllowedOrigin::parse(entry) {
                    anyhow::bail!("plugins.{name}.allow_http: {entry:?} is not allowed: {why}");
                }
            }
        }
        anyhow::ensure!(
            self.cluster.poll_secs >= 1 && self.cluster.heartbeat_ms >= 100,
            "cluster.poll_secs must be at least 1 and cluster.heartbeat_ms at least 100"
        );
        let a = &self.auth;
        anyhow::ensure!(
            a.session_idle_secs >= 1 && a.session_absolute_secs >= 1,
            "auth.session_idle_secs and auth.session_absolute_secs must be at least 1"
        );
        anyhow::ensure!(
            a.login_lockout_max_secs >= 1,
            "auth.login_lockout_max_secs must be at least 1"
        );
        anyhow::ensure!(
            !self.database.trim().is_empty(),
            "database must name a SQLite file or a postgres:// URL"
        );
        for (name, p) in &self.plugins {
            if let Some(m) = p.instance_memory_bytes {
                anyhow::ensure!(
                    m <= l.instance_memory_bytes,
                    "plugins.{name}.instance_memory_bytes ({m}) is over limits.instance_memory_bytes ({}), the pool's slot size",
                    l.instance_memory_bytes
                );
            }
            anyhow::ensure!(
                p.request_timeout_ms != Some(0)
                    && p.max_instances != Some(0)
                    && p.instance_reuse != Some(0),
                "plugins.{name}: request_timeout_ms, max_instances and instance_reuse must be at least 1"
            );
        }
        Ok(())
    }

    /// Where the database is: a `postgres://` URL selects PostgreSQL; anything else is a SQLite file,
    /// relative to `data_dir` unless absolute.
    pub fn database_location(&self) -> crate::accounts::db::Location {
        crate::accounts::db::Location::parse(&self.database, &self.data_dir)
    }

    /// The key-value caps of the plugin named `name`: (per value, per plugin).
    pub fn kv_caps(&self, name: &str) -> (usize, u64) {
        let plugin = self.plugins.get(name).and_then(|p| p.kv_plugin_bytes);
        (
            self.limits.kv_value_bytes,
            plugin.unwrap_or(self.limits.kv_plugin_bytes),
        )
    }

    /// The quiet time before a watch-triggered reload.
    pub fn watch_debounce(&self) -> Duration {
        Duration::from_millis(self.watch_debounce_ms)
    }

    /// How long to keep serving, not ready, after a shutdown signal.
    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_millis(self.shutdown_delay_ms)
    }

    /// The grace period after a shutdown signal.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// The limits for the plugin named `name`.
    pub fn plugin_limits(&self, name: &str) -> PluginLimits {
        let settings = self.plugins.get(name);
        PluginLimits {
            request_timeout: Duration::from_millis(
                settings
                    .and_then(|s| s.request_timeout_ms)
                    .unwrap_or(self.limits.request_timeout_ms),
            ),
            deadlines: self.limits.deadlines,
            memory_bytes: settings
                .and_then(|s| s.instance_memory_bytes)
                .unwrap_or(self.limits.instance_memory_bytes),
            max_instances: settings.and_then(|s| s.max_instances),
            instance_reuse: settings
                .and_then(|s| s.instance_reuse)
                .unwrap_or(self.limits.instance_reuse),
            content_security_policy: self.content_security_policy(name),
            allow_http: settings
                .map(|s| {
                    s.allow_http
                        .iter()
                        .filter_map(|e| AllowedOrigin::parse(e).ok())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The `Content-Security-Policy` for the plugin named `name` (checked by `validate`).
    fn content_security_policy(&self, name: &str) -> Option<http::HeaderValue> {
        let policy = self
            .plugins
            .get(name)
            .and_then(|s| s.content_security_policy.as_deref())
            .unwrap_or(&self.plugin_content_security_policy);
        (!policy.trim().is_empty())
            .then(|| http::HeaderValue::from_str(policy.trim()).ok())
            .flatten()
    }

    /// Warn about each `[plugins.NAME]` table that names no loaded plugin (a typo, or a plugin since
    /// removed): every other unknown key is an error, but these may be meant for a plugin not yet
    /// deployed. Returns the names.
    pub fn warn_unmatched_plugin_settings<'a>(
        &self,
        loaded: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let loaded: std::collections::HashSet<&str> = loaded.into_iter().collect();
        let unmatched: Vec<String> = self
            .plugins
            .keys()
            .filter(|name| !loaded.contains(name.as_str()))
            .cloned()
            .collect();
        for name in &unmatched {
            tracing::warn!(plugin = %name, "[plugins.{name}] is configured, but no plugin named {name} is loaded");
        }
        unmatched
    }

    /// Configuration values for the plugin named `name` (empty when none are set).
    pub fn plugin_config(&self, name: &str) -> BTreeMap<String, String> {
        self.plugins
            .get(name)
            .map(|p| p.config.clone())
            .unwrap_or_default()
    }
}

/// Lay `over` onto `base`: tables merge recursively, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_validate() {
        let c = Config::defaults();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.limits.max_instances, 256);
        c.validate().unwrap();
    }

    #[test]
    fn file_overlays_defaults_and_flags_override_file() {
        let dir = std::env::temp_dir().join(format!("ph-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[limits]\nmax_instances = 8\n[plugins.hello.config]\ngreeting = \"hi\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            plugins_dir: Some("elsewhere".into()),
            ..Overrides::default()
        };
        let c = Config::load(Some(&file), &overrides).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.limits.max_instances, 8);
        // Keys the file did not mention keep their defaults.
        assert_eq!(c.limits.request_timeout_ms, 5000);
        assert_eq!(c.plugins_dir, PathBuf::from("elsewhere"));
        assert_eq!(c.plugin_config("hello")["greeting"], "hi");
        assert!(c.plugin_config("echo").is_empty());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = std::env::temp_dir().join(format!("ph-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[limits]\nmax_instance = 8\n").unwrap();
        let err = format!(
            "{:#}",
            Config::load(Some(&file), &Overrides::default()).unwrap_err()
        );
        assert!(err.contains("max_instance"), "{err}");
        assert!(err.contains("c.toml"), "{err}");
    }

    #[test]
    fn plugin_responses_get_the_global_policy_unless_the_plugin_has_its_own() {
        let dir = std::env::temp_dir().join(format!("ph-config-csp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Config::load(Some(&file), &Overrides::default())
        };
        let c = load("[plugins.open]\ncontent_security_policy = \"\"\n[plugins.own]\ncontent_security_policy = \"default-src 'self'\"\n").unwrap();
        let policy = |name: &str| c.plugin_limits(name).content_security_policy;
        assert_eq!(
            policy("other").unwrap(),
            c.plugin_content_security_policy.as_str()
        );
        assert!(c.plugin_content_security_policy.starts_with("sandbox "));
        assert_eq!(policy("open"), None);
        assert_eq!(policy("own").unwrap(), "default-src 'self'");
        let err = format!(
            "{:#}",
            load("plugin_content_security_policy = \"a\\nb\"\n").unwrap_err()
        );
        assert!(err.contains("plugin_content_security_policy"), "{err}");
    }
}
