//! Outbound HTTP: a small typed client over the host's `http-client` import.
//!
//! A plugin can call the origins the operator allows it (`[plugins.NAME] allow_http = [...]` in the
//! host's configuration); nothing is allowed by default, and a call anywhere else fails with
//! [`ErrorKind::NotAllowed`]. The host makes the connection: it follows no redirects (a 3xx comes back
//! as it is), caps each call's time and response size, counts the call against the request's deadline
//! and limits the calls one request makes.
//!
//! ```
//! use plugin_sdk::prelude::*;
//! use plugin_sdk::{http, testing};
//! use std::time::Duration;
//!
//! #[derive(Deserialize)]
//! #[serde(crate = "plugin_sdk::serde")]
//! struct Rate {
//!     eur: f64,
//! }
//!
//! fn rate() -> Result<f64, Error> {
//!     let rate: Rate = http::get("https://rates.example/latest")
//!         .query("base", "USD")
//!         .header("accept", "application/json")
//!         .timeout(Duration::from_secs(2))
//!         .send()?            // not allowed, no connection, timeout: 502 or 504 for the client
//!         .error_for_status()? // a 4xx or 5xx from the upstream: 502
//!         .json()?;           // not the JSON expected: 502
//!     Ok(rate.eur)
//! }
//!
//! // In a unit test, a responder stands in for the upstream.
//! testing::http_responder(|req| {
//!     assert_eq!(req.url(), "https://rates.example/latest?base=USD");
//!     Ok(http::Response::new(200).with_json(&json!({ "eur": 0.92 })))
//! });
//! assert_eq!(rate()?, 0.92);
//! # Ok::<(), Error>(())
//! ```
//!
//! Errors convert into the SDK's [`Error`](crate::Error) with `?`: a timeout is a 504 "upstream did not
//! answer in time", anything else a 502 "upstream request failed". The details (the method, the URL
//! without its query, what went wrong) go to the plugin's log at `warn`, never to the client.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Method;
use crate::bindings::plugin_host::plugin::http_client as wit;

/// A request to `url` with `method`; add headers and a body, then [`send`](RequestBuilder::send) it.
/// `url` is absolute, `http://` or `https://`.
pub fn request(method: Method, url: impl Into<String>) -> RequestBuilder {
    RequestBuilder {
        request: Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        },
        error: None,
    }
}

/// `request(Method::Get, url)`.
pub fn get(url: impl Into<String>) -> RequestBuilder {
    request(Method::Get, url)
}

/// `request(Method::Post, url)`.
pub fn post(url: impl Into<String>) -> RequestBuilder {
    request(Method::Post, url)
}

/// `request(Method::Put, url)`.
pub fn put(url: impl Into<String>) -> RequestBuilder {
    request(Method::Put, url)
}

/// `request(Method::Patch, url)`.
pub fn patch(url: impl Into<String>) -> RequestBuilder {
    request(Method::Patch, url)
}

/// `request(Method::Delete, url)`.
pub fn delete(url: impl Into<String>) -> RequestBuilder {
    request(Method::Delete, url)
}

/// `text` percent-encoded for a URL's path segment or query: every byte but the unreserved ones
/// (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
///
/// ```
/// assert_eq!(plugin_sdk::http::percent_encode("São Paulo/1"), "S%C3%A3o%20Paulo%2F1");
/// ```
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(hex_digit(byte >> 4));
            out.push(hex_digit(byte & 0xf));
        }
    }
    out
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16)
        .unwrap_or('0')
        .to_ascii_uppercase()
}

/// An outbound request being put together; [`send`](Self::send) sends it.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    request: Request,
    /// The first thing that went wrong while building (a body that did not serialise), reported by
    /// `send`.
    error: Option<Error>,
}

impl RequestBuilder {
    /// Add a header (any case; repeat a name to send it twice).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request
            .headers
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Append `name=value` to the URL's query, both percent-encoded ([`percent_encode`]).
    ///
    /// ```
    /// # use plugin_sdk::http;
    /// let req = http::get("http://up.example/find?lang=en").query("q", "a&b c").into_request();
    /// assert_eq!(req.url(), "http://up.example/find?lang=en&q=a%26b%20c");
    /// ```
    pub fn query(mut self, name: &str, value: &str) -> Self {
        let url = &mut self.request.url;
        let fragment = url.find('#').map(|at| url.split_off(at));
        let separator = match url.find('?') {
            None => "?",
            Some(at) if at + 1 == url.len() || url.ends_with('&') => "",
            Some(_) => "&",
        };
        url.push_str(separator);
        url.push_str(&percent_encode(name));
        url.push('=');
        url.push_str(&percent_encode(value));
        url.push_str(&fragment.unwrap_or_default());
        self
    }

