//! One plugin in a throwaway host, for `call` and `test`: the component copied into a plugins directory
//! of its own, a fresh SQLite database (accounts and the key-value store) and the host's whole router,
//! called in-process. A request takes the real path (authentication, routing, roles, limits, the view)
//! without a listening socket. Everything lives in a temporary directory removed on drop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::logs::{Lines, LogLine};
use crate::accounts::db;
use crate::app::state::AppState;
use crate::bindings::types::Role;
use crate::config::Config;
use crate::generation::Generation;

/// Who a request comes from: nobody, or the holder of a key with this role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caller {
    #[default]
    Anonymous,
    User,
    Admin,
}

impl std::str::FromStr for Caller {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "anonymous" => Ok(Self::Anonymous),
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            other => bail!("unknown caller {other:?}: use anonymous, user or admin"),
        }
    }
}

/// Which representation the request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    Json,
    Html,
}

impl std::str::FromStr for Accept {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            other => bail!("unknown format {other:?}: use json or html"),
        }
    }
}

/// One request to the plugin.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    /// Path and query, e.g. `/greeter/ada?x=1`.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub caller: Caller,
    pub accept: Option<Accept>,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// What the plugin logged while answering.
    pub logs: Vec<LogLine>,
    pub elapsed: Duration,
}

impl Answer {
    /// The content type, if any.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A throwaway host serving one plugin.
pub struct Sandbox {
    dir: TempDir,
    state: Arc<AppState>,
    router: Router,
    /// The plugin's name from its manifest.
    pub plugin: String,
    keys: BTreeMap<&'static str, String>,
    lines: Lines,
}

impl Sandbox {
    /// Load `file` as the only plugin, with `values` as its `[plugins.<name>.config]`. Plugin log lines
    /// are read from `lines` (see `logs::init`).
    pub async fn open(
        file: &Path,
        values: &BTreeMap<String, String>,
        lines: Lines,
    ) -> Result<Self> {
        let dir = TempDir::new("plugin-host-call")?;
        let plugins = dir.path().join("plugins");
        let templates = dir.path().join("templates");
        for d in [&plugins, &templates] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let name = file
            .file_name()
            .with_context(|| format!("{} is not a file", file.display()))?;
        std::fs::copy(file, plugins.join(name))
            .with_context(|| format!("cannot read the plugin {}", file.display()))?;
        let mut config = Config::defaults();
        config.plugins_dir = plugins;
        config.templates_dir = templates;
        config.data_dir = dir.path().join("data");
        config.database = "host.db".into();
        config.compile_cache = false;
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut generation = build(&config, file).await?;
        let plugin = generation.plugins[0].manifest.name.clone();
        if !values.is_empty() {
            let settings = config.plugins.entry(plugin.clone()).or_default();
            settings.config.extend(values.clone());
            generation = build(&config, file).await?;
        }
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
        let (auth, kv) = crate::admin::bootstrap::open(&config).await?;
        let state = Arc::new(AppState::new(config, generation, auth, kv));
        let router = crate::server::router(state.clone());
        lines.take();
        Ok(Self {
            dir,
            state,
            router,
            plugin,
            keys: BTreeMap::new(),
            lines,
        })
    }

    /// Send one request through the host and collect the answer and the plugin's log lines.
    pub async fn send(&mut self, call: &Call) -> Result<Answer> {
        let mut request = http::Request::builder()
            .method(call.method.clone())
            .uri(&call.target)
            .body(Body::from(call.body.clone()))
            .with_context(|| format!("{} {} is not a valid request", call.method, call.target))?;
        let headers = request.headers_mut();
        for (name, value) in &call.headers {
            let name = HeaderName::try_from(name.as_str())
                .with_context(|| format!("{name:?} is not a header name"))?;
            let value = HeaderValue::try_from(value.as_str())
                .with_context(|| format!("the value of {name} is not a header value"))?;
            headers.append(name, value);
        }
        if let Some(accept) = call.accept {
            let media = match accept {
                Accept::Json => "application/json",
                Accept::Html => "text/html",
            };
            headers.insert(http::header::ACCEPT, HeaderValue::from_static(media));
        }
        if let Some(key) = self.key(call.caller).await? {
            let value = HeaderValue::try_from(key).context("an API key is not a header value")?;
            request.headers_mut().insert("x-api-key", value);
        }
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        self.lines.take();
        let started = Instant::now();
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router's error type is Infallible");
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("cannot read the response body")?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
            elapsed: started.elapsed(),
            logs: self.lines.take(),
        })
    }

    /// The API key of a user with the caller's role, made on first use.
    async fn key(&mut self, caller: Caller) -> Result<Option<String>> {
        let (name, role) = match caller {
            Caller::Anonymous => return Ok(None),
            Caller::User => ("user", Role::User),
            Caller::Admin => ("admin", Role::Admin),
        };
        if let Some(key) = self.keys.get(name) {
            return Ok(Some(key.clone()));
        }
        let key = user_key(&self.state.auth().db, name, role).await?;
        self.keys.insert(name, key.clone());
        Ok(Some(key))
    }

    /// The sandbox's directory (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A new API key of user `name`, who is made with `role` and a random password (nobody signs in as
/// them) when they do not exist yet.
pub async fn user_key(db: &db::Pool, name: &str, role: Role) -> Result<String> {
    if crate::accounts::users::get(db, name).await?.is_none() {
        let password = db::hex(&db::random_bytes::<16>());
        crate::accounts::users::create(db, name, &password, role).await?;
    }
    Ok(crate::accounts::keys::create(db, name, None, &[], None)
        .await?
        .key)
}

/// The generation of the one plugin, with errors naming the caller's file rather than the copy.
async fn build(config: &Config, file: &Path) -> Result<Generation> {
    Generation::build(1, config).await.map_err(|e| {
        let copy = config
            .plugins_dir
            .join(file.file_name().unwrap_or_default());
        anyhow::anyhow!(
            "{}",
            e.to_string()
                .replace(&copy.display().to_string(), &file.display().to_string())
        )
    })
}

/// A directory removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new empty directory under the system's temporary directory, named `prefix-<random>`.
    pub fn new(prefix: &str) -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}", db::hex(&db::random_bytes::<6>())));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
