//! The admin UI's plugin pages: the list (loaded plugins with their counters, disabled files, the last
//! reload) with upload, disable, enable and delete; and a detail page per plugin (manifest, routes,
//! templates and which are overridden, config keys, limits). The file changes themselves are in
//! `deploy.rs`; every change writes an audit row.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use minijinja::context;
use serde::{Deserialize, Serialize};

use crate::admin::deploy::{self, DeployError, Deployed};
use crate::admin::page::{Viewer, refusal, render};
use crate::app::state::AppState;
use crate::generation::Generation;
use crate::generation::catalogue::{self, RouteRow};
use crate::generation::views::Origin;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/admin/plugins",
            get(plugins_page)
                .post(plugins_action)
                .layer(DefaultBodyLimit::max(deploy::MAX_UPLOAD_BYTES + 64 * 1024)),
        )
        .route("/admin/plugins/{name}", get(plugin_page))
}

/// The routes of `generation` (of one plugin, or all), by path.
fn route_rows<'g>(generation: &'g Generation, plugin: Option<&str>) -> Vec<RouteRow<'g>> {
    let manifests = generation.plugins.iter().map(|p| &p.manifest);
    catalogue::route_rows(manifests.filter(|m| plugin.is_none_or(|name| m.name == name)))
}

/// What a plugin has done since the process started (over every generation it was in).
#[derive(Debug, Serialize)]
struct Counters {
    requests: u64,
    errors: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    faults: Vec<(&'static str, u64)>,
}

fn counters(state: &AppState, plugin: &str) -> Counters {
    let totals = state.metrics.totals_of(plugin);
    Counters {
        requests: totals.requests,
        errors: totals.errors,
        p50_ms: totals.quantile(0.5).map(|s| s * 1e3),
        p99_ms: totals.quantile(0.99).map(|s| s * 1e3),
        faults: state.metrics.faults_of(plugin),
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

#[derive(Deserialize)]
struct ListQuery {
    /// A file to ask about deleting.
    delete: Option<String>,
}

/// `GET /admin/plugins[?delete=FILE]`.
async fn plugins_page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<ListQuery>,
) -> Response {
    plugins_page_with(
        &state,
        &viewer,
        None,
        None,
        q.delete.as_deref(),
        StatusCode::OK,
    )
}

/// The plugins page with a message.
pub(crate) fn plugins_with(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    plugins_page_with(state, viewer, notice, error, None, status)
}

fn plugins_page_with(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<&str>,
    error: Option<&str>,
    confirm_delete: Option<&str>,
    status: StatusCode,
) -> Response {
    let generation = state.current();
    let plugins: Vec<minijinja::Value> = generation
        .plugins
        .iter()
        .map(|p| {
            context! {
                name => p.manifest.name.clone(),
                version => p.manifest.version.clone(),
                description => p.manifest.description.clone(),
                file => file_name(&p.file),
                hash => p.hash.clone(),
                hash_prefix => p.hash.chars().take(12).collect::<String>(),
                routes => p.manifest.routes.len(),
                cached => p.cached,
                compile_ms => p.compile_time.as_secs_f64() * 1e3,
                counters => minijinja::Value::from_serialize(counters(state, &p.manifest.name)),
            }
        })
        .collect();
    let disabled = deploy::disabled_files(&state.config().plugins_dir);
    let confirm = confirm_delete.map(|file| {
        let plugin = generation
            .plugins
            .iter()
            .find(|p| file_name(&p.file) == file)
            .map(|p| p.manifest.name.clone());
        context! { file, plugin }
    });
    render(
        state,
        Some(viewer),
        "admin/plugins.html",
        "Plugins",
        status,
        context! {
            notice,
            error,
            plugins,
            disabled,
            confirm,
            plugins_dir => state.config().plugins_dir.display().to_string(),
            last_reload => state.last_reload().as_deref().map(minijinja::Value::from_serialize),
            max_upload_mib => deploy::MAX_UPLOAD_BYTES / (1024 * 1024),
        },
    )
}

#[derive(Deserialize)]
struct ActionForm {
    op: String,
    file: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /admin/plugins`: a multipart upload, or a form with `op` = disable | enable | delete and `file`.
async fn plugins_action(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    req: Request,
) -> Response {
    let multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if multipart {
        return match Multipart::from_request(req, &state).await {
            Ok(form) => upload(&state, &viewer, form).await,
            Err(e) => refusal(&state, Some(&viewer), e.status(), &e.body_text()),
        };
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return refusal(
            &state,
            Some(&viewer),
            StatusCode::PAYLOAD_TOO_LARGE,
            "form too large",
        );
    };
    let form: ActionForm = match crate::http::context::decode(&parts, &body) {
        Ok(f) => f,
        Err(e) => return refusal(&state, Some(&viewer), StatusCode::BAD_REQUEST, e.message()),
    };
    let actor = viewer.actor();
    let who = deploy::Who {
        actor: &actor,
        client: &viewer.client,
    };
    let result = match form.op.as_str() {
        "disable" => deploy::disable(&state, who, &form.file).await,
        "enable" => deploy::enable(&state, who, &form.file).await,
        "delete" if form.confirm.as_deref() == Some("yes") => {
            deploy::delete(&state, who, &form.file).await
        }
        "delete" => {
            return plugins_page_with(
                &state,
                &viewer,
                None,
                None,
                Some(&form.file),
                StatusCode::OK,
            );
        }
        other => {
            return refusal(
                &state,
                Some(&viewer),
                StatusCode::BAD_REQUEST,
                &format!("unknown plugin action {other:?}"),
            );
        }
    };
    let action = format!("plugin.{}", form.op);
    finish(&state, &viewer, &action, &form.file, result).await
}

/// Audit a change (done or refused) and answer with the plugins page and its message.
async fn finish(
    state: &AppState,
    viewer: &Viewer,
    action: &str,
    target: &str,
    result: Result<Deployed, DeployError>,
) -> Response {
    let (detail, notice, error, status) = match &result {
        Ok(done) => (
            done.message.clone(),
            Some(done.message.as_str()),
            None,
            StatusCode::OK,
        ),
        Err(e) => {
            let status = match e {
                DeployError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
                DeployError::NotFound(_) => StatusCode::NOT_FOUND,
                DeployError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (format!("refused: {e}"), None, Some(e.to_string()), status)
        }
    };
    let target = match &result {
        Ok(done) => done.plugin.as_str(),
        Err(_) => target,
    };
    // A cluster change wrote its audit row in its own transaction.
    let audited = result.as_ref().is_ok_and(|d| d.applied.is_some());
    if !audited {
        crate::accounts::audit::record_or_log(
            &state.auth.db,
            &viewer.actor(),
            action,
            target,
            &detail,
            &viewer.client,
        )
        .await;
    }
    let error = error.as_deref();
    plugins_with(state, viewer, notice, error, status)
}

/// Read the upload form (`csrf`, then the `plugin` file) and deploy the file.
async fn upload(state: &Arc<AppState>, viewer: &Viewer, mut form: Multipart) -> Response {
    let mut csrf: Option<String> = None;
    let mut file: Option<(String, Bytes)> = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) => match field.name() {
                Some("csrf") => csrf = field.text().await.ok(),
                Some("plugin") => {
                    let name = field.file_name().unwrap_or("upload.wasm").to_owned();
                    match field.bytes().await {
                        Ok(bytes) => file = Some((name, bytes)),
                        Err(e) => {
                            return refusal(state, Some(viewer), e.status(), &e.body_text());
                        }
                    }
                }
                _ => {}
            },
            Ok(None) => break,
            Err(e) => return refusal(state, Some(viewer), e.status(), &e.body_text()),
        }
    }
    let principal = &viewer.principal;
    if principal.csrf_failed && !csrf.as_deref().is_some_and(|t| principal.csrf_matches(t)) {
        return refusal(
            state,
            Some(viewer),
            StatusCode::FORBIDDEN,
            "This form is missing its security token or the token is out of date. Reload the page and try again.",
        );
    }
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return plugins_with(
            state,
            viewer,
            None,
            Some("Choose a .wasm file to upload."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    // Only the last path component of what the browser sent, for messages and the audit log.
    let name = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect::<String>();
    let actor = viewer.actor();
    let who = deploy::Who {
        actor: &actor,
        client: &viewer.client,
    };
    let result = deploy::upload(state, who, &name, bytes, None).await;
    finish(state, viewer, "plugin.upload", &name, result).await
}

/// `GET /admin/plugins/{name}`: one loaded plugin in detail.
async fn plugin_page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
) -> Response {
    let generation = state.current();
    let Some(p) = generation.plugins.iter().find(|p| p.manifest.name == name) else {
        return refusal(
            &state,
            Some(&viewer),
            StatusCode::NOT_FOUND,
            &format!(
                "No plugin named {name:?} is loaded in generation {}.",
                generation.id
            ),
        );
    };
    let templates: Vec<minijinja::Value> = generation
        .views
        .templates_of(&name)
        .map(|t| {
            let (overridden, path) = match &t.origin {
                Origin::Override { path, .. } => (true, Some(path.display().to_string())),
                _ => (false, None),
            };
            context! { name => t.name.clone(), overridden, path }
        })
        .collect();
    let settings = state.config().plugins.get(&name);
    let config_keys: Vec<String> = settings
        .map(|s| s.config.keys().cloned().collect())
        .unwrap_or_default();
    let limits = &p.limits;
    let context = context! {
        plugin => context! {
            name => p.manifest.name.clone(),
            version => p.manifest.version.clone(),
            description => p.manifest.description.clone(),
            file => p.file.display().to_string(),
            hash => p.hash.clone(),
            cached => p.cached,
            compile_ms => p.compile_time.as_secs_f64() * 1e3,
        },
        limits => context! {
            timeout_ms => limits.request_timeout.as_millis() as u64,
            deadlines => limits.deadlines,
            memory_mib => limits.memory_bytes as f64 / 1048576.0,
            max_instances => limits.max_instances,
            instance_reuse => limits.instance_reuse,
        },
        routes => route_rows(&generation, Some(&name)),
        templates,
        config_keys,
        counters => minijinja::Value::from_serialize(counters(&state, &name)),
    };
    render(
        &state,
        Some(&viewer),
        "admin/plugin.html",
        &format!("Plugin {name}"),
        StatusCode::OK,
        context,
    )
}
