//! The admin JSON API for users, API keys and the audit log, and the helpers every accounts endpoint
//! shares (request id, client address, error answers, audit rows, form-or-JSON bodies). Every admin
//! state change writes an audit row. The routes are guarded by `admin.rs` (admin role, by session with
//! CSRF or by API key); login and logout are in `login.rs`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::accounts::auth::Principal;
use crate::accounts::keys;
use crate::accounts::users::{self, parse_role};
use crate::app::state::AppState;
use crate::server::{RequestId, error_response};

/// Users, keys and audit: mounted behind the admin guard in `admin.rs`.
pub fn admin_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/api/users", get(list_users).post(add_user))
        .route("/admin/api/users/{name}", delete(remove_user))
        .route("/admin/api/users/{name}/password", put(set_password))
        .route("/admin/api/keys", get(list_keys).post(create_key))
        .route("/admin/api/keys/{id}", delete(revoke_key))
        .route("/admin/api/audit", get(audit_page))
}

/// The request id `request_context` gave this request.
pub(crate) fn request_id(parts: &Parts) -> Arc<str> {
    parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "-".into())
}

/// The client's IP address as text (empty when unknown).
pub(crate) fn client_of(parts: &Parts) -> String {
    crate::accounts::auth::peer(parts)
        .map(|p| p.ip().to_string())
        .unwrap_or_default()
}

/// 429 with `Retry-After` in whole seconds.
pub(crate) fn too_many(wait: Duration, request_id: &str) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("too many failed attempts; retry in {secs} s"),
        request_id,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// Whether `e` comes from the database (logged, never shown) rather than from the request (shown).
pub(crate) fn is_database_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<sqlx::Error>())
}

/// A refused admin request: 400 with the reason, or 500 (logged, not shown) for database errors.
pub(crate) fn bad_request(e: anyhow::Error, request_id: &str) -> Response {
    if is_database_error(&e) {
        tracing::error!(error = %format!("{e:#}"), "admin request failed");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error",
            request_id,
        );
    }
    error_response(StatusCode::BAD_REQUEST, &format!("{e:#}"), request_id)
}

/// Write an audit row; a failure is logged (the change itself has happened).
pub(crate) async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    detail: &str,
    client: &str,
) {
    if let Err(e) =
        crate::accounts::audit::record(&state.auth.db, actor, action, target, detail, client).await
    {
        tracing::error!(error = %format!("{e:#}"), %action, "cannot write audit row");
    }
}

pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether the request body is a form (otherwise it is read as JSON).
pub(crate) fn is_form(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// Decode a form or JSON body into `T`.
pub(crate) fn decode<T: DeserializeOwned>(parts: &Parts, body: &[u8]) -> Result<T, String> {
    if is_form(parts) {
        let map: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| format!("invalid form: {e}"))
    } else {
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
    }
}

async fn list_users(State(state): State<Arc<AppState>>, parts: Parts) -> Response {
    match users::list(&state.auth.db).await {
        Ok(users) => Json(json!({ "users": users })).into_response(),
        Err(e) => bad_request(e, &request_id(&parts)),
    }
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
    role: Option<String>,
}

async fn add_user(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let id = request_id(&parts);
    let req: NewUser = match decode(&parts, &body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e, &id),
    };
    let result = async {
        let role = parse_role(req.role.as_deref().unwrap_or("user"))?;
        users::create(&state.auth.db, &req.name, &req.password, role).await
    }
    .await;
    match result {
        Ok(user) => {
            let detail = format!("role {}", user.role);
            audit(
                &state,
                &who.actor(),
                "user.add",
                &user.name,
                &detail,
                &client_of(&parts),
            )
            .await;
            (StatusCode::CREATED, Json(json!({ "user": user }))).into_response()
        }
        Err(e) => bad_request(e, &id),
    }
}

async fn remove_user(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    parts: Parts,
) -> Response {
    match users::remove(&state.auth.db, &name).await {
        Ok(()) => {
            audit(
                &state,
                &who.actor(),
                "user.remove",
                &name,
                "",
                &client_of(&parts),
            )
            .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(e, &request_id(&parts)),
    }
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
}

async fn set_password(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let id = request_id(&parts);
    let req: NewPassword = match decode(&parts, &body) {
        Ok(r) => r,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e, &id),
    };
    match users::set_password(&state.auth.db, &name, &req.password).await {
        Ok(()) => {
            audit(
                &state,
                &who.actor(),
                "user.passwd",
                &name,
                "",
                &client_of(&parts),
            )
            .await;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => bad_request(e, &id),
    }
}

#[derive(Deserialize)]
struct KeyFilter {
    user: Option<String>,
}

async fn list_keys(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<KeyFilter>,
    parts: Parts,
) -> Response {
    match keys::list(&state.auth.db, filter.user.as_deref()).await {
        Ok(keys) => Json(json!({ "keys": keys })).into_response(),
        Err(e) => bad_request(e, &request_id(&parts)),
    }
}

#[derive(Deserialize)]
struct NewKeyBody {
    user: String,
    role: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
    expires: Option<String>,
}

async fn create_key(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let id = request_id(&parts);
    let Ok(req) = serde_json::from_slice::<NewKeyBody>(&body) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "expected JSON {\"user\", \"role\"?, \"scopes\"?, \"expires\"?}",
            &id,
        );
    };
    let result = async {
        let role = req.role.as_deref().map(parse_role).transpose()?;
        let expires = req
            .expires
            .as_deref()
            .map(|e| keys::parse_expiry(e, crate::accounts::db::now_ms()))
            .transpose()?;
        keys::create(&state.auth.db, &req.user, role, &req.scopes, expires).await
    }
    .await;
    match result {
        Ok(new) => {
            let detail = format!(
                "id {} role {} scopes [{}]",
                new.info.id,
                new.info.role,
                new.info.scopes.join(",")
            );
            audit(
                &state,
                &who.actor(),
                "key.create",
                &new.info.owner,
                &detail,
                &client_of(&parts),
            )
            .await;
            no_store((StatusCode::CREATED, Json(&new)).into_response())
        }
        Err(e) => bad_request(e, &id),
    }
}

async fn revoke_key(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path(key): Path<String>,
    parts: Parts,
) -> Response {
    match keys::revoke(&state.auth.db, &key).await {
        Ok(info) => {
            let detail = format!("id {}", info.id);
            audit(
                &state,
                &who.actor(),
                "key.revoke",
                &info.owner,
                &detail,
                &client_of(&parts),
            )
            .await;
            Json(json!({ "key": info })).into_response()
        }
        Err(e) => bad_request(e, &request_id(&parts)),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /admin/api/audit?before=ID&limit=N`: newest first; `next` is the `before` of the next page.
async fn audit_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<AuditQuery>,
    parts: Parts,
) -> Response {
    match crate::accounts::audit::page(&state.auth.db, q.before, q.limit.unwrap_or(100)).await {
        Ok(entries) => {
            let next = entries.last().map(|e| e.id);
            Json(json!({ "entries": entries, "next": next })).into_response()
        }
        Err(e) => bad_request(e, &request_id(&parts)),
    }
}
