//! The deploy API, for scripts and CI, in both modes (behind the admin guard, like the rest of
//! `/admin/api`):
//!
//! - `GET /admin/api/plugins`: the plugins, enabled or not, and (cluster mode) the revision;
//! - `PUT /admin/api/plugins/{name}` with the component's bytes as the body: 200 with name, version,
//!   sha256 and revision; 422 naming the reason (the component must be plugin `{name}`);
//! - `POST /admin/api/plugins/{name}/disable` and `.../enable`, `DELETE /admin/api/plugins/{name}`;
//! - `GET /admin/api/nodes` (cluster mode): every node's report and whether they have converged.
//!
//! The changes are `deploy.rs`'s, so they behave as the admin UI's do; every one is audited (a refused
//! one too).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};

use crate::accounts::auth::Principal;
use crate::admin::deploy::{self, DeployError, Deployed, Who};
use crate::app::state::AppState;
use crate::http::context::Client;
use crate::http::error::Error;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/api/plugins", get(list))
        .route(
            "/admin/api/plugins/{name}",
            axum::routing::put(push)
                .delete(remove)
                .layer(DefaultBodyLimit::max(deploy::MAX_UPLOAD_BYTES)),
        )
        .route("/admin/api/plugins/{name}/disable", post(disable))
        .route("/admin/api/plugins/{name}/enable", post(enable))
        .route("/admin/api/nodes", get(nodes))
}

/// `GET /admin/api/plugins`.
async fn list(State(state): State<Arc<AppState>>) -> Result<Response, Error> {
    let generation = state.current();
    let loaded = |name: &str| generation.plugins.iter().find(|p| p.manifest.name == name);
    if state.cluster().is_some() {
        let snapshot = crate::cluster::store::snapshot(&state.auth.db)
            .await
            .map_err(|e| Error::refused(anyhow::Error::new(e)))?;
        let plugins: Vec<Value> = snapshot
            .plugins
            .iter()
            .map(|p| {
                json!({
                    "name": p.name, "version": p.version, "sha256": p.sha256, "enabled": p.enabled,
                    "bytes": p.size, "updated_ms": p.updated,
                    "loaded": loaded(&p.name).is_some_and(|l| l.hash == p.sha256),
                })
            })
            .collect();
        return Ok(Json(json!({
            "mode": "cluster",
            "revision": snapshot.revision,
            "generation": generation.id,
            "plugins": plugins,
        }))
        .into_response());
    }
    let mut plugins: Vec<Value> = generation
        .plugins
        .iter()
        .map(|p| {
            json!({
                "name": p.manifest.name, "version": p.manifest.version, "sha256": p.hash,
                "enabled": true, "loaded": true,
                "file": p.file.file_name().map(|f| f.to_string_lossy().into_owned()),
            })
        })
        .collect();
    for file in deploy::disabled_files(&state.config().plugins_dir) {
        plugins.push(json!({
            "name": file.file.split('.').next().unwrap_or_default(),
            "enabled": false, "loaded": false, "file": file.file, "bytes": file.bytes,
        }));
    }
    Ok(
        Json(json!({ "mode": "files", "generation": generation.id, "plugins": plugins }))
            .into_response(),
    )
}

/// The caller and where from, for the audit log.
fn caller(principal: &Principal, parts: &Parts) -> (String, String) {
    (principal.actor(), Client::of(parts).0)
}

