//! Browser sessions over HTTP: `POST /admin/login` (form or JSON; sets the `ph_session` cookie),
//! `POST /admin/logout`, and `GET /admin/api/session` (who am I, roles, CSRF token). With the bootstrap
//! endpoint these are the accounts routes reachable without the admin role.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::accounts::db::constant_time_eq;
use crate::accounts::sessions;
use crate::accounts::users::{self, parse_role};
use crate::app::state::AppState;
use crate::bindings::types::{AuthMethod, Role};
use crate::http::context::{Client, decode, is_form};
use crate::http::error::Error;
use crate::http::respond::no_store;

/// Login, logout, session and bootstrap: reachable without the admin role.
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/api/session", get(session))
        .route(
            "/admin/api/bootstrap",
            post(crate::admin::bootstrap::bootstrap),
        )
}

/// Where a login form may send the browser: a local path only (no scheme, no `//host`, no backslash,
/// no control character: browsers drop tabs and newlines from a URL, so `/<tab>/evil.example` would
/// lead to `//evil.example`, another site).
pub(crate) fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.contains(|c: char| c.is_ascii_control())
                && n.len() <= 2048 =>
        {
            n
        }
        _ => "/admin",
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// `GET /admin/login?next=PATH`: the sign-in form (`admin/login.html` of the current generation).
async fn login_page(State(state): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    if crate::admin::bootstrap::armed(&state.auth).await {
        // No admin exists yet: the first-run form is at /admin.
        return crate::admin::page::see_other("/admin");
    }
    let next = safe_next(q.next.as_deref());
    login_form(&state, next, "", None, StatusCode::OK)
}

/// The sign-in form, with an error after a failed attempt.
fn login_form(
    state: &AppState,
    next: &str,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let context = minijinja::context! { next, username, error };
    crate::admin::page::render(state, None, "admin/login.html", "Sign in", status, context)
}

/// A new session for `user`: its CSRF token and the `Set-Cookie` header that stores its id.
async fn new_session(state: &AppState, user: &str) -> Result<(String, HeaderValue), Error> {
    let auth = &state.auth;
    let (session_id, csrf) = sessions::create(&auth.db, user, auth.clock.now_ms())
        .await
        .map_err(Error::refused)?;
    let cookie = sessions::set_cookie(
        &session_id,
        auth.config.secure_cookies,
        auth.lifetimes().absolute_ms,
    );
    let cookie = HeaderValue::from_str(&cookie).expect("cookie text is ASCII");
    Ok((csrf, cookie))
}

/// Start a session for `user`, set its cookie and send the browser to `next` (a 303).
pub(crate) async fn start_session(state: &AppState, user: &str, next: &str) -> Response {
    let (_csrf, cookie) = match new_session(state, user).await {
        Ok(session) => session,
        Err(e) => return e.into_response(),
    };
    let mut response = crate::admin::page::see_other(next);
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
    next: Option<String>,
}

