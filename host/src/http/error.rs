//! The one error type of host-made answers. Handlers return `Result<_, Error>` and use `?`; an `Error`
//! becomes a response with its status and headers, and the router's request-context layer writes the
//! body (`{"error": message, "request_id": id}`) once it knows the request id, so no handler has to
//! carry the id around. Messages are for the client: causes that are the server's business (database
//! errors) are logged and shown as "internal error".

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::accounts::auth::AuthError;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Error {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
    bearer_challenge: bool,
}

/// The message of an [`Error`] answer, waiting on the response for its request id (see
/// [`fill_body`]).
#[derive(Debug, Clone)]
struct Pending(String);

impl Error {
    /// An answer with `status` and `message`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            retry_after: None,
            bearer_challenge: false,
        }
    }

    /// 400: the request is wrong, and `message` says how.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 with a `WWW-Authenticate: Bearer` challenge.
    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            bearer_challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, message)
        }
    }

    /// 429 for a login lockout, with `Retry-After` in whole seconds (rounded up).
    pub(crate) fn locked_out(wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed attempts; retry in {secs} s"),
            )
        }
    }

    /// 500 whose cause is logged with `what` failed, and not shown.
    pub(crate) fn internal(what: &str, cause: &anyhow::Error) -> Self {
        tracing::error!(error = %format!("{cause:#}"), "{what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// A refused request: 500 for database errors (logged, not shown), else 400 with the reason.
    pub(crate) fn refused(cause: anyhow::Error) -> Self {
        if is_database_error(&cause) {
            return Self::internal("admin request failed", &cause);
        }
        Self::bad_request(format!("{cause:#}"))
    }

    /// What the client is told.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

/// Whether `e` comes from the database (logged, never shown) rather than from the request (shown).
pub(crate) fn is_database_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<sqlx::Error>())
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        let status = e.status();
        Self {
            bearer_challenge: status == StatusCode::UNAUTHORIZED,
            ..Self::new(status, e.to_string())
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.bearer_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"plugin-host\""),
            );
        }
        response.extensions_mut().insert(Pending(self.message));
        response
    }
}

/// The JSON error body every host-made error uses.
pub(crate) fn body(message: &str, request_id: &str) -> axum::body::Body {
    let body = serde_json::json!({ "error": message, "request_id": request_id });
    axum::body::Body::from(body.to_string())
}

/// Write the body of an [`Error`] answer now that `request_id` is known (called by the router's
/// request-context layer for every response; others pass through untouched).
pub(crate) fn fill_body(response: &mut Response, request_id: &str) {
    if let Some(Pending(message)) = response.extensions_mut().remove::<Pending>() {
        *response.body_mut() = body(&message, request_id);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
}

/// An error answer whose request id is already known (the plugin request path builds its answers
/// before the request-context layer sees them).
pub(crate) fn respond(status: StatusCode, message: &str, request_id: &str) -> Response {
    let mut response = Error::new(status, message).into_response();
    fill_body(&mut response, request_id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_written_with_the_id_and_headers_come_along() {
        let mut response = Error::locked_out(Duration::from_millis(1500)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        fill_body(&mut response, "abc");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let mut plain = StatusCode::OK.into_response();
        fill_body(&mut plain, "abc");
        assert!(plain.headers().get(header::CONTENT_TYPE).is_none());
        let challenge = Error::unauthorized("no").into_response();
        assert!(challenge.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}
