//! The HTTP server: binding and running it, the router (host routes `/healthz`, `/readyz`, `/metrics`,
//! the route catalogue `/api`, the admin API, and the fallback into the plugins in `dispatch.rs`), and the request-id, tracing and
//! metrics layer every request passes through.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tracing::{Instrument, field};

use crate::app::last_good::LastGood;
use crate::app::metrics::RouteLabels;
use crate::app::state::{AppState, Degraded, Serving};
use crate::cluster::ClusterNode;
use crate::config::Config;
use crate::generation::Generation;
use crate::http::context::RequestId;
use crate::http::negotiate::{Format, negotiate};

/// A bound, ready-to-run server with its first generation loaded.
pub struct Server {
    listener: TcpListener,
    /// The admin UI and API's own listener (`admin_listen`), when they are not on `listener`.
    admin: Option<TcpListener>,
    state: Arc<AppState>,
}

impl Server {
    /// Open the database, build the first generation (failing on any bad plugin) and bind the listener.
    ///
    /// In cluster mode (a `postgres://` database) the plugins come from the database's plugin set: the
    /// node serves the current revision, or, when that cannot be built yet, starts with no plugins and
    /// not ready while its converger keeps trying.
    pub async fn bind(mut config: Config) -> Result<Self> {
        let proxies = crate::http::proxy::Proxies::parse(&config.trusted_proxies)?;
        let (auth, kv) = crate::admin::bootstrap::open(&config).await?;
        let mut node = match config.database_location() {
            crate::accounts::db::Location::Postgres(url) => {
                let node = ClusterNode::new(auth.db.clone(), url, &config);
                config.plugins_dir = node.dirs.serving.clone();
                Some(node)
            }
            crate::accounts::db::Location::Sqlite(_) => None,
        };
        let (generation, degraded) = match &node {
            Some(node) => (first_cluster_generation(node, &config).await?, None),
            None => first_generation(&config).await?,
        };
        config.warn_unmatched_plugin_settings(
            generation.plugins.iter().map(|p| p.manifest.name.as_str()),
        );
        tracing::info!(
            generation = generation.id,
            plugins = generation.plugins.len(),
            routes = generation.routes.len(),
            "generation built"
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let admin = match config.admin_listen {
            Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on {addr} for the admin UI (admin_listen)")
            })?),
            None => None,
        };
        let record = degraded.is_none() && node.is_none();
        let mut state = AppState::new(config, generation, auth, kv).with_proxies(proxies);
        if let Some(degraded) = degraded {
            state = state.with_degraded(degraded);
        }
        if let Some(mut node) = node.take() {
            node.set_address(listener.local_addr()?);
            tracing::info!(node = %node.id, "cluster mode");
            state = state.with_cluster(Arc::new(node));
        }
        let state = Arc::new(state);
        if record {
            state.record_last_good(&state.current()).await;
        }
        crate::app::sampler::spawn(Arc::downgrade(&state));
        crate::app::converge::spawn(&state);
        Ok(Self {
            listener,
            admin,
            state,
        })
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The admin listener's address, when the admin UI and API have their own (`admin_listen`).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
            .as_ref()
            .map(|l| l.local_addr().expect("bound listener has an address"))
    }

    /// The shared state, for tests and embedding.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serve until `shutdown` completes, then stop accepting and give in-flight requests the configured
    /// grace period to finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let config = self.state.config();
        let (header_timeout, grace) = (
            config.limits.client_header_timeout(),
            config.shutdown_grace(),
        );
        let db = self.state.auth.db.clone();
        match self.admin {
            None => {
                let app = router(self.state);
                crate::http::listener::serve(self.listener, app, header_timeout, grace, shutdown)
                    .await
            }
            Some(admin) => {
                // One shutdown for both listeners: the public one's signal stops the admin one too.
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let public = crate::http::listener::serve(
                    self.listener,
                    router(self.state.clone()),
                    header_timeout,
                    grace,
                    async move {
                        shutdown.await;
                        let _ = stop.send(true);
                    },
                );
                let admin = crate::http::listener::serve(
                    admin,
                    admin_router(self.state),
                    header_timeout,
                    grace,
                    async move {
                        let mut stopped = stopped;
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                );
                tokio::join!(public, admin);
            }
        }
        // Close the database before returning, so its files (the WAL checkpointed and removed) are
        // settled when the caller sees the server stopped, not some time later on a pool thread.
        db.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The first generation from the plugins and templates directories. When they do not build (a bad file a
/// failed reload left behind, a half-copied deploy), the last good set recorded in `data_dir` is served
/// instead and the host starts degraded; with no record the error stops the start.
async fn first_generation(config: &Config) -> Result<(Generation, Option<Degraded>)> {
    let error = match Generation::build(1, config).await {
        Ok(generation) => return Ok((generation, None)),
        Err(e) => e,
    };
    let record = LastGood::in_data_dir(&config.data_dir);
    let restored = tokio::task::spawn_blocking(move || record.restore())
        .await
        .context("restoring the last good set panicked")?;
    let restored = match restored {
        Ok(Some(restored)) => restored,
        Ok(None) => {
            return Err(anyhow::Error::new(error).context(format!(
                "cannot load plugins (and no last good set is recorded in {} to start with instead)",
                config.data_dir.join(crate::app::last_good::DIR).display()
            )));
        }
        Err(e) => {
            return Err(anyhow::Error::new(error).context(format!(
                "cannot load plugins, and cannot restore the last good set from {}: {e}",
                config.data_dir.join(crate::app::last_good::DIR).display()
            )));
        }
    };
    let mut fallback = config.clone();
    fallback.plugins_dir = restored.plugins_dir;
    fallback.templates_dir = restored.templates_dir;
    let generation = Generation::build(1, &fallback).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot load plugins: {error}\nthe last good set in {} does not load either: {e}",
            config.data_dir.join(crate::app::last_good::DIR).display()
        )
    })?;
    let files: Vec<&str> = restored
        .set
        .plugins
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    tracing::error!(
        error = %error,
        serving = ?files,
        recorded_ms = restored.set.recorded_ms,
        "the plugins directory does not load: serving the last good set instead; fix or remove the file and reload"
    );
    let degraded = Degraded {
        error: error.to_string(),
        since_ms: crate::clock::unix_ms() as u64,
        serving: Serving::LastGood {
            recorded_ms: restored.set.recorded_ms,
        },
    };
    Ok((generation, Some(degraded)))
}