    /// The request body, as bytes (set a `content-type` header to say what they are).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = body.into();
        self
    }

    /// `value` as a JSON body, with `content-type: application/json` (replacing one set before).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.request
                    .headers
                    .retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
                self.request
                    .headers
                    .push(("content-type".to_owned(), "application/json".to_owned()));
                self.request.body = body;
            }
            Err(e) => {
                let message = format!("cannot serialise the request body as JSON: {e}");
                self.error
                    .get_or_insert(Error::new(ErrorKind::InvalidRequest, message));
            }
        }
        self
    }

    /// How long this call may take. The host caps it by its own limit and by what is left of the
    /// request's deadline; without it the host's limit applies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        let ms = timeout.as_millis().min(u128::from(u32::MAX)) as u32;
        // Under a millisecond is one, not "no time at all".
        self.request.timeout = Some(if ms == 0 && !timeout.is_zero() { 1 } else { ms });
        self
    }

    /// The request as it would be sent (for tests of code that builds requests).
    pub fn into_request(self) -> Request {
        self.request
    }

    /// Send the request; the upstream's response, whatever its status (see
    /// [`Response::error_for_status`]), or why there is none.
    pub fn send(self) -> Result<Response, Error> {
        let context = self.request.context();
        if let Some(error) = self.error {
            return Err(error.with_context(context));
        }
        let request = self.request.into_wit();
        match crate::imports::http_client::send(&request) {
            Ok(r) => Ok(Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
                context,
            }),
            Err(e) => Err(from_host(e).with_context(context)),
        }
    }
}

/// The host's error as the SDK's. (Natively, the fake already answers with the SDK's own.)
fn from_host(e: impl Into<Error>) -> Error {
    e.into()
}

/// An outbound request: what [`RequestBuilder::send`] hands the host, and what a test's responder
/// (`testing::http_responder`) is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Milliseconds.
    timeout: Option<u32>,
}

impl Request {
    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL, with any query added by [`RequestBuilder::query`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every header, in the order they were added, names as given.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The timeout the call asked for, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.map(|ms| Duration::from_millis(u64::from(ms)))
    }

    /// `GET http://host/path` for messages: the URL without its query and fragment (they often carry
    /// keys) or user information.
    fn context(&self) -> String {
        format!("{} {}", self.method.as_str(), redacted(&self.url))
    }

    fn into_wit(self) -> wit::OutgoingRequest {
        wit::OutgoingRequest {
            method: self.method,
            url: self.url,
            headers: self.headers,
            body: self.body,
            timeout_ms: self.timeout,
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn from_wit(request: &wit::OutgoingRequest) -> Self {
        Self {
            method: request.method,
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            timeout: request.timeout_ms,
        }
    }
}

/// `url` without its query, fragment and user information.
fn redacted(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = &url[..end];
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The upstream's response: any status (a 3xx, 4xx or 5xx is a response too; see
/// [`error_for_status`](Self::error_for_status)).
///
/// Tests make one with [`new`](Self::new) and the `with_*` methods, for a responder to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    /// Names in lowercase, as the host gives them.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The request it answers, as `METHOD URL` without the query (for error messages).
    context: String,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every header, names in lowercase.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body, moved out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.body
    }

    /// The body as UTF-8 text; other bytes are an [`ErrorKind::InvalidResponse`].
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|e| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!("the response body is not UTF-8: {e}"),
            )
            .with_context(self.context.clone())
        })
    }

    /// The body decoded from JSON into `T`; JSON that does not parse or fit is an
    /// [`ErrorKind::InvalidResponse`] saying where.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let wanted = std::any::type_name::<T>();
            Error::new(
                ErrorKind::InvalidResponse,
                format!("the response body does not decode as {wanted}: {e}"),
            )
            .with_context(self.context.clone())
        })
    }

    /// The response if its status is 2xx, else an [`ErrorKind::Status`] error naming the status, the
    /// start of the body and, for a redirect, its `location`.
    ///
    /// ```
    /// use plugin_sdk::http::{ErrorKind, Response};
    /// let error = Response::new(503).with_body("busy").error_for_status().unwrap_err();
    /// assert_eq!(error.kind(), ErrorKind::Status(503));
    /// assert_eq!(plugin_sdk::Error::from(error).status(), 502);
    /// ```
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.is_success() {
            return Ok(self);
        }
        let mut message = format!("the upstream answered {}", self.status);
        if let Some(location) = self.header("location").filter(|_| self.status / 100 == 3) {
            message.push_str(&format!(
                " (redirects are not followed; location: {location})"
            ));
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if !text.is_empty() {
            let cut: String = text.chars().take(BODY_IN_MESSAGE).collect();
            let more = if cut.len() < text.len() { "..." } else { "" };
            message.push_str(&format!(": {cut}{more}"));
        }
        Err(Error::new(ErrorKind::Status(self.status), message).with_context(self.context))
    }
}

/// How many characters of an error response's body [`Response::error_for_status`] puts in its message.
const BODY_IN_MESSAGE: usize = 200;

