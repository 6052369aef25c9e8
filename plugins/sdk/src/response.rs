//! `Response` and `Error`: what a handler gives back to the host, and what a test reads back from it.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::plugin_host::plugin::types as wit;

/// A handler's result: a response, or an error the client sees as status + message.
pub type Result<T = Response, E = Error> = core::result::Result<T, E>;

/// A successful response.
#[derive(Debug)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: wit::Body,
}

/// The content type the host sends with a JSON body (host/src/request/answer.rs).
const JSON: &str = "application/json";
/// The content type the host sends with a text body.
const TEXT: &str = "text/plain; charset=utf-8";
/// The content type the host sends with a bytes body that has no `content-type` header.
const BYTES: &str = "application/octet-stream";

impl Response {
    /// 200 with `value` serialised as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result {
        let text = serde_json::to_string(value)
            .map_err(|e| Error::new(500, format!("cannot serialise response: {e}")))?;
        Ok(Self::with_body(wit::Body::Json(text)))
    }

    /// 201 Created: `value` as JSON, with a `location` header naming the new resource.
    ///
    /// ```
    /// # use plugin_sdk::prelude::*;
    /// let response = Response::created("/notes/7", &json!({ "id": "7" }))?;
    /// assert_eq!(response.status_code(), 201);
    /// assert_eq!(response.header_value("Location"), Some("/notes/7"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn created<T: Serialize + ?Sized>(location: &str, value: &T) -> Result {
        Ok(Self::json(value)?.status(201).header("location", location))
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

/// Reading a response back, for tests. The names differ from the builders above (`status`, `header`,
/// `text`, `json`) because Rust has one namespace for both.
impl Response {
    /// The status code.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header the handler added, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The `content-type` the host will send: the handler's own header if it set one, else
    /// `application/json` for a JSON body, `text/plain; charset=utf-8` for text,
    /// `application/octet-stream` for bytes and none for an empty body.
    ///
    /// ```
    /// # use plugin_sdk::prelude::*;
    /// assert_eq!(Response::text("hi").content_type(), Some("text/plain; charset=utf-8"));
    /// assert_eq!(Response::empty().content_type(), None);
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        self.header_value("content-type").or(match self.body {
            wit::Body::Empty => None,
            wit::Body::Json(_) => Some(JSON),
            wit::Body::Text(_) => Some(TEXT),
            wit::Body::Bytes(_) => Some(BYTES),
        })
    }

    /// The body as the host will send it (empty for an empty body).
    pub fn body_bytes(&self) -> &[u8] {
        match &self.body {
            wit::Body::Empty => &[],
            wit::Body::Json(text) | wit::Body::Text(text) => text.as_bytes(),
            wit::Body::Bytes(bytes) => bytes,
        }
    }

    /// The body of a JSON or text response; `None` for empty and bytes bodies.
    pub fn body_text(&self) -> Option<&str> {
        match &self.body {
            wit::Body::Json(text) | wit::Body::Text(text) => Some(text),
            wit::Body::Empty | wit::Body::Bytes(_) => None,
        }
    }

    /// The JSON body decoded into `T`; any other body, or JSON that does not fit `T`, is an error
    /// that says which.
    ///
    /// ```
    /// # use plugin_sdk::prelude::*;
    /// let response = Response::json(&json!({ "n": 3 }))?;
    /// let body: Value = response.body_json()?;
    /// assert_eq!(body["n"], 3);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let wit::Body::Json(text) = &self.body else {
            return Err(Error::internal(format!(
                "the response body is not JSON (content type {:?})",
                self.content_type()
            )));
        };
        serde_json::from_str(text).map_err(|e| {
            let wanted = std::any::type_name::<T>();
            Error::internal(format!(
                "the response JSON does not decode as {wanted}: {e}"
            ))
        })
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
///
/// It displays as `<status> <message>`, e.g. `404 no note 7`; the client gets the status and the
/// message separately.
///
/// ```
/// # use plugin_sdk::Error;
/// let e = Error::not_found("no note 7");
/// assert_eq!((e.status(), e.message()), (404, "no note 7"));
/// assert_eq!(e.to_string(), "404 no note 7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: u16,
    message: String,
}

impl Error {
    /// An error with any status; prefer the named constructors below for the common ones.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 Bad Request: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 401 Unauthorized: the caller must authenticate first.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, message)
    }

    /// 403 Forbidden: the caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, message)
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    /// 409 Conflict: the request clashes with the current state (e.g. the name is taken).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    /// 422 Unprocessable Content: well-formed, but the values are not acceptable.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, message)
    }

    /// 500 Internal Server Error: the plugin's fault, not the caller's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The HTTP status the client gets.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The message the client gets.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for Error {}

/// JSON that does not parse or does not fit (syntax, data, early end) is the caller's fault: 400 with
/// serde's message, which says where. An I/O error while reading is the plugin's: 500.
///
/// ```
/// # use plugin_sdk::prelude::*;
/// fn parse(text: &str) -> Result<Vec<u32>, Error> {
///     Ok(serde_json::from_str(text)?)
/// }
/// assert_eq!(parse("[1, x]").unwrap_err().status(), 400);
/// ```
impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        let status = match e.classify() {
            serde_json::error::Category::Io => 500,
            _ => 400,
        };
        Self::new(status, e.to_string())
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
