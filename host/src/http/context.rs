//! What a handler may ask of its request besides the path and state: the request id the router gave
//! it, the client's address (the peer, or the client a trusted proxy names), and a body that is a form or JSON. Each is an extractor, so handlers
//! name what they need in their arguments instead of digging in `Parts`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Extensions, header};
use serde::de::DeserializeOwned;

use crate::http::error::Error;

/// The request's id: the caller's plain `x-request-id`, or one the router made.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub Arc<str>);

impl RequestId {
    /// The id of the request whose extensions these are (`-` before the router has given one).
    pub(crate) fn of(extensions: &Extensions) -> Arc<str> {
        extensions
            .get::<RequestId>()
            .map_or_else(|| "-".into(), |r| r.0.clone())
    }
}

/// The peer's socket address, when the listener recorded it.
pub(crate) fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The peer's socket address from a request's extensions.
pub(crate) fn peer_of(extensions: &Extensions) -> Option<SocketAddr> {
    extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// The client's IP address as text (empty when unknown): what login limits and audit rows record.
#[derive(Debug, Clone)]
pub(crate) struct Client(pub String);

impl Client {
    /// The client of the request `parts` belong to.
    pub(crate) fn of(parts: &Parts) -> Self {
        // Through a trusted proxy, the client it names (`proxy.rs`); otherwise the peer.
        if let Some(origin) = parts.extensions.get::<crate::http::proxy::Origin>() {
            return Self(origin.client.to_string());
        }
        Self(peer(parts).map(|p| p.ip().to_string()).unwrap_or_default())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::of(parts))
    }
}

/// Whether the request body is a URL-encoded form (otherwise it is read as JSON).
pub(crate) fn is_form(parts: &Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// Decode a form or JSON body into `T`, as `parts` say it is.
pub(crate) fn decode<T: DeserializeOwned>(parts: &Parts, body: &[u8]) -> Result<T, Error> {
    if is_form(parts) {
        let map: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| Error::bad_request(format!("invalid form: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// A body that may be a browser's form or a script's JSON, decoded into `T`; a body that is neither
/// is a 400 that says why.
#[derive(Debug)]
pub(crate) struct FormOrJson<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormOrJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| Error::bad_request(format!("cannot read the body: {e}")))?;
        Ok(Self(decode(&parts, &bytes)?))
    }
}
