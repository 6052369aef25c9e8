//! The admin web UI: server-rendered pages under `/admin` from the generation's `admin/*.html`
//! templates (parsed when the generation was built, like every other page), with the access rules every
//! page shares, and the pages that only read: the dashboard, the routes, the audit log. Plugins are in
//! `admin_plugins.rs`, users and keys in `admin_people.rs`.
//!
//! - Anonymous browsers are sent to the login page with `next` set to where they were; while no admin
//!   exists, `/admin` is the first-run setup form instead. Signed-in non-admins get a 403 page.
//! - Every change is a POST of a form carrying the session's CSRF token (the `csrf` field), writes an
//!   audit row and answers with the page and a message saying what happened.
//! - Pages work without JavaScript; `admin.js` (served from the binary) only adds copy buttons. Responses
//!   carry a Content-Security-Policy that allows nothing from other origins.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use minijinja::{Value, context};
use serde::Deserialize;

use crate::accounts::auth::Principal;
use crate::admin::page::{Viewer, harden, refusal, render, see_other};
use crate::app::sampler::Sample;
use crate::app::state::AppState;
use crate::bindings::types::Role;

/// The script the pages may load: small, optional, same origin.
const ADMIN_JS: &str = include_str!("../../../templates/admin/admin.js");
/// Audit rows per page.
const AUDIT_PAGE: i64 = 50;

/// The UI's routes: pages behind the guard below, and the setup form, login and script outside it.
pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/routes", get(routes_page))
        .route("/admin/audit", get(audit_page))
        .route("/admin/nodes", get(nodes_page))
        .route("/admin/reload", post(reload))
        .merge(crate::admin::plugins::routes())
        .merge(crate::admin::people::routes())
        .route_layer(middleware::from_fn_with_state(state, ui_access))
        .route("/admin/setup", post(setup))
        .route("/admin/assets/admin.js", get(script))
}

/// The guard in front of every page (see the module docs).
async fn ui_access(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let request_id = crate::http::context::RequestId::of(&parts.extensions);
    let mut principal = match state.auth.authenticate(&parts).await {
        Ok(p) => p,
        Err(e) => {
            let status = e.status();
            return refusal(&state, None, status, &e.to_string());
        }
    };
    if principal.role == Role::Anonymous {
        if crate::admin::bootstrap::armed(&state.auth).await {
            if parts.uri.path() == "/admin" && parts.method == axum::http::Method::GET {
                return setup_form(&state, "", None, StatusCode::OK);
            }
            return see_other("/admin");
        }
        let here = if parts.method == axum::http::Method::GET {
            parts
                .uri
                .path_and_query()
                .map_or("/admin", |p| p.as_str())
                .to_owned()
        } else {
            parts.uri.path().to_owned()
        };
        let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return see_other(&format!("/admin/login?next={next}"));
    }
    let client = crate::http::context::Client::of(&parts).0;
    let viewer = |principal: Principal| Viewer {
        principal,
        request_id: request_id.clone(),
        client: client.clone(),
    };
    if principal.role != Role::Admin {
        let message = format!(
            "You are signed in as {:?}, who is not an admin. Ask an admin for access, or sign in as one.",
            principal.subject
        );
        return refusal(
            &state,
            Some(&viewer(principal)),
            StatusCode::FORBIDDEN,
            &message,
        );
    }
    let body = match crate::admin::api::form_csrf(&mut principal, &parts, body).await {
        Ok(body) => body,
        Err(refused) => return harden(refused.into_response()),
    };
    // An upload is a multipart form: its handler reads the token from the form itself.
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if principal.csrf_failed && !multipart {
        let who = viewer(principal);
        return refusal(
            &state,
            Some(&who),
            StatusCode::FORBIDDEN,
            "This form is missing its security token or the token is out of date (were you signed out?). Reload the page and try again.",
        );
    }
    parts.extensions.insert(viewer(principal));
    next.run(Request::from_parts(parts, body)).await
}

/// `GET /admin/assets/admin.js`.
async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        ADMIN_JS,
    )
        .into_response()
}

/// The first-run form.
fn setup_form(
    state: &AppState,
    username: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let from_env = std::env::var(crate::admin::bootstrap::SECRET_ENV).is_ok_and(|s| !s.is_empty());
    render(
        state,
        None,
        "admin/setup.html",
        "Set up Plugin Host",
        status,
        context! { username, error, from_env, secret_env => crate::admin::bootstrap::SECRET_ENV },
    )
}

#[derive(Deserialize)]
struct SetupForm {
    secret: String,
    username: String,
    password: String,
    confirm: String,
}