/// `POST /admin/login` (form or JSON): check the password, start a session, set the cookie.
async fn login(
    State(state): State<Arc<AppState>>,
    Client(client): Client,
    parts: Parts,
    body: Bytes,
) -> Result<Response, Error> {
    let body: LoginBody = decode(&parts, &body)?;
    let auth = &state.auth;
    let limit_keys = vec![format!("user:{}", body.username), format!("addr:{client}")];
    if let Some(wait) = auth.limiter.locked(&limit_keys).await {
        return Err(Error::locked_out(wait));
    }
    let user = users::verify(&auth.db, &body.username, &body.password)
        .await
        .map_err(Error::refused)?;
    let Some(user) = user else {
        auth.limiter.failed(&limit_keys).await;
        tracing::warn!(user = %body.username, %client, "login failed");
        if crate::http::context::is_form(&parts) {
            let next = safe_next(body.next.as_deref());
            let error = Some("Wrong user name or password.");
            let status = StatusCode::UNAUTHORIZED;
            return Ok(login_form(&state, next, &body.username, error, status));
        }
        return Err(Error::unauthorized("wrong user name or password"));
    };
    auth.limiter.succeeded(&limit_keys).await;
    tracing::info!(user = %user.name, %client, "login");
    let actor = format!("user:{}", user.name);
    crate::accounts::audit::record_or_log(&state.auth.db, &actor, "login", &user.name, "", &client)
        .await;
    if is_form(&parts) {
        return Ok(start_session(&state, &user.name, safe_next(body.next.as_deref())).await);
    }
    let (csrf, cookie) = new_session(&state, &user.name).await?;
    let role = parse_role(&user.role).unwrap_or(Role::User);
    // The roles held, without the anonymous one everybody holds.
    let roles: Vec<&str> = role.held().skip(1).map(|r| r.as_str()).collect();
    let mut response =
        Json(json!({ "user": user.name, "role": user.role, "roles": roles, "csrf": csrf }))
            .into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(no_store(response))
}

#[derive(Deserialize, Default)]
struct LogoutBody {
    csrf: Option<String>,
}

/// `POST /admin/logout`: end the session (CSRF token in `x-csrf-token` or the form field `csrf`).
async fn logout(
    State(state): State<Arc<AppState>>,
    Client(client): Client,
    parts: Parts,
    body: Bytes,
) -> Result<Response, Error> {
    let form: LogoutBody = if body.is_empty() {
        LogoutBody::default()
    } else {
        decode(&parts, &body).unwrap_or_default()
    };
    let auth = &state.auth;
    let cookies = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if let Some(session_id) = sessions::from_cookies(cookies) {
        let session = sessions::lookup(&auth.db, session_id, auth.lifetimes(), auth.clock.now_ms())
            .await
            .map_err(Error::refused)?;
        if let Some(session) = session {
            let token = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .or(form.csrf.as_deref());
            if !token.is_some_and(|t| constant_time_eq(t.as_bytes(), session.csrf.as_bytes())) {
                return Err(Error::new(
                    StatusCode::FORBIDDEN,
                    "missing or wrong CSRF token",
                ));
            }
            sessions::delete(&auth.db, session_id)
                .await
                .map_err(Error::refused)?;
            tracing::info!(user = %session.user, "logout");
            let actor = format!("user:{}", session.user);
            crate::accounts::audit::record_or_log(
                &state.auth.db,
                &actor,
                "logout",
                &session.user,
                "",
                &client,
            )
            .await;
        }
    }
    let mut response = if is_form(&parts) {
        let mut r = StatusCode::SEE_OTHER.into_response();
        r.headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/admin/login"));
        r
    } else {
        Json(json!({ "ok": true })).into_response()
    };
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&sessions::clear_cookie(auth.config.secure_cookies))
            .expect("cookie text is ASCII"),
    );
    Ok(no_store(response))
}

/// `GET /admin/api/session`: who is calling, their roles, and the session's CSRF token.
async fn session(State(state): State<Arc<AppState>>, parts: Parts) -> Result<Response, Error> {
    let p = state
        .auth
        .check(&parts, Role::User, parts.uri.path())
        .await?;
    let roles: Vec<&str> = p.roles().into_iter().skip(1).map(|r| r.as_str()).collect();
    let auth = match p.method {
        AuthMethod::ApiKey => "api-key",
        AuthMethod::Session => "session",
        AuthMethod::None => "none",
    };
    let body = json!({
        "user": p.subject,
        "role": p.role.as_str(),
        "roles": roles,
        "auth": auth,
        "key": p.key_id,
        "csrf": p.csrf,
    });
    Ok(no_store(Json(body).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/admin/keys")), "/admin/keys");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/a\r\nb",
            "/\t/evil.example",
            "/\x05",
        ] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(safe_next(None), "/admin");
    }
}
