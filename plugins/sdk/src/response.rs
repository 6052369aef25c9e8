//! `Response` and `Error`: what a handler gives back to the host.

use serde::Serialize;

use crate::bindings::plugin_host::plugin::types as wit;

/// A handler's result: a response, or an error the client sees as status + message.
pub type Result<T = Response, E = Error> = core::result::Result<T, E>;

/// A successful response.
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: wit::Body,
}

impl Response {
    /// 200 with `value` serialised as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result {
        let text = serde_json::to_string(value)
            .map_err(|e| Error::new(500, format!("cannot serialise response: {e}")))?;
        Ok(Self::with_body(wit::Body::Json(text)))
    }

    /// 200 with JSON text the plugin already has (the host checks that it parses).
    pub fn json_text(text: String) -> Self {
        Self::with_body(wit::Body::Json(text))
    }

    /// 200 with a `text/plain` body.
    pub fn text(text: impl Into<String>) -> Self {
        Self::with_body(wit::Body::Text(text.into()))
    }

    /// 200 with raw bytes of the given content type.
    pub fn bytes(content_type: &str, bytes: Vec<u8>) -> Self {
        Self::with_body(wit::Body::Bytes(bytes)).header("content-type", content_type)
    }

    /// An empty response (e.g. `Response::empty().status(204)`).
    pub fn empty() -> Self {
        Self::with_body(wit::Body::Empty)
    }

    fn with_body(body: wit::Body) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    /// Set the status code.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Add a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl From<Response> for wit::Response {
    fn from(r: Response) -> Self {
        wit::Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// An error for the client: an HTTP status (4xx/5xx) and a message it can read.
#[derive(Debug)]
pub struct Error {
    status: u16,
    message: String,
}

impl Error {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        wit::Error {
            status: e.status,
            message: e.message,
        }
    }
}