/// Cluster mode's first generation: the current revision of the plugin set, or (when it cannot be read
/// or built) an empty one, with the error recorded for `/readyz` and the nodes table.
async fn first_cluster_generation(node: &ClusterNode, config: &Config) -> Result<Generation> {
    let built = match node.sync().await {
        Ok(revision) => match Generation::build(1, config).await {
            Ok(generation) => {
                node.built(revision);
                return Ok(generation);
            }
            Err(e) => (Some(revision), e.to_string()),
        },
        Err(e) => (None, format!("{e:#}")),
    };
    let (revision, error) = built;
    tracing::error!(%error, revision, "cannot serve the plugin set yet; starting without plugins, not ready");
    node.failed(revision, error);
    let empty = node.dirs.trials.join("empty");
    std::fs::create_dir_all(&empty)
        .with_context(|| format!("cannot create {}", empty.display()))?;
    let mut bare = config.clone();
    bare.plugins_dir = empty;
    Generation::build(1, &bare)
        .await
        .context("cannot build an empty generation")
}

/// The whole HTTP surface; with `admin_listen` set, everything but the admin UI and API, which
/// [`admin_router`] serves on their own origin.
pub fn router(state: Arc<AppState>) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api", get(catalogue))
        .route("/openapi.json", get(openapi));
    if state.config().admin_listen.is_none() {
        app = app
            .route("/metrics", get(crate::admin::api::metrics))
            .merge(crate::admin::api::router(state.clone()))
            .merge(crate::admin::ui::router(state.clone()));
    }
    app.fallback(crate::request::dispatch)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// The admin listener's surface (`admin_listen`): the admin UI and API, `/metrics` and the health
/// checks, and no plugins, so no plugin page ever shares the admin UI's origin.
pub fn admin_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::admin::api::metrics))
        .merge(crate::admin::api::router(state.clone()))
        .merge(crate::admin::ui::router(state.clone()))
        .fallback(admin_not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_context,
        ))
        .with_state(state)
}

/// 404 on the admin listener: plugins are served on the main one.
async fn admin_not_found(req: Request) -> Response {
    let id = RequestId::of(req.extensions());
    let message = format!(
        "no route for {} {} on the admin listener (plugins are served on the main one)",
        req.method(),
        req.uri().path()
    );
    crate::http::error::respond(axum::http::StatusCode::NOT_FOUND, &message, &id)
}

/// The router's own 405 (a host route asked with another method) has an empty body: give it the JSON
/// error body every other error has. (axum adds the `Allow` header after this layer has run.)
fn explain_wrong_method(
    response: &mut Response,
    method: &axum::http::Method,
    path: &str,
    id: &str,
) {
    if response.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return;
    }
    let message = format!(
        "method {method} is not allowed for {path}; the Allow header lists the methods that are"
    );
    *response.body_mut() = crate::http::error::body(&message, id);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
}

