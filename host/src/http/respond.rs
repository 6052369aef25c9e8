//! Negotiated responses on the plugin path: errors as a JSON body for API clients or as an error page
//! for browsers, and a plugin's JSON rendered through its route's view (or the generic data page) when
//! the client asked for HTML. A page that fails to render is logged and answered with a 500 page; it
//! never takes anything else down.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use minijinja::{Value, context};

use crate::generation::views::{RenderError, Views, view_context};
use crate::http::negotiate::Format;

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");

/// What a negotiated response needs to know about its request.
pub(crate) struct Reply<'a> {
    pub(crate) format: Format,
    pub(crate) views: &'a Views,
    pub(crate) request_id: &'a str,
    pub(crate) generation: u64,
}

/// Facts about the request a page may show (the `page` variable).
pub(crate) struct PageFacts<'a> {
    pub(crate) title: &'a str,
    pub(crate) plugin: &'a str,
    pub(crate) version: &'a str,
    pub(crate) method: &'a str,
    pub(crate) route: &'a str,
    pub(crate) path: &'a str,
}

impl Reply<'_> {
    /// An error in the client's format.
    pub(crate) fn error(&self, status: StatusCode, message: &str) -> Response {
        self.error_allowing(status, message, None)
    }

    /// An error in the client's format; `allow` is the methods a 405 page lists.
    pub(crate) fn error_allowing(
        &self,
        status: StatusCode,
        message: &str,
        allow: Option<&str>,
    ) -> Response {
        if self.format == Format::Json {
            return crate::http::error::respond(status, message, self.request_id);
        }
        let template = self.views.error_template(status.as_u16());
        let reason = status.canonical_reason().unwrap_or("Error");
        let context = context! {
            status => status.as_u16(),
            reason,
            message,
            allow,
            request_id => self.request_id,
            page => context! {
                title => format!("{} {reason}", status.as_u16()),
                request_id => self.request_id,
                generation => self.generation,
            },
        };
        match self.views.render(template, &context) {
            Ok(page) => html(status, page),
            Err(e) => {
                tracing::warn!(template, error = %e, "cannot render the error page; sending plain text");
                let text = format!(
                    "{} {reason}: {message}\nrequest id {}\n",
                    status.as_u16(),
                    self.request_id
                );
                plain(status, text)
            }
        }
    }

    /// A plugin's JSON body rendered as a page through `template`. The body's fields are the template's
    /// variables, with `body` (the whole value) and `page` (facts about the request) added.
    pub(crate) fn page(
        &self,
        template: &str,
        json: &str,
        facts: &PageFacts<'_>,
    ) -> Result<String, PageError> {
        let body: Value = serde_json::from_str(json).map_err(PageError::Json)?;
        let page = context! {
            title => facts.title,
            plugin => facts.plugin,
            version => facts.version,
            method => facts.method,
            route => facts.route,
            path => facts.path,
            request_id => self.request_id,
            generation => self.generation,
        };
        self.views
            .render(template, &view_context(body, page))
            .map_err(PageError::Render)
    }
}

/// Why a plugin's JSON could not become a page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    #[error("body is not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error(transparent)]
    Render(RenderError),
}

/// An HTML response.
pub(crate) fn html(status: StatusCode, page: impl Into<Body>) -> Response {
    with_type(status, page.into(), HTML)
}

/// A plain-text response: what a page that cannot be rendered falls back to.
pub(crate) fn plain(status: StatusCode, text: impl Into<Body>) -> Response {
    with_type(
        status,
        text.into(),
        HeaderValue::from_static("text/plain; charset=utf-8"),
    )
}

fn with_type(status: StatusCode, body: Body, content_type: HeaderValue) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// `response` with `Cache-Control: no-store` (sessions, secrets shown once, admin answers).
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