/// `POST /admin/setup`: create the first admin with the bootstrap secret, sign them in, go to the
/// dashboard.
async fn setup(State(state): State<Arc<AppState>>, parts: Parts, body: Bytes) -> Response {
    use crate::admin::bootstrap::Refusal;
    if !crate::admin::bootstrap::armed(&state.auth).await {
        return see_other("/admin/login");
    }
    let form: SetupForm = match crate::http::context::decode(&parts, &body) {
        Ok(f) => f,
        Err(e) => return setup_form(&state, "", Some(e.message()), StatusCode::BAD_REQUEST),
    };
    if form.password != form.confirm {
        return setup_form(
            &state,
            &form.username,
            Some("The two passwords differ."),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let client = crate::http::context::Client::of(&parts).0;
    let created = crate::admin::bootstrap::first_admin(
        &state,
        form.secret.trim(),
        &form.username,
        &form.password,
        &client,
    )
    .await;
    let (status, message) = match created {
        Ok(user) => return crate::admin::login::start_session(&state, &user.name, "/admin").await,
        Err(Refusal::Closed) => return see_other("/admin/login"),
        Err(Refusal::Locked(wait)) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong secrets; try again in {} s.",
                wait.as_secs() + 1
            ),
        ),
        Err(Refusal::WrongSecret) => (
            StatusCode::FORBIDDEN,
            "That is not the bootstrap secret. It is printed in the server's log at start.".into(),
        ),
        Err(Refusal::Failed(e)) => (StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")),
    };
    setup_form(&state, &form.username, Some(&message), status)
}

/// `GET /admin`: the dashboard.
async fn dashboard(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    dashboard_with(&state, &viewer, None, None, StatusCode::OK)
}

/// The dashboard with an optional message (after a reload from its button).
fn dashboard_with(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let now = Sample::take(state);
    let recent = state.history.recent(&now);
    let mut samples = state.history.samples();
    samples.push(now);
    let chart = crate::admin::chart::memory_chart(&samples, "memory");
    let generation = state.current();
    let since_start = now.totals;
    let (reloads_ok, reloads_failed) = state.metrics.reloads();
    let created_ms = crate::clock::ms_of(generation.created);
    let context = context! {
        notice,
        error,
        chart => Value::from_safe_string(chart),
        generation => context! {
            id => generation.id,
            created_ms,
            plugins => generation.plugins.len(),
            routes => generation.routes.len(),
            in_flight => generation.in_flight(),
        },
        retired => state.retired(),
        uptime_ms => state.started.elapsed().as_millis() as i64,
        rss_mib => now.rss_bytes as f64 / 1048576.0,
        live_generations => now.live_generations,
        recent => context! {
            seconds => recent.seconds,
            requests => recent.requests,
            per_second => recent.per_second,
            error_percent => recent.error_ratio * 100.0,
            p50_ms => recent.p50_ms,
            p99_ms => recent.p99_ms,
        },
        total => context! { requests => since_start.requests, errors => since_start.errors },
        reloads => context! { ok => reloads_ok, failed => reloads_failed },
        last_reload => state.last_reload().as_deref().map(Value::from_serialize),
        templates => generation.views.stats(),
        template_parses => crate::generation::views::parsed_total(),
        samples => samples.len(),
    };
    render(
        state,
        Some(viewer),
        "admin/dashboard.html",
        "Dashboard",
        status,
        context,
    )
}

/// `POST /admin/reload`: rebuild the generation from the plugins directory; back to the page the button
/// was on (the dashboard or the plugins page) with the outcome.
async fn reload(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    body: Bytes,
) -> Response {
    let back_to_plugins = form_urlencoded::parse(&body).any(|(k, v)| k == "from" && v == "plugins");
    let outcome = crate::admin::api::audited_reload(&state, &viewer.actor(), &viewer.client).await;
    let (notice, error, status) = match &outcome.error {
        None => (
            Some(format!(
                "Reloaded: generation {} replaced {} in {:.0} ms.",
                outcome.generation, outcome.previous, outcome.duration_ms
            )),
            None,
            StatusCode::OK,
        ),
        Some(e) => (
            None,
            Some(format!(
                "The reload failed; generation {} keeps serving. {e}",
                outcome.generation
            )),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    };
    if back_to_plugins {
        return crate::admin::plugins::plugins_with(
            &state,
            &viewer,
            notice.as_deref(),
            error.as_deref(),
            status,
        );
    }
    dashboard_with(&state, &viewer, notice.as_deref(), error.as_deref(), status)
}

/// `GET /admin/routes`: every route of the current generation, with links to plain GET routes.
async fn routes_page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let generation = state.current();
    let routes =
        crate::generation::catalogue::route_rows(generation.plugins.iter().map(|p| &p.manifest));
    render(
        &state,
        Some(&viewer),
        "admin/routes.html",
        "Routes",
        StatusCode::OK,
        context! { routes },
    )
}

/// `GET /admin/nodes`: cluster mode's nodes as they report themselves, and whether they have converged
/// on the plugin set's revision (single-node mode says so).
async fn nodes_page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
) -> Response {
    let Some(node) = state.cluster() else {
        return render(
            &state,
            Some(&viewer),
            "admin/nodes.html",
            "Nodes",
            StatusCode::OK,
            context! { cluster => false },
        );
    };
    match crate::cluster::nodes::overview(&state.auth.db).await {
        Ok(overview) => render(
            &state,
            Some(&viewer),
            "admin/nodes.html",
            "Nodes",
            StatusCode::OK,
            context! { cluster => true, this => node.id.clone(), overview, stale_ms => crate::cluster::nodes::STALE_MS },
        ),
        Err(e) => refusal(
            &state,
            Some(&viewer),
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("The database did not answer: {e}"),
        ),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    before: Option<i64>,
}

/// `GET /admin/audit?before=ID`: the audit log, newest first, [`AUDIT_PAGE`] rows a page.
async fn audit_page(
    State(state): State<Arc<AppState>>,
    Extension(viewer): Extension<Viewer>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return refusal(
            &state,
            Some(&viewer),
            StatusCode::BAD_REQUEST,
            "before must be an audit row id",
        );
    };
    // One more row than shown tells whether an older page exists.
    let rows = crate::accounts::audit::page(&state.auth.db, q.before, AUDIT_PAGE + 1).await;
    let mut entries = match rows {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot read the audit log");
            return refusal(
                &state,
                Some(&viewer),
                StatusCode::INTERNAL_SERVER_ERROR,
                "The audit log cannot be read right now.",
            );
        }
    };
    let older = entries.len() as i64 > AUDIT_PAGE;
    entries.truncate(AUDIT_PAGE as usize);
    let next = older.then(|| entries.last().map(|e| e.id)).flatten();
    render(
        &state,
        Some(&viewer),
        "admin/audit.html",
        "Audit log",
        StatusCode::OK,
        context! { entries, next, first_page => q.before.is_none() },
    )
}
