//! The admin JSON API (`/admin/api/...`) and `/metrics`.
//!
//! Until accounts exist, the admin API answers only callers on loopback (or anyone, when the operator
//! sets `admin.allow_remote = true` — for a private network only). Others get 403.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::server::error_response;
use crate::state::AppState;

/// Routes under `/admin/api`, guarded by the access rule above.
pub fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/api/reload", post(reload))
        .route("/admin/api/generations", get(generations))
        .route_layer(middleware::from_fn_with_state(state, admin_access))
}

/// Who may use the admin API: loopback peers, or anyone when `admin.allow_remote` is set.
pub fn admin_allowed(peer: Option<SocketAddr>, allow_remote: bool) -> bool {
    allow_remote || peer.is_some_and(|p| p.ip().is_loopback())
}

async fn admin_access(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if admin_allowed(peer, state.config().admin.allow_remote) {
        return next.run(req).await;
    }
    let id = crate::server::request_id_of(&req);
    error_response(
        StatusCode::FORBIDDEN,
        "the admin API answers only on loopback (see admin.allow_remote)",
        &id,
    )
}

/// `POST /admin/api/reload`: build a new generation and swap it in; 200 with the new generation's
/// plugins, or 422 with the error while the old generation keeps serving.
async fn reload(State(state): State<Arc<AppState>>) -> Response {
    let outcome = state.reload().await;
    let status = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    (status, Json(&*outcome)).into_response()
}

/// `GET /admin/api/generations`: the current generation and the retired ones still draining.
async fn generations(State(state): State<Arc<AppState>>) -> Response {
    let (ok, failed) = state.metrics.reloads();
    Json(json!({
        "current": state.current_status(),
        "retired": state.retired(),
        "reloads": { "ok": ok, "failed": failed },
        "last_reload": state.last_reload().as_deref(),
    }))
    .into_response()
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_unless_remote_allowed() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let local6: SocketAddr = "[::1]:5000".parse().unwrap();
        let remote: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert!(admin_allowed(Some(local), false));
        assert!(admin_allowed(Some(local6), false));
        assert!(!admin_allowed(Some(remote), false));
        assert!(!admin_allowed(None, false));
        assert!(admin_allowed(Some(remote), true));
    }
}