/// Liveness: the process is up and answering. Touches nothing else, so it stays cheap under load.
async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// Readiness: serving plugins, the database reachable (cluster mode) and not shutting down; 503 with
/// the reason otherwise. A host serving an older set because its plugins directory does not build is
/// still ready (200, so it keeps its traffic) with status `degraded` and what is wrong. Load balancers route by this; liveness (`/healthz`) never looks at the database,
/// so an outage does not make an orchestrator restart every node.
async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let r = state.readiness();
    let status = if r.ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let word = match (r.ready, &r.degraded) {
        (false, _) => "not ready",
        (true, Some(_)) => "degraded",
        (true, None) => "ready",
    };
    let body = json!({
        "status": word,
        "reason": r.reason,
        "degraded": r.degraded,
        "generation": r.generation,
        "revision": r.revision,
        "plugins": state.current().plugins.len(),
    });
    (status, axum::Json(body))
}

/// The route catalogue of the current generation, as JSON or HTML; both were made when it was built.
/// The serving generation's OpenAPI document, made when it was built.
async fn openapi(State(state): State<Arc<AppState>>) -> Response {
    let generation = state.current();
    let mut response = Response::new(axum::body::Body::from(generation.openapi.clone()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-generation", HeaderValue::from(generation.id));
    response
}

async fn catalogue(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let generation = state.current();
    let (content_type, body) = match negotiate(req.headers(), req.uri().query()) {
        Format::Json => ("application/json", generation.catalogue.json.clone()),
        Format::Html => (
            "text/html; charset=utf-8",
            generation.catalogue.html.clone(),
        ),
    };
    let mut response = Response::new(axum::body::Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::VARY, HeaderValue::from_static("accept"));
    headers.insert("x-generation", HeaderValue::from(generation.id));
    response
}

/// Accept a caller's `x-request-id` when it is short and plain, so ids can follow a request across
/// services; otherwise make one.
fn incoming_request_id(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("x-request-id")?.to_str().ok()?;
    let plain = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    plain.then_some(value)
}

/// Give every request an id and a span; log one line per request when it completes.
async fn request_context(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let id: Arc<str> = match incoming_request_id(req.headers()) {
        Some(v) => v.into(),
        None => state.next_request_id().into(),
    };
    let host_route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let incoming = crate::telemetry::incoming(req.headers());
    // The query string is not logged: it may carry an API key.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %id,
        trace_id = field::Empty,
        otel.kind = field::Empty,
        route = field::Empty,
        plugin = field::Empty,
        version = field::Empty,
        status = field::Empty,
        latency_us = field::Empty,
    );
    let trace = crate::telemetry::start_request(&span, incoming);
    req.extensions_mut().insert(RequestId(id.clone()));
    let origin = crate::http::context::peer_of(req.extensions())
        .filter(|_| state.proxies.any())
        .map(|peer| state.proxies.origin(peer, req.headers()));
    if let Some(origin) = origin {
        req.extensions_mut().insert(origin);
    }
    let started = Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let mut response =
        crate::telemetry::within(trace, next.run(req).instrument(span.clone())).await;
    if origin.is_some_and(|o| o.https) {
        crate::http::proxy::secure_cookies(response.headers_mut());
    }
    crate::http::error::fill_body(&mut response, &id);
    explain_wrong_method(&mut response, &method, &path, &id);
    let header_value = HeaderValue::from_str(&id).expect("request ids are visible ASCII");
    response.headers_mut().insert("x-request-id", header_value);
    let latency = started.elapsed();
    let status = response.status().as_u16();
    span.record("status", status);
    span.record("latency_us", latency.as_micros() as u64);
    span.in_scope(|| tracing::info!("request completed"));
    let labels = match (
        response.extensions_mut().remove::<RouteLabels>(),
        host_route,
    ) {
        (Some(labels), _) => labels,
        (None, Some(route)) => RouteLabels {
            plugin: "host".into(),
            route,
        },
        (None, None) => RouteLabels {
            plugin: String::new(),
            route: "unmatched".into(),
        },
    };
    let route = (!labels.plugin.is_empty()).then_some(labels.route.as_str());
    crate::telemetry::finish_request(&span, method.as_str(), route, status);
    state.metrics.observe_request(labels, status, latency);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_must_be_plain() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123_x.y"));
        assert_eq!(incoming_request_id(&h), Some("abc-123_x.y"));
        h.insert("x-request-id", HeaderValue::from_static("has space"));
        assert_eq!(incoming_request_id(&h), None);
        h.insert(
            "x-request-id",
            HeaderValue::from_str(&"a".repeat(65)).unwrap(),
        );
        assert_eq!(incoming_request_id(&h), None);
    }
}
