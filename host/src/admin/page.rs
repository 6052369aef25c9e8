//! What every admin page shares: who is looking ([`Viewer`]), rendering an `admin/*.html` template of
//! the current generation with the facts every page shows, the security headers, redirects and the
//! refusal page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};
use std::sync::Arc;

use crate::accounts::auth::Principal;
use crate::app::state::AppState;

/// What admin pages may load and where their forms may go.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Who is looking at a page, and the request it came with.
#[derive(Clone)]
pub(crate) struct Viewer {
    pub(crate) principal: Principal,
    pub(crate) request_id: Arc<str>,
    pub(crate) client: String,
}

impl Viewer {
    /// How the audit log names this caller.
    pub(crate) fn actor(&self) -> String {
        self.principal.actor()
    }
}

/// Security headers every admin page carries.
pub(crate) fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Render admin template `name` with `context` plus what every page reads: `page` (title, section,
/// generation, request id) and `me` (user name and CSRF token).
pub(crate) fn render(
    state: &AppState,
    viewer: Option<&Viewer>,
    name: &str,
    title: &str,
    status: StatusCode,
    context: Value,
) -> Response {
    let generation = state.current();
    let section = name.trim_start_matches("admin/").trim_end_matches(".html");
    // What the operator must act on, on every page of a signed-in admin.
    let warnings: Vec<String> = match viewer {
        Some(_) => warnings(state),
        None => Vec::new(),
    };
    let full = context! {
        page => context! {
            title,
            section,
            generation => generation.id,
            request_id => viewer.map(|v| v.request_id.to_string()),
            warnings,
        },
        me => viewer.map(|v| context! {
            name => v.principal.subject.clone(),
            csrf => v.principal.csrf.clone(),
        }),
        ..context
    };
    let response = match generation.views.render(name, &full) {
        Ok(page) => crate::http::respond::html(status, page),
        Err(e) => {
            tracing::warn!(template = name, error = %e, "cannot render an admin page");
            crate::http::respond::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot render {name}: {e}\n"),
            )
        }
    };
    harden(response)
}

/// A plugins directory that does not build, a configuration file changed since the start.
fn warnings(state: &AppState) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(degraded) = state.degraded() {
        warnings.push(format!("{degraded}. Fix or remove the file, then reload."));
    }
    if let Some(file) = &state.config().file
        && file.changed()
    {
        warnings.push(format!(
            "The configuration file {} changed since the server started; it is read at start only: restart to apply it.",
            file.path.display()
        ));
    }
    warnings
}

/// A redirect (303) to a local path.
pub(crate) fn see_other(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    harden(response)
}

/// An admin error page (the `admin/forbidden.html` template serves every refusal).
pub(crate) fn refusal(
    state: &AppState,
    viewer: Option<&Viewer>,
    status: StatusCode,
    message: &str,
) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    render(
        state,
        viewer,
        "admin/forbidden.html",
        &format!("{} {reason}", status.as_u16()),
        status,
        context! { status => status.as_u16(), reason, message },
    )
}
