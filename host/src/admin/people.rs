//! The admin UI's pages for people and their credentials: API keys (list; create, shown once with a copy
//! button and a curl example; revoke) and users (list, add, reset password, change role, remove — never
//! the last admin). Every change writes an audit row and answers with the page and a message.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use minijinja::{Value, context};
use serde::Deserialize;

use crate::accounts::keys;
use crate::accounts::users::{self, parse_role};
use crate::admin::page::{Viewer, refusal, render};
use crate::app::state::AppState;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/keys", get(keys_page).post(keys_action))
        .route("/admin/users", get(users_page).post(users_action))
}

/// A message for the top of a page: what happened, or why not.
#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
}

impl Outcome {
    fn done(message: String) -> Self {
        Self {
            notice: Some(message),
            error: None,
            status: StatusCode::OK,
        }
    }

    fn refused(message: String) -> Self {
        Self {
            notice: None,
            error: Some(message),
            status: StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// A refusal for `e`: database errors are logged and answered 500 without their text.
    fn failed(e: &anyhow::Error) -> Self {
        if crate::http::error::is_database_error(e) {
            tracing::error!(error = %format!("{e:#}"), "admin page change failed");
            return Self {
                notice: None,
                error: Some("The database did not accept the change; nothing was changed.".into()),
                status: StatusCode::INTERNAL_SERVER_ERROR,
            };
        }
        Self::refused(format!("{e:#}"))
    }
}

/// Write an audit row for a change that went through.
async fn audit(state: &AppState, viewer: &Viewer, action: &str, target: &str, detail: &str) {
    crate::accounts::audit::record_or_log(
        &state.auth.db,
        &viewer.actor(),
        action,
        target,
        detail,
        &viewer.client,
    )
    .await;
}

/// Where this server is reached, as the browser sees it (for the curl example).
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| state.config().listen.to_string());
    let scheme = if state.auth.config.secure_cookies {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

// ---------------------------------------------------------------------------------------------- keys

async fn keys_page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<crate::admin::accounts_api::KeyFilter>,
) -> Response {
    keys_page_with(&state, &viewer, q.user.as_deref(), Outcome::default(), None).await
}

async fn keys_page_with(
    state: &AppState,
    viewer: &Viewer,
    owner: Option<&str>,
    outcome: Outcome,
    created: Option<Value>,
) -> Response {
    let listed = keys::list(&state.auth.db, owner.filter(|o| !o.is_empty())).await;
    let users = users::list(&state.auth.db).await;
    let (Ok(list), Ok(users)) = (listed, users) else {
        return refusal(
            state,
            Some(viewer),
            StatusCode::INTERNAL_SERVER_ERROR,
            "The keys cannot be read right now.",
        );
    };
    let now = crate::clock::unix_ms();
    let rows: Vec<Value> = list
        .into_iter()
        .map(|k| {
            let expired = k.expires_at.is_some_and(|e| e <= now);
            context! { expired, ..Value::from_serialize(&k) }
        })
        .collect();
    let status = outcome.status;
    render(
        state,
        Some(viewer),
        "admin/keys.html",
        "API keys",
        status,
        context! {
            keys => rows,
            users,
            owner,
            created,
            notice => outcome.notice,
            error => outcome.error,
        },
    )
}

#[derive(Deserialize)]
struct KeyForm {
    op: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    id: String,
}

/// `POST /admin/keys`: `op` = create (user, role, scopes, expires) or revoke (id).
async fn keys_action(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let form: KeyForm = match crate::http::context::decode(&parts, &body) {
        Ok(f) => f,
        Err(e) => return refusal(&state, Some(&viewer), StatusCode::BAD_REQUEST, e.message()),
    };
    match form.op.as_str() {
        "create" => create_key(&state, &viewer, &headers, &form).await,
        "revoke" => {
            let outcome = match keys::revoke(&state.auth.db, &form.id).await {
                Ok(info) => {
                    audit(
                        &state,
                        &viewer,
                        "key.revoke",
                        &info.owner,
                        &format!("id {}", info.id),
                    )
                    .await;
                    Outcome::done(format!(
                        "Revoked key {}… of {}; it stops working now.",
                        info.prefix, info.owner
                    ))
                }
                Err(e) => Outcome::failed(&e),
            };
            keys_page_with(&state, &viewer, None, outcome, None).await
        }
        other => refusal(
            &state,
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            &format!("unknown key action {other:?}"),
        ),
    }
}

async fn create_key(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    form: &KeyForm,
) -> Response {
    let scopes: Vec<String> = form
        .scopes
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let result = async {
        let role = Some(form.role.as_str())
            .filter(|r| !r.is_empty())
            .map(parse_role)
            .transpose()?;
        let expires = Some(form.expires.trim())
            .filter(|e| !e.is_empty())
            .map(|e| keys::parse_expiry(e, crate::clock::unix_ms()))
            .transpose()?;
        keys::create(&state.auth.db, form.user.trim(), role, &scopes, expires).await
    }
    .await;
    let new = match result {
        Ok(new) => new,
        Err(e) => return keys_page_with(state, viewer, None, Outcome::failed(&e), None).await,
    };
    let info = &new.info;
    let detail = info.audit_detail();
    audit(state, viewer, "key.create", &info.owner, &detail).await;
    // The example calls a route the key may use: the first plain GET in its scopes, else the catalogue.
    let generation = state.current();
    let path =
        crate::generation::catalogue::route_rows(generation.plugins.iter().map(|p| &p.manifest))
            .into_iter()
            .filter(|r| r.link)
            .map(|r| r.path)
            .find(|p| info.scopes.is_empty() || info.scopes.iter().any(|s| keys::in_scope(s, p)))
            .unwrap_or("/api");
    let curl = format!(
        "curl -H 'Authorization: Bearer {}' {}{path}",
        new.key,
        base_url(state, headers)
    );
    let created = context! { key => new.key.clone(), curl, ..Value::from_serialize(info) };
    let message = format!(
        "Created key {}… for {}. Copy it now: it is shown only once.",
        info.prefix, info.owner
    );
    let mut response =
        keys_page_with(state, viewer, None, Outcome::done(message), Some(created)).await;
    *response.status_mut() = StatusCode::CREATED;
    response
}

// --------------------------------------------------------------------------------------------- users

#[derive(Deserialize)]
struct UsersQuery {
    /// A user to ask about removing.
    remove: Option<String>,
}

async fn users_page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<UsersQuery>,
) -> Response {
    users_page_with(&state, &viewer, Outcome::default(), q.remove.as_deref()).await
}

