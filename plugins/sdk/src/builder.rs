//! `RequestBuilder`: a [`Request`] made by hand, for unit tests of handlers (with
//! [`Plugin::call`](crate::Plugin::call)). It is plain data, so it compiles on every target, but only
//! tests have a use for it.

use serde::Serialize;

use crate::bindings::plugin_host::plugin::types as wit;
use crate::{AuthMethod, Method, Request, Role};

/// Builds a [`Request`] the way the host would fill it. Start with [`Request::builder`]; everything
/// not set is empty, the method is GET, the path `/` and the caller anonymous.
///
/// ```
/// use plugin_sdk::prelude::*;
///
/// let req = Request::builder()
///     .post("/notes")
///     .json(&json!({ "title": "first" }))
///     .subject("ada")
///     .role(Role::User)
///     .build();
/// assert_eq!(req.header("content-type"), Some("application/json"));
/// assert!(req.has_role(Role::User) && !req.has_role(Role::Admin));
/// ```
#[derive(Debug)]
pub struct RequestBuilder {
    inner: wit::Request,
    path: Option<String>,
    subject: Option<String>,
    role: Role,
}

impl Request {
    /// A builder for a request, for unit tests of handlers (see [`RequestBuilder`]).
    pub fn builder() -> RequestBuilder {
        RequestBuilder {
            inner: wit::Request {
                id: "test-request".to_owned(),
                method: Method::Get,
                path: String::new(),
                route: String::new(),
                params: Vec::new(),
                query: Vec::new(),
                headers: Vec::new(),
                body: Vec::new(),
                principal: wit::Principal {
                    subject: String::new(),
                    roles: Vec::new(),
                    auth: AuthMethod::None,
                },
            },
            path: None,
            subject: None,
            role: Role::Anonymous,
        }
    }
}

impl RequestBuilder {
    /// `GET path`.
    pub fn get(self, path: &str) -> Self {
        self.method(Method::Get).path(path)
    }

    /// `POST path`.
    pub fn post(self, path: &str) -> Self {
        self.method(Method::Post).path(path)
    }

    /// `PUT path`.
    pub fn put(self, path: &str) -> Self {
        self.method(Method::Put).path(path)
    }

    /// `PATCH path`.
    pub fn patch(self, path: &str) -> Self {
        self.method(Method::Patch).path(path)
    }

    /// `DELETE path`.
    pub fn delete(self, path: &str) -> Self {
        self.method(Method::Delete).path(path)
    }

    /// The method.
    pub fn method(mut self, method: Method) -> Self {
        self.inner.method = method;
        self
    }

    /// The path as a client would send it, e.g. `/notes/7`. Without one, the path is the route with
    /// its parameters filled in, or `/`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// The matched route pattern, e.g. `/notes/{id}`: [`Plugin::call`](crate::Plugin::call) then runs
    /// that route's handler with the parameters given by [`param`](Self::param), instead of matching
    /// the path.
    pub fn route(mut self, pattern: &str) -> Self {
        self.inner.route = pattern.to_owned();
        self
    }

    /// A path parameter, as the host would have taken it from the path (used with
    /// [`route`](Self::route)).
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.inner.params.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A query pair (already decoded), added after the others.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.inner.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A header; the name is lowercased, as the host passes names.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.inner
            .headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.inner.body = body.into();
        self
    }

    /// A text body, with `content-type: text/plain; charset=utf-8`.
    pub fn text(self, text: &str) -> Self {
        self.body(text).content_type("text/plain; charset=utf-8")
    }

    /// `value` as a JSON body, with `content-type: application/json`. Panics if `value` cannot be
    /// serialised (a bug in the test).
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let body = serde_json::to_vec(value)
            .unwrap_or_else(|e| panic!("cannot serialise the test request's JSON body: {e}"));
        self.body(body).content_type("application/json")
    }

    fn content_type(mut self, value: &str) -> Self {
        self.inner
            .headers
            .retain(|(name, _)| name != "content-type");
        self.header("content-type", value)
    }

    /// Who is calling; without it, `anonymous`, or `test-user` when a [`role`](Self::role) above
    /// anonymous is given.
    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    /// The caller's role. Like the host, the caller then holds that role and every lower one (admin
    /// holds user and anonymous), and any role above anonymous authenticated with an API key.
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The request id (`test-request` unless set).
    pub fn id(mut self, id: &str) -> Self {
        self.inner.id = id.to_owned();
        self
    }

    /// The request.
    pub fn build(mut self) -> Request {
        self.inner.principal = principal(self.role, self.subject.take());
        self.inner.path = match self.path.take() {
            Some(path) => path,
            None => filled(&self.inner.route, &self.inner.params),
        };
        Request::from(self.inner)
    }
}

/// What the host passes for a caller of `role` (`Principal::to_wit` in host/src/accounts/auth.rs):
/// every role up to `role`, lowest first.
fn principal(role: Role, subject: Option<String>) -> wit::Principal {
    let anonymous = role == Role::Anonymous;
    let default = if anonymous { "anonymous" } else { "test-user" };
    wit::Principal {
        subject: subject.unwrap_or_else(|| default.to_owned()),
        roles: [Role::Anonymous, Role::User, Role::Admin]
            .into_iter()
            .filter(|held| *held <= role)
            .collect(),
        auth: if anonymous {
            AuthMethod::None
        } else {
            AuthMethod::ApiKey
        },
    }
}

/// `route` with each `{name}` segment replaced by its parameter (`/` for no route).
fn filled(route: &str, params: &[(String, String)]) -> String {
    if route.is_empty() {
        return "/".to_owned();
    }
    let segments: Vec<&str> = route
        .split('/')
        .map(|segment| {
            let name = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
            let value = name.and_then(|n| params.iter().find(|(k, _)| k == n));
            value.map_or(segment, |(_, v)| v.as_str())
        })
        .collect();
    segments.join("/")
}
