//! The admin JSON API for users, API keys and the audit log. Every state change writes an audit row.
//! The routes are guarded by [`crate::admin::api`] (admin role, by session with CSRF or by API key);
//! login and logout are in [`crate::admin::login`].

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::audit;
use crate::accounts::auth::Principal;
use crate::accounts::keys;
use crate::accounts::users::{self, parse_role};
use crate::app::state::AppState;
use crate::http::context::{Client, FormOrJson};
use crate::http::error::Error;
use crate::http::respond::no_store;

/// Users, keys and audit: mounted behind the admin guard in [`crate::admin::api`].
pub(crate) fn admin_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/api/users", get(list_users).post(add_user))
        .route("/admin/api/users/{name}", delete(remove_user))
        .route("/admin/api/users/{name}/password", put(set_password))
        .route("/admin/api/keys", get(list_keys).post(create_key))
        .route("/admin/api/keys/{id}", delete(revoke_key))
        .route("/admin/api/audit", get(audit_page))
}

/// Who is making a change, from where: what the change's audit row records. An extractor, so a handler
/// names it among its arguments (the admin guard has put the caller on the request).
struct Audit {
    state: Arc<AppState>,
    who: Principal,
    client: Client,
}

impl FromRequestParts<Arc<AppState>> for Audit {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Error> {
        let who = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "an admin route ran without the admin guard",
                )
            })?;
        Ok(Self {
            state: state.clone(),
            who,
            client: Client::of(parts),
        })
    }
}

impl Audit {
    async fn record(&self, action: &str, target: &str, detail: &str) {
        let db = &self.state.auth.db;
        audit::record_or_log(
            db,
            &self.who.actor(),
            action,
            target,
            detail,
            &self.client.0,
        )
        .await;
    }
}

async fn list_users(State(state): State<Arc<AppState>>) -> Result<Json<Value>, Error> {
    let users = users::list(&state.auth.db).await.map_err(Error::refused)?;
    Ok(Json(json!({ "users": users })))
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
    role: Option<String>,
}

async fn add_user(
    State(state): State<Arc<AppState>>,
    change: Audit,
    FormOrJson(req): FormOrJson<NewUser>,
) -> Result<Response, Error> {
    let role = parse_role(req.role.as_deref().unwrap_or("user")).map_err(Error::refused)?;
    let user = users::create(&state.auth.db, &req.name, &req.password, role)
        .await
        .map_err(Error::refused)?;
    change
        .record("user.add", &user.name, &format!("role {}", user.role))
        .await;
    Ok((StatusCode::CREATED, Json(json!({ "user": user }))).into_response())
}

async fn remove_user(
    State(state): State<Arc<AppState>>,
    change: Audit,
    Path(name): Path<String>,
) -> Result<StatusCode, Error> {
    users::remove(&state.auth.db, &name)
        .await
        .map_err(Error::refused)?;
    change.record("user.remove", &name, "").await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
}

async fn set_password(
    State(state): State<Arc<AppState>>,
    change: Audit,
    Path(name): Path<String>,
    FormOrJson(req): FormOrJson<NewPassword>,
) -> Result<StatusCode, Error> {
    users::set_password(&state.auth.db, &name, &req.password)
        .await
        .map_err(Error::refused)?;
    change.record("user.passwd", &name, "").await;
    Ok(StatusCode::NO_CONTENT)
}

/// `?user=NAME`: only this user's keys (the API's list and the keys page).
#[derive(Deserialize)]
pub(crate) struct KeyFilter {
    pub(crate) user: Option<String>,
}

async fn list_keys(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<KeyFilter>,
) -> Result<Json<Value>, Error> {
    let keys = keys::list(&state.auth.db, filter.user.as_deref())
        .await
        .map_err(Error::refused)?;
    Ok(Json(json!({ "keys": keys })))
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
    change: Audit,
    body: axum::body::Bytes,
) -> Result<Response, Error> {
    let req: NewKeyBody = serde_json::from_slice(&body).map_err(|_| {
        Error::bad_request("expected JSON {\"user\", \"role\"?, \"scopes\"?, \"expires\"?}")
    })?;
    let role = req
        .role
        .as_deref()
        .map(parse_role)
        .transpose()
        .map_err(Error::refused)?;
    let now = state.auth.clock.now_ms();
    let expires = req
        .expires
        .as_deref()
        .map(|e| keys::parse_expiry(e, now))
        .transpose()
        .map_err(Error::refused)?;
    let new = keys::create(&state.auth.db, &req.user, role, &req.scopes, expires)
        .await
        .map_err(Error::refused)?;
    let info = &new.info;
    let detail = info.audit_detail();
    change.record("key.create", &info.owner, &detail).await;
    Ok(no_store((StatusCode::CREATED, Json(&new)).into_response()))
}

async fn revoke_key(
    State(state): State<Arc<AppState>>,
    change: Audit,
    Path(key): Path<String>,
) -> Result<Json<Value>, Error> {
    let info = keys::revoke(&state.auth.db, &key)
        .await
        .map_err(Error::refused)?;
    change
        .record("key.revoke", &info.owner, &format!("id {}", info.id))
        .await;
    Ok(Json(json!({ "key": info })))
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
) -> Result<Json<Value>, Error> {
    let entries = audit::page(&state.auth.db, q.before, q.limit.unwrap_or(100))
        .await
        .map_err(Error::refused)?;
    let next = entries.last().map(|e| e.id);
    Ok(Json(json!({ "entries": entries, "next": next })))
}