async fn users_page_with(
    state: &AppState,
    viewer: &Viewer,
    outcome: Outcome,
    confirm_remove: Option<&str>,
) -> Response {
    let (Ok(users), Ok(keys)) = (
        users::list(&state.auth.db).await,
        keys::list(&state.auth.db, None).await,
    ) else {
        return refusal(
            state,
            Some(viewer),
            StatusCode::INTERNAL_SERVER_ERROR,
            "The users cannot be read right now.",
        );
    };
    let admins = users.iter().filter(|u| u.role == "admin").count();
    let rows: Vec<Value> = users
        .iter()
        .map(|u| {
            let live_keys = keys
                .iter()
                .filter(|k| k.owner == u.name && !k.revoked)
                .count();
            let last_admin = u.role == "admin" && admins <= 1;
            context! { live_keys, last_admin, ..Value::from_serialize(u) }
        })
        .collect();
    let status = outcome.status;
    render(
        state,
        Some(viewer),
        "admin/users.html",
        "Users",
        status,
        context! {
            users => rows,
            confirm => confirm_remove,
            min_password => users::MIN_PASSWORD_CHARS,
            notice => outcome.notice,
            error => outcome.error,
        },
    )
}

#[derive(Deserialize)]
struct UserForm {
    op: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    confirm: String,
}

/// Add user `name` with the form's password and role (default user); the notice says so.
async fn add_user(
    state: &AppState,
    viewer: &Viewer,
    form: &UserForm,
    name: &str,
) -> anyhow::Result<String> {
    let role = parse_role(if form.role.is_empty() {
        "user"
    } else {
        &form.role
    })?;
    let user = users::create(&state.auth.db, name, &form.password, role).await?;
    audit(
        state,
        viewer,
        "user.add",
        &user.name,
        &format!("role {}", user.role),
    )
    .await;
    Ok(format!("Added {} ({}).", user.name, user.role))
}

/// Give `name` the form's password (their sessions end).
async fn set_password(
    state: &AppState,
    viewer: &Viewer,
    form: &UserForm,
    name: &str,
) -> anyhow::Result<String> {
    users::set_password(&state.auth.db, name, &form.password).await?;
    audit(state, viewer, "user.passwd", name, "").await;
    Ok(format!(
        "Set a new password for {name}; their sessions have ended."
    ))
}

/// Give `name` the form's role.
async fn set_role(
    state: &AppState,
    viewer: &Viewer,
    form: &UserForm,
    name: &str,
) -> anyhow::Result<String> {
    let role = parse_role(&form.role)?;
    users::set_role(&state.auth.db, name, role).await?;
    let role = role.as_str();
    audit(state, viewer, "user.role", name, &format!("role {role}")).await;
    Ok(format!("{name} is now {role}."))
}

/// Remove `name` (confirmed), with their keys and sessions.
async fn remove_user(state: &AppState, viewer: &Viewer, name: &str) -> anyhow::Result<String> {
    users::remove(&state.auth.db, name).await?;
    audit(state, viewer, "user.remove", name, "").await;
    Ok(format!("Removed {name} with their keys and sessions."))
}

/// `POST /admin/users`: `op` = add (name, password, role), password (name, password), role (name,
/// role) or remove (name; asks first unless `confirm=yes`).
async fn users_action(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    parts: axum::http::request::Parts,
    body: Bytes,
) -> Response {
    let form: UserForm = match crate::http::context::decode(&parts, &body) {
        Ok(f) => f,
        Err(e) => return refusal(&state, Some(&viewer), StatusCode::BAD_REQUEST, e.message()),
    };
    let name = form.name.trim();
    let done = match form.op.as_str() {
        "add" => add_user(&state, &viewer, &form, name).await,
        "password" => set_password(&state, &viewer, &form, name).await,
        "role" => set_role(&state, &viewer, &form, name).await,
        "remove" if form.confirm == "yes" => remove_user(&state, &viewer, name).await,
        "remove" => return users_page_with(&state, &viewer, Outcome::default(), Some(name)).await,
        other => {
            let message = format!("unknown user action {other:?}");
            return refusal(&state, Some(&viewer), StatusCode::BAD_REQUEST, &message);
        }
    };
    let outcome = match done {
        Ok(notice) => Outcome::done(notice),
        Err(e) => Outcome::failed(&e),
    };
    users_page_with(&state, &viewer, outcome, None).await
}