/// Making responses, for tests' responders (`testing::http_responder`).
impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            context: String::new(),
        }
    }

    /// Add a header (its name is lowercased, as the host does).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Set the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set the body to `value` as JSON, with `content-type: application/json`.
    ///
    /// # Panics
    ///
    /// If `value` cannot be serialised (a map with non-string keys, a failing `Serialize`).
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value).expect("the response body serialises as JSON");
        self.with_header("content-type", "application/json")
            .with_body(body)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn into_wit(self) -> wit::IncomingResponse {
        wit::IncomingResponse {
            status: self.status,
            headers: self.headers,
            body: self.body,
        }
    }
}

/// What kind of failure an [`Error`] is: the host's six reasons a call got no response, and two the
/// SDK adds about a response it did get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The URL's origin is not allowed for this plugin (`[plugins.NAME] allow_http`), or its name
    /// resolves to an address the host refuses.
    NotAllowed,
    /// The URL, a header or the method cannot be sent (or the body did not serialise).
    InvalidRequest,
    /// No response within the call's timeout. The only kind that converts to 504.
    Timeout,
    /// The name did not resolve, or the connection failed or was cut.
    ConnectionFailed,
    /// The response body is larger than the host's cap.
    ResponseTooLarge,
    /// This request already made as many calls as one request may.
    TooManyCalls,
    /// The upstream answered with this non-2xx status ([`Response::error_for_status`]).
    Status(u16),
    /// The response's body is not what was asked for: not UTF-8 ([`Response::text`]) or not the
    /// JSON expected ([`Response::json`]).
    InvalidResponse,
}

impl ErrorKind {
    /// A short name: the WIT's for the host's kinds (`not-allowed`, `timeout`, ...), `status 404`,
    /// `invalid-response`.
    pub fn name(&self) -> String {
        match self {
            ErrorKind::NotAllowed => "not-allowed".into(),
            ErrorKind::InvalidRequest => "invalid-request".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::ConnectionFailed => "connection-failed".into(),
            ErrorKind::ResponseTooLarge => "response-too-large".into(),
            ErrorKind::TooManyCalls => "too-many-calls".into(),
            ErrorKind::Status(status) => format!("status {status}"),
            ErrorKind::InvalidResponse => "invalid-response".into(),
        }
    }
}

/// Why a call failed: its [`kind`](Self::kind) and a message (the host's, or the SDK's). It displays as
/// `METHOD URL: kind: message`, the URL without its query.
///
/// With `?` it becomes the SDK's [`Error`](crate::Error) for the client: 504 for a timeout, else
/// 502, with a short message; the full text goes to the plugin's log at `warn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    /// `METHOD URL` of the call (empty until `send` or a response adds it).
    context: String,
}

impl Error {
    /// An error of `kind` with `message` (a test's responder returns these to play a failing upstream).
    ///
    /// ```
    /// use plugin_sdk::http::{Error, ErrorKind};
    /// let timeout = Error::new(ErrorKind::Timeout, "no response within 2000 ms");
    /// assert_eq!(plugin_sdk::Error::from(timeout).status(), 504);
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            context: String::new(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The host's (or the SDK's) message, without the request.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status, for an [`ErrorKind::Status`] error.
    pub fn status(&self) -> Option<u16> {
        match self.kind {
            ErrorKind::Status(status) => Some(status),
            _ => None,
        }
    }

    /// Whether the call got no answer in time.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    fn with_context(mut self, context: String) -> Self {
        if self.context.is_empty() {
            self.context = context;
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        write!(f, "{}: {}", self.kind.name(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        let (kind, message) = match e {
            wit::Error::NotAllowed(m) => (ErrorKind::NotAllowed, m),
            wit::Error::InvalidRequest(m) => (ErrorKind::InvalidRequest, m),
            wit::Error::Timeout(m) => (ErrorKind::Timeout, m),
            wit::Error::ConnectionFailed(m) => (ErrorKind::ConnectionFailed, m),
            wit::Error::ResponseTooLarge(m) => (ErrorKind::ResponseTooLarge, m),
            wit::Error::TooManyCalls(m) => (ErrorKind::TooManyCalls, m),
        };
        Self::new(kind, message)
    }
}

/// What the client of a handler that fails on an upstream call sees: 504 "upstream did not answer in
/// time" for a timeout, 502 "upstream request failed" for anything else. The upstream's details are
/// for the operator, not the client: they go to the plugin's log at `warn`.
impl From<Error> for crate::Error {
    fn from(e: Error) -> Self {
        if crate::log::enabled(crate::log::Level::Warn) {
            crate::log::log(
                crate::log::Level::Warn,
                &format!("upstream request failed: {e}"),
            );
        }
        match e.kind {
            ErrorKind::Timeout => crate::Error::new(504, "upstream did not answer in time"),
            _ => crate::Error::new(502, "upstream request failed"),
        }
    }
}