/// Answer a change: 200 with what is served now, or the refusal; audited either way (cluster changes
/// wrote their row with the change).
async fn answer(
    state: &AppState,
    (actor, client): (String, String),
    action: &str,
    name: &str,
    result: Result<Deployed, DeployError>,
) -> Response {
    let db = &state.auth.db;
    match result {
        Ok(done) => {
            if done.applied.is_none() {
                crate::accounts::audit::record_or_log(
                    db,
                    &actor,
                    action,
                    name,
                    &done.message,
                    &client,
                )
                .await;
            }
            let generation = state.current();
            let loaded = generation
                .plugins
                .iter()
                .find(|p| p.manifest.name == done.plugin);
            let mut body = json!({
                "ok": true,
                "name": done.plugin,
                "message": done.message,
                "generation": generation.id,
                "version": loaded.map(|p| p.manifest.version.clone()),
                "sha256": loaded.map(|p| p.hash.clone()),
                "revision": Value::Null,
            });
            if let Some(a) = &done.applied {
                body["revision"] = json!(a.revision);
                body["changed"] = json!(a.changed);
                body["enabled"] = json!(a.enabled);
                if !a.sha256.is_empty() {
                    body["version"] = json!(a.version);
                    body["sha256"] = json!(a.sha256);
                }
            }
            Json(body).into_response()
        }
        Err(e) => {
            let status = match &e {
                DeployError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
                DeployError::NotFound(_) => StatusCode::NOT_FOUND,
                DeployError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let message = e.to_string();
            crate::accounts::audit::record_or_log(
                db,
                &actor,
                action,
                name,
                &format!("refused: {message}"),
                &client,
            )
            .await;
            Error::new(status, message).into_response()
        }
    }
}

/// `PUT /admin/api/plugins/{name}`: the body is the component.
async fn push(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let who = caller(&principal, &parts);
    let shown = format!("the upload for {name}");
    let result = deploy::upload(
        &state,
        Who {
            actor: &who.0,
            client: &who.1,
        },
        &shown,
        body,
        Some(&name),
    )
    .await;
    answer(&state, who, "plugin.upload", &name, result).await
}

/// The file of plugin `name` in the plugins directory (file mode): the loaded plugin's, else
/// `NAME.wasm.disabled`; cluster mode names plugins directly.
fn file_of(state: &AppState, name: &str, disabled: bool) -> String {
    if state.cluster().is_some() {
        return format!("{name}.wasm");
    }
    let current = state.current();
    match current.plugins.iter().find(|p| p.manifest.name == name) {
        Some(p) if !disabled => p
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        _ => format!("{name}.wasm{}", deploy::DISABLED_SUFFIX),
    }
}

/// `POST /admin/api/plugins/{name}/disable`.
async fn disable(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    change(&state, &principal, &name, &parts, Op::Disable).await
}

/// `POST /admin/api/plugins/{name}/enable`.
async fn enable(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    change(&state, &principal, &name, &parts, Op::Enable).await
}

/// `DELETE /admin/api/plugins/{name}`.
async fn remove(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    change(&state, &principal, &name, &parts, Op::Delete).await
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Disable,
    Enable,
    Delete,
}

/// Disable, enable or delete plugin `name` by its file (file mode) or name (cluster mode).
async fn change(
    state: &Arc<AppState>,
    principal: &Principal,
    name: &str,
    parts: &Parts,
    op: Op,
) -> Response {
    let who = caller(principal, parts);
    let loaded = state.current().plugin_index(name).is_some();
    let w = Who {
        actor: &who.0,
        client: &who.1,
    };
    let (action, result) = match op {
        Op::Disable => (
            "plugin.disable",
            deploy::disable(state, w, &file_of(state, name, false)).await,
        ),
        Op::Enable => (
            "plugin.enable",
            deploy::enable(state, w, &file_of(state, name, true)).await,
        ),
        Op::Delete => (
            "plugin.delete",
            deploy::delete(state, w, &file_of(state, name, !loaded)).await,
        ),
    };
    answer(state, who, action, name, result).await
}

/// `GET /admin/api/nodes`: the cluster as its nodes report it (404 in single-node mode).
async fn nodes(State(state): State<Arc<AppState>>) -> Result<Response, Error> {
    if state.cluster().is_none() {
        return Err(Error::new(
            StatusCode::NOT_FOUND,
            "single-node mode: there is no cluster (set database to a postgres:// URL)",
        ));
    }
    let overview = crate::cluster::nodes::overview(&state.auth.db)
        .await
        .map_err(|e| Error::refused(anyhow::Error::new(e)))?;
    Ok(Json(overview).into_response())
}
