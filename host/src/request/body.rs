//! The request body, read before any instance is taken: at most `max_request_body_bytes` (413, checked
//! against `Content-Length` first) within `client_body_timeout_ms` (408).

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::Call;

/// The whole body of `call`'s request, or the answer that refuses it.
pub(super) async fn read(call: &Call<'_>, body: Body) -> Result<Bytes, Response> {
    let limits = &call.generation.limits;
    let limit = limits.max_request_body_bytes;
    let too_large = || {
        let message = format!("request body is larger than {limit} bytes");
        call.reply.error(StatusCode::PAYLOAD_TOO_LARGE, &message)
    };
    let declared = call
        .parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let timeout = limits.client_body_timeout();
    let Ok(read) = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await else {
        let message = format!(
            "request body not received within {} ms",
            timeout.as_millis()
        );
        return Err(call.reply.error(StatusCode::REQUEST_TIMEOUT, &message));
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(_) => Err(call
            .reply
            .error(StatusCode::BAD_REQUEST, "cannot read request body")),
    }
}
