//! The admin JSON API (`/admin/api/...`) and `/metrics`.
//!
//! Every admin route needs the admin role: a session (with the CSRF token on state changes) or an API
//! key with the admin role (see `auth.rs`). `/metrics`, `/healthz` and `/readyz` stay open. Login,
//! logout and the session endpoint are in `login.rs`, the first admin in `bootstrap.rs`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::accounts::auth::Principal;
use crate::app::state::AppState;
use crate::bindings::types::Role;
use crate::http::error::Error;

/// Routes under `/admin/api` that need the admin role, behind the guard below.
pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/api/reload", post(reload))
        .route("/admin/api/generations", get(generations))
        .merge(crate::admin::accounts_api::admin_routes())
        .merge(crate::admin::plugins_api::routes())
        .route_layer(middleware::from_fn_with_state(state, admin_access))
        .merge(crate::admin::login::router())
}

/// Let only admins through; the handlers get the caller as an `Extension<Principal>`. A browser form
/// (which cannot set headers) may carry the session's CSRF token in its `csrf` field instead of the
/// `x-csrf-token` header.
async fn admin_access(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Result<Response, Error> {
    let (mut parts, body) = req.into_parts();
    let mut principal = state.auth.authenticate(&parts).await?;
    let body = form_csrf(&mut principal, &parts, body).await?;
    crate::accounts::auth::authorize(&principal, Role::Admin, parts.uri.path())?;
    parts.extensions.insert(principal);
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// Largest admin form body read to find its CSRF field.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// For a session request that lacks the `x-csrf-token` header: accept the token from the `csrf` field of
/// a URL-encoded form body (clearing `csrf_failed`). Returns the body to pass on.
pub(crate) async fn form_csrf(
    principal: &mut Principal,
    parts: &axum::http::request::Parts,
    body: axum::body::Body,
) -> Result<axum::body::Body, Error> {
    if !(principal.csrf_failed && crate::http::context::is_form(parts)) {
        return Ok(body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(Error::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("admin forms may have at most {MAX_FORM_BYTES} bytes"),
        ));
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    if token.is_some_and(|t| principal.csrf_matches(&t)) {
        principal.csrf_failed = false;
    }
    Ok(axum::body::Body::from(bytes))
}

/// `POST /admin/api/reload`: build a new generation and swap it in; 200 with the new generation's
/// plugins, or 422 with the error while the old generation keeps serving.
async fn reload(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    parts: axum::http::request::Parts,
) -> Response {
    let client = crate::http::context::Client::of(&parts).0;
    let outcome = audited_reload(&state, &who.actor(), &client).await;
    let status = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, Json(&*outcome)).into_response()
}

/// Reload and write the audit row (who, and the outcome).
pub(crate) async fn audited_reload(
    state: &Arc<AppState>,
    actor: &str,
    client: &str,
) -> Arc<crate::app::state::ReloadOutcome> {
    let outcome = state.reload().await;
    let detail = match &outcome.error {
        None => format!(
            "generation {} (was {})",
            outcome.generation, outcome.previous
        ),
        Some(error) => format!("failed: {error}"),
    };
    crate::accounts::audit::record_or_log(
        &state.auth.db,
        actor,
        "reload",
        "plugins",
        &detail,
        client,
    )
    .await;
    outcome
}

/// `GET /admin/api/generations`: the current generation and the retired ones still draining, and what
/// the operator must act on (a plugins directory that does not build, a changed configuration file).
async fn generations(State(state): State<Arc<AppState>>) -> Response {
    let (ok, failed) = state.metrics.reloads();
    Json(json!({
        "current": state.current_status(),
        "retired": state.retired(),
        "reloads": { "ok": ok, "failed": failed },
        "last_reload": state.last_reload().as_deref(),
        "degraded": state.degraded().as_deref(),
        "config_file_changed": state.config().file.as_ref().is_some_and(|f| f.changed()),
    }))
    .into_response()
}

/// `GET /metrics` in the Prometheus text format.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = state.metrics.render(&state.gauges());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
