//! `Request`: typed access to path params, query, headers and the body.

use std::str::FromStr;

use serde::de::DeserializeOwned;

use crate::bindings::plugin_host::plugin::types as wit;
use crate::{AuthMethod, Error, Method, Role};

/// The request the host routed to this plugin. In unit tests, make one with [`Request::builder`].
#[derive(Debug)]
pub struct Request {
    pub(crate) inner: wit::Request,
}

impl From<wit::Request> for Request {
    fn from(inner: wit::Request) -> Self {
        Self { inner }
    }
}

impl Method {
    /// The method's name as it appears on the wire, e.g. `GET`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl Request {
    /// The host's request id (for log lines and error reports).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The request's method.
    pub fn method(&self) -> Method {
        self.inner.method
    }

    /// The path as the client sent it.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The matched route pattern, e.g. `/notes/{id}`.
    pub fn route(&self) -> &str {
        &self.inner.route
    }

    /// A `{param}` from the path, parsed as `T`; a value that does not parse is a 400 for the client.
    pub fn param<T: FromStr>(&self, name: &str) -> Result<T, Error> {
        let raw = lookup(&self.inner.params, name)
            .ok_or_else(|| Error::new(500, format!("route has no parameter {name:?}")))?;
        raw.parse()
            .map_err(|_| Error::bad_request(format!("invalid value for {name}: {raw:?}")))
    }

    /// The first query value named `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        lookup(&self.inner.query, name)
    }

    /// All query pairs in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.inner.query
    }

    /// A request header (name in lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        lookup(&self.inner.headers, name)
    }

    /// All request headers the host passes on (credentials never are).
    pub fn headers(&self) -> &[(String, String)] {
        &self.inner.headers
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.inner.body
    }

    /// The body as UTF-8 text; other bytes are a 400.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.inner.body)
            .map_err(|_| Error::bad_request("request body is not UTF-8 text"))
    }

    /// The body parsed as JSON into `T`; malformed JSON is a 400 that says where.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.inner.body)
            .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))
    }

    /// Who is calling (`anonymous`, holding only the role anonymous, when nobody authenticated).
    pub fn subject(&self) -> &str {
        &self.inner.principal.subject
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.inner.principal.roles.contains(&role)
    }

    /// How the caller authenticated.
    pub fn auth_method(&self) -> AuthMethod {
        self.inner.principal.auth
    }
}
